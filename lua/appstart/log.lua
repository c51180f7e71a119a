--- appstart.log: the default logger, levels, and text an app chose made
-- safe to log.
local settings = require "appstart.settings"
local core = require "appstart.core"
local core_now = core.now

local log = {}

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4 }

--- Is `level` at or above the default logger's threshold?
function log.shown(level)
  return (LEVELS[level] or 4) <= (LEVELS[settings.log_level] or 2)
end

-- A line is written on stderr only while stderr takes it at once: a
-- reader that does not keep up, or never reads, must not hold the
-- launcher, which still has to time out, kill and restart. What it could
-- not take is counted, and said with the next line written. A line is cut
-- to what one write takes at once (PIPE_BUF, 4096 bytes). None is written
-- once stderr's reader has gone: the write would raise SIGPIPE, which
-- ends a script, and which the command takes for its stdout's reader
-- gone.
log.PIPE_BUF = 4096
local unshown = 0
-- descriptor -> true: a line written there in part (a terminal short of
-- room): the next one starts on a line of its own
local torn = {}

--- The line that says how many lines were not shown since the last one
-- shown ("" when none): for a line about to be shown, or a last word (the
-- command's, written however long stderr takes it: nothing waits on it
-- then), which must not leave them untold.
function log.unshown()
  -- (after a line stderr took in part: from a line of its own)
  local nl = torn[2] and "\n" or ""
  torn[2] = nil
  if unshown == 0 then return nl end
  local line = string.format("%sappstart: %d line%s not shown (stderr was not read)\n", nl, unshown,
    unshown == 1 and "" or "s")
  unshown = 0
  return line
end

--- line on fd, as much of it as fd takes at once (core.write_now: a
-- terminal may take less than POLLOUT promised, and would make a plain
-- write wait for its reader): the bytes of line that went (0 to #line).
-- A line cut short is ended by the next one's start.
function log.write_now(fd, line)
  local mark = torn[fd] and "\n" or ""
  local n = core.write_now(fd, mark .. line) or 0
  -- (nothing taken: as it was, the mark to come again)
  if n == 0 then return 0 end
  n = n - #mark
  torn[fd] = n > 0 and n < #line or nil
  return n
end

--- head .. text .. tail on stderr, text cut to fit PIPE_BUF, unless
-- stderr would make the launcher wait: true, or false (counted).
function log.show(head, text, tail)
  local takes, gone = core.writable(2)
  if gone or not takes then
    unshown = unshown + 1
    return false
  end
  local untold = unshown -- (the count the line below says)
  local told = log.unshown()
  local room = log.PIPE_BUF - #told - #head - #tail
  if #text > room then text = text:sub(1, room - 5) .. "[...]" end
  local line = told .. head .. text .. tail
  local n = log.write_now(2, line)
  if n == #line then return true end
  -- (the count not said whole: again with the next line, and this one;
  -- nothing taken: the line stderr was left in still to be ended)
  if n < #told then unshown = unshown + untold end
  if n == 0 and told:sub(1, 1) == "\n" then torn[2] = true end
  unshown = unshown + 1
  return false
end

--- The default logger: one line on stderr per message at or above
-- appstart.log_level (never waiting for stderr: see log.show).
function log.default(level, message)
  if log.shown(level) then log.show("appstart: " .. level .. ": ", message, "\n") end
end

--- Would `logger` drop a message at `level`? Only the default logger is
-- known to: a start formats several at "debug", which is off by default,
-- and skips formatting them.
function log.drops(logger, level)
  return logger == log.default and not log.shown(level)
end

--- Whether `logger` takes "debug" and "info" messages: two booleans, so a
-- start asks once (a call per message to come costs more than the message).
function log.takes(logger)
  if logger ~= log.default then return true, true end
  local threshold = LEVELS[settings.log_level] or 2
  return threshold >= 4, threshold >= 3
end

--- logger(level, string.format(fmt, ...)) unless it would drop it.
function log.f(logger, level, fmt, ...)
  if log.drops(logger, level) then return end
  logger(level, string.format(fmt, ...))
end

--- Text an app chose (its name, its STATUS=) made safe for one line of a
-- log or a terminal: control characters (escape sequences among them)
-- written as \xHH, the C1 ones too (U+0080 to U+009F in UTF-8: a UTF-8
-- terminal reads U+009B as CSI, as it reads ESC [), and so is every byte
-- that is no part of UTF-8 text (a lone 0x9B is CSI to an 8-bit
-- terminal).
local function hex(c) return string.format("\\x%02x", c:byte()) end
local function c1(c) return hex(c) .. hex(c:sub(2)) end
local utf8_len = utf8.len
local function utf8_only(text)
  if utf8_len(text) then return text end
  local parts, i = {}, 1
  while true do
    local n, bad = utf8_len(text, i)
    if n then
      parts[#parts + 1] = text:sub(i)
      return table.concat(parts)
    end
    parts[#parts + 1] = text:sub(i, bad - 1)
    parts[#parts + 1] = hex(text:sub(bad, bad))
    i = bad + 1
  end
end
function log.printable(text)
  return (utf8_only(text:gsub("%c", hex)):gsub("\xC2[\x80-\x9F]", c1))
end

--- tostring(value), never raising: nil, why where the value's __tostring
-- raises or returns no string (what a callback of the user's raised may
-- be any value).
function log.text(value)
  if type(value) == "string" then return value end
  local ok, s = pcall(tostring, value)
  if ok then return s end
  local shown, why = pcall(tostring, s)
  return nil, shown and why or "its error cannot be shown either"
end

--- What a callback of the user's raised, as text for a log: never
-- raising, and with control characters escaped as printable does, but
-- for the newlines and tabs of a traceback (the error may quote what an
-- app sent: a line of its output).
function log.raised(value)
  local s, why = log.text(value)
  if not s then return "an error that cannot be shown: " .. why end
  return (utf8_only(s:gsub("[\0-\8\11-\31\127]", hex)):gsub("\xC2[\x80-\x9F]", c1))
end

--- logger(level, text), at most once a second for each `key` of `state`
-- (a table the caller keeps, for what an app sends: it may come in a
-- flood). The next line that passes says how many were held back.
function log.limited(state, key, logger, level, text)
  if log.drops(logger, level) then return end
  local t = core_now()
  local e = state[key]
  if e then
    if t - e.at < 1 then
      e.n = e.n + 1
      return
    end
    if e.n > 0 then text = string.format("%s (%d more like it not logged)", text, e.n) end
    e.at, e.n = t, 0
  else
    state[key] = { at = t, n = 0, level = level }
  end
  logger(level, text)
end

--- How many lines of `key` log.limited held back that no line has said
-- since (a flood that ended within its second): 0 or more, forgotten
-- then, for the caller to say once what sent them is over.
function log.limited_over(state, key)
  local e = state[key]
  if not e or e.n == 0 then return 0 end
  local n = e.n
  e.n = 0
  return n
end

--- Say, once, what log.limited held back of every key of `state` that no
-- line has said since (what sent them is over: the app ended, its socket
-- closed): one line a key, at that key's level, `label` first.
function log.held_over(state, logger, label)
  for key, e in pairs(state) do
    local n = log.limited_over(state, key)
    if n > 0 and not log.drops(logger, e.level) then
      logger(e.level, string.format("%s: %d more %s line%s not logged (one a second at most)", label, n,
        log.printable(key), n == 1 and "" or "s"))
    end
  end
end

return log
