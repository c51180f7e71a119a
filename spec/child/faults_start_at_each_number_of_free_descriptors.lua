--- Run by spec/faults_spec.lua, in
-- test_descriptor_limit_fails_spawn_with_EMFILE_and_leaks_nothing (a
-- descriptor limit of 16, XDG_RUNTIME_DIR a directory of its own): for
-- each number of free descriptors k from 0 up, fills the table, frees k
-- and starts an app (plain, through a helper, kill_mode "group", ready =
-- "notify") until one starts. Prints one line each, tab-separated: mode
-- ("plain", "helper", "group" or "notify"), k, the outcome ("started",
-- "CODE:ERRNO" or "raised:ERROR"), "same" or "changed" (the launcher's
-- descriptors after), "[PIDS]" (its children) and how many entries
-- XDG_RUNTIME_DIR holds (a notify socket's directory left behind). No
-- arguments.
local testing = require "appstart.testing"
local K = require "childkit"

local F = K.fixture()
local RUNTIME = assert(os.getenv("XDG_RUNTIME_DIR"))
local function opts(mode)
  local o = { ready = "fd", log = function() end, ready_timeout = 3, kill_grace = 0.2 }
  if mode == "helper" then
    o.pid_timeout = 3
    o.helper = { F, "fork", "line=4:x", "pause", "|", "int32=3:child", "exit=0" }
    o.argv = { "pause" }
  elseif mode == "notify" then
    o.ready, o.argv = "notify", { F, "notify=READY=1", "pause" }
  else
    o.argv = { F, "line=3:x", "pause" }
    if mode == "group" then o.kill_mode = "group" end
  end
  return o
end
local function entries(dir)
  local p = io.popen("ls -A " .. dir)
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
for _, mode in ipairs { "plain", "helper", "group", "notify" } do
  for k = 0, 12 do
    collectgarbage()
    local before = table.concat(testing.fds(), ",")
    local outcome = K.start_with_free_descriptors(k, opts(mode))
    if not outcome then break end
    local same = table.concat(testing.fds(), ",") == before
    print(mode, k, outcome, same and "same" or "changed", "[" .. K.children_text() .. "]", entries(RUNTIME))
    io.stdout:flush()
    if outcome == "started" then break end
  end
end
