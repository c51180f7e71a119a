--- Run by spec/forks_spec.lua
-- (test_a_daemon_whose_session_takes_a_gone_leaders_pid_is_taken) in a pid
-- namespace of its own, where /proc/sys/kernel/ns_last_pid sets the next
-- pid. An app of kill_mode "group" leads a session and group of its own,
-- which the launcher remembers (an orphan adopted in it is that app's, no
-- other start's daemon); it ends. A forking daemon's start then has its
-- intermediate process take that pid for a session of its own (setsid),
-- fork the daemon there and exit: that session is this start's, not the
-- gone app's, and the daemon is taken. Prints "leader PID" and "daemon
-- SESSION STATE|CODE MESSAGE".
local appstart = require "appstart"

local F = assert(os.getenv("APPSTART_SPEC_FIXTURE"))
local dir = assert(arg[1])

local leader = assert(appstart.start { argv = { F, "pause" }, ready = "none", kill_mode = "group" })
local pid = leader.pid
leader:terminate(5)
print("leader " .. pid)
local pid_file, go = dir .. "/daemon.pid", dir .. "/go"
-- the intermediate, once the start has begun (the launcher's look at the
-- sessions it remembers, as it begins, done: a session of that pid made
-- meanwhile would be kept): the next pid after the write (a builtin's, no
-- fork), a session of its own (not a group leader: setsid(1) does not
-- fork), the daemon forked in it, its pid written, then gone
local script = string.format("while [ ! -e %s ]; do sleep 0.01; done; echo %d > /proc/sys/kernel/ns_last_pid; "
  .. "setsid sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"' sh %s & "
  .. "wait $!; while [ ! -e %s ]; do sleep 0.01; done; exit 0", go, pid - 1, pid_file, pid_file)
local h = appstart.begin { argv = { "/bin/sh", "-c", script }, ready = { forks = true, pid_file = pid_file },
  ready_timeout = 10 }
assert(io.open(go, "w")):close()
while not h:step() do appstart.sleep(0.005) end
local app, err = h.app, h.err
if app then
  local session = io.open("/proc/" .. app.pid .. "/stat"):read("l"):match("^%d+ %b() %S+ %d+ %d+ (%d+)")
  print("daemon " .. session .. " " .. app.state)
  app:terminate(5)
else
  print("daemon - " .. err.code .. " " .. err.message)
end
