--- Run by spec/security_spec.lua (test_a_forking_daemon_cannot_name_a_
-- child_of_whoever_takes_its_starters_pid) in a pid namespace of its own:
-- starts a forking daemon whose started process exits at once; an
-- unrelated tree (taker.sh) then takes that pid (ns_last_pid) and starts
-- a victim there, which the daemon part names in its pid file. Prints
-- "started\tPID" (the daemon's started process), "taker\tPID" (the pid
-- the unrelated tree got), "result\tready" or "result\tCODE\tMESSAGE" and
-- "victim alive\tyes" (or "no").
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local K = require "childkit"

local dir = os.getenv("D")
local function read(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end
local function write(p, text) local f = assert(io.open(p, "w")) f:write(text) f:close() end
-- the unrelated tree: once the started process is gone, its next fork
-- takes that pid (ns_last_pid) and starts the victim there
write(dir .. "/taker.sh", K.SH_TAKE_PID .. [=[
  while [ ! -s "$1/started" ]; do sleep 0.01; done
  p=$(cat "$1/started")
  while [ -e /proc/$p ]; do sleep 0.01; done
  export TAKE='echo $$ > "$1/taker"; sleep 1001 & echo $! > "$1/victim"; echo $! > "$1/victim.fifo"; wait'
  take_pid "$p" take "$1"
]=])
-- the forking daemon: its daemon part names the victim. Nothing else
-- in the namespace forks until the taker has: the daemon part waits
-- in a read of a fifo (a shell builtin), the launcher in its looks at
-- the pid file
write(dir .. "/daemon.sh", [=[
  echo $$ > "$1/started"
  setsid sh -c 'read v < "$1/victim.fifo"; echo "$v" > "$1/d.tmp"; mv "$1/d.tmp" "$1/daemon.pid"; sleep 30' d "$1" \
    </dev/null >/dev/null 2>&1 &
  exit 0
]=])
assert(os.execute("mkfifo " .. dir .. "/victim.fifo"))
os.execute("sh " .. dir .. "/taker.sh " .. dir .. " &")
local app, err = appstart.start { argv = { "/bin/sh", dir .. "/daemon.sh", dir }, ready_timeout = 5,
  kill_grace = 0.5, ready = { forks = true, pid_file = dir .. "/daemon.pid" }, log = function() end }
local victim = tonumber(read(dir .. "/victim") or "")
print("started", read(dir .. "/started"))
print("taker", read(dir .. "/taker"))
print("result", app and "ready" or err.code, err and err.message)
print("victim alive", victim and os.execute("kill -0 " .. victim .. " 2>/dev/null") and "yes" or "no")
if app then app:close() end
