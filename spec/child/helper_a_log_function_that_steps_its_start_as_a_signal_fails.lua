--- Run by spec/helper_spec.lua
-- (test_a_log_function_that_steps_its_failed_start_as_the_helper_fails_to_signal)
-- as nobody, APPSTART_HELPER a setuid copy whose policy lets nobody start
-- apps as daemon: starts an app as daemon that never says it is ready,
-- then names a helper that does not exist, so that neither the stop's
-- SIGTERM nor its SIGKILL reaches the app (nobody may not signal it, and
-- the helper cannot run). The log function steps the start as each
-- failure is told. Prints each warning told ("warn" and its text), then
-- "result" and whether the wait raised, the error's code and pid (or what
-- it raised).
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

-- (the wait for a SIGKILL that could not be sent, 10 s, shortened)
require("appstart.ending").KILL_WAIT = 0.3

local h
local function log(level, message)
  if level == "warn" then
    print("warn", message)
    h:step()
  end
end
h = appstart.begin { argv = { F, "pause" }, user = "daemon", ready = "notify", ready_timeout = 0.3,
  kill_grace = 0.2, stdout = "null", stderr = "null", log = log }
appstart.helper_path = "/nonexistent/appstart-helper"
local ok, app, err = pcall(h.wait, h)
if not ok then
  print("result", "raised", tostring(app):sub(1, 200))
else
  print("result", "returned", app and "app" or err.code, err and err.pid)
end
