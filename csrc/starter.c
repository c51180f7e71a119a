/*
 * starter.c: one start as a non-blocking state machine (see starter.h).
 */
#include "starter.h"
#include "channel.h"
#include "children.h"
#include "notify.h"
#include "notifysock.h"
#include "pidrec.h"
#include "procfs.h"
#include "readyline.h"
#include "spawn.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* At most this many reads per step and channel, so a flood of datagrams or
 * of foreign writes cannot stall the caller's loop. */
#define STARTER_READS_PER_STEP 64
/* Events queued between two reads of the queue: a step has one or two, a
 * flood of datagrams up to the reads above. */
#define STARTER_MAX_EVENTS 64
/* the most events one notify datagram adds (mainpid, status, errno,
 * extend, stopping, watchdog_usec) */
#define NOTIFY_EVENTS_MAX 6

struct queued_event {
    int kind;
    long long value, count;
    char *text; /* malloc'd or NULL */
    size_t len;
};

/* A forking daemon's pid file (ready = forks): what a start needs of it,
 * made only for the starts that have one. */
struct pid_file {
    struct timespec since;    /* when the start began (CLOCK_REALTIME_COARSE) */
    long long bare;           /* a pid the file held with no newline after
                                 it, at the last look (0: none) */
    struct timespec bare_mtim; /* and the file's time then */
    int before;               /* what was there as the start began: */
#define PID_FILE_UNKNOWN 0    /* could not be told (no descriptor): a file
                                 older than since was left by an earlier run */
#define PID_FILE_NONE 1       /* nothing: any file there now is new */
#define PID_FILE_ONE 2        /* a file, which counts once replaced or
                                 modified, whatever its time says (a clock
                                 stepped back since) */
    dev_t dev;
    ino_t ino;
    struct timespec mtim;
    char path[];
};

static void note_pid_file_before(struct pid_file *pf);

struct starter {
    /* what starter_begin was told and is needed after it */
    int has_helper, pid_fd, pid_format, ready, ready_fd, access;
    uid_t app_uid;
    char *signal_helper;      /* with app_uid: argv[0], appstart-helper, for
                                 a SIGKILL the launcher's own is refused
                                 (starter_abandon); malloc'd, or NULL */
    struct tree *tree;        /* kill_mode group or cgroup; NULL: process */

    int phase, code, err;
    char *message;            /* malloc'd once FAILED (NULL: out of memory) */
    char file[96];            /* what was spawned, for messages */

    int watch[STARTER_MAX_WATCH]; /* the descriptors to wait on */
    int caller_fd[STARTER_MAX_CALLER]; /* of them, the caller's (starter_watch) */
    int ncaller;
    int nwatch;
    int epoll_fd;             /* -1 until starter_pollfd */
    int unpolled;             /* the set lacks one of watch[] (watch_fd) */
    int exec_fd;              /* -1 where the exec's verdict came by memory */
    int pid_rd, ready_rd;     /* the launcher's ends of the channels */
    int pid_rest;             /* the pid channel once its record is read,
                                 held open, not watched, until the helper
                                 has been reaped: a helper that writes
                                 more after it is not killed by SIGPIPE
                                 (or not, by how soon it writes) */
    int error_rd;             /* the helper's error pipe (not waited on:
                                 read once the helper has ended), or -1 */
    struct pid_file *pid_file; /* see starter_config; malloc'd, NULL when none */
    struct notify_socket *notify; /* notify protocol: malloc'd */

    struct process spawned;   /* the direct child: the helper, or the app */
    struct process app;       /* the app when there is a helper */
    unsigned long long spawned_start; /* its start time (/proc), 0 when it
                                 could not be read (out of descriptors) */
    unsigned long long spawned_floor; /* the clock just before its fork, in
                                 clock ticks since boot as /proc's start
                                 times: no older than that (0: unknown) */
    unsigned long long app_start; /* with a helper: the app's start time,
                                 read as verify_pid proved it */
    struct spawn_failure exec_failure; /* REAP_EXEC: what failed */
    int adopting;             /* holds an adoption window (children.h) */
    long long unchecked_pid;  /* a pid reported but not checked yet: the
                                 launcher ran out of descriptors or memory
                                 (unchecked_err) checking it; checked again
                                 at each step (probed) */
    int unchecked_err;
    int stopping;             /* starter_stop was called: the start is
                                 being ended, whatever its phase */
    int stop_signal;          /* the last signal a stop sent the app, or 0 */
    int orphan_exiting;       /* the last starter_stopped waited for a
                                 process adopted and abandoned, on its way
                                 out: looked at again, not waited on */

    /* facts of the handshake, besides the phase */
    int fresh;                /* see starter_fresh */
    int helper_done, helper_status;
    int helper_termed;        /* appstart-helper has had its SIGTERM
                                 (or SIGUSR1) */
    int app_quiet;            /* the last starter_wait saw the app's pidfd
                                 not readable: it has not ended since */
    int pid_eof;
    int ready_seen, ready_eof, app_dead;
    double eof_since;         /* a channel closed by a process /proc could
                                 not say was running or exiting (not
                                 mounted): since when (see may_be_exiting) */
    int app_stopping; /* it said STOPPING=1: a READY=1 from then on is not believed */
    int reads_cut;            /* see starter_reads_cut */
    struct pid_reader pid_reader;
    struct ready_line line;   /* fd protocol: grows with what comes */

    char *held;               /* a message whose sender could not be
                                 checked yet (admitted), malloc'd */
    size_t held_len;
    int held_trunc;
    pid_t held_sender;
    int held_err;             /* why its descent could not be read */
    int held_fd;              /* its channel, out of the waits meanwhile */
    char *status;             /* the latest STATUS=, malloc'd */
    size_t status_len;
    int app_errno;            /* ERRNO=, 0 when none */

    long long ignored;        /* messages refused since the last event */
    pid_t ignored_pid;        /* the last refused sender */
    const char *ignored_what;

    struct queued_event *events;
    int nevents, cap_events, next_event, dropped_events;
    char *taken_text;         /* the text starter_next_event handed out */
};

size_t starter_size(void)
{
    return sizeof(struct starter);
}

const char *starter_code_name(int code)
{
    switch (code) {
    case STARTER_SPAWN: return "spawn";
    case STARTER_HELPER: return "helper";
    case STARTER_BAD_PID: return "bad_pid";
    case STARTER_DIED: return "died";
    case STARTER_PID_MISMATCH: return "pid_mismatch";
    case STARTER_READY_CLOSED: return "ready_closed";
    case STARTER_PROTOCOL: return "protocol";
    default: return "none";
    }
}

const char *starter_phase_name(int phase)
{
    switch (phase) {
    case STARTER_IDLE: return "idle";
    case STARTER_AWAIT_EXEC: return "exec";
    case STARTER_REAP_EXEC: return "reap";
    case STARTER_AWAIT_PID: return "pid";
    case STARTER_AWAIT_READY: return "ready";
    case STARTER_READY: return "done";
    default: return "failed";
    }
}

void starter_init(struct starter *s)
{
    memset(s, 0, sizeof *s);
    s->epoll_fd = s->exec_fd = s->pid_rd = s->ready_rd = s->error_rd = s->pid_rest = -1;
    s->ncaller = 0;
    s->spawned = (struct process)PROCESS_NONE;
    s->app = (struct process)PROCESS_NONE;
    s->app_uid = (uid_t)-1;
}

static int notify_fd(const struct starter *s)
{
    return s->notify ? s->notify->fd : -1;
}

/* Now, in clock ticks since boot, rounded down as /proc's start times
 * are (on the same clock, a time namespace's offset included): no process
 * forked after this has an earlier start time. 0 when it cannot be told. */
static unsigned long long boot_ticks(void)
{
    struct timespec ts;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
        return 0;
    return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
           (unsigned long long)ts.tv_nsec * (unsigned long long)hz / 1000000000ull;
}

/* What the process started is known to be no older than: its start time,
 * or where that could not be read the clock before its fork (0 when
 * neither is known) */
static unsigned long long spawned_min_start(const struct starter *s)
{
    return s->spawned_start ? s->spawned_start : s->spawned_floor;
}

static struct process *app_of(struct starter *s)
{
    return s->has_helper ? &s->app : &s->spawned;
}

/* The app's pid, once it is known (verified, with a helper; without one,
 * the process spawned, even while its exec's verdict is on its way: it is
 * the one to stop), else 0. */
static pid_t known_app_pid(const struct starter *s)
{
    return s->has_helper ? s->app.pid : s->spawned.pid;
}

/* ---- the descriptors to wait on ---- */

int starter_epoll_fault;

/* The list is short; an epoll set mirrors it only once a caller asked for
 * a single descriptor (starter_pollfd). */
static int epoll_add(int epfd, int fd)
{
    if (starter_epoll_fault)
        return starter_epoll_fault;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
}

/* A descriptor the epoll set cannot take (ENOMEM, or ENOSPC: the kernel's
 * limit on watches) is in the list all the same, and the start is probed
 * (starter_needs_probing) until the set has taken it (repoll): never
 * failed for it, which would leave a proven app running unsignalled. */
static int watch_fd(struct starter *s, int fd)
{
    if (fd < 0)
        return 0;
    if (s->nwatch == STARTER_MAX_WATCH)
        return EOVERFLOW; /* a bug: never this many at once */
    if (s->epoll_fd >= 0 && epoll_add(s->epoll_fd, fd) != 0)
        s->unpolled = 1;
    s->watch[s->nwatch++] = fd;
    return 0;
}

/* Offer the epoll set again what it could not take. */
static void repoll(struct starter *s)
{
    if (!s->unpolled || s->epoll_fd < 0)
        return;
    s->unpolled = 0;
    for (int i = 0; i < s->nwatch; i++) {
        int err = epoll_add(s->epoll_fd, s->watch[i]);
        if (err && err != EEXIST)
            s->unpolled = 1;
    }
}

/* Take fd out of the set before it is closed or handed over: a forked child
 * that still holds a copy until its exec would otherwise keep an epoll
 * registration alive. */
static void unwatch_fd(struct starter *s, int fd)
{
    for (int i = 0; fd >= 0 && i < s->nwatch; i++)
        if (s->watch[i] == fd) {
            s->watch[i] = s->watch[--s->nwatch];
            if (s->epoll_fd >= 0)
                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            return;
        }
}

static void drop_fd(struct starter *s, int *fd)
{
    unwatch_fd(s, *fd);
    sys_close(fd);
}

/* (a channel the app writes to: what is still queued on it is read first,
 * so that no descriptor it passes is closed by the kernel with a socket's
 * lingering on: see channel_close) */
static void drop_channel(struct starter *s, int *fd)
{
    unwatch_fd(s, *fd);
    channel_close(fd, SOCK_STREAM);
}

/* Has p ended? Its pidfd leaves the set once it has. */
static int check_process(struct starter *s, struct process *p)
{
    int fd = p->pidfd;
    if (process_has_ended(p) != 1)
        return 0;
    unwatch_fd(s, fd);
    return 1;
}

int starter_pollfd(struct starter *s)
{
    if (s->epoll_fd >= 0)
        return s->epoll_fd;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    for (int i = 0; i < s->nwatch; i++)
        if (epoll_add(epfd, s->watch[i]) != 0)
            s->unpolled = 1; /* probed until it has taken them (watch_fd) */
    s->epoll_fd = epfd;
    return epfd;
}

int starter_pollfd_made(const struct starter *s)
{
    return s->epoll_fd;
}

int starter_watch(struct starter *s, int fd)
{
    if (fd < 0)
        return EBADF;
    for (int i = 0; i < s->ncaller; i++)
        if (s->caller_fd[i] == fd)
            return EEXIST;
    if (s->ncaller == STARTER_MAX_CALLER)
        return EBUSY;
    int err = watch_fd(s, fd);
    if (!err)
        s->caller_fd[s->ncaller++] = fd;
    return err;
}

void starter_unwatch(struct starter *s, int fd)
{
    for (int i = 0; i < s->ncaller; i++)
        if (s->caller_fd[i] == fd) {
            unwatch_fd(s, fd);
            s->caller_fd[i] = s->caller_fd[--s->ncaller];
            return;
        }
}

int starter_wait(struct starter *s, double timeout)
{
    unsigned ready = 0;
    int r = sys_poll_readable(s->watch, s->nwatch, timeout, &ready);
    int app_fd = app_of(s)->pidfd;
    s->app_quiet = 0;
    for (int i = 0; r > 0 && app_fd >= 0 && i < s->nwatch; i++)
        if (s->watch[i] == app_fd)
            s->app_quiet = !(ready & (1u << i));
    return r;
}

int starter_fds(const struct starter *s, int *fds)
{
    memcpy(fds, s->watch, (size_t)s->nwatch * sizeof *fds);
    return s->nwatch;
}

/* ---- failure and events ---- */

static int fail(struct starter *s, int code, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The start failed: the channels are of no more use (nor to be waited
 * on); what the processes do next is for starter_stop and _stopped. */
static int fail(struct starter *s, int code, int err, const char *fmt, ...)
{
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(s->message);
    s->message = strdup(text);
    s->phase = STARTER_FAILED;
    s->code = code;
    s->err = err;
    drop_fd(s, &s->exec_fd);
    unwatch_fd(s, s->pid_rd);   /* kept: a pid on its way is salvaged */
    drop_channel(s, &s->ready_rd);
    unwatch_fd(s, notify_fd(s));
    return s->phase;
}

static void push_event(struct starter *s, int kind, long long value, long long count,
                       const char *text, size_t len)
{
    if (s->nevents == s->cap_events) {
        int cap = s->cap_events ? 2 * s->cap_events : 4;
        struct queued_event *grown =
            cap <= STARTER_MAX_EVENTS ? realloc(s->events, (size_t)cap * sizeof *grown)
                                      : NULL;
        if (!grown) {
            s->dropped_events++;
            return;
        }
        s->events = grown;
        s->cap_events = cap;
    }
    struct queued_event *e = &s->events[s->nevents];
    e->kind = kind;
    e->value = value;
    e->count = count;
    e->text = NULL;
    e->len = 0;
    if (text) {
        e->text = malloc(len ? len : 1);
        if (!e->text) {
            s->dropped_events++;
            return;
        }
        memcpy(e->text, text, len);
        e->len = len;
    }
    s->nevents++;
}

int starter_reads_cut(const struct starter *s)
{
    return s->reads_cut;
}

int starter_has_events(const struct starter *s)
{
    return s->next_event < s->nevents || s->dropped_events > 0;
}

int starter_next_event(struct starter *s, struct starter_event *out)
{
    free(s->taken_text);
    s->taken_text = NULL;
    if (s->next_event == s->nevents) {
        s->nevents = s->next_event = 0;
        if (s->dropped_events == 0)
            return 0;
        *out = (struct starter_event){ STARTER_EVENT_DROPPED, 0, s->dropped_events, NULL, 0 };
        s->dropped_events = 0;
        return 1;
    }
    struct queued_event *e = &s->events[s->next_event++];
    *out = (struct starter_event){ e->kind, e->value, e->count, e->text, e->len };
    s->taken_text = e->text; /* freed at the next call */
    return 1;
}

/* Refused messages are counted, and reported as one event per step. */
static void refuse(struct starter *s, pid_t sender, const char *what)
{
    s->ignored++;
    s->ignored_pid = sender;
    s->ignored_what = what;
}

static void report_refused(struct starter *s)
{
    if (s->ignored == 0)
        return;
    push_event(s, STARTER_EVENT_IGNORED, s->ignored_pid, s->ignored,
               s->ignored_what, strlen(s->ignored_what));
    s->ignored = 0;
}

static void describe_end(const struct process *p, char *buf, size_t len)
{
    if (p->end == PROCESS_EXITED)
        snprintf(buf, len, "exited with code %d", p->code);
    else if (p->end == PROCESS_SIGNALED)
        snprintf(buf, len, "was killed by signal %d", p->code);
    else
        snprintf(buf, len, "exited");
}

/* ---- begin: channels, stdio, environment, spawn ---- */

/* A stdio file: its directory reached by a walk no user but root and the
 * launcher can redirect (sys_open_parent_safely), the file itself never
 * through a symbolic link (O_NOFOLLOW), a regular file only with one link
 * and, in a sticky directory others can write (/tmp), only one of root's,
 * the launcher's, the directory owner's or app_uid's ((uid_t)-1: none),
 * never a directory, and opened without blocking (a FIFO with no reader, a
 * serial line waiting for its carrier would hold the launcher): a FIFO to
 * write needs its reader already. The app gets it blocking, as stdio is.
 * Opened in the launcher, before the spawn. 0, or an errno value and *why
 * when a rule (not the system) refused. */
static int open_stdio(const char *how, int fd, uid_t app_uid, int *out, const char **why)
{
    *out = -1;
    *why = NULL;
    if (!how || strcmp(how, "inherit") == 0)
        return 0;
    int null = strcmp(how, "null") == 0;
    const char *path = null ? "/dev/null" : how;
    const char *name = path;
    int flags = fd == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND);
    int r, dfd = AT_FDCWD;
    if (*path == '\0')
        return ENOENT;
    /* (/dev/null is root's: no walk for it) */
    if (!null && (r = sys_open_parent_safely(path, &dfd, &name, why)))
        return r;
    if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        sys_close(&dfd);
        return EISDIR;
    }
    do
        r = openat(dfd, name, flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0666);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int err = errno;
        struct stat fifo;
        /* (ENXIO is also a device with nothing behind it, a socket) */
        if (err == ENXIO && fstatat(dfd, name, &fifo, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISFIFO(fifo.st_mode))
                *why = "a FIFO with no reader (it would block the launcher)";
            else if (S_ISSOCK(fifo.st_mode))
                *why = "a socket (it cannot be opened as a file)";
        }
        sys_close(&dfd);
        return err;
    }
    struct stat st;
    int err = 0, fl;
    if (fstat(r, &st) != 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    else if (S_ISREG(st.st_mode) && st.st_nlink != 1)
        err = EMLINK;
    else if ((err = sys_foreign_in_sticky_dir(dfd, &st, app_uid)))
        *why = err == EPERM ? "another user's file in a sticky directory others can write (as /tmp)" : NULL;
    else if (fd == 0 && (err = sys_unreadable_moved_in(dfd, &st, app_uid)))
        *why = err == EACCES ? "a file the app's user cannot read, in a directory a user other than root can change"
                               " (that user may have moved it there)"
                             : NULL;
    else if ((fl = fcntl(r, F_GETFL)) < 0 || fcntl(r, F_SETFL, fl & ~O_NONBLOCK) < 0)
        err = errno;
    sys_close(&dfd);
    if (err) {
        sys_close(&r);
        return err;
    }
    *out = r;
    return 0;
}

/* Why open_stdio refused, in the words of its rules. */
static const char *stdio_why(int err, const char *why)
{
    if (why)
        return why;
    switch (err) {
    case ELOOP: return "it is a symbolic link (never followed)";
    case EMLINK: return "it has more than one link (a hard link is never written through)";
    default: return strerror(err);
    }
}

/* The variables of the notify protocol, which are the launcher's to set:
 * inherited ones would let the app notify (or be watched by) whoever
 * started the launcher. */
static int launchers_own(const char *var)
{
    /* the first letter first: a start passes every variable through here */
    if (var[0] != 'N' && var[0] != 'W')
        return 0;
    return strncmp(var, "NOTIFY_SOCKET=", 14) == 0 || strncmp(var, "WATCHDOG_USEC=", 14) == 0 ||
           strncmp(var, "WATCHDOG_PID=", 13) == 0;
}

/* The child's environment: env (or the launcher's) without the notify
 * protocol's variables, plus this start's own: NOTIFY_SOCKET=, and for a
 * watchdog WATCHDOG_USEC= and (where the process spawned is the app)
 * WATCHDOG_PID=, whose digits the child writes (*pid_digits); encoded
 * (appstart-helper's --encoded-env) for a helper that runs as root
 * before it becomes the app's user. All in one allocation (*vars), freed
 * by the caller. */
static char **child_environment(char *const *env, const char *notify_path,
                                unsigned long long watchdog_usec, int with_pid, int encode,
                                char **vars, char **pid_digits)
{
    if (!env)
        env = environ;
    size_t n = 0;
    while (env[n])
        n++;
    char **out = malloc((n + 4) * sizeof *out);
    size_t room = (notify_path ? strlen(notify_path) + 16 : 0) + (watchdog_usec ? 80 : 0);
    *vars = room ? malloc(room) : NULL;
    if (!out || (room && !*vars)) {
        free(out);
        free(*vars);
        *vars = NULL;
        return NULL;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!launchers_own(env[i]))
            out[kept++] = env[i];
    char *at = *vars;
    if (notify_path) {
        out[kept++] = at;
        at += sprintf(at, "NOTIFY_SOCKET=%s", notify_path) + 1;
    }
    if (watchdog_usec) {
        out[kept++] = at;
        at += sprintf(at, "WATCHDOG_USEC=%llu", watchdog_usec) + 1;
        if (with_pid) {
            out[kept++] = at;
            *pid_digits = at + sprintf(at, "WATCHDOG_PID=");
            (*pid_digits)[0] = '\0'; /* the child writes its pid there */
        }
    }
    out[kept] = NULL;
    if (encode) {
        /* each name after ENCODED_ENV_PREFIX: the helper's own loader and
         * C library see none of the app's variables (it takes the
         * prefix off for the app) */
        size_t plen = strlen(ENCODED_ENV_PREFIX), size = 0;
        for (size_t i = 0; i < kept; i++)
            size += plen + strlen(out[i]) + 1;
        char *block = malloc(size ? size : 1);
        if (!block) {
            free(out);
            free(*vars);
            *vars = NULL;
            return NULL;
        }
        at = block;
        for (size_t i = 0; i < kept; i++) {
            char *entry = at;
            at += sprintf(at, "%s%s", ENCODED_ENV_PREFIX, out[i]) + 1;
            out[i] = entry;
        }
        free(*vars);
        *vars = block;
    }
    return out;
}

static int start_ready_phase(struct starter *s);

/* The start fails: f says which step of the child failed and why. */
static int spawn_failed(struct starter *s, const struct spawn_failure *f)
{
    if (f->step == SPAWN_STEP_CGROUP && s->tree)
        /* (the directory was made: joining it failed, so name it; a move
         * takes write access to cgroup.procs of the cgroup above both the
         * launcher's and this one, which an unprivileged launcher outside
         * a subtree delegated to it lacks) */
        return fail(s, STARTER_SPAWN, f->err, "cannot start %s: cannot join the cgroup %s: %s%s",
                    s->file, s->tree->cg.path, strerror(f->err),
                    f->err == EACCES ? " (moving a process takes write access to cgroup.procs of "
                                       "the cgroup above both the launcher's and the new one: "
                                       "a cgroup_parent delegated to the launcher's user, with "
                                       "the launcher inside it)"
                                     : "");
    return fail(s, STARTER_SPAWN, f->err, "cannot %s %s: %s", spawn_step_name(f->step), s->file,
                strerror(f->err));
}

/* The exec failed: its child is exiting with nothing to report but that.
 * Where vfork shares memory it is a zombie by now; else it is reaped when
 * it has got there, without a wait that blocks. */
static int exec_failed(struct starter *s, const struct spawn_failure *f)
{
    s->exec_failure = *f;
    if (check_process(s, &s->spawned)) {
        process_release(&s->spawned);
        return spawn_failed(s, f);
    }
    s->phase = STARTER_REAP_EXEC;
    return s->phase;
}

/* The exec worked: without a helper, the app's pid is known now. */
static int exec_succeeded(struct starter *s, int fresh)
{
    if (s->has_helper) {
        s->phase = STARTER_AWAIT_PID;
        return s->phase;
    }
    s->helper_done = 1;
    if (start_ready_phase(s) != STARTER_AWAIT_READY)
        return s->phase;
    s->fresh = fresh && s->ready != STARTER_READY_NONE && s->spawned.pidfd >= 0;
    return s->phase;
}

int starter_begin(struct starter *s, const struct starter_config *cfg)
{
    s->has_helper = cfg->has_helper;
    s->pid_fd = cfg->pid_fd;
    s->pid_format = cfg->pid_format;
    s->ready = cfg->ready;
    s->ready_fd = cfg->ready_fd;
    s->access = cfg->access;
    s->app_uid = cfg->app_uid;
    /* (a long one loses its middle, as the helper's messages cut it:
     * the file's own name stays) */
    size_t flen = strlen(cfg->argv[0]);
    if (flen < sizeof s->file) {
        memcpy(s->file, cfg->argv[0], flen + 1);
    } else {
        size_t head = 40, tail = sizeof s->file - 1 - head - 3;
        memcpy(s->file, cfg->argv[0], head);
        memcpy(s->file + head, "...", 3);
        memcpy(s->file + head + 3, cfg->argv[0] + flen - tail, tail + 1);
    }
    /* (out of memory: a dropped start's app of another user is then left
     * running, as without a helper that may signal it) */
    if (s->has_helper && s->app_uid != (uid_t)-1 && strchr(cfg->argv[0], '/'))
        s->signal_helper = strdup(cfg->argv[0]);

    int stdio[3] = { -1, -1, -1 }, pid_wr = -1, ready_wr = -1, error_wr = -1, cgroup_fd = -1, err = 0;
    char **envp = NULL, *env_vars = NULL, *pid_digits = NULL;
    tree_sweep_deferred();
    if (cfg->kill_mode != TREE_PROCESS) {
        char why[512];
        s->tree = tree_new(cfg->kill_mode, cfg->cgroup_parent, cfg->app_uid, &err, why, sizeof why);
        if (!s->tree) {
            fail(s, STARTER_SPAWN, err, "cannot start %s: %s", s->file, why);
            goto done;
        }
        if (cfg->kill_mode == TREE_CGROUP && (cgroup_fd = cgroup_procs_fd(&s->tree->cg)) < 0) {
            err = -cgroup_fd;
            fail(s, STARTER_SPAWN, err, "cannot start %s: cannot open cgroup.procs of %s: %s",
                 s->file, s->tree->cg.path, strerror(err));
            goto done;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (cfg->stdio_fd[i] >= 0) {
            if ((stdio[i] = fcntl(cfg->stdio_fd[i], F_DUPFD_CLOEXEC, 3)) < 0) {
                err = errno;
                fail(s, STARTER_SPAWN, err, "cannot start %s: %s", s->file, strerror(err));
                goto done;
            }
            continue;
        }
        const char *why;
        if ((err = open_stdio(cfg->stdio[i], i, cfg->app_uid, &stdio[i], &why))) {
            fail(s, STARTER_SPAWN, err, "cannot open %s for %s: %s", cfg->stdio[i],
                 i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr", stdio_why(err, why));
            goto done;
        }
        /* no terminal for an app of another user, controlling or not: it
         * could read what is typed there (appstart-helper refuses it too) */
        if (cfg->app_uid != (uid_t)-1 && cfg->app_uid != getuid() && isatty(stdio[i] >= 0 ? stdio[i] : i)) {
            const char *name = i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr";
            fail(s, STARTER_SPAWN, EPERM,
                 "the app's %s would be a terminal, which an app of another user never gets"
                 " (it could read what is typed there): %s = \"%s\" or a file",
                 name, name, i == 0 ? "null" : "capture\", \"null");
            goto done;
        }
    }
    if (cfg->pid_file) {
        size_t n = strlen(cfg->pid_file);
        if (n == 0 || n >= PATH_MAX) {
            fail(s, STARTER_SPAWN, ENAMETOOLONG, "pid file: %s", strerror(ENAMETOOLONG));
            goto done;
        }
        if (!(s->pid_file = calloc(1, sizeof *s->pid_file + n + 1))) {
            fail(s, STARTER_SPAWN, ENOMEM, "pid file: %s", strerror(ENOMEM));
            goto done;
        }
        memcpy(s->pid_file->path, cfg->pid_file, n + 1);
        note_pid_file_before(s->pid_file);
    }
    if (s->has_helper && !s->pid_file) {
        int p[2];
        if ((err = sys_pipe(p, 1))) {
            fail(s, STARTER_SPAWN, err, "cannot create channels: %s", strerror(err));
            goto done;
        }
        s->pid_rd = p[0];
        pid_wr = p[1];
        pid_reader_init(&s->pid_reader, s->pid_format);
        if (cfg->error_fd > 2) {
            if ((err = sys_pipe(p, 1))) {
                fail(s, STARTER_SPAWN, err, "cannot create channels: %s", strerror(err));
                goto done;
            }
            s->error_rd = p[0];
            error_wr = p[1];
        }
    }
    if (s->ready == STARTER_READY_FD) {
        int p[2];
        if ((err = channel_ready_pair(p))) {
            fail(s, STARTER_SPAWN, err, "cannot create channels: %s", strerror(err));
            goto done;
        }
        s->ready_rd = p[0];
        ready_wr = p[1];
    } else if (s->ready == STARTER_READY_NOTIFY) {
        s->notify = malloc(sizeof *s->notify);
        char tried[64] = "";
        err = s->notify ? notify_socket_open(s->notify, cfg->notify_base, tried, sizeof tried) : ENOMEM;
        if (err) {
            free(s->notify);
            s->notify = NULL;
            fail(s, STARTER_SPAWN, err, "cannot create the notify socket%s%s: %s", *tried ? " in " : "", tried,
                 strerror(err));
            goto done;
        }
    }
    envp = child_environment(cfg->env, s->notify ? s->notify->path : NULL, cfg->watchdog_usec,
                             !s->has_helper, s->has_helper && s->app_uid != (uid_t)-1, &env_vars,
                             &pid_digits);
    if (!envp) {
        fail(s, STARTER_SPAWN, ENOMEM, "cannot start %s: %s", s->file, strerror(ENOMEM));
        goto done;
    }
    /* a helper's app must be proven to descend from it, even once the
     * helper has exited: the launcher adopts what it leaves */
    if (s->has_helper) {
        if ((err = children_adopt_begin())) {
            fail(s, STARTER_SPAWN, err, "cannot become a child subreaper: %s", strerror(err));
            goto done;
        }
        s->adopting = 1;
    }

    struct spawn_fd fds[4];
    int nfds = 0;
    if (cfg->pass_fd >= 0)
        fds[nfds++] = (struct spawn_fd){ 3, cfg->pass_fd };
    if (pid_wr >= 0)
        fds[nfds++] = (struct spawn_fd){ s->pid_fd, pid_wr };
    if (ready_wr >= 0)
        fds[nfds++] = (struct spawn_fd){ s->ready_fd, ready_wr };
    if (error_wr >= 0)
        fds[nfds++] = (struct spawn_fd){ cfg->error_fd, error_wr };
    struct spawn_request req = {
        .file = cfg->argv[0], .search_path = cfg->search_path, .argv = cfg->argv,
        .envp = envp, .cwd = cfg->cwd, .stdio = { stdio[0], stdio[1], stdio[2] },
        .fds = fds, .nfds = nfds, .subreaper = s->has_helper,
        /* a helper (or a forking daemon) leads a session of its own, so
         * that nothing it forks can be in the launcher's: what the
         * launcher adopts from it is told from the launcher's own
         * children by that (verify_pid, children_adopt_end) */
        .new_session = cfg->kill_mode == TREE_GROUP || s->has_helper || cfg->new_session, .cgroup_fd = cgroup_fd,
        .pid_digits = pid_digits,
    };
    pid_t pid;
    struct spawn_failure failure;
    /* a bound that needs no descriptor, for when its start time cannot be
     * read after the fork (verify_pid, starter_take_notify) */
    s->spawned_floor = boot_ticks();
    err = spawn_start(&req, &pid, &s->exec_fd, &failure);
    if (err) {
        fail(s, STARTER_SPAWN, err, "cannot start %s: %s", s->file, strerror(err));
        goto done;
    }
    /* an unreaped child cannot vanish, so this only fails for lack of
     * descriptors; the child is then watched by probing (and is one of
     * the launcher's own all the same: no adoption takes it) */
    if (process_open(&s->spawned, pid, 1) != 0) {
        s->spawned.pid = pid;
        s->spawned.is_child = 1;
        children_add(pid);
    }
    children_spawned(pid);
    /* what is adopted in its session or group, once it is gone too, is
     * its orphan, never another start's daemon (others_group) */
    if (req.new_session)
        children_add_leader(pid);
    /* (out of descriptors, 0: what a helper reports is checked against
     * it once it can be read, verify_pid) */
    if (s->has_helper || s->tree) {
        struct procfs_stat st;
        if (procfs_stat(pid, &st) == 0)
            s->spawned_start = st.start_time;
    }
    /* the group a stop reaches: the one the process started leads (with
     * a helper, until the app's pid is known and its group with it) */
    if (s->tree && s->tree->mode == TREE_GROUP)
        tree_set_led_group(s->tree, pid, s->spawned_start);
    /* its end read, its reap left until it is let go of: a group's leader
     * (tree.h), and a notify app, whose socket's last datagrams are read
     * while its zombie keeps its number, which a sender is known by
     * (reaped first, a process that took the number, sent and was gone
     * before that read could not be told from the app) */
    if ((s->tree && s->tree->mode == TREE_GROUP) || s->ready == STARTER_READY_NOTIFY)
        s->spawned.hold = !s->has_helper;
    if ((err = watch_fd(s, s->spawned.pidfd)) || (err = watch_fd(s, s->pid_rd)) ||
        (err = watch_fd(s, s->exec_fd))) {
        fail(s, STARTER_SPAWN, err, "cannot watch %s: %s", s->file, strerror(err));
        goto done;
    }
    if (s->exec_fd >= 0)
        s->phase = STARTER_AWAIT_EXEC;
    else if (failure.step)
        exec_failed(s, &failure);
    else
        exec_succeeded(s, 1);
done:
    /* the child's ends are the child's now: the launcher must not hold
     * them, or it would never see end of file on them */
    sys_close(&pid_wr);
    sys_close(&ready_wr);
    sys_close(&error_wr);
    sys_close(&cgroup_fd);
    for (int i = 0; i < 3; i++)
        sys_close(&stdio[i]);
    free(envp);
    free(env_vars);
    return s->phase;
}

/* ---- the pid ---- */

/* The adoption window closes once the app's pid is known and its helper
 * reaped (or the start is over): an app the helper left is the launcher's
 * child by then, to be reaped by pid with its exit status. One whose
 * parent is a process between it and the helper, adopted and still
 * running (a forking daemon's intermediate, slower to exit than the
 * process started), comes to the launcher when that parent exits: the
 * window is held for it, as a lease, until it has. */
static void finish_adoption(struct starter *s)
{
    if (!s->adopting)
        return;
    s->adopting = 0;
    /* whether the app came is asked through its pidfd (kept past its end
     * until now: verify_pid), or by its start time: its number alone may
     * be another child's of the launcher's, once the helper has reaped
     * the app (process_own_adopted) */
    int came = s->app.pid > 0 ? process_own_adopted(&s->app, s->app_start) : -1;
    if (s->app.keep_pidfd) {
        s->app.keep_pidfd = 0;
        if (s->app.end != PROCESS_RUNNING)
            drop_fd(s, &s->app.pidfd);
    }
    /* (a parent that exited meanwhile: the lease settles at once) */
    if (came == 0 && process_lease(&s->app) == 0)
        return;
    children_adopt_end();
}

/* A helper's pid record not meant for this format: four bytes that read
 * as decimal text are a line, not an int32le (the caller says so, as its
 * user spells the option: starter_result's record_as_line). */
static int record_as_line(const struct starter *s)
{
    if (s->pid_file || s->pid_format != PID_FORMAT_INT32LE || s->pid_reader.len != 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s->pid_reader.buf[i];
        if ((c < '0' || c > '9') && c != '\n')
            return 0;
    }
    return 1;
}

/* Who named the pid, for messages. */
static const char *pid_source(const struct starter *s)
{
    return s->pid_file ? "the pid file named" : "helper reported";
}

/* verify_pid: the checks could not be made (out of descriptors or
 * memory), to be made again at the next step */
#define VERIFY_LATER (-1)

/* The pid cannot be checked now: neither trusted nor refused (a real app
 * refused would be left running, and a pid not proven is never
 * signalled), but checked again at the next step, within the pid
 * deadline. */
static int check_later(struct starter *s, int err, long long v)
{
    process_release(&s->app);
    s->unchecked_pid = v;
    s->unchecked_err = err;
    return VERIFY_LATER;
}

static int bad_pid(struct starter *s, int err, long long v, const char *why)
{
    process_release(&s->app);
    return fail(s, STARTER_BAD_PID, err, "%s pid %lld: %s", pid_source(s), v,
                why ? why : procfs_strerror(err));
}

/* Is pid (st) in the session or process group of another of the
 * launcher's own children (an app it started, not this start's process),
 * or of one that led its own and is gone (a helper reaped, whose app's
 * orphans are in its session still)? Not one pid leads itself: made by
 * it, since it was forked (an orphan in another's session inherited it;
 * that pid named a leader once, gone since, is no matter). */
static int others_group(const struct starter *s, pid_t pid, const struct procfs_stat *st)
{
    pid_t mine = s->spawned.pid;
    return (st->session > 1 && st->session != mine &&
            (children_owns(st->session) || (st->session != pid && children_led(st->session)))) ||
           (st->pgrp > 1 && st->pgrp != mine &&
            (children_owns(st->pgrp) || (st->pgrp != pid && children_led(st->pgrp))));
}

/* The pid truth rules: a live process other than 0, 1, the launcher and the
 * helper, no older than the helper, descended from it, and running as the
 * app's user where one was given. Returns the phase, or VERIFY_LATER. */
static int verify_pid(struct starter *s, long long v)
{
    s->unchecked_pid = 0;
    if (v <= 0 || v > INT_MAX)
        return fail(s, STARTER_BAD_PID, 0, "%s pid %lld: out of range", pid_source(s), v);
    if (v == 1)
        return fail(s, STARTER_BAD_PID, 0, "%s pid 1: init is no app", pid_source(s));
    if (v == (long long)getpid())
        return fail(s, STARTER_BAD_PID, 0, "%s pid %lld: the launcher itself", pid_source(s), v);
    if (v == (long long)s->spawned.pid)
        return fail(s, STARTER_BAD_PID, 0, "%s pid %lld: %s itself", pid_source(s), v,
                    s->pid_file ? "the process started" : "the helper");
    int err = process_open(&s->app, (pid_t)v, 0);
    if (sys_lacks_resources(err))
        return check_later(s, err, v);
    /* a thread's id is no process */
    int thread = procfs_names_a_thread((pid_t)v, err);
    if (thread == 1)
        return bad_pid(s, 0, v, "a thread's id, not a process");
    if (err)
        return bad_pid(s, err, v, NULL);
    if (thread < 0)
        return sys_lacks_resources(-thread) ? check_later(s, -thread, v) : bad_pid(s, -thread, v, NULL);
    struct procfs_stat st;
    if ((err = procfs_stat((pid_t)v, &st)))
        return sys_lacks_resources(err) ? check_later(s, err, v) : bad_pid(s, err, v, NULL);
    if (s->spawned_start == 0 && s->spawned.pid > 0 && s->spawned.end == PROCESS_RUNNING && !s->helper_done) {
        /* not read at the spawn (out of descriptors): read while the
         * process started is not reaped (running, or a zombie: its number
         * is its own still). Once reaped (a forking daemon's started
         * process is, before its pid file is read) what has its number is
         * another's: the clock read before its fork bounds it instead */
        struct procfs_stat helper;
        if ((err = procfs_stat(s->spawned.pid, &helper)) == 0)
            s->spawned_start = helper.start_time;
        else if (sys_lacks_resources(err) && !s->spawned_floor)
            return check_later(s, err, v);
    }
    unsigned long long min_start = spawned_min_start(s);
    if (min_start == 0)
        /* (neither its start time nor the clock could be read) */
        return bad_pid(s, 0, v, s->pid_file ? "the start time of the process started is not known"
                                            : "the start time of the helper is not known");
    if (st.start_time < min_start)
        return bad_pid(s, 0, v, s->pid_file ? "started before the process that was started"
                                            : "started before the helper");
    /* descent: its parent chain reaches the helper while that lives (the
     * helper is a child subreaper: what it orphans stays in its tree), or,
     * once it has exited, the launcher through a process the launcher
     * adopted (not one it started), itself no older than the helper. Once
     * the helper is reaped its pid is free: a chain through a process that
     * took it proves nothing (a forking daemon's started process is reaped
     * before its pid file is read). The helper leads a session of its
     * own: nothing it forks is in the launcher's session, where the
     * launcher's own children (io.popen) are */
    pid_t via;
    int descends = s->helper_done ? 0 : procfs_descent((pid_t)v, s->spawned.pid, NULL);
    if (descends < 0 && !sys_lacks_resources(-descends))
        descends = 0;
    if (descends == 0 && (s->helper_done || procfs_liveness(s->spawned.pid) != PROCFS_RUNNING) &&
        (descends = procfs_descent((pid_t)v, getpid(), &via)) == 1) {
        struct procfs_stat via_st;
        if ((err = procfs_stat(via, &via_st)) && sys_lacks_resources(err))
            return check_later(s, err, v);
        /* nor one in the session or group of another of the launcher's
         * apps (an orphan another app left, adopted in this window too) */
        descends = !children_owns(via) && !err && via_st.start_time >= min_start &&
                   via_st.session != getsid(0) && !others_group(s, via, &via_st);
    }
    if (descends < 0 && sys_lacks_resources(-descends))
        return check_later(s, -descends, v);
    if (descends != 1)
        return bad_pid(s, 0, v, "not a process it started");
    /* with a cgroup of its own, the app is in it: what the start spawned
     * joined it before its exec, and nothing of another start's is there
     * (an orphan the launcher adopted from another app is not) */
    if (s->tree && s->tree->mode == TREE_CGROUP) {
        int in = cgroup_path_holds(s->tree->cg.path, (pid_t)v);
        if (in < 0 && sys_lacks_resources(-in))
            return check_later(s, -in, v);
        if (in != 1)
            return bad_pid(s, in < 0 ? -in : 0, v, in < 0 ? NULL : "not in the start's cgroup");
    }
    if (s->app_uid != (uid_t)-1) {
        /* read last, after the descent: a setuid exec may have changed
         * it while the checks above ran */
        struct procfs_status pst;
        if ((err = procfs_status((pid_t)v, &pst)))
            return sys_lacks_resources(err) ? check_later(s, err, v) : bad_pid(s, err, v, NULL);
        for (int i = 0; i < 4; i++)
            if (pst.uids[i] != s->app_uid) {
                char why[64];
                snprintf(why, sizeof why, "it runs as uid %lu, not %lu",
                         (unsigned long)pst.uids[i], (unsigned long)s->app_uid);
                return bad_pid(s, 0, v, why);
            }
    }
    if ((err = watch_fd(s, s->app.pidfd)))
        return fail(s, STARTER_BAD_PID, err, "cannot watch pid %lld: %s", v, strerror(err));
    /* its end leaves its pidfd open until the adoption window closes:
     * finish_adoption asks through it whether the app came to the
     * launcher, not by the number its end may free */
    s->app.keep_pidfd = s->adopting;
    /* an app that made a session or group of its own: what is adopted in
     * it is its orphan, never another start's daemon */
    if (st.session == (pid_t)v || st.pgrp == (pid_t)v)
        children_add_leader((pid_t)v);
    /* the group a stop reaches is the app's own (it may have made one) */
    if (s->tree && s->tree->mode == TREE_GROUP)
        (void)tree_set_group(s->tree, (pid_t)v, min_start);
    /* (its start time: a number that its end frees is told from the app,
     * starter_take_notify) */
    s->app_start = st.start_time;
    return s->phase;
}

/* The ready channel (and the notify socket) is only read once the app's pid
 * is known, so every message can be checked against it. */
static int start_ready_phase(struct starter *s)
{
    int err = watch_fd(s, s->ready_rd >= 0 ? s->ready_rd : notify_fd(s));
    if (err)
        return fail(s, STARTER_SPAWN, err, "cannot watch the ready channel: %s", strerror(err));
    s->phase = STARTER_AWAIT_READY;
    return s->phase;
}

/* The reported pid v has been checked (verify_pid's verdict): on to the
 * ready phase when it passed. */
static int pid_checked(struct starter *s, long long v, int verdict)
{
    if (verdict == VERIFY_LATER || verdict == STARTER_FAILED)
        return s->phase;
    push_event(s, STARTER_EVENT_PID, v, 1, NULL, 0);
    if (s->helper_done || s->pid_file)
        finish_adoption(s);
    return start_ready_phase(s);
}

/* salvage: the start has failed already; a verified pid only names an app
 * to stop */
static void read_pid_channel(struct starter *s, int salvage)
{
    long long v;
    switch (pid_reader_feed(&s->pid_reader, s->pid_rd, &v)) {
    case PIDREC_READ_DONE:
        unwatch_fd(s, s->pid_rd);
        /* (a helper that has exited writes no more) */
        if (s->helper_done || process_exited_unreaped(&s->spawned)) {
            sys_close(&s->pid_rd);
        } else {
            s->pid_rest = s->pid_rd;
            s->pid_rd = -1;
        }
        if (salvage) {
            (void)verify_pid(s, v);
            return;
        }
        pid_checked(s, v, verify_pid(s, v));
        return;
    case PIDREC_READ_EOF:
        drop_fd(s, &s->pid_rd);
        if (s->pid_reader.len > 0)
            fail(s, STARTER_BAD_PID, 0, "short pid record: %zu of %s", s->pid_reader.len,
                 s->pid_format == PID_FORMAT_LINE ? "a line" : "4 bytes");
        else
            s->pid_eof = 1;
        return;
    case PIDREC_READ_MALFORMED:
        drop_fd(s, &s->pid_rd);
        fail(s, STARTER_BAD_PID, 0, "malformed pid record");
        return;
    case PIDREC_READ_ERROR:
        fail(s, STARTER_HELPER, errno, "cannot read the pid channel: %s", strerror(errno));
        return;
    default:
        return;
    }
}

/* The helper, until it has been reaped: its exit, and a failure when it
 * says it failed. */
static void check_helper(struct starter *s)
{
    if (s->helper_done || !check_process(s, &s->spawned))
        return;
    s->helper_done = 1;
    sys_close(&s->pid_rest);
    s->helper_status = s->spawned.end == PROCESS_EXITED ? s->spawned.code : -s->spawned.code;
    /* (one reaped by another wait has no status to tell: helper_lost) */
    if (s->spawned.end != PROCESS_GONE)
        push_event(s, STARTER_EVENT_HELPER_EXIT, s->helper_status, 1, NULL, 0);
    if (s->phase == STARTER_AWAIT_READY)
        finish_adoption(s);
}

/* Was the helper (or a forking daemon's started process) reaped by
 * another wait of the launcher's process (a waitpid(-1) elsewhere, SIGCHLD
 * ignored since the spawn)? Its exit status, which says whether it did
 * its part, is lost, and its pid is free for another process: the start
 * cannot be told a success. The pid it reported is still read, and
 * checked without it (see verify_pid), so that the app is terminated. */
static int helper_lost(const struct starter *s)
{
    return s->helper_done && s->spawned.end == PROCESS_GONE;
}

#define HELPER_LOST "was reaped by another wait of this process (a waitpid(-1) elsewhere): its exit status is lost"

static int fail_helper_lost(struct starter *s)
{
    return fail(s, STARTER_HELPER, ECHILD, "%s " HELPER_LOST, s->pid_file ? s->file : "helper");
}

/* What is at the pid file's path as the start begins (pid_file.before),
 * looked at as read_pid_file looks: through a walk no other user can
 * redirect, the name itself not followed. */
static void note_pid_file_before(struct pid_file *pf)
{
    /* on the clock of file times */
    clock_gettime(CLOCK_REALTIME_COARSE, &pf->since);
    const char *name, *why;
    int dfd = -1;
    int err = sys_open_parent_safely(pf->path, &dfd, &name, &why);
    struct stat st;
    if (err == ENOENT) {
        pf->before = PID_FILE_NONE;
    } else if (!err && *name) {
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            pf->before = PID_FILE_ONE;
            pf->dev = st.st_dev;
            pf->ino = st.st_ino;
            pf->mtim = st.st_mtim;
        } else if (errno == ENOENT) {
            pf->before = PID_FILE_NONE;
        }
    }
    sys_close(&dfd);
}

/* Is st the pid file an earlier run left (read_pid_file)? */
static int left_before(const struct pid_file *pf, const struct stat *st)
{
    if (pf->before == PID_FILE_ONE)
        return st->st_dev == pf->dev && st->st_ino == pf->ino && st->st_mtim.tv_sec == pf->mtim.tv_sec &&
               st->st_mtim.tv_nsec == pf->mtim.tv_nsec;
    if (pf->before == PID_FILE_NONE)
        return 0;
    return st->st_mtim.tv_sec < pf->since.tv_sec ||
           (st->st_mtim.tv_sec == pf->since.tv_sec && st->st_mtim.tv_nsec < pf->since.tv_nsec);
}

/* The pid in s->pid_file: 0 and *v, EAGAIN while there is none yet (no
 * file or directory, or no full line in it), or an errno value (*why says
 * which rule refused, when one did). The file is the daemon's, and the pid
 * in it is believed only once proven (verify_pid): its directory is
 * reached by a walk no user but root and the launcher can redirect
 * (sys_open_parent_safely; the daemon may make it meanwhile), the file is
 * opened in it without following a symbolic link, must be a regular file,
 * and only its first line is read. Digits with no newline after them (as
 * many daemons write their pid) may be a line still being written: they
 * are taken once a later look finds them, and the file's time, the same. */
static int read_pid_file(struct starter *s, long long *v, const char **why)
{
    const char *name;
    int dfd = -1, fd = -1;
    struct pid_file *pf = s->pid_file;
    int err = sys_open_parent_safely(pf->path, &dfd, &name, why);
    if (err)
        return err == ENOENT ? EAGAIN : err;
    if (*name == '\0') {
        sys_close(&dfd);
        return EISDIR;
    }
    do
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        err = errno;
        sys_close(&dfd);
        return err == ENOENT ? EAGAIN : err;
    }
    struct stat st;
    char buf[32];
    ssize_t n = 0;
    /* as for a stdio file: no hard link (another name for a file another
     * user chose), no other user's file planted in a sticky directory */
    if (fstat(fd, &st) < 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        err = EINVAL;
    else if (left_before(pf, &st))
        err = EAGAIN; /* left by an earlier run: the daemon writes it anew */
    else if (st.st_nlink != 1)
        *why = "a hard link (a file with another name too), refused", err = EMLINK;
    else if ((err = sys_foreign_in_sticky_dir(dfd, &st, s->app_uid)))
        *why = err == EPERM ? "another user's file in a sticky directory others can write (as /tmp), refused" : NULL;
    else if ((n = sys_read(fd, buf, sizeof buf - 1)) < 0)
        err = errno;
    sys_close(&fd);
    sys_close(&dfd);
    if (err || n < 0)
        return err ? err : EIO;
    size_t len = (size_t)n;
    buf[len] = '\0';
    char *nl = memchr(buf, '\n', len);
    int bare = !nl;
    if (bare && len == sizeof buf - 1)
        return EINVAL;
    if (nl)
        *nl = '\0';
    /* digits only: no sign, no blank before them (strtoll takes both);
     * with no newline yet, nothing is refused (an empty file, made before
     * it is written, comes first) */
    if (buf[0] < '0' || buf[0] > '9')
        return bare ? EAGAIN : EINVAL;
    char *end;
    errno = 0;
    long long pid = strtoll(buf, &end, 10);
    /* (to the line's end: a NUL byte inside it ends strtoll's reading) */
    if (errno || end == buf || *end || end != (nl ? nl : buf + len) || pid <= 0)
        return bare ? EAGAIN : EINVAL; /* (bare: perhaps being written) */
    if (bare) {
        int settled = pf->bare == pid && pf->bare_mtim.tv_sec == st.st_mtim.tv_sec &&
                      pf->bare_mtim.tv_nsec == st.st_mtim.tv_nsec;
        pf->bare = pid;
        pf->bare_mtim = st.st_mtim;
        if (!settled)
            return EAGAIN; /* looked at again at the next step */
    }
    *v = pid;
    return 0;
}

/* How long a channel closed by a process /proc cannot tell about (not
 * mounted) waits for that process's end, which its pidfd says, before the
 * close is taken for a deliberate one */
#define EOF_GRACE 0.1

/* A channel pid's process closed: may it be exiting (its end to be waited
 * for, and reported instead)? Yes when /proc says it is exiting or gone;
 * where /proc is not mounted, for EOF_GRACE from the close's first look
 * (s->eof_since: the start looks again, starter_needs_probing). */
static int may_be_exiting(struct starter *s, pid_t pid)
{
    int live = procfs_liveness(pid);
    if (live == PROCFS_EXITING || live == PROCFS_GONE)
        return 1;
    if (live != PROCFS_UNKNOWN)
        return 0;
    double t = sys_now();
    if (s->eof_since == 0)
        s->eof_since = t;
    return t - s->eof_since < EOF_GRACE;
}

/* pid_file: the helper (the daemon as started) exits 0 having forked, then
 * the file names the daemon */
static int step_pid_file(struct starter *s)
{
    check_helper(s);
    if (!s->helper_done)
        return s->phase;
    /* (lost: the pid file is read all the same, the start failed once its
     * daemon is known: step_ready) */
    if (s->helper_status != 0 && !helper_lost(s)) {
        char how[64];
        describe_end(&s->spawned, how, sizeof how);
        return fail(s, STARTER_DIED, 0, "%s %s before it was ready (it must exit 0 once it has forked)",
                    s->file, how);
    }
    long long v = 0;
    const char *why = NULL;
    int err = read_pid_file(s, &v, &why);
    /* (out of descriptors or memory: read again at the next step, as a
     * reported pid is checked again) */
    if (err == EAGAIN || sys_lacks_resources(err))
        return s->phase;
    if (err)
        return fail(s, STARTER_BAD_PID, err, "pid file %s: %s", s->pid_file->path,
                    why                ? why
                    : err == EINVAL    ? "not a regular file holding a pid and a newline"
                                       : strerror(err));
    return pid_checked(s, v, verify_pid(s, v));
}

/* What the helper wrote to its error pipe before it ended, for a failure's
 * message: ": TEXT", its lines joined by "; " without their
 * "appstart-helper: " prefix and its control characters as '?', at most
 * size - 1 bytes; "" when it wrote nothing (or has no such pipe). Read
 * once: the pipe is closed after. */
static void helper_said(struct starter *s, char *out, size_t size)
{
    /* (a message may name a path of PATH_MAX bytes: read whole) */
    char buf[8192];
    ssize_t n = -1;
    out[0] = '\0';
    if (s->error_rd < 0)
        return;
    do
        n = read(s->error_rd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    sys_close(&s->error_rd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    static const char prefix[] = "appstart-helper: ";
    /* a line too long for what is left keeps its end, where the reason is
     * ("cannot execute PATH: No such file or directory"), its middle cut */
    enum { TAIL = 64 };
    size_t at = 0;
    const char *line = buf;
    while (*line && at + 3 < size) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len >= sizeof prefix - 1 && memcmp(line, prefix, sizeof prefix - 1) == 0) {
            line += sizeof prefix - 1;
            len -= sizeof prefix - 1;
        }
        if (len > 0) {
            const char *sep = at == 0 ? ": " : "; ";
            for (size_t i = 0; sep[i] && at + 1 < size; i++)
                out[at++] = sep[i];
            size_t room = size - 1 - at, head = len;
            if (len > room && room > TAIL + 3)
                head = room - TAIL - 3;
            for (size_t i = 0; i < len && at + 1 < size; i++) {
                if (i == head) {
                    for (int k = 0; k < 3; k++)
                        out[at++] = '.';
                    i = len - TAIL;
                }
                unsigned char c = (unsigned char)line[i];
                out[at++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
            }
        }
        if (!end)
            break;
        line = end + 1;
    }
    out[at] = '\0';
}

static int step_pid(struct starter *s)
{
    /* a pid that could not be checked: again (the helper's end is seen
     * to on the way to ready, as for any pid) */
    if (s->unchecked_pid) {
        long long v = s->unchecked_pid;
        return pid_checked(s, v, verify_pid(s, v));
    }
    if (s->pid_file)
        return step_pid_file(s);
    /* read after looking at the helper: once it has exited, all it wrote is
     * in the pipe. It is reaped here only when it failed to report; else
     * after the ready channel's first drain (step_ready), so that what it
     * sent there is read while its pid is still its own. */
    int exited = s->helper_done || process_exited_unreaped(&s->spawned);
    /* reaped by another wait: its pid, free now, proves nothing about the
     * pid it reported (helper_lost) */
    if (exited == 2)
        check_helper(s);
    if (s->pid_rd >= 0)
        read_pid_channel(s, 0);
    /* (a pid that could not be checked was reported all the same) */
    if (s->phase != STARTER_AWAIT_PID || s->unchecked_pid)
        return s->phase;
    if (exited)
        check_helper(s);
    if (s->pid_eof || s->helper_done) {
        char how[64], said[200];
        if (!s->helper_done) {
            /* an exiting helper closed it: wait for its status */
            if (may_be_exiting(s, s->spawned.pid))
                return s->phase;
            return fail(s, STARTER_HELPER, 0, "helper closed the pid channel (fd %d) without a pid",
                        s->pid_fd);
        }
        if (helper_lost(s))
            return fail(s, STARTER_HELPER, ECHILD, "helper " HELPER_LOST ", and it reported no pid on fd %d",
                        s->pid_fd);
        /* part of a record, and the helper has exited well: all it wrote
         * has been read (a process it forked may hold the channel open,
         * so no end of file says so) */
        if (s->helper_status == 0 && s->pid_reader.len > 0)
            return fail(s, STARTER_BAD_PID, 0, "short pid record: %zu of %s (the helper exited)",
                        s->pid_reader.len, s->pid_format == PID_FORMAT_LINE ? "a line" : "4 bytes");
        describe_end(&s->spawned, how, sizeof how);
        helper_said(s, said, sizeof said);
        return fail(s, STARTER_HELPER, 0, "helper %s without reporting a pid on fd %d%s", how,
                    s->pid_fd, said);
    }
    return s->phase;
}

/* ---- the ready message ---- */

/* 1 when notify_access admits sender, 0 when not, -errno when that cannot
 * be told for now (the launcher out of descriptors or memory: its
 * descent cannot be read): the message is then held (hold) and looked at
 * again at the next steps. */
static int admitted(struct starter *s, pid_t sender)
{
    if (sender <= 0)
        return 0;
    pid_t app = app_of(s)->pid;
    if (sender == app)
        return 1;
    if (s->access != STARTER_ACCESS_MAIN && s->has_helper && !s->helper_done &&
        sender == s->spawned.pid)
        return 1;
    if (s->access != STARTER_ACCESS_ALL || app <= 0)
        return 0;
    int descends = procfs_descent_within(sender, app, PROCFS_SENDER_MAX_DEPTH);
    if (descends == 1 || (s->tree && s->tree->mode == TREE_CGROUP && tree_contains(s->tree, sender)))
        return 1;
    return descends < 0 && sys_lacks_resources(-descends) ? descends : 0;
}

/* A message whose sender could not be told admitted or not (admitted < 0)
 * waits in s->held, the reads stopped behind it (what follows comes after
 * it), and its channel fd out of the start's waits meanwhile (what is
 * queued behind it would wake them at once, again and again: the start
 * is stepped every poll interval instead, starter_needs_probing); 0, or
 * ENOMEM when it cannot be kept (it is then refused). */
static int hold(struct starter *s, int fd, const char *buf, size_t n, int trunc, pid_t sender, int err)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return ENOMEM;
    memcpy(copy, buf, n);
    s->held = copy;
    s->held_len = n;
    s->held_trunc = trunc;
    s->held_sender = sender;
    s->held_err = err;
    s->held_fd = fd;
    unwatch_fd(s, fd);
    return 0;
}

static void drop_held(struct starter *s)
{
    free(s->held);
    s->held = NULL;
    s->held_len = 0;
}

/* One chunk of the ready channel from an admitted sender: 1 to read on,
 * 0 to stop (the line is whole, or the start failed). */
static int take_ready_chunk(struct starter *s, const char *buf, size_t n)
{
    size_t used;
    int v = ready_line_feed(&s->line, buf, n, &used);
    if (v == READY_LINE_NOMEM) {
        fail(s, STARTER_READY_CLOSED, ENOMEM, "cannot read the ready channel: %s", strerror(ENOMEM));
        return 0;
    }
    if (v == READY_LINE_DONE) {
        s->ready_seen = 1;
        return 0;
    }
    if (v == READY_LINE_TOO_LONG) {
        fail(s, STARTER_PROTOCOL, 0, "ready line longer than %d bytes", READY_LINE_MAX - 1);
        return 0;
    }
    return 1;
}

/* The held message (hold), once its sender can be told: -1 while it
 * cannot yet (the reads wait behind it), else what take says (1 to read
 * on, 0 to stop); refused, 1. */
static int take_held(struct starter *s, const char *what, int (*take)(struct starter *, const char *, size_t, int))
{
    int a = admitted(s, s->held_sender);
    if (a < 0) {
        s->held_err = -a;
        return -1;
    }
    char *msg = s->held;
    s->held = NULL;
    /* its channel back in the waits first: taking it may end the start,
     * which lets go of the channel */
    (void)watch_fd(s, s->held_fd);
    int on = 1;
    if (a)
        on = take(s, msg, s->held_len, s->held_trunc);
    else
        refuse(s, s->held_sender, what);
    free(msg);
    s->held_len = 0;
    return on;
}

static int take_ready_held(struct starter *s, const char *buf, size_t n, int trunc)
{
    (void)trunc;
    return take_ready_chunk(s, buf, n);
}

/* What a refused sender's read of the ready channel is called in the log:
 * a read, not a line (the channel is a byte stream: one read may hold many
 * lines, or part of one) */
#define READY_READ "read of the ready channel"

/* The reads of one step are bounded (a flood cannot stall the launcher):
 * 1 when they stopped at the bound with more perhaps still queued, which
 * the next step reads before it may conclude that the app died unready
 * (so it does with a message held, its sender not checked yet). */
static int read_ready_fd(struct starter *s)
{
    if (s->held) {
        int on = take_held(s, READY_READ, take_ready_held);
        if (on <= 0)
            return on < 0;
    }
    char buf[READY_LINE_MAX];
    for (int i = 0; i < STARTER_READS_PER_STEP; i++) {
        pid_t sender;
        int trunc;
        ssize_t n = channel_recv(s->ready_rd, buf, sizeof buf, &sender, &trunc);
        if (n < 0) {
            if (errno != EAGAIN)
                fail(s, STARTER_READY_CLOSED, errno, "cannot read the ready channel: %s",
                     strerror(errno));
            return 0;
        }
        if (n == 0) {
            s->ready_eof = 1;
            drop_fd(s, &s->ready_rd);
            return 0;
        }
        int a = admitted(s, sender);
        if (a < 0 && hold(s, s->ready_rd, buf, (size_t)n, trunc, sender, -a) == 0)
            return 1;
        if (a <= 0) {
            refuse(s, sender, READY_READ);
            continue;
        }
        if (!take_ready_chunk(s, buf, (size_t)n))
            return 0;
    }
    return 1;
}

static void set_status(struct starter *s, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* keep the previous status: better than none */
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(s->status);
    s->status = copy;
    s->status_len = len;
    push_event(s, STARTER_EVENT_STATUS, 0, 1, text, len);
}

/* One datagram from an admitted sender: 1 to read on, 0 to stop (ready,
 * or the start failed). */
static int take_datagram(struct starter *s, const char *buf, size_t n, int trunc)
{
    if (trunc || n > NOTIFY_DATAGRAM_MAX) {
        fail(s, STARTER_PROTOCOL, 0, "notify datagram over %d bytes", NOTIFY_DATAGRAM_MAX);
        return 0;
    }
    struct notify_msg m;
    if (notify_parse(buf, n, &m) < 0) {
        fail(s, STARTER_PROTOCOL, 0, "malformed notify datagram: %s", m.error);
        return 0;
    }
    if (m.has_mainpid) {
        pid_t expected = app_of(s)->pid;
        if (m.mainpid != (long long)expected) {
            fail(s, STARTER_PID_MISMATCH, 0, "app claimed MAINPID=%lld but its pid is %d",
                 m.mainpid, (int)expected);
            return 0;
        }
        push_event(s, STARTER_EVENT_MAINPID, m.mainpid, 1, NULL, 0);
    }
    if (m.has_status)
        set_status(s, m.status, m.status_len);
    if (m.has_errno) {
        s->app_errno = m.errno_value;
        push_event(s, STARTER_EVENT_ERRNO, m.errno_value, 1, NULL, 0);
    }
    if (m.has_extend)
        push_event(s, STARTER_EVENT_EXTEND,
                   m.extend_usec > (unsigned long long)LLONG_MAX ? LLONG_MAX
                                                                 : (long long)m.extend_usec,
                   1, NULL, 0);
    if (m.stopping) {
        s->app_stopping = 1;
        push_event(s, STARTER_EVENT_STOPPING, 0, 1, NULL, 0);
    }
    if (m.has_watchdog_usec)
        push_event(s, STARTER_EVENT_WATCHDOG_USEC,
                   m.watchdog_usec > (unsigned long long)LLONG_MAX ? LLONG_MAX
                                                                   : (long long)m.watchdog_usec,
                   1, NULL, 0);
    /* as with systemd, STOPPING=1 wins, in the same datagram too, and
     * a dying app is not made ready again */
    if (m.ready && !s->app_stopping) {
        s->ready_seen = 1;
        return 0;
    }
    return 1;
}

/* (as read_ready_fd; it also stops while the event queue has no room for
 * what one datagram may add, so that no event is dropped: the caller takes
 * them between steps) */
static int read_notify(struct starter *s)
{
    if (s->nevents + NOTIFY_EVENTS_MAX > STARTER_MAX_EVENTS)
        return 1;
    if (s->held) {
        int on = take_held(s, "notify datagram", take_datagram);
        if (on <= 0)
            return on < 0;
    }
    char buf[NOTIFY_DATAGRAM_MAX + 1];
    for (int i = 0; i < STARTER_READS_PER_STEP; i++) {
        if (s->nevents + NOTIFY_EVENTS_MAX > STARTER_MAX_EVENTS)
            return 1;
        pid_t sender;
        int trunc;
        ssize_t n = channel_recv(s->notify->fd, buf, sizeof buf, &sender, &trunc);
        if (n < 0) {
            if (errno != EAGAIN)
                fail(s, STARTER_PROTOCOL, errno, "cannot read the notify socket: %s",
                     strerror(errno));
            return 0;
        }
        int a = admitted(s, sender);
        if (a < 0 && hold(s, s->notify->fd, buf, (size_t)n, trunc, sender, -a) == 0)
            return 1;
        if (a <= 0) {
            refuse(s, sender, "notify datagram");
            continue;
        }
        if (!take_datagram(s, buf, (size_t)n, trunc))
            return 0;
    }
    return 1;
}

/* The helper's end, reaped: a failure when it says it failed. */
static int reap_helper(struct starter *s)
{
    check_helper(s);
    if (s->helper_done && s->helper_status != 0) {
        char how[64];
        describe_end(&s->spawned, how, sizeof how);
        return fail(s, STARTER_HELPER, 0, "helper %s", how);
    }
    return s->phase;
}

static int step_ready(struct starter *s)
{
    struct process *app = app_of(s);
    /* The helper is admitted as a sender (notify_access "exec") by its pid
     * only while no other process can have that pid: until it is reaped.
     * So its exit is seen first and it is reaped once a drain has emptied
     * the queue, which then held all it sent; a message from its pid after
     * that is from whoever has the pid now, and is refused. */
    int helper_ended = s->has_helper && !s->helper_done ? process_exited_unreaped(&s->spawned) : 0;
    /* reaped by another wait: its pid is free, nothing more from it is
     * admitted, and the start fails, its app terminated */
    if (helper_ended == 2)
        check_helper(s);
    if (helper_lost(s))
        return fail_helper_lost(s);
    /* death first, then drain: a ready message sent before the app exited
     * still counts. (A pidfd the last wait saw quiet has no death to tell.) */
    int quiet = s->app_quiet;
    s->app_quiet = 0;
    if (!s->app_dead && !quiet && check_process(s, app))
        s->app_dead = 1;
    int more = 0;
    if (!s->ready_seen) {
        if (s->ready == STARTER_READY_FD && s->ready_rd >= 0)
            more = read_ready_fd(s);
        else if (s->ready == STARTER_READY_NOTIFY)
            more = read_notify(s);
        else if (s->ready == STARTER_READY_NONE && !(s->app_dead && s->pid_file))
            s->ready_seen = 1; /* (a pid file must name a live daemon: one that
                                * has ended died before it was ready; a
                                * helper's app is ready at its exec) */
        /* (a message held, its sender not checked yet, is no bound: another
         * step reads nothing behind it until its sender can be checked) */
        s->reads_cut = more && !s->held;
        report_refused(s);
        if (s->phase != STARTER_AWAIT_READY)
            return s->phase;
    }
    /* not before the drain has emptied the queue (a step reads a bounded
     * amount): what the helper sent behind the app's flood is read while
     * its pid is still its own */
    if (helper_ended && !more && reap_helper(s) != STARTER_AWAIT_READY)
        return s->phase;
    if (s->ready_seen) {
        if (s->helper_done)
            s->phase = STARTER_READY;
        else
            /* ready, held by a helper that lingers after its report: what
             * the app sends on is read once the start is over (the app's
             * life reads it). Polled meanwhile and never read, it woke
             * every wait at once, a spin until the helper's exit. */
            unwatch_fd(s, s->ready_rd >= 0 ? s->ready_rd : notify_fd(s));
        return s->phase;
    }
    if (s->app_dead) {
        /* an app that died as its helper's child comes to the launcher,
         * with its exit status, once the helper has exited; and what it
         * sent before is read to the end first */
        if (!s->helper_done || more)
            return s->phase;
        char how[64];
        describe_end(app, how, sizeof how);
        return fail(s, STARTER_DIED, s->app_errno, "app %s before it was ready", how);
    }
    if (s->ready_eof) {
        /* an exiting app closes its descriptors before it becomes a zombie:
         * if that is why, wait for its death and report that instead */
        if (may_be_exiting(s, app->pid))
            return s->phase;
        if (s->line.len > 0)
            return fail(s, STARTER_READY_CLOSED, 0,
                        "app closed the ready channel without a ready message"
                        " (%zu byte%s came with no newline)", s->line.len,
                        s->line.len == 1 ? "" : "s");
        return fail(s, STARTER_READY_CLOSED, 0,
                    "app closed the ready channel without a ready message");
    }
    return s->phase;
}

/* ---- stepping ---- */

static int step_exec(struct starter *s)
{
    struct spawn_failure f;
    int r = spawn_read_failure(s->exec_fd, &f);
    if (r < 0 && errno == EAGAIN)
        return s->phase; /* nothing else can happen before the exec */
    int err = errno;
    drop_fd(s, &s->exec_fd);
    if (r < 0)
        return fail(s, STARTER_SPAWN, err, "cannot learn whether the exec worked: %s",
                    strerror(err));
    if (r == 1)
        return exec_failed(s, &f);
    return exec_succeeded(s, 0);
}

int starter_step(struct starter *s)
{
    s->fresh = 0;
    s->reads_cut = 0;
    repoll(s);
    children_reap_abandoned();
    if (s->phase != STARTER_AWAIT_READY)
        s->app_quiet = 0;
    /* each case may move the start on: go on until it rests */
    for (;;) {
        int phase = s->phase;
        switch (phase) {
        case STARTER_AWAIT_EXEC:
            step_exec(s);
            break;
        case STARTER_REAP_EXEC:
            if (!check_process(s, &s->spawned))
                return s->phase;
            process_release(&s->spawned);
            return spawn_failed(s, &s->exec_failure);
        case STARTER_AWAIT_PID:
            step_pid(s);
            break;
        case STARTER_AWAIT_READY:
            return step_ready(s);
        default:
            return s->phase;
        }
        if (s->phase == phase)
            return s->phase;
    }
}

int starter_phase(const struct starter *s)
{
    return s->phase;
}

int starter_fresh(const struct starter *s)
{
    return s->fresh;
}

pid_t starter_spawned_pid(const struct starter *s)
{
    return s->spawned.pid;
}

int starter_awaits_helper(const struct starter *s)
{
    if (s->phase == STARTER_AWAIT_EXEC || s->phase == STARTER_REAP_EXEC ||
        s->phase == STARTER_AWAIT_PID)
        return 1;
    return s->has_helper && !s->helper_done && s->phase != STARTER_READY &&
           s->phase != STARTER_FAILED;
}

int starter_needs_probing(const struct starter *s)
{
    const struct process *app = s->has_helper ? &s->app : &s->spawned;
    if (s->unpolled)
        return 1;
    /* a start being stopped (failed, or given up on by its caller: a
     * timeout) waits for its processes to end */
    switch (s->stopping ? STARTER_FAILED : s->phase) {
    case STARTER_REAP_EXEC:
        return s->spawned.pidfd < 0;
    case STARTER_AWAIT_PID:
        /* a pid file is looked for, not waited on; a pid that could not be
         * checked is checked again */
        return (!s->helper_done && s->spawned.pidfd < 0) || (s->pid_file && s->helper_done) ||
               s->unchecked_pid != 0 || s->eof_since != 0;
    case STARTER_AWAIT_READY:
        /* (a message held: its sender is checked again) */
        return (s->has_helper && !s->helper_done && s->spawned.pidfd < 0) ||
               (!s->app_dead && app->pid > 0 && app->pidfd < 0) || s->eof_since != 0 ||
               s->held != NULL;
    case STARTER_FAILED:
        /* a group or cgroup is looked at, not waited on, as is an orphan
         * on its way out; a pid that could not be checked is checked
         * again */
        return s->orphan_exiting || (s->has_helper && s->app.pid <= 0 && s->unchecked_pid != 0) ||
               (s->has_helper && s->spawned.pid > 0 && s->spawned.end == PROCESS_RUNNING &&
                s->spawned.pidfd < 0) ||
               (app->pid > 0 && app->end == PROCESS_RUNNING && app->pidfd < 0) ||
               (s->tree != NULL && (app->pid <= 0 || app->end != PROCESS_RUNNING));
    default:
        return 0;
    }
}

/* ---- results and hand-over ---- */

void starter_result(const struct starter *s, struct starter_result *out)
{
    memset(out, 0, sizeof *out);
    if (s->phase == STARTER_FAILED) {
        out->code = s->code;
        out->err = s->err;
        out->message = s->message ? s->message : "out of memory";
    } else {
        out->message = "";
    }
    const struct process *app = s->has_helper ? &s->app : &s->spawned;
    out->pid = known_app_pid(s);
    out->unchecked_pid = (pid_t)s->unchecked_pid;
    out->unchecked_err = s->unchecked_err;
    if (out->pid <= 0 && out->unchecked_pid <= 0)
        out->pid_partial = s->pid_reader.len;
    if (s->held) {
        out->held_sender = s->held_sender;
        out->held_err = s->held_err;
    }
    if (s->line.done == READY_LINE_DONE) {
        out->name = s->line.buf ? s->line.buf : "";
        out->name_len = s->line.len;
    } else if (s->line.done == READY_LINE_MORE && s->line.len > 0) {
        out->partial = s->line.buf;
        out->partial_len = s->line.len;
    }
    out->status = s->status;
    out->status_len = s->status_len;
    out->app_errno = s->app_errno;
    out->record_as_line = s->phase == STARTER_FAILED && s->code == STARTER_BAD_PID && record_as_line(s);
    out->exited = s->ready_seen && s->app_dead;
    out->app_stopping = s->app_stopping;
    out->left = s->tree && s->tree->mode != TREE_PROCESS ? (int)s->tree->left : -1;
    out->helper_lost = helper_lost(s);
    out->ready_seen = s->ready_seen;
    if (s->pid_file && s->helper_done && s->helper_status != 0 && s->phase == STARTER_FAILED &&
        s->code == STARTER_DIED) {
        /* a forking daemon's start whose process started exited non-zero:
         * what died is that process (a daemon its pid file names, proven
         * after all, is stopped with the start, not what died) */
        out->pid = s->spawned.pid;
        out->app_end = s->spawned.end;
        out->app_code = s->spawned.code;
    } else if (out->pid > 0) {
        out->app_end = app->end;
        out->app_code = app->code;
    } else if (s->pid_file && (s->phase == STARTER_FAILED || s->stopping) && s->spawned.pid > 0 &&
               !(s->spawned.end == PROCESS_EXITED && s->spawned.code == 0) && !helper_lost(s)) {
        /* a forking daemon's start that failed while its process started
         * still ran (a timeout, a cancel): that process, stopped with the
         * start, and how it ended (no daemon was named) */
        out->pid = s->spawned.pid;
        out->app_end = s->spawned.end;
        out->app_code = s->spawned.code;
    }
}

int starter_app_pidfd(struct starter *s)
{
    return known_app_pid(s) > 0 ? app_of(s)->pidfd : -1;
}

int starter_take_app(struct starter *s, struct process *out, struct tree **tree)
{
    struct process *app = app_of(s);
    if (s->phase != STARTER_READY || app->pid <= 0)
        return EINVAL;
    unwatch_fd(s, app->pidfd);
    *out = *app;
    *app = (struct process)PROCESS_NONE;
    *tree = s->tree;
    s->tree = NULL;
    /* the leader of its group (a helper's app too, once adopted): held
     * after its end until let go of (tree.h); a notify app, the
     * launcher's child, until what its socket holds at its end is read
     * (as in the start: spawn) */
    out->hold = (*tree && (*tree)->mode == TREE_GROUP && (*tree)->pgid == out->pid) ||
                (s->ready == STARTER_READY_NOTIFY && !s->has_helper && out->is_child);
    return 0;
}

int starter_take_notify(struct starter *s, struct listener *out)
{
    struct process *app = app_of(s);
    struct procfs_stat st;
    memset(out, 0, sizeof *out);
    if (s->phase != STARTER_READY || app->pid <= 0 || !s->notify)
        return EINVAL;
    unwatch_fd(s, s->notify->fd);
    out->sock = s->notify;
    s->notify = NULL;
    out->access = s->access;
    out->main = app->pid;
    /* the main's start time: as read when it was proven (with a helper)
     * or spawned; else read now, while it is not reaped. One that has
     * ended and been reaped already (it said READY=1 and exited while the
     * launcher was busy, what it left keeping the app on) holds its
     * number no more: whoever has it now, or later, is never the main
     * (main_holder: gone or replaced; it was the main, for good, as its
     * start time could not be read). Unknown (main_known 0, the number
     * believed) only where /proc could not say (the launcher out of
     * descriptors) */
    unsigned long long known = s->has_helper ? s->app_start : s->spawned_start;
    out->main_known = 1;
    if (known) {
        out->main_start = known;
    } else if (app->end != PROCESS_RUNNING && !app->hold) {
        /* (the launcher's child, reaped) */
        out->main_start = LISTENER_MAIN_ENDED;
    } else {
        int err = procfs_stat(app->pid, &st);
        if (err == 0)
            out->main_start = st.start_time;
        else if (err == ESRCH)
            out->main_start = LISTENER_MAIN_ENDED; /* (reaped by another wait) */
        else
            out->main_known = 0;
    }
    /* what a MAINPID= may name is no older than the app (the one started:
     * not the main of the moment, which a move changes) */
    if (known)
        out->app_start = known;
    else if (out->main_known && out->main_start != LISTENER_MAIN_ENDED)
        out->app_start = out->main_start;
    else
        out->app_start = spawned_min_start(s);
    if (!out->main_known)
        out->main_start = out->app_start;
    out->app_uid = s->app_uid;
    if (s->tree && s->tree->mode == TREE_CGROUP)
        snprintf(out->cgroup, sizeof out->cgroup, "%s", s->tree->cg.path);
    /* (a group whose leader is not known cannot be told from another
     * that got its number later: no move into it, see
     * listener_verify_main) */
    if (s->tree && s->tree->mode == TREE_GROUP && s->tree->leader_known) {
        out->pgid = s->tree->pgid;
        out->pgid_start = s->tree->leader_start;
    }
    return 0;
}

/* After a failure in the pid phase: a complete, verified record that
 * arrived meanwhile still names an app to stop, and so does a pid read
 * before that could not be checked then (out of descriptors: checked
 * again here), and a forking daemon's pid file written before the stop
 * looked (its pid proven as ever: whether the process started has exited
 * yet, and how, does not matter then). The verdict stays. */
static void salvage_pid(struct starter *s)
{
    if (!s->has_helper || s->app.pid > 0 || s->exec_failure.step ||
        (s->pid_rd < 0 && !s->unchecked_pid && !s->pid_file))
        return;
    int phase = s->phase, code = s->code, err = s->err;
    char *message = s->message;
    s->message = NULL;
    s->phase = STARTER_AWAIT_PID;
    long long v = 0;
    const char *why = NULL;
    if (s->unchecked_pid)
        (void)verify_pid(s, s->unchecked_pid);
    else if (!s->pid_file)
        read_pid_channel(s, 1);
    else if (read_pid_file(s, &v, &why) == 0)
        (void)verify_pid(s, v);
    free(s->message);
    s->message = message;
    s->phase = phase;
    s->code = code;
    s->err = err;
}

/* The helper is killed, but appstart-helper first gets `first` (and
 * SIGCONT): killed before it has written the pid, it would leave the app
 * it forked running, unknown. On SIGTERM (a stop) it kills that app
 * unless it has written its pid, which starter_stopped then reads
 * (stop_late_app); on SIGUSR1 (a start dropped) it kills it all the same.
 * So does a forking daemon's process started, the app's own first
 * process, which is terminated as an app is (SIGTERM, then SIGKILL after
 * the grace). A later stop, when it is still there, sends SIGKILL; any
 * other helper gets SIGKILL at once. */
static void stop_helper(struct starter *s, int first)
{
    if ((s->signal_helper || s->pid_file) && !s->helper_termed) {
        s->helper_termed = 1;
        if (process_signal(&s->spawned, first) == 0)
            (void)process_signal(&s->spawned, SIGCONT);
        return;
    }
    (void)process_signal(&s->spawned, SIGKILL);
}

/* sig (0: none) to the app once its pid is known, and to what its
 * kill_mode reaches (SIGCONT after it, so a stopped app gets it): the
 * app's errno */
static int signal_app(struct starter *s, int sig)
{
    struct process *app = app_of(s);
    pid_t pid = known_app_pid(s);
    int err = sig && pid > 0 ? process_signal(app, sig) : 0;
    if (sig && pid > 0 && err == 0 && sig != SIGKILL)
        (void)process_signal(app, SIGCONT);
    if (sig == SIGKILL) {
        (void)tree_kill(s->tree, pid, starter_app_pidfd(s));
    } else if (sig && tree_signal(s->tree, pid, starter_app_pidfd(s), sig) > 0) {
        (void)tree_signal(s->tree, pid, starter_app_pidfd(s), SIGCONT);
    }
    return err;
}

int starter_stop(struct starter *s, int app_signal, int *rest_refused)
{
    salvage_pid(s);
    s->stopping = 1;
    if (app_signal)
        s->stop_signal = app_signal;
    /* what the channels say no longer matters: not waited on (a flood
     * would otherwise wake the caller until the end) */
    unwatch_fd(s, s->ready_rd);
    unwatch_fd(s, notify_fd(s));
    int err = signal_app(s, app_signal);
    if (s->has_helper && !s->helper_done)
        stop_helper(s, SIGTERM);
    *rest_refused = app_signal && s->tree && s->tree->refused > 0;
    return err == ESRCH ? 0 : err;
}

pid_t starter_pgid(const struct starter *s)
{
    return s->tree && s->tree->mode == TREE_GROUP ? s->tree->pgid : 0;
}

/* Is anything of the app's tree (its group or cgroup) still running? */
static int tree_running(struct starter *s)
{
    /* (nothing spawned: nothing joined it, though out of descriptors its
     * cgroup cannot be read to say so) */
    if (!s->tree || s->spawned.pid <= 0)
        return 0;
    if (s->tree->mode == TREE_CGROUP)
        return tree_populated(s->tree);
    /* (one that cannot be looked at, out of descriptors: not gone) */
    return tree_others(s->tree, known_app_pid(s)) != 0;
}

static void signal_through_helper(struct starter *s, int sig);

/* The pid a helper wrote after the stop's last look for it (appstart-helper,
 * told to stop once it had written it, leaves the app to the launcher):
 * read, and the app stopped as the stop said (SIGKILL where it said
 * nothing; through appstart-helper where the launcher may not signal it),
 * as is one whose pid could not be checked when it was read (out of
 * descriptors), once it can be. The helper's exit is looked at first:
 * once it has gone, all it wrote is in the channel. Returns the signal
 * sent, 0 when none was. */
static int stop_late_app(struct starter *s)
{
    if (!s->has_helper || known_app_pid(s) > 0)
        return 0;
    salvage_pid(s);
    if (known_app_pid(s) <= 0)
        return 0;
    int sig = s->stop_signal ? s->stop_signal : SIGKILL;
    int err = signal_app(s, sig);
    if (err == EPERM && s->signal_helper && app_of(s)->pidfd >= 0)
        signal_through_helper(s, sig);
    return sig;
}

int starter_stopped(struct starter *s, int *late_signal)
{
    int running = 0;
    repoll(s);
    if (s->has_helper && s->spawned.pid > 0 && !s->helper_done) {
        if (check_process(s, &s->spawned)) {
            s->helper_done = 1;
            sys_close(&s->pid_rest);
        } else {
            running = 1;
        }
    }
    *late_signal = stop_late_app(s);
    /* a pid read that could not be checked yet (out of descriptors): not
     * stopped before it is, until the stop's SIGKILL (its app, not
     * proven, is never signalled; a SIGKILL has nothing to wait for then:
     * it is still checked at each look, and killed if proven) */
    if (s->unchecked_pid && known_app_pid(s) <= 0 && s->stop_signal != SIGKILL)
        running = 1;
    struct process *app = app_of(s);
    if (known_app_pid(s) > 0 && app->end == PROCESS_RUNNING) {
        if (check_process(s, app))
            s->app_dead = 1;
        else
            running = 1;
    }
    if (!running && tree_running(s))
        running = 1;
    s->orphan_exiting = 0;
    if (!running) {
        finish_adoption(s);
        /* what a stop killed there (a cgroup is empty before its members
         * are reaped; an app its helper killed, orphaned to the launcher)
         * is reaped now, not at a later call: one on its way out is
         * waited for, by looking again (no descriptor tells its end) */
        if (children_reap_abandoned() > 0)
            running = s->orphan_exiting = 1;
    }
    return !running;
}

int starter_app_ended(struct starter *s)
{
    if (!s->app_dead && known_app_pid(s) > 0 && check_process(s, app_of(s)))
        s->app_dead = 1;
    return s->app_dead;
}

/* sig to the app (the group it leads, for kill_mode "group") through
 * `appstart-helper --signal SIG --user UID`, given the app's pidfd at fd 3:
 * for an app of another user, whom the launcher may not signal itself.
 * Not waited for (nothing may wait here: the caller may be a finalizer);
 * the helper is reaped later, as any child let go of. */
static void signal_through_helper(struct starter *s, int sig)
{
    struct process *app = app_of(s);
    char uid[24], signum[8];
    snprintf(uid, sizeof uid, "%lu", (unsigned long)s->app_uid);
    snprintf(signum, sizeof signum, "%d", sig);
    char *argv[] = { s->signal_helper, "--module-version", APPSTART_VERSION, "--signal", signum, "--user", uid,
                     s->tree && s->tree->mode == TREE_GROUP ? "--process-group" : NULL, NULL };
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
        return;
    struct spawn_fd fds[1] = { { 3, app->pidfd } };
    struct spawn_request req = {
        .file = s->signal_helper, .argv = argv, .stdio = { null_fd, null_fd, null_fd },
        .fds = fds, .nfds = 1, .cgroup_fd = -1,
    };
    pid_t pid;
    int error_fd;
    struct spawn_failure failure;
    if (spawn_start(&req, &pid, &error_fd, &failure) == 0) {
        struct process helper;
        if (process_open(&helper, pid, 1) != 0) {
            children_add(pid);
            children_abandon(pid);
        } else {
            process_release(&helper);
        }
        sys_close(&error_fd);
    }
    sys_close(&null_fd);
}

void starter_abandon(struct starter *s)
{
    /* READY but never taken: the caller failed (a raising callback, out of
     * memory) between the handshake and the hand-over */
    salvage_pid(s);
    /* then appstart-helper (no SIGKILL after it, reaped later): an app
     * whose pid is known is killed below, with what its kill_mode
     * reaches, and the helper, still exiting, gets SIGTERM, which spares
     * it (its SIGUSR1 would kill the app alone first: the group kill
     * through the helper, which needs the app alive to prove its group,
     * would then not reach what it forked). Else SIGUSR1: it kills the
     * app it forked, its pid written after that look or not. */
    if (s->signal_helper) {
        s->helper_termed = 0;
        stop_helper(s, known_app_pid(s) > 0 ? SIGTERM : SIGUSR1);
    } else if (s->has_helper) {
        (void)process_signal(&s->spawned, SIGKILL);
    }
    /* an app of another user refuses the launcher's signal: the helper
     * that started it as that user sends it (only through the app's
     * pidfd, which names no other process) */
    if (known_app_pid(s) > 0 && process_signal(app_of(s), SIGKILL) == EPERM && s->signal_helper &&
        app_of(s)->pidfd >= 0)
        signal_through_helper(s, SIGKILL);
    (void)tree_kill(s->tree, known_app_pid(s), starter_app_pidfd(s));
    starter_close(s);
}

void starter_close(struct starter *s)
{
    finish_adoption(s);
    free(s->pid_file);
    s->pid_file = NULL;
    free(s->signal_helper);
    s->signal_helper = NULL;
    sys_close(&s->exec_fd);
    sys_close(&s->pid_rd);
    sys_close(&s->pid_rest);
    channel_close(&s->ready_rd, SOCK_STREAM);
    sys_close(&s->error_rd);
    if (s->notify) {
        notify_socket_close(s->notify);
        free(s->notify);
        s->notify = NULL;
    }
    process_release(&s->spawned);
    process_release(&s->app);
    /* what the app left in its group and the launcher adopted (another
     * start's window open): taken over, as when an app is let go of */
    tree_take_adopted(s->tree, known_app_pid(s));
    tree_free(s->tree); /* a cgroup not empty yet is removed later */
    s->tree = NULL;
    sys_close(&s->epoll_fd);
    s->nwatch = 0;
    s->ncaller = 0;
    ready_line_free(&s->line);
    for (int i = s->next_event; i < s->nevents; i++)
        free(s->events[i].text);
    free(s->events);
    s->events = NULL;
    s->nevents = s->next_event = s->cap_events = 0;
    free(s->taken_text);
    s->taken_text = NULL;
    free(s->status);
    s->status = NULL;
    drop_held(s);
    free(s->message);
    s->message = NULL;
}
