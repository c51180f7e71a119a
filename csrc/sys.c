/*
 * sys.c: EINTR-safe wrappers and close-on-exec descriptor creation.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void sys_close(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        /* Linux frees the descriptor even if close fails with EINTR, so a
         * retry could close a descriptor another thread just opened. */
        (void)close(*fd);
        *fd = -1;
        errno = saved;
    }
}

ssize_t sys_read(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

/* The whole of a small file (at dirfd/name, or a path when dirfd is
 * AT_FDCWD) into buf, NUL-terminated. Returns the length or -errno. */
ssize_t sys_read_small(int dirfd, const char *name, char *buf, size_t len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got < len - 1) {
        ssize_t n = sys_read(fd, buf + got, len - 1 - got);
        if (n < 0) {
            int err = errno;
            sys_close(&fd);
            return -err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    sys_close(&fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

ssize_t sys_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

pid_t sys_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

int sys_set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, flags) < 0)
        return errno;
    return 0;
}

int sys_pipe(int fds[2], int nonblock_read)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return errno;
    if (nonblock_read) {
        int err = sys_set_nonblock(fds[0], 1);
        if (err) {
            sys_close(&fds[0]);
            sys_close(&fds[1]);
            return err;
        }
    }
    return 0;
}

double sys_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sweep_find(const struct sys_sweeps *s, const char *place)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->place[i], place) == 0)
            return i;
    return -1;
}

int sys_sweep_due(const struct sys_sweeps *s, const char *place)
{
    int i = sweep_find(s, place);
    return i < 0 || (s->again_at[i] > 0 && sys_now() >= s->again_at[i]);
}

void sys_swept(struct sys_sweeps *s, const char *place, int again)
{
    int i = sweep_find(s, place);
    if (i < 0) {
        if (s->n == SYS_SWEEPS || strlen(place) >= sizeof s->place[0])
            return;
        i = s->n++;
        strcpy(s->place[i], place);
    }
    s->again_at[i] = again ? sys_now() + SYS_SWEEP_AGAIN : 0;
}

int sys_lacks_resources(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

int sys_wait_any_readable(const int *fds, int n, double timeout)
{
    return sys_poll_readable(fds, n, timeout, NULL);
}

int sys_poll_readable(const int *fds, int n, double timeout, unsigned *ready)
{
    struct pollfd p[8];
    if (n < 0 || n > 8) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    int ms = -1;
    if (timeout >= 0)
        /* round up so a wait never ends a hair before its deadline */
        ms = timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.999);
    int r = poll(p, (nfds_t)n, ms);
    if (r > 0) {
        if (ready) {
            *ready = 0;
            for (int i = 0; i < n; i++)
                if (p[i].revents)
                    *ready |= 1u << i;
        }
        return 1;
    }
    if (r == 0 || errno == EINTR)
        return 0;
    return -1;
}

int sys_wait_readable(int fd, double timeout)
{
    return sys_wait_any_readable(&fd, 1, timeout);
}

/* ---- paths another user cannot redirect ---- */

/* The directories of the walk whose parent ".." may be taken to: their
 * identity, to check that ".." leads back to the very one walked through. */
#define WALK_DEPTH 256

static const char unsafe_link[] =
    "a symbolic link on its way that a user other than root could change (never followed)";

static int trusted_owner(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* May a symbolic link found in the directory d be followed, its owner
 * being trusted: can no one else replace it? */
static int links_safe_in(const struct stat *d)
{
    if (!trusted_owner(d->st_uid))
        return 0;
    if (d->st_mode & S_ISVTX)
        return 1; /* only the link's owner, d's owner or root replace it */
    if (d->st_mode & S_IWOTH)
        return 0;
    return !(d->st_mode & S_IWGRP) || d->st_gid == 0;
}

static int openat_nointr(int at, const char *name, int flags)
{
    int fd;
    do
        fd = openat(at, name, flags | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
}

struct walk_id {
    dev_t dev;
    ino_t ino;
};

/* The walk's start, "/" or ".", and its identity as ids[0]. */
static int walk_start(int rooted, int *fd, struct walk_id *id)
{
    struct stat st;
    sys_close(fd);
    if ((*fd = openat_nointr(AT_FDCWD, rooted ? "/" : ".", O_PATH | O_DIRECTORY)) < 0 ||
        fstat(*fd, &st) != 0)
        return errno;
    *id = (struct walk_id){ st.st_dev, st.st_ino };
    return 0;
}

int sys_open_dir_safely(const char *path, size_t len, int *out, const char **why)
{
    /* what is left to walk: a link's target goes before the rest */
    char todo[2 * PATH_MAX], target[PATH_MAX];
    struct walk_id ids[WALK_DEPTH];
    struct stat st, dst;
    *out = -1;
    *why = NULL;
    if (len == 0)
        return ENOENT;
    if (len >= PATH_MAX)
        return ENAMETOOLONG;
    memcpy(todo, path, len);
    todo[len] = '\0';
    /* the walk's own part of todo is its tail of `given` bytes: a ".."
     * there is refused, one before it comes from a trusted link */
    size_t tlen = len, given = len, depth = 0;
    int rooted = todo[0] == '/', fd = -1, links = 0, err;
    if ((err = walk_start(rooted, &fd, &ids[0])))
        goto fail;
    char *p = todo;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        size_t left = tlen - (size_t)(p - todo);
        char *end = strchr(p, '/');
        size_t clen = end ? (size_t)(end - p) : left;
        char comp[NAME_MAX + 1];
        if (clen > NAME_MAX) {
            err = ENAMETOOLONG;
            goto fail;
        }
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        p += clen;
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (left <= given) {
                *why = "\"..\" in the path (never taken)";
                err = EPERM;
                goto fail;
            }
            if (depth == 0 && rooted)
                continue; /* "/.." is "/" */
            if (depth == 0 || depth > WALK_DEPTH) {
                *why = "a symbolic link on its way leads above where the walk can check (never followed)";
                err = EPERM;
                goto fail;
            }
            int up = openat_nointr(fd, "..", O_PATH | O_DIRECTORY | O_NOFOLLOW);
            if (up < 0 || fstat(up, &st) != 0) {
                err = errno;
                sys_close(&up);
                goto fail;
            }
            sys_close(&fd);
            fd = up;
            depth--;
            if (st.st_dev != ids[depth].dev || st.st_ino != ids[depth].ino) {
                *why = "a directory on its way was moved meanwhile";
                err = EPERM;
                goto fail;
            }
            continue;
        }
        /* a directory at once (O_DIRECTORY mounts an automount point),
         * else what it is, without following it */
        int next = openat_nointr(fd, comp, O_PATH | O_NOFOLLOW | O_DIRECTORY);
        if (next < 0 && errno == ENOTDIR)
            next = openat_nointr(fd, comp, O_PATH | O_NOFOLLOW);
        if (next < 0 || fstat(next, &st) != 0) {
            err = errno;
            sys_close(&next);
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            sys_close(&fd);
            fd = next;
            if (++depth < WALK_DEPTH)
                ids[depth] = (struct walk_id){ st.st_dev, st.st_ino };
            continue;
        }
        if (!S_ISLNK(st.st_mode)) {
            sys_close(&next);
            err = ENOTDIR;
            goto fail;
        }
        if (++links > SYS_MAX_LINKS) {
            sys_close(&next);
            *why = "more than 40 symbolic links on its way";
            err = ELOOP;
            goto fail;
        }
        if (!trusted_owner(st.st_uid) || fstat(fd, &dst) != 0 || !links_safe_in(&dst)) {
            sys_close(&next);
            *why = unsafe_link;
            err = EPERM;
            goto fail;
        }
        ssize_t n = readlinkat(next, "", target, sizeof target);
        err = errno;
        sys_close(&next);
        if (n < 0)
            goto fail;
        if (n == 0 || (size_t)n >= sizeof target) {
            err = n == 0 ? ENOENT : ENAMETOOLONG;
            goto fail;
        }
        size_t rest = tlen - (size_t)(p - todo);
        if ((size_t)n + rest >= sizeof todo) {
            err = ENAMETOOLONG;
            goto fail;
        }
        /* todo becomes target + rest (rest begins with '/' or is empty) */
        memmove(todo + n, p, rest + 1);
        memcpy(todo, target, (size_t)n);
        tlen = (size_t)n + rest;
        if (given > rest)
            given = rest;
        p = todo;
        if (target[0] == '/') {
            rooted = 1;
            depth = 0;
            if ((err = walk_start(1, &fd, &ids[0])))
                goto fail;
        }
    }
    *out = fd;
    return 0;
fail:
    sys_close(&fd);
    return err;
}

int sys_open_parent_safely(const char *path, int *dir_fd, const char **name, const char **why)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    if (!slash)
        return sys_open_dir_safely(".", 1, dir_fd, why);
    if (slash == path)
        return sys_open_dir_safely("/", 1, dir_fd, why);
    return sys_open_dir_safely(path, (size_t)(slash - path), dir_fd, why);
}

/* Is owner another user's (see sys_foreign_in_sticky_dir) in dir_fd? */
static int foreign_owner_in(int dir_fd, uid_t owner, uid_t also)
{
    struct stat d;
    if (trusted_owner(owner) || (also != (uid_t)-1 && owner == also))
        return 0;
    if (fstat(dir_fd, &d) != 0)
        return errno;
    /* (writable by a group too: its members plant files there as others
     * do in /tmp, as fs.protected_regular = 2 sees it) */
    if (!(d.st_mode & S_ISVTX) || !(d.st_mode & (S_IWOTH | S_IWGRP)) || owner == d.st_uid)
        return 0;
    return EPERM;
}

int sys_foreign_in_sticky_dir(int dir_fd, const struct stat *st, uid_t also)
{
    /* (a FIFO too: another user's would read what the app writes, or
     * feed what it reads) */
    return S_ISREG(st->st_mode) || S_ISFIFO(st->st_mode) ? foreign_owner_in(dir_fd, st->st_uid, also) : 0;
}

/* Is the user uid in group g, as it logs in: its passwd entry's group and
 * those getgrouplist gives it (with no entry: the group of its number,
 * which appstart-helper runs it in)? 1 or 0, or -errno when its entry
 * could not be read for want of resources (out of descriptors). */
static int user_in_group(uid_t uid, gid_t g)
{
    errno = 0;
    const struct passwd *pw = getpwuid(uid);
    if (!pw) {
        if (sys_lacks_resources(errno))
            return -errno;
        return g == (gid_t)uid;
    }
    if (pw->pw_gid == g)
        return 1;
    gid_t small[64], *list = small;
    int n = 64, member = 0;
    if (getgrouplist(pw->pw_name, pw->pw_gid, list, &n) < 0) {
        if (n <= 0 || !(list = malloc((size_t)n * sizeof *list)))
            return -ENOMEM;
        if (getgrouplist(pw->pw_name, pw->pw_gid, list, &n) < 0)
            n = 0;
    }
    for (int i = 0; i < n && !member; i++)
        member = list[i] == g;
    if (list != small)
        free(list);
    return member;
}

int sys_unreadable_moved_in(int dir_fd, const struct stat *st, uid_t app_uid)
{
    struct stat d;
    if (app_uid == (uid_t)-1 || app_uid == geteuid() || !S_ISREG(st->st_mode))
        return 0;
    if (st->st_uid == app_uid || (st->st_mode & S_IROTH))
        return 0;
    if (fstat(dir_fd, &d) != 0)
        return errno;
    if (trusted_owner(d.st_uid) && !(d.st_mode & S_IWOTH) && (!(d.st_mode & S_IWGRP) || d.st_gid == 0))
        return 0;
    /* (its groups looked up last: only for a file in such a directory;
     * out of resources, the start fails for that, not for a refusal) */
    int member = (st->st_mode & S_IRGRP) ? user_in_group(app_uid, st->st_gid) : 0;
    if (member < 0)
        return -member;
    return member ? 0 : EACCES;
}

int sys_foreign_name_in_sticky_dir(int dir_fd, const char *name, uid_t also)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : errno;
    return foreign_owner_in(dir_fd, st.st_uid, also);
}

#define LONG_BITS (8 * sizeof(unsigned long))

void sys_sigset_add(sigset_t *set, int sig)
{
    unsigned long *word = (unsigned long *)(void *)set;
    word[(unsigned)(sig - 1) / LONG_BITS] |= 1UL << ((unsigned)(sig - 1) % LONG_BITS);
}

int sys_sigset_has(const sigset_t *set, int sig)
{
    const unsigned long *word = (const unsigned long *)(const void *)set;
    return (word[(unsigned)(sig - 1) / LONG_BITS] >> ((unsigned)(sig - 1) % LONG_BITS)) & 1;
}

int sys_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    return syscall(SYS_rt_sigprocmask, how, set, old, SYS_SIGSET_BYTES) == 0 ? 0 : errno;
}

void sys_keep_child_status(void)
{
    struct sigaction now;
    if (sigaction(SIGCHLD, NULL, &now) < 0)
        return;
    int ignored = !(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_IGN;
    if (!ignored && !(now.sa_flags & SA_NOCLDWAIT))
        return;
    if (ignored) {
        memset(&now, 0, sizeof now);
        now.sa_handler = SIG_DFL;
    } else {
        now.sa_flags &= ~SA_NOCLDWAIT;
    }
    (void)sigaction(SIGCHLD, &now, NULL);
}

int sys_signalfd(const sigset_t *set, int flags)
{
    return (int)syscall(SYS_signalfd4, -1, set, SYS_SIGSET_BYTES, flags);
}

/* The kernel's struct sigaction, where its handler comes first and all
 * zero is SIG_DFL with no flags (x86, arm, powerpc, s390, riscv...): room
 * for the largest of those layouts. Elsewhere (MIPS, whose flags come
 * first; SPARC and Alpha, whose call takes more) the C library's calls,
 * and 32 and 33 are left as they are. */
#if defined(__mips__) || defined(__sparc__) || defined(__alpha__)
#define RAW_SIGACTION 0
#else
#define RAW_SIGACTION 1
#endif

struct kernel_action {
    unsigned long handler;
    unsigned long rest[15];
};

int sys_signal_ignored(int sig)
{
#if RAW_SIGACTION
    struct kernel_action now;
    memset(&now, 0, sizeof now);
    return syscall(SYS_rt_sigaction, sig, NULL, &now, SYS_SIGSET_BYTES) == 0 &&
           now.handler == (unsigned long)SIG_IGN;
#else
    struct sigaction now;
    return sigaction(sig, NULL, &now) == 0 && now.sa_handler == SIG_IGN;
#endif
}

void sys_signal_default(int sig)
{
#if RAW_SIGACTION
    struct kernel_action dfl;
    memset(&dfl, 0, sizeof dfl);
    (void)syscall(SYS_rt_sigaction, sig, &dfl, NULL, SYS_SIGSET_BYTES);
#else
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(sig, &dfl, NULL);
#endif
}
