--- Run by spec/loop_spec.lua: inside appstart.run, a task waits in
-- app:wait() on an app that exits 0.6 s after its start; another task
-- closes the waiting task's coroutine (coroutine.close), which lets go of
-- the app, and collects it at once (its pidfd was closed under the wait,
-- and the run never ended). Prints "closed: BOOL", then, once the run
-- has returned, "returned", "children: LIST" and "descriptors: SAME|...".
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local fds0 = K.fds()
appstart.run(function()
  local started, co = false, nil
  appstart.spawn(function()
    co = coroutine.running()
    local app = assert(appstart.start { argv = { F, "sleep=0.6", "exit=0" }, ready = "none", log = K.quiet })
    started = true
    app:wait()
    K.out("wait returned")
  end)
  while not started do appstart.sleep(0.01) end
  K.out("closed:", tostring(coroutine.close(co)))
  collectgarbage("collect")
  collectgarbage("collect")
end)
K.out("returned")
collectgarbage("collect")
K.out("children:", K.children_text())
local fds = K.fds()
K.out("descriptors:", fds == fds0 and "same" or (fds0 .. " -> " .. fds))
