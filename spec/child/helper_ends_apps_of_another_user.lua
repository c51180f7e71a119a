--- Run by spec/helper_spec.lua, test_an_unprivileged_launcher_ends_the_apps_it_starts_as_another_user
-- (through assert_ends_its_apps; as nobody, with APPSTART_HELPER a setuid
-- or file-capabilities copy whose policy lets nobody start apps as
-- daemon): starts apps as daemon and ends them every way a launcher does
-- (app:kill of a group, a failed start, a group app that dies before it
-- is ready, app:reload, app:terminate, a group whose leader ended, a
-- watchdog and a failed start inside a loop), and tries to signal root's
-- process and to signal as bin. Prints a tab-separated line for each:
-- "probe" (app:kill(0)), "kill", "timeout", "died", "reload", "root", "bin", "terminate",
-- "ended", "watchdog", "timeout2", "reload2" (app:reload of a notify app,
-- waited for), "cancelled" (app:kill and app:reload in
-- tasks cancelled as they wait for the helper), "terminate2",
-- "terminate3" (app:terminate in a task so cancelled), then "left",
-- whether its descriptors are as they were and its children (none
-- expected).
-- Arguments: DIR, a directory every user may write (the fixtures' pid
-- files go there); ROOTPID, a process of root's.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()

local signal = require "appstart.signal"
local DIR, ROOTPID = arg[1], tonumber(arg[2])
local function start(argv, more)
  local opts = { argv = argv, user = "daemon", stdout = "null", stderr = "null", ready_timeout = 5,
    log = K.quiet }
  for k, v in pairs(more or {}) do opts[k] = v end
  return appstart.start(opts)
end
local fds = K.fds()
-- app:kill, kill_mode "group": the app and what it forked into its group
-- (ready once its child is under way: not killed before it says so)
local app = assert(start({ F, "fork", "pidfile=" .. DIR .. "/forked", "pause", "|",
  "waitfile=" .. DIR .. "/forked", "notify=READY=1", "pause" }, { kill_mode = "group" }))
-- (signal 0 first: whether one could be sent, through the helper too; it
-- said the last line of the helper's usage)
print("probe", app:kill(0))
print("kill", app.pid, app:kill("KILL"), app:wait(5).signal)
-- a start that fails: its app is terminated all the same
local _, err = start({ F, "pidfile=" .. DIR .. "/slow", "pause" }, { ready_timeout = 0.3 })
print("timeout", err.code, err.pid)
-- a group app that dies before it is ready: what it left in its group
-- is ended through the helper by the group's id
_, err = start({ F, "fork", "pidfile=" .. DIR .. "/orphan", "pause", "|", "waitfile=" .. DIR .. "/orphan",
  "exit=3" }, { kill_mode = "group" })
print("died", err.code)
-- app:reload: its signal goes the same way; it comes from the caller's
-- real uid (the helper takes daemon's as its effective uid only, so no
-- process of daemon's can signal or trace the helper)
app = assert(start({ F, "trapfrom=HUP:" .. DIR .. "/hup", "notify=READY=1", "pause" }))
print("reload", app:reload())
-- daemon may not signal root's process: the helper, as daemon, neither
local root = assert(core.process(ROOTPID))
print("root", signal.send(root, { user = "daemon" }, "TERM"))
-- nor may nobody's launcher have it signal as a user it may not start
-- apps as
print("bin", signal.send(app._proc, { user = "bin" }, "TERM"))
root:close()
print("terminate", app:terminate(1).signal)
-- kill_mode "group", the app ends by itself: what it left in its
-- group (its leader gone) goes too, through the helper by group id
app = assert(start({ F, "fork", "pidfile=" .. DIR .. "/left", "pause", "|", "waitfile=" .. DIR .. "/left",
  "notify=READY=1", "sleep=0.2" }, { kill_mode = "group" }))
print("ended", app:wait(5).code)
-- inside a loop: a watchdog's SIGABRT, and a failed start's SIGTERM
appstart.run(function()
  local a = assert(start({ F, "notify=READY=1", "pause" }, { watchdog = 0.3 }))
  local how = a:wait(5)
  print("watchdog", how.signal, how.watchdog)
  local _, e = start({ F, "pidfile=" .. DIR .. "/slow2", "pause" }, { ready_timeout = 0.3 })
  print("timeout2", e.code, e.pid)
  -- app:reload of a notify app, waited for: its RELOADING=1 and READY=1
  -- come while the helper sends its signal (they were read before the
  -- reload waited for them, and it timed out)
  local r = assert(start({ F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "notify=RELOADING=1",
    "notify=READY=1", "pause" }, { ready_timeout = 2 }))
  local reloaded, not_reloaded = r:reload()
  print("reload2", reloaded, not_reloaded and not_reloaded.code, r.state, r:terminate(1).signal)
  -- tasks cancelled while they wait for the helper's verdict: "cancelled"
  -- (the helper ended). The helper's path is a wrapper that, while a
  -- token directory is left, takes one and hangs (so the cancel is
  -- sure to come during the wait), and runs the helper otherwise.
  local wrapper = DIR .. "/hanging-helper"
  local f = assert(io.open(wrapper, "w"))
  f:write("#!/bin/sh\nfor t in ", DIR, "/hang.*; do\n",
    "  if rmdir \"$t\" 2>/dev/null; then exec sleep 30; fi\ndone\n",
    "exec ", appstart.helper_path, " \"$@\"\n")
  f:close()
  assert(os.execute("chmod 755 " .. wrapper))
  local function hang(...)
    for _, name in ipairs { ... } do assert(os.execute("mkdir " .. DIR .. "/hang." .. name)) end
    -- until each is taken: a wrapper that took one hangs in its wait
    for _, name in ipairs { ... } do
      while os.rename(DIR .. "/hang." .. name, DIR .. "/hang." .. name) do appstart.sleep(0.01) end
    end
  end
  local real = appstart.helper_path
  local b = assert(start({ F, "notify=READY=1", "pause" }, { reload_signal = "CONT" }))
  local c = assert(start({ F, "notify=READY=1", "pause" }))
  appstart.helper_path = wrapper
  local got = {}
  local killer = appstart.spawn(function() got.kill = { b:kill("CONT") } end)
  local reloader = appstart.spawn(function()
    local ok, why = b:reload()
    got.reload = { ok, why and why.code }
  end)
  hang("kill", "reload")
  killer:cancel()
  reloader:cancel()
  while not (killer.done and reloader.done) do appstart.sleep(0.01) end
  print("cancelled", got.kill[1], got.kill[2], got.reload[1], got.reload[2])
  print("terminate2", b:terminate(1).signal)
  -- app:terminate in a task so cancelled: it ends the app all the same
  -- (the SIGTERM goes again), as it does when the cancel comes during the
  -- grace
  local terminator = appstart.spawn(function() got.term = { c:terminate(1) } end)
  hang("terminate")
  terminator:cancel()
  while not terminator.done do appstart.sleep(0.01) end
  appstart.helper_path = real
  print("terminate3", got.term[1] and got.term[1].signal, got.term[2], c.pid)
end)
print("left", K.fds() == fds, K.children_text())
