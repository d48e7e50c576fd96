/* Reading the store: BM25-ranked full-text search and the status summary. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* What to look for. The filters are independent: each one given adds one
 * condition on the chunk, and a hit must meet all of them. */
struct search_query {
        const char *match;     /* FTS5 query syntax */
        const char *namespace; /* NULL: every namespace */
        /* NULL: every file. A GLOB (SQLite's: '*' also matches '/', case
         * sensitive) on the absolute source_file, which matches the file
         * itself or a directory above it: "/n/linux" and "/n/lin*" both
         * take /n/linux/ls.md. Callers turn relative patterns into this. */
        const char *path_glob;
        /* NULL: any heading. A hit's heading path ("A > B > C") must contain
         * this, ignoring case (Unicode simple case folding). */
        const char *heading;
        /* Each of these tags (without '#'), or one nested under it, must be
         * on the chunk or in its file's front matter; ASCII case ignored. */
        const char *const *tags;
        size_t n_tags;
        unsigned limit;  /* 0: no limit */
        unsigned offset; /* hits skipped, best first, before the first reported */
        /* Snippet markers around matched words; NULL: none. */
        const char *highlight_open, *highlight_close;
        bool skip_snippet;        /* hit.snippet is "" (saves its cost) */
        bool want_match_position; /* fill hit.match_* */
};

struct search_hit {
        const char *id;
        const char *namespace;
        const char *source_file;
        const char *heading_hierarchy; /* a JSON array, minified: one line */
        const char *heading_path;      /* the same joined by " > " */
        const char *snippet;
        int64_t start_line, end_line;
        double score; /* -bm25: larger is better */
        /* The files row of source_file, for search_hit_is_stale(). */
        bool has_file_row;
        int64_t file_size, file_mtime_ns;
        /* With want_match_position: where the first matched word of the
         * chunk's content is. match_line is a line of the file, match_column
         * its 1-based byte column in the indexed text, match_text (not
         * NUL-terminated, match_text_len bytes) that line. When the query
         * matched only other columns (heading, path), the chunk's first
         * line and column 1. */
        int64_t match_line, match_column;
        const char *match_text;
        size_t match_text_len;
};

/* Calls hit_cb for each hit, best first; a non-zero return from hit_cb
 * stops the search and is returned. A malformed query, or one longer
 * than a query may be, returns -EINVAL after logging the reason; one
 * that used up its few seconds in SQLite (time in hit_cb does not count),
 * -ETIMEDOUT, logged (docs/SEARCH.md, "Bounds"). One ended by the store's
 * cancel flag (store_set_cancel()) or its search check returns
 * -ECANCELED or the check's error, unlogged. */
int store_search(struct store *s, const struct search_query *q,
                 int (*hit_cb)(const struct search_hit *hit, void *userdata), void *userdata);

/* While a search is in SQLite, check is called every few milliseconds of
 * its work; a negative errno from it ends the search, and store_search()
 * returns it. quired's search threads look whether their client hung up.
 * NULL (the default): none. */
void store_set_search_check(struct store *s, int (*check)(void *userdata), void *userdata);

/* Whether the hit's file changed or vanished since it was indexed: an
 * lstat() of source_file against its files row (size and mtime). Gone, or
 * no longer a regular file, is stale; a file that cannot be looked at
 * (EACCES) or has no files row (a foreign writer's) is not. One lstat, so
 * callers check only the hits they show. */
bool search_hit_is_stale(const struct search_hit *hit);

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

/* SQLite's integrity_check of the whole file (every B-tree and index,
 * FTS5's shadow tables included), then each FTS5 index read whole and
 * its row count against its table's: SQLite finds a damaged page only
 * when a statement reads it, so a database can answer for a long while
 * with one. *ret_n: the problems found (0: the file is sound), up to 102;
 * *ret_first: the first one's text (owned; NULL when none). */
int store_check_integrity(struct store *s, unsigned *ret_n, char **ret_first);

/* Just the two counts, for a daemon's STATUS line. */
int store_count(struct store *s, int64_t *n_files, int64_t *n_chunks);
void store_status_done(struct store_status *st);
