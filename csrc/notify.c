/*
 * notify.c: the sd_notify datagram parser.
 */
#include "notify.h"

#include <string.h>

/* Decimal digits only, no sign, no spaces, at most max_digits, value at most
 * limit. */
static int parse_number(const char *s, size_t len, size_t max_digits,
                        unsigned long long limit, unsigned long long *out)
{
    if (len == 0 || len > max_digits)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int key_is(const char *key, size_t klen, const char *name)
{
    size_t n = strlen(name);
    return klen == n && memcmp(key, name, n) == 0;
}

static int fail(struct notify_msg *m, const char *why)
{
    m->error = why;
    return -1;
}

int notify_parse(const char *buf, size_t len, struct notify_msg *m)
{
    memset(m, 0, sizeof *m);
    if (len > NOTIFY_DATAGRAM_MAX)
        return fail(m, "datagram over 4096 bytes");
    if (memchr(buf, '\0', len))
        return fail(m, "NUL byte in datagram");
    size_t at = 0;
    while (at < len) {
        const char *line = buf + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t llen = nl ? (size_t)(nl - line) : len - at;
        at += llen + (nl ? 1 : 0);
        if (llen == 0)
            continue;
        const char *eq = memchr(line, '=', llen);
        if (!eq || eq == line)
            return fail(m, "line without KEY=");
        size_t klen = (size_t)(eq - line);
        const char *val = eq + 1;
        size_t vlen = llen - klen - 1;
        unsigned long long v;
        if (key_is(line, klen, "READY")) {
            if (vlen != 1 || val[0] != '1')
                return fail(m, "READY= is not 1");
            m->ready = 1;
        } else if (key_is(line, klen, "STOPPING")) {
            if (vlen != 1 || val[0] != '1')
                return fail(m, "STOPPING= is not 1");
            m->stopping = 1;
        } else if (key_is(line, klen, "RELOADING")) {
            if (vlen != 1 || val[0] != '1')
                return fail(m, "RELOADING= is not 1");
            m->reloading = 1;
        } else if (key_is(line, klen, "WATCHDOG")) {
            if (vlen == 1 && val[0] == '1')
                m->watchdog = NOTIFY_WATCHDOG_PING;
            else if (vlen == 7 && memcmp(val, "trigger", 7) == 0)
                m->watchdog = NOTIFY_WATCHDOG_TRIGGER;
            else
                return fail(m, "WATCHDOG= is neither 1 nor trigger");
        } else if (key_is(line, klen, "WATCHDOG_USEC")) {
            /* (0: the watchdog off, as with systemd) */
            if (parse_number(val, vlen, 20, ~0ULL, &v) < 0)
                return fail(m, "WATCHDOG_USEC= is not a number of microseconds");
            m->has_watchdog_usec = 1;
            m->watchdog_usec = v;
        } else if (key_is(line, klen, "STATUS")) {
            m->has_status = 1;
            m->status = val;
            m->status_len = vlen;
        } else if (key_is(line, klen, "MAINPID")) {
            /* (0 names no process: as systemd's parse_pid, malformed; it
             * was taken for a claim of another pid, pid_mismatch) */
            if (parse_number(val, vlen, 10, 0x7fffffffULL, &v) < 0 || v == 0)
                return fail(m, "MAINPID= is not a pid");
            m->has_mainpid = 1;
            m->mainpid = (long long)v;
        } else if (key_is(line, klen, "EXTEND_TIMEOUT_USEC")) {
            if (parse_number(val, vlen, 20, ~0ULL, &v) < 0)
                return fail(m, "EXTEND_TIMEOUT_USEC= is not a number");
            m->has_extend = 1;
            m->extend_usec = v;
        } else if (key_is(line, klen, "ERRNO")) {
            if (parse_number(val, vlen, 10, 0x7fffffffULL, &v) < 0)
                return fail(m, "ERRNO= is not a number");
            m->has_errno = 1;
            m->errno_value = (int)v;
        }
        /* any other key: ignored, as systemd does */
    }
    return 0;
}
