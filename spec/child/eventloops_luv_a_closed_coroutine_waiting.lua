--- Run by spec/eventloops_spec.lua, under luv: a coroutine waits, and a
-- timer closes it (coroutine.close) 0.2 s later; what it waited in lets
-- go of it (luv raised "cannot resume dead coroutine" from a callback of
-- that wait's, and the process ended). Prints "closed: BOOL", then what
-- the mode prints, and once uv.run returns, "children: LIST" and
-- "descriptors: SAME|..." (those open before and after).
-- Argument, the mode:
--   start       it waits in appstart.start (a check that never passes):
--               the start is abandoned, its app terminated; prints
--               "app: PID"
--   supervisor  it waits in sv:up() (a service whose check never passes);
--               another coroutine brings the supervisor down 0.2 s after
--               the close, its next change (it woke the dead coroutine);
--               prints "down: BOOL"
--   app         it waits in app:wait() (an app that exits 0.6 s after its
--               start); the close lets go of the app, which is collected
--               at once (its pidfd closed under the wait's poll handle,
--               luv's loop never ended, and a later app whose pidfd had
--               that number was never seen to end); then a second app,
--               which exits 0.3 s after its start, is waited for; prints
--               "second: HOW"
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

local mode = arg[1]
local fds0 = K.fds()
local pid, sv
local check = { check = function(app)
  pid = app.pid
  return false
end }
local co
if mode == "start" then
  co = coroutine.create(function()
    appstart.start { argv = { F, "pause" }, ready = check, ready_timeout = 2, kill_grace = 0.2, log = K.quiet }
    K.out("start returned")
  end)
elseif mode == "app" then
  co = coroutine.create(function()
    local app = assert(appstart.start { argv = { F, "sleep=0.6", "exit=0" }, ready = "none", log = K.quiet })
    pid = app.pid
    app:wait()
    K.out("wait returned")
  end)
else
  sv = appstart.supervisor { services = { a = { argv = { F, "pause" }, ready = check, ready_timeout = 5,
    kill_grace = 0.2, restart = "no" } }, log = K.quiet }
  co = coroutine.create(function()
    sv:up()
    K.out("up returned")
  end)
end
local t1, t2, t3 = uv.new_timer(), uv.new_timer(), uv.new_timer()
t1:start(0, 0, function()
  t1:close()
  assert(coroutine.resume(co))
end)
t2:start(200, 0, function()
  t2:close()
  K.out("closed:", tostring(coroutine.close(co)))
  if mode == "start" then K.out("app:", pid) end
  if mode == "app" then
    collectgarbage("collect")
    collectgarbage("collect")
    coroutine.wrap(function()
      local app = assert(appstart.start { argv = { F, "sleep=0.3", "exit=0" }, ready = "none", log = K.quiet })
      K.out("second:", tostring(app:wait()))
    end)()
  end
end)
t3:start(400, 0, function()
  t3:close()
  if sv then coroutine.wrap(function() K.out("down:", tostring(sv:down())) end)() end
end)
uv.run()
collectgarbage("collect")
K.out("children:", K.children_text())
local fds = K.fds()
K.out("descriptors:", fds == fds0 and "same" or (fds0 .. " -> " .. fds))
