--- Run by spec/probes_spec.lua, in
-- test_a_name_dns_cannot_answer_for_now_is_a_try_that_failed, in a mount
-- namespace of its own: RESOLV (a resolv.conf naming a DNS server that
-- does not answer) is bound over /etc/resolv.conf, then an app is probed
-- at tcp:appstart-probe.example.com:PORT with ready_timeout 1.5 s. Prints
-- "skip\tWHY" where the lookup does not fail for now (EAGAIN), else
-- "failed\tCODE\tMESSAGE", "lookups\tN" (the lookups the probe made) and
-- "left\tPIDS" (the children left).
-- Arguments: RESOLV.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local NAME = "appstart-probe.example.com"
if not os.execute("mount --bind '" .. arg[1] .. "' /etc/resolv.conf") then
  K.out("skip", "cannot bind a resolv.conf of its own")
  os.exit(0)
end
-- (EAI_AGAIN's text: the resolver here may answer otherwise)
local list, why = core.resolve(NAME)
if list or not why:find("Temporary failure in name resolution", 1, true) then
  K.out("skip", "the lookup does not fail for now: " .. tostring(why))
  os.exit(0)
end
local lookups = 0
local resolve = core.resolve
core.resolve = function(...)
  lookups = lookups + 1
  return resolve(...)
end
local F = K.fixture()
local _, err = appstart.start { argv = { F, "pause" }, ready = { connect = "tcp:" .. NAME .. ":5432" },
  ready_timeout = 1.5, kill_grace = 1, log = K.quiet }
K.out("failed", err.code, err.message)
K.out("lookups", lookups)
K.out("left", K.children_text())
