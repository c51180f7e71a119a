--- Run by spec/trees_spec.lua: a plain script starts an app with
-- kill_mode = "group" that forks a member ignoring SIGTERM, then exits 0
-- by itself; the script makes no call that waits (it reads /proc till
-- the app is a zombie) and ends. Prints "member: PID" (the member's pid,
-- which its pid file names) before it ends.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local pidfile = assert(arg[1], "a pid file path expected")
local app = assert(appstart.start { kill_mode = "group", log = K.quiet, stdout = "null", stderr = "null", argv = { F,
  "fork", "ignore=TERM", "pidfile=" .. pidfile, "pause", "|", "notify=READY=1", "waitfile=" .. pidfile, "exit=0" } })
local deadline = os.time() + 10
while not (K.read("/proc/" .. app.pid .. "/stat") or ""):find(") Z ", 1, true) and os.time() < deadline do end
K.out("member:", (K.read(pidfile) or ""):match("%d+") or "none")
