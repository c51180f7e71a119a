--- Watching and callbacks: on_exit, app:wait / kill / terminate / close,
-- <close> and __gc, appstart.watch on any pid. Every case runs twice: with
-- pidfds, and with the kill(pid, 0) polling fallback forced on.
local lu = require "luaunit"
local appstart = require "appstart" -- replaced after a hang
local S = require "support"

local core = S.core
local F = S.fixture
local now = core.now

--- appstart.start with the fd protocol, short timeouts and a silent logger
-- unless given (of the appstart loaded at the time: see setUp).
local start = S.starter { ready = "fd", ready_timeout = 3, kill_grace = 0.5 }
local await_gone, await_with_sleep, touch = S.await_gone, S.await_with_sleep, S.touch

--- A pause between looks that runs nothing of appstart's.
local function pause(s) core.wait_readable(-1, s) end

local function counter()
  local c = { n = 0 }
  c.fn = function(app, how) c.n = c.n + 1; c.app, c.how = app, how end
  return c
end

--- A process that is not our child: the shell that started it has exited.
local sleepers = {}
local function foreign_sleeper()
  local p = assert(io.popen("sleep 30 </dev/null >/dev/null 2>&1 & echo $!"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid and S.alive(pid), "no sleeper")
  sleepers[#sleepers + 1] = pid
  return pid
end

local function kill_sleepers()
  for _, pid in ipairs(sleepers) do
    local cmd = S.read("/proc/" .. pid .. "/cmdline")
    if cmd and cmd:match("^sleep%z30") then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  end
  sleepers = {}
end

--- appstart.watch(pid) with a callback that records each call as
-- { pid, why }. Returns the watch and the list of calls.
local function recorded_watch(pid)
  local calls = {}
  local w = appstart.watch(pid, function(p, why) calls[#calls + 1] = { p, why } end)
  return w, calls
end

local function make_class(use_pidfd)
  local T = {}
  local mode = use_pidfd and "pidfd" or "polling"
  -- how soon a death must be noticed: generous, a few poll intervals without pidfds
  local function notice_bound()
    return use_pidfd and 0.5 or math.max(0.5, 10 * appstart.poll_interval)
  end

  function T.setUp()
    appstart = S.fresh_appstart_if_wedged()
    S.testing.use_pidfd(use_pidfd)
    S.arm_watchdog(5)
  end

  function T.tearDown()
    debug.sethook()
    S.testing.use_pidfd(true)
    kill_sleepers()
    S.kill_strays()
    appstart = S.fresh_appstart_if_wedged()
    appstart.sleep(0) -- one wait, so what a failed test left behind is let go of
  end

  function T.test_the_watching_mode_is_the_one_forced()
    lu.assertEquals(S.testing.use_pidfd(), use_pidfd)
    local app = assert(start { argv = { F, "line=3:x", "pause" } })
    if use_pidfd and S.testing.has_pidfd() then -- valgrind 3.19 knows no pidfd_open
      lu.assertIsNumber(app:pollfd(), "a pidfd")
    elseif use_pidfd then
      lu.assertNil(app:pollfd(), "no pidfd where the kernel has none")
    else
      lu.assertNil(app:pollfd(), "no pidfd in the fallback")
      lu.assertTrue(app:timeout() > 0)
    end
    app:terminate()
  end

  function T.test_on_exit_runs_once_when_the_app_exits_on_its_own()
    local before = S.snapshot()
    local go, c = S.tmpname("go"), counter()
    local app = assert(start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=4" }, on_exit = c.fn })
    lu.assertEquals(c.n, 0)
    touch(go)
    lu.assertEquals(app:wait(3), { code = 4 })
    lu.assertEquals(c.n, 1)
    lu.assertIs(c.app, app)
    lu.assertEquals(c.how, { code = 4 })
    lu.assertEquals(app:wait(), { code = 4 })
    lu.assertEquals(app:wait(0.01), { code = 4 })
    appstart.sleep(3 * appstart.poll_interval)
    lu.assertEquals(c.n, 1)
    lu.assertEquals(app.state, "exited")
    S.assert_clean(before)
  end

  function T.test_on_exit_runs_once_when_the_app_is_terminated()
    local before = S.snapshot()
    local c = counter()
    local app = assert(start { argv = { F, "line=3:x", "pause" }, on_exit = c.fn })
    lu.assertEquals(app:terminate(1), { signal = 15 })
    lu.assertEquals(c.n, 1)
    lu.assertEquals(c.how, { signal = 15 })
    lu.assertEquals(app:terminate(1), { signal = 15 })
    lu.assertEquals(app:wait(), { signal = 15 })
    local ok, why = app:kill()
    lu.assertNil(ok)
    lu.assertIsString(why)
    appstart.sleep(3 * appstart.poll_interval)
    lu.assertEquals(c.n, 1)
    S.assert_clean(before)
  end

  function T.test_on_exit_runs_once_when_several_tasks_wait_on_the_app()
    local before = S.snapshot()
    local go, c = S.tmpname("go"), counter()
    local got = {}
    appstart.run(function()
      local app = assert(start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=5" }, on_exit = c.fn })
      for i = 1, 3 do
        appstart.spawn(function() got[i] = app:wait(3) end)
      end
      appstart.sleep(0.02)
      touch(go)
      got[4] = app:wait(3)
      appstart.sleep(3 * appstart.poll_interval)
    end)
    lu.assertEquals(got, { { code = 5 }, { code = 5 }, { code = 5 }, { code = 5 } })
    lu.assertEquals(c.n, 1)
    S.assert_clean(before)
  end

  function T.test_in_a_loop_on_exit_runs_promptly_with_nobody_waiting()
    local before = S.snapshot()
    local go, c = S.tmpname("go"), counter()
    local took
    appstart.run(function()
      assert(start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=6" }, on_exit = c.fn })
      local t0 = now()
      touch(go)
      lu.assertTrue(await_with_sleep(function() return c.n > 0 end, 3), "on_exit never ran")
      took = now() - t0
    end)
    lu.assertEquals(c.n, 1)
    lu.assertEquals(c.how, { code = 6 })
    lu.assertTrue(took < notice_bound(), string.format("%s: exit noticed after %.3f s", mode, took))
    S.assert_clean(before)
  end

  --- The app exits; only non-appstart pauses until it is a zombie and any
  -- probe of the fallback is overdue. Returns the counter and the app.
  local function exited_unnoticed()
    local go, c = S.tmpname("go"), counter()
    local app = assert(start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=2" }, on_exit = c.fn })
    local t0 = now()
    touch(go)
    lu.assertTrue(await_gone(app.pid), "app never exited")
    local overdue = t0 + 2 * appstart.poll_interval
    if now() < overdue then pause(overdue - now()) end
    lu.assertEquals(c.n, 0, "on_exit ran with no call that waits")
    return c, app
  end

  function T.test_outside_a_loop_on_exit_runs_at_the_next_sleep()
    local before = S.snapshot()
    local c, app = exited_unnoticed()
    appstart.sleep(0.01)
    lu.assertEquals(c.n, 1, "on_exit did not run during appstart.sleep")
    lu.assertIs(c.app, app)
    lu.assertEquals(c.how, { code = 2 })
    lu.assertEquals(app.state, "exited")
    appstart.sleep(0.01)
    lu.assertEquals(c.n, 1)
    S.assert_clean(before)
  end

  function T.test_outside_a_loop_on_exit_runs_at_another_apps_wait()
    local before = S.snapshot()
    local other = assert(start { argv = { F, "line=3:other", "pause" } })
    local c = exited_unnoticed()
    local how, why = other:wait(0.05)
    lu.assertNil(how)
    lu.assertEquals(why, "timeout")
    lu.assertEquals(c.n, 1, "on_exit did not run during another app's wait")
    lu.assertEquals(c.how, { code = 2 })
    lu.assertEquals(other:terminate(), { signal = 15 })
    lu.assertEquals(c.n, 1)
    S.assert_clean(before)
  end

  function T.test_wait_with_a_timeout_on_a_running_app_returns_nil_timeout()
    local app = assert(start { argv = { F, "line=3:x", "pause" } })
    local took, how, why = S.timed(app.wait, app, 0.2)
    lu.assertNil(how)
    lu.assertEquals(why, "timeout")
    lu.assertTrue(took >= 0.19, "returned after " .. took .. " s")
    lu.assertTrue(took < 1.5, "returned after " .. took .. " s")
    lu.assertTrue(S.alive(app.pid))
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end

  function T.test_wait_returns_the_exit_code()
    local before = S.snapshot()
    local go = S.tmpname("go")
    local app = assert(start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=7" } })
    touch(go)
    local took, how = S.timed(app.wait, app)
    lu.assertEquals(how, { code = 7 })
    lu.assertTrue(took < notice_bound(), string.format("%s: exit noticed after %.3f s", mode, took))
    lu.assertEquals(app.how, { code = 7 })
    lu.assertEquals(app.state, "exited")
    S.assert_clean(before)
  end

  function T.test_kill_USR1_is_delivered_and_the_app_dies_by_signal_10()
    local before = S.snapshot()
    local app = assert(start { argv = { F, "line=3:x", "pause" } })
    lu.assertTrue(app:kill("USR1"))
    lu.assertEquals(app:wait(3), { signal = 10 })
    S.assert_clean(before)
  end

  function T.test_terminate_of_an_app_that_ignores_TERM_kills_after_the_grace()
    local before = S.snapshot()
    local app = assert(start { argv = { F, "ignore=TERM", "line=3:x", "pause" } })
    local took, how = S.timed(app.terminate, app, 0.3)
    lu.assertEquals(how, { signal = 9 })
    lu.assertTrue(took >= 0.3, "SIGKILL after " .. took .. " s")
    lu.assertTrue(took < 3, "terminate took " .. took .. " s")
    lu.assertFalse(S.alive(app.pid))
    S.assert_clean(before)
  end

  function T.test_close_variable_terminates_the_app_at_scope_exit()
    local before = S.snapshot()
    local c = counter()
    local pid
    do
      local app <close> = assert(start { argv = { F, "line=3:x", "pause" }, on_exit = c.fn })
      pid = app.pid
      lu.assertTrue(S.alive(pid))
    end
    lu.assertFalse(S.alive(pid), "app still running after scope exit")
    lu.assertEquals(c.n, 1)
    lu.assertEquals(c.how, { signal = 15 })
    S.assert_clean(before)
  end

  function T.test_close_leaves_the_app_running_with_no_descriptor_and_no_zombie_after()
    local before = S.snapshot()
    local c = counter()
    local app = assert(start { argv = { F, "line=3:x", "pause" }, on_exit = c.fn })
    local pid = app.pid
    app:close()
    app:close() -- twice is fine
    lu.assertTrue(S.alive(pid), "close signalled the app")
    lu.assertEquals(table.concat(S.testing.fds(), ","), before.fds, "descriptors held after close")
    os.execute("kill -9 " .. pid)
    lu.assertTrue(await_gone(pid), "kill -9 did not take")
    -- its wait says closed, and reaps it, a call that waits (it left it
    -- a zombie)
    lu.assertEquals({ app:wait(0.1) }, { nil, "closed" })
    lu.assertNil(S.proc_status(pid), "a zombie after a wait")
    appstart.sleep(3 * appstart.poll_interval)
    lu.assertEquals(c.n, 0, "on_exit ran after close")
    S.testing.reap()
    S.assert_clean(before)
  end

  function T.test_dropping_every_reference_never_signals_and_releases_the_pid()
    local before = S.snapshot()
    local weak = setmetatable({}, { __mode = "v" })
    local pid = (function()
      local app = assert(start { argv = { F, "line=3:x", "pause" } })
      weak[1] = app
      return app.pid
    end)()
    collectgarbage()
    collectgarbage()
    lu.assertNil(weak[1], "the app was not collected")
    pause(0.1) -- a signal sent by __gc would have landed by now
    lu.assertTrue(S.alive(pid), "collecting the app signalled it")
    lu.assertEquals(table.concat(S.testing.fds(), ","), before.fds, "descriptors held after collection")
    os.execute("kill -9 " .. pid)
    lu.assertTrue(await_gone(pid), "kill -9 did not take")
    S.testing.reap()
    S.assert_clean(before)
  end

  function T.test_watch_of_a_foreign_process_reports_exited_once_promptly()
    local before = S.snapshot()
    local pid = foreign_sleeper()
    local w, calls = recorded_watch(pid)
    appstart.sleep(0.02)
    lu.assertEquals(calls, {})
    local t0 = now()
    os.execute("kill " .. pid)
    lu.assertTrue(await_with_sleep(function() return #calls > 0 end, 3), "death never reported")
    local took = now() - t0
    lu.assertEquals(calls, { { pid, "exited" } })
    lu.assertTrue(took < notice_bound(), string.format("%s: death noticed after %.3f s", mode, took))
    appstart.sleep(3 * appstart.poll_interval)
    w:stop() -- already reported: no second call
    appstart.sleep(0.01)
    lu.assertEquals(calls, { { pid, "exited" } })
    S.assert_clean(before)
  end

  function T.test_watch_stop_reports_stopped_once_and_never_exited_after()
    local before = S.snapshot()
    local pid = foreign_sleeper()
    local w, calls = recorded_watch(pid)
    w:stop()
    lu.assertEquals(table.concat(S.testing.fds(), ","), before.fds, "descriptors held after stop")
    lu.assertTrue(await_with_sleep(function() return #calls > 0 end, 1), "stop never reported")
    lu.assertEquals(calls, { { pid, "stopped" } })
    w:stop()
    os.execute("kill " .. pid)
    lu.assertTrue(await_gone(pid), "kill did not take")
    appstart.sleep(5 * appstart.poll_interval)
    lu.assertEquals(calls, { { pid, "stopped" } })
    S.assert_clean(before)
  end

  function T.test_watch_of_a_pid_that_no_longer_exists_reports_exited_at_the_next_wait()
    local before = S.snapshot()
    local p = assert(io.popen("echo $$"))
    local pid = tonumber(p:read("l"))
    p:close() -- the shell has exited and been reaped
    lu.assertFalse(S.alive(pid))
    local _, calls = recorded_watch(pid)
    lu.assertEquals(calls, {}, "reported from inside watch()")
    appstart.sleep(0.01)
    lu.assertEquals(calls, { { pid, "exited" } })
    appstart.sleep(0.01)
    lu.assertEquals(#calls, 1)
    S.assert_clean(before)
  end

  function T.test_in_a_loop_a_watch_reports_promptly_with_nobody_waiting()
    local pid = foreign_sleeper()
    local calls, took = {}, nil
    appstart.run(function()
      appstart.watch(pid, function(q, why) calls[#calls + 1] = { q, why, now() } end)
      appstart.spawn(function()
        appstart.sleep(0.02)
        local t0 = now()
        os.execute("kill " .. pid)
        -- this task sleeps long; the callback must not wait for it
        appstart.sleep(1)
        took = calls[1] and calls[1][3] - t0
      end)
    end)
    lu.assertEquals(#calls, 1)
    lu.assertEquals({ calls[1][1], calls[1][2] }, { pid, "exited" })
    lu.assertNotNil(took, "not reported within 1 s")
    lu.assertTrue(took < notice_bound(), string.format("%s: death noticed after %.3f s", mode, took))
  end

  -- A plain script waits on web; a callback that runs meanwhile (db's
  -- on_exit) closes web: the wait ends, nil, "closed" (it waited on
  -- web's descriptor, which the close took away).
  function T.test_an_app_closed_by_a_callback_while_waited_on_ends_the_wait_closed()
    local before = S.snapshot()
    local web
    -- (db ends once web is there: its end during web's start would find
    -- no web to close)
    local go = S.tmpname("go")
    local db = assert(start { argv = { F, "line=3:db", "waitfile=" .. go, "exit=1" },
      on_exit = function() web:close() end })
    web = assert(start { argv = { F, "line=3:web", "pause" } })
    S.touch(go)
    lu.assertEquals({ web:wait() }, { nil, "closed" })
    lu.assertEquals(db.how, { code = 1 })
    lu.assertTrue(S.alive(web.pid), "close signalled web")
    os.execute("kill -9 " .. web.pid)
    lu.assertTrue(await_gone(web.pid))
    S.testing.reap()
    S.assert_clean(before)
  end

  function T.test_watch_of_a_thread_id_raises_and_a_float_pid_is_taken()
    local path = S.tmpname("tid")
    local app = assert(start { argv = { F, "thread=" .. path, "line=3:threads", "pause" } })
    local tid = S.pid_in(path)
    lu.assertNotEquals(tid, app.pid)
    -- each raised at the line of the call (a tail call in appstart.watch
    -- named its caller's)
    local function raised(pid, fn)
      local line = debug.getinfo(1, "l").currentline + 2
      local ok, err = pcall(function()
        local w = appstart.watch(pid, fn)
        return w
      end)
      lu.assertFalse(ok, mode .. ": watched")
      lu.assertStrContains(err, "watch_spec.lua:" .. line .. ": appstart.watch: ")
      return err
    end
    lu.assertStrContains(raised(tid, S.quiet), "pid " .. tid .. " is not a process (a thread's id?)")
    lu.assertStrContains(raised(2 ^ 31, S.quiet), "positive integer below 2^31")
    -- (a pid's digits in a string are no pid: the callback got the string)
    lu.assertStrContains(raised(tostring(app.pid), S.quiet),
      "positive integer below 2^31, got string \"" .. app.pid .. "\"")
    lu.assertStrContains(raised(app.pid, "not a function"), "function expected, got string")
    local w, calls = recorded_watch(app.pid + 0.0)
    lu.assertEquals(w.pid, app.pid)
    lu.assertEquals(math.type(w.pid), "integer")
    app:kill("KILL")
    lu.assertTrue(await_with_sleep(function() return #calls > 0 end, 3), "death never reported")
    lu.assertEquals(calls, { { app.pid, "exited" } })
    app:close()
  end

  function T.test_watch_out_of_descriptors_raises_rather_than_report_an_end()
    local pid = foreign_sleeper()
    local out = S.run_child({ nofile = 32 }, "watch_out_of_descriptors", tostring(use_pidfd), pid)
    if use_pidfd then
      -- a pidfd cannot be had: an error, never "exited" for a live process
      lu.assertStrContains(out, "cannot watch pid " .. pid .. ": Too many open files")
    else
      lu.assertStrContains(out, "watching") -- probing needs no descriptor
    end
    lu.assertStrContains(out, "calls: \n")
    lu.assertTrue(S.alive(pid))
  end

  function T.test_tostring_of_app_and_watch_names_the_pid()
    local app = assert(start { argv = { F, "line=3:named", "pause" } })
    local pid = app.pid
    local s = tostring(app)
    lu.assertStrContains(s, tostring(pid))
    lu.assertStrContains(s, "named")
    local w = appstart.watch(pid, S.quiet)
    lu.assertStrContains(tostring(w), tostring(pid))
    w:stop()
    lu.assertStrContains(tostring(w), tostring(pid))
    app:terminate()
    lu.assertStrContains(tostring(app), tostring(pid))
    lu.assertStrContains(tostring(app), "exited")
  end

  return T
end

local Kernel = {}

-- Before Linux 6.15, pidfd_open gave EINVAL, not ESRCH, for a number no
-- process has that a process group still uses as its id (its leader
-- exited and reaped, a member running on: a pipeline's, a daemon's). A
-- watch of that pid raised "is not a process (a thread's id?)"; it is a
-- pid already gone, reported "exited" (/proc tells a thread, its own
-- Tgid, from no process at all). (oldpidfd.so gives that answer here.)
function Kernel.test_a_gone_group_leader_is_exited_on_a_kernel_before_6_15()
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here")
  local out = S.run_child({ preload = "oldpidfd.so", timeout = 30 }, "watch_a_gone_leader_on_an_older_kernel")
  local group = tonumber(out:match("group\t(%d+)\n"))
  if group then os.execute("kill -KILL -" .. group .. " 2>/dev/null") end
  lu.assertStrContains(out, "watch\ttrue\t\n")
  lu.assertStrContains(out, "calls\texited\n")
end

return { TestWatchPidfd = make_class(true), TestWatchPolling = make_class(false), TestWatchKernel = Kernel }
