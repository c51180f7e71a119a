--- Run by spec/eventloops_spec.lua, in
-- test_an_on_status_that_raises_during_a_start_under_luv_is_logged_and_the_start_goes_on:
-- under luv, in a coroutine resumed from uv's callbacks (it has waited
-- once), starts an app that says STATUS=starting, then READY=1, and whose
-- on_status raises; prints "start: STATE" (or the start's error), then
-- terminates the app, and prints "uv.run returned, children: PIDS" once
-- uv.run returns (the error is logged on stderr). The app writes its pid
-- to the file named by the one argument (were this child to die, the
-- spec kills it).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"
local pidfile = assert(arg[1], "a pid file expected")
coroutine.wrap(function()
  appstart.sleep(0.01)
  -- (its output goes elsewhere: were this child to die, the app would
  -- keep the pipe the spec reads open)
  local app, err = appstart.start { argv = { F, "pidfile=" .. pidfile, "notify=STATUS=starting", "sleep=0.1",
    "notify=READY=1", "pause" }, stdout = "null", stderr = "null",
    on_status = function() error("bug in on_status") end }
  print("start: " .. (app and app.state or tostring(err)))
  if app then app:terminate() end
end)()
uv.run()
print("uv.run returned, children: " .. K.children_text())
