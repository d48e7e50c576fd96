/* What the storage files share and nobody else sees: the connection, its
 * cached statements and the SQLite-to-errno boundary. */
#pragma once

#include <sqlite3.h>

#include "store.h"

enum store_stmt_id {
        STMT_FILE_GET,
        STMT_FILE_UPSERT,
        STMT_FILE_DELETE,
        STMT_FILES_UNDER,
        STMT_RANGE_IS_EMPTY,
        STMT_CHUNKS_OF_FILE,
        STMT_STAGE_INSERT,
        STMT_STAGE_DELETE,
        STMT_STAGE_DELETE_FILE,
        STMT_FLUSH_INSERTS,
        STMT_FLUSH_DELETES,
        STMT_CHUNK_MOVE,
        STMT_MOVE_FILE_CHUNKS,
        STMT_MOVE_FILE_FILES,
        STMT_MOVE_TREE_CHUNKS,
        STMT_MOVE_TREE_FILES,
        STMT_CHUNK_MOVE_HEADING,
        STMT_STAGE_DELETE_TREE,
        STMT_DELETE_TREE_FILES,
        _STMT_MAX,
};

struct store {
        sqlite3 *db;
        char *path;
        unsigned flags;
        unsigned lock_timeout_ms;
        sqlite3_stmt *stmts[_STMT_MAX];
};

/* The cached statement, prepared on first use; reset it after use (the
 * _cleanup_stmt_reset_ helper does). NULL on failure, logged. */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id);

static inline void stmt_resetp(sqlite3_stmt **st) {
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}
static inline void stmt_finalizep(sqlite3_stmt **st) {
        sqlite3_finalize(*st);
}
#define _cleanup_stmt_reset_ __attribute__((cleanup(stmt_resetp)))
#define _cleanup_stmt_finalize_ __attribute__((cleanup(stmt_finalizep)))

/* SQLite result code -> negative errno (SQLITE_BUSY -> -EBUSY, corrupt or
 * not a database -> -EBADMSG, ...). */
int store_errno(int rc);

/* Map rc to an errno and log once, with SQLite's own message, as
 * "Failed to <what> in <db>: <message>". Busy is not logged: the caller
 * retries it. */
int store_fail(struct store *s, int rc, const char *what);

/* Run one or more statements that return no rows. */
int store_exec(struct store *s, const char *sql, const char *what);

/* What a database has of the current schema; one row from sqlite_schema. */
struct schema_state {
        int version;
        bool has_files, has_chunks, has_fts, has_unique_index;
        int n_triggers;
};

/* schema.c: read the state, and refuse what this build must not touch (a
 * newer version, a chunks table without seq) before anything is written,
 * WAL included. */
int schema_check(struct store *s, struct schema_state *ret);
/* schema.c: create or migrate to STORE_SCHEMA_VERSION (DESIGN.md 1) from
 * the state schema_check() read. */
int schema_ensure(struct store *s, const struct schema_state *st);
/* schema.c: this connection's TEMP staging tables (see index.c). */
int schema_create_staging(struct store *s);
