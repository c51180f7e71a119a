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
-- abandoned with its pid in the channel and no descriptor free,
-- "abandoned" (whether that call ended it), "cancelled" (what it returned,
-- its code, its pid and the signal its app ended by) and "left3"; then, for a
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

local function await(path)
  local deadline = core.now() + 10
  while not K.read(path) do
    assert(core.now() < deadline, path .. " never came")
    core.wait_readable(-1, 0.005)
  end
end

local h = appstart.begin { helper = { F, "fork", "pidfile=" .. DIR .. "/app", "waitfile=" .. DIR .. "/go", "line=4:x",
  "pause", "|", "int32=3:child", "pidfile=" .. DIR .. "/reported", "exit=0" }, argv = { "pause" }, ready = "fd",
  pid_timeout = 10, ready_timeout = 10, log = K.quiet }
await(DIR .. "/reported")
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
-- a start abandoned once its pid is in the channel, every descriptor
-- taken: the stop reads the pid and cannot check it. Given back, the stop
-- checks it and ends the app (SIGTERM) before it is done (DIR/app3).
h = appstart.begin { helper = { F, "fork", "pidfile=" .. DIR .. "/app3", "pause", "|", "waitfile=" .. DIR .. "/report3",
  "int32=3:child", "pidfile=" .. DIR .. "/reported3", "exit=0" }, argv = { "pause" }, ready = "fd",
  pid_timeout = 10, ready_timeout = 10, kill_grace = 5, log = K.quiet, stdout = "null", stderr = "null" }
await(DIR .. "/app3")
h:step()
assert(io.open(DIR .. "/report3", "w")):close()
await(DIR .. "/reported3")
fillers = K.take_all_descriptors()
done = h:abandon()
for _, f in ipairs(fillers) do f:close() end
K.out("abandoned", tostring(done))
app, err = h:wait()
K.out("cancelled", tostring(app), err and err.code, err and err.pid, err and err.status and err.status.signal)
deadline = core.now() + 5
while K.children_text() ~= "" and core.now() < deadline do appstart.sleep(0.01) end
K.out("left3", tostring(K.fds() == fds), K.children_text())
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
await(DIR .. "/app2")
h:step()
assert(io.open(DIR .. "/report2", "w")):close()
await(DIR .. "/reported2")
fillers = K.take_all_descriptors()
app, err = h:wait()
for _, f in ipairs(fillers) do f:close() end
K.out("unchecked", tostring(app), err and err.code, err and err.message)
