--- Run by spec/eventloops_spec.lua, in
-- test_descriptors_released_outside_uv_run_leave_a_clean_exit: under luv,
-- a coroutine driven by uv.run waits on an app of its own while the main
-- thread's app (its output read in appstart's own poll set, which that
-- wait polls too) runs; the loop is stopped, and from the main thread the
-- main thread's app is terminated (the poll set closed: its descriptor
-- released from luv's poll handles, outside uv.run), then the
-- coroutine's app (its pidfd released so). Prints "terminated: SIGNAL
-- SIGNAL" and exits: at exit, the close guard's walk met a handle luv had
-- finalized first (a release's timer, made after the guard) and luv ended
-- the process, status 255. No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

local talker = assert(appstart.start { argv = { F, "pause" }, ready = "none", stdout = "capture" })
local paused
coroutine.wrap(function()
  paused = assert(appstart.start { argv = { F, "pause" }, ready = "none" })
  paused:wait(5)
end)()
local t = uv.new_timer()
t:start(100, 0, function() t:close(); uv.stop() end)
uv.run()
K.out("terminated:", talker:terminate(1).signal, paused:terminate(1).signal)
