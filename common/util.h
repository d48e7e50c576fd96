/* Tiny shared helpers: contract timestamps, random ids, JSON strings,
 * monotonic time. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 'YYYY-MM-DDTHH:MM:SS.sssZ' in UTC plus NUL, as the storage contract wants. */
#define UTC_TIMESTAMP_LEN 25
void utc_timestamp_now(char out[UTC_TIMESTAMP_LEN]);
/* The time such a timestamp names, in ns since the epoch; -EINVAL if s is
 * not one (another writer's garbage). */
int utc_timestamp_parse(const char *s, int64_t *ret_ns);

/* 128 random bits as 32 lowercase hex digits plus NUL. */
#define RANDOM_ID_LEN 33
int random_id(char out[RANDOM_ID_LEN]);

uint64_t now_monotonic_usec(void);

/* Write s as a JSON string literal (quotes included). */
void json_write_string(FILE *f, const char *s);
/* Append s as a JSON string literal to a growing buffer; returns 0 or -ENOMEM. */
int json_append_string(char **buf, size_t *len, size_t *cap, const char *s, size_t n);
