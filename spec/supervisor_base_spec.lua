--- What the supervisor stands on, in the loop and the start: the running
-- task (loop.task), a wait ended by another task (task:wake), and a start
-- abandoned without waiting (h:abandon), each with a real process.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local core = S.core
local now = core.now
local F = S.fixture

local TPrimitives = {}

function TPrimitives.tearDown() S.kill_strays() end

function TPrimitives.test_loop_task_is_the_running_task_and_nil_outside()
  lu.assertNil(require("appstart.loop").task())
  local inside, spawned
  appstart.run(function()
    inside = require("appstart.loop").task()
    spawned = appstart.spawn(function() end)
  end)
  lu.assertNotNil(inside)
  lu.assertNotEquals(inside, spawned)
  lu.assertTrue(inside.done)
end

function TPrimitives.test_task_wake_ends_a_wait_as_its_deadline_would()
  local loop = require "appstart.loop"
  local got, took
  appstart.run(function()
    local waiter
    appstart.spawn(function()
      waiter = loop.task()
      local t0 = now()
      got = table.pack(loop.wait(nil, now() + 10))
      took = now() - t0
    end)
    appstart.sleep(0.05)
    waiter:wake()
    waiter:wake() -- a task no longer waiting is left alone
  end)
  lu.assertEquals(got, { n = 1, false })
  lu.assertTrue(took < 1, "woken after " .. took .. " s")
end

function TPrimitives.test_starting_abandon_terminates_without_waiting()
  local before = S.snapshot()
  local h = appstart.begin { argv = { F, "pause" }, ready = "fd", kill_grace = 2, log = S.quiet }
  local t0 = now()
  h:abandon()
  lu.assertTrue(now() - t0 < 0.5, "abandon waited")
  while not h:step() do core.wait_readable(h:pollfd() or -1, 0.01) end
  lu.assertEquals(h.err.code, "cancelled")
  -- (SIGTERM; under valgrind, whose fork child the app is until its exec,
  -- a SIGTERM that comes before the exec can be lost with valgrind's own
  -- queue, and the SIGKILL after kill_grace ends it: as in eventloops_spec's
  -- test_a_start_cancelled_or_dropped_before_its_exec_verdict_ends_its_app)
  local signals = os.getenv("APPSTART_VFORK_IS_FORK") and { [15] = true, [9] = true } or { [15] = true }
  lu.assertTrue(signals[h.err.status.signal or false], tostring(h.err.status))
  S.assert_clean(before)
end

return { TestSupervisorPrimitives = TPrimitives }
