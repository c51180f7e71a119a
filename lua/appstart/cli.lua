--- appstart.cli: the `appstart` command.
--
--   appstart [options] -- COMMAND [ARG...]
--
-- Starts COMMAND through appstart.start, prints its pid, name and time to
-- ready and exits 0 leaving it running (its stdout and stderr on /dev/null
-- unless told otherwise, so that $(appstart ...) returns at ready); with
-- --watch it stays, forwards SIGHUP, SIGINT, SIGTERM (and every other
-- signal that would end it: CAUGHT_SIGNALS, but those it was started with
-- ignored) to the app, turns a second
-- and third SIGINT into SIGTERM and SIGKILL, and exits with the app's
-- exit code. Exit status: 1 when the
-- start fails or a signal interrupts it (the app is then terminated, like
-- any failed start), 2 on a usage error.
--
-- `cli.main(argv)` returns the exit code instead of exiting, so the command
-- can be driven from Lua; lua/bin/appstart is the executable.
local appstart = require "appstart"
local core = require "appstart.core"
local start = require "appstart.start"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"
local App = require "appstart.app"
local signal = require "appstart.signal"
local settings = require "appstart.settings"

local cli = {}

local USAGE = [[
Usage: appstart [options] -- COMMAND [ARG...]
       appstart supervise [--json] [-q | -v] [--] FILE.lua   (see appstart supervise --help)

Start COMMAND, wait until it reports that it is ready, print its pid, name
and time to ready, and exit 0 leaving it running.

  --ready=WHAT             how COMMAND is known ready (default notify):
                           notify: sd_notify READY=1 to $NOTIFY_SOCKET;
                           fd: one line (its name) on descriptor --ready-fd;
                           none: ready as soon as it runs;
                           tcp:HOST:PORT, unix:PATH: a connection succeeds;
                           file:PATH: PATH is made (probed from 1 ms on,
                           backing off to --probe-interval);
                           forks: COMMAND forks the daemon and exits 0,
                           the daemon's pid is in --pid-file
  --pid-file=PATH          where a --ready=forks daemon writes its pid
  --probe-interval=S       the longest wait between probes (default 0.1)
  --probe-timeout=S        one tcp: connect's limit (default 1)
  --ready-fd=N             descriptor for --ready=fd (default: first free
                           from 3); implies --ready=fd
  --pid-fd=N               descriptor on which COMMAND, which forks, reports
                           its daemon's pid (default 3; not with --user,
                           whose helper is appstart's own)
  --pid-format=int32le|line  format of that pid (default int32le; not with
                           --user)
  --notify-access=main|exec|all  whose ready message counts (default exec;
                           only with --ready=notify or fd)
  --user=NAME|UID          run COMMAND as that user through appstart-helper
  --group=NAME|GID         its primary group (only with --user; default: the
                           user's own)
  --env=NAME=VALUE         set a variable in COMMAND's environment
                           (repeatable)
  --clear-env              start from an empty environment (with --env: only
                           those variables)
  --chdir=DIR              run COMMAND in DIR
  --stdin=inherit|null|PATH  the app's stdin (default inherit; null with
                           --user, and without --watch where it is a
                           terminal)
  --stdout=inherit|null|PATH|capture|syslog|file:PATH:MAX:KEEP
                           the app's stdout (a PATH is appended to);
                           default null, so that $(appstart ...) returns at
                           ready and prints only appstart's own line; with
                           --watch, inherit (capture with --json, whose
                           stdout is the JSON alone). The launcher reads capture,
                           syslog and file: (only with --watch): capture
                           prints each line on stderr as "NAME[PID]: LINE";
                           syslog sends it to /dev/log (stdout at info,
                           stderr at err); file: appends to PATH, rotated
                           to PATH.1 .. PATH.KEEP (default 1) when it would
                           pass MAX bytes (a number, or with K, M or G);
                           :KEEP, or :MAX:KEEP, may be left out; a field
                           no size can be read from (1.5K, -1, 10MB) is
                           an error, not part of PATH's name
  --stderr=inherit|null|PATH|capture|syslog|file:PATH:MAX:KEEP|stdout
                           the app's stderr, as --stdout; default null,
                           with --watch inherit (whatever --stdout is);
                           stdout: into --stdout's capture, syslog or file
                           On a failed start, the app's last lines read
                           this way are printed under the message
  --timeout=S              seconds to wait for ready (default 40)
  --pid-timeout=S          seconds to wait for the pid on --pid-fd
                           (default 10; only with --user, --pid-fd or
                           --pid-format)
  --grace=S                seconds from SIGTERM to SIGKILL when the app must
                           be stopped (default 5)
  --kill-mode=process|group|cgroup  what a stop reaches: the app alone
                           (default), its process group (it gets a session
                           of its own), or its cgroup v2 (nothing it forks
                           escapes)
  --watchdog=S             the app must send WATCHDOG=1 at least every S
                           seconds (it gets WATCHDOG_USEC), else it is
                           killed with SIGABRT (only with --watch)
  --watch                  stay until the app exits (showing its STATUS=
                           updates), forwarding SIGHUP, SIGINT, SIGTERM
                           and every other signal that would end it
                           (SIGQUIT, SIGUSR1, SIGABRT, the real-time
                           ones...) to it (a second SIGINT, ^C, sends SIGTERM,
                           a third SIGKILL; once it has exited, a SIGINT
                           sends SIGKILL to what it left in its group); exit
                           with its exit code (128+N when signal N killed it,
                           255 when its status cannot be known: not
                           appstart's child; killed by a SIGHUP, SIGINT,
                           SIGQUIT or SIGTERM it got from the command, or
                           from the terminal with it, die by that signal;
                           by SIGINT when a ^C's SIGTERM or SIGKILL did)
  --json                   print one JSON object line instead of text, also
                           when the start fails:
                           {"code":..,"message":..,"pid":..,"exit_code":..,
                           "signal":..,"output":[..]} (null where not known;
                           output: the app's last lines, [] unless read)
  -q, --quiet              print nothing on success (not with -v)
  -v, --verbose            log each step on stderr
  -h, --help               show this help
  --version                show the version

Options take their value as --opt=VALUE or --opt VALUE; S is any number
of seconds >= 0 (5, 0.5, .5, 1e3; > 0 for --timeout, --pid-timeout,
--watchdog, --probe-interval and --probe-timeout). Relative paths in options (--stdout,
--ready=file:/unix:, --pid-file) are the command's own directory's, not
--chdir's (COMMAND itself is looked up after --chdir).
Exit status: 0 ready (with --watch: the app's exit code), 1 the start
failed or was interrupted by a signal (the app is not left running; but
a daemon a forking COMMAND left before its pid was known escapes unless
--kill-mode=cgroup, or group when it keeps its group), 2 usage error.
With --watch, a signal sent to the command's whole process group (kill
-TERM -PGID, timeout(1)) reaches the app twice: directly, and forwarded;
only a terminal's ^C is recognised as such.
]]

-------------------------------------------------------------------------------
-- JSON: just enough to write one object line, always valid JSON

local JSON_ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

--- A JSON string literal. JSON text is UTF-8, so a byte that is not part of
-- a valid UTF-8 sequence (an app's name is any bytes) becomes U+FFFD. The
-- C1 controls (U+0080 to U+009F: U+009B is a terminal's CSI) and U+2028,
-- U+2029 (line ends to JavaScript) are escaped as the C0 ones are: the
-- object may be read at a terminal.
local function json_string(s)
  local parts, i = {}, 1
  while true do
    local n, bad = utf8.len(s, i)
    if n then
      parts[#parts + 1] = s:sub(i)
      break
    end
    parts[#parts + 1] = s:sub(i, bad - 1)
    parts[#parts + 1] = "\u{FFFD}"
    i = bad + 1
  end
  local escaped = table.concat(parts):gsub('[%c"\\]', function(c)
    return JSON_ESCAPES[c] or string.format("\\u%04x", c:byte())
  end):gsub("\xC2([\x80-\x9F])", function(c)
    return string.format("\\u%04x", c:byte())
  end):gsub("\xE2\x80([\xA8\xA9])", function(c)
    return string.format("\\u%04x", 0x2000 + c:byte() - 0x80)
  end)
  return '"' .. escaped .. '"'
end

local function json_value(v)
  if v == nil then return "null" end
  local t = type(v)
  if t == "boolean" then return tostring(v) end
  if math.type(v) == "integer" then return string.format("%d", v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.14g", v)
  end
  if t == "string" then return json_string(v) end
  if t == "table" then -- a list of strings
    local out = {}
    for i, item in ipairs(v) do out[i] = json_string(item) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  error("json: cannot encode a " .. t, 2)
end

--- One JSON object from an ordered list of {key, value} pairs (a nil value
-- is written as null), so the fields come out in a stable order.
function cli.json_object(fields)
  local out = {}
  for i, kv in ipairs(fields) do
    out[i] = json_string(kv[1]) .. ":" .. json_value(kv[2])
  end
  return "{" .. table.concat(out, ",") .. "}"
end

-------------------------------------------------------------------------------
-- option parsing

-- one of an option's values (appstart.start's, options.SCHEMA)
local function enum(field)
  local allowed, list = {}, options.SCHEMA[field].values
  for _, v in ipairs(list) do allowed[v] = true end
  local expected = table.concat(list, ", ", 1, #list - 1) .. " or " .. list[#list]
  return function(value)
    if allowed[value] then return value end
    return nil, "expected " .. expected
  end
end

-- none|fd|notify, or a probe: tcp:HOST:PORT, unix:PATH, file:PATH
local function ready_value(value)
  if value == "none" or value == "fd" or value == "notify" then return value end
  if value == "forks" then return { forks = true } end -- its pid_file comes from --pid-file
  local path = value:match("^file:(.+)$")
  if path then return { file = path } end
  if value:match("^tcp:") or value:match("^unix:") then
    local ok, why = options.parse_address(value)
    if not ok then return nil, why end
    return { connect = value }
  end
  return nil, "expected none, fd, notify, tcp:HOST:PORT, unix:PATH, file:PATH or forks"
end

-- (the range appstart.start's: options.SCHEMA)
local function descriptor(value)
  local n = value:match("^%d+$") and math.tointeger(tonumber(value))
  if n and not options.SCHEMA.ready_fd.check(n) then return n end
  return nil, "expected a descriptor number from 3 to " .. options.DESCRIPTOR_MAX
end

-- any finite number >= 0 that Lua reads (5, 0.5, .5, 1e3), but no nan or inf
-- A decimal number, as the help writes them (5, 0.5, 1e3): not whatever
-- Lua's tonumber takes (" 5", "0x10", which reads as 16)
local function decimal(value)
  if not (value:match("^%d+%.?%d*$") or value:match("^%.%d+$") or value:match("^%d*%.?%d+[eE][-+]?%d+$")
      or value:match("^%d+%.[eE][-+]?%d+$")) then
    return nil
  end
  return tonumber(value)
end

-- (the ranges appstart.start's: kill_grace's, ready_timeout's; an
-- option's own bound, such as probe_interval's, is said by its check)
local function seconds(value)
  local n = decimal(value)
  if n and not options.SCHEMA.kill_grace.check(n) then return n end
  return nil, "expected a number of seconds >= 0 (e.g. 5, 0.5 or 1e3)"
end

local function positive_seconds(value)
  local n = decimal(value)
  if n and not options.SCHEMA.ready_timeout.check(n) then return n end
  return nil, "expected a number of seconds > 0"
end

local function id_of(what)
  return function(value)
    if value == "" then return nil, "expected a " .. what end
    if value:match("^%d+$") then return math.tointeger(tonumber(value)) or value end
    return value
  end
end

local function stdio(value)
  if value == "" then return nil, "expected inherit, null or a path" end
  return value
end

-- --pid-file: a path (inherit and null mean nothing there: names as any)
local function a_path(value)
  if value == "" then return nil, "expected a path" end
  return value
end

-- (floats but for none: an integer product would wrap, 2^54 K becoming
-- 1024 bytes, where a float is seen too large)
local SIZE_UNITS = { [""] = 1, K = 1024.0, M = 1024.0 ^ 2, G = 1024.0 ^ 3 }

-- What follows the last ':' of a file: output's file name, where it is
-- no size (output_stdio): a size that could not be read (1.5K, -1, 10MB,
-- 0x10, or a third number) when it begins as a number (a digit, or a
-- sign, '.' or ',' and then one), unless it has an extension ('.' and a
-- letter: app:2024-01-01.log is a name). Taken as part of the name, the
-- rotation it asked for would be lost without a word.
local function size_not_read(field)
  return field:match("^[-+]?[.,]?%d") and not field:match("%.%a")
end

-- --stdout/--stderr: inherit, null, PATH, capture, syslog, or
-- file:PATH[:MAX_BYTES[:KEEP]] (MAX_BYTES with an optional K, M or G)
local function output_stdio(value)
  if value:sub(1, 5) ~= "file:" then return stdio(value) end
  local rest, fields = value:sub(6), {}
  -- trailing :NUMBER fields are the sizes (at most two)
  for _ = 1, 2 do
    local head, field = rest:match("^(.*):([^:/]*)$")
    if not head or not field:match("^%d+[KMGkmg]?$") then break end
    table.insert(fields, 1, field)
    rest = head
  end
  if rest == "" then return nil, "expected file:PATH[:MAX_BYTES[:KEEP]]" end
  -- (an empty field is a mistake, not part of the file's name)
  if rest:match(":$") then return nil, "expected file:PATH[:MAX_BYTES[:KEEP]], got an empty field" end
  -- (a ':' in a directory's name is the name's: only the file's is read)
  local field = rest:match(":([^:/]*)$")
  if field and size_not_read(field) then
    if field:match("^%d+[KMGkmg]?$") then
      return nil, string.format("expected file:PATH[:MAX_BYTES[:KEEP]], got one number too many, '%s'", field)
    end
    return nil, string.format("'%s' is neither MAX_BYTES (a whole number, or with K, M or G) nor KEEP "
      .. "(a whole number)", field)
  end
  local t = { file = rest }
  if fields[1] then
    local n, unit = fields[1]:match("^(%d+)(%a?)$")
    local bytes = tonumber(n) * SIZE_UNITS[unit:upper()]
    if bytes >= 2 ^ 63 then return nil, "MAX_BYTES is too large" end
    t.max_bytes = math.tointeger(bytes)
    if not t.max_bytes or t.max_bytes < 1 then return nil, "MAX_BYTES must be > 0" end
  end
  if fields[2] then
    if fields[2]:match("%a") then return nil, "KEEP must be a number of files" end
    t.keep = math.tointeger(tonumber(fields[2]))
    if not t.keep then return nil, "KEEP is too large" end
  end
  return t
end

local function directory(value)
  if value == "" then return nil, "expected a directory" end
  return value
end

-- NAME=VALUE, NAME neither empty nor holding '='
-- the notify protocol's variables: a start sets them (or none), whatever
-- the environment holds (appstart.start's env)
local STARTS_OWN = { NOTIFY_SOCKET = "--ready=notify", WATCHDOG_USEC = "--watchdog", WATCHDOG_PID = "--watchdog" }

local function variable(value)
  local name, v = value:match("^([^=]+)=(.*)$")
  if not name then return nil, "expected NAME=VALUE" end
  if STARTS_OWN[name] then
    return nil, string.format("%s is the start's own to set: %s gives the app one", name, STARTS_OWN[name])
  end
  return { name, v }
end

-- option name -> key in the parsed table; `parse` for those taking a value;
-- `list` for those that may be repeated (the values are kept in order)
local OPTIONS = {
  ready = { key = "ready", parse = ready_value },
  ["ready-fd"] = { key = "ready_fd", parse = descriptor },
  ["probe-interval"] = { key = "probe_interval", parse = positive_seconds },
  ["pid-file"] = { key = "pid_file", parse = a_path },
  ["probe-timeout"] = { key = "probe_timeout", parse = positive_seconds },
  ["pid-fd"] = { key = "pid_fd", parse = descriptor },
  ["pid-format"] = { key = "pid_format", parse = enum("pid_format") },
  ["notify-access"] = { key = "notify_access", parse = enum("notify_access") },
  user = { key = "user", parse = id_of("user name or uid") },
  group = { key = "group", parse = id_of("group name or gid") },
  env = { key = "env", parse = variable, list = true },
  ["clear-env"] = { key = "clear_env" },
  chdir = { key = "chdir", parse = directory },
  stdin = { key = "stdin", parse = stdio },
  stdout = { key = "stdout", parse = output_stdio },
  stderr = { key = "stderr", parse = output_stdio },
  timeout = { key = "timeout", parse = positive_seconds },
  ["pid-timeout"] = { key = "pid_timeout", parse = positive_seconds },
  grace = { key = "grace", parse = seconds },
  ["kill-mode"] = { key = "kill_mode", parse = enum("kill_mode") },
  watchdog = { key = "watchdog", parse = positive_seconds },
  watch = { key = "watch" }, json = { key = "json" }, quiet = { key = "quiet" },
  verbose = { key = "verbose" }, help = { key = "help" }, version = { key = "version" },
}

-- short options: the long ones they stand for
local SHORT = { ["-h"] = "help", ["-q"] = "quiet", ["-v"] = "verbose" }

-- --help or --version among the options (before COMMAND), the first one
-- given: it wins whatever else is given, a mistake in the rest included.
local function help_or_version(argv)
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then return nil end
    local name, value = a:match("^%-%-([^=]*)=(.*)$")
    name = SHORT[a] or name or (a:sub(1, 2) == "--" and a:sub(3))
    if not name then
      if a:sub(1, 1) ~= "-" or a == "-" then return nil end -- (COMMAND)
    elseif (name == "help" or name == "version") and not value then
      return name -- (--help=X is a usage error, as any flag given a value)
    elseif not value and OPTIONS[name] and OPTIONS[name].parse and argv[i + 1] ~= "--" then
      -- (its value: "--chdir --help" is a directory; but "--" is no
      -- value, as cli.parse takes it: "--chdir -- --version" is an option
      -- with none, and COMMAND's --version)
      i = i + 1
    end
    i = i + 1
  end
  return nil
end

--- argv (1..n) -> options table, or nil, message (a usage error).
-- --help and --version win whatever else is given.
function cli.parse(argv)
  local first = help_or_version(argv)
  if first then return { [first] = true } end
  local o = {}
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "--" then
      o.command = table.move(argv, i + 1, n, 1, {})
      break
    elseif a:sub(1, 2) == "--" or SHORT[a] then
      local name, value = a:match("^%-%-([^=]*)=(.*)$")
      name = SHORT[a] or name or a:sub(3)
      local spec = OPTIONS[name]
      if not spec then return nil, "unknown option '--" .. name .. "'" end
      -- a second value would silently replace the first (--user=A --user=B)
      if not spec.list and o[spec.key] ~= nil then
        return nil, "option '--" .. name .. "' given twice"
      end
      if not spec.parse then
        if value then return nil, "option '--" .. name .. "' takes no value" end
        o[spec.key] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil or value == "--" then
            return nil, "option '--" .. name .. "' needs a value"
          end
        end
        local v, why = spec.parse(value)
        if v == nil then
          return nil, string.format("option '--%s': invalid value '%s' (%s)", name, value, why)
        end
        if spec.list then
          o[spec.key] = o[spec.key] or {}
          table.insert(o[spec.key], v)
        else
          o[spec.key] = v
          if name == "ready" then o.ready_arg = value end
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option '" .. a .. "'"
    else
      -- the first argument that is not an option starts COMMAND
      o.command = table.move(argv, i, n, 1, {})
      break
    end
    i = i + 1
  end
  if not o.command or #o.command == 0 then return nil, "missing COMMAND (after --)" end
  if o.quiet and o.verbose then return nil, "--quiet and --verbose exclude each other" end
  if o.group ~= nil and o.user == nil then return nil, "option '--group' needs --user" end
  if o.watchdog and not o.watch then
    return nil, "option '--watchdog' needs --watch (once appstart exits, nobody reads the pings)"
  end
  local forks = type(o.ready) == "table" and o.ready.forks
  if forks and not o.pid_file then return nil, "option '--ready=forks' needs --pid-file=PATH" end
  if o.pid_file then
    if not forks then return nil, "option '--pid-file' needs --ready=forks" end
    o.ready.pid_file = o.pid_file
  end
  if forks and (o.pid_fd or o.pid_format) then
    return nil, string.format("option '--%s' has no effect with --ready=forks (the daemon's pid is read from"
      .. " --pid-file)", o.pid_fd and "pid-fd" or "pid-format")
  end
  for _, name in ipairs { "stdout", "stderr" } do
    local v = o[name]
    if not o.watch and (type(v) == "table" or v == "capture" or v == "syslog" or (name == "stderr" and v == "stdout")) then
      return nil, string.format("option '--%s=%s' needs --watch (appstart reads the app's output: once it exits,"
        .. " nobody would)", name, type(v) == "table" and "file:..." or v)
    end
  end
  if o.ready_fd then
    if o.ready and o.ready ~= "fd" then
      return nil, "option '--ready-fd' needs --ready=fd, not --ready=" .. o.ready_arg
    end
    o.ready = "fd"
  end
  -- an option that would have no effect is a mistake (as for appstart.start)
  if o.notify_access and o.ready ~= nil and o.ready ~= "notify" and o.ready ~= "fd" then
    return nil, "option '--notify-access' needs --ready=notify or --ready=fd (it says whose ready message"
      .. " counts), not --ready=" .. o.ready_arg
  end
  if o.pid_timeout and not o.user and not o.pid_fd and not o.pid_format then
    if forks then
      return nil, "option '--pid-timeout' has no effect with --ready=forks (the pid file is waited for"
        .. " within --timeout)"
    end
    return nil, "option '--pid-timeout' needs --user, --pid-fd or --pid-format (it bounds the wait for the app's pid)"
  end
  return o
end

-------------------------------------------------------------------------------
-- output

local SIGNAL_NAMES = {
  [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [6] = "SIGABRT", [9] = "SIGKILL",
  [10] = "SIGUSR1", [11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM",
  [15] = "SIGTERM",
}
-- every signal whose default would end the command, so that none leaves
-- an app behind: the real-time ones too (SIGILL, SIGFPE, SIGSEGV and
-- SIGBUS are faults of the command's own, which a mask cannot hold back)
local CAUGHT_SIGNALS = { "HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "ALRM", "PIPE", "VTALRM", "PROF",
  "XCPU", "XFSZ", "PWR", "IO", "ABRT", "TRAP", "SYS", "STKFLT" }
-- (from the kernel's first, 32: the C library keeps 32 and 33 for itself,
-- and its RTMIN is 34, but a kill -32 ends the command all the same)
for sig = 32, core.signum("RTMAX") do CAUGHT_SIGNALS[#CAUGHT_SIGNALS + 1] = sig end
cli.CAUGHT_SIGNALS = CAUGHT_SIGNALS -- (appstart supervise catches them too)

--- Enter the command's last words: what came on `signals` too late to act
-- on is dropped and `signals` closed (which unblocks them), and the signals
-- that end the command have their default actions until the returned
-- to-be-closed value closes. A handler of the process's, as lua5.4's own
-- for SIGINT, would hold a ^C until a write returns, and then raise
-- "interrupted!"; the handlers are given back at the close.
-- @param signals the command's core.signals(CAUGHT_SIGNALS)
-- @return a value to hold in a `<close>` variable
function cli.last_words(signals)
  local guard = setmetatable({}, { __close = function()
    core.default_action(CAUGHT_SIGNALS, false)
  end })
  signals:read()
  core.default_action(CAUGHT_SIGNALS, true)
  signals:close()
  return guard
end

local SIGPIPE, SIGINT, SIGHUP = core.signum("PIPE"), core.signum("INT"), core.signum("HUP")

-- A watched app killed by one of these, which the command forwarded to it
-- or which the terminal sent them both, ends the command by it too, not
-- with 128+N: a shell that waits for a command in its foreground takes a
-- normal exit after its own ^C for a command that handled the ^C, and
-- goes on (bash's loops, `make -k`'s recipes). Killed by the SIGTERM or
-- SIGKILL that a second or third ^C sent, it ends the command by SIGINT.
local DIE_BY = { [SIGINT] = true, [SIGHUP] = true, [core.signum("QUIT")] = true, [core.signum("TERM")] = true }

local function signal_name(sig)
  local name = SIGNAL_NAMES[sig] or core.signame(sig)
  return name and (name:match("^SIG") and name or "SIG" .. name) or ("signal " .. sig)
end

local printable = log.printable

-- COMMAND's last component (COMMAND itself when that is empty)
local function program_of(path)
  local program = path:match("([^/]*)/*$")
  return program ~= "" and program or path
end

-- What the app drives onto the command's stderr (its STATUS= updates, its
-- captured lines) and its own log lines never wait for stderr (see
-- log.show): the command still has to time out, cancel and forward
-- signals.
local show = log.show

-- The characters a terminal shows two columns wide, as ranges of code
-- points (first, last, ...): Unicode's East Asian Width W and F (CJK, Hangul,
-- kana, full-width forms, the emoji shown as such by default: U+231A,
-- U+26A1, U+1F680 and the like), each range run on over the unassigned
-- code points next to it (a character assigned there later is most likely
-- wide too), planes 2 and 3 whole.
local WIDE = {
  0x1100, 0x115F, 0x231A, 0x231B, 0x2329, 0x232A, 0x23E9, 0x23EC, 0x23F0, 0x23F0, 0x23F3, 0x23F3,
  0x25FD, 0x25FE, 0x2614, 0x2615, 0x2648, 0x2653, 0x267F, 0x267F, 0x2693, 0x2693, 0x26A1, 0x26A1,
  0x26AA, 0x26AB, 0x26BD, 0x26BE, 0x26C4, 0x26C5, 0x26CE, 0x26CE, 0x26D4, 0x26D4, 0x26EA, 0x26EA,
  0x26F2, 0x26F3, 0x26F5, 0x26F5, 0x26FA, 0x26FA, 0x26FD, 0x26FD, 0x2705, 0x2705, 0x270A, 0x270B,
  0x2728, 0x2728, 0x274C, 0x274C, 0x274E, 0x274E, 0x2753, 0x2755, 0x2757, 0x2757, 0x2795, 0x2797,
  0x27B0, 0x27B0, 0x27BF, 0x27BF, 0x2B1B, 0x2B1C, 0x2B50, 0x2B50, 0x2B55, 0x2B55, 0x2E80, 0x303E,
  0x3040, 0x3247, 0x3250, 0x4DBF, 0x4E00, 0xA4CF, 0xA960, 0xA97F, 0xAC00, 0xD7AF, 0xF900, 0xFAFF,
  0xFE10, 0xFE1F, 0xFE30, 0xFE6F, 0xFF00, 0xFF60, 0xFFE0, 0xFFE6, 0x16FE0, 0x1BBFF, 0x1F004, 0x1F004,
  0x1F0CF, 0x1F0CF, 0x1F18E, 0x1F18E, 0x1F191, 0x1F19A, 0x1F200, 0x1F320, 0x1F32D, 0x1F335, 0x1F337, 0x1F37C,
  0x1F37E, 0x1F393, 0x1F3A0, 0x1F3CA, 0x1F3CF, 0x1F3D3, 0x1F3E0, 0x1F3F0, 0x1F3F4, 0x1F3F4, 0x1F3F8, 0x1F43E,
  0x1F440, 0x1F440, 0x1F442, 0x1F4FC, 0x1F4FF, 0x1F53D, 0x1F54B, 0x1F54E, 0x1F550, 0x1F567, 0x1F57A, 0x1F57A,
  0x1F595, 0x1F596, 0x1F5A4, 0x1F5A4, 0x1F5FB, 0x1F64F, 0x1F680, 0x1F6C5, 0x1F6CC, 0x1F6CC, 0x1F6D0, 0x1F6D2,
  0x1F6D5, 0x1F6DF, 0x1F6EB, 0x1F6EF, 0x1F6F4, 0x1F6FF, 0x1F7E0, 0x1F7FF, 0x1F90C, 0x1F93A, 0x1F93C, 0x1F945,
  0x1F947, 0x1F9FF, 0x1FA70, 0x1FAFF, 0x20000, 0x3FFFD,
}

local function columns_of(code)
  for i = 1, #WIDE, 2 do
    if code < WIDE[i] then return 1 end
    if code <= WIDE[i + 1] then return 2 end
  end
  return 1
end

-- What of text fits in `columns` columns, a UTF-8 sequence never cut (a
-- character: a valid sequence, its width; a byte of one that is not valid
-- UTF-8, overlong, a surrogate, past U+10FFFF or cut short, or a
-- continuation byte that no lead byte began, one column each: a terminal
-- shows a U+FFFD for each).
local function first_columns(text, columns)
  local n, owed = 0, 0 -- (owed: the continuation bytes of the last valid sequence)
  for i = 1, #text do
    local b = text:byte(i)
    if owed > 0 then
      owed = owed - 1
    else
      local width = 1
      if b >= 0xC0 then
        local ok, code = pcall(utf8.codepoint, text, i)
        if ok then
          width = columns_of(code)
          owed = code < 0x800 and 1 or code < 0x10000 and 2 or 3
        end
      end
      n = n + width
      if n > columns then return text:sub(1, i - 1) end
    end
  end
  return text
end

--- The STATUS= display while the start waits: on a terminal one line
-- redrawn in place (at most ten times a second), plain `appstart: status:
-- TEXT` lines otherwise (at most once a second, as the log's lines about
-- what an app sends). One that comes sooner is held, and shown when its
-- time comes (the latest held), or at flush.
local function status_display(quiet)
  local display = { showing = false }
  local tty = not quiet and core.isatty(2)
  local every = tty and 0.1 or 1
  local shown_at, held, timer = -math.huge, nil, false
  function display.clear()
    if display.showing and show("\r", "", "\27[K") then display.showing = false end
  end
  local function draw(text)
    shown_at = core.now()
    if tty then
      -- a longer line would wrap, and "\r" could not take it back (the
      -- terminal's width now, as it may have been resized; a shell does
      -- not export COLUMNS)
      local width = (core.terminal_columns(2) or tonumber(os.getenv("COLUMNS")) or 80) - 1
      text = first_columns(text, width)
      if show("\r", text, "\27[K") then display.showing = true end
    else
      show("appstart: status: ", text, "\n")
    end
  end
  --- The status held, shown now.
  function display.flush()
    if timer then loop.unwatch(timer) end
    timer = false
    if held then
      local text = held
      held = nil
      draw(text)
    end
  end
  function display.on_status(_, text)
    if quiet then return end
    held = printable(text)
    if core.now() - shown_at >= every then return display.flush() end
    if not timer then timer = loop.at(shown_at + every, display.flush) end
  end
  return display
end

-- (an end whose status cannot be known, an app that is not the command's
-- child, is not taken for a success: 255, as a supervisor takes it for a
-- failure)
local function exit_code(how)
  if how.code then return how.code end
  if how.signal then return 128 + how.signal end
  return 255
end

--- Until stdout takes a write of up to PIPE_BUF bytes at once, waiting in
-- the loop (an epoll set of its own, readable then), not in a write: a
-- reader that does not read leaves the command to its signals. true, or
-- nil when the wait was cancelled (a signal came: see run).
local function await_stdout()
  if core.writable(1) then return true end
  local p = core.poller()
  if not p then return true end -- (out of descriptors: the write waits)
  if not p:add(1, 1, "w") then p:close(); return true end
  local fd = p:fd()
  local r = loop.wait(fd)
  loop.release(fd)
  p:close()
  return r ~= nil
end

--- Write text to stdout at once: true, or false and why it could not be
-- (a full disk, a reader gone: the command's SIGPIPE is not its end).
function cli.put_stdout(text)
  local ok, why = io.stdout:write(text)
  if ok then ok, why = io.stdout:flush() end
  return ok and true or false, why
end

--- Say on stderr that what went to stdout is lost (what: its name); with
-- `now`, only where stderr takes it at once (counted if not: a reader that
-- does not read must not keep the command from its signals while it
-- watches an app), else however long stderr takes it (a last word).
function cli.say_lost(why, what, now)
  local text = "cannot write to stdout (" .. tostring(why) .. "): " .. what .. " lost"
  if now then return log.show("appstart: ", text, "\n") end
  io.stderr:write(log.unshown(), "appstart: ", text, "\n")
end

--- The command's whole answer (its help, its version: what) on stdout:
-- the exit code, 0, or 1 when it could not be written (said on stderr).
-- SIGPIPE blocked meanwhile: a reader gone fails the write, as a full
-- disk does, and is said so; the signal is read, not left to end the
-- command once it is let through again.
function cli.answer(text, what)
  local pipe = core.signals { "PIPE" }
  local ok, why = cli.put_stdout(text)
  if pipe then
    pipe:read()
    pipe:close()
  end
  if ok then return 0 end
  cli.say_lost(why, what)
  return 1
end

local EAGAIN = 11 -- (Linux's errno: the descriptor takes nothing now)

--- text on stdout, each PIPE_BUF bytes of it once stdout takes them at
-- once: true; nil when a signal came meanwhile (its wait cancelled, or
-- interrupted() true: a signal read in the turn of the loop that found
-- stdout ready, whose cancel came too late for that wait), and whether
-- part of text went out then; false, why when the write failed (a closed
-- pipe). Written with core.write_now, never a plain write: a terminal
-- says POLLOUT with any room left, a byte of it, and a write of more
-- would sleep in the kernel until its reader reads, the command's
-- signals blocked (a SIGTERM neither cancelled the start nor was
-- forwarded). What it did not take waits in the loop again.
local function write_stdout(text, interrupted)
  local i = 1
  while i <= #text do
    if not await_stdout() or interrupted() then return nil, i > 1 end
    local n, _, errno = core.write_now(1, text:sub(i, i + log.PIPE_BUF - 1))
    if not n and errno ~= EAGAIN then return false, core.strerror(errno) end
    if not n or n == 0 then
      -- POLLOUT and nothing taken (a terminal's last byte of room, short
      -- of the "\r\n" it makes of a "\n"; another writer's bytes first):
      -- it may say POLLOUT on until its reader reads, so stdout is looked
      -- at again a poll interval on, not at once (a loop at full CPU)
      if loop.wait(nil, core.now() + settings.poll_interval) == nil or interrupted() then return nil, i > 1 end
    else
      i = i + n
    end
  end
  return true
end

-- The ready report (build(name, status)) in one write of PIPE_BUF bytes
-- at most: a signal between two writes would tear it (the start cancelled
-- with half a line out, a pid shown of an app then terminated; only a
-- terminal short of room still takes a part: see write_stdout). An app
-- may make it longer (its name on its ready line, a STATUS=, each control
-- byte six in JSON): the status is cut first, then the name, to the
-- longest start that fits, "[...]" after it. So are the exit's line and
-- object, and (to `most` bytes, not PIPE_BUF) the name in a line shown.
local function fitted(build, name, status, most)
  most = most or log.PIPE_BUF
  local text = build(name, status)
  if #text <= most then return text end
  local function longest(fits, whole)
    local lo, hi = 0, #whole -- (fits(lo) holds, or nothing does)
    while lo < hi do
      local mid = (lo + hi + 1) // 2
      if fits(mid) then lo = mid else hi = mid - 1 end
    end
    return whole:sub(1, lo) .. "[...]"
  end
  if status then
    local function fits(n) return #build(name, status:sub(1, n) .. "[...]") <= most end
    if fits(0) then return build(name, longest(fits, status)) end
    status = nil
  end
  local function fits(n) return #build(name:sub(1, n) .. "[...]", status) <= most end
  return build(longest(fits, name), status)
end

--- An app's name in a line shown on stderr as it is watched: log.show's
-- head, which it does not cut (it cuts the text after it, what the line
-- is there to say: "sending SIGTERM"). Printable, and cut (fitted) to half
-- a line at most: a name an app sent may be 4095 bytes, each control byte
-- four once printable, a line of 16 KB whose end was what got cut.
local function shown_name(name)
  return fitted(printable, name, nil, log.PIPE_BUF // 2)
end

-- true; nil, torn: a signal came while stdout did not take it (interrupted:
-- see write_stdout), torn when part of it went out; false, why: it could
-- not be written (a closed pipe)
local function report_ready(o, app, interrupted)
  if o.quiet then return true end
  local name = app.name or "app"
  if o.json then
    local after = math.floor(app.ready_after * 1e6 + 0.5) / 1e6
    return write_stdout(fitted(function(n, status)
      return cli.json_object { { "pid", app.pid }, { "name", n }, { "ready_after", after }, { "status", status } }
        .. "\n"
    end, name, app.status), interrupted)
  end
  return write_stdout(fitted(function(n)
    return string.format("appstart: %s ready: pid %d, %.3f s\n", printable(n), app.pid, app.ready_after)
  end, name), interrupted)
end

local function report_exit(o, app, how)
  if o.quiet then return end
  local name = app.name or "app"
  if o.json then
    -- (cut to fit as the ready object is)
    local ok, why = cli.put_stdout(fitted(function(n)
      return cli.json_object {
        { "pid", app.pid }, { "name", n }, { "exit_code", how.code }, { "signal", how.signal },
        { "watchdog", how.watchdog == true },
      } .. "\n"
    end, name))
    if not ok then cli.say_lost(why, "the exit's object") end
    return
  end
  local what
  -- (its watchdog fired: killed by it, or it exited with a code of its
  -- own as it fired, which is not said to be a kill)
  if how.watchdog and how.code then what = "exited with code " .. how.code .. " as its watchdog fired"
  elseif how.watchdog then what = "was killed by its watchdog (" .. signal_name(how.signal or 6) .. ")"
  elseif how.code then what = "exited with code " .. how.code
  elseif how.signal then what = "was killed by " .. signal_name(how.signal)
  else what = "exited (its exit status is unknown: it is not appstart's child)"
  end
  io.stderr:write(log.unshown(), fitted(function(n)
    return string.format("appstart: %s (pid %d) %s\n", printable(n), app.pid, what)
  end, name))
end

--- A start that failed: `appstart: MESSAGE` on stderr and, with --json,
-- one object on stdout too (also with --quiet, which is about success):
-- the error's code, the message, the app's pid and how it ended, each
-- null where it is not known.
local function report_failure(o, code, message, err)
  -- the app's last lines, where appstart read them, say why
  local lines = err and err.output or {}
  -- (the object first: a reader of stdout gets it whatever holds stderr)
  if o.json then
    local status = err and err.status or {}
    local ok, why = cli.put_stdout(cli.json_object {
      { "code", code }, { "message", message }, { "pid", err and err.pid or nil },
      { "exit_code", status.code }, { "signal", status.signal }, { "output", lines },
    } .. "\n")
    if not ok then cli.say_lost(why, "the failure's object") end
  end
  -- (a path of the command's in it, any bytes: escaped as every line)
  io.stderr:write(log.unshown(), "appstart: ", printable(message), "\n")
  for _, line in ipairs(lines) do io.stderr:write("  | ", printable(line), "\n") end
end

-- appstart.start fields -> the option that sets them, for argument errors
local FIELD_OPTIONS = {
  argv = "COMMAND", ready_timeout = "--timeout", kill_grace = "--grace",
  pid_timeout = "--pid-timeout", env = "--env", cwd = "--chdir", group = "--group",
  user = "--user", stdin = "--stdin", stdout = "--stdout", stderr = "--stderr",
  pid_fd = "--pid-fd", pid_format = "--pid-format", ready_fd = "--ready-fd",
  ready = "--ready", notify_access = "--notify-access", probe_interval = "--probe-interval",
  probe_timeout = "--probe-timeout", pid_file = "--pid-file", kill_mode = "--kill-mode", watchdog = "--watchdog",
}

local function option_of(field, o)
  -- helper is set when --pid-fd or --pid-format is given without --user
  if field == "helper" then return o.pid_fd and "--pid-fd" or "--pid-format" end
  -- (an env of the command's own: --env given, or --clear-env alone)
  if field == "env" then return o.env and "--env" or "--clear-env" end
  return FIELD_OPTIONS[field] or ("--" .. field:gsub("_", "-"))
end

-- A start's failure messages name options as the command's: "--ready=none"
-- (not ready = "none"), "--pid-fd without --user" (not helper = true).
local function spelling(o)
  return function(field, value)
    if field == "helper" then return option_of(field, o) .. " without --user" end
    return option_of(field, o) .. "=" .. tostring(value)
  end
end

-- the words before a field's name in appstart.start's messages ("without
-- 'user'", "same descriptor as the default 'pid_fd'", "within
-- 'ready_timeout'"); a name after any other is a value ("no such group
-- 'stdout'")
local NAMING = { with = true, without = true, as = true, within = true, ["or"] = true, default = true }

-- a file: output's fields, as the parts of file:PATH:MAX_BYTES:KEEP
local FILE_PARTS = { file = "PATH", max_bytes = "MAX_BYTES", keep = "KEEP" }

--- What appstart.start would raise for opts (the options cannot work
-- together, a user that does not exist), as a usage message naming the
-- command's option, or nil. A field named in the message ("same descriptor
-- as 'pid_fd'") is named as its option too; a value ("no such user 'x'",
-- "no such group 'stdout'") is left as it is.
local function usage_of(opts, o)
  local field, why = options.check(opts)
  if not field then return nil end
  -- the pid file is an option of its own (--ready=forks --pid-file=PATH)
  if field == "ready" and why:match("^pid_file: ") then field, why = "pid_file", why:sub(11) end
  if (field == "stdout" or field == "stderr") and type(opts[field]) == "table" then
    why = why:gsub("^field '([%l_]+)'", function(name) return FILE_PARTS[name] end)
      :gsub("without 'max_bytes'", "without MAX_BYTES")
  end
  why = why:gsub("(%a+) '([%l_]+)'", function(word, name)
    if NAMING[word] and options.SCHEMA[name] then
      return word .. " '" .. option_of(name, o) .. "'"
    end
  end):gsub("ready%.forks", "--ready=forks"):gsub("([%l_]+) = '(%w+)'", function(name, value)
    -- a field's value, as the option that sets it
    if options.SCHEMA[name] then return option_of(name, o) .. "=" .. value end
  end):gsub("{file = %.%.%.}", "file:PATH")
    -- "--stdout=capture, 'syslog' or file:PATH": each alternative an option
    :gsub("(%-%-[%l%-]+=)([%w:]+), '(%w+)' or ([%w:]+)", "%1%2, %1%3 or %1%4")
  local option = option_of(field, o)
  if option == "COMMAND" then return "COMMAND: " .. why end
  return string.format("option '%s': %s", option, why)
end

-------------------------------------------------------------------------------
-- the command

--- The app's environment: nil (the command's own) unless --env or
-- --clear-env. Lua cannot list its environment, so the names come from
-- /proc/self/environ (what this process was started with) and each value
-- from os.getenv (what it holds now: a variable unset since is left out).
local function environment(o)
  if not o.env and not o.clear_env then return nil end
  local env = {}
  if not o.clear_env then
    local f = assert(io.open("/proc/self/environ", "rb"))
    local all = f:read("a")
    f:close()
    for entry in all:gmatch("[^\0]+") do
      local name = entry:match("^([^=]+)=")
      if name then env[name] = os.getenv(name) end
    end
  end
  for _, kv in ipairs(o.env or {}) do env[kv[1]] = kv[2] end
  return env
end

local function start_options(o, display)
  -- left running, the app must not hold the command's stdout: $(appstart
  -- ...) would wait for the app to exit (as daemonize and start-stop-daemon
  -- --background, /dev/null); a watched app may keep the terminal
  local default_output = not o.watch and "null" or nil
  -- with --json the command's stdout is its JSON alone: a watched app's
  -- stdout is read, its lines shown on stderr
  local default_stdout = o.watch and o.json and "capture" or default_output
  -- an app of another user never gets a terminal (it could read what is
  -- typed there): a watched one's lines are shown as captured lines
  local default_stderr = default_output
  -- left running in a session of its own (see work), the app could read
  -- the terminal the shell reads from, its keystrokes: stdin from
  -- /dev/null where it is one, as a daemon's
  local default_stdin = not o.watch and core.isatty(0) and "null" or nil
  if o.watch and o.user then
    if core.isatty(1) and not default_stdout then default_stdout = "capture" end
    if core.isatty(2) then default_stderr = "capture" end
  end
  local opts = {
    argv = o.command, ready = o.ready, ready_fd = o.ready_fd,
    pid_fd = o.pid_fd, pid_format = o.pid_format, notify_access = o.notify_access,
    user = o.user, group = o.group, ready_timeout = o.timeout, kill_grace = o.grace,
    pid_timeout = o.pid_timeout, env = environment(o), cwd = o.chdir, stdin = o.stdin or default_stdin,
    kill_mode = o.kill_mode, watchdog = o.watchdog,
    probe_interval = o.probe_interval, probe_timeout = o.probe_timeout,
    stdout = o.stdout or default_stdout, stderr = o.stderr or default_stderr,
    -- STATUS= is a notify message: another protocol has none to show
    on_status = (o.ready == nil or o.ready == "notify") and display.on_status or nil,
  }
  -- captured lines go to the command's stderr (its stdout is appstart's
  -- own: the ready line, --json), each with the app's name and pid
  if opts.stdout == "capture" or opts.stderr == "capture" then
    local program = program_of(o.command[1])
    -- (the app's own lines: --quiet is about appstart's)
    opts.on_output = function(app, _, line)
      display.clear()
      show(printable(program) .. "[" .. tostring(app.pid or "?") .. "]: ", printable(line), "\n")
    end
  end
  if not o.user and (o.pid_fd or o.pid_format) then
    -- COMMAND forks and reports its daemon's pid itself (dbus-daemon --fork --print-pid=N)
    opts.helper = true
  end
  opts.log = function(level, message)
    -- a failed start is reported once, by the command, as `appstart: MESSAGE`
    if level == "error" or not log.shown(level) then return end
    display.clear()
    -- (as log.default writes it, but never waiting for stderr: see show)
    show("appstart: " .. level .. ": ", message, "\n")
  end
  return opts
end

--- Start, report, and with --watch wait; returns the exit code. Runs inside
-- appstart.run: one task starts (and watches) the app, another turns
-- SIGINT/SIGTERM into a cancelled start or, once the app is up, forwards them.
local function run(o)
  local display = status_display(o.quiet)
  local opts = start_options(o, display)
  local usage = usage_of(opts, o)
  if usage then return nil, usage end
  -- blocked from here on and read from a descriptor instead; spawned
  -- processes start with an empty signal mask, so the app still gets them
  -- every terminating signal the command can catch: during the start it
  -- cancels the start (nothing is left), with --watch it is forwarded
  -- (but SIGPIPE, which the command's own writes may raise); one the
  -- command was started with ignored (nohup's SIGHUP) would not end it:
  -- core.signals leaves it alone, so it neither cancels nor is forwarded
  local signals, why = core.signals(CAUGHT_SIGNALS)
  if not signals then opts.log("warn", "signals will not be forwarded: " .. tostring(why)) end

  -- app, interrupted (a signal number), code, interrupts (SIGINTs while
  -- watching), done (the work has ended), report (the last words, written
  -- once the work is done), ending (an app the command terminates, its
  -- start cancelled as it completed), how (how the watched app ended),
  -- passed (each signal it got from the command, or from the terminal
  -- with it -> the one the command got for it: itself, or SIGINT for the
  -- SIGTERM and SIGKILL of escalate; see DIE_BY), rest_signals (those
  -- that came while what it left in its group was awaited)
  local state = { passed = {} }
  local worker, watcher

  local function work()
    -- (begun, then waited for: a second ^C during a cancel hurries it)
    -- left running, the app gets a session of its own: when the command
    -- leads its terminal's session (ssh -t host appstart ..., exec
    -- appstart), its exit hangs the terminal's foreground group up, and
    -- the app would be in it (a watched app stays in the command's group:
    -- ^C reaches both, as for any command run from a shell)
    local h <close> = start.begin(opts, "appstart.begin", 1, nil, not o.watch or nil)
    start.spelling(h, spelling(o))
    state.starting = h
    local app, err = h:wait()
    state.starting = nil
    display.flush()
    display.clear()
    if app and not state.interrupted and signals then
      -- one that came as the start was completing, not read yet (the
      -- start's own descriptor was served first)
      for _, got in ipairs(signals:read()) do state.interrupted = state.interrupted or got.signal end
    end
    -- The ready line, unless a signal came: one that comes while stdout
    -- does not take it (its reader does not read) cancels the start as
    -- during it (nobody has learned the app's pid: it is not left)
    local reported, unwritten = true, nil
    if app and not state.interrupted then
      reported, unwritten = report_ready(o, app, function() return state.interrupted ~= nil end)
    end
    -- (a line stdout took in part as the signal came: ended before the
    -- last words, which are not to be read as its rest)
    local torn = reported == nil and unwritten
    if app and state.interrupted then
      -- the signal came as the start was completing: it still means stop
      -- (a second ^C meanwhile: SIGKILL, as while a cancel waits)
      state.ending = app
      local how = app:terminate()
      app, err = nil, { code = "cancelled", message = "start cancelled", pid = app.pid, status = how }
    end
    if not app then
      local message = err.message
      -- (a signal that came once the start had failed cancelled nothing)
      if state.interrupted and err.code == "cancelled" then
        message = string.format("interrupted by %s: %s", signal_name(state.interrupted), message)
      end
      state.report = function()
        if torn then cli.put_stdout("\n") end
        report_failure(o, err.code, message, err)
      end
      state.code = 1
      return
    end
    state.app = app
    if reported == false and o.watch then
      -- watched all the same (the pid is lost to a reader, not the app);
      -- said where stderr takes it at once: a reader that does not read
      -- must not keep the command from forwarding a signal
      cli.say_lost(unwritten, o.json and "the ready object" or "the ready line", true)
    end
    if not reported and not o.watch then
      -- nobody learns the pid of an app left running: it is not left
      -- (state.app is set: a ^C meanwhile goes up the watch's ladder)
      app:terminate()
      state.report = function()
        io.stderr:write(log.unshown(), fitted(function(n)
          return string.format("appstart: cannot write to stdout (%s): %s (pid %d) terminated\n",
            tostring(unwritten), printable(n), app.pid)
        end, app.name or "app"))
      end
      state.code = 1
      return
    end
    if not o.watch then
      app:close() -- leave it running; nothing of ours waits for it
      state.code = 0
      return
    end
    local how = app:wait()
    display.flush()
    display.clear()
    state.report = function() report_exit(o, app, how) end
    state.code = exit_code(how)
    state.how = how
    -- what its main process left in its group (--kill-mode=group): they
    -- had SIGTERM, and have SIGKILL after --grace; awaited here, with the
    -- signals still read (a ^C sends them SIGKILL now: see forward)
    while App.leftover(app) do
      if loop.wait(nil, core.now() + settings.poll_interval) == nil then break end -- (cancelled)
    end
  end

  --- A second SIGINT while the app still runs (it ignores or outlives the
  -- first, which it got) sends SIGTERM, a third and later ones SIGKILL:
  -- ^C must always be able to stop a watched app (sig: that one instead).
  local function escalate(app, sig)
    sig = sig or state.interrupts == 2 and "TERM" or "KILL"
    -- the signal first, then the notice, and that only where stderr takes
    -- it at once (a reader that never reads must not keep it from the app)
    local sent, refused = app:kill(sig)
    -- (killed by it, the app ends the command by the ^C it stands for, as
    -- by a first ^C it had not ignored: bash's loop stops there too)
    if sent then state.passed[core.signum(sig)] = SIGINT end
    display.clear()
    if not sent and app.state ~= "exited" then
      opts.log("warn", string.format("cannot send SIG%s to pid %d: %s", sig, app.pid, tostring(refused)))
    elseif sent and not o.quiet then
      log.show(string.format("appstart: %s (pid %d) is still running: ", shown_name(app.name or "app"), app.pid),
        "sending SIG" .. sig, "\n")
    end
  end

  --- SIGKILL now to the app of a start being stopped (its grace not
  -- waited out), said where stderr takes it: whether there was one.
  local function hurry(h)
    local pid = start.hurry(h)
    if pid and not o.quiet then
      display.clear()
      log.show(string.format("appstart: %s%s is still running: ", printable(program_of(o.command[1])),
        pid == true and "" or " (pid " .. pid .. ")"), "sending SIGKILL", "\n")
    end
    return pid ~= nil
  end

  --- A signal that comes once the watched app's main process has ended,
  -- while what it left in its group is awaited (SIGTERM sent, SIGKILL
  -- after --grace): a SIGINT, or a second signal, sends them SIGKILL now
  -- (^C must always be able to stop a watched app), a first other one is
  -- passed on to them.
  local function to_the_rest(app, rest, sig)
    state.rest_signals = (state.rest_signals or 0) + 1
    local n = rest:rest()
    local what = string.format("the %s left in the group of pid %d",
      n and string.format("%d process%s", n, n == 1 and "" or "es") or "processes (uncounted)", app.pid)
    if sig == SIGINT or state.rest_signals > 1 then
      -- (the signal first, then the notice, as escalate's)
      signal.rest(rest, opts, "KILL", opts.log, program_of(o.command[1]))
      display.clear()
      if not o.quiet then
        log.show(string.format("appstart: %s (pid %d) has exited: ", shown_name(app.name or "app"), app.pid),
          "sending SIGKILL to " .. what, "\n")
      end
    else
      opts.log("info", string.format("forwarding %s to %s", signal_name(sig), what))
      signal.rest(rest, opts, sig, opts.log, program_of(o.command[1]))
    end
  end

  local own_group, own_session = core.process_group(core.pid())
  -- a terminal's ^C and ^\ go to its whole foreground process group; its
  -- hangup's SIGHUP to the session's leader alone (the group gets one
  -- only once the leader has gone): the command, when it leads
  local leads = own_session == core.pid()
  local function forward()
    -- (the cancel that ends this task may be taken by a wait inside
    -- app:kill, one that goes through the helper: so the flag too)
    while not state.done do
      if loop.wait(signals:fd()) == nil then return end -- cancelled: the work is done
      for _, got in ipairs(signals:read()) do
        if state.done then return end
        local sig, app = got.signal, state.app
        local rest = app and sig ~= SIGPIPE and app.state == "exited" and App.leftover(app)
        if app and sig == SIGINT then state.interrupts = (state.interrupts or 0) + 1 end
        if rest then
          to_the_rest(app, rest, sig)
        elseif app and sig == SIGINT and state.interrupts > 1 and app.state ~= "exited" then
          escalate(app)
        elseif app and got.terminal and not (sig == SIGHUP and leads)
          and core.process_group(app.pid) == own_group then
          -- a ^C on the terminal went to its whole foreground process
          -- group, the app included: forwarding would make it two
          opts.log("info", string.format("%s from the terminal reached pid %d too: not forwarded",
            signal_name(sig), app.pid))
          state.passed[sig] = sig
        elseif app then
          if sig ~= SIGPIPE then
            opts.log("info", string.format("forwarding %s to pid %d", signal_name(sig), app.pid))
            -- (refused: an app become another user's, a setuid program;
            -- one that has just exited needs none)
            local sent, refused = app:kill(sig)
            if sent then state.passed[sig] = sig end
            if not sent and app.state ~= "exited" then
              opts.log("warn", string.format("cannot forward %s to pid %d: %s", signal_name(sig), app.pid,
                tostring(refused)))
            end
          end
        elseif sig == SIGINT and state.ending and state.ending.state ~= "exited" then
          -- ^C while the command terminates an app whose start a signal
          -- cancelled as it completed (its ready line not written): SIGKILL
          escalate(state.ending, "KILL")
        elseif not state.interrupted then
          state.interrupted = sig
          -- a start that has failed already (a timeout) has terminated its
          -- app: a ^C while it waits out the grace is the second one
          if not (sig == SIGINT and state.starting and hurry(state.starting)) then
            opts.log("info", "got " .. signal_name(sig) .. ": cancelling the start")
            worker:cancel()
          end
        elseif sig == SIGINT and state.starting then
          -- a second ^C while the cancel waits out the app's grace: SIGKILL
          hurry(state.starting)
        end
      end
    end
  end

  local ok, err = pcall(appstart.run, function()
    worker = appstart.spawn(function()
      work()
      state.done = true
      if watcher then watcher:cancel() end
    end)
    if signals then watcher = appstart.spawn(forward) end
  end)
  -- The last words (how the start failed, how the watched app ended) are
  -- written once nothing is left to stop, with the signals that end the
  -- command back to their defaults: a reader that keeps stderr full holds
  -- it there as it holds any program, but a SIGTERM ends it (blocked, it
  -- waited for a read that might never come). SIGPIPE stays blocked: a
  -- reader gone is no reason to die, the exit code says how it went.
  local pipe = signals and core.signals { "PIPE" }
  local _ <close> = signals and cli.last_words(signals)
  if not ok then error(err, 0) end
  if state.report then state.report() end
  -- (lines not shown are told, as the last word does where there is one)
  local untold = log.unshown()
  if untold ~= "" then io.stderr:write(untold) end
  if pipe then
    pipe:read()
    pipe:close()
  end
  local how = state.how
  local by = how and how.signal and state.passed[how.signal]
  if by and DIE_BY[by] then
    -- (its default action now, whatever lua5.4 set: the command dies by
    -- it, $? still 128+N in a shell; a core dump it would make is not)
    io.stdout:flush()
    core.die_by(by)
  end
  return state.code
end

local function usage_error(message)
  io.stderr:write("appstart: ", printable(message), "\nTry 'appstart --help' for more information.\n")
  return 2
end

--- Run the command.
-- @param argv the arguments (argv[1..n]; the script's `arg` table)
-- @return the exit code
function cli.main(argv)
  -- a closed stdin, stdout or stderr would be taken by the next
  -- descriptor made (the signals'), and the ready line written there
  core.open_stdio()
  if argv[1] == "supervise" then
    local code, usage = require("appstart.supervise").main(table.move(argv, 2, #argv, 1, {}), cli)
    if usage then
      io.stderr:write("appstart supervise: ", printable(usage),
        "\nTry 'appstart supervise --help' for more information.\n")
      return 2
    end
    return code
  end
  if #argv == 0 then
    -- a bare `appstart`: what it takes, not just what is missing
    io.stderr:write(USAGE)
    return 2
  end
  local o, message = cli.parse(argv)
  if not o then return usage_error(message) end
  if o.help or o.version then
    return cli.answer(o.help and USAGE or "appstart " .. appstart.version .. "\n", o.help and "the help" or "the version")
  end
  local saved_level = appstart.log_level
  if o.verbose then appstart.log_level = "debug"
  elseif o.quiet then appstart.log_level = "error" -- errors are reported by the command
  end
  local ok, code, usage = pcall(run, o)
  appstart.log_level = saved_level
  if not ok then
    report_failure(o, "internal", "internal error: " .. tostring(code))
    return 1
  end
  if usage then return usage_error(usage) end
  return code
end

return cli
