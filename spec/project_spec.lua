--- The project's own habits, checked: one version everywhere, a licence and
-- a changelog that ship, a README complete on its own.
local lu = require "luaunit"
local appstart = require "appstart"
local S = require "support"

local TOP = S.spec_dir .. "/.."

local T = {}

function T.test_the_version_is_the_VERSION_files_everywhere()
  local version = assert(S.read(TOP .. "/VERSION")):match("^(%d+%.%d+%.%d+)\n$")
  lu.assertNotNil(version, "VERSION holds one version")
  lu.assertEquals(appstart.version, version, "the module")
  lu.assertEquals(S.sh(S.helper .. " --version"), "appstart-helper " .. version .. "\n")
  local rockspecs = S.sh("ls " .. TOP .. "/rockspec")
  lu.assertEquals(rockspecs, "appstart-" .. version .. "-1.rockspec\n", "the rockspec's name")
  local rockspec = S.read(TOP .. "/rockspec/appstart-" .. version .. "-1.rockspec")
  lu.assertStrContains(rockspec, 'version = "' .. version .. '-1"')
  lu.assertStrContains(S.read(TOP .. "/NEWS.md"), "## " .. version)
end

-- The top level is fixed: what the repository tracks there is these and
-- nothing else (a scratch script once slipped in with a commit).
function T.test_the_top_level_holds_only_what_belongs_there()
  lu.skipIf(not os.execute("git -C " .. TOP .. " rev-parse --git-dir >/dev/null 2>&1"), "not a git checkout")
  local allowed = { csrc = true, lua = true, spec = true, rockspec = true, Makefile = true, ["README.md"] = true,
    [".ci"] = true, LICENSE = true, ["NEWS.md"] = true, VERSION = true, [".gitignore"] = true,
    [".luacheckrc"] = true }
  local p = io.popen("git -C " .. TOP .. " ls-files")
  local stray = {}
  for path in p:lines() do
    local first = path:match("^[^/]+")
    if not allowed[first] then stray[#stray + 1] = path end
  end
  p:close()
  lu.assertEquals(stray, {})
end

function T.test_the_licence_ships_and_is_the_rockspecs()
  lu.assertStrContains(assert(S.read(TOP .. "/LICENSE")), "MIT License")
  local rockspec = S.sh("cat " .. TOP .. "/rockspec/*.rockspec")
  lu.assertStrContains(rockspec, 'license = "MIT"')
end

function T.test_the_rockspec_installs_the_helper_where_make_install_does()
  local rockspec = S.sh("cat " .. TOP .. "/rockspec/*.rockspec")
  local makefile = S.read(TOP .. "/Makefile")
  local default = makefile:match("LIBEXECDIR%s*%?=%s*(%S+)")
  lu.assertEquals(default, "$(PREFIX)/libexec/appstart")
  for dir in rockspec:gmatch('LIBEXECDIR = "([^"]+)"') do lu.assertEquals(dir, default) end
end

-- `make install` puts there what a user runs and nothing of the suite's
-- (appstart.testing, its knobs, was installed with the modules), and what
-- it put there loads: the module from its installed paths, the command.
function T.test_make_install_installs_what_users_run_and_nothing_of_the_suites()
  local stage = S.tmpname("stage")
  local build = S.helper:match("^(.*)/appstart%-helper$")
  local out = S.tmpname("install")
  -- (the build's own PREFIX and LIBEXECDIR, not set here: a change would
  -- build the core again, under the suite)
  local ok = os.execute(string.format("make -s -C %s install DESTDIR=%s LUADIR=/lua LIBDIR=/lib BINDIR=/bin B=%s"
    .. " > %s 2>&1", TOP, stage, build, out))
  lu.assertTrue(ok, S.read(out))
  local luadir, libdir = stage .. "/lua", stage .. "/lib"
  local installed = S.sh("cd " .. luadir .. " && ls appstart.lua appstart/")
  lu.assertNil(installed:find("testing", 1, true), installed)
  for name in S.sh("ls " .. TOP .. "/lua/appstart"):gmatch("(%S+)%.lua") do
    if name ~= "testing" then lu.assertStrContains(installed, name .. ".lua") end
  end
  -- (under make sanitize the core needs the sanitizers' runtime first)
  local env = S.san_prefix .. string.format("LUA_PATH='%s/?.lua' LUA_CPATH='%s/?.so'", luadir, libdir)
  local version = S.sh(env .. " lua5.4 -e 'print(require(\"appstart\").version)' 2>&1")
  lu.assertEquals(version, appstart.version .. "\n")
  lu.assertEquals(S.sh(env .. " lua5.4 " .. stage .. "/bin/appstart --version 2>&1"),
    "appstart " .. appstart.version .. "\n")
  assert(os.execute("rm -rf " .. stage))
end

function T.test_the_readme_needs_nothing_a_user_does_not_get()
  local readme = S.read(TOP .. "/README.md")
  for _, word in ipairs { "DESIGN.md", "shared notes", "../shared" } do
    lu.assertNil(readme:find(word, 1, true), "the README points at " .. word)
  end
end

--- `make bench` runs, in its quick form (every benchmark, small counts): a
-- change to what the benchmarks call (appstart.core directly, for one) is
-- seen by the suite, not by the next one to measure. Its figures are not
-- looked at here: timing is the benchmarks' own business.
function T.test_the_benchmarks_run()
  local out = S.tmpname("bench")
  local ok = os.execute("export BENCH_QUICK=1; " .. S.san_prefix .. "exec lua5.4 "
    .. S.shell_quote(TOP .. "/spec/bench/run.lua") .. " >" .. out .. " 2>&1")
  local text = S.read(out) or ""
  lu.assertTrue(ok, text)
  for _, b in ipairs { "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10" } do
    lu.assertStrContains(text, "\n| " .. b .. " ", false)
  end
end

--- The specs' temporary directory (support.lua, one per process that loads
-- it: each run, each bench worker) goes when the process ends, whether its
-- script ends, raises or calls os.exit(code, true).
function T.test_a_runs_temporary_directory_is_removed_when_it_ends()
  for _, ending in ipairs { "", "error('raised')", "os.exit(3, true)" } do
    local p = io.popen("sh -c " .. S.shell_quote(S.san_prefix .. 'exec lua5.4 -e "$0"') .. " "
      .. S.shell_quote("local S = require 'support'; print(S.tmpdir); io.stdout:flush(); " .. ending) .. " 2>/dev/null")
    local dir = p:read("l")
    p:close()
    lu.assertStrMatches(dir, "/tmp/appstart%-spec%.[%w]+")
    lu.assertNotEquals(dir, S.tmpdir)
    lu.assertNil(io.open(dir .. "/bin/fixture"), ending)
    lu.assertFalse(os.rename(dir, dir) or false, dir .. " is left after " .. (ending ~= "" and ending or "the end"))
  end
  lu.assertNotNil(io.open(S.fixture), "this run's own directory is there while it runs")
end

--- A child a test left (one that nothing of appstart's would reap) fails
-- that test, named, and is reaped by its check: the tests after it do
-- not fail for it too.
function T.test_a_child_a_test_left_fails_that_test_alone()
  -- (the pipe opened first: the descriptors are the same before and after)
  local p = io.popen("exec " .. S.shell_quote(S.fixture) .. " exit=0")
  local before = S.snapshot()
  lu.assertEquals(p:read("a"), "")
  local pid = S.children()[1]
  lu.assertNotNil(pid, "the popen'd fixture is a child of this process")
  lu.assertTrue(S.await_with_sleep(function() return not S.alive(pid) end, 5), "the fixture exited")
  local ok, err = pcall(S.assert_clean, before)
  lu.assertFalse(ok, "a zombie left passed the check")
  lu.assertStrContains(tostring(err), "children (zombies) left: " .. pid .. " (fixture, Z (zombie), pgrp ")
  S.assert_clean(before)
  p:close() -- (its process already reaped: the close has nothing to wait for)
end

return { TestProject = T }
