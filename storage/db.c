/* Opening the shared database: the header check that keeps us off foreign
 * files, the connection settings every writer uses, the errno boundary and
 * the BEGIN IMMEDIATE transaction with busy retry. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "log.h"
#include "store-internal.h"
#include "util.h"

#define LOCK_TIMEOUT_MS_DEFAULT 30000u
#define BUSY_HANDLER_MS_MAX 2000u

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_FILE_GET] = "SELECT size, mtime_ns, file_hash, indexed_at FROM files WHERE namespace = ?1 AND path = ?2",
        /* The files rows of a batch (staged.c). "WHERE true": an upsert
         * after a SELECT needs it, or ON is read as a join's. */
        [STMT_FLUSH_FILES] =
                "INSERT INTO files(namespace, path, size, mtime_ns, file_hash, indexed_at) "
                "SELECT namespace, path, size, mtime_ns, file_hash, indexed_at FROM quire_staged_files WHERE true "
                "ON CONFLICT(namespace, path) DO UPDATE SET size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, file_hash = excluded.file_hash, "
                "indexed_at = excluded.indexed_at",
        [STMT_FILE_DELETE] = "DELETE FROM files WHERE namespace = ?1 AND path = ?2",
        /* '/' + 1 == '0': the half-open range is exactly the paths below dir,
         * and it walks the primary key in the same byte order as our scan. */
        [STMT_FILES_UNDER] = "SELECT path, size, mtime_ns, indexed_at FROM files WHERE namespace = ?1 "
                             "AND path >= ?2 || '/' AND path < ?2 || '0' ORDER BY path",
        /* Paths with chunks but no files row (a legacy database's, a
         * writer's that stored none). EXCEPT of two sorted index ranges:
         * SQLite merges them, no lookup per chunk. */
        [STMT_UNFILED_UNDER] = "SELECT source_file FROM chunks WHERE namespace = ?1 "
                               "AND source_file >= ?2 || '/' AND source_file < ?2 || '0' "
                               "EXCEPT SELECT path FROM files WHERE namespace = ?1 "
                               "AND path >= ?2 || '/' AND path < ?2 || '0' ORDER BY 1",
        [STMT_RANGE_IS_EMPTY] = "SELECT NOT EXISTS (SELECT 1 FROM files WHERE namespace = ?1 AND path BETWEEN ?2 AND ?3)"
                                " AND NOT EXISTS (SELECT 1 FROM chunks WHERE namespace = ?1"
                                " AND source_file BETWEEN ?2 AND ?3)",
        [STMT_CHUNKS_OF_FILE] = "SELECT seq, content_hash, start_line, end_line, heading_hierarchy "
                                "FROM chunks WHERE namespace = ?1 AND source_file = ?2",
        [STMT_STAGE_DELETE] = "INSERT OR IGNORE INTO temp.staged_deletes(seq) VALUES (?1)",
        [STMT_STAGE_DELETE_FILE] = "INSERT OR IGNORE INTO temp.staged_deletes(seq) "
                                   "SELECT seq FROM chunks WHERE namespace = ?1 AND source_file = ?2",
        [STMT_FLUSH_DELETES] = "DELETE FROM chunks WHERE seq IN (SELECT seq FROM temp.staged_deletes)",
        /* The one INSERT OR IGNORE of the contract: a row a peer (or an
         * earlier twin in this batch) already holds is skipped, and an
         * ignored row fires no trigger, so FTS never sees it. */
        [STMT_FLUSH_INSERTS] =
                "INSERT OR IGNORE INTO chunks(id, namespace, source_file, content, content_hash, "
                "heading_hierarchy, start_line, end_line, created_at, updated_at) "
                "SELECT id, namespace, source_file, content, content_hash, heading_hierarchy, "
                "start_line, end_line, created_at, created_at FROM quire_staged_chunks",
        /* Two spellings on purpose: naming heading_hierarchy in SET fires
         * chunks_au (an FTS delete + insert) even when the value is equal. */
        [STMT_CHUNK_MOVE] = "UPDATE chunks SET start_line = ?2, end_line = ?3, updated_at = ?4 "
                            "WHERE seq = ?1",
        /* Renames. source_file is in chunks_au's column list, so the FTS
         * index follows; the unique key cannot collide because move_tx()
         * clears the way first (a file renamed over had rows of its own;
         * another writer may have indexed the new name before us). */
        [STMT_MOVE_FILE_CHUNKS] = "UPDATE chunks SET source_file = ?3 WHERE namespace = ?1 AND source_file = ?2",
        /* indexed_at stays: the rename set the file's ctime after it, so
         * the next stat of the new name reads it once (the diff keeps the
         * ids). A renewed one would vouch for whatever the new name holds
         * when the move is applied, which may be another file renamed
         * over it since, of the same size and mtime. */
        [STMT_MOVE_FILE_FILES] = "UPDATE files SET path = ?3 WHERE namespace = ?1 AND path = ?2",
        [STMT_MOVE_TREE_CHUNKS] = "UPDATE chunks SET source_file = ?3 || substr(source_file, length(?2) + 1) "
                                  "WHERE namespace = ?1 AND source_file >= ?2 || '/' AND source_file < ?2 || '0'",
        [STMT_MOVE_TREE_FILES] = "UPDATE files SET path = ?3 || substr(path, length(?2) + 1) "
                                 "WHERE namespace = ?1 AND path >= ?2 || '/' AND path < ?2 || '0'",
        [STMT_STAGE_DELETE_TREE] = "INSERT OR IGNORE INTO temp.staged_deletes(seq) SELECT seq FROM chunks "
                                   "WHERE namespace = ?1 AND source_file >= ?2 || '/' AND source_file < ?2 || '0'",
        [STMT_DELETE_TREE_FILES] = "DELETE FROM files WHERE namespace = ?1 AND path >= ?2 || '/' AND path < ?2 || '0'",
        [STMT_FILE_HAS_ROWS] = "SELECT EXISTS (SELECT 1 FROM files WHERE namespace = ?1 AND path = ?2)"
                               " OR EXISTS (SELECT 1 FROM chunks WHERE namespace = ?1 AND source_file = ?2)",
        [STMT_TREE_HAS_ROWS] = "SELECT EXISTS (SELECT 1 FROM files WHERE namespace = ?1"
                               " AND path >= ?2 || '/' AND path < ?2 || '0')"
                               " OR EXISTS (SELECT 1 FROM chunks WHERE namespace = ?1"
                               " AND source_file >= ?2 || '/' AND source_file < ?2 || '0')",
        /* The rows below directory ?2 whose path under its new name ?3
         * already has rows: those stay, these go. */
#define NEW_NAME_IS_TAKEN(col)                                                                     \
        " AND (EXISTS (SELECT 1 FROM files n WHERE n.namespace = ?1"                              \
        " AND n.path = ?3 || substr(" col ", length(?2) + 1))"                                    \
        " OR EXISTS (SELECT 1 FROM chunks n WHERE n.namespace = ?1"                               \
        " AND n.source_file = ?3 || substr(" col ", length(?2) + 1)))"
        [STMT_STAGE_DELETE_TREE_TAKEN] = "INSERT OR IGNORE INTO temp.staged_deletes(seq) SELECT seq FROM chunks "
                                         "WHERE namespace = ?1 AND source_file >= ?2 || '/' AND source_file < ?2 || '0'"
                                         NEW_NAME_IS_TAKEN("chunks.source_file"),
        [STMT_DELETE_TREE_FILES_TAKEN] = "DELETE FROM files WHERE namespace = ?1 AND path >= ?2 || '/' AND path < ?2 || '0'"
                                         NEW_NAME_IS_TAKEN("files.path"),
#undef NEW_NAME_IS_TAKEN
        [STMT_CHUNK_MOVE_HEADING] = "UPDATE chunks SET start_line = ?2, end_line = ?3, updated_at = ?4, "
                                    "heading_hierarchy = ?5 WHERE seq = ?1",
        /* Derived rows (derived.c). Staged rows find their chunk by the
         * unique key, so they reach the row whoever inserted it. */
        [STMT_DERIVE_MARK_GET] = "SELECT seq FROM derive_mark WHERE id = 0",
        /* Writes only when the mark moves: a transaction that changed
         * nothing must write nothing. */
        [STMT_DERIVE_MARK_SET] = "UPDATE derive_mark SET seq = (SELECT coalesce(max(seq), 0) FROM chunks) "
                                 "WHERE id = 0 AND seq IS NOT (SELECT coalesce(max(seq), 0) FROM chunks)",
        [STMT_DERIVE_PENDING] = "SELECT namespace, source_file, content, content_hash, start_line, "
                                "heading_hierarchy FROM chunks WHERE seq > ?1 ORDER BY seq",
        [STMT_STAGE_TAG] = "INSERT INTO temp.staged_tags VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        [STMT_STAGE_LINK] = "INSERT INTO temp.staged_links VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        [STMT_STAGE_CJK] = "INSERT INTO temp.staged_cjk VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
#define STAGED_CHUNK_JOIN                                                                         \
        " JOIN chunks c ON c.namespace = t.namespace AND c.source_file = t.source_file"          \
        " AND c.content_hash = t.content_hash AND c.start_line = t.start_line"
        [STMT_FLUSH_TAGS] = "INSERT OR IGNORE INTO chunk_tags(seq, tag, is_file_level) "
                            "SELECT c.seq, t.tag, t.is_file_level FROM temp.staged_tags t" STAGED_CHUNK_JOIN,
        [STMT_FLUSH_LINKS] = "INSERT OR IGNORE INTO links(seq, ord, kind, target, fragment, line_offset, "
                             "target_path, target_name) SELECT c.seq, t.ord, t.kind, t.target, t.fragment, "
                             "t.line_offset, t.target_path, t.target_name FROM temp.staged_links t" STAGED_CHUNK_JOIN,
        /* One statement for the batch: FTS5 writes one segment per statement. */
        [STMT_FLUSH_CJK] = "INSERT INTO chunks_cjk(rowid, content, source_file, heading_hierarchy) "
                           "SELECT c.seq, t.content, t.path_text, t.heading_hierarchy FROM temp.staged_cjk t"
                           STAGED_CHUNK_JOIN " WHERE NOT EXISTS (SELECT 1 FROM chunks_cjk k WHERE k.rowid = c.seq)",
#undef STAGED_CHUNK_JOIN
        [STMT_FORGET_TAGS] = "DELETE FROM chunk_tags WHERE seq = ?1",
        [STMT_FORGET_LINKS] = "DELETE FROM links WHERE seq = ?1",
        [STMT_FORGET_CJK] = "DELETE FROM chunks_cjk WHERE rowid = ?1",
#define DERIVED_ROWS_WHERE                                                                        \
        " AND (EXISTS (SELECT 1 FROM links l WHERE l.seq = chunks.seq)"                          \
        " OR EXISTS (SELECT 1 FROM chunks_cjk k WHERE k.rowid = chunks.seq))"
        [STMT_DERIVED_OF_FILE] = "SELECT seq FROM chunks WHERE namespace = ?1 AND source_file = ?2"
                                 DERIVED_ROWS_WHERE,
        [STMT_DERIVED_OF_TREE] = "SELECT seq FROM chunks WHERE namespace = ?1 "
                                 "AND source_file >= ?2 || '/' AND source_file < ?2 || '0'" DERIVED_ROWS_WHERE,
        [STMT_CHUNK_TO_DERIVE] = "SELECT namespace, source_file, content, content_hash, start_line, "
                                 "heading_hierarchy FROM chunks WHERE seq = ?1",
#undef DERIVED_ROWS_WHERE
};

int store_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
                return -EBADMSG;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_ERROR:
        case SQLITE_RANGE:
        case SQLITE_MISMATCH:
                return -EINVAL;
        default:
                return -EIO;
        }
}

int store_fail(struct store *s, int rc, const char *what) {
        int r = store_errno(rc);

        if (r == -EBUSY)
                return r;
        /* SQLite's I/O errors hide the system's reason, which is the one
         * to act on: a full disk, met while the -shm file grows, is only
         * "disk I/O error" otherwise. */
        int os_errno = s->db ? sqlite3_system_errno(s->db) : 0;
        /* SQLITE_FULL from SQLite's own bookkeeping carries no errno: the
         * line names the cause the same way. */
        if ((rc & 0xff) == SQLITE_FULL && os_errno <= 0)
                os_errno = ENOSPC;
        if (os_errno > 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN ||
                             (rc & 0xff) == SQLITE_FULL))
                return log_error_errno(os_errno, "Failed to %s in %s: %s (%m)", what, s->path,
                                       sqlite3_errmsg(s->db));
        /* FTS5's word for any damage it meets (a damaged structure
         * record fails every statement with "vtable constructor
         * failed"): name the index and the cure. */
        if (s->is_repairing && (rc & 0xff) == SQLITE_CORRUPT && s->db)
                return log_error_errno(r, "Failed to %s in %s: %s (damage no index rebuild gets past: move the "
                                          "database aside and index the notes again)",
                                       what, s->path, sqlite3_errmsg(s->db));
        if (rc == SQLITE_CORRUPT_VTAB && s->db)
                return log_error_errno(r, "Failed to %s in %s: its full-text index is damaged (%s); 'quire repair' "
                                          "rebuilds it from the rows",
                                       what, s->path, sqlite3_errmsg(s->db));
        if ((rc & 0xff) == SQLITE_CORRUPT && s->db)
                return log_error_errno(r, "Failed to %s in %s: %s ('quire repair' rebuilds damaged indexes from the "
                                          "rows)",
                                       what, s->path, sqlite3_errmsg(s->db));
        return log_error_errno(r, "Failed to %s in %s: %s", what, s->path,
                               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

int store_exec(struct store *s, const char *sql, const char *what) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : store_fail(s, rc, what);
}

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id) {
        if (!s->stmts[id]) {
                int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL);
                if (rc != SQLITE_OK) {
                        s->stmt_errno = store_fail(s, rc, "prepare a statement");
                        return NULL;
                }
        }
        return s->stmts[id];
}

const char *store_path(const struct store *s) {
        return s->path;
}

bool store_is_file(const struct store *s, uint64_t dev, uint64_t ino) {
        return (uint64_t) s->dev == dev && (uint64_t) s->ino == ino;
}

int64_t store_total_changes(struct store *s) {
        return sqlite3_total_changes64(s->db);
}

/* mkdir -p of path's parent directory, mode 0700 for what we create. */
static int make_parent_dirs(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* The fields of the 100-byte header that SQLite itself insists on
 * (fileformat.html, "The Database Header"): checked before SQLite sees the
 * file, because a header that claims WAL mode makes SQLite create -wal and
 * -shm files beside it even for a read, and a foreign file must be left as
 * it was found. */
static bool is_sqlite_header(const unsigned char *h, size_t n) {
        static const char magic[16] = "SQLite format 3";

        if (n < 100 || memcmp(h, magic, sizeof magic) != 0)
                return false;
        unsigned page_size = (unsigned) h[16] << 8 | h[17];
        if (page_size == 1)
                page_size = 65536;
        if (page_size < 512 || (page_size & (page_size - 1)) != 0)
                return false;
        if ((h[18] != 1 && h[18] != 2) || (h[19] != 1 && h[19] != 2))
                return false; /* file format write/read versions */
        return h[21] == 64 && h[22] == 32 && h[23] == 32; /* payload fractions */
}

/* The contract: a 0-byte file is a new database (someone may have just
 * created it); a file that is neither empty nor a SQLite file is refused
 * and left untouched. A missing file is created here, mode 0600, so the
 * mode is ours and not the umask's.
 *
 * Only stat() here: this process may hold SQLite connections to the file
 * already (quired's writer and its search threads, a search that opens a
 * writer for stale hits), and close() of any descriptor of a file drops
 * every POSIX lock the process holds on it, theirs included. Another
 * process could then take the database for unused and delete its WAL
 * under them (sqlite.org/howtocorrupt.html, 2.2). The header is read
 * through SQLite's own descriptor (check_database_header()), which its
 * VFS shares safely. */
static int check_database_file(const char *path, bool may_create) {
        struct stat st;

        if (stat(path, &st) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(errno, "Failed to open database %s: %m", path);
                if (!may_create)
                        return log_error_errno(ENOENT, "No index at %s (run 'quire index DIR' first)", path);
                int r = make_parent_dirs(path);
                if (r < 0)
                        return log_error_errno(r, "Failed to create the directory of %s: %m", path);
                /* A new inode: nobody holds locks on it to lose. */
                int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Failed to create database %s: %m", path);
                if (fd >= 0)
                        close(fd);
                if (stat(path, &st) < 0)
                        return log_error_errno(errno, "Failed to open database %s: %m", path);
        }
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "Failed to open database %s: not a regular file", path);
        if (!may_create && st.st_size == 0)
                return log_error_errno(ENOENT, "No index at %s (run 'quire index DIR' first)", path);
        /* SQLite names the -wal and -shm after the name it was given, so
         * connections through two links of one file do not see each
         * other's WAL and corrupt it (sqlite.org/howtocorrupt.html, 2.5);
         * two quireds, one per name, would not see each other either. */
        if (st.st_nlink > 1)
                return log_error_errno(EMLINK,
                                       "Refusing to open %s: the file has %ju hard links, and SQLite would corrupt it "
                                       "through two names (remove the other links; left untouched)",
                                       path, (uintmax_t) st.st_nlink);
        return 0;
}

/* Whether path's filesystem is mounted read-only. */
static bool is_on_readonly_fs(const char *path) {
        struct statvfs vfs;

        return statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
}

/* Whether this process may create files in path's folder (the -wal and
 * -shm SQLite puts beside a WAL database). */
static bool is_folder_writable(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        return !copy || access(dirname(copy), W_OK | X_OK) == 0;
}

/* Whether path is a database closed cleanly (no -wal, no -shm beside
 * it) on a filesystem mounted read-only, or in a folder this process may
 * not write (someone else's shared index): SQLite cannot create the -shm
 * a reader of a WAL database needs. On a read-only filesystem nothing can
 * change the file while that holds; in a folder only its owner may write,
 * the owner's writer would put a -wal beside it first, which is looked
 * for here, at the open (a reader is short-lived). With a -wal beside it
 * (a snapshot of a live database, a read-only bind mount of one being
 * written) the file is not the whole database, or not a still one:
 * SQLite reads it with the -shm there. path is the file itself, symlinks
 * resolved: SQLite puts the -wal and -shm beside the target. */
static bool is_still_where_no_shm_can_go(const char *path) {
        _cleanup_free_ char *wal = NULL, *shm = NULL;
        struct stat st;

        if (!is_on_readonly_fs(path) && is_folder_writable(path))
                return false;
        if (asprintf(&wal, "%s-wal", path) < 0 || asprintf(&shm, "%s-shm", path) < 0)
                return false;
        return lstat(wal, &st) < 0 && errno == ENOENT && lstat(shm, &st) < 0 && errno == ENOENT;
}

/* A "file:" URI for path with immutable=1, which SQLite opens without
 * -shm or locks (its URI rules: '%', '?' and '#' escaped; an absolute
 * path behind an empty authority). NULL on ENOMEM. */
static char *immutable_uri(const char *path) {
        char *uri = malloc(3 * strlen(path) + sizeof "file://?immutable=1");
        char *o = uri;

        if (!uri)
                return NULL;
        o = stpcpy(o, path[0] == '/' ? "file://" : "file:");
        for (const char *p = path; *p; p++)
                if (*p == '%' || *p == '?' || *p == '#')
                        o += sprintf(o, "%%%02X", (unsigned) (unsigned char) *p);
                else
                        *o++ = *p;
        strcpy(o, "?immutable=1");
        return uri;
}

/* The first 100 bytes of the file s->db has open, through SQLite's own
 * file handle: refuse it unless it is empty (a new database) or a SQLite
 * file. Nothing has been read or written by SQLite yet. */
static int check_database_header(struct store *s) {
        sqlite3_file *file = NULL;
        unsigned char header[100];
        sqlite3_int64 size = 0;

        if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || !file ||
            !file->pMethods)
                return log_error_errno(EIO, "Failed to read database %s: no file handle", s->path);
        int rc = file->pMethods->xFileSize(file, &size);
        if (rc != SQLITE_OK)
                return log_error_errno(EIO, "Failed to read database %s: %s", s->path, sqlite3_errstr(rc));
        if (size == 0)
                return 0;
        memset(header, 0, sizeof header);
        rc = file->pMethods->xRead(file, header, sizeof header, 0);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
                return log_error_errno(EIO, "Failed to read database %s: %s", s->path, sqlite3_errstr(rc));
        if (!is_sqlite_header(header, size < (sqlite3_int64) sizeof header ? (size_t) size : sizeof header))
                return log_error_errno(EBADMSG, "Refusing to open %s: not a SQLite database (left untouched)",
                                       s->path);
        return 0;
}

static unsigned lock_timeout_from_env(void) {
        const char *e = getenv("QUIRE_LOCK_TIMEOUT_MS");
        char *end;

        if (!e || !*e)
                return LOCK_TIMEOUT_MS_DEFAULT;
        errno = 0;
        unsigned long v = strtoul(e, &end, 10);
        if (errno || *end || v > UINT_MAX) {
                log_warning("Ignoring QUIRE_LOCK_TIMEOUT_MS=%s: not a number of milliseconds", e);
                return LOCK_TIMEOUT_MS_DEFAULT;
        }
        return (unsigned) v;
}

/* Run a pragma, retrying while the database is busy: switching to WAL
 * needs a moment of exclusive access, which a peer may hold. */
static int pragma_with_retry(struct store *s, const char *sql, const char *what) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t) s->lock_timeout_ms * 1000u;
        unsigned backoff_ms = 5;

        for (;;) {
                int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        return 0;
                if (store_errno(rc) != -EBUSY)
                        return store_fail(s, rc, what);
                if (now_monotonic_usec() >= deadline)
                        return log_error_errno(EBUSY, "Failed to %s in %s: database is locked (waited %u ms)",
                                               what, s->path, s->lock_timeout_ms);
                nanosleep(&(struct timespec){ .tv_nsec = (long) backoff_ms * 1000000L }, NULL);
                backoff_ms = backoff_ms < 200 ? backoff_ms * 2 : 200;
        }
}

static int configure_connection(struct store *s) {
        int r;

        /* Readers map the file instead of pread()ing each page into the
         * page cache: a search touches a few hundred pages once. */
        if (s->flags & STORE_READONLY)
                return pragma_with_retry(s, "PRAGMA foreign_keys=ON; PRAGMA mmap_size=1073741824",
                                         "configure the connection");

        if (sqlite3_db_readonly(s->db, "main") == 1)
                return log_error_errno(EROFS, "Failed to open %s for writing: the database is read-only",
                                       s->path);
        /* Only takes effect on a database not yet created (it is a no-op
         * afterwards). 16 KiB pages suit FTS5's large doclist blobs: the
         * cold index of the tldr corpus runs ~18% faster than with 4 KiB. */
        r = pragma_with_retry(s, "PRAGMA page_size=16384", "set the page size");
        if (r < 0)
                return r;
        r = pragma_with_retry(s, "PRAGMA journal_mode=WAL", "switch to WAL");
        if (r < 0)
                return r;
        return pragma_with_retry(s, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
                                 "configure the connection");
}

static bool is_one_thread;

int store_use_one_thread(void) {
        if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK ||
            sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
                return -EBUSY;
        is_one_thread = true;
        return 0;
}

int store_use_threads(void) {
        return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK ? 0 : -EBUSY;
}

bool store_is_one_thread(void) {
        return is_one_thread;
}

int store_open(const char *path, const struct store_options *opts, struct store **ret) {
        _cleanup_free_ char *uri = NULL, *resolved = NULL;
        struct store *s;
        int r, rc;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        s->flags = opts ? opts->flags : 0;
        s->lock_timeout_ms = opts && opts->lock_timeout_ms ? opts->lock_timeout_ms : lock_timeout_from_env();

        r = check_database_file(path, !(s->flags & (STORE_READONLY | STORE_NO_CREATE)));
        if (r < 0)
                goto fail;

        /* On a read-only filesystem a writer is told why it cannot write,
         * and a reader opens a database closed cleanly as immutable, or it
         * could not open it at all. */
        /* SQLite follows a symlink to the file: its -wal and -shm go
         * beside the target, whose folder is the one that counts. */
        resolved = realpath(path, NULL);
        const char *file = resolved ? resolved : path;
        if (!(s->flags & STORE_READONLY) && is_on_readonly_fs(path)) {
                r = log_error_errno(EROFS, "Failed to open %s for writing: its filesystem is read-only", path);
                goto fail;
        }
        /* Where its -wal cannot be made, SQLite would say "attempt to
         * write a readonly database" about reading the schema. */
        if (!(s->flags & STORE_READONLY) && !is_folder_writable(file)) {
                r = log_error_errno(EACCES, "Failed to open %s for writing: its folder is not writable", path);
                goto fail;
        }
        if ((s->flags & STORE_READONLY) && is_still_where_no_shm_can_go(file)) {
                uri = immutable_uri(path);
                if (!uri) {
                        r = log_error_errno(ENOMEM, "Failed to open database %s: %m", path);
                        goto fail;
                }
        }
        rc = sqlite3_open_v2(uri ? uri : path, &s->db,
                             (s->flags & STORE_READONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                                     SQLITE_OPEN_NOMUTEX | (uri ? SQLITE_OPEN_URI : 0),
                             NULL);
        if (rc != SQLITE_OK) {
                r = log_error_errno(store_errno(rc), "Failed to open database %s: %s", path,
                                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                goto fail;
        }
        sqlite3_extended_result_codes(s->db, 1);
        r = check_database_header(s);
        if (r < 0)
                goto fail;
        /* Before any statement can connect an FTS5 table (the migration
         * may), or the tables would keep the plain unicode61. Without it
         * the writer tokenizes for itself, so a failure only costs time. */
        if (!(s->flags & STORE_READONLY)) {
                r = token_replay_install(s->db, &s->replay);
                if (r < 0)
                        log_debug_errno(r, "Not replaying reader-made tokens in %s: %m", path);
        }
        struct stat st;
        if (stat(path, &st) == 0) {
                s->dev = st.st_dev;
                s->ino = st.st_ino;
        }
        sqlite3_busy_timeout(s->db, (int) (s->lock_timeout_ms < BUSY_HANDLER_MS_MAX ? s->lock_timeout_ms
                                                                                    : BUSY_HANDLER_MS_MAX));
        struct schema_state state;
        r = schema_check(s, &state);
        if (r < 0)
                goto fail;
        r = configure_connection(s);
        if (r < 0)
                goto fail;
        r = schema_ensure(s, &state);
        if (r < 0)
                goto fail;
        /* A writer has just brought the schema to the current version; a
         * reader searches what is there. */
        s->has_derived = !(s->flags & STORE_READONLY) || state.has_derived;
        s->has_root_sources = !(s->flags & STORE_READONLY) || (state.version >= 3 && state.has_unmounted);
        if (!(s->flags & STORE_READONLY)) {
                r = schema_create_staging(s);
                if (r == 0)
                        r = staged_rows_install(s);
                if (r < 0)
                        goto fail;
        }
        *ret = s;
        return 0;
fail:
        store_close(s);
        return r;
}

struct store *store_close(struct store *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmts[i]);
        for (size_t i = 0; i < ELEMENTSOF(s->searches); i++) {
                sqlite3_finalize(s->searches[i].st);
                free(s->searches[i].sql);
        }
        sqlite3_close(s->db);
        token_replay_free(s->replay);
        staged_rows_free(s);
        free(s->path);
        free(s);
        return NULL;
}

void store_release_memory(struct store *s) {
        sqlite3_db_release_memory(s->db);
}

/* Whether path still names the file this connection opened. A database
 * removed or replaced while open (a backup restored, a sync tool) would
 * otherwise take our writes into a file no other process ever opens again,
 * silently: SQLite keeps using the descriptor it has. */
static int check_same_file(struct store *s) {
        struct stat st;

        if (stat(s->path, &st) < 0) {
                if (errno == ENOENT)
                        return log_error_errno(ESTALE, "Database %s was removed while in use", s->path);
                return log_error_errno(errno, "Failed to stat database %s: %m", s->path);
        }
        if (!store_is_file(s, st.st_dev, st.st_ino))
                return log_error_errno(ESTALE, "Database %s was replaced by another file while in use", s->path);
        return 0;
}

/* PRAGMA data_version: a number that changes whenever another connection
 * commits to the database; -1 when it cannot be read (a lock that keeps
 * even readers out). */
static int64_t data_version(struct store *s) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                return -1;
        return sqlite3_column_int64(st, 0);
}

void store_set_cancel(struct store *s, const atomic_bool *cancel) {
        s->cancel = cancel;
}

void store_set_wait_progress(struct store *s, void (*on_other_commit)(void *userdata), void *userdata) {
        s->on_other_commit = on_other_commit;
        s->other_commit_userdata = userdata;
}

int store_transact(struct store *s, int (*fn)(struct store *s, void *userdata), void *userdata) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t) s->lock_timeout_ms * 1000u;
        unsigned backoff_ms = 5;
        int64_t last_version = data_version(s);
        int k = check_same_file(s);

        if (k < 0)
                return k;
        for (;;) {
                int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                int r = store_errno(rc);

                if (r == 0) {
                        r = fn(s, userdata);
                        if (r == 0) {
                                rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
                                r = store_errno(rc);
                                if (r == 0)
                                        return 0;
                                if (r != -EBUSY)
                                        store_fail(s, rc, "commit");
                        }
                        if (!sqlite3_get_autocommit(s->db))
                                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                } else if (r != -EBUSY)
                        return store_fail(s, rc, "begin a write transaction");

                if (r != -EBUSY)
                        return r;
                if (s->cancel && atomic_load(s->cancel))
                        return -ECANCELED;
                /* The lock timeout bounds a wait on a database nobody
                 * writes, not on a busy one: while other writers commit,
                 * the work is getting done and our turn will come. SQLite's
                 * busy handler is not fair, so under many writers one may
                 * lose for longer than the timeout. */
                int64_t version = data_version(s);
                if (version >= 0 && version != last_version) {
                        deadline = now_monotonic_usec() + (uint64_t) s->lock_timeout_ms * 1000u;
                        if (s->on_other_commit && last_version >= 0)
                                s->on_other_commit(s->other_commit_userdata);
                        last_version = version;
                }
                if (now_monotonic_usec() >= deadline)
                        return log_error_errno(EBUSY,
                                               "Failed to write to %s: database is locked (no writer committed for "
                                               "%u ms)",
                                               s->path, s->lock_timeout_ms);
                /* Jitter keeps a crowd of writers that lost the same race
                 * from coming back in lockstep. */
                unsigned sleep_ms = backoff_ms / 2 + (unsigned) (now_monotonic_usec() % (backoff_ms / 2 + 1));
                nanosleep(&(struct timespec){ .tv_nsec = (long) sleep_ms * 1000000L }, NULL);
                backoff_ms = backoff_ms < 400 ? backoff_ms * 2 : 400;
        }
}
