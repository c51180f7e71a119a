/*
 * lprocess.c: the process class (appstart.process): a pid held through a
 * pidfd (or probed), signalled, its end collected.
 */
#include "lbinding.h"
#include "sys.h"

#include <errno.h>
#include <signal.h>

static struct process *check_process(lua_State *L, int i)
{
    return lb_check_self(L, i, LB_PROCESS);
}

/* core.process(pid) -> process | nil, message, errno: watch a pid that is
 * not the launcher's child */
static int l_process(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, 1, "pid out of range");
    struct process *p = lb_new_process(L);
    int err = process_open(p, (pid_t)pid, 0);
    if (err)
        return lb_errno_result(L, err, lua_pushfstring(L, "pid %d", (int)pid));
    return 1;
}

static int l_process_pid(lua_State *L)
{
    lua_pushinteger(L, check_process(L, 1)->pid);
    return 1;
}

/* p:fd() -> the pidfd | nil where the process is probed */
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
    int r = process_has_ended(p);
    if (r == 0)
        return 0;
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    lb_push_how(L, p->end, p->code);
    return 1;
}

/* p:signal([sig]) -> true | nil, message, errno */
static int l_process_signal(lua_State *L)
{
    struct process *p = check_process(L, 1);
    int err = process_signal(p, lb_check_signal(L, 2, SIGTERM));
    if (err)
        return lb_errno_result(L, err, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_process_close(lua_State *L)
{
    process_release(check_process(L, 1)); /* never signals: children are reaped later */
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

void lb_open_process(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "pid", l_process_pid },     { "fd", l_process_fd },
        { "poll", l_process_poll },   { "signal", l_process_signal },
        { "close", l_process_close }, { NULL, NULL },
    };
    lb_new_class(L, LB_PROCESS, methods, l_process_close, l_process_tostring);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_process);
    lua_setfield(L, -2, "process");
}
