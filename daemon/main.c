/* quired: keep the index equal to the notes on disk, continuously.
 *
 * The libuv loop thread turns watch events into settled paths (debounce.c)
 * and hands them to the indexer thread (indexer.c), which does all reading
 * and SQLite work; results come back through a uv_async_t. The loop does
 * only metadata work itself: adding watches, listing a directory that just
 * appeared so that nothing created in it before its watch is missed, and
 * reading the small .quireignore files that decide which paths count
 * (cached; at most 256 KiB each). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "cookies.h"
#include "daemon-state.h"
#include "debounce.h"
#include "indexer.h"
#include "log.h"
#include "macro.h"
#include "mounts.h"
#include "notify.h"
#include "roots.h"
#include "scan.h"
#include "search-server.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include "watch.h"

/* Past this many waiting paths, a full reconcile is cheaper than the detail. */
#define DEBOUNCE_MAX_PATHS 65536
/* Operations waiting for the indexer before what waits becomes one
 * reconcile: a rename storm (a renamed tree of a thousand directories, a
 * sync tool moving files about) is otherwise an operation per event. */
#define INDEXER_MAX_WAITING 4096
/* Directories whose .quireignore (or its absence) the loop remembers: an
 * event costs no open(2) per ancestor. Some 150 bytes each. */
#define IGNORE_CACHE_DIRS 4096
/* STATUS= at most four times a second; the state file at most once. */
#define STATUS_INTERVAL_USEC 250000
#define STATE_FILE_INTERVAL_USEC 1000000
/* While the first reconcile runs, ask systemd for this much more time,
 * every second. */
#define EXTEND_TIMEOUT_USEC 5000000
/* The index lags when a change has waited longer than this, or than twice
 * max_delay_ms when that is longer: a note that keeps changing waits
 * max_delay_ms by design, and indexing a burst takes a moment. */
#define LAG_THRESHOLD_MIN_MS 3000
/* While changes wait, the state file is rewritten this often. */
#define PENDING_INTERVAL_MS 1000
/* How long a root found again with its notes kept must go without events
 * below it before what its walk did not find leaves (struct root). */
#define RESTORE_QUIET_MS 3000

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
        bool is_stopping;
        int argc; /* kept for a reload, which parses them again */
        char **argv;

        struct daemon_state_file *state_file;
        const char *state; /* "starting", "reconciling", "watching", "reloading", "stopping" */
        uint64_t state_written_usec;
        uv_timer_t watchdog_timer, extend_timer, status_timer, pending_timer;
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

/* The innermost root other than except that holds path, and the path
 * below it ("" for the root). */
static struct root *find_root_except(struct daemon *d, const char *path, const struct root *except,
                                     const char **rel) {
        struct root *best = NULL;
        size_t best_len = 0;

        for (size_t i = 0; i < d->n_roots; i++) {
                const char *r = d->roots[i].path;
                size_t n = r ? strlen(r) : 0;
                if (!r || &d->roots[i] == except || strncmp(path, r, n) != 0 ||
                    (path[n] != '/' && path[n] != '\0') || n < best_len)
                        continue;
                best = &d->roots[i];
                best_len = n;
        }
        if (best && rel)
                *rel = path[best_len] == '/' ? path + best_len + 1 : path + best_len;
        return best;
}

static struct root *find_root(struct daemon *d, const char *path, const char **rel) {
        return find_root_except(d, path, NULL, rel);
}

static size_t root_index(const struct daemon *d, const struct root *r) {
        return (size_t) (r - d->roots);
}

/* The verdict on rel below root: the built-in rules, the globs, and the
 * .quireignore files from the root down (cached; events tell the cache
 * what to forget). */
static enum scan_verdict classify(struct daemon *d, const struct root *root, const char *rel, bool is_dir) {
        return scan_classify_path(&d->rules, d->ignores, root->path, rel, is_dir);
}

/* Directories appeared, vanished or moved at path: what was known of the
 * .quireignore files there and below is stale. */
static void forget_ignores(struct daemon *d, const char *path) {
        if (path)
                ignore_cache_forget(d->ignores, path, true);
}

static void note_unwatched(struct daemon *d, const char *dir) {
        for (size_t i = 0; i < d->n_unwatched; i++)
                if (strcmp(d->unwatched[i], dir) == 0)
                        return;
        char **u = realloc(d->unwatched, (d->n_unwatched + 1) * sizeof *u);
        char *copy = strdup(dir);
        if (!u || !copy) {
                free(copy);
                if (u)
                        d->unwatched = u;
                return;
        }
        d->unwatched = u;
        d->unwatched[d->n_unwatched++] = copy;
}

static long read_proc_long(const char *path) {
        FILE *f = fopen(path, "re");
        long v = -1;
        if (f) {
                if (fscanf(f, "%ld", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

/* One actionable line, once: which sysctl, and what to set it to. */
static void log_watch_limit(struct daemon *d) {
        if (d->has_logged_watch_limit)
                return;
        d->has_logged_watch_limit = true;
        long limit = read_proc_long("/proc/sys/fs/inotify/max_user_watches");
        size_t needed = watcher_count(d->watcher) + d->n_unwatched + 1024;
        log_warning("Out of inotify watches (fs.inotify.max_user_watches = %ld): some directories are not watched "
                    "and are rescanned every %u s instead; raise the limit, e.g. "
                    "sysctl fs.inotify.max_user_watches=%zu",
                    limit, d->cfg.rescan_interval_s, needed > (size_t) limit * 2 ? needed : (size_t) limit * 2);
}

static void arm_rescan(struct daemon *d);
enum root_found {
        ROOT_FOUND,
        ROOT_NOT_FOUND, /* nothing, or not a directory, at its path */
        ROOT_EMPTY,     /* an empty folder where its notes were: a drive not mounted? */
};
static enum root_found root_locate(struct daemon *d, struct root *root, char *const *watched, size_t n_watched);
static void send_kept_notes(struct daemon *d);
static void arm_restore(struct daemon *d, uint64_t ms);
static void write_state_file(struct daemon *d, bool is_forced);

/* Watch dir and every directory below it that the rules keep: add the
 * watch first, then list, so an entry created in between is either seen
 * by the listing or reported by the watch. With is_pruning (the rules
 * changed), directories the rules now skip lose their watches. */
static void watch_tree(struct daemon *d, struct root *root, const char *dir, bool is_pruning) {
        char **stack = NULL;
        size_t n = 0, cap = 0;
        char *first = strdup(dir);

        if (!first || GREEDY_REALLOC(stack, cap, 1, 16) < 0) {
                free(first);
                return;
        }
        stack[n++] = first;
        while (n > 0) {
                char *path = stack[--n];
                int r = watcher_add_dir(d->watcher, path);
                if (r == -ENOSPC) {
                        note_unwatched(d, path);
                        log_watch_limit(d);
                        arm_rescan(d);
                } else if (r < 0 && r != -ENOENT && r != -ENOTDIR)
                        log_warning_errno(r, "Failed to watch %s: %m", path);

                DIR *dp = r == 0 || r == -ENOSPC ? opendir(path) : NULL;
                struct dirent *de;
                for (;;) {
                        errno = 0;
                        if (!dp || !(de = readdir(dp)))
                                break;
                        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                                continue;
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        char *sub;
                        if (asprintf(&sub, "%s/%s", path, de->d_name) < 0)
                                continue;
                        struct stat st;
                        const char *rel;
                        struct root *sub_root = find_root(d, sub, &rel);
                        if ((de->d_type == DT_UNKNOWN && (lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))) ||
                            !sub_root) {
                                free(sub);
                                continue;
                        }
                        if (classify(d, sub_root, rel, true) != SCAN_KEEP) {
                                if (is_pruning)
                                        watcher_remove_tree(d->watcher, sub);
                                free(sub);
                                continue;
                        }
                        if (GREEDY_REALLOC(stack, cap, n + 1, 16) < 0) {
                                free(sub);
                                continue;
                        }
                        stack[n++] = sub;
                }
                if (dp && errno != 0) {
                        /* Listed only in part (EIO): the directories not
                         * listed would go unwatched for good. The rescan
                         * walks it again, as one the watch limit left out. */
                        log_warning_errno(errno, "Failed to list %s, looking at it again later: %m", path);
                        note_unwatched(d, path);
                        arm_rescan(d);
                }
                if (dp)
                        closedir(dp);
                free(path);
        }
        free(stack);
        (void) root;
}

/* A reconcile of every root present; with instead, in place of every
 * operation still waiting (indexer_reconcile_instead). */
static void reconcile_roots(struct daemon *d, bool instead) {
        _cleanup_free_ const char **paths = calloc(d->n_roots + 1, sizeof *paths);
        _cleanup_free_ const char **namespaces = calloc(d->n_roots + 1, sizeof *namespaces);
        size_t n = 0;

        if (!paths || !namespaces) {
                log_error("Failed to queue a reconcile: out of memory");
                return;
        }
        for (size_t i = 0; i < d->n_roots; i++) {
                if (!d->roots[i].path)
                        continue;
                paths[n] = d->roots[i].path;
                namespaces[n++] = d->roots[i].namespace;
        }
        int r = instead ? indexer_reconcile_instead(d->indexer, paths, namespaces, n)
                        : indexer_reconcile(d->indexer, paths, namespaces, n);
        if (r < 0 && r != -ESHUTDOWN)
                log_error_errno(r, "Failed to queue a reconcile: %m");
}

static void reconcile_all(struct daemon *d) {
        reconcile_roots(d, false);
}

/* Before an operation goes to the indexer: when too many wait already,
 * they all become one reconcile, which covers this one too (true). */
static bool reconcile_if_flooded(struct daemon *d) {
        size_t n = indexer_queue_waiting(d->indexer);
        if (n < d->max_waiting)
                return false;
        log_warning("%zu operations waiting for the indexer; reconciling every root instead", n);
        d->n_overflows++;
        reconcile_roots(d, true);
        return true;
}

/* Whether root, of another namespace than ns, is the innermost root of
 * its own namespace that holds path. A note below a root of namespace B
 * inside a root of namespace A is in both (the walks index it in both),
 * so a change the innermost root hears is brought to A's too. */
static bool is_other_namespace_holder(const struct daemon *d, const struct root *root, const char *ns,
                                      const char *path) {
        if (!root->path || strcmp(root->namespace, ns) == 0 || !root_covers(root->path, path))
                return false;
        for (size_t i = 0; i < d->n_roots; i++) {
                const struct root *o = &d->roots[i];
                if (o != root && o->path && strcmp(o->namespace, root->namespace) == 0 &&
                    root_covers(o->path, path) && strlen(o->path) > strlen(root->path))
                        return false;
        }
        return true;
}

/* Walk dir for ns, with root's rules, and for each other namespace a root
 * of which holds it, with that root's rules. */
static int queue_sync_dir(struct daemon *d, const char *ns, const char *root, const char *dir) {
        if (reconcile_if_flooded(d))
                return 0;
        int r = indexer_sync_dir(d->indexer, ns, root, dir);
        for (size_t i = 0; r == 0 && i < d->n_roots; i++)
                if (is_other_namespace_holder(d, &d->roots[i], ns, dir))
                        r = indexer_sync_dir(d->indexer, d->roots[i].namespace, d->roots[i].path, dir);
        return r;
}

/* The settled paths of a root of ns, for the other namespaces that hold
 * them (is_other_namespace_holder), each with the paths its root's rules
 * keep. */
static int sync_paths_elsewhere(struct daemon *d, const char *ns, char *const *paths, size_t n_paths,
                                uint64_t since_usec) {
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *other = &d->roots[i];
                char **mine = NULL;
                size_t n_mine = 0;
                for (size_t k = 0; k < n_paths; k++) {
                        if (!is_other_namespace_holder(d, other, ns, paths[k]))
                                continue;
                        size_t n = strlen(other->path);
                        const char *rel = paths[k] + n + (paths[k][n] == '/');
                        if (classify(d, other, rel, false) != SCAN_KEEP)
                                continue;
                        if (!mine && !(mine = calloc(n_paths + 1, sizeof *mine)))
                                return -ENOMEM;
                        if (!(mine[n_mine] = strdup(paths[k]))) {
                                while (n_mine > 0)
                                        free(mine[--n_mine]);
                                free(mine);
                                return -ENOMEM;
                        }
                        n_mine++;
                }
                if (n_mine > 0) {
                        int r = indexer_sync_paths(d->indexer, other->namespace, mine, n_mine, since_usec);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* A directory appeared (created, moved in, or found again): watch it, then
 * let the indexer walk it for the notes already inside. */
static void adopt_dir(struct daemon *d, struct root *root, const char *dir) {
        struct stat st;

        /* The root's own directory may be another one now (a folder
         * renamed onto its path): what root_is_in_place() compares with. */
        if (strcmp(dir, root->path) == 0 && stat(dir, &st) == 0) {
                root->dev = st.st_dev;
                root->ino = st.st_ino;
        }
        forget_ignores(d, dir);
        watch_tree(d, root, dir, false);
        int r = queue_sync_dir(d, root->namespace, root->path, dir);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s: %m", dir);
}

static void mark_path(struct daemon *d, struct root *root, const char *path) {
        int r = debounce_mark(d->debounce, root_index(d, root), path);
        if (r < 0)
                log_error_errno(r, "Failed to remember a change to %s: %m", path);
}

static bool has_pending(struct daemon *d);
static void arm_pending_timer(struct daemon *d);

/* A sync cookie (cookies.h) appeared at the top of a root: every change
 * made before it has had its event by now. Push whatever waits out of the
 * debounce at once and put a barrier behind it in the indexer's queue;
 * the cookie is acknowledged when the barrier is reached (on_report). */
static void sync_cookie(struct daemon *d, const char *name) {
        if (cookie_table_knows(d->cookies, name))
                return; /* its close or deletion, or a second root's event */
        debounce_flush_all(d->debounce);
        /* Directories the watch limit left unwatched report nothing: a walk
         * of their roots (a stat per unchanged note) catches up on them. */
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                for (size_t k = 0; root->path && k < d->n_unwatched; k++)
                        if (find_root(d, d->unwatched[k], NULL) == root) {
                                int r = queue_sync_dir(d, root->namespace, root->path, root->path);
                                if (r < 0)
                                        log_error_errno(r, "Failed to queue %s: %m", root->path);
                                break;
                        }
        }
        uint64_t seq = ++d->barrier_seq;
        int r = indexer_barrier(d->indexer, seq);
        if (r == 0)
                r = cookie_table_add(d->cookies, name, seq);
        if (r < 0)
                log_warning_errno(r, "Failed to handle the sync cookie %s: %m", name);
        log_debug("Sync cookie %s: barrier %llu", name, (unsigned long long) seq);
}

/* Whether ev is about a sync cookie; those are never indexed, and one
 * that appears at the top of a root is acted on. */
static bool handle_cookie(struct daemon *d, const struct watch_event *ev) {
        const char *slash = ev->path ? strrchr(ev->path, '/') : NULL, *rel;

        if (ev->kind == WATCH_OVERFLOW || ev->kind == WATCH_DIR_GONE || ev->kind == WATCH_UNMOUNTED || !slash ||
            !daemon_cookie_name_is_valid(slash + 1))
                return false;
        if (ev->kind != WATCH_REMOVED && find_root(d, ev->path, &rel) && !strchr(rel, '/'))
                sync_cookie(d, slash + 1);
        return true;
}

/* The root directory itself changed. A backend that cannot name what
 * changed inside (kqueue's uv_fs_event) reports a new cookie only so:
 * look for cookies at the top of the root. */
static void find_cookies(struct daemon *d, struct root *root) {
        DIR *dp = opendir(root->path);
        struct dirent *de;

        while (dp && (de = readdir(dp)))
                if (daemon_cookie_name_is_valid(de->d_name))
                        sync_cookie(d, de->d_name);
        if (dp)
                closedir(dp);
}

static bool root_is_in_place(const struct root *root);
static void relocate_root(struct daemon *d, struct root *root);
static void watch_ancestors(struct daemon *d);

static void on_changed(struct daemon *d, const struct watch_event *ev) {
        const char *rel;
        struct root *root = find_root(d, ev->path, &rel);
        bool is_dir = ev->is_dir;

        if (!root)
                return;
        if (!is_dir && !watcher_pairs_renames(d->watcher)) {
                /* fs-event cannot say what happened or to what kind of
                 * entry: look (metadata only). A path that is gone may
                 * have been a directory of notes (renamed or deleted):
                 * its rows go unless it is a note's name. */
                struct stat st;
                if (lstat(ev->path, &st) < 0) {
                        if (*rel && classify(d, root, rel, false) == SCAN_KEEP)
                                mark_path(d, root, ev->path);
                        else if (*rel && classify(d, root, rel, true) == SCAN_KEEP) {
                                forget_ignores(d, ev->path);
                                watcher_remove_tree(d->watcher, ev->path);
                                int r = queue_sync_dir(d, root->namespace, root->path, ev->path);
                                if (r < 0)
                                        log_error_errno(r, "Failed to queue %s: %m", ev->path);
                        }
                        return;
                }
                is_dir = S_ISDIR(st.st_mode);
        }
        if (!*rel) {
                /* fs-event says as much for an unmount as for a change: a
                 * root that is not the directory it was is not rescanned
                 * as if it were (its notes would leave as if deleted). */
                if (is_dir && !root_is_in_place(root)) {
                        relocate_root(d, root);
                        watch_ancestors(d);
                } else if (is_dir) { /* the root itself: rescan it */
                        adopt_dir(d, root, root->path);
                        find_cookies(d, root);
                }
                return;
        }
        enum scan_verdict verdict = classify(d, root, rel, is_dir);
        /* A note whose name is not UTF-8 goes through the debounce like
         * any other, so the indexer says once, not per event, that it is
         * skipped; a directory is said here, and not walked. */
        if (verdict == SCAN_BAD_NAME && is_dir)
                log_warning("Skipping %s: the name is not valid UTF-8", ev->path);
        if (verdict != SCAN_KEEP && (verdict != SCAN_BAD_NAME || is_dir))
                return;
        if (is_dir)
                adopt_dir(d, root, ev->path);
        else
                mark_path(d, root, ev->path);
}

static void lose_root(struct daemon *d, struct root *root, bool is_unmounted);

static void on_removed(struct daemon *d, const struct watch_event *ev) {
        const char *rel;
        struct root *root = find_root(d, ev->path, &rel);

        /* A root inside another one, moved out of it or deleted: it is gone
         * from its path (docs/ROOTS.md), and for the root around it a
         * folder of notes went. */
        if (root && !*rel && ev->is_dir) {
                struct root *inner = root;
                root = find_root_except(d, ev->path, inner, &rel);
                lose_root(d, inner, false);
                watch_ancestors(d);
        }
        if (!root || !*rel)
                return;
        if (ev->is_dir) {
                watcher_remove_tree(d->watcher, ev->path);
                int r = queue_sync_dir(d, root->namespace, root->path, ev->path);
                if (r < 0)
                        log_error_errno(r, "Failed to queue %s: %m", ev->path);
        } else if (classify(d, root, rel, false) == SCAN_KEEP)
                /* Debounced like a change: an editor that deletes and
                 * recreates a note is one reindex, ids kept. */
                mark_path(d, root, ev->path);
}

/* A rename within a root of ns, for the other namespaces whose roots hold
 * either end (is_other_namespace_holder): a move where one holds both
 * (ids kept), else the end it holds is walked, or for a note's old name
 * looked at (gone). A note's new name is looked at once it settles. */
static int move_elsewhere(struct daemon *d, const char *ns, const struct watch_event *ev) {
        int r = 0;

        for (size_t i = 0; r == 0 && i < d->n_roots; i++) {
                const struct root *other = &d->roots[i];
                bool has_old = is_other_namespace_holder(d, other, ns, ev->old_path);
                bool has_new = is_other_namespace_holder(d, other, ns, ev->path);
                if (has_old && has_new)
                        r = indexer_move(d->indexer, other->namespace, other->path, ev->old_path, ev->path,
                                         ev->is_dir);
                else if (has_old && ev->is_dir)
                        r = indexer_sync_dir(d->indexer, other->namespace, other->path, ev->old_path);
                else if (has_old) {
                        char **old = calloc(2, sizeof *old);
                        if (!old || !(old[0] = strdup(ev->old_path))) {
                                free(old);
                                return -ENOMEM;
                        }
                        r = indexer_sync_paths(d->indexer, other->namespace, old, 1, 0);
                } else if (has_new && ev->is_dir)
                        r = indexer_sync_dir(d->indexer, other->namespace, other->path, ev->path);
        }
        return r;
}

/* What a rename means for the notes: old_kept and new_kept say whether
 * each end is a note (or folder of notes) of old_root and new_root. */
static void on_moved_notes(struct daemon *d, const struct watch_event *ev, struct root *old_root, bool old_kept,
                           struct root *new_root, bool new_kept) {
        if (old_kept && new_kept && strcmp(old_root->namespace, new_root->namespace) == 0) {
                /* The rows move now; the note itself is looked at once it
                 * settles under its new name (a change that waited on the
                 * old name waits on the new), since an editor may be
                 * rewriting it right after the rename. */
                if (!ev->is_dir)
                        (void) debounce_take(d->debounce, ev->old_path);
                bool is_flooded = reconcile_if_flooded(d);
                int r = is_flooded ? 0
                                   : indexer_move(d->indexer, old_root->namespace, new_root->path, ev->old_path,
                                                  ev->path, ev->is_dir);
                if (r == 0 && !is_flooded)
                        r = move_elsewhere(d, old_root->namespace, ev);
                if (r < 0)
                        log_error_errno(r, "Failed to queue a rename of %s: %m", ev->old_path);
                if (!ev->is_dir)
                        mark_path(d, new_root, ev->path);
                /* A directory renamed right after it was made was never
                 * watched under its first name (it was gone when its
                 * creation was handled): watch it now. A no-op when the
                 * backend already moved the watches along. */
                if (ev->is_dir)
                        watch_tree(d, new_root, ev->path, false);
                return;
        }
        /* Otherwise the two ends are unrelated: a note leaves one place
         * (an editor's backup rename, a move to .trash) and/or arrives at
         * another (an atomic save renaming its temp file over the note). */
        if (old_kept) {
                struct watch_event gone = { .kind = WATCH_REMOVED, .path = ev->old_path, .is_dir = ev->is_dir };
                on_removed(d, &gone);
        }
        if (new_kept) {
                struct watch_event came = { .kind = WATCH_CHANGED, .path = ev->path, .is_dir = ev->is_dir };
                on_changed(d, &came);
        } else if (ev->is_dir)
                watcher_remove_tree(d->watcher, ev->path);
}

static void on_moved(struct daemon *d, const struct watch_event *ev) {
        const char *old_rel, *new_rel;
        struct root *old_root = find_root(d, ev->old_path, &old_rel);
        struct root *new_root = find_root(d, ev->path, &new_rel);

        /* A root inside another one, renamed within it: the inner root is
         * a root at its configured path, and is gone from there (looked for
         * until it is back; its notes leave its namespace by a walk of the
         * old path, queued after the move below). The folder's notes are
         * the outer root's, moved as any folder's: ids kept. And the other
         * way, a folder renamed to a root's path (it was moved back, and
         * the rescan found it before this event): for the outer root a
         * folder moved, for the inner one it is there again. */
        struct root *moved_root = NULL, *arrived_root = NULL;
        if (old_root && !*old_rel && ev->is_dir) {
                moved_root = old_root;
                old_root = find_root_except(d, ev->old_path, moved_root, &old_rel);
        }
        if (new_root && !*new_rel && ev->is_dir) {
                arrived_root = new_root;
                new_root = find_root_except(d, ev->path, arrived_root, &new_rel);
        }
        bool old_kept = old_root && *old_rel && classify(d, old_root, old_rel, ev->is_dir) == SCAN_KEEP;
        bool new_kept = new_root && *new_rel && classify(d, new_root, new_rel, ev->is_dir) == SCAN_KEEP;

        on_moved_notes(d, ev, old_root, old_kept, new_root, new_kept);
        /* on_moved_notes may have found it gone already (on_removed). */
        if (moved_root && moved_root->path) {
                lose_root(d, moved_root, false);
                watch_ancestors(d);
        }
        if (arrived_root && arrived_root->path)
                adopt_dir(d, arrived_root, arrived_root->path);
}

/* Whether path is dir or lies below it. */
static bool path_is_at_or_below(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/' || (n > 0 && dir[n - 1] == '/'));
}

/* The directories above the roots present are watched for their own
 * rename or deletion (watch.h): a root that moves away with a parent
 * hears nothing itself. */
static void watch_ancestors(struct daemon *d) {
        _cleanup_free_ const char **paths = calloc(d->n_roots + 1, sizeof *paths);
        size_t n = 0;
        int r = paths ? 0 : -ENOMEM;

        for (size_t i = 0; paths && i < d->n_roots; i++)
                if (d->roots[i].path)
                        paths[n++] = d->roots[i].path;
        if (r == 0)
                r = watcher_set_ancestors(d->watcher, paths, n);
        if (r < 0 && r != -ESHUTDOWN)
                log_warning_errno(r, "Failed to watch the directories above the roots: %m");
}

/* Whether the present root's path still names the directory watched as
 * the root. */
static bool root_is_in_place(const struct root *root) {
        struct stat st;

        return lstat(root->path, &st) == 0 && st.st_dev == root->dev && st.st_ino == root->ino;
}

static int left_behind_add(struct daemon *d, const char *configured, const struct stat *st) {
        struct left_behind *l = realloc(d->left_behind, (d->n_left_behind + 1) * sizeof *l);

        if (!l)
                return -ENOMEM;
        d->left_behind = l;
        l[d->n_left_behind].configured = strdup(configured);
        if (!l[d->n_left_behind].configured)
                return -ENOMEM;
        l[d->n_left_behind].dev = st->st_dev;
        l[d->n_left_behind].ino = st->st_ino;
        d->n_left_behind++;
        return 0;
}

static bool left_behind_has(const struct daemon *d, const char *configured, const struct stat *st) {
        for (size_t i = 0; i < d->n_left_behind; i++)
                if (d->left_behind[i].dev == st->st_dev && d->left_behind[i].ino == st->st_ino &&
                    strcmp(d->left_behind[i].configured, configured) == 0)
                        return true;
        return false;
}

static void left_behind_forget(struct daemon *d, const char *configured) {
        for (size_t i = 0; i < d->n_left_behind;)
                if (strcmp(d->left_behind[i].configured, configured) == 0) {
                        free(d->left_behind[i].configured);
                        d->left_behind[i] = d->left_behind[--d->n_left_behind];
                } else
                        i++;
}

/* The root is no longer at root->path: it is missing, looked for every
 * rescan_interval_s. Its notes leave the index only when quired saw them
 * go (a deletion or a move away: a walk of the path, which finds nothing,
 * removes them); with is_unmounted nothing was deleted and they stay
 * (docs/ROOTS.md). The caller updates the watched ancestors. */
static void lose_root(struct daemon *d, struct root *root, bool is_unmounted) {
        if (is_unmounted)
                log_warning("Root %s is not there any more (its filesystem was unmounted); its notes stay in the "
                            "index, and it is looked for again every %u s",
                            root->path, d->cfg.rescan_interval_s);
        else
                log_warning("Root %s is gone; its notes leave the index, and it is looked for again every %u s",
                            root->path, d->cfg.rescan_interval_s);
        /* Below a renamed ancestor, its watches still follow the
         * directories, now elsewhere. */
        watcher_remove_tree(d->watcher, root->path);
        forget_ignores(d, root->path);
        /* Before the walk below: a root being restored had its notes
         * kept, and deleted now, they go. */
        bool was_kept = root->keeps_notes;
        root->keeps_notes = is_unmounted;
        root->is_restoring = false;
        if (root->keeps_notes || was_kept)
                send_kept_notes(d);
        if (is_unmounted) {
                struct stat st;
                if (lstat(root->path, &st) == 0 && S_ISDIR(st.st_mode) &&
                    left_behind_add(d, root->configured, &st) < 0)
                        log_error_errno(-ENOMEM, "Failed to remember the mount point of %s: %m", root->path);
        } else {
                int r = queue_sync_dir(d, root->namespace, root->path, root->path);
                if (r < 0)
                        log_error_errno(r, "Failed to queue %s: %m", root->path);
        }
        free(root->path);
        root->path = NULL;
        arm_rescan(d);
        /* quire status shows it missing now, not at the next report. */
        write_state_file(d, true);
}

static bool dev_is_mounted(dev_t dev);

static void on_dir_gone(struct daemon *d, const struct watch_event *ev) {
        const char *rel;
        struct root *holder = find_root(d, ev->path, &rel);
        bool has_lost_root = false;

        /* The filesystem under the root went (fs-event says no more than
         * that its directories are gone): missing, notes kept. */
        if (holder && !dev_is_mounted(holder->dev)) {
                lose_root(d, holder, true);
                watch_ancestors(d);
                return;
        }
        /* A directory below a root: its rows go with it (a rename shows up
         * as a change at the new name). Paired backends report the same
         * through WATCH_REMOVED or WATCH_MOVED; a second look is harmless. */
        if (holder && *rel) {
                int r = queue_sync_dir(d, holder->namespace, holder->path, ev->path);
                if (r < 0)
                        log_error_errno(r, "Failed to queue %s: %m", ev->path);
                return;
        }
        /* The root itself, or a directory above it (renamed or deleted,
         * the root with it): gone from where it was configured alike. */
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (!root->path || !path_is_at_or_below(root->path, ev->path))
                        continue;
                lose_root(d, root, !dev_is_mounted(root->dev));
                has_lost_root = true;
        }
        if (has_lost_root)
                watch_ancestors(d);
}

/* A filesystem went: IN_UNMOUNT comes for every watched directory on it,
 * in no particular order, and says nothing was deleted. */
static void on_unmounted(struct daemon *d, const struct watch_event *ev) {
        bool has_lost_root = false;
        const char *rel;

        /* The roots it held (or held one of the directories above) no
         * longer name the directory watched: they are missing, not gone. */
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (root->path && !root_is_in_place(root)) {
                        lose_root(d, root, true);
                        has_lost_root = true;
                }
        }
        if (has_lost_root)
                watch_ancestors(d);
        /* A filesystem mounted below a root that stays: its notes stay as
         * well, until a walk of that folder finds them gone (a restart, a
         * reload); what the path names now, the mount point's own
         * directory, is watched in place of what went. */
        struct root *holder = find_root(d, ev->path, &rel);
        if (holder && *rel) {
                watcher_remove_tree(d->watcher, ev->path);
                watch_tree(d, holder, ev->path, false);
        }
}

/* Whether a filesystem with device number dev is mounted anywhere: true
 * when that cannot be known (no /proc, another system), which keeps to
 * what the paths say. Read afresh: the table quired keeps for
 * follow_mounts_below_roots() is as old as the last poll, and the event
 * asking may have come before the poll's. */
static bool dev_is_mounted(dev_t dev) {
        struct mount_table now;

        if (mount_table_read(&now) < 0)
                return true;
        bool is_mounted = mount_table_has_dev(&now, dev);
        mount_table_done(&now);
        return is_mounted;
}

/* Events were lost, a root's own move or its ancestors' among them: the
 * paths quired has for them are not to be trusted. A root whose path no
 * longer names the directory watched is gone (the walk of its path finds
 * its notes gone, as the reconcile would), unless its filesystem is not
 * mounted any more: then the overflow swallowed an unmount, and its
 * notes stay (docs/ROOTS.md). The ancestors' watches are checked against
 * the directories at their paths now (watch.h); and the roots that stay
 * are walked and watched again. */
static void on_overflow(struct daemon *d) {
        for (size_t i = 0; i < d->n_roots; i++)
                if (d->roots[i].path && !root_is_in_place(&d->roots[i]))
                        lose_root(d, &d->roots[i], !dev_is_mounted(d->roots[i].dev));
        watch_ancestors(d);
        for (size_t i = 0; i < d->n_roots; i++)
                if (d->roots[i].path)
                        watch_tree(d, &d->roots[i], d->roots[i].path, true);
        reconcile_all(d);
}

static bool is_ignore_file(const char *path) {
        const char *slash = path ? strrchr(path, '/') : NULL;
        return slash && strcmp(slash + 1, IGNORE_FILE_NAME) == 0;
}

/* A .quireignore was created, written, removed or renamed: notes below its
 * directory may have become ignored or included. The subtree is walked
 * again (its rows then follow the new rules: skipped notes leave, included
 * ones enter) and its watches follow the rules too. */
static void on_ignore_file_changed(struct daemon *d, const char *path) {
        size_t n = (size_t) (strrchr(path, '/') - path);
        _cleanup_free_ char *dir = strndup(path, n ? n : 1);
        const char *rel;
        struct root *root = dir ? find_root(d, dir, &rel) : NULL;

        if (!root)
                return;
        ignore_cache_forget(d->ignores, dir, false);
        /* Rules inside a skipped directory have nothing to say. */
        if (*rel && classify(d, root, rel, true) != SCAN_KEEP)
                return;
        log_debug("%s changed: syncing %s again", path, dir);
        /* Changes settling under the old rules go to the indexer first, so
         * the walk under the new ones has the last word. */
        debounce_flush_all(d->debounce);
        watch_tree(d, root, dir, true);
        int r = queue_sync_dir(d, root->namespace, root->path, dir);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s: %m", dir);
}

/* A restoring root (struct root) stays so while events come below it. */
static void note_restoring_event(struct daemon *d, const struct watch_event *ev) {
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (root->is_restoring && ((ev->path && root_covers(root->path, ev->path)) ||
                                           (ev->old_path && root_covers(root->path, ev->old_path))))
                        root->last_event_usec = now_monotonic_usec();
        }
}

/* Roots restored long enough ago with nothing since: their notes are
 * their own again, and a walk drops those the restored tree lacks. */
static void restore_cb(uv_timer_t *t) {
        struct daemon *d = t->data;
        uint64_t now = now_monotonic_usec(), quiet = (uint64_t) d->restore_quiet_ms * 1000, wait = 0;
        bool has_restored = false;

        /* Those done are taken out of the kept set, which goes to the
         * indexer before their walks. */
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (!root->is_restoring)
                        continue;
                uint64_t since = now - root->last_event_usec;
                if (since >= quiet) {
                        root->keeps_notes = false;
                        has_restored = true;
                } else if (!wait || quiet - since < wait)
                        wait = quiet - since;
        }
        if (has_restored)
                send_kept_notes(d);
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (!root->is_restoring || root->keeps_notes)
                        continue;
                root->is_restoring = false;
                log_info("Root %s has been quiet since it came back; notes not in it leave the index", root->path);
                int r = queue_sync_dir(d, root->namespace, root->path, root->path);
                if (r < 0)
                        log_error_errno(r, "Failed to queue %s: %m", root->path);
        }
        if (wait)
                arm_restore(d, (wait + 999) / 1000);
}

static void arm_restore(struct daemon *d, uint64_t ms) {
        uv_timer_start(&d->restore_timer, restore_cb, ms, 0);
}

/* root, present, keeps its notes until it has been quiet (struct root);
 * the caller tells the indexer (send_kept_notes). */
static void begin_restoring(struct daemon *d, struct root *root) {
        root->keeps_notes = true;
        root->is_restoring = true;
        root->last_event_usec = now_monotonic_usec();
        arm_restore(d, d->restore_quiet_ms);
}

static void on_watch_event(const struct watch_event *ev, void *userdata) {
        struct daemon *d = userdata;

        if (d->is_stopping)
                return;
        if (handle_cookie(d, ev))
                return;
        note_restoring_event(d, ev);
        if (ev->is_dir || ev->kind == WATCH_DIR_GONE || ev->kind == WATCH_UNMOUNTED) {
                forget_ignores(d, ev->path);
                forget_ignores(d, ev->old_path);
        }
        if (is_ignore_file(ev->path))
                on_ignore_file_changed(d, ev->path);
        if (ev->kind == WATCH_MOVED && is_ignore_file(ev->old_path))
                on_ignore_file_changed(d, ev->old_path);
        switch (ev->kind) {
        case WATCH_CHANGED:
                on_changed(d, ev);
                break;
        case WATCH_REMOVED:
                on_removed(d, ev);
                break;
        case WATCH_MOVED:
                on_moved(d, ev);
                break;
        case WATCH_OVERFLOW:
                log_warning("Watch queue overflowed: events were lost; reconciling every root");
                d->n_overflows++;
                debounce_clear(d->debounce);
                ignore_cache_clear(d->ignores);
                on_overflow(d);
                break;
        case WATCH_DIR_GONE:
                on_dir_gone(d, ev);
                break;
        case WATCH_UNMOUNTED:
                on_unmounted(d, ev);
                break;
        }
        arm_pending_timer(d);
}

static void on_settled(size_t root, char **paths, size_t n_paths, uint64_t oldest_ms, void *userdata) {
        struct daemon *d = userdata;
        if (reconcile_if_flooded(d)) {
                for (size_t i = 0; i < n_paths; i++)
                        free(paths[i]);
                free(paths);
                return;
        }
        /* uv_now() is CLOCK_MONOTONIC in ms, as the indexer's clock is in µs. */
        int r = sync_paths_elsewhere(d, d->roots[root].namespace, paths, n_paths, oldest_ms * 1000);
        int k = indexer_sync_paths(d->indexer, d->roots[root].namespace, paths, n_paths, oldest_ms * 1000);
        if (r == 0)
                r = k;
        if (r < 0 && r != -ESHUTDOWN)
                log_error_errno(r, "Failed to queue %zu changed paths: %m", n_paths);
}

static void on_debounce_overflow(void *userdata) {
        struct daemon *d = userdata;
        log_warning("More than %d changed paths waiting; reconciling every root instead", DEBOUNCE_MAX_PATHS);
        d->n_overflows++;
        reconcile_all(d);
}

static size_t roots_present(const struct daemon *d) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_roots; i++)
                n += d->roots[i].path != NULL;
        return n;
}

static void status_timer_cb(uv_timer_t *t);

/* STATUS= for systemd, rate-limited; a status held back by the limit goes
 * out when the interval is over (a one-shot timer, armed only then). */
static void send_status(struct daemon *d) {
        struct notify_status st = {
                .n_roots = roots_present(d),
                .n_files = (uint64_t) d->n_files,
                .n_chunks = (uint64_t) d->n_chunks,
                .queue_length = d->queue_length,
                .last_path = d->last_path,
                .state = d->state,
        };
        if (!notify_status(&st, now_monotonic_usec(), STATUS_INTERVAL_USEC) &&
            !uv_is_active((uv_handle_t *) &d->status_timer))
                uv_timer_start(&d->status_timer, status_timer_cb, STATUS_INTERVAL_USEC / 1000, 0);
}

static void status_timer_cb(uv_timer_t *t) {
        send_status(t->data);
}

/* CLOCK_MONOTONIC µs of the oldest change not committed yet, 0 if none. */
static uint64_t oldest_pending_usec(struct daemon *d) {
        uint64_t oldest = d->indexer ? indexer_oldest_pending_usec(d->indexer) : 0;
        uint64_t settling_ms = d->debounce ? debounce_oldest_ms(d->debounce) : 0;

        if (settling_ms && (!oldest || settling_ms * 1000 < oldest))
                oldest = settling_ms * 1000;
        return oldest;
}

static bool has_pending(struct daemon *d) {
        return oldest_pending_usec(d) != 0;
}

static void write_state_file(struct daemon *d, bool is_forced) {
        uint64_t now = now_monotonic_usec();
        if (!d->state_file || (!is_forced && now - d->state_written_usec < STATE_FILE_INTERVAL_USEC))
                return;
        d->state_written_usec = now;

        _cleanup_free_ const char **roots = calloc(d->n_roots + 1, sizeof *roots);
        size_t n_roots = 0;
        _cleanup_free_ const char **missing = calloc(d->n_roots + 1, sizeof *missing);
        size_t n_missing = 0;
        for (size_t i = 0; roots && missing && i < d->n_roots; i++)
                if (d->roots[i].path)
                        roots[n_roots++] = d->roots[i].path;
                else
                        missing[n_missing++] = d->roots[i].configured;
        const char *const *cookies = NULL;
        size_t n_cookies = d->cookies ? cookie_table_acked(d->cookies, &cookies) : 0;
        uint64_t oldest = oldest_pending_usec(d);
        unsigned lag_ms = 2 * d->cfg.max_delay_ms;
        struct daemon_state st = {
                .state = d->state,
                .queue_length = d->indexer ? indexer_queue_length(d->indexer) : d->queue_length,
                .n_settling = d->debounce ? debounce_count(d->debounce) : 0,
                /* The same moment on the wall clock, which readers share. */
                .oldest_pending_usec = oldest ? now_realtime_usec() - (now - (oldest < now ? oldest : now)) : 0,
                .lag_threshold_ms = lag_ms > LAG_THRESHOLD_MIN_MS ? lag_ms : LAG_THRESHOLD_MIN_MS,
                .n_watched = d->watcher ? watcher_count(d->watcher) : 0,
                .n_unwatched = d->n_unwatched,
                .n_overflows = d->n_overflows,
                .last_reconcile_usec = d->last_reconcile_usec,
                .roots = roots,
                .n_roots = n_roots,
                .missing_roots = missing,
                .n_missing_roots = n_missing,
                .cookies = cookies,
                .n_cookies = n_cookies,
        };
        d->has_written_pending = oldest != 0;
        int r = daemon_state_update(d->state_file, &st);
        if (r < 0)
                log_debug_errno(r, "Failed to update the daemon state file: %m");
}

/* While changes wait, rewrite the state file every second, so that
 * `quire status` sees the oldest one age even when nothing else happens
 * (an indexer stuck on a lock). Idle, the timer is off. */
static void pending_timer_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        write_state_file(d, true);
        if (!has_pending(d))
                uv_timer_stop(t);
}

static void arm_pending_timer(struct daemon *d) {
        if (!d->is_stopping && !uv_is_active((uv_handle_t *) &d->pending_timer) && has_pending(d))
                uv_timer_start(&d->pending_timer, pending_timer_cb, PENDING_INTERVAL_MS, PENDING_INTERVAL_MS);
}

static void set_state(struct daemon *d, const char *state) {
        d->state = state;
        write_state_file(d, true);
        send_status(d);
}

/* The watchdog ping depends on the indexer: idle, or moved on since the
 * last look. A loop that stalls never gets here; an indexer wedged in one
 * operation stops the pings; either way systemd restarts us. */
static void watchdog_cb(uv_timer_t *t) {
        struct daemon *d = t->data;
        bool is_busy;
        uint64_t n_progress;

        indexer_progress(d->indexer, &is_busy, &n_progress);
        if (is_busy && n_progress == d->progress_at_last_ping) {
                /* At idle priority, no progress may mean starved, not
                 * wedged: lift it and give it one more half interval. */
                if (indexer_boost(d->indexer)) {
                        log_info("The indexer has made no progress for %llu ms at idle priority; lifting its "
                                 "priority until it does", (unsigned long long) d->watchdog_usec / 2000);
                        notify_watchdog_ping();
                        return;
                }
                if (!d->has_logged_stall)
                        log_warning("The indexer has made no progress for %llu ms; not pinging the watchdog",
                                    (unsigned long long) d->watchdog_usec / 2000);
                d->has_logged_stall = true;
                return;
        }
        d->has_logged_stall = false;
        d->progress_at_last_ping = n_progress;
        notify_watchdog_ping();
        write_state_file(d, false);
}

static void extend_cb(uv_timer_t *t) {
        notify_extend_timeout(EXTEND_TIMEOUT_USEC);
        (void) t;
}

static void retry_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        reconcile_all(d);
        /* A cookie vouches that the changes before it are in: the ones
         * waiting now are answered by this reconcile, not by a barrier
         * that came after a failure. */
        uint64_t seq = ++d->barrier_seq;
        if (indexer_barrier(d->indexer, seq) == 0)
                cookie_table_defer(d->cookies, seq);
}

/* An operation failed, and the changes it carried are dropped with it (a
 * path sync, a move, a reconcile): a reconcile later finds them all again
 * by their stat. Only a failed reconcile moves the next one further out;
 * other failures while one is pending are covered by it. */
static void schedule_retry(struct daemon *d, bool was_reconcile) {
        if (d->retry_s == 0)
                d->retry_s = 1;
        else if (was_reconcile)
                d->retry_s = d->retry_s * 2 < d->cfg.rescan_interval_s ? d->retry_s * 2 : d->cfg.rescan_interval_s;
        else
                return;
        /* The cause was logged where it was met (storage names the database). */
        log_warning("%s failed; retrying in %u s", was_reconcile ? "Reconcile" : "Indexing", d->retry_s);
        uv_timer_start(&d->retry_timer, retry_cb, (uint64_t) d->retry_s * 1000, 0);
}

static void on_report(const struct indexer_report *rep, void *userdata) {
        struct daemon *d = userdata;
        const struct index_stats *t = &rep->stats.index;

        if (d->is_stopping) /* the last report, from indexer_stop() */
                return;
        log_debug("Batch: %u operations, %u read, %u new, %u changed, %u moved, %u removed; %zu queued",
                  rep->n_ops, rep->stats.n_read, t->files_new, t->files_changed, t->files_moved, t->files_deleted,
                  rep->queue_length);
        d->queue_length = rep->queue_length;
        if (rep->has_counts) {
                d->n_files = rep->n_files;
                d->n_chunks = rep->n_chunks;
        }
        if (rep->last_path) {
                char *copy = strdup(rep->last_path);
                if (copy) {
                        free(d->last_path);
                        d->last_path = copy;
                }
        }
        if (rep->was_reconcile && rep->error == 0)
                d->last_reconcile_usec = now_realtime_usec();
        if (rep->error < 0)
                schedule_retry(d, rep->was_reconcile);
        else if (rep->was_reconcile && d->retry_s > 0) {
                /* Every change since the failure is in: nothing left to retry. */
                log_info("Indexing works again");
                d->retry_s = 0;
                uv_timer_stop(&d->retry_timer);
        }
        /* Acknowledged cookies, and the end of a wait, are news at once.
         * While a retry is due, a barrier reached proves nothing: what
         * came before it may have failed (retry_cb defers the cookies). */
        bool is_news = rep->barrier_done && d->retry_s == 0 && cookie_table_ack(d->cookies, rep->barrier_done) > 0;
        is_news |= d->has_written_pending && !has_pending(d);
        arm_pending_timer(d);
        if (!d->is_ready && (d->ready_barrier ? rep->barrier_done >= d->ready_barrier : rep->was_reconcile)) {
                d->is_ready = true;
                d->ready_barrier = 0;
                uv_timer_stop(&d->extend_timer);
                log_info("Ready: watching %zu directories under %zu roots", watcher_count(d->watcher),
                         roots_present(d));
                set_state(d, "watching");
                notify_ready();
                return;
        }
        write_state_file(d, is_news);
        send_status(d);
}

/* Each missing root looked for; true if one is still missing. */
static bool look_for_missing_roots(struct daemon *d) {
        bool is_missing = false;

        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (root->path)
                        continue;
                if (root_locate(d, root, NULL, 0) == ROOT_FOUND) {
                        log_info("Root %s is back", root->path);
                        adopt_dir(d, root, root->path);
                        watch_ancestors(d);
                        write_state_file(d, true);
                } else {
                        log_debug("Root %s is still missing", root->configured);
                        is_missing = true;
                }
        }
        return is_missing;
}

/* Filesystems mounted or unmounted at a folder below a root (not at it:
 * relocate_root): mounting raises no event, so what the new filesystem
 * holds is watched and walked now; what an unmount (of a bind mount too)
 * uncovers is watched in place of what went, its notes kept until a walk
 * finds them gone, as on_unmounted does. */
static void follow_mounts_below_roots(struct daemon *d) {
        struct mount_table now;
        const char *rel;

        if (mount_table_read(&now) < 0)
                return;
        for (size_t i = 0; i < now.n; i++) {
                const char *point = now.v[i].point;
                struct root *holder = find_root(d, point, &rel);
                if (!holder || !*rel || mount_table_has_point(&d->mounts, point) ||
                    classify(d, holder, rel, true) != SCAN_KEEP)
                        continue;
                log_info("A filesystem was mounted at %s; indexing it", point);
                watcher_remove_tree(d->watcher, point);
                forget_ignores(d, point);
                adopt_dir(d, holder, point);
        }
        for (size_t i = 0; i < d->mounts.n; i++) {
                const char *gone = d->mounts.v[i].point;
                struct root *holder = find_root(d, gone, &rel);
                if (!holder || !*rel || mount_table_has_point(&now, gone) ||
                    classify(d, holder, rel, true) != SCAN_KEEP)
                        continue;
                watcher_remove_tree(d->watcher, gone);
                forget_ignores(d, gone);
                watch_tree(d, holder, gone, false);
        }
        mount_table_done(&d->mounts);
        d->mounts = now;
}

/* root, present, no longer names at its path the directory it watched,
 * and no event said it moved or went: look for it there again. Found, the
 * folder there is the root now, watched and walked. Not found, or an empty
 * folder where its notes were, it is missing with its notes kept, as for
 * an unmount. The caller updates the watched ancestors. */
static void relocate_root(struct daemon *d, struct root *root) {
        watcher_remove_tree(d->watcher, root->path);
        forget_ignores(d, root->path);
        char *old_path = TAKE_PTR(root->path);
        if (root_locate(d, root, NULL, 0) == ROOT_FOUND) {
                log_info("Root %s is another folder now (a filesystem was mounted or unmounted at it or above); "
                         "indexing it",
                         root->path);
                free(old_path);
                adopt_dir(d, root, root->path);
        } else {
                root->path = old_path;
                lose_root(d, root, true);
        }
}

/* The mount table changed. A present root whose path no longer names the
 * directory it watched had a filesystem mounted or unmounted at or above
 * it (an unmount of the root's own filesystem also comes as IN_UNMOUNT,
 * one of a bind mount does not): it is looked for again at its path, as
 * a missing root is. Found, the folder there is the root now (a drive
 * mounted at it), watched and walked. Not found, or an empty folder where
 * its notes were, it is missing with its notes kept, as for an unmount.
 * Missing roots are looked for too: a drive mounted at their path brings
 * them back now, not at the next rescan. */
static void on_mounts_changed(uv_poll_t *h, int status, int events) {
        struct daemon *d = h->data;
        bool has_moved_root = false;

        (void) events;
        if (status < 0) {
                log_warning("Failed to follow the mount table: %s; mounts are noticed every rescan_interval_s",
                            uv_strerror(status));
                uv_poll_stop(h);
                return;
        }
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                if (!root->path || root_is_in_place(root))
                        continue;
                has_moved_root = true;
                relocate_root(d, root);
        }
        if (has_moved_root)
                watch_ancestors(d);
        follow_mounts_below_roots(d);
        (void) look_for_missing_roots(d);
}

static void watch_mounts(struct daemon *d) {
        d->mounts_fd = -1;
#ifdef __linux__
        /* Pollable since Linux 2.6.30: a change to the mount namespace's
         * table is a priority event (proc(5)); poll() consumes it. */
        int fd = open(MOUNT_TABLE_PATH, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                log_debug_errno(errno, "Failed to open /proc/self/mountinfo (mounts are noticed every "
                                       "rescan_interval_s): %m");
                return;
        }
        int r = uv_poll_init(d->loop, &d->mounts_poll, fd);
        if (r < 0) {
                log_debug("Failed to poll /proc/self/mountinfo: %s", uv_strerror(r));
                close(fd);
                return;
        }
        /* From here the handle is closed at shutdown, and fd after the loop. */
        d->mounts_poll.data = d;
        d->mounts_fd = fd;
        if (mount_table_read(&d->mounts) < 0)
                log_debug("Failed to read " MOUNT_TABLE_PATH);
        r = uv_poll_start(&d->mounts_poll, UV_PRIORITIZED, on_mounts_changed);
        if (r < 0)
                log_debug("Failed to poll /proc/self/mountinfo: %s", uv_strerror(r));
#else
        (void) on_mounts_changed; /* no mount table to poll: unused */
#endif
}

/* Missing roots and unwatched directories, looked at again. */
static void rescan_cb(uv_timer_t *t) {
        struct daemon *d = t->data;
        bool is_pending = look_for_missing_roots(d);

        /* The whole tree of each, not just the directory: directories made
         * below it while it was unwatched raised no event, and once it is
         * watched again no rescan would look at them. Those the limit
         * still keeps out are noted again (watch_tree). */
        char **unwatched = TAKE_PTR(d->unwatched);
        size_t n_unwatched = d->n_unwatched;
        d->n_unwatched = 0;
        for (size_t i = 0; i < n_unwatched; i++) {
                char *dir = unwatched[i];
                const char *rel;
                struct root *root = find_root(d, dir, &rel);
                forget_ignores(d, dir);
                if (root) {
                        watch_tree(d, root, dir, false);
                        (void) queue_sync_dir(d, root->namespace, root->path, dir);
                }
                free(dir);
        }
        free(unwatched);
        if (d->n_unwatched == 0)
                d->has_logged_watch_limit = false;
        if (!is_pending && d->n_unwatched == 0)
                uv_timer_stop(&d->rescan_timer);
}

/* The rescan timer runs only while something needs it: an idle daemon
 * with everything watched never wakes up. */
static void arm_rescan(struct daemon *d) {
        if (!uv_is_active((uv_handle_t *) &d->rescan_timer)) {
                uint64_t ms = (uint64_t) d->cfg.rescan_interval_s * 1000;
                uv_timer_start(&d->rescan_timer, rescan_cb, ms, ms);
        }
}

static void build_rules(struct daemon *d) {
        d->rules = (struct scan_rules){
                .extensions = d->cfg.extensions,
                .n_extensions = d->cfg.n_extensions,
                .ignore_globs = d->cfg.ignore_globs,
                .n_ignore_globs = d->cfg.n_ignore_globs,
        };
}

/* Whether path, the folder at a root's configured path, is empty while
 * the index holds notes below it (docs/ROOTS.md). The indexer thread owns
 * the writing connection, so this asks through a short-lived reader: only
 * for an empty folder, at start, on a reload and while a root is missing. */
static bool is_empty_where_notes_are(struct daemon *d, const struct root *root, const char *path) {
        struct store *s = NULL;

        if (dir_is_empty(path) <= 0)
                return false;
        /* A database that cannot be read now cannot be written either:
         * the walk that follows drops nothing. */
        if (store_open(d->db_path, &(struct store_options){ .flags = STORE_READONLY }, &s) < 0)
                return false;
        int r = store_tree_has_rows(s, root->namespace, path);
        store_close(s);
        return r > 0;
}

static bool is_in(char *const *paths, size_t n, const char *path) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(paths[i], path) == 0)
                        return true;
        return false;
}

/* Look for root at its configured path; when found, root->path and its
 * directory are set. Not found: nothing there, or only what an unmount
 * left behind. Empty: an empty folder where notes were indexed from, which
 * quired did not see emptied (unless its path is one of watched, the
 * roots watched until this reload: quired saw every note go). */
static enum root_found root_locate(struct daemon *d, struct root *root, char *const *watched, size_t n_watched) {
        struct stat st;
        char *path = realpath(root->configured, NULL);

        if (!path || stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || left_behind_has(d, root->configured, &st)) {
                free(path);
                return ROOT_NOT_FOUND;
        }
        if (!is_in(watched, n_watched, path) && is_empty_where_notes_are(d, root, path)) {
                free(path);
                return ROOT_EMPTY;
        }
        left_behind_forget(d, root->configured);
        root->path = path;
        root->dev = st.st_dev;
        root->ino = st.st_ino;
        /* Its notes stay kept while it is restored (restore_cb), through
         * the walk the caller queues: at its real path from now on. */
        if (root->keeps_notes) {
                begin_restoring(d, root);
                send_kept_notes(d);
        }
        return ROOT_FOUND;
}

static void roots_free(struct daemon *d) {
        for (size_t i = 0; i < d->n_roots; i++)
                free(d->roots[i].path);
        free(d->roots);
        d->roots = NULL;
        d->n_roots = 0;
}

/* Resolve the configured roots; missing ones are retried, not fatal.
 * present: the realpaths of the roots watched until now (a reload);
 * restoring: those of them that were being restored, which go on. */
static int roots_from_config(struct daemon *d, char *const *present, size_t n_present, char *const *restoring,
                             size_t n_restoring) {
        d->roots = calloc(d->cfg.n_roots + 1, sizeof *d->roots);
        if (!d->roots)
                return -ENOMEM;
        d->n_roots = d->cfg.n_roots;
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *root = &d->roots[i];
                root->configured = d->cfg.roots[i].path;
                root->namespace = d->cfg.roots[i].namespace;
                switch (root_locate(d, root, present, n_present)) {
                case ROOT_FOUND:
                        if (is_in(restoring, n_restoring, root->path))
                                begin_restoring(d, root);
                        continue;
                case ROOT_NOT_FOUND:
                        root->keeps_notes = true;
                        /* Not "gone": it may be on a drive or a share not
                         * mounted yet. Its notes stay (docs/ROOTS.md). */
                        log_warning("Root %s is missing or not a directory; its notes stay in the index, and it is "
                                    "looked for every %u s",
                                    root->configured, d->cfg.rescan_interval_s);
                        break;
                case ROOT_EMPTY:
                        root->keeps_notes = true;
                        log_warning("Root %s is an empty folder, but notes were indexed from it (a drive not "
                                    "mounted?); they stay in the index, and it is looked for every %u s",
                                    root->configured, d->cfg.rescan_interval_s);
                        break;
                }
                arm_rescan(d);
        }
        send_kept_notes(d);
        return 0;
}

static void watch_all_roots(struct daemon *d) {
        for (size_t i = 0; i < d->n_roots; i++)
                if (d->roots[i].path)
                        watch_tree(d, &d->roots[i], d->roots[i].path, false);
}

static void close_handle(uv_handle_t *h) {
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

static void shutdown_daemon(struct daemon *d, const char *why) {
        if (d->is_stopping)
                return;
        d->is_stopping = true;
        log_info("Stopping (%s)", why);
        notify_stopping();
        d->state = "stopping";
        write_state_file(d, true);
        /* Pending changes are not flushed: the next start's reconcile
         * finds them by their mtime, so nothing is lost by leaving now. */
        search_server_stop(d->search_server);
        d->search_server = NULL;
        watcher_free(d->watcher);
        d->watcher = NULL;
        debounce_free(d->debounce);
        d->debounce = NULL;
        indexer_stop(d->indexer); /* finishes the batch in progress */
        d->indexer = NULL;
        close_handle((uv_handle_t *) &d->sigterm);
        close_handle((uv_handle_t *) &d->sigint);
        close_handle((uv_handle_t *) &d->sighup);
        close_handle((uv_handle_t *) &d->rescan_timer);
        close_handle((uv_handle_t *) &d->restore_timer);
        close_handle((uv_handle_t *) &d->retry_timer);
        close_handle((uv_handle_t *) &d->watchdog_timer);
        close_handle((uv_handle_t *) &d->extend_timer);
        close_handle((uv_handle_t *) &d->status_timer);
        close_handle((uv_handle_t *) &d->pending_timer);
        if (d->mounts_fd >= 0)
                close_handle((uv_handle_t *) &d->mounts_poll);
}

/* Whether cfg lists a root that resolves to path, in namespace ns. */
static bool config_has_root(const struct config *cfg, const char *path, const char *ns) {
        for (size_t i = 0; i < cfg->n_roots; i++) {
                _cleanup_free_ char *resolved = realpath(cfg->roots[i].path, NULL);
                if (resolved && strcmp(resolved, path) == 0 && strcmp(cfg->roots[i].namespace, ns) == 0)
                        return true;
        }
        return false;
}

/* Where the notes of a missing root are stored: the realpath its path
 * would have, the longest part of it that exists resolved and the rest as
 * written (a symlink in the missing part is not known: its notes would be
 * under its target). NULL on ENOMEM. */
static char *missing_root_realpath(const char *configured) {
        _cleanup_free_ char *abs = NULL;
        size_t len;

        if (configured[0] == '/')
                abs = strdup(configured);
        else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (cwd && asprintf(&abs, "%s/%s", cwd, configured) < 0)
                        abs = NULL;
        }
        if (!abs)
                return NULL;
        len = strlen(abs);
        while (len > 1 && abs[len - 1] == '/')
                abs[--len] = '\0';
        for (size_t cut = len; cut > 0; cut = path_parent_len(abs, cut)) {
                _cleanup_free_ char *head = strndup(abs, cut);
                _cleanup_free_ char *resolved = head ? realpath(head, NULL) : NULL;
                const char *rest = abs + cut;
                char *joined;

                if (!resolved)
                        continue;
                /* One slash between the two: "/" ends in one already. */
                bool ends_in_slash = resolved[strlen(resolved) - 1] == '/';
                if (ends_in_slash && *rest == '/')
                        rest++;
                if (asprintf(&joined, "%s%s%s", resolved, !ends_in_slash && *rest && *rest != '/' ? "/" : "",
                             rest) < 0)
                        return NULL;
                return joined;
        }
        return TAKE_PTR(abs);
}

/* Tells the indexer where the notes of the roots that keep them are: a
 * missing one's, which a walk of a root around it would find empty or
 * gone, and a restoring one's, which its own walks may find half copied
 * back (docs/ROOTS.md). */
static void send_kept_notes(struct daemon *d) {
        _cleanup_free_ char **dirs = calloc(d->n_roots + 1, sizeof *dirs);
        _cleanup_free_ const char **namespaces = calloc(d->n_roots + 1, sizeof *namespaces);
        size_t n = 0;
        int r = dirs && namespaces ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < d->n_roots; i++) {
                const struct root *root = &d->roots[i];
                if (!root->keeps_notes)
                        continue;
                dirs[n] = root->path ? strdup(root->path) : missing_root_realpath(root->configured);
                if (dirs[n])
                        namespaces[n++] = root->namespace;
                else
                        r = -ENOMEM;
        }
        /* The indexer starts with none: nothing to say until a root goes
         * missing (each start would wake its thread for nothing). */
        if (r == 0 && (n > 0 || d->has_sent_kept_notes)) {
                r = indexer_set_kept(d->indexer, (const char *const *) dirs, namespaces, n);
                d->has_sent_kept_notes = true;
        }
        if (r < 0)
                log_error_errno(r, "Failed to tell the indexer which roots keep their notes: %m");
        for (size_t i = 0; i < n; i++)
                free(dirs[i]);
}

/* A root missing when the configuration is reloaded and no longer in it
 * (same configured path, same namespace): its notes were kept only because
 * it might come back (docs/ROOTS.md); now they go, as a present root's do. */
static void drop_missing_root_if_unconfigured(struct daemon *d, const struct config *next, const struct root *old) {
        for (size_t i = 0; i < next->n_roots; i++)
                if (strcmp(next->roots[i].path, old->configured) == 0 &&
                    strcmp(next->roots[i].namespace, old->namespace) == 0)
                        return;
        _cleanup_free_ char *path = missing_root_realpath(old->configured);
        if (!path) {
                log_error_errno(-ENOMEM, "Failed to drop the notes of %s: %m", old->configured);
                return;
        }
        log_info("Root %s is no longer configured; dropping its notes from the index", path);
        left_behind_forget(d, old->configured);
        int r = indexer_drop_tree(d->indexer, old->namespace, path);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s: %m", path);
}

/* The database, the watch backend, the size cap and the indexer's
 * priority are what the running daemon was built on at start: a reload
 * that changes one says so and keeps the running value, so that d->cfg
 * stays what is in effect. */
static void keep_start_settings(struct config *running, struct config *next) {
        const char *file = next->config_path ? next->config_path : "the configuration";
        const char *a = running->db_path, *b = next->db_path;

        if ((a && b) ? strcmp(a, b) != 0 : a != b) {
                log_warning("The database changed in %s; it takes effect when quired restarts", file);
                /* Swapped: the running path stays, the new one goes with the old configuration. */
                char *t = running->db_path;
                running->db_path = next->db_path;
                next->db_path = t;
        }
        if (running->backend != next->backend) {
                log_warning("The watch backend changed in %s; it takes effect when quired restarts", file);
                next->backend = running->backend;
        }
        if (running->max_file_bytes != next->max_file_bytes) {
                log_warning("max_file_size changed in %s; it takes effect when quired restarts", file);
                next->max_file_bytes = running->max_file_bytes;
        }
        if (running->indexer_priority != next->indexer_priority) {
                log_warning("indexer_priority changed in %s; it takes effect when quired restarts", file);
                next->indexer_priority = running->indexer_priority;
        }
}

static void reload(struct daemon *d) {
        struct config cfg = { 0 };
        const char *state = d->state;
        int r;

        log_info("Reloading %s", d->cfg.config_path ? d->cfg.config_path : "the configuration");
        notify_reloading();
        set_state(d, "reloading");
        optind = 0; /* glibc: a full rescan of argv */
        r = config_load(d->argc, d->argv, &cfg);
        if (r < 0) {
                log_warning("Keeping the current configuration");
                config_done(&cfg);
                /* Back to where we were: during the first reconcile READY=1
                 * is still the reconcile's to send (on_report). */
                set_state(d, state);
                if (d->is_ready)
                        notify_ready();
                return;
        }
        keep_start_settings(&d->cfg, &cfg);
        /* Settled changes go first, under the old rules and roots. */
        debounce_flush_all(d->debounce);
        /* Roots watched until now are not looked at as if found at start:
         * one emptied while watched is empty on evidence. */
        _cleanup_free_ char **present = calloc(d->n_roots + 1, sizeof *present);
        _cleanup_free_ char **restoring = calloc(d->n_roots + 1, sizeof *restoring); /* borrowed from present */
        size_t n_present = 0, n_restoring = 0;
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *old = &d->roots[i];
                if (!old->path) {
                        drop_missing_root_if_unconfigured(d, &cfg, old);
                        continue;
                }
                watcher_remove_tree(d->watcher, old->path);
                /* A root no longer configured (same folder, same namespace)
                 * takes its notes out of the index with it. */
                if (!config_has_root(&cfg, old->path, old->namespace)) {
                        log_info("Root %s is no longer configured; dropping its notes from the index", old->path);
                        r = indexer_drop_tree(d->indexer, old->namespace, old->path);
                        if (r < 0)
                                log_error_errno(r, "Failed to queue %s: %m", old->path);
                }
                if (present && restoring && old->is_restoring)
                        restoring[n_restoring++] = old->path;
                if (present)
                        present[n_present++] = TAKE_PTR(old->path);
        }
        roots_free(d);
        config_done(&d->cfg);
        d->cfg = cfg;
        build_rules(d);
        ignore_cache_clear(d->ignores);
        debounce_set_timing(d->debounce, d->cfg.settle_ms, d->cfg.max_delay_ms);
        r = indexer_set_rules(d->indexer, &d->rules);
        if (r == 0)
                r = roots_from_config(d, present, n_present, restoring, n_restoring);
        for (size_t i = 0; i < n_present; i++)
                free(present[i]);
        if (r < 0) {
                log_error_errno(r, "Failed to apply the new configuration: %m");
                return;
        }
        watch_all_roots(d);
        watch_ancestors(d);
        d->is_ready = false;
        reconcile_all(d);
        d->ready_barrier = ++d->barrier_seq;
        if (indexer_barrier(d->indexer, d->ready_barrier) < 0)
                d->ready_barrier = 0;
}

static void signal_cb(uv_signal_t *s, int signum) {
        struct daemon *d = s->data;

        if (signum == SIGHUP)
                reload(d);
        else
                shutdown_daemon(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int run(struct daemon *d) {
        struct store *store = NULL;
        int r;

        d->db_path = d->cfg.db_path ? strdup(d->cfg.db_path) : store_default_path();
        if (!d->db_path)
                return -ENOMEM;
        const char *db_path = d->db_path;
        r = store_open(db_path, NULL, &store);
        if (r < 0)
                return r;
        /* One daemon per database: two would index every change twice. */
        long other_pid = 0;
        r = daemon_state_open(db_path, &d->state_file, &other_pid);
        if (r == -EBUSY) {
                store_close(store);
                log_error("Another quired (pid %ld) is running on %s", other_pid, db_path);
                return -EALREADY;
        }
        if (r < 0)
                log_warning_errno(r, "Failed to create the daemon state file of %s (quire status will not see "
                                     "this daemon): %m", db_path);
        d->state = "starting";
        write_state_file(d, true);
        r = search_server_start(db_path, &d->search_server);
        if (r == -ENOENT)
                log_debug("No XDG_RUNTIME_DIR: searches are not answered by quired");

        build_rules(d);
        struct document_options doc = {
                .chunker = { .min_bytes = CHUNKER_MIN_BYTES_DEFAULT, .max_bytes = CHUNKER_MAX_BYTES_DEFAULT },
                .max_file_bytes = d->cfg.max_file_bytes,
        };
        uv_timer_t *timers[] = { &d->rescan_timer, &d->restore_timer, &d->retry_timer, &d->watchdog_timer,
                                 &d->extend_timer, &d->status_timer, &d->pending_timer };
        for (size_t i = 0; i < ELEMENTSOF(timers); i++) {
                uv_timer_init(d->loop, timers[i]);
                timers[i]->data = d;
        }
        d->max_waiting = INDEXER_MAX_WAITING;
        d->restore_quiet_ms = RESTORE_QUIET_MS;
        const char *restore_quiet = getenv("QUIRE_TEST_RESTORE_QUIET_MS"); /* test-only */
        if (restore_quiet && atoi(restore_quiet) > 0)
                d->restore_quiet_ms = (unsigned) atoi(restore_quiet);
        const char *max_waiting = getenv("QUIRE_TEST_MAX_QUEUE"); /* test-only */
        if (max_waiting && atoi(max_waiting) > 0)
                d->max_waiting = (size_t) atoi(max_waiting);
        r = cookie_table_new(&d->cookies);
        if (r < 0) {
                store_close(store);
                return log_error_errno(r, "Failed to start: %m");
        }
        r = indexer_start(d->loop, store, &doc, &d->rules, d->cfg.indexer_priority == INDEXER_PRIORITY_IDLE,
                          on_report, d, &d->indexer);
        if (r < 0) {
                store_close(store);
                return log_error_errno(r, "Failed to start the indexer thread: %m");
        }
        r = watcher_new(d->loop, d->cfg.backend, on_watch_event, d, &d->watcher);
        if (r < 0) {
                log_error_errno(r, "Failed to set up file watching: %m");
                shutdown_daemon(d, "setup failed");
                uv_run(d->loop, UV_RUN_DEFAULT);
                return r;
        }
        r = debounce_new(d->loop, d->cfg.settle_ms, d->cfg.max_delay_ms, DEBOUNCE_MAX_PATHS, on_settled,
                         on_debounce_overflow, d, &d->debounce);
        if (r == 0)
                r = ignore_cache_new(IGNORE_CACHE_DIRS, &d->ignores);
        if (r == 0)
                r = roots_from_config(d, NULL, 0, NULL, 0);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %m");
                shutdown_daemon(d, "setup failed");
                uv_run(d->loop, UV_RUN_DEFAULT);
                return r;
        }

        uv_signal_t *signals[] = { &d->sigterm, &d->sigint, &d->sighup };
        int signums[] = { SIGTERM, SIGINT, SIGHUP };
        for (size_t i = 0; i < 3; i++) {
                uv_signal_init(d->loop, signals[i]);
                signals[i]->data = d;
                uv_signal_start(signals[i], signal_cb, signums[i]);
        }

        /* Watches go in before the reconcile walks: a change made during
         * the walk is then reported, not missed. */
        watch_mounts(d);
        watch_all_roots(d);
        watch_ancestors(d);
        reconcile_all(d);
        log_info("Watching %zu directories; reconciling with %s", watcher_count(d->watcher), db_path);
        set_state(d, "reconciling");

        /* Timers that run only under systemd: without NOTIFY_SOCKET and
         * WATCHDOG_USEC an idle daemon has nothing that wakes it. */
        if (getenv("NOTIFY_SOCKET"))
                uv_timer_start(&d->extend_timer, extend_cb, 0, 1000);
        d->watchdog_usec = notify_watchdog_usec();
        if (d->watchdog_usec > 0) {
                uint64_t ms = d->watchdog_usec / 2000;
                uv_timer_start(&d->watchdog_timer, watchdog_cb, ms ? ms : 1, ms ? ms : 1);
        }

        uv_run(d->loop, UV_RUN_DEFAULT);
        return 0;
}

int main(int argc, char **argv) {
        struct daemon d = { .argc = argc, .argv = argv, .mounts_fd = -1 };
        int r;

        log_setup("quired");
        r = config_load(argc, argv, &d.cfg);
        if (r < 0) {
                config_done(&d.cfg);
                return r == -EINVAL ? 2 : 1;
        }
        if (d.cfg.is_help) {
                fputs(config_usage, stdout);
                config_done(&d.cfg);
                return 0;
        }
        if (d.cfg.is_version) {
                printf("quired %s\n", QUIRE_VERSION);
                config_done(&d.cfg);
                return 0;
        }
        log_set_max_level(d.cfg.log_level);
        signal(SIGPIPE, SIG_IGN);
        (void) store_use_threads(); /* before any thread or connection */

        /* Only now: the loop allocates, and only this path closes it. */
        d.loop = uv_default_loop();
        if (!d.loop) {
                log_error("Failed to create the event loop");
                config_done(&d.cfg);
                return 1;
        }
        r = run(&d);

        search_server_stop(d.search_server);
        daemon_state_close(d.state_file);
        ignore_cache_free(d.ignores);
        cookie_table_free(d.cookies);
        free(d.last_path);
        roots_free(&d);
        for (size_t i = 0; i < d.n_unwatched; i++)
                free(d.unwatched[i]);
        free(d.unwatched);
        for (size_t i = 0; i < d.n_left_behind; i++)
                free(d.left_behind[i].configured);
        free(d.left_behind);
        free(d.db_path);
        if (d.mounts_fd >= 0)
                close(d.mounts_fd);
        mount_table_done(&d.mounts);
        config_done(&d.cfg);
        int rc = uv_loop_close(d.loop);
        if (rc < 0)
                log_debug("Loop closed with handles left: %s", uv_strerror(rc));
        /* 3: another daemon has the database; the unit does not restart
         * on it (RestartPreventExitStatus), it would only fail again. */
        return r == -EALREADY ? 3 : r < 0 ? 1 : 0;
}
