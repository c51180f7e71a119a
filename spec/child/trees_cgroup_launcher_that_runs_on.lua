--- Run by spec/trees_spec.lua (test_a_launcher_that_runs_on_removes_what_
-- one_killed_since_left): a launcher that runs on, a process of its own
-- so that PARENT is the first place its sweeps keep (past a few, every
-- start sweeps). Its first start under PARENT finds it clean; then a
-- second launcher (trees_cgroup_launcher_to_kill, which writes its pid to
-- PIDFILE and its app's to APPFILE) starts an app there and is killed
-- with SIGKILL, and that app is killed too. Once its cgroup is empty, a
-- start within the second after the first (where this host was quick
-- enough) and one a second after the first's sweep ended each print how
-- many of the killed launcher's directories are left under PARENT:
-- "within\tN" (or "within\tlate") and "later\tN". Prints "started\tN",
-- the starts that succeeded (3), last; the apps are terminated.
-- Arguments: PARENT PIDFILE APPFILE.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local now = core.now
local PARENT, PIDFILE, APPFILE = arg[1], arg[2], arg[3]
local dir = K.cgroup_mount() .. PARENT
local here = arg[0]:match("^(.*)/[^/]*$") or "."

local function start()
  return appstart.start { argv = { F, "notify=READY=1", "pause" }, ready = "notify", ready_timeout = 5,
    kill_mode = "cgroup", cgroup_parent = PARENT, kill_grace = 0.3, log = K.quiet }
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function pid_in(path)
  K.await_path(path)
  return tonumber(K.read(path):match("%d+"))
end

local function gone(pid)
  local deadline = now() + 10
  while K.state(pid) and K.state(pid) ~= "Z" do
    assert(now() < deadline, "pid " .. pid .. " still runs")
    core.wait_readable(-1, 0.005)
  end
end

-- (the sweep ends between these two: within the second after the first,
-- due a second after the second at the latest)
local sweep_from = now()
local apps = {}
apps[1] = start()
local sweep_to = now()
assert(os.execute("sh -c " .. quote(K.SH_SAN_PRELOAD .. 'exec lua5.4 "$0" "$@"') .. " "
  .. quote(here .. "/trees_cgroup_launcher_to_kill.lua") .. " " .. quote(PIDFILE) .. " " .. quote(APPFILE) .. " "
  .. quote(PARENT) .. " </dev/null >/dev/null 2>&1 &"))
local launcher, orphan = pid_in(PIDFILE), pid_in(APPFILE)
local theirs = "appstart." .. launcher .. "."
local function left()
  local n = 0
  local p = io.popen("ls " .. quote(dir))
  for name in p:lines() do
    if name:sub(1, #theirs) == theirs then n = n + 1 end
  end
  p:close()
  return n
end
os.execute("kill -9 " .. launcher)
gone(launcher)
os.execute("kill -9 " .. orphan)
gone(orphan)
-- (its cgroup says so a moment after it is a zombie)
local p = io.popen("ls -d " .. quote(dir) .. "/" .. theirs .. "*")
local events = p:read("l") .. "/cgroup.events"
p:close()
local deadline = now() + 10
while not (K.read(events) or ""):find("populated 0") do
  assert(now() < deadline, "the killed launcher's cgroup never emptied")
  core.wait_readable(-1, 0.005)
end
apps[2] = start()
local within = now() < sweep_from + 0.95 and left() or "late"
-- (a signal may end a wait early)
while now() < sweep_to + 1.05 do core.wait_readable(-1, sweep_to + 1.05 - now()) end
apps[3] = start()
local later = left()
K.out("within", within)
K.out("later", later)
local started = 0
for i = 1, 3 do
  if apps[i] then
    started = started + 1
    apps[i]:terminate()
  end
end
K.out("started", started)
