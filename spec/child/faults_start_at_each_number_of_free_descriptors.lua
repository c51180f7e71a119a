--- Run by spec/faults_spec.lua, in
-- test_descriptor_limit_fails_spawn_with_EMFILE_and_leaks_nothing (a
-- descriptor limit of 16): for each number of free descriptors k from 0
-- up, fills the table, frees k and starts an app (without, then with a
-- helper) until one starts. Prints one line each, tab-separated: mode
-- ("plain" or "helper"), k, the outcome ("started", "CODE:ERRNO" or
-- "raised:ERROR"), "same" or "changed" (the launcher's descriptors after)
-- and "[PIDS]" (its children). No arguments.
local appstart = require "appstart"
local testing = require "appstart.testing"
local K = require "childkit"

local F = K.fixture()
local function opts(mode)
  local o = { ready = "fd", log = function() end, ready_timeout = 3, kill_grace = 0.2 }
  if mode == "helper" then
    o.pid_timeout = 3
    o.helper = { F, "fork", "line=4:x", "pause", "|", "int32=3:child", "exit=0" }
    o.argv = { "pause" }
  else
    o.argv = { F, "line=3:x", "pause" }
  end
  return o
end
for _, mode in ipairs { "plain", "helper" } do
  for k = 0, 12 do
    collectgarbage()
    local before = table.concat(testing.fds(), ",")
    local fillers = K.take_all_descriptors()
    if k > #fillers then
      for _, f in ipairs(fillers) do f:close() end
      break
    end
    for _ = 1, k do table.remove(fillers):close() end
    local ok, app, err = pcall(appstart.start, opts(mode))
    for _, f in ipairs(fillers) do f:close() end
    local outcome
    if not ok then outcome = "raised:" .. tostring(app):gsub("%s", "_")
    elseif app then outcome = "started"; app:terminate()
    else outcome = err.code .. ":" .. tostring(err.errno) end
    testing.reap()
    local same = table.concat(testing.fds(), ",") == before
    print(mode, k, outcome, same and "same" or "changed", "[" .. K.children_text() .. "]")
    io.stdout:flush()
    if outcome == "started" then break end
  end
end
