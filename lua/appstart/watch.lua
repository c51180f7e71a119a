--- appstart.watch: watch any pid (not necessarily a child) until it exits:
-- fn(pid, "exited" | "stopped") runs exactly once.
local core = require "appstart.core"
local log = require "appstart.log"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local Watch = {}
Watch.__index = Watch
Watch.__name = "appstart.watch"

local function watch_end(w, why)
  if w.done then return end
  w.done = true
  loop.unwatch(w._watch)
  w._watch = nil
  if w._proc then w._proc:close(); w._proc = nil end
  loop.callback(function(err) log.default("error", "watch of pid " .. w.pid .. ": callback raised " .. err) end,
    w._fn, w.pid, why)
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
  if self._proc and not self._proc:fd() then return settings.poll_interval end
  return nil
end

--- Watch pid: fn(pid, "exited" | "stopped") runs exactly once. A pid that
-- is already gone is reported "exited" (at the next dispatch, never from
-- inside this call).
function Watch.new(pid, fn)
  if math.type(pid) ~= "integer" or pid <= 0 then
    error("appstart.watch: pid must be a positive integer, got " .. tostring(pid), 3)
  end
  if type(fn) ~= "function" then
    error("appstart.watch: function expected, got " .. type(fn), 3)
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
    w._watch = loop.watch(nil, check, 0)
  elseif proc:fd() then
    w._watch = loop.watch(proc:fd(), check)
  else
    w._watch = loop.watch(nil, check, settings.poll_interval)
  end
  return w
end

return Watch
