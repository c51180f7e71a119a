/* libFuzzer target: the output reader's line splitting and ring, fed
 * through a real pipe in chunks whose sizes, and a ring size, come from the
 * input itself. Checks that every line is at most OUTPUT_LINE_MAX bytes and
 * holds no newline, that the lines hold every byte that is not a line end,
 * and that the ring keeps the last lines, within its bytes. */
#include "../../csrc/output.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t delivered, newlines_kept, last_len;
static char last[OUTPUT_LINE_MAX];

static void take_lines(struct output *o)
{
    const char *line;
    size_t len;
    int stream;
    while (output_next_line(o, &line, &len, &stream)) {
        if (!line || len > OUTPUT_LINE_MAX || memchr(line, '\n', len) || stream != OUTPUT_STDOUT)
            abort();
        delivered += len;
        memcpy(last, line, len);
        last_len = len;
        newlines_kept++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] * 37 + 1;  /* 1 .. 9436: crosses the line limit */
    size_t keep = (size_t)data[1] * 64;       /* 0 .. 16320 bytes of ring */
    data += 2;
    size -= 2;
    struct output *o = malloc(output_size(keep));
    if (!o)
        return 0;
    output_init(o, keep);
    int writer;
    if (output_open_pipe(o, OUTPUT_STDOUT, OUTPUT_CAPTURE, &writer) != 0) {
        free(o);
        return 0;
    }
    delivered = newlines_kept = last_len = 0;
    size_t at = 0;
    int done = 0;
    while (!done) {
        if (at < size) {
            size_t n = size - at < chunk ? size - at : chunk;
            ssize_t w = write(writer, data + at, n);
            if (w > 0)
                at += (size_t)w;
        } else {
            output_close_writers(o);
        }
        for (;;) {
            take_lines(o);
            int r = output_read(o, OUTPUT_STDOUT);
            if (r == OUTPUT_AGAIN)
                break;
            if (r == OUTPUT_EOF) {
                take_lines(o);
                done = 1;
                break;
            }
            if (r < 0)
                abort();
        }
    }
    size_t payload = 0;
    for (size_t i = 0; i < size; i++)
        payload += data[i] != '\n';
    if (delivered != payload)
        abort();
    /* the ring: within its bytes, the newest line last */
    size_t n = output_lines(o), bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *line;
        size_t len;
        int stream;
        if (!output_line_at(o, i, &line, &len, &stream) || len > OUTPUT_LINE_MAX)
            abort();
        bytes += len + 3;
        /* a line too large for the ring is left out of it, the older kept */
        if (i == n - 1 && last_len + 3 <= keep && (len != last_len || memcmp(line, last, len)))
            abort();
    }
    if (bytes > keep || n > newlines_kept)
        abort();
    if (newlines_kept > 0 && last_len + 3 <= keep && n == 0)
        abort();
    output_close(o);
    free(o);
    return 0;
}
