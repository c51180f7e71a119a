/*
 * lcore.c: luaopen_appstart_core, the helpers the binding's files share,
 * and the module's own functions.
 */
#include "lbinding.h"
#include "children.h"
#include "tree.h"
#include "notifysock.h"
#include "procfs.h"
#include "spawn.h"
#include "sys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef APPSTART_VERSION
#error "APPSTART_VERSION: the build passes the VERSION file's"
#endif
#ifndef APPSTART_HELPER_PATH
#define APPSTART_HELPER_PATH "/usr/local/libexec/appstart/appstart-helper"
#endif

/* ---- shared helpers ---- */

int lb_errno_result(lua_State *L, int err, const char *what)
{
    lua_pushnil(L);
    if (what)
        lua_pushfstring(L, "%s: %s", what, strerror(err));
    else
        lua_pushstring(L, strerror(err));
    lua_pushinteger(L, err);
    return 3;
}

const char *lb_check_cstring(lua_State *L, int arg)
{
    size_t len;
    const char *v = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, strlen(v) == len, arg, "contains a NUL byte");
    return v;
}

int lb_check_fd(lua_State *L, int arg)
{
    lua_Integer v = luaL_checkinteger(L, arg);
    luaL_argcheck(L, v >= 0 && v <= INT_MAX, arg, "not a descriptor");
    return (int)v;
}

double lb_opt_timeout(lua_State *L, int arg)
{
    lua_Number t = luaL_optnumber(L, arg, -1);
    luaL_argcheck(L, t == t, arg, "not a number (NaN)");
    return t < 0 ? -1 : (double)t;
}

unsigned lb_check_id(lua_State *L, int arg)
{
    lua_Integer v = luaL_checkinteger(L, arg);
    luaL_argcheck(L, v >= 0 && v <= 0xfffffffe, arg, "out of range");
    return (unsigned)v;
}

void lb_push_how(lua_State *L, int end, int code)
{
    lua_createtable(L, 0, 1);
    if (end == PROCESS_EXITED) {
        lua_pushinteger(L, code);
        lua_setfield(L, -2, "code");
    } else if (end == PROCESS_SIGNALED) {
        lua_pushinteger(L, code);
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
    { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },   { "XCPU", SIGXCPU },
    { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
    { "SYS", SIGSYS },   { "TRAP", SIGTRAP },   { "BUS", SIGBUS },
    { "URG", SIGURG },   { "IO", SIGIO },       { "PWR", SIGPWR },
#ifdef SIGSTKFLT
    { "STKFLT", SIGSTKFLT },
#endif
};

int lb_check_signal(lua_State *L, int arg, int def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    if (lua_type(L, arg) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, arg);
        luaL_argcheck(L, n >= 0 && n < NSIG, arg, "signal number out of range");
        return (int)n;
    }
    size_t len;
    const char *given = luaL_checklstring(L, arg, &len);
    const char *name = strncasecmp(given, "SIG", 3) == 0 ? given + 3 : given;
    if (strlen(given) == len) {
        for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
            if (strcasecmp(name, signal_names[i].name) == 0)
                return signal_names[i].num;
        /* the real-time ones, as core.signame names them (RTMIN+N), and as
         * kill(1) does (RTMAX-N): their numbers are the C library's */
        if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
            int base = toupper((unsigned char)name[4]) == 'N' ? SIGRTMIN : SIGRTMAX;
            int sign = base == SIGRTMIN ? '+' : '-', n = 0;
            const char *p = name + 5;
            if (*p == sign && p[1] >= '0' && p[1] <= '9' && (p[2] == '\0' || (p[2] >= '0' && p[2] <= '9' && !p[3])))
                n = atoi(p + 1);
            else if (*p != '\0')
                n = -1;
            int num = sign == '+' ? base + n : base - n;
            if (n >= 0 && num >= SIGRTMIN && num <= SIGRTMAX)
                return num;
        }
    }
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", given));
}

/* Every method (and metamethod) holds the class's metatable as its first
 * upvalue: lb_check_self compares with it, where luaL_checkudata would
 * look the name up in the registry on every call. */
void lb_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, lua_CFunction tostring)
{
    luaL_newmetatable(L, name);
    int mt = lua_gettop(L);
    lua_newtable(L);
    lua_pushvalue(L, mt);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, mt, "__index");
    const struct { const char *name; lua_CFunction fn; } metamethods[] = {
        { "__gc", close }, { "__close", close }, { "__tostring", tostring },
    };
    for (size_t i = 0; i < sizeof metamethods / sizeof *metamethods; i++)
        if (metamethods[i].fn) {
            lua_pushvalue(L, mt);
            lua_pushcclosure(L, metamethods[i].fn, 1);
            lua_setfield(L, mt, metamethods[i].name);
        }
    lua_pushliteral(L, "locked");
    lua_setfield(L, mt, "__metatable");
}

void *lb_check_self(lua_State *L, int i, const char *name)
{
    void *p = lua_touserdata(L, i);
    if (p && lua_getmetatable(L, i)) {
        int same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
        if (same)
            return p;
    }
    luaL_typeerror(L, i, name);
    return NULL;
}

/* ---- module functions ---- */

static int l_now(lua_State *L)
{
    lua_pushnumber(L, sys_now());
    return 1;
}

/* core.euid() -> the launcher's effective uid, and whether what it execs
 * runs in secure mode (AT_SECURE: its real and effective ids differ, so
 * the kernel marks the exec so though the file is not setuid) */
static int l_euid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)geteuid());
    lua_pushboolean(L, getuid() != geteuid() || getgid() != getegid());
    return 2;
}

/* core.wait_readable(fd, timeout) -> true | false (timeout): blocks; fd
 * -1 with a timeout is a sleep (without one it would never return) */
static int l_wait_readable(lua_State *L)
{
    int fd = luaL_checkinteger(L, 1) == -1 ? -1 : lb_check_fd(L, 1);
    double timeout = lb_opt_timeout(L, 2);
    luaL_argcheck(L, fd >= 0 || timeout >= 0, 2, "a timeout is needed without a descriptor");
    int r = sys_wait_readable(fd, timeout);
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    lua_pushboolean(L, r);
    return 1;
}

/* core.writable(fd) -> whether a write of up to PIPE_BUF bytes to fd
 * goes through at once: a pipe or terminal with room (a pipe that has a
 * free slot takes PIPE_BUF bytes), a file; also one whose reader is gone
 * or that is not open (the write says so, and raises SIGPIPE); then
 * whether it is such a one (a pipe's reader gone: POLLERR) */
static int l_writable(lua_State *L)
{
    struct pollfd pf = { .fd = lb_check_fd(L, 1), .events = POLLOUT, .revents = 0 };
    int r;
    do
        r = poll(&pf, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return lb_errno_result(L, errno, "poll");
    lua_pushboolean(L, r > 0);
    lua_pushboolean(L, r > 0 && (pf.revents & (POLLERR | POLLHUP | POLLNVAL)));
    return 2;
}

static int l_signum(lua_State *L)
{
    lua_pushinteger(L, lb_check_signal(L, 1, SIGTERM));
    return 1;
}

/* core.signame(n) -> "TERM" | "RTMIN+2" | nil: the name of signal n */
static int l_signame(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
        if (signal_names[i].num == n) {
            lua_pushstring(L, signal_names[i].name);
            return 1;
        }
    if (n >= SIGRTMIN && n <= SIGRTMAX) {
        if (n == SIGRTMIN)
            lua_pushliteral(L, "RTMIN");
        else
            lua_pushfstring(L, "RTMIN+%d", (int)(n - SIGRTMIN));
        return 1;
    }
    return 0;
}

/* core.isatty(fd) -> whether fd is a terminal */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(lb_check_fd(L, 1)));
    return 1;
}

/* core.terminal_columns(fd) -> the width of the terminal at fd, or nil
 * (not a terminal, or one that does not say) */
static int l_terminal_columns(lua_State *L)
{
    struct winsize ws;
    if (ioctl(lb_check_fd(L, 1), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        lua_pushinteger(L, ws.ws_col);
    else
        lua_pushnil(L);
    return 1;
}

/* core.open_stdio(): 0, 1 and 2, those closed, opened on /dev/null. For a
 * program's first step (the command's): with one of them closed, the next
 * descriptor made takes its number, and what the program writes to stdout
 * (or reads from stdin) would go to that one (a signalfd, a socket)
 * instead. Not close-on-exec: they are stdio, what a child given
 * "inherit" takes. */
static int l_open_stdio(lua_State *L)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int got;
        do
            got = open("/dev/null", O_RDWR | O_NOCTTY);
        while (got < 0 && errno == EINTR);
        if (got < 0)
            return luaL_error(L, "/dev/null: %s", strerror(errno));
        /* the lowest free number: fd, unless another thread took it
         * meanwhile (then it is open, and this one is not needed) */
        if (got != fd)
            (void)close(got);
    }
    return 0;
}

/* core.bad_string(list) -> nil | i, why: the first entry of the array
 * list that is no string, or holds a NUL byte (which a C string would cut
 * there), in one call however long the list (options.lua's checks) */
static int l_bad_string(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        int type = lua_geti(L, 1, i);
        if (type != LUA_TSTRING) {
            lua_pushinteger(L, i);
            lua_pushfstring(L, "string expected, got %s", lua_typename(L, type));
            return 2;
        }
        size_t len;
        const char *v = lua_tolstring(L, -1, &len);
        lua_pop(L, 1);
        if (memchr(v, '\0', len)) {
            lua_pushinteger(L, i);
            lua_pushliteral(L, "contains a NUL byte");
            return 2;
        }
    }
    return 0;
}

/* core.pid() -> this process's pid */
static int l_pid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* core.process_group(pid) -> the process group of pid, its session | nil
 * once gone */
static int l_process_group(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    struct procfs_stat st;
    if (pid <= 0 || pid > INT_MAX || procfs_stat((pid_t)pid, &st) != 0)
        return 0;
    lua_pushinteger(L, st.pgrp);
    lua_pushinteger(L, st.session);
    return 2;
}

/* core.proc_status(pid) -> { tgid = N, blocked = MASK, ignored = MASK,
 * caught = MASK } (SigBlk, SigIgn, SigCgt: bit n-1 for signal n) | nil,
 * message, errno (ESRCH once gone) */
static int l_proc_status(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    struct procfs_status st;
    int err = pid > 0 && pid <= INT_MAX ? procfs_status((pid_t)pid, &st) : ESRCH;
    if (err)
        return lb_errno_result(L, err, "/proc/PID/status");
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, st.tgid);
    lua_setfield(L, -2, "tgid");
    lua_pushinteger(L, (lua_Integer)st.sig_blocked);
    lua_setfield(L, -2, "blocked");
    lua_pushinteger(L, (lua_Integer)st.sig_ignored);
    lua_setfield(L, -2, "ignored");
    lua_pushinteger(L, (lua_Integer)st.sig_caught);
    lua_setfield(L, -2, "caught");
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
        return lb_errno_result(L, err, "setrlimit");
    lua_pushinteger(L, (lua_Integer)now);
    lua_pushinteger(L, (lua_Integer)hard);
    return 2;
}

/* No entry, or (nil, errno) when it could not be read for want of
 * resources (out of descriptors): no "no such user" then. */
static int lookup_failed(lua_State *L, int err)
{
    if (!sys_lacks_resources(err))
        return 0;
    lua_pushnil(L);
    lua_pushinteger(L, err);
    return 2;
}

/* core.user(name_or_uid) -> uid, gid, name | nil | nil, errno */
static int l_user(lua_State *L)
{
    struct passwd *pw;
    int number = lua_type(L, 1) == LUA_TNUMBER;
    uid_t uid = number ? (uid_t)lb_check_id(L, 1) : 0;
    const char *name = number ? NULL : lb_check_cstring(L, 1);
    errno = 0;
    pw = number ? getpwuid(uid) : getpwnam(name);
    if (!pw)
        return lookup_failed(L, errno);
    lua_pushinteger(L, pw->pw_uid);
    lua_pushinteger(L, pw->pw_gid);
    lua_pushstring(L, pw->pw_name);
    return 3;
}

/* core.group(name_or_gid) -> gid, name | nil | nil, errno: a group the
 * system knows (a gid with no entry is nil too) */
static int l_group(lua_State *L)
{
    struct group *gr;
    int number = lua_type(L, 1) == LUA_TNUMBER;
    gid_t gid = number ? (gid_t)lb_check_id(L, 1) : 0;
    const char *name = number ? NULL : lb_check_cstring(L, 1);
    errno = 0;
    gr = number ? getgrgid(gid) : getgrnam(name);
    if (!gr)
        return lookup_failed(L, errno);
    lua_pushinteger(L, gr->gr_gid);
    lua_pushstring(L, gr->gr_name);
    return 2;
}

/* core.notify(text [, socket]) -> true | nil, message, errno: one
 * sd_notify datagram to socket (default $NOTIFY_SOCKET), never waiting;
 * nil, "NOTIFY_SOCKET is not set" when there is none. socket may also be
 * a descriptor of core.notify_peer's: sent on it. */
static int l_notify(lua_State *L)
{
    size_t len;
    const char *msg = luaL_checklstring(L, 1, &len);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int err = notify_send_peer(lb_check_fd(L, 2), msg, len);
        if (err)
            return lb_errno_result(L, err, "send");
        lua_pushboolean(L, 1);
        return 1;
    }
    const char *path = lua_isnoneornil(L, 2) ? getenv("NOTIFY_SOCKET") : lb_check_cstring(L, 2);
    if (!path || !*path) {
        lua_pushnil(L);
        lua_pushliteral(L, "NOTIFY_SOCKET is not set");
        return 2;
    }
    int err = notify_send(path, msg, len);
    if (err)
        return lb_errno_result(L, err, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.notify_peer(socket) -> fd | nil, message, errno: a datagram socket
 * connected to the notify socket at socket, to poll for writing: writable
 * once that socket's queue, which core.notify found full (EAGAIN), has
 * room again. The caller closes it (core.close). */
static int l_notify_peer(lua_State *L)
{
    const char *path = lb_check_cstring(L, 1);
    int fd;
    int err = notify_peer(path, &fd);
    if (err)
        return lb_errno_result(L, err, path);
    lua_pushinteger(L, fd);
    return 1;
}

/* core.reap() -> nothing: children let go of before they ended (an app
 * closed or collected) are reaped, each by its pid, once they have, and
 * the cgroups let go of removed once empty; what every wait does, so that
 * none stays until the next start */
static int l_reap(lua_State *L)
{
    (void)L;
    children_reap_exited();
    tree_sweep_deferred();
    return 0;
}

/* core.dup(fd) -> a copy, close-on-exec, numbered 3 or more; core.dup(fd,
 * to) -> to: fd copied onto the number to (dup2), not close-on-exec (a
 * stdio number, what a child given "inherit" takes); nil, message, errno
 * on failure. core.close(fd). For an event loop's adapter that must own
 * what it polls (cqueues: a descriptor another coroutine closes while one
 * still polls it breaks the controller), and the command's stdout moved
 * aside (supervise --json). */
static int l_dup(lua_State *L)
{
    int fd = lb_check_fd(L, 1);
    int r;
    if (lua_isnoneornil(L, 2)) {
        r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    } else {
        int to = lb_check_fd(L, 2);
        do
            r = dup2(fd, to);
        while (r < 0 && (errno == EINTR || errno == EBUSY));
    }
    if (r < 0)
        return lb_errno_result(L, errno, "dup");
    lua_pushinteger(L, r);
    return 1;
}

/* core.write(fd, text) -> true | nil, message, errno: all of text,
 * retried on EINTR (a blocking descriptor: the caller asks
 * core.writable first where it must not wait) */
static int l_write(lua_State *L)
{
    int fd = lb_check_fd(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    if (sys_write_all(fd, text, len) < 0)
        return lb_errno_result(L, errno, "write");
    lua_pushboolean(L, 1);
    return 1;
}

/* core.write_now(fd, text) -> n | nil, message, errno: what of text fd
 * takes at once (n may be short: a terminal with less room; none: EAGAIN),
 * never waiting for a reader. POLLOUT says only that some room is there
 * (a terminal's may be a byte), and fd's file description is shared with
 * whoever gave it: a pipe, fifo or terminal is written with O_NONBLOCK
 * set on it for that one write, and put back (another writer to it sees
 * the flag only for that write, and only if the terminal is full then: it
 * would have waited); a socket with MSG_DONTWAIT; a file as ever (it
 * waits for no reader). (A description of its own, opened anew through
 * /proc, would need the device's permissions, which the launcher may not
 * have, and is another pty for a pty's master.) The job-control signals
 * are held meanwhile: a stop in that window (^Z, or SIGTTOU for a
 * background write with TOSTOP) would leave the flag set on a terminal
 * the shell shares; with SIGTTOU held, such a write goes through, as
 * with TOSTOP off. (SIGSTOP cannot be held; nor, in a process with other
 * threads, a ^Z that another thread takes: it stops this one too.) */
static int l_write_now(lua_State *L)
{
    int fd = lb_check_fd(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    struct stat st;
    ssize_t n;
    if (fstat(fd, &st) != 0)
        return lb_errno_result(L, errno, "write");
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode)) {
        n = sys_write_all(fd, text, len);
    } else if (S_ISSOCK(st.st_mode)) {
        do
            n = send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
    } else {
        sigset_t jobs, old;
        sigemptyset(&jobs);
        sigaddset(&jobs, SIGTSTP);
        sigaddset(&jobs, SIGTTOU);
        sigaddset(&jobs, SIGTTIN);
        (void)pthread_sigmask(SIG_BLOCK, &jobs, &old);
        int flags = fcntl(fd, F_GETFL);
        int set = flags >= 0 && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
        if (flags >= 0 && ((flags & O_NONBLOCK) || set)) {
            do
                n = write(fd, text, len);
            while (n < 0 && errno == EINTR);
        } else {
            n = -1;
        }
        int saved = errno;
        if (set)
            (void)fcntl(fd, F_SETFL, flags);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    if (n < 0)
        return lb_errno_result(L, errno, "write");
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static int l_close(lua_State *L)
{
    int fd = lb_check_fd(L, 1);
    sys_close(&fd);
    return 0;
}

static int l_strerror(lua_State *L)
{
    lua_pushstring(L, strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* core.lacks_resources(errno) -> boolean: out of descriptors or memory
 * for now (sys_lacks_resources), a try to make again */
static int l_lacks_resources(lua_State *L)
{
    lua_pushboolean(L, sys_lacks_resources((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* (in a protected call) a room of n bytes, collected with the rest */
static int new_room(lua_State *L)
{
    (void)lua_newuserdatauv(L, (size_t)lua_tointeger(L, 1), 0);
    return 1;
}

/* Who may change what st describes, besides root and uid (and the groups
 * root and gid, this user's own): nobody (NULL), or a text that says who.
 * A directory writable by others with its sticky bit (/tmp) lets them add
 * names but not replace another's. */
static const char *others_may_change(const struct stat *st, uid_t uid, gid_t gid, char *why, size_t len)
{
    if (st->st_uid != 0 && st->st_uid != uid) {
        snprintf(why, len, "owned by uid %lu", (unsigned long)st->st_uid);
        return why;
    }
    if (S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
        return NULL;
    if (st->st_mode & S_IWOTH)
        return "writable by every user";
    if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && st->st_gid != gid) {
        snprintf(why, len, "writable by group %lu", (unsigned long)st->st_gid);
        return why;
    }
    return NULL;
}

/* core.read_trusted(path, max) -> the text of a file that only root and
 * this user (the effective uid) can change, read whole (max bytes at
 * most) | nil, why, errno. The file (opened without following a link in
 * its last component) must be regular, owned by root or this user and
 * writable by no other user (nor by a group but root's and this user's
 * own, the effective gid); so must every directory of
 * its real path (but for the sticky bit's leave), and that path must name
 * the file opened: code that runs as this user comes from nowhere another
 * user can write. */
static int l_read_trusted(lua_State *L)
{
    const char *path = lb_check_cstring(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    luaL_argcheck(L, max > 0 && max < INT_MAX, 2, "size out of range");
    uid_t me = geteuid();
    char why[96];
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        struct stat link;
        /* a link in the last component, never followed, is said as what it
         * is, not as ELOOP's "Too many levels of symbolic links" */
        if (err == ELOOP && lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s: refused: it is a symbolic link, never followed (name the file itself)", path);
            return 2;
        }
        return lb_errno_result(L, err, path);
    }
    struct stat st;
    const char *bad = NULL;
    char *real = NULL;
    int err = fstat(fd, &st) < 0 ? errno : 0;
    if (!err && !S_ISREG(st.st_mode))
        bad = "not a regular file";
    if (!err && !bad)
        bad = others_may_change(&st, me, getegid(), why, sizeof why);
    if (!err && !bad && !(real = realpath(path, NULL)))
        err = errno;
    struct stat at;
    if (!err && !bad && (lstat(real, &at) < 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino))
        bad = "replaced while it was looked at";
    /* each directory from the file's up to / (its name kept for the
     * message: where is the part of real before it) */
    const char *where = NULL;
    for (char *slash = real ? strrchr(real, '/') : NULL; !err && !bad && slash; slash = strrchr(real, '/')) {
        *slash = '\0';
        const char *dir = slash == real ? "/" : real;
        if (lstat(dir, &at) < 0)
            err = errno;
        else if ((bad = others_may_change(&at, me, getegid(), why, sizeof why)))
            where = dir;
        if (slash == real)
            break;
    }
    /* (copied out: nothing below may raise with real or fd held) */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", where ? where : "");
    free(real);
    if (!err && !bad && st.st_size > max)
        err = EFBIG;
    /* the text's room made first (a memory error raises with nothing held
     * but fd, which is closed before it can) */
    char *text = NULL;
    size_t got = 0;
    if (!err && !bad) {
        int made = 0;
        lua_pushnil(L); /* (the room's slot) */
        if (lua_checkstack(L, 2)) {
            /* lua_newuserdatauv raises on out of memory: through a
             * protected call, so that fd is closed first */
            lua_pushcfunction(L, new_room);
            lua_pushinteger(L, (lua_Integer)st.st_size + 1);
            made = lua_pcall(L, 1, 1, 0) == LUA_OK;
            lua_replace(L, -2);
        }
        if (!made)
            err = ENOMEM;
        else
            text = lua_touserdata(L, -1);
        while (!err && got < (size_t)st.st_size + 1) {
            ssize_t n = sys_read(fd, text + got, (size_t)st.st_size + 1 - got);
            if (n < 0)
                err = errno;
            else if (n == 0)
                break;
            else
                got += (size_t)n;
        }
        if (got > (size_t)st.st_size) /* it grew meanwhile: what it held */
            got = (size_t)st.st_size;
    }
    sys_close(&fd);
    if (err)
        return lb_errno_result(L, err, path);
    if (bad) {
        lua_pushnil(L);
        if (*dir)
            lua_pushfstring(L, "%s: refused: its directory %s is %s: another user could change the file",
                            path, dir, bad);
        else
            lua_pushfstring(L, "%s: refused: it is %s: another user could change it", path, bad);
        return 2;
    }
    lua_pushlstring(L, text, got);
    return 1;
}

int luaopen_appstart_core(lua_State *L);

int luaopen_appstart_core(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "now", l_now },             { "reap", l_reap },
        { "dup", l_dup },             { "close", l_close },
        { "write", l_write }, { "write_now", l_write_now },
        { "wait_readable", l_wait_readable }, { "writable", l_writable },
        { "signum", l_signum },       { "notify", l_notify },
        { "notify_peer", l_notify_peer },
        { "signame", l_signame },
        { "isatty", l_isatty },       { "open_stdio", l_open_stdio },
        { "terminal_columns", l_terminal_columns },
        { "pid", l_pid },             { "euid", l_euid },
        { "bad_string", l_bad_string },
        { "process_group", l_process_group }, { "proc_status", l_proc_status },
        { "raise_nofile", l_raise_nofile },
        { "user", l_user },
        { "group", l_group },
        { "strerror", l_strerror },   { "lacks_resources", l_lacks_resources },
        { "read_trusted", l_read_trusted },
        { NULL, NULL },
    };
    luaL_newlib(L, functions);
    lb_open_process(L);
    lb_open_starter(L);
    lb_open_poller(L);
    lb_open_signals(L);
    lb_open_testing(L);
    lb_open_listener(L);
    lb_open_probe(L);
    lb_open_timers(L);
    lb_open_output(L);
    lua_pushliteral(L, APPSTART_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, APPSTART_HELPER_PATH);
    lua_setfield(L, -2, "helper_path");
    lua_pushliteral(L, SPAWN_DEFAULT_PATH);
    lua_setfield(L, -2, "default_path");
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
    return 1;
}
