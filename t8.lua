local appstart = require "appstart"
local c = require "appstart.core"
for _, p in ipairs{"/tmp/rp/u/real.sock","/tmp/rp/u/link.sock","/tmp/rp/u/fifo","/tmp/rp/u/dir","/tmp/rp/u/dir/","/tmp/rp/u/priv/x.sock","u/real.sock","/tmp/rp/u/../u/real.sock", "/tmp/rp/u/missing"} do
  local t = c.now()
  local app, err = appstart.start{argv={"sleep","60"}, ready={connect="unix:"..p}, ready_timeout=0.3}
  print(p, app and "ready" or (err.code..": "..err.message), string.format("%.3f s", c.now()-t))
  if app then app:terminate() end
end
