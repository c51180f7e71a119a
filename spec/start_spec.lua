--- The start handshake with ready = "none" and ready = "fd", without and
-- with a helper: what a successful start reports, how options reach the
-- child, every error code these modes can produce, and argument mistakes.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local core = S.core
local F = S.fixture
local now = core.now

local ENOENT, EACCES = 2, 13

--- appstart.start with short timeouts and a silent logger unless given.
local start, fail_without_leaks = S.starter { ready_timeout = 3, pid_timeout = 3, kill_grace = 0.2 }
local await_gone, pid_in = S.await_gone, S.pid_in

--- A start that must fail with `code` within `bound` seconds and leave
-- nothing behind (see S.starter), with an error whose tostring is its
-- message, after the program's name. Returns err and the time it took.
local function fail_case(opts, code, bound)
  local err, took = fail_without_leaks(opts, code, bound)
  lu.assertEquals(tostring(err), opts.argv[1]:match("[^/]*$") .. ": " .. err.message)
  return err, took
end

local function assert_ready(app, err)
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.state, "ready")
  lu.assertEquals(type(app.ready_after), "number")
  lu.assertTrue(app.ready_after >= 0, "ready_after " .. tostring(app.ready_after))
  lu.assertEquals(math.type(app.pid), "integer")
end

--- Start opts, whose app writes its pid to `pidfile`: the app must be ready
-- (assert_ready), named `name` (`msg` says why) and have the pid it wrote.
local function start_ready(opts, pidfile, name, msg)
  local app, err = start(opts)
  assert_ready(app, err)
  lu.assertEquals(app.name, name, msg)
  lu.assertEquals(app.pid, pid_in(pidfile))
  return app
end

-------------------------------------------------------------------------------
-- success

local Success = {}

function Success.tearDown() S.kill_strays() end

function Success.test_ready_none_without_helper_is_ready_at_once_with_the_spawned_pid()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({ argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "none" }, pidfile,
    "fixture", "basename of argv[1]")
  lu.assertTrue(S.alive(app.pid))
  lu.assertEquals(app:terminate(), { signal = 15 })
  lu.assertEquals(app.state, "exited")
  S.assert_clean(before)
end

-- An app offers its documented methods only: the library's own
-- functions (drain, listen, check, watch, new...) were reachable as
-- app:drain(), app:new(...).
function Success.test_an_app_offers_its_documented_methods_only()
  local app = assert(start { argv = { F, "pause" }, ready = "none" })
  for _, m in ipairs { "wait", "tail", "kill", "terminate", "reload", "close", "pollfd", "events", "timeout" } do
    lu.assertEquals(type(app[m]), "function", m)
  end
  for _, m in ipairs { "new", "unserved", "leftover", "leftover_gone", "check", "watch", "drain", "listen",
    "unlisten", "end_all", "__index" } do
    lu.assertNil(app[m], m)
  end
  lu.assertEquals(app:terminate(), { signal = 15 })
end

function Success.test_ready_fd_without_helper_names_the_app_by_its_ready_line()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({ argv = { F, "pidfile=" .. pidfile, "line=3:my-server", "pause" }, ready = "fd" }, pidfile,
    "my-server")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- An empty ready line (s6's bare "\n") names nothing: the app keeps its
-- program's name (it was named "", its messages ": ...").
function Success.test_an_empty_ready_line_leaves_the_program_name()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({ argv = { F, "pidfile=" .. pidfile, "line=3:", "pause" }, ready = "fd" }, pidfile,
    F:match("[^/]*$"))
  lu.assertStrContains(tostring(app), "(" .. F:match("[^/]*$") .. ", pid ")
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

function Success.test_ready_fd_ready_after_covers_the_time_before_the_line()
  local app, err = start { argv = { F, "sleep=0.2", "line=3:late", "pause" }, ready = "fd" }
  assert_ready(app, err)
  lu.assertTrue(app.ready_after >= 0.2, "ready_after " .. app.ready_after)
  lu.assertEquals(app:terminate(), { signal = 15 })
end

function Success.test_ready_none_with_helper_takes_the_reported_pid()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({
    helper = { F, "fork", "pidfile=" .. pidfile, "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "none",
  }, pidfile, "pause", "basename of argv[1], not of the helper")
  lu.assertTrue(S.alive(app.pid))
  -- once its helper exited, the app came to the launcher (a child
  -- subreaper during helper starts): its status is known
  lu.assertEquals(app:terminate(), { signal = 15 }, "adopted: the launcher reaps it")
  lu.assertTrue(await_gone(app.pid), "app still running")
  S.assert_clean(before)
end

function Success.test_ready_fd_with_helper_defaults_ready_fd_to_4_and_takes_the_reported_pid()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({
    helper = { F, "fork", "pidfile=" .. pidfile, "line=4:through-helper", "pause", "|",
      "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd",
  }, pidfile, "through-helper")
  local pid = app.pid
  lu.assertEquals(app:terminate(), { signal = 15 })
  lu.assertTrue(await_gone(pid), "app still running")
  S.assert_clean(before)
end

function Success.test_ready_fd_with_helper_and_line_pid_format()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app = start_ready({
    helper = { F, "fork", "pidfile=" .. pidfile, "line=4:lined", "pause", "|", "pidline=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", pid_format = "line",
  }, pidfile, "lined")
  app:terminate()
  S.assert_clean(before)
end

-- A helper that writes more to the pid channel after its record (a
-- second line, bytes after the 4 of an int32), some time after it: the
-- rest is not read, and the helper is not killed for writing it (the
-- channel was closed as the record was read: the helper died of SIGPIPE,
-- the start failed "helper" and its app was killed, or not, by how soon
-- the helper wrote).
function Success.test_a_helper_that_writes_more_after_its_pid_record_is_no_matter()
  local before = S.snapshot()
  for _, case in ipairs { { "line", "pidline=3:child", "write=3:456\n" }, { "int32le", "int32=3:child", "write=3:zzzz" } } do
    local pidfile = S.tmpname("pid")
    local app, err = start { helper = { F, "fork", "pidfile=" .. pidfile, "pause", "|", case[2], "sleep=0.3", case[3],
      "exit=0" }, argv = { "pause" }, ready = "none", pid_format = case[1], log = S.quiet }
    lu.assertNotNil(app, case[1] .. ": " .. tostring(err))
    lu.assertEquals(app.pid, S.pid_in(pidfile))
    -- the helper has written the rest, and exited 0 (not by SIGPIPE)
    S.core.wait_readable(-1, 0.5)
    lu.assertEquals(app.state, "ready")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end
  S.assert_clean(before)
end

-- What a helper leaves that exits later (here the process between it and
-- the app, adopted as the helper exited, that outlives the app) is
-- reaped by the next call that waits: app:wait() too, of an app already
-- seen ended, or whose first look sees the end (it served the rest
-- without reaping: a zombie until a call that waited on something).
function Success.test_what_a_helper_left_that_exits_after_the_app_is_reaped_by_app_wait()
  local before = S.snapshot()
  for _, seen in ipairs { true, false } do
    local pidfile, between, go = S.tmpname("pid"), S.tmpname("between"), S.tmpname("go")
    local app, err = start {
      helper = { F, "fork", "pidfile=" .. between, "fork", "pidfile=" .. pidfile, "pause", "|",
        "waitfile=" .. go, "exit=0", "|", "int32=3:@" .. pidfile, "exit=0" },
      argv = { "pause" }, ready = "none" }
    lu.assertNotNil(app, tostring(err))
    lu.assertEquals(app.pid, pid_in(pidfile))
    local mid = pid_in(between)
    lu.assertTrue(app:kill("KILL"))
    if seen then
      lu.assertNotNil(app:wait(3))
      lu.assertEquals(app.state, "exited")
    else
      lu.assertTrue(await_gone(app.pid), "app still running")
    end
    -- the process between exits, a zombie of the launcher's
    S.touch(go)
    lu.assertTrue(await_gone(mid), "the process between still running")
    lu.assertNotNil(app:wait(0))
    lu.assertEquals(S.children(), {}, seen and "after app:wait of an app seen ended"
      or "after app:wait whose first look saw the end")
  end
  S.assert_clean(before)
end

function Success.test_app_that_writes_its_line_and_exits_at_once_has_started()
  local before = S.snapshot()
  local app, err = start { argv = { F, "line=3:quick", "exit=0" }, ready = "fd" }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "quick")
  lu.assertTrue(app.state == "ready" or app.state == "exited", app.state)
  lu.assertEquals(app:wait(3), { code = 0 })
  lu.assertEquals(app.state, "exited")
  S.assert_clean(before)
end

function Success.test_app_behind_a_helper_that_writes_its_line_and_exits_at_once_has_started()
  -- the helper is slower than its app: by the time the pid is reported the
  -- app has written its line and exited (a zombie the helper never reaps)
  local before = S.snapshot()
  local app, err = start {
    helper = { F, "fork", "line=4:quick", "exit=0", "|", "sleep=0.05", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd",
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "quick")
  lu.assertTrue(app.state == "ready" or app.state == "exited", app.state)
  lu.assertEquals(app:wait(3), { code = 0 }, "the zombie came to the launcher with the helper's exit")
  S.assert_clean(before)
end

function Success.test_env_table_replaces_the_environment()
  local out = S.tmpname("env")
  local app, err = start { argv = { F, "env=" .. out, "line=3:x", "pause" }, ready = "fd",
    env = { GREETING = "hello world", COUNT = 5, EMPTY = "" } }
  lu.assertNotNil(app, tostring(err))
  local lines = S.lines(S.await_file(out))
  table.sort(lines)
  lu.assertEquals(lines, { "COUNT=5", "EMPTY=", "GREETING=hello world" })
  app:terminate()
end

function Success.test_without_env_the_environment_is_inherited()
  local out = S.tmpname("env")
  local app, err = start { argv = { F, "env=" .. out, "line=3:x", "pause" }, ready = "fd" }
  lu.assertNotNil(app, tostring(err))
  local text = S.await_file(out)
  lu.assertStrContains(text, "APPSTART_FIXTURES=" .. S.fixtures .. "\n")
  app:terminate()
end

-- the binding lays a short command out without allocating, a long one
-- in memory of its own: both whole and in order, either side of the edge
function Success.test_argv_and_env_of_any_length_arrive_whole_and_in_order()
  for _, n in ipairs { 1, 14, 15, 16, 17, 40 } do
    local out, envout = S.tmpname("argv"), S.tmpname("env")
    -- n entries in all: the program, n - 2 words it prints, exit
    local argv, words, env, vars = { F, "env=" .. envout }, {}, {}, {}
    for i = 3, n - 1 do
      argv[i] = "echo=w" .. i
      words[#words + 1] = "w" .. i
    end
    argv[#argv + 1] = "exit=0"
    for i = 1, n do
      env["V" .. i] = tostring(i)
      vars[#vars + 1] = "V" .. i .. "=" .. i
    end
    local app = assert(appstart.start { argv = argv, env = env, ready = "none", stdout = out })
    lu.assertEquals(app:wait(5), { code = 0 })
    lu.assertEquals(S.lines(S.read(out) or ""), words, n .. " entries")
    local got = S.lines(S.read(envout) or "")
    table.sort(got)
    table.sort(vars)
    lu.assertEquals(got, vars, n .. " variables")
  end
end

-- A start in flight is its handle and the core's starter: the handle's
-- fields are all set at begin (and its rare facts' when that table is
-- made), since one added later doubles the table's hash part (a start's
-- memory, README "Where the memory goes"). Stepped by h:wait in a plain
-- script, with its output read by its steps, with and without an app
-- made early (on_output), and one ready at once.
function Success.test_a_start_handle_gains_no_field_as_it_runs()
  local function keys(t)
    local list = {}
    for k in next, t or {} do list[#list + 1] = tostring(k) end
    table.sort(list)
    return table.concat(list, " ")
  end
  local cases = {
    { argv = { F, "sleep=0.05", "echo=out", "line=3:x", "pause" }, ready = "fd" },
    { argv = { F, "sleep=0.05", "echo=out", "line=3:x", "pause" }, ready = "fd", stdout = "capture" },
    { argv = { F, "sleep=0.05", "echo=out", "line=3:x", "pause" }, ready = "fd", stdout = "capture",
      on_output = function() end },
    { argv = { F, "pause" }, ready = "none" },
  }
  for i, opts in ipairs(cases) do
    local h = appstart.begin(opts)
    local at_begin, rare_at_begin = keys(h), h._rare and keys(h._rare)
    local app = assert(h:wait())
    lu.assertEquals(keys(h), at_begin, "case " .. i .. ": the handle")
    if h._rare then lu.assertEquals(keys(h._rare), rare_at_begin or keys(h._rare), "case " .. i .. ": its rare facts") end
    app:terminate()
  end
end

function Success.test_cwd_sets_the_working_directory()
  local dir = S.tmpname("dir")
  assert(os.execute("mkdir '" .. dir .. "'"))
  local out = S.tmpname("cwd")
  local app, err = start { argv = { F, "cwd=" .. out, "line=3:x", "pause" }, ready = "fd", cwd = dir }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.await_file(out), dir .. "\n")
  app:terminate()
end

function Success.test_stdin_null_reads_end_of_file_at_once()
  local out = S.tmpname("stdin")
  local app, err = start { argv = { F, "stdin=" .. out, "line=3:x", "pause" }, ready = "fd", stdin = "null" }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.await_file(out), "")
  app:terminate()
end

function Success.test_stdin_from_a_file_path()
  local input = S.tmpname("in")
  local f = assert(io.open(input, "w"))
  f:write("line one\nline two\n")
  f:close()
  local out = S.tmpname("stdin")
  local app, err = start { argv = { F, "stdin=" .. out, "line=3:x", "pause" }, ready = "fd", stdin = input }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.await_file(out), "line one\nline two\n")
  app:terminate()
end

function Success.test_stdout_and_stderr_to_file_paths()
  local before = S.snapshot()
  local o, e = S.tmpname("out"), S.tmpname("err")
  local app, err = start { argv = { F, "echo=to stdout", "echoerr=to stderr", "line=3:x", "pause" },
    ready = "fd", stdout = o, stderr = e }
  lu.assertNotNil(app, tostring(err))
  -- the echoes come before the ready line: they are in the files by now
  lu.assertEquals(S.read(o), "to stdout\n")
  lu.assertEquals(S.read(e), "to stderr\n")
  app:terminate()
  S.assert_clean(before)
end

function Success.test_stdout_and_stderr_null()
  local before = S.snapshot()
  local app, err = start { argv = { F, "echo=gone", "echoerr=gone too", "line=3:x", "pause" },
    ready = "fd", stdout = "null", stderr = "null" }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "x")
  app:terminate()
  S.assert_clean(before)
end

function Success.test_argv1_without_slash_is_looked_up_in_PATH()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local app, err = start {
    argv = { "sh", "-c", 'echo $$ > "$0"; echo via-path >&3; exec sleep 30', pidfile },
    ready = "fd",
  }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(app.name, "via-path")
  lu.assertEquals(app.pid, pid_in(pidfile))
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

function Success.test_argv_words_are_passed_literally_never_through_a_shell()
  local before = S.snapshot()
  local out, marker = S.tmpname("out"), S.tmpname("marker")
  local word = "echo=a; touch " .. marker .. " $(touch " .. marker .. ") `id` *"
  local app, err = start { argv = { F, word, "line=3:x", "pause" }, ready = "fd", stdout = out }
  lu.assertNotNil(app, tostring(err))
  lu.assertEquals(S.read(out), "a; touch " .. marker .. " $(touch " .. marker .. ") `id` *\n")
  lu.assertNil(S.read(marker), "a shell ran the word")
  app:terminate()
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- failures

local Errors = {}

function Errors.tearDown() S.kill_strays() end

function Errors.test_spawn_missing_program_by_path_is_errno_ENOENT()
  local err = fail_case({ argv = { "/nonexistent/appstart-no-such-program" }, ready = "fd" }, "spawn")
  lu.assertEquals(err.errno, ENOENT)
end

function Errors.test_spawn_missing_program_in_PATH_is_errno_ENOENT()
  local err = fail_case({ argv = { "appstart-no-such-program-xyz" }, ready = "none" }, "spawn")
  lu.assertEquals(err.errno, ENOENT)
end

function Errors.test_spawn_non_executable_file_is_errno_EACCES()
  local path = S.tmpname("noexec")
  local f = assert(io.open(path, "w"))
  f:write("#!/bin/sh\nexit 0\n")
  f:close()
  assert(os.execute("chmod 644 '" .. path .. "'"))
  local err = fail_case({ argv = { path }, ready = "none" }, "spawn")
  lu.assertEquals(err.errno, EACCES)
end

-- appstart sets no bound of its own on argv and env (a 65536-entry one
-- raised an internal error, the output pipes open until a collection):
-- the kernel's, past which the exec fails (E2BIG), is a spawn error.
function Errors.test_argv_and_env_are_bounded_by_the_exec_alone()
  local before = S.snapshot()
  local argv = { F, "exit=0" }
  for i = 3, 70000 do argv[i] = "sleep=0" end
  local app = assert(appstart.start { argv = argv, ready = "none", stdout = "capture" })
  lu.assertEquals(app:wait(), { code = 0 })
  local env = {}
  for i = 1, 70000 do env["V" .. i] = "x" end
  app = assert(appstart.start { argv = { F, "exit=0" }, env = env, ready = "none" })
  lu.assertEquals(app:wait(), { code = 0 })
  S.assert_clean(before)
  -- (valgrind's own execve, under make valgrind, cannot recover from an
  -- E2BIG: it ends the child, exit 101)
  if os.getenv("APPSTART_VFORK_IS_FORK") then return end
  local big = string.rep("x", 200000)
  argv = { F }
  for i = 2, 20 do argv[i] = big end -- 4 MB, past the exec's limit (ARG_MAX)
  local err = fail_case({ argv = argv, ready = "none", stdout = "capture" }, "spawn")
  lu.assertEquals(err.errno, 7) -- E2BIG
end

function Errors.test_spawn_cwd_that_does_not_exist()
  local err = fail_case({ argv = { F, "line=3:x", "pause" }, ready = "fd",
    cwd = "/nonexistent/appstart-no-such-dir" }, "spawn")
  lu.assertEquals(err.errno, ENOENT)
  -- (the directory named: it was not)
  lu.assertEquals(err.message, "cannot change directory to /nonexistent/appstart-no-such-dir for " .. F
    .. ": No such file or directory")
end

function Errors.test_spawn_shell_words_as_argv1_are_one_literal_name()
  for _, argv in ipairs { { "sh -c", "exit 0" }, { "true; true" }, { "/bin/true;" } } do
    local err = fail_case({ argv = argv, ready = "none" }, "spawn")
    lu.assertEquals(err.errno, ENOENT, argv[1])
  end
end

function Errors.test_spawn_failure_through_a_helper_program_that_cannot_run()
  local err = fail_case({ helper = { "/nonexistent/appstart-helper" }, argv = { F }, ready = "fd" }, "spawn")
  lu.assertEquals(err.errno, ENOENT)
end

function Errors.test_died_with_an_exit_code()
  local err = fail_case({ argv = { F, "exit=7" }, ready = "fd" }, "died")
  lu.assertEquals(err.status, { code = 7 })
end

function Errors.test_died_by_a_signal()
  local err = fail_case({ argv = { F, "signal=USR1" }, ready = "fd" }, "died")
  lu.assertEquals(err.status, { signal = 10 })
end

function Errors.test_died_behind_a_helper()
  -- the app dies once the launcher knows its pid (a death before the report
  -- is a case of faults_spec); adopted once its helper exited: its status
  -- is the launcher's to reap
  local go = S.tmpname("go")
  local err = fail_case({ helper = { F, "fork", "waitfile=" .. go, "exit=3", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", log = S.touch_when_pid_known(go) }, "died")
  lu.assertEquals(err.status, { code = 3 })
end

function Errors.test_timeout_terminates_the_app()
  local err, took = fail_case({ argv = { F, "pause" }, ready = "fd", ready_timeout = 0.3 }, "timeout", 2.5)
  lu.assertEquals(err.status, { signal = 15 })
  lu.assertTrue(took >= 0.3, "gave up after " .. took .. " s")
end

function Errors.test_timeout_behind_a_helper_terminates_the_app()
  -- the helper reports only once the app has written its pidfile
  local pidfile = S.tmpname("pid")
  local err = fail_case({ helper = { F, "fork", "pidfile=" .. pidfile, "pause", "|",
    "waitfile=" .. pidfile, "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", ready_timeout = 0.3 }, "timeout", 2.5)
  lu.assertFalse(S.alive(pid_in(pidfile)), "app still running")
  lu.assertEquals(err.code, "timeout")
end

function Errors.test_ready_closed_terminates_the_app()
  local err = fail_case({ argv = { F, "close=3", "pause" }, ready = "fd" }, "ready_closed")
  lu.assertEquals(err.status, { signal = 15 })
end

-- a line begun, then the channel closed: the message says what it lacked
function Errors.test_ready_closed_after_a_line_without_its_newline_says_so()
  local err = fail_case({ argv = { F, "write=3:half", "close=3", "pause" }, ready = "fd" }, "ready_closed")
  lu.assertEquals(err.message, "app closed the ready channel without a ready message (4 bytes came with no newline)")
  lu.assertEquals(err.status, { signal = 15 })
end

function Errors.test_protocol_a_megabyte_without_newline_terminates_the_app()
  local err = fail_case({ argv = { F, "bytes=3:1048576:x", "pause" }, ready = "fd" }, "protocol")
  lu.assertEquals(err.status, { signal = 15 })
end

function Errors.test_helper_exits_0_without_a_pid()
  fail_case({ helper = { F, "exit=0" }, argv = { "pause" }, ready = "fd" }, "helper")
end

function Errors.test_helper_exits_non_zero()
  fail_case({ helper = { F, "exit=3" }, argv = { "pause" }, ready = "none" }, "helper")
end

function Errors.test_helper_that_hangs_without_a_pid_times_out_and_is_killed()
  local _, took = fail_case({ helper = { F, "pause" }, argv = { "pause" }, ready = "fd", pid_timeout = 0.3 },
    "helper", 2.5)
  lu.assertTrue(took >= 0.3, "gave up after " .. took .. " s")
end

function Errors.test_bad_pid_from_a_helper()
  fail_case({ helper = { F, "int32=3:0", "exit=0" }, argv = { "pause" }, ready = "fd" }, "bad_pid")
end

-- A helper that writes its pid as a line where an int32le is read: the
-- error says what its 4 bytes read as, and names the option that would
-- take them (the command names its own: cli_spec).
function Errors.test_a_pid_line_read_as_an_int32_says_it_may_be_a_line()
  local err = fail_case({ helper = { F, "write=3:1234\\n", "exit=0" }, argv = { "pause" }, ready = "none",
    pid_timeout = 5 }, "bad_pid")
  lu.assertStrContains(err.message, "helper reported pid 875770417: ")
  lu.assertStrContains(err.message, ' (its 4 bytes read as decimal text: a line? pid_format = "line")')
end

-- Part of a pid record, then the helper exits well while a process it
-- forked holds the channel open (so no end of file comes): bad_pid, a
-- short record, as when nothing else holds it (it was `helper`, "helper
-- exited with code 0 without reporting a pid").
function Errors.test_part_of_a_pid_record_then_the_helpers_exit_is_a_short_record()
  for _, case in ipairs { { "int32le", "int32part=3:self:2", "2 of 4 bytes" }, { "line", "write=3:123", "3 of a line" } } do
    local forked = S.tmpname("forked")
    local err = fail_without_leaks({ helper = { F, "fork", "pidfile=" .. forked, "sleep=0.5", "|", case[2], "exit=0" },
      argv = { "pause" }, ready = "none", pid_format = case[1] }, "bad_pid", 2,
      function() lu.assertTrue(S.await_gone(S.pid_in(forked))) end)
    lu.assertEquals(err.message, "short pid record: " .. case[3] .. " (the helper exited)", case[1])
  end
  -- the helper that wrote part of one runs on, the channel open: its
  -- timeout says what came (it said nothing of it)
  local err = fail_without_leaks({ helper = { F, "int32part=3:self:2", "exec" }, argv = { F, "pause" },
    ready = "none", pid_timeout = 0.3, kill_grace = 0.2 }, "helper", 5)
  lu.assertEquals(err.message, "helper did not report a pid on fd 3 within 0.3 s (2 of 4 bytes came)")
end

--- fn(...) under a watchdog: a hang inside appstart (a loop that never
-- gives the CPU back) becomes a test failure after `seconds` instead of
-- hanging the suite. A Lua hook belongs to one coroutine, so the tasks fn
-- creates get it too, through a coroutine.create wrapped meanwhile.
local function within(seconds, fn, ...)
  local deadline, tripped = now() + seconds, false
  local function hook()
    if not tripped and now() > deadline then
      tripped = true
      error(string.format("watchdog: still running after %g s (appstart hangs)", seconds), 2)
    end
  end
  local create = coroutine.create
  coroutine.create = function(f) -- luacheck: ignore 122 (restored below)
    local co = create(f)
    debug.sethook(co, hook, "", 10000)
    return co
  end
  debug.sethook(hook, "", 10000)
  local r = table.pack(pcall(fn, ...))
  debug.sethook()
  coroutine.create = create -- luacheck: ignore 122
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- Start in a task of appstart.run and cancel it from another once the app
-- has written its pidfile and the launcher knows the app's pid (from the
-- spawn, or from the helper: its log says so). A cancel before the helper
-- reports leaves the launcher nothing to terminate, by design.
local function cancelled_start(opts, pidfile)
  local before = S.snapshot()
  local logged, log = S.recorder()
  opts.log = log
  local function pid_known()
    if not opts.helper then return true end
    for _, l in ipairs(logged) do if l:match("helper reported pid") then return true end end
    return false
  end
  local app, err, pid
  local took = S.timed(within, 8, appstart.run, function()
    local starter = appstart.spawn(function() app, err = start(opts) end)
    local deadline = now() + 3
    while not (S.read(pidfile) and pid_known()) and now() < deadline do appstart.sleep(0.005) end
    pid = pid_in(pidfile)
    lu.assertTrue(pid_known(), "the launcher never learned the pid")
    starter:cancel()
  end)
  lu.assertNil(app)
  lu.assertEquals(err.code, "cancelled", tostring(err))
  lu.assertTrue(took < 3, "cancelled start took " .. took .. " s")
  lu.assertTrue(await_gone(pid, 1), "app still running")
  S.assert_clean(before)
  return err
end

function Errors.test_cancelled_start_terminates_the_app()
  local pidfile = S.tmpname("pid")
  local err = cancelled_start({ argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "fd",
    ready_timeout = 30 }, pidfile)
  lu.assertEquals(err.status, { signal = 15 })
end

function Errors.test_cancelled_start_behind_a_helper_terminates_the_app()
  local pidfile = S.tmpname("pid")
  cancelled_start({ helper = { F, "fork", "pidfile=" .. pidfile, "pause", "|", "int32=3:child", "exit=0" },
    argv = { "pause" }, ready = "fd", ready_timeout = 30 }, pidfile)
end

-- A helper that reports its app (the fork's actions) at once, then
-- lingers `linger` seconds and writes `exited` as it exits.
local function lingering_helper(app_part, linger, exited)
  local argv = { F, "fork" }
  for _, a in ipairs(app_part) do argv[#argv + 1] = a end
  for _, a in ipairs { "|", "int32=3:child", "sleep=" .. linger, "pidfile=" .. exited, "exit=0" } do
    argv[#argv + 1] = a
  end
  return argv
end

-- Each kind of ready message (its ready option, and the app's actions)
-- sent `at` seconds into the app's run (never: nil).
local function ready_kinds(at)
  local file = S.tmpname("ready")
  local wait = at and "sleep=" .. at or "pause"
  return {
    { ready = "fd", app = { wait, "line=4:up", "pause" } },
    { ready = "notify", app = { wait, "notify=READY=1", "pause" } },
    { ready = { file = file }, app = { wait, "pidfile=" .. file, "pause" } },
  }
end

-- ready_timeout runs from the helper's report (README: Probes), not from
-- its exit, which pid_timeout bounds apart: an app behind a helper that
-- lingers after its report times out while the helper still runs (it
-- timed out ready_timeout after the helper's exit, up to pid_timeout
-- late: the helper, killed by the failed start, wrote its file first).
function Errors.test_behind_a_helper_that_lingers_the_app_times_out_before_the_helper_exits()
  for _, case in ipairs(ready_kinds(nil)) do
    local exited = S.tmpname("exited")
    local err = fail_case({ helper = lingering_helper(case.app, 3, exited), argv = { "pause" }, ready = case.ready,
      ready_timeout = 0.3, pid_timeout = 6 }, "timeout", 6)
    lu.assertNil(S.read(exited), "timed out once the helper had exited: " .. err.message)
    lu.assertStrContains(err.message, "app not ready within 0.3 s: ")
  end
end

-- Its ready message, sent past ready_timeout from the report but before
-- ready_timeout from the helper's exit (the helper exits at 1 s, the
-- app is ready at 2.1 s, ready_timeout 1.5), comes too late (it was
-- taken).
function Errors.test_behind_a_helper_that_lingers_a_ready_message_past_ready_timeout_from_the_report_is_late()
  for _, case in ipairs(ready_kinds(2.1)) do
    local exited = S.tmpname("exited")
    local err = fail_case({ helper = lingering_helper(case.app, 1, exited), argv = { "pause" }, ready = case.ready,
      ready_timeout = 1.5, pid_timeout = 6 }, "timeout", 6)
    lu.assertStrContains(err.message, "app not ready within 1.5 s: ")
  end
end

-- The rule for what comes while the helper lingers stays: a ready
-- message (a probe's pass) in time is noted, and the app is ready once
-- the helper has exited, past ready_timeout from the report though that
-- is (within pid_timeout).
function Errors.test_behind_a_helper_that_lingers_a_ready_message_in_time_counts_once_the_helper_exits()
  local before = S.snapshot()
  for _, case in ipairs(ready_kinds(0)) do
    local exited = S.tmpname("exited")
    local app, err = start { helper = lingering_helper(case.app, 1, exited), argv = { "pause" }, ready = case.ready,
      ready_timeout = 0.3, pid_timeout = 6 }
    lu.assertNotNil(app, tostring(err))
    lu.assertNotNil(S.read(exited), "ready before the helper had exited")
    lu.assertEquals(app:terminate(), { signal = 15 })
  end
  S.assert_clean(before)
end

-- What the app sends after its ready message, while the helper lingers
-- (a STATUS=, a second line), waits for the start's end, unread: polled
-- meanwhile, it woke every wait of the start at once, a spin until the
-- helper's exit (its CPU against a start whose app sends nothing more).
function Errors.test_what_comes_after_the_ready_message_while_the_helper_lingers_is_no_spin()
  local before = S.snapshot()
  local cases = {
    { ready = "fd", app = { "line=4:up", "pause" }, more = { "line=4:up", "line=4:more", "pause" } },
    { ready = "notify", app = { "notify=READY=1", "pause" }, more = { "notify=READY=1", "notify=STATUS=more", "pause" } },
  }
  for _, case in ipairs(cases) do
    local function cpu_of(app_part)
      local c = os.clock()
      local app, err = start { helper = lingering_helper(app_part, 1, S.tmpname("exited")), argv = { "pause" },
        ready = case.ready, ready_timeout = 5, pid_timeout = 6 }
      c = os.clock() - c
      lu.assertNotNil(app, tostring(err))
      lu.assertEquals(app:terminate(), { signal = 15 })
      return c
    end
    local clean, more = cpu_of(case.app), cpu_of(case.more)
    lu.assertTrue(more < 10 * clean + 0.1, string.format("%s: %.3f s of CPU, %.3f s with nothing more sent",
      case.ready, more, clean))
  end
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- argument mistakes raise before anything is spawned

local Args = {}

function Args.tearDown() S.kill_strays() end

--- opts must raise an error naming `field`; no process is started.
local function raises(field, opts)
  local before = S.snapshot()
  local ok, msg = pcall(appstart.start, opts)
  lu.assertFalse(ok, "no error for field " .. field)
  lu.assertEquals(type(msg), "string")
  lu.assertStrContains(msg, "'" .. field .. "'")
  S.assert_clean(before, field)
  return msg
end

local function marker_argv()
  return { F, "pidfile=" .. S.tmpname("spawned"), "line=3:x", "pause" }
end

function Args.test_wrong_types_name_the_field()
  raises("argv", { argv = "fixture" })
  raises("env", { argv = marker_argv(), env = "A=1" })
  raises("cwd", { argv = marker_argv(), cwd = 5 })
  raises("stdin", { argv = marker_argv(), stdin = true })
  raises("stdout", { argv = marker_argv(), stdout = {} })
  raises("ready", { argv = marker_argv(), ready = 1 })
  raises("ready_fd", { argv = marker_argv(), ready = "fd", ready_fd = "3" })
  raises("ready_fd", { argv = marker_argv(), ready = "fd", ready_fd = 3.5 })
  raises("pid_fd", { argv = marker_argv(), helper = { F }, pid_fd = "3" })
  raises("ready_timeout", { argv = marker_argv(), ready_timeout = "1" })
  raises("kill_grace", { argv = marker_argv(), kill_grace = -1 })
  raises("helper", { argv = marker_argv(), helper = "helper" })
  raises("on_exit", { argv = marker_argv(), on_exit = 1 })
  raises("log", { argv = marker_argv(), log = "stderr" })
end

function Args.test_options_that_are_not_a_table_raise()
  local before = S.snapshot()
  lu.assertErrorMsgContains("table expected", appstart.start, "fixture")
  lu.assertErrorMsgContains("table expected", appstart.start)
  S.assert_clean(before)
end

function Args.test_missing_argv()
  raises("argv", { ready = "fd" })
end

function Args.test_empty_argv()
  raises("argv", { argv = {} })
end

function Args.test_non_string_argv_entry()
  raises("argv", { argv = { F, 5 } })
  raises("argv", { argv = { F, "line=3:x", {} } })
  raises("argv", { argv = { true } })
end

function Args.test_non_string_helper_entry()
  raises("helper", { argv = marker_argv(), helper = { F, 1 } })
  raises("helper", { argv = marker_argv(), helper = {} })
end

function Args.test_unknown_option()
  raises("redy", { argv = marker_argv(), redy = "fd" })
  raises("timeout", { argv = marker_argv(), timeout = 1 })
end

function Args.test_bad_enum()
  raises("ready", { argv = marker_argv(), ready = "maybe" })
  raises("pid_format", { argv = marker_argv(), helper = { F }, pid_format = "hex" })
  raises("notify_access", { argv = marker_argv(), notify_access = "everyone" })
end

function Args.test_descriptors_below_3()
  raises("pid_fd", { argv = marker_argv(), helper = { F }, pid_fd = 2 })
  raises("pid_fd", { argv = marker_argv(), helper = { F }, pid_fd = -1 })
  raises("ready_fd", { argv = marker_argv(), ready = "fd", ready_fd = 0 })
  raises("ready_fd", { argv = marker_argv(), ready = "fd", ready_fd = 2 })
end

function Args.test_ready_fd_equal_to_pid_fd_with_a_helper()
  raises("ready_fd", { argv = marker_argv(), helper = { F }, ready = "fd", pid_fd = 5, ready_fd = 5 })
  raises("ready_fd", { argv = marker_argv(), helper = { F }, ready = "fd", ready_fd = 3 }) -- pid_fd defaults to 3
end

function Args.test_a_raised_start_spawned_nothing()
  local pidfile = S.tmpname("spawned")
  raises("ready", { argv = { F, "pidfile=" .. pidfile, "pause" }, ready = "maybe" })
  -- a fixture would have written its pidfile and still be running: neither
  lu.assertEquals(S.children(), {})
  lu.assertNil(S.read(pidfile))
end

-- A program whose name holds control characters (a name need not be the
-- launcher's own choice) is named with them escaped in every log line
-- and in tostring(err), as the app's own name is (the lines of the start,
-- "spawned pid", "ready after", and a failed start's error, wrote the
-- escape sequence as it was).
function Args.test_a_program_name_with_control_characters_is_logged_escaped()
  local link = S.tmpdir .. "/x\27[31mred"
  assert(os.execute(string.format("ln -s '%s' '%s'", F, link)))
  local lines = {}
  local function logger(level, message) lines[#lines + 1] = level .. ": " .. message end
  local app = assert(require("appstart").start { argv = { link, "exit=0" }, ready = "none", log = logger })
  app:wait()
  local _, err = require("appstart").start { argv = { link, "exit=0" }, ready = "fd", log = logger }
  os.remove(link)
  local all = table.concat(lines, "\n")
  lu.assertNil(all:find("\27", 1, true), all)
  lu.assertStrContains(all, "x\\x1b[31mred: spawned pid ")
  lu.assertEquals(tostring(err), "x\\x1b[31mred: app exited with code 0 before it was ready")
end

-------------------------------------------------------------------------------
-- a start finished by someone else while a call on it is under way (the
-- core's starter is given back as the app is handed over: nothing may use
-- it after)

local Reentry = {}

function Reentry.tearDown() S.kill_strays() end

-- on_status steps its own start to ready: the step that called it, and
-- the wait around it, return the app
function Reentry.test_a_start_stepped_to_ready_inside_its_own_on_status_gives_its_app()
  local before = S.snapshot()
  local h
  h = appstart.begin { argv = { F, "notify=STATUS=hi", "notify=READY=1", "pause" }, ready = "notify",
    on_status = function() h:step() end }
  local ok, app = pcall(h.wait, h)
  lu.assertTrue(ok, tostring(app))
  lu.assertTrue(h.done)
  lu.assertIs(app, h.app)
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

-- Two tasks of one run wait on the start opts begin: both must have the
-- same app (the run returns once both have), which is then terminated.
local function two_waiters_have_one_app(opts)
  local before = S.snapshot()
  local got = {}
  appstart.run(function()
    local h = appstart.begin(opts)
    appstart.spawn(function() got.b = { pcall(h.wait, h) } end)
    got.a = { pcall(h.wait, h) }
  end)
  lu.assertTrue(got.a[1], tostring(got.a[2]))
  lu.assertTrue(got.b[1], tostring(got.b[2]))
  lu.assertIs(got.a[2], got.b[2])
  local app = got.a[2]
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
  return app
end

-- one is inside a slow on_status while the other finishes the start
function Reentry.test_a_start_finished_by_another_waiter_during_on_status_gives_both_the_app()
  two_waiters_have_one_app { argv = { F, "notify=STATUS=hi", "sleep=0.05", "notify=READY=1", "pause" },
    ready = "notify", on_status = function() appstart.sleep(0.3) end }
end

-- one is in a log function that waits while the other finishes the
-- start; back, it leaves the app as the other made it, its process with
-- it (to be terminated)
function Reentry.test_a_start_finished_while_its_log_function_waits_keeps_its_app_whole()
  local app = two_waiters_have_one_app { argv = { F, "sleep=0.05", "line=3:x", "pause" }, ready = "fd",
    log = function(level) if level == "debug" then appstart.sleep(0.05) end end }
  lu.assertEquals(app.name, "x")
end

-- a probing start's check function passes: the task that steps the start
-- to ready and the other waiting on it are both back at once, not at the
-- next probe (probe_interval away: the other waited on the app's pidfd
-- alone)
function Reentry.test_both_waiters_of_a_probing_start_are_back_when_it_is_ready()
  local t0 = S.core.now()
  two_waiters_have_one_app { argv = { F, "pause" }, probe_interval = 20,
    ready = { check = function() appstart.sleep(0.05) return true end } }
  local took = S.core.now() - t0
  lu.assertTrue(took < 10, "the second waiter was back after " .. took .. " s")
end

-- a cancel that comes while a log function waits, as the start is made
-- ready: the start is cancelled, its app not handed over; the app
-- on_output was handed (its line is told before the ready line is read,
-- or with the failure's last lines) never says "ready"
function Reentry.test_a_cancel_while_the_ready_log_waits_is_not_lost()
  local before = S.snapshot()
  local began, app, err, early = false, nil, nil, nil
  appstart.run(function()
    local h
    -- (an app that outlives its SIGTERM: the cancel is still under way as
    -- the log function returns)
    h = appstart.begin { argv = { F, "ignore=TERM", "echo=hi", "line=3:x", "pause" }, ready = "fd", kill_grace = 0.2,
      stdout = "capture", on_output = function(a) early = a end,
      log = function(_, message)
        if not message:find("ready after", 1, true) then return end
        appstart.spawn(function()
          began = true
          h:cancel()
        end)
        -- (back once that task has begun its cancel, and waits on it)
        while not began do appstart.sleep(0.01) end
      end }
    app, err = h:wait()
  end)
  lu.assertNil(app)
  lu.assertEquals(err.code, "cancelled")
  lu.assertNotNil(early, "on_output was never told the app's line")
  lu.assertEquals(early.state, "starting")
  S.assert_clean(before)
end

-- a log function that raises (a ^C) as it is told the app was spawned,
-- the first it hears of a start: the error goes on, and the app is ended
-- as a closed handle's is (it ran on, till a collection), plain and in a
-- loop
local function raise_at_spawned(in_run)
  local before = S.snapshot()
  local spawned
  local opts = { argv = { F, "line=3:up", "pause" }, ready = "fd",
    log = function(_, message)
      if spawned then return end
      spawned = tonumber(message:match("spawned pid (%d+)"))
      if spawned then error("interrupted!", 0) end
    end }
  local ok, err, gone
  if in_run then
    appstart.run(function()
      ok, err = pcall(appstart.start, opts)
    end)
  else
    ok, err = pcall(appstart.start, opts)
  end
  gone = spawned and not S.alive(spawned)
  lu.assertFalse(ok)
  lu.assertEquals(err, "interrupted!")
  lu.assertNotNil(spawned, "the log function was never told the pid")
  lu.assertTrue(gone, "the app runs on")
  S.assert_clean(before)
end

function Reentry.test_a_log_function_that_raises_at_the_spawn_has_the_app_ended()
  raise_at_spawned(false)
end

function Reentry.test_a_log_function_that_raises_at_the_spawn_in_a_loop_has_the_app_ended()
  raise_at_spawned(true)
end

-- A log function that raises (a ^C in it) at a step of h:wait(), after
-- the spawn (the app's STATUS= told), and at every line after: the first
-- error goes on, and the start is cancelled, its app ended, as
-- appstart.start's is (it ran on for as long as the handle was held),
-- plain and in a loop.
function Reentry.test_a_log_function_that_raises_at_a_step_of_h_wait_cancels_the_start()
  for _, in_run in ipairs { false, true } do
    local before = S.snapshot()
    local pid_file = S.tmpname("app")
    local h
    local function go()
      -- (and at every line after it: the first error is the one that goes on)
      local raised = 0
      h = appstart.begin { argv = { F, "pidfile=" .. pid_file, "notify=STATUS=hello", "pause" }, ready = "notify",
        log = function(_, message)
          if raised > 0 or message:find("status: hello", 1, true) then
            raised = raised + 1
            error(raised == 1 and "interrupted!" or "interrupted again", 0)
          end
        end }
      return pcall(h.wait, h)
    end
    local ok, err
    if in_run then appstart.run(function() ok, err = go() end) else ok, err = go() end
    local what = in_run and "in a run" or "plain"
    lu.assertEquals({ ok, err }, { false, "interrupted!" }, what)
    lu.assertTrue(h.done, what)
    lu.assertEquals(h.err.code, "cancelled", what)
    lu.assertFalse(S.alive(S.pid_in(pid_file)), what .. ": the app runs on")
    S.assert_clean(before)
  end
end

-- on_output steps its own failed start as it is told the app's last line
-- (read as the failure is made): the failure is made once, logged once
function Reentry.test_a_failed_start_stepped_from_its_last_lines_fails_once()
  local before = S.snapshot()
  local lines, inner = {}, nil
  local h
  -- (the fork holds the output open: the last line, with no newline, is
  -- told as the start fails, no sooner; it is ended after)
  local child_pid = S.tmpname("child")
  h = appstart.begin { argv = { F, "fork", "pidfile=" .. child_pid, "sleep=5", "|", "echo=first", "write=1:last",
    "exit=1" }, ready = "notify", stdout = "capture",
    log = function(level, message) if level == "info" then lines[#lines + 1] = message end end,
    on_output = function(_, _, line)
      if line == "last" then inner = { pcall(h.step, h) } inner[3], inner[4] = h.err, h.err.output end
    end }
  local app, err = h:wait()
  lu.assertNil(app)
  lu.assertNotNil(inner, "on_output never had the last line")
  -- (the start is over as its last lines are told: the step says so)
  lu.assertEquals({ inner[1], inner[2] }, { true, true }, tostring(inner[2]))
  lu.assertIs(inner[3], err)
  -- (inside, the lines read as the failure was made; after, all of them)
  lu.assertIsTable(inner[4])
  lu.assertEquals(err.code, "died")
  lu.assertStrContains(err.message, "app exited with code 1 before it was ready")
  lu.assertEquals(err.output, { "first", "last" })
  lu.assertEquals(#lines, 1, table.concat(lines, "\n"))
  local pid = S.pid_in(child_pid)
  os.execute("kill -9 " .. pid)
  lu.assertTrue(S.await_gone(pid))
  S.assert_clean(before)
end

-- an error out of the telling of a failed start's last lines (the log
-- function raising for on_output's error, a ^C): the start is over all
-- the same, its error made, its output closed; a wait after returns it
function Reentry.test_a_failed_start_whose_last_lines_raise_is_over_all_the_same()
  local before = S.snapshot()
  local child_pid = S.tmpname("child")
  local raised = 0
  local h = appstart.begin { argv = { F, "fork", "pidfile=" .. child_pid, "sleep=5", "|", "write=1:last", "exit=1" },
    ready = "notify", stdout = "capture",
    log = function(level)
      if level == "error" then
        raised = raised + 1
        error("log raised")
      end
    end,
    on_output = function() error("on_output raised") end }
  local ok, why = pcall(h.wait, h)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(why), "log raised")
  lu.assertEquals(raised, 1)
  lu.assertTrue(h.done)
  local app, err = h:wait()
  lu.assertNil(app)
  lu.assertIs(err, h.err)
  lu.assertEquals(err.code, "died")
  lu.assertEquals(err.output, { "last" })
  local pid = S.pid_in(child_pid)
  os.execute("kill -9 " .. pid)
  lu.assertTrue(S.await_gone(pid))
  S.assert_clean(before)
end

-- on_output cancels its start at the first line of a chunk (one write of
-- four lines): the lines after it, read with it, are not handed over (the
-- output is closed under it) but go to the ring, and err.output has them
-- (it had only the first: taken before the close), plain and in a loop
local function cancel_from_on_output(in_run)
  local before = S.snapshot()
  local told, h = {}, nil
  h = appstart.begin { argv = { F, "write=1:a\\nb\\nc\\nd\\n", "sleep=5", "line=3:up", "pause" },
    ready = "fd", stdout = "capture",
    on_output = function(_, _, line)
      told[#told + 1] = line
      if line == "a" then h:cancel() end
    end }
  local app, err
  if in_run then appstart.run(function() app, err = h:wait() end) else app, err = h:wait() end
  lu.assertNil(app)
  lu.assertEquals(err.code, "cancelled")
  lu.assertEquals(told, { "a" })
  lu.assertEquals(err.output, { "a", "b", "c", "d" })
  S.assert_clean(before)
end

function Reentry.test_a_start_cancelled_by_on_output_keeps_the_rest_of_the_chunk_in_its_error()
  cancel_from_on_output(false)
end

function Reentry.test_a_start_cancelled_by_on_output_in_a_loop_keeps_the_rest_of_the_chunk_in_its_error()
  cancel_from_on_output(true)
end

-- a log function that ends a probing start as it is told "probing" (a
-- nested step in a plain script, a nested wait in a loop, or a wait of
-- its own while another task's wait makes it ready): the outer step
-- finds the start ready, its app handed over, rather than raising on its
-- starter, taken ("closed, its app taken")
local function probing_log_ends_it(how)
  local before = S.snapshot()
  local h, inner
  local function log(_, message)
    if inner or not message:find(": probing (check)", 1, true) then return end
    if how == "step" then
      inner = { pcall(h.step, h) }
    elseif how == "wait" then
      inner = { pcall(h.wait, h) }
    else
      appstart.spawn(function() h:wait() end)
      while not h.done do appstart.sleep(0.01) end
      inner = { true, true }
    end
  end
  local function body()
    h = appstart.begin { argv = { F, "pause" }, ready = { check = function() return true end }, log = log }
    return pcall(h.wait, h)
  end
  local ok, app
  if how == "step" then ok, app = body() else appstart.run(function() ok, app = body() end) end
  lu.assertNotNil(inner, "the log function was never told the probe began")
  lu.assertTrue(inner[1], tostring(inner[2]))
  lu.assertTrue(ok, tostring(app))
  lu.assertIs(app, h.app)
  lu.assertEquals(app.state, "ready")
  lu.assertTrue(app:kill("KILL"))
  lu.assertEquals(app:wait().signal, 9)
  S.assert_clean(before)
end

function Reentry.test_a_probing_start_stepped_to_ready_by_its_log_function_is_ready_once()
  probing_log_ends_it("step")
end

function Reentry.test_a_probing_start_waited_for_by_its_log_function_in_a_loop_is_ready_once()
  probing_log_ends_it("wait")
end

function Reentry.test_a_probing_start_made_ready_by_another_task_while_its_log_function_waits_is_ready_once()
  probing_log_ends_it("other")
end

return {
  TestStartReentry = Reentry,
  TestStartSuccess = Success, TestStartErrors = Errors, TestStartArguments = Args,
  TestStartSuccessNoPidfd = S.without_pidfd(Success), TestStartErrorsNoPidfd = S.without_pidfd(Errors),
  TestStartSuccessExecPipe = S.with_exec_pipe(Success), TestStartErrorsExecPipe = S.with_exec_pipe(Errors),
}
