--- Run by spec/eventloops_spec.lua, in
-- test_a_callback_that_raises_under_luv_is_logged_and_the_loop_goes_on:
-- under luv, starts an app whose on_exit raises and watches one with a
-- callback that raises, while another app is held, and one whose
-- on_output raises at each line (a message that quotes the line, a value
-- no tostring can show) and whose on_exit raises such a value too; prints
-- "held: STATE" after 0.2 s and, once uv.run returns, "uv.run returned,
-- children: PIDS" (the errors are logged on stderr). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local uv = require "luv"
require "appstart.luv"
local held
coroutine.wrap(function()
  held = assert(appstart.start { argv = { F, "line=3:held", "pause" }, ready = "fd", stdout = "null",
    stderr = "null" })
  assert(appstart.start { argv = { F, "line=3:v", "sleep=0.05", "exit=0" }, ready = "fd",
    on_exit = function() error("bug in on_exit") end })
  local victim = assert(appstart.start { argv = { F, "line=3:w", "sleep=0.05", "exit=0" }, ready = "fd" })
  appstart.watch(victim.pid, function() error("bug in a watch callback") end)
  local unshowable = setmetatable({}, { __tostring = function() return {} end })
  -- (two apps: each logs what its on_output raises once a second at most)
  for _, raise in ipairs { function(line) error("not JSON: " .. line) end, function() error(unshowable) end } do
    assert(appstart.start { argv = { F, "line=1:\27]0;owned\7", "line=3:c", "sleep=0.05", "exit=0" },
      ready = "fd", stdout = "capture", on_output = function(_, _, line) raise(line) end,
      on_exit = function() error(setmetatable({}, { __tostring = function() error("no text") end })) end })
  end
  appstart.sleep(0.2)
  print("held: " .. held.state)
  held:terminate()
  victim:wait()
end)()
uv.run()
print("uv.run returned, children: " .. K.children_text())
