--- Run by spec/security_spec.lua (test_a_datagram_from_whoever_takes_a_
-- moved_mains_pid_is_refused) in a pid namespace of its own: an app moves
-- its main pid by MAINPID= to its child C, and its first process exits
-- (C's parent is then this namespace's pid 1, which reaps it). While the
-- launcher is busy (its loop held in os.execute), C ends and is reaped,
-- and an unrelated process takes the pid C (ns_last_pid), forks a victim
-- and sends STATUS=hijacked and MAINPID=victim. Prints "main\tC",
-- "taker\tPID" (C if it took it), "victim\tPID", then, once the launcher
-- has read on: "pid\tPID" (app.pid), "status\tTEXT", "ended\tHOW" (or
-- "ended\tnil" when the app did not end within 5 s), "log\tMESSAGE|...".
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local K = require "childkit"

local dir = os.getenv("D")
local F = os.getenv("APPSTART_SPEC_FIXTURE")
local read = K.read
local logged = {}
local app
local function await(pred, what)
  K.await(pred, what, function()
    return string.format("app.pid %s, log %s", app and app.pid, table.concat(logged, "|"))
  end)
end

appstart.run(function()
  app = assert(appstart.start {
    argv = { F, "notify=READY=1", "fork", "pidfile=" .. dir .. "/main", "env=" .. dir .. "/env",
      "waitfile=" .. dir .. "/end", "exit=0", "|", "mainpid=child", "waitfile=" .. dir .. "/moved", "exit=0" },
    log = function(_, m) logged[#logged + 1] = m end })
  await(function() return read(dir .. "/main") ~= nil and read(dir .. "/env") ~= nil end, "C")
  local main = tonumber(read(dir .. "/main"))
  print("main", main)
  await(function() return app.pid == main end, "the move")
  os.execute("touch " .. dir .. "/moved")
  -- the loop held: C ends, is reaped (not by the launcher), and its pid
  -- is taken by a process that sends as C did
  local taker = io.open(dir .. "/taker.sh", "w")
  taker:write(K.SH_TAKE_PID .. [=[
    d=$1 main=$2 fixture=$3
    export NOTIFY_SOCKET="$(sed -n 's/^NOTIFY_SOCKET=//p' "$d/env")"
    touch "$d/end"
    while [ -e /proc/$main ]; do sleep 0.01; done
    export TAKE='exec "$0" fork pidfile="$1/victim" pause "|" notify=STATUS=hijacked mainpid=child pidfile="$1/taker" pause'
    take_pid "$main" "$fixture" "$d" &
    while [ ! -e "$d/taker" ]; do sleep 0.01; done
  ]=])
  taker:close()
  assert(os.execute(string.format("sh %s/taker.sh %s %d %s", dir, dir, main, F)))
  local taken, victim = tonumber(read(dir .. "/taker")), tonumber(read(dir .. "/victim"))
  print("taker", taken)
  print("victim", victim)
  local how = app:wait(5)
  print("pid", app.pid)
  print("status", app.status)
  print("ended", how and tostring(require("appstart.errors").how(how)) or "nil")
  print("log", table.concat(logged, "|"))
  os.execute(string.format("kill -KILL %d %d 2>/dev/null", victim, taken))
  if not how then app:terminate(0) end
end)
