--- Run by spec/options_spec.lua: loads appstart (which reads
-- APPSTART_HELPER first thing) and prints the helper path it settled on,
-- then the one compiled in.
local appstart = require "appstart"

print(appstart.helper_path)
print(require("appstart.core").helper_path)
