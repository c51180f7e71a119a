--- appstart-helper on its own, and what it and the notify socket refuse.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F, H = S.fixture, S.helper

local function is_root()
  return S.proc_status("self").Uid:match("^(%d+)") == "0"
end

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

local T = {}

function T.tearDown() S.kill_strays() end

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

function T.test_setsid_and_chdir()
  local status, cwd = S.tmpname("status"), S.tmpname("cwd")
  local code, rec = run_helper { "--setsid", "--chdir", "/tmp", "--", F, "status=" .. status,
    "cwd=" .. cwd, "pause" }
  lu.assertEquals(code, 0)
  local pid = le32(rec)
  S.await_file(status)
  lu.assertEquals(S.read(cwd), "/tmp\n")
  local stat = S.read("/proc/" .. pid .. "/stat")
  local sid = stat:match("%) %S+ %d+ %d+ (%d+)")
  lu.assertEquals(tonumber(sid), pid, "the app leads a session of its own")
  os.execute("kill -9 " .. pid)
end

function T.test_a_drop_it_cannot_make_runs_nothing()
  lu.skipIf(not is_root(), "needs root")
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

function T.test_a_drop_that_does_not_stick_runs_nothing()
  lu.skipIf(not is_root(), "needs root")
  -- setuid/setgid that lie (an LD_PRELOAD shim): the helper must check that
  -- root cannot be regained, find that it can, and refuse
  local marker = S.tmpname("ran")
  -- (under make sanitize the helper is instrumented: the ASan runtime first)
  local san = os.getenv("APPSTART_SAN_PRELOAD")
  local preload = (san and san .. " " or "") .. S.fixtures .. "/fakesetuid.so"
  local code, rec, err = run_helper({ "--user", "nobody", "--", F, "pidfile=" .. marker },
    "env LD_PRELOAD=" .. sh_quote(preload) .. " ")
  lu.assertEquals(code, 1, err)
  lu.assertEquals(rec, "")
  lu.assertStrContains(err, "refusing")
  lu.assertNil(S.read(marker), "the program must not have run as root")
end

function T.test_another_user_cannot_reach_the_notify_socket()
  lu.skipIf(not is_root(), "needs root")
  local sockfile, release = S.tmpname("sock"), S.tmpname("release")
  os.execute("chmod 777 " .. S.tmpdir)
  local before = S.snapshot()
  local h = appstart.begin {
    argv = { "/bin/sh", "-c", 'echo "$NOTIFY_SOCKET" > ' .. sockfile ..
      '; while [ ! -e ' .. release .. ' ]; do sleep 0.01; done; exec "$0" notify=READY=1 pause', F },
    notify_access = "all", ready_timeout = 10,
  }
  local path = S.await_file(sockfile):match("[^\n]+")
  -- nobody, told the path, tries to say READY=1 itself
  local errout = S.tmpname("nobody-err")
  local _, _, code = os.execute("NOTIFY_SOCKET=" .. sh_quote(path) .. " " .. sh_quote(H) .. " --user nobody -- " .. F ..
    " notify=READY=1 3>/dev/null 2>" .. errout)
  lu.assertEquals(code, 0) -- the helper ran it; the fixture's own verdict follows
  local deadline = S.core.now() + 5
  while not S.read(errout):find("fixture") and S.core.now() < deadline do
    S.core.wait_readable(-1, 0.01)
  end
  lu.assertStrContains(S.read(errout), "Permission denied")
  lu.assertFalse(h:step(), "nobody's message did not make the app ready")
  io.open(release, "w"):close()
  local app, err = h:wait()
  lu.assertNotNil(app, tostring(err))
  app:terminate(1)
  S.assert_clean(before)
end

return { TestHelper = T }
