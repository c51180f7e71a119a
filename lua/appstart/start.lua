--- appstart.start: one start, as an object a loop can step: appstart.begin
-- returns it, appstart.start waits on it.
--
-- It wraps the core's starter (appstart.core: a non-blocking state machine
-- from spawn to ready) with the policy: the deadlines (pid_timeout,
-- ready_timeout, EXTEND_TIMEOUT_USEC=), what the start's events mean to
-- the app object and the log, and how a failed start ends what it began:
--
--   code                                     the app is
--   timeout, ready_closed, protocol,         terminated: SIGTERM, SIGKILL
--   cancelled, helper                        after kill_grace
--   pid_mismatch                             killed at once
--   died, spawn, bad_pid                     not signalled
--
-- (a helper still running is killed in every case). Only the core starter
-- holds the processes until the app is handed over: a start that is
-- dropped, or raises, has them killed when the starter is closed or
-- collected.
local core = require "appstart.core"
local App = require "appstart.app"
local ending = require "appstart.ending"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"
local probes = require "appstart.probe"
local output = require "appstart.output"
local settings = require "appstart.settings"
local signal = require "appstart.signal"

local now = core.now
local EPERM = 1
local printable = log.printable
local DEFAULTS = options.DEFAULTS
local format = string.format
-- bytes of an unfinished ready line a timeout's message shows
local PARTIAL_SHOWN = 40
-- before a timeout verdict what the channel holds is read, in this many
-- more steps at most (a step reads 64: 4096 datagrams, more than a socket
-- holds, net.unix.max_dgram_qlen, as the watchdog's verdict reads), so a
-- sender cannot keep it reading
local STEPS_BEFORE_VERDICT = 64

local start = {}

local not_ready, helper_late -- the messages of a start that took too long
local probe_step, ready_noted -- below
local watch_output -- below

local Starting = {}
Starting.__index = Starting
Starting.__name = "appstart.starting"

-- what a failed start sends its app first (nil: nothing). An app that
-- died is signalled no more (the core sends nothing to a process that has
-- ended), but a forking daemon's start that died (its process started
-- exited non-zero) may have a daemon its pid file names, proven: that one
-- is ended with the start.
local FIRST_SIGNAL = { timeout = "TERM", ready_closed = "TERM", protocol = "TERM",
  cancelled = "TERM", helper = "TERM", pid_mismatch = "KILL", died = "TERM" }

-- The last component of path (a plain search: a pattern anchored at the
-- end backtracks from every position, microseconds per start), kept for
-- the next start of the same program.
local labels, nlabels = {}, 0
local function basename(path)
  local known = labels[path]
  if known then return known end
  local last, at = 0, path:find("/", 1, true)
  while at do
    last = at
    at = path:find("/", at + 1, true)
  end
  local label = path
  if last == #path then label = (path:match("([^/]+)/*$")) or path -- "dir/"
  elseif last > 0 then label = path:sub(last + 1) end
  if nlabels >= 64 then labels, nlabels = {}, 0 end
  labels[path], nlabels = label, nlabels + 1
  return label
end

local function env_array(env)
  if not env then return nil end
  local list = {}
  for k, v in pairs(env) do list[#list + 1] = k .. "=" .. tostring(v) end
  table.sort(list)
  return list
end

local function append(list, ...)
  return table.move({ ... }, 1, select("#", ...), #list + 1, list)
end

--- core_start for the starts that need more than the common fields: a
-- helper (the command's argv after the helper's), a user, a kill mode, a
-- watchdog, a forking daemon's pid file, a descriptor passed, a session
-- of the app's own.
local function core_start_rare(opts, ready, stdout, stderr, pass_fd, session)
  local argv, helper = opts.argv, opts.helper or nil
  -- (4.0 is 4: the helper is told them as text)
  local pid_fd = math.tointeger(opts.pid_fd) or 3
  local ready_fd -- the ready channel's number in the child: the first free from 3
  if ready == "fd" then
    ready_fd = math.tointeger(opts.ready_fd) or (helper and pid_fd == 3 and 4 or 3)
    -- with `user` the pid channel is appstart-helper's own, closed before
    -- the app runs: a number the ready channel leaves
    if opts.user and not helper and ready_fd == 3 then pid_fd = 4 end
  end
  local cwd, stdin, app_uid, error_fd = opts.cwd, opts.stdin, nil, nil
  if opts.user then
    -- why the helper failed comes back on a pipe of its own (its stderr is
    -- the app's, often /dev/null): the first number the layout leaves free
    error_fd = 3
    while error_fd == pid_fd or error_fd == ready_fd do error_fd = error_fd + 1 end
    -- a number or a string of digits is a uid, as appstart-helper reads
    -- it (with an entry or not: a user named "4242" is not uid 4242)
    app_uid = opts._uid
    -- the app gets a session of its own and no terminal, stdin from
    -- /dev/null unless given; its directory is entered as its user, by
    -- its absolute path (a relative cwd from the launcher's directory;
    -- with none, the launcher's directory, or "/" where that user cannot
    -- enter it): appstart-helper's doing
    -- (a helper of another version says so: see finish_failed)
    helper = { settings.helper_path, "--module-version", settings.version, "--user", tostring(opts.user),
      "--pid-fd", tostring(pid_fd), "--pid-format", opts.pid_format or DEFAULTS.pid_format,
      "--error-fd", tostring(error_fd),
      -- the environment goes to it encoded (the core's doing): what is
      -- meant for the app (LD_PRELOAD, LD_LIBRARY_PATH) never reaches the
      -- loader of a helper that runs as root
      "--encoded-env" }
    if opts.group ~= nil then append(helper, "--group", tostring(opts.group)) end
    if ready_fd then append(helper, "--keep-fd", tostring(ready_fd)) end
    if cwd then append(helper, "--chdir", cwd) end
    if not opts.env then append(helper, "--login-env") end
    -- argv[1] is searched in the launcher's PATH, as without a helper
    -- (not in the app's, which env may replace: the helper's own choice
    -- without --path), or, with none or an empty one, where the core looks
    if not argv[1]:find("/", 1, true) then
      local search = os.getenv("PATH")
      append(helper, "--path", search ~= nil and search ~= "" and search or core.default_path)
    end
    append(helper, "--")
    cwd, stdin = nil, stdin or "null"
    -- no terminal for another user's app (it could read what is typed
    -- there): stdout and stderr, not given, are /dev/null where the
    -- launcher's are one (given as "inherit", the start fails: starter.c)
    if stdout == nil and core.isatty(1) then stdout = "null" end
    if stderr == nil and core.isatty(2) then stderr = "null" end
  end
  if type(helper) == "table" then
    local full = table.move(helper, 1, #helper, 1, {})
    argv = table.move(argv, 1, #argv, #full + 1, full)
  end
  local watchdog = opts.watchdog
  local pid_file = type(opts.ready) == "table" and opts.ready.pid_file or nil
  if pid_file then helper = true end -- argv forks; the file names the daemon
  -- what few starts set, in a table made only for them (see core.start)
  local rare = { pid_fd = pid_fd, pid_format = opts.pid_format, app_uid = app_uid, kill_mode = opts.kill_mode,
    cgroup_parent = opts.cgroup_parent, watchdog_usec = watchdog and math.max(1, math.floor(watchdog * 1e6 + 0.5)),
    pid_file = pid_file, error_fd = error_fd, pass_fd = pass_fd, new_session = session }
  return core.start(argv, env_array(opts.env), cwd, stdin, stdout, stderr,
    ready, ready_fd, opts.notify_access, ready == "notify" and os.getenv("XDG_RUNTIME_DIR") or nil,
    helper ~= nil, rare)
end

--- Start the core's starter for opts (checked): the command, the
-- descriptor layout. Few locals on the common path: a task's coroutine
-- stack grows (by doubling) to fit its deepest call, and this one is the
-- deepest of a start (README, "Where the memory goes").
local function core_start(opts, ready, stdout, stderr, pass_fd, session)
  if opts.helper or opts.user or opts.kill_mode or opts.watchdog or pass_fd or session
    or (type(opts.ready) == "table" and opts.ready.pid_file) then
    return core_start_rare(opts, ready, stdout, stderr, pass_fd, session)
  end
  return core.start(opts.argv, env_array(opts.env), opts.cwd, opts.stdin, stdout, stderr,
    ready, ready == "fd" and (opts.ready_fd or 3) or nil, opts.notify_access,
    ready == "notify" and os.getenv("XDG_RUNTIME_DIR") or nil, false)
end

local nofile_raised = false

-- The table of a start's rare facts (see rare()), every field preset: one
-- set later would double its hash part. Also a start's output pipes, with
-- no loop to read them (watch_output): out_fds, fd -> watched, and
-- out_left, whether a step left some of what they held.
local function new_rare(served, by)
  return { served = served, refused = false, watchdog = false, helper_exited = false, quiet = false,
    looking = false, by = by, spell = false, extended = false, extend_until = false, out_fds = false,
    out_left = false, late_steps = false }
end

-- The start's name in messages: its program's, its control characters
-- escaped as in every log line (a name need not be the launcher's own
-- choice: a script's, a directory's listing).
local function label(h)
  local name = basename(h._opts.argv[1])
  return name:find("[%c\x80-\xFF]") and printable(name) or name
end

--- Begin a start without waiting for it (see appstart.begin).
-- @param opts the options of appstart.start
-- @param who the function the user called, for argument errors
-- @param up how many calls up from this one the user's code is: an
-- argument error points at its line
-- @param pass_fd nil, or a descriptor the child gets at fd 3 (the pidfd
-- appstart-helper --signal is given: appstart.signal)
-- @param session true: the app starts a session of its own whatever its
-- kill_mode (the command's app, left running: the hangup of a terminal
-- whose session the command led must not reach it)
function start.begin(opts, who, up, pass_fd, session)
  options.assert(opts, who, up + 2)
  -- the start and its app read the options as checked: the caller's table
  -- may be changed after (a template reused, an on_status that writes to
  -- it), and what it would then hold was never checked. Its tables read
  -- while the start runs are copied too: argv (the app's name, at ready
  -- and in each log line) and a probe's (read at each try, an exec
  -- probe's argv); the others (env, a helper's, an output file's) are
  -- read as the start begins.
  local given = opts
  opts = {}
  for k, v in next, given do opts[k] = v end
  opts.argv = table.move(given.argv, 1, #given.argv, 1, {})
  if type(given.ready) == "table" then
    local ready = {}
    for k, v in next, given.ready do ready[k] = v end
    if type(ready.exec) == "table" then ready.exec = table.move(ready.exec, 1, #ready.exec, 1, {}) end
    opts.ready = ready
  end
  -- the app's user, looked up once (its uid: the pid's owner, its files'
  -- owner where it may own them); an entry that cannot be read for now
  -- (out of descriptors) fails the start, below: it is no "no such user"
  local user_failed, user_errno
  if opts.user ~= nil then
    -- (a uid or gid of 1000.0 is 1000: the helper is told it as text)
    opts.user, opts.group = options.whole(opts.user) or opts.user, options.whole(opts.group) or opts.group
    local user = opts.user
    if type(user) == "string" and user:find("^%d+$") then user = math.tointeger(tonumber(user)) end
    if math.type(user) == "integer" then
      opts._uid = user
    else
      local uid, errno = core.user(user)
      if uid then
        opts._uid = uid
      else
        user_failed, user_errno = format("cannot look up user '%s': %s", printable(user),
          errno and core.strerror(errno) or "no such user"), errno
      end
    end
  end
  local ready = opts.ready or DEFAULTS.ready
  -- a probe looks from outside once the app runs: to the core the start
  -- is ready at the exec (or the pid), and the probing comes after
  local probing = type(ready) == "table" and not ready.forks
  if type(ready) == "table" then ready = "none" end
  -- the notify socket is read after ready only where something serves it
  local served = ready == "notify" and loop.served()
  if opts.watchdog and not served then
    error(who .. ": field 'watchdog': needs a loop (appstart.run, cqueues, luv or a supervisor):"
      .. " outside one nothing reads the app's pings", up + 1)
  end
  local logger = opts.log or log.default
  local one_fd = loop.wants_one_fd()
  -- under another event loop many starts may be under way at once, as in
  -- appstart.run: the same descriptor limit (the hard one), once
  if one_fd and not nofile_raised then
    core.raise_nofile()
    nofile_raised = true
  end
  local t0 = now()
  -- debug messages are not even formatted unless the logger takes them
  local debug = log.takes(logger)
  -- every field preset: a step sets them without allocating. Few, and 16
  -- at most (the size of the table's hash part doubles above): a start
  -- in flight is this table and the core's starter. The app object is
  -- made at ready, or at once when on_status wants it during the start;
  -- what few starts need waits in two tables made only for them.
  local h = setmetatable({ done = false, app = false, err = false,
    _s = false, _opts = opts, _log = logger, _debug = debug,
    _app = (opts.on_status or opts.on_output) and App.new(basename(opts.argv[1]), opts, logger)
      or false, _out = false, _t0 = t0, _ready_deadline = false,
    _wake = false, _fresh = false, _failure = false,
    -- a probe's: its start on the wall clock, the probe, whether it passed
    -- (and h:on_wake's function, for a check function to call)
    _probing = probing and { wall0 = core.realtime(), probe = false, passed = false,
      on_wake = false, before = probes.before(opts) } or false,
    -- the rare facts of a start (see rare())
    _rare = served and new_rare(true, loop.backend() or false) or false,
  }, Starting)
  if user_failed then
    h.err = errors.new("spawn", user_failed, { errno = user_errno, output = {} }, label(h))
    h.done = true
    logger("info", label(h) .. ": " .. user_failed)
    return h
  end
  -- from here on the starter holds processes: nothing may raise before h
  -- holds it, or they would wait for a collection to be killed
  -- the app's output, where the launcher reads it: the pipes come first,
  -- a failure to make them is a failed start (nothing spawned)
  local out, stdout, stderr = output.open(opts, h._app, label(h), basename(opts.argv[1]), logger, who, up + 2)
  if out == nil then
    -- (its output, to be read, has no line: {})
    h.err = errors.new("spawn", format("cannot start %s: %s", label(h), stdout), { errno = stderr, output = {} },
      label(h))
    h.done = true
    logger("info", label(h) .. ": " .. h.err.message)
    return h
  end
  h._out = out
  -- an app made early (on_output, on_status) has its lines while it starts
  -- too: app:tail() inside on_output sees what was read
  if out and h._app then h._app._out = out end
  local spawned
  h._s, h._fresh, spawned = core_start(opts, ready, stdout, stderr, pass_fd, session)
  loop.own_start(h) -- (a failed appstart.run ends it)
  if out then
    out:listen()
    if not loop.served() then watch_output(h, out) end
    -- (through a helper, the app's pid is not known yet: its lines, and
    -- the helper's, come without one until it is; so with ready.forks,
    -- until the pid file has named the daemon)
    if spawned > 0 then
      out:set_pid((opts.helper or opts.user or type(opts.ready) == "table" and opts.ready.forks) and 0 or spawned)
    end
  end
  if spawned > 0 then
    local app = h._app
    if app and not opts.helper and not opts.user then app.pid = spawned end
  end
  -- under an event loop that takes one descriptor, it is made now, so a
  -- failure is a failed start rather than a failed wait
  if one_fd then
    local ok, message, errno = h._s:fd()
    if not ok then h._failure = { code = "spawn", message = message, errno = errno } end
  end
  -- fresh: nothing can have happened yet; a waiter may wait before the
  -- first step, until the ready deadline at most
  if h._fresh then
    h._ready_deadline = t0 + (opts.ready_timeout or DEFAULTS.ready_timeout)
    h._wake = h._ready_deadline
  else
    h._wake = t0
  end
  -- (the start made whole first: a log function that raises here, a ^C,
  -- has it ended as a closed handle's is, its app not left running till
  -- a collection)
  if debug and spawned > 0 then
    local ok, err = pcall(logger, "debug", format("%s: spawned pid %d", label(h), spawned))
    if not ok then
      Starting.__close(h)
      error(err, 0)
    end
  end
  return h
end

-- The rare facts of a start, made when the first comes: whether the notify
-- socket is read after ready (served), the messages refused since they
-- were last logged, WATCHDOG_USEC= before ready, whether a helper exited,
-- how its messages spell an option (start.spelling).
local function rare(h)
  local r = h._rare
  if not r then
    r = new_rare(false, false)
    h._rare = r
  end
  return r
end

-- An option as appstart.start's caller writes it, in a failure's message:
-- field set to value ("forks": the ready table's flag).
local function lua_spelling(field, value)
  if field == "ready" and value == "forks" then return "ready.forks" end
  return format(type(value) == "string" and '%s = "%s"' or "%s = %s", field, tostring(value))
end

-- How h's messages spell field = value.
local function spell(h, field, value)
  local r = h._rare
  return (r and r.spell or lua_spelling)(field, value)
end

--- Have h's failure messages name an option as fn(field, value) spells it
-- (the command: "--ready=none", not ready = "none"), from its first step.
function start.spelling(h, fn)
  rare(h).spell = fn
end

-- Refused messages since the last such log line, in one line.
local function log_refused(h)
  local r = h._rare and h._rare.refused
  if not r or r.n == 0 then return end
  local n = r.n
  r.n, r.at = 0, now()
  if log.drops(h._log, "warn") then return end
  local access = spell(h, "notify_access", h._opts.notify_access or DEFAULTS.notify_access)
  -- (descent and cgroup membership are proven through /proc: without it
  -- "all" admits what "exec" does, and the line says why)
  if h._opts.notify_access == "all" then
    local f, _, code = io.open("/proc/self/stat")
    if f then
      f:close()
    elseif code == 2 then -- ENOENT (out of descriptors, it cannot be told)
      access = access .. "; /proc is not mounted, so no other process can be proven the app's"
    end
  end
  if n == 1 then
    h._log("warn", format("%s: ignored a %s from pid %d (%s)", label(h), r.what, r.pid, access))
  elseif r.what == "read of the ready channel" then
    -- (the fd protocol's channel is a byte stream: a read may hold many
    -- lines, or part of one; reads are what is counted)
    h._log("warn", format("%s: ignored %d reads of the ready channel from processes not admitted, the last from"
      .. " pid %d (%s)", label(h), n, r.pid, access))
  else
    h._log("warn", format(
      "%s: ignored %d messages (%ss) from processes not admitted, the last from pid %d (%s)",
      label(h), n, r.what, r.pid, access))
  end
end

-- The start's log.limited state (what the app sends, before ready).
local function quiet(h)
  local r = rare(h)
  if not r.quiet then r.quiet = {} end
  return r.quiet
end

-- The probe of a start, when it has one under way.
local function probe_of(h)
  local p = h._probing
  return p and p.probe or nil
end

-- The ready phase's deadline, as it begins at t: ready_timeout from the
-- exec for a start with no helper (its first step may come late: a
-- caller's loop busy elsewhere, a slow log function at the spawn), from
-- t for one whose helper has just reported (the step that read the
-- report, the helper exited or not), or a forking daemon's pid file been
-- read.
local function ready_deadline(h, t)
  local opts = h._opts
  local forks = type(opts.ready) == "table" and opts.ready.forks
  return ((opts.helper or opts.user or forks) and t or h._t0) + (opts.ready_timeout or DEFAULTS.ready_timeout)
end

-- The ready phase's deadline set as it begins at t (ready_deadline's, or
-- the later one an EXTEND_TIMEOUT_USEC= before it asked for).
local function set_ready_deadline(h, t)
  local deadline = ready_deadline(h, t)
  local r = h._rare
  if r and r.extend_until and r.extend_until > deadline then
    deadline = r.extend_until
    r.extended = true
  end
  h._ready_deadline = deadline
  return deadline
end

-- Act on one of the starter's events: pids, STATUS=, EXTEND_TIMEOUT_USEC=...
-- (app: the app object, when on_status made one early; t: the time of the
-- step that read them)
local function on_event(h, kind, value, count, text, t)
  local app, logger = h._app, h._log
  if kind == "pid" then
    -- the reported pid, proven: ready_timeout runs from here, not from
    -- the helper's exit, which pid_timeout bounds apart (a helper that
    -- lingers after its report gave the app that long again on top)
    if not h._ready_deadline then set_ready_deadline(h, t) end
    if app then app.pid = value end
    if h._out then h._out:set_pid(value) end
    if h._debug then logger("debug", format("%s: helper reported pid %d", label(h), value)) end
  elseif kind == "helper_exit" then
    rare(h).helper_exited = value -- its exit code, or minus its signal
    if h._debug then
      logger("debug", format("%s: helper %s", label(h),
        value >= 0 and ("exited with code " .. value) or ("killed by signal " .. -value)))
    end
  elseif kind == "status" then
    -- what the app sends is logged once a second at most a kind
    if not log.drops(logger, "info") then
      log.limited(quiet(h), "status", logger, "info", label(h) .. ": status: " .. printable(text))
    end
    if app then
      app.status = text
      -- (now, within the step: the start holds the app meanwhile) what
      -- it raises is logged, or ends appstart.run, as a callback's after
      -- ready is; the start goes on
      local on_status = h._opts.on_status
      if on_status then
        local ok, err = xpcall(on_status, loop.traceback, app, text)
        -- (^C: the start's caller is interrupted, and the start cancelled)
        if not ok and loop.interrupt(err) then error(err, 0) end
        if not ok then
          loop.raised(function(e) logger("error", format("%s: on_status raised %s", label(h), log.raised(e))) end, err)
        end
      end
    end
  elseif kind == "ignored" then
    -- a flood is logged once a second at most, with a count
    local rr = rare(h)
    local r = rr.refused
    if not r then
      r = { n = 0, at = -math.huge, pid = 0, what = "" }
      rr.refused = r
    end
    r.n, r.pid, r.what = r.n + count, value, text
    if now() - r.at >= 1 then log_refused(h) end
  elseif kind == "extend" then
    -- it never shortens ready_timeout: before the ready phase has a
    -- deadline (the pid not reported yet), it is kept for that phase's, as
    -- the least it may be (set from now then, it took that deadline back
    -- to this step's ready_timeout, earlier than the phase's own)
    local until_ = now() + value / 1e6
    local deadline = h._ready_deadline
    if deadline then
      if until_ > deadline then
        h._ready_deadline = until_
        rare(h).extended = true
      end
    else
      local r = rare(h)
      if not r.extend_until or until_ > r.extend_until then r.extend_until = until_ end
    end
    if h._debug then
      log.limited(quiet(h), "extend", logger, "debug", format("%s: ready timeout extended by %.3f s", label(h),
        value / 1e6))
    end
  elseif kind == "errno" then
    if not log.drops(logger, "info") then
      log.limited(quiet(h), "errno", logger, "info", format("%s: app reported ERRNO=%d", label(h), value))
    end
  elseif kind == "stopping" then
    if not log.drops(logger, "info") then
      log.limited(quiet(h), "stopping", logger, "info", label(h) .. ": app reported STOPPING=1")
    end
  elseif kind == "mainpid" then
    if h._debug then log.limited(quiet(h), "mainpid", logger, "debug", format("%s: MAINPID=%d agrees", label(h), value)) end
  elseif kind == "watchdog_usec" then
    if h._opts.watchdog then rare(h).watchdog = value / 1e6 end
  elseif kind == "dropped" then
    logger("warn", format("%s: %d events dropped", label(h), count))
  end
end

local function on_events(h, t)
  local s = h._s
  local kind, value, count, text = s:event()
  while kind do
    on_event(h, kind, value, count, text, t)
    kind, value, count, text = s:event()
  end
end

-- the refused messages not logged yet, if any, and what else of the
-- app's log.limited held back (its flood ended within its second)
local function flush_refused(h)
  local r = h._rare
  if not r then return end
  log_refused(h)
  if r.quiet and next(r.quiet) then log.held_over(r.quiet, h._log, label(h)) end
end

-- The starter's descriptors leave every poll set before it closes them:
-- whoever polls the start (h:pollfd(), a second waiter) is woken. But the
-- app's pidfd (kept), which the app takes over.
local function release_but(kept, ...)
  for i = 1, select("#", ...) do
    local fd = select(i, ...)
    if fd ~= kept then loop.release(fd) end
  end
end

local function release_starter(s, kept)
  if not loop.polled() then return end
  loop.release(s:fd(true))
  release_but(kept, s:fds())
end

-- A start no loop serves (a plain script's, stepped by its caller's own
-- poll loop on h:pollfd(), or waited on by h:wait): its app's output
-- pipes wake its waits too, and each step reads what they hold, so that
-- an app that writes more than a pipe holds before it is ready is not
-- held up, and on_output has its lines as they come. (Under a loop, the
-- loop reads them.)
function watch_output(h, out)
  local s = h._s
  local fds = {}
  for _, stream in ipairs { "stdout", "stderr" } do
    local fd = out.r:fd(stream)
    if fd and s:watch(fd) then fds[fd] = true end
  end
  if not next(fds) then return end
  rare(h).out_fds = fds
  -- (a pipe the output closes, or pauses while on_output runs, leaves the
  -- start's waits; the output holds the start weakly: a start dropped is
  -- collected, its app killed)
  local weak = setmetatable({ h = h }, { __mode = "v" })
  out.waits = {
    drop = function(fd)
      local held = weak.h
      local held_fds = held and held._rare.out_fds
      if held_fds and held_fds[fd] then
        held_fds[fd] = false
        held._s:unwatch(fd)
      end
    end,
    take = function(fd)
      local held = weak.h
      local held_fds = held and held._rare.out_fds
      if held_fds and held_fds[fd] == false and held._s:watch(fd) then
        held_fds[fd] = true
      end
    end,
  }
end

-- The start is over: its output pipes leave its waits.
local function unwatch_output(h)
  local fds = h._rare and h._rare.out_fds
  if not fds then return end
  h._rare.out_fds, h._rare.out_left = false, false
  h._out.waits = false
  for fd, watched in pairs(fds) do
    if watched then h._s:unwatch(fd) end
  end
end

-- strerror's text -> its errno, built at first need: the helper says why
-- an exec failed in words (what its own strerror said, the same C library)
local errno_of_text
local function errno_in(message)
  if not errno_of_text then
    errno_of_text = {}
    for n = 133, 1, -1 do errno_of_text[core.strerror(n)] = n end
  end
  return errno_of_text[message:match(": ([^:]+)$") or ""]
end

-- The tasks of appstart.run waiting in h:wait() on each start (start ->
-- task, or a set of tasks when more than one waits; false between their
-- waits), for wake_tasks().
local waiting = setmetatable({}, { __mode = "k" })
local Tasks = {} -- the metatable of a set of them

-- Every task waiting on the start looks again now: it is over (another
-- waiter ended it: the waits of the others may be on none of what is
-- left, a probing start's on the app's pidfd alone), or it was abandoned.
local function wake_tasks(h)
  local w = waiting[h]
  if not w then return end
  if getmetatable(w) ~= Tasks then return w:wake() end
  for task in next, w do task:wake() end
end

-- The start has failed and what it began has ended (or been given up on):
-- the error.
local function finish_failed(h)
  local s, f = h._s, h._failure
  local r = s:result()
  local code, message = f.code or r.code, f.message or r.message
  local errno = f.errno or r.errno or r.app_errno
  -- appstart-helper (user =) exits 126 or 127 when the app's exec failed,
  -- as a shell does: the app could not be executed, as without a helper
  -- (its errno too)
  local helper_code = h._rare and h._rare.helper_exited
  if code == "helper" and h._opts.user and (helper_code == 126 or helper_code == 127) then
    code = "spawn"
    message = message:match("without reporting a pid on fd %d+: (cannot execute .*)$") or message
    errno = errno or errno_in(message)
  elseif code == "spawn" and h._opts.cwd and message:find("^cannot change directory for ") then
    -- (the directory the child could not enter, named)
    message = "cannot change directory to " .. printable(h._opts.cwd) .. " for "
      .. message:sub(#"cannot change directory for " + 1)
  elseif code == "bad_pid" and r.record_as_line then
    -- (the option as its caller spells it: the command's --pid-format)
    message = format("%s (its 4 bytes read as decimal text: a line? %s)", message, spell(h, "pid_format", "line"))
  elseif code == "helper" and h._opts.user and helper_code == 2 and not message:find("this is appstart-helper", 1, true) then
    -- a usage error (one that knows no --module-version says why on its
    -- stderr, the app's)
    message = signal.usage_error(message)
  end
  unwatch_output(h)
  release_starter(s)
  s:close()
  -- (how.left: what the stop found of its group or cgroup, also where the
  -- app's end is not known, or the app itself never was: a forking
  -- daemon's pid that never came)
  local status = r.how or ((r.pid or (r.left or 0) > 0) and { left = r.left }) or nil
  local err = errors.new(code, message, { pid = r.pid, status = status, errno = errno }, label(h))
  -- over, with this error, before any code of the caller's runs (on_output
  -- for the last lines, the log): a step or wait from inside it, or after
  -- it raised (a ^C), finds the start done
  h.err, h.done = err, true
  -- the app's last lines say why it failed (its last line without '\n'
  -- too); the output closed even if on_output raises for one. Taken from
  -- the ring once closed: a start failed from inside on_output (it
  -- cancelled) has the lines of the chunk after the one being told, and
  -- what the pipes held, put in the ring by the close, not handed over
  local out = h._out
  if out then
    -- (what was read so far, for a step or wait from inside on_output,
    -- as the last lines are told)
    err.output = out.r:tail(10)
    local ok, raised = pcall(out.finish, out, nil)
    out:close()
    err.output = out:tail(10)
    if not ok then
      wake_tasks(h)
      error(raised, 0)
    end
  end
  wake_tasks(h)
  -- the caller gets the error: logged at "info", not printed twice
  h._log("info", label(h) .. ": " .. message)
  return true
end

-- Signal a failed start's app (and what its kill_mode reaches): through
-- appstart-helper where the launcher may not (an app of another user),
-- not waited for: stop_step looks at the app itself.
local function stop_app(h, sig)
  local opts, s = h._opts, h._s
  local err, rest_refused = s:stop(sig)
  local fd, pgid = nil, nil
  if err == EPERM then
    fd = s:app_fd()
  elseif rest_refused then
    pgid = s:pgid() -- the app is gone; what it left in its group is not
  else
    return
  end
  local group = fd and opts.kill_mode == "group"
  signal.post(fd, opts, sig, group, h._log, label(h), pgid)
  -- (and SIGCONT, so a stopped app gets it, as the core sends it; not
  -- once a log function told of the helper's failure has stepped the
  -- start to its end: fd, closed with the starter, may be another's by
  -- now)
  if sig ~= "KILL" and not h.done then signal.post(fd, opts, "CONT", group, h._log, label(h), pgid) end
end

-- A signal sent at t through a helper outside a loop took its time: its
-- wait runs from now (unless a step from inside a log function during it
-- set it anew). Returns now.
local function restamp(f, t)
  local t1 = now()
  if f.signalled == t then
    f.signalled, f.deadline = t1, f.deadline + (t1 - t)
  end
  return t1
end

-- Is stop_app under way for h lower on this coroutine's stack (a log
-- function it called, told of a helper's failure, steps the start)?
local function sending(h)
  local level = 3
  while true do
    local info = debug.getinfo(level, "f")
    if not info then return false end
    if info.func == stop_app and select(2, debug.getlocal(level, 1)) == h then return true end
    level = level + 1
  end
end

-- stop_app(h, sig), and what the stop owes (f.owed) paid: once the signal
-- has gone, or stop_app raised anything but an interrupt (a log function
-- that raised as a helper's failure was told: the signal tried all the
-- same; owed still, every later step would raise again). A ^C leaves it
-- owed: the next step sends it.
local function pay(h, f, sig)
  local ok, err = pcall(stop_app, h, sig)
  if ok or not loop.interrupt(err) then f.owed = false end
  if not ok then error(err, 0) end
end

-- The stop's SIGKILL, its grace out (or at once: start.hurry). Owed from
-- before its deadline moves until it has been sent: a ^C (raised at
-- whatever instruction comes next) between the two left a stop waiting
-- KILL_WAIT for a SIGKILL never sent; the next step sends what is owed.
-- Its deadline before the signal: a log function that steps the start as
-- a helper's failure to send it is told waits with this stop.
local function escalate(h, f, t)
  f.owed = "KILL"
  f.escalated, f.deadline, f.signalled = true, t + ending.KILL_WAIT, t
  pay(h, f, "KILL")
end

-- An exec probe's commands still running KILL_WAIT after their SIGKILL
-- (p:settled() gave up on them): said once.
local function tell_given_up(h, p)
  local n = p.given_up
  if not n then return end
  p.given_up = false
  h._log("warn", format("%s: %d run%s of its ready probe's command (%s) still ran %g s after SIGKILL: let go of",
    label(h), n, n == 1 and "" or "s", p.argv[1], ending.KILL_WAIT))
end

-- Step a failed start: until every process it holds has ended, SIGKILL
-- after the grace.
local function stop_step(h)
  local s, f = h._s, h._failure
  local stopped, probe, late = s:stopped()
  -- an app found late (its pid written after the stop looked, or checked
  -- only now) had the stop's SIGTERM just now: its grace runs from here
  if late and not f.escalated then
    f.signalled = now()
    f.deadline = f.signalled + (h._opts.kill_grace or DEFAULTS.kill_grace)
  end
  -- a probe's killed command is looked at, not waited on
  local settled = not f.probe or f.probe:settled()
  if f.probe and f.probe.given_up then
    tell_given_up(h, f.probe)
    -- (a log function that yielded: another waiter may have ended it)
    if h.done then return true end
  end
  if stopped and settled then return finish_failed(h) end
  local t = now()
  -- a signal owed: the step that was sending it was stopped by a ^C
  -- before it could (unless it is being sent, by the step whose log
  -- function runs this one)
  local owed = f.owed
  if owed and not sending(h) then
    pay(h, f, owed)
    if h.done then return true end
    t = now()
  end
  if t >= f.deadline then
    if f.escalated then -- given up on: reaped later
      if f.probe then f.probe:drop() end
      return finish_failed(h)
    end
    escalate(h, f, t)
    if h.done then return true end
    t = restamp(f, t)
  end
  if probe or not settled then
    -- looked at, not waited on (no pidfd): soon after a signal, when a
    -- process most often ends, then less often, up to poll_interval
    local gap = math.max(0.001, math.min(settings.poll_interval, t - f.signalled))
    h._wake = math.min(f.deadline, t + gap)
  else
    h._wake = f.deadline
  end
  return false
end

-- The start has failed (code and message, or the starter's own verdict):
-- end what it began, as the code says.
local function fail(h, code, message, errno)
  flush_refused(h)
  -- (a log function that yields: another waiter may have ended the start
  -- meanwhile, or begun its stop)
  if h.done then return true end
  if h._failure and h._failure.stopping then return stop_step(h) end
  local f = h._failure or {}
  h._failure = f
  local probe = probe_of(h)
  if probe then
    -- its command (an exec probe) is waited for as the app is
    probe:close()
    f.probe, h._probing.probe = probe, false
  end
  f.code, f.message, f.errno = f.code or code, f.message or message, f.errno or errno
  local first = FIRST_SIGNAL[f.code or h._s:result().code]
  -- an app that is gone (or never proven) is not signalled; what it
  -- forked into its group or cgroup is, all the same
  if not first and (h._opts.kill_mode or "process") ~= "process" then first = "TERM" end
  -- (stopping before the signal: a log function that steps the start as
  -- a helper's failure to send it is told waits with this stop, where it
  -- failed again, signalled again, until Lua's stack overflowed; set
  -- last, its deadline before it: a ^C, raised at whatever instruction
  -- comes next, left a stop with no deadline, every later step raising;
  -- one before it, the next step fails the start again from here)
  local t = now()
  f.escalated, f.signalled = first ~= "TERM", t
  f.deadline = t + (first == "TERM" and (h._opts.kill_grace or DEFAULTS.kill_grace) or ending.KILL_WAIT)
  -- (owed until sent: see escalate)
  f.owed = first or false
  f.stopping = true
  pay(h, f, first)
  if h.done then return true end
  restamp(f, t)
  return stop_step(h)
end

-- Step a start that has failed: its stop, or the failure taken further.
local function failed_step(h)
  if h._failure.stopping then return stop_step(h) end
  return fail(h)
end

-- The app leaves the starter (closed then) and the start is done with it,
-- in one go: a ^C between the two (lua.c raises it from a hook, at
-- whatever instruction comes next) left a taken starter that the cancel
-- could not stop, or the app in no one's hands. So in a coroutine rid of
-- hooks: lua.c's is set on the main thread alone (one set as this one was
-- made is copied, and cleared before it is first used). One coroutine
-- serves every start (one made for each was 0.9 KB of garbage a start:
-- B5's RSS per start in flight 1.8 KB to 2.7 KB): the start comes in as
-- resume's arguments and the listener goes out as yield's; a second
-- resume lets it forget the listener, so that it holds nothing while it
-- waits (a suspended coroutine's locals are alive: the last start's app
-- would never be collected). One that raised (out of memory in the take)
-- is dropped at once: its dead stack holds the start's starter, whose
-- collection ends the app.
local hand_over_co
local function hand_over_each(h, s, app, served)
  while true do
    local proc, listener = s:take(served)
    app._proc = proc
    h.app, h.done, h._s = app, true, false
    h, s, app, served, proc = nil, nil, nil, nil, nil -- luacheck: ignore
    coroutine.yield(listener)
    listener = nil -- luacheck: ignore
    h, s, app, served = coroutine.yield()
  end
end
local function hand_over(h, s, app, served)
  local co = hand_over_co
  if not co then
    co = coroutine.create(hand_over_each)
    debug.sethook(co)
  end
  hand_over_co = nil -- (until it is back, suspended and holding nothing)
  local ok, listener = coroutine.resume(co, h, s, app, served)
  if not ok then error(listener, 0) end
  if coroutine.resume(co) then hand_over_co = co end
  return listener
end

-- Ready: the app object takes the app over.
local function finish_ready(h)
  flush_refused(h)
  -- (a log function that yields: another waiter may have finished the
  -- start meanwhile, and taken its app, or cancelled it)
  if h.done then return true end
  if h._failure then return failed_step(h) end
  local s, opts = h._s, h._opts
  local app = h._app
  if not app then
    app = App.new(basename(opts.argv[1]), opts, h._log)
    h._app = app
  end
  local pid, name, status, exited = s:outcome()
  -- (an empty ready line, s6's bare "\n", names nothing)
  app.pid, app.name, app.status = pid, name ~= "" and name or app.name, status
  local out = h._out
  if out then
    out.app, app._out = app, out
    out:set_pid(pid)
  end
  local after = now() - h._t0
  if h._debug then
    h._log("debug", format("%s: ready after %.3f s, pid %d", label(h), after, pid))
    if h.done then return true end
    if h._failure then return failed_step(h) end
  end
  -- (ready once no log can end the start: an app a callback of the start
  -- was handed, on_output's, says "starting" to the end of a failed one)
  app._state, app.ready_after = "ready", after
  -- everything that may raise comes before the app leaves the starter: an
  -- error until then kills it, as the starter is closed
  local r = h._rare
  -- (a start begun in a loop, appstart.run, cqueues or luv, and finished
  -- by a plain script is served no more, as the apps a run left are:
  -- nothing would read its socket, and a full queue blocks the app)
  -- (one gone already has it read all the same: what it sent after
  -- READY=1, a last STATUS=, counts, read before its end is told)
  local served = r and r.served and loop.still_served(r.by)
  -- an app whose socket or output is read after ready is watched to its
  -- end too: it may be dropped meanwhile, and nothing else would close
  -- that socket or its pipes (a child of its may hold them open for good:
  -- cq:loop() and uv.run() would not return) or reap it; so is a group's
  -- leader, whose end sends SIGTERM to what it left in its group at once
  -- (in a plain script too, at the calls that wait, not when something
  -- looks at the app)
  local group = h._opts.kill_mode == "group"
  if (app._on_exit or served or out or group) and not exited then App.watch(app, s:app_fd(), "pid") end
  loop.own(app) -- (a failed appstart.run ends it)
  unwatch_output(h)
  release_starter(s, s:app_fd())
  local listener = hand_over(h, s, app, served)
  wake_tasks(h)
  if listener then
    -- the app is the caller's now: a failure here costs the socket only
    -- (a WATCHDOG_USEC= that came early sets the watchdog's period)
    local ok, err = pcall(App.listen, app, listener, r and r.watchdog or nil, r and r.spell or lua_spelling)
    if not ok then
      if app._life then App.unlisten(app) else listener:close() end
      h._log("error", label(h) .. ": cannot read the notify socket after ready: " .. tostring(err))
    end
  end
  -- gone at once: on_exit runs now, or, in a cgroup that has not emptied
  -- yet, once it has
  if exited and not App.check(app) and (app._on_exit or app._life or out) then App.watch(app, app._proc:fd()) end
  return true
end

-- Whoever waits on the start looks again now, though none of its
-- descriptors says so (the start has been abandoned: its deadline is
-- another). A task of appstart.run waiting in h:wait() is woken; a wait
-- on the start's one descriptor (another event loop's, or a poll of
-- h:pollfd()) is woken by taking that descriptor out of its poll set (it
-- stays open: the next wait puts it back). Both soon, not from inside
-- this call.
local function wake_waiters(h)
  wake_tasks(h)
  -- (h:on_wake's function may have stepped the start to its end: its
  -- starter is gone, and its descriptors with it)
  local s = h._s
  local fd = s and loop.polled() and s:fd(true)
  if fd then loop.release(fd) end
end

-- A check function that ran in a task of its own has returned: whoever
-- waits on the start looks again now, and h:on_wake's function is called.
local function wake(h)
  local pr = h._probing
  if not pr or h.done then return end
  if pr.on_wake then pr.on_wake() end
  wake_waiters(h)
end

-- Ready to the core (the exec, the pid): the probe decides, raced against
-- the app's death and ready_timeout. lingering: the helper has reported
-- and still runs (the pid deadline is the step's): the app is probed from
-- the report on, as ready_timeout runs from it, and a pass is noted, the
-- app ready once its helper has exited (as a READY=1 it sent meanwhile
-- is); nil then when nothing is for the probe to decide (an app that
-- ended is the starter's to tell, with its status, once the helper has
-- exited) and the step's own wake stands, else lowered to the next try's.
function probe_step(h, lingering)
  local s, pr = h._s, h._probing
  local p = pr.probe
  if not p then
    p = probes.new(h._opts, pr.wall0, s, pr.before)
    p.wake = function() wake(h) end
    pr.probe = p
    local app = h._app
    if not app then
      app = App.new(basename(h._opts.argv[1]), h._opts, h._log)
      h._app = app
    end
    app.pid = s:outcome()
    if h._debug then
      h._log("debug", format("%s: running, pid %d: probing (%s)", label(h), app.pid, p.kind))
      -- (a log function that stepped the start, or yielded while another
      -- waiter did: it may be ready, its starter taken, or cancelled)
      if h.done then return true end
      if h._failure then return failed_step(h) end
    end
  end
  if lingering and (pr.passed or s:app_ended()) then return nil end
  if s:app_ended() then
    return fail(h, "died", format("app %s before it was ready", tostring(errors.how(s:result().how or {}))))
  end
  if pr.passed then
    -- a command an earlier try left is looked at until it has ended
    local settled = p:settled()
    if p.given_up then
      tell_given_up(h, p)
      -- (a log function that stepped the start, or yielded while another
      -- waiter did)
      if h.done then return true end
      if h._failure then return failed_step(h) end
    end
    if not settled then
      h._wake = now() + settings.poll_interval
      return false
    end
    h._probing = false
    return finish_ready(h)
  end
  local ok, why, errno = p:try(h._app)
  -- (a check function may have ended the start itself: h:abandon)
  if h.done then return true end
  if h._failure then return failed_step(h) end
  local t = now()
  local deadline = h._ready_deadline
  if not deadline then
    deadline = ready_deadline(h, t)
    h._ready_deadline = deadline
  end
  if ok and t >= deadline and not s:app_ended() then
    -- a pass seen only past ready_timeout came too late: a check function
    -- that blocked past it, a command that exited 0 after it, a try made
    -- at a step that came late
    return fail(h, "timeout", format("app not ready within %g s: %s only after %.3f s",
      h._opts.ready_timeout or DEFAULTS.ready_timeout, p:passed_as(), t - h._t0))
  end
  if ok then
    p:close()
    pr.passed = true
    if lingering then return nil end
    return probe_step(h)
  end
  -- an app that ended during the try (a check function that blocked, in
  -- a plain script, past its death and the deadline) fails died, as it
  -- would have at the next step: not timeout, nor the probe's error
  if lingering and s:app_ended() then return nil end
  if s:app_ended() then
    return fail(h, "died", format("app %s before it was ready", tostring(errors.how(s:result().how or {}))))
  end
  if ok == nil then return fail(h, "protocol", "ready probe: " .. why, errno) end
  if t >= deadline then return fail(h, "timeout", not_ready(h)) end
  local wake_at = p:next_at()
  -- while a check function runs, the app's end wakes the start through
  -- its pidfd; without one it is looked at every poll_interval
  if p:running() and not s:app_fd() then wake_at = math.min(wake_at, t + settings.poll_interval) end
  h._wake = math.min(lingering and h._wake or deadline, deadline, wake_at)
  return false
end

-- Has the ready message come, the start held by a helper that lingers
-- after its report (ready once it has exited)?
function ready_noted(h)
  return h._s:result().ready_seen or false
end

-- A method's self must be a start (h:step(), not h.step()). (level:
-- error's, as counted from the caller of is_start)
local function is_start(h, what, level)
  errors.check_self(h, Starting, what, "a start", level + 1)
end

-- The start's own check function stepping it (h:step, h:wait) would run
-- inside its step: a step in a step, or the check again (in a plain
-- script the call is a step's; in a loop it would wait on itself).
-- Raised at the line of the call.
--- Is the caller inside h's own check function (it may not step h)?
function start.in_own_check(h)
  local pr = h._probing
  return pr and pr.probe and pr.probe.caller == coroutine.running() or false
end

local function not_from_own_check(h)
  if start.in_own_check(h) then
    error("appstart: a check function cannot step or wait for its own start (h:step, h:wait)", 3)
  end
end

--- Advance without blocking: true once done (then h.app or h.err is set).
-- Call it whenever h:pollfd() (or one of the starter's descriptors) is
-- readable or h:timeout() has passed.
function Starting:step()
  is_start(self, "h:step", 2)
  not_from_own_check(self)
  -- stepped once, it is fresh no more: what happened is for the step to see
  self._fresh = false
  if self.done then return true end
  -- (what the output pipes hold: read, as no loop reads them, a
  -- listener's wake-up at a time; what is left makes the next step due
  -- at once)
  local facts = self._rare
  if facts and facts.out_fds then facts.out_left = self._out:step_read() end
  if self.done then return true end
  if self._failure then return failed_step(self) end
  local s = self._s
  local state, events, probe, pid_phase, more = s:step()
  -- the deadline is against the time of the read, not of the callbacks
  -- below: a message queued behind the one a slow on_status is called
  -- for is read by the next step, however late that comes, and before a
  -- timeout verdict all that is queued is read (a step reads up to 64,
  -- fewer than a socket may queue: net.unix.max_dgram_qlen, 512 on a
  -- systemd host; an app blocked sending to a full queue has not sent)
  local t = now()
  if events then
    on_events(self, t)
    -- (a callback may have ended the start: h:cancel, h:abandon)
    if self.done or self._failure then return Starting.step(self) end
  end
  if state == "ready" then
    if self._probing then return probe_step(self) end
    return finish_ready(self)
  end
  if state == "failed" then return fail(self) end
  local deadline, ready_due
  -- (set at the helper's report, read in the pid phase)
  local ready_by = self._ready_deadline
  if pid_phase then
    -- a forking daemon's pid file is waited for within ready_timeout
    local opts = self._opts
    deadline = self._t0 + (type(opts.ready) == "table" and opts.ready.forks
      and (opts.ready_timeout or DEFAULTS.ready_timeout) or opts.pid_timeout or DEFAULTS.pid_timeout)
    -- reported, the helper lingering: pid_timeout bounds its exit, and the
    -- app has ready_timeout from the report all the same, timed out then,
    -- the helper still running, unless its ready message has come (a
    -- probe decides for itself, below)
    if ready_by and ready_by < deadline and not self._probing and (t < ready_by or not ready_noted(self)) then
      deadline, ready_due = ready_by, true
    end
  else
    deadline = ready_by or set_ready_deadline(self, t)
  end
  if t >= deadline then
    -- (a READY=1 sent in time behind more than a step's reads: the
    -- launcher busy past the deadline, a slow on_status, it was never read)
    if more then
      local r = rare(self)
      local left = r.late_steps or STEPS_BEFORE_VERDICT
      if left > 0 then
        r.late_steps = left - 1
        return Starting.step(self)
      end
    end
    if pid_phase and not ready_due then
      local forks = type(self._opts.ready) == "table" and self._opts.ready.forks
      return fail(self, forks and "timeout" or "helper", helper_late(self))
    end
    return fail(self, "timeout", not_ready(self))
  end
  -- (an EXTEND_TIMEOUT_USEC= read in those steps moved the deadline: the
  -- next verdict reads on as far)
  facts = self._rare
  if facts and facts.late_steps then facts.late_steps = false end
  if probe and pid_phase and type(self._opts.ready) == "table" and self._opts.ready.forks then
    -- a forking daemon's pid file is looked for as a probe looks: soon
    -- at first, then less often (each wait as long as it has been looked
    -- for, from 1 ms up to poll_interval), so that a daemon that writes
    -- it at once is seen at once, however long the process took to exit
    local r = rare(self)
    if not r.looking then r.looking = t end
    self._wake = math.min(deadline, t + math.max(0.001, math.min(settings.poll_interval, t - r.looking)))
  elseif pid_phase and s:phase() == "reap" then
    -- its exec failed, and its child, on its way out (_exit), was not a
    -- zombie yet: done in a moment, so the next step is due at once, then
    -- soon (each wait as long as it has been looked for, from 1 ms), not
    -- at the pid deadline, for a loop of the caller's that steps on
    -- h:timeout() alone
    local r = rare(self)
    if not r.looking then
      r.looking = t
      self._wake = t
    else
      self._wake = math.min(deadline, t + math.max(0.001, math.min(settings.poll_interval, t - r.looking)))
    end
  else
    self._wake = probe and math.min(deadline, t + settings.poll_interval) or deadline
  end
  if pid_phase and ready_by and self._probing then return probe_step(self, true) or false end
  return false
end

-- What a start that timed out waited for, and how to change it.
function not_ready(h)
  local opts = h._opts
  local ready, timeout = opts.ready or DEFAULTS.ready, opts.ready_timeout or DEFAULTS.ready_timeout
  local what
  local probe = probe_of(h)
  local result = not probe and h._s:result()
  if result and result.held_sender then
    -- a message whose sender's descent could not be read (out of
    -- descriptors or memory) all along: it and what came behind it
    -- were never read, READY=1 perhaps among them
    what = format("a message from pid %d (%s may admit it) was held unread, and what came after"
      .. " it, since its sender's descent could not be read: %s", result.held_sender, spell(h, "notify_access", "all"),
      core.strerror(result.held_errno))
  elseif probe then
    what = probe:describe()
  elseif ready == "notify" and result.stopping then
    -- (as systemd does, a READY=1 after it is not believed)
    what = "it said STOPPING=1 on its notify socket (no READY=1 counts after that)"
  elseif ready == "notify" then
    what = "no READY=1 came on its notify socket"
      .. (opts.ready == nil and format(" (%s is the default: an app that speaks no protocol needs %s)",
        spell(h, "ready", "notify"), spell(h, "ready", "none")) or "")
  else
    -- (the number core_start gave it: with `user`, 3 all the same)
    what = format("no line came on its fd %d", opts.ready_fd or (opts.helper
      and (opts.pid_fd or 3) == 3 and 4 or 3))
    -- a line begun: the newline is what it lacks (its first bytes shown)
    local partial = result.partial
    if partial then
      what = format("%s (%d byte%s with no newline: \"%s\"%s)", what, #partial, #partial == 1 and "" or "s",
        printable(partial:sub(1, PARTIAL_SHOWN)), #partial > PARTIAL_SHOWN and "..." or "")
    end
  end
  if h._rare and h._rare.extended then
    -- (the app moved the deadline: the time it was given, from the start)
    return format("app not ready within %.3f s of its start (%s, which its EXTEND_TIMEOUT_USEC= extended): %s",
      h._ready_deadline - h._t0, spell(h, "ready_timeout", timeout), what)
  end
  return format("app not ready within %g s: %s", timeout, what)
end

-- What a helper that took too long failed to do, and where.
function helper_late(h)
  local opts = h._opts
  local timeout, fd = opts.pid_timeout or DEFAULTS.pid_timeout, opts.pid_fd or 3
  if type(opts.ready) == "table" and opts.ready.forks then
    timeout = opts.ready_timeout or DEFAULTS.ready_timeout
    local r = h._s:result()
    if r.pid then return format("app not ready within %g s", timeout) end
    if r.unchecked_pid then
      -- (the launcher out of descriptors all along: the daemon, not proven,
      -- is left running, as a helper's app is)
      return format("app not ready within %g s: %s named pid %d, which could not be checked: %s", timeout,
        opts.ready.pid_file, r.unchecked_pid, core.strerror(r.unchecked_errno))
    end
    -- (one reaped by another wait: it exited, how is not known)
    if r.helper_lost then
      return format("app not ready within %g s: no pid came in %s, and %s was reaped by another wait of this"
        .. " process (a waitpid(-1) elsewhere): its exit status is lost", timeout, opts.ready.pid_file, label(h))
    end
    return format("app not ready within %g s: %s", timeout, h._rare and h._rare.helper_exited
      and ("no pid came in " .. opts.ready.pid_file)
      or format("%s did not exit (%s: it must fork the daemon and exit 0)", label(h), spell(h, "ready", "forks")))
  end
  local r = h._s:result()
  if r.pid then return format("helper did not exit within %g s", timeout) end
  if r.unchecked_pid then
    -- (the launcher out of descriptors all along: a pid not proven is
    -- never signalled, as a bad one is not)
    return format("helper reported pid %d, which could not be checked within %g s: %s", r.unchecked_pid, timeout,
      core.strerror(r.unchecked_errno))
  end
  -- a record begun: what of it came (the channel held open by what the
  -- helper left, or the helper itself, waiting)
  local part = r.pid_partial and format(" (%d of %s came)", r.pid_partial,
    (opts.pid_format or DEFAULTS.pid_format) == "line" and "a line" or "4 bytes") or ""
  if opts.helper == true then
    return format("%s did not report a pid on fd %d within %g s%s (%s: it forks and"
      .. " reports its daemon's pid there itself, as dbus-daemon --print-pid=%d does)",
      label(h), fd, timeout, part, spell(h, "helper", true), fd)
  end
  return format("helper did not report a pid on fd %d within %g s%s", fd, timeout, part)
end

-- The start is abandoned: what it began is ended, as for any failure.
-- Whoever waits on it meanwhile (another task or coroutine in h:wait())
-- is woken, to wait for the app's end and its kill_grace, not until the
-- deadline it waited for (the app's SIGKILL came only then). Woken first:
-- the failure may close the starter (its waiters are woken later all the
-- same, having looked again only then).
local function abandon(h)
  if h.done or (h._failure and h._failure.stopping) then return end
  wake_waiters(h)
  fail(h, "cancelled", "start cancelled")
end

-- The task no longer waits on the start.
local function unwait(h, task)
  local w = waiting[h]
  if w == task then
    waiting[h] = false
  elseif w and getmetatable(w) == Tasks then
    w[task] = nil
    if not next(w) then waiting[h] = false end
  end
end

-- The task waits on the start.
local function enlist(h, task)
  local w = waiting[h]
  if not w or w == task then
    waiting[h] = task
  elseif getmetatable(w) == Tasks then
    w[task] = true
  else
    -- (a second task waits on it too: rare, a set for them)
    waiting[h] = setmetatable({ [w] = true, [task] = true }, Tasks)
  end
end

-- One wait of h:wait(): a task of appstart.run waiting here is woken by
-- wake_waiters() (a probing start's check function that returns, an
-- abandon).
local function wait_once(h, s)
  local task = loop.task()
  if not task then return loop.wait(s, h._wake) end
  enlist(h, task)
  local r, why = loop.wait(s, h._wake)
  unwait(h, task)
  return r, why
end

--- fn() is called when the start must be stepped again though none of
-- its descriptors says so (a check function that ran in a task of its own
-- has returned): for whoever waits on h:pollfd() in a poll set of its own.
-- Only a probing start has such a wake; for another it is never called.
function Starting:on_wake(fn)
  is_start(self, "h:on_wake", 2)
  if fn ~= nil and type(fn) ~= "function" then
    error("h:on_wake: a function expected, got " .. type(fn), 2)
  end
  if self._probing then self._probing.on_wake = fn or false end
end

-- A wait of h:wait() was cancelled (took: its cancel; else it raised):
-- the start is abandoned, and stepped until what it began has ended;
-- those waits are a stop's (a cancel for good does not end them:
-- loop.shield). A cancel that came as the start was ending already (it
-- failed, or h:cancel() ended it) is not its error: it is told at the
-- task's next wait after the stop, as one a stop's wait takes.
local function finish_cancelled(h, s, took)
  local failed_before = h._failure
  abandon(h)
  local _ <close> = loop.shield()
  if took and failed_before then loop.took_cancel() end
  while not h:step() do
    if wait_once(h, s) == nil then
      abandon(h)
      loop.took_cancel()
    end
  end
end

-- wait_once, but a wait that raises (its task cancelled for good, a ^C
-- in a plain script) ends the start first, as a cancelled wait does, and
-- the error goes on then: the start was left as it was, its app running
-- (or a zombie) for as long as the handle was held.
local function wait_or_end(h, s)
  local ok, r, why = pcall(wait_once, h, s)
  if ok then return r, why end
  -- (no longer waiting: a start whose stop needs no wait held the task)
  local task = loop.task()
  if task then unwait(h, task) end
  -- (the first error goes on: a log function that raises again as the
  -- start is cancelled, a second ^C, would take its place)
  pcall(finish_cancelled, h, s)
  error(r, 0)
end

-- A step of h:wait(): one that raises (a ^C in a callback it runs, a log
-- function that raises) ends the start first, as a wait that raises does
-- (wait_or_end), unless it is done (its app was handed over: what
-- appstart.start's own handle leaves to its caller too).
local function step_or_end(h, s)
  local ok, done = pcall(h.step, h)
  if ok then return done end
  if not h.done then pcall(finish_cancelled, h, s) end
  error(done, 0)
end

--- Step until done, waiting in between (yields inside a loop): app | nil,
-- err. A wait cancelled (the calling task was) cancels the start (and the
-- task a check function runs in).
function Starting:wait()
  is_start(self, "h:wait", 2)
  not_from_own_check(self)
  local s = self._s
  -- fresh from its spawn: the first step comes after a wait (unless the
  -- start has been abandoned meanwhile: its own deadline rules then, and
  -- it may be done already)
  local waited = self._fresh and not self._failure
  if waited and wait_or_end(self, s) == nil then
    finish_cancelled(self, s, true)
  else
    while not step_or_end(self, s) do
      waited = true
      if wait_or_end(self, s) == nil then
        finish_cancelled(self, s, true)
        break
      end
    end
  end
  -- (a call that waits serves the rest in a plain script, even with no wait)
  if not waited then loop.serve() end
  return self.app or nil, self.err or nil
end

--- Abandon the start and wait until its app is terminated; then
-- h.err.code == "cancelled".
function Starting:cancel()
  is_start(self, "h:cancel", 2)
  abandon(self)
  -- a stop: its waits wait, in a task cancelled for good too
  local _ <close> = loop.shield()
  self:wait()
end

--- Abandon the start without waiting: what it began is ended as for any
-- failed start (terminated); step it on (h:step()) until it returns true,
-- then h.err.code == "cancelled". For a caller that steps starts itself
-- and must not wait here (a supervisor stopping a service whose start is
-- under way). Returns h.done.
function Starting:abandon()
  is_start(self, "h:abandon", 2)
  abandon(self)
  return self.done
end

--- A start that is being stopped (failed, cancelled) and whose app has
-- had SIGTERM gets SIGKILL now, not at the end of its grace (the
-- command's second ^C). Its waiter wakes as the app ends. Returns the pid
-- signalled (or true where none is known), or nil when there is nothing
-- to hurry.
function start.hurry(h)
  local f = h._failure
  if h.done or not f or not f.stopping or f.escalated then return nil end
  escalate(h, f, now())
  -- (its wait from the signal sent, as in fail)
  if not h.done then f.deadline = now() + ending.KILL_WAIT end
  return h._s:result().pid or true
end

-- cqueues-style polling interface: pollfd / events / timeout
function Starting:pollfd()
  is_start(self, "h:pollfd", 2)
  if self.done then return nil end
  return (self._s:fd())
end
function Starting:events()
  is_start(self, "h:events", 2)
  return "r"
end
function Starting:timeout()
  is_start(self, "h:timeout", 2)
  if self.done or (self._rare and self._rare.out_left) then return 0 end
  return self._wake and math.max(0, self._wake - now()) or 0
end

--- A start closed before it is done (`<close>`, a task closed) is
-- cancelled: what it began is terminated (SIGTERM, SIGKILL after
-- kill_grace), by a task of its own inside a loop, here outside one. (One
-- merely dropped is collected: its app is killed then.)
function Starting:__close()
  if self.done then return end
  abandon(self)
  if not self.done then loop.call(Starting.wait, self) end
end

function Starting:__tostring()
  return format("appstart.starting(%s)", self.done and (self.app and "ready" or "failed") or "in progress")
end

--- Start an app and wait until it is ready: app | nil, err.
-- @param up as for start.begin, from this function
function start.start(opts, up)
  local h <close> = start.begin(opts, "appstart.start", up + 1)
  local ok, app, err = pcall(h.wait, h)
  if ok then return app, err end
  -- raised once the app was handed over (a ^C as the start ended, a log
  -- function that raised after): no one else holds it, so it is
  -- terminated, and the first error goes on
  if h.app then pcall(App.__close, h.app) end
  error(app, 0)
end

return start
