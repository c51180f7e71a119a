--- Run by spec/faults_spec.lua, in
-- test_a_launcher_that_inherited_sigchld_ignored_keeps_its_apps_ends,
-- started with SIGCHLD ignored (SIG_IGN survives exec): a plain start and
-- a helper's, each app ended and waited for. Prints tab-separated lines:
-- whether SIGCHLD is ignored first; "plain" and the app's end; "helper",
-- the start's outcome and the app's end; whether SIGCHLD is ignored after.
-- No arguments.
local appstart = require "appstart"
local core = require "appstart.core"

local F = assert(os.getenv("APPSTART_SPEC_FIXTURE"))
local CHLD = core.signum("CHLD")
local function ignored() return tostring(core.proc_status(core.pid()).ignored >> (CHLD - 1) & 1 == 1) end

print("ignored", ignored())
local app = assert(appstart.start { argv = { F, "exit=3" }, ready = "none" })
print("plain", tostring(app:wait(5)))
local h, err = appstart.start {
  helper = { F, "fork", "pause", "|", "int32=3:child", "exit=0" }, argv = { "pause" }, ready = "none",
  pid_timeout = 5,
}
print("helper", h and "ready" or tostring(err), h and tostring(h:terminate()) or "")
print("ignored", ignored())
