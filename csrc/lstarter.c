/*
 * lstarter.c: the starter class (appstart.starter): one start, stepped from
 * Lua (see starter.h), and core.start, which makes one.
 *
 * Options are Lua's to check and default (appstart/options.lua); this file
 * checks what memory safety needs: types, enumerations, descriptor numbers.
 * Closing or collecting a starter kills what it still holds: a start its
 * caller dropped leaves nothing running. That is the one guard against
 * losing a process; the app leaves it only through s:take().
 */
#include "lbinding.h"
#include "pidrec.h"
#include "starter.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The userdata: the starter, in memory of its own (from the Lua state's
 * allocator), given back as soon as a ready start hands its app over
 * (s:take), not when the userdata is collected. A start that is over is
 * mostly garbage until a collection: the 600 bytes of a starter would
 * stay held with it, and a launcher that starts many apps at once would
 * peak that much higher (README, "Where the memory goes"). */
struct lstarter {
    struct starter *s; /* NULL once taken (or if it could not be made) */
};

static void *state_alloc(lua_State *L, void *p, size_t osize, size_t nsize)
{
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f(ud, p, osize, nsize);
}

/* The starter's memory back, once it is closed. */
static void starter_free(lua_State *L, struct lstarter *u)
{
    if (!u->s)
        return;
    (void)state_alloc(L, u->s, starter_size(), 0);
    u->s = NULL;
}

/* The starter, or NULL once its app was taken: what a wait asks then
 * (its descriptors, its events) has a harmless answer, as from a closed
 * starter: a caller still inside a wait or a callback when another
 * finished the start looks again and finds it done. */
static struct starter *opt_starter(lua_State *L, int i)
{
    return ((struct lstarter *)lb_check_self(L, i, LB_STARTER))->s;
}

/* The starter; raises once its app was taken (nothing left to ask). */
static struct starter *check_starter(lua_State *L, int i)
{
    struct starter *s = opt_starter(L, i);
    if (!s)
        luaL_error(L, "appstart.starter: closed, its app taken");
    return s;
}

/* The string at arg, or NULL when it is nil; raises for another type. */
static const char *opt_string(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return NULL;
    return lb_check_cstring(L, arg);
}

static int opt_integer(lua_State *L, int arg, int def, lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = luaL_optinteger(L, arg, def);
    luaL_argcheck(L, v >= lo && v <= hi, arg, "out of range");
    return (int)v;
}

/* A NULL-terminated char* array of the array table at arg: in buf (bufn
 * entries, the caller's stack) when it fits, else in a userdata left on
 * the stack (so nothing malloc'd is held across errors); NULL when the
 * argument is nil and may be. (A start's command fits: nothing is
 * allocated for it, to be garbage at once.) */
static char **string_array(lua_State *L, int arg, int required, char **buf, size_t bufn)
{
    if (!required && lua_isnoneornil(L, arg))
        return NULL;
    luaL_checktype(L, arg, LUA_TTABLE);
    /* read raw: a string an __index made would be held by nothing once
     * popped, and collected before the exec reads it */
    /* (no bound of its own: the exec's, E2BIG, is the kernel's; this one
     * keeps the array's size and the entries' numbers in range) */
    lua_Integer n = (lua_Integer)lua_rawlen(L, arg);
    luaL_argcheck(L, n >= (required ? 1 : 0) && n < INT_MAX, arg, "bad number of entries");
    char **arr = (size_t)n < bufn ? buf : lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        if (lua_rawgeti(L, arg, i) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "[%d]: string expected", (int)i));
        arr[i - 1] = (char *)lua_tolstring(L, -1, &len);
        if (strlen(arr[i - 1]) != len)
            luaL_argerror(L, arg, lua_pushfstring(L, "[%d]: contains a NUL byte", (int)i));
        lua_pop(L, 1); /* held by the table, which the caller holds */
    }
    arr[n] = NULL;
    return arr;
}

/* core.start(argv, env, cwd, stdin, stdout, stderr, ready, ready_fd,
 *            notify_access, notify_dir, helper, rare)
 *            -> starter, fresh, pid: begun, maybe failed already
 *            (s:step says); fresh: the first step may come after a wait
 *            (starter.h, starter_fresh); pid: the process spawned (0: none)
 *
 * argv: the helper's argv then the app's when helper is true; env: array of
 * "K=V" or nil; stdio: nil, "inherit", "null", a path, or a descriptor
 * (the write end of a pipe the launcher reads: the child gets a copy); ready: "none" |
 * "fd" | "notify"; notify_access: "main" | "exec" | "all".
 * rare: nil, or a table of what few starts set (rare_fields below): pid_fd;
 * pid_format: "int32le" | "line"; app_uid: the uid a helper's app must run
 * as; kill_mode: "process" | "group" | "cgroup"; cgroup_parent: a path in
 * the cgroup v2 hierarchy; watchdog_usec: 0 for none; pid_file: the
 * forking daemon's (helper true); error_fd: where the helper
 * (appstart-helper --error-fd) writes why it failed; pass_fd: a descriptor
 * the child gets at fd 3 (no helper, ready "none" or "notify");
 * new_session: true, the child starts a session of its own whatever the
 * kill mode (the command's app left running: no hangup of the launcher's
 * terminal reaches it).
 * Values, not a table, for what every start gives: a start reads them
 * once, and a coroutine's stack grows to its deepest call (twenty
 * arguments here took a task in a start from 80 slots to 160). */
static int l_start(lua_State *L)
{
    static const char *const ready_names[] = { "none", "fd", "notify", NULL };
    static const char *const access_names[] = { "main", "exec", "all", NULL };
    static const char *const format_names[] = { "int32le", "line", NULL };
    static const char *const mode_names[] = { "process", "group", "cgroup", NULL };
    /* the rare fields laid out as arguments 12 to 21, by their names; the
     * arrays' userdata go above */
    static const char *const rare_fields[] = { "pid_fd", "pid_format", "app_uid", "kill_mode", "cgroup_parent",
                                               "watchdog_usec", "pid_file", "error_fd", "pass_fd",
                                               "new_session" };
    lua_settop(L, 12);
    if (lua_isnil(L, 12)) {
        lua_settop(L, 21);
    } else {
        luaL_checktype(L, 12, LUA_TTABLE);
        for (size_t i = 0; i < sizeof rare_fields / sizeof rare_fields[0]; i++)
            lua_getfield(L, 12, rare_fields[i]);
        lua_remove(L, 12); /* what they hold is on the stack now */
    }
    struct starter_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char *argv_buf[16], *env_buf[16];
    cfg.argv = string_array(L, 1, 1, argv_buf, sizeof argv_buf / sizeof argv_buf[0]);
    cfg.env = string_array(L, 2, 0, env_buf, sizeof env_buf / sizeof env_buf[0]);
    cfg.cwd = opt_string(L, 3);
    for (int i = 0; i < 3; i++) {
        cfg.stdio_fd[i] = -1;
        if (lua_type(L, 4 + i) == LUA_TNUMBER) {
            lua_Integer fd = luaL_checkinteger(L, 4 + i);
            luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 4 + i, "not a descriptor");
            cfg.stdio_fd[i] = (int)fd;
        } else {
            cfg.stdio[i] = opt_string(L, 4 + i);
        }
    }
    cfg.ready = luaL_checkoption(L, 7, "none", ready_names);
    /* the child lays descriptors out up to these numbers */
    cfg.ready_fd = opt_integer(L, 8, 3, 3, 1023);
    cfg.access = luaL_checkoption(L, 9, "exec", access_names);
    cfg.notify_base = opt_string(L, 10);
    cfg.has_helper = lua_toboolean(L, 11);
    cfg.pid_fd = opt_integer(L, 12, 3, 3, 1023);
    cfg.pid_format = luaL_checkoption(L, 13, "int32le", format_names);
    lua_Integer uid = luaL_optinteger(L, 14, -1);
    luaL_argcheck(L, uid >= -1 && uid <= 0xfffffffe, 14, "out of range");
    cfg.app_uid = (uid_t)uid;
    cfg.kill_mode = luaL_checkoption(L, 15, "process", mode_names);
    cfg.cgroup_parent = opt_string(L, 16);
    lua_Integer wd = luaL_optinteger(L, 17, 0);
    luaL_argcheck(L, wd >= 0, 17, "out of range");
    cfg.watchdog_usec = (unsigned long long)wd;
    cfg.pid_file = opt_string(L, 18);
    luaL_argcheck(L, !cfg.pid_file || cfg.has_helper, 18, "needs a helper (the process that forks)");
    /* two channels on one number in the child would lose one */
    cfg.error_fd = lua_isnoneornil(L, 19) ? -1 : opt_integer(L, 19, 0, 3, 1023);
    luaL_argcheck(L, cfg.error_fd < 0 || (cfg.has_helper && !cfg.pid_file && cfg.error_fd != cfg.pid_fd &&
                                          (cfg.ready != STARTER_READY_FD || cfg.error_fd != cfg.ready_fd)),
                  19, "needs a helper's pid channel, at a number of its own");
    cfg.pass_fd = lua_isnoneornil(L, 20) ? -1 : opt_integer(L, 20, 0, 0, 0x7fffffff);
    luaL_argcheck(L, cfg.pass_fd < 0 || (!cfg.has_helper && cfg.ready != STARTER_READY_FD), 20,
                  "fd 3 of the child is taken");
    cfg.new_session = lua_toboolean(L, 21);
    cfg.search_path = getenv("PATH");

    struct lstarter *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->s = NULL;
    luaL_setmetatable(L, LB_STARTER);
    /* (no collection and retry, as Lua's own allocations get: that would
     * run finalizers, arbitrary code, in the middle of this call) */
    struct starter *s = state_alloc(L, NULL, 0, starter_size());
    if (!s) {
        lua_pushliteral(L, "not enough memory");
        return lua_error(L);
    }
    u->s = s;
    starter_init(s);
    /* no Lua error can come between here and the return: the starter owns
     * what is made, and is closed by __gc should the caller drop it */
    starter_begin(s, &cfg);
    lua_pushboolean(L, starter_fresh(s));
    lua_pushinteger(L, starter_spawned_pid(s));
    return 3;
}

/* s:step() -> state, events, probe, pid, more: state is "wait", "ready"
 * or "failed"; events, whether s:event() has any; while "wait", probe: a
 * process is watched without a pidfd (step again at an interval), pid:
 * the pid deadline applies (as s:awaits() says), more: the step's reads
 * stopped at their bound (starter_reads_cut). All in one call: a start
 * makes a few of them, each counted. */
static int l_starter_step(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int phase = starter_step(s);
    if (phase == STARTER_READY)
        lua_pushliteral(L, "ready");
    else if (phase == STARTER_FAILED)
        lua_pushliteral(L, "failed");
    else
        lua_pushliteral(L, "wait");
    lua_pushboolean(L, starter_has_events(s));
    if (phase == STARTER_READY || phase == STARTER_FAILED)
        return 2;
    lua_pushboolean(L, starter_needs_probing(s));
    lua_pushboolean(L, starter_awaits_helper(s));
    lua_pushboolean(L, starter_reads_cut(s));
    return 5;
}

/* s:awaits() -> "pid" (the helper has not reported or not exited: the pid
 * deadline applies) | "ready" */
static int l_starter_awaits(lua_State *L)
{
    lua_pushstring(L, starter_awaits_helper(check_starter(L, 1)) ? "pid" : "ready");
    return 1;
}

/* s:phase() -> the phase's name, for messages and tests */
static int l_starter_phase(lua_State *L)
{
    lua_pushstring(L, starter_phase_name(starter_phase(check_starter(L, 1))));
    return 1;
}

/* s:fd([made]) -> one descriptor to wait on (an epoll set of s:fds(), made
 * on first use) | nil, message, errno; with made, only one already made
 * (else nil) */
static int l_starter_fd(lua_State *L)
{
    struct starter *s = opt_starter(L, 1);
    if (!s)
        return lua_toboolean(L, 2) ? 0 : lb_errno_result(L, EBADF, "starter:fd");
    if (lua_toboolean(L, 2)) {
        int made = starter_pollfd_made(s);
        if (made < 0)
            return 0;
        lua_pushinteger(L, made);
        return 1;
    }
    int fd = starter_pollfd(s);
    if (fd < 0)
        return lb_errno_result(L, -fd, "epoll_create1");
    lua_pushinteger(L, fd);
    return 1;
}

/* s:fds() -> the descriptors to wait on until the next step, as values */
static int l_starter_fds(lua_State *L)
{
    int fds[STARTER_MAX_WATCH];
    struct starter *s = opt_starter(L, 1);
    int n = s ? starter_fds(s, fds) : 0;
    luaL_checkstack(L, n, NULL);
    for (int i = 0; i < n; i++)
        lua_pushinteger(L, fds[i]);
    return n;
}

/* s:watch(fd) -> true | nil, message, errno: fd (the caller's, never
 * closed here) wakes the start's waits too, until s:unwatch(fd) */
static int l_starter_watch(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int fd = lb_check_fd(L, 2);
    int err = starter_watch(s, fd);
    if (err)
        return lb_errno_result(L, err, "starter:watch");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_starter_unwatch(lua_State *L)
{
    struct starter *s = opt_starter(L, 1);
    int fd = lb_check_fd(L, 2);
    if (s)
        starter_unwatch(s, fd);
    return 0;
}

/* s:wait([timeout]) -> true (one of s:fds() is readable) | false (timed
 * out) | nil, message, errno: blocks, for a launcher with nothing else to
 * wait on */
static int l_starter_wait(lua_State *L)
{
    struct starter *s = opt_starter(L, 1);
    double timeout = lb_opt_timeout(L, 2);
    if (!s) {
        /* over: look again now */
        lua_pushboolean(L, 1);
        return 1;
    }
    int fds[STARTER_MAX_WATCH];
    if (starter_fds(s, fds) == 0 && timeout < 0)
        return luaL_error(L, "starter:wait: nothing to wait for and no timeout");
    int r = starter_wait(s, timeout);
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    lua_pushboolean(L, r);
    return 1;
}

/* s:event() -> kind, value, count, text | nil: the next event, as values
 * (a start's handful of events make no tables). kind: "pid",
 * "helper_exit", "status", "ignored", "extend", "errno", "stopping",
 * "mainpid", "dropped", "watchdog_usec" */
static int l_starter_event(lua_State *L)
{
    static const char *const kinds[] = {
        "", "pid", "helper_exit", "status", "ignored",
        "extend", "errno", "stopping", "mainpid", "dropped", "watchdog_usec",
    };
    struct starter *s = opt_starter(L, 1);
    struct starter_event e;
    if (!s || !starter_next_event(s, &e))
        return 0;
    lua_pushstring(L, kinds[e.kind]);
    lua_pushinteger(L, e.value);
    lua_pushinteger(L, e.count);
    if (e.text)
        lua_pushlstring(L, e.text, e.len);
    else
        lua_pushnil(L);
    return 4;
}

/* s:outcome() -> pid, name, status, exited: a ready start's app, without a
 * table (name, status: nil when none came) */
static int l_starter_outcome(lua_State *L)
{
    struct starter_result r;
    starter_result(check_starter(L, 1), &r);
    lua_pushinteger(L, r.pid);
    if (r.name)
        lua_pushlstring(L, r.name, r.name_len);
    else
        lua_pushnil(L);
    if (r.status)
        lua_pushlstring(L, r.status, r.status_len);
    else
        lua_pushnil(L);
    lua_pushboolean(L, r.exited);
    return 4;
}

/* s:result() -> {code=, errno=, message=, pid=, unchecked_pid=,
 * unchecked_errno=, pid_partial=, record_as_line=, held_sender=, held_errno=, name=,
 * partial=, status=, app_errno=, exited=, stopping=, how=, left=, ready_seen=}
 * (the fields that apply; unchecked_pid: reported, not checked yet for want
 * of descriptors or memory; pid_partial: bytes of a pid record not whole
 * yet; held_sender: a ready message's sender whose descent could not be
 * read yet, the message held; partial: the fd protocol's line begun, with
 * no newline yet; ready_seen: the ready message came, the start held by a
 * helper that has not exited yet) */
static int l_starter_result(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    struct starter_result r;
    starter_result(s, &r);
    lua_createtable(L, 0, 8);
    if (r.code) {
        lua_pushstring(L, starter_code_name(r.code));
        lua_setfield(L, -2, "code");
        lua_pushstring(L, r.message);
        lua_setfield(L, -2, "message");
        if (r.err) {
            lua_pushinteger(L, r.err);
            lua_setfield(L, -2, "errno");
        }
    }
    if (r.pid > 0) {
        lua_pushinteger(L, r.pid);
        lua_setfield(L, -2, "pid");
    }
    if (r.helper_lost) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "helper_lost");
    }
    if (r.ready_seen) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "ready_seen");
    }
    if (r.unchecked_pid > 0) {
        lua_pushinteger(L, r.unchecked_pid);
        lua_setfield(L, -2, "unchecked_pid");
        lua_pushinteger(L, r.unchecked_err);
        lua_setfield(L, -2, "unchecked_errno");
    }
    if (r.pid_partial > 0) {
        lua_pushinteger(L, (lua_Integer)r.pid_partial);
        lua_setfield(L, -2, "pid_partial");
    }
    if (r.record_as_line) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "record_as_line");
    }
    if (r.held_sender > 0) {
        lua_pushinteger(L, r.held_sender);
        lua_setfield(L, -2, "held_sender");
        lua_pushinteger(L, r.held_err);
        lua_setfield(L, -2, "held_errno");
    }
    if (r.name) {
        lua_pushlstring(L, r.name, r.name_len);
        lua_setfield(L, -2, "name");
    }
    if (r.partial) {
        lua_pushlstring(L, r.partial, r.partial_len);
        lua_setfield(L, -2, "partial");
    }
    if (r.status) {
        lua_pushlstring(L, r.status, r.status_len);
        lua_setfield(L, -2, "status");
    }
    if (r.app_errno) {
        lua_pushinteger(L, r.app_errno);
        lua_setfield(L, -2, "app_errno");
    }
    if (r.exited) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "exited");
    }
    if (r.app_stopping) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "stopping");
    }
    if (r.app_end != PROCESS_RUNNING) {
        lb_push_how(L, r.app_end, r.app_code);
        if (r.left >= 0) {
            lua_pushinteger(L, r.left);
            lua_setfield(L, -2, "left");
        }
        lua_setfield(L, -2, "how");
    } else if (r.left >= 0) {
        /* no end known (a daemon never named, an app not the launcher's
         * child): what the stop found of its group or cgroup all the same */
        lua_pushinteger(L, r.left);
        lua_setfield(L, -2, "left");
    }
    return 1;
}

/* s:take([keep_notify]) -> process, listener | nil: a ready start hands
 * its app over (the caller owns it from now) and is closed; with
 * keep_notify, a notify app's socket too, to be read after ready */
static int l_starter_take(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int keep = lua_toboolean(L, 2);
    /* the userdata first: once the app has left the starter, nothing may
     * raise before it is anchored */
    struct lb_process *p = lb_new_process(L);
    struct listener *l = keep ? lb_new_listener(L) : NULL;
    if (l && starter_take_notify(s, l) != 0) {
        lua_pop(L, 1);
        l = NULL;
    }
    int err = starter_take_app(s, &p->p, &p->tree);
    starter_close(s);
    starter_free(L, lua_touserdata(L, 1));
    if (err)
        return 0;
    return l ? 2 : 1;
}

/* s:stop([sig]) -> errno | false, rest_refused: a failed start signals
 * its app (sig; none when absent) and kills its helper; the errno when the
 * app could not be signalled (EPERM: another user's), and whether other
 * members of its tree could not be; s:stopped() says when all it held has
 * ended */
static int l_starter_stop(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int rest_refused = 0;
    int err = starter_stop(s, lb_check_signal(L, 2, 0), &rest_refused);
    if (err)
        lua_pushinteger(L, err);
    else
        lua_pushboolean(L, 0);
    lua_pushboolean(L, rest_refused);
    return 2;
}

/* s:pgid() -> the app's process group (kill_mode "group") | nil */
static int l_starter_pgid(lua_State *L)
{
    pid_t pgid = starter_pgid(check_starter(L, 1));
    if (pgid <= 0)
        return 0;
    lua_pushinteger(L, pgid);
    return 1;
}

/* s:stopped() -> true | false, probe (as for s:step()), late (an app found
 * late has just been sent the stop's signal: its grace starts now) */
static int l_starter_stopped(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int late = 0;
    if (starter_stopped(s, &late)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushboolean(L, starter_needs_probing(s));
    lua_pushboolean(L, late != 0);
    return 3;
}

/* s:app_fd() -> the app's pidfd | nil (probed): for a watch made before
 * the app is taken */
static int l_starter_app_fd(lua_State *L)
{
    int fd = starter_app_pidfd(check_starter(L, 1));
    if (fd < 0)
        return 0;
    lua_pushinteger(L, fd);
    return 1;
}

/* s:app_ended() -> true | false: a ready start's app, probed from outside
 * before it is taken, has ended (reaped: s:result().how tells how) */
static int l_starter_app_ended(lua_State *L)
{
    lua_pushboolean(L, starter_app_ended(check_starter(L, 1)));
    return 1;
}

/* close, __gc, __close: a start dropped before the app was taken kills
 * what it holds (SIGKILL: nobody is left to wait out a grace period;
 * children are reaped later) */
static int l_starter_close(lua_State *L)
{
    struct lstarter *u = lb_check_self(L, 1, LB_STARTER);
    if (u->s)
        starter_abandon(u->s);
    return 0;
}

/* __gc: closed, and its memory given back */
static int l_starter_gc(lua_State *L)
{
    l_starter_close(L);
    starter_free(L, lua_touserdata(L, 1));
    return 0;
}

static int l_starter_tostring(lua_State *L)
{
    struct lstarter *u = lb_check_self(L, 1, LB_STARTER);
    if (!u->s) {
        lua_pushliteral(L, "appstart.starter(closed, its app taken)");
        return 1;
    }
    struct starter *s = u->s;
    struct starter_result r;
    starter_result(s, &r);
    lua_pushfstring(L, "appstart.starter(pid %d, %s)", (int)r.pid,
                    starter_phase_name(starter_phase(s)));
    return 1;
}

void lb_open_starter(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "step", l_starter_step },     { "awaits", l_starter_awaits },
        { "phase", l_starter_phase },   { "fd", l_starter_fd },
        { "fds", l_starter_fds },       { "wait", l_starter_wait },
        { "watch", l_starter_watch },   { "unwatch", l_starter_unwatch },
        { "event", l_starter_event },   { "outcome", l_starter_outcome },
        { "result", l_starter_result },
        { "take", l_starter_take },     { "stop", l_starter_stop },
        { "stopped", l_starter_stopped }, { "app_fd", l_starter_app_fd },
        { "pgid", l_starter_pgid },
        { "app_ended", l_starter_app_ended },
        { "close", l_starter_close },
        { NULL, NULL },
    };
    lb_new_class(L, LB_STARTER, methods, l_starter_close, l_starter_tostring);
    lua_pushvalue(L, -1); /* its methods' upvalue, as lb_new_class gives them */
    lua_pushcclosure(L, l_starter_gc, 1);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_start);
    lua_setfield(L, -2, "start");
}
