--- Forking daemons: ready = {forks = true, pid_file = PATH}. The started
-- process forks the daemon and exits 0; the daemon's pid comes from the
-- file, proven to descend from the started process, and is watched and
-- terminated as any app. Real daemons from Debian (nginx in its default
-- daemon mode, dnsmasq), and fixtures for what goes wrong: a non-zero
-- exit, no pid ever, a pid file naming an older unrelated process, one
-- holding no pid.
local lu = require "luaunit"
local S = require "support"

local F = S.fixture
local core = S.core

local start, fail_within = S.starter { ready_timeout = 10, kill_grace = 2 }

local T = {}

function T.setUp()
  S.arm_watchdog(30)
end

function T.tearDown()
  debug.sethook()
  S.kill_strays()
end

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

--- A pid file with text in it, which the process started rewrites: the
-- fixture's last actions (a file there before the start is read only once
-- modified: it is an earlier run's until then). Its time is set an hour
-- ahead, so that it differs from the one before, however soon.
local function pid_file_to_come(path, text)
  write(path, text)
  return "exec", "touch", "-d", "+1 hour", path
end

-- Does a tcp connection to 127.0.0.1:port succeed (within 2 s)?
local function connects(port)
  local r = core.connect("tcp", "127.0.0.1", port)
  if type(r) ~= "userdata" then return r == true end
  local t = core.now()
  local ok = r:check()
  while ok == false and core.now() - t < 2 do ok = r:check() end
  r:close()
  return ok == true
end

-- Does a DNS server on 127.0.0.1:port answer a query over udp (within 5
-- s)? Its answer, whatever it says, comes from its main loop.
local function dns_answers(port)
  local p = io.popen(string.format([[bash -c 'exec 3<>/dev/udp/127.0.0.1/%d &&
    printf "\022\064\001\000\000\001\000\000\000\000\000\000\011localhost\000\000\001\000\001" >&3 &&
    timeout 5 head -c 2 <&3 | wc -c']], port))
  local n = p:read("a")
  p:close()
  return tonumber(n) == 2
end

-- A tcp port nobody listens on now, for a daemon of the spec's.
local function free_port()
  for _ = 1, 20 do
    local port = math.random(20000, 60000)
    if not connects(port) then return port end
  end
  error("no free port")
end

-- The pids pgrep finds (args: pgrep's).
local function pids_with(args)
  local out = {}
  local p = io.popen("pgrep " .. args)
  for line in p:lines() do out[#out + 1] = tonumber(line) end
  p:close()
  return out
end

function T.test_nginx_in_its_default_daemon_mode()
  lu.assertTrue(have("nginx"), "nginx is installed by .ci/deps")
  local before = S.snapshot()
  local dir = S.tmpname("nginx")
  assert(os.execute("mkdir " .. dir))
  local port, conf = free_port(), dir .. "/nginx.conf"
  local t = dir .. "/tmp"
  write(conf, string.format([[
pid %s/nginx.pid;
error_log %s/error.log;
worker_processes 2;
events {}
http {
  access_log off;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen 127.0.0.1:%d; location / { return 200 "ok\n"; } }
}
]], dir, dir, t, t, t, t, t, port))
  local app = assert(start { argv = { "nginx", "-c", conf, "-p", dir },
    ready = { forks = true, pid_file = dir .. "/nginx.pid" } })
  lu.assertEquals(app.pid, S.pid_in(dir .. "/nginx.pid"))
  -- the daemon, not the process started (which has exited)
  lu.assertEquals(S.proc_status(app.pid).Name, "nginx")
  lu.assertEquals(tonumber(S.proc_status(app.pid).PPid), core.pid(), "adopted by the launcher")
  lu.assertTrue(connects(port), "nginx serves")
  -- its workers (the master forks them once its pid file is written)
  local workers, until_ = pids_with("-P " .. app.pid), core.now() + 5
  while #workers < 2 and core.now() < until_ do
    core.wait_readable(-1, 0.01)
    workers = pids_with("-P " .. app.pid)
  end
  lu.assertTrue(#workers >= 2, "its workers run")
  local how = app:terminate()
  lu.assertEquals(how, { code = 0 })
  lu.assertFalse(S.alive(app.pid), "the master is gone")
  for _, pid in ipairs(workers) do lu.assertTrue(S.await_gone(pid, 5), "worker " .. pid) end
  S.assert_clean(before)
end

function T.test_dnsmasq_with_its_pid_file()
  lu.assertTrue(have("dnsmasq"), "dnsmasq is installed by .ci/deps")
  local before = S.snapshot()
  local dir = S.tmpname("dnsmasq")
  assert(os.execute("mkdir -m 755 " .. dir))
  local port, pid_file = free_port(), dir .. "/dnsmasq.pid"
  local app = assert(start { argv = { "dnsmasq", "--conf-file=/dev/null", "--port=" .. port,
    "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
    "--pid-file=" .. pid_file }, ready = { forks = true, pid_file = pid_file } })
  lu.assertEquals(app.pid, S.pid_in(pid_file))
  lu.assertEquals(S.proc_status(app.pid).Name, "dnsmasq")
  lu.assertTrue(connects(port), "dnsmasq answers on tcp")
  -- dnsmasq's first process exits 0 (ready) a little before the daemon's
  -- startup is over, and a SIGTERM meanwhile makes it exit 5: its answer
  -- to a query says it is over
  lu.assertTrue(dns_answers(port), "dnsmasq answers a query")
  lu.assertEquals(app:terminate(), { code = 0 })
  lu.assertFalse(S.alive(app.pid))
  S.assert_clean(before)
end

-- A daemon proven while its parent, a process between it and the one
-- started (which has exited), still runs, as dnsmasq's may be: once that
-- parent exits the daemon comes to the launcher, with its exit status, and
-- the launcher is a child subreaper no longer than that. The same for a
-- helper's app (helper = true: the process started reports the pid).
function T.test_a_daemon_proven_while_its_parent_runs_comes_to_the_launcher_with_its_status()
  if not S.testing.has_pidfd() then lu.skip("no pidfds (valgrind 3.19): the daemon's status is not knowable") end
  for _, how in ipairs { "forks", "helper" } do
    local before = S.snapshot()
    local mid, pid_file, go, stop = S.tmpname("mid"), S.tmpname("pidfile"), S.tmpname("go"), S.tmpname("stop")
    local argv = { F, "fork", "setsid", "pidfile=" .. mid, "fork", "pidfile=" .. pid_file, "waitfile=" .. stop,
      "exit=7", "|", "waitfile=" .. go, "|", "waitfile=" .. pid_file, "exit=0" }
    local opts = { argv = argv, ready = { forks = true, pid_file = pid_file } }
    if how == "helper" then
      table.insert(argv, #argv, "int32=3:@" .. pid_file)
      opts.helper, opts.ready = true, "none"
    end
    local app = assert(start(opts))
    local mid_pid = S.pid_in(mid)
    lu.assertEquals(tonumber(S.proc_status(app.pid).PPid), mid_pid, how .. ": proven while its parent runs")
    lu.assertTrue(S.testing.subreaper(), how .. ": a subreaper while the app has not come")
    S.touch(go)
    lu.assertTrue(S.await_gone(mid_pid, 5))
    lu.assertEquals(tonumber(S.proc_status(app.pid).PPid), core.pid(), how .. ": the app came to the launcher")
    core.reap()
    lu.assertFalse(S.testing.subreaper(), how .. ": still a subreaper once it came")
    S.touch(stop)
    lu.assertEquals(app:wait(5), { code = 7 }, how)
    S.assert_clean(before, how)
  end
end

-- The same daemon closed, or ended, while its parent still runs: the
-- launcher is a subreaper no more (the daemon ended as its parent's child:
-- its status is not knowable), and nothing is left behind.
function T.test_a_daemon_closed_or_ended_while_its_parent_runs_leaves_nothing()
  if not S.testing.has_pidfd() then lu.skip("no pidfds (valgrind 3.19)") end
  for _, how in ipairs { "close", "terminate" } do
    local before = S.snapshot()
    local mid, pid_file, go = S.tmpname("mid"), S.tmpname("pidfile"), S.tmpname("go")
    local app = assert(start { ready = { forks = true, pid_file = pid_file },
      argv = { F, "fork", "setsid", "pidfile=" .. mid, "fork", "pidfile=" .. pid_file, "pause", "|",
        "waitfile=" .. go, "|", "waitfile=" .. pid_file, "exit=0" } })
    local pid, mid_pid = app.pid, S.pid_in(mid)
    lu.assertTrue(S.testing.subreaper(), how)
    if how == "close" then
      app:close()
      os.execute("kill " .. pid)
    else
      lu.assertEquals(app:terminate(), {}, how)
    end
    lu.assertFalse(S.testing.subreaper(), how .. ": a subreaper still")
    S.touch(go)
    lu.assertTrue(S.await_gone(mid_pid, 5), how)
    lu.assertTrue(S.await_gone(pid, 5), how)
    S.assert_clean(before, how)
  end
end

-- The same daemon closed just as its parent exits: the parent gone after
-- the close's last look at it and before the adoption window closed, the
-- daemon came to the launcher then, and is reaped once it ends (it was
-- taken by nobody: killed, it stayed a zombie of the launcher's). The
-- close pauses before the window closes, so the parent exits within it.
function T.test_a_daemon_closed_as_its_parent_exits_is_reaped_once_it_ends()
  if not S.testing.has_pidfd() then lu.skip("no pidfds (valgrind 3.19)") end
  local before = S.snapshot()
  local mid, pid_file, go = S.tmpname("mid"), S.tmpname("pidfile"), S.tmpname("go")
  local app = assert(start { ready = { forks = true, pid_file = pid_file },
    argv = { F, "fork", "setsid", "pidfile=" .. mid, "fork", "pidfile=" .. pid_file, "pause", "|",
      "waitfile=" .. go, "sleep=0.1", "|", "waitfile=" .. pid_file, "exit=0" } })
  local pid, mid_pid = app.pid, S.pid_in(mid)
  lu.assertTrue(S.testing.subreaper())
  S.touch(go)
  S.testing.drop_pause(1)
  local ok, err = pcall(app.close, app)
  S.testing.drop_pause(0)
  assert(ok, err)
  lu.assertTrue(S.await_gone(mid_pid, 5))
  lu.assertEquals(tonumber(S.proc_status(pid).PPid), core.pid(), "the daemon came to the launcher in the pause")
  lu.assertFalse(S.testing.subreaper())
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_with_sleep(function() return S.proc_status(pid) == nil end, 5), "the daemon is not reaped: "
    .. (S.proc_status(pid) or { State = "gone" }).State)
  S.assert_clean(before)
end

--- A start cancelled or closed once the daemon has written its pid file,
-- before anything stepped it: the stop reads the file and terminates the
-- daemon (proven as ever), as it does an app whose pid a helper reported,
-- in process mode and in a group it left (setsid). It ran on, a child of
-- the launcher's: the stop never looked at the file.
function T.test_a_start_cancelled_once_the_pid_file_is_written_ends_the_daemon()
  local appstart = require "appstart"
  for _, mode in ipairs { "process", "group" } do
    for _, how in ipairs { "cancel", "close" } do
      local before = S.snapshot()
      local pid_file, go = S.tmpname("pidfile"), S.tmpname("go")
      -- (the pid file comes once begin's own step is over: go)
      local h = appstart.begin { ready = { forks = true, pid_file = pid_file }, kill_mode = mode, kill_grace = 10,
        log = S.quiet, argv = { F, "fork", "setsid", "waitfile=" .. go, "pidfile=" .. pid_file, "pause", "|",
          "exit=0" } }
      lu.assertFalse(h.done, mode .. ": done at begin")
      S.touch(go)
      local daemon = S.pid_in(pid_file)
      if how == "cancel" then h:cancel() else h:__close() end
      local what = mode .. ", " .. how
      lu.assertEquals(h.err.code, "cancelled", what)
      lu.assertEquals(h.err.pid, daemon, what)
      lu.assertTrue(S.await_gone(daemon, 5), what .. ": the daemon runs on")
      S.assert_clean(before, what)
    end
  end
end

function T.test_a_pid_file_naming_an_older_unrelated_process_is_bad_pid_and_nothing_is_signalled()
  local old = S.tmpname("old")
  local older = io.popen(F .. " pidfile=" .. old .. " pause & echo $!")
  local older_pid = tonumber(older:read("l"))
  older:close()
  S.pid_in(old)
  local pid_file, child = S.tmpname("pidfile"), S.tmpname("child")
  local err = fail_within({ ready = { forks = true, pid_file = pid_file },
    argv = { F, "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. child,
      pid_file_to_come(pid_file, older_pid .. "\n") } }, "bad_pid", 5,
    function()
      -- the daemon it forked was never proven the app: not signalled
      local pid = S.pid_in(child)
      lu.assertTrue(S.alive(pid))
      lu.assertTrue(S.alive(older_pid))
      os.execute("kill -9 " .. pid .. " " .. older_pid)
      S.await_gone(pid, 3)
      S.await_gone(older_pid, 3)
      S.testing.reap()
    end)
  -- older than the start, and no descendant of it (which of the two is
  -- seen first depends on the clock's ticks)
  lu.assertStrContains(err.message, "the pid file named pid " .. older_pid .. ": ")
  local why = err.message:match(": ([^:]*)$")
  lu.assertTrue(why == "started before the process that was started" or why == "not a process it started", why)
end

function T.test_a_pid_past_the_range_of_pids_is_bad_pid_not_cut_down_to_one()
  local pid_file, child = S.tmpname("pidfile"), S.tmpname("child")
  -- the daemon's own pid plus 2^32: cut to 32 bits it would name the daemon
  local err = fail_within({ ready = { forks = true, pid_file = pid_file },
    argv = { "/bin/sh", "-c", '"$0" pause & echo $! > "$1"; echo $(( $! + 4294967296 )) > "$2"; exit 0',
      F, child, pid_file } }, "bad_pid", 5,
    function()
      local pid = S.pid_in(child)
      lu.assertTrue(S.alive(pid), "a pid never proven was signalled")
      os.execute("kill -9 " .. pid)
      S.await_gone(pid, 3)
      S.testing.reap()
    end)
  lu.assertStrMatches(err.message, ".*the pid file named pid %d+: out of range.*")
end

function T.test_a_pid_file_naming_a_process_the_launcher_forked_itself_is_bad_pid()
  local before = S.snapshot()
  local pass, pid_file, own = S.tmpname("pass"), S.tmpname("pidfile"), S.tmpname("own")
  -- the started process names a child the launcher made itself (io.popen)
  -- after the start began, once the started process has exited
  local h = require("appstart").begin { ready = { forks = true, pid_file = pid_file }, ready_timeout = 5,
    log = S.quiet, argv = { "/bin/sh", "-c", 'while [ ! -s "$0" ]; do sleep 0.01; done; cat "$0" > "$1"; exit 0',
      pass, pid_file } }
  local p = io.popen("exec " .. F .. " pidfile=" .. own .. " pause")
  local pid = S.pid_in(own)
  local f = assert(io.open(pass .. ".tmp", "w"))
  f:write(pid, "\n")
  f:close()
  assert(os.rename(pass .. ".tmp", pass))
  local app, err = h:wait()
  lu.assertNil(app, "a process the launcher forked itself was taken for the app")
  lu.assertEquals(err.code, "bad_pid", tostring(err))
  lu.assertStrContains(err.message, "the pid file named pid " .. pid .. ": not a process it started")
  -- never signalled, and never reaped behind io.popen's back: its status
  -- is the launcher's own to collect
  lu.assertTrue(S.alive(pid))
  os.execute("kill -9 " .. pid)
  lu.assertEquals({ p:close() }, { nil, "signal", 9 })
  S.assert_clean(before)
end

-- The same through the launcher's child in a session of its own
-- (setsid), as an adopted orphan is: made before the start began, it is
-- no orphan of the start's (what a start adopts began after it), nor is
-- what it forks after. (One made while the start is under way cannot be
-- told from one: README, Pid truth.)
function T.test_a_pid_file_naming_what_a_setsid_child_the_launcher_made_before_the_start_forked_is_bad_pid()
  local before = S.snapshot()
  local pass, pid_file, go, own = S.tmpname("pass"), S.tmpname("pidfile"), S.tmpname("go"), S.tmpname("own")
  local mine = S.tmpname("mine")
  local p = io.popen("exec setsid " .. F .. " pidfile=" .. mine .. " waitfile=" .. go .. " fork pidfile=" .. own
    .. " pause '|' pause")
  -- (start times count clock ticks, 100 a second: the start comes a tick
  -- after the launcher's child at least, as a start's orphans come after it)
  local fields = {}
  for w in assert(S.read("/proc/" .. S.pid_in(mine) .. "/stat")):match("%) (.*)"):gmatch("%S+") do
    fields[#fields + 1] = w
  end
  local born = tonumber(fields[20]) -- (starttime: the line's 22nd field)
  lu.assertTrue(S.await_with_sleep(function()
    return math.floor(tonumber(S.read("/proc/uptime"):match("^[%d.]+")) * 100) > born + 1
  end, 3))
  local h = require("appstart").begin { ready = { forks = true, pid_file = pid_file }, ready_timeout = 5,
    log = S.quiet, argv = { "/bin/sh", "-c", 'while [ ! -s "$0" ]; do sleep 0.01; done; cat "$0" > "$1"; exit 0',
      pass, pid_file } }
  -- the launcher's child forks now: younger than the start, a grandchild
  -- of the launcher's through a process of a session of its own
  local f = assert(io.open(go, "w"))
  f:close()
  local pid = S.pid_in(own)
  local parent, sid = assert(S.read("/proc/" .. pid .. "/stat")):match("%) %S+ (%d+) %d+ (%d+)")
  lu.assertEquals(tonumber(sid), tonumber(parent), "its parent leads a session of its own")
  f = assert(io.open(pass .. ".tmp", "w"))
  f:write(pid, "\n")
  f:close()
  assert(os.rename(pass .. ".tmp", pass))
  local app, err = h:wait()
  lu.assertNil(app, "what the launcher's own child forked was taken for the app")
  lu.assertEquals(err.code, "bad_pid", tostring(err))
  lu.assertStrContains(err.message, "the pid file named pid " .. pid .. ": not a process it started")
  lu.assertTrue(S.alive(pid), "a process never proven was signalled")
  os.execute("kill -9 " .. pid .. " " .. parent)
  lu.assertEquals({ p:close() }, { nil, "signal", 9 })
  S.assert_clean(before)
end

function T.test_in_a_group_what_the_started_process_forked_is_ended_with_a_failed_start()
  local child = S.tmpname("child")
  for _, case in ipairs { { "1", "bad_pid" }, { nil, "timeout" } } do
    local pid_file = S.tmpname("pidfile")
    -- a pid file naming init, or none: the daemon it forked is never proven
    local script = '"$0" pause & echo $! > "$1"; ' .. (case[1] and ('echo 1 > "$2"; ') or "") .. "exit 0"
    local err = fail_within({ ready = { forks = true, pid_file = pid_file }, kill_mode = "group", ready_timeout = 1,
      kill_grace = 1, argv = { "/bin/sh", "-c", script, F, child, pid_file } }, case[2], 5)
    lu.assertFalse(S.alive(S.pid_in(child)), case[2] .. ": the started process's group was left running")
    -- the stop says what it found of the group (it said nothing: no
    -- daemon, no how)
    lu.assertEquals(err.status, { left = 1 }, case[2])
    os.remove(child)
  end
end

function T.test_in_a_cgroup_a_failed_start_leaves_no_zombie_to_a_later_call()
  local dir = S.own_cgroup_dir()
  if not dir or not os.execute("test -w " .. dir .. " 2>/dev/null") then
    lu.skip("cgroup v2 is not writable here")
  end
  local before = S.snapshot()
  local child, pid_file = S.tmpname("child"), S.tmpname("pidfile")
  local _, err = start { ready = { forks = true, pid_file = pid_file }, kill_mode = "cgroup", kill_grace = 1,
    argv = { "/bin/sh", "-c", '"$0" pause & echo $! > "$1"; echo 1 > "$2"; exit 0', F, child, pid_file } }
  lu.assertEquals(err and err.code, "bad_pid", tostring(err))
  -- looked at before anything else reaps: the daemon it killed is reaped
  lu.assertEquals(S.children(), {}, "a zombie was left for a later call to reap")
  lu.assertFalse(S.alive(S.pid_in(child)))
  S.assert_clean(before)
end

-- Looked for as a probe looks: the first looks come soon after the started
-- process has exited (each wait as long as it has been looked for so far),
-- not a whole poll_interval later.
function T.test_a_pid_file_is_looked_for_soon_once_the_started_process_has_exited()
  local before = S.snapshot()
  local appstart = require "appstart"
  local marker, pid_file = S.tmpname("started"), S.tmpname("never")
  local t0 = core.now()
  local h = appstart.begin { ready = { forks = true, pid_file = pid_file }, ready_timeout = 5, log = S.quiet,
    argv = { F, "pidfile=" .. marker, "exit=0" } }
  lu.assertTrue(S.await_gone(S.pid_in(marker), 3))
  lu.assertFalse(h:step())
  lu.assertFalse(h:step())
  local took = core.now() - t0
  -- (a launcher slower than poll_interval, as under valgrind, waits that)
  lu.assertTrue(h:timeout() <= math.max(0.002, took), string.format("the next look is %.4f s away after %.4f s",
    h:timeout(), took))
  h:cancel()
  S.assert_clean(before)
end

-- The same for a process that takes a while to exit: the looks start
-- soon after its exit, not at poll_interval (they were timed from the
-- start's beginning, so were a whole poll_interval apart at once).
function T.test_a_pid_file_is_looked_for_soon_after_a_slow_started_process_has_exited()
  local before = S.snapshot()
  local appstart = require "appstart"
  local marker, pid_file = S.tmpname("started"), S.tmpname("never")
  local h = appstart.begin { ready = { forks = true, pid_file = pid_file }, ready_timeout = 5, log = S.quiet,
    argv = { F, "pidfile=" .. marker, "sleep=0.3", "exit=0" } }
  lu.assertTrue(S.await_gone(S.pid_in(marker), 3))
  local t1 = core.now()
  lu.assertFalse(h:step())
  lu.assertFalse(h:step())
  local took = core.now() - t1
  lu.assertTrue(h:timeout() <= math.max(0.002, took), string.format("the next look is %.4f s away after %.4f s",
    h:timeout(), took))
  h:cancel()
  S.assert_clean(before)
end

function T.test_a_pid_file_an_earlier_run_left_is_waited_past_for_the_new_one()
  local before = S.snapshot()
  local path = S.tmpname("pid")
  -- what a crash left: a pid that names nothing now (or init), an hour
  -- old, or dated an hour ahead (the clock stepped back since: it was
  -- taken for the new one, and the start failed bad_pid)
  for _, old in ipairs { { "4000000", "1 hour ago" }, { "1", "1 hour ago" }, { "4000000", "1 hour" } } do
    local f = assert(io.open(path, "w"))
    f:write(old[1], "\n")
    f:close()
    assert(os.execute("touch -d '" .. old[2] .. "' " .. path))
    -- the daemon writes its pid after its parent has exited, as nginx does
    local app, err = start { ready = { forks = true, pid_file = path }, ready_timeout = 5,
      argv = { F, "fork", "setsid", "sleep=0.1", "pidfile=" .. path, "pause", "|", "exit=0" } }
    lu.assertNotNil(app, tostring(err))
    lu.assertEquals(app.pid, S.pid_in(path))
    app:terminate()
  end
  S.assert_clean(before)
end

-- Many daemons write their pid with no newline after it (a Go program's
-- os.WriteFile of strconv.Itoa(pid)): taken once a later look finds the
-- same digits and the same file time (they may be a line being written).
-- They waited until ready_timeout, "no pid came".
function T.test_a_pid_with_no_newline_after_it_is_taken()
  local before = S.snapshot()
  local path = S.tmpname("bare")
  local t0 = core.now()
  local app, err = start { ready = { forks = true, pid_file = path }, ready_timeout = 5,
    argv = { "/bin/sh", "-c", '"$0" pause >/dev/null 2>&1 & printf %s $! > "$1"', F, path } }
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(core.now() - t0 < 2, "ready after " .. (core.now() - t0) .. " s")
  lu.assertEquals(S.read(path), tostring(app.pid))
  -- (sh's child may not have made its exec yet: the same process)
  lu.assertTrue(S.await_with_sleep(function()
    local st = S.proc_status(app.pid)
    return st ~= nil and st.Name == "fixture"
  end, 3), "the daemon is the process the file names")
  app:terminate()
  -- a file made empty first, written a moment later (with or without a
  -- newline): waited for, not refused
  for _, format in ipairs { "%s", "%s\\n" } do
    app, err = start { ready = { forks = true, pid_file = path }, ready_timeout = 5,
      argv = { "/bin/sh", "-c", '(: > "$1"; "$0" pause >/dev/null 2>&1 & sleep 0.3; printf "' .. format
        .. '" $! > "$1") & sleep 0.1', F, path } }
    lu.assertNotNil(app, tostring(err))
    lu.assertEquals(S.proc_status(app.pid).Name, "fixture")
    app:terminate()
  end
  S.assert_clean(before)
end

-- (nor a NUL byte inside the line, where the reading of its digits stopped:
-- "1\0junk" was pid 1)
function T.test_a_pid_file_with_a_sign_or_a_blank_before_its_digits_is_bad_pid()
  local path = S.tmpname("pid")
  for _, text in ipairs { "+1", " 1", "1\0junk" } do
    local err = fail_within({ ready = { forks = true, pid_file = path }, ready_timeout = 5,
      argv = { F, pid_file_to_come(path, text .. "\n") } }, "bad_pid", 5)
    lu.assertStrContains(err.message, "not a regular file holding a pid and a newline")
  end
end

-- A pid file is checked as a stdio file is: a hard link (another name of
-- a file someone else chose) and, in a sticky directory others can write
-- (/tmp), another user's file are refused: such a file names whatever pid
-- its owner wants.
function T.test_a_pid_file_that_is_a_hard_link_or_planted_in_tmp_is_bad_pid()
  local path = S.tmpname("linked")
  local touch = table.pack(pid_file_to_come(path, core.pid() .. "\n"))
  assert(os.execute("ln " .. path .. " " .. path .. ".other"))
  local err = fail_within({ ready = { forks = true, pid_file = path }, argv = { F, table.unpack(touch, 1, touch.n) } },
    "bad_pid", 5)
  lu.assertStrContains(err.message, "a hard link (a file with another name too), refused")
  os.remove(path .. ".other")
  if S.is_root() then
    local planted = os.tmpname()
    touch = table.pack(pid_file_to_come(planted, core.pid() .. "\n"))
    assert(os.execute("chown nobody " .. planted))
    err = fail_within({ ready = { forks = true, pid_file = planted }, argv = { F, table.unpack(touch, 1, touch.n) } },
      "bad_pid", 5)
    os.remove(planted)
    lu.assertStrContains(err.message, "another user's file in a sticky directory others can write (as /tmp), refused")
  end
end

-- A pid named must be a live process: a daemon that wrote its pid file
-- and ended (exit 7) before the launcher looked was taken as ready, its
-- end seen only after. It died before it was ready; its status is said.
function T.test_a_daemon_that_ended_before_its_pid_was_read_is_died()
  local path = S.tmpname("pid")
  local err = fail_within({ ready = { forks = true, pid_file = path },
    argv = { F, "fork", "pidfile=" .. path, "exit=7", "|", "sleep=0.3", "exit=0" } }, "died", 5)
  lu.assertStrContains(err.message, "exited with code 7 before it was ready")
  lu.assertEquals(err.status, { code = 7 })
end

-- A thread's id in the pid file names no process: refused, with pidfds
-- and without (kill(tid, 0) answers for a thread: it was taken, and the
-- stop of that "app" ended at once, the daemon left running).
function T.test_a_thread_id_in_the_pid_file_is_bad_pid()
  for _, pidfd in ipairs { true, false } do
    if pidfd or S.testing.has_pidfd() then
      local path, real = S.tmpname("tid"), S.tmpname("pid")
      local was = S.testing.use_pidfd()
      S.testing.use_pidfd(pidfd)
      local ok, err = pcall(fail_within, { ready = { forks = true, pid_file = path }, kill_mode = "group",
        argv = { F, "fork", "pidfile=" .. real, "thread=" .. path, "pause", "|", "waitfile=" .. path, "exit=0" } },
        "bad_pid", 5, function()
          local daemon = S.pid_in(real)
          if daemon then os.execute("kill -9 " .. daemon) S.await_gone(daemon) end
        end)
      S.testing.use_pidfd(was)
      assert(ok, err)
      lu.assertStrContains(err.message, "a thread's id, not a process", "pidfd " .. tostring(pidfd))
    end
  end
end

-- While a daemon's start is under way the launcher adopts orphans: one
-- that another app (kill_mode "group", a session of its own) left then is
-- no descendant of this start's, though it came the same way. Named in
-- the pid file, it was taken: the stop of that "daemon" then ended the
-- other app's process.
function T.test_an_orphan_another_app_left_is_not_the_daemon()
  local dir = S.tmpname("orphan")
  assert(os.execute("mkdir " .. dir))
  local a = assert(start { ready = "none", kill_mode = "group", argv = { F, "fork", "waitfile=" .. dir .. "/go",
    "fork", "ignore=TERM", "pidfile=" .. dir .. "/g.pid", "pause", "|", "exit=0", "|", "pause" } })
  -- the daemon's started process: the other app orphans G now; once G
  -- has come to the launcher, its pid goes in the pid file
  local script = ("touch %s/go; while [ ! -s %s/g.pid ]; do sleep 0.01; done; g=$(cat %s/g.pid)\n"
    .. "while [ \"$(cut -d' ' -f4 /proc/$g/stat)\" != %d ]; do sleep 0.01; done\n"
    .. "cat %s/g.pid > %s/b.pid; exit 0"):format(dir, dir, dir, core.pid(), dir, dir)
  local b, err = start { ready = { forks = true, pid_file = dir .. "/b.pid" }, ready_timeout = 5, kill_mode = "group",
    argv = { "/bin/sh", "-c", script } }
  if b then b:terminate() end
  local how = a:terminate()
  lu.assertNil(b, "the other app's orphan was taken for the daemon")
  lu.assertEquals(err.code, "bad_pid")
  lu.assertStrContains(err.message, "not a process it started")
  lu.assertEquals(how.signal, 15, "the other app ran until its own stop")
end

-- The same where both take kill_mode "cgroup" and the other app's orphan
-- leads a session of its own: its descent proves nothing the kernel does
-- not show, but its cgroup does: what the started process forks is in the
-- start's cgroup, and the orphan is in the other app's. Named in the pid
-- file, it was taken: the stop of that "daemon" ended the other app's
-- process.
function T.test_in_a_cgroup_an_orphan_another_app_left_is_not_the_daemon()
  local dir = S.tmpname("orphan")
  assert(os.execute("mkdir " .. dir))
  local a = assert(start { ready = "none", kill_mode = "cgroup", argv = { F, "fork", "waitfile=" .. dir .. "/go",
    "setsid", "fork", "pidfile=" .. dir .. "/g.pid", "pause", "|", "exit=0", "|", "pause" } })
  local script = ("touch %s/go; while [ ! -s %s/g.pid ]; do sleep 0.01; done; g=$(cat %s/g.pid)\n"
    .. "while [ \"$(cut -d' ' -f4 /proc/$g/stat)\" != %d ]; do sleep 0.01; done\n"
    .. "cat %s/g.pid > %s/b.pid; exit 0"):format(dir, dir, dir, core.pid(), dir, dir)
  local b, err = start { ready = { forks = true, pid_file = dir .. "/b.pid" }, ready_timeout = 5, kill_mode = "cgroup",
    argv = { "/bin/sh", "-c", script } }
  local g = S.pid_in(dir .. "/g.pid")
  if b then b:terminate() end
  local g_ran = g and S.alive(g)
  a:terminate()
  lu.assertNil(b, "the other app's orphan was taken for the daemon")
  lu.assertEquals(err.code, "bad_pid")
  lu.assertStrContains(err.message, "not in the start's cgroup")
  lu.assertTrue(g_ran, "the other app's orphan ran until its own stop")
  lu.assertTrue(S.await_gone(g, 5))
end

-- The same for an app started through a helper (argv itself forks and
-- reports the pid), whose session is its helper's: the helper reaped and
-- that app ended, its orphan G, in the helper's session still, came to
-- the launcher during the daemon's start and was taken for the daemon (no
-- child of the launcher's led that session any more).
function T.test_an_orphan_of_an_app_whose_helper_is_gone_is_not_the_daemon()
  local before = S.snapshot()
  local dir = S.tmpname("orphan")
  assert(os.execute("mkdir " .. dir))
  local a = assert(start { ready = "none", helper = true, argv = { F, "fork", "waitfile=" .. dir .. "/go",
    "fork", "pidfile=" .. dir .. "/g.pid", "pause", "|", "waitfile=" .. dir .. "/die", "exit=0", "|",
    "int32=3:child", "exit=0" } })
  local script = ("touch %s/go; while [ ! -s %s/g.pid ]; do sleep 0.01; done; g=$(cat %s/g.pid); touch %s/die\n"
    .. "while [ \"$(cut -d' ' -f4 /proc/$g/stat)\" != %d ]; do sleep 0.01; done\n"
    .. "cat %s/g.pid > %s/b.pid; exit 0"):format(dir, dir, dir, dir, core.pid(), dir, dir)
  local b, err = start { ready = { forks = true, pid_file = dir .. "/b.pid" }, ready_timeout = 5,
    argv = { "/bin/sh", "-c", script } }
  local g = S.pid_in(dir .. "/g.pid")
  local g_ran = S.alive(g)
  if b then b:terminate() end
  lu.assertEquals(a:wait(5), { code = 0 })
  lu.assertNil(b, "the other app's orphan was taken for the daemon")
  lu.assertEquals(err.code, "bad_pid")
  lu.assertStrContains(err.message, "not a process it started")
  lu.assertTrue(g_ran and S.alive(g), "the other app's orphan ran on")
  os.execute("kill -9 " .. g)
  lu.assertTrue(S.await_gone(g, 5))
  a:close()
  S.reap_children()
  S.assert_clean(before)
end

-- An orphan of another app's, in that app's session (gone, its group
-- too) but in a group of its own (setpgid), adopted during a forking
-- daemon's start and named in its pid file: not the daemon. The sessions
-- remembered were let go of as soon as their pid and group were gone,
-- at the next start that leads one (then the orphan was taken).
function T.test_an_orphan_in_a_group_of_its_own_in_a_gone_apps_session_is_not_the_daemon()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir = S.tmpname("setpgid")
  assert(os.execute("mkdir " .. dir))
  local pid_file = dir .. "/b.pid"
  -- A forks O once go is there: O takes a group of its own, A exits
  local a = assert(start { ready = "none", kill_mode = "group", argv = { F, "waitfile=" .. dir .. "/go", "fork",
    "setpgid", "pidfile=" .. dir .. "/o", "waitfile=" .. dir .. "/gone", "pidfile=" .. pid_file, "pause", "|",
    "waitfile=" .. dir .. "/o", "exit=0" } })
  local h = appstart.begin { ready = { forks = true, pid_file = pid_file }, ready_timeout = 10, log = S.quiet,
    argv = { F, "waitfile=" .. pid_file, "exit=0" } }
  S.touch(dir .. "/go")
  lu.assertEquals(a:wait(5).code, 0)
  local o = S.pid_in(dir .. "/o")
  -- (the sessions remembered are looked at as a start that leads one
  -- begins, A's pid and group gone)
  local c = assert(start { ready = "none", kill_mode = "group", argv = { F, "pause" } })
  S.touch(dir .. "/gone")
  while not h:step() do core.wait_readable(h:pollfd() or -1, math.min(h:timeout() or 0.01, 0.01)) end
  local taken = h.app and h.app.pid
  if h.app then h.app:close() end
  lu.assertFalse(taken, "the other app's orphan was taken for the daemon")
  lu.assertEquals(h.err.code, "bad_pid")
  lu.assertStrContains(h.err.message, "not a process it started")
  lu.assertTrue(S.alive(o), "the orphan ran on")
  os.execute("kill -9 " .. o)
  lu.assertTrue(S.await_gone(o, 5))
  c:terminate()
  S.reap_children()
  S.assert_clean(before)
end

-- What the launcher remembers of the sessions and groups its children
-- led holds no more once such a session has emptied: a forking daemon
-- whose intermediate takes a gone group leader's pid for a session of its
-- own (setsid), forks the daemon in it and exits, is taken (it was
-- refused bad_pid, as an orphan of the gone app's, "not a process it
-- started"). A pid namespace of its own, whose next pid the child sets.
function T.test_a_daemon_whose_session_takes_a_gone_leaders_pid_is_taken()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("gone")
  assert(os.execute("mkdir " .. dir))
  local out = S.run_child({ pidns = true, timeout = 60 }, "forks_a_session_on_a_gone_leaders_pid", dir)
  local leader = out:match("leader (%d+)\n")
  lu.assertNotNil(leader, out)
  lu.assertEquals(out:match("daemon ([^\n]*)\n"), leader .. " ready", out)
end

function T.test_a_started_process_that_exits_non_zero_is_died()
  local err = fail_within({ ready = { forks = true, pid_file = S.tmpname("never") }, argv = { F, "exit=4" } },
    "died", 5)
  lu.assertStrContains(err.message, "exited with code 4 before it was ready (it must exit 0 once it has forked)")
  -- what died is the process started: its status and pid, as for any died
  lu.assertEquals(err.status, { code = 4 })
  lu.assertEquals(tostring(err.status), "exited with code 4")
  lu.assertTrue(math.type(err.pid) == "integer" and err.pid > 1, tostring(err.pid))
end

-- The process started writes the daemon's pid file (its child forked),
-- then exits non-zero: died, with that process's pid and status, and the
-- daemon the file names, proven, is terminated with the start (it was left
-- running, unsignalled, until the stop gave up on it 10 s later and its
-- end became a zombie of the launcher's; and err named the daemon).
function T.test_a_started_process_that_exits_non_zero_after_the_pid_file_ends_the_daemon()
  for _, mode in ipairs { "process", "group" } do
    local path = S.tmpname("pid")
    local err = fail_within({ ready = { forks = true, pid_file = path }, kill_mode = mode,
      argv = { F, "fork", "pidfile=" .. path, "pause", "|", "waitfile=" .. path, "sleep=0.05", "exit=3" } },
      "died", 1.5, function()
        local daemon = S.pid_in(path)
        lu.assertTrue(S.await_gone(daemon, 5), mode .. ": the daemon runs on")
      end)
    lu.assertStrContains(err.message, "exited with code 3 before it was ready (it must exit 0 once it has forked)")
    -- (in a group, with how.left: the daemon, signalled with the group)
    lu.assertEquals({ err.status.code, err.status.signal }, { 3, nil }, mode)
    lu.assertNotEquals(err.pid, S.pid_in(path), mode .. ": err.pid is the daemon's")
  end
end

function T.test_no_pid_file_within_ready_timeout_is_a_timeout()
  local path = S.tmpname("never")
  local err = fail_within({ ready = { forks = true, pid_file = path }, ready_timeout = 0.3, argv = { F, "exit=0" } },
    "timeout", 5)
  lu.assertStrContains(err.message, "app not ready within 0.3 s: no pid came in " .. path)
  -- one that never exits
  err = fail_within({ ready = { forks = true, pid_file = path }, ready_timeout = 0.3, kill_grace = 0.2,
    argv = { F, "pause" } }, "timeout", 5)
  lu.assertStrContains(err.message, "did not exit (ready.forks: it must fork the daemon and exit 0)")
end

-- The process started, the app's own first process, is terminated as an
-- app is: SIGTERM, then SIGKILL after kill_grace (it had SIGKILL at once,
-- no chance to clean up, as a helper does).
function T.test_a_started_process_that_never_exits_is_terminated_with_the_grace()
  local path, trapped = S.tmpname("never"), S.tmpname("trapped")
  local pidfile = S.tmpname("started")
  local err = fail_within({ ready = { forks = true, pid_file = path }, ready_timeout = 0.3, kill_grace = 0.3,
    argv = { F, "trap=TERM:" .. trapped, "pidfile=" .. pidfile, "pause" } }, "timeout", 5)
  lu.assertStrContains(err.message, "did not exit")
  lu.assertEquals(S.read(trapped), "15\n")
  -- the error says which process and how it ended, as a died start's
  -- does (neither was there)
  lu.assertEquals(err.pid, S.pid_in(pidfile))
  lu.assertEquals(err.status, { signal = 9 })
end

function T.test_in_a_cgroup_a_daemon_whose_pid_never_comes_is_ended_with_the_start()
  local dir = S.own_cgroup_dir()
  if not dir or not os.execute("test -w " .. dir .. " 2>/dev/null") then
    lu.skip("cgroup v2 is not writable here")
  end
  local child = S.tmpname("child")
  -- fail_within checks that nothing is left: the forked child included
  local err = fail_within({ ready = { forks = true, pid_file = S.tmpname("never") }, kill_mode = "cgroup",
    ready_timeout = 0.3, kill_grace = 0.3,
    argv = { F, "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. child, "exit=0" } }, "timeout", 5)
  lu.assertStrContains(err.message, "no pid came in")
  lu.assertFalse(S.alive(S.pid_in(child)))
end

function T.test_a_pid_file_that_holds_no_pid_is_bad_pid()
  local pid_file = S.tmpname("garbage")
  local err = fail_within({ ready = { forks = true, pid_file = pid_file },
    argv = { F, pid_file_to_come(pid_file, "nginx\n") } }, "bad_pid", 5)
  lu.assertStrContains(err.message, "not a regular file holding a pid and a newline")
  -- a symbolic link is not followed
  local link = S.tmpname("link")
  assert(os.execute("ln -s /proc/self/stat " .. link))
  err = fail_within({ ready = { forks = true, pid_file = link }, argv = { F, "exit=0" } }, "bad_pid", 5)
  lu.assertStrContains(err.message, "pid file " .. link)
end

function T.test_forks_mistakes_raise()
  local function raised(opts)
    local ok, err = pcall(require("appstart").start, opts)
    lu.assertFalse(ok)
    return tostring(err)
  end
  lu.assertStrContains(raised { argv = { F }, ready = { forks = true } }, "pid_file: a path expected")
  lu.assertStrContains(raised { argv = { F }, ready = { forks = false, pid_file = "/x" } }, "forks: true expected")
  lu.assertStrContains(raised { argv = { F }, ready = { forks = true, pid_file = "/x", file = "/y" } },
    "'file' cannot go with forks")
  lu.assertStrContains(raised { argv = { F }, ready = { forks = true, pid_file = "/x" }, user = "nobody" },
    "cannot be combined with ready.forks")
  lu.assertStrContains(raised { argv = { F }, ready = { forks = true, pid_file = "/x" }, probe_interval = 1 },
    "'probe_interval': has no effect without a probe")
  lu.assertStrContains(raised { argv = { F }, ready = { forks = true, pid_file = "/tmp/" } },
    "pid_file: names a directory")
end

function T.test_the_command_ready_forks_with_pid_file()
  local dir = S.tmpname("cmd")
  assert(os.execute("mkdir " .. dir))
  local out, pid_file = dir .. "/out", dir .. "/pid"
  local bin = S.spec_dir .. "/../lua/bin/appstart"
  -- the fixture forks a child that writes the pid file and stays
  local cmd = string.format(S.san_prefix .. "lua5.4 %s --json --ready=forks --pid-file=%s -- %s fork pidfile=%s pause '|' "
    .. "waitfile=%s exit=0 >%s 2>&1", bin, pid_file, F, pid_file, pid_file, out)
  lu.assertTrue(os.execute(cmd), S.read(out))
  local pid = tonumber(S.read(out):match('"pid":(%d+)'))
  lu.assertEquals(pid, S.pid_in(pid_file))
  os.execute("kill " .. pid)
  lu.assertTrue(S.await_gone(pid, 3))
end

-- Where /proc is not mounted (an initramfs, a container without it), a
-- daemon's pid cannot be checked: the start fails bad_pid at once, saying
-- so (it said "no such process" of a daemon that ran), and signals
-- nothing; a start with no pid to check is ready as ever; a unix socket
-- probe fails protocol.
function T.test_without_proc_a_pid_to_check_fails_at_once_saying_why()
  lu.skipIf(not S.can_unshare(), "needs unshare(1) and a mount namespace of its own (root)")
  local dir = S.tmpname("noproc")
  assert(os.execute("mkdir " .. dir))
  local out = S.run_child({ own_mounts = true, timeout = 60 }, "forks_without_proc", dir)
  lu.assertStrContains(out, "plain\tready\n")
  lu.assertStrContains(out, "exits\tdied=50\n")
  local closed, after = out:match("closed\t(%S+)\t(%S+)")
  lu.assertEquals(closed, "ready_closed", out)
  lu.assertTrue(tonumber(after) < 5, "at once, not at ready_timeout: " .. after)
  local code, took, message = out:match("forks\t(%S+)\t(%S+)\t([^\n]*)")
  lu.assertEquals(code, "bad_pid", out)
  lu.assertTrue(tonumber(took) < 5, "at once, not at ready_timeout: " .. took)
  lu.assertStrMatches(message, "the pid file named pid %d+: it cannot be checked: /proc is not mounted")
  -- a unix socket probe, which connects through /proc/self/fd: protocol,
  -- at once (it timed out, "No such file or directory")
  code, took, message = out:match("unix\t(%S+)\t(%S+)\t([^\n]*)")
  lu.assertEquals(code, "protocol", out)
  lu.assertTrue(tonumber(took) < 5, "at once, not at ready_timeout: " .. took)
  lu.assertStrContains(message, "probe.sock: /proc is not mounted (a socket is connected to through /proc/self/fd)")
  -- notify_access = "all": a child's READY=1 is refused, and the log
  -- says why (descent is proven through /proc)
  local all, said = out:match("all\t(%S+)\t([^\n]*)")
  lu.assertEquals(all, "timeout", out)
  lu.assertStrMatches(said, '.*ignored a notify datagram from pid %d+ %(notify_access = "all"; /proc is not mounted, '
    .. "so no other process can be proven the app's%).*")
end

-- The started process's start time, the bound of the daemon's, is read
-- right after the spawn; out of descriptors then it was read later, from
-- the started process, which a forking daemon's start has reaped by the
-- time its pid file is read: the start failed bad_pid ("the helper is
-- gone"), the daemon left running unwatched (or, its number taken, read
-- from another process). With the exec's verdict over a pipe, 2 free
-- descriptors leave none for that read (the pipe's end and the pidfd
-- take them). A child Lua at a low descriptor limit, from a script of the
-- spec's own: for each number of free descriptors as the start begins
-- (all free again once it has), "k\tOUTCOME" ("ready\tyes": its app the
-- daemon the pid file names; "CODE\tMESSAGE").
local STARVED_SPAWN_CHILD = [==[
local appstart = require "appstart"
local K = require "childkit"
local testing = require "appstart.testing"
local dir, F = arg[1], K.fixture()
testing.exec_report("pipe")
for k = 0, 8 do
  collectgarbage()
  local pf = dir .. "/d" .. k .. ".pid"
  local fillers = K.take_all_descriptors()
  for _ = 1, k do table.remove(fillers):close() end
  local ok, h = pcall(appstart.begin, { argv = { F, "fork", "setsid", "pidfile=" .. pf, "pause", "|" },
    ready = { forks = true, pid_file = pf }, ready_timeout = 5, kill_grace = 1, log = K.quiet })
  for _, f in ipairs(fillers) do f:close() end
  if not ok then
    print(k, "raised", tostring(h))
  else
    local app, err = h:wait()
    local daemon = tonumber(K.read(pf) or "")
    if app then
      print(k, "ready", app.pid == daemon and "yes" or "no")
      app:terminate()
    else
      print(k, err.code, (err.message:gsub("\n", " ")))
      if daemon then os.execute("kill -KILL " .. daemon .. " 2>/dev/null") end
    end
  end
  testing.reap()
end
]==]

function T.test_a_daemon_is_proven_when_the_start_time_of_the_process_started_could_not_be_read()
  local dir = S.tmpname("starved")
  assert(os.execute("mkdir " .. dir))
  local script = dir .. "/child.lua"
  write(script, STARVED_SPAWN_CHILD)
  local out = S.run_child({ nofile = 64, timeout = 60 }, script, dir)
  local rows = 0
  for k, outcome, rest in out:gmatch("(%d+)\t(%S+)\t([^\n]*)\n") do
    rows = rows + 1
    if outcome == "ready" then
      lu.assertEquals(rest, "yes", k .. " free: the app is not the daemon\n" .. out)
    else
      lu.assertEquals(outcome, "spawn", k .. " free: " .. rest .. "\n" .. out)
    end
  end
  lu.assertEquals(rows, 9, out)
  lu.assertStrContains(out, "8\tready\tyes\n")
end

return { TestForks = T }
