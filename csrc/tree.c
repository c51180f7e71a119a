/*
 * tree.c: the members of an app's process group or cgroup (see tree.h).
 */
#include "tree.h"
#include "procfs.h"
#include "process.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct tree *tree_new(int mode, const char *cgroup_parent, int *err, char *why,
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
    if (mode == TREE_CGROUP && (*err = cgroup_create(&t->cg, cgroup_parent, why, why_len))) {
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

static int member_now(const struct tree *t, pid_t pid)
{
    struct procfs_stat st;
    if (procfs_stat(pid, &st) != 0 || st.state == 'Z' || st.state == 'X')
        return 0;
    if (t->mode == TREE_GROUP)
        return st.pgrp == t->pgid && st.start_time >= t->min_start && !group_recycled(t);
    return cgroup_contains(&t->cg, pid);
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

/* Is the group's number pinned: is its leader (the process whose pid is
 * pgid, started when the group was learned) an unreaped child of the
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
    return t->leader_known && procfs_stat(t->pgid, &st) == 0 && st.start_time == t->leader_start;
}

/* Signal pid if it is a member, held by a pidfd while it is checked: 1
 * when signalled (sig 0: when it is a live member; count: counted as
 * signalled, the signal left to a kill of the whole group). */
static int signal_member(struct tree *t, pid_t pid, int sig, int count)
{
    struct process p;
    if (process_open(&p, pid, 0) != 0)
        return 0;
    struct procfs_stat st;
    int sent = 0;
    /* a zombie runs no more: nothing to signal or wait for (its parent,
     * perhaps an init that is slow to reap, has it) */
    if (member_now(t, pid) && procfs_stat(pid, &st) == 0 && st.state != 'Z' && st.state != 'X') {
        if (sig == 0) {
            sent = 1;
        } else {
            /* counted: may it be signalled? */
            int err = process_signal(&p, count ? 0 : sig);
            if (err == 0) {
                note(t, pid, st.start_time);
                sent = 1;
            } else if (err == EPERM) {
                t->refused++;
            }
        }
    }
    process_release(&p);
    return sent;
}

/* Every member but the app: sig to each (0: count them). */
static int each_member(struct tree *t, pid_t app, int app_fd, int sig)
{
    int count = 0;
    t->refused = 0;
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
                count += signal_member(t, pids[i], sig, 0);
        if (pids != small)
            free(pids);
        return count;
    }
    if (t->mode != TREE_GROUP || t->pgid <= 0)
        return 0;
    /* a group with no process left is told by one system call, not by
     * reading all of /proc (an app whose main ended alone, the usual case) */
    if (kill(-t->pgid, 0) != 0 && errno == ESRCH)
        return 0;
    if (group_recycled(t))
        return 0;
    /* pinned, the group is signalled as one (each member once, none that
     * forks meanwhile missed; a SIGKILL also while the leader runs, as it
     * is being killed too): /proc is read to count its members */
    int whole = sig != 0 && group_pinned(t, app, app_fd, sig != SIGKILL);
    DIR *d = opendir("/proc");
    if (!d) {
        int err = errno;
        if (whole) /* uncounted (out of descriptors), not unsignalled */
            (void)kill(-t->pgid, sig);
        return -err;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == app)
            continue;
        struct procfs_stat st;
        /* a cheap look first: most processes are not in the group */
        if (procfs_stat((pid_t)pid, &st) != 0 || st.pgrp != t->pgid)
            continue;
        count += signal_member(t, (pid_t)pid, sig, whole);
    }
    closedir(d);
    if (whole)
        (void)kill(-t->pgid, sig);
    return count;
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
    /* a member may fork while it is killed: a few more passes */
    for (int pass = 0; pass < 3 && n > 0; pass++)
        n = each_member(t, app, app_fd, SIGKILL);
    return 0;
}

void tree_let_go(struct tree *t, pid_t app, int app_fd)
{
    if (t && t->mode == TREE_GROUP && t->pgid > 0 && group_pinned(t, app, app_fd, 1))
        (void)kill(-t->pgid, SIGKILL);
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
    if (r == 0)
        (void)cgroup_remove(&t->cg);
    return r < 0 ? 0 : r;
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
 * or poll. A few are kept; past that the next launcher's sweep of dead
 * launchers' directories gets them. */
#define TREE_DEFERRED_MAX 64
static pthread_mutex_t deferred_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cgroup deferred[TREE_DEFERRED_MAX];
static int ndeferred;

void tree_sweep_deferred(void)
{
    if (ndeferred == 0) /* a racy look, only to spare the lock */
        return;
    pthread_mutex_lock(&deferred_lock);
    for (int i = 0; i < ndeferred;) {
        if (cgroup_populated(&deferred[i]) == 1) {
            i++;
            continue;
        }
        cgroup_close(&deferred[i]);
        deferred[i] = deferred[--ndeferred];
    }
    pthread_mutex_unlock(&deferred_lock);
}

void tree_free(struct tree *t)
{
    if (!t)
        return;
    sys_close(&t->events_fd);
    if (t->mode == TREE_CGROUP && t->cg.dir_fd >= 0 && cgroup_populated(&t->cg) == 1) {
        pthread_mutex_lock(&deferred_lock);
        if (ndeferred < TREE_DEFERRED_MAX) {
            deferred[ndeferred++] = t->cg;
            t->cg = (struct cgroup)CGROUP_NONE;
        }
        pthread_mutex_unlock(&deferred_lock);
    }
    cgroup_close(&t->cg);
    free(t->seen);
    free(t);
}
