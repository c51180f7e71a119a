/*
 * spawn.h: start a program without a shell, with descriptors laid out at
 * fixed numbers in the child and nothing else inherited but 0, 1 and 2.
 *
 * An exec failure comes back as {step, errno}, never as a child that exits
 * 127: through the memory a real vfork shares with the launcher (known when
 * spawn_start returns), or, where vfork is emulated as fork, over a
 * close-on-exec pipe (end of file on it means the exec succeeded). Between
 * fork and exec the child makes only async-signal-safe calls.
 */
#ifndef APPSTART_SPAWN_H
#define APPSTART_SPAWN_H

#include <sys/types.h>

#define SPAWN_MAX_FDS 8

/* Where a program named without '/' is looked up when the launcher has
 * no PATH (or an empty one) */
#define SPAWN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* parent_fd appears at child_fd in the child */
struct spawn_fd {
    int child_fd;
    int parent_fd;
};

struct spawn_request {
    const char *file;        /* argv[0] or a path; PATH lookup without '/' */
    const char *search_path; /* PATH for the lookup (the launcher's) */
    char *const *argv;
    char *const *envp;       /* NULL: the launcher's environment */
    const char *cwd;         /* NULL: the launcher's */
    int stdio[3];            /* -1: inherit; else a descriptor for 0, 1, 2 */
    const struct spawn_fd *fds;
    int nfds;
    int subreaper;           /* the child is a child subreaper (a helper:
                                what it orphans stays in its tree) */
    int new_session;         /* the child starts a session (and process
                                group) of its own: setsid */
    int cgroup_fd;           /* >= 0: cgroup.procs of a cgroup the child
                                joins before anything else; else none */
    char *pid_digits;        /* NULL, or room for 11 bytes inside an envp
                                string ("WATCHDOG_PID=" then this): the
                                child writes its pid there in decimal */
};

/* What failed in the child. */
enum spawn_step {
    SPAWN_STEP_LAYOUT = 1, SPAWN_STEP_CHDIR, SPAWN_STEP_EXEC, SPAWN_STEP_CGROUP,
    SPAWN_STEP_SESSION
};

struct spawn_failure {
    int step;
    int err;
};

/* Fork and exec. On success *pid is the child, and either *error_fd is -1
 * and *failure the verdict of the exec (step 0: it worked; else the child
 * has exited or is exiting, to be reaped), or *error_fd is the read end of
 * the error pipe (close-on-exec, non-blocking) for spawn_read_failure.
 * Returns 0 or an errno value (nothing was started). */
int spawn_start(const struct spawn_request *req, pid_t *pid, int *error_fd,
                struct spawn_failure *failure);

/* Read the error pipe: 1 with *out filled (the exec failed), 0 at end of
 * file (the exec succeeded), -1 with errno EAGAIN while the child has not
 * got that far yet, or -1 with another errno. */
int spawn_read_failure(int error_fd, struct spawn_failure *out);

const char *spawn_step_name(int step);

/* How exec failures come back: "memory", "pipe", or "unknown" before the
 * first spawn. force "pipe" uses the pipe from now on (so tests keep the
 * path valgrind takes correct), "auto" finds out again; NULL only asks. */
const char *spawn_report_mode(const char *force);

/* Raise the launcher's soft RLIMIT_NOFILE (to want, or to the hard limit
 * when want is 0). Children still start with the soft limit the launcher
 * had before: a program written for select() must not see more. Returns 0
 * or an errno value; *now is the soft limit in force. */
int spawn_raise_nofile(unsigned long want, unsigned long *now, unsigned long *hard);

#endif
