--- appstart.settings: the settings every part of appstart reads when it
-- acts, so that setting one (appstart.log_level = "debug") takes effect at
-- once. This table is the `appstart` module itself: lua/appstart.lua adds
-- the functions to it.
--
-- A mistake in a setting raises where it is made, naming it: a value of the
-- wrong type or out of range (appstart.log_level = "loud"), a name that is
-- no setting (appstart.log_levle = "debug"; once the module is loaded, a
-- new name on it can only be a mistake), one of the module's functions
-- (appstart.default_log = f would change nothing appstart calls),
-- appstart.version (read only). A bad $APPSTART_LOG is said once on
-- stderr, and the default ("warn") used.
local core = require "appstart.core"

local LEVELS = { error = true, warn = true, info = true, debug = true }
local LEVEL_NAMES = "'error', 'warn', 'info' or 'debug'"

-- each check returns nil, or what is wrong with the value
local function path(value)
  if type(value) ~= "string" then return "a path expected, got " .. type(value) end
  if value == "" then return "must not be empty" end
  if value:find("\0", 1, true) then return "contains a NUL byte" end
end

-- a program's path: with a '/' (a bare name would be looked up in PATH,
-- which may name another program, run as root)
local function program_path(value)
  local why = path(value)
  if why then return why end
  if not value:find("/", 1, true) then
    return "'" .. value .. "' is a name, not a path (it would be looked up in PATH): give its path"
  end
end

local CHECKS = {
  version = function() return "is read only" end,
  helper_path = program_path,
  poll_interval = function(value)
    if type(value) ~= "number" then return "a number of seconds expected, got " .. type(value) end
    if value ~= value or value <= 0 or value == math.huge then return "must be a finite number of seconds > 0" end
    -- (what it paces would look in a busy loop)
    if value < 0.001 then return "must be at least 0.001 s (less would spin)" end
  end,
  syslog_socket = path,
  log_level = function(value)
    if not LEVELS[value] then return "invalid value '" .. tostring(value) .. "' (" .. LEVEL_NAMES .. ")" end
  end,
}

local function initial_level()
  local env = os.getenv("APPSTART_LOG")
  if env == nil or env == "" then return "warn" end
  if LEVELS[env] then return env end
  io.stderr:write(string.format("appstart: warn: APPSTART_LOG=%q is not a log level (%s): using 'warn'\n",
    env, LEVEL_NAMES))
  return "warn"
end

local function initial_helper()
  local env = os.getenv("APPSTART_HELPER")
  if env == nil or env == "" then return core.helper_path end
  local why = program_path(env)
  if not why then return env end
  io.stderr:write(string.format("appstart: warn: APPSTART_HELPER=%q: %s: using %s\n", env, why, core.helper_path))
  return core.helper_path
end

local values = {
  --- the module's version (the VERSION file's)
  version = core.version,
  --- path of appstart-helper, run for `user =`
  helper_path = initial_helper(),
  --- seconds between probes where a process has no pidfd
  poll_interval = 0.05,
  --- the syslog socket that stdout/stderr = "syslog" send lines to (an
  -- AF_UNIX datagram socket), read at each start
  syslog_socket = "/dev/log",
  --- the default logger's threshold: "error", "warn", "info" or "debug"
  log_level = initial_level(),
}

local names = {}
for name in pairs(CHECKS) do if name ~= "version" then names[#names + 1] = name end end
table.sort(names)
names = table.concat(names, ", ")

-- the settings live in `values` and the module's functions in
-- `functions`, so that every assignment to either comes here and is
-- checked
local functions = {}
setmetatable(values, { __index = functions })
return setmetatable({}, {
  __index = values,
  __newindex = function(t, k, v)
    local check = CHECKS[k]
    if check then
      local why = check(v)
      if why then error(string.format("appstart.%s: %s", k, why), 2) end
      values[k] = v
    elseif not rawequal(package.loaded.appstart, t) then
      functions[k] = v -- lua/appstart.lua adding the module's functions
    elseif functions[k] ~= nil then
      error(string.format("appstart.%s: one of the module's functions, not a setting (%s)", tostring(k), names), 2)
    else
      error(string.format("appstart.%s: no such setting (%s)", tostring(k), names), 2)
    end
  end,
  -- (what the module holds, for a look at it at the REPL)
  __pairs = function()
    local all = {}
    for k, v in pairs(functions) do all[k] = v end
    for k, v in pairs(values) do all[k] = v end
    return next, all, nil
  end,
})
