--- appstart.watch: watch any pid (not necessarily a child) until it exits:
-- fn(pid, "exited" | "stopped") runs exactly once.
local core = require "appstart.core"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local ENOENT, ESRCH, EINVAL = 2, 3, 22

local Watch = {}
Watch.__index = Watch
Watch.__name = "appstart.watch"

local function watch_end(w, why)
  if w._told then return end
  w._told, w.done = true, true
  loop.unwatch(w._watch)
  w._watch = nil
  if w._proc then loop.close_process(w._proc); w._proc = nil end
  local function report(err) log.default("error", "watch of pid " .. w.pid .. ": callback raised " .. log.raised(err)) end
  -- "stopped" from within w:stop(), in a loop too; "exited" from the loop
  if why == "stopped" then return loop.callback_now(report, w._fn, w.pid, why) end
  loop.callback(report, w._fn, w.pid, why)
end

-- A method's self must be a watch (w:stop(), not w.stop()).
local function is_watch(w, what)
  errors.check_self(w, Watch, what, "a watch", 3)
end

--- Stop watching: the callback runs with "stopped" unless it already ran,
-- or its end was seen (then "exited" is due, from the loop that owns it).
function Watch:stop()
  is_watch(self, "w:stop")
  if self.done then return end
  watch_end(self, "stopped")
end

function Watch:__tostring()
  return string.format("appstart.watch(pid %d, %s)", self.pid, self.done and "done" or "watching")
end

function Watch:pollfd()
  is_watch(self, "w:pollfd")
  -- ended: seen here (asked first, before events and timeout), as a look
  -- at an app's state sees its end: done, fn due (run by the loop that
  -- owns the watch, in its turn: not here, inside a poll's step); else a
  -- watch the main thread made, polled in a loop that does not serve it,
  -- would have its pidfd readable for good, each poll returning at once,
  -- and never be done
  if self._proc and not self.done and self._proc:poll() then self.done = true end
  return self._proc and self._proc:fd()
end
function Watch:events()
  is_watch(self, "w:events")
  return "r"
end
function Watch:timeout()
  is_watch(self, "w:timeout")
  -- done, or the pid was gone at the start: a poll returns at once
  if self.done or not self._proc then return 0 end
  if not self._proc:fd() then return settings.poll_interval end
  return nil
end

--- Watch pid: fn(pid, "exited" | "stopped") runs exactly once. A pid that
-- is already gone is reported "exited" (at the next dispatch, never from
-- inside this call).
function Watch.new(pid, fn)
  local n = type(pid) == "number" and math.tointeger(pid)
  if not n or n <= 0 or n > 0x7fffffff then
    error("appstart.watch: pid must be a positive integer below 2^31, got " .. errors.shown(pid), 3)
  end
  pid = n
  if type(fn) ~= "function" then
    error("appstart.watch: function expected, got " .. type(fn), 3)
  end
  local proc, message, errno = core.process(pid)
  -- only "no such process" is an end; out of descriptors, or a thread's
  -- id (not a process: EINVAL, ENOENT since Linux 6.9), must not be
  -- reported as one. But before Linux 6.15 pidfd_open said EINVAL too for
  -- a number no process has that a process group or session still uses
  -- as its id (its leader reaped, its members on: a pipeline's, a
  -- daemon's): /proc tells a thread (its own Tgid) from no process at all
  if not proc and (errno == EINVAL or errno == ENOENT) then
    local st = core.proc_status(pid)
    if st then error("appstart.watch: pid " .. pid .. " is not a process (a thread's id?)", 3) end
    errno = ESRCH
  end
  if not proc and errno ~= ESRCH then
    error("appstart.watch: cannot watch " .. message, 3)
  end
  if proc and not proc:fd() then
    -- probed (no pidfds): kill(pid, 0) answers for a thread too
    local st = core.proc_status(pid)
    if st and st.tgid ~= pid then
      proc:close()
      error("appstart.watch: pid " .. pid .. " is not a process (a thread's id?)", 3)
    end
  end
  -- (a pid gone already: done, its "exited" due; a watch the main thread
  -- made, polled in a loop that does not serve it, was never done, each
  -- poll returning at once: Watch:timeout)
  local w = setmetatable({ pid = pid, done = not proc, _told = false, _fn = fn }, Watch)
  w._proc = proc
  local function check()
    if w._told then return true end
    -- (done, not told: its end seen as it was polled)
    if w.done or not w._proc or w._proc:poll() then watch_end(w, "exited"); return true end
    return false
  end
  if not proc then
    w._watch = loop.watch(nil, check, 0)
  elseif proc:fd() then
    w._watch = loop.watch(proc:fd(), check)
  else
    w._watch = loop.watch(nil, check, settings.poll_interval)
  end
  return w
end

return Watch
