--- Run by spec/output_spec.lua, in
-- test_an_on_output_that_raises_at_every_line_of_a_flood_holds_nothing_up
-- (killed if it hangs): waits 0.5 s for an app that floods its captured
-- stdout, with an on_output that raises at every line, in a plain script,
-- then inside appstart.run with that on_output and with a slow one while
-- another task sleeps 0.01 s at a time. Prints, tab-separated,
-- "plain\tHOW\tWHY\tTOOK\tRAISED", then for "run" and "slow"
-- "CASE\tHOW\tWHY\tTOOK\tRAISED\tTICKS\tGAP" (RAISED the lines logged about
-- on_output, GAP the other task's longest sleep), then "done".
-- No arguments.
local appstart = require "appstart"
local core = require "appstart.core"

local raised = 0
local function log(_, message)
  if message:find("on_output raised", 1, true) then raised = raised + 1 end
end
local function raise() error("no") end
local hurry = false -- (what the pipe holds at the app's end comes fast)
local function slow()
  local t = core.now() + 20e-6
  repeat until hurry or core.now() >= t
end
local function flood(on_output)
  return assert(appstart.start { argv = { "/bin/sh", "-c", "exec yes" }, ready = "none", stdout = "capture",
    log = log, on_output = on_output })
end
local app = flood(raise)
local t0 = core.now()
local how, why = app:wait(0.5)
print("plain", tostring(how), why, string.format("%.3f", core.now() - t0), raised)
app:kill("KILL")
app:wait()
app:close()
for _, case in ipairs { { "run", raise }, { "slow", slow } } do
  raised = 0
  appstart.run(function()
    local ticks, done, gap = 0, false, 0
    appstart.spawn(function()
      local last = core.now()
      while not done do
        appstart.sleep(0.01)
        gap = math.max(gap, core.now() - last)
        last = core.now()
        ticks = ticks + 1
      end
    end)
    local app2 = flood(case[2])
    local t1 = core.now()
    local how2, why2 = app2:wait(0.5)
    done, hurry = true, true
    print(case[1], tostring(how2), why2, string.format("%.3f", core.now() - t1), raised, ticks,
      string.format("%.3f", gap))
    app2:kill("KILL")
    app2:wait()
    app2:close()
  end)
end
print("done")
