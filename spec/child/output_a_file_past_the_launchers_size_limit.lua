--- Run by spec/output_spec.lua, in
-- test_a_file_past_the_launchers_size_limit_loses_bytes_not_the_launcher,
-- under a file size limit (ulimit -f): starts an app whose stdout goes to
-- a file it writes past that limit, plain and inside appstart.run, and
-- waits for its end. Prints, tab-separated, "CASE\tCODE\tLOST" for each
-- (CODE the app's exit code, LOST the warnings about bytes not written to
-- its file, "|"-joined), then "done": a launcher killed by SIGXFSZ prints
-- neither. Argument: the directory of the files.
local appstart = require "appstart"

local dir = arg[1]

local function case(name)
  local lost = {}
  local app = assert(appstart.start { argv = { "/bin/sh", "-c", "seq 400000; exit 3" }, ready = "none",
    stdout = { file = dir .. "/" .. name .. ".log", max_bytes = 100000, keep = 1 },
    log = function(level, message)
      if level == "warn" and message:find("not written to its file", 1, true) then lost[#lost + 1] = message end
    end })
  local how = app:wait(10)
  app:close()
  io.write(name, "\t", tostring(how and how.code), "\t", table.concat(lost, "|"), "\n")
  io.flush()
end

case("plain")
appstart.run(function() case("run") end)
print("done")
