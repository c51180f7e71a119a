--- Shared test support: where the fixtures are, and the checks every
-- failure-path test makes: no new descriptors, no zombie, no stray process.
local core = require "appstart.core"
local lu = require "luaunit"

local S = {}

S.fixtures = assert(os.getenv("APPSTART_FIXTURES"), "run through make test")
S.fixture = S.fixtures .. "/fixture"
S.helper = assert(os.getenv("APPSTART_HELPER"))
S.core = core

local tmp_count = 0
--- A fresh path under a per-run temporary directory.
function S.tmpname(stem)
  if not S.tmpdir then
    local p = io.popen("mktemp -d /tmp/appstart-spec.XXXXXX")
    S.tmpdir = p:read("l")
    p:close()
  end
  tmp_count = tmp_count + 1
  return string.format("%s/%s-%d", S.tmpdir, stem or "f", tmp_count)
end

function S.read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Wait (bounded) for a file a fixture writes with tmp+rename.
function S.await_file(path, timeout)
  local deadline = core.now() + (timeout or 5)
  while core.now() < deadline do
    local s = S.read(path)
    if s then return s end
    core.wait_readable(-1, 0.002) -- a 2 ms pause between looks
  end
  error("file never appeared: " .. path, 2)
end

function S.lines(s)
  local t = {}
  for l in (s or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

--- /proc/PID/status as a table of fields.
function S.proc_status(pid)
  local s = S.read("/proc/" .. pid .. "/status")
  if not s then return nil end
  local t = {}
  for k, v in s:gmatch("([%w_]+):%s*([^\n]*)") do t[k] = v end
  return t
end

local function proc_pids()
  local p = io.popen("exec ls /proc")
  local pids = {}
  for l in p:lines() do
    local n = tonumber(l)
    if n then pids[#pids + 1] = n end
  end
  p:close()
  return pids
end

--- Children of this process that are zombies (or any child at all).
function S.children()
  local me = S.proc_status("self").Pid
  local out = {}
  for _, pid in ipairs(proc_pids()) do
    local st = S.proc_status(pid)
    if st and st.PPid == me then out[#out + 1] = pid end
  end
  return out
end

local function pgrp(pid)
  local stat = S.read("/proc/" .. pid .. "/stat")
  return stat and stat:match("%) %S+ %d+ (%d+)")
end

--- Live (not zombie) processes running the fixture or the helper, in this
-- process group (so concurrent test runs do not see each other's).
function S.strays()
  local out = {}
  local mine = pgrp("self")
  for _, pid in ipairs(proc_pids()) do
    local cmd = S.read("/proc/" .. pid .. "/cmdline")
    local argv0 = cmd and cmd:match("^[^%z]*")
    if (argv0 == S.fixture or argv0 == S.helper) and pgrp(pid) == mine then
      local st = S.proc_status(pid)
      if st and not st.State:match("^Z") then out[#out + 1] = pid end
    end
  end
  return out
end

--- Is pid alive (not a zombie)?
function S.alive(pid)
  local st = S.proc_status(pid)
  return st ~= nil and not st.State:match("^Z")
end

--- Kill every stray fixture (cleanup after a failed test), then reap.
function S.kill_strays()
  for _, pid in ipairs(S.strays()) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  core.reap()
end

--- Snapshot of what the launcher holds, for S.assert_clean.
function S.snapshot()
  collectgarbage() -- objects of earlier tests (event loops) release theirs
  core.reap()
  return { fds = table.concat(core.fds(), ","), }
end

--- Nothing left behind: same descriptors, no child at all (so no zombie),
-- no live fixture or helper process.
function S.assert_clean(before, msg)
  core.reap()
  msg = msg and (msg .. ": ") or ""
  lu.assertEquals(table.concat(core.fds(), ","), before.fds, msg .. "descriptors")
  lu.assertEquals(S.children(), {}, msg .. "children (zombies) left")
  lu.assertEquals(S.strays(), {}, msg .. "stray processes")
end

--- Seconds that fn() takes, and its results.
function S.timed(fn, ...)
  local t0 = core.now()
  local r = table.pack(fn(...))
  return core.now() - t0, table.unpack(r, 1, r.n)
end

--- A log function that records into a list.
function S.recorder()
  local list = {}
  return list, function(level, message) list[#list + 1] = level .. ": " .. message end
end

return S
