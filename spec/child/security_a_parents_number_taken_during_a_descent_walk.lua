--- Run by spec/security_spec.lua (test_a_parent_whose_number_another_took_
-- during_a_walk_is_no_parent) with procfault.so preloaded. An app
-- (notify_access "all") forks a child A after an unrelated process U
-- has started; U's parent X then reads, in the launcher's walk up from
-- U, as A does (APPSTART_PROCFAULT_REDIRECT: X's number as A would have
-- it, had X exited and A taken its number between the walk's two
-- reads), so that U seems to descend from the app. U sends
-- STATUS=impostor, then A sends STATUS=after. Prints "sender\tU",
-- "younger\tyes|no" (A started in a later clock tick than U), "status\t"
-- the app's status once A's came, "log\t" the log lines.
-- Environment: D, an empty directory; APPSTART_PROCFAULT_REDIRECT, the
-- file D/redirect.
local appstart = require "appstart"
local K = require "childkit"

local dir = os.getenv("D")
local F = K.fixture()
local logged = {}

-- a process's start time, in clock ticks since boot (/proc/PID/stat)
local function start_time(pid)
  local stat = assert(K.read("/proc/" .. pid .. "/stat"))
  return tonumber(stat:match("^%d+ %b() " .. ("%S+ "):rep(19) .. "(%d+)"))
end
local function ticks_now()
  return math.floor(tonumber(K.read("/proc/uptime"):match("^[%d.]+")) * 100)
end

appstart.run(function()
  local app = assert(appstart.start { ready = "notify", notify_access = "all", kill_mode = "group",
    log = function(_, m) logged[#logged + 1] = m end,
    argv = { F, "env=" .. dir .. "/env", "notify=READY=1", "waitfile=" .. dir .. "/go", "fork",
      "pidfile=" .. dir .. "/A", "waitfile=" .. dir .. "/after", "notify=STATUS=after", "pause", "|", "pause" } })
  K.await_path(dir .. "/env")
  local socket = assert(K.read(dir .. "/env"):match("NOTIFY_SOCKET=([^\n]*)"))
  -- X and its child U: no process of the app's
  assert(os.execute(string.format("NOTIFY_SOCKET='%s' '%s' fork pidfile=%s/U waitfile=%s/send notify=STATUS=impostor"
    .. " pidfile=%s/sent pause '|' pidfile=%s/X pause >/dev/null 2>&1 &", socket, F, dir, dir, dir, dir)))
  K.await_path(dir .. "/U")
  K.await_path(dir .. "/X")
  local u, x = tonumber(K.read(dir .. "/U")), tonumber(K.read(dir .. "/X"))
  print("sender", u)
  -- A, in a clock tick after U's (start times tell no finer)
  local u_start = start_time(u)
  K.await(function() return ticks_now() > u_start + 1 end, "a later clock tick")
  os.execute("touch " .. dir .. "/go")
  K.await_path(dir .. "/A")
  local a = tonumber(K.read(dir .. "/A"))
  print("younger", start_time(a) > u_start and "yes" or "no")
  local f = assert(io.open(dir .. "/redirect", "w"))
  f:write(x, " ", a, "\n")
  f:close()
  os.execute("touch " .. dir .. "/send")
  K.await_path(dir .. "/sent")
  os.execute("touch " .. dir .. "/after")
  K.await(function() return app.status == "after" end, "A's STATUS=")
  os.remove(dir .. "/redirect")
  print("status", app.status)
  print("log", table.concat(logged, "|"))
  os.execute(string.format("kill -KILL %d %d", u, x))
  app:terminate()
end)
