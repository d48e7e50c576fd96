/* What a watch event means for the index: a note changed (debounced),
 * a folder appeared, went or moved, a root went with it, a .quireignore
 * changed the rules, a sync cookie asks for a barrier, events were lost. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cookies.h"
#include "daemon-state.h"
#include "debounce.h"
#include "ignore.h"
#include "indexer.h"
#include "log.h"
#include "macro.h"
#include "quired.h"
#include "watch.h"

/* A sync cookie (cookies.h) appeared at the top of a root: every change
 * made before it has had its event by now. Push whatever waits out of the
 * debounce at once and put a barrier behind it in the indexer's queue;
 * the cookie is acknowledged when the barrier is reached (on_report). */
static void sync_cookie(struct daemon *d, const char *name) {
        if (cookie_table_knows(d->cookies, name))
                return; /* its close or deletion, or a second root's event */
        debounce_flush_all(d->debounce);
        /* A missing root back in the meantime (a vault cloned again) is
         * walked before the barrier: looking is a stat per missing root
         * (and a look at the index for one that is an empty folder). */
        (void) look_for_missing_roots(d);
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
                        follow_root_paths(d);
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
        if (verdict == SCAN_TOO_LONG)
                log_warning("Skipping a path longer than %d bytes: %s", PATH_MAX, ev->path);
        if (verdict != SCAN_KEEP && (verdict != SCAN_BAD_NAME || is_dir))
                return;
        if (is_dir)
                adopt_dir(d, root, ev->path);
        else
                mark_path(d, root, ev->path);
}

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
                follow_root_paths(d);
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
                follow_root_paths(d);
        }
        if (arrived_root && arrived_root->path)
                adopt_dir(d, arrived_root, arrived_root->path);
}

static void on_dir_gone(struct daemon *d, const struct watch_event *ev) {
        const char *rel;
        struct root *holder = find_root(d, ev->path, &rel);
        bool has_lost_root = false;

        /* The filesystem under the root went (fs-event says no more than
         * that its directories are gone): missing, notes kept. */
        if (holder && !dev_is_mounted(holder->dev)) {
                lose_root(d, holder, true);
                follow_root_paths(d);
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
                follow_root_paths(d);
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
                follow_root_paths(d);
        /* A filesystem mounted below a root that stays: its notes stay as
         * well (kept from when the mount table shows it gone: presence.c,
         * follow_mounts_below_roots); what the path names now, the mount
         * point's own directory, is watched in place of what went. */
        struct root *holder = find_root(d, ev->path, &rel);
        if (holder && *rel) {
                watcher_remove_tree(d->watcher, ev->path);
                watch_tree(d, holder, ev->path, false);
        }
}

/* Events were lost, a root's own move or its ancestors' among them: the
 * paths quired has for them are not to be trusted. A root whose path no
 * longer names the directory watched is gone (the walk of its path finds
 * its notes gone, as the reconcile would), unless its filesystem is not
 * mounted any more: then the overflow swallowed an unmount, and its
 * notes stay (docs/ROOTS.md). The ancestors' watches are checked against
 * the directories at their paths now (watch.h); and the roots that stay
 * are walked and watched again, the notes of a filesystem unmounted below
 * one kept only while its folder is still there. */
static void on_overflow(struct daemon *d) {
        forget_unmounted_below(d, "/");
        for (size_t i = 0; i < d->n_roots; i++)
                if (d->roots[i].path && !root_is_in_place(&d->roots[i]))
                        lose_root(d, &d->roots[i], !dev_is_mounted(d->roots[i].dev));
        /* A link on the way retargeted, a missing root made: lost too. */
        follow_root_paths(d);
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
        /* A folder the rules no longer watch in full may hold an awaited
         * entry, which its full watch used to report. */
        watch_ancestors(d);
        int r = queue_sync_dir(d, root->namespace, root->path, dir);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s: %m", dir);
}

void on_watch_event(const struct watch_event *ev, void *userdata) {
        struct daemon *d = userdata;

        if (d->is_stopping)
                return;
        if (ev->kind == WATCH_AWAITED || is_state_file_path(d, ev->path) || is_state_file_path(d, ev->old_path))
                check_state_file(d);
        if (d->is_stopping) /* another quired took the database */
                return;
        if (ev->kind == WATCH_AWAITED) {
                /* Both, whichever was named: kqueue names no entry, and
                 * says a change in a folder once for all awaited there. */
                log_debug("%s changed, on the way to a root", ev->path);
                follow_root_paths(d);
                arm_pending_timer(d);
                return;
        }
        if (handle_cookie(d, ev))
                return;
        note_restoring_event(d, ev);
        if (ev->kind != WATCH_OVERFLOW && ev->kind != WATCH_UNMOUNTED) {
                forget_unmounted_below(d, ev->path);
                forget_unmounted_below(d, ev->old_path);
        }
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
        case WATCH_AWAITED:
                break; /* above */
        }
        /* An awaited path in a folder watched in full: its own events. */
        if (is_about_awaited(d, ev))
                follow_root_paths(d);
        arm_pending_timer(d);
}

void on_settled(size_t root, char **paths, size_t n_paths, uint64_t oldest_ms, void *userdata) {
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

void on_debounce_overflow(void *userdata) {
        struct daemon *d = userdata;
        log_warning("More than %d changed paths waiting; reconciling every root instead", DEBOUNCE_MAX_PATHS);
        d->n_overflows++;
        reconcile_all(d);
}
