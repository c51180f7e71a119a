--- A signal storm (SIGUSR1, SIGALRM, SIGCHLD, each at 1 kHz) during every
-- kind of wait. The storm hits a child Lua, never the test runner: that Lua
-- installs real handlers (luv signal handles, as a host program would), starts
-- the storm fixture aimed at itself, then runs each wait three ways (blocking,
-- inside appstart.run, blocking on the polling fallback) and prints one line
-- per case and one per leak check, which this file parses and asserts.
local lu = require "luaunit"
local S = require "support"

local HZ = 3000 -- three signals in turn: each at 1 kHz


local CASES = { "fd_start", "notify_start", "helper_start", "timeout_start", "died_start", "wait_with_timeout",
  "wait_without_timeout", "sleep", "run_20_concurrent_starts", "terminate_ignoring_term" }

local report -- parsed once, shared by the tests

local function run_child()
  if report then return report end
  local script = S.spec_dir .. "/child/storm_signals_during_every_wait.lua"
  local storm_log = S.tmpname("storm-log")
  local dir = S.tmpname("storm-files")
  assert(os.execute("mkdir " .. dir))
  -- the child inherits LUA_PATH, LUA_CPATH, APPSTART_*; under `make
  -- sanitize` the ASan runtime is preloaded again for it
  -- output to a file, not a pipe: apps a broken library leaves running would
  -- hold a pipe open and hang the runner; `timeout` bounds a child that
  -- hangs (--foreground keeps it in this process group, for S.strays)
  local output = S.tmpname("storm-out")
  local shell = S.san_prefix
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
