--- Run by spec/trees_spec.lua (test_out_of_descriptors_a_cgroup_app_
-- ends_only_once_its_cgroup_is_empty), at a low descriptor limit: a
-- kill_mode "cgroup" app with a child that ignores SIGTERM; with every
-- descriptor taken (cgroup.events and cgroup.procs cannot be opened),
-- app:terminate() inside appstart.run, while another task gives the
-- descriptors back once kill_grace and a little more have passed. Prints
-- "how\tHOW" (what terminate returned), "member" (the child's state then:
-- "gone" once it has ended) and "cgroup" ("removed" once its directory
-- is gone).
-- Arguments: DIR, a directory of the test's own.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]
local GRACE = 0.3

appstart.run(function()
  local app = assert(appstart.start { argv = { F, "fork", "ignore=TERM", "pidfile=" .. DIR .. "/member", "pause", "|",
    "waitfile=" .. DIR .. "/member", "notify=READY=1", "pause" }, kill_mode = "cgroup", kill_grace = GRACE,
    log = K.quiet })
  local member = assert(tonumber(K.read(DIR .. "/member")))
  local cgroup = assert(K.read("/proc/" .. member .. "/cgroup")):match("0::([^\n]*)")
  local mnt = K.read("/proc/self/mountinfo"):match("\n?%S+ %S+ %S+ %S+ (%S+) [^\n]- %- cgroup2 ")
  local fillers = K.take_all_descriptors()
  local function give_back()
    for _, f in ipairs(fillers) do f:close() end
    fillers = {}
  end
  appstart.spawn(function()
    appstart.sleep(GRACE + 0.5)
    give_back()
  end)
  local how = app:terminate()
  give_back()
  local s = K.state(member)
  K.out("how", tostring(how))
  K.out("member", (s == nil or s == "Z") and "gone" or "alive")
  local f = io.open(mnt .. cgroup .. "/cgroup.procs")
  K.out("cgroup", f and "there" or "removed")
  if f then f:close() end
  if s and s ~= "Z" then os.execute("kill -KILL " .. member) end
end)
