--- Run by spec/eventloops_spec.lua, in
-- test_apps_and_a_supervisor_finished_from_the_main_thread_after_uv_run:
-- under luv, starts an app and brings a supervisor up in coroutines
-- driven by uv.run, stops the loop, then terminates the app and takes the
-- supervisor down from the main thread (their handles closed while uv.run
-- is not running), prints "finished: SIGNAL DOWN" and exits: at exit
-- luv's finalizer ran the handles' pending close callbacks after their
-- own finalizers, which killed the process (SIGSEGV). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"
local app
local sv = appstart.supervisor { log = function() end,
  services = { a = { argv = { F, "notify=READY=1", "pause" } } } }
coroutine.wrap(function()
  app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" } })
  assert(sv:up())
end)()
local t = uv.new_timer()
t:start(10, 10, function()
  if app and sv:status("a").state == "ready" then
    t:close()
    uv.stop()
  end
end)
uv.run()
K.out("finished:", app:terminate().signal, tostring(sv:down()))
