/* libFuzzer target: the ready-line accumulator, fed in chunks whose sizes
 * come from the input itself. Checks the bound and that the name never
 * holds a newline. */
#include "../../csrc/readyline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] * 37 + 1; /* 1 .. 9436: crosses the limit */
    data++;
    size--;
    struct ready_line line;
    ready_line_init(&line);
    int verdict = READY_LINE_MORE;
    size_t at = 0;
    while (at < size && verdict == READY_LINE_MORE) {
        size_t n = size - at < chunk ? size - at : chunk;
        size_t consumed;
        verdict = ready_line_feed(&line, (const char *)data + at, n, &consumed);
        if (consumed > n || verdict == READY_LINE_NOMEM)
            abort();
        at += consumed;
    }
    if (line.len > READY_LINE_MAX - 1 || line.len > line.cap)
        abort();
    if (line.len && memchr(line.buf, '\n', line.len))
        abort();
    if (verdict == READY_LINE_DONE) {
        const uint8_t *nl = memchr(data, '\n', size);
        if (!nl || (size_t)(nl - data) != line.len || (line.len && memcmp(line.buf, data, line.len)))
            abort();
    }
    ready_line_free(&line);
    return 0;
}
