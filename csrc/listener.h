/*
 * listener.h: an app's notify socket after ready.
 *
 * For ready = "notify" under a loop the socket stays open while the app
 * runs: STATUS=, RELOADING=1, READY=1, STOPPING=1, WATCHDOG=, MAINPID=
 * keep coming. The same sender rules as before ready hold: the app's
 * (main) pid, and with access "all" its descendants and the members of its
 * cgroup; a helper has been reaped by now, so its pid (free for reuse) is
 * no longer admitted.
 */
#ifndef APPSTART_LISTENER_H
#define APPSTART_LISTENER_H

#include "notify.h"
#include "notifysock.h"
#include "process.h"

#include <stddef.h>
#include <sys/types.h>

/* main_start of a main that had ended as the socket was taken */
#define LISTENER_MAIN_ENDED (~0ULL)

struct listener {
    struct notify_socket *sock;   /* owned (malloc'd); NULL once closed */
    int access;                   /* enum starter_access */
    pid_t main;                   /* the app's pid */
    unsigned long long main_start; /* the main's start time (main_holder);
                                     LISTENER_MAIN_ENDED for a main that
                                     had ended and been reaped as the
                                     socket was taken: no process that has
                                     its number is it */
    int main_known;               /* main_start is the main's own (not a
                                     lower bound: /proc could not say, the
                                     launcher out of descriptors as it
                                     took the socket) */
    int main_over;                /* the launcher has seen the main end
                                     and read what it sent by then
                                     (listener_end_main): its number
                                     admits nobody from then on */
    unsigned long long app_start; /* the app's start time (or a lower
                                     bound of it), as it was started: what
                                     a MAINPID= names is no older, however
                                     the main has moved since */
    uid_t app_uid;                /* (uid_t)-1: not checked */
    char cgroup[512];             /* the app's cgroup, "" when none */
    pid_t pgid;                   /* the app's process group (kill_mode
                                     "group"), 0 when none */
    unsigned long long pgid_start; /* the start time of its leader */
    char *held;                   /* a datagram whose sender could not be
                                     checked yet (out of descriptors),
                                     malloc'd; NULL when none */
    size_t held_len;
    int held_trunc;
    pid_t held_sender;
    int held_early;               /* held already as the main's end was
                                     seen (listener_end_main): judged as
                                     then, its main's number admitted */
};

enum listener_read_result {
    LISTENER_NONE = 0,  /* nothing (more) to read */
    LISTENER_MESSAGE,   /* *m parsed from an admitted sender */
    LISTENER_REFUSED,   /* from *sender, not admitted: not parsed */
    LISTENER_MALFORMED, /* admitted, but broke the protocol (m->error) */
    LISTENER_ERROR,     /* errno says */
    LISTENER_LATER      /* a datagram whose sender cannot be checked for
                           now (the launcher out of descriptors or
                           memory) is held, and what follows it: ask
                           again a moment later */
};

/* The next datagram, never waiting. buf holds NOTIFY_DATAGRAM_MAX + 1
 * bytes; m points into it. */
int listener_read(struct listener *l, char *buf, struct notify_msg *m, pid_t *sender);

/* MAINPID= pid after ready: held through *out, it must be a live process
 * other than 1 and the launcher, no older than the app and descended from
 * it, running as the app's user where one was given. Returns 0 (the
 * listener's main pid is pid from now) or an errno value, why saying what
 * failed. */
int listener_verify_main(struct listener *l, pid_t pid, struct process *out, char *why,
                         size_t why_len);

/* The main pid, which the caller has seen end (kill_mode "cgroup": the
 * app runs on while its cgroup has members), after it has read all the
 * socket held then (the main's last words, a MAINPID= among them): once
 * the main is reaped its number is free, and whoever takes it, sends and
 * is gone too before the socket is read, cannot be told from the main by
 * its number; so a datagram from that number is refused from now on
 * (one held then, the launcher out of descriptors as it read it, is
 * judged as before: it was sent before the end; not what is still queued
 * behind it). Nothing is done when the main is another by now (that read
 * moved it): returns 1 when done, else 0. */
int listener_end_main(struct listener *l, pid_t pid);

int listener_fd(const struct listener *l);

/* Close the socket and remove its directory. Idempotent. */
void listener_close(struct listener *l);

#endif
