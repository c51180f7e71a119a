# appstart: build, test, install.
#
#   make            build the module and the helper (what is installed)
#   make fixtures   build the test programs (make test does)
#   make run        the main job: start redis-server through the handshake
#   make check      install missing Debian packages, build, lint, test,
#                   sanitize, valgrind; the sum of the three runs last
#   make test       run the test suite (spec/run.lua)
#   make sanitize   the suite with ASan + UBSan builds
#   make valgrind   the suite under valgrind
#   make bench      benchmarks (spec/bench)
#   make soak       10,000 start/terminate cycles (spec/soak.lua)
#   make install    PREFIX, DESTDIR, LUADIR, LIBDIR, BINDIR, LIBEXECDIR,
#                   SYSCONFDIR (the helper's policy file); CPPFLAGS, CFLAGS
#                   and LDFLAGS are honoured

LUA          ?= lua5.4
LUA_VERSION  ?= 5.4
LUA_INCDIR   ?= /usr/include/lua$(LUA_VERSION)
PREFIX       ?= /usr/local
DESTDIR      ?=
LUADIR       ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LIBDIR       ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
BINDIR       ?= $(PREFIX)/bin
LIBEXECDIR   ?= $(PREFIX)/libexec/appstart
SYSCONFDIR   ?= /etc
VERSION      := $(shell cat VERSION)

CC           ?= cc
CFLAGS       ?= -O2 -g
WARNINGS     := -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes
BASE_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARNINGS) -DAPPSTART_VERSION='"$(VERSION)"'
LIBFLAG      ?= -shared

B            ?= build
CORE_SRC     := csrc/sys.c csrc/procfs.c csrc/children.c csrc/process.c \
                csrc/spawn.c csrc/pidrec.c csrc/readyline.c csrc/notify.c \
                csrc/channel.c csrc/notifysock.c csrc/starter.c \
                csrc/cgroup.c csrc/tree.c csrc/listener.c csrc/output.c
BINDING_SRC  := csrc/lcore.c csrc/lprocess.c csrc/lstarter.c csrc/lpoller.c \
                csrc/lsignals.c csrc/ltesting.c csrc/llistener.c csrc/loutput.c \
                csrc/lprobe.c csrc/ltimers.c
HEADERS      := $(wildcard csrc/*.h)
FIXTURES     := $(B)/fixtures/fixture $(B)/fixtures/fakesetuid.so $(B)/fixtures/fakesetgroups.so \
                $(B)/fixtures/preloadprobe.so $(B)/fixtures/procfault.so $(B)/fixtures/oldpidfd.so \
                $(B)/fixtures/heldbind.so \
                $(B)/fixtures/luahost \
                $(B)/fixtures/appstart-helper-policytest \
                $(B)/fixtures/appstart-helper-other \
                $(B)/fixtures/baseline

# the suite runs against the tree: modules from lua/ and $(B)/; the run's
# mark (the shell's pid) tells its processes from another run's
TEST_ENV = APPSTART_SPEC_RUN=$$$$ LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;' \
           LUA_CPATH='$(CURDIR)/$(B)/?.so;;' \
           APPSTART_HELPER='$(CURDIR)/$(B)/appstart-helper' \
           APPSTART_FIXTURES='$(CURDIR)/$(B)/fixtures' \
           PATH='$(CURDIR)/$(B):$(PATH)'

.PHONY: FORCE all fixtures deps run check test lint sanitize valgrind bench soak fuzz install uninstall clean

all: $(B)/appstart/core.so $(B)/appstart-helper

fixtures: $(FIXTURES)

# the helper's installed path is compiled in: rebuild when it changes
$(B)/.libexecdir: FORCE
	@mkdir -p $(B)
	@echo '$(LIBEXECDIR)' | cmp -s - $@ || echo '$(LIBEXECDIR)' > $@

FORCE:

$(B)/appstart/core.so: $(CORE_SRC) $(BINDING_SRC) $(HEADERS) $(B)/.libexecdir VERSION
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC -I$(LUA_INCDIR) \
	  -DAPPSTART_HELPER_PATH='"$(LIBEXECDIR)/appstart-helper"' \
	  $(LIBFLAG) $(LDFLAGS) -o $@ $(CORE_SRC) $(BINDING_SRC)

# The helper may be installed setuid root: built hardened (a packager's
# CPPFLAGS, CFLAGS and LDFLAGS come after, and win); the policy it obeys
# is compiled in, never taken from the caller.
HELPER_HARDENING ?= -D_FORTIFY_SOURCE=2 -fstack-protector-strong -Wl,-z,relro,-z,now
$(B)/appstart-helper: csrc/helper.c $(B)/.sysconfdir VERSION
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(HELPER_HARDENING) $(CPPFLAGS) $(CFLAGS) \
	  -DAPPSTART_HELPER_POLICY='"$(SYSCONFDIR)/appstart/helper.policy"' $(LDFLAGS) -o $@ $<

$(B)/.policytestdir: FORCE
	@mkdir -p $(B)
	@echo '$(POLICYTEST_DIR)' | cmp -s - $@ || echo '$(POLICYTEST_DIR)' > $@

$(B)/.sysconfdir: FORCE
	@mkdir -p $(B)
	@echo '$(SYSCONFDIR)' | cmp -s - $@ || echo '$(SYSCONFDIR)' > $@

# the same helper with a policy file the suite writes (spec/helper_spec.lua
# runs setuid copies of it as nobody, and a file-capabilities copy reads it
# as nobody: so it lives under /run, root's and reachable, in a directory of
# this build's own)
POLICYTEST_DIR := /run/appstart-spec-$(shell printf %s '$(CURDIR)/$(B)' | cksum | cut -d' ' -f1)
$(B)/fixtures/appstart-helper-policytest: csrc/helper.c $(B)/.policytestdir
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) \
	  -DAPPSTART_HELPER_POLICY='"$(POLICYTEST_DIR)/helper.policy"' -o $@ $<

# the helper of another version than the module's, as an upgrade of one
# of the two leaves it (spec/helper_spec.lua)
$(B)/fixtures/appstart-helper-other: csrc/helper.c $(B)/.sysconfdir
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -UAPPSTART_VERSION -DAPPSTART_VERSION='"0.0.0-other"' $(CFLAGS) \
	  -DAPPSTART_HELPER_POLICY='"$(SYSCONFDIR)/appstart/helper.policy"' -o $@ $<

$(B)/fixtures/%.so: spec/fixtures/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -g -fPIC -shared -o $@ $<

# a Lua host whose allocator fails on request (spec/alloc_spec.lua)
$(B)/fixtures/luahost: spec/fixtures/luahost.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -g -I$(LUA_INCDIR) -o $@ $< -llua$(LUA_VERSION)

# fixtures are test apps, never sanitized: they crash on purpose
$(B)/fixtures/%: spec/fixtures/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $<

deps:
	sh .ci/deps

run: deps all
	$(TEST_ENV) $(LUA) spec/demo.lua

# everything CI runs (about 25 minutes on 2 cores): lint, the suite, the
# suite under ASan+UBSan, and the suite under valgrind, then the sum of the
# three runs as the last line. A step that fails does not stop the others
# (each says what failed); the sum counts it (lint's warnings as one
# failure, a run that said nothing as a missing one) and fails the target.
check: deps all
	@rm -f $(CURDIR)/$(B)/check-summary
	@$(MAKE) --no-print-directory lint || printf 'lint\t0\t1\t0\n' >> $(CURDIR)/$(B)/check-summary
	-$(MAKE) --no-print-directory test APPSTART_SUMMARY=$(CURDIR)/$(B)/check-summary APPSTART_SUMMARY_LABEL=test
	-$(MAKE) --no-print-directory sanitize APPSTART_SUMMARY=$(CURDIR)/$(B)/check-summary APPSTART_SUMMARY_LABEL=sanitize
	-$(MAKE) --no-print-directory valgrind APPSTART_SUMMARY=$(CURDIR)/$(B)/check-summary APPSTART_SUMMARY_LABEL=valgrind
	@$(LUA) spec/summary.lua $(CURDIR)/$(B)/check-summary

test: all fixtures
	$(TEST_ENV) $(LUA) spec/run.lua

lint:
	luacheck -q lua spec lua/bin/appstart

sanitize:
	$(MAKE) B=build-san CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DAPPSTART_SANITIZE_BUILD' all fixtures
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/spec/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory B=build-san test

# valgrind 3.19 knows no pidfd_open (syscall 434): under it the suite takes
# the kill(pid, 0) fallback, and valgrind's warnings about the call go to
# $(B)/valgrind.log with its other messages (printed when it finds errors)
valgrind: all fixtures
	@rm -f $(B)/valgrind.log
	@$(TEST_ENV) APPSTART_VFORK_IS_FORK=1 valgrind --quiet --error-exitcode=86 --leak-check=full \
	  --errors-for-leak-kinds=definite --track-fds=no --trace-children=no --child-silent-after-fork=yes \
	  --log-file=$(B)/valgrind.log $(LUA) spec/run.lua || \
	  { grep -v 'syscall: 434\|You may be able to write\|README_MISSING_SYSCALL\|consider this a bug\|valgrind.org/support' \
	      $(B)/valgrind.log; exit 1; }

$(B)/fixtures/baseline: spec/bench/baseline.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $<

soak: all fixtures
	$(TEST_ENV) $(LUA) spec/soak.lua

bench: all fixtures
	$(TEST_ENV) $(LUA) spec/bench/run.lua

# libFuzzer targets over the parsers (and the output reader's line splitting). Each runs FUZZ_SECONDS; what it
# grows is merged (minimised) back into spec/fuzz/corpus/TARGET.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := pidrec readyline notify output
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined

build-fuzz/fuzz_%: spec/fuzz/fuzz_%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< csrc/pidrec.c csrc/readyline.c csrc/notify.c csrc/sys.c csrc/output.c

fuzz: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  rm -rf build-fuzz/new-$$t && mkdir -p build-fuzz/new-$$t && \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=20000 -timeout=5 -rss_limit_mb=2048 \
	    -print_final_stats=1 build-fuzz/new-$$t spec/fuzz/corpus/$$t 2>build-fuzz/$$t.log || \
	    { tail -40 build-fuzz/$$t.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^stat::peak_rss" build-fuzz/$$t.log; \
	  build-fuzz/fuzz_$$t -merge=1 -max_len=20000 spec/fuzz/corpus/$$t build-fuzz/new-$$t 2>/dev/null; \
	done

# the script's interpreter: a path as it is, a name through env
SHEBANG = $(if $(findstring /,$(LUA)),$(LUA),/usr/bin/env $(LUA))

install: all
	install -d $(DESTDIR)$(LUADIR)/appstart $(DESTDIR)$(LIBDIR)/appstart \
	  $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 644 lua/appstart.lua $(DESTDIR)$(LUADIR)/appstart.lua
	# (but appstart.testing: the suite's knobs, from the tree only)
	install -m 644 $(filter-out lua/appstart/testing.lua,$(wildcard lua/appstart/*.lua)) \
	  $(DESTDIR)$(LUADIR)/appstart/
	install -m 755 $(B)/appstart/core.so $(DESTDIR)$(LIBDIR)/appstart/core.so
	install -m 755 $(B)/appstart-helper $(DESTDIR)$(LIBEXECDIR)/appstart-helper
	# the interpreter, and where the script's own modules are (DESTDIR is
	# only where they are put now, not where they will be run from);
	# SCRIPT_DIRS=no: the installer moves the modules and sets the paths
	# itself (luarocks' wrapper of the script)
	if [ "$(SCRIPT_DIRS)" = no ]; then \
	  sed -e '1s|.*|#!$(SHEBANG)|' lua/bin/appstart > $(DESTDIR)$(BINDIR)/appstart; \
	else \
	  sed -e '1s|.*|#!$(SHEBANG)|' \
	    -e 's|^local LUADIR, LIBDIR = nil, nil.*|local LUADIR, LIBDIR = [==[$(LUADIR)]==], [==[$(LIBDIR)]==]|' \
	    lua/bin/appstart > $(DESTDIR)$(BINDIR)/appstart && \
	  grep -q '^local LUADIR, LIBDIR = \[' $(DESTDIR)$(BINDIR)/appstart; \
	fi
	chmod 755 $(DESTDIR)$(BINDIR)/appstart

uninstall:
	rm -f $(DESTDIR)$(LUADIR)/appstart.lua $(DESTDIR)$(LIBDIR)/appstart/core.so \
	  $(DESTDIR)$(BINDIR)/appstart $(DESTDIR)$(LIBEXECDIR)/appstart-helper
	rm -rf $(DESTDIR)$(LUADIR)/appstart
	rmdir $(DESTDIR)$(LIBDIR)/appstart $(DESTDIR)$(LIBEXECDIR) 2>/dev/null || true

clean:
	rm -rf build build-san build-fuzz
