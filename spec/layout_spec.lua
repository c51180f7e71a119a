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
  local held_before = #S.core.fds()
  local files = {}
  for i = 1, n do files[i] = assert(io.open(S.fixture, "r")) end
  local r = table.pack(pcall(function()
    lu.assertEquals(#S.core.fds(), held_before + n, "the files are open in the launcher")
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

-- Runs in a child Lua whose descriptor limit is 64. For each target number
-- (ready_fd alone, then pid_fd of a helper), start and print one line:
-- which, the number, the outcome, whether the launcher's descriptors are
-- the same after, and its children.
local HIGH_FD_SCRIPT = [==[
local base = { ready = "fd", log = function() end, ready_timeout = 3, pid_timeout = 3, kill_grace = 0.2 }
for _, which in ipairs { "ready_fd", "pid_fd" } do
  for _, fd in ipairs { 40, 60, 61, 62, 63, 64, 100, 1023 } do
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    if which == "ready_fd" then
      o.argv, o.ready_fd = { F, "line=" .. fd .. ":x", "pause" }, fd
    else
      o.helper = { F, "fork", "line=3:x", "pause", "|", "int32=" .. fd .. ":child", "exit=0" }
      o.argv, o.pid_fd, o.ready_fd = { "pause" }, fd, 3
    end
    collectgarbage()
    local before = table.concat(core.fds(), ",")
    local ok, app, err = pcall(appstart.start, o)
    local outcome
    if not ok then outcome = "raised:" .. tostring(app):gsub("%s", "_")
    elseif app then outcome = "started"; app:terminate()
    else
      outcome = err.code .. ":" .. tostring(err.errno)
      if err.status then outcome = outcome .. ":" .. tostring(err.status.code or err.status.signal) end
    end
    core.reap()
    local same = table.concat(core.fds(), ",") == before
    print(which, fd, outcome, same and "same" or "changed", "[" .. children() .. "]")
  end
end
]==]

function T.test_a_target_descriptor_at_or_near_the_limit_fails_as_spawn_never_as_exit_127()
  -- the child cannot hold descriptors at or past RLIMIT_NOFILE: such a
  -- layout must fail as an exec failure does (spawn, with an errno), never
  -- look like an app that started and exited 127
  local text, ok, how, code = S.child_lua(64, HIGH_FD_SCRIPT)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  local rows, bad = 0, {}
  for line in text:gmatch("[^\n]+") do
    local which, fd, outcome, same, kids = line:match("^(%S+)\t(%d+)\t(%S+)\t(%S+)\t(%S+)$")
    lu.assertNotNil(which, "unexpected output: " .. line)
    rows = rows + 1
    fd = tonumber(fd)
    if fd == 40 and outcome ~= "started" then bad[#bad + 1] = line .. "  (room to spare: must start)" end
    if outcome ~= "started" and not outcome:match("^spawn:%d+$") then bad[#bad + 1] = line end
    if same ~= "same" or kids ~= "[]" then bad[#bad + 1] = line .. "  (left something)" end
  end
  lu.assertEquals(rows, 16, text)
  lu.assertEquals(bad, {}, "outcomes other than started or spawn with an errno")
  lu.assertEquals(S.strays(), {})
end

return { TestLayout = T }
