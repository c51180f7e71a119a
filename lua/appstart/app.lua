--- appstart.app: a started app: its pid, name, status and state, waited
-- for, signalled, terminated, reloaded; its on_exit callback run once when
-- it ends.
--
-- app.state and app.how tell the truth when read: a read looks at the app
-- (without waiting) if it may have ended since, so a plain script or the
-- REPL sees a `kill -9` at once, not at its next appstart call.
--
-- After ready, a notify app started under a loop keeps its socket
-- (App.listen): STATUS=, RELOADING=1, READY=1, STOPPING=1, WATCHDOG=,
-- MAINPID= are read as they come, in the background.
local core = require "appstart.core"
local ending = require "appstart.ending"
local errors = require "appstart.errors"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"
local settings = require "appstart.settings"
local signal = require "appstart.signal"

local now = core.now
local format = string.format
local printable = log.printable
local DEFAULTS = options.DEFAULTS
local DEFAULT_GRACE = DEFAULTS.kill_grace

-- at most this many datagrams per wake-up: a flood cannot stall the loop
local READS_PER_WAKE = 64
-- before a verdict (the app's end told, the watchdog's SIGABRT) all that
-- came before it is read, up to this many datagrams: more than a socket
-- holds (net.unix.max_dgram_qlen), so a sender cannot keep it reading
local READS_BEFORE_VERDICT = 4096
-- a state callback still to be told (a log function that waits holds
-- them) takes the place of the one queued once this many of the app's
-- tells wait: an app may flip RELOADING=1 and READY=1 as fast as it likes
local MAX_TELLS = 64

local drain_all -- below

local App = {}
App.__name = "appstart.app"

local check -- App.check, below

-- states in which the app runs, and may have ended since it was last seen
local RUNNING = { ready = true, reloading = true, stopping = true }

-- The methods an app offers (App's other functions are the library's,
-- called as App.f(app): not reachable through an app); pollfd, events and
-- timeout make it pollable by cqueues.
local METHODS = { wait = true, tail = true, kill = true, terminate = true, reload = true, close = true,
  pollfd = true, events = true, timeout = true }

--- app.state ("starting", "ready", "reloading", "stopping", "exited") and
-- app.how (once exited) are read through here; everything else is a
-- method.
function App.__index(app, key)
  if key == "state" then
    if RUNNING[rawget(app, "_state")] then check(app) end
    return rawget(app, "_state")
  elseif key == "how" then
    if RUNNING[rawget(app, "_state")] then check(app) end
    return rawget(app, "_how") or nil
  elseif key == "argv" then
    return rawget(app, "_opts").argv
  end
  if METHODS[key] then return App[key] end
end

--- A new app, still starting: on_status gets it while the start is under
-- way. Every field a start sets later is preset, so setting it allocates
-- nothing (the hand-over must not fail halfway). Sixteen at most, the
-- size of the table's hash part doubles above: an app held costs this
-- table, and a notify app read after ready its life's (App.listen).
-- app.argv is its options' (read through App.__index).
function App.new(label, opts, log_fn)
  return setmetatable({ name = label, _state = "starting", pid = false,
    status = false, ready_after = false, _how = false, _program = label,
    _proc = false, _watch = false, _watch_kind = false, _on_exit = opts.on_exit or false,
    _log = log_fn, _opts = opts, _on_state = false,
    -- the life after ready of an app whose notify socket is read (App.listen)
    _life = false,
    -- the output the launcher reads (appstart.output), kept after the end
    -- for app:tail
    _out = false }, App)
end

-- The apps app:terminate (or a <close> end) is stopping: app -> the
-- process it stops, then "ended" once its watch has seen the end (kept
-- here, not in the app: a field more would double its table's size).
local stopping = setmetatable({}, { __mode = "k" })

-- The app's socket is of no more use: closed, and its timers stopped.
local log_refused -- below
local end_the_rest, kill_grace -- below
local say, tell_queued, teller_busy -- below

local function stop_listening(app)
  local life = app._life
  if not life then return end
  loop.unwatch(life.listen or nil)
  loop.unwatch(life.wd_timer or nil)
  loop.unwatch(life.kill_timer or nil)
  loop.unwatch(life.stop_bound or nil)
  loop.unwatch(life.later or nil)
  life.listen, life.wd_timer, life.kill_timer, life.stop_bound, life.later = false, false, false, false, false
  if life.listener then
    life.listener:close()
    life.listener = false
  end
  -- (said last: a logger that raises, a ^C, leaves nothing undone here;
  -- its callers go on with what they were doing before they raise it;
  -- after what the app's datagrams have still to tell, a teller's wait
  -- under way)
  if life.refused or next(life.quiet) then
    say(life, function()
      if life.refused then log_refused(app, true) end
      if next(life.quiet) then log.held_over(life.quiet, app._log, app._program) end
    end)
    tell_queued(life)
  end
end

--- The app's notify socket is read no more: closed, its timers stopped.
App.unlisten = stop_listening

--- The apps an appstart.run leaves running: nothing reads their notify
-- sockets now, which are closed, as a plain script closes one at ready (a
-- full queue would block the app's sd_notify), and their watchdogs
-- stopped (no ping can come); a SIGKILL the watchdog has scheduled still
-- comes. A supervisor's apps are left to it (it serves them itself).
function App.unserved(apps)
  -- (what a logger raises at an app's last lines comes out once every app
  -- is seen to)
  local raised
  for app in pairs(apps) do
    local life = app._life
    if life and life.listener and not app._on_state then
      local kill_timer, stop_bound = life.kill_timer, life.stop_bound
      life.kill_timer, life.stop_bound = false, false
      local ok, err = pcall(stop_listening, app)
      life.kill_timer, life.stop_bound = kill_timer, stop_bound
      if not ok and not raised then raised = { err } end
    end
  end
  if raised then error(raised[1], 0) end
end

-- A line of the launcher's own about an app (its end, the sweep of its
-- group, a signal not sent), said as it comes: but in appstart.run's own
-- rounds (a watch's or a timer's callback), where a log function that
-- waits would hold every task of the run until it returned, a task says
-- it: a notify app's teller, in the order of the app's other lines
-- (on_exit told after them), another app's a task of its own, begun
-- before on_exit's (which does not wait for it). What it raises there is
-- a task's error. true, or false, err: what the log function raised,
-- said at once.
local function line_raised(err) log.default("error", "a log function raised " .. log.raised(err)) end
local function app_line(app, level, text)
  if not loop.in_rounds() then return pcall(app._log, level, text) end
  local life = app._life
  if life then
    say(life, function() app._log(level, text) end)
    tell_queued(life)
  else
    loop.callback(line_raised, app._log, level, text)
  end
  return true
end

-- The app's log function as app_line says its lines, raising what it
-- raised (signal.kick and signal.rest's warnings).
local function app_logger(app)
  return function(level, text)
    local ok, err = app_line(app, level, text)
    if not ok then error(err, 0) end
  end
end

-- kill_mode "group": the main process ended by itself; what it left in its
-- group goes with it (SIGTERM, SIGKILL after kill_grace), as under
-- systemd, so that a service that crashes leaves nothing behind. The
-- SIGTERM is sent, and they are counted (how.left), as the end is seen,
-- before anyone is told of it (one system call per process: /proc's
-- list, not its files); the wait for them is done after, not in the way
-- of whoever saw the end (a supervisor about to restart). The process is
-- closed once they are gone.
local function sweep_group(app, proc, stopped)
  -- (nil: they could not be looked at, out of descriptors: no empty group)
  local n = proc:rest()
  if n == 0 then return false end
  -- (a stop's SIGTERM, a supervisor's, reached them already, and was
  -- counted: the main process ended on it, no crash)
  if stopped then return true end
  local logger = app_logger(app)
  signal.rest(proc, app._opts, "TERM", logger, app._program)
  signal.rest(proc, app._opts, "CONT", logger, app._program)
  -- how.left counts them, as a stop's does (the how was made as the main
  -- process ended, before this)
  local after = proc:poll()
  if after and after.left and app._how then app._how.left = after.left end
  -- (said last: a logger that raises leaves nothing undone)
  if not log.drops(app._log, "info") then
    local ok, err = app_line(app, "info", format("%s: its main process ended: SIGTERM to the %s left in its group",
      app._program, n and format("%d process%s", n, n == 1 and "" or "es") or "processes (uncounted)"))
    if not ok then error(err, 0) end
  end
  return true
end

-- app -> { proc = the process of its group, finish = fn } while
-- end_the_rest sees to what is left in it (App.leftover)
local leftovers = setmetatable({}, { __mode = "k" })

-- app -> true once a stop that does not wait (a supervisor's) has sent it
-- a signal (App.stop_signal): its main's end is that stop's, no crash
local stop_sent = setmetatable({}, { __mode = "k" })

function end_the_rest(app, proc, stopped)
  -- (deadline: the SIGKILL's, which a stop with a grace of its own moves,
  -- until it is sent: await_leftovers)
  local entry = { proc = proc, finish = false, watch = false, deadline = now() + kill_grace(app), killed = false }
  leftovers[app] = entry
  local function done()
    if leftovers[app] == entry then leftovers[app] = nil end
    loop.unwatch(entry.watch or nil)
    loop.close_process(proc)
  end
  entry.finish = done
  -- (an error of the logger's comes out once what ends them is set up)
  local swept_ok, swept = pcall(sweep_group, app, proc, stopped)
  if swept_ok and not swept then return done() end
  local function raise() if not swept_ok then error(swept, 0) end end
  if loop.served() then
    -- a task of the loop (appstart.run waits for it to end), after what
    -- is under way (a supervisor's restart comes first)
    loop.call(function()
      loop.wait(nil, now())
      -- (looked at every poll_interval, as a group is: its deadline may
      -- move meanwhile)
      while not ending.settle(proc, math.min(entry.deadline, now() + settings.poll_interval)) do
        if now() >= entry.deadline then
          entry.killed = true
          signal.rest(proc, app._opts, "KILL", app._log, app._program)
          ending.settle(proc, now() + ending.KILL_WAIT)
          break
        end
      end
      done()
    end)
    raise()
  else
    -- a plain script: looked at by the calls that wait, every
    -- poll_interval, SIGKILL once kill_grace has passed; not waited for
    -- here (a look at the app, a read of app.state, may have seen the
    -- end: it returns at once, and runs nothing a wait would)
    if proc:rest() == 0 then
      done()
      return raise()
    end
    entry.watch = loop.watch(nil, function()
      local t = now()
      if proc:rest() == 0 then
        done()
        return true
      elseif t >= entry.deadline then
        -- SIGKILL, then looked at until they are gone (KILL_WAIT at most)
        if entry.killed then
          done()
          return true
        end
        signal.rest(proc, app._opts, "KILL", app._log, app._program)
        entry.killed, entry.deadline = true, t + ending.KILL_WAIT
      end
      return false
    end, settings.poll_interval)
    raise()
  end
end

--- kill_mode "group": the process of an app that has ended while its
-- group still has members it is seeing to (SIGTERM sent, SIGKILL after
-- kill_grace), for whoever must wait for them too (a supervisor's stop):
-- proc:rest() counts them, proc:signal("KILL") ends them. nil once they
-- are gone.
function App.leftover(app)
  local e = leftovers[app]
  return e and e.proc or nil
end

--- Whoever waited for them has seen them gone: what end_the_rest holds for
-- it is let go of now, not at some later call that waits.
function App.leftover_gone(app)
  local e = leftovers[app]
  if e then e.finish() end
end

-- on_exit(app, how): outside a loop it runs in whatever call looked: an
-- error it raises is logged there, never raised from that unrelated call
local status_busy, look_until_status_over -- below
local function tell_exit(app, on_exit, how, told)
  local life = app._life
  -- what the app sent before it ended, still to be told (a log line of
  -- a teller's that waits: the app's last STATUS=), comes first
  if life and not told and (teller_busy(life) or (life.tells and life.tells.first <= life.tells.last)) then
    say(life, function() tell_exit(app, on_exit, how, true) end)
    tell_queued(life)
    return
  end
  if life and status_busy(life) then
    -- an on_status call still running: its next call, the app's last
    -- STATUS= (told before on_exit), comes first; on_exit once it returns
    life.exit_next = function() tell_exit(app, on_exit, how) end
    look_until_status_over(life)
    return
  end
  loop.callback(function(err)
    app._log("error", string.format("%s: on_exit raised %s", app._program, log.raised(err)))
  end, on_exit, app, how)
end

-- settled: a stop has seen the group (kill_mode "group") end already
local function ended(app, how, settled)
  if app._state == "exited" then return end
  errors.how(how)
  -- (its watchdog fired: judged hung, however it ended then, as systemd
  -- counts it: killed by the SIGABRT, exiting on it with a code of its
  -- own, or by itself as it fired)
  if app._life and app._life.wd_fired then how.watchdog = true end
  app._state = "exited"
  app._how = how
  loop.disown(app)
  if app._watch then
    loop.unwatch(app._watch)
    app._watch = false
  end
  -- what it sent before it ended and the socket still holds is its last
  -- word (a stop that saw the end first: a last STATUS=), told before
  -- on_exit
  -- (an error its last log lines raise, its logger's, comes out once the
  -- end is told, as the sweep's)
  local drained_ok, drained_err = true, nil
  if app._life and app._life.listener then drained_ok, drained_err = pcall(drain_all, app, true) end
  local heard_ok, heard_err = true, nil
  if app._life then heard_ok, heard_err = pcall(stop_listening, app) end
  local proc = app._proc
  app._proc = false
  -- (an error the sweep of its group raises, its logger's, comes out
  -- once the end is told: on_exit queued)
  local swept_ok, swept_err = true, nil
  if proc then
    if stopping[app] == proc then
      -- seen by its watch while a stop (app:terminate, a <close> end)
      -- ends it: the group is the stop's (its grace, its SIGKILL), which
      -- closes the process once done
      stopping[app] = "ended"
    elseif not settled and proc:kill_mode() == "group" then
      swept_ok, swept_err = pcall(end_the_rest, app, proc, stop_sent[app])
    else
      loop.close_process(proc)
    end
  end
  -- (its line's error too, a ^C in the logger: on_exit told first)
  local said_ok, said_err = true, nil
  if not log.drops(app._log, "debug") then
    said_ok, said_err = app_line(app, "debug",
      string.format("%s: pid %d %s", log.printable(app.name or "app"), app.pid, tostring(how)))
  end
  local on_exit = app._on_exit
  app._on_exit = false
  -- on_output has every line the app wrote before on_exit runs: what the
  -- pipes hold now, then they are closed
  local out = app._out
  if out and not out.closed then
    out:finish(on_exit and function() tell_exit(app, on_exit, how) end or nil)
  elseif on_exit then
    tell_exit(app, on_exit, how)
  end
  if not drained_ok then error(drained_err, 0) end
  if not swept_ok then error(swept_err, 0) end
  if not heard_ok then error(heard_err, 0) end
  if not said_ok then error(said_err, 0) end
end

--- Has the app ended? how | nil (its end is recorded, on_exit run).
function App.check(app)
  if app._state == "exited" then return app._how end
  local proc = app._proc
  if not proc then return nil end
  local how = proc:poll()
  if how and app._life and app._life.listener and not stopping[app] then
    -- what it sent before it ended counts, as before ready: read before
    -- its end is told (a MAINPID= to a process that goes on, which the
    -- app follows then; a last STATUS=); a WATCHDOG=trigger there is over
    -- with the process that sent it (watchdog_fire). An error its lines
    -- raise, its logger's, comes out once its end is told: raised there,
    -- it left the end unseen, on_exit untold
    local drained_ok, drained_err = pcall(drain_all, app)
    if app._state ~= "exited" then
      how = app._proc and app._proc:poll()
      if how then ended(app, how) end
    end
    if not drained_ok then error(drained_err, 0) end
    if app._state == "exited" then return app._how end
  end
  if how then
    ended(app, how)
    return how
  end
  -- the main has ended, its cgroup has not emptied: what the main sent
  -- before it ended counts (read now, as above; a stop's: its last word),
  -- and nothing from its number after that: reaped, the number is free,
  -- and a process that takes it, sends and is gone too before the socket
  -- is read cannot be told from the main by its number (its WATCHDOG=1
  -- kept a hung app from its watchdog, its MAINPID= moved the main). An
  -- error its lines raise, its logger's, comes out once the watch has
  -- moved
  local life = app._life
  local drained_ok, drained_err = true, nil
  -- (not by the kind of proc:fd(): none while cgroup.events could not
  -- be read, out of descriptors; the kill mode from the options, not a
  -- call into the core at every look)
  local main_gone = app._opts.kill_mode == "cgroup" and proc:exited()
  if main_gone and life and life.listener and not life.main_ended then
    local l, main = life.listener, app.pid
    drained_ok, drained_err = pcall(drain_all, app, stopping[app] and true or nil)
    -- (not where that read moved the main: the new one runs)
    life.main_ended = life.listener == l and l:end_main(main)
  end
  -- (its zombie, which kept its number from any sender until that read,
  -- is reaped now: once read, or with no socket to read)
  if main_gone and not (life and life.listener and not life.main_ended) then proc:reap() end
  -- the app has exited, its cgroup has not emptied: the poll that reaped
  -- it closed the pidfd a watch may wait on (its number may be another
  -- descriptor's by now); the watch moves to the cgroup's
  local w = app._watch
  if w and app._watch_kind == "pid" then
    local fd, kind = proc:fd()
    if kind == "cgroup" then
      loop.unwatch(w)
      App.watch(app, fd, kind)
    end
  end
  if not drained_ok then error(drained_err, 0) end
  return nil
end
check = App.check

--- May the app still run? false once it has been seen to end or been
-- closed, or its process has ended (reaped, where it is the launcher's
-- child; its end is recorded by whoever looks next: the process keeps
-- it, and its pidfd); true otherwise, and where that cannot be told.
function App.may_run(app)
  local proc = app._proc
  if not proc or app._state == "exited" then return false end
  return proc:poll() == nil
end

--- Call App.check in the background when the app's process (pidfd fd, or
-- probed when there is none) ends; kind: what fd is (proc:fd()'s second
-- result). The watch is made before the process is handed to the app, so
-- that making it cannot fail with a process in transit. A watch that finds
-- the app still there (its cgroup has not emptied yet) watches again, on
-- what then says when it has.
function App.watch(app, fd, kind)
  app._watch_kind = kind or false
  if fd then
    app._watch = loop.watch(fd, function()
      app._watch = false
      if not check(app) and app._proc and not app._watch then App.watch(app, app._proc:fd()) end
    end)
  else
    app._watch = loop.watch(nil, function() return check(app) ~= nil end, settings.poll_interval)
  end
end

-------------------------------------------------------------------------------
-- the life after ready

local function report(app, what)
  return function(err) app._log("error", format("%s: %s raised %s", app._program, what, log.raised(err))) end
end

-- The entry of `kind` still to be told (say), if any.
local function queued(life, kind)
  local q = life.tells
  return q and q.kinds[kind]
end

-- A line about what the app sent (text: it, or a function that makes it
-- as it is told: printable() of a STATUS= costs), once a second at most
-- for each kind, with a count of those held back (life.quiet, kept as
-- log.limited keeps it). Decided as it is queued, not as it is told: a
-- log function that waits holds the queue, and a flood would queue a
-- line per datagram meanwhile (a STATUS= with its text, up to 4 KB
-- each), all told in one go after. One of each kind waits at most: one
-- that passes a second later takes its place (the latest is told), the
-- one it replaced counted as held back.
local function noisy(app, kind, level, text)
  if log.drops(app._log, level) then return end
  local life = app._life
  if not life then
    if type(text) == "function" then text = text() end
    return app._log(level, text)
  end
  local e = life.quiet[kind]
  if not e then
    e = { at = -math.huge, n = 0, level = level }
    life.quiet[kind] = e
  end
  -- (within the second of the line last queued or told: held back)
  local t = now()
  if t - e.at < 1 then
    e.n = e.n + 1
    return
  end
  e.at = t
  -- the count it says: those held back before it (and the line it takes
  -- the place of, with that one's count); those held back after it are
  -- the next line's, or log.held_over's
  local entry = queued(life, kind)
  local n = e.n + (entry and entry.held + 1 or 0)
  e.n = 0
  local function line()
    e.at = now()
    local told = type(text) == "function" and text() or text
    if n > 0 then told = format("%s (%d more like it not logged)", told, n) end
    app._log(level, told)
  end
  if entry then
    entry.fn = line
  else
    entry = say(life, line, kind, true)
  end
  entry.held = n
end

-- What the app's datagrams have the launcher say and call (log lines,
-- on_status, a state callback, on_exit after them) is told once all they
-- change is done (app.state, app.status, the reloads under way, the
-- watchdog's timers), and in the order they were read, by one teller at
-- a time: a log function may wait, inside a loop, and meanwhile another
-- read of the socket (the listener's, a reload's, the watchdog's, the
-- app's end's) reads on, acts on what it reads at once, and leaves its
-- lines and calls to that teller, which tells them once it is done with
-- its own. (A teller whose coroutine died of what it told raised is no
-- teller: the next read tells the rest.) What an app drives as often as it
-- likes is not queued without a bound meanwhile: a tell of a `kind` (a
-- line of noisy's, on_status, a state callback) takes the place of the
-- one of its kind still queued (its fn the latest), always, or once
-- MAX_TELLS wait (a state callback: each state is told, but in a flood);
-- that entry is returned.
function say(life, fn, kind, always)
  local q = life.tells
  if not q then
    q = { first = 1, last = 0, kinds = {} }
    life.tells = q
  end
  if kind then
    local entry = q.kinds[kind]
    if entry and (always or q.last - q.first + 1 >= MAX_TELLS) then
      entry.fn = fn
      return entry
    end
    entry = { fn = fn, kind = kind, held = 0 }
    q.kinds[kind] = entry
    q.last = q.last + 1
    q[q.last] = entry
    return entry
  end
  q.last = q.last + 1
  q[q.last] = fn
end

function teller_busy(life)
  local co = life.telling
  if co and coroutine.status(co) == "dead" then life.telling = false end
  -- (a teller handed to a task, not begun yet: tell_queued)
  local task = life.teller
  if task and coroutine.status(task.co) == "dead" then life.teller = false end
  return life.telling or life.teller
end

local TELLING = { __close = function(g) if g.life.telling == g.co then g.life.telling = false end end }

-- A teller handed to a task (tell_queued), begun: the teller is whoever
-- runs this now, that task, or the end of a failed run that never began
-- it. (What it raises there is logged: that end must go on.)
local function tell_in_task(life)
  life.teller = false
  tell_queued(life)
end
local function teller_raised(err) log.default("error", "a log function raised " .. log.raised(err)) end

-- Tell what is queued, unless a teller is at it already (that one tells
-- it). A tell that raises (a logger's error, a ^C in it) has the rest
-- told all the same, and the first error raised after: nothing queued is
-- left for a next read that may never come (the app's on_exit, queued
-- behind its last lines).
function tell_queued(life)
  local q = life.tells
  if not q or q.first > q.last or teller_busy(life) then return end
  -- inside appstart.run but out of its tasks (its own rounds: the
  -- listener's, a timer's, a watch's callback): a log function that
  -- waits there waits in a nested turn of the loop, which serves
  -- descriptors and timers but resumes no task until it returns, and
  -- every task of the run waited for this app's lines. A task tells
  -- them (a callback's: one a failed run never began is run then), the
  -- teller until it has begun; what comes meanwhile queues behind.
  if loop.running() and not loop.in_task() then
    life.teller = loop.callback(teller_raised, tell_in_task, life)
    return
  end
  local co = coroutine.running()
  life.telling = co
  local _ <close> = setmetatable({ life = life, co = co }, TELLING)
  local raised
  while q.first <= q.last do
    local fn = q[q.first]
    q[q.first] = nil
    q.first = q.first + 1
    if type(fn) == "table" then
      -- (told now: one of its kind queued after is a new entry)
      if q.kinds[fn.kind] == fn then q.kinds[fn.kind] = nil end
      fn = fn.fn
    end
    local ok, err = pcall(fn)
    if not ok and not raised then raised = { err } end
  end
  q.first, q.last = 1, 0
  if raised then error(raised[1], 0) end
end

-- The reloads that wait (reload_wait) look again now: what they wait for
-- was read by another read of the socket (the listener's, the
-- watchdog's), which may have left nothing there to wake their wait.
local function wake_reloads(life)
  local reloads = life.reload
  if not reloads then return end
  for r in pairs(reloads) do
    if r.task then
      r.task:wake()
    elseif r.source and r.source.poller then
      -- (under another loop: the wait is on the source's own descriptor,
      -- released as app:close() releases it; the wait closes it after)
      loop.release(r.source:fd())
    end
  end
end

-- app.state moves (RELOADING=1, READY=1, STOPPING=1); "stopping" is for
-- good, as with systemd (a later READY=1 makes no app ready again). Its
-- line and state callback are told after (say).
local function set_state(app, state)
  if app._state == state or not RUNNING[app._state] or app._state == "stopping" then return end
  app._state = state
  local life = app._life
  noisy(app, "state", "info", format("%s: %s", app._program, state))
  if app._on_state then
    say(life, function()
      if app._on_state then loop.callback(report(app, "a state callback"), app._on_state, app, state) end
    end, "state callback")
  end
end

function kill_grace(app)
  return app._opts.kill_grace or DEFAULT_GRACE
end

-- No ping in time (or WATCHDOG=trigger): SIGABRT, SIGKILL after kill_grace.
local function watchdog_fire(app, why)
  local life = app._life
  if life.wd_fired or not RUNNING[app._state] or not app._proc then return end
  -- ended already (a WATCHDOG=trigger as its last word, read as it
  -- exited): nothing for the watchdog to kill; its end is told as it is
  if app._proc:poll() then return end
  life.wd_fired = true
  local grace = kill_grace(app)
  -- (the SIGKILL's timer first: a signal sent through the helper waits,
  -- and the app may end or be closed meanwhile)
  loop.unwatch(life.kill_timer or nil)
  life.kill_timer = loop.at(now() + grace, function()
    life.kill_timer = false
    if app._proc and not check(app) then signal.kick(app._proc, app._opts, "KILL", app_logger(app), app._program) end
  end)
  local proc = app._proc
  local logger = app_logger(app)
  signal.kick(proc, app._opts, "ABRT", logger, app._program)
  signal.kick(proc, app._opts, "CONT", logger, app._program)
  -- (said last: a log function that waits, or raises, a ^C in it, leaves
  -- nothing undone; after what is still to be told of the app's datagrams)
  say(life, function()
    app._log("warn", format("%s: watchdog: %s: SIGABRT, then SIGKILL after %g s", app._program, why, grace))
  end)
  tell_queued(life)
end

-- The watchdog's one timer: a ping only moves the due time, the timer
-- looks at it when it fires.
local function watchdog_check(app)
  local life = app._life
  local timer = life.wd_timer -- (the one that fired)
  -- what came meanwhile is read first (a loop that runs its timers before
  -- it polls, as libuv does, after a busy spell): a ping counts from when
  -- it is read, as at every wait. (The timer still set: a ping read here
  -- only moves the due time.)
  if RUNNING[app._state] and now() >= life.wd_due then drain_all(app) end
  -- a WATCHDOG_USEC= read just now has set the watchdog anew: off, or
  -- with a timer of its own (this one let go of)
  if life.wd_timer ~= timer then return end
  life.wd_timer = false
  if not RUNNING[app._state] or not life.watchdog or life.wd_fired then return end
  local due = life.wd_due
  if now() >= due then return watchdog_fire(app, format("no WATCHDOG=1 within %g s", life.watchdog)) end
  life.wd_timer = loop.at(due, function() watchdog_check(app) end)
end

local function watchdog_ping(app)
  local life = app._life
  life.wd_due = now() + life.watchdog
  if not life.wd_timer then life.wd_timer = loop.at(life.wd_due, function() watchdog_check(app) end) end
end

--- A stop has begun (STOPPING=1, app:terminate, a supervisor's stop):
-- the watchdog is over, as systemd's is once a unit stops: a shutdown
-- that sends no ping is no hang, its kill_grace is its bound. (A
-- WATCHDOG=trigger still kills.)
function App.watchdog_over(app)
  local life = app._life
  if not life then return end
  -- (a stop of the launcher's, app:terminate, a supervisor's, takes over
  -- from a STOPPING=1's bound, with its own grace)
  loop.unwatch(life.stop_bound or nil)
  life.stop_bound = false
  if life.wd_over then return end
  loop.unwatch(life.wd_timer or nil)
  life.wd_timer, life.watchdog, life.wd_over = false, false, true
end

-- What of the watchdog runs now (App.watchdog_over ends it): its period,
-- or "bound" for a STOPPING=1's bound, or false.
local function watched_now(app)
  local life = app._life
  if not life then return false end
  if life.stop_bound then return "bound" end
  return not life.wd_over and life.watchdog or false
end

-- A shutdown's bound (bound_shutdown), at due; since: when it began,
-- extended: an EXTEND_TIMEOUT_USEC= of the app's has moved it.
local function set_stop_bound(app, since, due, extended)
  local life = app._life
  loop.unwatch(life.stop_bound or nil)
  local grace = kill_grace(app)
  life.stop_due = due
  life.stop_bound = loop.at(due, function()
    life.stop_bound = false
    if life.wd_fired or not app._proc or stopping[app] or check(app) then return end
    life.wd_fired = true
    signal.kick(app._proc, app._opts, "KILL", app_logger(app), app._program)
    -- (said last, as watchdog_fire's, and told as it tells: by a task
    -- inside appstart.run, after what the app's datagrams have still to
    -- tell)
    say(life, function()
      app._log("warn", extended
        and format("%s: watchdog: still running %.3f s after STOPPING=1 (kill_grace %g s, which its"
          .. " EXTEND_TIMEOUT_USEC= extended): SIGKILL", app._program, due - since, grace)
        or format("%s: watchdog: still running %g s after STOPPING=1: SIGKILL", app._program, grace))
    end)
    tell_queued(life)
  end)
end

-- The app said STOPPING=1 with its watchdog on: the watchdog is over, and
-- kill_grace bounds the shutdown instead (as a stop's grace does; with
-- systemd, TimeoutStopSec, which an EXTEND_TIMEOUT_USEC= moves: on_message):
-- still running then, it has hung on its way out, and is killed (SIGKILL,
-- how.watchdog). A stop of the launcher's (app:terminate, a supervisor's:
-- App.watchdog_over) takes over with its own grace.
local function bound_shutdown(app)
  -- (never for an app that has ended or been closed: nothing would let
  -- go of the timer, which held the loop for kill_grace)
  if not app._proc or not RUNNING[app._state] then return end
  local t = now()
  app._life.stop_since = t
  set_stop_bound(app, t, t + kill_grace(app), false)
end

-- A stop that could not begin (no signal sent) gives back what
-- watched_now said watched the app: its watchdog, its period counted
-- from now (a ping read meanwhile was not counted), or a STOPPING=1's
-- bound, kill_grace from now.
local function watch_again(app, watched)
  local life = app._life
  if not watched or not life or not RUNNING[app._state] or life.wd_fired then return end
  if watched == "bound" or app._state == "stopping" then
    -- (a STOPPING=1 read meanwhile, the watchdog on: bounded as one is)
    if not life.stop_bound then bound_shutdown(app) end
  elseif life.wd_over then
    life.wd_over, life.watchdog = false, watched
    watchdog_ping(app)
  end
end

-- Refused senders: one line a second at most, with a count (said now:
-- force, from a tell; else queued, one at a time, told as the app's other
-- lines are: inside appstart.run by a task, tell_queued).
local function tell_refused(app)
  local r = app._life.refused
  local n = r.n
  if n == 0 then return end
  r.n, r.at = 0, now()
  if log.drops(app._log, "warn") then return end
  local access = app._opts.notify_access or DEFAULTS.notify_access
  app._log("warn", format("%s: ignored %d notify datagram%s from processes not admitted, the last from pid %d"
    .. " (%s)", app._program, n, n == 1 and "" or "s", r.pid,
    app._life.spell("notify_access", access)))
end

function log_refused(app, force)
  local life = app._life
  local r = life.refused
  if not r or r.n == 0 then return end
  if force then return tell_refused(app) end
  if r.queued or now() - r.at < 1 then return end
  r.queued = true
  say(life, function()
    r.queued = false
    tell_refused(app)
  end)
  tell_queued(life)
end

-- MAINPID= after ready: from the app itself, to a pid the pid truth rules
-- admit; the app object follows it (its watch too).
local function move_main(app, pid, sender)
  if pid == app.pid then return end
  local life = app._life
  if sender ~= app.pid then
    noisy(app, "mainpid from", "warn", format("%s: ignored MAINPID=%d from pid %d: only the app (pid %d) may"
      .. " move it", app._program, pid, sender, app.pid))
    return
  end
  local proc, why = life.listener:verify_main(pid)
  if not proc then
    -- (a flood is held back by reason: each reason is one of a few)
    noisy(app, "mainpid: " .. why, "warn", format("%s: ignored MAINPID=%d: %s", app._program, pid, why))
    return
  end
  -- a main handed back to a child of ours that an earlier move left
  -- watched to its end (below): that process, which reaps it, is the
  -- main's again (the one just made, which would not, let go of; a second
  -- one watched to the end would have held its pidfd, and the reap, past
  -- the app's end)
  local kept = life.old_mains and life.old_mains[pid]
  if kept then
    life.old_mains[pid] = nil
    loop.unwatch(kept.watch)
    proc:close()
    proc = kept.proc
  end
  -- the old pidfd leaves the poller before it is closed; whoever waits on
  -- it (app:wait) is woken, to wait on the new one
  local watched = app._watch
  if watched then loop.unwatch(watched); app._watch = false end
  loop.release(app._proc:descriptors())
  local old = app._proc:switch(proc)
  if old then -- the old main is a child of ours: reaped when it exits
    local fd, old_pid = old:fd(), app.pid
    life.old_mains = life.old_mains or {}
    local entry = { proc = old, watch = false }
    entry.watch = loop.watch(fd, function()
      if not old:poll() then return false end
      if life.old_mains[old_pid] == entry then life.old_mains[old_pid] = nil end
      loop.close_process(old)
      return true
    end, not fd and settings.poll_interval or nil)
    life.old_mains[old_pid] = entry
  end
  local was = app.pid
  app.pid = pid
  -- the syslog tag names the main process
  if app._out then app._out:set_pid(pid) end
  if watched then App.watch(app, app._proc:fd()) end
  -- (once a second at most: an app may move it as fast as it forks; said
  -- last: a log function that waits, or raises, leaves nothing undone)
  noisy(app, "mainpid moved", "info", format("%s: main pid %d -> %d (MAINPID=)", app._program, was, pid))
end

-- on_status, one call at a time: statuses that come while it runs (it may
-- wait, inside a loop) are not queued, the latest is its next call's.
-- A call done (once): the next may come, one for a status that came while
-- it ran if it raised (returned, it made that call itself), and then an
-- on_exit held behind it runs (held again behind that call, if one is
-- made). None once a failed appstart.run has ended the app: an error
-- ended the run, this call's perhaps (the on_exit still runs).
local call_on_status -- below
local function status_over(life, raised)
  local app, on_status = life.status_app, life.status_fn
  life.status_busy, life.status_co, life.status_cq = false, false, false
  life.status_app, life.status_fn = false, false
  local over = app and app._run_over
  local function go_on()
    if life.status_next and app and not app._closed and not over then
      life.status_next = false
      call_on_status(app, on_status)
    end
    local exit_next = life.exit_next
    if exit_next then
      life.exit_next = nil
      exit_next()
    end
  end
  -- (raised: its error on its way out to the call that reports it, which
  -- goes on once it has: else the next call ran, and was reported, first)
  if raised and not over then
    life.after_report = go_on
    return
  end
  go_on()
end
local function status_done(done, err)
  if done.over then return end
  done.over = true
  status_over(done.life, err ~= nil)
end
local STATUS_DONE = { __close = status_done }

-- Is an on_status call still running? One whose coroutine died of the
-- error it raised is not, though it closed nothing (under cqueues nobody
-- closes a coroutine that failed): it is done when that is seen.
function status_busy(life)
  local co = life.status_co
  if co and coroutine.status(co) == "dead" then status_over(life) end
  return life.status_busy
end

-- A status or an on_exit held behind an on_status call of a cqueues
-- controller's: a call that dies of its error there closes nothing and
-- tells nobody, and nothing else may look at the app again (its end seen,
-- no other status to come). A coroutine of that controller looks, each
-- poll interval, until the call is over (status_busy lets what it held go
-- then), so that they still come once cq:loop() has returned that error
-- and is called again.
function look_until_status_over(life)
  local controller = life.status_cq
  if not controller or life.status_looked then return end
  life.status_looked = true
  loop.cqueues_adapter().when_over(controller, function()
    if status_busy(life) then return false end
    life.status_looked = false
    return true
  end, settings.poll_interval)
end

function call_on_status(app, on_status)
  local life = app._life
  if app._run_over then return end
  if status_busy(life) then
    life.status_next = true
    look_until_status_over(life)
    return
  end
  life.status_busy, life.status_co, life.status_cq = true, false, false
  -- (a look of an earlier call's, on a controller perhaps not run again,
  -- is not this one's)
  life.status_app, life.status_fn, life.status_looked = app, on_status, false
  local reported = report(app, "on_status")
  loop.callback(function(err)
    reported(err)
    local after = life.after_report
    if after then
      life.after_report = nil
      after()
    end
  end, function()
    -- done as the call returns, or as what it raises goes out of it to
    -- the protected call that reports it (unraised here, its traceback
    -- is the raise's), and as its task is closed before it returns (a
    -- failed run closes its tasks: the on_exit held was lost)
    local _ <close> = setmetatable({ life = life }, STATUS_DONE)
    life.status_co = coroutine.running()
    -- (a coroutine of a cqueues controller's, not a task of
    -- appstart.run's, which is closed all the same)
    local cq = package.loaded.cqueues
    life.status_cq = not loop.task() and cq and cq.running() or false
    -- (not once the app is closed: a call queued before, the next of a
    -- call running as it was closed)
    while not app._closed do
      life.status_next = false
      on_status(app, app.status)
      if not life.status_next then break end
    end
  end)
end

-- What a message says of the app: its status, an errno (told after:
-- say).
local function take_report(app, m)
  local life = app._life
  local status, errno = m.status, m.errno
  if status then
    app.status = status
    noisy(app, "status", "info", function() return format("%s: status: %s", app._program, printable(status)) end)
    -- (one call queued stands for them all: it gets app.status, the
    -- latest, as a call that runs meanwhile has its next call get it)
    local on_status = app._opts.on_status
    if on_status then say(life, function() call_on_status(app, on_status) end, "on_status", true) end
  end
  if errno then noisy(app, "errno", "info", format("%s: app reported ERRNO=%d", app._program, errno)) end
end

local function on_message(app, m, sender)
  if m.mainpid then move_main(app, m.mainpid, sender) end
  take_report(app, m)
  local life = app._life
  -- (its socket closed meanwhile: the rest of the datagram is for nobody,
  -- and a timer armed now would outlive the app's reading. Nothing of the
  -- user's runs before the datagram is done: its lines and callbacks are
  -- told after, say)
  if not life.listener then return end
  -- the reloads under way (app:reload() in several tasks at once: each
  -- waits for the same RELOADING=1 and READY=1)
  local reloads = life.reload
  if m.extend and reloads then
    for r in pairs(reloads) do
      local until_ = now() + m.extend / 1e6
      if until_ > r.deadline then r.deadline, r.extended = until_, true end
    end
  end
  -- (the option given: a WATCHDOG_USEC= after a 0 turns it on again)
  if m.watchdog_usec and app._opts.watchdog and not life.wd_over then
    -- the new period counts from now, and the timer goes with it (it may
    -- be due sooner than the old one's); 0 turns the watchdog off
    loop.unwatch(life.wd_timer or nil)
    life.wd_timer = false
    if m.watchdog_usec == 0 then
      life.watchdog = false
    else
      life.watchdog = m.watchdog_usec / 1e6
      life.wd_due = now() + life.watchdog
      life.wd_timer = loop.at(life.wd_due, function() watchdog_check(app) end)
    end
  end
  if m.watchdog == "ping" and life.watchdog then watchdog_ping(app) end
  -- (STOPPING=1 first: it wins over a READY=1 in the same datagram)
  if m.stopping then
    set_state(app, "stopping")
    local watched = life.watchdog and not life.wd_over
    App.watchdog_over(app)
    if watched then bound_shutdown(app) end
  end
  -- a STOPPING=1's bound (this datagram's too) is moved to the
  -- EXTEND_TIMEOUT_USEC= from now when that is later, as systemd moves its
  -- stop timeout: an app whose shutdown takes long keeps asking (it was
  -- killed kill_grace after its STOPPING=1 all the same)
  if m.extend and life.stop_bound then
    local until_ = now() + m.extend / 1e6
    if until_ > life.stop_due then set_stop_bound(app, life.stop_since, until_, true) end
  end
  if m.reloading and app._state ~= "stopping" then
    set_state(app, "reloading")
    if reloads then
      for r in pairs(reloads) do r.reloading = true end
    end
  end
  if m.ready and app._state == "reloading" then
    set_state(app, "ready")
    if reloads then
      for r in pairs(reloads) do
        if r.reloading then r.done = true end
      end
    end
  end
  -- (a reload done, or over for good: its waits look again now)
  if reloads and (m.ready or m.stopping) then wake_reloads(life) end
  -- (with a watchdog or not: the app asks for its watchdog's end, as
  -- sd_notify(3) says it may without WatchdogSec=)
  if m.watchdog == "trigger" then watchdog_fire(app, "WATCHDOG=trigger") end
end

--- Read what the app's socket holds (a bounded batch), acting on each
-- datagram: true when the batch was full (more may wait). last: the app
-- has ended, what it sent is only its last word (a status; no new main,
-- no state, no watchdog).
function App.drain(app, last)
  local life = app._life
  local l = life and life.listener
  local full = true
  for _ = 1, READS_PER_WAKE do
    if not l or life.listener ~= l then return false end
    local kind, a, b = l:read()
    if not kind then full = false; break end
    if kind == "later" then
      -- a sender that cannot be checked for now (out of descriptors):
      -- its datagram is held, and read again a moment later; the socket
      -- leaves the waits meanwhile (what is queued behind it would wake
      -- them at once, again and again)
      full = false
      if not last and not life.later then
        loop.unwatch(life.listen or nil)
        life.listen = false
        life.later = loop.at(now() + settings.poll_interval, function()
          life.later = false
          if life.listener ~= l then return end
          life.listen = loop.listen(l:fd(), function() App.drain(app) end)
          drain_all(app)
        end)
      end
      break
    end
    if kind == "message" then
      if last then take_report(app, a) else on_message(app, a, b) end
      tell_queued(life)
    elseif kind == "refused" then
      local r = life.refused
      if not r then
        r = { n = 0, at = -math.huge, pid = 0, queued = false }
        life.refused = r
      end
      r.n, r.pid = r.n + 1, a
    elseif kind == "malformed" then
      -- after ready a broken datagram is not worth the app's life
      noisy(app, "malformed", "warn", format("%s: ignored a malformed notify datagram: %s", app._program, a))
      tell_queued(life)
    else
      -- (closed first: a log function that waits leaves no other read to
      -- fail on it again meanwhile)
      say(life, function() app._log("error", format("%s: cannot read the notify socket: %s", app._program, a)) end)
      stop_listening(app)
      tell_queued(life)
      return false
    end
  end
  log_refused(app)
  return full
end

-- All the socket holds (READS_BEFORE_VERDICT datagrams at most), in
-- batches (last: as App.drain's).
function drain_all(app, last)
  for _ = 1, READS_BEFORE_VERDICT // READS_PER_WAKE do
    if not App.drain(app, last) then return end
  end
end

--- After ready, under a loop: keep reading the app's notify socket
-- (listener, from the core) in the background, and start its watchdog
-- (watchdog: the seconds of a WATCHDOG_USEC= that came before ready, or
-- nil for the option's; spell(field, value): how its log names an
-- option, as the start's, start.spelling).
function App.listen(app, listener, watchdog, spell)
  if watchdog == nil then watchdog = app._opts.watchdog end
  -- (0: the app said WATCHDOG_USEC=0, the watchdog off)
  if watchdog == 0 then watchdog = nil end
  local life = { listener = listener, listen = false, watchdog = watchdog or false,
    wd_due = false, wd_timer = false, wd_fired = false, wd_over = false, kill_timer = false, stop_bound = false,
    stop_since = false, stop_due = false,
    reload = false, refused = false, later = false,
    -- what is logged of the app's messages, once a second at most a kind
    -- (log.limited); on_status: one call at a time, the latest status next
    quiet = {}, status_busy = false, status_next = false, spell = spell,
    -- what is still to be told of its datagrams, and who tells it (say;
    -- teller: a task handed it, not begun yet)
    tells = false, telling = false, teller = false }
  app._life = life
  life.listen = loop.listen(listener:fd(), function() App.drain(app) end)
  if life.watchdog then watchdog_ping(app) end
end

-- A method's self must be an app: app.kill("TERM") for app:kill("TERM")
-- would read the string as a closed app. (level: error's, as counted
-- from the caller of is_app)
local function is_app(app, what, level)
  errors.check_self(app, App, what, "an app", level + 1)
end

-- on_status and on_output have the app while its start is under way: the
-- start holds it then (its process included), and decides its end
local function not_starting(app, what)
  is_app(app, what, 3)
  if app._state == "starting" then
    error(what .. ": the app is still starting (its start holds it: appstart.begin's h:cancel() ends it)", 3)
  end
end

local function check_seconds(value, what, level)
  if value ~= nil and (type(value) ~= "number" or value ~= value or value < 0) then
    error(string.format("%s: seconds expected (a number >= 0), got %s", what, errors.shown(value)), level + 1)
  end
end

--- Wait for the app to exit.
-- @param timeout seconds, or nil to wait as long as it takes
-- @return how ({code = n} | {signal = n} | {}) or nil, "timeout"
-- (nil, "cancelled" when the calling task is cancelled)
function App:wait(timeout)
  check_seconds(timeout, "app:wait", 2)
  not_starting(self, "app:wait")
  -- (a call that waits serves the rest in a plain script, even with no
  -- wait, and reaps what has exited: what a helper left, adopted, that
  -- exited after the app's end was seen, which serving alone reaps only
  -- where something waits in the shared poller)
  if self._state == "exited" then
    -- what it left in its group is looked at again: out of descriptors
    -- as it ended, it could not be then (and is let go of, once gone,
    -- here rather than at a later call that waits)
    local rest = not loop.served() and App.leftover(self)
    if rest and rest:rest() == 0 then App.leftover_gone(self) end
    core.reap()
    loop.serve()
    return self._how
  end
  if not self._proc then
    -- (and reaps what has exited, this app too: a closed child of the
    -- launcher is reaped by the first call that waits after its exit)
    core.reap()
    loop.serve()
    return nil, "closed"
  end
  local deadline = timeout and now() + timeout
  local looked = false
  while true do
    local how = check(self)
    if how then
      if not looked then
        core.reap()
        loop.serve()
      end
      return how
    end
    -- (a wait whose time is up still looks once: a script that polls with
    -- app:wait(0) gets the pipes read, as every call that waits reads them)
    if deadline and now() >= deadline and looked then return nil, "timeout" end
    looked = true
    local fd = self._proc:fd()
    local wake = deadline
    if not fd then
      wake = now() + settings.poll_interval
      if deadline and deadline < wake then wake = deadline end
    end
    local ok, why = loop.wait(fd, wake, self._proc)
    if ok == nil then return nil, why end
    -- closed meanwhile (by a callback, another task)
    if not self._proc and self._state ~= "exited" then return nil, "closed" end
  end
end

--- The last n captured lines (default 10), oldest first: what the app
-- wrote to a stdout or stderr the launcher reads ("capture", "syslog", a
-- {file = ...}), from the ring of the last output_keep bytes. Reads what
-- the pipes hold first. {} when the launcher reads neither.
function App:tail(n)
  is_app(self, "app:tail", 2)
  if n ~= nil then
    -- an integral float (n / 2 of an even n) is an integer, as Lua's own
    -- functions take it
    local i = type(n) == "number" and math.tointeger(n)
    if not i or i < 0 then error("app:tail: an integer >= 0 expected, got " .. errors.shown(n), 2) end
    n = i
  end
  if not self._out then return {} end
  return self._out:tail(n or 10)
end

-- sig to an app that runs: true | nil, message. stop: a stop's (counted
-- in how.left, the main's end on it no crash); else not counted in
-- how.left (app:kill: no stop).
local function send_to(app, sig, stop)
  if check(app) then return nil, "app has exited" end
  if not app._proc then return nil, "closed" end
  if stop then stop_sent[app] = true end
  local ok, msg = signal.send(app._proc, app._opts, sig, false, not stop)
  if not ok then return nil, msg end
  return true
end

--- Send a signal: a name ("TERM", "SIGTERM", "term") or a number; default
-- SIGTERM. true, or nil, message. An unknown signal raises.
function App:kill(sig)
  -- (an integral float, 15.0, is the integer, as Lua's own functions take it)
  if math.type(sig) == "float" then sig = math.tointeger(sig) or sig end
  if sig ~= nil then
    local ok = (type(sig) == "string" or math.type(sig) == "integer") and pcall(core.signum, sig)
    if not ok then error("app:kill: unknown signal '" .. tostring(sig) .. "'", 2) end
  end
  not_starting(self, "app:kill")
  return send_to(self, sig or "TERM", false)
end

--- sig to the app and what its kill_mode reaches, as a stop that does not
-- wait sends it (a supervisor's: SIGTERM, SIGKILL after its grace): as
-- app:kill(sig), but counted in how.left, and the main's end on it is
-- the stop's, no crash (what is left in its group is not sent SIGTERM
-- again, nor said to be left; it still gets SIGKILL after kill_grace).
function App.stop_signal(app, sig)
  return send_to(app, sig, true)
end

-- A stop of an app that has ended by itself waits for what it left in its
-- group (kill_mode "group") too, as any stop does: the SIGKILL after
-- kill_grace comes meanwhile (from end_the_rest's task inside a loop, its
-- watch in a plain script: both run in these waits, whose cancel is
-- ignored as a stop's grace ignores it); after grace from now, where the
-- stop has one of its own (app:terminate(grace)), as for an app that runs.
local function await_leftovers(app, grace)
  local entry = leftovers[app]
  if grace and entry and not entry.killed then entry.deadline = now() + grace end
  local deadline = now() + (grace or kill_grace(app)) + ending.KILL_WAIT + 1
  while true do
    local rest = App.leftover(app)
    if not rest or now() >= deadline then return end
    -- (in a plain script its watch would see them gone at its next look)
    if not loop.served() and rest:rest() == 0 then return App.leftover_gone(app) end
    loop.wait(nil, math.min(deadline, now() + settings.poll_interval))
  end
end

-- The stop of app (app:terminate's) is over: the process an end its
-- watch saw meanwhile left to it is closed. Once; then a no-op.
local function stop_over(app, proc)
  local left_to_us = stopping[app] == "ended"
  stopping[app] = nil
  if left_to_us then loop.close_process(proc) end
end

-- The rest of a stop whose caller never came back (guard: Stopping's),
-- in a task of its own: the SIGTERM if it was not sent yet, the SIGKILL
-- at the grace's end, the wait for the end, told then as app:terminate
-- tells it.
local function finish_stop(guard)
  local app, proc, progress = guard.app, guard.proc, guard.progress
  local _ <close> = loop.shield()
  local ok, how, message
  if progress.deadline then
    ok, how = pcall(ending.finish, proc, progress, app._opts)
  else
    ok, how, message = pcall(ending.terminate, proc, guard.grace, false, app._opts, progress)
  end
  stop_over(app, proc)
  if not ok then error(how, 0) end
  -- (closed meanwhile: let go of, as app:terminate leaves it)
  if app._state ~= "exited" and not app._proc then return end
  if not how then
    watch_again(app, guard.watched)
    return app._log("error", format("%s: %s", app._program, tostring(message)))
  end
  ended(app, how, true)
  await_leftovers(app)
end

-- A stop under way, in a to-be-closed variable: one that never comes back
-- (its coroutine closed, by coroutine.close or a failed appstart.run,
-- inside its grace) is finished by a task of its own, as a closed start
-- is (Starting:__close): over at once, an app that ignores SIGTERM would
-- run on past its launcher, never killed, its end never told.
local Stopping = {
  __close = function(guard)
    if stopping[guard.app] ~= nil then loop.call(finish_stop, guard) end
  end,
}

--- SIGTERM, then SIGKILL after `grace` seconds (default: the start's
-- kill_grace). Returns how the app ended, or nil, message when it cannot
-- be signalled (an app of another user, for an unprivileged launcher).
function App:terminate(grace)
  check_seconds(grace, "app:terminate", 2)
  -- (endless, no SIGKILL would ever come: what hangs would not be ended)
  if grace == math.huge then
    error("app:terminate: seconds expected (a finite number >= 0), got " .. tostring(grace), 2)
  end
  not_starting(self, "app:terminate")
  -- (a stop: its waits ignore a cancel, for good too)
  local _ <close> = loop.shield()
  local how = check(self)
  if how then
    await_leftovers(self, grace)
    return how
  end
  if not self._proc then return nil, "closed" end
  local message
  local proc = self._proc
  -- (an end its watch sees meanwhile is this stop's: ended leaves the
  -- group, and the process, to it)
  stopping[self] = proc
  local watched = watched_now(self)
  App.watchdog_over(self)
  local guard = setmetatable({ app = self, proc = proc, grace = grace or kill_grace(self), progress = {},
    watched = watched }, Stopping)
  local _ <close> = guard
  local ok
  ok, how, message = pcall(ending.terminate, proc, guard.grace, true, self._opts, guard.progress) -- check polled it
  stop_over(self, proc)
  if not ok then error(how, 0) end
  -- closed meanwhile (by a callback, another task): its process was let
  -- go of, not ended, and the app is left as it runs
  if self._state ~= "exited" and not self._proc then return nil, "closed" end
  if not how then
    -- its SIGTERM was not sent (an app the launcher may not signal): no
    -- stop has begun, and what watched it watches on
    watch_again(self, watched)
    return nil, message
  end
  -- (a watch may have seen the end first, inside the wait: its record is
  -- the app's, and what it began for the group is over once this stop is)
  ended(self, how, true)
  await_leftovers(self)
  return self._how
end

-- A wait on the app's notify socket and its death at once (a source for
-- loop.wait: fds() for appstart.run, fd() for an event loop that takes
-- one descriptor, wait() for a blocking wait).
local Both = {}
Both.__index = Both
function Both:fds() return self[1], self[2] end
-- (nil, why out of descriptors: no poll set for the two to be had)
function Both:fd()
  if not self.poller then
    local p, why = core.poller()
    if not p then return nil, why end
    self.poller = p
    for i = 1, #self do assert(self.poller:add(self[i], i)) end
  end
  return self.poller:fd()
end
function Both:wait(timeout)
  if not self:fd() then
    -- out of descriptors: the first alone, a poll interval at most (the
    -- caller looks at both again then)
    local most = settings.poll_interval
    return core.wait_readable(self[1], timeout and timeout >= 0 and math.min(timeout, most) or most)
  end
  return self.poller:wait(timeout or -1, {}) > 0
end
function Both:close()
  if self.poller then self.poller:close(); self.poller = nil end
end

-- (as systemd refuses to reload a unit that is stopping: the signal
-- would come to an app on its way out, and no READY=1 after it)
local STOPPING = "app is stopping (it said STOPPING=1)"

-- Wait for the reload r to be done, for the app's end, its STOPPING=1
-- (for good: no reload can end after it) or the deadline.
local function reload_wait(app, r, timeout)
  -- the deadline had passed as this round began: all the socket holds is
  -- read before a timeout verdict (a round reads a batch, fewer than a
  -- socket may queue: a READY=1 sent in time behind a flood, read late,
  -- a busy launcher's, was never read)
  local late = false
  while true do
    if late then drain_all(app) else App.drain(app) end
    if r.done then return true end
    if app._state == "stopping" then return nil, STOPPING end
    local how = check(app)
    if how then
      return nil, errors.new("died", "app " .. tostring(how) .. " while it reloaded",
        { pid = app.pid, status = how }, app._program)
    end
    if not app._proc then return nil, "closed" end -- by another task, a callback
    if late and now() >= r.deadline then
      -- (one whose EXTEND_TIMEOUT_USEC= moved the deadline: the time it got)
      local within = r.extended and format("%.3f s (ready_timeout %g s, which its EXTEND_TIMEOUT_USEC= extended)",
        r.deadline - r.since, timeout) or format("%g s", timeout)
      return nil, errors.new("timeout", format("app not reloaded within %s: %s", within,
        r.reloading and "no READY=1 came after its RELOADING=1" or "no RELOADING=1 came on its notify socket"),
        { pid = app.pid }, app._program)
    end
    -- (past it now: the next round reads all the socket holds, and judges)
    late = now() >= r.deadline
    if not late then
      local listener = app._life.listener
      if not listener then -- its socket failed (logged)
        return nil, errors.new("protocol", "the app's notify socket failed", { pid = app.pid }, app._program)
      end
      -- made afresh each time round: MAINPID= may have moved the app
      local fd = app._proc:fd()
      -- (a datagram held, its sender not checked yet: the socket is out of
      -- the wait, which ends at the next look)
      local held = app._life.later and true
      -- (what owns the two descriptors is held by the source, as long as a
      -- wait holds it)
      local source = (fd or not held) and setmetatable(held and { fd, proc = app._proc }
        or { listener:fd(), fd, listener = listener, proc = app._proc }, Both) or nil
      local wake = (fd and not held) and r.deadline or math.min(r.deadline, now() + settings.poll_interval)
      -- (app:close() wakes it: under another loop the wait is on the
      -- source's own descriptor, which the release of the app's knows not)
      r.source, r.task = source or false, loop.task() or false
      local ok = loop.wait(source, wake)
      r.source, r.task = false, false
      if source then source:close() end
      if ok == nil then return nil, errors.new("cancelled", "reload cancelled", { pid = app.pid }, app._program) end
    end
  end
end

--- Ask the app to reload: reload_signal (default SIGHUP) to its main
-- process. For a notify app under a loop, then wait for its RELOADING=1
-- and READY=1 within ready_timeout (EXTEND_TIMEOUT_USEC= extends it).
-- @return true, or nil, err (err.code "died", "timeout" or "cancelled")
function App:reload()
  not_starting(self, "app:reload")
  if check(self) then
    return nil, errors.new("died", "app has exited", { pid = self.pid or nil, status = self._how or nil },
      self._program)
  end
  if not self._proc then return nil, "closed" end
  -- what the app said while the launcher was busy is read first: its
  -- state decides (a RELOADING=1 of its own not read yet had the signal
  -- sent into that reload, whose READY=1 was taken for this one's)
  local life = self._life
  if life and life.listener then
    drain_all(self)
    if not self._proc then return nil, "closed" end -- (by a callback)
  end
  if self._state == "stopping" then return nil, STOPPING end
  -- (nor one that app:terminate stops: the signal would come to an app on
  -- its way out)
  if stopping[self] then return nil, "app is stopping (app:terminate under way)" end
  -- waited for from before the signal: its RELOADING=1 may come while the
  -- signal is on its way (through appstart-helper, a wait that yields,
  -- while the loop reads the notify socket)
  local timeout = self._opts.ready_timeout or DEFAULTS.ready_timeout
  local r, reloads
  local function await(reloading)
    r = { reloading = reloading, done = false, deadline = now() + timeout, since = now(), extended = false,
      source = false, task = false }
    reloads = life.reload or {}
    life.reload = reloads
    reloads[r] = true
  end
  local function unwait()
    if not r then return end
    reloads[r] = nil
    if life.reload == reloads and not next(reloads) then life.reload = false end
  end
  -- a reload of the app's own under way (it said RELOADING=1): its READY=1
  -- first, then the signal, as systemd runs a reload job once the unit is
  -- back (the app would fold the signal into the reload it makes, and no
  -- RELOADING=1 of its own would come)
  if life and life.listener and self._state == "reloading" then
    await(true)
    local result, err = reload_wait(self, r, timeout)
    unwait()
    if not result then return nil, err end
    -- (closed meanwhile: by a callback of that READY=1's datagram, or
    -- another task)
    if not self._proc then return nil, "closed" end
    -- (its READY=1 and a STOPPING=1 read in one drain)
    if self._state == "stopping" then return nil, STOPPING end
  end
  if life and life.listener then await(false) end
  local sig = self._opts.reload_signal or DEFAULTS.reload_signal
  local ok, message, errno = signal.send(self._proc, self._opts, sig, true)
  if not ok then
    unwait()
    -- (the calling task cancelled while the helper sent the signal)
    if message == "cancelled" then
      return nil, errors.new("cancelled", "reload cancelled", { pid = self.pid }, self._program)
    end
    -- gone between the look and the signal: died; else (EPERM: an app of
    -- another user) it runs on, and the message says why, as app:kill's
    if errno ~= 3 then return nil, message end -- ESRCH
    return nil, errors.new("died", "app has exited", { pid = self.pid or nil }, self._program)
  end
  if not r then return true end -- nothing can say when it is done
  local result, err = reload_wait(self, r, timeout)
  unwait()
  return result, err
end

--- End the apps a failed appstart.run leaves (the tasks that held them are
-- gone), and what group apps that ended left in their groups: SIGTERM to
-- every one at once, meanwhile() (the run's starts waited for), then each
-- waited for within what is left of its kill_grace, SIGKILL after.
function App.end_all(apps, meanwhile)
  local t0, list, rests = now(), {}, {}
  for app in pairs(apps) do
    -- (its on_status is called no more: the run it is served by is over)
    app._run_over = true
    if app._proc and not check(app) then
      list[#list + 1] = app
      -- (a supervisor's service: stopped by the run, not crashed)
      app._run_failed = true
      app:kill("TERM")
    end
    -- what a group app that ended left in its group (its sweep, a task of
    -- the run's, will not go on): SIGTERM (again, where it had one)
    local entry = leftovers[app]
    if entry then
      rests[#rests + 1] = app
      sweep_group(app, entry.proc)
    end
  end
  if meanwhile then meanwhile() end
  for _, app in ipairs(list) do
    app:terminate(math.max(0, kill_grace(app) - (now() - t0)))
  end
  for _, app in ipairs(rests) do
    local entry = leftovers[app]
    if entry then
      if not ending.settle(entry.proc, t0 + kill_grace(app)) then
        signal.rest(entry.proc, app._opts, "KILL", app._log, app._program)
        ending.settle(entry.proc, now() + ending.KILL_WAIT)
      end
      entry.finish()
    end
  end
end

--- Release the app's descriptors and leave it running (its callbacks will
-- not run). Safe to call twice.
function App:close()
  not_starting(self, "app:close")
  self._closed = true
  loop.disown(self)
  loop.unwatch(self._watch or nil)
  self._watch, self._on_exit = false, false
  -- (what its logger raises comes out once all is closed)
  local heard_ok, heard_err = true, nil
  -- kill_mode "group": an end not seen yet is seen now, so that what the
  -- app left in its group goes as after an end seen (SIGTERM, SIGKILL
  -- after kill_grace), not with the SIGKILL at once of a group let go of
  local proc = self._proc
  if proc and self._state ~= "exited" and proc:kill_mode() == "group" then
    heard_ok, heard_err = pcall(check, self)
  end
  if self._life then
    local ok, err = pcall(stop_listening, self)
    if heard_ok and not ok then heard_ok, heard_err = ok, err end
  end
  if self._out then self._out:close() end
  proc = self._proc
  if proc then
    -- (whoever waits on the app is woken: app:wait returns nil, "closed";
    -- app:reload too, waiting on a source of its own under another loop)
    self._proc = false
    local reloads = self._life and self._life.reload
    for r in pairs(reloads or {}) do
      if r.source and r.source.poller then loop.release(r.source:fd()) end
    end
    loop.close_process(proc)
  end
  if not heard_ok then error(heard_err, 0) end
end

--- `local app <close> = appstart.start{...}` terminates the app at scope exit.
function App:__close()
  if self._proc and self._state ~= "exited" then
    self:terminate()
  elseif App.leftover(self) then
    await_leftovers(self)
  end
  self:close()
end

--- appstart.app(PROGRAM, name "NAME", pid N, STATE): the program and the
-- name it reported apart (Xvfb's name is its display number).
function App:__tostring()
  local name = ""
  -- (quoted: its quotes and backslashes escaped, then its control
  -- characters as in log lines; %q would escape that escape again)
  if self.name ~= self._program then
    name = string.format(', name "%s"', log.printable((tostring(self.name):gsub('[\\"]', "\\%0"))))
  end
  return string.format("appstart.app(%s%s, pid %s, %s)", log.printable(self._program), name,
    tostring(self.pid or "?"), self.state)
end

-- cqueues-style polling interface: pollfd / events / timeout
function App:pollfd()
  is_app(self, "app:pollfd", 2)
  local proc = self._proc
  if proc then return proc:fd() end
  return nil
end
function App:events()
  is_app(self, "app:events", 2)
  return "r"
end
function App:timeout()
  is_app(self, "app:timeout", 2)
  -- ended or closed: a poll returns at once (app:wait says which)
  if not self._proc then return 0 end
  if not self._proc:fd() then return settings.poll_interval end
  return nil
end

return App
