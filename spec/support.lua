--- Shared test support: where the fixtures are, and the checks every
-- failure-path test makes: no new descriptors, no zombie, no stray process.
local core = require "appstart.core"
local testing = require "appstart.testing"
local lu = require "luaunit"

local S = {}

S.fixtures = assert(os.getenv("APPSTART_FIXTURES"), "run through make test")
--- where the specs (and the programs they run in child processes) are
S.spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
S.testing = require "appstart.testing"
S.helper = assert(os.getenv("APPSTART_HELPER"))
S.core = core

--- The per-run temporary directory, made 0755 at once: specs run programs
-- as other users (nobody), who must reach what they execute and the files
-- they are told to read.
do
  local p = io.popen("d=$(mktemp -d /tmp/appstart-spec.XXXXXX) && chmod 755 \"$d\" && echo \"$d\"")
  S.tmpdir = assert(p:read("l"), "cannot make a temporary directory")
  p:close()
  -- removed with everything in it when the Lua state closes (the end of
  -- the script, or os.exit(code, true)): each run, and each bench worker,
  -- made one, and /tmp may be memory
  local dir, owner = S.tmpdir, core.pid()
  S.tmpdir_guard = setmetatable({}, { __gc = function()
    if core.pid() == owner then os.execute("rm -rf -- '" .. dir .. "'") end
  end })
end

--- The fixture, copied to S.tmpdir/bin: a checkout may live where other
-- users cannot reach (root's 0700 home, a `mktemp -d` directory), and
-- specs run the fixture as nobody.
S.bindir = S.tmpdir .. "/bin"
assert(os.execute(string.format("mkdir -m 755 '%s' && cp '%s/fixture' '%s/fixture'",
  S.bindir, S.fixtures, S.bindir)), "cannot copy the fixture")
S.fixture = S.bindir .. "/fixture"

--- A copy of the module (lua/, the built appstart.core) and of
-- spec/childkit.lua under S.tmpdir/tree, made on first use, for a
-- launcher that runs as another user (nobody): LUA_PATH and LUA_CPATH to
-- give it are returned.
function S.public_tree()
  local tree = S.tmpdir .. "/tree"
  local lua_dir = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") .. "/lua"
  local core_so = assert(package.searchpath("appstart.core", package.cpath))
  if not io.open(tree .. "/appstart/core.so") then
    assert(os.execute(string.format("mkdir -p -m 755 '%s/spec' '%s/appstart' && cp -R '%s/.' '%s/' && "
      .. "cp '%s' '%s/appstart/core.so' && cp '%s/../spec/childkit.lua' '%s/spec/' && chmod -R a+rX '%s'",
      tree, tree, lua_dir, tree, core_so, tree, lua_dir, tree, tree)), "cannot copy the module")
  end
  return tree .. "/?.lua;" .. tree .. "/spec/?.lua;;", tree .. "/?.so;;"
end

--- A setuid-root copy of the fixture, in a directory of its own only
-- root may write (its `root` action then becomes root: a process its
-- launcher, run as another user, may not signal). Needs root.
function S.setuid_fixture()
  local installed = S.tmpname("installed")
  local suid = installed .. "/fixture"
  assert(os.execute(string.format("mkdir -m 755 %s && cp '%s' %s && chown root:root %s && chmod 4755 %s", installed,
    S.fixture, suid, suid, suid)))
  return suid
end

--- Run spec/child/NAME.lua as nobody (the module copied where nobody
-- may read it), its arguments a setuid-root copy of the fixture and a
-- directory all may write, DIR, whose file `pid_name` the process it
-- makes become root writes its pid to: that process is checked root and
-- killed (the child's launcher may not). The child's output, or an error
-- when no such pid was written.
function S.run_as_nobody_with_a_root_process(name, pid_name, timeout)
  local suid, dir = S.setuid_fixture(), S.tmpname("shared")
  assert(os.execute("mkdir -m 777 " .. dir))
  local lua_path, lua_cpath = S.public_tree()
  local out = S.run_child({ as = "nobody", as_group = "nogroup", timeout = timeout,
    env = { LUA_PATH = lua_path, LUA_CPATH = lua_cpath } }, name, suid, dir)
  local pid = tonumber(S.read(dir .. "/" .. pid_name) or "")
  if not pid then error("no process became root: " .. out, 2) end
  local uid = S.proc_status(pid).Uid:match("^(%d+)")
  os.execute("kill -9 " .. pid)
  assert(S.await_gone(pid))
  if uid ~= "0" then error("pid " .. pid .. " did not become root: " .. out, 2) end
  return out
end

local tmp_count = 0
--- A fresh path under the per-run temporary directory.
function S.tmpname(stem)
  tmp_count = tmp_count + 1
  return string.format("%s/%s-%d", S.tmpdir, stem or "f", tmp_count)
end

S.read = require("childkit").read
S.sh = require("childkit").sh
--- The state letter of pid (R, S, T, Z, ...), or nil once it is gone.
S.state = require("childkit").state

--- Wait (bounded) for a file a fixture writes with tmp+rename.
function S.await_file(path, timeout)
  local deadline = core.now() + (timeout or 5)
  while core.now() < deadline do
    local s = S.read(path)
    if s then return s end
    core.wait_readable(-1, 0.002) -- a 2 ms pause between looks
  end
  error("file never appeared: " .. path, 2)
end

function S.lines(s)
  local t = {}
  for l in (s or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

--- /proc/PID/status as a table of fields.
function S.proc_status(pid)
  local s = S.read("/proc/" .. pid .. "/status")
  if not s then return nil end
  local t = {}
  for k, v in s:gmatch("([%w_]+):%s*([^\n]*)") do t[k] = v end
  return t
end

--- Does the suite run as root (what needs it is skipped otherwise)?
function S.is_root()
  return S.proc_status("self").Uid:match("^(%d+)") == "0"
end

local function proc_pids()
  local pids = {}
  for l in S.sh("exec ls /proc"):gmatch("[^\n]+") do
    local n = tonumber(l)
    if n then pids[#pids + 1] = n end
  end
  return pids
end

--- Children of this process, zombies included (sorted pids).
S.children = require("childkit").children

local function pgrp(pid)
  local stat = S.read("/proc/" .. pid .. "/stat")
  return stat and stat:match("%) %S+ %d+ (%d+)")
end

-- The mark of this run (make's recipe sets it), in the environment of
-- every process it starts that inherits the launcher's.
local RUN_MARK = os.getenv("APPSTART_SPEC_RUN")
RUN_MARK = RUN_MARK and ("\0APPSTART_SPEC_RUN=" .. RUN_MARK .. "\0")

local function of_this_run(pid, mine)
  if pgrp(pid) == mine then return true end
  -- a helper's app, a forking daemon: in a session of their own
  local env = RUN_MARK and S.read("/proc/" .. pid .. "/environ")
  return env ~= nil and ("\0" .. env):find(RUN_MARK, 1, true) ~= nil
end

--- Live (not zombie) processes running the fixture or the helper, in this
-- process group or marked as this run's (so concurrent test runs do not
-- see each other's).
function S.strays()
  local out = {}
  local mine = pgrp("self")
  for _, pid in ipairs(proc_pids()) do
    local cmd = S.read("/proc/" .. pid .. "/cmdline")
    local argv0 = cmd and cmd:match("^[^%z]*")
    if (argv0 == S.fixture or argv0 == S.helper) and of_this_run(pid, mine) then
      if S.alive(pid) then out[#out + 1] = pid end
    end
  end
  return out
end

--- Is pid alive: not a zombie, or one whose main thread alone has exited,
-- its other threads running?
function S.alive(pid)
  local st = S.proc_status(pid)
  return st ~= nil and (not st.State:match("^Z") or (tonumber(st.Threads) or 1) > 1)
end

--- Kill every stray fixture (cleanup after a failed test), and what else
-- such a test left running as this launcher's child (a real daemon: redis,
-- dbus, mosquitto), with the process group it leads, if it leads one of
-- its own (kill_mode "group"); then reap.
function S.kill_strays()
  for _, pid in ipairs(S.strays()) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  local mine = pgrp("self")
  for _, pid in ipairs(S.children()) do
    if S.alive(pid) then
      local group = pgrp(pid)
      local target = (group == tostring(pid) and group ~= mine) and ("-" .. group) or tostring(pid)
      os.execute("kill -9 " .. target .. " 2>/dev/null")
    end
  end
  testing.reap()
end

--- Reap every child of the launcher's that has exited, whoever it was
-- (after a check that found children left: one that nothing of
-- appstart's would reap must not fail every test after it too; not in a
-- tearDown, where a test that checks nothing itself leaves what it
-- leaked to the next check). Waits up to 2 s for a child killed just now
-- to end.
function S.reap_children()
  local deadline = core.now() + 2
  repeat
    local live = 0
    for _, pid in ipairs(S.children()) do
      if not testing.reap_zombie(tonumber(pid)) then live = live + 1 end
    end
    if live == 0 then return end
    core.wait_readable(-1, 0.01)
  until core.now() > deadline
end

--- Snapshot of what the launcher holds, for S.assert_clean.
function S.snapshot()
  collectgarbage() -- objects of earlier tests (event loops) release theirs
  testing.reap()
  return { fds = table.concat(testing.fds(), ","), }
end

--- Nothing left behind: same descriptors, no child at all (so no zombie),
-- no live fixture or helper process.
function S.assert_clean(before, msg)
  testing.reap()
  msg = msg and (msg .. ": ") or ""
  lu.assertEquals(table.concat(testing.fds(), ","), before.fds, msg .. "descriptors")
  local children = S.children()
  if #children > 0 then
    local named = {}
    for i, pid in ipairs(children) do
      local st = S.proc_status(pid)
      local cmd = (S.read("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " "):sub(1, 80)
      named[i] = string.format("%d (%s, %s, pgrp %s: %s)", pid, st and st.Name or "?", st and st.State or "gone",
        pgrp(pid) or "?", cmd)
    end
    -- (cleaned up, so that only this test fails for what it left)
    S.kill_strays()
    S.reap_children()
    lu.fail(msg .. "children (zombies) left: " .. table.concat(named, ", "))
  end
  lu.assertEquals(S.strays(), {}, msg .. "stray processes")
  -- no adoption window left open (the launcher a child subreaper would
  -- take in every orphan of its descendants from then on)
  lu.assertFalse(testing.subreaper(), msg .. "the launcher is still a child subreaper")
  local loop = require "appstart.loop"
  if not loop.running() then
    lu.assertEquals((loop.pending()), {}, msg .. "descriptors still waited on by the loop")
  end
end

--- Seconds that fn() takes, and its results.
function S.timed(fn, ...)
  local t0 = core.now()
  local r = table.pack(fn(...))
  return core.now() - t0, table.unpack(r, 1, r.n)
end

--- A log function that records into a list.
function S.recorder()
  local list = {}
  return list, function(level, message) list[#list + 1] = level .. ": " .. message end
end

--- A log function that drops everything.
function S.quiet() end

--- Create (or truncate) an empty file at path.
function S.touch(path)
  assert(io.open(path, "w")):close()
end

--- A logger that creates `path` once the launcher has learned the app's pid
-- from the helper: an app that waits for that file (waitfile=) acts only
-- once its pid is known.
function S.touch_when_pid_known(path)
  return function(_, message)
    if message:match("helper reported pid") then S.touch(path) end
  end
end

--- The pid a fixture wrote with pidfile=PATH (waiting up to 3 s for it).
function S.pid_in(path)
  return tonumber(S.await_file(path, 3):match("%d+"))
end

--- Wait (bounded, without any appstart call) until pid is gone or a zombie.
-- Returns false if it is still running after `timeout` seconds (3).
function S.await_gone(pid, timeout)
  local deadline = core.now() + (timeout or 3)
  while S.alive(pid) do
    if core.now() >= deadline then return false end
    core.wait_readable(-1, 0.005)
  end
  return true
end

--- Inside a task (or outside any loop): appstart.sleep(0.01) steps until
-- pred() is true (returns true) or `timeout` seconds (3) pass (false).
function S.await_with_sleep(pred, timeout)
  local appstart = require "appstart" -- the module loaded now: see S.fresh_appstart_if_wedged
  local deadline = core.now() + (timeout or 3)
  while not pred() do
    if core.now() >= deadline then return false end
    appstart.sleep(0.01)
  end
  return true
end

--- A start function and a fail-case check sharing a file's defaults.
-- `start(opts)` fills in every option of `defaults` that opts leaves out (and
-- a silent log), then calls appstart.start of the module loaded at that time.
-- `fail_case(opts, code, bound, cleanup)` is a start that must fail with
-- `code` within `bound` seconds (2) and leave nothing behind (S.assert_clean
-- against a snapshot taken before the start); `cleanup` (optional) runs
-- before the leak check and ends what the test itself made (a daemon's
-- forked grandchild, say). fail_case returns err and the time it took.
function S.starter(defaults)
  local function start(opts)
    for k, v in pairs(defaults) do
      -- pid_timeout only where a pid is reported, ready_timeout only where
      -- something is waited for (else each is a mistake)
      if opts[k] == nil and (k ~= "pid_timeout" or opts.helper or opts.user)
        and (k ~= "ready_timeout" or opts.ready ~= "none") then
        opts[k] = v
      end
    end
    if opts.log == nil then opts.log = S.quiet end
    return require("appstart").start(opts)
  end
  local function fail_case(opts, code, bound, cleanup)
    local before = S.snapshot()
    local took, app, err = S.timed(start, opts)
    lu.assertNil(app, "the start succeeded")
    lu.assertEquals(err.code, code, tostring(err))
    lu.assertTrue(took < (bound or 2), "detected after " .. took .. " s")
    if cleanup then cleanup() end
    S.assert_clean(before)
    return err, took
  end
  return start, fail_case
end

-- A copy of a test class whose tests run between enter() and leave().
local function variant(class, enter, leave)
  local copy = {}
  for k, v in pairs(class) do copy[k] = v end
  copy.setUp = function(self)
    enter()
    if class.setUp then class.setUp(self) end
  end
  copy.tearDown = function(self)
    leave()
    if class.tearDown then class.tearDown(self) end
  end
  return copy
end

--- The same test class with the kill(pid, 0) polling fallback forced, so
-- the path taken where the kernel has no pidfds stays correct.
function S.without_pidfd(class)
  return variant(class, function() testing.use_pidfd(false) end,
    function() testing.use_pidfd(true) end)
end

--- The same test class with exec failures reported over the error pipe,
-- the path taken where vfork is emulated as fork (valgrind), so it stays
-- correct where the memory vfork shares carries them.
function S.with_exec_pipe(class)
  return variant(class, function() testing.exec_report("pipe") end,
    function() testing.exec_report("auto") end)
end

--- Hang watchdog. A hang must fail the test, not the suite: S.arm_watchdog
-- sets a count hook on the running coroutine that raises once the test has
-- run for `seconds`, and again every 0.5 s while the hang goes on;
-- debug.sethook() disarms it. (Lua keeps a hook function per coroutine: a
-- task's own code is not watched, the loop that resumes it is.) A module
-- left wedged by a hang is loaded afresh by the next
-- S.fresh_appstart_if_wedged.
local wedged = false
function S.arm_watchdog(seconds)
  local deadline = core.now() + seconds
  debug.sethook(function()
    if core.now() > deadline then
      deadline, wedged = core.now() + 0.5, true
      error(string.format("watchdog: still running after %g s (hung)", seconds))
    end
  end, "", 10000)
end

--- The appstart module to use from here on: loaded afresh if a watchdog
-- has tripped since the last call, else the one loaded now. Assign it to
-- the file's `appstart` (setUp: `appstart = S.fresh_appstart_if_wedged()`).
function S.fresh_appstart_if_wedged()
  if wedged then
    wedged = false
    package.loaded.appstart, package.loaded["appstart.loop"] = nil, nil
  end
  return require "appstart"
end

local function shell_quote(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end
S.shell_quote = shell_quote

-- (childkit's: a child program counts them too)
S.cgroup_mount = require("childkit").cgroup_mount
S.own_cgroup_dir = require("childkit").own_cgroup_dir
S.my_cgroups = require("childkit").my_cgroups

--- A shell command's prefix that preloads the sanitizers' runtime under
-- make sanitize (childkit's SH_SAN_PRELOAD).
S.san_prefix = require("childkit").SH_SAN_PRELOAD

--- Run spec/child/NAME.lua (or the Lua file at `name`, when it is a path)
-- to its end in a child Lua, given the rest of the arguments (strings or
-- numbers) as its `arg`, with this environment (LUA_PATH, LUA_CPATH,
-- APPSTART_*; under `make sanitize` the ASan runtime is preloaded again
-- for it) plus `how.env` (a table of variables to set), through sh:
-- `how.nofile` lowers its descriptor limit first (`ulimit -n`; only the
-- soft limit with `how.soft_only`), `how.ignore` starts it with those
-- signals ignored (`trap '' SIGS`: "USR1 USR2"), `how.tty` runs it on a terminal of its
-- own (script(1)), `how.background` leaves it running in the background
-- (and returns nothing), `how.as` and `how.as_group` run it as that user
-- and group (from a copy under S.tmpdir, which that user can read), with
-- no supplementary groups but `how.as_groups` ("1,2,3"),
-- `how.hosts` (a file) has it see that file as /etc/hosts, `how.passwd`
-- as /etc/passwd (a mount namespace of its own: see S.can_unshare;
-- `how.own_mounts` gives it one, for what it mounts itself),
-- `how.no_path` runs it with no PATH in its environment, `how.cgroup` (a
-- directory of the cgroup v2 hierarchy) in that cgroup (moved there as
-- root, before `how.as` takes effect), `how.userns` (a
-- uid) in a user namespace of its own whose uid 0 is that uid outside
-- (the fixture's userns=),
-- `how.dgram_qlen` runs it in a network namespace whose unix datagram
-- queues hold that many (see
-- S.can_unshare_net), `how.port_range` ("40000 40000") in a network
-- namespace whose loopback is up and whose tcp connects take their
-- source port from that range (see S.can_unshare_ports), `how.pidns` in
-- a pid namespace of its own (see S.can_unshare_pid), `how.preload` (a library of the fixtures', such as
-- "procfault.so") preloaded into it, after the sanitizers' runtime.
-- Returns its output (stderr goes with stdout), then what closing the pipe
-- returns (ok, "exit"|"signal", code).
function S.run_child(how, name, ...)
  local path = name:find("/", 1, true) and name or S.spec_dir .. "/child/" .. name .. ".lua"
  assert(io.open(path), "no child program " .. path):close()
  if how.as then
    local copy = S.tmpname("child") .. ".lua"
    assert(os.execute(string.format("cp '%s' '%s' && chmod 644 '%s'", path, copy, copy)))
    path = copy
  end
  local words = { shell_quote(path) }
  for i = 1, select("#", ...) do words[#words + 1] = shell_quote((select(i, ...))) end
  -- the reachable copy of the fixture, which nobody may run
  local env = { "APPSTART_SPEC_FIXTURE=" .. shell_quote(S.fixture) }
  for k, v in pairs(how.env or {}) do env[#env + 1] = k .. "=" .. shell_quote(v) end
  table.sort(env)
  local shell = (how.nofile and ("ulimit " .. (how.soft_only and "-S " or "") .. "-n " .. how.nofile .. "; ") or "")
    .. (how.fsize and ("ulimit -f " .. how.fsize .. "; ") or "")
    .. S.san_prefix
    .. (how.preload and ("export LD_PRELOAD=\"${LD_PRELOAD:+$LD_PRELOAD }\"" .. shell_quote(S.fixtures .. "/"
      .. how.preload) .. "; ") or "")
    .. (#env > 0 and ("export " .. table.concat(env, " ") .. "; ") or "")
    -- (ignored by the fixture, which execs the Lua: a shell's trap '' CHLD
    -- is not SIG_IGN)
    -- (in a cgroup of the test's, then a user namespace of its own)
    .. (how.cgroup and not how.as and ("echo $$ > " .. shell_quote(how.cgroup .. "/cgroup.procs") .. "; ") or "")
    .. (how.ignore and ("exec " .. shell_quote(S.fixture) .. " ignore=" .. how.ignore .. " exec lua5.4 \"$0\" \"$@\"")
      or how.userns and ("exec " .. shell_quote(S.fixture) .. " userns=" .. how.userns .. " exec lua5.4 \"$0\" \"$@\"")
      or how.no_path and 'lua=$(command -v lua5.4); unset PATH; exec "$lua" "$0" "$@"' or 'exec lua5.4 "$0" "$@"')
  local command = "sh -c " .. shell_quote(shell) .. " " .. table.concat(words, " ")
  if how.as then
    command = string.format("setpriv --reuid=%s --regid=%s %s %s", how.as, how.as_group,
      how.as_groups and "--groups=" .. how.as_groups or "--clear-groups", command)
    -- (a user may move itself into a cgroup only where it may write the
    -- cgroup.procs of the one above both: root moves it)
    if how.cgroup then
      command = "sh -c " .. shell_quote("echo $$ > " .. shell_quote(how.cgroup .. "/cgroup.procs") .. ' && exec "$@"')
        .. " sh " .. command
    end
    -- under make sanitize: the leak checker's suppressions, where that
    -- user can read them
    if os.getenv("LSAN_OPTIONS") then
      local supp = S.tmpdir .. "/lsan.supp"
      assert(os.execute(string.format("cp '%s/lsan.supp' '%s' && chmod 644 '%s'", S.spec_dir, supp, supp)))
      command = "env LSAN_OPTIONS=" .. shell_quote("suppressions=" .. supp .. ":print_suppressions=0") .. " " .. command
    end
  end
  local binds = {}
  for _, file in ipairs { "hosts", "passwd" } do
    if how[file] then binds[#binds + 1] = "mount --bind " .. shell_quote(how[file]) .. " /etc/" .. file end
  end
  if #binds > 0 then
    command = "unshare --mount sh -c " .. shell_quote(table.concat(binds, " && ") .. " && exec " .. command)
  elseif how.own_mounts then
    command = "unshare --mount " .. command
  end
  if how.timeout then
    -- a child that would hang (a regression that blocks in a system call,
    -- which no hook can interrupt) is killed: its output tells
    command = "timeout -s KILL " .. how.timeout .. " " .. command
  end
  if how.dgram_qlen then
    -- a network namespace of its own, whose unix datagram queues hold
    -- dgram_qlen (systemd's default, 512, against a host's 10, say)
    command = "unshare -n sh -c " .. shell_quote("echo " .. how.dgram_qlen
      .. " > /proc/sys/net/unix/max_dgram_qlen && exec " .. command)
  end
  if how.port_range then
    -- a network namespace of its own, loopback up, where a connect picks
    -- its source port from port_range alone (a port bound there by anyone
    -- is taken: one is enough to run out)
    command = "unshare -n sh -c " .. shell_quote("ip link set lo up && echo " .. shell_quote(how.port_range)
      .. " > /proc/sys/net/ipv4/ip_local_port_range && exec " .. command)
  end
  if how.pidns then
    -- a pid namespace of its own, where pids come in order and
    -- /proc/sys/kernel/ns_last_pid sets the next one (sh stays its pid 1:
    -- what is left in it dies with it)
    command = "unshare --pid --fork --mount-proc sh -c " .. shell_quote(command .. "; exit $?")
  end
  if how.tty then
    command = "script -qec " .. shell_quote(command) .. " /dev/null </dev/null"
  end
  if how.background then
    assert(os.execute(command .. " >/dev/null 2>&1 &"))
    return nil
  end
  local p = assert(io.popen(command .. " 2>&1"))
  local text = p:read("a")
  return text, p:close()
end

--- Can a child have a mount namespace of its own and bind-mount a file
-- there (root, unshare(1) and mount(8) allowed here)? For
-- S.run_child's `hosts`.
function S.can_unshare()
  return os.execute("unshare --mount sh -c 'mount --bind /etc/hosts /etc/hosts' >/dev/null 2>&1") == true
end

--- Can a child have a network namespace of its own and set its unix
-- datagram queue length there (S.run_child's `dgram_qlen`)?
function S.can_unshare_net()
  return os.execute("unshare -n sh -c 'echo 512 > /proc/sys/net/unix/max_dgram_qlen' >/dev/null 2>&1") == true
end

--- Can a child have a network namespace of its own, its loopback up
-- and its ephemeral port range set (S.run_child's `port_range`)?
function S.can_unshare_ports()
  return os.execute("unshare -n sh -c 'ip link set lo up && echo \"40000 40000\" "
    .. "> /proc/sys/net/ipv4/ip_local_port_range' >/dev/null 2>&1") == true
end

--- Can a child have a pid namespace of its own and choose its next pid
-- there (S.run_child's `pidns`)?
function S.can_unshare_pid()
  return os.execute("unshare --pid --fork --mount-proc sh -c "
    .. "'echo 100 >/proc/sys/kernel/ns_last_pid' >/dev/null 2>&1") == true
end


return S
