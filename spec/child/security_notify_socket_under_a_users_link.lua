--- Run by spec/security_spec.lua (test_the_notify_socket_is_never_reached_
-- through_a_link_another_user_owns) with XDG_RUNTIME_DIR a symbolic link
-- another user owns: starts `sh -c SCRIPT FIXTURE` (the script notes
-- $NOTIFY_SOCKET and runs the fixture, which sends READY=1), terminates
-- it and prints the signal that ended it ("15").
-- arg[1]: SCRIPT, the shell command.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()
local SCRIPT = arg[1]

local app = assert(appstart.start { argv = { "/bin/sh", "-c", SCRIPT, F }, log = K.quiet })
print(app:terminate(1).signal)
