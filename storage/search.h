/* Reading the store: BM25-ranked full-text search and the status summary. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct search_query {
        const char *match;     /* FTS5 query syntax */
        const char *namespace; /* NULL: every namespace */
        unsigned limit;
        const char *highlight_open, *highlight_close; /* snippet markers */
};

struct search_hit {
        const char *id;
        const char *namespace;
        const char *source_file;
        const char *heading_hierarchy; /* JSON array, validated */
        const char *heading_path;      /* the same joined by " > " */
        const char *snippet;
        int64_t start_line, end_line;
        double score; /* -bm25: larger is better */
};

/* Calls hit_cb for each hit, best first; a non-zero return from hit_cb
 * stops the search and is returned. A malformed query returns -EINVAL
 * after logging SQLite's reason. */
int store_search(struct store *s, const struct search_query *q,
                 int (*hit_cb)(const struct search_hit *hit, void *userdata), void *userdata);

struct namespace_status {
        char *name; /* owned */
        int64_t files, chunks;
};

struct store_status {
        int schema_version;
        int64_t files, chunks, duplicate_groups;
        int64_t db_bytes, wal_bytes;
        struct namespace_status *namespaces; /* owned */
        size_t n_namespaces;
};

int store_get_status(struct store *s, struct store_status *ret);

/* Just the two counts, for a daemon's STATUS line. */
int store_count(struct store *s, int64_t *n_files, int64_t *n_chunks);
void store_status_done(struct store_status *st);
