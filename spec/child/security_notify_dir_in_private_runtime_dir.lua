--- Run by spec/security_spec.lua (test_user_with_notify_works_when_XDG_
-- RUNTIME_DIR_is_private) with XDG_RUNTIME_DIR a directory of root's
-- alone (0700): starts the fixture as nobody, ready when it sends
-- READY=1, and terminates it. Prints "ready" (or the error) and then
-- "ended\t15".
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local app, err = appstart.start { argv = { F, "notify=READY=1", "pause" }, user = "nobody",
  ready_timeout = 5, log = K.quiet }
print(app and "ready" or tostring(err))
if app then print("ended", app:terminate(1).signal) end
