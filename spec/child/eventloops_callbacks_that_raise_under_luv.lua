--- Run by spec/eventloops_spec.lua, in
-- test_a_callback_that_raises_under_luv_is_logged_and_the_loop_goes_on:
-- under luv, starts an app whose on_exit raises and watches one with a
-- callback that raises, while another app is held; prints "held: STATE"
-- after 0.2 s and, once uv.run returns, "uv.run returned, children: PIDS"
-- (the errors are logged on stderr). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"
local held
coroutine.wrap(function()
  held = assert(appstart.start { argv = { F, "line=3:held", "pause" }, ready = "fd", stdout = "null",
    stderr = "null" })
  assert(appstart.start { argv = { F, "line=3:v", "sleep=0.05", "exit=0" }, ready = "fd",
    on_exit = function() error("bug in on_exit") end })
  local victim = assert(appstart.start { argv = { F, "line=3:w", "sleep=0.05", "exit=0" }, ready = "fd" })
  appstart.watch(victim.pid, function() error("bug in a watch callback") end)
  appstart.sleep(0.2)
  print("held: " .. held.state)
  held:terminate()
  victim:wait()
end)()
uv.run()
print("uv.run returned, children: " .. K.children_text())
