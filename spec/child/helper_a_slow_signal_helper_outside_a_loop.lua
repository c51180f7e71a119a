--- Run by spec/helper_spec.lua (test_a_failed_starts_signals_through_a_
-- slow_helper_...) as nobody, APPSTART_HELPER a setuid copy whose policy
-- lets nobody start apps as daemon: starts an app as daemon that never
-- says it is ready, then names as the helper that signals it a script
-- that takes SECONDS to answer, says when each run began (DIR/runs: the
-- time and its --signal number, a line each) and exits CODE: 0 as if it
-- had signalled (the app is untouched: nobody may not signal it), 1 as a
-- failure, which is logged. The log function steps the start at each
-- warning. Arguments: DIR (every user may write it), the app's argv
-- (after "--"), ready_timeout, kill_grace, SECONDS and CODE. Prints
-- "result", the error's code and pid.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local dir, timeout, grace, seconds, code = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5]
local argv = { F }
for i = 6, #arg do argv[#argv + 1] = arg[i] end
-- (the wait for a SIGKILL that did not do its work, 10 s, shortened)
require("appstart.ending").KILL_WAIT = 0.3

local script = dir .. "/slow-helper"
local f = assert(io.open(script, "w"))
f:write("#!/bin/sh\n",
  'while [ $# -gt 0 ] && [ "$1" != --signal ]; do shift; done\n',
  'echo "$(date +%s.%N) $2" >> "$0.runs"\n',
  "sleep ", seconds, "\n",
  "exit ", code, "\n")
f:close()
assert(os.execute("chmod 755 " .. script))

local h
h = appstart.begin { argv = argv, user = "daemon", ready = "notify", ready_timeout = timeout, kill_grace = grace,
  stdout = "null", stderr = "null", log = function(level) if level == "warn" then h:step() end end }
appstart.helper_path = script
local app, err = h:wait()
print("result", app and "ready" or err.code, err and err.pid)
