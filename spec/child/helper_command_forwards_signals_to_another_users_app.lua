--- Run by spec/helper_spec.lua,
-- test_the_command_of_an_unprivileged_user_forwards_signals_to_another_users_app
-- (as nobody, APPSTART_HELPER a setuid copy whose policy lets nobody start
-- apps as daemon): runs `appstart --user=daemon --watch` of the fixture,
-- which notes each SIGHUP and its sender's uid in DIR/hup; once it is
-- ready, sends the command SIGHUP, then (the SIGHUP noted) SIGTERM, and
-- waits for the command's exit. Prints "ready PID" (the app's), "hup
-- LINE" (what the app noted), "exit CODE" (the command's), and the
-- command's stderr.
-- Arguments: the command (bin/appstart in a tree nobody can read), DIR.
local core = require "appstart.core"
local K = require "childkit"

local BIN, DIR = arg[1], arg[2]
local F = K.fixture()

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Wait (bounded) for the file at path to hold something: its text, or
-- nil after 10 s.
local function await_text(path)
  local deadline = core.now() + 10
  while core.now() < deadline do
    local text = K.read(path)
    if text and text ~= "" then return text end
    core.wait_readable(-1, 0.01)
  end
end

-- sh's $$ is the command's pid once it execs lua5.4; the exit code is
-- written to a file of its own once the command has ended (none of it
-- holds this Lua's output, which the spec reads to its end). Under `make
-- sanitize` the command loads the instrumented core: the runtime goes
-- first (the core keeps LD_PRELOAD from what this Lua runs)
assert(os.execute(string.format("(sh -c '" .. K.SH_SAN_PRELOAD
  .. "echo $$ >%s/cli; exec lua5.4 \"$@\" >%s/out 2>%s/err' command %s"
  .. " --user=daemon --watch -- %s %s notify=READY=1 pause; echo $? >%s/code.tmp; mv %s/code.tmp %s/code)"
  .. " >/dev/null 2>&1 </dev/null &",
  DIR, DIR, DIR, q(BIN), q(F), q("trapfrom=HUP:" .. DIR .. "/hup"), DIR, DIR, DIR)))
local pid = (await_text(DIR .. "/out") or ""):match("ready: pid (%d+)")
local cli = tonumber(await_text(DIR .. "/cli"))
print("ready", pid)
-- the command forwards both; the launcher may not signal daemon's app
-- itself, so each goes through the helper
os.execute("kill -HUP " .. cli)
print("hup", ((await_text(DIR .. "/hup") or ""):gsub("\n$", "")))
os.execute("kill -TERM " .. cli)
local code = await_text(DIR .. "/code")
print("exit", code and tonumber(code))
if not code then os.execute("kill -KILL " .. cli) end -- (a command that hangs fails the spec, and goes)
io.write(K.read(DIR .. "/err") or "")
