--- Run by spec/supervisor_spec.lua, test_a_log_function_or_on_status_that_raises_breaks_nothing:
-- a supervisor whose log function raises (but for debug) and whose
-- service's on_status raises runs a service that says STATUS=x, READY=1
-- and exits with code 3. Prints "up" and what sv:up returned, then "wait",
-- what sv:wait returned, the service's state and its last exit; what the
-- log function raised goes to the default logger (stderr).
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()

local sv = appstart.supervisor {
  log = function(level) if level ~= "debug" then error("log boom") end end,
  services = { s = { argv = { F, "notify=STATUS=x", "notify=READY=1", "exit=3" }, restart = "no",
    on_status = function() error("on_status boom") end } },
}
print("up", sv:up())
print("wait", sv:wait(), sv:status("s").state, tostring(sv:status("s").last))
