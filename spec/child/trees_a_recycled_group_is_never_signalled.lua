--- Run by spec/trees_spec.lua (test_a_group_recycled_after_the_app_is_
-- never_signalled) in a pid namespace of its own: a kill_mode "group" app
-- ends, leaving a member that ignores SIGTERM; the member exits by itself
-- before its kill_grace is over. An unrelated tree then takes the app's
-- pid (ns_last_pid) as the leader of a session (and group) of its own,
-- with a child: the group number the launcher sweeps is the new one's
-- now. Prints "recycled\tPID" (the pid the unrelated tree got, the app's
-- if it took it), "child alive\tyes" (or "no") after the calls that wait
-- have looked at the old group.
-- The app's pid is reaped at its end, as where the launcher does not hold
-- it (a main moved by MAINPID=, a leader another reaps): held, as it is
-- by default, no other process can take its number while what it left is
-- seen to.
-- Environment: D, an empty directory for the scripts' files.
local appstart = require "appstart"
local K = require "childkit"

require("appstart.testing").hold_leaders(false)

local dir = os.getenv("D")
local F = os.getenv("APPSTART_SPEC_FIXTURE")
local function read(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end
local function write(p, text) local f = assert(io.open(p, "w")) f:write(text) f:close() end

-- (start times tell a recycled number to the clock tick, 10 ms, as the
-- README says: one given out again within the tick of the app's start
-- passes, and the test failed when all this took less)
local started = require("appstart.core").now()
local app = assert(appstart.start { argv = { F, "fork", "ignore=TERM", "pidfile=" .. dir .. "/member",
  "waitfile=" .. dir .. "/go", "|", "notify=READY=1", "waitfile=" .. dir .. "/member", "exit=0" },
  kill_mode = "group", kill_grace = 0.2, log = function() end })
local pgid = app.pid
assert(app:wait(5))
-- the member (SIGTERM ignored) exits by itself, and init (the shell) reaps
-- it; nothing of appstart's runs meanwhile (no call that waits)
local member = tonumber(read(dir .. "/member"))
write(dir .. "/go", "")
while os.execute("test -e /proc/" .. member) do os.execute("sleep 0.01") end
while require("appstart.core").now() - started < 0.03 do os.execute("sleep 0.01") end
-- (the process that gets the pid leads a session of its own: setsid(1)
-- calls setsid() in place in a process that leads no group)
write(dir .. "/taker.sh", K.SH_TAKE_PID .. [=[
  export TAKE='exec setsid sh -c "echo \$\$ > \"\$0/leader\"; sleep 1000 & echo \$! > \"\$0/child\"; wait" "$1"'
  take_pid "$2" take "$1"
]=])
os.execute("sh " .. dir .. "/taker.sh " .. dir .. " " .. pgid .. " &")
while not os.execute("test -s " .. dir .. "/child") do os.execute("sleep 0.01") end
local leader, child = tonumber(read(dir .. "/leader") or ""), tonumber(read(dir .. "/child") or "")
print("app", pgid)
print("recycled", leader)
-- past the old group's kill_grace: a SIGKILL is due to what is left in it
os.execute("sleep 0.3")
-- the calls that wait look at the old group
for _ = 1, 5 do appstart.sleep(0.1) end
print("child alive", child and os.execute("kill -0 " .. child .. " 2>/dev/null") and "yes" or "no")
os.execute("kill " .. (leader or "") .. " " .. (child or "") .. " 2>/dev/null")
app:close()
