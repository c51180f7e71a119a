--- Run by spec/faults_spec.lua, in
-- test_readiness_looked_at_out_of_descriptors_waits_for_them: for each of
-- a forking daemon's pid file, a connect probe and an exec probe, a start
-- whose app is where its readiness can be seen (the pid file written, the
-- socket listening, the exec probe's file made) is stepped for 0.3 s with
-- every descriptor taken (taken again after each step), then given them
-- back and waited for. Prints "CASE", whether the start was done while
-- starved and its code then ("none"), and "ready" or the code it ended
-- with; then "left", whether the descriptors are as they were, and the
-- children left. Argument: a directory of the test's own.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local DIR = arg[1]
local fds = K.fds()

local starved = K.step_starved

local pid_file, sock, up = DIR .. "/forks.pid", DIR .. "/sock", DIR .. "/up"
for _, case in ipairs {
  { "forks", pid_file, { ready = { forks = true, pid_file = pid_file },
    argv = { F, "fork", "pidfile=" .. pid_file, "pause", "|", "exit=0" } } },
  { "connect", sock, { ready = { connect = "unix:" .. sock }, argv = { F, "listen=unix:" .. sock, "pause" } } },
  { "exec", up, { ready = { exec = { "test", "-e", up } }, argv = { F, "pidfile=" .. up, "pause" } } },
} do
  local name, marker, opts = case[1], case[2], case[3]
  opts.ready_timeout, opts.log, opts.stdout, opts.stderr = 10, K.quiet, "null", "null"
  local h = appstart.begin(opts)
  K.await_path(marker, true)
  local done, code = starved(h, 0.3)
  local app, err = h:wait()
  K.out(name, tostring(done), code, app and "ready" or err.code)
  if app then app:terminate(5) end
end
K.out("left", tostring(K.fds() == fds), K.children_text())
