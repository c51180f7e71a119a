--- appstart.run, appstart.spawn and appstart.sleep: the coroutine loop, many
-- starts at once in one thread, errors and cancellation.
local lu = require "luaunit"
local appstart = require "appstart" -- replaced after a hang
local S = require "support"

local F = S.fixture

local await_gone, await_in_loop = S.await_gone, S.await_with_sleep

--- Read a pid a fixture wrote with pidfile=, waiting inside a task.
local function await_pidfile_in_loop(path)
  local text
  lu.assertTrue(await_in_loop(function() text = S.read(path); return text and text ~= "" end),
    "pidfile never appeared: " .. path)
  return tonumber(text:match("%d+"))
end

local T = {}

function T.setUp()
  appstart = S.fresh_appstart_if_wedged()
  S.arm_watchdog(4)
end

function T.tearDown()
  debug.sethook()
  S.kill_strays()
end

-- The rule is that a descriptor leaves the loop before its owner closes
-- it. One closed under its waiter all the same must not keep a later
-- descriptor of the same number out of the epoll set (it would never wake).
function T.test_a_descriptor_closed_under_its_waiter_hides_no_later_one_of_its_number()
  local core = S.core
  local loop = require "appstart.loop"
  local fired = {}
  appstart.run(function()
    local a = assert(core.signals { "USR2" })
    local n = a:fd()
    loop.watch(n, function() fired[#fired + 1] = "old" end)
    a:close() -- under its waiter
    local b = assert(core.signals { "USR2" })
    lu.assertEquals(b:fd(), n, "the number is taken again")
    loop.watch(b:fd(), function() fired[#fired + 1] = "new" end)
    assert(os.execute("kill -USR2 " .. core.pid()))
    local woke = S.await_with_sleep(function() return #fired > 0 end, 2)
    b:read() -- taken, whatever happened: never left pending for the runner
    b:close()
    lu.assertTrue(woke, "the new descriptor never woke")
  end)
  lu.assertEquals(fired, { "new" })
  lu.assertEquals((loop.pending()), {})
end

-- A callback of a turn's closes a descriptor still in that turn's batch
-- and a new waiter takes its number: the turn fired the new waiter, whose
-- descriptor was never readable.
function T.test_a_waiter_given_a_number_still_in_the_turns_batch_is_not_fired_by_it()
  local core = S.core
  local loop = require "appstart.loop"
  local log, held, late, w = {}, {}, nil, nil
  local sigs = { assert(core.signals { "USR2" }), assert(core.signals { "USR2" }) }
  appstart.run(function()
    local function first(other)
      return function()
        if late then return end
        log[#log + 1] = "first"
        local n = sigs[other]:fd()
        loop.release(n)
        sigs[other]:close()
        sigs[other] = false
        -- every lower number taken: the new descriptor has n
        while true do
          local d = assert(core.dup(0))
          if d >= n then core.close(d); break end
          held[#held + 1] = d
        end
        late = assert(core.signals { "USR1" }) -- never readable here
        log[#log + 1] = late:fd() == n and "reused" or "not reused"
        w = loop.watch(late:fd(), function() log[#log + 1] = "late" end)
      end
    end
    loop.watch(sigs[1]:fd(), first(2))
    loop.watch(sigs[2]:fd(), first(1))
    -- both readable, in one batch
    assert(os.execute("kill -USR2 " .. core.pid()))
    S.await_with_sleep(function() return #log > 0 end, 2)
  end)
  loop.unwatch(w)
  for i = 1, 2 do
    if sigs[i] then sigs[i]:read(); sigs[i]:close() end -- (the signal taken)
  end
  if late then late:close() end
  for i = 1, #held do core.close(held[i]) end
  lu.assertEquals(log, { "first", "reused" })
  lu.assertEquals((loop.pending()), {})
end

-- loop.watch on a descriptor whose fn returns false (woken, but what it
-- waits for has not happened yet) waits on: it was fired once and never
-- again. (Still readable, fn looks again a poll interval on: no spin.)
function T.test_a_watch_whose_fn_returns_false_waits_on()
  local core = S.core
  local loop = require "appstart.loop"
  local calls = 0
  local sig = assert(core.signals { "USR2" })
  local h
  appstart.run(function()
    h = loop.watch(sig:fd(), function()
      calls = calls + 1
      if calls == 1 then return false end
      sig:read()
      return true
    end)
    assert(os.execute("kill -USR2 " .. core.pid()))
    S.await_with_sleep(function() return calls >= 2 end, 2)
  end)
  if calls < 2 then loop.unwatch(h); sig:read() end
  sig:close()
  lu.assertEquals(calls, 2)
  lu.assertTrue(h.done)
  lu.assertEquals((loop.pending()), {})
end

-- appstart.watch of a pid, made by an on_exit run inside a turn whose
-- batch still held the pidfd (another app's, ended too) that the on_exit
-- closed and the watch's pidfd then took: fired at once, its pid alive,
-- it never waited again, and its fn was never told the end.
function T.test_a_watch_made_on_a_number_still_in_the_turns_batch_is_told_the_end()
  local out, ok = S.run_child({ timeout = 30 }, "loop_a_watch_given_a_number_still_in_the_turns_batch")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "reused:\ttrue\ncalls:\texited\nchildren:\t\ndescriptors:\tsame\n")
end

function T.test_run_returns_when_fn_and_every_spawned_task_are_done()
  local finished = {}
  appstart.run(function()
    appstart.spawn(function(name, s)
      appstart.sleep(s)
      finished[#finished + 1] = name
      appstart.spawn(function() appstart.sleep(0.05); finished[#finished + 1] = "grandchild" end)
    end, "child", 0.05)
    appstart.spawn(function() appstart.sleep(0.02); finished[#finished + 1] = "short" end)
    finished[#finished + 1] = "main"
  end)
  table.sort(finished)
  lu.assertEquals(finished, { "child", "grandchild", "main", "short" })
end

-- A task's coroutine closed by another task (coroutine.close) while it
-- waits in a start: the start is abandoned there (its app terminated),
-- and the run, when what it waited on ends, counts it over instead of
-- resuming it (it raised "cannot resume dead coroutine" out of the run).
function T.test_a_task_closed_while_it_waits_in_a_start_is_over_and_its_app_ended()
  local before = S.snapshot()
  local pid, returned
  appstart.run(function()
    local co
    appstart.spawn(function()
      co = coroutine.running()
      appstart.start { argv = { F, "pause" }, ready = { check = function(app)
        pid = app.pid
        return false
      end }, ready_timeout = 2, kill_grace = 0.2, log = S.quiet }
      returned = true
    end)
    lu.assertTrue(await_in_loop(function() return pid ~= nil end), "the start never probed")
    lu.assertTrue(coroutine.close(co))
  end)
  lu.assertNil(returned)
  lu.assertTrue(await_gone(pid, 5), "the app of the closed start still runs")
  S.assert_clean(before)
end

-- So is one closed while it waits in app:wait(), the app's only holder:
-- collected at once, its pidfd was closed under the wait, and the run
-- never returned. The wait holds the app until it ends.
function T.test_a_task_closed_while_it_waits_on_its_app_lets_the_run_end()
  local out, ok = S.run_child({ timeout = 20 }, "loop_a_closed_task_waiting_on_its_app")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "closed:\ttrue\nreturned\nchildren:\t\ndescriptors:\tsame\n")
end

-- A task closed (coroutine.close) inside app:terminate, the app's end
-- then seen by another wait: that end was left to the stop, which never
-- came back, and the app's pidfd stayed open until a collection.
function T.test_a_task_closed_inside_terminate_leaves_no_descriptor()
  local before = S.snapshot()
  local trap = S.tmpname("trap")
  local app
  appstart.run(function()
    app = assert(appstart.start { argv = { F, "trap=TERM:" .. trap, "notify=READY=1", "waitfile=" .. trap,
      "sleep=0.2", "exit=0" }, kill_grace = 10 })
    local co
    appstart.spawn(function()
      co = coroutine.running()
      app:terminate()
    end)
    lu.assertTrue(S.await_with_sleep(function() return S.read(trap) ~= nil end, 5), "no SIGTERM came")
    lu.assertTrue(coroutine.close(co))
    lu.assertEquals(app:wait(5), { code = 0 })
  end)
  lu.assertEquals(app.state, "exited")
  S.assert_clean(before)
end

-- task:cancel(true) on a task inside appstart.start or app:terminate: the
-- stop under way ends what it must (the start's app terminated, the
-- app's SIGKILL after its grace) and the task gets the one "cancelled"
-- (the start's error; terminate ignores it), then its next wait raises;
-- the stop's own waits raised, failing the run and every app in it.
function T.test_a_cancel_for_good_inside_a_start_or_a_stop_lets_the_stop_end()
  local before = S.snapshot()
  local got = {}
  appstart.run(function()
    local pid = S.tmpname("pid")
    local held = assert(appstart.start { argv = { F, "ignore=TERM", "pidfile=" .. pid, "notify=READY=1", "pause" },
      kill_grace = 0.3 })
    local starting = S.tmpname("starting")
    local t1 = appstart.spawn(function()
      got.start = { appstart.start { argv = { F, "ignore=TERM", "pidfile=" .. starting, "pause" }, ready = "fd",
        kill_grace = 0.3 } }
      got.after_start = { pcall(appstart.sleep, 0) }
    end)
    local t2 = appstart.spawn(function()
      got.terminate = held:terminate()
      got.after_terminate = { pcall(appstart.sleep, 0) }
    end)
    -- (both tasks ran when this one first waited, and wait now: one in
    -- the start of the app that wrote the file, one in the stop)
    lu.assertTrue(S.await_with_sleep(function() return S.read(starting) and S.read(pid) end, 5))
    t1:cancel(true)
    t2:cancel(true)
  end)
  lu.assertNil(got.start[1])
  lu.assertEquals(got.start[2].code, "cancelled")
  lu.assertEquals(got.after_start, { false, require("appstart.loop").ABANDONED })
  lu.assertEquals(got.terminate, { signal = 9 })
  lu.assertEquals(got.after_terminate, { false, require("appstart.loop").ABANDONED })
  S.assert_clean(before)
end

-- task:cancel() on a task inside app:terminate: the stop goes on to its
-- SIGKILL after the grace and returns how, and the cancel is told at the
-- task's next wait, once (the stop's wait took it: a task that waited on
-- after the stop never saw it, and one that looped never ended). The
-- same for a stop of appstart.begin's start (h:cancel()).
function T.test_a_cancel_inside_a_stop_is_told_at_the_next_wait()
  local before = S.snapshot()
  local got = {}
  appstart.run(function()
    local held = assert(appstart.start { argv = { F, "ignore=TERM", "notify=READY=1", "pause" }, kill_grace = 0.5 })
    -- (the app of the start to cancel ignores SIGTERM once it has written
    -- its pid file: its stop then waits through its grace)
    local pid = S.tmpname("pid")
    local h = appstart.begin { argv = { F, "ignore=TERM", "pidfile=" .. pid, "pause" }, ready = "fd", kill_grace = 0.5 }
    local t1 = appstart.spawn(function()
      got.in1 = true
      got.terminate = held:terminate()
      got.next1 = { appstart.sleep(0.05) }
      got.after1 = { appstart.sleep(0.05) }
    end)
    local t2 = appstart.spawn(function()
      S.pid_in(pid)
      got.in2 = true
      h:cancel()
      got.err = h.err
      got.next2 = { appstart.sleep(0.05) }
      got.after2 = { appstart.sleep(0.05) }
    end)
    -- both in the waits of their stops' grace
    while not (got.in1 and got.in2) do appstart.sleep(0.01) end
    appstart.sleep(0.01)
    t1:cancel()
    t2:cancel()
  end)
  lu.assertEquals(got.terminate, { signal = 9 })
  lu.assertEquals(got.next1, { nil, "cancelled" })
  lu.assertEquals(got.after1, { true })
  lu.assertEquals(got.err.code, "cancelled")
  lu.assertEquals(got.next2, { nil, "cancelled" })
  lu.assertEquals(got.after2, { true })
  S.assert_clean(before)
end

-- A cancel that comes as a failed start stops its app (its grace, after
-- ready_timeout): the start's error is its own ("timeout"), and the
-- cancel is told at the task's next wait (it was lost: the start's stop
-- took it). One that a log function waiting inside a stop (a supervisor's
-- close) was told is told once: not again after the stop.
function T.test_a_cancel_in_a_failed_starts_stop_is_told_after_and_one_a_log_function_saw_is_not()
  local before = S.snapshot()
  local got = {}
  appstart.run(function()
    local pid = S.tmpname("pid")
    local t1 = appstart.spawn(function()
      got.start = { appstart.start { argv = { F, "ignore=TERM", "pidfile=" .. pid, "pause" }, ready = "fd",
        ready_timeout = 0.2, kill_grace = 1, log = S.quiet } }
      got.next1 = { appstart.sleep(0.05) }
      got.after1 = { appstart.sleep(0.05) }
    end)
    local in_log = false
    local t2 = appstart.spawn(function()
      do
        local sv <close> = appstart.supervisor { services = { a = { argv = { F, "line=3:up", "pause" }, ready = "fd",
          kill_grace = 0.5 } }, log = function(_, message)
            if message:find("stop", 1, true) and not in_log then
              in_log = true
              got.in_log = { appstart.sleep(0.3) }
            end
          end }
        assert(sv:up())
      end
      got.next2 = { appstart.sleep(0.05) }
      got.after2 = { appstart.sleep(0.05) }
    end)
    -- t2's log function waits (0.3 s) in the stop of the supervisor's close
    while not in_log do appstart.sleep(0.01) end
    t2:cancel()
    -- t1's start has timed out (0.2 s): its app, ignoring SIGTERM, in its grace
    while not S.read(pid) do appstart.sleep(0.01) end
    appstart.sleep(0.35)
    t1:cancel()
  end)
  lu.assertEquals(got.start[2].code, "timeout")
  lu.assertEquals(got.next1, { nil, "cancelled" })
  lu.assertEquals(got.after1, { true })
  lu.assertEquals(got.in_log, { nil, "cancelled" })
  lu.assertEquals(got.next2, { true })
  S.assert_clean(before)
end

-- The same for a start of appstart.begin that the task holds, after its
-- wait returned the one "cancelled": h:cancel() is a stop, which ends the
-- start and returns; h:wait() is a wait, which raises, but ends the start
-- first (each raised at once, the start left as it was: its app ran on
-- after the run, or stayed a zombie until the handle was collected).
function T.test_after_a_cancel_for_good_a_begun_start_is_ended_by_its_cancel_or_wait()
  local before = S.snapshot()
  local loop = require "appstart.loop"
  local got = {}
  for _, how in ipairs { "cancel", "wait" } do
    local pid = S.tmpname("pid-" .. how)
    appstart.run(function()
      local t = appstart.spawn(function()
        local h = appstart.begin { argv = { F, "ignore=TERM", "pidfile=" .. pid, "sleep=0.3", "notify=READY=1",
          "pause" }, kill_grace = 0.2 }
        local slept = { appstart.sleep(5) }
        local called = { pcall(h[how], h) }
        got[how] = { slept = slept, called = called, done = h.done, code = h.err and h.err.code,
          status = h.err and h.err.status }
      end)
      lu.assertTrue(S.await_with_sleep(function() return S.read(pid) end, 5))
      t:cancel(true)
    end)
    lu.assertFalse(S.alive(S.pid_in(pid)), how .. ": the app runs on")
  end
  lu.assertEquals(got.cancel, { slept = { nil, "cancelled" }, called = { true }, done = true, code = "cancelled",
    status = { signal = 9 } })
  lu.assertEquals(got.wait, { slept = { nil, "cancelled" }, called = { false, loop.ABANDONED }, done = true,
    code = "cancelled", status = { signal = 9 } })
  S.assert_clean(before)
end

-- ... and one whose stop needs no wait (a forking daemon's started
-- process has exited, its pid file not yet written: nothing is left to
-- stop): the task whose wait raised is held by nothing of the start's (the
-- start held it, as a task waiting on it, until its handle was collected)
function T.test_after_a_cancel_for_good_a_wait_that_raises_leaves_the_start_no_hold_on_the_task()
  local before = S.snapshot()
  local loop = require "appstart.loop"
  local weak = setmetatable({}, { __mode = "v" })
  local h, called, spawned
  appstart.run(function()
    local t = appstart.spawn(function()
      h = appstart.begin { argv = { F, "exit=0" }, ready = { forks = true, pid_file = S.tmpname("pidfile") },
        ready_timeout = 30,
        log = function(_, message) spawned = spawned or tonumber(message:match("spawned pid (%d+)")) end }
      weak.co = coroutine.running()
      appstart.sleep(5)
      called = { pcall(h.wait, h) }
    end)
    lu.assertTrue(S.await_with_sleep(function() return spawned and not S.alive(spawned) end, 5))
    t:cancel(true)
  end)
  lu.assertEquals(called, { false, loop.ABANDONED })
  lu.assertTrue(h.done)
  lu.assertEquals(h.err.code, "cancelled")
  collectgarbage()
  collectgarbage()
  lu.assertNil(weak.co, "the task's coroutine is held")
  h = nil
  S.assert_clean(before)
end

-- In a plain script, a wait on an app that a timer's callback closes (a
-- watch of a pid already gone runs from a timer) is woken by the close,
-- even when the pidfd's number is taken at once by another descriptor
-- (a wait that polled the number itself went on with the new one).
function T.test_a_wait_on_an_app_a_timer_closes_is_woken_in_a_plain_script()
  local before = S.snapshot()
  local gone = assert(appstart.start { argv = { F }, ready = "none" })
  gone:wait()
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
  local pid, taker = app.pid, nil
  appstart.watch(gone.pid, function()
    app:close()
    taker = assert(S.core.poller()) -- (an empty epoll set, never readable, at the pidfd's number)
  end)
  lu.assertEquals({ app:wait(10) }, { nil, "closed" })
  taker:close()
  os.execute("kill " .. pid)
  lu.assertTrue(await_gone(pid, 5))
  S.assert_clean(before)
end

function T.test_run_passes_arguments_and_task_done_turns_true()
  local seen, task
  appstart.run(function(a, b)
    seen = { a, b }
    task = appstart.spawn(function() appstart.sleep(0.01) end)
    lu.assertFalse(task.done)
  end, "x", 2)
  lu.assertEquals(seen, { "x", 2 })
  lu.assertTrue(task.done)
end

function T.test_sleep_says_true_or_cancelled()
  lu.assertEquals({ appstart.sleep(0.001) }, { true })
  lu.assertEquals({ appstart.sleep(0) }, { true })
  local got = {}
  appstart.run(function()
    got.whole = { appstart.sleep(0.001) }
    local task = appstart.spawn(function() got.cancelled = { appstart.sleep(5) } end)
    appstart.sleep(0.01)
    task:cancel()
  end)
  lu.assertEquals(got.whole, { true })
  lu.assertEquals(got.cancelled, { nil, "cancelled" })
end

-- task:wake() ends the task's wait as its deadline would: an
-- appstart.sleep returns true at once; appstart's waits for a condition
-- (app:wait, h:wait) look at it again and wait on within their own
-- deadline, so that a wake never reads as the app's end or a timeout.
function T.test_a_woken_sleep_returns_and_a_woken_wait_for_an_app_waits_on()
  local before = S.snapshot()
  local got, entered = {}, {}
  local app, h
  appstart.run(function()
    app = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
    -- (before the start begins: its ready_timeout counts from its exec)
    local t0 = S.core.now()
    h = appstart.begin { argv = { F, "pause" }, ready = "fd", ready_timeout = 0.5, log = S.quiet }
    local tasks = {
      sleep = appstart.spawn(function()
        entered.sleep = true
        got.sleep = table.pack(appstart.sleep(10))
        got.sleep.took = S.core.now() - t0
      end),
      wait = appstart.spawn(function()
        entered.wait = true
        got.wait = table.pack(app:wait(10))
      end),
      start = appstart.spawn(function()
        entered.start = true
        local _, err = h:wait()
        got.start = { code = err and err.code, took = S.core.now() - t0 }
      end),
    }
    -- (each sets its flag and enters its wait in the same resume)
    while not (entered.sleep and entered.wait and entered.start) do appstart.sleep(0) end
    for _, task in pairs(tasks) do task:wake() end
    appstart.sleep(0.1)
    lu.assertTrue(tasks.sleep.done, "a woken sleep is over")
    lu.assertFalse(tasks.wait.done, "a woken app:wait waits on")
    lu.assertFalse(tasks.start.done, "a woken h:wait waits on")
    app:kill("TERM")
  end)
  lu.assertEquals(got.sleep[1], true)
  lu.assertTrue(got.sleep.took < 1, "woken after " .. got.sleep.took .. " s")
  lu.assertEquals(got.wait[1], { signal = 15 })
  lu.assertEquals(got.start.code, "timeout")
  lu.assertTrue(got.start.took >= 0.45, "h:wait ended " .. got.start.took .. " s in, before its ready_timeout")
  S.assert_clean(before)
end

function T.test_sleep_inside_a_loop_yields_so_two_sleeps_overlap()
  local done = 0
  local took = S.timed(appstart.run, function()
    for _ = 1, 2 do
      appstart.spawn(function() appstart.sleep(0.2); done = done + 1 end)
    end
  end)
  lu.assertEquals(done, 2)
  lu.assertTrue(took >= 0.2, "slept " .. took .. " s")
  lu.assertTrue(took < 0.35, "two 0.2 s sleeps took " .. took .. " s: they did not overlap")
end

function T.test_hundred_starts_at_once_all_ready_well_below_hundred_times_one()
  S.arm_watchdog(30)
  local before = S.snapshot()
  local argv = { F, "sleep=0.1", "line=3:many", "pause" }
  local opts = { argv = argv, ready = "fd", ready_timeout = 10, kill_grace = 1, log = S.quiet }
  -- one start alone, for scale
  local single, app = S.timed(appstart.start, opts)
  lu.assertNotNil(app)
  app:terminate()
  lu.assertTrue(single >= 0.1, "a single start took " .. single .. " s")

  local N = 100
  local apps, errs = {}, {}
  local took = S.timed(appstart.run, function()
    for i = 1, N do
      appstart.spawn(function()
        local a, err = appstart.start(opts)
        apps[i], errs[i] = a, err
      end)
    end
  end)
  local ready, pids = 0, {}
  for i = 1, N do
    local a = apps[i]
    if a then
      ready = ready + 1
      lu.assertEquals(a.state, "ready")
      lu.assertEquals(a.name, "many")
      pids[a.pid] = true
    end
  end
  lu.assertEquals(ready, N, "first error: " .. tostring(next(errs) and errs[next(errs)]))
  local distinct = 0
  for _ in pairs(pids) do distinct = distinct + 1 end
  lu.assertEquals(distinct, N)
  -- 100 sequential starts take 100 times one (>= 10 s: each sleeps 0.1 s
  -- first); at once their sleeps overlap and only the launcher's own work
  -- adds up (under valgrind, most of the time): under half of that
  lu.assertTrue(took < math.max(3, N * single / 2),
    string.format("%d starts took %.2f s (one alone: %.3f s)", N, took, single))

  appstart.run(function()
    for i = 1, N do
      appstart.spawn(function() lu.assertEquals(apps[i]:terminate(), { signal = 15 }) end)
    end
  end)
  for i = 1, N do lu.assertEquals(apps[i].state, "exited") end
  S.assert_clean(before)
end

function T.test_task_error_propagates_and_abandons_other_starts_killing_their_apps()
  local before = S.snapshot()
  local pidfiles, pids = {}, {}
  for i = 1, 3 do pidfiles[i] = S.tmpname("abandon") end
  local ok, err = pcall(appstart.run, function()
    for i = 1, 3 do
      appstart.spawn(function()
        -- never ready: the start is still in progress when the error comes
        appstart.start { argv = { F, "pidfile=" .. pidfiles[i], "pause" }, ready = "fd",
          ready_timeout = 30, kill_grace = 0.2, log = S.quiet }
        error("a start that should have been abandoned returned")
      end)
    end
    appstart.spawn(function()
      for i = 1, 3 do pids[i] = await_pidfile_in_loop(pidfiles[i]) end
      error("boom in a task")
    end)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in a task")
  lu.assertNotStrContains(tostring(err), "should have been abandoned")
  lu.assertEquals(#pids, 3)
  for i = 1, 3 do
    lu.assertTrue(await_gone(pids[i]), "app " .. pids[i] .. " still running")
  end
  S.assert_clean(before)
end

function T.test_task_error_ends_the_apps_other_tasks_hold_and_leaves_nothing()
  local before = S.snapshot()
  local pids = {}
  local ok, err = pcall(appstart.run, function()
    -- ready and held: one waits on its app, one reads the app's output
    appstart.spawn(function()
      local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, kill_grace = 0.5, log = S.quiet })
      pids[#pids + 1] = app.pid
      app:wait()
    end)
    appstart.spawn(function()
      local app = assert(appstart.start { argv = { F, "ignore=TERM", "pause" }, ready = "none", kill_grace = 0.3,
        stdout = "capture", on_output = function() end, log = S.quiet })
      pids[#pids + 1] = app.pid
      app:wait()
    end)
    lu.assertTrue(await_in_loop(function() return #pids == 2 end), "not started")
    error("boom")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom")
  -- ended by the time run raised (one with SIGKILL after its kill_grace)
  for _, pid in ipairs(pids) do lu.assertFalse(S.alive(pid), "app " .. pid .. " still running") end
  S.assert_clean(before)
end

-- Apps its tasks dropped (no variable holds them, the collector has run)
-- are the run's still: the failed run ends them (they were collected, and
-- left running, their pidfds closed by the collector). 66: the run looks
-- which of those it holds have ended once it holds 64, and the app whose
-- start set that look off was let go (not the app's yet, it looked
-- ended).
function T.test_task_error_ends_the_apps_its_tasks_dropped()
  S.arm_watchdog(60) -- (66 starts: seconds under valgrind)
  local before = S.snapshot()
  local pids = {}
  local ok, err = pcall(appstart.run, function()
    for i = 1, 66 do
      pids[i] = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet }).pid
    end
    collectgarbage()
    collectgarbage()
    error("boom")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom")
  for i, pid in ipairs(pids) do lu.assertFalse(S.alive(pid), "dropped app " .. i .. " still runs") end
  S.assert_clean(before)
end

-- Held so, the apps of a long run that were dropped and have ended are let
-- go as the run starts more: 200 apps that exit at once, none waited for,
-- leave no more than the last few score of pidfds open and of zombies,
-- not 200; without pidfds too (nothing told their ends: the run held them
-- all, zombies, to its end).
function T.test_a_run_lets_go_of_the_dropped_apps_that_ended()
  S.arm_watchdog(120) -- (400 starts: tens of seconds under valgrind)
  for _, pidfd in ipairs { true, false } do
    local context = pidfd and "pidfd" or "no pidfd"
    S.testing.use_pidfd(pidfd)
    local before = S.snapshot()
    local n = #S.testing.fds()
    local fds, children
    local ok, err = pcall(appstart.run, function()
      for _ = 1, 200 do
        assert(appstart.start { argv = { F, "exit=0" }, ready = "none", log = S.quiet })
      end
      collectgarbage()
      collectgarbage()
      fds, children = #S.testing.fds() - n, #S.children()
    end)
    S.testing.use_pidfd(true)
    lu.assertTrue(ok, tostring(err))
    lu.assertTrue(fds < 100, context .. ": " .. fds .. " descriptors held by 200 dropped apps that ended")
    lu.assertTrue(children < 100, context .. ": " .. children .. " zombies of 200 dropped apps that ended")
    -- (the last of them collected now; one that ended after the run is
    -- reaped at the next wait, as a closed app is)
    collectgarbage()
    lu.assertTrue(S.await_with_sleep(function() return #S.children() == 0 end, 3), context .. ": zombies left")
    S.assert_clean(before, context)
  end
end

-- A group app whose main process ended leaves a member that ignores
-- SIGTERM: its sweep (a task) was closed with the failed run, so the
-- SIGKILL never came (the member ran on for good, its pidfd held).
function T.test_task_error_during_a_group_sweep_still_kills_what_is_left()
  local before = S.snapshot()
  local member_file = S.tmpname("member")
  local member
  local ok, err = pcall(appstart.run, function()
    local app = assert(appstart.start { argv = { F, "notify=READY=1", "fork", "ignore=TERM", "pidfile=" .. member_file,
      "pause", "|", "waitfile=" .. member_file, "exit=0" }, kill_mode = "group", kill_grace = 0.5, log = S.quiet })
    member = await_pidfile_in_loop(member_file)
    lu.assertEquals(app:wait(5).code, 0)
    error("boom in the sweep's grace")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in the sweep's grace")
  lu.assertFalse(S.alive(member), "what the group app left runs on")
  S.assert_clean(before)
end

-- An app's on_exit queued (its end seen) but not run yet when a task
-- fails: it still runs, once, as those of the apps the failure ends do.
function T.test_task_error_runs_an_on_exit_queued_before_it()
  local before = S.snapshot()
  local calls = 0
  local ok = pcall(appstart.run, function()
    local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, log = S.quiet,
      on_exit = function() calls = calls + 1 end })
    app:kill("KILL")
    lu.assertTrue(S.await_gone(app.pid, 3))
    lu.assertEquals(app.state, "exited")
    error("boom before on_exit ran")
  end)
  lu.assertFalse(ok)
  lu.assertEquals(calls, 1)
  S.assert_clean(before)
end

-- A failed run ends what it began all at once: apps held in <close>
-- variables by three tasks and a start under way, each ignoring SIGTERM
-- (kill_grace 1 s): about one grace in all, not one after the other.
function T.test_task_error_ends_every_app_and_start_at_once()
  local before = S.snapshot()
  local pidfiles, pids = {}, {}
  for i = 1, 4 do pidfiles[i] = S.tmpname("once-" .. i) end
  local t0
  local ok = pcall(appstart.run, function()
    for i = 1, 3 do
      appstart.spawn(function()
        local app <close> = assert(appstart.start { argv = { F, "ignore=TERM", "pidfile=" .. pidfiles[i],
          "notify=READY=1", "pause" }, kill_grace = 1, log = S.quiet })
        app:wait()
      end)
    end
    appstart.spawn(function()
      appstart.start { argv = { F, "ignore=TERM", "pidfile=" .. pidfiles[4], "pause" }, ready = "fd",
        ready_timeout = 30, kill_grace = 1, log = S.quiet }
    end)
    -- (whether the three are ready or still starting, each is ended so)
    for i = 1, 4 do pids[i] = await_pidfile_in_loop(pidfiles[i]) end
    t0 = S.core.now()
    error("boom")
  end)
  local took = S.core.now() - t0
  lu.assertFalse(ok)
  for i = 1, 4 do lu.assertFalse(S.alive(pids[i]), "app " .. i .. " still running") end
  lu.assertTrue(took < 3, string.format("ended in %.2f s: one after the other (4 s)", took))
  S.assert_clean(before)
end

-- Whatever holds a start under way when a task fails (appstart.start in
-- another task, a task stepping a begun start, a begun start nobody
-- steps), its app is terminated as a cancelled start's is: SIGTERM first
-- (each app here counts it and goes on), SIGKILL after kill_grace, all
-- ended and reaped by the time run raises.
function T.test_task_error_terminates_every_start_under_way_begun_or_not()
  local before = S.snapshot()
  local names = { "start", "stepped", "waited", "held" }
  local pidfiles, traps, pids = {}, {}, {}
  for _, name in ipairs(names) do
    pidfiles[name], traps[name] = S.tmpname("abandon-" .. name), S.tmpname("trap-" .. name)
  end
  local function opts(name)
    return { argv = { F, "trap=TERM:" .. traps[name], "pidfile=" .. pidfiles[name], "pause" }, ready = "fd",
      ready_timeout = 30, kill_grace = 0.3, log = S.quiet }
  end
  local held -- begun, and stepped by nobody
  local ok, err = pcall(appstart.run, function()
    appstart.spawn(function() appstart.start(opts("start")) end)
    appstart.spawn(function()
      local h = appstart.begin(opts("stepped"))
      while not h:step() do appstart.sleep(0.01) end
    end)
    appstart.spawn(function() appstart.begin(opts("waited")):wait() end)
    held = appstart.begin(opts("held"))
    for _, name in ipairs(names) do pids[name] = await_pidfile_in_loop(pidfiles[name]) end
    error("boom in a task")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in a task")
  for _, name in ipairs(names) do
    lu.assertFalse(S.alive(pids[name]), name .. ": app " .. pids[name] .. " still running")
    lu.assertEquals(S.read(traps[name]), "15\n", name .. ": no SIGTERM before the SIGKILL")
  end
  lu.assertEquals(held.err.code, "cancelled")
  S.assert_clean(before)
end

-- A start whose app has already gone by the time a failing task abandons
-- it, and that nobody has stepped since its spawn (its task still in the
-- first wait), is done at once: run raises without waiting for the ready
-- deadline (30 s here; the watchdog fails the test at 4).
function T.test_a_task_error_ends_an_unstepped_start_whose_app_is_gone_at_once()
  local before = S.snapshot()
  local pidfile = S.tmpname("gone-unstepped")
  local pid
  local ok, err = pcall(appstart.run, function()
    appstart.spawn(function()
      appstart.start { argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "fd", ready_timeout = 30,
        log = S.quiet }
    end)
    pid = await_pidfile_in_loop(pidfile)
    -- the app ends with no wait in between: its start is not stepped again
    os.execute("kill -KILL " .. pid)
    lu.assertTrue(S.await_gone(pid), "the app never exited")
    error("boom after the app was gone")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom after the app was gone")
  S.assert_clean(before)
end

-- A begun start closed before it is done (`<close>`) is cancelled: its app
-- gets SIGTERM, is waited for, reaped; nothing is left.
function T.test_a_begun_start_closed_under_way_is_cancelled_and_leaves_nothing()
  local before = S.snapshot()
  local pidfile, trap = S.tmpname("closed"), S.tmpname("closed-trap")
  local h
  do
    local started <close> = appstart.begin { argv = { F, "trap=TERM:" .. trap, "pidfile=" .. pidfile, "pause" },
      ready = "fd", ready_timeout = 30, kill_grace = 0.3, log = S.quiet }
    h = started
    S.await_file(pidfile, 3)
  end
  local pid = S.pid_in(pidfile)
  lu.assertTrue(h.done)
  lu.assertEquals(h.err.code, "cancelled")
  lu.assertFalse(S.alive(pid), "app still running")
  lu.assertEquals(S.read(trap), "15\n")
  S.assert_clean(before)
end

function T.test_a_closed_app_that_exits_is_reaped_at_the_next_wait()
  local before = S.snapshot()
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
  local pid = app.pid
  app:close()
  lu.assertEquals({ app:kill() }, { nil, "closed" })
  assert(os.execute("kill -9 " .. pid))
  -- no start comes after: a sleep reaps it
  lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. pid .. "/stat") end, 3),
    "a zombie until the next start")
  S.assert_clean(before)
end

-- The same behind an older zombie of the launcher's that is no closed
-- app's (an io.popen child not closed yet, an app not looked at since it
-- exited): the kernel names the oldest first, and the closed one stayed
-- a zombie behind it until the next start.
function T.test_a_closed_app_that_exits_is_reaped_at_the_next_wait_behind_another_zombie()
  local before = S.snapshot()
  -- (killed once started: one that exits by itself may be gone before its
  -- start returns, reaped by the start)
  local older = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
  local popen = io.popen("exec true")
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
  local pid = app.pid
  app:close()
  assert(os.execute("kill -9 " .. older.pid))
  lu.assertTrue(S.await_with_sleep(function() return S.state(older.pid) == "Z" end), "the older one a zombie")
  assert(os.execute("kill -9 " .. pid))
  lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. pid .. "/stat") end, 3),
    "a zombie until the next start")
  lu.assertEquals(S.state(older.pid), "Z", "the older one is left for its holder")
  lu.assertEquals(older:wait(), { signal = 9 })
  popen:close()
  S.assert_clean(before)
end

function T.test_mistakes_in_the_loop_calls_raise_naming_the_call()
  local function raises(fn, text)
    local ok, err = pcall(fn)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), text)
    -- at the caller's line, not inside appstart
    lu.assertStrContains(tostring(err), "loop_spec.lua")
  end
  raises(function() appstart.sleep("x") end, 'appstart.sleep: seconds expected (a number), got string "x"')
  -- (the digits of a string shown as one: "got 1" read as the number 1)
  raises(function() appstart.sleep("1") end, 'appstart.sleep: seconds expected (a number), got string "1"')
  raises(function() appstart.sleep() end, "appstart.sleep: seconds expected (a number), got nil")
  raises(function() appstart.sleep(0 / 0) end, "appstart.sleep: seconds expected")
  -- what is left until a deadline that has passed: no wait
  lu.assertEquals(appstart.sleep(-0.001), true)
  raises(function() appstart.run(nil) end, "appstart.run: a function expected, got nil")
  local inner
  appstart.run(function() inner = { pcall(appstart.spawn, 5) } end)
  lu.assertFalse(inner[1])
  lu.assertStrContains(tostring(inner[2]), "appstart.spawn: a function expected, got number")
end

function T.test_error_in_fn_itself_propagates_out_of_run()
  local ok, err = pcall(appstart.run, function() error("fn failed") end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "fn failed")
  -- and the loop is usable again afterwards
  local ran = false
  appstart.run(function() appstart.sleep(0.01); ran = true end)
  lu.assertTrue(ran)
end

-- The failing task's own to-be-closed variables are closed as the other
-- tasks' are (a coroutine that dies of an error keeps them: they never
-- ran), a start it held so among them: cancelled, its app ended (it ran
-- on after run had raised).
function T.test_a_failing_tasks_own_to_be_closed_variables_are_closed()
  local before = S.snapshot()
  local closed = {}
  local function closer(name)
    return setmetatable({}, { __close = function() closed[#closed + 1] = name end })
  end
  local h = appstart.begin { argv = { F, "sleep=10", "notify=READY=1", "pause" }, kill_grace = 0.5, log = S.quiet }
  local ok, err = pcall(appstart.run, function()
    appstart.spawn(function()
      local other <close> = closer("other") -- luacheck: ignore
      appstart.sleep(10)
    end)
    local held <close> = h -- luacheck: ignore
    local mine <close> = closer("failing") -- luacheck: ignore
    appstart.sleep(0.01)
    error("boom", 0)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "boom")
  table.sort(closed)
  lu.assertEquals(closed, { "failing", "other" })
  lu.assertTrue(h.done)
  lu.assertEquals(h.err.code, "cancelled")
  S.assert_clean(before)
end

-- A start made in a coroutine of the user's inside a task (whose waits
-- block the run: they cannot yield to it through that coroutine), ready
-- by a check function: the function is called there, as in a plain
-- script (a task spawned for it never ran before that blocked wait had
-- ended: the start failed, "the check function never returned true").
function T.test_a_check_start_in_a_coroutine_of_the_users_inside_a_task()
  local before = S.snapshot()
  appstart.run(function()
    local gen = coroutine.wrap(function()
      coroutine.yield(appstart.start { argv = { F, "pause" }, ready = { check = function() return true end },
        ready_timeout = 2, kill_grace = 0.5, log = S.quiet })
    end)
    local app, err = gen()
    lu.assertNotNil(app, tostring(err))
    lu.assertTrue(app.ready_after < 1, app.ready_after)
    app:terminate()
  end)
  S.assert_clean(before)
end

-- An error value that is not a message (a table, as many libraries raise;
-- nil) is raised from run as it is, from fn and from a spawned task alike,
-- as pcall gives it: it came back as a string, and one whose __tostring
-- raises as that __tostring's error.
function T.test_an_error_value_that_is_not_a_string_is_raised_from_run_as_it_is()
  local E = setmetatable({ code = "E42" }, { __tostring = function(e) return "my error " .. e.code end })
  local B = setmetatable({}, { __tostring = function() error("cannot show") end })
  for _, value in ipairs { E, B, 42 } do
    local ok, err = pcall(appstart.run, function() error(value) end)
    lu.assertFalse(ok)
    lu.assertIs(err, value, "from fn")
    ok, err = pcall(appstart.run, function()
      appstart.spawn(function() error(value) end)
      appstart.sleep(10)
    end)
    lu.assertFalse(ok)
    lu.assertIs(err, value, "from a spawned task")
  end
  local ok, err = pcall(appstart.run, function() error(nil) end)
  lu.assertFalse(ok, "an error of nil is still an error")
  lu.assertNil(err)
  -- a message still comes with the task's traceback
  ok, err = pcall(appstart.run, function() error("a message", 0) end)
  lu.assertFalse(ok)
  lu.assertStrMatches(err, "^a message\nstack traceback:\n.*")
  -- and the loop is usable again afterwards
  local ran = false
  appstart.run(function() appstart.sleep(0.01); ran = true end)
  lu.assertTrue(ran)
end

function T.test_cancel_of_a_sleeping_task_makes_sleep_return_nil_cancelled()
  local r
  local took = S.timed(appstart.run, function()
    local task = appstart.spawn(function() r = table.pack(appstart.sleep(5)) end)
    appstart.sleep(0.02)
    task:cancel()
  end)
  lu.assertEquals(r[1], nil)
  lu.assertEquals(r[2], "cancelled")
  lu.assertTrue(took < 2, "cancel took effect after " .. took .. " s")
end

function T.test_cancel_before_the_task_waits_makes_its_next_wait_cancelled()
  local r
  appstart.run(function()
    local task = appstart.spawn(function() r = table.pack(appstart.sleep(5)) end)
    task:cancel() -- the task has not run yet
  end)
  lu.assertEquals(r[1], nil)
  lu.assertEquals(r[2], "cancelled")
end

function T.test_start_cancelled_from_another_task_fails_cancelled_and_app_is_terminated()
  local before = S.snapshot()
  local pidfile = S.tmpname("cancel")
  local app, err, pid
  local took = S.timed(appstart.run, function()
    local starter = appstart.spawn(function()
      app, err = appstart.start { argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "fd",
        ready_timeout = 30, kill_grace = 0.2, log = S.quiet }
    end)
    pid = await_pidfile_in_loop(pidfile)
    starter:cancel()
  end)
  lu.assertNil(app)
  lu.assertEquals(err.code, "cancelled", tostring(err))
  lu.assertEquals(err.status, { signal = 15 })
  lu.assertTrue(took < 5, "cancelled start took " .. took .. " s")
  lu.assertFalse(S.alive(pid), "app still running")
  S.assert_clean(before)
end

function T.test_on_exit_in_a_loop_runs_when_the_app_exits_with_nobody_waiting()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local seen
  appstart.run(function()
    local app = assert(appstart.start { argv = { F, "line=3:x", "waitfile=" .. go, "exit=3" },
      ready = "fd", ready_timeout = 5, log = S.quiet,
      on_exit = function(a, how) seen = { a = a, how = how } end })
    lu.assertNil(seen)
    S.touch(go)
    lu.assertTrue(await_in_loop(function() return seen ~= nil end, 3), "on_exit never ran")
    lu.assertIs(seen.a, app)
    lu.assertEquals(seen.how, { code = 3 })
    lu.assertEquals(app.state, "exited")
  end)
  S.assert_clean(before)
end

function T.test_run_inside_run_raises()
  local ok, err
  appstart.run(function()
    ok, err = pcall(appstart.run, function() end)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "already running")
end

function T.test_spawn_outside_run_raises()
  local ok, err = pcall(appstart.spawn, function() end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "no loop is running")
end

-- A plain script's app:tail() reads all the pipes hold, also once a
-- supervisor with a watchdog service has been up (its start begun
-- served, by a backend of the supervisor's, registered for good): that
-- backend said it was running, so every plain script's call from then on
-- looked to be inside a loop, and app:tail() read a wake-up's worth (10
-- ms of on_output) and left the rest to a loop that never turns. The
-- app writes its lines, then its ready line: all of them are in the pipe,
-- or read, once the start returns; 50 us of on_output each, they take
-- many wake-ups to hand over.
function T.test_a_plain_scripts_tail_reads_all_the_pipes_hold_after_a_supervisor_was_up()
  local loop = require "appstart.loop"
  local before = S.snapshot()
  local sv = appstart.supervisor { log = S.quiet, services = { a = { argv = { F, "notify=READY=1", "pause" },
    watchdog = 10 } } }
  assert(sv:up())
  sv:down()
  local n = 0
  local app = assert(appstart.start { argv = { F, "lines=1:5000:line", "line=3:ok", "pause" }, ready = "fd",
    stdout = "capture", log = S.quiet, on_output = function()
      n = n + 1
      local t = os.clock() + 0.00005
      repeat until os.clock() >= t
    end })
  lu.assertEquals(app:tail(1), { "line5000" })
  lu.assertEquals(n, 5000)
  lu.assertFalse(loop.inside(), "a plain script's main thread is inside no loop")
  app:terminate()
  app:close()
  S.assert_clean(before)
end

-- ^C at the REPL: lua.c's hook raises "interrupted!" at whatever
-- instruction runs next. The lines of loop.lua's function `name` (found
-- in its text: no line numbers written here), for interrupt_at.
local function lines_of(name, upto)
  local path = assert(package.searchpath("appstart.loop", package.path))
  local list, n, inside = {}, 0, false
  for line in io.lines(path) do
    n = n + 1
    if inside then
      if line == "end" then break end
      if not line:find("^%s*%-%-") and line:find("%S") then list[#list + 1] = n end
      if upto and line:find(upto, 1, true) then break end
    elseif line:find("function " .. name .. "(", 1, true) == 1
      or line:find("local function " .. name .. "(", 1, true) == 1 then
      inside = true
    end
  end
  assert(#list > 0, "no function " .. name .. " in loop.lua")
  return list
end

-- fn(arm) with an "interrupted!" raised, once it has called arm(), the
-- k-th time loop.lua's line `at` (nil: any line) is reached (the hook of this thread's,
-- inherited by the coroutines made meanwhile, as lua.c's is): whether it
-- fired, and what fn's pcall gave.
local function interrupt_at(at, k, fn)
  local hits, fired = 0, false
  local deadline = S.core.now() + 4
  local function arm()
    debug.sethook(function(_, line)
      if S.core.now() > deadline then debug.sethook(); error("watchdog: hung") end
      if (at == nil or line == at) and debug.getinfo(2, "S").short_src:find("appstart/loop.lua", 1, true) then
        hits = hits + 1
        if hits == k then debug.sethook(); fired = true; error("interrupted!") end
      end
    end, "l")
  end
  local ok, err = pcall(fn, arm)
  debug.sethook()
  S.arm_watchdog(4)
  return fired, ok, err
end

-- What interrupt_at gave, checked: fn raised the interrupt where it
-- fired, else returned. 1 where it fired, else 0 (a count of those tried).
local function assert_interrupted(fired, ok, err, where)
  if not fired then
    lu.assertTrue(ok, where .. ": " .. tostring(err))
    return 0
  end
  lu.assertFalse(ok, where)
  lu.assertStrContains(tostring(err), "interrupted!", false, where)
  return 1
end

-- A start's waits, that go through the shared poller (its app read for
-- its output), in a plain script and in appstart.run's tasks; what is
-- interrupted is the waits, not the start's begin (a handle it never
-- returned is the collector's to close).
local function waited_start()
  return appstart.begin { argv = { F, "lines=1:20:x", "line=3:ok", "pause" }, ready = "fd",
    stdout = "capture", kill_grace = 0.05, log = S.quiet }
end
-- (what an interrupt left of the app, ended as a <close> app is)
local ENDS = { __close = function(held) if held.app then local _ <close> = held.app end end }
local INTERRUPTED_WAITS = {
  plain = function(arm)
    local h <close> = waited_start()
    arm()
    local app <close> = assert(h:wait())
    app:terminate()
  end,
  run = function(arm)
    local h <close> = waited_start()
    local held <close> = setmetatable({}, ENDS)
    arm()
    appstart.run(function()
      appstart.spawn(appstart.sleep, 0.01)
      held.app = assert(h:wait())
      appstart.sleep(0.01)
      held.app:terminate()
    end)
  end,
}

-- A ^C between two updates of the loop's waiter sets (remove_waiter
-- emptied a set and was stopped before its count went down) broke every
-- later wait of the process ("attempt to compare nil with number" at each
-- turn) and left the app a zombie. At every line of add_waiter and
-- remove_waiter, each time it is reached: the wait raises the interrupt,
-- and after it the loop still sleeps, starts and ends an app, and holds
-- nothing.
function T.test_a_cancel_at_any_line_of_the_waiter_sets_leaves_the_loop_whole()
  local before = S.snapshot()
  -- (add_waiter up to its last store: a ^C after it is one in its
  -- caller, that never got the watch it made)
  local lines = lines_of("add_waiter", "rawset, waiters")
  for _, n in ipairs(lines_of("remove_waiter")) do lines[#lines + 1] = n end
  local tried = 0
  for _, how in ipairs { "plain", "run" } do
    for _, at in ipairs(lines) do
      for k = 1, 100 do
        local fired, ok, err = interrupt_at(at, k, INTERRUPTED_WAITS[how])
        local where = string.format("%s, loop.lua:%d, hit %d", how, at, k)
        if assert_interrupted(fired, ok, err, where) == 0 then break end
        tried = tried + 1
        lu.assertEquals({ pcall(appstart.sleep, 0.001) }, { true, true }, where .. ": a later sleep")
        local app = appstart.start { argv = { F, "line=3:ok", "exit=0" }, ready = "fd", log = S.quiet }
        lu.assertNotNil(app, where .. ": a later start")
        local st = app:wait(5)
        lu.assertEquals(st and st.code, 0, where .. ": its app's end")
        app:close()
        S.assert_clean(before, where)
      end
    end
  end
  lu.assertTrue(tried > 20, "interrupted only " .. tried .. " times")
end

-- loop.release stopped by a ^C: whoever waited on the descriptor is
-- still waiting on it, or told at the next wait (its watch's fn called);
-- never dropped untold, its watch's fn never called.
function T.test_a_cancel_at_any_line_of_a_release_leaves_no_watch_untold()
  local core, loop = S.core, require "appstart.loop"
  local before = S.snapshot()
  local tried = 0
  for _, at in ipairs(lines_of("loop.release")) do
    local a = assert(core.signals { "USR2" })
    local n, told = a:fd(), false
    local w = loop.watch(n, function() told = true end)
    local fired, ok, err = interrupt_at(at, 1, function(arm) arm(); loop.release(n) end)
    local where = string.format("loop.lua:%d", at)
    tried = tried + assert_interrupted(fired, ok, err, where)
    assert(appstart.sleep(0.001))
    local pending = loop.pending()
    lu.assertTrue(told or pending[1] == n, where .. ": the watch was dropped untold")
    loop.release(n)
    a:close()
    loop.unwatch(w)
    assert(appstart.sleep(0.001))
    S.assert_clean(before, where)
  end
  lu.assertTrue(tried > 5, "interrupted only " .. tried .. " times")
end

-- loop.unwatch stopped by a ^C, then called again (the app's close run
-- again, by its <close>): the watch leaves the poll set then. (It was
-- marked done first, and the second call, seeing it done, left it there:
-- the poll set held open, waiting on it for ever.)
function T.test_a_cancel_at_any_line_of_an_unwatch_then_another_leaves_nothing_waited_on()
  local core, loop = S.core, require "appstart.loop"
  local before = S.snapshot()
  local tried = 0
  for _, at in ipairs(lines_of("loop.unwatch")) do
    local a = assert(core.signals { "USR2" })
    local w = loop.watch(a:fd(), function() end)
    local fired, ok, err = interrupt_at(at, 1, function(arm) arm(); loop.unwatch(w) end)
    local where = string.format("loop.lua:%d", at)
    tried = tried + assert_interrupted(fired, ok, err, where)
    loop.unwatch(w)
    lu.assertEquals((loop.pending()), {}, where .. ": still waited on")
    a:close()
    assert(appstart.sleep(0.001)) -- (the poll set, at rest, closed by a wait)
    S.assert_clean(before, where)
  end
  lu.assertTrue(tried > 3, "interrupted only " .. tried .. " times")
end

-- For every k, a round (round(state), state = setup()) interrupted at the
-- k-th line loop.lua runs, until one runs to its end uninterrupted; after
-- each, a turn of the loop (what is due fires), check(state, where), and
-- no live timer left. At least `least` rounds interrupted; nothing leaked.
local function interrupted_at_every_line(least, setup, round, check)
  local loop = require "appstart.loop"
  local before = S.snapshot()
  local tried = 0
  for k = 1, 100000 do
    local state = setup()
    local hit, ok, err = interrupt_at(nil, k, function(arm)
      arm()
      round(state)
    end)
    local where = string.format("line %d of loop.lua run", k)
    if assert_interrupted(hit, ok, err, where) == 0 then break end
    tried = tried + 1
    assert(appstart.sleep(0.001))
    check(state, where)
    local _, timers = loop.pending()
    lu.assertEquals(timers, 0, where .. ": timers left")
  end
  lu.assertTrue(tried >= least, "interrupted only " .. tried .. " times")
  S.assert_clean(before)
end

-- The timer heap stopped by a ^C (at the k-th line loop.lua runs, for
-- every k) as timers are made and cancelled, enough of them cancelled
-- that the heap is rebuilt without them: none is lost or held twice. Each
-- timer made and not cancelled fires once, in the order of their times; a
-- cancelled one never; the one whose making or cancel was stopped, at most
-- once. (The heap's sifts and its rebuild were Lua: a ^C in the middle of
-- one held a timer twice and lost another, a wait that never woke.)
function T.test_a_cancel_at_any_line_of_the_timer_heap_loses_no_timer()
  local loop = require "appstart.loop"
  local N = 70
  interrupted_at_every_line(200, function()
    local st = { made = {}, cancelled = {}, fired = {}, at = {}, doing = nil, t0 = S.core.now() }
    function st.note(i) st.fired[#st.fired + 1] = i end
    return st
  end, function(st)
    -- (their times out of order, so that each push moves up the heap)
    for i = 1, N do
      st.doing = i
      st.at[i] = st.t0 + ((i * 37) % N) * 1e-6
      st.made[i] = loop.timer(st.at[i], st.note, i)
    end
    -- (37 of 70: the heap is rebuilt at the 36th)
    for i = 1, N do
      if i % 2 == 1 or i <= 4 then
        st.doing = i
        loop.cancel(st.made[i])
        st.cancelled[i] = true
      end
    end
    st.doing = nil
  end, function(st, where)
    local count, fired, at = {}, st.fired, st.at
    for n, i in ipairs(fired) do
      count[i] = (count[i] or 0) + 1
      lu.assertTrue(count[i] == 1, where .. ": timer " .. i .. " fired twice")
      if n > 1 then lu.assertTrue(at[fired[n - 1]] <= at[i], where .. ": timers fired out of order") end
    end
    for i = 1, N do
      if i ~= st.doing then
        local expected = (st.made[i] and not st.cancelled[i]) and 1 or 0
        lu.assertEquals(count[i] or 0, expected, where .. ": timer " .. i .. (expected == 1 and " lost" or " fired"))
      end
    end
  end)
end

-- The loop stopped by a ^C as it fires its timers (at the k-th line
-- loop.lua runs, for every k): each timer due is called once all the
-- same, by that turn or the next. (One popped and not called yet was
-- lost: a wait that never woke.)
function T.test_a_cancel_at_any_line_of_a_turn_that_fires_timers_loses_none()
  local loop = require "appstart.loop"
  local N = 10
  interrupted_at_every_line(20, function()
    local count = {}
    local function note(i) count[i] = (count[i] or 0) + 1 end
    local t0 = S.core.now()
    for i = 1, N do loop.timer(t0, note, i) end
    return count
  end, function()
    appstart.sleep(0.001)
  end, function(count, where)
    for i = 1, N do
      lu.assertEquals(count[i] or 0, 1, where .. ": timer " .. i .. " called")
    end
  end)
end

return { TestLoop = T }
