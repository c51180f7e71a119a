--- Run by spec/supervisor_spec.lua (through as_nobody_with_a_setuid_helper),
-- test_an_unprivileged_supervisor_stops_an_app_of_another_user_through_the_helper and
-- test_an_app_that_cannot_be_stopped_is_let_go_of_and_said_so (as nobody,
-- with APPSTART_HELPER a setuid copy whose policy lets nobody start apps
-- as daemon): a supervisor brings up a service that runs as daemon and
-- stops it. Prints the app's pid and what sv:stop returned, then the
-- service's state, its last exit's code and message (or signal), then
-- the supervisor's log lines ("level: message").
-- Argument: "nopidfd" to take the fallback without pidfds.
local appstart = require "appstart"
if arg[1] == "nopidfd" then require("appstart.core").testing.use_pidfd(false) end
local K = require "childkit"

local F = K.fixture()

local lines = {}
local sv = appstart.supervisor { log = function(l, m) lines[#lines + 1] = l .. ": " .. m end, services = {
  d = { argv = { F, "notify=READY=1", "pause" }, user = "daemon", stdout = "null", stderr = "null",
    ready_timeout = 5 } } }
assert(sv:up())
local pid = sv:status("d").pid
print(pid, sv:stop("d"))
local st = sv:status("d")
print(st.state, st.last and st.last.code, st.last and (st.last.message or st.last.signal))
print(table.concat(lines, "\n"))
