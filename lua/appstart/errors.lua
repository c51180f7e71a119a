--- appstart.errors: the values a start and an app's end are told by.
--
-- An error of a failed start has `code`, `message` and, where known, `pid`,
-- `status` (a how), `errno`, `output` (the app's last lines, where the
-- launcher read them); tostring(err) names the program too
-- ("redis-server: not ready within 0.5 s"). A how ({code = n} | {signal =
-- n} | {}) prints as what happened ("exited with code 3", "killed by
-- signal 9 (KILL)").
local core = require "appstart.core"
local printable = require("appstart.log").printable

local errors = {}

local How = {}
How.__name = "appstart.how"
local function ended(how)
  if how.code then return "exited with code " .. how.code end
  if how.signal then
    local name = core.signame(how.signal)
    return "killed by signal " .. how.signal .. (name and " (" .. name .. ")" or "")
  end
  return "exited (its exit status is not knowable: it was not the launcher's child)"
end

function How.__tostring(how)
  local text = ended(how)
  if how.watchdog then text = text .. ", by the watchdog" end
  local left = how.left
  if left and left > 0 then
    text = string.format("%s; %d other process%s of its group or cgroup signalled", text, left,
      left == 1 and "" or "es")
  end
  return text
end

--- t (a how table) made printable; nil stays nil.
function errors.how(t)
  if t then return setmetatable(t, How) end
  return nil
end

local Error = {}
Error.__index = Error
Error.__name = "appstart.error"
-- the message, then the app's last output lines (err.output), indented
Error.__tostring = function(e)
  local text = e.message
  if e._program then text = e._program .. ": " .. text end
  local lines = e.output
  if lines and lines[1] then
    local shown = {}
    -- control characters (a terminal's escapes) escaped, as in every log
    for i, line in ipairs(lines) do shown[i] = "  | " .. printable(line) end
    text = text .. "\n" .. table.concat(shown, "\n")
  end
  return text
end
errors.Error = Error

--- A new error value: code, message and the fields given. program: the
-- program's name, for tostring.
function errors.new(code, message, fields, program)
  local e = { code = code, message = message, _program = program }
  if fields then for k, v in pairs(fields) do e[k] = v end end
  if e.status then errors.how(e.status) end
  return setmetatable(e, Error)
end

--- A method's self must be its object (metatable mt): obj.method(x) for
-- obj:method(x) would take x for it, and fail on some field of x's with
-- a message that names neither. what: "app:wait"; kind: "an app"; level:
-- error's, as counted from the caller of check_self.
function errors.check_self(obj, mt, what, kind, level)
  if getmetatable(obj) ~= mt then
    error(string.format("%s: %s expected, got %s (%s(), not %s())", what, kind, type(obj), what,
      (what:gsub(":", "."))), level + 1)
  end
end

--- A value a check refused, as its message shows it: a number as it is
-- (inf, -1), a string quoted with its type (a "1" is no number 1), nil and
-- booleans as they are, anything else by its type.
function errors.shown(v)
  local t = type(v)
  if t == "string" then return 'string "' .. printable(#v > 40 and v:sub(1, 40) .. "..." or v) .. '"' end
  if t == "number" or t == "nil" or t == "boolean" then return tostring(v) end
  return t
end

return errors
