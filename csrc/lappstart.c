/*
 * lappstart.c: the Lua binding, luaopen_appstart_core.
 *
 * Turns core results into Lua values and errors. Every argument is checked
 * before anything is created; a failure of the world (a program that cannot
 * run, a dead app) is returned as values, a programmer mistake raised.
 * Userdata are preset before their metatable is set, so __gc is safe after a
 * half-done constructor, and one idempotent close serves close, __gc and
 * __close.
 */
#include "process.h"
#include "starter.h"
#include "sys.h"

#include <lauxlib.h>
#include <lua.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define STARTER_MT "appstart.starter"
#define PROCESS_MT "appstart.process"
#define POLLER_MT "appstart.poller"
#define SIGNALS_MT "appstart.signals"

#ifndef APPSTART_VERSION
#define APPSTART_VERSION "0.1.0"
#endif
#ifndef APPSTART_HELPER_PATH
#define APPSTART_HELPER_PATH "/usr/local/libexec/appstart/appstart-helper"
#endif

extern char **environ;

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static int push_errno_result(lua_State *L, int err, const char *what)
{
    lua_pushnil(L);
    if (what)
        lua_pushfstring(L, "%s: %s", what, strerror(err));
    else
        lua_pushstring(L, strerror(err));
    lua_pushinteger(L, err);
    return 3;
}

/* how = {code = n} | {signal = n} | {} */
static void push_how(lua_State *L, const struct process *p)
{
    lua_createtable(L, 0, 1);
    if (p->end == PROCESS_EXITED) {
        lua_pushinteger(L, p->code);
        lua_setfield(L, -2, "code");
    } else if (p->end == PROCESS_SIGNALED) {
        lua_pushinteger(L, p->code);
        lua_setfield(L, -2, "signal");
    }
}

static const struct {
    const char *name;
    int num;
} signal_names[] = {
    { "HUP", SIGHUP },   { "INT", SIGINT },     { "QUIT", SIGQUIT },
    { "ILL", SIGILL },   { "ABRT", SIGABRT },   { "FPE", SIGFPE },
    { "KILL", SIGKILL }, { "SEGV", SIGSEGV },   { "PIPE", SIGPIPE },
    { "ALRM", SIGALRM }, { "TERM", SIGTERM },   { "USR1", SIGUSR1 },
    { "USR2", SIGUSR2 }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT },
    { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },   { "WINCH", SIGWINCH },
};

/* A signal given as a number or a name ("TERM", "SIGTERM"); raises on a
 * name that is none. */
static int check_signal(lua_State *L, int arg, int def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    if (lua_type(L, arg) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, arg);
        luaL_argcheck(L, n >= 0 && n < NSIG, arg, "signal number out of range");
        return (int)n;
    }
    const char *name = luaL_checkstring(L, arg);
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
        if (strcmp(name, signal_names[i].name) == 0)
            return signal_names[i].num;
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", name));
}

/* ------------------------------------------------------------------ */
/* process                                                            */

static struct process *check_process(lua_State *L, int i)
{
    return luaL_checkudata(L, i, PROCESS_MT);
}

static struct process *new_process(lua_State *L)
{
    struct process *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->pid = 0;
    p->pidfd = -1;
    p->is_child = 0;
    p->end = PROCESS_GONE;
    p->code = 0;
    luaL_setmetatable(L, PROCESS_MT);
    return p;
}

/* core.process(pid) -> process | nil, message, errno: watch a pid that is
 * not the launcher's child */
static int l_process(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, 1, "pid out of range");
    struct process *p = new_process(L);
    int err = process_open(p, (pid_t)pid, 0);
    if (err)
        return push_errno_result(L, err, lua_pushfstring(L, "pid %d", (int)pid));
    return 1;
}

static int l_process_pid(lua_State *L)
{
    struct process *p = check_process(L, 1);
    lua_pushinteger(L, p->pid);
    return 1;
}

static int l_process_fd(lua_State *L)
{
    struct process *p = check_process(L, 1);
    if (p->pidfd >= 0)
        lua_pushinteger(L, p->pidfd);
    else
        lua_pushnil(L);
    return 1;
}

/* p:poll() -> nil while running | how */
static int l_process_poll(lua_State *L)
{
    struct process *p = check_process(L, 1);
    int r = process_poll(p);
    if (r == 0)
        return 0;
    if (r < 0)
        return push_errno_result(L, errno, "poll");
    push_how(L, p);
    return 1;
}

static int l_process_signal(lua_State *L)
{
    struct process *p = check_process(L, 1);
    int sig = check_signal(L, 2, SIGTERM);
    int err = process_signal(p, sig);
    if (err)
        return push_errno_result(L, err, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_process_close(lua_State *L)
{
    struct process *p = check_process(L, 1);
    process_release(p); /* never signals: children are reaped later */
    return 0;
}

static int l_process_tostring(lua_State *L)
{
    struct process *p = check_process(L, 1);
    const char *state = p->end == PROCESS_RUNNING
                            ? (p->pid > 0 ? "running" : "released")
                            : "ended";
    lua_pushfstring(L, "appstart.process(pid %d, %s, %s)", (int)p->pid, state,
                    p->pidfd >= 0 ? "pidfd" : "probed");
    return 1;
}

/* ------------------------------------------------------------------ */
/* starter                                                            */

struct lstarter {
    struct starter s;
    int stdio[3];
};

static struct lstarter *check_starter(lua_State *L, int i)
{
    return luaL_checkudata(L, i, STARTER_MT);
}

/* An unfinished start that is closed was abandoned by its caller: what it
 * started must not outlive it. SIGKILL, since nobody is left to wait out a
 * grace period; the children are reaped later. */
static void starter_abandon(struct lstarter *ls)
{
    struct starter *s = &ls->s;
    /* READY but never taken: the caller failed (a raising callback, out of
     * memory) between the handshake and the hand-over */
    if (s->state != STARTER_READY || starter_app(s)->pid > 0) {
        starter_salvage_pid(s);
        (void)process_signal(&s->app, SIGKILL);
        (void)process_signal(&s->spawned, SIGKILL);
    }
    starter_close(s);
    for (int i = 0; i < 3; i++)
        sys_close(&ls->stdio[i]);
}

static int l_starter_close(lua_State *L)
{
    starter_abandon(check_starter(L, 1));
    return 0;
}

static const char *opt_string(lua_State *L, int t, const char *field,
                              const char *def)
{
    int type = lua_getfield(L, t, field);
    const char *v = def;
    if (type == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (type != LUA_TNIL)
        luaL_error(L, "field '%s': string expected, got %s", field,
                   luaL_typename(L, -1));
    lua_pop(L, 1); /* the string stays alive: it is held by the spec table */
    return v;
}

static lua_Integer opt_integer(lua_State *L, int t, const char *field,
                               lua_Integer def)
{
    int type = lua_getfield(L, t, field);
    lua_Integer v = def;
    if (type != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "field '%s': integer expected, got %s", field,
                       luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

static int opt_enum(lua_State *L, int t, const char *field, const char *def,
                    const char *const names[])
{
    const char *v = opt_string(L, t, field, def);
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return luaL_error(L, "field '%s': invalid value '%s'", field, v);
}

/* Build a NULL-terminated char* array from the array-table field, in a
 * userdata left on the stack (so nothing malloc'd is held across errors).
 * extra: slots to leave free at the end. */
static char **string_array(lua_State *L, int t, const char *field, int extra,
                           int *count)
{
    if (lua_getfield(L, t, field) != LUA_TTABLE)
        luaL_error(L, "field '%s': table expected, got %s", field,
                   luaL_typename(L, -1));
    lua_Integer n = luaL_len(L, -1);
    if (n < 0 || n > 65536)
        luaL_error(L, "field '%s': too many entries", field);
    char **arr = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + extra + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, -2, i) != LUA_TSTRING)
            luaL_error(L, "field '%s'[%d]: string expected, got %s", field,
                       (int)i, luaL_typename(L, -1));
        arr[i - 1] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1); /* held by the table, which the spec holds */
    }
    arr[n] = NULL;
    lua_remove(L, -2); /* the table; the userdata stays */
    *count = (int)n;
    return arr;
}

static int open_stdio(const char *how, int fd, int *out)
{
    *out = -1;
    if (strcmp(how, "inherit") == 0)
        return 0;
    const char *path = strcmp(how, "null") == 0 ? "/dev/null" : how;
    int flags = fd == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND);
    int r;
    do
        r = open(path, flags | O_CLOEXEC | O_NOCTTY, 0666);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    *out = r;
    return 0;
}

static int starter_failure(lua_State *L, struct lstarter *ls)
{
    lua_pushnil(L);
    lua_pushstring(L, starter_code_name(ls->s.code));
    lua_pushinteger(L, ls->s.err);
    lua_pushstring(L, ls->s.message);
    starter_abandon(ls);
    return 4;
}

/* core.start(spec) -> starter | nil, code, errno, message
 *
 * spec: argv (the command to spawn: helper argv followed by the app's when
 * helper is true), env (array of "K=V" or nil), cwd, stdin, stdout, stderr,
 * helper (boolean), pid_fd, pid_format, ready, ready_fd, notify_access,
 * notify_dir, app_uid (the uid a helper's app must run as), pollfd (true: make s:fd()'s epoll set now, so
 * a failure is a failed start rather than a failed wait). Defaults and
 * friendly checks are the Lua layer's; this re-checks types and the
 * descriptor layout. */
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
    cfg.pollfd = (lua_getfield(L, 1, "pollfd"), lua_toboolean(L, -1));
    lua_pop(L, 2);
    cfg.ready_mode = opt_enum(L, 1, "ready", "none", ready_names);
    cfg.access = opt_enum(L, 1, "notify_access", "exec", access_names);
    cfg.pid_format = opt_enum(L, 1, "pid_format", "int32le", format_names);
    lua_Integer pid_fd = opt_integer(L, 1, "pid_fd", 3);
    lua_Integer ready_fd = opt_integer(L, 1, "ready_fd", -1);
    lua_Integer app_uid = opt_integer(L, 1, "app_uid", -1);
    cfg.notify_base = opt_string(L, 1, "notify_dir", NULL);
    const char *cwd = opt_string(L, 1, "cwd", NULL);
    const char *stdio_how[3] = {
        opt_string(L, 1, "stdin", "inherit"),
        opt_string(L, 1, "stdout", "inherit"),
        opt_string(L, 1, "stderr", "inherit"),
    };

    /* the layout: fixed numbers, at least 3, never two on one number */
    if (cfg.has_helper && (pid_fd < 3 || pid_fd > 1023))
        return luaL_error(L, "field 'pid_fd': %d is not a descriptor from 3 to 1023",
                          (int)pid_fd);
    if (cfg.ready_mode == READY_FD) {
        if (ready_fd < 0) {
            ready_fd = 3;
            if (cfg.has_helper && ready_fd == pid_fd)
                ready_fd++;
        }
        if (ready_fd < 3 || ready_fd > 1023)
            return luaL_error(L, "field 'ready_fd': %d is not a descriptor from 3 to 1023",
                              (int)ready_fd);
        if (cfg.has_helper && ready_fd == pid_fd)
            return luaL_error(L, "fields 'ready_fd' and 'pid_fd' are both %d",
                              (int)ready_fd);
    }
    cfg.pid_fd = (int)pid_fd;
    cfg.ready_fd = (int)ready_fd;
    cfg.app_uid = app_uid < 0 ? (uid_t)-1 : (uid_t)app_uid;

    int argc;
    char **argv = string_array(L, 1, "argv", 0, &argc);
    if (argc == 0)
        return luaL_error(L, "field 'argv': must not be empty");
    int envc = 0;
    char **envp = NULL;
    int has_env = lua_getfield(L, 1, "env") != LUA_TNIL;
    lua_pop(L, 1);
    if (has_env) {
        envp = string_array(L, 1, "env", 1, &envc);
    } else {
        for (char **e = environ; *e; e++)
            envc++;
        envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(envc + 2), 0);
        memcpy(envp, environ, sizeof(char *) * (size_t)envc);
        envp[envc] = NULL;
    }
    /* NOTIFY_SOCKET is the launcher's to set: an inherited one would let the
     * app notify whoever started the launcher */
    int kept = 0;
    for (int i = 0; i < envc; i++)
        if (strncmp(envp[i], "NOTIFY_SOCKET=", 14) != 0)
            envp[kept++] = envp[i];
    envp[kept] = NULL;

    struct lstarter *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    starter_init(&ls->s);
    ls->stdio[0] = ls->stdio[1] = ls->stdio[2] = -1;
    luaL_setmetatable(L, STARTER_MT);
    int self = lua_gettop(L);

    /* from here on only the starter owns what is created; it is closed on
     * every failure path below, and by __gc should a Lua error intervene */
    for (int i = 0; i < 3; i++) {
        int err = open_stdio(stdio_how[i], i, &ls->stdio[i]);
        if (err) {
            lua_pushnil(L);
            lua_pushliteral(L, "spawn");
            lua_pushinteger(L, err);
            lua_pushfstring(L, "cannot open %s for %s: %s", stdio_how[i],
                            i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr",
                            strerror(err));
            starter_abandon(ls);
            return 4;
        }
    }
    if (starter_prepare(&ls->s, &cfg) != 0)
        return starter_failure(L, ls);
    if (ls->s.notify.path[0]) {
        lua_pushfstring(L, "NOTIFY_SOCKET=%s", ls->s.notify.path);
        envp[kept++] = (char *)lua_tostring(L, -1); /* anchored on the stack */
        envp[kept] = NULL;
    }

    struct spawn_request req;
    memset(&req, 0, sizeof req);
    req.file = argv[0];
    req.search_path = getenv("PATH");
    req.argv = argv;
    req.envp = envp;
    req.cwd = cwd;
    for (int i = 0; i < 3; i++)
        req.stdio[i] = ls->stdio[i];
    int err = starter_spawn(&ls->s, &req);
    for (int i = 0; i < 3; i++)
        sys_close(&ls->stdio[i]);
    if (err)
        return starter_failure(L, ls);
    lua_pushvalue(L, self);
    return 1;
}

/* s:step() -> "wait", probe_interval|nil | "ready" | "failed" */
static int l_starter_step(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    int state = starter_step(&ls->s);
    if (state == STARTER_READY) {
        lua_pushliteral(L, "ready");
        return 1;
    }
    if (state == STARTER_FAILED) {
        lua_pushliteral(L, "failed");
        return 1;
    }
    lua_pushliteral(L, "wait");
    double interval = starter_poll_interval(&ls->s);
    if (interval > 0)
        lua_pushnumber(L, interval);
    else
        lua_pushnil(L);
    return 2;
}

/* s:fd() -> one descriptor to wait on (an epoll set of s:fds(), made on
 * first use) | nil, message, errno */
static int l_starter_fd(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    int fd = starter_pollfd(&ls->s);
    if (fd < 0)
        return push_errno_result(L, -fd, "epoll_create1");
    lua_pushinteger(L, fd);
    return 1;
}

/* s:fds() -> the descriptors to wait on until the next step, as values */
static int l_starter_fds(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    int fds[STARTER_MAX_WATCH];
    int n = starter_fds(&ls->s, fds);
    for (int i = 0; i < n; i++)
        lua_pushinteger(L, fds[i]);
    return n;
}

/* s:wait([timeout]) -> true (one of s:fds() is readable) | false (timed
 * out) | nil, message, errno: blocks, for a launcher with nothing else to
 * wait on */
static int l_starter_wait(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    int fds[STARTER_MAX_WATCH];
    int n = starter_fds(&ls->s, fds);
    if (n == 0 && timeout < 0)
        return luaL_error(L, "starter:wait: nothing to wait for and no timeout");
    int r = sys_wait_any_readable(fds, n, timeout);
    if (r < 0)
        return push_errno_result(L, errno, "poll");
    lua_pushboolean(L, r);
    return 1;
}

static int l_starter_phase(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    lua_pushstring(L, starter_in_pid_phase(&ls->s) ? "pid" : "ready");
    return 1;
}

/* s:events() -> nil | { {kind=, value=, count=, text=}, ... } */
static int l_starter_events(lua_State *L)
{
    static const char *const kinds[] = {
        "", "spawned", "pid", "helper_exit", "status", "ignored",
        "extend", "errno", "stopping", "mainpid",
    };
    struct lstarter *ls = check_starter(L, 1);
    struct starter *s = &ls->s;
    if (s->nevents == 0 && s->dropped_events == 0)
        return 0;
    lua_createtable(L, s->nevents + 1, 0);
    for (int i = 0; i < s->nevents; i++) {
        struct starter_event *e = &s->events[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, kinds[e->kind]);
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, e->value);
        lua_setfield(L, -2, "value");
        lua_pushinteger(L, e->count);
        lua_setfield(L, -2, "count");
        if (e->text) {
            lua_pushlstring(L, e->text, e->len);
            lua_setfield(L, -2, "text");
        }
        lua_rawseti(L, -2, i + 1);
    }
    if (s->dropped_events) {
        lua_createtable(L, 0, 2);
        lua_pushliteral(L, "dropped");
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, s->dropped_events);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, s->nevents + 1);
        s->dropped_events = 0;
    }
    starter_clear_events(s);
    return 1;
}

/* s:result() -> {code=, errno=, message=, pid=, name=, status=, app_errno=} */
static int l_starter_result(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    struct starter *s = &ls->s;
    lua_createtable(L, 0, 7);
    if (s->state == STARTER_FAILED) {
        lua_pushstring(L, starter_code_name(s->code));
        lua_setfield(L, -2, "code");
        lua_pushstring(L, s->message);
        lua_setfield(L, -2, "message");
        if (s->err) {
            lua_pushinteger(L, s->err);
            lua_setfield(L, -2, "errno");
        }
    }
    struct process *app = starter_app(s);
    if (app->pid > 0 && s->pid_known) {
        lua_pushinteger(L, app->pid);
        lua_setfield(L, -2, "pid");
    }
    if (s->line && s->line->done == READY_LINE_DONE) {
        lua_pushlstring(L, s->line->buf, s->line->len);
        lua_setfield(L, -2, "name");
    }
    if (s->status) {
        lua_pushlstring(L, s->status, s->status_len);
        lua_setfield(L, -2, "status");
    }
    if (s->app_errno) {
        lua_pushinteger(L, s->app_errno);
        lua_setfield(L, -2, "app_errno");
    }
    if (s->ready_seen && s->app_dead) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "exited");
    }
    return 1;
}

/* s:take("app" | "helper") -> process | nil: the caller owns it from now */
static int l_starter_take(lua_State *L)
{
    static const char *const which_names[] = { "app", "helper", NULL };
    struct lstarter *ls = check_starter(L, 1);
    int which = luaL_checkoption(L, 2, NULL, which_names);
    struct starter *s = &ls->s;
    if (which == 0 && s->state != STARTER_READY)
        starter_salvage_pid(s);
    struct process *src = which == 0 ? starter_app(s)
                          : s->cfg.has_helper ? &s->spawned : NULL;
    if (!src || src->pid <= 0)
        return 0;
    if (which == 0 && s->cfg.has_helper && !s->pid_known)
        return 0;
    struct process *p = new_process(L);
    starter_forget(s, src);
    *p = *src;
    src->pid = 0;
    src->pidfd = -1;
    src->is_child = 0;
    return 1;
}

static int l_starter_tostring(lua_State *L)
{
    struct lstarter *ls = check_starter(L, 1);
    static const char *const states[] = { "starting", "ready", "failed" };
    lua_pushfstring(L, "appstart.starter(pid %d, %s)",
                    (int)starter_app(&ls->s)->pid, states[ls->s.state]);
    return 1;
}

/* ------------------------------------------------------------------ */
/* poller: the loop's epoll set                                        */

struct poller {
    int fd;
};

static struct poller *check_poller(lua_State *L, int i)
{
    struct poller *p = luaL_checkudata(L, i, POLLER_MT);
    if (p->fd < 0)
        luaL_error(L, "poller is closed");
    return p;
}

static int l_poller(lua_State *L)
{
    struct poller *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->fd = -1;
    luaL_setmetatable(L, POLLER_MT);
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return push_errno_result(L, errno, "epoll_create1");
    return 1;
}

/* p:add(fd, key [, "r"|"w"]) -> true | nil, message, errno */
static int l_poller_add(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    int fd = (int)luaL_checkinteger(L, 2);
    lua_Integer key = luaL_checkinteger(L, 3);
    const char *ev = luaL_optstring(L, 4, "r");
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = strchr(ev, 'w') ? EPOLLOUT : EPOLLIN;
    e.data.u64 = (unsigned long long)key;
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &e) < 0) {
        if (errno != EEXIST || epoll_ctl(p->fd, EPOLL_CTL_MOD, fd, &e) < 0)
            return push_errno_result(L, errno, "epoll_ctl");
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_poller_del(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    int fd = (int)luaL_checkinteger(L, 2);
    lua_pushboolean(L, epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL) == 0);
    return 1;
}

/* p:wait(timeout, out) -> n: keys of ready descriptors in out[1..n].
 * timeout in seconds, negative or nil: forever. EINTR returns 0 (the caller
 * recomputes its deadlines, which is what the retry would do). */
static int l_poller_wait(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    luaL_checktype(L, 3, LUA_TTABLE);
    int ms = -1;
    if (timeout >= 0)
        ms = timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.999);
    struct epoll_event evs[256];
    int n = epoll_wait(p->fd, evs, 256, ms);
    if (n < 0) {
        if (errno != EINTR)
            return push_errno_result(L, errno, "epoll_wait");
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)evs[i].data.u64);
        lua_rawseti(L, 3, i + 1);
    }
    lua_pushinteger(L, n);
    return 1;
}

static int l_poller_fd(lua_State *L)
{
    lua_pushinteger(L, check_poller(L, 1)->fd);
    return 1;
}

static int l_poller_close(lua_State *L)
{
    struct poller *p = luaL_checkudata(L, 1, POLLER_MT);
    sys_close(&p->fd);
    return 0;
}

/* ------------------------------------------------------------------ */
/* signals: a pollable descriptor for signals (the command's --watch)  */

struct lsignals {
    int fd;
    int blocked;
    sigset_t set, old;
};

/* core.signals({"INT", "TERM", ...}) -> signals: blocks them for the
 * process and delivers them through a signalfd instead. Spawned children
 * start with an empty mask, so they still get every signal. */
static int l_signals(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    sigset_t set;
    sigemptyset(&set);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        sigaddset(&set, check_signal(L, lua_gettop(L), SIGTERM));
        lua_pop(L, 1);
    }
    struct lsignals *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    ls->fd = -1;
    ls->blocked = 0;
    luaL_setmetatable(L, SIGNALS_MT);
    ls->set = set;
    if (sigprocmask(SIG_BLOCK, &set, &ls->old) < 0)
        return push_errno_result(L, errno, "sigprocmask");
    ls->blocked = 1;
    ls->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (ls->fd < 0)
        return push_errno_result(L, errno, "signalfd");
    return 1;
}

/* signals:read() -> { {signal = n, pid = sender, terminal = bool}, ... }:
 * what arrived, without waiting. terminal: sent by the kernel, as a
 * terminal's ^C or ^\ is, to its whole foreground process group (pid 0). */
static int l_signals_read(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, SIGNALS_MT);
    lua_newtable(L);
    int n = 0;
    struct signalfd_siginfo info;
    while (ls->fd >= 0 && sys_read(ls->fd, &info, sizeof info) == sizeof info) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, info.ssi_signo);
        lua_setfield(L, -2, "signal");
        lua_pushinteger(L, (lua_Integer)info.ssi_pid);
        lua_setfield(L, -2, "pid");
        lua_pushboolean(L, info.ssi_code == SI_KERNEL);
        lua_setfield(L, -2, "terminal");
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int l_signals_fd(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, SIGNALS_MT);
    lua_pushinteger(L, ls->fd);
    return 1;
}

static int l_signals_close(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, SIGNALS_MT);
    sys_close(&ls->fd);
    if (ls->blocked) {
        /* unblock only what this object blocked and was not blocked before */
        sigset_t unblock;
        sigemptyset(&unblock);
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(&ls->set, sig) == 1 && sigismember(&ls->old, sig) == 0)
                sigaddset(&unblock, sig);
        sigprocmask(SIG_UNBLOCK, &unblock, NULL);
        ls->blocked = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* module functions                                                   */

static int l_now(lua_State *L)
{
    lua_pushnumber(L, sys_now());
    return 1;
}

/* core.use_pidfd([on]) -> whether pidfds are in use */
static int l_use_pidfd(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        process_use_pidfd(lua_toboolean(L, 1));
    lua_pushboolean(L, process_pidfd_enabled());
    return 1;
}

/* core.exec_report(["pipe" | "auto"]) -> "memory" | "pipe" | "unknown":
 * how the verdict of an exec comes back (see spawn.h); forcing the pipe is
 * for tests */
static int l_exec_report(lua_State *L)
{
    static const char *const modes[] = { "pipe", "auto", NULL };
    const char *force = NULL;
    if (!lua_isnoneornil(L, 1))
        force = modes[luaL_checkoption(L, 1, NULL, modes)];
    lua_pushstring(L, spawn_report_mode(force));
    return 1;
}

/* core.has_pidfd() -> whether the kernel offers pidfds at all */
static int l_has_pidfd(lua_State *L)
{
    lua_pushboolean(L, process_pidfd_available());
    return 1;
}

/* core.wait_readable(fd, timeout) -> true | false (timeout): blocks */
static int l_wait_readable(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    int r = sys_wait_readable(fd, timeout);
    if (r < 0)
        return push_errno_result(L, errno, "poll");
    lua_pushboolean(L, r);
    return 1;
}

/* core.isatty(fd) -> whether fd is a terminal */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_signum(lua_State *L)
{
    lua_pushinteger(L, check_signal(L, 1, SIGTERM));
    return 1;
}

/* core.fds() -> sorted array of this process's open descriptors */
static int l_fds(lua_State *L)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return push_errno_result(L, errno, "/proc/self/fd");
    int self = dirfd(d);
    int fds[4096], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd != self)
            fds[n++] = fd;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, fds[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.raise_nofile([want]) -> soft limit now in force, hard limit.
 * Children are started with the soft limit from before. */
static int l_raise_nofile(lua_State *L)
{
    lua_Integer want = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, want >= 0, 1, "negative limit");
    unsigned long now, hard;
    int err = spawn_raise_nofile((unsigned long)want, &now, &hard);
    if (err)
        return push_errno_result(L, err, "setrlimit");
    lua_pushinteger(L, (lua_Integer)now);
    lua_pushinteger(L, (lua_Integer)hard);
    return 2;
}

/* core.user(name_or_uid) -> uid, gid, name | nil */
static int l_user(lua_State *L)
{
    struct passwd *pw;
    if (lua_type(L, 1) == LUA_TNUMBER)
        pw = getpwuid((uid_t)luaL_checkinteger(L, 1));
    else
        pw = getpwnam(luaL_checkstring(L, 1));
    if (!pw)
        return 0;
    lua_pushinteger(L, pw->pw_uid);
    lua_pushinteger(L, pw->pw_gid);
    lua_pushstring(L, pw->pw_name);
    return 3;
}

static int l_reap(lua_State *L)
{
    (void)L;
    process_reap_abandoned();
    return 0;
}

static int l_strerror(lua_State *L)
{
    lua_pushstring(L, strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction close)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
}

int luaopen_appstart_core(lua_State *L);

int luaopen_appstart_core(lua_State *L)
{
    static const luaL_Reg process_methods[] = {
        { "pid", l_process_pid },   { "fd", l_process_fd },
        { "poll", l_process_poll }, { "signal", l_process_signal },
        { "close", l_process_close }, { NULL, NULL },
    };
    static const luaL_Reg starter_methods[] = {
        { "step", l_starter_step },     { "fd", l_starter_fd },
        { "fds", l_starter_fds },       { "wait", l_starter_wait },
        { "phase", l_starter_phase },   { "events", l_starter_events },
        { "result", l_starter_result }, { "take", l_starter_take },
        { "close", l_starter_close },   { NULL, NULL },
    };
    static const luaL_Reg poller_methods[] = {
        { "add", l_poller_add },   { "del", l_poller_del },
        { "wait", l_poller_wait }, { "fd", l_poller_fd },
        { "close", l_poller_close }, { NULL, NULL },
    };
    static const luaL_Reg signals_methods[] = {
        { "read", l_signals_read }, { "fd", l_signals_fd },
        { "close", l_signals_close }, { NULL, NULL },
    };
    static const luaL_Reg functions[] = {
        { "start", l_start },
        { "exec_report", l_exec_report },
        { "signals", l_signals },
        { "process", l_process },
        { "poller", l_poller },
        { "now", l_now },
        { "use_pidfd", l_use_pidfd },
        { "has_pidfd", l_has_pidfd },
        { "wait_readable", l_wait_readable },
        { "signum", l_signum },
        { "isatty", l_isatty },
        { "fds", l_fds },
        { "raise_nofile", l_raise_nofile },
        { "user", l_user },
        { "reap", l_reap },
        { "strerror", l_strerror },
        { NULL, NULL },
    };
    new_class(L, PROCESS_MT, process_methods, l_process_close);
    lua_pushcfunction(L, l_process_tostring);
    lua_setfield(L, -2, "__tostring");
    new_class(L, STARTER_MT, starter_methods, l_starter_close);
    lua_pushcfunction(L, l_starter_tostring);
    lua_setfield(L, -2, "__tostring");
    new_class(L, POLLER_MT, poller_methods, l_poller_close);
    new_class(L, SIGNALS_MT, signals_methods, l_signals_close);
    lua_pop(L, 4);

    luaL_newlib(L, functions);
    lua_pushliteral(L, APPSTART_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, APPSTART_HELPER_PATH);
    lua_setfield(L, -2, "helper_path");
#ifdef APPSTART_SANITIZE_BUILD
    /* make sanitize preloads the ASan runtime into the (uninstrumented) Lua
     * interpreter; it must not reach the apps the suite starts, whose exit
     * codes and crashes the tests check */
    const char *preload = getenv("LD_PRELOAD");
    if (preload) {
        /* kept for specs that start another instrumented Lua */
        setenv("APPSTART_SAN_PRELOAD", preload, 1);
        unsetenv("LD_PRELOAD");
    }
#endif
    const char *force = getenv("APPSTART_NO_PIDFD");
    if (force && *force && strcmp(force, "0") != 0)
        process_use_pidfd(0);
    return 1;
}
