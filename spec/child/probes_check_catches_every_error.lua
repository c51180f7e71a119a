--- Run by spec/probes_spec.lua, in
-- test_a_check_function_that_catches_the_error_of_its_wait_does_not_hold_the_run:
-- inside appstart.run (argument "run") or under luv ("luv"), a start
-- whose check function retries on any error, its waits inside the
-- pcall, times out. Prints "timeout", "done" once the run (uv.run) has
-- returned, and "closed" when the check's to-be-closed variable ran (its
-- task was closed, not left). Under cqueues ("cqueues"), which cannot
-- close the check's task, its waits raise again and again: the check
-- counts them for 1 s after its start failed and then returns; printed
-- last, that count (a spin made tens of thousands).
local appstart = require "appstart"
local K = require "childkit"
local core = require "appstart.core"

local F = K.fixture()
local code, closed, failed_at
local raises = 0
local function scenario()
  local _, err = appstart.start { argv = { F, "pause" }, ready_timeout = 0.3, log = K.quiet,
    ready = { check = function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      while not failed_at or core.now() < failed_at + 1 do
        pcall(function()
          local ok, why = pcall(appstart.sleep, 0.02)
          if not ok then raises = raises + 1; error(why, 0) end
          error("not yet")
        end)
      end
      return true
    end } }
  code = err and err.code
  failed_at = core.now()
end
if arg[1] == "luv" then
  require "appstart.luv"
  coroutine.wrap(scenario)()
  require("luv").run()
elseif arg[1] == "cqueues" then
  local cq = require("cqueues").new()
  cq:wrap(scenario)
  assert(cq:loop())
else
  appstart.run(scenario)
end
print(code, "done", closed and "closed" or "left", raises)
