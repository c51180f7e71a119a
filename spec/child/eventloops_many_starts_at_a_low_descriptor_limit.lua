--- Run by spec/eventloops_spec.lua, in
-- test_many_starts_at_once_at_a_low_descriptor_limit_under_cqueues and
-- _under_luv (a soft descriptor limit of 200): starts N apps at once under
-- that event loop, each waited for, and prints "R ready, E failed FIRST;
-- children: PIDS" (FIRST the first error, PIDS the children left).
-- Arguments: the event loop ("cqueues" or "luv"), N.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local context, N = arg[1], tonumber(arg[2])
local ready, errs = 0, {}
local function body(i)
  local app, err = appstart.start { argv = { F, "sleep=0.1", "line=3:n" .. i, "sleep=0.3", "exit=0" },
    ready = "fd", on_exit = function() end }
  if app then ready = ready + 1; app:wait() else errs[#errs + 1] = tostring(err) end
end
if context == "cqueues" then
  local cq = require("cqueues").new()
  for i = 1, N do cq:wrap(function() body(i) end) end
  assert(cq:loop())
else
  local uv = require "luv"
  require "appstart.luv"
  for i = 1, N do coroutine.wrap(function() body(i) end)() end
  uv.run()
end
print(string.format("%d ready, %d failed %s; children: %s", ready, #errs, errs[1] or "", K.children_text()))
