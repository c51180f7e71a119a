--- Run by spec/faults_spec.lua, in
-- test_an_app_ready_with_no_descriptor_left_is_watched_all_the_same: in a
-- plain script (no poll set made yet), a start whose app gets ready while
-- every descriptor is taken (its on_status took them), for each of
-- kill_mode "group" and an on_exit: the start returned the app (it raised
-- "epoll_create1: Too many open files"). The app is then killed with the
-- descriptors still taken: its end is seen (on_exit runs at the calls that
-- wait) all the same. Prints "CASE", what the start gave ("app" or what
-- it raised), the end on_exit saw (or "none" within 5 s) and app:wait's;
-- then "left", whether the descriptors are as they were, and the
-- children left.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()

for _, case in ipairs { "group", "on_exit" } do
  local held, ended = {}, nil
  local opts = { argv = { F, "notify=STATUS=x", "sleep=0.1", "notify=READY=1", "pause" }, log = K.quiet,
    on_status = function() held = K.take_all_descriptors() end,
    on_exit = function(_, how) ended = tostring(how) end }
  if case == "group" then opts.kill_mode = "group" end
  local ok, app = pcall(appstart.start, opts)
  local gave = ok and (app and "app" or "nil") or tostring(app):gsub("%s", "_")
  local waited = "none"
  if ok and app then
    app:kill("KILL")
    local t0 = core.now()
    while not ended and core.now() - t0 < 5 do appstart.sleep(0.02) end
    for _, f in ipairs(held) do f:close() end
    held = {}
    waited = tostring(app:wait(5))
  end
  for _, f in ipairs(held) do f:close() end
  K.out(case, gave, ended or "none", waited)
end
require("appstart.testing").reap()
K.out("left", tostring(K.fds() == fds), K.children_text())
