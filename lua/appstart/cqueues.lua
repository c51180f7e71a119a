--- appstart.cqueues: waits inside a cqueues controller yield to it.
--
-- Used by appstart.loop by itself whenever cqueues is loaded and the caller
-- runs inside a controller: appstart.start and app:wait then yield to
-- cqueues instead of blocking, and on_exit / watch callbacks run as
-- coroutines of that controller.
local cqueues = require "cqueues"
-- (loaded now: a require needs a descriptor, which a start at the
-- descriptor limit may not have to spare)
local condition = require "cqueues.condition"
local core = require "appstart.core"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local now = core.now

local B = {}

-- Only in a coroutine of the controller's own (cq:wrap's: cqueues.running()
-- then says true beside the controller), whose yield reaches it. In a
-- coroutine of the user's inside one (a generator, coroutine.wrap; and
-- cqueues.auxlib.wrap's too, which passes the poll on to the controller,
-- but which cqueues.running() does not tell apart) the poll was yielded
-- to whoever resumed it: a generator's caller took cqueues' values for
-- its own, and resumed it at once, over and over. There the waits block,
-- as the main thread's do (and a nested wait's inside appstart.run).
function B.applies()
  local controller, own = cqueues.running()
  return controller ~= nil and own and coroutine.isyieldable()
end

-- A watch or a listener polls a copy of the owner's descriptor, its own:
-- the owner closes its descriptor right after it cancels (an app's end
-- closes its pidfd), while the coroutine that polls is still registered
-- with the controller, which then fails on the closed descriptor. The
-- copy is closed by that coroutine, once its poll has returned.
-- The copy is the poll object itself ({pollfd, events}); one whose
-- coroutine never ends (its controller dropped) is closed when collected.
local Copy = {
  __gc = function(c)
    if c.pollfd then core.close(c.pollfd) end
  end,
}

-- (nil out of descriptors: see look_meanwhile)
local function own_copy(fd)
  local copy = core.dup(fd)
  return copy and setmetatable({ pollfd = copy, events = "r" }, Copy) or nil
end

-- Out of descriptors, no copy to be had (a start that got ready then):
-- fd is looked at itself every poll_interval (poll(2) of it alone, at
-- once; only while h is not done, which nothing can change between that
-- look and its check: no yield comes between them), and a copy tried
-- for again each time. Returns the copy once there is one, or nil once
-- h is done; calls seen() each time fd is readable meanwhile.
local function look_meanwhile(fd, h, seen)
  while true do
    cqueues.sleep(settings.poll_interval)
    if h.done then return nil end
    local obj = own_copy(fd)
    if obj then return obj end
    if core.wait_readable(fd, 0) then
      seen()
      if h.done then return nil end
    end
  end
end

local function close_copy(c)
  if not c.pollfd then return end
  cqueues.cancel(c.pollfd)
  core.close(c.pollfd)
  c.pollfd = nil
end

-- the waits under way: fd -> { [poll object] = true }
local polling = {}

-- The tasks B.spawn made (coroutine -> its task: a condition variable
-- that task:cancel() signals, which each of its waits polls too).
local tasks = setmetatable({}, { __mode = "k" })

--- A wait's poll object on fd, until B.leave: the first polls fd itself;
-- a second wait on fd polls a copy of its own (see own_copy): a
-- descriptor two coroutines poll, cancelled and closed (an app's end),
-- failed the controller's next update (EBADF, out of cq:loop()). Out of
-- descriptors, it polls fd itself.
function B.enter(fd)
  local set = polling[fd]
  if not set then
    set = {}
    polling[fd] = set
  end
  local copy = next(set) and core.dup(fd)
  local obj = copy and setmetatable({ pollfd = copy, events = "r", released = false, set = set }, Copy)
    or { pollfd = fd, events = "r", released = false, set = set }
  set[obj] = true
  return obj
end

--- The wait on obj (B.enter's, on fd) is over: true when fd was released
-- meanwhile (loop.release: it may be closed, its number another's, by now).
function B.leave(fd, obj)
  local set = obj.set
  set[obj] = nil
  if obj.pollfd ~= fd then close_copy(obj) end
  if polling[fd] == set and not next(set) then polling[fd] = nil end
  -- cqueues keeps a descriptor in its poll set after the wait; appstart
  -- may close it next (a start's channels), so take it out now (unless
  -- released). Not while another wait polls it: that would wake the
  -- other, whose wait would go on and, ending its poll, wake this one's
  -- next, and so on (a spin); the last wait to leave takes it out, or its
  -- release does.
  if obj.released then return true end
  if not polling[fd] then cqueues.cancel(fd) end
  return false
end

-- Signalled when what the main thread made changes under the waits
-- (loop's outside_changed): each wait polls it too, and looks again.
local outside_cond = condition.new()
B.outside_cond = outside_cond
function B.outside_changed() outside_cond:signal() end

--- true when fd became readable (or was released), false at the deadline
-- (or when other, a second descriptor, became readable or was released:
-- loop.outside's, or outside_cond was signalled); nil, "cancelled" when
-- the task B.spawn made was cancelled (once; for good: then every wait
-- raises, but in a stop: loop.cancel_due)
function B.wait(fd, deadline, _, other)
  local timeout = deadline and math.max(0, deadline - now()) or nil
  local task = tasks[coroutine.running()]
  if loop.cancel_due(task) then return loop.cancelled(task) end
  local cond = task and task.cond
  local obj = fd and B.enter(fd)
  local also = other and B.enter(other)
  local list, n = { obj, also, cond, outside_cond }, 0
  for i = 1, 4 do
    if list[i] then n = n + 1; list[n] = list[i] end
  end
  if timeout then n = n + 1; list[n] = timeout end
  local ready = cqueues.poll(table.unpack(list, 1, n))
  if also then B.leave(other, also) end
  if obj and B.leave(fd, obj) then return true end
  if ready ~= obj and loop.cancel_due(task) then return loop.cancelled(task) end
  return obj ~= nil and ready == obj
end

-- (loop.wait may pass loop.outside's descriptor as other)
B.outside = true

--- fd is about to be closed (loop.release): out of every controller's poll
-- set, which wakes whoever polls it (a wait here, or the user's own
-- cqueues.poll of an app or a start).
function B.release(fd)
  local set = polling[fd]
  if set then
    polling[fd] = nil
    for obj in pairs(set) do
      obj.released = true
      if obj.pollfd ~= fd then cqueues.cancel(obj.pollfd) end -- (a copy: closed by its wait)
    end
  end
  cqueues.cancel(fd)
end


-- Coroutines started in the order asked: cqueues runs those wrapped in one
-- step last first (a stack), so an app's on_status and on_exit, a
-- supervisor's state callbacks ("reloading", then "ready"), timers due at
-- once, would run the wrong way round. Each controller's are queued; one
-- is wrapped at a time, and it wraps the next as it starts (which runs
-- once it yields or returns): a chain, in order.
local queues = setmetatable({}, { __mode = "k" })

local function wrap_next(controller, q)
  local fn = q[q.first]
  if not fn then
    q.chained = false
    return
  end
  q[q.first] = nil
  q.first = q.first + 1
  -- (the controller not held by the coroutine: one that raised is
  -- returned by cq:loop(), and may be kept after the controller is not)
  controller:wrap(function()
    wrap_next(cqueues.running(), q)
    fn()
  end)
end

local function start(fn)
  local controller = cqueues.running()
  local q = queues[controller]
  if not q then
    q = { first = 1, last = 0, chained = false }
    queues[controller] = q
  end
  q.last = q.last + 1
  q[q.last] = fn
  if not q.chained then
    q.chained = true
    wrap_next(controller, q)
  end
end

local Task = {}
Task.__index = Task

--- The task's wait under way (or its next) returns nil, "cancelled";
-- for_good (as appstart.run's task:cancel): after the one "cancelled",
-- every wait raises (but in a stop: loop.cancel_due).
function Task:cancel(for_good)
  if for_good then self.abandoned = true end
  if self.cancelled then return end
  self.cancelled = true
  self.cond:signal()
end

--- Before a wait of a task cancelled for good raises again (its last
-- raise was caught: a check function that retries on any error), as
-- long as a slow probe's interval: such a task cannot be closed from
-- here, but it does not spin.
function Task.pause()
  cqueues.sleep(0.1)
end

--- A coroutine of controller (given from anywhere) that calls over() each
-- interval until it returns true.
function B.when_over(controller, over, interval)
  controller:wrap(function()
    while not over() do cqueues.sleep(interval) end
  end)
end

--- fn(...) in a coroutine of the running controller: a task whose
-- cancel() ends its waits.
function B.spawn(fn, ...)
  local args = table.pack(...)
  local task = setmetatable({ cond = condition.new(), cancelled = false, abandoned = false, told = false }, Task)
  start(function()
    tasks[coroutine.running()] = task
    fn(table.unpack(args, 1, args.n))
  end)
  return task
end

-- A watch or listener cancelled from outside the controller that polls
-- it (an app ended from the main thread, a controller not run again):
-- its copy is closed now, not when that controller next runs (it may
-- never), which cqueues.cancel tells every controller of.
local function cancel_copy(c, controller)
  if not c or not c.pollfd then return end
  if cqueues.running() == controller then
    cqueues.cancel(c.pollfd) -- (wakes the poll: its coroutine closes it)
  else
    close_copy(c)
  end
end

-- As loop.watch: fn's false (what it waits for has not happened yet: a
-- process whose end cannot be reaped yet) and the watch waits on; fired
-- once for good, a watch woken early was never told the end (an old main
-- never reaped). Done only once fn has returned: an unwatch inside it is
-- heeded. A copy still readable after fn is polled again a poll_interval
-- on (at once, its poll returned at once, for good: a spin); the pause,
-- and an interval, end at a cancel (its copy closed then, not a pause on).
function B.watch(fd, fn, interval)
  local h = { done = false }
  local obj = fd and own_copy(fd)
  local controller = cqueues.running()
  local paused = condition.new()
  local function fire()
    if fn() ~= false then h.done = true end
  end
  controller:wrap(function()
    if fd and not obj then obj = look_meanwhile(fd, h, fire) end
    while not h.done do
      if obj then
        if cqueues.poll(obj) == obj and not h.done then
          fire()
          -- (h.done first: a cancel from outside closed the copy)
          if not h.done and core.wait_readable(obj.pollfd, 0) then
            cqueues.poll(paused, settings.poll_interval)
          end
        end
      else
        cqueues.poll(paused, interval)
        if not h.done and fn() then h.done = true end
      end
    end
    if obj then close_copy(obj) end
  end)
  function h.cancel()
    h.done = true
    cancel_copy(obj, controller)
    paused:signal()
  end
  return h
end

function B.listen(fd, fn)
  local h = { done = false }
  local obj = own_copy(fd)
  local controller = cqueues.running()
  controller:wrap(function()
    if not obj then obj = look_meanwhile(fd, h, fn) end
    while not h.done do
      -- whatever the poll returns, fn looks: a pipe whose writer went
      -- away polls POLLHUP without POLLIN, which cqueues.poll never
      -- reports as the object (it would spin here, the end never read)
      cqueues.poll(obj)
      if not h.done then fn() end
    end
    if obj then close_copy(obj) end
  end)
  function h.cancel()
    h.done = true
    cancel_copy(obj, controller)
  end
  return h
end

function B.at(at, fn)
  local h = { done = false }
  local cond = condition.new()
  start(function()
    -- (cancelled before this first ran: its signal woke nothing)
    local left = at - now()
    if left > 0 and not h.done then cond:wait(left) end
    if not h.done then
      h.done = true
      fn()
    end
  end)
  function h.cancel()
    h.done = true
    cond:signal()
  end
  return h
end

return B
