--- spec/bench/run.lua: `make bench`. Each appstart figure is a ratio against
-- a baseline measured in the same run, on the same machine, on the same
-- fixture:
--
--   B1  sequential launch throughput, ready = "fd", the app writes its line
--       and exits: appstart vs plain C (posix_spawn, pipe, read, waitpid; see
--       spec/bench/baseline.c), vs plain C with appstart's guarantees (an
--       attested socket pair, a pidfd, a poll on both) and vs luv's
--       uv.spawn doing the same; the launcher's own CPU per start too
--   B2  1,000 concurrent starts of an app that stays up, then all
--       terminated: appstart inside appstart.run vs plain C
--   B3  death-detection latency: kill() to the on_exit callback, vs a
--       watcher that probes once per second
--   B4  N idle appstart.watch: CPU seconds over 10 s and bytes per watch, vs
--       a 1 Hz kill(pid, 0) poller over the same processes
--   B5  peak RSS of the launcher during B2 vs the C program's, and the
--       same 1,000 starts driven by appstart.begin from one task (no
--       coroutine per start): what a start in flight costs appstart itself
--   B6  restart latency of appstart.supervisor (backoff.initial = 0): from
--       the SIGKILL of a supervised app to its replacement's exec (the
--       fixture notes CLOCK_MONOTONIC first thing), vs the same restart
--       written by hand (a task that starts the app again as soon as
--       app:wait() returns)
--   B7  sv:up() of 100 services with random `needs` (fixed seed), each
--       ready D s after its spawn: wall time vs the graph's critical path
--       (its depth times D), and vs that chain of starts run by hand, one
--       after the other
--   B8  1,000 idle supervised services: launcher CPU over 10 s vs a 1 Hz
--       kill(pid, 0) sweep over the same processes, and Lua heap and RSS
--       per service vs per app held from appstart.start
--   B9  probe latency: from the moment a fixture listens on a tcp port (it
--       notes CLOCK_MONOTONIC just before listen(), first thing after its
--       exec) to ready, for ready = {connect = "tcp:..."}, vs a probe that
--       tries once a second (Kubernetes' finest period) on the same fixture
--   B10 output throughput: `cat` of 1,000,000 log lines (about 60 MB) into
--       stdout = "capture": lines per second delivered to on_output (inside
--       appstart.run and in a plain script), into the ring alone, and with
--       stdout = {file = ...}; the launcher's CPU per MB; vs `cat` of the
--       same file into a pipe read by plain C (baseline.c cat)
--
-- Every measurement runs in a fresh process ("worker", this file with
-- `part NAME ...`), so one cannot disturb the next and VmHWM is that part's
-- own. Workers print key=value lines; the driver prints medians, spreads, a
-- markdown table for the README and the machine it ran on.
--
-- Environment (as `make bench` sets it): LUA_PATH, LUA_CPATH,
-- APPSTART_FIXTURES (build/fixtures: fixture, baseline).
-- BENCH_QUICK=1 shrinks every count, to try the driver out; BENCH_ONLY=B1,B3
-- runs only those parts (B2 includes B5).
local core = require "appstart.core"
local testing = require "appstart.testing"

local now = core.now

local FIXTURES = assert(os.getenv("APPSTART_FIXTURES"), "run through make bench")
local FIXTURE = FIXTURES .. "/fixture"
local BASELINE = FIXTURES .. "/baseline"
local LUA = arg[-1] or "lua5.4"
local SELF = arg[0]

local QUICK = os.getenv("BENCH_QUICK") == "1"
local CFG = {
  b1_rounds = 20, b1_starts = 100, b1_warmup = 10,
  b2_rounds = 5, b2_starts = 1000,
  b3_deaths = 1000, b3_batch = 100,
  b3_fallback_deaths = 100,
  b3_poll_deaths = 1000,
  b4_watches = 10000, b4_seconds = 10,
  b6_restarts = 50, b6_rounds = 5,
  b7_services = 100, b7_delay = 0.05, b7_rounds = 5,
  b8_services = 1000, b8_seconds = 10,
  b9_starts = 200, b9_poll_starts = 5,
  b10_lines = 1000000, b10_rounds = 5,
}
if QUICK then
  CFG = {
    b1_rounds = 2, b1_starts = 50, b1_warmup = 5,
    b2_rounds = 2, b2_starts = 100,
    b3_deaths = 100, b3_batch = 50,
    b3_fallback_deaths = 20,
    b3_poll_deaths = 5,
    b4_watches = 500, b4_seconds = 2,
    b6_restarts = 10, b6_rounds = 2,
    b7_services = 30, b7_delay = 0.05, b7_rounds = 2,
    b8_services = 100, b8_seconds = 2,
    b9_starts = 20, b9_poll_starts = 2,
    b10_lines = 100000, b10_rounds = 2,
  }
end

-------------------------------------------------------------------------------
-- small helpers, shared by driver and workers

local read_file = require("support").read

--- A field of /proc/self/status (VmRSS, VmHWM) in kB.
local function status_kb(field)
  local s = read_file("/proc/self/status") or ""
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

--- A field of /proc/meminfo in kB.
local function meminfo_kb(field)
  local s = read_file("/proc/meminfo") or ""
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local function my_pid()
  return tonumber((read_file("/proc/self/stat") or ""):match("^(%d+)"))
end

--- Number of this process's children (live or zombie).
local function child_count()
  local pid = my_pid()
  local s = read_file("/proc/" .. pid .. "/task/" .. pid .. "/children") or ""
  local n = 0
  for _ in s:gmatch("%d+") do n = n + 1 end
  return n
end

local function sorted(list)
  local s = table.move(list, 1, #list, 1, {})
  table.sort(s)
  return s
end

--- Nearest-rank percentile p (0..100) of a list.
local function percentile(list, p)
  local s = sorted(list)
  local k = math.max(1, math.ceil(#s * p / 100))
  return s[k]
end

local function median(list)
  local s = sorted(list)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-------------------------------------------------------------------------------
-- workers: `run.lua part NAME ARGS...`; each prints key=value lines

local parts = {}

local function emit(key, value)
  if type(value) == "table" then
    local t = {}
    for i, v in ipairs(value) do t[i] = string.format("%.9g", v) end
    value = table.concat(t, ",") .. "," -- a list even with one element
  elseif math.type(value) == "float" then
    value = string.format("%.9g", value)
  end
  io.stdout:write(key, "=", tostring(value), "\n")
end

--- B1, appstart: start, read the ready line, wait for the exit; n times.
-- mode "plain": a plain script (every wait blocks); "loop": the same inside
-- appstart.run.
function parts.b1_appstart(n, warmup, mode)
  local appstart = require "appstart"
  local opts = { argv = { FIXTURE, "line=3:appstart" }, ready = "fd" }
  local each = {}
  local function one()
    local t0 = now()
    local app = assert(appstart.start(opts))
    local how = app:wait()
    assert(how and how.code == 0, "fixture did not exit 0")
    return now() - t0
  end
  local seconds, cpu
  local function body()
    for _ = 1, warmup do one() end
    local c0, t0 = os.clock(), now()
    for i = 1, n do each[i] = one() end
    seconds, cpu = now() - t0, os.clock() - c0
  end
  if mode == "loop" then appstart.run(body) else body() end
  emit("seconds", seconds)
  emit("cpu", cpu)
  emit("start_median", sorted(each)[n // 2 + 1])
end

--- B1, the floor under the policy layer: the same starts made with
-- appstart.core alone (the C starter and process, driven by the least Lua
-- that works: no options, deadlines, app object or log), to show how much
-- of appstart's CPU is the C core's and how much the Lua around it.
function parts.b1_core(n, warmup)
  local argv = { FIXTURE, "line=3:core" }
  local each = {}
  local function one()
    local t0 = now()
    local s = core.start(argv, nil, nil, nil, nil, nil, "fd", 3, nil, nil, false)
    while true do
      local state = s:step()
      if state == "ready" then break end
      assert(state == "wait", "the start failed")
      assert(s:wait(40), "no ready line within 40 s")
    end
    local proc = s:take(false)
    local fd = proc:fd()
    local how = proc:poll()
    while not how do
      core.wait_readable(fd, 5)
      how = proc:poll()
    end
    proc:close()
    assert(how.code == 0, "fixture did not exit 0")
    return now() - t0
  end
  for _ = 1, warmup do one() end
  local c0, t0 = os.clock(), now()
  for i = 1, n do each[i] = one() end
  emit("seconds", now() - t0)
  emit("cpu", os.clock() - c0)
  emit("start_median", sorted(each)[n // 2 + 1])
end

--- B10, appstart: `cat FILE` with stdout = "capture" (or a file), n
-- times; lines counted by on_output. mode "loop": inside appstart.run;
-- "plain": a plain script waiting in app:wait; "ring": no on_output (lines
-- only into the ring); "file": stdout = {file = ...} (the launcher appends).
function parts.b10_appstart(file, n, mode)
  local appstart = require "appstart"
  local lines, bytes = 0, 0
  local out = os.tmpname()
  local opts = { argv = { "/bin/cat", file }, ready = "none", stdout = "capture" }
  if mode == "file" then
    opts.stdout = { file = out }
  elseif mode ~= "ring" then
    opts.on_output = function(_, _, line) lines, bytes = lines + 1, bytes + #line + 1 end
  end
  local seconds, cpu
  local function body()
    local c0, t0 = os.clock(), now()
    for _ = 1, n do
      local app = assert(appstart.start(opts))
      local how = app:wait()
      assert(how and how.code == 0, "cat did not exit 0")
      app:close()
    end
    seconds, cpu = now() - t0, os.clock() - c0
  end
  collectgarbage()
  local rss0 = status_kb("VmRSS")
  if mode == "loop" then appstart.run(body) else body() end
  os.remove(out)
  emit("seconds", seconds)
  emit("cpu", cpu)
  emit("lines", lines)
  emit("bytes", bytes)
  emit("vmhwm_kb", status_kb("VmHWM"))
  emit("vmrss_start_kb", rss0)
end

--- B1, luv: uv.spawn with a pipe at fd 3, read the line, wait for the exit.
function parts.b1_luv(n, warmup)
  local uv = require "luv"
  local function one()
    local pipe = uv.new_pipe(false)
    local buf, got, exited = "", false, false
    local proc
    proc = assert(uv.spawn(FIXTURE, { args = { "line=3:luv" }, stdio = { 0, 1, 2, pipe } },
      function(code)
        assert(code == 0, "fixture did not exit 0")
        exited = true
        proc:close()
      end))
    pipe:read_start(function(err, data)
      assert(not err, err)
      if data then
        buf = buf .. data
        if buf:find("\n", 1, true) then got = true end
      end
      if got or not data then
        pipe:read_stop()
        pipe:close()
      end
    end)
    uv.run("default")
    assert(got and exited, "no ready line or no exit")
  end
  for _ = 1, warmup do one() end
  local each = {}
  local c0, t0 = os.clock(), now()
  for i = 1, n do
    local s0 = now()
    one()
    each[i] = now() - s0
  end
  emit("seconds", now() - t0)
  emit("cpu", os.clock() - c0)
  emit("start_median", sorted(each)[n // 2 + 1])
end

--- B2 (and B5), appstart: n tasks each start an app that stays up; when all
-- are ready, n tasks terminate them.
function parts.b2_appstart(n)
  local appstart = require "appstart"
  core.raise_nofile()
  local rss_start = status_kb("VmRSS")
  local apps = {}
  local c0, t0 = os.clock(), now()
  appstart.run(function()
    for i = 1, n do
      appstart.spawn(function()
        apps[i] = assert(appstart.start {
          argv = { FIXTURE, "line=3:b2", "pause" }, ready = "fd", ready_timeout = 60,
        })
      end)
    end
  end)
  local t1 = now()
  appstart.run(function()
    for i = 1, n do
      appstart.spawn(function()
        local how = apps[i]:terminate(5)
        assert(how and how.signal == 15, "app did not end by SIGTERM")
      end)
    end
  end)
  local t2 = now()
  emit("seconds", t2 - t0)
  emit("cpu", os.clock() - c0)
  emit("start_seconds", t1 - t0)
  emit("stop_seconds", t2 - t1)
  emit("vmhwm_kb", status_kb("VmHWM"))
  emit("vmrss_start_kb", rss_start)
end

--- B5, begin-driven: n starts begun from one task, waited for in turn,
-- then stopped (SIGTERM to all, then each waited for): the launcher's RSS
-- growth per start, with no coroutine per start.
function parts.b5_begin(n)
  local appstart = require "appstart"
  core.raise_nofile()
  local rss_start = status_kb("VmRSS")
  local apps = {}
  appstart.run(function()
    local hs = {}
    for i = 1, n do
      hs[i] = appstart.begin { argv = { FIXTURE, "line=3:b5", "pause" }, ready = "fd", ready_timeout = 60 }
    end
    for i = 1, n do apps[i] = assert(hs[i]:wait()) end
    for i = 1, n do assert(apps[i]:kill("TERM")) end
    for i = 1, n do
      local how = apps[i]:wait(5)
      assert(how and how.signal == 15, "app did not end by SIGTERM")
    end
  end)
  emit("growth_bytes", (status_kb("VmHWM") - rss_start) * 1024 / n)
end

--- B5, the Lua side: heap bytes per start in flight (all n waiting for
-- their apps, which sleep before they write the line) and per app held
-- once ready, each after a full collection.
function parts.b5_heap(n)
  local appstart = require "appstart"
  core.raise_nofile()
  local apps = {}
  collectgarbage()
  collectgarbage()
  local k0 = collectgarbage("count")
  local in_flight
  appstart.run(function()
    for i = 1, n do
      appstart.spawn(function()
        apps[i] = assert(appstart.start { argv = { FIXTURE, "sleep=0.5", "line=3:b5", "pause" },
          ready = "fd", ready_timeout = 60 })
      end)
    end
    -- queued after them: runs once every start has begun and is waiting
    appstart.spawn(function()
      collectgarbage()
      collectgarbage()
      in_flight = collectgarbage("count")
    end)
  end)
  collectgarbage()
  collectgarbage()
  local held = collectgarbage("count")
  appstart.run(function()
    for i = 1, n do appstart.spawn(function() apps[i]:terminate(5) end) end
  end)
  emit("in_flight_bytes", (in_flight - k0) * 1024 / n)
  emit("held_bytes", (held - k0) * 1024 / n)
  -- the floor under a task per start: a bare task asleep
  collectgarbage()
  collectgarbage()
  local t0, asleep = collectgarbage("count"), nil
  appstart.run(function()
    for _ = 1, n do appstart.spawn(function() appstart.sleep(0.2) end) end
    appstart.spawn(function()
      collectgarbage()
      collectgarbage()
      asleep = collectgarbage("count")
    end)
  end)
  emit("task_bytes", (asleep - t0) * 1024 / n)
  -- the room a task's own code has around appstart.start before the
  -- task's stack doubles (40 slots, 80, 160, 16 bytes each): the most
  -- locals a task may hold there with its heap per start in flight as
  -- with none (its deepest call is under the start's wait)
  local function heap_with(k)
    local names, values = {}, {}
    for i = 1, k do names[i], values[i] = "l" .. i, tostring(i) end
    local decl = k > 0 and ("local " .. table.concat(names, ",") .. " = " .. table.concat(values, ",") .. " ") or ""
    -- (the task's function itself, as B5's: its k locals, then the start)
    local task_of = assert(load("local appstart, argv, held = ...\n"
      .. "return function(i) return function() " .. decl
      .. "held[i] = assert(appstart.start { argv = argv, ready = 'fd', ready_timeout = 60 }) end end"))
    local m, held2 = math.min(n, 100), {}
    task_of = task_of(appstart, { FIXTURE, "sleep=0.3", "line=3:b5", "pause" }, held2)
    collectgarbage()
    collectgarbage()
    local h0, at = collectgarbage("count"), nil
    appstart.run(function()
      for i = 1, m do appstart.spawn(task_of(i)) end
      appstart.spawn(function()
        collectgarbage()
        collectgarbage()
        at = collectgarbage("count")
      end)
    end)
    appstart.run(function()
      for i = 1, m do appstart.spawn(function() held2[i]:terminate(5) end) end
    end)
    return (at - h0) * 1024 / m
  end
  -- (the first k that doubles it: past 80 slots, a stack of 80 at k = 0,
  -- room k - 1; else one of 160 already, no room before 80)
  local base = heap_with(0)
  local lo, hi = 0, 120 -- lo fits, hi doubles (80 more slots always do)
  while hi - lo > 1 do
    local mid = (lo + hi) // 2
    if heap_with(mid) - base < 640 then lo = mid else hi = mid end
  end
  emit("task_room", hi < 80 and lo or -1)
end

--- B3, appstart: kill an app, time until its on_exit callback runs. Apps
-- are started `batch` at a time and killed one after the other; the
-- measuring task sleeps and is woken (cancelled) by the callback, so nothing
-- polls meanwhile. how = "fallback": no pidfds (the kill(pid, 0) probe).
function parts.b3_appstart(n, batch, how)
  local appstart = require "appstart"
  core.raise_nofile()
  if how == "fallback" then testing.use_pidfd(false) end
  math.randomseed(4242)
  local latencies = {}
  appstart.run(function()
    local driver
    driver = appstart.spawn(function()
      while #latencies < n do
        local k = math.min(batch, n - #latencies)
        local apps, exited_at = {}, {}
        for i = 1, k do
          apps[i] = assert(appstart.start {
            argv = { FIXTURE, "line=3:b3", "pause" }, ready = "fd",
            on_exit = function()
              exited_at[i] = now()
              driver:cancel()
            end,
          })
        end
        for i = 1, k do
          -- without pidfds each app is probed on its own timer: a kill at
          -- a random point of its period, not in step with the last death
          if how == "fallback" then appstart.sleep(math.random() * appstart.poll_interval) end
          local t0 = now()
          assert(apps[i]:kill("TERM"))
          local ok, why = appstart.sleep(5)
          assert(ok == nil and why == "cancelled" and exited_at[i],
            "on_exit did not run within 5 s")
          latencies[#latencies + 1] = exited_at[i] - t0
        end
      end
    end)
  end)
  testing.use_pidfd(true)
  emit("latencies", latencies)
end

--- B3, the classic poller: every second, probe each app (app:wait(0): one
-- waitpid(WNOHANG), which is kill(pid, 0) for one's own children, where a
-- zombie would still answer kill). Kills land at random points of the
-- probing period.
function parts.b3_polling(n)
  local appstart = require "appstart"
  math.randomseed(12345)
  local apps, seen, killed = {}, {}, {}
  for i = 1, n do
    apps[i] = assert(appstart.start { argv = { FIXTURE, "line=3:b3p", "pause" }, ready = "fd" })
  end
  appstart.run(function()
    local t0 = now()
    for i = 1, n do
      appstart.spawn(function() -- the watcher
        while true do
          if apps[i]:wait(0) then seen[i] = now(); return end
          appstart.sleep(1)
        end
      end)
      local delay = 0.2 + math.random()
      appstart.spawn(function() -- the killer
        appstart.sleep(t0 + delay - now())
        killed[i] = now()
        assert(apps[i]:kill("TERM"))
      end)
    end
  end)
  local latencies = {}
  for i = 1, n do latencies[i] = seen[i] - killed[i] end
  emit("latencies", latencies)
end

--- B4: n sleeping apps; CPU over `seconds` for a 1 Hz kill(pid, 0) poller,
-- then for n appstart.watch, and what the watches cost in memory.
function parts.b4(n, seconds)
  local appstart = require "appstart"
  local soft = core.raise_nofile()
  -- the apps' own pidfds while starting, then one per watch; some room
  -- for the starts in flight
  local limit = soft - 512
  if n > limit then n = limit end
  local concurrency = 50
  local apps, pids, failure = {}, {}, nil
  local t0 = now()
  appstart.run(function()
    for c = 1, concurrency do
      appstart.spawn(function()
        for i = c, n, concurrency do
          if failure then return end
          local app, err = appstart.start { argv = { FIXTURE, "pause" }, ready = "none" }
          if not app then failure = string.format("start %d of %d: %s", i, n, tostring(err)); return end
          apps[i] = app
        end
      end)
    end
  end)
  -- the machine's limit (pids, memory) decides N when it is below the ask
  local kept = {}
  for i = 1, n do
    if apps[i] then kept[#kept + 1] = apps[i] end
  end
  apps, n = kept, #kept
  for i = 1, n do pids[i] = apps[i].pid end
  emit("start_seconds", now() - t0)
  emit("watches", n)
  if failure then emit("start_failure", (failure:gsub("[\n=,]", " "))) end
  -- release the apps' descriptors (they stay up, reaped later by testing.reap)
  for i = 1, n do apps[i]:close(); apps[i] = nil end
  apps = nil -- luacheck: ignore

  -- the poller's handles: pid only, no descriptor (kill(pid, 0) probes)
  testing.use_pidfd(false)
  local probes = {}
  for i = 1, n do probes[i] = assert(core.process(pids[i])) end
  testing.use_pidfd(true)

  local cpu_poll, sweeps = 0, 0
  appstart.run(function()
    local c0, start = os.clock(), now()
    for k = 0, seconds - 1 do
      appstart.sleep(start + k - now())
      for i = 1, n do assert(probes[i]:signal(0), "a watched app died") end
      sweeps = sweeps + 1
    end
    appstart.sleep(start + seconds - now())
    cpu_poll = os.clock() - c0
  end)
  emit("poll_cpu", cpu_poll)
  emit("poll_sweeps", sweeps)

  local cpu_watch, heap, rss, slab, fired = 0, 0, 0, 0, 0
  appstart.run(function()
    local watches = {}
    -- twice: finalized userdata is freed by the second cycle
    collectgarbage("collect")
    collectgarbage("collect")
    local heap0, rss0, slab0 = collectgarbage("count"), status_kb("VmRSS"), meminfo_kb("Slab")
    for i = 1, n do
      watches[i] = appstart.watch(pids[i], function(_, why)
        if why ~= "stopped" then fired = fired + 1 end
      end)
    end
    collectgarbage("collect")
    collectgarbage("collect")
    heap = (collectgarbage("count") - heap0) * 1024 / n
    rss = (status_kb("VmRSS") - rss0) * 1024 / n
    slab = (meminfo_kb("Slab") - slab0) * 1024 / n
    local c0 = os.clock()
    appstart.sleep(seconds)
    cpu_watch = os.clock() - c0
    for i = 1, n do watches[i]:stop() end
  end)
  assert(fired == 0, "a watched app died during the idle period")
  emit("watch_cpu", cpu_watch)
  emit("heap_per_watch", heap)
  emit("rss_per_watch", rss)
  emit("slab_per_watch", slab)

  -- tear down: SIGKILL through the probe handles (unreaped children: exact)
  for i = 1, n do probes[i]:signal("KILL") end
  local deadline = now() + 60
  repeat
    testing.reap()
    core.wait_readable(-1, 0.01)
  until child_count() == 0 or now() > deadline
  emit("left", child_count())
end

--- B6, supervised: n SIGKILLs of a supervised app (backoff.initial = 0),
-- each timed to its replacement's exec, which the fixture notes at once
-- (now=PATH) before it says it is ready.
function parts.b6_supervisor(n)
  local appstart = require "appstart"
  local loop = require "appstart.loop"
  -- the default logger, quiet: a logger of one's own is handed every
  -- message, so each is formatted (the hand-written loop's are not)
  appstart.log_level = "error"
  local stamp = os.tmpname()
  local measurer, readies = nil, 0
  local sv = appstart.supervisor {
    services = { s = { argv = { FIXTURE, "now=" .. stamp, "line=3:b6", "pause" }, ready = "fd",
      backoff = { initial = 0 }, burst = n + 10 } },
    on_event = function(_, state)
      if state == "ready" then
        readies = readies + 1
        if measurer then measurer:wake() end
      end
    end,
  }
  local latencies = {}
  appstart.run(function()
    measurer = loop.task()
    assert(sv:up())
    for i = 1, n do
      local want = readies + 1
      local proc = assert(core.process(sv:status("s").pid))
      local t0 = now()
      proc:signal("KILL")
      proc:close()
      local deadline = now() + 5
      while readies < want do
        assert(now() < deadline, "no restart within 5 s")
        loop.wait(nil, deadline)
      end
      latencies[i] = tonumber(read_file(stamp)) - t0
    end
    sv:down()
  end)
  os.remove(stamp)
  emit("latencies", latencies)
end

--- B6, by hand: a task that starts the app again as soon as app:wait()
-- returns; the same n SIGKILLs, timed the same way.
function parts.b6_by_hand(n)
  local appstart = require "appstart"
  local loop = require "appstart.loop"
  appstart.log_level = "error"
  local stamp = os.tmpname()
  local opts = { argv = { FIXTURE, "now=" .. stamp, "line=3:b6", "pause" }, ready = "fd" }
  local latencies, current, readies, measurer = {}, nil, 0, nil
  appstart.run(function()
    measurer = loop.task()
    appstart.spawn(function()
      for i = 1, n + 1 do
        current = assert(appstart.start(opts))
        readies = readies + 1
        measurer:wake()
        if i > n then return end
        current:wait()
      end
    end)
    for i = 1, n do
      local deadline = now() + 5
      while readies < i do
        assert(now() < deadline, "not ready within 5 s")
        loop.wait(nil, deadline)
      end
      local t0 = now()
      current:kill("KILL")
      deadline = now() + 5
      while readies < i + 1 do
        assert(now() < deadline, "no restart within 5 s")
        loop.wait(nil, deadline)
      end
      latencies[i] = tonumber(read_file(stamp)) - t0
    end
    current:terminate()
  end)
  os.remove(stamp)
  emit("latencies", latencies)
end

--- The B7 graph: n services, each needing up to two of those before it
-- (fixed seed), each ready `delay` s after its spawn (notify). Returns the
-- services and the graph's depth (services on its longest chain).
local function b7_graph(n, delay, seed)
  math.randomseed(seed)
  local services, depth, deepest = {}, {}, 0
  for i = 1, n do
    local needs, d = {}, 0
    for _ = 1, (i > 1 and math.random(0, 2) or 0) do
      local j = math.random(1, i - 1)
      needs[#needs + 1] = "s" .. j
      if depth[j] > d then d = depth[j] end
    end
    depth[i] = d + 1
    if depth[i] > deepest then deepest = depth[i] end
    services["s" .. i] = { argv = { FIXTURE, "sleep=" .. delay, "notify=READY=1", "pause" }, needs = needs,
      ready_timeout = 60 }
  end
  return services, deepest
end

--- B7: sv:up() of the graph (parallel = n), then the same depth of starts
-- one after the other by hand (each ready `delay` s after its spawn).
function parts.b7(n, delay, seed)
  local appstart = require "appstart"
  core.raise_nofile()
  local services, depth = b7_graph(n, delay, seed)
  local sv = appstart.supervisor { services = services, parallel = n, log = function() end }
  local up_seconds, chain_seconds
  appstart.run(function()
    local t0 = now()
    assert(sv:up())
    up_seconds = now() - t0
    sv:down()
  end)
  local opts = { argv = { FIXTURE, "sleep=" .. delay, "notify=READY=1", "pause" } }
  local apps = {}
  local t0 = now()
  for i = 1, depth do apps[i] = assert(appstart.start(opts)) end
  chain_seconds = now() - t0
  for i = 1, depth do apps[i]:terminate() end
  emit("seconds", up_seconds)
  emit("chain_seconds", chain_seconds)
  emit("depth", depth)
end

--- B8: n idle supervised services; the launcher's CPU over `seconds`, and
-- the Lua heap and RSS each costs (after full collections); then a 1 Hz
-- kill(pid, 0) sweep over the same processes for as long.
function parts.b8(n, seconds)
  local appstart = require "appstart"
  core.raise_nofile()
  local services = {}
  for i = 1, n do
    services["s" .. i] = { argv = { FIXTURE, "line=3:b8", "pause" }, ready = "fd", ready_timeout = 60 }
  end
  local function settle()
    collectgarbage("collect")
    collectgarbage("collect")
    return collectgarbage("count"), status_kb("VmRSS")
  end
  local heap0, rss0 = settle()
  local sv = appstart.supervisor { services = services, parallel = 50, log = function() end }
  local cpu, heap, rss, pids = 0, 0, 0, {}
  appstart.run(function()
    assert(sv:up())
    local heap1, rss1 = settle()
    heap, rss = (heap1 - heap0) * 1024 / n, (rss1 - rss0) * 1024 / n
    for name, st in pairs(sv:status()) do pids[#pids + 1] = st.pid; assert(st.state == "ready", name) end
    local c0 = os.clock()
    appstart.sleep(seconds)
    cpu = os.clock() - c0
    -- the poller's sweeps, over the same processes
    testing.use_pidfd(false)
    local probes = {}
    for i = 1, #pids do probes[i] = assert(core.process(pids[i])) end
    testing.use_pidfd(true)
    local c1, start = os.clock(), now()
    for k = 0, seconds - 1 do
      appstart.sleep(start + k - now())
      for i = 1, #probes do assert(probes[i]:signal(0), "a supervised app died") end
    end
    appstart.sleep(start + seconds - now())
    emit("poll_cpu", os.clock() - c1)
    for i = 1, #probes do probes[i]:close() end
    sv:down()
  end)
  emit("cpu", cpu)
  emit("heap_per_service", heap)
  emit("rss_per_service", rss)
end

--- B8's baseline: n apps held from appstart.start (50 starts at a time),
-- their Lua heap and RSS each, in a process of their own.
function parts.b8_apps(n)
  local appstart = require "appstart"
  core.raise_nofile()
  local function settle()
    collectgarbage("collect")
    collectgarbage("collect")
    return collectgarbage("count"), status_kb("VmRSS")
  end
  local heap0, rss0 = settle()
  local apps = {}
  appstart.run(function()
    for c = 1, 50 do
      appstart.spawn(function()
        for i = c, n, 50 do apps[i] = assert(appstart.start { argv = { FIXTURE, "line=3:b8", "pause" }, ready = "fd",
          ready_timeout = 60 }) end
      end)
    end
  end)
  local heap1, rss1 = settle()
  emit("heap_per_app", (heap1 - heap0) * 1024 / n)
  emit("rss_per_app", (rss1 - rss0) * 1024 / n)
  appstart.run(function()
    for i = 1, n do appstart.spawn(function() apps[i]:terminate(5) end) end
  end)
end

--- B9: n starts of a fixture that listens on a tcp port at once; each
-- start's latency from the listen to ready. mode "probe": appstart's
-- connect probe; "poll": a start at exec, then a connect tried once a
-- second until it succeeds.
function parts.b9(n, mode)
  local appstart = require "appstart"
  local mark = os.tmpname()
  local lat = {}
  for i = 1, n do
    local app, ready_at
    for _ = 1, 5 do -- a free port: one nobody listens on
      local port = math.random(20000, 60000)
      local argv = { FIXTURE, "now=" .. mark, "listen=tcp:" .. port, "pause" }
      if mode == "probe" then
        app = appstart.start { argv = argv, ready = { connect = "tcp:127.0.0.1:" .. port } }
        ready_at = app and now()
      else
        app = appstart.start { argv = argv, ready = "none" }
        -- a try, its answer awaited (loopback answers at once)
        local function connects()
          local r = core.connect("tcp", "127.0.0.1", port)
          if type(r) ~= "userdata" then return r == true end
          local t = now()
          local ok = r:check()
          while ok == false and now() - t < 1 do ok = r:check() end
          r:close()
          return ok == true
        end
        while app and not connects() do appstart.sleep(1) end
        ready_at = now()
      end
      if app then break end
    end
    assert(app, "no free port")
    local listened = assert(tonumber(read_file(mark)), "no time noted")
    lat[i] = ready_at - listened
    app:terminate()
  end
  os.remove(mark)
  emit("latencies", lat)
end

-------------------------------------------------------------------------------
-- the driver

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function parse_kv(text)
  local r = {}
  for k, v in text:gmatch("([%w_]+)=([^\n]*)") do
    if v:find(",", 1, true) then
      local list = {}
      for x in v:gmatch("[^,]+") do list[#list + 1] = tonumber(x) end
      r[k] = list
    else
      r[k] = tonumber(v) or v
    end
  end
  return r
end

local tmp_out -- the driver's scratch file, made on first use

local function pgrp_of(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat and stat:match("%) %S+ %d+ (%d+)")
end

--- Fixtures left running in our process group by a worker that failed:
-- ours to end, by pid.
local function kill_leftovers()
  local mine = pgrp_of("self")
  local p = io.popen("exec ls /proc")
  local pids = {}
  for l in p:lines() do pids[#pids + 1] = tonumber(l) end
  p:close()
  local n = 0
  for _, pid in ipairs(pids) do
    local cmd = read_file("/proc/" .. pid .. "/cmdline")
    if cmd and cmd:match("^[^%z]*") == FIXTURE and pgrp_of(pid) == mine then
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      n = n + 1
    end
  end
  return n
end

--- Run a command whose stdout is key=value lines; its stdout goes to a file
-- (apps inherit it; a pipe would keep the reader waiting on them).
local function run_kv(cmd)
  tmp_out = tmp_out or os.tmpname()
  local ok = os.execute(cmd .. " > " .. shell_quote(tmp_out))
  local out = read_file(tmp_out) or ""
  if not ok then
    local n = kill_leftovers()
    error(string.format("failed: %s%s\n%s", cmd,
      n > 0 and string.format(" (%d leftover fixtures killed)", n) or "", out), 0)
  end
  return parse_kv(out)
end

-- (the suite runs the benchmarks under its sanitizers too: a worker gets
-- their runtime as the suite's children do, and nothing outside that)
local SAN_PRELOAD = require("childkit").SH_SAN_PRELOAD

local function worker(name, ...)
  local args = { LUA, SELF, "part", name, ... }
  for i, a in ipairs(args) do args[i] = shell_quote(tostring(a)) end
  return run_kv(SAN_PRELOAD .. "exec " .. table.concat(args, " "))
end

local function c_baseline(mode, n)
  return run_kv(table.concat({ shell_quote(BASELINE), mode, shell_quote(FIXTURE), n }, " "))
end

local function ensure_baseline()
  local src = SELF:gsub("run%.lua$", "baseline.c")
  -- `make bench` builds it; this covers a Makefile without that rule
  local stale = os.execute(string.format("test -x %s && ! test %s -nt %s",
    shell_quote(BASELINE), shell_quote(src), shell_quote(BASELINE)))
  if not stale then
    local cmd = string.format("${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Wextra -pedantic " ..
      "-Wshadow -Wmissing-prototypes -O2 -g -o %s %s", shell_quote(BASELINE), shell_quote(src))
    io.stderr:write("bench: building ", BASELINE, "\n")
    assert(os.execute(cmd), "cannot build the C baseline")
  end
end

local function spread(list, fmt)
  local s = sorted(list)
  return string.format(fmt .. " (min " .. fmt .. ", max " .. fmt .. ")", median(list), s[1], s[#s])
end

local function say(...)
  io.stdout:write(string.format(...), "\n")
  io.stdout:flush()
end

local function shell_line(cmd)
  local p = io.popen(cmd)
  local s = p:read("l")
  p:close()
  return s
end

local function loadavg()
  return ((read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)"))
end

--- BENCH_ONLY=B1,B3 runs only those (B2 includes B5).
local function want(name)
  local only = os.getenv("BENCH_ONLY")
  if not only or only == "" then return true end
  -- whole names: B1 is not B10
  for part in only:upper():gmatch("[^,%s]+") do
    if part == name then return true end
  end
  return false
end

local function driver()
  local bench_t0 = now()
  local load0 = loadavg()
  ensure_baseline()
  local rows = {}
  local function row(name, a, b, ratio, goal, met)
    rows[#rows + 1] = { name, a, b, ratio, goal, met }
  end
  local function yes(b) return b and "yes" or "**no**" end

  -- B1 -----------------------------------------------------------------------
  if want("B1") then
    local n = CFG.b1_starts
    say("B1: sequential starts, ready=fd, the app writes its line and exits: %d rounds of %d",
      CFG.b1_rounds, n)
    local rate, cpu, ratio, typical = {}, {}, {}, {}
    local have_luv = pcall(require, "luv")
    local order = { "c", "c_att", "core", "appstart", "loop" }
    if have_luv then table.insert(order, 5, "luv") end
    for _, v in ipairs(order) do rate[v], cpu[v], ratio[v], typical[v] = {}, {}, {}, {} end
    for r = 1, CFG.b1_rounds do
      local secs = {}
      for k = 0, #order - 1 do
        -- rotate the order each round, so drift hits every variant alike
        local v = order[(k + r - 1) % #order + 1]
        local res
        if v == "c" or v == "c_att" then
          local mode = v == "c" and "seq" or "seq-attested"
          c_baseline(mode, CFG.b1_warmup)
          res = c_baseline(mode, n)
        elseif v == "luv" then
          res = worker("b1_luv", n, CFG.b1_warmup)
        elseif v == "core" then
          res = worker("b1_core", n, CFG.b1_warmup)
        else
          res = worker("b1_appstart", n, CFG.b1_warmup, v == "loop" and "loop" or "plain")
        end
        secs[v] = res.seconds
        rate[v][r], cpu[v][r], typical[v][r] = n / res.seconds, res.cpu / n, res.start_median
      end
      -- each round's own ratio: a busy moment of the machine hits both sides
      for _, v in ipairs(order) do ratio[v][r] = secs[v] / secs.c end
      ratio.luv_appstart = ratio.luv_appstart or {}
      ratio.luv_appstart[r] = have_luv and secs.appstart / secs.luv or nil
    end
    local labels = { c = "plain C (posix_spawn)", c_att = "C with the same guarantees",
      core = "appstart.core alone (no policy)", appstart = "appstart (plain script)",
      loop = "appstart (inside appstart.run)", luv = "luv uv.spawn" }
    for _, v in ipairs { "c", "c_att", "core", "appstart", "loop", "luv" } do
      if rate[v] then
        say("  %-32s %s starts/s; median start %.0f us; launcher CPU %.0f us/start", labels[v],
          spread(rate[v], "%.0f"), median(typical[v]) * 1e6, median(cpu[v]) * 1e6)
      end
    end
    local r_c = median(ratio.appstart)
    say("  time per start over C (median of per-round ratios): appstart %s, inside run %s",
      spread(ratio.appstart, "%.2fx"), spread(ratio.loop, "%.2fx"))
    say("  median single start over C (robust to load spikes): appstart %.2fx",
      median(typical.appstart) / median(typical.c))
    local m_c, m_a = median(rate.c), median(rate.appstart)
    row("B1 sequential starts/s vs plain C", string.format("%.0f /s", m_a),
      string.format("%.0f /s", m_c), string.format("%.2fx", r_c), "≤ 1.05x", yes(r_c <= 1.05))
    -- CPU: each round's own ratio too, the machine's drift hits both sides
    local cpu_ratio, cpu_att = {}, {}
    for r = 1, #cpu.c do
      cpu_ratio[r] = cpu.appstart[r] / cpu.c[r]
      cpu_att[r] = cpu.appstart[r] / cpu.c_att[r]
    end
    local rc, ra = median(cpu_ratio), median(cpu_att)
    say("  launcher CPU per start over C: %s; over C with the same guarantees: %s; that C over plain C %.2fx",
      spread(cpu_ratio, "%.2fx"), spread(cpu_att, "%.2fx"), median(cpu.c_att) / median(cpu.c))
    local att_time = {}
    for r = 1, #ratio.appstart do att_time[r] = ratio.appstart[r] / ratio.c_att[r] end
    say("  time per start over C with the same guarantees: %s", spread(att_time, "%.2fx"))
    row("B1 launcher CPU per start vs plain C", string.format("%.0f us", median(cpu.appstart) * 1e6),
      string.format("%.0f us", median(cpu.c) * 1e6), string.format("%.2fx", rc), "≤ 1.5x", yes(rc <= 1.5))
    -- the floor: what the C core costs driven from Lua, before any policy
    local core_ratio = {}
    for r = 1, #cpu.c do core_ratio[r] = cpu.core[r] / cpu.c[r] end
    say("  appstart.core alone over C: %s; appstart over appstart.core alone %.2fx (%.0f us of policy a start)",
      spread(core_ratio, "%.2fx"), median(cpu.appstart) / median(cpu.core),
      (median(cpu.appstart) - median(cpu.core)) * 1e6)
    row("B1 launcher CPU per start: appstart.core alone (the C core, no policy) vs plain C",
      string.format("%.0f us", median(cpu.core) * 1e6), string.format("%.0f us", median(cpu.c) * 1e6),
      string.format("%.2fx", median(core_ratio)), "—", "—")
    row("B1 launcher CPU per start vs C with the same guarantees",
      string.format("%.0f us", median(cpu.appstart) * 1e6), string.format("%.0f us", median(cpu.c_att) * 1e6),
      string.format("%.2fx", ra), "—", "—")
    if have_luv then
      local r_luv = median(ratio.luv_appstart)
      say("  luv over C %s; appstart over luv %s; median single start appstart over luv %.2fx",
        spread(ratio.luv, "%.2fx"), spread(ratio.luv_appstart, "%.2fx"),
        median(typical.appstart) / median(typical.luv))
      row("B1 sequential starts/s vs luv uv.spawn", string.format("%.0f /s", m_a),
        string.format("%.0f /s", median(rate.luv)), string.format("%.2fx", r_luv), "—", "—")
    else
      say("  luv not installed (Debian lua-luv): its row is left out")
    end
  end

  -- B2 / B5 ------------------------------------------------------------------
  if want("B2") then
    local n = CFG.b2_starts
    say("B2: %d concurrent starts (app stays up), then all terminated: %d rounds", n, CFG.b2_rounds)
    local b2 = { c = {}, a = {}, a_start = {}, a_stop = {}, c_start = {}, c_stop = {}, c_hwm = {}, a_hwm = {}, a_rss0 = {},
      c_rss0 = {}, ratio = {}, c_cpu = {}, a_cpu = {} }
    for r = 1, CFG.b2_rounds do
      local first, second = "c", "a"
      if r % 2 == 0 then first, second = "a", "c" end
      for _, v in ipairs { first, second } do
        if v == "c" then
          local res = c_baseline("many", n)
          b2.c[r], b2.c_hwm[r], b2.c_rss0[r] = res.seconds, res.vmhwm_kb, res.vmrss_start_kb
          b2.c_cpu[r], b2.c_start[r], b2.c_stop[r] = res.cpu, res.start_seconds, res.seconds - res.start_seconds
        else
          local res = worker("b2_appstart", n)
          b2.a[r], b2.a_hwm[r], b2.a_rss0[r] = res.seconds, res.vmhwm_kb, res.vmrss_start_kb
          b2.a_start[r], b2.a_stop[r] = res.start_seconds, res.stop_seconds
          b2.a_cpu[r] = res.cpu
        end
      end
      b2.ratio[r] = b2.a[r] / b2.c[r]
    end
    local b2c, b2a, b2r = median(b2.c), median(b2.a), median(b2.ratio)
    say("  %-32s %s s (start %.3f s + terminate %.3f s); launcher CPU %.3f s", "plain C",
      spread(b2.c, "%.3f"), median(b2.c_start), median(b2.c_stop), median(b2.c_cpu))
    say("  %-32s %s s (start %.3f s + terminate %.3f s); launcher CPU %.3f s",
      "appstart in appstart.run", spread(b2.a, "%.3f"), median(b2.a_start), median(b2.a_stop),
      median(b2.a_cpu))
    say("  wall-time ratio (median of per-round ratios) %s", spread(b2.ratio, "%.2fx"))
    row(string.format("B2 %d concurrent starts + stops, wall time", n), string.format("%.2f s", b2a),
      string.format("%.2f s", b2c), string.format("%.2fx", b2r), "≤ 1.20x", yes(b2r <= 1.20))

    local hwm_a, hwm_c = median(b2.a_hwm), median(b2.c_hwm)
    local rss0_a, rss0_c = median(b2.a_rss0), median(b2.c_rss0)
    say("B5: peak RSS (VmHWM) during B2: appstart %s kB (%.0f kB at rest before it), C %s kB (%.0f kB)",
      spread(b2.a_hwm, "%.0f"), rss0_a, spread(b2.c_hwm, "%.0f"), rss0_c)
    say("  growth during B2: appstart %.0f kB (%.0f B per app), C %.0f kB (%.0f B per app)",
      hwm_a - rss0_a, (hwm_a - rss0_a) * 1024 / n, hwm_c - rss0_c, (hwm_c - rss0_c) * 1024 / n)
    row("B5 launcher peak RSS in B2 (growth during B2)",
      string.format("%.1f MB (+%.1f MB)", hwm_a / 1024, (hwm_a - rss0_a) / 1024),
      string.format("%.1f MB (+%.1f MB)", hwm_c / 1024, (hwm_c - rss0_c) / 1024),
      string.format("%.2fx", hwm_a / hwm_c), "—", "—")
    local begun = {}
    for r = 1, CFG.b2_rounds do begun[r] = worker("b5_begin", n).growth_bytes end
    say("  the same starts driven by appstart.begin from one task: growth %s B per start",
      spread(begun, "%.0f"))
    row("B5 launcher RSS growth per start in flight: one task per start / driven by begin",
      string.format("%.0f B / %.0f B", (hwm_a - rss0_a) * 1024 / n, median(begun)),
      string.format("%.0f B", (hwm_c - rss0_c) * 1024 / n), "—", "≤ 2 KB (begin)", yes(median(begun) <= 2048))
    local heap = worker("b5_heap", n)
    say("  Lua heap: %.0f B per start in flight (a bare sleeping task: %.0f B), %.0f B per app held once ready",
      heap.in_flight_bytes, heap.task_bytes, heap.held_bytes)
    say("  a task's own locals around appstart.start before its stack doubles (1.3 KB a start more): %s",
      heap.task_room >= 0 and string.format("%d", heap.task_room) or "none (its stack is 160 slots already)")
    row("B5 Lua heap per start in flight / per app held", string.format("%.0f B / %.0f B",
      heap.in_flight_bytes, heap.held_bytes), "—", "—", "—", "—")
  end

  -- B3 -----------------------------------------------------------------------
  if want("B3") then
    say("B3: kill() to on_exit, %d deaths (batches of %d)", CFG.b3_deaths, CFG.b3_batch)
    local la = worker("b3_appstart", CFG.b3_deaths, CFG.b3_batch, "pidfd").latencies
    local lf = worker("b3_appstart", CFG.b3_fallback_deaths, math.min(CFG.b3_batch, 20), "fallback").latencies
    local lp = worker("b3_polling", CFG.b3_poll_deaths).latencies
    local function lat(name, list)
      local s = sorted(list)
      say("  %-32s n=%d median %.3f ms, p99 %.3f ms (min %.3f, max %.3f, IQR %.3f-%.3f)", name, #list,
        median(list) * 1e3, percentile(list, 99) * 1e3, s[1] * 1e3, s[#s] * 1e3,
        percentile(list, 25) * 1e3, percentile(list, 75) * 1e3)
    end
    lat("appstart (pidfd)", la)
    lat("appstart fallback (no pidfd)", lf)
    lat("poller, 1 probe per second", lp)
    local ma, mp = median(la), median(lp)
    row("B3 death detection, median", string.format("%.3f ms", ma * 1e3),
      string.format("%.0f ms", mp * 1e3), string.format("%.4fx", ma / mp), "< 1 ms", yes(ma < 0.001))
    row("B3 death detection, p99", string.format("%.3f ms", percentile(la, 99) * 1e3),
      string.format("%.0f ms", percentile(lp, 99) * 1e3),
      string.format("%.4fx", percentile(la, 99) / percentile(lp, 99)), "—", "—")
  end

  -- B4 -----------------------------------------------------------------------
  if want("B4") then
    say("B4: %d idle watches over %d s vs a 1 Hz kill(pid, 0) poller", CFG.b4_watches, CFG.b4_seconds)
    local b4 = worker("b4", CFG.b4_watches, CFG.b4_seconds)
    if b4.watches < CFG.b4_watches then
      say("  only %d watches fit: %s", b4.watches, b4.start_failure or "the descriptor limit")
    end
    say("  %d apps started in %.1f s; poller: %d sweeps, %.3f CPU s; watches: %.3f CPU s",
      b4.watches, b4.start_seconds, b4.poll_sweeps, b4.poll_cpu, b4.watch_cpu)
    say("  per watch: Lua heap %.0f B (the C userdata included), kernel slab ≈%.0f B (system-wide"
      .. " delta, an estimate); RSS delta %.0f B (below the heap's: it reuses what the closed app"
      .. " handles freed)", b4.heap_per_watch, b4.slab_per_watch, b4.rss_per_watch)
    if b4.left ~= 0 then say("  WARNING: %d children left unreaped", b4.left) end
    row(string.format("B4 CPU of %d idle watches over %d s", b4.watches, CFG.b4_seconds),
      string.format("%.3f s", b4.watch_cpu), string.format("%.3f s", b4.poll_cpu),
      string.format("%.3fx", b4.poll_cpu > 0 and b4.watch_cpu / b4.poll_cpu or 0), "—", "—")
    row("B4 memory per watch (Lua heap + kernel slab)",
      string.format("%.0f B + ≈%.0f B", b4.heap_per_watch, b4.slab_per_watch),
      "—", "—", "—", "—")
  end

  -- B6 -----------------------------------------------------------------------
  if want("B6") then
    local n = CFG.b6_restarts
    say("B6: restart latency, SIGKILL to the replacement's exec (backoff.initial = 0): %d rounds of %d",
      CFG.b6_rounds, n)
    local sup, hand, ratio, all = {}, {}, {}, {}
    for r = 1, CFG.b6_rounds do
      -- alternate which goes first, so drift hits both alike
      local a, b
      if r % 2 == 1 then
        a = worker("b6_supervisor", n).latencies
        b = worker("b6_by_hand", n).latencies
      else
        b = worker("b6_by_hand", n).latencies
        a = worker("b6_supervisor", n).latencies
      end
      sup[r], hand[r], ratio[r] = median(a) * 1e3, median(b) * 1e3, median(a) / median(b)
      for _, x in ipairs(a) do all[#all + 1] = x end
    end
    say("  supervised: median %s ms (p99 over every restart %.3f ms); by hand: median %s ms",
      spread(sup, "%.3f"), percentile(all, 99) * 1e3, spread(hand, "%.3f"))
    say("  supervised over by hand (median of per-round ratios): %s", spread(ratio, "%.2fx"))
    local ms = median(all) * 1e3
    row("B6 restart latency, SIGKILL to the replacement's exec, median", string.format("%.3f ms", ms),
      string.format("%.3f ms (by hand)", median(hand)), string.format("%.2fx", median(ratio)), "< 1 ms",
      yes(ms < 1))
  end

  -- B7 -----------------------------------------------------------------------
  if want("B7") then
    local n, d = CFG.b7_services, CFG.b7_delay
    say("B7: sv:up() of %d services with random needs (seed 7), each ready %g s after its spawn: %d rounds",
      n, d, CFG.b7_rounds)
    local ratio, chain_ratio, up, chain, depth = {}, {}, {}, {}, nil
    for r = 1, CFG.b7_rounds do
      local res = worker("b7", n, d, 7)
      depth = res.depth
      up[r], chain[r] = res.seconds, res.chain_seconds
      ratio[r], chain_ratio[r] = res.seconds / (res.depth * d), res.seconds / res.chain_seconds
    end
    say("  depth %d: critical path %.3f s; sv:up() %s s; the chain by hand %s s", depth, depth * d,
      spread(up, "%.3f"), spread(chain, "%.3f"))
    say("  sv:up() over the critical path %s, over the chain by hand %s", spread(ratio, "%.3fx"),
      spread(chain_ratio, "%.3fx"))
    row(string.format("B7 sv:up() of %d services (depth %d) vs the critical path", n, depth),
      string.format("%.3f s", median(up)), string.format("%.3f s", depth * d), string.format("%.3fx", median(ratio)),
      "≤ 1.10x", yes(median(ratio) <= 1.10))
    row("B7 sv:up() vs the same chain of starts by hand", string.format("%.3f s", median(up)),
      string.format("%.3f s", median(chain)), string.format("%.3fx", median(chain_ratio)), "—", "—")
  end

  -- B8 -----------------------------------------------------------------------
  if want("B8") then
    local n = CFG.b8_services
    say("B8: %d idle supervised services over %d s", n, CFG.b8_seconds)
    local b8 = worker("b8", n, CFG.b8_seconds)
    for k, v in pairs(worker("b8_apps", n)) do b8[k] = v end
    say("  launcher CPU %.4f s (a 1 Hz kill(pid, 0) sweep: %.4f s); per service: Lua heap %.0f B, RSS %.0f B;"
      .. " per app held from appstart.start: heap %.0f B, RSS %.0f B", b8.cpu, b8.poll_cpu, b8.heap_per_service,
      b8.rss_per_service, b8.heap_per_app, b8.rss_per_app)
    row(string.format("B8 CPU of %d idle supervised services over %d s", n, CFG.b8_seconds),
      string.format("%.4f s", b8.cpu), string.format("%.4f s", b8.poll_cpu),
      string.format("%.3fx", b8.poll_cpu > 0 and b8.cpu / b8.poll_cpu or 0), "~0", yes(b8.cpu < 0.05))
    row("B8 memory per supervised service (Lua heap / RSS) vs per app held",
      string.format("%.0f B / %.0f B", b8.heap_per_service, b8.rss_per_service),
      string.format("%.0f B / %.0f B", b8.heap_per_app, b8.rss_per_app),
      string.format("%.2fx", b8.heap_per_service / b8.heap_per_app), "—", "—")
  end

  -- B9 -----------------------------------------------------------------------
  if want("B9") then
    say("B9: probe latency, a fixture's listen() to ready, tcp connect probe: %d starts; a 1 s poll: %d",
      CFG.b9_starts, CFG.b9_poll_starts)
    local probe = worker("b9", CFG.b9_starts, "probe").latencies
    local poll = worker("b9", CFG.b9_poll_starts, "poll").latencies
    local p, q = median(probe), median(poll)
    say("  connect probe: median %.3f ms, p99 %.3f ms; tried once a second: median %.3f s",
      p * 1e3, percentile(probe, 99) * 1e3, q)
    row("B9 probe latency, listen() to ready, tcp connect probe, median", string.format("%.3f ms", p * 1e3),
      string.format("%.3f s (1 s period)", q), string.format("%.4fx", p / q), "< 2 ms", yes(p < 0.002))
  end

  -- B10 ----------------------------------------------------------------------
  if want("B10") then
    local nlines, rounds = CFG.b10_lines, CFG.b10_rounds
    local data = os.tmpname()
    local f = assert(io.open(data, "w"))
    local chunk = {}
    for i = 1, nlines do
      chunk[#chunk + 1] = string.format("2026-11-30T09:00:00Z info request served in 0.42 ms id=%d\n", i)
      if #chunk == 10000 then f:write(table.concat(chunk)); chunk = {} end
    end
    f:write(table.concat(chunk))
    f:close()
    local mb = (#(read_file(data) or "")) / 1e6
    say("B10: output throughput, `cat` of %d lines (%.1f MB) into a pipe the launcher reads: %d rounds",
      nlines, mb, rounds)
    local modes = { "c", "loop", "plain", "ring", "file" }
    local rate, cpu_mb, ratio, cpu_ratio, hwm = {}, {}, {}, {}, {}
    for _, m in ipairs(modes) do rate[m], cpu_mb[m], ratio[m], cpu_ratio[m], hwm[m] = {}, {}, {}, {}, {} end
    for r = 1, rounds do
      local secs, cpus = {}, {}
      for k = 0, #modes - 1 do
        local m = modes[(k + r - 1) % #modes + 1]
        local res
        if m == "c" then
          res = run_kv(table.concat({ shell_quote(BASELINE), "cat", shell_quote(data), 1 }, " "))
        else
          res = worker("b10_appstart", data, 1, m)
          if m == "loop" or m == "plain" then
            assert(res.lines == nlines, string.format("%s: %d lines delivered of %d", m, res.lines, nlines))
          end
        end
        secs[m], cpus[m] = res.seconds, res.cpu
        rate[m][r], cpu_mb[m][r], hwm[m][r] = nlines / res.seconds, res.cpu / mb, res.vmhwm_kb
      end
      for _, m in ipairs(modes) do
        ratio[m][r], cpu_ratio[m][r] = secs[m] / secs.c, cpus[m] / math.max(cpus.c, 1e-6)
      end
    end
    os.remove(data)
    local labels = { c = "plain C reading the pipe", loop = "on_output inside appstart.run",
      plain = "on_output, plain script (app:wait)", ring = "no on_output (into the ring)",
      file = "stdout = {file = ...}" }
    for _, m in ipairs(modes) do
      say("  %-36s %s lines/s; launcher CPU %.1f ms/MB; time %.2fx C; peak RSS %.1f MB", labels[m],
        spread(rate[m], "%.0f"), median(cpu_mb[m]) * 1e3, median(ratio[m]), median(hwm[m]) / 1024)
    end
    for _, m in ipairs { "loop", "plain", "ring", "file" } do
      row("B10 output: " .. labels[m] .. ", lines/s; launcher CPU per MB",
        string.format("%.2f M/s; %.1f ms", median(rate[m]) / 1e6, median(cpu_mb[m]) * 1e3),
        string.format("%.2f M/s; %.1f ms", median(rate.c) / 1e6, median(cpu_mb.c) * 1e3),
        string.format("%.2fx time, %.1fx CPU", median(ratio[m]), median(cpu_ratio[m])), "—", "—")
    end
  end

  -- the table ----------------------------------------------------------------
  say("")
  say("| benchmark | appstart | baseline | ratio | goal | met? |")
  say("|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do say("| %s |", table.concat(r, " | ")) end
  say("")
  say("Baselines: B1/B2/B5 plain C (spec/bench/baseline.c: posix_spawn, pipe, read, waitpid) and luv %s "
    .. "uv.spawn; B3/B4 a Lua watcher probing each process once per second.", (function()
      local ok, uv = pcall(require, "luv")
      return ok and uv.version_string() or "?"
    end)())
  say("Ratios are appstart's cost over the baseline's (time per start, wall time, latency, CPU, RSS).")
  local model = (read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  say("Machine: %s CPUs (nproc), %s, Linux %s; `make bench` (%s spec/bench/run.lua)%s, %.0f s;"
    .. " load average %s before, %s after.",
    shell_line("nproc") or "?", model, shell_line("uname -r") or "?", LUA,
    QUICK and " with BENCH_QUICK=1" or "", now() - bench_t0, load0, loadavg())
end

if arg[1] == "part" then
  local fn = parts[arg[2]] or error("unknown part " .. tostring(arg[2]))
  local args = {}
  for i = 3, #arg do args[#args + 1] = tonumber(arg[i]) or arg[i] end
  fn(table.unpack(args))
else
  local ok, err = pcall(driver)
  if tmp_out then os.remove(tmp_out) end
  if not ok then
    io.stderr:write("bench: ", tostring(err), "\n")
    os.exit(1, true)
  end
end
