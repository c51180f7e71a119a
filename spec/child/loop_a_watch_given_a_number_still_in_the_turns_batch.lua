--- Run by spec/loop_spec.lua: in a plain script, apps A and B are killed
-- and their pidfds both readable in one turn's batch. The first on_exit
-- run looks at the other's state (which closes its pidfd) and then
-- watches a third app's pid: the lower numbers taken first, the watch's
-- pidfd has the number just closed. The turn fired that watch, whose
-- descriptor was never readable; its check found the pid alive and it
-- never waited again, so its fn was never told the end. Prints "reused:
-- BOOL", "calls: LIST" (the watch fn's whys, once the third app is
-- killed and waited for), then "children: LIST" and "descriptors:
-- SAME|...".
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local fds0 = K.fds()
local function up() return { F, "line=3:up", "pause" } end
local app3 = assert(appstart.start { argv = up(), ready = "fd", log = K.quiet })
local apps, calls, held = {}, {}, {}
local w, reused = nil, false
local function on_exit(a)
  if w then return end
  local other = apps[1] == a and apps[2] or apps[1]
  local number = other._proc:fd()
  local _ = other.state -- its end seen: its pidfd released and closed
  -- every lower number taken: the watch's pidfd is the one just closed
  while true do
    local d = assert(core.dup(0))
    if d >= number then core.close(d); break end
    held[#held + 1] = d
  end
  w = appstart.watch(app3.pid, function(_, why) calls[#calls + 1] = why end)
  reused = w._proc:fd() == number
end
for i = 1, 2 do
  apps[i] = assert(appstart.start { argv = up(), ready = "fd", on_exit = on_exit, log = K.quiet })
end
apps[1]:kill("KILL")
apps[2]:kill("KILL")
-- both ended (zombies) before the poller is turned again: one batch
for i = 1, 2 do
  while K.state(apps[i].pid) ~= "Z" do core.wait_readable(-1, 0.005) end
end
appstart.sleep(0.05)
K.out("reused:", tostring(reused))
app3:kill("KILL")
app3:wait(5)
local deadline = core.now() + 5
while #calls == 0 and core.now() < deadline do appstart.sleep(0.01) end
K.out("calls:", table.concat(calls, ","))
if w and not w.done then w:stop() end
for i = 1, #held do core.close(held[i]) end
for i = 1, 2 do apps[i]:wait(5) end
apps, app3, w = nil, nil, nil
collectgarbage("collect")
collectgarbage("collect")
K.out("children:", K.children_text())
local fds = K.fds()
K.out("descriptors:", fds == fds0 and "same" or (fds0 .. " -> " .. fds))
