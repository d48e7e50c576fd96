/* Text rules of the storage contract, so every writer hashes the same bytes:
 * drop a leading UTF-8 BOM, replace each maximal ill-formed UTF-8
 * subsequence by one U+FFFD (what Python's decode('utf-8', 'replace') does),
 * and end lines at '\n' ('\r\n' and a lone '\r' become '\n'). */
#pragma once

#include <stddef.h>

/* Returns 0 and a newly allocated, NUL-terminated normalized copy of raw in
 * *ret (owned by the caller) with its length in *ret_len, or -ENOMEM. */
int text_normalize(const char *raw, size_t raw_len, char **ret, size_t *ret_len);

/* Number of lines in normalized text: a final line without '\n' counts, an
 * empty text has none. */
size_t text_count_lines(const char *text, size_t len);
