--- Run by spec/security_spec.lua (the specs of a notify directory being
-- made) in the background, with spec/fixtures/heldbind.so preloaded: its
-- start is held as it binds the notify socket, until the test releases
-- it (or kills it). Starts a notify app that says its NOTIFY_SOCKET in
-- STATUS= before READY=1, terminates it, and writes to OUTFILE (through
-- OUTFILE.tmp, renamed) "ready", the base its socket was under and the
-- signal that ended it ("ready\tBASE\n15\n"), or "failed", the error's
-- code and message.
-- arg[1]: OUTFILE.
local appstart = require "appstart"
local K = require "childkit"
local F = K.fixture()
local OUTFILE = arg[1]

local seen
local app, err = appstart.start { argv = { "/bin/sh", "-c", 'exec "$0" "notify=STATUS=$NOTIFY_SOCKET" notify=READY=1 pause',
  F }, ready_timeout = 10, log = K.quiet, on_status = function(_, text) seen = text end }
local text
if app then
  text = string.format("ready\t%s\n%s\n", seen:match("^(.*)/appstart%.[^/]*/notify$"), app:terminate(1).signal)
else
  text = string.format("failed\t%s\t%s\n", err.code, err.message)
end
local f = assert(io.open(OUTFILE .. ".tmp", "w"))
f:write(text)
f:close()
os.rename(OUTFILE .. ".tmp", OUTFILE)
