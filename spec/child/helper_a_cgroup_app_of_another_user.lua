--- Run by spec/helper_spec.lua, test_an_unprivileged_launcher_ends_a_cgroup_app_of_another_user
-- (as nobody, inside a cgroup delegated to nobody, with APPSTART_HELPER a
-- setuid copy whose policy lets nobody start apps as daemon): apps of
-- daemon's of kill_mode "cgroup", each with a child that appends to a
-- file at SIGTERM and ignores it, ended by app:terminate(0.5). Whose
-- SIGTERM the launcher may not send goes through the helper; what it
-- cannot reach gets the cgroup's cgroup.kill, the launcher's own.
-- Prints, tab-separated:
--   CASE HOW LEFT TERMED   app:terminate's how (or nil and its message),
--                          how.left, whether the child got SIGTERM
--   gone CASE ALIVE        whether the child still ran after it
--   supervised OK STATE LEFT  the same app of a supervisor's whose main
--                          has ended, sv:stop()'s result, the state it
--                          left the service in, its how.left
--   left FDS CHILDREN      descriptors as they were, the children left
-- CASE: "running" (the main runs at the terminate), "main_ended" (the main
-- has exited, its child left in the cgroup).
-- Arguments: DIR (every user may write it), PARENT (the delegated cgroup,
-- as cgroup_parent).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local DIR, PARENT = arg[1], arg[2]
local fds = K.fds()
-- (inside a loop: what a stop posts, a helper's signal not waited for, is
-- seen through before the run returns)
appstart.run(function()
  for _, case in ipairs { "running", "main_ended" } do
    local term, pidfile = DIR .. "/" .. case .. ".term", DIR .. "/" .. case .. ".pid"
    local argv = { F, "fork", "trap=TERM:" .. term, "pidfile=" .. pidfile, "pause", "|",
      "waitfile=" .. pidfile, case == "running" and "pause" or "exit=0" }
    if case == "running" then table.insert(argv, #argv, "notify=READY=1") end
    local app = assert(appstart.start { argv = argv, user = "daemon", kill_mode = "cgroup", cgroup_parent = PARENT,
      ready = case == "running" and "notify" or "none", stdout = "null", stderr = "null",
      ready_timeout = case == "running" and 5 or nil, log = K.quiet })
    K.await(function() return K.read(pidfile) end, "the child's pid file")
    local child = tonumber(K.read(pidfile))
    if case == "main_ended" then
      -- (its end is for the launcher to see: the cgroup holds the child)
      K.await(function() return K.state(app.pid) == nil or K.state(app.pid) == "Z" end, "the main's exit")
    end
    local how, message = app:terminate(0.5)
    K.out(case, tostring(how or nil) .. (how and "" or " " .. tostring(message)), tostring(how and how.left),
      tostring(K.read(term) ~= nil))
    local state = K.state(child)
    K.out("gone", case, tostring(state ~= nil and state ~= "Z"))
    app:close()
  end
  do
    local term, pidfile = DIR .. "/supervised.term", DIR .. "/supervised.pid"
    local sv = appstart.supervisor { log = K.quiet, services = { app = { argv = { F, "fork", "trap=TERM:" .. term,
      "pidfile=" .. pidfile, "pause", "|", "waitfile=" .. pidfile, "exit=0" }, user = "daemon", kill_mode = "cgroup",
      cgroup_parent = PARENT, ready = "none", restart = "no", stdout = "null", stderr = "null", kill_grace = 0.5 } } }
    assert(sv:up())
    K.await(function() return K.read(pidfile) end, "the child's pid file")
    local child = tonumber(K.read(pidfile))
    local main = sv:status("app").pid
    K.await(function() return K.state(main) == nil or K.state(main) == "Z" end, "the main's exit")
    local ok, err = sv:stop("app")
    local st = sv:status("app")
    K.out("supervised", tostring(ok or err), st.state, tostring(st.last and st.last.left))
    local state = K.state(child)
    K.out("gone", "supervised", tostring(state ~= nil and state ~= "Z"))
    sv:down()
  end
end)
-- (the supervised app's child, adopted by the launcher, may still have
-- been on its way out when its cgroup emptied, the app's end: it is
-- reaped by the next call that waits, as what the launcher let go of is)
require("appstart.testing").reap()
collectgarbage()
K.out("left", tostring(K.fds() == fds), K.children_text())
