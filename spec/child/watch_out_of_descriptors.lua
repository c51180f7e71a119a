--- Run by spec/watch_spec.lua, in
-- test_watch_out_of_descriptors_raises_rather_than_report_an_end (pidfd
-- and polling; a descriptor limit of 32): with every descriptor taken,
-- watches a live process; prints "watching" or the error raised, then,
-- one descriptor freed and 0.05 s later, "calls: WHY,..." (the reasons
-- the callback was called with).
-- Arguments: "true" or "false" (use pidfds), the pid to watch.
local appstart = require "appstart"
local testing = require "appstart.testing"
local K = require "childkit"

local USE_PIDFD, PID = arg[1] == "true", tonumber(arg[2])
testing.use_pidfd(USE_PIDFD)
local held = K.take_all_descriptors()
local calls = {}
local ok, w = pcall(appstart.watch, PID, function(_, why) calls[#calls + 1] = why end)
print(ok and "watching" or w)
held[1]:close()
appstart.sleep(0.05)
print("calls: " .. table.concat(calls, ","))
if ok then w:stop() end
