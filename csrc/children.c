/*
 * children.c: the children this library owns, the abandoned ones, and the
 * adoption window (see children.h).
 */
#include "children.h"
#include "procfs.h"
#include "process.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#define PR_GET_CHILD_SUBREAPER 37
#endif

struct pidset {
    pid_t *pids;
    size_t len, cap;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pidset own, abandoned, leaders;
static struct pidset kept; /* leaders gone, their session in use at the last look (prune_leaders) */

/* Leases (children_lease): each holds an adoption window open for an app
 * that has not come to the launcher yet. */
enum lease_state { LEASE_PENDING, LEASE_CAME, LEASE_ENDED };
struct lease {
    pid_t pid;
    int pidfd; /* a duplicate of the app's, while pending */
    int state; /* enum lease_state */
};
static struct lease *leases;
static size_t nleases, cap_leases;

static void adopt_end_locked(void);
static void abandon_orphans_locked(void);
static void abandon_newcomers(int apps_only);
static struct lease *lease_of(pid_t pid);

static int pidset_add(struct pidset *set, pid_t pid)
{
    if (set->len == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        pid_t *grown = realloc(set->pids, cap * sizeof *grown);
        if (!grown)
            return ENOMEM;
        set->pids = grown;
        set->cap = cap;
    }
    set->pids[set->len++] = pid;
    return 0;
}

static int pidset_has(const struct pidset *set, pid_t pid)
{
    for (size_t i = 0; i < set->len; i++)
        if (set->pids[i] == pid)
            return 1;
    return 0;
}

static void pidset_free(struct pidset *set)
{
    free(set->pids);
    set->pids = NULL;
    set->len = set->cap = 0;
}

static void pidset_remove(struct pidset *set, pid_t pid)
{
    for (size_t i = 0; i < set->len; i++)
        if (set->pids[i] == pid) {
            set->pids[i] = set->pids[--set->len];
            break;
        }
    /* give the memory back (and leave no block that only this library's
     * statics point to once it is unloaded) */
    if (set->len == 0)
        pidset_free(set);
}

/* The library is being unloaded (the Lua state closed): the sets go with
 * it, whatever they still hold. */
static void children_unload(void) __attribute__((destructor));

static void children_unload(void)
{
    pthread_mutex_lock(&lock);
    pidset_free(&own);
    pidset_free(&abandoned);
    pidset_free(&leaders);
    pidset_free(&kept);
    free(leases);
    leases = NULL;
    nleases = cap_leases = 0;
    pthread_mutex_unlock(&lock);
}

/* Out of memory, a child is missing from `own`: an adopted process could
 * then pass for it, which only matters to a helper's report, and a pid
 * report must still name a descendant of the helper. */
void children_add(pid_t pid)
{
    pthread_mutex_lock(&lock);
    (void)pidset_add(&own, pid);
    pthread_mutex_unlock(&lock);
}

void children_spawned(pid_t pid)
{
    pthread_mutex_lock(&lock);
    pidset_remove(&leaders, pid);
    pidset_remove(&kept, pid);
    pthread_mutex_unlock(&lock);
}

/* Does anything still have id for its pid or process group? (EPERM: one
 * of another user's does) */
static int id_in_use(pid_t id)
{
    return !(kill(-id, 0) != 0 && errno == ESRCH && kill(id, 0) != 0 && errno == ESRCH);
}

/* The leaders whose session has emptied go: those whose pid and group
 * are gone (a look each) and whose session no process is in (one pass
 * over /proc, a getsid() a process: an orphan that moved to a group of
 * its own with setpgid is in it still). Looked at whenever a leader's pid
 * and group are newly gone (before the kernel may give that pid out
 * again: to a process of a start under way, whose own session it would
 * be, refused then), and once a second at most for those found still in
 * use. Nothing goes when /proc cannot be read. The lock held. */
static double looked_at;

static void prune_leaders(void)
{
    struct pidset gone = { NULL, 0, 0 };
    int fresh = 0;
    for (size_t i = 0; i < leaders.len; i++)
        if (!id_in_use(leaders.pids[i])) {
            if (pidset_add(&gone, leaders.pids[i]) != 0)
                break;
            fresh |= !pidset_has(&kept, leaders.pids[i]);
        }
    double now = sys_now();
    if (gone.len == 0 || (!fresh && now - looked_at < 1.0)) {
        pidset_free(&gone);
        return;
    }
    looked_at = now;
    DIR *d = opendir("/proc");
    if (!d) {
        pidset_free(&gone);
        return;
    }
    pidset_free(&kept);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        pid_t sid = getsid((pid_t)pid);
        if (sid > 0 && pidset_has(&gone, sid) && !pidset_has(&kept, sid))
            (void)pidset_add(&kept, sid);
    }
    closedir(d);
    for (size_t i = 0; i < gone.len; i++)
        if (!pidset_has(&kept, gone.pids[i]))
            pidset_remove(&leaders, gone.pids[i]);
    pidset_free(&gone);
}

void children_add_leader(pid_t pid)
{
    pthread_mutex_lock(&lock);
    if (!pidset_has(&leaders, pid)) {
        prune_leaders();
        /* out of memory: an orphan of its session could pass for another
         * start's daemon (the checks before that still hold) */
        (void)pidset_add(&leaders, pid);
    }
    pthread_mutex_unlock(&lock);
}

int children_led(pid_t id)
{
    pthread_mutex_lock(&lock);
    int r = pidset_has(&leaders, id);
    pthread_mutex_unlock(&lock);
    return r;
}

void children_reaped(pid_t pid)
{
    pthread_mutex_lock(&lock);
    pidset_remove(&own, pid);
    pidset_remove(&abandoned, pid);
    pthread_mutex_unlock(&lock);
}

int children_owns(pid_t pid)
{
    pthread_mutex_lock(&lock);
    int r = pidset_has(&own, pid);
    pthread_mutex_unlock(&lock);
    return r;
}

void children_abandon(pid_t pid)
{
    pthread_mutex_lock(&lock);
    /* out of memory: the child stays a zombie until the launcher exits;
     * nothing better can be done without blocking */
    (void)pidset_add(&abandoned, pid);
    pthread_mutex_unlock(&lock);
}

/* Reaps each abandoned child that has exited (asked by pid, one call
 * each); the lock held. Returns how many of those left are exiting. */
static int reap_each_abandoned(void)
{
    int exiting = 0;
    for (size_t i = 0; i < abandoned.len;) {
        int status;
        pid_t pid = abandoned.pids[i];
        if (sys_waitpid(pid, &status, WNOHANG) == 0) {
            if (procfs_liveness(pid) == PROCFS_EXITING)
                exiting++;
            i++;
            continue;
        }
        pidset_remove(&own, pid);
        pidset_remove(&abandoned, pid); /* moves the last one to i */
    }
    return exiting;
}

static void settle_leases(void);

int children_reap_abandoned(void)
{
    pthread_mutex_lock(&lock);
    settle_leases();
    int exiting = reap_each_abandoned();
    pthread_mutex_unlock(&lock);
    return exiting;
}

void children_reap_exited(void)
{
    pthread_mutex_lock(&lock);
    settle_leases();
    while (abandoned.len > 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        /* WNOWAIT: looked at, never reaped, whoever's child it is */
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid <= 0)
            break;
        if (!pidset_has(&abandoned, si.si_pid)) {
            /* the kernel names the oldest zombie first: another's (an app
             * not looked at yet, an io.popen child) would hide every
             * abandoned one behind it, so each is asked by pid */
            reap_each_abandoned();
            break;
        }
        int status;
        if (sys_waitpid(si.si_pid, &status, WNOHANG) == 0)
            break;
        pidset_remove(&own, si.si_pid);
        pidset_remove(&abandoned, si.si_pid);
    }
    pthread_mutex_unlock(&lock);
}

/* This process's children, from /proc/self/task/TID/children of every
 * thread. Returns 0 or an errno value. */
static int list_children(struct pidset *out)
{
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return errno;
    int err = 0;
    struct dirent *e;
    while (!err && (e = readdir(tasks))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[320], buf[4096];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno != ENOENT) /* a thread that just ended */
                err = errno;
            continue;
        }
        /* space-separated pids; a read may end inside one: carry it */
        long pending = -1;
        ssize_t n;
        while (!err && (n = sys_read(fd, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] >= '0' && buf[i] <= '9') {
                    pending = (pending < 0 ? 0 : pending * 10) + (buf[i] - '0');
                } else if (pending >= 0) {
                    err = pidset_add(out, (pid_t)pending);
                    pending = -1;
                }
            }
        }
        if (!err && pending >= 0)
            err = pidset_add(out, (pid_t)pending);
        sys_close(&fd);
    }
    closedir(tasks);
    return err;
}

static struct timespec adopt_pause, drop_pause; /* (the specs': see the header) */

static void set_pause(struct timespec *pause, double seconds)
{
    pthread_mutex_lock(&lock);
    pause->tv_sec = (time_t)seconds;
    pause->tv_nsec = (long)((seconds - (double)pause->tv_sec) * 1e9);
    pthread_mutex_unlock(&lock);
}

static void take_pause(const struct timespec *pause)
{
    struct timespec left = *pause;
    if (left.tv_sec || left.tv_nsec)
        while (nanosleep(&left, &left) < 0 && errno == EINTR)
            ;
}

void children_testing_adopt_pause(double seconds)
{
    set_pause(&adopt_pause, seconds);
}

void children_testing_drop_pause(double seconds)
{
    set_pause(&drop_pause, seconds);
}

static int adopt_depth;            /* windows open */
static unsigned long long adopt_since; /* when the first opened, in clock
                                          ticks since boot (as procfs's
                                          start times), 0 if unknown */
static int was_subreaper;          /* before the first window opened */
static int adopt_before_known;     /* adopt_before could be listed */
static struct pidset adopt_before; /* children when the window opened */

int children_adopt_begin(void)
{
    int err = 0;
    pthread_mutex_lock(&lock);
    if (adopt_depth == 0) {
        int cur = 0;
        if (prctl(PR_GET_CHILD_SUBREAPER, &cur, 0, 0, 0) < 0)
            cur = 0;
        was_subreaper = cur;
        /* the children before the window, listed before it opens: an
         * orphan that comes once the launcher is a subreaper (a helper of
         * an earlier start, dropped, exiting just then) is a newcomer, never
         * one of these, which stay as they are */
        adopt_before.len = 0;
        adopt_before_known = list_children(&adopt_before) == 0;
        struct timespec ts;
        long hz = sysconf(_SC_CLK_TCK);
        adopt_since = hz > 0 && clock_gettime(CLOCK_BOOTTIME, &ts) == 0
                          ? (unsigned long long)ts.tv_sec * (unsigned long long)hz +
                                (unsigned long long)ts.tv_nsec * (unsigned long long)hz / 1000000000ull
                          : 0;
        if (!cur && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
            err = errno;
        else
            take_pause(&adopt_pause);
    }
    if (!err)
        adopt_depth++;
    pthread_mutex_unlock(&lock);
    return err;
}

void children_adopt_end(void)
{
    pthread_mutex_lock(&lock);
    adopt_end_locked();
    pthread_mutex_unlock(&lock);
}

static void adopt_end_locked(void)
{
    if (adopt_depth > 0 && --adopt_depth == 0) {
        if (!was_subreaper)
            (void)prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        /* what came to the launcher meanwhile and nobody took over: an
         * orphan a helper left behind. Reaped by pid once it exits. A
         * helper leads a session of its own; a child in the launcher's
         * session may be the launcher's own (io.popen), never taken, or
         * what an app in that session (kill_mode "process") left: one
         * that began before the window opened is that (a child of the
         * launcher's from then would have been listed), taken; one that
         * began meanwhile cannot be told from an io.popen child, and is
         * left. One another library forked and moved to a session of its
         * own while the window was open cannot be told from an orphan:
         * that is the price of proving descent. */
        abandon_newcomers(0);
        pidset_free(&adopt_before);
    }
}

/* Is session that of one of the launcher's apps (a child it owns, or a
 * pending lease's app)? */
static int an_apps_session(pid_t session)
{
    struct procfs_stat st;
    for (size_t i = 0; i < own.len; i++)
        if (procfs_stat(own.pids[i], &st) == 0 && st.session == session)
            return 1;
    for (size_t i = 0; i < nleases; i++)
        if (leases[i].state == LEASE_PENDING && procfs_stat(leases[i].pid, &st) == 0 && st.session == session)
            return 1;
    return 0;
}

/* The children that came to the launcher while the window was open and
 * that nobody took over (see adopt_end_locked), abandoned: reaped by pid
 * once they exit. A pending lease's app is left to its lease. apps_only:
 * only those in the session of one of the launcher's apps (a child of
 * the launcher's own that made a session of its own, an io.popen of
 * `setsid`, is not an orphan of theirs). */
static void abandon_newcomers(int apps_only)
{
    struct pidset now = { NULL, 0, 0 };
    pid_t session = getsid(0);
    if (adopt_before_known && list_children(&now) == 0) {
        for (size_t i = 0; i < now.len; i++) {
            pid_t pid = now.pids[i];
            struct procfs_stat st;
            const struct lease *l = lease_of(pid);
            /* (a tick's margin: both times are rounded down) */
            if (pidset_has(&adopt_before, pid) || pidset_has(&own, pid) || (l && l->state == LEASE_PENDING) ||
                procfs_stat(pid, &st) != 0 ||
                (st.session == session && !(adopt_since > 1 && st.start_time + 1 < adopt_since)) ||
                (apps_only && !an_apps_session(st.session)))
                continue;
            if (pidset_add(&own, pid) == 0 && pidset_add(&abandoned, pid) != 0)
                pidset_remove(&own, pid);
        }
    }
    pidset_free(&now);
}

/* pid, a child of the launcher's: taken over (see children_take_adopted)
 * if member proves it one of an app's; the lock held. Held by its pidfd
 * while it is looked at: the wait on that pidfd reaps the process the
 * look proved, or fails (ECHILD) if the pid has been another's since.
 * Without pidfds, a child's pid cannot be recycled before it is reaped
 * (the fallback's accepted risk: another waitpid elsewhere in the process
 * between the look and this one). */
static void take_adopted(pid_t pid, int (*member)(pid_t, void *), void *arg)
{
    struct process p;
    if (process_open(&p, pid, 0) != 0)
        return;
    if (member(pid, arg)) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = -1;
        if (p.pidfd >= 0)
            do
                r = waitid((idtype_t)P_PIDFD, (id_t)p.pidfd, &si, WEXITED | WNOHANG);
            while (r < 0 && errno == EINTR);
        if (p.pidfd < 0 || (r < 0 && errno == EINVAL)) { /* a kernel without P_PIDFD */
            int status;
            pid_t w = sys_waitpid(pid, &status, WNOHANG);
            r = w < 0 ? -1 : 0;
            si.si_pid = w > 0 ? w : 0;
        }
        /* still running: reaped once it exits, by pid */
        if (r == 0 && si.si_pid == 0 && pidset_add(&own, pid) == 0 && pidset_add(&abandoned, pid) != 0)
            pidset_remove(&own, pid);
    }
    process_release(&p); /* not a child of the handle's: only its pidfd closed */
}

void children_take_adopted(int (*member)(pid_t pid, void *arg), void *arg)
{
    struct pidset now = { NULL, 0, 0 };
    pthread_mutex_lock(&lock);
    if (list_children(&now) == 0) {
        for (size_t i = 0; i < now.len; i++) {
            pid_t pid = now.pids[i];
            const struct lease *l = lease_of(pid);
            if (!pidset_has(&own, pid) && !(l && l->state == LEASE_PENDING))
                take_adopted(pid, member, arg);
        }
    }
    pthread_mutex_unlock(&lock);
    pidset_free(&now);
}

/* While every open window is a pending lease's (no start is under way),
 * nothing can take over a process that comes to the launcher but a
 * lease's own app, which settle takes: the others in an app's session
 * (orphans of the apps' descendants) are abandoned now, as the window's
 * close would, so that a lease held long (an intermediate that never
 * exits) does not keep them zombies until then. Looked for only when some
 * child of the launcher's has exited (one waitid, which reaps nothing). */
static void abandon_orphans_locked(void)
{
    size_t pending = 0;
    for (size_t i = 0; i < nleases; i++)
        if (leases[i].state == LEASE_PENDING)
            pending++;
    if (pending == 0 || (size_t)adopt_depth != pending)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid <= 0)
        return;
    abandon_newcomers(1);
}

/* ---- leases ---- */

static struct lease *lease_of(pid_t pid)
{
    for (size_t i = 0; i < nleases; i++)
        if (leases[i].pid == pid)
            return &leases[i];
    return NULL;
}

static void lease_remove(struct lease *l)
{
    sys_close(&l->pidfd);
    *l = leases[--nleases];
    if (nleases == 0) {
        free(leases);
        leases = NULL;
        cap_leases = 0;
    }
}

/* Has the app of l exited? 1, 0, or -1 (cannot tell now). */
static int lease_app_exited(const struct lease *l)
{
    struct pollfd pf = { .fd = l->pidfd, .events = POLLIN, .revents = 0 };
    int r;
    do
        r = poll(&pf, 1, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

/* A pending lease, looked at: it settles once its app is the launcher's
 * child (in `own` from then on, for its handle to reap) or has ended as
 * another's, and its window closes. Its pidfd makes every look exact: the
 * parent read from procfs is the app's only if the app still runs after
 * the read, and an app that has exited is asked for by its pidfd, never
 * by a pid that may have been given to another process since. */
static void settle(struct lease *l)
{
    if (l->state != LEASE_PENDING)
        return;
    int exited = lease_app_exited(l);
    if (exited == 0) {
        struct procfs_stat st;
        if (procfs_stat(l->pid, &st) != 0 || st.ppid != getpid())
            return;
        exited = lease_app_exited(l);
        if (exited == 0) {
            l->state = pidset_add(&own, l->pid) == 0 ? LEASE_CAME : LEASE_PENDING;
            if (l->state == LEASE_PENDING)
                return; /* out of memory: looked at again later */
        }
    }
    if (exited < 0)
        return;
    if (exited > 0) {
        /* a zombie of the launcher's (WNOWAIT: its handle reaps it), or
         * reaped by its parent */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r;
        do
            r = waitid((idtype_t)P_PIDFD, (id_t)l->pidfd, &si, WEXITED | WNOHANG | WNOWAIT);
        while (r < 0 && errno == EINTR);
        l->state = r == 0 && si.si_pid == l->pid && pidset_add(&own, l->pid) == 0 ? LEASE_CAME : LEASE_ENDED;
    }
    sys_close(&l->pidfd);
    adopt_end_locked();
}

static void settle_leases(void)
{
    for (size_t i = 0; i < nleases; i++)
        settle(&leases[i]);
    abandon_orphans_locked();
}

int children_lease(pid_t pid, int pidfd)
{
    int err = 0;
    pthread_mutex_lock(&lock);
    if (adopt_depth == 0 || lease_of(pid)) {
        err = EINVAL;
    } else if (nleases == cap_leases) {
        size_t cap = cap_leases ? cap_leases * 2 : 4;
        struct lease *grown = realloc(leases, cap * sizeof *grown);
        if (!grown)
            err = ENOMEM;
        else
            leases = grown, cap_leases = cap;
    }
    if (!err) {
        int fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            err = errno;
        else
            leases[nleases++] = (struct lease){ pid, fd, LEASE_PENDING };
    }
    pthread_mutex_unlock(&lock);
    return err;
}

int children_lease_check(pid_t pid)
{
    pthread_mutex_lock(&lock);
    struct lease *l = lease_of(pid);
    int r = -1;
    if (l) {
        settle(l);
        r = l->state == LEASE_PENDING ? 0 : l->state == LEASE_CAME ? 1 : -1;
        if (r != 0)
            lease_remove(l);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

void children_lease_drop(pid_t pid)
{
    pthread_mutex_lock(&lock);
    struct lease *l = lease_of(pid);
    if (l) {
        if (l->state == LEASE_PENDING) {
            take_pause(&drop_pause);
            /* its lease's no more: the window's close takes its app if
             * it has come meanwhile (its parent exited since the lease's
             * last look), as any newcomer; a pending lease's app is left
             * alone there, and would stay a zombie nobody reaps */
            l->state = LEASE_ENDED;
            adopt_end_locked();
        }
        lease_remove(l);
    }
    pthread_mutex_unlock(&lock);
}
