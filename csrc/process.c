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

/* Children let go of before they were reaped. Guarded by a mutex because
 * several Lua states in several threads may share this library. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *abandoned;
static size_t abandoned_len, abandoned_cap;

void process_release(struct process *p)
{
    sys_close(&p->pidfd);
    if (p->pid > 0 && p->is_child && p->end == PROCESS_RUNNING) {
        int status;
        pid_t r;
        do
            r = waitpid(p->pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            pthread_mutex_lock(&abandoned_lock);
            if (abandoned_len == abandoned_cap) {
                size_t cap = abandoned_cap ? abandoned_cap * 2 : 16;
                pid_t *grown = realloc(abandoned, cap * sizeof *grown);
                if (grown) {
                    abandoned = grown;
                    abandoned_cap = cap;
                }
            }
            /* out of memory: the child stays a zombie until the launcher
             * exits; nothing better can be done without blocking */
            if (abandoned_len < abandoned_cap)
                abandoned[abandoned_len++] = p->pid;
            pthread_mutex_unlock(&abandoned_lock);
        }
    }
    p->pid = 0;
    p->is_child = 0;
}

void process_reap_abandoned(void)
{
    pthread_mutex_lock(&abandoned_lock);
    size_t kept = 0;
    for (size_t i = 0; i < abandoned_len; i++) {
        int status;
        pid_t r;
        do
            r = waitpid(abandoned[i], &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0)
            abandoned[kept++] = abandoned[i];
    }
    abandoned_len = kept;
    if (kept == 0) {
        /* nothing pending: give the memory back (and leave no block that
         * only this library's statics point to once it is unloaded) */
        free(abandoned);
        abandoned = NULL;
        abandoned_cap = 0;
    }
    pthread_mutex_unlock(&abandoned_lock);
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
