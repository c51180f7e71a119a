--- Run by spec/probes_spec.lua, in
-- test_a_name_looked_up_in_a_descriptor_shortage_is_a_try_that_failed: a
-- start probed at tcp:localhost:PORT whose first try comes while every
-- descriptor is taken (the resolver cannot read /etc/hosts, and says the
-- name is not known). Prints "stepped" (whether that step ended the
-- start, and its error's code, "none" while under way), then "ready"
-- (the app's name once descriptors are back, or the error) and "left"
-- (whether the descriptors are as they were, the children left).
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()
local port = math.random(20000, 60000)
local h = appstart.begin { argv = { F, "sleep=0.2", "listen=tcp:" .. port, "pause" },
  ready = { connect = "tcp:localhost:" .. port }, ready_timeout = 10, log = K.quiet }
local held = K.take_all_descriptors()
local done = h:step()
for _, f in ipairs(held) do f:close() end
K.out("stepped", tostring(done), h.err and h.err.code or "none")
local app, err = h:wait()
K.out("ready", app and "ready" or tostring(err))
if app then app:terminate() end
K.out("left", tostring(K.fds() == fds), K.children_text())
