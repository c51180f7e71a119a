--- Run by spec/faults_spec.lua, in
-- test_a_ready_message_whose_sender_cannot_be_checked_waits_for_descriptors:
-- inside appstart.run, an app gets ready while the launcher has no
-- descriptor free (its on_status, at the app's first STATUS=, takes them
-- all), so the start time of its main cannot be read as its notify socket
-- is taken over; once descriptors are back, what the app sends still
-- counts (every datagram of its own was refused as a stranger's, and its
-- watchdog then killed it). Prints "status", the app's status and state
-- 3 s after the descriptors are back (or "none"), and how many log lines
-- said a message was ignored; then "left", whether the descriptors are as
-- they were, and the children left.
-- Argument: a path the app waits for before it sends again.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local go = arg[1]
local fds = K.fds()
local ignored, status, state = 0, nil, nil
appstart.run(function()
  local held = {}
  local app = assert(appstart.start { argv = { F, "notify=STATUS=first", "sleep=0.1", "notify=READY=1",
    "waitfile=" .. go, "notify=STATUS=after", "repeat=40:0.1:WATCHDOG=1", "pause" }, watchdog = 1,
    on_status = function(_, text) if text == "first" then held = K.take_all_descriptors() end end,
    log = function(_, message) if message:find("ignored") then ignored = ignored + 1 end end })
  for _, f in ipairs(held) do f:close() end
  assert(io.open(go, "w")):close()
  local t0 = core.now()
  while app.status ~= "after" and core.now() - t0 < 3 do appstart.sleep(0.02) end
  status, state = app.status, app.state
  app:terminate()
end)
K.out("status", status or "none", state, ignored)
K.out("left", tostring(K.fds() == fds), K.children_text())
