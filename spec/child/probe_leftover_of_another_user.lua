--- Run by spec/probes_spec.lua,
-- test_an_exec_probes_command_that_cannot_be_killed_is_let_go_of_after_kill_wait
-- (as nobody): a start whose exec probe's first run execs a setuid-root
-- copy of the fixture, which becomes root (nobody may no longer signal
-- it), writes its pid to MARK and stays; the next run exits 0 (FLAG, in a
-- directory nobody may write, tells them apart). Prints "ready" and the
-- seconds the start took, or the error, then the log lines ("level:
-- message"); the app is terminated.
-- Arguments: SUID_FIXTURE DIR.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local suid, dir = arg[1], arg[2]

local lines = {}
local t0 = core.now()
local app, err = appstart.start { argv = { F, "pause" }, ready_timeout = 30, probe_timeout = 0.3,
  ready = { exec = { "/bin/sh", "-c",
    'if [ -e "$1/flag" ]; then exit 0; fi; : > "$1/flag"; exec "$2" root pidfile="$1/mark" pause', "sh", dir, suid } },
  log = function(l, m) lines[#lines + 1] = l .. ": " .. m end }
if app then
  print("ready", string.format("%.3f", core.now() - t0))
  app:terminate()
else
  print("failed", err.code, err.message)
end
print(table.concat(lines, "\n"))
