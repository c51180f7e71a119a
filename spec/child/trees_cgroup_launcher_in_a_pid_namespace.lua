--- Run by spec/trees_spec.lua (the cgroup tests of launchers in pid
-- namespaces of their own), in a pid namespace of its own (its pid there
-- a small one, as every such launcher's) or on the host: one start with
-- kill_mode = "cgroup" under PARENT. MODE "leave": the fixture left
-- running, closed, and the script exits (as a container's entrypoint
-- that is killed would: the namespace's end kills the app, and its cgroup
-- stays, empty, under PARENT); MODE "wait": the fixture exits and is
-- waited for. Prints "start\tok" or "start\tCODE: MESSAGE".
-- Arguments: PARENT MODE.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local PARENT, MODE = arg[1], arg[2]

local app, err = appstart.start { argv = MODE == "leave" and { F, "pause" } or { F }, ready = "none",
  kill_mode = "cgroup", cgroup_parent = PARENT, log = K.quiet }
print("start", app and "ok" or (err.code .. ": " .. err.message))
if not app then os.exit(0) end
if MODE == "leave" then
  app:close()
  os.exit(0)
end
app:wait(10)
