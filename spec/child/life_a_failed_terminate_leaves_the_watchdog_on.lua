--- Run by spec/life_spec.lua,
-- test_a_terminate_that_cannot_signal_leaves_the_watchdog_on (as nobody):
-- an app with a 0.3 s watchdog, a setuid-root copy of the fixture that
-- becomes root (nobody may no longer signal it), says READY=1 and pings
-- for about 0.6 s, then stops. app:terminate() right after ready fails
-- (its SIGTERM not sent: the app is as it was), and the watchdog goes on:
-- the silence is seen. Prints "terminate", what app:terminate returned
-- and the app's state; "watchdog" and the seconds from the failed
-- terminate to the watchdog's line, or "watchdog none" when none came
-- within 3 s; then the log lines ("level: message"). The app is left
-- running (root's): the spec kills it (its pid in DIR/pid).
-- Arguments: SUID_FIXTURE DIR.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local suid, dir = arg[1], arg[2]

local lines, fired = {}, nil
appstart.run(function()
  local app = assert(appstart.start { argv = { suid, "root", "pidfile=" .. dir .. "/pid", "notify=READY=1",
    "repeat=6:0.1:WATCHDOG=1", "pause" }, ready = "notify", watchdog = 0.3, kill_grace = 0.2,
    stdout = "null", stderr = "null", -- (root's app would hold the spec's pipe)
    log = function(level, message)
      lines[#lines + 1] = level .. ": " .. message
      if message:find("watchdog: no WATCHDOG=1", 1, true) and not fired then fired = core.now() end
    end })
  local t0 = core.now()
  local how, message = app:terminate()
  K.out("terminate", tostring(how), tostring(message), app.state)
  local deadline = core.now() + 3
  while not fired and core.now() < deadline do appstart.sleep(0.05) end
  if fired then
    K.out("watchdog", string.format("%.3f", fired - t0))
  else
    K.out("watchdog", "none")
  end
  app:close()
end)
print(table.concat(lines, "\n"))
