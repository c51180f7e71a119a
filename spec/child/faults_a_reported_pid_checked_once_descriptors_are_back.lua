--- Run by spec/faults_spec.lua, in
-- test_a_reported_pid_is_checked_again_once_descriptors_are_back: a start
-- through a helper (the fixture forks the app, reports its pid, writes
-- DIR/reported and exits; the app says ready once DIR/go exists). Once the
-- pid is reported every descriptor is taken, so the step that reads it
-- cannot check it (no pidfd, no /proc): the start must wait, not fail.
-- Given back, the next steps check the pid and the start is ready.
-- Prints "stepped", whether the start was done and its error's code
-- ("none" while it is under way);
-- "ready", the app's pid and the pid the app wrote (DIR/app); "left",
-- whether its descriptors are as they were and its children; for a start
-- abandoned with its pid read and not checked, no descriptor free,
-- "abandoned" (whether that call ended it, whether a step after it did,
-- whether the app is still running), "cancelled" (once descriptors are
-- back: what it returned, its code, its pid and the signal its app ended
-- by), "grace" (the seconds that took, what the app's TERM trap wrote)
-- and "left3"; "given up" for one whose descriptors never come back
-- (the seconds from the abandon to its end, whether the app runs on, the
-- code); then, for a
-- second start whose descriptors stay taken past pid_timeout (its app
-- writes DIR/app2), "unchecked", what the start returned, its code and
-- message.
-- Arguments: DIR, a directory of the test's own.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]
local fds = K.fds()

local h = appstart.begin { helper = { F, "fork", "pidfile=" .. DIR .. "/app", "waitfile=" .. DIR .. "/go", "line=4:x",
  "pause", "|", "int32=3:child", "pidfile=" .. DIR .. "/reported", "exit=0" }, argv = { "pause" }, ready = "fd",
  pid_timeout = 10, ready_timeout = 10, log = K.quiet }
K.await_path(DIR .. "/reported")
local fillers = K.take_all_descriptors()
local done = h:step()
for _, f in ipairs(fillers) do f:close() end
K.out("stepped", tostring(done), h.err and h.err.code or "none")
assert(io.open(DIR .. "/go", "w")):close()
local app, err = h:wait()
K.out("ready", app and app.pid or tostring(err), tonumber(K.read(DIR .. "/app")))
if app then app:terminate(5) end
local deadline = core.now() + 5
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
K.out("left", tostring(K.fds() == fds), K.children_text())
-- A start abandoned once its pid has been read and could not be checked
-- (DIR/app3, kill_grace 1.5 s): every descriptor taken, and taken again
-- after each call (a descriptor freed then, the pid channel's or the
-- helper's pidfd, is one: a check needs two), for 1 s. The stop checks
-- the pid at each look; once the descriptors are given back, it proves
-- it and sends the app SIGTERM (which it notes in DIR/term-app3, and goes
-- on), and SIGKILL a whole kill_grace later.
local function alive(pid)
  local stat = K.read("/proc/" .. pid .. "/stat")
  return stat ~= nil and not stat:match("^%d+ %b() [ZX]")
end
-- Until the helper has exited (every child of the launcher's but the
-- apps, which the launcher adopts, a zombie): the step that reads its pid
-- closes the pid channel then (a helper that has exited writes no more
-- there), and what that frees is taken again after that step.
local function await_helper_exit(...)
  local apps = {}
  for _, pid in ipairs { ... } do apps[pid] = true end
  local until_ = core.now() + 5
  repeat
    local running = false
    for _, pid in ipairs(K.children()) do
      if not apps[pid] and K.state(pid) ~= "Z" then running = true end
    end
    if not running then return end
    core.wait_readable(-1, 0.002)
  until core.now() > until_
  error("the helper did not exit")
end
local function start3(name, trap, grace)
  local start = appstart.begin { helper = { F, "fork", "pidfile=" .. DIR .. "/" .. name, trap, "pause", "|",
    "waitfile=" .. DIR .. "/report-" .. name, "int32=3:child", "pidfile=" .. DIR .. "/reported-" .. name, "exit=0" },
    argv = { "pause" }, ready = "fd", pid_timeout = 10, ready_timeout = 10, kill_grace = grace, log = K.quiet,
    stdout = "null", stderr = "null" }
  K.await_path(DIR .. "/" .. name)
  start:step()
  assert(io.open(DIR .. "/report-" .. name, "w")):close()
  K.await_path(DIR .. "/reported-" .. name)
  local pid = tonumber(K.read(DIR .. "/" .. name))
  await_helper_exit(pid)
  local held = K.take_all_descriptors()
  start:step() -- the pid read, not checked
  local function take_again()
    for _, f in ipairs(K.take_all_descriptors()) do held[#held + 1] = f end
  end
  take_again()
  return start, pid, held, take_again
end
local app3, held, take_again
h, app3, held, take_again = start3("app3", "trap=TERM:" .. DIR .. "/term-app3", 1.5)
local t0 = core.now()
done = h:abandon()
take_again()
local stepped = h:step()
take_again()
while core.now() - t0 < 1 do
  core.wait_readable(-1, 0.02)
  stepped = h:step() or stepped
  take_again()
end
for _, f in ipairs(held) do f:close() end
-- (looked at once descriptors are back: reading /proc takes one)
K.out("abandoned", tostring(done), tostring(stepped), tostring(alive(app3)))
local t1 = core.now()
app, err = h:wait()
K.out("cancelled", tostring(app), err and err.code, err and err.pid, err and err.status and err.status.signal)
K.out("grace", string.format("%.1f", core.now() - t1), tostring(K.read(DIR .. "/term-app3")))
deadline = core.now() + 5
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
K.out("left3", tostring(K.fds() == fds), K.children_text())
-- The same with descriptors that never come back (DIR/app4): the stop
-- holds for the pid only until its SIGKILL (after kill_grace, 1 s), which
-- has nothing to reach; it ends then, nothing signalled, the app running
-- on (the test ends it).
local app4
h, app4, held, take_again = start3("app4", "sleep=0", 1)
t0 = core.now()
done = h:abandon()
while not done do
  take_again()
  core.wait_readable(-1, 0.02)
  done = h:step()
end
local took = core.now() - t0
for _, f in ipairs(held) do f:close() end
K.out("given up", string.format("%.1f", took), tostring(alive(app4)), h.err.code)
-- the same, the descriptors kept until pid_timeout has passed: the start
-- fails, saying why (its stop checks the pid again, and ends the app if
-- a descriptor is free by then; else the app, not proven, runs on: the
-- test ends it; its output goes nowhere, so that it does not hold the
-- test's pipe open). The helper reports only once told (DIR/report2),
-- after a first step has read the exec's verdict (where that comes on a
-- pipe, its end freed a descriptor the check could have used).
h = appstart.begin { helper = { F, "fork", "pidfile=" .. DIR .. "/app2", "pause", "|", "waitfile=" .. DIR .. "/report2",
  "int32=3:child", "pidfile=" .. DIR .. "/reported2", "exit=0" }, argv = { "pause" }, ready = "fd",
  pid_timeout = 0.5, ready_timeout = 10, log = K.quiet, stdout = "null", stderr = "null" }
K.await_path(DIR .. "/app2")
h:step()
assert(io.open(DIR .. "/report2", "w")):close()
K.await_path(DIR .. "/reported2")
await_helper_exit(tonumber(K.read(DIR .. "/app2")), app4)
fillers = K.take_all_descriptors()
app, err = h:wait()
for _, f in ipairs(fillers) do f:close() end
K.out("unchecked", tostring(app), err and err.code, err and err.message)
