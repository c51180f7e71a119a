--- Run by spec/helper_spec.lua, test_a_string_of_digits_is_a_uid_though_a_user_has_that_name
-- (as root, seeing an /etc/passwd where a user named "4242" has uid 5000):
-- starts the fixture with user = "4242", which is uid 4242 (as
-- appstart-helper reads it), not that user. Prints the start's outcome
-- ("ready" or the error's code and message), then the app's uids.
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local app, err = appstart.start { argv = { K.fixture(), "pause" }, user = "4242", ready = "none",
  stdout = "null", stderr = "null", log = K.quiet }
if not app then
  print(err.code, err.message)
  if err.pid then os.execute("kill -9 " .. err.pid) end
  return
end
print("ready")
local f = io.open("/proc/" .. app.pid .. "/status")
print(f:read("a"):match("\nUid:%s*([^\n]*)"))
f:close()
app:kill("KILL")
app:wait(5)
