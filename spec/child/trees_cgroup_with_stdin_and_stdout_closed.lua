--- Run by spec/trees_spec.lua (test_an_app_joins_its_cgroup_whatever_
-- descriptors_the_launcher_has_closed): the launcher's stdin and stdout
-- are closed first, so the cgroup's descriptors take the numbers 0 and 1.
-- Prints (on stderr, the only stream left) "cgroup\tPATH" (the app's
-- cgroup, from /proc) and "mine\tPATH" (the launcher's own), then
-- "how\tHOW" (its terminate) and "children\tPIDS" (left).
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"
local F = K.fixture()

-- (io.stdin:close() would not: Lua keeps its standard files open)
core.close(0)
core.close(1)
local function cgroup_of(pid)
  local f = assert(io.open("/proc/" .. pid .. "/cgroup"))
  local text = f:read("a")
  f:close()
  return text:match("0::([^\n]*)")
end
local app = assert(appstart.start { argv = { F, "pause" }, ready = "none", kill_mode = "cgroup" })
io.stderr:write("cgroup\t", tostring(cgroup_of(app.pid)), "\n")
io.stderr:write("mine\t", tostring(cgroup_of("self")), "\n")
io.stderr:write("how\t", tostring(app:terminate()), "\n")
io.stderr:write("children\t", K.children_text(), "\n")
