/*
 * starter.c: the handshake state machine (see starter.h).
 */
#include "starter.h"
#include "notify.h"
#include "sys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* How often a process without a pidfd is probed during the handshake. */
#define STARTER_PROBE_INTERVAL 0.01
/* At most this many reads per step and channel, so a flood of datagrams or
 * of foreign writes cannot stall the caller's loop. */
#define STARTER_READS_PER_STEP 64

const char *starter_code_name(int code)
{
    switch (code) {
    case CODE_SPAWN: return "spawn";
    case CODE_HELPER: return "helper";
    case CODE_BAD_PID: return "bad_pid";
    case CODE_DIED: return "died";
    case CODE_PID_MISMATCH: return "pid_mismatch";
    case CODE_READY_CLOSED: return "ready_closed";
    case CODE_PROTOCOL: return "protocol";
    default: return "none";
    }
}

void starter_init(struct starter *s)
{
    memset(s, 0, sizeof *s);
    s->epoll_fd = s->exec_fd = -1;
    s->pid_rd = s->pid_wr = s->ready_rd = s->ready_wr = -1;
    s->notify.fd = -1;
    s->spawned.pidfd = s->app.pidfd = -1;
    s->cfg.app_uid = (uid_t)-1;
}

static int fail(struct starter *s, int code, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    s->state = STARTER_FAILED;
    s->code = code;
    s->err = err;
    return s->state;
}

static void push_event(struct starter *s, int kind, long long value,
                       const char *text, size_t len)
{
    if (s->nevents == s->cap_events) {
        /* grown on demand: a step usually has one or two events, a flood
         * of datagrams up to STARTER_MAX_EVENTS */
        int cap = s->cap_events ? 2 * s->cap_events : 4;
        struct starter_event *grown =
            cap <= STARTER_MAX_EVENTS ? realloc(s->events, (size_t)cap * sizeof *grown)
                                      : NULL;
        if (!grown) {
            s->dropped_events++;
            return;
        }
        s->events = grown;
        s->cap_events = cap;
    }
    struct starter_event *e = &s->events[s->nevents];
    e->kind = kind;
    e->value = value;
    e->count = 1;
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

void starter_clear_events(struct starter *s)
{
    for (int i = 0; i < s->nevents; i++)
        free(s->events[i].text);
    s->nevents = 0;
}

/* The descriptors to wait on are a short list; an epoll set mirrors it only
 * once a caller asked for a single descriptor (starter_pollfd). */
static int epoll_add(int epfd, int fd)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
}

static int watch_fd(struct starter *s, int fd)
{
    if (s->nwatch == STARTER_MAX_WATCH)
        return EOVERFLOW; /* a bug: never this many at once */
    if (s->epoll_fd >= 0) {
        int err = epoll_add(s->epoll_fd, fd);
        if (err)
            return err;
    }
    s->watch[s->nwatch++] = fd;
    return 0;
}

/* Take fd out of the set before it is closed or handed over: a forked child
 * that still holds a copy until its exec would otherwise keep an epoll
 * registration alive. */
static void unwatch_fd(struct starter *s, int fd)
{
    for (int i = 0; i < s->nwatch; i++)
        if (s->watch[i] == fd) {
            s->watch[i] = s->watch[--s->nwatch];
            if (s->epoll_fd >= 0)
                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            return;
        }
}

static void drop_fd(struct starter *s, int *fd)
{
    if (*fd >= 0) {
        unwatch_fd(s, *fd);
        sys_close(fd);
    }
}

static void drop_process(struct starter *s, struct process *p)
{
    if (p->pidfd >= 0)
        unwatch_fd(s, p->pidfd);
    process_release(p);
}

int starter_pollfd(struct starter *s)
{
    if (s->epoll_fd >= 0)
        return s->epoll_fd;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    for (int i = 0; i < s->nwatch; i++) {
        int err = epoll_add(epfd, s->watch[i]);
        if (err) {
            sys_close(&epfd);
            return -err;
        }
    }
    s->epoll_fd = epfd;
    return epfd;
}

int starter_fds(const struct starter *s, int *fds)
{
    memcpy(fds, s->watch, sizeof s->watch);
    return s->nwatch;
}

void starter_forget(struct starter *s, struct process *p)
{
    if (p->pidfd >= 0)
        unwatch_fd(s, p->pidfd);
}

struct process *starter_app(struct starter *s)
{
    return s->cfg.has_helper ? &s->app : &s->spawned;
}

int starter_prepare(struct starter *s, const struct starter_config *cfg)
{
    s->cfg = *cfg;
    int err = 0;
    if (cfg->pollfd && (err = -starter_pollfd(s)) > 0)
        goto fail;
    if (cfg->has_helper) {
        int p[2];
        if ((err = sys_pipe(p, 1)))
            goto fail;
        s->pid_rd = p[0];
        s->pid_wr = p[1];
        pid_reader_init(&s->pid_reader, cfg->pid_format);
    }
    if (cfg->ready_mode == READY_FD) {
        int p[2];
        if ((err = channel_ready_pair(p)))
            goto fail;
        s->ready_rd = p[0];
        s->ready_wr = p[1];
    } else if (cfg->ready_mode == READY_NOTIFY) {
        if ((err = channel_notify_open(&s->notify, cfg->notify_base))) {
            fail(s, CODE_SPAWN, err, "cannot create the notify socket: %s",
                 strerror(err));
            starter_close(s);
            return err;
        }
    }
    return 0;
fail:
    fail(s, CODE_SPAWN, err, "cannot create channels: %s", strerror(err));
    starter_close(s);
    return err;
}

static void reap_failed_exec(struct process *p)
{
    /* the child writes its failure and _exits at once: this wait is short */
    while (process_poll(p) == 0) {
        if (p->pidfd >= 0)
            (void)sys_wait_readable(p->pidfd, 1.0);
        else
            usleep(1000);
    }
}

/* The exec failed: the child is exiting with nothing to report but that. */
static int exec_failed(struct starter *s, const struct spawn_failure *f)
{
    reap_failed_exec(&s->spawned);
    drop_process(s, &s->spawned);
    fail(s, CODE_SPAWN, f->err, "cannot %s %s: %s", spawn_step_name(f->step),
         s->file, strerror(f->err));
    return f->err ? f->err : EPROTO;
}

static int start_ready_phase(struct starter *s);

/* The exec worked: without a helper, the app's pid is known now. */
static int exec_succeeded(struct starter *s)
{
    s->exec_done = 1;
    if (!s->cfg.has_helper) {
        s->pid_known = 1;
        s->helper_done = 1;
        return start_ready_phase(s);
    }
    return s->state;
}

int starter_spawn(struct starter *s, struct spawn_request *req)
{
    struct spawn_fd fds[2];
    int n = 0;
    if (s->pid_wr >= 0)
        fds[n++] = (struct spawn_fd){ s->cfg.pid_fd, s->pid_wr };
    if (s->ready_wr >= 0)
        fds[n++] = (struct spawn_fd){ s->cfg.ready_fd, s->ready_wr };
    req->fds = fds;
    req->nfds = n;
    req->subreaper = s->cfg.has_helper;
    snprintf(s->file, sizeof s->file, "%s", req->file);
    pid_t pid;
    struct spawn_failure failure;
    int err = 0;
    /* a helper's app must be proven to descend from it, even once the
     * helper has exited: the launcher adopts what it leaves */
    if (s->cfg.has_helper) {
        if ((err = process_adopt_begin())) {
            sys_close(&s->pid_wr);
            sys_close(&s->ready_wr);
            fail(s, CODE_SPAWN, err, "cannot become a child subreaper: %s",
                 strerror(err));
            return err;
        }
        s->adopting = 1;
    }
    err = spawn_start(req, &pid, &s->exec_fd, &failure);
    req->fds = NULL;
    req->nfds = 0;
    /* the child's ends are the child's now: the launcher must not hold them,
     * or it would never see end of file on them */
    sys_close(&s->pid_wr);
    sys_close(&s->ready_wr);
    if (err) {
        fail(s, CODE_SPAWN, err, "cannot start %s: %s", req->file,
             strerror(err));
        return err;
    }
    /* an unreaped child cannot vanish, so this only fails for lack of
     * descriptors; the child is then watched by probing */
    if (process_open(&s->spawned, pid, 1) != 0) {
        s->spawned.pid = pid;
        s->spawned.is_child = 1;
    }
    if (s->exec_fd < 0 && failure.step)
        return exec_failed(s, &failure);
    push_event(s, EVENT_SPAWNED, pid, NULL, 0);
    if (s->cfg.has_helper)
        (void)process_start_time(pid, &s->spawned_start);
    if ((s->pid_rd >= 0 && (err = watch_fd(s, s->pid_rd))) ||
        (s->spawned.pidfd >= 0 && (err = watch_fd(s, s->spawned.pidfd)))) {
        fail(s, CODE_SPAWN, err, "cannot watch %s: %s", req->file,
             strerror(err));
        return err;
    }
    /* with the verdict of the exec known already (a real vfork), the step
     * that reads it is skipped; else exec_fd is not watched yet: the first
     * step reads it, and only where the child has not got that far (vfork
     * emulated as fork, as under valgrind) is it watched */
    s->fresh = 1;
    if (s->exec_fd < 0)
        return exec_succeeded(s) == STARTER_RUNNING ? 0 : s->err;
    return 0;
}

/* Who may send a ready message: decided by the kernel-attested sender pid
 * alone (the socket is writable by every user). "all" admits the app's
 * descendants, never an unrelated process. */
static int admitted(struct starter *s, pid_t sender)
{
    if (sender <= 0)
        return 0;
    pid_t app = starter_app(s)->pid;
    if (sender == app)
        return 1;
    if (s->cfg.access != ACCESS_MAIN && s->cfg.has_helper &&
        sender == s->spawned.pid)
        return 1;
    return s->cfg.access == ACCESS_ALL && app > 0 &&
           process_descends_from(sender, app, NULL);
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
    push_event(s, EVENT_IGNORED, s->ignored_pid, s->ignored_what,
               strlen(s->ignored_what));
    if (s->nevents > 0 && s->events[s->nevents - 1].kind == EVENT_IGNORED)
        s->events[s->nevents - 1].count = s->ignored;
    s->ignored = 0;
}

/* The adoption window closes once the app's pid is known and its helper
 * reaped (or the start is over): an app the helper left is the launcher's
 * child by then, to be reaped by pid with its exit status. */
static void finish_adoption(struct starter *s)
{
    if (!s->adopting)
        return;
    pid_t parent;
    if (s->pid_known && s->app.pid > 0 &&
        process_parent(s->app.pid, &parent) == 0 && parent == getpid())
        process_own_adopted(&s->app);
    s->adopting = 0;
    process_adopt_end();
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

static int verify_pid(struct starter *s, long long v)
{
    if (v <= 0)
        return fail(s, CODE_BAD_PID, 0, "helper reported pid %lld: out of range", v);
    if (v == 1)
        return fail(s, CODE_BAD_PID, 0, "helper reported pid 1: init is no app");
    if (v == (long long)getpid())
        return fail(s, CODE_BAD_PID, 0, "helper reported pid %lld: the launcher itself", v);
    if (v == (long long)s->spawned.pid)
        return fail(s, CODE_BAD_PID, 0, "helper reported pid %lld: the helper itself", v);
    int err = process_open(&s->app, (pid_t)v, 0);
    if (err)
        return fail(s, CODE_BAD_PID, err, "helper reported pid %lld: %s", v,
                    err == ESRCH ? "no such process" : strerror(err));
    unsigned long long started;
    err = process_start_time((pid_t)v, &started);
    if (err || started < s->spawned_start) {
        process_release(&s->app);
        if (err)
            return fail(s, CODE_BAD_PID, err, "helper reported pid %lld: %s", v,
                        err == ESRCH ? "no such process" : strerror(err));
        return fail(s, CODE_BAD_PID, 0,
                    "helper reported pid %lld: started before the helper", v);
    }
    /* descent: its parent chain reaches the helper while that lives (the
     * helper is a child subreaper: what it orphans stays in its tree), or,
     * once it has exited, the launcher through a process the launcher
     * adopted (not one it started), itself no older than the helper */
    pid_t via;
    int descends = process_descends_from((pid_t)v, s->spawned.pid, NULL);
    if (!descends && (s->helper_done || process_is_exiting(s->spawned.pid)) &&
        process_descends_from((pid_t)v, getpid(), &via)) {
        unsigned long long via_started;
        descends = !process_is_own_child(via) &&
                   process_start_time(via, &via_started) == 0 &&
                   via_started >= s->spawned_start;
    }
    if (!descends) {
        process_release(&s->app);
        return fail(s, CODE_BAD_PID, 0,
                    "helper reported pid %lld: not a process it started", v);
    }
    if (s->cfg.app_uid != (uid_t)-1) {
        uid_t uids[4];
        err = process_uids((pid_t)v, uids);
        int wrong = -1;
        for (int i = 0; !err && i < 4; i++)
            if (uids[i] != s->cfg.app_uid)
                wrong = i;
        if (err || wrong >= 0) {
            process_release(&s->app);
            if (err)
                return fail(s, CODE_BAD_PID, err, "helper reported pid %lld: %s",
                            v, err == ESRCH ? "no such process" : strerror(err));
            return fail(s, CODE_BAD_PID, 0,
                        "helper reported pid %lld: it runs as uid %lu, not %lu",
                        v, (unsigned long)uids[wrong],
                        (unsigned long)s->cfg.app_uid);
        }
    }
    if (s->app.pidfd >= 0 && (err = watch_fd(s, s->app.pidfd)))
        return fail(s, CODE_BAD_PID, err, "cannot watch pid %lld: %s", v,
                    strerror(err));
    return s->state;
}

/* The ready channel (and the notify socket) is only read once the app's pid
 * is known, so every message can be checked against it. */
static int start_ready_phase(struct starter *s)
{
    int err = 0;
    if (s->ready_rd >= 0)
        err = watch_fd(s, s->ready_rd);
    else if (s->notify.fd >= 0)
        err = watch_fd(s, s->notify.fd);
    if (err)
        return fail(s, CODE_SPAWN, err, "cannot watch the ready channel: %s",
                    strerror(err));
    return s->state;
}

static void read_pid_channel(struct starter *s)
{
    long long v;
    switch (pid_reader_feed(&s->pid_reader, s->pid_rd, &v)) {
    case PIDREC_READ_DONE:
        drop_fd(s, &s->pid_rd);
        if (verify_pid(s, v) != STARTER_RUNNING)
            return;
        s->pid_known = 1;
        push_event(s, EVENT_PID, v, NULL, 0);
        if (s->helper_done)
            finish_adoption(s);
        start_ready_phase(s);
        return;
    case PIDREC_READ_EOF:
        drop_fd(s, &s->pid_rd);
        if (s->pid_reader.len > 0)
            fail(s, CODE_BAD_PID, 0, "short pid record: %zu of %s",
                 s->pid_reader.len,
                 s->cfg.pid_format == PID_FORMAT_LINE ? "a line" : "4 bytes");
        else
            s->pid_eof = 1;
        return;
    case PIDREC_READ_MALFORMED:
        drop_fd(s, &s->pid_rd);
        fail(s, CODE_BAD_PID, 0, "malformed pid record");
        return;
    case PIDREC_READ_ERROR:
        fail(s, CODE_HELPER, errno, "cannot read the pid channel: %s",
             strerror(errno));
        return;
    default:
        return;
    }
}

static void read_ready_fd(struct starter *s)
{
    char buf[READY_LINE_MAX];
    for (int i = 0; i < STARTER_READS_PER_STEP; i++) {
        pid_t sender;
        int trunc;
        ssize_t n = channel_recv(s->ready_rd, buf, sizeof buf, &sender, &trunc);
        if (n < 0) {
            if (errno != EAGAIN)
                fail(s, CODE_READY_CLOSED, errno,
                     "cannot read the ready channel: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            s->ready_eof = 1;
            drop_fd(s, &s->ready_rd);
            return;
        }
        if (!admitted(s, sender)) {
            refuse(s, sender, "ready line");
            continue;
        }
        if (!s->line) {
            /* only once there is something to keep: 4 KiB per start in
             * flight otherwise */
            s->line = malloc(sizeof *s->line);
            if (!s->line) {
                fail(s, CODE_READY_CLOSED, ENOMEM,
                     "cannot read the ready channel: %s", strerror(ENOMEM));
                return;
            }
            ready_line_init(s->line);
        }
        size_t used;
        int v = ready_line_feed(s->line, buf, (size_t)n, &used);
        if (v == READY_LINE_DONE) {
            s->ready_seen = 1;
            return;
        }
        if (v == READY_LINE_TOO_LONG) {
            fail(s, CODE_PROTOCOL, 0, "ready line longer than %d bytes",
                 READY_LINE_MAX - 1);
            return;
        }
    }
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
    push_event(s, EVENT_STATUS, 0, text, len);
}

static void read_notify(struct starter *s)
{
    char buf[NOTIFY_DATAGRAM_MAX + 1];
    for (int i = 0; i < STARTER_READS_PER_STEP; i++) {
        pid_t sender;
        int trunc;
        ssize_t n = channel_recv(s->notify.fd, buf, sizeof buf, &sender, &trunc);
        if (n < 0) {
            if (errno != EAGAIN)
                fail(s, CODE_PROTOCOL, errno, "cannot read the notify socket: %s",
                     strerror(errno));
            return;
        }
        if (!admitted(s, sender)) {
            refuse(s, sender, "notify datagram");
            continue;
        }
        if (trunc || n > NOTIFY_DATAGRAM_MAX) {
            fail(s, CODE_PROTOCOL, 0, "notify datagram over %d bytes",
                 NOTIFY_DATAGRAM_MAX);
            return;
        }
        struct notify_msg m;
        if (notify_parse(buf, (size_t)n, &m) < 0) {
            fail(s, CODE_PROTOCOL, 0, "malformed notify datagram: %s", m.error);
            return;
        }
        if (m.has_mainpid) {
            pid_t expected = starter_app(s)->pid;
            if (m.mainpid != (long long)expected) {
                fail(s, CODE_PID_MISMATCH, 0,
                     "app claimed MAINPID=%lld but its pid is %d", m.mainpid,
                     (int)expected);
                return;
            }
            push_event(s, EVENT_MAINPID, m.mainpid, NULL, 0);
        }
        if (m.has_status)
            set_status(s, m.status, m.status_len);
        if (m.has_errno) {
            s->app_errno = m.errno_value;
            push_event(s, EVENT_ERRNO, m.errno_value, NULL, 0);
        }
        if (m.has_extend)
            push_event(s, EVENT_EXTEND, (long long)m.extend_usec, NULL, 0);
        if (m.stopping)
            push_event(s, EVENT_STOPPING, 0, NULL, 0);
        if (m.ready) {
            s->ready_seen = 1;
            return;
        }
    }
}

int starter_step(struct starter *s)
{
    if (s->state != STARTER_RUNNING)
        return s->state;
    process_reap_abandoned();

    /* Right after the spawn an app that was exec'd a moment ago has had no
     * time to write or die: the first step leaves the probing (a wait4 and
     * a read that would fail) to the wait, whose descriptors wake it at
     * once if it did. Only with a pidfd: death must wake the wait too. */
    int fresh = s->fresh;
    s->fresh = 0;
    if (fresh && s->exec_done && !s->cfg.has_helper &&
        s->cfg.ready_mode != READY_NONE && s->spawned.pidfd >= 0)
        return s->state;

    if (!s->exec_done) {
        struct spawn_failure f;
        int r = spawn_read_failure(s->exec_fd, &f);
        if (r < 0 && errno == EAGAIN) {
            /* nothing else can happen before the exec */
            if (!s->exec_watched) {
                int err = watch_fd(s, s->exec_fd);
                if (err)
                    return fail(s, CODE_SPAWN, err, "cannot watch the exec: %s",
                                strerror(err));
                s->exec_watched = 1;
            }
            return s->state;
        }
        int err = errno;
        drop_fd(s, &s->exec_fd);
        if (r < 0)
            return fail(s, CODE_SPAWN, err,
                        "cannot learn whether the exec worked: %s", strerror(err));
        if (r == 1) {
            (void)exec_failed(s, &f);
            return s->state;
        }
        if (exec_succeeded(s) != STARTER_RUNNING)
            return s->state;
    }

    struct process *app = starter_app(s);
    if (s->cfg.has_helper) {
        if (!s->helper_done) {
            int fd = s->spawned.pidfd;
            if (process_poll(&s->spawned) == 1) {
                if (fd >= 0)
                    unwatch_fd(s, fd);
                s->helper_done = 1;
                s->helper_status = s->spawned.end == PROCESS_EXITED
                                       ? s->spawned.code
                                       : -s->spawned.code;
                push_event(s, EVENT_HELPER_EXIT, s->helper_status, NULL, 0);
                if (s->pid_known)
                    finish_adoption(s);
            }
        }
        /* read after polling the helper: once it is reaped, all it wrote is
         * in the pipe */
        if (!s->pid_known && s->pid_rd >= 0) {
            read_pid_channel(s);
            if (s->state != STARTER_RUNNING)
                return s->state;
        }
        if (!s->pid_known && (s->pid_eof || s->helper_done)) {
            if (!s->helper_done) {
                /* an exiting helper closed it: wait for its status */
                if (process_is_exiting(s->spawned.pid))
                    return s->state;
                return fail(s, CODE_HELPER, 0,
                            "helper closed the pid channel without a pid");
            }
            char how[64];
            describe_end(&s->spawned, how, sizeof how);
            return fail(s, CODE_HELPER, 0, "helper %s without reporting a pid",
                        how);
        }
        if (s->helper_done && s->helper_status != 0) {
            char how[64];
            describe_end(&s->spawned, how, sizeof how);
            return fail(s, CODE_HELPER, 0, "helper %s", how);
        }
        if (!s->pid_known)
            return s->state;
    }

    /* Death first, then drain: a ready message sent before the app exited
     * still counts. */
    if (!s->app_dead) {
        int fd = app->pidfd;
        if (process_poll(app) == 1) {
            if (fd >= 0)
                unwatch_fd(s, fd);
            s->app_dead = 1;
        }
    }
    if (!s->ready_seen) {
        if (s->cfg.ready_mode == READY_FD && s->ready_rd >= 0)
            read_ready_fd(s);
        else if (s->cfg.ready_mode == READY_NOTIFY)
            read_notify(s);
        else if (s->cfg.ready_mode == READY_NONE)
            s->ready_seen = 1;
        report_refused(s);
        if (s->state != STARTER_RUNNING)
            return s->state;
    }
    if (s->ready_seen) {
        if (!s->helper_done)
            return s->state;
        s->state = STARTER_READY;
        return s->state;
    }
    if (s->app_dead) {
        /* an app that died as its helper's child comes to the launcher,
         * with its exit status, once the helper has exited */
        if (!s->helper_done)
            return s->state;
        char how[64];
        describe_end(app, how, sizeof how);
        return fail(s, CODE_DIED, s->app_errno, "app %s before it was ready",
                    how);
    }
    if (s->ready_eof) {
        /* an exiting app closes its descriptors before it becomes a zombie:
         * if that is why, wait for its death and report that instead */
        if (process_is_exiting(app->pid))
            return s->state;
        return fail(s, CODE_READY_CLOSED, 0,
                    "app closed the ready channel without a ready message");
    }
    return s->state;
}

void starter_salvage_pid(struct starter *s)
{
    if (!s->cfg.has_helper || s->pid_known || s->pid_rd < 0)
        return;
    /* the start failed (or was abandoned) while the pid was on its way: a
     * complete, verified record still names an app to terminate. The
     * verdict of the start stays as it was. */
    int state = s->state, code = s->code, err = s->err;
    char message[sizeof s->message];
    memcpy(message, s->message, sizeof message);
    s->state = STARTER_RUNNING;
    read_pid_channel(s);
    s->state = state;
    s->code = code;
    s->err = err;
    memcpy(s->message, message, sizeof message);
}

double starter_poll_interval(const struct starter *s)
{
    if (s->state != STARTER_RUNNING || !s->exec_done)
        return 0;
    if (s->cfg.has_helper && !s->helper_done && s->spawned.pidfd < 0)
        return STARTER_PROBE_INTERVAL;
    const struct process *app = s->cfg.has_helper ? &s->app : &s->spawned;
    if (s->pid_known && !s->app_dead && app->pidfd < 0)
        return STARTER_PROBE_INTERVAL;
    if (s->pid_eof && !s->helper_done)
        return STARTER_PROBE_INTERVAL; /* the helper is exiting */
    return 0;
}

int starter_in_pid_phase(const struct starter *s)
{
    return !s->pid_known || !s->helper_done;
}

void starter_close(struct starter *s)
{
    finish_adoption(s);
    sys_close(&s->exec_fd);
    sys_close(&s->pid_rd);
    sys_close(&s->pid_wr);
    sys_close(&s->ready_rd);
    sys_close(&s->ready_wr);
    channel_notify_close(&s->notify);
    process_release(&s->spawned);
    process_release(&s->app);
    sys_close(&s->epoll_fd);
    free(s->line);
    s->line = NULL;
    starter_clear_events(s);
    free(s->events);
    s->events = NULL;
    s->cap_events = 0;
    free(s->status);
    s->status = NULL;
}
