--- The sd_notify protocol and notify_access, with fixtures that send exactly
-- the datagram under test.
local lu = require "luaunit"
local S = require "support"

local F = S.fixture
local core = S.core

--- appstart.start with the notify protocol, short timeouts and a silent
-- logger unless given.
local start, fail_within = S.starter { ready = "notify", ready_timeout = 3, kill_grace = 0.5 }

--- A start of argv (with opts) that must fail with `code` within 2.5 s and
-- leave nothing behind once `cleanup` (optional) has run: see S.starter.
local function fail_case(argv, code, opts, cleanup)
  opts = opts or {}
  opts.argv = argv
  return fail_within(opts, code, 2.5, cleanup)
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_ready_1_starts_and_status_is_the_last_STATUS()
  local before = S.snapshot()
  local seen = {}
  local app = assert(start {
    argv = { F, "notify=STATUS=loading", "notify=STATUS=warming up", "notify=READY=1\\nSTATUS=serving", "pause" },
    on_status = function(a, text) seen[#seen + 1] = text; lu.assertEquals(a.state, "starting") end,
  })
  lu.assertEquals(seen, { "loading", "warming up", "serving" })
  lu.assertEquals(app.status, "serving")
  lu.assertEquals(app.name, "fixture")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- A READY=1 that came in time counts however long an on_status call
-- took: the step that read STATUS= ran the callback past ready_timeout and
-- then failed timeout ("no READY=1 came") with the READY=1 queued behind.
function T.test_a_ready_1_in_time_counts_after_a_slow_on_status()
  local before = S.snapshot()
  local took
  local app, err = start {
    argv = { F, "notify=STATUS=loading", "sleep=0.2", "notify=READY=1", "pause" }, ready_timeout = 1,
    on_status = function()
      local t0 = core.now()
      core.wait_readable(-1, 1.5) -- a slow callback, past the deadline
      took = core.now() - t0
    end,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took >= 1.5, took)
  lu.assertEquals(app.status, "loading")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- A descriptor passed along with a notify message (SCM_RIGHTS) is closed
-- without waiting: a tcp socket set to linger 20 s, its data never read,
-- held the launcher 20 s (every app and task of its loop with it). From
-- the app during its start, and after ready from a process not admitted.
function T.test_a_passed_socket_that_lingers_holds_nothing_up()
  local appstart = require "appstart"
  local before = S.snapshot()
  local t0 = core.now()
  local app, err = start { argv = { F, "passlinger=20", "notify=READY=1", "pause" } }
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(core.now() - t0 < 5, "ready after " .. (core.now() - t0) .. " s")
  app:terminate()
  local envfile = S.tmpname("env")
  local logged, log = S.recorder()
  appstart.run(function()
    local app2 = assert(appstart.start { argv = { F, "env=" .. envfile, "notify=READY=1", "pause" }, log = log })
    local socket = S.read(envfile):match("NOTIFY_SOCKET=([^\n]*)")
    assert(os.execute("NOTIFY_SOCKET=" .. socket .. " " .. F .. " passlinger=20"))
    local t1 = core.now()
    lu.assertTrue(S.await_with_sleep(function()
      return table.concat(logged, "\n"):find("not admitted", 1, true) ~= nil
    end, 30), table.concat(logged, "\n"))
    lu.assertTrue(core.now() - t1 < 5, "read after " .. (core.now() - t1) .. " s")
    app2:terminate()
  end)
  S.assert_clean(before)
end

-- A message may carry 253 descriptors: the launcher's read had room for
-- 16, and the kernel closed the rest itself, inside that read, a socket's
-- lingering still on. From the app, and from its child, not admitted.
function T.test_a_socket_that_lingers_passed_behind_16_descriptors_holds_nothing_up()
  local before = S.snapshot()
  local took, app, err = S.timed(start, { argv = { F, "passlinger=20:16", "notify=READY=1", "pause" },
    ready_timeout = 60 })
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  app:terminate()
  local sent = S.tmpname("sent")
  took, app, err = S.timed(start, { notify_access = "main", ready_timeout = 60,
    argv = { F, "fork", "passlinger=20:252", "pidfile=" .. sent, "|", "waitfile=" .. sent, "notify=READY=1",
      "pause" } })
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  app:terminate()
  S.assert_clean(before)
end

--- The start of an app through a helper: helper (a list of the fixture's
-- actions) forks the app and reports its pid, so what the two send before
-- the report is all queued when the launcher begins to read (it reads
-- the channels from then on). Returns the seconds it took, and what it
-- returned.
local function start_through(helper, opts)
  table.insert(helper, 1, F)
  opts.helper, opts.argv, opts.pid_timeout = helper, { "pause" }, 3
  return S.timed(start, opts)
end

-- Descriptors still queued when the launcher closed the notify socket at
-- ready, or the ready channel, were closed by the kernel with a socket's
-- lingering on: READY=1 (or the ready line) and, behind it, a socket that
-- lingers 20 s held the start that long. (Each socket's peer is held, and
-- never read, by the app that passed it, which pauses: a peer closed
-- unread resets the connection, and nothing lingers.)
function T.test_a_socket_that_lingers_queued_behind_READY_holds_nothing_up()
  local before = S.snapshot()
  local sent = S.tmpname("sent")
  local took, app, err = start_through({ "fork", "notify=READY=1", "passlinger=20", "pidfile=" .. sent, "pause",
    "|", "waitfile=" .. sent, "int32=3:child", "exit=0" }, {})
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  app:terminate()
  S.assert_clean(before)
end

-- On the fd protocol's ready channel, a socket that lingers passed with
-- a byte sent out of band (MSG_OOB), then the ready line: reading past
-- that byte had the kernel close the socket inside the launcher's read,
-- lingering on (20 s). Out-of-band data is read inline, its descriptors
-- with it.
function T.test_a_socket_that_lingers_passed_out_of_band_holds_nothing_up()
  local before = S.snapshot()
  local took, app, err = S.timed(start, { argv = { F, "passoob=20:3", "line=3:up", "pause" }, ready = "fd",
    ready_timeout = 60 })
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  lu.assertEquals(app.name, "xup")
  app:terminate()
  S.assert_clean(before)
end

-- On the fd protocol's ready channel, a stream, the queue behind the
-- ready line may hold thousands of messages, each with a descriptor (as
-- many as the sender's buffer takes): the launcher read 1024 of them at
-- its close, and left the rest to the kernel, a socket that lingers 20 s
-- among them, closed inside the launcher's close. Every one is read.
function T.test_a_socket_that_lingers_behind_thousands_of_passed_descriptors_holds_nothing_up()
  local before = S.snapshot()
  local sent = S.tmpname("sent")
  local took, app, err = start_through({ "fork", "line=4:up", "passmany=1500:4", "passlinger=20:0:4",
    "pidfile=" .. sent, "pause", "|", "waitfile=" .. sent, "int32=3:child", "exit=0" }, { ready = "fd",
    ready_timeout = 60 })
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  app:terminate()
  S.assert_clean(before)
end

--- A helper that writes `first` to the ready channel (fd 4) and then has
-- its child, the app, pass a socket that lingers 20 s there (from another
-- process: the kernel never joins two writers' bytes in one read, so what
-- the helper wrote is read alone).
local function behind(first)
  local said, sent = S.tmpname("said"), S.tmpname("sent")
  return { "fork", "waitfile=" .. said, "passlinger=20:0:4", "pidfile=" .. sent, "pause", "|",
    first, "pidfile=" .. said, "waitfile=" .. sent, "int32=3:child", "exit=0" }
end

function T.test_a_socket_that_lingers_queued_behind_the_ready_line_holds_nothing_up()
  local before = S.snapshot()
  local took, app, err = start_through(behind("line=4:name"), { ready = "fd" })
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "name")
  lu.assertTrue(took < 5, "ready after " .. took .. " s")
  app:terminate()
  S.assert_clean(before)
end

-- (the channel closed at a failure: a line too long)
function T.test_a_socket_that_lingers_queued_on_a_failed_starts_channel_holds_nothing_up()
  local before = S.snapshot()
  local took, app, err = start_through(behind("bytes=4:5000:x"), { ready = "fd" })
  lu.assertNil(app, "a line too long")
  lu.assertEquals(err.code, "protocol", tostring(err))
  lu.assertTrue(took < 5, "failed after " .. took .. " s")
  S.assert_clean(before)
end

-- (the notify socket a loop kept after ready, closed as appstart.run
-- returns with the app still running: the run's function waits for the
-- app's message without a step of the loop, so nothing has read it)
function T.test_a_socket_that_lingers_queued_as_a_run_returns_holds_nothing_up()
  local appstart = require "appstart"
  local before = S.snapshot()
  local go, sent = S.tmpname("go"), S.tmpname("sent")
  local app
  local took = S.timed(appstart.run, function()
    app = assert(start { argv = { F, "notify=READY=1", "waitfile=" .. go, "passlinger=20", "pidfile=" .. sent,
      "pause" } })
    S.touch(go)
    assert(os.execute("timeout 10 sh -c 'until [ -e \"$0\" ]; do sleep 0.01; done' " .. S.shell_quote(sent)))
  end)
  lu.assertTrue(took < 5, "the run returned after " .. took .. " s")
  app:terminate()
  S.assert_clean(before)
end

function T.test_unknown_keys_are_ignored()
  local app = assert(start { argv = { F, "notify=FDSTORE=1\\nWATCHDOG=1\\nX_CUSTOM=anything=at all\\nREADY=1", "pause" } })
  lu.assertEquals(app:terminate(), { signal = 15 })
end

function T.test_MAINPID_that_agrees_is_accepted()
  -- sh execs the fixture, so $$ is the fixture's pid
  local app, err = start { argv = { "/bin/sh", "-c", 'exec "$0" "notify=MAINPID=$$" notify=READY=1 pause', F } }
  lu.assertNotNil(app, tostring(err))
  app:terminate()
end

function T.test_MAINPID_lie_is_killed_with_pid_mismatch()
  -- the fixture does not expand values in TEXT: claim pid 1 outright
  local err = fail_case({ F, "notify=MAINPID=1\\nREADY=1", "ignore=TERM", "pause" }, "pid_mismatch")
  lu.assertEquals(err.status, { signal = 9 }, "killed, not asked")
end

function T.test_MAINPID_lie_through_a_helper_is_killed()
  -- the helper's child is the app; it claims another pid
  local err = fail_case({ "notify=MAINPID=12345\\nREADY=1", "pause", "|", "int32=3:child", "exit=0" },
    "pid_mismatch", { helper = { F, "fork" } })
  lu.assertEquals(err.code, "pid_mismatch")
end

function T.test_EXTEND_TIMEOUT_USEC_pushes_the_deadline()
  local before = S.snapshot()
  local app, err = start {
    argv = { F, "notify=EXTEND_TIMEOUT_USEC=3000000", "sleep=0.6", "notify=READY=1", "pause" },
    ready_timeout = 0.3,
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(app.ready_after >= 0.6)
  app:terminate()
  S.assert_clean(before)
end

-- An EXTEND_TIMEOUT_USEC= sent while the helper still runs (the pid
-- phase) never shortens the ready phase's deadline, ready_timeout from
-- the helper's report (a 1 µs one took it back to ready_timeout from when
-- it came: a timeout, the app about to say READY=1), and a longer one is
-- kept for it.
function T.test_an_extend_before_the_helper_has_ended_never_shortens_the_deadline()
  local before = S.snapshot()
  local function with(extend, ready_at, helper_for)
    local helper = { F, "fork", "notify=EXTEND_TIMEOUT_USEC=" .. extend, "sleep=" .. ready_at, "notify=READY=1", "pause",
      "|", "int32=3:child", "sleep=" .. helper_for, "exit=0" }
    local app, err = start { helper = helper, argv = { "pause" }, ready_timeout = 1, pid_timeout = 5 }
    if app then app:terminate() end
    return app and "ready" or err.code .. ": " .. err.message
  end
  -- (ready 0.7 s in, the deadline 1 s in, the helper's exit 1.2 s in)
  lu.assertEquals(with(1, 0.7, 1.2), "ready")
  -- (ready 2 s in, past the ready phase's own 1.3 s, within 2.5 s)
  lu.assertEquals(with(2500000, 2, 0.3), "ready")
  S.assert_clean(before)
end

-- A start that EXTEND_TIMEOUT_USEC= extended and that times out all the
-- same says for how long it waited and why: "within 0.2 s" (the
-- ready_timeout) was not what happened.
function T.test_a_timeout_after_an_extend_names_the_time_it_got()
  local before = S.snapshot()
  local t0 = S.core.now()
  local app, err = start { argv = { F, "notify=EXTEND_TIMEOUT_USEC=500000", "pause" }, ready_timeout = 0.2 }
  local took = S.core.now() - t0
  lu.assertNil(app)
  lu.assertEquals(err.code, "timeout")
  local within = tonumber(tostring(err):match("^fixture: app not ready within (%d+%.%d+) s of its start %(ready_timeout = 0%.2, "
    .. "which its EXTEND_TIMEOUT_USEC= extended%): no READY=1 came on its notify socket$"))
  lu.assertNotNil(within, tostring(err))
  lu.assertTrue(within >= 0.5 and within <= took + 0.01, within .. " s said, " .. took .. " s waited")
  S.assert_clean(before)
end

-- Each EXTEND_TIMEOUT_USEC= was a debug line: a flood of them, as many
-- lines. Once a second, as every line about what the app sends.
function T.test_a_flood_of_EXTEND_TIMEOUT_USEC_is_logged_once_a_second()
  local before = S.snapshot()
  local logged, log = S.recorder()
  local app, err = start {
    argv = { F, "repeat=2000:0:EXTEND_TIMEOUT_USEC=3000000", "notify=READY=1", "pause" }, log = log,
  }
  lu.assertNotNil(app, tostring(err))
  local n = 0
  for _, line in ipairs(logged) do
    if line:find("ready timeout extended", 1, true) then n = n + 1 end
  end
  lu.assertTrue(n >= 1 and n <= 1 + app.ready_after, n .. " lines in " .. app.ready_after .. " s")
  app:terminate()
  S.assert_clean(before)
end

function T.test_without_EXTEND_the_same_app_times_out()
  local err, took = fail_case({ F, "sleep=0.6", "notify=READY=1", "pause" }, "timeout", { ready_timeout = 0.3 })
  lu.assertEquals(err.status, { signal = 15 })
  lu.assertTrue(took >= 0.3)
end

function T.test_ERRNO_is_reported_when_the_app_then_dies()
  local err = fail_case({ F, "notify=ERRNO=5\\nSTATUS=disk error", "exit=1" }, "died")
  lu.assertEquals(err.errno, 5)
  lu.assertEquals(err.status, { code = 1 })
end

function T.test_STOPPING_is_logged()
  local logged, log = S.recorder()
  fail_case({ F, "notify=STOPPING=1", "exit=0" }, "died", { log = log })
  lu.assertStrContains(table.concat(logged, "\n"), "STOPPING=1")
end

-- As with systemd, STOPPING=1 wins over a READY=1 in the same datagram,
-- and a dying app is not made ready by a later one: the start then fails
-- as the app ends
function T.test_READY_after_or_with_STOPPING_is_not_believed()
  for _, argv in ipairs {
    { F, "notify=READY=1\nSTOPPING=1", "sleep=0.1", "exit=0" },
    { F, "notify=STOPPING=1", "notify=READY=1", "sleep=0.1", "exit=0" },
  } do
    local err = fail_case(argv, "died")
    lu.assertEquals(err.status, { code = 0 })
  end
end

-- one that said STOPPING=1 and lingers times out saying so, not that no
-- READY=1 came (its READY=1 after it, if any, did not count)
function T.test_a_timeout_after_STOPPING_says_so()
  for _, argv in ipairs {
    { F, "notify=STOPPING=1", "notify=READY=1", "pause" },
    { F, "notify=STOPPING=1", "pause" },
  } do
    local before = S.snapshot()
    local err = fail_case(argv, "timeout", { ready_timeout = 0.3 })
    lu.assertStrContains(err.message, "it said STOPPING=1 on its notify socket (no READY=1 counts after that)")
    lu.assertNotStrContains(err.message, "no READY=1 came")
    lu.assertEquals(err.status, { signal = 15 })
    S.assert_clean(before)
  end
end

function T.test_malformed_datagrams_break_the_protocol_and_the_app_is_terminated()
  for _, text in ipairs { "garbage", "READY=2", "MAINPID=abc", "MAINPID=0", "EXTEND_TIMEOUT_USEC=-1", "=1",
                         "READY=1\\0", "ERRNO=99999999999" } do
    local err = fail_case({ F, "notify=" .. text, "pause" }, "protocol")
    lu.assertEquals(err.status, { signal = 15 }, text)
  end
end

function T.test_oversized_datagram_breaks_the_protocol()
  local big = string.rep("x", 5000)
  fail_case({ F, "notify=STATUS=" .. big, "pause" }, "protocol")
end

function T.test_a_flood_cannot_stall_the_launcher()
  local before = S.snapshot()
  local n = 0
  local took, app, err = S.timed(start, {
    argv = { F, "notifyflood=20000:STATUS=flood", "notify=READY=1", "pause" },
    on_status = function() n = n + 1 end,
  })
  lu.assertNotNil(app, tostring(err))
  lu.assertTrue(took < 2, "ready in " .. took .. " s despite the flood")
  lu.assertTrue(n >= 1)
  app:terminate()
  S.assert_clean(before)
end

function T.test_an_inherited_NOTIFY_SOCKET_never_reaches_an_fd_protocol_app()
  local envfile = S.tmpname("env")
  local app = assert(start { argv = { F, "env=" .. envfile, "line=3:x", "pause" }, ready = "fd",
    env = { NOTIFY_SOCKET = "/run/systemd/notify", KEEP = "1" } })
  local env = S.read(envfile)
  lu.assertStrContains(env, "KEEP=1")
  lu.assertNotStrContains(env, "NOTIFY_SOCKET")
  app:terminate()
end

-- notify_access: who may say READY=1

local function forked_ready(access, ready)
  -- the app forks; only its child reports
  if ready == "fd" then
    return { argv = { F, "fork", "line=3:from-child", "pause", "|", "pause" }, ready = "fd",
      notify_access = access, ready_timeout = 0.5 }
  end
  return { argv = { F, "fork", "notify=READY=1", "pause", "|", "pause" },
    notify_access = access, ready_timeout = 0.5 }
end

function T.test_main_ignores_a_forked_child_and_logs_it()
  for _, proto in ipairs { "notify", "fd" } do
    local logged, log = S.recorder()
    local opts = forked_ready("main", proto)
    opts.log = log
    -- a process the app forked is the app's, not the launcher's: appstart
    -- terminates the app it knows; the test cleans up the rest
    local err = fail_case(opts.argv, "timeout", opts, S.kill_strays)
    lu.assertEquals(err.code, "timeout", proto)
    lu.assertStrContains(table.concat(logged, "\n"), "ignored a")
    S.kill_strays()
  end
end

function T.test_all_admits_a_forked_child()
  for _, proto in ipairs { "notify", "fd" } do
    local opts = forked_ready("all", proto)
    local app, err = start(opts)
    lu.assertNotNil(app, proto .. ": " .. tostring(err))
    app:terminate()
    S.kill_strays()
  end
end

-- argv of an app (a shell) whose descendant `depth` generations down
-- runs F with `actions` (a chain of subshells, each waiting for the next)
local function chain(depth, ...)
  return { "sh", "-c", 'F=$1; shift; f() { n=$1; shift; if [ "$n" -gt 0 ]; then (f $((n - 1)) "$@"); '
    .. 'else exec "$F" "$@"; fi; }; f "$@"', "sh", F, tostring(depth), ... }
end

-- notify_access = "all" admits a sender 64 generations below the app at
-- most: its descent is read for every datagram, one /proc file per
-- generation, so a flood from thousands of generations down held the
-- launcher's loop for a second at each wake-up. Before ready and after.
function T.test_all_admits_a_sender_64_generations_down_at_most()
  local appstart = require "appstart"
  local app, err = start { argv = chain(64, "notify=READY=1", "pause"), notify_access = "all", kill_mode = "group" }
  lu.assertNotNil(app, tostring(err))
  app:terminate()
  local logged, log = S.recorder()
  err = fail_case(chain(65, "notify=READY=1", "pause"), "timeout",
    { notify_access = "all", kill_mode = "group", log = log, ready_timeout = 0.5 })
  lu.assertEquals(err.code, "timeout")
  lu.assertStrContains(table.concat(logged, "\n"), "ignored a notify datagram")
  -- after ready: the app itself says READY=1, then becomes the shell
  for _, depth in ipairs { 64, 65 } do
    local statuses, lines, log2 = {}, S.recorder()
    appstart.run(function()
      local a = assert(start { argv = { F, "notify=READY=1", "exec", table.unpack(chain(depth, "notify=STATUS=deep",
        "pause")) }, notify_access = "all", kill_mode = "group", log = log2,
        on_status = function(_, text) statuses[#statuses + 1] = text end })
      lu.assertTrue(S.await_with_sleep(function()
        return #statuses > 0 or table.concat(lines, "\n"):find("from processes not admitted", 1, true)
      end, 10), depth .. ": neither admitted nor refused")
      a:terminate()
    end)
    lu.assertEquals(statuses, depth == 64 and { "deep" } or {}, depth)
  end
  S.kill_strays()
end

local function helper_says_ready(access)
  -- a helper that itself reports readiness (as some forking daemons do from
  -- the parent), then reports its child's pid
  return { helper = { F, "fork", "pause", "|", "notify=READY=1", "int32=3:child", "exit=0" },
    argv = { "pause" }, notify_access = access, ready_timeout = 0.5, pid_timeout = 2 }
end

function T.test_exec_admits_the_helper()
  local opts = helper_says_ready("exec")
  local app, err = start(opts)
  lu.assertNotNil(app, tostring(err))
  app:terminate()
  S.kill_strays()
end

function T.test_main_refuses_the_helper()
  local opts = helper_says_ready("main")
  local logged, log = S.recorder()
  opts.log = log
  local err = fail_case(opts.argv, "timeout", opts)
  lu.assertStrContains(table.concat(logged, "\n"), "ignored a notify datagram")
  lu.assertEquals(err.code, "timeout")
end

function T.test_fallback_without_pidfd_notices_death_during_notify_wait()
  S.testing.use_pidfd(false)
  local ok, e = pcall(fail_case, { F, "sleep=0.05", "exit=4" }, "died")
  S.testing.use_pidfd(true)
  assert(ok, e)
end

-- Many datagrams queued before the launcher reads them (a helper that
-- reports late; systemd's queue length, 512, in a network namespace of
-- the child's own, this host's being 10): a READY=1 behind more than one
-- step's reads, sent before the app exited, still counts; an
-- EXTEND_TIMEOUT_USEC= behind events that fill the queue of a step is not
-- dropped; an EXTEND_TIMEOUT_USEC= that comes before the ready phase (the
-- helper still running) never shortens ready_timeout.
function T.test_what_a_flood_queued_before_the_launcher_read_holds_still_counts()
  lu.skipIf(not S.can_unshare_net(), "needs unshare(1) and a network namespace of its own (root)")
  local out = S.run_child({ dgram_qlen = 512 }, "notify_a_flood_queued_before_the_launcher_reads")
  lu.assertStrContains(out, "ready behind 100\tready\t")
  lu.assertStrContains(out, "extend behind 80 events\tready\t")
  lu.assertStrContains(out, "a short extend\tready\t")
  lu.assertStrContains(out, "the helper's ready behind 100\tready\t")
  lu.assertStrContains(out, "left\t\n")
end

-- A READY=1 sent in time behind more datagrams than two steps read (an
-- on_status call held the launcher past ready_timeout; systemd's queue
-- length, 512, in a network namespace of the child's own): all that is
-- queued is read before a timeout verdict, and the READY=1 counts (the
-- step after the call read a batch, and failed timeout, "no READY=1
-- came").
function T.test_a_ready_1_behind_a_flood_counts_after_a_busy_on_status()
  lu.skipIf(not S.can_unshare_net(), "needs unshare(1) and a network namespace of its own (root)")
  local out = S.run_child({ dgram_qlen = 512, timeout = 30 }, "notify_a_ready_behind_a_flood_past_a_busy_on_status",
    "start", S.tmpname("sent"))
  lu.assertStrContains(out, "start\tready\t\n")
  lu.assertNotNil(out:match("\nbusy\t%d"), out)
  lu.assertStrContains(out, "left\t\n")
end

-- After ready, a MAINPID= may name a process no older than the app, not
-- than the main of the moment: each move made the mover's start time the
-- bound, so an app that moved its main to its child and had the child
-- hand it back (MAINPID= of the app's first process) was refused "started
-- before the app", and the child's end then ended the app, its group sent
-- SIGTERM, its first process running still.
function T.test_a_main_handed_back_to_the_apps_first_process_is_taken()
  local appstart = require "appstart"
  local before = S.snapshot()
  local dir = S.tmpname("handback")
  assert(os.execute("mkdir " .. dir))
  local logged, log = S.recorder()
  local first, child, moved, back, how
  appstart.run(function()
    local app = assert(start { argv = { F, "notify=READY=1", "fork", "pidfile=" .. dir .. "/child",
      "waitfile=" .. dir .. "/back", "mainpid=parent", "waitfile=" .. dir .. "/end", "exit=0", "|",
      "mainpid=child", "pause" }, kill_mode = "group", log = log })
    first = app.pid
    lu.assertTrue(S.await_with_sleep(function() return S.read(dir .. "/child") and app.pid ~= first end, 5),
      "the main never moved: " .. table.concat(logged, "\n"))
    child, moved = S.pid_in(dir .. "/child"), app.pid
    assert(os.execute("touch " .. dir .. "/back"))
    S.await_with_sleep(function() return app.pid == first end, 5)
    back = app.pid
    -- the child ends: the app, its main its first process again, goes on
    assert(os.execute("touch " .. dir .. "/end"))
    lu.assertTrue(S.await_gone(child, 5))
    how = app:wait(0.5)
    app:terminate()
  end)
  lu.assertEquals(moved, child)
  lu.assertEquals(back, first, "the hand-back was refused: " .. table.concat(logged, "\n"))
  lu.assertNil(how, "the app ended with the child: " .. tostring(how))
  lu.assertNotStrContains(table.concat(logged, "\n"), "ignored MAINPID=")
  -- (the first process, the main again, reaped as the app's: no second
  -- handle of it left watched to its end, its pidfd and its reap held
  -- past the run)
  local clean, err = pcall(S.assert_clean, before)
  S.kill_strays()
  if not clean then error(err, 0) end
end

-- A main that said READY=1 and was reaped before the launcher took its
-- notify socket (the launcher busy meanwhile; with kill_mode = "cgroup",
-- what it left keeps the app on) was believed for good: its start time
-- could not be read then, and whoever took its number later was the
-- main, its STATUS= the app's, its WATCHDOG=trigger ending the app. (The
-- launcher now holds its child's zombie until its socket has been read:
-- hold_leaders(false) has it reaped at once, as another wait of the
-- process would reap it, a waitpid(-1) elsewhere.) A pid namespace of its
-- own, whose next pid the child sets; a script of the spec's own, written
-- where the child runs it.
local REUSED_MAIN_CHILD = [==[
local appstart = require "appstart"
local K = require "childkit"
local core = require "appstart.core"
require("appstart.testing").hold_leaders(false)
local dir, F = arg[1], K.fixture()
local logged = {}
appstart.run(function()
  local h = appstart.begin { argv = { F, "fork", "env=" .. dir .. "/env", "waitfile=" .. dir .. "/end", "exit=0", "|",
    "pidfile=" .. dir .. "/main", "notify=READY=1", "exit=0" }, ready = "notify", kill_mode = "cgroup",
    notify_access = "main", kill_grace = 0.5, log = function(_, m) logged[#logged + 1] = m end }
  if h.err and h.err.code == "spawn" then print("nocgroup", h.err.message) return end
  -- the launcher busy (no step) until the main has said READY=1 and ended
  K.await_path(dir .. "/main")
  K.await_path(dir .. "/env")
  local main = tonumber(K.read(dir .. "/main"))
  while K.state(main) ~= "Z" do core.wait_readable(-1, 0.005) end
  local app, err = h:wait()
  if not app then print("failed", err.code, err.message) return end
  print("main", main, app.pid, tostring(K.state(main)), app.state)
  local taker = io.open(dir .. "/taker.sh", "w")
  taker:write(K.SH_TAKE_PID .. [=[
    d=$1 main=$2 fixture=$3
    export NOTIFY_SOCKET="$(sed -n 's/^NOTIFY_SOCKET=//p' "$d/env")"
    export TAKE='exec "$0" notify=STATUS=impostor notify=WATCHDOG=trigger pidfile="$1/taker" pause'
    take_pid "$main" "$fixture" "$d" &
    while [ ! -e "$d/taker" ]; do sleep 0.01; done
  ]=])
  taker:close()
  assert(os.execute(string.format("sh %s/taker.sh %s %d %s", dir, dir, main, F)))
  local taken = tonumber(K.read(dir .. "/taker"))
  print("taker", taken)
  -- the loop reads what came (the taker still holds the number)
  K.await(function()
    return app.state ~= "ready" or table.concat(logged, "\n"):find("from pid " .. taken, 1, true)
  end, "the taker's datagrams read")
  appstart.sleep(0.2)
  print("after", tostring(app.status), app.state)
  print("log", table.concat(logged, "|"))
  os.execute("kill -KILL " .. taken)
  os.execute("touch " .. dir .. "/end")
  print("ended", tostring(app:wait(5)))
end)
]==]

function T.test_whoever_takes_the_number_of_a_main_reaped_before_ready_was_taken_is_not_the_main()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("reaped")
  assert(os.execute("mkdir " .. dir))
  local script = dir .. "/child.lua"
  local f = assert(io.open(script, "w"))
  f:write(REUSED_MAIN_CHILD)
  f:close()
  local out = S.run_child({ pidns = true, timeout = 60 }, script, dir)
  lu.skipIf(out:find("^nocgroup"), "cgroup v2 not usable here: " .. out)
  local main, pid, state = out:match("main\t(%d+)\t(%d+)\t(%S+)\tready\n")
  lu.assertNotNil(main, out)
  lu.assertEquals(pid, main)
  lu.assertEquals(state, "nil", "the main was reaped before its socket was taken: " .. out)
  lu.assertEquals(out:match("taker\t(%d+)"), main, "the taker took the main's number: " .. out)
  lu.assertStrContains(out, "after\tnil\tready\n", false, "its STATUS= and WATCHDOG=trigger acted on: " .. out)
  lu.assertStrContains(out, "from pid " .. main, false, "refused, and logged: " .. out)
  lu.assertNotStrContains(out, "watchdog")
  lu.assertStrContains(out, "ended\texited")
end

-- The app's last words (a STATUS= sent just before it exited, read at
-- its end) are read while its zombie still holds its number, which is
-- what a datagram's sender is known by. (Reaped first, as it was, the
-- number was free for that read: a process that took it, sent and was
-- gone by then would have passed for the app.)
function T.test_an_apps_last_words_are_read_before_it_is_reaped()
  local appstart = require "appstart"
  local before = S.snapshot()
  local go = S.tmpname("go")
  local state_then
  appstart.run(function()
    local app
    -- (its log line is said as the datagram is read; an on_status call
    -- comes later, in a task of its own)
    app = assert(start {
      argv = { F, "notify=READY=1", "waitfile=" .. go, "notify=STATUS=last", "exit=3" },
      log = function(_, message)
        if message:find("status: last", 1, true) then state_then = (S.proc_status(app.pid) or {}).State or "reaped" end
      end,
    })
    -- the loop held (this task does not yield) until the app has sent
    -- and exited: its end is seen by app:wait's look first
    S.touch(go)
    local deadline = core.now() + 20
    while ((S.proc_status(app.pid) or {}).State or ""):sub(1, 1) ~= "Z" and core.now() < deadline do
      core.wait_readable(-1, 0.005)
    end
    lu.assertEquals(app:wait(10), { code = 3 })
    lu.assertEquals(app.status, "last")
  end)
  lu.assertStrContains(state_then, "Z (zombie)")
  S.assert_clean(before)
end

return { TestNotify = T }
