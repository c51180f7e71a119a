--- Run by spec/faults_spec.lua (a descriptor limit of 32): an app of
-- kill_mode "group" whose child ignores SIGTERM, terminated while every
-- descriptor is taken. What is left in its group cannot be looked at
-- (/proc cannot be opened): that is no empty group. Prints, tab-separated:
--   terminated HOW SECS   app:terminate(0.3)'s how, how long it took
--   member ALIVE          whether the child still ran once it returned
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local pidfile = os.tmpname()
local app = assert(appstart.start { argv = { F, "fork", "ignore=TERM", "pidfile=" .. pidfile, "pause", "|",
  "line=3:up", "pause" }, ready = "fd", kill_mode = "group", log = K.quiet })
K.await(function() return tonumber(K.read(pidfile) or "") end, "the member's pid")
local member = tonumber(K.read(pidfile))
local fillers = K.take_all_descriptors()
local t0 = core.now()
local ok, how = pcall(app.terminate, app, 0.3)
local took = core.now() - t0
for _, f in ipairs(fillers) do f:close() end
-- (nothing but the launcher would end it: looked at once it is back)
local state = K.state(member)
local alive = state ~= nil and not state:match("^Z")
K.out("terminated", ok and tostring(how) or "raised " .. tostring(how), string.format("%.1f", took))
K.out("member", tostring(alive))
if alive then os.execute("kill -KILL " .. member) end
app:close()
os.remove(pidfile)
