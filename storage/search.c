/* Queries over the shared store. Read-only: works on a connection opened
 * with STORE_READONLY and never takes the write lock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "search.h"
#include "store-internal.h"

/* Column weights for bm25(): a word in a heading says more about a chunk
 * than one in its body; the path matters least (every page shares a
 * directory name).
 *
 * FTS5 answers "ORDER BY rank LIMIT n" itself, so the inner query ranks
 * inside the index and computes snippets for the n winners only; chunks is
 * joined for those n rows, not for every match. A namespace filter has to
 * look at chunks before the limit, so it takes the join first. */
#define SEARCH_COLUMNS                                                                          \
        "SELECT c.id, c.namespace, c.source_file,"                                              \
        " CASE WHEN json_valid(c.heading_hierarchy) THEN c.heading_hierarchy ELSE '[]' END,"    \
        " CASE WHEN json_valid(c.heading_hierarchy)"                                            \
        "  THEN (SELECT group_concat(value, ' > ') FROM json_each(c.heading_hierarchy)) END,"   \
        " hit.snippet, c.start_line, c.end_line, -hit.rank"
#define SEARCH_RANKED                                                                           \
        "SELECT rowid, rank, snippet(chunks_fts, 0, ?3, ?4, '...', 16) AS snippet"              \
        " FROM chunks_fts WHERE chunks_fts MATCH ?1 AND rank MATCH 'bm25(1.0, 0.5, 2.0)'"

static const char search_sql[] =
        SEARCH_COLUMNS " FROM (" SEARCH_RANKED " ORDER BY rank LIMIT ?5) AS hit"
        " JOIN chunks c ON c.seq = hit.rowid ORDER BY hit.rank";

static const char search_namespace_sql[] =
        SEARCH_COLUMNS " FROM (" SEARCH_RANKED ") AS hit"
        " JOIN chunks c ON c.seq = hit.rowid WHERE c.namespace = ?2 ORDER BY hit.rank LIMIT ?5";

static const char *column_text(sqlite3_stmt *st, int i) {
        const char *t = (const char *) sqlite3_column_text(st, i);
        return t ? t : "";
}

int store_search(struct store *s, const struct search_query *q,
                 int (*hit_cb)(const struct search_hit *hit, void *userdata), void *userdata) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db, q->namespace ? search_namespace_sql : search_sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare the search");
        sqlite3_bind_text(st, 1, q->match, -1, SQLITE_STATIC);
        if (q->namespace)
                sqlite3_bind_text(st, 2, q->namespace, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, q->highlight_open ? q->highlight_open : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, q->highlight_close ? q->highlight_close : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, q->limit ? q->limit : 10);

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct search_hit hit = {
                        .id = column_text(st, 0),
                        .namespace = column_text(st, 1),
                        .source_file = column_text(st, 2),
                        .heading_hierarchy = column_text(st, 3),
                        .heading_path = column_text(st, 4),
                        .snippet = column_text(st, 5),
                        .start_line = sqlite3_column_int64(st, 6),
                        .end_line = sqlite3_column_int64(st, 7),
                        .score = sqlite3_column_double(st, 8),
                };
                int r = hit_cb(&hit, userdata);
                if (r != 0)
                        return r;
        }
        if (rc == SQLITE_DONE)
                return 0;
        /* FTS5 reports query syntax errors as plain SQLITE_ERROR while
         * stepping: that is the user's query, not a broken database. */
        if (rc == SQLITE_ERROR)
                return log_error_errno(EINVAL, "Invalid search query '%s': %s", q->match, sqlite3_errmsg(s->db));
        return store_fail(s, rc, "search");
}

static int query_int64(struct store *s, const char *sql, int64_t *ret) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "read the status");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int64_t file_size_or_zero(const char *path, const char *suffix) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf(&p, "%s%s", path, suffix) < 0)
                return 0;
        return stat(p, &st) == 0 ? (int64_t) st.st_size : 0;
}

static int read_namespaces(struct store *s, struct store_status *ret) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        size_t cap = 0;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT namespace, sum(n_files), sum(n_chunks) FROM ("
                                " SELECT namespace, count(*) AS n_files, 0 AS n_chunks FROM files GROUP BY namespace"
                                " UNION ALL"
                                " SELECT namespace, 0, count(*) FROM chunks GROUP BY namespace)"
                                " GROUP BY namespace ORDER BY namespace",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "read the namespaces");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (ret->n_namespaces == cap) {
                        cap = cap ? cap * 2 : 4;
                        struct namespace_status *p = realloc(ret->namespaces, cap * sizeof *p);
                        if (!p)
                                return -ENOMEM;
                        ret->namespaces = p;
                }
                struct namespace_status *n = &ret->namespaces[ret->n_namespaces];
                n->name = strdup(column_text(st, 0));
                if (!n->name)
                        return -ENOMEM;
                n->files = sqlite3_column_int64(st, 1);
                n->chunks = sqlite3_column_int64(st, 2);
                ret->n_namespaces++;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read the namespaces");
}

int store_count(struct store *s, int64_t *n_files, int64_t *n_chunks) {
        int r = query_int64(s, "SELECT count(*) FROM files", n_files);
        return r < 0 ? r : query_int64(s, "SELECT count(*) FROM chunks", n_chunks);
}

int store_get_status(struct store *s, struct store_status *ret) {
        int64_t version = 0;
        int r;

        *ret = (struct store_status){ 0 };
        /* One read transaction, so the counts agree with each other. */
        r = store_exec(s, "BEGIN", "start a read transaction");
        if (r < 0)
                return r;
        if ((r = query_int64(s, "PRAGMA user_version", &version)) < 0 ||
            (r = query_int64(s, "SELECT count(*) FROM files", &ret->files)) < 0 ||
            (r = query_int64(s, "SELECT count(*) FROM chunks", &ret->chunks)) < 0 ||
            (r = query_int64(s,
                             "SELECT count(*) FROM (SELECT 1 FROM chunks GROUP BY namespace, source_file,"
                             " content_hash, start_line HAVING count(*) > 1)",
                             &ret->duplicate_groups)) < 0 ||
            (r = read_namespaces(s, ret)) < 0) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                store_status_done(ret);
                return r;
        }
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        ret->schema_version = (int) version;
        ret->db_bytes = file_size_or_zero(s->path, "");
        ret->wal_bytes = file_size_or_zero(s->path, "-wal");
        return 0;
}

void store_status_done(struct store_status *st) {
        for (size_t i = 0; i < st->n_namespaces; i++)
                free(st->namespaces[i].name);
        free(st->namespaces);
        *st = (struct store_status){ 0 };
}
