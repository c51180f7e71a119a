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
local settings = require "appstart.settings"

local now = core.now
local logf, printable = log.f, log.printable

local start = {}

local Starting = {}
Starting.__index = Starting
Starting.__name = "appstart.starting"

-- what a failed start sends its app first (nil: nothing)
local FIRST_SIGNAL = { timeout = "TERM", ready_closed = "TERM", protocol = "TERM",
  cancelled = "TERM", helper = "TERM", pid_mismatch = "KILL" }

local function basename(path)
  return (path:match("([^/]+)/*$")) or path
end

local function env_array(env)
  if not env then return nil end
  local list = {}
  for k, v in pairs(env) do list[#list + 1] = k .. "=" .. tostring(v) end
  table.sort(list)
  return list
end

--- The core's spec for opts (checked): the command (with the helper's
-- argv before the app's), the descriptor layout, the user.
local function core_spec(opts, ready)
  local argv, helper = opts.argv, opts.helper or nil
  local pid_fd = options.get(opts, "pid_fd")
  -- the ready channel's number in the child: the first free from 3
  local ready_fd
  if ready == "fd" then
    ready_fd = opts.ready_fd or ((helper or opts.user) and pid_fd == 3 and 4 or 3)
  end
  local cwd, stdin, app_uid = opts.cwd, opts.stdin, nil
  if opts.user then
    app_uid = core.user(opts.user) or opts.user -- a uid with no passwd entry
    -- the app gets a session of its own and no terminal, stdin from
    -- /dev/null unless given; its directory is entered as its user
    helper = { settings.helper_path, "--user", tostring(opts.user),
      "--pid-fd", tostring(pid_fd), "--pid-format", options.get(opts, "pid_format") }
    if opts.group ~= nil then table.move({ "--group", tostring(opts.group) }, 1, 2, #helper + 1, helper) end
    if ready_fd then table.move({ "--keep-fd", tostring(ready_fd) }, 1, 2, #helper + 1, helper) end
    if cwd then table.move({ "--chdir", cwd }, 1, 2, #helper + 1, helper) end
    if not opts.env then helper[#helper + 1] = "--login-env" end
    helper[#helper + 1] = "--"
    cwd, stdin = nil, stdin or "null"
  end
  if type(helper) == "table" then
    local full = table.move(helper, 1, #helper, 1, {})
    argv = table.move(argv, 1, #argv, #full + 1, full)
  end
  return {
    argv = argv, env = env_array(opts.env), cwd = cwd,
    stdin = stdin, stdout = opts.stdout, stderr = opts.stderr,
    helper = helper and true or false, pid_fd = pid_fd, pid_format = opts.pid_format,
    ready = ready, ready_fd = ready_fd, notify_access = opts.notify_access,
    notify_dir = os.getenv("XDG_RUNTIME_DIR"), app_uid = app_uid,
  }
end

--- Begin a start without waiting for it (see appstart.begin).
-- @param opts the options of appstart.start
-- @param who the function the user called, for argument errors
-- @param up how many calls up from this one the user's code is: an
-- argument error points at its line
function start.begin(opts, who, up)
  options.assert(opts, who, up + 2)
  local ready = options.get(opts, "ready")
  local logger = opts.log or log.default
  local label = basename(opts.argv[1])
  local grace = options.get(opts, "kill_grace")
  local spec = core_spec(opts, ready)
  local one_fd = loop.wants_one_fd()
  local t0 = now()
  -- every field preset: a step sets them without allocating
  local h = setmetatable({ done = false, app = false, err = false,
    _s = false, _opts = opts, _log = logger, _label = label, _grace = grace,
    _app = App.new(label, opts.argv, opts, logger, grace), _t0 = t0,
    _pid_deadline = t0 + options.get(opts, "pid_timeout"),
    _ready_timeout = options.get(opts, "ready_timeout"), _ready_deadline = false,
    _wake = false, _stopping = false, _stop_deadline = false, _escalated = false,
    _fcode = false, _fmessage = false, _ferrno = false,
    _refused = 0, _refused_at = -math.huge, _refused_pid = 0, _refused_what = false }, Starting)
  -- from here on the starter holds processes: nothing may raise before h
  -- holds it, or they would wait for a collection to be killed
  h._s = core.start(spec)
  -- under an event loop that takes one descriptor, it is made now, so a
  -- failure is a failed start rather than a failed wait
  if one_fd then
    local ok, message, errno = h._s:fd()
    if not ok then h._fcode, h._fmessage, h._ferrno = "spawn", message, errno end
  end
  h:step() -- as far as it goes without waiting
  return h
end

-- Refused messages since the last such log line, in one line.
local function log_refused(h)
  local n = h._refused
  if n == 0 then return end
  h._refused, h._refused_at = 0, now()
  if log.drops(h._log, "warn") then return end
  local access = options.get(h._opts, "notify_access")
  if n == 1 then
    h._log("warn", string.format("%s: ignored a %s from pid %d (notify_access=%s)",
      h._label, h._refused_what, h._refused_pid, access))
  else
    h._log("warn", string.format(
      "%s: ignored %d messages (%ss) from processes not admitted, the last from pid %d (notify_access=%s)",
      h._label, n, h._refused_what, h._refused_pid, access))
  end
end

-- Act on what the starter reports: pids, STATUS=, EXTEND_TIMEOUT_USEC=...
local function on_events(h)
  local list = h._s:events()
  if not list then return end
  local app, logger, label, opts = h._app, h._log, h._label, h._opts
  for _, e in ipairs(list) do
    local k = e.kind
    if k == "spawned" then
      if not opts.helper and not opts.user then app.pid = e.value end
      logf(logger, "debug", "%s: spawned pid %d", label, e.value)
    elseif k == "pid" then
      app.pid = e.value
      logf(logger, "debug", "%s: helper reported pid %d", label, e.value)
    elseif k == "helper_exit" then
      logf(logger, "debug", "%s: helper %s", label,
        e.value >= 0 and ("exited with code " .. e.value) or ("killed by signal " .. -e.value))
    elseif k == "status" then
      if not log.drops(logger, "info") then logger("info", label .. ": status: " .. printable(e.text)) end
      app.status = e.text
      if opts.on_status then opts.on_status(app, e.text) end
    elseif k == "ignored" then
      -- a flood is logged once a second at most, with a count
      h._refused = h._refused + e.count
      h._refused_pid, h._refused_what = e.value, e.text
      if now() - h._refused_at >= 1 then log_refused(h) end
    elseif k == "extend" then
      local until_ = now() + e.value / 1e6
      if not h._ready_deadline or until_ > h._ready_deadline then h._ready_deadline = until_ end
      logf(logger, "debug", "%s: ready timeout extended by %.3f s", label, e.value / 1e6)
    elseif k == "errno" then
      logf(logger, "info", "%s: app reported ERRNO=%d", label, e.value)
    elseif k == "stopping" then
      logf(logger, "info", "%s: app reported STOPPING=1", label)
    elseif k == "mainpid" then
      logf(logger, "debug", "%s: MAINPID=%d agrees", label, e.value)
    elseif k == "dropped" then
      logf(logger, "warn", "%s: %d events dropped", label, e.count)
    end
  end
end

-- The start has failed and what it began has ended (or been given up on):
-- the error.
local function finish_failed(h)
  local s = h._s
  local r = s:result()
  local code, message = h._fcode or r.code, h._fmessage or r.message
  s:close()
  h.err = errors.new(code, message, { pid = r.pid, status = r.how or (r.pid and {}) or nil,
    errno = h._ferrno or r.errno or r.app_errno })
  h.done = true
  h._log(code == "cancelled" and "info" or "error", h._label .. ": " .. message)
  return true
end

-- Step a failed start: until every process it holds has ended, SIGKILL
-- after the grace.
local function stop_step(h)
  local s = h._s
  local stopped, probe = s:stopped()
  if stopped then return finish_failed(h) end
  local t = now()
  if t >= h._stop_deadline then
    if h._escalated then return finish_failed(h) end -- given up on: reaped later
    s:stop("KILL")
    h._escalated, h._stop_deadline = true, t + ending.KILL_WAIT
  end
  h._wake = probe and math.min(h._stop_deadline, t + settings.poll_interval) or h._stop_deadline
  return false
end

-- The start has failed (code and message, or the starter's own verdict):
-- end what it began, as the code says.
local function fail(h, code, message, errno)
  log_refused(h)
  h._fcode, h._fmessage, h._ferrno = code or false, message or false, errno or false
  code = code or h._s:result().code
  local first = FIRST_SIGNAL[code]
  h._s:stop(first)
  h._stopping, h._escalated = true, first ~= "TERM"
  h._stop_deadline = now() + (first == "TERM" and h._grace or ending.KILL_WAIT)
  return stop_step(h)
end

-- Ready: the app object takes the app over.
local function finish_ready(h)
  log_refused(h)
  local s, app, opts = h._s, h._app, h._opts
  local r = s:result()
  app.pid, app.name, app.status = r.pid, r.name or h._label, r.status
  app.state, app.ready_after = "ready", now() - h._t0
  logf(h._log, "debug", "%s: ready after %.3f s, pid %d", h._label, app.ready_after, app.pid)
  -- everything that may raise comes before the app leaves the starter: an
  -- error until then kills it, as the starter is closed
  if opts.on_exit and not r.exited then App.watch(app, s:app_fd()) end
  app._proc = s:take()
  s:close()
  h.app, h.done = app, true
  if r.exited then App.check(app) end -- gone at once: on_exit runs now
  return true
end

--- Advance without blocking: true once done (then h.app or h.err is set).
-- Call it whenever h:pollfd() (or one of the starter's descriptors) is
-- readable or h:timeout() has passed.
function Starting:step()
  if self.done then return true end
  if self._stopping then return stop_step(self) end
  if self._fcode then return fail(self, self._fcode, self._fmessage, self._ferrno) end
  local s = self._s
  local state, probe = s:step()
  on_events(self)
  if state == "ready" then return finish_ready(self) end
  if state == "failed" then return fail(self) end
  local t = now()
  local deadline
  if s:awaits() == "pid" then
    deadline = self._pid_deadline
  else
    if not self._ready_deadline then self._ready_deadline = t + self._ready_timeout end
    deadline = self._ready_deadline
  end
  if t >= deadline then
    if s:awaits() == "pid" then
      local timeout = options.get(self._opts, "pid_timeout")
      return fail(self, "helper", s:result().pid
        and string.format("helper did not exit within %g s", timeout)
        or string.format("helper did not report a pid within %g s", timeout))
    end
    return fail(self, "timeout", string.format("app not ready within %g s", self._ready_timeout))
  end
  self._wake = probe and math.min(deadline, t + settings.poll_interval) or deadline
  return false
end

-- The start is abandoned: what it began is ended, as for any failure.
local function abandon(h)
  if h.done or h._stopping then return end
  fail(h, "cancelled", "start cancelled")
end

--- Step until done, waiting in between (yields inside a loop): app | nil,
-- err. A wait cancelled (the calling task was) cancels the start.
function Starting:wait()
  while not self:step() do
    if loop.wait(self._s, self._wake) == nil then abandon(self) end
  end
  return self.app or nil, self.err or nil
end

--- Abandon the start and wait until its app is terminated; then
-- h.err.code == "cancelled".
function Starting:cancel()
  abandon(self)
  self:wait()
end

-- cqueues-style polling interface: pollfd / events / timeout
function Starting:pollfd()
  if self.done then return nil end
  return (self._s:fd())
end
function Starting:events() return "r" end
function Starting:timeout()
  if self.done then return 0 end
  return self._wake and math.max(0, self._wake - now()) or 0
end

--- A start dropped before it is done kills what it began.
function Starting:__close()
  if not self.done then self._s:close() end
end

function Starting:__tostring()
  return string.format("appstart.starting(%s)", self.done and (self.app and "ready" or "failed") or "in progress")
end

--- Start an app and wait until it is ready: app | nil, err.
-- @param up as for start.begin, from this function
function start.start(opts, up)
  local h <close> = start.begin(opts, "appstart.start", up + 1)
  return h:wait()
end

return start
