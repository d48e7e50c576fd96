/* The indexer thread: everything that touches file contents or SQLite
 * happens here, never on the loop thread. The loop queues operations in
 * event order; the thread runs them one after another through sync_run()
 * and store_move(), and reports back through a uv_async_t. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "scan.h"
#include "store.h"
#include "sync.h"

struct indexer;

/* What the indexer did since the last report; delivered on the loop thread. */
struct indexer_report {
        struct sync_stats stats;
        unsigned n_ops;
        size_t queue_length;   /* operations still waiting or in progress */
        bool was_reconcile;    /* a full reconcile finished in this report */
        const char *last_path; /* last file indexed, or NULL; valid during the callback */
        int error;             /* the last failure (negative errno), 0 if none */
        bool has_counts;       /* n_files and n_chunks were read (at most once a second) */
        int64_t n_files, n_chunks;
        uint64_t barrier_done; /* the highest indexer_barrier() seq reached, 0 if none */
};

typedef void (*indexer_report_cb)(const struct indexer_report *report, void *userdata);

/* Start the thread. It takes over store (closing it when stopped) and uses
 * doc and rules for every operation (copied). With is_idle_priority the
 * thread runs at SCHED_IDLE and in the idle I/O class. */
int indexer_start(uv_loop_t *loop, struct store *store, const struct document_options *doc,
                  const struct scan_rules *rules, const char *roots_config, bool is_idle_priority,
                  indexer_report_cb report_cb, void *userdata, struct indexer **ret);

/* Queue operations; all take copies of their strings except where noted. */
/* Takes paths; since_usec (CLOCK_MONOTONIC) is when the oldest of these
 * changes was seen, 0 for now. */
int indexer_sync_paths(struct indexer *ix, const char *ns, char **paths, size_t n_paths, uint64_t since_usec);
/* Walk dir, root or a directory below it, with root's rules (its globs and
 * the .quireignore files from root down); drop its rows if it is gone. */
int indexer_sync_dir(struct indexer *ix, const char *ns, const char *root, const char *dir);
/* Drop the rows of every note below dir, whatever is on disk (a root that
 * is no longer configured), and forget dir as a recorded root; the notes
 * at or below spare (roots still configured inside it) stay. */
int indexer_drop_tree(struct indexer *ix, const char *ns, const char *dir, char *const *spare, size_t n_spare);
int indexer_move(struct indexer *ix, const char *ns, const char *root, const char *old_path, const char *new_path,
                 bool is_dir);
/* A full reconcile of these roots (startup, overflow, reload). */
int indexer_reconcile(struct indexer *ix, const char *const *roots, const char *const *namespaces, size_t n_roots);
/* For later operations: the notes at or below dirs[i] (in namespaces[i])
 * stay whatever a walk finds there (sync_options.kept_dirs): the roots
 * missing with their notes kept. Replaces the set given before. */
int indexer_set_kept(struct indexer *ix, const char *const *dirs, const char *const *namespaces, size_t n);
/* Record the folders below the roots whose filesystem was unmounted
 * (struct daemon), so that a restart keeps their notes too. */
int indexer_set_unmounted(struct indexer *ix, char *const *paths, size_t n);
/* Replace the rules for later operations (reload), and the configuration
 * file the roots come from (NULL: DIR arguments). */
int indexer_set_rules(struct indexer *ix, const struct scan_rules *rules, const char *roots_config);

/* A marker in the queue: once every operation queued before it has
 * committed, a report carries barrier_done >= seq (seqs must grow). */
int indexer_barrier(struct indexer *ix, uint64_t seq);

/* Operations waiting or in progress. */
size_t indexer_queue_length(struct indexer *ix);
/* Operations waiting, not yet taken by the thread. */
size_t indexer_queue_waiting(struct indexer *ix);
/* What waits is dropped for one reconcile of these roots, which finds
 * the same changes by walking (a rename storm: the queue stays bounded,
 * at the cost of the ids of moved chunks). Rule changes, barriers and
 * what the walk does not cover stay (a drop, paths outside these roots:
 * a root gone or no longer configured), the barriers after the reconcile. */
int indexer_reconcile_instead(struct indexer *ix, const char *const *roots, const char *const *namespaces,
                              size_t n_roots);

/* CLOCK_MONOTONIC µs at which the oldest change still waiting for (or
 * being worked on by) the thread was seen, 0 when none is: for how long
 * the index has lagged. */
uint64_t indexer_oldest_pending_usec(struct indexer *ix);

/* For the watchdog: whether the thread is working on something, and a
 * counter that grows with every batch it commits and with every commit of
 * another writer whose lock it waits for. A thread that is busy and has
 * not moved the counter since the last look is stuck. */
void indexer_progress(struct indexer *ix, bool *is_busy, uint64_t *n_progress);

/* For the watchdog: an indexer at idle priority that makes no progress
 * may be starved rather than wedged (others keep the CPU or the disk
 * busy). This gives it, and the threads it started, the daemon's own
 * I/O class and CPU policy until its next batch begins (the CPU policy
 * only where allowed: leaving SCHED_IDLE takes CAP_SYS_NICE or an
 * RLIMIT_NICE above 20 - nice, sched(7)). Returns false when there is
 * nothing to lift (normal priority, or lifted already). */
bool indexer_boost(struct indexer *ix);

/* Finish the operation in progress (its transaction commits), drop the
 * rest, join the thread, close the store and the async handle. The
 * indexer is freed once the loop has run the close callback. */
void indexer_stop(struct indexer *ix);
