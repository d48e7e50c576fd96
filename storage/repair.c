/* store_repair(): rebuild what the file derives from its rows. The B-tree
 * indexes come from their tables (REINDEX), chunks_fts from chunks (it is
 * an external-content table) and chunks_cjk from its own content table,
 * so damage in any of them is undone without losing a row, an id or a
 * counter. Damage in the rows themselves is beyond this: store_repair()
 * leaves it for the check that follows to report. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "store-internal.h"
#include "store.h"

static bool is_corruption(int rc) {
        return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* FTS5 reads a table's structure record whenever a statement first uses
 * the table, so a damaged one fails every statement on it, its 'rebuild'
 * and DROP TABLE included ("vtable constructor failed"). Put back the
 * records FTS5 writes for a new, empty table, taken from one it makes in
 * TEMP (so the format stays FTS5's business); 'rebuild' then fills them. */
static int empty_fts_index(struct store *s, const char *fts) {
        _cleanup_free_ char *sql = NULL;

        if (asprintf(&sql,
                     "CREATE VIRTUAL TABLE IF NOT EXISTS temp.quire_empty_fts USING fts5(x);"
                     "DELETE FROM main.%1$s_idx;"
                     "DELETE FROM main.%1$s_data;"
                     "INSERT INTO main.%1$s_data(id, block) SELECT id, block FROM temp.quire_empty_fts_data;",
                     fts) < 0)
                return log_error_errno(ENOMEM, "Failed to repair %s: %m", s->path);
        return store_exec(s, sql, "empty a damaged full-text index");
}

static int rebuild_fts_index(struct store *s, const char *fts) {
        _cleanup_free_ char *sql = NULL;

        if (asprintf(&sql, "INSERT INTO main.%1$s(%1$s) VALUES('rebuild')", fts) < 0)
                return log_error_errno(ENOMEM, "Failed to repair %s: %m", s->path);
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                return 0;
        if (!is_corruption(rc))
                return store_fail(s, rc, "rebuild the full-text index");
        int r = empty_fts_index(s, fts);
        if (r < 0)
                return r;
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return log_error_errno(store_errno(rc), "Failed to rebuild the full-text index %s in %s: %s", fts,
                                       s->path, sqlite3_errmsg(s->db));
        return 0;
}

static int repair_in_transaction(struct store *s, void *userdata) {
        (void) userdata;
        int r = store_exec(s, "REINDEX", "rebuild the indexes");
        if (r == 0)
                r = rebuild_fts_index(s, "chunks_fts");
        if (r == 0 && s->has_derived)
                r = rebuild_fts_index(s, "chunks_cjk");
        return r;
}

int store_repair(struct store *s) {
        return store_transact(s, repair_in_transaction, NULL);
}
