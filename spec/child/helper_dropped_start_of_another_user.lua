--- Run by spec/helper_spec.lua,
-- test_a_dropped_start_of_another_users_app_has_it_killed_through_the_helper
-- (as nobody, with APPSTART_HELPER a setuid copy whose policy lets nobody
-- start apps as daemon): begins a start as daemon whose app never says it
-- is ready, steps it until the app's pid is known (its STATUS= has come),
-- then drops it and collects it: the starter's finalizer has the helper
-- kill the app. Then the same with kill_mode "group", the app having
-- forked a child into its group first. Prints "pid" and the app's pid,
-- "group" and the group app's pid and its child's, then, once no child is
-- left (the calls that wait reap them: the apps and the helpers), "left",
-- whether its descriptors are as they were and its children.
-- Arguments: DIR, a directory every user may write (the forked child's
-- pid file goes there).
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]
local fds = K.fds()

local function begin_and_drop(argv, kill_mode)
  local pid
  local h = appstart.begin { argv = argv, user = "daemon", ready = "notify", kill_mode = kill_mode,
    ready_timeout = 60, stdout = "null", stderr = "null", log = K.quiet,
    on_status = function(app) pid = app.pid end }
  local deadline = core.now() + 20
  while not pid do
    assert(core.now() < deadline, "no STATUS= from the app")
    assert(not h:step(), "the start ended")
    core.wait_readable(assert(h:pollfd()), 0.05)
  end
  return pid
end

local pid = begin_and_drop({ F, "notify=STATUS=up", "pause" })
collectgarbage()
collectgarbage()
print("pid", pid)
local forked = DIR .. "/forked"
pid = begin_and_drop({ F, "fork", "pidfile=" .. forked, "pause", "|", "waitfile=" .. forked,
  "notify=STATUS=up", "pause" }, "group")
collectgarbage()
collectgarbage()
print("group", pid, tonumber(K.read(forked)))
io.stdout:flush()
local deadline = core.now() + 20
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
print("left", K.fds() == fds, K.children_text())
