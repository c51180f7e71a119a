--- Run by spec/life_spec.lua, in
-- test_the_launchers_own_watchdog_variables_are_not_inherited (with
-- WATCHDOG_USEC and WATCHDOG_PID set): starts an app that writes its
-- environment to a file, terminates it, and prints "done".
-- Argument: the file the app writes its environment to.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local ENV = arg[1]
local app = assert(appstart.start{ argv = { F, "env=" .. ENV, "notify=READY=1", "pause" } })
app:terminate()
print("done")
