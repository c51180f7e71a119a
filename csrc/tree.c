/*
 * tree.c: the members of an app's process group or cgroup (see tree.h).
 */
#include "tree.h"
#include "children.h"
#include "procfs.h"
#include "process.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Members are remembered up to this many, to count each once; past it (a
 * fork bomb) each signal counts. */
#define TREE_SEEN_MAX 4096

int tree_no_cgroup_kill;

const char *tree_mode_name(int mode)
{
    switch (mode) {
    case TREE_GROUP: return "group";
    case TREE_CGROUP: return "cgroup";
    default: return "process";
    }
}

struct tree *tree_new(int mode, const char *cgroup_parent, uid_t app_uid, int *err, char *why,
                      size_t why_len)
{
    struct tree *t = calloc(1, sizeof *t);
    if (!t) {
        *err = ENOMEM;
        snprintf(why, why_len, "%s", strerror(ENOMEM));
        return NULL;
    }
    t->mode = mode;
    t->cg = (struct cgroup)CGROUP_NONE;
    t->events_fd = -1;
    *err = 0;
    if (mode == TREE_CGROUP && (*err = cgroup_create(&t->cg, cgroup_parent, app_uid, why, why_len))) {
        free(t);
        return NULL;
    }
    return t;
}

int tree_set_group(struct tree *t, pid_t app, unsigned long long min_start)
{
    struct procfs_stat st;
    int err = procfs_stat(app, &st);
    if (err)
        return err;
    /* never the launcher's own group (the app was set apart from it) */
    if (st.pgrp <= 1 || st.pgrp == getpgrp())
        return EPERM;
    t->pgid = st.pgrp;
    t->min_start = min_start;
    struct procfs_stat leader;
    t->leader_start = procfs_stat(st.pgrp, &leader) == 0 ? leader.start_time : 0;
    t->leader_known = 1;
    return 0;
}

void tree_set_led_group(struct tree *t, pid_t pid, unsigned long long start)
{
    t->pgid = pid;
    t->min_start = start;
    t->leader_start = start;
    t->leader_known = start != 0;
}

/* Has the group's number been given out again since it was learned? A
 * number is held while any process has it as its pid, group or session,
 * so a live process whose pid is pgid and that is not the leader the
 * group had shows that the group emptied: nothing of it is left, and
 * what is in the group of that number now is another's. */
static int group_recycled(const struct tree *t)
{
    struct procfs_stat st;
    return t->leader_known && procfs_stat(t->pgid, &st) == 0 && st.start_time != t->leader_start;
}

/* Is pid a live member now (*st: its stat then)? 1 or 0; -errno when
 * that cannot be told for now (out of descriptors: its /proc files cannot
 * be opened), which is neither */
static int member_stat(const struct tree *t, pid_t pid, struct procfs_stat *st)
{
    int err = procfs_stat(pid, st);
    if (err)
        return sys_lacks_resources(err) ? -err : 0;
    if (procfs_stat_ended(st))
        return 0;
    if (t->mode == TREE_GROUP)
        return st->pgrp == t->pgid && st->start_time >= t->min_start && !group_recycled(t);
    int held = cgroup_path_holds(t->cg.path, pid);
    return held < 0 && sys_lacks_resources(-held) ? held : held == 1;
}

static int member_now(const struct tree *t, pid_t pid)
{
    struct procfs_stat st;
    return member_stat(t, pid, &st) > 0;
}

int tree_contains(struct tree *t, pid_t pid)
{
    return t && t->mode != TREE_PROCESS && (t->mode != TREE_GROUP || t->pgid > 0) &&
           member_now(t, pid);
}

static void note(struct tree *t, pid_t pid, unsigned long long start)
{
    for (size_t i = 0; i < t->nseen; i++)
        if (t->seen[i].pid == pid && t->seen[i].start == start)
            return;
    t->left++;
    if (t->nseen == t->cap_seen) {
        size_t cap = t->cap_seen ? 2 * t->cap_seen : 8;
        struct tree_member *grown =
            cap <= TREE_SEEN_MAX ? realloc(t->seen, cap * sizeof *grown) : NULL;
        if (!grown)
            return; /* counted, not remembered */
        t->seen = grown;
        t->cap_seen = cap;
    }
    t->seen[t->nseen++] = (struct tree_member){ pid, start };
}

/* Is the group's number pinned: is its leader, the app (pid == pgid,
 * started when the group was learned), an unreaped child of the
 * launcher's? No other process can have that number then, so no other
 * group can: kill(-pgid) reaches this group and no other, every member at
 * once, even one forked a moment ago (a fork-and-exit chain runs ahead of
 * any look at /proc). The leader is known by the app's pidfd (app_fd)
 * where the app leads the group, else by its start time. exited: only
 * once the leader has exited (and is held, process.h). */
static int group_pinned(const struct tree *t, pid_t app, int app_fd, int exited)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r, by_fd = app == t->pgid && app_fd >= 0;
    do
        r = by_fd ? waitid((idtype_t)P_PIDFD, (id_t)app_fd, &si, WEXITED | WNOHANG | WNOWAIT)
                  : waitid(P_PID, (id_t)t->pgid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && by_fd && errno == EINVAL)
        return group_pinned(t, app, -1, exited); /* a kernel without P_PIDFD */
    if (r != 0 || (exited && si.si_pid != t->pgid))
        return 0;
    if (by_fd)
        return 1;
    struct procfs_stat st;
    if (!t->leader_known)
        return 0;
    int err = procfs_stat(t->pgid, &st);
    if (err == 0)
        return st.start_time == t->leader_start;
    /* /proc cannot be read for now (out of descriptors, without pidfds):
     * the app leads the group and is the unreaped child of ours that the
     * wait found, so the number is its own (a start failed then would
     * leave what it forked running, unsignalled) */
    return app == t->pgid && sys_lacks_resources(err);
}

/* Signal pid if it is a member, held by a pidfd while it is checked: 1
 * when signalled (sig 0: when it is a live member; count: counted as
 * signalled, the signal left to a kill of the whole group); -errno when
 * whether it is one cannot be told for now (out of descriptors). */
static int signal_member(struct tree *t, pid_t pid, int sig, int count)
{
    struct process p;
    int err = process_open(&p, pid, 0);
    if (err)
        return sys_lacks_resources(err) ? -err : 0;
    struct procfs_stat st;
    int sent = 0;
    /* a zombie runs no more: nothing to signal or wait for (its parent,
     * perhaps an init that is slow to reap, has it); the pidfd holds the
     * pid while it is read: the stat is this process's */
    int member = member_stat(t, pid, &st);
    if (member < 0)
        sent = member;
    else if (member) {
        if (sig == 0) {
            sent = 1;
        } else {
            /* counted: may it be signalled? */
            err = process_signal(&p, count ? 0 : sig);
            if (err == 0) {
                if (!t->uncounted)
                    note(t, pid, st.start_time);
                sent = 1;
            } else if (err == EPERM) {
                t->refused++;
                /* (a cgroup's member of another user's: the cgroup.kill
                 * that follows, the launcher's own to write, ends it:
                 * found and signalled, tree_kill) */
                if (sig == SIGKILL && t->mode == TREE_CGROUP && t->cg.kill_fd >= 0 && !tree_no_cgroup_kill &&
                    !t->uncounted)
                    note(t, pid, st.start_time);
            }
        }
    }
    process_release(&p);
    return sent;
}

/* A member's count into *count, or what kept it from being looked at into
 * *unknown. */
static void tally(int r, int *count, int *unknown)
{
    if (r < 0)
        *unknown = -r;
    else
        *count += r;
}

/* Every member but the app: sig to each (0: count them). -errno when one
 * could not be looked at (out of descriptors) and none was signalled, or
 * for a count: some may be left, uncounted. */
static int each_member(struct tree *t, pid_t app, int app_fd, int sig)
{
    int count = 0, unknown = 0;
    t->refused = 0;
    t->whole = 0;
    if (t->mode == TREE_CGROUP) {
        pid_t small[256], *pids = small;
        size_t n = 0;
        int err = cgroup_pids(&t->cg, small, 256, &n);
        if (err)
            return err == ENOENT ? 0 : -err;
        if (n > 256) {
            size_t want = n + 64;
            if (!(pids = malloc(want * sizeof *pids)))
                return -ENOMEM;
            if ((err = cgroup_pids(&t->cg, pids, want, &n))) {
                free(pids);
                return -err;
            }
            if (n > want)
                n = want; /* the rest came meanwhile: the next pass */
        }
        for (size_t i = 0; i < n; i++)
            if (pids[i] != app && pids[i] > 0)
                tally(signal_member(t, pids[i], sig, 0), &count, &unknown);
        if (pids != small)
            free(pids);
        return unknown && (sig == 0 || count == 0) ? -unknown : count;
    }
    if (t->mode != TREE_GROUP || t->pgid <= 0)
        return 0;
    /* a group with no process left is told by one system call, not by
     * reading all of /proc (where its leader is not held: a held one,
     * a zombie, is in it until reaped) */
    if (kill(-t->pgid, 0) != 0 && errno == ESRCH)
        return 0;
    if (group_recycled(t))
        return 0;
    /* the app's own group (it leads it), pinned: signalled as one (each
     * member once, none that forks meanwhile missed; a SIGKILL also while
     * the app runs, as it is being killed too), /proc read to count its
     * members. A group the app is in but does not lead (a main moved by
     * MAINPID=, whose leader may be anyone's) is signalled member by
     * member: never the app twice, never what is not the app's. */
    int whole = sig != 0 && app == t->pgid && group_pinned(t, app, app_fd, sig != SIGKILL);
    DIR *d = opendir("/proc");
    if (!d) {
        int err = errno;
        if (whole) /* uncounted (out of descriptors), not unsignalled */
            t->whole = kill(-t->pgid, sig) == 0;
        return -err;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == app)
            continue;
        /* a cheap look first (one system call, no /proc file read): most
         * processes are not in the group */
        if (getpgid((pid_t)pid) != t->pgid)
            continue;
        tally(signal_member(t, (pid_t)pid, sig, whole), &count, &unknown);
    }
    closedir(d);
    if (whole)
        t->whole = kill(-t->pgid, sig) == 0;
    return unknown && (sig == 0 || count == 0) ? -unknown : count;
}

int tree_signal(struct tree *t, pid_t app, int app_fd, int sig)
{
    if (!t)
        return 0;
    return each_member(t, app, app_fd, sig);
}

int tree_others(struct tree *t, pid_t app)
{
    if (!t)
        return 0;
    return each_member(t, app, -1, 0);
}

int tree_kill(struct tree *t, pid_t app, int app_fd)
{
    if (!t)
        return 0;
    /* each member by its pidfd first (counted for how.left), then, for a
     * cgroup, cgroup.kill for whatever forked meanwhile */
    int n = each_member(t, app, app_fd, SIGKILL);
    if (t->mode == TREE_CGROUP && !tree_no_cgroup_kill && cgroup_kill(&t->cg) == 0)
        return 0;
    /* a member may fork while it is killed one by one: a few more passes
     * (none after a kill of the pinned group as one: it reached every
     * member, those forked meanwhile too) */
    for (int pass = 0; pass < 3 && n > 0 && !t->whole; pass++)
        n = each_member(t, app, app_fd, SIGKILL);
    return 0;
}

void tree_let_go(struct tree *t, pid_t app, int app_fd)
{
    if (t && t->mode == TREE_GROUP && t->pgid > 0 && app == t->pgid && group_pinned(t, app, app_fd, 1))
        (void)kill(-t->pgid, SIGKILL);
}

struct take {
    const struct tree *t;
    pid_t app;
};

/* Is pid in the group, live or a zombie (its stat read once), and not the
 * app (its handle's to reap, though out of memory left it out of the
 * library's children)? */
static int member_any_state(pid_t pid, void *arg)
{
    const struct take *k = arg;
    struct procfs_stat st;
    return pid != k->app && procfs_stat(pid, &st) == 0 && st.pgrp == k->t->pgid &&
           st.start_time >= k->t->min_start && !group_recycled(k->t);
}

void tree_take_adopted(struct tree *t, pid_t app)
{
    struct take k = { t, app };
    if (t && t->mode == TREE_GROUP && t->pgid > 0)
        children_take_adopted(member_any_state, &k);
}

int tree_populated(struct tree *t)
{
    if (!t || t->mode != TREE_CGROUP || t->cg.dir_fd < 0)
        return 0;
    /* the watch first, then the read: an emptying that comes after the
     * read is an event on the descriptor a caller will wait on (made after
     * the read, it could miss it and wait forever) */
    (void)tree_fd(t);
    if (t->events_fd >= 0) {
        char buf[512];
        while (sys_read(t->events_fd, buf, sizeof buf) > 0)
            ;
    }
    int r = cgroup_populated(&t->cg);
    if (r == -ENOENT)
        r = 0; /* removed (by an earlier look): it was empty, and is gone */
    if (r == 0)
        (void)cgroup_remove(&t->cg);
    /* not known to be empty: the app has not ended (an emptying before
     * this look may have left no event to wait for: looked at again) */
    t->unread = r < 0;
    return r != 0;
}

int tree_fd(struct tree *t)
{
    if (!t || t->mode != TREE_CGROUP || t->cg.dir_fd < 0)
        return -ENOENT;
    if (t->events_fd < 0) {
        int fd = cgroup_events_fd(&t->cg);
        if (fd < 0)
            return fd;
        t->events_fd = fd;
    }
    return t->events_fd;
}

/* Cgroups let go of while processes still ran in them (a start dropped,
 * an app closed and left running): removed once empty, by a later start
 * or poll. Each is kept by its name and identity (device, inode) under its
 * parent, not by a descriptor: one descriptor per parent, however many
 * are let go of. Past TREE_DEFERRED_MAX (or out of memory) the next
 * launcher's sweep of dead launchers' directories gets them. */
#define TREE_DEFERRED_MAX 65536
struct deferred_parent {
    int fd; /* -1: a free slot */
    dev_t dev;
    ino_t ino;
    size_t refs;
};
struct deferred_cgroup {
    size_t parent;
    char name[sizeof ((struct cgroup *)0)->name];
    dev_t dev;
    ino_t ino;
};
static pthread_mutex_t deferred_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deferred_parent *parents;
static size_t nparents;
static struct deferred_cgroup *deferred;
static size_t ndeferred, cap_deferred;

/* The slot of the parent cg is under (its descriptor taken, or closed for
 * one kept already), or -1 (out of memory); the lock held. */
static long deferred_parent_of(struct cgroup *cg, const struct stat *st)
{
    size_t free_slot = nparents;
    for (size_t i = 0; i < nparents; i++) {
        if (parents[i].fd < 0) {
            free_slot = i;
        } else if (parents[i].dev == st->st_dev && parents[i].ino == st->st_ino) {
            sys_close(&cg->parent_fd);
            parents[i].refs++;
            return (long)i;
        }
    }
    if (free_slot == nparents) {
        struct deferred_parent *grown = realloc(parents, (nparents + 1) * sizeof *grown);
        if (!grown)
            return -1;
        parents = grown;
        nparents++;
    }
    parents[free_slot] = (struct deferred_parent){ cg->parent_fd, st->st_dev, st->st_ino, 1 };
    cg->parent_fd = -1;
    return (long)free_slot;
}

/* Keep cg, still populated, for a later sweep: 0, or -1 (it is left as it
 * is); the lock held. */
static int defer(struct cgroup *cg)
{
    struct stat pst, st;
    if (ndeferred >= TREE_DEFERRED_MAX || fstat(cg->parent_fd, &pst) < 0 || fstat(cg->dir_fd, &st) < 0)
        return -1;
    if (ndeferred == cap_deferred) {
        size_t cap = cap_deferred ? 2 * cap_deferred : 8;
        struct deferred_cgroup *grown = realloc(deferred, cap * sizeof *grown);
        if (!grown)
            return -1;
        deferred = grown;
        cap_deferred = cap;
    }
    long parent = deferred_parent_of(cg, &pst);
    if (parent < 0)
        return -1;
    struct deferred_cgroup *d = &deferred[ndeferred++];
    d->parent = (size_t)parent;
    memcpy(d->name, cg->name, sizeof d->name);
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    /* kept by name now: closed without a look (it is populated) */
    sys_close(&cg->dir_fd);
    sys_close(&cg->parent_fd);
    cg->name[0] = '\0';
    return 0;
}

/* Let go of the lists (and give their memory back: no block is left that
 * only this library's statics point to once it is unloaded); the lock
 * held. */
static void forget_deferred(void)
{
    for (size_t i = 0; i < nparents; i++)
        sys_close(&parents[i].fd);
    free(parents);
    free(deferred);
    parents = NULL;
    deferred = NULL;
    nparents = ndeferred = cap_deferred = 0;
}

/* Look at deferred[i]: 1 to keep it (populated, or not to be looked at
 * now: out of descriptors), 0 when it is gone or removed now. */
static int deferred_still_there(const struct deferred_cgroup *d)
{
    struct cgroup c = CGROUP_NONE;
    c.parent_fd = parents[d->parent].fd;
    c.dir_fd = openat(c.parent_fd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (c.dir_fd < 0)
        return sys_lacks_resources(errno);
    struct stat st;
    int keep = 0;
    if (fstat(c.dir_fd, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino) {
        int r = cgroup_populated(&c);
        if (r == 0) {
            memcpy(c.name, d->name, sizeof c.name);
            (void)cgroup_remove(&c);
        }
        /* (one that could not be read now, out of descriptors: later) */
        keep = r == 1 || (r < 0 && r != -ENOENT);
    }
    sys_close(&c.dir_fd); /* the parent's stays: it is the list's */
    return keep;
}

void tree_sweep_deferred(void)
{
    if (ndeferred == 0) /* a racy look, only to spare the lock */
        return;
    pthread_mutex_lock(&deferred_lock);
    for (size_t i = 0; i < ndeferred;) {
        if (deferred_still_there(&deferred[i])) {
            i++;
            continue;
        }
        struct deferred_parent *p = &parents[deferred[i].parent];
        if (--p->refs == 0)
            sys_close(&p->fd);
        deferred[i] = deferred[--ndeferred];
    }
    if (ndeferred == 0)
        forget_deferred();
    pthread_mutex_unlock(&deferred_lock);
}

/* The library is being unloaded (the Lua state closed): what is still
 * kept is left to the next launcher's sweep. */
static void tree_unload(void) __attribute__((destructor));

static void tree_unload(void)
{
    pthread_mutex_lock(&deferred_lock);
    forget_deferred();
    pthread_mutex_unlock(&deferred_lock);
}

void tree_free(struct tree *t)
{
    if (!t)
        return;
    sys_close(&t->events_fd);
    int r = t->mode == TREE_CGROUP && t->cg.dir_fd >= 0 ? cgroup_populated(&t->cg) : 0;
    /* one that cannot be read now (out of descriptors) is removed where
     * it can be (the kernel refuses a populated one: EBUSY; one nothing
     * joined can), else kept too */
    if (r < 0 && r != -ENOENT && cgroup_remove_if_unused(&t->cg) == 0)
        r = 0;
    if (r == 1 || (r < 0 && r != -ENOENT)) {
        pthread_mutex_lock(&deferred_lock);
        (void)defer(&t->cg);
        pthread_mutex_unlock(&deferred_lock);
    }
    cgroup_close(&t->cg);
    free(t->seen);
    free(t);
}
