--- Run by spec/security_spec.lua (test_an_app_run_as_another_user_gets_no_
-- terminal) on a terminal of its own (0, 1 and 2 are that terminal):
-- - starts the fixture as nobody with stdout = "inherit": the terminal
--   would reach the app, which could read what is typed there; prints
--   "inherited\tCODE\tMESSAGE" (what appstart.start returned); then with
--   stdout and stderr not given: prints "default\tFD1\tFD2" (what the
--   app's are);
-- - runs appstart-helper itself so: prints "helper\tEXIT\tSTDERR";
-- - starts it as nobody with stdout and stderr "null": the app tries
--   TIOCSTI on its descriptors 0-2 and writes what happened to RESULT.0,
--   RESULT.1, RESULT.2; writes "PID SID TTY_NR STDIN" (the app's pid,
--   session, controlling terminal and what its fd 0 is) to INFO; prints
--   "terminated\t15" once the app is terminated.
-- arg[1]: RESULT (a path prefix in a directory anyone may write to),
-- arg[2]: INFO (a file).
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()
local RESULT, INFO = arg[1], arg[2]

local app, err = appstart.start { argv = { F, "line=3:started", "pause" }, user = "nobody", ready = "fd",
  ready_timeout = 5, stdout = "inherit", log = K.quiet }
if app then app:terminate(1) end
K.out("inherited", err and err.code or "started", err and err.message or "")
-- not given: /dev/null, as stdin is
app = assert(appstart.start { argv = { F, "line=3:started", "pause" }, user = "nobody", ready = "fd",
  ready_timeout = 5, log = K.quiet })
K.out("default", K.sh("readlink /proc/" .. app.pid .. "/fd/1", "l"),
  K.sh("readlink /proc/" .. app.pid .. "/fd/2", "l"))
app:terminate(1)

local errfile = INFO .. ".helper"
local ok, _, code = os.execute(os.getenv("APPSTART_HELPER") .. " --user nobody -- " .. F .. " exit=0 3>/dev/null 2>"
  .. errfile)
K.out("helper", ok and 0 or code, ((K.read(errfile) or ""):gsub("\n", " ")))

app = assert(appstart.start { argv = { F, "tiocsti=0:" .. RESULT .. ".0", "tiocsti=1:" .. RESULT .. ".1",
  "tiocsti=2:" .. RESULT .. ".2", "line=3:tried", "pause" }, user = "nobody", ready = "fd", ready_timeout = 5,
  stdout = "null", stderr = "null", log = K.quiet })
local stat = K.read("/proc/" .. app.pid .. "/stat")
local f = io.open(INFO, "w")
f:write(app.pid, " ", stat:match("%) %S+ %d+ %d+ (%d+ %-?%d+)"), " ",
  K.sh("readlink /proc/" .. app.pid .. "/fd/0", "l"), "\n")
f:close()
print("terminated", app:terminate(1).signal)
