--- Run by spec/probes_spec.lua, in
-- test_a_connect_with_no_local_port_free_is_a_try_that_failed, in a
-- network namespace of its own (loopback up) whose ephemeral port range is
-- the one port 40000. An app holds that port (it listens on it), so no tcp
-- connect can take a source port (connect's EADDRNOTAVAIL). Prints
-- "connect\tR\tWHY" (what core.connect answers then), "held\tCODE\tMESSAGE"
-- (a start probed at a port its app listens on, ready_timeout 0.5), then,
-- the holder terminated, "freed\tSIGNAL" (the same start ready, its app
-- terminated) or "freed-failed\tCODE\tMESSAGE"; then, IPv6 turned off on
-- the loopback, "v6-off\tCODE\tMESSAGE\tWHEN" (a start probed at ::1:
-- failed "at once" or "at the timeout"; "v6-off\tskip" without IPv6);
-- then "left\tPIDS" (the children left). No arguments.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local function quiet() end
local function probed(timeout)
  return appstart.start { argv = { F, "listen=tcp:5000", "pause" }, ready = { connect = "tcp:127.0.0.1:5000" },
    ready_timeout = timeout, kill_grace = 1, log = quiet }
end

local holder = assert(appstart.start { argv = { F, "listen=tcp:40000", "line=3:held", "pause" }, ready = "fd",
  log = quiet })
local r, why = core.connect("tcp", "127.0.0.1", 5000)
print("connect", tostring(r), tostring(why))
local app, err = probed(0.5)
if app then
  print("held", "ready", app:terminate().signal)
else
  print("held", err.code, err.message)
end
holder:terminate()
app, err = probed(10)
if app then
  print("freed", app:terminate().signal)
else
  print("freed-failed", err.code, err.message)
end
-- IPv6 off on the loopback: no source address for ::1, for good (connect's
-- EADDRNOTAVAIL too): no try that failed, the start fails at once
local v6 = io.open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w")
if not v6 then
  print("v6-off", "skip")
else
  v6:write("1\n")
  v6:close()
  local t0 = core.now()
  app, err = appstart.start { argv = { F, "pause" }, ready = { connect = "tcp:[::1]:5000" }, ready_timeout = 5,
    kill_grace = 1, log = quiet }
  local took = core.now() - t0
  print("v6-off", app and "ready" or err.code, app and "" or err.message, took < 2.5 and "at once" or "at the timeout")
  if app then app:terminate() end
end
print("left", K.children_text())
