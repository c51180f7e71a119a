/*
 * readyline.h: the fd protocol's ready line: the app's name, then "\n".
 *
 * Bytes are accumulated up to READY_LINE_MAX (the newline included); a line
 * that does not fit breaks the protocol. Pure, so it can be fuzzed.
 */
#ifndef APPSTART_READYLINE_H
#define APPSTART_READYLINE_H

#include <stddef.h>

#define READY_LINE_MAX 4096

enum ready_line_verdict {
    READY_LINE_MORE = 0,
    READY_LINE_DONE,    /* the name is buf[0 .. len) */
    READY_LINE_TOO_LONG
};

struct ready_line {
    size_t len;
    int done;
    char buf[READY_LINE_MAX];
};

void ready_line_init(struct ready_line *l);

/* Feed n bytes; *consumed says how many were taken (bytes after the newline
 * are not). Once DONE or TOO_LONG, further feeds return the same verdict. */
int ready_line_feed(struct ready_line *l, const char *data, size_t n,
                    size_t *consumed);

#endif
