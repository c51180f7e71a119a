--- Run by spec/binding_spec.lua, in
-- test_signals_leaves_a_signal_the_process_ignores_alone, started with
-- SIGUSR2 ignored: makes core.signals { "USR2", "USR1" }, sends itself
-- SIGUSR2 then SIGUSR1, reads, closes. Prints one line, tab-separated:
-- whether USR2 is ignored, then whether USR1 and USR2 are blocked while
-- the object lives, the signals read, "same" or "changed" (the blocked
-- signals after the close against before), and whether USR2 is still
-- ignored. No arguments.
local core = require "appstart.core"

local USR1, USR2 = core.signum("USR1"), core.signum("USR2")
local function has(mask, sig) return mask >> (sig - 1) & 1 == 1 end
local function status() return core.proc_status(core.pid()) end

local words = {}
local function say(s) words[#words + 1] = s end

say(has(status().ignored, USR2) and "USR2 ignored" or "USR2 not ignored")
local mask = status().blocked
local s = assert(core.signals { "USR2", "USR1" })
local now = status().blocked
say(has(now, USR1) and "USR1 blocked" or "USR1 not blocked")
say(has(now, USR2) and "USR2 blocked" or "USR2 not blocked")
-- (kill(2) itself discards an ignored signal that is not blocked; SIGUSR1,
-- sent after it, is then all the descriptor can hold)
assert(os.execute("kill -USR2 " .. core.pid()))
assert(os.execute("kill -USR1 " .. core.pid()))
assert(core.wait_readable(s:fd(), 10), "SIGUSR1 never came")
local got = {}
for _, g in ipairs(s:read()) do got[#got + 1] = core.signame(g.signal) end
say("read " .. table.concat(got, " "))
s:close()
say(status().blocked == mask and "same" or "changed")
say(has(status().ignored, USR2) and "USR2 ignored" or "USR2 not ignored")
print(table.concat(words, "\t"))
