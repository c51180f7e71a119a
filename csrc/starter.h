/*
 * starter.h: the handshake of one start, as a non-blocking state machine.
 *
 * prepare (channels) -> spawn -> step ... step -> READY or FAILED.
 * starter_step never blocks: the caller waits for one of starter_fds to be
 * readable (or for one descriptor, starter_pollfd, an epoll set of them),
 * or for starter_poll_interval when a process has no pidfd, and for its own
 * deadlines, which are policy and live in Lua. Timeouts and
 * cancellation are the caller's; so is terminating what a failed start left
 * running (starter->app and starter->spawned say what that is).
 */
#ifndef APPSTART_STARTER_H
#define APPSTART_STARTER_H

#include "channel.h"
#include "pidrec.h"
#include "process.h"
#include "readyline.h"
#include "spawn.h"

#include <sys/types.h>

enum ready_mode { READY_NONE = 0, READY_FD, READY_NOTIFY };
enum notify_access { ACCESS_MAIN = 0, ACCESS_EXEC, ACCESS_ALL };
enum starter_state { STARTER_RUNNING = 0, STARTER_READY, STARTER_FAILED };
enum starter_code {
    CODE_NONE = 0,
    CODE_SPAWN,
    CODE_HELPER,
    CODE_BAD_PID,
    CODE_DIED,
    CODE_PID_MISMATCH,
    CODE_READY_CLOSED,
    CODE_PROTOCOL
};

enum starter_event_kind {
    EVENT_SPAWNED = 1, /* value: pid of the spawned process */
    EVENT_PID,         /* value: the pid the helper reported, verified */
    EVENT_HELPER_EXIT, /* value: exit code, or -signal */
    EVENT_STATUS,      /* text: STATUS= */
    EVENT_IGNORED,     /* value: the last sender not admitted; count: how
                          many messages; text: what they were */
    EVENT_EXTEND,      /* value: EXTEND_TIMEOUT_USEC= */
    EVENT_ERRNO,       /* value: ERRNO= */
    EVENT_STOPPING,
    EVENT_MAINPID      /* value: MAINPID= that agreed */
};

#define STARTER_MAX_EVENTS 64
/* at most: the exec pipe, the pid pipe, the helper's pidfd, the app's
 * pidfd, the ready channel; never all at once */
#define STARTER_MAX_WATCH 5

struct starter_event {
    int kind;
    long long value;
    long long count; /* EVENT_IGNORED: how many since the last event */
    char *text; /* malloc'd or NULL */
    size_t len;
};

struct starter_config {
    int has_helper;
    int pid_fd, pid_format;  /* with a helper */
    int ready_mode, ready_fd, access;
    const char *notify_base; /* directory for the notify socket's directory,
                                used when every user can traverse it */
    uid_t app_uid;           /* with a helper: the user the app must run
                                as; (uid_t)-1: not checked */
    int pollfd;              /* create the epoll set (starter_pollfd) now */
};

struct starter {
    struct starter_config cfg;
    int state, code, err;
    char message[320];
    char file[96];           /* what was spawned, for messages */

    int watch[STARTER_MAX_WATCH]; /* the descriptors to wait on */
    int nwatch;
    int epoll_fd;            /* -1 until starter_pollfd */
    int exec_fd;             /* -1 where the exec's verdict came by memory */
    int pid_rd, pid_wr;      /* pid channel */
    int ready_rd, ready_wr;  /* fd protocol */
    struct notify_channel notify;

    struct process spawned;  /* the direct child: the helper, or the app */
    struct process app;      /* the app when there is a helper */
    unsigned long long spawned_start;

    int exec_watched;
    int adopting;            /* holds an adoption window (process.h) */
    int fresh;               /* spawned, not stepped yet */
    int exec_done, pid_known, pid_eof, helper_done, helper_status;
    int ready_seen, ready_eof, app_dead;
    struct pid_reader pid_reader;
    struct ready_line *line; /* fd protocol only: 4 KiB, allocated when used */

    long long ignored;       /* messages refused since the last event */
    pid_t ignored_pid;       /* the last refused sender */
    const char *ignored_what;

    char *status;            /* the latest STATUS=, malloc'd */
    size_t status_len;
    int app_errno;           /* ERRNO=, 0 when none */

    struct starter_event *events; /* malloc'd, cap_events long */
    int nevents, cap_events, dropped_events;
};

/* Preset every field so starter_close is safe at any point. */
void starter_init(struct starter *s);

/* Create the channels. Returns 0 or an errno value (s->message says what). */
int starter_prepare(struct starter *s, const struct starter_config *cfg);

/* Spawn req (its fds are filled in here from the channels). Returns 0 or an
 * errno value; either way s->state says what happened (FAILED/spawn). */
int starter_spawn(struct starter *s, struct spawn_request *req);

/* Advance without blocking. Returns s->state. */
int starter_step(struct starter *s);

/* The descriptors to wait on until the next step (any readable one means
 * step), into fds[STARTER_MAX_WATCH]; returns how many. */
int starter_fds(const struct starter *s, int *fds);

/* One descriptor for all of them (an epoll set, made on first call and
 * kept up to date from then on), or -errno. */
int starter_pollfd(struct starter *s);

/* Take p's pidfd out of the wait set: the caller is taking p over. */
void starter_forget(struct starter *s, struct process *p);

/* The app's process handle (the spawned child when there is no helper). */
struct process *starter_app(struct starter *s);

/* After a failure in the pid phase: read a pid record that arrived
 * meanwhile, so the app it names can be terminated too. Leaves the verdict
 * unchanged. */
void starter_salvage_pid(struct starter *s);

/* Seconds between probes while a watched process has no pidfd, or 0 when
 * every wait is on the descriptors. */
double starter_poll_interval(const struct starter *s);

/* 1 while the pid is not yet known or the helper not yet reaped. */
int starter_in_pid_phase(const struct starter *s);

/* Free the event queue's texts and empty it. */
void starter_clear_events(struct starter *s);

/* Release every descriptor and the notify directory. Processes still held
 * are released too (children are reaped later, never signalled here).
 * Idempotent. */
void starter_close(struct starter *s);

const char *starter_code_name(int code);

#endif
