--- Scale: a thousand starts at once in one thread, within the descriptor
-- limit the launcher raises to; apps keep the soft limit they would have had.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_a_thousand_starts_at_once_all_ready_then_all_terminated()
  local before = S.snapshot()
  local N = 1000
  local apps, failures = {}, {}
  local t0 = S.core.now()
  appstart.run(function()
    for i = 1, N do
      appstart.spawn(function()
        local app, err = appstart.start { argv = { S.fixture, "line=3:n" .. i, "pause" }, ready = "fd",
          ready_timeout = 60 }
        if app then apps[#apps + 1] = app else failures[#failures + 1] = tostring(err) end
      end)
    end
  end)
  local started = S.core.now() - t0
  lu.assertEquals(failures, {})
  lu.assertEquals(#apps, N)
  for _, app in ipairs(apps) do lu.assertEquals(app.state, "ready") end
  appstart.run(function()
    for _, app in ipairs(apps) do
      appstart.spawn(function() lu.assertEquals(app:terminate(5), { signal = 15 }) end)
    end
  end)
  print(string.format("\n    %d starts at once: ready in %.2f s, all terminated after %.2f s",
    N, started, S.core.now() - t0))
  S.assert_clean(before)
end

function T.test_apps_keep_the_soft_descriptor_limit_the_launcher_had()
  -- a launcher whose soft limit (256) is below its hard one raises it for
  -- itself; the app it starts still gets 256 (the launcher: a child Lua)
  local out = S.run_child({ nofile = 256, soft_only = true }, "scale_the_soft_descriptor_limit_an_app_gets")
  local soft, child = out:match("^(%d+)%s+(%d+)")
  lu.assertNotNil(soft, out)
  lu.assertTrue(tonumber(soft) > 256, "the launcher raised its own limit: " .. out)
  lu.assertEquals(child, "256")
end

return { TestScale = T }
