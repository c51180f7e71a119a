--- Run by spec/security_spec.lua (the specs of a notify directory being
-- made), on the host or in a pid namespace of its own, with the
-- XDG_RUNTIME_DIR where another launcher makes (or left) its directory:
-- its start sweeps it first. Starts the fixture, ready when it sends
-- READY=1, terminates it and prints the signal that ended it ("15").
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, log = K.quiet })
print(app:terminate(1).signal)
