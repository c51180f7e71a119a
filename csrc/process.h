/*
 * process.h: a handle on one process the launcher watches or signals.
 *
 * Where the kernel has pidfds the handle holds one: it is pollable (readable
 * once the process has exited), and signals sent through it can never reach
 * a recycled pid. Where it has none (or a test forces the fallback), the
 * handle probes kill(pid, 0) and the caller polls at an interval.
 *
 * Only the launcher's own children are ever reaped, each by its own pid: never
 * waitpid(-1), which would steal children from other libraries.
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
};

/* Use pidfds when the kernel has them (the default), or force the polling
 * fallback. process_pidfd_enabled says which is in force. */
void process_use_pidfd(int on);
int process_pidfd_enabled(void);

/* Does this kernel (or the emulator running us) have pidfd_open? */
int process_pidfd_available(void);

/* Take hold of pid. For a non-child a missing process is ESRCH. Returns 0 or
 * an errno value; on error the handle holds nothing. */
int process_open(struct process *p, pid_t pid, int is_child);

/* Non-blocking: has it ended? Returns 1 (p->end and p->code are set), 0 while
 * it runs, or -1 with errno on an unexpected error. Reaps a child. */
int process_poll(struct process *p);

/* Send sig. Returns 0 or an errno value; ESRCH once it has ended. */
int process_signal(struct process *p, int sig);

/* Let go: close the pidfd; a child that has not been reaped is remembered and
 * reaped later by process_reap_abandoned, so it never stays a zombie. */
void process_release(struct process *p);

/* Reap abandoned children that have exited (non-blocking, each by pid). */
void process_reap_abandoned(void);

/* Is the process exiting or gone? 0: running; 1: exiting (PF_EXITING in
 * /proc/PID/stat, which is set before an exiting process closes its
 * descriptors, so an end of file on a channel can be told apart from a
 * deliberate close); 2: a zombie or gone. */
int process_is_exiting(pid_t pid);

/* Start time of pid in clock ticks since boot, from /proc/PID/stat. Returns 0
 * or an errno value. */
int process_start_time(pid_t pid, unsigned long long *ticks);

/* The parent of pid, from /proc/PID/stat. Returns 0 or an errno value. */
int process_parent(pid_t pid, pid_t *parent);

/* The real, effective, saved and filesystem uids of pid, from
 * /proc/PID/status. Returns 0 or an errno value. */
int process_uids(pid_t pid, uid_t uids[4]);

/* Walk pid's parent chain: 1 when it reaches ancestor (*via: the child of
 * ancestor on the way, pid itself when ancestor is its parent), 0 when it
 * ends at 0 or 1 (or after a bound on its length) without. */
int process_descends_from(pid_t pid, pid_t ancestor, pid_t *via);

/* Is pid a child this library started (or took over as its own) and has
 * not reaped yet? */
int process_is_own_child(pid_t pid);

/* Take an adopted process over as a child of this library's: it is reaped
 * by pid from now on, by whoever holds it (p) or, once let go, later. One
 * that has ended already is reaped now, its status kept in p. */
void process_own_adopted(struct process *p);

/* The adoption window, open while any start through a helper is under
 * way: the launcher is a child subreaper (PR_SET_CHILD_SUBREAPER), so an
 * app whose helper exits becomes the launcher's child, provably descended
 * from the helper, with an exit status to reap. Nested calls count. When
 * the last window closes, children that were adopted meanwhile and that
 * nobody took over are remembered and reaped by pid once they exit, so
 * none stays a zombie. A launcher that was a subreaper already stays one.
 * Returns 0 or an errno value. */
int process_adopt_begin(void);
void process_adopt_end(void);

#endif
