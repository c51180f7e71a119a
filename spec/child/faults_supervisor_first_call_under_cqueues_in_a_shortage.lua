--- Run by spec/faults_spec.lua, in
-- test_the_first_wait_under_cqueues_in_a_descriptor_shortage_is_served:
-- a supervisor made in the main thread, cqueues loaded, whose first call
-- (sv:up()) comes from a coroutine of a controller while every
-- descriptor is taken, given back 0.3 s on (it raised "module
-- 'appstart.cqueues' not found": the supervisor's cqueues modules were
-- required only then, and a require needs a descriptor). Prints "up" and
-- what sv:up() gave, or what it raised, then "left", whether the
-- descriptors are as they were, and the children left.
local appstart = require "appstart"
local cqueues = require "cqueues"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()
local sv = appstart.supervisor { log = K.quiet, services = { a = { argv = { F, "notify=READY=1", "pause" },
  kill_grace = 0.3, ready_timeout = 5 } } }
local cq = cqueues.new()
local held = {}
local result
cq:wrap(function()
  held = K.take_all_descriptors()
  cqueues.running():wrap(function()
    cqueues.sleep(0.3)
    for _, f in ipairs(held) do f:close() end
    held = {}
  end)
  local r = { pcall(sv.up, sv) }
  result = r[1] and tostring(r[2]) .. " " .. tostring(r[3]) or "raised " .. tostring(r[2])
  sv:down()
end)
local ok, err = cq:loop()
for _, f in ipairs(held) do f:close() end
K.out("up", ok and result or "cq:loop failed " .. tostring(err))
cq = nil -- luacheck: ignore (its own descriptors go with it)
collectgarbage()
require("appstart.testing").reap()
K.out("left", tostring(K.fds() == fds), K.children_text())
