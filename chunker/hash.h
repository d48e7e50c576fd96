/* XXH3-128 as 32 lowercase hex digits (canonical big-endian form), the one
 * hash spelling of the storage contract. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HASH_HEX_LEN 33

void hash_hex(const void *data, size_t len, char out[HASH_HEX_LEN]);

/* XXH3-64, for in-memory hash tables (never stored). */
uint64_t hash64(const void *data, size_t len);
