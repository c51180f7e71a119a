--- Run by spec/repl_spec.lua, in
-- test_a_failed_start_is_not_printed_by_the_default_logger: a start that
-- fails, then one that fails at log level info, with the default logger;
-- prints "code\tCODE" for the first (the logger's lines go to stderr).
-- No arguments.
local appstart = require "appstart"
local K = require "childkit"

local F = K.fixture()
local _, err = appstart.start { argv = { F, "exit=1" }, ready = "fd" }
print("code", err.code)
appstart.log_level = "info"
appstart.start { argv = { F, "exit=2" }, ready = "fd" }
