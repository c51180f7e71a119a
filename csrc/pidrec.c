/*
 * pidrec.c: parse and read pid records.
 */
#include "pidrec.h"
#include "sys.h"

#include <errno.h>

int pidrec_parse(int format, const unsigned char *buf, size_t len,
                 long long *value, size_t *used)
{
    if (format == PID_FORMAT_INT32LE) {
        if (len < 4)
            return PIDREC_MORE;
        unsigned long u = (unsigned long)buf[0] | (unsigned long)buf[1] << 8 |
                          (unsigned long)buf[2] << 16 |
                          (unsigned long)buf[3] << 24;
        /* two's complement by arithmetic, not by a cast that is
         * implementation-defined for values over INT32_MAX */
        *value = u > 0x7fffffffUL ? (long long)u - 0x100000000LL : (long long)u;
        *used = 4;
        return PIDREC_DONE;
    }
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (c == '\n') {
            if (i == 0)
                return PIDREC_MALFORMED;
            *value = v;
            *used = i + 1;
            return PIDREC_DONE;
        }
        if (c < '0' || c > '9' || i >= PIDREC_MAX - 1)
            return PIDREC_MALFORMED;
        v = v * 10 + (c - '0');
        if (v > 0x7fffffffLL)
            return PIDREC_MALFORMED;
    }
    return PIDREC_MORE;
}

void pid_reader_init(struct pid_reader *r, int format)
{
    r->format = format;
    r->len = 0;
}

int pid_reader_feed(struct pid_reader *r, int fd, long long *value)
{
    for (;;) {
        /* int32le: read exactly what is missing; line: one byte at a time,
         * so nothing past the newline is ever consumed. Records are tiny. */
        size_t want = r->format == PID_FORMAT_INT32LE ? 4 - r->len : 1;
        ssize_t n = sys_read(fd, r->buf + r->len, want);
        if (n < 0)
            return errno == EAGAIN ? PIDREC_READ_AGAIN : PIDREC_READ_ERROR;
        if (n == 0)
            return PIDREC_READ_EOF;
        r->len += (size_t)n;
        size_t used;
        switch (pidrec_parse(r->format, r->buf, r->len, value, &used)) {
        case PIDREC_DONE: return PIDREC_READ_DONE;
        case PIDREC_MALFORMED: return PIDREC_READ_MALFORMED;
        default: break;
        }
    }
}
