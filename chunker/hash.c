/* See hash.h. */
#include "hash.h"

#include <xxhash.h>

void hash_hex(const void *data, size_t len, char out[HASH_HEX_LEN]) {
        static const char hex[] = "0123456789abcdef";
        XXH128_canonical_t canon;

        XXH128_canonicalFromHash(&canon, XXH3_128bits(data, len));
        for (size_t i = 0; i < sizeof canon.digest; i++) {
                out[2 * i] = hex[canon.digest[i] >> 4];
                out[2 * i + 1] = hex[canon.digest[i] & 15];
        }
        out[32] = '\0';
}
