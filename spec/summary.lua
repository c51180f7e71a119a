--- The last line of `make check`: the suite's three runs (as it is, under
-- ASan and UBSan, under valgrind) summed, each run's counts before it.
-- Usage: lua5.4 spec/summary.lua FILE (lines "label passed failed skipped",
-- written by spec/run.lua). Exits non-zero on any failure or missing run.
local file = assert(arg[1], "usage: summary.lua FILE")
-- A "lint" line (written by the Makefile when luacheck fails) counts as
-- one failure; a run that wrote nothing (a build that failed, a crash) as
-- a missing one.
local passed, failed, parts, runs = 0, 0, {}, 0
local f = io.open(file)
for line in f and f:lines() or function() end do
  local label, p, n, s = line:match("^(%S+)\t(%d+)\t(%d+)\t(%d+)$")
  if label == "lint" then
    failed = failed + 1
    parts[#parts + 1] = "lint failed"
  elseif label then
    runs = runs + 1
    passed, failed = passed + tonumber(p), failed + tonumber(n)
    parts[#parts + 1] = string.format("%s %s passed%s%s", label, p,
      n ~= "0" and (", " .. n .. " failed") or "", s ~= "0" and (", " .. s .. " skipped") or "")
  end
end
if f then f:close() end
if runs < 3 then
  failed = failed + 1
  parts[#parts + 1] = "missing runs: only " .. runs .. " of 3"
end
print("make check: " .. table.concat(parts, "; "))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
