/* See indexer.h. Operations are a FIFO under one mutex; the thread takes
 * the whole queue at once and runs it in order, merging consecutive path
 * syncs of one namespace into one sync_run(), so a burst of settled paths
 * is one transaction batch rather than one per file. */
#include "indexer.h"

#include <dirent.h>
#include <errno.h>
#include <linux/ioprio.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "roots.h"
#include "search.h"
#include "util.h"

enum op_kind {
        OP_SYNC_PATHS,
        OP_SYNC_DIR,
        OP_DROP_TREE,
        OP_MOVE,
        OP_RECONCILE,
        OP_SET_RULES,
        OP_SET_KEPT,
        OP_SET_UNMOUNTED,
        OP_BARRIER,
};

struct op {
        struct op *next;
        enum op_kind kind;
        char *ns;
        char **paths; /* SYNC_PATHS: the paths; RECONCILE: roots; MOVE: old, new; SET_KEPT: dirs */
        char **namespaces; /* RECONCILE, SET_KEPT: that of each path */
        size_t n_paths;
        bool is_dir; /* MOVE */
        char *root; /* SYNC_DIR, MOVE: the root the paths are below */
        struct scan_rules rules; /* SET_RULES */
        uint64_t barrier_seq; /* BARRIER */
        /* CLOCK_MONOTONIC µs: when the oldest change this operation
         * carries was seen (for a settled path, its first event). */
        uint64_t since_usec;
};

struct indexer {
        uv_loop_t *loop;
        uv_async_t async;
        pthread_t thread;
        struct store *store; /* NULL after the database file went away, until it opens again */
        char *db_path;       /* owned */
        struct document_options doc;
        struct scan_rules rules;
        /* The configuration file the roots came from, recorded with them
         * (roots.h); NULL: DIR arguments. */
        char *roots_config;
        /* Thread only: indexer_set_kept()'s directories, grouped by
         * namespace (kept_namespaces[i] is that of kept_dirs[i]). */
        char **kept_dirs, **kept_namespaces;
        size_t n_kept;
        indexer_report_cb report_cb;
        void *userdata;

        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct op *head, **tail;
        struct op *last; /* the op tail points past, or NULL */
        size_t n_queued;
        size_t n_batch_left; /* operations the thread took and has not finished */
        bool is_stopping;
        atomic_bool stop_requested; /* read by sync_run between batches */
        atomic_bool is_busy;
        atomic_uint_fast64_t n_progress; /* see indexer_progress() */
        uint64_t counted_at_usec; /* thread only: when n_files/n_chunks were last read */
        unsigned stall_ms;        /* QUIRE_TEST_STALL_INDEXER: test-only */
        bool has_run;             /* thread only */
        bool is_idle_priority;    /* SCHED_IDLE and the idle I/O class for the thread */
        /* indexer_boost() lifted it until the next batch. Under
         * priority_lock with the raise and the lowering themselves: a
         * batch starting between the flag and the raise would otherwise
         * clear the flag first and be raised after, for good. */
        pthread_mutex_t priority_lock;
        bool is_boosted;
        /* Under lock: since_usec of the operation the thread runs, 0
         * between batches (see indexer_oldest_pending_usec). */
        uint64_t running_since_usec;

        /* Filled by the thread, drained by the loop; under lock. */
        struct indexer_report pending;
        char *pending_last_path;
        bool has_pending;
};

static int strv_copy(char *const *v, size_t n, char ***ret) {
        char **c = calloc(n + 1, sizeof *c);
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(v[i]))) {
                        strv_free(c, i);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

static int rules_copy(const struct scan_rules *from, struct scan_rules *to) {
        *to = (struct scan_rules){ .n_extensions = from->n_extensions, .n_ignore_globs = from->n_ignore_globs };
        if (strv_copy(from->extensions, from->n_extensions, &to->extensions) < 0 ||
            strv_copy(from->ignore_globs, from->n_ignore_globs, &to->ignore_globs) < 0) {
                scan_rules_done(to);
                return -ENOMEM;
        }
        return 0;
}

static void op_free(struct op *op) {
        free(op->ns);
        free(op->root);
        strv_free(op->paths, op->n_paths);
        strv_free(op->namespaces, op->n_paths);
        scan_rules_done(&op->rules);
        free(op);
}

/* Operations that change what later ones do, and touch no file. */
static bool is_setting(const struct op *op) {
        return op->kind == OP_SET_RULES || op->kind == OP_SET_KEPT || op->kind == OP_SET_UNMOUNTED ||
               op->kind == OP_BARRIER;
}

/* Operations that write the database: all but the indexer's own state.
 * The store may be closed (the file was removed, -ESTALE) and is opened
 * again by the first of them. */
static bool needs_store(const struct op *op) {
        return op->kind != OP_SET_RULES && op->kind != OP_SET_KEPT && op->kind != OP_BARRIER;
}

static void kept_done(struct indexer *ix) {
        strv_free(ix->kept_dirs, ix->n_kept);
        strv_free(ix->kept_namespaces, ix->n_kept);
        ix->kept_dirs = ix->kept_namespaces = NULL;
        ix->n_kept = 0;
}

static bool is_same_dir_sync(const struct op *a, const struct op *b) {
        return a && b && a->kind == OP_SYNC_DIR && b->kind == OP_SYNC_DIR && strcmp(a->ns, b->ns) == 0 &&
               strcmp(a->root, b->root) == 0 && strcmp(a->paths[0], b->paths[0]) == 0;
}

static int enqueue(struct indexer *ix, struct op *op) {
        if (!op->since_usec)
                op->since_usec = now_monotonic_usec();
        pthread_mutex_lock(&ix->lock);
        if (ix->is_stopping) {
                pthread_mutex_unlock(&ix->lock);
                op_free(op);
                return -ESHUTDOWN;
        }
        /* A directory synced twice in a row, with nothing in between, is
         * one walk: the events of one save of a .quireignore. */
        if (ix->head && is_same_dir_sync(ix->last, op)) {
                pthread_mutex_unlock(&ix->lock);
                op_free(op);
                return 0;
        }
        *ix->tail = op;
        ix->tail = &op->next;
        ix->last = op;
        ix->n_queued++;
        pthread_cond_signal(&ix->wake);
        pthread_mutex_unlock(&ix->lock);
        return 0;
}

static struct op *op_new(enum op_kind kind, const char *ns, const char *root) {
        struct op *op = calloc(1, sizeof *op);
        if (!op)
                return NULL;
        op->kind = kind;
        if ((ns && !(op->ns = strdup(ns))) || (root && !(op->root = strdup(root)))) {
                op_free(op);
                return NULL;
        }
        return op;
}

int indexer_sync_paths(struct indexer *ix, const char *ns, char **paths, size_t n_paths, uint64_t since_usec) {
        struct op *op = op_new(OP_SYNC_PATHS, ns, NULL);
        if (!op) {
                strv_free(paths, n_paths);
                return -ENOMEM;
        }
        op->paths = paths;
        op->n_paths = n_paths;
        op->since_usec = since_usec;
        return enqueue(ix, op);
}

int indexer_barrier(struct indexer *ix, uint64_t seq) {
        struct op *op = op_new(OP_BARRIER, NULL, NULL);
        if (!op)
                return -ENOMEM;
        op->barrier_seq = seq;
        return enqueue(ix, op);
}

uint64_t indexer_oldest_pending_usec(struct indexer *ix) {
        pthread_mutex_lock(&ix->lock);
        uint64_t since = ix->running_since_usec;
        for (struct op *op = ix->head; !since && op; op = op->next)
                if (!is_setting(op))
                        since = op->since_usec;
        pthread_mutex_unlock(&ix->lock);
        return since;
}

static int enqueue_dir_op(struct indexer *ix, enum op_kind kind, const char *ns, const char *root,
                          const char *dir) {
        struct op *op = op_new(kind, ns, root);
        if (!op || strv_copy((char *const[]){ (char *) dir }, 1, &op->paths) < 0) {
                if (op)
                        op_free(op);
                return -ENOMEM;
        }
        op->n_paths = 1;
        return enqueue(ix, op);
}

int indexer_sync_dir(struct indexer *ix, const char *ns, const char *root, const char *dir) {
        return enqueue_dir_op(ix, OP_SYNC_DIR, ns, root, dir);
}

int indexer_drop_tree(struct indexer *ix, const char *ns, const char *dir, char *const *spare, size_t n_spare) {
        _cleanup_free_ char **all = calloc(n_spare + 1, sizeof *all);
        struct op *op = op_new(OP_DROP_TREE, ns, NULL);

        /* paths[0]: the tree; then what is spared in it. */
        if (all) {
                all[0] = (char *) dir;
                for (size_t i = 0; i < n_spare; i++)
                        all[i + 1] = spare[i];
        }
        if (!all || !op || strv_copy(all, n_spare + 1, &op->paths) < 0) {
                if (op)
                        op_free(op);
                return -ENOMEM;
        }
        op->n_paths = n_spare + 1;
        return enqueue(ix, op);
}

int indexer_move(struct indexer *ix, const char *ns, const char *root, const char *old_path, const char *new_path,
                 bool is_dir) {
        struct op *op = op_new(OP_MOVE, ns, root);
        if (!op || strv_copy((char *const[]){ (char *) old_path, (char *) new_path }, 2, &op->paths) < 0) {
                if (op)
                        op_free(op);
                return -ENOMEM;
        }
        op->n_paths = 2;
        op->is_dir = is_dir;
        return enqueue(ix, op);
}

static struct op *reconcile_op_new(const char *const *roots, const char *const *namespaces, size_t n_roots) {
        struct op *op = op_new(OP_RECONCILE, NULL, NULL);
        if (!op)
                return NULL;
        op->n_paths = n_roots;
        if (strv_copy((char *const *) roots, n_roots, &op->paths) < 0 ||
            strv_copy((char *const *) namespaces, n_roots, &op->namespaces) < 0) {
                op_free(op);
                return NULL;
        }
        return op;
}

int indexer_reconcile(struct indexer *ix, const char *const *roots, const char *const *namespaces, size_t n_roots) {
        struct op *op = reconcile_op_new(roots, namespaces, n_roots);
        return op ? enqueue(ix, op) : -ENOMEM;
}

size_t indexer_queue_waiting(struct indexer *ix) {
        pthread_mutex_lock(&ix->lock);
        size_t n = ix->n_queued;
        pthread_mutex_unlock(&ix->lock);
        return n;
}

/* Whether path, in namespace ns, lies at or below one of reconcile's roots. */
static bool reconcile_walks(const struct op *reconcile, const char *ns, const char *path) {
        for (size_t i = 0; i < reconcile->n_paths; i++) {
                const char *root = reconcile->paths[i];
                size_t n = strlen(root);

                if (strcmp(reconcile->namespaces[i], ns) == 0 && strncmp(path, root, n) == 0 &&
                    (path[n] == '\0' || path[n] == '/' || (n > 0 && root[n - 1] == '/')))
                        return true;
        }
        return false;
}

/* Whether the walk of reconcile does all that op would: not for paths
 * outside the roots it walks (a root that is gone, or no longer
 * configured), nor for a drop, which goes whatever is on disk. */
static bool reconcile_covers(const struct op *reconcile, const struct op *op) {
        switch (op->kind) {
        case OP_SYNC_PATHS:
        case OP_SYNC_DIR:
        case OP_MOVE:
                for (size_t i = 0; i < op->n_paths; i++)
                        if (!reconcile_walks(reconcile, op->ns, op->paths[i]))
                                return false;
                return true;
        case OP_RECONCILE:
                for (size_t i = 0; i < op->n_paths; i++)
                        if (!reconcile_walks(reconcile, op->namespaces[i], op->paths[i]))
                                return false;
                return true;
        default:
                return false;
        }
}

int indexer_reconcile_instead(struct indexer *ix, const char *const *roots, const char *const *namespaces,
                              size_t n_roots) {
        struct op *reconcile = reconcile_op_new(roots, namespaces, n_roots);
        struct op *kept = NULL, **kept_tail = &kept, *barriers = NULL, **barriers_tail = &barriers;
        size_t n_kept = 1;

        if (!reconcile)
                return -ENOMEM;
        pthread_mutex_lock(&ix->lock);
        if (ix->is_stopping) {
                pthread_mutex_unlock(&ix->lock);
                op_free(reconcile);
                return -ESHUTDOWN;
        }
        /* New rules still apply before the walk, and so does what the walk
         * does not cover; a barrier promises that what came before it has
         * committed, which is now the walk. The walk is as late as the
         * oldest change it stands for. */
        reconcile->since_usec = now_monotonic_usec();
        for (struct op *op = ix->head, *next; op; op = next) {
                next = op->next;
                op->next = NULL;
                if (op->kind == OP_BARRIER) {
                        *barriers_tail = op;
                        barriers_tail = &op->next;
                        n_kept++;
                } else if (!reconcile_covers(reconcile, op)) {
                        *kept_tail = op;
                        kept_tail = &op->next;
                        n_kept++;
                } else {
                        if (op->since_usec && op->since_usec < reconcile->since_usec)
                                reconcile->since_usec = op->since_usec;
                        op_free(op);
                }
        }
        *kept_tail = reconcile;
        reconcile->next = barriers;
        ix->head = kept;
        ix->tail = barriers ? barriers_tail : &reconcile->next;
        ix->last = NULL;
        for (struct op *op = ix->head; op; op = op->next)
                ix->last = op;
        ix->n_queued = n_kept;
        pthread_cond_signal(&ix->wake);
        pthread_mutex_unlock(&ix->lock);
        return 0;
}

int indexer_set_kept(struct indexer *ix, const char *const *dirs, const char *const *namespaces, size_t n) {
        struct op *op = op_new(OP_SET_KEPT, NULL, NULL);
        if (!op)
                return -ENOMEM;
        op->n_paths = n;
        if (strv_copy((char *const *) dirs, n, &op->paths) < 0 ||
            strv_copy((char *const *) namespaces, n, &op->namespaces) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        /* Grouped by namespace, so that options_for() hands each walk
         * its own as one run (a handful of roots: insertion sort). */
        for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0 && strcmp(op->namespaces[k - 1], op->namespaces[k]) > 0; k--) {
                        SWAP(op->namespaces[k - 1], op->namespaces[k]);
                        SWAP(op->paths[k - 1], op->paths[k]);
                }
        return enqueue(ix, op);
}

int indexer_set_unmounted(struct indexer *ix, char *const *paths, size_t n) {
        struct op *op = op_new(OP_SET_UNMOUNTED, NULL, NULL);
        if (!op || strv_copy(paths, n, &op->paths) < 0) {
                if (op)
                        op_free(op);
                return -ENOMEM;
        }
        op->n_paths = n;
        return enqueue(ix, op);
}

int indexer_set_rules(struct indexer *ix, const struct scan_rules *rules, const char *roots_config) {
        struct op *op = op_new(OP_SET_RULES, NULL, roots_config);
        if (!op)
                return -ENOMEM;
        if (rules_copy(rules, &op->rules) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        return enqueue(ix, op);
}

void indexer_progress(struct indexer *ix, bool *is_busy, uint64_t *n_progress) {
        *is_busy = atomic_load(&ix->is_busy);
        *n_progress = atomic_load(&ix->n_progress);
}

size_t indexer_queue_length(struct indexer *ix) {
        pthread_mutex_lock(&ix->lock);
        size_t n = ix->n_queued + ix->n_batch_left;
        pthread_mutex_unlock(&ix->lock);
        return n;
}

static void add_stats(struct sync_stats *a, const struct sync_stats *b) {
        const struct index_stats *x = &b->index;
        a->index.files_new += x->files_new;
        a->index.files_changed += x->files_changed;
        a->index.files_touched += x->files_touched;
        a->index.files_unchanged += x->files_unchanged;
        a->index.files_deleted += x->files_deleted;
        a->index.files_moved += x->files_moved;
        a->index.chunks_inserted += x->chunks_inserted;
        a->index.chunks_moved += x->chunks_moved;
        a->index.chunks_deleted += x->chunks_deleted;
        a->walk.hidden += b->walk.hidden;
        a->walk.editor_temp += b->walk.editor_temp;
        a->walk.ignored += b->walk.ignored;
        a->walk.not_markdown += b->walk.not_markdown;
        a->walk.symlinks += b->walk.symlinks;
        a->walk.special += b->walk.special;
        a->walk.unreadable += b->walk.unreadable;
        a->walk.bad_names += b->walk.bad_names;
        a->binary += b->binary;
        a->too_large += b->too_large;
        a->not_regular += b->not_regular;
        a->unreadable += b->unreadable;
        a->n_unchanged_by_stat += b->n_unchanged_by_stat;
        a->n_read += b->n_read;
}

/* Hand what was done to the loop thread; several reports between two
 * loop iterations merge into one. */
static void report(struct indexer *ix, const struct sync_stats *stats, unsigned n_ops, bool was_reconcile,
                   const char *last_path, int error, uint64_t barrier_done) {
        int64_t n_files = 0, n_chunks = 0;
        bool has_counts = false;
        uint64_t now = now_monotonic_usec();

        /* Counts for STATUS=: two index scans, cheap but not free, so
         * under a burst of changes at most once a second, and always when
         * the queue has run dry (the figure the status then keeps showing
         * must be the final one). */
        pthread_mutex_lock(&ix->lock);
        bool is_drained = ix->head == NULL;
        pthread_mutex_unlock(&ix->lock);
        if (ix->store && n_ops > 0 && (now - ix->counted_at_usec >= 1000000 || was_reconcile || is_drained)) {
                has_counts = store_count(ix->store, &n_files, &n_chunks) == 0;
                ix->counted_at_usec = now;
        }
        atomic_fetch_add(&ix->n_progress, 1);
        pthread_mutex_lock(&ix->lock);
        if (has_counts) {
                ix->pending.has_counts = true;
                ix->pending.n_files = n_files;
                ix->pending.n_chunks = n_chunks;
        }
        add_stats(&ix->pending.stats, stats);
        ix->pending.n_ops += n_ops;
        ix->pending.was_reconcile |= was_reconcile;
        if (barrier_done > ix->pending.barrier_done)
                ix->pending.barrier_done = barrier_done;
        ix->pending.queue_length = ix->n_queued + ix->n_batch_left;
        if (error < 0)
                ix->pending.error = error;
        if (last_path) {
                free(ix->pending_last_path);
                ix->pending_last_path = strdup(last_path);
        }
        ix->has_pending = true;
        pthread_mutex_unlock(&ix->lock);
        uv_async_send(&ix->async);
}

static void async_cb(uv_async_t *a) {
        struct indexer *ix = a->data;
        struct indexer_report r;
        char *last_path;

        pthread_mutex_lock(&ix->lock);
        if (!ix->has_pending) {
                pthread_mutex_unlock(&ix->lock);
                return;
        }
        r = ix->pending;
        last_path = ix->pending_last_path;
        ix->pending = (struct indexer_report){ 0 };
        ix->pending_last_path = NULL;
        ix->has_pending = false;
        pthread_mutex_unlock(&ix->lock);

        r.last_path = last_path;
        ix->report_cb(&r, ix->userdata);
        free(last_path);
}

/* sync_run calls this after each commit: the watchdog sees progress
 * inside a long reconcile. */
static void on_progress(size_t n_done, size_t n_known, bool is_total, void *userdata) {
        struct indexer *ix = userdata;
        atomic_fetch_add(&ix->n_progress, 1);
}

static struct sync_options options_for(struct indexer *ix, const char *ns) {
        size_t first = 0, n = 0;

        while (first < ix->n_kept && strcmp(ix->kept_namespaces[first], ns) != 0)
                first++;
        while (first + n < ix->n_kept && strcmp(ix->kept_namespaces[first + n], ns) == 0)
                n++;
        return (struct sync_options){
                .namespace = ns,
                .doc = ix->doc,
                .rules = &ix->rules,
                .kept_dirs = n > 0 ? ix->kept_dirs + first : NULL,
                .n_kept_dirs = n,
                .cancel = &ix->stop_requested,
                .progress_cb = on_progress,
                .userdata = ix,
        };
}

/* Test-only: a wedged indexer, to prove the watchdog notices. */
static void stall_for_test(struct indexer *ix) {
        for (unsigned waited = 0; waited < ix->stall_ms && !atomic_load(&ix->stop_requested); waited += 50)
                nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
}

/* A directory event: walk it (as part of root's tree) if it is there,
 * drop its rows if not. */
static int run_sync_dir(struct indexer *ix, const char *ns, const char *root, const char *dir,
                        struct sync_stats *stats) {
        struct sync_options opts = options_for(ix, ns);
        struct stat st;

        opts.root = root;
        if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
                int r = sync_run(ix->store, &opts, (char *const[]){ (char *) dir }, 1, NULL, 0, stats);
                /* Gone between the lstat and the walk: as if gone before. */
                if (r != -ENOENT && r != -ENOTDIR)
                        return r;
        }
        return store_delete_tree(ix->store, ns, dir, NULL, 0, &stats->index);
}

/* Another writer committed while the thread waits for its lock: the
 * wait is getting somewhere (a 'quire index' of a large tree holds the
 * lock batch after batch), so the watchdog must not take it for a hang. */
static void on_other_commit(void *userdata) {
        struct indexer *ix = userdata;
        atomic_fetch_add(&ix->n_progress, 1);
}

/* A stop does not wait for another writer's lock; a wait that others'
 * commits move along counts as progress. */
static void attach_store(struct indexer *ix, struct store *store) {
        store_set_cancel(store, &ix->stop_requested);
        store_set_wait_progress(store, on_other_commit, ix);
}

static void detach_store(struct store *store) {
        store_set_cancel(store, NULL);
        store_set_wait_progress(store, NULL, NULL);
}

/* The store, opened again if the database file was removed or replaced
 * under the old connection (store_transact said -ESTALE): a new database
 * where it was removed, a one-line refusal where something foreign is. */
static int ensure_store(struct indexer *ix) {
        if (ix->store)
                return 0;
        int r = store_open(ix->db_path, NULL, &ix->store);
        if (r == 0) {
                attach_store(ix, ix->store);
                log_info("Opened %s again", ix->db_path);
        }
        return r;
}

static int cmp_path(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Run ops in order; consecutive path syncs of one namespace go as one. */
static void run_ops(struct indexer *ix, struct op *ops) {
        while (ops) {
                if (atomic_load(&ix->stop_requested)) {
                        struct op *next = ops->next;
                        op_free(ops);
                        ops = next;
                        continue;
                }
                struct sync_stats stats = { 0 };
                struct op *op = ops;
                const char *last_path = NULL;
                unsigned n_ops = 1;
                bool was_reconcile = op->kind == OP_RECONCILE;
                uint64_t barrier_done = 0;
                int r = needs_store(op) ? ensure_store(ix) : 0;

                if (!is_setting(op)) {
                        pthread_mutex_lock(&ix->lock);
                        ix->running_since_usec = op->since_usec;
                        pthread_mutex_unlock(&ix->lock);
                }
                switch (r < 0 ? -1 : (int) op->kind) {
                case OP_SYNC_PATHS: {
                        /* Gather the run of path syncs for this namespace. */
                        size_t n = 0;
                        struct op *end = op;
                        for (; end && end->kind == OP_SYNC_PATHS && strcmp(end->ns, op->ns) == 0; end = end->next)
                                n += end->n_paths;
                        char **all = calloc(n + 1, sizeof *all);
                        if (!all) {
                                r = -ENOMEM;
                                break;
                        }
                        size_t k = 0;
                        n_ops = 0;
                        for (struct op *o = op; o != end; o = o->next, n_ops++)
                                for (size_t i = 0; i < o->n_paths; i++)
                                        all[k++] = o->paths[i];
                        /* The latest path, from the last op: freed after the report. */
                        last_path = n > 0 ? all[n - 1] : NULL;
                        /* A note saved again and again while a slow batch ran
                         * is in many of these ops: read it once, not once per
                         * op (the last read sees the last save anyway). */
                        if (n > 1) {
                                qsort(all, n, sizeof *all, cmp_path);
                                size_t u = 1;
                                for (size_t i = 1; i < n; i++)
                                        if (strcmp(all[i], all[u - 1]) != 0)
                                                all[u++] = all[i];
                                n = u;
                        }
                        struct sync_options opts = options_for(ix, op->ns);
                        r = sync_run(ix->store, &opts, NULL, 0, all, n, &stats);
                        if (r == 0 && n == 1)
                                log_debug("Indexed %s (%u read)", all[0], stats.n_read);
                        free(all);
                        /* Free the merged ops here; the last one below. */
                        while (ops->next != end) {
                                struct op *next = ops->next;
                                ops->next = NULL;
                                op_free(ops);
                                ops = next;
                        }
                        op = ops;
                        break;
                }
                case OP_SYNC_DIR:
                        r = run_sync_dir(ix, op->ns, op->root, op->paths[0], &stats);
                        break;
                case OP_DROP_TREE:
                        r = store_delete_tree(ix->store, op->ns, op->paths[0], op->paths + 1, op->n_paths - 1,
                                              &stats.index);
                        /* Or `quire search --sync` would walk it back in. */
                        if (r == 0)
                                r = store_forget_root(ix->store, op->ns, op->paths[0]);
                        break;
                case OP_SET_UNMOUNTED:
                        r = store_set_unmounted(ix->store, op->paths, op->n_paths);
                        break;
                case OP_MOVE:
                        /* Rows only, for a file: the loop has the new path
                         * settle like any change (a stat when the rename kept
                         * size and mtime, a diff keeping ids when the note
                         * was also rewritten). Reading it now could catch an
                         * editor's rewrite half done. A directory's notes are
                         * walked at once, to find what the rename missed. */
                        r = store_move(ix->store, op->ns, op->paths[0], op->paths[1], op->is_dir, &stats.index);
                        if (r == 0 && op->is_dir)
                                r = run_sync_dir(ix, op->ns, op->root, op->paths[1], &stats);
                        last_path = op->paths[1];
                        break;
                case OP_RECONCILE: {
                        /* Recorded with the roots: --sync without quired
                         * walks them under the same rules. */
                        _cleanup_free_ char *rules = NULL;
                        r = root_rules_format(&ix->rules, ix->doc.max_file_bytes, &rules);
                        for (size_t i = 0; r == 0 && i < op->n_paths; i++) {
                                struct sync_stats root_stats = { 0 };
                                r = run_sync_dir(ix, op->namespaces[i], op->paths[i], op->paths[i], &root_stats);
                                /* For `quire search --sync` when no daemon runs. */
                                if (r == 0)
                                        r = store_add_root(ix->store, op->namespaces[i], op->paths[i], true,
                                                           ix->roots_config, rules);
                                if (r == 0)
                                        log_info("Reconciled %s: %u files checked, %u read, %u new, %u changed, "
                                                 "%u removed",
                                                 op->paths[i],
                                                 root_stats.n_unchanged_by_stat + root_stats.n_read,
                                                 root_stats.n_read, root_stats.index.files_new,
                                                 root_stats.index.files_changed, root_stats.index.files_deleted);
                                add_stats(&stats, &root_stats);
                        }
                        was_reconcile = true;
                        /* A reconcile may have read the whole tree: hand the
                         * pages and buffers back, the steady state is small
                         * (reader threads leave their malloc arenas full of
                         * free blocks otherwise). */
                        store_release_memory(ix->store);
                        malloc_trim(0);
                        break;
                }
                default: /* no database to write to */
                        break;
                case OP_SET_RULES:
                        scan_rules_done(&ix->rules);
                        ix->rules = op->rules;
                        op->rules = (struct scan_rules){ 0 };
                        free(ix->roots_config);
                        ix->roots_config = TAKE_PTR(op->root);
                        break;
                case OP_SET_KEPT:
                        kept_done(ix);
                        ix->kept_dirs = TAKE_PTR(op->paths);
                        ix->kept_namespaces = TAKE_PTR(op->namespaces);
                        ix->n_kept = op->n_paths;
                        op->n_paths = 0;
                        break;
                case OP_BARRIER:
                        /* Everything queued before it has committed. */
                        barrier_done = op->barrier_seq;
                        n_ops = 0;
                        break;
                }
                if (r == -ECANCELED)
                        r = 0; /* stopping: the last batch committed */
                /* Closing checkpoints into the old file, wherever it went, so
                 * it stays whole; the next operation opens the path again. */
                if (r == -ESTALE)
                        ix->store = store_close(ix->store);
                pthread_mutex_lock(&ix->lock);
                size_t n_consumed = op->kind == OP_SYNC_PATHS && n_ops > 0 ? n_ops : 1;
                ix->n_batch_left -= n_consumed < ix->n_batch_left ? n_consumed : ix->n_batch_left;
                pthread_mutex_unlock(&ix->lock);
                report(ix, &stats, n_ops, was_reconcile, last_path, r, barrier_done);

                ops = op->next;
                op_free(op);
        }
}

/* A background citizen: the indexer (and the planner and reader threads
 * sync_run() starts from it, which inherit both settings) runs only on
 * CPU time and disk time nobody else wants, while the loop thread keeps
 * its normal priority and so keeps reading events. Per thread: Linux
 * applies sched_setscheduler(2) and ioprio_set(2) with who = 0 to the
 * calling thread only. Failing (a seccomp filter, a kernel without the
 * call) costs a warning, not the daemon. */
static void set_background_priority(void) {
        struct sched_param param = { .sched_priority = 0 };
        int r;

        r = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
        if (r != 0)
                log_warning_errno(-r, "Failed to set the indexer thread's CPU policy to SCHED_IDLE, "
                                      "keeping the normal one: %m");
        if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)) < 0)
                log_warning_errno(errno, "Failed to set the indexer thread's I/O class to idle, "
                                         "keeping the normal one: %m");
}

/* The daemon's own scheduling, read from the main thread (pid = its
 * tid), put on one thread of ours. */
static void set_normal_priority(pid_t tid) {
        struct sched_param param = { .sched_priority = 0 };
        int policy = sched_getscheduler(getpid());
        long ioprio = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, getpid());

        if (policy < 0 || sched_getparam(getpid(), &param) < 0)
                policy = SCHED_OTHER;
        if (sched_setscheduler(tid, policy, &param) < 0)
                log_debug_errno(errno, "Failed to raise the CPU policy of thread %d: %m", (int) tid);
        if (ioprio < 0 || syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, (int) ioprio) < 0)
                log_debug_errno(errno, "Failed to raise the I/O class of thread %d: %m", (int) tid);
}

bool indexer_boost(struct indexer *ix) {
        if (!ix->is_idle_priority)
                return false;
        pthread_mutex_lock(&ix->priority_lock);
        if (ix->is_boosted) {
                pthread_mutex_unlock(&ix->priority_lock);
                return false;
        }
        ix->is_boosted = true;
        /* The indexer and whatever sync_run() started from it, found by
         * the names they give themselves. */
        DIR *dp = opendir("/proc/self/task");
        struct dirent *de;
        while (dp && (de = readdir(dp))) {
                char path[64], name[32] = "";
                pid_t tid = (pid_t) atoi(de->d_name);
                if (tid <= 0)
                        continue;
                snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int) tid);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue; /* ended meanwhile */
                if (fgets(name, sizeof name, f))
                        name[strcspn(name, "\n")] = '\0';
                fclose(f);
                if (strcmp(name, "quired-indexer") == 0 || strcmp(name, "quire-reader") == 0 ||
                    strcmp(name, "quire-planner") == 0)
                        set_normal_priority(tid);
        }
        if (dp)
                closedir(dp);
        pthread_mutex_unlock(&ix->priority_lock);
        return true;
}

static void *indexer_thread(void *userdata) {
        struct indexer *ix = userdata;

        (void) pthread_setname_np(pthread_self(), "quired-indexer");
        if (ix->is_idle_priority)
                set_background_priority();
        pthread_mutex_lock(&ix->lock);
        for (;;) {
                while (!ix->head && !ix->is_stopping)
                        pthread_cond_wait(&ix->wake, &ix->lock);
                if (ix->is_stopping)
                        break;
                struct op *ops = ix->head;
                ix->head = NULL;
                ix->tail = &ix->head;
                ix->last = NULL;
                ix->n_batch_left = ix->n_queued;
                ix->n_queued = 0;
                /* The oldest change of the batch is pending until it runs. */
                ix->running_since_usec = 0;
                bool has_work = false;
                for (struct op *op = ops; op; op = op->next)
                        if (!is_setting(op)) {
                                has_work = true;
                                if (!ix->running_since_usec || op->since_usec < ix->running_since_usec)
                                        ix->running_since_usec = op->since_usec;
                        }
                atomic_store(&ix->is_busy, true);
                pthread_mutex_unlock(&ix->lock);
                /* Lifted while starved (indexer_boost): the last batch has
                 * ended, so back to the background. */
                pthread_mutex_lock(&ix->priority_lock);
                if (ix->is_boosted)
                        set_background_priority();
                ix->is_boosted = false;
                pthread_mutex_unlock(&ix->priority_lock);
                /* The first operations (the startup reconcile, and the
                 * settings queued before it) run, so the daemon gets
                 * ready; the next ones stall. */
                if (ix->stall_ms && ix->has_run)
                        stall_for_test(ix);
                run_ops(ix, ops);
                ix->has_run = ix->has_run || has_work;
                pthread_mutex_lock(&ix->lock);
                ix->running_since_usec = 0;
                ix->n_batch_left = 0;
                atomic_store(&ix->is_busy, ix->head != NULL);
        }
        pthread_mutex_unlock(&ix->lock);
        return NULL;
}

static void close_cb(uv_handle_t *h) {
        struct indexer *ix = h->data;
        free(ix->pending_last_path);
        free(ix->db_path);
        free(ix);
}

int indexer_start(uv_loop_t *loop, struct store *store, const struct document_options *doc,
                  const struct scan_rules *rules, const char *roots_config, bool is_idle_priority,
                  indexer_report_cb report_cb, void *userdata, struct indexer **ret) {
        struct indexer *ix = calloc(1, sizeof *ix);
        int r;

        if (!ix)
                return -ENOMEM;
        *ix = (struct indexer){
                .loop = loop,
                .store = store,
                .doc = *doc,
                .report_cb = report_cb,
                .userdata = userdata,
                .is_idle_priority = is_idle_priority,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .priority_lock = PTHREAD_MUTEX_INITIALIZER,
                .wake = PTHREAD_COND_INITIALIZER,
        };
        ix->tail = &ix->head;
        ix->last = NULL;
        /* Test-only: every batch after the first waits, for ever or for
         * QUIRE_TEST_STALL_INDEXER_MS. */
        const char *stall = getenv("QUIRE_TEST_STALL_INDEXER");
        const char *stall_ms = getenv("QUIRE_TEST_STALL_INDEXER_MS");
        if (stall && *stall)
                ix->stall_ms = 24u * 3600 * 1000;
        else if (stall_ms && atoi(stall_ms) > 0)
                ix->stall_ms = (unsigned) atoi(stall_ms);
        ix->db_path = strdup(store_path(store));
        ix->roots_config = roots_config ? strdup(roots_config) : NULL;
        if (!ix->db_path || (roots_config && !ix->roots_config) || rules_copy(rules, &ix->rules) < 0) {
                free(ix->roots_config);
                free(ix->db_path);
                free(ix);
                return -ENOMEM;
        }
        r = uv_async_init(loop, &ix->async, async_cb);
        if (r < 0) {
                scan_rules_done(&ix->rules);
                free(ix->roots_config);
                free(ix->db_path);
                free(ix);
                return r;
        }
        ix->async.data = ix;
        attach_store(ix, store);
        r = -pthread_create(&ix->thread, NULL, indexer_thread, ix);
        if (r < 0) {
                detach_store(store);
                scan_rules_done(&ix->rules);
                free(ix->roots_config);
                /* The loop holds the handle until it has closed it. */
                uv_close((uv_handle_t *) &ix->async, close_cb);
                return r;
        }
        *ret = ix;
        return 0;
}

void indexer_stop(struct indexer *ix) {
        if (!ix)
                return;
        atomic_store(&ix->stop_requested, true);
        pthread_mutex_lock(&ix->lock);
        ix->is_stopping = true;
        struct op *ops = ix->head;
        ix->head = NULL;
        ix->tail = &ix->head;
        ix->last = NULL;
        pthread_cond_signal(&ix->wake);
        pthread_mutex_unlock(&ix->lock);
        pthread_join(ix->thread, NULL);
        while (ops) {
                struct op *next = ops->next;
                op_free(ops);
                ops = next;
        }
        store_close(ix->store);
        scan_rules_done(&ix->rules);
        free(ix->roots_config);
        ix->roots_config = NULL;
        kept_done(ix);
        /* A report sent after the last loop iteration: deliver it now. */
        async_cb(&ix->async);
        uv_close((uv_handle_t *) &ix->async, close_cb);
}
