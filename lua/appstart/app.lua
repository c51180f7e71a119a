--- appstart.app: a started app: its pid, name, status and state, waited
-- for, signalled, terminated; its on_exit callback run once when it ends.
--
-- app.state and app.how tell the truth when read: a read looks at the app
-- (without waiting) if it may have ended since, so a plain script or the
-- REPL sees a `kill -9` at once, not at its next appstart call.
local core = require "appstart.core"
local ending = require "appstart.ending"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"
local settings = require "appstart.settings"

local now = core.now
local DEFAULT_GRACE = options.DEFAULTS.kill_grace

local App = {}
App.__name = "appstart.app"

local check -- App.check, below

--- app.state ("starting", "ready", "exited") and app.how (once exited) are
-- read through here; everything else is a method.
function App.__index(app, key)
  if key == "state" then
    if rawget(app, "_state") == "ready" then check(app) end
    return rawget(app, "_state")
  elseif key == "how" then
    if rawget(app, "_state") == "ready" then check(app) end
    return rawget(app, "_how") or nil
  end
  return App[key]
end

--- A new app, still starting: on_status gets it while the start is under
-- way. Every field a start sets later is preset, so setting it allocates
-- nothing (the hand-over must not fail halfway).
-- debug: whether log_fn takes "debug" messages (log.takes).
function App.new(label, argv, opts, log_fn, debug)
  return setmetatable({ name = label, _state = "starting", argv = argv, pid = false,
    status = false, ready_after = false, _how = false, _program = label,
    _proc = false, _watch = false, _on_exit = opts.on_exit or false,
    _kill_grace = opts.kill_grace or DEFAULT_GRACE, _log = log_fn, _debug = debug }, App)
end

local function ended(app, how)
  if app._state == "exited" then return end
  errors.how(how)
  app._state = "exited"
  app._how = how
  if app._watch then
    loop.unwatch(app._watch)
    app._watch = false
  end
  local proc = app._proc
  app._proc = false
  if proc then proc:close() end
  if app._debug then
    app._log("debug", string.format("%s: pid %d %s", app.name or "app", app.pid, tostring(how)))
  end
  local on_exit = app._on_exit
  app._on_exit = false
  if on_exit then
    -- outside a loop it runs in whatever call looked: an error it raises
    -- is logged there, never raised from that unrelated call
    loop.callback(function(err)
      app._log("error", string.format("%s: on_exit raised %s", app._program, err))
    end, on_exit, app, how)
  end
end

--- Has the app ended? how | nil (its end is recorded, on_exit run).
function App.check(app)
  if app._state == "exited" then return app._how end
  local how = app._proc and app._proc:poll()
  if how then ended(app, how) end
  return how
end
check = App.check

--- Call App.check in the background when the app's process (pidfd fd, or
-- probed when there is none) ends. The watch is made before the process
-- is handed to the app, so that making it cannot fail with a process in
-- transit.
function App.watch(app, fd)
  if fd then
    app._watch = loop.watch(fd, function() check(app) end)
  else
    app._watch = loop.watch(nil, function() return check(app) ~= nil end, settings.poll_interval)
  end
end

local function check_seconds(value, what, level)
  if value ~= nil and (type(value) ~= "number" or value ~= value or value < 0) then
    error(string.format("%s: seconds expected (a number >= 0), got %s", what, tostring(value)), level + 1)
  end
end

--- Wait for the app to exit.
-- @param timeout seconds, or nil to wait as long as it takes
-- @return how ({code = n} | {signal = n} | {}) or nil, "timeout"
-- (nil, "cancelled" when the calling task is cancelled)
function App:wait(timeout)
  check_seconds(timeout, "app:wait", 2)
  if self._state == "exited" then return self._how end
  if not self._proc then return nil, "closed" end
  local deadline = timeout and now() + timeout
  while true do
    local how = check(self)
    if how then return how end
    if deadline and now() >= deadline then return nil, "timeout" end
    local fd = self._proc:fd()
    local wake = deadline
    if not fd then
      wake = now() + settings.poll_interval
      if deadline and deadline < wake then wake = deadline end
    end
    local ok, why = loop.wait(fd, wake)
    if ok == nil then return nil, why end
  end
end

--- Send a signal: a name ("TERM", "SIGTERM", "term") or a number; default
-- SIGTERM. true, or nil, message. An unknown signal raises.
function App:kill(sig)
  if sig ~= nil then
    local ok = (type(sig) == "string" or math.type(sig) == "integer") and pcall(core.signum, sig)
    if not ok then error("app:kill: unknown signal '" .. tostring(sig) .. "'", 2) end
  end
  if check(self) or not self._proc then return nil, "app has exited" end
  local ok, msg = self._proc:signal(sig or "TERM")
  if not ok then return nil, msg end
  return true
end

--- SIGTERM, then SIGKILL after `grace` seconds (default: the start's
-- kill_grace). Returns how the app ended, or nil, message when it cannot
-- be signalled (an app of another user, for an unprivileged launcher).
function App:terminate(grace)
  check_seconds(grace, "app:terminate", 2)
  local how = check(self)
  if how then return how end
  if not self._proc then return nil, "closed" end
  local message
  how, message = ending.terminate(self._proc, grace or self._kill_grace, true) -- check polled it
  if not how then return nil, message end
  ended(self, how)
  return how
end

--- Release the app's descriptors and leave it running (its callbacks will
-- not run). Safe to call twice.
function App:close()
  loop.unwatch(self._watch or nil)
  self._watch, self._on_exit = false, false
  if self._proc then self._proc:close(); self._proc = false end
end

--- `local app <close> = appstart.start{...}` terminates the app at scope exit.
function App:__close()
  if self._proc and self._state ~= "exited" then self:terminate() end
  self:close()
end

--- appstart.app(PROGRAM, name "NAME", pid N, STATE): the program and the
-- name it reported apart (Xvfb's name is its display number).
function App:__tostring()
  local name = ""
  if self.name ~= self._program then name = string.format(", name %q", log.printable(tostring(self.name))) end
  return string.format("appstart.app(%s%s, pid %s, %s)", log.printable(self._program), name,
    tostring(self.pid or "?"), rawget(self, "_state"))
end

-- cqueues-style polling interface: pollfd / events / timeout
function App:pollfd() return self._proc and self._proc:fd() end
function App:events() return "r" end
function App:timeout()
  if self._proc and not self._proc:fd() then return settings.poll_interval end
  return nil
end

return App
