--- Run by spec/eventloops_spec.lua, in
-- test_closes_outside_uv_run_leave_the_users_handles_alone: under luv,
-- twice starts an app in a coroutine driven by uv.run, stops the loop and
-- terminates the app from the main thread (its handles closed while
-- uv.run is not running); between the two, uv.run runs again (the first
-- closes complete) and the user makes a timer of its own. After a full
-- collection it prints "timer closing: BOOL" (whether the user's timer
-- was closed behind its back) and "timer ran: N" after one more uv.run.
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

-- an app started under uv.run, the loop stopped once it is ready, the
-- app terminated from the main thread
local function start_and_finish_outside()
  local app
  coroutine.wrap(function()
    app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" } })
    uv.stop()
  end)()
  uv.run()
  return app:terminate().signal
end

local first = start_and_finish_outside()
uv.run("nowait") -- the first closes complete
local ran = 0
local timer = uv.new_timer()
timer:start(3600000, 0, function() end)
local second = start_and_finish_outside()
collectgarbage("collect")
collectgarbage("collect")
K.out("terminated:", first, second)
K.out("timer closing:", tostring(timer:is_closing()))
timer:stop()
timer:start(1, 0, function() ran = ran + 1 end)
uv.run()
K.out("timer ran:", ran)
