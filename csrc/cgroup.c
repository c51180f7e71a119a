/*
 * cgroup.c: an app's cgroup v2 directory (see cgroup.h).
 */
#include "cgroup.h"
#include "procfs.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_PREFIX "appstart."
/* names tried for an app's directory, at most (see cgroup_create) */
#define CGROUP_NAME_TRIES 100000

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

/* The cgroup v2 mount: its mount point and the hierarchy path mounted
 * there ("/" unless a namespace or a bind mount says otherwise). */
static int find_mount(char *mnt, size_t mnt_len, char *root, size_t root_len)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return errno;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mount-point options [optional...] - type ... */
        char *sep = strstr(line, " - ");
        if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
            continue;
        char *field[5];
        char *save = NULL, *p = line;
        int n = 0;
        for (; n < 5; n++, p = NULL)
            if (!(field[n] = strtok_r(p, " ", &save)))
                break;
        if (n < 5 || strlen(field[4]) >= mnt_len || strlen(field[3]) >= root_len)
            continue;
        strcpy(mnt, field[4]);
        strcpy(root, field[3]);
        unescape(mnt);
        unescape(root);
        found = 1;
    }
    free(line);
    fclose(f);
    return found ? 0 : ENOENT;
}

/* The launcher's own cgroup v2 path ("0::PATH" in /proc/self/cgroup). */
static int own_cgroup(char *out, size_t len)
{
    char buf[4096];
    ssize_t n = sys_read_small(AT_FDCWD, "/proc/self/cgroup", buf, sizeof buf);
    if (n < 0)
        return (int)-n;
    const char *p = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
    if (!p)
        return ENOENT;
    p += p == buf ? 3 : 4;
    size_t l = strcspn(p, "\n");
    if (l == 0 || l >= len)
        return ENAMETOOLONG;
    memcpy(out, p, l);
    out[l] = '\0';
    return 0;
}

/* Open (and make, when missing, if make) the directories of rel under
 * dirfd, one component at a time, never following a link. Returns a
 * descriptor or -errno; without make, the deepest one there is, *done the
 * length of rel it has opened (the rest is missing). */
static int open_path(int dirfd, const char *rel, int make, size_t *done)
{
    int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0)
        return -errno;
    char part[NAME_MAX + 1];
    for (const char *p = rel; *p;) {
        while (*p == '/')
            p++;
        size_t l = strcspn(p, "/");
        if (l == 0)
            break;
        if (l > NAME_MAX) {
            sys_close(&cur);
            return -ENAMETOOLONG;
        }
        memcpy(part, p, l);
        part[l] = '\0';
        int next = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && !make)
            break;
        /* EEXIST: another launcher made it between our look and our
         * mkdir; it is opened all the same */
        if (next < 0 && errno == ENOENT && (mkdirat(cur, part, 0755) == 0 || errno == EEXIST))
            next = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        sys_close(&cur);
        if (next < 0)
            return -err;
        cur = next;
        p += l;
        *done = (size_t)(p - rel);
    }
    return cur;
}

/* Does the launcher of that pid run? (A zombie, its parent not reaping
 * it, as a killed launcher's may stay, does not.) */
static int alive(pid_t pid)
{
    return (kill(pid, 0) == 0 || errno == EPERM) && procfs_liveness(pid) != PROCFS_GONE;
}

/* The cgroups an app made inside its own (a root app may: a worker's of
 * its own) are walked, children first, this deep and this many at most
 * (an app could make them without end): past that they are left to
 * cgroup.kill, which reaches the whole subtree. (Removed, they are taken
 * to any depth: remove_all_inner.) */
#define CGROUP_WALK_DEPTH 8
#define CGROUP_WALK_MAX 256

/* 1 when a process runs in the cgroup open at dir_fd or in one inside
 * it, 0 when none does, or minus an errno value. */
static int populated_at(int dir_fd)
{
    char buf[256];
    ssize_t n = sys_read_small(dir_fd, "cgroup.events", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    const char *p = strstr(buf, "populated ");
    if (!p)
        return -EPROTO;
    return p[10] != '0';
}

static void each_inner(int dir_fd, int depth, int *budget,
                       void (*fn)(int dir_fd, int parent_fd, const char *name, void *arg), void *arg);
static void remove_all_inner(int top_fd);

/* The inode of the launcher's pid namespace (/proc/self/ns/pid), which
 * the names of its directories carry: a pid tells which launcher made one
 * only to a launcher of the same namespace (launchers in pid namespaces
 * of their own, a container's entrypoint and the host, share the cgroup
 * hierarchy, and each sees pids of its own). 0 where it cannot be read
 * (no /proc): no name is then taken for one of this namespace's. Read
 * again in a process forked since (a child of one that unshared its pid
 * namespace is in another); called under swept_lock. */
static unsigned long long own_pidns(void)
{
    static unsigned long long ns;
    static pid_t read_by;
    if (read_by != getpid()) {
        struct stat st;
        if (stat("/proc/self/ns/pid", &st) < 0)
            return 0; /* (looked at again by the next start) */
        ns = (unsigned long long)st.st_ino;
        read_by = getpid();
    }
    return ns;
}

/* A directory whose launcher is not known to be gone (see remove_stale)
 * is taken for stale once empty and this many seconds old (its mtime: set as it is made, and by a cgroup made or removed
 * inside it): by then no start can still be about to join it (the child
 * joins as it is spawned, right after the mkdir), and one whose launcher
 * runs on and still holds it has ended (that launcher finds it gone, as
 * it would find it removed: cgroup_populated -ENOENT). */
#define CGROUP_STALE_AGE 60

/* Is the directory name under dir_fd stale by its age? *inner: whether
 * its nlink says cgroups were made inside it. */
static int stale_by_age(int dir_fd, const char *name, int *inner)
{
    struct stat st;
    struct timespec now;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
        clock_gettime(CLOCK_REALTIME, &now) < 0)
        return 0;
    /* (kernfs counts a directory's subdirectories in its nlink) */
    *inner = st.st_nlink != 2;
    /* (one dated ahead of the clock, set back since, is not old) */
    return now.tv_sec - st.st_mtim.tv_sec > CGROUP_STALE_AGE;
}

/* Remove the empty directories left under the parent by launchers that
 * were killed (or left an app running as they exited, its cgroup empty
 * since), and the cgroups made inside them first. Named appstart.PID.NS.N,
 * one of this launcher's pid namespace (NS) goes as soon as PID is gone,
 * but for one this process's own pid names (a Lua state of this process
 * that has closed may have left it, but so may one open now, or another
 * copy of the library loaded beside this one, and nothing here tells them
 * apart). Any other, of a pid that runs, of another namespace (whose pids
 * mean nothing here: its pid 1 is not ours), of the old form
 * appstart.PID.N (which does not tell its namespace), goes once
 * CGROUP_STALE_AGE seconds old: a directory a launcher of another
 * namespace has just made, that its app has not joined yet, is left to it
 * (judged by the pid, it was removed, and that start failed), and none
 * stays for good (as one did whose pid was alive here, or taken since, or
 * of a namespace whose inode another has since). One whose app still runs
 * is left for a later sweep. Cheap for the directories of apps that run
 * on: a look at the pid, or an fstatat and, for one that old, an rmdir
 * the kernel refuses. */
static void remove_stale(int parent_fd)
{
    int fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        sys_close(&fd);
        return;
    }
    unsigned long long own_ns = own_pidns();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        size_t plen = sizeof CGROUP_PREFIX - 1;
        char *end, *rest;
        if (strncmp(name, CGROUP_PREFIX, plen) != 0)
            continue;
        long pid = strtol(name + plen, &end, 10);
        if (end == name + plen || *end != '.' || pid <= 0)
            continue;
        unsigned long long ns = strtoull(end + 1, &rest, 10);
        if (rest == end + 1)
            continue;
        int ours = *rest == '.' && ns != 0 && ns == own_ns;
        int gone = ours && pid != getpid() && !alive((pid_t)pid);
        int inner = 1; /* (not known without a look) */
        if (!gone && !stale_by_age(dirfd(d), name, &inner))
            continue;
        /* the cgroups inside one whose app runs on are that app's: only
         * an empty one (as the kernel says) is emptied of them */
        int stale = inner ? openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (stale >= 0) {
            if (populated_at(stale) == 0)
                remove_all_inner(stale);
            sys_close(&stale);
        }
        /* (one still populated, EBUSY, is looked at again by a later
         * sweep) */
        (void)unlinkat(dirfd(d), name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* The parents already swept in this process, and when again: each is
 * swept again by a start once SYS_SWEEP_AGAIN seconds have passed since
 * the last sweep ended, one found clean as well as one where a killed
 * launcher's app still ran (or one a launcher left running as it exited:
 * app:close(), the command). So a launcher that runs on (a supervisor)
 * removes what launchers killed since its last sweep left, once empty
 * (swept once a process, a clean parent kept them as long as that
 * launcher ran, and under a cgroup.max.descendants they piled up until
 * starts failed), and many apps running on under a parent cost a start
 * one look at the clock in between. */
static pthread_mutex_t swept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sys_sweeps swept;
static unsigned long serial;

static void sweep_once(int parent_fd, const char *parent)
{
    if (sys_sweep_due(&swept, parent)) {
        remove_stale(parent_fd);
        sys_swept(&swept, parent, 1);
    }
}

static int fail(struct cgroup *c, int err, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Close what was made, say what failed (fmt, then strerror(err)). */
static int fail(struct cgroup *c, int err, char *why, size_t why_len, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(why, why_len, "%s: %s", what, strerror(err));
    cgroup_close(c);
    return err;
}

/* Could a user other than root and the launcher's move a process of the
 * cgroup made under parent_fd out of it? The kernel lets a process move
 * one to another cgroup when it may write the cgroup.procs of the
 * destination and of the cgroups' common ancestor (whoever the process
 * moved runs as, with a subtree delegated to it): parent_fd's or one
 * above it, up to the hierarchy's root (root_dev, root_ino). Owned by
 * another user (*who), or writable by a group or by all (*who
 * (uid_t)-1), one of those is taken to be writable so: 0, or EPERM with
 * that cgroup's path left in path (parent's, its last components taken
 * off as it goes up); another errno value when one cannot be looked at. */
/* Is uid the owner of a file whose owner the launcher's user namespace
 * does not map (the overflow uid, a namespace other than the first): the
 * host's, outside the namespace (its root, most often), not a user of
 * it? -1: not known yet. */
static int userns_nested = -1;
static long overflow_uid = -1;

static int unmapped_owner(uid_t uid)
{
    if (userns_nested < 0) {
        char map[256], buf[32];
        ssize_t n = sys_read_small(AT_FDCWD, "/proc/self/uid_map", map, sizeof map);
        unsigned long a, b, c;
        /* (the first namespace maps every uid to itself, in one line; an
         * unreadable map is taken for the first's) */
        int first = 1;
        if (n > 0) {
            const char *nl = strchr(map, '\n');
            first = sscanf(map, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL &&
                    (!nl || nl[1] == '\0');
        }
        ssize_t m = sys_read_small(AT_FDCWD, "/proc/sys/kernel/overflowuid", buf, sizeof buf);
        overflow_uid = m > 0 ? strtol(buf, NULL, 10) : 65534;
        userns_nested = !first;
    }
    return userns_nested == 1 && (long)uid == overflow_uid;
}

static int escapable(int parent_fd, dev_t root_dev, ino_t root_ino, char *path, uid_t *who)
{
    int cur = fcntl(parent_fd, F_DUPFD_CLOEXEC, 3), err = 0;
    if (cur < 0)
        return errno;
    for (int depth = 0; depth < 256; depth++) {
        struct stat dir, procs;
        if (fstat(cur, &dir) < 0 || fstatat(cur, "cgroup.procs", &procs, AT_SYMLINK_NOFOLLOW) < 0) {
            err = errno;
            break;
        }
        /* (in a user namespace, a cgroup of a uid it does not map is the
         * host's, above the namespace's own: looked at no further) */
        if (unmapped_owner(procs.st_uid))
            break;
        if (procs.st_uid != 0 && procs.st_uid != geteuid()) {
            *who = procs.st_uid;
            err = EPERM;
            break;
        }
        if (procs.st_mode & (S_IWGRP | S_IWOTH)) {
            *who = (uid_t)-1;
            err = EPERM;
            break;
        }
        if (dir.st_dev == root_dev && dir.st_ino == root_ino)
            break;
        int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (up < 0) {
            err = errno;
            break;
        }
        sys_close(&cur);
        cur = up;
        char *slash = strrchr(path, '/');
        if (slash)
            slash[slash == path ? 1 : 0] = '\0';
    }
    sys_close(&cur);
    return err;
}

int cgroup_create(struct cgroup *c, const char *parent, uid_t app_uid, char *why, size_t why_len)
{
    *c = (struct cgroup)CGROUP_NONE;
    char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];
    int err = find_mount(mnt, sizeof mnt, root, sizeof root);
    if (err)
        return fail(c, err, why, why_len, "cgroup v2 is not mounted (no cgroup2 in /proc/self/mountinfo)");
    if (!parent) {
        if ((err = own_cgroup(own, sizeof own)))
            return fail(c, err, why, why_len, "cannot read the launcher's cgroup v2 from /proc/self/cgroup");
        parent = own;
    }
    /* the part of parent below the mounted root */
    size_t rlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
    if (rlen && (strncmp(parent, root, rlen) != 0 || (parent[rlen] && parent[rlen] != '/')))
        return fail(c, ENOENT, why, why_len, "cgroup %s is outside the mounted cgroup v2 hierarchy", parent);
    int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat root_st;
    if (mfd < 0 || fstat(mfd, &root_st) < 0) {
        err = errno;
        sys_close(&mfd);
        return fail(c, err, why, why_len, "cannot open the cgroup v2 mount %s", mnt);
    }
    /* what there is of parent first, then what is missing made */
    size_t done = 0;
    int there = open_path(mfd, parent + rlen, 0, &done);
    sys_close(&mfd);
    c->parent_fd = there;
    if (there >= 0) {
        /* no user but root and the launcher's may move the app's
         * processes out of its cgroup: not an app of another user's
         * (root may anyway; the launcher's own user may as the launcher
         * may), nor a third user a subtree above it is delegated to.
         * Looked at before anything is made (what the launcher makes, its
         * user's and 0755, is no way out) */
        char at[PATH_MAX];
        snprintf(at, sizeof at, "%.*s", (int)(rlen + done), parent);
        if (!at[0])
            snprintf(at, sizeof at, "/");
        uid_t who = (uid_t)-1;
        err = escapable(there, root_st.st_dev, root_st.st_ino, at, &who);
        int foreign_app = app_uid != (uid_t)-1 && app_uid != 0 && app_uid != geteuid();
        if (err == EPERM && foreign_app && (who == app_uid || who == (uid_t)-1))
            return fail(c, err, why, why_len,
                        "uid %lu may write the cgroup.procs of cgroup %s: the app's processes could leave "
                        "its cgroup (give a cgroup_parent its user may not write)", (unsigned long)app_uid, at);
        if (err == EPERM && who != (uid_t)-1)
            return fail(c, err, why, why_len,
                        "uid %lu may write the cgroup.procs of cgroup %s: it could move the app's processes out "
                        "of its cgroup (give a cgroup_parent only root and the launcher's user may write)",
                        (unsigned long)who, at);
        if (err == EPERM)
            return fail(c, err, why, why_len,
                        "the cgroup.procs of cgroup %s is writable by a group or by all: the app's processes "
                        "could be moved out of its cgroup (give a cgroup_parent only root and the launcher's "
                        "user may write)", at);
        if (err)
            return fail(c, err, why, why_len, "cannot look at cgroup %s, above the app's", at);
        if (parent[rlen + done]) {
            c->parent_fd = open_path(there, parent + rlen + done, 1, &done);
            sys_close(&there);
        }
    }
    if (c->parent_fd < 0) {
        err = -c->parent_fd;
        c->parent_fd = -1;
        return fail(c, err, why, why_len, "cannot open or make cgroup %s (cgroup v2 not writable here?)", parent);
    }
    pthread_mutex_lock(&swept_lock);
    sweep_once(c->parent_fd, parent);
    unsigned long n = ++serial;
    unsigned long long ns = own_pidns();
    pthread_mutex_unlock(&swept_lock);
    /* a name taken is one a launcher of the same pid (and namespace, or
     * one that had its inode) left, until swept: as many as such
     * launchers left (failing after 9, the tenth launcher run as pid 1 of
     * a namespace of its own failed); bounded all the same */
    for (unsigned long tries = 0;; tries++) {
        snprintf(c->name, sizeof c->name, CGROUP_PREFIX "%ld.%llu.%lu", (long)getpid(), ns, n + tries * 1000003ul);
        if (mkdirat(c->parent_fd, c->name, 0755) == 0)
            break;
        err = errno;
        c->name[0] = '\0';
        if (err != EEXIST || tries == CGROUP_NAME_TRIES)
            return fail(c, err, why, why_len, "cannot make a cgroup under %s (cgroup v2 not writable here?)", parent);
    }
    c->dir_fd = openat(c->parent_fd, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (c->dir_fd < 0 || fstat(c->dir_fd, &st) < 0)
        return fail(c, errno, why, why_len, "cannot open the cgroup made under %s", parent);
    /* made by us just now: anything else (renamed in by a user the parent
     * is delegated to) is not used */
    if (st.st_uid != geteuid())
        return fail(c, EPERM, why, why_len, "the cgroup made under %s was replaced", parent);
    /* kept: the SIGKILL that ends the app may come when the launcher has
     * no descriptor free (ENOENT: a kernel without cgroup.kill) */
    c->kill_fd = openat(c->dir_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (c->kill_fd < 0 && errno != ENOENT)
        return fail(c, errno, why, why_len, "cannot open cgroup.kill of the cgroup made under %s", parent);
    int len = snprintf(c->path, sizeof c->path, "%s%s%s", strcmp(parent, "/") == 0 ? "" : parent, "/",
                       c->name);
    if (len < 0 || (size_t)len >= sizeof c->path - 1)
        return fail(c, ENAMETOOLONG, why, why_len, "cgroup path under %s", parent);
    return 0;
}

int cgroup_procs_fd(const struct cgroup *c)
{
    int fd = openat(c->dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* fn(dir_fd, parent_fd, name, arg) for each cgroup inside dir_fd, the
 * deepest first; *budget counts them down. */
static void each_inner(int dir_fd, int depth, int *budget,
                       void (*fn)(int dir_fd, int parent_fd, const char *name, void *arg), void *arg)
{
    if (depth >= CGROUP_WALK_DEPTH)
        return;
    int list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        sys_close(&list_fd);
        return;
    }
    struct dirent *e;
    while (*budget > 0 && (e = readdir(d))) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        (*budget)--;
        each_inner(sub, depth + 1, budget, fn, arg);
        fn(sub, dir_fd, e->d_name, arg);
        sys_close(&sub);
    }
    closedir(d);
}

struct pid_list {
    pid_t *pids;
    size_t max, n;
};

/* The pids in dir_fd's cgroup.procs, added to l (counted past l->max). */
static int read_procs(int dir_fd, struct pid_list *l)
{
    int fd = openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char buf[4096], digits[16];
    size_t nd = 0;
    ssize_t got;
    while ((got = sys_read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] >= '0' && buf[i] <= '9' && nd < sizeof digits - 1) {
                digits[nd++] = buf[i];
            } else if (buf[i] == '\n' && nd) {
                digits[nd] = '\0';
                if (l->n < l->max)
                    l->pids[l->n] = (pid_t)strtol(digits, NULL, 10);
                l->n++;
                nd = 0;
            }
        }
    }
    int err = got < 0 ? errno : 0;
    sys_close(&fd);
    return err;
}

/* (one that cannot be read, as a threaded cgroup's cgroup.procs, is
 * passed over: its processes are reached by cgroup.kill) */
static void read_inner_procs(int dir_fd, int parent_fd, const char *name, void *arg)
{
    (void)parent_fd;
    (void)name;
    (void)read_procs(dir_fd, arg);
}

int cgroup_pids(const struct cgroup *c, pid_t *pids, size_t max, size_t *n)
{
    struct pid_list l = { pids, max, 0 };
    int err = read_procs(c->dir_fd, &l);
    if (!err) {
        int budget = CGROUP_WALK_MAX;
        each_inner(c->dir_fd, 0, &budget, read_inner_procs, &l);
    }
    *n = l.n;
    return err;
}

int cgroup_populated(const struct cgroup *c)
{
    return populated_at(c->dir_fd);
}

int cgroup_kill(const struct cgroup *c)
{
    if (c->kill_fd >= 0)
        return sys_write_all(c->kill_fd, "1", 1) < 0 ? errno : 0;
    int fd = openat(c->dir_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = sys_write_all(fd, "1", 1) < 0 ? errno : 0;
    sys_close(&fd);
    return err;
}

int cgroup_path_contains(const char *cgroup, pid_t pid)
{
    return cgroup_path_holds(cgroup, pid) == 1;
}

int cgroup_path_holds(const char *cgroup, pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    ssize_t n = sys_read_small(AT_FDCWD, path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    const char *p = strncmp(buf, "0::", 3) == 0 ? buf + 3 : strstr(buf, "\n0::");
    if (!p)
        return 0;
    if (p != buf + 3)
        p += 4;
    size_t l = strlen(cgroup);
    /* it, or a cgroup an app of root's made inside it */
    return l > 0 && strncmp(p, cgroup, l) == 0 && (p[l] == '\n' || p[l] == '/' || p[l] == '\0');
}

int cgroup_contains(const struct cgroup *c, pid_t pid)
{
    return cgroup_path_contains(c->path, pid);
}

int cgroup_events_fd(const struct cgroup *c)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -errno;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d/cgroup.events", c->dir_fd);
    if (inotify_add_watch(fd, path, IN_MODIFY) < 0) {
        int err = errno;
        sys_close(&fd);
        return -err;
    }
    return fd;
}

/* The first cgroup inside dir_fd (its name into name), or -1 when none. */
static int first_inner(int dir_fd, char *name, size_t size)
{
    int list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        sys_close(&list_fd);
        return -1;
    }
    int sub = -1;
    struct dirent *e;
    while (sub < 0 && (e = readdir(d))) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strlen(e->d_name) >= size)
            continue;
        sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            strcpy(name, e->d_name);
    }
    closedir(d);
    return sub;
}

/* The cgroups an app made inside top_fd's, empty by now (a cgroup is
 * populated while any inside it is), removed one at a time, the deepest
 * of a chain first, two descriptors held at a time: to any depth (the
 * walk of each_inner stops at CGROUP_WALK_DEPTH, and those below stayed,
 * with the app's directory, for good), CGROUP_WALK_MAX removals and
 * CGROUP_WALK_MAX * 16 steps down at most (an app could make them
 * without end). */
static void remove_all_inner(int top_fd)
{
    int steps = CGROUP_WALK_MAX * 16;
    for (int removals = 0; removals < CGROUP_WALK_MAX && steps > 0; removals++) {
        /* down the first of each to one with none inside: cur, named
         * `name` in parent (both ours to close but the top) */
        char name[NAME_MAX + 1];
        int parent = top_fd, cur = top_fd, sub = -1;
        while (steps > 0 && (sub = first_inner(cur, name, sizeof name)) >= 0) {
            steps--;
            if (parent != top_fd)
                sys_close(&parent);
            parent = cur;
            cur = sub;
        }
        if (cur == top_fd)
            return; /* nothing left inside */
        int removed = sub < 0 && unlinkat(parent, name, AT_REMOVEDIR) == 0;
        sys_close(&cur);
        if (parent != top_fd)
            sys_close(&parent);
        if (!removed)
            return; /* (busy, or out of steps: left) */
    }
}

/* Remove c's directory (with the cgroups inside it first, when inner):
 * 0, or an errno value (EBUSY: populated, or with cgroups inside). */
static int remove_own(struct cgroup *c, int inner)
{
    if (c->parent_fd < 0 || !c->name[0])
        return 0;
    /* only the directory we made: checked through its descriptor */
    struct stat mine, there;
    if (fstat(c->dir_fd, &mine) < 0 ||
        fstatat(c->parent_fd, c->name, &there, AT_SYMLINK_NOFOLLOW) < 0 ||
        mine.st_dev != there.st_dev || mine.st_ino != there.st_ino) {
        c->name[0] = '\0';
        return ENOENT;
    }
    /* the cgroups an app made inside it first */
    if (inner)
        remove_all_inner(c->dir_fd);
    if (unlinkat(c->parent_fd, c->name, AT_REMOVEDIR) < 0)
        return errno;
    c->name[0] = '\0';
    return 0;
}

int cgroup_remove(struct cgroup *c)
{
    return remove_own(c, 1);
}

int cgroup_remove_if_unused(struct cgroup *c)
{
    return remove_own(c, 0);
}

void cgroup_close(struct cgroup *c)
{
    /* one that cannot be read (out of descriptors) is removed all the
     * same where it can be: the kernel refuses a populated one (EBUSY),
     * and the cgroups inside it, which a running app may use, are left */
    int r = c->dir_fd >= 0 ? cgroup_populated(c) : 1;
    if (r == 0)
        (void)cgroup_remove(c);
    else if (r < 0)
        (void)cgroup_remove_if_unused(c);
    sys_close(&c->kill_fd);
    sys_close(&c->dir_fd);
    sys_close(&c->parent_fd);
    c->name[0] = '\0';
}
