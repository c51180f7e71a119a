/*
 * cgroup.h: a cgroup v2 directory of one app's, for kill_mode = "cgroup".
 *
 * The hierarchy is found from /proc/self/mountinfo (mounted at
 * /sys/fs/cgroup, or at /sys/fs/cgroup/unified on hybrid systems); the
 * directory is made under a parent (by default the launcher's own cgroup,
 * from /proc/self/cgroup) and reached only through descriptors from then
 * on, so no rename in a delegated subtree can redirect what root does.
 * The child joins it before its exec (spawn.h: cgroup_fd), so nothing the
 * app forks can escape it.
 */
#ifndef APPSTART_CGROUP_H
#define APPSTART_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

struct cgroup {
    int parent_fd;   /* the parent directory; -1 when none */
    int dir_fd;      /* ours; -1 when none */
    int kill_fd;     /* its cgroup.kill, for writing, opened as it is made
                        (a SIGKILL must not need a free descriptor); -1
                        where the kernel has none */
    char name[64];   /* ours, under the parent: appstart.PID.NS.N (NS: the
                        inode of the launcher's pid namespace) */
    char path[512];  /* ours, in the hierarchy ("/x/appstart.PID.NS.N"),
                        as /proc/PID/cgroup names it */
};

#define CGROUP_NONE { -1, -1, -1, "", "" }

/* Make a fresh directory under parent (a path in the cgroup v2 hierarchy;
 * NULL: the launcher's own cgroup). Returns 0, or an errno value with a
 * message in why that says what is missing (cgroup v2 not mounted, not
 * writable, no such parent). Empty directories left under the same parent
 * by launchers that were killed are removed on the way: at once where the
 * launcher's pid, of this pid namespace, is gone, else (another
 * namespace's, whose pids mean nothing here) once a minute old (a parent
 * is looked at again SYS_SWEEP_AGAIN seconds after the last look at the
 * earliest, found clean or not: a launcher that runs on removes those of
 * launchers killed since). The directory removed so under a launcher that
 * still holds it (its app ended) is found gone (ENOENT). app_uid: the
 * user the app runs as ((uid_t)-1: the launcher's; 0: root, who may
 * move anything anyway): EPERM where that user could move the app's
 * processes out (the cgroup.procs of parent or of a cgroup above it
 * writable by it). */
int cgroup_create(struct cgroup *c, const char *parent, uid_t app_uid, char *why, size_t why_len);

/* A new descriptor on cgroup.procs, for writing: the child joins the
 * cgroup by writing "0" to it. Returns it, or -errno. */
int cgroup_procs_fd(const struct cgroup *c);

/* The pids in the cgroup and in those made inside it, into pids[max] (*n:
 * how many there are, which may exceed max). Returns 0 or an errno value. */
int cgroup_pids(const struct cgroup *c, pid_t *pids, size_t max, size_t *n);

/* 1 while any process is in it, 0 once empty, -errno. */
int cgroup_populated(const struct cgroup *c);

/* SIGKILL to every process in it at once (cgroup.kill, Linux 5.14),
 * through the descriptor kept since it was made: no free descriptor is
 * needed. Returns 0, or an errno value (ENOENT: the kernel has no
 * cgroup.kill). */
int cgroup_kill(const struct cgroup *c);

/* Is pid in this cgroup, or in one inside it (by /proc/PID/cgroup)? */
int cgroup_contains(const struct cgroup *c, pid_t pid);
int cgroup_path_contains(const char *cgroup, pid_t pid); /* by its path */
/* The same, 1 or 0, or -errno when /proc/PID/cgroup cannot be read. */
int cgroup_path_holds(const char *cgroup, pid_t pid);

/* A descriptor readable whenever cgroup.events changes (inotify), or
 * -errno. */
int cgroup_events_fd(const struct cgroup *c);

/* Remove the directory, and the cgroups made inside it (it must be empty
 * of processes). Returns 0 or an errno value (EBUSY while populated); the
 * descriptors are closed either way only by cgroup_close. */
int cgroup_remove(struct cgroup *c);

/* The same for the directory alone, whatever is in it: where whether it
 * is populated cannot be read (out of descriptors), the kernel refuses a
 * populated one, or one with cgroups inside, which are left (a running
 * app may use them): EBUSY. */
int cgroup_remove_if_unused(struct cgroup *c);

/* Close the descriptors (and remove the directory when it is empty).
 * Idempotent. */
void cgroup_close(struct cgroup *c);

#endif
