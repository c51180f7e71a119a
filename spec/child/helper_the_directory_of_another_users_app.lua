--- Run by spec/helper_spec.lua,
-- test_another_users_app_enters_its_directory_by_path_as_that_user (as
-- root, from a directory holding notes.txt and sub/): starts the fixture
-- as nobody with no cwd, which writes its directory to OUT/cwd and then
-- reads notes.txt (cat, its output in OUT/cat), then one with cwd = "sub".
-- Prints "none", the app's directory, what cat printed and its exit
-- code; then "sub" and the app's directory, or the failed start's code
-- and message.
-- Arguments: OUT (a directory nobody may write).
local appstart = require "appstart"
local K = require "childkit"

local OUT = arg[1]
local F = K.fixture()

local function trimmed(path) return ((K.read(path) or ""):gsub("\n$", "")) end

local app, err = appstart.start { argv = { F, "cwd=" .. OUT .. "/cwd", "exec", "/bin/cat", "notes.txt" },
  user = "nobody", ready = "none", stdout = OUT .. "/cat", stderr = "null", log = K.quiet }
if app then
  local how = app:wait()
  K.out("none", trimmed(OUT .. "/cwd"), trimmed(OUT .. "/cat"), how.code)
else
  K.out("none", err.code, err.message)
end

app, err = appstart.start { argv = { F, "cwd=" .. OUT .. "/sub-cwd" }, user = "nobody", cwd = "sub", ready = "none",
  stdout = "null", stderr = "null", log = K.quiet }
if app then
  app:wait()
  K.out("sub", trimmed(OUT .. "/sub-cwd"))
else
  K.out("sub", err.code, err.message)
end
