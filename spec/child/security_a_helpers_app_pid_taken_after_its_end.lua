--- Run by spec/security_spec.lua (test_a_process_that_takes_an_ended_
-- helper_apps_pid_is_not_reaped_as_the_app) in a pid namespace of its
-- own, as `... MODE PIDFD`: a helper (sh) reports its app and, once the
-- app is proven and has exited, reaps it, so that its pid is free, and
-- makes the next process take it (ns_last_pid); then it execs a fixture
-- that waits for a file and exits. The process that takes the pid is a
-- zombie of this process's by the time the helper exits: with MODE
-- "app", another app of this launcher's, which exits 5 once its start
-- has returned; with "group", the same of kill_mode "group" whose child
-- (in its group) runs on: the leader's zombie is held, so that the
-- group's number stays its own; with "orphan", the helper's own child,
-- which exits 42 (orphaned to this launcher, a child subreaper during
-- the start). PIDFD "nopidfd" forces the fallback without pidfds.
-- Prints "app\tPID" (the helper's app), "taker\tPID",
-- "result\tCODE\tSTATUS" (the start's, its status as code=N, signal=N or
-- "unknown"); with "group", "held\tSTATE" (the taker's state letter as
-- the start has failed, or "gone"); with "app" or "group", "other\tSTATUS"
-- (the other app's end, from its own wait or terminate); and
-- "left\tPIDS" (this process's children left at the end).
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local testing = require "appstart.testing"
local core = require "appstart.core"
local K = require "childkit"
local F = K.fixture()

local mode, pidfd = arg[1], arg[2]
if pidfd == "nopidfd" then testing.use_pidfd(false) end
local dir = os.getenv("D")
local function touch(path) assert(io.open(path, "w")):close() end
local function status_text(st)
  if not st then return "none" end
  return st.code and "code=" .. st.code or st.signal and "signal=" .. st.signal or "unknown"
end

-- the app waits for "die" (touched once its pid is known); the helper
-- reaps it, names the next pid (no fork after that: a builtin echo, then
-- exec), and waits for "go"
local after = mode == "orphan" and '"$0" fork exit=42 "|" waitfile="$1/go" exit=0'
  or '"$0" waitfile="$1/go" exit=0'
local helper = '"$0" waitfile="$1/die" exit=7 & a=$!; echo $a >&3; wait $a; '
  .. 'echo $((a - 1)) > /proc/sys/kernel/ns_last_pid; echo $a > "$1/reaped"; exec ' .. after
local reported
local h = appstart.begin { helper = { "sh", "-c", helper, F, dir }, argv = { "pause" }, pid_format = "line",
  ready = "notify", ready_timeout = 10, log = function(_, message)
    reported = reported or tonumber(message:match("helper reported pid (%d+)"))
  end }
local deadline = core.now() + 10
local function await(what, f)
  while not f() do
    assert(core.now() < deadline, "never " .. what)
    h:step()
    core.wait_readable(-1, 0.01)
  end
end
-- Without pidfds the app is told from what takes its number by its
-- start time, in clock ticks (/proc/PID/stat, on /proc/uptime's clock): a
-- process begun in the same tick cannot be told from it (the fallback's
-- limit), so there the app exits once the clock has passed that tick.
-- With pidfds it exits as soon as its pid is known.
local function ticks()
  local sec, cs = K.read("/proc/uptime"):match("^(%d+)%.(%d%d)")
  return tonumber(sec) * 100 + tonumber(cs)
end
local function start_time(pid)
  return tonumber(K.read("/proc/" .. pid .. "/stat"):match("%) %a" .. (" %S+"):rep(18) .. " (%d+)"))
end
local app, dying
await("reaped", function()
  if reported and not dying and (pidfd ~= "nopidfd" or ticks() > start_time(reported)) then
    dying = true
    touch(dir .. "/die")
  end
  app = tonumber(K.read(dir .. "/reaped"))
  return app
end)
print("app", app)
local other
if mode == "orphan" then
  print("taker", app)
else
  -- (it exits once its start has returned: not seen ending by the start)
  local exits = { "waitfile=" .. dir .. "/end", "exit=5" }
  -- (the group's member ignores the SIGTERM that the leader's end sends
  -- it, and no SIGKILL comes before the end: the group lives on, its
  -- leader's zombie held)
  local argv = mode == "group" and { F, "fork", "ignore=TERM", "pause", "|", table.unpack(exits) }
    or { F, table.unpack(exits) }
  other = assert(appstart.start { argv = argv, ready = "none", kill_mode = mode == "group" and "group" or nil,
    kill_grace = 60, log = K.quiet })
  print("taker", other.pid)
  touch(dir .. "/end")
end
-- the taker has exited: a zombie (the orphan the helper's until it exits)
await("a zombie", function() return K.state(app) == "Z" end)
touch(dir .. "/go")
local ok, err = h:wait()
print("result", ok and "ready" or err.code, status_text(err and err.status))
if mode == "group" then
  print("held", K.state(app) or "gone")
  print("other", status_text(other:terminate(0)))
elseif other then
  print("other", status_text(other:wait(3)))
end
-- (what a stop killed, or the launcher adopted, may be reaped by a later
-- call that waits)
deadline = core.now() + 5
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
print("left", K.children_text())
