/* Watch backends behind one small interface: the loop gets events about
 * paths, already decoded and (where the kernel tells) paired, and decides
 * what they mean for the index. Two backends: inotify (one fd under a
 * uv_poll_t; sees rename cookies and queue overflow) and fs-event
 * (libuv's uv_fs_event_t per directory, the kqueue/FSEvents path of BSD and
 * macOS). Both run on the loop thread and never touch the disk beyond the
 * watch calls themselves. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"

enum watch_event_kind {
        /* Something happened to path (created, written and closed, attributes,
         * or the backend cannot tell what): look at it again. For a directory
         * (is_dir) that was created or moved in: watch it and scan it. */
        WATCH_CHANGED,
        /* path is gone (deleted, or moved out of every watched directory). */
        WATCH_REMOVED,
        /* old_path was renamed to path, both under watched directories
         * (inotify pairs IN_MOVED_FROM/IN_MOVED_TO by cookie). For a
         * directory the backend has already renamed its own watches. */
        WATCH_MOVED,
        /* The kernel dropped events (IN_Q_OVERFLOW): reconcile everything. */
        WATCH_OVERFLOW,
        /* A watched directory itself went away (deleted); its watch is
         * gone. path is the directory. Also said of a root's ancestor
         * (watcher_set_ancestors) that was renamed or deleted: every root
         * below path is no longer where it was. */
        WATCH_DIR_GONE,
        /* The filesystem holding path (a watched directory or a root's
         * ancestor) was unmounted: its watch is gone, and nothing on it was
         * deleted (inotify's IN_UNMOUNT, sent for every watch on it; the
         * kernel sends it only when the filesystem itself goes, not when
         * one of several mounts of it does). fs-event cannot tell an
         * unmount from a deletion and never says this. */
        WATCH_UNMOUNTED,
        /* An awaited path (watcher_set_ancestors) was created, deleted,
         * or renamed in or out of its directory: path is the awaited
         * path. fs-event on kqueue cannot name the entry, and says this of
         * every path awaited in a directory where anything changed. */
        WATCH_AWAITED,
};

struct watch_event {
        enum watch_event_kind kind;
        const char *path;     /* absolute; valid during the callback only */
        const char *old_path; /* WATCH_MOVED only */
        bool is_dir;          /* known from the event (IN_ISDIR); false when unknown */
};

typedef void (*watch_event_cb)(const struct watch_event *ev, void *userdata);

struct watcher;

/* Create a watcher of the given kind on loop. Events go to event_cb on the
 * loop thread. Returns 0 or -errno (e.g. -EMFILE from inotify_init1). */
int watcher_new(uv_loop_t *loop, enum watch_backend_kind kind, watch_event_cb event_cb, void *userdata,
                struct watcher **ret);

/* Watch one directory (not recursive: the caller walks the tree, adding a
 * watch before listing each directory so nothing created in between is
 * missed). Adding a directory already watched is a no-op returning 0.
 * Returns -ENOSPC when the watch limit is reached (inotify's
 * fs.inotify.max_user_watches; QUIRE_TEST_MAX_WATCHES=N simulates a limit
 * of N for tests), -ENOENT/-ENOTDIR if it vanished, other -errno. */
int watcher_add_dir(struct watcher *w, const char *path);

/* Stop watching path and every watched directory below it (after it was
 * moved out of the roots, or a root is dropped on reload). */
void watcher_remove_tree(struct watcher *w, const char *path);

/* Watch the directories above the roots for their own rename or deletion
 * only: when a root moves away with a parent (mv ~/p ~/p2 for the root
 * ~/p/notes) the root's own watch hears nothing. The set is every proper
 * ancestor of the given roots (absolute, resolved) that is not at or below
 * one of them (those a root's own watches cover); it replaces the previous
 * set, and an ancestor in both is checked against the directory at its
 * path now (after an overflow its watch may follow one moved elsewhere).
 * An ancestor that goes is reported once as WATCH_DIR_GONE (or
 * WATCH_UNMOUNTED) and leaves the set. inotify watches them with IN_MOVE_SELF|IN_DELETE_SELF alone
 * (nothing is delivered for changes inside them); fs-event gets every
 * change inside them from libuv and looks only at the ones that name the
 * ancestor itself.
 *
 * awaited: paths (absolute, their directory resolved) whose entry is
 * waited for: a missing root's first missing part, a symlink on the way
 * to a root. Their directories are watched as ancestors are, and for
 * entries of those names created, deleted or renamed in or out as well
 * (WATCH_AWAITED); a directory watched in full is left out (its own
 * events say as much). Directories that cannot be watched (no read
 * permission, gone) are skipped. Returns 0 or -ENOMEM. */
int watcher_set_ancestors(struct watcher *w, const char *const *roots, size_t n_roots, const char *const *awaited,
                          size_t n_awaited);

/* Number of directories watched now. */
size_t watcher_count(const struct watcher *w);

/* Whether this backend pairs renames (WATCH_MOVED); fs-event does not and
 * reports both ends as WATCH_CHANGED. */
bool watcher_pairs_renames(const struct watcher *w);

/* Test-only: QUIRE_TEST_OVERFLOW_AFTER=N makes the inotify backend behave
 * as if the kernel queue overflowed after N events: it drops the rest of
 * that read and reports WATCH_OVERFLOW once. */

/* Close every handle; the watcher is freed once the loop has run the close
 * callbacks (uv_run after this). Safe on NULL. */
void watcher_free(struct watcher *w);
