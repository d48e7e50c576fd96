/* The chunks a write transaction is about to insert, read by its one
 * INSERT OR IGNORE ... SELECT (index.c, STMT_FLUSH_INSERTS) from the
 * eponymous virtual table quire_staged_chunks, which only the writer's
 * connection has. The rows stay where the reader threads made them: a
 * TEMP table in their place cost the writer a B-tree insert per chunk and
 * a copy of its text each way (4% of its instructions in a cold index).
 * The files rows of the same documents go the same way, through
 * quire_staged_files and one upsert per batch (STMT_FLUSH_FILES), instead
 * of a statement each.
 *
 * What a row points at (the chunk, its path) belongs to the batch being
 * applied, which outlives the transaction; the rows are dropped at each
 * flush and when a transaction starts over (a TEMP table went with the
 * rollback, an array does not). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"
#include "document.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

struct staged_chunk {
        char id[RANDOM_ID_LEN];
        char created_at[UTC_TIMESTAMP_LEN];
        const char *namespace, *path;
        const struct chunk *chunk;
};

struct staged_file {
        char indexed_at[UTC_TIMESTAMP_LEN];
        const char *namespace, *path;
        const struct document *doc;
};

enum {
        COL_ID,
        COL_NAMESPACE,
        COL_SOURCE_FILE,
        COL_CONTENT,
        COL_CONTENT_HASH,
        COL_HEADING_HIERARCHY,
        COL_START_LINE,
        COL_END_LINE,
        COL_CREATED_AT,
};

enum {
        FILE_COL_NAMESPACE,
        FILE_COL_PATH,
        FILE_COL_SIZE,
        FILE_COL_MTIME_NS,
        FILE_COL_FILE_HASH,
        FILE_COL_INDEXED_AT,
};

struct staged_vtab {
        sqlite3_vtab base;
        struct store *store;
};

struct staged_cursor {
        sqlite3_vtab_cursor base;
        const struct store *store;
        size_t i;
};

static int staged_declare(sqlite3 *db, void *aux, const char *schema, sqlite3_vtab **ret) {
        int rc = sqlite3_declare_vtab(db, schema);
        if (rc != SQLITE_OK)
                return rc;
        /* Not from a trigger or view that a schema might hold: only the
         * statement this file exists for reads it. */
        sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
        struct staged_vtab *vt = sqlite3_malloc(sizeof *vt);
        if (!vt)
                return SQLITE_NOMEM;
        *vt = (struct staged_vtab){ .store = aux };
        *ret = &vt->base;
        return SQLITE_OK;
}

static int staged_chunks_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **ret,
                                 char **err) {
        (void) argc;
        (void) argv;
        (void) err;
        return staged_declare(db, aux,
                              "CREATE TABLE x(id, namespace, source_file, content, content_hash,"
                              " heading_hierarchy, start_line, end_line, created_at)",
                              ret);
}

static int staged_files_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **ret,
                                char **err) {
        (void) argc;
        (void) argv;
        (void) err;
        return staged_declare(db, aux, "CREATE TABLE x(namespace, path, size, mtime_ns, file_hash, indexed_at)",
                              ret);
}

static int staged_disconnect(sqlite3_vtab *vt) {
        sqlite3_free(vt);
        return SQLITE_OK;
}

static int staged_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
        (void) vt;
        /* One plan: all rows, in the order they were staged. */
        info->estimatedCost = 1000;
        info->estimatedRows = 1000;
        return SQLITE_OK;
}

static int staged_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **ret) {
        struct staged_cursor *cur = sqlite3_malloc(sizeof *cur);
        if (!cur)
                return SQLITE_NOMEM;
        *cur = (struct staged_cursor){ .store = ((struct staged_vtab *) vt)->store };
        *ret = &cur->base;
        return SQLITE_OK;
}

static int staged_close(sqlite3_vtab_cursor *cur) {
        sqlite3_free(cur);
        return SQLITE_OK;
}

static int staged_filter(sqlite3_vtab_cursor *c, int idx_num, const char *idx_str, int argc, sqlite3_value **argv) {
        (void) idx_num;
        (void) idx_str;
        (void) argc;
        (void) argv;
        ((struct staged_cursor *) c)->i = 0;
        return SQLITE_OK;
}

static int staged_next(sqlite3_vtab_cursor *c) {
        ((struct staged_cursor *) c)->i++;
        return SQLITE_OK;
}

static int staged_chunks_eof(sqlite3_vtab_cursor *c) {
        struct staged_cursor *cur = (struct staged_cursor *) c;
        return cur->i >= cur->store->n_staged;
}

static int staged_files_eof(sqlite3_vtab_cursor *c) {
        struct staged_cursor *cur = (struct staged_cursor *) c;
        return cur->i >= cur->store->n_staged_files;
}

static int staged_files_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
        struct staged_cursor *cur = (struct staged_cursor *) c;
        const struct staged_file *row = &cur->store->staged_files[cur->i];

        switch (col) {
        case FILE_COL_NAMESPACE:
                sqlite3_result_text(ctx, row->namespace, -1, SQLITE_STATIC);
                break;
        case FILE_COL_PATH:
                sqlite3_result_text(ctx, row->path, -1, SQLITE_STATIC);
                break;
        case FILE_COL_SIZE:
                sqlite3_result_int64(ctx, row->doc->size);
                break;
        case FILE_COL_MTIME_NS:
                sqlite3_result_int64(ctx, row->doc->mtime_ns);
                break;
        case FILE_COL_FILE_HASH:
                sqlite3_result_text(ctx, row->doc->file_hash, -1, SQLITE_STATIC);
                break;
        case FILE_COL_INDEXED_AT:
                sqlite3_result_text(ctx, row->indexed_at, -1, SQLITE_STATIC);
                break;
        default:
                sqlite3_result_null(ctx);
        }
        return SQLITE_OK;
}

static int staged_chunks_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
        struct staged_cursor *cur = (struct staged_cursor *) c;
        const struct staged_chunk *row = &cur->store->staged[cur->i];

        switch (col) {
        case COL_ID:
                sqlite3_result_text(ctx, row->id, RANDOM_ID_LEN - 1, SQLITE_STATIC);
                break;
        case COL_NAMESPACE:
                sqlite3_result_text(ctx, row->namespace, -1, SQLITE_STATIC);
                break;
        case COL_SOURCE_FILE:
                sqlite3_result_text(ctx, row->path, -1, SQLITE_STATIC);
                break;
        case COL_CONTENT:
                sqlite3_result_text64(ctx, row->chunk->content, row->chunk->content_len, SQLITE_STATIC,
                                      SQLITE_UTF8);
                break;
        case COL_CONTENT_HASH:
                sqlite3_result_text(ctx, row->chunk->content_hash, -1, SQLITE_STATIC);
                break;
        case COL_HEADING_HIERARCHY:
                sqlite3_result_text(ctx, row->chunk->heading_hierarchy, -1, SQLITE_STATIC);
                break;
        case COL_START_LINE:
                sqlite3_result_int64(ctx, row->chunk->start_line);
                break;
        case COL_END_LINE:
                sqlite3_result_int64(ctx, row->chunk->end_line);
                break;
        case COL_CREATED_AT:
                sqlite3_result_text(ctx, row->created_at, -1, SQLITE_STATIC);
                break;
        default:
                sqlite3_result_null(ctx);
        }
        return SQLITE_OK;
}

static int staged_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *ret) {
        *ret = (sqlite3_int64) ((struct staged_cursor *) c)->i + 1;
        return SQLITE_OK;
}

/* xCreate NULL: eponymous only, never in a schema. */
static sqlite3_module staged_chunks_module = {
        .xConnect = staged_chunks_connect,
        .xBestIndex = staged_best_index,
        .xDisconnect = staged_disconnect,
        .xOpen = staged_open,
        .xClose = staged_close,
        .xFilter = staged_filter,
        .xNext = staged_next,
        .xEof = staged_chunks_eof,
        .xColumn = staged_chunks_column,
        .xRowid = staged_rowid,
};

static sqlite3_module staged_files_module = {
        .xConnect = staged_files_connect,
        .xBestIndex = staged_best_index,
        .xDisconnect = staged_disconnect,
        .xOpen = staged_open,
        .xClose = staged_close,
        .xFilter = staged_filter,
        .xNext = staged_next,
        .xEof = staged_files_eof,
        .xColumn = staged_files_column,
        .xRowid = staged_rowid,
};

int staged_rows_install(struct store *s) {
        int rc = sqlite3_create_module(s->db, "quire_staged_chunks", &staged_chunks_module, s);
        if (rc == SQLITE_OK)
                rc = sqlite3_create_module(s->db, "quire_staged_files", &staged_files_module, s);
        return rc == SQLITE_OK ? 0 : store_fail(s, rc, "register the staging tables");
}

static void copy_timestamp(char out[UTC_TIMESTAMP_LEN], const char *now) {
        size_t n = strnlen(now, UTC_TIMESTAMP_LEN - 1);
        memcpy(out, now, n);
        out[n] = '\0';
}

int staged_chunk_add(struct store *s, const char *ns, const char *path, const struct chunk *c, const char *now) {
        int r;

        if (GREEDY_REALLOC(s->staged, s->cap_staged, s->n_staged + 1, 64) < 0)
                return -ENOMEM;
        struct staged_chunk *row = &s->staged[s->n_staged];
        r = random_id(row->id);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a chunk id: %m");
        copy_timestamp(row->created_at, now);
        row->namespace = ns;
        row->path = path;
        row->chunk = c;
        s->n_staged++;
        return 0;
}

int staged_file_add(struct store *s, const char *ns, const char *path, const struct document *doc, const char *now) {
        if (GREEDY_REALLOC(s->staged_files, s->cap_staged_files, s->n_staged_files + 1, 64) < 0)
                return -ENOMEM;
        struct staged_file *row = &s->staged_files[s->n_staged_files++];
        copy_timestamp(row->indexed_at, now);
        row->namespace = ns;
        row->path = path;
        row->doc = doc;
        return 0;
}

void staged_rows_clear(struct store *s) {
        s->n_staged = 0;
        s->n_staged_files = 0;
}

void staged_rows_free(struct store *s) {
        free(s->staged);
        free(s->staged_files);
        s->staged = NULL;
        s->staged_files = NULL;
        s->n_staged = s->cap_staged = s->n_staged_files = s->cap_staged_files = 0;
}
