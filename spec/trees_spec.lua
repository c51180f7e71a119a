--- Process trees: kill_mode "group" (a session and process group of the
-- app's own) and "cgroup" (a cgroup v2 directory joined before the exec):
-- what terminate, kill and a failed start reach, how.left, the cgroup's
-- life and removal.
local lu = require "luaunit"
local S = require "support"

local F = S.fixture
local core = S.core
local now = core.now

local start, fail_within = S.starter { ready = "notify", ready_timeout = 3, kill_grace = 0.3 }

-- The pids a fixture and its children wrote with pidfile= (each file once
-- it is there).
local function pids_in(...)
  local out = {}
  for i, path in ipairs { ... } do out[i] = S.pid_in(path) end
  return out
end

local function assert_gone(pids, msg)
  for _, pid in ipairs(pids) do
    lu.assertTrue(S.await_gone(pid, 3), (msg or "") .. ": pid " .. pid .. " still runs")
  end
end

local function kill(pids)
  for _, pid in ipairs(pids) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
end

local cgroup_mount, my_cgroups, own_cgroup_dir = S.cgroup_mount, S.my_cgroups, S.own_cgroup_dir

-- /proc/PID/stat's state and num_threads (nil, 0 once pid is gone)
local function state_threads(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  local stat = f and f:read("a") or ""
  if f then f:close() end
  local state, threads = stat:match("%) (%S) " .. string.rep("%S+ ", 16) .. "(%d+) ")
  return state, tonumber(threads) or 0
end

-- A fixture that forks a member whose main thread exits (its other thread
-- runs on: a "zombie" in /proc/PID/stat), once that is so: its pid.
local function member_with_its_main_thread_gone(kill_mode, grace)
  local child, tid = S.tmpname("pid"), S.tmpname("tid")
  local app = assert(start { kill_mode = kill_mode, kill_grace = grace, argv = { F,
    "fork", "thread=" .. tid, "pidfile=" .. child, "mainexit", "|", "notify=READY=1", "pause" } })
  local pid = S.pid_in(child)
  lu.assertTrue(S.await_with_sleep(function() return state_threads(pid) == "Z" end, 3), "its main thread exits")
  lu.assertEquals(select(2, state_threads(pid)), 2, "its other thread runs on")
  return app, pid
end

local function await_ended(pid)
  return S.await_with_sleep(function() local st, n = state_threads(pid); return not st or (st == "Z" and n <= 1) end, 3)
end

-------------------------------------------------------------------------------
-- group

local TG = {}

function TG.tearDown() S.kill_strays() end

function TG.test_terminate_reaches_the_forked_children_and_counts_them()
  local before = S.snapshot()
  local a, b, c = S.tmpname("pid"), S.tmpname("pid"), S.tmpname("pid")
  -- a child that ignores SIGTERM, one that leaves the group (setsid)
  local app = assert(start { kill_mode = "group", argv = { F,
    "fork", "ignore=TERM", "pidfile=" .. a, "pause", "|",
    "fork", "setsid", "pidfile=" .. b, "pause", "|",
    "pidfile=" .. c, "notify=READY=1", "pause" } })
  local pa, pb = table.unpack(pids_in(a, b, c))
  local stat = S.read("/proc/" .. app.pid .. "/stat")
  lu.assertEquals(stat:match("%) %S+ %d+ (%d+) (%d+)"), tostring(app.pid), "the app leads a group of its own")
  local t0 = now()
  local how = app:terminate()
  local took = now() - t0
  lu.assertEquals(how.signal, 15)
  lu.assertEquals(how.left, 1, "the child in its group, not the one that left it")
  lu.assertStrContains(tostring(how), "; 1 other process of its group or cgroup signalled")
  lu.assertTrue(took >= 0.25, "the TERM-deaf child got SIGKILL after kill_grace: " .. took)
  assert_gone({ pa }, "group member")
  lu.assertTrue(S.alive(pb), "a child that left the group is beyond kill_mode = 'group'")
  kill { pb }
  assert_gone({ pb }, "the child that left the group")
  S.assert_clean(before)
end

-- The group an app left, emptied, and its number taken by an unrelated
-- session's leader (the app's pid, recycled): the SIGKILL due to what the
-- app left (its kill_grace is over) never reaches the new group's
-- members (it killed them: they passed for members, in the group and
-- younger than the app).
function TG.test_a_group_recycled_after_the_app_is_never_signalled()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local dir = S.tmpname("recycled")
  assert(os.execute("mkdir " .. dir))
  local out = S.run_child({ pidns = true, timeout = 30, env = { D = dir } }, "trees_a_recycled_group_is_never_signalled")
  lu.assertStrMatches(out, ".*recycled\t%d+\n.*")
  lu.assertStrContains(out, "child alive\tyes\n")
end

-- An app whose main process ended by itself, leaving a child in its
-- group, looked at by a stop: the child had its SIGTERM, and how.left
-- counts it (it said 0, where a cgroup's said 1).
function TG.test_how_left_counts_what_a_main_that_ended_left_in_its_group()
  local before = S.snapshot()
  local child, gone = S.tmpname("child"), S.tmpname("gone")
  local app = assert(start { kill_mode = "group", kill_grace = 1, argv = { F, "fork", "pidfile=" .. child, "pause", "|",
    "waitfile=" .. child, "notify=READY=1", "pidfile=" .. gone, "exit=0" } })
  local pid = S.pid_in(child)
  lu.assertTrue(S.await_gone(S.pid_in(gone), 3))
  local how = app:terminate()
  lu.assertEquals(how, { code = 0, left = 1 })
  assert_gone({ pid }, "what the main left")
  S.assert_clean(before)
end

function TG.test_kill_sends_the_signal_to_the_whole_group()
  local done = S.tmpname("pid")
  local app = assert(start { kill_mode = "group", argv = { F, "catch=USR1",
    "fork", "waitsig=USR1", "pidfile=" .. done, "pause", "|",
    "notify=READY=1", "pause" } })
  assert(app:kill("USR1"))
  lu.assertNotNil(S.pid_in(done), "the child got USR1")
  lu.assertEquals(app:terminate().left, 1)
end

-- app:kill is no stop: a member it ended is not counted in the how.left
-- of the stop after it, which found none (it said 1).
function TG.test_how_left_counts_what_the_stop_found_not_what_app_kill_reached()
  local before = S.snapshot()
  local child = S.tmpname("pid")
  local app = assert(start { kill_mode = "group", argv = { F,
    "fork", "pidfile=" .. child, "pause", "|", "catch=USR1", "notify=READY=1", "pause" } })
  local pid = S.pid_in(child)
  assert(app:kill("USR1"))
  lu.assertTrue(S.await_gone(pid, 3), "the child, killed by USR1")
  local how = app:terminate()
  lu.assertEquals(how, { signal = 15, left = 0 })
  S.assert_clean(before)
end

-- A member whose main thread alone has exited (pthread_exit; its other
-- thread runs on) shows as a zombie in /proc/PID/stat: it was taken for
-- gone, neither signalled nor counted, and left running.
function TG.test_a_member_whose_main_thread_exited_is_signalled_and_counted()
  local before = S.snapshot()
  local app, pid = member_with_its_main_thread_gone("group", 5)
  local took, how = S.timed(app.terminate, app)
  lu.assertEquals(how, { signal = 15, left = 1 })
  lu.assertTrue(took < 2, "its SIGTERM ended it, not the group's SIGKILL after kill_grace: " .. took)
  lu.assertTrue(await_ended(pid), "the member's thread still runs")
  S.assert_clean(before)
end

function TG.test_the_process_mode_reaches_the_app_alone()
  local child = S.tmpname("pid")
  local app = assert(start { argv = { F, "fork", "pidfile=" .. child, "pause", "|", "notify=READY=1", "pause" } })
  local pid = S.pid_in(child)
  local how = app:terminate()
  lu.assertNil(how.left)
  lu.assertTrue(S.alive(pid))
  kill { pid }
end

function TG.test_a_failed_start_ends_the_group()
  local child = S.tmpname("pid")
  local err = fail_within({ kill_mode = "group", ready_timeout = 0.3, argv = { F,
    "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "pause" } }, "timeout", 3)
  lu.assertEquals(err.code, "timeout")
  assert_gone({ S.pid_in(child) }, "group member of a failed start")
  -- the stop counted it, as an app's stop does
  lu.assertEquals(err.status, { signal = 15, left = 1 })
  lu.assertStrContains(tostring(err.status), "1 other process of its group or cgroup signalled")
end

function TG.test_an_app_that_died_leaves_no_group_member()
  local child = S.tmpname("pid")
  local err = fail_within({ kill_mode = "group", argv = { F,
    "fork", "pidfile=" .. child, "pause", "|", "waitfile=" .. child, "exit=3" } }, "died", 3)
  lu.assertEquals(err.status, { code = 3, left = 1 })
  assert_gone({ S.pid_in(child) }, "what a dead app forked")
end

function TG.test_an_app_whose_main_exits_by_itself_takes_its_group_with_it()
  local before = S.snapshot()
  local a, b = S.tmpname("pid"), S.tmpname("pid")
  local how, took, left_at_wait, left_at_exit
  require("appstart").run(function()
    -- one child ends at SIGTERM, one ignores it (SIGKILL after kill_grace)
    local app = assert(start { kill_mode = "group", argv = { F,
      "fork", "pidfile=" .. a, "pause", "|",
      "fork", "ignore=TERM", "pidfile=" .. b, "pause", "|",
      "notify=READY=1", "waitfile=" .. b, "sleep=0.1", "exit=4" },
      on_exit = function(_, h) left_at_exit = h.left or "none" end })
    local t0 = now()
    how = app:wait()
    left_at_wait = how.left or "none"
    took = now() - t0
  end)
  lu.assertEquals(how.code, 4)
  -- counted as the end was seen, before anyone was told of it (inside a
  -- loop the count came later, with the wait for them)
  lu.assertEquals(left_at_wait, 2, "how.left when app:wait() returned")
  lu.assertEquals(left_at_exit, 2, "how.left in on_exit")
  local pids = pids_in(a, b)
  assert_gone(pids, "what the app left in its group")
  lu.assertTrue(took < 3, "the app's own end is seen at once: " .. took)
  S.assert_clean(before)
end

-- A fork-and-exit chain (a member that forks and exits at once, again and
-- again, SIGTERM ignored): /proc read for the group's members finds each
-- gone by the time it is looked at, the child it forked not yet there, so
-- member by member it ran on for good. The group is signalled as one now,
-- its number pinned by its leader, held unreaped until then.
local function chain_gone(pgid, timeout)
  -- its last members are zombies a moment, until init reaps them
  local deadline = now() + timeout
  while os.execute("kill -0 -" .. pgid .. " 2>/dev/null") do
    if now() >= deadline then return false end
    core.wait_readable(-1, 0.01)
  end
  return true
end

local CHAIN = { "fork", "ignore=TERM", "hop=0", "|" }

local function chain_app(...)
  local argv = { F }
  for _, a in ipairs(CHAIN) do argv[#argv + 1] = a end
  for _, a in ipairs { ... } do argv[#argv + 1] = a end
  return assert(start { kill_mode = "group", argv = argv })
end

function TG.test_a_fork_and_exit_chain_left_by_the_main_is_killed()
  local before = S.snapshot()
  local pgid, how
  local ok, err = pcall(require("appstart").run, function()
    local app = chain_app("notify=READY=1", "sleep=0.1", "exit=3")
    pgid = app.pid
    how = app:wait()
  end)
  local gone = pgid and chain_gone(pgid, 3)
  if pgid and not gone then os.execute("kill -9 -" .. pgid .. " 2>/dev/null") end
  assert(ok, err)
  lu.assertEquals(how.code, 3)
  lu.assertTrue(gone, "the chain outlived its group's SIGKILL")
  S.assert_clean(before)
end

function TG.test_a_fork_and_exit_chain_goes_with_a_terminate()
  local before = S.snapshot()
  -- the main ignores SIGTERM too: the group's SIGKILL comes while it runs
  local app = chain_app("ignore=TERM", "notify=READY=1", "pause")
  local pgid = app.pid
  local how = app:terminate()
  local gone = chain_gone(pgid, 3)
  if not gone then os.execute("kill -9 -" .. pgid .. " 2>/dev/null") end
  lu.assertEquals(how.signal, 9)
  lu.assertTrue(gone, "the chain outlived its group's SIGKILL")
  S.assert_clean(before)
end

function TG.test_a_fork_and_exit_chain_goes_with_a_terminate_after_the_main_ended()
  local before = S.snapshot()
  local app = chain_app("notify=READY=1", "sleep=0.1", "exit=0")
  local pgid = app.pid
  lu.assertEquals(app:wait().code, 0)
  local how = app:terminate()
  local gone = chain_gone(pgid, 3)
  if not gone then os.execute("kill -9 -" .. pgid .. " 2>/dev/null") end
  lu.assertEquals(how.code, 0)
  lu.assertTrue(gone, "the chain outlived its group's SIGKILL")
  S.assert_clean(before)
end

-- Out of descriptors, /proc cannot be read for the group's members: a
-- SIGKILL to the app reached it alone, the members ran on. Sent to the
-- group as one (its number pinned by the app, its leader, unreaped), it
-- reaches them all the same.
function TG.test_out_of_descriptors_a_kill_still_reaches_the_whole_group()
  local dir = S.tmpname("nofds")
  assert(os.execute("mkdir " .. dir))
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 30 },
    "trees_out_of_descriptors_a_kill_reaches_the_group", dir)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertStrContains(text, "killed\ttrue\t")
  lu.assertStrContains(text, "member\tgone\n")
  lu.assertStrContains(text, "how\t9\n")
  lu.assertEquals(S.strays(), {})
end

-- The app, its group's leader, is held unreaped (a zombie) while what it
-- left in its group is seen to, so that its number, the group's, cannot
-- be given out meanwhile; reaped once they are gone.
function TG.test_the_leader_is_held_until_what_it_left_is_gone()
  local before = S.snapshot()
  local a = S.tmpname("pid")
  local app = assert(start { kill_mode = "group", kill_grace = 0.5, argv = { F,
    "fork", "ignore=TERM", "pidfile=" .. a, "pause", "|", "notify=READY=1", "waitfile=" .. a, "exit=0" } })
  local pid, member = app.pid, S.pid_in(a)
  lu.assertEquals(app:wait().code, 0)
  lu.assertTrue(S.alive(member), "the member ignores SIGTERM: kill_grace has not passed")
  lu.assertStrContains(S.read("/proc/" .. pid .. "/stat") or "", ") Z ", "the leader is held, a zombie")
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(member) end, 3), "the member got SIGKILL")
  lu.assertTrue(S.await_with_sleep(function() return S.read("/proc/" .. pid .. "/stat") == nil end, 3),
    "the leader reaped once its group is gone")
  S.assert_clean(before)
end

-- A plain script's app of kill_mode "group" that ended by itself, its end
-- never seen by a call that waits: at the script's end (the Lua state
-- closed) its group's leftovers are killed, as at an end seen.
function TG.test_a_group_app_that_ended_unseen_leaves_nothing_at_the_scripts_end()
  local pidfile = S.tmpname("pid")
  local out, ok = S.run_child({ timeout = 20 }, "trees_a_group_app_ended_unseen_at_the_scripts_end", pidfile)
  lu.assertTrue(ok, out)
  local member = tonumber(out:match("^member:\t(%d+)\n$"))
  lu.assertNotNil(member, out)
  local gone = S.await_with_sleep(function() return not S.alive(member) end, 3)
  if not gone then os.execute("kill -9 " .. member) end
  lu.assertTrue(gone, "the member the app left in its group runs on")
end

-- A main moved by MAINPID= to a member of the group: the group is not its
-- own (it does not lead it). Its old leader ended and held a moment, not
-- seen yet: a signal to the app reached the main twice (once to it, once
-- to its group as one), where daemons take a second SIGTERM or SIGINT for
-- a fast shutdown.
function TG.test_a_main_moved_by_mainpid_gets_a_signal_once()
  local pidfile, trap = S.tmpname("pid"), S.tmpname("trap")
  local count
  require("appstart").run(function()
    local app = assert(start { kill_mode = "group", argv = { F,
      "fork", "trap=USR1:" .. trap, "pidfile=" .. pidfile, "pause", "|",
      "waitfile=" .. pidfile, "notify=READY=1", "mainpid=@" .. pidfile, "sleep=0.2", "exit=0" } })
    local leader = app.pid
    lu.assertTrue(S.await_with_sleep(function() return app.pid ~= leader end, 3), "the main moved")
    -- the old leader ends; nothing of the loop's runs meanwhile
    local deadline = now() + 3
    while not (S.read("/proc/" .. leader .. "/stat") or ""):find(") Z ", 1, true) and now() < deadline do end
    assert(app:kill("USR1"))
    S.await_with_sleep(function() return S.read(trap) ~= nil end, 3)
    require("appstart").sleep(0.2)
    count = select(2, (S.read(trap) or ""):gsub("\n", ""))
    app:kill("KILL")
    app:wait()
  end)
  lu.assertEquals(count, 1, "SIGUSR1 deliveries to the main")
end

-- A logger that raises as the group of an app that ended is seen to: the
-- error fails the run, as any raising logger's does, but only once the
-- end is told (on_exit runs) and what ends the rest is set up (the
-- member, deaf to SIGTERM, was left running; a stop waited 11 s for it).
function TG.test_a_logger_that_raises_at_the_sweep_leaves_nothing_undone()
  local before = S.snapshot()
  local a = S.tmpname("pid")
  local exits, raised = 0, false
  local ok, err = pcall(require("appstart").run, function()
    assert(start { kill_mode = "group", kill_grace = 0.3, argv = { F,
      "fork", "ignore=TERM", "pidfile=" .. a, "pause", "|", "notify=READY=1", "waitfile=" .. a, "exit=0" },
      log = function(level) if level == "info" and not raised then raised = true; error("logger boom", 0) end end,
      on_exit = function() exits = exits + 1 end })
    require("appstart").sleep(5)
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "logger boom")
  lu.assertEquals(exits, 1, "on_exit ran")
  lu.assertFalse(S.alive(S.pid_in(a)), "the member the app left was ended with the run")
  S.assert_clean(before)
end

function TG.test_in_a_plain_script_the_group_goes_at_the_next_wait()
  local before = S.snapshot()
  local a = S.tmpname("pid")
  local app = assert(start { kill_mode = "group", argv = { F,
    "fork", "pidfile=" .. a, "pause", "|", "notify=READY=1", "waitfile=" .. a, "exit=0" } })
  lu.assertEquals(app:wait().code, 0)
  local pid = S.pid_in(a)
  -- the calls that wait look at the group
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(pid) end, 3), "what the app left in its group")
  -- and the look after (a poll_interval later) sees the group empty and
  -- lets go of the app's process: nothing is left waiting
  lu.assertTrue(S.await_with_sleep(function() return select(2, require("appstart.loop").pending()) == 0 end, 3),
    "the group is still looked at")
  S.assert_clean(before)
end

-- In a plain script, with nothing ever looking at the app (no on_exit,
-- no wait): its end is still seen at the calls that wait, and what it
-- left in its group gets its SIGTERM then (it waited until something read
-- the app).
function TG.test_in_a_plain_script_the_group_goes_at_the_next_wait_with_nothing_looking_at_the_app()
  local before = S.snapshot()
  local a = S.tmpname("pid")
  local app = assert(start { kill_mode = "group", argv = { F,
    "fork", "pidfile=" .. a, "pause", "|", "notify=READY=1", "waitfile=" .. a, "exit=0" } })
  local pid = S.pid_in(a)
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(pid) end, 3), "what the app left in its group")
  lu.assertEquals(rawget(app, "_state"), "exited", "its end was seen by the waits")
  lu.assertTrue(S.await_with_sleep(function() return select(2, require("appstart.loop").pending()) == 0 end, 3))
  S.assert_clean(before)
end

-- In a plain script, the look that sees the app's end (a read of
-- app.state, app:wait(0)) sends what it left in its group the SIGTERM,
-- counts it, and returns: it does not wait for it to go (it did, up to
-- 0.2 s, serving meanwhile what the calls that wait serve: another app's
-- on_exit ran inside the read); the calls that wait see to it after,
-- SIGKILL after kill_grace.
function TG.test_in_a_plain_script_a_look_at_the_end_does_not_wait_for_the_group()
  local before = S.snapshot()
  local child, go = S.tmpname("child"), S.tmpname("go")
  local app = assert(start { kill_mode = "group", kill_grace = 0.5, argv = { F,
    "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "waitfile=" .. child, "notify=READY=1",
    "waitfile=" .. go, "exit=0" } })
  local told = false
  local other = assert(start { argv = { F, "notify=READY=1", "waitfile=" .. go, "exit=0" },
    on_exit = function() told = true end })
  local pid = S.pid_in(child)
  S.touch(go)
  -- (both ended, nothing waited meanwhile: seen by no call of appstart's)
  local deadline = now() + 3
  while not (state_threads(app.pid) == "Z" and state_threads(other.pid) == "Z") and now() < deadline do
    core.wait_readable(-1, 0.005)
  end
  lu.assertEquals(app.state, "exited")
  lu.assertFalse(told, "the read of app.state waited (it ran another app's on_exit)")
  lu.assertEquals(app:wait(0), { code = 0, left = 1 })
  lu.assertEquals(other:wait(), { code = 0 })
  lu.assertTrue(told)
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(pid) end, 3), "what ignores SIGTERM, killed")
  lu.assertTrue(S.await_with_sleep(function() return select(2, require("appstart.loop").pending()) == 0 end, 3),
    "the group is still looked at")
  S.assert_clean(before)
end

-- app:close() of an app whose main has ended, nothing having looked yet
-- (a plain script): what it left in its group goes as after an end seen,
-- SIGTERM first, SIGKILL after kill_grace (it had SIGKILL at once, the
-- group let go of as a collected app's is).
function TG.test_close_after_an_unseen_end_gives_the_group_its_sigterm_first()
  local before = S.snapshot()
  local child, trap, go = S.tmpname("child"), S.tmpname("trap"), S.tmpname("go")
  local app = assert(start { kill_mode = "group", kill_grace = 0.5, argv = { F,
    "fork", "trap=TERM:" .. trap, "pidfile=" .. child, "pause", "|", "waitfile=" .. child, "notify=READY=1",
    "waitfile=" .. go, "exit=0" } })
  local pid, main = S.pid_in(child), app.pid
  S.touch(go)
  -- (ended, a zombie: nothing of appstart's has looked)
  local deadline = now() + 3
  while state_threads(main) ~= "Z" and now() < deadline do core.wait_readable(-1, 0.005) end
  app:close()
  -- (SIGKILL at once would leave no trace: the child gone, no file)
  lu.assertTrue(S.await_with_sleep(function() return S.read(trap) ~= nil or not S.alive(pid) end, 3))
  lu.assertEquals(S.read(trap), "15\n", "no SIGTERM came first")
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(pid) end, 3), "no SIGKILL after kill_grace")
  lu.assertTrue(S.await_with_sleep(function() return select(2, require("appstart.loop").pending()) == 0 end, 3))
  S.assert_clean(before)
end

-- app:terminate() (and a <close> variable's end) of an app whose leader
-- has exited by itself, a member that ignores SIGTERM left in its group:
-- the stop waits for it, SIGKILL after kill_grace, before it returns (it
-- returned at once, and a script that ended then left the member running).
function TG.test_terminate_of_an_ended_leader_waits_for_its_group_and_kills_what_ignores_term()
  local before = S.snapshot()
  for _, how in ipairs { "terminate", "close" } do
    local a = S.tmpname("pid")
    local pid
    do
      local app <close> = assert(start { kill_mode = "group", kill_grace = 0.3, argv = { F,
        "fork", "ignore=TERM", "pidfile=" .. a, "pause", "|", "notify=READY=1", "waitfile=" .. a, "exit=0" } })
      pid = S.pid_in(a)
      lu.assertTrue(S.await_gone(app.pid, 3), how .. ": the leader exits")
      if how == "terminate" then lu.assertEquals(app:terminate().code, 0) end
    end
    lu.assertFalse(S.alive(pid), how .. ": the member that ignores SIGTERM still runs")
  end
  S.assert_clean(before)
end

-- app:terminate(grace) of a group app whose main exits at once on SIGTERM
-- while a member takes longer than kill_grace (but not grace) to shut
-- down: its watch saw the main's end first and handled it as a crash
-- (a second SIGTERM, SIGKILL after kill_grace, "its main process ended"
-- logged). The end is the stop's: one SIGTERM, SIGKILL after its grace.
function TG.test_terminate_s_grace_holds_for_the_group_when_the_main_ends_first()
  local appstart = require "appstart"
  for _, in_loop in ipairs { false, true } do
    local before = S.snapshot()
    local trap, child, done = S.tmpname("trap"), S.tmpname("child"), S.tmpname("done")
    local logged = {}
    local function body()
      local app = assert(start { kill_mode = "group", kill_grace = 0.3,
        log = function(level, msg) if level ~= "debug" then logged[#logged + 1] = msg end end,
        argv = { F, "fork", "trap=TERM:" .. trap, "pidfile=" .. child, "waitfile=" .. trap, "sleep=0.8",
          "pidfile=" .. done, "exit=0", "|", "waitfile=" .. child, "notify=READY=1", "pause" } })
      local how = app:terminate(5)
      lu.assertEquals(how.signal, 15)
      lu.assertEquals(how.left, 1)
    end
    if in_loop then appstart.run(body) else body() end
    local where = in_loop and "in appstart.run" or "in a plain script"
    lu.assertNotNil(S.read(done), where .. ": the member finished its shutdown within the grace")
    lu.assertEquals(S.read(trap), "15\n", where .. ": one SIGTERM")
    lu.assertEquals(logged, {}, where)
    S.assert_clean(before, where)
  end
end

-- app:terminate(grace) of a group app whose main had ended by itself (its
-- end seen, what it left in its group had its SIGTERM then): the SIGKILL
-- comes after the stop's own grace, as for an app that runs, not after
-- kill_grace from the end (a longer grace was cut short, a grace of 0
-- waited the whole kill_grace).
function TG.test_terminate_s_grace_holds_for_what_an_ended_main_left()
  local appstart = require "appstart"
  for _, in_loop in ipairs { false, true } do
    local before = S.snapshot()
    local where = in_loop and "in appstart.run" or "in a plain script"
    local trap, child, done, go = S.tmpname("trap"), S.tmpname("child"), S.tmpname("done"), S.tmpname("go")
    local slow = S.tmpname("slow")
    local function body()
      -- a member that takes 0.8 s to shut down, kill_grace 0.3: a grace of 5
      local app = assert(start { kill_mode = "group", kill_grace = 0.3,
        argv = { F, "fork", "trap=TERM:" .. trap, "pidfile=" .. child, "waitfile=" .. trap, "sleep=0.8",
          "pidfile=" .. done, "exit=0", "|", "waitfile=" .. child, "notify=READY=1", "waitfile=" .. go, "exit=0" } })
      S.touch(go)
      lu.assertEquals(app:wait(), { code = 0, left = 1 }, where)
      local how = app:terminate(5)
      lu.assertEquals(how, { code = 0, left = 1 }, where)
      lu.assertNotNil(S.read(done), where .. ": the member finished its shutdown within the grace")
      -- a member that ignores SIGTERM, kill_grace 30: a grace of 0
      local go2 = S.tmpname("go")
      app = assert(start { kill_mode = "group", kill_grace = 30,
        argv = { F, "fork", "ignore=TERM", "pidfile=" .. slow, "pause", "|", "waitfile=" .. slow,
          "notify=READY=1", "waitfile=" .. go2, "exit=3" } })
      local member = S.pid_in(slow)
      S.touch(go2)
      lu.assertEquals(app:wait(), { code = 3, left = 1 }, where)
      local t0 = now()
      lu.assertEquals(app:terminate(0), { code = 3, left = 1 }, where)
      lu.assertTrue(now() - t0 < 10, where .. ": SIGKILL at once, not after kill_grace (30 s)")
      lu.assertFalse(S.alive(member), where)
    end
    if in_loop then appstart.run(body) else body() end
    S.assert_clean(before, where)
  end
end

function TG.test_group_through_the_helper()
  local dir = S.tmpname("nobody")
  assert(os.execute("mkdir -m 1777 " .. dir))
  local child = dir .. "/pid"
  local app = assert(start { kill_mode = "group", user = "nobody", stdout = "null", stderr = "null",
    argv = { F, "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "notify=READY=1", "pause" } })
  local pid = S.pid_in(child)
  local how = app:terminate()
  lu.assertEquals(how.left, 1)
  assert_gone({ pid })
end

-------------------------------------------------------------------------------
-- cgroup

local TC = {}

local cgroup_skip
function TC.setUp()
  if cgroup_skip == nil then
    -- cgroup v2 writable here? (root, with the hierarchy mounted)
    local app, err = require("appstart").start { argv = { F }, ready = "none", kill_mode = "cgroup",
      log = S.quiet }
    cgroup_skip = not app and tostring(err) or false
    if app then app:wait(3) end
  end
  if cgroup_skip then lu.skip("cgroup v2 not usable here: " .. cgroup_skip) end
end

function TC.tearDown() S.kill_strays() end

function TC.test_terminate_ends_a_double_forking_setsid_child_and_removes_the_cgroup()
  local before = S.snapshot()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local a, b = S.tmpname("pid"), S.tmpname("pid")
  local app = assert(start { kill_mode = "cgroup", argv = { F,
    "fork", "setsid", "fork", "ignore=TERM", "pidfile=" .. a, "pause", "|", "exit=0", "|",
    "fork", "pidfile=" .. b, "pause", "|",
    "notify=READY=1", "pause" } })
  local pids = pids_in(a, b)
  lu.assertEquals(my_cgroups(dir), mine + 1, "the app's cgroup")
  local cg = S.read("/proc/" .. pids[1] .. "/cgroup"):match("0::([^\n]*)")
  lu.assertStrContains(cg, "/appstart." .. core.pid() .. ".")
  local how = app:terminate()
  lu.assertEquals(how.signal, 15)
  lu.assertEquals(how.left, 2, "the escaped grandchild and the child")
  assert_gone(pids, "cgroup member")
  lu.assertEquals(my_cgroups(dir), mine, "the cgroup is removed")
  S.assert_clean(before)
end

function TC.test_the_app_has_ended_only_once_its_cgroup_is_empty()
  local before = S.snapshot()
  local exits = 0
  local app = assert(start { kill_mode = "cgroup", on_exit = function() exits = exits + 1 end,
    argv = { F, "fork", "sleep=0.4", "exit=0", "|", "notify=READY=1", "exit=5" } })
  local t0 = now()
  S.await_gone(app.pid, 3)
  lu.assertEquals(app.state, "ready", "its child still runs in its cgroup")
  local how = app:wait(5)
  lu.assertEquals(how, { code = 5, left = 0 })
  lu.assertTrue(now() - t0 >= 0.3, "waited for the child: " .. (now() - t0))
  lu.assertEquals(exits, 1)
  S.assert_clean(before)
end

-- A notify app's main is held unreaped at its end until what its socket
-- holds has been read (its number pinned: no other process can send as
-- it meanwhile); a cgroup app's main, whose cgroup runs on, is reaped
-- then, not held for as long as the cgroup lives.
function TC.test_a_cgroup_apps_main_is_reaped_while_its_cgroup_runs_on()
  local before = S.snapshot()
  local child, go = S.tmpname("pid"), S.tmpname("go")
  require("appstart").run(function()
    local app = assert(start { kill_mode = "cgroup",
      argv = { F, "fork", "pidfile=" .. child, "pause", "|", "notify=READY=1", "waitfile=" .. go, "exit=5" } })
    local main = app.pid
    S.touch(go)
    -- without yielding to the loop: the main a zombie, then a look
    local deadline = now() + 10
    while not (S.read("/proc/" .. main .. "/stat") or ""):match("^%d+ %b() Z") and now() < deadline do
      core.wait_readable(-1, 0.005)
    end
    lu.assertEquals(app.state, "ready", "its child still runs in its cgroup")
    lu.assertNil(S.read("/proc/" .. main .. "/stat"), "the main is reaped")
    lu.assertTrue(S.alive(S.pid_in(child)))
    lu.assertEquals(app:terminate(), { code = 5, left = 1 })
  end)
  S.assert_clean(before)
end

-- The app's exit is noticed first by a plain look (app.state), not by its
-- watch: the look reaps the app and closes the pidfd that watch waited on;
-- the watch must move to the cgroup, or on_exit never runs.
function TC.test_an_exit_seen_by_a_look_moves_the_on_exit_watch_to_the_cgroup()
  local exits, how = 0, nil
  local before = S.snapshot()
  require("appstart").run(function()
    local app = assert(start { kill_mode = "cgroup", on_exit = function(_, h) exits = exits + 1; how = h end,
      argv = { F, "fork", "sleep=0.6", "exit=0", "|", "notify=READY=1", "sleep=0.1", "exit=5" } })
    -- (the app outlives its READY=1 a little: one that exits at once may be
    -- gone, reaped by the start, before the look below, which then waits
    -- for nothing until its child has ended too)
    -- without yielding to the loop (which would see the pidfd first):
    -- wait until the app is a zombie
    local deadline = now() + 3
    while not (S.read("/proc/" .. app.pid .. "/stat") or ""):match("^%d+ %b() Z") and now() < deadline do end
    lu.assertEquals(app.state, "ready", "its child still runs in its cgroup")
    lu.assertTrue(S.await_with_sleep(function() return exits > 0 end, 3), "on_exit never ran")
  end)
  lu.assertEquals(exits, 1)
  lu.assertEquals(how, { code = 5, left = 0 })
  S.assert_clean(before)
end

function TC.test_an_ended_cgroup_is_seen_by_an_on_exit_watch_in_a_loop()
  local exits, how = 0, nil
  require("appstart").run(function()
    local app = assert(start { kill_mode = "cgroup", on_exit = function(_, h) exits = exits + 1; how = h end,
      argv = { F, "fork", "sleep=0.3", "exit=0", "|", "notify=READY=1", "exit=5" } })
    lu.assertEquals(app.state, "ready")
    -- nobody waits on the app: its watch sees the app exit, then the
    -- cgroup empty
    lu.assertTrue(S.await_with_sleep(function() return exits > 0 end, 3))
  end)
  lu.assertEquals(exits, 1)
  lu.assertEquals(how.code, 5)
end

function TC.test_a_member_that_ignores_term_is_killed_after_kill_grace()
  for _, fallback in ipairs { false, true } do
    S.testing.no_cgroup_kill(fallback)
    local before = S.snapshot()
    local child = S.tmpname("pid")
    local app = assert(start { kill_mode = "cgroup", argv = { F,
      "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "notify=READY=1", "pause" } })
    local pid = S.pid_in(child)
    local how = app:terminate()
    S.testing.no_cgroup_kill(false)
    lu.assertEquals(how.left, 1)
    assert_gone({ pid }, fallback and "without cgroup.kill" or "with cgroup.kill")
    S.assert_clean(before)
  end
end

-- A member whose main thread alone has exited, its other thread running
-- on: signalled and counted, its cgroup emptied and removed (the stop
-- took it for gone and ended at kill_grace, the cgroup still populated,
-- never killed).
function TC.test_a_member_whose_main_thread_exited_is_signalled_and_counted()
  for _, fallback in ipairs { false, true } do
    S.testing.no_cgroup_kill(fallback)
    local before = S.snapshot()
    local dir = own_cgroup_dir()
    local mine = my_cgroups(dir)
    local app, pid = member_with_its_main_thread_gone("cgroup", 5)
    local took, how = S.timed(app.terminate, app)
    S.testing.no_cgroup_kill(false)
    lu.assertEquals(how, { signal = 15, left = 1 })
    lu.assertTrue(took < 2, "its SIGTERM ended it: " .. took)
    lu.assertTrue(await_ended(pid), "the member's thread still runs")
    lu.assertEquals(my_cgroups(dir), mine, "the cgroup is removed")
    S.assert_clean(before)
  end
end

-- Out of descriptors (cgroup.events unreadable), the app whose main has
-- ended was taken for ended with its cgroup: terminate returned at once,
-- the member that ignores SIGTERM never had its SIGKILL (cgroup.kill
-- could not be opened either) and the directory stayed for good. The
-- cgroup counts as populated until it is seen empty, and cgroup.kill is
-- kept open from the start.
function TC.test_out_of_descriptors_a_cgroup_app_ends_only_once_its_cgroup_is_empty()
  local dir = S.tmpname("nofds")
  assert(os.execute("mkdir " .. dir))
  local text, ok, how, code = S.run_child({ nofile = 64, timeout = 60 },
    "trees_cgroup_out_of_descriptors_the_app_ends_with_its_cgroup", dir)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, text))
  lu.assertStrContains(text, "member\tgone\n")
  lu.assertStrContains(text, "cgroup\tremoved\n")
  lu.assertEquals(S.strays(), {})
end

-- A cgroup an app (of root's) made inside its own, with a member moved
-- there: that member gets the SIGTERM, counts in how.left, and the inner
-- cgroup is removed with the app's (it got SIGKILL only, and the app's
-- directory, not empty of cgroups, stayed for good).
function TC.test_a_cgroup_the_app_made_inside_its_own_is_reached_and_removed()
  local before = S.snapshot()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local trap, child = S.tmpname("trap"), S.tmpname("child")
  local script = 'cg="$1$(sed -n "s/^0:://p" /proc/self/cgroup)"; mkdir "$cg/worker" && '
    .. 'sh -c \'echo $$ > "$1/worker/cgroup.procs"; exec "$0" trap=TERM:"$2" pidfile="$3" pause\' "$0" "$cg" "$2" "$3" & '
    .. 'exec "$0" waitfile="$3" notify=READY=1 pause'
  local app = assert(start { kill_mode = "cgroup", kill_grace = 0.5,
    argv = { "/bin/sh", "-c", script, F, cgroup_mount(), trap, child } })
  local pid = S.pid_in(child)
  lu.assertStrMatches(S.read("/proc/" .. pid .. "/cgroup"), ".*/appstart%.%d+%.%d+%.%d+/worker\n.*")
  local how = app:terminate()
  lu.assertEquals(how.left, 1, "the member in the inner cgroup")
  lu.assertEquals(S.read(trap), "15\n", "it had its SIGTERM")
  assert_gone({ pid }, "inner cgroup member")
  lu.assertEquals(my_cgroups(dir), mine, "the cgroup (and the one inside it) is removed")
  S.assert_clean(before)
end

-- Cgroups an app made deeper than the walk that signals them goes (12
-- levels, a member in the deepest): cgroup.kill reaches that member, and
-- they are removed with the app's, the deepest first (those past 8 levels
-- stayed, with the app's directory, for good).
function TC.test_cgroups_nested_past_the_walk_are_removed_with_the_apps()
  local before = S.snapshot()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local child = S.tmpname("child")
  local script = 'cg="$1$(sed -n "s/^0:://p" /proc/self/cgroup)"; d="$cg"; '
    .. 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do d="$d/n$i"; mkdir "$d" || exit 9; done; '
    .. 'sh -c \'echo $$ > "$1/cgroup.procs"; exec "$0" pidfile="$2" pause\' "$0" "$d" "$2" & '
    .. 'exec "$0" waitfile="$2" notify=READY=1 pause'
  local app = assert(start { kill_mode = "cgroup", kill_grace = 0.5,
    argv = { "/bin/sh", "-c", script, F, cgroup_mount(), child } })
  local pid = S.pid_in(child)
  lu.assertStrMatches(S.read("/proc/" .. pid .. "/cgroup"), ".*/appstart%.%d+%.%d+%.%d+/n1/.*/n12\n.*")
  app:terminate()
  assert_gone({ pid }, "the member 12 cgroups down")
  lu.assertEquals(my_cgroups(dir), mine, "the cgroup (and the 12 inside it) is removed")
  S.assert_clean(before)
end

function TC.test_a_failed_start_empties_and_removes_its_cgroup()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local child = S.tmpname("pid")
  local err = fail_within({ kill_mode = "cgroup", ready_timeout = 0.3, argv = { F,
    "fork", "setsid", "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "exit=0", "|", "pause" } },
    "timeout", 3)
  assert_gone({ S.pid_in(child) })
  lu.assertEquals(err.status, { signal = 15, left = 1 }, "the member that left the app's session, counted")
  lu.assertEquals(my_cgroups(dir), mine)
end

function TC.test_cgroup_parent_is_made_and_used()
  local parent = "/appstart-spec-" .. core.pid()
  local dir = cgroup_mount() .. parent
  local app = assert(start { kill_mode = "cgroup", cgroup_parent = parent, argv = { F, "notify=READY=1", "pause" } })
  local cg = S.read("/proc/" .. app.pid .. "/cgroup"):match("0::([^\n]*)")
  lu.assertEquals(cg:sub(1, #parent + 1), parent .. "/")
  lu.assertEquals(my_cgroups(dir), 1)
  app:terminate()
  lu.assertEquals(my_cgroups(dir), 0)
  assert(os.execute("rmdir " .. dir))
end

-- A launcher killed (SIGKILL) leaves its app's cgroup: the next start
-- under the same parent removes it once that app has ended, also when
-- that start is made by a launcher that swept the parent before, while
-- the app still ran, a second or more before (a parent was swept once a
-- process: such a cgroup stayed as long as that launcher ran). While the
-- app runs, the cgroups made inside it stay too (the sweep removed them,
-- an app's own, as it found it busy).
function TC.test_a_killed_launchers_cgroup_is_removed_once_its_app_has_ended()
  local parent = "/appstart-spec-" .. core.pid() .. "-stale"
  local dir = cgroup_mount() .. parent
  local pidfile, appfile = S.tmpname("launcher"), S.tmpname("app")
  S.run_child({ background = true }, "trees_cgroup_launcher_to_kill", pidfile, appfile, parent)
  local launcher, orphan = S.pid_in(pidfile), S.pid_in(appfile)
  local theirs = "appstart." .. launcher .. "."
  local function left()
    local n = 0
    for name in S.sh("ls " .. dir):gmatch("[^\n]+") do
      if name:sub(1, #theirs) == theirs then n = n + 1 end
    end
    return n
  end
  os.execute("kill -9 " .. launcher)
  lu.assertTrue(S.await_gone(launcher))
  -- (one the app made, as root may)
  local inner = S.sh("ls -d " .. dir .. "/" .. theirs .. "*", "l") .. "/inner"
  assert(os.execute("mkdir " .. inner))
  local running, ended, inner_kept
  local first = start { kill_mode = "cgroup", cgroup_parent = parent, argv = { F, "notify=READY=1", "pause" } }
  local swept_at = now()
  running, inner_kept = left(), S.read(inner .. "/cgroup.events") ~= nil
  os.execute("kill -9 " .. orphan)
  lu.assertTrue(S.await_gone(orphan))
  -- (its cgroup says so a moment after it is a zombie)
  local events = S.sh("ls -d " .. dir .. "/" .. theirs .. "*", "l") .. "/cgroup.events"
  lu.assertTrue(S.await_with_sleep(function() return (S.read(events) or ""):find("populated 0") ~= nil end))
  -- a parent where such a cgroup was left is swept again by a start a
  -- second after, not at every start (each read the whole parent, and
  -- walked every such cgroup, as long as its app ran); within that
  -- second (where this host was quick enough to tell) it stays
  local soon = start { kill_mode = "cgroup", cgroup_parent = parent, argv = { F, "notify=READY=1", "pause" } }
  local within = now() < swept_at + 0.9 and left() or nil
  core.wait_readable(-1, math.max(0, swept_at + 1.05 - now()))
  local second = start { kill_mode = "cgroup", cgroup_parent = parent, argv = { F, "notify=READY=1", "pause" } }
  ended = left()
  for _, app in ipairs { first or false, soon or false, second or false } do
    if app then app:terminate() end
  end
  local removed = os.execute("rmdir " .. dir)
  if within then lu.assertEquals(within, 1, "swept again within the second") end
  lu.assertNotNil(first)
  lu.assertNotNil(second)
  lu.assertEquals(running, 1, "the killed launcher's cgroup stays while its app runs")
  lu.assertTrue(inner_kept, "the cgroup made inside it was removed while the app ran")
  lu.assertEquals(ended, 0, "the killed launcher's cgroup is removed once its app has ended")
  lu.assertTrue(removed)
end

-- A launcher that runs on (a supervisor) and found its parent clean at
-- its first start removes what a launcher killed since left there, once
-- that app has ended, at a start a second or more after its last sweep
-- (a parent found clean was never swept again by that process: the
-- directory stayed as long as it ran, and under a cgroup.max.descendants
-- such directories piled up until its starts failed `spawn`); within
-- that second (where this host was quick enough to tell) it stays. (The
-- launcher is a child of its own: this one has swept more parents than
-- it keeps, and past those every start sweeps.)
function TC.test_a_launcher_that_runs_on_removes_what_one_killed_since_left()
  local parent = "/appstart-spec-" .. core.pid() .. "-resweep"
  local dir = cgroup_mount() .. parent
  local out, ok, how, code = S.run_child({ timeout = 60 }, "trees_cgroup_launcher_that_runs_on", parent,
    S.tmpname("launcher"), S.tmpname("app"))
  os.execute("rmdir " .. dir .. "/appstart.* 2>/dev/null")
  local removed = os.execute("rmdir " .. dir)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, out))
  lu.assertStrContains(out, "started\t3\n")
  local within = out:match("within\t(%w+)\n")
  if within ~= "late" then lu.assertEquals(within, "1", "swept again within the second") end
  lu.assertStrContains(out, "later\t0\n", false, "the killed launcher's cgroup is removed by a start a second "
    .. "after the last sweep")
  lu.assertTrue(removed)
end

-- Launchers each in a pid namespace of their own (a container's
-- entrypoint on the host's cgroup hierarchy, `unshare --pid --fork`), whose
-- pids are small ones that the host and every such namespace has too,
-- each leave their app's cgroup as their namespace ends: the next such
-- launcher still starts (named by the pid alone, appstart.PID.N, the
-- tenth found the nine names it tried taken: `spawn` "File exists"); a
-- launcher of the host's leaves them while fresh (see the next test) and
-- removes them once a minute old (by a pid of the host's alive, they
-- stayed for good). (Aged here by their mtime, set back.)
function TC.test_cgroups_left_by_launchers_in_pid_namespaces_are_removed_once_a_minute_old()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local parent = "/appstart-spec-" .. core.pid() .. "-pidns"
  local dir = cgroup_mount() .. parent
  local function launcher(pidns)
    return S.run_child({ pidns = pidns, timeout = 30 }, "trees_cgroup_launcher_in_a_pid_namespace", parent,
      pidns and "leave" or "wait")
  end
  local outs = {}
  for i = 1, 10 do outs[i] = launcher(true) end
  local theirs = {}
  local p = io.popen("ls " .. dir)
  for name in p:lines() do
    if name:match("^appstart%.") then theirs[#theirs + 1] = name end
  end
  p:close()
  local function left()
    local n = 0
    for _, name in ipairs(theirs) do
      if S.read(dir .. "/" .. name .. "/cgroup.events") then n = n + 1 end
    end
    return n
  end
  -- (each emptied by its namespace's end)
  local emptied = S.await_with_sleep(function()
    for _, name in ipairs(theirs) do
      if not (S.read(dir .. "/" .. name .. "/cgroup.events") or ""):find("populated 0") then return false end
    end
    return true
  end)
  -- (each launcher of the host's a process of its own: its first look at
  -- the parent)
  local fresh_out = launcher(false)
  local fresh = left()
  os.execute("touch -m -d '-2 minutes' " .. dir .. "/appstart.*")
  local aged_out = launcher(false)
  local aged = left()
  os.execute("rmdir " .. dir .. "/appstart.* 2>/dev/null")
  local removed = os.execute("rmdir " .. dir)
  for i = 1, 10 do lu.assertEquals(outs[i], "start\tok\n", "launcher " .. i .. " in a pid namespace") end
  lu.assertEquals(#theirs, 10)
  lu.assertTrue(emptied)
  lu.assertEquals(fresh_out, "start\tok\n")
  lu.assertEquals(fresh, 10, "a fresh cgroup of another namespace's was removed")
  lu.assertEquals(aged_out, "start\tok\n")
  lu.assertEquals(aged, 0, "the cgroups left by launchers in pid namespaces stay")
  lu.assertTrue(removed)
end

-- A launcher in a pid namespace of its own sweeps the parent where a
-- launcher of the host's has just made its app's directory, which the app
-- has not joined yet (empty): it stays, as one of the old form
-- (appstart.PID.N, which does not tell its namespace) does (the host's
-- pid, which that namespace does not see, was taken for a killed
-- launcher's, and the directory removed: that start failed "cannot join
-- the cgroup ...: No such device"). They are made here as a launcher of
-- the host's names them, by its pid, the inode of its pid namespace and a
-- number.
function TC.test_a_launcher_in_a_pid_namespace_leaves_the_hosts_fresh_cgroups()
  lu.skipIf(not S.can_unshare_pid(), "needs unshare(1) and a pid namespace of its own (root)")
  local parent = "/appstart-spec-" .. core.pid() .. "-hostns"
  local dir = cgroup_mount() .. parent
  local p = io.popen("stat -L -c %i /proc/" .. core.pid() .. "/ns/pid")
  local ns = p:read("l")
  p:close()
  local names = { string.format("appstart.%d.%s.1", core.pid(), ns), string.format("appstart.%d.2", core.pid()) }
  assert(os.execute("mkdir -p " .. dir .. "/" .. names[1] .. " " .. dir .. "/" .. names[2]))
  local out = S.run_child({ pidns = true, timeout = 30 }, "trees_cgroup_launcher_in_a_pid_namespace", parent, "wait")
  local kept = {}
  for i, name in ipairs(names) do kept[i] = S.read(dir .. "/" .. name .. "/cgroup.events") ~= nil end
  os.execute("rmdir " .. dir .. "/appstart.* 2>/dev/null")
  local removed = os.execute("rmdir " .. dir)
  lu.assertEquals(out, "start\tok\n")
  lu.assertTrue(kept[1], "the host launcher's fresh cgroup was removed")
  lu.assertTrue(kept[2], "the host launcher's fresh cgroup of the old form was removed")
  lu.assertTrue(removed)
end

-- A cgroup made that the app cannot join (under a threaded cgroup no
-- process may join, only threads): `spawn`, naming the cgroup and why
-- (it said "cannot set up the cgroup of PROGRAM"), nothing left running,
-- the directory removed.
function TC.test_a_cgroup_the_app_cannot_join_fails_the_start_naming_it()
  local parent = "/appstart-spec-" .. core.pid()
  local dir = cgroup_mount() .. parent
  assert(os.execute("mkdir " .. dir .. " " .. dir .. "/t && echo threaded > " .. dir .. "/t/cgroup.type"))
  local before = S.snapshot()
  local app, err = start { kill_mode = "cgroup", cgroup_parent = parent .. "/t", argv = { F, "notify=READY=1", "pause" } }
  local left = my_cgroups(dir .. "/t")
  if app then app:terminate() end
  local removed = os.execute("rmdir " .. dir .. "/t " .. dir)
  lu.assertNil(app)
  lu.assertEquals(err.code, "spawn", tostring(err))
  local function lit(text) return (text:gsub("%p", "%%%0")) end
  lu.assertStrMatches(err.message, lit("cannot start " .. F .. ": cannot join the cgroup " .. parent .. "/t/appstart.")
    .. "[^:]+: Operation not supported")
  lu.assertEquals(left, 0, "the cgroup made is removed")
  lu.assertTrue(removed)
  S.assert_clean(before)
end

-- An app of another user's must not leave its cgroup: a cgroup_parent (or
-- a cgroup above it) whose cgroup.procs its user may write would let it
-- move its processes there (one moved itself into the parent and ran on
-- after terminate, unseen): refused, `spawn`, nothing started. Nor may a
-- third user such a parent is delegated to move an app of the launcher's
-- own user out (it served it: root's app moved into a sibling by nobody
-- ran on after terminate). A parent only root writes serves it.
function TC.test_a_cgroup_parent_the_apps_user_may_write_is_refused()
  lu.skipIf(not S.is_root(), "needs root (to become another user)")
  local parent = "/appstart-spec-delegated-" .. core.pid()
  local dir = cgroup_mount() .. parent
  assert(os.execute("mkdir " .. dir .. " && mkdir " .. dir .. "/sub && chown nobody " .. dir .. "/cgroup.procs"))
  local ok, failure = pcall(function()
    -- (a missing one is refused before it is made)
    for _, p in ipairs { parent, parent .. "/sub", parent .. "/missing/below" } do
      local err = fail_within({ kill_mode = "cgroup", cgroup_parent = p, user = "nobody", ready = "none",
        stdout = "null", stderr = "null", argv = { F, "pause" } }, "spawn", 3)
      lu.assertStrContains(err.message, string.format("uid %d may write the cgroup.procs of cgroup %s: the app's "
        .. "processes could leave its cgroup", core.user("nobody"), parent))
      lu.assertEquals(my_cgroups(dir .. "/sub"), 0)
    end
    lu.assertNil(S.read(dir .. "/missing/cgroup.procs"), "a refused cgroup_parent was made")
    local err = fail_within({ kill_mode = "cgroup", cgroup_parent = parent .. "/sub", ready = "none",
      stdout = "null", stderr = "null", argv = { F, "pause" } }, "spawn", 3)
    lu.assertStrContains(err.message, string.format("uid %d may write the cgroup.procs of cgroup %s: it could move "
      .. "the app's processes out of its cgroup", core.user("nobody"), parent))
    lu.assertEquals(my_cgroups(dir .. "/sub"), 0)
    assert(os.execute("chown root " .. dir .. "/cgroup.procs && chmod 664 " .. dir .. "/cgroup.procs"))
    err = fail_within({ kill_mode = "cgroup", cgroup_parent = parent .. "/sub", ready = "none",
      stdout = "null", stderr = "null", argv = { F, "pause" } }, "spawn", 3)
    lu.assertStrContains(err.message, string.format("the cgroup.procs of cgroup %s is writable by a group or by all",
      parent))
    assert(os.execute("chmod 644 " .. dir .. "/cgroup.procs"))
    local app = assert(start { kill_mode = "cgroup", cgroup_parent = parent .. "/sub",
      argv = { F, "notify=READY=1", "pause" } })
    lu.assertEquals(my_cgroups(dir .. "/sub"), 1)
    app:terminate()
  end)
  if not ok then S.kill_strays() end -- (an app started there, by a failure)
  os.execute("rmdir " .. dir .. "/sub/appstart.* " .. dir .. "/appstart.* " .. dir .. "/sub " .. dir .. "/missing/below "
    .. dir .. "/missing " .. dir .. " 2>/dev/null")
  if not ok then error(failure, 0) end
end

-- A launcher that is root in a user namespace of its own, the host's
-- root unmapped there (a rootless container sharing the host's cgroups,
-- `unshare`), in a cgroup delegated to it: the cgroups above its own
-- seem the overflow uid's, which is no user of the namespace's but the
-- host's. Its apps of kill_mode "cgroup" start (each was refused: "uid
-- 65534 may write the cgroup.procs of cgroup /").
function TC.test_a_launcher_in_a_user_namespace_starts_a_cgroup_app()
  lu.skipIf(not S.is_root(), "needs root (to make a user namespace with a map)")
  local max = tonumber(S.read("/proc/sys/user/max_user_namespaces") or "0")
  lu.skipIf(not max or max == 0, "no user namespaces here")
  -- what the launcher there runs must be readable by a user not the
  -- host's root (a checkout in a 0700 directory is not)
  local files = { package.searchpath("appstart", package.path), package.searchpath("appstart.core", package.cpath),
    S.spec_dir .. "/child/trees_a_cgroup_app_from_a_user_namespace.lua", S.spec_dir .. "/childkit.lua" }
  for _, f in ipairs(files) do
    lu.skipIf(not os.execute("setpriv --reuid=100000 --regid=100000 --clear-groups test -r " .. f .. " 2>/dev/null"),
      "the checkout is not readable by another user: " .. f)
  end
  local dir = cgroup_mount() .. "/appstart-spec-userns-" .. core.pid()
  assert(os.execute("mkdir " .. dir .. " && chown 100000:100000 " .. dir .. " " .. dir .. "/cgroup.procs " .. dir
    .. "/cgroup.threads " .. dir .. "/cgroup.subtree_control"))
  local out, ok, how, code = S.run_child({ cgroup = dir, userns = 100000, timeout = 60 },
    "trees_a_cgroup_app_from_a_user_namespace")
  os.execute("rmdir " .. dir .. "/appstart.* 2>/dev/null")
  local removed = os.execute("rmdir " .. dir)
  lu.assertTrue(ok, string.format("child Lua failed (%s %s):\n%s", how, code, out))
  lu.assertEquals(out, "start\tready\nhow\tkilled by signal 15 (TERM)\n")
  lu.assertTrue(removed, "the test's cgroup has nothing left in it")
end

-- Launchers that each make the same missing cgroup_parent at the same
-- moment: one's mkdir of a component another has just made fails with
-- EEXIST, and that start failed ("File exists") where the directory it
-- wanted was there to be used.
function TC.test_a_cgroup_parent_made_by_launchers_at_once_is_used_by_all()
  local base = "/appstart-spec-race-" .. core.pid()
  local launchers, rounds, gap = 4, 25, 0.06
  local at = now() + 0.5
  local pipes = {}
  for i = 1, launchers do
    pipes[i] = assert(io.popen(S.san_prefix .. "lua5.4 " .. S.spec_dir
      .. "/child/trees_cgroup_parent_made_by_launchers_at_once.lua "
      .. string.format("%s %d %.3f %s", base, rounds, at, gap)))
  end
  local outs = {}
  for i = 1, launchers do
    outs[i] = pipes[i]:read("a")
    pipes[i]:close()
  end
  os.execute("find " .. cgroup_mount() .. base .. " -depth -type d -exec rmdir {} + 2>/dev/null")
  for i = 1, launchers do lu.assertEquals(outs[i], "done\t0\n", "launcher " .. i) end
  lu.assertEquals(S.strays(), {})
end

function TC.test_notify_access_all_admits_a_member_of_the_cgroup()
  -- the grandchild is orphaned: no parent chain leads to the app, but it
  -- is in the app's cgroup
  local function argv(pidfile)
    return { F, "fork", "setsid", "fork", "pidfile=" .. pidfile, "sleep=0.1", "notify=READY=1", "pause", "|",
      "exit=0", "|", "pause" }
  end
  local app = assert(start { kill_mode = "cgroup", notify_access = "all", argv = argv(S.tmpname("pid")) })
  lu.assertEquals(app:terminate().left, 1)
  local orphan = S.tmpname("pid")
  local err = fail_within({ kill_mode = "group", notify_access = "all", ready_timeout = 0.5, argv = argv(orphan) },
    "timeout", 3, function() kill { S.pid_in(orphan) } end)
  lu.assertEquals(err.code, "timeout", "in a group, an orphan that left it is nobody's")
end

function TC.test_a_closed_app_s_cgroup_is_removed_once_it_empties()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local app = assert(start { kill_mode = "cgroup", argv = { F, "notify=READY=1", "pause" } })
  local pid = app.pid
  app:close()
  lu.assertEquals(my_cgroups(dir), mine + 1, "in use")
  kill { pid }
  S.await_gone(pid)
  S.testing.reap()
  lu.assertEquals(my_cgroups(dir), mine)
end

-- Many apps closed and left running: their cgroups, kept for removal
-- once empty, cost no descriptor each (two each, and past 64 the rest
-- were dropped from the list and left behind for good).
function TC.test_many_closed_apps_cgroups_hold_no_descriptor_each_and_are_all_removed()
  local dir = own_cgroup_dir()
  local mine = my_cgroups(dir)
  local n = 70
  local fds_before = #S.testing.fds()
  local pids = {}
  for i = 1, n do
    local app = assert(start { kill_mode = "cgroup", ready = "none", argv = { F, "pause" } })
    pids[i] = app.pid
    app:close()
  end
  local held = #S.testing.fds() - fds_before
  lu.assertEquals(my_cgroups(dir), mine + n, "in use")
  kill(pids)
  for _, pid in ipairs(pids) do S.await_gone(pid) end
  S.testing.reap()
  local left = my_cgroups(dir) - mine
  lu.assertTrue(held <= 1, "descriptors held for the closed apps' cgroups: " .. held)
  lu.assertEquals(left, 0, "cgroups left behind")
end

-- A launcher whose stdin and stdout are closed opens the cgroup's
-- descriptors at 0 and 1: the app joins it all the same (it ran outside
-- it, and what it forked escaped every stop).
function TC.test_an_app_joins_its_cgroup_whatever_descriptors_the_launcher_has_closed()
  local out = S.run_child({ timeout = 30 }, "trees_cgroup_with_stdin_and_stdout_closed")
  local cg, mine = out:match("cgroup\t([^\n]*)\n"), out:match("mine\t([^\n]*)\n")
  lu.assertNotNil(cg, out)
  lu.assertNotEquals(cg, mine, "the app runs in a cgroup of its own: " .. out)
  lu.assertStrContains(cg, "/appstart.")
  lu.assertStrContains(out, "how\tkilled by signal 15 (TERM)\n")
  lu.assertStrContains(out, "children\t\n")
end

function TC.test_where_cgroup_v2_is_not_writable_the_start_fails_and_says_so()
  local lua_path, lua_cpath = S.public_tree()
  local out = S.run_child({ as = "nobody", as_group = "nogroup", env = { LUA_PATH = lua_path,
    LUA_CPATH = lua_cpath, APPSTART_FIXTURES = S.bindir } }, "trees_cgroup_v2_not_writable")
  lu.assertStrContains(out, "nil\tspawn\t")
  lu.assertStrContains(out, "cgroup v2 not writable here?")
  lu.assertStrContains(out, "children\t\n")
  -- a parent delegated to the launcher's user, the launcher outside it:
  -- the cgroup is made, but moving a process into it is refused (it
  -- said "cannot set up the cgroup of PROGRAM: Permission denied")
  local parent = "/appstart-spec-" .. core.pid()
  local dir = cgroup_mount() .. parent
  assert(os.execute("mkdir " .. dir .. " && chown nobody " .. dir .. " " .. dir .. "/cgroup.procs"))
  out = S.run_child({ as = "nobody", as_group = "nogroup", env = { LUA_PATH = lua_path,
    LUA_CPATH = lua_cpath, APPSTART_FIXTURES = S.bindir } }, "trees_cgroup_v2_not_writable", parent)
  local left = my_cgroups(dir)
  local removed = os.execute("rmdir " .. dir)
  lu.assertStrContains(out, "nil\tspawn\t")
  lu.assertStrContains(out, ": cannot join the cgroup " .. parent .. "/appstart.")
  lu.assertStrContains(out, ": Permission denied (moving a process takes write access to cgroup.procs of "
    .. "the cgroup above both the launcher's and the new one")
  lu.assertStrContains(out, "children\t\n")
  lu.assertEquals(left, 0, "the cgroup made is removed")
  lu.assertTrue(removed)
end

function TC.test_bad_cgroup_options_raise()
  local appstart = require "appstart"
  local function raises(opts, text)
    local ok, err = pcall(appstart.start, opts)
    lu.assertFalse(ok)
    lu.assertStrContains(err, text)
  end
  raises({ argv = { F }, cgroup_parent = "/x" }, "field 'cgroup_parent': has no effect without kill_mode = 'cgroup'")
  raises({ argv = { F }, kill_mode = "cgroup", cgroup_parent = "x" }, "must be an absolute path")
  raises({ argv = { F }, kill_mode = "cgroup", cgroup_parent = "/a/../b" }, "must not contain '..'")
  -- compared as written with /proc/PID/cgroup: "/x/" would name no member
  for _, path in ipairs { "/x/", "//x", "/x//y" } do
    raises({ argv = { F }, kill_mode = "cgroup", cgroup_parent = path }, "no '//', no '/' at the end")
  end
  raises({ argv = { F }, kill_mode = "tree" }, "field 'kill_mode': invalid value 'tree'")
end

return { TestKillModeGroup = TG, TestKillModeCgroup = TC }
