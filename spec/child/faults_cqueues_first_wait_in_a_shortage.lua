--- Run by spec/faults_spec.lua, in
-- test_the_first_wait_under_cqueues_in_a_descriptor_shortage_is_served:
-- cqueues is loaded and an app started from the main thread; then,
-- every descriptor taken, a coroutine of a controller waits on it for
-- the first time (its app:terminate() raised "module 'appstart.cqueues'
-- not found": the adapter was required only then, and a require needs a
-- descriptor). Prints "terminate" and what came of it, whether the
-- controller was ever served meanwhile (another coroutine's ticks), then
-- "left", whether the descriptors are as they were, and the children
-- left.
local appstart = require "appstart"
local cqueues = require "cqueues"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()
local app = assert(appstart.start { argv = { F, "ignore=TERM", "notify=READY=1", "pause" }, kill_grace = 0.3,
  log = K.quiet })
local cq = cqueues.new()
local held = K.take_all_descriptors()
local result, ticks, done = nil, 0, false
cq:wrap(function()
  local r = { pcall(app.terminate, app) }
  result = r[1] and tostring(r[2]) or "raised " .. tostring(r[2])
  done = true
end)
cq:wrap(function()
  while not done do
    ticks = ticks + 1
    cqueues.sleep(0.05)
  end
end)
local ok, err = cq:loop()
for _, f in ipairs(held) do f:close() end
K.out("terminate", ok and result or "cq:loop failed " .. tostring(err), ticks > 1 and "served" or "held")
if app.state ~= "exited" then app:kill("KILL") app:wait(5) end
cq = nil -- luacheck: ignore (its own descriptors go with it)
collectgarbage()
require("appstart.testing").reap()
K.out("left", tostring(K.fds() == fds), K.children_text())
