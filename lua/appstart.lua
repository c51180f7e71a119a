--- appstart: start an application, prove that it came up, watch it until it
-- exits.
--
-- The policy layer: defaults, timeouts, callbacks, logging and error values.
-- The mechanism (channels, spawn, the handshake, pidfds) is appstart.core;
-- every wait goes through appstart.loop, so the same calls block in a plain
-- script and yield inside `appstart.run`.
local core = require "appstart.core"
local loop = require "appstart.loop"

local now = core.now

-- is fd readable right now? (no wait)
local function readable_now(fd)
  return core.wait_readable(fd, 0) == true
end

local appstart = {
  version = core.version,
  --- path of appstart-helper, run for `user =`
  helper_path = os.getenv("APPSTART_HELPER") or core.helper_path,
  --- seconds between probes where a process has no pidfd
  poll_interval = 0.05,
  --- the default logger's threshold: "error", "warn", "info" or "debug"
  log_level = os.getenv("APPSTART_LOG") or "warn",
}

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4 }

--- The default logger: one line on stderr per message at or above
-- appstart.log_level.
local function default_log(level, message)
  if (LEVELS[level] or 4) <= (LEVELS[appstart.log_level] or 2) then
    io.stderr:write("appstart: ", level, ": ", message, "\n")
  end
end
appstart.default_log = default_log

-- Would the default logger drop this level? Then its message is not even
-- formatted (a start formats several at "debug", which is off by default).
local function quiet(log, level)
  return log == default_log and (LEVELS[level] or 4) > (LEVELS[appstart.log_level] or 2)
end

--- log(level, string.format(fmt, ...)) unless quiet.
local function logf(log, level, fmt, ...)
  if quiet(log, level) then return end
  log(level, string.format(fmt, ...))
end

--- Text an app chose (its name, its STATUS=) made safe for one line of a
-- log or a terminal: control characters (escape sequences among them)
-- written as \xHH.
function appstart.printable(text)
  return (text:gsub("%c", function(c) return string.format("\\x%02x", c:byte()) end))
end
local printable = appstart.printable

-------------------------------------------------------------------------------
-- errors

local Error = {}
Error.__index = Error
Error.__name = "appstart.error"
Error.__tostring = function(e) return e.message end

local function new_error(code, message, fields)
  local e = { code = code, message = message }
  if fields then for k, v in pairs(fields) do e[k] = v end end
  return setmetatable(e, Error)
end
appstart.Error = Error

-------------------------------------------------------------------------------
-- option checking: a programmer mistake raises before anything is spawned

local OPTIONS = {
  argv = "table", env = "table", cwd = "string",
  stdin = "string", stdout = "string", stderr = "string",
  helper = "table|boolean", user = "string|integer", group = "string|integer",
  pid_fd = "integer", pid_format = "string",
  ready = "string", ready_fd = "integer", notify_access = "string",
  pid_timeout = "number", ready_timeout = "number", kill_grace = "number",
  on_status = "function", on_exit = "function", log = "function",
}

-- OPTIONS as sets of accepted types, checked once per option of every start
local ACCEPTS = {}
for name, want in pairs(OPTIONS) do
  local set = {}
  for alt in want:gmatch("[^|]+") do set[alt] = true end
  if set.number then set.integer, set.float = true, true end
  ACCEPTS[name] = set
end

local ENUMS = {
  ready = { none = true, fd = true, notify = true },
  pid_format = { int32le = true, line = true },
  notify_access = { main = true, exec = true, all = true },
}

local SECONDS = { pid_timeout = true, ready_timeout = true, kill_grace = true }
local DESCRIPTORS = { pid_fd = true, ready_fd = true }

local function arg_error(field, message, level)
  error(string.format("appstart.start: field '%s': %s", field, message), level + 1)
end

local function check_strings(field, list, nonempty)
  if nonempty and #list == 0 then arg_error(field, "must not be empty", 4) end
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      arg_error(field, string.format("[%d]: string expected, got %s", i, type(list[i])), 4)
    end
  end
end

local function check_env(env)
  for k, v in pairs(env) do
    if type(k) ~= "string" or k == "" or k:find("[=%z]") then
      arg_error("env", "bad variable name " .. string.format("%q", tostring(k)), 4)
    end
    if type(v) ~= "string" and type(v) ~= "number" then
      arg_error("env", string.format("value of %s: string expected, got %s", k, type(v)), 4)
    end
  end
end

local function check_options(opts)
  if type(opts) ~= "table" then
    error("appstart.start: options table expected, got " .. type(opts), 3)
  end
  for k, v in pairs(opts) do
    local accepts = ACCEPTS[k]
    if not accepts then arg_error(tostring(k), "unknown option", 3) end
    local t = type(v)
    if t == "number" then t = math.type(v) end
    if not accepts[t] then
      arg_error(k, OPTIONS[k] .. " expected, got " .. t, 3)
    end
    if ENUMS[k] and not ENUMS[k][v] then
      arg_error(k, "invalid value '" .. tostring(v) .. "'", 3)
    end
    if SECONDS[k] and (v ~= v or v < 0) then arg_error(k, "must be a number >= 0", 3) end
    if DESCRIPTORS[k] and (v < 3 or v > 1023) then
      arg_error(k, v .. " is not a descriptor from 3 to 1023", 3)
    end
  end
  if opts.argv == nil then arg_error("argv", "table expected, got nil", 3) end
  check_strings("argv", opts.argv, true)
  if type(opts.helper) == "table" then check_strings("helper", opts.helper, true) end
  if opts.helper and opts.user then
    arg_error("user", "cannot be combined with 'helper'", 3)
  end
  if math.type(opts.user) == "integer" and (opts.user < 0 or opts.user >= 0xffffffff) then
    arg_error("user", "uid " .. opts.user .. " out of range", 3)
  end
  if math.type(opts.group) == "integer" and (opts.group < 0 or opts.group >= 0xffffffff) then
    arg_error("group", "gid " .. opts.group .. " out of range", 3)
  end
  if opts.group ~= nil and not opts.user then
    arg_error("group", "has no effect without 'user'", 3)
  end
  if opts.env then check_env(opts.env) end
  local has_helper = opts.helper or opts.user
  -- an option that would be silently ignored is a mistake
  if not has_helper then
    if opts.pid_fd ~= nil then arg_error("pid_fd", "has no effect without 'helper' or 'user'", 3) end
    if opts.pid_format ~= nil then arg_error("pid_format", "has no effect without 'helper' or 'user'", 3) end
  end
  if has_helper and opts.ready == "fd" and opts.ready_fd and opts.ready_fd == (opts.pid_fd or 3) then
    arg_error("ready_fd", "same descriptor as 'pid_fd' (" .. opts.ready_fd .. ")", 3)
  end
end

-------------------------------------------------------------------------------
-- waiting on a process

local function basename(path)
  return (path:match("([^/]+)/*$")) or path
end

--- Wait until proc has ended or the deadline passes: how | nil.
-- just_signalled: it was sent a signal a moment ago, so it has not ended
-- yet; with a pidfd the first wait4 waits until the pidfd says it has.
local function wait_process(proc, deadline, just_signalled)
  local skip_poll = just_signalled and proc:fd() ~= nil
  while true do
    if not skip_poll then
      local how = proc:poll()
      if how then return how end
    end
    skip_poll = false
    local t = now()
    if deadline and t >= deadline then return nil end
    local fd = proc:fd()
    if fd then
      loop.wait(fd, deadline)
    else
      local wake = t + appstart.poll_interval
      if deadline and deadline < wake then wake = deadline end
      loop.wait(nil, wake)
    end
  end
end

-- SIGKILL is final, but a process in uninterruptible sleep may take a while
-- to go; past this the launcher gives up waiting (the child is still reaped
-- later, never left a zombie).
local KILL_WAIT = 10

--- SIGTERM (and SIGCONT, so a stopped process gets it), then SIGKILL after
-- `grace` seconds. Returns how it ended. polled: the caller has just seen
-- it running.
-- Send sig: nil, message when it could not be sent for another reason than
-- that the process has ended (EPERM: an app of another user).
local ESRCH = 3
local function send(proc, sig)
  local ok, message, errno = proc:signal(sig)
  if not ok and errno ~= ESRCH then return nil, message end
  return true
end

local function terminate(proc, grace, polled)
  local how = not polled and proc:poll()
  if how then return how end
  local ok, message = send(proc, "TERM")
  if not ok then return nil, message end
  proc:signal("CONT")
  how = wait_process(proc, now() + grace, true)
  if how then return how end
  proc:signal("KILL")
  return wait_process(proc, now() + KILL_WAIT, true) or {}
end

local function kill_now(proc)
  local how = proc:poll()
  if how then return how end
  local ok, message = send(proc, "KILL")
  if not ok then return nil, message end
  return wait_process(proc, now() + KILL_WAIT, true) or {}
end

-------------------------------------------------------------------------------
-- the app object

local App = {}
App.__index = App
App.__name = "appstart.app"

local function app_ended(app, how)
  if app.state == "exited" then return end
  app.state = "exited"
  app.how = how
  loop.unwatch(app._watch)
  app._watch = nil
  local proc = app._proc
  app._proc = nil
  if proc then proc:close() end
  if not quiet(app._log, "debug") then
    app._log("debug", string.format("%s: pid %d %s", app.name or "app", app.pid,
      how.code and ("exited with code " .. how.code)
        or how.signal and ("was killed by signal " .. how.signal) or "exited"))
  end
  local on_exit = app._on_exit
  app._on_exit = nil
  if on_exit then loop.call(on_exit, app, how) end
end

local function app_check(app)
  if app.state == "exited" then return app.how end
  local how = app._proc and app._proc:poll()
  if how then app_ended(app, how) end
  return how
end

--- Wait for the app to exit.
-- @param timeout seconds, or nil to wait as long as it takes
-- @return how ({code = n} | {signal = n} | {}) or nil, "timeout"
-- (nil, "cancelled" when the calling task is cancelled)
function App:wait(timeout)
  if self.state == "exited" then return self.how end
  if not self._proc then return nil, "closed" end
  local deadline = timeout and now() + timeout
  while true do
    local how = app_check(self)
    if how then return how end
    if deadline and now() >= deadline then return nil, "timeout" end
    local fd = self._proc:fd()
    local wake = deadline
    if not fd then
      wake = now() + appstart.poll_interval
      if deadline and deadline < wake then wake = deadline end
    end
    local ok, why = loop.wait(fd, wake)
    if ok == nil then return nil, why end
  end
end

--- Send a signal (default SIGTERM): true, or nil, message.
function App:kill(sig)
  if app_check(self) or not self._proc then return nil, "app has exited" end
  local ok, msg = self._proc:signal(sig or "TERM")
  if not ok then return nil, msg end
  return true
end

--- SIGTERM, then SIGKILL after `grace` seconds (default: the start's
-- kill_grace). Returns how the app ended, or nil, message when it cannot
-- be signalled (an app of another user, for an unprivileged launcher).
function App:terminate(grace)
  local how = app_check(self)
  if how then return how end
  if not self._proc then return nil, "closed" end
  local message
  how, message = terminate(self._proc, grace or self._kill_grace, true) -- app_check polled it
  if not how then return nil, message end
  app_ended(self, how)
  return how
end

--- Release the app's descriptors and leave it running (its callbacks will
-- not run). Safe to call twice.
function App:close()
  loop.unwatch(self._watch)
  self._watch, self._on_exit = nil, nil
  if self._proc then self._proc:close(); self._proc = nil end
end

--- `local app <close> = appstart.start{...}` terminates the app at scope exit.
function App:__close()
  if self._proc and self.state ~= "exited" then self:terminate() end
  self:close()
end

function App:__tostring()
  return string.format("appstart.app(%s, pid %s, %s)", self.name or "?", tostring(self.pid), self.state)
end

-- cqueues-style polling interface: pollfd / events / timeout
function App:pollfd() return self._proc and self._proc:fd() end
function App:events() return "r" end
function App:timeout()
  if self._proc and not self._proc:fd() then return appstart.poll_interval end
  return nil
end

local function watch_app(app)
  local proc = app._proc
  local fd = proc:fd()
  if fd then
    app._watch = loop.watch(fd, function() app_check(app) end)
  else
    app._watch = loop.watch(nil, function() return app_check(app) ~= nil end,
      appstart.poll_interval)
  end
end

-------------------------------------------------------------------------------
-- start

-- A guard for processes in transit: at scope exit, whatever is still
-- listed (not set to false) is killed and let go. Neither step allocates.
local KILL_UNLESS_RELEASED = {
  __close = function(held)
    for i = 1, 2 do
      local proc = held[i]
      if proc then
        proc:signal("KILL")
        proc:close()
      end
    end
  end,
}

local TERMINATE = { timeout = true, ready_closed = true, protocol = true,
  cancelled = true, helper = true }

local function env_array(env)
  if not env then return nil end
  local list = {}
  for k, v in pairs(env) do list[#list + 1] = k .. "=" .. tostring(v) end
  table.sort(list)
  return list
end

-- Refused messages since the last such log line, in one line.
local function log_refused(app, opts, log, label)
  local n = app._refused
  if n == 0 then return end
  app._refused, app._refused_at = 0, now()
  if quiet(log, "warn") then return end
  if n == 1 then
    log("warn", string.format("%s: ignored a %s from pid %d (notify_access=%s)",
      label, app._refused_what, app._refused_pid, opts.notify_access or "exec"))
  else
    log("warn", string.format(
      "%s: ignored %d messages (%ss) from processes not admitted, the last from pid %d (notify_access=%s)",
      label, n, app._refused_what, app._refused_pid, opts.notify_access or "exec"))
  end
end

-- Act on what the starter reports (pids, STATUS=, EXTEND_TIMEOUT_USEC=...);
-- returns the ready deadline, extended or not.
local function start_events(s, app, opts, log, label, helper, ready_deadline)
  local list = s:events()
  if not list then return ready_deadline end
  for _, e in ipairs(list) do
    local k = e.kind
    if k == "spawned" then
      if not helper then app.pid = e.value end
      logf(log, "debug", "%s: spawned pid %d", label, e.value)
    elseif k == "pid" then
      app.pid = e.value
      logf(log, "debug", "%s: helper reported pid %d", label, e.value)
    elseif k == "helper_exit" then
      logf(log, "debug", "%s: helper %s", label,
        e.value >= 0 and ("exited with code " .. e.value) or ("killed by signal " .. -e.value))
    elseif k == "status" then
      if not quiet(log, "info") then log("info", label .. ": status: " .. printable(e.text)) end
      app.status = e.text
      if opts.on_status then opts.on_status(app, e.text) end
    elseif k == "ignored" then
      -- a flood is logged once a second at most, with a count
      app._refused = app._refused + e.count
      app._refused_pid, app._refused_what = e.value, e.text
      if now() - app._refused_at >= 1 then log_refused(app, opts, log, label) end
    elseif k == "extend" then
      local until_ = now() + e.value / 1e6
      if not ready_deadline or until_ > ready_deadline then ready_deadline = until_ end
      logf(log, "debug", "%s: ready timeout extended by %.3f s", label, e.value / 1e6)
    elseif k == "errno" then
      logf(log, "info", "%s: app reported ERRNO=%d", label, e.value)
    elseif k == "stopping" then
      logf(log, "info", "%s: app reported STOPPING=1", label)
    elseif k == "mainpid" then
      logf(log, "debug", "%s: MAINPID=%d agrees", label, e.value)
    elseif k == "dropped" then
      logf(log, "warn", "%s: %d events dropped", label, e.value)
    end
  end
  return ready_deadline
end

-- A start that failed (fcode, fmessage: the caller's verdict, else the
-- starter's): deal with what it started as the code says, close it, and
-- return nil, err.
local function start_failed(s, app, opts, log, label, grace, fcode, fmessage, ferrno)
  log_refused(app, opts, log, label)
  local r = s:result()
  fcode, fmessage = fcode or r.code, fmessage or r.message
  -- until the processes are dealt with, an error (out of memory, a
  -- raising logger) must not let them go: the guard kills what is held
  local held = setmetatable({ false, false }, KILL_UNLESS_RELEASED)
  local _ <close> = held
  held[1] = s:take("app") or false
  held[2] = s:take("helper") or false
  local app_proc, helper_proc = held[1] or nil, held[2] or nil
  if helper_proc then kill_now(helper_proc); helper_proc:close() end
  local how
  if app_proc then
    if fcode == "pid_mismatch" then
      how = kill_now(app_proc)
    elseif TERMINATE[fcode] then
      how = terminate(app_proc, grace)
    else
      how = app_proc:poll() or wait_process(app_proc, now() + KILL_WAIT)
    end
    app_proc:close()
  end
  held[1], held[2] = false, false
  s:close()
  log(fcode == "cancelled" and "info" or "error", label .. ": " .. fmessage)
  return nil, new_error(fcode, fmessage, {
    pid = r.pid, status = how, errno = ferrno or r.errno or r.app_errno,
  })
end

--- Start an app and wait until it is ready.
-- @param opts see DESIGN.md: argv (required), env, cwd, stdin, stdout,
-- stderr, helper, user, pid_fd, pid_format, ready, ready_fd, notify_access,
-- pid_timeout, ready_timeout, kill_grace, on_status, on_exit, log
-- @return app, or nil, err (err.code, err.message, err.pid, err.status,
-- err.errno; tostring(err) is the message)
function appstart.start(opts)
  check_options(opts)
  local log = opts.log or appstart.default_log
  local ready = opts.ready or "notify"
  local pid_timeout = opts.pid_timeout or 10
  local ready_timeout = opts.ready_timeout or 40
  local grace = opts.kill_grace or 5
  local label = basename(opts.argv[1])

  -- helper: the argv of a helper run as helper..argv, or true when argv is
  -- itself a forking program that reports its daemon's pid (dbus-daemon
  -- --fork --print-pid=3)
  local argv, helper = opts.argv, opts.helper or nil
  local pid_fd = opts.pid_fd or 3
  -- the ready channel's number in the child: the first free from 3
  local ready_fd
  if ready == "fd" then
    ready_fd = opts.ready_fd or ((helper or opts.user) and pid_fd == 3 and 4 or 3)
  end
  local cwd, stdin, app_uid = opts.cwd, opts.stdin, nil
  if opts.user then
    app_uid = core.user(opts.user)
    if not app_uid then
      if math.type(opts.user) ~= "integer" then
        arg_error("user", "no such user '" .. tostring(opts.user) .. "'", 2)
      end
      app_uid = opts.user -- a uid with no passwd entry
    end
    -- the app gets a session of its own and no terminal, stdin from
    -- /dev/null unless given; its directory is entered as its user
    helper = { appstart.helper_path, "--user", tostring(opts.user),
      "--pid-fd", tostring(pid_fd), "--pid-format", opts.pid_format or "int32le" }
    if opts.group ~= nil then table.move({ "--group", tostring(opts.group) }, 1, 2, #helper + 1, helper) end
    if ready_fd then table.move({ "--keep-fd", tostring(ready_fd) }, 1, 2, #helper + 1, helper) end
    if cwd then table.move({ "--chdir", cwd }, 1, 2, #helper + 1, helper) end
    if not opts.env then helper[#helper + 1] = "--login-env" end
    helper[#helper + 1] = "--"
    cwd, stdin = nil, stdin or "null"
  end
  if type(helper) == "table" then
    local full = table.move(helper, 1, #helper, 1, {})
    table.move(argv, 1, #argv, #full + 1, full)
    argv = full
  end

  local spec = {
    argv = argv, env = env_array(opts.env), cwd = cwd,
    stdin = stdin, stdout = opts.stdout, stderr = opts.stderr,
    helper = helper and true or false, pid_fd = pid_fd, pid_format = opts.pid_format,
    ready = ready, ready_fd = ready_fd, notify_access = opts.notify_access,
    notify_dir = os.getenv("XDG_RUNTIME_DIR"), app_uid = app_uid,
    pollfd = loop.wants_one_fd(),
  }
  local t0 = now()
  local s <close>, code, errno, message = core.start(spec)
  if not s then
    log("error", label .. ": " .. message)
    return nil, new_error(code, message, { errno = errno ~= 0 and errno or nil })
  end

  local pid_deadline = t0 + pid_timeout
  local ready_deadline
  -- the app-to-be: on_status gets it while the start is under way
  local app = setmetatable({ name = label, state = "starting", argv = opts.argv,
    _on_exit = opts.on_exit, _kill_grace = grace, _log = log,
    _refused = 0, _refused_at = -math.huge, _refused_pid = 0, _refused_what = false }, App)
  while true do
    local state, interval = s:step()
    ready_deadline = start_events(s, app, opts, log, label, helper, ready_deadline)
    if state == "ready" then break end
    if state == "failed" then return start_failed(s, app, opts, log, label, grace) end
    local t = now()
    local deadline
    if s:phase() == "pid" then
      deadline = pid_deadline
    else
      ready_deadline = ready_deadline or t + ready_timeout
      deadline = ready_deadline
    end
    if t >= deadline then
      local r = s:result()
      if s:phase() == "pid" then
        return start_failed(s, app, opts, log, label, grace, "helper", r.pid
          and string.format("helper did not exit within %g s", pid_timeout)
          or string.format("helper did not report a pid within %g s", pid_timeout))
      end
      return start_failed(s, app, opts, log, label, grace, "timeout", string.format("app not ready within %g s", ready_timeout))
    end
    local wake = deadline
    if interval and t + interval < wake then wake = t + interval end
    local ok = loop.wait(s, wake)
    if ok == nil then return start_failed(s, app, opts, log, label, grace, "cancelled", "start cancelled") end
  end

  log_refused(app, opts, log, label)
  local r = s:result()
  -- the guard exists before the process leaves the starter: from then on,
  -- an error (out of memory, a raising logger) kills it rather than losing it
  local held = setmetatable({ false, false }, KILL_UNLESS_RELEASED)
  local _ <close> = held
  held[1] = s:take("app") or false
  app._proc = held[1] or nil
  s:close()
  app.pid, app.name, app.status = r.pid, r.name or label, r.status
  app.state, app.ready_after = "ready", now() - t0
  logf(log, "debug", "%s: ready after %.3f s, pid %d", label, app.ready_after, app.pid)
  if not app_check(app) and opts.on_exit then watch_app(app) end
  held[1] = false -- handed over
  return app
end

-------------------------------------------------------------------------------
-- a start in progress, for the caller's own event loop

local Starting = {}
Starting.__index = Starting
Starting.__name = "appstart.starting"

local function starting_resume(h, ...)
  local ok, a, b = coroutine.resume(h._co, ...)
  if not ok then
    h.done = true
    error(a, 0)
  end
  if coroutine.status(h._co) == "dead" then
    h.done, h.app, h.err = true, a, b
    h._fd, h._deadline = nil, nil
  else
    h._fd, h._deadline = a, b
  end
end

--- Begin a start without waiting for it: for an event loop of the
-- caller's own. The handle is pollable (pollfd, events, timeout, as
-- cqueues.poll expects); call h:step() whenever pollfd is readable or the
-- timeout has passed, until h.done; then h.app, or h.err.
-- @param opts as for appstart.start
function appstart.begin(opts)
  check_options(opts)
  local h = setmetatable({ done = false }, Starting)
  h._co = coroutine.create(function() return appstart.start(opts) end)
  loop.drive(h._co) -- its waits yield to h:step
  starting_resume(h)
  return h
end

--- Advance: returns true once done (then h.app or h.err is set).
function Starting:step()
  if self.done then return true end
  local readable = false
  if self._fd then readable = readable_now(self._fd) end
  if readable or not self._deadline or now() >= self._deadline then
    starting_resume(self, readable)
  end
  return self.done
end

--- Block until done (drives the start itself): app | nil, err.
function Starting:wait()
  while not self.done do
    loop.wait(self._fd, self._deadline)
    starting_resume(self, self._fd and readable_now(self._fd) or false)
  end
  return self.app, self.err
end

--- Abandon the start: its app is terminated; h.err.code == "cancelled".
function Starting:cancel()
  if self.done then return end
  starting_resume(self, nil, "cancelled")
  self:wait()
end

function Starting:pollfd() return self._fd end
function Starting:events() return "r" end
function Starting:timeout()
  return self._deadline and math.max(0, self._deadline - now()) or nil
end

function Starting:__tostring()
  return string.format("appstart.starting(%s)", self.done and (self.app and "ready" or "failed") or "in progress")
end

-------------------------------------------------------------------------------
-- watching any pid

local Watch = {}
Watch.__index = Watch
Watch.__name = "appstart.watch"

local function watch_end(w, why)
  if w.done then return end
  w.done = true
  loop.unwatch(w._watch)
  w._watch = nil
  if w._proc then w._proc:close(); w._proc = nil end
  loop.call(w._fn, w.pid, why)
end

--- Stop watching: the callback runs with "stopped" unless it already ran.
function Watch:stop()
  watch_end(self, "stopped")
end

function Watch:__tostring()
  return string.format("appstart.watch(pid %d, %s)", self.pid, self.done and "done" or "watching")
end

function Watch:pollfd() return self._proc and self._proc:fd() end
function Watch:events() return "r" end
function Watch:timeout()
  if self._proc and not self._proc:fd() then return appstart.poll_interval end
  return nil
end

--- Watch a pid (not necessarily a child): fn(pid, "exited" | "stopped")
-- runs exactly once. A pid that is already gone is reported "exited".
function appstart.watch(pid, fn)
  if math.type(pid) ~= "integer" or pid <= 0 then
    error("appstart.watch: pid must be a positive integer, got " .. tostring(pid), 2)
  end
  if type(fn) ~= "function" then
    error("appstart.watch: function expected, got " .. type(fn), 2)
  end
  local w = setmetatable({ pid = pid, done = false, _fn = fn }, Watch)
  local proc = core.process(pid)
  w._proc = proc
  local function check()
    if w.done then return true end
    if not w._proc or w._proc:poll() then watch_end(w, "exited"); return true end
    return false
  end
  if not proc then
    -- already gone: reported at the next dispatch, never from inside watch()
    w._watch = loop.watch(nil, check, 0)
  elseif proc:fd() then
    w._watch = loop.watch(proc:fd(), check)
  else
    w._watch = loop.watch(nil, check, appstart.poll_interval)
  end
  return w
end

-------------------------------------------------------------------------------
-- the loop

appstart.run = loop.run
appstart.spawn = loop.spawn
appstart.sleep = loop.sleep

return appstart
