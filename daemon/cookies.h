/* Sync cookies (`quire search --sync`, after watchman's query cookies): a
 * client creates a uniquely named hidden file at the top of each root;
 * its event comes after every event of changes made before it, so once
 * the loop has pushed everything pending at that moment through to the
 * indexer and the indexer has committed it, the cookie is acknowledged
 * by name in the state file. This table remembers which cookies wait for
 * which indexer barrier and which were acknowledged lately. Loop thread
 * only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many acknowledged names the state file keeps: clients poll it every
 * few milliseconds, so a name stays there far longer than any reads it. */
#define COOKIES_ACKED_MAX 64
/* Cookies waiting for the indexer at most; more are ignored (their
 * clients time out) rather than grow without bound. */
#define COOKIES_PENDING_MAX 1024

struct cookie_table;

int cookie_table_new(struct cookie_table **ret);
void cookie_table_free(struct cookie_table *t);

/* Whether name is waiting or was acknowledged lately (an event about a
 * cookie already handled: its close, its deletion by the client). */
bool cookie_table_knows(const struct cookie_table *t, const char *name);
/* name waits for barrier seq. 0, -ENOBUFS when too many wait, -ENOMEM. */
int cookie_table_add(struct cookie_table *t, const char *name, uint64_t seq);
/* Barriers up to done_seq are reached: their cookies are acknowledged.
 * Returns how many were. */
size_t cookie_table_ack(struct cookie_table *t, uint64_t done_seq);
/* Every cookie waiting now waits for barrier seq instead (no smaller
 * than theirs): the changes before them failed, and seq follows the
 * operation that retries them. */
void cookie_table_defer(struct cookie_table *t, uint64_t seq);
/* The acknowledged names, oldest first, valid until the next call. */
size_t cookie_table_acked(const struct cookie_table *t, const char *const **ret);
