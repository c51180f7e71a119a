--- The descriptor layout seen from inside the child: exactly 0, 1, 2 and the
-- channels it is meant to inherit, at the numbers asked for, and nothing the
-- launcher happens to hold.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local F = S.fixture

--- appstart.start with short timeouts and a silent logger.
local start = S.starter { ready_timeout = 3, pid_timeout = 3, kill_grace = 0.2 }

--- The fd list a fixture wrote with fds=PATH, as numbers.
local function fds_in(path)
  local list = {}
  for _, l in ipairs(S.lines(S.await_file(path, 3))) do list[#list + 1] = tonumber(l) end
  return list
end

--- Start opts (the app writes fds=out before anything else), check the
-- start, return the list, terminate the app and check nothing is left.
local function layout_of(opts, out)
  local before = S.snapshot()
  local app, err = start(opts)
  lu.assertNotNil(app, tostring(err))
  local list = fds_in(out)
  app:terminate()
  S.assert_clean(before)
  return list, app
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_ready_fd_app_sees_0_1_2_and_3()
  local out = S.tmpname("fds")
  local list, app = layout_of({ argv = { F, "fds=" .. out, "line=3:x", "pause" }, ready = "fd" }, out)
  lu.assertEquals(list, { 0, 1, 2, 3 })
  lu.assertEquals(app.name, "x")
end

function T.test_ready_none_app_sees_only_0_1_2()
  local out = S.tmpname("fds")
  local list = layout_of({ argv = { F, "fds=" .. out, "pause" }, ready = "none" }, out)
  lu.assertEquals(list, { 0, 1, 2 })
end

for fd, name in pairs { [7] = "seven", [9] = "nine" } do
  T["test_chosen_ready_fd_" .. fd] = function()
    local out = S.tmpname("fds")
    local list, app = layout_of({ argv = { F, "fds=" .. out, "line=" .. fd .. ":" .. name, "pause" }, ready = "fd",
      ready_fd = fd }, out)
    lu.assertEquals(list, { 0, 1, 2, fd })
    lu.assertEquals(app.name, name, "the line arrived through fd " .. fd)
  end
end

function T.test_stdio_null_and_files_keep_0_1_2_and_nothing_else()
  local out = S.tmpname("fds")
  local list = layout_of({ argv = { F, "fds=" .. out, "line=3:x", "pause" }, ready = "fd",
    stdin = "null", stdout = S.tmpname("out"), stderr = "null" }, out)
  lu.assertEquals(list, { 0, 1, 2, 3 })
end

function T.test_fake_helper_sees_0_1_2_pid_fd_3_and_ready_fd_4()
  local out = S.tmpname("fds")
  local list, app = layout_of({
    helper = { F, "fds=" .. out, "fork", "line=4:behind", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd",
  }, out)
  lu.assertEquals(list, { 0, 1, 2, 3, 4 })
  lu.assertEquals(app.name, "behind")
end

function T.test_fake_helper_with_ready_none_sees_only_the_pid_fd()
  local out = S.tmpname("fds")
  local list = layout_of({
    helper = { F, "fds=" .. out, "fork", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "none",
  }, out)
  lu.assertEquals(list, { 0, 1, 2, 3 })
end

function T.test_custom_pid_fd_5_leaves_ready_fd_at_3()
  local out = S.tmpname("fds")
  local list, app = layout_of({
    helper = { F, "fds=" .. out, "fork", "line=3:low", "pause", "|", "int32=5:child", "exit=0" },
    argv = { "pause" }, ready = "fd", pid_fd = 5,
  }, out)
  lu.assertEquals(list, { 0, 1, 2, 3, 5 })
  lu.assertEquals(app.name, "low")
end

function T.test_custom_pid_fd_5_and_ready_fd_9()
  local out = S.tmpname("fds")
  local pidfile = S.tmpname("pid")
  local before = S.snapshot()
  local app, err = start {
    helper = { F, "fds=" .. out, "fork", "pidfile=" .. pidfile, "line=9:high", "pause", "|",
      "int32=5:child", "exit=0" },
    argv = { "pause" }, ready = "fd", pid_fd = 5, ready_fd = 9,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(fds_in(out), { 0, 1, 2, 5, 9 })
  lu.assertEquals(app.name, "high")
  lu.assertEquals(app.pid, tonumber(S.await_file(pidfile):match("%d+")), "pid read from fd 5")
  app:terminate()
  S.assert_clean(before)
end

function T.test_the_app_behind_a_helper_inherits_the_helpers_layout()
  -- the fork child lists its own descriptors: the helper gave it both ends
  local out = S.tmpname("fds")
  local list = layout_of({
    helper = { F, "fork", "fds=" .. out, "line=4:x", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd",
  }, out)
  lu.assertEquals(list, { 0, 1, 2, 3, 4 })
end

--- layout_of(opts, out) while the launcher holds `n` more files, opened
-- with io.open: Lua's io.open (fopen without "e") does not set
-- close-on-exec, so these would leak into any child that is not laid out on
-- purpose. The files are closed again whatever happens.
local function layout_holding(n, opts, out)
  local held_before = #S.testing.fds()
  local files = {}
  for i = 1, n do files[i] = assert(io.open(S.fixture, "r")) end
  local r = table.pack(pcall(function()
    lu.assertEquals(#S.testing.fds(), held_before + n, "the files are open in the launcher")
    return layout_of(opts, out)
  end))
  for _, f in ipairs(files) do f:close() end
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function T.test_launcher_descriptors_without_cloexec_do_not_leak_into_the_app()
  local out = S.tmpname("fds")
  local list = layout_holding(6, { argv = { F, "fds=" .. out, "line=3:x", "pause" }, ready = "fd" }, out)
  lu.assertEquals(list, { 0, 1, 2, 3 })
end

function T.test_launcher_descriptors_at_the_chosen_ready_fd_do_not_take_its_place()
  -- with fds 3..10 (or more) held by the launcher, fd 7 in the child must
  -- still be the ready channel, not the launcher's file
  local out = S.tmpname("fds")
  local list, app = layout_holding(8,
    { argv = { F, "fds=" .. out, "line=7:seven", "pause" }, ready = "fd", ready_fd = 7 }, out)
  lu.assertEquals(list, { 0, 1, 2, 7 })
  lu.assertEquals(app.name, "seven")
end

function T.test_launcher_descriptors_without_cloexec_do_not_leak_into_a_helper()
  local out = S.tmpname("fds")
  local list = layout_holding(6, {
    helper = { F, "fds=" .. out, "fork", "line=4:x", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd",
  }, out)
  lu.assertEquals(list, { 0, 1, 2, 3, 4 })
end

function T.test_inside_a_loop_the_pollers_descriptor_does_not_leak()
  local before = S.snapshot()
  local out = S.tmpname("fds")
  local list
  appstart.run(function()
    -- a sleep first, so the loop's poller is open during the start
    appstart.sleep(0.001)
    local app, err = start { argv = { F, "fds=" .. out, "line=3:x", "pause" }, ready = "fd" }
    lu.assertNotNil(app, tostring(err))
    list = fds_in(out)
    app:terminate()
  end)
  lu.assertEquals(list, { 0, 1, 2, 3 })
  S.assert_clean(before)
end

-- What the launcher holds while a start is under way: the start's own
-- descriptors, seen from inside an on_status callback, by kind.
local function held_during_a_start()
  local before = {}
  for _, fd in ipairs(S.testing.fds()) do before[fd] = true end
  local kinds
  local app, err = start { argv = { F, "notify=STATUS=starting", "pause" }, ready = "notify",
    ready_timeout = 0.5, on_status = function()
      local links = {}
      for _, fd in ipairs(S.testing.fds()) do
        if not before[fd] then links[#links + 1] = "/proc/" .. S.proc_status("self").Pid .. "/fd/" .. fd end
      end
      kinds = {}
      if #links > 0 then
        local p = io.popen("exec readlink " .. table.concat(links, " "))
        for l in p:lines() do -- socket:[123], anon_inode:[pidfd], anon_inode:[eventpoll]
          kinds[#kinds + 1] = l:match("^anon_inode:%[?([%w_]+)") or l:match("^([^:]+)")
        end
        p:close()
      end
      table.sort(kinds)
    end }
  -- the app never reports READY=1: the start times out (and kills it)
  lu.assertNil(app)
  lu.assertEquals(err.code, "timeout")
  lu.assertNotNil(kinds, "on_status did not run")
  return kinds
end

local START_HOLDS = S.testing.has_pidfd() and { "pidfd", "socket" } or { "socket" }

function T.test_a_start_holds_only_its_channel_and_the_apps_pidfd()
  -- no descriptor of the start's own to wait on: a plain script polls the
  -- channel and the pidfd themselves (valgrind 3.19 knows no pidfds: the
  -- channel alone, and the app is probed)
  local before = S.snapshot()
  lu.assertEquals(held_during_a_start(), START_HOLDS)
  S.assert_clean(before)
end

function T.test_inside_a_loop_a_start_holds_only_its_channel_and_the_apps_pidfd()
  -- the loop's poller waits on them directly: 1,000 starts in flight hold
  -- 2,000 descriptors, not 3,000, and each child has fewer to close
  local before = S.snapshot()
  local kinds
  local sig = assert(S.core.signals { "USR2" })
  appstart.run(function()
    -- another task waits on a descriptor all along: the poller is open
    -- before the start, and the start's wait goes through it
    local other = appstart.spawn(function() require("appstart.loop").wait(sig:fd()) end)
    appstart.sleep(0.001) -- the other task runs (and registers) first
    kinds = held_during_a_start()
    other:cancel()
  end)
  sig:close()
  lu.assertEquals(kinds, START_HOLDS)
  S.assert_clean(before)
end

function T.test_the_only_task_of_a_loop_starts_with_no_poller_at_all()
  -- nothing else could run meanwhile: it blocks on the start's descriptors
  -- as a plain script does
  local before = S.snapshot()
  local kinds
  appstart.run(function() kinds = held_during_a_start() end)
  lu.assertEquals(kinds, START_HOLDS)
  S.assert_clean(before)
end

function T.test_a_real_vfork_reports_the_exec_through_memory_with_no_pipe()
  -- under valgrind vfork is a fork: the pipe it needs is kept there
  lu.skipIf(os.getenv("APPSTART_VFORK_IS_FORK"), "vfork is emulated as fork here")
  S.testing.exec_report("auto")
  lu.assertEquals(S.testing.exec_report(), "unknown")
  local before = S.snapshot()
  local _, err = start { argv = { "/nonexistent/appstart-no-such-program" }, ready = "fd" }
  lu.assertEquals(err.code, "spawn")
  lu.assertEquals(err.errno, 2)
  lu.assertEquals(S.testing.exec_report(), "memory")
  S.assert_clean(before)
end

-- In a child Lua whose descriptor limit is 64: with exec failures
-- reported through memory and then through the pipe, for each target
-- number (ready_fd alone, then pid_fd of a helper), start and print one
-- line: how and which, the number, the outcome, whether the launcher's
-- descriptors are the same after, and its children.
-- The child's lines, run as `how` says (S.run_child): for each, the line,
-- the number, the outcome, "same" or "changed", the children.
local function near_the_limit(how)
  local text, ok, why, code = S.run_child(how, "layout_a_target_descriptor_near_the_limit")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", why, code, text))
  local lines = text:gmatch("[^\n]+")
  return function()
    local line = lines()
    if not line then return nil end
    local which, fd, outcome, same, kids = line:match("^(%S+)\t(%d+)\t(%S+)\t(%S+)\t(%S+)$")
    lu.assertNotNil(which, "unexpected output: " .. line)
    return line, tonumber(fd), outcome, same, kids
  end
end

function T.test_a_target_descriptor_at_or_near_the_limit_fails_as_spawn_never_as_exit_127()
  -- the child cannot hold descriptors at or past RLIMIT_NOFILE: such a
  -- layout must fail as an exec failure does (spawn, with an errno), never
  -- look like an app that started and exited 127
  -- (every number below the limit starts: the child's layout needs no
  -- number above the highest target; 61 to 63 failed, EMFILE, the moves
  -- finding no room above them)
  local rows, bad = 0, {}
  for line, fd, outcome, same, kids in near_the_limit { nofile = 64 } do
    rows = rows + 1
    if fd < 64 and outcome ~= "started" then bad[#bad + 1] = line .. "  (below the limit: must start)" end
    if fd >= 64 and outcome ~= "spawn:24" then bad[#bad + 1] = line .. "  (past the limit: EMFILE)" end
    if same ~= "same" or kids ~= "[]" then bad[#bad + 1] = line .. "  (left something)" end
  end
  lu.assertEquals(rows, 32)
  lu.assertEquals(bad, {}, "outcomes other than started or spawn with an errno")
  lu.assertEquals(S.strays(), {})
end

-- The same under a soft limit of 64 alone (the hard one higher, as a
-- shell's `ulimit -S -n` leaves it): every number the hard limit leaves
-- room for starts (each failed from 62 on: the layout's moves need numbers
-- above the highest target, which the soft limit refused, and said so as
-- EINVAL), the app given the soft limit it had.
function T.test_a_target_descriptor_past_the_soft_limit_alone_starts()
  local hard = tonumber(S.sh("ulimit -H -n", "l"))
  lu.skipIf(not hard or hard < 1030, "the hard descriptor limit leaves no room above 1023 here")
  local rows, bad = 0, {}
  for line, _, outcome, same, kids in near_the_limit { nofile = 64, soft_only = true } do
    rows = rows + 1
    if outcome ~= "started" or same ~= "same" or kids ~= "[]" then bad[#bad + 1] = line end
  end
  lu.assertEquals(rows, 32)
  lu.assertEquals(bad, {})
  -- (and below the soft limit, where the launcher's own descriptors hold
  -- every number above the target: they failed, "Too many open files")
  local text, ok, how, code = S.run_child({ nofile = 64, soft_only = true }, "layout_targets_below_the_launchers_own")
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertEquals(text, "40\tstarted\n58\tstarted\n")
  lu.assertEquals(S.strays(), {})
end

return { TestLayout = T }
