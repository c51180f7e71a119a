--- Run by spec/layout_spec.lua (test_a_target_descriptor_past_the_soft_
-- limit_alone_starts) under a soft descriptor limit of 64 alone: takes
-- every descriptor the launcher may open, lets go of the lowest 30, then
-- starts an app with ready_fd 40, then 58 (below the soft limit, with the
-- numbers above them the launcher's own), and prints one line each:
-- the number and "started" or "CODE:ERRNO".
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local held = K.take_all_descriptors()
for i = 1, 30 do held[i]:close() end
for _, fd in ipairs { 40, 58 } do
  local app, err = appstart.start { argv = { F, "line=" .. fd .. ":x", "pause" }, ready = "fd", ready_fd = fd,
    log = K.quiet, ready_timeout = 3, kill_grace = 0.2 }
  if app then app:terminate() end
  print(fd, app and "started" or (err.code .. ":" .. tostring(err.errno)))
end
