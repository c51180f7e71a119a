--- Run by spec/repl_spec.lua, in
-- test_an_error_in_a_watch_callback_is_logged_and_never_raised_from_another_call:
-- watches an app that exits at once with a callback that raises, then
-- waits for another app, and prints "b\tCODE" (its exit code; the
-- default logger's lines go to stderr). No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local a = assert(appstart.start { argv = { F, "line=3:a", "exit=0" }, ready = "fd" })
appstart.watch(a.pid, function() error("watch went wrong") end)
local b = assert(appstart.start { argv = { F, "line=3:b", "sleep=0.2", "exit=7" }, ready = "fd" })
print("b", b:wait(3).code)
