--- appstart.testing: knobs and probes for the test suite, apart from the
-- module's functions; nothing here is needed to use appstart.
--
-- use_pidfd([on]), has_pidfd(), exec_report(["pipe" | "auto"]), fds(),
-- reap(), reap_zombie(pid), no_cgroup_kill(on), subreaper(), hold_leaders([on]),
-- epoll_fault([errno]), adopt_pause(seconds), drop_pause(seconds),
-- probe_source_port(port), dgram_socket(path), dgram_recv(fd): see
-- csrc/ltesting.c.
return require("appstart.core").testing
