--- Run by spec/probes_spec.lua, in
-- test_a_check_function_that_catches_the_error_of_its_wait_does_not_hold_the_run:
-- inside appstart.run (argument "run") or under luv ("luv"), a start
-- whose check function retries on any error, its waits inside the
-- pcall, times out. Prints "timeout", "done" once the run (uv.run) has
-- returned, and "closed" when the check's to-be-closed variable ran (its
-- task was closed, not left).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local code, closed
local function scenario()
  local _, err = appstart.start { argv = { F, "pause" }, ready_timeout = 0.3, log = K.quiet,
    ready = { check = function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      while true do
        pcall(function()
          appstart.sleep(0.02)
          error("not yet")
        end)
      end
    end } }
  code = err and err.code
end
if arg[1] == "luv" then
  require "appstart.luv"
  coroutine.wrap(scenario)()
  require("luv").run()
else
  appstart.run(scenario)
end
print(code, "done", closed and "closed" or "left")
