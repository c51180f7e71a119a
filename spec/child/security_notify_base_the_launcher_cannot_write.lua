--- Run by spec/security_spec.lua (test_a_notify_base_the_launcher_cannot
-- _write_is_passed_over) as nobody, with XDG_RUNTIME_DIR a directory of
-- root's every user can traverse but none other write (0755): a notify
-- start is ready, its socket made under /tmp, and its app terminated.
-- Prints "ready" (or the error), the base its socket was under, then
-- "ended\t15".
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local seen = os.tmpname()
local app, err = appstart.start { argv = { "/bin/sh", "-c", 'echo "$NOTIFY_SOCKET" > "$1"; exec "$0" notify=READY=1 pause',
  F, seen }, ready_timeout = 5, log = K.quiet }
print(app and "ready" or tostring(err))
local f = io.open(seen)
print(f and f:read("l"):match("^(.*)/appstart%.[^/]*/notify$"))
if f then f:close() end
os.remove(seen)
if app then print("ended", app:terminate(1).signal) end
