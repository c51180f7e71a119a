--- appstart.options: the options of appstart.start in one place: their
-- types, values and defaults, and the rules that tie them together.
--
-- A programmer mistake (a wrong type, a missing argv, an unknown option
-- name, an impossible descriptor layout, an option that would have no
-- effect) is an argument error, raised before anything is spawned.
-- options.check returns it as (field, message), so the command can say
-- which of its own options was wrong; appstart.start raises it, pointing
-- at its caller's line.
local core = require "appstart.core"
local errors = require "appstart.errors"

local options = {}

local DESCRIPTOR_MAX = 1023
options.DESCRIPTOR_MAX = DESCRIPTOR_MAX
local ID_MAX = 0xfffffffe -- (uid_t)-1 means "no change" to the kernel

-- each check returns nil, or the message of what is wrong with value

local function no_nul(value)
  if string.find(value, "\0", 1, true) then return "contains a NUL byte" end
end

local function path(value)
  if value == "" then return "must not be empty" end
  return no_nul(value)
end

local type, mtype = type, math.type

-- An integer, or a float with an integer value (3.0, 1e6: that integer,
-- as Lua's own functions take it): the integer, else nil.
local function whole(v)
  if mtype(v) == "float" then return math.tointeger(v) end
  if mtype(v) == "integer" then return v end
end
options.whole = whole

local bad_string = core.bad_string

local function strings(list)
  -- (read raw, as the core reads it: what an __index makes is no entry)
  if getmetatable(list) ~= nil then return "must be a plain list (it has a metatable)" end
  if list[1] == nil then return "must not be empty" end
  local i, why = bad_string(list)
  if i then return string.format("[%d]: %s", i, why) end
  -- (each list is a command: argv, a helper's, an exec probe's)
  if list[1] == "" then return "[1]: the program must not be empty" end
  -- a key past the list (argv = {"ls", dir = "/"}) would be left out
  local n = #list
  for k in pairs(list) do
    if mtype(k) ~= "integer" or k < 1 or k > n then
      return string.format("unexpected key %s (a list of strings expected)",
        type(k) == "string" and string.format("%q", k) or tostring(k))
    end
  end
end

local function environment(env)
  if getmetatable(env) ~= nil then return "must be a plain table (it has a metatable)" end
  for k, v in pairs(env) do
    if type(k) ~= "string" or k == "" or k:find("[=%z]") then
      return "bad variable name " .. string.format("%q", tostring(k))
    end
    if type(v) ~= "string" and type(v) ~= "number" then
      return string.format("value of %s: a string or a number expected, got %s", k, type(v))
    end
    if type(v) == "string" and v:find("\0", 1, true) then
      return string.format("value of %s: contains a NUL byte", k)
    end
  end
end

-- stdin: a path, "inherit" or "null". An output's keyword there would be
-- a file of that name in the current directory: a mistake.
local OUTPUT_WORDS = { stdout = true, stderr = true, capture = true, syslog = true }
local function stdio(value)
  if OUTPUT_WORDS[value] then
    return string.format("'%s' is no input (inherit, null or a file): write './%s' for a file of that name",
      value, value)
  end
  return path(value)
end

local OUTPUT_FIELDS = { file = true, max_bytes = true, keep = true }

-- stdout and stderr: a path, "inherit", "null", "capture", "syslog" (and
-- "stdout" for stderr), or {file = PATH, max_bytes = N, keep = K}. A bare
-- stream name where it is no keyword (stdout = "stdout", stdout =
-- "stderr", stderr = "stderr") would make a file of that name in the
-- current directory: a mistake, most likely for stderr = "stdout".
local function output_stdio(value, what)
  if type(value) == "table" and getmetatable(value) ~= nil then return "must be a plain table (it has a metatable)" end
  if type(value) == "string" then
    if value == "stderr" or (value == "stdout" and what == "stdout") then
      return string.format("'%s' would be a file of that name in the current directory%s: write './%s'"
        .. " for such a file", value, what == "stdout" and value == "stderr"
          and " (stdout cannot go into stderr; stderr = 'stdout' merges stderr into stdout)" or "", value)
    end
    return path(value)
  end
  for k in pairs(value) do
    if not OUTPUT_FIELDS[k] then return "unknown field '" .. tostring(k) .. "' (file, max_bytes, keep)" end
  end
  if type(value.file) ~= "string" then return "field 'file': string expected, got " .. type(value.file) end
  local why = path(value.file)
  if why then return "field 'file': " .. why end
  if value.file:sub(-1) == "/" then return "field 'file': names a directory" end
  local max, keep = value.max_bytes, value.keep
  if max ~= nil and not (whole(max) and max >= 1) then
    return "field 'max_bytes': an integer > 0 expected, got " .. errors.shown(max)
  end
  if keep ~= nil and not (whole(keep) and keep >= 0 and keep <= 1000) then
    return "field 'keep': an integer from 0 to 1000 expected, got " .. errors.shown(keep)
  end
  if keep ~= nil and max == nil then return "field 'keep': has no effect without 'max_bytes'" end
end

-- (1 to 4 would keep nothing, silently: a line kept takes 4 bytes more)
local function output_keep(value)
  if value < 0 or (value > 0 and value < 5) or value > 64 * 1024 * 1024 then
    return "must be 0 (nothing kept) or from 5 to 67108864 (bytes: a line kept takes 4 more than its length)"
  end
end

-- finite: an infinite wait would overflow the millisecond timers of event
-- loops (luv's), and the command refuses --timeout=inf too
local function seconds(value)
  if value ~= value or value < 0 or value == math.huge then return "must be a finite number of seconds >= 0" end
end

local function descriptor(value)
  if value < 3 or value > DESCRIPTOR_MAX then
    return value .. " is not a descriptor from 3 to " .. DESCRIPTOR_MAX
  end
end

local function id(value)
  if math.type(value) == "integer" and (value < 0 or value > ID_MAX) then
    return value .. " is out of range"
  end
  if type(value) == "string" then
    -- digits are the uid (gid) itself, as for the command and the helper
    if value:find("^%d+$") then
      local n = math.tointeger(tonumber(value))
      if not n or n > ID_MAX then return value .. " is out of range" end
    end
    return path(value)
  end
end

local function positive_seconds(value)
  if value ~= value or value <= 0 or value == math.huge then return "must be a number of seconds > 0" end
end

-- the tries of a probe start 1 ms apart and double up to it: less would
-- try in a busy loop
local function probe_interval_seconds(value)
  local why = positive_seconds(value)
  if why then return why end
  if value < 0.001 then return "must be at least 0.001 s (the tries start 1 ms apart; less would spin)" end
end

-- a try under way (a tcp connect, an exec probe's command) is given up
-- after it: much less than the first interval (1 ms) gives up each try
-- as it starts, a probe that can never pass
local function probe_timeout_seconds(value)
  local why = positive_seconds(value)
  if why then return why end
  if value < 0.001 then return "must be at least 0.001 s (less would give up each try as it starts)" end
end

-- the app is told its watchdog in microseconds (WATCHDOG_USEC), an integer
local function watchdog_seconds(value)
  local why = positive_seconds(value)
  if why then return why end
  if value * 1e6 >= 2 ^ 63 then return "must be under 2^63 microseconds (about 292,000 years)" end
end

-- a path in the cgroup v2 hierarchy: absolute, no "." or ".." parts
local function cgroup_path(value)
  if value:sub(1, 1) ~= "/" then return "must be an absolute path in the cgroup v2 hierarchy" end
  for part in value:gmatch("[^/]+") do
    if part == "." or part == ".." then return "must not contain '" .. part .. "'" end
  end
  -- written as /proc/PID/cgroup writes it: membership is told by comparing
  -- the two
  if value:find("//", 1, true) or (#value > 1 and value:sub(-1) == "/") then
    return "must be written as /proc/PID/cgroup writes paths: no '//', no '/' at the end"
  end
  return no_nul(value)
end

local function signal(value)
  local ok, n = pcall(core.signum, value)
  if not ok then return "unknown signal '" .. tostring(value) .. "'" end
  -- (signal 0 only asks whether the process is there: a reload would do nothing)
  if n == 0 then return "signal 0 sends nothing" end
end

-- (a list of the values: an option's `values`, which the command's own
-- options take too)
local function enum(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return function(value)
    if not set[value] then return "invalid value '" .. tostring(value) .. "'" end
  end
end

--- "tcp:HOST:PORT" | "unix:PATH" -> kind, where, port | nil, why (a v6
-- host goes in brackets: "tcp:[::1]:8080").
function options.parse_address(text)
  local where = text:match("^unix:(.+)$")
  if where then
    -- what a socket address holds (sun_path: 108 bytes, its NUL included)
    if #where > 107 then return nil, "'unix:PATH' with a path of 107 bytes at most" end
    if where:find("%z") then return nil, "'unix:PATH' with no NUL byte in the path" end
    -- (a path ending in '/' names a directory: a socket there can be
    -- neither made nor connected to, each try ENOTDIR)
    if where:sub(-1) == "/" then return nil, "'unix:PATH' with a path not ending in '/': a socket is no directory" end
    return "unix", where
  end
  local rest = text:match("^tcp:(.+)$")
  if not rest then return nil, "'tcp:HOST:PORT' or 'unix:PATH' expected" end
  local host, port = rest:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = rest:match("^([^:]+):(%d+)$") end
  port = tonumber(port)
  if not host or not port or port < 1 or port > 65535 then
    return nil, "'tcp:HOST:PORT' expected, with a port from 1 to 65535"
  end
  return "tcp", host, port
end

local PROTOCOLS = enum { "none", "fd", "notify" }
local PROBES = { connect = "string", file = "string", exec = "table", check = "function" }

-- A table with a metatable: what its __index gave would be read, and
-- would not have been checked.
local PLAIN = "must be a plain table (it has a metatable)"

-- ready: a protocol's name, a probe (a table of exactly one of PROBES), or
-- a forking daemon ({forks = true, pid_file = PATH})
local function ready_value(value)
  if type(value) == "string" then return PROTOCOLS(value) end
  if getmetatable(value) ~= nil then return PLAIN end
  if value.forks ~= nil or value.pid_file ~= nil then
    if value.forks ~= true then return "forks: true expected, with pid_file" end
    if type(value.pid_file) ~= "string" then
      return "pid_file: a path expected (where the daemon writes its pid), got " .. type(value.pid_file)
    end
    local why = path(value.pid_file)
    if why then return "pid_file: " .. why end
    if value.pid_file:sub(-1) == "/" then return "pid_file: names a directory" end
    for k in pairs(value) do
      if k ~= "forks" and k ~= "pid_file" then return "'" .. tostring(k) .. "' cannot go with forks" end
    end
    return
  end
  local kind
  for k, v in pairs(value) do
    local want = PROBES[k]
    if not want then return "unknown probe '" .. tostring(k) .. "' (connect, file, exec or check)" end
    if kind then return "one probe at a time ('" .. kind .. "' and '" .. k .. "')" end
    kind = k
    if type(v) ~= want then return string.format("%s: %s expected, got %s", k, want, type(v)) end
  end
  if not kind then return "empty probe table (connect, file, exec or check)" end
  local v = value[kind]
  if kind == "connect" then
    if v:find("\0", 1, true) then return "connect: contains a NUL byte" end
    local ok, why = options.parse_address(v)
    if not ok then return "connect: " .. why end
  elseif kind == "file" then
    local why = path(v)
    if why then return "file: " .. why end
    -- (the probe counts a regular file: one named as a directory is never
    -- there, each try ENOTDIR or EISDIR until ready_timeout)
    if v:sub(-1) == "/" then return "file: names a directory" end
  elseif kind == "exec" then
    local why = strings(v)
    if why then return "exec" .. (why:sub(1, 1) == "[" and "" or ": ") .. why end
  end
end

--- name -> { types = accepted Lua types, check = fn(value) -> message,
-- default = value, values = the list of a string's values where it is
-- one of them } (math.type's "integer" and "float" for numbers)
options.SCHEMA = {
  argv = { types = { table = true }, check = strings },
  env = { types = { table = true }, check = environment },
  cwd = { types = { string = true }, check = path },
  stdin = { types = { string = true }, check = stdio },
  stdout = { types = { string = true, table = true }, check = output_stdio, what = "stdout" },
  stderr = { types = { string = true, table = true }, check = output_stdio, what = "stderr" },
  output_keep = { types = { integer = true }, check = output_keep, default = 65536 },
  on_output = { types = { ["function"] = true } },
  helper = { types = { table = true, boolean = true }, check = strings },
  user = { types = { string = true, integer = true }, check = id },
  group = { types = { string = true, integer = true }, check = id },
  pid_fd = { types = { integer = true }, check = descriptor, default = 3 },
  pid_format = { types = { string = true }, values = { "int32le", "line" }, default = "int32le" },
  ready = { types = { string = true, table = true }, check = ready_value, default = "notify" },
  ready_fd = { types = { integer = true }, check = descriptor },
  notify_access = { types = { string = true }, values = { "main", "exec", "all" }, default = "exec" },
  pid_timeout = { types = { integer = true, float = true }, check = positive_seconds, default = 10 },
  ready_timeout = { types = { integer = true, float = true }, check = positive_seconds, default = 40 },
  probe_interval = { types = { integer = true, float = true }, check = probe_interval_seconds, default = 0.1 },
  probe_timeout = { types = { integer = true, float = true }, check = probe_timeout_seconds, default = 1 },
  kill_grace = { types = { integer = true, float = true }, check = seconds, default = 5 },
  kill_mode = { types = { string = true }, values = { "process", "group", "cgroup" }, default = "process" },
  cgroup_parent = { types = { string = true }, check = cgroup_path },
  watchdog = { types = { integer = true, float = true }, check = watchdog_seconds },
  -- (a number with an integer value, 10.0 as 10, as app:kill takes it)
  reload_signal = { types = { string = true, integer = true, float = true }, check = signal, default = "HUP" },
  on_status = { types = { ["function"] = true } },
  on_exit = { types = { ["function"] = true } },
  log = { types = { ["function"] = true } },
}

local SCHEMA = options.SCHEMA
for _, spec in pairs(SCHEMA) do
  if spec.values then spec.check = enum(spec.values) end
end

-- Does the launcher read a stream given this value (its lines then fill the
-- ring of output_keep bytes)?
local function read_by_launcher(value)
  return type(value) == "table" or value == "capture" or value == "syslog"
end

-- The file a stdout or stderr value names, or nil (a table's, or a path:
-- a string that is none of the words).
local STDIO_WORDS = { inherit = true, null = true, capture = true, syslog = true, stdout = true }
local function file_of(value)
  if type(value) == "table" then return value.file end
  if type(value) == "string" and not STDIO_WORDS[value] then return value end
end

local function type_names(types)
  local names = {}
  for t in pairs(types) do names[#names + 1] = t end
  table.sort(names)
  return table.concat(names, "|")
end

-- Who a path names, so that two names of one file ("log", "./log",
-- "/dir/log", a link to it) are one: the file's device and inode, or, for
-- a file not made yet, its directory's and its last part; else the path
-- (a directory that does not exist either: opening it will fail anyway).
local function file_identity(name)
  local file_id = core.file_id(name)
  if file_id then return file_id end
  local dir, base = name:match("^(.*)/([^/]+)$")
  if not dir then dir, base = ".", name end
  local dir_id = core.file_id(dir == "" and "/" or dir)
  return dir_id and (dir_id .. "/" .. base) or name
end

-- Which of the files the rotation of `value` (a stream's {file = ...,
-- max_bytes = N, keep = K}) makes, PATH.1 to PATH.K, is the file `other`
-- (the other stream's), or nil.
local function rotated_as(value, other)
  if type(value) ~= "table" or value.max_bytes == nil or not other then return nil end
  local other_id = file_identity(other)
  for i = 1, value.keep or 1 do
    local name = value.file .. "." .. i
    if file_identity(name) == other_id then return name end
  end
end

-- Why a file probe's file (`name`, of identity `name_id`) is one the
-- launcher makes for the stream `what` given `value`, or nil.
local function made_for_stream(value, what, name, name_id)
  local file = file_of(value)
  if file and file_identity(file) == name_id then
    return string.format("file: names %s's file, which the launcher makes: the probe would pass at once"
      .. " (or at the app's first line), ready or not", what)
  end
  local rotated = rotated_as(value, name)
  if rotated then
    return string.format("file: names %s, one of %s's rotated files, which the launcher makes: the probe"
      .. " would pass at a rotation, ready or not", rotated, what)
  end
end

-- core.user's or core.group's answer: no entry (nil), not one that could
-- not be read for now (nil, errno)
local function no_entry(found, errno) return not found and not errno end

--- What is wrong with opts, as (field, message), or nil when nothing is
-- (field "" when opts is no table at all). Also looks `user` and `group`
-- up (a name with no entry is a mistake).
function options.check(opts)
  if type(opts) ~= "table" then return "", "options table expected, got " .. type(opts) end
  if getmetatable(opts) ~= nil then return "", "options " .. PLAIN end
  for k, v in next, opts do
    local spec = SCHEMA[k]
    if not spec then return tostring(k), "unknown option" end
    local t = type(v)
    if t == "number" then
      t = mtype(v)
      -- (1e6 for an integer option)
      if t == "float" and not spec.types.float and spec.types.integer and whole(v) then v, t = whole(v), "integer" end
    end
    if not spec.types[t] then
      return k, type_names(spec.types):gsub("float|integer", "number") .. " expected, got " .. t
    end
    local check = spec.check
    if check and t ~= "boolean" then
      local why = check(v, spec.what)
      if why then return k, why end
    end
    if t == "table" and getmetatable(v) ~= nil then return k, PLAIN end
  end
  if opts.argv == nil then return "argv", "table expected, got nil" end
  local helper, user, ready_fd = opts.helper, opts.user, opts.ready_fd
  if helper and user then return "user", "cannot be combined with 'helper'" end
  if type(opts.ready) == "table" and opts.ready.forks then
    if helper then return "helper", "cannot be combined with ready.forks (the command itself forks)" end
    if user then return "user", "cannot be combined with ready.forks" end
  end
  -- an option that would be silently ignored is a mistake
  if not user and opts.group ~= nil then return "group", "has no effect without 'user'" end
  if not helper and not user then
    if opts.pid_fd ~= nil then return "pid_fd", "has no effect without 'helper' or 'user'" end
    if opts.pid_format ~= nil then return "pid_format", "has no effect without 'helper' or 'user'" end
  end
  -- with `user`, the pid channel is appstart-helper's, closed before the
  -- app runs: its format and number are appstart's own (a number the
  -- ready descriptor does not take)
  if user and not helper then
    if opts.pid_format ~= nil then
      return "pid_format", "has no effect with 'user' (appstart-helper reports the pid; the app never sees it)"
    end
    if opts.pid_fd ~= nil then
      return "pid_fd", "has no effect with 'user' (appstart-helper reports the pid; the app never sees it)"
    end
  end
  -- a launcher that is not root starts another user's app through a
  -- setuid appstart-helper, which rebuilds the app's environment (what it
  -- trusts of its caller's is a short list: README, A setuid helper): an
  -- env would be dropped (appstart-helper refuses it). So does a launcher
  -- whose effective uid is root and real uid is not: the kernel runs
  -- what it execs in secure mode, as a setuid program
  local euid, secure = core.euid()
  if user and opts.env ~= nil and (euid ~= 0 or secure) then
    return "env", "cannot be combined with 'user' in a launcher that is not root: the setuid appstart-helper"
      .. " rebuilds the app's environment (README: A setuid helper)"
  end
  if ready_fd ~= nil then
    if opts.ready ~= "fd" then return "ready_fd", "has no effect without ready = 'fd'" end
    if helper and ready_fd == (opts.pid_fd or 3) then
      -- (a pid_fd not given is named as the default it is)
      return "ready_fd", "same descriptor as " .. (opts.pid_fd == nil and "the default " or "") .. "'pid_fd' ("
        .. ready_fd .. ")"
    end
  end
  if opts.cgroup_parent ~= nil and opts.kill_mode ~= "cgroup" then
    return "cgroup_parent", "has no effect without kill_mode = 'cgroup'"
  end
  if type(opts.ready) ~= "table" or opts.ready.forks then
    if opts.probe_interval ~= nil then return "probe_interval", "has no effect without a probe" end
    if opts.probe_timeout ~= nil then return "probe_timeout", "has no effect without a probe" end
  elseif opts.probe_timeout ~= nil and not opts.ready.exec
    and not (type(opts.ready.connect) == "string" and opts.ready.connect:match("^tcp:")) then
    -- a file's look, a check's call and a unix connect end at once
    return "probe_timeout", "has no effect without an exec or tcp connect probe (it bounds one try under way)"
  end
  local ready = opts.ready or "notify"
  if opts.ready_timeout ~= nil and ready == "none" then
    return "ready_timeout", "has no effect with ready = 'none' (the app is ready once it runs: nothing is waited for)"
  end
  if opts.watchdog ~= nil and ready ~= "notify" then
    return "watchdog", "has no effect without ready = 'notify' (the pings are notify datagrams)"
  end
  if opts.on_status ~= nil and ready ~= "notify" then
    return "on_status", "has no effect without ready = 'notify' (STATUS= is a notify message)"
  end
  if opts.notify_access ~= nil and ready ~= "notify" and ready ~= "fd" then
    return "notify_access", "has no effect without ready = 'notify' or 'fd' (it says whose ready message counts)"
  end
  if opts.pid_timeout ~= nil and not helper and not user then
    if type(ready) == "table" and ready.forks then
      return "pid_timeout", "has no effect with ready.forks (the pid file is waited for within 'ready_timeout')"
    end
    return "pid_timeout", "has no effect without 'helper' or 'user' (no pid is reported)"
  end
  local captured = opts.stdout == "capture" or opts.stderr == "capture"
    or (opts.stderr == "stdout" and opts.stdout == "capture")
  if opts.on_output ~= nil and not captured then
    return "on_output", "has no effect without stdout or stderr = 'capture'"
  end
  if opts.stderr == "stdout" and type(opts.stdout) ~= "table" and opts.stdout ~= "capture"
    and opts.stdout ~= "syslog" then
    return "stderr", "'stdout' needs stdout = 'capture', 'syslog' or {file = ...} (what the launcher reads)"
  end
  -- a file the launcher rotates cannot be written by another writer too
  -- (the other's lines would follow it into PATH.1, past max_bytes)
  local out_file, err_file = file_of(opts.stdout), file_of(opts.stderr)
  if (type(opts.stdout) == "table" or type(opts.stderr) == "table") and out_file and err_file
    and file_identity(out_file) == file_identity(err_file) then
    if type(opts.stdout) == "table" then return "stderr", "the same file as stdout's: use stderr = 'stdout'" end
    return "stderr", "the same file as stdout's, which the app appends to itself: the launcher cannot rotate it"
      .. " (give the file, to rotate, as stdout, and stderr = 'stdout')"
  end
  -- nor can one stream's file be one of the other's rotated files (a
  -- rotation would rename it away, and the lines written to it after).
  -- (Looked at without a table made: a start checks its options, and
  -- what it allocates is garbage the launcher's peak memory holds.)
  local rotated, by, named = rotated_as(opts.stdout, err_file), "stdout", "stderr"
  if not rotated then rotated, by, named = rotated_as(opts.stderr, out_file), "stderr", "stdout" end
  if rotated then
    return named, string.format("names %s, one of %s's rotated files: a rotation would rename it away,"
      .. " with the lines written to it since", rotated, by)
  end
  -- a file probe's file cannot be one the launcher makes itself: what
  -- was at its path is read before the stdio files are opened (made), so
  -- the probe would count the launcher's file, or the app's first line
  -- in it, or a rotation, as the app's ready
  local probe_file = type(opts.ready) == "table" and opts.ready.file
  if probe_file then
    local probe_id = file_identity(probe_file)
    local why = made_for_stream(opts.stdout, "stdout", probe_file, probe_id)
      or made_for_stream(opts.stderr, "stderr", probe_file, probe_id)
    if why then return "ready", why end
  end
  -- the ring output_keep sizes is filled where the launcher reads a stream
  if opts.output_keep ~= nil and not read_by_launcher(opts.stdout) and not read_by_launcher(opts.stderr) then
    return "output_keep", "has no effect without stdout or stderr = 'capture', 'syslog' or {file = ...}"
      .. " (the lines kept are those the launcher reads)"
  end
  -- a uid (or a string of digits: the uid itself) needs no entry; a name
  -- does (one that cannot be read for now, out of descriptors, is no
  -- mistake: the start fails for that, or appstart-helper says)
  if type(user) == "string" and not user:find("^%d+$") and no_entry(core.user(user)) then
    return "user", "no such user '" .. user .. "'"
  end
  -- a gid needs no entry (as a uid needs none); a name does
  local group = opts.group
  if type(group) == "string" and not group:find("^%d+$") and no_entry(core.group(group)) then
    return "group", "no such group '" .. group .. "'"
  end
end

--- opts checked: raises the argument error, naming `who` (the function
-- called), at error level `level` (as error() counts: 2 is the caller of
-- options.assert).
function options.assert(opts, who, level)
  local field, why = options.check(opts)
  if not field then return end
  if field == "" then error(who .. ": " .. why, level) end
  error(string.format("%s: field '%s': %s", who, field, why), level)
end

--- name -> default, for the options that have one
options.DEFAULTS = {}
for name, spec in pairs(options.SCHEMA) do options.DEFAULTS[name] = spec.default end

return options
