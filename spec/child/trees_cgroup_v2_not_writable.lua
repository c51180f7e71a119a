--- Run by spec/trees_spec.lua, test_where_cgroup_v2_is_not_writable_the_start_fails_and_says_so
-- (as nobody, who may not write the cgroup tree): starts the fixture with
-- kill_mode = "cgroup". Prints the app (nil), the error's code and the
-- error, then "children" and its children (none expected).
-- Argument: a cgroup_parent (delegated to nobody, the launcher outside
-- it), or none.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()

local app, err = appstart.start { argv = { F, "notify=READY=1", "pause" }, kill_mode = "cgroup",
  cgroup_parent = arg[1], log = K.quiet }
print(app, err and err.code, err)
print("children", K.children_text())
