--- Run by spec/faults_spec.lua, in
-- test_a_pid_files_pid_that_cannot_be_checked_says_so, with procfault.so
-- preloaded: every read of another process's /proc/PID/status fails for
-- want of descriptors. A forking daemon's start (ready = {forks = true})
-- reads the daemon's pid from its file and cannot check it: at
-- ready_timeout it fails, saying so, the daemon (not proven) left running.
-- Prints "forks", what the start returned, its code and message.
-- Arguments: DIR, a directory of the test's own (the daemon's pid in
-- DIR/pid).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]
local app, err = appstart.start { argv = { F, "fork", "setsid", "pidfile=" .. DIR .. "/pid", "pause", "|" },
  ready = { forks = true, pid_file = DIR .. "/pid" }, ready_timeout = 0.5, log = K.quiet,
  stdout = "null", stderr = "null" }
K.out("forks", tostring(app), err and err.code, err and err.message)
