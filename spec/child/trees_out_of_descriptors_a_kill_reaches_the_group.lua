--- Run by spec/trees_spec.lua (test_out_of_descriptors_a_kill_still_
-- reaches_the_whole_group): a kill_mode "group" app and a child of its
-- that ignores SIGTERM; with every descriptor taken (/proc cannot be read
-- for the group's members), app:kill("KILL"). Prints "killed", what
-- app:kill returned; "member", the child's state a moment after
-- ("gone" once it has ended, a zombie or reaped), looked at before any
-- call of appstart's that waits (the sweep of what a group app left would
-- end it too, after kill_grace); "how", the signal that ended the app.
-- Arguments: DIR, a directory of the test's own.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]

local app = assert(appstart.start { argv = { F, "fork", "ignore=TERM", "pidfile=" .. DIR .. "/member", "pause", "|",
  "waitfile=" .. DIR .. "/member", "notify=READY=1", "pause" }, kill_mode = "group", kill_grace = 30, log = K.quiet })
local member = assert(tonumber(K.read(DIR .. "/member")))
local fillers = K.take_all_descriptors()
local ok, message = app:kill("KILL")
for _, f in ipairs(fillers) do f:close() end
K.out("killed", tostring(ok), tostring(message))
local deadline = core.now() + 2
local function gone() local s = K.state(member) return s == nil or s == "Z" end
while not gone() and core.now() < deadline do core.wait_readable(-1, 0.01) end
K.out("member", gone() and "gone" or "alive")
if not gone() then os.execute("kill -KILL " .. member) end
local how = app:wait(5)
K.out("how", tostring(how and how.signal))
