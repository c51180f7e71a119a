--- Run by spec/notify_spec.lua, test_a_ready_1_behind_a_flood_counts_after_
-- a_busy_on_status, and spec/life_spec.lua, test_a_reloads_ready_1_behind_
-- a_flood_counts_after_a_busy_on_status (in a network namespace whose
-- datagram queues hold 512):
-- an app sends 200 STATUS= and then READY=1 (arg[1] "start": as it starts;
-- "reload": after its RELOADING=1, the reload asked for inside
-- appstart.run), then makes the file arg[2]; the first on_status call of
-- the flood holds the launcher (not yielding) until that file is there and
-- twice ready_timeout has passed since the call began, so past the
-- deadline, with the READY=1 queued behind more than a step's reads.
-- Prints "start\tready" or "start\tCODE\tMESSAGE" (or "reload\ttrue" or
-- "reload\tnil\tMESSAGE"), "busy\tSECONDS" (how long the call held the
-- launcher), then "left\tPIDS" once the app is terminated.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local case, sent = arg[1], arg[2]
local F = K.fixture()
local TIMEOUT = 1
local flood = { "notifyflood=200:STATUS=x", "notify=READY=1", "now=" .. sent }

local armed, took = case == "start", nil
local function on_status(_, text)
  if not armed or text ~= "x" then return end
  armed = false
  local t0 = core.now()
  -- (the READY=1 queued; a bound, so that a fixture that never sends it
  -- fails the spec rather than hanging it)
  while not K.read(sent) and core.now() < t0 + 10 do core.wait_readable(-1, 0.01) end
  core.wait_readable(-1, math.max(0, t0 + 2 * TIMEOUT - core.now()))
  took = core.now() - t0
end

if case == "start" then
  local argv = { F }
  table.move(flood, 1, #flood, 2, argv)
  argv[#argv + 1] = "pause"
  local app, err = appstart.start { argv = argv, ready = "notify", ready_timeout = TIMEOUT, log = K.quiet,
    on_status = on_status }
  K.out("start", app and "ready" or err.code, app and "" or err.message)
  if app then app:terminate() end
else
  appstart.run(function()
    local argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1" }
    table.move(flood, 1, #flood, #argv + 1, argv)
    argv[#argv + 1] = "pause"
    local app = assert(appstart.start { argv = argv, ready = "notify", ready_timeout = TIMEOUT, log = K.quiet,
      on_status = on_status })
    armed = true
    local ok, err = app:reload()
    K.out("reload", tostring(ok), ok and "" or tostring(err))
    app:terminate()
  end)
end
K.out("busy", took and string.format("%.3f", took) or "never")
K.out("left", K.children_text())
