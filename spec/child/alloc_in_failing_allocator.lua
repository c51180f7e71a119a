--- Run by spec/alloc_spec.lua in luahost (spec/fixtures/luahost.c), whose
-- allocator fails on request: every start under every allocation failure
-- must end in a working app or a clean "not enough memory" error, and
-- leave nothing behind. Prints one line per round and a summary. Mode
-- "connect-sticky": a probe's connects (core.connect: refused over tcp, to
-- a missing unix socket, to a listening one) instead of a start, each
-- round's outcome "started" when all three returned.
-- luacheck: globals set_alloc_limit alloc_count alloc_failures kill_and_reap
local appstart = require "appstart"
local core = require "appstart.core"
local testing = require "appstart.testing"
local F = os.getenv("APPSTART_FIXTURES") .. "/fixture"
local MODE = arg[1] or "sticky"  -- sticky | once | first, with "-loop": inside appstart.run
local TIME_CAP = tonumber(arg[2]) or 4 -- seconds
local now = core.now
local set_alloc_limit, alloc_count, alloc_failures = set_alloc_limit, alloc_count, alloc_failures

local K = require "childkit"
local out, quiet, fds = K.out, K.quiet, K.fds
local CONNECT = MODE:match("^connect%-") ~= nil
local listener -- connect mode: the app whose unix socket listens
--- Our children, each { pid =, zombie = } (zombie, or gone by now).
local function children()
  local list = {}
  for _, pid in ipairs(K.children()) do
    local state = K.state(pid)
    if not (listener and pid == listener.pid) then
      list[#list + 1] = { pid = pid, zombie = state == "Z" or state == "X" or state == nil }
    end
  end
  return list
end

local SOCK = os.tmpname()
os.remove(SOCK)
--- A probe's three connects, each closed: true (raises as core.connect
-- does, out of memory).
local function connects()
  local c = core.connect("tcp", "127.0.0.1", 1)
  if type(c) == "userdata" then c:close() end
  core.connect("unix", SOCK .. ".missing")
  c = core.connect("unix", SOCK)
  if type(c) == "userdata" then c:close() end
  return true
end
local function show_children(list)
  local t = {}
  for _, c in ipairs(list) do t[#t + 1] = c.pid .. (c.zombie and ":Z" or ":live") end
  return "[" .. table.concat(t, ",") .. "]"
end

local kill_and_reap = kill_and_reap

local function options()
  return { argv = { F, "line=3:alloc", "pause" }, ready = "fd", ready_timeout = 0.5, kill_grace = 0.2,
    log = quiet }
end

--- Collect, reap, and wait (bounded) for what the library killed to go.
-- (it was signalled before the collection returned: 0.3 s is plenty)
local function settle()
  local deadline = now() + 0.3
  while true do
    collectgarbage()
    collectgarbage()
    testing.reap()
    local kids = children()
    if #kids == 0 or now() >= deadline then return kids end
    core.wait_readable(-1, 0.005)
  end
end

--- One start with the allocator armed to fail at the n-th allocation
-- (n = nil: not armed), blocking or inside appstart.run (where the loop's own
-- machinery runs while armed too). Returns the outcome, whether the failure
-- fired, the seconds taken and the allocations made.
local function round(n, mode, in_loop)
  local opts = options()
  local ok, app, err, fired, used
  local t0 = now()
  local function attempt()
    local before = alloc_count()
    if n then set_alloc_limit(n, mode) end
    if CONNECT then
      ok, app = pcall(connects)
      if ok then app = "started" end
    else
      ok, app, err = pcall(appstart.start, opts)
    end
    fired = alloc_failures() > 0
    set_alloc_limit(nil)
    used = alloc_count() - before
    if ok and app and not CONNECT then
      local how = app:terminate(1)
      if not (how and how.signal == 15) then app = "started-bad-terminate:" .. tostring(how and next(how)) end
    end
  end
  local run_ok, run_err = true, nil
  if in_loop then
    run_ok, run_err = pcall(appstart.run, attempt)
    set_alloc_limit(nil) -- the loop may have failed before the task lifted it
    fired = fired or alloc_failures() > 0
  else
    attempt()
  end
  local took = now() - t0
  local outcome
  if not run_ok then
    -- the loop itself ran out (its error, or a task's with a traceback)
    outcome = tostring(run_err):match("^not enough memory") and "nomem" or ("run-raised:" .. tostring(run_err))
  elseif ok and type(app) == "string" then
    outcome = app
  elseif ok and app then
    outcome = "started"
  elseif ok then
    outcome = "returned:" .. tostring(err and err.code) .. ":" .. tostring(err)
  elseif app == "not enough memory" then
    outcome = "nomem"
  else
    outcome = "raised:" .. tostring(app)
  end
  return outcome, fired, took, used or 0
end

-- warm up (first uses create what later starts reuse), then measure how many
-- allocations one start makes: the most of a few
local in_loop = MODE:match("%-loop$") ~= nil
local mode = MODE:gsub("%-loop$", ""):gsub("^connect%-", "")
if CONNECT then
  listener = assert(appstart.start { argv = { F, "listen=unix:" .. SOCK, "pause" }, ready = { connect = "unix:" .. SOCK },
    log = quiet })
end
local per_start = 0
for i = 1, 6 do
  local outcome, _, _, used = round(nil, nil, in_loop)
  assert(outcome == "started", outcome)
  if i > 1 and used > per_start then per_start = used end
end
settle()

local initial_fds = fds()
local t_all = now()
do
  local name = MODE
  local counts = { started = 0, nomem = 0, other = 0, fd_leaks = 0, child_leaks = 0, slow = 0 }
  local n, quiet_rounds, last_n = 0, 0, 0
  local t_start, capped = now(), false
  -- on past per_start until several rounds in a row finish before their N-th
  -- allocation: every allocation of a start has then been failed once
  while quiet_rounds < 8 and n < 3 * per_start + 50 do
    if now() - t_start > TIME_CAP then capped = true; break end
    n = n + 1
    local outcome, fired, took = round(n, mode, in_loop)
    local kids = settle()
    local fd_now = fds()
    local fds_ok = fd_now == initial_fds
    out("row", name, n, fired and "fired" or "unfired", (outcome:gsub("%s+", " ")),
      fds_ok and "same" or ("changed:" .. fd_now), show_children(kids), string.format("%.3f", took))
    if outcome == "started" then counts.started = counts.started + 1
    elseif outcome == "nomem" then counts.nomem = counts.nomem + 1
    else counts.other = counts.other + 1 end
    if not fds_ok then counts.fd_leaks = counts.fd_leaks + 1 end
    if #kids > 0 then
      counts.child_leaks = counts.child_leaks + 1
      for _, c in ipairs(kids) do kill_and_reap(c.pid) end -- so the next round starts clean
    end
    -- a round that lasts as long as its ready timeout hung: a wait that
    -- never woke although the app was ready
    if took > 0.4 then counts.slow = counts.slow + 1 end
    if fired then quiet_rounds = 0 else quiet_rounds = quiet_rounds + 1 end
    last_n = n
  end
  out("summary", name, last_n, counts.started, counts.nomem, counts.other, counts.fd_leaks, counts.child_leaks,
    counts.slow, capped and "capped" or quiet_rounds >= 8 and "covered" or "uncovered", per_start)
end
if listener then
  listener:terminate(1)
  os.remove(SOCK)
end
out("time", string.format("%.2f", now() - t_all))
out("done")
