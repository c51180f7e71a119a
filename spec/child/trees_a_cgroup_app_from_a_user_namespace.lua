--- Run by spec/trees_spec.lua, in
-- test_a_launcher_in_a_user_namespace_starts_a_cgroup_app: a launcher
-- that is root in a user namespace of its own (the host's root unmapped:
-- the cgroups above its own seem the overflow uid's) starts an app of
-- kill_mode "cgroup" in its own cgroup, delegated to it. Prints "start"
-- and "ready" or the error, then "how" and how the app ended.
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local app, err = appstart.start { argv = { F, "notify=READY=1", "pause" }, kill_mode = "cgroup", log = K.quiet }
K.out("start", app and "ready" or tostring(err))
if app then K.out("how", tostring(app:terminate())) end
