/*
 * readyline.h: the fd protocol's ready line: the app's name, then "\n".
 *
 * Bytes are accumulated up to READY_LINE_MAX (the newline included); a line
 * that does not fit breaks the protocol. The buffer grows with what comes
 * (a name is a few bytes; a start in flight holds no more than it got).
 * Pure, so it can be fuzzed.
 */
#ifndef APPSTART_READYLINE_H
#define APPSTART_READYLINE_H

#include <stddef.h>

#define READY_LINE_MAX 4096

enum ready_line_verdict {
    READY_LINE_MORE = 0,
    READY_LINE_DONE,    /* the name is buf[0 .. len) */
    READY_LINE_TOO_LONG,
    READY_LINE_NOMEM    /* out of memory: nothing was taken */
};

struct ready_line {
    size_t len, cap;
    int done;
    char *buf;          /* malloc'd, cap bytes; NULL until bytes come */
};

void ready_line_init(struct ready_line *l);

/* Feed n bytes; *consumed says how many were taken (bytes after the newline
 * are not). Once DONE or TOO_LONG, further feeds return the same verdict. */
int ready_line_feed(struct ready_line *l, const char *data, size_t n,
                    size_t *consumed);

/* Free the buffer. */
void ready_line_free(struct ready_line *l);

#endif
