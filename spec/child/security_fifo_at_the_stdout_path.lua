--- Run by spec/security_spec.lua (test_a_fifo_planted_at_a_stdio_or_output_
-- path_never_holds_the_launcher), killed if it hangs: starts the fixture
-- with stdout a FIFO no one reads, given as a path, then as { file = };
-- prints "started" or "CODE: MESSAGE" for each, then "left\tPIDS" (this
-- process's children left at the end).
-- Environment: D, a directory holding the FIFO "out".
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()

local path = os.getenv("D") .. "/out"
for _, stdout in ipairs { path, { file = path } } do
  local app, err = appstart.start { argv = { F, "pause" }, ready = "none", stdout = stdout, log = function() end }
  print(app and "started" or (err.code .. ": " .. err.message))
end
print("left", K.children_text())
