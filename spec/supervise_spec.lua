--- Supervision of real daemons from Debian (redis-server speaking
-- sd_notify, dbus-daemon forking and printing its pid and address,
-- mosquitto needing both), and the `appstart supervise FILE.lua` command,
-- itself run under appstart as a Type=notify service.
local lu = require "luaunit"
local S = require "support"

local core = S.core
local now = core.now
local F = S.fixture

local SPEC_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local BIN = SPEC_DIR .. "/../lua/bin/appstart"

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
end

-- This launcher's cgroups (appstart.PID.*) under its own cgroup.
local function my_cgroups() return S.my_cgroups() or 0 end

-- An event log: on_event records, `until_(pred)` waits (in the loop) for
-- the events to satisfy pred.
local function recorder()
  local events = {}
  local r = { events = events }
  function r.on_event(name, state, info)
    events[#events + 1] = { name = name, state = state, info = info or {}, at = now() }
  end
  function r.index(name, state, from)
    for i = from or 1, #events do
      if events[i].name == name and events[i].state == state then return i end
    end
  end
  function r.until_(pred, timeout)
    return S.await_with_sleep(pred, timeout or 10)
  end
  return r
end

local function redis_spec(dir)
  return {
    argv = { "redis-server", "--port", "0", "--unixsocket", dir .. "/redis.sock", "--supervised", "systemd",
      "--save", "", "--appendonly", "no", "--dir", dir },
    ready = "notify", ready_timeout = 10, stdout = "null", restart = "always",
    backoff = { initial = 0.05, max = 0.5, factor = 2, jitter = 0 }, kill_mode = "cgroup",
  }
end

local function dbus_spec()
  return {
    argv = { "dbus-daemon", "--session", "--fork", "--nopidfile", "--print-pid=3", "--print-address=4" },
    helper = true, pid_fd = 3, pid_format = "line", ready = "fd", ready_fd = 4, restart = "on-failure",
  }
end

local function mosquitto_spec(dir)
  local conf = dir .. "/mosquitto.conf"
  local f = assert(io.open(conf, "w"))
  f:write("listener 0 ", dir, "/mqtt.sock\nallow_anonymous true\npersistence false\nlog_dest none\n")
  f:close()
  return { argv = { "mosquitto", "-c", conf }, ready_timeout = 10, needs = { "redis", "dbus" },
    restart = "on-failure" }
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_a_real_group_comes_up_in_order_follows_its_needs_and_goes_down_in_reverse()
  for _, cmd in ipairs { "redis-server", "dbus-daemon", "mosquitto" } do
    lu.assertTrue(have(cmd), cmd .. " is installed by .ci/deps")
  end
  local appstart = require "appstart"
  local before = S.snapshot()
  local cgroups = my_cgroups()
  local dir = S.tmpname("group")
  assert(os.execute("mkdir -m 777 " .. dir))
  local r = recorder()
  local pids = {}
  appstart.run(function()
    local sv = appstart.supervisor {
      services = {
        redis = redis_spec(dir), dbus = dbus_spec(), mqtt = mosquitto_spec(dir),
        crashy = { argv = { F, "exit=3" }, ready = "none", restart = "always", burst = 3, burst_interval = 30,
          backoff = { initial = 0.01, factor = 1, jitter = 0 } },
      },
      on_event = r.on_event, log = S.quiet,
    }
    -- a failure below still takes the daemons down (they are no fixtures:
    -- tearDown would not find them)
    local body_ok, body_err = pcall(function()
    local ok, err = sv:up("redis", "dbus", "mqtt")
    lu.assertTrue(ok, tostring(err))
    -- mqtt came up once both it needs were ready
    local mqtt_start = r.index("mqtt", "starting")
    lu.assertTrue(r.index("redis", "ready") < mqtt_start and r.index("dbus", "ready") < mqtt_start)
    for _, name in ipairs { "redis", "dbus", "mqtt" } do pids[name] = sv:status(name).pid end
    lu.assertEquals(S.proc_status(pids.dbus).Name, "dbus-daemon", "the forked daemon's pid")

    -- redis killed: mqtt, which needs it, stops; both come back
    local mark = #r.events
    os.execute("kill -KILL " .. pids.redis)
    lu.assertTrue(r.until_(function()
      local back = r.index("redis", "ready", mark + 1)
      return back and r.index("mqtt", "ready", back + 1) ~= nil
    end), "redis and mqtt came back")
    local seq = {}
    for i = mark + 1, #r.events do seq[#seq + 1] = r.events[i].name .. ":" .. r.events[i].state end
    seq = table.concat(seq, " ")
    local stopped = r.index("mqtt", "stopped", mark + 1)
    lu.assertNotNil(stopped, "mqtt stopped when redis left ready")
    lu.assertTrue(stopped < r.index("redis", "ready", mark + 1), "before redis was back: " .. seq)
    lu.assertEquals(sv:status("redis").restarts, 1)
    lu.assertNotEquals(sv:status("redis").pid, pids.redis)
    lu.assertNotEquals(sv:status("mqtt").pid, pids.mqtt)
    for _, name in ipairs { "redis", "mqtt" } do pids[name .. "2"] = sv:status(name).pid end

    -- a crash loop gives up after burst, each reason kept
    sv:start("crashy")
    -- (on_event runs in a task of its own: the event may come just after)
    lu.assertTrue(r.until_(function() return r.index("crashy", "failed") ~= nil end), sv:status("crashy").state)
    lu.assertEquals(sv:status("crashy").state, "failed")
    local st = sv:status("crashy")
    lu.assertEquals(#st.reasons, 4, "burst 3: the fourth failure gives up")
    for _, how in ipairs(st.reasons) do lu.assertEquals(how.code, 3) end
    local gave_up = r.events[r.index("crashy", "failed")]
    lu.assertEquals(#gave_up.info.reasons, 4)

    -- down: what needs the others first
    mark = #r.events
    sv:down()
    -- (each event is handed to on_event by a task of its own: the last
    -- may come just after)
    lu.assertTrue(r.until_(function()
      return r.index("mqtt", "stopped", mark + 1) and r.index("redis", "stopped", mark + 1)
        and r.index("dbus", "stopped", mark + 1)
    end), "every service's stop was told")
    local order = {}
    for i = mark + 1, #r.events do
      if r.events[i].state == "stopped" then order[#order + 1] = r.events[i].name end
    end
    local pos = {}
    for i, name in ipairs(order) do pos[name] = i end
    lu.assertTrue(pos.mqtt < pos.redis and pos.mqtt < pos.dbus, table.concat(order, " "))
    end)
    if not body_ok then
      sv:down()
      error(body_err, 0)
    end
  end)
  for name, pid in pairs(pids) do lu.assertFalse(S.alive(pid), name .. " still runs") end
  -- removed when redis's cgroup emptied, or (where its last thread left
  -- after its main, as under valgrind) by the sweep of a later call
  lu.assertTrue(S.await_with_sleep(function()
    S.testing.reap()
    return my_cgroups() == cgroups
  end, 5), "redis's cgroup is removed")
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- appstart supervise FILE.lua

local TC = {}

function TC.tearDown() S.kill_strays() end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A directory of the test's own, and the path of the services file in it.
local function supervise_dir()
  local dir = S.tmpname("sup")
  assert(os.execute("mkdir " .. dir))
  return dir, dir .. "/services.lua"
end

-- A supervisor file of fixture services, each writing its pid to dir/NAME
-- (and ready after `delay` seconds, when given).
local function services_file(path, dir, names, delay)
  local parts = { "local F = " .. string.format("%q", F) .. "\nreturn { services = {\n" }
  for _, name in ipairs(names) do
    parts[#parts + 1] = string.format(
      "  %s = { argv = { F, 'pidfile=%s/%s', %s'notify=READY=1', 'pause' }, restart = 'always' },\n",
      name, dir, name, delay and string.format("'sleep=%g', ", delay) or "")
  end
  parts[#parts + 1] = "} }\n"
  write(path, table.concat(parts))
end

-- (under make sanitize the Lua that loads the instrumented core needs the
-- sanitizers' runtime preloaded, as the suite's own Lua has it)
local function lua_command(args)
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  local argv = preload and { "env", "LD_PRELOAD=" .. preload, "lua5.4", BIN } or { "lua5.4", BIN }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return argv
end

-- The command (pid) gone, or in its last words (SIGTERM no longer
-- blocked: its signals read no more, their default actions back): what
-- it says there, the count of what its stderr did not take, waits for a
-- reader that does not keep up, as any program's last words do, and a
-- SIGTERM ends it there.
local function gone_or_in_last_words(pid)
  local st = S.proc_status(pid)
  local blocked = st and st.SigBlk and tonumber(st.SigBlk, 16)
  return not S.alive(pid) or (blocked ~= nil and blocked & (1 << (S.core.signum("TERM") - 1)) == 0)
end

-- The outer watchdog (WATCHDOG_USEC) is kept with a WATCHDOG=1 at half
-- its period; one not written as sd_watchdog_enabled reads it (decimal
-- microseconds > 0) asks for nothing that can be kept, and is said: no
-- pings, and the outer manager's watchdog ends the command. (tonumber()
-- took "1e-300" and pinged in a busy loop, which kept that watchdog.)
function TC.test_the_outer_watchdog_is_kept_and_one_not_in_microseconds_is_refused()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  local err = dir .. "/stderr"
  local kept, refused, refused_pid
  appstart.run(function()
    local app = assert(appstart.start {
      argv = lua_command { "supervise", file }, ready_timeout = 20, watchdog = 1, stdout = "null", stderr = "null",
      log = S.quiet,
    })
    -- two and a half periods: pinged each half
    appstart.sleep(2.5)
    kept = app.state
    app:terminate(10)
    for _, bad in ipairs { { "WATCHDOG_USEC=1e-300" }, { "WATCHDOG_USEC=1000000", "WATCHDOG_PID=+1" } } do
      local argv = { "env" }
      for _, a in ipairs(bad) do argv[#argv + 1] = a end
      for _, a in ipairs(lua_command { "supervise", file }) do argv[#argv + 1] = a end
      app = assert(appstart.start { argv = argv, ready_timeout = 20, watchdog = 0.5, stdout = "null", stderr = err,
        log = S.quiet })
      local how = app:wait(10) or app:terminate(10)
      if bad[2] then refused_pid = how else refused = how end
    end
  end)
  lu.assertEquals(kept, "ready")
  lu.assertTrue(refused.watchdog, tostring(refused))
  lu.assertTrue(refused_pid.watchdog, tostring(refused_pid))
  local text = S.read(err)
  lu.assertStrContains(text, "appstart: WATCHDOG_USEC=1e-300 ignored: a number of microseconds > 0 expected\n")
  lu.assertStrContains(text, "appstart: WATCHDOG_USEC ignored: WATCHDOG_PID=+1 is not a pid\n")
  S.assert_clean(before)
end

function TC.test_supervise_under_appstart_is_a_notify_service_that_reloads_and_stops_cleanly()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a", "b" })
  local statuses = {}
  local events = dir .. "/events"
  appstart.run(function()
    -- the command itself, started through the handshake: READY=1 once
    -- both services are up
    local app = assert(appstart.start {
      argv = lua_command { "supervise", "--json", file }, stdout = events, ready_timeout = 20,
      on_status = function(_, text) statuses[#statuses + 1] = text end, log = S.quiet,
    })
    lu.assertEquals(app.status, "2 of 2 services ready")
    local a, b = S.pid_in(dir .. "/a"), S.pid_in(dir .. "/b")
    -- SIGHUP: b removed, c added, a unchanged
    os.remove(dir .. "/a")
    services_file(file, dir, { "a", "c" })
    -- SIGHUP, then RELOADING=1 and READY=1 once c is up
    lu.assertEquals(app:reload(), true)
    local c = S.pid_in(dir .. "/c")
    lu.assertTrue(S.await_gone(b), "the removed service is stopped")
    lu.assertTrue(S.alive(a), "the unchanged one runs on")
    lu.assertNil(S.read(dir .. "/a"), "and was not restarted")
    lu.assertEquals(app.status, "2 of 2 services ready")
    -- SIGTERM: everything down, exit 0
    local how = app:terminate(10)
    lu.assertEquals(how, { code = 0 })
    lu.assertFalse(S.alive(a))
    lu.assertFalse(S.alive(c))
  end)
  -- --json: one object per event
  local lines = S.lines(S.read(events))
  lu.assertTrue(#lines >= 8, S.read(events))
  local seen = {}
  for _, l in ipairs(lines) do
    local name, state = l:match('^{"service":"(%w+)","state":"(%w+)",')
    lu.assertNotNil(name, l)
    seen[name .. ":" .. state] = true
  end
  for _, want in ipairs { "a:starting", "a:ready", "b:ready", "b:stopped", "c:ready", "a:stopped", "c:stopped" } do
    lu.assertTrue(seen[want], want)
  end
  -- after the stop: each service's end told, the last with none left
  lu.assertEquals(statuses[#statuses], "0 of 2 services ready")
  -- each STATUS= says something new (it was sent again at each event of
  -- each service). on_status is called once at a time with the latest
  -- status: a "1 of 2" of the reload that comes with its "2 of 2" before
  -- the call for it runs is passed over, so "2 of 2" may be told twice
  -- in a row there (a valgrind run saw it), and nowhere else
  local repeated = 0
  for i = 2, #statuses do
    if statuses[i] == statuses[i - 1] then repeated = repeated + 1 end
  end
  lu.assertTrue(repeated <= 1, table.concat(statuses, ", "))
  S.assert_clean(before)
end

-- A manager that reads slowly: its socket's queue is full (the test's
-- own datagrams fill it) while the command comes up, reloads and pings
-- its watchdog. Nothing is lost for that: READY=1 and each reload's
-- RELOADING=1 and READY=1 come once it reads, in order; and what waits
-- for it is bounded: one STATUS= (the latest), one WATCHDOG=1, the last
-- reload alone. (The command sent each message once, never waiting, and
-- dropped what the queue did not take: the manager never saw READY=1.)
-- The outer manager's socket, at dir/manager, that nothing reads yet:
-- m.path, m.fd; m.fill() fills its queue (the count it took);
-- m.read_until(done) reads every datagram but the fillers until one that
-- done(text) takes, within 20 s: what it read; m.close().
local function slow_manager(dir)
  local m = { path = dir .. "/manager" }
  m.fd = assert(S.testing.dgram_socket(m.path))
  function m.fill()
    for n = 1, 100000 do
      local ok, _, errno = S.core.notify("FILLER=1", m.path)
      if not ok then
        lu.assertEquals(errno, 11, "the queue is full")
        return n - 1
      end
    end
    error("the manager's queue never filled")
  end
  function m.read_until(done)
    local got, deadline = {}, S.core.now() + 20
    while S.core.now() < deadline do
      local text = S.testing.dgram_recv(m.fd)
      if text == false then
        S.core.wait_readable(m.fd, math.max(0, deadline - S.core.now()))
      elseif text ~= "FILLER=1" then
        got[#got + 1] = assert(text)
        if done(text) then return got end
      end
    end
    error("the manager waited in vain, got: " .. table.concat(got, " | "))
  end
  function m.close()
    S.core.close(m.fd)
    os.remove(m.path)
  end
  return m
end

-- The READY=1 that ends a reload begun at or after usec (its RELOADING=1
-- known by its MONOTONIC_USEC, the same clock as core.now): a done() for
-- m.read_until.
local function ready_after_reload_since(usec)
  local seen = false
  return function(text)
    local at = text:match("^RELOADING=1\nMONOTONIC_USEC=(%d+)$")
    if at and tonumber(at) >= usec then seen = true end
    return seen and text == "READY=1"
  end
end

-- The command on file under the manager at path (env: more of its
-- environment), its stderr in err.
local function supervise_under(path, file, err, env)
  local appstart = require "appstart"
  local argv = { "env", "NOTIFY_SOCKET=" .. path, env }
  for _, a in ipairs(lua_command { "supervise", file }) do argv[#argv + 1] = a end
  return assert(appstart.start { argv = argv, ready = "none", stdout = "null", stderr = err, log = S.quiet })
end

-- Wait (20 s at most) until the stderr file err says text (a pattern;
-- plain: found as it is).
local function await_said_in(err, text, plain)
  lu.assertTrue(S.await_with_sleep(function() return (S.read(err) or ""):find(text, 1, plain) ~= nil end, 20),
    S.read(err))
end

-- The setup of a test of the command under a manager: the file of
-- fixture services names, the manager's socket (slow_manager), the
-- command's stderr: t.before (a snapshot), t.dir, t.m, t.err; t.start()
-- runs the command under that manager.
local function under_manager(names)
  local t = { before = S.snapshot() }
  local file
  t.dir, file = supervise_dir()
  services_file(file, t.dir, names)
  t.m, t.err = slow_manager(t.dir), t.dir .. "/stderr"
  function t.start() return supervise_under(t.m.path, file, t.err) end
  return t
end

-- How many times the stderr file err says a message to the manager was
-- lost.
local function losses(err)
  local _, n = (S.read(err) or ""):gsub("appstart: a message to the manager at [^\n]* was lost", "")
  return n
end

function TC.test_a_manager_that_reads_slowly_loses_no_ready_and_is_told_the_latest()
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a", "b", "c" })
  local m = slow_manager(dir)
  local fill, read_until = m.fill, m.read_until
  local function count(got, pattern)
    local n = 0
    for _, text in ipairs(got) do
      if text:find(pattern) then n = n + 1 end
    end
    return n
  end
  local err = dir .. "/stderr"
  local function reloads()
    local _, n = (S.read(err) or ""):gsub("appstart: reload: %d+ added, 0 removed, 0 changed\n", "")
    return n
  end
  lu.assertTrue(fill() > 0)
  -- (WATCHDOG_USEC: a ping every 50 ms)
  local app = supervise_under(m.path, file, err, "WATCHDOG_USEC=100000")
  -- up (each service's event said, so READY=1 was sent, or kept), then
  -- reloaded once, then pinging for 0.3 s: all while the queue is full
  lu.assertTrue(S.await_with_sleep(function()
    local _, n = (S.read(err) or ""):gsub("appstart: %a: ready %(pid", "")
    return n == 3
  end, 20), S.read(err))
  app:kill("HUP")
  lu.assertTrue(S.await_with_sleep(function() return reloads() == 1 end, 20), S.read(err))
  S.core.wait_readable(-1, 0.3) -- (six periods of pings, kept)
  local got = read_until(function(text) return text == "READY=1" end)
  -- (in order, the pings left out: one kept may come anywhere)
  local said = {}
  for _, text in ipairs(got) do
    if text ~= "WATCHDOG=1" and not text:find("^STATUS=[^\n]*$") then said[#said + 1] = text end
  end
  lu.assertEquals(#said, 3, table.concat(got, " | "))
  lu.assertEquals(said[1], "STATUS=3 of 3 services ready\nREADY=1", table.concat(got, " | "))
  lu.assertStrMatches(said[2], "RELOADING=1\nMONOTONIC_USEC=%d+")
  lu.assertEquals(said[3], "READY=1")
  -- (kept: the latest STATUS= alone, one ping)
  lu.assertTrue(count(got, "^STATUS=%d of 3 services ready$") <= 1, table.concat(got, " | "))
  lu.assertTrue(count(got, "^WATCHDOG=1$") <= 1, table.concat(got, " | "))
  -- five reloads while the queue is full, the first of which adds a
  -- service: the last one's RELOADING=1 and READY=1 alone wait for the
  -- manager, with the latest STATUS= ("4 of 4", which the first said)
  lu.assertTrue(fill() > 0)
  services_file(file, dir, { "a", "b", "c", "d" })
  local last
  for n = 2, 6 do
    last = math.floor(S.core.now() * 1e6)
    app:kill("HUP")
    lu.assertTrue(S.await_with_sleep(function() return reloads() == n end, 20), S.read(err))
    if n == 2 then
      lu.assertTrue(S.await_with_sleep(function() return (S.read(err) or ""):find("appstart: d: ready %(pid") end, 20),
        S.read(err))
    end
  end
  got = read_until(ready_after_reload_since(last))
  lu.assertEquals(count(got, "^RELOADING=1\n"), 1, table.concat(got, " | "))
  lu.assertTrue(#got <= 4, table.concat(got, " | "))
  local status
  for _, text in ipairs(got) do status = text:match("STATUS=[^\n]*") or status end
  lu.assertEquals(status, "STATUS=4 of 4 services ready", table.concat(got, " | "))
  -- read as it comes, STOPPING=1 goes at once
  lu.assertEquals(app:terminate(10), { code = 0 })
  got = read_until(function(text) return text == "STOPPING=1" end)
  lu.assertEquals(count(got, "^READY=1"), 0)
  m.close()
  -- (kept is not lost: nothing said of it)
  lu.assertEquals(losses(err), 0, S.read(err))
  S.assert_clean(before)
end

-- A manager gone (its socket closed and removed) while messages wait for
-- it: they are dropped, and what comes later goes to the manager that
-- binds the path next (the command runs and stops as ever).
function TC.test_messages_kept_for_a_manager_that_goes_are_dropped()
  local t = under_manager { "a" }
  local dir, m, err = t.dir, t.m, t.err
  lu.assertTrue(m.fill() > 0)
  local app = t.start()
  await_said_in(err, "appstart: a: ready %(pid")
  m.close()
  -- (what was kept is dropped as the manager goes, and said lost then,
  -- before anything else is sent)
  await_said_in(err, "appstart: a message to the manager at " .. m.path .. " was lost: ", true)
  lu.assertEquals(app:kill("HUP"), true)
  await_said_in(err, "appstart: reload: ")
  local again = slow_manager(dir)
  local since = math.floor(S.core.now() * 1e6)
  lu.assertEquals(app:kill("HUP"), true)
  local got = again.read_until(ready_after_reload_since(since))
  lu.assertNotNil((got[#got - 1] or ""):match("^RELOADING=1\nMONOTONIC_USEC=%d+$"), table.concat(got, " | "))
  again.close()
  lu.assertEquals(app:terminate(10), { code = 0 })
  lu.assertFalse(S.alive(S.pid_in(dir .. "/a")))
  -- (said once: not again for the reload's messages nothing took)
  lu.assertEquals(losses(err), 1, S.read(err))
  S.assert_clean(t.before)
end

-- No manager to take a message (a socket file nothing is bound to: the
-- manager died): the command runs, reloads and stops as ever, and says
-- once on stderr that the manager's messages are lost, and why. (They
-- were dropped without a word: a unit whose manager never heard READY=1
-- had nothing in its journal to say so.)
function TC.test_messages_no_manager_takes_are_said_lost_once()
  local t = under_manager { "a" }
  local m, err = t.m, t.err
  S.core.close(m.fd) -- (the file stays: connecting to it is refused)
  local app = t.start()
  await_said_in(err, "appstart: a: ready %(pid")
  for n = 1, 2 do
    lu.assertEquals(app:kill("HUP"), true)
    lu.assertTrue(S.await_with_sleep(function()
      local _, got = (S.read(err) or ""):gsub("appstart: reload: ", "")
      return got == n
    end, 20), S.read(err))
  end
  lu.assertEquals(app:terminate(10), { code = 0 })
  lu.assertEquals(losses(err), 1, S.read(err))
  lu.assertStrContains(S.read(err), "appstart: a message to the manager at " .. m.path
    .. " was lost: Connection refused (no later loss is said)\n")
  os.remove(m.path)
  S.assert_clean(t.before)
end

-- A manager that stops listening once it has heard READY=1 (as
-- `appstart --ready=notify` without --watch does: its socket closed at
-- ready): what the command sends after is lost, and said nowhere, no
-- fault of anyone's.
function TC.test_a_manager_that_stops_listening_after_ready_is_no_loss()
  local t = under_manager { "a" }
  local app = t.start()
  t.m.read_until(function(text) return text:find("READY=1", 1, true) ~= nil end)
  t.m.close()
  lu.assertEquals(app:kill("HUP"), true)
  await_said_in(t.err, "appstart: reload: ")
  lu.assertEquals(app:terminate(10), { code = 0 })
  lu.assertEquals(losses(t.err), 0, S.read(t.err))
  S.assert_clean(t.before)
end

-- A SIGHUP during the bring-up that adds a service: READY=1 comes once
-- the reload's starts are done too. It came as soon as the bring-up's
-- own services were up, the added one still starting ("1 of 2").
function TC.test_a_reload_during_the_bring_up_is_done_before_ready()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local go = dir .. "/go"
  local function services(names)
    local parts = { "return { services = {\n" }
    for _, name in ipairs(names) do
      -- (a: up once told; c: up 2 s after its start)
      local wait = name == "a" and string.format("'waitfile=%s', ", go) or "'sleep=2', "
      parts[#parts + 1] = string.format("  %s = { argv = { %q, 'pidfile=%s/%s', %s'notify=READY=1', 'pause' } },\n",
        name, F, dir, name, wait)
    end
    parts[#parts + 1] = "} }\n"
    write(file, table.concat(parts))
  end
  services { "a" }
  local events = dir .. "/events"
  local status
  appstart.run(function()
    local h = appstart.begin { argv = lua_command { "supervise", "--json", file }, stdout = events,
      ready_timeout = 20, log = S.quiet }
    local command = tonumber(S.proc_status(S.pid_in(dir .. "/a")).PPid)
    services { "a", "c" }
    os.execute("kill -HUP " .. command)
    lu.assertTrue(S.await_with_sleep(function()
      return (S.read(events) or ""):find('{"service":"c","state":"starting"', 1, true) ~= nil
    end, 10), "c never started")
    S.touch(go)
    local app = assert(h:wait())
    status = app.status
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  lu.assertEquals(status, "2 of 2 services ready")
  S.assert_clean(before)
end

-- --json (and the text events, on stderr) to a terminal whose reader has
-- stalled (an ssh client gone quiet; here `script`, stopped, holds the
-- pty's other end): the terminal said it took a write (POLLOUT: some
-- room) and the write of a whole event waited for room that never came,
-- the command's signals blocked: a SIGTERM did nothing. Events are
-- written as far as the terminal takes them at once; the rest counted.
function TC.test_a_stalled_terminal_holds_neither_the_command_nor_a_sigterm()
  lu.skipIf(not have("script"), "needs script(1) for a pty")
  for _, json in ipairs { true, false } do
    local before = S.snapshot()
    local dir, file = supervise_dir()
    -- a service that fails at once, again and again, its output in each
    -- failure's event (about 4 KB an event with --json)
    write(file, string.format("return { services = { crash = { argv = { '/bin/sh', '-c', 'echo >> %s/runs;"
      .. " exec \"$0\" lines=2:10:%s exit=1', %q }, stdout = 'capture', stderr = 'capture',"
      .. " backoff = { initial = 0.01, max = 0.02 }, burst = 10000 } } }\n", dir, string.rep("y", 360), F))
    local words = {}
    for i, w in ipairs(lua_command { "supervise", json and "--json" or "-v", file }) do words[i] = S.shell_quote(w) end
    -- (the command on the pty's end, stdout and stderr; script's own
    -- output, what it reads from the pty, to /dev/null)
    local p = io.popen("script -qfec " .. S.shell_quote("exec " .. table.concat(words, " ") .. " 2>&1")
      .. " /dev/null </dev/null >/dev/null 2>&1 & echo $!")
    local script = tonumber(p:read("l"))
    p:close()
    local command
    lu.assertTrue(S.await_with_sleep(function()
      local f = io.open("/proc/" .. script .. "/task/" .. script .. "/children")
      command = f and tonumber(f:read("a"):match("%d+"))
      if f then f:close() end
      return command ~= nil and S.read("/proc/" .. command .. "/cmdline"):find("supervise", 1, true) ~= nil
    end, 10), "script never ran the command")
    os.execute("kill -STOP " .. script)
    -- (40 failures: some 160 KB of events with --json, more than a pty holds)
    local restarted = S.await_with_sleep(function() return #(S.read(dir .. "/runs") or "") >= 40 end, 30)
    local runs = #(S.read(dir .. "/runs") or "")
    os.execute("kill -TERM " .. command)
    -- (the SIGTERM stopped the services: in its last words, a second one
    -- ends it)
    local stopped = S.await_with_sleep(function() return gone_or_in_last_words(command) end, 10)
    local wchan = S.read("/proc/" .. command .. "/wchan") or ""
    if stopped then os.execute("kill -TERM " .. command .. " 2>/dev/null") end
    local gone = S.await_gone(command, 10)
    -- (what a failure leaves: the command, its service, script)
    os.execute("kill -KILL " .. script .. " " .. command .. " 2>/dev/null; kill -CONT " .. script)
    os.execute("pkill -KILL -f " .. S.shell_quote(dir .. "/runs"))
    lu.assertTrue(S.await_gone(script, 5))
    lu.assertTrue(restarted, "the service was restarted " .. runs .. " times, not 40: held in " .. wchan)
    lu.assertTrue(stopped, "the SIGTERM did not stop the command: held in " .. wchan)
    lu.assertTrue(gone, "a SIGTERM in its last words did not end the command")
    S.assert_clean(before)
  end
end

-- A line of the default logger's from a launcher in the background of a
-- terminal with TOSTOP: its write raised SIGTTOU, which stopped the
-- launcher inside that write, O_NONBLOCK set on the terminal's file
-- description for it, and left set: the shell, which shares it, read
-- EAGAIN. The job-control signals are held for that write (it goes
-- through, as with TOSTOP off); the terminal is as it was.
function TC.test_a_background_launchers_line_on_a_tostop_terminal_leaves_it_blocking()
  lu.skipIf(not have("script"), "needs script(1) for a pty")
  local dir = supervise_dir()
  local flags = dir .. "/flags"
  local lua = lua_command({})
  table.remove(lua) -- (BIN: not this one)
  for i, w in ipairs(lua) do lua[i] = S.shell_quote(w) end
  local session = table.concat({
    "set -m", -- (job control: the background job is a process group of its own)
    "stty tostop",
    table.concat(lua, " ") .. " -e 'require(\"appstart\").default_log(\"warn\", \"from the background\")' &",
    "pid=$!",
    -- (until it has stopped, or ended)
    "while s=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null) && [ \"$s\" != T ] && [ \"$s\" != Z ]; do :; done",
    "echo \"$s\" > " .. flags .. ".state",
    "grep ^flags: /proc/$$/fdinfo/0 > " .. flags .. ".tmp; mv " .. flags .. ".tmp " .. flags,
    "kill -KILL $pid 2>/dev/null; wait" }, "\n")
  os.execute("timeout -s KILL 20 script -qfec " .. S.shell_quote(session) .. " /dev/null </dev/null >/dev/null 2>&1")
  local octal = (S.read(flags) or ""):match("flags:%s*(%d+)")
  lu.assertNotNil(octal, "no flags read; state " .. tostring(S.read(flags .. ".state")))
  lu.assertEquals(tonumber(octal, 8) & tonumber("4000", 8), 0,
    "O_NONBLOCK left set on the terminal; the launcher was " .. tostring(S.read(flags .. ".state")))
end

-- With --json the command's stdout is its JSON alone: what a service
-- writes to the stdout it inherits, and what the file prints, go to the
-- command's stderr (they came between the objects, breaking a reader).
function TC.test_with_json_the_services_stdout_goes_to_the_commands_stderr()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  write(file, string.format("print('printed by the file')\nreturn { services = { a = { argv = { %q,"
    .. " 'pidfile=%s/a', 'line=1:not json', 'notify=READY=1', 'pause' } } } }\n", F, dir))
  local events, err = dir .. "/events", dir .. "/stderr"
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", "--json", file }, stdout = events,
      stderr = err, ready_timeout = 20, log = S.quiet })
    lu.assertEquals(app.status, "1 of 1 services ready")
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  local lines = S.lines(S.read(events))
  lu.assertTrue(#lines >= 3, S.read(events))
  for _, l in ipairs(lines) do lu.assertStrMatches(l, '{"service":"a","state":"%w+",.*}') end
  lu.assertStrContains(S.read(err), "printed by the file\n")
  lu.assertStrContains(S.read(err), "not json\n")
  S.assert_clean(before)
end

--- A signal other than SIGTERM, SIGINT and SIGHUP that would end the
-- command (SIGUSR1, SIGABRT, a real-time one) stops every service as
-- SIGTERM does, and the command exits 128+N; with --json -q nothing is
-- printed.
function TC.test_another_terminating_signal_stops_the_services_and_exits_128_plus_it()
  local appstart = require "appstart"
  for _, signal in ipairs { "USR1", "ABRT", "RTMIN" } do
    local before = S.snapshot()
    local dir, file = supervise_dir()
    services_file(file, dir, { "a", "b" })
    local events = dir .. "/events"
    appstart.run(function()
      local app = assert(appstart.start { argv = lua_command { "supervise", "--json", "-q", file }, stdout = events,
        ready_timeout = 20, log = S.quiet })
      local a, b = S.pid_in(dir .. "/a"), S.pid_in(dir .. "/b")
      lu.assertTrue(app:kill(signal))
      lu.assertEquals(app:wait(10), { code = 128 + S.core.signum(signal) }, signal)
      lu.assertFalse(S.alive(a), signal .. ": a was stopped")
      lu.assertFalse(S.alive(b), signal .. ": b was stopped")
    end)
    lu.assertEquals(S.read(events), "", "--quiet: no event, not even with --json")
    S.assert_clean(before, signal)
  end
end

--- --quiet prints no log line either: a service that died and is
-- restarted said "restart in ..." on stderr (warn), only errors do.
function TC.test_quiet_prints_no_restart_line()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  local err = dir .. "/stderr"
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", "-q", file }, stderr = { file = err },
      ready_timeout = 20, log = S.quiet })
    local a = S.pid_in(dir .. "/a")
    os.remove(dir .. "/a")
    assert(os.execute("kill -KILL " .. a))
    local again = S.pid_in(dir .. "/a")
    lu.assertNotEquals(again, a, "a was restarted")
    lu.assertEquals(app:terminate(10), { code = 0 })
    lu.assertFalse(S.alive(again))
  end)
  lu.assertEquals(S.read(err), "", "--quiet: nothing on stderr")
  S.assert_clean(before)
end

--- A signal the command was started with ignored (a shell script's
-- background job has SIGQUIT ignored) would not end it: it stops nothing
-- (every service was stopped), and the command goes on.
function TC.test_a_signal_the_command_was_started_with_ignored_stops_nothing()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  appstart.run(function()
    local argv = { "sh", "-c", 'trap "" QUIT; exec "$@"', "sh" }
    for _, w in ipairs(lua_command { "supervise", "-q", file }) do argv[#argv + 1] = w end
    local app = assert(appstart.start { argv = argv, ready_timeout = 20, log = S.quiet })
    local a = S.pid_in(dir .. "/a")
    lu.assertTrue(app:kill("QUIT"))
    -- (discarded by the kill itself) the next signal is the command's
    -- next: a SIGHUP reloads (RELOADING=1, READY=1)
    lu.assertEquals(app:reload(), true)
    lu.assertTrue(S.alive(a), "a was stopped")
    lu.assertEquals(app:terminate(10), { code = 0 })
    lu.assertFalse(S.alive(a))
  end)
  S.assert_clean(before)
end

--- The reader of --json goes away once both services are ready (it
-- closes its end of the pipe, then says so): the next event (a service
-- killed, and restarted) is written to a pipe nobody reads, and the
-- SIGPIPE stops every service before the command exits (128+13).
local function assert_a_json_reader_going_away_stops_the_services(pipe_ignored)
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a", "b" })
  local status, closed = dir .. "/status", dir .. "/closed"
  local words = {}
  for i, w in ipairs(lua_command { "supervise", "--json", file }) do words[i] = "'" .. w .. "'" end
  local reader = table.concat({
    "n=0; while [ $n -lt 2 ] && read -r line; do",
    "  case $line in *'\"state\":\"ready\"'*) n=$((n+1));; esac; done",
    -- (written whole, then renamed: await_file sees it at once whole)
    "exec 0<&-; echo $n >" .. closed .. ".tmp; mv " .. closed .. ".tmp " .. closed }, "\n")
  appstart.run(function()
    local command = table.concat(words, " ")
    if pipe_ignored then command = "(trap '' PIPE; exec " .. command .. ")" end
    local app = assert(appstart.start { argv = { "sh", "-c", "{ " .. command .. "; echo $? >"
      .. status .. "; } | { " .. reader .. "\n}" }, ready = "none", stderr = "null", log = S.quiet })
    lu.assertEquals(S.await_file(closed, 20), "2\n", "the reader saw both services ready")
    local a, b = S.pid_in(dir .. "/a"), S.pid_in(dir .. "/b")
    os.execute("kill -KILL " .. a)
    lu.assertEquals(app:wait(20), { code = 0 })
    lu.assertTrue(S.await_gone(b), "b was stopped")
    lu.assertTrue(S.await_gone(S.pid_in(dir .. "/a")), "and a, or what replaced it")
  end)
  lu.assertEquals(S.read(status), "141\n")
  S.assert_clean(before)
end

function TC.test_a_json_reader_that_goes_away_stops_the_services()
  assert_a_json_reader_going_away_stops_the_services(false)
end

-- The same with SIGPIPE ignored when the command starts: it is read all
-- the same (a write to the pipe would fail, EPIPE, and nothing stopped).
function TC.test_a_json_reader_that_goes_away_stops_the_services_with_sigpipe_ignored()
  assert_a_json_reader_going_away_stops_the_services(true)
end

-- A SIGHUP and a SIGTERM read together (the command stopped meanwhile,
-- as a slow reload or a loaded machine does): the reload started what it
-- added after the stop had begun, its sv:up took back sv:down's goals,
-- and the command waited for good, ignoring every later signal, with the
-- added service running.
function TC.test_a_reload_and_a_stop_read_together_stop_everything()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 20, log = S.quiet })
    local a = S.pid_in(dir .. "/a")
    services_file(file, dir, { "a", "b" })
    -- both pending when it runs again: one read takes both
    assert(app:kill("STOP"))
    assert(app:kill("HUP"))
    assert(app:kill("TERM"))
    assert(app:kill("CONT"))
    local how = app:wait(10)
    if not how then app:kill("KILL") app:wait(5) end
    lu.assertEquals(how, { code = 0 }, "the command stopped")
    lu.assertFalse(S.alive(a), "a was stopped")
    local b = S.read(dir .. "/b") and S.pid_in(dir .. "/b")
    if b and S.alive(b) then os.execute("kill -9 " .. b) end
    lu.assertFalse(b and true or false, "b, added by the reload, was started after the stop began")
  end)
  S.assert_clean(before)
end

-- A reload stops what it changes at once, as sv:down stops (it stopped
-- one service after another, each its whole kill_grace), and reads the
-- signals meanwhile: a SIGTERM then stops the command, and nothing the
-- reload would have started again is started (the SIGTERM waited for the
-- stops, then the changed services came up again, to be stopped again).
-- Three services that ignore SIGTERM, a kill_grace of 1 s each.
function TC.test_a_reload_stops_what_it_changes_at_once_and_a_stop_meanwhile_is_prompt()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local function three(word)
    local parts = { string.format("local F = %q\nreturn { services = {\n", F) }
    for _, name in ipairs { "x", "y", "z" } do
      parts[#parts + 1] = string.format("  %s = { argv = { F, 'ignore=TERM', 'pidfile=%s/%s', 'notify=READY=1', "
        .. "'pause' }, env = { WORD = %q }, kill_grace = 1 },\n", name, dir, name, word)
    end
    parts[#parts + 1] = "} }\n"
    write(file, table.concat(parts))
  end
  three("first")
  local events = dir .. "/events"
  local function seen(what)
    local n = 0
    for line in (S.read(events) or ""):gmatch("[^\n]+") do
      local name, state = line:match('^{"service":"(%w+)","state":"(%w+)",')
      if state == what then n = n + 1 end
      if what == name .. ":" .. state then n = n + 1 end
    end
    return n
  end
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", "--json", file }, stdout = events,
      stderr = "null", ready_timeout = 20, log = S.quiet })
    local pids = { S.pid_in(dir .. "/x"), S.pid_in(dir .. "/y"), S.pid_in(dir .. "/z") }
    three("second") -- each one changed
    assert(app:kill("HUP"))
    lu.assertTrue(S.await_with_sleep(function() return seen("stopping") == 3 end, 10), S.read(events))
    assert(app:kill("TERM"))
    local how = app:wait(10)
    if not how then app:kill("KILL") app:wait(5) end
    lu.assertEquals(how, { code = 0 }, "the command stopped")
    for _, pid in ipairs(pids) do lu.assertFalse(S.alive(pid)) end
  end)
  for _, name in ipairs { "x", "y", "z" } do
    lu.assertEquals(seen(name .. ":starting"), 1, name .. " started again after the stop began: " .. S.read(events))
  end
  -- the three stops under way at once: each "stopping" before any "stopped"
  local order = {}
  for line in S.read(events):gmatch("[^\n]+") do
    local state = line:match('^{"service":"%w+","state":"(%w+)",')
    if state == "stopping" or state == "stopped" then order[#order + 1] = state end
  end
  lu.assertEquals({ order[1], order[2], order[3], order[4] }, { "stopping", "stopping", "stopping", "stopped" },
    S.read(events))
  S.assert_clean(before)
end

-- The reload tests' services file: x, which ignores SIGTERM (its stop
-- takes its whole kill_grace, `grace`) and writes its pid to dir/x_WORD,
-- and, named, `other` ({name, its actions before its pid file}) too.
local function x_file(file, dir, word, grace, other)
  write(file, string.format("local F = %q\nreturn { services = {\n"
    .. "  x = { argv = { F, 'ignore=TERM', 'pidfile=%s/x_%s', 'notify=READY=1', 'pause' }, kill_grace = %g },\n"
    .. (other and string.format("  %s = { argv = { F, %s'pidfile=%s/%s', 'notify=READY=1', 'pause' } },\n",
      other[1], other[2] and ("'" .. other[2] .. "', ") or "", dir, other[1]) or "")
    .. "} }\n", F, dir, word, grace))
end

-- `appstart supervise FILE` started through the handshake, its stderr to
-- dir/err; and a wait for a line of that stderr.
local function supervise_command(dir, file)
  local app = assert(require("appstart").start { argv = lua_command { "supervise", file }, stderr = dir .. "/err",
    ready_timeout = 20, log = S.quiet })
  return app, function(text)
    lu.assertTrue(S.await_with_sleep(function()
      return (S.read(dir .. "/err") or ""):find(text, 1, true) ~= nil
    end, 10), "never said: " .. text)
  end
end

-- The command's first SIGHUP (x_file's "second", y added: x changed, its
-- stop taking its kill_grace of 1 s), then between() and a second SIGHUP
-- while that stop is under way (one signal read in a batch, as standard
-- signals are not queued). Returns x's first pid.
local function hup_twice(app, await_said, dir, file, between)
  local first = S.pid_in(dir .. "/x_first")
  x_file(file, dir, "second", 1, { "y" })
  assert(app:kill("HUP"))
  await_said("x: stopping (pid " .. first .. ")")
  if between then between() end
  assert(app:kill("HUP"))
  return first
end

-- A SIGHUP while a reload is applied (its stop of x takes x's kill_grace)
-- is taken once that one is done, the file read again then: the first
-- applied, the second finds nothing changed; x as the file says and y,
-- which it adds, come up, and stop with the command.
function TC.test_a_reload_asked_while_one_is_applied_is_taken_after_it()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  x_file(file, dir, "first", 1)
  appstart.run(function()
    local app, await_said = supervise_command(dir, file)
    local first = hup_twice(app, await_said, dir, file)
    lu.assertTrue(S.await_with_sleep(function()
      return S.read(dir .. "/x_second") ~= nil and S.read(dir .. "/y") ~= nil
    end, 15), "the file's services came up")
    local second, y = S.pid_in(dir .. "/x_second"), S.pid_in(dir .. "/y")
    lu.assertFalse(S.alive(first))
    lu.assertTrue(S.alive(second) and S.alive(y))
    lu.assertEquals(app:terminate(10), { code = 0 })
    lu.assertFalse(S.alive(second) or S.alive(y))
  end)
  local said = S.read(dir .. "/err")
  lu.assertStrContains(said, "appstart: reload: 1 added, 0 removed, 1 changed\n")
  lu.assertStrContains(said, "appstart: reload: 0 added, 0 removed, 0 changed\n")
  S.assert_clean(before)
end

-- A SIGHUP while a reload is applied, the file changed again meanwhile:
-- the newer file has the last word. The first reload made its starts as
-- it ended all the same: y, which the file it read added and the newer
-- one took out, was started (a one-shot run from a file already gone),
-- and x as that file had it, to be stopped again at once.
function TC.test_a_reload_superseded_while_applied_starts_nothing_the_newer_file_changed()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  x_file(file, dir, "first", 1)
  appstart.run(function()
    local app, await_said = supervise_command(dir, file)
    hup_twice(app, await_said, dir, file, function() x_file(file, dir, "third", 1) end)
    lu.assertTrue(S.await_with_sleep(function() return S.read(dir .. "/x_third") ~= nil end, 15), "x came up")
    lu.assertTrue(S.await_with_sleep(function() return app.state == "ready" end, 15), app.state)
    lu.assertNil(S.read(dir .. "/y"), "y, which the newer file took out, was started")
    lu.assertNil(S.read(dir .. "/x_second"), "x as the superseded file had it was started")
    lu.assertTrue(S.alive(S.pid_in(dir .. "/x_third")))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- READY=1 comes once every reload's starts are done: a SIGHUP taken
-- while the first is applied, which changes nothing, said READY=1 at once,
-- before c, which the first added, was up (systemctl reload returned
-- early).
function TC.test_a_reload_taken_after_another_says_READY_1_once_both_are_done()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  x_file(file, dir, "first", 1)
  appstart.run(function()
    local app, await_said = supervise_command(dir, file)
    local first = S.pid_in(dir .. "/x_first")
    x_file(file, dir, "second", 1, { "c", "sleep=1" })
    assert(app:kill("HUP"))
    await_said("x: stopping (pid " .. first .. ")")
    -- (its RELOADING=1, sent before that line, read by now or soon; or,
    -- on a slow machine, that reload done already, c up)
    lu.assertTrue(S.await_with_sleep(function() return app.state == "reloading" or S.read(dir .. "/c") ~= nil end,
      10), app.state)
    assert(app:kill("HUP"))
    lu.assertTrue(S.await_with_sleep(function() return app.state == "ready" end, 15), app.state)
    lu.assertNotNil(S.read(dir .. "/c"), "READY=1 before c was up")
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- The same for a reload that begins while another's start is under way:
-- its stops count too (READY=1 came once c, the first's, was up, x still
-- being stopped by the second).
function TC.test_a_reload_begun_during_anothers_start_says_READY_1_once_its_stops_and_starts_are_done()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  x_file(file, dir, "first", 1.5)
  appstart.run(function()
    local app, await_said = supervise_command(dir, file)
    x_file(file, dir, "first", 1.5, { "c", "sleep=1" })
    assert(app:kill("HUP"))
    await_said("c: starting")
    x_file(file, dir, "second", 1.5, { "c", "sleep=1" })
    assert(app:kill("HUP"))
    -- (reloading still, or again: x's stop takes its kill_grace)
    lu.assertTrue(S.await_with_sleep(function() return app.state == "reloading" end, 10), app.state)
    lu.assertTrue(S.await_with_sleep(function() return app.state == "ready" end, 15), app.state)
    lu.assertNotNil(S.read(dir .. "/x_second"), "READY=1 while x was being stopped")
    lu.assertNotNil(S.read(dir .. "/c"))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- A SIGHUP checks the file whole at once, and adds each changed service
-- once what it replaces has stopped: there its spec was checked again,
-- and a user that existed at the SIGHUP, gone by then, raised "reload:
-- cannot add x" out of the reload's task (its real error hidden): the
-- command ended, exit 1, every service stopped (y, untouched, too). What
-- is added is what was checked: x is added (its start fails, for its
-- policy), y runs on, and a SIGTERM ends the command with 0.
function TC.test_a_reloaded_service_whose_user_goes_before_it_is_added_ends_nothing()
  lu.skipIf(not S.is_root(), "needs root (useradd, userdel)")
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local go = dir .. "/go"
  local user = "apsv" .. S.core.pid()
  local function services(x)
    write(file, string.format("local F = %q\nreturn { services = {\n  x = %s,\n"
      .. "  y = { argv = { F, 'pidfile=%s/y', 'notify=READY=1', 'pause' } },\n} }\n", F, x, dir))
  end
  -- (x's stop waits for `go`: its SIGTERM ignored, its kill_grace long)
  services(string.format("{ argv = { F, 'ignore=TERM', 'pidfile=%s/x', 'notify=READY=1', 'waitfile=%s', 'exit=0' },"
    .. " kill_grace = 30 }", dir, go))
  os.execute("userdel " .. user .. " >/dev/null 2>&1")
  lu.assertTrue(os.execute("useradd -M " .. user), "useradd " .. user)
  local ok, err = pcall(appstart.run, function()
    local app, await_said = supervise_command(dir, file)
    local x, y = S.pid_in(dir .. "/x"), S.pid_in(dir .. "/y")
    services(string.format("{ argv = { F, 'notify=READY=1', 'pause' }, user = %q, backoff = { initial = 0.05 } }",
      user))
    assert(app:kill("HUP"))
    await_said("x: stopping (pid " .. x .. ")")
    -- checked at the SIGHUP: the user is there. Gone before x is added
    lu.assertTrue(os.execute("userdel " .. user), "userdel " .. user)
    S.touch(go)
    await_said("appstart: reload: 0 added, 0 removed, 1 changed\n")
    lu.assertTrue(S.await_gone(x), "x was stopped")
    lu.assertTrue(S.alive(y), "y runs on")
    lu.assertNil(app:wait(0), "the command runs on")
    lu.assertEquals(app:terminate(10), { code = 0 })
    lu.assertFalse(S.alive(y))
  end)
  os.execute("userdel " .. user .. " >/dev/null 2>&1")
  lu.assertTrue(ok, tostring(err))
  local said = S.read(dir .. "/err")
  lu.assertNil(said:find("cannot add", 1, true), said)
  lu.assertNil(said:find("traceback", 1, true), said)
  S.assert_clean(before)
end

function TC.test_after_a_reload_READY_1_comes_once_what_it_started_is_up()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 20, log = S.quiet })
    -- c, added, takes 0.5 s to be ready
    write(file, string.format("local F = %q\nreturn { services = {\n"
      .. "  a = { argv = { F, 'pidfile=%s/a', 'notify=READY=1', 'pause' } },\n"
      .. "  c = { argv = { F, 'sleep=0.5', 'pidfile=%s/c', 'notify=READY=1', 'pause' } },\n} }\n", F, dir, dir))
    -- SIGHUP, then RELOADING=1 and READY=1 (app:reload waits for both)
    lu.assertEquals(app:reload(), true)
    lu.assertEquals(app.status, "2 of 2 services ready", "READY=1 before c was up")
    lu.assertNotNil(S.read(dir .. "/c"))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- A service that ends on purpose and is not restarted (a migration before
-- the app, restart "no") does not keep the command from being ready:
-- READY=1 comes once `sv:up()` has returned true, here once the app after
-- it is ready (it waits until the migration is gone).
function TC.test_READY_1_comes_once_the_services_are_up_though_one_ended_on_purpose()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  write(file, string.format("local F = %q\nlocal dir = %q\nreturn { services = {\n"
    .. "  migrate = { argv = { F, 'pidfile=' .. dir .. '/migrate', 'sleep=0.2', 'exit=0' }, ready = 'none',\n"
    .. "    restart = 'no' },\n"
    .. "  app = { argv = { 'sh', '-c', 'while [ ! -s \"$1\" ]; do sleep 0.01; done; '\n"
    .. "    .. 'while kill -0 \"$(cat \"$1\")\" 2>/dev/null; do sleep 0.01; done; '\n"
    .. "    .. 'exec \"$0\" pidfile=\"$2\" notify=READY=1 pause', F, dir .. '/migrate', dir .. '/app' },\n"
    .. "    after = { 'migrate' } },\n} }\n", F, dir))
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 5, log = S.quiet })
    lu.assertNotNil(S.read(dir .. "/app"), "READY=1 before the app was up")
    lu.assertEquals(app.status, "1 of 2 services ready")
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- The same when the app's first start fails (it exits 1, once) and its
-- policy starts it again: the bring-up's sv:up() returned that failure,
-- nothing waited again, and the migration's end kept every service from
-- being ready: READY=1 never came (the start timed out). The bring-up
-- waits on for what the policy will bring up.
function TC.test_READY_1_comes_after_a_failed_first_start_restarted_beside_a_migration_that_ended()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  -- (the app's every run waits until the migration is gone; its first
  -- fails then, leaving app.once)
  write(file, string.format("local F = %q\nlocal dir = %q\nreturn { services = {\n"
    .. "  migrate = { argv = { F, 'pidfile=' .. dir .. '/migrate', 'exit=0' }, ready = 'none', restart = 'no' },\n"
    .. "  app = { argv = { 'sh', '-c', 'while [ ! -s \"$1\" ]; do sleep 0.01; done; '\n"
    .. "    .. 'while kill -0 \"$(cat \"$1\")\" 2>/dev/null; do sleep 0.01; done; '\n"
    .. "    .. '[ -e \"$2.once\" ] && exec \"$0\" pidfile=\"$2\" notify=READY=1 pause; : >\"$2.once\"; exit 1',\n"
    .. "    F, dir .. '/migrate', dir .. '/app' }, backoff = { initial = 0.05 } },\n} }\n", F, dir))
  appstart.run(function()
    local app, err = appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 10, log = S.quiet }
    lu.assertNotNil(app, tostring(err))
    lu.assertNotNil(S.read(dir .. "/app.once"), "the app's first start failed")
    lu.assertNotNil(S.read(dir .. "/app"), "READY=1 before the app was up")
    lu.assertEquals(app.status, "1 of 2 services ready")
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- A SIGHUP while the services are still coming up: READY=1 waits for them
-- all the same (it came at the end of the reload, every service not up).
function TC.test_a_reload_before_every_service_is_up_does_not_say_ready()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  write(file, string.format("local F = %q\nreturn { services = {\n"
    .. "  a = { argv = { F, 'sleep=1', 'pidfile=%s/a', 'notify=READY=1', 'pause' } },\n} }\n", F, dir))
  local hup_sent = false
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 20, log = S.quiet,
      on_status = function(a)
        if not hup_sent then
          hup_sent = true
          os.execute("kill -HUP " .. a.pid)
        end
      end })
    -- (read before anything else runs: the status the app had at its READY=1)
    lu.assertEquals(app.status, "1 of 1 services ready", "READY=1 before the service was up")
    lu.assertTrue(hup_sent)
    lu.assertNotNil(S.read(dir .. "/a"))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- A SIGHUP that replaces a service still coming up, after another ended on
-- purpose (a migration, restart "no"): READY=1 comes once the replacement
-- is up, as the bring-up's would have (the reload cut the bring-up's
-- sv:up() short, and the migration's end kept every service from being
-- ready: READY=1 never came, the start timed out).
function TC.test_a_reload_during_the_bring_up_after_a_migration_ended_says_ready()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local function services(slow)
    write(file, string.format("local F = %q\nreturn { services = {\n"
      .. "  migrate = { argv = { F, 'sleep=0.1', 'exit=0' }, ready = 'none', restart = 'no' },\n"
      .. "  web = { argv = { F, 'sleep=%s', 'pidfile=%s/web', 'notify=READY=1', 'pause' } },\n} }\n", F, slow, dir))
  end
  services(3)
  local seen, hup_sent = {}, false
  appstart.run(function()
    local app, err = appstart.start { argv = lua_command { "supervise", file }, stderr = "null",
      ready_timeout = 6, log = S.quiet,
      on_status = function(a, text)
        seen[#seen + 1] = text
        -- the migration has ended (it was ready once): web replaced
        if not hup_sent and text == "0 of 2 services ready" and #seen > 2 then
          hup_sent = true
          services(0.2)
          os.execute("kill -HUP " .. a.pid)
        end
      end }
    lu.assertTrue(hup_sent, table.concat(seen, ", "))
    lu.assertNotNil(app, tostring(err) .. ": " .. table.concat(seen, ", "))
    lu.assertEquals(app.status, "1 of 2 services ready")
    lu.assertNotNil(S.read(dir .. "/web"))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- SIGTERM, or a SIGHUP that replaces a service, while a service still
-- comes up: its start ends ("stopped"), which is no failure to report.
function TC.test_a_stop_or_reload_during_the_first_start_is_not_said_to_be_a_failure()
  local appstart = require "appstart"
  local before = S.snapshot()
  for _, how in ipairs { "TERM", "HUP" } do
    local dir, file = supervise_dir()
    local function services(slow)
      write(file, string.format("local F = %q\nreturn { services = {\n"
        .. "  a = { argv = { F, 'sleep=%s', 'notify=READY=1', 'pause' } },\n"
        .. "  b = { argv = { F, 'pidfile=%s/b', 'notify=READY=1', 'pause' } },\n} }\n", F, slow, dir))
    end
    services(3)
    local err = dir .. "/stderr"
    appstart.run(function()
      local app = assert(appstart.start { argv = lua_command { "supervise", file }, ready = "none", stderr = err,
        log = S.quiet })
      S.pid_in(dir .. "/b") -- b is up: the command runs its loop, a still comes up
      if how == "HUP" then
        services(0) -- a changed: replaced, and up at once
        assert(app:kill("HUP"))
        lu.assertTrue(S.await_with_sleep(function() return (S.read(err) or ""):find("a: ready") end), how)
      end
      lu.assertEquals(app:terminate(10), { code = 0 }, how)
    end)
    local said = S.read(err)
    lu.assertStrContains(said, "a: stopped", how)
    lu.assertNil(said:find("not every service came up", 1, true), said)
  end
  S.assert_clean(before)
end

-- The --json event of the stop of a service x that runs once (restart =
-- "no", its stdout captured): the fixture with `words`; the command is
-- then stopped. Leaves nothing behind.
-- (name: the service's, "x" if not given; err: a file for the command's
-- stderr)
local function stopped_event(words, name, err)
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local events = dir .. "/events"
  local argv = { string.format("%q", words.program or F) }
  for _, w in ipairs(words) do argv[#argv + 1] = string.format("%q", w) end
  write(file, "return { services = { [" .. string.format("%q", name or "x") .. "] = { argv = { "
    .. table.concat(argv, ", ") .. " }, stdout = 'capture', restart = 'no' } } }\n")
  local line
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", "--json", file }, ready = "none",
      stdout = events, stderr = err or "null", log = S.quiet })
    lu.assertTrue(S.await_with_sleep(function()
      for _, l in ipairs(S.lines(S.read(events) or "")) do
        if l:find('"state":"stopped"', 1, true) then line = l end
      end
      return line ~= nil
    end, 10), S.read(events))
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
  return line
end

function TC.test_json_events_of_a_failed_start_carry_its_pid_status_and_last_lines()
  local line = stopped_event { "echo=no config", "exit=3" }
  lu.assertStrMatches(line, '.*"pid":%d+.*')
  lu.assertStrContains(line, '"exit_code":3')
  lu.assertStrContains(line, '"code":"died"')
  lu.assertStrContains(line, '"output":["no config"]')
end

-- The command's events (--json objects, its lines) and STATUS= are its
-- own: not queued behind the file's on_event, which here waits from the
-- first event on. They were queued with it, in one callback, and past 64
-- of a service's the queue merged them: a crash loop's events were lost,
-- uncounted (121 objects of ~640 events), and none came while it waited.
-- Here a service fails 100 times, then gives up: each of its 300 events
-- is written (to a file: it takes every write), in order, while the
-- file's on_event still waits; then it is let go, and SIGTERM.
function TC.test_the_commands_events_do_not_wait_behind_the_files_on_event()
  local appstart = require "appstart"
  for _, json in ipairs { true, false } do
    local mode = json and "json" or "text"
    local before = S.snapshot()
    local dir, file = supervise_dir()
    local events, go = dir .. "/events", dir .. "/go"
    write(file, string.format("local appstart = require 'appstart'\nlocal F = %q\nreturn {\n"
      .. "  on_event = function() while not io.open(%q) do appstart.sleep(0.01) end end,\n"
      .. "  services = { crash = { argv = { F, 'exit=3' }, ready = 'none', restart = 'always', burst = 99,"
      .. " burst_interval = 3600, backoff = { initial = 0 } } } }\n", F, go))
    local expected = {}
    for run = 0, 99 do
      for _, state in ipairs { "starting", "ready", run < 99 and "backoff" or "failed" } do
        expected[#expected + 1] = state .. " " .. run
      end
    end
    local said = {}
    appstart.run(function()
      local app = assert(appstart.start { argv = lua_command(json and { "supervise", "--json", file } or { "supervise", file }),
        ready = "none", stdout = json and events or "null", stderr = json and dir .. "/err" or events,
        log = S.quiet })
      lu.assertTrue(S.await_with_sleep(function()
        local text = S.read(events) or ""
        return text:find(json and '"state":"failed"' or "appstart: crash: failed", 1, true) ~= nil
      end, 20), mode .. ": never said failed")
      -- (read while the file's on_event still waits)
      for _, l in ipairs(S.lines(S.read(events))) do
        if json then
          local state, restarts = l:match('^{"service":"crash","state":"(%a+)",.*"restarts":(%d+),')
          if state then said[#said + 1] = state .. " " .. restarts end
        else
          local state = l:match("^appstart: crash: (%a+)")
          if state then said[#said + 1] = state end
        end
      end
      S.touch(go)
      lu.assertEquals(app:terminate(10), { code = 0 }, mode)
    end)
    if not json then
      for i, e in ipairs(expected) do expected[i] = e:match("^%a+") end
    end
    lu.assertEquals(said, expected, mode)
    if json then lu.assertNotStrContains(S.read(dir .. "/err") or "", "not written", mode) end
    S.assert_clean(before, mode)
  end
end

-- The command run on file (stderr to err), inside a task, once service
-- a has written its pid to dir/a and err holds text: the command's app and
-- a's pid.
local function supervise_said(file, dir, err, text, why)
  local app = assert(require("appstart").start { argv = lua_command { "supervise", file }, ready = "none",
    stderr = err, kill_grace = 1, log = S.quiet })
  local pid
  lu.assertTrue(S.await_with_sleep(function()
    pid = tonumber(S.read(dir .. "/a") or "")
    return pid and (S.read(err) or ""):find(text, 1, true) ~= nil
  end, 10), why .. ": " .. (S.read(err) or ""))
  return app, pid
end

-- A file's on_event that waits on (here for good) as SIGTERM comes does
-- not hold the command: once every service has stopped and the stop's
-- callbacks have had the services' longest kill_grace, its wait says nil,
-- "cancelled", and the command exits 0. (appstart.run waited for it: the
-- command never exited, its SIGTERM and SIGINT blocked, unread.) The
-- stop's own callbacks that wait less are told whole: an on_exit's sleep
-- ends as it should, on_event hears "stopped".
function TC.test_a_files_callback_that_waits_on_does_not_hold_the_commands_stop()
  local appstart = require "appstart"
  for _, forever in ipairs { true, false } do
    local case = forever and "forever" or "a while"
    local before = S.snapshot()
    local dir, file = supervise_dir()
    local said, err = dir .. "/said", dir .. "/err"
    write(file, string.format("local appstart = require 'appstart'\nlocal F, said = %q, %q\n"
      .. "local function say(...) local f = io.open(said, 'a') f:write(table.concat({ ... }, ' '), '\\n') f:close() end\n"
      .. "return {\n"
      .. "  on_event = function(_, state)\n"
      .. "    if state == 'ready' and %s then say('ready', tostring(appstart.sleep(1e6))) end\n"
      .. "    if state == 'stopped' then say('stopped') end\n"
      .. "  end,\n"
      .. "  services = { a = { argv = { F, 'pidfile=%s/a', 'pause' }, ready = 'none', kill_grace = 0.5,\n"
      .. "    on_exit = function() say('on_exit', tostring(appstart.sleep(0.2))) end } } }\n",
      F, said, tostring(forever), dir))
    local pid
    appstart.run(function()
      local app
      app, pid = supervise_said(file, dir, err, "appstart: a: ready", case .. ": never ready")
      app:kill("TERM")
      lu.assertEquals({ app:wait(10) }, { { code = 0 } }, case .. ": the command's end")
    end)
    if forever then
      -- (the stop's callbacks queued behind it: cancelled with it)
      lu.assertStrContains(S.read(said), "ready nil\n", case)
    else
      lu.assertEquals(S.read(said), "on_exit true\nstopped\n", case)
    end
    lu.assertTrue(S.await_gone(pid), case .. ": the service is gone")
    S.assert_clean(before, case)
  end
end

-- The file's callbacks may not end the command as they run, as the file
-- may not as it loads: an os.exit there raises, said as their error, and
-- the command goes on until SIGTERM stops its services. (It exited with
-- the code given, its services left running for good.)
function TC.test_a_files_callback_that_calls_os_exit_does_not_end_the_command()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local err = dir .. "/err"
  write(file, string.format("local F = %q\nreturn {\n"
    .. "  on_event = function(_, state) if state == 'ready' then os.exit(7) end end,\n"
    .. "  services = { a = { argv = { F, 'pidfile=%s/a', 'pause' }, ready = 'none',\n"
    .. "    on_exit = function() os.exit(8) end } } }\n", F, dir))
  local pid
  appstart.run(function()
    local app
    app, pid = supervise_said(file, dir, err, "os.exit: the file may not end the command", "on_event's os.exit never said")
    lu.assertTrue(S.alive(pid), "the service runs on")
    -- (its on_exit's too, at the stop: still no end of the command's)
    app:kill("TERM")
    lu.assertEquals({ app:wait(10) }, { { code = 0 } }, "the command's end")
  end)
  lu.assertTrue(S.await_gone(pid), "the service is gone")
  local _, count = S.read(err):gsub("os.exit: the file may not end the command", "")
  lu.assertEquals(count, 2, S.read(err))
  S.assert_clean(before)
end

-- A reader of the command's events that never reads (its pipe full from
-- the start): the command never waits for it. It supervised nothing (its
-- first event's write waited for good: no service started, SIGTERM unseen).
-- Here a service is started, killed and started again, SIGTERM stops
-- everything and the command exits 0; with --json the events it could not
-- write are counted on stderr.
function TC.test_a_reader_that_never_reads_does_not_hold_the_command()
  local appstart = require "appstart"
  for _, json in ipairs { true, false } do
    local before = S.snapshot()
    local dir, file = supervise_dir()
    services_file(file, dir, { "a" })
    local words = {}
    for i, w in ipairs(lua_command { "supervise", json and "--json" or "-v", file }) do words[i] = "'" .. w .. "'" end
    local me, status, err = dir .. "/command", dir .. "/status", dir .. "/stderr"
    -- the pipe filled (64 KiB) before the command writes to it; sleep
    -- never reads it
    -- (its pid written whole, then renamed: await_file reads it whole)
    local left = "head -c 65536 /dev/zero" .. (json and "" or " >&2") .. "; echo $$ >" .. me .. ".tmp; mv "
      .. me .. ".tmp " .. me .. "; exec " .. table.concat(words, " ")
    local redirect = json and " 2>" .. err or " 2>&1 >/dev/null"
    local script = "sh -c " .. S.shell_quote(left) .. redirect .. " | sleep 1000; echo $? >" .. status
    appstart.run(function()
      local app = assert(appstart.start { argv = { "sh", "-c", script }, ready = "none", stdout = "null",
        stderr = "null", log = S.quiet, kill_mode = "group" })
      local command = tonumber(S.await_file(me, 10):match("%d+"))
      local a = tonumber(S.await_file(dir .. "/a", 10):match("%d+"))
      os.remove(dir .. "/a")
      os.execute("kill -KILL " .. a)
      local a2 = tonumber((S.await_file(dir .. "/a", 10) or ""):match("%d+"))
      lu.assertNotNil(a2, "a was started again")
      lu.assertNotEquals(a2, a)
      os.execute("kill -TERM " .. command)
      lu.assertTrue(S.await_with_sleep(function() return gone_or_in_last_words(command) end, 10), "the command stopped")
      lu.assertFalse(S.alive(a2), "and stopped a")
      -- (text: its last words, the count of the lines not shown, wait
      -- for that reader, as any program's: a SIGTERM ends it there)
      if not json then os.execute("kill -TERM " .. command .. " 2>/dev/null") end
      lu.assertTrue(S.await_gone(command, 10), "the command ended")
      app:terminate(1)
    end)
    if json then
      lu.assertStrMatches(S.read(err), ".*appstart: %d+ events? not written %(stdout was not read%)\n")
    end
    S.assert_clean(before, json and "json" or "text")
  end
end

-- The command's stdout and stderr on a pipe full from the start, whose
-- reader reads it only once the command was told to stop: every line
-- and event was dropped, and the end says how many (in text mode the
-- lines stderr did not take were never said at the end; with --json the
-- count of events went through the same dropping write as the events,
-- and was dropped too). Here a migration runs and ends (its events
-- dropped), the file's on_event says when its end was told, and after it
-- nothing is written until the end.
function TC.test_the_end_says_what_a_reader_that_read_only_then_did_not_get()
  local appstart = require "appstart"
  for _, json in ipairs { false, true } do
    local mode = json and "json" or "text"
    local before = S.snapshot()
    local dir, file = supervise_dir()
    write(file, string.format("return { services = { m = { argv = { %q, 'exit=0' }, ready = 'none', restart = 'no' } },"
      .. " on_event = function(_, state) if state == 'stopped' then io.open(%q, 'w'):close() end end }\n",
      F, dir .. "/told"))
    local words = {}
    for i, w in ipairs(lua_command(json and { "supervise", "--json", file } or { "supervise", file })) do
      words[i] = S.shell_quote(w)
    end
    local me, status, out, go = dir .. "/command", dir .. "/status", dir .. "/out", dir .. "/go"
    -- the pipe filled (64 KiB) before the command writes to it; its
    -- reader waits for `go`, then reads all
    local left = "head -c 65536 /dev/zero; echo $$ >" .. me .. ".tmp; mv " .. me .. ".tmp " .. me .. "; exec "
      .. table.concat(words, " ") .. " 2>&1"
    -- (its exit status written whole, then renamed: await_file reads a
    -- file once it exists, and one written in place was read empty)
    local script = "{ sh -c " .. S.shell_quote(left) .. "; echo $? >" .. status .. ".tmp; mv " .. status .. ".tmp "
      .. status .. "; } | "
      .. S.shell_quote(F) .. " waitfile=" .. go .. " exec cat >" .. out
    appstart.run(function()
      local app = assert(appstart.start { argv = { "sh", "-c", script }, ready = "none", stdout = "null",
        stderr = "null", log = S.quiet, kill_mode = "group" })
      local command = tonumber(S.await_file(me, 10):match("%d+"))
      S.await_file(dir .. "/told", 10)
      os.execute("kill -TERM " .. command)
      S.touch(go)
      lu.assertEquals(S.await_file(status, 10), "0\n", mode)
      lu.assertTrue(S.await_gone(command, 10), mode)
      app:wait(10)
    end)
    local text = S.read(out)
    local said = text:gsub("^%z+", "")
    lu.assertEquals(#text - #said, 65536, mode)
    lu.assertStrMatches(said, json and "appstart: %d+ events not written %(stdout was not read%)\n"
      or "appstart: %d+ lines not shown %(stderr was not read%)\n", nil, nil, mode)
    S.assert_clean(before, mode)
  end
end

-- The command under a file size limit (ulimit -f) whose writes of a
-- service's output to its file pass it: the bytes are lost and said, and
-- the kernel's SIGXFSZ for that write of its own is no signal to stop (it
-- stopped every service and exited 153); a SIGTERM stops it, exit 0.
function TC.test_a_file_past_the_commands_size_limit_stops_nothing()
  local before = S.snapshot()
  local dir, file = supervise_dir()
  write(file, string.format("return { services = { w = { argv = { %q, 'pidfile=%s/w', 'notify=READY=1',"
    .. " 'lines=1:400:0123456789012345678901234567890123456789', 'pause' },"
    .. " stdout = { file = '%s/w.log', max_bytes = 100000 } } } }\n", F, dir, dir))
  local words = {}
  for i, w in ipairs(lua_command { "supervise", file }) do words[i] = S.shell_quote(w) end
  local me, status, err = dir .. "/command", dir .. "/status", dir .. "/stderr"
  -- (sh's ulimit -f counts 512-byte blocks: 4 KiB, of 16.8 KB written)
  local script = "ulimit -f 8; echo $$ >" .. me .. ".tmp; mv " .. me .. ".tmp " .. me .. "; exec "
    .. table.concat(words, " ")
  os.execute("(sh -c " .. S.shell_quote(script) .. " 2>" .. err .. " >/dev/null; echo $? >" .. status .. ".tmp; mv "
    .. status .. ".tmp " .. status .. ") &")
  local command = tonumber(S.await_file(me, 10):match("%d+"))
  local w = tonumber(S.await_file(dir .. "/w", 10):match("%d+"))
  local deadline = S.core.now() + 10
  while not (S.read(err) or ""):find("not written to its file: File too large", 1, true)
    and S.core.now() < deadline do
    S.core.wait_readable(-1, 0.01)
  end
  lu.assertStrContains(S.read(err), "not written to its file: File too large")
  os.execute("kill -TERM " .. command)
  lu.assertEquals(S.await_file(status, 20), "0\n", S.read(err))
  lu.assertFalse(S.alive(w), "the service was stopped")
  lu.assertTrue(#S.read(dir .. "/w.log") <= 4096)
  S.assert_clean(before)
end

-- A --json event is one write that a pipe takes at once (4096 bytes at
-- most): one too long loses its output, then the end of its message, and
-- stays one JSON object.
function TC.test_a_json_event_too_long_for_one_write_is_cut_and_stays_json()
  local long = "echo=" .. string.rep("x", 1500)
  local line = stopped_event { long, long, long, "exit=3" }
  lu.assertTrue(#line < 4096, #line)
  lu.assertStrMatches(line, '{"service":"x","state":"stopped",.*"code":"died","message":".*"}')
  lu.assertNotStrContains(line, '"output"')
end

-- A service's name is any string: one too long for one write is cut too
-- (the object was 21 KB, and a reader slower than the command held it,
-- SIGTERM unseen); one with control characters is escaped in the events
-- and in every log line on stderr (the supervisor's lines and the reason
-- quoted in them went out raw: a live escape, a line split in two).
function TC.test_a_service_name_of_any_bytes_is_cut_and_escaped()
  local line = stopped_event({ "exit=3" }, string.rep("N", 5000))
  lu.assertTrue(#line < 4096, #line)
  lu.assertStrMatches(line, '{"service":"N+%[%.%.%.%]","state":"stopped",.*"code":"died",.*}')
  -- as much as fits, though each byte takes six in JSON (cut by bytes, a
  -- name went to nothing)
  line = stopped_event({ "exit=3" }, string.rep("\1", 3000))
  lu.assertTrue(#line < 4096, #line)
  local kept = line:match('^{"service":"(.-)%[%.%.%.%]","state":"stopped"')
  lu.assertNotNil(kept, line)
  lu.assertTrue(#kept > 3000, #kept)
  local dir = supervise_dir()
  local err = dir .. "/stderr"
  line = stopped_event({ program = "/nonexistent/p\27[31m\194\155" }, "s\27]0;t\7\r\n\194\155", err)
  lu.assertStrContains(line, '{"service":"s\\u001b]0;t\\u0007\\r\\n\\u009b","state":"stopped"')
  local text = S.read(err)
  lu.assertStrContains(text, "appstart: warn: s\\x1b]0;t\\x07\\x0d\\x0a\\xc2\\x9b: p\\x1b[31m\\xc2\\x9b: cannot"
    .. " execute /nonexistent/p\\x1b[31m\\xc2\\x9b: No such file or directory; not restarted")
  lu.assertNil(text:find("[\27\7\r]"), text)
  lu.assertNil(text:find("\194\155", 1, true), text)
end

-- A services file is code run as the command's user (root): one that
-- another user could change is refused before any of it runs (exit 1,
-- why on stderr), as is one in a directory another user could change.
function TC.test_a_services_file_another_user_could_change_is_refused()
  local before = S.snapshot()
  local cases = {
    { "owned by nobody", function(_, file) os.execute("chown nobody " .. file) end, "it is owned by uid 65534" },
    { "writable by all", function(_, file) os.execute("chmod 666 " .. file) end, "it is writable by every user" },
    { "in a directory all may write", function(dir) os.execute("chmod 777 " .. dir) end,
      "its directory %s is writable by every user" },
  }
  for _, case in ipairs(cases) do
    local name, make, said = case[1], case[2], case[3]
    if name ~= "owned by nobody" or S.is_root() then
      local dir, file = supervise_dir()
      local ran = dir .. "/ran"
      write(file, string.format("io.open(%q, 'w'):close()\nreturn { services = {} }\n", ran))
      make(dir, file)
      local out, err = S.tmpname("out"), S.tmpname("err")
      local argv = lua_command { "supervise", file }
      for i, a in ipairs(argv) do argv[i] = "'" .. a .. "'" end
      local _, _, code = os.execute(table.concat(argv, " ") .. " >" .. out .. " 2>" .. err)
      lu.assertEquals(code, 1, name)
      local whose = said:find("directory", 1, true) and said:format(dir) .. ": another user could change the file"
        or said .. ": another user could change it"
      lu.assertEquals(S.read(err), "appstart: " .. file .. ": refused: " .. whose .. "\n", name)
      lu.assertNil(S.read(ran), name .. ": its code ran")
    end
  end
  S.assert_clean(before)
end

-- A reload from a file whose text is `broken`: said on stderr (`said` in
-- the line), nothing changed.
local function assert_a_broken_reload_changes_nothing(broken, said, make)
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  services_file(file, dir, { "a" })
  local err_path = dir .. "/stderr"
  appstart.run(function()
    local app = assert(appstart.start {
      argv = lua_command { "supervise", file }, stderr = err_path, ready_timeout = 20, log = S.quiet,
    })
    local a = S.pid_in(dir .. "/a")
    write(file, broken)
    if make then make(file) end
    local n = #app.status
    assert(app:kill("HUP"))
    lu.assertTrue(S.await_with_sleep(function()
      return (S.read(err_path) or ""):find("reload:", 1, true) ~= nil
    end, 10), S.read(err_path))
    lu.assertStrContains(S.read(err_path), said .. " (the services are left as they were)")
    lu.assertTrue(S.alive(a), "a runs on")
    lu.assertEquals(app.state, "ready", "READY=1 again after the reload")
    lu.assertEquals(#app.status, n)
    lu.assertEquals(app:terminate(10), { code = 0 })
    lu.assertFalse(S.alive(a))
  end)
  S.assert_clean(before)
end

function TC.test_a_reload_from_a_file_that_no_longer_loads_changes_nothing()
  assert_a_broken_reload_changes_nothing("return { services = ", "") -- cut short
end

-- A service that does not come up is named in what the command says (the
-- error named the program only, "fixture: app exited ...").
function TC.test_a_service_that_does_not_come_up_is_named()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  write(file, string.format("local F = %q\nreturn { services = {\n"
    .. "  broken = { argv = { F, 'exit=1' }, restart = 'no' },\n} }\n", F))
  local err_path = dir .. "/stderr"
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", file }, stderr = err_path, ready = "none",
      log = S.quiet })
    lu.assertTrue(S.await_with_sleep(function()
      return (S.read(err_path) or ""):find("not every service came up", 1, true) ~= nil
    end, 10), S.read(err_path))
    lu.assertStrContains(S.read(err_path), "appstart: not every service came up: broken: fixture: ")
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

-- (os.exit in the file: the command exited there, with its code, every
-- service running on, reparented, none ever stopped)
function TC.test_a_reload_from_a_file_that_calls_os_exit_changes_nothing()
  assert_a_broken_reload_changes_nothing("os.exit(3)", ": os.exit: the file may not end the command")
end

-- (a table whose __index raises: what the file returned, or its services
-- table, read by the reload; it ended the command, its services stopped.
-- A table with a metatable is an error, as for appstart.supervisor: the
-- services table's is said as that, before its __index is read)
function TC.test_a_reload_from_a_file_whose_tables_raise_changes_nothing()
  assert_a_broken_reload_changes_nothing("return setmetatable({}, { __index = function() error('idx') end })",
    ": idx")
  assert_a_broken_reload_changes_nothing(string.format("local F = %q\nreturn { services = setmetatable("
    .. "{ b = { argv = { F, 'pause' } } }, { __index = function(_, k) error('no such service: ' .. k, 2) end }) }\n",
    F), "field 'services': must be a plain table (it has a metatable)")
  assert_a_broken_reload_changes_nothing(string.format("local F = %q\nreturn setmetatable({ services = {"
    .. " a = { argv = { F, 'pause' } } } }, { __pairs = function() error('pairs') end })\n", F),
    "appstart.supervisor: options must be a plain table (it has a metatable)")
end

-- (its text the same: what changed is who may write it)
function TC.test_a_reload_from_a_file_another_user_could_change_changes_nothing()
  assert_a_broken_reload_changes_nothing(string.format("local F = %q\nreturn { services = {\n"
    .. "  a = { argv = { F, 'pause' } },\n} }\n", F), "it is writable by every user: another user could change it",
    function(file) os.execute("chmod 666 " .. file) end)
end

-- An error no tostring can show, raised by the file: it ended every
-- service, and the command with them (exit 1).
function TC.test_a_reload_from_a_file_that_raises_an_error_that_cannot_be_shown_changes_nothing()
  assert_a_broken_reload_changes_nothing(
    "error(setmetatable({}, { __tostring = function() return {} end }))",
    "an error that cannot be shown: '__tostring' must return a string")
end

-- The file's on_event is checked as appstart.supervisor checks it (a
-- function or nil): the command put its own in its place before the
-- check, and a string there was taken, then called at each event ("on_event
-- raised ... attempt to call a string value"). Refused at the start (exit
-- 1), and at a reload (nothing changed).
function TC.test_an_on_event_that_is_not_a_function_is_refused()
  local appstart = require "appstart"
  local dir = supervise_dir()
  local bad = string.format("local F = %q\nreturn { on_event = 'oops', services = {\n"
    .. "  a = { argv = { F, 'pause' }, ready = 'none' },\n} }\n", F)
  write(dir .. "/bad.lua", bad)
  local out = dir .. "/out"
  appstart.run(function()
    local app = assert(appstart.start { argv = lua_command { "supervise", dir .. "/bad.lua" }, ready = "none",
      stdout = out, stderr = out, log = S.quiet })
    local how = app:wait(10)
    if not how then app:terminate(1) end
    lu.assertEquals(how and how.code, 1, S.read(out))
  end)
  lu.assertStrContains(S.read(out), "appstart: " .. dir .. "/bad.lua: appstart.supervisor: field 'on_event':"
    .. " function expected, got string\n")
  assert_a_broken_reload_changes_nothing(bad, "appstart.supervisor: field 'on_event': function expected, got string")
end

function TC.test_supervise_usage_and_a_file_that_cannot_be_used()
  local appstart = require "appstart"
  local dir = supervise_dir()
  local function run(args)
    local out = dir .. "/out"
    local app = assert(appstart.start { argv = lua_command(args), ready = "none", stdout = out, stderr = out,
      log = S.quiet })
    return app:wait(20).code, S.read(out)
  end
  local code, out = run { "supervise" }
  lu.assertEquals(code, 2)
  lu.assertStrContains(out, "missing FILE.lua")
  code, out = run { "supervise", "--help" }
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "Usage: appstart supervise [options] [--] FILE.lua")
  code, out = run { "supervise", dir .. "/none.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "none.lua")
  -- after "--", FILE.lua, whatever its name begins with (as the command's
  -- COMMAND); "--" no option
  code, out = run { "supervise", "--", "-none.lua" }
  lu.assertEquals(code, 1, out)
  lu.assertStrContains(out, "-none.lua")
  code, out = run { "supervise", "--", "--help" }
  lu.assertEquals(code, 1, out)
  lu.assertStrContains(out, "--help")
  code, out = run { "supervise", "--", dir .. "/none.lua", "-q" }
  lu.assertEquals(code, 2, out)
  lu.assertStrContains(out, "one FILE.lua only")
  -- (-q and -v say opposite things: neither wins silently)
  code, out = run { "supervise", "-q", "-v", dir .. "/none.lua" }
  lu.assertEquals(code, 2)
  lu.assertStrContains(out, "--quiet and --verbose exclude each other")
  -- (an option given twice, as the command's: a usage error)
  for _, twice in ipairs { { "--json", "--json", "option '--json' given twice" },
    { "-q", "--quiet", "option '--quiet' given twice" }, { "-v", "-v", "option '--verbose' given twice" } } do
    code, out = run { "supervise", twice[1], twice[2], dir .. "/none.lua" }
    lu.assertEquals(code, 2, twice[3])
    lu.assertStrContains(out, twice[3])
  end
  write(dir .. "/bad.lua", "return { services = { a = { argv = { 'x' }, needs = { 'b' } } } }")
  code, out = run { "supervise", dir .. "/bad.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "'b'")
  -- the mistake is named as the file's, not at a line of appstart's
  write(dir .. "/cycle.lua", "return { services = { a = { argv = { 'x' }, needs = { 'b' } },"
    .. " b = { argv = { 'y' }, needs = { 'a' } } } }")
  code, out = run { "supervise", dir .. "/cycle.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "appstart: " .. dir .. "/cycle.lua: appstart.supervisor: dependency cycle: ")
  lu.assertNotStrContains(out, "supervise.lua:")
  -- what the command writes is escaped, a name of the user's in it too
  -- (a path, an option, a service's name in the file's mistake)
  code, out = run { "supervise", dir .. "/no\27[31m.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "appstart: " .. dir .. "/no\\x1b[31m.lua: No such file or directory\n")
  code, out = run { "supervise", "--x\27" }
  lu.assertEquals(code, 2)
  lu.assertStrContains(out, "appstart supervise: unknown option '--x\\x1b'\n")
  write(dir .. "/named.lua", "return { services = { ['a\\27b'] = { argv = { 'x' }, bogus = 1 } } }")
  code, out = run { "supervise", dir .. "/named.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "appstart: " .. dir .. "/named.lua: appstart.supervisor: service 'a\\x1bb':"
    .. " field 'bogus': unknown option\n")
  lu.assertNotStrContains(out, "\27")
  -- a newline or a tab in the path too (a line of its own, forged, after
  -- it), whatever the mistake: the file missing, not Lua, or its table's
  local forged = dir .. "/no\nappstart: all services up\t"
  code, out = run { "supervise", forged .. ".lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "appstart: " .. dir .. "/no\\x0aappstart: all services up\\x09.lua: No such file")
  write(forged .. "1.lua", "return {")
  write(forged .. "2.lua", "return { services = { a = { argv = { 'x' }, bogus = 1 } } }")
  for _, name in ipairs { "1.lua", "2.lua" } do
    code, out = run { "supervise", forged .. name }
    lu.assertEquals(code, 1)
    -- (Lua's own message names a long path by its end: "...sup-1/no...")
    lu.assertStrContains(out, "/no\\x0aappstart: all services up\\x09" .. name .. ":")
  end
  lu.assertNotStrContains(out, "\nappstart: all services up")
  -- and where a directory on the path is refused (the message names it)
  local open = dir .. "/o\npen"
  assert(os.execute("mkdir -m 777 " .. S.shell_quote(open)))
  write(open .. "/s.lua", "return { services = {} }")
  code, out = run { "supervise", open .. "/s.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "its directory " .. dir .. "/o\\x0apen is writable by every user")
  -- a symbolic link is never followed, and is said to be one (it was
  -- "Too many levels of symbolic links", ELOOP's words)
  write(dir .. "/real.lua", "return { services = {} }")
  assert(os.execute("ln -s real.lua " .. dir .. "/link.lua"))
  code, out = run { "supervise", dir .. "/link.lua" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "appstart: " .. dir .. "/link.lua: refused: it is a symbolic link, never followed"
    .. " (name the file itself)\n")
end

function TC.test_diff_sees_added_removed_and_changed_services()
  local supervise = require "appstart.supervise"
  local function f() return 1 end
  local g = load(string.dump(f)) -- the same code, another closure
  local old = { services = { a = { argv = { "x" }, on_exit = f }, b = { argv = { "y" } }, c = { argv = { "z" } } } }
  local new = { services = { a = { argv = { "x" }, on_exit = g }, b = { argv = { "y", "-v" } }, d = { argv = { "w" } } } }
  local added, removed, changed = supervise.diff(old, new)
  lu.assertEquals(added, { "d" })
  lu.assertEquals(removed, { "c" })
  lu.assertEquals(changed, { "b" })
  -- what names a changed or removed service goes and comes back with it
  old = { services = { a = { argv = { "x" } }, b = { argv = { "y" }, needs = { "a" } },
    c = { argv = { "z" }, after = { "b" } }, d = { argv = { "w" } }, e = { argv = { "v" }, needs = { "gone" } },
    gone = { argv = { "u" } } } }
  new = { services = { a = { argv = { "x", "-v" } }, b = { argv = { "y" }, needs = { "a" } },
    c = { argv = { "z" }, after = { "b" } }, d = { argv = { "w" } }, e = { argv = { "v" } } } }
  added, removed, changed = supervise.diff(old, new)
  lu.assertEquals(added, {})
  lu.assertEquals(removed, { "gone" })
  lu.assertEquals(changed, { "a", "b", "c", "e" })
  -- the file's log changed: each service that logs through it changed
  -- too (one with a log of its own did not)
  local function log1() end
  local function log2() return 2 end
  old = { log = log1, services = { a = { argv = { "x" } }, b = { argv = { "y" }, log = log1 } } }
  new = { log = log2, services = { a = { argv = { "x" } }, b = { argv = { "y" }, log = log1 } } }
  added, removed, changed = supervise.diff(old, new)
  lu.assertEquals({ added, removed, changed }, { {}, {}, { "a" } })
  new.log = load(string.dump(log1)) -- the same code
  lu.assertEquals({ supervise.diff(old, new) }, { {}, {}, {} })
end

-- A function is its code, wherever it stands in the file: one moved down
-- (a line added above it, lines past 127 too) is the same, one whose code
-- changed is not; what it captures is not compared (the old one's running
-- changes it: a counter); a table is compared with its metatable, a
-- number with its kind, and a cycle ends (it overflowed the stack).
function TC.test_diff_sees_a_function_by_its_code_not_its_line_nor_its_state()
  local supervise = require "appstart.supervise"
  local function services(text)
    return assert(load(text, "=services", "t"))()
  end
  local file = "local tries = 0\nreturn { services = {\n"
    .. "  a = { argv = { 'x' }, on_exit = function(app, how) return app, how, 'a', 1.5 end },\n"
    .. "  b = { argv = { 'y' }, ready = { check = function() tries = tries + 1 return true end } },\n"
    .. "  c = { argv = { 'z' }, on_exit = function() local function inner() return 2 end return inner end },\n"
    .. "  m = { argv = { 'm' }, on_exit = function(app)\n    local x = app\n\n    return x, tries\n  end } } }"
  local old = services(file)
  old.services.b.ready.check() -- (it ran: its count is 1, a new reading's 0)
  -- (a local added above moves the register where b's check finds
  -- `tries`, not its code)
  for _, above in ipairs { "", "-- a comment\n", string.rep("\n", 300), "local unrelated = 42\n" } do
    lu.assertEquals({ supervise.diff(old, services(above .. file)) }, { {}, {}, {} })
  end
  -- two helpers swapped: each function still calls the one it called
  local helpers = "\nreturn { services = { g = { argv = { 'g' }, on_exit = function() return one() end },\n"
    .. "  h = { argv = { 'h' }, on_exit = function() return two() end } } }"
  local one, two = "local function one() return 1 end\n", "local function two() return 2 end\n"
  lu.assertEquals({ supervise.diff(services(one .. two .. helpers), services(two .. one .. helpers)) }, { {}, {}, {} })
  -- but one that captures another variable has changed, though at the
  -- same place
  local pick = "local a, b = 1, 2\nreturn { services = { k = { argv = { 'k' }, on_exit = function() return %s end } } }"
  lu.assertEquals({ supervise.diff(services(pick:format("a")), services(pick:format("b"))) }, { {}, {}, { "k" } })
  local changed = file:gsub("return 2", "return 3")
  lu.assertEquals({ supervise.diff(old, services("\n" .. changed)) }, { {}, {}, { "c" } })
  -- tables: their metatables, numbers: their kind; cycles in both
  local function ports(port, limit)
    return { services = { d = { argv = { "w" }, env = setmetatable({}, { __index = { PORT = port } }) },
      e = { argv = { "v" }, kill_grace = limit } } }
  end
  lu.assertEquals({ supervise.diff(ports(80, 1), ports(81, 1.0)) }, { {}, {}, { "d", "e" } })
  local ring, loop = {}, {}
  ring.next = { next = ring }
  loop.next = loop
  old = { services = { f = { argv = { "u" }, ring = loop } } }
  lu.assertEquals({ supervise.diff(old, { services = { f = { argv = { "u" }, ring = ring } } }) }, { {}, {}, {} })
  lu.assertEquals({ supervise.diff(old, { services = { f = { argv = { "u" }, ring = { next = {} } } } }) },
    { {}, {}, { "f" } })
end

-- A SIGHUP applies the file's own fields too: its new on_event is called
-- from then on, its new parallel bounds the starts from then on, its new
-- log is the one of the services started from then on (a, restarted for
-- it, and those added).
function TC.test_a_reload_applies_the_files_on_event_parallel_and_log()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir, file = supervise_dir()
  local function with_fields(version, parallel, names)
    -- (ready after a moment: two starts at once would overlap)
    services_file(file, dir, names, 0.2)
    local text = S.read(file):gsub("^(.-)return { services = {", function(head)
      return head .. string.format("return { parallel = %d, on_event = function(name, state)\n"
        .. "  local f = io.open(%q, 'a') f:write(%q, ' ', name, ' ', state, '\\n') f:close() end,\n"
        .. "log = function(_, message)\n"
        .. "  local f = io.open(%q, 'a') f:write(%q, ' ', message, '\\n') f:close() end,\n"
        .. "services = {", parallel, dir .. "/events", version, dir .. "/log", version)
    end)
    write(file, text)
  end
  with_fields("v1", 8, { "a" })
  appstart.run(function()
    local app = assert(appstart.start {
      argv = lua_command { "supervise", "--quiet", file }, ready_timeout = 20, log = S.quiet,
    })
    -- b and c added with parallel = 1: one start in flight at a time
    with_fields("v2", 1, { "a", "b", "c" })
    lu.assertEquals(app:reload(), true)
    local events = S.read(dir .. "/events")
    lu.assertStrContains(events, "v1 a ready\n")
    lu.assertNotStrContains(events, "v1 b", "the old on_event after the reload:\n" .. events)
    lu.assertStrContains(events, "v2 b ready\n")
    lu.assertStrContains(events, "v2 c ready\n")
    local logged = S.read(dir .. "/log")
    for _, name in ipairs { "a", "b", "c" } do
      lu.assertNotNil(logged:match("v2 " .. name .. ": ready %(pid %d+%)"), "the new log:\n" .. logged)
    end
    lu.assertNotStrContains(logged, "v1 b", "the old log after the reload:\n" .. logged)
    -- one at a time: each started one (the two added, and a, restarted
    -- for its new log) ready before the next starts
    local order, want = {}, {}
    for name, state in events:gmatch("v2 (%a) (%a+)\n") do
      if state == "starting" or state == "ready" then order[#order + 1] = name .. ":" .. state end
    end
    for i = 1, #order, 2 do
      local name = order[i]:sub(1, 1)
      want[i], want[i + 1] = name .. ":starting", name .. ":ready"
    end
    lu.assertEquals(#order, 6, events)
    lu.assertEquals(order, want, events)
    lu.assertEquals(app:terminate(10), { code = 0 })
  end)
  S.assert_clean(before)
end

return { TestSupervisedDaemons = T, TestSuperviseCommand = TC }
