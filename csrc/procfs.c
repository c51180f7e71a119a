/*
 * procfs.c: /proc/PID/stat and /proc/PID/status, read and parsed.
 */
#include "procfs.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole of a small /proc file into buf, NUL-terminated. Returns 0 or an
 * errno value (ESRCH for a process that is gone). */
static int read_proc_file(pid_t pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ESRCH : errno;
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
    out->start_time = (unsigned long long)field[18];
    return 0;
}

/* The numbers after "\nKEY:" in text, in base: n of them into out. Returns
 * 0, or EPROTO when the key or a number is missing. */
static int status_numbers(const char *text, const char *key, int base, unsigned long long *out, int n)
{
    char needle[16];
    snprintf(needle, sizeof needle, "\n%s:", key);
    const char *p = strstr(text, needle);
    if (!p)
        return EPROTO;
    p += strlen(needle);
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtoull(p, &end, base);
        if (end == p)
            return EPROTO;
        p = end;
    }
    return 0;
}

int procfs_status(pid_t pid, struct procfs_status *out)
{
    char buf[4096];
    int err = read_proc_file(pid, "status", buf, sizeof buf);
    if (err)
        return err;
    unsigned long long uids[4], tgid;
    if ((err = status_numbers(buf, "Uid", 10, uids, 4)) || (err = status_numbers(buf, "Tgid", 10, &tgid, 1)) ||
        (err = status_numbers(buf, "SigBlk", 16, &out->sig_blocked, 1)) ||
        (err = status_numbers(buf, "SigIgn", 16, &out->sig_ignored, 1)) ||
        (err = status_numbers(buf, "SigCgt", 16, &out->sig_caught, 1)))
        return err;
    for (int i = 0; i < 4; i++)
        out->uids[i] = (uid_t)uids[i];
    out->tgid = (pid_t)tgid;
    return 0;
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
        return err == ESRCH ? PROCFS_GONE : PROCFS_RUNNING;
    if (st.state == 'Z' || st.state == 'X')
        return PROCFS_GONE;
    return (st.flags & PF_EXITING_FLAG) ? PROCFS_EXITING : PROCFS_RUNNING;
}

/* Parent chains are short; a longer one is not believed. */
#define PROCFS_MAX_DEPTH 4096

int procfs_descends_from(pid_t pid, pid_t ancestor, pid_t *via)
{
    pid_t cur = pid;
    for (int depth = 0; depth < PROCFS_MAX_DEPTH && cur > 1; depth++) {
        struct procfs_stat st;
        if (procfs_stat(cur, &st) != 0)
            return 0;
        if (st.ppid == ancestor) {
            if (via)
                *via = cur;
            return 1;
        }
        cur = st.ppid;
    }
    return 0;
}
