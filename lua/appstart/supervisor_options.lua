--- appstart.supervisor_options: the fields of appstart.supervisor and of
-- each of its services, their defaults and checks, and the rules of the
-- dependency graph (no unknown name, no cycle).
--
-- A service takes every option of appstart.start (checked by
-- appstart.options, so an unknown name raises there as it does for a
-- start) plus the supervisor's own: restart, success_codes, backoff,
-- reset_after, burst, burst_interval, after, needs. A mistake raises a Lua
-- error at the caller's line, before anything is started.
local errors = require "appstart.errors"
local options = require "appstart.options"

local format = string.format

local M = {}

--- The defaults of the supervisor's own fields.
M.DEFAULTS = {
  parallel = 8,
  restart = "on-failure",
  success_codes = { 0 },
  backoff = { initial = 0.1, max = 30, factor = 2, jitter = 0.1 },
  reset_after = 30,
  burst = 5,
  burst_interval = 60,
}

local RESTART = { no = true, ["on-failure"] = true, always = true }

-- each check returns nil, or what is wrong with the value

local function seconds(v)
  -- (no wait is endless, as for appstart.start's seconds)
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
    return "seconds expected (a finite number >= 0), got " .. errors.shown(v)
  end
end

local function positive_seconds(v)
  -- (0 would count nothing: a window of no time holds no earlier failure)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    return "seconds expected (a finite number > 0), got " .. errors.shown(v)
  end
end

-- (an integral float, 3.0, as the integer it is: as for a start's options)
local whole = options.whole

local function count(v)
  if not (whole(v) and v >= 0) then
    return "an integer >= 0 expected, got " .. errors.shown(v)
  end
end

local function restart(v)
  if not RESTART[v] then
    return "'no', 'on-failure' or 'always' expected, got " .. (type(v) == "string" and ("'" .. v .. "'") or type(v))
  end
end

-- What is wrong with a list's keys (one that is no integer from 1, a
-- hole: {nil, "db"}, as a nil variable makes, whose "db" ipairs never
-- reaches), or nil; and its length, the largest key.
local function list_keys(v)
  local n = 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then return "a list expected (key " .. tostring(k) .. ")" end
    if k > n then n = k end
  end
  return nil, n
end

local function codes(v)
  if type(v) ~= "table" then return "table expected, got " .. type(v) end
  local why, n = list_keys(v)
  if why then return why end
  for i = 1, n do
    local c = v[i]
    if not (whole(c) and c >= 0 and c <= 255) then
      return format("[%d]: an exit code from 0 to 255 expected, got %s", i, errors.shown(c))
    end
  end
end

local function names(v)
  if type(v) ~= "table" then return "table expected, got " .. type(v) end
  local why, n = list_keys(v)
  if why then return why end
  for i = 1, n do
    local name = v[i]
    if type(name) ~= "string" or name == "" then
      return format("[%d]: a service name expected, got %s", i, type(name) == "string" and "''" or type(name))
    end
  end
end

local BACKOFF = {
  initial = seconds,
  max = seconds,
  factor = function(v)
    if type(v) ~= "number" or v ~= v or v < 1 then return "a number >= 1 expected, got " .. errors.shown(v) end
  end,
  jitter = function(v)
    if type(v) ~= "number" or v ~= v or v < 0 or v > 1 then
      return "a fraction from 0 to 1 expected, got " .. errors.shown(v)
    end
  end,
}

local function backoff(v)
  if type(v) ~= "table" then return "table expected, got " .. type(v) end
  for k, x in pairs(v) do
    local check = BACKOFF[k]
    if not check then return "unknown field '" .. tostring(k) .. "'" end
    local why = check(x)
    if why then return format("field '%s': %s", k, why) end
  end
end

--- The supervisor's own fields of a service, each with its check.
M.SERVICE_FIELDS = {
  restart = restart, success_codes = codes, backoff = backoff, reset_after = seconds,
  burst = count, burst_interval = positive_seconds, after = names, needs = names,
}

-- What services without a field of their own share (read only): a
-- thousand services cost a thousand tables less each.
local EMPTY = {}
local DEFAULT_SUCCESS = { [0] = true }
local DEFAULT_BACKOFF = M.DEFAULTS.backoff

local function list_copy(list)
  if not list or #list == 0 then return EMPTY end
  return table.move(list, 1, #list, 1, {})
end

-- A table with a metatable: what its __index gave would be read
-- unchecked, or not at all (a field of a service's spec, the supervisor's
-- `parallel`), as for appstart.start's options.
local PLAIN = "must be a plain table (it has a metatable)"

-- spec -> {name -> its cfg}: specs checked already, whose next
-- M.service (under that name) takes that cfg as it is (weak: a spec
-- dropped goes).
local checked = setmetatable({}, { __mode = "k" })

--- Hand the next M.service(name, spec) the cfg that a check of spec made
-- before (appstart supervise checks a reloaded file whole at its SIGHUP,
-- and adds its services once what they replace has stopped: what was
-- checked then, a user that existed, is what is added, not checked
-- again); cfg nil forgets it.
function M.checked(name, spec, cfg)
  local pre = checked[spec]
  if not pre then
    if cfg == nil then return end
    pre = {}
    checked[spec] = pre
  end
  pre[name] = cfg
end

--- A service's spec checked and split: the options of its starts (what
-- appstart.start takes) and the supervisor's fields with their defaults.
-- who: the function the user called, for messages; level: as error()
-- counts, from the caller of this function.
-- @return { start = the options of its starts, restart, success = {code
-- -> true}, backoff = {initial, max, factor, jitter}, reset_after, burst,
-- burst_interval, after = {names}, needs = {names} }
function M.service(name, spec, who, level)
  level = level + 1
  if type(name) ~= "string" or name == "" then
    error(format("%s: a service name (a non-empty string) expected, got %s", who,
      type(name) == "string" and "''" or type(name)), level)
  end
  if type(spec) ~= "table" then
    error(format("%s: service '%s': table expected, got %s", who, name, type(spec)), level)
  end
  -- (what a metatable's __index gave would be read unchecked, or not at
  -- all: as appstart.start's options)
  if getmetatable(spec) ~= nil then error(format("%s: service '%s': %s", who, name, PLAIN), level) end
  -- a spec appstart supervise checked at its SIGHUP: taken as it was
  -- checked (see M.checked)
  local pre = checked[spec]
  if pre and pre[name] then
    local cfg = pre[name]
    pre[name] = nil
    return cfg
  end
  local start, own = {}, {}
  for k, v in next, spec do
    local check = M.SERVICE_FIELDS[k]
    if check then
      -- (before its check: a list's keys are read with pairs)
      if type(v) == "table" and getmetatable(v) ~= nil then
        error(format("%s: service '%s': field '%s': %s", who, name, k, PLAIN), level)
      end
      local why = check(v)
      if why then error(format("%s: service '%s': field '%s': %s", who, name, k, why), level) end
      own[k] = v
    else
      start[k] = v
    end
  end
  -- a field that would be silently ignored is a mistake: the delays
  -- between restarts with no restart, a delay's growth with none
  local ignored
  if own.restart == "no" then
    ignored = (own.backoff and "backoff" or own.reset_after and "reset_after")
    if ignored then ignored = format("field '%s': has no effect with restart = 'no'", ignored) end
  end
  -- (restarted on failure only, and the first failure fails it: none is
  -- ever restarted)
  if not ignored and own.burst == 0 and (own.restart or M.DEFAULTS.restart) == "on-failure" then
    ignored = (own.backoff and "backoff" or own.reset_after and "reset_after")
    if ignored then
      ignored = format("field '%s': has no effect with burst = 0 and restart = 'on-failure'%s (the first failure"
        .. " fails the service: none is restarted)", ignored, own.restart and "" or " (the default)")
    end
  end
  local b = own.backoff
  if not ignored and b and b.initial == 0 then
    local grows = b.factor and "factor" or b.max and "max" or b.jitter and "jitter"
    if grows then ignored = format("field 'backoff': '%s' has no effect with initial = 0 (no delay)", grows) end
    -- (what it resets, the count of restarts in a row, only grows delays)
    if not grows and own.reset_after then
      ignored = "field 'reset_after': has no effect with backoff.initial = 0 (no delay to reset)"
    end
  end
  if not ignored and b and b.initial ~= 0 then
    -- delays that cannot grow: every one is initial (factor 1, or
    -- initial = max), or max (initial above it)
    local D = DEFAULT_BACKOFF
    local initial, max, factor = b.initial or D.initial, b.max or D.max, b.factor or D.factor
    if initial > max then
      ignored = format("field 'backoff': initial = %s%s is above max = %s%s (every delay would be max)",
        initial, b.initial and "" or " (the default)", max, b.max and "" or " (the default)")
    elseif factor == 1 or initial == max then
      local why = factor == 1 and "factor = 1" or "initial = max"
      local grows = factor == 1 and b.max and "max" or initial == max and b.factor and "factor"
      if grows then
        ignored = format("field 'backoff': '%s' has no effect with %s (no delay grows)", grows, why)
      elseif own.reset_after then
        ignored = format("field 'reset_after': has no effect with backoff.%s (no delay grows, none to reset)", why)
      end
    end
  end
  -- (one failure is more than none: the first fails the service, whatever
  -- the window)
  if not ignored and own.burst == 0 and own.burst_interval then
    ignored = "field 'burst_interval': has no effect with burst = 0 (the first failure fails the service)"
  end
  if ignored then error(format("%s: service '%s': %s", who, name, ignored), level) end
  -- a supervisor stops what an app forked along with it
  if options.SCHEMA.kill_mode and start.kill_mode == nil then start.kill_mode = "group" end
  -- a start with ready = "none" waits for nothing, but sv:reload does:
  -- for the end of an app its reload signal ends (see Supervisor:reload)
  local reload_timeout
  if start.ready == "none" and type(start.ready_timeout) == "number" then
    reload_timeout, start.ready_timeout = start.ready_timeout, nil
  end
  local field, why = options.check(start)
  if not field and reload_timeout then
    why = options.SCHEMA.ready_timeout.check(reload_timeout)
    field = why and "ready_timeout"
  end
  if field then
    if field == "" then error(format("%s: service '%s': %s", who, name, why), level) end
    error(format("%s: service '%s': field '%s': %s", who, name, field, why), level)
  end
  local D = M.DEFAULTS
  local success = DEFAULT_SUCCESS
  if own.success_codes then
    success = {}
    for _, c in ipairs(own.success_codes) do success[c] = true end
  end
  local delays = DEFAULT_BACKOFF
  if b then
    delays = { initial = b.initial or D.backoff.initial, max = b.max or D.backoff.max,
      factor = b.factor or D.backoff.factor, jitter = b.jitter or D.backoff.jitter }
  end
  return {
    start = start,
    restart = own.restart or D.restart,
    success = success,
    backoff = delays,
    reset_after = own.reset_after or D.reset_after,
    burst = own.burst or D.burst,
    burst_interval = own.burst_interval or D.burst_interval,
    after = list_copy(own.after),
    needs = list_copy(own.needs),
    reload_timeout = reload_timeout,
  }
end

-- A cycle of the graph (needs and after edges), found by a depth-first
-- walk in name order, as text: "a -> b -> a"; nil when there is none.
local function find_cycle(services, sorted)
  local WHITE, GREY, BLACK = 0, 1, 2
  local color, path = {}, {}
  local function visit(name)
    color[name] = GREY
    path[#path + 1] = name
    local s = services[name]
    for _, list in ipairs { s.needs, s.after } do
      for _, dep in ipairs(list) do
        if color[dep] == GREY then
          local at = 1
          while path[at] ~= dep do at = at + 1 end
          local cycle = table.move(path, at, #path, 1, {})
          cycle[#cycle + 1] = dep
          return table.concat(cycle, " -> ")
        elseif (color[dep] or WHITE) == WHITE and services[dep] then
          local found = visit(dep)
          if found then return found end
        end
      end
    end
    path[#path] = nil
    color[name] = BLACK
  end
  for _, name in ipairs(sorted) do
    if (color[name] or WHITE) == WHITE then
      local found = visit(name)
      if found then return found end
    end
  end
end

--- The graph checked: every name in after/needs is a service, and no
-- service comes, through after and needs, after itself. services: name ->
-- checked service; sorted: their names in order.
function M.graph(services, sorted, who, level)
  level = level + 1
  for _, name in ipairs(sorted) do
    local s = services[name]
    for _, field in ipairs { "needs", "after" } do
      for _, dep in ipairs(s[field]) do
        if not services[dep] then
          error(format("%s: service '%s': field '%s': unknown service '%s'", who, name, field, dep), level)
        end
      end
    end
  end
  local cycle = find_cycle(services, sorted)
  if cycle then error(format("%s: dependency cycle: %s", who, cycle), level) end
end

--- The order to start services in: each after what it needs and what it
-- comes after, ties by name (Kahn's algorithm; the graph has no cycle).
function M.order(services, sorted)
  local indegree, dependents = {}, {}
  for _, name in ipairs(sorted) do
    indegree[name], dependents[name] = 0, {}
  end
  for _, name in ipairs(sorted) do
    local s, seen = services[name], {}
    for _, list in ipairs { s.needs, s.after } do
      for _, dep in ipairs(list) do
        if not seen[dep] then
          seen[dep] = true
          indegree[name] = indegree[name] + 1
          local d = dependents[dep]
          d[#d + 1] = name
        end
      end
    end
  end
  local ready, order = {}, {}
  for _, name in ipairs(sorted) do
    if indegree[name] == 0 then ready[#ready + 1] = name end
  end
  while #ready > 0 do
    table.sort(ready, function(a, b) return a > b end) -- smallest name last
    local name = table.remove(ready)
    order[#order + 1] = name
    for _, d in ipairs(dependents[name]) do
      indegree[d] = indegree[d] - 1
      if indegree[d] == 0 then ready[#ready + 1] = d end
    end
  end
  return order
end

--- The supervisor's own fields, checked: { parallel, on_event, log }.
function M.supervisor(spec, who, level)
  level = level + 1
  if type(spec) ~= "table" then error(format("%s: table expected, got %s", who, type(spec)), level) end
  if getmetatable(spec) ~= nil then error(format("%s: options %s", who, PLAIN), level) end
  for k, v in next, spec do
    if k == "services" then
      if type(v) ~= "table" then error(format("%s: field 'services': table expected, got %s", who, type(v)), level) end
      if getmetatable(v) ~= nil then error(format("%s: field 'services': %s", who, PLAIN), level) end
    elseif k == "parallel" then
      if not (whole(v) and v >= 1) then
        error(format("%s: field 'parallel': an integer >= 1 expected, got %s", who, errors.shown(v)), level)
      end
    elseif k == "on_event" or k == "log" then
      if type(v) ~= "function" then
        error(format("%s: field '%s': function expected, got %s", who, k, type(v)), level)
      end
    else
      error(format("%s: unknown field '%s'", who, tostring(k)), level)
    end
  end
  return { parallel = spec.parallel or M.DEFAULTS.parallel, on_event = spec.on_event, log = spec.log }
end

return M
