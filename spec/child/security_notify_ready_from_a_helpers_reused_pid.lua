--- Run by spec/security_spec.lua (test_a_process_that_takes_an_exited_
-- helpers_pid_cannot_say_READY) in a pid namespace of its own: a helper
-- (sh) reports the app and exits; a forger script waits for it to be
-- reaped, makes the next process take its pid (ns_last_pid) and send
-- READY=1 to the notify socket from there. Prints "helper\tPID",
-- "forged\tPID" (the pid the forger got), "result\tready" or
-- "result\tCODE", "log\tMESSAGE|MESSAGE..." (what the launcher logged)
-- and "left\tPIDS" (this process's children left at the end).
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local dir = os.getenv("D")
local function read(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end
local forger = dir .. "/forger.sh"
local f = assert(io.open(forger, "w"))
f:write(K.SH_TAKE_PID .. [=[
  while [ ! -e "$1/helper" ]; do sleep 0.01; done
  hp=$(cat "$1/helper"); sock=$(cat "$1/sock")
  while [ -e /proc/$hp ]; do sleep 0.01; done
  export TAKE='echo $$ > "$1/forged"; NOTIFY_SOCKET="$2" exec "$3" notify=READY=1'
  take_pid "$hp" forge "$1" "$sock" "$2"
]=])
f:close()
os.execute("sh " .. forger .. " " .. dir .. " " .. F .. " &")
local logged = {}
-- (the helper leads a session of its own, whose id no process can take
-- while a member lives: the app leaves it, so that the pid comes free)
local app, err = appstart.start { argv = { F, "setsid", "pause" }, pid_format = "line", ready_timeout = 2,
  kill_grace = 0.5, log = function(_, m) logged[#logged + 1] = m end,
  helper = { "/bin/sh", "-c", 'echo "$NOTIFY_SOCKET" > "$0/sock"; "$@" & echo $! >&3; echo $$ > "$0/helper"',
    dir } }
-- (the forger is done by the timeout: wait for its file all the same)
for _ = 1, 200 do if read(dir .. "/forged") then break end os.execute("sleep 0.01") end
print("helper", read(dir .. "/helper"))
print("forged", read(dir .. "/forged"))
print("result", app and "ready" or err.code)
print("log", table.concat(logged, "|"))
print("left", K.children_text())
