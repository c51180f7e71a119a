--- The app's life after ready: a notify app started under a loop keeps
-- its socket (STATUS=, RELOADING=1, READY=1, STOPPING=1, WATCHDOG=,
-- MAINPID=), the watchdog, app:reload(); in a plain script the socket is
-- closed at ready.
local lu = require "luaunit"
local S = require "support"

local F = S.fixture
local core = S.core
local now = core.now

local start = S.starter { ready = "notify", ready_timeout = 3, kill_grace = 0.5 }

local function run(fn)
  require("appstart").run(fn)
end

-- How many notify directories of this launcher's ("appstart.PID.*", and
-- "appstart-new.PID.*" while one is made) there are, under
-- $XDG_RUNTIME_DIR and /tmp.
local function notify_dirs()
  local n = 0
  local bases = { "/tmp" }
  local xdg = os.getenv("XDG_RUNTIME_DIR")
  if xdg and xdg ~= "/tmp" then bases[2] = xdg end
  for _, base in ipairs(bases) do
    local p = io.popen("ls -d " .. base .. "/appstart." .. core.pid() .. ".* " .. base .. "/appstart-new." .. core.pid()
      .. ".* 2>/dev/null")
    for _ in p:lines() do n = n + 1 end
    p:close()
  end
  return n
end

-- Until pred() holds (true) or `timeout` seconds (3) pass (false), letting
-- the loop run.
local function await(pred, timeout)
  return S.await_with_sleep(pred, timeout or 3)
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_status_after_ready_updates_app_status_and_calls_on_status()
  local before = S.snapshot()
  local seen = {}
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1\\nSTATUS=up", "sleep=0.05", "notify=STATUS=serving 3 clients", "pause" },
      on_status = function(a, text) seen[#seen + 1] = a.state .. ":" .. text end,
    })
    lu.assertEquals(app.status, "up")
    -- (app.status is set as the datagram is read, on_status called after,
    -- by a task: until it has been, the app is left running)
    lu.assertTrue(await(function() return #seen == 2 end), table.concat(seen, ", "))
    lu.assertEquals(app.status, "serving 3 clients")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  lu.assertEquals(seen, { "starting:up", "ready:serving 3 clients" })
  S.assert_clean(before)
end

function T.test_reloading_ready_and_stopping_move_app_state()
  local before = S.snapshot()
  run(function()
    local app = assert(start {
      argv = { F, "catch=USR1", "catch=USR2", "notify=READY=1", "waitsig=USR1", "notify=RELOADING=1",
        "waitsig=USR2", "notify=READY=1", "waitsig=USR1", "notify=STOPPING=1", "pause" },
    })
    lu.assertEquals(app.state, "ready")
    assert(app:kill("USR1"))
    lu.assertTrue(await(function() return app.state == "reloading" end), app.state)
    assert(app:kill("USR2"))
    lu.assertTrue(await(function() return app.state == "ready" end), app.state)
    assert(app:kill("USR1"))
    lu.assertTrue(await(function() return app.state == "stopping" end), app.state)
    lu.assertEquals(app:terminate(), { signal = 15 })
    lu.assertEquals(app.state, "exited")
  end)
  S.assert_clean(before)
end

function T.test_the_socket_is_read_with_no_task_waiting()
  -- the only task sleeps; the datagrams are read as they come all the same
  local got_at
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "sleep=0.1", "notify=STATUS=later", "pause" },
      on_status = function() got_at = now() end,
    })
    local t0 = now()
    require("appstart").sleep(1)
    lu.assertNotNil(got_at, "STATUS= after ready was read")
    lu.assertTrue(got_at - t0 < 0.6, "read when it came, not when a task woke: " .. (got_at - t0))
    app:terminate()
  end)
end

function T.test_in_a_plain_script_the_socket_is_closed_at_ready()
  local before = S.snapshot()
  local dirs = notify_dirs()
  local app = assert(start { argv = { F, "catch=USR1", "notify=READY=1", "waitsig=USR1", "notify=STATUS=later",
    "pause" } })
  -- nothing of the start is held: the socket and its directory are gone
  lu.assertEquals(notify_dirs(), dirs)
  local held = {}
  for fd in before.fds:gmatch("%d+") do held[#held + 1] = tonumber(fd) end
  if app:pollfd() then held[#held + 1] = app:pollfd() end -- none where it is probed
  table.sort(held)
  lu.assertEquals(S.testing.fds(), held, "only the app's pidfd is held")
  assert(app:kill("USR1"))
  lu.assertEquals(app:wait(3), { code = 99 }, "the app's sd_notify found no socket (the fixture's exit 99)")
  lu.assertNil(app.status, "no STATUS= after ready")
  S.assert_clean(before)
end

function T.test_the_socket_and_its_directory_go_when_the_app_ends()
  local before = S.snapshot() -- and earlier tests' objects collected
  run(function()
    local dirs = notify_dirs()
    local app = assert(start { argv = { F, "notify=READY=1", "sleep=0.1", "exit=0" } })
    lu.assertEquals(notify_dirs(), dirs + 1, "kept while it runs")
    lu.assertEquals(app:wait(3), { code = 0 })
    lu.assertEquals(notify_dirs(), dirs)
  end)
  S.assert_clean(before)
end

function T.test_refused_senders_after_ready_are_logged_once_with_a_count()
  local entries, log = S.recorder()
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "fork", "notifyflood=50:STATUS=forged", "pause", "|", "pause" },
      notify_access = "main", log = log,
    })
    -- (the child's datagrams read: a line says so at once)
    lu.assertTrue(await(function()
      for _, e in ipairs(entries) do
        if e:find("not admitted", 1, true) then return true end
      end
    end, 5), "the forged datagrams were never read")
    lu.assertNil(app.status, "a forged STATUS= is not taken")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  local lines = {}
  for _, e in ipairs(entries) do
    if e:find("not admitted") then lines[#lines + 1] = e end
  end
  lu.assertTrue(#lines >= 1 and #lines <= 2, table.concat(lines, "\n"))
  lu.assertStrContains(lines[1], "ignored ")
  lu.assertStrContains(lines[1], '(notify_access = "main")')
  S.kill_strays()
end

function T.test_a_malformed_datagram_after_ready_is_logged_and_the_app_lives()
  local entries, log = S.recorder()
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "sleep=0.05", "notify=garbage", "notify=STATUS=still here", "pause" },
      log = log,
    })
    lu.assertTrue(await(function() return app.status == "still here" end))
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  local found = false
  for _, e in ipairs(entries) do found = found or e:find("malformed notify datagram", 1, true) ~= nil end
  lu.assertTrue(found)
end

-------------------------------------------------------------------------------
-- MAINPID= after ready

function T.test_a_flood_after_ready_is_logged_once_a_second_a_kind_with_a_count()
  local before = S.snapshot()
  local entries, log = S.recorder()
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notifyflood=300:garbage", "notifyflood=300:STATUS=busy",
        "notify=STATUS=done", "pause" }, log = log,
    })
    lu.assertTrue(await(function() return app.status == "done" end), tostring(app.status))
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  local malformed, status = 0, 0
  for _, e in ipairs(entries) do
    if e:find("malformed notify datagram", 1, true) then malformed = malformed + 1 end
    if e:find(": status: ", 1, true) then status = status + 1 end
  end
  -- a second at most has passed: one line each, not 300
  lu.assertTrue(malformed >= 1 and malformed <= 2, "malformed lines: " .. malformed)
  lu.assertTrue(status >= 1 and status <= 3, "status lines: " .. status)
  S.assert_clean(before)
end

-- A flood that ends within its second (the app's last, or the start's)
-- is counted whole all the same: what was held back is said once the
-- start is over and once the app has ended (it never was: 50 malformed
-- datagrams, one line, "1" in all).
function T.test_a_flood_that_ends_within_its_second_is_counted_whole()
  local before = S.snapshot()
  local entries, log = S.recorder()
  run(function()
    local app = assert(start {
      argv = { F, "repeat=20:0:STATUS=starting", "notify=READY=1", "repeat=50:0:garbage", "sleep=0.05",
        "exit=0" }, log = log,
    })
    lu.assertEquals(app:wait(), { code = 0 })
  end)
  local function told(what, more)
    local n = 0
    for _, e in ipairs(entries) do
      if e:find(what, 1, true) then n = n + 1 + (tonumber(e:match("%((%d+) more like it not logged%)")) or 0) end
      n = n + (tonumber(e:match(": (%d+) more " .. more .. " lines? not logged")) or 0)
    end
    return n
  end
  lu.assertEquals(told(": status: starting", "status"), 20, table.concat(entries, "\n"))
  lu.assertEquals(told("malformed notify datagram", "malformed"), 50, table.concat(entries, "\n"))
  S.assert_clean(before)
end

-- A log function that waits (on the app's first status line, until the
-- main task has looked) while the app sends a thousand statuses of 3 KB:
-- what waits to be told meanwhile is a line of each kind and one
-- on_status call, each the latest. Each datagram queued a line and a
-- call, the line with its status: 3 MB here (hundreds of MB in seconds
-- from a sender as fast as the launcher reads), all told in one go once
-- the log function returned. Every status is still counted once, told or
-- held back, and on_status gets the last.
function T.test_a_flood_while_a_log_function_waits_queues_one_of_each_kind()
  local before = S.snapshot()
  local go, flood = S.tmpname("go"), S.tmpname("flood")
  local entries, calls, last = {}, 0, nil
  local waiting, read, grew, released = false, false, nil, false
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "waitfile=" .. go, "notify=STATUS=first", "waitfile=" .. flood,
        "repeat=1000:0:STATUS=" .. string.rep("x", 3000), "notify=STATUS=done", "pause" },
      log = function(level, message)
        entries[#entries + 1] = level .. ": " .. message
        if message:find(": status: first", 1, true) then
          waiting = true
          await(function() return released end, 10)
        end
      end,
      on_status = function(_, text) calls, last = calls + 1, text end,
    })
    S.touch(go)
    lu.assertTrue(await(function() return waiting end, 5), "the log function was never called")
    collectgarbage()
    local base = collectgarbage("count")
    S.touch(flood)
    -- (every datagram read and acted on while the log function waits)
    read = await(function() return app.status == "done" end, 10)
    collectgarbage()
    grew = collectgarbage("count") - base
    released = true
    lu.assertTrue(await(function() return last == "done" end, 5), tostring(last))
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  lu.assertTrue(read, "the flood was not read while the log function waited")
  lu.assertTrue(grew < 512, string.format("%.0f KB held while the log function waited", grew))
  lu.assertTrue(calls <= 3, calls .. " on_status calls")
  local told = 0
  for _, e in ipairs(entries) do
    if e:find(": status: ", 1, true) then told = told + 1 + (tonumber(e:match("%((%d+) more like it not logged%)$")) or 0) end
    told = told + (tonumber(e:match(": (%d+) more status lines? not logged")) or 0)
  end
  lu.assertEquals(told, 1002)
  S.assert_clean(before)
end

-- The log function of a test of one that waits inside appstart.run:
-- w.log, on a message that pattern matches (plain: found as it is),
-- waits until another task has ticked three times and a third has
-- started an app, and until more() holds, if given (5 s at most:
-- w.waited false then); w.others() spawns those two tasks; w.finish()
-- terminates the app the third started; w.check() says whether the
-- others ran while it waited.
local function waiting_log(case, pattern, plain, more)
  local w = { ticks = 0, waiting = false, other = nil, waited = nil, ticked = nil }
  function w.log(_, message)
    if not message:find(pattern, 1, plain) then return end
    w.waiting = true
    local from = w.ticks
    w.waited = await(function() return w.ticks >= from + 3 and w.other ~= nil and (not more or more()) end, 5)
    w.ticked = w.ticks - from
  end
  function w.others()
    local appstart = require "appstart"
    appstart.spawn(function()
      while w.waited == nil do
        w.ticks = w.ticks + 1
        appstart.sleep(0.01)
      end
    end)
    appstart.spawn(function()
      lu.assertTrue(await(function() return w.waiting end, 5), case .. ": the log function was never called")
      w.other = assert(start { argv = { F, "notify=READY=1", "pause" } })
    end)
  end
  function w.finish()
    if w.other then lu.assertEquals(w.other:terminate(), { signal = 15 }, case) end
  end
  function w.check()
    lu.assertTrue(w.waited, case .. ": no other task ran while the log function waited")
    lu.assertTrue(w.ticked >= 3, case .. ": ticks " .. tostring(w.ticked))
  end
  return w
end

-- A log function that waits inside appstart.run on a line the run's own
-- rounds have to tell (a STATUS= its listener read, a STOPPING=1's bound
-- a timer saw run out) holds that app's lines and callbacks, no other
-- task: one ticks, another starts an app meanwhile, and the wait ends
-- once they have. It was called in those rounds, where a wait serves
-- descriptors and timers but resumes no task: neither did anything until
-- the wait gave up (5 s).
function T.test_a_log_function_that_waits_on_a_line_read_in_the_background_holds_no_other_task()
  for _, case in ipairs { "status", "bound" } do
    local before = S.snapshot()
    local go = S.tmpname("go")
    local w = waiting_log(case, case == "status" and ": status: hello" or "after STOPPING=1: SIGKILL", true)
    run(function()
      local app = assert(start {
        argv = { F, "notify=READY=1", "waitfile=" .. go, case == "status" and "notify=STATUS=hello"
          or "notify=STOPPING=1", "pause" },
        watchdog = case == "bound" and 5 or nil, kill_grace = 0.2, log = w.log,
      })
      w.others()
      S.touch(go)
      lu.assertTrue(await(function() return w.waited ~= nil end, 10), case)
      if case == "status" then
        lu.assertEquals(app:terminate(), { signal = 15 }, case)
      else
        lu.assertEquals(app:wait(5).signal, 9, case)
      end
      w.finish()
    end)
    w.check()
    S.assert_clean(before)
  end
end

-- The same for the lines the run's own rounds say of an app's end, seen
-- by its watch with no task waiting on it: its end's debug line, and
-- (kill_mode "group") the SIGTERM to what it left in its group. Both
-- were said there, where a log function that waits holds every task
-- (none ticked until the wait gave up). A notify app's are told as its
-- other lines are, on_exit after them; another app's ("plain") by a task
-- of its own, on_exit not held by it.
function T.test_a_log_function_that_waits_on_an_end_seen_in_the_background_holds_no_other_task()
  for _, case in ipairs { "ended", "swept", "plain" } do
    local before = S.snapshot()
    local go, child = S.tmpname("go"), S.tmpname("child")
    local exited, exited_after_line
    local w = waiting_log(case,
      case == "swept" and ": SIGTERM to the 1 process left in its group" or ": pid %d+ exited with code 0",
      case == "swept", function() return case ~= "plain" or exited ~= nil end)
    run(function()
      local argv = case == "swept" and { F, "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. child,
          "notify=READY=1", "waitfile=" .. go, "exit=0" }
        or case == "ended" and { F, "notify=READY=1", "waitfile=" .. go, "exit=0" }
        or { F, "waitfile=" .. go, "exit=0" }
      assert(start {
        argv = argv, kill_mode = case == "swept" and "group" or nil, ready = case == "plain" and "none" or nil,
        on_exit = function(_, how)
          exited, exited_after_line = how, w.waited ~= nil
        end,
        log = w.log,
      })
      w.others()
      S.touch(go)
      lu.assertTrue(await(function() return w.waited ~= nil and exited ~= nil end, 10), case)
      w.finish()
    end)
    w.check()
    lu.assertEquals(exited and exited.code, 0, case)
    -- (a notify app's on_exit comes after its lines; another's does not
    -- wait for a line that waits)
    lu.assertEquals(exited_after_line, case ~= "plain", case)
    if case == "swept" then lu.assertTrue(S.await_gone(S.pid_in(child)), "what it left in its group") end
    S.assert_clean(before)
  end
end

-- A log function that raises (a ^C) at that last count, as the app's end
-- is told: the end is seen to all the same (on_exit told, what the app
-- left in its group sent its SIGTERM, its process closed), and the error
-- goes on (the end was left half done: the group ran on, on_exit never
-- came, the process held till a collection).
function T.test_a_log_function_that_raises_at_the_last_count_leaves_the_end_whole()
  local before = S.snapshot()
  local child = S.tmpname("child")
  local raised, exited = false, nil
  local ok, err = pcall(run, function()
    local app = assert(start {
      argv = { F, "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. child, "notify=READY=1",
        "repeat=5:0:STATUS=x", "sleep=0.05", "exit=3" }, kill_mode = "group",
      on_exit = function(_, how) exited = how end,
      log = function(_, message)
        if not raised and message:find("not logged", 1, true) then
          raised = true
          error("interrupted!", 0)
        end
      end,
    })
    app:wait()
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "interrupted!")
  lu.assertTrue(raised)
  lu.assertEquals(exited, { code = 3, left = 1 })
  lu.assertTrue(S.await_gone(S.pid_in(child), 3), "what the app left in its group runs on")
  S.assert_clean(before)
end

-- The same at the debug line that says how the app ended, in a plain
-- script: through app:wait(), app:terminate() and a <close> end, on_exit
-- is told once, the last output line given to on_output and the pipes
-- closed, and then the error goes on (on_exit never came, and the pipes
-- were held till a collection, as that line came first).
function T.test_a_log_function_that_raises_at_the_end_line_leaves_the_end_whole()
  for _, how in ipairs { "wait", "terminate", "close" } do
    local before = S.snapshot()
    local exits, lines = {}, {}
    local opts = {
      argv = { F, "notify=READY=1", "sleep=0.1", "echo=last", how == "wait" and "exit=3" or "pause" },
      stdout = "capture",
      on_output = function(_, _, line) lines[#lines + 1] = line end,
      on_exit = function(_, h) exits[#exits + 1] = h end,
      log = function(_, message)
        if message:find("pid %d+ exited") or message:find("pid %d+ killed") then error("interrupted!", 0) end
      end,
    }
    local ok, err
    if how == "close" then
      ok, err = pcall(function()
        local app <close> = assert(start(opts))
        await(function() return app:tail(1)[1] ~= nil end, 5)
      end)
    else
      local app = assert(start(opts))
      if how == "terminate" then await(function() return app:tail(1)[1] ~= nil end, 5) end
      ok, err = pcall(app[how], app)
      lu.assertEquals(app.state, "exited", how)
    end
    lu.assertFalse(ok, how)
    lu.assertStrContains(tostring(err), "interrupted!", how)
    lu.assertEquals(exits, { how == "wait" and { code = 3 } or { signal = 15 } }, how)
    lu.assertEquals(lines, { "last" }, how)
    -- (what the raise left to the loop, its poller, the next call that
    -- waits closes)
    require("appstart").sleep(0)
    S.assert_clean(before)
  end
end

function T.test_on_status_that_waits_is_called_once_at_a_time_with_the_latest_status()
  local before = S.snapshot()
  local calls, running, most, last = 0, 0, 0, nil
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "sleep=0.05", "notifyflood=500:STATUS=busy", "notify=STATUS=done", "pause" },
      on_status = function(a, text)
        if a.state == "starting" then return end
        calls, running = calls + 1, running + 1
        most = math.max(most, running)
        require("appstart").sleep(0.3) -- statuses keep coming meanwhile
        last = text
        running = running - 1
      end,
    })
    lu.assertTrue(await(function() return last == "done" end, 5), "the latest status came last: " .. tostring(last))
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  -- not a task per datagram: one call at a time, the latest next
  lu.assertEquals(most, 1)
  lu.assertTrue(calls <= 4, "calls: " .. calls)
  S.assert_clean(before)
end

-- An on_status call still running (it waits until the main task has seen
-- the app's end) as the app sends more statuses and ends: the last
-- STATUS=, its next call, comes before on_exit (on_exit ran while the
-- call still waited, the last status after it).
function T.test_the_last_status_comes_before_on_exit_with_an_on_status_call_still_running()
  local before = S.snapshot()
  local go1, go2 = S.tmpname("go1"), S.tmpname("go2")
  local seen, ended = {}, false
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "waitfile=" .. go1, "notify=STATUS=first", "waitfile=" .. go2,
        "notify=STATUS=mid", "notify=STATUS=last", "exit=5" },
      on_status = function(_, text)
        seen[#seen + 1] = text
        if text == "first" then
          S.touch(go2)
          local saw = await(function() return ended end, 5)
          seen[#seen + 1] = saw and "saw the end" or "never saw the end"
        end
      end,
      on_exit = function(_, how) seen[#seen + 1] = "exit " .. tostring(how.code) end,
    })
    S.touch(go1)
    -- (the end seen here, by the task that waits, not by on_status)
    lu.assertEquals(app:wait(5), { code = 5 })
    ended = true
    lu.assertTrue(await(function() return #seen >= 4 end, 5), table.concat(seen, ", "))
  end)
  lu.assertEquals(seen, { "first", "saw the end", "last", "exit 5" })
  S.assert_clean(before)
end

-- An on_exit held behind an on_status call still running, when a task's
-- error ends the run (the call's task closed): it still runs, once (it
-- was lost).
function T.test_an_on_exit_held_behind_on_status_runs_when_the_run_fails()
  local before = S.snapshot()
  local seen = {}
  local ok, err = pcall(run, function()
    local appstart = require "appstart"
    assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "pause" },
      on_status = function(_, text)
        seen[#seen + 1] = "status " .. text
        appstart.sleep(30)
      end,
      on_exit = function(_, how) seen[#seen + 1] = "exit " .. tostring(how) end,
    })
    lu.assertTrue(await(function() return #seen == 1 end, 5))
    error("boom")
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom")
  lu.assertEquals(seen, { "status one", "exit killed by signal 15 (TERM)" })
  S.assert_clean(before)
end

function T.test_a_notify_app_dropped_inside_a_loop_is_reaped_and_its_socket_closed_when_it_ends()
  local before = S.snapshot()
  local dirs = notify_dirs()
  run(function()
    local pid = assert(start { argv = { F, "notify=READY=1", "pause" } }).pid
    -- nobody holds the app now; it dies
    assert(os.execute("kill -9 " .. pid))
    lu.assertTrue(await(function() return not S.read("/proc/" .. pid .. "/stat") end), "still a zombie")
  end)
  lu.assertEquals(notify_dirs(), dirs)
  S.assert_clean(before)
end

-- An app that outlives the appstart.run it was started in: nothing reads
-- its socket any more, which is closed then (as a plain script closes one
-- at ready). It stayed open, and the app's 11th sd_notify blocked for
-- good once the queue was full.
function T.test_an_app_that_outlives_its_run_is_not_held_up_by_its_notify_socket()
  local before = S.snapshot()
  local dirs = notify_dirs()
  local done = S.tmpname("done")
  local app
  run(function()
    app = assert(start { argv = { F, "notify=READY=1", "sleep=0.2", "notifyerrors=ignore",
      "repeat=30:0.001:STATUS=tick", "pidfile=" .. done, "pause" } })
  end)
  lu.assertEquals(notify_dirs(), dirs, "the socket's directory is gone with the run")
  lu.assertEquals(S.await_file(done, 5), tostring(app.pid) .. "\n", "every STATUS= was sent")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- The same for a start begun in the run and finished after it (h:wait()
-- in the plain script): its socket is closed, its watchdog off, as for
-- an app the run left. It kept both, and the watchdog, with nothing to
-- read the pings, killed the app.
function T.test_a_start_the_run_began_and_a_plain_script_finished_is_served_no_more()
  local before = S.snapshot()
  local dirs = notify_dirs()
  local go = S.tmpname("go")
  local h
  run(function()
    h = require("appstart").begin { argv = { F, "waitfile=" .. go, "notify=READY=1", "notifyerrors=ignore",
      "repeat=1000:0.01:WATCHDOG=1" }, watchdog = 0.2, kill_grace = 0.5, log = S.quiet }
  end)
  S.touch(go)
  local app = assert(h:wait())
  lu.assertEquals(notify_dirs(), dirs, "the socket's directory is kept")
  -- several watchdog periods with nothing reading the pings
  lu.assertNil(app:wait(0.8))
  lu.assertEquals(app.state, "ready")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- The same for a start begun in a coroutine of cqueues' or luv's, the
-- loop then left: the app's sd_notify was held on a full queue nothing
-- read, as it had been for appstart.run.
function T.test_a_start_cqueues_or_luv_began_and_a_plain_script_finished_is_served_no_more()
  local uv = require "luv"
  require "appstart.luv"
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local dirs = notify_dirs()
  for _, under in ipairs { "cqueues", "luv" } do
    local go, done = S.tmpname("go"), S.tmpname("done")
    local h
    local function begin()
      h = require("appstart").begin { argv = { F, "waitfile=" .. go, "notify=READY=1", "notifyerrors=ignore",
        "repeat=30:0.001:STATUS=tick", "pidfile=" .. done, "pause" }, log = S.quiet }
    end
    if under == "cqueues" then
      local cq = cqueues.new()
      cq:wrap(begin)
      assert(cq:loop())
    else
      coroutine.wrap(begin)()
      uv.run()
    end
    S.touch(go)
    local app = assert(h:wait())
    lu.assertEquals(notify_dirs(), dirs, under .. ": the socket's directory is gone")
    lu.assertEquals(S.await_file(done, 5), tostring(app.pid) .. "\n", under .. ": every STATUS= was sent")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end
  collectgarbage() -- (the controller closes its descriptors)
  S.assert_clean(before)
end

function T.test_terminate_returns_the_recorded_end_when_a_watch_saw_it_first()
  local before = S.snapshot()
  local seen
  -- (on_exit makes a watch, which a plain script runs in terminate's wait)
  local app = assert(start { argv = { F, "notify=READY=1", "pause" }, on_exit = function(_, how) seen = how end })
  local how = app:terminate()
  lu.assertEquals(how, { signal = 15 })
  lu.assertEquals(tostring(how), "killed by signal 15 (TERM)")
  lu.assertIs(how, app.how)
  lu.assertIs(seen, how)
  S.assert_clean(before)
end

local TM = {}

-- The log lines about MAINPID= claims.
local function mainpid_lines(entries)
  local lines = {}
  for _, e in ipairs(entries) do
    if e:find("MAINPID=") then lines[#lines + 1] = e end
  end
  return lines
end

function TM.tearDown() S.kill_strays() end

function TM.test_mainpid_moves_the_app_to_its_child()
  local before = S.snapshot()
  run(function()
    -- (the move once told to, after the start returned: made while the
    -- start still ran, app.pid was the child's when first looked at)
    local go = S.tmpname("go")
    local app = assert(start {
      argv = { F, "notify=READY=1", "fork", "pause", "|", "waitfile=" .. go, "mainpid=child", "sleep=0.2", "exit=0" },
    })
    local first = app.pid
    S.touch(go)
    lu.assertTrue(await(function() return app.pid ~= first end), "app.pid moved")
    local child = app.pid
    lu.assertEquals(S.read("/proc/" .. child .. "/stat"):match("%) %S+ (%d+)"), tostring(first))
    -- the old main exits 0 (reaped: the launcher has seen its end): the
    -- app is the child now, and still runs
    lu.assertTrue(await(function() return not S.read("/proc/" .. first .. "/stat") end, 5),
      "the old main was never reaped")
    lu.assertEquals(app.state, "ready")
    lu.assertTrue(S.alive(child))
    lu.assertEquals(app:terminate(), {}, "not the launcher's child: no status")
    lu.assertFalse(S.alive(child))
  end)
  S.assert_clean(before)
end

-- A log function that waits on the line of a move (MAINPID=), another
-- coroutine closing the app meanwhile (under cqueues): the move logged
-- first, then re-armed the app's watch on a process let go of ("attempt
-- to index a boolean value", out of cq:loop()). It moves first, and says
-- so last.
function TM.test_a_log_function_that_waits_on_a_moves_line_leaves_the_move_done()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local app, moved, closed, first, child = nil, false, false, nil, nil
  local function log(_, message)
    if not message:find("(MAINPID=)", 1, true) then return end
    moved = true
    local deadline = core.now() + 5
    while not closed and core.now() < deadline do cqueues.sleep(0.01) end
  end
  local cq = cqueues.new()
  local go = S.tmpname("go")
  cq:wrap(function()
    app = assert(start { argv = { F, "notify=READY=1", "fork", "pause", "|", "waitfile=" .. go, "mainpid=child",
      "pause" }, log = log })
    first = app.pid
    S.touch(go)
    local deadline = core.now() + 5
    while not moved and core.now() < deadline do cqueues.sleep(0.01) end
    child = app.pid
    app:close()
    closed = true
    os.execute("kill -9 " .. first .. " " .. child)
    -- (the old main, a child of ours, is reaped as it ends, in the loop)
    deadline = core.now() + 5
    while S.read("/proc/" .. first .. "/stat") and core.now() < deadline do cqueues.sleep(0.01) end
  end)
  local ok, err = cq:loop(10)
  cq = nil -- luacheck: ignore (its descriptors go with it)
  collectgarbage()
  lu.assertTrue(ok, tostring(err))
  lu.assertTrue(moved, "never moved")
  lu.assertNotEquals(child, first)
  lu.assertTrue(S.await_gone(child, 5))
  lu.assertNil(S.read("/proc/" .. first .. "/stat"), "the old main was never reaped")
  S.assert_clean(before)
end

-- Ten moves in a second (each main forks the next, says MAINPID=
-- and exits): the app follows each, and the moves are logged once a second
-- at most, with a count (a line each before). (In the app's group: a main
-- that has exited by the time its MAINPID= is read leaves its child
-- proven by the group alone.)
function TM.test_mainpid_moves_in_a_burst_are_followed_and_logged_once_a_second()
  local before = S.snapshot()
  local entries, log = S.recorder()
  local last = S.tmpname("last")
  local function chain(k)
    if k == 0 then return { "pidfile=" .. last, "pause" } end
    local t = { "fork", "sleep=0.1" }
    for _, a in ipairs(chain(k - 1)) do t[#t + 1] = a end
    for _, a in ipairs { "|", "mainpid=child", "exit=0" } do t[#t + 1] = a end
    return t
  end
  local argv = { F, "notify=READY=1", "sleep=0.2" }
  local links = chain(10)
  table.move(links, 1, #links, #argv + 1, argv)
  run(function()
    local app = assert(start { argv = argv, log = log, kill_mode = "group" })
    -- (the loop kept turning meanwhile: a MAINPID= read after the process
    -- it names has exited is refused)
    lu.assertTrue(await(function() return S.read(last) end, 5))
    local pid = S.pid_in(last)
    lu.assertTrue(await(function() return app.pid == pid end, 5), "the app followed its main to the last")
    app:terminate()
    lu.assertFalse(S.alive(pid))
  end)
  local moves = 0
  for _, e in ipairs(entries) do
    if e:find("(MAINPID=)", 1, true) then moves = moves + 1 end
  end
  lu.assertTrue(moves >= 1 and moves <= 3, moves .. " lines about the moves")
  S.assert_clean(before)
end

function TM.test_mainpid_of_an_unrelated_process_is_refused()
  local entries, log = S.recorder()
  run(function()
    -- a process started before the app (not the runner's parent: that is
    -- pid 1 for a runner left an orphan, refused for another reason)
    local sleeper = assert(start { argv = { F, "pause" }, ready = "none", log = S.quiet })
    local older = sleeper.pid
    -- (MAINPID=0 raised out of the loop, ending the run and every app)
    local app = assert(start { argv = { F, "notify=READY=1", "mainpid=0", "mainpid=1", "mainpid=" .. older, "pause" },
      log = log })
    local pid = app.pid
    -- (each refusal logged as its datagram is read: all three, however
    -- slow the launcher)
    lu.assertTrue(S.await_with_sleep(function() return #mainpid_lines(entries) >= 3 end, 10),
      table.concat(mainpid_lines(entries), "\n"))
    lu.assertEquals(app.pid, pid)
    lu.assertEquals(app:terminate(), { signal = 15 })
    lu.assertEquals(sleeper:terminate(), { signal = 15 })
  end)
  local why = mainpid_lines(entries)
  lu.assertEquals(#why, 3, table.concat(why, "\n"))
  -- (MAINPID=0 is malformed, as systemd's parse_pid has it)
  lu.assertStrContains(why[1], "ignored a malformed notify datagram: MAINPID= is not a pid")
  lu.assertStrContains(why[2], "not a pid an app may have")
  -- (started in an earlier clock tick than the app, or in the same)
  lu.assertTrue((why[3]:find("started before the app", 1, true) or why[3]:find("not descended from the app", 1, true))
    ~= nil, why[3])
end

-- A thread's id is no process, where the kernel has pidfds or not: the
-- app's own thread in its group, a thread of its child (without pidfds
-- both were taken, kill(tid, 0) answering for them: app.pid a thread's,
-- the real main's status lost).
function TM.test_mainpid_of_a_thread_is_refused_with_or_without_pidfds()
  local before = S.snapshot()
  for _, pidfd in ipairs { false, true } do
    for _, case in ipairs {
      { "its own", function(tid) return { F, "notify=READY=1", "thread=" .. tid, "waitfile=" .. tid,
        "mainpid=@" .. tid, "pause" } end },
      { "its child's", function(tid) return { F, "notify=READY=1", "fork", "thread=" .. tid, "pause", "|",
        "waitfile=" .. tid, "mainpid=@" .. tid, "pause" } end },
    } do
      local what = string.format("%s thread, pidfd %s", case[1], tostring(pidfd))
      local tid = S.tmpname("tid")
      local entries, log = S.recorder()
      S.testing.use_pidfd(pidfd)
      local ok, failure = pcall(run, function()
        local app = assert(start { argv = case[2](tid), kill_mode = "group", log = log })
        local pid = app.pid
        lu.assertTrue(await(function() return #mainpid_lines(entries) > 0 end), what .. ": the claim was looked at")
        lu.assertEquals(app.pid, pid, what)
        local how = app:terminate()
        lu.assertEquals({ code = how.code, signal = how.signal }, { signal = 15 }, what)
      end)
      S.testing.use_pidfd(true)
      if not ok then error(failure, 0) end
      local why = mainpid_lines(entries)
      lu.assertEquals(#why, 1, what .. ": " .. table.concat(why, "\n"))
      lu.assertStrContains(why[1], "ignored MAINPID=" .. S.pid_in(tid) .. ": a thread's id, not a process", what)
    end
  end
  S.assert_clean(before)
end

function TM.test_mainpid_of_a_child_that_has_exited_is_refused_and_the_main_stays_watched()
  local before = S.snapshot()
  local entries, log = S.recorder()
  run(function()
    -- the child exits at once and stays a zombie: were it believed, the app
    -- would end at once and its real main run on, out of reach
    local app = assert(start {
      argv = { F, "notify=READY=1", "fork", "exit=7", "|", "sleep=0.2", "mainpid=child", "pause" }, log = log,
    })
    local pid = app.pid
    lu.assertTrue(await(function() return #mainpid_lines(entries) > 0 end), "the claim was looked at")
    lu.assertEquals(app.pid, pid)
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  local why = mainpid_lines(entries)
  lu.assertEquals(#why, 1, table.concat(why, "\n"))
  lu.assertStrContains(why[1], "it has exited")
  S.assert_clean(before)
end

-- A MAINPID= the main sent just before it exited, read only once it had
-- (the launcher busy meanwhile, nothing read): the app follows it as when
-- it is read at once, and a last STATUS= counts too, whatever kill_mode.
-- With "group", both were dropped with the socket as the end was told:
-- the app "exited", the new main, in its group, swept with a SIGTERM.
-- With "cgroup" an app runs on past its main's end while its cgroup has
-- members; from then on the main's number is refused (whoever takes it
-- once the main is reaped is not the main), but what the main sent just
-- before it exited still counts: it is read as the launcher sees the end,
-- first.
local function main_sent_just_before_it_exited(kill_mode)
  local before = S.snapshot()
  run(function()
    -- (the main sends once told to, after the start has returned: sent
    -- while the start still ran, the start read it, the app moved before
    -- it was looked at)
    local child, go = S.tmpname("child"), S.tmpname("go")
    local app = assert(start { kill_mode = kill_mode, argv = { F, "notify=READY=1",
      "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. go,
      "notify=STATUS=handing over", "mainpid=child", "exit=0" } })
    local first, pid = app.pid, S.pid_in(child)
    lu.assertNotEquals(first, pid)
    S.touch(go)
    -- (busy, not yielding: the loop reads nothing until the main has gone;
    -- a bound for a loaded machine)
    local deadline = now() + 20
    while S.alive(first) and now() < deadline do core.wait_readable(-1, 0.005) end
    lu.assertFalse(S.alive(first), "the main exited")
    lu.assertNil(app:wait(0.3), "the app followed its MAINPID=")
    lu.assertEquals(app.pid, pid)
    lu.assertEquals(app.status, "handing over")
    lu.assertTrue(S.alive(pid))
    local how = app:terminate()
    lu.assertNotNil(how)
    lu.assertNil(how.code, "not the launcher's child: no status")
    lu.assertFalse(S.alive(pid))
  end)
  S.assert_clean(before)
end

function TM.test_what_the_main_sent_just_before_it_exited_counts()
  main_sent_just_before_it_exited("group")
end

function TM.test_what_a_cgroup_apps_main_sent_just_before_it_exited_counts()
  lu.skipIf(not S.cgroup_mount(), "needs cgroup v2")
  main_sent_just_before_it_exited("cgroup")
end

-- A start that finds its app ready and gone at once (the launcher busy
-- meanwhile) has what the app sent after READY=1 read all the same: it
-- closed that socket unread, and a last STATUS= was lost.
function TM.test_what_an_app_ready_and_gone_at_once_sent_after_ready_counts()
  local before = S.snapshot()
  local seen = {}
  run(function()
    local pidfile = S.tmpname("pid")
    local h = require("appstart").begin { argv = { F, "notify=READY=1", "notify=STATUS=last", "pidfile=" .. pidfile,
      "exit=0" }, ready_timeout = 3, on_status = function(_, text) seen[#seen + 1] = text end,
      on_exit = function(_, how) seen[#seen + 1] = "exit " .. tostring(how.code) end }
    -- (busy, not yielding, until the app is gone: so it is when the start looks)
    lu.assertTrue(S.await_gone(S.pid_in(pidfile)))
    local app = assert(h:wait())
    lu.assertEquals(app.state, "exited")
    lu.assertEquals(app.status, "last")
  end)
  lu.assertEquals(seen, { "last", "exit 0" })
  S.assert_clean(before)
end

-- What an app sends as a stop ends it counts: a last STATUS= still queued
-- when the stop sees the end is read before the socket is closed, and
-- told before on_exit (it was closed unread: a supervisor's "0 of 2
-- services ready" was lost so).
function TM.test_a_last_status_sent_as_a_stop_ends_the_app_counts()
  local before = S.snapshot()
  local seen = {}
  local how
  run(function()
    local appstart = require "appstart"
    local pidfile, go = S.tmpname("pid"), S.tmpname("go")
    local app = assert(start {
      argv = { F, "catch=TERM", "pidfile=" .. pidfile, "notify=READY=1", "waitsig=TERM", "waitfile=" .. go,
        "notify=STATUS=last", "exit=0" },
      on_status = function(_, text) seen[#seen + 1] = text end,
      on_exit = function(_, h) seen[#seen + 1] = "exit " .. tostring(h.code) end,
    })
    local pid = S.pid_in(pidfile)
    local stop = appstart.spawn(function() how = app:terminate(3) end)
    -- (the stop sends SIGTERM and waits for the end meanwhile)
    appstart.sleep(0.1)
    -- (busy, not yielding: the app sends its last status and is gone
    -- before the loop looks again; the cancel, which the stop ignores,
    -- has it look at the process first)
    S.touch(go)
    lu.assertTrue(S.await_gone(pid))
    stop:cancel()
  end)
  lu.assertEquals(how, { code = 0 })
  lu.assertEquals(seen, { "last", "exit 0" })
  S.assert_clean(before)
end

function TM.test_mainpid_from_another_process_than_the_main_is_refused()
  local entries, log = S.recorder()
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "fork", "mainpid=self", "pause", "|", "pause" },
      notify_access = "all", log = log,
    })
    local pid = app.pid
    -- (the child's MAINPID= read: the refusal is logged)
    lu.assertTrue(await(function()
      for _, e in ipairs(entries) do
        if e:find("only the app", 1, true) then return true end
      end
    end, 5), "the child's MAINPID= was never read")
    lu.assertEquals(app.pid, pid)
    app:terminate()
  end)
  local found = false
  for _, e in ipairs(entries) do found = found or e:find("only the app", 1, true) ~= nil end
  lu.assertTrue(found)
  S.kill_strays()
end

-------------------------------------------------------------------------------
-- the watchdog

local TW = {}

function TW.tearDown() S.kill_strays() end

function TW.test_the_app_gets_watchdog_usec_and_watchdog_pid()
  local env = S.tmpname("env")
  run(function()
    local app = assert(start {
      argv = { F, "env=" .. env, "notify=READY=1\\nWATCHDOG=1", "pause" }, watchdog = 2.5,
      env = { WATCHDOG_USEC = "1", PATH = os.getenv("PATH") },
    })
    local vars = {}
    for _, l in ipairs(S.lines(S.await_file(env))) do
      local k, v = l:match("^([^=]+)=(.*)$")
      if k then vars[k] = v end
    end
    lu.assertEquals(vars.WATCHDOG_USEC, "2500000", "the launcher's, not the env given")
    lu.assertEquals(vars.WATCHDOG_PID, tostring(app.pid))
    app:terminate()
  end)
end

function TW.test_the_launchers_own_watchdog_variables_are_not_inherited()
  local env = S.tmpname("env")
  local out = S.run_child({ env = { WATCHDOG_USEC = "5000000", WATCHDOG_PID = "1" } },
    "life_start_under_the_launchers_own_watchdog_variables", env)
  lu.assertStrContains(out, "done")
  local text = S.read(env)
  lu.assertNotStrContains(text, "WATCHDOG_USEC")
  lu.assertNotStrContains(text, "WATCHDOG_PID")
end

function TW.test_pings_keep_the_app_alive_and_silence_kills_it()
  local before = S.snapshot()
  local how, alive_after_pings, t_silent
  run(function()
    -- pings every 0.1 s for ~0.6 s, then silence: the watchdog is 0.3 s
    local app = assert(start {
      argv = { F, "notify=READY=1", "repeat=6:0.1:WATCHDOG=1", "pause" }, watchdog = 0.3,
    })
    require("appstart").sleep(0.45)
    alive_after_pings = app.state == "ready"
    t_silent = now()
    how = app:wait(5)
    t_silent = now() - t_silent
  end)
  lu.assertTrue(alive_after_pings, "pings within the watchdog keep it alive")
  lu.assertEquals(how.signal, 6, "SIGABRT")
  lu.assertTrue(how.watchdog)
  lu.assertTrue(t_silent < 2, "killed soon after the pings stopped: " .. t_silent)
  S.assert_clean(before)
end

-- Its watchdog fired, the app is judged hung however it ends then (as
-- systemd counts it): how.watchdog also for one that handles SIGABRT and
-- exits with a code of its own, and for one whose exit status cannot be
-- known (its main moved by MAINPID= to a process not the launcher's
-- child; a change that counted only signals 6 and 9 lost both).
function TW.test_an_app_whose_watchdog_fired_ended_by_the_watchdog_however_it_ended()
  local before = S.snapshot()
  local caught, moved
  run(function()
    local app = assert(start { argv = { F, "catch=ABRT", "notify=READY=1", "waitsig=ABRT", "exit=0" },
      watchdog = 0.3, kill_grace = 2 })
    caught = app:wait(5)
    app = assert(start { argv = { F, "notify=READY=1", "fork", "sleep=0.1", "pause", "|", "mainpid=child",
      "sleep=0.05", "exit=0" }, watchdog = 0.5, kill_grace = 0.3 })
    moved = app:wait(5)
  end)
  lu.assertEquals({ caught.code, caught.watchdog }, { 0, true }, tostring(caught))
  lu.assertEquals({ moved.code, moved.signal, moved.watchdog }, { nil, nil, true }, tostring(moved))
  S.assert_clean(before)
end

-- A stop under way is no hang: once the app says STOPPING=1, or the
-- launcher terminates it, the watchdog is over (as systemd's is once a
-- unit stops), and a shutdown that sends no ping ends as it ends, bounded
-- by kill_grace (it was killed by SIGABRT, how.watchdog = true, mid-way
-- through a clean shutdown).
function TW.test_a_stop_under_way_ends_the_watchdog()
  local before = S.snapshot()
  local trap = S.tmpname("trap")
  local said, terminated
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "sleep=0.6", "exit=0" },
      watchdog = 0.2, kill_grace = 2 })
    said = app:wait(5)
    app = assert(start { argv = { F, "trap=TERM:" .. trap, "notify=READY=1", "repeat=4:0.05:WATCHDOG=1",
      "waitfile=" .. trap, "sleep=0.6", "exit=0" }, watchdog = 0.3, kill_grace = 5 })
    terminated = app:terminate()
  end)
  lu.assertEquals({ said.code, said.signal, said.watchdog }, { 0, nil, nil }, "after STOPPING=1")
  lu.assertEquals({ terminated.code, terminated.signal, terminated.watchdog }, { 0, nil, nil }, "terminated")
  S.assert_clean(before)
end

-- An app:terminate() that cannot begin (its SIGTERM refused: an app
-- become root, for a launcher run as nobody) leaves the app as it was,
-- watched: its watchdog goes on (it was turned off for good, an app that
-- then hung never judged so).
function TW.test_a_terminate_that_cannot_signal_leaves_the_watchdog_on()
  lu.skipIf(not S.is_root(), "needs root to install a setuid copy")
  local out = S.run_as_nobody_with_a_root_process("life_a_failed_terminate_leaves_the_watchdog_on", "pid", 30)
  lu.assertStrContains(out, "terminate\tnil\tOperation not permitted\tready\n")
  -- (the pings end about 0.6 s after ready; the watchdog's 0.3 s after)
  local took = tonumber(out:match("\nwatchdog\t(%d+%.%d+)\n"))
  lu.assertNotNil(took, out)
  lu.assertTrue(took >= 0.5 and took < 2.5, out)
  lu.assertStrContains(out, "warn: fixture: watchdog: no WATCHDOG=1 within 0.3 s: SIGABRT, then SIGKILL after 0.2 s")
end

-- ... but bounded it is: an app that said STOPPING=1 and hangs on its way
-- out is killed once kill_grace is over (SIGKILL, how.watchdog), not at
-- the watchdog's period (it ran on for good: nothing bounded it), while
-- one that ends within kill_grace ends as it ends. Without a watchdog
-- nothing judges an app hung: it shuts down as long as it takes.
function TW.test_a_shutdown_that_hangs_after_stopping_is_killed_after_kill_grace()
  local before = S.snapshot()
  local hung, took, slow, unwatched
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "pause" },
      watchdog = 0.1, kill_grace = 0.6 })
    local t0 = now()
    hung = app:wait(10)
    took = now() - t0
    if not hung then app:terminate(0) end
    app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "sleep=0.3", "exit=0" },
      watchdog = 0.1, kill_grace = 2 })
    slow = app:wait(10)
    app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "sleep=0.6", "exit=0" },
      kill_grace = 0.1 })
    unwatched = app:wait(10)
  end)
  lu.assertNotNil(hung, "still running 10 s after STOPPING=1")
  lu.assertEquals({ hung.code, hung.signal, hung.watchdog }, { nil, 9, true }, "hung after STOPPING=1")
  lu.assertTrue(took >= 0.55, "killed " .. took .. " s after ready: before its kill_grace was over")
  lu.assertEquals({ slow.code, slow.signal, slow.watchdog }, { 0, nil, nil }, "ended within kill_grace")
  lu.assertEquals({ unwatched.code, unwatched.signal, unwatched.watchdog }, { 0, nil, nil }, "no watchdog")
  S.assert_clean(before)
end

-- An EXTEND_TIMEOUT_USEC= with or after STOPPING=1 moves that bound to
-- as long from when it is read, when that is later, as systemd moves its
-- stop timeout: an app that ends on its own past kill_grace but within the
-- extension ends by its own exit (it was killed kill_grace after its
-- STOPPING=1); a shorter one shortens nothing; one more, sent before the
-- last runs out, moves it again.
function TW.test_an_extend_after_stopping_moves_the_shutdowns_bound()
  local before = S.snapshot()
  local extended, shorter, again
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1\nEXTEND_TIMEOUT_USEC=20000000",
      "sleep=0.6", "exit=3" }, watchdog = 5, kill_grace = 0.1 })
    extended = app:wait(10)
    app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "notify=EXTEND_TIMEOUT_USEC=20000000",
      "notify=EXTEND_TIMEOUT_USEC=1", "sleep=0.6", "exit=3" }, watchdog = 5, kill_grace = 0.1 })
    shorter = app:wait(10)
    app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1\nEXTEND_TIMEOUT_USEC=1000000",
      "sleep=0.5", "notify=EXTEND_TIMEOUT_USEC=20000000", "sleep=1", "exit=3" }, watchdog = 5, kill_grace = 0.1 })
    again = app:wait(10)
  end)
  lu.assertEquals({ extended.code, extended.signal, extended.watchdog }, { 3, nil, nil }, tostring(extended))
  lu.assertEquals({ shorter.code, shorter.signal, shorter.watchdog }, { 3, nil, nil }, tostring(shorter))
  lu.assertEquals({ again.code, again.signal, again.watchdog }, { 3, nil, nil }, tostring(again))
  S.assert_clean(before)
end

-- ... and an app still running when the extension runs out, with no
-- further one, is killed then (SIGKILL, how.watchdog), its line saying
-- how long it had.
function TW.test_an_app_still_running_when_its_stop_extension_runs_out_is_killed()
  local before = S.snapshot()
  local logged, log = S.recorder()
  local hung, took
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1\nEXTEND_TIMEOUT_USEC=600000",
      "pause" }, watchdog = 5, kill_grace = 0.1, log = log })
    local t0 = now()
    hung = app:wait(10)
    took = now() - t0
    if not hung then app:terminate(0) end
  end)
  lu.assertNotNil(hung, "still running 10 s after STOPPING=1")
  lu.assertEquals({ hung.code, hung.signal, hung.watchdog }, { nil, 9, true }, tostring(hung))
  lu.assertTrue(took >= 0.55, "killed " .. took .. " s after ready: before its extension ran out")
  local text = table.concat(logged, "\n")
  lu.assertNotNil(text:find("warn: fixture: watchdog: still running 0%.%d+ s after STOPPING=1 %(kill_grace 0%.1 s,"
    .. " which its EXTEND_TIMEOUT_USEC= extended%): SIGKILL"), text)
  S.assert_clean(before)
end

-- A stop of the launcher's that comes after the app said STOPPING=1 (a
-- supervisor's sv:stop here, whose TERM the app ignores) takes over from
-- that bound, with its own grace: its SIGKILL ends the app, no watchdog's
-- (the bound came first, how.watchdog = true, on an app the supervisor
-- was stopping).
function TW.test_a_stop_after_stopping_takes_over_from_its_bound()
  local before = S.snapshot()
  local appstart = require "appstart"
  local last, state
  run(function()
    local sv = appstart.supervisor { log = S.quiet, services = { s = { argv = { F, "ignore=TERM", "notify=READY=1",
      "notify=STOPPING=1", "pause" }, watchdog = 5, kill_grace = 0.6, restart = "no" } } }
    assert(sv:up())
    lu.assertTrue(S.await_with_sleep(function() return sv:status("s").state == "stopping" end))
    appstart.sleep(0.3)
    sv:stop("s")
    sv:wait()
    last, state = sv:status("s").last, sv:status("s").state
  end)
  lu.assertEquals(state, "stopped")
  lu.assertEquals({ last.code, last.signal, last.watchdog }, { nil, 9, nil })
  S.assert_clean(before)
end

-- A WATCHDOG_USEC= the watchdog's timer reads (a loop that runs its
-- timers before it polls, luv's and cqueues', the launcher busy past the
-- due time) sets the watchdog anew: a 0 turns it off, and the app lives
-- (the timer went on with the old due time: a raise in the loop, which
-- ended the launcher, the app left unwatched); a new period replaces the
-- timer, which a 0 later turns off too (a second timer was left behind,
-- and fired).
function TW.test_a_watchdog_usec_read_late_after_a_busy_spell_sets_the_watchdog_anew()
  for _, context in ipairs { "luv", "cqueues" } do
    for _, case in ipairs { "off", "changed" } do
      local what = context .. ", " .. case
      local mark = S.tmpname("mark")
      local out, ok = S.run_child({ timeout = 30 }, "life_a_late_watchdog_usec_after_a_busy_spell", context, case,
        mark)
      local pid = S.pid_in(mark)
      if pid and S.alive(pid) then os.execute("kill -KILL " .. pid) end
      lu.assertTrue(ok, what .. ": " .. out)
      lu.assertEquals(out, "how\t0\tnil\tnil\nchildren: \n", what)
    end
  end
end

-- A ping sent in time behind more datagrams than two steps read (the
-- launcher busy past the watchdog's due time; systemd's queue length,
-- 512, in a network namespace of the child's own): read before the
-- watchdog acts, it keeps the app alive (it was killed by SIGABRT).
function TW.test_a_ping_behind_a_flood_is_read_before_the_watchdog_acts()
  lu.skipIf(not S.can_unshare_net(), "needs unshare(1) and a network namespace of its own (root)")
  local out = S.run_child({ dgram_qlen = 512, timeout = 30 }, "life_a_ping_behind_a_flood")
  lu.assertStrContains(out, "after the busy spell\tready\tnil\n")
  lu.assertStrContains(out, "ended\t15\tnil\n")
end

function TW.test_an_app_that_ignores_sigabrt_gets_sigkill_after_kill_grace()
  local before = S.snapshot()
  local how
  run(function()
    local app = assert(start {
      argv = { F, "ignore=ABRT", "notify=READY=1", "pause" }, watchdog = 0.1, kill_grace = 0.2,
    })
    how = app:wait(5)
  end)
  lu.assertEquals(how.signal, 9)
  lu.assertTrue(how.watchdog)
  lu.assertEquals(tostring(how), "killed by signal 9 (KILL), by the watchdog")
  S.assert_clean(before)
end

-- A log function that waits on the watchdog's line, the app ending
-- meanwhile (it ignores SIGABRT), or that raises there: the watchdog
-- logged before it acted, and then signalled a process let go of ("attempt
-- to index a boolean value", an error that ended the run), or, the log
-- having raised, sent no SIGABRT and set no SIGKILL. It acts first, and
-- says so last.
function TW.test_a_log_function_that_waits_or_raises_on_the_watchdogs_line_leaves_nothing_undone()
  for _, raises in ipairs { false, true } do
    local before = S.snapshot()
    local go, trapped, app = S.tmpname("go"), S.tmpname("trapped"), nil
    local how, ok, err
    local function log(_, message)
      if not message:find("watchdog: no WATCHDOG=1", 1, true) then return end
      if raises then error("the log's own error", 0) end
      S.touch(go)
      await(function() return app.state == "exited" end, 5)
    end
    -- (raising: a hung app, which notes the SIGABRT, and ignores the
    -- SIGTERM the failed run's end sends right after, which would cut its
    -- note short: SIGKILL kill_grace later; waiting: one that ends when the
    -- log says the watchdog has fired)
    local argv = raises and { F, "ignore=TERM", "trap=ABRT:" .. trapped, "notify=READY=1", "pause" }
      or { F, "ignore=ABRT", "notify=READY=1", "waitfile=" .. go, "exit=0" }
    ok, err = pcall(run, function()
      app = assert(start { argv = argv, watchdog = 0.2, kill_grace = raises and 2 or 0.3, log = log })
      require("appstart").spawn(function() how = app:wait(10) end)
    end)
    if raises then
      -- (the run ended with the log's error, and ended the app)
      lu.assertFalse(ok)
      lu.assertStrContains(tostring(err), "the log's own error")
      lu.assertEquals(S.await_file(trapped, 5), "6\n", "no SIGABRT was sent")
      lu.assertNotNil(app:wait(10))
    else
      lu.assertTrue(ok, tostring(err))
      lu.assertEquals(how.code, 0, tostring(how))
      lu.assertTrue(how.watchdog, tostring(how))
    end
    S.assert_clean(before)
  end
end

-- The same on the line of a shutdown's bound (STOPPING=1, the app still
-- running kill_grace later): SIGKILL first, then the line.
function TW.test_a_log_function_that_waits_on_the_shutdowns_bound_line_leaves_nothing_undone()
  local before = S.snapshot()
  local go, app, how = S.tmpname("go"), nil, nil
  local function log(_, message)
    if not message:find("after STOPPING=1: SIGKILL", 1, true) then return end
    S.touch(go)
    await(function() return app.state == "exited" end, 5)
  end
  local ok, err = pcall(run, function()
    app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "waitfile=" .. go, "exit=0" },
      watchdog = 5, kill_grace = 0.2, log = log })
    how = app:wait(10)
  end)
  lu.assertTrue(ok, tostring(err))
  lu.assertEquals(how.signal, 9, tostring(how))
  lu.assertTrue(how.watchdog, tostring(how))
  S.assert_clean(before)
end

function TW.test_watchdog_trigger_kills_at_once()
  local before = S.snapshot()
  local how, took
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "sleep=0.05", "notify=WATCHDOG=trigger", "pause" },
      watchdog = 30 })
    local t0 = now()
    how = app:wait(5)
    took = now() - t0
  end)
  lu.assertEquals(how.signal, 6)
  lu.assertTrue(how.watchdog)
  lu.assertTrue(took < 1, took)
  S.assert_clean(before)
end

-- sd_notify(3): WatchdogSec= need not be set for WATCHDOG=trigger to act;
-- nor does `watchdog` here, nor after WATCHDOG_USEC=0 turned it off
function TW.test_watchdog_trigger_kills_without_a_watchdog_set()
  local before = S.snapshot()
  local hows = {}
  run(function()
    local apps = {
      assert(start { argv = { F, "notify=READY=1", "sleep=0.05", "notify=WATCHDOG=trigger", "pause" } }),
      assert(start { argv = { F, "notify=READY=1", "notify=WATCHDOG_USEC=0", "sleep=0.05", "notify=WATCHDOG=trigger",
        "pause" }, watchdog = 30 }),
    }
    for i, app in ipairs(apps) do hows[i] = app:wait(5) end
  end)
  for i = 1, 2 do
    lu.assertNotNil(hows[i], "app " .. i .. " was not ended")
    lu.assertEquals(hows[i].signal, 6, i)
    lu.assertTrue(hows[i].watchdog, i)
  end
  S.assert_clean(before)
end

function TW.test_watchdog_usec_from_the_app_changes_the_timeout()
  local how, took
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1\\nWATCHDOG_USEC=100000", "pause" }, watchdog = 30 })
    local t0 = now()
    how = app:wait(5)
    took = now() - t0
  end)
  lu.assertTrue(how.watchdog)
  lu.assertTrue(took < 1.5, took)
end

-- after ready too: a shorter period counts from when it is said, not from
-- the old one's due time
function TW.test_a_shorter_watchdog_usec_after_ready_takes_effect_at_once()
  local how, took
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "sleep=0.2", "notify=WATCHDOG_USEC=100000", "pause" },
      watchdog = 30 })
    local t0 = now()
    how = app:wait(5)
    took = now() - t0
    if not how then app:kill("KILL") end
  end)
  lu.assertNotNil(how, "not killed within 5 s (the old period is 30 s)")
  lu.assertTrue(how.watchdog)
  lu.assertTrue(took < 1.5, took)
end

-- WATCHDOG_USEC=0 turns the watchdog off, as with systemd (it was a
-- protocol error before ready), before ready and after
function TW.test_watchdog_usec_0_turns_the_watchdog_off()
  local hows = {}
  run(function()
    for i, argv in ipairs {
      { F, "notify=WATCHDOG_USEC=0", "notify=READY=1", "pause" },
      { F, "notify=READY=1", "notify=WATCHDOG_USEC=0", "pause" },
    } do
      local app = assert(start { argv = argv, watchdog = 0.2 })
      hows[i] = { app:wait(1) }
      app:terminate(1)
    end
  end)
  lu.assertEquals(hows, { { nil, "timeout" }, { nil, "timeout" } })
end

-- ... and a WATCHDOG_USEC=N after it turns it on again, as with systemd
-- (it was off for good)
function TW.test_watchdog_usec_after_a_0_turns_the_watchdog_on_again()
  local hows = {}
  run(function()
    for i, argv in ipairs {
      { F, "notify=WATCHDOG_USEC=0", "notify=READY=1", "sleep=0.1", "notify=WATCHDOG_USEC=200000", "pause" },
      { F, "notify=READY=1", "notify=WATCHDOG_USEC=0", "sleep=0.1", "notify=WATCHDOG_USEC=200000", "pause" },
    } do
      local app = assert(start { argv = argv, watchdog = 30, kill_grace = 0.5 })
      hows[i] = app:wait(5) or "not killed"
      app:terminate(1)
    end
  end)
  for i = 1, 2 do
    lu.assertEquals(hows[i].signal, 6, tostring(hows[i]))
    lu.assertTrue(hows[i].watchdog)
  end
end

function TW.test_a_clean_exit_is_no_watchdog_kill()
  local how
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "exit=0" }, watchdog = 0.2 })
    how = app:wait(5)
  end)
  lu.assertEquals(how, { code = 0 })
  lu.assertNil(how.watchdog)
end

-- A WATCHDOG=trigger the app sent as its last word, just before it exited
-- by itself, found with its end: over with the app, which the watchdog
-- did not kill (it ended {code = 0, watchdog = true}, and the watchdog's
-- SIGABRT went to a process that had ended).
function TW.test_a_trigger_read_with_the_apps_own_end_is_no_watchdog_kill()
  local before = S.snapshot()
  local how, lines, rec = nil, S.recorder()
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=WATCHDOG=trigger", "exit=0" }, log = rec })
    -- (nothing read meanwhile: the app has sent its trigger and exited
    -- before the launcher looks)
    while S.alive(app.pid) do end
    how = app:wait(5)
  end)
  lu.assertEquals(how, { code = 0 })
  lu.assertNil(how.watchdog)
  for _, line in ipairs(lines) do lu.assertNil(line:find("watchdog", 1, true), line) end
  S.assert_clean(before)
end

function TW.test_watchdog_outside_a_loop_or_without_notify_raises()
  local appstart = require "appstart"
  local before = S.snapshot()
  local ok, err = pcall(function()
    local app = appstart.start { argv = { F, "pause" }, watchdog = 1 } -- not a tail call: the line is this one
    return app
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "life_spec.lua:")
  lu.assertStrContains(err, "field 'watchdog': needs a loop")
  run(function()
    local ok2, err2 = pcall(appstart.start, { argv = { F, "pause" }, watchdog = 1, ready = "none" })
    lu.assertFalse(ok2)
    lu.assertStrContains(err2, "field 'watchdog': has no effect without ready = 'notify'")
    local ok3, err3 = pcall(appstart.start, { argv = { F, "pause" }, watchdog = 0 })
    lu.assertFalse(ok3)
    lu.assertStrContains(err3, "must be a number of seconds > 0")
  end)
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- app:reload()

local TR = {}

function TR.tearDown() S.kill_strays() end

function TR.test_reload_waits_for_reloading_then_ready()
  local before = S.snapshot()
  run(function()
    local app = assert(start {
      argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1", "sleep=0.2", "notify=READY=1",
        "pause" },
    })
    local t0 = now()
    lu.assertEquals(app:reload(), true)
    lu.assertTrue(now() - t0 >= 0.15, "returned once READY=1 came: " .. (now() - t0))
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  S.assert_clean(before)
end

-- A reload asked for while the app reloads of its own accord (it said
-- RELOADING=1) waits for that reload's READY=1, then sends the signal and
-- waits for the reload it asked for, as systemd runs a reload job once the
-- unit is back: the signal came at once, the app folded it into the
-- reload it was making, no RELOADING=1 of its own came, and the reload
-- timed out.
function TR.test_a_reload_while_the_app_reloads_of_itself_waits_for_that_one_first()
  local before = S.snapshot()
  local result, states = nil, {}
  run(function()
    local app = assert(start {
      argv = { F, "catch=HUP", "notify=READY=1", "notify=RELOADING=1", "sleep=0.3",
        -- (what came meanwhile is folded into this reload: forgotten)
        "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1", "notify=READY=1", "pause" },
      ready_timeout = 2,
    })
    lu.assertTrue(await(function() return app.state == "reloading" end))
    result = { app:reload() }
    states[1] = app.state
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  lu.assertEquals(result[1], true, tostring(result[2]))
  lu.assertEquals(states[1], "ready")
  S.assert_clean(before)
end

-- Two tasks reload at once: each returns true once the app has reloaded
-- after its signal (the second's record replaced the first's, which
-- timed out though the app reloaded).
function TR.test_two_reloads_at_once_both_return_once_the_app_has_reloaded()
  local before = S.snapshot()
  local results = {}
  run(function()
    local once = { "waitsig=HUP", "notify=RELOADING=1", "sleep=0.2", "notify=READY=1" }
    local argv = { F, "catch=HUP", "notify=READY=1" }
    for _ = 1, 2 do table.move(once, 1, #once, #argv + 1, argv) end
    argv[#argv + 1] = "pause"
    local app = assert(start { argv = argv, ready_timeout = 3 })
    local appstart = require "appstart"
    for i = 1, 2 do
      appstart.spawn(function() results[i] = { app:reload() } end)
      appstart.sleep(0.05)
    end
    lu.assertTrue(await(function() return results[1] and results[2] end, 5))
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  lu.assertEquals(results[1][1], true, tostring(results[1][2]))
  lu.assertEquals(results[2][1], true, tostring(results[2][2]))
  S.assert_clean(before)
end

-- STOPPING=1 is for good, as with systemd: a later RELOADING=1 and
-- READY=1 do not make the app "ready" again, and a reload whose READY=1
-- comes with a STOPPING=1 is not done: it says the app is stopping as
-- soon as that is read (it waited out ready_timeout, then said
-- "timeout").
function TR.test_stopping_is_for_good()
  local before = S.snapshot()
  local states, ok, err, took = {}, nil, nil, nil
  run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "notify=STOPPING=1", "sleep=0.1", "notify=RELOADING=1",
      "notify=READY=1", "notify=STATUS=after", "pause" } })
    lu.assertTrue(await(function() return app.status == "after" end))
    states[1] = app.state
    app:terminate()
    app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1",
      "notify=READY=1\nSTOPPING=1", "pause" }, ready_timeout = 5 })
    local t0 = now()
    ok, err = app:reload()
    took = now() - t0
    states[2] = app.state
    app:terminate()
  end)
  lu.assertEquals(states, { "stopping", "stopping" })
  lu.assertNil(ok)
  lu.assertEquals(err, "app is stopping (it said STOPPING=1)")
  lu.assertTrue(took < 2.5, "returned after " .. took .. " s")
  S.assert_clean(before)
end

-- A reload asked for while the app reloads of its own accord, which that
-- reload ends with a STOPPING=1: the app is stopping, said as soon as it
-- is read, no signal sent (the reload waited out ready_timeout, then said
-- "timeout").
function TR.test_a_reload_behind_one_of_the_apps_own_that_ends_stopping_says_so_at_once()
  local before = S.snapshot()
  local hups = S.tmpname("hups")
  local result, took
  run(function()
    local app = assert(start { argv = { F, "trap=HUP:" .. hups, "notify=READY=1", "notify=RELOADING=1", "sleep=0.3",
      "notify=STOPPING=1", "pause" }, ready_timeout = 5 })
    lu.assertTrue(await(function() return app.state == "reloading" end))
    local t0 = now()
    result = { app:reload() }
    took = now() - t0
    app:terminate()
  end)
  lu.assertEquals(result, { nil, "app is stopping (it said STOPPING=1)" })
  lu.assertTrue(took < 2.5, "returned after " .. took .. " s")
  lu.assertNil(S.read(hups), "the app got the reload signal")
  S.assert_clean(before)
end

-- A reload asked for after the launcher was busy (no yield) while the
-- app began a reload of its own: what the app said is read first, so
-- that reload is seen and waited out, and only then the signal sent
-- (the state was still "ready": the signal went into the app's own
-- reload, and its READY=1 was taken for this one's, which returned while
-- the app reloaded still).
function TR.test_a_reload_reads_what_the_app_said_while_the_launcher_was_busy()
  local before = S.snapshot()
  local seen, result, after
  run(function()
    local app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "sleep=0.1", "notify=RELOADING=1",
      "sleep=0.6", "notify=READY=1", "waitsig=HUP", "notify=STATUS=asked", "notify=RELOADING=1", "sleep=0.2",
      "notify=READY=1", "pause" }, ready_timeout = 5 })
    local t0 = now()
    while now() - t0 < 0.4 do end -- busy: nothing read meanwhile
    seen = app.state
    result = { app:reload() }
    after = { app.state, app.status }
    app:terminate()
  end)
  lu.assertEquals(seen, "ready", "nothing read while busy")
  lu.assertEquals(result, { true })
  lu.assertEquals(after, { "ready", "asked" }, "returned once the reload it asked for was done")
  S.assert_clean(before)
end

-- The same for a READY=1 sent in time behind more datagrams than a round
-- of the reload's reads (its on_status held the launcher past
-- ready_timeout; systemd's queue length, 512, in a network namespace of
-- the child's own): all that is queued is read before a timeout verdict
-- (the round after the call read a batch, and failed timeout, "no READY=1
-- came after its RELOADING=1").
function TR.test_a_reloads_ready_1_behind_a_flood_counts_after_a_busy_on_status()
  lu.skipIf(not S.can_unshare_net(), "needs unshare(1) and a network namespace of its own (root)")
  local out = S.run_child({ dgram_qlen = 512, timeout = 30 }, "notify_a_ready_behind_a_flood_past_a_busy_on_status",
    "reload", S.tmpname("sent"))
  lu.assertStrContains(out, "reload\ttrue\t\n")
  lu.assertNotNil(out:match("\nbusy\t%d"), out)
  lu.assertStrContains(out, "left\t\n")
end

-- An app that has said STOPPING=1 is not reloaded, as systemd refuses to
-- reload a unit that stops: no signal, and an answer at once (it was sent
-- the signal, and the reload waited out ready_timeout).
function TR.test_an_app_that_said_stopping_is_not_reloaded()
  local before = S.snapshot()
  local hups = S.tmpname("hups")
  local result, took
  run(function()
    local app = assert(start { argv = { F, "trap=HUP:" .. hups, "notify=READY=1", "notify=STOPPING=1", "pause" },
      ready_timeout = 3 })
    lu.assertTrue(await(function() return app.state == "stopping" end))
    local t0 = now()
    result = { app:reload() }
    took = now() - t0
    app:terminate()
  end)
  lu.assertEquals(result, { nil, "app is stopping (it said STOPPING=1)" })
  lu.assertTrue(took < 1, took .. " s")
  lu.assertNil(S.read(hups), "the app got the reload signal")
  S.assert_clean(before)
end

-- A reload asked for while app:terminate stops the app (in another
-- task, its grace running): refused, no signal sent (the app on its way
-- out was sent the reload signal, and the reload waited for its end).
function TR.test_an_app_being_terminated_is_not_reloaded()
  local before = S.snapshot()
  local hups, terms = S.tmpname("hups"), S.tmpname("terms")
  local result, how
  run(function()
    local appstart = require "appstart"
    local app = assert(start { argv = { F, "trap=HUP:" .. hups, "trap=TERM:" .. terms, "notify=READY=1", "pause" },
      ready_timeout = 3 })
    local task = appstart.spawn(function() how = app:terminate(1) end)
    lu.assertTrue(await(function() return S.read(terms) ~= nil end))
    result = { app:reload() }
    while not task.done do appstart.sleep(0.01) end
  end)
  lu.assertEquals(result, { nil, "app is stopping (app:terminate under way)" })
  lu.assertEquals(how, { signal = 9 })
  lu.assertNil(S.read(hups), "the app got the reload signal")
  S.assert_clean(before)
end

-- An app closed (by another task) while its reload waits: "closed", as
-- app:wait, kill and terminate say (it said its socket had failed).
function TR.test_a_reload_of_an_app_closed_meanwhile_says_closed()
  local before = S.snapshot()
  local result, pid
  run(function()
    local app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "pause" }, ready_timeout = 5 })
    pid = app.pid
    local appstart = require "appstart"
    appstart.spawn(function() result = { app:reload() } end)
    appstart.sleep(0.1)
    app:close()
    lu.assertTrue(await(function() return result ~= nil end, 2), "the reload still waits")
  end)
  lu.assertEquals(result, { nil, "closed" })
  os.execute("kill -9 " .. pid)
  S.await_gone(pid, 3)
  S.assert_clean(before)
end

-- The same while the reload waits for the app's own reload (it said
-- RELOADING=1) to end: closed by on_status, from the datagram that ends
-- it. The reload went on to signal the closed app ("attempt to index a
-- boolean value"), an error that ended the run.
function TR.test_a_reload_behind_the_apps_own_closed_meanwhile_says_closed()
  local before = S.snapshot()
  local result, pid
  run(function()
    local go = S.tmpname("go")
    local app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "notify=RELOADING=1", "waitfile=" .. go,
      "notify=STATUS=bye\\nREADY=1", "pause" }, ready_timeout = 5,
      on_status = function(a, text) if text == "bye" then a:close() end end })
    pid = app.pid
    local appstart = require "appstart"
    lu.assertTrue(await(function() return app.state == "reloading" end, 5))
    appstart.spawn(function() result = { pcall(app.reload, app) } end)
    S.touch(go)
    lu.assertTrue(await(function() return result ~= nil end, 5), "the reload still waits")
  end)
  lu.assertEquals(result, { true, nil, "closed" })
  os.execute("kill -9 " .. pid)
  S.await_gone(pid, 3)
  S.assert_clean(before)
end

function TR.test_reload_signal_is_configurable()
  -- by name, and by number (a float with an integer value too, as
  -- app:kill takes it: 12.0 was refused, "integer|string expected")
  for _, sig in ipairs { "USR2", 12, 12.0 } do
    run(function()
      local app = assert(start {
        argv = { F, "catch=USR2", "notify=READY=1", "waitsig=USR2", "notify=RELOADING=1\\nREADY=1", "pause" },
        reload_signal = sig,
      })
      lu.assertEquals(app:reload(), true)
      app:terminate()
    end)
  end
end

function TR.test_an_app_that_never_says_reloading_times_out()
  run(function()
    local app = assert(start { argv = { F, "ignore=HUP", "notify=READY=1", "pause" }, ready_timeout = 0.3 })
    local t0 = now()
    local ok, err = app:reload()
    lu.assertNil(ok)
    lu.assertEquals(err.code, "timeout")
    lu.assertStrContains(tostring(err), "no RELOADING=1 came")
    lu.assertTrue(now() - t0 < 1.5)
    lu.assertEquals(app.state, "ready", "a late reload is not a dead app")
    app:terminate()
  end)
end

-- A reload that EXTEND_TIMEOUT_USEC= extended and that times out all the
-- same says for how long it waited and why: "within 0.3 s" (the
-- ready_timeout) was not what happened.
function TR.test_a_reload_timeout_after_an_extend_names_the_time_it_got()
  local before = S.snapshot()
  run(function()
    local app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1",
      "notify=EXTEND_TIMEOUT_USEC=600000", "pause" }, ready_timeout = 0.3 })
    local t0 = now()
    local ok, err = app:reload()
    local took = now() - t0
    lu.assertNil(ok)
    lu.assertEquals(err.code, "timeout")
    local within = tonumber(tostring(err):match("^fixture: app not reloaded within (%d+%.%d+) s %(ready_timeout 0%.3 s, "
      .. "which its EXTEND_TIMEOUT_USEC= extended%): no READY=1 came after its RELOADING=1$"))
    lu.assertNotNil(within, tostring(err))
    lu.assertTrue(within >= 0.6 and within <= took + 0.01, within .. " s said, " .. took .. " s waited")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end)
  S.assert_clean(before)
end

function TR.test_an_app_that_dies_reloading_is_died()
  local before = S.snapshot()
  run(function()
    local app = assert(start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1",
      "exit=4" } })
    local t0 = now()
    local ok, err = app:reload()
    lu.assertNil(ok)
    lu.assertEquals(err.code, "died")
    lu.assertEquals(err.status, { code = 4 })
    lu.assertTrue(now() - t0 < 1, "at once, not at the timeout")
  end)
  S.assert_clean(before)
end

function TR.test_reload_of_an_app_without_the_socket_sends_the_signal()
  -- ready = "none", and a plain script: nothing can say when it is done
  local app = assert(start { argv = { F, "catch=HUP", "line=3:up", "waitsig=HUP", "exit=7" }, ready = "fd" })
  lu.assertEquals(app:reload(), true)
  lu.assertEquals(app:wait(3), { code = 7 })
  local ok, err = app:reload()
  lu.assertNil(ok)
  lu.assertEquals(err.code, "died")
end

function TR.test_an_unknown_reload_signal_raises()
  local ok, err = pcall(require("appstart").start, { argv = { F }, reload_signal = "NOPE" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'reload_signal': unknown signal 'NOPE'")
  ok, err = pcall(require("appstart").start, { argv = { F }, reload_signal = 10.5 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'reload_signal': unknown signal '10.5'")
  -- signal 0 is no signal: app:reload() would do nothing, silently
  local marker = S.tmpname("spawned")
  ok, err = pcall(require("appstart").start, { argv = { F, "pidfile=" .. marker }, reload_signal = 0 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'reload_signal': signal 0 sends nothing")
  lu.assertNil(S.read(marker), "nothing was spawned")
end

-------------------------------------------------------------------------------
-- under cqueues and luv

local TE = {}

function TE.tearDown() S.kill_strays() end

function TE.test_status_and_the_watchdog_under_cqueues()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local statuses, how = {}, nil
  cq:wrap(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "sleep=0.05", "notify=STATUS=one", "repeat=3:0.05:WATCHDOG=1", "pause" },
      watchdog = 0.3, on_status = function(_, text) statuses[#statuses + 1] = text end,
    })
    how = app:wait(5)
  end)
  assert(cq:loop(10))
  lu.assertEquals(statuses, { "one" })
  lu.assertEquals(how.signal, 6)
  lu.assertTrue(how.watchdog)
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- Under cqueues an on_status that raises (cq:loop() returns its error):
-- the app's later statuses and its on_exit still come (they never did:
-- the call, its coroutine dead of the error and closed by nobody, was
-- taken as running for good).
function TE.test_an_on_status_that_raises_under_cqueues_leaves_later_statuses_and_on_exit()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local go = S.tmpname("go")
  local cq = cqueues.new()
  local seen = {}
  cq:wrap(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "waitfile=" .. go, "notify=STATUS=two", "exit=3" },
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = "status " .. text
        if text == "one" then
          S.touch(go)
          error("boom in on_status")
        end
      end,
      on_exit = function(_, how) seen[#seen + 1] = "exit " .. tostring(how) end,
    })
    app:wait(5)
  end)
  local failures = 0
  for _ = 1, 5 do
    local ok, err = cq:loop(10)
    if ok then break end
    failures = failures + 1
    lu.assertStrContains(tostring(err), "boom in on_status")
  end
  lu.assertEquals(failures, 1)
  lu.assertEquals(seen, { "status one", "status two", "exit exited with code 3" })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- Under cqueues an on_status that raises after its app ended (an on_exit
-- held behind it): on_exit runs once cq:loop() is called again. It never
-- did: nothing looked at the dead call again, the app's end already seen.
-- And a status that came while a call ran that then raised is the next
-- call's, with no other status to come first (it waited for one).
function TE.test_an_on_status_that_raises_under_cqueues_holds_back_neither_on_exit_nor_the_latest_status()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local go, go2 = S.tmpname("go"), S.tmpname("go2")
  local cq = cqueues.new()
  local seen, how = {}, nil
  cq:wrap(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "waitfile=" .. go, "exit=3" },
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = "status " .. text
        S.touch(go)
        -- the app's end seen (on_exit held behind this call), then raised
        seen[#seen + 1] = "waited " .. tostring(a:wait(5))
        error("boom in on_status")
      end,
      on_exit = function(_, h) seen[#seen + 1] = "exit " .. tostring(h) end,
    })
    app:wait(5)
  end)
  local ok, err = cq:loop(10)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in on_status")
  lu.assertEquals(seen, { "status one", "waited exited with code 3" })
  lu.assertTrue(cq:loop(10))
  lu.assertEquals(seen, { "status one", "waited exited with code 3", "exit exited with code 3" })
  -- "two" comes while the call for "one" runs, which then raises
  seen = {}
  cq:wrap(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "waitfile=" .. go2, "notify=STATUS=two", "pause" },
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = "status " .. text
        if text == "one" then
          S.touch(go2)
          while a.status ~= "two" do cqueues.sleep(0.01) end
          error("boom in on_status")
        end
        a:terminate()
      end,
    })
    how = app:wait(5)
  end)
  ok, err = cq:loop(10)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in on_status")
  lu.assertTrue(cq:loop(10))
  lu.assertEquals(seen, { "status one", "status two" })
  lu.assertEquals(how and how.signal, 15)
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

-- An on_status that raises with a status come meanwhile: inside
-- appstart.run its error ends the run, and on_status is not called again
-- (it was, for that status, as the failed run closed the call: after the
-- run had ended the app, blocking the run's end for as long as it took);
-- under luv the call for that status comes after the error is reported
-- (it was reported first, from inside the failed call's close).
function TE.test_the_status_held_behind_an_on_status_that_raised_comes_after_its_error_or_not_at_all()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local function scenario(go, logs, seen, sleep)
    return {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "waitfile=" .. go, "notify=STATUS=two", "pause" },
      log = function(_, text) logs[#logs + 1] = text:match("on_status raised [^:]*:%d+: (boom %d)") end,
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = text
        if text == "one" then
          S.touch(go)
          while a.status ~= "two" do sleep(0.01) end
        end
        error("boom " .. #seen)
      end,
      on_exit = function() seen[#seen + 1] = "exit" end,
    }
  end
  local appstart = require "appstart"
  local logs, seen = {}, {}
  local ok, err = pcall(run, function()
    local app = assert(start(scenario(S.tmpname("go"), logs, seen, appstart.sleep)))
    app:wait(5)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom 1")
  lu.assertEquals(seen, { "one", "exit" })
  lu.assertEquals(logs, {})
  -- nor for a status read as the failed run ends the app (it ignores
  -- SIGTERM: its kill_grace, the notify socket read meanwhile)
  seen = {}
  ok, err = pcall(run, function()
    local app = assert(start {
      argv = { F, "ignore=TERM", "notify=READY=1", "notify=STATUS=one", "sleep=0.2", "notify=STATUS=two", "pause" },
      kill_grace = 1, log = function(_, text) logs[#logs + 1] = text:match("on_status raised [^:]*:%d+: boom %w+") end,
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = text
        error("boom " .. text)
      end,
      on_exit = function() seen[#seen + 1] = "exit" end,
    })
    app:wait(5)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom one")
  lu.assertEquals(seen, { "one", "exit" })
  lu.assertEquals(logs, {})
  logs, seen = {}, {}
  local pid
  coroutine.wrap(function()
    local app = assert(start(scenario(S.tmpname("go"), logs, seen, appstart.sleep)))
    pid = app.pid
    while #seen < 2 do appstart.sleep(0.01) end
    app:terminate()
  end)()
  uv.run()
  lu.assertNotNil(pid)
  lu.assertEquals(seen, { "one", "two", "exit" })
  lu.assertEquals(logs, { "boom 1", "boom 2" })
  S.assert_clean(before)
end

-- What an on_status raises inside appstart.run ends the run with the
-- traceback of the raise: the callback's frame in it (it was raised again
-- from inside appstart, the traceback starting there).
function TE.test_what_on_status_raises_keeps_its_traceback()
  local before = S.snapshot()
  local ok, err = pcall(run, function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "pause" },
      on_status = function(a)
        if a.state ~= "starting" then error("boom in on_status") end
      end,
    })
    app:wait(5)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "boom in on_status")
  lu.assertNotNil(tostring(err):find("\n[^\n]*life_spec%.lua:%d+: in [^\n]*on_status"), tostring(err))
  S.assert_clean(before)
end

function TE.test_reload_and_the_watchdog_under_luv()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local reloaded, how
  coroutine.wrap(function()
    local app = assert(start {
      argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1", "sleep=0.05", "notify=READY=1",
        "pause" },
      watchdog = 0.4,
    })
    reloaded = app:reload()
    how = app:wait(5)
  end)()
  uv.run()
  lu.assertTrue(reloaded)
  lu.assertTrue(how.watchdog)
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- The app's methods in odd orders: closed by someone else, called while
-- its start still holds it.

local TO = {}
function TO.tearDown() S.kill_strays() end

function TO.test_terminate_of_an_app_another_task_closes_during_the_grace_says_closed()
  local before = S.snapshot()
  local appstart = require "appstart"
  local pid, how, why, state
  run(function()
    local app = assert(start { argv = { F, "ignore=TERM", "line=3:up", "pause" }, ready = "fd", kill_grace = 2 })
    pid = app.pid
    appstart.spawn(function() appstart.sleep(0.05); app:close() end)
    how, why = app:terminate()
    state = app.state
  end)
  lu.assertNil(how, "the end of an app that runs on was reported")
  lu.assertEquals(why, "closed")
  lu.assertNotEquals(state, "exited")
  -- let go of, not ended: it ignores SIGTERM and got no SIGKILL
  lu.assertTrue(S.alive(pid))
  os.execute("kill -9 " .. pid)
  S.await_gone(pid, 3)
  S.assert_clean(before)
end

function TO.test_wait_kill_terminate_reload_raise_while_the_start_holds_the_app()
  local before = S.snapshot()
  for _, call in ipairs { "wait", "kill", "terminate", "reload" } do
    local ok, why
    local app = assert(start { argv = { F, "notify=STATUS=early", "sleep=0.05", "notify=READY=1", "pause" },
      on_status = function(a)
        if ok == nil then ok, why = pcall(a[call], a) end
      end })
    lu.assertFalse(ok, call .. " during the start did not raise")
    lu.assertStrContains(why, "app:" .. call .. ": the app is still starting")
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 }, call .. " during the start reached the app")
    app:close()
  end
  S.assert_clean(before)
end

-- A closed app's callbacks do not run: on_status was called again, for a
-- status that came while its call ran, after that call closed the app.
function TO.test_a_closed_app_gets_no_more_on_status()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local seen, pid, waited = {}, nil, nil
  run(function()
    local app = assert(start {
      argv = { F, "notify=READY=1", "notify=STATUS=one", "waitfile=" .. go, "notify=STATUS=two", "pause" },
      on_status = function(a, text)
        if a.state == "starting" then return end
        seen[#seen + 1] = text
        S.touch(go)
        while a.status ~= "two" do require("appstart").sleep(0.01) end
        pid = a.pid
        a:close()
      end,
    })
    waited = { app:wait(5) }
  end)
  lu.assertEquals(waited, { nil, "closed" })
  lu.assertEquals(seen, { "one" })
  lu.assertTrue(S.alive(pid))
  os.execute("kill -9 " .. pid)
  S.await_gone(pid, 3)
  S.assert_clean(before)
end

function TO.test_reload_of_a_closed_app_says_closed_not_died()
  local before = S.snapshot()
  local app = assert(start { argv = { F, "pause" }, ready = "none" })
  local pid = app.pid
  app:close()
  lu.assertEquals({ app:reload() }, { nil, "closed" })
  lu.assertTrue(S.alive(pid))
  os.execute("kill -9 " .. pid)
  S.await_gone(pid, 3)
  S.assert_clean(before)
end

return { TestLifeAfterReady = T, TestMainpidAfterReady = TM, TestWatchdog = TW, TestReload = TR,
  TestLifeUnderEventLoops = TE, TestAppInOddOrders = TO }
