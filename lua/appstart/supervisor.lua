--- appstart.supervisor: keep a set of named services up. It starts them in
-- dependency order (in parallel where they are independent, `parallel` at
-- most at once), restarts them by policy with backoff, gives up on a crash
-- loop, and stops them in reverse order.
--
-- Each service is a state machine, written as data (ACTIONS: state x
-- event -> action), whose states are the ones the user sees:
--
--   stopped  starting  ready  reloading  stopping  backoff  failed
--
-- Events come from its start (started, start_failed), its app (exited, and
-- the app's own reloading / reloaded / app_stopping after ready), its
-- deadline (timer), and the graph (start, stop: what the goals and the
-- dependencies ask for, decided by reconcile). One function, advance(),
-- reads what happened (the supervisor's own epoll set, which holds the
-- descriptor of each start in flight and a pidfd per running app, and the
-- services' deadlines), fires the events, and reconciles the graph; it
-- never waits. A driver calls it and waits in between: a coroutine of the
-- loop the supervisor runs in, or, outside any loop, the call that waits
-- (appstart.supervisor_driver). An idle service costs a descriptor in that
-- set and nothing else: no timer, no task.
local core = require "appstart.core"
local App = require "appstart.app"
local driver = require "appstart.supervisor_driver"
local ending = require "appstart.ending"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"
local settings = require "appstart.settings"
local signal = require "appstart.signal"
local sopts = require "appstart.supervisor_options"
local start = require "appstart.start"

local now = core.now
local format = string.format
local DEFAULT_GRACE = options.DEFAULTS.kill_grace

local M = {}

local Supervisor = {}
Supervisor.__index = Supervisor
Supervisor.__name = "appstart.supervisor"

local UP = { ready = true, reloading = true }
local NONE = setmetatable({}, { __newindex = function() error("appstart.supervisor: NONE is read-only", 2) end })
local DOWN = { stopped = true, failed = true }
local ACTIVE = { starting = true, ready = true, reloading = true, stopping = true, backoff = true }

-------------------------------------------------------------------------------
-- callbacks and logging: nothing the user gives may break the supervisor

-- (escaped, as every log line: the service's name is any string, and what
-- a line quotes, a start's error, may hold a path of the user's; the
-- newlines and tabs of what it quotes are kept, a failed start's last
-- lines of output, a callback's traceback)
local function say(svc, level, fmt, ...)
  if log.drops(svc.log, level) then return end
  svc.log(level, log.printable(svc.name) .. ": " .. log.raised(format(fmt, ...)))
end

--- fn(...) of the user's (or the tap's), that cannot raise into the
-- supervisor: false and what it raised, or true. A ^C is handed
-- on to the caller, but in the supervisor's acting once the act is over
-- (Supervisor:_advance): raised where it lands, it would leave the states
-- half made (a service "ready" whose app had ended, its restart never
-- armed).
local function call_guarded(sv, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return true end
  if loop.interrupt(err) then
    if not sv._busy then error(err, 0) end
    sv._interrupted = sv._interrupted or err
    return true
  end
  return false, err
end

--- A logger of the user's that cannot raise into the supervisor: what it
-- raises goes to the default logger.
local function safe_logger(sv, user)
  return function(level, message)
    local ok, err = call_guarded(sv, user, level, message)
    if not ok then log.default("error", "a log function raised " .. log.raised(err)) end
  end
end

-- A user's callback, queued: callbacks run after the step that caused them
-- (never in the middle of one), one after the other in the order of what
-- caused them. Inside a loop they run in a coroutine of their own (so one
-- may wait, and call the supervisor; the next then waits for it), outside
-- one at once. What one raises is logged with its traceback.
local function enqueue(sv, svc, what, fn, ...)
  local q = sv._queue
  local item = table.pack(svc, what, fn, ...)
  q.last = q.last + 1
  q[q.last] = item
  svc._pending = (svc._pending or 0) + 1
  return item
end

-- An app drives some callbacks (STATUS=, RELOADING=1 and READY=1 after
-- ready; on_exit, as fast as it ends and is restarted), as often as it
-- likes, while one that waits holds the queue: past this many of a
-- service's still to run, each of those gives the one of its kind still
-- queued its arguments instead of queueing one more.
local MAX_PENDING = 64

--- enqueue; but where svc's last callback of this kind (svc[key], the
-- item kept there) is still queued, and is the last in the queue (when
-- adjacent: on_status, which gets the latest status, never a queue of
-- them) or svc has MAX_PENDING queued, that one gets these arguments
-- (item.replaced counts the calls it stands for).
local function enqueue_latest(sv, svc, key, adjacent, what, fn, ...)
  local item, q = svc[key], sv._queue
  if item and not item.ran and ((adjacent and q[q.last] == item) or svc._pending >= MAX_PENDING) then
    -- (fn too: a reload of appstart supervise may have given on_event
    -- another)
    item[3] = fn
    for i = 1, select("#", ...) do item[3 + i] = select(i, ...) end
    item.replaced = (item.replaced or 0) + 1
    return
  end
  svc[key] = enqueue(sv, svc, what, fn, ...)
end

local function run_queued(sv, r)
  local q = sv._queue
  -- (until another runner has taken over: see flush)
  while q.first <= q.last and q.runner == r do
    local item = q[q.first]
    q[q.first], q.first = nil, q.first + 1
    local svc, what = item[1], item[2]
    item.ran, svc._pending = true, svc._pending - 1
    if what == "on_exit" and item.replaced then
      -- (an app's end is told once: those it stands for are said)
      say(svc, "warn", "on_exit: %d end%s before this one not told (%d of the service's callbacks were still to run)",
        item.replaced, item.replaced == 1 and "" or "s", MAX_PENDING)
    end
    local ok, err = xpcall(item[3], loop.traceback, table.unpack(item, 4, item.n))
    if not ok and loop.interrupt(err) then error(err, 0) end
    if not ok then say(svc, "error", "%s raised %s", what, log.raised(err)) end
  end
end

-- Is the coroutine that runs the queue (r: {env, home, co}) still there,
-- for a call from env? A loop that ended with an error closed it; one the
-- caller no longer runs (another kind's, or a cqueues controller left for
-- another) may hold it in a callback that waits, as it may hold the driver
-- (_ensure_driver): a runner in the caller's loop takes over. A caller
-- that can start none (plain) leaves the queue to it, but for one waiting
-- (or yet to begin) in a loop the caller is outside of, which may never
-- run again, where the main thread's: a runner of its own
-- (supervisor_driver's MAIN: spawned where a loop's coroutine served the
-- main thread's supervisor), or any once the main thread drives the
-- supervisor (main: sv._main, a loop's supervisor it took back): a plain
-- script would have run its callbacks inline, in order.
-- The controller a driver or runner runs in (a cqueues controller; nil
-- where the loop has none), held weakly: one the caller left for another
-- is not kept, with its descriptors, by the supervisor.
local WEAK = { __mode = "v" }
local function home_of(env)
  return env.home and setmetatable({ env.home() }, WEAK) or nil
end

local function runner_alive(r, env, main)
  if not (r and r.env.alive() and (not r.co or coroutine.status(r.co) ~= "dead")) then return false end
  -- the main thread's: for any caller inside its loop (whose callbacks
  -- wait for it, in order); not when waiting (or yet to begin) in a loop
  -- the caller is outside of, which may never run again
  if r.env.inside then
    return r.env.inside(r) or (r.co and coroutine.status(r.co) ~= "suspended") or false
  end
  if not env.spawn then
    -- (the caller plain, but a callback of the loop the runner waits in,
    -- uv.run() running: that loop goes on, the runner with it)
    return not main or (r.co and coroutine.status(r.co) ~= "suspended") or (r.env.looping and r.env.looping())
      or false
  end
  return r.env == env and (not env.home or r.home[1] == env.home())
end

local function flush(sv)
  local q = sv._queue
  if q.first > q.last then return end
  local env = driver.current(sv._main)
  if runner_alive(q.runner, env, sv._main) then return end
  -- (one left in another loop stops once its callback returns, if ever)
  local r = { env = env, home = home_of(env), co = false, task = false }
  q.runner = r
  local spawn = env.spawn_runner or env.spawn
  if not spawn then
    -- a callback run here may cause more: this same loop runs them
    local ok, err = pcall(run_queued, sv, r)
    if q.runner == r then q.runner = false end
    if not ok then error(err, 0) end
    return
  end
  -- (a task inside appstart.run; elsewhere nothing)
  r.task = spawn(function()
    r.co = coroutine.running()
    run_queued(sv, r)
    if q.runner == r then q.runner = false end
  end) or false
end

-------------------------------------------------------------------------------
-- the supervisor's epoll set and the services' deadlines

local function get_poller(sv)
  if not sv._poller then sv._poller = core.poller() or false end
  return sv._poller
end

--- Watch fd for svc (its start's descriptor, or its app's pidfd); false
-- when it cannot be (no descriptor left): svc is then probed at
-- appstart.poll_interval instead.
local function watch(sv, svc, fd)
  local p = get_poller(sv)
  if not p or not p:add(fd, svc.id) then
    say(svc, "warn", "cannot watch descriptor %d: probed every %g s", fd, settings.poll_interval)
    return false
  end
  svc.fd = fd
  sv._nwatched = sv._nwatched + 1
  return true
end

-- A start closes its descriptor when it ends (inside h:step()), before the
-- supervisor hears of it: closing takes it out of the set, and this del
-- then finds nothing. Nothing of the supervisor's is added in between, so
-- the number cannot name another of its descriptors yet.
local function unwatch(sv, svc)
  if svc.fd then
    sv._poller:del(svc.fd)
    svc.fd = nil
    sv._nwatched = sv._nwatched - 1
  end
end

local function poller_fd(sv)
  return sv._nwatched > 0 and sv._poller:fd() or nil
end

local function driver_alive(sv)
  local d = sv._driver
  if not d then return false end
  if not d.env.alive() then return false end
  return not d.co or coroutine.status(d.co) ~= "dead"
end

--- Close the set once nothing is watched and no driver waits on it, so a
-- supervisor at rest holds no descriptor (a driver whose loop is gone, a
-- failed appstart.run's, waits on it no more).
local function close_poller(sv)
  if sv._poller and sv._nwatched == 0 and not driver_alive(sv) then
    -- (out of every poll set first: a call of the main thread's that waits
    -- on it in another loop's coroutine, left there, is woken to look again)
    if loop.polled() then loop.release(sv._poller:fd()) end
    sv._poller:close()
    sv._poller = false
  end
end

--- Is what svc's last app left in its group (kill_mode "group": it
-- ended by itself, and its group is being seen to, SIGKILL after
-- kill_grace) still there? A stop waits for it, as for a running app's.
-- (sv._left: svc -> that app, until they are gone)
local function leftover(sv, svc)
  local app = sv._left[svc]
  if not app then return false end
  local rest = App.leftover(app)
  -- (nil: they could not be looked at, out of descriptors: not gone)
  if rest and rest:rest() ~= 0 then return true end
  -- (in a plain script its watch would see them gone at its next look)
  if rest and not loop.served() then App.leftover_gone(app) end
  -- (a change: whoever waits for the stop looks again)
  sv._left[svc], sv._changed = nil, true
  return false
end

--- When svc next needs a look without a descriptor telling: its start's
-- next step, the end of its backoff, its stop's escalation, a probe where
-- there is no pidfd, what its last app left in its group.
local function rearm(sv, svc)
  local t, wake = now(), nil
  if svc.h then
    wake = t + svc.h:timeout()
    if not svc.fd then wake = math.min(wake, t + settings.poll_interval) end
  elseif svc.app then
    if not svc.fd then wake = t + settings.poll_interval end
    if svc.state == "stopping" and svc.escalate_at then
      wake = wake and math.min(wake, svc.escalate_at) or svc.escalate_at
    end
  elseif svc.state == "backoff" then
    if not svc.due then
      wake = svc.backoff_until
    elseif svc.started_in == sv._round then
      -- started once by this advance already (a service starts at most
      -- once an advance): the next one starts it again
      wake = t
    end
    -- (else due: started as soon as the graph allows, by the advance that
    -- frees its slot or readies what it comes after; no deadline, or a
    -- service that cannot start yet would have every wait return at once)
  end
  -- (a group cannot be waited on: looked at every poll_interval)
  if sv._left[svc] and leftover(sv, svc) then
    wake = math.min(wake or math.huge, t + settings.poll_interval)
  end
  if wake ~= svc.wake then
    svc.wake = wake
    -- a driver waiting for a later deadline (or none) must look again
    local d = sv._driver
    if wake and d and d.waiting and (not d.until_ or wake < d.until_) then sv._rewake = true end
  end
  sv._timed[svc] = wake and true or nil
  -- without a descriptor: looked at by every advance too, so a call of a
  -- plain script sees an end at once
  sv._probed[svc] = (svc.h or svc.app) and not svc.fd or nil
end

local function next_deadline(sv)
  local at
  for svc in pairs(sv._timed) do
    if not at or svc.wake < at then at = svc.wake end
  end
  return at
end

-------------------------------------------------------------------------------
-- transitions

local ACTIONS -- state -> event -> action(sv, svc, ...), below

--- Fire event at svc: the action its state has for it, if any; then its
-- deadline follows its new state.
local function fire(sv, svc, event, ...)
  local action = ACTIONS[svc.state][event]
  if action then action(sv, svc, ...) end
  rearm(sv, svc)
end

-- The tap (M.set_tap: appstart supervise's writer of its events and
-- STATUS=) told of svc's new state now, in the step: never queued behind
-- a callback of the user's that waits, whose queue merges a service's
-- events past MAX_PENDING (--json lost them, STATUS= came late). It never
-- waits nor calls the supervisor; what it raises is logged, a ^C handed
-- on as a log function's is (safe_logger).
local function tell_tap(sv, svc, state, info)
  local ok, err = call_guarded(sv, sv._tap, svc.name, state, info)
  if not ok then say(svc, "error", "the event's writer raised %s", log.raised(err)) end
end

--- svc enters `state`: on_event(name, state, info), with info.restarts.
local function transition(sv, svc, state, info)
  local was = svc.state
  svc.state, svc.since = state, os.time()
  -- (counted: a wait for a stop is met by one since it began, though a
  -- start in the same step took the service up again)
  if DOWN[state] and not DOWN[was] then svc.downs = (svc.downs or 0) + 1 end
  if ACTIVE[was] and not ACTIVE[state] then sv._nactive = sv._nactive - 1
  elseif ACTIVE[state] and not ACTIVE[was] then sv._nactive = sv._nactive + 1 end
  sv._changed, sv._dirty = true, true
  info.restarts = svc.restarts
  if not log.drops(svc.log, "debug") then
    local why = info.err or info.how
    say(svc, "debug", "%s%s%s", state, info.pid and (" (pid " .. info.pid .. ")") or "",
      why and (": " .. tostring(why)) or "")
  end
  if sv._tap then tell_tap(sv, svc, state, info) end
  if sv._on_event then enqueue_latest(sv, svc, "_event_item", false, "on_event", sv._on_event, svc.name, state, info) end
end

local function backoff_delay(b, n)
  if b.initial <= 0 then return 0 end
  local d = b.initial * b.factor ^ (n - 1)
  if d > b.max then d = b.max end
  if b.jitter > 0 then d = d * (1 + b.jitter * (2 * math.random() - 1)) end
  return d
end

-- Did the app fail (for restart = "on-failure" and the burst count)? A
-- signal the supervisor sent (the reload signal, while a reload it sent
-- is under way or has ended in an error) is not a failure; a
-- watchdog kill, an exit code outside success_codes and an end whose
-- status is not knowable are.
local function failed_exit(svc, how)
  if how.watchdog then return true end
  if how.code then return not svc.cfg.success[how.code] end
  if how.signal then return not (svc.sent and (svc.sent[how.signal] or 0) > 0) end
  return true
end

local function release_app(sv, svc)
  unwatch(sv, svc)
  if svc.proc then
    loop.close_process(svc.proc)
    svc.proc = nil
  end
  local app = svc.app
  svc.app, svc.escalate_at = nil, nil
  return app
end

-- The app is ready no more (it ended, or is stopped): the run of restarts
-- starts again once it stayed ready long enough, however it ends.
local function no_more_ready(svc, t)
  if svc.ready_at and t - svc.ready_at >= svc.cfg.reset_after then svc.streak = 0 end
  svc.ready_at = nil
end

-- The reasons of a burst kept (status().reasons, info.reasons of
-- "failed"): those of its last failures, this many at most.
local REASONS_KEPT = 64

-- A ring (a table: w[1 .. w.cap], the oldest at w.head, w.n of them):
-- a queue whose slots are reused, so that it stays in the table's array
-- part (16 bytes a number), as a queue whose indices grow does not.
local function ring_at(w, i)
  return w[(w.head + i - 2) % w.cap + 1]
end

local function ring_push(w, x) -- (w not full)
  w[(w.head + w.n - 1) % w.cap + 1] = x
  w.n = w.n + 1
end

local function ring_shift(w)
  w[w.head] = nil
  w.head, w.n = w.head % w.cap + 1, w.n - 1
end

-- w's ring made again with cap slots (cap >= w.n), its other fields kept.
local function ring_resized(w, cap)
  local r = {}
  for i = 1, w.n do r[i] = ring_at(w, i) end
  for k, v in pairs(w) do
    if math.type(k) ~= "integer" then r[k] = v end
  end
  r.head, r.cap = 1, cap
  return r
end

-- reason (a how, or a failed start's error) said with what is decided
-- for it: after its message, before the app's output lines an error's
-- tostring ends with (after them, the decision read as the app's own
-- last line).
local function decided(reason, decision)
  local first, rest = tostring(reason):match("^([^\n]*)(.*)$")
  return first .. decision .. rest
end

--- The app (or its start) has ended by itself: the restart policy.
-- reason: a how, or the error of a failed start (start_failed).
-- When it ended: now, but for an end that a call of a plain script finds,
-- which counts from the last look (sv._looked_at): nothing looked between
-- calls, and the app is counted ready only as long as a call saw it.
local function apply_policy(sv, svc, reason, start_failed)
  local cfg, t, pid = svc.cfg, now(), svc.pid or nil
  local ended = sv._looked_at and math.min(sv._looked_at, t) or t
  local key = start_failed and "err" or "how"
  svc.pid, svc.last, svc.reasons, svc.failures = nil, reason, nil, nil
  no_more_ready(svc, ended)
  if svc.goal == "down" or svc.restart_pending then
    svc.restart_pending = nil
    return transition(sv, svc, "stopped", { pid = pid, [key] = reason })
  end
  local failure = start_failed or failed_exit(svc, reason)
  if failure then
    -- the failures within burst_interval, oldest first (burst + 1 at most:
    -- one more gives up): their times, which the count needs (each one
    -- leaves the window in its turn), as numbers in a ring; their
    -- reasons, the last REASONS_KEPT only (a huge burst, a "never give
    -- up", kept a table for each failure of the hour: 300 MB an hour)
    local w = svc.window
    if w == NONE then
      w = { head = 1, n = 0, cap = 8, why = { head = 1, n = 0, cap = REASONS_KEPT } }
    elseif w.n == w.cap then
      w = ring_resized(w, w.cap * 2)
    end
    ring_push(w, ended)
    if w.why.n == REASONS_KEPT then ring_shift(w.why) end
    ring_push(w.why, reason)
    while w.n > 1 and ended - w[w.head] > cfg.burst_interval do ring_shift(w) end
    -- (a burst over leaves no room behind: the ring is made smaller)
    if w.cap > 8 and w.n * 4 <= w.cap then w = ring_resized(w, w.cap // 2) end
    svc.window = w
    local n = w.n
    if n > cfg.burst then
      -- (the last of the window's: the reasons kept are the latest)
      local reasons, why = {}, w.why
      for i = why.n - math.min(n, why.n) + 1, why.n do reasons[#reasons + 1] = ring_at(why, i) end
      -- (its times are no longer needed: a start from failed counts anew)
      svc.window, svc.reasons, svc.failures = NONE, reasons, n
      say(svc, "error", "%d failures within %g s, the last: %s", n, cfg.burst_interval,
        decided(reason, "; not restarted until started again"))
      return transition(sv, svc, "failed", { pid = pid, [key] = reason, reasons = reasons })
    end
  end
  if not (cfg.restart == "always" or (cfg.restart == "on-failure" and failure)) then
    svc.goal = "down"
    if failure then say(svc, "warn", "%s", decided(reason, format("; not restarted (restart = \"%s\")", cfg.restart))) end
    return transition(sv, svc, "stopped", { pid = pid, [key] = reason })
  end
  svc.streak = svc.streak + 1
  local delay = backoff_delay(cfg.backoff, svc.streak)
  svc.backoff_until, svc.due = t + delay, delay <= 0
  if failure then say(svc, "warn", "%s", decided(reason, format("; restart in %.3g s", delay))) end
  transition(sv, svc, "backoff", { pid = pid, [key] = reason, delay = delay })
end

local stopped -- below

-- The failed appstart.run the service's start or app belonged to ended it,
-- as it ends every app of its own (an error in a task: nobody is left to
-- stop them): a stop, as sv:stop's, not a failure for the policy to undo.
local function stopped_by_run(sv, svc, reason, is_err)
  svc.goal, svc.revive, svc.restart_pending = "down", false, false
  return stopped(sv, svc, reason, is_err)
end

local function start_failed(sv, svc, err, h)
  if h and h._run_failed then return stopped_by_run(sv, svc, err, true) end
  err.service = svc.name
  svc.fail_seq, svc.fail_err = svc.fail_seq + 1, err
  apply_policy(sv, svc, err, true)
end

-- What the app said last (a STATUS= read as it ended, whose on_status
-- call the app has queued, not run yet): told now, before its on_exit
-- (the call the app queued then finds it told).
local function last_status(sv, svc, app)
  if app.status and app.status ~= svc.status and svc.opts.on_status then
    svc.opts.on_status(app, app.status)
  end
  sv._told[app] = true
end

local function ended(sv, svc, how)
  if svc.app._run_failed then return stopped_by_run(sv, svc, how, false) end
  local app = release_app(sv, svc)
  -- (what it left in its group: a stop waits for it to be gone)
  if App.leftover(app) then sv._left[svc] = app end
  last_status(sv, svc, app)
  if svc.on_exit then enqueue_latest(sv, svc, "_exit_item", false, "on_exit", svc.on_exit, app, how) end
  apply_policy(sv, svc, how, false)
end

-- A stop the supervisor asked for is over: stopped, no policy.
function stopped(sv, svc, reason, is_err)
  local pid = svc.pid or nil
  if svc.app then
    local app = release_app(sv, svc)
    last_status(sv, svc, app)
    if svc.on_exit and not is_err then
      enqueue_latest(sv, svc, "_exit_item", false, "on_exit", svc.on_exit, app, reason)
    end
  end
  no_more_ready(svc, now())
  svc.pid, svc.by_us, svc.restart_pending = nil, nil, nil
  svc.last, svc.reasons, svc.failures = reason, nil, nil
  transition(sv, svc, "stopped", { pid = pid, [is_err and "err" or "how"] = reason })
end

local function app_state_changed(sv, svc, app, state) -- the app's own, after ready
  if svc.app ~= app then return end
  if state == "reloading" then fire(sv, svc, "reloading")
  elseif state == "ready" then fire(sv, svc, "reloaded")
  elseif state == "stopping" then fire(sv, svc, "app_stopping") end
  sv:_advance()
end

--- Follow svc's app until it ends: through a pidfd of the supervisor's
-- own (the app keeps its own: neither can close the other's), probed
-- where there is none.
local function follow(sv, svc)
  local app = svc.app
  if app.state == "exited" then return fire(sv, svc, "exited", app.how) end
  local proc = core.process(app.pid)
  if not proc then -- gone meanwhile, or no descriptor left
    if app.state == "exited" then return fire(sv, svc, "exited", app.how) end
    say(svc, "warn", "cannot open a pidfd for pid %d: probed every %g s", app.pid, settings.poll_interval)
    return
  end
  svc.proc = proc
  local fd = proc:fd()
  if fd then watch(sv, svc, fd) end
end

local finish_start -- below

-- A start stepped: true once it is done. A ^C out of the step (its check
-- function's) cancels it, as an interrupted start is cancelled (its end
-- a failed start, for the policy), and is handed on once the act is over
-- (raised here, it left the start stalled: the service "starting" for
-- good, and sv:up() raised "nothing left to wait for").
local function step_start(sv, svc)
  local h = svc.h
  local ok, done = pcall(h.step, h)
  if ok then return done end
  if not (loop.interrupt(done) and sv._busy) then error(done, 0) end
  sv._interrupted = sv._interrupted or done
  return h:abandon()
end

local function begin(sv, svc)
  local ok, h
  if svc.opts.watchdog then
    -- its pings are read while a call of the supervisor's waits, even
    -- outside any loop (appstart.supervisor_driver)
    ok, h = driver.served(start.begin, svc.opts, "appstart.supervisor", 1)
  else
    ok, h = pcall(start.begin, svc.opts, "appstart.supervisor", 1)
  end
  -- (a ^C out of it, where no act held it back: the caller interrupted,
  -- the start undone by its own guard; the service, left as it was, is
  -- begun again by a later advance)
  if not ok and loop.interrupt(h) then error(h, 0) end
  if svc.state == "backoff" and not svc.asked then svc.restarts = svc.restarts + 1 end
  if svc.state == "failed" then svc.window, svc.streak, svc.reasons, svc.failures = NONE, 0, nil, nil end
  -- a stop ended the run of restarts (as systemd flushes its count at the
  -- next start), and so does the user's start of a service in backoff
  -- (sv:start, sv:restart): the backoff starts from its initial delay again
  if svc.state == "stopped" or svc.asked then svc.streak = 0 end
  svc.asked = nil
  svc.due, svc.revive, svc.backoff_until, svc.status, svc.sent = nil, nil, nil, nil, nil
  -- (when it last took a slot: see reconcile)
  sv._begun = sv._begun + 1
  svc.begun = sv._begun
  transition(sv, svc, "starting", {})
  if not ok then -- checked when added: what raises now is the world (a user removed)
    return start_failed(sv, svc, errors.new("spawn", tostring(h), nil, svc.name))
  end
  svc.h = h
  sv._inflight = sv._inflight + 1
  -- a check function that returns says so outside the start's descriptor
  -- (which is in the supervisor's own poll set): looked at now
  h:on_wake(function()
    if svc.h ~= h then return end
    svc.wake = now()
    sv._timed[svc] = true
    sv:_advance()
  end)
  if step_start(sv, svc) then return finish_start(sv, svc) end
  local fd = h:pollfd()
  if fd then watch(sv, svc, fd) end
end

function finish_start(sv, svc)
  local h = svc.h
  unwatch(sv, svc)
  svc.h = nil
  sv._inflight = sv._inflight - 1
  if h.app then return fire(sv, svc, "started", h.app) end
  fire(sv, svc, "start_failed", h.err, h)
end

local function started(sv, svc, app)
  svc.app, svc.pid, svc.ready_at, svc.ready_seq = app, app.pid, now(), svc.ready_seq + 1
  -- the app calls this on each change it reports after ready (notify)
  app._on_state = function(a, state) app_state_changed(sv, svc, a, state) end
  transition(sv, svc, "ready", { pid = app.pid })
  follow(sv, svc)
end

local function cancel_start(sv, svc)
  svc.by_us = true
  transition(sv, svc, "stopping", {})
  if svc.h:abandon() then finish_start(sv, svc) end
end

local function stop_app(sv, svc)
  local app = svc.app
  svc.by_us = true
  if svc.state ~= "stopping" then transition(sv, svc, "stopping", { pid = svc.pid or nil }) end
  if app.state == "exited" then return fire(sv, svc, "exited", app.how) end
  App.watchdog_over(app) -- (a stop: a shutdown that sends no ping is no hang)
  -- (a stop's signals: counted in how.left, the main's end on them no
  -- crash, its group not sent SIGTERM again)
  local ok, message = App.stop_signal(app, "TERM")
  -- (a cgroup's members that may not be signalled, an app of another
  -- user's whose main has ended: its cgroup.kill is the supervisor's
  -- own, after the grace)
  if not ok and svc.opts.kill_mode == "cgroup" and app.state ~= "exited" then
    say(svc, "warn", "cannot send pid %d SIGTERM: %s; SIGKILL to its cgroup after kill_grace", app.pid,
      tostring(message))
    ok = true
  end
  if not ok then
    if app.state == "exited" then return fire(sv, svc, "exited", app.how) end
    -- it cannot be signalled (an app of another user, for a launcher
    -- that is not root): let go of it
    say(svc, "error", "cannot stop pid %d: %s; no longer supervised", app.pid, tostring(message))
    local err = errors.new("stop", "cannot stop the app: " .. tostring(message), { pid = app.pid }, svc.name)
    release_app(sv, svc):close()
    return stopped(sv, svc, err, true)
  end
  App.stop_signal(app, "CONT") -- a stopped process gets its TERM too
  svc.escalate_at, svc.escalated = now() + (svc.opts.kill_grace or DEFAULT_GRACE), nil
end

local function escalate(sv, svc)
  if not svc.app then return end -- a start being cancelled escalates by itself
  if not svc.escalated then
    say(svc, "info", "pid %d still there after kill_grace: SIGKILL", svc.pid)
    App.stop_signal(svc.app, "KILL")
    svc.escalated, svc.escalate_at = true, now() + ending.KILL_WAIT
    return
  end
  say(svc, "error", "pid %d still there %g s after SIGKILL: given up", svc.pid, ending.KILL_WAIT)
  release_app(sv, svc):close()
  stopped(sv, svc, errors.how({}), false)
end

local function drop_backoff(sv, svc)
  svc.due, svc.backoff_until, svc.restart_pending = nil, nil, nil
  transition(sv, svc, "stopped", {})
end

local function due(sv, svc)
  svc.due = true
  sv._dirty = true
end

local function to(state)
  return function(sv, svc) transition(sv, svc, state, { pid = svc.pid or nil }) end
end

local function app_stopping(sv, svc)
  svc.by_us = nil
  transition(sv, svc, "stopping", { pid = svc.pid or nil })
end

local function exited_while_stopping(sv, svc, how)
  if not svc.by_us then return ended(sv, svc, how) end -- it stopped by itself (STOPPING=1): the policy decides
  -- kill_mode "group": what the app left in its group is waited for too,
  -- within kill_grace (SIGKILL after), as app:terminate does; looked at
  -- every poll_interval (a group cannot be waited on)
  local rest = App.leftover(svc.app)
  -- (nil: they could not be looked at, out of descriptors: not gone)
  if rest and rest:rest() ~= 0 then
    local t = now()
    if svc.escalate_at and t >= svc.escalate_at then
      if svc.escalated then
        say(svc, "error", "processes of pid %d's group still there %g s after SIGKILL: given up", svc.pid,
          ending.KILL_WAIT)
        return stopped(sv, svc, how, false)
      end
      say(svc, "info", "processes of pid %d's group still there after kill_grace: SIGKILL", svc.pid)
      signal.rest(rest, svc.app._opts, "KILL", svc.app._log, svc.app._program)
      svc.escalated, svc.escalate_at = true, t + ending.KILL_WAIT
    end
    -- (its pidfd, readable for good now, is looked at no more)
    if svc.fd then unwatch(sv, svc) end
    return
  end
  if rest then App.leftover_gone(svc.app) end
  stopped(sv, svc, how, false)
end

local function stop_while_stopping(sv, svc)
  if not svc.by_us and svc.app then stop_app(sv, svc) end
end

--- What each state does with each event; an event a state does not list
-- is ignored there.
ACTIONS = {
  stopped = { start = begin },
  failed = { start = begin },
  backoff = { start = begin, stop = drop_backoff, timer = due },
  starting = {
    started = started,
    start_failed = start_failed,
    stop = cancel_start,
  },
  ready = {
    exited = ended,
    stop = stop_app,
    reloading = to("reloading"),
    app_stopping = app_stopping,
  },
  reloading = {
    exited = ended,
    stop = stop_app,
    reloaded = to("ready"),
    app_stopping = app_stopping,
  },
  stopping = {
    exited = exited_while_stopping,
    start_failed = function(sv, svc, err) stopped(sv, svc, err, true) end,
    started = function(sv, svc, app) -- handed over as it was cancelled
      svc.app, svc.pid = app, app.pid
      follow(sv, svc)
      if svc.app then stop_app(sv, svc) end
    end,
    timer = escalate,
    stop = stop_while_stopping,
  },
}

-------------------------------------------------------------------------------
-- reading what happened

--- Look at svc: step its start, see whether its app has ended, act on its
-- deadline. fired: its descriptor was readable.
local function poke(sv, svc, fired)
  if svc.h then
    -- (not from inside its own check function, which called the
    -- supervisor: its start is stepped once the check returns)
    if not start.in_own_check(svc.h) and step_start(sv, svc) then finish_start(sv, svc) end
  elseif svc.app then
    local app = svc.app
    -- the supervisor's own handle first: seen gone there, the app (asked
    -- next) sees it gone too, unless its handle was closed
    local gone = svc.proc and (fired or (not svc.fd and svc.proc:poll()))
    if app.state == "exited" then
      fire(sv, svc, "exited", app.how)
    elseif gone then
      -- the pid followed has ended and the app says it runs: its main pid
      -- moved (MAINPID=), or its handle was closed by someone else
      unwatch(sv, svc)
      local old, old_pid = svc.proc, svc.proc:pid()
      svc.proc = nil
      loop.close_process(old)
      if app.pid ~= old_pid then
        svc.pid = app.pid
        follow(sv, svc)
      elseif not app._proc then
        fire(sv, svc, "exited", errors.how({}))
      end
      -- else its main has exited and its group or cgroup has not ended
      -- yet: the app is asked again at each look (probed: its descriptor
      -- is the app's, which closes it when it ends) until it says exited,
      -- with how its main ended
    end
    -- (an app that has exited, its group not yet: exited_while_stopping
    -- escalates for its group)
    if svc.app and svc.state == "stopping" and svc.escalate_at and now() >= svc.escalate_at
      and svc.app.state ~= "exited" then
      fire(sv, svc, "timer")
    end
  elseif svc.state == "backoff" and not svc.due and now() >= svc.backoff_until then
    fire(sv, svc, "timer")
  end
  rearm(sv, svc)
end

-------------------------------------------------------------------------------
-- the graph

-- Will one of what svc needs not come back without a new request?
local function needs_lost(svc)
  for _, n in ipairs(svc.needs) do
    if n.state == "failed" or (n.state == "stopped" and n.goal == "down") or n._blocked then return true end
  end
  return false
end

--- Which services should be up now (_keep), and which are stopped for
-- good until someone asks (_blocked), in dependency order.
local function assess(sv)
  for _, svc in ipairs(sv._order) do
    local keep = svc.goal == "up" and not svc.restart_pending
    for _, n in ipairs(svc.needs) do
      if not (n._keep and UP[n.state]) then keep = false end
    end
    local blocked = #svc.needs > 0 and needs_lost(svc)
    -- nil rather than false: a field set to false takes a slot in the table
    svc._keep = keep or nil
    -- (a failed one asked to start again, revive, waits as a stopped one)
    svc._blocked = blocked and svc.goal == "up" and (svc.state == "stopped" or (svc.state == "failed" and svc.revive))
      or nil
  end
end

-- Each of svc.after is ready, or failed, or will not come without a new
-- request.
local function after_settled(svc)
  for _, a in ipairs(svc.after) do
    if not (UP[a.state] or a.state == "failed" or (a.state == "stopped" and (a.goal == "down" or a._blocked))) then
      return false
    end
  end
  return true
end

-- Every dependent of svc that is going down has stopped, or waits in
-- backoff (no app), and so has every one of theirs: "dependents before
-- what they need" (one down in between, what needs it may be stopping
-- still: db stopped before web, through api in backoff). seen: those
-- looked at already (a dependent reached by two ways).
local function dependents_down(svc, seen)
  for _, d in ipairs(svc.dependents) do
    if not d._keep then
      if not DOWN[d.state] and d.state ~= "backoff" then return false end
      if d.dependents ~= NONE then
        seen = seen or {}
        if not seen[d] then
          seen[d] = true
          if not dependents_down(d, seen) then return false end
        end
      end
    end
  end
  return true
end

-- A service in backoff that should not run now: stopped (its delay
-- dropped) when it is to stay down, but one kept down only by what it
-- needs, which will be back, waits on in backoff: its delay holds, and
-- it starts once both that is over and what it needs is ready.
local function drops_backoff(svc)
  if svc.goal ~= "up" or svc.restart_pending or needs_lost(svc) then return true end
  -- (one of what it needs is being stopped for good: it goes first)
  for _, n in ipairs(svc.needs) do
    if n.goal == "down" then return true end
  end
  return false
end

-- May svc start now, a slot aside (once an advance at most)?
local function may_start(sv, svc, round)
  local st = svc.state
  return svc._keep and svc.started_in ~= round
    and (st == "stopped" or (st == "backoff" and svc.due) or (st == "failed" and svc.revive))
    and after_settled(svc) and dependents_down(svc)
    -- what its last run left in its group is gone first (SIGTERM at its
    -- end, SIGKILL after kill_grace), as systemd restarts a unit once its
    -- processes are: the next run would meet them (a port, a lock, a pid
    -- file still held), and runs of a crash loop stacked up (looked at
    -- every poll_interval meanwhile: rearm)
    and not (sv._left[svc] and leftover(sv, svc))
end

--- Stop what should not run (dependents first), then start what should
-- and may (needs ready, after settled, the dependents it took down
-- stopped, a start slot free), in order. A
-- service starts at most once per advance: one whose start fails at once
-- with no backoff is started again at the next.
local function reconcile(sv)
  assess(sv)
  local order = sv._order
  for i = #order, 1, -1 do
    local svc = order[i]
    local st = svc.state
    if not svc._keep and ACTIVE[st] and not (st == "stopping" and svc.by_us) then
      if st == "backoff" then
        -- (no app of its own, but its stop is what sv:stop waits for)
        if drops_backoff(svc) and dependents_down(svc) then fire(sv, svc, "stop") end
      elseif dependents_down(svc) then
        fire(sv, svc, "stop")
      end
    end
  end
  if sv._inflight >= sv._parallel then return end
  local round, waiting = sv._round, nil
  for _, svc in ipairs(order) do
    if may_start(sv, svc, round) then
      waiting = waiting or {}
      waiting[#waiting + 1] = svc
    end
  end
  if not waiting then return end
  -- more than the slots free: the service that has waited longest for
  -- one first (one never started yet, in order), so that one that fails at
  -- once and restarts with no delay does not take every slot
  if #waiting > sv._parallel - sv._inflight then
    local at = {}
    for i, svc in ipairs(waiting) do at[svc] = i end
    table.sort(waiting, function(x, y)
      local bx, by = x.begun or 0, y.begun or 0
      if bx ~= by then return bx < by end
      return at[x] < at[y]
    end)
  end
  for _, svc in ipairs(waiting) do
    if sv._inflight >= sv._parallel then break end
    -- (asked again: a start fired before may have changed the graph)
    if may_start(sv, svc, round) then
      svc.started_in = round
      fire(sv, svc, "start")
    end
  end
end

-- The body of advance: descriptors, deadlines, then the graph until it
-- settles.
local function advance_body(sv)
  local p = sv._poller
  if p and sv._nwatched > 0 then
    local fired = sv._fired
    local n
    repeat
      n = assert(p:wait(0, fired))
      for i = 1, n do
        local svc = sv._by_id[fired[i]]
        fired[i] = nil
        if svc then poke(sv, svc, true) end
      end
    until n < 256
  end
  if next(sv._timed) then
    local t, due_now = now(), {}
    for svc in pairs(sv._timed) do
      if svc.wake <= t or sv._probed[svc] then due_now[#due_now + 1] = svc end
    end
    for _, svc in ipairs(due_now) do poke(sv, svc, false) end
  end
  -- starts that a failed appstart.run abandoned (it ends what it began)
  -- say so on no descriptor: looked at once such a run has failed
  if sv._failed_runs ~= loop.failed_runs then
    sv._failed_runs = loop.failed_runs
    for _, svc in ipairs(sv._order) do
      if svc.h and svc.h.done then finish_start(sv, svc) end
    end
  end
  for _ = 1, 4 * #sv._order + 8 do
    sv._dirty = false
    reconcile(sv)
    if not sv._dirty then break end
  end
end

--- Act on everything that has happened, without waiting; then run the
-- callbacks it queued and wake whoever waits for a change. Safe to call
-- from anywhere (a callback of the app's, a call of the user's): called
-- during itself, it has the running one go round again.
function Supervisor:_advance()
  if self._busy then
    -- (its end wakes every wait: one may wait for it, see drive)
    self._dirty, self._changed = true, true
    return
  end
  -- (busy: the coroutine that advances it, the main thread's included)
  self._busy = coroutine.running()
  -- (and the loop it runs in: a wait from another cannot wait for it)
  local at = driver.current(self._main)
  self._busy_env, self._busy_home = at, at.home and at.home() or false
  self._round = self._round + 1
  local looked = now()
  local ok, err
  do
    -- busy no more however the body ends: a log function that waits
    -- inside it may have its coroutine closed there (its run failed), and
    -- every advance after would do nothing
    local _ <close> = self._unbusy
    ok, err = pcall(advance_body, self)
  end
  if not ok then
    -- (a ^C in a callback, say: what waits on this advance, held by it,
    -- is woken to look again, or it would wait for a later one; a ^C a
    -- log function took is handed on with it, never by a later call)
    self._interrupted = false
    for w, env in pairs(self._waiters) do env.wake(w) end
    error(err, 0)
  end
  -- (a ^C a log function took, handed on at the end; taken now: a ^C of a
  -- callback's the flush runs goes on instead, never both, nor this one
  -- at a later call)
  local interrupted = self._interrupted
  self._interrupted = false
  flush(self)
  if self._changed then
    for w, env in pairs(self._waiters) do env.wake(w) end
  elseif self._rewake and self._driver and self._driver.waiting then
    self._driver.env.wake(self._driver.waiter)
  end
  self._changed, self._rewake = false, false
  -- inside a loop, a task of its own goes on while anything is active
  local env = driver.current(self._main)
  if env.spawn then self:_ensure_driver(env) end
  if driver_alive(self) then
    self._looked_at = nil -- a driver waits on the set: an end is seen as it comes
  else
    self._looked_at = looked -- till a call waits on the set again
    close_poller(self)
  end
  -- a ^C a log function took during the act, handed on now that it is over
  if interrupted then error(interrupted, 0) end
end

-------------------------------------------------------------------------------
-- drivers

local function idle(sv)
  return sv._nactive == 0 and next(sv._left) == nil
end

--- The driver in the background of a loop: advances whenever the set is
-- readable, a deadline passes or something changes, until nothing is
-- left to supervise (every service stopped or failed).
local function drive_background(sv, d)
  d.co = coroutine.running()
  local env = d.env
  local waiter = env.waiter()
  d.waiter = waiter
  while sv._driver == d do -- (until replaced: see _ensure_driver)
    sv:_advance()
    if idle(sv) or sv._driver ~= d then break end
    sv._waiters[waiter] = env
    d.waiting, d.until_ = true, next_deadline(sv)
    -- under cqueues or luv, what the main thread began (a served start's
    -- notify socket and watchdog, in the shared poller) is served here
    -- too, as a plain call that waits would serve it
    local outside_fd, outside_at = nil, nil
    if env.outside then outside_fd, outside_at = loop.outside() end
    local wake = d.until_
    if outside_at and (not wake or outside_at < wake) then wake = outside_at end
    d.fd = poller_fd(sv)
    local ok = env.wait(waiter, d.fd, wake, outside_fd)
    if env.outside then loop.serve_outside() end
    d.waiting, d.until_ = false, false
    sv._waiters[waiter] = nil
    if ok == nil then break end
  end
  if sv._driver == d then sv._driver = false end
  close_poller(sv)
end

function Supervisor:_ensure_driver(env)
  local home = home_of(env)
  local old = self._driver
  -- a driver in another loop (another kind's, or a cqueues controller
  -- the caller may never run again) is replaced by one in the caller's
  if driver_alive(self) and old.env == env and (not home or old.home[1] == home[1]) then
    self._main = false
    return
  end
  if idle(self) then return end
  -- driven by that loop from now on, it is the loop's (supervisor_driver's
  -- MAIN no more), till a call of the main thread's drives it again
  self._main = false
  if old and old.waiter then self._waiters[old.waiter] = nil end
  local d = { env = env, home = home, co = false, waiter = false, waiting = false, until_ = false, fd = nil }
  self._driver = d
  env.spawn(function() drive_background(self, d) end)
end

local function cancelled(what)
  return errors.new("cancelled", what .. ": cancelled")
end

--- Nothing left to supervise, and the caller outside any loop (the main
-- thread, once cq:loop() or uv.run() has returned, which may never run
-- again): the driver waiting in that loop is let go of, its wait taken
-- out of the loop's poll set, so that the set can be closed now, not
-- when that loop runs again or is collected. Run there (woken, or
-- started: one spawned that never ran), it finds itself replaced and
-- ends; a later call inside a loop makes a new one.
local function let_go_of_driver(sv)
  local d = sv._driver
  if not d or not idle(sv) then return end
  sv._driver = false
  if d.waiter then sv._waiters[d.waiter] = nil end
  if d.waiting and d.env.abandon then d.env.abandon(d.waiter, d.fd) end
end

--- Wait until cond() is true, then return what it returned after the
-- true. Inside a loop the background driver advances and wakes the
-- caller; anywhere else the caller drives, waiting on the set until the
-- next deadline.
local function drive(sv, what, cond, until_)
  -- (driven by the main thread, it is the main thread's again)
  if driver.current(false) == driver.PLAIN then sv._main = true end
  local env = driver.current(sv._main)
  -- from inside its own advance (a log function's call): each advance
  -- would find it busy, and the wait never end; so from a coroutine that
  -- advance resumed (a nested appstart.run: the advancing one is "normal",
  -- waiting for this one to yield or end; it said "waiting forever")
  local busy = sv._busy
  if busy and (busy == coroutine.running() or coroutine.status(busy) == "normal") then
    error("appstart: " .. what .. " cannot wait inside the supervisor's own log function (the supervisor is"
      .. " acting on what it logs): what it asked for goes on, not waited for", 3)
  end
  local waiter
  while true do
    sv:_advance()
    -- another coroutine's advance under way, its log function waiting:
    -- the states are half made (a service still "stopped" whose start has
    -- spawned its app), and what cond() read of them was a lie (sv:down()
    -- said true, its app running on); that advance's end wakes this wait
    local held = sv._busy and sv._busy ~= coroutine.running()
    -- (a wait that nothing here would end: in a plain script, or in
    -- another loop than the one that advance waits in, or in another
    -- controller of it)
    if held and (not env.spawn or sv._busy_env ~= env or (env.home and sv._busy_home ~= env.home())) then
      error("appstart: " .. what .. ": the supervisor is held by its log function, which waits in a coroutine"
        .. " that is not running here (a task of another loop, or of one not run meanwhile): call it from that"
        .. " loop, or once the log function has returned; what it asked for goes on", 3)
    end
    local done, a, b
    if not held then done, a, b = cond() end
    if done then
      if not env.spawn then let_go_of_driver(sv) end
      if not driver_alive(sv) then close_poller(sv) end
      -- (true alone, not true, nil: what the REPL shows)
      if b == nil then return a end
      return a, b
    end
    if env.spawn then
      waiter = waiter or env.waiter()
      sv._waiters[waiter] = env
      local ok = env.wait(waiter, nil, until_)
      sv._waiters[waiter] = nil
      if ok == nil then return nil, cancelled(what) end
    else
      local fd, deadline = poller_fd(sv), next_deadline(sv)
      if until_ and (not deadline or until_ < deadline) then deadline = until_ end
      if not fd and not deadline then
        error(what .. ": nothing left to wait for, and the state asked for never came (a bug)", 0)
      end
      -- (the poller held while a wait in another loop's poll set polls its
      -- descriptor: a supervisor dropped meanwhile is not closed under it)
      local ok = env.wait(fd and sv._poller or nil, fd, deadline)
      sv._looked_at = nil -- waited on the set: an end that came meanwhile is seen now
      if ok == nil then return nil, cancelled(what) end
    end
  end
end


-------------------------------------------------------------------------------
-- the object

-- A method's self must be a supervisor (sv:up(), not sv.up()).
local function is_sv(sv, what)
  errors.check_self(sv, Supervisor, what, "a supervisor", 3)
end

-- The service called name; an unknown name raises at the user's line
-- (level: as error() counts, from the caller of this function).
local function service_of(sv, name, who, level)
  local svc = sv._services[name]
  if not svc then error(format("%s: no service '%s'", who, tostring(name)), level + 1) end
  return svc
end

local function add_service(sv, name, cfg)
  sv._nextid = sv._nextid + 1
  -- what a service is at rest; the rest is set while it is needed (pid,
  -- status, last, reasons, failures, h, app, proc, fd, wake, backoff_until, due,
  -- escalate_at, escalated, by_us, ready_at, restart_pending, revive,
  -- fail_err, started_in, begun, asked, sent, _keep, _blocked, _removing, _pending,
  -- _status_item, _event_item, _exit_item), so that a thousand
  -- services cost little
  local svc = {
    name = name, id = sv._nextid, cfg = cfg, state = "stopped", goal = "down", since = os.time(),
    restarts = 0, streak = 0, ready_seq = 0, fail_seq = 0, window = NONE,
    needs = #cfg.needs > 0 and {} or NONE, after = #cfg.after > 0 and {} or NONE, dependents = NONE,
  }
  local opts = {}
  for k, v in pairs(cfg.start) do opts[k] = v end
  local user_log = opts.log or sv._user_log
  svc.log = user_log and safe_logger(sv, user_log) or log.default
  opts.log = user_log and svc.log or nil
  svc.on_exit, opts.on_exit = opts.on_exit, nil -- called by the supervisor, in order
  local on_status = opts.on_status
  -- STATUS= is a notify message: a start refuses on_status for other apps
  if (opts.ready or "notify") == "notify" then
    opts.on_status = function(app, text)
      -- (its last word told: last_status; a call of the app's own that
      -- comes after, deferred, while the next app starts, is over)
      if sv._told[app] then return end
      svc.status = text
      if on_status then
        enqueue_latest(sv, svc, "_status_item", true, "on_status", on_status, app, text)
        if not sv._busy then flush(sv) end
      end
    end
  end
  -- any other callback of appstart.start's, called by it as it goes
  for k, v in pairs(opts) do
    if type(v) == "function" and k ~= "log" and k ~= "on_status" then
      opts[k] = function(...)
        local ok, err = xpcall(v, loop.traceback, ...)
        if not ok and loop.interrupt(err) then error(err, 0) end
        if not ok then say(svc, "error", "%s raised %s", k, log.raised(err)) end
      end
    end
  end
  svc.opts = opts
  for _, n in ipairs(cfg.needs) do svc.needs[#svc.needs + 1] = sv._services[n] end
  for _, n in ipairs(cfg.after) do svc.after[#svc.after + 1] = sv._services[n] end
  for _, list in ipairs { svc.needs, svc.after } do
    for _, dep in ipairs(list) do
      if dep.dependents == NONE then dep.dependents = {} end
      dep.dependents[#dep.dependents + 1] = svc
    end
  end
  cfg.start = nil -- copied into opts
  sv._services[name], sv._by_id[svc.id] = svc, svc
  sv._names[#sv._names + 1] = name
  table.sort(sv._names)
end

local function reorder(sv)
  local cfgs = {}
  for name, svc in pairs(sv._services) do cfgs[name] = svc.cfg end
  local order = {}
  for i, name in ipairs(sopts.order(cfgs, sv._names)) do order[i] = sv._services[name] end
  sv._order = order
end

--- The most starts in flight at once, from now on (nil: the default):
-- for `appstart supervise`, whose SIGHUP applies the file's new one.
function M.set_parallel(sv, n)
  sv._parallel = n or sopts.DEFAULTS.parallel
end

--- The log of the services added from now on that have none of their own
-- (nil: the default logger): for `appstart supervise`, whose SIGHUP
-- applies the file's new one (and restarts, so adds again, the services
-- that log through it).
function M.set_log(sv, fn)
  sv._user_log = fn or false
end

--- The supervisor's on_event from now on (nil: none; checked by the
-- caller): for `appstart supervise`, whose SIGHUP applies the file's new
-- one.
function M.set_on_event(sv, fn)
  sv._on_event = fn or false
end

--- Are the callbacks queued all told (none queued, none running)?
function M.callbacks_done(sv)
  local q = sv._queue
  local r = q.runner
  return q.first > q.last and not (r and r.task and not r.task.done)
end

--- The callbacks under way cancelled for good: for `appstart supervise`,
-- once every service has stopped and the stop's callbacks have had their
-- time, whose exit must not wait for a file's on_event that waits on (its
-- wait under way says nil, "cancelled", a wait after that raises, and the
-- queue's runner is closed at the next). Inside appstart.run, whose tasks
-- they are; elsewhere nothing.
function M.cancel_callbacks(sv)
  local r = sv._queue.runner
  if r and r.task then r.task:cancel(true) end
end

--- fn(name, state, info) called at each change of a service's state, in
-- the step that made it, before the on_event it queues (nil: none): for
-- `appstart supervise`, whose events (--json, its lines) and STATUS=
-- must not wait behind the file's on_event. fn must neither wait nor
-- call the supervisor.
function M.set_tap(sv, fn)
  sv._tap = fn or false
end

-- A supervisor's advance is over (a to-be-closed value, one for each).
local Unbusy = {
  __close = function(u)
    local sv = u.sv
    sv._busy, sv._busy_env, sv._busy_home = false, false, false
  end,
}

--- A new supervisor (see appstart.supervisor). level: as error() counts,
-- where the user's call is.
function M.new(spec, level)
  local who = "appstart.supervisor"
  local own = sopts.supervisor(spec, who, level)
  local sv = setmetatable({
    _parallel = own.parallel, _on_event = own.on_event or false, _tap = false, _user_log = own.log or false,
    _services = {}, _names = {}, _order = {}, _by_id = {}, _nextid = 0,
    _poller = false, _nwatched = 0, _fired = {}, _timed = {}, _probed = {},
    _inflight = 0, _begun = 0, _failed_runs = loop.failed_runs, _nactive = 0, _round = 0, _dirty = false,
    _busy = false, _busy_env = false, _busy_home = false, _interrupted = false, _changed = false, _rewake = false,
    _queue = { first = 1, last = 0, runner = false }, _waiters = {}, _driver = false, _left = {},
    -- the apps whose last status has been told (last_status): no
    -- on_status of theirs comes after (weak: an ended app goes)
    _told = setmetatable({}, { __mode = "k" }),
    -- the main thread's (made or last driven by it, a plain script or a
    -- callback of its run by another loop's coroutine): served by another
    -- loop's coroutine, it stays the main thread's (supervisor_driver's
    -- MAIN); a loop that drives it (_ensure_driver) makes it its own
    _main = false,
    _unbusy = false, -- (below)
  }, Supervisor)
  sv._unbusy = setmetatable({ sv = sv }, Unbusy)
  local made_in = driver.current(true)
  sv._main = made_in == driver.PLAIN or made_in == driver.MAIN
  local cfgs, names = {}, {}
  for name, spec_ in pairs(spec.services or {}) do
    cfgs[name] = sopts.service(name, spec_, who, level)
    names[#names + 1] = name
  end
  table.sort(names)
  sopts.graph(cfgs, names, who, level)
  -- in dependency order, so what a service names exists when it is added
  for _, name in ipairs(sopts.order(cfgs, names)) do add_service(sv, name, cfgs[name]) end
  reorder(sv)
  return sv
end

--- Add a service (stopped until started). Raises on a mistake in its spec,
-- an existing name, an unknown name in after/needs or a cycle.
function Supervisor:add(name, spec)
  is_sv(self, "sv:add")
  local cfg = sopts.service(name, spec, "sv:add", 2)
  if self._services[name] then error(format("sv:add: service '%s' exists already", name), 2) end
  for _, list in ipairs { cfg.needs, cfg.after } do
    for _, n in ipairs(list) do
      local named = self._services[n]
      if named and named._removing then
        error(format("sv:add: service '%s' is being removed (named by '%s')", n, name), 2)
      end
    end
  end
  local cfgs, names = { [name] = cfg }, { name }
  for n, svc in pairs(self._services) do
    cfgs[n] = svc.cfg
    names[#names + 1] = n
  end
  table.sort(names)
  sopts.graph(cfgs, names, "sv:add", 2)
  add_service(self, name, cfg)
  reorder(self)
end

-- The services named and what they need, each once.
local function with_needs(sv, list, who)
  local set, stack = {}, {}
  for i = 1, #list do stack[i] = service_of(sv, list[i], who, 3) end
  while #stack > 0 do
    local svc = table.remove(stack)
    if not set[svc] then
      set[svc] = true
      for _, n in ipairs(svc.needs) do stack[#stack + 1] = n end
    end
  end
  return set
end

-- svc is asked up. explicit (sv:start, sv:restart): a failed service is
-- started again, one waiting in backoff at once.
local function ask_up(svc, explicit)
  svc.goal = "up"
  if explicit then
    if svc.state == "failed" then svc.revive = true end
    -- (the user's start, not a restart of the policy's: see begin)
    if svc.state == "backoff" then svc.due, svc.asked = true, true end
  end
end

-- The error that ends a wait for svc to be ready, or nil while it may
-- still come.
local function never_ready(svc)
  -- (a failed service asked to start again, revive, may have to wait for
  -- a slot or for what it comes after: it will start)
  if svc.state == "failed" and not svc.revive then
    return errors.new("failed", format("%s: gave up after %d failures, the last: %s", svc.name,
      svc.failures or 0, tostring(svc.last)), { service = svc.name, reasons = svc.reasons or nil })
  end
  if svc.state == "stopped" and svc.goal == "down" then
    return errors.new("stopped", format("%s: stopped before it was ready%s", svc.name,
      svc.last and (" (" .. tostring(svc.last) .. ")") or ""), { service = svc.name })
  end
  if svc._blocked then
    for _, n in ipairs(svc.needs) do
      if not UP[n.state] and (DOWN[n.state] or n._blocked) then
        return errors.new("dependency", format("%s: needs %s, which is %s", svc.name, n.name, n.state),
          { service = svc.name })
      end
    end
  end
end

-- A condition for drive: every service of set ready (or ready since the
-- call, new: only a ready that comes after it); nil, err as soon as one's
-- start fails or one cannot come.
local function ready_cond(set, new)
  local fail_seq, ready_seq = {}, {}
  for svc in pairs(set) do fail_seq[svc], ready_seq[svc] = svc.fail_seq, svc.ready_seq end
  return function()
    for svc in pairs(set) do
      if svc.fail_seq > fail_seq[svc] then return true, nil, svc.fail_err end
    end
    -- every one still to come looked at: one that cannot ends the wait,
    -- whichever the others are
    local pending = false
    for svc in pairs(set) do
      if svc.ready_seq == ready_seq[svc] and (new or not UP[svc.state]) then
        local err = never_ready(svc)
        if err then return true, nil, err end
        pending = true
      end
    end
    if pending then return false end
    return true, true
  end
end

-- The error of a request to start a service of set that sv:remove is
-- stopping (it is not started again), or nil.
local function removing(set, who)
  for s in pairs(set) do
    if s._removing then
      return errors.new("stopped", format("%s: %s: sv:remove is stopping it", s.name, who), { service = s.name })
    end
  end
end

-- The services of set asked up (svc, if given, explicitly: see ask_up),
-- then waited for: after the ends already come are seen (a crash a plain
-- script has not looked at yet, a failed run's abandoned starts), which
-- would otherwise undo the request. One that sv:remove is stopping is not
-- started again: nil, err ("stopped").
local function ask_set_up(sv, set, svc, who)
  sv:_advance()
  local err = removing(set, who)
  if err then return nil, err end
  for s in pairs(set) do ask_up(s, s == svc) end
  return drive(sv, who, ready_cond(set, false))
end

--- Start every service (or these and what they need) and wait until each
-- is ready (yields inside a loop, blocks outside, driving the supervision
-- meanwhile). A service that has failed is not started again (see start).
-- @return true, or nil, err as soon as one start fails (err.service names
-- it, err.code says why); its restart policy goes on
function Supervisor:up(...)
  is_sv(self, "sv:up")
  local names = table.pack(...)
  local set = with_needs(self, names.n > 0 and names or self._names, "sv:up")
  -- every service: but those on their way out
  if names.n == 0 then
    for svc in pairs(set) do
      if svc._removing then set[svc] = nil end
    end
  end
  return ask_set_up(self, set, nil, "sv:up")
end

--- Start one service (and what it needs) and wait until it is ready: as
-- sv:up(name), and a service that failed (gave up) or waits in backoff is
-- started at once.
function Supervisor:start(name)
  is_sv(self, "sv:start")
  local svc = service_of(self, name, "sv:start", 2)
  return ask_set_up(self, with_needs(self, { name }, "sv:start"), svc, "sv:start")
end

--- Stop one service (what needs it first) and wait until it has stopped.
-- @return true
function Supervisor:stop(name)
  is_sv(self, "sv:stop")
  local svc = service_of(self, name, "sv:stop", 2)
  svc.goal, svc.revive, svc.restart_pending = "down", false, false
  local downs = svc.downs or 0
  return drive(self, "sv:stop", function()
    -- (as all_down_cond: a stop under way again is seen to the end; and
    -- what needs it has stopped too, though it ended by itself first)
    return (DOWN[svc.state] ~= nil or (svc.downs or 0) ~= downs and svc.state ~= "stopping")
      and not leftover(self, svc) and dependents_down(svc), true
  end)
end

--- Stop a service and start it again (what needs it is stopped first and
-- comes back after it); wait until it is ready again.
-- @return true, or nil, err
function Supervisor:restart(name)
  is_sv(self, "sv:restart")
  local svc = service_of(self, name, "sv:restart", 2)
  local set = with_needs(self, { name }, "sv:restart")
  self:_advance()
  local err = removing(set, "sv:restart")
  if err then return nil, err end
  for s in pairs(set) do ask_up(s, s == svc) end
  if ACTIVE[svc.state] and svc.state ~= "backoff" then svc.restart_pending = true end
  return drive(self, "sv:restart", ready_cond({ [svc] = true }, true))
end

-- Signals whose default action does not end a process (signal(7): Ign,
-- Stop, Cont), by number; made at the first reload.
local SPARING

--- Will signum end the process pid: its default action ends a process,
-- and the process neither catches, ignores nor blocks it (its
-- /proc/PID/status)? false when that cannot be read. Then whether it
-- takes it (catches or ignores it): false too when that cannot be read.
local function ends_process(pid, signum)
  if not SPARING then
    SPARING = {}
    for _, n in ipairs { "CHLD", "CONT", "URG", "WINCH", "STOP", "TSTP", "TTIN", "TTOU" } do
      SPARING[core.signum(n)] = true
    end
  end
  if signum < 1 or signum > 64 then return false, false end
  local st = core.proc_status(pid)
  if not st then return false, false end
  local bit = 1 << (signum - 1)
  local takes = (st.ignored | st.caught) & bit ~= 0
  if SPARING[signum] then return false, takes end
  return (st.blocked | st.ignored | st.caught) & bit == 0, takes
end

--- Ask a ready service to reload: app:reload() (the reload signal; a
-- notify app is waited for until it says READY=1 again). An app that the
-- signal ends (it does not handle it) is waited for until it has ended,
-- ready_timeout at most: it never gets ready again (no "ready" event), its
-- end goes to the restart policy, and the reload is an error ("died").
-- @return true, or nil, err
function Supervisor:reload(name)
  is_sv(self, "sv:reload")
  local svc = service_of(self, name, "sv:reload", 2)
  self:_advance()
  if not UP[svc.state] then
    return nil, errors.new("not_ready", format("%s is %s", name, svc.state), { service = name })
  end
  local app = svc.app
  local reload_signal = svc.opts.reload_signal or "HUP"
  local signum = core.signum(reload_signal)
  -- (counted: a reload done, the app back, says the signal was taken; one
  -- that kills the app later, as reloads of theirs under way do not, is
  -- another's)
  local sent = svc.sent or {}
  svc.sent = sent
  sent[signum] = (sent[signum] or 0) + 1
  -- known before the signal: once sent, an app that ends of it and one
  -- that handles it look alike until it has ended
  local fatal, takes = ends_process(app.pid, signum)
  fire(self, svc, "reloading")
  self:_advance()
  local ok, err
  if app.reload then ok, err = app:reload() else ok, err = app:kill(reload_signal) end
  if ok and fatal and svc.app == app and app.state ~= "exited" then
    -- nothing says when such a reload is done (ready = "none", or no
    -- socket read): its end is
    local deadline = now() + (svc.cfg.reload_timeout or svc.opts.ready_timeout or options.DEFAULTS.ready_timeout)
    local _, why = drive(self, "sv:reload", function()
      return svc.app ~= app or app.state == "exited" or now() >= deadline
    end, deadline)
    if why then ok, err = nil, why end
  end
  local how = app.state == "exited" and app.how or nil
  if svc.app == app then
    -- an app that ended during its reload never got ready again
    -- (one that said RELOADING=1 and no READY=1 within the time stays
    -- reloading: its own READY=1 ends that)
    if how then fire(self, svc, "exited", how)
    elseif ok or app.state ~= "reloading" then fire(self, svc, "reloaded") end
  end
  self:_advance()
  -- (a signal it takes is over once the reload is; one that ends it, or
  -- is blocked, may end it later: the supervisor's still)
  if ok and takes and not how and svc.app == app and svc.sent == sent then sent[signum] = sent[signum] - 1 end
  if how and (ok or err.code ~= "died") then
    ok, err = nil, errors.new("died", "app " .. tostring(how) .. " while it reloaded",
      { pid = app.pid, status = how }, app._program) -- as app:reload() says it
  end
  if ok then return true end
  if type(err) ~= "table" then err = errors.new("reload", tostring(err), { pid = app.pid }, name) end
  err.service = name
  return nil, err
end

local function status_of(svc)
  return { state = svc.state, pid = svc.pid or nil, restarts = svc.restarts, since = svc.since,
    status = svc.status or nil, last = svc.last or nil, reasons = svc.reasons or nil }
end

--- A service's status, or every service's (name -> status): {state, pid,
-- restarts, since (os.time() of its last change), status (its last
-- STATUS=), last (how it last ended, or the error of its last start),
-- reasons (when failed: how each failure of the burst ended)}.
function Supervisor:status(name)
  is_sv(self, "sv:status")
  local svc = name ~= nil and service_of(self, name, "sv:status", 2)
  self:_advance()
  if svc then return status_of(svc) end
  local all = {}
  for n, s in pairs(self._services) do all[n] = status_of(s) end
  return all
end

-- A condition for drive: every service stopped or failed now, or since
-- the call (one that a start took up again in the same step has been),
-- but none is being stopped (one that stopped since and is stopping
-- again: its stop, its SIGKILL, is seen to the end).
local function all_down_cond(sv)
  local downs = {}
  for _, svc in pairs(sv._services) do downs[svc] = svc.downs or 0 end
  return function()
    for _, svc in pairs(sv._services) do
      if not DOWN[svc.state] and (downs[svc] == nil or (svc.downs or 0) == downs[svc] or svc.state == "stopping") then
        return false
      end
      if leftover(sv, svc) then return false end
    end
    return true, true
  end
end

--- Stop every service, dependents before what they need; wait until all
-- have stopped. @return true
function Supervisor:down()
  is_sv(self, "sv:down")
  for _, svc in pairs(self._services) do
    svc.goal, svc.revive, svc.restart_pending = "down", false, false
  end
  return drive(self, "sv:down", all_down_cond(self))
end

--- Stop the services named at once (as sv:down does every one,
-- dependents before what they need): for `appstart supervise`, whose
-- SIGHUP stops what it removes or changes before it removes them (one by
-- one, each remove waited for that service's whole stop, its kill_grace
-- too). true once each is down, or nil, err (the wait cancelled).
function M.stop_all(sv, names)
  local set = {}
  for _, name in ipairs(names) do
    local svc = sv._services[name]
    if svc then
      svc.goal, svc.revive, svc.restart_pending = "down", false, false
      set[svc] = true
    end
  end
  return drive(sv, "sv:stop", function()
    for svc in pairs(set) do
      if sv._services[svc.name] == svc and (not DOWN[svc.state] or leftover(sv, svc)) then return false end
    end
    return true, true
  end)
end

-- (M.will_come's look at svc and what it needs; seen: those looked at)
local function coming(svc, seen)
  if seen[svc] ~= nil then return seen[svc] end
  seen[svc] = false
  local will = svc.goal == "up" and (svc.state ~= "failed" or svc.revive) and not svc._blocked
  for _, n in ipairs(will and svc.needs or {}) do
    if not coming(n, seen) then will = false end
  end
  seen[svc] = will and true or false
  return seen[svc]
end

--- Will the service `name` come up (again) with no new request: asked up,
-- not failed (given up), not kept down for good by what it needs, nor is
-- anything it needs (so that sv:up of it asks nothing up again: a
-- migration that ended, restart "no", is not run again)? nil for a name
-- the supervisor does not know. For `appstart supervise`, whose bring-up
-- waits for what its policy restarts before READY=1.
function M.will_come(sv, name)
  local svc = sv._services[name]
  if not svc then return nil end
  return coming(svc, {})
end

local function unlink(list, svc)
  for i = #list, 1, -1 do
    if list[i] == svc then table.remove(list, i) end
  end
end

--- Stop a service and forget it; its name may then be added again. Raises
-- when another service names it in needs or after (remove that one first).
-- @return true, or nil, err when the wait for its stop was cancelled: it
-- is not forgotten then (its stop goes on, under the supervisor, as a
-- cancelled sv:stop's does), and may be removed again
function Supervisor:remove(name)
  is_sv(self, "sv:remove")
  local svc = service_of(self, name, "sv:remove", 2)
  local users = {}
  for _, d in ipairs(svc.dependents) do users[#users + 1] = d.name end
  if #users > 0 then
    table.sort(users)
    error(format("sv:remove: service '%s' is named by %s (remove %s first)", name,
      table.concat(users, ", "), #users > 1 and "them" or "it"), 2)
  end
  -- while it stops, nothing added may name it (sv:add raises)
  svc.goal, svc.revive, svc.restart_pending, svc._removing = "down", false, false, true
  -- (a wait it may not make, inside the supervisor's own log function or
  -- one that holds it, raises: the stop goes on, the service is not
  -- forgotten, as for a cancelled wait, and nothing is left removing it)
  local ok, down, err = pcall(drive, self, "sv:remove", function()
    return DOWN[svc.state] ~= nil and not leftover(self, svc), true
  end)
  if not ok then
    if self._services[name] == svc then svc._removing = nil end
    error(down, 0)
  end
  if self._services[name] ~= svc then return true end -- removed meanwhile
  if not down then
    svc._removing = nil
    return nil, err
  end
  release_app(self, svc)
  for _, list in ipairs { svc.needs, svc.after } do
    for _, dep in ipairs(list) do
      if dep.dependents ~= NONE then unlink(dep.dependents, svc) end
    end
  end
  self._timed[svc], self._probed[svc] = nil, nil
  self._services[name], self._by_id[svc.id] = nil, nil
  unlink(self._names, name)
  reorder(self)
  close_poller(self)
  return true
end

--- Wait until every service is stopped or failed (outside a loop: supervise
-- until then). @return true
function Supervisor:wait()
  is_sv(self, "sv:wait")
  return drive(self, "sv:wait", all_down_cond(self))
end

--- `local sv <close> = appstart.supervisor{...}`: sv:down() at scope exit.
function Supervisor:__close()
  -- (a stop, as app:terminate's: its waits ignore a cancel, for good too;
  -- a task cancelled meanwhile is told once, and the stop waited for)
  local _ <close> = loop.shield()
  if self:down() == nil then
    loop.took_cancel()
    self:down()
  end
end

function Supervisor:__tostring()
  local count = {}
  for _, svc in pairs(self._services) do count[svc.state] = (count[svc.state] or 0) + 1 end
  local parts = {}
  for _, state in ipairs { "ready", "reloading", "starting", "backoff", "stopping", "stopped", "failed" } do
    if count[state] then parts[#parts + 1] = count[state] .. " " .. state end
  end
  return format("appstart.supervisor(%d services%s)", #self._names,
    #parts > 0 and (": " .. table.concat(parts, ", ")) or "")
end

return M
