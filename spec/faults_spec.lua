--- The fault matrix: every way a helper, an app or the launcher itself can
-- fail during the handshake. Each case asserts the error code, that it was
-- detected in bounded time, and that nothing is left behind.
local lu = require "luaunit"
local S = require "support"

local core = S.core
local F = S.fixture
local now = core.now

local EMFILE = 24

--- `start` fills in a ready channel on fd 3 and short timeouts;
-- `fail_case(opts, code, bound, cleanup)`: see S.starter.
local start, fail_case = S.starter { ready = "fd", ready_timeout = 3, pid_timeout = 3, kill_grace = 0.2 }
local await_gone, pid_in = S.await_gone, S.pid_in

--- A fake helper that reports `value` (int32le) on fd 3 and exits 0.
local function reports(value)
  return { helper = { F, "int32=3:" .. value, "exit=0" }, argv = { "pause" } }
end

-------------------------------------------------------------------------------
-- the helper

local Helper = {}

function Helper.tearDown() S.kill_strays() end

-- a helper that ends without reporting a pid
for name, action in pairs {
  test_exits_0_without_a_pid = "exit=0",
  test_exits_non_zero = "exit=5",
  test_killed_by_a_signal = "signal=KILL",
} do
  Helper[name] = function() fail_case({ helper = { F, action }, argv = { "pause" } }, "helper") end
end

function Helper.test_writes_a_pid_then_exits_non_zero()
  -- the pid is its child's, and the helper says it failed: the app goes
  local pidfile = S.tmpname("app")
  fail_case({ helper = { F, "fork", "pidfile=" .. pidfile, "pause", "|", "waitfile=" .. pidfile,
    "int32=3:child", "exit=1" },
    argv = { "pause" } }, "helper", 2, function()
    lu.assertTrue(await_gone(pid_in(pidfile), 1), "app still running")
  end)
end

-- A reported pid whose process has ended already (the helper's child,
-- a zombie when its pid is written): its end is the app's, proven its
-- descendant, not a pid to refuse: the start fails died with its status;
-- with ready = "none" it returns the app, ended.
function Helper.test_reports_the_pid_of_an_app_that_has_already_ended()
  local appstart = require "appstart"
  for _, ready in ipairs { "fd", "none" } do
    local before = S.snapshot()
    local pidfile, go = S.tmpname("ended"), S.tmpname("go")
    local h = appstart.begin { helper = { F, "fork", "pidfile=" .. pidfile, "exit=3", "|", "waitfile=" .. go,
      "int32=3:child", "exit=0" }, argv = { "pause" }, ready = ready, pid_timeout = 5, log = S.quiet }
    local pid
    lu.assertTrue(S.await_with_sleep(function()
      pid = pid or pid_in(pidfile)
      local st = pid and S.proc_status(pid)
      return st ~= nil and st.State:sub(1, 1) == "Z"
    end, 5), ready .. ": the helper's child never ended")
    S.touch(go)
    local app, err = h:wait()
    if ready == "fd" then
      lu.assertNil(app, ready)
      lu.assertEquals(err.code, "died", ready .. ": " .. tostring(err))
      lu.assertEquals(err.status, { code = 3 }, ready)
      lu.assertEquals(err.pid, pid, ready)
    else
      lu.assertNotNil(app, ready .. ": " .. tostring(err))
      lu.assertEquals(app.pid, pid, ready)
      lu.assertEquals(app:wait(0), { code = 3 }, ready)
    end
    S.assert_clean(before, ready)
  end
end

-- a pid report cut short after 1, 2 or 3 of its 4 bytes
for name, bytes in pairs {
  test_writes_1_byte_then_exits = 1,
  test_writes_2_bytes_then_exits = 2,
  test_writes_3_bytes_then_exits = 3,
} do
  Helper[name] = function()
    fail_case({ helper = { F, "int32part=3:12345:" .. bytes, "exit=0" }, argv = { "pause" } }, "bad_pid")
  end
end

-- a pid that cannot be the app's; were the launcher's own ("parent")
-- signalled, this test would not be here to fail
for name, value in pairs {
  test_reports_pid_0 = "0",
  test_reports_pid_minus_1 = "-1",
  test_reports_pid_1 = "1",
  test_reports_its_own_pid = "self",
  test_reports_the_launchers_pid = "parent",
  test_reports_a_huge_pid = "2147483647",
} do
  Helper[name] = function() fail_case(reports(value), "bad_pid") end
end

function Helper.test_reports_a_dead_pid()
  local app = assert(start { argv = { F, "exit=0" }, ready = "none" })
  lu.assertEquals(app:wait(3), { code = 0 })
  local dead = app.pid
  lu.assertFalse(S.alive(dead))
  fail_case(reports(tostring(dead)), "bad_pid")
end

--- Wait until the clock (in the ticks of /proc/PID/stat) has moved past the
-- start of pid, so a process started now starts strictly later than it.
local function await_tick_after(pid)
  local stat = S.read("/proc/" .. pid .. "/stat")
  local fields = stat:match("%) (.*)$")
  local i, start_ticks = 2, nil -- field 3 comes first after "comm)"
  for f in fields:gmatch("%S+") do
    i = i + 1
    if i == 22 then start_ticks = tonumber(f) end
  end
  local deadline = now() + 1
  repeat
    local up = tonumber(S.read("/proc/uptime"):match("^[%d.]+"))
    if up * 100 >= start_ticks + 3 then return end
    core.wait_readable(-1, 0.005)
  until now() > deadline
  error("the clock did not move past pid " .. pid)
end

function Helper.test_reports_an_older_unrelated_process_which_is_not_signalled()
  local before = S.snapshot()
  local older = assert(io.popen("echo $$; exec sleep 30"))
  local pid = tonumber(older:read("l"))
  local ok, failure = pcall(function()
    await_tick_after(pid)
    local took, app, err = S.timed(start, reports(tostring(pid)))
    lu.assertNil(app, "an older process was taken for the app")
    lu.assertEquals(err.code, "bad_pid", tostring(err))
    lu.assertTrue(took < 2, "detected after " .. took .. " s")
    lu.assertEquals(S.children(), { pid }, "only the older process is left")
    -- alive, not stopped, no signal pending
    local st = S.proc_status(pid)
    lu.assertTrue(S.alive(pid), "the older process was killed")
    lu.assertStrMatches(st.State, "^S.*")
    lu.assertEquals(st.SigPnd, "0000000000000000")
    lu.assertEquals(st.ShdPnd, "0000000000000000")
  end)
  os.execute("kill " .. pid)
  older:close()
  if not ok then error(failure, 0) end
  S.assert_clean(before)
end

function Helper.test_hangs_without_writing_is_killed_after_pid_timeout()
  -- a helper still running would be a stray fixture: fail_case checks that
  local _, took = fail_case({ helper = { F, "pause" }, argv = { "pause" }, pid_timeout = 0.3 }, "helper", 2.5)
  lu.assertTrue(took >= 0.3, "gave up after " .. took .. " s")
end

function Helper.test_writes_the_pid_then_hangs_and_the_app_is_terminated()
  local app_pidfile, helper_pidfile = S.tmpname("app"), S.tmpname("helper")
  local _, took = fail_case({
    helper = { F, "fork", "pidfile=" .. app_pidfile, "line=4:ready-anyway", "pause", "|",
      "pidfile=" .. helper_pidfile, "waitfile=" .. app_pidfile, "int32=3:child", "pause" },
    argv = { "pause" }, pid_timeout = 0.3,
  }, "helper", 2.5)
  lu.assertTrue(took >= 0.3, "gave up after " .. took .. " s")
  lu.assertFalse(S.alive(pid_in(app_pidfile)), "app still running")
  lu.assertFalse(S.alive(pid_in(helper_pidfile)), "helper still running")
end

-- The helper (or a forking daemon's started process) reaped by another
-- wait of the launcher's process, as a waitpid(-1) elsewhere in it would
-- (here: by its pid, as soon as it has exited, before the start is stepped
-- again): its exit status, which says whether it did its part, is lost,
-- and its pid is free. The start fails at once, code "helper", the app it
-- reported terminated (it spun at full CPU until a 10 s deadline, then
-- said the helper had not exited).
local function stolen_helper(opts, app_pidfile, says, code)
  local appstart = require "appstart"
  local before = S.snapshot()
  local spawned
  opts.log = function(_, message) spawned = spawned or tonumber(message:match("spawned pid (%d+)")) end
  opts.kill_grace = 0.2
  local h = appstart.begin(opts)
  lu.assertNotNil(spawned, "no spawned pid logged")
  local deadline = now() + 5
  while not S.testing.reap_zombie(spawned) do
    lu.assertTrue(now() < deadline, "the helper never exited")
    core.wait_readable(-1, 0.005)
  end
  local t0 = now()
  local app, err = h:wait()
  local took = now() - t0
  lu.assertNil(app)
  lu.assertEquals(err.code, code or "helper", tostring(err))
  lu.assertStrContains(err.message, says)
  lu.assertStrContains(err.message, "was reaped by another wait of this process")
  lu.assertTrue(took < 2, "failed after " .. took .. " s")
  if app_pidfile then lu.assertTrue(await_gone(pid_in(app_pidfile), 1), "app still running") end
  S.assert_clean(before)
  return err
end

function Helper.test_reaped_elsewhere_after_its_report_fails_at_once_and_the_app_is_terminated()
  for _, ready in ipairs { "fd", "none", "notify" } do
    local app_pidfile = S.tmpname("app")
    stolen_helper({ helper = { F, "fork", "pidfile=" .. app_pidfile, "pause", "|", "waitfile=" .. app_pidfile,
      "int32=3:child", "exit=0" }, argv = { "pause" }, ready = ready, ready_timeout = ready ~= "none" and 30 or nil },
      app_pidfile, "helper was reaped")
  end
end

function Helper.test_reaped_elsewhere_before_any_report_fails_at_once()
  stolen_helper({ helper = { F, "exit=0" }, argv = { "pause" }, ready = "none", pid_timeout = 30 }, nil,
    "and it reported no pid on fd 3")
end

function Helper.test_a_forking_daemons_started_process_reaped_elsewhere_fails_at_once_and_the_daemon_is_terminated()
  local pid_file = S.tmpname("pidfile")
  stolen_helper({ argv = { F, "fork", "pidfile=" .. pid_file, "pause", "|", "waitfile=" .. pid_file, "exit=0" },
    ready = { forks = true, pid_file = pid_file }, ready_timeout = 30 }, pid_file, "fixture was reaped")
end

-- ... and one that wrote no pid file: its daemon, if any, may write it
-- yet, so it is waited for until ready_timeout, which says so (it said the
-- process had not exited); no pid is named (the lost one is free)
function Helper.test_a_forking_daemons_started_process_reaped_elsewhere_without_a_pid_file_times_out_saying_so()
  local err = stolen_helper({ argv = { F, "exit=0" }, ready = { forks = true, pid_file = S.tmpname("pidfile") },
    ready_timeout = 0.3 }, nil, "no pid came in", "timeout")
  lu.assertNil(err.pid)
end

-------------------------------------------------------------------------------
-- the app

local App = {}

function App.tearDown() S.kill_strays() end

--- A fresh directory for apps that crash: any core file lands there, not
-- in the tree.
local function crash_dir()
  local dir = S.tmpname("crashdir")
  assert(os.execute("mkdir '" .. dir .. "'"))
  return dir
end

function App.test_crashes_before_ready()
  local err = fail_case({ argv = { F, "signal=SEGV" }, cwd = crash_dir() }, "died")
  lu.assertEquals(err.status, { signal = 11 })
end

-- an app that dies before it is ready, or breaks the ready channel and is
-- terminated: the error code and the app's status
for name, case in pairs {
  test_exits_0_before_ready = { argv = { F, "exit=0" }, code = "died", status = { code = 0 } },
  test_exits_non_zero_after_some_time = { argv = { F, "sleep=0.1", "exit=42" }, code = "died", status = { code = 42 } },
  test_closes_the_ready_channel = { argv = { F, "close=3", "pause" }, code = "ready_closed", status = { signal = 15 } },
  test_writes_part_of_a_line_then_closes_the_channel = { argv = { F, "write=3:half a na", "close=3", "pause" },
    code = "ready_closed", status = { signal = 15 } },
  test_writes_a_megabyte_without_newline = { argv = { F, "bytes=3:1048576:x", "pause" },
    code = "protocol", status = { signal = 15 } },
} do
  App[name] = function()
    local err = fail_case({ argv = case.argv }, case.code)
    lu.assertEquals(err.status, case.status)
  end
end

function App.test_never_ready_times_out_and_is_terminated()
  local err, took = fail_case({ argv = { F, "pause" }, ready_timeout = 0.3 }, "timeout", 2.5)
  lu.assertEquals(err.status, { signal = 15 })
  lu.assertTrue(took >= 0.3, "gave up after " .. took .. " s")
end

function App.test_forks_away_and_exits_is_died_with_code_0()
  -- the fork child keeps the ready channel open: no end of file, yet the
  -- app (the pid the launcher spawned) is gone, and that is what counts
  local grandchild = S.tmpname("grandchild")
  local err = fail_case({ argv = { F, "fork", "pidfile=" .. grandchild, "pause", "|", "exit=0" },
    ready_timeout = 5 }, "died", 2, function()
    local pid = pid_in(grandchild)
    lu.assertTrue(S.alive(pid), "the grandchild is the app's, not the launcher's to end")
    os.execute("kill -9 " .. pid)
    lu.assertTrue(await_gone(pid), "grandchild still running")
  end)
  lu.assertEquals(err.status, { code = 0 })
end

function App.test_behind_a_helper_exits_before_its_pid_is_reported_is_died()
  -- the app is the helper's child and exits at once; the helper reports it
  -- a little later, while it is an unreaped zombie of the helper: a real app
  -- that died, not an implausible pid. Once the helper exits, the zombie is
  -- the launcher's (a child subreaper during helper starts): its status is
  -- known.
  local err = fail_case({ helper = { F, "fork", "exit=3", "|", "sleep=0.05", "int32=3:child", "exit=0" },
    argv = { "pause" } }, "died")
  lu.assertEquals(err.status, { code = 3 }, "adopted: the exit status is the launcher's to reap")
end

function App.test_behind_a_helper_dies_after_its_pid_is_known()
  local go = S.tmpname("go")
  local err = fail_case({ helper = { F, "fork", "waitfile=" .. go, "signal=SEGV", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, cwd = crash_dir(), log = S.touch_when_pid_known(go) }, "died")
  lu.assertEquals(err.status, { signal = 11 })
end

function App.test_ignores_SIGTERM_and_gets_SIGKILL_after_the_grace()
  local err, took = fail_case({ argv = { F, "ignore=TERM", "pause" }, ready_timeout = 0.3, kill_grace = 0.3 },
    "timeout", 3)
  lu.assertEquals(err.status, { signal = 9 })
  lu.assertTrue(took >= 0.6, "timeout plus grace took only " .. took .. " s")
end

function App.test_stops_itself_with_SIGSTOP_and_is_still_terminated()
  local err = fail_case({ argv = { F, "signal=STOP" }, ready_timeout = 0.3 }, "timeout", 2.5)
  lu.assertEquals(err.status, { signal = 15 })
  lu.assertEquals(math.type(err.pid), "integer")
  lu.assertFalse(S.alive(err.pid), "app still running")
end

function App.test_two_ready_lines_name_the_app_by_the_first()
  local before = S.snapshot()
  local app, err = start { argv = { F, "line=3:first", "line=3:second", "pause" } }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "first")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

function App.test_two_ready_lines_in_one_write_name_the_app_by_the_first()
  local before = S.snapshot()
  local app, err = start { argv = { F, "write=3:first\\nsecond\\n", "pause" } }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "first")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- the launcher

local Launcher = {}

-- Without pidfds (the fallback), a start cancelled after its helper was
-- reaped elsewhere, before a step noticed, sends its helper's SIGKILL to
-- no process that has taken the helper's pid since (its pid was taken as
-- an unreaped child's, which none may take). (Here, not in the helper's
-- classes: its child forces the fallback itself.)
function Launcher.test_a_start_cancelled_after_its_helper_was_reaped_elsewhere_signals_no_process_that_took_its_pid()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("reuse")
  assert(os.execute("mkdir " .. dir))
  local out = S.run_child({ pidns = true, timeout = 60, env = { D = dir } },
    "faults_a_cancel_without_pidfds_after_the_helper_was_reaped_elsewhere")
  local helper, victim = out:match("helper\t(%d+)"), out:match("victim\t(%d+)")
  lu.assertNotNil(helper, out)
  lu.assertEquals(victim, helper, "the process took the helper's pid: " .. out)
  lu.assertStrContains(out, "\nresult\tcancelled\nvictim\talive\nleft\t\n")
end

function Launcher.tearDown() S.kill_strays() end

-- In a child Lua whose descriptor limit is low: for each number of free
-- descriptors k from 0 up, fill the table, free k, start (without, then
-- with a helper), and print one line: mode, k, outcome, whether the
-- launcher's descriptors are the same after, and its children.
function Launcher.test_descriptor_limit_fails_spawn_with_EMFILE_and_leaks_nothing()
  -- the child inherits LUA_PATH, LUA_CPATH and APPSTART_FIXTURES; 16 leaves
  -- room for the widest layout (a helper, both channels) once enough is free
  -- the notify sockets' directories are made there: none may be left
  local runtime = S.tmpname("runtime")
  assert(os.execute("mkdir -m 755 " .. runtime))
  local text, ok, how, code = S.run_child({ nofile = 16, env = { XDG_RUNTIME_DIR = runtime } },
    "faults_start_at_each_number_of_free_descriptors")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  local rows = { plain = {}, helper = {}, group = {}, notify = {} }
  for line in text:gmatch("[^\n]+") do
    local mode, k, outcome, same, kids, left = line:match("^(%S+)\t(%d+)\t(%S+)\t(%S+)\t(%S+)\t(%d+)$")
    lu.assertNotNil(mode, "unexpected output: " .. line)
    lu.assertEquals(left, "0", "a notify socket's directory was left: " .. line)
    rows[mode][#rows[mode] + 1] = { k = tonumber(k), outcome = outcome, same = same, kids = kids, line = line }
  end
  for _, mode in ipairs { "plain", "helper", "group", "notify" } do
    local list = rows[mode]
    lu.assertTrue(#list >= 2, mode .. ": too few rows:\n" .. text)
    lu.assertEquals(list[1].k, 0)
    lu.assertEquals(list[1].outcome, "spawn:" .. EMFILE, mode .. ": with no descriptor free")
    for _, r in ipairs(list) do
      lu.assertTrue(r.outcome == "spawn:" .. EMFILE or r.outcome == "started", mode .. ": " .. r.line)
      lu.assertEquals(r.same, "same", mode .. ": descriptors left: " .. r.line)
      lu.assertEquals(r.kids, "[]", mode .. ": children left: " .. r.line)
    end
    lu.assertEquals(list[#list].outcome, "started", mode .. ": never started once descriptors were free")
  end
  lu.assertEquals(S.strays(), {})
end

-- What the kill modes need descriptors for, with none free: an app's
-- wait (a kill_mode "cgroup" app's raised EMFILE, making the launcher's
-- poll set; out of descriptors its cgroup cannot be read, so its end is
-- not seen: a timeout, then its end once they are back), and a cgroup
-- start that cannot join its cgroup (it waited 10 s, KILL_WAIT, for the
-- cgroup nothing was spawned into to empty, which it could not read; and
-- left that cgroup, unread, for good or until a later start).
function Launcher.test_the_kill_modes_out_of_descriptors()
  local cgroup = S.own_cgroup_dir() and S.my_cgroups() and "cgroup" or "none"
  if cgroup == "cgroup" then
    local app = require("appstart").start { argv = { F }, ready = "none", kill_mode = "cgroup", log = S.quiet }
    if app then app:wait(3) else cgroup = "none" end
  end
  local text, ok, how, code = S.run_child({ nofile = 32, timeout = 60 }, "faults_tree_waits_out_of_descriptors", cgroup)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  for _, mode in ipairs { "process", "group", cgroup ~= "none" and "cgroup" or nil } do
    local wait = text:match("wait\t" .. mode .. "\t(%S+\t[^\n]*)\n")
    lu.assertNotNil(wait, text)
    lu.assertEquals(wait, mode == "cgroup" and "true\ttimeout" or "true\tkilled by signal 9 (KILL)", mode)
    lu.assertStrContains(text, "after\t" .. mode .. "\tkilled by signal 9 (KILL)\n")
  end
  if cgroup ~= "none" then
    local n = 0
    for k, outcome, took, left, fds in text:gmatch("failed\t(%d+)\t(%S+)\t([%d.]+)\t(%d+)\t(%S+)\n") do
      n = n + 1
      lu.assertTrue(outcome == "spawn:" .. EMFILE or outcome == "started", k .. ": " .. outcome)
      lu.assertTrue(tonumber(took) < 5, k .. " free: " .. outcome .. " after " .. took .. " s")
      -- nothing left of a failed one: its cgroup, made and never joined,
      -- is removed (the kernel refuses a populated one), not kept as if
      -- it could be in use, with its parent's descriptor
      lu.assertEquals({ left, fds }, { "0", "same" }, k .. " free: " .. outcome)
    end
    lu.assertTrue(n >= 2, text)
    lu.assertStrContains(text, "\tstarted\t")
  end
  lu.assertStrContains(text, "children:\t\n")
  lu.assertEquals(S.strays(), {})
end

-- What an app of kill_mode "group" left in its group, looked at while the
-- launcher is out of descriptors (/proc, or a member's files, cannot be
-- opened): that is no empty group. Its member that ignores SIGTERM was
-- taken for gone, and app:terminate() returned at once leaving it running;
-- it now gets SIGKILL once kill_grace has passed, as with descriptors.
function Launcher.test_a_group_that_cannot_be_looked_at_is_not_taken_for_empty()
  local text, ok, how, code = S.run_child({ nofile = 32, timeout = 60 }, "faults_a_group_looked_at_out_of_descriptors")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  local ended, took = text:match("terminated\t([^\t]*)\t([%d.]+)\n")
  lu.assertEquals(ended, "killed by signal 15 (TERM)", text)
  lu.assertTrue(tonumber(took) >= 0.3, text)
  lu.assertStrContains(text, "member\tfalse\n")
  lu.assertEquals(S.strays(), {})
end

-- Readiness looked at while the launcher is out of descriptors: a forking
-- daemon's pid file that cannot be opened, a connect probe's socket, an
-- exec probe's command that cannot be spawned are tries that failed, not
-- a start that failed (the pid file was bad_pid, the daemon left running;
-- the probes protocol, a healthy app killed): once descriptors are back
-- each is ready.
function Launcher.test_readiness_looked_at_out_of_descriptors_waits_for_them()
  local dir = S.tmpname("starved")
  assert(os.execute("mkdir " .. dir))
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "faults_ready_waits_out_a_descriptor_shortage",
    dir)
  local daemon = tonumber(S.read(dir .. "/forks.pid"))
  if daemon and S.alive(daemon) then os.execute("kill -KILL " .. daemon) end
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "forks\tfalse\tnone\tready\nconnect\tfalse\tnone\tready\nexec\tfalse\tnone\tready\n"
    .. "left\ttrue\t\n")
end

-- A ready message from a process that notify_access "all" may admit (a
-- child of the app's), sent while the launcher has no descriptor free
-- (its descent cannot be read), is held, its sender checked again at
-- each step: once descriptors are back it counts (it was refused and
-- logged for good, "/proc is not mounted", and the start timed out); so
-- is one after ready, read again every poll_interval. Meanwhile its
-- channel is out of the waits (what is queued behind the held message
-- woke them again and again, at full CPU).
function Launcher.test_a_ready_message_whose_sender_cannot_be_checked_waits_for_descriptors()
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "faults_a_sender_checked_once_descriptors_are_back")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "notify\tfalse\tready\t0\nfd\tfalse\tready\t0\nwaited\ttimeout\tcalm\theld\tforked gone\n"
    .. "waited\ttimeout\tcalm\theld\tforked gone\n"
    .. "left\ttrue\t\n")
  -- and after ready (a STATUS= from the app's child)
  text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 },
    "faults_a_sender_after_ready_checked_once_descriptors_are_back", S.tmpname("go"))
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "status\tchild2\t0\tcalm\nreload\ttrue\tnil\tcalm\nleft\ttrue\t\n")
  -- the app's own, after a ready taken with no descriptor free (the
  -- start time of its main could not be read then: its datagrams were
  -- refused as a stranger's, and its watchdog killed it)
  text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 },
    "faults_a_main_taken_at_ready_without_descriptors", S.tmpname("go"))
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "status\tafter\tready\t0\nleft\ttrue\t\n")
end

-- An app that gets ready while the launcher has no descriptor free, in a
-- plain script with no poll set made yet, is returned and watched all the
-- same (the start raised "epoll_create1: Too many open files"): its end,
-- with the descriptors still taken, is seen at the calls that wait (its
-- pidfd looked at alone until a poll set can be made). So it is inside
-- appstart.run, whose poll set is made as it begins (an app:terminate()
-- then raised "epoll_create1: Too many open files", the app left
-- running), and under cqueues, whose watch looks at the descriptor
-- itself until it can have a copy of it (the start raised "cannot watch
-- descriptor N: dup: Too many open files"; a supervisor's failed its
-- cq:loop(), the app left running).
function Launcher.test_an_app_ready_with_no_descriptor_left_is_watched_all_the_same()
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "faults_ready_with_no_descriptor_for_the_watch")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "group\tapp\tkilled by signal 9 (KILL)\tkilled by signal 9 (KILL)\n"
    .. "on_exit\tapp\tkilled by signal 9 (KILL)\tkilled by signal 9 (KILL)\n"
    .. "left\ttrue\t\n")
  -- inside appstart.run (its terminate then), under cqueues (the start
  -- itself, and a supervisor's)
  text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "faults_ready_with_no_descriptor_under_run_and_cqueues")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "run\tkilled by signal 9 (KILL)\ncqueues\tkilled by signal 9 (KILL)\n"
    .. "supervisor\ttrue stopped\nreload\ttrue\nleft\ttrue\t\n")
end

-- A coroutine of a cqueues controller that waits for the first time
-- while every descriptor is taken, its app started from the main thread
-- (cqueues loaded, its adapter not yet): the wait is served, yielding to
-- the controller (its app:terminate() raised "module 'appstart.cqueues'
-- not found", the adapter required only then, and a require needs a
-- descriptor). So is a supervisor's first call from such a coroutine.
function Launcher.test_the_first_wait_under_cqueues_in_a_descriptor_shortage_is_served()
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "faults_cqueues_first_wait_in_a_shortage")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "terminate\tkilled by signal 9 (KILL)\tserved\nleft\ttrue\t\n")
  -- a supervisor's first call so (its cq:loop() failed: "module
  -- 'cqueues.condition' not found"): its start fails for want of
  -- descriptors, as any would, and nothing is raised
  text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 },
    "faults_supervisor_first_call_under_cqueues_in_a_shortage")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertStrMatches(text, "up\tnil fixture: [^\n]*Too many open files\nleft\ttrue\t\n")
end

-- A launcher that inherited SIGCHLD ignored (SIG_IGN survives exec: a
-- daemon's wrapper, a shell's trap) has the kernel reap its children,
-- their status lost: a helper's start spun until pid_timeout ("helper did
-- not exit within 10 s", a CPU all along), a plain app's end was "not the
-- launcher's child". A spawn puts SIGCHLD back to the default first.
function Launcher.test_a_launcher_that_inherited_sigchld_ignored_keeps_its_apps_ends()
  local text, ok, how, code = S.run_child({ ignore = "CHLD", timeout = 60 }, "faults_a_launcher_with_sigchld_ignored")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "ignored\ttrue\nplain\texited with code 3\nhelper\tready\tkilled by signal 15 (TERM)\n"
    .. "ignored\tfalse\n")
end

--- A pid the helper reports while the launcher has no descriptor free (no
-- pidfd, no /proc to check it with) is neither trusted nor refused: the
-- start waits, checks it again once descriptors are back, and is ready.
-- (Refused, its app would be left running: a pid not proven is never
-- signalled.) So is one a stop (the start abandoned) reads then: the app
-- is ended once it can be checked. Descriptors that never come back fail
-- it at pid_timeout, saying why.
function Launcher.test_a_reported_pid_is_checked_again_once_descriptors_are_back()
  local dir = S.tmpname("unchecked")
  assert(os.execute("mkdir " .. dir))
  local text, ok, how, code = S.run_child({ nofile = 32, timeout = 60 },
    "faults_a_reported_pid_checked_once_descriptors_are_back", dir)
  local app, app2 = tonumber(S.read(dir .. "/app")), tonumber(S.read(dir .. "/app2"))
  local app3, app4 = tonumber(S.read(dir .. "/app3")), tonumber(S.read(dir .. "/app4"))
  local app3_ran_on = app3 and S.alive(app3)
  for _, pid in ipairs { app or 0, app2 or 0, app3 or 0, app4 or 0 } do
    if pid > 0 and S.alive(pid) then os.execute("kill -KILL " .. pid) end
  end
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertStrContains(text, "stepped\tfalse\tnone\n")
  lu.assertStrContains(text, string.format("ready\t%d\t%d\n", app, app))
  lu.assertStrContains(text, "left\ttrue\t\n")
  -- abandoned while its pid could not be checked: the stop waits, the app
  -- not signalled, and ends it once it can check it (it was left
  -- running): SIGTERM, then SIGKILL a whole kill_grace (1.5 s) after that
  -- SIGTERM, not after the stop began (1 s before)
  lu.assertFalse(app3_ran_on, "the abandoned start's app ran on")
  lu.assertStrContains(text, "abandoned\tfalse\tfalse\ttrue\n")
  lu.assertStrContains(text, string.format("cancelled\tnil\tcancelled\t%d\t9\n", app3))
  local grace = text:match("grace\t([%d.]+)\t15\n\n")
  lu.assertNotNil(grace, text)
  lu.assertTrue(tonumber(grace) >= 1.4, "SIGKILL " .. grace .. " s after the late SIGTERM")
  lu.assertStrContains(text, "left3\ttrue\t\n")
  -- never: given up at the stop's SIGKILL (kill_grace 1 s), not 10 s
  -- later, the app not proven and not signalled
  local took = text:match("given up\t([%d.]+)\ttrue\tcancelled\n")
  lu.assertNotNil(took, text)
  lu.assertTrue(tonumber(took) >= 1 and tonumber(took) < 5, "given up after " .. took .. " s")
  -- descriptors that never came back: the pid deadline, and why
  lu.assertStrContains(text, string.format("unchecked\tnil\thelper\thelper reported pid %d, which could not be"
    .. " checked within 0.5 s: Too many open files\n", app2))
  lu.assertEquals(S.strays(), {})
end

--- The same for a forking daemon's pid, read from its pid file: not
-- proven by ready_timeout, the start fails `timeout` saying which pid
-- could not be checked and why (it said "no pid came"), the daemon left
-- running (the test ends it). The launcher can read the pid file but no
-- other process's /proc/PID/status (procfault.so: what a second thread
-- holding descriptors leaves it).
function Launcher.test_a_pid_files_pid_that_cannot_be_checked_says_so()
  local dir = S.tmpname("unchecked-forks")
  assert(os.execute("mkdir " .. dir))
  local text, ok, how, code = S.run_child({ preload = "procfault.so", env = { APPSTART_PROCFAULT = "status" },
    timeout = 60 }, "faults_a_pid_files_pid_that_cannot_be_checked", dir)
  local daemon = tonumber(S.read(dir .. "/pid"))
  local ran_on = daemon and S.alive(daemon)
  if daemon and ran_on then os.execute("kill -KILL " .. daemon) end
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, string.format("forks\tnil\ttimeout\tapp not ready within 0.5 s: %s/pid named pid %d,"
    .. " which could not be checked: Too many open files\n", dir, daemon))
  lu.assertTrue(ran_on, "the daemon, not proven, was signalled")
  lu.assertEquals(S.strays(), {})
end

return {
  TestFaultsHelper = Helper, TestFaultsApp = App, TestFaultsLauncher = Launcher,
  TestFaultsHelperNoPidfd = S.without_pidfd(Helper), TestFaultsAppNoPidfd = S.without_pidfd(App),
}
