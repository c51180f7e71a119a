--- The core's Lua binding (appstart.core, which a user may require): what a
-- caller passes never crashes it, corrupts memory, leaks a descriptor or
-- blocks for ever; a wrong argument is an argument error naming it.
local lu = require "luaunit"
local S = require "support"

local core = S.core

local function blocked()
  return core.proc_status(core.pid()).blocked
end

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok, "accepted")
  lu.assertStrContains(tostring(err), pattern)
end

local T = {}

function T.tearDown() S.kill_strays() end

-- Two signals objects on one signal: the first closed must not unblock it
-- while the other still reads it (its default action, the end of the
-- process, came instead).
function T.test_signals_objects_closed_out_of_order_keep_the_signal_blocked_until_the_last()
  local mask = blocked()
  local a = assert(core.signals { "USR2" })
  local b = assert(core.signals { "USR2" })
  a:close()
  lu.assertNotEquals(blocked(), mask, "USR2 stays blocked while b reads it")
  assert(os.execute("kill -USR2 " .. core.pid()))
  lu.assertTrue(core.wait_readable(b:fd(), 5))
  local got = b:read()
  lu.assertEquals(#got, 1)
  lu.assertEquals(got[1].signal, core.signum("USR2"))
  b:close()
  lu.assertEquals(blocked(), mask, "unblocked once the last has gone")
end

-- signalfd failing (no descriptor left): nil, message, errno, and nothing
-- left blocked (until a collection, the signals stayed blocked). In a
-- child at a descriptor limit of 32 (here the limit may be a million).
function T.test_signals_that_cannot_be_made_leave_nothing_blocked()
  local out = S.run_child({ nofile = 32, timeout = 30 }, "binding_signals_out_of_descriptors")
  lu.assertEquals(out, "signalfd: Too many open files\t24\tsame\n")
end

-- A signal the process ignores is left alone: not blocked (the kernel
-- discards it as before), not read, and not unblocked on close (a
-- launcher under nohup forwarded the SIGHUP that could not end it). In a
-- child started with SIGUSR2 ignored.
function T.test_signals_leaves_a_signal_the_process_ignores_alone()
  local out = S.run_child({ ignore = "USR2", timeout = 30 }, "binding_signals_ignored")
  lu.assertEquals(out, "USR2 ignored\tUSR1 blocked\tUSR2 not blocked\tread USR1\tsame\tUSR2 ignored\n")
end

-- Numbers past what the C side takes are argument errors, never cast: fd
-- 2^32 + 1 was fd 1 (closed), uid 2^32 was root's.
function T.test_integers_out_of_range_are_argument_errors_not_cast()
  for _, fn in ipairs { core.close, core.dup, core.isatty, core.writable } do
    raises("not a descriptor", fn, 4294967297)
    raises("not a descriptor", fn, -1)
  end
  raises("not a descriptor", core.wait_readable, -2, 0)
  raises("a timeout is needed", core.wait_readable, -1) -- (-1 is a sleep: it never returned)
  lu.assertFalse(core.wait_readable(-1, 0))
  raises("out of range", core.user, 4294967296)
  raises("out of range", core.user, -4294967296)
  raises("out of range", core.group, 4294967296)
  lu.assertNotNil(io.stdout:write(""), "stdout still open")
  local p = core.poller()
  raises("not a descriptor", p.add, p, 4294967297, 1)
  p:close()
end

-- A NaN timeout waited for ever (no comparison holds for it).
function T.test_a_nan_timeout_is_an_argument_error()
  raises("NaN", core.wait_readable, 0, 0 / 0)
  local p = core.poller()
  raises("NaN", p.wait, p, 0 / 0, {})
  p:close()
  local s = core.start({ "/bin/true" }, nil, nil, nil, nil, nil, "none")
  s:close()
  raises("NaN", s.wait, s, 0 / 0)
end

-- A path with a NUL byte was cut there: another file was opened.
function T.test_a_nul_byte_in_a_path_is_an_argument_error()
  local o = core.output(100)
  local dir = S.tmpname("nul")
  assert(os.execute("mkdir " .. dir))
  raises("contains a NUL byte", o.file, o, "stdout", dir .. "/app.log\0/x", 100, 1)
  raises("contains a NUL byte", o.syslog, o, "stdout", "/dev/log\0x", 3)
  raises("contains a NUL byte", o.tag, o, "prog\0x", 1)
  o:close()
  lu.assertNil(S.read(dir .. "/app.log"), "the cut name was opened")
  raises("contains a NUL byte", core.user, "root\0x")
  raises("contains a NUL byte", core.notify, "READY=1", "/tmp/x\0y")
  raises("contains a NUL byte", core.notify_peer, "/tmp/x\0y")
end

-- core.notify_peer: a socket connected to the manager's, that polls
-- writable once its queue, full, has room; nothing there, or a path that
-- names no socket: nil, message, errno, and no descriptor left open.
function T.test_notify_peer_is_writable_once_a_full_queue_has_room()
  local before = S.snapshot()
  local dir = S.tmpname("peer")
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/manager"
  local manager = assert(S.testing.dgram_socket(path))
  local peer = assert(core.notify_peer(path))
  local poller = assert(core.poller())
  assert(poller:add(peer, 1, "w"))
  local full = 0
  while core.notify("X=1", path) do full = full + 1 end
  lu.assertTrue(full > 0)
  lu.assertFalse(core.wait_readable(poller:fd(), 0), "the poller says the full queue has room")
  lu.assertEquals(S.testing.dgram_recv(manager), "X=1")
  lu.assertTrue(core.wait_readable(poller:fd(), 5), "writable once read")
  lu.assertTrue(core.notify("Y=1", peer), "sent on the connected socket")
  for _ = 1, full - 1 do lu.assertEquals(S.testing.dgram_recv(manager), "X=1") end
  lu.assertEquals(S.testing.dgram_recv(manager), "Y=1")
  -- the manager's socket closed: refused
  core.close(manager)
  local sent, _, refused = core.notify("Y=1", peer)
  lu.assertNil(sent)
  lu.assertEquals(refused, 111)
  poller:close()
  core.close(peer)
  for _, bad in ipairs { { dir .. "/none", 2 }, { "relative", 22 } } do
    local fd, message, errno = core.notify_peer(bad[1])
    lu.assertNil(fd)
    lu.assertStrContains(message, bad[1])
    lu.assertEquals(errno, bad[2])
  end
  S.assert_clean(before)
end

-- A stream's file set twice kept the first one's descriptors for good.
function T.test_a_second_file_for_a_stream_is_refused_and_leaks_nothing()
  local before = S.snapshot()
  local dir = S.tmpname("twice")
  assert(os.execute("mkdir " .. dir))
  local o = core.output(256)
  lu.assertTrue(o:file("stdout", dir .. "/a.log", 1000, 2))
  local ok, why = o:file("stdout", dir .. "/b.log", 1000, 2)
  lu.assertNil(ok)
  lu.assertStrContains(why, "has a file already")
  o:close()
  S.assert_clean(before)
end

-- A read of a huge number of chunks: the byte count overflowed, and every
-- call read nothing ("more", for ever).
function T.test_a_read_of_too_many_chunks_is_an_argument_error()
  local o = core.output(4096)
  local w = assert(o:pipe("stdout", "capture"))
  raises("out of range", o.read, o, "stdout", function() end, math.maxinteger)
  raises("NaN", o.read, o, "stdout", function() end, 1, 0 / 0)
  core.close(w)
  o:close()
end

-- A starter gives its memory back as its app is taken: a use of it after
-- is an error, not a read of freed memory (ASan and valgrind, under make
-- sanitize and make valgrind, would say); what a wait asks (a caller
-- still waiting when another finished the start) has a closed starter's
-- answer: no descriptors, no events, a wait over at once; closing and
-- printing it are harmless, and its collection frees nothing twice.
function T.test_a_starter_whose_app_was_taken_is_closed_for_good()
  local before = S.snapshot()
  local s = core.start({ S.fixture, "pause" }, nil, nil, "null", "null", "null", "none")
  local deadline = core.now() + 5
  while s:step() == "wait" do
    lu.assertTrue(core.now() < deadline, "never ready")
    core.wait_readable(s:fd() or -1, 0.01)
  end
  local pid = s:outcome()
  local app = assert(s:take())
  for _, method in ipairs { "step", "result", "outcome", "take", "stop", "stopped", "app_fd", "app_ended" } do
    raises("closed, its app taken", s[method], s)
  end
  lu.assertEquals(select("#", s:fds()), 0)
  lu.assertNil(s:event())
  lu.assertNil(s:fd(true))
  local fd, message = s:fd()
  lu.assertNil(fd)
  lu.assertStrContains(message, "Bad file descriptor")
  lu.assertTrue(s:wait(5))
  s:unwatch(0)
  lu.assertEquals(tostring(s), "appstart.starter(closed, its app taken)")
  s:close()
  s = nil -- luacheck: ignore
  collectgarbage()
  collectgarbage()
  lu.assertEquals(app:pid(), pid)
  app:signal("KILL")
  while not app:poll() do core.wait_readable(app:fd() or -1, 0.01) end
  app:close()
  S.assert_clean(before)
end

return { TestBinding = T }
