--- Run by spec/watch_spec.lua with oldpidfd.so preloaded (pidfd_open as
-- Linux 5.3 to 6.14 had it: EINVAL for a number a process group still
-- uses as its id, its leader reaped): appstart.watch of that leader's pid.
-- Prints, tab-separated:
--   watch OK ERR        whether appstart.watch returned, or what it raised
--   calls WHY...        what its function was called with, after a wait
--   group LEADER        the group's id (the spec ends what is left in it)
local appstart = require "appstart"

-- a group whose leader, the shell, has exited and been reaped, and whose
-- member, the sleep, runs on
local p = assert(io.popen("exec setsid sh -c 'sleep 30 >/dev/null 2>&1 & echo $$'"))
local leader = tonumber(p:read("l"))
p:close()
print("group", leader)
local calls = {}
local ok, err = pcall(appstart.watch, leader, function(_, why) calls[#calls + 1] = why end)
print("watch", tostring(ok), ok and "" or tostring(err))
appstart.sleep(0.05)
print("calls", table.concat(calls, ","))
