--- Run by spec/helper_spec.lua (test_an_unprivileged_launcher_without_a
-- _setuid_helper_is_told_why) as nobody, its appstart-helper a plain copy
-- (not setuid): a start as daemon fails `helper`, saying why. Prints the
-- code and the message.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local app, err = appstart.start { argv = { F, "pause" }, user = "daemon", ready = "none", stdout = "null",
  stderr = "null", log = K.quiet }
if app then
  print("started", app.pid)
  app:kill("KILL")
else
  print(err.code, err.message)
end
