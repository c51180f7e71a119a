/*
 * lprobe.c: what the readiness probes need from the system, none of it
 * blocking (appstart/probe.lua holds the policy: when to try, for how
 * long).
 *
 *   core.connect("unix", path) / core.connect("tcp", host, port)
 *       -> true (a connection was made, and closed at once)
 *        | false, why (refused, not there yet, no local port free for now:
 *          try again later; a socket connected to itself is not there
 *          yet either)
 *        | conn (under way: conn:check() later; conn:close())
 *        | nil, message, errno (cannot be tried at all: a bad address)
 *   conn:check() -> true | false (still under way) | false, why (failed,
 *          or connected to itself)
 *   core.mtime(path) -> seconds since the epoch (st_mtime, to the ns) |
 *       nil, message, errno
 *   core.ready_file(path [, uid]) -> mtime, "DEV:INODE" | nil, message,
 *       errno: the file probe's file, as a file the launcher may count
 *       (see l_ready_file)
 *   core.realtime() -> seconds since the epoch (CLOCK_REALTIME_COARSE, the
 *                      clock of file timestamps)
 *   core.resolve(host) -> { numeric address, ... } (each once, in
 *       getaddrinfo's order) | nil, message, errno
 *
 * A tcp host is tried as a numeric address first; a name is resolved by
 * getaddrinfo, which may ask DNS (and block): the caller resolves once per
 * start (core.resolve), and connects to the numeric addresses.
 */
#include "lbinding.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LB_CONN "appstart.conn"

struct conn {
    int fd;
};

/* errors that say "not yet": the listener is not there, or is busy */
static int not_yet(int err)
{
    return err == ECONNREFUSED || err == ENOENT || err == EAGAIN || err == ETIMEDOUT ||
           err == ECONNRESET || err == ENETUNREACH || err == EHOSTUNREACH;
}

/* A tcp connect's EADDRNOTAVAIL says one of two things: no local port is
 * free for its source (the ephemeral range used up for a moment, on a
 * host making many connections: the next try may find one), or there is
 * no source address at all for that destination (IPv6 disabled, ::1
 * asked for), which no later try cures. A udp socket connected there
 * takes its source address the same way, and its port from a range that
 * tcp's connects do not use up: it fails alike only for the second. */
static int no_port_for_now(int family, const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int r;
    do
        r = connect(fd, addr, len);
    while (r < 0 && errno == EINTR);
    int err = r < 0 ? errno : 0;
    sys_close(&fd);
    return err != EADDRNOTAVAIL;
}

/* Is the socket fd, whose connect has succeeded, connected to itself?
 * Linux may give a tcp connect to a port of the ephemeral range that very
 * port as its source, and TCP's simultaneous open then connects the socket
 * to itself: a connection with nothing listening. */
static int connected_to_itself(int fd)
{
    struct sockaddr_storage me, peer;
    socklen_t me_len = sizeof me, peer_len = sizeof peer;
    if (getsockname(fd, (struct sockaddr *)&me, &me_len) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0 || me.ss_family != peer.ss_family)
        return 0;
    if (me.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&me, *b = (const void *)&peer;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (me.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)&me, *b = (const void *)&peer;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return 0;
}

/* A connect of fd has succeeded: pushes true, or false and why when it
 * is a connection to itself (nothing listens: not yet), and closes fd.
 * Returns the number of values. */
static int connected(lua_State *L, int *fd)
{
    int itself = connected_to_itself(*fd);
    sys_close(fd);
    lua_pushboolean(L, !itself);
    if (!itself)
        return 1;
    lua_pushliteral(L, "connected to itself: nothing listens");
    return 2;
}

/* The source port the next tcp connect binds to (testing: a connect to
 * the same port on the same address then reaches itself at once) */
static int next_source_port;

void lb_probe_source_port(int port)
{
    next_source_port = port;
}

/* Bind fd (of family) to the source port set for the next connect, if
 * any: 0 or an errno value. */
static int bind_source(int fd, int family)
{
    int port = next_source_port;
    next_source_port = 0;
    if (!port || (family != AF_INET && family != AF_INET6))
        return 0;
    struct sockaddr_storage src;
    memset(&src, 0, sizeof src);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (void *)&src;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (void *)&src;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof *in6;
    }
    return bind(fd, (struct sockaddr *)&src, len) < 0 ? errno : 0;
}

/* Connect a fresh non-blocking socket to addr: pushes the result (see the
 * header) and returns the number of values. */
static int try_connect(lua_State *L, int family, const struct sockaddr *addr, socklen_t len)
{
    /* the object a connection in progress becomes, made first: nothing
     * may raise (out of memory) while the socket is held outside it */
    struct conn *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->fd = -1;
    luaL_setmetatable(L, LB_CONN);
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        if (sys_lacks_resources(err)) {
            /* out of descriptors or memory for now: a try that failed */
            lua_pushboolean(L, 0);
            lua_pushfstring(L, "socket: %s", strerror(err));
            return 2;
        }
        return lb_errno_result(L, err, "socket");
    }
    int berr = bind_source(fd, family);
    if (berr) {
        sys_close(&fd);
        return lb_errno_result(L, berr, "bind");
    }
    int r;
    do
        r = connect(fd, addr, len);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return connected(L, &fd);
    int err = errno;
    if (err == EINPROGRESS) {
        /* loopback answers within the call, most often: look once */
        struct pollfd pf = { .fd = fd, .events = POLLOUT, .revents = 0 };
        int n;
        do
            n = poll(&pf, 1, 0);
        while (n < 0 && errno == EINTR);
        socklen_t errlen = sizeof err;
        if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0 && err != EINPROGRESS) {
            if (err == 0)
                return connected(L, &fd);
            sys_close(&fd);
            if (not_yet(err)) {
                lua_pushboolean(L, 0);
                lua_pushstring(L, strerror(err));
                return 2;
            }
            return lb_errno_result(L, err, "connect");
        }
        c->fd = fd;
        return 1;
    }
    sys_close(&fd);
    if (not_yet(err) || (err == EADDRNOTAVAIL && no_port_for_now(family, addr, len))) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, strerror(err));
        return 2;
    }
    return lb_errno_result(L, err, "connect");
}

static int l_connect(lua_State *L)
{
    static const char *const kinds[] = { "unix", "tcp", NULL };
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    const char *where = lb_check_cstring(L, 2);
    size_t len = strlen(where);
    if (kind == 0) {
        struct sockaddr_un un;
        memset(&un, 0, sizeof un);
        un.sun_family = AF_UNIX;
        luaL_argcheck(L, len > 0 && len < sizeof un.sun_path, 2, "path too long");
        /* the socket itself, reached by a walk no user but root and the
         * launcher can steer, and never through a symbolic link in its
         * last component: a link the app's user made would have the
         * launcher connect, with its rights, where that user may not. It
         * is held (O_PATH, in a conn: closed however this call ends) and
         * connected to through its /proc/self/fd name */
        struct conn *at = lua_newuserdatauv(L, sizeof *at, 0);
        at->fd = -1;
        luaL_setmetatable(L, LB_CONN);
        const char *name, *why = NULL;
        int dfd, err = sys_open_parent_safely(where, &dfd, &name, &why);
        if (!err) {
            do
                at->fd = openat(dfd, *name ? name : ".", O_PATH | O_NOFOLLOW | O_CLOEXEC);
            while (at->fd < 0 && errno == EINTR);
            err = at->fd < 0 ? errno : 0;
            sys_close(&dfd);
        }
        struct stat st;
        if (!err && fstat(at->fd, &st) < 0)
            err = errno;
        if (!err && S_ISLNK(st.st_mode))
            why = "a symbolic link, never followed (name the socket itself)", err = ELOOP;
        else if (!err && !S_ISSOCK(st.st_mode))
            why = "not a socket", err = ENOTSOCK;
        else if (!err && st.st_nlink != 1)
            /* another name for a socket that may be where the app's user
             * may not connect (as a file probe's, refused) */
            why = "a hard link (a socket with another name too), refused", err = EMLINK;
        if (err) {
            sys_close(&at->fd);
            /* a try that failed: no socket there yet (or no descriptor to
             * look with); else one the launcher may not reach that way */
            if (err == ENOENT || err == ENOTDIR || err == ENOTSOCK || sys_lacks_resources(err)) {
                lua_pushboolean(L, 0);
                lua_pushstring(L, why ? why : strerror(err));
                return 2;
            }
            lua_pushnil(L);
            lua_pushfstring(L, "unix:%s: %s", where, why ? why : strerror(err));
            lua_pushinteger(L, err);
            return 3;
        }
        snprintf(un.sun_path, sizeof un.sun_path, "/proc/self/fd/%d", at->fd);
        int n = try_connect(L, AF_UNIX, (struct sockaddr *)&un,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un.sun_path) + 1));
        sys_close(&at->fd);
        /* a try that failed where /proc is not mounted: there is no such
         * name, a probe that can never work (looked at only then: one
         * system call less a try) */
        if (n == 2 && !lua_toboolean(L, -2) && access("/proc/self/fd", F_OK) != 0 && errno == ENOENT) {
            lua_pop(L, 2);
            lua_pushnil(L);
            lua_pushfstring(L, "unix:%s: /proc is not mounted (a socket is connected to through /proc/self/fd)",
                            where);
            lua_pushinteger(L, ENOMEDIUM);
            n = 3;
        }
        lua_remove(L, -n - 1); /* (the held socket's conn, empty now) */
        return n;
    }
    lua_Integer port = luaL_checkinteger(L, 3);
    luaL_argcheck(L, port > 0 && port < 65536, 3, "port out of range");
    char service[8];
    snprintf(service, sizeof service, "%d", (int)port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int r = getaddrinfo(where, service, &hints, &res);
    if (r == EAI_NONAME) {
        hints.ai_flags = AI_NUMERICSERV;
        r = getaddrinfo(where, service, &hints, &res);
    }
    if (r != 0) {
        int err = r == EAI_SYSTEM ? errno : 0;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot resolve %s: %s", where, gai_strerror(r));
        if (!err) /* no errno: a resolver's own failure */
            return 2;
        lua_pushinteger(L, err);
        return 3;
    }
    /* the first address: one host, one connection per try (copied out,
     * so that nothing raises while the resolver's list is held) */
    struct sockaddr_storage addr;
    socklen_t addrlen = res->ai_addrlen <= sizeof addr ? res->ai_addrlen : (socklen_t)sizeof addr;
    int family = res->ai_family;
    memcpy(&addr, res->ai_addr, addrlen);
    freeaddrinfo(res);
    return try_connect(L, family, (struct sockaddr *)&addr, addrlen);
}

static struct conn *check_conn(lua_State *L)
{
    return lb_check_self(L, 1, LB_CONN);
}

static int l_conn_check(lua_State *L)
{
    struct conn *c = check_conn(L);
    if (c->fd < 0) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        return 2;
    }
    struct pollfd pf = { .fd = c->fd, .events = POLLOUT, .revents = 0 };
    int r;
    do
        r = poll(&pf, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0)
        return connected(L, &c->fd);
    sys_close(&c->fd);
    lua_pushboolean(L, 0);
    lua_pushstring(L, strerror(err));
    return 2;
}

static int l_conn_close(lua_State *L)
{
    struct conn *c = luaL_checkudata(L, 1, LB_CONN);
    sys_close(&c->fd);
    return 0;
}

/* stat() of the path at arg 1 (symbolic links followed) into *st: 0, or
 * the count of the values pushed (nil, message, errno) */
static int stat_arg(lua_State *L, struct stat *st)
{
    if (stat(lb_check_cstring(L, 1), st) < 0)
        return lb_errno_result(L, errno, NULL);
    return 0;
}

/* core.mtime(path) -> seconds | nil, message, errno */
static int l_mtime(lua_State *L)
{
    struct stat st;
    int n = stat_arg(L, &st);
    if (n)
        return n;
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
    return 1;
}

/* core.ready_file(path [, uid]) -> mtime, "DEV:INODE" | nil, message,
 * errno. What the file probe counts: its directory reached by a walk no
 * user but root and the launcher can redirect (sys_open_parent_safely),
 * the file itself not followed if a symbolic link, a regular file with no
 * other name (a hard link: a file another user chose), not another user's
 * (but root's, the launcher's or uid's, the app's) planted in a sticky
 * directory others can write (as /tmp), and with uid (the app's user,
 * `user =`) none but root's, the launcher's or uid's anywhere (without it
 * the app may become any user: a daemon that drops to a user of its own
 * makes the file as that user). Nothing is opened but directories: the
 * file is looked at (fstatat), never read. */
static int l_ready_file(lua_State *L)
{
    const char *path = lb_check_cstring(L, 1);
    lua_Integer uid = luaL_optinteger(L, 2, -1);
    const char *name, *why = NULL;
    int dfd = -1;
    struct stat st;
    int err = sys_open_parent_safely(path, &dfd, &name, &why);
    if (!err && *name == '\0')
        err = EISDIR, why = "a directory, not a file";
    else if (!err && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        err = errno;
    else if (!err && S_ISLNK(st.st_mode))
        err = ELOOP, why = "a symbolic link (never followed), not a file";
    else if (!err && !S_ISREG(st.st_mode))
        err = EINVAL, why = S_ISDIR(st.st_mode) ? "a directory, not a file" : "not a regular file";
    else if (!err && st.st_nlink != 1)
        err = EMLINK, why = "a hard link (a file with another name too), refused";
    else if (!err && (err = sys_foreign_in_sticky_dir(dfd, &st, uid < 0 ? (uid_t)-1 : (uid_t)uid)))
        why = err == EPERM ? "another user's file in a sticky directory others can write (as /tmp), refused" : NULL;
    else if (!err && uid >= 0 && st.st_uid != (uid_t)uid && st.st_uid != 0 && st.st_uid != geteuid())
        err = EPERM, why = "another user's file (not the app's user's, root's or the launcher's), refused";
    sys_close(&dfd);
    if (err) {
        if (!why)
            return lb_errno_result(L, err, NULL);
        lua_pushnil(L);
        lua_pushstring(L, why);
        lua_pushinteger(L, err);
        return 3;
    }
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
    lua_pushfstring(L, "%I:%I", (lua_Integer)st.st_dev, (lua_Integer)st.st_ino);
    return 2;
}

/* core.file_id(path) -> "DEV:INODE" | nil, message, errno: two names of
 * one file have one id */
static int l_file_id(lua_State *L)
{
    struct stat st;
    int n = stat_arg(L, &st);
    if (n)
        return n;
    lua_pushfstring(L, "%I:%I", (lua_Integer)st.st_dev, (lua_Integer)st.st_ino);
    return 1;
}

/* The clock a file's timestamps come from (the kernel stamps them from its
 * coarse clock, up to a tick behind CLOCK_REALTIME): a file made after
 * this call is never older than what it returns. */
static int l_realtime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* core.resolve(host) -> {address...} | nil, message[, errno]: with an
 * errno (out of descriptors or memory, EAGAIN) a later lookup may do */
static int l_resolve(lua_State *L)
{
    size_t len;
    const char *host = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, strlen(host) == len && len > 0, 1, "not a host name");
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    int r = getaddrinfo(host, NULL, &hints, &res);
    if (r == EAI_NONAME) {
        hints.ai_flags = 0;
        r = getaddrinfo(host, NULL, &hints, &res);
    }
    if (r != 0) {
        /* EAI_AGAIN: the name cannot be looked up for now (no DNS server
         * answers): EAGAIN, a try that failed, not a name that does not
         * resolve */
        int err = r == EAI_SYSTEM ? errno : r == EAI_MEMORY ? ENOMEM : r == EAI_AGAIN ? EAGAIN : 0;
        if (!err) {
            /* out of descriptors, /etc/hosts cannot be read and the name
             * is "not known": said so, a try that failed, not a name that
             * does not resolve */
            int t = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (t < 0 && sys_lacks_resources(errno))
                err = errno;
            sys_close(&t);
        }
        lua_pushnil(L);
        lua_pushfstring(L, "cannot resolve %s: %s", host, gai_strerror(r));
        if (!err) /* no errno: a resolver's own failure */
            return 2;
        lua_pushinteger(L, err);
        return 3;
    }
    /* the list first: nothing may raise while res is held but what the
     * pushes below may (out of memory), so collect the text first */
    char text[16][80]; /* a numeric address, a scope at most */
    int n = 0;
    for (struct addrinfo *a = res; a && n < 16; a = a->ai_next) {
        if (getnameinfo(a->ai_addr, a->ai_addrlen, text[n], sizeof text[n], NULL, 0, NI_NUMERICHOST) != 0)
            continue;
        int seen = 0;
        for (int i = 0; i < n && !seen; i++)
            seen = strcmp(text[i], text[n]) == 0;
        if (!seen)
            n++;
    }
    freeaddrinfo(res);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, text[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void lb_open_probe(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "check", l_conn_check },
        { "close", l_conn_close },
        { NULL, NULL },
    };
    lb_new_class(L, LB_CONN, methods, l_conn_close, NULL);
    lua_pop(L, 1);
    static const luaL_Reg functions[] = {
        { "connect", l_connect },
        { "mtime", l_mtime },         { "file_id", l_file_id },
        { "ready_file", l_ready_file },
        { "realtime", l_realtime },
        { "resolve", l_resolve },
        { NULL, NULL },
    };
    luaL_setfuncs(L, functions, 0);
}
