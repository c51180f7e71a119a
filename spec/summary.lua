--- The last line of `make check`: the suite's three runs (as it is, under
-- ASan and UBSan, under valgrind) summed, each run's counts before it.
-- Usage: lua5.4 spec/summary.lua FILE (lines "label passed failed skipped",
-- written by spec/run.lua). Exits non-zero on any failure or missing run.
local file = assert(arg[1], "usage: summary.lua FILE")
local passed, failed, parts = 0, 0, {}
for line in io.lines(file) do
  local label, p, f, s = line:match("^(%S+)\t(%d+)\t(%d+)\t(%d+)$")
  if label then
    passed, failed = passed + tonumber(p), failed + tonumber(f)
    parts[#parts + 1] = string.format("%s %s passed%s%s", label, p,
      f ~= "0" and (", " .. f .. " failed") or "", s ~= "0" and (", " .. s .. " skipped") or "")
  end
end
if #parts < 3 then
  failed = failed + 1
  parts[#parts + 1] = "missing runs: only " .. #parts .. " of 3"
end
print("make check: " .. table.concat(parts, "; "))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
