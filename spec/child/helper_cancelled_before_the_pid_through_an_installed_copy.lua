--- Run by spec/helper_spec.lua, test_a_start_cancelled_before_an_installed_copy_reported_leaves_no_app
-- (as nobody, with APPSTART_HELPER a setuid or file-capabilities copy
-- whose policy lets nobody start apps as daemon): twenty starts as daemon,
-- each cancelled the moment the helper has forked, before it has written
-- the app's pid. Prints "caught N" (how many were cancelled so), "slowest
-- S" (the longest cancel, in seconds) and one line "forked PID" for each
-- app so forked, which must be gone.
-- No arguments.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local DAEMON = core.user("daemon")

local function children_of(pid)
  local f, set = io.open(string.format("/proc/%d/task/%d/children", pid, pid)), {}
  if f then
    for child in f:read("a"):gmatch("%d+") do set[tonumber(child)] = true end
    f:close()
  end
  return set
end

local me, caught, forked, slowest = core.pid(), 0, {}, 0
for _ = 1, 20 do
  local old = children_of(me)
  -- (a cancel waits for the end of what the stop killed, never for its
  -- kill_grace: the app the helper killed, orphaned to the launcher, ends
  -- at once, but no descriptor says so)
  local h = appstart.begin { argv = { F, "pause" }, user = "daemon", ready = "none", stdout = "null",
    stderr = "null", log = K.quiet, kill_grace = 10 }
  local helper
  for pid in pairs(children_of(me)) do
    if not old[pid] then helper = pid end
  end
  local child, deadline = nil, core.now() + 2
  while helper and not child and core.now() < deadline do child = next(children_of(helper)) end
  -- until it runs as daemon (its exec under way), not yet reported
  local dropped = false
  while child and not dropped and core.now() < deadline do
    local f = io.open("/proc/" .. child .. "/status")
    local text = f and f:read("a") or ""
    if f then f:close() end
    dropped = text:match("\nUid:%s+" .. DAEMON .. "%s") ~= nil
    if text == "" then break end
  end
  local t0 = core.now()
  h:cancel()
  slowest = math.max(slowest, core.now() - t0)
  -- (a start done before the cancel, which leaves it alone: its app is
  -- the caller's to end)
  if h.app then assert(h.app:terminate()) end
  if child and dropped then
    caught = caught + 1
    forked[#forked + 1] = child
  end
  -- (one waited out is enough to tell)
  if slowest >= 5 then break end
end
print("caught " .. caught)
print(string.format("slowest %.3f", slowest))
for _, pid in ipairs(forked) do print("forked " .. pid) end
