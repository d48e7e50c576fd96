/* The shared store: one SQLite database under the storage contract of
 * DESIGN.md section 1. Every writer (this library, the daemon, the CLI, a
 * foreign program) follows the same schema, triggers and INSERT OR IGNORE
 * rule, so concurrent writers never create duplicate rows. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 3

struct store;

enum store_open_flags {
        STORE_READONLY = 1 << 0, /* search/status: never write, never migrate */
        STORE_NO_CREATE = 1 << 1, /* a writer for a database that must exist (-ENOENT) */
};

struct store_options {
        unsigned flags;
        /* How long a writer keeps retrying a busy database in all, across
         * SQLite's own busy handler and our backoff. 0 = the default (30 s,
         * or QUIRE_LOCK_TIMEOUT_MS from the environment). */
        unsigned lock_timeout_ms;
};

/* Open (creating if needed) and migrate the database at path. On failure
 * logs one line naming path and the cause and returns:
 *   -EBADMSG                 not a SQLite database, or corrupt
 *   -EPROTONOSUPPORT         schema newer than this build understands
 *   -EROFS                   read-only database for a writer
 *   -EBUSY                   locked longer than the lock timeout
 *   -ENOENT                  STORE_READONLY or STORE_NO_CREATE, and no
 *                            database there
 * The file is never modified on these errors. */
int store_open(const char *path, const struct store_options *opts, struct store **ret);
struct store *store_close(struct store *s);

/* While *cancel is set, a write waiting for a database another writer
 * holds gives up with -ECANCELED instead of waiting out the lock timeout
 * (within SQLite's busy handler's 2 s): a daemon asked to stop does not
 * wait for a 'quire index' to finish. A search under way ends the same
 * way (search.h). NULL (the default) never cancels. */
void store_set_cancel(struct store *s, const atomic_bool *cancel);

/* Called from a write that waits for another writer's lock, each time
 * that writer has committed since the last look (PRAGMA data_version
 * moved; at most every 2 s): the wait is making progress, as a batch of
 * one's own would. quired's watchdog counts it, so a long 'quire index'
 * committing batch after batch does not get quired killed, while a lock
 * held without commits still does. NULL (the default): no calls. */
void store_set_wait_progress(struct store *s, void (*on_other_commit)(void *userdata), void *userdata);

/* For a process in which SQLite is only ever called from one thread (the
 * CLI's read commands): SQLite without its mutexes and its memory
 * statistics, a tenth of the instructions of a short search. Call before
 * any other store function; -EBUSY after. */
int store_use_one_thread(void);
/* For a process that calls SQLite from several threads (quire index,
 * quired): SQLite without its memory statistics, which nothing in quire
 * reads and which take a global mutex around every allocation and free
 * (3% of the writer thread's instructions in a cold index). Call before
 * any other store function; -EBUSY after. */
int store_use_threads(void);

const char *store_path(const struct store *s);
/* Whether the file s opened (as its path named it just after the open)
 * is the one with this st_dev and st_ino. */
bool store_is_file(const struct store *s, uint64_t dev, uint64_t ino);
/* Number of rows changed by this connection so far (sqlite3_total_changes). */
int64_t store_total_changes(struct store *s);

/* Run fn inside a BEGIN IMMEDIATE transaction and commit. When any step
 * reports -EBUSY the transaction is rolled back and the whole of fn is run
 * again after a backoff, until the lock timeout: fn must be safe to repeat.
 * Any other error from fn rolls back and is returned. -ESTALE (logged):
 * the database file was removed or replaced since store_open(), nothing
 * was written; close this store and open the path again. */
int store_transact(struct store *s, int (*fn)(struct store *s, void *userdata), void *userdata);

/* Rebuild what the file derives from its rows, in one write transaction:
 * every B-tree index (REINDEX) and both full-text indexes, a damaged
 * FTS5 structure record included. Rows, ids and counters are kept; damage
 * in the rows themselves stays (store_check_integrity() reports it). */
int store_repair(struct store *s);

/* Give back this connection's page cache (after a bulk sync, so a
 * long-running process goes back to its small steady size). */
void store_release_memory(struct store *s);

/* The default database path: $QUIRE_DB, else $XDG_DATA_HOME/quire/index.db,
 * else ~/.local/share/quire/index.db. Returns a newly allocated string. */
char *store_default_path(void);
