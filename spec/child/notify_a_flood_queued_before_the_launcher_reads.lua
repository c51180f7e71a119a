--- Run by spec/notify_spec.lua, in
-- test_what_a_flood_queued_before_the_launcher_read_holds_still_counts (in
-- a network namespace whose datagram queues hold 512): starts, with a
-- helper that reports late, apps that flood the notify socket before
-- READY=1 or EXTEND_TIMEOUT_USEC=, and one whose EXTEND_TIMEOUT_USEC= comes
-- while the helper still runs; prints "NAME\tready\t" or "NAME\tCODE\tMESSAGE"
-- for each, then "left\tPIDS" (the children left once the apps, which exit
-- after READY=1, have had 5 s to end). No arguments.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local function try(name, opts)
  opts.helper, opts.log = true, function() end
  local app, err = appstart.start(opts)
  print(name, app and "ready" or err.code, app and "" or err.message)
  if app then app:close() end
end
try("ready behind 100", { argv = { F, "fork", "notifyflood=100:STATUS=x", "notify=READY=1", "exit=0", "|",
  "sleep=0.3", "int32=3:child", "exit=0" } })
try("extend behind 80 events", { argv = { F, "fork", "notifyflood=40:STATUS=x\nERRNO=1",
  "notify=EXTEND_TIMEOUT_USEC=3000000", "sleep=1", "notify=READY=1", "exit=0", "|",
  "sleep=0.3", "int32=3:child", "exit=0" }, ready_timeout = 0.5 })
try("a short extend", { argv = { F, "fork", "notify=EXTEND_TIMEOUT_USEC=1000", "sleep=0.5",
  "notify=READY=1", "exit=0", "|", "sleep=0.1", "int32=3:child", "exit=0" }, ready_timeout = 5 })
-- the helper's own READY=1 behind the app's flood, all of it queued (and
-- the helper exited) before the first step: read before the helper is
-- reaped, while its pid is still its own
do
  local h = appstart.begin { argv = { F, "fork", "notifyflood=100:STATUS=x", "pause", "|",
    "sleep=0.3", "notify=READY=1", "int32=3:child", "exit=0" }, helper = true, ready_timeout = 3,
    log = function() end }
  os.execute("sleep 0.8")
  local app, err = h:wait()
  print("the helper's ready behind 100", app and "ready" or err.code, app and "" or err.message)
  if app then app:terminate() end
end
-- each app exits once it has said READY=1: reaped by a call that waits
-- (closed apps are reaped there), which nothing above made after the last
local deadline = core.now() + 5
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
print("left", K.children_text())
