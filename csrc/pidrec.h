/*
 * pidrec.h: the pid record a helper writes on the pid channel.
 *
 * int32le: exactly 4 bytes, little endian (the classic suid-helper format).
 * line:    decimal digits and "\n" (as dbus-daemon --print-pid=FD writes).
 *
 * The parser is pure (bytes in, verdict out) so it can be fuzzed; the reader
 * feeds it from a non-blocking descriptor, short reads and EINTR included.
 */
#ifndef APPSTART_PIDREC_H
#define APPSTART_PIDREC_H

#include <stddef.h>

enum pid_format { PID_FORMAT_INT32LE = 0, PID_FORMAT_LINE };

/* 10 digits of INT32_MAX and a newline */
#define PIDREC_MAX 11

enum pidrec_verdict {
    PIDREC_MORE = 0,  /* a valid prefix: need more bytes */
    PIDREC_DONE,      /* *value is set; *used bytes were the record */
    PIDREC_MALFORMED  /* not a record in this format */
};

/* Parse the bytes read so far. *value may be any int32 (range checks are the
 * caller's: 0, negative and so on are "not a plausible app"). */
int pidrec_parse(int format, const unsigned char *buf, size_t len,
                 long long *value, size_t *used);

struct pid_reader {
    int format;
    size_t len;
    unsigned char buf[PIDREC_MAX];
};

enum pidrec_read {
    PIDREC_READ_AGAIN = 0, /* nothing more yet */
    PIDREC_READ_DONE,      /* *value set */
    PIDREC_READ_EOF,       /* end of file before a whole record (r->len says
                              how many bytes came) */
    PIDREC_READ_MALFORMED,
    PIDREC_READ_ERROR      /* errno set */
};

void pid_reader_init(struct pid_reader *r, int format);

/* Read what is available without blocking, never past the record. */
int pid_reader_feed(struct pid_reader *r, int fd, long long *value);

#endif
