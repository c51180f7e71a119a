--- Run by spec/security_spec.lua (test_a_notify_base_where_nothing_can_be
-- _made_is_passed_over) as root, with XDG_RUNTIME_DIR as the test sets it;
-- with "ro-tmp", in a mount namespace of its own where /tmp is made
-- read-only first. Starts a notify app that says its NOTIFY_SOCKET in
-- STATUS= before READY=1. Prints "ready" and the base its socket was
-- under, or "failed", the error's code and message.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

if arg[1] == "ro-tmp" then
  assert(os.execute("mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"), "/tmp read-only")
end
local seen
local app, err = appstart.start { argv = { "/bin/sh", "-c", 'exec "$0" "notify=STATUS=$NOTIFY_SOCKET" notify=READY=1 pause',
  F }, ready_timeout = 5, log = K.quiet, on_status = function(_, text) seen = text end }
if app then
  print("ready", seen:match("^(.*)/appstart%.[^/]*/notify$"))
  app:terminate(1)
else
  print("failed", err.code, err.message)
end
