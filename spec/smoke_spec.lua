local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local T = {}

function T.test_fd_protocol_ready_line_names_the_app()
  local before = S.snapshot()
  local app = assert(appstart.start { argv = { S.fixture, "line=3:hello", "pause" }, ready = "fd" })
  lu.assertEquals(app.name, "hello")
  lu.assertEquals(app.state, "ready")
  lu.assertEquals(app:terminate(1), { signal = 15 })
  S.assert_clean(before)
end

return { TestSmoke = T }
