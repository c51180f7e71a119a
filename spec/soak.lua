--- Soak: many start/terminate cycles in one launcher, half of them failing,
-- then the launcher must hold what it held before: the same descriptors, no
-- child (so no zombie), and a resident size within 10 % of what it was after
-- a warm-up. `make soak` (not part of `make test`); exits non-zero on any
-- failure. SOAK_CYCLES (default 10000) and SOAK_TASKS (default 50) adjust it.
--
-- Odd cycles start an app that is ready (fd protocol) and terminate it; even
-- cycles fail, in turn: died, timeout (0.05 s), spawn, ready_closed,
-- protocol. Each outcome is checked (code, exit status, name).
local appstart = require "appstart"
local core = require "appstart.core"
local testing = require "appstart.testing"

local F = assert(os.getenv("APPSTART_FIXTURES"), "run through make soak") .. "/fixture"
local TOTAL = tonumber(os.getenv("SOAK_CYCLES")) or 10000
local TASKS = tonumber(os.getenv("SOAK_TASKS")) or 50
local WARMUP = math.min(500, TOTAL)
local now = core.now

local function quiet() end

local read = require("support").read

local me = tonumber(read("/proc/self/stat"):match("^%d+"))

local function children()
  local list = {}
  for pid in (read("/proc/" .. me .. "/task/" .. me .. "/children") or ""):gmatch("%d+") do list[#list + 1] = pid end
  return list
end

local function rss_kb()
  collectgarbage()
  collectgarbage()
  return tonumber(read("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

local function show(how)
  if type(how) ~= "table" then return tostring(how) end
  return how.code and ("code=" .. how.code) or how.signal and ("signal=" .. how.signal) or "{}"
end

-- the failures, in turn: options and the check of the error
local FAILURES = {
  { code = "died", argv = { F, "exit=3" },
    check = function(err) return err.status and err.status.code == 3 end },
  { code = "timeout", argv = { F, "pause" }, ready_timeout = 0.05,
    check = function(err) return err.status and err.status.signal == 15 end },
  { code = "spawn", argv = { "/nonexistent/appstart-soak" },
    check = function(err) return err.errno == 2 end },
  { code = "ready_closed", argv = { F, "close=3", "pause" },
    check = function(err) return err.status and err.status.signal == 15 end },
  { code = "protocol", argv = { F, "bytes=3:5000:x", "pause" }, -- a ready line over 4096 bytes
    check = function(err) return err.status and err.status.signal == 15 end },
}

local counts = { ready = 0 }
for _, f in ipairs(FAILURES) do counts[f.code] = 0 end
local wrong = {} -- the first few cycles whose outcome was not the expected one

local function note_wrong(i, what)
  if #wrong < 20 then wrong[#wrong + 1] = string.format("cycle %d: %s", i, what) end
  counts.wrong = (counts.wrong or 0) + 1
end

local function cycle_body(i)
  if i % 2 == 1 then
    local name = "soak" .. i
    local app, err = appstart.start { argv = { F, "line=3:" .. name, "pause" }, ready = "fd", ready_timeout = 30,
      kill_grace = 2, log = quiet }
    if not app then return note_wrong(i, "start failed: " .. tostring(err)) end
    local how = app:terminate()
    if app.name ~= name or not how or how.signal ~= 15 then
      return note_wrong(i, string.format("name %s, terminate %s", tostring(app.name), show(how)))
    end
    counts.ready = counts.ready + 1
  else
    local f = FAILURES[(i // 2) % #FAILURES + 1]
    local app, err = appstart.start { argv = f.argv, ready = "fd", ready_timeout = f.ready_timeout or 30,
      kill_grace = 2, log = quiet }
    if app then
      app:terminate()
      return note_wrong(i, f.code .. " expected, the app started")
    end
    if err.code ~= f.code or not f.check(err) then
      return note_wrong(i, string.format("%s expected, got %s (%s), status %s, errno %s", f.code, err.code,
        tostring(err), show(err.status), tostring(err.errno)))
    end
    counts[f.code] = counts[f.code] + 1
  end
end

local slowest = {} -- { seconds, cycle, kind } of the slowest cycles

local function cycle(i)
  local t = now()
  cycle_body(i)
  local took = now() - t
  if #slowest < 5 or took > slowest[#slowest][1] then
    slowest[#slowest + 1] = { took, i, i % 2 == 1 and "ready" or FAILURES[(i // 2) % #FAILURES + 1].code }
    table.sort(slowest, function(x, y) return x[1] > y[1] end)
    slowest[6] = nil
  end
end

local done = 0
local t0 = now()
--- Cycles first..last, TASKS at once; each task takes the next cycle due,
-- so the kinds spread over all tasks and none is left with a long tail.
local function run_cycles(first, last)
  local next_cycle = first
  appstart.run(function()
    for _ = 1, TASKS do
      appstart.spawn(function()
        while next_cycle <= last do
          local i = next_cycle
          next_cycle = i + 1
          cycle(i)
          done = done + 1
          if done % 1000 == 0 then
            io.stdout:write(string.format("  %5d cycles, %.1f s, VmRSS %s kB, Lua heap %.0f kB\n", done, now() - t0,
              read("/proc/self/status"):match("VmRSS:%s*(%d+)"), collectgarbage("count")))
            io.stdout:flush()
          end
        end
      end)
    end
  end)
end

testing.reap()
local fds_before = table.concat(testing.fds(), ",")
print(string.format("soak: %d cycles, %d at once (warm-up %d)", TOTAL, TASKS, WARMUP))

run_cycles(1, WARMUP)
testing.reap()
local rss_warm, heap_warm = rss_kb(), collectgarbage("count")
local t_warm = now()
run_cycles(WARMUP + 1, TOTAL)
local elapsed = now() - t0
local rss_end, heap_end = rss_kb(), collectgarbage("count")

-- what the launcher holds now: children still exiting get a bounded moment
local deadline = now() + 5
testing.reap()
while #children() > 0 and now() < deadline do
  core.wait_readable(-1, 0.01)
  testing.reap()
end
local kids = children()
local fds_after = table.concat(testing.fds(), ",")

local growth = (rss_end - rss_warm) / rss_warm
print(string.format("  cycles     %d in %.1f s (%.0f per second; after the warm-up %.0f per second)", TOTAL, elapsed,
  TOTAL / elapsed, (TOTAL - WARMUP) / (now() - t_warm)))
print(string.format("  outcomes   ready %d, died %d, timeout %d, spawn %d, ready_closed %d, protocol %d, wrong %d",
  counts.ready, counts.died, counts.timeout, counts.spawn, counts.ready_closed, counts.protocol, counts.wrong or 0))
print(string.format("  fds        before %s, after %s", fds_before, fds_after))
print(string.format("  children   %d%s", #kids, #kids > 0 and (" (" .. table.concat(kids, ",") .. ")") or ""))
print(string.format("  VmRSS      %d kB after the warm-up, %d kB at the end (%+.1f %%)", rss_warm, rss_end, growth * 100))
print(string.format("  Lua heap   %.0f kB after the warm-up, %.0f kB at the end", heap_warm, heap_end))
local slow = {}
for _, e in ipairs(slowest) do slow[#slow + 1] = string.format("%d (%s) %.2f s", e[2], e[3], e[1]) end
print("  slowest    " .. table.concat(slow, ", "))

local failures = {}
if (counts.wrong or 0) > 0 then
  failures[#failures + 1] = "wrong outcomes:\n    " .. table.concat(wrong, "\n    ")
end
local total_ok = counts.ready + counts.died + counts.timeout + counts.spawn + counts.ready_closed + counts.protocol
if total_ok + (counts.wrong or 0) ~= TOTAL then
  failures[#failures + 1] = string.format("%d cycles ran, %d expected", total_ok + (counts.wrong or 0), TOTAL)
end
if fds_after ~= fds_before then failures[#failures + 1] = "descriptors differ" end
if #kids > 0 then failures[#failures + 1] = #kids .. " children left (zombies or running apps)" end
if math.abs(growth) > 0.10 then failures[#failures + 1] = "VmRSS moved more than 10 % after the warm-up" end

if #failures > 0 then
  print("soak: FAILED\n  " .. table.concat(failures, "\n  "))
  os.exit(1, true)
end
print("soak: ok")
