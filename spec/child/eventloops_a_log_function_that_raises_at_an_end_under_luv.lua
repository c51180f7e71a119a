--- Run by spec/eventloops_spec.lua, in
-- test_a_log_function_that_raises_at_an_end_under_luv_leaves_no_app:
-- under luv, an app whose log function raises as its end is told, beside
-- another app held; prints "held: STATE" once the first has ended, then
-- "uv.run returned, app: STATE, children: PIDS" (the error is logged on stderr). No
-- arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"
local app
coroutine.wrap(function()
  local held = assert(appstart.start { argv = { F, "line=3:held", "pause" }, ready = "fd", stdout = "null",
    stderr = "null", log = function() end })
  -- (held outside: read in this coroutine, its end would raise here; its
  -- on_exit has its end watched, seen in a task of luv's)
  app = assert(appstart.start { argv = { F, "line=3:up", "sleep=0.2", "exit=3" }, ready = "fd",
    on_exit = function() end, log = function(_, m) if m:find("exited", 1, true) then error("log boom") end end })
  appstart.sleep(0.5)
  print("held: " .. held.state)
  held:terminate()
end)()
uv.run()
print("uv.run returned, app: " .. app.state .. ", children: " .. K.children_text())
