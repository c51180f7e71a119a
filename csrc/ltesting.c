/*
 * ltesting.c: knobs and probes for the test suite, kept apart from the
 * module's functions: core.testing (and appstart.testing, its Lua name).
 * Nothing here is needed to use appstart.
 */
#include "children.h"
#include "lbinding.h"
#include "output.h"
#include "spawn.h"
#include "starter.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

/* use_pidfd([on]) -> whether pidfds are in use: false forces the kill(pid,
 * 0) fallback, which older kernels take */
static int l_use_pidfd(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        process_use_pidfd(lua_toboolean(L, 1));
    lua_pushboolean(L, process_pidfd_enabled());
    return 1;
}

/* probe_source_port(port): the next tcp connect of a probe binds its socket
 * to that source port (a connect to that port of the same address reaches
 * itself: TCP's simultaneous open, which the probe must not take for a
 * listener) */
static int l_probe_source_port(lua_State *L)
{
    lua_Integer port = luaL_checkinteger(L, 1);
    luaL_argcheck(L, port >= 0 && port < 65536, 1, "port out of range");
    lb_probe_source_port((int)port);
    return 0;
}

/* hold_leaders([on]) -> whether a group's leader, or a notify app's main,
 * is held unreaped after its end until let go of (process.h): false reaps
 * it at once, as one that is not held (a main moved by MAINPID=, a leader
 * or a main another wait reaps) */
static int l_hold_leaders(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        process_hold_leaders(lua_toboolean(L, 1));
    lua_pushboolean(L, process_holds_leaders());
    return 1;
}

/* has_pidfd() -> whether the kernel (or valgrind) offers pidfds at all */
static int l_has_pidfd(lua_State *L)
{
    lua_pushboolean(L, process_pidfd_available());
    return 1;
}

/* exec_report(["pipe" | "auto"]) -> "memory" | "pipe" | "unknown": how the
 * verdict of an exec comes back (see spawn.h); "pipe" forces the path
 * taken where vfork is emulated as fork */
static int l_exec_report(lua_State *L)
{
    static const char *const modes[] = { "pipe", "auto", NULL };
    const char *force = NULL;
    if (!lua_isnoneornil(L, 1))
        force = modes[luaL_checkoption(L, 1, NULL, modes)];
    lua_pushstring(L, spawn_report_mode(force));
    return 1;
}

/* fds() -> sorted array of this process's open descriptors */
static int l_fds(lua_State *L)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return lb_errno_result(L, errno, "/proc/self/fd");
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

/* no_cgroup_kill(on): take the path of kernels without cgroup.kill (each
 * member SIGKILLed by its pidfd) */
static int l_no_cgroup_kill(lua_State *L)
{
    tree_no_cgroup_kill = lua_toboolean(L, 1);
    return 0;
}

/* epoll_fault([errno]): every descriptor a start adds to its epoll set
 * (h:pollfd(), an event loop's wait) fails to go in with that errno, as
 * ENOSPC does past the kernel's limit on watches; none or 0: none fails */
static int l_epoll_fault(lua_State *L)
{
    lua_Integer err = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, err >= 0 && err < 4096, 1, "errno out of range");
    starter_epoll_fault = (int)err;
    return 0;
}

/* reap(): reap now the children let go of before they ended, and remove
 * the cgroups let go of that have emptied */
static int l_reap(lua_State *L)
{
    (void)L;
    children_reap_abandoned();
    tree_sweep_deferred();
    return 0;
}

/* reap_zombie(pid) -> whether pid was a child of this process that had
 * exited, now reaped (a live child is left alone): the suite's cleanup of
 * a child a failed test left, so that the tests after it start clean */
static int l_reap_zombie(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "pid out of range");
    int status;
    pid_t w;
    do
        w = waitpid((pid_t)pid, &status, WNOHANG);
    while (w < 0 && errno == EINTR);
    if (w == (pid_t)pid)
        children_reaped((pid_t)pid);
    lua_pushboolean(L, w == (pid_t)pid);
    return 1;
}

/* adopt_pause(seconds): each adoption window that opens (none open before)
 * pauses that long once the launcher is a subreaper, until adopt_pause(0);
 * an orphan that comes to it meanwhile is a newcomer, taken at the
 * window's end */
static int l_adopt_pause(lua_State *L)
{
    lua_Number seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds <= 10, 1, "0 to 10 seconds expected");
    children_testing_adopt_pause((double)seconds);
    return 0;
}

/* drop_pause(seconds): a pending lease dropped (an app closed while the
 * process between it and the launcher still runs) pauses that long
 * before its adoption window closes, until drop_pause(0): that process
 * may exit meanwhile, its app coming to the launcher */
static int l_drop_pause(lua_State *L)
{
    lua_Number seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds <= 10, 1, "0 to 10 seconds expected");
    children_testing_drop_pause((double)seconds);
    return 0;
}

/* subreaper() -> whether the launcher is a child subreaper now (while an
 * adoption window is open, children.h) */
static int l_subreaper(lua_State *L)
{
    int on = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) < 0)
        return lb_errno_result(L, errno, "prctl");
    lua_pushboolean(L, on);
    return 1;
}

/* pipe_budget() -> bytes the captured pipes of this process hold past
 * their first size (output.c's budget) */
static int l_pipe_budget(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)output_pipe_budget_used());
    return 1;
}

/* dgram_socket(path) -> fd | nil, message, errno: a unix datagram socket
 * bound at path, close-on-exec and non-blocking, that nothing reads until
 * the caller does (dgram_recv): an outer manager that reads slowly, whose
 * queue fills. The caller closes it (core.close). */
static int l_dgram_socket(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    luaL_argcheck(L, len > 0 && len < sizeof sa.sun_path, 1, "path too long");
    memcpy(sa.sun_path, path, len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return lb_errno_result(L, errno, "socket");
    if (bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1)) < 0) {
        int err = errno;
        sys_close(&fd);
        return lb_errno_result(L, err, path);
    }
    lua_pushinteger(L, fd);
    return 1;
}

/* dgram_recv(fd) -> the next datagram | false when none is queued | nil,
 * message, errno */
static int l_dgram_recv(lua_State *L)
{
    int fd = lb_check_fd(L, 1);
    char buf[4096];
    ssize_t n;
    do
        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            lua_pushboolean(L, 0);
            return 1;
        }
        return lb_errno_result(L, errno, "recv");
    }
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

void lb_open_testing(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "use_pidfd", l_use_pidfd }, { "has_pidfd", l_has_pidfd },
        { "hold_leaders", l_hold_leaders },
        { "exec_report", l_exec_report }, { "fds", l_fds },
        { "reap", l_reap }, { "reap_zombie", l_reap_zombie },
        { "no_cgroup_kill", l_no_cgroup_kill }, { "epoll_fault", l_epoll_fault },
        { "subreaper", l_subreaper }, { "adopt_pause", l_adopt_pause },
        { "drop_pause", l_drop_pause },
        { "probe_source_port", l_probe_source_port }, { "pipe_budget", l_pipe_budget },
        { "dgram_socket", l_dgram_socket }, { "dgram_recv", l_dgram_recv },
        { NULL, NULL },
    };
    luaL_newlib(L, functions);
    lua_setfield(L, -2, "testing");
}
