--- The options of appstart.start and the module's settings, as a user
-- gets them wrong: an option that would have no effect, a bare stream name
-- taken for a file, an infinite timeout, a uid written as a string, a
-- setting with a bad value or a name that is no setting, and
-- appstart.printable given no string. Each mistake raises at once, naming
-- what was wrong, and spawns nothing.
local lu = require "luaunit"
local appstart = require "appstart"
local options = require "appstart.options"
local S = require "support"

local F = S.fixture

-- opts (argv added) must raise at once, with `what` in the message, the
-- error pointing at this file, and nothing spawned
local function raises(opts, what)
  local before = S.snapshot()
  local marker = S.tmpname("spawned")
  opts.argv = opts.argv or { F, "pidfile=" .. marker, "pause" }
  local ok, e = pcall(function()
    local app = appstart.start(opts) -- (no tail call: the error points here)
    if app then app:terminate(0) end
  end)
  lu.assertFalse(ok, "accepted: " .. what)
  lu.assertStrContains(e, what)
  lu.assertStrContains(e, "options_spec.lua:")
  lu.assertNil(S.read(marker), "something was spawned")
  S.assert_clean(before)
end

-- opts (argv added) pass the checks
local function accepted(opts)
  opts.argv = opts.argv or { F }
  local field, why = options.check(opts)
  lu.assertNil(field, tostring(field) .. ": " .. tostring(why))
end

local T = {}

function T.tearDown() S.kill_strays() end

function T.test_pid_timeout_without_a_pid_channel_is_an_error()
  raises({ ready = "fd", pid_timeout = 5 }, "field 'pid_timeout': has no effect without 'helper' or 'user'")
  raises({ ready = "none", pid_timeout = 5, helper = false }, "field 'pid_timeout': has no effect")
  -- a forking daemon's pid file is waited for within ready_timeout
  raises({ ready = { forks = true, pid_file = "/tmp/x.pid" }, pid_timeout = 5 },
    "field 'pid_timeout': has no effect with ready.forks (the pid file is waited for within 'ready_timeout')")
  accepted({ ready = "fd", pid_timeout = 5, helper = true })
  accepted({ ready = "fd", pid_timeout = 5, helper = { F } })
  accepted({ ready = "fd", pid_timeout = 5, user = 0 })
end

-- ready = "none" waits for nothing: a ready_timeout there is a mistake
-- (under a supervisor it bounds sv:reload's wait: see supervisor_spec)
function T.test_ready_timeout_with_ready_none_is_an_error()
  local what = "field 'ready_timeout': has no effect with ready = 'none'"
  raises({ ready = "none", ready_timeout = 5 }, what)
  raises({ ready = "none", ready_timeout = 5, helper = true }, what)
  accepted({ ready = "fd", ready_timeout = 5 })
  accepted({ ready_timeout = 5 }) -- notify is the default
  accepted({ ready = { file = "/tmp/x" }, ready_timeout = 5 })
  accepted({ ready = { forks = true, pid_file = "/tmp/x.pid" }, ready_timeout = 5 })
end

function T.test_notify_access_without_a_ready_message_is_an_error()
  local what = "field 'notify_access': has no effect without ready = 'notify' or 'fd'"
  raises({ ready = "none", notify_access = "main" }, what)
  raises({ ready = { file = "/tmp/x" }, notify_access = "all" }, what)
  raises({ ready = { forks = true, pid_file = "/tmp/x.pid" }, notify_access = "exec" }, what)
  -- the fd protocol's line is admitted by its sender too
  accepted({ ready = "fd", notify_access = "main" })
  accepted({ ready = "notify", notify_access = "all" })
  accepted({ notify_access = "all" }) -- notify is the default
end

function T.test_on_status_without_notify_is_an_error()
  local what = "field 'on_status': has no effect without ready = 'notify' (STATUS= is a notify message)"
  raises({ ready = "fd", on_status = print }, what)
  raises({ ready = "none", on_status = print }, what)
  raises({ ready = { connect = "tcp:127.0.0.1:1" }, on_status = print }, what)
  accepted({ on_status = print })
  accepted({ ready = "notify", on_status = print })
end

function T.test_output_keep_where_the_launcher_reads_no_output_is_an_error()
  local what = "field 'output_keep': has no effect without stdout or stderr = 'capture', 'syslog' or {file = ...}"
  raises({ ready = "none", output_keep = 100 }, what)
  raises({ ready = "none", output_keep = 100, stdout = "null", stderr = S.tmpname("err") }, what)
  -- every line the launcher reads fills the ring, whatever its destination
  accepted({ output_keep = 100, stdout = "capture" })
  accepted({ output_keep = 100, stderr = "capture" })
  accepted({ output_keep = 100, stdout = "syslog" })
  accepted({ output_keep = 100, stderr = { file = "/tmp/x.log" } })
end

-- A line kept takes 4 bytes more than its length: 1 to 4 would keep
-- nothing, silently, as 0 says on purpose.
function T.test_output_keep_is_0_or_from_5_to_64_MiB()
  local what = "field 'output_keep': must be 0 (nothing kept) or from 5 to 67108864 (bytes: a line kept takes 4"
    .. " more than its length)"
  for _, keep in ipairs { -1, 1, 2, 3, 4, 64 * 1024 * 1024 + 1 } do
    raises({ stdout = "capture", output_keep = keep }, what)
  end
  for _, keep in ipairs { 0, 5, 64 * 1024 * 1024 } do
    accepted({ stdout = "capture", output_keep = keep })
  end
end

function T.test_output_keep_sizes_the_tail_of_a_syslog_stream()
  local saved = appstart.syslog_socket
  appstart.syslog_socket = S.tmpname("nobody-listens")
  -- each line takes its length and 4 bytes: "two" and "three" fit in 16
  local ok, e = pcall(function()
    local app = assert(appstart.start { argv = { F, "echo=one", "echo=two", "echo=three", "pause" },
      ready = "none", stdout = "syslog", output_keep = 16, log = S.quiet })
    lu.assertTrue(S.await_with_sleep(function() return app:tail()[2] == "three" end), "the lines came")
    lu.assertEquals(app:tail(), { "two", "three" })
    app:terminate(1)
  end)
  appstart.syslog_socket = saved
  if not ok then error(e, 0) end
end

function T.test_a_bare_stream_name_as_stdout_or_stderr_is_an_error_not_a_file()
  raises({ ready = "none", stdout = "stdout" },
    "field 'stdout': 'stdout' would be a file of that name in the current directory: write './stdout'")
  raises({ ready = "none", stdout = "stderr" }, "field 'stdout': 'stderr' would be a file of that name in the"
    .. " current directory (stdout cannot go into stderr; stderr = 'stdout' merges stderr into stdout):"
    .. " write './stderr' for such a file")
  raises({ ready = "none", stderr = "stderr" }, "field 'stderr': 'stderr' would be a file of that name")
  accepted({ stdout = "./stdout", stderr = "./stderr" })
  accepted({ stdout = "capture", stderr = "stdout" })
  -- an output's word is no input
  for _, word in ipairs { "stdout", "stderr", "capture", "syslog" } do
    raises({ ready = "none", stdin = word }, "field 'stdin': '" .. word .. "' is no input (inherit, null or a"
      .. " file): write './" .. word .. "' for a file of that name")
  end
  accepted({ stdin = "./stdout" })
end

function T.test_a_key_past_argvs_list_is_an_error_not_left_out()
  raises({ ready = "none", argv = { F, "pause", dir = "/" } }, "field 'argv': unexpected key \"dir\"")
  raises({ ready = "none", argv = { F, "pause", [4] = "x" } }, "field 'argv': ")
  raises({ ready = "none", helper = { "/bin/sh", x = 1 } }, "field 'helper': unexpected key \"x\"")
end

-- A list with a metatable (a proxy whose __index makes each entry) is an
-- error: the core reads entries raw, and a string __index made and nothing
-- held was freed before the exec read it (a use after free).
function T.test_a_list_with_a_metatable_is_an_error()
  local function proxy(list)
    return setmetatable({}, { __len = function() return #list end, __index = function(_, i)
      collectgarbage()
      return list[i] and (list[i] .. "") or nil
    end })
  end
  raises({ ready = "none", argv = proxy { F, "pause" } }, "field 'argv': must be a plain list (it has a metatable)")
  raises({ ready = "none", argv = setmetatable({ F, "pause" }, {}) }, "field 'argv': must be a plain list")
  raises({ ready = "none", helper = proxy { "/bin/sh" } }, "field 'helper': must be a plain list")
  raises({ ready = "none", env = setmetatable({}, { __pairs = function() return next, { A = "1" } end }) },
    "field 'env': must be a plain table")
  -- an options table, or a table in it, whose metatable would give what
  -- was not checked (a string ready_timeout, a file name through __index)
  local ok0, e0 = pcall(appstart.start, setmetatable({ argv = { F }, ready = "none" },
    { __index = { ready_timeout = "10" } }))
  lu.assertFalse(ok0)
  lu.assertStrContains(e0, "options must be a plain table (it has a metatable)")
  raises({ ready = "none", stdout = setmetatable({}, { __index = { file = S.tmpname("out") } }) },
    "field 'stdout': must be a plain table (it has a metatable)")
  raises({ ready = setmetatable({}, { __index = { file = S.tmpname("ready") } }) },
    "field 'ready': must be a plain table (it has a metatable)")
  -- the core itself reads raw: a proxy has no entries
  local ok, err = pcall(S.core.start, proxy { "/bin/true" }, nil, nil, nil, nil, nil, "none")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "bad number of entries")
end

-- The same for appstart.supervisor, sv:add and `appstart supervise`'s
-- file: its table, the services table, a service's spec, and a table of
-- the supervisor's fields in it (backoff, needs, after, success_codes),
-- with a metatable. What __index gave was ignored (a service's spec is
-- copied raw), or read unchecked: a `parallel` of "many" raised at
-- sv:up() (compare string with number).
function T.test_a_supervisors_table_or_a_table_in_it_with_a_metatable_is_an_error()
  local function raises_sv(spec, what)
    local ok, e = pcall(appstart.supervisor, spec)
    lu.assertFalse(ok, "accepted: " .. what)
    lu.assertStrContains(e, "appstart.supervisor: " .. what .. "must be a plain table (it has a metatable)")
  end
  local function svc(fields)
    local t = { argv = { F, "pause" }, ready = "none" }
    for k, v in pairs(fields or {}) do t[k] = v end
    return t
  end
  local mt = function(t, index) return setmetatable(t, { __index = index or {} }) end
  raises_sv(mt({ services = { a = svc() } }, { parallel = "many" }), "options ")
  raises_sv({ services = mt({ a = svc() }) }, "field 'services': ")
  raises_sv({ services = { a = mt(svc(), { restart = "no", ready_timeout = "bogus" }) } }, "service 'a': ")
  raises_sv({ services = { a = svc { backoff = mt({}, { initial = 5 }) } } }, "service 'a': field 'backoff': ")
  raises_sv({ services = { a = svc { success_codes = mt({ 0 }, { 1 }) } } },
    "service 'a': field 'success_codes': ")
  raises_sv({ services = { a = svc(), b = svc { needs = setmetatable({}, { __pairs = function()
    return next, { "a" } end }) } } }, "service 'b': field 'needs': ")
  raises_sv({ services = { a = svc(), b = svc { after = mt({ "a" }) } } }, "service 'b': field 'after': ")
  local sv = appstart.supervisor { services = {} }
  local ok, e = pcall(sv.add, sv, "a", mt(svc(), { kill_grace = "ten" }))
  lu.assertFalse(ok)
  lu.assertStrContains(e, "sv:add: service 'a': must be a plain table (it has a metatable)")
  -- the command: its file's table with one (the copy it makes lost it)
  local before = S.snapshot()
  local file = S.tmpname("services") .. ".lua"
  for _, text in ipairs {
    "return setmetatable({ services = {} }, { __index = { parallel = 'many' } })",
    string.format("return { services = { a = setmetatable({ argv = { %q, 'exit=1' } }, { __index = { restart = 'no',"
      .. " ready = 'none' } }) } }", F),
  } do
    local f = assert(io.open(file, "w"))
    f:write(text, "\n")
    f:close()
    local p = io.popen(S.san_prefix .. string.format("lua5.4 %s/../lua/bin/appstart supervise %s 2>&1 </dev/null;"
      .. " echo \"exit $?\"", S.shell_quote(S.spec_dir), S.shell_quote(file)))
    local out = p:read("a")
    p:close()
    lu.assertStrContains(out, "must be a plain table (it has a metatable)\nexit 1\n")
  end
  os.remove(file)
  S.assert_clean(before)
end

function T.test_a_tcp_probe_whose_host_cannot_be_resolved_has_no_errno()
  local app, err = appstart.start { argv = { F, "pause" }, ready = { connect = "tcp:no.such.host.invalid:80" },
    ready_timeout = 5, kill_grace = 1, log = S.quiet }
  lu.assertNil(app)
  lu.assertEquals(err.code, "protocol")
  lu.assertStrContains(err.message, "cannot resolve no.such.host.invalid")
  -- 0 is no errno: none is given where the resolver's failure has none
  lu.assertNil(err.errno)
end

function T.test_tail_takes_an_integral_float_as_lua_does()
  local app = assert(appstart.start { argv = { F, "echo=a", "echo=b", "echo=c", "line=3:up", "pause" },
    ready = "fd", stdout = "capture" })
  lu.assertEquals(app:tail(2.0), { "b", "c" })
  lu.assertErrorMsgContains("app:tail: an integer >= 0 expected, got 2.5", app.tail, app, 2.5)
  app:terminate()
  app:close()
end

-- An integer option takes a float with an integer value, as Lua's own
-- functions do (1e6 is a float): the start is the integer's (a uid and
-- gid of 65534.0 reach the helper as 65534: its text was "65534.0", no
-- such user). One with a fraction is refused, naming it.
function T.test_integer_options_take_an_integral_float_as_lua_does()
  local before = S.snapshot()
  local file = S.tmpname("out")
  local app = assert(appstart.start { argv = { F, "echo=a", "echo=b", "line=5:up", "pause" }, ready = "fd",
    ready_fd = 5.0, output_keep = 4096.0, stdout = { file = file, max_bytes = 1e6, keep = 2.0 } })
  lu.assertEquals(app:terminate(), { signal = 15 })
  app:close()
  lu.assertEquals(S.read(file), "a\nb\n")
  if S.is_root() then
    local uid = require("appstart.core").user("nobody")
    app = assert(appstart.start { argv = { F, "pause" }, ready = "none", user = uid + 0.0, group = uid + 0.0 })
    local st = S.proc_status(app.pid)
    lu.assertStrContains(st.Uid, tostring(uid) .. "\t")
    lu.assertStrContains(st.Gid, tostring(uid) .. "\t")
    app:terminate()
    app:close()
  end
  raises({ ready = "fd", ready_fd = 5.5 }, "field 'ready_fd': integer expected, got float")
  raises({ output_keep = 4096.5 }, "field 'output_keep': integer expected, got float")
  raises({ stdout = { file = file, max_bytes = 1e6 + 0.5 } }, "field 'stdout': field 'max_bytes': an integer > 0 "
    .. "expected, got 1000000.5")
  raises({ stdout = { file = file, max_bytes = 1e6, keep = 1.5 } }, "field 'stdout': field 'keep': an integer from 0 "
    .. "to 1000 expected, got 1.5")
  S.assert_clean(before)
end

-- A file probe's file that is stdout's or stderr's, or one of their
-- rotated files, is one the launcher makes itself (what was at the path is
-- read before the stdio files are opened): the probe passed at once, or at
-- the app's first line, or at a rotation, whatever the app did. Each
-- spelling of the file counts, made yet or not. (ready_timeout bounds the
-- starts these were before.)
function T.test_a_file_probe_on_a_file_the_launcher_makes_is_an_error()
  local dir = S.tmpname("made")
  assert(os.execute("mkdir " .. dir))
  local log, rotated = dir .. "/log", dir .. "/rotated"
  local made = "field 'ready': file: names %s's file, which the launcher makes: the probe would pass at once"
  raises({ ready = { file = log }, stdout = log, ready_timeout = 1 }, made:format("stdout"))
  raises({ ready = { file = dir .. "/./log" }, stdout = { file = log }, ready_timeout = 1 }, made:format("stdout"))
  raises({ ready = { file = log }, stderr = dir .. "//log", ready_timeout = 1 }, made:format("stderr"))
  -- (there from an earlier run: the app's first line passed it)
  assert(io.open(log, "w")):close()
  raises({ ready = { file = log }, stdout = "null", stderr = { file = dir .. "/./log" }, ready_timeout = 1 },
    made:format("stderr"))
  raises({ ready = { file = rotated .. ".3" }, stderr = { file = rotated, max_bytes = 100, keep = 3 },
    ready_timeout = 1 }, "field 'ready': file: names " .. rotated .. ".3, one of stderr's rotated files, which the"
    .. " launcher makes: the probe would pass at a rotation, ready or not")
  raises({ ready = { file = dir .. "/./rotated.1" }, stdout = { file = rotated, max_bytes = 100 }, ready_timeout = 1 },
    "field 'ready': file: names " .. rotated .. ".1, one of stdout's rotated files")
  -- files the launcher never makes: past keep, a plain file's "rotated"
  -- name, stdin's (only read)
  accepted({ ready = { file = rotated .. ".3" }, stdout = { file = rotated, max_bytes = 100, keep = 2 } })
  accepted({ ready = { file = log .. ".1" }, stdout = log })
  accepted({ ready = { file = log }, stdin = log, stdout = dir .. "/other" })
end

-- A file probe's path, or a unix socket's, ending in '/' names a directory:
-- neither is ever there (each try ENOTDIR or EISDIR until ready_timeout),
-- as pid_file's and an output file's are refused.
function T.test_a_file_probe_or_unix_socket_path_ending_in_a_slash_is_an_error()
  local dir = S.tmpname("slash")
  assert(os.execute("mkdir " .. dir))
  local file = dir .. "/file"
  assert(io.open(file, "w")):close()
  raises({ ready = { file = dir .. "/" }, ready_timeout = 1 }, "field 'ready': file: names a directory")
  raises({ ready = { file = file .. "/" }, ready_timeout = 1 }, "field 'ready': file: names a directory")
  raises({ ready = { connect = "unix:" .. dir .. "/" }, ready_timeout = 1 },
    "field 'ready': connect: 'unix:PATH' with a path not ending in '/': a socket is no directory")
  accepted({ ready = { file = file } })
  accepted({ ready = { connect = "unix:" .. dir .. "/sock" } })
end

function T.test_infinite_seconds_are_an_error()
  raises({ ready = "fd", helper = true, kill_grace = math.huge },
    "field 'kill_grace': must be a finite number of seconds >= 0")
  for _, field in ipairs { "ready_timeout", "pid_timeout" } do
    raises({ ready = "fd", helper = true, [field] = math.huge }, "field '" .. field .. "': must be a number of seconds > 0")
  end
  raises({ ready = "fd", ready_timeout = 0 / 0 }, "field 'ready_timeout': must be a number of seconds > 0")
  accepted({ ready = "fd", ready_timeout = 1e9, kill_grace = 0 })
end

-- A limit of 0 would fail the start at its first step, or not, as the app
-- raced it: no wait at all is no handshake (kill_grace = 0 is SIGKILL at
-- once, which means something).
function T.test_a_ready_or_pid_timeout_of_0_is_an_error()
  raises({ ready = "fd", ready_timeout = 0 }, "field 'ready_timeout': must be a number of seconds > 0")
  raises({ ready = "fd", helper = true, pid_timeout = 0 }, "field 'pid_timeout': must be a number of seconds > 0")
  raises({ ready = "fd", helper = true, pid_timeout = -1 }, "field 'pid_timeout': must be a number of seconds > 0")
  accepted({ ready = "fd", helper = true, ready_timeout = 0.001, pid_timeout = 0.001 })
end

-- A probe_timeout under 1 ms gave up each try as it began (1e-6: the
-- next begun at once, a spin): it has probe_interval's floor.
function T.test_a_probe_timeout_below_1_ms_is_an_error()
  local what = "field 'probe_timeout': must be at least 0.001 s (less would give up each try as it starts)"
  for _, ready in ipairs { { connect = "tcp:127.0.0.1:1" }, { exec = { "/bin/true" } } } do
    raises({ ready = ready, probe_timeout = 1e-6 }, what)
    raises({ ready = ready, probe_timeout = 0.0009 }, what)
    accepted({ ready = ready, probe_timeout = 0.001 })
  end
end

-- With `user`, the pid channel is appstart-helper's own: its format is
-- never the app's business, and its number only moves the ready
-- descriptor's default.
function T.test_pid_format_and_pid_fd_with_user_are_errors_where_they_change_nothing()
  raises({ ready = "none", user = "nobody", pid_format = "line" }, "field 'pid_format': has no effect with 'user'")
  raises({ ready = "notify", user = "nobody", pid_fd = 7 }, "field 'pid_fd': has no effect with 'user'")
  -- nor with ready = "fd": the app's ready descriptor is the first free
  -- from 3 all the same (the pid channel takes another)
  raises({ ready = "fd", user = "nobody", pid_fd = 7 }, "field 'pid_fd': has no effect with 'user'")
  accepted({ ready = "fd", user = "nobody", ready_fd = 3 })
  accepted({ ready = "fd", helper = true, pid_fd = 7, pid_format = "line" })
end

function T.test_a_string_of_digits_is_a_uid_or_gid_as_a_number_is()
  accepted({ user = "54321" })
  accepted({ user = "54321", group = "4242" })
  accepted({ user = 54321, group = 4242 })
  raises({ user = "4294967295" }, "field 'user': 4294967295 is out of range")
  raises({ user = "99999999999999999999" }, "field 'user': 99999999999999999999 is out of range")
  raises({ user = "0", group = "4294967295" }, "field 'group': 4294967295 is out of range")
  raises({ user = "no-such-user-here" }, "field 'user': no such user 'no-such-user-here'")
end

function T.test_a_string_uid_with_no_passwd_entry_runs_the_app_as_that_uid()
  if S.proc_status("self").Uid:match("%d+") ~= "0" then lu.skip("needs root") end
  local before = S.snapshot()
  local app, err = appstart.start { argv = { F, "pause" }, user = "54321", group = "4242", ready = "none",
    log = S.quiet }
  lu.assertNotNil(app, tostring(err))
  local st = S.read("/proc/" .. app.pid .. "/status")
  lu.assertStrMatches(st:match("\nUid:([^\n]*)"), "%s+54321%s+54321%s+54321%s+54321")
  lu.assertStrMatches(st:match("\nGid:([^\n]*)"), "%s+4242%s+4242%s+4242%s+4242")
  app:terminate(1)
  S.assert_clean(before)
end

-------------------------------------------------------------------------------

local Settings = {}

local SAVED = {}

function Settings.setUp()
  for _, k in ipairs { "log_level", "poll_interval", "helper_path", "syslog_socket" } do SAVED[k] = appstart[k] end
end

function Settings.tearDown()
  for k, v in pairs(SAVED) do appstart[k] = v end
end

-- `fn` raises, pointing at this file, with `what` in the message
local function setting_raises(fn, what)
  local ok, e = pcall(fn)
  lu.assertFalse(ok, "accepted: " .. what)
  lu.assertStrContains(e, what)
  lu.assertStrContains(e, "options_spec.lua:")
end

function Settings.test_a_bad_value_for_a_setting_raises_and_changes_nothing()
  setting_raises(function() appstart.log_level = "loud" end,
    "appstart.log_level: invalid value 'loud' ('error', 'warn', 'info' or 'debug')")
  lu.assertEquals(appstart.log_level, SAVED.log_level)
  setting_raises(function() appstart.log_level = nil end, "appstart.log_level: invalid value 'nil'")
  for _, bad in ipairs { -1, 0, math.huge, 0 / 0, "1" } do
    setting_raises(function() appstart.poll_interval = bad end, "appstart.poll_interval: ")
  end
  -- (what it paces looked in a busy loop)
  setting_raises(function() appstart.poll_interval = 1e-9 end,
    "appstart.poll_interval: must be at least 0.001 s (less would spin)")
  lu.assertEquals(appstart.poll_interval, SAVED.poll_interval)
  setting_raises(function() appstart.helper_path = "" end, "appstart.helper_path: must not be empty")
  -- a bare name would be looked up in PATH (a program of anyone's, run as root)
  setting_raises(function() appstart.helper_path = "appstart-helper" end,
    "appstart.helper_path: 'appstart-helper' is a name, not a path (it would be looked up in PATH): give its path")
  lu.assertEquals(appstart.helper_path, SAVED.helper_path)
  setting_raises(function() appstart.syslog_socket = 5 end, "appstart.syslog_socket: a path expected, got number")
  setting_raises(function() appstart.version = "9" end, "appstart.version: is read only")
  lu.assertNotEquals(appstart.version, "9")
end

function Settings.test_good_values_take_effect()
  appstart.log_level = "debug"
  lu.assertEquals(appstart.log_level, "debug")
  appstart.poll_interval = 0.2
  lu.assertEquals(appstart.poll_interval, 0.2)
  appstart.syslog_socket = "/run/other.sock"
  lu.assertEquals(appstart.syslog_socket, "/run/other.sock")
end

function Settings.test_a_name_that_is_no_setting_raises()
  setting_raises(function() appstart.no_such_setting = 1 end,
    "appstart.no_such_setting: no such setting (helper_path, log_level, poll_interval, syslog_socket)")
  setting_raises(function() appstart.log_levle = "debug" end, "appstart.log_levle: no such setting")
  lu.assertNil(rawget(appstart, "no_such_setting"))
  lu.assertNil(appstart.log_levle)
end

--- One of the module's functions assigned to is no setting either: the
-- library never calls appstart.default_log through the module, so a
-- logger put there would change nothing. It stays as it was; the module
-- still shows all it holds to pairs() (at the REPL).
function Settings.test_a_function_of_the_module_assigned_to_raises()
  local default_log, start = appstart.default_log, appstart.start
  setting_raises(function() appstart.default_log = print end,
    "appstart.default_log: one of the module's functions, not a setting (helper_path, log_level, poll_interval,"
    .. " syslog_socket)")
  setting_raises(function() appstart.start = 1 end, "appstart.start: one of the module's functions, not a setting")
  lu.assertIs(appstart.default_log, default_log)
  lu.assertIs(appstart.start, start)
  local seen = {}
  for k, v in pairs(appstart) do seen[k] = v end
  lu.assertIs(seen.start, start)
  lu.assertEquals(seen.log_level, appstart.log_level)
  lu.assertEquals(seen.version, appstart.version)
end

function Settings.test_an_APPSTART_HELPER_that_is_a_name_is_said_on_stderr_and_not_looked_up()
  local out = S.run_child({ env = { APPSTART_HELPER = "appstart-helper", PATH = S.tmpdir .. ":/usr/bin:/bin" } },
    "settings_helper_path")
  local compiled = out:match("\n([^\n]*)\n$")
  lu.assertStrContains(compiled, "/")
  lu.assertEquals(out, "appstart: warn: APPSTART_HELPER=\"appstart-helper\": 'appstart-helper' is a name, not a path"
    .. " (it would be looked up in PATH): give its path: using " .. compiled .. "\n" .. compiled .. "\n" .. compiled .. "\n")
  out = S.run_child({ env = { APPSTART_HELPER = "./build/appstart-helper" } }, "settings_helper_path")
  lu.assertEquals(out:match("^[^\n]*"), "./build/appstart-helper")
end

function Settings.test_a_bad_APPSTART_LOG_is_said_once_on_stderr_and_warn_used()
  local out = S.run_child({ env = { APPSTART_LOG = "bogus" } }, "log_level")
  lu.assertEquals(out, "appstart: warn: APPSTART_LOG=\"bogus\" is not a log level ('error', 'warn', 'info'"
    .. " or 'debug'): using 'warn'\nwarn\n")
  out = S.run_child({ env = { APPSTART_LOG = "info" } }, "log_level")
  lu.assertEquals(out, "info\n")
end

function Settings.test_printable_given_no_string_is_a_bad_argument_error()
  setting_raises(function() appstart.printable(5) end,
    "bad argument #1 to 'appstart.printable' (string expected, got number)")
  setting_raises(function() appstart.printable() end, "(string expected, got nil)")
  lu.assertEquals(appstart.printable("a\27b"), "a\\x1bb")
  -- C1 controls in UTF-8 (U+009B is CSI to a UTF-8 terminal); other
  -- characters, those whose bytes run through 0x80-0x9F among them, stay
  lu.assertEquals(appstart.printable("a\xC2\x9B31mb\xC2\x85"), "a\\xc2\\x9b31mb\\xc2\\x85")
  lu.assertEquals(appstart.printable("\xC3\xA9 \xE2\x82\xAC \xC2\xA0"), "\xC3\xA9 \xE2\x82\xAC \xC2\xA0")
  -- a byte that is no part of UTF-8 text (a lone 0x9B is CSI to an 8-bit
  -- terminal; a Latin-1 é; a surrogate's encoding; a truncated sequence)
  lu.assertEquals(appstart.printable("a\x9B31mb caf\xE9 \xED\xA0\x80 \xE2\x82"),
    "a\\x9b31mb caf\\xe9 \\xed\\xa0\\x80 \\xe2\\x82")
end

-- The options are read as they were checked: a change to the caller's
-- table after (a template reused for the next app, an on_status that
-- writes to it) changes nothing of the start or its app (the app read the
-- table itself: a reload_signal = "KILL" set after the start killed the
-- app on app:reload(), a kill_grace = "bogus" made app:terminate() raise
-- in appstart's own code, an on_status set to a string ended the run).
function T.test_the_options_table_changed_after_the_start_changes_nothing()
  local before = S.snapshot()
  local seen = {}
  local opts = { argv = { F, "catch=HUP", "notify=STATUS=one", "sleep=0.2", "notify=READY=1",
    "waitsig=HUP", "notify=RELOADING=1", "notify=STATUS=two", "notify=READY=1", "pause" },
    reload_signal = "HUP", kill_grace = 2, ready_timeout = 5, log = S.quiet }
  opts.on_status = function(_, text)
    seen[#seen + 1] = text
    opts.on_status, opts.kill_grace, opts.ready_timeout = "not a function", "bogus", "bogus"
  end
  local reloaded, how
  appstart.run(function()
    local app = assert(appstart.start(opts))
    opts.reload_signal, opts.notify_access, opts.watchdog = "KILL", "all", 0.01
    reloaded = { app:reload() }
    how = app:terminate()
  end)
  lu.assertEquals(reloaded[1], true, tostring(reloaded[2]))
  lu.assertEquals(seen, { "one", "two" })
  lu.assertEquals(how, { signal = 15 })
  S.assert_clean(before)
end

-- So are the tables in it that a begun start reads as it runs: its argv
-- (the app's name, taken at ready: a number put there raised inside
-- appstart, the start left not done and its app running; a string
-- renamed the app) and its probe (an exec probe's command, read at each
-- try; a probe of another kind put there raised so).
function T.test_the_argv_and_probe_tables_changed_after_begin_change_nothing()
  local before = S.snapshot()
  local opts = { argv = { F, "notify=READY=1", "pause" }, log = S.quiet }
  local h = appstart.begin(opts)
  opts.argv[1] = 42
  local app = assert(h:wait())
  lu.assertEquals(app.name, "fixture")
  lu.assertEquals(app:terminate(), { signal = 15 })
  opts = { argv = { F, "pause" }, ready = { exec = { F, "sleep=0.2", "exit=0" } }, log = S.quiet }
  h = appstart.begin(opts)
  opts.ready.exec[1], opts.ready.exec[2], opts.ready.connect = "/nonexistent", 42, 42
  app = assert(h:wait())
  lu.assertEquals(app:terminate(), { signal = 15 })
  S.assert_clean(before)
end

return { TestOptionsNoEffect = T, TestSettings = Settings }
