--- Run by spec/security_spec.lua (test_mainpid_never_moves_into_a_group_
-- whose_number_another_took) in a pid namespace of its own: a kill_mode
-- "group" app (its first process P leads the group) moves its main pid to
-- a child C by MAINPID= and exits; C leaves the group and session
-- (setsid), so that nothing holds the number P any more; an unrelated
-- process takes the pid P (ns_last_pid) and leads a session and group of
-- its own, numbered P; C then names it by MAINPID=. Prints "first\tP",
-- "main\tPID" (app.pid once C's MAINPID= has been read), "taker\tPID"
-- (the pid the unrelated process got: P if it took it), "log\tMESSAGE|..."
-- (what the launcher logged) and "taker alive\tyes|no" once the app has
-- been terminated.
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local K = require "childkit"

local dir = os.getenv("D")
local F = os.getenv("APPSTART_SPEC_FIXTURE")
local read = K.read
local function exists(path) return os.execute("test -e " .. path) == true end
local logged = {}
local app
local function await(pred, what)
  K.await(pred, what, function()
    return string.format("app.pid %s, log %s", app and app.pid, table.concat(logged, "|"))
  end)
end

appstart.run(function()
  app = assert(appstart.start {
    argv = { F, "pidfile=" .. dir .. "/first", "notify=READY=1",
      "fork", "waitfile=" .. dir .. "/leave", "setsid", "pidfile=" .. dir .. "/left", "mainpid=@" .. dir .. "/taker",
      "pause", "|", "mainpid=child", "exit=0" },
    kill_mode = "group", kill_grace = 0.5, log = function(_, m) logged[#logged + 1] = m end })
  -- (not app.pid: the move may have come before this task runs again)
  local first = tonumber(read(dir .. "/first"))
  print("first", first)
  -- moved to C, and the first process reaped: C alone holds the number
  await(function() return app.pid ~= first and not exists("/proc/" .. first) end, "the move, then the first reaped")
  os.execute("touch " .. dir .. "/leave")
  await(function() return read(dir .. "/left") ~= nil end, "C out of the session")
  -- (setsid(1) in a process that leads no group calls setsid() in place)
  local taker = io.open(dir .. "/taker.sh", "w")
  taker:write(K.SH_TAKE_PID .. [=[
    export TAKE='exec setsid sh -c "echo \$\$ > \"\$0/taker.tmp\" && mv \"\$0/taker.tmp\" \"\$0/taker\"; exec sleep 1000" "$1"'
    take_pid "$2" take "$1"
  ]=])
  taker:close()
  os.execute("sh " .. dir .. "/taker.sh " .. dir .. " " .. first .. " &")
  await(function() return read(dir .. "/taker") ~= nil end, "the taker")
  local victim = tonumber(read(dir .. "/taker"))
  print("taker", victim)
  -- C's MAINPID= read: moved, or refused (said in the log)
  await(function()
    return app.pid ~= tonumber(read(dir .. "/left"):match("%d+")) or table.concat(logged, "|"):find("MAINPID=" .. victim, 1, true)
  end, "the MAINPID= of the taker read")
  print("main", app.pid)
  print("log", table.concat(logged, "|"))
  app:terminate()
  print("taker alive", os.execute("kill -0 " .. victim .. " 2>/dev/null") and "yes" or "no")
  os.execute("kill -KILL " .. victim .. " 2>/dev/null")
end)
