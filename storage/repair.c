/* store_repair(): rebuild what the file derives from its rows. chunks_fts
 * comes from chunks (an external-content table), the B-tree indexes from
 * their tables (REINDEX), and the derived rows (tags, links, the CJK
 * sidecar) from the chunks once more, so damage in any of them is undone
 * without losing a row, an id or a counter. A page that SQLite cannot read
 * in a table is beyond this; the check that follows reports it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "store-internal.h"
#include "store.h"

/* An FTS5 table that cannot be read, as opposed to a lock or a full disk:
 * FTS5 says "invalid fts5 file format" (SQLITE_ERROR) of a damaged
 * config table and SQLITE_CORRUPT_VTAB of the rest. */
static bool is_fts_damage(int rc) {
        return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_ERROR;
}

/* FTS5 reads a table's config and structure record whenever a statement
 * first uses the table, so damage there fails every statement on it, its
 * 'rebuild' and DROP TABLE included ("vtable constructor failed"). Put
 * back the rows FTS5 writes for a new, empty table, taken from one it
 * makes in TEMP (so the format stays FTS5's business); with_content also
 * empties chunks_cjk's own content (its rows are derived). */
static int empty_fts_table(struct store *s, const char *fts, bool with_content) {
        _cleanup_free_ char *sql = NULL, *content = NULL;

        if ((with_content && asprintf(&content, "DELETE FROM main.%s_content;", fts) < 0) ||
            asprintf(&sql,
                     "CREATE VIRTUAL TABLE IF NOT EXISTS temp.quire_empty_fts USING fts5(x);"
                     "DELETE FROM main.%1$s_idx;"
                     "DELETE FROM main.%1$s_data;"
                     "INSERT INTO main.%1$s_data(id, block) SELECT id, block FROM temp.quire_empty_fts_data;"
                     "DELETE FROM main.%1$s_config;"
                     "INSERT INTO main.%1$s_config(k, v) SELECT k, v FROM temp.quire_empty_fts_config;"
                     "DELETE FROM main.%1$s_docsize;%2$s",
                     fts, content ? content : "") < 0)
                return log_error_errno(ENOMEM, "Failed to repair %s: %m", s->path);
        return store_exec(s, sql, "empty a full-text index");
}

static int rebuild_chunks_fts(struct store *s) {
        static const char sql[] = "INSERT INTO main.chunks_fts(chunks_fts) VALUES('rebuild')";
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

        if (rc != SQLITE_OK && is_fts_damage(rc)) {
                int r = empty_fts_table(s, "chunks_fts", false);
                if (r < 0)
                        return r;
                rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        }
        return rc == SQLITE_OK ? 0 : store_fail(s, rc, "rebuild the full-text index chunks_fts");
}

/* REINDEX, once more after collapsing duplicates where it finds some: a
 * damaged unique index may have let a second row with one key in (an
 * INSERT OR IGNORE that did not find the first). */
static int rebuild_indexes(struct store *s) {
        int rc = sqlite3_exec(s->db, "REINDEX", NULL, NULL, NULL);

        if (rc == SQLITE_CONSTRAINT_UNIQUE) {
                int r = schema_delete_duplicates(s);
                if (r < 0)
                        return r;
                rc = sqlite3_exec(s->db, "REINDEX", NULL, NULL, NULL);
        }
        return rc == SQLITE_OK ? 0 : store_fail(s, rc, "rebuild the indexes");
}

/* The derived rows go, all of them, and the derive mark back to the
 * start: the catch-up every writer runs then derives each chunk again. */
static int empty_derived(struct store *s) {
        int r = empty_fts_table(s, "chunks_cjk", true);
        if (r < 0)
                return r;
        return store_exec(s, "DELETE FROM main.chunk_tags; DELETE FROM main.links; UPDATE main.derive_mark SET seq = 0",
                          "empty the derived rows");
}

static int repair_in_transaction(struct store *s, void *userdata) {
        (void) userdata;
        /* The full-text indexes first: the deletes of duplicates in
         * rebuild_indexes() run the triggers that write to them. */
        int r = rebuild_chunks_fts(s);
        if (r == 0 && s->has_derived)
                r = empty_derived(s);
        if (r == 0)
                r = rebuild_indexes(s);
        if (r == 0 && s->has_derived)
                r = derived_catch_up(s);
        if (r == 0 && s->has_derived)
                r = derived_mark_written(s);
        return r;
}

int store_repair(struct store *s) {
        s->is_repairing = true;
        int r = store_transact(s, repair_in_transaction, NULL);
        s->is_repairing = false;
        return r;
}
