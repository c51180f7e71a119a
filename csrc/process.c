/*
 * process.c: pidfd or kill(pid, 0) based process handles, reaping by pid.
 */
#include "process.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
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


static void set_end_from_status(struct process *p, int status);

/* Pid sets, guarded by one mutex because several Lua states in several
 * threads may share this library:
 *   own:       children this library started (or took over) and has not
 *              reaped; a process in the launcher's care that is not in it
 *              was adopted, or is another library's;
 *   abandoned: those of them let go of before they were reaped, reaped by
 *              pid later (process_reap_abandoned) so none stays a zombie. */
struct pidset {
    pid_t *pids;
    size_t len, cap;
};

static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pidset own, abandoned;

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

static void pidset_remove(struct pidset *set, pid_t pid)
{
    for (size_t i = 0; i < set->len; i++)
        if (set->pids[i] == pid) {
            set->pids[i] = set->pids[--set->len];
            break;
        }
    if (set->len == 0) {
        /* give the memory back (and leave no block that only this
         * library's statics point to once it is unloaded) */
        free(set->pids);
        set->pids = NULL;
        set->cap = 0;
    }
}

/* Out of memory, a child is missing from `own`: an adopted process could
 * then pass for it, which only matters to a helper's report, and a pid
 * report must still name a descendant of the helper. */
static void own_add(pid_t pid)
{
    pthread_mutex_lock(&children_lock);
    (void)pidset_add(&own, pid);
    pthread_mutex_unlock(&children_lock);
}

static void own_reaped(pid_t pid)
{
    pthread_mutex_lock(&children_lock);
    pidset_remove(&own, pid);
    pthread_mutex_unlock(&children_lock);
}

int process_is_own_child(pid_t pid)
{
    pthread_mutex_lock(&children_lock);
    int r = pidset_has(&own, pid);
    pthread_mutex_unlock(&children_lock);
    return r;
}

void process_own_adopted(struct process *p)
{
    if (p->pid <= 0 || p->is_child)
        return;
    if (p->end == PROCESS_RUNNING) {
        p->is_child = 1;
        own_add(p->pid);
        return;
    }
    /* it ended before it came to the launcher: a zombie of ours now, whose
     * status a waitpid collects at once */
    int status;
    pid_t r;
    do
        r = waitpid(p->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid)
        set_end_from_status(p, status);
}

int process_open(struct process *p, pid_t pid, int is_child)
{
    p->pid = 0;
    p->pidfd = -1;
    p->is_child = is_child;
    p->end = PROCESS_RUNNING;
    p->code = 0;
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
     * the poll's to report */
    if (p->pidfd < 0 && !is_child && kill(pid, 0) < 0 && errno == ESRCH)
        return ESRCH;
    p->pid = pid;
    if (is_child)
        own_add(pid);
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

int process_poll(struct process *p)
{
    if (p->end != PROCESS_RUNNING)
        return 1;
    if (p->pid <= 0)
        return 1;
    if (p->is_child) {
        int status;
        pid_t r;
        do
            r = waitpid(p->pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
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
        own_reaped(p->pid);
        p->is_child = 0;
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
    } else if (process_is_exiting(p->pid) != 2) {
        if (!(kill(p->pid, 0) < 0 && errno == ESRCH))
            return 0;
    }
    p->end = PROCESS_GONE;
    sys_close(&p->pidfd);
    return 1;
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
     * exact; for anything else this is the fallback's accepted risk. */
    if (kill(p->pid, sig) == 0)
        return 0;
    return errno;
}

void process_release(struct process *p)
{
    sys_close(&p->pidfd);
    if (p->pid > 0 && p->is_child && p->end == PROCESS_RUNNING) {
        int status;
        pid_t r;
        do
            r = waitpid(p->pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        pthread_mutex_lock(&children_lock);
        if (r == 0) {
            /* out of memory: the child stays a zombie until the launcher
             * exits; nothing better can be done without blocking */
            (void)pidset_add(&abandoned, p->pid);
        } else {
            pidset_remove(&own, p->pid);
        }
        pthread_mutex_unlock(&children_lock);
    }
    p->pid = 0;
    p->is_child = 0;
}

void process_reap_abandoned(void)
{
    pthread_mutex_lock(&children_lock);
    for (size_t i = 0; i < abandoned.len;) {
        int status;
        pid_t r, pid = abandoned.pids[i];
        do
            r = waitpid(pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            i++;
            continue;
        }
        pidset_remove(&own, pid);
        pidset_remove(&abandoned, pid); /* moves the last one to i */
    }
    pthread_mutex_unlock(&children_lock);
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

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#define PR_GET_CHILD_SUBREAPER 37
#endif

static int adopt_depth;            /* windows open */
static int was_subreaper;          /* before the first window opened */
static int adopt_before_known;     /* adopt_before could be listed */
static struct pidset adopt_before; /* children when the window opened */

int process_adopt_begin(void)
{
    int err = 0;
    pthread_mutex_lock(&children_lock);
    if (adopt_depth == 0) {
        int cur = 0;
        if (prctl(PR_GET_CHILD_SUBREAPER, &cur, 0, 0, 0) < 0)
            cur = 0;
        was_subreaper = cur;
        if (!cur && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
            err = errno;
        if (!err) {
            adopt_before.len = 0;
            adopt_before_known = list_children(&adopt_before) == 0;
        }
    }
    if (!err)
        adopt_depth++;
    pthread_mutex_unlock(&children_lock);
    return err;
}

void process_adopt_end(void)
{
    pthread_mutex_lock(&children_lock);
    if (adopt_depth > 0 && --adopt_depth == 0) {
        if (!was_subreaper)
            (void)prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        /* what came to the launcher meanwhile and nobody took over: an
         * orphan a helper left behind. Reaped by pid once it exits. (A
         * child another library forked while the window was open cannot
         * be told from one; that is the price of proving descent.) */
        struct pidset now = { NULL, 0, 0 };
        if (adopt_before_known && list_children(&now) == 0) {
            for (size_t i = 0; i < now.len; i++) {
                pid_t pid = now.pids[i];
                if (pidset_has(&adopt_before, pid) || pidset_has(&own, pid))
                    continue;
                if (pidset_add(&own, pid) == 0 &&
                    pidset_add(&abandoned, pid) != 0)
                    pidset_remove(&own, pid);
            }
        }
        free(now.pids);
        free(adopt_before.pids);
        adopt_before.pids = NULL;
        adopt_before.len = adopt_before.cap = 0;
    }
    pthread_mutex_unlock(&children_lock);
}

/* Read /proc/PID/stat into buf and return a pointer just past the ") " that
 * ends the command name (which may itself contain spaces and parentheses). */
static const char *read_stat(pid_t pid, char *buf, size_t len, int *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno == ENOENT ? ESRCH : errno;
        return NULL;
    }
    ssize_t n = sys_read(fd, buf, len - 1);
    *err = n < 0 ? errno : 0;
    sys_close(&fd);
    if (n <= 0) {
        if (!*err)
            *err = ESRCH;
        return NULL;
    }
    buf[n] = '\0';
    char *end = strrchr(buf, ')');
    if (!end || end[1] != ' ') {
        *err = EPROTO;
        return NULL;
    }
    return end + 2;
}

/* field N of /proc/PID/stat, counting from 3 (the state) at fields */
static const char *stat_field(const char *fields, int n)
{
    const char *p = fields;
    for (int i = 3; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p;
}

#define PF_EXITING_FLAG 0x00000004u

int process_is_exiting(pid_t pid)
{
    char buf[1024];
    int err;
    const char *fields = read_stat(pid, buf, sizeof buf, &err);
    if (!fields)
        return err == ESRCH ? 2 : 0;
    if (fields[0] == 'Z' || fields[0] == 'X')
        return 2;
    const char *flags = stat_field(fields, 9);
    if (flags && (strtoul(flags, NULL, 10) & PF_EXITING_FLAG))
        return 1;
    return 0;
}

int process_start_time(pid_t pid, unsigned long long *ticks)
{
    char buf[1024];
    int err;
    const char *fields = read_stat(pid, buf, sizeof buf, &err);
    if (!fields)
        return err;
    const char *start = stat_field(fields, 22);
    if (!start)
        return EPROTO;
    *ticks = strtoull(start, NULL, 10);
    return 0;
}

int process_parent(pid_t pid, pid_t *parent)
{
    char buf[1024];
    int err;
    const char *fields = read_stat(pid, buf, sizeof buf, &err);
    if (!fields)
        return err;
    const char *ppid = stat_field(fields, 4);
    if (!ppid)
        return EPROTO;
    *parent = (pid_t)strtol(ppid, NULL, 10);
    return 0;
}

int process_uids(pid_t pid, uid_t uids[4])
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ESRCH : errno;
    ssize_t n = sys_read(fd, buf, sizeof buf - 1);
    int err = n < 0 ? errno : 0;
    sys_close(&fd);
    if (n <= 0)
        return err ? err : ESRCH;
    buf[n] = '\0';
    const char *line = strstr(buf, "\nUid:");
    if (!line)
        return EPROTO;
    const char *p = line + 5;
    for (int i = 0; i < 4; i++) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            return EPROTO;
        uids[i] = (uid_t)v;
        p = end;
    }
    return 0;
}

/* Parent chains are short; a longer one is not believed. */
#define PROCESS_MAX_DEPTH 4096

int process_descends_from(pid_t pid, pid_t ancestor, pid_t *via)
{
    pid_t cur = pid;
    for (int depth = 0; depth < PROCESS_MAX_DEPTH && cur > 1; depth++) {
        pid_t parent;
        if (process_parent(cur, &parent) != 0)
            return 0;
        if (parent == ancestor) {
            if (via)
                *via = cur;
            return 1;
        }
        cur = parent;
    }
    return 0;
}
