/*
 * notify.h: parse one sd_notify datagram ("KEY=VALUE" lines).
 *
 * Understood: READY=1, STATUS=, MAINPID=, EXTEND_TIMEOUT_USEC=, ERRNO=,
 * STOPPING=1, RELOADING=1, WATCHDOG=1 | trigger, WATCHDOG_USEC=; other keys
 * are ignored, as systemd ignores them. A datagram
 * with a NUL byte, a line without '=', or a number that is not one breaks
 * the protocol. Pure (bytes in, fields out) so it can be fuzzed.
 */
#ifndef APPSTART_NOTIFY_H
#define APPSTART_NOTIFY_H

#include <stddef.h>

/* systemd's own bound for a notification datagram */
#define NOTIFY_DATAGRAM_MAX 4096

struct notify_msg {
    int ready;
    int stopping;
    int reloading;
    int watchdog;       /* NOTIFY_WATCHDOG_PING or _TRIGGER, 0 when none */
    int has_watchdog_usec;
    unsigned long long watchdog_usec;
    int has_status;
    const char *status; /* points into the parsed buffer; not terminated */
    size_t status_len;
    int has_mainpid;
    long long mainpid;
    int has_extend;
    unsigned long long extend_usec;
    int has_errno;
    int errno_value;
    const char *error;  /* why it was malformed */
};

enum { NOTIFY_WATCHDOG_PING = 1, NOTIFY_WATCHDOG_TRIGGER = 2 };

/* Returns 0, or -1 with m->error set when the datagram is malformed. */
int notify_parse(const char *buf, size_t len, struct notify_msg *m);

#endif
