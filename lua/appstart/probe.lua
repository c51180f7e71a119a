--- appstart.probe: readiness for daemons that speak no protocol, by
-- looking from outside (ready = {connect = ...} | {file = ...} |
-- {exec = {...}} | {check = fn}).
--
-- A probe is tried at once, then again after 1 ms, 2 ms, 4 ms ... up to
-- probe_interval. Nothing here waits: the start (appstart.start) calls
-- p:try() when p:next_at() comes, and races it against the app's death
-- and ready_timeout. A try that cannot finish at once (a tcp connect under
-- way, an exec probe's command still running) is looked at again at the
-- next try, and given up after probe_timeout; an exec probe's command
-- that ends wakes the start at once (its pidfd joins the start's waits).
--
-- A check function runs in a task of its own inside a loop (appstart.run,
-- cqueues, luv), where it may wait: the start goes on waiting on the app's
-- death and ready_timeout meanwhile, and is woken (p.wake) when the
-- function returns; a start that ends otherwise (died, timeout, cancelled)
-- cancels that task and ignores what it returns. Outside a loop the
-- function is called in the try.
--
-- An exec probe's command runs in a process group of its own. Once it has
-- ended, what is left in its group is killed at once (SIGKILL: a probe's
-- leftovers get no grace) and the start does not end, ready or failed,
-- until they are gone (p:settled()). A command that still runs KILL_WAIT
-- after its SIGKILL (in uninterruptible sleep on a hung file system, or a
-- setuid program become another user's) is let go of then, and the start
-- says so; what it left in its group is given up on silently after the
-- same wait, as an app's is (App.leftover).
local App = require "appstart.app"
local core = require "appstart.core"
local ending = require "appstart.ending"
local log = require "appstart.log"
local loop = require "appstart.loop"
local options = require "appstart.options"

local ENOENT, ENOTDIR, EAGAIN = 2, 20, 11

local now = core.now
local format = string.format
local DEFAULTS = options.DEFAULTS

local M = {}

local Probe = {}
Probe.__index = Probe

local FIRST = 0.001 -- the first interval, doubled up to probe_interval

-- A command dropped with its start (a start never closed, collected):
-- it, or what it left in its group, gets SIGKILL, as the start's own app
-- does (reaped later, by pid). Its guard is made after its process, so
-- that the guard's finalizer runs first (Lua runs them newest first),
-- while the process can still be signalled; it only signals (a finalizer
-- runs at any allocation, in the middle of anything).
local Guard = { __gc = function(g)
  local app = g.app
  local proc = app and (app._proc or App.leftover(app))
  if proc then proc:signal("KILL") end
end }

-- The command is gone, or let go of: its guard has nothing to do.
local function close_command(app)
  if app._probe_guard then app._probe_guard.app = false end
  app:close()
end

-- The app's user's uid (opts.user, a name or a number), whose file in a
-- sticky directory the file probe counts; nil: the launcher's.
local function app_uid(opts)
  -- (looked up as the start began)
  return opts._uid
end

--- What a file probe's path held before the start (read before the
-- spawn): false when nothing (a file there now was made after), {id =,
-- mtime =} of the file there, or nil when it could not be told (then a
-- file's time alone says whether it is new). Other probes: nil.
function M.before(opts)
  local spec = opts.ready
  if type(spec) ~= "table" or not spec.file then return nil end
  local mtime, id, errno = core.ready_file(spec.file, app_uid(opts))
  if not mtime then
    if errno == ENOENT or errno == ENOTDIR then return false end
    return nil
  end
  return { id = id, mtime = mtime }
end

--- A probe for opts.ready (a table, checked by appstart.options).
-- @param start_wall core.realtime() when the start began (the file probe
-- wants a file modified after it)
-- @param starter the start's core starter, whose waits an exec probe's
-- command joins while it runs (nil: it is looked at at each try only)
-- @param before what the file probe's path held before the start
-- (M.before)
function M.new(opts, start_wall, starter, before)
  local spec = opts.ready
  local p = setmetatable({
    interval = FIRST, max = opts.probe_interval or DEFAULTS.probe_interval,
    timeout = opts.probe_timeout or DEFAULTS.probe_timeout,
    at = now(), pending = false, pending_kind = false, pending_until = false, last = false,
    addresses = false, next = 1, -- a tcp host's, resolved at the first try
    lookup_failed = false, -- a lookup that failed for now: {again =, why =, errno =}
    dying = false, -- exec probes' commands killed, until they have ended (their groups too)
    dying_until = false, -- command -> when it is given up on (KILL_WAIT after its SIGKILL)
    given_up = false, -- the commands given up on, for the start to say
    starter = starter or false, watching = false, -- the command's pidfd is in its waits
    watched = false, -- the command it is of
    wake = false, -- called when a check function running in a task of its own returns
  }, Probe)
  if spec.connect then
    p.kind = "connect"
    p.family, p.where, p.port = options.parse_address(spec.connect)
    p.target = spec.connect
    p.what = "no connection to " .. spec.connect
  elseif spec.file then
    p.kind, p.path, p.since, p.before = "file", spec.file, start_wall, before
    p.uid = app_uid(opts)
    p.what = spec.file .. " was not made"
  elseif spec.exec then
    p.kind, p.argv = "exec", spec.exec
    p.what = format("%s never exited 0", spec.exec[1])
  else
    p.kind, p.fn = "check", spec.check
    p.what = "the check function never returned true"
    p.caller = false -- the coroutine the check function runs in, while it runs
  end
  return p
end

--- When the next try is due (core.now() clock). While a check function
-- runs in a task of its own, it wakes the start when it returns (p.wake):
-- the start looks at it every probe_interval all the same, for whoever
-- steps it without waiting on it. A try under way (a connection, a
-- command) is given up when its probe_timeout ends, though the next try
-- would come later (probe_interval may be the longer): that one still
-- comes at its time.
function Probe:next_at()
  if self.pending_kind == "check" then return now() + self.max end
  if self.pending then return math.min(self.at, self.pending_until) end
  return self.at
end

--- Is a check function running in a task of its own?
function Probe:running()
  return self.pending_kind == "check"
end

-- The next try, later each time.
local function back_off(p)
  p.at = now() + p.interval
  p.interval = math.min(p.interval * 2, p.max)
end

-- A try under way (a connection, a command) ends: given up after
-- timeout. true: it was given up now.
local function settle_pending(p, t)
  local gave_up = false
  if p.pending and t >= p.pending_until then
    p.last = format("no answer within probe_timeout (%g s)", p.timeout)
    p:close()
    gave_up = true
  end
  p:settled() -- what earlier tries left, looked at as it goes
  return gave_up
end

-- It runs no more (ended, or given up on): out of the waits before its
-- pidfd is closed. (A command killed stays: see Probe:close.)
local function unwatch(p)
  if p.watching then
    p.starter:unwatch(p.watching)
    p.watching = false
  end
  p.watched = false
end

-- The exec probe's command runs: its exit wakes the start's waits
-- (without a pidfd it is looked at at each try, as before). One at a
-- time: the start has one such place in its waits.
local function watch(p, app)
  unwatch(p)
  local fd = p.starter and app._proc and app._proc:fd()
  p.watching = fd and p.starter:watch(fd) and fd or false
  p.watched = p.watching and app or false
end

-- An exec probe's command (an app of its own start, kill_mode "group")
-- has ended, or been killed: what it left in its group is killed at once
-- (SIGKILL), and it is kept in p.dying until they are gone (p:settled()).
-- Its process, and so its descriptors, go with them.
local function let_go(p, app)
  local rest = App.leftover(app)
  if not rest then return close_command(app) end
  rest:signal("KILL")
  return p:kill_wait(app)
end

-- Has the command in p.dying (an app) ended, and what it left in its
-- group? Looked at, never waited on.
local function command_gone(app)
  if not App.check(app) then return false end
  local rest = App.leftover(app)
  if rest then
    if rest:rest() ~= 0 then
      rest:signal("KILL") -- (and what forked meanwhile)
      return false
    end
    App.leftover_gone(app)
  end
  close_command(app)
  return true
end

local tries = {}

-- A tcp host's addresses, resolved once (a name may ask DNS, which
-- blocks): every one of them is tried, so that "localhost" listening on
-- 127.0.0.1 only is found though ::1 comes first. nil, why, errno: the
-- name does not resolve (no errno), or not for now.
local function addresses(p)
  if p.addresses then return p.addresses end
  if p.family ~= "tcp" then
    p.addresses = { p.where }
    return p.addresses
  end
  -- a lookup that failed for now is made again a second later at most:
  -- one that DNS could not answer took up to the resolver's timeout, and
  -- the tries come 1 ms apart at first
  local failed = p.lookup_failed
  if failed and now() < failed.again then return nil, failed.why, failed.errno end
  local list, why, errno = core.resolve(p.where)
  if not list then
    if errno == EAGAIN then p.lookup_failed = { again = now() + 1, why = why, errno = errno } end
    return nil, why, errno
  end
  if #list == 0 then return nil, "cannot resolve " .. p.where .. ": no address" end
  p.addresses = list
  if #list > 1 or list[1] ~= p.where then
    p.what = format("%s (%s)", p.what, table.concat(list, ", "))
  end
  return list
end

function tries.connect(p)
  if p.pending then
    local ok, why = p.pending:check()
    if ok then
      p:close()
      return true
    end
    if not why then return false end -- still under way
    p.last = why
    p:close() -- refused: the next address at once
  end
  local list, err, errno = addresses(p)
  if not list then
    -- out of descriptors or memory, the name could not be looked up for
    -- now (no DNS server answered: EAGAIN): a try that failed
    if errno and (errno == EAGAIN or core.lacks_resources(errno)) then
      p.last = err
      return false
    end
    -- cannot be tried at all (the name does not resolve): an error, not
    -- a wait until the timeout
    return nil, err, errno
  end
  -- each address in turn, from where the last try left off, until one
  -- answers or is under way; an address that cannot be tried (no route
  -- for its family) is passed over, unless none can
  local n, hard = #list, 0
  for _ = 1, n do
    local address = list[p.next]
    p.next = p.next % n + 1
    local r, why, e = core.connect(p.family, address, p.port)
    if r == true then return true end
    if r == nil then
      hard, err, errno = hard + 1, why, e
      p.last = why
    elseif r == false then
      p.last = why
    else
      p.pending, p.pending_kind, p.pending_until = r, "conn", now() + p.timeout
      return false
    end
  end
  if hard == n then return nil, err, errno end
  return false
end

-- A file there before the start counts once replaced or modified (its
-- time, whatever the clock says: one stepped back, or a file dated ahead,
-- was taken for new); one made after counts at once. Where what was there
-- could not be told, a file modified after the start counts.
function tries.file(p)
  local mtime, id = core.ready_file(p.path, p.uid)
  if not mtime then
    p.last = id
    return false
  end
  local before = p.before
  if before == nil and mtime < p.since then
    p.last = "it is older than the start"
    return false
  end
  if before and mtime == before.mtime and id == before.id then
    p.last = "it is the one there before the start"
    return false
  end
  return true
end

function tries.exec(p)
  if not p.pending then
    -- its start is ready at the exec: it needs no wait to get there but the
    -- exec's verdict
    -- in a process group of its own: what it forks goes with it, when it
    -- is killed and when it exits
    -- kill_grace 0: a command given up on is killed at once, and so is
    -- what it leaves in its group when it ends (let_go)
    local h = require("appstart.start").begin({ argv = p.argv, ready = "none", stdin = "null", stdout = "null",
      stderr = "null", kill_mode = "group", kill_grace = 0, log = function() end }, "ready.exec", 1)
    p.pending, p.pending_kind, p.pending_until = h, "start", now() + p.timeout
  end
  if p.pending_kind == "start" then
    local h = p.pending
    if not h:step() then return false end
    if h.err then
      p.pending, p.pending_kind = false, false
      -- a command that cannot be run for now (out of descriptors or
      -- memory, or processes: fork's EAGAIN) is a try that failed, not a
      -- probe that cannot work
      local e = h.err.errno
      if h.err.code == "spawn" and not (e and (e == EAGAIN or core.lacks_resources(e))) then
        return nil, "cannot run the probe " .. p.argv[1] .. ": " .. h.err.message
      end
      p.last = h.err.message
      return false
    end
    p.pending, p.pending_kind = h.app, "app"
    -- its end is the probe's to look at (the start's waits, each try): no
    -- watch of the group's leader, which would hold the command, and so
    -- its guard, for ever once the start is dropped
    if h.app._watch then
      loop.unwatch(h.app._watch)
      h.app._watch = false
    end
    h.app._probe_guard = setmetatable({ app = h.app }, Guard)
    watch(p, h.app)
  end
  local app = p.pending
  local how = App.check(app) -- (one that exited at once was seen so at its start)
  if not how then return false end
  p.pending, p.pending_kind = false, false
  unwatch(p)
  let_go(p, app)
  if how.code == 0 then return true end
  p.last = format("%s %s", p.argv[1], tostring(require("appstart.errors").how(how)))
  return false
end

-- What a check function says (its error, its reason) may quote what the
-- app sent (a page's body): it goes in a message that is logged, so it is
-- cut to REASON_MAX bytes (marked), then has its control characters
-- escaped (log.raised: a traceback keeps its lines; log.printable: a
-- reason is part of a line).
local REASON_MAX = 1024
local function cut(text)
  if #text <= REASON_MAX then return text end
  -- (at a character's start: the bytes of one cut in two would be escaped)
  local n = REASON_MAX
  for _ = 1, 3 do
    local b = text:byte(n + 1)
    if b < 0x80 or b >= 0xC0 then break end
    n = n - 1
  end
  return format("%s[... %d bytes more]", text:sub(1, n), #text - n)
end

-- What a check function's call came to: as for Probe:try.
local function verdict(p, ok, result, why)
  if not ok then
    local message, bad = log.text(result)
    if not message then
      return nil, "the check function raised an error that cannot be shown: " .. log.printable(cut(bad))
    end
    return nil, "the check function raised " .. log.raised(cut(message))
  end
  if result then return true end
  -- nil, why: what the last try saw, for a timeout's message
  if why ~= nil then
    local message, bad = log.text(why)
    if not message then
      return nil, "the check function returned a reason that cannot be shown: " .. log.printable(cut(bad))
    end
    p.last = log.printable(cut(message))
  end
  return false
end

-- A call of the check function: inside a loop, a task of its own (it may
-- wait: the start waits on the app's death and its deadline meanwhile,
-- and is woken when it returns); outside one, the call itself.
local function call_check(p, app)
  local job = { done = false, ok = false, result = false, why = false, dropped = false, task = false, wake = false }
  local fn = p.fn
  local task = loop.call(function()
    if job.dropped then return end -- its start ended before the task ran
    p.caller = coroutine.running()
    local ok, result, why = pcall(fn, app)
    p.caller = false
    -- ^C (loop.interrupt): the start's caller is interrupted (and the
    -- start cancelled), not the check taken for one that raised
    if not ok and loop.interrupt(result) then error(result, 0) end
    if job.dropped then return end -- its start has ended meanwhile
    job.done, job.ok, job.result, job.why = true, ok, result, why
    if job.wake then job.wake() end
  end)
  if not job.done then
    job.task, job.wake = task or false, p.wake
    p.pending, p.pending_kind, p.pending_until = job, "check", math.huge
  end
  return job
end

function tries.check(p, app)
  local job = p.pending
  if not job then
    job = call_check(p, app)
    if not job.done then return false end
  elseif not job.done then
    return false -- it still runs (it woke the start for another reason)
  end
  p.pending, p.pending_kind, p.pending_until = false, false, false
  return verdict(p, job.ok, job.result, job.why)
end

--- Try now: true (ready) | false (not yet) | nil, why (the probe cannot
-- work: a start that fails).
function Probe:try(app)
  local t = now()
  -- (a step before the next try is due, woken by something else: the
  -- app's output, a stray message; a try for each would run an exec
  -- probe's command, or open a connection, as fast as the app writes)
  if not self.pending and t < self.at then
    self:settled()
    return false
  end
  if self.pending and t >= self.pending_until then
    -- its time is up: what it came to meanwhile counts first (a command
    -- that exited 0, a connection made, while nothing stepped the start);
    -- still under way, it is given up below
    local ok, why, errno = tries[self.kind](self, app)
    if ok ~= false then return ok, why, errno end
  end
  -- a try given up on: the next waits for its time, as after any try
  -- (started at once, a probe_timeout shorter than the interval made a
  -- try as fast as each timed out: a connect to a full accept queue
  -- spun, an exec probe ran its command hundreds of times a second)
  if settle_pending(self, t) and t < self.at then return false end
  local ok, why, errno = tries[self.kind](self, app)
  -- (a check function that still runs wakes the start when it returns)
  if ok == false and self.pending_kind ~= "check" then back_off(self) end
  return ok, why, errno
end

--- What a pass of this probe is, for a message that it came too late.
function Probe:passed_as()
  if self.kind == "check" then return "the check function returned true" end
  if self.kind == "exec" then return format("its command (%s) exited 0", self.argv[1]) end
  if self.kind == "file" then return self.path .. " was seen made" end
  return "a connection to " .. self.target .. " was made"
end

--- What was awaited, and what the last try saw, for a timeout's message.
function Probe:describe()
  if self.last then return format("%s (the last try: %s)", self.what, self.last) end
  return self.what
end

--- End what a try left under way: a connection is closed; an exec
-- probe's command is killed with its group, and kept in p.dying until
-- p:settled() has seen it and its group end (so that no zombie, and
-- nothing it forked, outlives the start); a check function's task is
-- cancelled (its wait returns nil, "cancelled"; a wait after that raises),
-- and what it returns ignored.
function Probe:close()
  local pending, kind = self.pending, self.pending_kind
  self.pending, self.pending_kind, self.pending_until = false, false, false
  -- (a command killed stays in the waits: its end wakes the start, whose
  -- stop looks at it then, not a poll_interval later; see settled)
  if kind ~= "app" or not pending._proc then unwatch(self) end
  if kind == "conn" then
    pending:close()
  elseif kind == "start" then
    pending:abandon() -- its command terminated as for any failed start
    self.dying = self.dying or {}
    self.dying[#self.dying + 1] = pending
  elseif kind == "app" then
    if not pending._proc then return let_go(self, pending) end -- ended already
    pending._proc:signal("KILL") -- and what it forked, in its group
    self:kill_wait(pending)
  elseif kind == "check" then
    pending.dropped, pending.wake = true, false
    -- (for good: a check that waits on regardless gets an error, which
    -- ends it, at its next wait)
    if pending.task then pending.task:cancel(true) end
  end
end

--- A command (an app of its own start) that has had its SIGKILL, or
-- whose group has: kept in p.dying until it and its group are gone (the
-- command itself KILL_WAIT at most).
function Probe:kill_wait(app)
  self.dying = self.dying or {}
  self.dying[#self.dying + 1] = app
  self.dying_until = self.dying_until or {}
  self.dying_until[app] = now() + ending.KILL_WAIT
end

-- A command still running KILL_WAIT after its SIGKILL: let go of (a child
-- of the launcher's is reaped later, by pid), and counted for the start
-- to say.
local function give_up(p, app)
  p.given_up = (p.given_up or 0) + 1
  local rest = App.leftover(app)
  if rest then App.leftover_gone(app) end
  close_command(app)
end

--- Have the commands p:close() killed, or that ended, ended, and what
-- they left in their groups (each looked at, without waiting)? true once
-- none is left, or once the commands left are given up on (KILL_WAIT
-- after their SIGKILL: p.given_up counts them).
function Probe:settled()
  local dying = self.dying
  if not dying then return true end
  local t = now()
  for i = #dying, 1, -1 do
    local d = dying[i]
    local gone
    if d.step then
      gone = d:step() -- an abandoned start: done once its command has ended
    else
      -- the one watched: out of the waits before its end closes its
      -- pidfd, in again while it runs
      local watched = self.watching and self.watched == d
      if watched then unwatch(self) end
      gone = command_gone(d)
      if not gone and d._proc and t >= self.dying_until[d] then
        give_up(self, d)
        gone = true
      elseif watched and not gone and d._proc then
        watch(self, d)
      end
    end
    if gone then table.remove(dying, i) end
  end
  if #dying > 0 then return false end
  self.dying, self.dying_until = false, false
  return true
end

--- For a start dropped while it probes: what is under way is killed and
-- let go of (a child is reaped later, by pid).
function Probe:drop()
  self:close()
  unwatch(self)
  for _, d in ipairs(self.dying or {}) do
    if d.step then
      getmetatable(d).__close(d)
    else
      App.check(d)
      local rest = App.leftover(d)
      if rest then
        rest:signal("KILL")
        App.leftover_gone(d)
      end
      close_command(d)
    end
  end
  self.dying, self.dying_until = false, false
end

return M
