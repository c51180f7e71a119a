/*
 * procfs.c: /proc/PID/stat and /proc/PID/status, read and parsed.
 */
#include "procfs.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a /proc/PID file that could not be opened (errno err) says: ENOENT
 * is a process that is gone (ESRCH), unless /proc itself is not there. */
static int open_failed(int err)
{
    if (err != ENOENT)
        return err;
    return access("/proc/self/stat", F_OK) != 0 && errno == ENOENT ? PROCFS_UNMOUNTED : ESRCH;
}

const char *procfs_strerror(int err)
{
    if (err == ESRCH)
        return "no such process";
    if (err == PROCFS_UNMOUNTED)
        return "it cannot be checked: /proc is not mounted";
    return strerror(err);
}

/* The whole of a small /proc file into buf, NUL-terminated. Returns 0 or an
 * errno value (ESRCH for a process that is gone). */
static int read_proc_file(pid_t pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return open_failed(errno);
    ssize_t n = sys_read(fd, buf, len - 1);
    int err = n < 0 ? errno : 0;
    sys_close(&fd);
    if (n <= 0)
        return err ? err : ESRCH;
    buf[n] = '\0';
    return 0;
}

int procfs_stat(pid_t pid, struct procfs_stat *out)
{
    char buf[1024];
    int err = read_proc_file(pid, "stat", buf, sizeof buf);
    if (err)
        return err;
    const char *end = strrchr(buf, ')');
    if (!end || end[1] != ' ' || !end[2])
        return EPROTO;
    /* fields from 3 (state) on: state ppid pgrp session tty_nr tpgid flags
     * minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads itrealvalue starttime */
    const char *p = end + 2;
    out->state = *p;
    long long field[19];
    for (int i = 0; i < 19; i++) {
        p = strchr(p, ' ');
        if (!p)
            return EPROTO;
        p++;
        char *next;
        field[i] = strtoll(p, &next, 10);
        if (next == p)
            return EPROTO;
    }
    out->ppid = (pid_t)field[0];
    out->pgrp = (pid_t)field[1];
    out->session = (pid_t)field[2];
    out->tty = (int)field[3];
    out->flags = (unsigned long)field[5];
    out->threads = (long)field[16];
    out->start_time = (unsigned long long)field[18];
    return 0;
}

int procfs_stat_ended(const struct procfs_stat *st)
{
    return (st->state == 'Z' || st->state == 'X') && st->threads <= 1;
}

/* The n numbers (in base) after KEY in line, when line starts with KEY
 * ("Uid:"): 1 with out filled, else 0. */
static int status_numbers(const char *line, const char *key, int base, unsigned long long *out, int n)
{
    size_t klen = strlen(key);
    if (strncmp(line, key, klen) != 0)
        return 0;
    const char *p = line + klen;
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtoull(p, &end, base);
        if (end == p)
            return 0;
        p = end;
    }
    return 1;
}

enum { ST_UID = 1, ST_TGID = 2, ST_BLK = 4, ST_IGN = 8, ST_CGT = 16, ST_ALL = 31 };

/* One line of /proc/PID/status: what procfs_status asks for into out, a
 * bit in *found for each. */
static void status_line(const char *line, struct procfs_status *out, unsigned *found)
{
    unsigned long long v[4];
    if (status_numbers(line, "Uid:", 10, v, 4)) {
        for (int i = 0; i < 4; i++)
            out->uids[i] = (uid_t)v[i];
        *found |= ST_UID;
    } else if (status_numbers(line, "Tgid:", 10, v, 1)) {
        out->tgid = (pid_t)v[0];
        *found |= ST_TGID;
    } else if (status_numbers(line, "SigBlk:", 16, &out->sig_blocked, 1)) {
        *found |= ST_BLK;
    } else if (status_numbers(line, "SigIgn:", 16, &out->sig_ignored, 1)) {
        *found |= ST_IGN;
    } else if (status_numbers(line, "SigCgt:", 16, &out->sig_caught, 1)) {
        *found |= ST_CGT;
    }
}

/* Read line by line: the file has no bound on its length (Groups: lists
 * every supplementary group, NGROUPS_MAX of them), and the fields asked
 * for come before and after that line. A line longer than the buffer is
 * none of them, and is skipped. */
int procfs_status(pid_t pid, struct procfs_status *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return open_failed(errno);
    char chunk[4096], line[128];
    size_t len = 0;
    int overlong = 0, err = 0;
    unsigned found = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        ssize_t n = sys_read(fd, chunk, sizeof chunk);
        if (n < 0) {
            err = errno;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                line[len] = '\0';
                if (!overlong)
                    status_line(line, out, &found);
                len = 0;
                overlong = 0;
            } else if (len < sizeof line - 1) {
                line[len++] = chunk[i];
            } else {
                overlong = 1;
            }
        }
        if (n == 0)
            break;
    }
    sys_close(&fd);
    if (err)
        return err;
    /* nothing read: the process is gone */
    if (found == 0)
        return ESRCH;
    return found == ST_ALL ? 0 : EPROTO;
}

int procfs_uids(pid_t pid, uid_t uids[4])
{
    struct procfs_status st;
    int err = procfs_status(pid, &st);
    if (!err)
        memcpy(uids, st.uids, sizeof st.uids);
    return err;
}

#define PF_EXITING_FLAG 0x00000004u

int procfs_liveness(pid_t pid)
{
    struct procfs_stat st;
    int err = procfs_stat(pid, &st);
    if (err)
        return err == ESRCH ? PROCFS_GONE : err == PROCFS_UNMOUNTED ? PROCFS_UNKNOWN : PROCFS_RUNNING;
    if (procfs_stat_ended(&st))
        return PROCFS_GONE;
    /* (a main thread alone gone, the rest running, is flagged exiting
     * too: its descriptors stay open, shared with the threads) */
    if (st.state == 'Z' || st.state == 'X')
        return PROCFS_RUNNING;
    return (st.flags & PF_EXITING_FLAG) ? PROCFS_EXITING : PROCFS_RUNNING;
}

/* Parent chains are short; a longer one is not believed. */
#define PROCFS_MAX_DEPTH 4096

/* Each step reads the parent's number from its child, then the parent by
 * that number: a parent that exited meanwhile and whose number another
 * process took is no parent. It is told by its start time, later than its
 * child's (a parent is never younger than its child): the walk ends
 * there, without. (Within one clock tick start times cannot tell: the
 * limit of every start-time check here.) */
static int descent(pid_t pid, pid_t ancestor, pid_t *via, int max_depth)
{
    pid_t cur = pid;
    unsigned long long child_start = ULLONG_MAX;
    for (int depth = 0; depth < max_depth && cur > 1; depth++) {
        struct procfs_stat st;
        int err = procfs_stat(cur, &st);
        if (err)
            return err == ESRCH ? 0 : -err;
        if (st.start_time > child_start)
            return 0;
        child_start = st.start_time;
        if (st.ppid == ancestor) {
            if (via)
                *via = cur;
            return 1;
        }
        cur = st.ppid;
    }
    return 0;
}

int procfs_descent(pid_t pid, pid_t ancestor, pid_t *via)
{
    return descent(pid, ancestor, via, PROCFS_MAX_DEPTH);
}

int procfs_descends_from(pid_t pid, pid_t ancestor, pid_t *via)
{
    return descent(pid, ancestor, via, PROCFS_MAX_DEPTH) == 1;
}

int procfs_descent_within(pid_t pid, pid_t ancestor, int max_depth)
{
    return descent(pid, ancestor, NULL, max_depth);
}

int procfs_names_a_thread(pid_t pid, int open_err)
{
    if (open_err && open_err != EINVAL && open_err != ENOENT)
        return -open_err;
    struct procfs_status st;
    int err = procfs_status(pid, &st);
    return err ? -err : st.tgid != pid;
}
