--- appstart: start an application, prove that it came up, watch it until it
-- exits.
--
-- The policy layer: defaults, timeouts, callbacks, logging and error
-- values, in the modules under appstart/ (options, start, app, watch, log,
-- errors, ending); the mechanism (channels, spawn, the handshake, pidfds)
-- is appstart.core. Every wait goes through appstart.loop, so the same
-- calls block in a plain script and yield inside `appstart.run`.
--
-- Settings (read when used): appstart.log_level ("warn", or $APPSTART_LOG),
-- appstart.helper_path, appstart.poll_interval (seconds between probes
-- where a process has no pidfd).
local appstart = require "appstart.settings"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local start = require "appstart.start"
local Watch = require "appstart.watch"

--- The default logger: `appstart: LEVEL: message` on stderr at or above
-- appstart.log_level.
appstart.default_log = log.default

--- Text an app chose made safe for one line (control characters as \xHH).
function appstart.printable(text)
  if type(text) ~= "string" then
    error("bad argument #1 to 'appstart.printable' (string expected, got " .. type(text) .. ")", 2)
  end
  return log.printable(text)
end

appstart.Error = errors.Error

--- Start an app and wait until it is ready.
-- @param opts argv (required), env, cwd, stdin, stdout, stderr, helper,
-- user, group, pid_fd, pid_format, ready, ready_fd, notify_access,
-- pid_timeout, ready_timeout, kill_grace, on_status, on_exit, log
-- @return app, or nil, err (err.code, err.message, err.pid, err.status,
-- err.errno; tostring(err) is the message)
function appstart.start(opts)
  -- no tail calls: an argument error counts the frames up to the caller
  local app, err = start.start(opts, 2)
  return app, err
end

--- Begin a start without waiting for it: for an event loop of the
-- caller's own. The handle is pollable (pollfd, events, timeout, as
-- cqueues.poll expects); call h:step() whenever pollfd is readable or the
-- timeout has passed, until it returns true; then h.app, or h.err.
-- h:wait() steps and waits itself; h:cancel() abandons the start.
-- Nothing of the start's is looked at before it returns: the first step
-- is the caller's (so no on_status, on_output or check of the caller's
-- runs before the caller holds h, to cancel it from there).
function appstart.begin(opts)
  -- no tail call: an argument error counts the frames up to the caller
  local h = start.begin(opts, "appstart.begin", 2)
  return h
end

--- Watch a pid (not necessarily a child): fn(pid, "exited" | "stopped")
-- runs exactly once; w:stop() stops watching.
function appstart.watch(pid, fn)
  -- no tail call: an argument error counts the frames up to the caller
  local w = Watch.new(pid, fn)
  return w
end

--- A supervisor: keeps a set of named services up (see the README's
-- Supervision). spec: services (name -> the options of appstart.start and
-- restart, success_codes, backoff, reset_after, burst, burst_interval,
-- after, needs), parallel, on_event, log. A mistake (a wrong field, an
-- unknown service name, a dependency cycle) raises here.
function appstart.supervisor(spec)
  -- no tail call: an argument error counts the frames up to the caller
  local sv = require("appstart.supervisor").new(spec, 3)
  return sv
end

appstart.run = loop.run
appstart.spawn = loop.spawn
--- Wait `seconds` (0 or less: not at all): true, or nil, "cancelled" when
-- the calling task is cancelled meanwhile.
function appstart.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error("appstart.sleep: seconds expected (a number), got " .. errors.shown(seconds), 2)
  end
  local r, why = loop.sleep(seconds)
  if r == nil then return nil, why end
  return true
end

return appstart
