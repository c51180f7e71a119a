--- Helpers for the Lua scripts that specs run in child processes (a child
-- lua5.4, the allocation-failing luahost) and for support.lua: no luaunit,
-- nothing done at load time.
local testing = require "appstart.testing"

local K = {}

--- The whole file at path, or nil.
function K.read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- What a shell command prints, read in format fmt ("a" unless given),
-- its pipe closed before returning: an io.popen left to the collector is
-- a zombie shell of this process's until then, which a later check for
-- children left behind would take for the leak of whatever it checks.
function K.sh(command, fmt)
  local p = assert(io.popen(command))
  local out = p:read(fmt or "a")
  p:close()
  return out
end

--- One tab-separated line on stdout, flushed (the spec reads it as it comes).
function K.out(...)
  io.stdout:write(table.concat({ ... }, "\t"), "\n")
  io.stdout:flush()
end

--- The fixture program: the copy every user can run, which the spec names
-- in APPSTART_SPEC_FIXTURE, else the built one.
function K.fixture()
  return os.getenv("APPSTART_SPEC_FIXTURE") or (os.getenv("APPSTART_FIXTURES") .. "/fixture")
end

--- A shell command's prefix: under make sanitize, a Lua started by the
-- shell that loads the instrumented core needs the sanitizers' runtime
-- preloaded, as the suite's own has it (the core keeps LD_PRELOAD from
-- what it runs, so the runtime's path comes in APPSTART_SAN_PRELOAD).
K.SH_SAN_PRELOAD = 'if [ -n "$APPSTART_SAN_PRELOAD" ]; then export LD_PRELOAD="$APPSTART_SAN_PRELOAD"; fi; '

--- A log function that drops everything.
function K.quiet() end

--- A field of /proc/PID/status ("self" for this process), or nil.
function K.status_field(pid, field)
  local s = K.read("/proc/" .. pid .. "/status")
  return s and s:match(field .. ":[ \t]*([^\n]*)")
end

--- The state letter of pid (R, S, Z, ...), or nil once it is gone.
function K.state(pid)
  local stat = K.read("/proc/" .. pid .. "/stat")
  return stat and stat:match("%) (%a)")
end

local me
--- This process's children (zombies included), sorted.
function K.children()
  me = me or tonumber(K.read("/proc/self/stat"):match("^%d+"))
  local list = {}
  local text = K.read("/proc/" .. me .. "/task/" .. me .. "/children")
  if text then
    for pid in text:gmatch("%d+") do list[#list + 1] = tonumber(pid) end
  else
    -- (a kernel built without CONFIG_PROC_CHILDREN: each process's parent,
    -- read from its stat, the ls itself reaped before)
    for name in K.sh("exec ls /proc"):gmatch("%d+") do
      local stat = K.read("/proc/" .. name .. "/stat")
      if stat and tonumber(stat:match(".*%) %S+ (%d+)")) == me then list[#list + 1] = tonumber(name) end
    end
  end
  table.sort(list)
  return list
end

--- This process's children, as "pid,pid,..." ("" when it has none).
function K.children_text() return table.concat(K.children(), ",") end

--- Take every free descriptor (files open on /dev/null, until the limit
-- refuses one): the list of them, to close.
function K.take_all_descriptors()
  local held = {}
  while true do
    local f = io.open("/dev/null")
    if not f then return held end
    held[#held + 1] = f
  end
end

--- Step the start h (appstart.begin's) for `seconds` with every
-- descriptor taken (taken again after each step, 10 ms apart), then give
-- them back: whether it was done meanwhile, and its code then ("none").
function K.step_starved(h, seconds)
  local core = require "appstart.core"
  local held = K.take_all_descriptors()
  local t0, done = core.now(), false
  while not done and core.now() - t0 < seconds do
    done = h:step()
    for _, f in ipairs(K.take_all_descriptors()) do held[#held + 1] = f end
    core.wait_readable(-1, 0.01)
  end
  for _, f in ipairs(held) do f:close() end
  return done, h.err and h.err.code or "none"
end

--- appstart.start(opts) with only k descriptors free: the outcome
-- ("started", its app terminated; "CODE:ERRNO"; or "raised:ERROR", blanks
-- made _) and the seconds it took; what it left as a zombie is reaped.
-- nil when fewer than k can be freed.
function K.start_with_free_descriptors(k, opts)
  local appstart, core = require "appstart", require "appstart.core"
  local fillers = K.take_all_descriptors()
  if k > #fillers then
    for _, f in ipairs(fillers) do f:close() end
    return nil
  end
  for _ = 1, k do table.remove(fillers):close() end
  local t0 = core.now()
  local ok, app, err = pcall(appstart.start, opts)
  local took = core.now() - t0
  for _, f in ipairs(fillers) do f:close() end
  local outcome
  if not ok then outcome = "raised:" .. tostring(app):gsub("%s", "_")
  elseif app then outcome = "started"; app:terminate()
  else outcome = err.code .. ":" .. tostring(err.errno) end
  testing.reap()
  return outcome, took
end

--- A shell function for a script run in a pid namespace of its own:
-- `take_pid PID NAME ARG...` runs `sh -c "$TAKE" NAME ARG...` (TAKE
-- exported) as the process PID, setting ns_last_pid to PID - 1 just
-- before its fork. The kernel frees a pid a moment after /proc/PID has
-- gone: a fork that missed it exits at once and the next tries again (100
-- tries at most, then it returns 1).
K.SH_TAKE_PID = [[
take_pid() {
  want=$1; shift; n=0
  while :; do
    echo $((want - 1)) > /proc/sys/kernel/ns_last_pid
    WANT=$want sh -c '[ $$ = "$WANT" ] || exit 3; eval "$TAKE"' "$@"
    [ $? = 3 ] || return 0
    n=$((n + 1)); [ $n -lt 100 ] || return 1
  done
}
]]

--- This process's open descriptors, as "0,1,2,...".
function K.fds() return table.concat(testing.fds(), ",") end

--- The cgroup v2 mount point, from /proc/self/mountinfo (nil: none).
function K.cgroup_mount()
  for line in io.lines("/proc/self/mountinfo") do
    local mnt = line:match("^%S+ %S+ %S+ %S+ (%S+) .* %- cgroup2 ")
    if mnt then return mnt end
  end
end

--- This process's own cgroup directory (where its apps' are made), or nil
-- without cgroup v2.
function K.own_cgroup_dir()
  local mnt = K.cgroup_mount()
  local path = mnt and (K.read("/proc/self/cgroup") or ""):match("0::([^\n]*)")
  return path and mnt .. (path == "/" and "" or path)
end

--- How many cgroups of this process's ("appstart.PID.*") are under dir
-- (its own cgroup directory unless given): nil where there is none.
function K.my_cgroups(dir)
  dir = dir or K.own_cgroup_dir()
  if not dir then return nil end
  local n = 0
  local p = io.popen("ls -d " .. dir .. "/appstart." .. require("appstart.core").pid() .. ".* 2>/dev/null")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

--- Wait (10 s at most, else raise) until path is there: a file that can
-- be read, or (socket) a socket.
function K.await_path(path, socket)
  local core = require "appstart.core"
  local deadline = core.now() + 10
  while not K.read(path) and not (socket and os.execute("test -S '" .. path .. "'")) do
    assert(core.now() < deadline, path .. " never came")
    core.wait_readable(-1, 0.005)
  end
end

--- Wait (10 s at most, else raise) until pred() is true, in appstart's
-- waits (inside appstart.run, a task's: the loop goes on). The error says
-- what was waited for, and what describe() says of the state then.
function K.await(pred, what, describe)
  local appstart = require "appstart"
  local core = require "appstart.core"
  local deadline = core.now() + 10
  while not pred() do
    if core.now() >= deadline then
      error(string.format("timed out waiting for %s: %s", what, describe and describe() or ""), 0)
    end
    appstart.sleep(0.01)
  end
end

return K
