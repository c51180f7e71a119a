--- appstart.errors: the error value of a failed start: `code`, `message`
-- and, where known, `pid`, `status`, `errno`; tostring(err) is the message.
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "appstart.error"
Error.__tostring = function(e) return e.message end
errors.Error = Error

--- A new error value: code, message and the fields given.
function errors.new(code, message, fields)
  local e = { code = code, message = message }
  if fields then for k, v in pairs(fields) do e[k] = v end end
  return setmetatable(e, Error)
end

return errors
