--- Run by spec/binding_spec.lua, in
-- test_signals_that_cannot_be_made_leave_nothing_blocked (a descriptor
-- limit of 32): fills the descriptor table, asks for core.signals, frees
-- the table. Prints one line, tab-separated: what core.signals returned
-- (its message, or "made"), its errno, and "same" or "changed" (the
-- blocked signals after against before). No arguments.
local core = require "appstart.core"

local function blocked() return core.proc_status(core.pid()).blocked end

local mask = blocked()
local held = {}
while true do
  local f = io.open("/dev/null")
  if not f then break end
  held[#held + 1] = f
end
local s, message, errno = core.signals { "USR2", "TERM" }
for _, f in ipairs(held) do f:close() end
if s then s:close() end
print(table.concat({ s and "made" or tostring(message), tostring(errno),
  blocked() == mask and "same" or "changed" }, "\t"))
