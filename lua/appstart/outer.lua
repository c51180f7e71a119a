--- appstart.outer: the supervise command's messages to the manager it runs
-- under (NOTIFY_SOCKET: systemd, or another supervisor).
--
-- A message goes as it comes, never waiting. One that the socket's queue
-- has no room for (a manager that reads slowly: Linux queues 10 datagrams
-- by default) is kept, and sent once the queue has room, in order and
-- before anything later: a READY=1 or STOPPING=1 is not lost to a busy
-- manager. What is kept is bounded whatever comes meanwhile: a STATUS=
-- replaces one kept with nothing after it, a WATCHDOG=1 is kept once, and
-- a reload's RELOADING=1 drops a reload kept before it (its RELOADING=1
-- and everything after it: a manager that saw none of that would have
-- seen it begin and end).
local appstart = require "appstart"
local core = require "appstart.core"
local loop = require "appstart.loop"

local EAGAIN = 11 -- (Linux's errno: the queue is full)

local M = {}

local Outer = {}
Outer.__index = Outer

--- The messages to the socket at path (nil or "": none, each send does
-- nothing).
function M.new(path)
  return setmetatable({ path = path ~= "" and path or nil, kept = {}, serving = false, flusher = false }, Outer)
end

-- Closes the wait's descriptor and poller at a scope's end.
local function closing(fd, poller)
  return setmetatable({}, { __close = function()
    core.close(fd)
    if poller then poller:close() end
  end })
end

-- The task that sends what is kept, waiting for room (the socket polled
-- for writing, through a poller of its own, whose descriptor is readable
-- then) between one datagram and the next. A manager gone (its socket
-- closed, removed) takes nothing more: what is kept is dropped; so is
-- what the descriptors for the wait could not be had for.
local function flush(self)
  local kept = self.kept
  local fd = core.notify_peer(self.path)
  local poller = fd and core.poller()
  if fd then
    local _ <close> = closing(fd, poller)
    while poller and #kept > 0 do
      local ok, _, errno = core.notify(kept[1].text, self.path)
      if ok then
        table.remove(kept, 1)
      elseif errno ~= EAGAIN then
        break
      elseif not poller:add(fd, 1, "w") or loop.wait(poller:fd(), nil, poller) == nil then
        break
      end
    end
  end
  for i = #kept, 1, -1 do kept[i] = nil end
  self.flusher = false
end

local function flush_later(self)
  if self.serving and not self.flusher then self.flusher = appstart.spawn(flush, self) end
end

--- Send text, a message of kind "status" (STATUS= alone), "ping"
-- (WATCHDOG=1), "reload" (RELOADING=1) or "state" (READY=1, STOPPING=1),
-- now or, when the manager's queue is full, once it has room.
function Outer:send(kind, text)
  if not self.path then return end
  local kept = self.kept
  local n = #kept
  if n == 0 then
    local ok, _, errno = core.notify(text, self.path)
    -- (an error but a full queue: no manager to tell)
    if ok or errno ~= EAGAIN then return end
  elseif kind == "status" and kept[n].kind == "status" then
    kept[n].text = text
    return
  elseif kind == "ping" or kind == "reload" then
    for i = 1, n do
      if kept[i].kind == kind then
        if kind == "ping" then return end
        for j = n, i, -1 do kept[j] = nil end
        break
      end
    end
  end
  kept[#kept + 1] = { kind = kind, text = text }
  flush_later(self)
end

--- Inside the command's loop: what is kept from now on (and before) is
-- sent by a task of its own.
function Outer:serve()
  self.serving = true
  if #self.kept > 0 then flush_later(self) end
end

--- The command ends: what is still kept is dropped (the manager sees the
-- command's exit).
function Outer:stop()
  self.serving = false
  if self.flusher then self.flusher:cancel() end
end

return M
