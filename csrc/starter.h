/*
 * starter.h: one start, from the spawn to a ready app or a failure, as a
 * non-blocking state machine behind an opaque object.
 *
 *   starter_begin  channels, the child's stdio and environment, spawn
 *   starter_step   advance without blocking; returns the phase
 *   ...            the caller waits for one of starter_fds (or the one
 *                  descriptor starter_pollfd) to be readable, or, while
 *                  starter_needs_probing, for an interval of its choosing,
 *                  and for its own deadlines: timeouts are policy, and
 *                  live in Lua
 *   READY          starter_take_app hands the app over
 *   FAILED         starter_stop signals what is held, starter_stopped says
 *                  when it has all ended (the caller waits as above)
 *   starter_close  releases everything; starter_abandon first kills what
 *                  is still held (a start its caller dropped)
 *
 * Events (the pid, STATUS= and the like) queue up as they happen;
 * starter_next_event takes them. The starter never calls back, never
 * blocks and never exits: failures are its FAILED phase, with a code, an
 * errno and a message.
 */
#ifndef APPSTART_STARTER_H
#define APPSTART_STARTER_H

#include "listener.h"
#include "process.h"
#include "tree.h"

#include <stddef.h>
#include <sys/types.h>

/* appstart-helper --encoded-env: the prefix of each of the app's variables */
#define ENCODED_ENV_PREFIX "APPSTART_ENV_"

struct starter;

enum starter_ready { STARTER_READY_NONE = 0, STARTER_READY_FD, STARTER_READY_NOTIFY };
enum starter_access { STARTER_ACCESS_MAIN = 0, STARTER_ACCESS_EXEC, STARTER_ACCESS_ALL };

enum starter_phase {
    STARTER_IDLE = 0,     /* not begun */
    STARTER_AWAIT_EXEC,   /* the exec's verdict is on its way (where vfork
                             is emulated as fork) */
    STARTER_REAP_EXEC,    /* the exec failed: its child is being reaped */
    STARTER_AWAIT_PID,    /* a helper runs: its report of the app's pid is
                             awaited */
    STARTER_AWAIT_READY,  /* the app's pid is known: its ready message (and
                             the helper's exit) are awaited */
    STARTER_READY,
    STARTER_FAILED
};

enum starter_code {
    STARTER_OK = 0,
    STARTER_SPAWN,
    STARTER_HELPER,
    STARTER_BAD_PID,
    STARTER_DIED,
    STARTER_PID_MISMATCH,
    STARTER_READY_CLOSED,
    STARTER_PROTOCOL
};

enum starter_event_kind {
    STARTER_EVENT_PID = 1,     /* value: the pid the helper reported, verified */
    STARTER_EVENT_HELPER_EXIT, /* value: exit code, or -signal */
    STARTER_EVENT_STATUS,      /* text: STATUS= */
    STARTER_EVENT_IGNORED,     /* value: the last sender not admitted; count:
                                  how many messages; text: what they were */
    STARTER_EVENT_EXTEND,      /* value: EXTEND_TIMEOUT_USEC= */
    STARTER_EVENT_ERRNO,       /* value: ERRNO= */
    STARTER_EVENT_STOPPING,
    STARTER_EVENT_MAINPID,     /* value: MAINPID= that agreed */
    STARTER_EVENT_DROPPED,     /* count: events lost for want of memory */
    STARTER_EVENT_WATCHDOG_USEC /* value: WATCHDOG_USEC= */
};

struct starter_event {
    int kind;
    long long value;
    long long count;
    const char *text; /* valid until the next starter_next_event; may be NULL */
    size_t len;
};

/* The descriptors a start may wait on at once: the exec pipe, the pid pipe,
 * the helper's pidfd, the app's pidfd, the ready channel (never all), and
 * the caller's (starter_watch: a probe's command's pidfd, the output
 * pipes). */
#define STARTER_MAX_CALLER 3
#define STARTER_MAX_WATCH (5 + STARTER_MAX_CALLER)

struct starter_config {
    char *const *argv;       /* NULL-terminated: the helper's, then the app's */
    char *const *env;        /* "NAME=VALUE", NULL-terminated; NULL: the
                                launcher's environment */
    const char *search_path; /* PATH for argv[0] without '/' */
    const char *cwd;         /* NULL: the launcher's */
    const char *stdio[3];    /* NULL or "inherit", "null", or a file (stdin
                                read, stdout and stderr appended to) */
    int stdio_fd[3];         /* >= 0: this descriptor instead of stdio[i]
                                (a pipe the launcher reads); duplicated, the
                                caller keeps its own */
    int has_helper;          /* argv reports the app's pid at pid_fd */
    int pid_fd, pid_format;  /* pidrec.h */
    uid_t app_uid;           /* with a helper: the user the app must run as;
                                (uid_t)-1: not checked. The helper is then
                                appstart-helper --encoded-env: the
                                environment goes to it encoded */
    int ready, ready_fd, access; /* enum starter_ready, enum starter_access */
    const char *notify_base; /* base of the notify socket's directory */
    int kill_mode;           /* enum tree_mode */
    const char *cgroup_parent; /* kill_mode cgroup: NULL, the launcher's */
    unsigned long long watchdog_usec; /* 0: none; else WATCHDOG_USEC= (and
                                WATCHDOG_PID= without a helper) */
    const char *pid_file;    /* with has_helper: the helper (a daemon that
                                forks) reports nothing; it must exit 0, and
                                the app's pid is then read from this file
                                (waited for: the step is probed) */
    int error_fd;            /* > 2, with has_helper: the helper writes why
                                it failed to a pipe at this number
                                (appstart-helper --error-fd), which a
                                failure's message then quotes; else none */
    int pass_fd;             /* >= 0: a descriptor of the launcher's the
                                child gets at fd 3 (a pidfd, for
                                appstart-helper --signal); no helper, no
                                ready fd; -1: none */
    int new_session;         /* the child starts a session of its own
                                (kill_mode group, a helper: always) */
};

struct starter_result {
    int code;                /* enum starter_code */
    int err;                 /* errno, 0 when none */
    const char *message;     /* "" unless FAILED */
    pid_t pid;               /* the app, once known; else 0 */
    pid_t unchecked_pid;     /* a pid reported that could not be checked
                                yet (out of descriptors or memory:
                                unchecked_err); else 0 */
    int unchecked_err;
    size_t pid_partial;      /* bytes of a pid record read, the record
                                not whole yet (no pid): else 0 */
    pid_t held_sender;       /* a ready message's sender whose descent
                                could not be read yet (held_err): the
                                message waits, what follows behind it;
                                else 0 */
    int held_err;
    const char *name;        /* the fd protocol's ready line; NULL if none */
    size_t name_len;
    const char *partial;     /* the fd protocol: a line begun, its newline
                                not come yet; NULL if none */
    size_t partial_len;
    const char *status;      /* the latest STATUS=; NULL if none */
    size_t status_len;
    int app_errno;           /* ERRNO=, 0 when none */
    int record_as_line;      /* bad_pid: the helper's int32le record read
                                as decimal text (a line? pid_format
                                "line") */
    int exited;              /* ready, and gone already */
    int app_stopping;        /* it said STOPPING=1 (a READY=1 after it
                                is not believed) */
    int app_end, app_code;   /* how the app ended (enum process_end), once
                                it has, while the starter holds it */
    int left;                /* kill_mode "group" or "cgroup": how many
                                other members of the app's tree a failed
                                start's stop found and signalled; else -1 */
    int helper_lost;         /* the helper (a forking daemon's started
                                process) was reaped by another wait of the
                                process: its exit status is lost */
    int ready_seen;          /* the ready message came (through a helper
                                that has not exited yet, the start is
                                READY only once it has) */
};

/* sizeof(struct starter), for the caller's memory (a Lua userdata). */
size_t starter_size(void);

/* Preset every field, so starter_close is safe at any point. */
void starter_init(struct starter *s);

/* Set up and spawn. Never fails outright: a failure is the FAILED phase.
 * cfg and what it points to are used only during the call. */
int starter_begin(struct starter *s, const struct starter_config *cfg);

/* Advance without blocking. Returns the phase. */
int starter_step(struct starter *s);

int starter_phase(const struct starter *s);
const char *starter_phase_name(int phase);
const char *starter_code_name(int code);

/* Is the start fresh from its spawn, with nothing that can have happened
 * yet (the exec's verdict in, no helper, the app's death pollable)? Then
 * the caller may wait before the first step: the channel or the pidfd
 * wakes it at once if anything happens, and the step that would find
 * nothing (a wait4 and a read) is spared. False after any step. */
int starter_fresh(const struct starter *s);

/* The pid of the process spawned (the helper, or the app), 0 when none
 * was. */
pid_t starter_spawned_pid(const struct starter *s);

/* Does the pid deadline apply (the helper has not reported, or not
 * exited)? Else the ready deadline does. */
int starter_awaits_helper(const struct starter *s);

/* Must the caller step at an interval (a watched process has no pidfd, or
 * the epoll set of starter_pollfd could not take one of the descriptors)? */
int starter_needs_probing(const struct starter *s);

/* The descriptors to wait on until the next step (any readable one means
 * step), into fds[STARTER_MAX_WATCH]; returns how many. */
int starter_fds(const struct starter *s, int *fds);

/* Block until one of them is readable or timeout seconds (negative:
 * forever) pass, for a caller with nothing else to wait on: 1, 0 at the
 * timeout, -1 with errno. The next step then knows which were not
 * readable and spares the system calls that would say so. */
int starter_wait(struct starter *s, double timeout);

/* Wake the start's waits when fd is readable too (a probe's command's
 * pidfd, the app's output pipes): fd is the caller's, never closed here;
 * take it out with starter_unwatch before closing it. STARTER_MAX_CALLER
 * at a time: 0, or EBUSY when that many are watched already. */
int starter_watch(struct starter *s, int fd);
void starter_unwatch(struct starter *s, int fd);

/* One descriptor for all of them (an epoll set, made on first call and kept
 * up to date from then on), or -errno (epoll_create1's). A descriptor the
 * set cannot take is offered again at each step; the start is probed
 * meanwhile. */
int starter_pollfd(struct starter *s);

/* That descriptor if it has been made, else -1 (never makes it). */
int starter_pollfd_made(const struct starter *s);

/* Did the last step's reads stop at their bound (so many per step, or a
 * full event queue), more perhaps queued behind? The next step reads on:
 * a caller about to conclude a timeout steps again first (the launcher
 * busy past the deadline, a READY=1 sent in time may wait there). */
int starter_reads_cut(const struct starter *s);

/* Are events waiting? */
int starter_has_events(const struct starter *s);

/* Take the next event: 1 with *out set, 0 when there is none. */
int starter_next_event(struct starter *s, struct starter_event *out);

void starter_result(const struct starter *s, struct starter_result *out);

/* The app's pidfd, or -1 (not known yet, or probed). */
int starter_app_pidfd(struct starter *s);

/* READY: move the app's handle into *out, and its tree (NULL for
 * kill_mode "process") into *tree (the caller owns both from now).
 * Returns 0, or EINVAL when there is nothing to take. */
int starter_take_app(struct starter *s, struct process *out, struct tree **tree);

/* READY, notify protocol: move the notify socket into *out, to be read
 * after ready (call before starter_take_app). Returns 0, or EINVAL. */
int starter_take_notify(struct starter *s, struct listener *out);

/* FAILED: send app_signal (0: none) to the app where it may still run (and
 * SIGCONT after any but SIGKILL, so a stopped app gets it) and to the rest
 * of its tree (kill_mode), and SIGKILL to a helper still running. Returns
 * 0, or why the app could not be signalled (EPERM: another user's);
 * *rest_refused: other members of its tree could not be (EPERM). */
int starter_stop(struct starter *s, int app_signal, int *rest_refused);

/* kill_mode "group": the app's process group, once known; else 0. */
pid_t starter_pgid(const struct starter *s);

/* FAILED: has every process held ended (children reaped, the app's group
 * or cgroup empty)? Not while a reported pid could not be checked yet
 * (out of descriptors), before the stop's SIGKILL: it is checked again at
 * each call. An app found late (its pid written after the stop looked for
 * it, or checked only now) is signalled as the stop said: *late_signal is
 * that signal (the caller's grace runs from now), else 0. */
int starter_stopped(struct starter *s, int *late_signal);

/* READY, not yet taken (its readiness is being probed from outside): has
 * the app ended? Non-blocking; a child is reaped, so starter_result then
 * tells how. 1 or 0. */
int starter_app_ended(struct starter *s);

/* SIGKILL whatever is still held (its caller dropped the start), then
 * close. */
void starter_abandon(struct starter *s);

/* Release every descriptor and the notify directory; processes still held
 * are let go of, never signalled (children are reaped later). Idempotent. */
void starter_close(struct starter *s);

/* Test knob: every epoll_ctl that adds a descriptor to a starter's set
 * fails with this errno (0, the default: none do), as ENOSPC does past
 * the kernel's limit on watches. */
extern int starter_epoll_fault;

#endif
