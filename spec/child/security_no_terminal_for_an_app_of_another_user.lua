--- Run by spec/security_spec.lua (test_an_app_run_as_another_user_has_no_
-- terminal_to_push_keystrokes_into) on a terminal of its own: starts the
-- fixture as nobody, which tries TIOCSTI on each of its descriptors 0-2
-- and writes what happened to RESULT.0, RESULT.1, RESULT.2; writes
-- "PID SID TTY_NR STDIN" (the app's pid, session, controlling terminal
-- and what its fd 0 is) to INFO; prints "terminated\t15" once the app is
-- terminated.
-- arg[1]: RESULT (a path prefix in a directory anyone may write to),
-- arg[2]: INFO (a file).
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()
local RESULT, INFO = arg[1], arg[2]

local app = assert(appstart.start { argv = { F, "tiocsti=0:" .. RESULT .. ".0", "tiocsti=1:" .. RESULT .. ".1",
  "tiocsti=2:" .. RESULT .. ".2", "line=3:tried", "pause" }, user = "nobody", ready = "fd", ready_timeout = 5,
  log = K.quiet })
local stat = K.read("/proc/" .. app.pid .. "/stat")
local f = io.open(INFO, "w")
f:write(app.pid, " ", stat:match("%) %S+ %d+ %d+ (%d+ %-?%d+)"), " ",
  io.popen("readlink /proc/" .. app.pid .. "/fd/0"):read("l"), "\n")
f:close()
print("terminated", app:terminate(1).signal)
