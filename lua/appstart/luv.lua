--- appstart.luv: the same calls inside coroutines driven by luv's uv.run.
--
--   local uv = require "luv"
--   require "appstart.luv"          -- registers the adapter
--   coroutine.wrap(function()
--     local app = assert(appstart.start{ argv = {...}, ready = "fd" })
--     app:wait()
--   end)()
--   uv.run()
--
-- Inside any coroutine that is not an appstart.run task (nor one of a
-- cqueues controller's, which yields to cqueues), a wait becomes a
-- uv poll handle on the descriptor (and a uv timer for the deadline) and
-- the coroutine yields; the handle's callback resumes it. (One resumed
-- by anyone else, a generator of the user's, blocks from then on.) Callbacks
-- (on_exit, watches) become coroutines of their own, resumed from uv
-- callbacks. In the main thread (no coroutine) waits still block.
local uv = require "luv"
local core = require "appstart.core"
local log = require "appstart.log"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local now = core.now

-- Seconds as a libuv timer's milliseconds, at least `least`: capped at a
-- day at a time (a timer that fires early is waited on again; libuv
-- aborts on a value past its range).
local DAY_MS = 86400 * 1000
local function to_ms(seconds, least)
  local ms = seconds * 1000
  if ms ~= ms or ms > DAY_MS then return DAY_MS end
  return math.max(least, math.ceil(ms))
end

local B = {}

B.to_ms = to_ms

-- an error out of a uv callback ends the process (luv's default handler):
-- the user's callbacks are run guarded (loop.callback)
B.errors_exit = true

-- Coroutines a wait of which was resumed by someone else than uv's
-- callbacks (a generator of the user's, resumed by its caller, uv.run
-- never running it): their waits block from then on, as the main
-- thread's do.
local foreign = setmetatable({}, { __mode = "k" })

-- (what a wait's own resume passes first: any other resume is foreign)
local RESUMED = {}

function B.applies()
  local co, main = coroutine.running()
  if main or not coroutine.isyieldable() or foreign[co] then return false end
  -- a coroutine of a cqueues controller yields to cqueues, not to uv
  local cqueues = package.loaded.cqueues
  return not (cqueues and cqueues.running())
end

--- Is uv.run running (a callback of it, on the main thread too)?
function B.running()
  return uv.loop_mode() ~= nil
end

-- A handle closed while uv.run is not running (an app ended, a wait
-- finished, from the main thread after uv.run returned) has its close
-- callback pending until uv.run runs again; if it never does, luv calls
-- that callback from its loop's finalizer at lua_close, after the
-- handle's own finalizer freed what it uses, and the process dies of
-- SIGSEGV on its way out. Each such close makes a guard, whose finalizer
-- runs before the handle's (finalizers run last made first): at
-- lua_close it closes what is still open, as luv's finalizer would, and
-- runs one pass of the loop to complete the closes, before any handle is
-- freed. Once the closes are done (uv.run ran), the guards are let go of
-- and do nothing when collected (their generation is over): a guard
-- collected while later closes are pending must not close the user's
-- handles behind their back.
local closing_outside, guards, generation = 0, {}, 0

-- (a handle made after the guard, a release's timer, is finalized
-- before it: luv's walk still lists it, and a method called on it raises,
-- which out of a walk's callback ends the process; such a handle is left
-- to luv)
local function close_if_open(h)
  if not h:is_closing() then h:close() end
end

local Guard = {
  __gc = function(guard)
    if guard.generation == generation and closing_outside > 0 and uv.loop_mode() == nil then
      pcall(uv.walk, function(h) pcall(close_if_open, h) end)
      pcall(uv.run, "nowait")
    end
  end,
}

local function closed_outside()
  closing_outside = closing_outside - 1
  if closing_outside == 0 then guards, generation = {}, generation + 1 end
end

--- Stop and close a handle of appstart's, inside uv.run or not (see
-- the guards above).
local function close_handle(h)
  if h and not h:is_closing() then
    h:stop()
    if uv.loop_mode() ~= nil then return h:close() end
    closing_outside = closing_outside + 1
    h:close(closed_outside)
    guards[#guards + 1] = setmetatable({ generation = generation }, Guard)
  end
end

B.close_handle = close_handle

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(debug.traceback(co, tostring(err)), 0) end
end

-- libuv allows one poll handle per descriptor, and an app's pidfd may be
-- awaited by app:wait and by its on_exit watch at once: one shared handle
-- per fd, closed with its last waiter (before the owner closes the fd).
local polls = {} -- fd -> { handle = uv_poll, waiters = { [fn] = true } }

function B.add_poll(fd, fn, owner)
  local p = polls[fd]
  if not p then
    local handle = assert(uv.new_poll(fd))
    p = { handle = handle, waiters = {} }
    polls[fd] = p
    handle:start("r", function()
      local list = {}
      for w in pairs(p.waiters) do list[#list + 1] = w end
      for _, w in ipairs(list) do
        if p.waiters[w] then w() end
      end
    end)
  end
  -- (what owns fd, held while fn waits on it: loop.wait)
  p.waiters[fn] = owner or true
end

function B.remove_poll(fd, fn)
  local p = polls[fd]
  if p and p.waiters[fn] then
    p.waiters[fn] = nil
    if next(p.waiters) == nil then
      polls[fd] = nil
      close_handle(p.handle)
    end
  end
end

--- fd is about to be closed (loop.release): its poll handle is closed now
-- (libuv aborts on a handle whose descriptor was closed under it), and
-- its waiters are called once this callback is over.
function B.release(fd)
  local p = polls[fd]
  if not p then return end
  polls[fd] = nil
  close_handle(p.handle)
  local list = {}
  for w in pairs(p.waiters) do list[#list + 1] = w end
  local timer = uv.new_timer()
  timer:start(0, 0, function()
    close_handle(timer)
    -- (a watch's told so: it does not wait on fd again)
    for _, w in ipairs(list) do w("released") end
  end)
end

-- The tasks B.spawn made (coroutine -> its task), and the wait each is in
-- (task.finish), so that task:cancel() can end it.
local tasks = setmetatable({}, { __mode = "k" })

-- The waits to wake when what the main thread made changes under them
-- (loop's outside_changed): fn -> true, each called once, from a timer of
-- uv's (never from inside the call that changed it). The supervisor's
-- driver adds its own.
local outside_waits = {}
B.outside_waits = outside_waits
local outside_timer = false

function B.outside_changed()
  if outside_timer or not next(outside_waits) then return end
  outside_timer = uv.new_timer()
  outside_timer:start(0, 0, function()
    close_handle(outside_timer)
    outside_timer = false
    local list = {}
    for w in pairs(outside_waits) do list[#list + 1] = w end
    for _, w in ipairs(list) do
      if outside_waits[w] then w() end
    end
  end)
end

--- true when fd became readable, false at the deadline (or when other, a
-- second descriptor, became readable or was released: loop.outside's, or
-- what the main thread made changed: B.outside_changed);
-- nil, "cancelled" when the task B.spawn made was cancelled
-- (task:cancel(): once; for good: then every wait raises, but in a stop:
-- loop.cancel_due). owner: held while the wait is on fd (loop.wait).
function B.wait(fd, deadline, owner, other)
  local co = coroutine.running()
  local task = tasks[co]
  local due = loop.cancel_due(task)
  if due == "close" then
    -- closed from uv's next callback (a coroutine cannot close itself);
    -- its to-be-closed variables run there
    local timer = uv.new_timer()
    timer:start(0, 0, function()
      close_handle(timer)
      if coroutine.status(co) ~= "suspended" then return end
      local ok, err = coroutine.close(co)
      if not ok then error(debug.traceback(co, tostring(err)), 0) end
    end)
    return coroutine.yield()
  end
  if due then return loop.cancelled(task) end
  local timer, done, on_ready, on_other, on_change
  local function finish(value, why)
    if done then return end
    done = true
    if on_change then outside_waits[on_change] = nil end
    if task then task.finish = false end
    if fd then B.remove_poll(fd, on_ready) end
    if other then B.remove_poll(other, on_other) end
    close_handle(timer)
    -- (a coroutine closed while it waited, by coroutine.close, is over:
    -- its to-be-closed variables ran there, a start in it abandoned)
    if coroutine.status(co) == "dead" then return end
    resume(co, RESUMED, value, why)
  end
  if fd then
    on_ready = function() finish(true) end
    B.add_poll(fd, on_ready, owner)
  end
  if other then
    on_other = function() finish(false) end
    local ok, err = pcall(B.add_poll, other, on_other)
    if not ok then
      if fd then B.remove_poll(fd, on_ready) end
      error(err, 0)
    end
  end
  -- (once nothing can fail: an entry left by a wait that raised would
  -- resume the coroutine at a yield of someone else's)
  if task then task.finish = finish end
  on_change = function() finish(false) end
  outside_waits[on_change] = true
  if deadline and deadline <= now() then
    -- a wait of no time (loop.wait's turn for the loop after serving): an
    -- idle handle, run once in the loop's next turn, after its timers,
    -- its poll following. A timer of 0 ms set from a timer's callback
    -- runs in that same pass over the timers (libuv 1.44): a coroutine
    -- that waited so over and over kept the loop from its poll, every
    -- descriptor's callback held back.
    timer = uv.new_idle()
    timer:start(function() finish(false) end)
  elseif deadline then
    timer = uv.new_timer()
    -- libuv counts from its loop's time, taken when the loop last woke:
    -- that time is brought up to date first, and a timer that fires early
    -- all the same (a day at most at a time) is set again
    local function on_time()
      if now() < deadline - 0.0005 then return timer:start(to_ms(deadline - now(), 0), 0, on_time) end
      finish(false)
    end
    uv.update_time()
    timer:start(to_ms(deadline - now(), 0), 0, on_time)
  end
  local by, value, why = coroutine.yield()
  if by == RESUMED then return value, why end
  -- resumed by its owner, not by uv (a coroutine of the user's resumed
  -- as a generator, which uv.run never runs): the wait leaves uv, and
  -- it and the coroutine's next waits block (false: loop.wait looks
  -- again, not at luv's). The owner got one empty yield.
  foreign[co] = true
  if task then task.finish = false end
  done = true
  if on_change then outside_waits[on_change] = nil end
  if fd then B.remove_poll(fd, on_ready) end
  if other then B.remove_poll(other, on_other) end
  close_handle(timer)
  return false
end

local Task = {}
Task.__index = Task

--- The task's wait under way (or its next) returns nil, "cancelled"; the
-- wait is ended from a callback of uv's (never from inside this call).
-- for_good (as appstart.run's task:cancel): after the one "cancelled",
-- every wait raises (but in a stop: loop.cancel_due).
function Task:cancel(for_good)
  if coroutine.status(self.co) == "dead" then return end
  if for_good then self.abandoned = true end
  if self.cancelled then return end
  self.cancelled = true
  local timer = uv.new_timer()
  timer:start(0, 0, function()
    close_handle(timer)
    if self.finish and not self.told then self.finish(loop.cancelled(self, self.co)) end
  end)
end

-- A task's body. What escapes it (appstart's background work, an app's
-- end seen by its watch, raising a log function's error once that end is
-- seen to) would escape the uv callback that resumed it: luv's handler
-- exits (-1), every other app left running. It is logged, as a callback's
-- error is under luv (loop.callback), and the loop goes on; an interrupt
-- (^C) goes on out.
local function guarded(fn, ...)
  local ok, err = xpcall(fn, loop.traceback, ...)
  if ok then return end
  if loop.interrupt(err) then error(err, 0) end
  log.default("error", "a task under luv raised " .. log.raised(err))
end

--- fn(...) in a coroutine of its own, resumed from uv's callbacks: a
-- task whose cancel() ends its waits.
function B.spawn(fn, ...)
  local co = coroutine.create(guarded)
  local task = setmetatable({ co = co, cancelled = false, abandoned = false, told = false, finish = false,
    closable = true }, Task)
  tasks[co] = task
  resume(co, fn, ...)
  return task
end

-- As loop.watch: fn's false (what it waits for has not happened yet: a
-- process whose end cannot be reaped yet) and the watch waits on; fired
-- once for good, a watch woken early was never told the end (an old main
-- never reaped). fn runs in a task of its own, out of the poll (an unwatch
-- inside it is heeded); one timer paces the watch: its interval, or the
-- pause before a fd still readable after fn is polled again (polled at
-- once, libuv would call fn again at every turn: a spin). A fd released
-- is its owner's to close: not waited on again.
function B.watch(fd, fn, interval)
  local h = { done = false }
  local timer, on_ready
  local function over()
    h.done = true
    close_handle(timer)
  end
  local function after(seconds, go)
    timer = timer or uv.new_timer()
    -- (libuv counts from its loop's time, stale after fn's work)
    uv.update_time()
    timer:start(to_ms(seconds, 1), 0, function()
      if not h.done then B.spawn(go) end
    end)
  end
  if fd then
    local waiting, released = false, false
    -- (in a task: what fails is logged, not out of uv's callback)
    local function wait_on(later)
      if h.done then return end
      if released then return over() end
      local readable = core.wait_readable(fd, 0)
      if readable == nil then return over() end -- (closed under it)
      if readable and not later then return after(settings.poll_interval, function() wait_on(true) end) end
      waiting = true
      B.add_poll(fd, on_ready)
    end
    on_ready = function(how)
      -- (a release may come while fn runs or the watch pauses: its list
      -- was taken as the poll called on_ready)
      if how == "released" then released = true end
      if h.done or not waiting then return end
      waiting = false
      B.remove_poll(fd, on_ready)
      B.spawn(function()
        if fn() ~= false or released then return over() end
        wait_on(false)
      end)
    end
    waiting = true
    B.add_poll(fd, on_ready)
  else
    -- (the next interval counts from fn's return, as loop.watch's: fn
    -- that waits was called again meanwhile, twice at once)
    local function probe()
      if fn() then return over() end
      if not h.done then after(interval, probe) end
    end
    after(interval, probe)
  end
  function h.cancel()
    h.done = true
    if fd then B.remove_poll(fd, on_ready) end
    close_handle(timer)
  end
  return h
end

function B.listen(fd, fn)
  local h = { done = false }
  local function on_ready()
    if not h.done then B.spawn(fn) end
  end
  B.add_poll(fd, on_ready)
  function h.cancel()
    h.done = true
    B.remove_poll(fd, on_ready)
  end
  return h
end

function B.at(at, fn)
  local h = { done = false }
  local timer = uv.new_timer()
  uv.update_time()
  local function fire()
    if h.done then return close_handle(timer) end
    -- (capped at a day at a time: a later time is waited for again)
    if now() < at - 0.0005 then return timer:start(to_ms(at - now(), 0), 0, fire) end
    close_handle(timer)
    h.done = true
    B.spawn(fn)
  end
  timer:start(to_ms(at - now(), 0), 0, fire)
  function h.cancel()
    h.done = true
    close_handle(timer)
  end
  return h
end

-- (loop.wait may pass loop.outside's descriptor as other)
B.outside = true

loop.add_backend(B)

return B
