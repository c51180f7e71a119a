--- What the supervisor stands on, in the loop: the running task
-- (loop.task) and a wait ended by another task (task:wake).
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local now = S.core.now

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

return { TestSupervisorPrimitives = TPrimitives }
