--- appstart.outer: the supervise command's messages to the manager it runs
-- under (NOTIFY_SOCKET: systemd, or another supervisor).
--
-- A message goes as it comes, never waiting. One that the socket's queue
-- has no room for (a manager that reads slowly: Linux queues 10 datagrams
-- by default) is kept, and sent once the queue has room, in order and
-- before anything later: a READY=1 or STOPPING=1 is not lost to a busy
-- manager. What is kept is bounded whatever comes meanwhile: a STATUS=
-- takes the place of one kept (a manager takes the latest), a WATCHDOG=1
-- is kept once, and a reload's RELOADING=1 drops a reload kept before it
-- (its RELOADING=1 and everything after it: a manager that saw none of
-- that would have seen it begin and end), the latest STATUS= among what
-- it drops kept in their place.
--
-- A message no manager takes at all (nothing at the path, nothing bound
-- there, a manager gone with messages kept for it) before any has reached
-- it is lost: said once on stderr, with why, so that a unit whose manager
-- never heard READY=1 has a word in its journal; later losses are not
-- said (one a message would flood it), nor any once a message has reached
-- the manager (one that stops listening, as `appstart --ready=notify`
-- does at ready, is no fault).
local appstart = require "appstart"
local core = require "appstart.core"
local log = require "appstart.log"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local EAGAIN = 11 -- (Linux's errno: the queue is full)

local M = {}

local Outer = {}
Outer.__index = Outer

--- The messages to the socket at path (nil or "": none, each send does
-- nothing).
function M.new(path)
  return setmetatable({ path = path ~= "" and path or nil, kept = {}, serving = false, flusher = false,
    lost_said = false, delivered = false }, Outer)
end

-- A message lost (message: the core's, "WHAT: why"): said the first time.
local function lost(self, message)
  if self.lost_said or self.delivered then return end
  self.lost_said = true
  local why = tostring(message):match("^.*: (.-)$") or tostring(message)
  log.show("appstart: ", string.format("a message to the manager at %s was lost: %s (no later loss is said)",
    log.printable(self.path), why), "\n")
end

-- Closes the wait's descriptors at a scope's end.
local function closing(w)
  return setmetatable({}, { __close = function()
    if w.fd then core.close(w.fd) end
    if w.poller then w.poller:close() end
  end })
end

-- A socket connected to the manager's and a poller of its own that says
-- (its descriptor readable) when that socket is writable: w.fd and
-- w.poller; true, or false, message, errno (made in part or not at all:
-- what is made is in w, closed by its closing()).
local function connect(self, w)
  if w.fd then core.close(w.fd) end
  local fd, message, errno = core.notify_peer(self.path)
  w.fd = fd or false
  if not fd then return false, message, errno end
  if not w.poller then
    local poller, m, e = core.poller()
    w.poller = poller or false
    if not poller then return false, m, e end
  end
  return true
end

-- The task that sends what is kept, on a socket connected to the
-- manager's, waiting for room between one datagram and the next (the
-- socket polled for writing). The manager gone (its socket closed; the
-- socket at its path, connected again, refuses too, or none is there):
-- nothing more goes, what is kept is dropped, and said lost. Out of
-- descriptors for the connection, it tries again a moment later.
local function flush(self)
  local kept = self.kept
  local w = {}
  local _ <close> = closing(w)
  local ok, why, errno = connect(self, w)
  -- (why: what lost what is kept; nil when the command stops)
  while #kept > 0 do
    if not ok then
      if not core.lacks_resources(errno) then break end
      if loop.sleep(settings.poll_interval) == nil then
        why = nil
        break
      end
      ok, why, errno = connect(self, w)
    else
      local sent, _, e = core.notify(kept[1].text, w.fd)
      if sent then
        self.delivered = true
        table.remove(kept, 1)
      elseif e == EAGAIN then
        local added, m = w.poller:add(w.fd, 1, "w")
        if not added then
          why = m
          break
        end
        if loop.wait(w.poller:fd(), nil, w.poller) == nil then break end
      else
        -- (the manager's socket made anew at its path: once)
        ok, why, errno = connect(self, w)
        if ok then
          local message
          sent, message, e = core.notify(kept[1].text, w.fd)
          if sent then
            self.delivered = true
            table.remove(kept, 1)
          elseif e ~= EAGAIN then
            why = message
            break
          end
        end
      end
    end
  end
  if #kept > 0 and why then lost(self, why) end
  for i = #kept, 1, -1 do kept[i] = nil end
  self.flusher = false
end

local function flush_later(self)
  if self.serving and not self.flusher then self.flusher = appstart.spawn(flush, self) end
end

-- The latest STATUS= line of kept[from..], nil when there is none.
local function latest_status(kept, from)
  for i = #kept, from, -1 do
    local status = kept[i].text:match("STATUS=[^\n]*")
    if status then return status end
  end
end

--- Send text, a message of kind "status" (STATUS= alone), "ping"
-- (WATCHDOG=1), "reload" (RELOADING=1) or "state" (READY=1, STOPPING=1),
-- now or, when the manager's queue is full, once it has room.
function Outer:send(kind, text)
  if not self.path then return end
  local kept = self.kept
  if #kept == 0 then
    local ok, message, errno = core.notify(text, self.path)
    if ok then
      self.delivered = true
      return
    end
    -- (an error but a full queue: no manager to tell)
    if errno ~= EAGAIN then return lost(self, message) end
  elseif kind == "ping" then
    for i = 1, #kept do
      if kept[i].kind == "ping" then return end
    end
  elseif kind == "status" then
    for i = #kept, 1, -1 do
      if kept[i].kind == "status" then table.remove(kept, i) end
    end
  elseif kind == "reload" then
    for i = 1, #kept do
      if kept[i].kind == "reload" then
        local status = latest_status(kept, i)
        for j = #kept, i, -1 do kept[j] = nil end
        if status then
          for j = #kept, 1, -1 do
            if kept[j].kind == "status" then table.remove(kept, j) end
          end
          kept[#kept + 1] = { kind = "status", text = status }
        end
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
