--- Run by spec/helper_spec.lua, test_an_unprivileged_launcher_starts_an_app_as_another_user_through_a_setuid_copy
-- (as nobody, with APPSTART_HELPER a setuid copy whose policy lets nobody
-- start apps as daemon): starts the fixture as daemon, waits for its
-- READY=1, terminates it, then tries to start one as bin, which the policy
-- refuses. Prints the app's pid and status ("up"), the signal that ended
-- it (15), then the refused start's error code and message.
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()

local app, err = appstart.start { argv = { F, "notify=STATUS=up\\nREADY=1", "pause" }, user = "daemon",
  stdout = "null", stderr = "null", ready_timeout = 5, log = K.quiet }
print(app and app.pid or tostring(err), app and app.status)
-- an app of another user: signalled through the helper
local how = app:terminate(1)
print(how and how.signal)
-- a user the policy does not list: why is in the error, though the
-- app's stderr (the helper's) is /dev/null
local _, refused = appstart.start { argv = { F, "pause" }, user = "bin", stdout = "null", stderr = "null",
  ready_timeout = 5, log = K.quiet }
print(refused.code, refused.message)
