--- Run by spec/output_spec.lua, in
-- test_a_rotation_out_of_descriptors_makes_its_file_once_they_are_back:
-- inside appstart.run, an app writes 100 lines "aN" into a rotated file
-- (max_bytes 300) while the launcher holds every descriptor (its
-- rotations cannot make the fresh file), then, descriptors back, 100
-- lines "bN". Prints "done" and whether the descriptors are as they were.
-- Arguments: the file's path, and two paths the app waits for (made by
-- renaming files made before: a rename takes no descriptor).
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local path, go_a, go_b = arg[1], arg[2], arg[3]
for _, p in ipairs { go_a, go_b } do assert(io.open(p .. ".new", "w")):close() end
local fds = K.fds()
appstart.run(function()
  local app = assert(appstart.start { argv = { F, "waitfile=" .. go_a, "lines=1:100:a", "waitfile=" .. go_b,
    "lines=1:100:b", "pause" }, ready = "none", log = K.quiet, stdout = { file = path, max_bytes = 300, keep = 3 } })
  local held = K.take_all_descriptors()
  assert(os.rename(go_a .. ".new", go_a))
  appstart.sleep(0.3)
  for _, f in ipairs(held) do f:close() end
  assert(os.rename(go_b .. ".new", go_b))
  appstart.sleep(0.3)
  app:terminate()
  app:close()
end)
K.out("done", tostring(K.fds() == fds))
