--- Run by spec/security_spec.lua (test_whoever_takes_an_ended_mains_pid_
-- in_a_cgroup_app_is_not_the_main) in a pid namespace of its own, with
-- notify_access arg[1]: apps of kill_mode = "cgroup" whose main says
-- READY=1 and STATUS=main up, then exits, the worker it forked keeping
-- the app on. Once the launcher has reaped the main, an unrelated process
-- takes its pid (ns_last_pid), sends and exits, reaped at once (all while
-- the launcher's loop is held in os.execute): it was taken for the main.
-- App "a": STATUS=hijacked with MAINPID=worker, then STOPPING=1; prints
-- "a main\tPID", "a taker\tPID" (PID if it took it), then, once the
-- launcher has read on, "a after\tPID\tSTATUS\tSTATE" (app.pid, app.status,
-- app.state). App "b" (watchdog = 2): WATCHDOG=1 every 0.4 s, a taker
-- each time, until the app ends or 10 s are over; prints "b main\tPID",
-- "b taker\tPID" (the first), "b ended\tHOW" ("b ended\tnil": never).
-- Then "log\tMESSAGE|...". "nocgroup\tWHY" where cgroup v2 cannot be used.
-- Environment: D, an empty directory for the files.
local appstart = require "appstart"
local K = require "childkit"
local core = require "appstart.core"

local dir, access = os.getenv("D"), arg[1]
local F = os.getenv("APPSTART_SPEC_FIXTURE")
local logged = {}
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- the taker: NOTIFY_SOCKET from the main's environment, the main's pid
-- taken, the datagrams sent (fixture arguments), exited and reaped
local script = dir .. "/taker.sh"
local f = assert(io.open(script, "w"))
f:write(K.SH_TAKE_PID .. [=[
  d=$1 main=$2 fixture=$3
  export NOTIFY_SOCKET="$(sed -n 's/^NOTIFY_SOCKET=//p' "$d/env")"
  rm -f "$d/taker"
  take_pid "$main" "$fixture" "$d"
]=])
f:close()
local function take(main, ...)
  local notes = {}
  for i = 1, select("#", ...) do notes[i] = q("notify=" .. select(i, ...)) end
  local take_cmd = 'exec "$0" notifyerrors=ignore pidfile="$1/taker" ' .. table.concat(notes, " ") .. " exit=0"
  assert(os.execute(string.format("TAKE=%s sh %s %s %d %s", q(take_cmd), q(script), q(dir), main, q(F))))
  return tonumber(K.read(dir .. "/taker"))
end

local function start(name, opts)
  for _, file in ipairs { "env", "worker" } do os.remove(dir .. "/" .. file) end
  local o = { argv = { F, "fork", "pidfile=" .. dir .. "/worker", "pause", "|", "env=" .. dir .. "/env",
    "notify=READY=1", "notify=STATUS=main up", "waitfile=" .. dir .. "/go-" .. name, "exit=0" },
    ready = "notify", kill_mode = "cgroup", notify_access = access, kill_grace = 0.5,
    log = function(_, m) logged[#logged + 1] = m end }
  for k, v in pairs(opts) do o[k] = v end
  local app, err = appstart.start(o)
  if not app then
    if err.code == "spawn" then print("nocgroup", err.message) return end
    error(tostring(err), 0)
  end
  K.await_path(dir .. "/env")
  K.await_path(dir .. "/worker")
  local main, worker = app.pid, tonumber(K.read(dir .. "/worker"))
  print(name .. " main", main)
  -- the main ends, and is reaped by the launcher, which sees its end
  -- then (its cgroup has the worker still)
  assert(os.execute("touch " .. q(dir .. "/go-" .. name)))
  K.await(function() return K.read("/proc/" .. main .. "/stat") == nil end, "the main reaped")
  return app, main, worker
end

appstart.run(function()
  local app, main, worker = start("a", {})
  if not app then return end
  print("a taker", take(main, "STATUS=hijacked\\nMAINPID=" .. worker, "STOPPING=1"))
  K.await(function()
    return table.concat(logged, "\n"):find("from pid " .. main, 1, true) or app.status ~= "main up"
  end, "the taker's datagrams read")
  print("a after", app.pid, app.status, app.state)
  app:terminate()

  app, main = start("b", { watchdog = 2 })
  local first
  local deadline = core.now() + 10
  repeat
    local taker = take(main, "WATCHDOG=1")
    first = first or taker
    appstart.sleep(0.4)
  until app.state == "exited" or core.now() > deadline
  print("b taker", first)
  local how = app:wait(0)
  print("b ended", how and tostring(require("appstart.errors").how(how)) .. (how.watchdog and " watchdog" or "")
    or "nil")
  if not how then app:terminate() end
  print("log", table.concat(logged, "|"))
end)
