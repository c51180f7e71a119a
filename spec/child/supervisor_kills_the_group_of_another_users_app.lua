--- Run by spec/supervisor_spec.lua (through as_nobody_with_a_setuid_helper),
-- test_what_ignores_sigterm_in_the_group_of_another_users_app_is_killed_through_the_helper
-- (as nobody, with APPSTART_HELPER a setuid copy whose policy lets nobody
-- start apps as daemon): a supervisor brings up a service that runs as
-- daemon and forks a child that ignores SIGTERM (its pid in
-- DIR/stubborn), and stops it. Prints the app's pid and what sv:stop
-- returned, then the service's state.
-- Arguments: DIR, a directory every user may write.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]

local sv = appstart.supervisor { log = K.quiet, services = {
  d = { argv = { F, "fork", "ignore=TERM", "pidfile=" .. DIR .. "/stubborn", "pause", "|",
    "waitfile=" .. DIR .. "/stubborn", "notify=READY=1", "pause" }, user = "daemon", stdout = "null",
    stderr = "null", ready_timeout = 5, kill_grace = 0.3 } } }
assert(sv:up())
print(sv:status("d").pid, sv:stop("d"))
print(sv:status("d").state)
