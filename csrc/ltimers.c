/*
 * ltimers.c: the loop's timers, a binary heap ordered by each timer's
 * `at`, kept in a Lua table (appstart/loop.lua holds the policy: what a
 * timer is for, when the loop looks).
 *
 *   core.timer_push(heap, t)      t into the heap
 *   core.timer_pop(heap) -> true | false: the first timer out; a live
 *       one is marked out (t.cancelled = true, t.fn = nil, t.arg = false)
 *       and its fn called, fn(arg) (true once it has returned: it may
 *       yield), a cancelled one only dropped (false)
 *   core.timer_cancel(heap, t)    t cancelled (marked as above); the heap
 *       rebuilt without the cancelled once they are most of it
 *
 * heap[1..n] are the timers, heap.ncancelled how many of them are
 * cancelled; a timer is a table with the fields at (a number), fn, arg and
 * cancelled, all present from its making (no call here adds a field).
 *
 * In C, so that each operation is all or nothing: lua5.4 raises ^C
 * ("interrupted!") from a hook at whatever Lua instruction comes next, and
 * a heap stopped in the middle of a sift held a timer twice and lost
 * another (a wait that never woke); one popped and not called yet was
 * lost too, which is why the pop calls fn itself. No hook runs inside a C
 * function (fn's own, as it is called, is a ^C in fn). Nor does anything
 * here allocate once the heap has changed: the only store that may grow
 * the table (a push's new slot) comes first.
 */
#include "lbinding.h"

/* Compactions wait until the heap holds more than this */
#define COMPACT_MIN 64

/* The field names, interned once (upvalues): pushing one never allocates */
#define UV_AT lua_upvalueindex(1)
#define UV_FN lua_upvalueindex(2)
#define UV_ARG lua_upvalueindex(3)
#define UV_CANCELLED lua_upvalueindex(4)
#define UV_NCANCELLED lua_upvalueindex(5)

/* heap[i].at */
static lua_Number timer_at(lua_State *L, int heap, lua_Integer i)
{
    lua_rawgeti(L, heap, i);
    lua_pushvalue(L, UV_AT);
    lua_rawget(L, -2);
    lua_Number at = lua_tonumber(L, -1);
    lua_pop(L, 2);
    return at;
}

/* Is the timer at the top of the stack cancelled? */
static int top_cancelled(lua_State *L)
{
    lua_pushvalue(L, UV_CANCELLED);
    lua_rawget(L, -2);
    int c = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return c;
}

static lua_Integer get_ncancelled(lua_State *L, int heap)
{
    lua_pushvalue(L, UV_NCANCELLED);
    lua_rawget(L, heap);
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}

/* heap.ncancelled = n (a field the heap has: no allocation) */
static void set_ncancelled(lua_State *L, int heap, lua_Integer n)
{
    lua_pushvalue(L, UV_NCANCELLED);
    lua_pushinteger(L, n);
    lua_rawset(L, heap);
}

/* Mark the timer at the top of the stack out of the heap: cancelled, its
 * fn and arg let go of (fields it has: no allocation). */
static void mark_out(lua_State *L)
{
    lua_pushvalue(L, UV_CANCELLED);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pushvalue(L, UV_FN);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pushvalue(L, UV_ARG);
    lua_pushboolean(L, 0);
    lua_rawset(L, -3);
}

/* The timer at the top of the stack (popped), whose `at` is at, into slot
 * i of a heap of n, moved down past its smaller children. */
static void sift_down(lua_State *L, int heap, lua_Integer i, lua_Integer n, lua_Number at)
{
    for (;;) {
        lua_Integer l = 2 * i, r = l + 1, m = i;
        lua_Number m_at = at;
        if (l <= n) {
            lua_Number l_at = timer_at(L, heap, l);
            if (l_at < m_at)
                m = l, m_at = l_at;
        }
        if (r <= n) {
            lua_Number r_at = timer_at(L, heap, r);
            if (r_at < m_at)
                m = r, m_at = r_at;
        }
        if (m == i)
            break;
        lua_rawgeti(L, heap, m);
        lua_rawseti(L, heap, i);
        i = m;
    }
    lua_rawseti(L, heap, i);
}

static int l_timer_push(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushvalue(L, UV_AT);
    lua_rawget(L, 2);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER, 2, "a timer (its at a number) expected");
    lua_Number at = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_Integer i = (lua_Integer)lua_rawlen(L, 1) + 1;
    /* the one store that may allocate (the table grows), before any other */
    lua_pushvalue(L, 2);
    lua_rawseti(L, 1, i);
    while (i > 1) {
        lua_Integer parent = i / 2;
        if (timer_at(L, 1, parent) <= at)
            break;
        lua_rawgeti(L, 1, parent);
        lua_rawseti(L, 1, i);
        i = parent;
    }
    lua_pushvalue(L, 2);
    lua_rawseti(L, 1, i);
    return 0;
}

/* timer_pop's end once fn has returned (or resumed after a yield) */
static int timer_called(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_pushboolean(L, 1);
    return 1;
}

static int l_timer_pop(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_rawgeti(L, 1, 1); /* 2: the first timer */
    lua_rawgeti(L, 1, n); /* 3: the last */
    lua_pushnil(L);
    lua_rawseti(L, 1, n);
    n--;
    if (n > 0) {
        lua_pushvalue(L, UV_AT);
        lua_rawget(L, 3);
        lua_Number at = lua_tonumber(L, -1);
        lua_pop(L, 1);
        sift_down(L, 1, 1, n, at); /* pops 3 */
    } else {
        lua_pop(L, 1);
    }
    if (top_cancelled(L)) {
        set_ncancelled(L, 1, get_ncancelled(L, 1) - 1);
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushvalue(L, UV_FN);
    lua_rawget(L, 2); /* 3: fn */
    lua_pushvalue(L, UV_ARG);
    lua_rawget(L, 2); /* 4: arg */
    lua_pushvalue(L, 2);
    mark_out(L);
    lua_pop(L, 1);
    lua_callk(L, 1, 0, 0, timer_called);
    return timer_called(L, LUA_OK, 0);
}

static int l_timer_cancel(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (top_cancelled(L))
        return 0;
    mark_out(L);
    lua_Integer ncancelled = get_ncancelled(L, 1) + 1;
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n <= COMPACT_MIN || ncancelled * 2 <= n) {
        set_ncancelled(L, 1, ncancelled);
        return 0;
    }
    /* the live ones to the front, in place, then made a heap again */
    lua_Integer kept = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (top_cancelled(L)) {
            lua_pop(L, 1);
            continue;
        }
        lua_rawseti(L, 1, ++kept);
    }
    for (lua_Integer i = n; i > kept; i--) {
        lua_pushnil(L);
        lua_rawseti(L, 1, i);
    }
    for (lua_Integer i = kept / 2; i >= 1; i--) {
        lua_Number at = timer_at(L, 1, i);
        lua_rawgeti(L, 1, i);
        sift_down(L, 1, i, kept, at);
    }
    set_ncancelled(L, 1, 0);
    return 0;
}

void lb_open_timers(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "timer_push", l_timer_push },
        { "timer_pop", l_timer_pop },
        { "timer_cancel", l_timer_cancel },
        { NULL, NULL },
    };
    lua_pushliteral(L, "at");
    lua_pushliteral(L, "fn");
    lua_pushliteral(L, "arg");
    lua_pushliteral(L, "cancelled");
    lua_pushliteral(L, "ncancelled");
    luaL_setfuncs(L, functions, 5);
}
