/* The schema of the storage contract (DESIGN.md section 1) and the one
 * migration that brings a legacy database to it: collapse duplicate chunks
 * to their most-used row, then install the unique index that keeps them
 * from coming back. Safe against a peer doing the same at the same time. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store-internal.h"
#include "util.h"

/* Names, trigger bodies and the tokenizer are shared by every writer:
 * this text is the contract, byte for byte where it matters. */
static const char schema_tables_sql[] =
        "CREATE TABLE IF NOT EXISTS files(\n"
        "  namespace    TEXT NOT NULL,\n"
        "  path         TEXT NOT NULL,\n"
        "  size         INTEGER NOT NULL,\n"
        "  mtime_ns     INTEGER NOT NULL,\n"
        "  file_hash    TEXT NOT NULL,\n"
        "  indexed_at   TEXT NOT NULL,\n"
        "  PRIMARY KEY (namespace, path));\n"
        "CREATE TABLE IF NOT EXISTS chunks(\n"
        "  seq               INTEGER PRIMARY KEY,\n"
        "  id                TEXT NOT NULL UNIQUE,\n"
        "  namespace         TEXT NOT NULL DEFAULT 'default',\n"
        "  source_file       TEXT NOT NULL,\n"
        "  content           TEXT NOT NULL,\n"
        "  content_hash      TEXT NOT NULL,\n"
        "  heading_hierarchy TEXT NOT NULL DEFAULT '[]',\n"
        "  start_line        INTEGER NOT NULL,\n"
        "  end_line          INTEGER NOT NULL,\n"
        "  created_at        TEXT NOT NULL,\n"
        "  updated_at        TEXT NOT NULL,\n"
        "  access_count      INTEGER NOT NULL DEFAULT 0,\n"
        "  use_count         INTEGER NOT NULL DEFAULT 0);\n";

static const char schema_fts_sql[] =
        "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(\n"
        "  content, source_file, heading_hierarchy,\n"
        "  content='chunks', content_rowid='seq',\n"
        "  tokenize='unicode61 remove_diacritics 2');\n";

static const char schema_index_sql[] =
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_chunks_unique_content\n"
        "  ON chunks(namespace, source_file, content_hash, start_line);\n";

static const char schema_triggers_sql[] =
        "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN\n"
        "  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)\n"
        "  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);\n"
        "END;\n"
        "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN\n"
        "  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)\n"
        "  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);\n"
        "END;\n"
        "CREATE TRIGGER IF NOT EXISTS chunks_au\n"
        "AFTER UPDATE OF content, source_file, heading_hierarchy ON chunks BEGIN\n"
        "  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)\n"
        "  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);\n"
        "  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)\n"
        "  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);\n"
        "END;\n";

/* Version 2: what quire derives from each chunk's content (tags, links,
 * the CJK bigram index; chunker/derive.h). Only quire writes these tables,
 * keyed by chunks.seq; the one trigger below is plain SQL, so a foreign
 * writer that deletes a chunk (and knows nothing of them) still takes its
 * derived rows with it. Rows a foreign writer inserts are found by
 * derive_mark: every chunk with a seq above it has not been derived yet,
 * and quire's next write transaction derives them (storage/derived.c). The
 * trigger lowers the mark when the highest chunk goes, because SQLite
 * hands the next insert max(seq) + 1, which may then be at or below it.
 * roots records the directories quire indexed or watched, so that a later
 * `quire search --sync` without a daemon knows what to bring up to date;
 * config (version 3) names the configuration file quired watched one for,
 * whose notes leave when that file no longer has it, and rules are the
 * ones quired walks it with (roots.h), for --sync to walk it alike.
 * unmounted (version 3) holds the folders below quired's roots whose
 * filesystem was unmounted while it watched: their notes stay kept
 * across its restarts until one is mounted there again. */
static const char schema_derived_sql[] =
        "CREATE TABLE IF NOT EXISTS derive_mark(\n"
        "  id  INTEGER PRIMARY KEY CHECK (id = 0),\n"
        "  seq INTEGER NOT NULL);\n"
        "INSERT OR IGNORE INTO derive_mark(id, seq) VALUES (0, 0);\n"
        "CREATE TABLE IF NOT EXISTS chunk_tags(\n"
        "  seq           INTEGER NOT NULL,\n"
        "  tag           TEXT NOT NULL,\n"
        "  is_file_level INTEGER NOT NULL,\n"
        "  PRIMARY KEY (seq, tag)) WITHOUT ROWID;\n"
        "CREATE INDEX IF NOT EXISTS idx_chunk_tags_tag ON chunk_tags(tag COLLATE NOCASE);\n"
        "CREATE TABLE IF NOT EXISTS links(\n"
        "  seq         INTEGER NOT NULL,\n"
        "  ord         INTEGER NOT NULL,\n"
        "  kind        TEXT NOT NULL,\n"
        "  target      TEXT NOT NULL,\n"
        "  fragment    TEXT,\n"
        "  line_offset INTEGER NOT NULL,\n"
        "  target_path TEXT,\n"
        "  target_name TEXT,\n"
        "  PRIMARY KEY (seq, ord)) WITHOUT ROWID;\n"
        "CREATE INDEX IF NOT EXISTS idx_links_target_path ON links(target_path) WHERE target_path IS NOT NULL;\n"
        "CREATE INDEX IF NOT EXISTS idx_links_target_name ON links(target_name) WHERE target_name IS NOT NULL;\n"
        "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_cjk USING fts5(\n"
        "  content, source_file, heading_hierarchy,\n"
        "  tokenize='unicode61 remove_diacritics 2');\n"
        "CREATE TABLE IF NOT EXISTS roots(\n"
        "  namespace  TEXT NOT NULL,\n"
        "  path       TEXT NOT NULL,\n"
        "  indexed_at TEXT NOT NULL,\n"
        "  config     TEXT,\n"
        "  rules      TEXT,\n"
        "  PRIMARY KEY (namespace, path));\n"
        "CREATE TABLE IF NOT EXISTS unmounted(\n"
        "  path TEXT PRIMARY KEY);\n"
        "CREATE TRIGGER IF NOT EXISTS chunks_derived_ad AFTER DELETE ON chunks BEGIN\n"
        "  DELETE FROM chunk_tags WHERE seq = old.seq;\n"
        "  DELETE FROM links WHERE seq = old.seq;\n"
        "  DELETE FROM chunks_cjk WHERE rowid = old.seq;\n"
        "  UPDATE derive_mark SET seq = (SELECT coalesce(max(seq), 0) FROM chunks)\n"
        "    WHERE seq >= old.seq AND old.seq > (SELECT coalesce(max(seq), 0) FROM chunks);\n"
        "END;\n";

/* The losers of each duplicate group: everything but the most-used row,
 * then the oldest, then the smallest id. NOT INDEXED: store_repair() runs
 * it when the unique index is the damaged part. */
static const char delete_duplicates_sql[] =
        "DELETE FROM chunks WHERE seq IN (\n"
        "  SELECT seq FROM (\n"
        "    SELECT seq, ROW_NUMBER() OVER (\n"
        "      PARTITION BY namespace, source_file, content_hash, start_line\n"
        "      ORDER BY access_count + use_count DESC, created_at ASC, id ASC) AS rank\n"
        "    FROM chunks NOT INDEXED)\n"
        "  WHERE rank > 1);\n";

int schema_delete_duplicates(struct store *s) {
        /* With the triggers in place, chunks_ad removes each loser's FTS
         * entry; never delete from chunks_fts by hand as well. */
        int r = store_exec(s, delete_duplicates_sql, "collapse duplicate chunks");
        if (r < 0)
                return r;
        int64_t n_losers = sqlite3_changes64(s->db);
        if (n_losers > 0)
                log_info("Collapsed %lld duplicate chunks in %s", (long long) n_losers, s->path);
        return 0;
}

static int read_state(struct store *s, struct schema_state *st) {
        _cleanup_stmt_finalize_ sqlite3_stmt *q = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT (SELECT user_version FROM pragma_user_version),"
                                " count(*) FILTER (WHERE type = 'table' AND name = 'files'),"
                                " count(*) FILTER (WHERE type = 'table' AND name = 'chunks'),"
                                " count(*) FILTER (WHERE type = 'table' AND name = 'chunks_fts'),"
                                " count(*) FILTER (WHERE type = 'index' AND name = 'idx_chunks_unique_content'),"
                                " count(*) FILTER (WHERE type = 'trigger' AND name IN ('chunks_ai','chunks_ad','chunks_au')),"
                                " count(*) FILTER (WHERE name IN ('derive_mark','chunk_tags','links','chunks_cjk',"
                                "  'roots','chunks_derived_ad','unmounted'))"
                                " FROM sqlite_schema",
                                -1, &q, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(q);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "read the schema");
        *st = (struct schema_state){
                .version = sqlite3_column_int(q, 0),
                .has_files = sqlite3_column_int(q, 1) > 0,
                .has_chunks = sqlite3_column_int(q, 2) > 0,
                .has_fts = sqlite3_column_int(q, 3) > 0,
                .has_unique_index = sqlite3_column_int(q, 4) > 0,
                .n_triggers = sqlite3_column_int(q, 5),
                .has_derived = sqlite3_column_int(q, 6) >= 6,
                .has_unmounted = sqlite3_column_int(q, 6) == 7,
        };
        return 0;
}

static bool state_is_current(const struct schema_state *st) {
        return st->version == STORE_SCHEMA_VERSION && st->has_files && st->has_chunks && st->has_fts &&
               st->has_unique_index && st->n_triggers == 3 && st->has_derived && st->has_unmounted;
}

/* Newer: written by a later quire. Negative: written by no quire (the
 * versions count up from 0, a database before any schema), so whatever
 * set it knows something about this file that a migration would trample. */
static int refuse_unknown_version(struct store *s, int version) {
        if (version < 0)
                return log_error_errno(EPROTONOSUPPORT,
                                       "Refusing to open %s: schema version %d is not one quire writes; left untouched",
                                       s->path, version);
        return log_error_errno(EPROTONOSUPPORT,
                               "Refusing to open %s: schema version %d is newer than this quire understands (%d); "
                               "left untouched",
                               s->path, version, STORE_SCHEMA_VERSION);
}

static bool is_known_version(int version) {
        return version >= 0 && version <= STORE_SCHEMA_VERSION;
}

/* Legacy chunks tables without seq cannot carry the external-content FTS
 * index; rebuilding such a table is a different migration, not this one. */
static int check_chunks_has_seq(struct store *s) {
        _cleanup_stmt_finalize_ sqlite3_stmt *q = NULL;
        int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM pragma_table_info('chunks') WHERE name = 'seq' AND pk = 1",
                                    -1, &q, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(q);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "inspect the chunks table");
        if (sqlite3_column_int(q, 0) != 1)
                return log_error_errno(EPROTONOSUPPORT,
                                       "Refusing to migrate %s: its chunks table has no 'seq INTEGER PRIMARY KEY'; "
                                       "left untouched",
                                       s->path);
        return 0;
}

/* Version 2 -> 3: the roots quired watched get the configuration file
 * they came from and the rules they are walked with. Those recorded before
 * have neither: whoever recorded them, their notes stay. Each column is
 * looked for on its own, so that a half-done upgrade (or one a peer made)
 * is finished, not repeated. */
static int add_roots_column(struct store *s, const char *column) {
        _cleanup_stmt_finalize_ sqlite3_stmt *q = NULL;
        int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM pragma_table_info('roots') WHERE name = ?1", -1, &q,
                                    NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(q, 1, column, -1, SQLITE_STATIC);
                rc = sqlite3_step(q);
        }
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "inspect the roots table");
        if (sqlite3_column_int(q, 0) > 0)
                return 0;
        char sql[64];
        snprintf(sql, sizeof sql, "ALTER TABLE roots ADD COLUMN %s TEXT", column);
        return store_exec(s, sql, "add a column to the roots table");
}

static int migrate_tx(struct store *s, void *userdata) {
        struct schema_state st;
        int r;

        /* Re-check under the write lock: a peer may have migrated while we
         * waited for it, and then there is nothing left to do. */
        r = read_state(s, &st);
        if (r < 0)
                return r;
        if (!is_known_version(st.version))
                return refuse_unknown_version(s, st.version);
        if (state_is_current(&st))
                return 0;

        if (st.has_chunks) {
                r = check_chunks_has_seq(s);
                if (r < 0)
                        return r;
        }

        /* Rows written while a trigger was missing may be absent from (or
         * stale in) the FTS index. Then the index is rebuilt from chunks at
         * the end, and the triggers must not run before that: an FTS
         * 'delete' of a row the index does not hold corrupts it. */
        bool must_rebuild_fts = !st.has_fts || st.n_triggers != 3;
        if (must_rebuild_fts && st.n_triggers > 0) {
                r = store_exec(s,
                               "DROP TRIGGER IF EXISTS chunks_ai; DROP TRIGGER IF EXISTS chunks_ad;"
                               " DROP TRIGGER IF EXISTS chunks_au;",
                               "drop incomplete triggers");
                if (r < 0)
                        return r;
        }

        r = store_exec(s, schema_tables_sql, "create tables");
        if (r < 0)
                return r;
        r = store_exec(s, schema_fts_sql, "create the FTS index");
        if (r < 0)
                return r;

        if (!st.has_unique_index) {
                r = schema_delete_duplicates(s);
                if (r < 0)
                        return r;
        }
        r = store_exec(s, schema_index_sql, "create the unique index");
        if (r < 0)
                return r;
        r = store_exec(s, schema_triggers_sql, "create the FTS triggers");
        if (r < 0)
                return r;
        if (must_rebuild_fts) {
                r = store_exec(s, "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild')", "rebuild the FTS index");
                if (r < 0)
                        return r;
        }
        /* Created with the mark at 0: the first write transaction derives
         * every chunk already there, so nothing more is rebuilt here. */
        r = store_exec(s, schema_derived_sql, "create the derived tables");
        if (r < 0)
                return r;
        r = add_roots_column(s, "config");
        if (r == 0)
                r = add_roots_column(s, "rules");
        if (r < 0)
                return r;
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        return store_exec(s, sql, "set the schema version");
}

/* Read the schema state, waiting out a peer that holds the database
 * exclusively (rollback-journal writers and locking_mode=EXCLUSIVE block
 * even readers) until the lock timeout. */
static int read_state_patiently(struct store *s, struct schema_state *st) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t) s->lock_timeout_ms * 1000u;
        unsigned backoff_ms = 5;

        for (;;) {
                int r = read_state(s, st);
                if (r != -EBUSY)
                        return r;
                if (now_monotonic_usec() >= deadline)
                        return log_error_errno(EBUSY, "Failed to open %s: database is locked (waited %u ms)", s->path,
                                               s->lock_timeout_ms);
                nanosleep(&(struct timespec){ .tv_nsec = (long) backoff_ms * 1000000L }, NULL);
                backoff_ms = backoff_ms < 200 ? backoff_ms * 2 : 200;
        }
}

int schema_check(struct store *s, struct schema_state *ret) {
        int r;

        r = read_state_patiently(s, ret);
        if (r < 0)
                return r;
        if (!is_known_version(ret->version))
                return refuse_unknown_version(s, ret->version);
        if (ret->has_chunks && !state_is_current(ret))
                return check_chunks_has_seq(s);
        return 0;
}

int schema_ensure(struct store *s, const struct schema_state *st) {
        if (state_is_current(st))
                return 0;
        if (s->flags & STORE_READONLY) {
                if (!st->has_chunks || !st->has_fts)
                        return log_error_errno(ENOENT, "No index in %s (run 'quire index DIR' first)", s->path);
                /* A legacy database can still be searched; the next writer
                 * migrates it. */
                return 0;
        }
        /* migrate_tx reads the state again under the write lock. */
        return store_transact(s, migrate_tx, NULL);
}

int schema_create_staging(struct store *s) {
        return store_exec(s,
                          "PRAGMA temp_store = MEMORY;"
                          "CREATE TEMP TABLE IF NOT EXISTS staged_deletes(seq INTEGER PRIMARY KEY);"
                          "CREATE TEMP TABLE IF NOT EXISTS staged_tags("
                          " namespace, source_file, content_hash, start_line, tag, is_file_level);"
                          "CREATE TEMP TABLE IF NOT EXISTS staged_links("
                          " namespace, source_file, content_hash, start_line, ord, kind, target, fragment,"
                          " line_offset, target_path, target_name);"
                          "CREATE TEMP TABLE IF NOT EXISTS staged_cjk("
                          " namespace, source_file, content_hash, start_line, content, path_text, heading_hierarchy)",
                          "create the staging tables");
}
