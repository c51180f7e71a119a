--- Run by spec/security_spec.lua (test_directories_a_killed_launcher_left_
-- are_removed_by_the_next_start) in the background, to be killed with
-- SIGKILL: writes its pid to PIDFILE (through PIDFILE.tmp, renamed),
-- then starts the fixture, which writes its pid to APPFILE and never
-- sends READY=1, and waits for it (up to 60 s). Prints nothing.
-- arg[1]: PIDFILE, arg[2]: APPFILE.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()
local PIDFILE, APPFILE = arg[1], arg[2]

local f = io.open(PIDFILE .. ".tmp", "w"); f:write(K.read("/proc/self/stat"):match("^%d+")); f:close()
os.rename(PIDFILE .. ".tmp", PIDFILE)
appstart.start { argv = { F, "pidfile=" .. APPFILE, "pause" }, ready_timeout = 60, log = K.quiet }
