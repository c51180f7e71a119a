/*
 * process.c: pidfd or kill(pid, 0) based process handles.
 */
#include "process.h"
#include "children.h"
#include "procfs.h"
#include "sys.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int pidfd_open_cloexec(pid_t pid)
{
    /* pidfds are close-on-exec from birth; nothing else to set */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Tests force the fallback with process_use_pidfd(0); a kernel without
 * pidfds turns it off by itself on the first ENOSYS. */
static int use_pidfd = 1;
static int hold_leaders = 1;

void process_hold_leaders(int on) { hold_leaders = on; }
int process_holds_leaders(void) { return hold_leaders; }

void process_use_pidfd(int on) { use_pidfd = on; }
int process_pidfd_enabled(void) { return use_pidfd; }

int process_pidfd_available(void)
{
    int fd = pidfd_open_cloexec(getpid());
    if (fd < 0)
        return errno != ENOSYS;
    sys_close(&fd);
    return 1;
}

int process_open(struct process *p, pid_t pid, int is_child)
{
    *p = (struct process)PROCESS_NONE;
    p->is_child = is_child;
    if (pid <= 0)
        return EINVAL;
    if (use_pidfd) {
        int fd = pidfd_open_cloexec(pid);
        if (fd >= 0) {
            p->pidfd = fd;
        } else if (errno == ENOSYS) {
            use_pidfd = 0;
        } else if (errno != ESRCH || !is_child) {
            /* an unreaped child always has a pid; only others can vanish */
            return errno;
        }
    }
    /* a zombie still names the process, as a pidfd would: its death is
     * for process_has_ended to report */
    if (p->pidfd < 0 && !is_child && kill(pid, 0) < 0 && errno == ESRCH)
        return ESRCH;
    struct procfs_stat st;
    if (p->pidfd < 0 && !is_child && procfs_stat(pid, &st) == 0)
        p->start = st.start_time;
    p->pid = pid;
    if (is_child)
        children_add(pid);
    return 0;
}

static void set_end_from_status(struct process *p, int status)
{
    if (WIFEXITED(status)) {
        p->end = PROCESS_EXITED;
        p->code = WEXITSTATUS(status);
    } else {
        p->end = PROCESS_SIGNALED;
        p->code = WTERMSIG(status);
    }
}

/* A lease settled: p is the launcher's child now, or will never be. */
static void check_lease(struct process *p)
{
    if (!p->lease)
        return;
    int r = children_lease_check(p->pid);
    if (r != 0) {
        p->lease = 0;
        p->is_child = r > 0;
    }
}

/* Without a pidfd: does another process have p's number now (a later
 * start time: p was reaped elsewhere and its number given out again)? */
static int number_taken(const struct process *p)
{
    struct procfs_stat st;
    return p->start && procfs_stat(p->pid, &st) == 0 && st.start_time != p->start;
}

int process_has_ended(struct process *p)
{
    if (p->end != PROCESS_RUNNING || p->pid <= 0)
        return 1;
    check_lease(p);
    if (p->is_child && p->hold && hold_leaders) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r;
        do
            r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        while (r < 0 && errno == EINTR);
        if (r == 0 && si.si_pid != p->pid)
            return 0;
        if (r == 0) {
            /* read, not reaped: the zombie is process_release's */
            p->end = si.si_code == CLD_EXITED ? PROCESS_EXITED : PROCESS_SIGNALED;
            p->code = si.si_status;
            if (!p->keep_pidfd)
                sys_close(&p->pidfd);
            return 1;
        }
        if (errno != ECHILD)
            return -1;
        /* reaped by someone else: as below */
    }
    if (p->is_child) {
        int status;
        pid_t r = sys_waitpid(p->pid, &status, WNOHANG);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno != ECHILD)
                return -1;
            /* someone else reaped it (SIGCHLD ignored, or a waitpid(-1)
             * elsewhere in the process): it is gone, status unknown */
            p->end = PROCESS_GONE;
        } else {
            set_end_from_status(p, status);
        }
        children_reaped(p->pid);
        p->is_child = 0;
        if (!p->keep_pidfd)
            sys_close(&p->pidfd);
        return 1;
    }
    if (p->pidfd >= 0) {
        struct pollfd pf = { .fd = p->pidfd, .events = POLLIN, .revents = 0 };
        int r;
        do
            r = poll(&pf, 1, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
    } else if (procfs_liveness(p->pid) != PROCFS_GONE && !number_taken(p)) {
        if (!(kill(p->pid, 0) < 0 && errno == ESRCH))
            return 0;
    }
    p->end = PROCESS_GONE;
    if (!p->keep_pidfd)
        sys_close(&p->pidfd);
    return 1;
}

int process_exited_unreaped(const struct process *p)
{
    if (!p->is_child || p->end != PROCESS_RUNNING || p->pid <= 0)
        return 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do
        r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ECHILD)
        return 2;
    return r == 0 && si.si_pid == p->pid;
}

int process_signal(struct process *p, int sig)
{
    if (p->pid <= 0 || p->end != PROCESS_RUNNING)
        return ESRCH;
    if (p->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0)
            return 0;
        if (errno != ENOSYS)
            return errno;
    }
    /* Without a pidfd: an unreaped child's pid cannot be recycled, so kill is
     * exact, once it is known that no other wait of this process (a
     * waitpid(-1) elsewhere) reaped it: its pid is then free, or another
     * process's. For anything else this is the fallback's accepted risk. */
    if (process_exited_unreaped(p) == 2 || (!p->is_child && number_taken(p)))
        return ESRCH;
    if (kill(p->pid, sig) == 0)
        return 0;
    return errno;
}

void process_reap_held(struct process *p)
{
    if (!p->hold || !p->is_child || p->end == PROCESS_RUNNING || p->pid <= 0)
        return;
    int r = -1;
    errno = EINVAL;
    if (p->pidfd >= 0) {
        /* through its pidfd, not its number: reaped meanwhile by another
         * wait of the process (a waitpid(-1) elsewhere), its number may be
         * another child's, whose status a wait by number would take */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        do
            r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0 || errno == ECHILD)
            children_reaped(p->pid);
    }
    /* (no pidfd, or a kernel whose waitid knows none: 5.3) */
    if (r < 0 && errno == EINVAL) {
        int status;
        if (sys_waitpid(p->pid, &status, WNOHANG) != 0)
            children_reaped(p->pid);
    }
    p->is_child = 0;
    p->hold = 0;
}

void process_release(struct process *p)
{
    check_lease(p);
    if (p->lease) {
        children_lease_drop(p->pid);
        p->lease = 0;
    }
    sys_close(&p->pidfd);
    if (p->pid > 0 && p->is_child) {
        /* a held child that has exited is reaped at once */
        int status;
        if (sys_waitpid(p->pid, &status, WNOHANG) == 0)
            children_abandon(p->pid);
        else
            children_reaped(p->pid);
    }
    p->pid = 0;
    p->is_child = 0;
    p->hold = 0;
}

static void set_end_from_siginfo(struct process *p, const siginfo_t *si)
{
    p->end = si->si_code == CLD_EXITED ? PROCESS_EXITED : PROCESS_SIGNALED;
    p->code = si->si_status;
}

/* Has the process of pidfd ended? (An error says no: looked at again.) */
static int pidfd_exited(int pidfd)
{
    struct pollfd pf = { .fd = pidfd, .events = POLLIN, .revents = 0 };
    int r;
    do
        r = poll(&pf, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* p, the launcher's child now and proven to be: reaped by pid from now on
 * (an unreaped child's number is its own). One whose end was told
 * already, yet not reaped here, is reaped once it exits, its status
 * unknown. */
static void own_child(struct process *p)
{
    children_add(p->pid);
    if (p->end == PROCESS_RUNNING)
        p->is_child = 1;
    else
        children_abandon(p->pid);
}

int process_own_adopted(struct process *p, unsigned long long start)
{
    if (p->pid <= 0 || p->is_child)
        return p->is_child ? 1 : -1;
    if (p->pidfd >= 0) {
        /* Asked through its pidfd, never by its number: once the app has
         * ended and been reaped by its parent (the helper), its number
         * is free, and another child of the launcher's may have it (an
         * app of its own, one the launcher holds as a zombie so that its
         * group's number stays its own, or an orphan of the helper's):
         * a waitpid by number would reap that one and take its status
         * for the app's. The wait names the pidfd's process and no
         * other: ECHILD when it is no child of the launcher's (another's
         * still, or reaped elsewhere). */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r;
        do
            r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0 && si.si_pid == p->pid) {
            /* it ended before it came to the launcher: reaped, its status kept */
            set_end_from_siginfo(p, &si);
            return 1;
        }
        if (r == 0) {
            own_child(p);
            return 1;
        }
        if (errno == ECHILD)
            /* (one that has ended as another's will never come) */
            return pidfd_exited(p->pidfd) ? -1 : 0;
        if (errno != EINVAL)
            return -1;
        /* a kernel without P_PIDFD: as without a pidfd */
    }
    /* Without one, by its start time: a single read of /proc/PID/stat gives
     * the start time and the parent of one process, so the parent read is
     * the app's only where that start time is the app's (a number taken
     * since has a later one, unless taken within the same clock tick: the
     * fallback's limit, as number_taken's). The app, once the launcher's
     * child, keeps its number until the launcher reaps it (another wait of
     * this process, a waitpid(-1) elsewhere, is the fallback's accepted
     * risk). A number whose process cannot be told is never reaped: what
     * came to the launcher is abandoned as the window closes, reaped once
     * it exits. */
    struct procfs_stat st;
    if (!start || procfs_stat(p->pid, &st) != 0 || st.start_time != start)
        return -1;
    if (st.ppid != getpid())
        return 0;
    if (p->end != PROCESS_RUNNING) {
        /* it ended before it came to the launcher: a zombie of ours now,
         * whose status a waitpid collects at once */
        int status;
        pid_t w = sys_waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid) {
            set_end_from_status(p, status);
            return 1;
        }
        if (w < 0)
            return -1; /* reaped by another wait meanwhile */
    }
    own_child(p);
    return 1;
}

int process_lease(struct process *p)
{
    if (p->pid <= 0 || p->is_child || p->lease || p->end != PROCESS_RUNNING || p->pidfd < 0)
        return EINVAL;
    int err = children_lease(p->pid, p->pidfd);
    if (!err)
        p->lease = 1;
    return err;
}
