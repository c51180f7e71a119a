--- Run by spec/security_spec.lua, in
-- test_a_file_the_apps_user_cannot_read_where_it_can_move_files_is_refused_as_stdin
-- (as root, a descriptor limit of 64): for each number of free
-- descriptors k from 0 up, fills the table, frees k and starts an app of
-- the user nobody whose stdin is PATH (root's, in group nogroup, 0640, in
-- a directory nobody owns: nobody's group may read it), until one starts.
-- Prints one line each: k and the outcome ("started" or "CODE:ERRNO"). A
-- shortage while the user's groups were read made it a refusal ("spawn:13",
-- "a file the app's user cannot read").
local K = require "childkit"

local F = K.fixture()
local path = assert(arg[1])
for k = 0, 16 do
  local outcome = K.start_with_free_descriptors(k, { argv = { F, "exit=0" }, ready = "none", user = "nobody",
    stdin = path, log = K.quiet })
  if not outcome then break end
  print(k, outcome)
  io.stdout:flush()
  if outcome == "started" then break end
end
