--- appstart.output: an app's stdout and stderr read by the launcher
-- ("capture", "syslog", {file = PATH, max_bytes = N, keep = K}).
--
-- The reading, the line splitting (at '\n' or 4096 bytes), the ring of the
-- last `output_keep` bytes of lines, the syslog datagrams and the file
-- rotation are the core's (appstart.core output reader): memory is bounded
-- whatever the app writes. This module decides when the pipes are read:
-- their descriptors wait in the loop (loop.listen) from the spawn until
-- the app's end, so inside appstart.run, cqueues or luv they are read as
-- data comes, and in a plain script at every call that waits (and by
-- app:tail). A descriptor leaves the loop before it is closed.
local core = require "appstart.core"
local log = require "appstart.log"
local loop = require "appstart.loop"
local settings = require "appstart.settings"

local now = core.now

local output = {}

local DEFAULT_KEEP = 65536
-- chunks (64 KiB each) read per wake-up: a flood cannot stall the loop
local CHUNKS_PER_WAKE = 16
-- seconds of on_output calls per wake-up: a slow on_output (or one that
-- raises) over a flood of short lines holds the loop this long at most;
-- the lines left of the chunk read come at the next, at once
local SLICE = 0.01
-- chunks read at the app's end, a failed start or app:tail: what the pipes
-- hold (a pipe is at most pipe-max-size, 1 MiB by default, and never
-- made larger than 4 MiB: PIPE_SIZE_MAX in output.c), with room for what a
-- child still writing adds meanwhile
local CHUNKS_AT_END = 64
local CHUNK = 65536
-- syslog levels
local LEVEL = { stdout = 6, stderr = 3 } -- info, err

--- What the launcher does with value (an option's): "capture", "syslog",
-- "file", or nil (the child opens it itself, as before).
function output.mode(value)
  if type(value) == "table" then return "file" end
  if value == "capture" or value == "syslog" then return value end
  return nil
end

local Out = {}
Out.__index = Out
Out.__name = "appstart.output"

-- Read stream: at most `chunks` chunks, however often on_output raises
-- (each time logged, once a second at most); "more" when they are read
-- and the pipe may hold more; "pending" when `until_` (a now() time;
-- nil: none) has passed with lines of a chunk read not handed over yet.
-- in_listener: called by the stream's own listener, which must not close
-- the descriptor it was woken for (cqueues still holds it until that
-- coroutine is done with it): the close comes just after. final: the app
-- has ended (see Out:finish): its last line without '\n' is a line, and
-- "eof" comes once the pipe holds nothing more, or the chunks are read;
-- the bytes read are the second result.
local function read_some(self, stream, chunks, in_listener, until_, final)
  -- a read is under way, on_output inside it (it called app:tail, or
  -- waited): what the pipe holds is read once it has returned, one line at
  -- a time, in order. A listener woken meanwhile leaves the loop until
  -- then: the pipe stays readable, and the loop would wake it again at
  -- once, spinning for as long as on_output waits.
  if self.reading then
    if in_listener then self:pause(stream) end
    return "busy"
  end
  local r = self.r
  local left, bytes = chunks, 0
  while true do
    self.reading = true
    local ok, status, e, used = pcall(r.read, r, stream, self.deliver or nil, left, until_, final)
    self.reading = false
    if self.paused then self:resume() end
    if not ok then error(status, 0) end
    if status == "error" then
      -- ^C: the call that reads is interrupted (the lines after it stay)
      if loop.interrupt(e) then error(e, 0) end
      bytes = bytes + used * CHUNK
      log.limited(self.limits, "on_output", self.log, "error",
        string.format("%s: on_output raised %s", self.program, log.raised(e)))
      -- the lines after it come next, within what is left of the budget
      -- (once spent, those of the chunk read are handed over, no more
      -- read: an app that writes as fast as it can cannot hold the loop)
      left = math.max(0, left - used)
      if until_ and now() >= until_ then return "pending", bytes end
    elseif status == "eof" or status == nil then
      if status == nil then self.log("error", string.format("%s: %s", self.program, tostring(e))) end
      self:stop(stream, in_listener)
      return status, bytes + (status and e or 0) -- (nil, message: a read that failed)
    else
      return status, bytes + e
    end
  end
end

function Out:drain(stream, chunks, in_listener, until_, final)
  local status, bytes = read_some(self, stream, chunks, in_listener, until_, final)
  -- the app ended while on_output ran (it waited, and saw the end): the
  -- end comes now that it has returned, from this read's caller (not a
  -- timer: inside on_output no event loop of the caller's is at hand)
  local e = self.ending
  if e and e.deferred and not self.reading then
    e.deferred = false
    self:end_step(in_listener)
  end
  return status, bytes
end

-- stream's listener out of the loop while on_output runs (see drain).
function Out:pause(stream)
  local h = self.handles[stream]
  if h and not self.paused_streams[stream] then
    self.paused_streams[stream] = true
    self.paused = true
    loop.unwatch(h)
    if self.waits then self.waits.drop(self.r:fd(stream)) end
  end
end

-- The streams paused meanwhile wait in the loop again (unless stopped),
-- and what the reader holds comes at once (a pipe with nothing more to
-- read would not wake its listener).
function Out:resume()
  self.paused = false
  for _, stream in ipairs { "stdout", "stderr" } do
    if self.paused_streams[stream] then
      self.paused_streams[stream] = false
      if self.handles[stream] then
        self.handles[stream] = self:listen_to(stream)
        if self.waits then self.waits.take(self.r:fd(stream)) end
        self:go_on()
      end
    end
  end
end

-- A wake-up of a stream's: one slice of reading and on_output calls.
-- in_listener: as drain's.
function Out:wake(stream, in_listener)
  local status = self:drain(stream, CHUNKS_PER_WAKE, in_listener, now() + SLICE)
  if status == "pending" then self:go_on() end
  if status ~= nil and self.reports then self:report_drops() end
end

-- Lines read and not handed over yet (a slice ran out, or on_output
-- waited) come at the loop's next turn: a wake-up of a stream still
-- read, from a timer due now (once, however many ask).
function Out:go_on()
  if self.cont or self.closed then return end
  self.cont = loop.at(now(), function()
    self.cont = false
    if self.ending then return self:end_step() end
    local stream = self.handles.stdout and "stdout" or self.handles.stderr and "stderr"
    if stream and not self.paused_streams[stream] then self:wake(stream, false) end
  end)
end

--- A start's step outside any loop (start.lua's watch_output): each
-- stream read as a listener's wake-up reads it (CHUNKS_PER_WAKE chunks,
-- a SLICE of on_output calls at most): true when lines or bytes are left
-- for the next step (due at once; a call that waits takes them too).
function Out:step_read()
  local left = false
  for _, stream in ipairs { "stdout", "stderr" } do
    if self.handles[stream] and not self.paused_streams[stream] then
      if self.reading then
        -- (inside on_output, the start stepped again: the stream leaves
        -- the start's waits until on_output has returned, as a listener
        -- leaves the loop, lest a wait there spin on the pipe)
        self:pause(stream)
      else
        local status = self:drain(stream, CHUNKS_PER_WAKE, false, now() + SLICE)
        if status == "pending" or status == "more" then left = true end
      end
    end
  end
  if left then self:go_on() end
  if self.reports then self:report_drops() end
  return left
end

--- Read what the pipes hold now (app:tail). Inside a loop (appstart.run,
-- a coroutine of cqueues' or luv's, a callback of uv.run's), which reads
-- them as data comes, a wake-up's worth a stream (CHUNKS_PER_WAKE chunks,
-- a SLICE of on_output calls), the rest left to the loop's next turn: the
-- loop is held no longer than by a wake-up. In a plain script, all they
-- hold.
function Out:drain_all()
  local in_loop = loop.inside()
  local left = false
  for _, stream in ipairs { "stdout", "stderr" } do
    if self.handles[stream] then
      if in_loop then
        self:wake(stream, false)
      else
        -- (left: more to read, lines not handed over, a read under way
        -- that this one, inside on_output, could not make)
        local status = self:drain(stream, CHUNKS_AT_END)
        if status ~= "again" and status ~= "eof" and status ~= nil then left = true end
      end
    end
  end
  -- (in a plain script, all read and handed over: the continuation a
  -- step left for what it had not, due at the next call that waits, has
  -- nothing to do)
  if not in_loop and not left and self.cont and not self.ending then
    loop.unwatch(self.cont)
    self.cont = false
  end
  if self.reports then self:report_drops() end
end

--- The app has ended: what its pipes hold now is its last output, handed
-- over at once (the last line without '\n' too), then the pipes are closed
-- (the ring stays): a child that keeps one open writes after the app's
-- end, and nobody reads that (it gets SIGPIPE, as after app:close()).
-- done() then (on_exit), and what was lost is logged, whatever is left.
-- Called from within on_output (which waited, and saw the end), the rest
-- comes once it has returned (Out:drain). Also for a failed start.
function Out:finish(done)
  self.ending = { done = done or false, left = { stdout = CHUNKS_AT_END * CHUNK, stderr = CHUNKS_AT_END * CHUNK } }
  -- what the pipes hold now is the app's last output, read in full; what
  -- a child that keeps them open writes from now on is not (it would be
  -- read while on_output runs, and glued to the app's unfinished line)
  self.r:bound_end()
  -- the listeners leave the loop: the end reads what is there
  for _, stream in ipairs { "stdout", "stderr" } do
    local h = self.handles[stream]
    if h then
      if h ~= true then loop.unwatch(h) end
      self.handles[stream] = true
    end
    self.paused_streams[stream] = false
  end
  self.paused = false
  self:end_step()
end

-- The end (Out:finish): what the pipes hold, then done; once on_output
-- has returned when it runs now (Out:drain). later: called by a stream's
-- listener (its descriptor is closed just after: see drain).
function Out:end_step(later)
  local e = self.ending
  if not e or self.closed or e.over then return end
  if self.reading then
    e.deferred = true
    return
  end
  for _, stream in ipairs { "stdout", "stderr" } do
    if self.handles[stream] then
      -- (an on_output that raises ends a read: the rest comes at the next)
      local status
      repeat
        local left = e.left[stream]
        local bytes
        status, bytes = read_some(self, stream, math.max(0, left) // CHUNK, later, nil, true)
        e.left[stream] = left - (bytes or 0)
      until status ~= "pending" and status ~= "more"
    end
  end
  e.over = true
  self:close(later)
end

-- Lost syslog lines and file bytes, when they have grown: once a second
-- at most while the app runs (an app can make syslog refuse its lines, by
-- a flood), each line with what was lost since the last; at the end
-- (final) whatever is left.
function Out:report_drops(final)
  local t = now()
  if not final and t - (self.drops_at or -math.huge) < 1 then return end
  local lines, bytes, why, syslog_why = self.r:dropped()
  if lines > self.dropped_lines or bytes > self.dropped_bytes then self.drops_at = t end
  if lines > self.dropped_lines then
    -- (why: the last lost line's error, ENOBUFS a daemon too slow, no
    -- daemon ENOENT or ECONNREFUSED)
    self.log("warn", string.format("%s: %d output line%s not taken by syslog (%s%s)", self.program,
      lines - self.dropped_lines, lines - self.dropped_lines == 1 and "" or "s", self.syslog_socket,
      syslog_why and (": " .. syslog_why) or ""))
    self.dropped_lines = lines
  end
  if bytes > self.dropped_bytes then
    self.log("warn", string.format("%s: %d bytes of output not written to its file%s", self.program,
      bytes - self.dropped_bytes, why and (": " .. why) or ""))
    self.dropped_bytes = bytes
  end
end

--- Stop reading stream: out of the loop, then closed (later, when
-- asked from its own listener).
function Out:stop(stream, later)
  local h = self.handles[stream]
  if not h then return end
  self.handles[stream] = false
  if h ~= true then loop.unwatch(h) end -- (true: out of the loop, at the end)
  -- (out of a start's waits too: see start.lua's watch_output)
  if self.waits then self.waits.drop(self.r:fd(stream)) end
  if self.cont and not self.handles.stdout and not self.handles.stderr and not self.ending then
    loop.unwatch(self.cont) -- (nothing left to read: every line was handed over)
    self.cont = false
  end
  if later then
    loop.at(now(), function() self.r:close_stream(stream) end)
  else
    self.r:close_stream(stream)
  end
end

--- Stop reading; the ring stays for tail. Safe to call twice. What was
-- lost and not logged yet is logged now; an end under way (Out:finish)
-- hands over what is left first (app:close() after app:wait() has every
-- line), and is done. later: as end_step's.
function Out:close(later)
  if self.closed then return end
  local e = self.ending
  if e and not e.over and not self.reading then
    self:end_step(later)
    if self.closed then return end
  elseif not e or not e.over then
    -- the app closed (app:close), or inside on_output (it waited for the
    -- end, then closed the app): what the pipes hold goes to the ring
    -- (and a file, syslog), not handed over, the last line without '\n'
    -- too (nothing more will be read)
    for _, stream in ipairs { "stdout", "stderr" } do
      if self.handles[stream] then
        local chunks = e and math.max(0, e.left[stream]) // CHUNK or CHUNKS_AT_END
        pcall(self.r.read, self.r, stream, nil, chunks, nil, true)
      end
    end
  end
  self.closed = true
  if self.cont then
    loop.unwatch(self.cont)
    self.cont = false
  end
  self:stop("stdout", later)
  self:stop("stderr", later)
  if later then
    loop.at(now(), function() self.r:close() end)
  else
    self.r:close()
  end
  -- (a log function that raises there, a ^C in it, leaves the end done
  -- all the same: on_exit was waiting for it, and nothing calls this
  -- again once closed)
  local ok, err = pcall(Out.last_words, self)
  self.ending = false
  if e and e.done then e.done() end
  if not ok then error(err, 0) end
end

-- What was lost and not said yet, said as the output closes.
function Out:last_words()
  if self.reports then self:report_drops(true) end
  -- (what on_output raised in its last second was held back: said now)
  local held = log.limited_over(self.limits, "on_output")
  if held > 0 and not log.drops(self.log, "error") then
    self.log("error", string.format("%s: on_output raised %d more time%s (logged once a second at most)",
      self.program, held, held == 1 and "" or "s"))
  end
end

--- The last n lines (read what is there first).
function Out:tail(n)
  if self.ending then
    self:end_step() -- (on_output waited, and the app ended meanwhile)
  elseif not self.closed then
    self:drain_all()
  end
  return self.r:tail(n)
end

--- The syslog tag's pid: the app's (0 until it is known: through a
-- helper, a line may be the helper's or the app's until then).
function Out:set_pid(pid)
  if self.syslog then self.r:tag(self.syslog, pid) end
end

-- A stream's destination: the reader told where its lines go.
local function configure(r, stream, value, mode, keep_level)
  if mode == "syslog" then
    return r:syslog(stream, settings.syslog_socket, keep_level)
  elseif mode == "file" then
    return r:file(stream, value.file, value.max_bytes or 0, value.keep or 1)
  end
  return true
end

--- The reader for opts (checked), when the launcher reads either stream:
-- out, stdout, stderr (what core.start gets for them: the pipes' write
-- ends where the launcher reads). out is false when it reads neither; nil,
-- message, errno when a pipe, the file or the syslog socket cannot be
-- made. app: the app object when made early (on_output gets it), program:
-- the start's name in messages (argv[1]'s basename, its control
-- characters escaped), name: that basename as it is (syslog's tag writes
-- what it cannot take '_'), logger: the logger. Raises, nothing spawned, when
-- stdout's and stderr's files are one file under two names (the options'
-- check compares the names): an argument error as that check's, naming
-- `who` (the function the user called; "appstart" if not given) at error
-- level `level` (as options.assert counts it; 0, no position, if not
-- given).
function output.open(opts, app, program, name, logger, who, level)
  local stdout, stderr = opts.stdout, opts.stderr
  local so = output.mode(stdout)
  local se = stderr == "stdout" and "merge" or output.mode(stderr)
  if not so and not se then return false, stdout, stderr end
  local r = core.output(opts.output_keep or DEFAULT_KEEP)
  local function fail(message, errno)
    r:close()
    return nil, message, errno
  end
  -- (the app's own file may be in a sticky directory all may write)
  if opts.user ~= nil then r:app_uid(opts._uid) end
  local out_arg, err_arg = stdout, stderr
  if so then
    local w, message, errno = r:pipe("stdout", so)
    if not w then return fail(message, errno) end
    out_arg = w
    local ok
    ok, message, errno = configure(r, "stdout", stdout, so, LEVEL.stdout)
    if not ok then return fail(message, errno) end
  end
  if se == "merge" then
    err_arg = out_arg
  elseif se then
    local w, message, errno = r:pipe("stderr", se)
    if not w then return fail(message, errno) end
    err_arg = w
    local ok
    ok, message, errno = configure(r, "stderr", stderr, se, LEVEL.stderr)
    if not ok then return fail(message, errno) end
  end
  -- "log" and "./log", or two names of one file: two writers rotating it
  -- would each lose the other's lines (as the options' check says)
  if so == "file" and se == "file" and r:same_file() then
    r:close()
    error(string.format("%s: field 'stderr': the same file as stdout's: use stderr = 'stdout'", who or "appstart"),
      level or 0)
  end
  local self = setmetatable({ r = r, app = app or false, log = logger, program = program,
    handles = { stdout = false, stderr = false }, closed = false, deliver = false, reading = false,
    paused = false, paused_streams = { stdout = false, stderr = false }, limits = {}, cont = false, ending = false,
    syslog = (so == "syslog" or se == "syslog") and name, -- (its tag's name)
    syslog_socket = settings.syslog_socket, -- (where its lines went: the setting at its start)
    -- syslog or a file may lose what the app writes: logged as it goes
    reports = so == "syslog" or se == "syslog" or so == "file" or se == "file",
    dropped_lines = 0, dropped_bytes = 0,
    -- a start's waits the pipes are in (start.lua's watch_output): drop(fd)
    -- before one is closed or while it is paused, take(fd) as it resumes
    waits = false,
  }, Out)
  local on_output = opts.on_output
  if on_output then
    self.deliver = function(stream, line) on_output(self.app, stream, line) end
  end
  return self, out_arg, err_arg
end

--- The child has its ends: the launcher's are closed, and the pipes wait
-- in the loop from now on.
function Out:listen()
  self.r:close_writers()
  for _, stream in ipairs { "stdout", "stderr" } do
    if self.r:fd(stream) then self.handles[stream] = self:listen_to(stream) end
  end
end

-- stream's listener: reads at most CHUNKS_PER_WAKE chunks a wake-up, for
-- a SLICE of on_output calls at most, and logs losses (syslog, a file)
-- once a second at most.
function Out:listen_to(stream)
  return loop.listen(self.r:fd(stream), function()
    -- (a wake-up due at this turn already: one slice a turn)
    if not self.cont then self:wake(stream, true) end
  end)
end

return output
