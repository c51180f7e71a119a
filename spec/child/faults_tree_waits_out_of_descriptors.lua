--- Run by spec/faults_spec.lua (a descriptor limit of 32): what the kill
-- modes need descriptors for, with none free. Prints, tab-separated:
--   wait MODE OK HOW|ERR   an app started, then every descriptor taken,
--                          killed, app:wait(2) (a kill_mode "cgroup"
--                          app's wait made the launcher's poll set, and
--                          raised EMFILE; out of descriptors its cgroup
--                          cannot be read: not seen ended, a timeout),
--   after MODE HOW         its app:wait() once descriptors are back,
--   failed K OUTCOME SECS CGROUPS FDS
--                          for k = 0, 1, ... descriptors free, a kill_mode
--                          "cgroup" start until one starts: how and how
--                          fast (one whose cgroup was made but could not
--                          be joined, nothing spawned, waited 10 s for
--                          that cgroup to empty, which it could not read),
--                          how many cgroups of the launcher's are left,
--                          and whether its descriptors are as they were.
-- Argument: "cgroup" when cgroup v2 is usable, else "none" (the cgroup
-- lines are left out).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local modes = { "process", "group" }
if arg[1] == "cgroup" then modes[3] = "cgroup" end
for _, mode in ipairs(modes) do
  local app = assert(appstart.start { argv = { F, "pause" }, ready = "none", kill_mode = mode, kill_grace = 0.2,
    log = K.quiet })
  local fillers = K.take_all_descriptors()
  app:kill("KILL")
  local ok, how, err = pcall(app.wait, app, 2)
  for _, f in ipairs(fillers) do f:close() end
  K.out("wait", mode, tostring(ok), tostring(how or err))
  K.out("after", mode, tostring(app:wait()))
  app:close()
end
if arg[1] == "cgroup" then
  for k = 0, 16 do
    collectgarbage()
    local fds = K.fds()
    local outcome, took = K.start_with_free_descriptors(k, { argv = { F, "pause" }, ready = "none",
      kill_mode = "cgroup", kill_grace = 0.2, log = K.quiet })
    if not outcome then break end
    collectgarbage()
    K.out("failed", k, outcome, string.format("%.1f", took), K.my_cgroups(), K.fds() == fds and "same" or "changed")
    if outcome == "started" then break end
  end
end
K.out("children:", K.children_text())
