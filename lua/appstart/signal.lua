--- appstart.signal: a signal to an app, through appstart-helper where the
-- launcher may not send it itself. An unprivileged launcher starts apps as
-- other users through a setuid helper (`user =`), and the kernel then lets
-- it signal none of them: `appstart-helper --signal` checks its policy (the
-- caller may start apps as that user), takes that user's uid as its
-- effective uid (keeping the caller's as its real one) and signals the
-- process whose pidfd it inherits (or the group it is in), so it reaches
-- nothing that user or the caller could not signal. Only a process with a
-- pidfd goes this way: without one nothing proves which process a pid
-- names. (What a group app left in its group once it ended goes by the
-- group's id, signal.rest.)
local core = require "appstart.core"
local settings = require "appstart.settings"

local now = core.now

local signal = {}

local EPERM, ESRCH = 1, 3

--- How long the helper is given to answer (it execs, reads its policy and
-- the user's entry, and signals: milliseconds).
signal.WAIT = 5

-- what the helper's exit codes mean (appstart-helper --help)
local VERDICT = { [3] = { "No such process", ESRCH }, [4] = { "Operation not permitted", EPERM } }

local function quiet() end

--- A helper's usage error, with its likely cause: the module builds the
-- helper's options, so a helper of another version (one older than
-- --module-version, which says nothing of versions).
function signal.usage_error(message)
  return string.format("%s (a usage error: is %s the appstart-helper of appstart %s?)", message,
    settings.helper_path, settings.version)
end

--- Run the helper on the process whose pidfd is fd (with group, the
-- group it is in), or on the process group pgid: a start (of
-- appstart.start's), under way.
local function begin(fd, opts, sig, group, pgid)
  local argv = { settings.helper_path, "--module-version", settings.version, "--signal", tostring(core.signum(sig)),
    "--user", tostring(opts.user) }
  if group then argv[#argv + 1] = "--process-group" end
  if pgid then
    argv[#argv + 1] = "--pgid"
    argv[#argv + 1] = tostring(pgid)
  end
  -- (required here: appstart.start requires this module)
  local h = require("appstart.start").begin({ argv = argv, ready = "none", stdin = "null", stdout = "null",
    stderr = "capture", output_keep = 4096, kill_grace = 0, log = quiet }, "appstart.signal", 1, fd)
  return h
end

--- Wait for the helper's verdict: true, or nil, message, errno (ESRCH:
-- the process has ended; EPERM: it is not the user's, or may not be
-- signalled); nil, "cancelled" when the calling task is cancelled
-- meanwhile (the helper ended, the signal perhaps not sent).
local function finish(h, deadline)
  local app, err = h:wait()
  if not app then
    if err.code == "cancelled" then return nil, "cancelled" end
    return nil, "cannot run " .. settings.helper_path .. ": " .. err.message
  end
  local how, why = app:wait(math.max(0, deadline - now()))
  if not how then
    app:terminate(0)
    if why == "cancelled" then return nil, "cancelled" end
    return nil, string.format("%s --signal did not answer within %g s", settings.helper_path, signal.WAIT)
  end
  if how.code == 0 then return true end
  local verdict = VERDICT[how.code]
  -- the helper's own words: "appstart-helper: why"
  local said = app:tail(1)[1]
  said = said and said:gsub("^[^:]*: ", "", 1)
  if verdict then return nil, verdict[1] .. (said and " (" .. said .. ")" or ""), verdict[2] end
  if how.code == 2 and not (said or ""):find("this is appstart-helper", 1, true) then
    -- a usage error (its last line is its usage's: its first says why)
    local first = app:tail(20)[1]
    first = first and first:gsub("^[^:]*: ", "", 1)
    return nil, signal.usage_error(first or (settings.helper_path .. " --signal " .. tostring(how))), nil
  end
  return nil, said or (settings.helper_path .. " --signal " .. tostring(how)), nil
end

-- The pidfd to hand the helper, where one applies: the app was started
-- through appstart-helper (`user =`).
local function target_fd(proc, opts)
  if not opts.user then return nil end
  local fd, kind = proc:fd()
  return kind == "pid" and fd or nil
end

--- sig to the process whose pidfd is fd (with group, to the group it
-- leads) through the helper, as opts.user: true, or nil, message, errno.
function signal.through(fd, opts, sig, group)
  return finish(begin(fd, opts, sig, group), now() + signal.WAIT)
end

--- proc:signal(sig, only, uncounted), and where that is refused (EPERM)
-- for an app started as another user, the same through the helper,
-- waited for. true, or nil, message, errno (nil, "cancelled": the calling
-- task was cancelled while the helper ran). uncounted: no stop's signal
-- (app:kill), what it reaches is not counted in how.left.
function signal.send(proc, opts, sig, only, uncounted)
  local ok, message, errno = proc:signal(sig, only, uncounted)
  if ok or errno ~= EPERM then return ok, message, errno end
  local fd = target_fd(proc, opts)
  if not fd then return ok, message, errno end
  -- (kill_mode "cgroup" too: appstart-helper started the app in a
  -- session and group of its own, where what it forks is unless it moved
  -- out; what did gets cgroup.kill, the launcher's own to write)
  return signal.through(fd, opts, sig, not only and proc:kill_mode() ~= "process")
end

--- The same through the helper for the pidfd fd, not waited for by the
-- caller: for a signal sent where nothing may wait (a callback, the step
-- of a failed start). Inside a loop a task of its own sees the helper
-- through; outside one it is seen through at once. The caller looks at
-- the process itself to know whether the signal did its work; a helper
-- that could not send it is logged (label: the app's name).
function signal.post(fd, opts, sig, group, logger, label, pgid)
  if not ((fd or pgid) and opts.user) then return end
  local h = begin(fd, opts, sig, group, pgid)
  local deadline = now() + signal.WAIT
  require("appstart.loop").call(function()
    local ok, message, errno = finish(h, deadline)
    if not ok and errno ~= ESRCH then
      local name = core.signame(core.signum(sig))
      logger("warn", string.format("%s: %s through %s: %s", label,
        name and "SIG" .. name or "signal " .. core.signum(sig), settings.helper_path, message))
    end
  end)
end

--- sig to what a process of kill_mode "group" left in its group once it
-- has ended: proc:signal, and where that is refused (members of another
-- user's), the helper on the group by its id, not waited for (the caller
-- looks at what is left: proc:rest()).
function signal.rest(proc, opts, sig, logger, label)
  local ok, _, errno = proc:signal(sig)
  if ok or errno ~= EPERM then return end
  signal.post(nil, opts, sig, false, logger, label, proc:pgid())
end

--- As signal.send, not waited for (signal.post): proc:signal, and the
-- helper where it is refused.
function signal.kick(proc, opts, sig, logger, label)
  local ok, _, errno = proc:signal(sig)
  if ok or errno ~= EPERM then return end
  signal.post(target_fd(proc, opts), opts, sig, proc:kill_mode() == "group", logger, label)
end

return signal
