--- Readiness probes for apps that speak no protocol: ready = {connect =
-- "tcp:HOST:PORT" | "unix:PATH"}, {file = PATH}, {exec = {...}}, {check =
-- fn}: ready, died while probing (at once, not at the timeout), timeout
-- (the app terminated), a probe that hangs (bounded by probe_timeout), a
-- probe that cannot work, mistakes; and the command's --ready=tcp:|unix:|file:.
local lu = require "luaunit"
local S = require "support"

local F = S.fixture
local core = S.core
local now = core.now

local start, fail_within = S.starter { ready_timeout = 10, kill_grace = 0.3 }

local T = {}

function T.setUp()
  S.arm_watchdog(20)
end

function T.tearDown()
  debug.sethook()
  S.kill_strays()
end

-- The time a fixture wrote with now=PATH.
local function time_in(path)
  return tonumber(S.read(path))
end

-- An error raised by f, as text.
local function raised(f)
  local ok, err = pcall(f)
  lu.assertFalse(ok, "no error raised")
  return tostring(err)
end

function T.test_unix_connect_is_ready_soon_after_the_app_listens()
  local before = S.snapshot()
  local sock, mark = S.tmpname("sock"), S.tmpname("now")
  local t0 = now()
  local app = assert(start { ready = { connect = "unix:" .. sock },
    argv = { F, "sleep=0.3", "now=" .. mark, "listen=unix:" .. sock, "pause" } })
  local listening = time_in(mark)
  lu.assertEquals(app.state, "ready")
  lu.assertTrue(listening - t0 >= 0.3, "it listened after 0.3 s")
  -- the backoff is at most probe_interval (0.1 s): seen well within 1 s
  lu.assertTrue(t0 + app.ready_after - listening < 1,
    string.format("seen %.3f s after it listened", t0 + app.ready_after - listening))
  app:terminate()
  S.assert_clean(before)
end

function T.test_tcp_connect_is_ready_once_the_port_listens()
  local before = S.snapshot()
  -- a port nobody listens on: tried until one is free
  local app, err
  for _ = 1, 5 do
    local port = math.random(20000, 60000)
    app, err = start { ready = { connect = "tcp:127.0.0.1:" .. port },
      argv = { F, "sleep=0.1", "listen=tcp:" .. port, "pause" } }
    if app or err.code ~= "died" then break end
  end
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(app.ready_after >= 0.1, "not before it listened: " .. app.ready_after)
  app:terminate()
  S.assert_clean(before)
end

-- A tcp connect to a port of the ephemeral range that nothing listens on
-- may be given that very port as its source: TCP's simultaneous open then
-- connects the socket to itself, and the probe took that for a listener.
-- Made certain here: the probe's socket bound to the port it connects to
-- (a test knob), on a port nothing listens on.
function T.test_a_tcp_connect_that_reaches_itself_is_not_a_listener()
  local port
  for _ = 1, 20 do
    local p = math.random(20000, 30000)
    if core.connect("tcp", "127.0.0.1", p) == false then -- refused: nothing listens
      port = p
      break
    end
  end
  lu.assertNotNil(port, "no free port")
  local before = S.snapshot()
  S.testing.probe_source_port(port)
  local r, why = core.connect("tcp", "127.0.0.1", port)
  if type(r) == "userdata" then -- under way (loopback answers at once, most often)
    local conn, deadline = r, now() + 5
    repeat r, why = conn:check() until r or why or now() > deadline
    conn:close()
  end
  lu.assertEquals({ r, why }, { false, "connected to itself: nothing listens" })
  S.assert_clean(before)
end

function T.test_a_tcp_name_is_resolved_once_and_each_of_its_addresses_tried()
  -- a name for ::1 and 127.0.0.1, ::1 first (as "localhost" has on Debian),
  -- seen by a launcher in a mount namespace of its own; the app listens
  -- on 127.0.0.1 only: the probe must not stop at the first address
  lu.skipIf(not S.can_unshare(), "needs unshare(1) and a mount namespace of its own (root)")
  local hosts = S.tmpname("hosts")
  local f = assert(io.open(hosts, "w"))
  f:write("::1 appstart-two\n127.0.0.1 appstart-two\n")
  f:close()
  local out = S.run_child({ hosts = hosts }, "probes_a_tcp_name_with_two_addresses")
  lu.assertStrContains(out, "ready\t15\n")
  lu.assertStrContains(out, "timeout\tapp not ready within 0.3 s: no connection to tcp:appstart-two:")
  lu.assertStrContains(out, " (::1, 127.0.0.1) (the last try: Connection refused)")
  lu.assertStrContains(out, "left\t\n")
end

-- A name looked up while the launcher has no descriptor free (the
-- resolver cannot read /etc/hosts, and says the name is not known): a try
-- that failed, looked up again at the next (the start failed "protocol",
-- the app terminated).
function T.test_a_name_looked_up_in_a_descriptor_shortage_is_a_try_that_failed()
  local out, ok, how, code = S.run_child({ nofile = 64, timeout = 60 }, "probes_a_name_looked_up_in_a_descriptor_shortage")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, out))
  lu.assertEquals(out, "stepped\tfalse\tnone\nready\tready\nleft\ttrue\t\n")
end

-- A name that cannot be looked up for now (no DNS server answers:
-- getaddrinfo's EAI_AGAIN) is a try that failed, looked up again a second
-- later at most (each lookup waits on the resolver): the start failed
-- "protocol" at once, as for a name that does not resolve. Here it fails
-- "timeout", the app terminated.
function T.test_a_name_dns_cannot_answer_for_now_is_a_try_that_failed()
  lu.skipIf(not S.can_unshare(), "needs unshare(1) and a mount namespace of its own (root)")
  local resolv = S.tmpname("resolv")
  local f = assert(io.open(resolv, "w"))
  -- (a server where nothing answers: refused at once, one attempt)
  f:write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
  f:close()
  local out = S.run_child({ own_mounts = true, timeout = 30 }, "probes_a_name_dns_cannot_answer_for_now", resolv)
  lu.skipIf(out:match("^skip\t"), out)
  lu.assertStrContains(out, "failed\ttimeout\tapp not ready within 1.5 s: no connection to "
    .. "tcp:appstart-probe.example.com:5432 (the last try: cannot resolve appstart-probe.example.com: ")
  local lookups = tonumber(out:match("\nlookups\t(%d+)\n"))
  -- (one a second at most in 1.5 s: the tries come 1, 2, 4 ... ms apart)
  lu.assertTrue(lookups and lookups >= 1 and lookups <= 2, out)
  lu.assertStrContains(out, "\nleft\t\n")
end

-- No local port free for a tcp connect (the ephemeral range used up, for
-- a moment on a busy host: connect's EADDRNOTAVAIL) is a try that failed,
-- its reason in a timeout's message, and the start is ready once a port is
-- free again. (It failed at once, as an address that cannot be tried.)
-- Here in a network namespace whose range is one port, held by an app. No
-- source address at all (::1 with IPv6 off) says the same, for good: that
-- start still fails at once.
function T.test_a_connect_with_no_local_port_free_is_a_try_that_failed()
  lu.skipIf(not S.can_unshare_ports(), "needs unshare(1), ip(8) and a network namespace of its own (root)")
  local out, ok, how, code = S.run_child({ port_range = "40000 40000", timeout = 60 },
    "probes_a_connect_with_no_local_port_free")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, out))
  local held = "connect\tfalse\tCannot assign requested address\n"
    .. "held\ttimeout\tapp not ready within 0.5 s: no connection to tcp:127.0.0.1:5000"
    .. " (the last try: Cannot assign requested address)\n"
    .. "freed\t15\n"
  -- (no source address for ::1, IPv6 off: connect's EADDRNOTAVAIL as well,
  -- for good, and the start fails at once, as it did)
  local v6_off = "v6-off\tprotocol\tready probe: connect: Cannot assign requested address\tat once\n"
  if out:find("\nv6%-off\tskip\n") then v6_off = "v6-off\tskip\n" end
  lu.assertEquals(out, held .. v6_off .. "left\t\n")
end

-- A socket named through a symbolic link in its last component: never
-- followed, the start fails at once (a link the app's user made had the
-- launcher connect, with its rights, to a socket that user may not
-- reach: root's, in a directory only root may enter). A link on the way
-- that only root may change (/var/run -> /run) is followed.
function T.test_a_unix_socket_is_never_reached_through_a_link_in_its_last_component()
  local before = S.snapshot()
  local dir = S.tmpname("sockets")
  assert(os.execute("mkdir -m 700 " .. dir))
  local real, link = dir .. "/real.sock", S.tmpname("link.sock")
  local server = assert(start { ready = { connect = "unix:" .. real }, argv = { F, "listen=unix:" .. real, "pause" } })
  assert(os.execute(string.format("ln -s %s %s", real, link)))
  local app, err = start { ready = { connect = "unix:" .. link }, argv = { F, "pause" } }
  if app then app:terminate() end
  server:terminate()
  lu.assertNil(app, "ready through the link")
  lu.assertEquals(err.code, "protocol")
  lu.assertStrContains(err.message, "ready probe: unix:" .. link .. ": a symbolic link, never followed (name the "
    .. "socket itself)")
  local run = "/run/appstart-spec-" .. core.pid() .. ".sock"
  local readlink = io.popen("readlink /var/run")
  local through = readlink:read("l")
  readlink:close()
  if S.is_root() and through == "/run" then
    local followed = assert(start { ready = { connect = "unix:/var/run/" .. run:match("[^/]+$") },
      argv = { F, "listen=unix:" .. run, "pause" } })
    followed:terminate()
    os.remove(run)
  end
  S.assert_clean(before)
end

-- A socket with a second name (a hard link the app's user made to a
-- socket in a directory it may not enter): refused, as a file probe's
-- hard link is (it was connected to, with the launcher's rights).
function T.test_a_unix_socket_with_another_name_is_refused()
  local before = S.snapshot()
  local dir = S.tmpname("sockets")
  assert(os.execute("mkdir -m 700 " .. dir))
  local real, link = dir .. "/real.sock", S.tmpname("hard.sock")
  local server = assert(start { ready = { connect = "unix:" .. real }, argv = { F, "listen=unix:" .. real, "pause" } })
  assert(os.execute(string.format("ln %s %s", real, link)))
  local app, err = start { ready = { connect = "unix:" .. link }, argv = { F, "pause" } }
  if app then app:terminate() end
  os.remove(link)
  -- its one name again: taken
  local again = start { ready = { connect = "unix:" .. real }, argv = { F, "pause" } }
  if again then again:terminate() end
  server:terminate()
  lu.assertNil(app, "ready through the hard link")
  lu.assertEquals(err.code, "protocol")
  lu.assertStrContains(err.message, "ready probe: unix:" .. link .. ": a hard link (a socket with another name too), "
    .. "refused")
  lu.assertNotNil(again, "a socket with one name")
  S.assert_clean(before)
end

function T.test_an_app_that_dies_while_probed_fails_died_at_once()
  local err, took = fail_within({ ready = { connect = "unix:" .. S.tmpname("none") }, ready_timeout = 30,
    argv = { F, "sleep=0.2", "exit=3" } }, "died", 2)
  lu.assertEquals(err.status, { code = 3 })
  lu.assertStrContains(err.message, "app exited with code 3 before it was ready")
  lu.assertTrue(took < 2, "seen at once, not at the 30 s timeout: " .. took)
end

function T.test_a_probe_that_never_passes_times_out_and_the_app_is_terminated()
  local path = S.tmpname("never")
  local err = fail_within({ ready = { file = path }, ready_timeout = 0.3,
    argv = { F, "pidfile=" .. S.tmpname("pid"), "pause" } }, "timeout", 3)
  lu.assertStrContains(err.message, "not ready within 0.3 s: " .. path .. " was not made")
  lu.assertStrContains(err.message, "No such file or directory")
  lu.assertEquals(err.status, { signal = 15 })
end

function T.test_a_file_the_app_makes_at_once_counts_though_file_times_lag_the_clock()
  local before = S.snapshot()
  -- the kernel stamps files from a clock up to a tick behind the precise
  -- one: a file made right after the start was "older than the start"
  local path = S.tmpname("made")
  for i = 1, 20 do
    os.remove(path)
    local app, err = start { ready = { file = path }, ready_timeout = 5, argv = { F, "pidfile=" .. path, "pause" } }
    lu.assertNotNil(app, "start " .. i .. ": " .. tostring(err))
    app:terminate()
  end
  S.assert_clean(before)
end

-- A file there before the start does not count, whatever its time says
-- (dated ahead: a clock stepped back since, as on a device without a
-- battery-backed clock): it counted at once. Once the app replaces it,
-- it does.
function T.test_a_file_there_before_the_start_does_not_count_even_dated_ahead()
  local before = S.snapshot()
  local path = S.tmpname("ahead")
  S.touch(path)
  assert(os.execute("touch -d '+1 hour' " .. path))
  local err = fail_within({ ready = { file = path }, ready_timeout = 0.3, argv = { F, "pause" } }, "timeout", 3)
  lu.assertStrContains(err.message, "it is the one there before the start")
  -- replaced by the app (a new file, made after the start): it counts
  local app = assert(start { ready = { file = path }, argv = { F, "sleep=0.2", "pidfile=" .. path, "pause" } })
  lu.assertTrue(app.ready_after >= 0.2, "ready at the app's file, not the old one: " .. app.ready_after)
  app:terminate()
  S.assert_clean(before)
end

-- A file the app's user did not make does not count, nor a name that is
-- not a file of its own: another user's file planted in a sticky
-- directory others can write (as /tmp), a symbolic link (to a file older
-- than the start), a directory there before the start (whose time a file
-- made in it moves), a hard link to an older file. Each counted at once.
function T.test_what_is_not_the_apps_own_file_does_not_count()
  lu.skipIf(not S.is_root(), "needs root (a file of another user's)")
  local sticky = S.tmpname("sticky")
  assert(os.execute("mkdir " .. sticky .. " && chmod 1777 " .. sticky))
  local old = S.tmpname("old")
  S.touch(old)
  assert(os.execute("touch -d '1 hour ago' " .. old))
  local dir = S.tmpname("dir")
  assert(os.execute("mkdir " .. dir))
  for _, case in ipairs {
    { sticky .. "/planted", "setpriv --reuid=65534 --regid=65534 --clear-groups touch %s",
      "another user's file in a sticky directory" },
    { S.tmpname("link"), "ln -s " .. old .. " %s", "a symbolic link" },
    { dir, "touch %s/made-in-it", "a directory" },
    { S.tmpname("hard"), "ln " .. old .. " %s", "a hard link" },
  } do
    local path, make, why = case[1], case[2], case[3]
    local err = fail_within({ ready = { file = path }, ready_timeout = 0.5,
      argv = { "sh", "-c", string.format(make, path) .. " && exec " .. F .. " pause" } }, "timeout", 3)
    lu.assertStrContains(err.message, why)
  end
end

-- With `user =`, a file counts only as the app's user's, root's or the
-- launcher's, wherever it is: another user who may write the directory
-- (not a sticky one) cannot make the app ready by making it. Without
-- `user =` the app may become any user (a daemon that drops to a user of
-- its own makes the file as that user): such a file counts.
function T.test_with_user_another_users_file_does_not_count_anywhere()
  lu.skipIf(not S.is_root(), "needs root (a file of another user's)")
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir = S.tmpname("shared")
  assert(os.execute("mkdir " .. dir .. " && chmod 777 " .. dir))
  local path = dir .. "/ready"
  local function begin(user)
    return appstart.begin { ready = { file = path }, user = user, ready_timeout = 0.5, stdout = "null",
      stderr = "null", log = S.quiet, argv = { F, "pause" } }
  end
  local function make_as(uid)
    os.remove(path)
    assert(os.execute(string.format("setpriv --reuid=%d --regid=%d --clear-groups touch %s", uid, uid, path)))
  end
  -- (made once the start has begun: a file made after it)
  local h = begin("nobody")
  make_as(1) -- daemon's
  local app, err = h:wait()
  lu.assertNil(app)
  lu.assertEquals(err.code, "timeout")
  lu.assertStrContains(err.message, "another user's file (not the app's user's, root's or the launcher's), refused")
  for _, case in ipairs { { "nobody", core.user("nobody") }, { nil, 1 } } do
    h = begin(case[1])
    make_as(case[2])
    app = assert(h:wait())
    lu.assertEquals(app:terminate().signal, 15)
  end
  S.assert_clean(before)
end

function T.test_a_file_older_than_the_start_does_not_count()
  local before = S.snapshot()
  local path = S.tmpname("made")
  -- left by an earlier run (file times are a clock tick coarse: one made in
  -- the same few milliseconds as the start is not told from a new one)
  S.touch(path)
  assert(os.execute("touch -d '1 second ago' " .. path))
  local app = assert(start { ready = { file = path }, argv = { F, "sleep=0.3", "pidfile=" .. path, "pause" } })
  lu.assertTrue(app.ready_after >= 0.3, "ready at the app's file, not the old one: " .. app.ready_after)
  lu.assertEquals(S.pid_in(path), app.pid)
  app:terminate()
  S.assert_clean(before)
end

function T.test_exec_probe_is_ready_when_its_command_exits_0()
  local before = S.snapshot()
  local path = S.tmpname("made")
  -- (probe_timeout: generous, for a launcher slowed down by valgrind)
  local app = assert(start { ready = { exec = { "test", "-e", path } }, probe_timeout = 5, ready_timeout = 30,
    argv = { F, "sleep=0.2", "pidfile=" .. path, "pause" } })
  lu.assertTrue(app.ready_after >= 0.2, app.ready_after)
  app:terminate()
  S.assert_clean(before)
end

function T.test_an_exec_probe_is_ready_as_its_command_exits_not_at_the_next_try()
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here: the command is looked at at each try")
  local before = S.snapshot()
  local mark = S.tmpname("now")
  -- tries at 0, 1, 3, 7 ... 1023, 2047 ms (probe_interval 5 s): a command
  -- that exits 0 after 1.1 s is seen at 2.047 s when only a try looks at it
  local t0 = now()
  local app = assert(start { ready = { exec = { F, "sleep=1.1", "now=" .. mark } }, probe_interval = 5,
    probe_timeout = 5, ready_timeout = 30, argv = { F, "pause" } })
  local exited = time_in(mark) -- (written just before it exits)
  lu.assertTrue(exited - t0 >= 1.1)
  lu.assertTrue(t0 + app.ready_after - exited < 0.5,
    string.format("seen %.3f s after its command exited", t0 + app.ready_after - exited))
  app:terminate()
  S.assert_clean(before)
end

-- How many processes run with "pidfile=MARK" in their command line: what
-- an exec probe's command forked (in a process group of its own, which
-- S.strays does not look at).
local function forked_left(mark)
  -- ("[p]": the shell that runs pgrep has the pattern too, not what it matches)
  local p = io.popen("pgrep -f " .. S.shell_quote("[p]idfile=" .. mark) .. " 2>/dev/null")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

function T.test_what_an_exec_probes_command_forks_is_not_left_behind()
  local before = S.snapshot()
  local mark = S.tmpname("forked")
  -- each run forks a child that stays, and exits 1 (or hangs past
  -- probe_timeout): none of those children may outlive the start
  local function left() return forked_left(mark) end
  for _, last in ipairs { "exit=1", "pause" } do
    local err = fail_within({ ready = { exec = { F, "fork", "pidfile=" .. mark, "pause", "|", last } },
      probe_timeout = 0.1, ready_timeout = 0.5, argv = { F, "pause" } }, "timeout", 5)
    lu.assertStrContains(err.message, "never exited 0")
    lu.assertTrue(S.await_with_sleep(function() return left() == 0 end, 3), left() .. " forked children left")
  end
  S.assert_clean(before)
end

function T.test_what_an_exec_probes_command_leaves_is_gone_when_the_start_returns()
  local appstart = require "appstart"
  -- each run of the command leaves a child that ignores SIGTERM (set
  -- before the fork: no race), and exits 1. Once the start has failed
  -- nothing of them may run, nor hold a descriptor or a timer of the
  -- launcher's: not at some later call that waits, nor kill_grace later
  for _, where in ipairs { "plain script", "appstart.run" } do
    local before = S.snapshot()
    local mark = S.tmpname("forked")
    local opts = { ready = { exec = { F, "ignore=TERM", "fork", "pidfile=" .. mark, "pause", "|", "exit=1" } },
      ready_timeout = 0.3, kill_grace = 0.2, argv = { F, "pause" } }
    local app, err, left
    if where == "plain script" then
      app, err = start(opts)
      left = forked_left(mark)
    else
      appstart.run(function()
        app, err = start(opts)
        left = forked_left(mark) -- before the run has waited for anything else
      end)
    end
    lu.assertNil(app, where)
    lu.assertEquals(err.code, "timeout", where)
    -- (and, where its group was swept by then, "; 1 other process of its
    -- group or cgroup signalled")
    lu.assertStrContains(err.message, "never exited 0 (the last try: " .. F .. " exited with code 1")
    lu.assertEquals(left, 0, where .. ": the probe's leftovers still run")
    S.assert_clean(before, where)
  end
end

-- The launcher's children that are zombies, named.
local function zombies()
  local out = {}
  for _, pid in ipairs(S.children()) do
    local st = S.proc_status(pid)
    if st and st.State:match("^Z") then out[#out + 1] = string.format("%d (%s)", pid, st.Name) end
  end
  return out
end

-- While a start through a helper is under way the launcher is a child
-- subreaper: what an exec probe's command leaves in its group comes to the
-- launcher when the command exits. The probe killed it and saw the group
-- empty, but never reaped it: one zombie of the launcher's per run, until
-- that other start ended.
function T.test_what_an_exec_probes_command_leaves_is_reaped_while_a_helpers_start_is_under_way()
  local before = S.snapshot()
  local appstart = require "appstart"
  local go = S.tmpname("go")
  -- a helper that reports once go is there: the window is open until then
  local h = appstart.begin { argv = { "pause" }, ready = "none", log = S.quiet,
    helper = { F, "waitfile=" .. go, "fork", "pause", "|", "int32=3:child", "exit=0" } }
  lu.assertTrue(S.testing.subreaper(), "the helper's start holds the adoption window open")
  local app, err = start { argv = { F, "pause" }, ready = { exec = { "sh", "-c", "sleep 600 & exit 1" } },
    ready_timeout = 0.5 }
  local left = zombies() -- right after the start returned
  lu.assertTrue(S.testing.subreaper(), "the helper's start was under way all along")
  S.touch(go)
  local a = assert(h:wait())
  lu.assertEquals(a:terminate(1), { signal = 15 })
  lu.assertNil(app)
  lu.assertEquals(err.code, "timeout")
  lu.assertStrContains(err.message, "never exited 0 (the last try: sh exited with code 1")
  lu.assertEquals(left, {}, "the probe's leftovers are zombies of the launcher's")
  S.assert_clean(before)
end

-- The same for a failed start of a group app: what its main left in its
-- group comes to the launcher while the helper's window is open; the
-- failed start ends it and must reap it too, not leave it a zombie until
-- that other start ends.
function T.test_what_a_failed_group_start_leaves_is_reaped_while_a_helpers_start_is_under_way()
  local before = S.snapshot()
  local appstart = require "appstart"
  local go = S.tmpname("go")
  local h = appstart.begin { argv = { "pause" }, ready = "none", log = S.quiet,
    helper = { F, "waitfile=" .. go, "fork", "pause", "|", "int32=3:child", "exit=0" } }
  lu.assertTrue(S.testing.subreaper(), "the helper's start holds the adoption window open")
  local app, err = appstart.start { argv = { "sh", "-c", "sleep 600 & exit 1" }, kill_mode = "group",
    ready = "notify", ready_timeout = 5, log = S.quiet }
  local left = zombies() -- right after the start returned
  lu.assertTrue(S.testing.subreaper(), "the helper's start was under way all along")
  S.touch(go)
  local a = assert(h:wait())
  lu.assertEquals(a:terminate(1), { signal = 15 })
  lu.assertNil(app)
  lu.assertEquals(err.code, "died")
  lu.assertEquals(left, {}, "what the group app left is a zombie of the launcher's")
  S.assert_clean(before)
end

-- A step woken by something else than the probe (the app's captured
-- output, a line every 10 ms) makes no try before the next is due: each
-- ran an exec probe's command (or called a check function, opened a
-- connection), as fast as the app wrote, whatever probe_interval.
function T.test_the_apps_output_brings_no_try_before_the_next_is_due()
  local before = S.snapshot()
  local runs = S.tmpname("runs")
  local lines = 0
  local err = select(2, start { argv = { "/bin/sh", "-c", "while :; do echo line; sleep 0.01; done" },
    stdout = "capture", on_output = function() lines = lines + 1 end, kill_grace = 0.2,
    ready = { exec = { "/bin/sh", "-c", 'echo x >> "$0"; exit 1', runs } }, probe_interval = 1, ready_timeout = 1.5 })
  lu.assertEquals(err.code, "timeout")
  local tries = #S.lines(S.read(runs))
  -- (1, 2, 4 ... 512 ms apart, then 1 s: a dozen at most in 1.5 s)
  lu.assertTrue(lines > 20, "the app wrote " .. lines .. " lines")
  lu.assertTrue(tries <= 14, tries .. " tries in 1.5 s for " .. lines .. " lines")
  S.assert_clean(before)
end

-- A probe start through a helper counts ready_timeout from the helper's
-- report, as the other readiness kinds do (it counted from the start: a
-- helper that took long left the probe a try, or none).
function T.test_a_probe_behind_a_helper_has_ready_timeout_from_its_report()
  local before = S.snapshot()
  local t0 = now()
  local app, err = start { argv = { "exit=0" }, helper = { F, "sleep=0.6", "fork", "pause", "|", "int32=3:child" },
    ready = { file = S.tmpname("never") }, ready_timeout = 0.5, kill_grace = 1 }
  local took = now() - t0
  lu.assertNil(app)
  lu.assertEquals(err.code, "timeout")
  lu.assertTrue(took >= 1.05, string.format("failed %.3f s after the start: before 0.5 s of probing", took))
  S.assert_clean(before)
end

-- A pass seen only past ready_timeout (a caller's loop that stepped the
-- start late: its command had exited 0 meanwhile) comes too late, and the
-- message says what passed (it spoke of a check function for every kind).
function T.test_a_pass_seen_late_says_what_passed()
  local before = S.snapshot()
  local appstart = require "appstart"
  local ran = S.tmpname("ran")
  local t0 = now()
  local h = appstart.begin { argv = { F, "pause" }, ready = { exec = { "/bin/sh", "-c", ': > "$0"; sleep 0.1', ran } },
    ready_timeout = 1.5, kill_grace = 1, log = S.quiet }
  -- (stepped until the first try's command runs: where the exec's verdict
  -- comes later, a fork rather than a vfork, not at the first step)
  while not S.read(ran) and now() < t0 + 1.5 do
    lu.assertFalse(h:step())
    core.wait_readable(h:pollfd() or -1, 0.01)
  end
  lu.assertNotNil(S.read(ran), "the probe's command never ran")
  core.wait_readable(-1, t0 + 1.8 - now()) -- (the caller busy elsewhere, past the deadline)
  lu.assertNil(h:wait())
  lu.assertEquals(h.err.code, "timeout")
  lu.assertStrMatches(h.err.message, "app not ready within 1%.5 s: its command %(/bin/sh%) exited 0 only after %d%.%d+ s")
  S.assert_clean(before)
end

function T.test_an_exec_probe_that_hangs_is_bounded_by_probe_timeout()
  local mark = S.tmpname("hang")
  local err = fail_within({ ready = { exec = { F, "pidfile=" .. mark, "pause" } }, probe_timeout = 0.2,
    ready_timeout = 2, argv = { F, "pause" } }, "timeout", 5)
  lu.assertStrContains(err.message, "no answer within probe_timeout (0.2 s)")
  -- each hanging probe was killed (fail_within checked nothing is left)
  lu.assertFalse(S.alive(S.pid_in(mark)))
end

-- A run that succeeded while nothing stepped the start, looked at only
-- once probe_timeout has passed (a caller that steps its start late, a
-- loop held up): its exit 0 counts (it was given up, as no answer, and
-- the command run again).
function T.test_an_exec_probe_run_that_succeeded_unseen_past_probe_timeout_counts()
  local before = S.snapshot()
  local appstart = require "appstart"
  local runs = S.tmpname("runs")
  local h = appstart.begin { argv = { F, "pause" }, ready = { exec = { "sh", "-c", "sleep 0.1; echo run >>" .. runs } },
    probe_timeout = 0.3, ready_timeout = 20, log = S.quiet }
  lu.assertFalse(h:step())
  local deadline = now() + 10
  while not S.read(runs) and now() < deadline do core.wait_readable(-1, 0.01) end
  core.wait_readable(-1, 0.5) -- past probe_timeout, nothing stepping
  deadline = now() + 10
  while not h:step() and now() < deadline do core.wait_readable(h:pollfd() or -1, 0.01) end
  local app, err = h:wait()
  lu.assertNotNil(app, tostring(err))
  app:terminate()
  lu.assertEquals(S.read(runs), "run\n", "the command ran once")
  S.assert_clean(before)
end

-- Each run is given up probe_timeout after it began, though the next try
-- comes later: with probe_interval 4 s the tries back off to 0.5, 1, 2 s
-- apart, and a run left until the next try lived that long. A task looks
-- every 20 ms at which command runs (the pid it wrote) and since when.
function T.test_each_exec_probe_run_ends_at_probe_timeout_when_probe_interval_is_longer()
  local before = S.snapshot()
  local appstart = require "appstart"
  local mark = S.tmpname("run")
  local seen, err, done = {}, nil, false
  appstart.run(function()
    appstart.spawn(function()
      local _, e = start { ready = { exec = { F, "pidfile=" .. mark, "pause" } }, probe_timeout = 0.2,
        probe_interval = 4, ready_timeout = 4, argv = { F, "pause" } }
      err, done = e, true
    end)
    while not done do
      local pid = tonumber(S.read(mark) or "")
      if pid and S.alive(pid) then
        local t = now()
        seen[pid] = seen[pid] or { first = t }
        seen[pid].last = t
      end
      appstart.sleep(0.02)
    end
  end)
  lu.assertEquals(err and err.code, "timeout")
  lu.assertStrContains(err.message, "no answer within probe_timeout (0.2 s)")
  local runs, longest = 0, 0
  for _, r in pairs(seen) do runs, longest = runs + 1, math.max(longest, r.last - r.first) end
  lu.assertTrue(runs >= 5, runs .. " runs seen")
  lu.assertTrue(longest < 0.6, string.format("a run lived %.2f s", longest))
  S.assert_clean(before)
end

-- A run given up at probe_timeout is followed by the next try at its
-- time, not at once: with probe_timeout far below probe_interval each
-- run was given up as it began and the next begun, hundreds of runs a
-- second whatever probe_interval (a tcp connect to a full accept queue
-- spun so). Each run that gets as far as its first command counts.
function T.test_a_run_given_up_at_probe_timeout_is_followed_by_the_next_try_at_its_time()
  local before = S.snapshot()
  local runs = S.tmpname("runs")
  local err = select(2, start { argv = { F, "pause" }, kill_grace = 0.2,
    ready = { exec = { "/bin/sh", "-c", 'echo x >> "$0"; exec sleep 5', runs } },
    probe_timeout = 0.005, probe_interval = 0.25, ready_timeout = 1 })
  lu.assertEquals(err.code, "timeout")
  local tries = #S.lines(S.read(runs))
  -- (1, 2, 4 ... 128 ms apart, then 250 ms: a dozen at most in 1 s)
  lu.assertTrue(tries <= 14, tries .. " runs in 1 s")
  S.assert_clean(before)
end

-- A start dropped (never closed, collected) while its exec probe's
-- command runs: the app is killed by the start's finalizer, and the
-- command (and what it forked into its group) by the probe's; the command
-- ran on for ever.
-- An exec probe's run given up on at probe_timeout that the launcher may
-- not kill (a setuid program become root, for a launcher run as nobody;
-- or one in uninterruptible sleep on a hung file system), then a run that
-- exits 0: the start waited for the first one's end for ever, past
-- ready_timeout. It is let go of KILL_WAIT (10 s) after its SIGKILL, and
-- the start says so.
function T.test_an_exec_probes_command_that_cannot_be_killed_is_let_go_of_after_kill_wait()
  lu.skipIf(not S.is_root(), "needs root to install a setuid copy")
  local out = S.run_as_nobody_with_a_root_process("probe_leftover_of_another_user", "mark", 60)
  local took = tonumber(out:match("^ready\t(%d+%.%d+)\n"))
  lu.assertNotNil(took, out)
  lu.assertTrue(took >= 10 and took < 30, out)
  lu.assertStrContains(out, "\nwarn: fixture: 1 run of its ready probe's command (/bin/sh) still ran 10 s after"
    .. " SIGKILL: let go of")
end

function T.test_a_start_dropped_while_its_exec_probe_runs_leaves_no_command_behind()
  local before = S.snapshot()
  local appstart = require "appstart"
  local app_file, probe_file = S.tmpname("app"), S.tmpname("probe")
  local h = appstart.begin { argv = { F, "pidfile=" .. app_file, "pause" }, ready_timeout = 30, log = S.quiet,
    ready = { exec = { F, "pidfile=" .. probe_file, "fork", "pause", "|", "pause" } }, probe_timeout = 20 }
  local deadline = now() + 5
  while not S.read(probe_file) and now() < deadline do
    lu.assertFalse(h:step())
    core.wait_readable(h:pollfd() or -1, 0.01)
  end
  local app_pid, probe_pid = S.pid_in(app_file), S.pid_in(probe_file)
  h = nil -- luacheck: ignore
  collectgarbage()
  collectgarbage()
  lu.assertTrue(S.await_with_sleep(function()
    S.testing.reap()
    return #S.children() == 0
  end), "the dropped start left children")
  lu.assertFalse(S.alive(app_pid))
  lu.assertFalse(S.alive(probe_pid), "the probe's command runs on")
  S.assert_clean(before)
end

function T.test_an_exec_probe_that_cannot_run_fails_the_start_at_once()
  local err = fail_within({ ready = { exec = { "/nonexistent/probe" } }, ready_timeout = 30,
    argv = { F, "pause" } }, "protocol", 2)
  lu.assertStrContains(err.message, "cannot run the probe /nonexistent/probe")
end

-- An app that dies while an exec probe's command runs: died as soon as
-- that command, killed, has ended, whose end wakes the start (it was
-- looked at a poll_interval later: made 5 s here, the start took that).
local function dies_while_the_command_runs(pidfd)
  local appstart = require "appstart"
  local saved = appstart.poll_interval
  appstart.poll_interval = 5
  S.testing.use_pidfd(pidfd)
  local ok, err = pcall(fail_within, { ready = { exec = { F, "pause" } }, probe_timeout = 10, kill_grace = 5,
    argv = { F, "sleep=0.2", "exit=3" } }, "died", 2)
  S.testing.use_pidfd(true)
  appstart.poll_interval = saved
  if not ok then error(err, 0) end
  lu.assertEquals(err.status, { code = 3 })
end

function T.test_an_app_that_dies_while_the_exec_probes_command_runs_fails_at_once()
  dies_while_the_command_runs(true)
end

-- without a pidfd the killed command is looked at soon after its signal,
-- not a poll_interval later
function T.test_without_pidfds_an_app_that_dies_while_the_exec_probes_command_runs_fails_at_once()
  dies_while_the_command_runs(false)
end

function T.test_a_check_function_may_yield_in_a_loop_and_gets_the_app()
  local before = S.snapshot()
  local appstart = require "appstart"
  local calls, ticks, seen_pid = 0, 0, nil
  appstart.run(function()
    appstart.spawn(function()
      for _ = 1, 5 do
        appstart.sleep(0.02)
        ticks = ticks + 1
      end
    end)
    local app = assert(start { ready = { check = function(a)
      seen_pid = a.pid
      calls = calls + 1
      appstart.sleep(0.03) -- yields: the other task runs meanwhile
      return calls >= 3
    end }, argv = { F, "pause" } })
    lu.assertEquals(seen_pid, app.pid)
    app:terminate()
  end)
  lu.assertEquals(calls, 3)
  lu.assertEquals(ticks, 5)
  S.assert_clean(before)
end

function T.test_a_waiting_check_function_loses_to_the_apps_death_and_to_ready_timeout()
  local before = S.snapshot()
  local appstart = require "appstart"
  -- each call waits 3 s: its wait ends early only when its task is
  -- cancelled, as the start ends without it
  local seen = {}
  local function slow_check()
    local r, why = appstart.sleep(3)
    seen[#seen + 1] = why or tostring(r)
    return false
  end
  local died, timed_out = {}, {}
  local t0 = now()
  appstart.run(function()
    died.took, died.app, died.err = S.timed(start, { ready = { check = slow_check }, ready_timeout = 30,
      argv = { F, "sleep=0.2", "exit=3" } })
    timed_out.took, timed_out.app, timed_out.err = S.timed(start, { ready = { check = slow_check },
      ready_timeout = 0.5, argv = { F, "pause" } })
  end)
  local run_took = now() - t0
  lu.assertNil(died.app)
  lu.assertEquals(died.err.code, "died", tostring(died.err))
  lu.assertEquals(died.err.status, { code = 3 })
  lu.assertTrue(died.took >= 0.2 and died.took < 1.5, "died seen after " .. died.took .. " s, not at once")
  lu.assertNil(timed_out.app)
  lu.assertEquals(timed_out.err.code, "timeout", tostring(timed_out.err))
  lu.assertStrContains(timed_out.err.message, "app not ready within 0.5 s: the check function never returned true")
  lu.assertEquals(timed_out.err.status, { signal = 15 })
  lu.assertTrue(timed_out.took >= 0.5 and timed_out.took < 1.5, "timed out after " .. timed_out.took .. " s")
  -- the run did not wait out the checks' waits: their tasks were cancelled
  lu.assertEquals(seen, { "cancelled", "cancelled" })
  lu.assertTrue(run_took < 2.5, "the run took " .. run_took .. " s")
  S.assert_clean(before)
end

-- A check function that polls by yielding plainly (coroutine.yield, no
-- wait of appstart's), for 3 s at most: the start still races the app's
-- death and ready_timeout, and ends before the check does (its task was
-- resumed again and again, the run's descriptors and timers never served
-- meanwhile: each start ended only once its check gave up). One that
-- would poll on for 30 s does not hold the run.
function T.test_a_check_function_that_yields_plainly_loses_to_the_apps_death_and_to_ready_timeout()
  local before = S.snapshot()
  local appstart = require "appstart"
  local checks_ended = 0
  local function yielding_check()
    local t = now()
    while now() - t < 3 do coroutine.yield() end
    checks_ended = checks_ended + 1
    return false, "gave up"
  end
  -- one that would poll on for 30 s: its task, cancelled for good once
  -- its start is over, is closed at its next yield (it held the run)
  local endless_ended = false
  local function endless_check()
    local t = now()
    while now() - t < 30 do coroutine.yield() end
    endless_ended = true
  end
  local died, timed_out, endless = {}, {}, {}
  appstart.run(function()
    appstart.spawn(function()
      died.app, died.err = start { ready = { check = yielding_check }, ready_timeout = 30,
        argv = { F, "sleep=0.1", "exit=3" } }
      died.checks_ended = checks_ended
    end)
    appstart.spawn(function()
      endless.app, endless.err = start { ready = { check = endless_check }, ready_timeout = 0.3,
        argv = { F, "pause" } }
    end)
    appstart.spawn(function()
      timed_out.app, timed_out.err = start { ready = { check = yielding_check }, ready_timeout = 0.3,
        argv = { F, "pause" } }
      timed_out.checks_ended = checks_ended
    end)
  end)
  lu.assertNil(died.app)
  lu.assertEquals(died.err.code, "died", tostring(died.err))
  lu.assertEquals(died.err.status, { code = 3 })
  lu.assertEquals(died.checks_ended, 0, "the app's death was seen only once a check gave up")
  lu.assertNil(timed_out.app)
  lu.assertEquals(timed_out.err.code, "timeout", tostring(timed_out.err))
  lu.assertEquals(timed_out.err.status, { signal = 15 })
  lu.assertEquals(timed_out.checks_ended, 0, "the timeout came only once a check gave up")
  lu.assertEquals(endless.err and endless.err.code, "timeout", tostring(endless.err))
  lu.assertFalse(endless_ended, "the run waited for the endless check")
  S.assert_clean(before)
end

-- A check function that polls on regardless of the "cancelled" its wait
-- returned once its start failed: its next wait raises, which ends it, so
-- the run returns (it waited for the check for good).
function T.test_a_check_function_that_waits_on_after_its_start_failed_does_not_hold_the_run()
  local before = S.snapshot()
  local appstart = require "appstart"
  local never = S.tmpname("never")
  local err, tries_after, failed_at
  local tries = 0
  appstart.run(function()
    local app
    app, err = start { argv = { F, "pause" }, ready_timeout = 0.3, ready = { check = function()
      while not io.open(never) do
        tries = tries + 1
        appstart.sleep(0.05)
      end
      return true
    end } }
    lu.assertNil(app)
    failed_at = tries
  end)
  tries_after = tries - failed_at
  lu.assertEquals(err.code, "timeout", tostring(err))
  lu.assertTrue(tries_after <= 1, tries_after .. " more tries after the start failed")
  S.assert_clean(before)
end

-- The same with a check that retries on any error, so catches the one
-- its next wait raises: the wait after that closes its task, inside
-- appstart.run and under luv. It raised again and again without ever
-- yielding, and held the run at full CPU for good (run in a child,
-- bounded: it hung).
function T.test_a_check_function_that_catches_the_error_of_its_wait_does_not_hold_the_run()
  for _, context in ipairs { "run", "luv" } do
    local out, ok = S.run_child({ timeout = 20 }, "probes_check_catches_every_error", context)
    lu.assertTrue(ok, context .. ": " .. out)
    lu.assertEquals(out, "timeout\tdone\tclosed\t1\n", context)
  end
  -- under cqueues, which cannot close it, each wait raises after a pause
  -- (it raised at once: the check never yielded and held the controller
  -- for good, the failed start never returning to its caller); the check
  -- gives up 1 s after the start failed
  local out, ok = S.run_child({ timeout = 20 }, "probes_check_catches_every_error", "cqueues")
  lu.assertTrue(ok, "cqueues: " .. out)
  local raises = tonumber(out:match("^timeout\tdone\tclosed\t(%d+)\n$"))
  lu.assertNotNil(raises, out)
  lu.assertTrue(raises >= 2 and raises <= 15, raises .. " raises in about 1 s")
end

function T.test_cancelling_a_start_while_its_check_function_waits_cancels_the_start()
  local before = S.snapshot()
  local appstart = require "appstart"
  local entered, check_saw, got = false, nil, {}
  appstart.run(function()
    local task = appstart.spawn(function()
      got.took, got.app, got.err = S.timed(start, { ready = { check = function()
        entered = true
        local r, why = appstart.sleep(3)
        check_saw = why or tostring(r)
        return true -- (too late: the start was cancelled meanwhile)
      end }, ready_timeout = 30, argv = { F, "pause" } })
      if got.app then got.app:terminate() end
    end)
    -- the start's task is cancelled once its check function waits
    lu.assertTrue(S.await_with_sleep(function() return entered end, 5), "the check function was never called")
    task:cancel()
  end)
  lu.assertNil(got.app, "a cancelled start returned an app")
  lu.assertEquals(got.err.code, "cancelled", tostring(got.err))
  lu.assertEquals(got.err.status, { signal = 15 }, "the app was terminated")
  lu.assertTrue(got.took < 2, "the start returned after " .. got.took .. " s")
  lu.assertEquals(check_saw, "cancelled", "the check function's wait was cancelled with its start")
  S.assert_clean(before)
end

-- scenario(out) in a coroutine of a cqueues controller or of luv's loop
-- ("cqueues" | "luv"), run until the loop has nothing left
local function in_a_coroutine_of(under, scenario, out)
  if under == "cqueues" then
    local cq = require("cqueues").new()
    cq:wrap(scenario, out)
    assert(cq:loop())
    cq = nil -- luacheck: ignore (its own descriptors go with it)
    collectgarbage()
  else
    coroutine.wrap(scenario)(out)
    require("luv").run()
  end
end

function T.test_under_cqueues_and_luv_a_check_function_waits_in_a_coroutine_of_its_own()
  local appstart = require "appstart"
  require "appstart.luv" -- (luv's own descriptors before the snapshots)
  -- in a coroutine of the event loop: an app that dies while its check
  -- function waits fails died at once; a check function that returns
  -- after a wait wakes its start at once (probe_interval 5 s: not at the
  -- next try)
  local function scenario(out)
    local released = false -- the slow check waits until then (3 s at most)
    local function slow_check()
      local until_ = now() + 3
      while not released and now() < until_ do appstart.sleep(0.01) end
      return false
    end
    out.took, out.app, out.err = S.timed(start, { ready = { check = slow_check }, ready_timeout = 30,
      argv = { F, "sleep=0.2", "exit=3" } })
    released = true
    local calls = 0
    out.ready = start { ready = { check = function()
      calls = calls + 1
      appstart.sleep(0.05)
      return calls >= 2
    end }, probe_interval = 5, argv = { F, "pause" } }
    out.calls = calls
    if out.ready then out.how = out.ready:terminate() end
  end
  for _, under in ipairs { "cqueues", "luv" } do
    local before = S.snapshot()
    local out = {}
    in_a_coroutine_of(under, scenario, out)
    lu.assertNil(out.app, under)
    lu.assertEquals(out.err.code, "died", under .. ": " .. tostring(out.err))
    lu.assertTrue(out.took < 1.5, under .. ": died seen after " .. out.took .. " s, not at once")
    lu.assertNotNil(out.ready, under)
    lu.assertEquals(out.calls, 2, under)
    lu.assertTrue(out.ready.ready_after < 1, under .. ": ready after " .. out.ready.ready_after .. " s")
    lu.assertEquals(out.how, { signal = 15 }, under)
    S.assert_clean(before, under)
  end
end

-- A start that ends while its check function waits cancels the check's
-- coroutine under cqueues and luv too: its wait returns nil, "cancelled",
-- and the event loop is not held until the check's own wait would end.
function T.test_under_cqueues_and_luv_a_start_that_ends_cancels_its_waiting_check()
  local appstart = require "appstart"
  require "appstart.luv" -- (luv's own descriptors before the snapshots)
  local function scenario(out)
    out.err = select(2, start { ready_timeout = 30, argv = { F, "sleep=0.1", "exit=3" },
      ready = { check = function()
        out.slept = { appstart.sleep(20) }
        return true
      end } })
  end
  for _, under in ipairs { "cqueues", "luv" } do
    local before = S.snapshot()
    local out = {}
    local t0 = now()
    in_a_coroutine_of(under, scenario, out)
    local took = now() - t0
    lu.assertEquals(out.err and out.err.code, "died", under)
    lu.assertEquals(out.slept, { nil, "cancelled" }, under)
    lu.assertTrue(took < 10, under .. ": the loop ran " .. took .. " s, held by the check's wait")
    S.assert_clean(before, under)
  end
end

-- A check function that polls on regardless of the "cancelled" its wait
-- returned once its start failed, under cqueues and luv: its next wait
-- raises, as inside appstart.run (each wait returned "cancelled" at once,
-- without yielding: the check spun at full CPU, holding the whole loop,
-- and the start's ready_timeout never came; here it gives up after 4 s).
function T.test_under_cqueues_and_luv_a_check_function_that_waits_on_after_its_start_failed_does_not_hold_the_loop()
  local appstart = require "appstart"
  require "appstart.luv" -- (luv's own descriptors before the snapshots)
  local never = S.tmpname("never")
  local function scenario(out)
    local give_up = now() + 4
    out.took, out.app, out.err = S.timed(start, { argv = { F, "pause" }, ready_timeout = 0.3,
      ready = { check = function()
        while not io.open(never) and now() < give_up do
          out.tries = out.tries + 1
          appstart.sleep(0.05)
        end
        return true
      end } })
    out.failed_at = out.tries
    -- the loop runs on: were the check still waiting, it would try again
    appstart.sleep(0.3)
  end
  for _, under in ipairs { "cqueues", "luv" } do
    local before = S.snapshot()
    local out = { tries = 0 }
    in_a_coroutine_of(under, scenario, out)
    lu.assertNil(out.app, under)
    lu.assertEquals(out.err.code, "timeout", under .. ": " .. tostring(out.err))
    lu.assertTrue(out.took < 2, under .. ": the start returned after " .. out.took .. " s, the loop held by the check")
    -- (one woken by the cancel, and one more where the check's sleep ran
    -- out in the same turn of the loop as the start failed, seen under
    -- ASan: a check that spun, or kept polling, tried hundreds of times)
    local tries_after = out.tries - out.failed_at
    lu.assertTrue(tries_after <= 2, under .. ": " .. tries_after .. " more tries after the start failed")
    S.assert_clean(before, under)
  end
end

function T.test_a_check_function_that_raises_fails_the_start()
  local err = fail_within({ ready = { check = function() error("no such table", 0) end },
    argv = { F, "pause" } }, "protocol", 2)
  lu.assertStrContains(err.message, "the check function raised no such table")
end

-- A check function that steps or waits for its own start (h:step(),
-- h:wait()) is refused at once, in a plain script (where its call is that
-- start's step: a nested wait finished the start under the outer step,
-- which then failed on what was gone, and a nested step recursed until
-- the C stack ran out) as in a loop (where it would wait on itself until
-- ready_timeout). Refused there and caught, the start goes on; not
-- caught, it is the check's error: the start fails, its app terminated.
function T.test_a_check_function_that_steps_or_waits_for_its_own_start_is_refused()
  local appstart = require "appstart"
  local function scenario(how, n)
    local h, tries, refused = nil, 0, nil
    local t0 = now()
    h = appstart.begin { argv = { F, "pause" }, ready_timeout = 5, kill_grace = 0.2, log = S.quiet,
      ready = { check = function()
        tries = tries + 1
        if tries == n then
          if how == "caught" then
            local ok, why = pcall(h.wait, h)
            refused = not ok and why
          else
            h:step()
          end
        end
        return tries > n
      end } }
    local app, err = h:wait()
    return app, err, refused, now() - t0
  end
  for _, in_loop in ipairs { false, true } do
    local before = S.snapshot()
    local app, err, refused, took
    local function run() app, err, refused, took = scenario("caught", 2) end
    if in_loop then appstart.run(run) else run() end
    lu.assertNotNil(app, tostring(err))
    lu.assertEquals(refused, "appstart: a check function cannot step or wait for its own start (h:step, h:wait)")
    lu.assertTrue(took < 3, "ready after " .. took .. " s")
    lu.assertEquals(app:terminate(1).signal, 15)
    local function run2() app, err = scenario("raised", 2) end
    if in_loop then appstart.run(run2) else run2() end
    lu.assertNil(app)
    lu.assertEquals(err.code, "protocol", tostring(err))
    lu.assertStrContains(err.message, "the check function raised")
    lu.assertStrContains(err.message, "a check function cannot step or wait for its own start (h:step, h:wait)")
    S.assert_clean(before, in_loop and "in a loop" or "plain")
  end
end

-- A check function that abandons its own start (h:abandon(): it gives
-- up) ends it there: the start fails "cancelled", its app terminated,
-- whatever the check returns (it came back ready, its app dying of the
-- SIGTERM), in a plain script as in a loop.
function T.test_a_check_function_that_abandons_its_own_start_fails_it_cancelled()
  local appstart = require "appstart"
  for _, in_loop in ipairs { false, true } do
    local before = S.snapshot()
    local app, err, pid
    local function run()
      local h
      h = appstart.begin { argv = { F, "ignore=TERM", "pause" }, ready_timeout = 5, kill_grace = 0.2, log = S.quiet,
        ready = { check = function(a)
          pid = a.pid
          lu.assertEquals(h:abandon(), false)
          return true
        end } }
      app, err = h:wait()
    end
    if in_loop then appstart.run(run) else run() end
    local what = in_loop and "in a loop" or "plain"
    lu.assertNil(app, what)
    lu.assertEquals(err.code, "cancelled", tostring(err))
    lu.assertFalse(S.alive(pid), what .. ": the app outlived its abandoned start")
    S.assert_clean(before, what)
  end
end

-- A check function that blocks past ready_timeout (a plain script's
-- blocking call) and then returns true comes too late: the start fails
-- "timeout", as it does for an exec probe's command that exits 0 after
-- the deadline (it came back ready after the block).
function T.test_a_check_function_that_passes_after_ready_timeout_fails_timeout()
  local err, took = fail_within({ ready = { check = function()
    os.execute("sleep 0.6")
    return true
  end }, ready_timeout = 0.2, argv = { F, "pause" } }, "timeout", 3)
  lu.assertTrue(took >= 0.6, took)
  lu.assertStrMatches(err.message,
    "app not ready within 0.2 s: the check function returned true only after 0%.[6-9]%d%d s")
end

-- A check function that blocks (a plain script's blocking call) past the
-- app's death and ready_timeout, and then returns false: the start fails
-- "died", as an app that dies while it is probed does (it failed
-- "timeout", though err.status said the app had exited). It blocks until
-- the app is dead (a zombie: nothing reaps it meanwhile) and the deadline
-- has passed.
function T.test_a_check_function_that_blocks_past_the_apps_death_and_ready_timeout_fails_died()
  local calls = 0
  local err = fail_within({ ready = { check = function(app)
    calls = calls + 1
    local t0 = now()
    while calls == 1 do
      local st = S.proc_status(app.pid)
      if (not st or st.State:match("^Z")) and now() >= t0 + 1.2 then break end
      core.wait_readable(-1, 0.02)
    end
    return false
  end }, ready_timeout = 1, argv = { F, "sleep=0.3", "exit=3" } }, "died", 10)
  lu.assertEquals(err.status.code, 3)
  lu.assertStrContains(err.message, "app exited with code 3 before it was ready")
end

function T.test_a_check_functions_reason_or_error_that_tostring_cannot_show_fails_the_start()
  -- (a __tostring that raises: the start fails, it does not raise)
  local unshowable = setmetatable({}, { __tostring = function() error("no text for this", 0) end })
  local err = fail_within({ ready = { check = function() return nil, unshowable end },
    argv = { F, "pause" } }, "protocol", 2)
  lu.assertStrContains(err.message, "the check function returned a reason that cannot be shown: no text for this")
  err = fail_within({ ready = { check = function() error(unshowable) end },
    argv = { F, "pause" } }, "protocol", 2)
  lu.assertStrContains(err.message, "the check function raised an error that cannot be shown: no text for this")
end

function T.test_why_a_check_function_said_no_is_in_the_timeouts_message()
  local err = fail_within({ ready = { check = function() return nil, "replica lags 3 s" end }, ready_timeout = 0.2,
    argv = { F, "pause" } }, "timeout", 3)
  lu.assertStrContains(err.message, "the check function never returned true (the last try: replica lags 3 s)")
end

-- What a check function says, its reason (nil, why) or its error, may
-- quote what the app sent (a page's body): it is logged with its control
-- characters escaped (a terminal's escapes reached the log raw), and cut
-- when long (a 1 MB reason was kept, and logged whole).
function T.test_a_check_functions_reason_and_error_are_logged_escaped_and_cut()
  local function logged(check, code)
    local lines = {}
    local err = fail_within({ ready = { check = check }, ready_timeout = 0.3, argv = { F, "pause" },
      log = function(_, message) lines[#lines + 1] = message end }, code, 3)
    local all = table.concat(lines, "\n")
    for _, raw in ipairs { "\27", "\7" } do
      lu.assertNotStrContains(all, raw)
      lu.assertNotStrContains(err.message, raw)
    end
    return all
  end
  local evil = "x\27]0;owned\7"
  lu.assertStrContains(logged(function() return nil, evil end, "timeout"), "(the last try: x\\x1b]0;owned\\x07)")
  lu.assertStrContains(logged(function() error(evil, 0) end, "protocol"), "the check function raised x\\x1b]0;owned\\x07")
  local huge = string.rep("y", 1 << 20)
  local cut = "y[... " .. ((1 << 20) - 1024) .. " bytes more]"
  for _, case in ipairs { { function() return nil, huge end, "timeout" }, { function() error(huge, 0) end, "protocol" } } do
    local all = logged(case[1], case[2])
    lu.assertTrue(#all < 10000, #all .. " bytes logged")
    lu.assertStrContains(all, cut)
  end
end

function T.test_probe_mistakes_raise_at_the_callers_line()
  local here = "probes_spec.lua:" .. (debug.getinfo(1, "l").currentline + 3) .. ":"
  local function check(ready, want, extra)
    local opts = { argv = { F }, ready = ready }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local err = raised(function() require("appstart").start(opts) end)
    lu.assertStrContains(err, want)
    return err
  end
  lu.assertStrContains(check({}, "empty probe table"), "field 'ready'")
  check({ connect = "tcp:host" }, "'tcp:HOST:PORT' expected")
  check({ connect = "tcp:host:70000" }, "port from 1 to 65535")
  check({ connect = "http://x" }, "'tcp:HOST:PORT' or 'unix:PATH' expected")
  -- a path no socket address holds: an argument error, nothing spawned
  check({ connect = "unix:/tmp/" .. string.rep("x", 120) }, "a path of 107 bytes at most")
  check({ connect = "unix:/a", file = "/b" }, "one probe at a time")
  check({ poll = "/x" }, "unknown probe 'poll'")
  check({ exec = {} }, "must not be empty")
  check({ check = "fn" }, "check: function expected, got string")
  check("none", "'probe_interval': has no effect without a probe", { probe_interval = 1 })
  check({ file = "/x" }, "'probe_timeout': must be a number of seconds > 0", { probe_timeout = 0 })
  -- (tries that start 1 ms apart: a longest wait of less tried in a busy
  -- loop, a CPU all along)
  check({ file = "/x" }, "'probe_interval': must be at least 0.001 s (the tries start 1 ms apart; less would spin)",
    { probe_interval = 1e-9 })
  local app, e = require("appstart").start { argv = { F, "pause" }, ready = { file = S.tmpname("never") },
    probe_interval = 0.001, ready_timeout = 0.05 }
  lu.assertNil(app)
  lu.assertEquals(e.code, "timeout")
  -- tries that end at once: nothing for probe_timeout to bound
  local no_effect = "'probe_timeout': has no effect without an exec or tcp connect probe"
  check({ file = "/x" }, no_effect, { probe_timeout = 1 })
  check({ check = function() return true end }, no_effect, { probe_timeout = 1 })
  check({ connect = "unix:/x" }, no_effect, { probe_timeout = 1 })
  local err = raised(function() require("appstart").start { argv = { F }, ready = { file = "" } } end)
  lu.assertStrContains(err, "file: must not be empty")
  lu.assertNotNil(here)
end

function T.test_the_command_takes_unix_tcp_and_file_probes()
  local sock = S.tmpname("sock")
  local out = S.tmpname("out")
  local bin = S.spec_dir .. "/../lua/bin/appstart"
  local cmd = string.format(S.san_prefix .. "lua5.4 %s --json --ready=unix:%s -- %s sleep=0.1 listen=unix:%s pause >%s 2>&1",
    bin, sock, F, sock, out)
  lu.assertTrue(os.execute(cmd), S.read(out))
  local pid = tonumber(S.read(out):match('"pid":(%d+)'))
  lu.assertNotNil(pid, S.read(out))
  lu.assertTrue(S.alive(pid))
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid, 3))
  local path = S.tmpname("file")
  cmd = string.format(S.san_prefix .. "lua5.4 %s --ready=file:%s --timeout=0.3 --grace=0.1 -- %s pause >%s 2>&1",
    bin, path, F, out)
  local ok, _, code = os.execute(cmd)
  lu.assertNotEquals(ok, true)
  lu.assertEquals(code, 1)
  lu.assertStrContains(S.read(out), path .. " was not made")
  cmd = string.format(S.san_prefix .. "lua5.4 %s --ready=tcp:localhost:99999 -- %s >%s 2>&1", bin, F, out)
  ok, _, code = os.execute(cmd)
  lu.assertNotEquals(ok, true)
  lu.assertEquals(code, 2)
  lu.assertStrContains(S.read(out), "port from 1 to 65535")
end

-- The probes that wait on the app's end, and on an exec probe's command,
-- where the kernel has no pidfds (kill(pid, 0) is polled instead)
local Waits = { setUp = T.setUp, tearDown = T.tearDown }
for _, name in ipairs { "test_a_waiting_check_function_loses_to_the_apps_death_and_to_ready_timeout",
  "test_what_an_exec_probes_command_leaves_is_gone_when_the_start_returns",
  "test_what_an_exec_probes_command_leaves_is_reaped_while_a_helpers_start_is_under_way" } do
  Waits[name] = T[name]
end

return { TestProbes = T, TestProbesNoPidfd = S.without_pidfd(Waits) }
