--- Run by spec/trees_spec.lua (test_a_killed_launchers_cgroup_is_removed_
-- once_its_app_has_ended) in the background, to be killed with SIGKILL:
-- starts the fixture with kill_mode = "cgroup" under PARENT (it writes its
-- pid to APPFILE and runs on), then writes its own pid to PIDFILE
-- (through PIDFILE.tmp, renamed) and waits (60 s at most). Prints nothing.
-- arg[1]: PIDFILE, arg[2]: APPFILE, arg[3]: PARENT.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"
local F = K.fixture()
local PIDFILE, APPFILE, PARENT = arg[1], arg[2], arg[3]

local app = assert(appstart.start { argv = { F, "pidfile=" .. APPFILE, "pause" }, ready = "none",
  kill_mode = "cgroup", cgroup_parent = PARENT, log = K.quiet })
K.await_path(APPFILE)
local f = io.open(PIDFILE .. ".tmp", "w"); f:write(K.read("/proc/self/stat"):match("^%d+")); f:close()
os.rename(PIDFILE .. ".tmp", PIDFILE)
core.wait_readable(-1, 60)
app:terminate()
