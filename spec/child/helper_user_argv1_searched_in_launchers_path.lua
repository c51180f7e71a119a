--- Run by spec/helper_spec.lua, test_with_user_argv1_is_searched_in_the_launchers_path
-- (with the fixture's directory in PATH): starts "fixture" by name as
-- user UID, once with an env = without PATH and once with a PATH that
-- leads nowhere, and terminates it. Prints "ready" (or the error) for
-- each, then "left" and its children (none expected).
-- Arguments: UID, the user to start the app as (a uid, as text).
local appstart = require "appstart"
local K = require "childkit"

-- With a second argument, DIR (the fixture's directory), run with no
-- PATH: starts "fixture" by name with an env = whose PATH is DIR, as user
-- UID and with no user, and prints each one's error code (the lookup is
-- in the core's default path, where there is no fixture), or "ready".
local UID, DIR = arg[1], arg[2]

if DIR then
  for _, user in ipairs { UID, false } do
    local app, err = appstart.start { argv = { "fixture", "pause" }, user = user or nil, env = { PATH = DIR },
      ready = "none", log = K.quiet }
    print(app and "ready" or err.code)
    if app then app:terminate() end
  end
else
  for _, env in ipairs { { A = "1" }, { PATH = "/nonexistent" } } do
    local app, err = appstart.start { argv = { "fixture", "pause" }, user = UID, env = env, ready = "none" }
    print(app and "ready" or tostring(err))
    if app then app:terminate() end
  end
end
print("left", K.children_text())
