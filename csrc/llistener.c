/*
 * llistener.c: the listener class (appstart.listener): a notify app's
 * socket after ready (listener.h), read datagram by datagram.
 */
#include "lbinding.h"
#include "listener.h"
#include "sys.h"

#include <errno.h>
#include <string.h>

static struct listener *check_listener(lua_State *L, int i)
{
    return lb_check_self(L, i, LB_LISTENER);
}

struct listener *lb_new_listener(lua_State *L)
{
    struct listener *l = lua_newuserdatauv(L, sizeof *l, 0);
    memset(l, 0, sizeof *l);
    luaL_setmetatable(L, LB_LISTENER);
    return l;
}

/* l:fd() -> the socket | nil once closed */
static int l_listener_fd(lua_State *L)
{
    int fd = listener_fd(check_listener(L, 1));
    if (fd < 0)
        return 0;
    lua_pushinteger(L, fd);
    return 1;
}

/* l:main() -> the app's pid as the listener knows it */
static int l_listener_main(lua_State *L)
{
    lua_pushinteger(L, check_listener(L, 1)->main);
    return 1;
}

static void set_flag(lua_State *L, int on, const char *name)
{
    if (on) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, name);
    }
}

/* l:read() -> the next datagram, never waiting:
 *   nil                          nothing (more) to read
 *   "message", {ready=, reloading=, stopping=, status=, watchdog=
 *              "ping"|"trigger", watchdog_usec=, mainpid=, extend=,
 *              errno=}, pid      from an admitted sender (fields present)
 *   "refused", pid               from a sender not admitted
 *   "malformed", why             broke the protocol
 *   "later"                      a sender that cannot be checked for now
 *                                (out of descriptors): its datagram is
 *                                held, and what follows; ask again later
 *   "error", message, errno */
static int l_listener_read(lua_State *L)
{
    struct listener *l = check_listener(L, 1);
    char buf[NOTIFY_DATAGRAM_MAX + 1];
    struct notify_msg m;
    pid_t sender;
    switch (listener_read(l, buf, &m, &sender)) {
    case LISTENER_MESSAGE:
        lua_pushliteral(L, "message");
        lua_createtable(L, 0, 2);
        set_flag(L, m.ready, "ready");
        set_flag(L, m.reloading, "reloading");
        set_flag(L, m.stopping, "stopping");
        if (m.has_status) {
            lua_pushlstring(L, m.status, m.status_len);
            lua_setfield(L, -2, "status");
        }
        if (m.watchdog) {
            lua_pushstring(L, m.watchdog == NOTIFY_WATCHDOG_TRIGGER ? "trigger" : "ping");
            lua_setfield(L, -2, "watchdog");
        }
        if (m.has_watchdog_usec) {
            lua_pushinteger(L, (lua_Integer)(m.watchdog_usec > 0x7fffffffffffffffULL
                                                 ? 0x7fffffffffffffffULL : m.watchdog_usec));
            lua_setfield(L, -2, "watchdog_usec");
        }
        if (m.has_mainpid) {
            lua_pushinteger(L, m.mainpid);
            lua_setfield(L, -2, "mainpid");
        }
        if (m.has_extend) {
            lua_pushinteger(L, (lua_Integer)(m.extend_usec > 0x7fffffffffffffffULL
                                                 ? 0x7fffffffffffffffULL : m.extend_usec));
            lua_setfield(L, -2, "extend");
        }
        if (m.has_errno) {
            lua_pushinteger(L, m.errno_value);
            lua_setfield(L, -2, "errno");
        }
        lua_pushinteger(L, sender);
        return 3;
    case LISTENER_REFUSED:
        lua_pushliteral(L, "refused");
        lua_pushinteger(L, sender);
        return 2;
    case LISTENER_MALFORMED:
        lua_pushliteral(L, "malformed");
        lua_pushstring(L, m.error);
        return 2;
    case LISTENER_LATER:
        lua_pushliteral(L, "later");
        return 1;
    case LISTENER_ERROR: {
        int err = errno;
        lua_pushliteral(L, "error");
        lua_pushstring(L, strerror(err));
        lua_pushinteger(L, err);
        return 3;
    }
    default:
        return 0;
    }
}

/* l:verify_main(pid) -> process | nil, why: MAINPID= after ready, checked
 * by the pid truth rules (listener.h); the listener follows it */
static int l_listener_verify_main(lua_State *L)
{
    struct listener *l = check_listener(L, 1);
    lua_Integer pid = luaL_checkinteger(L, 2);
    if (pid <= 0 || pid > 0x7fffffff) {
        /* what an app sent (MAINPID=0): refused as any pid not proven */
        lua_pushnil(L);
        lua_pushliteral(L, "not a pid a process may have (0 names none)");
        return 2;
    }
    struct lb_process *p = lb_new_process(L);
    char why[128];
    if (listener_verify_main(l, (pid_t)pid, &p->p, why, sizeof why) != 0) {
        p->p.end = PROCESS_GONE;
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    return 1;
}

/* l:end_main(pid) -> true | false: pid, the main, has been seen to end
 * and what the socket held then read; its number is refused from now on
 * (listener_end_main). false: the main is another by now */
static int l_listener_end_main(lua_State *L)
{
    struct listener *l = check_listener(L, 1);
    lua_Integer pid = luaL_checkinteger(L, 2);
    lua_pushboolean(L, pid > 0 && pid <= 0x7fffffff && listener_end_main(l, (pid_t)pid));
    return 1;
}

static int l_listener_close(lua_State *L)
{
    listener_close(check_listener(L, 1));
    return 0;
}

static int l_listener_tostring(lua_State *L)
{
    struct listener *l = check_listener(L, 1);
    lua_pushfstring(L, "appstart.listener(pid %d, %s)", (int)l->main, l->sock ? "open" : "closed");
    return 1;
}

void lb_open_listener(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "fd", l_listener_fd },       { "main", l_listener_main },
        { "read", l_listener_read },   { "verify_main", l_listener_verify_main },
        { "end_main", l_listener_end_main },
        { "close", l_listener_close }, { NULL, NULL },
    };
    lb_new_class(L, LB_LISTENER, methods, l_listener_close, l_listener_tostring);
    lua_pop(L, 1);
}
