--- Run by spec/faults_spec.lua, in
-- test_an_app_ready_with_no_descriptor_left_is_watched_all_the_same:
-- an app that gets ready while every descriptor is taken (its on_status
-- took them), inside appstart.run ("run": its app:terminate() then, with
-- the descriptors still taken, raised "epoll_create1: Too many open
-- files" where the run had made no poll set yet, the app left running),
-- under cqueues ("cqueues": the start raised "cannot watch descriptor
-- N: dup: Too many open files") and a supervisor's under cqueues
-- ("supervisor": cq:loop() failed so, its app left running), and an
-- app:reload() under cqueues ("reload": it raised so). Prints
-- "CASE" and what came of it: the app's end as terminate or wait gave
-- it, or what was raised; then "left", whether the descriptors are as
-- they were, and the children left.
local appstart = require "appstart"
local cqueues = require "cqueues"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()
local held = {}
local function take() if #held == 0 then held = K.take_all_descriptors() end end
local function give_back()
  for _, f in ipairs(held) do f:close() end
  held = {}
end
local argv = { F, "ignore=TERM", "notify=STATUS=x", "sleep=0.1", "notify=READY=1", "pause" }

local result
local ok, err = pcall(appstart.run, function()
  local app = assert(appstart.start { argv = argv, kill_grace = 0.3, on_status = take, log = K.quiet })
  local terminated = { pcall(app.terminate, app) }
  give_back()
  result = terminated[1] and tostring(terminated[2]) or "raised " .. tostring(terminated[2])
end)
give_back()
K.out("run", ok and result or "run raised " .. tostring(err))

local cq = cqueues.new()
cq:wrap(function()
  local started, app = pcall(appstart.start, { argv = argv, kill_grace = 0.3, on_status = take, log = K.quiet })
  if not started then
    result = "raised " .. tostring(app)
  else
    app:kill("KILL")
    result = tostring(app:wait(5))
  end
  give_back()
end)
ok, err = cq:loop()
give_back()
K.out("cqueues", ok and result or "cq:loop failed " .. tostring(err))

cq = cqueues.new()
local sv = appstart.supervisor { log = K.quiet, services = { a = { argv = argv, kill_grace = 0.3, on_status = take } } }
cq:wrap(function()
  local up = { sv:up() }
  give_back()
  sv:down()
  result = tostring(up[1]) .. " " .. tostring(sv:status("a").state)
end)
ok, err = cq:loop()
give_back()
K.out("supervisor", ok and result or "cq:loop failed " .. tostring(err))
-- a reload under cqueues while every descriptor is taken (its wait
-- raised "epoll_create1: Too many open files"), given back 0.5 s on
cq = cqueues.new()
cq:wrap(function()
  local app = assert(appstart.start { argv = { F, "catch=HUP", "notify=READY=1", "waitsig=HUP",
    "notify=RELOADING=1", "notify=READY=1", "pause" }, ready_timeout = 5, kill_grace = 0.3, log = K.quiet })
  take()
  cqueues.running():wrap(function()
    cqueues.sleep(0.5)
    give_back()
  end)
  local reloaded = { pcall(app.reload, app) }
  result = reloaded[1] and tostring(reloaded[2]) or "raised " .. tostring(reloaded[2])
  give_back()
  app:terminate()
end)
ok, err = cq:loop()
give_back()
K.out("reload", ok and result or "cq:loop failed " .. tostring(err))
cq = nil -- luacheck: ignore (its own descriptors go with it)
collectgarbage()
require("appstart.testing").reap()
K.out("left", tostring(K.fds() == fds), K.children_text())
