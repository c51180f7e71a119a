--- Allocation failure inside Lua during appstart.start. A small Lua host
-- (spec/fixtures/luahost.c) makes its allocator fail at the N-th allocation
-- of a start, for every N up to past the last allocation a start makes,
-- three ways: "sticky" (every allocation from the N-th on fails, until
-- lifted), "once" (the N-th request fails, Lua's retry included; later ones
-- succeed) and "first" (only the first try: Lua's emergency collection runs
-- in the middle of the start, then the retry succeeds); "sticky" and "once"
-- also inside appstart.run, where the loop's own machinery runs while the
-- failure is armed. Each round must end in a working app or a clean "not
-- enough memory" error, and once the garbage collector has run, leave no
-- descriptor, zombie or live app behind. The same goes for an error a
-- callback raises in the middle of a start (TestErrorsRaisedDuringStart).
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local HOST = S.fixtures .. "/luahost"

-- Runs in luahost, one host per mode (so a mode that leaks cannot taint
-- the next). Prints one line per round ("row", mode, N, whether the failure
-- fired, outcome, descriptors, children left, seconds) and a summary.

local reports = {} -- mode -> parsed output, each mode run once

local function run_host(mode)
  if reports[mode] then return reports[mode] end
  local exe = io.open(HOST)
  lu.assertNotNil(exe, HOST .. " is missing: the Makefile builds it with the fixtures")
  exe:close()
  local script = S.spec_dir .. "/child/alloc_in_failing_allocator.lua"
  local output = S.tmpname("alloc-out")
  -- the host loads core.so, ASan-instrumented under `make sanitize`: the
  -- runtime goes first. Output to a file and `timeout`, so neither a leaked
  -- app holding a pipe nor a hang can stall the runner.
  local shell = S.san_prefix
    .. 'exec timeout --foreground -s KILL 90 "$0" "$@"'
  local ok, how, code = os.execute(string.format("sh -c '%s' '%s' '%s' %s 4 >'%s' 2>&1", shell, HOST, script, mode,
    output))
  local text = S.read(output) or ""
  local report = { ok = ok, exit = tostring(how) .. " " .. tostring(code), text = text, rows = {}, summary = {} }
  for line in text:gmatch("[^\n]+") do
    local fields = {}
    for v in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = v end
    if fields[1] == "row" then
      local rows = report.rows[fields[2]] or {}
      report.rows[fields[2]] = rows
      rows[#rows + 1] = { n = tonumber(fields[3]), fired = fields[4], outcome = fields[5], fds = fields[6],
        kids = fields[7], line = line }
    elseif fields[1] == "summary" then
      report.summary[fields[2]] = { rounds = tonumber(fields[3]), started = tonumber(fields[4]),
        nomem = tonumber(fields[5]), other = tonumber(fields[6]), fd_leaks = tonumber(fields[7]),
        child_leaks = tonumber(fields[8]), slow = tonumber(fields[9]), coverage = fields[10],
        allocations = tonumber(fields[11]), line = line }
    elseif fields[1] == "time" then
      report.time = tonumber(fields[2])
    elseif fields[1] == "done" then
      report.done = true
    end
  end
  reports[mode] = report
  return report
end

local function assert_host_ran(r)
  lu.assertTrue(r.ok and r.done, "luahost failed (" .. r.exit .. "):\n" .. r.text)
end

--- The first rounds that broke a rule, for the failure message.
local function offenders(rows, bad)
  local t = {}
  for _, row in ipairs(rows or {}) do
    if bad(row) then
      t[#t + 1] = row.line
      if #t == 6 then t[#t + 1] = "..."; break end
    end
  end
  return table.concat(t, "\n")
end

local function assert_mode(mode, must_run_out)
  local r = run_host(mode)
  assert_host_ran(r)
  local sum, rows = r.summary[mode], r.rows[mode]
  lu.assertNotNil(sum, mode .. ": no summary:\n" .. r.text)
  print(string.format("\n    %s: %d rounds (a start makes about %d allocations): %d started, %d out of memory, "
    .. "%d other; rounds leaking descriptors %d, children %d", mode, sum.rounds, sum.allocations, sum.started, sum.nomem,
    sum.other, sum.fd_leaks, sum.child_leaks))
  lu.assertEquals(sum.other, 0, "every round ends in a working app or 'not enough memory':\n"
    .. offenders(rows, function(row) return row.outcome ~= "started" and row.outcome ~= "nomem" end))
  lu.assertEquals(sum.fd_leaks, 0, "descriptors left behind:\n"
    .. offenders(rows, function(row) return row.fds ~= "same" end))
  lu.assertEquals(sum.child_leaks, 0, "children (zombies or live apps) left behind once GC ran:\n"
    .. offenders(rows, function(row) return row.kids ~= "[]" end))
  lu.assertEquals(sum.slow, 0, "no round may hang to its ready timeout:\n"
    .. offenders(rows, function(row) return tonumber(row.line:match("([%d.]+)$")) > 0.4 end))
  lu.assertEquals(sum.coverage, "covered", "every allocation of a start failed once, in the time allowed"
    .. " (the last rounds finish before their failure fires)")
  if must_run_out then lu.assertTrue(sum.nomem > 0, "some rounds must fail for memory") end
  lu.assertTrue(sum.started > 0, "some rounds must start the app")
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_failing_every_allocation_from_the_nth_on_gives_an_app_or_a_clean_error()
  assert_mode("sticky", true)
end

function T.test_failing_only_the_nth_allocation_gives_an_app_or_a_clean_error()
  assert_mode("once", true)
end

function T.test_an_emergency_collection_at_any_allocation_of_a_start_is_harmless()
  assert_mode("first", false)
end

function T.test_inside_appstart_run_failing_every_allocation_from_the_nth_on_gives_an_app_or_a_clean_error()
  assert_mode("sticky-loop", true)
end

function T.test_inside_appstart_run_failing_only_the_nth_allocation_gives_an_app_or_a_clean_error()
  assert_mode("once-loop", true)
end

--- A probe's connect (core.connect, over tcp and unix sockets, refused,
-- missing, accepted) at every allocation failure: "not enough memory" or
-- its result, and no socket, no resolver's list left behind (the latter
-- seen under `make sanitize`).
function T.test_a_probes_connect_failing_every_allocation_from_the_nth_on_leaks_nothing()
  assert_mode("connect-sticky", true)
end

function T.test_the_hosts_leave_no_stray_process()
  for _, mode in ipairs { "sticky", "once", "first", "sticky-loop", "once-loop", "connect-sticky" } do
    assert_host_ran(run_host(mode))
  end
  lu.assertEquals(S.strays(), {})
end

-------------------------------------------------------------------------------
-- errors a caller's function (its log) raises while a start is under way:
-- the start raises them, and must leave nothing running

local E = {}

function E.tearDown() S.kill_strays() end

--- The start raises `pattern`; afterwards (GC run) nothing is left.
local function raises_and_leaves_nothing(opts, pattern)
  local before = S.snapshot()
  local ok, err = pcall(appstart.start, opts)
  lu.assertFalse(ok, "the start raised")
  lu.assertStrContains(tostring(err), pattern)
  collectgarbage()
  collectgarbage()
  -- what the library killed gets a bounded moment to go
  local deadline = S.core.now() + 2
  repeat
    S.testing.reap()
    if #S.children() == 0 then break end
    S.core.wait_readable(-1, 0.01)
  until S.core.now() >= deadline
  S.assert_clean(before)
end

-- (on_status is not among them: a callback of the user's, whose error is
-- logged and the start goes on)
function E.test_on_status_raising_on_the_step_that_brings_ready_is_logged_and_the_app_handed_over()
  -- STATUS= and READY=1 in one datagram: on_status runs on the step that
  -- finds the app ready, before the app is handed over
  local before = S.snapshot()
  local logs, rec = S.recorder()
  local app = assert(appstart.start { argv = { S.fixture, "notify=STATUS=almost\\nREADY=1", "pause" },
    ready = "notify", log = rec, on_status = function() error("on_status failed") end })
  lu.assertEquals(app.state, "ready")
  lu.assertStrContains(table.concat(logs, "\n"), "fixture: on_status raised ")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

function E.test_a_log_function_raising_once_the_app_is_ready_leaves_no_app_running()
  raises_and_leaves_nothing({ argv = { S.fixture, "line=3:logged", "pause" }, ready = "fd",
    log = function(_, message) if message:match("ready after") then error("log failed") end end }, "log failed")
end

return { TestAllocationFailure = T, TestErrorsRaisedDuringStart = E }
