--- Run by spec/eventloops_spec.lua, in
-- test_a_wait_that_failed_under_luv_is_not_woken_later: a coroutine
-- driven by uv.run waits on a descriptor uv cannot poll (a regular file:
-- the wait raises), then yields to the user's own code; a callback of
-- uv's on the main thread then starts an app whose output appstart reads
-- (a first descriptor in its own poll set, which wakes the waits under
-- luv), and cancels a task of appstart.luv's whose wait failed so too.
-- Prints "failed: BOOL BOOL", "resumed: N" (how often appstart resumed the
-- coroutines at the user's yields: a failed wait stayed among those woken,
-- or the task's cancel ended it) and "app: CODE". In a process of its own:
-- luv leaks the handle of
-- a poll it could not start (160 bytes, its own), which the leak checkers
-- of make sanitize and make valgrind would report. No arguments.
local appstart = require "appstart"
local K = require "childkit"
local loop = require "appstart.loop"
local core = require "appstart.core"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"

local had = {}
for _, n in ipairs(require("appstart.testing").fds()) do had[n] = true end
local f = assert(io.open(arg[0]))
local fd
for _, n in ipairs(require("appstart.testing").fds()) do
  if not had[n] then fd = n end
end
local failed, resumed = {}, 0
local function fails_then_yields()
  failed[#failed + 1] = tostring(not pcall(loop.wait, fd, core.now() + 0.1))
  while true do
    coroutine.yield("mine")
    resumed = resumed + 1
  end
end
local co = coroutine.create(fails_then_yields)
assert(coroutine.resume(co))
local task
coroutine.wrap(function() task = loop.call(fails_then_yields) end)()
local app
local t = uv.new_timer()
t:start(50, 0, function()
  t:close()
  task:cancel()
  app = assert(appstart.start { argv = { F, "sleep=0.1", "exit=0" }, ready = "none", stdout = "capture",
    log = K.quiet })
  local t2 = uv.new_timer()
  t2:start(100, 0, function() t2:close(); app:wait(5) end)
end)
uv.run()
f:close()
K.out("failed:", table.unpack(failed))
K.out("resumed:", resumed)
K.out("app:", app.how.code)
