--- The `appstart` command, run for real as a subprocess (lua5.4
-- lua/bin/appstart, environment inherited): usage, what it prints on a
-- start, that a started app is left running and a failed one is not, exit
-- codes, --json, --quiet, --verbose, STATUS= display, the app's
-- environment, directory and stdio, --watch and signals, and an installed
-- copy (make install) that finds its own modules.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local core = S.core
local F = S.fixture

local SPEC_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local BIN = SPEC_DIR .. "/../lua/bin/appstart"

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function has(program)
  return os.execute("command -v " .. program .. " >/dev/null 2>&1")
end

-- a hung command fails its test instead of the suite; --foreground keeps
-- the command in our process group, where S.strays() looks for leftovers
local GUARD = has("timeout") and "timeout --foreground -s KILL 20 " or ""

local function command_line(args, unguarded, ignored)
  -- under make sanitize the instrumented module needs the ASan runtime
  -- preloaded into this Lua too (appstart keeps it out of the apps)
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  local env = preload and ("env LD_PRELOAD=" .. quote(preload) .. " ") or ""
  -- ignored: signals the command starts with ignored, as under nohup (set
  -- inside the guard: timeout(1) catches SIGHUP, SIGINT, SIGQUIT, SIGTERM)
  local ignoring = ignored and ("sh -c " .. quote('trap "" ' .. ignored .. '; exec "$@"') .. " sh ") or ""
  local words = { env .. (unguarded and "" or GUARD) .. ignoring .. "lua5.4", quote(BIN) }
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  return table.concat(words, " ")
end

--- Run the command to completion: exit code, stdout, stderr. Output goes to
-- files, not pipes, since an app left running inherits them.
local function run(args)
  local out, err = S.tmpname("out"), S.tmpname("err")
  local _, how, code = os.execute(command_line(args) .. " >" .. out .. " 2>" .. err)
  lu.assertEquals(how, "exit", "the command was killed by a signal")
  return code, S.read(out), S.read(err)
end

--- Start a command line in the background; finish(bg) waits for its exit
-- code. (Its redirections are its own, made as it is exec'd: the shell that
-- waits for it says on its own stderr how a job a signal ended ended,
-- "Terminated", and that is not the command's.)
local function run_background_line(line)
  local bg = { out = S.tmpname("out"), err = S.tmpname("err"), code = S.tmpname("code") }
  os.execute(string.format("((exec %s >%s 2>%s); echo $? >%s.tmp; mv %s.tmp %s) 2>/dev/null &",
    line, bg.out, bg.err, bg.code, bg.code, bg.code))
  return bg
end

--- Start the command in the background (with the signals named in ignored
-- ignored); finish(bg) waits for its exit code.
local function run_background(args, ignored)
  return run_background_line(command_line(args, false, ignored))
end

local function finish(bg)
  return tonumber(S.await_file(bg.code, 20)), S.read(bg.out), S.read(bg.err)
end

--- Wait (bounded) until the file at path matches pattern.
local function await_match(path, pattern, timeout)
  local deadline = core.now() + (timeout or 5)
  repeat
    local s = S.read(path)
    if s and s:match(pattern) then return s:match(pattern) end
    core.wait_readable(-1, 0.005)
  until core.now() > deadline
  error(string.format("%s never matched %q: %q", path, pattern, S.read(path) or "(none)"), 2)
end

--- Stop an app the command left running (it is not our child).
local function kill_app(pid)
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  lu.assertTrue(S.await_gone(pid, 5), "app " .. pid .. " did not go")
end

--- Run the command, which must exit with `code`, print nothing on stdout,
-- exactly `message` on stderr (a `message` that starts with "^" is a
-- pattern it must match) and leave nothing behind.
local function fails(args, code, message)
  local before = S.snapshot()
  local got, out, err = run(args)
  lu.assertEquals(got, code)
  lu.assertEquals(out, "")
  if message:sub(1, 1) == "^" then
    lu.assertStrMatches(err, message)
  else
    lu.assertEquals(err, message)
  end
  S.assert_clean(before)
end

--- Run the command, which must exit 0 having printed "appstart: NAME
-- ready: pid N" first. Returns N (the app, left running) and stderr.
local function started(args, name)
  local code, out, err = run(args)
  lu.assertEquals(code, 0, err)
  local pid = tonumber(out:match("^appstart: " .. name .. " ready: pid (%d+)"))
  lu.assertNotNil(pid, out)
  return pid, err
end

local function ppid(pid)
  return tonumber(S.proc_status(pid).PPid)
end

local function assert_contains(s, text, msg)
  lu.assertNotNil(s, msg)
  if not s:find(text, 1, true) then
    lu.fail(string.format("%s%q not found in %q", msg and (msg .. ": ") or "", text, s))
  end
end

-------------------------------------------------------------------------------

local Usage = {}
function Usage.tearDown() S.kill_strays() end

-- Each case {args, message}: exit 2, nothing on stdout, "appstart:
-- MESSAGE" on stderr and the hint to --help (right after it: whole).
local function usage_errors(cases, whole)
  for _, case in ipairs(cases) do
    local args, message = case[1], case[2]
    local label = table.concat(args, " ")
    local code, out, err = run(args)
    lu.assertEquals(code, 2, label)
    lu.assertEquals(out, "", label)
    if whole then
      assert_contains(err, "appstart: " .. message .. "\nTry 'appstart --help'", label)
    else
      assert_contains(err, "appstart: " .. message, label)
      assert_contains(err, "Try 'appstart --help'", label)
    end
  end
end

function Usage.test_help_prints_complete_usage_on_stdout_and_exits_0()
  local code, out, err = run { "--help" }
  lu.assertEquals(code, 0)
  lu.assertEquals(err, "")
  lu.assertStrMatches(out, "^Usage: appstart %[options%] %-%- COMMAND %[ARG%.%.%.%]\n.*")
  for _, option in ipairs { "--ready=WHAT", "tcp:HOST:PORT, unix:PATH", "file:PATH", "--probe-interval=S",
    "--probe-timeout=S", "--ready-fd=N", "--pid-fd=N",
    "--pid-format=int32le|line", "--notify-access=main|exec|all", "--user=NAME",
    "--group=NAME|GID", "--env=NAME=VALUE", "--clear-env", "--chdir=DIR",
    "--stdin=inherit|null|PATH", "--stdout=inherit|null|PATH|capture|syslog|file:PATH:MAX:KEEP",
    "--stderr=inherit|null|PATH|capture|syslog|file:PATH:MAX:KEEP|stdout",
    "--timeout=S", "--pid-timeout=S", "--grace=S", "--kill-mode=process|group|cgroup", "--watchdog=S",
    "--watch", "--json", "-q, --quiet",
    "-v, --verbose", "-h, --help", "--version" } do
    assert_contains(out, option, "usage")
  end
  -- where the app's output goes when the command leaves it running
  assert_contains(out, "default null, so that $(appstart ...) returns at\n", "usage")
  -- stderr's default is its own, not --stdout's
  assert_contains(out, "the app's stderr, as --stdout; default null,\n"
    .. "                           with --watch inherit (whatever --stdout is);\n", "usage")
  lu.assertNil(out:find("default as", 1, true), "usage")
end

function Usage.test_a_bare_appstart_prints_the_usage_on_stderr_and_exits_2()
  local before = S.snapshot()
  local code, out, err = run {}
  lu.assertEquals(code, 2)
  lu.assertEquals(out, "")
  lu.assertStrMatches(err, "^Usage: appstart %[options%] %-%- COMMAND %[ARG%.%.%.%]\n.*%-%-version.*")
  S.assert_clean(before)
end

function Usage.test_short_options_h_q_v_are_help_quiet_and_verbose()
  local code, out, err = run { "-h" }
  lu.assertEquals(code, 0, err)
  lu.assertStrMatches(out, "^Usage: appstart .*")
  code, out, err = run { "-q", "--ready=fd", "--", F, "line=3:shush", "pause" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "")
  lu.assertEquals(err, "")
  local strays = S.strays()
  lu.assertEquals(#strays, 1, "the app was not left running")
  kill_app(strays[1])
  local pid
  pid, err = started({ "-v", "--ready=fd", "--", F, "line=3:loud", "pause" }, "loud")
  assert_contains(err, "appstart: debug: fixture: spawned pid " .. pid .. "\n")
  kill_app(pid)
  fails({ "-q", "-v", "--", F, "pause" }, 2, "^appstart: %-%-quiet and %-%-verbose exclude each other\n.*")
end

function Usage.test_version_prints_the_library_version()
  local code, out, err = run { "--version" }
  lu.assertEquals(code, 0)
  lu.assertEquals(out, "appstart " .. appstart.version .. "\n")
  lu.assertEquals(err, "")
end

-- --help and --version win whatever else is given, before them or after:
-- a mistake in the rest too (it was a usage error, exit 2); not a value
-- of an option's, nor an argument of COMMAND's
function Usage.test_help_and_version_win_whatever_else_is_given()
  for _, argv in ipairs {
    { "--bogus", "--version" }, { "--json", "--json", "--version" }, { "--timeout=abc", "--version" },
    { "--version", "--bogus" }, { "-q", "-v", "--version", "--", F, "pause" }, { "--ready=fd", "--version" },
  } do
    local code, out, err = run(argv)
    lu.assertEquals({ code, out, err }, { 0, "appstart " .. appstart.version .. "\n", "" }, table.concat(argv, " "))
  end
  for _, argv in ipairs { { "--timeout=abc", "--help" }, { "--foo", "-h", "--version" }, { "supervise", "--bogus", "-h" },
    { "supervise", "a.lua", "b.lua", "--help" } } do
    local code, out = run(argv)
    lu.assertEquals(code, 0, table.concat(argv, " "))
    lu.assertStrMatches(out, "^Usage: appstart .*", nil, nil, table.concat(argv, " "))
  end
  -- a value, or COMMAND's: not the command's own --version
  fails({ "--timeout", "--version", "--", F, "pause" }, 2, "^appstart: option '%-%-timeout': invalid value '%-%-version'.*")
  fails({ "--bogus", "--", F, "--version" }, 2, "^appstart: unknown option '%-%-bogus'\n.*")
  -- "--" is no option's value there either, as for the rest of the
  -- parsing: it ends the options, and what follows is COMMAND's
  fails({ "--chdir", "--", "--version" }, 2, "^appstart: option '%-%-chdir' needs a value\n.*")
  fails({ "--timeout", "--", "--help" }, 2, "^appstart: option '%-%-timeout' needs a value\n.*")
end

--- Run the command to completion, its stdout a full disk: exit code,
-- stderr.
local function run_to_full(args)
  local err = S.tmpname("err")
  local _, how, code = os.execute(command_line(args) .. " >/dev/full 2>" .. err)
  lu.assertEquals(how, "exit", "the command was killed by a signal")
  return code, S.read(err)
end

-- What it could not write to stdout is said, and the help and version
-- exit 1 then (they exited 0, what they print lost without a word).
function Usage.test_help_and_version_that_cannot_be_written_say_so_and_exit_1()
  for _, case in ipairs { { { "--help" }, "the help" }, { { "--version" }, "the version" },
    { { "supervise", "--help" }, "the help" } } do
    local code, err = run_to_full(case[1])
    lu.assertEquals({ code, err }, { 1, "appstart: cannot write to stdout (No space left on device): " .. case[2]
      .. " lost\n" }, table.concat(case[1], " "))
  end
end

-- The same where stdout's reader has gone: the write fails (EPIPE), said
-- so; SIGPIPE does not end the command (it died of it, exit 141, without
-- a word).
function Usage.test_help_and_version_to_a_reader_gone_say_so_and_exit_1()
  for _, case in ipairs { { { "--help" }, "the help" }, { { "--version" }, "the version" },
    { { "supervise", "--help" }, "the help" } } do
    local err, closed, rc = S.tmpname("err"), S.tmpname("closed"), S.tmpname("rc")
    -- the command runs once the pipe's reader has closed it
    assert(os.execute(string.format("{ while [ ! -e %s ]; do sleep 0.01; done; %s 2>%s; echo $? >%s; } | { exec <&-; : >%s; }",
      closed, command_line(case[1]), err, rc, closed)))
    lu.assertEquals({ S.read(rc), S.read(err) }, { "1\n", "appstart: cannot write to stdout (Broken pipe): "
      .. case[2] .. " lost\n" }, table.concat(case[1], " "))
  end
end

-- With --watch an app whose ready object could not be written is watched
-- all the same (its pid was lost to a reader, not to the command), and
-- that object and the exit's are said lost on stderr (they were lost
-- without a word).
function Usage.test_watched_json_objects_that_cannot_be_written_are_said_lost()
  local before = S.snapshot()
  local code, err = run_to_full { "--watch", "--json", "--", F, "notify=READY=1", "sleep=0.1", "exit=7" }
  lu.assertEquals(code, 7)
  lu.assertEquals(err, "appstart: cannot write to stdout (No space left on device): the ready object lost\n"
    .. "appstart: cannot write to stdout (No space left on device): the exit's object lost\n")
  code, err = run_to_full { "--json", "--", F, "exit=3" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "appstart: cannot write to stdout (No space left on device): the failure's object lost\n")
  S.assert_clean(before)
end

function Usage.test_unknown_option_is_a_usage_error_with_a_hint_to_help()
  fails({ "--bogus", "--", F, "pause" }, 2, "appstart: unknown option '--bogus'\n"
    .. "Try 'appstart --help' for more information.\n")
end

function Usage.test_bad_values_and_missing_parts_are_usage_errors_that_start_nothing()
  local before = S.snapshot()
  local cases = {
    { { "--ready=maybe", "--", F, "pause" }, "option '--ready': invalid value 'maybe'" },
    { { "--ready-fd=2", "--", F, "pause" }, "option '--ready-fd': invalid value '2'" },
    { { "--pid-fd", "x", "--", F, "pause" }, "option '--pid-fd': invalid value 'x'" },
    { { "--pid-format=hex", "--", F, "pause" }, "option '--pid-format': invalid value 'hex'" },
    { { "--notify-access=some", "--", F, "pause" }, "option '--notify-access': invalid value" },
    { { "--timeout=-1", "--", F, "pause" }, "option '--timeout': invalid value '-1'" },
    { { "--grace=soon", "--", F, "pause" }, "option '--grace': invalid value 'soon'" },
    -- seconds are a finite decimal number >= 0 (not whatever Lua's
    -- tonumber reads: 0x10 was 16 s, " 1" 1 s)
    { { "--timeout=nan", "--", F, "pause" }, "option '--timeout': invalid value 'nan'" },
    { { "--timeout=0x10", "--", F, "pause" }, "option '--timeout': invalid value '0x10'" },
    { { "--timeout= 1", "--", F, "pause" }, "option '--timeout': invalid value ' 1'" },
    { { "--grace=+1", "--", F, "pause" }, "option '--grace': invalid value '+1'" },
    { { "--timeout=inf", "--", F, "pause" }, "option '--timeout': invalid value 'inf'" },
    { { "--timeout=1e999", "--", F, "pause" }, "option '--timeout': invalid value '1e999'" },
    { { "--grace=-0.5", "--", F, "pause" }, "option '--grace': invalid value '-0.5'" },
    { { "--grace=", "--", F, "pause" }, "option '--grace': invalid value ''" },
    { { "--pid-timeout=5s", "--", F, "pause" }, "option '--pid-timeout': invalid value '5s'" },
    -- no wait at all is no handshake (the start would fail, or not, as the
    -- app raced it)
    { { "--timeout=0", "--", F, "pause" }, "option '--timeout': invalid value '0' (expected a number of seconds > 0)" },
    { { "--pid-fd=3", "--pid-timeout=0", "--", F, "pause" }, "option '--pid-timeout': invalid value '0'" },
    -- a second value would silently replace the first
    { { "--user=nobody", "--user=root", "--", F, "pause" }, "option '--user' given twice" },
    { { "--ready=fd", "--ready", "none", "--", F, "pause" }, "option '--ready' given twice" },
    { { "-q", "--quiet", "--", F, "pause" }, "option '--quiet' given twice" },
    { { "--env=NOVALUE", "--", F, "pause" },
      "option '--env': invalid value 'NOVALUE' (expected NAME=VALUE)" },
    { { "--env==value", "--", F, "pause" }, "option '--env': invalid value '=value' (expected NAME=VALUE)" },
    { { "--env=A=1", "--env", "--", F, "pause" }, "option '--env' needs a value" },
    -- the notify protocol's: the start's own to set, never the app's (it
    -- would have had none of it)
    { { "--env=NOTIFY_SOCKET=/tmp/x", "--", F, "pause" }, "option '--env': invalid value 'NOTIFY_SOCKET=/tmp/x' "
      .. "(NOTIFY_SOCKET is the start's own to set: --ready=notify gives the app one)" },
    { { "--env=WATCHDOG_USEC=5", "--", F, "pause" }, "option '--env': invalid value 'WATCHDOG_USEC=5' "
      .. "(WATCHDOG_USEC is the start's own to set: --watchdog gives the app one)" },
    { { "--env=WATCHDOG_PID=5", "--", F, "pause" }, "option '--env': invalid value 'WATCHDOG_PID=5' "
      .. "(WATCHDOG_PID is the start's own to set: --watchdog gives the app one)" },
    { { "--clear-env=yes", "--", F, "pause" }, "option '--clear-env' takes no value" },
    { { "--chdir=", "--", F, "pause" }, "option '--chdir': invalid value ''" },
    { { "--stdin=", "--", F, "pause" }, "option '--stdin': invalid value ''" },
    -- (a path alone: inherit or null would mean nothing there)
    { { "--ready=forks", "--pid-file=", "--", F, "pause" },
      "option '--pid-file': invalid value '' (expected a path)\nTry" },
    { { "--group=", "--user=0", "--", F, "pause" }, "option '--group': invalid value ''" },
    { { "--group=0", "--", F, "pause" }, "option '--group' needs --user" },
    { { "--timeout" }, "option '--timeout' needs a value" },
    { { "--timeout", "--", F, "pause" }, "option '--timeout' needs a value" },
    { { "--watch=yes", "--", F, "pause" }, "option '--watch' takes no value" },
    -- (as any flag: a value would be ignored)
    { { "--help=foo" }, "option '--help' takes no value" },
    { { "--version=1", "--", F, "pause" }, "option '--version' takes no value" },
    { { "--ready=fd" }, "missing COMMAND" },
    { { "--ready=fd", "--" }, "missing COMMAND" },
    { { "--quiet", "--verbose", "--", F, "pause" }, "--quiet and --verbose exclude each other" },
    { { "--ready=notify", "--ready-fd=4", "--", F, "pause" }, "option '--ready-fd' needs --ready=fd" },
    -- raised by appstart.start, reported as the option that caused it
    { { "--user=no-such-user-here", "--", F, "pause" }, "option '--user': no such user" },
    { { "--user=nobody", "--group=no-such-group-here", "--", F, "pause" },
      "option '--group': no such group 'no-such-group-here'" },
    -- values past what they are counted in, and an empty field
    { { "--watch", "--watchdog=1e13", "--", F, "pause" },
      "option '--watchdog': must be under 2^63 microseconds" },
    { { "--watch", "--stdout=file:/tmp/x:100:99999999999999999999", "--", F, "pause" },
      "option '--stdout': invalid value 'file:/tmp/x:100:99999999999999999999' (KEEP is too large)" },
    { { "--watch", "--stdout=file:/tmp/x:99999999999999999999", "--", F, "pause" },
      "option '--stdout': invalid value 'file:/tmp/x:99999999999999999999' (MAX_BYTES is too large)" },
    -- (in K, a product past 2^63 wrapped: 2^54 K + 1 K was 1024 bytes)
    { { "--watch", "--stdout=file:/tmp/x:18014398509481985K", "--", F, "pause" },
      "option '--stdout': invalid value 'file:/tmp/x:18014398509481985K' (MAX_BYTES is too large)" },
    { { "--watch", "--stdout=file:/tmp/x:9007199254740992k", "--", F, "pause" },
      "option '--stdout': invalid value 'file:/tmp/x:9007199254740992k' (MAX_BYTES is too large)" },
    { { "--watch", "--stdout=file:/tmp/x::3", "--", F, "pause" },
      "option '--stdout': invalid value 'file:/tmp/x::3' (expected file:PATH[:MAX_BYTES[:KEEP]], got an empty field)" },
  }
  usage_errors(cases)
  S.assert_clean(before)
end

function Usage.test_an_option_that_would_have_no_effect_is_a_usage_error()
  local before = S.snapshot()
  local cases = {
    { { "--pid-timeout=5", "--ready=fd", "--", F, "pause" },
      "option '--pid-timeout' needs --user, --pid-fd or --pid-format (it bounds the wait for the app's pid)" },
    { { "--pid-timeout=5", "--ready=forks", "--pid-file=/tmp/x.pid", "--", F, "pause" },
      "option '--pid-timeout' has no effect with --ready=forks (the pid file is waited for within --timeout)" },
    -- named as the option given, never as the Lua field it sets
    { { "--pid-format=line", "--ready=forks", "--pid-file=/tmp/x.pid", "--", F, "pause" },
      "option '--pid-format' has no effect with --ready=forks (the daemon's pid is read from --pid-file)" },
    { { "--pid-fd=4", "--ready=forks", "--pid-file=/tmp/x.pid", "--", F, "pause" },
      "option '--pid-fd' has no effect with --ready=forks (the daemon's pid is read from --pid-file)" },
    { { "--user=0", "--ready=forks", "--pid-file=/tmp/x.pid", "--", F, "pause" },
      "option '--user': cannot be combined with --ready=forks" },
    -- with --user the pid channel is appstart-helper's own
    { { "--user=nobody", "--pid-format=line", "--ready=none", "--", F, "pause" },
      "option '--pid-format': has no effect with '--user' (appstart-helper reports the pid; the app never sees it)" },
    { { "--user=nobody", "--pid-fd=7", "--ready=notify", "--", F, "pause" },
      "option '--pid-fd': has no effect with '--user' (appstart-helper reports the pid; the app never sees it)" },
    { { "--user=nobody", "--pid-fd=7", "--ready=fd", "--", F, "pause" },
      "option '--pid-fd': has no effect with '--user' (appstart-helper reports the pid; the app never sees it)" },
    -- a value that happens to be a field's name is left as it is
    { { "--user=nobody", "--group=stdout", "--", F, "pause" }, "option '--group': no such group 'stdout'" },
    -- the pid file is an option of its own; a file: output's parts
    { { "--ready=forks", "--pid-file=/tmp/", "--", F, "pause" }, "option '--pid-file': names a directory" },
    { { "--watch", "--stdout=file:/tmp/appstart-cli-x:10:2000", "--", F, "pause" },
      "option '--stdout': KEEP: an integer from 0 to 1000 expected, got 2000" },
    { { "--timeout=5", "--ready=none", "--", F, "pause" },
      "option '--timeout': has no effect with --ready=none (the app is ready once it runs: nothing is waited for)" },
    { { "--notify-access=main", "--ready=none", "--", F, "pause" }, "option '--notify-access' needs"
      .. " --ready=notify or --ready=fd (it says whose ready message counts), not --ready=none" },
    { { "--notify-access=all", "--ready=tcp:127.0.0.1:1", "--", F, "pause" },
      "option '--notify-access' needs --ready=notify or --ready=fd (it says whose ready message counts),"
      .. " not --ready=tcp:127.0.0.1:1" },
    -- a bare stream name is no file the user meant
    { { "--stdout=stdout", "--", F, "pause" }, "option '--stdout': 'stdout' would be a file of that name in"
      .. " the current directory: write './stdout' for such a file" },
    { { "--stderr=stderr", "--", F, "pause" }, "option '--stderr': 'stderr' would be a file of that name in"
      .. " the current directory: write './stderr' for such a file" },
  }
  usage_errors(cases, true)
  S.assert_clean(before)
end

--- --stdout and --stderr naming one file two ways (a file not made yet,
-- then made, then through a link): a usage error, nothing started.
function Usage.test_one_file_under_two_names_for_stdout_and_stderr_is_a_usage_error()
  local before = S.snapshot()
  local dir = S.tmpname("same")
  assert(os.execute("mkdir " .. dir))
  local message = "option '--stderr': the same file as stdout's: use --stderr=stdout"
  local marker = dir .. "/spawned"
  local function case(stdout, stderr)
    return { { "--watch", "--ready=none", "--stdout=file:" .. stdout, "--stderr=file:" .. stderr, "--", F,
      "pidfile=" .. marker }, message }
  end
  usage_errors({ case(dir .. "/log", dir .. "/./log"), case(dir .. "//log", dir .. "/log") }, true)
  assert(io.open(dir .. "/log", "w")):close()
  assert(os.execute("ln -s log " .. dir .. "/link"))
  usage_errors({ case(dir .. "/log", dir .. "/./log"), case(dir .. "/link", dir .. "/log") }, true)
  -- a plain file for stdout, the same rotated for stderr
  usage_errors({ { { "--watch", "--ready=none", "--stdout=" .. dir .. "/log", "--stderr=file:" .. dir .. "/./log:100",
    "--", F, "pidfile=" .. marker }, "option '--stderr': the same file as stdout's, which the app appends to itself:"
    .. " the launcher cannot rotate it (give the file, to rotate, as stdout, and --stderr=stdout)" } }, true)
  -- one of the other's rotated files (log.1 of log's), either way round
  usage_errors({ { { "--watch", "--ready=none", "--stdout=file:" .. dir .. "/log:100:3", "--stderr=file:" .. dir
    .. "/log.1", "--", F, "pidfile=" .. marker }, "option '--stderr': names " .. dir .. "/log.1, one of stdout's"
    .. " rotated files: a rotation would rename it away, with the lines written to it since" } }, true)
  usage_errors({ { { "--watch", "--ready=none", "--stdout=" .. dir .. "/log.2", "--stderr=file:" .. dir .. "/log:100:2", "--",
      F, "pidfile=" .. marker }, "option '--stdout': names " .. dir .. "/log.2, one of stderr's rotated files" } })
  lu.assertNil(S.read(marker), "nothing was started")
  S.assert_clean(before)
end

--- --ready=file:PATH naming the file of --stdout or --stderr (or one of
-- its rotated files), which appstart makes itself, passed at once (or at
-- a rotation), whatever the app did; PATH or a unix:PATH ending in '/'
-- never passed: usage errors, naming --ready, nothing started.
function Usage.test_a_file_probe_on_an_output_file_or_a_directory_is_a_usage_error()
  local before = S.snapshot()
  local dir = S.tmpname("probe")
  assert(os.execute("mkdir " .. dir))
  local marker = dir .. "/spawned"
  local function case(args, message)
    for _, a in ipairs { "--timeout=1", "--", F, "pidfile=" .. marker, "pause" } do args[#args + 1] = a end
    return { args, message }
  end
  usage_errors({
    case({ "--ready=file:" .. dir .. "/out", "--stdout=" .. dir .. "/./out" }, "option '--ready': file: names"
      .. " stdout's file, which the launcher makes: the probe would pass at once (or at the app's first line),"
      .. " ready or not"),
    case({ "--watch", "--ready=file:" .. dir .. "/log.2", "--stderr=file:" .. dir .. "/log:100:3" },
      "option '--ready': file: names " .. dir .. "/log.2, one of stderr's rotated files, which the launcher"
      .. " makes: the probe would pass at a rotation, ready or not"),
    case({ "--ready=file:" .. dir .. "/" }, "option '--ready': file: names a directory"),
    case({ "--ready=unix:" .. dir .. "/" }, "option '--ready': invalid value 'unix:" .. dir .. "/' ('unix:PATH'"
      .. " with a path not ending in '/': a socket is no directory)"),
  }, true)
  lu.assertNil(S.read(marker), "nothing was started")
  S.assert_clean(before)
end

--- A size in --stdout=file:PATH:MAX:KEEP that cannot be read (1.5K, -1,
-- 10MB, a third number) was taken as part of the file's name, and the
-- rotation asked for was lost without a word: a usage error now, naming
-- the field, nothing started, no file made. A ':' in a directory's name
-- is the name's, and so is one in the file's name before anything that
-- does not begin as a number, or before one with an extension.
function Usage.test_a_size_in_file_that_cannot_be_read_is_a_usage_error_not_part_of_the_name()
  local before = S.snapshot()
  local dir = S.tmpname("sizes")
  assert(os.execute("mkdir " .. dir))
  local marker = dir .. "/spawned"
  local function case(option, path, message)
    return { { "--watch", "--ready=none", option .. "=file:" .. dir .. "/" .. path, "--", F, "pidfile=" .. marker },
      string.format("option '%s': invalid value 'file:%s/%s' (%s)", option, dir, path, message) }
  end
  local function not_a_size(field)
    return "'" .. field .. "' is neither MAX_BYTES (a whole number, or with K, M or G) nor KEEP (a whole number)"
  end
  usage_errors({ case("--stdout", "x.log:1.5K", not_a_size("1.5K")), case("--stdout", "x.log:10:-1", not_a_size("-1")),
    case("--stdout", "x.log:10MB", not_a_size("10MB")), case("--stderr", "x.log:10MiB:3", not_a_size("10MiB")),
    case("--stdout", "x.log:1.5K:3", not_a_size("1.5K")), case("--stdout", "x.log:+5", not_a_size("+5")),
    case("--stdout", "x.log:.5M", not_a_size(".5M")), case("--stdout", "x.log:1,5K", not_a_size("1,5K")),
    case("--stdout", "x.log:0x10", not_a_size("0x10")),
    case("--stdout", "x.log:10:20:30", "expected file:PATH[:MAX_BYTES[:KEEP]], got one number too many, '10'") }, true)
  lu.assertNil(S.read(marker), "nothing was started")
  for _, name in ipairs { "x.log", "x.log:1.5K", "x.log:10:-1", "x.log:10MB", "x.log:10" } do
    lu.assertNil(S.read(dir .. "/" .. name), name)
  end
  -- (each a name: a directory's ':1.5K', the file's before a word, or
  -- before a date with an extension)
  assert(os.execute("mkdir " .. quote(dir .. "/a:1.5K")))
  for _, path in ipairs { "a:1.5K/x.log:1K:2", "x:odd.log", "app:2024-01-01.log" } do
    local code, _, err = run { "--watch", "--ready=fd", "--stdout=file:" .. dir .. "/" .. path, "--", F,
      "line=3:up", "line=1:hello", "exit=0" }
    lu.assertEquals(code, 0, err)
    lu.assertEquals(S.read(dir .. "/" .. path:gsub(":1K:2$", "")), "hello\n", path)
  end
  S.assert_clean(before)
end

function Usage.test_a_descriptor_layout_the_library_rejects_is_a_usage_error()
  local before = S.snapshot()
  -- the command reports its daemon's pid on fd 3, so the ready channel
  -- cannot be fd 3 too
  local code, _, err = run { "--pid-fd=3", "--ready-fd=3", "--", F, "pause" }
  lu.assertEquals(code, 2)
  -- the other field is named as the command's option too, never as Lua's
  assert_contains(err, "appstart: option '--ready-fd': same descriptor as '--pid-fd' (3)\n")
  -- --pid-fd not given (--pid-format brings a helper, its pid on fd 3):
  -- named as the default it is
  code, _, err = run { "--pid-format=line", "--ready-fd=3", "--", F, "pause" }
  lu.assertEquals(code, 2)
  assert_contains(err, "appstart: option '--ready-fd': same descriptor as the default '--pid-fd' (3)\n")
  S.assert_clean(before)
end

-------------------------------------------------------------------------------

local Start = {}

-- Started with stdin, stdout or stderr closed (as `cmd >&-` does), the
-- command works as with /dev/null there: the descriptors it makes (its
-- signals', first) take no stdio number, so the ready line is written
-- and it exits 0 at ready, the app left running. Before, with stdout
-- closed, the line waited for ever on the signals' descriptor.
function Start.test_the_command_with_stdin_stdout_or_stderr_closed_exits_at_ready()
  for _, closed in ipairs { "<&-", ">&-", "2>&-" } do
    local pidfile, out, err = S.tmpname("pid"), S.tmpname("out"), S.tmpname("err")
    local _, how, code = os.execute(command_line { "--ready=none", "--", F, "pidfile=" .. pidfile, "pause" }
      .. (closed == ">&-" and "" or " >" .. out) .. (closed == "2>&-" and "" or " 2>" .. err) .. " " .. closed)
    lu.assertEquals({ how, code }, { "exit", 0 }, closed .. ": " .. (S.read(err) or ""))
    -- (ready at the exec: the app writes its pid file after)
    local pid = tonumber(S.await_file(pidfile, 5))
    lu.assertNotNil(pid, closed)
    if closed ~= ">&-" then lu.assertStrMatches(S.read(out), "appstart: fixture ready: pid " .. pid .. ", .*\n") end
    lu.assertNotNil(S.read("/proc/" .. pid .. "/stat"), closed .. ": the app runs")
    kill_app(pid)
  end
end
function Start.tearDown() S.kill_strays() end

function Start.test_fd_start_prints_pid_name_and_time_and_leaves_the_app_running()
  local pidfile = S.tmpname("pid")
  local code, out, err = run { "--ready=fd", "--timeout=5", "--", F, "pidfile=" .. pidfile,
    "line=3:hello", "pause" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(err, "")
  local pid, took = out:match("^appstart: hello ready: pid (%d+), (%d+%.%d%d%d) s\n$")
  lu.assertNotNil(pid, out)
  pid = tonumber(pid)
  lu.assertEquals(pid, tonumber(S.read(pidfile)))
  lu.assertTrue(tonumber(took) < 5)
  lu.assertTrue(S.alive(pid), "the app was not left running")
  kill_app(pid)
  lu.assertEquals(S.strays(), {})
end

function Start.test_stdout_and_stderr_redirect_the_app_so_command_substitution_returns()
  local log = S.tmpname("applog")
  -- through a pipe, as $(appstart ...) reads it: with the app's stdout
  -- elsewhere, end of file comes when the command exits, not the app
  local p = io.popen(command_line { "--ready=fd", "--stdout=" .. log, "--stderr=null", "--",
    F, "echo=to-stdout", "echoerr=to-stderr", "line=3:redirected", "pause" })
  local out = p:read("a")
  p:close()
  local pid = tonumber(out:match("^appstart: redirected ready: pid (%d+)"))
  lu.assertNotNil(pid, out)
  lu.assertEquals(S.read(log), "to-stdout\n")
  kill_app(pid)
end

function Start.test_option_values_may_follow_as_separate_arguments()
  local pid = started({ "--ready", "fd", "--timeout", "5", "--grace", "0.2",
    "--", F, "line=3:spaced", "pause" }, "spaced")
  kill_app(pid)
end

function Start.test_ready_fd_implies_the_fd_protocol_on_that_descriptor()
  local pid = started({ "--ready-fd=7", "--", F, "line=7:seven", "pause" }, "seven")
  kill_app(pid)
end

function Start.test_notify_access_goes_with_the_fd_protocol_and_any_protocol_watches()
  -- the fd protocol's line is admitted by its sender too
  local pid = started({ "--ready=fd", "--notify-access=main", "--", F, "line=3:admitted", "pause" }, "admitted")
  kill_app(pid)
  -- a watched app of a protocol with no STATUS= (nothing to show)
  local code, out, err = run { "--watch", "--ready=none", "--", F, "exit=4" }
  lu.assertEquals(code, 4, err)
  lu.assertStrMatches(out, "^appstart: fixture ready: pid %d+, [%d.]+ s\n$")
end

-- A message from a process --notify-access does not admit is logged with
-- the option as the command spells it (it read "notify_access=main"):
-- before ready by the start, after it by the watch.
function Start.test_a_refused_senders_log_names_the_notify_access_option()
  local child, later = S.tmpname("child"), S.tmpname("later")
  local bg = run_background { "--watch", "--notify-access=main", "--", F,
    "fork", "notify=STATUS=forged", "pidfile=" .. child, "waitfile=" .. later, "notify=STATUS=again", "pause", "|",
    "waitfile=" .. child, "notify=READY=1", "pause" }
  local pid = tonumber(await_match(bg.out, "ready: pid (%d+)"))
  await_match(bg.err, "ignored a notify datagram from pid %d+ %(([^)]*)%)")
  S.touch(later)
  await_match(bg.err, "ignored 1 notify datagram from processes not admitted, the last from pid %d+ %(([^)]*)%)")
  os.execute("kill -TERM " .. pid)
  local code, _, err = finish(bg)
  local child_pid = S.pid_in(child)
  if S.alive(child_pid) then os.execute("kill -KILL " .. child_pid) end
  lu.assertEquals(code, 128 + 15, err)
  lu.assertStrContains(err, "ignored a notify datagram from pid " .. child_pid .. " (--notify-access=main)")
  lu.assertStrContains(err, "ignored 1 notify datagram from processes not admitted, the last from pid "
    .. child_pid .. " (--notify-access=main)")
  lu.assertNil(err:find("notify_access", 1, true), err)
end

-- The command under a file size limit (ulimit -f) whose writes of the
-- app's output to its file pass it: the bytes are lost and said, and the
-- kernel's SIGXFSZ for the command's own write is not the app's (it was
-- forwarded to it, as a signal sent to the command is, which its default
-- would end). A SIGUSR1 sent once the loss is said is forwarded: the
-- SIGXFSZ, pending before it, would have been by then.
function Start.test_a_file_past_the_commands_size_limit_loses_bytes_and_signals_nothing()
  local before = S.snapshot()
  local dir = S.tmpname("fsize")
  assert(os.execute("mkdir " .. dir))
  local out, err, code = S.tmpname("out"), S.tmpname("err"), S.tmpname("code")
  local go, usr1, xfsz = dir .. "/go", dir .. "/usr1", dir .. "/xfsz"
  -- (sh's ulimit -f counts 512-byte blocks: 4 KiB, of 16.8 KB written)
  os.execute(string.format("(ulimit -f 8; %s >%s 2>%s; echo $? >%s.tmp; mv %s.tmp %s) &", command_line {
    "--watch", "--ready=none", "--stdout=file:" .. dir .. "/app.log:100000", "--", F, "trap=USR1:" .. usr1,
    "trap=XFSZ:" .. xfsz, "lines=1:400:0123456789012345678901234567890123456789", "waitfile=" .. go, "exit=3" },
    out, err, code, code, code))
  await_match(err, "bytes of output not written to its file: File too large")
  local pid = tonumber(await_match(out, "ready: pid (%d+)"))
  -- the command is the app's parent
  os.execute("kill -USR1 " .. ppid(pid))
  S.await_file(usr1, 5)
  S.touch(go)
  lu.assertEquals(tonumber(S.await_file(code, 20)), 3, S.read(err))
  lu.assertNil(S.read(xfsz), "the command's SIGXFSZ reached the app")
  lu.assertNil(S.read(err):find("forwarding SIGXFSZ", 1, true), S.read(err))
  lu.assertTrue(#S.read(dir .. "/app.log") <= 4096)
  S.assert_clean(before)
end

function Start.test_stderr_defaults_to_dev_null_whatever_stdout_is()
  -- without --watch: /dev/null, even when --stdout is a file
  local log = S.tmpname("applog")
  local pid = started({ "--ready=fd", "--stdout=" .. log, "--", F, "line=3:split", "pause" }, "split")
  local p = io.popen("readlink /proc/" .. pid .. "/fd/1 /proc/" .. pid .. "/fd/2")
  local links = p:read("a")
  p:close()
  lu.assertEquals(links, log .. "\n/dev/null\n")
  kill_app(pid)
end

function Start.test_json_prints_one_object_with_pid_name_ready_after_and_status()
  local pidfile = S.tmpname("pid")
  local code, out, err = run { "--json", "--", F, "pidfile=" .. pidfile,
    "notify=STATUS=warming up", "notify=READY=1", "pause" }
  lu.assertEquals(code, 0, err)
  local pid, name, after, status =
    out:match('^{"pid":(%d+),"name":"([^"]*)","ready_after":([%d.e+-]+),"status":"([^"]*)"}\n$')
  lu.assertNotNil(pid, out)
  lu.assertEquals(tonumber(pid), tonumber(S.read(pidfile)))
  lu.assertEquals(name, "fixture") -- notify protocol: basename of COMMAND
  lu.assertTrue(tonumber(after) >= 0 and tonumber(after) < 5, after)
  lu.assertEquals(status, "warming up")
  -- stderr is not a terminal here: status updates are plain lines
  lu.assertEquals(err, "appstart: status: warming up\n")
  kill_app(tonumber(pid))
end

function Start.test_json_escapes_quotes_backslashes_controls_and_invalid_utf8()
  local code, out, err = run { "--json", "--ready=fd", "--", F,
    [[line=3:a"b\tc\\d\x01e\xffé]], "pause" }
  lu.assertEquals(code, 0, err)
  local pid, rest = out:match('^{"pid":(%d+),(.*)\n$')
  lu.assertNotNil(pid, out)
  lu.assertStrContains(rest, '"name":"a\\"b\\tc\\\\d\\u0001e\u{FFFD}é",', false)
  lu.assertStrContains(rest, '"status":null}', false)
  kill_app(tonumber(pid))
end

-- A ready report an app made long (a 4000-byte name of control bytes,
-- six bytes each in JSON; a long STATUS=) is one write of 4096 bytes at
-- most, "[...]" where it was cut: a signal between two writes cancelled
-- the start with half of it out, and a pid shown of an app then
-- terminated.
function Start.test_a_long_ready_report_is_one_write_cut_to_fit()
  local long_name = { "--ready=fd", "--", F, "line=3:" .. string.rep("\\x01", 4000), "pause" }
  local long_status = { "--", F, "notify=STATUS=" .. string.rep("\\x01", 3000) .. "\\nREADY=1", "pause" }
  for _, case in ipairs {
    { long_name, true, '^{"pid":%d+,"name":"[\\u0001]+%[%.%.%.%]","ready_after":[%d.e+-]+,"status":null}\n$' },
    { long_name, false, "^appstart: [\\x01]+%[%.%.%.%] ready: pid %d+, [%d.]+ s\n$" },
    { long_status, true, '^{"pid":%d+,"name":"fixture","ready_after":[%d.e+-]+,"status":"[\\u0001]+%[%.%.%.%]"}\n$' },
  } do
    local args = { table.unpack(case[1]) }
    if case[2] then table.insert(args, 1, "--json") end
    local code, out, err = run(args)
    lu.assertEquals(code, 0, err)
    local pid = tonumber(out:match('^{"pid":(%d+),') or out:match("ready: pid (%d+),"))
    lu.assertNotNil(pid, out)
    kill_app(pid)
    lu.assertTrue(#out <= 4096, #out .. " bytes")
    lu.assertStrMatches(out, case[3])
  end
end

function Start.test_json_object_encoder()
  local cli = require "appstart.cli"
  lu.assertEquals(cli.json_object {}, "{}")
  lu.assertEquals(cli.json_object {
    { "i", 42 }, { "f", 0.25 }, { "n", nil }, { "t", true }, { "inf", math.huge },
    { "s", "q\"\\/\n\r\b\f\127" },
  }, '{"i":42,"f":0.25,"n":null,"t":true,"inf":null,"s":"q\\"\\\\/\\n\\r\\b\\f\\u007f"}')
end

function Start.test_quiet_prints_nothing_on_success()
  local code, out, err = run { "--quiet", "--", F, "notify=STATUS=busy", "notify=READY=1", "pause" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "")
  lu.assertEquals(err, "")
  -- nothing printed, so find the app by its parent: gone, it was ours
  local strays = S.strays()
  lu.assertEquals(#strays, 1, "the app was not left running")
  kill_app(strays[1])
end

function Start.test_verbose_logs_each_step_at_debug_level()
  local pid, err = started({ "--verbose", "--ready=fd", "--", F, "line=3:loud", "pause" }, "loud")
  assert_contains(err, "appstart: debug: fixture: spawned pid " .. pid .. "\n")
  assert_contains(err, "appstart: debug: fixture: ready after ")
  kill_app(pid)
end

function Start.test_verbose_shows_STATUS_with_control_characters_escaped()
  -- (and a lone 0x9B: CSI to an 8-bit terminal)
  local pid, err = started({ "--verbose", "--", F, "notify=STATUS=\\x1b]0;owned\\x07\\x1b[31mred\\x9b1m",
    "notify=READY=1", "pause" }, "fixture")
  assert_contains(err, "appstart: info: fixture: status: \\x1b]0;owned\\x07\\x1b[31mred\\x9b1m\n")
  lu.assertNil(err:find("[\27\155]"), "an escape sequence reached the terminal")
  kill_app(pid)
end

-- the app's name (its ready line) as well, in every line that names it:
-- ready, and with --watch its end
function Start.test_verbose_shows_the_apps_name_with_control_characters_escaped()
  local code, out, err = run { "--verbose", "--watch", "--ready=fd", "--", F, "line=3:\\x1b]0;owned\\x07x",
    "exit=0" }
  lu.assertEquals(code, 0, err)
  lu.assertNil((out .. err):find("\27", 1, true), "an escape sequence reached the terminal:\n" .. out .. err)
  assert_contains(err, "appstart: debug: \\x1b]0;owned\\x07x: pid ")
end

function Start.test_pid_fd_without_user_takes_the_daemon_pid_from_the_command()
  local pidfile = S.tmpname("pid")
  local pid = started({ "--pid-fd=3", "--ready-fd=4", "--", F,
    "fork", "pidfile=" .. pidfile, "line=4:forked", "pause", "|", "int32=3:child", "exit=0" }, "forked")
  lu.assertEquals(pid, tonumber(S.read(pidfile)))
  kill_app(pid)
end

function Start.test_user_runs_the_app_through_the_helper_as_that_user()
  local p = io.popen("id -u nobody 2>/dev/null")
  local uid = tonumber(p:read("a"))
  p:close()
  if S.proc_status("self").Uid:match("%d+") ~= "0" or not uid then
    lu.skip("needs root and a user 'nobody'")
  end
  local pid = started({ "--user=nobody", "--ready=fd", "--", F, "line=3:dropped", "pause" }, "dropped")
  lu.assertEquals(tonumber(S.proc_status(pid).Uid:match("%d+")), uid)
  kill_app(pid)
end

-- A stderr whose reader has gone before the start (a fifo's only reader
-- closed): the STATUS= shown there would raise SIGPIPE, which cancelled
-- the start ("interrupted by SIGPIPE"); it is not written, the app comes
-- up and the command exits 0.
function Start.test_a_stderr_whose_reader_has_gone_does_not_cancel_the_start()
  local before = S.snapshot()
  local fifo, out, code = S.tmpname("fifo"), S.tmpname("out"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  -- (fd 3 reads and writes the fifo, so that fd 2 can be opened on it,
  -- then goes: fd 2 is a pipe with no reader)
  os.execute(string.format("((exec 3<>%s 2>%s 3<&-; exec %s >%s); echo $? >%s.tmp; mv %s.tmp %s) 2>/dev/null &",
    fifo, fifo, command_line { "--json", "--", F, "notify=STATUS=loading", "notify=READY=1", "pause" },
    out, code, code, code))
  local ended = tonumber(S.await_file(code, 20))
  local pid = tonumber(S.read(out):match('"pid":(%d+)'))
  if pid then kill_app(pid) end
  lu.assertEquals(ended, 0, S.read(out))
  lu.assertStrContains(S.read(out), '"status":"loading"')
  S.assert_clean(before)
end

function Start.test_status_on_a_terminal_is_one_line_rewritten_in_place()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  local out = S.tmpname("tty")
  -- --watch and an app that exits: script(1) returns once the command does
  local cmd = command_line { "--watch", "--", F, "notify=STATUS=one", "notify=STATUS=two",
    "notify=READY=1", "exit=0" }
  local ok = os.execute("script -qec " .. quote(cmd) .. " /dev/null >" .. out .. " 2>&1 </dev/null")
  lu.assertTrue(ok, S.read(out))
  local text = S.read(out)
  assert_contains(text, "\rone\27[K\rtwo\27[K\r\27[K", "status line")
  lu.assertNil(text:find("appstart: status:", 1, true), text)
  assert_contains(text, "appstart: fixture ready: pid ")
end

-- The status line is cut to the terminal's width, as the terminal says it
-- (a shell does not export COLUMNS; it was taken for 80), at a character,
-- a wide one counted as two columns: a longer one wraps, and "\r" cannot
-- take it back.
function Start.test_status_on_a_terminal_is_cut_to_its_width_at_a_character()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  -- (one status a run: a second that came within a tenth of a second
  -- would be held, a third would take its place)
  for _, case in ipairs { { string.rep("x", 70), string.rep("x", 39) },
    { string.rep("\u{e9}", 70), string.rep("\u{e9}", 39) },
    { string.rep("\u{4e2d}", 30), string.rep("\u{4e2d}", 19) }, -- (a wide character: two columns)
    -- continuation bytes no lead byte began (the fixture's escapes), and
    -- the bytes of a sequence that is no UTF-8 (overlong): written \xHH,
    -- as in every log line (a lone 0x80 to 0x9F is a C1 control to an
    -- 8-bit terminal), and cut as the text they are then (raw, they
    -- counted none, and the line wrapped)
    { string.rep("\\x80", 70), string.rep("\\x80", 9) .. "\\x8" },
    { string.rep("\\xe0\\x80\\x80", 40), string.rep("\\xe0\\x80\\x80", 3) .. "\\xe" } } do
    local out = S.tmpname("tty")
    local cmd = command_line { "--watch", "--", F, "notify=STATUS=" .. case[1], "notify=READY=1", "exit=0" }
    local ok = os.execute("COLUMNS= script -qec " .. quote("stty cols 40; exec " .. cmd) .. " /dev/null >" .. out
      .. " 2>&1 </dev/null")
    lu.assertTrue(ok, S.read(out))
    assert_contains(S.read(out), "\r" .. case[2] .. "\27[K", "status line")
  end
end

-- Every character a terminal shows two columns wide counts two: emoji
-- shown as such by default, in and out of U+1F300..U+1F64F (they counted
-- one, and a line of them wrapped, "\r" could not take it back).
function Start.test_status_on_a_terminal_counts_each_wide_emoji_as_two_columns()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  -- (20 columns, the last left empty: 9 of them, 18 columns)
  for _, emoji in ipairs { "\u{1f680}", "\u{1fa70}", "\u{231a}", "\u{26a1}", "\u{1f6f8}", "\u{2b50}" } do
    local out = S.tmpname("tty")
    local cmd = command_line { "--watch", "--", F, "notify=STATUS=" .. string.rep(emoji, 18), "notify=READY=1",
      "exit=0" }
    local ok = os.execute("COLUMNS= script -qec " .. quote("stty cols 20; exec " .. cmd) .. " /dev/null >" .. out
      .. " 2>&1 </dev/null")
    lu.assertTrue(ok, S.read(out))
    assert_contains(S.read(out), "\r" .. string.rep(emoji, 9) .. "\27[K", "status line")
  end
end

-- --watch --user on a terminal: the app, another user's, never gets the
-- terminal (it could read what is typed there); its lines are captured
-- and shown by the command.
function Start.test_watch_as_another_user_on_a_terminal_shows_the_apps_lines_captured()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  if S.proc_status("self").Uid:match("%d+") ~= "0" then lu.skip("needs root") end
  local out = S.tmpname("tty")
  local cmd = command_line { "--watch", "--user=nobody", "--ready=none", "--", F, "echo=hello", "echoerr=oops",
    "exit=0" }
  local ok = os.execute("script -qec " .. quote(cmd) .. " /dev/null >" .. out .. " 2>&1 </dev/null")
  local text = S.read(out)
  lu.assertTrue(ok, text)
  -- (a line read before the helper reported the app's pid says "?")
  lu.assertStrMatches(text, ".*fixture%[[%d?]+%]: hello.*")
  lu.assertStrMatches(text, ".*fixture%[[%d?]+%]: oops.*")
end

function Start.test_without_watch_the_apps_output_goes_to_dev_null_so_command_substitution_returns_at_ready()
  local before = S.snapshot()
  local errfile = S.tmpname("err")
  -- through a pipe, as out=$(appstart --json -- ...) reads it: the app
  -- writes before and after ready and lives on, yet the read ends at
  -- ready with the JSON alone
  local p = io.popen(command_line { "--json", "--", F, "echo=early", "echoerr=early-err",
    "notify=READY=1", "sleep=2", "echo=late", "exit=0" } .. " 2>" .. errfile)
  local took, out = S.timed(p.read, p, "a")
  p:close()
  local pid = tonumber(out:match('^{"pid":(%d+),"name":"fixture",[^\n]*}\n$'))
  lu.assertNotNil(pid, out)
  lu.assertTrue(took < 1.5, "the read waited " .. took .. " s for the app")
  lu.assertEquals(S.read(errfile), "")
  kill_app(pid)
  S.assert_clean(before)
end

function Start.test_stdout_and_stderr_inherit_keep_the_app_on_the_commands_own()
  -- the app writes before it is ready: its line comes before appstart's own
  local code, out, err = run { "--stdout=inherit", "--stderr", "inherit", "--ready=fd", "--", F,
    "echo=app-out", "echoerr=app-err", "line=3:kept", "pause" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(err, "app-err\n")
  local pid = tonumber(out:match("^app%-out\nappstart: kept ready: pid (%d+)"))
  lu.assertNotNil(pid, out)
  kill_app(pid)
end

function Start.test_with_watch_the_apps_output_still_defaults_to_the_commands()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--ready=fd", "--", F, "echo=app-out", "echoerr=app-err",
    "line=3:watched", "exit=0" }
  lu.assertEquals(code, 0, err)
  lu.assertStrMatches(out, "^app%-out\nappstart: watched ready: pid %d+, [%d.]+ s\n$")
  lu.assertStrMatches(err, "^app%-err\nappstart: watched %(pid %d+%) exited with code 0\n$")
  S.assert_clean(before)
end

local function env_lines(text)
  local set = {}
  for _, line in ipairs(S.lines(text)) do set[line] = true end
  return set
end

function Start.test_env_sets_variables_over_the_inherited_environment()
  local envfile = S.tmpname("env")
  local pid = started({ "--ready=fd", "--env=APPSTART_CLI_ONE=1", "--env", "APPSTART_CLI_TWO=a=b",
    "--env=APPSTART_CLI_ONE=again", "--env=APPSTART_CLI_EMPTY=", "--", F, "env=" .. envfile,
    "line=3:env", "pause" }, "env")
  kill_app(pid)
  local env = env_lines(S.read(envfile))
  lu.assertTrue(env["APPSTART_CLI_ONE=again"], "the last --env of a name counts")
  lu.assertNil(env["APPSTART_CLI_ONE=1"])
  lu.assertTrue(env["APPSTART_CLI_TWO=a=b"], "a value may hold '='")
  lu.assertTrue(env["APPSTART_CLI_EMPTY="], "a value may be empty")
  lu.assertTrue(env["APPSTART_FIXTURES=" .. os.getenv("APPSTART_FIXTURES")], "the rest is inherited")
end

function Start.test_clear_env_starts_from_an_empty_environment()
  local envfile = S.tmpname("env")
  local pid = started({ "--ready=fd", "--clear-env", "--env=ONLY=this", "--", F, "env=" .. envfile,
    "line=3:clear", "pause" }, "clear")
  kill_app(pid)
  lu.assertEquals(S.read(envfile), "ONLY=this\n")
  pid = started({ "--ready=fd", "--clear-env", "--", F, "env=" .. envfile, "line=3:empty", "pause" }, "empty")
  kill_app(pid)
  lu.assertEquals(S.read(envfile), "")
end

function Start.test_chdir_runs_the_app_in_that_directory()
  local cwdfile = S.tmpname("cwd")
  local pid = started({ "--ready=fd", "--chdir=" .. S.bindir, "--", F, "cwd=" .. cwdfile,
    "line=3:moved", "pause" }, "moved")
  kill_app(pid)
  lu.assertEquals(S.read(cwdfile), S.bindir .. "\n")
  -- a directory that is not there fails the start, leaving nothing
  fails({ "--ready=fd", "--chdir=/nonexistent/appstart-cli-test", "--", F, "line=3:x", "pause" }, 1,
    "^appstart: [^\n]*No such file or directory\n$")
end

function Start.test_stdin_reads_from_a_path_or_dev_null()
  local input, copy = S.tmpname("in"), S.tmpname("copy")
  local f = assert(io.open(input, "w"))
  f:write("fed\n")
  f:close()
  local pid = started({ "--ready=fd", "--stdin=" .. input, "--", F, "stdin=" .. copy,
    "line=3:fed", "pause" }, "fed")
  kill_app(pid)
  lu.assertEquals(S.read(copy), "fed\n")
  pid = started({ "--ready=fd", "--stdin=null", "--", F, "stdin=" .. copy, "line=3:nothing", "pause" }, "nothing")
  kill_app(pid)
  lu.assertEquals(S.read(copy), "")
end

function Start.test_seconds_take_any_finite_number_lua_reads()
  local pid = started({ "--ready=fd", "--timeout=1e3", "--grace=.5", "--", F, "line=3:numbers", "pause" },
    "numbers")
  kill_app(pid)
  local took = S.timed(fails, { "--ready=fd", "--timeout=.3", "--grace=0", "--", F, "pause" }, 1,
    "^appstart: app not ready within 0%.3 s[^\n]*\n$")
  lu.assertTrue(took < 3, "took " .. took .. " s")
end

function Start.test_pid_timeout_bounds_the_wait_for_the_pid_on_pid_fd()
  -- COMMAND is to fork and report its daemon's pid on fd 3, and never does
  local took = S.timed(fails, { "--pid-fd=3", "--pid-timeout=.3e0", "--grace=0.2", "--", F, "pause" }, 1,
    "^appstart: fixture did not report a pid on fd 3 within 0%.3 s[^\n]*\n$")
  lu.assertTrue(took < 3, "took " .. took .. " s")
end

function Start.test_group_sets_the_primary_group_of_the_user()
  local p = io.popen("id -u nobody 2>/dev/null")
  local uid = tonumber(p:read("a"))
  p:close()
  if S.proc_status("self").Uid:match("%d+") ~= "0" or not uid then
    lu.skip("needs root and a user 'nobody'")
  end
  local pid = started({ "--user=nobody", "--group=4242", "--ready=fd", "--", F, "line=3:grouped",
    "pause" }, "grouped")
  local status = S.proc_status(pid)
  kill_app(pid)
  lu.assertEquals(tonumber(status.Uid:match("%d+")), uid)
  lu.assertEquals(tonumber(status.Gid:match("%d+")), 4242)
end

-------------------------------------------------------------------------------

local Failure = {}
function Failure.tearDown() S.kill_strays() end

function Failure.test_a_report_nobody_can_read_leaves_no_app_running_unknown()
  local before = S.snapshot()
  -- stdout is a pipe whose reader is gone by the time the app is ready:
  -- the pid would be told to nobody, so the app is not left
  local err, code = S.tmpname("err"), S.tmpname("code")
  for _, mode in ipairs { "--json", "--verbose" } do
    -- (stdout a fifo whose one reader has opened it and exited before the
    -- command runs: the reader's end is closed, however slow the machine)
    local fifo = S.tmpname("fifo")
    assert(os.execute("mkfifo " .. fifo))
    os.execute(string.format("(true <%s & r=$!; exec >%s; wait $r; %s 2>%s; echo $? >%s)", fifo, fifo,
      command_line({ mode, "--ready=none", "--", F, "pause" }), err, code))
    lu.assertEquals(S.read(code), "1\n", mode)
    local pid = tonumber(await_match(err, "appstart: cannot write to stdout %(Broken pipe%): fixture %(pid (%d+)%)"
      .. " terminated\n"))
    lu.assertFalse(S.alive(pid), "the app runs on")
  end
  S.assert_clean(before)
end

function Failure.test_missing_program_exits_1_with_the_error_on_stderr()
  fails({ "--ready=fd", "--", "/nonexistent/appstart-cli-test" }, 1,
    "appstart: cannot execute /nonexistent/appstart-cli-test: No such file or directory\n")
end

function Failure.test_why_the_helper_failed_is_said_though_the_app_output_goes_to_dev_null()
  -- without --watch the app's stdout and stderr are /dev/null, and the
  -- helper's stderr is the app's: its reason comes back on a pipe of its own
  local dir = S.tmpname("private")
  assert(os.execute("mkdir -m 0700 " .. dir))
  fails({ "--user=nobody", "--chdir=" .. dir, "--ready=none", "--", F, "pause" }, 1,
    "^appstart: helper exited with code 1 without reporting a pid on fd 3: chdir: Permission denied\n$")
  fails({ "--user=nobody", "--ready=none", "--", "/nonexistent/appstart-cli-test" }, 1,
    "^appstart: cannot execute /nonexistent/appstart%-cli%-test: No such file or directory\n$")
end

function Failure.test_timeout_exits_1_and_terminates_the_app()
  local pidfile = S.tmpname("pid")
  local took = S.timed(fails, { "--ready=fd", "--timeout=0.3", "--grace=0.2", "--", F, "pidfile=" .. pidfile, "pause" },
    1, "^appstart: app not ready within 0%.3 s[^\n]*\n$")
  lu.assertTrue(took < 3, "took " .. took .. " s")
  lu.assertFalse(S.alive(tonumber(S.read(pidfile))), "the app is still running")
end

-- A failure's hint names the command's options, not appstart.start's
-- fields (it said ready = "none" where --ready=none was meant).
function Failure.test_a_failures_hint_names_the_commands_options()
  fails({ "--timeout=0.3", "--grace=0.2", "--", F, "pause" }, 1, "^appstart: app not ready within 0%.3 s: no"
    .. " READY=1 came on its notify socket %(%-%-ready=notify is the default: an app that speaks no protocol needs"
    .. " %-%-ready=none%)\n$")
  fails({ "--pid-fd=3", "--pid-timeout=0.3", "--grace=0.2", "--", F, "pause" }, 1, "^appstart: fixture did not"
    .. " report a pid on fd 3 within 0%.3 s %(%-%-pid%-fd without %-%-user: it forks and reports its daemon's pid"
    .. " there itself, as dbus%-daemon %-%-print%-pid=3 does%)\n$")
  fails({ "--ready=forks", "--pid-file=" .. S.tmpname("pid"), "--timeout=0.3", "--grace=0.2", "--", F, "pause" }, 1,
    "^appstart: app not ready within 0%.3 s: fixture did not exit %(%-%-ready=forks: it must fork the daemon and"
    .. " exit 0%)\n$")
  -- (a pid line read as an int32le: the option that reads a line)
  fails({ "--pid-fd=3", "--grace=0.2", "--", F, "write=3:1234\\n", "exit=0" }, 1,
    "^appstart: helper reported pid 875770417: .* %(its 4 bytes read as decimal text: a line%? %-%-pid%-format=line%)\n$")
  -- (a deadline the app extended: the time it was given, and the option)
  fails({ "--timeout=0.2", "--grace=0.2", "--", F, "notify=EXTEND_TIMEOUT_USEC=400000", "pause" }, 1,
    "^appstart: app not ready within 0%.%d+ s of its start %(%-%-timeout=0%.2, which its EXTEND_TIMEOUT_USEC="
    .. " extended%): no READY=1 came on its notify socket %(%-%-ready=notify is the default: an app that speaks no"
    .. " protocol needs %-%-ready=none%)\n$")
end

function Failure.test_app_that_dies_before_ready_exits_1()
  fails({ "--ready=fd", "--", F, "exit=3" }, 1, "appstart: app exited with code 3 before it was ready\n")
end

-- every terminating signal the command can catch cancels a start: the app
-- is terminated, its notify directory removed, and the command exits 1
for _, signal in ipairs { "TERM", "HUP", "INT", "QUIT", "USR1", "ALRM", "ABRT", "TRAP", "SYS", "STKFLT", "RTMIN" } do
  Failure["test_sig" .. signal:lower() .. "_during_the_start_cancels_it_and_terminates_the_app"] = function()
    local before = S.snapshot()
    local pidfile, sockfile = S.tmpname("pid"), S.tmpname("sock")
    local bg = run_background { "--ready=notify", "--grace=0.2", "--", "/bin/sh", "-c",
      'echo "$NOTIFY_SOCKET" > ' .. sockfile .. '; exec "$0" pidfile=' .. pidfile .. " pause", F }
    local app = tonumber(S.await_file(pidfile))
    local dir = S.read(sockfile):match("^(.*)/notify\n$")
    lu.assertTrue(os.execute("test -d " .. quote(dir)), "the notify directory exists during the start")
    os.execute("kill -" .. S.core.signum(signal) .. " " .. ppid(app))
    local code, out, err = finish(bg)
    lu.assertEquals(code, 1, err)
    lu.assertEquals(out, "")
    lu.assertEquals(err, "appstart: interrupted by SIG" .. signal .. ": start cancelled\n")
    lu.assertFalse(S.alive(app), "the app is still running")
    lu.assertNil(os.execute("test -e " .. quote(dir)), "the notify directory is left")
    S.assert_clean(before)
  end
end

-- A stderr whose reader never reads (a fifo held open), and an app that
-- floods it with STATUS= updates: the command is not held by it, its
-- --timeout ends the start as ever, and the app is terminated.
function Failure.test_a_stderr_nobody_reads_does_not_hold_the_command()
  local before = S.snapshot()
  local fifo, pidfile, out, code = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("out"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  local p = io.popen("sleep 60 < " .. fifo .. " >/dev/null 2>&1 & echo $!")
  local reader = tonumber(p:read("l"))
  p:close()
  os.execute(string.format("(%s >%s 2>%s; echo $? >%s.tmp; mv %s.tmp %s) &", command_line {
    "--json", "--timeout=1", "--grace=0.2", "--", F, "pidfile=" .. pidfile, "notifyerrors=ignore",
    "repeat=40000:0.0001:STATUS=progress " .. string.rep("0123456789", 10), "pause" }, out, fifo, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local gone, ended = pcall(S.await_file, code, 10)
  os.execute("kill " .. reader) -- (the command still held: the GUARD ends it)
  lu.assertTrue(gone, "the command is held: " .. tostring(ended))
  lu.assertEquals(tonumber(ended), 1, S.read(out))
  lu.assertStrContains(S.read(out), '"code":"timeout"')
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

-- Lines stderr did not take while the app was watched are counted, and
-- the count is told before the command's last line, however it ends
-- (the app's end, a failed start, --json): it was lost with the count
-- of lines held back since the last one shown. Every line is either
-- shown or counted.
function Failure.test_the_lines_not_shown_are_told_at_the_end()
  local n = 100000
  for _, case in ipairs {
    { { "--watch", "--ready=none", "--stdout=capture" }, "exit=0", "appstart: fixture %(pid %d+%) exited with code 0" },
    { { "--watch", "--timeout=1", "--grace=0.2", "--stdout=capture" }, "pause", "appstart: app not ready within 1 s" },
    { { "--watch", "--json", "--ready=none", "--stdout=capture" }, "exit=0", nil },
  } do
    local before = S.snapshot()
    local args = case[1]
    for _, a in ipairs { "--", F, "lines=1:" .. n .. ":x", case[2] } do args[#args + 1] = a end
    local err = S.tmpname("err")
    -- (stderr into a pipe read only once the app has flooded it)
    lu.assertTrue(os.execute(string.format("(%s 2>&1 >/dev/null) | (sleep 2; cat) >%s", command_line(args), err)))
    local text, shown, counted, last = S.read(err), 0, 0, nil
    for line in text:gmatch("[^\n]+") do
      local count = line:match("^appstart: (%d+) lines? not shown %(stderr was not read%)$")
      if count then
        counted = counted + tonumber(count)
      elseif line:match("^fixture%[%d+%]: x%d+$") then
        shown = shown + 1
      elseif not line:match("^  | ") then
        last = line
      end
    end
    lu.assertTrue(counted > 0, "no line says how many were not shown: " .. #text .. " bytes")
    lu.assertEquals(shown + counted, n, table.concat(args, " "))
    if case[3] then lu.assertStrMatches(last, case[3] .. ".*") end
    S.assert_clean(before)
  end
end

-- A stderr full and never read when the start has failed: the --json
-- object comes first, on stdout, and a SIGTERM or a SIGINT ends the
-- command waiting to say why on stderr (it waited there with its signals
-- blocked, for a read that never came, and only a SIGKILL ended it; then a
-- SIGINT still went to lua5.4's handler, which let the write wait on, and
-- raised "interrupted!" once it returned: an internal error, a second
-- --json object).
function Failure.test_a_full_stderr_holds_neither_the_json_nor_a_sigterm_or_sigint()
  for _, signal in ipairs { "TERM", "INT" } do
    local before = S.snapshot()
    local fifo, pidfile, out, code = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("out"), S.tmpname("code")
    assert(os.execute("mkfifo " .. fifo))
    -- (the pipe's 64 KiB filled before the command starts; the shell that
    -- says how it ended writes elsewhere)
    os.execute(string.format("((exec 2<>%s; head -c 65536 /dev/zero >&2; exec %s >%s); echo $? >%s.tmp; "
      .. "mv %s.tmp %s) 2>/dev/null &", fifo, command_line { "--json", "--ready=fd", "--timeout=0.3", "--grace=0.2",
      "--", F, "pidfile=" .. pidfile, "pause" }, out, code, code, code))
    local app = tonumber(S.await_file(pidfile))
    local command = ppid(app)
    await_match(out, '"code":"timeout"', 10)
    lu.assertTrue(S.await_gone(app, 5), "the app was terminated")
    os.execute("kill -" .. signal .. " " .. command)
    local ended = tonumber(S.await_file(code, 20))
    lu.assertEquals(ended, 128 + core.signum(signal), "the command ended by its SIG" .. signal)
    lu.assertEquals(#S.lines(S.read(out)), 1, "one --json object: " .. S.read(out))
    S.assert_clean(before)
  end
end

-- Is the command (pid) held at its ready line by a stdout that takes no
-- more: waiting in a write (wchan), or in the loop for stdout (an epoll
-- set of its watching descriptor 1 for output)? Waits 10 s at most.
local function await_held_at_stdout(pid)
  local deadline = core.now() + 10
  repeat
    local wchan = S.read("/proc/" .. pid .. "/wchan") or ""
    -- (a terminal's write sleeps in n_tty_write's wait_woken)
    if wchan:match("pipe_write$") or wchan:match("n_tty_write$") or wchan:match("wait_woken$") then
      return "in a write"
    end
    local ls = io.popen("ls /proc/" .. pid .. "/fdinfo 2>/dev/null")
    for fd in ls:lines() do
      local info = S.read("/proc/" .. pid .. "/fdinfo/" .. fd) or ""
      local events = info:match("\ntfd:%s+1%s+events:%s+(%x+)")
      if events and tonumber(events, 16) & 4 ~= 0 then ls:close(); return "in the loop" end
    end
    ls:close()
    core.wait_readable(-1, 0.01)
  until core.now() > deadline
  return false
end

-- A stdout full and never read when the app is ready: the ready line
-- waits for it in the loop, not in a write, so a SIGTERM cancels the
-- start as during it, the app terminated (nobody has learned its pid),
-- --watch or not. The command hung in the write, its signals blocked,
-- until a SIGKILL, and left the app running.
function Failure.test_a_full_stdout_at_the_ready_line_holds_neither_a_sigterm_nor_the_app()
  for _, watch in ipairs { false, true } do
    local before = S.snapshot()
    local fifo, pidfile, err, code = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("err"), S.tmpname("code")
    assert(os.execute("mkfifo " .. fifo))
    local args = { "--ready=none", "--", F, "pidfile=" .. pidfile, "pause" }
    if watch then table.insert(args, 1, "--watch") end
    -- (the pipe's 64 KiB filled before the command starts)
    os.execute(string.format("((exec 1<>%s; head -c 65536 /dev/zero; exec %s 2>%s); echo $? >%s.tmp; "
      .. "mv %s.tmp %s) >/dev/null 2>&1 &", fifo, command_line(args), err, code, code, code))
    local app = tonumber(S.await_file(pidfile))
    local command = ppid(app)
    local held = await_held_at_stdout(command)
    lu.assertNotEquals(held, false, "the command never came to its ready line")
    os.execute("kill -TERM " .. command)
    local ended = tonumber(S.await_file(code, 20))
    lu.assertEquals(ended, 1, "held " .. tostring(held) .. "; " .. (S.read(err) or ""))
    lu.assertStrContains(S.read(err), "interrupted by SIGTERM: start cancelled")
    lu.assertTrue(S.await_gone(app, 5), "the app was left running")
    S.assert_clean(before)
  end
end

-- The same on a terminal whose reader has stalled with some room left:
-- a terminal says POLLOUT for a byte of room, and the ready line, longer,
-- was written in a plain write that slept in the kernel until the reader
-- read, the command's signals blocked: a SIGTERM meanwhile was not acted
-- on (with --watch, not forwarded; without, dropped: exit 0, the app left
-- running). What the terminal takes goes at once, the rest waits in the
-- loop. The terminal is script(1)'s, stopped (its other side unread); the
-- app (a child Lua program) measures how much it takes, and once script
-- has emptied it and is stopped again, fills it but for ROOM bytes.
function Failure.test_a_stalled_terminal_at_the_ready_line_holds_neither_a_sigterm_nor_the_app()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  local ROOM, NAME = 1024, string.rep("n", 4050)
  for _, watch in ipairs { false, true } do
    local before = S.snapshot()
    local pidfile, go1, count, go2 = S.tmpname("pid"), S.tmpname("go"), S.tmpname("count"), S.tmpname("go")
    local out, err, code = S.tmpname("tty"), S.tmpname("err"), S.tmpname("code")
    local args = { "--ready=fd", "--ready-fd=3", "--stdout=inherit", "--", "sh", "-c",
      S.san_prefix .. 'exec lua5.4 "$0" "$@"', S.spec_dir .. "/child/cli_an_app_that_fills_its_terminal.lua",
      pidfile, go1, count, go2, tostring(ROOM), NAME }
    if watch then table.insert(args, 1, "--watch") end
    -- (stderr a file: the last words wait for no terminal)
    os.execute(string.format("(script -qec %s /dev/null >%s 2>&1 </dev/null; echo $? >%s.tmp; mv %s.tmp %s) "
      .. ">/dev/null 2>&1 &", quote("exec " .. command_line(args) .. " 2>" .. err), out, code, code, code))
    local app = S.pid_in(pidfile)
    local command = ppid(app)
    local script = ppid(command)
    while S.proc_status(script).Name ~= "script" do script = ppid(script) end -- (past the guard)
    local function stop()
      os.execute("kill -STOP " .. script)
      lu.assertTrue(S.await_with_sleep(function() return (S.proc_status(script).State or ""):match("^T") ~= nil end,
        5), "script did not stop")
    end
    local ok, why = pcall(function()
      stop()
      S.touch(go1)
      local size = tonumber(S.await_file(count, 10))
      -- (emptied: all it held is in script's output)
      os.execute("kill -CONT " .. script)
      lu.assertTrue(S.await_with_sleep(function() return select(2, (S.read(out) or ""):gsub("x", "")) == size end, 5))
      stop()
      S.touch(go2)
      local held = await_held_at_stdout(command)
      lu.assertNotEquals(held, false, "the command never came to its ready line")
      os.execute("kill -TERM " .. command)
      lu.assertTrue(S.await_gone(app, 5), "held " .. tostring(held) .. ": the app was left running")
    end)
    os.execute("kill -CONT " .. script)
    if S.alive(app) then os.execute("kill -KILL " .. app) end
    local ended = tonumber(S.await_file(code, 30))
    assert(ok, why)
    lu.assertEquals(ended, 1, S.read(err))
    lu.assertStrContains(S.read(err), "interrupted by SIGTERM: start cancelled")
    -- the part of the line the terminal took, ended before the last words
    lu.assertStrMatches(S.read(out), "^x*appstart: n+\r\n$")
    S.assert_clean(before)
  end
end

-- A SIGTERM and room on a full stdout in one turn of the command's loop
-- (both come while the command is stopped, the signal first): the task
-- that reads signals cancelled the start's task, queued already by its
-- wait for stdout, too late for that wait, and the ready line went out
-- before the app was terminated: two --json objects, a pid printed of an
-- app that no longer runs. The line is not written.
function Failure.test_a_signal_in_the_turn_stdout_takes_the_ready_line_cancels_it_unwritten()
  local before = S.snapshot()
  local fifo, pidfile, err, code = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("err"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  os.execute(string.format("((exec 1<>%s; head -c 65536 /dev/zero; exec %s 2>%s); echo $? >%s.tmp; "
    .. "mv %s.tmp %s) >/dev/null 2>&1 &", fifo, command_line { "--json", "--ready=none", "--", F,
      "pidfile=" .. pidfile, "pause" }, err, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  lu.assertEquals(await_held_at_stdout(command), "in the loop")
  os.execute("kill -STOP " .. command)
  lu.assertTrue(S.await_with_sleep(function() return (S.proc_status(command).State or ""):match("^T") ~= nil end, 5))
  os.execute("kill -TERM " .. command)
  -- (pending: SIGTERM's bit in the process's pending set)
  lu.assertTrue(S.await_with_sleep(function()
    return tonumber((S.proc_status(command).ShdPnd or "0"):sub(-4), 16) & 0x4000 ~= 0
  end, 5), "the SIGTERM is not pending")
  local f = assert(io.open(fifo, "rb"))
  lu.assertEquals(#f:read(65536), 65536)
  os.execute("kill -CONT " .. command)
  local out = f:read("a")
  f:close()
  lu.assertEquals(tonumber(S.await_file(code, 20)), 1, S.read(err))
  lu.assertEquals(#S.lines(out), 1, "one --json object: " .. out)
  lu.assertStrContains(out, '"code":"cancelled","message":"interrupted by SIGTERM: start cancelled"')
  lu.assertTrue(S.await_gone(app, 5), "the app was left running")
  S.assert_clean(before)
end

-- --watch with a stdout that cannot be written (a full disk) and a stderr
-- full and never read: that the ready line is lost is said where stderr
-- takes it at once (counted, not waited for), so a SIGTERM is still
-- forwarded to the app. The command waited in its write to stderr, its
-- signals blocked, and only a SIGKILL ended it, the app left running.
function Failure.test_a_watched_apps_lost_ready_line_is_said_without_waiting_for_stderr()
  local before = S.snapshot()
  local fifo, pidfile, code = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  os.execute(string.format("((exec 2<>%s; head -c 65536 /dev/zero >&2; exec %s >/dev/full); echo $? >%s.tmp; "
    .. "mv %s.tmp %s) >/dev/null 2>&1 &", fifo, command_line { "--watch", "--ready=none", "--", F,
      "pidfile=" .. pidfile, "pause" }, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  -- (its SIGTERM handler the default: the forwarded signal ends it)
  lu.assertTrue(S.await_with_sleep(function()
    return (S.read("/proc/" .. command .. "/wchan") or ""):match("epoll") ~= nil
  end, 5), "the command is not watching")
  os.execute("kill -TERM " .. command)
  local gone = S.await_gone(app, 5)
  -- (the rest of stderr: the count of what was not shown, how the app ended)
  local f = assert(io.open(fifo, "rb"))
  lu.assertEquals(#f:read(65536), 65536)
  if not gone then os.execute("kill -KILL " .. command .. " " .. app) end
  local said = f:read("a")
  f:close()
  lu.assertTrue(gone, "the SIGTERM was not forwarded")
  lu.assertEquals(tonumber(S.await_file(code, 20)), 128 + 15, said)
  lu.assertStrContains(said, "appstart: 1 line not shown (stderr was not read)\n")
  lu.assertStrContains(said, "appstart: fixture (pid " .. app .. ") was killed by SIGTERM\n")
  S.assert_clean(before)
end

-- The same with an app that outlives the cancel's SIGTERM: a second ^C
-- sends SIGKILL at once, as while a start's cancel waits (it did nothing:
-- the command waited out the whole --grace).
function Failure.test_a_second_sigint_at_a_full_stdouts_ready_line_sends_sigkill()
  local before = S.snapshot()
  local fifo, pidfile, trapped = S.tmpname("fifo"), S.tmpname("pid"), S.tmpname("trapped")
  local err, code = S.tmpname("err"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  -- (the trap set before the pid file that the test acts on appears)
  local args = { "--grace=60", "--ready=none", "--", F, "trap=TERM:" .. trapped, "pidfile=" .. pidfile, "pause" }
  os.execute(string.format("((exec 1<>%s; head -c 65536 /dev/zero; exec %s 2>%s); echo $? >%s.tmp; "
    .. "mv %s.tmp %s) >/dev/null 2>&1 &", fifo, command_line(args), err, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  lu.assertNotEquals(await_held_at_stdout(command), false, "the command never came to its ready line")
  os.execute("kill -INT " .. command)
  S.await_file(trapped) -- (the app had its SIGTERM, and lives on)
  os.execute("kill -INT " .. command)
  -- (the guard ends a command still there after 20 s with SIGKILL: 137)
  lu.assertEquals(tonumber(S.await_file(code, 30)), 1, S.read(err))
  lu.assertStrMatches(S.read(err), "appstart: fixture %(pid " .. app .. "%) is still running: sending SIGKILL\n"
    .. "appstart: interrupted by SIGINT: start cancelled\n")
  lu.assertTrue(S.await_gone(app, 5), "the app was left running")
  S.assert_clean(before)
end

-- A signal that came as the start was completing (both its READY=1 and
-- the signal wait while the command is stopped): it still cancels the
-- start, the app is terminated, and --json says how it ended.
function Failure.test_a_signal_pending_as_the_start_completes_still_cancels_it()
  local before = S.snapshot()
  local pidfile, go, sent = S.tmpname("pid"), S.tmpname("go"), S.tmpname("sent")
  local bg = run_background { "--json", "--grace=1", "--", F, "pidfile=" .. pidfile, "waitfile=" .. go,
    "notify=READY=1", "now=" .. sent, "pause" }
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  os.execute("kill -STOP " .. command)
  S.touch(go)
  S.await_file(sent)
  os.execute("kill -TERM " .. command .. "; kill -CONT " .. command)
  local code, out, err = finish(bg)
  lu.assertEquals(code, 1, out .. err)
  lu.assertStrContains(out, '"code":"cancelled","message":"interrupted by SIGTERM: start cancelled"')
  lu.assertStrContains(out, '"signal":15')
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

--- The command's start times out (--ready=fd, 0.5 s) with an app that
-- outlives the SIGTERM it gets then (kill_grace `grace`); `signal` then
-- comes: the command's exit code, stdout and stderr, and the app's pid.
local function signal_after_the_failure(signal, grace)
  local pidfile, trap = S.tmpname("pid"), S.tmpname("trap")
  local bg = run_background { "--ready=fd", "--timeout=0.5", "--grace=" .. grace, "--", F, "trap=TERM:" .. trap,
    "pidfile=" .. pidfile, "pause" }
  local app = tonumber(S.await_file(pidfile))
  S.await_file(trap) -- the timeout's SIGTERM came
  os.execute("kill -" .. signal .. " " .. ppid(app))
  local code, out, err = finish(bg)
  return code, out, err, app
end

-- A signal that comes once the start has failed (here while its app,
-- which ignores SIGTERM, has its grace) cancels nothing: the command says
-- why the start failed, not that it was interrupted
function Failure.test_a_signal_after_the_start_failed_leaves_the_failure_as_it_is()
  local before = S.snapshot()
  local code, out, err, app = signal_after_the_failure("TERM", 1)
  lu.assertEquals(code, 1, err)
  lu.assertEquals(out, "")
  lu.assertEquals(err, "appstart: app not ready within 0.5 s: no line came on its fd 3\n")
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

-- A ^C then is the second one: the failed start has sent its app SIGTERM
-- already, as a first ^C would have; the app gets SIGKILL at once (the ^C
-- did nothing at all: the command waited out the whole --grace), and the
-- command still says why the start failed.
function Failure.test_a_sigint_after_the_start_failed_sends_sigkill()
  local before = S.snapshot()
  -- (the guard ends a command still there after 20 s with SIGKILL: 137)
  local code, out, err, app = signal_after_the_failure("INT", 60)
  lu.assertEquals(code, 1, err)
  lu.assertEquals(out, "")
  lu.assertEquals(err, "appstart: fixture (pid " .. app .. ") is still running: sending SIGKILL\n"
    .. "appstart: app not ready within 0.5 s: no line came on its fd 3\n")
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

--- Run the command with --json, which must fail (exit 1) with `message` on
-- stderr and the same as one JSON object on stdout; returns that object's
-- pid (nil for null), exit_code and signal, as text.
local function json_failure(args, code, message)
  local before = S.snapshot()
  local got, out, err = run(args)
  lu.assertEquals(got, 1, err)
  lu.assertEquals(err, "appstart: " .. message .. "\n")
  local pid, exit_code, signal = out:match('^{"code":"' .. code:gsub("%p", "%%%0") .. '","message":"'
    .. message:gsub("%p", "%%%0") .. '","pid":(%w+),"exit_code":(%w+),"signal":(%w+),"output":%[%]}\n$')
  lu.assertNotNil(pid, out)
  S.assert_clean(before)
  return tonumber(pid), exit_code, signal
end

function Failure.test_json_failure_prints_code_message_pid_and_exit_code_on_stdout_too()
  local pidfile = S.tmpname("pid")
  local pid, exit_code, signal = json_failure({ "--json", "--ready=fd", "--", F, "pidfile=" .. pidfile,
    "exit=3" }, "died", "app exited with code 3 before it was ready")
  lu.assertEquals(pid, tonumber(S.read(pidfile)))
  lu.assertEquals({ exit_code, signal }, { "3", "null" })
end

function Failure.test_json_failure_of_an_app_killed_by_a_signal_gives_the_signal()
  local pid, exit_code, signal = json_failure({ "--json", "--ready=fd", "--", F, "signal=KILL" },
    "died", "app was killed by signal 9 before it was ready")
  lu.assertNotNil(pid)
  lu.assertEquals({ exit_code, signal }, { "null", "9" })
end

function Failure.test_json_failure_with_nothing_started_has_null_pid_and_status()
  local pid, exit_code, signal = json_failure({ "--json", "--quiet", "--ready=fd", "--",
    "/nonexistent/appstart-cli-test" }, "spawn",
    "cannot execute /nonexistent/appstart-cli-test: No such file or directory")
  lu.assertNil(pid)
  lu.assertEquals({ exit_code, signal }, { "null", "null" })
end

-- A program path with control characters, a C1 control (U+009B, a
-- terminal's CSI) and a line end of JavaScript's: the failure on stderr is
-- escaped as every line the command writes (it went out raw), and its JSON
-- object escapes the C1 control and U+2028 as it does the C0 ones (they
-- went out raw: valid JSON, a live escape at a terminal).
function Failure.test_a_failure_quoting_control_characters_is_escaped_on_stderr_and_in_json()
  local path = "/nonexistent/ev\27[31mil\1\127\194\155x\226\128\168y"
  local code, out, err = run { "--json", "--quiet", "--ready=fd", "--", path }
  lu.assertEquals(code, 1, err)
  lu.assertEquals(err, "appstart: cannot execute /nonexistent/ev\\x1b[31mil\\x01\\x7f\\xc2\\x9bx\226\128\168y:"
    .. " No such file or directory\n")
  lu.assertStrContains(out, '"message":"cannot execute /nonexistent/ev\\u001b[31mil\\u0001\\u007f\\u009bx\\u2028y:'
    .. ' No such file or directory"')
end

function Failure.test_json_failure_of_a_start_cancelled_by_a_signal()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--json", "--ready=fd", "--grace=0.2", "--", F, "pidfile=" .. pidfile, "pause" }
  local app = tonumber(S.await_file(pidfile))
  os.execute("kill -TERM " .. ppid(app))
  local code, out, err = finish(bg)
  lu.assertEquals(code, 1, err)
  lu.assertEquals(err, "appstart: interrupted by SIGTERM: start cancelled\n")
  lu.assertEquals(out, '{"code":"cancelled","message":"interrupted by SIGTERM: start cancelled","pid":'
    .. app .. ',"exit_code":null,"signal":15,"output":[]}\n')
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

-- A signal whose default would end the command, one a command seldom
-- catches (SIGVTALRM), comes during the start: the start is cancelled and
-- the app terminated, as for SIGTERM; it was left running.
function Failure.test_any_terminating_signal_during_the_start_cancels_it()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--json", "--ready=fd", "--grace=0.2", "--", F, "pidfile=" .. pidfile, "pause" }
  local app = tonumber(S.await_file(pidfile))
  os.execute("kill -VTALRM " .. ppid(app))
  local code, out, err = finish(bg)
  lu.assertEquals(code, 1, err)
  lu.assertStrContains(out, '{"code":"cancelled"')
  lu.assertFalse(S.alive(app), "the app is still running")
  S.assert_clean(before)
end

-------------------------------------------------------------------------------

local Watch = {}
function Watch.tearDown() S.kill_strays() end

function Watch.test_watch_exits_with_the_apps_exit_code()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--ready=fd", "--", F, "line=3:seven", "exit=7" }
  lu.assertEquals(code, 7)
  local pid = out:match("^appstart: seven ready: pid (%d+), [%d.]+ s\n$")
  lu.assertNotNil(pid, out)
  lu.assertEquals(err, "appstart: seven (pid " .. pid .. ") exited with code 7\n")
  S.assert_clean(before)
end

-- --watch run by nobody, its app a setuid program become root (nobody
-- may not signal it): a SIGTERM the command cannot forward is said (it
-- was dropped without a word, the app running on as if told), and the
-- command watches on.
function Watch.test_a_signal_that_cannot_be_forwarded_is_said()
  lu.skipIf(not S.is_root(), "needs root to install a setuid copy")
  local before = S.snapshot()
  local suid = S.setuid_fixture()
  local pidfile, err, code = S.tmpname("pid"), S.tmpname("err"), S.tmpname("code")
  local lua_path, lua_cpath = S.public_tree()
  local bin = lua_path:match("^(.-)/%?%.lua;") .. "/bin/appstart"
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  os.execute(string.format("(env LUA_PATH=%s LUA_CPATH=%s %s setpriv --reuid=nobody --regid=nogroup --clear-groups"
    .. " lua5.4 %s --watch --ready=none -- %s root pidfile=%s pause 2>%s >/dev/null; echo $? >%s.tmp; mv %s.tmp %s) &",
    quote(lua_path), quote(lua_cpath), preload and ("LD_PRELOAD=" .. quote(preload)) or "", quote(bin), suid, pidfile,
    err, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  lu.assertEquals(S.proc_status(app).Uid:match("^(%d+)"), "0", "the app became root")
  os.execute("kill -TERM " .. command)
  local said = pcall(await_match, err, "cannot forward SIGTERM to pid " .. app .. ": ", 10)
  local running = S.alive(app) and S.alive(command)
  os.execute("kill -KILL " .. app)
  local ended = tonumber(S.await_file(code, 20))
  lu.assertTrue(said, "nothing said: " .. (S.read(err) or ""))
  lu.assertTrue(running, "the app and the command run on")
  lu.assertEquals(ended, 128 + 9, S.read(err))
  lu.assertStrContains(S.read(err), "appstart: warn: cannot forward SIGTERM to pid " .. app
    .. ": Operation not permitted\n")
  S.assert_clean(before)
end

function Watch.test_watch_shows_status_updates_after_ready()
  local code, _, err = run { "--watch", "--", F, "notify=READY=1", "notify=STATUS=warming up",
    "sleep=0.05", "notify=STATUS=serving\x1b[2J", "sleep=0.05", "exit=0" }
  lu.assertEquals(code, 0)
  assert_contains(err, "appstart: status: warming up\nappstart: status: serving\\x1b[2J\n", "stderr")
end

-- A flood of STATUS= updates: a line a second at most (a line each was
-- hundreds a second), the last one shown.
function Watch.test_watch_shows_a_flood_of_status_updates_once_a_second()
  local t0 = core.now()
  local code, _, err = run { "--watch", "--", F, "notify=READY=1", "repeat=5000:0:STATUS=step",
    "notify=STATUS=done", "sleep=0.05", "exit=0" }
  local took = core.now() - t0
  lu.assertEquals(code, 0, err)
  local lines = {}
  for line in err:gmatch("appstart: status: ([^\n]*)\n") do lines[#lines + 1] = line end
  lu.assertTrue(#lines >= 2 and #lines <= 2 + took, #lines .. " lines in " .. took .. " s")
  lu.assertEquals(lines[#lines], "done")
end

function Watch.test_watchdog_kills_an_app_that_stops_pinging()
  local code, out, err = run { "--watch", "--json", "--watchdog=0.2", "--grace=0.2", "--",
    F, "notify=READY=1", "repeat=2:0.05:WATCHDOG=1", "pause" }
  lu.assertEquals(code, 128 + 6)
  assert_contains(out, '"signal":6,"watchdog":true}', "stdout")
  assert_contains(err, "watchdog: no WATCHDOG=1 within 0.2 s", "stderr")
  local code2, _, err2 = run { "--watchdog=1", "--", F, "notify=READY=1", "pause" }
  lu.assertEquals(code2, 2)
  assert_contains(err2, "option '--watchdog' needs --watch", "stderr")
end

-- An app that handles the watchdog's SIGABRT and exits with a code of its
-- own: it exited with that code as its watchdog fired, and the command
-- says so, not that the watchdog killed it (it said "was killed by its
-- watchdog (SIGABRT)" of an app that exited 0).
function Watch.test_an_app_that_exits_as_its_watchdog_fires_is_not_said_killed()
  local code, out, err = run { "--watch", "--json", "--watchdog=0.2", "--grace=2", "--",
    F, "catch=ABRT", "notify=READY=1", "waitsig=ABRT", "exit=3" }
  lu.assertEquals(code, 3, err)
  assert_contains(out, '"exit_code":3,"signal":null,"watchdog":true}', "stdout")
  local code2, _, err2 = run { "--watch", "--watchdog=0.2", "--grace=2", "--",
    F, "catch=ABRT", "notify=READY=1", "waitsig=ABRT", "exit=3" }
  lu.assertEquals(code2, 3, err2)
  assert_contains(err2, "appstart: fixture (pid ", "stderr")
  assert_contains(err2, ") exited with code 3 as its watchdog fired\n", "stderr")
end

--- The app moves its main process (MAINPID=) to a child it forked, which
-- crashes once its parent has gone: that process is not the command's
-- child, so how it ended cannot be known, and the command does not take
-- it for a success. (Each step waits for the one before it: the move
-- said on stderr, then the parent gone; sleeps in the fixture made a
-- slow launcher take MAINPID= after the child had crashed.)
function Watch.test_an_end_whose_status_cannot_be_known_is_not_exit_0()
  local before = S.snapshot()
  for _, json in ipairs { true, false } do
    local dir = S.tmpname("unknown")
    assert(os.execute("mkdir " .. dir))
    local parent, child = dir .. "/parent", dir .. "/child"
    local args = { "--watch", "-v", "--", F, "fork", "pidfile=" .. child, "waitfile=" .. dir .. "/crash",
      "signal=SEGV", "|", "pidfile=" .. parent, "notify=READY=1", "mainpid=child", "waitfile=" .. dir .. "/exit",
      "exit=0" }
    if json then table.insert(args, 1, "--json") end
    local bg = run_background(args)
    lu.assertTrue(S.await_with_sleep(function()
      local text = S.read(bg.err) or ""
      local from, to = text:match("main pid (%d+) %-> (%d+) %(MAINPID=%)")
      return from and tonumber(from) == S.pid_in(parent) and tonumber(to) == S.pid_in(child)
    end, 20), S.read(bg.err))
    S.touch(dir .. "/exit")
    lu.assertTrue(S.await_gone(S.pid_in(parent), 20))
    S.touch(dir .. "/crash")
    local code, out, err = finish(bg)
    lu.assertEquals(code, 255, err)
    if json then
      assert_contains(out, '"exit_code":null,"signal":null,"watchdog":false}', "stdout")
    else
      assert_contains(err, "exited (its exit status is unknown: it is not appstart's child)", "stderr")
    end
  end
  S.assert_clean(before)
end

function Watch.test_kill_mode_group_ends_what_a_failed_start_forked()
  local before = S.snapshot()
  local child = S.tmpname("pid")
  local code, _, err = run { "--kill-mode=group", "--timeout=0.3", "--grace=0.2", "--", F,
    "fork", "ignore=TERM", "pidfile=" .. child, "pause", "|", "pause" }
  lu.assertEquals(code, 1, err)
  assert_contains(err, "app not ready within 0.3 s", "stderr")
  lu.assertTrue(S.await_gone(S.pid_in(child), 3), "the forked child is gone too")
  local code2, _, err2 = run { "--kill-mode=tree", "--", F }
  lu.assertEquals(code2, 2)
  assert_contains(err2, "option '--kill-mode': invalid value 'tree'", "stderr")
  S.assert_clean(before)
end

function Watch.test_watch_reports_death_by_a_signal_as_128_plus_the_signal()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--json", "--ready=fd", "--", F, "line=3:killed", "signal=KILL" }
  lu.assertEquals(code, 128 + 9)
  local lines = S.lines(out)
  lu.assertEquals(#lines, 2, out)
  local pid = lines[1]:match('^{"pid":(%d+),"name":"killed",')
  lu.assertNotNil(pid, lines[1])
  lu.assertEquals(lines[2], '{"pid":' .. pid .. ',"name":"killed","exit_code":null,"signal":9,"watchdog":false}')
  lu.assertEquals(err, "")
  S.assert_clean(before)
end

function Watch.test_watch_with_user_exits_with_the_apps_code()
  if S.proc_status("self").Uid:match("%d+") ~= "0" then lu.skip("needs root and a user 'nobody'") end
  local before = S.snapshot()
  -- the app is the helper's child: the launcher adopts it once the helper
  -- exits, and so learns its exit status
  local code, out, err = run { "--watch", "--user=nobody", "--ready=fd", "--", F, "line=3:seven", "exit=7" }
  lu.assertEquals(code, 7, err)
  local pid = out:match("^appstart: seven ready: pid (%d+)")
  lu.assertNotNil(pid, out)
  lu.assertEquals(err, "appstart: seven (pid " .. pid .. ") exited with code 7\n")
  S.assert_clean(before)
end

-- --quiet is about appstart's own lines: the app's captured lines are
-- still shown (on stderr, as NAME[PID]: LINE)
function Watch.test_quiet_still_shows_the_apps_captured_lines()
  local code, out, err = run { "--watch", "-q", "--stdout=capture", "--stderr=stdout", "--ready=fd", "--", F,
    "echo=app-line", "echoerr=app-err", "line=3:x", "exit=0" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "")
  lu.assertStrMatches(err, "fixture%[%d+%]: app%-line\nfixture%[%d+%]: app%-err\n")
end

function Watch.test_watch_quiet_prints_nothing_and_still_exits_with_the_code()
  local code, out, err = run { "--watch", "--quiet", "--ready=fd", "--", F, "line=3:q", "exit=5" }
  lu.assertEquals(code, 5)
  lu.assertEquals(out, "")
  lu.assertEquals(err, "")
end

local function forwarding_case(signal, number)
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--watch", "--ready=fd", "--", F, "pidfile=" .. pidfile,
    "line=3:fwd", "pause" }
  local app = tonumber(S.await_file(pidfile))
  await_match(bg.out, "ready: pid %d+") -- the command is past the start
  lu.assertTrue(S.alive(app))
  os.execute("kill -" .. number .. " " .. ppid(app))
  local code, _, err = finish(bg)
  lu.assertEquals(code, 128 + number, err)
  lu.assertEquals(err, "appstart: fwd (pid " .. app .. ") was killed by SIG" .. signal .. "\n")
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
end

-- With --json the command's stdout is its JSON alone: the app's stdout,
-- read by the command, shows on its stderr.
function Watch.test_watch_json_keeps_the_apps_stdout_off_the_commands()
  local code, out, err = run { "--watch", "--json", "--", F, "notify=READY=1", "write=1:partial", "echo=line",
    "exit=0" }
  lu.assertEquals(code, 0, err)
  local lines = S.lines(out)
  lu.assertEquals(#lines, 2, out)
  lu.assertStrMatches(lines[1], '^{"pid":%d+,"name":"fixture",.*}$')
  lu.assertStrMatches(lines[2], '^{"pid":%d+,"name":"fixture","exit_code":0,"signal":null,"watchdog":false}$')
  assert_contains(err, "]: partialline\n")
end

function Watch.test_watch_forwards_sigterm_to_the_app()
  forwarding_case("TERM", 15)
end

function Watch.test_watch_forwards_sigint_to_the_app()
  forwarding_case("INT", 2)
end

-- every signal that would end the command is forwarded, SIGABRT and the
-- real-time ones too
function Watch.test_watch_forwards_sigabrt_and_a_real_time_signal_to_the_app()
  forwarding_case("ABRT", 6)
  forwarding_case("RTMIN", S.core.signum("RTMIN"))
end

-- Signals 32 and 33 end the command too, where they are at their default
-- (the C library keeps them for itself and would not block them: the
-- command died of them, and the app ran on): they are read and forwarded
-- as the others are. The command is started here by appstart, which gives
-- what it starts every signal at its default.
function Watch.test_signals_32_and_33_are_forwarded_where_they_would_end_the_command()
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  for _, number in ipairs { 32, 33 } do
    local before = S.snapshot()
    local pidfile, out, err = S.tmpname("pid"), S.tmpname("out"), S.tmpname("err")
    local argv = { "lua5.4", BIN, "--watch", "--ready=fd", "--", F, "pidfile=" .. pidfile, "line=3:fwd", "pause" }
    if preload then table.insert(argv, 1, "LD_PRELOAD=" .. preload) table.insert(argv, 1, "env") end
    table.insert(argv, 1, "sh")
    table.insert(argv, 1, 'exec "$@" >' .. out .. " 2>" .. err)
    table.insert(argv, 1, "-c")
    table.insert(argv, 1, "/bin/sh")
    local command = assert(appstart.start { argv = argv, ready = "none", log = S.quiet })
    local app = tonumber(S.await_file(pidfile))
    await_match(out, "ready: pid %d+")
    lu.assertEquals(tonumber(S.proc_status(command.pid).SigIgn, 16) & 0x180000000, 0, "32 and 33 at their default")
    os.execute("kill -" .. number .. " " .. command.pid)
    lu.assertEquals(command:wait(20), { code = 128 + number }, S.read(err))
    lu.assertEquals(S.read(err), "appstart: fwd (pid " .. app .. ") was killed by signal " .. number .. "\n")
    lu.assertFalse(S.alive(app))
    command:close()
    S.assert_clean(before)
  end
end

-- Started with 32 and 33 ignored, as whatever glibc's posix_spawn or
-- system() starts is (os.execute here), the command leaves them alone, as
-- it does any signal it was started with ignored; its app gets them at
-- their default, as every other signal (they reached it ignored).
function Watch.test_an_app_gets_32_and_33_at_their_default_whatever_the_command_had()
  local pidfile, status = S.tmpname("pid"), S.tmpname("status")
  local bg = run_background { "--watch", "--ready=fd", "--", F, "pidfile=" .. pidfile, "status=" .. status,
    "line=3:ign", "pause" }
  local app = tonumber(S.await_file(pidfile))
  await_match(bg.out, "ready: pid %d+")
  local command = ppid(app)
  lu.skipIf(tonumber(S.proc_status(command).SigIgn, 16) & 0x180000000 ~= 0x180000000,
    "the command was not started with 32 and 33 ignored")
  os.execute("kill -32 " .. command)
  lu.assertTrue(S.alive(app), "the app got the ignored 32")
  lu.assertEquals(tonumber(S.read(status):match("SigIgn:%s*(%x+)"), 16), 0)
  os.execute("kill -TERM " .. command)
  local code, _, err = finish(bg)
  lu.assertEquals(code, 128 + 15, err)
end

-- A signal the command was started with ignored (nohup's SIGHUP) would not
-- end it: it is left alone, not forwarded (the app died of the SIGHUP of
-- `nohup appstart --watch`), and the command watches on.
function Watch.test_a_signal_the_command_was_started_with_ignored_is_not_forwarded()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background({ "--watch", "--verbose", "--ready=fd", "--", F, "pidfile=" .. pidfile,
    "line=3:nohup", "pause" }, "HUP")
  local app = tonumber(S.await_file(pidfile))
  await_match(bg.out, "ready: pid %d+")
  local command = ppid(app)
  lu.assertEquals(tonumber(S.proc_status(command).SigIgn:sub(-1), 16) % 2, 1, "the command ignores SIGHUP")
  os.execute("kill -HUP " .. command)
  -- (an ignored signal is discarded by the kill itself: nothing is left to come)
  lu.assertTrue(S.alive(app), "the app got the SIGHUP")
  lu.assertTrue(S.alive(command), "the command ended")
  -- it goes on: a SIGTERM is forwarded and ends the app, and the command
  os.execute("kill -TERM " .. command)
  local code, _, err = finish(bg)
  lu.assertEquals(code, 128 + 15, err)
  assert_contains(err, "forwarding SIGTERM to pid " .. app .. "\n")
  lu.assertNil(err:find("SIGHUP", 1, true), err)
  assert_contains(err, "appstart: nohup (pid " .. app .. ") was killed by SIGTERM\n")
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
end

function Watch.test_a_second_sigint_sends_sigterm_and_a_third_sigkill_to_an_app_that_ignores_them()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--watch", "--verbose", "--ready=fd", "--", F, "pidfile=" .. pidfile,
    "ignore=INT", "ignore=TERM", "line=3:stubborn", "pause" }
  local app = tonumber(S.await_file(pidfile))
  await_match(bg.out, "ready: pid %d+")
  local command = ppid(app)
  -- one at a time, each once the command has acted on the one before: a
  -- second SIGINT pending with the first would be merged into it
  os.execute("kill -INT " .. command)
  await_match(bg.err, "forwarding SIGINT to pid %d+")
  lu.assertTrue(S.alive(app), "the app ignores SIGINT")
  os.execute("kill -INT " .. command)
  await_match(bg.err, "is still running: sending SIGTERM\n")
  lu.assertTrue(S.alive(app), "the app ignores SIGTERM")
  os.execute("kill -INT " .. command)
  local code, _, err = finish(bg)
  -- (killed by the third ^C's SIGKILL: the command dies by SIGINT)
  lu.assertEquals(code, 128 + 2, err)
  local said = "appstart: stubborn (pid " .. app .. ") "
  assert_contains(err, said .. "is still running: sending SIGTERM\n" .. said .. "is still running: sending SIGKILL\n")
  assert_contains(err, said .. "was killed by SIGKILL\n")
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
end

-- Until pid has read its pending `sig` (the command reads its signals from
-- a descriptor: one read, the next may come without merging into it).
local function await_taken(pid, sig)
  local bit, deadline = 1 << (sig - 1), core.now() + 5
  repeat
    local st = S.proc_status(pid)
    if not st or (tonumber(st.SigPnd, 16) | tonumber(st.ShdPnd, 16)) & bit == 0 then return end
    core.wait_readable(-1, 0.005)
  until core.now() > deadline
  lu.fail("signal " .. sig .. " never read by pid " .. pid)
end

-- The second and third SIGINT reach the app though the command's stderr
-- is a pipe nobody reads, full: the notice that says so came first, in a
-- write that waited for the reader, and the app never got its signals.
function Watch.test_a_second_and_third_sigint_reach_the_app_though_stderr_is_never_read()
  local before = S.snapshot()
  local pidfile, fifo, code = S.tmpname("pid"), S.tmpname("fifo"), S.tmpname("code")
  assert(os.execute("mkfifo " .. fifo))
  local line = command_line { "--watch", "--verbose", "--ready=fd", "--", F, "ignore=INT", "ignore=TERM",
    "pidfile=" .. pidfile, "line=3:stubborn", "pause" }
  -- (the pipe's 64 KiB filled before the command starts; the shell that
  -- says how it ended writes elsewhere)
  os.execute(string.format("((exec 2<>%s; head -c 65536 /dev/zero >&2; exec %s >/dev/null); echo $? >%s.tmp; "
    .. "mv %s.tmp %s) 2>/dev/null &", fifo, line, code, code, code))
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  for _ = 1, 3 do
    await_taken(command, 2)
    os.execute("kill -INT " .. command)
  end
  local gone = S.await_gone(app, 5)
  if not gone then os.execute("kill -KILL " .. app) end
  lu.assertTrue(gone, "the app got SIGKILL at the third SIGINT")
  -- (the command may wait for its reader now, to say how the app ended)
  os.execute("kill -KILL " .. command .. " 2>/dev/null")
  S.await_file(code, 20)
  S.assert_clean(before)
end

-- During the start, the first SIGINT cancels it (SIGTERM to the app, which
-- has its grace); a second one sends SIGKILL at once: it was dropped, and
-- an app that ignores SIGTERM held the command for the whole --grace.
function Watch.test_a_second_sigint_while_a_start_is_cancelled_sends_sigkill()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--watch", "--verbose", "--grace=60", "--ready=fd", "--", F, "ignore=INT",
    "ignore=TERM", "pidfile=" .. pidfile, "pause" }
  local app = tonumber(S.await_file(pidfile))
  local command = ppid(app)
  os.execute("kill -INT " .. command)
  await_match(bg.err, "got SIGINT: cancelling the start")
  lu.assertTrue(S.alive(app), "the app ignores SIGTERM")
  os.execute("kill -INT " .. command)
  local code, out, err = finish(bg)
  lu.assertEquals(code, 1, err)
  lu.assertEquals(out, "")
  assert_contains(err, "appstart: fixture (pid " .. app .. ") is still running: sending SIGKILL\n")
  assert_contains(err, "appstart: interrupted by SIGINT: start cancelled\n")
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
end

--- A --watch --kill-mode=group app whose main process exits (code 0) and
-- leaves a child that ignores SIGTERM: the command awaits it (SIGKILL
-- after --grace=10), and meanwhile reads its signals. Returns the
-- background command, its pid, the app's and the child's.
local function awaiting_what_the_app_left(name)
  local pidfile, childfile, go = S.tmpname("pid"), S.tmpname("child"), S.tmpname("go")
  local bg = run_background { "--watch", "--verbose", "--kill-mode=group", "--grace=10", "--ready=fd", "--", F,
    "pidfile=" .. pidfile, "fork", "ignore=TERM", "pidfile=" .. childfile, "pause", "|",
    "waitfile=" .. childfile, "line=3:" .. (name or "rest"), "waitfile=" .. go, "exit=0" }
  local app = tonumber(S.await_file(pidfile))
  local child = tonumber(S.await_file(childfile))
  local command = ppid(app)
  await_match(bg.out, "ready: pid %d+")
  -- (the main process exits now: its child has its SIGTERM, and ignores it)
  assert(io.open(go, "w")):close()
  await_match(bg.err, "its main process ended: SIGTERM to the 1 process left in its group")
  lu.assertTrue(S.alive(child), "the child ignores SIGTERM")
  return bg, command, app, child
end

-- An app's name is its ready line with --ready=fd, 4095 bytes at most,
-- each control byte four once printable (a fixture's TEXT: C escapes).
local LONG_NAME = string.rep("\\x01", 4000)

--- Every line of text is 4096 bytes at most, its "\n" included.
local function assert_lines_fit(text)
  for line in text:gmatch("[^\n]*\n?") do
    if line ~= "" then lu.assertTrue(#line <= 4096, #line .. " bytes: " .. line:sub(1, 60) .. "..." .. line:sub(-60)) end
  end
end

-- The lines that say a second SIGINT sent SIGTERM, and how the app ended,
-- cut a long name, not what they say: the name went whole into the head
-- of a 16 KB line, and "sending SIGTERM" was what was cut, to [...].
function Watch.test_a_long_name_is_cut_in_the_lines_of_a_sigints_sigterm_and_of_the_exit()
  local before = S.snapshot()
  local pidfile = S.tmpname("pid")
  local bg = run_background { "--watch", "--verbose", "--ready=fd", "--", F, "ignore=INT", "pidfile=" .. pidfile,
    "line=3:" .. LONG_NAME, "pause" }
  local app = tonumber(S.await_file(pidfile))
  await_match(bg.out, "ready: pid %d+")
  local command = ppid(app)
  os.execute("kill -INT " .. command)
  await_match(bg.err, "forwarding SIGINT to pid %d+")
  os.execute("kill -INT " .. command)
  local code, _, err = finish(bg)
  assert_contains(err, "\\x01[...] (pid " .. app .. ") is still running: sending SIGTERM\n")
  assert_contains(err, "\\x01[...] (pid " .. app .. ") was killed by SIGTERM\n")
  assert_lines_fit(err)
  lu.assertEquals(code, 128 + 2, err)
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
end

-- The same in the line that says what the app left in its group gets
-- SIGKILL.
function Watch.test_a_long_name_is_cut_in_the_line_that_sends_sigkill_to_what_the_app_left()
  local before = S.snapshot()
  local bg, command, app, child = awaiting_what_the_app_left(LONG_NAME)
  os.execute("kill -INT " .. command)
  local code, _, err = finish(bg)
  lu.assertEquals(code, 0, err)
  assert_contains(err, "\\x01[...] (pid " .. app .. ") has exited: sending SIGKILL to the 1 process left in the "
    .. "group of pid " .. app .. "\n")
  assert_lines_fit(err)
  lu.assertFalse(S.alive(child))
  S.assert_clean(before)
end

-- The exit's --json object cuts a long name as the ready object does (it
-- held the whole name: 24 KB, each control byte six in JSON).
function Watch.test_a_long_name_is_cut_in_the_exits_json_object_as_in_the_ready_one()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--json", "--ready=fd", "--", F, "line=3:" .. LONG_NAME, "exit=0" }
  lu.assertEquals(code, 0, err)
  local objects = S.lines(out)
  lu.assertEquals(#objects, 2, out)
  assert_lines_fit(out)
  lu.assertStrMatches(objects[1], '{"pid":%d+,"name":"[\\u01]+%[%.%.%.%]","ready_after":.*')
  lu.assertStrMatches(objects[2], '{"pid":%d+,"name":"[\\u01]+%[%.%.%.%]","exit_code":0,"signal":null,'
    .. '"watchdog":false}')
  S.assert_clean(before)
end

-- So does the line that says an app left running was terminated, its
-- ready line lost.
function Watch.test_a_long_name_is_cut_in_the_line_that_says_an_app_with_its_ready_line_lost_was_terminated()
  local before = S.snapshot()
  local code, err = run_to_full { "--ready=fd", "--", F, "line=3:" .. LONG_NAME, "pause" }
  lu.assertEquals(code, 1, err)
  lu.assertStrMatches(err, "appstart: cannot write to stdout %(No space left on device%): [\\x01]+%[%.%.%.%] %(pid "
    .. "%d+%) terminated\n")
  assert_lines_fit(err)
  S.assert_clean(before)
end

-- Once the app has exited, what it left in its group is awaited (its
-- SIGKILL after --grace): a SIGINT (^C) sends it SIGKILL at once, and the
-- command ends (every signal was dropped then, and the command waited out
-- --grace). The exit code is the app's own.
function Watch.test_a_sigint_while_what_the_app_left_is_awaited_sends_it_sigkill()
  local before = S.snapshot()
  local bg, command, app, child = awaiting_what_the_app_left()
  local t0 = core.now()
  os.execute("kill -INT " .. command)
  local code, _, err = finish(bg)
  lu.assertEquals(code, 0, err)
  lu.assertTrue(core.now() - t0 < 5, "the command waited out --grace")
  local said = "appstart: rest (pid " .. app .. ") "
  assert_contains(err, said .. "has exited: sending SIGKILL to the 1 process left in the group of pid " .. app
    .. "\n")
  assert_contains(err, said .. "exited with code 0\n")
  lu.assertFalse(S.alive(child))
  S.assert_clean(before)
end

-- A first SIGTERM meanwhile is passed on to what the app left; a second
-- sends it SIGKILL.
function Watch.test_a_second_sigterm_while_what_the_app_left_is_awaited_sends_it_sigkill()
  local before = S.snapshot()
  local bg, command, app, child = awaiting_what_the_app_left()
  local t0 = core.now()
  os.execute("kill -TERM " .. command)
  await_match(bg.err, "forwarding SIGTERM to the 1 process left in the group of pid " .. app .. "\n")
  lu.assertTrue(S.alive(child), "the child ignores SIGTERM")
  os.execute("kill -TERM " .. command)
  local code, _, err = finish(bg)
  lu.assertEquals(code, 0, err)
  lu.assertTrue(core.now() - t0 < 5, "the command waited out --grace")
  assert_contains(err, "appstart: rest (pid " .. app .. ") has exited: sending SIGKILL to the 1 process left in "
    .. "the group of pid " .. app .. "\n")
  lu.assertFalse(S.alive(child))
  S.assert_clean(before)
end

-- A signal the kernel sends the command alone is no terminal's: the
-- SIGALRM of an alarm() armed before the exec (it survives it), a
-- SIGXCPU, a SIGPROF. It is forwarded as any other (it was taken for a ^C
-- that the app, in the command's process group, had had too, and dropped).
function Watch.test_a_sigalrm_of_an_alarm_armed_before_the_exec_is_forwarded()
  if not has("perl") then lu.skip("needs perl to arm an alarm and exec") end
  local before = S.snapshot()
  -- the alarm cannot wait for the app to be ready: one that came too soon
  -- (the start cancelled by it, or the command ended by it as it began:
  -- no SIGALRM forwarded then) is tried again with twice the time
  for _, seconds in ipairs { 1, 2, 4 } do
    local pidfile, trap = S.tmpname("pid"), S.tmpname("trap")
    local bg = run_background_line(GUARD .. "perl -e 'alarm shift; exec @ARGV or die' " .. seconds .. " "
      .. command_line({ "--watch", "--verbose", "--ready=fd", "--", F, "pidfile=" .. pidfile, "trap=ALRM:" .. trap,
        "line=3:alrm", "pause" }, true))
    local deadline, said = core.now() + seconds + 10
    repeat
      said = (S.read(bg.err) or ""):match("[^\n]*SIGALRM[^\n]*")
      if said or S.read(bg.code) then break end
      core.wait_readable(-1, 0.005)
    until core.now() > deadline
    if said and (said:find("forwarding", 1, true) or said:find("from the terminal", 1, true)) then
      -- past the start: forwarded (or, the bug, taken for the terminal's)
      local app = S.pid_in(pidfile)
      if said:find("forwarding", 1, true) then await_match(trap, "14\n") end
      os.execute("kill -TERM " .. ppid(app))
      local code, _, err = finish(bg)
      lu.assertEquals(code, 128 + 15, err)
      assert_contains(err, "appstart: info: forwarding SIGALRM to pid " .. app .. "\n")
      lu.assertEquals(S.read(trap), "14\n")
      S.assert_clean(before)
      return
    end
    local _, _, err = finish(bg)
    lu.assertTrue(seconds < 4, "the alarm came before the app was watched: " .. err)
  end
end

-- A watched app killed by a SIGINT, SIGQUIT, SIGTERM or SIGHUP that the
-- command forwarded to it ends the command by that signal too, no core
-- dumped (a shell whose ^C reached the command takes a normal exit, 130,
-- for a command that handled it, and a loop of bash's goes on); $? in a
-- shell is still 128+N.
function Watch.test_an_app_killed_by_a_forwarded_sigint_ends_the_command_by_it_too()
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  for _, name in ipairs { "INT", "QUIT", "TERM", "HUP" } do
    local number = core.signum(name)
    local before = S.snapshot()
    local pidfile, out, err = S.tmpname("pid"), S.tmpname("out"), S.tmpname("err")
    local argv = { "/bin/sh", "-c", 'exec "$@" >' .. out .. " 2>" .. err, "sh" }
    if preload then table.move({ "env", "LD_PRELOAD=" .. preload }, 1, 2, #argv + 1, argv) end
    table.move({ "lua5.4", BIN, "--watch", "--ready=fd", "--", F, "pidfile=" .. pidfile, "line=3:wce", "pause" },
      1, 9, #argv + 1, argv)
    local command = assert(appstart.start { argv = argv, ready = "none", log = S.quiet })
    local app = tonumber(S.await_file(pidfile))
    await_match(out, "ready: pid %d+")
    os.execute("kill -" .. name .. " " .. command.pid)
    lu.assertEquals(command:wait(20), { signal = number }, S.read(err))
    lu.assertEquals(S.read(err), "appstart: wce (pid " .. app .. ") was killed by SIG" .. name .. "\n")
    lu.assertFalse(S.alive(app))
    command:close()
    S.assert_clean(before)
  end
end

-- An app that ignores a first SIGINT (^C) and dies of the SIGTERM that a
-- second one sends, or of the SIGKILL of a third, ends the command by
-- SIGINT too: a ^C ended it (it exited 143 or 137, and a loop of bash's
-- went on).
function Watch.test_an_app_killed_by_the_signal_of_a_second_or_third_sigint_ends_the_command_by_sigint()
  local preload = os.getenv("APPSTART_SAN_PRELOAD")
  for _, case in ipairs { { { "ignore=INT" }, "TERM" }, { { "ignore=INT", "ignore=TERM" }, "KILL" } } do
    local ignored, killer = case[1], case[2]
    local before = S.snapshot()
    local pidfile, out, err = S.tmpname("pid"), S.tmpname("out"), S.tmpname("err")
    local argv = { "/bin/sh", "-c", 'exec "$@" >' .. out .. " 2>" .. err, "sh" }
    if preload then table.move({ "env", "LD_PRELOAD=" .. preload }, 1, 2, #argv + 1, argv) end
    table.move({ "lua5.4", BIN, "--watch", "--verbose", "--ready=fd", "--", F }, 1, 7, #argv + 1, argv)
    table.move(ignored, 1, #ignored, #argv + 1, argv)
    table.move({ "pidfile=" .. pidfile, "line=3:ladder", "pause" }, 1, 3, #argv + 1, argv)
    local command = assert(appstart.start { argv = argv, ready = "none", log = S.quiet })
    local app = tonumber(S.await_file(pidfile))
    await_match(out, "ready: pid %d+")
    -- (each once the command has acted on the one before: see above)
    os.execute("kill -INT " .. command.pid)
    await_match(err, "forwarding SIGINT to pid %d+")
    os.execute("kill -INT " .. command.pid)
    if killer == "KILL" then
      await_match(err, "is still running: sending SIGTERM\n")
      os.execute("kill -INT " .. command.pid)
    end
    lu.assertEquals(command:wait(20), { signal = 2 }, S.read(err))
    assert_contains(S.read(err), "appstart: ladder (pid " .. app .. ") is still running: sending SIG" .. killer
      .. "\n")
    assert_contains(S.read(err), "appstart: ladder (pid " .. app .. ") was killed by SIG" .. killer .. "\n")
    lu.assertFalse(S.alive(app))
    command:close()
    S.assert_clean(before)
  end
end

-- Killed by a signal the command did not pass on (its own, or another
-- process's), the app's end is told by the exit code alone, 128+N.
function Watch.test_an_app_killed_by_a_signal_the_command_did_not_forward_gives_128_plus_n()
  local code, _, err = run { "--watch", "--ready=fd", "--", F, "line=3:own", "signal=INT" }
  lu.assertEquals(code, 128 + 2, err)
  assert_contains(err, "was killed by SIGINT\n")
end

-- The command on a terminal (script(1) makes one), and a keyboard: a shell
-- that waits for "ready: pid" in the output, types ^C, waits for the
-- command's decision, then ends the app with SIGTERM if it still runs. No
-- timeout(1) in between: it would pass the ^C on as a second SIGINT. Every
-- wait of the keyboard is bounded, so the command always ends.
local function ctrl_c_on_a_terminal(app_actions)
  local out, pidfile = S.tmpname("tty"), S.tmpname("pid")
  local argv = { "--watch", "--verbose", "--ready=fd", "--", F, "pidfile=" .. pidfile }
  for _, a in ipairs(app_actions) do argv[#argv + 1] = a end
  local keyboard = table.concat({
    "w() { i=0; while ! grep -q \"$1\" " .. quote(out) .. " 2>/dev/null; do",
    "  i=$((i+1)); [ $i -gt 2000 ] && return 1; sleep 0.005; done; }",
    "w 'ready: pid' && printf '\\003' && w 'forwarded\\|forwarding'",
    "kill -TERM $(cat " .. quote(pidfile) .. ") 2>/dev/null",
    "w 'appstart: tty (pid'",
  }, "\n")
  local ok, how, code = os.execute("(" .. keyboard .. "\n) | script -qec " .. quote(command_line(argv, true))
    .. " /dev/null >" .. out .. " 2>&1")
  return S.read(out) or "", S.pid_in(pidfile), ok, how, code
end

--- ^C on the terminal of a --watch command whose app runs app_actions: the
-- command logs `decision` (a format for the app's pid), the app ends by
-- `ended_by`, and nothing is left. Returns what the terminal showed.
local function ctrl_c_case(app_actions, decision, ended_by)
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  local before = S.snapshot()
  local text, app = ctrl_c_on_a_terminal(app_actions)
  lu.assertNotNil(app, text)
  assert_contains(text, string.format(decision, app))
  assert_contains(text, "appstart: tty (pid " .. app .. ") was killed by " .. ended_by)
  lu.assertFalse(S.alive(app))
  S.assert_clean(before)
  return text
end

function Watch.test_a_ctrl_c_on_the_terminal_reaches_the_app_once_and_is_not_forwarded()
  -- the app shares the terminal's foreground process group with the
  -- command, so the ^C reached it already (it ignores SIGINT, so that it
  -- is still there to receive a duplicate)
  local text = ctrl_c_case({ "ignore=INT", "line=3:tty", "pause" },
    "SIGINT from the terminal reached pid %d too: not forwarded", "SIGTERM")
  lu.assertNil(text:find("forwarding SIGINT", 1, true), text)
end

function Watch.test_a_ctrl_c_on_the_terminal_is_forwarded_to_an_app_in_a_session_of_its_own()
  -- setsid: the terminal's ^C cannot reach the app; the command passes it on
  ctrl_c_case({ "setsid", "line=3:tty", "pause" }, "forwarding SIGINT to pid %d", "SIGINT")
end

--- The terminal of a --watch command that leads its session (script(1)'s
-- shell execs it) hangs up (script is killed: the terminal's other side
-- closes). The kernel sends that SIGHUP to the session's leader alone, not
-- to the foreground group as a ^C: the command passes it on, so the app,
-- which does not handle it, ends, and then the command.
function Watch.test_a_hangup_of_the_terminal_the_command_leads_is_forwarded_to_the_app()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  local before = S.snapshot()
  local out, pidfile, scriptpid = S.tmpname("tty"), S.tmpname("pid"), S.tmpname("script")
  local argv = { "--watch", "--verbose", "--ready=fd", "--", F, "pidfile=" .. pidfile, "line=3:tty", "pause" }
  assert(os.execute("script -qec " .. quote("exec " .. command_line(argv, true)) .. " /dev/null >" .. out
    .. " 2>&1 </dev/null & echo $! >" .. scriptpid))
  local app = S.pid_in(pidfile)
  lu.assertNotNil(app)
  local command = tonumber(S.proc_status(app).PPid)
  local ok, err = pcall(function()
    await_match(out, "ready: pid")
    lu.assertEquals(select(2, core.process_group(command)), command, "the command leads its session")
    os.execute("kill -KILL " .. S.pid_in(scriptpid))
    lu.assertTrue(S.await_gone(app), "the app got the SIGHUP")
    lu.assertTrue(S.await_gone(command), "the command ended with it")
  end)
  for _, pid in ipairs { app, command } do
    if S.alive(pid) then os.execute("kill -KILL " .. pid) end
  end
  assert(ok, err)
  S.assert_clean(before)
end

--- A command without --watch that leads its terminal's session (ssh -t
-- host appstart ..., exec appstart from a login shell; here script(1)'s
-- shell execs it) ends at ready: the kernel then hangs up the terminal's
-- foreground group. The app left running is in a session of its own, so
-- the hangup does not reach it (it died of it, in the command's group),
-- and it does not read the terminal it was started from: its stdin is
-- /dev/null (it could take the keystrokes meant for the shell).
function Watch.test_an_app_left_running_outlives_the_terminal_the_command_led()
  if not has("script") then lu.skip("needs script(1) for a terminal") end
  local before = S.snapshot()
  local out, pidfile = S.tmpname("tty"), S.tmpname("pid")
  local argv = { "--ready=fd", "--", F, "pidfile=" .. pidfile, "line=3:tty", "pause" }
  local ok = os.execute("script -qec " .. quote("exec " .. command_line(argv, true)) .. " /dev/null >" .. out
    .. " 2>&1 </dev/null")
  local app = S.pid_in(pidfile)
  lu.assertNotNil(app, S.read(out))
  local ok2, err = pcall(function()
    lu.assertTrue(ok, S.read(out))
    assert_contains(S.read(out), "appstart: tty ready: pid " .. app)
    local session = select(2, core.process_group(app))
    lu.assertEquals(session, app, "the app leads a session of its own")
    local p = io.popen("readlink /proc/" .. app .. "/fd/0")
    lu.assertEquals(p:read("l"), "/dev/null")
    p:close()
    -- (the hangup, had it reached the app, came as the command exited,
    -- before script(1) returned)
    lu.assertTrue(S.alive(app), "the app outlived the terminal's hangup")
  end)
  if S.alive(app) then os.execute("kill -KILL " .. app) end
  lu.assertTrue(S.await_gone(app))
  assert(ok2, err)
  S.assert_clean(before)
end

-------------------------------------------------------------------------------

local Install = {}
function Install.tearDown() S.kill_strays() end

local ROOT = SPEC_DIR .. "/.."

function Install.test_an_installed_appstart_finds_its_own_modules_without_lua_path()
  if not has("make") or not has("cc") then lu.skip("needs make and cc") end
  local before = S.snapshot()
  local prefix = S.tmpname("prefix")
  local log = S.tmpname("make-log")
  -- a build directory of its own: the installed module has the installed
  -- helper's path compiled in, and the tree's build must not change under
  -- the suite; none of the calling make's settings (make sanitize's
  -- CFLAGS) either
  local make = "env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -C " .. quote(ROOT)
    .. " PREFIX=" .. quote(prefix) .. " B=" .. quote(prefix .. "/build") .. " "
  lu.assertTrue(os.execute(make .. "install >" .. log .. " 2>&1"), S.read(log))
  -- LUA_PATH names a decoy appstart: the installed one still loads its own
  local decoy = prefix .. "/decoy"
  assert(os.execute("mkdir -p " .. quote(decoy .. "/appstart")))
  local f = assert(io.open(decoy .. "/appstart/cli.lua", "w"))
  f:write('error("the decoy was loaded")\n')
  f:close()
  local bin = quote(prefix .. "/bin/appstart")
  local function installed(env, args)
    local out, err = S.tmpname("out"), S.tmpname("err")
    local _, _, code = os.execute("env -u APPSTART_HELPER " .. env .. " " .. GUARD .. bin .. " "
      .. args .. " >" .. out .. " 2>" .. err .. " </dev/null")
    return code, S.read(out), S.read(err)
  end
  for _, env in ipairs { "-u LUA_PATH -u LUA_CPATH",
    "LUA_PATH=" .. quote(decoy .. "/?.lua;;") .. " LUA_CPATH=" .. quote(decoy .. "/?.so;;") } do
    local code, out, err = installed(env, "--version")
    lu.assertEquals(code, 0, err)
    lu.assertEquals(out, "appstart " .. appstart.version .. "\n", env)
    code, out, err = installed(env, "--ready=fd -- " .. quote(F) .. " line=3:installed pause")
    lu.assertEquals(code, 0, err)
    local pid = tonumber(out:match("^appstart: installed ready: pid (%d+)"))
    lu.assertNotNil(pid, out)
    kill_app(pid)
    if S.proc_status("self").Uid:match("%d+") == "0" then
      -- through the installed helper, found where the module was built to find it
      code, out, err = installed(env, "--watch --user=nobody --ready=fd -- " .. quote(F) .. " line=3:helped exit=4")
      lu.assertEquals(code, 4, err)
      assert_contains(out, "appstart: helped ready: pid ")
    end
  end
  -- for luarocks (SCRIPT_DIRS=no), whose wrapper sets the paths: the
  -- script names no directory; a LUA given as a path is the interpreter
  local staged = prefix .. "/staged"
  lu.assertTrue(os.execute(make .. "install SCRIPT_DIRS=no LUA=/usr/bin/lua5.4 DESTDIR=" .. quote(staged)
    .. " >" .. log .. " 2>&1"), S.read(log))
  local script = S.read(staged .. prefix .. "/bin/appstart")
  lu.assertStrMatches(script, "^#!/usr/bin/lua5%.4\n.*")
  lu.assertStrContains(script, "\nlocal LUADIR, LIBDIR = nil, nil")
  os.execute("rm -rf " .. quote(staged))
  -- and make uninstall takes every file back
  lu.assertTrue(os.execute(make .. "uninstall >" .. log .. " 2>&1"), S.read(log))
  local p = io.popen("find " .. quote(prefix) .. " -path " .. quote(prefix .. "/build") .. " -prune -o -path "
    .. quote(decoy) .. " -prune -o -type f -print")
  local left = p:read("a")
  p:close()
  lu.assertEquals(left, "")
  os.execute("rm -rf " .. quote(prefix))
  S.assert_clean(before)
end

-------------------------------------------------------------------------------
-- the app's output read by the command: --stdout/--stderr = capture,
-- syslog, file:PATH:MAX:KEEP

local Output = {}

function Output.tearDown() S.kill_strays() end

function Output.test_captured_lines_are_printed_with_name_and_pid_while_watching()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--ready=fd", "--stdout=capture", "--stderr=stdout", "--",
    F, "line=3:up", "line=1:to stdout", "line=2:to stderr", "exit=4" }
  lu.assertEquals(code, 4, err)
  local pid = out:match("ready: pid (%d+)")
  lu.assertNotNil(pid, out)
  assert_contains(err, "fixture[" .. pid .. "]: to stdout\nfixture[" .. pid .. "]: to stderr\n")
  S.assert_clean(before)
end

function Output.test_a_failed_start_prints_the_app_s_last_lines_under_the_message()
  local before = S.snapshot()
  local code, out, err = run { "--watch", "--json", "--ready=fd", "--stderr=capture", "--",
    F, "line=2:cannot bind port 80", "line=2:giving up", "exit=1" }
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "appstart: app exited with code 1 before it was ready\n"
    .. "  | cannot bind port 80\n  | giving up\n")
  lu.assertStrContains(out, ',"output":["cannot bind port 80","giving up"]}\n')
  S.assert_clean(before)
end

function Output.test_a_file_with_its_sizes_is_rotated()
  local before = S.snapshot()
  local path = S.tmpname("cli") .. ":odd.log" -- a colon in the path itself
  local code, _, err = run { "--watch", "--ready=fd", "--stdout=file:" .. path .. ":1K:2", "--",
    F, "line=3:up", "lines=1:300:l", "exit=0" }
  lu.assertEquals(code, 0, err)
  lu.assertTrue(#S.read(path) <= 1024)
  lu.assertTrue(#S.read(path .. ".1") <= 1024)
  lu.assertStrContains(S.read(path), "l300\n")
  lu.assertNil(S.read(path .. ".3"))
  S.assert_clean(before)
end

function Output.test_output_the_command_reads_needs_watch_and_a_well_formed_file()
  for _, args in ipairs {
    { "--stdout=capture", "option '--stdout=capture' needs --watch" },
    { "--stderr=syslog", "option '--stderr=syslog' needs --watch" },
    { "--stdout=file:/tmp/x", "option '--stdout=file:...' needs --watch" },
    { "--stdout=file:", "option '--stdout': invalid value 'file:' (expected file:PATH" },
    { "--watch", "--stdout=file:/tmp/x:0", "MAX_BYTES must be > 0" },
    -- the Lua field's values named as the command's options
    { "--watch", "--stderr=stdout",
      "option '--stderr': 'stdout' needs --stdout=capture, --stdout=syslog or --stdout=file:PATH" },
  } do
    local msg = table.remove(args)
    args[#args + 1] = "--"
    args[#args + 1] = F
    local code, out, err = run(args)
    lu.assertEquals(code, 2, err)
    lu.assertEquals(out, "")
    assert_contains(err, msg)
  end
end

return { TestCliOutput = Output, TestCliUsage = Usage, TestCliStart = Start, TestCliFailure = Failure, TestCliWatch = Watch,
  TestCliInstall = Install }
