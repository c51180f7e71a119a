--- Run by spec/probes_spec.lua, in
-- test_a_tcp_name_is_resolved_once_and_each_of_its_addresses_tried (with an
-- /etc/hosts of its own that gives appstart-two ::1, then 127.0.0.1):
-- starts an app that listens on 127.0.0.1 only, probed at appstart-two,
-- and prints "ready\tSIGNAL" (the signal that terminated it), else
-- "failed\tCODE\tMESSAGE"; then one probed at a port nobody listens on,
-- printing "CODE\tMESSAGE"; then "left\tPIDS" (the children left).
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local port
for _ = 1, 5 do
  port = math.random(20000, 60000)
  local app, err = appstart.start { argv = { F, "listen=tcp:" .. port, "pause" },
    ready = { connect = "tcp:appstart-two:" .. port }, ready_timeout = 10, log = function() end }
  if app then
    print("ready", app:terminate().signal)
    break
  end
  if err.code ~= "died" then print("failed", err.code, err.message) break end
end
-- nobody listens: the message names every address tried
local _, err = appstart.start { argv = { F, "pause" }, ready = { connect = "tcp:appstart-two:" .. port },
  ready_timeout = 0.3, kill_grace = 1, log = function() end }
print(err.code, err.message)
print("left", K.children_text())
