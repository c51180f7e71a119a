--- Run by spec/layout_spec.lua, in
-- test_a_target_descriptor_at_or_near_the_limit_fails_as_spawn_never_as_exit_127
-- (a descriptor limit of 64): with exec failures reported through memory
-- ("auto") and then through the pipe, for each target number (ready_fd
-- alone, then pid_fd of a helper), starts an app. Prints one line each,
-- tab-separated: "REPORT:WHICH", the number, the outcome ("started",
-- "CODE:ERRNO[:STATUS]" or "raised:ERROR"), "same" or "changed" (the
-- launcher's descriptors after) and "[PIDS]" (its children).
-- No arguments.
local appstart = require "appstart"
local testing = require "appstart.testing"
local K = require "childkit"

local F = K.fixture()
local base = { ready = "fd", log = function() end, ready_timeout = 3, kill_grace = 0.2 }
for _, report in ipairs { "auto", "pipe" } do
  testing.exec_report(report) -- both ways an exec failure comes back
  for _, which in ipairs { "ready_fd", "pid_fd" } do
    for _, fd in ipairs { 40, 60, 61, 62, 63, 64, 100, 1023 } do
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      if which == "ready_fd" then
        o.argv, o.ready_fd = { F, "line=" .. fd .. ":x", "pause" }, fd
      else
        o.helper = { F, "fork", "line=3:x", "pause", "|", "int32=" .. fd .. ":child", "exit=0" }
        o.argv, o.pid_fd, o.ready_fd, o.pid_timeout = { "pause" }, fd, 3, 3
      end
      collectgarbage()
      local before = table.concat(testing.fds(), ",")
      local ok, app, err = pcall(appstart.start, o)
      local outcome
      if not ok then outcome = "raised:" .. tostring(app):gsub("%s", "_")
      elseif app then outcome = "started"; app:terminate()
      else
        outcome = err.code .. ":" .. tostring(err.errno)
        if err.status then outcome = outcome .. ":" .. tostring(err.status.code or err.status.signal) end
      end
      testing.reap()
      local same = table.concat(testing.fds(), ",") == before
      print(report .. ":" .. which, fd, outcome, same and "same" or "changed", "[" .. K.children_text() .. "]")
    end
  end
end
