--- Run by spec/life_spec.lua, test_a_ping_behind_a_flood_is_read_before_
-- the_watchdog_acts (in a network namespace whose datagram queues hold
-- 512): an app with a 1 s watchdog floods its notify socket with 300
-- STATUS= after READY=1, then pings every 0.25 s; the launcher is busy
-- (not yielding) for 1.5 s, then waits 0.5 s. Prints "after the busy
-- spell\tSTATE\tWATCHDOG" (the app's state, whether the watchdog killed
-- it), then "ended\tSIGNAL\tWATCHDOG" once terminated. No arguments.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
appstart.run(function()
  local app = assert(appstart.start { argv = { F, "notify=READY=1", "notifyflood=300:STATUS=working",
    "notify=WATCHDOG=1", "repeat=40:0.25:WATCHDOG=1", "pause" }, ready = "notify", watchdog = 1,
    kill_grace = 0.5, log = K.quiet })
  core.wait_readable(-1, 1.5) -- busy: the flood and the first pings queue, unread
  local how = app:wait(0.5)
  print("after the busy spell", app.state, how and tostring(how.watchdog))
  how = app:terminate()
  print("ended", how.signal, tostring(how.watchdog))
end)
