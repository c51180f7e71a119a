/* libFuzzer target: the sd_notify datagram parser. The status it returns
 * must lie inside the datagram; a datagram with a NUL byte never parses. */
#include "../../csrc/notify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, exactly sized, so ASan sees any overread */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct notify_msg m;
    int r = notify_parse(buf, size, &m);
    if (r == 0) {
        if (memchr(buf, '\0', size) || size > NOTIFY_DATAGRAM_MAX)
            abort();
        if (m.has_status &&
            (m.status < buf || m.status + m.status_len > buf + size))
            abort();
        if (m.has_mainpid && (m.mainpid < 0 || m.mainpid > 2147483647LL))
            abort();
    } else if (!m.error) {
        abort();
    }
    free(buf);
    return 0;
}
