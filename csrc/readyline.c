/*
 * readyline.c: accumulate one bounded ready line.
 */
#include "readyline.h"

#include <string.h>

void ready_line_init(struct ready_line *l)
{
    l->len = 0;
    l->done = READY_LINE_MORE;
}

int ready_line_feed(struct ready_line *l, const char *data, size_t n,
                    size_t *consumed)
{
    *consumed = 0;
    if (l->done)
        return l->done;
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    if (take > READY_LINE_MAX - 1 - l->len) {
        /* the name plus its newline must fit in READY_LINE_MAX bytes */
        l->done = READY_LINE_TOO_LONG;
        return l->done;
    }
    memcpy(l->buf + l->len, data, take);
    l->len += take;
    *consumed = take;
    if (nl) {
        *consumed = take + 1;
        l->done = READY_LINE_DONE;
    }
    return l->done;
}
