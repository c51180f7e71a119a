--- Run by spec/storm_spec.lua in a child lua5.4: a signal storm aimed at
-- this process during every kind of wait; one line per case and per leak
-- check, which the spec parses and asserts.
local uv = require "luv"
local appstart = require "appstart"
local core = require "appstart.core"
local testing = require "appstart.testing"
local F = os.getenv("APPSTART_FIXTURES") .. "/fixture"
local storm_log, tmpdir, HZ = arg[1], arg[2], arg[3]
local now = core.now

local K = require "childkit"
local out, quiet, read, fds, children = K.out, K.quiet, K.read, K.fds, K.children
local status_field = K.status_field
local function alive(pid)
  local st = status_field(pid, "State")
  return st ~= nil and not st:match("^Z")
end
local ntmp = 0
local function tmp(stem)
  ntmp = ntmp + 1
  return string.format("%s/%s-%d", tmpdir, stem, ntmp)
end
local function timed(fn, ...)
  local t0 = now()
  local r = table.pack(fn(...))
  return now() - t0, table.unpack(r, 1, r.n)
end
local function show(how)
  if type(how) ~= "table" then return tostring(how) end
  if how.code then return "code=" .. how.code end
  if how.signal then return "signal=" .. how.signal end
  return "{}"
end

-- real handlers, installed the way a luv program does (the loop never runs:
-- the handlers only write to libuv's pipe, which fills and then drops)
local handles = {} -- luacheck: ignore 241 (kept: the handles stay open)
for _, name in ipairs { "sigusr1", "sigalrm", "sigchld" } do
  local h = uv.new_signal()
  assert(h:start(name, function() end))
  handles[#handles + 1] = h
end
local caught = tonumber(status_field("self", "SigCgt"), 16) or 0
local want = (1 << 9) | (1 << 13) | (1 << 16) -- USR1 (10), ALRM (14), CHLD (17)
out("handlers", (caught & want) == want and "ok" or "missing", status_field("self", "SigCgt"))

local initial = fds()
local storm = assert(appstart.start { argv = { F, "storm=parent:60:" .. HZ }, ready = "none",
  stderr = storm_log, log = quiet })
local base = fds()
local storm_started = now()

-- each case: ok (boolean), detail, and pids that must be gone afterwards
local cases = {}
local order = {}
local function case(name, fn)
  cases[name] = fn
  order[#order + 1] = name
end

case("fd_start", function()
  local st = tmp("status")
  local app, err = appstart.start { argv = { F, "status=" .. st, "line=3:fd-app", "pause" }, ready = "fd",
    ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local s = read(st) or ""
  local blk, ign, cgt = s:match("SigBlk:%s*(%x+)"), s:match("SigIgn:%s*(%x+)"), s:match("SigCgt:%s*(%x+)")
  local how = app:terminate(1)
  -- 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): glibc's sigaction
  -- refuses them, and a launcher started through popen/posix_spawn (as this
  -- one is) has them ignored, so an app inherits that; every other signal
  -- must be back at its default
  local internal = (1 << 31) | (1 << 32)
  local clean_signals = blk and tonumber(blk, 16) == 0 and tonumber(cgt, 16) == 0
    and tonumber(ign, 16) & ~internal == 0
  return app.name == "fd-app" and clean_signals and how.signal == 15,
    string.format("name=%s blk=%s ign=%s cgt=%s how=%s", app.name, blk, ign, cgt, show(how)), { app.pid }
end)

case("notify_start", function()
  local app, err = appstart.start { argv = { F, "notify=STATUS=up", "notify=READY=1", "pause" },
    ready = "notify", ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local how = app:terminate(1)
  return app.state == "exited" and app.status == "up" and how.signal == 15,
    string.format("status=%s how=%s", tostring(app.status), show(how)), { app.pid }
end)

case("helper_start", function()
  local app, err = appstart.start { helper = { F, "fork", "line=4:helped", "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", ready_fd = 4, ready_timeout = 10, pid_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local how = app:terminate(1)
  return app.name == "helped" and how.signal == 15,
    string.format("name=%s how=%s", app.name, show(how)), { app.pid }
end)

case("timeout_start", function()
  local took, app, err = timed(appstart.start, { argv = { F, "pause" }, ready = "fd", ready_timeout = 0.3,
    kill_grace = 0.2, log = quiet })
  if app then app:terminate(0.2); return false, "started" end
  return err.code == "timeout" and err.status and err.status.signal == 15 and took >= 0.3 and took < 3,
    string.format("code=%s status=%s took=%.3f", err.code, show(err.status), took), { err.pid }
end)

case("died_start", function()
  local took, app, err = timed(appstart.start, { argv = { F, "exit=7" }, ready = "fd", ready_timeout = 10, log = quiet })
  if app then app:terminate(0.2); return false, "started" end
  return err.code == "died" and err.status and err.status.code == 7 and took < 3,
    string.format("code=%s status=%s took=%.3f", err.code, show(err.status), took), { err.pid }
end)

case("wait_with_timeout", function()
  local app, err = appstart.start { argv = { F, "line=3:w", "pause" }, ready = "fd", ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how, why = timed(app.wait, app, 0.2)
  local term = app:terminate(1)
  return how == nil and why == "timeout" and took >= 0.2 and took < 2 and term.signal == 15,
    string.format("wait=%s,%s took=%.3f terminate=%s", show(how), tostring(why), took, show(term)), { app.pid }
end)

case("wait_without_timeout", function()
  local app, err = appstart.start { argv = { F, "line=3:w", "sleep=0.2", "exit=5" }, ready = "fd",
    ready_timeout = 10, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how = timed(app.wait, app)
  return how ~= nil and how.code == 5 and took < 3,
    string.format("wait=%s took=%.3f", show(how), took), { app.pid }
end)

case("sleep", function()
  local took = timed(appstart.sleep, 0.3)
  return took >= 0.3 and took < 2, string.format("took=%.3f", took), {}
end)

case("run_20_concurrent_starts", function()
  local names, hows, failures, pids = {}, {}, {}, {}
  appstart.run(function()
    for i = 1, 20 do
      appstart.spawn(function()
        local app, err = appstart.start { argv = { F, "sleep=0.1", "line=3:n" .. i, "pause" }, ready = "fd",
          ready_timeout = 10, log = quiet }
        if not app then failures[#failures + 1] = tostring(err); return end
        pids[#pids + 1] = app.pid
        names[i] = app.name
        hows[i] = app:terminate(1)
      end)
    end
  end)
  local good = 0
  for i = 1, 20 do
    if names[i] == "n" .. i and hows[i] and hows[i].signal == 15 then good = good + 1 end
  end
  return good == 20 and #failures == 0,
    string.format("good=%d failures=%s", good, table.concat(failures, ";")), pids
end)

case("terminate_ignoring_term", function()
  local app, err = appstart.start { argv = { F, "ignore=TERM", "line=3:stubborn", "pause" }, ready = "fd",
    ready_timeout = 10, kill_grace = 0.2, log = quiet }
  if not app then return false, "start failed: " .. tostring(err) end
  local took, how = timed(app.terminate, app)
  return how.signal == 9 and took >= 0.2 and took < 3,
    string.format("how=%s took=%.3f", show(how), took), { app.pid }
end)

--- Bounded wait until only the storm is our child and the given pids are
-- gone; then report descriptors and children.
local function check_clean(mode, name, pids)
  local deadline = now() + 3
  while true do
    testing.reap()
    local kids = children()
    local pending = #kids ~= 1 or kids[1] ~= storm.pid
    for _, pid in ipairs(pids or {}) do
      if alive(pid) then pending = true end
    end
    if not pending or now() >= deadline then break end
    core.wait_readable(-1, 0.005)
  end
  local kids = children()
  local extra = {}
  for _, pid in ipairs(kids) do
    if pid ~= storm.pid then extra[#extra + 1] = pid end
  end
  for _, pid in ipairs(pids or {}) do
    if alive(pid) then extra[#extra + 1] = "live:" .. pid end
  end
  out("clean", mode, name, fds() == base and "same" or ("changed:" .. fds()), "[" .. table.concat(extra, ",") .. "]")
end

local modes = {
  { "blocking", function(fn) return fn() end },
  { "loop", function(fn)
    local r
    appstart.run(function() r = table.pack(fn()) end)
    return table.unpack(r, 1, r.n)
  end },
  { "probe", function(fn)
    testing.use_pidfd(false)
    local r = table.pack(pcall(fn))
    testing.use_pidfd(true)
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end },
}

for _, m in ipairs(modes) do
  local mode, wrap = m[1], m[2]
  for _, name in ipairs(order) do
    -- a loop cannot run inside a loop: the 20 concurrent starts make their own
    if not (mode == "loop" and name == "run_20_concurrent_starts") then
      local okc, ok, detail, pids = pcall(wrap, cases[name])
      if not okc then
        out("case", mode, name, "ERROR", (tostring(ok):gsub("%s+", " ")))
      else
        out("case", mode, name, ok and "ok" or "FAIL", detail)
      end
      check_clean(mode, name, pids)
    end
  end
end

local running = storm:wait(0) == nil
local elapsed = now() - storm_started
local storm_how = storm:terminate(2)
local log = read(storm_log) or ""
local sent, seconds = log:match("storm sent (%d+) .- in ([%d.]+) s")
out("storm", sent or "?", seconds or "?", string.format("%.3f", elapsed), running and "running" or "ended",
  show(storm_how))
-- the handles stay open: closing one without ever running the loop makes
-- luv crash at exit (a luv matter, not appstart's)
testing.reap()
local kids = children()
out("final", fds() == initial and "same" or ("changed:" .. fds() .. " vs " .. initial),
  "[" .. table.concat(kids, ",") .. "]")
out("done")
