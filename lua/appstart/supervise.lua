--- appstart.supervise: the `appstart supervise [--json] FILE.lua` command.
--
-- FILE.lua returns the table given to appstart.supervisor. The command
-- brings every service up and supervises until SIGTERM or SIGINT (then
-- sv:down(), exit 0), or another signal that would end it (SIGPIPE from a
-- reader of --json gone, SIGQUIT, SIGUSR1...: sv:down(), exit 128+N).
-- SIGHUP reads the file again and applies the
-- difference: new services are started, removed ones stopped, changed ones
-- restarted with their new spec. Each event is a line on stderr, or with
-- --json one JSON object on stdout. Under a supervisor of its own
-- (NOTIFY_SOCKET set) it is a Type=notify service: READY=1 once every
-- service is up (sv:up() succeeded), STATUS= with the count of those
-- ready, RELOADING=1 / READY=1 around a SIGHUP, STOPPING=1 at the end,
-- and WATCHDOG=1 pings when WATCHDOG_USEC asks for them; what the
-- manager's queue has no room for is kept, bounded, until it has
-- (appstart.outer).
local appstart = require "appstart"
local core = require "appstart.core"
local log = require "appstart.log"
local loop = require "appstart.loop"
local supervisor_internals = require "appstart.supervisor"
local sopts = require "appstart.supervisor_options"
local outer_messages = require "appstart.outer"

local M = {}

M.USAGE = [[
Usage: appstart supervise [options] [--] FILE.lua

Run FILE.lua, which returns the table given to appstart.supervisor (its
services and their policies), bring every service up and keep them up
until SIGTERM or SIGINT, then stop them all (dependents first) and exit 0.
Another signal that would end the command (SIGPIPE, SIGQUIT, SIGUSR1...)
stops them all the same, and the command exits 128+N. SIGHUP reads
FILE.lua again and applies the difference: new services are started,
removed ones stopped, changed ones restarted.

  --json          one JSON object per event on stdout:
                  {"service":..,"state":..,"pid":..,"restarts":..,
                   "delay":..,"exit_code":..,"signal":..,"watchdog":..,
                   "code":..,"message":..} (null where it does not apply),
                  and "output":[..] (a failed start's last lines, where
                  captured); the services' own stdout goes to stderr
  -q, --quiet     print no events, not even with --json, and no log line
                  below an error (errors still go to stderr); not with -v
  -v, --verbose   log each step on stderr
  -h, --help      show this help

Under systemd or another supervisor (NOTIFY_SOCKET set) it sends READY=1
once every service is up (one that ended on purpose and is not restarted
counts) and STATUS= with the count of ready services.
Exit status: 0 after SIGTERM or SIGINT, 128+N after another signal N,
1 when FILE.lua cannot be used at the start, 2 usage error.
]]

local printable = log.printable

-- The options without a value, by what they set.
local FLAGS = { ["--json"] = "json", ["-q"] = "quiet", ["--quiet"] = "quiet", ["-v"] = "verbose",
  ["--verbose"] = "verbose", ["-h"] = "help", ["--help"] = "help" }

--- argv (after "supervise") -> options, or nil, message.
function M.parse(argv)
  -- (--help wins whatever else is given, a mistake in the rest included)
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if FLAGS[a] == "help" then return { help = true } end
  end
  local o = {}
  local options = true -- until "--": after it, FILE.lua (a name that begins with '-' too)
  for _, a in ipairs(argv) do
    local flag = options and FLAGS[a]
    if flag and o[flag] then return nil, "option '--" .. flag .. "' given twice" end
    if flag == "help" then o.help = true; return o
    elseif flag then o[flag] = true
    elseif options and a == "--" then options = false
    elseif options and a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option '" .. a .. "'"
    elseif o.file then return nil, "one FILE.lua only (got '" .. o.file .. "' and '" .. a .. "')"
    else o.file = a
    end
  end
  if not o.file then return nil, "missing FILE.lua" end
  if o.quiet and o.verbose then return nil, "--quiet and --verbose exclude each other" end
  return o
end

-- A services file is code run as this user (root, most often): read only
-- where no other user could change it (core.read_trusted), at most this
-- many bytes.
local FILE_MAX = 1 << 20

--- The supervisor's spec from path: the table its chunk returns, or nil,
-- message.
local function spec_of(path, spec)
  if type(spec) ~= "table" then
    return nil, path .. ": must return the supervisor's table, returned " .. type(spec)
  end
  if type(spec.services) ~= "table" then
    return nil, path .. ": the table has no 'services' table"
  end
  return spec
end

-- How long the stop's callbacks may take once every service has stopped:
-- the longest kill_grace of the file's services (as long as a stop).
local function callbacks_grace(spec)
  local default, grace = require("appstart.options").DEFAULTS.kill_grace, 0
  for _, service in pairs(spec.services) do
    local g = rawget(service, "kill_grace")
    if type(g) ~= "number" then g = default end
    if g > grace then grace = g end
  end
  return grace
end

-- os.exit while the file runs: it would end the command there, every
-- service running on, none stopped (a reload's file: the command exited
-- with the code it gave, its services reparented, left for good)
local function exit_refused()
  error("os.exit: the file may not end the command", 2)
end

-- (the path in every message escaped whole, its newlines and tabs too:
-- what the file raised keeps those of its traceback, log.raised)
function M.load(path)
  local shown = log.printable(path)
  local text, why = core.read_trusted(path, FILE_MAX)
  -- (its message names the path, or a directory on it, and no more)
  if not text then return nil, log.printable(why) end
  local chunk, err = load(text, "@" .. shown, "t")
  if not chunk then return nil, err end
  local exit = os.exit
  rawset(os, "exit", exit_refused)
  local ok, spec = pcall(chunk)
  rawset(os, "exit", exit)
  if not ok then return nil, shown .. ": " .. log.raised(spec) end
  -- (what it returned read under pcall: a table whose __index raises, a
  -- strict one's, is said as the file's error)
  local read, got, bad = pcall(spec_of, shown, spec)
  if not read then return nil, shown .. ": " .. log.raised(got) end
  return got, bad
end

-------------------------------------------------------------------------------
-- what changed between two readings of the file

-- What a Lua function's code is, wherever it stands in the file:
-- string.dump(f) (ldump.c, dumpFunction) less what the file's layout puts
-- there: its source's name, the lines where each function (f and those
-- within) begins and ends and those of each instruction, and where f's
-- own upvalues sit in the function around it (a register, which a local
-- added above, or two helpers swapped, moves). The names of the
-- variables it captures stay (which variable, not where), as do its
-- locals and what the functions within capture of it (its code). nil for
-- a C function. A dump of a form this does not know is taken whole (a
-- function moved then counts as changed).
local function code_of(f)
  local ok, d = pcall(string.dump, f)
  if not ok then return nil end
  -- the header: signature, version, format, data, the sizes of an
  -- instruction, an integer and a float, an integer, a float; then the
  -- count of the main function's upvalues, and the main function
  local isize, intsize, nsize = d:byte(13, 15)
  if d:sub(1, 6) ~= "\27LuaT\0" or not nsize then return d end
  local pos = 15 + intsize + nsize + 2
  local kept, from = { d:sub(1, pos - 1) }, pos
  local function keep() -- (what lies from `from` to pos)
    kept[#kept + 1] = d:sub(from, pos - 1)
  end
  local function size()
    local x = 0
    repeat
      local b = d:byte(pos)
      if not b or x > 0xffffff then error("not a dump of this form", 0) end
      pos, x = pos + 1, (x << 7) | (b & 0x7f)
    until b >= 0x80
    return x
  end
  local function skip_string()
    local n = size()
    if n > 0 then pos = pos + n - 1 end
  end
  local function proto(outer)
    keep()
    skip_string() -- source: dropped (a function within has none: its parent's)
    size() -- linedefined: dropped
    size() -- lastlinedefined: dropped
    from = pos
    pos = pos + 3 -- numparams, is_vararg, maxstacksize
    local n = size() -- (read before pos is: size() moves it)
    pos = pos + n * isize
    for _ = 1, size() do -- constants
      local tag = d:byte(pos)
      pos = pos + 1
      if tag == 3 then pos = pos + intsize -- (an integer)
      elseif tag == 19 then pos = pos + nsize -- (a float)
      elseif tag == 4 or tag == 20 then skip_string()
      elseif tag ~= 0 and tag ~= 1 and tag ~= 17 then error("not a dump of this form", 0) end
    end
    n = size() -- upvalues: instack, idx, kind
    if outer then
      -- (f's: where they sit in the file's functions around it, dropped;
      -- their kind kept)
      keep()
      for i = 0, n - 1 do kept[#kept + 1] = d:sub(pos + 3 * i + 2, pos + 3 * i + 2) end
      pos = pos + n * 3
      from = pos
    else
      pos = pos + n * 3
    end
    for _ = 1, size() do proto(false) end
    -- debug information: the lines (a byte an instruction, then the
    -- absolute ones, pc and line) dropped; the locals (name, from, to)
    -- and the upvalues' names kept
    keep()
    n = size() -- (read before pos is, as above)
    pos = pos + n
    for _ = 1, size() do size(); size() end
    from = pos
    for _ = 1, size() do skip_string(); size(); size() end
    for _ = 1, size() do skip_string() end
  end
  if not pcall(proto, true) or pos ~= #d + 1 then return d end
  keep()
  return table.concat(kept)
end

-- Deep equality of two specs: a table by its contents and metatable, a
-- number by its value and kind (1 is not 1.0), a Lua function by its code,
-- wherever it stands in the file; not by what it captures, which the old
-- one's running may have changed (a counter, a cache: no change of the
-- file's); a C function or any other value only when it is the same one.
-- seen: the pairs under comparison, taken as the same meanwhile (a cycle,
-- in either, ends there).
local function same(a, b, seen)
  if rawequal(a, b) then return math.type(a) == math.type(b) end
  local ta = type(a)
  if ta ~= type(b) then return false end
  if ta == "function" then
    local code = code_of(a)
    return code ~= nil and code == code_of(b)
  end
  if ta ~= "table" then return false end
  seen = seen or {}
  local with = seen[a]
  if not with then
    with = {}
    seen[a] = with
  elseif with[b] then
    return true
  end
  with[b] = true
  if not same(getmetatable(a), getmetatable(b), seen) then return false end
  for k, v in next, a do
    if not same(v, rawget(b, k), seen) then return false end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
  end
  return true
end
M.same = same

--- The difference between the services of two specs: added, removed and
-- changed names, each sorted. A service with no `log` of its own logs
-- through the file's: when that changes, so does the service.
function M.diff(old, new)
  local added, removed, changed = {}, {}, {}
  local log_changed = not same(old.log, new.log)
  for name, spec in pairs(new.services) do
    local was = old.services[name]
    if was == nil then added[#added + 1] = name
    elseif not same(was, spec) or (log_changed and type(spec) == "table" and spec.log == nil) then
      changed[#changed + 1] = name
    end
  end
  for name in pairs(old.services) do
    if new.services[name] == nil then removed[#removed + 1] = name end
  end
  -- a service that names (in needs or after) one removed or changed goes
  -- with it and comes back: changed too
  local gone = {}
  for _, list in ipairs { removed, changed } do
    for _, name in ipairs(list) do gone[name] = true end
  end
  local grew = true
  while grew do
    grew = false
    for name, spec in pairs(old.services) do
      if not gone[name] and new.services[name] ~= nil then
        for _, key in ipairs { "needs", "after" } do
          for _, dep in ipairs(type(spec[key]) == "table" and spec[key] or {}) do
            if gone[dep] and not gone[name] then
              gone[name], grew = true, true
              changed[#changed + 1] = name
            end
          end
        end
      end
    end
  end
  table.sort(added)
  table.sort(removed)
  table.sort(changed)
  return added, removed, changed
end

-------------------------------------------------------------------------------
-- events

local function json_event(json_object, name, state, info)
  local err = info.err
  -- a failed start's error has the app's pid, how it ended and its last
  -- lines, as the command's own --json failure has
  local e = type(err) == "table" and err or {}
  local how = info.how or e.status or {}
  local message = { "message", err and (e.message or tostring(err)) }
  local fields = {
    { "service", name }, { "state", state }, { "pid", info.pid or e.pid }, { "restarts", info.restarts },
    { "delay", info.delay }, { "exit_code", how.code }, { "signal", how.signal },
    { "watchdog", how.watchdog == true }, { "code", err and e.code }, message,
  }
  if e.output then fields[#fields + 1] = { "output", e.output } end
  -- one write that stdout takes at once (see write_json): what does not
  -- fit loses its output, then the end of its message
  local line, limit = json_object(fields), log.PIPE_BUF - 1
  if #line > limit and e.output then
    fields[#fields] = nil
    line = json_object(fields)
  end
  -- (then the end of the service's name: a name is any string). The
  -- longest start that fits, sought: a byte may take 6 in JSON
  for _, field in ipairs { message, fields[1] } do
    local text = field[2]
    if #line > limit and type(text) == "string" then
      local fits, over = -1, #text -- (the longest start that fits: in [fits + 1, over - 1] or none)
      while over - fits > 1 do
        local mid = (fits + over) // 2
        field[2] = text:sub(1, mid) .. "[...]"
        if #json_object(fields) <= limit then fits = mid else over = mid end
      end
      field[2] = text:sub(1, math.max(fits, 0)) .. "[...]"
      line = json_object(fields)
    end
  end
  return line
end

local function text_event(name, state, info)
  local parts = { "appstart: ", printable(name), ": ", state }
  if info.pid then parts[#parts + 1] = " (pid " .. info.pid .. ")" end
  if info.how then parts[#parts + 1] = ": " .. tostring(info.how) end
  if info.err then parts[#parts + 1] = ": " .. printable(tostring(info.err.message or info.err)) end
  if info.delay then parts[#parts + 1] = string.format(", restart in %.3g s", info.delay) end
  return table.concat(parts)
end

-------------------------------------------------------------------------------
-- the command

--- Run the command; returns the exit code, or nil, usage message.
-- command: appstart.cli (its json_object and CAUGHT_SIGNALS).
function M.main(argv, command)
  local o, message = M.parse(argv)
  if not o then return nil, message end
  if o.help then return command.answer(M.USAGE, "the help") end
  if o.json then
    -- the command's stdout is its JSON alone: the events go to a copy of
    -- it, and its stdout becomes its stderr, which the services (stdout
    -- "inherit", the default) and the file's own prints write to
    local fd, err = core.dup(1)
    local moved = false
    if fd then moved, err = core.dup(2, 1) end
    if not moved then
      if fd then core.close(fd) end
      io.stderr:write("appstart: stdout: ", printable(tostring(err)), "\n")
      return 1
    end
    o.json_fd = fd
  end
  local spec, why = M.load(o.file)
  if not spec then
    -- (a path of the user's, what the file raised: escaped, but for the
    -- newlines and tabs of a traceback)
    io.stderr:write("appstart: ", log.raised(why), "\n")
    return 1
  end
  local saved_level = appstart.log_level
  if o.verbose then appstart.log_level = "debug"
  elseif o.quiet then appstart.log_level = "error" end -- (as the command's)
  local ok, code = pcall(M.run, o, spec, command)
  appstart.log_level = saved_level
  if not ok then
    io.stderr:write("appstart: ", log.raised(code), "\n")
    return 1
  end
  return code
end

-- The outer watchdog's period in microseconds and the pid it is for (nil:
-- any), read as sd_watchdog_enabled reads them: decimal digits, the
-- period > 0, the pid too. Anything else is no watchdog that can be kept
-- (none, as for sd_watchdog_enabled), and is said (a tonumber() took
-- "1e-300", and pinged in a busy loop).
local function watchdog_usec()
  -- (decimal digits, > 0 and an integer: nil else, and said)
  local function count(text, fmt)
    local n = text:match("^%d+$") and math.tointeger(tonumber(text))
    if n and n > 0 then return n end
    io.stderr:write(string.format(fmt, appstart.printable(text:sub(1, 40))))
  end
  local usec, pid = os.getenv("WATCHDOG_USEC"), os.getenv("WATCHDOG_PID")
  if not usec or usec == "" then return nil end
  local n = count(usec, "appstart: WATCHDOG_USEC=%s ignored: a number of microseconds > 0 expected\n")
  if not n or not pid or pid == "" then return n end
  local p = count(pid, "appstart: WATCHDOG_USEC ignored: WATCHDOG_PID=%s is not a pid\n")
  if not p then return nil end
  return n, p
end

-- The supervisor's outer notify socket: nothing when there is none.
local outer = os.getenv("NOTIFY_SOCKET")

--- Supervise spec until a signal that ends the command: the exit code.
function M.run(o, spec, command)
  local json_object = command.json_object
  -- (kept when the manager's queue is full, sent once it has room)
  local manager = outer_messages.new(outer)
  local function notify(kind, text) manager:send(kind, text) end
  local states, total = {}, 0
  local announced = false -- READY=1 sent
  -- the services ready at least once since they were added (a migration
  -- that ended on purpose counts): what a bring-up a reload cut short
  -- still waits for is the rest
  local came_up = {}
  local stopping = false -- STOPPING=1 sent: READY=1 never again
  local sv -- (made below)
  -- each service's state now, read from the supervisor's services as
  -- they are (one it has not, or no longer: by its last event); not
  -- through sv:status, whose step for each name made each event cost the
  -- square of the number of services: 300 took 11 s to see a SIGTERM
  local function ready_count()
    local n = 0
    local services = sv and sv._services
    for name, state in pairs(states) do
      local svc = services and services[name]
      if svc then state = svc.state end
      if state == "ready" or state == "reloading" then n = n + 1 end
    end
    return n
  end
  -- READY=1 once: every service ready, or sv:up() returned true (one
  -- that ended on purpose and is not restarted, a migration, counts then)
  -- (with the count as it is now, in the same datagram: sv:up() may
  -- return before the events that say its services are ready have run,
  -- and whoever reads READY=1 takes the status it last had)
  -- (STATUS= only when it says something new: each event asks)
  local told
  local function announce()
    if not announced and not stopping then
      announced = true
      told = string.format("STATUS=%d of %d services ready", ready_count(), total)
      notify("state", told .. "\nREADY=1")
    end
  end
  local function status()
    local n = ready_count()
    if n == total and not announced and not stopping then return announce() end
    local text = string.format("STATUS=%d of %d services ready", n, total)
    if text ~= told then
      told = text
      notify("status", text)
    end
  end
  -- An event is written only while stdout takes it at once, as a line
  -- on stderr (log.show): a reader that does not keep up, or never reads,
  -- must not keep the supervisor from its restarts and the signals. Those
  -- dropped are counted, said on stderr with the next one written, or
  -- at the end.
  local unwritten = 0
  local function say_unwritten()
    -- (a count stderr did not take whole is said again, with the next)
    if unwritten > 0 and log.show("appstart: ", string.format("%d event%s not written (stdout was not read)",
      unwritten, unwritten == 1 and "" or "s"), "\n") then
      unwritten = 0
    end
  end
  local function write_json(line)
    local takes, gone = core.writable(o.json_fd)
    -- (a reader gone: the write fails, and the SIGPIPE ends the command)
    if gone then return core.write(o.json_fd, line .. "\n") end
    if not takes then
      unwritten = unwritten + 1
      return
    end
    say_unwritten()
    -- (as much as it takes at once: a terminal may take less than it
    -- promised, and its reader may be stalled)
    line = line .. "\n"
    if log.write_now(o.json_fd, line) < #line then unwritten = unwritten + 1 end
  end
  -- Each event, told by the supervisor in the step that made it (its
  -- tap), not queued with the file's on_event: one that waits held them
  -- there, and past 64 of a service's the queue merged them (--json lost
  -- events, uncounted; STATUS= came late). It never waits: what stdout
  -- does not take is counted (write_json).
  local function tell(name, state, info)
    states[name] = state
    if state == "ready" then came_up[name] = true end
    if o.json and not o.quiet then
      write_json(json_event(json_object, name, state, info))
    elseif not o.quiet then
      log.show("", text_event(name, state, info), "\n")
    end
    status()
  end
  -- The supervisor of the file's table s: a copy of s, read raw (a
  -- __pairs of the file's runs no code of it here), and s with a
  -- metatable an error, as appstart.supervisor's own (the copy would lose
  -- it, and what its __index gave). Its on_event is the file's own,
  -- checked by appstart.supervisor as any (one put in its place hid a
  -- string there: called at each event).
  local function supervisor_of(s)
    if getmetatable(s) ~= nil then
      error("appstart.supervisor: options must be a plain table (it has a metatable)", 0)
    end
    local copy = {}
    for k, v in next, s do copy[k] = v end
    return appstart.supervisor(copy)
  end

  for name in pairs(spec.services) do
    states[name] = "stopped"
    total = total + 1
  end
  -- a mistake in the file is the file's (not a line of appstart's)
  local made, made_sv = pcall(supervisor_of, spec)
  if not made then error(log.printable(o.file) .. ": " .. tostring(made_sv), 0) end
  sv = made_sv
  supervisor_internals.set_tap(sv, tell)
  -- taken before the first STATUS=: whoever reads it may send a signal at
  -- once (a SIGHUP would end the command); every signal that would end
  -- it, so that none leaves the services behind (one it was started with
  -- ignored, as a shell's background job is with SIGQUIT, would not:
  -- core.signals leaves it alone, and it stops nothing)
  local signals = assert(core.signals(command.CAUGHT_SIGNALS))
  status() -- "0 of N"; READY=1 at once when there are none
  local current = spec

  -- A reload is over: READY=1 again, once every service was ready before
  -- it (before that, status() says READY=1 when they are), never once
  -- stopping.
  local ups = 0 -- reloads whose starts are under way (READY=1 once none is)
  local brought_up = false -- the bring-up's sv:up() returned true
  local reloading = 0 -- of them, still under way (to their task's end)
  local bring_up -- the bring-up's task, while it waits for them
  local function reload_over()
    reloading = reloading - 1
    if reloading == 0 and bring_up then bring_up:wake() end
  end
  local function reloaded()
    if stopping then return end
    -- the states as they are now (one step of the supervisor: an end or
    -- a start done that it has not looked at yet is seen, and told), and
    -- STATUS= comes before READY=1, so that the reload ends on the count
    -- it reached
    pcall(sv.status, sv)
    local was = announced
    status()
    if was then
      notify("state", "READY=1")
    elseif brought_up then
      -- (the bring-up was done while this reload's starts were under way)
      announce()
    end
  end

  -- SIGHUP: the file again, the difference applied, in a task of its own:
  -- the signals are read meanwhile (a SIGTERM while the services it stops
  -- take their kill_grace stops the command then). One at a time: a
  -- SIGHUP while one is applied is taken once that is done (the file read
  -- then), as one however many came.
  local applying, again = false, false
  -- The starts of a reload that a SIGHUP taken after it superseded: the
  -- next one makes them, of those its file keeps (it starts what it
  -- changes itself), or, refused, all of them. (Made as the first ended,
  -- they started what the newer file had removed or changed: a one-shot
  -- run from a file already gone, a service started to be stopped again.)
  local carried = {}
  local function carried_starts(services)
    local list = {}
    for name in pairs(carried) do
      if services[name] then list[#list + 1] = name end
    end
    carried = {}
    table.sort(list)
    return list
  end
  local reload
  function reload()
    if applying then
      again = true
      return
    end
    reloading = reloading + 1
    notify("reload", string.format("RELOADING=1\nMONOTONIC_USEC=%d", math.floor(core.now() * 1e6)))
    local function refused(why)
      log.show("appstart: reload: ", log.raised(why), " (the services are left as they were)\n")
      local list = stopping and {} or carried_starts(current.services)
      if #list == 0 then
        if ups == 0 then reloaded() end
        return reload_over()
      end
      ups = ups + 1
      appstart.spawn(function()
        sv:up(table.unpack(list))
        ups = ups - 1
        if ups == 0 and not stopping then reloaded() end
        reload_over()
      end)
    end
    local new, err = M.load(o.file)
    -- checked whole first
    if new then
      local ok, e = pcall(supervisor_of, new)
      if not ok then new, err = nil, e end
    end
    if not new then return refused(err) end
    -- (read under pcall too: a strict services table raises for a name it
    -- has not, which the difference asks for)
    local diffed, added, removed, changed = pcall(M.diff, current, new)
    if not diffed then return refused(added) end
    -- the configs of what it adds, made (checked) now: those are added
    -- below, once what they replace has stopped (kill_grace later at
    -- most), as they were checked; checked again then, a user deleted
    -- meanwhile failed the add, and the reload with it. (-1: level 0 for
    -- error(), no position, as for the check above)
    local cfgs = {}
    for _, list in ipairs { changed, added } do
      for _, name in ipairs(list) do
        local made_cfg, cfg = pcall(sopts.service, name, new.services[name], "appstart.supervisor", -1)
        if not made_cfg then return refused(cfg) end
        cfgs[name] = cfg
      end
    end
    -- the file's own fields: on_event from now on, parallel for the starts
    -- from now on, log for the services added from now on (those that use
    -- it are changed: removed and added again below)
    supervisor_internals.set_on_event(sv, new.on_event)
    supervisor_internals.set_parallel(sv, new.parallel)
    supervisor_internals.set_log(sv, new.log)
    local going = {}
    for _, list in ipairs { removed, changed } do
      for _, name in ipairs(list) do going[#going + 1] = name end
    end
    -- (a stop read with this SIGHUP, in the same batch, comes first: what
    -- the reload would start is not started once the command stops, or
    -- sv:up would take back sv:down's goals and the stop wait for good;
    -- and READY=1 comes once every reload's starts are done: counted from
    -- here, its stops and its starts)
    applying = true
    ups = ups + 1
    appstart.spawn(function()
      -- what goes is stopped at once, dependents first, as sv:down stops
      -- (one remove after another waited for each one's whole stop)
      if #going > 0 and not supervisor_internals.stop_all(sv, going) then
        applying, ups = false, ups - 1
        if again and not stopping then
          again = false
          reload()
        end
        if ups == 0 and not stopping then reloaded() end
        return reload_over()
      end
      -- What the reload applied: the new file's services, but those it
      -- could not remove or add (said on stderr, and left as they are: a
      -- next SIGHUP tries them again). Nothing raises out of this task: it
      -- would end the command, every service with it.
      local services = {}
      for name, spec_ in next, new.services do services[name] = spec_ end
      local why = {} -- name -> why its remove or add failed, the last time
      -- dependents first: one still named by another waits for its turn
      while #going > 0 do
        local progress = false
        for i = #going, 1, -1 do
          local ok, e = pcall(sv.remove, sv, going[i])
          if ok then
            table.remove(going, i)
            progress = true
          else
            why[going[i]] = e
          end
        end
        if not progress then break end
      end
      local kept = {} -- (the old service, not removed)
      for _, name in ipairs(going) do
        kept[name] = true
        services[name] = current.services[name]
        log.show("appstart: reload: ", printable(name) .. ": not removed: " .. log.raised(why[name])
          .. " (left as it was)", "\n")
      end
      for _, name in ipairs(changed) do
        if not kept[name] then came_up[name] = nil end
      end
      for _, name in ipairs(removed) do
        if not kept[name] then
          states[name] = nil
          came_up[name] = nil
          total = total - 1
        end
      end
      -- in dependency order: what a service names must exist when it is
      -- added
      local pending = {}
      for _, name in ipairs(changed) do
        if not kept[name] then pending[#pending + 1] = name end
      end
      for _, name in ipairs(added) do
        pending[#pending + 1] = name
        states[name] = "stopped"
        total = total + 1
      end
      while #pending > 0 do
        local progress = false
        for i = #pending, 1, -1 do
          local name = pending[i]
          local spec_ = new.services[name]
          -- (as checked at the SIGHUP)
          sopts.checked(name, spec_, cfgs[name])
          local ok, e = pcall(sv.add, sv, name, spec_)
          sopts.checked(name, spec_, nil)
          if ok then
            table.remove(pending, i)
            progress = true
          else
            why[name] = e
          end
        end
        if not progress then break end
      end
      for _, name in ipairs(pending) do
        services[name] = nil
        states[name] = nil
        total = total - 1
        log.show("appstart: reload: ", printable(name) .. ": not added: " .. log.raised(why[name]), "\n")
      end
      local applied = {}
      for k, v in next, new do applied[k] = v end
      applied.services = services
      current = applied
      if not o.quiet and not o.json then
        log.show("", string.format("appstart: reload: %d added, %d removed, %d changed", #added, #removed,
          #changed), "\n")
      end
      applying = false
      local starting = {}
      if not stopping then
        local seen = {}
        for _, list in ipairs { changed, added } do
          for _, name in ipairs(list) do
            -- (what it added: not what it left out, nor kept)
            if services[name] == new.services[name] and not kept[name] then
              starting[#starting + 1], seen[name] = name, true
            end
          end
        end
        for _, name in ipairs(carried_starts(services)) do
          if not seen[name] then starting[#starting + 1] = name end
        end
      end
      if again and not stopping then
        -- (superseded: its starts are the next reload's)
        again = false
        for _, name in ipairs(starting) do carried[name] = true end
        starting = {}
        reload()
      end
      -- the reload is done (READY=1) once what it started is up, or has
      -- failed to come up: systemctl reload returns then
      if #starting > 0 and not stopping then sv:up(table.unpack(starting)) end
      ups = ups - 1
      if ups == 0 and not stopping then reloaded() end
      reload_over()
    end)
  end

  local code = 0
  -- (nor may its callbacks, as they run: on_event, a service's on_exit;
  -- what they raise is said, as any error of theirs)
  local exit = os.exit
  rawset(os, "exit", exit_refused)
  local ok, err = pcall(appstart.run, function()
    manager:serve()
    -- the outer watchdog, when the outer supervisor asks for one
    local wd, wd_pid
    if outer then wd, wd_pid = watchdog_usec() end
    local pinger
    if wd and (not wd_pid or wd_pid == core.pid()) then
      -- (half the period, as sd_watchdog_enabled's users do; once a
      -- millisecond at most: a period of 1 us is not met by pinging in a
      -- busy loop)
      local every = math.max(wd / 2e6, 0.001)
      pinger = appstart.spawn(function()
        while loop.sleep(every) ~= nil do notify("ping", "WATCHDOG=1") end
      end)
    end
    appstart.spawn(function()
      local up, e = sv:up()
      while not up and not stopping do
        local will = supervisor_internals.will_come(sv, e.service)
        if e.code == "stopped" or will == nil then
          -- a reload replaced (or removed) a service still coming up: once
          -- the reloads under way are done, what has not been ready yet
          -- (what replaced it included) is waited for, then READY=1 as
          -- for the whole
          bring_up = loop.task()
          while reloading > 0 and not stopping do loop.wait(nil) end
          bring_up = nil
          if stopping then break end
        else
          -- a start failed: the bring-up goes on while the policy will
          -- start it again (a restart after its delay); it is over, not
          -- up, once that one will not come (failed, ended with no
          -- restart, or needs one that will not come)
          if not will then break end
        end
        local rest = {}
        for name in pairs(current.services) do
          if not came_up[name] and supervisor_internals.will_come(sv, name) then rest[#rest + 1] = name end
        end
        up, e = true, nil
        if #rest > 0 then up, e = sv:up(table.unpack(rest)) end
      end
      -- (READY=1 once the starts of every reload taken are done too: a
      -- reload's service still coming up is not up)
      if up then
        brought_up = true
        if ups == 0 then announce() end
      end
      -- (not for a service the command stopped: it stops, or a reload
      -- replaced or removed that service, and starts what replaced it)
      if not up and not stopping and e.code ~= "stopped" and not o.quiet and not o.json then
        log.show("appstart: not every service came up: ", printable((e.service and e.service .. ": " or "")
          .. tostring(e)), "\n")
      end
    end)
    while true do
      if loop.wait(signals:fd()) == nil then break end
      local stop = false
      for _, got in ipairs(signals:read()) do
        local name = core.signame(got.signal)
        if name == "HUP" then reload()
        else
          stop = true
          if name ~= "TERM" and name ~= "INT" and code == 0 then code = 128 + got.signal end
        end
      end
      if stop then break end
    end
    stopping = true
    if bring_up then bring_up:wake() end
    notify("state", "STOPPING=1")
    -- (yields: a reload task of this batch's SIGHUP runs, sees stopping)
    sv:down()
    -- every service stopped: the callbacks of the stop (on_exit, on_event's
    -- "stopped") are told, within the longest kill_grace of the services;
    -- one still waiting then is cancelled, not waited for, as appstart.run
    -- would wait for it (for good, if it never returns)
    local deadline = core.now() + callbacks_grace(current)
    while not supervisor_internals.callbacks_done(sv) and core.now() < deadline do loop.sleep(0.01) end
    supervisor_internals.cancel_callbacks(sv)
    if pinger then pinger:cancel() end
    manager:stop()
  end)
  rawset(os, "exit", exit)
  -- The last words: how many lines stderr did not take and how many
  -- events were not written, said however long stderr takes them (as the
  -- command's last words: nothing waits on the command now; a signal
  -- that ends it ends it there). SIGPIPE stays blocked: a reader gone is
  -- no reason to die, the exit code says how it went.
  local pipe = core.signals { "PIPE" }
  local _ <close> = command.last_words(signals)
  local last = log.unshown()
  if unwritten > 0 then
    last = last .. string.format("appstart: %d event%s not written (stdout was not read)\n", unwritten,
      unwritten == 1 and "" or "s")
  end
  if last ~= "" then io.stderr:write(last) end
  if pipe then
    pipe:read()
    pipe:close()
  end
  if not ok then error(err, 0) end
  return code
end

return M
