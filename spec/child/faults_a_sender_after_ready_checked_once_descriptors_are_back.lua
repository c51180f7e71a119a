--- Run by spec/faults_spec.lua, in
-- test_a_ready_message_whose_sender_cannot_be_checked_waits_for_descriptors:
-- inside appstart.run, after ready, with notify_access "all", a STATUS=
-- from the app's child sent while every descriptor is taken (its descent
-- cannot be read) is held, and counts once descriptors are back (1 s
-- later). Prints "status", the app's status 3 s after that (or "none"),
-- and the log lines that said a message was ignored; then "left",
-- whether the descriptors are as they were, and the children left.
-- Argument: a path the app waits for before its child sends.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local go = arg[1]
local fds = K.fds()
local ignored, status = 0, nil
appstart.run(function()
  local app = assert(appstart.start { argv = { F, "notify=READY=1", "waitfile=" .. go, "fork",
    "notify=STATUS=child", "pause", "|", "pause" }, notify_access = "all", kill_mode = "group", kill_grace = 2,
    log = function(_, message) if message:find("ignored") then ignored = ignored + 1 end end })
  local held = K.take_all_descriptors()
  table.remove(held):close()
  assert(io.open(go, "w")):close()
  for _, f in ipairs(K.take_all_descriptors()) do held[#held + 1] = f end
  appstart.sleep(1)
  for _, f in ipairs(held) do f:close() end
  local t0 = core.now()
  while app.status ~= "child" and core.now() - t0 < 3 do appstart.sleep(0.02) end
  status = app.status
  app:terminate()
end)
K.out("status", status or "none", ignored)
K.out("left", tostring(K.fds() == fds), K.children_text())
