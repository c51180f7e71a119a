--- A signal storm (SIGUSR1, SIGALRM, SIGCHLD, each at 1 kHz) during every
-- kind of wait. The storm hits a child Lua, never the test runner: that Lua
-- installs real handlers (luv signal handles, as a host program would), starts
-- the storm fixture aimed at itself, then runs each wait three ways (blocking,
-- inside appstart.run, blocking on the polling fallback) and prints one line
-- per case and one per leak check, which this file parses and asserts.
local lu = require "luaunit"
local S = require "support"

local HZ = 3000 -- three signals in turn: each at 1 kHz

local CHILD_SCRIPT = [==[
local uv = require "luv"
local appstart = require "appstart"
local core = require "appstart.core"
local F = os.getenv("APPSTART_FIXTURES") .. "/fixture"
local storm_log, tmpdir, HZ = arg[1], arg[2], arg[3]
local now = core.now

local K = require "childkit"
local out, quiet, read, fds, children = K.out, K.quiet, K.read, K.fds, K.children
local status_field = K.status_field
local function alive(pid)
  local st = status_field(pid, "State")
  return st ~= nil and not st:match("^Z")
end
local ntmp = 0
local function tmp(stem)
  ntmp = ntmp + 1
  return string.format("%s/%s-%d", tmpdir, stem, ntmp)
end
local function timed(fn, ...)
  local t0 = now()
  local r = table.pack(fn(...))
  return now() - t0, table.unpack(r, 1, r.n)
end
local function show(how)
  if type(how) ~= "table" then return tostring(how) end
  if how.code then return "code=" .. how.code end
  if how.signal then return "signal=" .. how.signal end
  return "{}"
end

-- real handlers, installed the way a luv program does (the loop never runs:
-- the handlers only write to libuv's pipe, which fills and then drops)
local handles = {}
for _, name in ipairs { "sigusr1", "sigalrm", "sigchld" } do
  local h = uv.new_signal()
  assert(h:start(name, function() end))
  handles[#handles + 1] = h
end
local caught = tonumber(status_field("self", "SigCgt"), 16) or 0
local want = (1 << 9) | (1 << 13) | (1 << 16) -- USR1 (10), ALRM (14), CHLD (17)
out("handlers", (caught & want) == want and "ok" or "missing", status_field("self", "SigCgt"))

local initial = fds()
local storm = assert(appstart.start { argv = { F, "storm=parent:60:" .. HZ }, ready = "none",
  stderr = storm_log, log = quiet })
local base = fds()
local storm_started = now()

-- each case: ok (boolean), detail, and pids that must be gone afterwards
local cases = {}
local order = {}
local function case(name, fn)
  cases[name] = fn
  order[#order + 1] = name
end

case("fd_start", function()
  local st = tmp("status")
  local app, err = appstart.start { argv = { F, "status=" .. st, "line=3:fd-app", "pause" }, ready = "fd",
    ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local s = read(st) or ""
  local blk, ign, cgt = s:match("SigBlk:%s*(%x+)"), s:match("SigIgn:%s*(%x+)"), s:match("SigCgt:%s*(%x+)")
  local how = app:terminate(1)
  -- 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): glibc's sigaction
  -- refuses them, and a launcher started through popen/posix_spawn (as this
  -- one is) has them ignored, so an app inherits that; every other signal
  -- must be back at its default
  local internal = (1 << 31) | (1 << 32)
  local clean_signals = blk and tonumber(blk, 16) == 0 and tonumber(cgt, 16) == 0
    and tonumber(ign, 16) & ~internal == 0
  return app.name == "fd-app" and clean_signals and how.signal == 15,
    string.format("name=%s blk=%s ign=%s cgt=%s how=%s", app.name, blk, ign, cgt, show(how)), { app.pid }
end)

case("notify_start", function()
  local app, err = appstart.start { argv = { F, "notify=STATUS=up", "notify=READY=1", "pause" },
    ready = "notify", ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local how = app:terminate(1)
  return app.state == "exited" and app.status == "up" and how.signal == 15,
    string.format("status=%s how=%s", tostring(app.status), show(how)), { app.pid }
end)

case("helper_start", function()
  local app, err = appstart.start { helper = { F, "fork", "line=4:helped", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", ready_fd = 4, ready_timeout = 10, pid_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local how = app:terminate(1)
  return app.name == "helped" and how.signal == 15,
    string.format("name=%s how=%s", app.name, show(how)), { app.pid }
end)

case("timeout_start", function()
  local took, app, err = timed(appstart.start, { argv = { F, "pause" }, ready = "fd", ready_timeout = 0.3,
    kill_grace = 0.2, log = quiet })
  if app then app:terminate(0.2); return false, "started" end
  return err.code == "timeout" and err.status and err.status.signal == 15 and took >= 0.3 and took < 3,
    string.format("code=%s status=%s took=%.3f", err.code, show(err.status), took), { err.pid }
end)

case("died_start", function()
  local took, app, err = timed(appstart.start, { argv = { F, "exit=7" }, ready = "fd", ready_timeout = 10, log = quiet })
  if app then app:terminate(0.2); return false, "started" end
  return err.code == "died" and err.status and err.status.code == 7 and took < 3,
    string.format("code=%s status=%s took=%.3f", err.code, show(err.status), took), { err.pid }
end)

case("wait_with_timeout", function()
  local app, err = appstart.start { argv = { F, "line=3:w", "pause" }, ready = "fd", ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how, why = timed(app.wait, app, 0.2)
  local term = app:terminate(1)
  return how == nil and why == "timeout" and took >= 0.2 and took < 2 and term.signal == 15,
    string.format("wait=%s,%s took=%.3f terminate=%s", show(how), tostring(why), took, show(term)), { app.pid }
end)

case("wait_without_timeout", function()
  local app, err = appstart.start { argv = { F, "line=3:w", "sleep=0.2", "exit=5" }, ready = "fd",
    ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how = timed(app.wait, app)
  return how ~= nil and how.code == 5 and took < 3,
    string.format("wait=%s took=%.3f", show(how), took), { app.pid }
end)

case("sleep", function()
  local took = timed(appstart.sleep, 0.3)
  return took >= 0.3 and took < 2, string.format("took=%.3f", took), {}
end)

case("run_20_concurrent_starts", function()
  local names, hows, failures, pids = {}, {}, {}, {}
  appstart.run(function()
    for i = 1, 20 do
      appstart.spawn(function()
        local app, err = appstart.start { argv = { F, "sleep=0.1", "line=3:n" .. i, "pause" }, ready = "fd",
          ready_timeout = 10, log = quiet }
        if not app then failures[#failures + 1] = tostring(err); return end
        pids[#pids + 1] = app.pid
        names[i] = app.name
        hows[i] = app:terminate(1)
      end)
    end
  end)
  local good = 0
  for i = 1, 20 do
    if names[i] == "n" .. i and hows[i] and hows[i].signal == 15 then good = good + 1 end
  end
  return good == 20 and #failures == 0,
    string.format("good=%d failures=%s", good, table.concat(failures, ";")), pids
end)

case("terminate_ignoring_term", function()
  local app, err = appstart.start { argv = { F, "ignore=TERM", "line=3:stubborn", "pause" }, ready = "fd",
    ready_timeout = 10, kill_grace = 0.2, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how = timed(app.terminate, app)
  return how.signal == 9 and took >= 0.2 and took < 3,
    string.format("how=%s took=%.3f", show(how), took), { app.pid }
end)

--- Bounded wait until only the storm is our child and the given pids are
-- gone; then report descriptors and children.
local function check_clean(mode, name, pids)
  local deadline = now() + 3
  while true do
    core.reap()
    local kids = children()
    local pending = #kids ~= 1 or kids[1] ~= storm.pid
    for _, pid in ipairs(pids or {}) do
      if alive(pid) then pending = true end
    end
    if not pending or now() >= deadline then break end
    core.wait_readable(-1, 0.005)
  end
  local kids = children()
  local extra = {}
  for _, pid in ipairs(kids) do
    if pid ~= storm.pid then extra[#extra + 1] = pid end
  end
  for _, pid in ipairs(pids or {}) do
    if alive(pid) then extra[#extra + 1] = "live:" .. pid end
  end
  out("clean", mode, name, fds() == base and "same" or ("changed:" .. fds()), "[" .. table.concat(extra, ",") .. "]")
end

local modes = {
  { "blocking", function(fn) return fn() end },
  { "loop", function(fn)
    local r
    appstart.run(function() r = table.pack(fn()) end)
    return table.unpack(r, 1, r.n)
  end },
  { "probe", function(fn)
    core.use_pidfd(false)
    local r = table.pack(pcall(fn))
    core.use_pidfd(true)
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end },
}

for _, m in ipairs(modes) do
  local mode, wrap = m[1], m[2]
  for _, name in ipairs(order) do
    -- a loop cannot run inside a loop: the 20 concurrent starts make their own
    if not (mode == "loop" and name == "run_20_concurrent_starts") then
      local okc, ok, detail, pids = pcall(wrap, cases[name])
      if not okc then
        out("case", mode, name, "ERROR", (tostring(ok):gsub("%s+", " ")))
      else
        out("case", mode, name, ok and "ok" or "FAIL", detail)
      end
      check_clean(mode, name, pids)
    end
  end
end

local running = storm:wait(0) == nil
local elapsed = now() - storm_started
local storm_how = storm:terminate(2)
local log = read(storm_log) or ""
local sent, seconds = log:match("storm sent (%d+) .- in ([%d.]+) s")
out("storm", sent or "?", seconds or "?", string.format("%.3f", elapsed), running and "running" or "ended",
  show(storm_how))
-- the handles stay open: closing one without ever running the loop makes
-- luv crash at exit (a luv matter, not appstart's)
core.reap()
local kids = children()
out("final", fds() == initial and "same" or ("changed:" .. fds() .. " vs " .. initial),
  "[" .. table.concat(kids, ",") .. "]")
out("done")
]==]

local CASES = { "fd_start", "notify_start", "helper_start", "timeout_start", "died_start", "wait_with_timeout",
  "wait_without_timeout", "sleep", "run_20_concurrent_starts", "terminate_ignoring_term" }

local report -- parsed once, shared by the tests

local function run_child()
  if report then return report end
  local script = S.tmpname("storm") .. ".lua"
  local f = assert(io.open(script, "w"))
  f:write(CHILD_SCRIPT)
  f:close()
  local storm_log = S.tmpname("storm-log")
  local dir = S.tmpname("storm-files")
  assert(os.execute("mkdir " .. dir))
  -- the child inherits LUA_PATH, LUA_CPATH, APPSTART_*; under `make
  -- sanitize` the ASan runtime is preloaded again for it
  -- output to a file, not a pipe: apps a broken library leaves running would
  -- hold a pipe open and hang the runner; `timeout` bounds a child that
  -- hangs (--foreground keeps it in this process group, for S.strays)
  local output = S.tmpname("storm-out")
  local shell = 'if [ -n "$APPSTART_SAN_PRELOAD" ]; then export LD_PRELOAD="$APPSTART_SAN_PRELOAD"; fi; '
    .. 'exec timeout --foreground -s KILL 120 lua5.4 "$0" "$@"'
  local ok, how, code = os.execute(string.format("sh -c '%s' '%s' '%s' '%s' %d >'%s' 2>&1",
    shell, script, storm_log, dir, HZ, output))
  local text = S.read(output) or ""
  report = { text = text, ok = ok, exit = tostring(how) .. " " .. tostring(code), cases = {}, clean = {} }
  for line in text:gmatch("[^\n]+") do
    local fields = {}
    for v in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = v end
    local kind = fields[1]
    if kind == "case" then
      report.cases[fields[2] .. "." .. fields[3]] = { result = fields[4], detail = fields[5], line = line }
    elseif kind == "clean" then
      report.clean[fields[2] .. "." .. fields[3]] = { fds = fields[4], extra = fields[5], line = line }
    elseif kind == "storm" then
      report.storm = { sent = tonumber(fields[2]), seconds = tonumber(fields[3]), elapsed = tonumber(fields[4]),
        state = fields[5], how = fields[6], line = line }
    elseif kind == "handlers" then
      report.handlers = fields[2]
    elseif kind == "final" then
      report.final = { fds = fields[2], kids = fields[3] }
    elseif kind == "done" then
      report.done = true
    end
  end
  os.remove(script)
  return report
end

local function assert_child_ran(r)
  lu.assertTrue(r.ok and r.done, "child Lua failed (" .. r.exit .. "):\n" .. r.text)
end

local function assert_mode(mode)
  local r = run_child()
  assert_child_ran(r)
  for _, name in ipairs(CASES) do
    if not (mode == "loop" and name == "run_20_concurrent_starts") then
      local key = mode .. "." .. name
      local c, k = r.cases[key], r.clean[key]
      lu.assertNotNil(c, key .. ": no result:\n" .. r.text)
      lu.assertEquals(c.result, "ok", key .. ": " .. c.line)
      lu.assertNotNil(k, key .. ": no leak check:\n" .. r.text)
      lu.assertEquals(k.fds, "same", key .. ": descriptors: " .. k.line)
      lu.assertEquals(k.extra, "[]", key .. ": children or processes left: " .. k.line)
    end
  end
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_the_storm_blew_through_every_case_at_1_khz_per_signal()
  local r = run_child()
  assert_child_ran(r)
  lu.assertEquals(r.handlers, "ok", "luv handlers installed for USR1, ALRM, CHLD")
  lu.assertNotNil(r.storm, r.text)
  lu.assertEquals(r.storm.state, "running", "the storm still blew when the last case ended")
  lu.assertEquals(r.storm.how, "code=0", "the storm ended on SIGTERM and reported")
  lu.assertNotNil(r.storm.sent, "the storm reported its count: " .. r.storm.line)
  -- a generous floor: a third of the asked rate over the whole run
  lu.assertTrue(r.storm.seconds >= 3, "the storm lasted the cases: " .. r.storm.line)
  lu.assertTrue(r.storm.sent >= HZ / 3 * r.storm.seconds, "storm rate too low: " .. r.storm.line)
  print(string.format("\n    storm: %d signals in %.2f s (%.0f per second)", r.storm.sent, r.storm.seconds,
    r.storm.sent / r.storm.seconds))
end

function T.test_blocking_waits_give_the_right_results_under_the_storm()
  assert_mode("blocking")
end

function T.test_waits_inside_appstart_run_give_the_right_results_under_the_storm()
  assert_mode("loop")
end

function T.test_waits_on_the_polling_fallback_give_the_right_results_under_the_storm()
  assert_mode("probe")
end

function T.test_nothing_left_behind_once_the_storm_is_over()
  local r = run_child()
  assert_child_ran(r)
  lu.assertEquals(r.final.fds, "same", "descriptors after the storm")
  lu.assertEquals(r.final.kids, "[]", "children after the storm")
  lu.assertEquals(S.strays(), {}, "stray fixture processes")
end

return { TestSignalStorm = T }
