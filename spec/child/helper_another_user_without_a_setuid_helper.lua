--- Run by spec/helper_spec.lua (test_an_unprivileged_launcher_without_a
-- _setuid_helper_is_told_why) as nobody, its appstart-helper a plain copy
-- (not setuid): a start as daemon fails `helper`, saying why. Prints the
-- code and the message. With a user named in arg[1] (nobody, its own),
-- the app may start: prints "started" and the app's real and effective
-- uid and gid and its groups.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local app, err = appstart.start { argv = { F, "pause" }, user = arg[1] or "daemon", ready = "none", stdout = "null",
  stderr = "null", log = K.quiet }
if app then
  print("started", K.status_field(app.pid, "Uid"), K.status_field(app.pid, "Gid"), K.status_field(app.pid, "Groups"))
  app:kill("KILL")
else
  print(err.code, err.message)
end
