/*
 * lprocess.c: the process class (appstart.process): a pid held through a
 * pidfd (or probed), signalled, its end collected; with kill_mode "group"
 * or "cgroup", together with the rest of its tree (tree.h): a signal
 * reaches every member, and in a cgroup the app has ended only once the
 * cgroup is empty.
 */
#include "lbinding.h"
#include "sys.h"

#include <errno.h>
#include <signal.h>

static struct lb_process *check_process(lua_State *L, int i)
{
    return lb_check_self(L, i, LB_PROCESS);
}

struct lb_process *lb_new_process(lua_State *L)
{
    struct lb_process *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->p = (struct process)PROCESS_NONE;
    p->p.end = PROCESS_GONE;
    p->tree = NULL;
    luaL_setmetatable(L, LB_PROCESS);
    return p;
}

/* core.process(pid) -> process | nil, message, errno: watch a pid that is
 * not the launcher's child */
static int l_process(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, 1, "pid out of range");
    struct lb_process *p = lb_new_process(L);
    int err = process_open(&p->p, (pid_t)pid, 0);
    if (err)
        return lb_errno_result(L, err, lua_pushfstring(L, "pid %d", (int)pid));
    return 1;
}

static int l_process_pid(lua_State *L)
{
    lua_pushinteger(L, check_process(L, 1)->p.pid);
    return 1;
}

/* p:fd() -> fd, kind: a descriptor readable once it may have ended, "pid"
 * (the pidfd) or, in a cgroup whose app has exited, "cgroup" (one that says
 * when the cgroup changes; the pidfd, readable for good once the app has
 * exited, is no use to a watch from then on) | nil where it is probed */
static int l_process_fd(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    int fd = p->p.pidfd;
    const char *kind = "pid";
    if (p->p.end != PROCESS_RUNNING && p->tree && p->tree->mode == TREE_CGROUP) {
        /* (none while cgroup.events could not be read: its emptying may
         * have come before the look, with no event left to wait for) */
        fd = p->tree->unread ? -1 : tree_fd(p->tree);
        kind = "cgroup";
    }
    if (fd < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, fd);
    lua_pushstring(L, kind);
    return 2;
}

/* p:descriptors() -> what may be in a poll set of the caller's: the pidfd,
 * a cgroup's events descriptor (nil for each it has not), so that it can
 * take them out before p:close() closes them */
static int l_process_descriptors(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    int fds[2] = { p->p.pidfd, p->tree ? p->tree->events_fd : -1 };
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            lua_pushinteger(L, fds[i]);
        else
            lua_pushnil(L);
    }
    return 2;
}

/* p:poll() -> nil while running | how (with how.left where a tree is).
 * The pidfd stays open until p:close() */
static int l_process_poll(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    p->p.keep_pidfd = 1;
    int r = process_has_ended(&p->p);
    if (r == 0)
        return 0;
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    if (p->tree && tree_populated(p->tree))
        return 0; /* the app has exited; its cgroup has not emptied yet */
    lb_push_how(L, p->p.end, p->p.code);
    if (p->tree) {
        lua_pushinteger(L, p->tree->left);
        lua_setfield(L, -2, "left");
    }
    return 1;
}

/* p:signal([sig [, only [, uncounted]]]) -> true | nil, message, errno:
 * to the process and every other member of its tree (SIGKILL to a
 * cgroup: cgroup.kill too); with only, to the process alone; uncounted:
 * no stop's (app:kill), the members it reaches are not counted in
 * how.left. EPERM also when the process has ended and members of its
 * tree could not be signalled. */
static int l_process_signal(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    int sig = lb_check_signal(L, 2, SIGTERM);
    int only = lua_toboolean(L, 3);
    int uncounted = lua_toboolean(L, 4);
    int err = process_signal(&p->p, sig);
    if (p->tree && !only) {
        p->tree->uncounted = uncounted;
        int n = sig == SIGKILL ? (tree_kill(p->tree, p->p.pid, p->p.pidfd), 0)
                               : tree_signal(p->tree, p->p.pid, p->p.pidfd, sig);
        p->tree->uncounted = 0;
        if (err == ESRCH && (n > 0 || (sig == SIGKILL && tree_populated(p->tree))))
            err = 0; /* the app is gone, the rest of its tree was not */
        else if (err == ESRCH && p->tree->refused > 0)
            err = EPERM; /* gone, and the rest another user's */
    }
    if (err)
        return lb_errno_result(L, err, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* p:pgid() -> the process group of kill_mode "group" | nil */
static int l_process_pgid(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    if (!p->tree || p->tree->mode != TREE_GROUP || p->tree->pgid <= 0)
        return 0;
    lua_pushinteger(L, p->tree->pgid);
    return 1;
}

/* p:rest() -> how many members of its tree other than the process run |
 * nil, message, errno: they could not be looked at (out of descriptors,
 * /proc or the cgroup could not be read), which is no empty tree */
static int l_process_rest(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    int n = tree_others(p->tree, p->p.pid);
    if (n < 0)
        return lb_errno_result(L, -n, NULL);
    lua_pushinteger(L, n);
    return 1;
}

/* p:kill_mode() -> "process" | "group" | "cgroup" */
static int l_process_kill_mode(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    lua_pushstring(L, tree_mode_name(p->tree ? p->tree->mode : TREE_PROCESS));
    return 1;
}

/* p:switch(other) -> old | nil: other's process becomes this one's
 * (MAINPID= after ready), the tree stays. The old one is returned when it
 * is a child still to be reaped (the caller watches it to its end), else
 * let go of (its pidfd closed: the caller takes it out of its poll sets
 * first). */
static int l_process_switch(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    struct lb_process *o = check_process(L, 2);
    luaL_argcheck(L, o != p && !o->tree, 2, "another process without a tree expected");
    struct lb_process *old = lb_new_process(L);
    old->p = p->p;
    p->p = o->p;
    o->p = (struct process)PROCESS_NONE;
    o->p.end = PROCESS_GONE;
    if (old->p.is_child && process_has_ended(&old->p) == 0)
        return 1;
    process_release(&old->p);
    return 0;
}

/* p:exited() -> whether the process itself has been seen to end (its end
 * read by p:poll: in a cgroup, what it left may run on) */
static int l_process_exited(lua_State *L)
{
    lua_pushboolean(L, check_process(L, 1)->p.end != PROCESS_RUNNING);
    return 1;
}

/* p:reap() -> nothing: a notify app's main, held unreaped after its end
 * (its number pinned while its socket's last datagrams are read), is
 * reaped now that they have been, its cgroup running on. Never a group's
 * leader, which pins its group's number until the group is let go of. */
static int l_process_reap(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    if (!(p->tree && p->tree->mode == TREE_GROUP))
        process_reap_held(&p->p);
    return 0;
}

static int l_process_close(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    /* an end not seen yet (a plain script that made no call that waits
     * after it) is looked at now: what it left in its group goes as at an
     * end seen (not reaped: the held leader still pins the group) */
    if (p->p.hold && p->p.is_child && p->p.end == PROCESS_RUNNING)
        (void)process_has_ended(&p->p);
    /* a group's leader held unreaped after its end (process.h): the kill
     * of its group that pins its number allows, then the reap */
    if (p->p.hold && p->p.is_child && p->p.end != PROCESS_RUNNING)
        tree_let_go(p->tree, p->p.pid, p->p.pidfd);
    /* what the app left in its group and the launcher adopted (an exec
     * probe's command's leftovers while another start holds the adoption
     * window open): no zombie of the launcher's until that start ends.
     * Before the release: a held leader still pins the group's number */
    tree_take_adopted(p->tree, p->p.pid);
    process_release(&p->p); /* never signals the app: a child is reaped later */
    tree_free(p->tree);     /* a cgroup still in use is removed once empty */
    p->tree = NULL;
    return 0;
}

static int l_process_tostring(lua_State *L)
{
    struct lb_process *p = check_process(L, 1);
    const char *state = p->p.end == PROCESS_RUNNING
                            ? (p->p.pid > 0 ? "running" : "released")
                            : "ended";
    lua_pushfstring(L, "appstart.process(pid %d, %s, %s)", (int)p->p.pid, state,
                    p->p.pidfd >= 0 ? "pidfd" : "probed");
    return 1;
}

void lb_open_process(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "pid", l_process_pid },     { "fd", l_process_fd },
        { "poll", l_process_poll },   { "signal", l_process_signal },
        { "rest", l_process_rest },   { "kill_mode", l_process_kill_mode },
        { "pgid", l_process_pgid },
        { "switch", l_process_switch }, { "close", l_process_close },
        { "reap", l_process_reap }, { "exited", l_process_exited },
        { "descriptors", l_process_descriptors },
        { NULL, NULL },
    };
    lb_new_class(L, LB_PROCESS, methods, l_process_close, l_process_tostring);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_process);
    lua_setfield(L, -2, "process");
}
