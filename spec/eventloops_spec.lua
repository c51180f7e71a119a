--- appstart under the event loops Lua users already run: cqueues and luv.
-- A timer keeps ticking on time while starts wait; apps and watches are
-- pollable objects.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F = S.fixture

-- an app that is ready after 0.4 s and exits 3 after another 0.2 s
local function slow_app()
  return { argv = { F, "sleep=0.4", "line=3:slow", "sleep=0.2", "exit=3" }, ready = "fd",
    log = function() end }
end

local TC = {}

function TC.tearDown() S.kill_strays() end

function TC.test_start_and_wait_yield_to_cqueues_while_a_timer_ticks()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local ticks, late, stop = 0, 0, false
  cq:wrap(function()
    while not stop do
      local t0 = S.core.now()
      cqueues.sleep(0.02)
      ticks = ticks + 1
      if S.core.now() - t0 > 0.2 then late = late + 1 end
    end
  end)
  local exits, ready_ticks, how = 0, nil, nil
  cq:wrap(function()
    local opts = slow_app()
    opts.on_exit = function() exits = exits + 1 end
    local app = assert(appstart.start(opts))
    ready_ticks = ticks
    how = app:wait()
    cqueues.sleep(0.05) -- let the on_exit coroutine run
    stop = true
  end)
  assert(cq:loop())
  lu.assertTrue(ready_ticks >= 8, "the timer ticked while the start waited: " .. ready_ticks)
  lu.assertEquals(late, 0, "no tick was held up by appstart")
  lu.assertEquals(how, { code = 3 })
  lu.assertEquals(exits, 1)
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- A coroutine of cqueues' that raises is not closed by cqueues: its
-- to-be-closed variables run when the caller closes it (README: the
-- thread cq:loop() returns), which terminates a start it held, and not
-- before (Lua's rule: an errored coroutine keeps its variables until
-- coroutine.close).
function TC.test_a_coroutine_that_raised_ends_its_close_variables_once_closed()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local pidfile, trapped = S.tmpname("pid"), S.tmpname("trap")
  cq:wrap(function()
    local h <close> = appstart.begin { argv = { F, "pidfile=" .. pidfile, "trap=TERM:" .. trapped, "pause" },
      ready = "fd", kill_grace = 0.2, log = S.quiet }
    h:step()
    S.await_file(pidfile)
    error("boom")
  end)
  local ok, err, _, co = cq:loop()
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom")
  local pid = S.pid_in(pidfile)
  lu.assertTrue(S.alive(pid), "running until its coroutine is closed")
  lu.assertEquals(type(co), "thread")
  lu.assertEquals(select(2, coroutine.close(co)), err)
  lu.assertFalse(S.alive(pid), "terminated as the coroutine was closed")
  lu.assertEquals(S.read(trapped), "15\n", "SIGTERM first")
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- Two coroutines wait on one app, a third with a timeout: when that
-- third's wait ends, the two others go on waiting without a spin (each
-- wait, ending, took the app's pidfd out of the controller's poll set,
-- which woke the other, which polled again and did the same: the CPU of
-- a busy loop until the app exited).
function TC.test_waits_on_one_app_end_without_waking_each_other()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local hows, cpu, wall = {}, nil, nil
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:up", "sleep=1", "exit=4" }, ready = "fd" })
    local c0, t0 = os.clock(), S.core.now()
    for i, timeout in ipairs { false, false, 0.1 } do
      cq:wrap(function() hows[i] = app:wait(timeout or nil) or "timeout" end)
    end
    while not (hows[1] and hows[2]) do cqueues.sleep(0.05) end
    cpu, wall = os.clock() - c0, S.core.now() - t0
    app:close()
  end)
  assert(cq:loop())
  lu.assertEquals(hows, { { code = 4 }, { code = 4 }, "timeout" })
  lu.assertTrue(cpu < wall / 4, string.format("%.2f s of CPU over the %.2f s of the waits", cpu, wall))
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- Two coroutines wait on an app a third terminates (one of them polls it
-- itself first, cqueues.poll(app)): the controller goes on. Its next
-- update of the pidfd the two polled, cancelled and closed at the app's
-- end, failed: cq:loop() returned false, "... Bad file descriptor", one
-- waiter still waiting.
function TC.test_an_app_two_coroutines_wait_on_ends_without_failing_the_controller()
  local cqueues = require "cqueues"
  for _, user_poll in ipairs { false, true } do
    local before = S.snapshot()
    local cq = cqueues.new()
    local got = {}
    cq:wrap(function()
      local app = assert(appstart.start { argv = { F, "line=3:up", "pause" }, ready = "fd" })
      for i = 1, 2 do
        cq:wrap(function()
          if user_poll and i == 1 then cqueues.poll(app) end
          got[i] = app:wait()
        end)
      end
      cq:wrap(function() got[3] = app:terminate() end)
    end)
    local ok, err = cq:loop(5)
    lu.assertTrue(ok, (user_poll and "cqueues.poll(app): " or "app:wait(): ") .. tostring(err))
    lu.assertTrue(cq:empty())
    lu.assertEquals(got, { { signal = 15 }, { signal = 15 }, { signal = 15 } })
    cq = nil -- luacheck: ignore
    collectgarbage()
    S.assert_clean(before)
  end
end

-- What an app tells in one step comes to the callbacks in its order:
-- cqueues runs the coroutines wrapped in one step last first, which made
-- a supervisor take a reload's "ready" before its "reloading" (the
-- service left "reloading" for good) and on_exit run before a last
-- on_status. The launcher is kept busy (blocked, not yielding) until the
-- app has told it all, so that one step reads everything.
function TC.test_callbacks_come_in_the_order_the_app_told_them()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local seen, events, state = {}, {}, nil
  local told = { S.tmpname("told"), S.tmpname("told") }
  local cq = cqueues.new()
  cq:wrap(function()
    local app = assert(appstart.start {
      argv = { F, "notify=READY=1", "sleep=0.1", "notify=STATUS=last", "pidfile=" .. told[1], "exit=0" },
      on_status = function(_, text) seen[#seen + 1] = text end,
      on_exit = function() seen[#seen + 1] = "on_exit" end,
    })
    lu.assertTrue(S.await_gone(S.pid_in(told[1]))) -- (the controller held)
    app:wait(5)
    cqueues.sleep(0.05)
  end)
  local ok, err = cq:loop(10)
  lu.assertTrue(ok, tostring(err))
  lu.assertEquals(seen, { "last", "on_exit" })
  cq = cqueues.new()
  cq:wrap(function()
    local sv = appstart.supervisor {
      log = function() end,
      on_event = function(_, st) events[#events + 1] = st end,
      services = { a = { argv = { F, "notify=READY=1", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1",
        "pidfile=" .. told[2], "pause" } } },
    }
    assert(sv:up())
    S.pid_in(told[2])
    -- (the reload's datagrams are sent: the controller reads them, 5 s at most)
    local deadline = S.core.now() + 5
    while #events < 4 and S.core.now() < deadline do cqueues.sleep(0.01) end
    state = sv:status("a").state
    sv:down()
  end)
  ok, err = cq:loop(10)
  lu.assertTrue(ok, tostring(err))
  lu.assertEquals(state, "ready", table.concat(events, " "))
  lu.assertEquals(events, { "starting", "ready", "reloading", "ready", "stopping", "stopped" })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- A timer of appstart's in the controller (the watchdog's) cancelled
-- before its coroutine first ran: the coroutine saw no cancel, and slept to
-- the deadline, holding cq:loop() for the watchdog's whole period after
-- the app was closed.
function TC.test_a_timer_cancelled_before_it_first_ran_holds_the_controller_no_longer()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local pid
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, watchdog = 600, log = S.quiet })
    pid = app.pid
    app:close()
  end)
  assert(cq:loop(10))
  lu.assertTrue(cq:empty(), "cq:loop() was held by the watchdog's timer of a closed app")
  cq = nil -- luacheck: ignore
  collectgarbage()
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid))
  S.reap_children()
  S.assert_clean(before)
end

function TC.test_many_starts_at_once_in_one_controller()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local ready = 0
  local t0 = S.core.now()
  for i = 1, 20 do
    cq:wrap(function()
      local app = assert(appstart.start { argv = { F, "sleep=0.3", "line=3:n" .. i, "pause" }, ready = "fd" })
      ready = ready + 1
      app:terminate(1)
    end)
  end
  assert(cq:loop())
  lu.assertEquals(ready, 20)
  lu.assertTrue(S.core.now() - t0 < 3, "concurrent, not one after another")
end

function TC.test_app_and_watch_are_pollable_by_cqueues_poll()
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here (valgrind 3.19 knows no pidfd_open)")
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local got
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:p", "sleep=0.2", "exit=0" }, ready = "fd" })
    lu.assertIsNumber(app:pollfd())
    lu.assertEquals(app:events(), "r")
    local r = cqueues.poll(app, 5)
    got = (r == app)
    lu.assertEquals(app:wait(1), { code = 0 })
    -- the controller goes on, with other descriptors (of the same numbers)
    local app2 = assert(appstart.start { argv = { F, "line=3:two", "pause" }, ready = "fd" })
    cqueues.sleep(0.02)
    app2:terminate(1)
  end)
  assert(cq:loop())
  lu.assertTrue(got, "cqueues.poll woke on the app's exit")
end

-- Once an app has ended (or been closed), or a watch is done, a poll of
-- it returns at once: nothing is left to make its descriptor readable.
function TC.test_an_ended_app_and_a_done_watch_poll_at_once()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local got = {}
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:p", "exit=0" }, ready = "fd" })
    lu.assertEquals(app:wait(5), { code = 0 })
    local w = appstart.watch(app.pid, function() end) -- gone already: reported at the next wait
    cqueues.sleep(0.01)
    got.app = cqueues.poll(app, 5) == app
    got.watch = cqueues.poll(w, 5) == w
    local other = assert(appstart.start { argv = { F, "line=3:q", "pause" }, ready = "fd" })
    other:close()
    got.closed = cqueues.poll(other, 5) == other
    os.execute("kill -9 " .. other.pid)
  end)
  local t0 = S.core.now()
  assert(cq:loop())
  lu.assertEquals(got, { app = true, watch = true, closed = true })
  lu.assertTrue(S.core.now() - t0 < 4, "a poll waited for its timeout")
end

-- A watch the main thread made, polled with cqueues.poll in a controller
-- that does not serve it: its end is seen at the poll that follows it (as
-- a look at an app's state sees the app's), the watch done, its fn due and
-- run once by the main thread's next call that waits; its pidfd, readable
-- for good, had each poll return at once and the watch never done (the
-- loop below spun to its bound).
function TC.test_a_watch_the_main_thread_made_is_done_at_its_poll()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local app = assert(appstart.start { argv = { F, "line=3:p", "sleep=0.2", "exit=0" }, ready = "fd" })
  local calls = {}
  local w = appstart.watch(app.pid, function(pid, why) calls[#calls + 1] = why .. " " .. pid end)
  local cq = cqueues.new()
  local polls = 0
  cq:wrap(function()
    while not w.done and polls < 1000 do
      cqueues.poll(w, 5)
      polls = polls + 1
    end
  end)
  assert(cq:loop())
  lu.assertTrue(w.done)
  lu.assertTrue(polls < 100, polls .. " polls") -- (a few: one a poll_interval without pidfds)
  w:stop() -- (its end seen: "exited" is due, not "stopped")
  lu.assertEquals(app:wait(1), { code = 0 })
  appstart.sleep(0.01)
  lu.assertEquals(calls, { "exited " .. app.pid })
  app:close()
  cq:close()
  S.assert_clean(before)
end

-- The same for a pid gone before the watch was made: done at once, its fn
-- due (the loop spun to its bound: no process to poll, the watch was never
-- done, and its timeout 0 had each poll return at once).
function TC.test_a_watch_the_main_thread_made_of_a_gone_pid_is_done_at_once()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local p = assert(io.popen("echo $$"))
  local pid = tonumber(p:read("l"))
  p:close() -- the shell has exited and been reaped
  local calls = {}
  local w = appstart.watch(pid, function(_, why) calls[#calls + 1] = why end)
  local cq = cqueues.new()
  local polls = 0
  cq:wrap(function()
    while not w.done and polls < 1000 do
      cqueues.poll(w, 5)
      polls = polls + 1
    end
  end)
  assert(cq:loop())
  lu.assertTrue(w.done)
  lu.assertTrue(polls < 2, polls .. " polls")
  w:stop() -- (its end seen: "exited" is due, not "stopped")
  appstart.sleep(0.01)
  lu.assertEquals(calls, { "exited" })
  cq:close()
  S.assert_clean(before)
end

-- A watch made in a controller's coroutine and polled there with
-- cqueues.poll: its fn runs in a coroutine of that controller, as the
-- watch's own, and what it raises comes out of cq:loop() (seen as the
-- poll asked for its descriptor, it ran inside cqueues' step, on the main
-- thread, its error only logged).
function TC.test_a_watch_polled_in_its_controller_runs_fn_in_a_coroutine()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local ran_in
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:p", "sleep=0.1", "exit=0" }, ready = "fd" })
    local w = appstart.watch(app.pid, function()
      ran_in = select(2, coroutine.running()) and "main" or "coroutine"
      error("from fn", 0)
    end)
    while not w.done do cqueues.poll(w, 5) end
    app:wait(1)
  end)
  local ok, err = cq:loop()
  lu.assertEquals(ran_in, "coroutine")
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "from fn")
  assert(cq:loop()) -- (the coroutine that waits on the app goes on)
  cq:close()
  S.assert_clean(before)
end

-- A controller dropped for good (its coroutines never resumed again)
-- while it watched an app's end and read its notify socket: once the app
-- is terminated and the controller collected, no descriptor is left.
function TC.test_a_controller_dropped_while_it_watched_leaves_no_descriptor()
  local cqueues = require "cqueues"
  collectgarbage()
  local before = S.snapshot()
  local app
  do
    local cq = cqueues.new()
    cq:wrap(function()
      app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, on_exit = function() end })
      cqueues.sleep(30)
    end)
    local t = S.core.now()
    while not app and S.core.now() - t < 5 do cq:step(0.05) end
  end
  lu.assertEquals(app:terminate(1), { signal = 15 })
  collectgarbage()
  collectgarbage()
  S.assert_clean(before)
end

-- A captured output pipe whose writer goes away (an app that closes its
-- stdout and runs on) polls POLLHUP without POLLIN: the listener took only
-- a poll that named its object, so it polled again at once, for good (a
-- core's whole time, and cq:loop never returned).
function TC.test_a_pipe_closed_by_the_app_is_read_to_its_end_not_spun_on()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local app
  cq:wrap(function()
    app = assert(appstart.start { argv = { F, "line=3:r", "echo=x", "close=1", "pause" }, ready = "fd",
      stdout = "capture", log = function() end })
  end)
  assert(cq:loop(5))
  local c0, t0 = os.clock(), S.core.now()
  local ok = cq:loop(0.5)
  local cpu, took = os.clock() - c0, S.core.now() - t0
  app:terminate(1)
  assert(ok)
  lu.assertTrue(cpu < 0.2, string.format("%.2f s of CPU in %.2f s with the app's stdout closed", cpu, took))
  lu.assertEquals(app:tail(), { "x" })
end

-- Apps ended from outside the controller that served them (the main
-- thread), the controller kept: each kept two descriptors (its copies of
-- the pidfd and of the notify socket) until that controller ran again.
function TC.test_apps_ended_outside_their_controller_keep_no_descriptor()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  collectgarbage()
  local before = S.snapshot() -- (the controller's own descriptors in it)
  local apps, exits = {}, 0
  cq:wrap(function()
    for i = 1, 5 do
      apps[i] = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, log = function() end,
        on_exit = function() exits = exits + 1 end })
    end
  end)
  assert(cq:loop(5))
  for _, app in ipairs(apps) do lu.assertEquals(app:terminate(1), { signal = 15 }) end
  lu.assertEquals(exits, 5)
  S.assert_clean(before, "the controller not run again")
  assert(cq:loop(1))
end

function TC.test_a_failed_start_under_cqueues_leaves_nothing()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local err
  cq:wrap(function()
    local _
    _, err = appstart.start { argv = { F, "pause" }, ready = "fd", ready_timeout = 0.3, kill_grace = 0.2,
      log = function() end }
  end)
  assert(cq:loop())
  lu.assertEquals(err.code, "timeout")
  lu.assertEquals(err.status, { signal = 15 })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- A start whose descriptors its epoll set cannot take (ENOSPC: the
-- kernel's limit on watches, forced here) is stepped at an interval
-- instead: the set of a start under cqueues lacks every descriptor, so
-- only that interval moves it on. It failed before: the set's making
-- raised, and an app's pidfd the set could not take once its pid was
-- proven failed the start as bad_pid, whose app is never signalled.
local ENOSPC = 28
local function behind_a_helper(app_part)
  local argv = { F, "fork" }
  for _, a in ipairs(app_part) do argv[#argv + 1] = a end
  for _, a in ipairs { "|", "int32=3:child", "exit=0" } do argv[#argv + 1] = a end
  return argv
end

function TC.test_a_start_its_poll_set_cannot_take_is_stepped_at_an_interval()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local app, err, how
  S.testing.epoll_fault(ENOSPC)
  cq:wrap(function()
    app, err = appstart.start { helper = behind_a_helper { "sleep=0.3", "line=4:probed", "pause" },
      argv = { "pause" }, ready = "fd", ready_timeout = 10, log = function() end }
    S.testing.epoll_fault(0)
    if app then how = app:terminate(1) end
  end)
  local ok, why = cq:loop()
  S.testing.epoll_fault(0)
  assert(ok, why)
  lu.assertNil(err)
  lu.assertEquals(app.name, "probed")
  lu.assertEquals(how, { signal = 15 })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- The same once the pid is on its way: the set, made, cannot take the
-- app's pidfd nor its ready channel; the start times out and its app is
-- terminated.
function TC.test_an_app_whose_pidfd_the_poll_set_cannot_take_is_terminated_at_its_timeout()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local err
  cq:wrap(function()
    local h = appstart.begin { helper = behind_a_helper { "sleep=0.1", "pause" },
      argv = { "pause" }, ready = "fd", ready_timeout = 0.6, kill_grace = 1, log = function() end }
    assert(h:pollfd(), "the start's poll set is made")
    S.testing.epoll_fault(ENOSPC)
    local _
    _, err = h:wait()
    S.testing.epoll_fault(0)
  end)
  local ok, why = cq:loop()
  S.testing.epoll_fault(0)
  assert(ok, why)
  lu.assertEquals(err.code, "timeout", tostring(err))
  lu.assertEquals(err.status, { signal = 15 })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- A generator of the user's (coroutine.wrap) inside a controller's
-- coroutine, which sleeps and starts apps: its waits yielded cqueues' poll
-- to the generator's caller, who took cqueues' values for the
-- generator's own and resumed it at once, thousands of times a start (a
-- sleep returned the poll's values). Its waits block there, as the main
-- thread's do, and its caller gets what it yields, nothing else.
function TC.test_a_generator_inside_a_controller_yields_only_its_own_values()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local got, apps = {}, {}
  cq:wrap(function()
    local gen = coroutine.wrap(function()
      coroutine.yield(appstart.sleep(0.05))
      for i = 1, 2 do
        local app = assert(appstart.start { argv = { F, "sleep=0.05", "line=3:up" .. i, "pause" }, ready = "fd",
          log = S.quiet })
        apps[i] = app
        coroutine.yield(app.name)
      end
      return "done"
    end)
    -- (ten values at most: what took cqueues' for the generator's got
    -- thousands; those not a string or a boolean by their type)
    for _ = 1, 10 do
      local v = gen()
      got[#got + 1] = (type(v) == "string" or type(v) == "boolean") and v or type(v)
      if v == "done" then break end
    end
    for _, app in pairs(apps) do app:terminate() end
  end)
  assert(cq:loop(20))
  lu.assertEquals(got, { true, "up1", "up2", "done" })
  lu.assertTrue(cq:empty())
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- The same for a supervisor's call from such a generator (sv:up() of a
-- supervisor the controller's coroutine made): its wait polled through
-- cqueues, which yielded to the generator's caller, who never saw the
-- call's result. It blocks there, as a plain script's call does.
function TC.test_a_supervisors_call_from_a_generator_inside_a_controller_blocks()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local got = {}
  cq:wrap(function()
    local sv = appstart.supervisor { log = S.quiet, services = { a = { argv = { F, "sleep=0.05", "line=3:up",
      "pause" }, ready = "fd" } } }
    local gen = coroutine.wrap(function()
      coroutine.yield(sv:up())
      return "done"
    end)
    for _ = 1, 10 do
      local v = gen()
      got[#got + 1] = (type(v) == "string" or type(v) == "boolean") and v or type(v)
      if v == "done" then break end
    end
    sv:down()
  end)
  assert(cq:loop(20))
  lu.assertEquals(got, { true, "done" })
  lu.assertTrue(cq:empty())
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

local TL = {}

function TL.tearDown() S.kill_strays() end

-- An app started from the main thread, before uv.run: its on_exit ran
-- only once uv.run had returned (nothing served the waits made outside
-- luv). The calls that wait inside luv serve them too, as a plain
-- script's do.
function TL.test_an_app_started_before_uv_run_is_seen_by_the_waits_inside_it()
  local uv = require "luv"
  require "appstart.luv"
  local exited_at, body_done
  local app = assert(appstart.start { argv = { F, "line=3:r", "sleep=0.1", "exit=7" }, ready = "fd",
    log = function() end, on_exit = function() exited_at = exited_at or S.core.now() end })
  local co = coroutine.wrap(function()
    -- (the waits inside luv, until the app's end has been told, 5 s at
    -- most: were it not served by them, on_exit comes after body_done)
    local deadline = S.core.now() + 5
    while not exited_at and S.core.now() < deadline do appstart.sleep(0.01) end
    appstart.sleep(0.01)
    body_done = S.core.now()
  end)
  co()
  uv.run()
  lu.assertNotNil(exited_at, "on_exit never ran")
  lu.assertTrue(exited_at <= body_done, "on_exit ran after the loop's work, not at a wait inside it")
  lu.assertEquals(app.how, { code = 7 })
end

-- An app that pings its watchdog on time while the launcher is busy for
-- longer than the period: libuv runs the watchdog's timer before it polls
-- the notify socket, where the pings wait; they are read first, and the
-- app lives (it was killed by SIGABRT, as under no other loop).
function TL.test_pings_that_came_while_the_launcher_was_busy_count_under_luv()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local app, err, how
  coroutine.wrap(function()
    app, err = appstart.start { argv = { F, "notify=READY=1", "notifyerrors=ignore", "repeat=100:0.1:WATCHDOG=1",
      "pause" }, watchdog = 1, log = function() end }
    if not app then return end
    -- (after a poll: the next one comes after the timers)
    local busy = uv.new_check()
    busy:start(function()
      busy:close()
      local t = S.core.now()
      while S.core.now() - t < 1.5 do end -- (busy: no poll for 1.5 s)
    end)
    appstart.sleep(1.8)
    how = app.how
    app:terminate(1)
  end)()
  uv.run()
  lu.assertNil(err)
  lu.assertNil(how, "the app was killed: " .. tostring(how))
  lu.assertEquals(app.how, { signal = 15 })
  S.assert_clean(before)
end

-- An app closed by its on_status, from a datagram that also pings its
-- watchdog: under luv on_status runs inside the read of that datagram,
-- which went on to arm a new watchdog timer for the closed app, holding
-- uv.run() for the watchdog's whole period.
function TL.test_an_app_closed_by_on_status_leaves_no_watchdog_timer_under_luv()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local go = S.tmpname("go")
  local pid, closed, held = nil, false, false
  coroutine.wrap(function()
    local app = assert(appstart.start { argv = { F, "notify=READY=1", "waitfile=" .. go,
      "notify=STATUS=bye\\nWATCHDOG=1", "pause" }, watchdog = 600, log = S.quiet,
      on_status = function(a, text)
        if text == "bye" then
          a:close()
          closed = true
        end
      end })
    pid = app.pid
    S.touch(go)
  end)()
  -- (not a handle that holds the loop: it ends one that something else holds)
  local guard = uv.new_timer()
  guard:start(10000, 0, function()
    held = true
    uv.stop()
  end)
  guard:unref()
  uv.run()
  guard:close()
  uv.run("nowait")
  os.execute("kill -9 " .. pid)
  lu.assertTrue(S.await_gone(pid, 5))
  lu.assertTrue(closed, "on_status never closed the app")
  lu.assertFalse(held, "uv.run() was held by a timer of the closed app")
  S.assert_clean(before)
end

-- A coroutine of the user's resumed by its owner (a generator), uv.run
-- not running, the luv adapter loaded: its first wait yields to the
-- owner (nothing else can tell it from one uv.run will resume), and once
-- resumed by the owner, not by uv, that wait and its later ones block as
-- the main thread's do. (Its start was reported cancelled, the app
-- terminated though ready, and its later waits yielded again.)
function TL.test_a_generator_resumed_by_its_owner_blocks_after_one_yield()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local exits = 0
  local gen = coroutine.wrap(function()
    local apps = {}
    for i = 1, 2 do
      local app, err = appstart.start { argv = { F, "sleep=0.1", "line=3:ok" .. i, "sleep=0.2", "exit=" .. i },
        ready = "fd", log = function() end, on_exit = function() exits = exits + 1 end }
      apps[i] = app
      coroutine.yield(app or err)
    end
    appstart.sleep(0.05)
    coroutine.yield("slept")
    coroutine.yield(apps[1]:wait(5), apps[2]:wait(5))
  end)
  lu.assertEquals(select("#", gen()), 0, "the first wait yields to the owner")
  local app1 = gen()
  lu.assertEquals(tostring(app1), string.format('appstart.app(fixture, name "ok1", pid %d, ready)', app1.pid))
  local app2 = gen()
  lu.assertEquals(app2.name, "ok2")
  lu.assertEquals(gen(), "slept")
  local how1, how2 = gen()
  lu.assertEquals(how1, { code = 1 })
  lu.assertEquals(how2, { code = 2 })
  lu.assertEquals(exits, 2)
  local active = {}
  uv.walk(function(h) if h:is_active() then active[#active + 1] = tostring(h) end end)
  lu.assertEquals(active, {})
  S.assert_clean(before)
end

-- app:tail() from a callback of uv.run's on the main thread, the app's
-- pipe full of short lines and on_output slow (20 us a line): it reads a
-- wake-up's worth, as inside any loop, and leaves the rest to uv (it read
-- all the pipe held, uv.run held for seconds).
function TL.test_tail_in_a_uv_callback_reads_a_slice_at_most()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local app, took, tailed
  local slow = true
  coroutine.wrap(function()
    app = assert(appstart.start { argv = { F, "line=3:ok", "sleep=0.2", "lines=1:100000:x", "pause" }, ready = "fd",
      stdout = "capture", log = function() end, on_output = function()
        if slow then
          local t = S.core.now() + 0.00002
          repeat until S.core.now() >= t
        end
      end })
  end)()
  local timer = uv.new_timer()
  timer:start(500, 0, function()
    local t = S.core.now() + 0.3
    repeat until S.core.now() >= t -- (no yield: the pipe fills)
    local c = os.clock()
    tailed = app:tail(1)
    took = os.clock() - c
    slow = false
    timer:close()
    coroutine.wrap(function() app:terminate() end)()
  end)
  uv.run()
  lu.assertEquals(#tailed, 1)
  local instrumented = os.getenv("APPSTART_SAN_PRELOAD") or os.getenv("APPSTART_VFORK_IS_FORK")
  if not instrumented then lu.assertTrue(took < 0.25, "app:tail took " .. took .. " s of CPU") end
  S.assert_clean(before)
end

function TL.test_start_and_wait_in_a_coroutine_driven_by_uv_run()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local ticks, ready_ticks, how, exits = 0, nil, nil, 0
  local last, late = S.core.now(), 0
  local timer = uv.new_timer()
  timer:start(20, 20, function()
    ticks = ticks + 1
    if S.core.now() - last > 0.2 then late = late + 1 end
    last = S.core.now()
  end)
  coroutine.wrap(function()
    local opts = slow_app()
    opts.on_exit = function() exits = exits + 1 end
    local app = assert(appstart.start(opts))
    ready_ticks = ticks
    how = app:wait()
    timer:stop()
    timer:close()
  end)()
  uv.run()
  lu.assertTrue(ready_ticks >= 8, "the uv timer ticked while the start waited: " .. ready_ticks)
  lu.assertEquals(late, 0)
  lu.assertEquals(how, { code = 3 })
  lu.assertEquals(exits, 1)
  S.assert_clean(before)
end

function TL.test_watch_callback_runs_from_uv_run()
  local uv = require "luv"
  require "appstart.luv"
  local why, app
  coroutine.wrap(function()
    app = assert(appstart.start { argv = { F, "line=3:w", "pause" }, ready = "fd" })
    appstart.watch(app.pid, function(_, w) why = w end)
    local t = uv.new_timer()
    t:start(50, 0, function() t:close(); app:kill("KILL") end)
  end)()
  uv.run()
  lu.assertEquals(why, "exited")
  -- (the app's end, which nothing waited for in the loop, is its wait's)
  lu.assertEquals(app:wait(), { signal = 9 })
end

function TL.test_a_wait_far_beyond_libuvs_timer_range_works()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local how
  coroutine.wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:x", "sleep=0.1", "exit=2" }, ready = "fd" })
    -- 1e17 s in milliseconds is past what a libuv timer takes (it aborts)
    how = app:wait(1e17)
  end)()
  uv.run()
  lu.assertEquals(how, { code = 2 })
  S.assert_clean(before)
end

function TL.test_a_failed_start_under_luv_leaves_nothing()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local err
  coroutine.wrap(function()
    local _
    _, err = appstart.start { argv = { F, "exit=5" }, ready = "fd", log = function() end }
  end)()
  uv.run()
  lu.assertEquals(err.code, "died")
  lu.assertEquals(err.status, { code = 5 })
  S.assert_clean(before)
end

-- One party waits on an app (app:wait) while another ends its handle:
-- reads app.state once it has been killed (which reaps it and closes its
-- descriptor), then starts another app (whose descriptors may take the
-- same numbers); or closes the app. The waiter gets the end, or
-- nil, "closed", and nothing hangs. In each context: appstart.run,
-- cqueues, luv.
local function waiter_and_closer(context, closer_closes)
  local got = {}
  local function scenario(spawn_waiter, sleep)
    local app1 = assert(appstart.start { argv = { F, "line=3:one", "pause" }, ready = "fd" })
    spawn_waiter(function() got.a = { app1:wait(5) } end)
    sleep(0.05)
    -- the waiter is looked at until it returns, 4 s at most: within its
    -- own 5 s timeout, so one that missed what happened is caught
    local function await_waiter()
      local t = S.core.now()
      while not got.a and S.core.now() - t < 4 do sleep(0.01) end
    end
    if closer_closes then
      app1:close()
      await_waiter()
      got.closed_a = got.a
      os.execute("kill -9 " .. app1.pid)
      S.await_gone(app1.pid)
      -- a closed app that has exited is reaped by the calls that wait
      appstart.sleep(0.01)
      got.children = table.concat(S.children(), ",")
      return
    end
    app1:kill("KILL")
    S.await_gone(app1.pid) -- (no yield: the waiter has not run meanwhile)
    got.state = app1.state
    local app2 = assert(appstart.start { argv = { F, "line=3:two", "sleep=0.1", "exit=2" }, ready = "fd" })
    got.b = app2:wait(5)
    await_waiter()
    got.a_by_then = got.a -- (not at the wait's 5 s timeout)
  end
  if context == "run" then
    appstart.run(function() scenario(appstart.spawn, appstart.sleep) end)
  elseif context == "cqueues" then
    local cqueues = require "cqueues"
    local cq = cqueues.new()
    cq:wrap(function() scenario(function(fn) cq:wrap(fn) end, cqueues.sleep) end)
    assert(cq:loop(10))
    cq = nil -- luacheck: ignore (its own descriptors go with it)
    collectgarbage()
  else
    local uv = require "luv"
    require "appstart.luv"
    coroutine.wrap(function()
      scenario(function(fn) coroutine.wrap(fn)() end, appstart.sleep)
    end)()
    uv.run()
  end
  return got
end

-- app:reload() waiting for a notify app's RELOADING=1 while another
-- coroutine closes the app: woken, nil, "closed" (under luv and cqueues
-- it waited out ready_timeout, then said "not reloaded").
local function reload_then_close(context)
  local got = {}
  local function scenario(spawn, sleep)
    local app = assert(appstart.start { argv = { F, "ignore=HUP", "notify=READY=1", "pause" }, ready_timeout = 5,
      log = function() end })
    got.pid = app.pid
    spawn(function()
      local t = S.core.now()
      got.reload = { app:reload() }
      got.took = S.core.now() - t
    end)
    sleep(0.2)
    app:close()
    local t = S.core.now()
    while not got.reload and S.core.now() - t < 6 do sleep(0.05) end
  end
  if context == "run" then
    appstart.run(function() scenario(appstart.spawn, appstart.sleep) end)
  elseif context == "cqueues" then
    local cqueues = require "cqueues"
    local cq = cqueues.new()
    cq:wrap(function() scenario(function(fn) cq:wrap(fn) end, cqueues.sleep) end)
    assert(cq:loop(10))
  else
    local uv = require "luv"
    require "appstart.luv"
    coroutine.wrap(function() scenario(function(fn) coroutine.wrap(fn)() end, appstart.sleep) end)()
    uv.run()
  end
  os.execute("kill -9 " .. got.pid)
  S.await_gone(got.pid)
  return got
end

local TW = {}

function TW.tearDown() S.kill_strays() end

-- (luv's loop makes its own descriptors when first run: before the snapshot)
local function luv_warm(context)
  if context == "luv" then require("luv").run("nowait") end
end

for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_reload_under_way_is_woken_by_the_apps_close"] = function()
    luv_warm(context)
    collectgarbage()
    local before = S.snapshot()
    local got = reload_then_close(context)
    lu.assertEquals(got.reload, { nil, "closed" }, context)
    lu.assertTrue(got.took < 2, context .. ": the reload waited " .. tostring(got.took) .. " s")
    collectgarbage()
    S.assert_clean(before)
  end
end

for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_wait_on_an_app_whose_handle_another_reaps_gets_its_end"] = function()
    luv_warm(context)
    local before = S.snapshot()
    local got = waiter_and_closer(context, false)
    lu.assertEquals(got.state, "exited")
    lu.assertEquals(got.a_by_then, { { signal = 9 } }, context .. ": the waiter missed the end")
    lu.assertEquals(got.b, { code = 2 })
    S.assert_clean(before)
  end
  TW["test_" .. context .. "_a_wait_on_an_app_another_closes_returns_closed"] = function()
    luv_warm(context)
    local before = S.snapshot()
    local got = waiter_and_closer(context, true)
    lu.assertEquals(got.closed_a, { nil, "closed" }, context .. ": the waiter missed the close")
    lu.assertEquals(got.children, "", context .. ": the closed app was left a zombie")
    S.assert_clean(before)
  end
end

--- w:stop() calls fn(pid, "stopped") from within itself, in every
-- context: before it returns, once.
for _, context in ipairs { "plain", "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_watch_stop_calls_its_function_from_within_itself"] = function()
    luv_warm(context)
    local before = S.snapshot()
    local app = assert(appstart.start { argv = { F, "line=3:w", "pause" }, ready = "fd" })
    local order = {}
    local function scenario()
      local w = appstart.watch(app.pid, function(_, why) order[#order + 1] = why end)
      w:stop()
      order[#order + 1] = "returned"
    end
    if context == "plain" then
      scenario()
    elseif context == "run" then
      appstart.run(scenario)
    elseif context == "cqueues" then
      local cq = require("cqueues").new()
      cq:wrap(scenario)
      assert(cq:loop(10))
    else
      require "appstart.luv"
      coroutine.wrap(scenario)()
      require("luv").run()
    end
    lu.assertEquals(order, { "stopped", "returned" }, context)
    lu.assertEquals(app:terminate(1).signal, 15)
    collectgarbage()
    S.assert_clean(before)
  end
end

--- Run scenario(spawn) in context ("run", "cqueues" or "luv") to its end:
-- spawn(fn) makes fn another task (a coroutine) of that loop.
local function in_context(context, scenario)
  if context == "run" then
    appstart.run(scenario, appstart.spawn)
  elseif context == "cqueues" then
    local cq = require("cqueues").new()
    cq:wrap(scenario, function(fn) cq:wrap(fn) end)
    assert(cq:loop(20))
    cq = nil -- luacheck: ignore (its own descriptors go with it)
    collectgarbage()
  else
    require "appstart.luv"
    coroutine.wrap(scenario)(function(fn) coroutine.wrap(fn)() end)
    require("luv").run()
  end
end

-- One party waits in h:wait() on a begun start while another abandons it
-- (h:abandon()): the waiter wakes to it, and the app, which ignores
-- SIGTERM, gets SIGKILL once its kill_grace is over (the waiter slept on
-- to the deadline it waited for, ready_timeout: the SIGKILL came then).
for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_an_abandon_wakes_whoever_waits_on_the_start"] = function()
    luv_warm(context)
    local before = S.snapshot()
    local pidfile = S.tmpname("pid")
    local got = {}
    local function scenario(spawn)
      local h = appstart.begin { argv = { F, "ignore=TERM", "pidfile=" .. pidfile, "pause" }, ready = "fd",
        ready_timeout = 10, kill_grace = 0.3, log = function() end }
      spawn(function()
        got.began = true
        got.app, got.err = h:wait()
      end)
      -- (the waiter waits by then: it has begun, and has yielded since)
      lu.assertTrue(S.await_with_sleep(function() return got.began and S.read(pidfile) end, 5), "the app never ran")
      local t0 = S.core.now()
      got.abandoned = h:abandon()
      -- (bounded within ready_timeout: a waiter left asleep is caught)
      S.await_with_sleep(function() return got.err end, 5)
      got.took = got.err and S.core.now() - t0
    end
    in_context(context, scenario)
    lu.assertFalse(got.abandoned, context)
    lu.assertNotNil(got.took, context .. ": the waiter slept on after the abandon")
    lu.assertNil(got.app, context)
    lu.assertEquals(got.err.code, "cancelled", context)
    lu.assertEquals(got.err.status, { signal = 9 }, context .. ": the app ignores SIGTERM")
    lu.assertTrue(got.took < 3, context .. ": the waiter returned " .. got.took .. " s after the abandon")
    S.assert_clean(before, context)
  end
end

-- A check function holds an app of its own in a <close> variable, and
-- its start times out: its task is cancelled for good, its next wait
-- raises, and the <close> stops that app (which ignores SIGTERM) through
-- its kill_grace. Under cqueues and luv every wait of that stop returned
-- "cancelled" at once: a busy loop that held the whole controller for
-- the grace (a task ticking beside it did not tick for 1 s).
for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_stop_in_a_check_cancelled_for_good_waits_not_spins"] = function()
    luv_warm(context)
    local before = S.snapshot()
    local got = { ticks = {} }
    local function scenario(spawn)
      spawn(function()
        while not got.done do
          appstart.sleep(0.01)
          got.ticks[#got.ticks + 1] = S.core.now()
        end
      end)
      got.app, got.err = appstart.start { argv = { F, "pause" }, ready = { check = function()
          local inner <close> = assert(appstart.start { argv = { F, "ignore=TERM", "pause" }, ready = "none",
            kill_grace = 1, log = S.quiet })
          got.inner = inner.pid
          while true do appstart.sleep(0.05) end
        end }, ready_timeout = 0.2, log = S.quiet }
      got.gone = S.await_with_sleep(function() return got.inner and not S.alive(got.inner) end, 5)
      got.done = true
    end
    in_context(context, scenario)
    lu.assertNil(got.app, context)
    lu.assertEquals(got.err.code, "timeout", context)
    lu.assertTrue(got.gone, context .. ": the check's own app still runs")
    local gap = 0
    for i = 2, #got.ticks do gap = math.max(gap, got.ticks[i] - got.ticks[i - 1]) end
    lu.assertTrue(gap < 0.5, string.format("%s: the task beside it did not tick for %.2f s", context, gap))
    S.assert_clean(before, context)
  end
end

--- An on_status that raises while the app starts is a callback of the
-- user's as after ready: in a plain script its error is logged and the
-- start goes on (it came out of appstart.start, the app terminated);
-- inside appstart.run it ends the run, under cqueues cq:loop() returns it
-- (it came out of appstart.start, where a pcall kept it from either), and
-- the start goes on at the next cq:loop(). (luv: TL, in a child.)
for _, context in ipairs { "plain", "run", "cqueues" } do
  TW["test_" .. context .. "_an_on_status_that_raises_during_a_start_is_a_callback_of_the_users"] = function()
    local before = S.snapshot()
    local logs, rec = S.recorder()
    local seen, got = {}, {}
    local function scenario()
      got.ok, got.app = pcall(appstart.start, { argv = { F, "notify=STATUS=starting", "sleep=0.1", "notify=READY=1",
        "pause" }, log = rec, on_status = function(_, text)
          seen[#seen + 1] = text
          error("bug in on_status")
        end })
      if got.ok and got.app then got.state = got.app.state; got.how = got.app:terminate() end
    end
    if context == "plain" then
      scenario()
    elseif context == "run" then
      got.run = { pcall(appstart.run, scenario) }
    else
      local cq = require("cqueues").new()
      cq:wrap(scenario)
      got.loop = { cq:loop(10) }
      got.again = { cq:loop(10) }
      cq = nil -- luacheck: ignore (its own descriptors go with it)
      collectgarbage()
    end
    lu.assertEquals(seen, { "starting" }, context)
    local logged = table.concat(logs, "\n")
    if context == "plain" then
      lu.assertTrue(got.ok, context .. ": " .. tostring(got.app))
      lu.assertStrContains(logged, "fixture: on_status raised ")
      lu.assertStrContains(logged, "bug in on_status")
    elseif context == "run" then
      lu.assertNil(got.ok, "the error came out of appstart.start, not out of the run")
      lu.assertFalse(got.run[1], "the run went on")
      lu.assertStrContains(tostring(got.run[2]), "bug in on_status")
    else
      lu.assertFalse(got.loop[1], "cq:loop() returned no error: it came out of appstart.start")
      lu.assertStrContains(tostring(got.loop[2]), "bug in on_status")
      lu.assertTrue(got.again[1], tostring(got.again[2]))
      lu.assertTrue(got.ok, context .. ": " .. tostring(got.app))
    end
    if context ~= "run" then
      lu.assertEquals(got.state, "ready", context)
      lu.assertEquals(got.how, { signal = 15 }, context)
    end
    S.assert_clean(before, context)
  end
end

-- A STATUS= during the start of an app with on_output and no on_status
-- (its app object made early, for on_output) sets app.status, and the
-- start goes on (the on_status that was not there was called: an error
-- that cancelled the start).
-- A task's app:terminate whose coroutine another task closes inside the
-- grace: the SIGKILL after it was the closed coroutine's to send, and an
-- app that ignores SIGTERM ran on past the run, its end never told. The
-- rest of the stop is a task's of its own.
function TW.test_a_terminate_closed_inside_its_grace_still_kills()
  local before = S.snapshot()
  local app, exits
  appstart.run(function()
    app = assert(appstart.start { argv = { F, "ignore=TERM", "line=3:up", "pause" }, ready = "fd",
      kill_grace = 0.3, log = function() end, on_exit = function(_, how) exits = how end })
    local stopper = appstart.spawn(function() app:terminate() end)
    appstart.sleep(0.1)
    lu.assertEquals(coroutine.status(stopper.co), "suspended")
    assert(coroutine.close(stopper.co))
  end)
  lu.assertEquals(app.state, "exited")
  lu.assertEquals(app.how.signal, 9)
  lu.assertEquals(exits and exits.signal, 9)
  S.assert_clean(before)
end

function TW.test_a_status_during_the_start_of_an_app_with_on_output_only()
  local before = S.snapshot()
  local app, err = appstart.start { argv = { F, "notify=STATUS=starting", "notify=READY=1", "pause" },
    stdout = "capture", on_output = function() end, log = function() end }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.status, "starting")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- libuv's timers count from the time its loop last woke: a wait after
-- some work in the same pass must not end early by that work's time.
function TL.test_a_sleep_after_work_in_the_same_pass_is_not_cut_short()
  local uv = require "luv"
  require "appstart.luv"
  local took = {}
  coroutine.wrap(function()
    for i = 1, 3 do
      local t = S.core.now()
      while S.core.now() - t < 0.03 do end -- work, in this pass of uv's loop
      local t0 = S.core.now()
      appstart.sleep(0.05)
      took[i] = S.core.now() - t0
    end
  end)()
  uv.run()
  for i = 1, 3 do lu.assertTrue(took[i] >= 0.0495, string.format("sleep(0.05) returned after %.4f s", took[i])) end
end

-- A supervisor under luv whose waits are beyond libuv's timer range (a
-- kill_grace of 1e300: "no wait is endless", so this is how long is said)
-- stops its service as anywhere else.
function TL.test_a_supervisor_under_luv_with_a_grace_beyond_libuvs_range_stops()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local sv = appstart.supervisor { log = function() end, services = {
    s = { argv = { F, "catch=TERM", "notify=READY=1", "waitsig=TERM", "sleep=0.1", "exit=0" }, kill_grace = 1e300 },
  } }
  local up, stopped
  coroutine.wrap(function()
    up = sv:up()
    stopped = sv:stop("s")
  end)()
  uv.run()
  lu.assertTrue(up)
  lu.assertTrue(stopped)
  lu.assertEquals(sv:status("s").state, "stopped")
  S.assert_clean(before)
end

-- Many starts at once under cqueues or luv need as many descriptors as
-- inside appstart.run, which takes the hard limit: so do they (a soft
-- limit of 200 here, 150 starts at once).
for _, context in ipairs { "cqueues", "luv" } do
  local T = context == "luv" and TL or TC
  T["test_many_starts_at_once_at_a_low_descriptor_limit_under_" .. context] = function()
    local out = S.run_child({ nofile = 200, soft_only = true }, "eventloops_many_starts_at_a_low_descriptor_limit",
      context, 150)
    lu.assertStrContains(out, "150 ready, 0 failed ; children: \n")
  end
end

-- luv ends the process on an error out of a uv callback (exit(-1), its
-- apps left running): a callback of the user's that raises under luv is
-- logged, as in a plain script, and the loop goes on.
function TL.test_a_callback_that_raises_under_luv_is_logged_and_the_loop_goes_on()
  -- (held's output goes elsewhere: were the child to die, held would keep
  -- the pipe read here open)
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_callbacks_that_raise_under_luv")
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, "bug in on_exit")
  lu.assertStrContains(out, "bug in a watch callback")
  -- what an error quotes of the app's output is escaped; a value no
  -- tostring can show is said to be one (its tostring raised there)
  lu.assertStrContains(out, "not JSON: \\x1b]0;owned\\x07\n")
  lu.assertStrContains(out, "on_output raised an error that cannot be shown: '__tostring' must return a string\n")
  lu.assertStrContains(out, "on_exit raised an error that cannot be shown: ")
  lu.assertStrContains(out, "no text\n")
  lu.assertNil(out:find("\27", 1, true), "an escape reached the log")
  lu.assertStrContains(out, "held: ready")
  lu.assertStrContains(out, "uv.run returned, children: \n")
end

-- A log function that raises as an app's end is told, which an app's
-- watch sees in a task of luv's: the error escaped the uv callback,
-- luv's handler exited (-1), the other app left running. It is logged,
-- as a callback's error is under luv, and the loop goes on.
function TL.test_a_log_function_that_raises_at_an_end_under_luv_leaves_no_app()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_a_log_function_that_raises_at_an_end_under_luv")
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, "log boom")
  lu.assertStrContains(out, "held: ready")
  lu.assertStrContains(out, "uv.run returned, app: exited, children: \n")
end

-- An app and a supervisor begun under luv and finished from the main
-- thread once uv.run has returned (a common end: the loop stopped on a
-- signal, the cleaning up after it): the process exits cleanly (it died
-- of SIGSEGV at exit, in luv's finalizer: see the child).
function TL.test_apps_and_a_supervisor_finished_from_the_main_thread_after_uv_run()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_finished_from_the_main_thread")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "finished:\t15\ttrue\n")
end

-- What completes those closes at exit acts then only: a later close outside
-- uv.run (a second app finished from the main thread) and a collection
-- leave the user's own handles alone.
function TL.test_closes_outside_uv_run_leave_the_users_handles_alone()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_closes_outside_leave_the_users_handles")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "terminated:\t15\t15\ntimer closing:\tfalse\ntimer ran:\t1\n")
end

-- Descriptors released from luv's poll handles outside uv.run (the main
-- thread's poll set closed with its last app, an app's pidfd) leave a
-- clean exit: the guard that completes those closes at exit met a handle
-- luv had finalized first, and luv ended the process (status 255).
function TL.test_descriptors_released_outside_uv_run_leave_a_clean_exit()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_released_outside_uv_run")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "terminated:\t15\t15\n")
end

-- A coroutine closed (coroutine.close) while it waits in a start: the
-- start is abandoned there, its app terminated, and what it waited on,
-- when it ends, finds it over; nothing is left.
function TL.test_a_coroutine_closed_while_it_waits_in_a_start_under_luv()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_a_closed_coroutine_waiting", "start")
  local pid = tonumber(out:match("app:\t(%d+)"))
  lu.assertNotNil(pid, out)
  lu.assertTrue(S.await_gone(pid, 5), "the app of the closed start still runs")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "closed:\ttrue\napp:\t" .. pid .. "\nchildren:\t\ndescriptors:\tsame\n")
end

-- So is one closed while it waits in a supervisor's call (sv:up()): the
-- supervisor's next change woke the dead coroutine from a timer of its
-- wait's, and luv ended the process.
function TL.test_a_coroutine_closed_while_it_waits_in_a_supervisor_under_luv()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_a_closed_coroutine_waiting", "supervisor")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "closed:\ttrue\ndown:\ttrue\nchildren:\t\ndescriptors:\tsame\n")
end

-- So is one closed while it waits in app:wait(), the app's only holder:
-- collected at once, its pidfd was closed under the wait's poll handle,
-- so uv.run never returned, and a later app whose pidfd had that number
-- was never seen to end. The wait holds the app until it ends.
function TL.test_a_coroutine_closed_while_it_waits_on_its_app_under_luv()
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_luv_a_closed_coroutine_waiting", "app")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "closed:\ttrue\nsecond:\texited with code 0\nchildren:\t\ndescriptors:\tsame\n")
end

-- So is an on_status that raises while the app starts (it came out of
-- appstart.start, out of a uv callback: luv ended the process, the app
-- left running); the start goes on.
function TL.test_an_on_status_that_raises_during_a_start_under_luv_is_logged_and_the_start_goes_on()
  local pidfile = S.tmpname("pid")
  local out, ok = S.run_child({ timeout = 20 }, "eventloops_on_status_that_raises_during_a_start_under_luv", pidfile)
  local pid = S.pid_in(pidfile)
  if S.alive(pid) then os.execute("kill -9 " .. pid) end
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, "fixture: on_status raised ")
  lu.assertStrContains(out, "bug in on_status")
  lu.assertStrContains(out, "start: ready\n")
  lu.assertStrContains(out, "uv.run returned, children: \n")
end

-- appstart.begin: a start in progress as a pollable object

local TB = {}

function TB.tearDown() S.kill_strays() end

function TB.test_starts_in_progress_driven_by_a_plain_poll_loop()
  local before = S.snapshot()
  local hs = {}
  for i = 1, 10 do
    hs[i] = appstart.begin { argv = { F, "sleep=0.3", "line=3:b" .. i, "pause" }, ready = "fd",
      ready_timeout = 20 }
    lu.assertIsNumber(hs[i]:pollfd())
    lu.assertEquals(hs[i]:events(), "r")
    -- due now where the exec's verdict is still to be read (a fork, not
    -- a vfork: under valgrind), else at the ready deadline at the latest
    local t = hs[i]:timeout()
    lu.assertTrue(t >= 0 and t <= 20, t)
  end
  local t0, turns = S.core.now(), 0
  local pending = #hs
  while pending > 0 do
    -- the caller's own loop: wait on the earliest handle, then step all
    S.core.wait_readable(hs[1]:pollfd() or -1, 0.05)
    turns = turns + 1
    pending = 0
    for _, h in ipairs(hs) do if not h:step() then pending = pending + 1 end end
  end
  lu.assertTrue(S.core.now() - t0 < 3, "the ten starts overlapped")
  for i, h in ipairs(hs) do
    lu.assertEquals(h.app.name, "b" .. i)
    h.app:terminate(1)
  end
  S.assert_clean(before)
end

-- A check function's return, which no descriptor of the start's says,
-- calls h:on_wake's function, for a loop of the caller's to step the
-- start then; on_wake takes a function or nil, nothing else (a number
-- was taken, and raised inside the loop when the check returned).
function TB.test_on_wake_is_called_when_a_check_function_returns()
  local before = S.snapshot()
  appstart.run(function()
    local checked = false
    local h = appstart.begin { argv = { F, "pause" }, ready = { check = function()
      appstart.sleep(0.05)
      checked = true
      return true
    end }, ready_timeout = 10, kill_grace = 0.3 }
    local ok, err = pcall(h.on_wake, h, 42)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "h:on_wake: a function expected, got number")
    local woke = 0
    h:on_wake(function() woke = woke + 1 end)
    -- the caller's loop: a step when one is due or h:pollfd() is
    -- readable (the exec's verdict, where it comes after the first step:
    -- a fork, under valgrind), until the check, run in a task of its own,
    -- has returned
    lu.assertTrue(S.await_with_sleep(function()
      local fd = h:pollfd()
      if woke == 0 and (h:timeout() == 0 or fd and S.core.wait_readable(fd, 0)) then lu.assertFalse(h:step()) end
      return woke > 0
    end, 5), "on_wake was never called")
    lu.assertTrue(checked)
    lu.assertTrue(h:step())
    lu.assertEquals(woke, 1)
    h.app:terminate()
  end)
  S.assert_clean(before)
end

function TB.test_a_start_in_progress_is_a_cqueues_pollable()
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local app
  cq:wrap(function()
    local h = appstart.begin { argv = { F, "sleep=0.2", "line=3:cq", "pause" }, ready = "fd" }
    while not h:step() do cqueues.poll(h) end
    app = h.app
    -- the controller goes on, with other descriptors (of the same numbers)
    local app2 = assert(appstart.start { argv = { F, "line=3:two", "pause" }, ready = "fd" })
    cqueues.sleep(0.02)
    app2:terminate(1)
  end)
  assert(cq:loop())
  lu.assertEquals(app.name, "cq")
  app:terminate(1)
end

-- A start its own on_status cancels (h:cancel) is done at the step that
-- ran it: that step went on to wait for the ready deadline, and a
-- h:wait() with it (the start closed by then: nothing could wake it).
function TB.test_a_start_cancelled_from_its_on_status_is_done_at_that_step()
  local before = S.snapshot()
  local h
  h = appstart.begin { argv = { F, "notify=STATUS=hello", "pause" }, ready_timeout = 30, kill_grace = 5,
    on_status = function() h:cancel() end, log = S.quiet }
  local done
  repeat
    local fd = h:pollfd()
    if fd then S.core.wait_readable(fd, h:timeout()) end
    done = h:step()
  until done or h.done
  lu.assertTrue(done, "the step that ran on_status says the start is over")
  lu.assertNil(h:wait())
  lu.assertEquals(h.err.code, "cancelled")
  S.assert_clean(before)
end

-- appstart.begin looks at nothing of the start's before it returns: the
-- first step is the caller's, so no callback of the caller's (on_status,
-- on_output, a check) runs before the caller holds h (it took a step, and
-- a check, due at once, ran inside begin; a STATUS= read there found no h
-- to cancel).
function TB.test_begin_runs_no_callback_before_it_returns()
  local before = S.snapshot()
  local returned, ran_before = false, nil
  local h
  h = appstart.begin { argv = { F, "pause" }, ready = { check = function()
    if ran_before == nil then ran_before = not returned end
    return true
  end } }
  returned = true
  lu.assertFalse(h.done)
  local app = assert(h:wait())
  lu.assertFalse(ran_before, "the check ran inside begin")
  app:terminate(1)
  app:close()
  -- a spawn that fails is done at once all the same
  h = appstart.begin { argv = { "/nonexistent/app" } }
  lu.assertNil(h:wait())
  lu.assertEquals(h.err.code, "spawn")
  S.assert_clean(before)
end

-- A start whose exec failed is done at the first step, or, where its
-- child had not quite ended then (it is on its way out), at a step due at
-- once and then soon: a loop of the caller's that steps on h:timeout()
-- alone was told to come back at the pid deadline (pid_timeout, 10 s).
function TB.test_a_failed_exec_is_due_at_once_for_a_loop_that_steps_on_the_timeout()
  -- (where the exec's verdict comes over a pipe, a fork rather than a
  -- vfork, the step that reads it is still due at the pid deadline)
  lu.skipIf(os.getenv("APPSTART_VFORK_IS_FORK"), "the exec's verdict comes later here (a fork)")
  local before = S.snapshot()
  local late, longest = 0, 0
  for _ = 1, 50 do
    local h = appstart.begin { argv = { "/nonexistent/app" }, log = S.quiet }
    local steps = 0
    while not h:step() do
      steps = steps + 1
      local due = h:timeout()
      longest = math.max(longest, due)
      if steps > 1000 or due >= 1 then break end
      appstart.sleep(due)
    end
    if not h.done then
      late = late + 1
      h:wait()
    end
    lu.assertEquals(h.err.code, "spawn")
  end
  lu.assertEquals(late, 0, string.format("steps due %.3f s later", longest))
  S.assert_clean(before)
end

function TB.test_cancel_terminates_and_wait_blocks_to_the_end()
  local before = S.snapshot()
  -- the grace leaves room for a child that has not reached its exec yet
  -- (slow under valgrind): SIGTERM waits, blocked, until it unblocks.
  -- (Under valgrind, whose fork child it is until the exec, a signal that
  -- comes before the exec can be lost with valgrind's own queue: the
  -- program runs with none pending, and the SIGKILL after kill_grace
  -- ends it, as in the test of a start cancelled before its exec verdict)
  local signals = os.getenv("APPSTART_VFORK_IS_FORK") and { [15] = true, [9] = true } or { [15] = true }
  local h = appstart.begin { argv = { F, "pause" }, ready = "fd", kill_grace = 10, log = function() end }
  h:cancel()
  lu.assertTrue(h.done)
  lu.assertEquals(h.err.code, "cancelled")
  lu.assertTrue(signals[h.err.status.signal or false], tostring(h.err.status))
  local h2 = appstart.begin { argv = { F, "line=3:w", "pause" }, ready = "fd" }
  local app = h2:wait()
  lu.assertEquals(app.name, "w")
  app:terminate(1)
  S.assert_clean(before)
end

-- A start the caller's own loop steps (h:pollfd(), h:timeout(), as the
-- README says), its app writing more than a pipe holds before it is
-- ready: its output pipes wake the start's waits too and each step reads
-- them, so the app is not held up, and on_output has its lines as they
-- come (nothing read them: the app blocked on its write, never said
-- READY=1, and the start timed out).
function TB.test_a_start_stepped_by_the_callers_loop_reads_its_apps_output()
  local before = S.snapshot()
  local n = 0
  local h = appstart.begin { argv = { F, "lines=1:50000:" .. string.rep("x", 50), "notify=READY=1", "pause" },
    ready_timeout = 10, stdout = "capture", on_output = function() n = n + 1 end }
  while not h:step() do S.core.wait_readable(h:pollfd() or -1, h:timeout()) end
  local app = h.app
  lu.assertNotNil(app, h.err and h.err.message)
  app:tail() -- (what the last steps left: lines read, and what the pipe holds)
  lu.assertEquals(n, 50000)
  app:terminate(1)
  S.assert_clean(before)
end

-- Each such step reads as a listener's wake-up does: a slice of
-- on_output calls (10 ms), not all the pipe holds (a step read it all,
-- holding the caller's loop, and a supervisor's other services, for as
-- long as on_output took over a MiB of lines); what is left makes the
-- next step due at once. (on_output takes 0.05 ms a line: 200 lines and a
-- look at the clock's 64 at most to a step, where the pipe holds 10,000.)
function TB.test_a_start_stepped_by_the_callers_loop_reads_a_slice_a_step()
  local before = S.snapshot()
  local n, most, in_step = 0, 0, 0
  local h = appstart.begin { argv = { F, "lines=1:20000:" .. string.rep("x", 100), "notify=READY=1", "pause" },
    ready_timeout = 30, stdout = "capture", on_output = function()
      n, in_step = n + 1, in_step + 1
      local t = os.clock()
      repeat until os.clock() - t >= 0.00005
    end }
  repeat
    in_step = 0
    local done = h:step()
    most = math.max(most, in_step)
    if not done then S.core.wait_readable(h:pollfd() or -1, h:timeout()) end
  until done
  lu.assertNotNil(h.app, h.err and h.err.message)
  h.app:tail()
  lu.assertEquals(n, 20000)
  lu.assertTrue(most < 2000, most .. " lines handed over in one step")
  h.app:terminate(1)
  S.assert_clean(before)
end

-- Such a start dropped (its output in the start's waits): collected, its
-- app killed and its descriptors closed (the output's hook held the start
-- for good: the app ran on, four descriptors open).
function TB.test_a_dropped_start_whose_output_it_reads_is_collected()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  do
    local h = appstart.begin { argv = { F, "pidfile=" .. pidfile, "line=1:x", "pause" }, stdout = "capture",
      ready_timeout = 30, log = function() end }
    h:step()
  end
  local pid = S.pid_in(pidfile)
  lu.assertTrue(S.await_with_sleep(function()
    collectgarbage()
    collectgarbage()
    S.testing.reap()
    return not S.alive(pid)
  end, 5), "the dropped start's app runs on")
  lu.assertTrue(S.await_with_sleep(function()
    require("appstart.loop").serve()
    S.testing.reap()
    return #S.children() == 0
  end, 5))
  S.assert_clean(before)
end

-- An on_output that waits on its own start (h:wait, h:cancel) from such a
-- step: the pipes leave the start's waits while it runs, as a listener
-- leaves the loop (the wait woke at once, again and again, on the pipe
-- nothing read: half a million steps, a CPU busy, till the start ended).
function TB.test_an_on_output_waiting_on_its_own_start_does_not_spin()
  local before = S.snapshot()
  local steps, h = 0, nil
  h = appstart.begin { argv = { F, "ignore=TERM", "line=1:a", "sleep=0.2", "line=1:b", "sleep=1", "notify=READY=1",
    "pause" }, stdout = "capture", kill_grace = 0.5, ready_timeout = 30,
    on_output = function(_, _, line) if line == "a" then h:cancel() end end }
  local Starting = getmetatable(h).__index
  local saved = Starting.step
  Starting.step = function(self) steps = steps + 1; return saved(self) end
  local ok, err = pcall(function()
    while not h:step() do S.core.wait_readable(h:pollfd() or -1, h:timeout()) end
  end)
  Starting.step = saved
  assert(ok, err)
  lu.assertEquals(h.err.code, "cancelled")
  lu.assertTrue(steps < 1000, steps .. " steps")
  S.assert_clean(before)
end

function TB.test_a_start_stepped_to_its_end_is_not_waited_for_again()
  -- the caller's own loop steps the start to its end; a wait after that
  -- has nothing to wait for (it once waited until ready_timeout, on a
  -- start already done, when the start had been fresh from its spawn)
  local before = S.snapshot()
  local h = appstart.begin { argv = { F, "line=3:done", "pause" }, ready = "fd", ready_timeout = 30 }
  while not h:step() do S.core.wait_readable(h:pollfd() or -1, 0.05) end
  local t0 = S.core.now()
  local app = assert(h:wait())
  lu.assertTrue(S.core.now() - t0 < 10, "h:wait() waited for a start already done")
  lu.assertEquals(app.name, "done")
  app:terminate(1)
  S.assert_clean(before)
end

-- ready_timeout counts from the exec for a start with no helper, however
-- late its first step comes (a caller's loop busy elsewhere): it counted
-- from that step without a pidfd (the fallback) and where the exec's
-- verdict comes over a pipe, the app given the lateness on top, while with
-- a pidfd it did not. Each way, the first step after the deadline fails.
function TB.test_ready_timeout_counts_from_the_exec_however_late_the_first_step()
  for _, way in ipairs { "pidfd", "no pidfd", "exec pipe" } do
    local before = S.snapshot()
    local was = S.testing.use_pidfd()
    local ok, err = pcall(function()
      if way == "no pidfd" then S.testing.use_pidfd(false) end
      if way == "exec pipe" then S.testing.exec_report("pipe") end
      local pid_file = S.tmpname("app")
      local h = appstart.begin { argv = { F, "pidfile=" .. pid_file, "pause" }, ready = "notify",
        ready_timeout = 0.3, kill_grace = 5, log = S.quiet }
      -- (the caller busy elsewhere past the deadline)
      S.core.wait_readable(-1, 0.6)
      local pid = S.pid_in(pid_file)
      -- that first step fails the start: its app is terminated (SIGTERM),
      -- with no other step (it was given a deadline from then, at which
      -- only a step would look)
      h:step()
      lu.assertTrue(S.await_gone(pid, 5), way .. ": the app was not terminated at the first step")
      lu.assertNil(h:wait())
      lu.assertEquals(h.err.code, "timeout", way)
    end)
    S.testing.use_pidfd(was)
    S.testing.exec_report("auto")
    assert(ok, err)
    S.assert_clean(before)
  end
end

function TB.test_a_start_cancelled_or_dropped_before_its_exec_verdict_ends_its_app()
  -- where vfork is a fork the exec's verdict comes later, over a pipe: a
  -- start stopped meanwhile still holds, and ends, the process it spawned
  -- (SIGTERM; under valgrind, whose fork child it is until the exec, a
  -- signal that comes before the exec can be lost with valgrind's own
  -- queue: the program runs with none pending, and the SIGKILL after
  -- kill_grace ends it)
  local signals = os.getenv("APPSTART_VFORK_IS_FORK") and { [15] = true, [9] = true } or { [15] = true }
  S.testing.exec_report("pipe")
  local ok, err = pcall(function()
    for _ = 1, 20 do
      local before = S.snapshot()
      local pidfile = S.tmpname("pid")
      local h = appstart.begin { argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "fd", kill_grace = 3,
        log = function() end }
      h:cancel()
      lu.assertEquals(h.err.code, "cancelled")
      lu.assertTrue(signals[h.err.status.signal or false], tostring(h.err.status))
      S.assert_clean(before)
      h = appstart.begin { argv = { F, "pause" }, ready = "fd", log = function() end }
      h._s:close() -- dropped: what it spawned is killed, and reaped once it is gone
      lu.assertTrue(S.await_with_sleep(function()
        S.testing.reap()
        return #S.children() == 0
      end), "the dropped start's process is still there")
      S.assert_clean(before)
    end
  end)
  S.testing.exec_report("auto")
  assert(ok, err)
end

-- The core's start object: its one descriptor (an epoll set of the start's
-- descriptors) may be asked for late, after the start has begun watching;
-- it must then hold what is watched already and follow what comes after.
local TCore = {}

function TCore.tearDown() S.kill_strays() end

local function core_start(argv, helper)
  -- the defaults are the Lua layer's: the layout is given in full
  local s = S.core.start(argv, nil, nil, nil, nil, nil, "fd", helper and 4 or 3, nil, nil, helper)
  lu.assertEquals(s:step(), "wait", s:result().message)
  -- the channel (with a helper: the pid pipe), the pidfd, and where vfork
  -- is a fork the exec's error pipe
  lu.assertTrue(#{ s:fds() } >= 1)
  local fd = assert(s:fd()) -- made now, from what is watched
  lu.assertEquals(s:fd(), fd, "one set per start")
  return s, fd
end

-- Steps, waiting on the start's one descriptor, until the start ends. Where
-- a process has no pidfd (valgrind) the step asks to be called again at an
-- interval too (probe); else the set must wake it.
local function steps_on(s, fd)
  local deadline = S.core.now() + 5
  local state, _, probe = s:step()
  while state == "wait" do
    lu.assertTrue(S.core.now() < deadline, "the start never ended")
    local woke = S.core.wait_readable(fd, probe and 0.01 or 5)
    if not probe then lu.assertTrue(woke, "the set never woke") end
    state, _, probe = s:step()
  end
  return state
end

-- Steps on to ready (the app named name), takes the app and kills it.
local function ready_and_killed(s, fd, name)
  lu.assertEquals(steps_on(s, fd), "ready")
  lu.assertEquals(s:result().name, name)
  local app = s:take()
  s:close()
  app:signal("KILL")
  while not app:poll() do S.core.wait_readable(app:fd() or -1, 0.01) end
  app:close()
end

function TCore.test_a_late_pollfd_follows_what_a_helper_start_watches_next()
  -- watched when it is made: the pid pipe and the helper's pidfd; then the
  -- app's pidfd and the ready channel, added to it as the pid comes
  local before = S.snapshot()
  local report, go = S.tmpname("report"), S.tmpname("go")
  -- the helper reports only on `report`, so the set is made before the pid
  -- comes; the app writes its line only on `go`
  local s, fd = core_start({ F, "fork", "waitfile=" .. go, "line=4:behind", "pause", "|",
    "waitfile=" .. report, "int32=3:child", "exit=0" }, true)
  S.touch(report)
  lu.assertTrue(S.core.wait_readable(fd, 5))
  lu.assertEquals(s:step(), "wait") -- the line is not in yet
  S.touch(go)
  ready_and_killed(s, fd, "behind")
  S.assert_clean(before)
end

function TCore.test_a_late_pollfd_wakes_on_the_ready_line()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local s, fd = core_start { F, "waitfile=" .. go, "line=3:late", "pause" }
  S.touch(go)
  lu.assertTrue(S.core.wait_readable(fd, 5))
  ready_and_killed(s, fd, "late")
  S.assert_clean(before)
end

function TCore.test_a_late_pollfd_wakes_on_the_death_of_the_app()
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here: death is probed, not waited on")
  local before = S.snapshot()
  local go, pidfile = S.tmpname("go"), S.tmpname("pid")
  -- a forked child keeps the channel open: only the pidfd can tell
  local s, fd = core_start { F, "waitfile=" .. go, "fork", "pidfile=" .. pidfile, "pause", "|", "exit=4" }
  S.touch(go)
  lu.assertEquals(steps_on(s, fd), "failed")
  lu.assertEquals(s:result().code, "died")
  s:close()
  local child = S.pid_in(pidfile)
  os.execute("kill -KILL " .. child)
  lu.assertTrue(S.await_gone(child, 3))
  S.assert_clean(before)
end

-- An on_output that waits for the app's end (app:wait in it) while a child
-- of the app holds the pipe: the lines after its own come once it has
-- returned, then on_exit, and the pipe is closed; under cqueues and luv
-- (the rest waited on a timer of appstart's that neither loop turns: the
-- lines, on_exit and the descriptor were lost), and inside appstart.run.
-- What the main thread made (an app whose output appstart reads, a
-- watch) is served by the waits inside another loop while they wait, as
-- a plain script's waits serve it: under cqueues and luv it was served
-- only as each wait began and ended. An app that wrote more than its pipe
-- holds was held up meanwhile: a coroutine's app:wait(3) on it timed out
-- (3 s, its lines read a pipe-ful at each end) where a plain wait took
-- 0.6 s. A second coroutine sleeps meanwhile, in one wait: the
-- shared poller it polls too is closed once the app has ended (out of
-- its poll set first), and its number goes to what is polled next.
for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_an_app_the_main_thread_started_is_read_while_a_coroutine_waits"] = function()
    luv_warm(context)
    collectgarbage()
    local before = S.snapshot()
    local n, got = 0, {}
    -- (2.4 MB in 12 bursts 0.05 s apart: more than the pipe holds, each
    -- burst read to its end before the next, whoever reads)
    local argv = { F }
    for _ = 1, 12 do
      argv[#argv + 1] = "lines=1:2000:" .. string.rep("x", 99)
      argv[#argv + 1] = "sleep=0.05"
    end
    argv[#argv + 1] = "exit=0"
    local app = assert(appstart.start { argv = argv, ready = "none", stdout = "capture", log = S.quiet,
      on_output = function() n = n + 1 end })
    in_context(context, function(spawn)
      spawn(function()
        appstart.sleep(1)
        got.slept = true
      end)
      local t0 = S.core.now()
      got.how, got.err = app:wait(3)
      got.took = S.core.now() - t0
      -- (the poller's number, free, goes to what the loop polls next)
      got.next = assert(appstart.start { argv = { F, "sleep=0.05", "exit=4" }, ready = "none" }):wait()
    end)
    lu.assertEquals(got.how, { code = 0 }, context)
    lu.assertTrue(got.took < 2.5, string.format("%s: the wait took %.2f s: the app was held up", context, got.took))
    lu.assertEquals(n, 24000, context)
    lu.assertEquals(got.next, { code = 4 }, context)
    lu.assertTrue(got.slept, context)
    app:close()
    collectgarbage()
    S.assert_clean(before, context)
  end
end

-- A watch the main thread made, its pid's end seen during a coroutine's
-- one long sleep under the other loop (by its pidfd, or, without pidfds,
-- by a timer every poll_interval), not once the sleep is over (under
-- cqueues and luv it was seen as the 2 s sleep ended: its function ran
-- 1.9 s after the end).
for _, pidfd in ipairs { true, false } do
  for _, context in ipairs { "run", "cqueues", "luv" } do
    local name = "test_" .. context .. "_a_watch_the_main_thread_made_fires_during_a_coroutines_sleep"
    TW[name .. (pidfd and "" or "_without_pidfd")] = function()
      luv_warm(context)
      collectgarbage()
      local before = S.snapshot()
      S.testing.use_pidfd(pidfd)
      local order = {}
      local ok, err = pcall(function()
        local app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=0" }, ready = "none", log = S.quiet })
        local w = appstart.watch(app.pid, function(_, why)
          order[#order + 1] = why
          order.seen = S.core.now()
        end)
        in_context(context, function()
          appstart.sleep(2)
          order[#order + 1] = "slept"
          order.slept = S.core.now()
        end)
        lu.assertTrue(w.done, context)
        lu.assertTrue(order.slept - order.seen > 1, string.format("%s: seen %.2f s before the sleep's end",
          context, order.slept - order.seen))
        app:close()
      end)
      S.testing.use_pidfd(true)
      if not ok then error(err, 0) end
      lu.assertEquals({ order[1], order[2] }, { "exited", "slept" }, context)
      collectgarbage()
      S.assert_clean(before, context)
    end
  end
end

--- body() run, nothing leaked by it (luv loaded and its loop's own
-- descriptors made before the snapshot).
local function leaves_nothing(context, body)
  if context == "luv" then require "appstart.luv" end
  luv_warm(context)
  collectgarbage()
  local before = S.snapshot()
  body()
  collectgarbage()
  S.assert_clean(before, context)
end

-- A reload asked for in a coroutine of cqueues or luv, of a service the
-- main thread brought up (its notify socket read in appstart's own poll
-- set, which the coroutine's wait polls beside the socket), while an app
-- the main thread started keeps that poll set busy: a wait woken by that
-- set whose serving read the app's READY=1 waited on for a socket that
-- would never be readable again, to its ready_timeout (one reload in
-- three or so: the whole ready_timeout, not 0.1 s). Five reloads: each
-- is done once the app says so.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_reload_whose_ready_the_main_threads_poll_set_read_is_done_at_once"] = function()
    leaves_nothing(context, function()
      local sv = appstart.supervisor { log = S.quiet, services = { svc = { argv = { F, "catch=HUP",
        "notify=READY=1", "waitsig=HUP", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1",
        "waitsig=HUP", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1",
        "waitsig=HUP", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1",
        "waitsig=HUP", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1",
        "waitsig=HUP", "sleep=0.1", "notify=RELOADING=1", "notify=READY=1", "pause" },
        ready_timeout = 5, kill_grace = 0.5, watchdog = 20 } } } -- (the watchdog keeps its socket read)
      assert(sv:up())
      -- (a line every 2 ms, each taking 1 ms of the launcher's CPU)
      local chatty = assert(appstart.start { argv = { "sh", "-c", "while :; do echo x; sleep 0.002; done" },
        ready = "none", stdout = "capture", log = S.quiet,
        on_output = function()
          local t = os.clock() + 0.001
          repeat until os.clock() >= t
        end })
      local took = {}
      in_context(context, function()
        for i = 1, 5 do
          local t0 = S.core.now()
          local ok, err = sv:reload("svc")
          took[i] = string.format("%s %.1f", tostring(ok or err), S.core.now() - t0)
        end
        sv:down()
      end)
      chatty:terminate()
      chatty:close()
      for i = 1, 5 do
        local ok, t = took[i]:match("^(%S+) (%S+)$")
        lu.assertEquals(ok, "true", context)
        -- (done at once, 0.1 s of the app's and the launcher's load,
        -- not at ready_timeout, 5 s)
        lu.assertTrue(tonumber(t) < 2.5, context .. ": reloads took " .. table.concat(took, ", "))
      end
    end)
  end
end

-- A log function that waits (a slow sink: allowed inside a loop) while
-- the app's datagrams are read: meanwhile another read of the notify
-- socket (the listener's, a reload's, the app's end's) reads on. What a
-- datagram changes is done before its line is said: the RELOADING=1 the
-- line was about counted for the reload only after it, so that the
-- READY=1 read meanwhile ended no reload (app:reload() waited out
-- ready_timeout, "no READY=1 came after its RELOADING=1").
local function a_waiting_log(_, _) appstart.sleep(0.05) end

for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_reload_is_done_at_its_ready_while_a_log_function_waits"] = function()
    leaves_nothing(context, function()
      local got
      in_context(context, function()
        local app = assert(appstart.start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP",
          "notify=RELOADING=1", "notify=READY=1", "pause" }, ready_timeout = 3, log = a_waiting_log })
        local t0 = S.core.now()
        local ok, err = app:reload()
        got = { ok = ok, err = err and tostring(err), took = S.core.now() - t0, state = app.state }
        app:terminate()
      end)
      lu.assertTrue(got.ok, context .. ": " .. tostring(got.err))
      lu.assertEquals(got.state, "ready", context)
      lu.assertTrue(got.took < 1.5, context .. ": the reload took " .. got.took .. " s")
    end)
  end
end

-- Two reloads at once, whose READY=1 one read of the socket takes (the
-- listener's, or one of theirs), its status line waiting: the others,
-- woken by that datagram too, found the socket read empty and slept
-- again, and the reload was seen done only after the line, which woke
-- none of them: they waited out ready_timeout (and then said true).
-- (Inside appstart.run the listener reads in the run's own turn, its
-- tasks resumed after.)
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_reloads_whose_ready_another_read_took_are_woken_at_once"] = function()
    leaves_nothing(context, function()
      local got = {}
      in_context(context, function(spawn)
        local app = assert(appstart.start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "sleep=0.2",
          "notify=RELOADING=1", "sleep=0.3", "notify=STATUS=back\\nREADY=1", "pause" }, ready_timeout = 5,
          log = a_waiting_log })
        local t0 = S.core.now()
        for i = 1, 2 do
          spawn(function()
            local ok, err = app:reload()
            got[i] = { ok = ok, err = err and tostring(err), took = S.core.now() - t0 }
          end)
        end
        -- (both told, 8 s at most)
        while not (got[1] and got[2]) and S.core.now() - t0 < 8 do appstart.sleep(0.05) end
        app:terminate()
      end)
      for i = 1, 2 do
        lu.assertNotNil(got[i], context .. ": reload " .. i .. " never returned")
        lu.assertTrue(got[i].ok, context .. ": " .. tostring(got[i].err))
        lu.assertTrue(got[i].took < 2.5, context .. ": reload " .. i .. " took " .. got[i].took .. " s")
      end
    end)
  end
end

-- A STOPPING=1 (with a watchdog: kill_grace bounds the shutdown) whose
-- line waits while the app exits and its end is told: the bound was
-- armed after the line, for an app over by then, and held the loop for
-- kill_grace.
for _, context in ipairs { "run", "cqueues", "luv" } do
  TW["test_" .. context .. "_a_stopping_app_ended_while_its_line_waited_holds_the_loop_no_longer"] = function()
    leaves_nothing(context, function()
      local how
      local t0 = S.core.now()
      in_context(context, function()
        local app = assert(appstart.start { argv = { F, "notify=READY=1", "sleep=0.2", "notify=STOPPING=1",
          "exit=0" }, watchdog = 5, kill_grace = 4, log = a_waiting_log })
        how = app:wait(5)
      end)
      local took = S.core.now() - t0
      lu.assertEquals(how, { code = 0 }, context)
      lu.assertTrue(took < 2.5, context .. ": the loop returned after " .. took .. " s")
    end)
  end
end

-- The same line, whose log function raises once it has waited, while
-- the app ended meanwhile: the error comes out of cq:loop(), which a
-- caller may call again to go on; the app's on_exit, told after its last
-- lines, was left queued behind the line that raised, for a read of its
-- socket that never came. (Inside appstart.run such an error ends the
-- run; under luv it comes out of uv.run.)
function TW.test_cqueues_on_exit_is_told_though_a_waiting_line_before_it_raised()
  leaves_nothing("cqueues", function()
    local told, app
    local go = S.tmpname("go")
    local function log(_, message)
      if message:find("status: last", 1, true) then
        -- (until the app's end is seen, 3 s at most: its on_exit queued
        -- behind this line)
        local t0 = S.core.now()
        while app.state ~= "exited" and S.core.now() - t0 < 3 do appstart.sleep(0.01) end
        error("the sink broke")
      end
    end
    local cq = require("cqueues").new()
    cq:wrap(function()
      -- (no wait of appstart's here, which could read the socket itself:
      -- the line is the listener's, whose coroutine the error ends, not
      -- this one; its STATUS= once the start is over, which would read
      -- one sent with its READY=1)
      app = assert(appstart.start { argv = { F, "notify=READY=1", "waitfile=" .. go, "notify=STATUS=last",
        "exit=0" }, log = log, on_exit = function(_, h) told = h end })
      S.touch(go)
      local t0 = S.core.now()
      while told == nil and S.core.now() - t0 < 3 do require("cqueues").sleep(0.02) end
    end)
    local ok, err = cq:loop(20)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "the sink broke")
    assert(cq:loop(20))
    cq = nil -- luacheck: ignore (its own descriptors go with it)
    collectgarbage()
    lu.assertEquals(told, { code = 0 }, "on_exit never told")
    lu.assertEquals(app.state, "exited")
  end)
end

-- An app the main thread starts while a coroutine of cqueues or luv
-- already waits (between two cq:loop() calls; in a callback of uv's on
-- the main thread): that wait, begun when the main thread had nothing to
-- serve, serves it from then on (its end was seen once the wait was over,
-- 2 s on).
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_an_app_the_main_thread_starts_while_a_coroutine_waits_is_served"] = function()
    leaves_nothing(context, function()
      local got = {}
      local function main_starts()
        got.app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=5" }, ready = "none", log = S.quiet,
          on_exit = function() got.exited = S.core.now() end })
      end
      local function waits()
        local paused = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
        got.waited = paused:wait(2)
        got.over = S.core.now()
        paused:terminate(1)
      end
      if context == "cqueues" then
        local cq = require("cqueues").new()
        cq:wrap(waits)
        assert(cq:loop(0.1))
        main_starts()
        assert(cq:loop(5))
        cq = nil -- luacheck: ignore
        collectgarbage()
      else
        local uv = require "luv"
        coroutine.wrap(waits)()
        local t = uv.new_timer()
        t:start(100, 0, function() t:close(); main_starts() end)
        uv.run()
      end
      lu.assertNil(got.waited, context)
      lu.assertNotNil(got.exited, context)
      lu.assertTrue(got.over - got.exited > 1, string.format("%s: its end seen %.2f s before the wait's",
        context, got.over - got.exited))
      lu.assertEquals(got.app.how, { code = 5 }, context)
      got.app:close()
    end)
  end
end

-- A coroutine waits on an app of its own while the main thread's app
-- floods its captured output (an on_output slow enough that the pipe never
-- runs dry): each wait served a slice of that output and, having served
-- something, returned at once without yielding, and app:wait waited
-- again: the loop's other coroutines, timers and descriptors were served
-- only once that wait was over (here at its 10 s bound, no tick before).
-- A wait that served something gives the loop its turn first: the loop's
-- own ticks come meanwhile, and the fifth ends the app waited on.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_wait_serving_the_main_threads_flood_lets_the_loop_run"] = function()
    leaves_nothing(context, function()
      local n, slow = 0, true
      local flood = assert(appstart.start { argv = { F, "lines=1:100000000:" .. string.rep("x", 40) },
        ready = "none", stdout = "capture", log = S.quiet, on_output = function()
          n = n + 1
          if slow then
            local t = os.clock() + 0.00002
            repeat until os.clock() >= t
          end
        end })
      local got = { ticks = 0 }
      in_context(context, function(spawn)
        local paused = assert(appstart.start { argv = { F, "pause" }, ready = "none", log = S.quiet })
        got.paused = paused
        local function tick()
          got.ticks = got.ticks + 1
          if got.ticks == 5 then paused:kill() end
          return got.ticks == 5
        end
        if context == "cqueues" then
          local cqueues = require "cqueues"
          spawn(function()
            repeat cqueues.sleep(0.01) until tick()
          end)
        else
          -- (a tick is a timer's write and its read's callback: the loop's
          -- timers and its poll of descriptors both; a wait of no time
          -- made of a timer of 0 ms ran in the same pass of the timers,
          -- over and over, and the poll never came)
          -- (a poll handle on a pipe, no uv stream: libuv's first stream
          -- keeps a descriptor of its loop's for good)
          local uv = require "luv"
          local fds = uv.pipe()
          got.fds = fds
          local poll, t = uv.new_poll(fds.read), uv.new_timer()
          poll:start("r", function()
            uv.fs_read(fds.read, 64)
            if tick() then
              poll:close()
              t:close()
            end
          end)
          t:start(10, 10, function() uv.fs_write(fds.write, "x") end)
        end
        local n0 = n
        got.how, got.err = paused:wait(10)
        got.ticked, got.read = got.ticks, n - n0
      end)
      slow = false
      if got.fds then
        require("luv").fs_close(got.fds.read)
        require("luv").fs_close(got.fds.write)
      end
      lu.assertEquals(got.how, { signal = 15 }, context .. ": " .. tostring(got.err))
      lu.assertEquals(got.ticked, 5, context)
      lu.assertTrue(got.read > 0, context .. ": the flood was not read meanwhile")
      got.paused:wait(5)
      got.paused:close()
      flood:terminate()
      flood:close()
    end)
  end
end

--- fn run in a coroutine of cqueues' (context "cqueues") or luv's, that
-- loop run until nothing is left to run in it, or left after `leave`
-- seconds (cq:loop(leave); uv.stop from a timer that holds the loop no
-- longer than it). Returns a function that runs it again to its end.
local function in_loop(context, fn, leave)
  if context == "cqueues" then
    local cq = require("cqueues").new()
    cq:wrap(fn)
    assert(cq:loop(leave or 20))
    return function() assert(cq:loop(20)) end
  end
  require "appstart.luv"
  local uv = require "luv"
  coroutine.wrap(fn)()
  local t = leave and uv.new_timer()
  if t then
    t:start(math.floor(leave * 1000), 0, function() uv.stop() end)
    t:unref()
  end
  uv.run()
  if t then t:close() end
  return function() uv.run() end
end

-- A main thread's app whose on_exit waits (0.5 s), its end served by a
-- coroutine's wait under cqueues or luv (a 0.4 s sleep): on_exit runs in a
-- coroutine of its own, not in the one that served it, whose sleep it
-- held up (to 0.8 s), whose close cut it short, whose cancel it took.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_main_threads_on_exit_served_by_a_coroutine_waits_on_its_own"] = function()
    leaves_nothing(context, function()
      local order = {}
      local app = assert(appstart.start { argv = { F, "sleep=0.2", "exit=0" }, ready = "none", log = S.quiet,
        on_exit = function()
          order[#order + 1] = "on_exit begins"
          appstart.sleep(0.5)
          order[#order + 1] = "on_exit ends"
        end })
      in_loop(context, function()
        appstart.sleep(0.4)
        order[#order + 1] = "slept"
      end)
      lu.assertEquals(order, { "on_exit begins", "slept", "on_exit ends" }, context)
      lu.assertEquals(app.how, { code = 0 }, context)
      app:close()
    end)
  end
end

-- A supervisor the main thread brought up, its service's STATUS= served
-- by a coroutine's wait under cqueues or luv: its on_status runs as the
-- main thread's, in a coroutine of its own there. What it makes (a watch)
-- is the main thread's, served by the main thread's sleep once the loop is
-- left (it went to the loop, which never fired it meanwhile); and one
-- still waiting in the loop left holds back no later on_status: the main
-- thread's sleep runs "two" (it waited for the loop to run again: a loop
-- left for good held back every later callback for good). The one left
-- finishes when that loop runs again.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_main_threads_supervisor_callbacks_served_by_a_coroutine_stay_the_main_threads"] =
    function()
      leaves_nothing(context, function()
        local got, other, w = {}, nil, nil
        local sv = appstart.supervisor { log = S.quiet, services = { svc = {
          argv = { F, "notify=READY=1", "sleep=0.1", "notify=STATUS=one", "sleep=0.3", "notify=STATUS=two", "pause" },
          watchdog = 20, kill_grace = 0.5, -- (the watchdog keeps its socket read)
          on_status = function(_, text)
            got[#got + 1] = text
            if text ~= "one" then return end
            w = appstart.watch(other.pid, function(_, why) got[#got + 1] = "watch " .. why end)
            appstart.sleep(0.3)
            got[#got + 1] = "one done"
          end } } }
        assert(sv:up())
        other = assert(appstart.start { argv = { F, "sleep=0.5", "exit=0" }, ready = "none", log = S.quiet })
        -- the loop, left at 0.25 s, with on_status("one") waiting in it
        local again = in_loop(context, function() appstart.sleep(1) end, 0.25)
        got[#got + 1] = "left"
        appstart.sleep(0.75)
        got[#got + 1] = "slept"
        local by_then = table.concat(got, ",")
        assert(sv:down())
        -- that loop run again: what waited there finishes
        again()
        again = nil -- luacheck: ignore (the controller's descriptors go with it)
        collectgarbage()
        lu.assertEquals(other.how, { code = 0 }, context)
        other:close()
        lu.assertTrue(w.done, context)
        lu.assertEquals({ got[1], got[2] }, { "one", "left" }, context .. ": " .. by_then)
        lu.assertStrContains(by_then, "two", false, context)
        lu.assertStrContains(by_then, "watch exited", false, context)
        lu.assertEquals(got[#got], "one done", context)
        lu.assertEquals(#got, 6, context .. ": " .. table.concat(got, ","))
      end)
    end
end

-- A supervisor of one service, svc, ready at once, then the fixture's
-- words (its STATUS= lines), with the fields of more: its on_status notes
-- each status in got, and waits 0.5 s in "one" ("one done" after).
local function one_waits(got, words, more)
  local svc = { argv = { F, "notify=READY=1", table.unpack(words) }, watchdog = 20,
    on_status = function(_, text)
      got[#got + 1] = text
      if text ~= "one" then return end
      appstart.sleep(0.5)
      got[#got + 1] = "one done"
    end }
  for k, v in pairs(more) do svc[k] = v end
  return appstart.supervisor { log = S.quiet, services = { svc = svc } }
end

-- A supervisor a coroutine of the loop made, its on_status waiting in
-- that loop (its runner, the loop's) when the loop is left for good: the
-- main thread's sv:wait() that drives it then runs its later on_status
-- ("two", as a plain script would), where it was held back for as long as
-- that loop did not run again. The one left finishes when the loop runs
-- again.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_loops_supervisor_the_main_thread_drives_runs_callbacks_a_loop_left_held"] = function()
    leaves_nothing(context, function()
      local got, sv = {}, nil
      local again = in_loop(context, function()
        sv = one_waits(got, { "sleep=0.1", "notify=STATUS=one", "sleep=0.3", "notify=STATUS=two", "sleep=0.2",
          "exit=0" }, { restart = "no" })
        assert(sv:up())
        appstart.sleep(2)
      end, 0.25)
      got[#got + 1] = "left"
      -- (to the service's exit, at 0.6 s or so)
      assert(sv:wait())
      got[#got + 1] = "waited"
      local by_then = table.concat(got, ",")
      again()
      again = nil -- luacheck: ignore (the controller's descriptors go with it)
      lu.assertEquals(by_then, "one,left,two,waited", context)
      lu.assertEquals(got[#got], "one done", context)
      lu.assertEquals(sv:status().svc.state, "stopped", context)
    end)
  end
end

-- Nor does a call from a callback of uv's (a timer's, on the main thread
-- while uv.run() runs) take the queue over from the loop's runner that
-- waits in that running loop: "two" ran while "one" still waited.
function TL.test_a_luv_callbacks_call_leaves_a_loops_supervisor_callbacks_in_order()
  leaves_nothing("luv", function()
    local uv = require "luv"
    local got, sv = {}, nil
    coroutine.wrap(function()
      sv = one_waits(got, { "sleep=0.1", "notify=STATUS=one", "sleep=0.2", "notify=STATUS=two", "sleep=0.6",
        "exit=0" }, { restart = "no" })
      assert(sv:up())
    end)()
    local t = uv.new_timer()
    -- (0.35 s on: "one" waits, "two" has come)
    t:start(350, 0, function()
      got[#got + 1] = "up"
      assert(sv:up("svc"))
      t:close()
    end)
    uv.run()
    lu.assertEquals(got, { "one", "up", "one done", "two" })
    lu.assertEquals(sv:status().svc.state, "stopped")
  end)
end

-- Inside appstart.run, appstart.luv loaded but uv.run() not running: a
-- start in a coroutine of the user's inside a task waits there, as a plain
-- script's does (its wait was luv's, yielding out of that coroutine: the
-- caller's resume returned nothing at once, the start left behind).
function TL.test_a_start_in_a_users_coroutine_inside_a_run_is_not_luvs_while_uv_is_not_running()
  leaves_nothing("luv", function()
    appstart.run(function()
      local gen = coroutine.wrap(function()
        coroutine.yield(appstart.start { argv = { F, "sleep=0.2", "line=3:late", "pause" }, ready = "fd",
          log = S.quiet })
      end)
      local app, err = gen()
      lu.assertNotNil(app, tostring(err))
      lu.assertEquals(app.name, "late")
      app:terminate()
    end)
  end)
end

-- Nor does such serving move the supervisor's driver into that loop (the
-- app tells a reload of its own, served so): the loop returns
-- once its coroutine is done (a driver moved there held cq:loop() and
-- uv.run() for as long as the service ran: 3 s here, to the timeout), and
-- the supervisor stays the main thread's.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_serving_a_main_threads_supervisor_leaves_no_driver_in_the_loop"] = function()
    leaves_nothing(context, function()
      local got = {}
      local sv = appstart.supervisor { log = S.quiet, services = { svc = {
        argv = { F, "notify=READY=1", "sleep=0.1", "notify=RELOADING=1", "notify=STATUS=one", "notify=READY=1",
          "pause" }, watchdog = 20, kill_grace = 0.5,
        on_status = function(_, text) got[#got + 1] = text end } } }
      assert(sv:up())
      local t0 = S.core.now()
      local again = in_loop(context, function() appstart.sleep(0.4) end, 3)
      local took = S.core.now() - t0
      lu.assertEquals(got, { "one" }, context)
      lu.assertTrue(took < 2, string.format("%s: the loop ran %.1f s", context, took))
      lu.assertEquals(sv:status().svc.state, "ready", context)
      assert(sv:down())
      again()
      again = nil -- luacheck: ignore
    end)
  end
end

-- Such a supervisor's on_status, waiting in that loop, holds back its
-- later ones for the loop's own coroutines too: one that calls the
-- supervisor meanwhile (sv:status(), which moves its driver into the
-- loop) took the queue over, and "three" ran while "one" still waited,
-- which a plain script never does.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_main_threads_supervisor_callbacks_served_by_a_coroutine_stay_in_order"] = function()
    leaves_nothing(context, function()
      local got = {}
      local sv = one_waits(got, { "sleep=0.1", "notify=STATUS=one", "sleep=0.1", "notify=STATUS=two", "sleep=0.1",
        "notify=STATUS=three", "pause" }, { kill_grace = 0.5 })
      assert(sv:up())
      -- (left at 1.5 s: called from the loop's coroutine, the supervisor's
      -- driver moved into the loop, which would run on with it)
      local again = in_loop(context, function()
        local function calls()
          appstart.sleep(0.35)
          got[#got + 1] = "status"
          sv:status()
        end
        if context == "cqueues" then require("cqueues").running():wrap(calls) else coroutine.wrap(calls)() end
        appstart.sleep(1.2)
      end, 1.5)
      assert(sv:down())
      again()
      again = nil -- luacheck: ignore
      lu.assertEquals(got, { "one", "status", "one done", "three" }, context)
    end)
  end
end

-- A supervisor a coroutine of the loop brought up (made there, or by the
-- main thread) stays the loop's when a callback of the main thread's
-- served there (an app's on_exit) calls it: its driver stays in the loop
-- (the on_exit's sv:up() left none: the service's exit went unseen until
-- the next call), and under luv its descriptor is polled by that driver
-- alone (sv:down() polled it beside the driver's uv handle: EEXIST, the
-- process ended, status 255). (In a child: see there.)
for _, case in ipairs { { "cqueues", "loop" }, { "luv", "loop" }, { "cqueues", "main" }, { "luv", "main" } } do
  local context, made_by = case[1], case[2]
  local name = "test_" .. context .. "_a_loops_supervisor_called_by_a_main_threads_callback_stays_the_loops"
  TW[name .. (made_by == "main" and "_though_the_main_thread_made_it" or "")] = function()
    local out, ok = S.run_child({ timeout = 20 }, "eventloops_a_loops_supervisor_called_by_a_main_threads_callback",
      context, made_by)
    lu.assertTrue(ok, out)
    local events, on_exit, order = {}, nil, {}
    for line in out:gmatch("[^\n]+") do
      local state = line:match("^event:\tsvc\t(%a+)$")
      if state then events[#events + 1] = state end
      if line:match("^on_exit:") then on_exit = line end
      order[#order + 1] = state and "event" or line
    end
    lu.assertEquals(events, { "starting", "ready", "stopping", "stopped", "starting", "ready", "stopped" }, out)
    lu.assertEquals(on_exit, "on_exit:\ttrue\ttrue", out)
    lu.assertEquals({ order[#order - 2], order[#order - 1], order[#order] }, { "event", "slept", "done:\ttrue" },
      context .. ": the app's exit was seen after the sleep:\n" .. out)
  end
end

-- Such a supervisor's callback, run in the loop, waits in sv:restart()
-- (on the supervisor's epoll descriptor, in the loop's poll set) when the
-- loop is left; the main thread takes the supervisor down, which closes
-- that descriptor: it leaves the loop's poll set first (cqueues failed the
-- loop when it ran again, "Bad file descriptor", its coroutine's sleep cut
-- short).
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_main_threads_supervisor_closed_under_a_callback_waiting_in_a_loop_left"] = function()
    leaves_nothing(context, function()
      local got, sv = {}, nil
      sv = appstart.supervisor { log = S.quiet, services = { svc = {
        argv = { F, "ignore=TERM", "notify=READY=1", "sleep=0.1", "notify=STATUS=one", "pause" },
        watchdog = 20, kill_grace = 0.6, restart = "no",
        on_status = function()
          if got.restart then return end
          got.restart = "asked"
          got.restart = table.pack(sv:restart("svc"))
        end } } }
      assert(sv:up())
      local t0 = S.core.now()
      local again = in_loop(context, function()
        appstart.sleep(2)
        got.slept = S.core.now() - t0
      end, 0.3)
      lu.assertEquals(got.restart, "asked", context)
      assert(sv:down())
      again()
      again = nil -- luacheck: ignore
      lu.assertTrue(got.slept > 1.9, string.format("%s: the loop's sleep of 2 s took %.2f s", context, got.slept))
      lu.assertEquals(type(got.restart), "table", context)
      lu.assertEquals(sv:status().svc.state, "stopped", context)
    end)
  end
end

-- A main thread's supervisor brought up by a callback of the main
-- thread's served in the loop (its wait on the supervisor's descriptor in
-- the loop's poll set) while one of the loop's coroutines calls it (its
-- driver, moved into the loop, polls that descriptor too): under luv the
-- driver's own poll handle failed (EEXIST: the process ended, status 255,
-- its services left running). (In a child: see there.)
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_main_threads_supervisor_brought_up_by_a_callback_beside_a_loops_call"] = function()
    local out, ok = S.run_child({ timeout = 20 },
      "eventloops_a_main_threads_supervisor_up_from_a_callback_beside_a_loops_call", context)
    lu.assertTrue(ok, out)
    lu.assertEquals(out, "status:\tstarting\nup:\ttrue\nslept\ndown:\ttrue\n", context)
  end
end

-- A main thread's callback waiting in sv:up() of a main thread's
-- supervisor (on its descriptor, in the loop's poll set) while a
-- coroutine of the loop has moved the supervisor's driver into that loop
-- (polling the same descriptor); the loop left while both wait, the main
-- thread takes the supervisor down, and the loop runs again: under
-- cqueues the driver's poll of the closed descriptor failed the loop
-- ("Bad file descriptor": the two waits on one descriptor were not
-- told apart).
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_supervisor_polled_by_its_driver_and_a_main_threads_call_closes_cleanly"] = function()
    leaves_nothing(context, function()
      local got = {}
      local sv = appstart.supervisor { log = S.quiet, services = {
        a = { argv = { F, "notify=READY=1", "pause" }, kill_grace = 0.3 },
        slow = { argv = { F, "sleep=1.5", "notify=READY=1", "pause" }, kill_grace = 0.3 } } }
      assert(sv:up("a"))
      local main_app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=0" }, ready = "none", log = S.quiet,
        on_exit = function() got.up = table.pack(sv:up("slow")) end })
      local again = in_loop(context, function()
        main_app:wait()
        appstart.sleep(0.3)
        got.status = sv:status("slow").state
      end, 1)
      lu.assertEquals(got.status, "starting", context)
      lu.assertTrue(sv:down(), context)
      main_app:close()
      again()
      again = nil -- luacheck: ignore
      lu.assertNil(got.up[1], context .. ": the up came to its end")
    end)
  end
end

-- Such a call of the main thread's waiting on the supervisor's
-- descriptor in uv's loop holds what owns that descriptor while it
-- waits: its coroutine closed (coroutine.close) and the supervisor
-- dropped, the collector closed the descriptor under luv's poll handle on
-- it (which then polled a closed descriptor, or another's of that number).
function TL.test_a_main_threads_call_waiting_on_a_supervisors_descriptor_holds_it()
  local uv = require "luv"
  leaves_nothing("luv", function()
    local weak, holder, got, cb = setmetatable({}, { __mode = "v" }), {}, {}, nil
    holder.sv = appstart.supervisor { log = S.quiet, services = { slow = {
      argv = { F, "sleep=30", "notify=READY=1", "pause" }, ready_timeout = 30, kill_grace = 0.2 } } }
    local main_app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=0" }, ready = "none", log = S.quiet,
      on_exit = function()
        cb = coroutine.running()
        local sv = holder.sv
        holder.sv, weak[1] = nil, sv
        sv:up("slow")
      end })
    coroutine.wrap(function() main_app:wait() end)()
    local t = uv.new_timer()
    t:start(500, 0, function()
      t:close()
      got.waiting = cb ~= nil and coroutine.status(cb) == "suspended"
      got.fd = weak[1]._poller:fd()
      coroutine.close(cb)
      cb = nil
      collectgarbage()
      collectgarbage()
      local link = io.popen("readlink /proc/" .. S.core.pid() .. "/fd/" .. got.fd)
      got.link = link:read("l")
      link:close()
      uv.stop()
    end)
    uv.run()
    lu.assertTrue(got.waiting, "the on_exit was not waiting in sv:up()")
    lu.assertEquals(got.link, "anon_inode:[eventpoll]", "the supervisor's descriptor was closed under the wait")
    -- (the wait let go of: its descriptor released, as a closing owner does)
    require("appstart.loop").release(got.fd)
    main_app:close()
    uv.run()
    collectgarbage()
    collectgarbage()
    S.testing.reap()
  end)
end

-- What such an on_exit raises is logged, as in a plain script (under
-- cqueues it came out of cq:loop(), or was logged, by which of the two
-- saw the app's end first).
function TC.test_what_a_main_threads_on_exit_served_by_a_coroutine_raises_is_logged()
  local before = S.snapshot()
  local logged = {}
  local app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=0" }, ready = "none",
    log = function(level, message) logged[#logged + 1] = level .. ": " .. message end,
    on_exit = function() error("boom from on_exit") end })
  local cq = require("cqueues").new()
  cq:wrap(function() appstart.sleep(0.4) end)
  local ok, err = cq:loop(5)
  lu.assertTrue(ok, tostring(err))
  lu.assertStrContains(table.concat(logged, "\n"), "boom from on_exit")
  lu.assertEquals(app.how, { code = 0 })
  app:close()
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- A wait under luv that fails (a descriptor uv cannot poll: a regular
-- file) leaves nothing behind: it stayed among the waits woken when the
-- main thread makes something, and a task's cancel ended it, each of
-- which then resumed the coroutine at a yield of the user's own. (In a
-- child: see there.)
function TL.test_a_wait_that_failed_under_luv_is_not_woken_later()
  local out, ok = S.run_child({ timeout = 20, env = { ASAN_OPTIONS = "detect_leaks=0" } },
    "eventloops_luv_a_failed_wait")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "failed:\ttrue\ttrue\nresumed:\t0\napp:\t0\n")
end

-- A supervisor brought up by the main thread, its service pinging its
-- watchdog for 0.6 s, then no more; meanwhile a coroutine of cqueues or
-- luv sleeps 0.3 s, serving the main thread's poll set: the watchdog's
-- timer, set again at each ping, went to that loop, which ran on for it
-- after the coroutine was done (cq:loop() and uv.run() returned with the
-- app killed), or, left before (cq:loop(1)), never fired for the main
-- thread (sv:wait() hung). Set again there, it stays the main thread's.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_watchdog_the_main_thread_serves_stays_its_own_after_a_loop"] = function()
    leaves_nothing(context, function()
      local sv = appstart.supervisor { log = S.quiet, services = { w = { argv = { F, "notify=READY=1",
        "repeat=6:0.1:WATCHDOG=1", "pause" }, ready = "notify", watchdog = 0.3, kill_grace = 0.5, restart = "no" } } }
      assert(sv:up())
      in_context(context, function() appstart.sleep(0.3) end)
      lu.assertEquals(sv:status("w").state, "ready", context)
      local ended = S.await_with_sleep(function() return sv:status("w").state ~= "ready" end, 5)
      lu.assertTrue(ended, context .. ": the watchdog never fired")
      lu.assertEquals(sv:status("w").last.signal, 6, context)
      lu.assertTrue(sv:wait(), context)
    end)
  end
end

-- A supervisor brought up in a coroutine of cqueues or luv, the loop
-- left once its service is ready, and taken down from the main thread
-- (the clean-up after a loop stopped on a signal): its epoll descriptor
-- is closed by sv:down(), not held until the loop runs again (its driver
-- was left waiting on it there); run again, the loop ends that driver, and
-- the supervisor works there as before.
for _, context in ipairs { "cqueues", "luv" } do
  TW["test_" .. context .. "_a_supervisor_taken_down_from_the_main_thread_keeps_no_descriptor"] = function()
    leaves_nothing(context, function()
      local sv = appstart.supervisor { log = S.quiet,
        services = { a = { argv = { F, "notify=READY=1", "pause" } } } }
      local got = {}
      local cq = context == "cqueues" and require("cqueues").new()
      local with_loop = table.concat(S.testing.fds(), ",") -- (the controller's own)
      local function up_then_down()
        got.up = sv:up()
        got.state = sv:status("a").state
        got.down = sv:down()
      end
      if cq then
        cq:wrap(function() assert(sv:up()) end)
        local deadline = S.core.now() + 3
        while sv:status("a").state ~= "ready" and S.core.now() < deadline do assert(cq:step(0.05)) end
      else
        local uv = require "luv"
        coroutine.wrap(function() assert(sv:up()) end)()
        local t = uv.new_timer()
        t:start(10, 10, function()
          if sv:status("a").state == "ready" then t:close(); uv.stop() end
        end)
        uv.run()
      end
      lu.assertEquals(sv:status("a").state, "ready", context)
      lu.assertTrue(sv:down(), context)
      lu.assertEquals(table.concat(S.testing.fds(), ","), with_loop, context .. ": a descriptor held after sv:down()")
      if cq then
        cq:wrap(up_then_down)
        assert(cq:loop(5))
      else
        coroutine.wrap(up_then_down)()
        require("luv").run()
      end
      lu.assertEquals({ got.up, got.state, got.down }, { true, "ready", true }, context)
      cq = nil -- luacheck: ignore
    end)
  end
end

local TO = {}

function TO.tearDown() S.kill_strays() end

-- go() in a coroutine of a cqueues controller, of luv's, or a task of
-- appstart.run (context), until that loop returns.
local function run_in(context, go)
  if context == "cqueues" then
    local cq = require("cqueues").new()
    cq:wrap(go)
    assert(cq:loop())
    cq = nil -- luacheck: ignore
    collectgarbage()
  elseif context == "luv" then
    coroutine.wrap(go)()
    require("luv").run()
  else
    appstart.run(go)
  end
end

local function waits_for_its_end(context)
  if context == "luv" then require "appstart.luv" end -- (its own descriptors first)
  local before = S.snapshot()
  local child, started = S.tmpname("child"), S.tmpname("started")
  local got = {}
  local function go()
    -- (its lines once the start is over: during the start app:wait
    -- raises, the start holds the app; a slow launcher, under valgrind,
    -- read the first line before the start was over)
    local app = assert(appstart.start { argv = { F, "fork", "pidfile=" .. child, "sleep=3", "|",
      "waitfile=" .. started, "line=1:first", "sleep=0.2", "line=1:second", "write=1:last", "exit=3" },
      ready = "none", stdout = "capture",
      on_output = function(a, _, line)
        got[#got + 1] = line
        if line == "first" then got[#got + 1] = "wait " .. a:wait().code end
      end,
      on_exit = function(_, how) got[#got + 1] = "on_exit " .. how.code end })
    S.touch(started)
    if context == "run" then app:wait() end
  end
  run_in(context, go)
  lu.assertEquals(got, { "first", "wait 3", "second", "last", "on_exit 3" }, context)
  local pid = S.pid_in(child)
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid))
  S.assert_clean(before, context)
end

-- An app whose output the loop reads, with no on_exit and nobody waiting
-- on it, while a child of its holds the pipe: its end is seen at once all
-- the same (it is reaped, its pipes closed), and cq:loop() and uv.run()
-- return (they went on until the child closed the pipe: for good, with a
-- child that never does; inside appstart.run the app stayed a zombie and
-- the child's lines went on to on_output).
local function ends_with_a_child_holding_its_pipe(context)
  if context == "luv" then require "appstart.luv" end -- (its own descriptors first)
  local before = S.snapshot()
  local child = S.tmpname("child")
  local got, app = {}, nil
  local function go()
    app = assert(appstart.start { argv = { F, "fork", "pidfile=" .. child, "sleep=15", "|", "line=1:first",
      "exit=3" }, ready = "none", stdout = "capture", on_output = function(_, _, line) got[#got + 1] = line end })
    if context == "run" then
      -- (rawget: app.state would look, and see the end itself)
      lu.assertTrue(S.await_with_sleep(function() return S.proc_status(app.pid) == nil end, 10),
        "the app's end was not seen in the background")
      lu.assertEquals(rawget(app, "_state"), "exited")
    end
  end
  run_in(context, go)
  local pid = S.pid_in(child)
  lu.assertTrue(S.alive(pid), "the loop returned once the child holding the pipe had gone: " .. context)
  lu.assertNil(S.proc_status(app.pid), "the app was not reaped")
  lu.assertEquals(got, { "first" })
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid))
  S.assert_clean(before, context)
end

function TO.test_an_app_with_a_child_holding_its_pipe_ends_inside_appstart_run()
  ends_with_a_child_holding_its_pipe("run")
end
function TO.test_an_app_with_a_child_holding_its_pipe_ends_under_cqueues()
  ends_with_a_child_holding_its_pipe("cqueues")
end
function TO.test_an_app_with_a_child_holding_its_pipe_ends_under_luv() ends_with_a_child_holding_its_pipe("luv") end

function TO.test_an_on_output_that_waits_for_the_end_inside_appstart_run() waits_for_its_end("run") end
function TO.test_an_on_output_that_waits_for_the_end_under_cqueues() waits_for_its_end("cqueues") end
function TO.test_an_on_output_that_waits_for_the_end_under_luv() waits_for_its_end("luv") end

-------------------------------------------------------------------------------
-- loop.watch's fn says "not yet" (false): woken, what it waits for has not
-- happened (a process whose end cannot be reaped yet, a wake of a reused
-- number); the watch waits on, as appstart.run's does. Under luv and
-- cqueues it was over after its first wake: appstart.watch's function was
-- never told the end, an old main after a MAINPID= move never reaped.

local TWW = {}

function TWW.tearDown() S.kill_strays() end

local function usr2_to_self() assert(os.execute("kill -USR2 " .. S.core.pid())) end

-- (calls in 0.3 s, a pause of poll_interval before each look at a
-- descriptor still readable, with room to spare; a spin calls it
-- thousands of times)
local function at_most_in(seconds)
  return math.floor(seconds / require("appstart.settings").poll_interval) + 3
end

local function woken_again(context)
  if context == "luv" then require "appstart.luv" end -- (its own descriptors first)
  local loop = require "appstart.loop"
  local before = S.snapshot()
  local sig = assert(S.core.signals { "USR2" })
  local calls, how, h = 0, "leave", nil
  local seen = {}
  run_in(context, function()
    h = loop.watch(sig:fd(), function()
      calls = calls + 1
      if how == "leave" then return false end -- (still readable)
      sig:read()
      return how == "end"
    end)
    usr2_to_self()
    -- woken again, the descriptor still readable: a poll interval on each
    -- time, not at once
    seen.again = S.await_with_sleep(function() return calls >= 2 end, 5)
    local n = calls
    appstart.sleep(0.3)
    seen.in_pause = calls - n
    -- read, not readable: waits on the descriptor, woken by nothing
    how, n = "read", calls
    seen.read = S.await_with_sleep(function() return calls > n end, 5)
    n = calls
    appstart.sleep(0.2)
    seen.unread = calls - n
    -- readable again: fn's true, done
    how = "end"
    usr2_to_self()
    seen.done = S.await_with_sleep(function() return h.done end, 5)
    seen.last = calls - n
    loop.unwatch(h)
  end)
  sig:read() -- (taken, whatever happened: a USR2 left pending ends the runner at the close)
  sig:close()
  h = nil -- luacheck: ignore (its cancel holds the controller, and its descriptors)
  collectgarbage()
  lu.assertTrue(seen.again, "fn's false and the watch was over: " .. context)
  lu.assertTrue(seen.in_pause <= at_most_in(0.3), seen.in_pause .. " calls in 0.3 s (a spin): " .. context)
  lu.assertTrue(seen.read, context)
  lu.assertEquals(seen.unread, 0, context)
  lu.assertTrue(seen.done, context)
  lu.assertEquals(seen.last, 1, context)
  lu.assertEquals((loop.pending()), {})
  S.assert_clean(before, context)
end

function TWW.test_a_watch_whose_fn_returns_false_is_woken_again_inside_appstart_run() woken_again("run") end
function TWW.test_a_watch_whose_fn_returns_false_is_woken_again_under_cqueues() woken_again("cqueues") end
function TWW.test_a_watch_whose_fn_returns_false_is_woken_again_under_luv() woken_again("luv") end

-- A watch unwatched inside its fn, and one unwatched from outside while it
-- pauses (its descriptor still readable): neither is called again, and
-- the loop returns (cq:loop() went on polling the copy, uv.run on its
-- timer).
local function unwatched_between_wakes(context)
  if context == "luv" then require "appstart.luv" end
  local loop = require "appstart.loop"
  local before = S.snapshot()
  local sig = assert(S.core.signals { "USR2" })
  local a, b = { calls = 0 }, { calls = 0 }
  local seen = {}
  run_in(context, function()
    a.h = loop.watch(sig:fd(), function()
      a.calls = a.calls + 1
      if a.calls == 2 then loop.unwatch(a.h) end
      return false
    end)
    b.h = loop.watch(sig:fd(), function()
      b.calls = b.calls + 1
      return false
    end)
    usr2_to_self()
    seen.a = S.await_with_sleep(function() return a.calls >= 2 end, 5)
    seen.b = S.await_with_sleep(function() return b.calls >= 1 end, 5)
    loop.unwatch(b.h)
    b.at_unwatch = b.calls
    appstart.sleep(0.2)
  end)
  sig:read()
  sig:close()
  lu.assertTrue(seen.a and seen.b, context)
  lu.assertEquals(a.calls, 2, context)
  lu.assertEquals(b.calls, b.at_unwatch, context)
  lu.assertTrue(a.h.done and b.h.done, context)
  lu.assertEquals((loop.pending()), {})
  a.h, b.h = nil, nil -- (their cancel holds the controller, and its descriptors)
  collectgarbage()
  S.assert_clean(before, context)
end

function TWW.test_a_watch_unwatched_in_its_fn_or_its_pause_ends_inside_appstart_run()
  unwatched_between_wakes("run")
end
function TWW.test_a_watch_unwatched_in_its_fn_or_its_pause_ends_under_cqueues() unwatched_between_wakes("cqueues") end
function TWW.test_a_watch_unwatched_in_its_fn_or_its_pause_ends_under_luv() unwatched_between_wakes("luv") end

-- A watch at an interval whose fn waits longer than that interval: called
-- again an interval after it returned, never twice at once (under luv a
-- repeating timer called it at every tick, a call under way or not).
local function one_probe_at_a_time(context)
  if context == "luv" then require "appstart.luv" end
  local loop = require "appstart.loop"
  local calls, running, most, h = 0, 0, 0, nil
  local done
  run_in(context, function()
    h = loop.watch(nil, function()
      running = running + 1
      most = math.max(most, running)
      appstart.sleep(0.05)
      running = running - 1
      calls = calls + 1
      return calls == 3
    end, 0.01)
    done = S.await_with_sleep(function() return h.done end, 5)
    if not done then loop.unwatch(h) end
    appstart.sleep(0.1) -- (calls under way, were there any, end)
  end)
  lu.assertTrue(done, context)
  lu.assertEquals(most, 1, context)
  lu.assertEquals(calls, 3, context)
  lu.assertEquals((loop.pending()), {})
end

function TWW.test_a_watch_at_an_interval_is_called_once_at_a_time_inside_appstart_run()
  one_probe_at_a_time("run")
end
function TWW.test_a_watch_at_an_interval_is_called_once_at_a_time_under_cqueues() one_probe_at_a_time("cqueues") end
function TWW.test_a_watch_at_an_interval_is_called_once_at_a_time_under_luv() one_probe_at_a_time("luv") end

return { TestCqueues = TC, TestLuv = TL, TestBegin = TB, TestCoreStart = TCore, TestWaitersAndClosers = TW,
  TestOutputEnd = TO, TestWatchWokenEarly = TWW }
