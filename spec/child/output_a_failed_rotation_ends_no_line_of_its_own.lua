--- Run by spec/output_spec.lua, in
-- test_a_failed_rotation_leaves_no_newline_of_its_own_at_the_apps_end: an
-- app writes "aaaa\n" and "bbb" (no newline) into a rotated file
-- (max_bytes 30, keep 1); then, the launcher holding every descriptor, a
-- line that takes the file past its limit: the rotation moves the file to
-- PATH.1, and cannot make the fresh one (the unfinished "bbb" and the new
-- line lost). Descriptors back, the app ends. Prints "lost" once the log
-- has said bytes were lost, "ended" and the app's exit code, and whether
-- the descriptors are as they were.
-- Arguments: the file's path, and two paths the app waits for (made by
-- renaming files made before: a rename takes no descriptor).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local path, go_a, go_b = arg[1], arg[2], arg[3]
for _, p in ipairs { go_a, go_b } do assert(io.open(p .. ".new", "w")):close() end
local fds = K.fds()
local lost = false
local app = assert(appstart.start { argv = { F, "line=1:aaaa", "write=1:bbb", "waitfile=" .. go_a,
  "line=1:cccccccccccccccccccccccccccccc", "waitfile=" .. go_b, "exit=0" }, ready = "none",
  stdout = { file = path, max_bytes = 30, keep = 1 },
  log = function(_, message) if message:find("not written to its file", 1, true) then lost = true end end })
-- ("bbb" in the file first: the line under way as the rotation comes)
K.await(function()
  app:wait(0.01)
  local f = io.open(path)
  local text = f and f:read("a")
  if f then f:close() end
  return text == "aaaa\nbbb"
end, "the file holds the first line and a half")
local held = K.take_all_descriptors()
assert(os.rename(go_a .. ".new", go_a))
K.await(function()
  app:wait(0.01)
  return lost
end, "the lost bytes were said")
for _, f in ipairs(held) do f:close() end
K.out("lost")
assert(os.rename(go_b .. ".new", go_b))
local how = app:wait(10)
K.out("ended", how and how.code)
app:close()
K.out("left", tostring(K.fds() == fds))
