/*
 * lpoller.c: the poller class (appstart.poller): the one epoll set of a Lua
 * state's loop (appstart/loop.lua), keyed by descriptor.
 */
#include "lbinding.h"
#include "sys.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

struct poller {
    int fd;
};

static struct poller *check_poller(lua_State *L, int i)
{
    struct poller *p = luaL_checkudata(L, i, LB_POLLER);
    if (p->fd < 0)
        luaL_error(L, "poller is closed");
    return p;
}

static int l_poller(lua_State *L)
{
    struct poller *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->fd = -1;
    luaL_setmetatable(L, LB_POLLER);
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return lb_errno_result(L, errno, "epoll_create1");
    return 1;
}

/* p:add(fd, key [, "r"|"w"]) -> true, added | nil, message, errno: added
 * is false when fd was in the set already (its events and key are then
 * updated) */
static int l_poller_add(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    int fd = lb_check_fd(L, 2);
    lua_Integer key = luaL_checkinteger(L, 3);
    const char *ev = luaL_optstring(L, 4, "r");
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = strchr(ev, 'w') ? EPOLLOUT : EPOLLIN;
    e.data.u64 = (unsigned long long)key;
    int added = 1;
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &e) < 0) {
        if (errno != EEXIST || epoll_ctl(p->fd, EPOLL_CTL_MOD, fd, &e) < 0)
            return lb_errno_result(L, errno, "epoll_ctl");
        added = 0;
    }
    lua_pushboolean(L, 1);
    lua_pushboolean(L, added);
    return 2;
}

static int l_poller_del(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    int fd = lb_check_fd(L, 2);
    lua_pushboolean(L, epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL) == 0);
    return 1;
}

/* p:wait(timeout, out) -> n: keys of ready descriptors in out[1..n].
 * timeout in seconds, negative or nil: forever. EINTR returns 0 (the caller
 * recomputes its deadlines, which is what the retry would do). */
static int l_poller_wait(lua_State *L)
{
    struct poller *p = check_poller(L, 1);
    double timeout = lb_opt_timeout(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    int ms = -1;
    if (timeout >= 0)
        ms = timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.999);
    struct epoll_event evs[256];
    int n = epoll_wait(p->fd, evs, 256, ms);
    if (n < 0) {
        if (errno != EINTR)
            return lb_errno_result(L, errno, "epoll_wait");
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
    struct poller *p = luaL_checkudata(L, 1, LB_POLLER);
    sys_close(&p->fd);
    return 0;
}

void lb_open_poller(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "add", l_poller_add },   { "del", l_poller_del },
        { "wait", l_poller_wait }, { "fd", l_poller_fd },
        { "close", l_poller_close }, { NULL, NULL },
    };
    lb_new_class(L, LB_POLLER, methods, l_poller_close, NULL);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_poller);
    lua_setfield(L, -2, "poller");
}
