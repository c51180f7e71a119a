/*
 * process.h: a handle on one process the launcher watches or signals.
 *
 * Where the kernel has pidfds the handle holds one: it is pollable (readable
 * once the process has exited), and signals sent through it can never reach
 * a recycled pid. Where it has none (or a test forces the fallback), the
 * handle probes kill(pid, 0) and the caller polls at an interval.
 *
 * A handle on a child of the launcher's reaps it, by its pid (children.h).
 */
#ifndef APPSTART_PROCESS_H
#define APPSTART_PROCESS_H

#include <sys/types.h>

enum process_end {
    PROCESS_RUNNING = 0,
    PROCESS_EXITED,   /* normal exit: code holds the exit status */
    PROCESS_SIGNALED, /* killed: code holds the signal number */
    PROCESS_GONE      /* gone, exit status not knowable */
};

struct process {
    pid_t pid;      /* 0 when the handle holds nothing */
    int pidfd;      /* -1 when there is none */
    int is_child;   /* ours to reap */
    int end;        /* enum process_end */
    int code;
    int keep_pidfd; /* the end leaves the pidfd open, for process_release:
                     * its owner takes it out of every poll set first */
    int lease;      /* holds a lease (children.h): ours to reap once it has
                     * come to the launcher */
    int hold;       /* a child left unreaped once it has exited, until
                     * process_release: the leader of a process group, whose
                     * number no other process can take meanwhile, so that
                     * kill(-pgid) reaches its group and no other (tree.c);
                     * a notify app's main, whose last datagrams are read
                     * while no other process can send with its number
                     * (process_reap_held, once read, where it outlives
                     * its end: a cgroup's) */
    unsigned long long start; /* without a pidfd, for one not the
                     * launcher's child: its start time (/proc), so that a
                     * process that took its number once it was reaped
                     * elsewhere is not taken for it; 0 when unknown */
};

#define PROCESS_NONE { 0, -1, 0, PROCESS_RUNNING, 0, 0, 0, 0, 0 }

/* Use pidfds when the kernel has them (the default), or force the polling
 * fallback. process_pidfd_enabled says which is in force. */
void process_use_pidfd(int on);
int process_pidfd_enabled(void);

/* Hold a process with p->hold unreaped after its end (the default), or
 * reap it at once, as one that is not held (a test of what is done for
 * those). process_holds_leaders says which is in force. */
void process_hold_leaders(int on);
int process_holds_leaders(void);

/* Does this kernel (or the emulator running us) have pidfd_open? */
int process_pidfd_available(void);

/* Take hold of pid. For a non-child a missing process is ESRCH. Returns 0 or
 * an errno value; on error the handle holds nothing. */
int process_open(struct process *p, pid_t pid, int is_child);

/* Non-blocking: has it ended? Returns 1 (p->end and p->code are set), 0 while
 * it runs, or -1 with errno on an unexpected error. Reaps a child, but for
 * one held (p->hold): its status is read, and it is reaped by
 * process_release. */
int process_has_ended(struct process *p);

/* Has p, a child, exited without being reaped yet (a zombie, whose pid no
 * other process can have until it is reaped)? 1; 2 when it has exited and
 * been reaped by another wait of the process (a waitpid(-1) elsewhere: no
 * wait finds it, its pid is free); 0 when it runs, is not a child or has
 * been reaped by process_has_ended. Never reaps. */
int process_exited_unreaped(const struct process *p);

/* Send sig. Returns 0 or an errno value; ESRCH once it has ended. */
int process_signal(struct process *p, int sig);

/* A held child (p->hold) that has ended, whose end was read: reaped now,
 * its number free from then on; held no more. Nothing for any other. */
void process_reap_held(struct process *p);

/* Let go: close the pidfd; a held child that has exited is reaped now, one
 * that has not is reaped later (children_reap_abandoned), so it never stays
 * a zombie. */
void process_release(struct process *p);

/* Take p, a process proven through the launcher's adoption window, over
 * as a child of this library's if it has come to the launcher: it is
 * reaped by pid from now on, or now if it has ended (its status kept in
 * p). Whether it has come is asked through its pidfd, or without one by
 * /proc with its start time `start` (0: unknown), never by its number
 * alone: once it has ended and been reaped elsewhere, another child of
 * the launcher's may have that number. Returns 1 when taken (or reaped),
 * 0 when it is no child of the launcher's (yet: see process_lease), -1
 * when it is gone or cannot be told. */
int process_own_adopted(struct process *p, unsigned long long start);

/* p, proven through a process the launcher adopted, is not the launcher's
 * child yet: hold the caller's adoption window as a lease (children.h)
 * until it is. Returns 0, or an errno value (no pidfd to make it exact,
 * out of memory or descriptors): the caller ends its window itself. */
int process_lease(struct process *p);

#endif
