--- What a newcomer meets at the Lua REPL and in a first script: a wait that
-- ^C interrupts (on a real terminal), a forgotten `ready =` explained, an
-- app's state that tells the truth when read, results that print as what
-- they mean, a failed start said once, callback errors that stay where they
-- belong, signal names, hints where the mistake is known, and option
-- mistakes raised at the caller's line.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F = S.fixture
local q = S.shell_quote
local core = S.core

local start, fail_case = S.starter { ready = "fd", ready_timeout = 3, pid_timeout = 3, kill_grace = 0.5 }

local function has(program)
  return os.execute("command -v " .. program .. " >/dev/null 2>&1")
end

local T = {}

function T.tearDown() S.kill_strays() end

-------------------------------------------------------------------------------
-- 1. ^C interrupts a wait at the REPL

--- A lua5.4 REPL on a terminal of its own (script(1)): `lines` typed one
-- after the other; after the one that prints WAITING, a ^C. Returns what
-- the terminal showed.
local function repl_session(lines)
  local out = S.tmpname("repl")
  local typed = {}
  for _, line in ipairs(lines) do
    typed[#typed + 1] = "printf '%s\\n' " .. q(line)
    if line:find("WAITING", 1, true) then
      -- wait (bounded) until the REPL is in the wait, then type ^C
      typed[#typed + 1] = "i=0; while ! grep -q 'IN-THE-WAIT' " .. q(out) .. " 2>/dev/null; do"
        .. " i=$((i+1)); [ $i -gt 2000 ] && break; sleep 0.005; done; sleep 0.3; printf '\\003'"
      typed[#typed + 1] = "i=0; while ! grep -q 'WAIT-ENDED' " .. q(out) .. " 2>/dev/null; do"
        .. " i=$((i+1)); [ $i -gt 2000 ] && break; sleep 0.005; done"
    end
  end
  typed[#typed + 1] = "printf 'os.exit(0)\\n'"
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  local lua = (preload and ("env LD_PRELOAD=" .. q(preload) .. " ") or "") .. "lua5.4 -i"
  -- bounded: a wait that ^C cannot interrupt must fail the test, not hang
  -- the suite (the pty's hangup then ends the REPL and its app)
  os.execute("(" .. table.concat(typed, "\n") .. "\n) | timeout -s KILL 30 script -qec " .. q(lua)
    .. " /dev/null >" .. out .. " 2>&1")
  return S.read(out) or ""
end

local SETUP = {
  "appstart = require 'appstart'; now = require('appstart.core').now",
  "F = " .. string.format("%q", F),
}

--- The REPL line that waits, printing IN-THE-WAIT first and "took N"
-- after (the markers are built, so the echo of the line typed holds
-- neither).
local function timed(expr)
  return "print('WAITING', 'IN-THE-' .. 'WAIT'); t0 = now(); ok, err = pcall(function() return " .. expr
    .. " end); print('WAIT-' .. 'ENDED'); print('to' .. 'ok', now() - t0, ok, err)"
end

--- What the timed line printed: it raised "interrupted!" within 2 s.
local function assert_interrupted(out, what)
  local took, ok, err = out:match("took\t([%d.e-]+)\t(%a+)\t([^\r\n]*)")
  lu.assertNotNil(took, out)
  lu.assertEquals(ok, "false", out)
  lu.assertStrContains(err, "interrupted!")
  lu.assertTrue(tonumber(took) < 2, what .. " ended after " .. took .. " s")
end

for name, case in pairs {
  wait_with_a_timeout = "app:wait(30)",
  wait_without_a_timeout = "app:wait()",
} do
  T["test_ctrl_c_interrupts_" .. name .. "_at_once"] = function()
    lu.skipIf(not has("script"), "needs script(1) for a terminal")
    -- the app ignores SIGINT (the terminal's ^C reaches it too)
    local pidfile = S.tmpname("pid")
    local lines = { SETUP[1], SETUP[2],
      "app = assert(appstart.start{ argv = { F, 'ignore=INT', 'pidfile=" .. pidfile .. "', 'line=3:x', 'pause' }, "
        .. "ready = 'fd' })",
      timed(case), "print('state', app.state); app:terminate(1)" }
    local out = repl_session(lines)
    assert_interrupted(out, "the wait")
    lu.assertStrContains(out, "state\tready")
    lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
  end
end

function T.test_ctrl_c_cancels_a_start_and_leaves_nothing()
  lu.skipIf(not has("script"), "needs script(1) for a terminal")
  local pidfile = S.tmpname("pid")
  -- the default protocol, an app that never says READY=1
  local out = repl_session { SETUP[1], SETUP[2],
    timed("appstart.start{ argv = { F, 'ignore=INT', 'pidfile=" .. pidfile .. "', 'pause' } }") }
  assert_interrupted(out, "the start")
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
end

-- So does ^C in the h:wait() of a start of appstart.begin: the start is
-- ended before the error goes on (it was left as it was, its app
-- running).
function T.test_ctrl_c_in_the_wait_of_a_begun_start_ends_it()
  lu.skipIf(not has("script"), "needs script(1) for a terminal")
  local pidfile = S.tmpname("pid")
  local out = repl_session { SETUP[1], SETUP[2],
    "h = appstart.begin{ argv = { F, 'ignore=INT', 'pidfile=" .. pidfile .. "', 'pause' }, kill_grace = 0.5 }",
    timed("h:wait()"), "print('ended', h.done, h.err and h.err.code)" }
  assert_interrupted(out, "the start")
  lu.assertStrContains(out, "ended\ttrue\tcancelled")
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
end

-- ^C that lands in a callback of the user's (the wait runs it: a check
-- function's sleep, on_output busy with a line) interrupts the wait as
-- well: the check was taken for one that raised (the start failed
-- `protocol`, the script went on), on_output's was logged and the wait
-- went on to its timeout.
function T.test_ctrl_c_in_a_check_function_cancels_the_start()
  lu.skipIf(not has("script"), "needs script(1) for a terminal")
  local pidfile = S.tmpname("pid")
  local out = repl_session { SETUP[1], SETUP[2],
    timed("appstart.start{ argv = { F, 'ignore=INT', 'pidfile=" .. pidfile .. "', 'pause' }, ready_timeout = 30, "
      .. "ready = { check = function() appstart.sleep(20) return true end } }") }
  assert_interrupted(out, "the start")
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
end

function T.test_ctrl_c_in_on_output_interrupts_the_wait()
  lu.skipIf(not has("script"), "needs script(1) for a terminal")
  local pidfile = S.tmpname("pid")
  local out = repl_session { SETUP[1], SETUP[2],
    "app = assert(appstart.start{ argv = { F, 'ignore=INT', 'pidfile=" .. pidfile .. "', 'line=3:x', "
      .. "'lines=1:400:y', 'pause' }, ready = 'fd', stdout = 'capture', "
      .. "on_output = function() local t = os.clock() while os.clock() - t < 0.02 do end end })",
    timed("app:wait(4)"), "print('state', app.state); app:terminate(1)" }
  assert_interrupted(out, "the wait")
  lu.assertStrContains(out, "state\tready")
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
end

function T.test_ctrl_c_in_on_exit_interrupts_the_wait()
  lu.skipIf(not has("script"), "needs script(1) for a terminal")
  local out = repl_session { SETUP[1], SETUP[2],
    "app = assert(appstart.start{ argv = { F, 'line=3:x', 'sleep=0.1', 'exit=0' }, ready = 'fd', "
      .. "on_exit = function() local t = os.clock() while os.clock() - t < 4 do end end })",
    timed("app:wait(10)") }
  assert_interrupted(out, "the wait")
end

-- ^C lands at whatever instruction comes next (lua.c raises it from a
-- hook): here at a chosen line of start.lua, found by its text (not its
-- number), inside the function defined at the line holding `fn`.
local START_LUA = assert(package.searchpath("appstart.start", package.path))

--- The number of start.lua's first line past `after` that holds `text`.
local function start_line(text, after)
  local n = 0
  for line in io.lines(START_LUA) do
    n = n + 1
    if n > (after or 0) and line:find(text, 1, true) then return n end
  end
end

--- fn() with an "interrupted!" raised at the first line that runs, on
-- this coroutine, in start.lua's function defined at the line holding
-- `fn_text`, past its first line holding `after_text` (or the second):
-- it must have been raised there, and fn ended by it.
local function interrupt_past(fn_text, after_text, or_text, fn)
  local def = assert(start_line(fn_text), fn_text)
  local at = assert(start_line(after_text, def) or (or_text and start_line(or_text, def)), after_text)
  local fired = false
  debug.sethook(function(_, line)
    local info = debug.getinfo(2, "S")
    if line > at and info.linedefined == def and info.source == "@" .. START_LUA then
      debug.sethook()
      fired = true
      error("interrupted!", 0)
    end
  end, "l")
  local ok, err = pcall(fn)
  debug.sethook()
  lu.assertTrue(fired, "not interrupted")
  lu.assertFalse(ok)
  lu.assertEquals(err, "interrupted!")
end

-- As the app leaves the starter (s:take) and the start is done with it:
-- landing between the two made the cancel fail on the taken starter,
-- raising "appstart.starter: closed, its app taken" (from then on, at
-- every h:wait and h:cancel), the app running, held by nothing; landing
-- after, appstart.start raised "interrupted!" and lost the app.
function T.test_ctrl_c_as_the_app_is_handed_over_by_appstart_start_terminates_it()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  interrupt_past("local function finish_ready(", "s:take(", "hand_over(", function()
    local app = appstart.start { argv = { F, "pidfile=" .. pidfile, "line=3:ok", "pause" }, ready = "fd",
      log = S.quiet }
    return app
  end)
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
  S.assert_clean(before)
end

-- A begun start interrupted there is done, its app the caller's (h.app),
-- as one interrupted just after its h:wait() returned.
function T.test_ctrl_c_as_the_app_is_handed_over_leaves_a_begun_start_done()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local h = appstart.begin { argv = { F, "pidfile=" .. pidfile, "line=3:ok", "pause" }, ready = "fd",
    log = S.quiet }
  interrupt_past("local function finish_ready(", "s:take(", "hand_over(", function()
    local held <close> = h
    return held:wait()
  end)
  lu.assertTrue(h.done)
  local app = h.app
  lu.assertEquals(app and app.state, "ready")
  lu.assertEquals({ pcall(h.wait, h) }, { true, app })
  lu.assertEquals({ pcall(h.cancel, h) }, { true })
  app:terminate(1)
  app:close()
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
  S.assert_clean(before)
end

--- A begun start whose app never says it is ready and is deaf to SIGTERM
-- (its pid in pidfile): it fails "timeout" at 0.1 s, and its stop needs
-- the SIGKILL that comes after `grace`.
local function deaf_start(pidfile, grace)
  return appstart.begin { argv = { F, "pidfile=" .. pidfile, "ignore=TERM", "pause" }, ready = "fd",
    ready_timeout = 0.1, kill_grace = grace, log = S.quiet }
end

--- h:wait(), h closed as it ends, interrupted as interrupt_past says.
local function interrupt_wait_past(h, fn_text, after_text)
  interrupt_past(fn_text, after_text, nil, function()
    local held <close> = h
    return held:wait()
  end)
end

-- As a failed start's stop begins: landing after its flag and before its
-- deadline left every later step comparing nil ("attempt to compare nil
-- with number", at every h:wait and h:cancel), the app never signalled.
function T.test_ctrl_c_as_a_failed_start_begins_its_stop_terminates_the_app()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local h = deaf_start(pidfile, 0.2)
  interrupt_wait_past(h, "local function fail(", "f.stopping")
  lu.assertTrue(h.done)
  lu.assertEquals(h.err and h.err.code, "timeout")
  lu.assertEquals({ pcall(h.wait, h) }, { true, nil, h.err })
  lu.assertEquals({ pcall(h.cancel, h) }, { true })
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)), "the app is still running")
  S.assert_clean(before)
end

-- As a failed start's grace runs out, its SIGKILL due: landing before it
-- was sent left the stop waiting KILL_WAIT (10 s) for a SIGKILL never
-- sent, the app (deaf to SIGTERM) running meanwhile. The next step sends
-- it: the cancel that follows the interrupt is over at once.
function T.test_ctrl_c_as_a_stops_sigkill_is_due_still_sends_it()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local KILL_WAIT = require("appstart.ending").KILL_WAIT
  local h = deaf_start(pidfile, 0.1)
  local t0 = core.now()
  interrupt_wait_past(h, "local function escalate(", "f.escalated, f.deadline, f.signalled = true")
  local took = core.now() - t0
  lu.assertTrue(took < KILL_WAIT / 2, string.format("the interrupted start took %.1f s to end", took))
  lu.assertTrue(h.done)
  lu.assertEquals(h.err and h.err.code, "timeout")
  lu.assertFalse(S.alive(S.pid_in(pidfile)), "the app is still running")
  S.assert_clean(before)
end

-- A second ^C as the step after the first sends what that one left owed
-- (in the call that sends it): owed still, sent by the step after (it was
-- let go of before it was sent: h:cancel() waited KILL_WAIT, the app
-- running meanwhile).
function T.test_a_second_ctrl_c_as_the_owed_sigkill_is_sent_leaves_it_owed()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local KILL_WAIT = require("appstart.ending").KILL_WAIT
  local h = deaf_start(pidfile, 0.1)
  local esc_def = assert(start_line("local function escalate("))
  local esc_at = assert(start_line("f.escalated, f.deadline, f.signalled = true", esc_def))
  -- (the second as the signal goes: in the stop_app that sends it)
  local send_def = assert(start_line("local function stop_app("))
  local stage = 0
  debug.sethook(function(_, line)
    local info = debug.getinfo(2, "S")
    if info.source ~= "@" .. START_LUA then return end
    if (stage == 0 and info.linedefined == esc_def and line > esc_at)
      or (stage == 1 and info.linedefined == send_def) then
      stage = stage + 1
      if stage == 2 then debug.sethook() end
      error("interrupted!", 0)
    end
  end, "l")
  local ok, err = pcall(h.wait, h)
  debug.sethook()
  lu.assertEquals(stage, 2, "interrupted twice")
  lu.assertFalse(ok)
  lu.assertEquals(err, "interrupted!")
  local t0 = core.now()
  h:cancel()
  local took = core.now() - t0
  lu.assertTrue(took < KILL_WAIT / 2, string.format("the cancel took %.1f s", took))
  lu.assertTrue(h.done)
  lu.assertFalse(S.alive(S.pid_in(pidfile)), "the app is still running")
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- 2. a forgotten `ready =`

function T.test_forgetting_ready_says_what_was_awaited_and_how_to_change_it()
  local before = S.snapshot()
  local _, err = appstart.start { argv = { F, "pause" }, ready_timeout = 0.3, kill_grace = 0.5, log = S.quiet }
  S.assert_clean(before)
  lu.assertStrContains(err.message, "app not ready within 0.3 s: no READY=1 came on its notify socket")
  lu.assertStrContains(err.message, 'ready = "notify" is the default')
  lu.assertStrContains(err.message, 'ready = "none"')
  err = fail_case({ argv = { F, "pause" }, ready = "fd", ready_fd = 5, ready_timeout = 0.3 }, "timeout")
  lu.assertEquals(err.message, "app not ready within 0.3 s: no line came on its fd 5")
end

-- A line begun and not ended: the timeout says what it lacks (the newline),
-- and shows its first bytes, escaped and bounded.
function T.test_a_ready_line_without_its_newline_is_named_at_the_timeout()
  local err = fail_case({ argv = { F, "write=3:up\27[2J", "pause" }, ready = "fd", ready_timeout = 0.3 }, "timeout")
  lu.assertEquals(err.message, 'app not ready within 0.3 s: no line came on its fd 3 (6 bytes with no newline:'
    .. ' "up\\x1b[2J")')
  err = fail_case({ argv = { F, "bytes=3:100:x", "pause" }, ready = "fd", ready_timeout = 0.3 }, "timeout")
  lu.assertEquals(err.message, 'app not ready within 0.3 s: no line came on its fd 3 (100 bytes with no newline: "'
    .. string.rep("x", 40) .. '"...)')
end

-------------------------------------------------------------------------------
-- 3. the state tells the truth when read

function T.test_the_state_of_an_app_killed_from_outside_is_exited_when_read()
  local before = S.snapshot()
  local app = assert(start { argv = { F, "line=3:victim", "pause" } })
  lu.assertEquals(app.state, "ready")
  os.execute("kill -9 " .. app.pid)
  -- no appstart call between: reading the fields is the look
  local deadline = core.now() + 3
  while app.state == "ready" and core.now() < deadline do core.wait_readable(-1, 0.002) end
  lu.assertEquals(app.state, "exited")
  lu.assertEquals(app.how, { signal = 9 })
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- 4. results print as what they mean

function T.test_how_err_and_app_print_as_what_they_mean()
  local app = assert(start { argv = { F, "line=3:0", "exit=3" } }) -- a display number, as Xvfb's
  lu.assertEquals(tostring(app), string.format('appstart.app(fixture, name "0", pid %d, %s)', app.pid,
    rawget(app, "_state")))
  local how = app:wait(3)
  lu.assertEquals(tostring(how), "exited with code 3")
  app = assert(start { argv = { F, "line=3:fixture", "pause" } })
  lu.assertEquals(tostring(app), string.format("appstart.app(fixture, pid %d, ready)", app.pid))
  lu.assertEquals(tostring(app:terminate()), "killed by signal 15 (TERM)")
  -- one that has ended, not looked at since: it looks, as a read of
  -- app.state does (it said "ready")
  app = assert(start { argv = { F, "line=3:fixture", "exit=0" } })
  lu.assertTrue(S.await_gone(app.pid))
  lu.assertEquals(tostring(app), string.format("appstart.app(fixture, pid %d, exited)", app.pid))
  -- a name with a control character, a quote and a backslash: each
  -- escaped once (the control character's escape was escaped again)
  app = assert(start { argv = { F, 'line=3:my\27na"m\\\\e', "exit=0" } }) -- (the fixture decodes \\)
  lu.assertEquals(tostring(app), string.format('appstart.app(fixture, name "my\\x1bna\\"m\\\\e", pid %d, %s)',
    app.pid, rawget(app, "_state")))
  app:wait(3)
  local err = fail_case({ argv = { F, "pause" }, ready_timeout = 0.2 }, "timeout")
  lu.assertEquals(tostring(err), "fixture: " .. err.message)
  lu.assertEquals(tostring(err.status), "killed by signal 15 (TERM)")
end

-- A supervisor's calls that succeed return true alone: the REPL showed
-- `true	nil`.
function T.test_a_supervisors_calls_return_true_alone()
  local before = S.snapshot()
  local sv = appstart.supervisor { log = S.quiet, services = {
    s = { argv = { F, "line=3:up", "pause" }, ready = "fd", kill_grace = 0.5 } } }
  for _, call in ipairs { "up", "stop", "start", "restart", "down", "wait" } do
    local results = table.pack(sv[call](sv, call ~= "up" and call ~= "down" and call ~= "wait" and "s" or nil))
    lu.assertEquals(results, { true, n = 1 }, "sv:" .. call)
  end
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- 5. a failed start is returned, not also printed

function T.test_a_failed_start_is_not_printed_by_the_default_logger()
  local out = S.run_child({}, "repl_a_failed_start_under_the_default_logger")
  lu.assertEquals(out, "code\tdied\nappstart: info: fixture: app exited with code 2 before it was ready\n")
end

-------------------------------------------------------------------------------
-- 6. an error in a callback stays where it belongs

function T.test_an_error_in_on_exit_is_logged_and_never_raised_from_another_call()
  local before = S.snapshot()
  local logged, log = S.recorder()
  local a = assert(start { argv = { F, "line=3:a", "exit=0" }, log = log,
    on_exit = function() error("on_exit went wrong") end })
  local b = assert(start { argv = { F, "line=3:b", "sleep=0.2", "exit=7" } })
  -- a's on_exit runs in b's wait: b's wait returns b's end
  local ok, how = pcall(b.wait, b, 3)
  lu.assertTrue(ok, tostring(how))
  lu.assertEquals(how, { code = 7 })
  lu.assertEquals(a.state, "exited")
  local text = table.concat(logged, "\n")
  lu.assertStrContains(text, "error: fixture: on_exit raised ")
  lu.assertStrContains(text, "on_exit went wrong")
  lu.assertStrContains(text, "stack traceback:")
  S.assert_clean(before)
end

function T.test_an_error_in_a_watch_callback_is_logged_and_never_raised_from_another_call()
  local out = S.run_child({}, "repl_an_error_in_a_watch_callback")
  lu.assertStrContains(out, "b\t7\n")
  lu.assertStrContains(out, "appstart: error: watch of pid ")
  lu.assertStrContains(out, "watch went wrong")
  lu.assertStrContains(out, "stack traceback:")
end

function T.test_inside_appstart_run_an_error_in_on_exit_ends_the_run()
  local ok, err = pcall(appstart.run, function()
    local a = assert(start { argv = { F, "line=3:a", "exit=0" },
      on_exit = function() error("on_exit went wrong") end })
    a:wait(3)
    appstart.sleep(1)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "on_exit went wrong")
  S.kill_strays()
end

-------------------------------------------------------------------------------
-- 7. signal names

function T.test_signals_by_name_in_any_case_or_by_number()
  for _, sig in ipairs { "usr1", "SIGUSR1", "Usr1", 10 } do
    local app = assert(start { argv = { F, "line=3:sig", "pause" } })
    lu.assertTrue(app:kill(sig))
    lu.assertEquals(app:wait(3), { signal = 10 }, tostring(sig))
  end
  local app = assert(start { argv = { F, "line=3:sig", "pause" } })
  local ok, err = pcall(function() app:kill("bogus") end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: app:kill: unknown signal 'bogus'")
  ok, err = pcall(function() app:terminate("1") end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, '.*repl_spec%.lua:%d+: app:terminate: seconds expected %(a number >= 0%), got string "1"')
  ok, err = pcall(function() app:wait({}) end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: app:wait: seconds expected %(a number >= 0%), got table")
  -- (an endless grace would never SIGKILL what hangs)
  ok, err = pcall(function() app:terminate(math.huge) end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: app:terminate: seconds expected %(a finite number >= 0%), got inf")
  lu.assertEquals(app.state, "ready", "nothing sent")
  -- a name with a NUL byte in it is no name (it was read up to the NUL)
  lu.assertFalse((pcall(app.kill, app, "TERM\0junk")))
  app:terminate(1)
  -- a number that arithmetic made a float, 10.0, is signal 10 (it was an
  -- "unknown signal '10.0'")
  app = assert(start { argv = { F, "line=3:sig", "pause" } })
  lu.assertTrue(app:kill(20 / 2))
  lu.assertEquals(app:wait(3), { signal = 10 })
end

-- A method called with "." for ":" (app.kill("TERM")) raises at the
-- caller's line, naming the slip: the string passed for the app read as a
-- closed app (nil, "closed", nothing sent), a number raised from deep
-- inside; so for a start's, a watch's and a supervisor's methods (which
-- failed on a field of nil's or of a string's: "attempt to index a nil
-- value (local 'self')", "attempt to get length of a nil value").
local function dot_call_says_so(obj, prefix, kind, cases)
  for _, case in ipairs(cases) do
    local ok, err = pcall(function()
      local r = obj[case[1]](case[2])
      return r
    end)
    lu.assertFalse(ok, case[1])
    lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: .*")
    lu.assertStrContains(err, string.format("%s:%s: %s expected, got %s (%s:%s(), not %s.%s())",
      prefix, case[1], kind, type(case[2]), prefix, case[1], prefix, case[1]))
  end
end

function T.test_a_method_called_with_a_dot_says_so()
  local app = assert(start { argv = { F, "line=3:dot", "pause" } })
  dot_call_says_so(app, "app", "an app", { { "kill", "TERM" }, { "terminate", "1" }, { "wait", 5 },
    { "reload", "x" }, { "tail", "5" }, { "close", "x" }, { "pollfd" }, { "events" }, { "timeout" } })
  lu.assertEquals(app.state, "ready")
  local w = appstart.watch(app.pid, function() end)
  dot_call_says_so(w, "w", "a watch", { { "stop" }, { "pollfd" }, { "events" }, { "timeout" } })
  lu.assertFalse(w.done)
  lu.assertEquals(app:terminate(1), { signal = 15 })
  lu.assertTrue(w.done)
  local h = appstart.begin { argv = { F, "line=3:dot", "exit=0" }, ready = "fd" }
  dot_call_says_so(h, "h", "a start", { { "step" }, { "wait" }, { "cancel" }, { "abandon" }, { "pollfd" },
    { "events" }, { "timeout" }, { "on_wake", print } })
  lu.assertFalse(h.done)
  lu.assertTrue(h:wait() ~= nil)
  h.app:wait(3)
  local sv = appstart.supervisor { services = {} }
  dot_call_says_so(sv, "sv", "a supervisor", { { "add", "x" }, { "up", "x" }, { "start", "x" }, { "stop", "x" },
    { "restart", "x" }, { "reload", "x" }, { "status" }, { "down" }, { "remove", "x" }, { "wait" } })
end

-- The real-time signals by the names an end is told with (RTMIN+N), and
-- as kill(1) takes them (RTMAX-N).
function T.test_real_time_signals_by_name()
  local rtmin = S.core.signum("RTMIN")
  for _, case in ipairs { { "RTMIN+2", rtmin + 2 }, { "SIGRTMAX-1", S.core.signum("RTMAX") - 1 } } do
    local app = assert(start { argv = { F, "line=3:sig", "pause" } })
    lu.assertTrue(app:kill(case[1]))
    local how = app:wait(3)
    lu.assertEquals(how, { signal = case[2] }, case[1])
    if case[1] == "RTMIN+2" then lu.assertStrContains(tostring(how), "(RTMIN+2)") end
  end
  for _, bad in ipairs { "RTMIN+", "RTMIN-1", "RTMAX+1", "RTMIN+99", "RTMIN+2x" } do
    lu.assertFalse((pcall(S.core.signum, bad)), bad)
  end
end

-------------------------------------------------------------------------------
-- 8. hints where the mistake is known

function T.test_a_decimal_pid_read_as_int32le_suggests_the_line_format()
  local err = fail_case({ helper = { F, "write=3:8252", "exit=0" }, argv = { "pause" } }, "bad_pid")
  lu.assertStrContains(err.message, 'pid_format = "line"')
end

function T.test_a_helper_true_program_that_never_reports_says_which_descriptor()
  local err = fail_case({ argv = { F, "pause" }, helper = true, pid_fd = 5, pid_timeout = 0.3 }, "helper")
  lu.assertStrContains(err.message, "fixture did not report a pid on fd 5 within 0.3 s")
  lu.assertStrContains(err.message, "helper = true")
  err = fail_case({ argv = { "pause" }, helper = { F, "exit=0" } }, "helper")
  lu.assertStrContains(err.message, "without reporting a pid on fd 3")
end

-------------------------------------------------------------------------------
-- 9. options that cannot be right raise at the caller's line

function T.test_options_that_cannot_be_right_raise_at_the_callers_line()
  local before = S.snapshot()
  for field, opts in pairs {
    argv = { argv = { F, "a\0b" } },
    ["argv "] = { argv = { "" } },
    -- (a helper's program too: it was tried, failed "spawn")
    helper = { argv = { F }, helper = { "" } },
    env = { argv = { F }, env = { A = "x\0y" } },
    cwd = { argv = { F }, cwd = "/tmp\0/etc" },
    stdout = { argv = { F }, stdout = "" },
    user = { argv = { F }, user = -1 },
    ready_fd = { argv = { F }, ready = "notify", ready_fd = 4 },
  } do
    local ok, err = pcall(function() local app = appstart.start(opts); return app end)
    lu.assertFalse(ok, field)
    lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: appstart%.start: field '" .. field:gsub(" ", "") .. "': .*")
  end
  local ok, err = pcall(function() local h = appstart.begin { argv = { F }, bogus = 1 }; return h end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, ".*repl_spec%.lua:%d+: appstart%.begin: field 'bogus': unknown option")
  S.assert_clean(before)
end

return { TestRepl = T }
