--- Run by spec/supervisor_spec.lua (through as_nobody_with_a_setuid_helper),
-- test_the_group_of_another_users_app_is_signalled_after_a_mainpid_move
-- (as nobody, with APPSTART_HELPER a setuid copy whose policy lets nobody
-- start apps as daemon): an app of daemon's, kill_mode "group", moves its
-- main pid to its child (MAINPID=), which leads no group. app:kill and
-- app:terminate go through the helper to the group the main is in.
-- Prints "kill\tTRUE-OR-MESSAGE", "how\tHOW", then "old alive\tyes|no" and
-- "new alive\tyes|no".
-- Arguments: DIR, a directory every user may write.
local appstart = require "appstart"
local K = require "childkit"
local core = require "appstart.core"

local F = K.fixture()
local DIR = arg[1]
local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") and "yes" or "no" end

appstart.run(function()
  local app = assert(appstart.start { argv = { F, "fork", "pidfile=" .. DIR .. "/child", "pause", "|",
    "waitfile=" .. DIR .. "/child", "notify=READY=1", "mainpid=@" .. DIR .. "/child", "pause" }, user = "daemon",
    kill_mode = "group", kill_grace = 0.5, stdout = "null", stderr = "null", ready_timeout = 5, log = K.quiet })
  local old = app.pid
  local child = tonumber(K.read(DIR .. "/child"))
  local deadline = core.now() + 5
  while app.pid ~= child and core.now() < deadline do appstart.sleep(0.01) end
  print("moved", app.pid == child and "yes" or "no")
  local ok, why = app:kill("TERM")
  print("kill", ok or why)
  print("how", tostring(app:terminate()))
  print("old alive", alive(old))
  print("new alive", alive(child))
end)
