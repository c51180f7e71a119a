--- appstart.ending: waiting for a process to end, and ending it: SIGTERM,
-- then SIGKILL after a grace period. `proc` is an appstart.core process:
-- poll() -> how | nil, signal(sig), fd() -> pidfd | nil.
local core = require "appstart.core"
local loop = require "appstart.loop"
local settings = require "appstart.settings"
local signal = require "appstart.signal"

local now = core.now

local ending = {}

--- SIGKILL is final, but a process in uninterruptible sleep may take a
-- while to go; past this the launcher gives up waiting (a child is still
-- reaped later, never left a zombie).
ending.KILL_WAIT = 10

--- Wait until proc has ended or the deadline passes: how | nil.
-- just_signalled: it was sent a signal a moment ago, so it has not ended
-- yet; with a pidfd the first wait4 waits until the pidfd says it has.
function ending.wait(proc, deadline, just_signalled)
  local skip_poll = just_signalled and proc:fd() ~= nil
  while true do
    if not skip_poll then
      local how = proc:poll()
      if how then return how end
    end
    skip_poll = false
    local t = now()
    if deadline and t >= deadline then return nil end
    local fd = proc:fd()
    -- (a cancel is taken: the ending goes on, and its task is told after)
    if fd then
      if loop.wait(fd, deadline, proc) == nil then loop.took_cancel() end
    else
      local wake = t + settings.poll_interval
      if deadline and deadline < wake then wake = deadline end
      if loop.wait(nil, wake) == nil then loop.took_cancel() end
    end
  end
end

local ESRCH = 3

--- Send sig: true, or nil, message when it could not be sent for another
-- reason than that the process has ended (EPERM: an app of another user
-- the launcher may not signal, even through appstart-helper). opts: the
-- start's options, where the app may be signalled through the helper
-- (appstart.signal). An ending ignores its task's cancel, as its waits
-- do: a signal whose wait for the helper's verdict was cancelled (the
-- helper ended, the signal perhaps not sent) is sent again (the cancel
-- has been taken).
function ending.send(proc, sig, opts)
  local ok, message, errno
  if opts then
    repeat
      ok, message, errno = signal.send(proc, opts, sig)
      if not ok and message == "cancelled" and errno == nil then loop.took_cancel() end
    until ok or message ~= "cancelled" or errno ~= nil
  else
    ok, message, errno = proc:signal(sig)
  end
  if not ok and errno ~= ESRCH then return nil, message end
  return true
end

--- Wait until no other member of proc's tree (kill_mode "group") runs,
-- or the deadline: true once none does. A group cannot be waited on; it
-- is looked at, soon at first (most members go at once on their signal),
-- then less often: each wait as long as it has been waited for, from
-- 1 ms up to poll_interval. (A cgroup's emptying is part of proc:poll,
-- and a lone process has no tree: true at once.)
function ending.settle(proc, deadline)
  local since
  -- (nil: they could not be looked at, out of descriptors: not gone)
  while (proc:rest() or 1) > 0 do
    local t = now()
    if t >= deadline then return false end
    since = since or t
    local step = math.max(0.001, math.min(settings.poll_interval, t - since))
    if loop.wait(nil, math.min(deadline, t + step)) == nil then loop.took_cancel() end
  end
  return true
end

--- SIGTERM (and SIGCONT, so a stopped process gets it), then SIGKILL after
-- `grace` seconds, to proc and what its kill_mode reaches. Returns how it
-- ended, or nil, message when it cannot be signalled. polled: the caller
-- has just seen it running. opts: as for ending.send. progress (a table,
-- optional): how far it got (deadline once SIGTERM is sent, killed once
-- SIGKILL is), for whoever must finish it when this call never returns
-- (its coroutine closed): ending.finish.
function ending.terminate(proc, grace, polled, opts, progress)
  progress = progress or {}
  local how = not polled and proc:poll()
  if how then return how end
  local ok, message = ending.send(proc, "TERM", opts)
  -- (a cgroup's members that may not be signalled, an app of another
  -- user's whose main has ended: its cgroup.kill is the launcher's own,
  -- after the grace)
  if not ok and proc:kill_mode() ~= "cgroup" then return nil, message end
  ending.send(proc, "CONT", opts)
  progress.deadline = now() + grace
  return ending.finish(proc, progress, opts, true)
end

--- The rest of an ending.terminate whose SIGTERM is sent (progress.deadline
-- set): SIGKILL at that deadline unless it has ended, then the wait for
-- its end. Returns how it ended.
function ending.finish(proc, progress, opts, just_signalled)
  local deadline, how = progress.deadline, nil
  if not progress.killed then
    how = ending.wait(proc, deadline, just_signalled)
    if how and ending.settle(proc, deadline) then return how end
    ending.send(proc, "KILL", opts)
    progress.killed, just_signalled = true, true
  end
  how = how or ending.wait(proc, now() + ending.KILL_WAIT, just_signalled) or {}
  ending.settle(proc, now() + ending.KILL_WAIT)
  return how
end

return ending
