--- appstart.settings: the settings every part of appstart reads when it
-- acts, so that setting one (appstart.log_level = "debug") takes effect at
-- once. This table is the `appstart` module itself: lua/appstart.lua adds
-- the functions to it.
local core = require "appstart.core"

return {
  --- the module's version (the VERSION file's)
  version = core.version,
  --- path of appstart-helper, run for `user =`
  helper_path = os.getenv("APPSTART_HELPER") or core.helper_path,
  --- seconds between probes where a process has no pidfd
  poll_interval = 0.05,
  --- the syslog socket that stdout/stderr = "syslog" send lines to (an
  -- AF_UNIX datagram socket), read at each start
  syslog_socket = "/dev/log",
  --- the default logger's threshold: "error", "warn", "info" or "debug"
  log_level = os.getenv("APPSTART_LOG") or "warn",
}
