--- appstart.supervisor_driver: where a supervisor waits. Its work is a
-- state machine (appstart.supervisor) that a driver advances; the driver,
-- and the calls that wait for a state (sv:up, sv:stop ...), wait through
-- the environment of the coroutine that calls:
--
--   run      a task of appstart.run: appstart.spawn, loop.wait, task:wake
--   cqueues  a coroutine of a cqueues controller: controller:wrap, and
--            cqueues.poll on the descriptor and a condition variable
--   luv      a coroutine resumed from luv's uv.run (once appstart.luv is
--            loaded): uv poll and timer handles
--   plain    anywhere else (a plain script, the REPL): no driver in the
--            background; a call that waits drives while it waits (each
--            wait blocks, turning appstart's shared poller meanwhile)
--
-- Each is a table: spawn(fn) (a coroutine in the background; none for
-- plain), waiter() (made by the coroutine that will wait, what wake takes),
-- wait(w, fd, deadline) -> true (fd readable) | false (the deadline, or
-- woken) | nil, "cancelled" (the calling task was), wake(w), and alive()
-- (can a driver spawned here still run?).
local core = require "appstart.core"
local loop = require "appstart.loop"

local now = core.now

local M = {}

-------------------------------------------------------------------------------
-- appstart.run

local RUN = { name = "run" }

function RUN.spawn(fn) loop.spawn(fn) end
function RUN.waiter() return loop.task() end
function RUN.wait(_, fd, deadline) return loop.wait(fd, deadline) end
function RUN.wake(task) task:wake() end
function RUN.alive() return loop.running() end

-------------------------------------------------------------------------------
-- cqueues

local cqueues, condition -- loaded when a controller is seen

local CQ = { name = "cqueues" }

function CQ.spawn(fn) cqueues.running():wrap(fn) end
function CQ.waiter() return condition.new() end
function CQ.wake(cond) cond:signal() end
function CQ.alive() return true end

function CQ.wait(cond, fd, deadline)
  local timeout = deadline and math.max(0, deadline - now())
  local obj = fd and { pollfd = fd, events = "r" }
  local first, second = obj or cond, obj and cond or nil
  local ready
  if timeout and second then ready = cqueues.poll(first, second, timeout)
  elseif timeout then ready = cqueues.poll(first, timeout)
  elseif second then ready = cqueues.poll(first, second)
  else ready = cqueues.poll(first) end
  -- cqueues keeps a descriptor in its poll set after the wait; the
  -- supervisor closes its poller once idle: take it out now
  if fd then cqueues.cancel(fd) end
  return obj ~= nil and ready == obj
end

-------------------------------------------------------------------------------
-- luv

local uv -- loaded with appstart.luv

local LUV = { name = "luv" }

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(debug.traceback(co, tostring(err)), 0) end
end

function LUV.spawn(fn) resume(coroutine.create(fn)) end
function LUV.waiter() return { wake = false } end
function LUV.wake(w) if w.wake then w.wake() end end
function LUV.alive() return true end

--- A poll handle on fd (the supervisor's poller: nobody else polls it) and
-- a timer for the deadline, or for a wake: whichever fires first resumes
-- the waiting coroutine, from uv's loop.
function LUV.wait(w, fd, deadline)
  local co = coroutine.running()
  local timer, poll, done = uv.new_timer(), nil, false
  local function finish(value)
    if done then return end
    done, w.wake = true, false
    if poll then poll:stop(); poll:close() end
    timer:stop()
    timer:close()
    resume(co, value)
  end
  if fd then
    poll = assert(uv.new_poll(fd))
    poll:start("r", function() finish(true) end)
  end
  if deadline then
    timer:start(math.max(0, math.ceil((deadline - now()) * 1000)), 0, function() finish(false) end)
  end
  w.wake = function()
    timer:stop()
    timer:start(0, 0, function() finish(false) end)
  end
  return coroutine.yield()
end

-------------------------------------------------------------------------------
-- plain

local PLAIN = { name = "plain" }

function PLAIN.wait(_, fd, deadline) return loop.wait(fd, deadline) end
function PLAIN.alive() return true end

-------------------------------------------------------------------------------

--- The environment of the calling coroutine: a task of appstart.run; else
-- a coroutine of a cqueues controller (which can yield to nothing else,
-- even once appstart.luv is loaded: appstart.loop would send its waits to
-- luv); else one resumed from luv's loop (once appstart.luv is loaded);
-- else plain.
function M.current()
  if loop.task() then return RUN end
  if loop.running() then return PLAIN end -- a loop's callback: waits block
  local _, main = coroutine.running()
  if main or not coroutine.isyieldable() then return PLAIN end
  if package.loaded.cqueues and package.loaded.cqueues.running() then
    cqueues = cqueues or require "cqueues"
    condition = condition or require "cqueues.condition"
    return CQ
  end
  local luv_backend = package.loaded["appstart.luv"]
  if luv_backend and luv_backend.applies() then
    uv = uv or require "luv"
    return LUV
  end
  return PLAIN
end

M.PLAIN = PLAIN

return M
