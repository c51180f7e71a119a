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
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct starter *check_starter(lua_State *L, int i)
{
    return luaL_checkudata(L, i, LB_STARTER);
}

/* The string field of t, or NULL when absent; raises for another type. The
 * string stays alive: the spec table holds it. */
static const char *opt_string(lua_State *L, int t, const char *field)
{
    int type = lua_getfield(L, t, field);
    const char *v = NULL;
    if (type == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (type != LUA_TNIL)
        luaL_error(L, "field '%s': string expected, got %s", field, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static lua_Integer opt_integer(lua_State *L, int t, const char *field, lua_Integer def,
                               lua_Integer lo, lua_Integer hi)
{
    int type = lua_getfield(L, t, field);
    lua_Integer v = def;
    if (type != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "field '%s': integer expected, got %s", field, luaL_typename(L, -1));
        if (v < lo || v > hi)
            luaL_error(L, "field '%s': %d out of range", field, (int)v);
    }
    lua_pop(L, 1);
    return v;
}

static int opt_enum(lua_State *L, int t, const char *field, int def,
                    const char *const names[])
{
    const char *v = opt_string(L, t, field);
    if (!v)
        return def;
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return luaL_error(L, "field '%s': invalid value '%s'", field, v);
}

/* A NULL-terminated char* array of the array-table field, in a userdata
 * left on the stack (so nothing malloc'd is held across errors); NULL when
 * the field is nil and may be. */
static char **string_array(lua_State *L, int t, const char *field, int required)
{
    int type = lua_getfield(L, t, field);
    if (type == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (type != LUA_TTABLE)
        luaL_error(L, "field '%s': table expected, got %s", field, luaL_typename(L, -1));
    lua_Integer n = luaL_len(L, -1);
    if (n < (required ? 1 : 0) || n > 65536)
        luaL_error(L, "field '%s': %d entries", field, (int)n);
    char **arr = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        if (lua_geti(L, -2, i) != LUA_TSTRING)
            luaL_error(L, "field '%s'[%d]: string expected, got %s", field, (int)i,
                       luaL_typename(L, -1));
        arr[i - 1] = (char *)lua_tolstring(L, -1, &len);
        /* the C string would end at a NUL inside it */
        if (strlen(arr[i - 1]) != len)
            luaL_error(L, "field '%s'[%d]: contains a NUL byte", field, (int)i);
        lua_pop(L, 1); /* held by the table, which the spec holds */
    }
    arr[n] = NULL;
    lua_remove(L, -2); /* the table; the userdata stays */
    return arr;
}

/* core.start(spec) -> starter: begun, maybe failed already (s:step says)
 *
 * spec: argv (helper argv then the app's when helper is true), env (array
 * of "K=V" or nil), cwd, stdin, stdout, stderr ("inherit", "null" or a
 * path), helper (boolean), pid_fd, pid_format ("int32le" | "line"), ready
 * ("none" | "fd" | "notify"), ready_fd, notify_access ("main" | "exec" |
 * "all"), notify_dir, app_uid. */
static int l_start(lua_State *L)
{
    static const char *const ready_names[] = { "none", "fd", "notify", NULL };
    static const char *const access_names[] = { "main", "exec", "all", NULL };
    static const char *const format_names[] = { "int32le", "line", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    struct starter_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.has_helper = (lua_getfield(L, 1, "helper"), lua_toboolean(L, -1));
    lua_pop(L, 1);
    cfg.ready = opt_enum(L, 1, "ready", STARTER_READY_NONE, ready_names);
    cfg.access = opt_enum(L, 1, "notify_access", STARTER_ACCESS_EXEC, access_names);
    cfg.pid_format = opt_enum(L, 1, "pid_format", PID_FORMAT_INT32LE, format_names);
    /* the child lays descriptors out up to these numbers */
    cfg.pid_fd = (int)opt_integer(L, 1, "pid_fd", 3, 3, 1023);
    cfg.ready_fd = (int)opt_integer(L, 1, "ready_fd", 3, 3, 1023);
    cfg.app_uid = (uid_t)opt_integer(L, 1, "app_uid", -1, -1, 0xfffffffe);
    cfg.notify_base = opt_string(L, 1, "notify_dir");
    cfg.cwd = opt_string(L, 1, "cwd");
    cfg.stdio[0] = opt_string(L, 1, "stdin");
    cfg.stdio[1] = opt_string(L, 1, "stdout");
    cfg.stdio[2] = opt_string(L, 1, "stderr");
    cfg.search_path = getenv("PATH");
    cfg.argv = string_array(L, 1, "argv", 1);
    cfg.env = string_array(L, 1, "env", 0);

    struct starter *s = lua_newuserdatauv(L, starter_size(), 0);
    starter_init(s);
    luaL_setmetatable(L, LB_STARTER);
    /* no Lua error can come between here and the return: the starter owns
     * what is made, and is closed by __gc should the caller drop it */
    starter_begin(s, &cfg);
    return 1;
}

/* s:step() -> "wait", probe | "ready" | "failed": probe is true while a
 * process is watched without a pidfd (step again at an interval) */
static int l_starter_step(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    int phase = starter_step(s);
    if (phase == STARTER_READY) {
        lua_pushliteral(L, "ready");
        return 1;
    }
    if (phase == STARTER_FAILED) {
        lua_pushliteral(L, "failed");
        return 1;
    }
    lua_pushliteral(L, "wait");
    lua_pushboolean(L, starter_needs_probing(s));
    return 2;
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

/* s:fd() -> one descriptor to wait on (an epoll set of s:fds(), made on
 * first use) | nil, message, errno */
static int l_starter_fd(lua_State *L)
{
    int fd = starter_pollfd(check_starter(L, 1));
    if (fd < 0)
        return lb_errno_result(L, -fd, "epoll_create1");
    lua_pushinteger(L, fd);
    return 1;
}

/* s:fds() -> the descriptors to wait on until the next step, as values */
static int l_starter_fds(lua_State *L)
{
    int fds[STARTER_MAX_WATCH];
    int n = starter_fds(check_starter(L, 1), fds);
    luaL_checkstack(L, n, NULL);
    for (int i = 0; i < n; i++)
        lua_pushinteger(L, fds[i]);
    return n;
}

/* s:wait([timeout]) -> true (one of s:fds() is readable) | false (timed
 * out) | nil, message, errno: blocks, for a launcher with nothing else to
 * wait on */
static int l_starter_wait(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    int fds[STARTER_MAX_WATCH];
    int n = starter_fds(s, fds);
    if (n == 0 && timeout < 0)
        return luaL_error(L, "starter:wait: nothing to wait for and no timeout");
    int r = sys_wait_any_readable(fds, n, timeout);
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    lua_pushboolean(L, r);
    return 1;
}

/* s:events() -> nil | { {kind=, value=, count=, text=}, ... } */
static int l_starter_events(lua_State *L)
{
    static const char *const kinds[] = {
        "", "spawned", "pid", "helper_exit", "status", "ignored",
        "extend", "errno", "stopping", "mainpid", "dropped",
    };
    struct starter *s = check_starter(L, 1);
    struct starter_event e;
    if (!starter_next_event(s, &e))
        return 0;
    lua_createtable(L, 1, 0);
    int n = 0;
    do {
        lua_createtable(L, 0, 4);
        lua_pushstring(L, kinds[e.kind]);
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, e.value);
        lua_setfield(L, -2, "value");
        lua_pushinteger(L, e.count);
        lua_setfield(L, -2, "count");
        if (e.text) {
            lua_pushlstring(L, e.text, e.len);
            lua_setfield(L, -2, "text");
        }
        lua_rawseti(L, -2, ++n);
    } while (starter_next_event(s, &e));
    return 1;
}

/* s:result() -> {code=, errno=, message=, pid=, name=, status=,
 * app_errno=, exited=, how=} (the fields that apply) */
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
    if (r.name) {
        lua_pushlstring(L, r.name, r.name_len);
        lua_setfield(L, -2, "name");
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
    if (r.app_end != PROCESS_RUNNING) {
        lb_push_how(L, r.app_end, r.app_code);
        lua_setfield(L, -2, "how");
    }
    return 1;
}

/* s:take() -> process | nil: a ready start hands its app over; the caller
 * owns it from now */
static int l_starter_take(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    /* the userdata first: once the app has left the starter, nothing may
     * raise before it is anchored */
    struct process *p = lb_new_process(L);
    if (starter_take_app(s, p) != 0)
        return 0;
    return 1;
}

/* s:stop([sig]): a failed start signals its app (sig; none when absent)
 * and kills its helper; s:stopped() says when all it held has ended */
static int l_starter_stop(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    starter_stop(s, lb_check_signal(L, 2, 0));
    return 0;
}

/* s:stopped() -> true | false, probe (as for s:step()) */
static int l_starter_stopped(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
    if (starter_stopped(s)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushboolean(L, starter_needs_probing(s));
    return 2;
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

/* close, __gc, __close: a start dropped before the app was taken kills
 * what it holds (SIGKILL: nobody is left to wait out a grace period;
 * children are reaped later) */
static int l_starter_close(lua_State *L)
{
    starter_abandon(check_starter(L, 1));
    return 0;
}

static int l_starter_tostring(lua_State *L)
{
    struct starter *s = check_starter(L, 1);
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
        { "events", l_starter_events }, { "result", l_starter_result },
        { "take", l_starter_take },     { "stop", l_starter_stop },
        { "stopped", l_starter_stopped }, { "app_fd", l_starter_app_fd },
        { "close", l_starter_close },
        { NULL, NULL },
    };
    lb_new_class(L, LB_STARTER, methods, l_starter_close, l_starter_tostring);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_start);
    lua_setfield(L, -2, "start");
}
