--- The test runner: every spec/*_spec.lua (or those named on the command
-- line), through luaunit, then one closing line "N passed, N failed".
-- Exits non-zero on any failure. Each spec file returns a table of test
-- classes ({ TestName = { test_x = function ... } }).
local lu = require "luaunit"

-- Run from a terminal, the suite goes on without it: an app started as
-- another user never gets one (appstart-helper refuses a terminal on 0-2
-- whoever runs it), and the specs that run the helper as a shell command
-- pass it their own 0-2. The runner runs itself again, its output through
-- a pipe to this terminal, its input /dev/null, and exits as it does.
local core = require "appstart.core"
if not os.getenv("APPSTART_SPEC_DETACHED") and (core.isatty(0) or core.isatty(1) or core.isatty(2)) then
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local words = { "APPSTART_SPEC_DETACHED=1", q(arg[-1] or "lua5.4"), q(arg[0]) }
  for _, a in ipairs(arg) do words[#words + 1] = q(a) end
  local rc = os.tmpname()
  os.execute("{ " .. table.concat(words, " ") .. " </dev/null 2>&1; echo $? >" .. q(rc) .. "; } | cat")
  local f = io.open(rc)
  local code = f and tonumber(f:read("l")) or 1
  if f then f:close() end
  os.remove(rc)
  os.exit(code)
end

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local files, pattern = {}, nil
for _, a in ipairs(arg) do
  if a:match("_spec%.lua$") then files[#files + 1] = a
  elseif a:sub(1, 1) ~= "-" then pattern = a end
end
if #files == 0 then
  local p = io.popen("ls " .. dir .. "/*_spec.lua")
  for line in p:lines() do files[#files + 1] = line end
  p:close()
end

-- After every test and its tearDown, the runner has no child left, zombie
-- or not: what a test leaves (an io.popen not closed, an app it never
-- waited for) fails that test, by name, instead of the first later test
-- that counts children. A child still running is given 2 s to end (one
-- killed just now, by the test or its tearDown, may be on its way out),
-- what the library let go of reaped as it ends (testing.reap); a zombie
-- that that leaves is nobody's to reap: left behind.
local S = require "support"
local testing = require "appstart.testing"
local function describe(pid)
  local st = S.proc_status(pid)
  local cmd = (S.read("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " "):sub(1, 80)
  return string.format("%d (%s, %s: %s)", pid, st and st.Name or "?", st and st.State or "gone", cmd)
end
local function left_behind()
  local deadline = core.now() + 2
  while true do
    testing.reap()
    local left = S.children()
    local running = false
    for _, pid in ipairs(left) do
      if S.alive(pid) then running = true end
    end
    if not running or core.now() >= deadline then return left end
    core.wait_readable(-1, 0.01)
  end
end
local function nothing_left_behind(own_teardown)
  return function(self)
    -- (checked whatever the test's own tearDown raised, then that raised)
    local ok, err = true, nil
    if own_teardown then ok, err = pcall(own_teardown, self) end
    local left = left_behind()
    if #left > 0 then
      local named = {}
      for i, pid in ipairs(left) do named[i] = describe(pid) end
      S.kill_strays()
      S.reap_children()
      lu.fail("children left after the test: " .. table.concat(named, ", "))
    end
    if not ok then error(err, 0) end
  end
end

local suites = {}
for _, file in ipairs(files) do
  local classes = dofile(file)
  local names = {}
  for name in pairs(classes) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local class = classes[name]
    if pattern then
      local kept = {}
      for k, v in pairs(class) do
        if type(v) ~= "function" or not k:match("^test") or (name .. "." .. k):match(pattern) then
          kept[k] = v
        end
      end
      class = kept
    end
    class.tearDown = nothing_left_behind(class.tearDown)
    suites[#suites + 1] = { name, class }
  end
end

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
runner:runSuiteByInstances(suites, "-v")
local r = runner.result
local failed = r.failureCount + r.errorCount
local passed = r.runCount - failed -- runCount leaves skipped tests out
if r.skippedCount > 0 then
  print(string.format("%d passed, %d failed, %d skipped", passed, failed, r.skippedCount))
else
  print(string.format("%d passed, %d failed", passed, failed))
end
-- make check runs the suite three ways and says the sum last
-- (spec/summary.lua): each run adds its counts to this file
local summary = os.getenv("APPSTART_SUMMARY")
if summary then
  local f = assert(io.open(summary, "a"))
  f:write(string.format("%s\t%d\t%d\t%d\n", os.getenv("APPSTART_SUMMARY_LABEL") or "suite",
    passed, failed, r.skippedCount))
  f:close()
end
os.exit(failed == 0 and r.runCount > 0 and 0 or 1, true)
