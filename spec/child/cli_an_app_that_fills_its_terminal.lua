--- Run by spec/cli_spec.lua as the app of an `appstart --ready=fd`
-- whose stdout it shares: a terminal whose reader (script(1)) the spec
-- stops. Arguments: PIDFILE GO1 COUNTFILE GO2 ROOM NAME.
--
-- Once GO1 is there (the reader stopped), it writes "x" a byte at a time
-- until the terminal takes no more (its size, which the kernel sets) and
-- writes that count to COUNTFILE; once GO2 is there (the
-- terminal emptied by its reader, stopped again), that many bytes but
-- ROOM, so that the terminal says POLLOUT with about ROOM bytes of room,
-- then NAME as its ready line on descriptor 3 (a line longer than ROOM),
-- and waits to be ended.
local core = require "appstart.core"

local pidfile, go1, countfile, go2, room, name = table.unpack(arg)
room = tonumber(room)
local EAGAIN = 11

-- (whole when it appears: written aside, then renamed)
local function put(path, text)
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

local function await(path)
  local deadline = core.now() + 30
  repeat
    local f = io.open(path)
    if f then f:close() return end
    core.wait_readable(-1, 0.005)
  until core.now() > deadline
  os.exit(3)
end

-- a byte at a time, as long as the terminal takes one at once, and again
-- as long as it makes room within a moment (as the kernel moves what it
-- holds over to its reader's side): how many
local function fill()
  local p = assert(core.poller())
  assert(p:add(1, 1, "w"))
  local n = 0
  repeat
    while true do
      local took, why, errno = core.write_now(1, "x")
      if not took and errno ~= EAGAIN then error(why) end
      if took ~= 1 then break end
      n = n + 1
    end
  until not core.wait_readable(p:fd(), 0.2)
  p:close()
  return n
end

put(pidfile, core.pid() .. "\n")
await(go1)
local size = fill()
put(countfile, size .. "\n")
await(go2)
-- (each byte waited for, if it must be: exactly that many)
for _ = 1, size - room do assert(core.write(1, "x")) end
assert(core.write(3, name .. "\n"))
core.wait_readable(-1, 60)
