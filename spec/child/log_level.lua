--- Run by spec/options_spec.lua: loads appstart (which reads APPSTART_LOG
-- first thing) and prints the log level it settled on.
local appstart = require "appstart"

print(appstart.log_level)
