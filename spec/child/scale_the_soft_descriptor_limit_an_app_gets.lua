--- Run by spec/scale_spec.lua, in
-- test_apps_keep_the_soft_descriptor_limit_the_launcher_had (a soft
-- descriptor limit of 256, below the hard one): raises its own limit as
-- appstart does, starts a shell that writes its soft limit to a file, and
-- prints "SOFT\tCHILD" (the launcher's soft limit after raising it, the
-- app's). No arguments.
local appstart = require "appstart"
local core = require "appstart.core"

local soft = core.raise_nofile()
local out = os.tmpname()
local app = assert(appstart.start { argv = { "/bin/sh", "-c", "ulimit -S -n > " .. out }, ready = "none" })
app:wait(5)
local f = io.open(out); local child = f:read("n"); f:close(); os.remove(out)
print(soft, child)
