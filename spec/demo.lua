--- The main job (`make run`): start redis-server through the sd_notify
-- handshake, prove it answers, show what appstart learned, stop it.
local appstart = require "appstart"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 700 " .. dir))
local sock = dir .. "/redis.sock"

print("starting redis-server (ready = notify) ...")
local app <close> = assert(appstart.start {
  argv = { "redis-server", "--port", "0", "--unixsocket", sock, "--supervised", "systemd",
    "--save", "", "--dir", dir },
  ready = "notify",
  stdout = "null",
  ready_timeout = 10,
  on_status = function(_, text) print("  status: " .. text) end,
})
print(string.format("ready: %s, pid %d, after %.1f ms", app.name, app.pid, app.ready_after * 1000))

local p = io.popen("redis-cli -s " .. sock .. " ping")
print("redis-cli ping -> " .. p:read("l"))
p:close()

local how = app:terminate()
print(string.format("terminated: %s", how.code and ("exit code " .. how.code) or ("signal " .. tostring(how.signal))))
os.execute("rm -rf " .. dir)
