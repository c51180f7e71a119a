--- Run by spec/trees_spec.lua (test_a_cgroup_parent_made_by_launchers_
-- at_once_is_used_by_all), several at once: at each of ROUNDS instants
-- (START + round * GAP on the monotonic clock, which all of them share),
-- a start in a cgroup_parent that does not exist yet, BASE/rROUND/ then
-- 1/2/.../30, so that every launcher makes its missing components at the
-- same moment as the others. Prints "fail\tCODE\tMESSAGE" for each start
-- that failed, then "done\tN" (the starts that failed).
-- Arguments: BASE ROUNDS START GAP.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local base, rounds, start, gap = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local deep = {}
for i = 1, 30 do deep[i] = tostring(i) end
deep = table.concat(deep, "/")
local failed = 0
for round = 1, rounds do
  local at = start + round * gap
  while core.now() < at do end -- the same instant as the others
  local app, err = appstart.start { argv = { F }, ready = "none", kill_mode = "cgroup",
    cgroup_parent = base .. "/r" .. round .. "/" .. deep, log = K.quiet }
  if app then
    app:wait(5)
    app:close()
  else
    failed = failed + 1
    K.out("fail", tostring(err.code), err.message)
  end
end
K.out("done", failed)
