--- appstart.loop: every wait in appstart goes through here.
--
-- Inside `appstart.run` a wait yields the calling task to the loop, so many
-- starts proceed at once in one OS thread. Anywhere else a wait blocks the
-- caller, turning the same poller meanwhile, so background callbacks
-- (`on_exit`, watches) still run "at the next call that waits".
--
-- One epoll set (appstart.core poller) for the whole Lua state, keyed by
-- descriptor: several waiters on one descriptor share its registration, and a
-- descriptor leaves the set when its last waiter goes, always before whoever
-- owns it closes it. Timers live in a binary heap.
local core = require "appstart.core"
local settings = require "appstart.settings"

local now = core.now

local loop = {}

local poller          -- created on first use
local waiters = {}    -- fd -> { [entry] = the turn it was added in }
local heap = { ncancelled = 0 } -- timers, ordered by .at (core.timer_push); the cancelled counted
local spare = {}      -- fired lists for poller:wait, not in use (turn)
local nspare = 0
local epoch = 0       -- turns that polled, counted: the latest's number
local current = nil   -- the running loop: { tasks = {co -> task}, queue, count }
local HELD_PRUNE_MIN = 64 -- loop.own: the fewest apps a run holds before it looks which have ended

-------------------------------------------------------------------------------
-- timers

-- (the heap's operations are the core's: each all or nothing, where a
-- ^C, raised at whatever Lua instruction comes next, stopped a sift in
-- the middle, a timer held twice and another lost)
local heap_push, heap_pop, heap_cancel = core.timer_push, core.timer_pop, core.timer_cancel

-- What the waits under another loop were told of the shared poller
-- (loop.outside): the latest next timer one of them sleeps until, and
-- whether one was told there is no poll set. A timer due before that, or
-- a first descriptor, wakes them (outside_changed), to look again: a wait
-- begun before the main thread made something (between two cq:loop()
-- calls, in a luv callback of the main thread's) would not serve it.
local told_at, told_none = -math.huge, false
local backends = {} -- registered by adapters (appstart.luv): see loop.add_backend

local function outside_changed()
  told_at, told_none = -math.huge, false
  local cq = package.loaded["appstart.cqueues"]
  if cq then cq.outside_changed() end
  for i = 1, #backends do
    if backends[i].outside_changed then backends[i].outside_changed() end
  end
end

--- Call fn(arg) once at time `at` (core.now() clock) unless cancelled.
-- Every field is preset, so cancelling allocates nothing (it must work
-- while Lua is out of memory).
-- @return the timer, for loop.cancel
function loop.timer(at, fn, arg)
  local t = { at = at, fn = fn, arg = arg or false, cancelled = false }
  heap_push(heap, t)
  if at < told_at then outside_changed() end
  return t
end

--- Cancel a timer: it lets go of its closure at once, and the heap is
-- rebuilt without the cancelled once they are most of it (every wait with
-- a deadline that ends early leaves one; they must not pile up).
function loop.cancel(t)
  if not t or t.cancelled then return end
  heap_cancel(heap, t)
end

-------------------------------------------------------------------------------
-- descriptors

-- The poll set; nil, why where none can be made (out of descriptors).
local function try_poller()
  if poller then return poller end
  local p, err = core.poller()
  if not p then return nil, err end
  poller = p
  return p
end

local function get_poller() return assert(try_poller()) end

-- A descriptor is in the epoll set exactly while it has a waiter set: the
-- set is made whole first, and a failure (out of memory) on the way undoes
-- what was done, so no stale set can hide a later descriptor of that number.
--
-- A descriptor closed while it still had waiters (its owner broke the rule
-- above, or was collected with a watch left) has left the epoll set by
-- itself; the set of waiters left behind must not keep a later descriptor
-- of that number out of it. So the descriptor is added to the epoll set
-- every time (an EEXIST is no error); when it was not there, its old
-- waiters are stale and let go of: their descriptor is gone and could
-- never have woken them.
--
-- Each waiter is stamped with the turn it was added in (epoch): a turn
-- fires only those added before its epoll_wait. A callback of the turn's
-- may close a descriptor still in its batch, whose number a waiter added
-- then takes (an on_exit that looks at another app's state, closing its
-- pidfd, then watches a pid): fired, that waiter would be told of a
-- descriptor that was never readable.
--
-- A ^C (lua.c's hook raises "interrupted!" at any instruction) may stop
-- these between any two stores: the set alone says who waits (a count
-- beside it, left one off, broke every later turn), and a descriptor left
-- in the epoll set with no waiters is let go of by the turn it wakes.
local function add_waiter(fd, entry)
  local set = waiters[fd]
  local p = get_poller()
  local _, added = assert(p:add(fd, fd))
  if set and not added then
    set[entry] = set[entry] or epoch
    return
  end
  local ok, err = pcall(rawset, waiters, fd, { [entry] = epoch })
  if not ok then
    p:del(fd)
    error(err, 0)
  end
  if told_none then outside_changed() end
end

local function remove_waiter(fd, entry)
  local set = waiters[fd]
  if set and set[entry] then
    if next(set) == entry and next(set, entry) == nil then
      -- the last waiter: the set goes whole, in one store (emptied first,
      -- a ^C between would leave an empty set polled for ever)
      waiters[fd] = nil
      poller:del(fd)
    else
      set[entry] = nil
    end
  end
end

-- Turns that ran something (a waiter fired, a timer run), counted: a
-- wait under another loop tells by it that serving the shared poller did
-- something its caller must look at.
local nserved = 0

--- One turn: wait for descriptors or the next timer (never past `until_`),
-- then run what became ready. Entries are called as entry.fire(entry).
local function turn(until_)
  core.reap()
  local t = now()
  while heap[1] and heap[1].cancelled do heap_pop(heap) end
  local wake = heap[1] and heap[1].at
  if until_ and (not wake or until_ < wake) then wake = until_ end
  local timeout = wake and math.max(0, wake - t) or -1
  local n, fired, e = 0, nil, nil
  if next(waiters) then
    -- a list of its own: a callback below may wait, turning the poller
    -- again (nested), or yield to a turn of another coroutine's, and a
    -- shared list would be overwritten under this one. One of the spare
    -- lists, given back once done (lost, to the collector, if a callback
    -- raises): no table made for each turn.
    fired = spare[nspare]
    if fired then
      spare[nspare] = nil
      nspare = nspare - 1
    else
      fired = {}
    end
    epoch = epoch + 1
    e = epoch
    n = assert(get_poller():wait(timeout, fired))
  elseif timeout > 0 then
    -- nothing to poll: a plain sleep (poll(2) of no descriptor, EINTR-safe;
    -- no poll set made for it, which out of descriptors could not be)
    local ok, err = core.wait_readable(-1, timeout)
    if ok == nil then error(err, 0) end
  elseif timeout < 0 then
    error("appstart: waiting forever with nothing to wait for", 0)
  end
  if n > 0 then nserved = nserved + 1 end
  for i = 1, n do
    local fd = fired[i]
    local set = waiters[fd]
    local first, first_added = nil, nil
    if set then first, first_added = next(set) end
    -- (a waiter added since the epoll_wait, e or later, is not fired: fd
    -- may be another descriptor of that number by now)
    if not first then
      -- nobody waits on it (a ^C stopped add_waiter or remove_waiter, or
      -- a callback of this turn's dropped it): out of the epoll set, or
      -- it would wake every turn
      if set then waiters[fd] = nil end
      if poller then poller:del(fd) end
    elseif next(set, first) == nil then
      -- the usual case: one waiter, no list to copy
      if first_added < e and not first.done then first.fire(first) end
    else
      -- a waiter may drop others of the set: fire from a copy
      local list, k = {}, 0
      for entry, added in pairs(set) do
        if added < e then k = k + 1; list[k] = entry end
      end
      for j = 1, k do
        local entry = list[j]
        if not entry.done then entry.fire(entry) end
      end
    end
    fired[i] = nil
  end
  if fired then
    nspare = nspare + 1
    spare[nspare] = fired
  end
  t = now()
  while heap[1] and (heap[1].cancelled or heap[1].at <= t) do
    -- (a live one's fn called by the pop, the timer marked out of the heap
    -- as one step: a ^C could not land between the two)
    if not heap[1].cancelled then nserved = nserved + 1 end
    heap_pop(heap)
  end
end

-------------------------------------------------------------------------------
-- tasks

local Task = {}
Task.__index = Task
Task.__name = "appstart.task"

--- What a wait raises in a task cancelled for good (task:cancel(true)).
loop.ABANDONED = "cancelled for good: what this task waited for is over"

-- coroutine -> how many stops under way in it shield its waits (loop.shield)
local shielded = setmetatable({}, { __mode = "k" })
-- coroutine -> its task, when the last wait it made was told the task's
-- cancel (loop.took_cancel)
local told_by = setmetatable({}, { __mode = "k" })
-- coroutine -> its task, whose cancel a wait of a stop took (the stop went
-- on): told again at the task's next wait once the stops are over, so
-- that a task that waits on after app:terminate() sees it (it did not,
-- and one that looped never ended). Not after a cancel for good: every
-- wait after the stop raises then.
local swallowed = setmetatable({}, { __mode = "k" })
local Shield = {
  __close = function(guard)
    local co = guard.co
    local n = shielded[co]
    shielded[co] = n and n > 1 and n - 1 or nil
    local task = swallowed[co]
    if task and not shielded[co] then
      swallowed[co] = nil
      if not task.abandoned then
        -- (a task of appstart.run's; one of cqueues' or luv's: loop.cancel_due)
        if task.cancel_pending ~= nil then task.cancel_pending = true else task.told = false end
      end
    end
  end,
}

--- For a stop's code whose wait has just returned nil, "cancelled" and
-- that goes on regardless (app:terminate's grace, a cancelled start's
-- stop): inside loop.shield, the cancel is told again at the task's next
-- wait once the stops are over. (A wait of the user's inside the stop, a
-- log function's, that is told it has seen it: it is not told again.)
function loop.took_cancel()
  local co = coroutine.running()
  local task = told_by[co]
  told_by[co] = nil
  if task and shielded[co] then swallowed[co] = task end
end

--- Until the value it returns is closed (a to-be-closed variable), the
-- calling coroutine's waits do not raise for a cancel for good
-- (task:cancel(true)): a stop under way (a start's after its cancel,
-- app:terminate) ends what it must, and its caller gets the one
-- "cancelled" then, as from a wait. nil outside a coroutine.
function loop.shield()
  local co, main = coroutine.running()
  if main then return nil end
  shielded[co] = (shielded[co] or 0) + 1
  return setmetatable({ co = co }, Shield)
end

--- Is a cancel of a task of cqueues' or luv's (appstart.cqueues,
-- appstart.luv) to be told at this wait (then loop.cancelled)? Once, as
-- inside appstart.run; after that the task's waits wait, but those of one
-- cancelled for good (task.abandoned) raise loop.ABANDONED, unless a stop
-- under way shields them (loop.shield): its waits wait, not spin on
-- "cancelled" until its grace is over.
function loop.cancel_due(task)
  if not task or not task.cancelled then return false end
  if not task.told then return true end
  if task.abandoned and not shielded[coroutine.running()] then
    -- a second wait after that raise was caught (a check function that
    -- retries on any error): "close", where the adapter can close the
    -- task (luv's, whose coroutines it resumes itself), rather than raise
    -- again and again without ever yielding
    if task.raised_abandoned then
      if task.closable then return "close" end
      -- (cqueues': its coroutines cannot be closed here, so each such
      -- wait raises again, but after a pause: not a spin at full CPU)
      if task.pause then task:pause() end
    end
    task.raised_abandoned = true
    error(loop.ABANDONED, 0)
  end
  return false
end

--- The wait's result that tells a task of cqueues' or luv's its cancel
-- (co: the task's coroutine, when it is not the one running).
function loop.cancelled(task, co)
  task.told = true
  told_by[co or coroutine.running()] = task
  return nil, "cancelled"
end

-- Queue task to be resumed with (...). A task is queued at most once at a
-- time (when spawned, or by the one wait it is in), so its values wait in
-- its own fields: one or two (every wait's result) without a table. The
-- fields are never set to nil (NONE stands for it), so setting them again
-- never has to find room for a key.
local NONE = {}
local function schedule(task, ...)
  local n = select("#", ...)
  if n <= 2 then
    local a, b = ...
    if a == nil then a = NONE end
    if b == nil then b = NONE end
    task.nargs, task.arg1, task.arg2 = n, a, b
  else
    task.nargs, task.args = n, table.pack(...)
  end
  local q = current.queue
  q[#q + 1] = task
end

-- The values task was queued with; the task lets go of them.
local function unpack_args(task)
  local n = task.nargs
  if n > 2 then
    local args = task.args
    task.args = false
    return table.unpack(args, 1, n)
  end
  local a, b = task.arg1, task.arg2
  task.arg1, task.arg2 = false, false
  if a == NONE then a = nil end
  if b == NONE then b = nil end
  if n == 2 then return a, b end
  if n == 1 then return a end
end

-- A task's body must be a function (a coroutine takes nothing else).
local function check_function(fn, what)
  if type(fn) ~= "function" then
    error(string.format("%s: a function expected, got %s", what, type(fn)), 3)
  end
end

--- Spawn a task in the running loop: fn(...) in a coroutine of its own.
-- @return the task: `task:cancel()` makes its current (or next) wait return
-- nil, "cancelled"; `task.done` is true once fn has returned
function loop.spawn(fn, ...)
  if not current then error("appstart.spawn: no loop is running (use appstart.run)", 2) end
  check_function(fn, "appstart.spawn")
  -- every field preset: a wait sets them without allocating
  local task = setmetatable({ co = coroutine.create(fn), done = false, waiting = false,
    cancel_pending = false, nargs = 0, arg1 = false, arg2 = false, args = false }, Task)
  current.tasks[task.co] = task
  current.count = current.count + 1
  schedule(task, ...)
  return task
end

-- for_good: what the task waited for is over for good (a check function
-- whose start has ended): after the one "cancelled", every wait it makes
-- raises (loop.ABANDONED), so that one that waits on regardless (a polling
-- loop) ends instead of holding the run. The tasks of cqueues and luv
-- (appstart.cqueues, appstart.luv) do the same.
function Task:cancel(for_good)
  if self.done then return end
  if for_good then self.abandoned = true end
  if self.waiting then
    told_by[self.co] = self
    self.waiting.resume(self.waiting, nil, "cancelled")
  else
    self.cancel_pending = true
  end
end

--- End the task's current wait at once, as if its deadline had passed
-- (that loop.wait returns false); a task that is not waiting (running, or
-- queued to run) is left alone. For a task waiting for a condition that
-- another task or a callback brings about: it looks at the condition
-- before each wait, the other side wakes it after a change.
function Task:wake()
  if self.waiting then self.waiting.resume(self.waiting, false) end
end

function Task:__tostring()
  return string.format("appstart.task(%s)", self.done and "done" or "running")
end

local function current_task()
  if not current then return nil end
  local co, main = coroutine.running()
  if main then return nil end
  -- (inside a call the core makes into Lua, as its output reader's to
  -- on_output, the task cannot yield: a wait there blocks, as one in a
  -- callback of the loop's does)
  if not coroutine.isyieldable() then return nil end
  return current.tasks[co]
end

-------------------------------------------------------------------------------
-- other event loops
--
-- A backend lets the same waits yield to an event loop the user already
-- runs: { applies = fn() -> bool, wait = fn(fd, deadline) -> true|false,
-- spawn = fn(fn, ...), watch = fn(fd, fn, interval) -> handle with cancel(),
-- listen = fn(fd, fn) -> handle, at = fn(time, fn) -> handle,
-- running = fn() -> bool (its loop runs around the caller: loop.inside),
-- served = fn() -> bool (what was made under it stays served, with no
-- loop running: loop.still_served) }
-- (all but applies and wait optional: without them, callbacks run inline
-- and watches, listeners and timers go to the shared poller). A backend yields, so it is only asked
-- (applies) inside a coroutine; the main thread always blocks.
-- cqueues is used whenever the caller runs inside a cqueues controller;
-- luv once `require "appstart.luv"` has registered it. (backends: above)

--- Register a backend; the latest registered that applies wins.
function loop.add_backend(b)
  backends[#backends + 1] = b
end

local cqueues_backend

--- The cqueues adapter (appstart.cqueues), loaded as soon as cqueues is
-- seen, from any thread; nil while cqueues is not loaded, or while the
-- adapter cannot be: a require needs a descriptor, which a coroutine's
-- first wait (or a supervisor's first call) may come to when none is free,
-- and it is tried again at the next call. A ^C landing in the require is
-- raised again.
function loop.cqueues_adapter()
  if not cqueues_backend and package.loaded.cqueues then
    local loaded, b = pcall(require, "appstart.cqueues")
    if loaded then
      cqueues_backend = b
    elseif loop.interrupt(b) then
      error(b, 0)
    end
  end
  return cqueues_backend
end

local function active_backend()
  -- none registered and cqueues not loaded: none can apply (a plain
  -- script's every wait comes here; spare it the calls below)
  if not backends[1] and not package.loaded.cqueues then return nil end
  loop.cqueues_adapter()
  local co, main = coroutine.running()
  -- every backend yields: none applies to the main thread
  if main then return nil end
  if current and current.tasks[co] then return nil end
  for i = #backends, 1, -1 do
    local b = backends[i]
    -- (inside appstart.run, a coroutine of the user's in a task is luv's
    -- only while uv.run() runs there: else nothing would resume it, and
    -- its wait, yielding out of it, ended its caller's call at once)
    if b.applies() and not (current and b.running and not b.running()) then return b end
  end
  if package.loaded.cqueues then
    cqueues_backend = cqueues_backend or require "appstart.cqueues"
    if cqueues_backend.applies() then return cqueues_backend end
  end
  return nil
end

-- The coroutines serving what the main thread made (serve_now from a wait
-- under another loop), each with its depth: what that serving makes (a
-- watchdog's timer set again, an app's end watched, a callback run) stays
-- the main thread's, in appstart's own poll set, not the other loop's,
-- which may not run again once the coroutine is done (a controller left,
-- uv.run returned), while the main thread goes on with it.
local for_main = setmetatable({}, { __mode = "k" })

-- The backend what is made here goes to (active_backend(), but none while
-- serving for the main thread).
local function making_backend()
  local b = active_backend()
  if b and for_main[coroutine.running()] then return nil end
  return b
end

--- Descriptors about to be closed by their owner (a process's pidfd, a
-- start's channels): each leaves every poll set now, appstart's, cqueues'
-- and luv's, and whoever waited on it is woken soon (never from inside
-- this call), to look again at what it waited for. Without this, a wait
-- on a descriptor another party closes would never end (and luv aborts
-- on a poll handle whose descriptor was closed under it).
function loop.release(...)
  for i = 1, select("#", ...) do
    local fd = select(i, ...)
    local set = fd and waiters[fd]
    if set then
      local list, k = {}, 0
      for entry in pairs(set) do k = k + 1; list[k] = entry end
      -- told before they are dropped: a ^C between leaves them waiting
      -- on, to be told all the same, never dropped untold
      loop.timer(now(), function()
        for j = 1, k do
          local entry = list[j]
          if not entry.done then entry.fire(entry, "released") end
        end
      end)
      waiters[fd] = nil
      poller:del(fd)
    end
    if fd and (backends[1] or package.loaded.cqueues) then
      for j = 1, #backends do
        if backends[j].release then backends[j].release(fd) end
      end
      if package.loaded.cqueues then
        -- (not required here: a require may find no descriptor to read
        -- the file with. Not loaded, nothing of appstart.cqueues polls fd:
        -- only the user's own cqueues.poll of an app or a start may)
        cqueues_backend = cqueues_backend or package.loaded["appstart.cqueues"]
        if cqueues_backend then
          cqueues_backend.release(fd)
        else
          package.loaded.cqueues.cancel(fd)
        end
      end
    end
  end
end

--- Could a descriptor be in a poll set loop.release lets go of (a waiter
-- of appstart's, another event loop)? When not (a plain script between
-- its waits: every start's end), what would be released need not even be
-- asked for.
function loop.polled()
  return next(waiters) ~= nil or backends[1] ~= nil or package.loaded.cqueues ~= nil
end

--- Close a process of appstart.core's, its descriptors out of every poll
-- set first (loop.release).
function loop.close_process(proc)
  if loop.polled() then loop.release(proc:descriptors()) end
  proc:close()
end

--- The task the caller runs in, or nil outside appstart.run's tasks.
function loop.task()
  return current_task()
end

--- Is the caller a task of the running loop (so waits yield)?
function loop.in_task()
  return current_task() ~= nil
end

--- Is the caller appstart.run's own rounds (a watch's, a timer's, a
-- listener's callback; not a task, nor a coroutine of the user's inside
-- one), where a wait serves descriptors and timers but resumes no task?
function loop.in_rounds()
  return current ~= nil and current_task() == nil and coroutine.running() == current.co
end

-- fn(...) in a coroutine of the other loop's, spawned by a coroutine that
-- serves what the main thread made (a callback of an app of the main
-- thread's): its waits its own (not the serving coroutine's: its timing,
-- its cancel), what it makes the main thread's (for_main).
local function as_main(fn, ...)
  for_main[coroutine.running()] = 1
  return fn(...)
end

local function backend_spawn(b, fn, ...)
  if for_main[coroutine.running()] then return b.spawn(as_main, fn, ...) end
  return b.spawn(fn, ...)
end

--- Does the caller serve, or run a callback of, what the main thread made
-- (a coroutine of another loop's, marked so: see serve_now)? What it
-- makes is the main thread's, its callbacks run as the main thread's.
function loop.for_main()
  return for_main[coroutine.running()] ~= nil
end

--- Is e what lua.c's ^C hook raises ("interrupted!", with the position of
-- the code it stopped)? The signal lands wherever the launcher runs Lua
-- next, a callback of the user's as likely as appstart's own code: what
-- catches a callback's errors (to report them, or to go on without it)
-- hands this one on, so that ^C at the REPL, or in a script, interrupts
-- the call that waits, as it does when it lands in the wait itself.
function loop.interrupt(e)
  return type(e) == "string" and (e == "interrupted!" or e:sub(-14) == ": interrupted!")
end

--- The message handler of a callback's xpcall: debug.traceback's, but an
-- interrupt (loop.interrupt) is left as it is.
function loop.traceback(e)
  if loop.interrupt(e) then return e end
  return debug.traceback(e, 2)
end

--- Run fn(...) as a task when inside a loop; call it now otherwise. Used for
-- callbacks, so that a callback may itself wait. Inside appstart.run but
-- neither in a task nor in the run's own rounds (a coroutine of the
-- user's inside a task, a call from C there), where a wait blocks the run
-- as a plain script's does: called now too (a task would not run before
-- that wait, a start's on its check function, had ended).
function loop.call(fn, ...)
  if current then
    if current_task() or coroutine.running() == current.co then return loop.spawn(fn, ...) end
    return fn(...)
  end
  local b = active_backend()
  if b and b.spawn then return backend_spawn(b, fn, ...) end
  return fn(...)
end

--- A callback of the user's (on_exit, a watch's): as loop.call, but where
-- it runs inline (outside any loop, at whatever call waits next), an error
-- it raises is handed to report(message with traceback) instead of
-- escaping into that unrelated call. Inside appstart.run it is a task, and
-- its error ends the run as any task's does; under cqueues it is the
-- controller's coroutine, and cq:loop() returns its error. Under an event
-- loop where an error out of a callback ends the process (luv: exit(-1),
-- the apps left running), it is reported too.
local function guarded(report, fn, ...)
  local ok, err = xpcall(fn, loop.traceback, ...)
  if not ok then
    if loop.interrupt(err) then error(err, 0) end
    report(err)
  end
end

-- A callback's task inside appstart.run: marked as begun, so that one a
-- failed run never began is run then (loop.run), not dropped.
local function run_callback(entry, ...)
  current.callbacks[entry] = nil
  return entry.fn(...)
end

function loop.callback(report, fn, ...)
  if current then
    local entry = { report = report, fn = fn, args = table.pack(...) }
    current.callbacks[entry] = true
    return loop.spawn(run_callback, entry, ...)
  end
  local b = active_backend()
  if b and b.spawn then
    -- (the main thread's: what it raises is reported, as in a plain script)
    if for_main[coroutine.running()] then return b.spawn(as_main, guarded, report, fn, ...) end
    if b.errors_exit then return b.spawn(guarded, report, fn, ...) end
    return b.spawn(fn, ...)
  end
  guarded(report, fn, ...)
end

--- What a callback of the user's raised that a step of appstart's ran
-- within itself (on_status while its app starts: the start holds the app
-- then, app.state is "starting"), caught there: handed on as loop.callback
-- hands on a callback's error, never into that step (it would end the
-- start, which must go on). Inside appstart.run a task of its own raises
-- it, which ends the run; under cqueues a coroutine of the controller's,
-- which cq:loop() returns; elsewhere (a plain script, luv) it is reported.
function loop.raised(report, err)
  if current then return loop.spawn(error, err, 0) end
  local b = making_backend()
  if b and b.spawn and not b.errors_exit then return b.spawn(error, err, 0) end
  report(err)
end

--- A callback of the user's that a call of the user's runs (w:stop()'s
-- "stopped"): now, from within that call, in every loop. Outside any loop
-- an error it raises is reported, as loop.callback's are (so that w:stop
-- behaves as it always has there); inside one it escapes from the call,
-- into the caller's task or coroutine, as any error of the caller's does.
function loop.callback_now(report, fn, ...)
  if current or making_backend() then return fn(...) end
  guarded(report, fn, ...)
end

-------------------------------------------------------------------------------
-- waiting

-- The descriptors behind what a wait is given: one, or those of a source
-- (an appstart.core starter, whose set changes from one step to the next).
local function descriptors(source)
  if source == nil then return {} end
  if math.type(source) == "integer" then return { source } end
  return { source:fds() }
end

-- A task's wait: one table, its functions shared through its metatable
-- (entry.f(entry, ...)), its descriptors in its array part (entry[1 ..
-- entry.nfds]), and itself the timer of its deadline in the heap (at, fn,
-- arg, cancelled): seven fields, the hash part of eight slots, for every
-- task asleep. Dropping it takes it out of the poller and the heap,
-- allocating nothing.
local function wait_drop(entry)
  entry.done, entry.owner = true, false
  for i = 1, entry.nfds do remove_waiter(entry[i], entry) end
  if entry.at then loop.cancel(entry) end
  entry.task.waiting = false
end

local function wait_resume(entry, ...)
  if entry.done then return end
  wait_drop(entry)
  schedule(entry.task, ...)
end

local function wait_fire(entry) wait_resume(entry, true) end
local function wait_expire(entry) wait_resume(entry, false) end
local Wait = { __index = { fire = wait_fire, resume = wait_resume, drop = wait_drop } }

-- Nothing but the caller could run or fire: no other waiter, no live timer.
local function alone()
  return not next(waiters) and #heap == heap.ncancelled
end

-- Block on source (a descriptor or a source of several) until the
-- deadline, polling it directly: no poller to create and close, no
-- registration to undo.
local serve_now -- below

local function block(source, deadline)
  core.reap()
  local timeout = deadline and math.max(0, deadline - now()) or -1
  local readable, err
  if math.type(source) == "integer" then
    readable, err = core.wait_readable(source, timeout)
  else
    readable, err = source:wait(timeout)
  end
  if readable == nil then error(err, 3) end
  core.reap()
  return readable
end

-- A task's wait on source: its entry, made before anything is registered.
local function wait_entry(task, source, deadline, keep)
  local n, f1, f2, f3, f4, f5 = 0, nil, nil, nil, nil, nil
  if math.type(source) == "integer" then
    n, f1 = 1, source
  elseif source ~= nil then
    f1, f2, f3, f4, f5 = source:fds()
    n = f5 and 5 or f4 and 4 or f3 and 3 or f2 and 2 or f1 and 1 or 0
  end
  local entry = setmetatable({ f1, f2, f3, f4, f5, nfds = n, done = false, task = task,
    at = deadline or false, fn = wait_expire, arg = false, cancelled = false, owner = keep }, Wait)
  entry.arg = entry
  return entry
end

-- loop.wait in a task: registered, then yielded. Everything is allocated
-- before anything is registered, so an error (out of memory) here leaves
-- no half-made waiter behind; dropping one allocates nothing. (Apart from
-- loop.wait, called in its tail, and with the entry made in a call of its
-- own: the deepest call of a task that starts an app is here, in the
-- poller's, and a coroutine's stack doubles as it grows, 40 slots, 80,
-- 160, 16 bytes each: a task per start in flight held 1.3 KB more when
-- this was a slot deeper.)
local function task_wait(task, source, deadline, keep)
  local entry = wait_entry(task, source, deadline, keep)
  if deadline then heap_push(heap, entry) end
  for i = 1, entry.nfds do
    local ok, err = pcall(add_waiter, entry[i], entry)
    if not ok then wait_drop(entry); error(err, 0) end
  end
  task.waiting = entry
  return coroutine.yield(entry)
end

--- Wait until source is readable or the deadline passes.
-- source may be nil (a pure sleep), a descriptor, or a source of several:
-- an object with fds() (the descriptors, any of which readable ends the
-- wait), fd() (one descriptor standing for them all, for an event loop
-- that takes only one) and wait(timeout) (blocks on them); deadline may be
-- nil (no limit). owner: what owns a descriptor given as a number (a
-- process, for its pidfd); it, or a source given as an object, is held
-- while the wait is registered, so that the collector cannot close the
-- descriptor under the poller (a coroutine closed while it waits drops
-- every other reference: the wait stays until its descriptor or deadline
-- ends it, and finds the coroutine gone then).
-- @return true when readable, false at the deadline, nil, "cancelled" when
-- the calling task was cancelled
function loop.wait(source, deadline, owner)
  local fd = source
  local keep = owner or (source ~= nil and math.type(source) ~= "integer" and source) or false
  local task = current and current_task()
  if task then
    if task.cancel_pending then
      task.cancel_pending = false
      told_by[task.co] = task
      return nil, "cancelled"
    end
    if task.abandoned and not shielded[task.co] then
      -- a second wait after that raise was caught (a check function
      -- that retries on any error): the task is closed, at the yield
      -- below (the run closes a task cancelled for good that yields so),
      -- rather than raise again and again without ever yielding, which
      -- held the run at full CPU
      if task.raised_abandoned and coroutine.isyieldable() then coroutine.yield() end
      task.raised_abandoned = true
      error(loop.ABANDONED, 0)
    end
    -- the loop's only task, with nothing else to wait for: nobody could
    -- run meanwhile (or cancel it), so it blocks as a plain script does
    if fd and current.count == 1 and #current.queue == 0 and alone() then
      return block(fd, deadline)
    end
    return task_wait(task, fd, deadline, keep)
  end
  local b = active_backend()
  if b then
    if fd and math.type(fd) ~= "integer" then
      local one = fd:fd()
      fd = one
      if not one then
        -- out of descriptors, no poll set to be had for the object's:
        -- the wait ends a poll interval on at most (false: its caller
        -- looks again, and waits again)
        local soon = now() + settings.poll_interval
        if not deadline or soon < deadline then deadline = soon end
      end
    end
    -- closed apps that have exited are reaped by the calls that wait, and
    -- what waits in the shared poller (an app started, a watch made, from
    -- the main thread, outside the other loop) is served by them too, as
    -- they begin and end, and while they wait: the other loop polls its
    -- descriptor and wakes for its next timer beside what this waits for
    -- (what is served may be what fd stands for: its owner releases and
    -- closes it, or reads what this waits for, a notify socket the
    -- shared poller reads too; the caller looks again then)
    core.reap()
    local served = nserved
    serve_now()
    if fd and nserved ~= served then
      -- something was served: the caller looks again, but only once the
      -- other loop has had its turn (a wait of no time). Returned at once,
      -- a caller that waits on (app:wait) while the main thread's app
      -- floods its output served a slice of it at each wait and never
      -- yielded: the loop's other coroutines waited until its wait was
      -- over. (Only then: a wait that served nothing costs no more.)
      local r, why = b.wait(nil, now())
      core.reap()
      if r == nil then return r, why end
      return true
    end
    while true do
      local other, at = nil, nil
      if b.outside then other, at = loop.outside() end
      local wake = deadline
      if at and (not wake or at < wake) then wake = at end
      local r, why = b.wait(fd, wake, keep, other)
      core.reap()
      serve_now()
      if r ~= false or (deadline and now() >= deadline) then return r, why end
      -- woken for what the main thread made (its poll set, its next timer,
      -- something new of its), and served it: the caller looks again
      -- (what it waits for may have been read by the serving, or fd
      -- released by another wait's, its number another's by now); a sleep
      -- goes on
      if fd then return true end
      -- (a sleep whose coroutine was resumed by its owner, not by the
      -- other loop, goes on blocking)
      if not b.applies() then break end
    end
  end
  -- blocking, and nothing else is waiting: poll the descriptors directly
  -- (no poller to create and close for each wait of a plain script)
  if fd and alone() then return block(fd, deadline) end
  -- out of descriptors, with no poll set yet and only timers waiting
  -- besides (a cgroup app's wait), none can be made: fd is polled alone,
  -- up to the next timer, which then runs (until descriptors are back,
  -- or a timer's callback has something wait on a descriptor)
  if fd and not poller and not next(waiters) then
    poller = core.poller()
    while not poller and not next(waiters) do
      while heap[1] and heap[1].cancelled do heap_pop(heap) end
      local wake = heap[1] and heap[1].at
      if deadline and (not wake or deadline < wake) then wake = deadline end
      local readable = block(fd, wake)
      turn(now()) -- (the timers due run, readable or not)
      if readable then return true end
      if deadline and now() >= deadline then return false end
      poller = core.poller()
    end
  end
  -- blocking: turn the shared poller until fd or the deadline
  local ready = false
  local fds = descriptors(fd)
  local entry = { done = false }
  -- fired, its descriptors leave the poller at once: a callback that
  -- waits within this turn (on_output during a start, which sleeps) turns
  -- the poller again, and one still readable there would wake that wait
  -- over and over, spinning until it is done
  entry.fire = function(e)
    e.done, ready = true, true
    for i = 1, #fds do remove_waiter(fds[i], e) end
  end
  local ok, err = pcall(function()
    for i = 1, #fds do add_waiter(fds[i], entry) end
    -- (one turn at least: a wait whose time is up serves what is ready)
    local turned = false
    while not ready do
      if turned and deadline and now() >= deadline then break end
      turn(deadline)
      turned = true
    end
  end)
  for i = 1, #fds do remove_waiter(fds[i], entry) end
  loop.idle()
  if not ok then error(err, 0) end
  return ready
end

-- What waits in the shared poller (made outside the other loop), served
-- without waiting; the poller closed if nothing uses it then.
function serve_now()
  if next(waiters) or heap[1] then
    local co = coroutine.running()
    local depth = for_main[co]
    for_main[co] = (depth or 0) + 1
    local ok, err = pcall(turn, now())
    for_main[co] = depth
    if not ok then error(err, 0) end
    loop.idle()
  end
end


--- What waits in the shared poller outside appstart.run (made by the
-- main thread: a supervisor's served starts, their notify sockets and
-- watchdogs), for a wait of another loop's that must serve it meanwhile
-- (a supervisor's driver under cqueues or luv): the poller's descriptor
-- (nil when nothing is polled) and the time of its next timer (nil when
-- none). Inside appstart.run, nothing: the run serves it.
function loop.outside()
  if current then return nil, nil end
  while heap[1] and heap[1].cancelled do heap_pop(heap) end
  local fd = next(waiters) and get_poller():fd() or nil
  local at = heap[1] and heap[1].at or nil
  if not fd then told_none = true end
  if (at or math.huge) > told_at then told_at = at or math.huge end
  return fd, at
end

--- Serve what loop.outside() named, without waiting (outside
-- appstart.run; inside it, the run does).
function loop.serve_outside()
  if not current then serve_now() end
end

--- In a plain script, what the calls that wait serve (the shared poller:
-- other apps' pipes and notify sockets, their callbacks), served without
-- waiting: for such a call that returns without a wait (an app that had
-- ended, a start done at once). Inside a loop, the loop serves it.
function loop.serve()
  if current or active_backend() then return end
  serve_now()
end

--- Would a wait from here go to another event loop, which takes a single
-- descriptor? (A source then needs its fd() ready before it waits.)
function loop.wants_one_fd()
  return active_backend() ~= nil
end

--- Close the poller when nothing uses it, so a launcher at rest holds no
-- descriptor of appstart's.
function loop.idle()
  if poller and not current and not next(waiters) then
    while heap[1] and heap[1].cancelled do heap_pop(heap) end
    if not heap[1] then
      -- (out of the other loops' poll sets first: a wait under cqueues
      -- or luv may poll it, loop.outside's)
      local p = poller
      poller = nil
      if backends[1] or package.loaded.cqueues then loop.release(p:fd()) end
      p:close()
    end
  end
end

--- For the specs: the descriptors that have waiters, and the number of
-- live timers (outside appstart.run, both should be none between calls).
function loop.pending()
  local fds, timers = {}, 0
  for fd in pairs(waiters) do fds[#fds + 1] = fd end
  table.sort(fds)
  for i = 1, #heap do
    if not heap[i].cancelled then timers = timers + 1 end
  end
  return fds, timers
end

--- Sleep for `seconds` (yields inside a loop).
function loop.sleep(seconds)
  -- (0 or less does not wait: what is left until a deadline may have run
  -- out already)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error("appstart.sleep: seconds expected (a number), got " .. require("appstart.errors").shown(seconds), 2)
  end
  return loop.wait(nil, now() + seconds)
end

--- Call fn() in the background when fd becomes readable, once (again each
-- time it is readable after, while fn returns false); or, with no fd,
-- every `interval` seconds until fn returns true.
-- @return a handle for loop.unwatch
-- h's descriptor joins the poll set; out of descriptors, with no poll set
-- yet and none to be made (a start that got ready meanwhile, in a plain
-- script), it is looked at alone every poll_interval instead (poll(2) of
-- it, which needs no descriptor: what it says is seen all the same),
-- until a poll set can be made and it joins that. later: it joins the
-- poll set a poll_interval on at the soonest (a watch whose fd is still
-- readable, woken at every turn meanwhile, would spin).
local function add_or_look(fd, h, later)
  if not later and try_poller() then return add_waiter(fd, h) end
  local function look()
    h.timer = nil
    if h.done then return end
    if try_poller() then return add_waiter(fd, h) end
    if core.wait_readable(fd, 0) then
      h.fire(h, "looked")
      if h.done then return end
    end
    h.timer = loop.timer(now() + settings.poll_interval, look)
  end
  h.timer = loop.timer(now() + settings.poll_interval, look)
end

function loop.watch(fd, fn, interval)
  if not current then
    local b = making_backend()
    if b and b.watch then return b.watch(fd, fn, interval) end
  end
  local h = { done = false }
  if fd then
    -- fn's false: what it waits for has not happened yet (a process
    -- whose cgroup has not emptied), so it waits on: fired only once, a
    -- watch woken early was never told the end. (Out of the poller while
    -- fn runs, not done: an unwatch inside fn is heeded. Released, fd is
    -- its owner's to close: not waited on again. Looked at, not polled:
    -- look() looks again.)
    h.fire = function(e, how)
      remove_waiter(fd, e)
      if fn() ~= false or e.done or how == "released" then e.done = true; return end
      if how == "looked" then return end
      local readable = core.wait_readable(fd, 0)
      if readable == nil then e.done = true; return end -- (closed under it)
      add_or_look(fd, e, readable)
    end
    h.fd = fd
    add_or_look(fd, h)
  else
    local function probe()
      if h.done then return end
      if fn() then h.done = true; return end
      h.timer = loop.timer(now() + interval, probe)
    end
    h.timer = loop.timer(now() + interval, probe)
  end
  return h
end

--- Call fn() in the background each time fd is readable (fn reads what
-- made it so), until loop.unwatch(handle).
function loop.listen(fd, fn)
  if not current then
    local b = making_backend()
    if b and b.listen then return b.listen(fd, fn) end
  end
  local h = { done = false, fd = fd }
  h.fire = function() fn() end
  add_or_look(fd, h)
  return h
end

--- Call fn() in the background once at time `at` (core.now() clock),
-- unless loop.unwatch(handle) comes first.
function loop.at(at, fn)
  if not current then
    local b = making_backend()
    if b and b.at then return b.at(at, fn) end
  end
  local h = { done = false }
  h.timer = loop.timer(at, function()
    if h.done then return end
    h.done = true
    fn()
  end)
  return h
end

--- Stop a watch, listen or at (a handle already done is left alone).
function loop.unwatch(h)
  if not h or h.done then return end
  if h.cancel then h.done = true; return h.cancel() end
  -- out of the poller and the heap before it is marked done: a ^C between
  -- leaves it to be unwatched again, not done and waiting on for ever
  if h.fd then remove_waiter(h.fd, h) end
  loop.cancel(h.timer)
  h.done = true
  loop.idle()
end

--- Would a waiter made here be served in the background: inside
-- appstart.run, or in a coroutine of another event loop's? (A plain
-- script's main thread is served only while it waits.)
function loop.served()
  return current ~= nil or making_backend() ~= nil
end

--- The other event loop a call from here yields to (its backend), or nil:
-- for loop.still_served.
function loop.backend()
  return active_backend()
end

--- Is what was made under backend b (loop.backend()) still served from
-- here: served now, or b's loop still running (b.running()), as luv's is
-- in its callbacks on the main thread (not once the loop has returned),
-- or served for good (b.served()), a supervisor's at each of its calls
-- that wait?
function loop.still_served(b)
  return loop.served() or (b and ((b.served and b.served()) or (b.running and b.running()))) or false
end

-------------------------------------------------------------------------------
-- run

--- How many runs have failed (an error in a task) in this Lua state: a
-- supervisor looks at its starts again when this has changed (one that
-- such a run abandoned says so on no descriptor).
loop.failed_runs = 0

--- Run fn(...) as the first task of a loop; return when it and every task
-- spawned meanwhile are done. An error in any task closes the others (their
-- pending starts are abandoned), ends every app started in the run that
-- still runs and was not closed (SIGTERM, SIGKILL after its kill_grace),
-- and is raised here.
function loop.run(fn, ...)
  if current then error("appstart.run: a loop is already running", 2) end
  check_function(fn, "appstart.run")
  -- many starts at once need many descriptors: take what the hard limit
  -- allows (apps still start with the old soft limit)
  core.raise_nofile()
  local state = { tasks = {}, queue = {}, count = 0, apps = setmetatable({}, { __mode = "k" }),
    held = {}, held_count = 0, prune_at = HELD_PRUNE_MIN,
    starts = setmetatable({}, { __mode = "k" }), callbacks = {},
    -- the coroutine the run's own rounds run in (not a task's)
    co = coroutine.running() }
  current = state
  -- the poll set, now: every wait of the run needs it, and one a shortage
  -- of descriptors met later could not make it (an app:wait() of an app
  -- that got ready then raised "epoll_create1: Too many open files")
  try_poller()
  local failed, failure, failed_co
  local ok, err = pcall(function(...)
    loop.spawn(fn, ...)
    while state.count > 0 do
      local q = state.queue
      if #q > 0 then
        state.queue = {}
        local plain = false
        for i = 1, #q do
          local task = q[i]
          if not task.done and coroutine.status(task.co) == "dead" then
            -- closed by another (coroutine.close): its to-be-closed
            -- variables ran there (a start in it was abandoned), and the
            -- wait it was in ended now; it is over, never resumed
            task.done = true
            state.tasks[task.co] = nil
            state.count = state.count - 1
          elseif not task.done then
            local okr, res = coroutine.resume(task.co, unpack_args(task))
            if not okr then
              -- a message gets the task's traceback; any other value (a
              -- table, as many libraries raise, even nil) is raised as it
              -- is, as pcall would give it, never through its __tostring
              -- (which may raise itself)
              failed, failure = true, type(res) == "string" and debug.traceback(task.co, res) or res
              -- (closed with the others: its to-be-closed variables too)
              failed_co = task.co
              task.done = true
              state.tasks[task.co] = nil
              state.count = state.count - 1
              return
            end
            if coroutine.status(task.co) == "dead" then
              task.done = true
              state.tasks[task.co] = nil
              state.count = state.count - 1
            elseif res == nil or type(res) ~= "table" or res.fire == nil then
              -- a yield that is not ours (a plain coroutine.yield): resume
              -- soon; but a task cancelled for good, whose next wait would
              -- raise, would never make one (a check function that polls
              -- so, its start over): it is closed
              if task.abandoned then
                coroutine.close(task.co)
                task.done = true
                state.tasks[task.co] = nil
                state.count = state.count - 1
              else
                schedule(task)
                plain = true
              end
            end
          end
        end
        -- soon, not before what is ready and due is served: a task that
        -- yields so in a loop (a check function polling) would keep the
        -- run from every descriptor and timer, its start's deadline too
        if plain then turn(now()) end
      else
        turn(nil)
      end
    end
  end, ...)
  -- on failure, close what is left. The loop is gone first, so what
  -- waits from here blocks instead of yielding; the tasks' waits go first,
  -- so that nothing resumes a task meanwhile.
  current = nil
  for _, task in pairs(state.tasks) do
    if task.waiting then task.waiting.drop(task.waiting) end
  end
  local App = require "appstart.app"
  if not ok or failed then
    loop.failed_runs = loop.failed_runs + 1
    -- what the run began is ended, all at once: the starts under way (a
    -- task's, or begun and held by nobody) abandoned, SIGTERM to what each
    -- began; the apps its tasks started (nobody is left to stop them), and
    -- what a group app left (its sweep is a task, closed with the others),
    -- SIGTERM; then each waited for, SIGKILL once its kill_grace is over.
    -- Before the tasks are closed: an app of theirs in a <close> variable
    -- has ended by then, not each in turn
    local pending = {}
    for h in pairs(state.starts) do
      if not h.done then
        pending[#pending + 1] = h
        h._run_failed = true -- (a supervisor's start: stopped, not failed)
        pcall(h.abandon, h)
      end
    end
    App.end_all(state.apps, function()
      for _, h in ipairs(pending) do pcall(h.wait, h) end
    end)
    -- the callbacks it never began (an app's on_exit): run now, once each,
    -- as those of the apps just ended were
    for entry in pairs(state.callbacks) do
      local okc, e = xpcall(entry.fn, debug.traceback, table.unpack(entry.args, 1, entry.args.n))
      if not okc then entry.report(e) end
    end
  end
  for co in pairs(state.tasks) do coroutine.close(co) end
  if failed_co then coroutine.close(failed_co) end
  -- those left running are served no more
  App.unserved(state.apps)
  loop.idle()
  if not ok then error(err, 0) end
  if failed then error(failure, 0) end
end

--- An app started inside appstart.run: ended if the run fails (an error
-- in a task), as the tasks that held it are. The run holds it while it
-- may run, so that one its tasks dropped is not collected and left
-- running by a failed run; one seen ended or closed is let go then
-- (loop.disown), and those that ended unseen each time the count of the
-- held doubles, so that a long run of short-lived apps holds no more than
-- about twice those still running.
function loop.own(app)
  local state = current
  if not state then return end
  -- (before app joins: it is not the app's yet, its process still the
  -- start's, and would look ended)
  if state.held_count >= state.prune_at then
    local App, n = require "appstart.app", 0
    for held in pairs(state.held) do
      if App.may_run(held) then n = n + 1 else state.held[held] = nil end
    end
    state.held_count, state.prune_at = n, math.max(HELD_PRUNE_MIN, 2 * n)
  end
  state.apps[app] = true
  state.held[app] = true
  state.held_count = state.held_count + 1
end

--- app has ended, or is closed: the run that holds it lets it go (held
-- weakly, as before), with its buffers (an app read for its output holds
-- 70 KB and more), rather than at the next look (see loop.own).
function loop.disown(app)
  local state = current
  if state and state.held[app] then
    state.held[app] = nil
    state.held_count = state.held_count - 1
  end
end

--- A start begun inside appstart.run: abandoned, and its app ended, if the
-- run fails.
function loop.own_start(h)
  if current then current.starts[h] = true end
end

--- Is a loop running?
function loop.running()
  return current ~= nil
end

--- Is a loop running around this call: appstart.run (from any coroutine
-- inside it), a coroutine of another loop's, or luv's uv.run (in its
-- callbacks on the main thread too)? What it does holds that loop.
function loop.inside()
  if current or active_backend() then return true end
  for i = 1, #backends do
    local b = backends[i]
    if b.running and b.running() then return true end
  end
  return false
end

return loop
