/*
 * spawn.c: vfork/exec with a fixed descriptor layout; an exec failure comes
 * back through the memory vfork shares, or through a pipe where it does not.
 */
#include "spawn.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* Linux 5.11 */
#endif

extern char **environ;

/* the soft descriptor limit before spawn_raise_nofile, restored in each
 * child; only written by the launcher, read between fork and exec */
static struct rlimit original_nofile;
static int nofile_raised;

int spawn_raise_nofile(unsigned long want, unsigned long *now, unsigned long *hard)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return errno;
    rlim_t target = want ? (rlim_t)want : rl.rlim_max;
    if (target > rl.rlim_max)
        target = rl.rlim_max;
    int err = 0;
    if (target > rl.rlim_cur) {
        struct rlimit raised = { target, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
            err = errno;
        } else if (!nofile_raised) {
            original_nofile = rl;
            nofile_raised = 1;
        }
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    *now = (unsigned long)rl.rlim_cur;
    *hard = (unsigned long)rl.rlim_max;
    return err;
}

const char *spawn_step_name(int step)
{
    switch (step) {
    case SPAWN_STEP_LAYOUT: return "set up descriptors for";
    case SPAWN_STEP_CHDIR: return "change directory for";
    case SPAWN_STEP_EXEC: return "execute";
    case SPAWN_STEP_CGROUP: return "set up the cgroup of";
    case SPAWN_STEP_SESSION: return "start a session for";
    default: return "start";
    }
}

/* ---- everything below up to spawn_start runs in the child ---- */

/* Where the child reports: the launcher's memory (a real vfork shares it;
 * the launcher is suspended until the exec or _exit, so it reads the record
 * only after the child is done with it) and, where that is not known to
 * work, the error pipe too. */
struct child_report {
    volatile int started;   /* set first thing: proves the memory is shared */
    volatile int step, err; /* what failed; step 0 while nothing did */
};

static void child_fail(struct child_report *rep, int error_fd, int step, int err)
{
    rep->err = err;
    rep->step = step;
    if (error_fd >= 0) {
        struct spawn_failure f = { step, err };
        (void)sys_write_all(error_fd, &f, sizeof f);
    }
    _exit(127);
}

/* In the child: lift the soft descriptor limit to the hard one, once
 * (*raised), keeping what it was in *before: 1 when it was lifted. Only
 * system calls: safe after vfork (the limit is the child's own). */
static int child_more_fds(struct rlimit *before, int *raised)
{
    if (*raised || getrlimit(RLIMIT_NOFILE, before) != 0 || before->rlim_cur >= before->rlim_max)
        return 0;
    struct rlimit more = { before->rlim_max, before->rlim_max };
    if (setrlimit(RLIMIT_NOFILE, &more) != 0)
        return 0;
    *raised = 1;
    return 1;
}

/* Close every descriptor from lo to hi, or have the exec close them.
 * close_range(CLOSE_RANGE_CLOEXEC) only marks them, and the exec closes
 * them after it has let the launcher go (a vfork parent waits for the
 * exec): with thousands of starts in flight, each holding descriptors, the
 * closing is most of a child's work before its exec, and this way it no
 * longer holds the launcher up. Else close_range; else the entries of
 * /proc/self/fd read with raw getdents64; else a loop up to the descriptor
 * limit. All are async-signal-safe. */
static void child_close_range(int lo, int hi)
{
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0) == 0)
        return;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        char buf[4096];
        long n;
        int found_any = 0;
        /* closing while reading the directory is fine: entries for closed
         * descriptors simply vanish from later reads */
        while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                const char *rec = buf + off;
                unsigned short reclen;
                memcpy(&reclen, rec + 16, sizeof reclen);
                const char *name = rec + 19;
                int fd = 0, digits = 0;
                for (; *name >= '0' && *name <= '9'; name++, digits++)
                    fd = fd * 10 + (*name - '0');
                if (digits && *name == '\0' && fd >= lo && fd <= hi && fd != dir) {
                    close(fd);
                    found_any = 1;
                }
                off += reclen;
            }
        }
        close(dir);
        if (n == 0 || found_any)
            return;
    }
    struct rlimit rl;
    long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)max)
        max = (long)rl.rlim_cur;
    if (max > (long)hi + 1)
        max = (long)hi + 1;
    for (long fd = lo; fd < max; fd++)
        close((int)fd);
}

/* Every descriptor from 3 up closed (or marked to close at the exec) but
 * the n in keep (any order; those below 3 are no matter). */
static void child_close_but(const int *keep, int n)
{
    int sorted[4 + SPAWN_MAX_FDS], m = 0;
    for (int i = 0; i < n && m < (int)(sizeof sorted / sizeof sorted[0]); i++) {
        if (keep[i] < 3)
            continue;
        int j = m++;
        for (; j > 0 && sorted[j - 1] > keep[i]; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = keep[i];
    }
    int lo = 3;
    for (int i = 0; i < m; i++) {
        if (sorted[i] > lo)
            child_close_range(lo, sorted[i] - 1);
        if (sorted[i] >= lo)
            lo = sorted[i] + 1;
    }
    child_close_range(lo, INT_MAX);
}

/* Is fd one of the n targets? */
static int child_is_target(const int *dst, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (dst[i] == fd)
            return 1;
    return 0;
}

/* A copy of fd (close-on-exec) on a number no target takes: the lowest
 * free one. One that a target takes, free for now, is held meanwhile (the
 * dup2 onto that target replaces it), and the next tried. -1 and errno
 * when there is none. */
static int child_park(int fd, const int *dst, int n, struct rlimit *before, int *raised)
{
    for (;;) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0 && child_more_fds(before, raised))
            moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0 || !child_is_target(dst, n, moved))
            return moved;
    }
}

static void child_exec(const struct spawn_request *req,
                       struct child_report *rep, int error_fd)
{
    char *const *envp = req->envp ? req->envp : environ;
    if (strchr(req->file, '/')) {
        execve(req->file, req->argv, envp);
        child_fail(rep, error_fd, SPAWN_STEP_EXEC, errno);
    }
    /* PATH lookup as execvp does it, minus the shell fallback for ENOEXEC:
     * nothing here ever goes through a shell. */
    const char *path = req->search_path && *req->search_path
                           ? req->search_path
                           : SPAWN_DEFAULT_PATH;
    size_t flen = strlen(req->file);
    int saw_eacces = 0, last = ENOENT;
    char buf[PATH_MAX];
    for (const char *p = path;; p++) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        if (dlen + 1 + flen + 1 <= sizeof buf) {
            size_t at = 0;
            if (dlen == 0) {
                buf[at++] = '.';
            } else {
                memcpy(buf, p, dlen);
                at = dlen;
            }
            buf[at++] = '/';
            memcpy(buf + at, req->file, flen + 1);
            execve(buf, req->argv, envp);
            last = errno;
            if (last == EACCES)
                saw_eacces = 1;
            else if (last != ENOENT && last != ENOTDIR && last != ESTALE &&
                     last != ENODEV && last != ETIMEDOUT && last != ELOOP &&
                     last != ENAMETOOLONG)
                child_fail(rep, error_fd, SPAWN_STEP_EXEC, last);
        }
        if (!colon)
            break;
        p = colon;
    }
    child_fail(rep, error_fd, SPAWN_STEP_EXEC, saw_eacces ? EACCES : last);
}

static void child_main(const struct spawn_request *req,
                       struct child_report *rep, int error_fd)
{
    rep->started = 1;

    /* Signal handlers are the launcher's (Lua hosts install them): reset all
     * to default before unblocking, so none runs here or survives the exec;
     * an ignored SIGPIPE would otherwise reach the app too, and so would
     * 32 and 33, which glibc's posix_spawn and system() leave ignored in
     * what they start (the kernel's call: the C library's refuses them) */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sys_signal_default(sig);

    /* into the app's cgroup before anything else: whatever it forks from
     * here on is born inside */
    if (req->cgroup_fd >= 0 && write(req->cgroup_fd, "0", 1) != 1)
        child_fail(rep, error_fd, SPAWN_STEP_CGROUP, errno);
    if (req->new_session && setsid() < 0)
        child_fail(rep, error_fd, SPAWN_STEP_SESSION, errno);
    if (req->pid_digits) {
        /* decimal, by hand: nothing here may allocate or lock */
        char digits[12];
        int n = 0;
        for (unsigned long v = (unsigned long)getpid(); n == 0 || v; v /= 10)
            digits[n++] = (char)('0' + v % 10);
        for (int i = 0; i < n; i++)
            req->pid_digits[i] = digits[n - 1 - i];
        req->pid_digits[n] = '\0';
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Layout. A source (or the error pipe) on a number a target takes is
     * moved first to one no target takes (child_park), so no dup2 can
     * overwrite a source not yet placed; then each source goes to its
     * target; then everything else above 2 but the error pipe is closed.
     * Nothing needs a number above the highest target: one just below
     * the descriptor limit is laid out as any other. */
    int src[3 + SPAWN_MAX_FDS], dst[4 + SPAWN_MAX_FDS], n = 0;
    for (int i = 0; i < 3; i++)
        if (req->stdio[i] >= 0) {
            src[n] = req->stdio[i];
            dst[n++] = i;
        }
    for (int i = 0; i < req->nfds; i++) {
        src[n] = req->fds[i].parent_fd;
        dst[n++] = req->fds[i].child_fd;
    }
    /* a free number may be wanting below the soft descriptor limit (a
     * target at or past it, the launcher's own descriptors filling it):
     * then the child lifts its soft limit to the hard one (once) and tries
     * again (the app's own soft limit is put back after) */
    struct rlimit before_layout;
    int layout_raised = 0;
    if (error_fd >= 0 && child_is_target(dst, n, error_fd)) {
        int moved = child_park(error_fd, dst, n, &before_layout, &layout_raised);
        if (moved < 0) /* near the descriptor limit: report where it is */
            child_fail(rep, error_fd, SPAWN_STEP_LAYOUT, errno == EINVAL ? EMFILE : errno);
        error_fd = moved;
    }
    for (int i = 0; i < n; i++)
        if (child_is_target(dst, n, src[i])) {
            int moved = child_park(src[i], dst, n, &before_layout, &layout_raised);
            if (moved < 0)
                child_fail(rep, error_fd, SPAWN_STEP_LAYOUT, errno == EINVAL ? EMFILE : errno);
            for (int j = i + 1; j < n; j++)
                if (src[j] == src[i])
                    src[j] = moved;
            src[i] = moved;
        }
    for (int i = 0; i < n; i++)
        if (dup2(src[i], dst[i]) < 0 &&
            (!child_more_fds(&before_layout, &layout_raised) || dup2(src[i], dst[i]) < 0))
            child_fail(rep, error_fd, SPAWN_STEP_LAYOUT, errno == EBADF ? EMFILE : errno);
    dst[n] = error_fd; /* (-1: none, below 3: no matter) */
    child_close_but(dst, n + 1);

    if (nofile_raised || layout_raised) {
        struct rlimit rl;
        /* keep the hard limit as it is now; only the soft one goes back
         * (the app keeps the descriptors above it it was given) */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = nofile_raised ? original_nofile.rlim_cur : before_layout.rlim_cur;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (req->cwd && chdir(req->cwd) < 0)
        child_fail(rep, error_fd, SPAWN_STEP_CHDIR, errno);
    /* kept across the exec; a helper whose intermediate process exits
     * keeps the app in its own tree, provably its descendant */
    if (req->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        child_fail(rep, error_fd, SPAWN_STEP_LAYOUT, errno);
    child_exec(req, rep, error_fd);
}

/* ---- parent ---- */

/* 1 once a vfork child was seen writing to the launcher's memory, 0 once it
 * was seen not to (vfork emulated as fork, as under valgrind), -1 until the
 * first spawn tells. */
static int vfork_shares_memory = -1;

const char *spawn_report_mode(const char *force)
{
    if (force && strcmp(force, "pipe") == 0)
        vfork_shares_memory = 0;
    else if (force && strcmp(force, "auto") == 0)
        vfork_shares_memory = -1;
    return vfork_shares_memory == 1 ? "memory"
           : vfork_shares_memory == 0 ? "pipe" : "unknown";
}

int spawn_start(const struct spawn_request *req, pid_t *pid, int *error_fd,
                struct spawn_failure *failure)
{
    if (req->nfds < 0 || req->nfds > SPAWN_MAX_FDS)
        return EINVAL;
    /* the child's end must stay ours to see and reap (a launcher may have
     * inherited SIGCHLD ignored) */
    sys_keep_child_status();
    *error_fd = -1;
    failure->step = failure->err = 0;
    /* the pipe only where the shared memory is not known to carry the
     * verdict: the first spawn, and every spawn where vfork is a fork */
    int pipefd[2] = { -1, -1 };
    if (vfork_shares_memory != 1) {
        int err = sys_pipe(pipefd, 1);
        if (err)
            return err;
    }

    /* vfork, not fork: the launcher is a Lua process whose heap fork would
     * copy page by page (copy-on-write faults made fork most of a start's
     * cost). The child borrows the launcher's memory until its exec: it
     * makes only system calls, on its own stack frame below ours, and writes
     * nothing but the report below. Its signal dispositions are its own
     * copy.
     *
     * No handler may run in the child before the exec: block every signal
     * across the vfork; the child resets handlers, then unblocks. (The
     * kernel's call: the C library's would unblock 32 and 33 on the way
     * back, where the command has them blocked, appstart.signals.) */
    struct child_report rep = { 0, 0, 0 };
    sigset_t all, old;
    memset(&all, 0xff, sizeof all);
    (void)sys_sigmask(SIG_SETMASK, &all, &old); /* (valid: cannot fail) */
    int child_end = pipefd[1];
    pid_t child = vfork();
    if (child == 0) {
        child_main(req, &rep, child_end);
        _exit(127); /* not reached */
    }
    int err = child < 0 ? errno : 0;
    (void)sys_sigmask(SIG_SETMASK, &old, NULL);
    sys_close(&pipefd[1]);
    if (err) {
        sys_close(&pipefd[0]);
        return err;
    }
    /* the child has exec'd or exited by now if vfork is real, and its first
     * act was to set rep.started: unset, it ran in a copy of our memory */
    if (vfork_shares_memory == -1)
        vfork_shares_memory = rep.started ? 1 : 0;
    *pid = child;
    if (vfork_shares_memory == 1) {
        sys_close(&pipefd[0]);
        failure->step = rep.step;
        failure->err = rep.err;
    } else {
        *error_fd = pipefd[0];
    }
    return 0;
}

int spawn_read_failure(int error_fd, struct spawn_failure *out)
{
    struct spawn_failure f;
    ssize_t n = sys_read(error_fd, &f, sizeof f);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    if ((size_t)n < sizeof f) {
        /* the record is written in one write of a few bytes, far below
         * PIPE_BUF, so it arrives whole; a short one means a broken child */
        f.step = SPAWN_STEP_LAYOUT;
        f.err = EPROTO;
    }
    *out = f;
    return 1;
}
