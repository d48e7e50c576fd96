/* The daemon's state, shared by the parts of quired, all on the loop
 * thread: main.c starts, reloads and stops it; trees.c watches the
 * directories below the roots and queues their walks; events.c says what
 * a watch event means for the index; presence.c follows roots that go
 * missing, come back or are restored, and the mounts under them;
 * progress.c tells systemd and `quire status` how far the index is, and
 * answers the indexer's reports. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "mounts.h"
#include "scan.h"

struct cookie_table;
struct daemon_state_file;
struct debounce;
struct ignore_cache;
struct indexer;
struct indexer_report;
struct search_server;
struct store;
struct watch_event;
struct watcher;

/* Past this many waiting paths, a full reconcile is cheaper than the detail. */
#define DEBOUNCE_MAX_PATHS 65536

struct root {
        char *path; /* realpath; NULL while the root is missing */
        const char *configured; /* as configured, borrowed from cfg */
        const char *namespace;  /* borrowed from cfg */
        /* The directory watched as the root, while it is present: its
         * path can come to name another one (or none) without an event
         * that says so (an unmount, a move lost in a queue overflow). */
        dev_t dev;
        ino_t ino;
        /* Its notes stay whatever a walk finds (the indexer's kept set):
         * missing with them kept (not mounted, or not found at start),
         * not gone, or being restored. */
        bool keeps_notes;
        /* Found again with its notes kept: they stay until nothing has
         * happened below it for RESTORE_QUIET_MS (a tree copied back in
         * is walked while the copy goes on), then a walk has the word. */
        bool is_restoring;
        uint64_t last_event_usec; /* while restoring: its last event */
};

/* The directory an unmount left at a root's path (the mount point's own,
 * usually empty): finding it there is not the root coming back, or its
 * notes would leave the index as if deleted (docs/ROOTS.md). Kept until
 * the root is found again, across reloads (by the configured path). */
struct left_behind {
        char *configured; /* owned */
        dev_t dev;
        ino_t ino;
};

struct daemon {
        uv_loop_t *loop;
        struct config cfg;
        struct scan_rules rules; /* arrays borrowed from cfg */
        struct ignore_cache *ignores; /* the .quireignore files, by directory */
        struct root *roots;
        size_t n_roots;
        struct watcher *watcher;
        struct debounce *debounce;
        struct indexer *indexer;
        struct search_server *search_server; /* NULL: searches run in-process */
        uv_signal_t sigterm, sigint, sighup;
        uv_timer_t rescan_timer;
        uv_timer_t restore_timer; /* one-shot: the end of a root's restoring */
        unsigned restore_quiet_ms; /* RESTORE_QUIET_MS, or a test's */
        /* /proc/self/mountinfo, polled for changes to the mount table
         * (Linux): an unmount inotify does not report (a bind mount), and
         * a drive mounted at a root's path, are seen when they happen. */
        uv_poll_t mounts_poll;
        int mounts_fd; /* -1: not polled */
        struct mount_table mounts; /* as of the last look, to tell what changed */
        bool has_sent_kept_notes; /* send_kept_notes() has told the indexer of some */
        uv_timer_t retry_timer; /* one-shot: the reconcile after a failed operation */
        char **unwatched; /* directories the watch limit kept us from watching */
        size_t n_unwatched;
        struct left_behind *left_behind;
        size_t n_left_behind;
        /* Folders below a root (not a root's own path: that root is then
         * missing) whose filesystem was unmounted: the folder uncovered is
         * empty, or holds what was under the mount, and a walk would take
         * the filesystem's notes for deleted. They stay, in the kept set,
         * until a filesystem is mounted there again or the folder goes.
         * Seen in the mount table (Linux); recorded in the database, so
         * that they stay kept across a restart (restore_unmounted_below()). */
        char **unmounted_below;
        size_t n_unmounted_below;
        char **unmounted_recorded; /* what the database holds of them, as last sent */
        size_t n_unmounted_recorded;
        /* An operation failed since they were last sent, maybe the one
         * that carried them: the retry sends them again. */
        bool is_unmounted_record_unsure;
        /* restore_unmounted_below() read the record: without it, an
         * empty set sent again would erase what it could not read. */
        bool has_read_unmounted_record;
        /* Where a root's configured path can change under it with no event
         * on the root (watch_ancestors()): the symlinks on the way, and a
         * missing root's first missing part; watched for WATCH_AWAITED. */
        char **awaited;
        size_t n_awaited;
        char *db_path; /* as opened at start */
        bool is_ready;
        /* After a reload: READY=1 waits for this barrier, queued behind the
         * reload's reconcile (an earlier reconcile may end first); 0: the
         * next reconcile to end will do (the first one at start). */
        uint64_t ready_barrier;
        bool has_logged_watch_limit;
        /* Seconds until the reconcile that makes up for a failed operation (a
         * lock held too long, a full disk, a database that is not there):
         * 0 while nothing failed; doubles while the retries fail too, up
         * to rescan_interval_s, so a lasting fault costs a line and a walk
         * now and then, never a busy loop. */
        unsigned retry_s;
        /* While retry_s > 0: the last failure's error, and since when
         * (CLOCK_REALTIME µs) indexing has failed; `quire status` says so.
         * 0 otherwise (set and cleared with retry_s, in on_report()). */
        int failing_error;
        uint64_t failing_since_usec;
        bool is_stopping;
        int argc; /* kept for a reload, which parses them again */
        char **argv;

        struct daemon_state_file *state_file;
        int stop_error; /* what run() returns once the loop ends: 0, or -errno */
        const char *state; /* "starting", "reconciling", "watching", "reloading", "stopping" */
        uint64_t state_written_usec;
        uv_timer_t watchdog_timer, extend_timer, status_timer, pending_timer;
        uv_timer_t state_timer; /* armed while a state file write is held back */
        /* A root lost while quired runs is looked for after 1 s, then
         * after twice as long each time, until the rescan's interval: a
         * vault cloned again where it was (rm -rf; git clone) is found at
         * once, a drive away for days costs a wakeup per rescan. */
        uv_timer_t look_for_timer;
        unsigned look_for_s;
        uint64_t watchdog_usec;
        uint64_t progress_at_last_ping;
        bool has_logged_stall;
        int64_t n_files, n_chunks;
        char *last_path;
        size_t queue_length;

        /* For quire status and quire search --sync (cookies.h). */
        struct cookie_table *cookies;
        uint64_t barrier_seq;
        uint64_t n_overflows;
        size_t max_waiting; /* INDEXER_MAX_WAITING, or QUIRE_TEST_MAX_QUEUE */
        uint64_t last_reconcile_usec; /* CLOCK_REALTIME */
        bool has_written_pending;     /* the state file last said a change waits */
};

/* trees.c */
struct root *find_root_except(struct daemon *d, const char *path, const struct root *except, const char **rel);
struct root *find_root(struct daemon *d, const char *path, const char **rel);
enum scan_verdict classify(struct daemon *d, const struct root *root, const char *rel, bool is_dir);
void forget_ignores(struct daemon *d, const char *path);
void watch_tree(struct daemon *d, struct root *root, const char *dir, bool is_pruning);
void reconcile_all(struct daemon *d);
bool reconcile_if_flooded(struct daemon *d);
bool is_other_namespace_holder(const struct daemon *d, const struct root *root, const char *ns, const char *path);
int queue_sync_dir(struct daemon *d, const char *ns, const char *root, const char *dir);
int sync_paths_elsewhere(struct daemon *d, const char *ns, char *const *paths, size_t n_paths, uint64_t since_usec);
void adopt_dir(struct daemon *d, struct root *root, const char *dir);
void mark_path(struct daemon *d, struct root *root, const char *path);
void arm_rescan(struct daemon *d);
void watch_all_roots(struct daemon *d);
#ifdef __linux__
long inotify_instances_limit(long *ret_suggested);
#endif

/* events.c: the watcher's and the debounce's callbacks. */
void on_watch_event(const struct watch_event *ev, void *userdata);
void on_settled(size_t root, char **paths, size_t n_paths, uint64_t oldest_ms, void *userdata);
void on_debounce_overflow(void *userdata);

/* presence.c */
bool path_is_at_or_below(const char *path, const char *dir);
void watch_ancestors(struct daemon *d);
bool is_about_awaited(const struct daemon *d, const struct watch_event *ev);
void follow_root_paths(struct daemon *d);
bool root_is_in_place(const struct root *root);
void lose_root(struct daemon *d, struct root *root, bool is_unmounted);
bool dev_is_mounted(dev_t dev);
void note_restoring_event(struct daemon *d, const struct watch_event *ev);
void forget_unmounted_below(struct daemon *d, const char *dir);
bool look_for_missing_roots(struct daemon *d);
void relocate_root(struct daemon *d, struct root *root);
void watch_mounts(struct daemon *d);
void roots_free(struct daemon *d);
int roots_from_config(struct daemon *d, char *const *present, size_t n_present, char *const *restoring,
                      size_t n_restoring, char *const *gone, size_t n_gone);
void drop_missing_root_if_unconfigured(struct daemon *d, const struct config *next, const struct root *old);
/* At start, from a reader of the database (NULL: it cannot be read, and
 * nothing is done): the roots the configuration file lost while quired
 * was stopped, and the folders still unmounted below the roots. */
void drop_unconfigured_roots(struct daemon *d, struct store *recorded);
void restore_unmounted_below(struct daemon *d, struct store *recorded);
void record_unmounted(struct daemon *d);
/* Drop the notes of ns below dir, a folder no longer a root, but for
 * those of the roots cfg still has inside it (present, or missing: where
 * they would be), whose own walks have the word; nothing when a root of
 * cfg in ns holds dir. The record of dir as a root goes with them. */
void drop_tree_sparing_roots(struct daemon *d, const struct config *cfg, const char *ns, const char *dir);

/* main.c */
void check_state_file(struct daemon *d);
bool is_state_file_path(const struct daemon *d, const char *path);

/* progress.c */
void write_state_file(struct daemon *d, bool is_forced);
void state_timer_cb(uv_timer_t *t); /* writes it, made again if it was removed */
void arm_pending_timer(struct daemon *d);
void set_state(struct daemon *d, const char *state);
void start_systemd_timers(struct daemon *d);
void on_report(const struct indexer_report *rep, void *userdata);
