--- Run by spec/eventloops_spec.lua, in
-- test_CONTEXT_a_loops_supervisor_called_by_a_main_threads_callback_stays_the_loops:
-- under cqueues or luv (the first argument), a coroutine of the loop
-- brings a supervisor up (made there, or by the main thread before the
-- loop: the second argument, "loop" or "main"; either way the loop drives
-- it, it is the loop's) and sleeps 1.5 s; the main thread's
-- app ends meanwhile, its end served by that sleep, and its on_exit (the
-- main thread's, run in a coroutine of that loop's) takes the supervisor
-- down and brings it up again. The service's new app exits 0.4 s later.
-- Prints each event of the supervisor's, "slept" once the sleep is over,
-- then "done: DOWN" after sv:down(). Under luv the down polled the
-- supervisor's descriptor beside its driver's uv poll handle (EEXIST out
-- of a uv callback: the process ended, status 255); under both, the up
-- left no driver in the loop, so the app's exit went unseen until the
-- next call.
local appstart = require "appstart"
local K = require "childkit"

local context = assert(arg[1], "cqueues or luv")
local made_by = assert(arg[2], "loop or main")
local F = K.fixture()
local sv
local function make()
  sv = appstart.supervisor { log = K.quiet,
    on_event = function(name, state) K.out("event:", name, state) end,
    services = { svc = { argv = { F, "notify=READY=1", "sleep=0.4", "exit=1" }, restart = "no",
      kill_grace = 0.5 } } }
end
if made_by == "main" then make() end
local main_app = assert(appstart.start { argv = { F, "sleep=0.3", "exit=0" }, ready = "none", log = K.quiet,
  on_exit = function()
    K.out("on_exit:", tostring(sv:down()), tostring(sv:up()))
  end })

local function in_loop()
  if made_by == "loop" then make() end
  assert(sv:up())
  appstart.sleep(1.5)
  K.out("slept")
end

if context == "cqueues" then
  local cq = require("cqueues").new()
  cq:wrap(in_loop)
  assert(cq:loop(10))
else
  require "appstart.luv"
  coroutine.wrap(in_loop)()
  require("luv").run()
end
K.out("done:", tostring(sv:down()))
main_app:close()
