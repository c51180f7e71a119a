--- Run by spec/helper_spec.lua (test_signal_mode_refuses_the_group_of_pid_1)
-- in a pid namespace of its own, whose pid 1 is the shell that runs this:
-- appstart-helper --signal --process-group is handed a pidfd of pid 1.
-- kill(-1) would reach every process the user may signal, so the helper
-- refuses. Prints "group\tOK\tMESSAGE\tERRNO" (the group of pid 1) and
-- "process\tOK" (pid 1 itself, SIGCONT: sent).
local core = require "appstart.core"
local signal = require "appstart.signal"

local init = assert(core.process(1))
local ok, message, errno = signal.through(init:fd(), { user = "root" }, "CONT", true)
print("group", tostring(ok), tostring(message), tostring(errno))
print("process", tostring((signal.through(init:fd(), { user = "root" }, "CONT", false))))
init:close()
