--- Real daemons from Debian, started unchanged through appstart.start, then
-- stopped, nothing left behind.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
end

local function quiet() end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_redis_server_with_supervised_systemd()
  lu.assertTrue(have("redis-server"), "redis-server is installed by .ci/deps")
  local before = S.snapshot()
  local sock = S.tmpname("redis.sock")
  local statuses = {}
  local app, err = appstart.start {
    -- --port 0 alone makes redis 7 exit ("not listen anywhere"): a socket
    argv = { "redis-server", "--port", "0", "--unixsocket", sock, "--supervised", "systemd",
      "--save", "", "--appendonly", "no", "--dir", S.tmpdir },
    ready = "notify", ready_timeout = 10, stdout = "null",
    on_status = function(_, text) statuses[#statuses + 1] = text end,
    log = quiet,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.status, "Ready to accept connections")
  lu.assertEquals(statuses[#statuses], app.status)
  -- it answers, so ready meant ready
  local p = io.popen("redis-cli -s " .. sock .. " ping 2>&1")
  local answer = p:read("a")
  p:close()
  lu.assertEquals(answer, "PONG\n")
  lu.assertEquals(app:terminate(5), { code = 0 }, "redis shuts down cleanly on SIGTERM")
  S.assert_clean(before)
end

-- The README's example of the app's output, run as it is written (its
-- socket path made the suite's own): it prints what its comments say, and
-- leaves nothing running.
function T.test_the_readmes_output_example_prints_what_it_says()
  lu.assertTrue(have("redis-server"), "redis-server is installed by .ci/deps")
  local before = S.snapshot()
  local readme = assert(S.read(S.spec_dir .. "/../README.md"))
  local code = assert(readme:match("\n### The app's output\n.-```lua\n(.-)```"), "the example")
  local sock = S.tmpname("redis.sock")
  local n
  code, n = code:gsub("/tmp/r%.sock", sock)
  lu.assertEquals(n, 1)
  local file = S.tmpname("example") .. ".lua"
  local f = assert(io.open(file, "w"))
  f:write('local appstart = require "appstart"\n', code)
  f:close()
  -- (under make sanitize the instrumented module needs the sanitizers'
  -- runtime, which appstart keeps out of what it starts: given back here)
  local app = assert(appstart.start { argv = { "sh", "-c", S.san_prefix .. 'exec lua5.4 "$0"', file },
    ready = "none", stdout = "capture", cwd = S.tmpdir, log = quiet })
  lu.assertEquals(app:wait(20), { code = 0 })
  local out = app:tail(3)
  lu.assertEquals(#out, 3, table.concat(out, "\n"))
  lu.assertStrContains(out[2], "Redis is now ready to exit, bye bye...")
  lu.assertStrMatches(out[3], "%d+ lines seen")
  lu.assertTrue(tonumber(out[3]:match("%d+")) >= 2)
  S.assert_clean(before)
end

function T.test_dbus_daemon_forks_and_reports_pid_and_address()
  lu.assertTrue(have("dbus-daemon"))
  local before = S.snapshot()
  local spawned
  local app, err = appstart.start {
    argv = { "dbus-daemon", "--session", "--fork", "--nopidfile", "--print-pid=3", "--print-address=4" },
    helper = true, pid_fd = 3, pid_format = "line", ready = "fd", ready_fd = 4,
    log = function(_, message) spawned = spawned or tonumber(message:match("spawned pid (%d+)")) end,
  }
  lu.assertNotNil(app, tostring(err))
  -- the pid is the forked daemon's, not the process appstart spawned;
  -- once that process exited, the launcher (a child subreaper while a
  -- helper start is under way) adopted the daemon
  local st = S.proc_status(app.pid)
  lu.assertEquals(st.Name, "dbus-daemon")
  lu.assertNotNil(spawned)
  lu.assertNotEquals(app.pid, spawned)
  lu.assertEquals(st.PPid, S.proc_status("self").Pid)
  lu.assertStrMatches(app.name, "unix:.*guid=%x+")
  local p = io.popen("dbus-send --bus='" .. app.name .. "' --print-reply --dest=org.freedesktop.DBus " ..
    "/org/freedesktop/DBus org.freedesktop.DBus.GetId 2>&1")
  local reply = p:read("a")
  p:close()
  lu.assertStrContains(reply, "method return")
  lu.assertEquals(app:terminate(2), { code = 0 }, "adopted: its exit status is the launcher's")
  lu.assertFalse(S.alive(app.pid))
  S.assert_clean(before)
end

function T.test_systemd_notify_from_the_apps_own_script_is_admitted_under_main()
  lu.assertTrue(have("systemd-notify"))
  local before = S.snapshot()
  -- systemd-notify sends with its parent's pid as the sender (root may
  -- choose the pid it claims): run from the app's script, that is the app
  local app, err = appstart.start {
    argv = { "/bin/sh", "-c", "systemd-notify --no-block --ready --status=up && exec sleep 600" },
    notify_access = "main", ready_timeout = 5, log = quiet }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.status, "up")
  lu.assertEquals(app:terminate(2), { signal = 15 })
  S.assert_clean(before)
end

function T.test_systemd_notify_as_the_app_claims_the_launcher_and_is_refused_under_every_mode()
  for _, access in ipairs { "main", "exec", "all" } do
    local before = S.snapshot()
    local logged, log = S.recorder()
    -- as the app itself, its parent (the pid it claims) is the launcher:
    -- no descendant of the app, never admitted
    local app, err = appstart.start { argv = { "systemd-notify", "--no-block", "--ready" },
      notify_access = access, ready_timeout = 5, log = log }
    lu.assertNil(app, access)
    -- it exits after sending; its message was never acted on
    lu.assertEquals(err.code, "died", access)
    lu.assertStrContains(table.concat(logged, "\n"), "ignored a notify datagram", access)
    S.assert_clean(before)
  end
end

function T.test_helper_runs_the_app_as_nobody()
  if S.proc_status("self").Uid:match("^(%d+)") ~= "0" then
    lu.skip("needs root")
  end
  local before = S.snapshot()
  local status = S.tmpname("status")
  os.execute("chmod 777 " .. S.tmpdir)
  local app, err = appstart.start {
    argv = { S.fixture, "status=" .. status, "line=4:as-nobody", "pause" },
    user = "nobody", ready = "fd", ready_fd = 4, log = quiet,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "as-nobody")
  local st = S.proc_status(app.pid)
  lu.assertStrMatches(st.Uid, "65534%s+65534%s+65534%s+65534")
  lu.assertStrMatches(st.Gid, "65534%s+65534%s+65534%s+65534")
  lu.assertEquals(st.Groups:match("^%s*(.-)%s*$"), "65534")
  -- its helper exited: the app is the launcher's child, its status known
  lu.assertEquals(app:terminate(1), { signal = 15 })
  S.assert_clean(before)
end

function T.test_helper_as_nobody_with_notify_reaches_the_private_socket()
  if S.proc_status("self").Uid:match("^(%d+)") ~= "0" then
    lu.skip("needs root")
  end
  local before = S.snapshot()
  local app, err = appstart.start {
    argv = { S.fixture, "notify=STATUS=dropped\\nREADY=1", "pause" },
    user = "nobody", log = quiet, ready_timeout = 5,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.status, "dropped")
  lu.assertStrMatches(S.proc_status(app.pid).Uid, "65534.*")
  app:terminate(1)
  S.assert_clean(before)
end

return { TestDaemons = T }
