/* The directories quire indexed or watched (schema version 2's roots
 * table), so that `quire search --sync` without a daemon knows what to
 * bring up to date (roots.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"
#include "store.h"

struct store_root {
        char *namespace; /* owned */
        char *path;      /* owned; absolute, a realpath when recorded */
        char *config;    /* owned; the configuration file quired watched it for; NULL: none (quire index, DIR) */
        char *rules;     /* owned; quired's rules for it (root_rules_format); NULL: the built-in ones */
};

/* Record one root (indexed_at: now), in its own write transaction; one
 * already recorded is left as it is, without a write, unless quired
 * records it (is_quired, with the configuration file it has it from,
 * NULL for a DIR argument, and the rules it walks it with) and it was
 * recorded otherwise; `quire index` never takes one from quired. A
 * database of schema version 1 opened read-only has no roots table:
 * there is nothing to record into, and this is never asked of a reader.
 * Returns 0 or -errno (logged). */
int store_add_root(struct store *s, const char *ns, const char *path, bool is_quired, const char *config,
                   const char *rules);

/* The folders below quired's roots whose filesystem was unmounted while
 * it watched (their notes kept until one is mounted there again), as
 * recorded: made exactly paths (a write only when they differ), or read
 * back as an array of owned strings (strv_free()). A database older than
 * version 3 read by a reader has none. Return 0 or -errno (logged). */
int store_set_unmounted(struct store *s, char *const *paths, size_t n);
int store_list_unmounted(struct store *s, char ***ret, size_t *ret_n);

/* quired's rules as recorded for its roots, so that `quire search --sync`
 * without a daemon walks them as quired would: one line per setting,
 * "ext NAME", "ignore GLOB", "max_file_size BYTES" (0: the default).
 * Returns 0 or -ENOMEM. */
int root_rules_format(const struct scan_rules *rules, uint64_t max_file_bytes, char **ret);
/* Read them back into rules (owned: scan_rules_done()); a line this quire
 * does not know (a later one's setting) is skipped. Returns 0 or -ENOMEM. */
int root_rules_parse(const char *text, struct scan_rules *rules, uint64_t *max_file_bytes);

/* Forget the root (ns, path), whose notes left the index: `quire search
 * --sync` without a daemon walks it no more. Returns 0 or -errno (logged). */
int store_forget_root(struct store *s, const char *ns, const char *path);

/* Every recorded root, by namespace then path, as an array the caller
 * frees with store_roots_free(). A database without the table (version 1,
 * read-only) has none. Returns 0 or -errno (logged). */
int store_list_roots(struct store *s, struct store_root **ret, size_t *ret_n);
void store_roots_free(struct store_root *roots, size_t n);

/* Whether path is root or below it; both absolute, without a trailing
 * slash ("/" itself aside). */
bool root_covers(const char *root, const char *path);

/* Walking a directory and one below it as two roots walks the inner one
 * twice, the second time without the outer one's .quireignore files and
 * globs. Orders paths (absolute, symlink-free directories) so that the
 * outermost come first, in path order, and returns how many they are; the
 * ones below another (or given twice) follow them. */
size_t roots_outermost_first(char **paths, size_t n);

/* Whether dir, a root that exists, is an empty folder (not even hidden
 * entries) while ns holds notes below it: what an unmounted drive's mount
 * point looks like. Walking it would drop every note, ids and counters
 * with them, on no evidence that they are gone, so the callers that walk
 * roots unasked (quired, quire search --sync) treat it as missing
 * (docs/ROOTS.md). Returns 1, 0 (not empty, or nothing indexed there), or
 * -errno (logged). */
int root_is_empty_where_notes_are(struct store *s, const char *ns, const char *dir);
