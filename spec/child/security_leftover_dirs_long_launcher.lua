--- Run by spec/security_spec.lua (test_directories_a_killed_launcher_left_
-- are_removed_by_the_next_start) in the background with the
-- XDG_RUNTIME_DIR a launcher killed later leaves its directory in, as a
-- launcher that runs on: starts the fixture (ready at READY=1) and
-- terminates it, writes READYFILE, waits for GOFILE (made once the other
-- launcher has been killed), then, a second or more after its first
-- start (when a base only its user may write is swept again), starts and
-- terminates it again, and
-- writes the two signals that ended them to OUTFILE ("15\n15\n").
-- arg[1]: READYFILE, arg[2]: GOFILE, arg[3]: OUTFILE.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"
local F = K.fixture()
local READYFILE, GOFILE, OUTFILE = arg[1], arg[2], arg[3]

local function once()
  local app = assert(appstart.start { argv = { F, "notify=READY=1", "pause" }, log = K.quiet })
  return app:terminate(1).signal
end

local first = once()
-- (its first sweep ended inside that start)
local t1 = core.now()
assert(io.open(READYFILE, "w")):close()
K.await_path(GOFILE)
core.wait_readable(-1, math.max(0, t1 + 1.05 - core.now()))
local second = once()
local f = assert(io.open(OUTFILE .. ".tmp", "w"))
f:write(first, "\n", second, "\n")
f:close()
os.rename(OUTFILE .. ".tmp", OUTFILE)
