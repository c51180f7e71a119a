--- Run by spec/faults_spec.lua, in
-- test_a_ready_message_whose_sender_cannot_be_checked_waits_for_descriptors:
-- for each of the notify and fd protocols, with notify_access "all", a
-- start whose app's child sends the ready message while every descriptor
-- is taken (its descent cannot be read) is stepped for 1 s so, then given
-- them back and waited for. Prints "CASE", whether the start was done
-- while starved, "ready" or the code it ended with, and the log lines
-- that said a message was ignored. Then "waited": the same with two
-- messages (STATUS=, READY=1), the start waited for (h:wait()) with the
-- descriptors taken all along: its code, and "calm", or "spun" when the
-- wait took more than a quarter of its time in CPU (the held message's
-- socket, readable with what is queued behind it, woke it again and
-- again), and "held" when its message says the message was held (it
-- said "no READY=1 came"), else that message, and "forked gone" once
-- what the app forked has been seen to end; twice, the second time with
-- the command's spelling of options (--notify-access=all). Then "left", whether the
-- descriptors are as they were, and the children left.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local fds = K.fds()


for _, case in ipairs {
  { "notify", { ready = "notify", argv = { F, "sleep=0.3", "fork", "notify=READY=1", "pause", "|", "pause" } } },
  { "fd", { ready = "fd", ready_fd = 3, argv = { F, "sleep=0.3", "fork", "line=3:up", "pause", "|", "pause" } } },
} do
  local name, opts = case[1], case[2]
  local ignored = 0
  opts.notify_access, opts.kill_mode, opts.ready_timeout, opts.kill_grace = "all", "group", 5, 2
  opts.log = function(_, message) if message:find("ignored") then ignored = ignored + 1 end end
  local h = appstart.begin(opts)
  local done = K.step_starved(h, 1)
  local app, err = h:wait()
  K.out(name, tostring(done), app and "ready" or err.code, ignored)
  if app then app:terminate() end
end
-- (the second time named as the command names its options)
for _, spelled in ipairs { false, true } do
  local forked = os.tmpname()
  os.remove(forked)
  local h = appstart.begin { ready = "notify", notify_access = "all", kill_mode = "group", ready_timeout = 1,
    kill_grace = 1, log = K.quiet, argv = { F, "sleep=0.3", "fork", "pidfile=" .. forked, "notify=STATUS=x",
      "notify=READY=1", "pause", "|", "pause" } }
  if spelled then
    require("appstart.start").spelling(h, function(field, value) return "--" .. field:gsub("_", "-") .. "=" .. value end)
  end
  local held = K.take_all_descriptors()
  local cpu0, t0 = os.clock(), require("appstart.core").now()
  local app, err = h:wait()
  local cpu, took = os.clock() - cpu0, require("appstart.core").now() - t0
  for _, f in ipairs(held) do f:close() end
  -- what its message says it waited for: the message held, not "no READY=1 came"
  local said = app and "" or err.message:match("^app not ready within 1 s: a message from pid %d+ %("
    .. (spelled and "%-%-notify%-access=all" or "notify_access = \"all\"") .. " may admit it%) was held unread, and"
    .. " what came after it, since its sender's descent could not be read: Too many open files$") and "held"
    or err.message
  -- and what the app forked is gone with it (without pidfds its group,
  -- not pinned for want of /proc, was not signalled)
  local pid = tonumber(K.read(forked))
  os.remove(forked)
  local gone = false
  for _ = 1, 200 do
    local stat = pid and K.read("/proc/" .. pid .. "/stat")
    gone = pid ~= nil and (not stat or stat:match("^%d+ %(.*%) Z") ~= nil)
    if gone then break end
    appstart.sleep(0.01)
  end
  K.out("waited", app and "ready" or err.code, cpu < took / 4 and "calm" or "spun", said,
    gone and "forked gone" or "forked left")
  if app then app:terminate() end
  if pid and not gone then os.execute("kill -KILL " .. pid) end
end
require("appstart.testing").reap()
K.out("left", tostring(K.fds() == fds), K.children_text())
