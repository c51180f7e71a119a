--- Run by spec/faults_spec.lua (test_a_start_cancelled_after_its_helper_
-- was_reaped_elsewhere_signals_no_process_that_took_its_pid) in a pid
-- namespace of its own, without pidfds (the fallback): a helper exits at
-- once, reporting nothing, and is reaped by another wait of this process
-- (a waitpid(-1) elsewhere would do the same) before the start is stepped
-- again; a process is made to take its pid (ns_last_pid); then the start
-- is cancelled, which stops what it still takes for its helper. Prints
-- "helper\tPID", "victim\tPID" (the pid the process took), "result\tCODE",
-- then "victim\talive" if that process is still there once the cancel has
-- returned (a SIGTERM sent then reaches it: it says so), else
-- "victim\tgone", and "left\tPIDS" (this process's children left at the
-- end).
-- Environment: D, an empty directory for the script's files.
local appstart = require "appstart"
local testing = require "appstart.testing"
local core = require "appstart.core"
local K = require "childkit"
local F = K.fixture()

testing.use_pidfd(false)
local dir = os.getenv("D")
local function read(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end
local function await(path)
  local deadline, value = core.now() + 10
  repeat
    value = tonumber(read(path))
    if not value then core.wait_readable(-1, 0.01) end
  until value or core.now() > deadline
  return value
end

local spawned
local h = appstart.begin { helper = { F, "exit=0" }, argv = { "pause" }, ready = "none", pid_timeout = 30,
  log = function(_, message) spawned = spawned or tonumber(message:match("spawned pid (%d+)")) end }
assert(spawned, "no spawned pid logged")
-- reaped here, by its pid, as soon as it has exited
local deadline = core.now() + 5
while not testing.reap_zombie(spawned) do
  assert(core.now() < deadline, "the helper never exited")
  core.wait_readable(-1, 0.005)
end
print("helper", spawned)
-- a process takes its pid: a fixture that writes its pid, then waits for
-- SIGTERM (caught from its start: one that comes early is counted) and
-- writes it again, to "got" (a SIGKILL before leaves it silent)
local taker = dir .. "/taker.sh"
local f = assert(io.open(taker, "w"))
f:write(K.SH_TAKE_PID .. [=[
  echo $$ > "$1/taker"
  export TAKE='exec "$2" catch=TERM pidfile="$1/victim" waitsig=TERM pidfile="$1/got"'
  take_pid "$3" victim "$1" "$2"
]=])
f:close()
os.execute("sh " .. taker .. " " .. dir .. " " .. F .. " " .. spawned .. " &")
local victim = await(dir .. "/victim")
print("victim", victim)
h:cancel()
local app, err = h:wait()
print("result", app and "ready" or err.code)
local said = victim and os.execute("kill -TERM " .. victim .. " 2>/dev/null") and await(dir .. "/got")
print("victim", said and said == victim and "alive" or "gone")
-- (the script that made it, this process's child once orphaned, as this
-- process is its children's reaper, ends with it)
local script = tonumber(read(dir .. "/taker"))
deadline = core.now() + 5
while script and not testing.reap_zombie(script) and core.now() < deadline do core.wait_readable(-1, 0.01) end
print("left", K.children_text())
