--- Run by spec/eventloops_spec.lua, in
-- test_a_coroutine_closed_while_it_waits_in_a_supervisor_under_luv: under
-- luv, a coroutine waits in sv:up() (a service whose check never passes);
-- a timer closes it (coroutine.close) 0.2 s later, and another coroutine
-- brings the supervisor down 0.2 s after that. The closed wait's handles
-- go with it: the next change the supervisor told its waiters resumed the
-- dead coroutine from a timer's callback (luv raised "cannot resume dead
-- coroutine", and the process ended). Prints "closed: BOOL", "down: BOOL"
-- and, once uv.run returns, "children: LIST" and "descriptors: SAME|..."
-- (those open before and after). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

local fds0 = K.fds()
local sv = appstart.supervisor { services = { a = { argv = { F, "pause" }, ready = { check = function()
  return false
end }, ready_timeout = 5, kill_grace = 0.2, restart = "no" } }, log = K.quiet }
local co = coroutine.create(function()
  sv:up()
  K.out("up returned")
end)
local t1, t2, t3 = uv.new_timer(), uv.new_timer(), uv.new_timer()
t1:start(0, 0, function()
  t1:close()
  assert(coroutine.resume(co))
end)
t2:start(200, 0, function()
  t2:close()
  K.out("closed:", tostring(coroutine.close(co)))
end)
t3:start(400, 0, function()
  t3:close()
  coroutine.wrap(function() K.out("down:", tostring(sv:down())) end)()
end)
uv.run()
collectgarbage("collect")
K.out("children:", K.children_text())
local fds = K.fds()
K.out("descriptors:", fds == fds0 and "same" or (fds0 .. " -> " .. fds))
