--- Run by spec/eventloops_spec.lua, in
-- test_a_coroutine_closed_while_it_waits_in_a_start_under_luv: under luv,
-- a coroutine waits in appstart.start (a check that never passes); a
-- timer closes it (coroutine.close) 0.2 s later. The start is abandoned
-- (its app terminated) and the wait's poll and timer, when they end, find
-- the coroutine over (luv raised "cannot resume dead coroutine" from their
-- callback, and the process ended). Prints "closed: BOOL", the app's pid
-- ("app: PID"), and once uv.run returns, "children: LIST" and
-- "descriptors: SAME|..." (those open before and after). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

local fds0 = K.fds()
local pid
local co = coroutine.create(function()
  appstart.start { argv = { F, "pause" }, ready = { check = function(app)
    pid = app.pid
    return false
  end }, ready_timeout = 2, kill_grace = 0.2, log = K.quiet }
  K.out("start returned")
end)
local t1, t2 = uv.new_timer(), uv.new_timer()
t1:start(0, 0, function()
  t1:close()
  assert(coroutine.resume(co))
end)
t2:start(200, 0, function()
  t2:close()
  K.out("closed:", tostring(coroutine.close(co)))
  K.out("app:", pid)
end)
uv.run()
collectgarbage("collect")
K.out("children:", K.children_text())
local fds = K.fds()
K.out("descriptors:", fds == fds0 and "same" or (fds0 .. " -> " .. fds))
