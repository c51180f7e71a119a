--- Run by spec/eventloops_spec.lua, in
-- test_CONTEXT_a_main_threads_supervisor_brought_up_by_a_callback_beside_a_loops_call:
-- under cqueues or luv (the argument), the main thread brings one service
-- of a supervisor up; the end of an app of the main thread's, served by
-- a coroutine of the loop, runs its on_exit there, which brings a slow
-- second service up (the main thread's call: it waits on the
-- supervisor's descriptor in that loop); meanwhile that coroutine calls
-- sv:status(), which moves the supervisor's driver into the loop, beside
-- that wait on the same descriptor (under luv the driver's own uv poll
-- handle on it failed, EEXIST out of a uv callback: the process ended,
-- status 255, the services left running). Prints "status: STATE", "up:
-- TRUE", "slept", "down: TRUE".
local appstart = require "appstart"
local K = require "childkit"

local context = assert(arg[1], "cqueues or luv")
local F = K.fixture()
-- (their output not the spec's pipe: one left running holds it no longer)
local sv = appstart.supervisor { log = K.quiet, services = {
  a = { argv = { F, "notify=READY=1", "pause" }, kill_grace = 0.5, stdout = "null", stderr = "null" },
  slow = { argv = { F, "sleep=1", "notify=READY=1", "pause" }, kill_grace = 0.5, stdout = "null",
    stderr = "null" } } }
assert(sv:up("a"))
local main_app = assert(appstart.start { argv = { F, "sleep=0.2", "exit=0" }, ready = "none", log = K.quiet,
  on_exit = function() K.out("up:", tostring(sv:up("slow"))) end })

local function in_loop()
  appstart.sleep(0.5)
  K.out("status:", sv:status("slow").state)
  appstart.sleep(1.5)
  K.out("slept")
end

if context == "cqueues" then
  local cq = require("cqueues").new()
  cq:wrap(in_loop)
  assert(cq:loop(2.5))
else
  require "appstart.luv"
  local uv = require "luv"
  coroutine.wrap(in_loop)()
  local t = uv.new_timer()
  t:start(2500, 0, function() uv.stop() end)
  t:unref()
  uv.run()
  t:close()
end
K.out("down:", tostring(sv:down()))
main_app:close()
