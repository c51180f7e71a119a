--- Run by spec/life_spec.lua, in
-- test_a_watchdog_usec_read_late_after_a_busy_spell_sets_the_watchdog_anew:
-- under an event loop that runs its timers before it polls (luv, cqueues),
-- starts an app with watchdog = 0.3 that, once ready, sends WATCHDOG_USEC=
-- ("off": 0; "changed": 1 s, then 0 at 0.75 s) while the launcher is busy
-- past the watchdog's due time (a spin until the app has sent it and 0.5 s
-- have passed), so that the timer reads it. Prints "how\tCODE\tSIGNAL\t
-- WATCHDOG" once the app has ended (the watchdog firing is a wrong kill),
-- then "children: PIDS". The app writes its pid to the file `mark` once it
-- has sent the first WATCHDOG_USEC=.
-- Arguments: the event loop ("luv" or "cqueues"), the case, mark.
local appstart = require "appstart"
local core = require "appstart.core"
local K = require "childkit"

local F = K.fixture()
local context, case, mark = arg[1], arg[2], arg[3]
local after = case == "off" and { "notify=WATCHDOG_USEC=0", "pidfile=" .. mark, "sleep=1.5", "exit=0" }
  or { "notify=WATCHDOG_USEC=1000000", "pidfile=" .. mark, "sleep=0.7", "notify=WATCHDOG_USEC=0", "sleep=1.2",
    "exit=0" }
local argv = { F, "notify=READY=1", "sleep=0.05" }
for _, a in ipairs(after) do argv[#argv + 1] = a end

local function body()
  local app = assert(appstart.start { argv = argv, watchdog = 0.3, kill_grace = 0.5, log = K.quiet })
  local t = core.now()
  -- busy: no poll, past the watchdog's due time (0.3 s after ready)
  while not (K.read(mark) and core.now() - t >= 0.5) do
    if core.now() - t > 10 then break end
  end
  local how = app:wait(10) or {}
  print(string.format("how\t%s\t%s\t%s", tostring(how.code), tostring(how.signal), tostring(how.watchdog)))
end

if context == "cqueues" then
  local cq = require("cqueues").new()
  cq:wrap(body)
  assert(cq:loop())
else
  local uv = require "luv"
  require "appstart.luv"
  coroutine.wrap(body)()
  uv.run()
end
print("children: " .. K.children_text())
