/*
 * notifysock.c: the notify socket in a directory of the launcher's (see
 * notifysock.h).
 */
#include "notifysock.h"
#include "channel.h"
#include "procfs.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Is base a directory every user can traverse (o+x on it and on every
 * directory above it) and that only its owner, root or the launcher's
 * user, can change (not writable by group or others, unless sticky), and
 * the launcher may make its directory in (a root's 0755 one, for a
 * launcher that is not root, would fail every start: /tmp then)? Its
 * path with no symbolic link in it goes to resolved (PATH_MAX bytes): the
 * one to use from then on, since a link on the way that another user
 * owns could be pointed elsewhere after the check. */
static int base_usable(const char *base, char *resolved)
{
    char real[PATH_MAX];
    if (!base || base[0] != '/' || !realpath(base, real))
        return 0;
    if (faccessat(AT_FDCWD, real, W_OK | X_OK, AT_EACCESS) < 0)
        return 0;
    /* no file system of the kernel's own (/proc, /sys, a cgroup one, that
     * root may seem to write to: a directory made there is a cgroup) */
    struct statfs fs;
    if (statfs(real, &fs) < 0 || fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC ||
        fs.f_type == CGROUP_SUPER_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC)
        return 0;
    memcpy(resolved, real, strlen(real) + 1);
    uid_t me = geteuid();
    for (;;) {
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
            return 0;
        if (st.st_uid != 0 && st.st_uid != me)
            return 0;
        if (!(st.st_mode & S_IXOTH))
            return 0;
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return 0;
        char *slash = strrchr(real, '/');
        if (slash == real) {
            if (real[1] == '\0')
                return 1;
            real[1] = '\0'; /* then "/" itself */
        } else {
            *slash = '\0';
        }
    }
}

/* count bytes of randomness as letters and digits, for a name nobody can
 * guess (62 possible characters; a modulo bias of under 2 % is harmless) */
static int random_name(char *out, size_t count)
{
    static const char letters[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char bytes[32];
    if (count > sizeof bytes)
        return EINVAL;
    size_t got = 0;
    while (got < count) {
        long n = syscall(SYS_getrandom, bytes + got, count - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    if (got < count) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errno;
        ssize_t n = sys_read(fd, bytes, count);
        int err = n == (ssize_t)count ? 0 : (n < 0 ? errno : EIO);
        sys_close(&fd);
        if (err)
            return err;
    }
    for (size_t i = 0; i < count; i++)
        out[i] = letters[bytes[i] % (sizeof letters - 1)];
    out[count] = '\0';
    return 0;
}

#define NOTIFY_DIR_PREFIX "appstart."
/* the name a directory has while it is made, until its socket is bound
 * (see open_under): one no sweep takes by a pid, of this version's or an
 * earlier one's (which read NOTIFY_DIR_PREFIX names alone) */
#define NOTIFY_MAKING_PREFIX "appstart-new."
#define NOTIFY_NAME "notify"

/* A directory still under its NOTIFY_MAKING_PREFIX name is taken for
 * stale once this many seconds old (its mtime: set as it is made, and as
 * the socket is bound in it) with nobody bound to its socket: a launcher
 * that was killed while it made it left it. Its pid is never looked at: a
 * launcher in another pid namespace sharing the base (a container given
 * the host's /run/user/UID or /tmp) sees a pid of the host's as gone. As
 * for cgroup.c's CGROUP_STALE_AGE, a minute: no start is still making it
 * by then (it takes a few system calls, none of them blocking). */
#define NOTIFY_STALE_AGE 60

/* Remove name (a stale directory of ours holding at most the socket) from
 * the directory at basefd, through descriptors. */
static void remove_notify_dir(int basefd, const char *name)
{
    int dfd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return;
    struct stat st;
    if (fstat(dfd, &st) == 0 && st.st_uid == geteuid()) {
        (void)unlinkat(dfd, NOTIFY_NAME, 0);
        (void)unlinkat(basefd, name, AT_REMOVEDIR);
    }
    sys_close(&dfd);
}

/* Is a socket bound at path (someone would receive what is sent)? */
static int socket_alive(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return 1; /* cannot tell: leave it */
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    int r;
    do
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (r < 0 && errno == EINTR);
    int alive = r == 0 || (errno != ECONNREFUSED && errno != ENOENT);
    sys_close(&fd);
    return alive;
}

/* Is the directory st describes NOTIFY_STALE_AGE seconds old? (One dated
 * ahead of the clock, set back since, is not.) */
static int old_enough(const struct stat *st)
{
    struct timespec now;
    return clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec - st->st_mtim.tv_sec > NOTIFY_STALE_AGE;
}

/* Directories that launchers of this user, killed before their cleanup,
 * left under base: one with its final name whose pid is gone and whose
 * socket nobody is bound to (a launcher in another pid namespace sharing
 * base still is, once that directory has that name: open_under), one
 * still being made (NOTIFY_MAKING_PREFIX) once NOTIFY_STALE_AGE seconds
 * old with nobody bound to its socket (if any): its pid tells nothing
 * (it may be another namespace's), and until its socket is bound nothing
 * tells a launcher at work from one killed but its age. */
static void remove_stale_dirs(const char *base)
{
    int basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0)
        return;
    DIR *d = fdopendir(basefd);
    if (!d) {
        sys_close(&basefd);
        return;
    }
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        size_t plen = sizeof NOTIFY_DIR_PREFIX - 1;
        int making = strncmp(name, NOTIFY_MAKING_PREFIX, sizeof NOTIFY_MAKING_PREFIX - 1) == 0;
        long pid = 0;
        if (!making) {
            if (strncmp(name, NOTIFY_DIR_PREFIX, plen) != 0)
                continue;
            char *end;
            pid = strtol(name + plen, &end, 10);
            if (end == name + plen || *end != '.' || pid <= 0 || pid == me)
                continue;
        }
        /* (another user's first: never removed, nor looked into further) */
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (making ? !old_enough(&st) : procfs_liveness((pid_t)pid) != PROCFS_GONE)
            continue; /* its launcher (or a process with its pid) lives,
                         or may be making it still */
        char sock[PATH_MAX];
        if ((size_t)snprintf(sock, sizeof sock, "%s/%s/" NOTIFY_NAME, base, name) >=
                sizeof sock ||
            socket_alive(sock))
            continue;
        remove_notify_dir(dirfd(d), name);
    }
    closedir(d);
}

/* The bases swept in this process, and when again: a base only this user
 * may write ($XDG_RUNTIME_DIR) is swept again by a start once
 * SYS_SWEEP_AGAIN seconds have passed since the last sweep ended, so that
 * a launcher that runs on (a supervisor) removes what others killed since
 * its first start left, at the cost of a read of the base a second at
 * most; one that others may write (/tmp) once a process, as another user
 * could fill it with names to read. */
static pthread_mutex_t swept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sys_sweeps swept;

static int only_mine(const char *base)
{
    struct stat st;
    return stat(base, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static void sweep_once(const char *base)
{
    pthread_mutex_lock(&swept_lock);
    if (sys_sweep_due(&swept, base)) {
        remove_stale_dirs(base);
        sys_swept(&swept, base, only_mine(base));
    }
    pthread_mutex_unlock(&swept_lock);
}

/* The directory and the socket under base (usable, or /tmp): 0 or an
 * errno value, nothing left behind. The directory is made under a
 * NOTIFY_MAKING_PREFIX name and renamed to its final one once its socket
 * is bound: under its final name from the mkdir on, a launcher in another
 * pid namespace sharing base, that found its pid gone and (until the
 * bind) nobody bound to it, removed it, and this start lost its socket.
 * (A socket is found by its path as it is reached: bound under the first
 * name, it is reached under the second; the directory keeps its inode,
 * the identity checked at its removal.) */
static int open_under(struct notify_socket *c, const char *base)
{
    sweep_once(base);
    /* ("/" itself: no "//") */
    const char *above = base[1] ? base : "";
    char making[sizeof c->dir];
    int err = 0;
    for (int tries = 0;; tries++) {
        char rnd[17];
        if ((err = random_name(rnd, 16)))
            return err;
        int n = snprintf(making, sizeof making, "%s/" NOTIFY_MAKING_PREFIX "%ld.%s", above, (long)getpid(), rnd);
        if (n < 0 || (size_t)n >= sizeof making)
            return ENAMETOOLONG; /* (the base's length was checked above) */
        if (mkdir(making, 0700) == 0)
            break;
        err = errno;
        if (err != EEXIST || tries == 8)
            return err;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    int dfd = -1;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/" NOTIFY_NAME, making);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        err = ENAMETOOLONG; /* (not when the base's length was checked) */
        goto fail;
    }
    dfd = open(making, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (dfd < 0 || fstat(dfd, &st) < 0) {
        err = errno;
        goto fail;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    /* 0711: every user may reach the socket by its name, nobody else
     * may list the directory or change it */
    if (fchmod(dfd, 0711) < 0) {
        err = errno;
        goto fail;
    }
    c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        err = errno;
        goto fail;
    }
    int one = 1;
    if (setsockopt(c->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        fchmodat(dfd, NOTIFY_NAME, 0666, 0) < 0) {
        err = errno;
        goto fail;
    }
    /* a random part of its own: the first name is listed by all in /tmp,
     * where another user could make the final name first were it derived
     * from that one (the rename then fails, or replaces theirs) */
    char rnd[17];
    if ((err = random_name(rnd, 16)))
        goto fail;
    snprintf(c->dir, sizeof c->dir, "%s/" NOTIFY_DIR_PREFIX "%ld.%s", above, (long)getpid(), rnd);
    if (rename(making, c->dir) < 0) {
        err = errno;
        goto fail;
    }
    snprintf(c->path, sizeof c->path, "%s/" NOTIFY_NAME, c->dir);
    sys_close(&dfd);
    return 0;
fail:
    /* (out of descriptors, most likely) undone with what is at hand, no
     * descriptor more: the socket through the directory's descriptor,
     * then the directory just made by its path (in a base nobody else may
     * change, or /tmp's sticky one: nobody else can rename it there;
     * rmdir removes nothing but an empty directory) */
    sys_close(&c->fd);
    if (dfd >= 0)
        (void)unlinkat(dfd, NOTIFY_NAME, 0);
    sys_close(&dfd);
    (void)rmdir(making);
    c->dir[0] = c->path[0] = '\0';
    return err;
}

int notify_socket_open(struct notify_socket *c, const char *base, char *tried, size_t tried_len)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    char resolved[PATH_MAX];
    if (base_usable(base, resolved))
        base = resolved;
    else
        base = "/tmp";
    /* the socket's path must fit a sockaddr_un (under the directory's
     * first name, the longer: 46 bytes past the base's, its NUL with
     * them): else /tmp */
    if (strlen(base) + 48 > sizeof(((struct sockaddr_un *)0)->sun_path))
        base = "/tmp";
    int err = open_under(c, base);
    /* a base where the directory cannot be made after all (a read-only
     * or full file system, one that refuses sockets): /tmp */
    if (err && strcmp(base, "/tmp") != 0 && !sys_lacks_resources(err)) {
        base = "/tmp";
        err = open_under(c, base);
    }
    if (err)
        snprintf(tried, tried_len, "%s", base);
    return err;
}

/* One descriptor at most (the socket's is closed first, so a launcher out
 * of descriptors still cleans up; what is still queued on it is read
 * first, its descriptors closed at once without lingering: see
 * channel_close): the socket is removed through the
 * directory's descriptor, once that is proven to be the directory made
 * (its device and inode), then the directory, empty, by its path (in a
 * base nobody else may change, or /tmp's sticky one, where nobody else
 * can rename it; rmdir removes nothing but an empty directory). */
void notify_socket_close(struct notify_socket *c)
{
    channel_close(&c->fd, SOCK_DGRAM);
    if (c->dir[0]) {
        int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (dfd >= 0 && fstat(dfd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino) {
            (void)unlinkat(dfd, NOTIFY_NAME, 0);
            (void)rmdir(c->dir);
        }
        sys_close(&dfd);
        c->dir[0] = '\0';
    }
    c->path[0] = '\0';
}


/* The address of a notify socket's path (a leading '@': the abstract
 * namespace, as sd_notify takes it): its length, or 0 for a path that
 * names none. */
static socklen_t notify_address(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t plen = strlen(path);
    if (plen < 2 || plen >= sizeof sa->sun_path || (path[0] != '/' && path[0] != '@'))
        return 0;
    memcpy(sa->sun_path, path, plen);
    if (path[0] == '@')
        sa->sun_path[0] = '\0';
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
}

int notify_send(const char *path, const char *msg, size_t len)
{
    struct sockaddr_un sa;
    socklen_t salen = notify_address(path, &sa);
    if (!salen)
        return EINVAL;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    ssize_t n;
    do
        n = sendto(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
    while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    sys_close(&fd);
    return err;
}

int notify_peer(const char *path, int *fd)
{
    struct sockaddr_un sa;
    socklen_t salen = notify_address(path, &sa);
    *fd = -1;
    if (!salen)
        return EINVAL;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return errno;
    int r;
    do
        r = connect(s, (struct sockaddr *)&sa, salen);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int err = errno;
        sys_close(&s);
        return err;
    }
    *fd = s;
    return 0;
}

int notify_send_peer(int fd, const char *msg, size_t len)
{
    ssize_t n;
    do
        n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n < 0 ? errno : 0;
}
