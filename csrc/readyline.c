/*
 * readyline.c: accumulate one bounded ready line.
 */
#include "readyline.h"

#include <stdlib.h>
#include <string.h>

void ready_line_init(struct ready_line *l)
{
    l->len = l->cap = 0;
    l->done = READY_LINE_MORE;
    l->buf = NULL;
}

int ready_line_feed(struct ready_line *l, const char *data, size_t n,
                    size_t *consumed)
{
    *consumed = 0;
    if (l->done == READY_LINE_DONE || l->done == READY_LINE_TOO_LONG)
        return l->done;
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    if (take > READY_LINE_MAX - 1 - l->len) {
        /* the name plus its newline must fit in READY_LINE_MAX bytes */
        l->done = READY_LINE_TOO_LONG;
        return l->done;
    }
    if (l->len + take > l->cap || !l->buf) {
        size_t cap = l->cap ? l->cap : 32;
        while (cap < l->len + take)
            cap *= 2;
        if (cap > READY_LINE_MAX)
            cap = READY_LINE_MAX;
        char *grown = realloc(l->buf, cap);
        if (!grown)
            return READY_LINE_NOMEM;
        l->buf = grown;
        l->cap = cap;
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

void ready_line_free(struct ready_line *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}
