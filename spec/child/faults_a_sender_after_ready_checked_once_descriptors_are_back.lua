--- Run by spec/faults_spec.lua, in
-- test_a_ready_message_whose_sender_cannot_be_checked_waits_for_descriptors:
-- inside appstart.run, after ready, with notify_access "all", a STATUS=
-- from the app's child sent while every descriptor is taken (its descent
-- cannot be read) is held, and counts once descriptors are back (1 s
-- later), and so does what the child sends after it, in turn. Prints
-- "status", the app's status 3 s after that (or "none"), the log lines
-- that said a message was ignored, and "calm", or "spun" when the second
-- without descriptors took more than a quarter of it in CPU (the socket,
-- readable with what is queued behind the held message, woke the loop
-- again and again); then "reload", what app:reload() of an app whose
-- child sends its RELOADING=1 and READY=1 so gave, and "calm" or "spun"
-- for it; then "left", whether the descriptors are as they were, and the
-- children left.
-- Argument: a path the app waits for before its child sends.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local go = arg[1]
local fds = K.fds()
local ignored, status, calm, reloaded, reload_calm = 0, nil, nil, {}, nil
appstart.run(function()
  local app = assert(appstart.start { argv = { F, "notify=READY=1", "waitfile=" .. go, "fork",
    "notify=STATUS=child", "notify=STATUS=child2", "pause", "|", "pause" }, notify_access = "all",
    kill_mode = "group", kill_grace = 2,
    log = function(_, message) if message:find("ignored") then ignored = ignored + 1 end end })
  local held = K.take_all_descriptors()
  table.remove(held):close()
  assert(io.open(go, "w")):close()
  for _, f in ipairs(K.take_all_descriptors()) do held[#held + 1] = f end
  local cpu0 = os.clock()
  appstart.sleep(1)
  calm = os.clock() - cpu0 < 0.25
  for _, f in ipairs(held) do f:close() end
  local t0 = core.now()
  while app.status ~= "child2" and core.now() - t0 < 3 do appstart.sleep(0.02) end
  status = app.status
  app:terminate()
  -- a reload whose RELOADING=1 and READY=1 come from the child so
  app = assert(appstart.start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP", "fork",
    "notify=RELOADING=1", "notify=READY=1", "pause", "|", "pause" }, notify_access = "all", kill_mode = "group",
    kill_grace = 2, ready_timeout = 5, log = K.quiet })
  held = K.take_all_descriptors()
  appstart.spawn(function()
    appstart.sleep(1)
    for _, f in ipairs(held) do f:close() end
  end)
  cpu0 = os.clock()
  reloaded = { app:reload() }
  reload_calm = os.clock() - cpu0 < 0.25
  app:terminate()
end)
K.out("status", status or "none", ignored, calm and "calm" or "spun")
K.out("reload", tostring(reloaded[1]), tostring(reloaded[2]), reload_calm and "calm" or "spun")
K.out("left", tostring(K.fds() == fds), K.children_text())
