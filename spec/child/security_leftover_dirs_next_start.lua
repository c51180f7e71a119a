--- Run by spec/security_spec.lua (test_directories_a_killed_launcher_left_
-- are_removed_by_the_next_start) with the XDG_RUNTIME_DIR a killed
-- launcher left its directory in: starts the fixture, ready when it
-- sends READY=1, terminates it and prints the signal that ended it
-- ("15").
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, log = K.quiet })
print(app:terminate(1).signal)
