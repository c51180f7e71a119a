/* libFuzzer target: the pid-record parser, in both formats, fed whole and
 * byte by byte (as short reads deliver it): both must agree. */
#include "../../csrc/pidrec.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int format = PID_FORMAT_INT32LE; format <= PID_FORMAT_LINE; format++) {
        long long whole = 0, part = 0;
        size_t used_whole = 0, used_part = 0;
        int v_whole = pidrec_parse(format, data, size, &whole, &used_whole);
        int v_part = PIDREC_MORE;
        for (size_t n = 0; n <= size && v_part == PIDREC_MORE; n++)
            v_part = pidrec_parse(format, data, n, &part, &used_part);
        if (v_whole != v_part)
            abort();
        if (v_whole == PIDREC_DONE) {
            if (whole != part || used_whole != used_part || used_whole > size)
                abort();
            if (whole < -2147483648LL || whole > 2147483647LL)
                abort();
        }
    }
    return 0;
}
