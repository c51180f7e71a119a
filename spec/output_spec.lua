--- The app's output read by the launcher: stdout/stderr = "capture",
-- "syslog", {file = PATH, max_bytes = N, keep = K}; stderr = "stdout";
-- on_output, app:tail, output_keep, err.output; memory bounded whatever the
-- app writes; under appstart.run, cqueues, luv and in a plain script.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F = S.fixture
local now = S.core.now

-- a pause that is no appstart call: nothing of appstart's runs meanwhile
local function pause(seconds) S.core.wait_readable(-1, seconds) end

-- Under ASan (its quarantine holds freed memory) or valgrind, RSS says
-- nothing about appstart and everything runs 20 to 50 times slower: there
-- the floods are a tenth as large, and only what they deliver is checked.
local INSTRUMENTED = os.getenv("APPSTART_SAN_PRELOAD") or os.getenv("APPSTART_VFORK_IS_FORK")
local SCALE = INSTRUMENTED and 10 or 1
-- lines an app writes as fast as it can under cqueues and luv
local FLOOD = 100000 // SCALE

-- the flood's memory and lateness bounds, where they mean something
-- The ticker's worst (see ticker) under a quarter of a second, where the
-- suite runs uninstrumented.
local function assert_ticked(worst)
  if INSTRUMENTED then return end
  lu.assertTrue(worst < 0.25, "the loop worked " .. worst .. " s of CPU between two ticks")
end

local function assert_bounded(worst, rss, hwm)
  if INSTRUMENTED then return end
  assert_ticked(worst)
  lu.assertTrue(hwm < 8192, string.format("peak RSS grew by %d KiB (RSS %+d KiB)", hwm, rss))
end

-- Inside appstart.run: a task that sleeps 0.01 s at a time and notes the
-- most CPU time this process spent during such a sleep: the work the loop
-- did before it let the task run again (its CPU, not the wall clock, so
-- that a loaded machine's scheduling does not count). Returns stop() and
-- worst([k]): the k-th most (default 1, the most), 0 when fewer ticks.
local function ticker()
  local done, most = false, { 0, 0 }
  appstart.spawn(function()
    while not done do
      local c = os.clock()
      appstart.sleep(0.01)
      local took = os.clock() - c
      if took > most[1] then
        most[1], most[2] = took, most[1]
      elseif took > most[2] then
        most[2] = took
      end
    end
  end)
  return function() done = true end, function(k) return most[k or 1] end
end

-- VmRSS and VmHWM of this process, in KiB
local function memory()
  local st = S.proc_status("self")
  return tonumber(st.VmRSS:match("%d+")), tonumber(st.VmHWM:match("%d+"))
end

-- an app that writes its lines, says it is ready, and waits
local function talker(...)
  local argv = { F, ... }
  argv[#argv + 1] = "line=3:up"
  argv[#argv + 1] = "pause"
  return argv
end

local TC = {}

function TC.tearDown() S.kill_strays() end

-- (The app writes its stderr lines once its stdout's have been read: of
-- two pipes that both hold lines, which is read first is the launcher's
-- choice, and so is their order in the ring; under valgrind stderr's came
-- first, and the tail ended with "out25".)
function TC.test_captured_lines_reach_on_output_in_order_and_tail_keeps_the_last()
  local before = S.snapshot()
  local seen = {}
  local go = S.tmpname("go")
  local app = assert(appstart.start { argv = talker("lines=1:25:out", "waitfile=" .. go, "lines=2:3:err"),
    ready = "fd", stdout = "capture", stderr = "capture",
    on_output = function(a, stream, line)
      seen[#seen + 1] = { a, stream, line }
      if line == "out25" then S.touch(go) end
    end })
  -- the lines come while the script waits (a call that waits reads them)
  lu.assertTrue(S.await_with_sleep(function() return #seen == 28 end, 5), #seen)
  local out, err = {}, {}
  for _, s in ipairs(seen) do
    lu.assertIs(s[1], app)
    if s[2] == "stdout" then out[#out + 1] = s[3] else err[#err + 1] = s[3] end
  end
  local want = {}
  for i = 1, 25 do want[i] = "out" .. i end
  lu.assertEquals(out, want)
  lu.assertEquals(err, { "err1", "err2", "err3" })
  lu.assertEquals(app:tail(2), { "err2", "err3" })
  lu.assertEquals(#app:tail(), 10)
  lu.assertEquals(#app:tail(1000), 28)
  app:terminate()
  app:close()
  lu.assertEquals(app:tail(1), { "err3" }, "the ring outlives the app")
  S.assert_clean(before)
end

-- on_output has the app while its start is under way; closing it then
-- would be undone by the hand-over at ready: it raises (logged, as any
-- error of on_output's), and the start goes on.
-- app:close() from on_output, in the middle of a chunk read at once: the
-- lines after the one being handed over are in the ring all the same
-- (app:tail "still there after the app has been closed"); they were lost.
function TC.test_close_from_on_output_keeps_the_rest_of_what_was_read()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local app
  app = assert(appstart.start { argv = { F, "line=3:up", "waitfile=" .. go, "write=1:L1\nL2\nL3\nL4\nL5\n", "pause" },
    ready = "fd", stdout = "capture", on_output = function(_, _, line)
      if line == "L3" then app:close() end
    end })
  S.touch(go)
  lu.assertTrue(S.await_with_sleep(function() return #app:tail() > 0 end, 5))
  lu.assertEquals(app:tail(), { "L1", "L2", "L3", "L4", "L5" })
  os.execute("kill " .. app.pid)
  lu.assertTrue(S.await_gone(app.pid, 3))
  S.testing.reap()
  S.assert_clean(before)
end

-- A script that polls with app:wait(0) gets the pipes read (each such
-- call read nothing: an app writing more than a pipe holds waited for
-- good, and so did the script).
function TC.test_polling_with_wait_0_reads_the_pipes()
  local before = S.snapshot()
  local app = assert(appstart.start { argv = { F, "lines=1:100000:a-line-of-the-app-output", "exit=0" },
    ready = "none", stdout = "capture" })
  local how
  local t0 = S.core.now()
  while not how and S.core.now() - t0 < 20 do
    how = app:wait(0)
    if not how then S.core.wait_readable(-1, 0.001) end
  end
  lu.assertEquals(how, { code = 0 })
  lu.assertEquals(app:tail(1), { "a-line-of-the-app-output100000" })
  S.assert_clean(before)
end

function TC.test_closing_the_app_from_on_output_during_its_start_raises()
  local before = S.snapshot()
  local logged, log = S.recorder()
  local app = assert(appstart.start { argv = { F, "echo=early", "sleep=0.05", "line=3:up", "pause" },
    ready = "fd", stdout = "capture", log = log, on_output = function(a) a:close() end })
  lu.assertStrContains(table.concat(logged, "\n"), "app:close: the app is still starting")
  lu.assertEquals(app.state, "ready")
  lu.assertEquals(app:terminate(), { signal = 15 })
  app:close()
  S.assert_clean(before)
end

function TC.test_tail_reads_what_the_app_wrote_without_a_wait_in_between()
  local before = S.snapshot()
  local app = assert(appstart.start { argv = talker(), ready = "fd", stdout = "capture" })
  -- written after ready: nothing of appstart's has run since
  app:kill("STOP")
  lu.assertEquals(app:tail(), {})
  app:close()
  S.kill_strays()
  local app2 = assert(appstart.start { argv = { F, "line=3:up", "sleep=0.05", "lines=1:3:late", "pause" },
    ready = "fd", stdout = "capture" })
  pause(0.3)
  lu.assertEquals(app2:tail(), { "late1", "late2", "late3" })
  app2:terminate()
  app2:close()
  S.assert_clean(before)
end

-- In a plain script, a start that returned with lines not handed over
-- yet (a slow on_output: the start read a slice at a step) left a
-- continuation due at the next call that waits; app:tail(), which reads
-- them all there, let go of it (it stayed in the loop, doing nothing,
-- until such a call).
function TC.test_a_plain_scripts_tail_that_read_all_leaves_no_continuation()
  local before = S.snapshot()
  local n = 0
  do
    local app = assert(appstart.start { argv = { F, "lines=1:3000:l", "line=3:up", "pause" }, ready = "fd",
      stdout = "capture", on_output = function()
        n = n + 1
        local t = now() + 0.0001
        repeat until now() >= t
      end })
    local _ <close> = setmetatable({}, { __close = function() app:terminate(); app:close() end })
    lu.assertTrue(n < 3000, "the start handed every line over: " .. n)
    -- (the output's continuation, a timer of the loop's)
    local cont = app._out.cont
    -- (a slow launcher, under valgrind, may have had its continuation
    -- run inside the start's last wait: nothing then to let go of)
    lu.skipIf(not cont or cont.done, "the start left no continuation to let go of")
    lu.assertEquals(app:tail(1), { "l3000" })
    lu.assertEquals(n, 3000)
    lu.assertTrue(cont.done, "the continuation left")
    lu.assertFalse(app._out.cont)
  end
  S.assert_clean(before)
end

function TC.test_the_ring_keeps_the_last_output_keep_bytes()
  local app = assert(appstart.start { argv = talker("lines=1:100:line"), ready = "fd",
    stdout = "capture", output_keep = 111 })
  local lines = app:tail(1000)
  app:terminate()
  app:close()
  -- each line takes its bytes and 4 of bookkeeping: "line90".."line99"
  -- (10 x 10) and "line100" (11) is 111 bytes, one more would not fit
  local want = {}
  for i = 90, 100 do want[#want + 1] = "line" .. i end
  lu.assertEquals(lines, want)
end

-- The last n lines are read back from the newest (each record's length
-- at its end too: tail(10) took a walk from the oldest of millions), and
-- a walk forward from the oldest agrees with it, for every n, over a
-- ring that has wrapped, each line with its stream.
function TC.test_tail_of_every_length_over_a_wrapped_ring_agrees_with_the_whole()
  local argv = { F }
  for i = 1, 60 do
    local fd = i % 3 == 0 and 2 or 1
    argv[#argv + 1] = string.format("line=%d:%s%d%s", fd, fd == 1 and "o" or "e", i, string.rep("x", i % 7))
  end
  argv[#argv + 1] = "exit=0"
  local app = assert(appstart.start { argv = argv, ready = "none", stdout = "capture", stderr = "capture",
    output_keep = 300 })
  lu.assertEquals(app:wait(), { code = 0 })
  local r = app._out.r
  local whole, streams = r:tail(1000, true)
  local bytes = 0
  for i, line in ipairs(whole) do
    bytes = bytes + #line + 4
    lu.assertEquals(streams[i], line:sub(1, 1) == "o" and "stdout" or "stderr", line)
  end
  lu.assertTrue(bytes <= 300 and bytes > 300 - (4 + 9), bytes .. " bytes kept")
  lu.assertTrue(#whole < 60, "the ring has wrapped")
  -- (asked in an order that starts each walk from the newest, the
  -- oldest and the last line asked for)
  for _, n in ipairs { 1, #whole, 2, #whole - 1, 3, 5, 4, #whole // 2, 0 } do
    local lines, of = r:tail(n, true)
    lu.assertEquals(#lines, n)
    for i = 1, n do
      lu.assertEquals(lines[i], whole[#whole - n + i], "tail(" .. n .. ")")
      lu.assertEquals(of[i], streams[#whole - n + i])
    end
  end
  for n = 1, #whole do
    local lines = app:tail(n)
    lu.assertEquals(lines, { table.unpack(whole, #whole - n + 1) }, "tail(" .. n .. ")")
  end
  app:close()
end

function TC.test_a_line_longer_than_the_ring_is_kept_cut_never_an_older_one_instead()
  local before = S.snapshot()
  local _, err = appstart.start { argv = { F, "echo=stale line", "bytes=1:300:E", "line=1:", "exit=1" },
    stdout = "capture", output_keep = 200, log = S.quiet }
  lu.assertEquals(err.code, "died")
  -- 200 bytes of ring, 4 of them the record's: the newest line's first 196
  lu.assertEquals(err.output, { string.rep("E", 196) })
  S.assert_clean(before)
end

function TC.test_lines_over_4096_bytes_are_split()
  local lines = {}
  local app = assert(appstart.start { argv = talker("bytes=1:10000:x", "line=1:", "bytes=1:4096:y", "line=1:end"),
    ready = "fd", stdout = "capture", on_output = function(_, _, l) lines[#lines + 1] = l end })
  appstart.sleep(0.05)
  app:terminate()
  app:close()
  lu.assertEquals(#lines, 5)
  lu.assertEquals({ #lines[1], #lines[2], #lines[3], #lines[4] }, { 4096, 4096, 1808, 4096 })
  lu.assertEquals(lines[1], string.rep("x", 4096))
  -- a line exactly at the limit is one line, its newline ending it
  lu.assertEquals(lines[4], string.rep("y", 4096))
  lu.assertEquals(lines[5], "end")
end

-- A line of exactly 4096 bytes is one line whether its newline comes in
-- the same read or a later one: no empty line after it.
function TC.test_a_4096_byte_line_whose_newline_comes_in_a_later_read_is_one_line()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local lines = {}
  local app = assert(appstart.start { argv = { F, "bytes=1:4096:x", "waitfile=" .. go, "line=1:", "line=1:next",
    "exit=0" }, ready = "none", stdout = "capture", on_output = function(_, _, l) lines[#lines + 1] = l end })
  -- at the limit the bytes are a line already; the newline is not written yet
  lu.assertTrue(S.await_with_sleep(function() return #lines == 1 end, 5), "the first 4096 bytes came")
  S.touch(go)
  lu.assertEquals(app:wait(5), { code = 0 })
  app:close()
  lu.assertEquals(#lines, 2)
  lu.assertEquals(lines[1], string.rep("x", 4096))
  lu.assertEquals(lines[2], "next")
  S.assert_clean(before)
end

-- An on_output that raises at every line of an app that writes as fast as
-- it can: a wake-up still reads a bounded amount, so a wait ends (in a
-- plain script, and in appstart.run, where another task keeps running),
-- and the raising is logged once a second at most. A slow on_output
-- (20 us a line, against a flood of 2-byte lines: 10 s of calls for what
-- one wake-up reads) holds the loop a slice at a time too: the other
-- task's sleeps of 0.01 s are never late by seconds. In a child Lua,
-- killed if it hangs.
function TC.test_an_on_output_that_raises_at_every_line_of_a_flood_holds_nothing_up()
  local out = S.run_child({ timeout = 60 }, "output_an_on_output_that_raises_at_every_line_of_a_flood")
  local t, n = out:match("plain%snil%stimeout%s([%d.]+)%s(%d+)\n")
  lu.assertNotNil(t, "the plain script's wait ended: " .. out)
  lu.assertTrue(tonumber(t) < 1.5, "app:wait(0.5) took " .. t .. " s")
  lu.assertTrue(tonumber(n) >= 1 and tonumber(n) <= 3, n .. " lines logged about on_output in 0.5 s")
  for _, case in ipairs { "run", "slow" } do
    local t2, n2, ticks, gap = out:match(case .. "%snil%stimeout%s([%d.]+)%s(%d+)%s(%d+)%s([%d.]+)\n")
    lu.assertNotNil(t2, case .. ": the wait inside appstart.run ended: " .. out)
    lu.assertTrue(tonumber(t2) < 1.5, case .. ": app:wait(0.5) took " .. t2 .. " s")
    if case == "run" then
      lu.assertTrue(tonumber(n2) >= 1 and tonumber(n2) <= 3, n2 .. " lines logged about on_output in 0.5 s")
    end
    lu.assertTrue(tonumber(ticks) > 0, case .. ": the other task ran")
    lu.assertTrue(tonumber(gap) < 0.5, case .. ": the other task's 0.01 s sleep took " .. gap .. " s")
  end
  lu.assertStrContains(out, "done\n")
end

-- app:tail() inside appstart.run, a slow on_output (20 us a line) and a
-- pipe full of short lines: it reads a wake-up's worth (a slice of
-- on_output calls), as the loop does, and leaves the rest to the loop (it
-- read 64 chunks a stream and called on_output for every line: seconds
-- with the loop held).
function TC.test_tail_inside_a_loop_reads_a_slice_at_most()
  local before = S.snapshot()
  local go = S.tmpname("go")
  local took, lines, tailed = nil, 0, nil
  appstart.run(function()
    local slow = true
    local app = assert(appstart.start { argv = { F, "waitfile=" .. go, "lines=1:" .. 200000 // SCALE .. ":x", "pause" },
      ready = "none", stdout = "capture", log = S.quiet, on_output = function()
        lines = lines + 1
        if slow then
          local t = now() + 0.00002
          repeat until now() >= t
        end
      end })
    assert(io.open(go, "w")):close()
    local t = now() + 0.3
    repeat until now() >= t -- no yield: the app fills its pipe
    local c = os.clock()
    tailed = app:tail(1)
    took = os.clock() - c
    slow = false
    app:terminate()
  end)
  lu.assertTrue(lines > 0)
  lu.assertEquals(#tailed, 1)
  if not INSTRUMENTED then lu.assertTrue(took < 0.25, "app:tail took " .. took .. " s of CPU") end
  S.assert_clean(before)
end

-- Captured pipes are made as large as the system allows within a budget
-- of the process's: half the user's pipe-user-pages-soft, past which the
-- kernel gives every new pipe of the user's 8 KiB and enlarges none. The
-- apps past it keep the size of any pipe; the budget comes back as the
-- pipes close. (Each was made 1 MiB: 32 apps with both streams captured
-- took a user's whole quota, and a non-root launcher's next apps, and its
-- user's other processes, got pipes of 8 KiB.)
function TC.test_captured_pipes_are_enlarged_within_a_budget()
  local before = S.snapshot()
  local function number(path)
    local f = io.open(path)
    local v = f and tonumber(f:read("l"))
    if f then f:close() end
    return v
  end
  local pages, max = number("/proc/sys/fs/pipe-user-pages-soft"), number("/proc/sys/fs/pipe-max-size") or 1048576
  -- (closed here: left to the collector, its descriptor was one more at
  -- the end whenever no collection had come by then)
  local getconf = io.popen("getconf PAGESIZE")
  local pagesize = tonumber(getconf:read("l"))
  getconf:close()
  local budget = pages and pages > 0 and pages * pagesize // 2 or 32 * 1048576
  max = math.min(max, 4 * 1048576)
  lu.skipIf(max <= 65536, "pipes cannot be enlarged here")
  local fit = budget // (max - 65536)
  lu.skipIf(fit > 100, "a budget of " .. fit .. " enlarged pipes: too many apps to start")
  lu.assertEquals(S.testing.pipe_budget(), 0, "nothing held before")
  local dir = S.tmpname("sizes")
  assert(os.execute("mkdir " .. dir))
  local apps, sizes = {}, {}
  local function start_one(i)
    apps[i] = assert(appstart.start { argv = { F, "pipesize=" .. dir .. "/" .. i, "pause" }, ready = "none",
      stdout = "capture", log = S.quiet })
    local deadline = now() + 10
    while not S.read(dir .. "/" .. i) and now() < deadline do pause(0.002) end
    sizes[i] = tonumber(S.read(dir .. "/" .. i))
  end
  for i = 1, fit + 1 do start_one(i) end
  local used = S.testing.pipe_budget()
  for i = 1, fit do lu.assertEquals(sizes[i], max, "app " .. i) end
  lu.assertTrue(sizes[fit + 1] < max and sizes[fit + 1] >= 65536, "past the budget: " .. sizes[fit + 1])
  lu.assertTrue(used <= budget, used .. " bytes past the pipes' first size, budget " .. budget)
  for i = 1, fit + 1 do apps[i]:terminate() end
  lu.assertEquals(S.testing.pipe_budget(), 0, "given back as the pipes close")
  start_one(fit + 2)
  apps[fit + 2]:terminate()
  lu.assertEquals(sizes[fit + 2], max, "enlarged again")
  S.assert_clean(before)
end

-- A captured pipe that a child of the app still holds once it is closed
-- (the app ended, a daemon it forked writes on): the kernel counts its
-- pages against the user until that child lets go, so it is shrunk back
-- to its first size before its budget is given back (it stayed 1 MiB, the
-- launcher's budget said nothing was held, and a user's launcher that
-- ran many such apps took the user past pipe-user-pages-soft).
function TC.test_a_pipe_a_child_still_holds_is_shrunk_before_its_budget_is_given_back()
  local before = S.snapshot()
  local go, first, after, pid_file = S.tmpname("go"), S.tmpname("first"), S.tmpname("after"), S.tmpname("child")
  local app = assert(appstart.start { argv = { F, "fork", "pidfile=" .. pid_file, "pipesize=" .. first,
    "waitfile=" .. go, "pipesize=" .. after, "pause", "|", "waitfile=" .. first, "exit=0" },
    ready = "none", stdout = "capture" })
  lu.assertEquals(app:wait(5).code, 0)
  lu.assertTrue(tonumber(S.read(first)) > 65536 or S.read("/proc/sys/fs/pipe-max-size") == "65536\n",
    "its pipe was enlarged")
  app:close()
  lu.assertEquals(S.testing.pipe_budget(), 0, "given back")
  S.touch(go)
  lu.assertEquals(tonumber(S.await_file(after)), 65536, "the pipe the child holds, back to its first size")
  local child = S.pid_in(pid_file)
  os.execute("kill -KILL " .. child)
  lu.assertTrue(S.await_gone(child))
  S.assert_clean(before)
end

-- the CPU time this process has used, in seconds (utime + stime)
local function cpu_seconds()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("a")
  f:close()
  local utime, stime = stat:match("^.*%) %S+" .. string.rep(" %S+", 10) .. " (%d+) (%d+)")
  local hz = 100 -- USER_HZ
  return (tonumber(utime) + tonumber(stime)) / hz
end

-- The app's end read to what the pipe held then: what a child it left
-- writes meanwhile (here while on_output runs on the app's first line)
-- is not glued to the app's unfinished last line ("lastchild-after-end").
function TC.test_what_a_child_writes_after_the_apps_end_is_not_its_last_line()
  local before = S.snapshot()
  local go, done, started = S.tmpname("go"), S.tmpname("done"), S.tmpname("started")
  local seen = {}
  -- (the app writes once start has returned: a line read within the
  -- start has its on_output run there, and the app's end is seen only
  -- after it, when the child has written)
  local app = assert(appstart.start { ready = "none", stdout = "capture",
    argv = { "sh", "-c", '(while [ ! -e "$0" ]; do sleep 0.01; done; echo child-after-end; exec "$2" pidfile="$1"'
      .. ' pause) & while [ ! -e "$3" ]; do sleep 0.01; done; echo a; printf last', go, done, F, started },
    on_output = function(_, _, line)
      seen[#seen + 1] = line
      if line == "a" then
        S.touch(go)
        S.await_file(done)
      end
    end,
    on_exit = function() seen[#seen + 1] = "(exit)" end })
  S.touch(started)
  -- (ended, and nothing read yet: a plain script reads at its calls)
  local deadline = now() + 5
  while (S.proc_status(app.pid) or { State = "Z" }).State:sub(1, 1) ~= "Z" and now() < deadline do
    S.core.wait_readable(-1, 0.005)
  end
  lu.assertEquals(app:wait(5), { code = 0 })
  local child = S.pid_in(done)
  os.execute("kill -KILL " .. child)
  lu.assertTrue(S.await_gone(child, 5))
  lu.assertEquals(seen, { "a", "last", "(exit)" })
  lu.assertEquals(app:tail(), { "a", "last" })
  S.assert_clean(before)
end

-- In a plain script, a call that waits reads the other apps' pipes even
-- when it has nothing to wait for: a start done at once (ready = "none")
-- and app:wait() on an app that has ended (they returned at once, and a
-- script of short jobs never read a long-running app's output, which
-- blocks once the pipe is full).
function TC.test_in_a_plain_script_calls_that_need_not_wait_read_the_pipes_too()
  local before = S.snapshot()
  local m1, m2, go = S.tmpname("m1"), S.tmpname("m2"), S.tmpname("go")
  local lines = {}
  local a = assert(appstart.start { ready = "none", stdout = "capture",
    on_output = function(_, _, line) lines[#lines + 1] = line end,
    argv = { "sh", "-c", 'echo l1; echo l2; : >"$0"; while [ ! -e "$1" ]; do sleep 0.01; done; '
      .. 'echo l3; echo l4; : >"$2"; exec sleep 30', m1, go, m2 } })
  S.await_file(m1)
  local b = assert(appstart.start { argv = { "true" }, ready = "none" })
  lu.assertEquals(lines, { "l1", "l2" }, "read by the start")
  lu.assertEquals(b:wait(), { code = 0 })
  S.touch(go)
  S.await_file(m2)
  lu.assertEquals(b:wait(), { code = 0 })
  lu.assertEquals(lines, { "l1", "l2", "l3", "l4" }, "read by the wait on an app that had ended")
  a:kill("KILL")
  a:wait(5)
  S.assert_clean(before)
end

-- An on_output that waits (once, 0.3 s, at the first line) while both
-- pipes have more: meanwhile they leave the loop, which sleeps rather than
-- spins (the launcher's CPU time over that wait is a fraction of it), and
-- every line comes after it, each stream's in order. In a plain script,
-- in appstart.run, under cqueues and under luv; once the app is ready, and
-- while it starts, as its ready line comes (the start's descriptor, ready
-- then, does not wake that wait over and over: in a plain script it did,
-- 0.25 s of CPU in 0.3).
function TC.test_an_on_output_that_waits_leaves_the_launcher_idle_meanwhile()
  -- (luv's default loop holds its descriptors from its first use on)
  local uv = require "luv"
  require "appstart.luv"
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local function scenario(starting)
    local seen, cpu, wall, state = {}, nil, nil, nil
    -- starting: the app says it is ready once on_output has begun to wait
    local go = S.tmpname("go")
    local argv = { F, "line=1:o1", "line=2:e1", "line=1:o2", "line=2:e2", "pause" }
    if starting then table.insert(argv, 6, "waitfile=" .. go); table.insert(argv, 7, "line=3:up") end
    local app = assert(appstart.start { argv = argv, ready = starting and "fd" or "none", stdout = "capture",
      stderr = "capture", on_output = function(a, stream, line)
        seen[#seen + 1] = stream .. ":" .. line
        if not cpu then
          state = a.state
          S.touch(go)
          cpu, wall = cpu_seconds(), now()
          appstart.sleep(0.3)
          cpu, wall = cpu_seconds() - cpu, now() - wall
        end
      end })
    local all = S.await_with_sleep(function() return #seen == 4 end, 5)
    app:kill("KILL")
    app:wait(5)
    app:close()
    return all, seen, cpu, wall, state
  end
  local modes = {
    plain = function(starting) return scenario(starting) end,
    run = function(starting)
      local r
      appstart.run(function() r = table.pack(scenario(starting)) end)
      return table.unpack(r, 1, r.n)
    end,
    cqueues = function(starting)
      local cq = cqueues.new()
      local r
      cq:wrap(function() r = table.pack(scenario(starting)) end)
      assert(cq:loop())
      return table.unpack(r, 1, r.n)
    end,
    luv = function(starting)
      local r
      coroutine.wrap(function() r = table.pack(scenario(starting)) end)()
      uv.run()
      return table.unpack(r, 1, r.n)
    end,
  }
  for _, starting in ipairs { false, true } do
    for _, mode in ipairs { "plain", "run", "cqueues", "luv" } do
      local all, seen, cpu, wall, state = modes[mode](starting)
      local what = mode .. (starting and ", starting" or "")
      lu.assertTrue(all, what .. ": every line came: " .. table.concat(seen, ","))
      if starting then lu.assertEquals(state, "starting", what) end
      lu.assertTrue(wall >= 0.3, what)
      lu.assertTrue(cpu < wall / 4, string.format("%s: %.2f s of CPU while on_output waited %.2f s", what, cpu, wall))
      local out, err = {}, {}
      for _, l in ipairs(seen) do
        if l:match("^stdout:") then out[#out + 1] = l else err[#err + 1] = l end
      end
      lu.assertEquals(out, { "stdout:o1", "stdout:o2" }, what)
      lu.assertEquals(err, { "stderr:e1", "stderr:e2" }, what)
    end
  end
  collectgarbage() -- (the cqueues controller's copies of the pipes)
  S.assert_clean(before)
end

-- An on_output that waits at every line, handed the last of them by a
-- task's wait that saw the end (inside appstart.run, past the first slice
-- of lines): its wait blocks there, as everywhere else (it raised "attempt
-- to yield across a C-call boundary", the sleep never made).
function TC.test_an_on_output_that_waits_at_each_line_waits_inside_appstart_run_too()
  local slept, raised = 0, {}
  appstart.run(function()
    local app = assert(appstart.start { argv = { F, "lines=1:300:l", "exit=0" }, ready = "none",
      stdout = "capture", on_output = function(_, _, line)
        local ok, err = pcall(appstart.sleep, 0.001)
        if ok then slept = slept + 1 else raised[#raised + 1] = line .. ": " .. tostring(err) end
      end })
    lu.assertEquals(app:wait(20), { code = 0 })
  end)
  lu.assertEquals(raised, {})
  lu.assertEquals(slept, 300)
end

-- What an app wrote before app:close() is read then, into its ring (and
-- its file, syslog), not thrown away with the pipe: app:tail() has the
-- last words of an app that ended before it was closed.
function TC.test_close_keeps_what_the_pipe_held_for_tail()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = assert(appstart.start { argv = { F, "pidfile=" .. pidfile, "line=1:fatal: no config", "write=1:partial",
    "exit=3" }, ready = "none", stdout = "capture" })
  lu.assertTrue(S.await_gone(S.pid_in(pidfile)))
  app:close()
  lu.assertEquals(app:tail(), { "fatal: no config", "partial" })
  S.testing.reap()
  S.assert_clean(before)
end

function TC.test_stderr_into_stdout_merges_both_into_one_capture()
  local seen = {}
  local app = assert(appstart.start { argv = talker("line=1:one", "line=2:two", "line=1:three"), ready = "fd",
    stdout = "capture", stderr = "stdout", on_output = function(_, s, l) seen[#seen + 1] = s .. ":" .. l end })
  appstart.sleep(0.05)
  app:terminate()
  app:close()
  lu.assertEquals(seen, { "stdout:one", "stdout:two", "stdout:three" })
end

function TC.test_every_line_reaches_on_output_before_on_exit()
  local seen, at_exit = 0, nil
  local app = assert(appstart.start { argv = { F, "line=3:up", "sleep=0.05", "lines=1:5000:l", "exit=0" },
    ready = "fd", stdout = "capture",
    on_output = function() seen = seen + 1 end,
    on_exit = function() at_exit = seen end })
  lu.assertEquals(app:wait(), { code = 0 })
  lu.assertEquals(at_exit, 5000)
  app:close()
end

-- on_output waits for the app's end (app:wait at its first line): the end
-- comes inside it, and what the pipe still holds follows once it has
-- returned, then on_exit (which ran before the last lines, or never).
function TC.test_an_on_output_that_waits_for_the_end_still_has_every_line_before_on_exit()
  local before = S.snapshot()
  for _, served in ipairs { false, true } do
    local got = {}
    local function body()
      -- (its lines once start has returned: a line read within the start
      -- would come while the start holds the app, and a:wait() raise)
      local go = S.tmpname("go")
      local app = assert(appstart.start { argv = { F, "waitfile=" .. go, "lines=1:3:x", "exit=0" }, ready = "none",
        stdout = "capture",
        on_output = function(a, _, l)
          got[#got + 1] = l
          if l == "x1" then got[#got + 1] = "wait " .. a:wait().code end
        end,
        on_exit = function() got[#got + 1] = "<on_exit>" end })
      S.touch(go)
      lu.assertEquals(app:wait(5), { code = 0 })
      lu.assertTrue(S.await_with_sleep(function() return got[#got] == "<on_exit>" end, 5), table.concat(got, ","))
    end
    if served then appstart.run(body) else body() end
    lu.assertEquals(got, { "x1", "wait 0", "x2", "x3", "<on_exit>" }, "served " .. tostring(served))
  end
  S.assert_clean(before)
end

-- The app's end seen inside on_output, in a plain script's app:tail()
-- (nothing turns a loop there): the rest comes once on_output has
-- returned, from that call, then on_exit (a timer that no later call
-- turned held them: lost when the script ended). An on_output that then
-- closes the app leaves the rest in the ring (it was read by nobody).
function TC.test_an_end_seen_inside_on_output_in_a_plain_script_is_finished_by_that_call()
  local before = S.snapshot()
  local got = {}
  -- (the app writes its first line once start has returned: start steps
  -- as far as it goes, and a line read within it would come while the
  -- start holds the app; then it says so in a file, and tail reads it)
  local go, written = S.tmpname("go"), S.tmpname("written")
  local app = assert(appstart.start { argv = { F, "waitfile=" .. go, "line=1:first", "now=" .. written,
    "sleep=0.2", "line=1:second", "write=1:last", "exit=3" }, ready = "none", stdout = "capture",
    on_output = function(a, _, line)
      got[#got + 1] = line
      if line == "first" then
        lu.assertTrue(S.await_gone(a.pid))
        got[#got + 1] = a.state
      end
    end,
    on_exit = function(_, how) got[#got + 1] = "on_exit " .. how.code end })
  S.touch(go)
  S.await_file(written) -- (raises if it never comes)
  app:tail()
  lu.assertEquals(got, { "first", "exited", "second", "last", "on_exit 3" })
  S.assert_clean(before)
  app:close()
  got = {}
  os.remove(go)
  app = assert(appstart.start { argv = { F, "waitfile=" .. go, "line=1:first", "sleep=0.2", "line=1:second",
    "write=1:last", "exit=3" }, ready = "none", stdout = "capture",
    on_output = function(a, _, line)
      got[#got + 1] = line
      if line == "first" then a:wait(); a:close() end
    end })
  S.touch(go)
  lu.assertEquals(app:wait(), { code = 3 })
  lu.assertEquals(got, { "first" })
  lu.assertEquals(app:tail(), { "first", "second", "last" })
  S.assert_clean(before)
end

-- The app exits in the middle of a line while a child it forked keeps
-- the pipe open: that line is its last (it came at the pipe's end of
-- file only, after on_exit, or never: lost from err.output), and the
-- pipes are closed at its end (they were read as long as the child
-- lived: a supervisor's restarts each kept one).
function TC.test_the_last_line_without_a_newline_is_the_apps_though_a_child_holds_the_pipe()
  local before = S.snapshot()
  local child = S.tmpname("child")
  local _, err = appstart.start { argv = { F, "fork", "pidfile=" .. child .. "a", "sleep=3", "|", "line=2:first",
    "write=2:fatal: no config", "exit=3" }, stdout = "capture", stderr = "stdout", ready = "fd" }
  lu.assertEquals(err.code, "died")
  lu.assertEquals(err.output, { "first", "fatal: no config" })
  local pid = S.pid_in(child .. "a")
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid))
  for _, served in ipairs { false, true } do
    local got = {}
    local function body()
      -- (inside a run, with the run's own descriptors: its poller, made
      -- as the first pipes to be read in the loop were, an app's)
      if served then
        assert(appstart.start { argv = { F, "exit=0" }, ready = "none", stdout = "capture" }):wait()
      end
      local inner = S.snapshot()
      local app = assert(appstart.start { argv = { F, "fork", "pidfile=" .. child .. tostring(served), "sleep=3", "|",
        "line=1:first", "write=1:last words", "exit=3" }, ready = "none", stdout = "capture",
        on_output = function(_, _, l) got[#got + 1] = l end, on_exit = function() got[#got + 1] = "<on_exit>" end })
      lu.assertEquals(app:wait(5), { code = 3 })
      lu.assertTrue(S.await_with_sleep(function() return got[#got] == "<on_exit>" end, 5))
      lu.assertEquals(app:tail(), { "first", "last words" })
      -- nothing of the app's is open now (the child still runs)
      local kid = S.pid_in(child .. tostring(served))
      lu.assertTrue(S.alive(kid))
      os.execute("kill " .. kid)
      lu.assertTrue(S.await_gone(kid))
      S.assert_clean(inner, "served " .. tostring(served))
      app:close()
    end
    if served then appstart.run(body) else body() end
    lu.assertEquals(got, { "first", "last words", "<on_exit>" })
  end
  S.assert_clean(before)
end

function TC.test_an_on_output_that_raises_is_logged_and_reading_goes_on()
  local logged, log = S.recorder()
  local n = 0
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:3:l", "exit=0" }, ready = "fd",
    stdout = "capture", log = log,
    on_output = function(_, _, l)
      n = n + 1
      if l == "l2" then error("no l2 here") end
    end })
  app:wait()
  app:close()
  lu.assertEquals(n, 3)
  lu.assertStrContains(table.concat(logged, "\n"), "on_output raised")
  lu.assertStrContains(table.concat(logged, "\n"), "no l2 here")
end

-- An on_output that raises at every line of a burst: the first said at
-- once, the rest held back (once a second at most) and said, with their
-- count, once the app has ended (they were never said: the next such line
-- would have counted them, and none came).
function TC.test_an_on_output_that_raises_at_every_line_is_counted_whole_by_the_end()
  local logged, log = S.recorder()
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:50:l", "exit=0" }, ready = "fd",
    stdout = "capture", log = log, on_output = function() error("refused") end })
  app:wait()
  app:close()
  local raised, said = 0, 0
  for _, line in ipairs(logged) do
    if line:find("on_output raised", 1, true) then
      said = said + 1
      raised = raised + (tonumber(line:match("on_output raised (%d+) more times?")) or 0)
        + (tonumber(line:match("%((%d+) more like it not logged%)")) or 0) + (line:find("refused", 1, true) and 1 or 0)
    end
  end
  lu.assertEquals(raised, 50, table.concat(logged, "\n"))
  lu.assertTrue(said < 50, "a line for each")
end

-- A log function that raises (a ^C in it) on the held-back count said as
-- the output closes at the app's end: the app's end is done all the same,
-- on_exit called once (it was never called: the output, closed, was
-- never finished again), and the raise reaches the wait.
function TC.test_a_log_function_that_raises_at_the_outputs_last_words_leaves_on_exit_called()
  local before = S.snapshot()
  local exits, raised = 0, false
  local go = S.tmpname("go")
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:5:l", "waitfile=" .. go, "exit=0" }, ready = "fd",
    stdout = "capture", on_output = function() error("refused") end, on_exit = function() exits = exits + 1 end,
    log = function(_, message)
      if not raised and message:find("more time", 1, true) then
        raised = true
        error("interrupted!", 0)
      end
    end })
  -- (it ends once the start is back: its end is the wait's)
  S.touch(go)
  local ok, err = pcall(app.wait, app, 5)
  lu.assertTrue(raised, "the held-back count was said")
  lu.assertEquals({ ok, err }, { false, "interrupted!" })
  lu.assertEquals(app.state, "exited")
  lu.assertEquals(exits, 1, "on_exit called")
  lu.assertEquals(app:wait(1).code, 0)
  app:close()
  lu.assertEquals(exits, 1, "once")
  S.assert_clean(before)
end

-- What no tostring can show (a __tostring that returns a table) is said
-- to be so: app:wait() does not raise it, and every line still comes.
function TC.test_an_on_output_that_raises_what_cannot_be_shown_is_logged_and_reading_goes_on()
  local logged, log = S.recorder()
  local n = 0
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:3:l", "exit=0" }, ready = "fd",
    stdout = "capture", log = log,
    on_output = function()
      n = n + 1
      error(setmetatable({}, { __tostring = function() return {} end }))
    end })
  lu.assertEquals(app:wait(), { code = 0 })
  app:close()
  lu.assertEquals(n, 3)
  lu.assertStrContains(table.concat(logged, "\n"),
    "on_output raised an error that cannot be shown: '__tostring' must return a string")
end

-- (both lines on one stream: what two pipes hold at once is read in no
-- order the app's writes can set, and under valgrind stderr's line came
-- before stdout's last)
function TC.test_a_failed_start_carries_the_last_lines_and_tostring_shows_them()
  local before = S.snapshot()
  local app, err = appstart.start { argv = { F, "lines=1:30:starting ", "line=1:fatal: no config", "exit=1" },
    ready = "fd", stdout = "capture", stderr = "capture", log = S.quiet }
  lu.assertNil(app)
  lu.assertEquals(err.code, "died")
  lu.assertEquals(#err.output, 10)
  lu.assertEquals(err.output[10], "fatal: no config")
  lu.assertEquals(err.output[9], "starting 30")
  local text = tostring(err)
  lu.assertStrContains(text, "fixture: app exited with code 1 before it was ready\n")
  lu.assertStrContains(text, "\n  | starting 30\n  | fatal: no config")
  S.assert_clean(before)
end

function TC.test_tail_inside_on_output_delivers_nothing_nested_and_every_line_comes_in_order()
  local before = S.snapshot()
  local seen, depth, deepest, tails = {}, 0, 0, 0
  local app = assert(appstart.start { argv = { F, "lines=1:2000:L", "exit=0" }, ready = "none", stdout = "capture",
    log = S.quiet, on_output = function(a, _, line)
      depth = depth + 1
      deepest = math.max(deepest, depth)
      seen[#seen + 1] = line
      -- the ring as it is: no line is handed over from in here
      if #a:tail(1) == 1 then tails = tails + 1 end
      depth = depth - 1
    end })
  lu.assertEquals(app:wait(10), { code = 0 })
  lu.assertEquals(deepest, 1)
  lu.assertEquals(#seen, 2000)
  for i = 1, 2000 do
    if seen[i] ~= "L" .. i then lu.fail("line " .. i .. " is " .. tostring(seen[i])) end
  end
  lu.assertEquals(tails, 2000)
  S.assert_clean(before)
end

-- Lines read while the app is still starting go to on_output with the
-- app, whose tail has them already (it gave {} until the start was over).
function TC.test_tail_inside_on_output_sees_the_lines_read_while_the_app_starts()
  local before = S.snapshot()
  local calls, during, tails = 0, 0, 0
  local app = assert(appstart.start { argv = { F, "lines=1:50:L", "sleep=0.3", "line=3:up", "pause" },
    ready = "fd", stdout = "capture", log = S.quiet, on_output = function(a, _, line)
      calls = calls + 1
      if a.state == nil or a.state == "starting" then during = during + 1 end
      if a:tail(1)[1] == line then tails = tails + 1 end
    end })
  app:terminate()
  app:close()
  lu.assertEquals(calls, 50)
  lu.assertTrue(during > 0, "no line came while the app started")
  lu.assertEquals(tails, 50)
  S.assert_clean(before)
end

function TC.test_tostring_of_an_error_escapes_the_apps_control_characters_as_every_log_does()
  local err = require("appstart.errors").new("died", "app exited", { output = { "oops\27[31m\1" } }, "x")
  lu.assertEquals(tostring(err), "x: app exited\n  | oops\\x1b[31m\\x01")
end

function TC.test_a_start_that_times_out_has_its_output_too()
  local before = S.snapshot()
  local _, err = appstart.start { argv = { F, "line=2:waiting for db", "pause" }, ready = "fd",
    ready_timeout = 0.1, stderr = "capture", log = S.quiet }
  lu.assertEquals(err.code, "timeout")
  lu.assertEquals(err.output, { "waiting for db" })
  S.assert_clean(before)
end

function TC.test_a_program_that_cannot_run_has_an_empty_output_and_leaves_nothing()
  local before = S.snapshot()
  -- under valgrind vfork is a fork, and valgrind's exit of the failed
  -- child flushes the stdio buffers it copied (luaunit's) into the pipe
  io.stdout:flush()
  local app, err = appstart.start { argv = { S.tmpdir .. "/no-such-program" }, stdout = "capture",
    stderr = "stdout", log = S.quiet }
  lu.assertNil(app)
  lu.assertEquals(err.code, "spawn")
  lu.assertEquals(err.output, {})
  lu.assertEquals(tostring(err), "no-such-program: " .. err.message, "no lines, nothing under the message")
  S.assert_clean(before)
end

function TC.test_a_file_in_a_missing_directory_fails_the_start_before_the_spawn()
  local before = S.snapshot()
  local marker = S.tmpname("spawned")
  local app, err = appstart.start { argv = { F, "pidfile=" .. marker }, ready = "none",
    stdout = { file = S.tmpdir .. "/missing/app.log" }, log = S.quiet }
  lu.assertNil(app)
  lu.assertEquals(err.code, "spawn")
  lu.assertStrContains(err.message, "cannot open the directory " .. S.tmpdir .. "/missing")
  lu.assertNil(S.read(marker), "nothing was spawned")
  S.assert_clean(before)
end

function TC.test_output_options_that_cannot_work_are_argument_errors()
  local before = S.snapshot()
  local function raises(opts, what)
    opts.argv = { F }
    local ok, e = pcall(appstart.start, opts)
    lu.assertFalse(ok)
    lu.assertStrContains(e, what)
  end
  raises({ on_output = print }, "field 'on_output': has no effect without stdout or stderr = 'capture'")
  raises({ stderr = "stdout" }, "field 'stderr': 'stdout' needs stdout = 'capture'")
  raises({ stdout = { path = "x" } }, "field 'stdout': unknown field 'path'")
  raises({ stdout = { file = "/tmp/x", max_bytes = 0 } }, "field 'stdout': field 'max_bytes'")
  raises({ stdout = { file = "/tmp/x", keep = 2 } }, "field 'keep': has no effect without 'max_bytes'")
  raises({ stdout = { file = "/tmp/x" }, stderr = { file = "/tmp/x" } }, "use stderr = 'stdout'")
  raises({ output_keep = -1 }, "field 'output_keep'")
  S.assert_clean(before)
end

-- files

local TF = {}

function TF.tearDown() S.kill_strays() end

local function file_lines(path)
  return S.lines(S.read(path))
end

function TF.test_a_file_is_appended_to_and_rotated_at_its_byte_limit()
  local before = S.snapshot()
  local dir = S.tmpname("rot")
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/app.log"
  local f = assert(io.open(path, "w"))
  f:write("old\n")
  f:close()
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:60:line", "exit=0" }, ready = "fd",
    stdout = { file = path, max_bytes = 100, keep = 2 } })
  app:wait()
  app:close()
  -- "line1".."line60" is 6 x 9 + 51 x 7 = 411 bytes after "old\n": the
  -- files hold whole lines, at most 100 bytes each; the oldest are gone
  local all = {}
  for _, p in ipairs { path .. ".2", path .. ".1", path } do
    local content = assert(S.read(p), p)
    lu.assertTrue(#content <= 100, p .. " holds " .. #content .. " bytes")
    lu.assertEquals(content:sub(-1), "\n")
    for _, l in ipairs(file_lines(p)) do all[#all + 1] = l end
  end
  lu.assertNil(S.read(path .. ".3"), "keep = 2")
  lu.assertEquals(all[#all], "line60")
  for i = 2, #all do
    lu.assertEquals(all[i], "line" .. (tonumber(all[i - 1]:match("%d+")) + 1))
  end
  lu.assertTrue(#all > 25, "nearly 300 bytes of lines kept")
  lu.assertEquals(app:tail(1), { "line60" }, "a file's lines are in the ring too")
  S.assert_clean(before)
end

-- A file's name may be as long as the system allows (255 bytes), but for
-- the room its rotated names need (NAME.1 .. NAME.K): only with max_bytes.
-- (Names from 248 bytes were refused, "bad file name", rotated or not.)
function TF.test_a_file_name_may_be_as_long_as_the_system_allows_less_its_rotations_suffix()
  local before = S.snapshot()
  local dir = S.tmpname("long")
  assert(os.execute("mkdir " .. dir))
  local function start(name, max_bytes, keep)
    return appstart.start { argv = { F, "line=1:up", "line=3:up", "exit=0" }, ready = "fd", log = S.quiet,
      stdout = { file = dir .. "/" .. name, max_bytes = max_bytes, keep = keep } }
  end
  for _, case in ipairs { { 255 }, { 253, 100, 1 }, { 252, 100, 10 }, { 250, 100, 1000 } } do
    local name = string.rep("n", case[1])
    local app, err = start(name, case[2], case[3])
    lu.assertNotNil(app, #name .. ": " .. tostring(err))
    app:wait()
    app:close()
    lu.assertEquals(S.read(dir .. "/" .. name), "up\n", #name)
  end
  for _, case in ipairs { { 256, nil, nil, 256, "" }, { 254, 100, 1, 256, " with the rotated names' suffix" },
    { 251, 100, 1000, 256, " with the rotated names' suffix" } } do
    local app, err = start(string.rep("x", case[1]), case[2], case[3])
    lu.assertNil(app, tostring(case[1]))
    lu.assertEquals(err.code, "spawn")
    lu.assertStrContains(err.message, string.format("file name too long (%d bytes%s; at most 255)", case[4], case[5]))
  end
  S.assert_clean(before)
end

-- Run argv (ready at once) with its stdout into `stdout` ({file = ...})
-- under appstart.run, a ticker beside it, until done() (looked at every
-- 0.05 s, a minute at most): whether done() came, and the ticker's worst
-- (checked where the suite runs uninstrumented).
local function flood_into_file(argv, stdout, done)
  local came, worst = false, nil
  appstart.run(function()
    local stop
    stop, worst = ticker()
    local app = assert(appstart.start { argv = argv, ready = "none", stdout = stdout })
    local deadline = now() + 60
    repeat
      appstart.sleep(0.05)
      came = done()
    until came or now() > deadline
    stop()
    app:terminate()
    app:close()
  end)
  assert_ticked(worst())
  return came
end

-- A flood into a file rotated at 4 KiB with 1000 kept: a wake-up read
-- 1 MiB, 256 rotations of up to 1000 renames each, holding the loop for
-- seconds. A read's rotations are made as one now (the files there are
-- renamed once), and a wake-up looks at the clock between reads.
-- (The app stays up: its end, when what the pipe still holds is written
-- at once, is not measured.) Every line is in the files.
function TF.test_a_flood_into_a_small_file_with_many_kept_does_not_hold_the_loop()
  local before = S.snapshot()
  local dir = S.tmpname("rotflood")
  assert(os.execute("mkdir " .. dir))
  local n = 20000 // SCALE
  local function lines_kept()
    local p = io.popen("cat " .. dir .. "/app.log* | wc -l")
    local count = tonumber(p:read("a"))
    p:close()
    return count
  end
  local all = flood_into_file({ F, "lines=1:" .. n .. ":" .. string.rep("x", 90), "pause" },
    { file = dir .. "/app.log", max_bytes = 4096, keep = 1000 }, function() return lines_kept() == n end)
  lu.assertTrue(all, lines_kept() .. " lines of " .. n .. " in the files")
  S.assert_clean(before)
end

-- The same with a file smaller than a line's limit (8 bytes, a line or
-- two each): a read of 4 KiB made hundreds of rotations of 100 renames
-- each, the clock looked at only after them. They are made as one now,
-- the files rotated off the end never written. The last line ends in the
-- file, each file whole lines.
function TF.test_a_flood_into_a_tiny_file_does_not_hold_the_loop()
  local before = S.snapshot()
  local dir = S.tmpname("rottiny")
  assert(os.execute("mkdir " .. dir))
  local n = 1000 // SCALE
  local path = dir .. "/app.log"
  local last = flood_into_file({ F, "lines=1:" .. n .. ":x", "pause" }, { file = path, max_bytes = 8, keep = 100 },
    function() return (S.read(path) or ""):find("x" .. n .. "\n", 1, true) ~= nil end)
  lu.assertTrue(last, "the last line came")
  -- (two lines a file at most: the 100th kept is there from 400 lines on)
  for _, p in ipairs { path, path .. ".1", n >= 400 and path .. ".100" or path } do
    local content = assert(S.read(p), p)
    lu.assertTrue(#content <= 8 and content:find("^x%d+\n") ~= nil and content:sub(-1) == "\n", p .. ": " .. content)
  end
  lu.assertNil(S.read(path .. ".101"), "keep = 100")
  S.assert_clean(before)
end

local function write_file(path, text)
  local f = assert(io.open(path, "w"))
  assert(f:write(text))
  f:close()
end

-- The files that bytes appended to a rotated file leave, by the rules the
-- README gives (state: {file = what PATH holds, line = the bytes of its
-- unfinished line that a rotation moves, 0 in a file as found, rotated =
-- {PATH.1, PATH.2, ... PATH.keep}, false where there is none}), one
-- rotation at a time.
local function rotate_model(state, data, max_bytes, keep)
  local file, line, rotated, pos = state.file, state.line, state.rotated, 1
  while pos <= #data do
    local room = math.max(0, max_bytes - #file)
    if #file + #data - pos + 1 <= max_bytes then room = #data - pos + 1 end
    local piece = data:sub(pos, pos + room - 1)
    local full = #file + #data - pos + 1 > max_bytes
    local take, carry = #piece, 0
    if full then
      local nl = piece:find("\n[^\n]*$")
      if nl then
        take = nl -- whole lines that fit
      elseif #file > line then
        take, carry = 0, line -- the line under way goes on in the next file
      end -- else: a line longer than a whole file, cut
    end
    local written = data:sub(pos, pos + take - 1)
    file, pos = file .. written, pos + take
    line = written:find("\n") and #written:match("[^\n]*$") or line + #written
    if not full then break end
    -- (PATH.keep is replaced only by a file moved onto it)
    for i = keep, 2, -1 do rotated[i] = rotated[i - 1] or i == keep and rotated[i] end
    if keep > 0 then rotated[1] = file:sub(1, #file - carry) end
    file, line = file:sub(#file - carry + 1), carry
  end
  state.file, state.line = file, line
end

-- Bytes appended to a rotated file leave the files one rotation at a time
-- would, however many rotations one read of the app's output makes: a
-- pipe's worth read at the app's end into {max_bytes = 8, keep = 100}
-- made 10,000 rotations of 100 renames each, 18 s; they are made as one
-- now, the files rotated off the end never written. Random lines (some
-- longer than a file, some cut by the app's end), two apps in turn on the
-- same files (the second's rotations move the first's files), in a plain
-- script and under appstart.run, against the model above. The first
-- finds PATH (past max_bytes, its last line unfinished) and some PATH.i,
-- with gaps (a batch left a file someone had moved up to in a gap).
function TF.test_rotations_of_a_flood_leave_the_files_one_at_a_time_would()
  local before = S.snapshot()
  local seed = os.time()
  math.randomseed(seed)
  local function random_lines(n, longest)
    local t = {}
    for i = 1, n do t[i] = string.rep(string.char(96 + i % 26 + 1), math.random(0, longest)) end
    return table.concat(t, "\n") .. (math.random(2) == 1 and "\n" or "")
  end
  for _, c in ipairs { { 8, 100, 6000 }, { 16, 5, 3000 }, { 50, 1, 2000 }, { 20, 300, 800 }, { 30, 1000, 600 },
    { 12, 0, 6000 } } do
    local max_bytes, keep, n = c[1], c[2], c[3] // SCALE
    local dir = S.tmpname("rotmodel")
    assert(os.execute("mkdir " .. dir))
    local state = { file = "found\n" .. string.rep("f", max_bytes), line = 0, rotated = {} }
    for i = 1, keep do state.rotated[i] = (i == 2 or i == keep - 1 or i == keep) and ("old" .. i .. "\n") end
    for i, text in pairs(state.rotated) do
      if text then write_file(dir .. "/app.log." .. i, text) end
    end
    write_file(dir .. "/app.log", state.file)
    for round, under_run in ipairs { false, true } do
      local data = random_lines(n, max_bytes * 3 // 2)
      write_file(dir .. "/data", data)
      -- (its first bytes end within a line, read before the rest: a line
      -- under way as the many rotations of the rest begin)
      local first = data:find("\n") + 2
      local function go()
        local app = assert(appstart.start { argv = { "/bin/sh", "-c", 'head -c $1 "$2"; sleep 0.1; tail -c +$(($1 + 1)) "$2"',
          "sh", tostring(first), dir .. "/data" }, ready = "none",
          stdout = { file = dir .. "/app.log", max_bytes = max_bytes, keep = keep } })
        lu.assertEquals(app:wait().code, 0)
        app:close()
      end
      local cpu = os.clock()
      if under_run then appstart.run(go) else go() end
      cpu = os.clock() - cpu
      -- (a file as found has no unfinished line the next rotation moves)
      state.line = 0
      rotate_model(state, data, max_bytes, keep)
      -- (and the app's last line, unfinished, ended at its end)
      if state.line > 0 then rotate_model(state, "\n", max_bytes, keep) end
      local what = string.format("seed %d, max_bytes %d, keep %d, round %d", seed, max_bytes, keep, round)
      lu.assertEquals(S.read(dir .. "/app.log"), state.file, what .. ": app.log")
      for i = 1, keep + 1 do
        lu.assertEquals(S.read(dir .. "/app.log." .. i), state.rotated[i] or nil, what .. ": app.log." .. i)
      end
      -- (the launcher's CPU for it all in the plain script, where its
      -- output is read in a few large reads, where the suite runs
      -- uninstrumented: 12 s for the first one before)
      if not INSTRUMENTED and not under_run then
        lu.assertTrue(cpu < 0.5, string.format("%s: %.3f s of CPU", what, cpu))
      end
    end
    assert(os.execute("rm -r " .. dir))
  end
  S.assert_clean(before)
end

-- An app's last line without its '\n' is a line in its file too: the
-- next app's first line (a restart's, on the same file) does not join it
-- (the file read "fatal: no configstart 2"), with or without rotation,
-- and so for an app closed while it runs, its unfinished line the last.
function TF.test_an_apps_last_line_without_a_newline_ends_in_its_file()
  local before = S.snapshot()
  for _, rotated in ipairs { false, true } do
    local path = S.tmpname("glue")
    local out = rotated and { file = path, max_bytes = 1000, keep = 2 } or { file = path }
    for i = 1, 2 do
      local app = assert(appstart.start { argv = { F, "line=1:start " .. i, "write=1:fatal: no config", "exit=1" },
        ready = "none", stdout = out })
      lu.assertEquals(app:wait(5).code, 1)
      app:close()
    end
    local app = assert(appstart.start { argv = { F, "line=1:start 3", "write=1:still writ", "pause" },
      ready = "none", stdout = out })
    lu.assertTrue(S.await_with_sleep(function() return S.read(path):find("still writ$") ~= nil end, 5), "read")
    app:close()
    lu.assertEquals(S.read(path), "start 1\nfatal: no config\nstart 2\nfatal: no config\nstart 3\nstill writ\n",
      rotated and "rotated" or "plain")
    S.kill_strays()
  end
  S.assert_clean(before)
end

-- A line the app writes in two parts, the file's limit coming between
-- them: the line goes whole to the next file (keep = 1), or stays whole in
-- the emptied file (keep = 0), never split across the rotation.
function TF.test_a_line_written_in_two_parts_is_not_split_by_a_rotation()
  local before = S.snapshot()
  for _, keep in ipairs { 1, 0 } do
    local dir = S.tmpname("parts")
    assert(os.execute("mkdir " .. dir))
    local path = dir .. "/app.log"
    local go = S.tmpname("go")
    local app = assert(appstart.start { argv = { F, "bytes=1:49:A", "line=1:", "bytes=1:30:B", "waitfile=" .. go,
      "bytes=1:30:B", "line=1:", "exit=0" }, ready = "none",
      stdout = { file = path, max_bytes = 100, keep = keep } })
    -- 80 bytes in the file, the last 30 a line not ended yet
    lu.assertTrue(S.await_with_sleep(function() return #(S.read(path) or "") == 80 end, 5), "the first part came")
    S.touch(go)
    lu.assertEquals(app:wait(5), { code = 0 })
    app:close()
    lu.assertEquals(S.read(path), string.rep("B", 60) .. "\n", "keep = " .. keep)
    if keep == 1 then
      lu.assertEquals(S.read(path .. ".1"), string.rep("A", 49) .. "\n")
    else
      lu.assertNil(S.read(path .. ".1"))
    end
  end
  S.assert_clean(before)
end

-- The part written of a line that a rotation would move is the app's to
-- size: one longer than 64 KiB stays where it is, the line cut there (it
-- was copied whole, up to max_bytes, in one wake-up).
function TF.test_a_part_of_a_line_longer_than_64_kib_is_not_moved_by_a_rotation()
  local before = S.snapshot()
  local dir = S.tmpname("bigpart")
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/app.log"
  local go = S.tmpname("go")
  local app = assert(appstart.start { argv = { F, "line=1:x", "bytes=1:70000:A", "waitfile=" .. go,
    "bytes=1:100:B", "line=1:", "exit=0" }, ready = "none", stdout = { file = path, max_bytes = 70050, keep = 1 } })
  lu.assertTrue(S.await_with_sleep(function() return #(S.read(path) or "") == 70002 end, 5), "the first part came")
  S.touch(go)
  lu.assertEquals(app:wait(5), { code = 0 })
  app:close()
  lu.assertEquals(S.read(path .. ".1"), "x\n" .. string.rep("A", 70000))
  lu.assertEquals(S.read(path), string.rep("B", 100) .. "\n")
  S.assert_clean(before)
end

-- Two spellings of one file for stdout and stderr: the options' check
-- compares what they name (the file's inode, or its directory's and its
-- name for one not made yet); the files opened are compared again (a link
-- made in between), and it is the same argument error, raised before
-- anything is spawned.
function TF.test_stdout_and_stderr_naming_one_file_two_ways_is_an_argument_error()
  local before = S.snapshot()
  local dir = S.tmpname("same")
  assert(os.execute("mkdir " .. dir))
  local marker = S.tmpname("spawned")
  local ok, e = pcall(function()
    local app = appstart.start { argv = { F, "pidfile=" .. marker }, ready = "none",
      stdout = { file = dir .. "/app.log", max_bytes = 200 }, stderr = { file = dir .. "/./app.log", max_bytes = 200 } }
    return app -- (no tail call: the error points at the line above)
  end)
  lu.assertFalse(ok)
  -- as the options' check says it: the function called, the caller's line
  lu.assertStrContains(tostring(e), "output_spec.lua:")
  lu.assertStrContains(tostring(e), "appstart.start: field 'stderr': the same file as stdout's: use stderr = 'stdout'")
  lu.assertNil(S.read(marker), "nothing was spawned")
  S.assert_clean(before)
end

-- A file the launcher rotates named by the other stream as a plain path
-- too (which the app appends to itself): the app's own lines followed the
-- file into app.log.1, past max_bytes. An argument error, either way round.
function TF.test_a_rotated_file_that_the_other_stream_names_as_a_path_is_an_argument_error()
  local before = S.snapshot()
  local dir = S.tmpname("mixed")
  assert(os.execute("mkdir " .. dir))
  local marker = S.tmpname("spawned")
  local rotated = { file = dir .. "/app.log", max_bytes = 50, keep = 2 }
  for _, case in ipairs {
    { rotated, dir .. "/./app.log", "the same file as stdout's: use stderr = 'stdout'" },
    { dir .. "/app.log", rotated, "the same file as stdout's, which the app appends to itself: the launcher"
      .. " cannot rotate it (give the file, to rotate, as stdout, and stderr = 'stdout')" },
  } do
    local ok, e = pcall(appstart.start, { argv = { F, "pidfile=" .. marker }, ready = "none",
      stdout = case[1], stderr = case[2] })
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(e), "appstart.start: field 'stderr': " .. case[3])
  end
  lu.assertNil(S.read(marker), "nothing was spawned")
  lu.assertNil(S.read(dir .. "/app.log"), "nothing was opened")
  S.assert_clean(before)
end

-- One stream's file named as one of the other's rotated files (app.log.1
-- of app.log's, as a file to rotate, a plain path or through a link): the
-- first rotation renamed it away, and every line written to it after went
-- into a file no name reaches, unsaid. An argument error, either way round.
function TF.test_one_of_a_streams_rotated_files_named_by_the_other_is_an_argument_error()
  local before = S.snapshot()
  local dir = S.tmpname("rotated")
  assert(os.execute("mkdir " .. dir))
  assert(io.open(dir .. "/app.log.2", "w")):close()
  assert(os.execute("ln -s app.log.2 " .. dir .. "/link"))
  local marker = S.tmpname("spawned")
  local rotated = { file = dir .. "/app.log", max_bytes = 50, keep = 2 }
  local function says(name, of) return "names " .. name .. ", one of " .. of .. "'s rotated files" end
  for _, case in ipairs {
    { rotated, { file = dir .. "/app.log.1" }, "stderr", says(dir .. "/app.log.1", "stdout") },
    { rotated, dir .. "/./app.log.1", "stderr", says(dir .. "/app.log.1", "stdout") },
    { rotated, { file = dir .. "/link", max_bytes = 10 }, "stderr", says(dir .. "/app.log.2", "stdout") },
    { dir .. "/app.log.2", rotated, "stdout", says(dir .. "/app.log.2", "stderr") },
  } do
    local ok, e = pcall(appstart.start, { argv = { F, "pidfile=" .. marker }, ready = "none",
      stdout = case[1], stderr = case[2] })
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(e), "appstart.start: field '" .. case[3] .. "': " .. case[4])
  end
  -- past keep, or without max_bytes (nothing rotates), a name is free
  local app = assert(appstart.start { argv = { F, "pidfile=" .. marker }, ready = "none",
    stdout = rotated, stderr = { file = dir .. "/app.log.3" } })
  lu.assertEquals(app:wait(5), { code = 0 })
  app:close()
  app = assert(appstart.start { argv = { F }, ready = "none",
    stdout = { file = dir .. "/app.log" }, stderr = { file = dir .. "/app.log.1" } })
  lu.assertEquals(app:wait(5), { code = 0 })
  app:close()
  S.assert_clean(before)
end

-- The bytes of output logged as lost (warnings of "N bytes of output not
-- written to its file"), and how many such lines, in a recorder's list.
local function lost_bytes(logged)
  local bytes, lines = 0, 0
  for _, e in ipairs(logged) do
    local n = e:match("^warn: %S+: (%d+) bytes of output not written to its file")
    if n then bytes, lines = bytes + tonumber(n), lines + 1 end
  end
  return bytes, lines
end

-- Bytes a file could not take (its rotation fails: NAME.1 is a directory)
-- are logged as the app runs, not only once something reads the ring, and
-- those not logged yet at app:close() are logged then.
function TF.test_bytes_a_file_could_not_take_are_logged_as_the_app_runs_and_at_close()
  local before = S.snapshot()
  local dir = S.tmpname("drops")
  assert(os.execute("mkdir -p " .. dir .. "/app.log.1/x"))
  local logged, log = S.recorder()
  local go = S.tmpname("go")
  local text = string.rep("x", 40) -- lines of 42 bytes ("x...x1\n" to "x...x5\n")
  local seen = {}
  local app = assert(appstart.start { argv = { F, "lines=1:5:" .. text, "line=2:first", "waitfile=" .. go,
    "lines=1:5:" .. text, "line=2:second", "pause" }, ready = "none",
    stdout = { file = dir .. "/app.log", max_bytes = 100 }, stderr = "capture", log = log,
    on_output = function(_, _, l) seen[#seen + 1] = l end })
  local function lost() return (lost_bytes(logged)) end
  -- two lines fit (84 bytes); the rotation fails: the other three are lost
  -- (said as they are lost, once a second at most: a read takes a file's
  -- worth, so what the later reads of that second lost is said later)
  lu.assertTrue(S.await_with_sleep(function() return lost() > 0 end, 5),
    "logged while the app runs: " .. table.concat(logged, "\n"))
  lu.assertTrue(lost() <= 3 * 42, table.concat(logged, "\n"))
  -- whole lines: what was written of the third (a read ended inside it)
  -- was taken back out when the rotation failed
  lu.assertEquals(S.read(dir .. "/app.log"), text .. "1\n" .. text .. "2\n")
  S.touch(go)
  -- (stdout's five lines were read no later than stderr's "second")
  lu.assertTrue(S.await_with_sleep(function() return seen[2] == "second" end, 5))
  app:close()
  S.kill_strays()
  lu.assertEquals(lost(), 8 * 42, "the rest is logged at close: " .. table.concat(logged, "\n"))
  S.assert_clean(before)
end

-- A launcher under a file size limit (ulimit -f, LimitFSIZE=) whose
-- writes of an app's output pass it: SIGXFSZ killed the launcher, every
-- app it watched with it; the writes fail (EFBIG) and are counted as a
-- full disk's are, and the app runs on, in a plain script as in a loop.
function TF.test_a_file_past_the_launchers_size_limit_loses_bytes_not_the_launcher()
  local dir = S.tmpname("fsize")
  assert(os.execute("mkdir " .. dir))
  -- (sh's ulimit -f counts 512-byte blocks: 4 KiB, of 2.7 MB of short
  -- lines written by seq, 4 KiB at a time whatever the lines: a write
  -- fails in each read, most often mid-line, past the few bytes the
  -- limit lets in)
  local out, ok = S.run_child({ fsize = 8, timeout = 30 }, "output_a_file_past_the_launchers_size_limit", dir)
  lu.assertTrue(ok, out)
  local cases = {}
  for name, code, lost in out:gmatch("(%a+)\t(%S+)\t([^\n]*)\n") do cases[name] = { code = code, lost = lost } end
  for _, name in ipairs { "plain", "run" } do
    local c = cases[name]
    lu.assertNotNil(c, name .. ": " .. out)
    lu.assertEquals(c.code, "3", name)
    lu.assertStrContains(c.lost, "bytes of output not written to its file: File too large", name)
    local content = S.read(dir .. "/" .. name .. ".log")
    lu.assertTrue(#content > 0 and #content <= 4096, name .. ": " .. #content .. " bytes")
    -- whole lines, in order: none the tail of a line whose start was lost
    local n = 0
    for line in content:gmatch("([^\n]*)\n") do
      n = n + 1
      lu.assertEquals(line, tostring(n), name)
    end
    lu.assertEquals(content:sub(-1), "\n", name)
  end
  lu.assertStrContains(out, "\ndone\n")
end

-- A rotation whose fresh file cannot be made for want of descriptors:
-- the stream's bytes are lost meanwhile, counted, and once descriptors
-- are back the file is made again at the next read, from a line's start
-- (the output was dropped for good, the app's life long).
function TF.test_a_rotation_out_of_descriptors_makes_its_file_once_they_are_back()
  local dir = S.tmpname("rotation")
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/out.log"
  local out, ok = S.run_child({ nofile = 64, timeout = 30 }, "output_a_rotation_out_of_descriptors", path,
    dir .. "/go-a", dir .. "/go-b")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "done\ttrue\n")
  -- the last lines are all there, whole, in order; no "a" line after a
  -- "b" one, nor any part of a line
  local names = { path .. ".3", path .. ".2", path .. ".1", path }
  local lines = {}
  for _, name in ipairs(names) do
    for line in (S.read(name) or ""):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  end
  lu.assertEquals(lines[#lines], "b100", table.concat(lines, " "))
  local last_b
  for i, line in ipairs(lines) do
    lu.assertNotNil(line:match("^[ab]%d+$"), "line " .. i .. ": " .. line)
    if line:sub(1, 1) == "b" then
      local n = tonumber(line:sub(2))
      if last_b then lu.assertEquals(n, last_b + 1, table.concat(lines, " ")) end
      last_b = n
    else
      lu.assertNil(last_b, "an a line after the b ones: " .. table.concat(lines, " "))
    end
  end
end

-- A rotation that cannot make the fresh file (out of descriptors) loses
-- the line under way: the '\n' that ends an app's unfinished last line at
-- its end is not written for it, into a file made again for that alone
-- (PATH held one empty line the app never wrote).
function TF.test_a_failed_rotation_leaves_no_newline_of_its_own_at_the_apps_end()
  local dir = S.tmpname("rotfail")
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/out.log"
  local out, ok = S.run_child({ nofile = 64, timeout = 30 }, "output_a_failed_rotation_ends_no_line_of_its_own", path,
    dir .. "/go-a", dir .. "/go-b")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "lost\nended\t0\nleft\ttrue\n")
  lu.assertEquals(S.read(path .. ".1"), "aaaa\n")
  lu.assertNil(S.read(path), "a file made for the newline alone")
end

-- A pipe the app made smaller itself (F_SETPIPE_SZ), which a child of its
-- still holds as the launcher lets go of it: the kernel counts no more
-- than its first size, and its budget is given back (it was kept for
-- good: a service restarted over and over used the launcher's budget up).
function TC.test_a_pipe_the_app_shrank_itself_gives_its_budget_back()
  local before = S.snapshot()
  lu.skipIf(S.read("/proc/sys/fs/pipe-max-size") == "65536\n", "pipes cannot be enlarged here")
  local pid_file = S.tmpname("child")
  local app = assert(appstart.start { argv = { F, "setpipe=4096", "fork", "pidfile=" .. pid_file, "pause", "|",
    "waitfile=" .. pid_file, "exit=0" }, ready = "none", stdout = "capture" })
  lu.assertEquals(app:wait(5).code, 0)
  app:close()
  lu.assertEquals(S.testing.pipe_budget(), 0, "given back")
  local child = S.pid_in(pid_file)
  os.execute("kill -KILL " .. child)
  lu.assertTrue(S.await_gone(child))
  S.assert_clean(before)
end

-- A rotation in a sticky directory others may write (as /tmp) moves and
-- removes only names of root's, the launcher's, the directory owner's or
-- the app's user's: another user's PATH.1 and PATH.2 there (which the
-- app's user could neither move nor remove) were moved and removed by
-- root for it. The rotation fails instead, its bytes counted lost.
-- A log path in a fresh sticky directory others may write, with files of
-- another user's (uid 1) at PATH.i holding theirs[i] and a newline.
local function sticky_log_with_theirs(theirs)
  local dir = S.tmpname("sticky")
  assert(os.execute("mkdir -m 1777 " .. dir))
  local path = dir .. "/a.log"
  for i, text in pairs(theirs) do
    assert(os.execute(string.format("setpriv --reuid=1 --regid=1 --clear-groups sh -c 'echo %s > %s.%d'",
      text, path, i)))
  end
  return path
end

function TF.test_a_rotation_in_a_sticky_directory_leaves_another_users_files()
  lu.skipIf(not S.is_root(), "needs root (files of another user's)")
  local before = S.snapshot()
  local path = sticky_log_with_theirs { "theirs-1", "theirs-2" }
  local logged, log = S.recorder()
  local app = assert(appstart.start { argv = { F, "lines=1:50:line-", "exit=0" }, ready = "none", user = "nobody",
    stdout = { file = path, max_bytes = 100, keep = 2 }, log = log })
  lu.assertEquals(app:wait(10), { code = 0 })
  app:close()
  for i = 1, 2 do lu.assertEquals(S.read(path .. "." .. i), "theirs-" .. i .. "\n", path .. "." .. i) end
  lu.assertStrContains(table.concat(logged, "\n"), "bytes of output not written to its file: Operation not permitted")
  S.assert_clean(before)
end

-- The same where one read needs more rotations than keep: the batch that
-- does them at once renamed the file over PATH.2 before it met another
-- user's PATH.1, which it left; then the file held "world", "hello" was
-- gone, and 6 bytes of the 12 not written were counted. As one at a
-- time: the first rotation fails, the file keeps its line, and the 12
-- bytes that did not go in are counted.
function TF.test_a_batch_of_rotations_fails_where_one_at_a_time_would()
  lu.skipIf(not S.is_root(), "needs root (files of another user's)")
  local before = S.snapshot()
  local path = sticky_log_with_theirs { "theirs" }
  local logged, log = S.recorder()
  -- one write, so one read: three lines, each a file's worth
  local app = assert(appstart.start { argv = { F, "write=1:hello\nworld\nagain\n", "exit=0" }, ready = "none",
    user = "nobody", stdout = { file = path, max_bytes = 6, keep = 2 }, log = log })
  lu.assertEquals(app:wait(10), { code = 0 })
  app:close()
  lu.assertEquals(S.read(path), "hello\n", table.concat(logged, "\n"))
  lu.assertEquals(S.read(path .. ".1"), "theirs\n")
  lu.assertNil(S.read(path .. ".2"))
  lu.assertStrContains(table.concat(logged, "\n"), "12 bytes of output not written to its file: Operation not permitted")
  S.assert_clean(before)
end

-- A full disk: what a write got into the file before it failed counts
-- toward max_bytes (the file grew past it, the failed chunk taken for
-- nothing written), the line it cut short is taken back out, and what
-- was lost is counted right: every byte the app wrote is in a file or
-- said lost, and the files hold whole lines within max_bytes.
-- fn(dir, held) with a 64 KiB tmpfs mounted at dir (skipped where that
-- cannot be); the app fn leaves in held.app closed, strays killed and the
-- tmpfs unmounted whatever fn does; then nothing left.
local function on_a_small_tmpfs(name, fn)
  if not S.is_root() then lu.skip("mounts a small tmpfs (root)") end
  local before = S.snapshot()
  local dir = S.tmpname(name)
  assert(os.execute("mkdir " .. dir))
  if not os.execute("mount -t tmpfs -o size=64k tmpfs " .. dir .. " 2>/dev/null") then
    lu.skip("cannot mount a tmpfs here")
  end
  local held = {}
  local ok, err = pcall(fn, dir, held)
  if held.app then held.app:close() end
  S.kill_strays()
  os.execute("umount -l " .. dir)
  if not ok then error(err, 0) end
  S.assert_clean(before)
end

function TF.test_a_full_disk_keeps_files_within_max_bytes_and_counts_what_was_lost()
  on_a_small_tmpfs("fulldisk", function(dir, held)
    -- 13 pages of filler: 3 pages (12288 bytes) left
    assert(os.execute("head -c 53248 /dev/zero > " .. dir .. "/filler"))
    local logged, log = S.recorder()
    local go = S.tmpname("go")
    local a, b = "0123456789012345678901234567890123456789", "abcdefghijabcdefghijabcdefghijabcdefghij"
    local app = assert(appstart.start { argv = { F, "lines=1:400:" .. a, "waitfile=" .. go, "lines=1:400:" .. b,
      "exit=0" }, ready = "none", stdout = { file = dir .. "/app.log", max_bytes = 20000, keep = 1 }, log = log })
    held.app = app
    local function lost() return (lost_bytes(logged)) end
    lu.assertTrue(S.await_with_sleep(function() return lost() > 0 end, 5), table.concat(logged, "\n"))
    os.remove(dir .. "/filler")
    S.touch(go)
    lu.assertEquals(app:wait(5), { code = 0 })
    local total = 0
    for _, text in ipairs { a, b } do
      for i = 1, 400 do total = total + #text + #tostring(i) + 1 end
    end
    local kept = 0
    for _, name in ipairs { "app.log", "app.log.1" } do
      local content = S.read(dir .. "/" .. name) or ""
      lu.assertTrue(#content <= 20000, name .. ": " .. #content .. " bytes")
      lu.assertTrue(content == "" or content:sub(-1) == "\n", name .. " ends inside a line")
      for line in content:gmatch("([^\n]*)\n") do
        lu.assertNotNil(line:match("^" .. a .. "%d+$") or line:match("^" .. b .. "%d+$"), name .. ": " .. line)
      end
      kept = kept + #content
    end
    lu.assertEquals(kept + lost(), total, table.concat(logged, "\n"))
  end)
end

-- A full disk at a rotation that carries a line into the fresh file: the
-- file is made, the copy fails; once there is room again the stream is
-- written to that file (its output was dropped for good: the fresh file,
-- the launcher's own, empty, was taken for someone else's).
function TF.test_a_full_disk_at_a_rotation_that_carries_a_line_goes_on_once_there_is_room()
  on_a_small_tmpfs("fullcarry", function(dir, held)
    local go1, go2 = S.tmpname("go"), S.tmpname("go")
    local logged, log = S.recorder()
    local app = assert(appstart.start { argv = { F, "line=1:x", "bytes=1:3000:a", "waitfile=" .. go1, "bytes=1:3000:b",
      "line=1:", "waitfile=" .. go2, "lines=1:5:c", "exit=0" }, ready = "none",
      stdout = { file = dir .. "/out.log", max_bytes = 5000, keep = 3 }, log = log })
    held.app = app
    -- the first 3 KB written (and read: the file holds them), then the disk full
    lu.assertTrue(S.await_with_sleep(function() app:tail(); return #(S.read(dir .. "/out.log") or "") == 3002 end, 5))
    os.execute("head -c 65536 /dev/zero > " .. dir .. "/filler 2>/dev/null")
    S.touch(go1)
    lu.assertTrue(S.await_with_sleep(function() app:tail(); return lost_bytes(logged) > 0 end, 5),
      table.concat(logged, "\n"))
    os.remove(dir .. "/filler")
    S.touch(go2)
    lu.assertEquals(app:wait(5), { code = 0 })
    lu.assertEquals(S.read(dir .. "/out.log"), "c1\nc2\nc3\nc4\nc5\n", table.concat(logged, "\n"))
  end)
end

-- app:tail() reads the pipes, and logs what was lost as any read does:
-- once a second at most (each tail() logged it again, at every call).
function TF.test_bytes_lost_are_logged_once_a_second_also_when_tail_reads()
  local before = S.snapshot()
  local dir = S.tmpname("taildrops")
  assert(os.execute("mkdir -p " .. dir .. "/app.log.1/x"))
  local logged, log = S.recorder()
  local app = assert(appstart.start { argv = { "/bin/sh", "-c", "while :; do echo a-line-of-output; sleep 0.02; done" },
    ready = "none", stdout = { file = dir .. "/app.log", max_bytes = 20 }, log = log })
  local function warnings() return select(2, lost_bytes(logged)) end
  local t0 = S.core.now()
  while S.core.now() - t0 < 0.6 do
    app:tail()
    S.core.wait_readable(-1, 0.01)
  end
  local took = S.core.now() - t0
  lu.assertTrue(warnings() >= 1 and warnings() <= 1 + took, warnings() .. " warnings in " .. took .. " s")
  app:terminate()
  app:close() -- (its last sleep(1) may hold the pipe a moment)
  S.assert_clean(before)
end

function TF.test_a_symbolic_link_or_a_hard_link_is_never_written_through()
  local before = S.snapshot()
  local dir = S.tmpname("links")
  assert(os.execute("mkdir " .. dir))
  local target = dir .. "/precious"
  local f = assert(io.open(target, "w"))
  f:write("keep me\n")
  f:close()
  assert(os.execute(string.format("ln -s %s %s/sym.log && ln %s %s/hard.log", target, dir, target, dir)))
  for _, name in ipairs { "sym.log", "hard.log" } do
    local app, err = appstart.start { argv = { F, "line=1:overwritten", "line=3:up", "pause" }, ready = "fd",
      stdout = { file = dir .. "/" .. name }, log = S.quiet }
    lu.assertNil(app)
    lu.assertEquals(err.code, "spawn")
    lu.assertStrContains(err.message, name)
    lu.assertEquals(S.read(target), "keep me\n")
  end
  S.assert_clean(before)
end

function TF.test_keep_0_empties_the_file_and_a_line_longer_than_the_file_is_cut()
  local before = S.snapshot()
  local path = S.tmpname("keep0")
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:9:a", "bytes=1:25:x", "line=1:", "line=1:end",
    "exit=0" }, ready = "fd", stdout = { file = path, max_bytes = 10, keep = 0 } })
  app:wait()
  app:close()
  -- "a1".."a9" (3 bytes each) went three to a file; the 25 x's, one line
  -- longer than a file, were cut at 10 bytes twice; their last 5 and
  -- "end" fill the last file to its 10 bytes
  lu.assertEquals(S.read(path), "xxxxx\nend\n")
  lu.assertNil(S.read(path .. ".1"))
  S.assert_clean(before)
end

function TF.test_a_rotation_replaces_a_symbolic_link_never_writes_through_it()
  local before = S.snapshot()
  local dir = S.tmpname("rotlink")
  assert(os.execute("mkdir " .. dir))
  local target = dir .. "/precious"
  local f = assert(io.open(target, "w"))
  f:write("keep me\n")
  f:close()
  -- the app's user, owning the directory, plants links where a rotation goes
  assert(os.execute(string.format("ln -s %s %s/app.log.1 && ln -s %s %s/app.log.2", target, dir, target, dir)))
  local app = assert(appstart.start { argv = { F, "line=3:up", "lines=1:30:l", "exit=0" }, ready = "fd",
    stdout = { file = dir .. "/app.log", max_bytes = 20, keep = 2 } })
  app:wait()
  app:close()
  lu.assertEquals(S.read(target), "keep me\n")
  for _, name in ipairs { "app.log", "app.log.1", "app.log.2" } do
    lu.assertTrue(os.execute("test -f " .. dir .. "/" .. name .. " && ! test -L " .. dir .. "/" .. name), name)
  end
  lu.assertStrContains(S.read(dir .. "/app.log"), "l30\n")
  S.assert_clean(before)
end

-- A symbolic link, a FIFO or a directory the app's user plants at
-- PATH.keep: a batch of rotations refused every name that was not a
-- regular file, and a read into {max_bytes = 8} went one rotation at a
-- time, each renaming up to keep names: 64 KiB past a link into keep =
-- 1000 took 115 s of the launcher's CPU, and a directory, which stops a
-- rotation, only after keep of them. A link or a FIFO is now moved and
-- replaced as a file is (never opened, nor written through); past a
-- directory a read makes one rotation, the rest of it lost and said so.
-- Its work is measured against the same read with nothing planted (its
-- CPU, a ratio: no timing): at most keep renames a read, as the README
-- says, whatever max_bytes. The link's and the FIFO's files end as with
-- nothing planted; past the directory every byte is in a file or lost.
function TF.test_a_name_planted_among_the_rotated_files_costs_a_read_at_most_keep_renames()
  local before = S.snapshot()
  local keep, data = 500, string.rep("a\n", 4096) -- (1,024 files' worth)
  local function run(plant)
    local dir = S.tmpname("planted")
    assert(os.execute("mkdir " .. dir))
    local path = dir .. "/app.log"
    write_file(dir .. "/precious", "keep me\n")
    if plant then assert(os.execute(plant:format(path .. "." .. keep))) end
    local logged, log = S.recorder()
    local cpu = os.clock()
    -- (one write: one read of 8 KiB, 1,023 rotations)
    local app = assert(appstart.start { argv = { F, "write=1:" .. data, "exit=0" }, ready = "none", log = log,
      stdout = { file = path, max_bytes = 8, keep = keep } })
    lu.assertEquals(app:wait(60), { code = 0 })
    app:close()
    cpu = os.clock() - cpu
    lu.assertEquals(S.read(dir .. "/precious"), "keep me\n", plant)
    local kept = 0
    for i = 0, keep do
      local name = i == 0 and path or path .. "." .. i
      local content = S.read(name)
      if content and os.execute("test -f " .. name .. " && ! test -L " .. name) then
        lu.assertTrue(#content <= 8 and content:find("^[a\n]*$") and content:sub(-1) == "\n", name)
        kept = kept + #content
      end
    end
    return cpu, kept, lost_bytes(logged), table.concat(logged, "\n")
  end
  local clean, kept, lost = run()
  lu.assertEquals({ kept, lost }, { (keep + 1) * 8, 0 }, "the last keep + 1 files")
  for _, plant in ipairs { "ln -s precious %s", "mkfifo %s", "mkdir %s" } do
    local cpu, planted_kept, planted_lost, logged = run(plant)
    -- (here: 30 to 150 ms with nothing planted, planted 2 to 6 s before)
    lu.assertTrue(cpu < 10 * clean + 0.1, string.format("%s: %.3f s of CPU, %.3f s with nothing planted", plant, cpu,
      clean))
    if plant:find("mkdir") then
      -- (none rotated off the end: the directory stops them before)
      lu.assertEquals(planted_kept + planted_lost, #data, logged)
      lu.assertStrContains(logged, "bytes of output not written to its file: Is a directory")
    else
      lu.assertEquals({ planted_kept, planted_lost }, { kept, 0 }, plant .. ": " .. logged)
    end
  end
  S.assert_clean(before)
end

function TF.test_an_app_run_as_another_user_is_captured_and_its_file_is_the_launchers()
  lu.skipIf(S.proc_status("self").Uid:match("^(%d+)") ~= "0", "needs root")
  local before = S.snapshot()
  local path = S.tmpname("asuser")
  local seen = {}
  local app = assert(appstart.start { argv = { F, "line=1:as nobody", "line=2:to the file", "notify=READY=1", "exit=0" },
    user = "nobody", stdout = "capture", stderr = { file = path },
    on_output = function(_, _, l) seen[#seen + 1] = l end })
  app:wait()
  app:close()
  lu.assertEquals(seen, { "as nobody" })
  lu.assertEquals(S.read(path), "to the file\n")
  lu.assertTrue(os.execute("test \"$(stat -c %U " .. path .. ")\" = root"), "the file is the launcher's")
  S.assert_clean(before)
end

-- syslog: a real syslog daemon (rsyslogd) on a socket of this spec's own

local TS = {}

function TS.tearDown() S.kill_strays() end

local function start_rsyslogd(dir)
  local conf = dir .. "/rsyslog.conf"
  local f = assert(io.open(conf, "w"))
  f:write(string.format([[
global(workDirectory="%s")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%s/log" UsePIDFromSystem="off")
template(name="line" type="string" string="%%syslogtag%%|%%pri-text%%|%%msg%%\n")
*.* action(type="omfile" file="%s/messages" template="line")
]], dir, dir, dir))
  f:close()
  local daemon = assert(appstart.start { argv = { "rsyslogd", "-n", "-f", conf, "-i", dir .. "/pid" },
    ready = "none", stdout = "null", stderr = "capture" })
  -- rsyslogd speaks no readiness protocol: its socket is its readiness
  local deadline = now() + 5
  while not S.read(dir .. "/pid") or not os.execute("test -S " .. dir .. "/log") do
    if now() > deadline then
      local said = table.concat(daemon:tail(), "\n")
      daemon:terminate()
      daemon:close()
      error("rsyslogd did not come up: " .. said)
    end
    appstart.sleep(0.005)
  end
  return daemon
end

-- What the daemon has written to dir/messages once it holds n lines (or
-- the deadline has passed).
local function logged_lines(dir, n, deadline)
  local got
  repeat
    appstart.sleep(0.01)
    got = S.read(dir .. "/messages") or ""
  until select(2, got:gsub("\n", "")) >= n or now() > deadline
  return got
end

function TS.test_lines_go_to_a_real_syslog_daemon_tagged_with_program_and_pid()
  local before = S.snapshot()
  local dir = S.tmpname("syslog")
  assert(os.execute("mkdir " .. dir))
  local daemon = start_rsyslogd(dir)
  local saved = appstart.syslog_socket
  appstart.syslog_socket = dir .. "/log"
  local app = assert(appstart.start { argv = { F, "line=1:hello from stdout", "line=2:trouble on stderr",
    "line=3:up", "pause" }, ready = "fd", stdout = "syslog", stderr = "syslog" })
  -- a program whose name has a blank in it: the daemon would take what
  -- comes before it for the program, the rest for the message
  local spaced = dir .. "/my prog:x"
  assert(os.execute(string.format("cp %s %s", S.shell_quote(F), S.shell_quote(spaced))))
  local other = assert(appstart.start { argv = { spaced, "line=1:spaced", "line=3:up", "pause" }, ready = "fd",
    stdout = "syslog" })
  -- and one with a control character (a tab): '_' too, not the escape
  -- the launcher's own log lines write it with
  local tabbed = dir .. "/x\ty"
  assert(os.execute(string.format("cp %s %s", S.shell_quote(F), S.shell_quote(tabbed))))
  local third = assert(appstart.start { argv = { tabbed, "line=1:tabbed", "line=3:up", "pause" }, ready = "fd",
    stdout = "syslog" })
  appstart.syslog_socket = saved
  local pid = app.pid
  local got = logged_lines(dir, 4, now() + 5)
  for _, a in ipairs { app, other, third } do
    a:terminate()
    a:close()
  end
  daemon:terminate()
  daemon:close()
  local lines = S.lines(got)
  table.sort(lines)
  lu.assertEquals(lines, {
    string.format("fixture[%d]:|user.err| trouble on stderr", pid),
    string.format("fixture[%d]:|user.info| hello from stdout", pid),
    string.format("my_prog_x[%d]:|user.info| spaced", other.pid),
    string.format("x_y[%d]:|user.info| tabbed", third.pid),
  })
  S.assert_clean(before)
end

-- Through a helper (here argv itself forks the daemon and reports its
-- pid, 0.3 s later), a line read before the app's pid is known is tagged
-- PROGRAM alone, whoever wrote it (it was tagged with the helper's pid:
-- the daemon's own line, as an app of `user =` writes at once, was
-- another process's); the daemon's line after, with its pid. So with
-- ready.forks, whose pid file names the daemon once the process started
-- has exited.
function TS.test_through_a_helper_lines_before_the_pid_is_known_carry_no_pid()
  local before = S.snapshot()
  -- opts started with its syslog lines going to a daemon of their own,
  -- the go file made once it is up: the two lines logged, and its pid
  local function logged(opts, go)
    local dir = S.tmpname("syslog")
    assert(os.execute("mkdir " .. dir))
    local daemon = start_rsyslogd(dir)
    local saved = appstart.syslog_socket
    appstart.syslog_socket = dir .. "/log"
    opts.stdout = "syslog"
    local app = assert(appstart.start(opts))
    appstart.syslog_socket = saved
    assert(io.open(go, "w")):close()
    local got = logged_lines(dir, 2, now() + 5)
    app:terminate()
    app:close()
    daemon:terminate()
    daemon:close()
    return S.lines(got), app.pid
  end
  local go = S.tmpname("go")
  local lines, pid = logged({ argv = { F, "fork", "line=1:at once", "waitfile=" .. go, "line=1:later", "pause",
    "|", "sleep=0.3", "int32=3:child", "exit=0" }, helper = true, ready = "none" }, go)
  lu.assertEquals(lines, { "fixture:|user.info| at once", string.format("fixture[%d]:|user.info| later", pid) })
  -- so with ready.forks, until the pid file has named the daemon
  go = S.tmpname("go2")
  local pid_file = S.tmpname("daemon.pid")
  lines, pid = logged({ argv = { F, "fork", "line=1:daemon at once", "pidfile=" .. pid_file, "waitfile=" .. go,
    "line=1:daemon later", "pause", "|", "sleep=0.3", "exit=0" }, ready = { forks = true, pid_file = pid_file } }, go)
  lu.assertEquals(lines, { "fixture:|user.info| daemon at once",
    string.format("fixture[%d]:|user.info| daemon later", pid) })
  S.assert_clean(before)
end

function TS.test_the_syslog_tag_follows_a_mainpid_move()
  -- inside a loop the notify socket is read after ready: MAINPID= moves
  -- the app to its child, whose lines are then tagged with its pid. Both
  -- wait for the spec to have seen the move (the go file); the old main
  -- then exits.
  local before = S.snapshot()
  local dir = S.tmpname("syslog")
  assert(os.execute("mkdir " .. dir))
  local go = S.tmpname("go")
  local got, first, second
  appstart.run(function()
    local daemon = start_rsyslogd(dir)
    local saved = appstart.syslog_socket
    appstart.syslog_socket = dir .. "/log"
    local app = assert(appstart.start { argv = { F, "notify=READY=1", "line=1:from the first main", "fork",
      "waitfile=" .. go, "line=1:from the new main", "pause", "|", "mainpid=child", "waitfile=" .. go, "exit=0" },
      stdout = "syslog" })
    appstart.syslog_socket = saved
    first = app.pid
    local deadline = now() + 5
    while app.pid == first and now() < deadline do appstart.sleep(0.01) end
    second = app.pid
    assert(io.open(go, "w")):close()
    got = logged_lines(dir, 2, deadline)
    app:terminate()
    app:close()
    daemon:terminate()
    daemon:close()
  end)
  lu.assertNotEquals(second, first, "MAINPID= moved the app")
  lu.assertEquals(S.lines(got), {
    string.format("fixture[%d]:|user.info| from the first main", first),
    string.format("fixture[%d]:|user.info| from the new main", second),
  })
  S.assert_clean(before)
end

function TS.test_syslog_lines_lost_when_no_daemon_listens_are_counted_and_nothing_blocks()
  local before = S.snapshot()
  local logged, log = S.recorder()
  local saved, path = appstart.syslog_socket, S.tmpname("nobody-listens")
  appstart.syslog_socket = path
  local app = assert(appstart.start { argv = { F, "line=3:up", "sleep=0.05", "lines=1:3:x", "exit=0" }, ready = "fd",
    stdout = "syslog", log = log })
  appstart.syslog_socket = saved -- (the socket its lines went to is named, not the setting now)
  app:wait()
  app:close()
  -- (and why: no daemon there)
  lu.assertStrContains(table.concat(logged, "\n"), "fixture: 3 output lines not taken by syslog (" .. path
    .. ": No such file or directory)")
  lu.assertEquals(app:tail(), { "x1", "x2", "x3" })
  S.assert_clean(before)
end

-- A flood of short lines to syslog, inside a loop: each wake-up's sends
-- are bounded by its slice, as on_output's calls are (the clock was
-- looked at between chunks only: a chunk of "y" lines, 32,768 datagrams,
-- held every other task ten slices long).
function TS.test_a_syslog_flood_holds_the_loop_a_slice_at_a_time()
  local before = S.snapshot()
  local dir = S.tmpname("syslog")
  assert(os.execute("mkdir " .. dir))
  local mark = S.tmpname("written")
  local worst, written
  appstart.run(function()
    local daemon = start_rsyslogd(dir)
    local saved = appstart.syslog_socket
    appstart.syslog_socket = dir .. "/log"
    local stop, worst_now = ticker()
    local app = assert(appstart.start { argv = { "/bin/sh", "-c", "yes | head -c " .. 4000000 // SCALE
      .. "; : > " .. mark .. "; exec sleep 60" }, ready = "none", stdout = "syslog", log = S.quiet })
    appstart.syslog_socket = saved
    -- the flood written (the pipe may hold a last MiB of it): the ticks
    -- so far, before the app's end, whose reads take what is left at once
    -- (nor app:tail, which reads what the pipe holds)
    local deadline = now() + 60
    repeat
      appstart.sleep(0.01)
      written = S.read(mark) ~= nil
    until written or now() > deadline
    worst = worst_now(2)
    stop()
    app:terminate()
    app:close()
    daemon:terminate()
    daemon:close()
  end)
  lu.assertTrue(written, "the app wrote its lines")
  -- a slice (0.01 s) and a turn's own work (two slices between ticks,
  -- 0.021 s, in runs of 2026-12-06), where one chunk's 32,768 sends held
  -- it 0.1 s at every chunk; the second worst tick, so that one tick the
  -- host took (a CPU clock of a shared machine's may count its stolen
  -- time) is not a failure, as it was once in many runs
  if not INSTRUMENTED then
    lu.assertTrue(worst < 0.06, string.format("the loop worked %.3f s of CPU between two ticks (twice or more)",
      worst))
  end
  S.assert_clean(before)
end

-- An app whose every line syslog refuses, line after line for over a
-- second, read as it writes (inside a loop): the launcher says so once a
-- second at most, and the counts add up to every line lost.
function TS.test_lost_syslog_lines_are_logged_once_a_second_at_most()
  local logged, log = S.recorder()
  local saved = appstart.syslog_socket
  appstart.syslog_socket = S.tmpname("nobody-listens")
  local app
  local took = S.timed(appstart.run, function()
    app = assert(appstart.start { argv = { "/bin/sh", "-c",
      "i=0; while [ $i -lt 150 ]; do echo line $i; i=$((i+1)); sleep 0.01; done" }, ready = "none",
      stdout = "syslog", log = log })
    appstart.syslog_socket = saved
    app:wait()
  end)
  appstart.syslog_socket = saved
  local lines, lost = 0, 0
  for _, e in ipairs(logged) do
    local n = e:match("(%d+) output lines? not taken by syslog")
    if n then lines, lost = lines + 1, lost + tonumber(n) end
  end
  lu.assertEquals(lost, 150)
  -- 150 lines 10 ms apart take 1.5 s at least (longer on a loaded
  -- machine, each sleep a fork): the first loss said at once, then one
  -- line a second at most, and the rest at the end; one a line would be
  -- 150
  lu.assertTrue(lines >= 2 and lines <= 2 + math.floor(took), string.format("%d lines about lost lines in %.2f s:\n%s",
    lines, took, table.concat(logged, "\n")))
end

-- memory and loops

local TM = {}

function TM.tearDown() S.kill_strays() end

-- Run argv to its end under appstart.run, counting its lines, while a
-- ticker task notes its lateness: lines, bytes, the worst tick, RSS growth.
local function flood(argv, opts)
  collectgarbage()
  local rss0, hwm0 = memory()
  local lines, bytes, worst, how = 0, 0, nil, nil
  appstart.run(function()
    local stop
    stop, worst = ticker()
    local o = { argv = argv, ready = "none", stdout = "capture",
      on_output = function(_, _, l) lines, bytes = lines + 1, bytes + #l end }
    for k, v in pairs(opts or {}) do o[k] = v end
    local app = assert(appstart.start(o))
    how = app:wait()
    app:close()
    stop()
  end)
  collectgarbage()
  local rss1, hwm1 = memory()
  return lines, bytes, worst(), how, rss1 - rss0, hwm1 - hwm0
end

-- A long appstart.run of short-lived apps whose output the launcher reads
-- (each one's reader and ring, 70 to 135 KB): an app the run has seen end
-- is let go at once, not held (with its buffers) until the count of those
-- it holds doubles from 64, which took the heap to 9 MB and more.
function TM.test_a_run_lets_go_of_each_app_it_has_seen_end()
  local before = S.snapshot()
  collectgarbage()
  local base, most = collectgarbage("count"), 0
  appstart.run(function()
    for _ = 1, 100 do
      local app = assert(appstart.start { argv = { F, "echo=hi", "line=3:up", "pause" }, ready = "fd",
        stdout = "capture", on_output = function() end, kill_grace = 0.5 })
      app:terminate()
      collectgarbage()
      most = math.max(most, collectgarbage("count"))
    end
  end)
  lu.assertTrue(most - base < 2000, string.format("the Lua heap grew by %.0f KB", most - base))
  S.assert_clean(before)
end

function TM.test_100_mb_without_a_newline_keeps_memory_bounded_and_nothing_blocks()
  local before = S.snapshot()
  local size = 100000000 // SCALE
  local lines, bytes, worst, how, rss, hwm = flood({ F, "bytes=1:" .. size .. ":z", "exit=0" })
  lu.assertEquals(how, { code = 0 })
  lu.assertEquals(bytes, size)
  lu.assertEquals(lines, math.ceil(size / 4096))
  assert_bounded(worst, rss, hwm)
  S.assert_clean(before)
end

function TM.test_a_million_short_lines_keep_memory_bounded()
  local before = S.snapshot()
  local n = 1000000 // SCALE
  local lines, _, worst, how, rss, hwm = flood({ F, "lines=1:" .. n .. ":", "exit=0" })
  lu.assertEquals(how, { code = 0 })
  lu.assertEquals(lines, n)
  assert_bounded(worst, rss, hwm)
  S.assert_clean(before)
end

function TM.test_a_plain_script_reads_a_flood_at_every_wait()
  local before = S.snapshot()
  collectgarbage()
  local _, hwm0 = memory()
  local lines = 0
  local size = 30000000 // SCALE
  local app = assert(appstart.start { argv = { F, "bytes=1:" .. size .. ":q", "line=1:", "exit=0" }, ready = "none",
    stdout = "capture", on_output = function() lines = lines + 1 end })
  lu.assertEquals(app:wait(30), { code = 0 }, "the app was not held up")
  app:close()
  local _, hwm1 = memory()
  lu.assertEquals(lines, math.ceil(size / 4096))
  assert_bounded(0, 0, hwm1 - hwm0)
  S.assert_clean(before)
end

function TM.test_lines_come_under_cqueues_while_nothing_waits_on_the_app()
  local cqueues = require "cqueues"
  local before = S.snapshot()
  local cq = cqueues.new()
  local seen, exited = {}, false
  cq:wrap(function()
    local app = assert(appstart.start { argv = { F, "line=3:up", "sleep=0.05", "lines=1:" .. FLOOD .. ":cq", "exit=0" },
      ready = "fd", stdout = "capture", on_output = function(_, _, l) seen[#seen + 1] = l end,
      on_exit = function() exited = true end })
    while not exited do cqueues.sleep(0.01) end
    app:close()
  end)
  assert(cq:loop())
  lu.assertEquals(#seen, FLOOD)
  lu.assertEquals({ seen[1], seen[FLOOD // 2], seen[FLOOD] }, { "cq1", "cq" .. FLOOD // 2, "cq" .. FLOOD })
  cq = nil -- luacheck: ignore
  collectgarbage()
  S.assert_clean(before)
end

function TM.test_lines_come_under_luv_while_nothing_waits_on_the_app()
  local uv = require "luv"
  require "appstart.luv"
  local before = S.snapshot()
  local seen = {}
  coroutine.wrap(function()
    assert(appstart.start { argv = { F, "line=3:up", "sleep=0.05", "lines=1:" .. FLOOD .. ":uv", "exit=0" },
      ready = "fd", stdout = "capture", on_output = function(_, _, l) seen[#seen + 1] = l end,
      on_exit = function(a) a:close() end })
  end)()
  uv.run()
  lu.assertEquals(#seen, FLOOD)
  lu.assertEquals({ seen[1], seen[FLOOD // 2], seen[FLOOD] }, { "uv1", "uv" .. FLOOD // 2, "uv" .. FLOOD })
  S.assert_clean(before)
end

return { TestOutputCapture = TC, TestOutputFile = TF, TestOutputSyslog = TS, TestOutputMemory = TM }
