/* See hash.h. */
#include "hash.h"

/* xxHash is a single header meant to be compiled into its caller
 * (XXH_INLINE_ALL, as its README recommends): the hash then inlines into
 * hash_hex, and no quire process maps libxxhash.so at start, which costs
 * every `quire search` ~0.15 ms of loading on the test machine
 * (docs/BENCHMARKS.md). Nothing here parses untrusted structure, so a
 * fix in Debian's libxxhash reaches quire with its next build. */
#define XXH_INLINE_ALL
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

uint64_t hash64(const void *data, size_t len) {
        return XXH3_64bits(data, len);
}
