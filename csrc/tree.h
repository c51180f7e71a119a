/*
 * tree.h: what a stop reaches besides the app itself (kill_mode).
 *
 *   process  the app's pid only (no tree is made)
 *   group    the app's process group: the app starts in a session of its
 *            own (setsid), so children it forks are in its group unless
 *            they leave it (a daemon that calls setsid does)
 *   cgroup   a cgroup v2 directory of the app's (cgroup.h), joined before
 *            the exec: nothing the app forks can leave it; the app has
 *            ended only once it is empty
 *
 * Members are found afresh at each signal (/proc for a group, cgroup.procs
 * for a cgroup), each held through a pidfd and checked again before it is
 * signalled, so a recycled pid is never signalled: a group member must be
 * in the group and no older than the process spawned; a cgroup member in
 * the cgroup. `left` counts the distinct members other than the app that
 * were signalled.
 */
#ifndef APPSTART_TREE_H
#define APPSTART_TREE_H

#include "cgroup.h"

#include <stddef.h>
#include <sys/types.h>

enum tree_mode { TREE_PROCESS = 0, TREE_GROUP, TREE_CGROUP };

struct tree_member {
    pid_t pid;
    unsigned long long start;
};

struct tree {
    int mode;                      /* enum tree_mode */
    pid_t pgid;                    /* group: 0 until known */
    unsigned long long min_start;  /* group: members start no earlier */
    int leader_known;              /* group: leader_start is known */
    unsigned long long leader_start; /* group: start of the process whose
                                        pid is pgid when the group was
                                        learned (0: there was none) */
    struct cgroup cg;              /* cgroup */
    int events_fd;                 /* cgroup: inotify on cgroup.events */
    int unread;                    /* cgroup: cgroup.events could not be
                                      read at the last look (out of
                                      descriptors): counted populated,
                                      looked at again at poll_interval */
    long long left;                /* members a stop signalled (below) */
    int uncounted;                 /* the signal being sent is no stop's
                                      (app:kill): what it reaches is not
                                      counted in left */
    int refused;                   /* members the last signal could not
                                      reach (EPERM: another user's) */
    int whole;                     /* the last signal went to the group as
                                      one (kill(-pgid): every member, those
                                      forked meanwhile too) */
    struct tree_member *seen;      /* members signalled, for `left` */
    size_t nseen, cap_seen;
};

/* A tree of mode, holding nothing yet; for a cgroup, make its directory
 * under parent (NULL: the launcher's cgroup). Returns 0 or an errno value
 * with why set (app_uid: as cgroup_create's). A tree is malloc'd: NULL
 * with ENOMEM. */
struct tree *tree_new(int mode, const char *cgroup_parent, uid_t app_uid, int *err, char *why,
                      size_t why_len);

/* group: the group is the app's, from /proc (the app is a member);
 * members start no earlier than min_start (the process spawned's start
 * time). Returns 0 or an errno value. */
int tree_set_group(struct tree *t, pid_t app, unsigned long long min_start);

/* group: the group is the one pid (just spawned, started at start) leads. */
void tree_set_led_group(struct tree *t, pid_t pid, unsigned long long start);

/* Send sig to every member but the app (app_fd: its pidfd, or -1). A group
 * whose number its leader pins (an unreaped child of the launcher's) gets
 * it as one, kill(-pgid), once the leader has exited (a SIGKILL: also while
 * it runs, the app being killed too); members are then counted, not
 * signalled, one by one. Returns how many were signalled, or -errno when
 * the members cannot be listed (or, none signalled, one of them looked
 * at). */
int tree_signal(struct tree *t, pid_t app, int app_fd, int sig);

/* SIGKILL to every member: cgroup.kill (the app included) where the
 * kernel has it, else each by its pidfd (and a pinned group as one, as
 * tree_signal); the app is for the caller. */
int tree_kill(struct tree *t, pid_t app, int app_fd);

/* The app, the group's leader, has exited and is let go of (reaped): what
 * is left in its group while its number is still pinned (an unreaped
 * leader, process.h) gets SIGKILL, atomically: a member that forks and
 * exits can slip by a count read from /proc, never by this. Other modes,
 * and a group not pinned: nothing. */
void tree_let_go(struct tree *t, pid_t app, int app_fd);

/* group: the members other than the app that are the launcher's children
 * and not its own (what the app left there, adopted while the launcher
 * was a child subreaper, or its pid namespace's init) are taken over
 * (children_take_adopted): reaped now if they have exited, else reaped
 * once they exit. A zombie is a member until it is reaped. Other modes:
 * nothing. */
void tree_take_adopted(struct tree *t, pid_t app);

/* How many members other than the app are alive (zombies not counted);
 * -errno when they cannot be looked at for now (out of descriptors: /proc,
 * the cgroup, a member's files), which is no empty tree. */
int tree_others(struct tree *t, pid_t app);

/* cgroup: 1 while any process is in it, or while that cannot be read (out
 * of descriptors: unread is set), 0 once empty (its directory is removed
 * then); drains the events descriptor. Other modes: 0. */
int tree_populated(struct tree *t);

/* cgroup: a descriptor readable when the cgroup's population changes
 * (made on first call), or -errno; other modes: -ENOENT. */
int tree_fd(struct tree *t);

/* Is pid a member (for notify_access = "all")? */
int tree_contains(struct tree *t, pid_t pid);

/* Close its descriptors and free it (NULL is fine). A cgroup directory is
 * removed now when empty, else once it is (tree_sweep_deferred). */
void tree_free(struct tree *t);

/* Remove the cgroup directories let go of that have become empty. */
void tree_sweep_deferred(void);

const char *tree_mode_name(int mode);

/* Tests set it to take the path of kernels without cgroup.kill. */
extern int tree_no_cgroup_kill;

#endif
