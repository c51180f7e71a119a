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
--   main     for a supervisor of the main thread's, a coroutine of
--            cqueues' or luv's serving what the main thread made (see
--            MAIN): as plain, its callbacks in a coroutine of that loop's
--   plain    anywhere else (a plain script, the REPL): no driver in the
--            background; a call that waits drives while it waits (each
--            wait blocks, turning appstart's shared poller meanwhile)
--
-- Each is a table: spawn(fn) (a coroutine in the background; none for
-- plain and main), waiter() (made by the coroutine that will wait, what
-- wake takes), wait(w, fd, deadline) -> true (fd readable) | false (the
-- deadline, or woken) | nil, "cancelled" (the calling task was) (for plain
-- and main, w is what owns fd, held meanwhile), wake(w), alive() (can a
-- driver spawned here still run?) and, where there may be more than one
-- loop of the kind, home() (the one a driver spawned now runs in).
local core = require "appstart.core"
local loop = require "appstart.loop"

local now = core.now

local M = {}

-------------------------------------------------------------------------------
-- appstart.run

local RUN = { name = "run" }

-- (the task, which appstart supervise cancels: supervisor.cancel_callbacks)
function RUN.spawn(fn) return loop.spawn(fn) end
function RUN.waiter() return loop.task() end
function RUN.wait(_, fd, deadline) return loop.wait(fd, deadline) end
function RUN.wake(task) task:wake() end
function RUN.alive() return loop.running() end
-- is its loop running now (a caller that is none of its coroutines is
-- then one of its callbacks)? (cqueues: no callback runs outside a
-- coroutine of its)
RUN.looping = RUN.alive

-------------------------------------------------------------------------------
-- cqueues

local cqueues, condition, cq_backend -- loaded when a controller is seen

local CQ = { name = "cqueues" }

function CQ.spawn(fn) cqueues.running():wrap(fn) end
function CQ.waiter() return condition.new() end
function CQ.wake(cond) cond:signal() end
function CQ.alive() return true end
-- the controller a driver spawned now runs in: a supervisor whose calls
-- come from another one moves its driver there
function CQ.home() return cqueues.running() end

-- (outside: a driver's wait serves appstart's shared poller too)
CQ.outside = true

--- also: another descriptor (other_fd: loop.outside's) whose readiness
-- ends the wait as the deadline does
-- the poll object of each waiter's wait on fd, till it is over or let go
-- of (CQ.abandon)
local entered = setmetatable({}, { __mode = "k" })

-- (fd, the supervisor's poller, may be polled by a call of the main
-- thread's served in the controller at once, through loop.wait; other_fd,
-- appstart's shared poller, by waits of appstart.cqueues: both polled as
-- theirs are, see its B.enter, which gives a second poller of one
-- descriptor a copy of its own)
function CQ.wait(cond, fd, deadline, other_fd)
  local timeout = deadline and math.max(0, deadline - now())
  local obj = fd and cq_backend.enter(fd)
  entered[cond] = obj or nil
  local other = other_fd and cq_backend.enter(other_fd)
  -- (outside_cond: what the main thread made changed, see loop.outside)
  local list, n = { obj, other, cond, cq_backend.outside_cond }, 0
  for i = 1, 4 do
    if list[i] then n = n + 1; list[n] = list[i] end
  end
  if timeout then n = n + 1; list[n] = timeout end
  local ready = cqueues.poll(table.unpack(list, 1, n))
  -- cqueues keeps a descriptor in its poll set after the wait; the
  -- supervisor closes its poller once idle, appstart its shared one: the
  -- last wait on each takes it out (B.leave)
  -- (not after an abandon: fd may be closed, its number another's, by now)
  if other then cq_backend.leave(other_fd, other) end
  if obj and entered[cond] == obj then
    entered[cond] = nil
    -- (released meanwhile: looked at again)
    if cq_backend.leave(fd, obj) then return true end
  end
  return obj ~= nil and ready == obj
end

--- The wait on cond (and fd) is let go of from outside the controller
-- (the main thread, once cq:loop() has returned): fd leaves the
-- controller's poll set now, so that it may be closed; the driver, woken
-- when the controller runs again, finds itself replaced.
function CQ.abandon(cond, fd)
  local obj = entered[cond]
  entered[cond] = nil
  if obj then cq_backend.leave(fd, obj) end
  cond:signal()
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
function LUV.waiter() return { wake = false, abandon = false } end
function LUV.wake(w) if w.wake then w.wake() end end
function LUV.alive() return true end
function LUV.looping()
  local luv_backend = package.loaded["appstart.luv"]
  return luv_backend ~= nil and luv_backend.running()
end

LUV.outside = true

--- A waiter on fd (the supervisor's poller, which a call of the main
-- thread's served in uv's loop may poll at once, through loop.wait) and
-- one on other_fd (appstart's shared poller, loop.outside's, which waits
-- of appstart.luv may poll at once): libuv takes one handle per
-- descriptor, appstart.luv's, see its B.add_poll; and a timer for the deadline,
-- or for a wake: whichever fires first resumes the waiting coroutine, from
-- uv's loop. A coroutine closed meanwhile (coroutine.close) takes them
-- with it: nothing resumes it then.
function LUV.wait(w, fd, deadline, other_fd)
  local co = coroutine.running()
  local luv_backend = package.loaded["appstart.luv"]
  local timer, on_fd, on_other, on_change, done = uv.new_timer(), nil, nil, nil, false
  local function over()
    if done then return false end
    done, w.wake, w.abandon = true, false, false
    luv_backend.outside_waits[on_change] = nil
    if on_fd then luv_backend.remove_poll(fd, on_fd) end
    if on_other then luv_backend.remove_poll(other_fd, on_other) end
    luv_backend.close_handle(timer)
    return true
  end
  local function finish(value)
    if over() then resume(co, value) end
  end
  local _ <close> = setmetatable({}, { __close = over })
  -- (what the main thread made changed, see loop.outside)
  on_change = function() finish(false) end
  luv_backend.outside_waits[on_change] = true
  if fd then
    on_fd = function() finish(true) end
    luv_backend.add_poll(fd, on_fd)
  end
  if other_fd then
    local function on_ready() finish(false) end
    luv_backend.add_poll(other_fd, on_ready)
    on_other = on_ready
  end
  if deadline then
    -- (a day at most: libuv aborts past its range; the caller looks at
    -- its deadlines again when woken)
    uv.update_time()
    timer:start(luv_backend.to_ms(deadline - now(), 0), 0, function() finish(false) end)
  end
  w.wake = function()
    timer:stop()
    timer:start(0, 0, function() finish(false) end)
  end
  w.abandon = over
  return coroutine.yield()
end

--- The wait is let go of (from the main thread, uv.run over or not): its
-- waiters and timer gone, fd's first (its handle closed unless another
-- waits on it, whom fd's release wakes), so that fd may be closed; the
-- coroutine is resumed no more.
function LUV.abandon(w)
  if w.abandon then w.abandon() end
end

-------------------------------------------------------------------------------
-- plain

local PLAIN = { name = "plain" }

-- (owner: what owns fd, held while the wait is registered, see loop.wait)
function PLAIN.wait(owner, fd, deadline) return loop.wait(fd, deadline, owner) end
function PLAIN.alive() return true end

-------------------------------------------------------------------------------
-- the main thread's, in a coroutine of another loop's

-- A coroutine of cqueues' or luv's that serves what the main thread made
-- (its wait serving appstart's shared poller), or runs a callback of the
-- main thread's so served (loop.for_main): a supervisor the main thread
-- made stays the main thread's there, with no driver in that loop,
-- and its calls that wait drive as a plain script's do. Its callbacks run
-- in a coroutine of that loop's of their own (runner), marked the main
-- thread's, as an app's on_exit is: their waits their own, not the
-- serving coroutine's. That loop, once left, may not run again: a caller
-- outside it takes the queue over from a runner waiting there.
local MAIN = { name = "main" }

MAIN.wait = PLAIN.wait
MAIN.alive = PLAIN.alive
function MAIN.spawn_runner(fn) loop.call(fn) end

--- Is the caller inside the loop runner r (a coroutine MAIN spawned)
-- waits in: the controller it runs in (cqueues), luv's loop running?
function MAIN.inside(r)
  local home = r.home and r.home[1]
  if home then return package.loaded.cqueues.running() == home end
  return LUV.looping()
end

--- The loop a runner spawned now runs in: a cqueues controller; none
-- under luv (one loop).
function MAIN.home()
  local cq = package.loaded.cqueues
  return cq and cq.running() or nil
end

-------------------------------------------------------------------------------
-- a start served by a plain script's calls

-- Outside any loop an app's notify socket is closed at ready and a start
-- with a watchdog is refused: nothing would read the pings. A supervisor's
-- call that waits is a loop for as long as it waits (it turns appstart's
-- shared poller), so a service with a watchdog is begun served: inside a
-- coroutine where this backend applies (loop.served() holds there). It has
-- no listen, at, watch nor spawn: the app's socket, its watchdog's timer
-- and its output go to the shared poller, as in any plain wait, and are
-- served by each call of the supervisor's that waits, never in between.
local serving = false -- the coroutine beginning a served start
local BACKEND = { name = "supervisor" }

function BACKEND.applies()
  return serving ~= false and coroutine.running() == serving
end

-- Its starts stay served once begun (loop.still_served): each call of the
-- supervisor's that waits serves them, on the main thread too. Served,
-- not running: no loop runs around a plain script once this backend is
-- registered (loop.inside), whose app:tail() reads all the pipes hold,
-- not a wake-up's worth with the rest left to a loop that never turns.
function BACKEND.served() return true end

-- A start's beginning does not wait; were it to, it would block.
function BACKEND.wait(fd, deadline)
  local timeout = deadline and math.max(0, deadline - now()) or -1
  if fd then
    local readable, err = core.wait_readable(fd, timeout)
    if readable == nil then error(err, 2) end
    return readable
  end
  -- (a sleep: poll(2) of no descriptor, which needs none free)
  local ok, err = core.wait_readable(-1, timeout)
  if ok == nil then error(err, 2) end
  return false
end

-- Registered once, and once more if appstart.luv registered its backend
-- after: the latest registered that applies wins, and luv's applies in any
-- coroutine.
local registered, after_luv = false, false
local function register()
  local luv_loaded = package.loaded["appstart.luv"] ~= nil
  if registered and (after_luv or not luv_loaded) then return end
  loop.add_backend(BACKEND)
  registered, after_luv = true, luv_loaded
end

--- Call fn(...) as pcall would, where loop.served() holds: at once where it
-- already does (inside a loop), else in a coroutine of the supervisor's.
function M.served(fn, ...)
  if loop.served() then return pcall(fn, ...) end
  register()
  local co = coroutine.create(fn)
  serving = co
  local r = table.pack(coroutine.resume(co, ...))
  serving = false
  if coroutine.status(co) ~= "dead" then -- it yielded: nothing of a start's does
    coroutine.close(co)
    return false, "appstart.supervisor: a start's beginning yielded"
  end
  return table.unpack(r, 1, r.n)
end

-------------------------------------------------------------------------------

--- The environment of the calling coroutine: a task of appstart.run; else,
-- for a supervisor of the main thread's (of_main: one made there), one
-- that serves the main thread (MAIN); else a coroutine of a cqueues controller's
-- own (which can yield to nothing else, even once appstart.luv is loaded:
-- appstart.loop would send its waits to luv); else one resumed from luv's
-- loop (once appstart.luv is loaded); else plain (a coroutine of the
-- user's inside a controller too).
function M.current(of_main)
  -- cqueues' modules are loaded as soon as cqueues is, from any thread
  -- (loop.cqueues_adapter; the adapter loads cqueues.condition, so taking
  -- it after needs no descriptor)
  if not cq_backend and loop.cqueues_adapter() then
    cq_backend = loop.cqueues_adapter()
    condition = require "cqueues.condition"
  end
  if loop.task() then return RUN end
  if of_main and loop.for_main() then return MAIN end
  if loop.running() then return PLAIN end -- a loop's callback: waits block
  local _, main = coroutine.running()
  if main or not coroutine.isyieldable() then return PLAIN end
  -- (a coroutine of the controller's own: in one of the user's inside it,
  -- a generator, cqueues.poll would yield to whoever resumed it; the
  -- calls there wait as plain)
  if package.loaded.cqueues then
    cq_backend = cq_backend or require "appstart.cqueues"
    if cq_backend.applies() then
      cqueues = cqueues or require "cqueues"
      condition = condition or require "cqueues.condition"
      return CQ
    end
  end
  local luv_backend = package.loaded["appstart.luv"]
  if luv_backend and luv_backend.applies() then
    uv = uv or require "luv"
    return LUV
  end
  return PLAIN
end

M.PLAIN = PLAIN
M.MAIN = MAIN

return M
