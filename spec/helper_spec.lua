--- appstart-helper on its own, and what it and the notify socket refuse;
-- then copies of it installed setuid root (and with file capabilities), run
-- by nobody under a policy file the suite writes.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F, H = S.fixture, S.helper

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Run the helper by hand with fd 3 going to a file: exit code, the bytes
-- it wrote as the pid, its stderr.
local function run_helper(args, prefix)
  local pidout, errout = S.tmpname("pidrec"), S.tmpname("stderr")
  local words = {}
  for i, a in ipairs(args) do words[i] = sh_quote(a) end
  local _, _, code = os.execute((prefix or "") .. sh_quote(H) .. " " .. table.concat(words, " ") ..
    " 3>" .. pidout .. " 2>" .. errout .. " </dev/null")
  return code, S.read(pidout), S.read(errout)
end

local function le32(s)
  local a, b, c, d = s:byte(1, 4)
  return a + b * 256 + c * 65536 + d * 16777216
end

--- Apps started in a session of their own (so not among S.strays), killed
-- by tearDown whatever a test did.
local started = {}

--- The pid in a pid record, remembered for tearDown; nil if there is none.
local function track(rec)
  if #rec ~= 4 then return nil end
  local pid = le32(rec)
  started[#started + 1] = pid
  return pid
end

local function kill_started()
  for _, pid in ipairs(started) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  started = {}
  S.kill_strays()
end

local T = {}

T.tearDown = kill_started

function T.test_reports_the_pid_of_the_program_it_started_then_exits_0()
  local pidfile = S.tmpname("pid")
  local code, rec = run_helper { "--", F, "pidfile=" .. pidfile, "pause" }
  lu.assertEquals(code, 0)
  lu.assertEquals(#rec, 4)
  local pid = le32(rec)
  lu.assertEquals(tonumber(S.await_file(pidfile)), pid)
  lu.assertEquals(S.proc_status(pid).PPid, "1", "the app is not the helper's child any more")
  os.execute("kill -9 " .. pid)
end

function T.test_line_format_and_another_pid_fd()
  local pidout = S.tmpname("pidline")
  local pidfile = S.tmpname("pid")
  local _, _, code = os.execute(sh_quote(H) .. " --pid-fd=5 --pid-format=line -- " .. F ..
    " pidfile=" .. pidfile .. " fds=" .. pidfile .. ".fds pause 5>" .. pidout .. " 2>" .. pidout .. ".err")
  lu.assertEquals(code, 0, S.read(pidout .. ".err"))
  local pid = S.read(pidout):match("^(%d+)\n$")
  lu.assertEquals(pid, S.await_file(pidfile):match("%d+"))
  -- the app does not inherit the pid channel
  lu.assertNotStrContains("\n" .. S.await_file(pidfile .. ".fds"), "\n5\n")
  os.execute("kill -9 " .. pid)
end

function T.test_path_searches_the_callers_directories_not_the_apps_path()
  local dir = S.fixture:match("^(.*)/[^/]*$")
  local pidfile = S.tmpname("pid")
  local code, rec = run_helper { "--path", "/nonexistent:" .. dir, "--", "fixture", "pidfile=" .. pidfile, "pause" }
  lu.assertEquals(code, 0)
  local pid = le32(rec)
  lu.assertEquals(tonumber(S.await_file(pidfile)), pid)
  os.execute("kill -9 " .. pid)
end

--- The helper (standalone: it shares no code with the core) gives an app
-- the core's default PATH, and looks a name up there when it is given no
-- --path: the two agree.
function T.test_the_helpers_default_path_is_the_cores()
  local p = io.popen(H .. " --help 2>&1")
  local text = p:read("a")
  p:close()
  lu.assertStrContains(text, "gets PATH=" .. S.core.default_path .. ",")
end

-- With user =, argv[1] is searched in the launcher's PATH, as without a
-- helper: an env = that has no PATH (or another) changes nothing.
function T.test_with_user_argv1_is_searched_in_the_launchers_path()
  local dir = S.fixture:match("^(.*)/[^/]*$")
  local uid = S.proc_status("self").Uid:match("%d+")
  local out = S.run_child({ env = { PATH = dir .. ":" .. os.getenv("PATH") } },
    "helper_user_argv1_searched_in_launchers_path", uid)
  lu.assertEquals(out, "ready\nready\nleft\t\n")
  -- a launcher with no PATH: where the core looks, not the app's PATH
  -- (the helper took the env's, where the fixture is)
  out = S.run_child({ no_path = true }, "helper_user_argv1_searched_in_launchers_path", uid, dir)
  lu.assertEquals(out, "spawn\nspawn\nleft\t\n")
end

function T.test_exec_failures_write_no_pid_and_exit_127_or_126()
  local code, rec, err = run_helper { "--", "/nonexistent/program" }
  lu.assertEquals(code, 127)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "cannot execute /nonexistent/program")
  code, rec = run_helper { "--", "/etc/passwd" }
  lu.assertEquals(code, 126)
  lu.assertEquals(rec, "")
  lu.assertEquals(S.children(), {})
end

function T.test_usage_errors_exit_2()
  lu.assertEquals((run_helper { "--bogus", "--", "true" }), 2)
  lu.assertEquals((run_helper { "--" }), 2)
  lu.assertEquals((run_helper { "--pid-fd=2", "--", "true" }), 2)
end

-- An option given twice (the first was replaced: --user daemon --user
-- nobody ran the app as nobody), or --path with a command that names its
-- file (never searched: the path was ignored), is refused, nothing run.
function T.test_what_would_be_ignored_is_a_usage_error()
  local marker = S.tmpname("ran")
  for _, case in ipairs {
    { { "--user", "daemon", "--user", "nobody" }, "option given twice: --user" },
    { { "--pid-fd", "3", "--pid-fd=4" }, "option given twice: --pid-fd" },
    { { "--chdir", "/", "--chdir", "/tmp" }, "option given twice: --chdir" },
    { { "--pid-format", "line", "--pid-format", "int32le" }, "option given twice: --pid-format" },
    { { "--path", "/nonexistent" }, "--path does not go with a command that names its path: " .. F },
  } do
    local args = table.move(case[1], 1, #case[1], 1, {})
    for _, a in ipairs { "--", F, "pidfile=" .. marker } do args[#args + 1] = a end
    local code, rec, err = run_helper(args)
    lu.assertEquals(code, 2, err)
    lu.assertEquals(rec, "")
    lu.assertStrContains(err, case[2])
    lu.assertNil(S.read(marker), "the program ran")
  end
  lu.assertEquals(S.children(), {})
end

-- The app's own arguments are not the helper's, though no "--" comes
-- before them: one that looks like --module-version (or --error-fd) is
-- the app's (the helper refused to run, on the app's say-so).
function T.test_the_apps_arguments_are_never_read_as_the_helpers_options()
  local out = S.tmpname("out")
  local code, rec, err = run_helper { "--pid-format", "line", "/bin/sh", "-c", 'echo "$@" > "$0.tmp" && mv "$0.tmp" "$0"', out,
    "--module-version", "0.0.9", "--error-fd", "3" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(err, "")
  lu.assertStrMatches(rec, "%d+\n")
  lu.assertEquals(S.await_file(out), "--module-version 0.0.9 --error-fd 3\n")
  lu.assertTrue(S.await_gone(tonumber(rec), 3))
  lu.assertEquals(S.children(), {})
end

-- A pid that cannot be written (a full disk, a descriptor open for
-- reading, a reader gone) leaves no app running that its caller cannot
-- know: it is killed, and the helper exits 1 (it ran on, as another user,
-- out of the caller's reach).
function T.test_an_app_whose_pid_cannot_be_written_is_killed()
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  for _, channel in ipairs { "3>/dev/full", "3</dev/null" } do
    local errout = S.tmpname("stderr")
    local _, _, code = os.execute(sh_quote(H) .. " --user nobody -- " .. sh_quote(F) .. " pause " .. channel
      .. " 2>" .. errout .. " </dev/null")
    local err = S.read(errout)
    local pid = tonumber(err:match("cannot write the pid of %S+ %((%d+)%)"))
    lu.assertNotNil(pid, err)
    started[#started + 1] = pid
    lu.assertEquals(code, 1, err)
    lu.assertStrContains(err, ": the app killed\n")
    -- killed and reaped by the helper before it exited: no zombie left
    lu.assertNil(S.read("/proc/" .. pid .. "/stat"), channel .. ": the app runs on, or was not reaped")
  end
end

function T.test_signal_mode_usage_errors_exit_2_and_name_what_is_wrong()
  local function usage(args, why)
    local code, _, err = run_helper(args)
    lu.assertEquals(code, 2, err)
    lu.assertStrContains(err, why)
  end
  usage({ "--signal", "15" }, "--signal needs --user")
  usage({ "--signal", "15", "--user", "nobody", "--chdir", "/" }, "does not go with --signal: --chdir")
  usage({ "--signal", "15", "--user", "nobody", "--pid-fd", "4" }, "does not go with --signal: --pid-fd")
  usage({ "--signal", "15", "--user", "nobody", "--", F }, "--signal takes no command")
  usage({ "--signal", "65", "--user", "nobody" }, "--signal must be a signal number (0 to 64)")
  usage({ "--signal", "TERM", "--user", "nobody" }, "--signal must be a signal number")
  usage({ "--process-group", "--", F }, "--process-group, --pidfd and --pgid go with --signal only")
  usage({ "--pidfd", "3", "--", F }, "--process-group, --pidfd and --pgid go with --signal only")
  usage({ "--pgid", "5", "--", F }, "--process-group, --pidfd and --pgid go with --signal only")
  -- kill(-1) would reach every process of the user
  usage({ "--signal", "15", "--user", "nobody", "--pgid", "1" }, "--pgid must be a process group (2 or more)")
  usage({ "--signal", "15", "--user", "nobody", "--pgid", "5", "--process-group" }, "no --process-group or --pidfd")
  -- a descriptor that is no pidfd (a file at fd 3): refused, exit 1
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  local code, _, err = run_helper { "--signal", "15", "--user", "nobody" }
  lu.assertEquals(code, 1, err)
  lu.assertStrContains(err, "fd 3 is not a pidfd")
  -- a group of root's processes: nobody reaches none of them, exit 4
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none", kill_mode = "group" })
  code, _, err = run_helper { "--signal", "15", "--user", "nobody", "--pgid", tostring(app.pid) }
  lu.assertEquals(code, 4, err)
  lu.assertStrContains(err, "process group " .. app.pid .. " has no process running as nobody: not signalled")
  lu.assertTrue(S.alive(app.pid))
  lu.assertEquals(app:terminate(1).signal, 15)
end

--- A module and a helper of two versions (an upgrade that left one behind):
-- the helper says so, by hand (exit 2) and to a start, which fails
-- `helper` with its words and leaves nothing; a helper that takes the
-- module's options as a usage error without saying why (one older than
-- --module-version, its words on the app's stderr) is named as the
-- likely cause.
function T.test_a_helper_of_another_version_than_the_modules_says_so()
  local code, _, err = run_helper { "--module-version", appstart.version, "--", F }
  lu.assertEquals(code, 0, err)
  code, _, err = run_helper { "--module-version", "9.9.9", "--", F }
  lu.assertEquals(code, 2)
  lu.assertEquals(err, "appstart-helper: this is appstart-helper " .. appstart.version ..
    ", called by appstart 9.9.9: install the helper built with the module\n")
  code, _, err = run_helper { "--module-version", "9.9.9", "--signal", "15", "--user", "nobody" }
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "called by appstart 9.9.9")
  -- said before any option is parsed (one it does not know, a module's
  -- newer one), on the error fd where one is named
  local rec
  code, rec, err = run_helper { "--module-version=9.9.9", "--bogus", "--error-fd", "3", "--", F }
  lu.assertEquals({ code, err }, { 2, "" })
  lu.assertEquals(rec, "appstart-helper: this is appstart-helper " .. appstart.version ..
    ", called by appstart 9.9.9: install the helper built with the module\n")
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  local saved = appstart.helper_path
  local before = S.snapshot()
  local ok, failure = pcall(function()
    appstart.helper_path = S.fixtures .. "/appstart-helper-other"
    local app, e = appstart.start { argv = { F, "pause" }, user = "nobody", ready = "none", log = S.quiet }
    lu.assertNil(app)
    lu.assertEquals(e.code, "helper")
    lu.assertStrContains(e.message, "this is appstart-helper 0.0.0-other, called by appstart " .. appstart.version ..
      ": install the helper built with the module")
    -- a signal through it (an unprivileged launcher's to another user's
    -- app): what signal.through says, the target left running (nil
    -- without pidfds)
    local function signal_through()
      if not S.testing.has_pidfd() then return nil end
      local target = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
      local proc = assert(require("appstart.core").process(target.pid))
      local r = { require("appstart.signal").through(proc:fd(), { user = "nobody" }, "TERM") }
      proc:close()
      lu.assertTrue(S.alive(target.pid))
      target:kill("KILL")
      target:wait()
      return r
    end
    local r = signal_through()
    if r then
      lu.assertEquals(r, { nil, "this is appstart-helper 0.0.0-other, called by appstart " .. appstart.version ..
        ": install the helper built with the module" })
    end
    local path = S.tmpname("old-helper")
    local f = assert(io.open(path, "w"))
    f:write("#!/bin/sh\necho 'appstart-helper: unknown option: --module-version' >&2\n"
      .. "echo 'usage: appstart-helper [--user NAME|UID] ...' >&2\nexit 2\n")
    f:close()
    assert(os.execute("chmod 755 " .. path))
    appstart.helper_path = path
    app, e = appstart.start { argv = { F, "pause" }, user = "nobody", ready = "none", stderr = "null",
      log = S.quiet }
    lu.assertNil(app)
    lu.assertEquals(e.code, "helper")
    lu.assertStrContains(e.message, "exited with code 2 without reporting a pid on fd 3 (a usage error: is " .. path ..
      " the appstart-helper of appstart " .. appstart.version .. "?)")
    -- and a signal through it: its first words, and the likely cause (it
    -- said the last line it printed, its usage's, where it has one)
    r = signal_through()
    if r then
      lu.assertEquals(r, { nil, "unknown option: --module-version (a usage error: is " .. path
        .. " the appstart-helper of appstart " .. appstart.version .. "?)" })
    end
  end)
  appstart.helper_path = saved
  if not ok then error(failure, 0) end
  lu.assertEquals(S.children(), {})
  S.assert_clean(before)
end

function T.test_setsid_and_chdir()
  local status, cwd = S.tmpname("status"), S.tmpname("cwd")
  local code, rec = run_helper { "--setsid", "--chdir", "/tmp", "--", F, "status=" .. status,
    "cwd=" .. cwd, "pause" }
  local pid = track(rec) -- in a session of its own: tearDown kills it whatever happens
  lu.assertEquals(code, 0)
  -- cwd= is the last report the app writes
  lu.assertEquals(S.await_file(cwd), "/tmp\n")
  local stat = S.read("/proc/" .. pid .. "/stat")
  local sid = stat:match("%) %S+ %d+ %d+ (%d+)")
  lu.assertEquals(tonumber(sid), pid, "the app leads a session of its own")
  os.execute("kill -9 " .. pid)
end

function T.test_a_drop_it_cannot_make_runs_nothing()
  lu.skipIf(not S.is_root(), "needs root")
  -- run the helper itself as nobody, asking for root: setgroups fails
  local marker = S.tmpname("ran")
  os.execute("chmod 777 " .. S.tmpdir)
  local code, rec, err = run_helper({ "--user", "root", "--", F, "pidfile=" .. marker },
    "setpriv --reuid=nobody --regid=nogroup --clear-groups ")
  lu.assertEquals(code, 1, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "setgroups")
  lu.assertNil(S.read(marker), "the program must not have run")
end

-- The helper run as root with an LD_PRELOAD shim whose calls lie
-- (prefix: before env, as setpriv): it must find the drop did not stick,
-- and refuse to run anything.
local function assert_a_lying_drop_runs_nothing(shim, prefix, why)
  local marker = S.tmpname("ran")
  -- (under make sanitize the helper is instrumented: the ASan runtime first)
  local san = os.getenv("APPSTART_SAN_PRELOAD")
  local preload = (san and san .. " " or "") .. S.fixtures .. "/" .. shim
  local code, rec, err = run_helper({ "--user", "nobody", "--", F, "pidfile=" .. marker },
    prefix .. "env LD_PRELOAD=" .. sh_quote(preload) .. " ")
  lu.assertEquals(code, 1, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "refusing")
  lu.assertNil(S.read(marker), why)
end

function T.test_a_drop_that_does_not_stick_runs_nothing()
  lu.skipIf(not S.is_root(), "needs root")
  -- setuid/setgid that lie: the helper must check that root cannot be
  -- regained, find that it can, and refuse
  assert_a_lying_drop_runs_nothing("fakesetuid.so", "", "the program must not have run as root")
end

-- A setgroups that lies (setuid and setgid real): the app would run as
-- the user with root's supplementary groups (disk, shadow). The helper
-- checks the groups it ends up in, finds root's, and refuses.
function T.test_a_group_drop_that_does_not_stick_runs_nothing()
  lu.skipIf(not S.is_root(), "needs root")
  -- (root in more groups than its own: what a lie would leave)
  assert_a_lying_drop_runs_nothing("fakesetgroups.so", "setpriv --groups=0,4,6,42 ",
    "the program must not have run in root's groups")
end

-- An LD_PRELOAD in the env of an app run as another user is the app's
-- (its user may write where it points, as for an LD_LIBRARY_PATH of the
-- app's own libraries): appstart-helper, which runs as root until it
-- becomes that user, gets the environment encoded and never loads it. The
-- app gets its env as given, a variable named like the encoding too.
function T.test_the_apps_env_never_reaches_the_loader_of_the_root_helper()
  lu.skipIf(not S.is_root(), "needs root")
  local lib = S.bindir .. "/preloadprobe.so"
  assert(os.execute(string.format("cp '%s/preloadprobe.so' '%s' && chmod 644 '%s'", S.fixtures, lib, lib)))
  os.execute("chmod 777 " .. S.tmpdir)
  local before = S.snapshot()
  local errout, envout = S.tmpname("preload-err"), S.tmpname("env")
  local app, err = appstart.start {
    argv = { F, "env=" .. envout, "line=3:up", "pause" }, user = "nobody", ready = "fd",
    env = { LD_PRELOAD = lib, FOO = "bar", APPSTART_ENV_FOO = "baz" }, stderr = errout, log = S.quiet,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.read(errout), "preloaded into fixture as uid 65534\n", "loaded into the app only")
  local vars = {}
  for line in S.read(envout):gmatch("[^\n]+") do vars[#vars + 1] = line end
  table.sort(vars)
  lu.assertEquals(vars, { "APPSTART_ENV_FOO=baz", "FOO=bar", "LD_PRELOAD=" .. lib })
  lu.assertEquals(app:terminate(1), { signal = 15 })
  S.assert_clean(before)
end

-- With `user`, the app's ready descriptor is 3, as without: the timeout
-- that says no line came names it (it said fd 4).
function T.test_with_user_a_ready_fd_timeout_names_fd_3()
  lu.skipIf(not S.is_root(), "needs root")
  local before = S.snapshot()
  local app, err = appstart.start { argv = { F, "pause" }, user = "nobody", ready = "fd", ready_timeout = 0.3,
    kill_grace = 0.5, log = S.quiet }
  lu.assertNil(app)
  lu.assertEquals(err.message, "app not ready within 0.3 s: no line came on its fd 3")
  S.assert_clean(before)
end

-- A ready_fd of 4.0 is 4, with `user` too (the helper is told it as
-- text: "--keep-fd 4.0" was a usage error, the start failed "helper",
-- blamed on a helper of another version).
function T.test_with_user_an_integral_float_ready_fd_is_that_descriptor()
  lu.skipIf(not S.is_root(), "needs root")
  local before = S.snapshot()
  for _, fd in ipairs { 4, 4.0 } do
    local app = assert(appstart.start { argv = { F, "line=4:up", "pause" }, user = "nobody", ready = "fd",
      ready_fd = fd, ready_timeout = 5, kill_grace = 0.5 })
    lu.assertEquals(app.name, "up")
    app:terminate()
  end
  S.assert_clean(before)
end

-- The children of pid's main thread (a plain Lua launcher has one).
local function children_of(pid)
  local f, set = io.open(string.format("/proc/%d/task/%d/children", pid, pid)), {}
  if f then
    for child in f:read("a"):gmatch("%d+") do set[tonumber(child)] = true end
    f:close()
  end
  return set
end

-- Its caller ran it with SIGCHLD ignored (which survives exec, a setuid
-- one's too), and an app that exits at once while the helper still holds
-- its pid (its write blocked on a full pipe): the app stays the helper's
-- zombie, its pid held, until the helper is done with it. It was reaped
-- by the kernel at once, its pid free for another process to take,
-- which a SIGUSR1 (or SIGTERM) to a setuid helper then killed as root.
function T.test_the_app_stays_the_helpers_zombie_though_its_caller_ignored_sigchld()
  local fifo, out = S.tmpname("fifo"), S.tmpname("helper")
  assert(os.execute("mkfifo " .. fifo))
  -- (fd 3 the pid channel, a pipe filled before the helper runs)
  os.execute(string.format("(exec 3<>%s; head -c 65536 /dev/zero >&3; exec %s ignore=CHLD exec %s -- /bin/true)"
    .. " </dev/null >/dev/null 2>&1 & echo $! >%s", fifo, sh_quote(F), sh_quote(H), out))
  local helper = tonumber(S.await_file(out))
  started[#started + 1] = helper
  -- the app shows up as the helper's child, then, once it has exited,
  -- stays there as a zombie (or is gone at once)
  local state
  local deadline = S.core.now() + 5
  repeat
    local app = next(children_of(helper))
    local st = app and S.proc_status(app)
    state = st and st.State:sub(1, 1)
    if state ~= "Z" then S.core.wait_readable(-1, 0.005) end
  until state == "Z" or S.core.now() > deadline
  lu.assertEquals(state, "Z", "the app was reaped at once (its pid free)")
  -- (SIGUSR1 waits for the write: the pipe drained, the pid after the fill;
  -- sent once the helper is in that write: before it, between the exec's
  -- verdict and the write, it ends the helper with no pid written)
  local in_write = S.await_with_sleep(function()
    return (S.read("/proc/" .. helper .. "/wchan") or ""):match("pipe_write$") ~= nil
  end, 5)
  lu.assertTrue(in_write, "the helper never blocked in its write of the pid")
  os.execute("kill -USR1 " .. helper)
  local f = assert(io.open(fifo, "rb"))
  lu.assertEquals(#f:read(65536 + 4), 65536 + 4)
  f:close()
  lu.assertTrue(S.await_gone(helper, 5))
end

-- A start with `user` cancelled once appstart-helper has forked the app,
-- before it has written the app's pid (the launcher cannot know it yet):
-- told to stop, the helper kills that app first. Twenty tries, each
-- cancelled the moment the helper's child shows up.
function T.test_a_start_cancelled_before_the_helper_reported_its_pid_leaves_no_app()
  lu.skipIf(not S.is_root(), "needs root")
  local core = require "appstart.core"
  local me = core.pid()
  local before = S.snapshot()
  local caught, left = 0, {}
  for _ = 1, 20 do
    local old = children_of(me)
    local h = appstart.begin { argv = { F, "pause" }, user = "nobody", ready = "none", log = S.quiet }
    local helper
    for pid in pairs(children_of(me)) do
      if not old[pid] then helper = pid end
    end
    local forked, deadline = nil, core.now() + 2
    while helper and not forked and core.now() < deadline do forked = next(children_of(helper)) end
    h:cancel()
    -- (a start done before the cancel, which leaves it alone: its helper
    -- had written the pid and gone before begin's first step, as under
    -- valgrind's slow launcher; "helper" was its app, then. The app is
    -- the caller's to end)
    if h.app then lu.assertNotNil(h.app:terminate()) end
    if forked then
      caught = caught + 1
      if not S.await_gone(forked, 2) then
        left[#left + 1] = forked
        os.execute("kill -9 " .. forked)
      end
    end
  end
  lu.assertTrue(caught > 0, "the helper was never seen with its child")
  lu.assertEquals(left, {}, "apps left running by cancelled starts")
  appstart.sleep(0) -- (what the cancelled starts left to reap)
  S.assert_clean(before)
end

-- Try i of a start with `user` caught about when appstart-helper writes
-- the app's pid and exits: once the app has exec'd, 0 to 390 us later
-- across the tries, the helper is stopped (if still there: until a stop's
-- SIGCONT), so it is found between the two as often as not; returned once
-- the app's SIGTERM handler is set (it exits 7 on SIGTERM). h, the app's
-- pid and the helper's (nil when not seen), and the app's pid when the
-- helper was gone before it was seen with its child (the app adopted by
-- the launcher: a slow launcher's common case, under valgrind and load).
local function start_caught_at_its_pid(i)
  local core = require "appstart.core"
  local old = children_of(core.pid())
  local h = appstart.begin { argv = { F, "catch=TERM", "waitsig=TERM", "exit=7" }, user = "nobody",
    ready = "none", log = S.quiet, kill_grace = 10 }
  -- (the new child, alive, that is not an app: a helper gone already may
  -- have left its app adopted, a new child too, or a zombie of an earlier
  -- try's, under valgrind)
  local helper
  for pid in pairs(children_of(core.pid())) do
    local st = not old[pid] and S.proc_status(pid)
    if st and st.Name ~= "fixture" and not st.State:match("^[ZX]") then helper = pid end
  end
  local forked, deadline = nil, core.now() + 2
  while helper and not forked and S.alive(helper) and core.now() < deadline do
    forked = next(children_of(helper))
  end
  local adopted
  if not forked then
    for pid in pairs(children_of(core.pid())) do
      local st = not old[pid] and S.proc_status(pid)
      if st and st.Name == "fixture" and not st.State:match("^[ZX]") then adopted = pid end
    end
  end
  -- (the fixture's path first in its command line: the exec is done)
  local execd = false
  while forked and not execd and core.now() < deadline do
    local f = io.open("/proc/" .. forked .. "/cmdline")
    execd = f and (f:read("a") or ""):sub(1, #F + 1) == F .. "\0"
    if f then f:close() end
  end
  local at = core.now() + (i - 1) * 10e-6
  while core.now() < at do end
  local proc = helper and core.process(helper)
  if proc then
    proc:signal("STOP")
    proc:close()
  end
  local caught = false
  while execd and not caught and core.now() < deadline do
    local mask = (S.proc_status(forked) or {}).SigCgt
    caught = mask ~= nil and tonumber(mask:sub(-4), 16) & 0x4000 ~= 0
  end
  return h, forked, helper, adopted
end

-- A start of start_caught_at_its_pid that went ready before it was caught
-- (under valgrind): its app terminated (exit 7 on SIGTERM, or the SIGTERM
-- itself before its handler).
local function terminate_if_ready(h)
  if not h.app then return false end
  local how = h.app:terminate(1)
  lu.assertTrue(how.code == 7 or how.signal == 15, tostring(how))
  return true
end

-- Is pid gone within 2 s? If not, it is killed and put in left.
local function gone_or_killed(pid, left)
  if S.await_gone(pid, 2) then return end
  left[#left + 1] = pid
  os.execute("kill -9 " .. pid)
end

-- Each start cancelled so: a pid written after the stop had looked for it,
-- the helper gone before its SIGTERM came, was left unread and its app
-- running (seen under valgrind); one written before the SIGTERM, the
-- helper still there, had its app killed by the helper at once, without
-- the stop's SIGTERM and grace. Now no app is left, and every app whose pid
-- the launcher got ends by the stop's SIGTERM; the others the helper
-- killed unwritten.
function T.test_starts_cancelled_as_the_pid_is_written_leave_no_app_and_a_known_one_its_grace()
  lu.skipIf(not S.is_root(), "needs root")
  local before = S.snapshot()
  local known, left, ends = 0, {}, {}
  for i = 1, 40 do
    local h, forked, _, adopted = start_caught_at_its_pid(i)
    h:cancel()
    if not terminate_if_ready(h) and h.err.pid then
      known = known + 1
      local how = h.err.status or {}
      -- (exit 7, or the TERM itself where it came before the handler)
      if how.code ~= 7 and how.signal ~= 15 then ends[#ends + 1] = how end
    end
    if forked or adopted then gone_or_killed(forked or adopted, left) end
  end
  lu.assertEquals(left, {}, "apps left running by cancelled starts")
  lu.assertTrue(known > 0, "no start was cancelled once its pid had come")
  lu.assertEquals(ends, {}, "apps with a pid known not ended by the stop's SIGTERM")
  appstart.sleep(0)
  S.assert_clean(before)
end

-- Each start dropped so (collected, no later step to read a pid): the
-- helper is told to kill its app, its pid written or not, and the pid is
-- looked for after that: no app is left.
function T.test_starts_dropped_as_the_pid_is_written_leave_no_app()
  lu.skipIf(not S.is_root(), "needs root")
  local before = S.snapshot()
  local seen, left, helpers, apps = 0, {}, {}, {}
  for i = 1, 40 do
    local h, forked, helper, adopted = start_caught_at_its_pid(i)
    local app = forked or adopted
    helpers[#helpers + 1] = helper
    apps[#apps + 1] = app
    terminate_if_ready(h)
    h = nil -- luacheck: ignore 311 (dropped)
    collectgarbage()
    collectgarbage()
    if app then
      seen = seen + 1
      gone_or_killed(app, left)
    end
  end
  lu.assertTrue(seen > 0, "no app was seen")
  lu.assertEquals(left, {}, "apps left running by dropped starts")
  -- (each helper ends once it has killed its app; both are reaped then)
  local on -- (what ran on, for the message)
  lu.assertTrue(S.await_with_sleep(function()
    for kind, pids in pairs { helper = helpers, app = apps } do
      for _, pid in ipairs(pids) do
        local st = S.proc_status(pid)
        if st then
          on = string.format("%s %d: %s, parent %s", kind, pid, st.State, st.PPid)
          return false
        end
      end
    end
    return true
  end, 5), "a helper or an app ran on: " .. tostring(on))
  S.assert_clean(before)
end

-- `user` as a string of digits is that uid, as appstart-helper reads it,
-- though a user has that name: the launcher checked the app against the
-- named user's uid, refused it (bad_pid) and left it running.
function T.test_a_string_of_digits_is_a_uid_though_a_user_has_that_name()
  lu.skipIf(not S.is_root(), "needs root")
  lu.skipIf(not S.can_unshare(), "needs a mount namespace of its own")
  local passwd = S.tmpname("passwd")
  local f = assert(io.open(passwd, "w"))
  f:write(assert(S.read("/etc/passwd")), "4242:x:5000:5000::/nonexistent:/usr/sbin/nologin\n")
  f:close()
  local out = S.run_child({ passwd = passwd, timeout = 60 }, "helper_a_user_named_with_digits")
  lu.assertEquals(out, "ready\n4242\t4242\t4242\t4242\n")
end

function T.test_another_users_message_on_the_notify_socket_is_ignored()
  lu.skipIf(not S.is_root(), "needs root")
  -- the socket is reachable by every user (daemons drop to a user of their
  -- own before READY=1); who may notify is decided by the sender's pid
  -- (its path is written whole, then renamed: S.await_file never sees it
  -- half made)
  local sockfile, release = S.tmpname("sock"), S.tmpname("release")
  os.execute("chmod 777 " .. S.tmpdir)
  local before = S.snapshot()
  local logged, log = S.recorder()
  local h = appstart.begin {
    argv = { "/bin/sh", "-c", 'echo "$NOTIFY_SOCKET" > ' .. sockfile .. '.tmp && mv ' .. sockfile .. '.tmp ' .. sockfile ..
      '; while [ ! -e ' .. release .. ' ]; do sleep 0.01; done; exec "$0" notify=READY=1 pause', F },
    notify_access = "all", ready_timeout = 10, log = log,
  }
  local path = S.await_file(sockfile):match("[^\n]+")
  -- nobody, told the path, says READY=1 itself, then exits
  local errout, pidfile = S.tmpname("nobody-err"), S.tmpname("nobody-pid")
  local _, _, code = os.execute("NOTIFY_SOCKET=" .. sh_quote(path) .. " " .. sh_quote(H) .. " --user nobody -- " .. F ..
    " pidfile=" .. pidfile .. " notify=READY=1 3>/dev/null 2>" .. errout)
  lu.assertEquals(code, 0)
  local sender = S.pid_in(pidfile)
  lu.assertTrue(S.await_gone(sender), "nobody's sender has ended")
  lu.assertEquals(S.read(errout), "", "its datagram was sent")
  lu.assertFalse(h:step(), "nobody's message did not make the app ready")
  lu.assertStrContains(table.concat(logged, "\n"), "from pid " .. sender, "the launcher saw it and ignored it")
  io.open(release, "w"):close()
  local app, err = h:wait()
  lu.assertNotNil(app, tostring(err))
  app:terminate(1)
  S.assert_clean(before)
end

--- /proc/PID/status text as a table of fields (an empty field stays empty).
local function status_table(text)
  local t = {}
  for k, v in text:gmatch("([%w_]+):[ \t]*([^\n]*)") do t[k] = v end
  return t
end

--- Fields 3-7 of /proc/PID/stat (after the command name): state, ppid,
-- pgrp, session, tty_nr, as numbers (state as text).
local function stat_fields(text)
  local state, ppid, pgrp, sid, tty = text:match("%) (%S+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+)")
  return { state = state, ppid = tonumber(ppid), pgrp = tonumber(pgrp), sid = tonumber(sid),
    tty = tonumber(tty) }
end

--- A fresh directory every user may write to (apps run as other users
-- write their reports there).
local function shared_dir()
  local dir = S.tmpname("shared")
  assert(os.execute("mkdir -m 777 " .. sh_quote(dir)))
  return dir
end

--- appstart-helper --signal signals the process of a pidfd as the user it
-- becomes: never one that user may not signal, never one that has ended,
-- never through a descriptor that is no pidfd.
function T.test_signal_mode_signals_as_the_user_only_what_that_user_may()
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here (valgrind 3.19 knows no pidfd_open)")
  local signal = require "appstart.signal"
  local core = require "appstart.core"
  -- root's process: nobody may not signal it
  local mine = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
  local proc = assert(core.process(mine.pid))
  local ok, message, errno = signal.through(proc:fd(), { user = "nobody" }, "TERM")
  lu.assertEquals({ ok, message, errno },
    { nil, "Operation not permitted (pid " .. mine.pid .. " does not run as nobody: not signalled)", 1 })
  lu.assertTrue(S.alive(mine.pid))
  -- nobody's, and the group it leads with what it forked: signalled
  local dir = shared_dir()
  local theirs = assert(appstart.start { argv = { F, "fork", "pidfile=" .. dir .. "/forked", "pause", "|",
    "pause" }, ready = "none", user = "nobody", kill_mode = "group" })
  local forked = tonumber(S.await_file(dir .. "/forked"))
  local other = assert(core.process(theirs.pid))
  lu.assertEquals({ signal.through(other:fd(), { user = "nobody" }, "TERM", true) }, { true })
  lu.assertEquals(theirs:wait(5).signal, 15)
  lu.assertTrue(S.await_gone(forked), "the group it leads was signalled")
  -- one that has ended (the pidfd still names it)
  lu.assertEquals({ signal.through(other:fd(), { user = "nobody" }, "TERM") },
    { nil, "No such process (the process has ended)", 3 })
  other:close()
  mine:kill("KILL")
  mine:wait()
  -- ended and reaped: the same
  lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") },
    { nil, "No such process (the process has ended)", 3 })
  proc:close()
  -- no helper left unreaped (what the app forked may still be the
  -- launcher's child, adopted as the app ended with it: not the helper's
  -- doing, and tearDown's)
  for _, pid in ipairs(S.children()) do lu.assertEquals(pid, forked, "only what the app forked") end
end

--- A process that has ended but is not reaped yet (a group leader the
-- launcher holds while its group still has a member) has ended for
-- appstart-helper --signal too: the kernel would take the signal and do
-- nothing with it, and "sent" would say otherwise.
function T.test_signal_mode_takes_a_zombie_for_ended()
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here (valgrind 3.19 knows no pidfd_open)")
  local signal = require "appstart.signal"
  local core = require "appstart.core"
  local before = S.snapshot()
  local dir = shared_dir()
  -- its member ignores SIGTERM: the leader is held once it has ended
  local theirs = assert(appstart.start { argv = { F, "fork", "ignore=TERM", "pidfile=" .. dir .. "/forked", "pause",
    "|", "pause" }, ready = "none", user = "nobody", kill_mode = "group" })
  local forked = tonumber(S.await_file(dir .. "/forked"))
  local proc = assert(core.process(theirs.pid))
  lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") }, { true })
  lu.assertEquals(theirs:wait(5).signal, 15)
  lu.assertTrue(S.alive(forked), "its member lives on")
  lu.assertStrContains(S.read("/proc/" .. theirs.pid .. "/stat"), ") Z ", "the leader is a zombie, held")
  lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") },
    { nil, "No such process (the process has ended)", 3 })
  -- its group is another matter: its member is reached
  lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "KILL", true) }, { true })
  lu.assertTrue(S.await_gone(forked), "the group was signalled")
  proc:close()
  theirs:terminate(1) -- (its group's end: the leader reaped)
  S.assert_clean(before)
end

--- The group pid 1 leads is never signalled: kill(-1) is every process
-- the user may signal (a launcher that is the first process of its pid
-- namespace, a container's entrypoint, hands the helper its own pidfd).
function T.test_signal_mode_refuses_the_group_of_pid_1()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here (valgrind 3.19 knows no pidfd_open)")
  local out = S.run_child({ pidns = true, timeout = 30 }, "helper_signal_to_the_group_of_pid_1")
  lu.assertStrContains(out, "group\tnil\tOperation not permitted (pid 1: its group is not signalled"
    .. " (a signal to -1 reaches every process))\t1\n")
  lu.assertStrContains(out, "process\ttrue\n")
end

--- --pgid never names the launcher's own group (the helper's: as
-- --process-group refuses it); it was signalled, as that user, whatever
-- of it ran as that user.
function T.test_signal_mode_refuses_the_launchers_own_group_by_pgid()
  local own = S.read("/proc/" .. S.core.pid() .. "/stat"):match("^%d+ %b() %S+ %d+ (%d+)")
  local code, _, err = run_helper { "--signal", "0", "--user", "nobody", "--pgid", own }
  lu.assertEquals(code, 4, err)
  lu.assertStrContains(err, "process group " .. own .. " is not signalled (the launcher's own)")
end

--- When the helper cannot be run, does not answer, or fails: said, and
-- nothing of it left behind; a signal posted (nothing waits for it) that
-- could not go is logged.
function T.test_a_signal_the_helper_cannot_send_says_why_and_leaves_nothing()
  lu.skipIf(not S.testing.has_pidfd(), "no pidfds here (valgrind 3.19 knows no pidfd_open)")
  local signal = require "appstart.signal"
  local core = require "appstart.core"
  local saved_path, saved_wait = appstart.helper_path, signal.WAIT
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
  local proc = assert(core.process(app.pid))
  local function script(name, body)
    local path = S.tmpname(name)
    local f = assert(io.open(path, "w"))
    f:write("#!/bin/sh\n", body, "\n")
    f:close()
    assert(os.execute("chmod 755 " .. path))
    return path
  end
  local ok, err = pcall(function()
    appstart.helper_path = S.tmpdir .. "/no-such-helper"
    local r = { signal.through(proc:fd(), { user = "nobody" }, "TERM") }
    lu.assertNil(r[1])
    lu.assertStrContains(r[2], "cannot run " .. appstart.helper_path .. ": ")
    appstart.helper_path = script("silent", "exec sleep 30")
    signal.WAIT = 0.2
    lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") },
      { nil, appstart.helper_path .. " --signal did not answer within 0.2 s" })
    signal.WAIT = saved_wait
    -- a task cancelled while it waits for the helper: "cancelled", at once,
    -- the helper ended (its verdict no longer awaited)
    local got, took
    appstart.run(function()
      local sender = appstart.spawn(function()
        local t0 = core.now()
        got = { signal.through(proc:fd(), { user = "nobody" }, "TERM") }
        took = core.now() - t0
      end)
      appstart.sleep(0.1)
      sender:cancel()
    end)
    lu.assertEquals(got, { nil, "cancelled" })
    lu.assertTrue(took < 2, "the cancelled wait returned after " .. took .. " s")
    lu.assertEquals(S.children(), { app.pid }, "the helper has been ended and reaped")
    appstart.helper_path = script("failing", "echo 'appstart-helper: it went wrong' >&2; exit 1")
    lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") }, { nil, "it went wrong" })
    appstart.helper_path = script("odd", "exit 7")
    lu.assertEquals({ signal.through(proc:fd(), { user = "nobody" }, "TERM") },
      { nil, appstart.helper_path .. " --signal exited with code 7" })
    -- posted: logged, once the helper has said so
    appstart.helper_path = script("failing2", "echo 'appstart-helper: refused here' >&2; exit 1")
    local lines, rec = S.recorder()
    appstart.run(function() signal.post(proc:fd(), { user = "nobody" }, "TERM", false, rec, "fixture") end)
    lu.assertEquals(lines, { "warn: fixture: SIGTERM through " .. appstart.helper_path .. ": refused here" })
  end)
  appstart.helper_path, signal.WAIT = saved_path, saved_wait
  proc:close()
  lu.assertTrue(S.alive(app.pid), "nothing was signalled")
  app:kill("KILL")
  app:wait()
  lu.assertEquals(S.children(), {})
  if not ok then error(err, 0) end
end

--- The passwd entry of a user: name, uid, gid, home, shell.
local function passwd(user)
  local p = io.popen("getent passwd " .. sh_quote(user))
  local line = p:read("l")
  p:close()
  local name, uid, gid, home, shell = line:match("^([^:]*):[^:]*:(%d+):(%d+):[^:]*:([^:]*):([^:]*)$")
  return { name = name, uid = tonumber(uid), gid = tonumber(gid), home = home, shell = shell }
end

--- The variables in a file written by the fixture's env= action, as a
-- sorted list of "NAME=VALUE".
local function env_list(text)
  local list = S.lines(text)
  table.sort(list)
  return list
end

--- The ids lines of /proc/PID/status for an app that must run as uid/gid
-- with exactly `groups` (a string, "" for none).
local function assert_runs_as(status, uid, gid, groups)
  lu.assertEquals(status.Uid, string.format("%d\t%d\t%d\t%d", uid, uid, uid, uid))
  lu.assertEquals(status.Gid, string.format("%d\t%d\t%d\t%d", gid, gid, gid, gid))
  lu.assertEquals(status.Groups:match("^%s*(.-)%s*$"), groups)
end

--- Kill an app that runs in a session of its own (not one of S.strays)
-- and wait until it is gone.
local function stop(pid)
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  lu.assertTrue(S.await_gone(pid), "the app " .. pid .. " is still running")
end

--- Wait until an app that runs to its end by itself has ended.
local function ended(pid)
  lu.assertTrue(S.await_gone(pid), "the app " .. pid .. " is still running")
end

function T.test_user_gives_the_app_a_session_and_no_terminal_even_from_a_terminal()
  lu.skipIf(not S.is_root(), "needs root")
  lu.skipIf(not os.execute("command -v script >/dev/null"), "needs script(1) for a terminal")
  -- script(1) runs the command in a session whose controlling terminal is
  -- a fresh pty; the stat of the app is read there, while the pty is its
  -- session's terminal (when script ends, the session loses it)
  local function from_a_terminal(args)
    local pidout, statout, errout = S.tmpname("pid"), S.tmpname("stat"), S.tmpname("err")
    -- (its stdin and stdout /dev/null: the pty stays the session's
    -- controlling terminal, but no app of another user gets it on 0-2)
    local cmd = sh_quote(H) .. " --pid-format=line " .. args .. " -- " .. sh_quote(F) ..
      " pause 3>" .. pidout .. " 2>" .. errout .. " </dev/null >/dev/null && cat /proc/$(cat " .. pidout .. ")/stat >"
      .. statout
    lu.assertTrue(os.execute("script -qec " .. sh_quote(cmd) .. " /dev/null </dev/null >/dev/null"),
      S.read(errout))
    local pid = tonumber(S.read(pidout))
    started[#started + 1] = pid
    return pid, stat_fields(S.read(statout))
  end
  -- without a user switch the app stays in the terminal's session (the
  -- check below would prove nothing if the pty were not its terminal)
  local pid, st = from_a_terminal("")
  stop(pid)
  lu.assertNotEquals(st.tty, 0, "the pty is the session's controlling terminal")
  lu.assertNotEquals(st.sid, pid)
  pid, st = from_a_terminal("--user nobody")
  stop(pid)
  lu.assertEquals(st.sid, pid, "the app leads a session of its own")
  lu.assertEquals(st.tty, 0, "the app has no controlling terminal")
  lu.assertEquals(S.children(), {})
end

function T.test_a_uid_without_a_passwd_entry_runs_with_that_gid_and_no_groups()
  lu.skipIf(not S.is_root(), "needs root")
  lu.assertNil(S.sh("getent passwd 54321", "l"), "uid 54321 must have no passwd entry")
  local dir = shared_dir()
  local code, rec, err = run_helper { "--user", "54321", "--", F, "status=" .. dir .. "/status", "pause" }
  local pid = track(rec)
  lu.assertEquals(code, 0, err)
  local status = S.await_file(dir .. "/status")
  stop(pid)
  local st = status_table(status)
  assert_runs_as(st, 54321, 54321, "")
end

function T.test_login_env_sets_home_user_logname_shell_from_passwd_or_unsets_them()
  lu.skipIf(not S.is_root(), "needs root")
  local dir = shared_dir()
  local caller = "env HOME=/root USER=root LOGNAME=root SHELL=/bin/bash KEEP=me "
  local code, rec, err = run_helper({ "--login-env", "--user", "nobody", "--", F, "env=" .. dir .. "/env" }, caller)
  lu.assertEquals(code, 0, err)
  local env = "\n" .. S.await_file(dir .. "/env")
  ended(le32(rec))
  local pw = passwd("nobody")
  local seen = {}
  for _, l in ipairs(S.lines(env)) do
    local k = l:match("^(HOME)=") or l:match("^(USER)=") or l:match("^(LOGNAME)=") or l:match("^(SHELL)=")
    if k then seen[#seen + 1] = l end
  end
  table.sort(seen)
  lu.assertEquals(seen, { "HOME=" .. pw.home, "LOGNAME=nobody",
    "SHELL=" .. (pw.shell ~= "" and pw.shell or "/bin/sh"), "USER=nobody" })
  lu.assertStrContains(env, "\nKEEP=me\n", "the rest of the environment is left as it is")
  -- a uid with no passwd entry: none of the four, never root's
  code, rec, err = run_helper({ "--login-env", "--user", "54321", "--", F, "env=" .. dir .. "/env2" }, caller)
  lu.assertEquals(code, 0, err)
  env = "\n" .. S.await_file(dir .. "/env2")
  ended(le32(rec))
  for _, name in ipairs { "HOME", "USER", "LOGNAME", "SHELL" } do
    lu.assertNotStrContains(env, "\n" .. name .. "=")
  end
  lu.assertStrContains(env, "\nKEEP=me\n")
  lu.assertEquals(S.children(), {})
end

function T.test_chdir_into_a_directory_the_user_cannot_enter_runs_nothing()
  lu.skipIf(not S.is_root(), "needs root")
  local locked, marker = S.tmpname("locked"), S.tmpname("ran")
  assert(os.execute("mkdir -m 700 " .. locked))
  os.execute("chmod 777 " .. S.tmpdir)
  local code, rec, err = run_helper { "--user", "nobody", "--chdir", locked, "--", F, "pidfile=" .. marker }
  lu.assertEquals(code, 1, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "chdir: Permission denied")
  lu.assertNil(S.read(marker), "the program must not have run")
  lu.assertEquals(S.children(), {})
end

--- Run spec/child/NAME.lua (with its arguments) as S.run_child runs one,
-- but from directory dir (run_child's start from the suite's own): its
-- output, and what closing the pipe returns.
local function run_child_in(dir, name, ...)
  local words = { sh_quote(S.spec_dir .. "/child/" .. name .. ".lua") }
  for i = 1, select("#", ...) do words[#words + 1] = sh_quote((select(i, ...))) end
  local p = assert(io.popen("timeout -s KILL 60 sh -c " .. sh_quote(S.san_prefix .. "export APPSTART_SPEC_FIXTURE="
    .. sh_quote(S.fixture) .. '; script=$(readlink -f "$0") && cd ' .. sh_quote(dir)
    .. ' && exec lua5.4 "$script" "$@"') .. " " .. table.concat(words, " ") .. " 2>&1"))
  return p:read("a"), p:close()
end

-- An app of another user enters its directory as that user, by its
-- absolute path: with no cwd, the launcher's own, or "/" where that user
-- cannot enter it (the app inherited it: root's directory under a 0700
-- one, its files read by relative paths); a relative cwd is joined to the
-- launcher's (entered relative to the inherited directory, only its own
-- parts were checked as the user, while its absolute spelling was
-- refused).
function T.test_another_users_app_enters_its_directory_by_path_as_that_user()
  lu.skipIf(not S.is_root(), "needs root")
  local locked = S.tmpname("locked")
  local open = S.tmpname("open")
  for _, dir in ipairs { locked .. "/work", open } do
    assert(os.execute(string.format("mkdir -p -m 755 %s/sub && echo top > %s/notes.txt && chmod 644 %s/notes.txt",
      dir, dir, dir)))
  end
  assert(os.execute("chmod 700 " .. locked))
  local out, ok = run_child_in(locked .. "/work", "helper_the_directory_of_another_users_app", shared_dir())
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "none\t/\t\t1\nsub\thelper\thelper exited with code 1 without reporting a pid on fd 3: "
    .. "chdir: Permission denied\n")
  -- a launcher's directory the user may enter is the app's
  out, ok = run_child_in(open, "helper_the_directory_of_another_users_app", shared_dir())
  lu.assertTrue(ok, out)
  lu.assertEquals(out, "none\t" .. open .. "\ttop\t0\nsub\t" .. open .. "/sub\n")
  lu.assertEquals(S.children(), {})
end

function T.test_a_file_without_a_shebang_is_never_run_through_a_shell()
  local dir, marker = S.tmpname("noshebang"), S.tmpname("shell-ran")
  assert(os.execute("mkdir -m 755 " .. dir))
  local f = assert(io.open(dir .. "/script", "w"))
  f:write("touch " .. marker .. "\n")
  f:close()
  assert(os.execute("chmod 755 " .. dir .. "/script"))
  -- by path
  local code, rec, err = run_helper { "--", dir .. "/script" }
  lu.assertEquals(code, 126, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "Exec format error")
  -- by PATH lookup (touch must be reachable for a shell to do it)
  code, rec, err = run_helper({ "--", "script" }, "env PATH=" .. sh_quote(dir .. ":/usr/bin:/bin") .. " ")
  lu.assertEquals(code, 126, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "cannot execute script: Exec format error")
  lu.assertNil(S.read(marker), "no shell ran the file")
  lu.assertEquals(S.children(), {})
end

function T.test_path_search_passes_over_what_it_cannot_execute_and_reports_eacces_last()
  local dir = S.tmpname("noexec")
  assert(os.execute("mkdir -m 755 " .. dir .. " && touch " .. dir .. "/fixture " .. dir .. "/only" ..
    " && chmod 644 " .. dir .. "/fixture " .. dir .. "/only"))
  local pidfile = S.tmpname("pid")
  -- the unexecutable one comes first, the fixture later in PATH
  local code, rec, err = run_helper({ "--", "fixture", "pidfile=" .. pidfile },
    "env PATH=" .. sh_quote(dir .. "::" .. S.bindir) .. " ")
  lu.assertEquals(code, 0, err)
  lu.assertEquals(S.pid_in(pidfile), le32(rec))
  ended(le32(rec))
  -- nothing better anywhere: the EACCES seen on the way
  code, rec, err = run_helper({ "--", "only" }, "env PATH=" .. sh_quote(dir .. ":" .. S.bindir) .. " ")
  lu.assertEquals(code, 126, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "Permission denied")
  code, rec = run_helper({ "--", "no-such-program-anywhere" }, "env PATH=" .. sh_quote(dir) .. " ")
  lu.assertEquals(code, 127)
  lu.assertEquals(rec, "")
  lu.assertEquals(S.children(), {})
end

function T.test_keep_fd_checks_its_number()
  lu.assertEquals((run_helper { "--keep-fd", "2", "--", "true" }), 2)
  lu.assertEquals((run_helper { "--keep-fd", "x", "--", "true" }), 2)
  lu.assertEquals((run_helper { "--keep-fd", "3", "--", "true" }), 2, "the pid fd is not kept")
  -- a descriptor to keep must be there: a closed one would be silently
  -- missing in the app
  local code, rec, err = run_helper { "--keep-fd=4", "--", "true" }
  lu.assertEquals(code, 2, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "--keep-fd is not open: 4")
  lu.assertEquals((run_helper({ "--keep-fd=4", "--", "true" }, "exec 4</dev/null; ")), 0)
end

-- An error fd that is not open is a usage error, as a pid fd or a kept
-- one is: the messages went to stderr (the app's, often /dev/null) where
-- the caller never looks, and the app ran.
function T.test_an_error_fd_that_is_not_open_is_a_usage_error()
  local marker = S.tmpname("ran")
  local code, rec, err = run_helper({ "--error-fd", "9", "--", F, "pidfile=" .. marker }, "exec 9>&-; ")
  lu.assertEquals(code, 2, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "appstart-helper: --error-fd is not open: 9\nusage: appstart-helper ")
  lu.assertNil(S.read(marker), "the program ran")
  -- open, it takes what follows (the usage, then, is not printed)
  code, rec, err = run_helper({ "--error-fd", "9", "--pid-fd", "5", "--", "true" }, "exec 9>" .. marker .. ".err; ")
  lu.assertEquals(code, 2)
  lu.assertEquals(rec, "")
  lu.assertEquals(err, "")
  lu.assertEquals(S.read(marker .. ".err"), "appstart-helper: pid fd is not open: 5\n")
  lu.assertEquals(S.children(), {})
end

function T.test_user_refuses_a_terminal_on_a_kept_descriptor_when_run_by_root()
  lu.skipIf(not S.is_root(), "needs root")
  lu.skipIf(not os.execute("command -v script >/dev/null"), "needs script(1) for a terminal")
  -- run by root (no setuid: nothing is closed), a descriptor the caller
  -- keeps, or leaves open, is the app's as it is: the pty on it would let
  -- the app of another user read what is typed there
  local pidout, errout = S.tmpname("pid"), S.tmpname("err")
  local function on_a_terminal(args)
    local cmd = "exec 5</dev/tty; " .. sh_quote(H) .. " --pid-format=line " .. args .. " -- " .. sh_quote(F) ..
      " pause 3>" .. pidout .. " 2>" .. errout .. " </dev/null >/dev/null; echo $? >>" .. errout
    os.execute("script -qec " .. sh_quote(cmd) .. " /dev/null </dev/null >/dev/null")
    local pid = tonumber(S.read(pidout))
    if pid then started[#started + 1] = pid end
    return pid, S.read(errout)
  end
  local pid, err = on_a_terminal("--user nobody --keep-fd 5")
  lu.assertNil(pid, err)
  lu.assertStrContains(err, "terminal: descriptor 5 is a terminal")
  lu.assertStrContains(err, "\n1\n")
  -- nor one it inherits unnamed: nothing is closed (it ran with it)
  pid, err = on_a_terminal("--user nobody")
  lu.assertNil(pid, err)
  lu.assertStrContains(err, "terminal: descriptor 5 is a terminal")
  -- but the pid channel, which the app never gets, may be one
  local cmd = "exec 5<>/dev/tty; " .. sh_quote(H) .. " --pid-format=line --pid-fd 5 --user nobody -- " .. sh_quote(F)
    .. " exit=0 2>" .. errout .. " </dev/null >/dev/null; echo $? >>" .. errout
  os.execute("script -qec " .. sh_quote(cmd) .. " /dev/null </dev/null >/dev/null")
  lu.assertEquals(S.read(errout), "0\n")
  -- the same user as the caller's keeps it (and so without --user)
  pid, err = on_a_terminal("--keep-fd 5")
  lu.assertNotNil(pid, err)
  stop(pid)
  lu.assertEquals(S.children(), {})
end


-- ---- setuid mode ----------------------------------------------------------

--- The suite's build of the helper, with the policy at POLICY compiled in
-- (its --help says where).
local POLICYTEST = S.fixtures .. "/appstart-helper-policytest"
local POLICY
do -- (closed at once: its process is no child left for the first test to find)
  local p = io.popen(sh_quote(POLICYTEST) .. " --help")
  POLICY = p:read("a"):match("obeys the policy file\n%s*(%S+)\n")
  p:close()
end
local POLICY_DIR = POLICY:match("^(.*)/[^/]*$")

local U = {}

--- Install a copy of the policy-test helper in a fresh root-owned 0755
-- directory: setuid root (4755), or with file capabilities `caps` instead.
local function install_copy(caps)
  local dir = S.tmpname("installed")
  local path = dir .. "/appstart-helper"
  assert(os.execute("mkdir -m 755 " .. dir .. " && cp " .. sh_quote(POLICYTEST) .. " " .. path ..
    " && chown root:root " .. dir .. " " .. path .. " && chmod " .. (caps and "755 " or "4755 ") .. path))
  if caps then assert(os.execute("setcap " .. caps .. " " .. path)) end
  return path
end

--- Write the policy file: text, mode (0644), owner (root).
local function write_policy(text, mode, owner)
  assert(os.execute("mkdir -p " .. POLICY_DIR .. " && chown root:root " .. POLICY_DIR ..
    " && chmod 755 " .. POLICY_DIR .. " && rm -f " .. POLICY))
  local f = assert(io.open(POLICY, "w"))
  f:write(text)
  f:close()
  assert(os.execute("chmod " .. (mode or "644") .. " " .. POLICY .. " && chown " .. (owner or "root:root") ..
    " " .. POLICY))
end

--- Run an installed copy as nobody (real and effective uid, group nogroup,
-- no supplementary groups) with a hostile environment: a PATH with /evil
-- first, LD_PRELOAD, and variables of its own. `redirects` adds to the
-- shell's (fd 3 goes to a file, stdin is /dev/null). Exit code, what it
-- wrote at fd 3, its stderr.
local function run_as_nobody(helper, args, redirects)
  local pidout, errout = S.tmpname("pidrec"), S.tmpname("stderr")
  local words = {}
  for i, a in ipairs(args) do words[i] = sh_quote(a) end
  local _, _, code = os.execute("setpriv --reuid=nobody --regid=nogroup --clear-groups " ..
    "env -i FOO=bar LD_PRELOAD=" .. sh_quote(S.fixtures .. "/fakesetuid.so") ..
    " PATH=/evil:/usr/bin:/bin TERM=dumb LANG=C.UTF-8 LC_TIME=../../tmp/evil HOME=/root " ..
    sh_quote(helper) .. " " .. table.concat(words, " ") ..
    " 3>" .. pidout .. " 2>" .. errout .. " </dev/null " .. (redirects or ""))
  return code, S.read(pidout), S.read(errout)
end

--- A run that must be refused: exit 1, the reason on stderr, nothing on
-- fd 3, nothing run.
local function assert_refused(helper, args, why)
  local marker = S.tmpname("ran")
  local full = table.move(args, 1, #args, 1, {})
  for _, a in ipairs { "--", F, "pidfile=" .. marker } do full[#full + 1] = a end
  local code, rec, err = run_as_nobody(helper, full)
  lu.assertEquals(code, 1, err)
  lu.assertEquals(rec, "", "no pid written")
  lu.assertStrContains(err, why)
  lu.assertNil(S.read(marker), "the program must not have run")
  lu.assertEquals(S.children(), {})
end

--- Start the fixture through an installed copy run by nobody; the app
-- reports its status (and `more` actions) into a shared directory, then
-- pauses. Returns pid, the status table, the directory.
local function start_as_nobody(helper, args, more)
  local dir = shared_dir()
  local full = table.move(args, 1, #args, 1, {})
  for _, a in ipairs { "--", F, "env=" .. dir .. "/env", "status=" .. dir .. "/status" } do
    full[#full + 1] = a
  end
  for _, a in ipairs(more or {}) do full[#full + 1] = a end
  full[#full + 1] = "pause"
  local code, rec, err = run_as_nobody(helper, full)
  local pid = track(rec)
  lu.assertEquals(code, 0, err)
  lu.assertNotNil(pid, "a 4-byte pid record")
  local text = S.await_file(dir .. "/status")
  local st = status_table(text)
  lu.assertEquals(tonumber(st.Pid), pid, "the pid reported is the app's")
  return pid, st, dir
end

function U.setUp()
  lu.skipIf(not S.is_root(), "needs root to install a setuid copy")
  os.execute("chmod 755 " .. S.tmpdir)
end

function U.tearDown()
  os.execute("rm -f " .. POLICY .. "; rmdir " .. POLICY_DIR .. " 2>/dev/null")
  kill_started()
end

--- Run spec/child/NAME.lua (with its arguments) as nobody, group nogroup,
-- with the installed tree of modules and helper as its appstart-helper:
-- its output, and run_child's other results.
local function run_child_as_nobody(helper, name, ...)
  local lua_path, lua_cpath = S.public_tree()
  return S.run_child({ as = "nobody", as_group = "nogroup", timeout = 60, env = { LUA_PATH = lua_path,
    LUA_CPATH = lua_cpath, APPSTART_HELPER = helper, APPSTART_FIXTURES = S.bindir } }, name, ...)
end

-- A launcher that is not root, its helper not installed setuid, asks for
-- another user: the start fails `helper`, and the message says what is
-- missing (it said "setgroups: Operation not permitted" alone).
function U.test_an_unprivileged_launcher_without_a_setuid_helper_is_told_why()
  local dir = S.tmpname("plain")
  local helper = dir .. "/appstart-helper"
  assert(os.execute("mkdir -m 755 " .. dir .. " && cp " .. sh_quote(H) .. " " .. helper .. " && chmod 755 " .. helper))
  local out, ok = run_child_as_nobody(helper, "helper_another_user_without_a_setuid_helper")
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, "helper\t")
  lu.assertStrContains(out, "setgroups: Operation not permitted (only root may change users: install "
    .. "appstart-helper setuid root, with a policy)")
end

-- Its own user, named: nothing to change, the app starts (the helper's
-- setgroups, refused to it, was its failure): its groups, the same set
-- as that user's (nobody: nogroup, as its gid), are left as they are.
function U.test_an_unprivileged_launcher_may_name_its_own_user_without_a_setuid_helper()
  local dir = S.tmpname("plain")
  local helper = dir .. "/appstart-helper"
  assert(os.execute("mkdir -m 755 " .. dir .. " && cp " .. sh_quote(H) .. " " .. helper .. " && chmod 755 " .. helper))
  local out, ok = run_child_as_nobody(helper, "helper_another_user_without_a_setuid_helper", "nobody")
  lu.assertTrue(ok, out)
  local uid, gid = require("appstart.core").user("nobody")
  local ids = function(id) return string.format("%d\t%d\t%d\t%d", id, id, id, id) end
  lu.assertEquals(out, string.format("started\t%s\t%s\t\n", ids(uid), ids(gid)))
end

-- With groups that are not its user's (more than 64 of them, beyond
-- what the helper compares), naming its own user is refused still, and
-- said as setgroups' EPERM (its errno was lost to the comparison's:
-- "Invalid argument").
function U.test_an_unprivileged_launcher_with_other_groups_naming_its_own_user_is_told_why()
  local dir = S.tmpname("plain")
  local helper = dir .. "/appstart-helper"
  assert(os.execute("mkdir -m 755 " .. dir .. " && cp " .. sh_quote(H) .. " " .. helper .. " && chmod 755 " .. helper))
  local groups = {}
  for g = 1000, 1069 do groups[#groups + 1] = g end
  local lua_path, lua_cpath = S.public_tree()
  local out, ok = S.run_child({ as = "nobody", as_group = "nogroup", as_groups = table.concat(groups, ","), timeout = 60,
    env = { LUA_PATH = lua_path, LUA_CPATH = lua_cpath, APPSTART_HELPER = helper, APPSTART_FIXTURES = S.bindir } },
    "helper_another_user_without_a_setuid_helper", "nobody")
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, "helper\t")
  lu.assertStrContains(out, "setgroups: Operation not permitted (only root may change users")
end

function U.test_an_unprivileged_launcher_starts_an_app_as_another_user_through_a_setuid_copy()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  -- the whole start as nobody: the helper drops to daemon, the app says
  -- READY=1 on the notify socket of nobody's launcher
  local out = run_child_as_nobody(helper, "helper_starts_an_app_as_another_user")
  local pid = track(string.pack("<i4", tonumber(out:match("^(%d+)\t") or 0)))
  lu.assertNotNil(out:match("^%d+\tup\n15\nhelper\thelper exited with code 1 without "
    .. "reporting a pid on fd 3: policy: refused: nobody %(uid 65534%) may not start apps as bin %b() %b()\n$"), out)
  -- (it ran as daemon until it was terminated)
  ended(pid)
end

--- The launcher of an app started as another user through a setuid helper
-- ends it as it ends its own: app:kill, app:terminate, a failed start
-- (the helper signals it as that user); what that user may not signal
-- stays untouched, and a user the policy does not list is refused. With a
-- setuid copy and with a file-capabilities one.
local function assert_ends_its_apps(helper)
  local dir = shared_dir()
  -- a process of root's, which nothing of nobody's or daemon's may signal
  local root_app = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
  local rootpid = root_app.pid
  local out = run_child_as_nobody(helper, "helper_ends_apps_of_another_user", dir, rootpid)
  lu.assertStrContains(out, "probe\ttrue\n")
  local killed = tonumber(out:match("kill\t(%d+)\ttrue\t9\n"))
  lu.assertNotNil(killed, out)
  lu.assertTrue(S.await_gone(killed))
  lu.assertTrue(S.await_gone(tonumber(S.await_file(dir .. "/forked"))), "what the app forked is gone too")
  local failed = tonumber(out:match("\ntimeout\ttimeout\t(%d+)\n"))
  lu.assertNotNil(failed, out)
  lu.assertEquals(failed, tonumber(S.read(dir .. "/slow")))
  lu.assertTrue(S.await_gone(failed), "the app of the failed start was terminated")
  lu.assertStrContains(out, "\ndied\tdied\n")
  lu.assertTrue(S.await_gone(tonumber(S.read(dir .. "/orphan"))), "what the app left in its group is gone")
  lu.assertStrContains(out, "\nreload\ttrue\n")
  lu.assertEquals(S.await_file(dir .. "/hup"), "1 65534\n")
  lu.assertNotNil(out:match("\nroot\tnil\tOperation not permitted %(pid " .. rootpid
    .. " does not run as daemon: not signalled%)\t1\n"), out)
  lu.assertTrue(S.alive(rootpid), "root's process was not signalled")
  lu.assertNotNil(out:match("\nbin\tnil\tpolicy: refused: nobody %(uid 65534%) may not start apps as bin %b() %b()\tnil\n"),
    out)
  lu.assertStrContains(out, "\nterminate\t15\nended\t0\nwatchdog\t6\ttrue\n")
  lu.assertTrue(S.await_gone(tonumber(S.await_file(dir .. "/left"))), "what it left in its group is gone")
  local failed2 = tonumber(out:match("\ntimeout2\ttimeout\t(%d+)\n"))
  lu.assertEquals(failed2, tonumber(S.read(dir .. "/slow2")), out)
  lu.assertTrue(S.await_gone(failed2), "the app of the failed start was terminated")
  lu.assertStrContains(out, "\nreload2\ttrue\tnil\tready\t15\n")
  lu.assertStrContains(out, "\ncancelled\tnil\tcancelled\tnil\tcancelled\nterminate2\t15\n")
  local term3 = tonumber(out:match("\nterminate3\t%S+\t%S+\t(%d+)\n"))
  lu.assertNotNil(term3, out)
  started[#started + 1] = term3
  lu.assertStrContains(out, "\nterminate3\t15\tnil\t" .. term3 .. "\n")
  lu.assertTrue(S.await_gone(term3), "the app of a cancelled terminate was ended")
  lu.assertStrContains(out, "\nleft\ttrue\t\n")
  lu.assertEquals(root_app:terminate(1).signal, 15)
end

function U.test_an_unprivileged_launcher_ends_the_apps_it_starts_as_another_user()
  write_policy("nobody: daemon\n")
  assert_ends_its_apps(install_copy())
  assert_ends_its_apps(install_copy("cap_setuid,cap_setgid+ep"))
end

-- kill_mode "cgroup" for a launcher that is not root, in a cgroup
-- delegated to it, its apps daemon's through a setuid helper: the
-- launcher may signal none of their processes, but the cgroup is its own.
-- The SIGTERM goes through the helper to the app's group (the app's child
-- got none), and once the app's main has ended, what it left in its
-- cgroup gets cgroup.kill after the grace (app:terminate gave up with
-- "Operation not permitted", the child left running); either way
-- how.left counts the child cgroup.kill ended.
function U.test_an_unprivileged_launcher_ends_a_cgroup_app_of_another_user()
  local mnt = S.own_cgroup_dir() and S.cgroup_mount()
  lu.skipIf(not mnt, "needs cgroup v2")
  write_policy("nobody: daemon\n")
  local helper, dir = install_copy(), shared_dir()
  local parent = "/appstart-spec-delegated-" .. S.core.pid()
  local cg = mnt .. parent
  assert(os.execute("mkdir " .. cg .. " " .. cg .. "/launcher && chown nobody " .. cg .. " " .. cg .. "/cgroup.procs "
    .. cg .. "/launcher/cgroup.procs"))
  local lua_path, lua_cpath = S.public_tree()
  local out = S.run_child({ as = "nobody", as_group = "nogroup", timeout = 60, cgroup = cg .. "/launcher",
    env = { LUA_PATH = lua_path, LUA_CPATH = lua_cpath, APPSTART_HELPER = helper, APPSTART_FIXTURES = S.bindir } },
    "helper_a_cgroup_app_of_another_user", dir, parent)
  for _, case in ipairs { "running", "main_ended", "supervised" } do
    local child = tonumber(S.read(dir .. "/" .. case .. ".pid") or "")
    if child and S.alive(child) then os.execute("kill -KILL " .. child) end
  end
  os.execute("rmdir " .. cg .. "/appstart.* " .. cg .. "/launcher " .. cg .. " 2>/dev/null")
  lu.assertStrContains(out, "running\tkilled by signal 15 (TERM); 1 other process of its group or cgroup signalled\t"
    .. "1\ttrue\n")
  lu.assertStrContains(out, "gone\trunning\tfalse\n")
  lu.assertStrContains(out, "main_ended\texited with code 0; 1 other process of its group or cgroup signalled\t1\t")
  lu.assertStrContains(out, "gone\tmain_ended\tfalse\n")
  lu.assertStrContains(out, "supervised\ttrue\tstopped\t1\n")
  lu.assertStrContains(out, "gone\tsupervised\tfalse\n")
  lu.assertStrContains(out, "left\ttrue\t\n")
  lu.assertNil(S.read(cg .. "/cgroup.procs"), "the delegated cgroup is removed")
end

-- A failed start's stop whose signals the helper cannot send (nobody may
-- not signal daemon's app, and the helper named cannot run) tells each
-- failure to the log function, which steps the start there: the start is
-- stopping by then, so that step waits with it. It failed again from
-- inside its own failure, sending its SIGTERM once more for each nested
-- step, until Lua's stack overflowed out of the wait; its SIGKILL the
-- same.
function U.test_a_log_function_that_steps_its_failed_start_as_the_helper_fails_to_signal()
  write_policy("nobody: daemon\n")
  local out, ok = run_child_as_nobody(install_copy(), "helper_a_log_function_that_steps_its_start_as_a_signal_fails")
  -- (what failed is at its end: it was 4.7 MB of warnings)
  local shown = #out > 2000 and "..." .. out:sub(-2000) or out
  lu.assertTrue(ok, shown)
  local pid = tonumber(out:match("\nresult\treturned\ttimeout\t(%d+)\n$"))
  lu.assertNotNil(pid, shown)
  started[#started + 1] = pid
  local warns = {}
  for text in out:gmatch("warn\t([^\n]*)\n") do warns[#warns + 1] = text:match("^[^:]*: (SIG%u+) through ") end
  lu.assertEquals(warns, { "SIGTERM", "SIGCONT", "SIGKILL" }, shown)
  lu.assertStrContains(out, "SIGTERM through /nonexistent/appstart-helper: cannot run /nonexistent/appstart-helper")
end

-- A failed start's signals through a helper that takes its time, outside
-- a loop (where the launcher waits for it): the start's grace runs from
-- the signal sent, not from before (its SIGKILL came as soon as the
-- helper had answered for SIGTERM and SIGCONT, the grace spent waiting
-- for it)...
function U.test_a_failed_starts_signals_through_a_slow_helper_leave_it_its_grace()
  write_policy("nobody: daemon\n")
  local dir = shared_dir()
  local out, ok = run_child_as_nobody(install_copy(), "helper_a_slow_signal_helper_outside_a_loop", dir, 0.2, 0.5,
    0.4, 0, "pause")
  lu.assertTrue(ok, out)
  local pid = tonumber(out:match("^result\ttimeout\t(%d+)\n$"))
  lu.assertNotNil(pid, out)
  started[#started + 1] = pid
  local runs, sigs = {}, {}
  for t, sig in S.read(dir .. "/slow-helper.runs"):gmatch("(%S+) (%d+)\n") do
    runs[#runs + 1], sigs[#sigs + 1] = tonumber(t), tonumber(sig)
  end
  lu.assertEquals(sigs, { 15, 18, 9 })
  -- SIGCONT's answer came 0.4 s after it began; SIGKILL 0.5 s after that
  lu.assertTrue(runs[3] - runs[2] >= 0.85, string.format("SIGKILL %.3f s after SIGCONT", runs[3] - runs[2]))
end

-- ... and a log function that steps the start as the helper's failure is
-- told, once the app has ended meanwhile, ends the start: its SIGCONT is
-- not sent after (its pidfd, closed with the starter, was handed to the
-- helper, whatever its number named by then).
function U.test_a_start_ended_by_its_log_function_as_a_signal_failed_sends_no_more()
  write_policy("nobody: daemon\n")
  local dir = shared_dir()
  local out, ok = run_child_as_nobody(install_copy(), "helper_a_slow_signal_helper_outside_a_loop", dir, 0.3, 5,
    0.6, 1, "sleep=0.6", "exit=0")
  lu.assertTrue(ok, out)
  lu.assertNotNil(out:match("^result\ttimeout\t%d+\n$"), out)
  local sigs = {}
  for sig in S.read(dir .. "/slow-helper.runs"):gmatch("%S+ (%d+)\n") do sigs[#sigs + 1] = tonumber(sig) end
  lu.assertEquals(sigs, { 15 })
end

--- A start cancelled once the installed helper has forked the app, before
-- it has written its pid: the helper kills that app first, a setuid copy
-- as root, a file-capabilities one as the app's user (its own effective
-- uid is the caller's, which may not signal the app: it left it running).
-- The cancel returns once that app has ended, not at the end of its
-- kill_grace (10 s; a quarter of the cancels waited it out, the app seen
-- on its way out, orphaned to the launcher, and not looked at again).
function U.test_a_start_cancelled_before_an_installed_copy_reported_leaves_no_app()
  write_policy("nobody: daemon\n")
  for _, caps in ipairs { false, "cap_setuid,cap_setgid+ep" } do
    local out = run_child_as_nobody(install_copy(caps or nil), "helper_cancelled_before_the_pid_through_an_installed_copy")
    local caught = tonumber(out:match("^caught (%d+)\n"))
    lu.assertNotNil(caught, out)
    lu.assertTrue(caught > 0, "the helper was never seen with its child")
    local slowest = tonumber(out:match("\nslowest ([%d.]+)\n"))
    lu.assertNotNil(slowest, out)
    lu.assertTrue(slowest < 5, string.format("a cancel took %.3f s: its kill_grace waited out", slowest))
    local left = {}
    for pid in out:gmatch("\nforked (%d+)") do
      if not S.await_gone(tonumber(pid), 2) then
        left[#left + 1] = pid
        os.execute("kill -KILL " .. pid)
      end
    end
    lu.assertEquals(left, {}, (caps and "file capabilities" or "setuid") .. ": apps left running")
  end
end

--- The command, run by an unprivileged user with --user and --watch,
-- forwards the signals it gets to the app it started as another user
-- (through the helper, since it may not signal that app itself), and
-- exits with the app's status.
function U.test_the_command_of_an_unprivileged_user_forwards_signals_to_another_users_app()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local lua_path = S.public_tree()
  local dir = shared_dir()
  local out = run_child_as_nobody(helper, "helper_command_forwards_signals_to_another_users_app",
    lua_path:match("^(.-)/%?%.lua;") .. "/bin/appstart", dir)
  local pid = tonumber(out:match("^ready\t(%d+)\n"))
  lu.assertNotNil(pid, out)
  started[#started + 1] = pid
  -- SIGHUP arrived, sent with nobody's real uid (the helper's caller)
  lu.assertStrContains(out, "\nhup\t1 65534\nexit\t143\n")
  lu.assertStrContains(out, "appstart: fixture (pid " .. pid .. ") was killed by SIGTERM")
  ended(pid)
end

--- A start of another user's app that is dropped (neither closed nor
-- waited for) by an unprivileged launcher: when it is collected, its app,
-- which refuses the launcher's own SIGKILL, gets it through the helper
-- (with kill_mode "group", the group it leads), and nothing is left (the
-- helper reaped too).
function U.test_a_dropped_start_of_another_users_app_has_it_killed_through_the_helper()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local dir = shared_dir()
  local out = run_child_as_nobody(helper, "helper_dropped_start_of_another_user", dir)
  local pid = tonumber(out:match("^pid\t(%d+)\n"))
  local leader, child = out:match("\ngroup\t(%d+)\t(%d+)\n")
  lu.assertNotNil(pid, out)
  lu.assertNotNil(leader, out)
  leader, child = tonumber(leader), tonumber(child)
  table.move({ pid, leader, child }, 1, 3, #started + 1, started)
  lu.assertTrue(S.await_gone(pid), "the dropped start's app was killed")
  lu.assertTrue(S.await_gone(leader), "the dropped group start's app was killed")
  lu.assertTrue(S.await_gone(child), "what it forked into its group too")
  lu.assertStrContains(out, "\nleft\ttrue\t\n")
end

-- An env for an app of another user, started by a launcher that is not
-- root, is an argument error (the command's: a usage error): the setuid
-- helper rebuilds the app's environment, and the start went on without
-- the env given.
function U.test_an_env_given_to_an_unprivileged_launchers_start_as_another_user_is_refused()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local lua_path = S.public_tree()
  local out, ok = run_child_as_nobody(helper, "helper_env_given_to_a_setuid_helper",
    lua_path:match("^(.-)/%?%.lua;") .. "/bin/appstart")
  lu.assertTrue(ok, out)
  local why = "field 'env': cannot be combined with 'user' in a launcher that is not root: the setuid "
    .. "appstart-helper rebuilds the app's environment (README: A setuid helper)"
  lu.assertStrContains(out, "start\tappstart.start: " .. why .. "\nbegin\tappstart.begin: " .. why
    .. "\nstarted\t15\n")
  lu.assertStrContains(out, "\ncommand\t2\tappstart: option '--env': cannot be combined with '--user' in a "
    .. "launcher that is not root: the setuid appstart-helper rebuilds the app's environment (README: A setuid "
    .. "helper)\n")
  lu.assertStrContains(out, "\ncommand\t2\tappstart: option '--clear-env': cannot be combined with '--user' in a "
    .. "launcher that is not root: the setuid appstart-helper rebuilds the app's environment (README: A setuid "
    .. "helper)\n")
end

-- A launcher whose effective uid is root and real uid is not (one run from
-- a setuid-root wrapper) runs appstart-helper in secure mode all the same
-- (the kernel marks the exec AT_SECURE): an env with user is an argument
-- error there too (the start failed `helper`, the helper refusing it; the
-- env was dropped before that).
function U.test_an_env_with_user_in_a_launcher_root_only_in_its_effective_uid_is_refused()
  -- (such a Lua runs in secure mode itself: its loader ignores LD_PRELOAD,
  -- so the sanitizers' runtime cannot come first, as make sanitize's
  -- instrumented module needs)
  lu.skipIf(os.getenv("APPSTART_SAN_PRELOAD") ~= nil, "a secure-mode Lua cannot preload the sanitizers' runtime")
  local out = S.tmpname("out")
  local lua = "local ok, err = pcall(require('appstart').start, { argv = { os.getenv('F'), 'pause' }, "
    .. "user = 'daemon', env = { FOO = 'bar' }, ready = 'none' }) print(ok, err)"
  local ok = os.execute("F=" .. sh_quote(F) .. " setpriv --ruid=nobody lua5.4 -e " .. sh_quote(lua) .. " >" .. out
    .. " 2>&1")
  lu.assertTrue(ok, S.read(out))
  lu.assertStrContains(S.read(out), "false\t")
  lu.assertStrContains(S.read(out), "field 'env': cannot be combined with 'user' in a launcher that is not root")
  lu.assertEquals(S.strays(), {})
end

-- An environment for the app (--encoded-env without --login-env: the
-- launcher was given one) reaching a helper in secure mode is refused as
-- a usage error, not replaced by the fixed set: from a setuid copy, and
-- from the plain build run with root's effective uid and another real uid
-- (the kernel's AT_SECURE without a setuid file, which such a launcher,
-- euid 0, does not foresee).
function U.test_an_environment_given_to_a_secure_helper_is_refused_not_replaced()
  write_policy("nobody: daemon\n")
  local runs = { { "setpriv --ruid=nobody --euid=0 ", POLICYTEST },
                 { "setpriv --reuid=nobody --regid=nogroup --clear-groups ", install_copy() } }
  for _, how in ipairs(runs) do
    local function run(args, dir)
      local pidout, errout, stderr = S.tmpname("pidrec"), S.tmpname("errfd"), S.tmpname("stderr")
      local _, _, code = os.execute(how[1] .. "env -i APPSTART_ENV_FOO=bar APPSTART_ENV_PATH=/usr/bin:/bin "
        .. sh_quote(how[2]) .. " --user daemon --encoded-env --error-fd 4 " .. args .. " -- " .. sh_quote(F)
        .. " env=" .. dir .. "/env pause 3>" .. pidout .. " 4>" .. errout .. " 2>" .. stderr .. " </dev/null")
      return code, S.read(pidout), S.read(errout), S.read(stderr)
    end
    local dir = shared_dir()
    local code, rec, err, stderr = run("", dir)
    track(rec)
    lu.assertEquals(code, 2, how[1] .. err .. stderr)
    lu.assertEquals(rec, "", "no pid written")
    lu.assertStrContains(err, "the environment cannot be given through a setuid or secure-mode helper")
    lu.assertNil(S.read(dir .. "/env"), "the program must not have run")
    -- without one, the app's environment is the helper's to make
    dir = shared_dir()
    code, rec, err, stderr = run("--login-env", dir)
    local pid = track(rec)
    lu.assertEquals(code, 0, how[1] .. err .. stderr)
    local env = env_list(S.await_file(dir .. "/env"))
    stop(pid)
    local pw = passwd("daemon")
    lu.assertEquals(env, env_list(table.concat({ "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" .. pw.home,
      "USER=daemon", "LOGNAME=daemon", "SHELL=" .. pw.shell }, "\n")))
  end
  lu.assertEquals(S.children(), {})
end

function U.test_a_listed_user_runs_with_a_clean_environment_no_capabilities_and_no_terminal()
  write_policy("# who may start apps as whom\n\nnobody: daemon   # the device's daemons\n")
  local helper = install_copy()
  local pid, st, dir = start_as_nobody(helper, { "--user", "daemon" })
  local stat = stat_fields(S.read("/proc/" .. pid .. "/stat"))
  local env = env_list(S.await_file(dir .. "/env"))
  stop(pid)
  local pw = passwd("daemon")
  assert_runs_as(st, 1, 1, "1")
  for _, set in ipairs { "CapInh", "CapPrm", "CapEff", "CapAmb" } do
    lu.assertEquals(st[set], "0000000000000000", set)
  end
  lu.assertEquals(stat.sid, pid, "the app leads a session of its own")
  lu.assertEquals(stat.tty, 0, "the app has no controlling terminal")
  -- the fixed PATH, the target's own login variables, TERM and LANG kept;
  -- no FOO, no LD_PRELOAD, no caller's HOME, no LC_TIME that is a path
  lu.assertEquals(env, env_list(table.concat({ "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=" .. pw.home, "USER=daemon", "LOGNAME=daemon", "SHELL=" .. pw.shell,
    "TERM=dumb", "LANG=C.UTF-8" }, "\n")))
end

function U.test_a_caller_without_a_line_is_refused()
  write_policy("daemon: nobody\n")
  local helper = install_copy()
  assert_refused(helper, { "--user", "daemon" }, "nobody (uid 65534) has no line in " .. POLICY)
  assert_refused(helper, {}, "has no line")
end

function U.test_root_is_never_a_target_even_when_listed()
  write_policy("nobody: root daemon 0\n")
  local helper = install_copy()
  assert_refused(helper, { "--user", "root" }, "root is never a target")
  assert_refused(helper, { "--user", "0" }, "root is never a target")
end

function U.test_an_unlisted_target_is_refused()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  assert_refused(helper, { "--user", "bin" }, "may not start apps as bin")
  assert_refused(helper, { "--user", "54321" }, "may not start apps as uid 54321")
end

function U.test_without_user_the_app_runs_as_the_caller()
  write_policy("nobody:\n")
  local helper = install_copy()
  local pid, st = start_as_nobody(helper, {})
  stop(pid)
  assert_runs_as(st, 65534, 65534, "65534")
end

function U.test_a_numeric_user_without_a_passwd_entry_listed_by_uid_runs()
  write_policy("65534: 54321\n")
  local helper = install_copy()
  local pid, st, dir = start_as_nobody(helper, { "--user", "54321" })
  local env = "\n" .. S.await_file(dir .. "/env")
  stop(pid)
  assert_runs_as(st, 54321, 54321, "")
  lu.assertNotStrContains(env, "\nHOME=", "never the caller's HOME, nor root's")
end

--- A listed uid with no passwd entry runs with its uid as its gid: never
-- where that gid is a group (one no entry gives that uid: uid 27 would run
-- in group 27, sudo on Debian), not even named by --group.
function U.test_a_uid_without_a_passwd_entry_whose_gid_is_a_group_is_refused()
  -- a group whose gid no user has as a uid
  local p = assert(io.popen("awk -F: 'NR==FNR{u[$3]=1;next} !($3 in u) && $3>0 {print $3, $1; exit}' "
    .. "/etc/passwd /etc/group"))
  local gid, name = p:read("a"):match("^(%d+) (%S+)")
  p:close()
  lu.skipIf(not gid, "no group here whose gid no user has")
  write_policy("65534: " .. gid .. "\n")
  local helper = install_copy()
  local why = string.format("policy: refused: uid %s has no passwd entry and gid %s is group %s", gid, gid, name)
  assert_refused(helper, { "--user", gid }, why)
  assert_refused(helper, { "--user", gid, "--group", gid }, why)
end

function U.test_a_policy_file_others_could_change_is_refused()
  local helper = install_copy()
  local line = "nobody: daemon\n"
  write_policy(line, "664")
  assert_refused(helper, { "--user", "daemon" }, "writable by others than root")
  write_policy(line, "646")
  assert_refused(helper, { "--user", "daemon" }, "writable by others than root")
  write_policy(line, "644", "nobody")
  assert_refused(helper, { "--user", "daemon" }, "is not owned by root")
  write_policy(line)
  assert(os.execute("chmod 777 " .. POLICY_DIR))
  assert_refused(helper, { "--user", "daemon" }, "directory " .. POLICY_DIR .. " is writable by others")
  write_policy(line)
  local real = POLICY_DIR .. "/real.policy"
  assert(os.execute("mv " .. POLICY .. " " .. real .. " && ln -s real.policy " .. POLICY))
  assert_refused(helper, { "--user", "daemon" }, "is a symbolic link")
  os.remove(real)
  os.remove(POLICY)
  assert_refused(helper, { "--user", "daemon" }, "No such file or directory")
  write_policy("nobody: daemon\nnobody daemon\n")
  assert_refused(helper, { "--user", "daemon" }, "line 2: no ':'")
  write_policy(string.rep("# padding\n", 7000) .. line)
  assert_refused(helper, { "--user", "daemon" }, "larger than")
  -- a directory on the path that is a symbolic link (to a directory root
  -- owns, the policy in it fine): refused. The path was resolved first,
  -- and only the target's directories checked: a link in a directory
  -- others could write could name any policy root had left anywhere.
  write_policy(line)
  local moved = POLICY_DIR .. ".real"
  assert(os.execute("rm -rf " .. moved .. " && mv " .. POLICY_DIR .. " " .. moved .. " && ln -s " .. moved .. " "
    .. POLICY_DIR))
  local ok, err = pcall(assert_refused, helper, { "--user", "daemon" }, POLICY_DIR .. " is a symbolic link")
  assert(os.execute("rm " .. POLICY_DIR .. " && mv " .. moved .. " " .. POLICY_DIR))
  assert(ok, err)
  -- and the same file, fixed, is obeyed
  write_policy(line)
  stop((start_as_nobody(helper, { "--user", "daemon" })))
end

function U.test_group_must_be_one_of_the_targets_own()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  assert_refused(helper, { "--user", "daemon", "--group", "shadow" }, "group shadow is not one of daemon's groups")
  assert_refused(helper, { "--user", "daemon", "--group", "0" }, "is not one of")
  local pid, st = start_as_nobody(helper, { "--user", "daemon", "--group", "daemon" })
  stop(pid)
  assert_runs_as(st, 1, 1, "1")
end

-- The policy grants a uid; a second passwd entry with that uid (an
-- alias, its gid 0, a member of disk and shadow) named as --user gave the
-- app the alias's gid and groups with the uid: a name that is not the
-- uid's own entry is refused, for a listed target and for the caller's
-- own uid alike; the uid's own name runs with its own groups alone.
function U.test_a_name_that_is_another_entry_of_the_targets_uid_is_refused()
  lu.skipIf(not S.can_unshare(), "needs a mount namespace of its own")
  for _, db in ipairs { "passwd", "group" } do
    local p = io.popen("getent " .. db .. " 54322")
    lu.assertNil(p:read("l"), "54322 must have no " .. db .. " entry")
    p:close()
  end
  local nobody = passwd("nobody")
  local aliases = "appstart-web-admin,appstart-nobody-adm"
  local pw, gr = S.tmpname("passwd"), S.tmpname("group")
  local f = assert(io.open(pw, "w"))
  f:write(assert(S.read("/etc/passwd")), "appstart-web:x:54322:54322::/nonexistent:/usr/sbin/nologin\n",
    "appstart-web-admin:x:54322:0::/root:/bin/sh\n",
    "appstart-nobody-adm:x:" .. nobody.uid .. ":0::/root:/bin/sh\n")
  f:close()
  local lines = {}
  for _, line in ipairs(S.lines(assert(S.read("/etc/group")))) do
    local name, members = line:match("^([^:]*):[^:]*:[^:]*:(.*)$")
    if name == "root" or name == "disk" or name == "shadow" then
      line = line .. (members == "" and "" or ",") .. aliases
    end
    lines[#lines + 1] = line
  end
  lines[#lines + 1] = "appstart-web:x:54322:"
  f = assert(io.open(gr, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  write_policy("nobody: appstart-web\n")
  local helper = install_copy()
  -- the setuid copy run by nobody where /etc/passwd and /etc/group are those
  local function run(user, dir)
    local pidout, errout, stderr = S.tmpname("pidrec"), S.tmpname("errfd"), S.tmpname("stderr")
    local _, _, code = os.execute("unshare --mount sh -c " .. sh_quote("mount --bind " .. pw .. " /etc/passwd && "
      .. "mount --bind " .. gr .. " /etc/group && exec setpriv --reuid=nobody --regid=nogroup --clear-groups "
      .. sh_quote(helper) .. " --user " .. user .. " --error-fd 4 -- " .. sh_quote(F) .. " status=" .. dir
      .. "/status pause") .. " 3>" .. pidout .. " 4>" .. errout .. " 2>" .. stderr .. " </dev/null")
    return code, S.read(pidout), S.read(errout) .. S.read(stderr)
  end
  for _, alias in ipairs { { "appstart-web-admin", "54322", "appstart-web" },
                           { "appstart-nobody-adm", tostring(nobody.uid), "nobody" } } do
    local dir = shared_dir()
    local code, rec, err = run(alias[1], dir)
    track(rec)
    lu.assertEquals(code, 1, err)
    lu.assertEquals(rec, "", "no pid written")
    lu.assertStrContains(err, "policy: refused: user " .. alias[1] .. " is not uid " .. alias[2]
      .. "'s own passwd entry, " .. alias[3])
    lu.assertNil(S.read(dir .. "/status"), "the program must not have run")
  end
  local dir = shared_dir()
  local code, rec, err = run("appstart-web", dir)
  local pid = track(rec)
  lu.assertEquals(code, 0, err)
  local st = status_table(S.await_file(dir .. "/status"))
  stop(pid)
  assert_runs_as(st, 54322, 54322, "54322")
  lu.assertEquals(S.children(), {})
end

function U.test_only_kept_descriptors_reach_the_app()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local dir = shared_dir()
  local code, rec, err = run_as_nobody(helper, { "--keep-fd", "5", "--user", "daemon", "--",
    F, "fds=" .. dir .. "/fds" }, "5</dev/null 7</dev/null 9>/dev/null")
  lu.assertEquals(code, 0, err)
  local fds = S.await_file(dir .. "/fds")
  ended(le32(rec))
  lu.assertEquals(fds, "0\n1\n2\n5\n", "the caller's 7 and 9 are closed, the kept 5 is not")
end

-- Descriptors 0-2 the caller closed are /dev/null, read and write, for
-- the app: glibc fills them before main in setuid mode, with /dev/full
-- write-only on 0 and /dev/null read-only on 1 and 2, so the app's echo
-- and its read of stdin failed (EBADF).
function U.test_closed_standard_descriptors_are_dev_null_for_the_app()
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local dir = shared_dir()
  local out = dir .. "/std"
  local code, rec, err = run_as_nobody(helper, { "--user", "daemon", "--", "/bin/sh", "-c",
    'echo hi; echo "$?" > ' .. out .. "; readlink /proc/self/fd/0 >> " .. out .. "; cat >/dev/null; echo \"$?\" >> "
    .. out }, "0<&- 1>&-")
  lu.assertEquals(code, 0, err)
  ended(le32(rec)) -- (it has written all it writes)
  lu.assertEquals(S.read(out), "0\n/dev/null\n0\n")
end

-- Nor a terminal on a kept descriptor: it reached another user's app
-- (only 0-2 were looked at), which could read what is typed there.
function U.test_a_terminal_on_a_kept_descriptor_is_refused()
  lu.skipIf(not os.execute("command -v script >/dev/null"), "needs script(1) for a terminal")
  write_policy("nobody: daemon\n")
  local helper = install_copy()
  local dir = shared_dir()
  local pidout, errout, codeout = S.tmpname("pidrec"), S.tmpname("stderr"), S.tmpname("code")
  -- (on script(1)'s pty: /dev/tty opened on 5 by root's shell, kept)
  local cmd = "setpriv --reuid=nobody --regid=nogroup --clear-groups " .. sh_quote(helper) ..
    " --keep-fd 5 --user daemon -- " .. sh_quote(F) .. " pidfile=" .. dir .. "/ran 3>" .. pidout .. " 2>" ..
    errout .. " </dev/null >/dev/null 5<>/dev/tty; echo $? >" .. codeout
  os.execute("script -qec " .. sh_quote(cmd) .. " /dev/null </dev/null >/dev/null")
  lu.assertEquals(tonumber(S.read(codeout)), 1, S.read(errout))
  lu.assertStrContains(S.read(errout), "terminal: descriptor 5 is a terminal")
  lu.assertEquals(S.read(pidout), "", "no pid written")
  lu.assertNil(S.read(dir .. "/ran"), "the program must not have run")
end

-- Without --user the app runs as its caller, with the caller's limits:
-- what the root part set for itself (pid 1's) is not the app's (a lowered
-- one came back lifted: RLIMIT_FSIZE unlimited; with CAP_SYS_RESOURCE a
-- hard one too). As another user, pid 1's.
function U.test_an_app_run_as_its_caller_keeps_the_callers_limits()
  local helper = install_copy()
  write_policy("nobody: daemon\n")
  local function limits(user)
    local out, pidout = shared_dir() .. "/limits", S.tmpname("pidrec")
    local args = user and ("--user " .. user .. " ") or ""
    local _, _, code = os.execute("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "
      .. sh_quote('ulimit -S -f 2048; exec "$0" "$@"') .. " " .. sh_quote(helper) .. " " .. args .. "-- /bin/sh -c "
      -- (written whole, then renamed into place: the app runs on its own,
      -- and a look between its two writes read part of it)
      .. sh_quote("ulimit -S -f > " .. out .. ".part; ulimit -H -f >> " .. out .. ".part; mv " .. out .. ".part " .. out)
      .. " 3>" .. pidout .. " 2>/dev/null </dev/null")
    lu.assertEquals(code, 0)
    track(S.read(pidout))
    return S.await_file(out)
  end
  lu.assertEquals(limits(nil), "2048\nunlimited\n", "the caller's own")
  lu.assertEquals(limits("daemon"), "unlimited\nunlimited\n", "pid 1's")
end

-- A copy without CAP_SYS_RESOURCE (file capabilities) cannot lift a
-- caller's hard limits: with RLIMIT_FSIZE 0 and the pid channel a regular
-- file, the pid could not be written. The helper refuses before it forks
-- (it was killed by SIGXFSZ after the fork, the app running on as another
-- user, its pid told to nobody).
function U.test_a_pid_channel_that_cannot_take_the_pid_is_refused_before_the_fork()
  if not os.execute("command -v setcap >/dev/null") then
    lu.skip("setcap not found (package libcap2-bin): the file-capabilities copy is not tested")
  end
  local helper = install_copy("cap_setuid,cap_setgid+ep")
  write_policy("nobody: daemon\n")
  local pidout, marker = S.tmpname("pidrec"), S.tmpname("ran")
  local _, _, code = os.execute("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "
    .. sh_quote('ulimit -f 0; exec "$0" "$@"') .. " " .. sh_quote(helper) .. " --user daemon -- "
    .. sh_quote(F) .. " pidfile=" .. marker .. " pause 3>" .. pidout .. " 2>/dev/null </dev/null")
  lu.assertEquals(code, 1, "exit 153 is SIGXFSZ")
  lu.assertEquals(S.read(pidout), "")
  lu.assertNil(S.read(marker), "the app ran")
end

-- A pid that cannot be written (here a channel open for reading) gets
-- the app killed, also by a copy whose effective uid is its caller's
-- (file capabilities): it kills as the app's uid, as its stop signal's
-- handler does. (It waited for an app its kill could not reach, for good,
-- the app running on as another user.)
function U.test_a_file_capabilities_copy_kills_an_app_whose_pid_cannot_be_written()
  if not os.execute("command -v setcap >/dev/null") then
    lu.skip("setcap not found (package libcap2-bin): the file-capabilities copy is not tested")
  end
  for _, caps in ipairs { false, "cap_setuid,cap_setgid+ep" } do
    local helper = install_copy(caps)
    write_policy("nobody: daemon\n")
    local errout = S.tmpname("stderr")
    local _, how, code = os.execute("timeout -s KILL 20 setpriv --reuid=nobody --regid=nogroup --clear-groups "
      .. sh_quote(helper) .. " --user daemon -- " .. sh_quote(F) .. " pause 3</dev/null 2>" .. errout .. " </dev/null")
    local err = S.read(errout)
    lu.assertEquals({ how, code }, { "exit", 1 }, tostring(caps) .. ": " .. err)
    local pid = tonumber(err:match("cannot write the pid of %S+ %((%d+)%)"))
    lu.assertNotNil(pid, err)
    lu.assertStrContains(err, ": the app killed\n")
    lu.assertFalse(S.alive(pid), tostring(caps) .. ": the app runs on")
  end
end

function U.test_a_file_capabilities_copy_obeys_the_policy_and_drops_every_capability()
  if not os.execute("command -v setcap >/dev/null") then
    lu.skip("setcap not found (package libcap2-bin): the file-capabilities copy is not tested")
  end
  local helper = install_copy("cap_setuid,cap_setgid+ep")
  write_policy("daemon: nobody\n")
  assert_refused(helper, { "--user", "daemon" }, "has no line")
  write_policy("nobody: daemon\n")
  assert_refused(helper, { "--user", "root" }, "root is never a target")
  local pid, st, dir = start_as_nobody(helper, { "--user", "daemon" })
  local env = "\n" .. S.await_file(dir .. "/env")
  stop(pid)
  assert_runs_as(st, 1, 1, "1")
  for _, set in ipairs { "CapInh", "CapPrm", "CapEff", "CapAmb" } do
    lu.assertEquals(st[set], "0000000000000000", set)
  end
  lu.assertStrContains(env, "\nPATH=/usr/local/bin:/usr/bin:/bin\n")
  lu.assertNotStrContains(env, "\nFOO=")
end

return { TestHelper = T, TestHelperSetuid = U }
