--- What a local attacker tries against the launcher: an app run as another
-- user reaching for the launcher's terminal, a helper that lies about whose
-- pid it reports, the notify socket as a lever on root's cleanup, floods
-- that would fill the log, options that would be silently ignored. Each
-- test performs the attack (or checks the state that makes it impossible)
-- and that nothing is left behind.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F = S.fixture
local q = S.shell_quote

local function need_root()
  if not S.is_root() then lu.skip("needs root (and the user nobody)") end
end

--- appstart.start with short timeouts and a silent logger unless given.
local start, fail_case = S.starter { ready_timeout = 3, pid_timeout = 3, kill_grace = 0.5 }

--- /proc/PID/stat fields after the command name: state, ppid, pgrp,
-- session, tty_nr.
local function stat_of(pid)
  local stat = assert(S.read("/proc/" .. pid .. "/stat"))
  local state, ppid, pgrp, sid, tty = stat:match("%) (%S+) (%d+) (%d+) (%d+) (%-?%d+)")
  return { state = state, ppid = tonumber(ppid), pgrp = tonumber(pgrp), sid = tonumber(sid),
    tty = tonumber(tty) }
end

--- A directory made by root with `mode`.
local function directory(stem, mode)
  local dir = S.tmpname(stem)
  assert(os.execute("mkdir -m " .. mode .. " " .. q(dir)))
  return dir
end

local T = {}

function T.tearDown() S.kill_strays() end

-------------------------------------------------------------------------------
-- 1. no terminal for an app that runs as another user

-- An app run as another user gets no terminal, controlling or not: the
-- launcher's on its stdout (stderr, stdin) let it read what is typed
-- there (keystrokes meant for the launcher's user, a later password), and
-- with a controlling terminal push keystrokes into it (TIOCSTI).
function T.test_an_app_run_as_another_user_gets_no_terminal()
  need_root()
  lu.skipIf(not os.execute("command -v script >/dev/null"), "needs script(1) for a terminal")
  local result, info = directory("out", "1777") .. "/tiocsti", S.tmpname("info")
  -- the launcher runs on a terminal of its own, as root at a shell would
  local out = S.run_child({ tty = true }, "security_no_terminal_for_an_app_of_another_user", result, info)
  lu.assertStrContains(out, "inherited\tspawn\tthe app's stdout would be a terminal, which an app of another user"
    .. " never gets (it could read what is typed there): stdout = \"capture\", \"null\" or a file", false, out)
  lu.assertStrContains(out, "default\t/dev/null\t/dev/null", false, out)
  -- appstart-helper refuses it itself (as a setuid copy, for any caller)
  lu.assertStrMatches(out, ".*helper\t[1-9]%d*\t[^\n]*terminal: descriptor 0 is a terminal, which an app of another"
    .. " user never gets.*")
  lu.assertStrContains(out, "terminated\t15", false, out)
  local pid, sid, tty, stdin = S.read(info):match("^(%d+) (%d+) (%-?%d+) (%S+)\n$")
  lu.assertNotNil(pid, S.read(info))
  lu.assertEquals(sid, pid, "the app leads a session of its own")
  lu.assertEquals(tty, "0", "the app has no controlling terminal")
  lu.assertEquals(stdin, "/dev/null", "stdin defaults to /dev/null with user =")
  for fd = 0, 2 do
    local said = S.read(result .. "." .. fd)
    lu.assertNotNil(said, "fd " .. fd)
    lu.assertNotEquals(said, "ok\n", "TIOCSTI worked on fd " .. fd)
  end
end

-- An app run as another user gets a session keyring of its own: the
-- launcher's (root's Kerberos tickets, mount keys) was the app's to read
-- and to fill (it holds it, so it "possesses" every key in it).
function T.test_an_app_run_as_another_user_has_a_session_keyring_of_its_own()
  need_root()
  local dir = directory("out", "1777")
  local mine, its = dir .. "/keyring.launcher", dir .. "/keyring.app"
  -- the helper's caller in a session keyring of its own, as a login is
  local ok = os.execute(q(F) .. " newkeyring keyring=" .. q(mine) .. " exec " .. q(S.helper)
    .. " --user nobody -- " .. q(F) .. " keyring=" .. q(its) .. " 3>/dev/null </dev/null >/dev/null 2>&1")
  lu.assertTrue(ok)
  local a, b = S.await_file(mine, 3), S.await_file(its, 3)
  lu.assertNotNil(b, "the app wrote nothing")
  lu.skipIf(a == "none\n", "no session keyring here (a kernel without keys)")
  lu.assertNotEquals(b, a, "the app holds the launcher's session keyring")
end

-------------------------------------------------------------------------------
-- 3. pid truth against a helper that lies about someone else

function T.test_a_helper_cannot_point_at_a_root_process_started_just_after_it()
  need_root()
  local before = S.snapshot()
  local go, victim_pidfile = S.tmpname("go"), S.tmpname("victim")
  -- a root process unrelated to the launcher (its parent is a spawner
  -- started before, which init adopted) forks the victim on request
  os.execute(q(F) .. " waitfile=" .. q(go) .. " fork pidfile=" .. q(victim_pidfile) .. " pause '|' pause &")
  -- the helper runs as nobody and waits for the victim's pid, which it
  -- then reports: a root process, started after the helper, not its own
  local h = appstart.begin {
    helper = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", F,
      "int32=3:@" .. victim_pidfile, "exit=0" },
    argv = { "pause" }, ready = "none", pid_timeout = 5, log = S.quiet,
  }
  S.touch(go)
  local victim = S.pid_in(victim_pidfile)
  local app, err = h:wait()
  lu.assertNil(app, "the start succeeded with pid " .. tostring(app and app.pid))
  lu.assertEquals(err.code, "bad_pid", tostring(err))
  lu.assertStrContains(err.message, "not a process it started")
  lu.assertTrue(S.alive(victim), "the victim was signalled")
  S.kill_strays()
  lu.assertTrue(S.await_gone(victim))
  S.assert_clean(before)
end

function T.test_with_user_the_reported_pid_must_run_as_that_user()
  need_root()
  -- a replaced helper that does not drop: its child, the app it reports,
  -- runs as root
  local fake, pidfile = S.bindir .. "/fake-helper", S.tmpname("app")
  local f = assert(io.open(fake, "w"))
  f:write("#!/bin/sh\nexec ", q(F), " fork pidfile=", q(pidfile), " pause '|' int32=3:child exit=0\n")
  f:close()
  os.execute("chmod 755 " .. q(fake))
  local saved = appstart.helper_path
  appstart.helper_path = fake
  local ok, err = pcall(fail_case, { argv = { "pause" }, user = "nobody", ready = "none" }, "bad_pid", 2,
    function()
      local pid = S.pid_in(pidfile)
      lu.assertTrue(S.alive(pid), "nothing is signalled on bad_pid")
      os.execute("kill -9 " .. pid)
      lu.assertTrue(S.await_gone(pid))
    end)
  appstart.helper_path = saved
  assert(ok, err)
  lu.assertStrContains(err.message, "runs as uid 0, not 65534")
end

function T.test_an_app_its_helper_left_is_adopted_and_reaped_with_its_status()
  local before = S.snapshot()
  local app = assert(start { helper = { F, "fork", "line=4:left", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd" })
  lu.assertEquals(stat_of(app.pid).ppid, tonumber(S.proc_status("self").Pid),
    "the launcher adopted it when its helper exited")
  lu.assertEquals(app:kill("USR1"), true)
  lu.assertEquals(app:wait(3), { signal = 10 })
  S.assert_clean(before)
end

-- While a helper's start is under way the launcher adopts orphans. One
-- that an app of its own session (kill_mode "process") left behind, and
-- that began before that start, is no io.popen child of the launcher's
-- (those it had then are known): reaped once it exits, never a zombie.
-- One begun meanwhile (an io.popen made while the start is under way)
-- cannot be told from such an orphan, and is left to its holder.
function T.test_an_orphan_adopted_during_a_helpers_start_is_reaped_and_a_popen_left()
  local before = S.snapshot()
  local orphan_file, go = S.tmpname("orphan"), S.tmpname("go")
  -- the app forks a child that outlives it by a second, and exits on go
  local parent = assert(start { argv = { F, "fork", "pidfile=" .. orphan_file, "sleep=1", "exit=0", "|",
    "waitfile=" .. go, "exit=0" }, ready = "none" })
  local orphan = S.pid_in(orphan_file)
  -- (start times count in clock ticks, 10 ms: "before" needs two of them)
  appstart.sleep(0.05)
  -- a helper that reports after 0.5 s: the window is open meanwhile
  local h = appstart.begin { argv = { "pause" }, ready = "none", helper = { F, "sleep=0.5", "fork", "pause", "|",
    "int32=3:child", "exit=0" }, log = S.quiet }
  local popen = io.popen("echo made-during-the-window")
  S.touch(go)
  lu.assertEquals(parent:wait(3), { code = 0 })
  lu.assertTrue(S.await_with_sleep(function() return stat_of(orphan).ppid == S.core.pid() end, 3),
    "the launcher adopted the orphan")
  local app = assert(h:wait())
  -- the orphan exits a second after it began: reaped by a call that waits
  lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. orphan .. "/stat") end, 5),
    "the orphan stayed a zombie")
  lu.assertEquals(popen:read("a"), "made-during-the-window\n")
  lu.assertEquals({ popen:close() }, { true, "exit", 0 })
  lu.assertEquals(app:terminate(1), { signal = 15 })
  S.assert_clean(before)
end

-- An orphan that comes to the launcher as a helper's start opens its
-- window (a dropped start's app, its helper exiting just then) is one to
-- take, not one of the children the launcher had before: those were
-- listed once it was a subreaper already, and such an orphan, counted
-- among them, stayed a zombie of the launcher's for good.
function T.test_an_orphan_that_comes_as_the_window_opens_is_reaped()
  local before = S.snapshot()
  local orphan_file = S.tmpname("orphan")
  -- an app that forks a child of a session of its own (as a helper's app
  -- is), outliving it by half a second, and exits 0.1 s after it began
  local parent = assert(start { argv = { F, "fork", "setsid", "pidfile=" .. orphan_file, "sleep=0.6", "exit=0", "|",
    "sleep=0.1", "exit=0" }, ready = "none" })
  local orphan = S.pid_in(orphan_file)
  -- the next window pauses 0.3 s once open: the parent exits meanwhile
  S.testing.adopt_pause(0.3)
  local ok, h = pcall(appstart.begin, { argv = { "pause" }, ready = "none",
    helper = { F, "fork", "pause", "|", "int32=3:child", "exit=0" }, log = S.quiet })
  S.testing.adopt_pause(0)
  assert(ok, h)
  lu.assertEquals(stat_of(orphan).ppid, S.core.pid(), "the launcher adopted the orphan as the window opened")
  local app = assert(h:wait())
  lu.assertEquals(parent:wait(3), { code = 0 })
  lu.assertEquals(app:terminate(1), { signal = 15 })
  -- the orphan exits 0.6 s after it began: reaped by a call that waits
  lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. orphan .. "/stat") end, 5),
    "the orphan stayed a zombie")
  S.assert_clean(before)
end

-- A daemon whose intermediate parent never exits holds the adoption
-- window open (its lease, so that the daemon comes to the launcher when
-- that parent exits): orphans of other apps that come meanwhile (here of
-- a group app's, and of a helper's app) stayed zombies until then. With
-- no start under way they are reaped by the next call that waits.
function T.test_orphans_adopted_while_a_daemons_lease_is_held_are_reaped()
  local before = S.snapshot()
  local daemon_file, orphans = S.tmpname("daemon"), { S.tmpname("orphan"), S.tmpname("orphan") }
  -- the helper's child forks the daemon, then stays (sleep); the helper
  -- reports the daemon's pid once it is known and exits
  local d = assert(start { argv = { "pause" }, ready = "none", helper = { "sh", "-c",
    '( "$0" pause & echo $! >"$1.tmp"; mv "$1.tmp" "$1"; exec "$0" pause ) & '
    .. 'while [ ! -s "$1" ]; do sleep 0.01; done; cat "$1" >&3', F, daemon_file }, pid_format = "line" })
  local intermediate = stat_of(d.pid).ppid
  lu.assertNotEquals(intermediate, S.core.pid(), "the daemon is not the launcher's child yet")
  -- apps whose children outlive their parents by a moment: orphans
  local g = assert(start { argv = { "sh", "-c", '("$0" pidfile="$1" sleep=0.1 exit=0 &); exec "$0" pause', F,
    orphans[1] }, ready = "none", kill_mode = "group" })
  local h = assert(start { argv = { "pause" }, ready = "none", helper = { F, "fork", "fork", "pidfile=" .. orphans[2],
    "sleep=0.1", "exit=0", "|", "exit=0", "|", "fork", "pause", "|", "int32=3:child", "exit=0" } })
  -- (without pidfds, valgrind's, no lease is held: the group app's orphan
  -- goes to init, whose reaping is not the launcher's to prove; each has
  -- exited all the same before the launcher's own children are counted)
  local lease = S.testing.has_pidfd()
  for _, file in ipairs(orphans) do
    local pid = S.pid_in(file)
    lu.assertTrue(S.await_gone(pid, 5), "an orphan never exited: " .. file)
    if lease then
      lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. pid .. "/stat") end, 5),
        "an orphan stayed a zombie: " .. file)
    end
  end
  if lease then lu.assertEquals(stat_of(d.pid).ppid, intermediate, "the lease still holds") end
  -- a child of the launcher's own in a session of its own (not an app's)
  -- is no orphan: its status stays its holder's
  local p = io.popen("exec setsid sh -c 'echo out; exit 7'")
  lu.assertEquals(p:read("a"), "out\n")
  appstart.sleep(0.05)
  appstart.sleep(0.05)
  lu.assertEquals({ p:close() }, { nil, "exit", 7 })
  for _, app in ipairs { g, h } do lu.assertEquals(app:terminate(1).signal, 15) end
  lu.assertTrue(os.execute("kill " .. intermediate))
  -- that parent, an orphan of the helper's, is reaped by a call that
  -- waits once it has exited (its end is not the daemon's: without a
  -- lease the daemon's stop may be over before that parent has died)
  lu.assertTrue(S.await_with_sleep(function() return not S.read("/proc/" .. intermediate .. "/stat") end, 5),
    "the daemon's parent stayed a zombie")
  -- the daemon comes to the launcher once that parent has gone: reaped
  -- with its status (without a lease: init's, not knowable)
  if lease then
    lu.assertTrue(S.await_with_sleep(function() return stat_of(d.pid).ppid == S.core.pid() end, 3),
      "the daemon came to the launcher")
  end
  lu.assertEquals(d:terminate(1), lease and { signal = 15 } or {})
  S.assert_clean(before)
end

-- A helper's app, proven, that exits and is reaped by the helper (its
-- parent) frees its pid before the launcher adopts anything: a process
-- that takes that pid and is a zombie of the launcher's when the helper
-- exits (another app of the launcher's; a group's leader, held so that
-- its group's number stays its own while a member runs; or the helper's
-- own child, orphaned to the launcher) was reaped by pid as the app: the
-- start told its exit status (5, 42) for the app's, the other app's was
-- lost, and the held group's number was freed. With pidfds and without.
function T.test_a_process_that_takes_an_ended_helper_apps_pid_is_not_reaped_as_the_app()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  for _, mode in ipairs { "app", "group", "orphan" } do
    for _, pidfd in ipairs { "pidfd", "nopidfd" } do
      local dir = S.tmpname("appreuse")
      assert(os.execute("mkdir " .. q(dir)))
      local out = S.run_child({ pidns = true, env = { D = dir }, timeout = 60 },
        "security_a_helpers_app_pid_taken_after_its_end", mode, pidfd)
      local app, taker = out:match("app\t(%d+)"), out:match("taker\t(%d+)")
      local case = mode .. ", " .. pidfd .. ": " .. out
      lu.assertNotNil(app, case)
      lu.assertEquals(taker, app, "the process took the app's pid: " .. case)
      lu.assertStrContains(out, "result\tdied\tunknown\n", false, case)
      if mode == "group" then lu.assertStrContains(out, "held\tZ\n", false, case) end
      if mode ~= "orphan" then lu.assertStrContains(out, "other\tcode=5\n", false, case) end
      lu.assertStrContains(out, "left\t\n", false, case)
    end
  end
end

function T.test_what_a_helper_leaves_besides_the_app_is_reaped_too()
  local before = S.snapshot()
  local other = S.tmpname("other")
  -- the helper forks a second process that outlives it (the launcher
  -- adopts it too) and exits at once: no zombie of it may stay
  local app = assert(start { helper = { F, "fork", "pidfile=" .. other, "sleep=0.2", "exit=0", "|",
    "fork", "line=4:main", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd" })
  local pid = S.pid_in(other)
  lu.assertEquals(app:terminate(1), { signal = 15 })
  lu.assertTrue(S.await_gone(pid))
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- 4. the notify socket

function T.test_a_process_that_takes_an_exited_helpers_pid_cannot_say_READY()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("reuse")
  assert(os.execute("mkdir " .. q(dir)))
  -- in a pid namespace of its own, the next pid can be chosen: once the
  -- helper is reaped, a process is made to take its pid and send READY=1
  -- (elsewhere the same needs only a loop of forks until the pid comes round)
  local out = S.run_child({ pidns = true, env = { D = dir } }, "security_notify_ready_from_a_helpers_reused_pid")
  local helper, forged = out:match("helper\t(%d+)"), out:match("forged\t(%d+)")
  lu.assertNotNil(helper, out)
  lu.assertEquals(forged, helper, "the forger took the helper's pid: " .. out)
  lu.assertStrContains(out, "result\ttimeout\n")
  lu.assertStrContains(out, "ignored a notify datagram from pid " .. helper)
  lu.assertStrContains(out, "left\t\n")
end

-- notify_access = "all" walks a sender's parent chain up to the app,
-- reading each parent by the number its child gives: a parent that
-- exited between the two reads, its number taken by a process of the
-- app's, made an unrelated sender seem the app's descendant. A parent
-- younger than its child is no parent: the walk ends there. (procfault.so
-- has the launcher read the sender's parent by its number as that
-- process, the app's child, younger than the sender.)
function T.test_a_parent_whose_number_another_took_during_a_walk_is_no_parent()
  local dir = S.tmpname("walk")
  assert(os.execute("mkdir " .. q(dir)))
  local out, ok, how, code = S.run_child({ preload = "procfault.so", timeout = 60,
    env = { D = dir, APPSTART_PROCFAULT_REDIRECT = dir .. "/redirect" } },
    "security_a_parents_number_taken_during_a_descent_walk")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, out))
  local sender = out:match("sender\t(%d+)")
  lu.assertNotNil(sender, out)
  lu.assertStrContains(out, "younger\tyes\n")
  lu.assertStrContains(out, "status\tafter\n")
  lu.assertStrContains(out, "the last from pid " .. sender .. " (notify_access = \"all\")")
  lu.assertNotStrContains(out, "impostor")
  lu.assertEquals(S.strays(), {})
end

-- After ready, a group app's MAINPID= may name a process in its group, but
-- only while the group's number is the app's: once its leader has gone
-- and its main left the session, nothing holds the number, and a process
-- that takes it as its pid leads a group of that number that is not the
-- app's (the main moved there: the app, watched no more, ran on, and the
-- stop killed the unrelated process).
function T.test_mainpid_never_moves_into_a_group_whose_number_another_took()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("groupreuse")
  assert(os.execute("mkdir " .. q(dir)))
  local out = S.run_child({ pidns = true, env = { D = dir }, timeout = 60 }, "security_mainpid_into_a_recycled_group")
  local first, taker, main = out:match("first\t(%d+)"), out:match("taker\t(%d+)"), out:match("main\t(%d+)")
  lu.assertNotNil(main, out)
  lu.assertEquals(taker, first, "the unrelated process took the group's number: " .. out)
  lu.assertNotEquals(main, taker, "the main pid moved to the unrelated process: " .. out)
  lu.assertStrContains(out, "ignored MAINPID=" .. taker .. ": not descended from the app")
  lu.assertStrContains(out, "taker alive\tyes\n")
end

-- After ready, a main pid moved by MAINPID= is reaped by its own parent,
-- not the launcher: once it has ended its number is free. A process that
-- took it, before the launcher had seen that end, was the app for the
-- notify socket: its STATUS= was the app's, its MAINPID= moved the main
-- to its own child (which was then watched, and signalled by the stop),
-- and the app's end was never told.
function T.test_a_datagram_from_whoever_takes_a_moved_mains_pid_is_refused()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("mainreuse")
  assert(os.execute("mkdir " .. q(dir)))
  local out = S.run_child({ pidns = true, env = { D = dir }, timeout = 60 }, "security_a_moved_mains_pid_taken_after_its_end")
  local main, taker = out:match("main\t(%d+)"), out:match("taker\t(%d+)")
  lu.assertNotNil(main, out)
  lu.assertEquals(taker, main, "the unrelated process took the moved main's pid: " .. out)
  lu.assertStrContains(out, "pid\t" .. main .. "\n", false, "the main did not move: " .. out)
  lu.assertNotStrContains(out, "hijacked", false, "its STATUS= is no app's: " .. out)
  lu.assertStrContains(out, "ended\texited (its exit status is not knowable", false, "the app's end was told: " .. out)
  lu.assertStrContains(out, "from pid " .. main, false, "the datagrams were refused, and logged: " .. out)
end

-- With kill_mode = "cgroup" the app runs on once its main has exited and
-- been reaped, while its cgroup has members: the main's number is free.
-- A process that took it, sent, exited and was reaped before the launcher
-- read the socket was the main, with any notify_access: its STATUS= was
-- the app's, its MAINPID= moved the main to a process of the cgroup, its
-- STOPPING=1 stopped the app, and its WATCHDOG=1 kept a hung app from its
-- watchdog for good.
function T.test_whoever_takes_an_ended_mains_pid_in_a_cgroup_app_is_not_the_main()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  for _, access in ipairs { "exec", "all" } do
    local dir = S.tmpname("cgmainreuse")
    assert(os.execute("mkdir " .. q(dir)))
    local out = S.run_child({ pidns = true, env = { D = dir }, timeout = 60 },
      "security_a_cgroup_mains_pid_taken_after_its_end", access)
    lu.skipIf(out:find("^nocgroup"), "cgroup v2 not usable here: " .. out)
    local case = access .. ": " .. out
    local a, b = out:match("a main\t(%d+)"), out:match("b main\t(%d+)")
    lu.assertNotNil(a, case)
    lu.assertEquals(out:match("a taker\t(%d+)"), a, "the unrelated process took the main's pid: " .. case)
    lu.assertStrContains(out, "a after\t" .. a .. "\tmain up\tready\n", false,
      "its MAINPID=, STATUS=, STOPPING=1 acted on: " .. case)
    lu.assertStrContains(out, "from pid " .. a, false, "the datagrams were refused, and logged: " .. case)
    lu.assertNotNil(b, case)
    lu.assertEquals(out:match("b taker\t(%d+)"), b, "the unrelated process took the main's pid: " .. case)
    lu.assertNotNil(out:match("b ended\t[^\n]* watchdog\n"), "its WATCHDOG=1 reset the watchdog: " .. case)
  end
end

-- A forking daemon's started process has exited and been reaped: its pid
-- is free, and a process that takes it proves nothing. Here an unrelated
-- tree (not started by the launcher) takes that pid and starts a child;
-- the daemon names that child in its pid file. It must be bad_pid, never
-- signalled.
function T.test_a_forking_daemon_cannot_name_a_child_of_whoever_takes_its_starters_pid()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("forkreuse")
  assert(os.execute("mkdir " .. q(dir)))
  local out = S.run_child({ pidns = true, env = { D = dir } },
    "security_forking_daemon_names_a_child_of_its_starters_pid_taker")
  local started, taker = out:match("started\t(%d+)"), out:match("taker\t(%d+)")
  lu.assertNotNil(started, out)
  lu.assertEquals(taker, started, "the unrelated tree took the started process's pid: " .. out)
  lu.assertStrContains(out, "result\tbad_pid\t")
  lu.assertStrContains(out, "not a process it started")
  lu.assertStrContains(out, "victim alive\tyes\n")
end

function T.test_a_stdio_path_is_never_written_through_a_link_into_a_file_the_app_may_not_touch()
  local dir = directory("stdio", "0755")
  local secret = S.tmpname("secret")
  local f = assert(io.open(secret, "w"))
  f:write("root only\n")
  f:close()
  assert(os.execute("chmod 600 " .. q(secret)))
  -- what an app's user plants where its output goes: a symbolic link, a
  -- hard link, a directory
  assert(os.execute(string.format("ln -s %s %s/sym && ln %s %s/hard && mkdir %s/dir", q(secret), q(dir),
    q(secret), q(dir), q(dir))))
  -- and a unix socket's file (left by a process gone): said as it is, not
  -- as a FIFO with no reader (both are ENXIO to open) nor as open's
  -- "No such device or address"
  assert(os.execute(q(F) .. " listen=unix:" .. q(dir .. "/sock") .. " exit=0"))
  for _, case in ipairs {
    { "sym", "it is a symbolic link (never followed)" },
    { "hard", "it has more than one link" },
    { "dir", "Is a directory" },
    { "sock", "a socket (it cannot be opened as a file)" },
  } do
    for _, stream in ipairs { "stdin", "stdout", "stderr" } do
      local err = fail_case({ argv = { F, "notify=READY=1", "pause" }, [stream] = dir .. "/" .. case[1] }, "spawn")
      lu.assertStrContains(err.message, "cannot open " .. dir .. "/" .. case[1] .. " for " .. stream .. ": "
        .. case[2])
    end
  end
  -- an output file's (said so, not as open's ELOOP, "Too many levels of
  -- symbolic links")
  for _, case in ipairs { { "sym", "a symbolic link (never followed)" }, { "hard", "not a regular file of one link" },
    { "sock", "not a regular file of one link" } } do
    local err = fail_case({ argv = { F, "notify=READY=1", "pause" }, stdout = { file = dir .. "/" .. case[1] } },
      "spawn")
    lu.assertStrContains(err.message, "cannot append to " .. dir .. "/" .. case[1] .. ": " .. case[2])
  end
  lu.assertEquals(S.read(secret), "root only\n")
end

function T.test_a_fifo_planted_at_a_stdio_or_output_path_never_holds_the_launcher()
  local dir = directory("fifo", "0755")
  assert(os.execute("mkfifo " .. q(dir .. "/out")))
  -- in a child killed after 20 s: an open that blocks is beyond any hook
  local out = S.run_child({ timeout = 20, env = { D = dir } }, "security_fifo_at_the_stdout_path")
  lu.assertStrContains(out, "spawn: cannot open " .. dir .. "/out for stdout: a FIFO with no reader (it would block"
    .. " the launcher)\n")
  -- (said so, not as open's ENXIO, "No such device or address")
  lu.assertStrContains(out, "spawn: cannot start fixture: cannot append to " .. dir .. "/out: not a regular file of"
    .. " one link\n")
  lu.assertStrContains(out, "left\t\n")
end

--- A file of root's alone (0600) with `text` in it.
local function root_only_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  assert(os.execute("chmod 600 " .. q(path)))
end

--- What a user who owns a directory above a log file does to it (the
-- directory moved away, a link in its place): a directory of nobody's
-- holding `link`, nobody's symbolic link to `target`. Returns the link.
local function nobodys_link_to(target)
  local home = directory("home", "0755")
  assert(os.execute(string.format("chown nobody %s && ln -s %s %s/link && chown -h nobody %s/link", q(home),
    q(target), q(home), q(home))))
  return home .. "/link"
end

local UNSAFE_LINK = "a symbolic link on its way that a user other than root could change (never followed)"

function T.test_no_stdio_path_goes_through_a_link_a_user_owns_into_roots_directory()
  need_root()
  local victim = directory("victim", "0700")
  root_only_file(victim .. "/app.log", "root only\n")
  local link = nobodys_link_to(victim)
  for _, stream in ipairs { "stdin", "stdout", "stderr" } do
    local path = link .. "/app.log"
    local err = fail_case({ argv = { F, "line=1:written", "line=2:written", "notify=READY=1", "pause" },
      [stream] = path }, "spawn")
    lu.assertEquals(err.message, "cannot open " .. path .. " for " .. stream .. ": " .. UNSAFE_LINK)
    -- nor a file it would create there
    path = link .. "/new.log"
    err = fail_case({ argv = { F, "notify=READY=1", "pause" }, [stream] = path }, "spawn")
    lu.assertEquals(err.message, "cannot open " .. path .. " for " .. stream .. ": " .. UNSAFE_LINK)
  end
  lu.assertEquals(S.read(victim .. "/app.log"), "root only\n")
  lu.assertNil(S.read(victim .. "/new.log"), "a file was made in root's directory")
end

function T.test_no_file_output_goes_through_a_link_a_user_owns_into_roots_directory()
  need_root()
  local victim = directory("victim", "0700")
  root_only_file(victim .. "/app.log", "root only\n")
  root_only_file(victim .. "/app.log.1", "root's too\n")
  local link = nobodys_link_to(victim)
  for _, stream in ipairs { "stdout", "stderr" } do
    -- appended to, rotated (renamed over), emptied (keep = 0)
    for _, file in ipairs { { file = link .. "/app.log" }, { file = link .. "/app.log", max_bytes = 4, keep = 1 },
      { file = link .. "/app.log", max_bytes = 4, keep = 0 }, { file = link .. "/new.log" } } do
      local err = fail_case({ argv = { F, "line=1:written", "line=2:written", "notify=READY=1", "pause" },
        [stream] = file }, "spawn")
      lu.assertEquals(err.message, "cannot start fixture: cannot open the directory " .. link .. ": " .. UNSAFE_LINK)
      lu.assertEquals(err.output, {}, "where output is read, err.output is a list")
    end
  end
  lu.assertEquals(S.read(victim .. "/app.log"), "root only\n")
  lu.assertEquals(S.read(victim .. "/app.log.1"), "root's too\n")
  lu.assertNil(S.read(victim .. "/app.log.2"))
  lu.assertNil(S.read(victim .. "/new.log"), "a file was made in root's directory")
end

function T.test_a_pid_file_is_never_read_through_a_link_a_user_owns_into_roots_directory()
  need_root()
  local victim = directory("victim", "0700")
  -- a root-only pid file of another daemon's, written after the start
  -- began (the launcher reads no older one)
  local theirs = victim .. "/daemon.pid"
  root_only_file(theirs, "424242\n")
  assert(os.execute("touch -d '+1 hour' " .. q(theirs)))
  local link = nobodys_link_to(victim)
  local err = fail_case({ ready = { forks = true, pid_file = link .. "/daemon.pid" }, argv = { F, "exit=0" } },
    "bad_pid")
  lu.assertEquals(err.message, "pid file " .. link .. "/daemon.pid: " .. UNSAFE_LINK)
  lu.assertNotStrContains(err.message, "424242")
  lu.assertEquals(S.read(theirs), "424242\n")
end

function T.test_a_link_root_made_in_a_directory_only_root_writes_is_followed()
  need_root()
  local before = S.snapshot()
  local real = directory("real", "0755")
  local links = directory("links", "0755")
  -- absolute, and relative through ".." (Fedora's /var/run -> ../run)
  assert(os.execute(string.format("ln -s %s %s/abs && ln -s ../%s %s/rel", q(real), q(links),
    q(real:match("[^/]+$")), q(links))))
  S.touch(real .. "/in")
  for _, via in ipairs { "abs", "rel" } do
    local dir = links .. "/" .. via
    local app = assert(start { argv = { F, "line=1:out", "line=2:err", "exit=0" }, ready = "none",
      stdin = dir .. "/in", stdout = dir .. "/" .. via .. ".out", stderr = { file = dir .. "/" .. via .. ".err" } })
    app:wait()
    app:close()
    lu.assertEquals(S.read(real .. "/" .. via .. ".out"), "out\n")
    lu.assertEquals(S.read(real .. "/" .. via .. ".err"), "err\n")
  end
  -- a forking daemon's pid file
  local pid_file = links .. "/abs/daemon.pid"
  local app = assert(start { ready = { forks = true, pid_file = pid_file },
    argv = { F, "fork", "pidfile=" .. pid_file, "pause", "|", "waitfile=" .. pid_file, "exit=0" } })
  lu.assertEquals(app.pid, S.pid_in(real .. "/daemon.pid"))
  app:terminate()
  -- the system's own: /var/run -> /run
  local readlink = io.popen("readlink /var/run")
  local var_run = readlink:read("l")
  readlink:close()
  if var_run then
    local name = "/var/run/appstart-spec." .. S.core.pid()
    app = assert(start { argv = { F, "line=1:out", "line=2:err", "exit=0" }, ready = "none",
      stdout = name .. ".out", stderr = { file = name .. ".err" } })
    app:wait()
    app:close()
    local out, err = S.read(name .. ".out"), S.read(name .. ".err")
    os.remove(name .. ".out")
    os.remove(name .. ".err")
    lu.assertEquals(out, "out\n")
    lu.assertEquals(err, "err\n")
  end
  S.assert_clean(before)
end

function T.test_dotdot_in_a_stdio_or_output_path_is_refused()
  local dir = directory("dotdot", "0755")
  local path = dir .. "/../" .. dir:match("[^/]+$") .. "/app.log"
  local err = fail_case({ argv = { F, "notify=READY=1", "pause" }, stdout = path }, "spawn")
  lu.assertStrContains(err.message, "for stdout: \"..\" in the path")
  err = fail_case({ argv = { F, "notify=READY=1", "pause" }, stdout = { file = path } }, "spawn")
  lu.assertStrContains(err.message, ": \"..\" in the path")
  lu.assertNil(S.read(dir .. "/app.log"))
end

function T.test_another_users_file_in_a_sticky_directory_all_can_write_is_refused()
  need_root()
  local before = S.snapshot()
  local shared = directory("shared", "1777")
  local FOREIGN = "another user's file in a sticky directory others can write (as /tmp)"
  -- nobody's (planted), 54321's (a user that is not the app's)
  for _, owner in ipairs { "nobody", "54321" } do
    local path = shared .. "/" .. owner .. ".log"
    S.touch(path)
    assert(os.execute(string.format("chown %s %s && chmod 600 %s", owner, q(path), q(path))))
    local users = owner == "nobody" and { false } or { false, "nobody" }
    for _, user in ipairs(users) do
      for _, stream in ipairs { "stdin", "stdout", "stderr" } do
        local err = fail_case({ argv = { F, "line=1:written", "line=2:written", "notify=READY=1", "pause" },
          [stream] = path, user = user or nil }, "spawn")
        lu.assertEquals(err.message, "cannot open " .. path .. " for " .. stream .. ": " .. FOREIGN)
      end
      local err = fail_case({ argv = { F, "line=1:written", "notify=READY=1", "pause" }, stdout = { file = path },
        user = user or nil }, "spawn")
      lu.assertEquals(err.message, "cannot start fixture: cannot append to " .. path .. ": " .. FOREIGN)
    end
    lu.assertEquals(S.read(path), "", "written to")
  end
  -- nobody's FIFO, its reader (and writer) there: it would read what the
  -- app writes, or feed what it reads (it was taken)
  local fifo = shared .. "/nobody.fifo"
  assert(os.execute(string.format("mkfifo -m 666 %s && chown nobody %s", q(fifo), q(fifo))))
  local end_held = assert(io.open(fifo, "r+")) -- (O_RDWR: a FIFO's open that does not wait)
  for _, stream in ipairs { "stdin", "stdout", "stderr" } do
    local err = fail_case({ argv = { F, "line=1:written", "line=2:written", "notify=READY=1", "pause" },
      [stream] = fifo }, "spawn")
    lu.assertEquals(err.message, "cannot open " .. fifo .. " for " .. stream .. ": " .. FOREIGN)
  end
  end_held:close()
  -- the app's user's own file is its to be given
  local mine = shared .. "/mine.log"
  S.touch(mine)
  assert(os.execute("chown nobody " .. q(mine)))
  local app = assert(start { argv = { F, "line=1:written", "exit=0" }, ready = "none", stdout = mine,
    user = "nobody" })
  app:wait()
  app:close()
  lu.assertEquals(S.read(mine), "written\n")
  app = assert(start { argv = { F, "line=1:again", "exit=0" }, ready = "none", stdout = { file = mine },
    user = "nobody" })
  app:wait()
  app:close()
  lu.assertEquals(S.read(mine), "written\nagain\n")
  -- root's file, and a file that is not there yet (made by the launcher)
  S.touch(shared .. "/root.log")
  app = assert(start { argv = { F, "line=1:out", "line=2:err", "exit=0" }, ready = "none",
    stdout = shared .. "/root.log", stderr = { file = shared .. "/new.log" } })
  app:wait()
  app:close()
  lu.assertEquals(S.read(shared .. "/root.log"), "out\n")
  lu.assertEquals(S.read(shared .. "/new.log"), "err\n")
  -- the directory's owner's file
  local owned = directory("owned", "1777")
  S.touch(owned .. "/theirs.log")
  assert(os.execute(string.format("chown 54321 %s %s", q(owned), q(owned .. "/theirs.log"))))
  app = assert(start { argv = { F, "line=1:out", "exit=0" }, ready = "none", stdout = owned .. "/theirs.log" })
  app:wait()
  app:close()
  lu.assertEquals(S.read(owned .. "/theirs.log"), "out\n")
  -- a sticky directory a group can write (1770): a member of it plants
  -- files there as anyone does in /tmp (it was appended to)
  local group = directory("group", "1770")
  assert(os.execute("chgrp nogroup " .. q(group)))
  local theirs = group .. "/nobody.log"
  S.touch(theirs)
  assert(os.execute(string.format("chown nobody %s && chmod 600 %s", q(theirs), q(theirs))))
  local err = fail_case({ argv = { F, "line=1:written", "notify=READY=1", "pause" }, stdout = theirs }, "spawn")
  lu.assertEquals(err.message, "cannot open " .. theirs .. " for stdout: " .. FOREIGN)
  err = fail_case({ argv = { F, "line=1:written", "notify=READY=1", "pause" }, stdout = { file = theirs } }, "spawn")
  lu.assertEquals(err.message, "cannot start fixture: cannot append to " .. theirs .. ": " .. FOREIGN)
  lu.assertEquals(S.read(theirs), "", "written to")
  S.assert_clean(before)
end

-- A file the launcher (root) reads for an app of another user (stdin),
-- in a directory that user can change: one the app's user cannot read
-- itself (root's 0640 in group root, another user's: moved there, a
-- rename is all it takes) is refused, in a directory of that user's, a
-- group-writable one, and a sticky one all can write (it was read and fed
-- to the app); its own, one a group of its may read, one all may read,
-- and any in a directory only root changes are given.
function T.test_a_file_the_apps_user_cannot_read_where_it_can_move_files_is_refused_as_stdin()
  need_root()
  local before = S.snapshot()
  local UNREADABLE = "a file the app's user cannot read, in a directory a user other than root can change"
    .. " (that user may have moved it there)"
  local seen = directory("seen", "777")
  local home = directory("home", "755")
  assert(os.execute("chown nobody " .. q(home)))
  local shared = directory("shared", "775")
  assert(os.execute("chgrp nogroup " .. q(shared)))
  local sticky = directory("sticky", "1777")
  local function fed(path)
    local out = seen .. "/fed"
    os.remove(out)
    local app, err = start { argv = { F, "stdin=" .. out, "exit=0" }, ready = "none", stdin = path, user = "nobody" }
    if not app then return err end
    app:wait(5)
    app:close()
    return S.read(out)
  end
  for _, dir in ipairs { home, shared, sticky } do
    -- (another user's in the sticky one is refused as planted: above)
    for _, owner in ipairs(dir == sticky and { "root" } or { "root", "54321" }) do
      local path = dir .. "/" .. owner .. ".secret"
      local f = assert(io.open(path, "w"))
      f:write("secret\n")
      f:close()
      assert(os.execute(string.format("chown %s %s && chmod 640 %s", owner, q(path), q(path))))
      local err = fed(path)
      lu.assertEquals(type(err), "table", path .. " was fed to the app")
      lu.assertEquals(err.code, "spawn")
      lu.assertEquals(err.message, "cannot open " .. path .. " for stdin: " .. UNREADABLE)
    end
  end
  -- the app's user's own, root's readable by all, root's 0600 in root's
  -- directory (a key handed to the app)
  local function file(path, owner, mode)
    local f = assert(io.open(path, "w"))
    f:write("given\n")
    f:close()
    assert(os.execute(string.format("chown %s %s && chmod %s %s", owner, q(path), mode, q(path))))
    return path
  end
  local given = directory("given", "755")
  lu.assertEquals(fed(file(home .. "/own", "nobody", "600")), "given\n")
  -- root's that a group of the app's user may read (it was refused)
  lu.assertEquals(fed(file(home .. "/group", "root:nogroup", "640")), "given\n")
  -- so with few descriptors free: a shortage as the user's groups are
  -- read fails the start for what it is, never as a refusal (it was one)
  local text, ok = S.run_child({ nofile = 64, timeout = 60 }, "security_a_group_readable_stdin_out_of_descriptors",
    home .. "/group")
  lu.assertTrue(ok, text)
  local n = 0
  for k, outcome in text:gmatch("(%d+)\t(%S+)\n") do
    n = n + 1
    lu.assertTrue(outcome == "started" or outcome == "spawn:24", k .. " free: " .. outcome) -- (EMFILE)
  end
  lu.assertTrue(n >= 2, text)
  lu.assertStrContains(text, "\tstarted\n")
  lu.assertEquals(fed(file(home .. "/public", "root", "644")), "given\n")
  lu.assertEquals(fed(file(given .. "/key", "root", "600")), "given\n")
  S.assert_clean(before)
end

function T.test_the_socket_is_writable_by_all_in_a_0711_directory_with_an_unguessable_name()
  local before = S.snapshot()
  local info = S.tmpname("info")
  local app = assert(start { argv = { "/bin/sh", "-c",
    'd=$(dirname "$NOTIFY_SOCKET"); stat -c "%a %u %n" "$d" "$NOTIFY_SOCKET" > ' .. info
    .. '; exec ' .. F .. ' notify=READY=1 pause' } })
  local dir, sock = S.read(info):match("^(711 0 %S+)\n(666 0 %S+)\n$")
  lu.assertNotNil(dir, S.read(info))
  lu.assertStrMatches(dir, "711 0 /.*/appstart%.%d+%." .. string.rep("[%w]", 16))
  lu.assertStrMatches(sock, "666 0 .*/notify")
  local path = dir:match("%S+$")
  lu.assertNil(os.execute("test -e " .. q(path)), "the directory is removed at ready")
  app:terminate()
  S.assert_clean(before)
end

function T.test_an_app_cannot_turn_the_cleanup_against_a_file_elsewhere()
  need_root()
  local before = S.snapshot()
  local victim = directory("victim", "755")
  S.touch(victim .. "/notify")
  local tried = S.tmpname("tried")
  os.execute("chmod 777 " .. q(S.tmpdir))
  -- as nobody: move the directory away and put a symlink to the victim in
  -- its place, then say READY=1
  local app, err = start { user = "nobody", argv = { "/bin/sh", "-c",
    'd=$(dirname "$NOTIFY_SOCKET"); (mv "$d" "$d.moved" && ln -s ' .. q(victim) .. ' "$d" && echo moved || echo refused) > '
    .. tried .. ' 2>/dev/null; exec "$0" notify=READY=1 pause', F } }
  os.execute("chmod 755 " .. q(S.tmpdir))
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.read(tried), "refused\n")
  lu.assertEquals(app:terminate(1), { signal = 15 })
  lu.assertNotNil(S.read(victim .. "/notify"), "the victim was removed")
  S.assert_clean(before)
end

--- A start whose app writes its notify socket's path to a file and says
-- READY=1 only once `release` exists.
local function waiting_for_release(access, log)
  local sockfile, release = S.tmpname("sock"), S.tmpname("release")
  local h = appstart.begin {
    -- (written whole, then renamed: S.await_file never sees it half made)
    argv = { "/bin/sh", "-c", 'echo "$NOTIFY_SOCKET" > ' .. sockfile .. '.tmp && mv ' .. sockfile .. '.tmp '
      .. sockfile .. '; exec "$0" waitfile=' .. release ..
      ' notify=READY=1 pause', F },
    notify_access = access, ready_timeout = 10, log = log,
  }
  return h, S.await_file(sockfile):match("[^\n]+"), release
end

function T.test_a_process_of_another_user_outside_the_apps_tree_is_ignored_under_every_mode()
  need_root()
  for _, access in ipairs { "main", "exec", "all" } do
    local before = S.snapshot()
    local logged, log = S.recorder()
    local h, path, release = waiting_for_release(access, log)
    -- nobody, told the path, says READY=1 itself: it reaches the socket
    -- (the fixture exits 0 only if its datagram went out)
    local ok = os.execute("NOTIFY_SOCKET=" .. q(path) .. " setpriv --reuid=nobody --regid=nogroup --clear-groups "
      .. q(F) .. " notify=READY=1")
    lu.assertTrue(ok, "nobody could not send to the socket")
    lu.assertTrue(S.await_with_sleep(function()
      h:step()
      return table.concat(logged, "\n"):find("ignored a notify datagram from pid", 1, true) ~= nil
    end), access .. ": the refusal was not logged")
    lu.assertFalse(h.done, access .. ": nobody's message made the app ready")
    S.touch(release)
    local app, err = h:wait()
    lu.assertNotNil(app, tostring(err))
    app:terminate(1)
    S.assert_clean(before)
  end
end

function T.test_a_daemon_that_drops_to_its_own_user_before_READY_is_seen_ready()
  need_root()
  lu.skipIf(not os.execute("command -v mosquitto >/dev/null"), "needs mosquitto")
  local before = S.snapshot()
  -- mosquitto started as root switches to its user "mosquitto" and only
  -- then sends READY=1, as systemd expects of it
  local dir = directory("mq", "777")
  local conf = dir .. "/mosquitto.conf"
  local f = assert(io.open(conf, "w"))
  f:write("listener 0 ", dir, "/mqtt.sock\nallow_anonymous true\npersistence false\nlog_dest none\n")
  f:close()
  local app, err = start { argv = { "mosquitto", "-c", conf }, ready_timeout = 10 }
  lu.assertNotNil(app, tostring(err))
  local uid = S.proc_status(app.pid).Uid:match("^(%d+)")
  lu.assertNotEquals(uid, "0", "mosquitto runs as a user of its own")
  -- (a SIGTERM that comes just after its READY=1 may be missed by
  -- mosquitto itself, which then sleeps on: under load it was, once in
  -- three, and only the SIGKILL after the grace ended it)
  local how = app:terminate(5)
  lu.assertTrue(how.code == 0 or how.signal == 9, tostring(how))
  S.assert_clean(before)
end

function T.test_user_with_notify_works_when_XDG_RUNTIME_DIR_is_private()
  need_root()
  local private = directory("xdg", "700")
  local out, ok = S.run_child({ env = { XDG_RUNTIME_DIR = private } }, "security_notify_dir_in_private_runtime_dir")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "ready\nended\t15\n")
end

-- A launcher that is not root, its XDG_RUNTIME_DIR a directory of root's
-- every user can traverse but it may not write (0755): the notify socket
-- is made under /tmp (every notify start failed, "cannot create the notify
-- socket: Permission denied").
function T.test_a_notify_base_the_launcher_cannot_write_is_passed_over()
  need_root()
  local base = directory("rootbase", "755")
  local lua_path, lua_cpath = S.public_tree()
  local out, ok = S.run_child({ as = "nobody", as_group = "nogroup", timeout = 30,
    env = { XDG_RUNTIME_DIR = base, LUA_PATH = lua_path, LUA_CPATH = lua_cpath } },
    "security_notify_base_the_launcher_cannot_write")
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "ready\n/tmp\nended\t15\n")
  lu.assertEquals(S.sh("ls -A " .. q(base)), "")
end

-- $XDG_RUNTIME_DIR where the notify socket's directory cannot be made
-- after all: a file system of the kernel's (/proc: the start failed "No
-- such file or directory"; /sys/fs/cgroup, where root's directory is a
-- cgroup), a full one (no inode left: the start failed "No space left on
-- device"): /tmp instead. Where /tmp cannot take it either (read-only),
-- the start fails `spawn`, saying where it tried.
function T.test_a_notify_base_where_nothing_can_be_made_is_passed_over()
  need_root()
  -- (/sys/fs/cgroup where it is cgroup2's: a hybrid layout mounts a
  -- tmpfs there, where a directory can be made)
  local bases = { "/proc" }
  for line in io.lines("/proc/self/mounts") do
    if line:match("^%S+ /sys/fs/cgroup cgroup2 ") then bases[2] = "/sys/fs/cgroup" end
  end
  for _, base in ipairs(bases) do
    local out, ok = S.run_child({ env = { XDG_RUNTIME_DIR = base } }, "security_notify_base_passed_over")
    lu.assertTrue(ok, out)
    lu.assertEquals(out, "ready\t/tmp\n", base)
  end
  local full = S.tmpname("full")
  assert(os.execute("mkdir " .. full))
  if os.execute("mount -t tmpfs -o nr_inodes=1,mode=755 tmpfs " .. full .. " 2>/dev/null") then
    local out, ok = S.run_child({ env = { XDG_RUNTIME_DIR = full } }, "security_notify_base_passed_over")
    os.execute("umount -l " .. full)
    lu.assertTrue(ok, out)
    lu.assertEquals(out, "ready\t/tmp\n", "a full base")
  end
  if S.can_unshare() then
    local out = S.run_child({ own_mounts = true, env = { XDG_RUNTIME_DIR = "" } }, "security_notify_base_passed_over",
      "ro-tmp")
    lu.assertEquals(out, "failed\tspawn\tcannot create the notify socket in /tmp: Read-only file system\n")
  end
end

-- $XDG_RUNTIME_DIR through a symbolic link another user owns (to a
-- directory that passes the checks): the socket's path, given to the app,
-- must not go through that link, which its owner could point at a
-- directory of theirs holding a socket of the same name once the launcher
-- has made its own (the app's datagrams, READY=1 and STATUS=, would go
-- there); and the cleanup must find the launcher's directory.
function T.test_the_notify_socket_is_never_reached_through_a_link_another_user_owns()
  need_root()
  local before = S.snapshot()
  local real, theirs = directory("rootbase", "755"), directory("theirs", "755")
  assert(os.execute(string.format("chown nobody %s && setpriv --reuid=nobody --regid=nogroup --clear-groups "
    .. "ln -s %s %s/rt", q(theirs), q(real), q(theirs))))
  local seen = S.tmpname("socket")
  local script = 'echo "$NOTIFY_SOCKET" > ' .. q(seen) .. '; exec "$0" notify=READY=1 pause'
  local out, ok = S.run_child({ env = { XDG_RUNTIME_DIR = theirs .. "/rt" } }, "security_notify_socket_under_a_users_link",
    script)
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "15\n")
  local path = S.read(seen)
  lu.assertStrMatches(path, q(real):sub(2, -2):gsub("%p", "%%%0") .. "/appstart%.%d+%.%w+/notify\n")
  local ls = io.popen("ls " .. q(real))
  lu.assertEquals(ls:read("a"), "", "the launcher's directory was left")
  ls:close()
  S.assert_clean(before)
end

-- A launcher killed with SIGKILL while it waits for READY=1 leaves its
-- directory behind; the base's next start, in a launcher begun after or
-- in one that ran before and runs on, removes it (one that had swept the
-- base at its first start never swept it again).
local function killed_launchers_directory(base)
  local pidfile, appfile = S.tmpname("launcher"), S.tmpname("app")
  S.run_child({ env = { XDG_RUNTIME_DIR = base }, background = true }, "security_leftover_dirs_launcher_to_kill",
    pidfile, appfile)
  local launcher, app = S.pid_in(pidfile), S.pid_in(appfile)
  local left = S.sh("ls " .. q(base))
  lu.assertStrMatches(left, "appstart%.%d+%.%w+\n")
  os.execute("kill -9 " .. launcher)
  lu.assertTrue(S.await_gone(launcher))
  os.execute("kill -9 " .. app)
  lu.assertEquals(S.sh("ls " .. q(base)), left, "the killed launcher's directory stays")
end

function T.test_directories_a_killed_launcher_left_are_removed_by_the_next_start()
  local base = directory("base", "755")
  killed_launchers_directory(base)
  local out = S.run_child({ env = { XDG_RUNTIME_DIR = base } }, "security_leftover_dirs_next_start")
  lu.assertEquals(out, "15\n")
  lu.assertEquals(S.sh("ls " .. q(base)), "")
end

-- (under a base only its user may write; under one others may write, as
-- /tmp, once a process: another user could fill it with names for each
-- start to read, a second at most apart)
local function long_launcher_leaves(mode)
  local base = directory("base", mode)
  local ready, go, out = S.tmpname("ready"), S.tmpname("go"), S.tmpname("out")
  S.run_child({ env = { XDG_RUNTIME_DIR = base }, background = true }, "security_leftover_dirs_long_launcher",
    ready, go, out)
  S.await_file(ready, 10)
  killed_launchers_directory(base)
  S.touch(go)
  lu.assertEquals(S.await_file(out, 10), "15\n15\n")
  return S.sh("ls " .. q(base))
end

function T.test_directories_a_killed_launcher_left_are_removed_by_a_launcher_that_runs_on()
  lu.assertEquals(long_launcher_leaves("755"), "")
  lu.assertStrMatches(long_launcher_leaves("1777"), "appstart%.%d+%.%w+\n")
end

local function listing(dir)
  local p = io.popen("ls " .. q(dir))
  local text = p:read("a")
  p:close()
  return text
end

-- A launcher under base held as it binds its notify socket (after the
-- bind with `after`), its directory made: its pid, the file the test
-- touches to release it, and the file where it writes how its start went
-- (spec/child/notify_sweep_held_launcher.lua).
local function held_launcher(base, after)
  local held, release, out = S.tmpname("held"), S.tmpname("release"), S.tmpname("out")
  S.run_child({ preload = "heldbind.so", background = true, env = { XDG_RUNTIME_DIR = base,
    APPSTART_SPEC_HELD_BIND = held, APPSTART_SPEC_RELEASE_BIND = release,
    APPSTART_SPEC_HOLD_AFTER_BIND = after and "1" or nil } }, "notify_sweep_held_launcher", out)
  return tonumber(S.await_file(held, 10):match("%d+")), release, out
end

-- A launcher in another pid namespace sharing the base (a container given
-- the host's /run/user/UID or /tmp) takes the pid in the name of a
-- directory a launcher of the host has just made for gone, and, before
-- its socket is bound, finds nobody bound to it: it removed that
-- directory, and the host's start lost its socket (it failed, or went to
-- /tmp). The directory being made is left to its launcher.
function T.test_a_notify_directory_being_made_is_left_alone_by_a_launcher_of_another_pid_namespace()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local base = directory("base", "755")
  local _, release, out = held_launcher(base, false)
  local left = listing(base)
  local other = S.run_child({ pidns = true, env = { XDG_RUNTIME_DIR = base } }, "notify_sweep_next_start")
  local after = listing(base)
  S.touch(release)
  local result = S.await_file(out, 10)
  lu.assertStrMatches(left, "appstart%S*\n")
  lu.assertEquals(other, "15\n")
  lu.assertEquals(after, left, "the other namespace's launcher removed the directory being made")
  lu.assertEquals(result, "ready\t" .. base .. "\n15\n")
  lu.assertEquals(listing(base), "")
end

-- A launcher killed while it made its directory (before its socket was
-- bound, or after) left it under the name it is made under: a start
-- leaves it while it is young (its launcher may be at work, in another
-- pid namespace) or while its socket is bound, and removes it once it is
-- a minute old (its mtime set back here) and nobody is bound to it.
function T.test_a_notify_directory_left_half_made_is_removed_once_a_minute_old()
  for _, after in ipairs { false, true } do
    local base = directory("base", "755")
    local launcher = held_launcher(base, after)
    local left = listing(base)
    lu.assertStrMatches(left, "appstart%-new%.%d+%.%w+\n")
    local dir = base .. "/" .. left:sub(1, -2)
    lu.assertEquals(S.run_child({ env = { XDG_RUNTIME_DIR = base } }, "notify_sweep_next_start"), "15\n")
    lu.assertEquals(listing(base), left, "a young one stays")
    assert(os.execute("touch -m -d '2 minutes ago' " .. q(dir)))
    if after then
      lu.assertEquals(S.run_child({ env = { XDG_RUNTIME_DIR = base } }, "notify_sweep_next_start"), "15\n")
      lu.assertEquals(listing(base), left, "one whose socket is bound stays")
    end
    os.execute("kill -9 " .. launcher)
    lu.assertTrue(S.await_gone(launcher))
    lu.assertEquals(S.run_child({ env = { XDG_RUNTIME_DIR = base } }, "notify_sweep_next_start"), "15\n")
    lu.assertEquals(listing(base), "", after and "bound, then killed" or "killed before the bind")
  end
end

-------------------------------------------------------------------------------
-- 5. cwd, environment and identity with user =

function T.test_cwd_is_entered_as_the_apps_user()
  need_root()
  local before = S.snapshot()
  local private = directory("private", "700")
  local marker = S.tmpname("ran")
  local err = fail_case({ argv = { F, "pidfile=" .. marker, "pause" }, user = "nobody", cwd = private,
    ready = "none" }, "helper")
  lu.assertNil(S.read(marker), "the app ran inside a directory its user cannot enter")
  lu.assertStrContains(err.message, "helper exited with code 1")
  local open = directory("open", "755")
  local cwd = S.tmpname("cwd")
  os.execute("chmod 777 " .. q(S.tmpdir))
  local app = assert(start { argv = { F, "cwd=" .. cwd, "pause" }, user = "nobody", cwd = open, ready = "none" })
  lu.assertEquals(S.await_file(cwd), open .. "\n")
  os.execute("chmod 755 " .. q(S.tmpdir))
  app:terminate(1)
  S.assert_clean(before)
end

function T.test_home_user_logname_shell_come_from_the_passwd_entry_unless_env_is_given()
  need_root()
  os.execute("chmod 777 " .. q(S.tmpdir))
  local envfile, explicit = S.tmpname("env"), S.tmpname("env")
  local app = assert(start { argv = { F, "env=" .. envfile, "pause" }, user = "nobody", ready = "none" })
  local env = S.await_file(envfile)
  app:terminate(1)
  local pw = S.sh("getent passwd nobody", "l")
  local home, shell = pw:match("^[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:([^:]*):([^:]*)$")
  lu.assertStrContains(env, "\nHOME=" .. home .. "\n")
  lu.assertStrContains(env, "\nUSER=nobody\n")
  lu.assertStrContains(env, "\nLOGNAME=nobody\n")
  lu.assertStrContains("\n" .. env, "\nSHELL=" .. shell .. "\n")
  app = assert(start { argv = { F, "env=" .. explicit, "pause" }, user = "nobody", ready = "none",
    env = { ONLY = "this" } })
  lu.assertEquals(S.await_file(explicit), "ONLY=this\n", "an explicit env is used as it is")
  os.execute("chmod 755 " .. q(S.tmpdir))
  app:terminate(1)
end

function T.test_a_uid_without_a_passwd_entry_is_its_own_group_with_no_others()
  need_root()
  local before = S.snapshot()
  local app, err = start { argv = { F, "pause" }, user = 54321, ready = "none" }
  lu.assertNotNil(app, tostring(err))
  local st = S.read("/proc/" .. app.pid .. "/status")
  lu.assertStrMatches(st:match("\nUid:([^\n]*)"), "%s+54321%s+54321%s+54321%s+54321")
  lu.assertStrMatches(st:match("\nGid:([^\n]*)"), "%s+54321%s+54321%s+54321%s+54321")
  lu.assertStrMatches(st:match("\nGroups:([^\n]*)"), "%s*")
  app:terminate(1)
  S.assert_clean(before)
end

function T.test_a_file_without_a_shebang_never_runs_through_a_shell()
  need_root()
  -- where nobody may write: were the file run by sh, the marker would be
  local marker = directory("out", "1777") .. "/marker"
  local script = S.bindir .. "/no-shebang"
  local f = assert(io.open(script, "w"))
  f:write("touch ", marker, "\n")
  f:close()
  os.execute("chmod 755 " .. q(script))
  -- the app could not be executed: spawn, as without a helper
  local err = fail_case({ argv = { script }, user = "nobody", ready = "none" }, "spawn")
  lu.assertEquals(err.message, "cannot execute " .. script .. ": Exec format error")
  lu.assertEquals(err.errno, 8, "ENOEXEC, as without a helper")
  lu.assertNil(S.read(marker), "the file ran through a shell")
  err = fail_case({ argv = { S.bindir .. "/no-such-program" }, user = "nobody", ready = "none" }, "spawn")
  lu.assertEquals(err.message, "cannot execute " .. S.bindir .. "/no-such-program: No such file or directory")
  lu.assertEquals(err.errno, 2, "ENOENT, as without a helper")
  -- a long path: its middle is cut from the message, never the reason
  -- (in names of 100 bytes: one over 255 is another error)
  for _, n in ipairs { 2, 10, 30 } do
    local long = S.bindir .. "/" .. string.rep(string.rep("d", 99) .. "/", n) .. "x"
    err = fail_case({ argv = { long }, user = "nobody", ready = "none" }, "spawn")
    lu.assertStrMatches(err.message, "cannot execute " .. S.bindir:gsub("%p", "%%%0")
      .. "/[d/]+%.%.%.[d/]+x: No such file or directory")
    lu.assertEquals(err.errno, 2, "ENOENT, as without a helper")
    -- and without one (its end was cut: the file's name lost)
    err = fail_case({ argv = { long }, ready = "none" }, "spawn")
    lu.assertStrMatches(err.message, "cannot execute " .. S.bindir:sub(1, 20):gsub("%p", "%%%0")
      .. ".-%.%.%.[d/]+/x: No such file or directory")
    lu.assertEquals(err.errno, 2)
  end
end

-------------------------------------------------------------------------------
-- 8. logs a flood cannot fill

function T.test_a_flood_of_refused_messages_is_logged_once_a_second_with_a_count()
  for _, proto in ipairs { "notify", "fd" } do
    local before = S.snapshot()
    local logged, log = S.recorder()
    -- a grandchild floods for about a second and a half; the app says it
    -- is ready after that; notify_access = "main" refuses the flood
    local flood = proto == "notify" and "notifyflood=400000:STATUS=flood" or "bytes=3:400000000:x"
    local ready = proto == "notify" and "notify=READY=1" or "line=3:up"
    local took, app, err = S.timed(start, { argv = { F, "fork", "fork", flood, "|", "exit=0", "|",
      "sleep=1.5", ready, "pause" }, ready = proto, notify_access = "main", ready_timeout = 10, log = log })
    lu.assertNotNil(app, proto .. ": " .. tostring(err))
    app:terminate(1)
    S.kill_strays()
    local lines, total = 0, 0
    for _, line in ipairs(logged) do
      if line:find("ignored", 1, true) then
        lines = lines + 1
        total = total + (tonumber(line:match("ignored (%d+) messages") or line:match("ignored (%d+) reads")) or 1)
      end
    end
    lu.assertTrue(lines >= 2, proto .. ": " .. table.concat(logged, "\n"))
    lu.assertTrue(lines <= math.ceil(took) + 2, string.format("%s: %d lines in %.1f s", proto, lines, took))
    lu.assertTrue(total > lines, proto .. ": the count is not given")
    -- (what is counted named: the fd protocol's channel is a byte stream,
    -- a read of it no line)
    local said = table.concat(logged, "\n")
    if proto == "fd" then
      lu.assertStrMatches(said, ".*ignored %d+ reads of the ready channel from processes not admitted.*")
    else
      lu.assertStrMatches(said, ".*ignored %d+ messages %(notify datagrams%) from processes not admitted.*")
    end
    S.assert_clean(before)
  end
end

-------------------------------------------------------------------------------
-- 9. options that would be ignored

function T.test_pid_fd_or_pid_format_without_a_helper_raises_and_starts_nothing()
  local before = S.snapshot()
  for _, field in ipairs { "pid_fd", "pid_format" } do
    local opts = { argv = { F, "pause" }, ready = "none" }
    opts[field] = field == "pid_fd" and 3 or "line"
    local ok, err = pcall(appstart.start, opts)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "field '" .. field .. "': has no effect without 'helper' or 'user'")
  end
  local ok, err = pcall(appstart.start, { argv = { F, "pause" }, group = "nogroup" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'group': has no effect without 'user'")
  S.assert_clean(before)
end

function T.test_why_the_helper_failed_comes_back_on_its_own_pipe_and_the_app_never_holds_it()
  need_root()
  -- the helper's stderr is the app's (here /dev/null): the reason it
  -- failed comes back on an error pipe, quoted in the start's error
  local before = S.snapshot()
  local private = directory("private", "0700")
  local app, err = start { argv = { F, "pause" }, user = "nobody", cwd = private, ready = "none",
    stdout = "null", stderr = "null" }
  lu.assertNil(app)
  lu.assertEquals(err.code, "helper")
  lu.assertStrContains(err.message, "without reporting a pid on fd 3: chdir: Permission denied")
  app, err = start { argv = { "/nonexistent/appstart-spec" }, user = "nobody", ready = "none", stderr = "null" }
  lu.assertNil(app)
  lu.assertEquals(err.code, "spawn")
  lu.assertEquals(err.message, "cannot execute /nonexistent/appstart-spec: No such file or directory")
  S.assert_clean(before)
  -- an app that starts sees its ready channel, the first free from 3,
  -- and nothing of the pid channel's or the error pipe's (fd 4 and 5 in
  -- the helper)
  local out = directory("out", "1777") .. "/fds"
  app, err = start { argv = { F, "fds=" .. out, "line=3:x", "pause" }, user = "nobody", ready = "fd" }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.await_file(out, 3), "0\n1\n2\n3\n")
  app:terminate()
  S.assert_clean(before)
end

function T.test_a_user_or_group_name_the_system_does_not_know_is_an_argument_error()
  -- raised before anything is spawned, as a wrong type is: not a helper
  -- that fails at run time
  local before = S.snapshot()
  local ok, err = pcall(appstart.start, { argv = { F, "pause" }, user = "no-such-user-here" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'user': no such user 'no-such-user-here'")
  ok, err = pcall(appstart.start, { argv = { F, "pause" }, user = "nobody", group = "no-such-group-here" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "field 'group': no such group 'no-such-group-here'")
  lu.assertNil(select(2, require("appstart.options").check { argv = { F }, user = "nobody", group = "nogroup" }),
    "a group the system knows passes")
  lu.assertNil(select(2, require("appstart.options").check { argv = { F }, user = "nobody", group = "54321" }),
    "a gid needs no entry")
  S.assert_clean(before)
end

return { TestSecurity = T }
