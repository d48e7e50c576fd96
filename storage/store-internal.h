/* What the storage files share and nobody else sees: the connection, its
 * cached statements and the SQLite-to-errno boundary. */
#pragma once

#include <errno.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "store.h"
#include "tokens.h"

enum store_stmt_id {
        STMT_FILE_GET,
        STMT_FLUSH_FILES,
        STMT_FILE_DELETE,
        STMT_FILES_UNDER,
        STMT_UNFILED_UNDER,
        STMT_RANGE_IS_EMPTY,
        STMT_CHUNKS_OF_FILE,
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
        STMT_DERIVE_MARK_GET,
        STMT_DERIVE_MARK_SET,
        STMT_DERIVE_PENDING,
        STMT_STAGE_TAG,
        STMT_STAGE_LINK,
        STMT_STAGE_CJK,
        STMT_FLUSH_TAGS,
        STMT_FLUSH_LINKS,
        STMT_FLUSH_CJK,
        STMT_FORGET_TAGS,
        STMT_FORGET_LINKS,
        STMT_FORGET_CJK,
        STMT_DERIVED_OF_FILE,
        STMT_DERIVED_OF_TREE,
        STMT_CHUNK_TO_DERIVE,
        STMT_STAGE_DELETE_TREE,
        STMT_DELETE_TREE_FILES,
        STMT_FILE_HAS_ROWS,
        STMT_TREE_HAS_ROWS,
        STMT_STAGE_DELETE_TREE_TAKEN,
        STMT_DELETE_TREE_FILES_TAKEN,
        _STMT_MAX,
};

struct store {
        sqlite3 *db;
        char *path;
        unsigned flags;
        unsigned lock_timeout_ms;
        const atomic_bool *cancel; /* store_set_cancel(); NULL: never */
        int (*search_check)(void *userdata); /* store_set_search_check() */
        void *search_check_userdata;
        void (*on_other_commit)(void *userdata); /* store_set_wait_progress() */
        void *other_commit_userdata;
        bool has_derived; /* schema version 2 is there (a reader may see version 1) */
        bool has_root_sources; /* version 3: roots.config and roots.rules */
        bool has_heading_filter; /* quire_heading_contains() registered on db */
        int stmt_errno; /* why the last store_stmt() that failed did */
        bool is_repairing; /* store_repair(): damage now is past its cure */
        dev_t dev; /* the file opened at path, to notice it being replaced */
        ino_t ino;
        struct token_replay *replay; /* writers only; NULL: FTS5 tokenizes as usual */
        /* The chunks the write transaction in progress will insert and
         * the files rows it will write (staged.c); they point into the
         * batch being applied. */
        struct staged_chunk *staged;
        size_t n_staged, cap_staged;
        struct staged_file *staged_files;
        size_t n_staged_files, cap_staged_files;
        sqlite3_stmt *stmts[_STMT_MAX];
        /* Search statements by their SQL, which depends on the filters a
         * search uses: a process that searches again (quired's search
         * threads) does not compile them again. Round-robin. */
        struct {
                char *sql;
                sqlite3_stmt *st;
        } searches[4];
        unsigned next_search;
};

/* The cached statement, prepared on first use; reset it after use (the
 * _cleanup_stmt_reset_ helper does). NULL on failure, logged, and
 * store_stmt_errno() says why. */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id);

/* Why the last store_stmt() that failed did (a damaged FTS index is
 * -EBADMSG, which quire status names): -errno. */
static inline int store_stmt_errno(const struct store *s) {
        return s->stmt_errno < 0 ? s->stmt_errno : -EIO;
}

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

struct chunk;
struct document;

/* staged.c: the chunks and files rows the write transaction in progress
 * will write, as the virtual tables quire_staged_chunks and
 * quire_staged_files (writers' connections only). A staged row points at
 * what it was made from (c or doc, ns, path), which must outlive the
 * flush; staged_chunk_add() generates the chunk's id. Clear them at each
 * flush and whenever a transaction starts over or ends. */
int staged_rows_install(struct store *s);
int staged_chunk_add(struct store *s, const char *ns, const char *path, const struct chunk *c, const char *now);
int staged_file_add(struct store *s, const char *ns, const char *path, const struct document *doc, const char *now);
void staged_rows_clear(struct store *s);
void staged_rows_free(struct store *s);

/* Whether store_use_one_thread() was called: then no other thread may
 * call SQLite at all, not even on a connection of its own. */
bool store_is_one_thread(void);

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
        bool has_derived; /* version 2: tags, links, CJK index, their trigger */
        bool has_unmounted; /* version 3: the unmounted table */
};

/* schema.c: read the state, and refuse what this build must not touch (a
 * newer version, a chunks table without seq) before anything is written,
 * WAL included. */
int schema_check(struct store *s, struct schema_state *ret);
/* schema.c: create or migrate to STORE_SCHEMA_VERSION (DESIGN.md 1) from
 * the state schema_check() read. */
int schema_ensure(struct store *s, const struct schema_state *st);
/* schema.c: collapse each group of chunks with one unique key to the row
 * DESIGN.md keeps (the uniqueness migration's rule). */
int schema_delete_duplicates(struct store *s);
/* schema.c: this connection's TEMP staging tables (see index.c). */
int schema_create_staging(struct store *s);

/* derived.c: the rows derived from chunks (schema version 2), kept in step
 * inside every write transaction of index.c:
 *   derived_catch_up()      first: derive chunks other writers inserted;
 *   derived_stage()         for each chunk inserted or re-derived;
 *   derived_flush()         after the chunk inserts: staged rows -> tables;
 *   derived_mark_written()  last: every chunk now has its derived rows. */
struct chunk;
int derived_catch_up(struct store *s);
int derived_stage(struct store *s, const char *ns, const char *path, const struct chunk *c);
int derived_flush(struct store *s);
int derived_mark_written(struct store *s);
/* Drop the derived rows of one chunk before it is derived again. */
int derived_forget(struct store *s, int64_t seq);
/* After a rename moved chunks to new_path (a file, or every file below the
 * directory new_path): re-derive those whose derived rows depend on their
 * path (Markdown links relative to it, the CJK row's path column). Links
 * from other notes are resolved when they are read, not here, so the rows
 * stay exactly what a fresh index of the tree would write. */
int derived_after_move(struct store *s, const char *ns, const char *new_path, bool is_dir);
/* The absolute path a Markdown link in source_file names (lexically
 * resolved), and the name a wiki link target is matched by (its last
 * component, ASCII-lowercased, without ".md"). Newly allocated; NULL on
 * -ENOMEM. */
char *derived_link_path(const char *source_file, const char *target);
char *derived_note_name(const char *target);
