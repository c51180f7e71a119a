--- Run by spec/trees_spec.lua (test_cgroups_made_deep_and_many_inside_
-- the_app_s_are_all_removed): one start in cgroup_parent $PARENT, the
-- first of this launcher's there (which sweeps what killed launchers left
-- under it). Prints "how\tHOW", the app's end.
local appstart = require "appstart"
local K = require "childkit"

local app = assert(appstart.start { argv = { K.fixture() }, ready = "none", kill_mode = "cgroup",
  cgroup_parent = os.getenv("PARENT"), log = K.quiet })
K.out("how", tostring(app:wait(5)))
app:close()
