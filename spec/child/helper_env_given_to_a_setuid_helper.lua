--- Run by spec/helper_spec.lua,
-- test_an_env_given_to_an_unprivileged_launchers_start_as_another_user_is_refused
-- (as nobody, APPSTART_HELPER a setuid copy whose policy lets nobody start
-- apps as daemon): appstart.start and appstart.begin of an app as daemon
-- with an env raise (the helper would rebuild the environment, the env
-- dropped); without it the app starts. Then the command, with --env, then
-- with --clear-env.
-- Prints "start" and "begin" with what each raised, "started" with the
-- signal that ended the app started without env, and "command" with the
-- command's exit code and its stderr, for each.
-- Arguments: the command (bin/appstart in a tree nobody can read).
local appstart = require "appstart"
local K = require "childkit"

local BIN = arg[1]
local F = K.fixture()

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function opts(env, ...)
  return { argv = { F, ... }, user = "daemon", env = env, ready = "none", stdout = "null", stderr = "null",
    log = K.quiet }
end

-- (an app that exits at once: one started all the same leaves nothing)
for _, name in ipairs { "start", "begin" } do
  local ok, got = pcall(appstart[name], opts { X = "1" })
  K.out(name, ok and "did not raise" or tostring(got))
  if ok and name == "begin" then got = got:wait() end
  if ok and got then got:wait() end
end
local app, err = appstart.start(opts(nil, "pause"))
if app then
  local how = app:terminate(1)
  K.out("started", how and how.signal)
else
  K.out("not started", tostring(err))
end
-- (nothing is started: its stderr says why at once)
for _, flag in ipairs { "--env=X=1", "--clear-env" } do
  local p = assert(io.popen(K.SH_SAN_PRELOAD .. "exec lua5.4 " .. q(BIN) .. " --user=daemon " .. flag
    .. " --ready=none -- " .. q(F) .. " 2>&1 </dev/null"))
  local said = p:read("a")
  local _, _, code = p:close()
  K.out("command", code, said)
end
