/*
 * procfs.h: what /proc says of a process: its parent, process group,
 * start time, state and uids, and whether its parent chain reaches another.
 *
 * Read whole, small files, parsed where the kernel puts the fields: the
 * command name in /proc/PID/stat may hold spaces and parentheses, so the
 * fields after it are found from the last ')'.
 */
#ifndef APPSTART_PROCFS_H
#define APPSTART_PROCFS_H

#include <errno.h>
#include <sys/types.h>

struct procfs_stat {
    char state;                    /* R, S, D, Z, X, ... */
    pid_t ppid, pgrp, session;
    int tty;                       /* tty_nr: 0 with no controlling terminal */
    unsigned long flags;           /* PF_* */
    unsigned long long start_time; /* clock ticks since boot */
    long threads;                  /* num_threads: more than 1 in a "zombie"
                                      whose main thread alone has exited
                                      (pthread_exit), the rest running */
};

/* Has the process st describes ended: a zombie (or dead) with no thread
 * left running? (Its main thread alone gone shows as a zombie too.) */
int procfs_stat_ended(const struct procfs_stat *st);

/* What reading /proc returns where /proc is not mounted (an initramfs, a
 * mount namespace without it): nothing can be checked, and no process is
 * taken for gone. */
#define PROCFS_UNMOUNTED ENOMEDIUM

/* Says what a procfs function's errno value means of a process: "no such
 * process", "/proc is not mounted...", else strerror's text. */
const char *procfs_strerror(int err);

/* /proc/PID/stat of pid. Returns 0 or an errno value (ESRCH when gone,
 * PROCFS_UNMOUNTED). */
int procfs_stat(pid_t pid, struct procfs_stat *out);

/* What /proc/PID/status says of pid that this library asks: its uids, its
 * thread group and its signal masks. */
struct procfs_status {
    uid_t uids[4];                 /* real, effective, saved, filesystem */
    pid_t tgid;                    /* its process: pid itself, unless pid is
                                      a thread's id */
    unsigned long long sig_blocked, sig_ignored, sig_caught; /* SigBlk,
                                      SigIgn, SigCgt: bit n-1 for signal n */
};
/* /proc/PID/status of pid. Returns 0 or an errno value (ESRCH when gone,
 * EPROTO when a field is missing). */
int procfs_status(pid_t pid, struct procfs_status *out);
/* Does pid name a thread rather than a process (its thread group's id is
 * another)? open_err: what opening pid as a process returned (pidfd_open
 * refuses a thread's id, EINVAL, ENOENT since Linux 6.9; without pidfds
 * kill(tid, 0) answers for it). 1 or 0; -open_err where opening failed
 * for another reason, -errno where /proc could not say. */
int procfs_names_a_thread(pid_t pid, int open_err);
/* The real, effective, saved and filesystem uids of pid (procfs_status).
 * Returns 0 or an errno value. */
int procfs_uids(pid_t pid, uid_t uids[4]);

enum procfs_liveness {
    PROCFS_RUNNING = 0,
    PROCFS_EXITING, /* PF_EXITING: set before an exiting process closes its
                       descriptors, so an end of file on a channel can be
                       told apart from a deliberate close */
    PROCFS_GONE,    /* a zombie, or no such process */
    PROCFS_UNKNOWN  /* /proc not mounted (PROCFS_UNMOUNTED): neither
                       running nor gone for sure */
};

/* How far pid is from running. A /proc that cannot be read says RUNNING
 * (callers act only on EXITING and GONE), one not mounted UNKNOWN (a
 * channel closed then may be a process exiting: its end is waited for,
 * as before one that is EXITING or GONE). */
int procfs_liveness(pid_t pid);

/* Walk pid's parent chain: 1 when it reaches ancestor (*via: the child of
 * ancestor on the way, pid itself when ancestor is its parent), 0 when it
 * ends at 0 or 1 (or after a bound on its length, at a process gone, or
 * at one younger than the child it was read from: a parent's number
 * taken by another process during the walk) without, -errno when /proc
 * could not be read (out of descriptors). */
int procfs_descent(pid_t pid, pid_t ancestor, pid_t *via);
/* The same, as a yes or no: 1 only when it reaches ancestor. */
int procfs_descends_from(pid_t pid, pid_t ancestor, pid_t *via);
/* procfs_descent within max_depth generations (pid a child of ancestor:
 * 1): 1, 0 or -errno. */
int procfs_descent_within(pid_t pid, pid_t ancestor, int max_depth);

/* How many generations below the app a notify_access "all" sender may be:
 * its descent is read for every datagram it sends, one /proc file per
 * generation, so a flood from deeper down would hold the launcher for
 * that much longer a datagram. */
#define PROCFS_SENDER_MAX_DEPTH 64

#endif
