--- Run by spec/trees_spec.lua, test_where_cgroup_v2_is_not_writable_the_start_fails_and_says_so
-- (as nobody, who may not write the cgroup tree): starts the fixture with
-- kill_mode = "cgroup". Prints the app (nil), the error's code and the
-- error, then "children" and its children (none expected).
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()

local app, err = appstart.start { argv = { F, "notify=READY=1", "pause" }, kill_mode = "cgroup",
  log = K.quiet }
print(app, err and err.code, err)
print("children", K.children_text())
