--- Run by spec/forks_spec.lua, in
-- test_without_proc_a_pid_to_check_fails_at_once_saying_why (as root, in a
-- mount namespace of its own): unmounts /proc there, then starts a plain
-- notify app (no pid to check: ready), 50 apps that exit before they are
-- ready ("exits\tCODE=N,..."), one that closes its ready channel and runs
-- on ("closed\tCODE\tSECONDS"), a forking daemon, whose pid
-- (from its pid file) cannot be checked, and an app probed on a unix
-- socket (connected to through /proc/self/fd). Prints "plain\tready" (or
-- the error), then "forks\tCODE\tSECONDS\tMESSAGE" and the same for
-- "unix", and "all\tCODE\tLOG" for a notify app whose child's READY=1
-- notify_access = "all" cannot admit there; ends the daemon it left
-- (never proven: nothing of appstart's signals it) and mounts /proc again
-- (the sanitizers' runtime reads it at the end).
-- Argument: a directory for the pid file.
local appstart = require "appstart"
local K = require "childkit"

local F, dir = K.fixture(), arg[1]
assert(os.execute("umount -l /proc"), "umount /proc")
local app, err = appstart.start { argv = { F, "notify=READY=1", "pause" }, log = K.quiet }
print("plain", app and "ready" or err.code .. "\t" .. err.message)
if app then app:terminate() end
-- an app that exits before it is ready: died, whether its ready channel
-- closed first or its end came first (the closed channel, with no /proc
-- to tell an exiting app, was taken for ready_closed)
local codes = {}
for _ = 1, 50 do
  local _, e = appstart.start { argv = { F, "exit=3" }, ready = "fd", log = K.quiet }
  codes[e.code] = (codes[e.code] or 0) + 1
end
local seen = {}
for code, n in pairs(codes) do seen[#seen + 1] = code .. "=" .. n end
table.sort(seen)
print("exits", table.concat(seen, ","))
-- an app that closes its ready channel and runs on: ready_closed, soon
-- (a moment for its end, which comes with an exit, then the close is
-- taken for what it is; it waited for ready_timeout, then said timeout)
local t0 = require("appstart.core").now()
local _, closed = appstart.start { argv = { F, "close=3", "pause" }, ready = "fd", ready_timeout = 10, log = K.quiet }
print("closed", closed.code, string.format("%.3f", require("appstart.core").now() - t0))
local pid_file = dir .. "/daemon.pid"
local t = require("appstart.core").now()
app, err = appstart.start { argv = { F, "fork", "pidfile=" .. pid_file, "pause", "|", "exit=0" },
  ready = { forks = true, pid_file = pid_file }, ready_timeout = 10, log = K.quiet }
print("forks", app and "ready" or err.code, string.format("%.3f", require("appstart.core").now() - t),
  err and err.message or "")
if app then app:terminate() end
local daemon = K.read(pid_file)
if daemon then os.execute("kill -KILL " .. daemon:match("%d+")) end
local sock = dir .. "/probe.sock"
t = require("appstart.core").now()
app, err = appstart.start { argv = { F, "listen=unix:" .. sock, "pause" }, ready = { connect = "unix:" .. sock },
  ready_timeout = 10, kill_grace = 1, log = K.quiet }
print("unix", app and "ready" or err.code, string.format("%.3f", require("appstart.core").now() - t),
  err and err.message or "")
if app then app:terminate() end
-- notify_access = "all": the READY=1 of the app's child is refused, its
-- descent unproven, and the log line says why (it named the option alone)
local said = {}
_, err = appstart.start { argv = { F, "fork", "notify=READY=1", "|", "pause" }, notify_access = "all",
  ready_timeout = 1, kill_grace = 1, log = function(_, message) said[#said + 1] = message end }
print("all", err and err.code or "ready", (table.concat(said, " / "):gsub("\n", " ")))
assert(os.execute("mount -t proc proc /proc"), "mount /proc")
