/* The inotify watch backend: one inotify fd under a uv_poll_t, one watch per
 * directory, a wd -> directory table beside the path table, and the decoding
 * of inotify(7) events into watch.h's: rename cookies paired into
 * WATCH_MOVED, queue overflow into WATCH_OVERFLOW, dead watches into
 * WATCH_DIR_GONE, or WATCH_UNMOUNTED when their filesystem went. Linux
 * only; the loop gets the same events from fs-event elsewhere, minus the
 * pairing and the unmounts. */
#ifdef __linux__

#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "util.h"
#include "watch-internal.h"

/* IN_ONLYDIR|IN_DONT_FOLLOW: we only ever watch directories, and never
 * through a symlink (symlinks are not followed out of a root). IN_EXCL_UNLINK:
 * no events for files unlinked while still open. */
#define INOTIFY_DIR_MASK                                                                                  \
        (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |  \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

/* A root's ancestor: only its own rename or deletion matters. */
#define INOTIFY_ANCESTOR_MASK (IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
/* A directory with awaited entries: theirs too. */
#define INOTIFY_AWAITED_MASK (INOTIFY_ANCESTOR_MASK | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

/* rename(2) queues IN_MOVED_FROM and IN_MOVED_TO one after the other
 * (fsnotify_move), so a read(2) can land between the two; the partner then
 * follows within microseconds. Waiting this long before calling the source
 * moved out keeps such a rename one WATCH_MOVED instead of a delete and a
 * full re-read, and costs moved-out files 10 ms. watchman's inotify watcher
 * holds unmatched moves for a short while in the same way. */
#define PAIR_TIMEOUT_MS 10

/* Room for hundreds of events per read(2); each is at most
 * sizeof(struct inotify_event) + NAME_MAX + 1 bytes (inotify(7)). */
#define READ_BUFFER_SIZE (64 * 1024)

struct inotify_dir {
        struct watch_dir dir; /* first: the path table holds &dir */
        int wd;
};

struct inotify_ancestor {
        struct outer_dir dir; /* owned */
        int wd;
};

struct inotify_watcher {
        struct watcher w; /* first */
        int fd;
        struct inotify_ancestor *ancestors; /* a few: searched in order */
        size_t n_ancestors;
        uv_poll_t poll;
        uv_timer_t pair_timer;
        unsigned n_open_handles;
        struct hash_table wds; /* wd -> struct inotify_dir */

        /* An IN_MOVED_FROM whose IN_MOVED_TO was not in the same read.
         * Invariant: while one is held nothing else has been delivered after
         * it, so event order stays the kernel's. */
        char *held_path; /* owned; NULL when nothing is held */
        uint32_t held_cookie;
        bool is_held_dir;
        uint64_t held_seq; /* bumped per hold, so the timer knows whose it is */

        unsigned long n_test_events; /* counted for QUIRE_TEST_OVERFLOW_AFTER */
        bool is_test_overflow_done;

        alignas(struct inotify_event) char buffer[READ_BUFFER_SIZE];
};

static uint64_t inotify_dir_hash_of(const void *item) {
        /* wds are small and allocated cyclically: multiply to spread them. */
        return (uint64_t) (uint32_t) ((const struct inotify_dir *) item)->wd * UINT64_C(0x9E3779B97F4A7C15);
}

static bool inotify_dir_match(const void *item, const void *key) {
        return ((const struct inotify_dir *) item)->wd == *(const int *) key;
}

static struct inotify_dir *inotify_find_wd(struct inotify_watcher *iw, int wd) {
        return hash_table_find(&iw->wds, (uint64_t) (uint32_t) wd * UINT64_C(0x9E3779B97F4A7C15),
                               inotify_dir_match, &wd);
}

static struct inotify_dir *inotify_find_path(struct inotify_watcher *iw, const char *path, size_t len) {
        return (struct inotify_dir *) watcher_find_dir(&iw->w, path, len);
}

static void inotify_dir_free(struct inotify_dir *d) {
        if (!d)
                return;
        free(d->dir.path);
        free(d);
}

static ssize_t inotify_find_ancestor_wd(struct inotify_watcher *iw, int wd);
static uint32_t inotify_ancestor_mask(const struct inotify_watcher *iw, int wd);

/* Drop d from both tables. With rm_watch also tell the kernel, which
 * otherwise keeps watching the inode wherever it went; the IN_IGNORED that
 * follows then finds no wd and says nothing (we removed it ourselves).
 * keep_wd is never removed from the kernel (a watch just handed out again),
 * nor is a watch an ancestor shares (the same inode; an awaited entry's
 * folder the rules stopped watching in full): that one keeps what the
 * ancestor asks for. */
static void inotify_dir_forget(struct inotify_watcher *iw, struct inotify_dir *d, bool rm_watch, int keep_wd) {
        hash_table_remove(&iw->w.dirs, &d->dir);
        hash_table_remove(&iw->wds, d);
        ssize_t a = rm_watch && d->wd != keep_wd ? inotify_find_ancestor_wd(iw, d->wd) : -1;
        if (a >= 0)
                (void) inotify_add_watch(iw->fd, iw->ancestors[a].dir.path, inotify_ancestor_mask(iw, d->wd));
        /* EINVAL when the kernel already dropped it (deleted, unmounted). */
        else if (rm_watch && d->wd != keep_wd && inotify_rm_watch(iw->fd, d->wd) < 0 && errno != EINVAL)
                log_debug_errno(errno, "Failed to remove inotify watch on %s, ignoring: %m", d->dir.path);
        inotify_dir_free(d);
}

static void inotify_forget_tree(struct inotify_watcher *iw, const char *path, size_t len, int keep_wd) {
        _cleanup_free_ struct watch_dir **found = NULL;
        size_t n_found;
        int r;

        r = watcher_collect_tree(&iw->w, path, len, &found, &n_found);
        if (r < 0) {
                log_error_errno(r, "Failed to drop the watches below %.*s: %m", (int) len, path);
                return;
        }
        for (size_t i = 0; i < n_found; i++)
                inotify_dir_forget(iw, (struct inotify_dir *) found[i], true, keep_wd);
}

/* A watched directory moved from old to new: rewrite its path and every
 * watched path below it. Whatever was watched at new is dead or stale (a
 * rename only replaces an empty directory), so it goes first. */
static void inotify_rename_tree(struct inotify_watcher *iw, const char *old, size_t old_len, const char *new,
                                size_t new_len, int keep_wd) {
        _cleanup_free_ struct watch_dir **found = NULL;
        size_t n_found;
        int r;

        inotify_forget_tree(iw, new, new_len, keep_wd);

        r = watcher_collect_tree(&iw->w, old, old_len, &found, &n_found);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < n_found; i++) {
                r = watcher_move_dir(&iw->w, found[i], old_len, new, new_len);
                if (r < 0)
                        goto fail;
        }
        return;
fail:
        /* Paths we cannot rewrite would be wrong on every later event. */
        log_error_errno(r, "Failed to follow the rename of %.*s, dropping its watches: %m", (int) old_len, old);
        inotify_forget_tree(iw, old, old_len, -1);
        inotify_forget_tree(iw, new, new_len, -1);
}

/* Held IN_MOVED_FROM */

static void inotify_pair_timer_cb(uv_timer_t *handle);

static void inotify_hold_move(struct inotify_watcher *iw, char *path, uint32_t cookie, bool is_dir) {
        assert(!iw->held_path);

        iw->held_path = path;
        iw->held_cookie = cookie;
        iw->is_held_dir = is_dir;
        iw->held_seq++;
        uv_timer_start(&iw->pair_timer, inotify_pair_timer_cb, PAIR_TIMEOUT_MS, 0);
}

/* The source of a rename whose target is not watched: the path left the tree. */
static void inotify_moved_out(struct inotify_watcher *iw, const char *path, bool is_dir) {
        if (is_dir)
                inotify_forget_tree(iw, path, strlen(path), -1);
        watcher_emit(&iw->w, WATCH_REMOVED, path, NULL, is_dir);
}

static void inotify_flush_held(struct inotify_watcher *iw) {
        _cleanup_free_ char *path = NULL;

        if (!iw->held_path)
                return;
        uv_timer_stop(&iw->pair_timer);
        path = TAKE_PTR(iw->held_path);
        inotify_moved_out(iw, path, iw->is_held_dir);
}

static void inotify_moved(struct inotify_watcher *iw, const char *old, const char *new, bool is_dir) {
        /* Rewrite our own paths first: the loop's callback will add and
         * scan, and must find the watches under their new names. */
        if (is_dir)
                inotify_rename_tree(iw, old, strlen(old), new, strlen(new), -1);
        watcher_emit(&iw->w, WATCH_MOVED, new, old, is_dir);
}

/* Event decoding */

static const struct inotify_event *event_next(const struct inotify_event *ev) {
        return (const struct inotify_event *) ((const char *) ev + sizeof *ev + ev->len);
}

/* ev->name is NUL-padded to ev->len (inotify(7)). */
static char *event_path(const struct inotify_dir *d, const struct inotify_event *ev) {
        return path_join(d->dir.path, d->dir.path_len, ev->name, strnlen(ev->name, ev->len));
}

/* A watch the kernel ended (deleted: kind WATCH_DIR_GONE; unmounted:
 * WATCH_UNMOUNTED): forget it, say so once. */
static void inotify_dir_gone(struct inotify_watcher *iw, struct inotify_dir *d, enum watch_event_kind kind) {
        _cleanup_free_ char *path = strdup(d->dir.path);

        inotify_dir_forget(iw, d, false, -1);
        if (!path) {
                /* Without the path the loop can only reconcile everything. */
                watcher_emit(&iw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }
        watcher_emit(&iw->w, kind, path, NULL, true);
}

static void inotify_handle_self(struct inotify_watcher *iw, struct inotify_dir *d, uint32_t mask) {
        size_t parent_len;

        /* An unmount comes as IN_UNMOUNT then IN_IGNORED, a deletion as
         * IN_DELETE_SELF then IN_IGNORED (inotify(7)); the first of the two
         * forgets the watch, so the IN_IGNORED finds none. One alone is a
         * watch the kernel dropped for no reason it told: gone. */
        if (mask & IN_UNMOUNT) {
                inotify_dir_gone(iw, d, WATCH_UNMOUNTED);
                return;
        }
        if (mask & (IN_DELETE_SELF | IN_IGNORED)) {
                inotify_dir_gone(iw, d, WATCH_DIR_GONE);
                return;
        }

        if (mask & IN_MOVE_SELF) {
                /* The kernel keeps watching the inode at its new place
                 * (inotify(7)). With a watched parent the rename itself was
                 * decoded from the parent's IN_MOVED_* (paired: our paths are
                 * already new; moved out: the watch is already gone). Without
                 * one (a root) all we learn is that our path is stale. */
                parent_len = path_parent_len(d->dir.path, d->dir.path_len);
                if (parent_len > 0 && inotify_find_path(iw, d->dir.path, parent_len))
                        return;

                _cleanup_free_ char *path = strdup(d->dir.path);
                if (!path) {
                        inotify_forget_tree(iw, d->dir.path, d->dir.path_len, -1);
                        watcher_emit(&iw->w, WATCH_OVERFLOW, NULL, NULL, false);
                        return;
                }
                inotify_forget_tree(iw, path, strlen(path), -1);
                watcher_emit(&iw->w, WATCH_DIR_GONE, path, NULL, true);
                return;
        }

        /* IN_ATTRIB on the directory itself (mode, owner): it may have become
         * readable, so have it looked at again. */
        if (mask & IN_ATTRIB) {
                _cleanup_free_ char *path = strdup(d->dir.path);
                if (path)
                        watcher_emit(&iw->w, WATCH_CHANGED, path, NULL, true);
        }
}

/* A directory entry that was deleted. If we watched it, its watch is dead
 * even when the kernel's IN_DELETE_SELF comes late (it waits for the last
 * reference to the dentry, e.g. a shell sitting in it): forget it now so a
 * new directory made under the same name gets a watch of its own. */
static void inotify_handle_delete(struct inotify_watcher *iw, const char *path, bool is_dir) {
        if (is_dir && inotify_find_path(iw, path, strlen(path))) {
                inotify_forget_tree(iw, path, strlen(path), -1);
                watcher_emit(&iw->w, WATCH_DIR_GONE, path, NULL, true);
                if (iw->w.is_closing)
                        return;
        }
        watcher_emit(&iw->w, WATCH_REMOVED, path, NULL, is_dir);
}

/* One IN_MOVED_FROM: find its IN_MOVED_TO later in this read and deliver one
 * WATCH_MOVED (the partner is marked consumed by zeroing its mask, which no
 * real event has); else hold it for the next read, unless other events
 * already follow it in this one, in which case the partner is not coming in
 * order and the source left the tree. */
static void inotify_handle_moved_from(struct inotify_watcher *iw, char *path, const struct inotify_event *ev,
                                      struct inotify_event *rest, const char *end) {
        bool is_dir = ev->mask & IN_ISDIR;
        bool is_last = true;

        for (struct inotify_event *q = rest; (const char *) q < end;
             q = (struct inotify_event *) event_next(q)) {
                struct inotify_dir *target;
                _cleanup_free_ char *new = NULL;

                if (q->mask == 0)
                        continue;
                is_last = false;
                if (!(q->mask & IN_MOVED_TO) || q->cookie != ev->cookie)
                        continue;

                target = inotify_find_wd(iw, q->wd);
                if (!target)
                        break; /* into a directory we do not watch in full: an awaited entry? */
                q->mask = 0;
                new = event_path(target, q);
                if (!new)
                        break;
                inotify_moved(iw, path, new, is_dir);
                free(path);
                return;
        }

        if (is_last) {
                inotify_hold_move(iw, path, ev->cookie, is_dir);
                return;
        }
        inotify_moved_out(iw, path, is_dir);
        free(path);
}

/* Ancestors */

static ssize_t inotify_find_ancestor_wd(struct inotify_watcher *iw, int wd) {
        for (size_t i = 0; i < iw->n_ancestors; i++)
                if (iw->ancestors[i].wd == wd)
                        return (ssize_t) i;
        return -1;
}

/* Out of the list; with rm_watch the kernel's watch goes too, unless the
 * inode is watched in full as well (it is the same watch). */
static void inotify_ancestor_forget(struct inotify_watcher *iw, size_t i, bool rm_watch) {
        struct inotify_ancestor *a = &iw->ancestors[i];

        if (rm_watch && !inotify_find_wd(iw, a->wd) && inotify_rm_watch(iw->fd, a->wd) < 0 && errno != EINVAL)
                log_debug_errno(errno, "Failed to remove inotify watch on %s, ignoring: %m", a->dir.path);
        outer_dir_done(&a->dir);
        iw->ancestors[i] = iw->ancestors[--iw->n_ancestors];
}

/* An entry created, deleted or renamed in an ancestor: said if awaited. */
static void inotify_handle_awaited(struct inotify_watcher *iw, const struct inotify_event *ev) {
        size_t name_len = strnlen(ev->name, ev->len);
        _cleanup_free_ char *path = NULL;

        for (size_t i = 0; i < iw->n_ancestors && !path; i++) {
                const struct inotify_ancestor *a = &iw->ancestors[i];
                if (a->wd == ev->wd && outer_dir_awaits(&a->dir, ev->name, name_len))
                        path = path_join(a->dir.path, strlen(a->dir.path), ev->name, name_len);
        }
        if (path)
                watcher_emit(&iw->w, WATCH_AWAITED, path, NULL, false);
}

static void inotify_handle_ancestor(struct inotify_watcher *iw, const struct inotify_event *ev) {
        ssize_t i = inotify_find_ancestor_wd(iw, ev->wd);
        _cleanup_free_ char *path = NULL;

        if (i >= 0 && ev->len > 0 && (ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))) {
                inotify_handle_awaited(iw, ev);
                return;
        }
        if (i < 0 || ev->len > 0 || !(ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_UNMOUNT | IN_IGNORED)))
                return;
        path = strdup(iw->ancestors[i].dir.path);
        /* Renamed: the kernel would follow the inode; the path is what counts. */
        inotify_ancestor_forget(iw, (size_t) i, ev->mask & IN_MOVE_SELF);
        watcher_emit(&iw->w, !path ? WATCH_OVERFLOW : ev->mask & IN_UNMOUNT ? WATCH_UNMOUNTED : WATCH_DIR_GONE, path,
                     NULL, !!path);
}

/* The mask an ancestor's inode is watched with: what every entry on that
 * watch asks for (one inode may be there under two paths, a bind mount). */
static uint32_t inotify_ancestor_mask(const struct inotify_watcher *iw, int wd) {
        uint32_t mask = INOTIFY_ANCESTOR_MASK;

        for (size_t i = 0; i < iw->n_ancestors; i++)
                if (iw->ancestors[i].wd == wd && iw->ancestors[i].dir.n_names > 0)
                        mask = INOTIFY_AWAITED_MASK;
        return mask;
}

static int inotify_set_ancestors(struct watcher *w, const struct outer_dir *dirs, size_t n_dirs) {
        struct inotify_watcher *iw = (struct inotify_watcher *) w;
        struct inotify_ancestor *a;
        size_t i = 0;
        int r = 0;

        /* Drop those no longer wanted, then add the new ones. IN_MASK_ADD
         * while the set changes, so that a directory watched in full as
         * well (the same inode under a second path) keeps its mask; the
         * masks are set exactly once the set is known. */
        while (i < iw->n_ancestors) {
                const struct outer_dir *wanted = NULL;
                int wd;

                for (size_t k = 0; k < n_dirs && !wanted; k++)
                        if (strcmp(dirs[k].path, iw->ancestors[i].dir.path) == 0)
                                wanted = &dirs[k];
                /* One kept is asked again: after events we missed (an
                 * overflow) its watch may follow a directory moved away
                 * while another one is at the path now. The kernel hands
                 * back the same wd for the same directory. */
                if (wanted) {
                        struct outer_dir copy;
                        a = &iw->ancestors[i];
                        wd = inotify_add_watch(iw->fd, a->dir.path, INOTIFY_ANCESTOR_MASK | IN_MASK_ADD);
                        if (wd >= 0 && wd != a->wd) {
                                log_debug("%s, a root's ancestor, is another directory now; rewatching", a->dir.path);
                                if (!inotify_find_wd(iw, a->wd) && inotify_rm_watch(iw->fd, a->wd) < 0 &&
                                    errno != EINVAL)
                                        log_debug_errno(errno, "Failed to remove inotify watch on %s, ignoring: %m",
                                                        a->dir.path);
                                a->wd = wd;
                        }
                        if (wd >= 0 && (r = outer_dir_copy(&copy, wanted)) == 0) {
                                outer_dir_done(&a->dir);
                                a->dir = copy;
                                i++;
                                continue;
                        }
                }
                inotify_ancestor_forget(iw, i, true);
                if (r < 0)
                        return r;
        }
        a = realloc(iw->ancestors, (iw->n_ancestors + n_dirs + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        iw->ancestors = a;
        for (size_t k = 0; k < n_dirs; k++) {
                bool is_known = false;
                int wd;

                for (i = 0; i < iw->n_ancestors && !is_known; i++)
                        is_known = strcmp(dirs[k].path, iw->ancestors[i].dir.path) == 0;
                if (is_known)
                        continue;
                wd = inotify_add_watch(iw->fd, dirs[k].path, INOTIFY_ANCESTOR_MASK | IN_MASK_ADD);
                if (wd < 0) {
                        log_debug_errno(errno, "Failed to watch %s, a root's ancestor, ignoring: %m", dirs[k].path);
                        continue;
                }
                r = outer_dir_copy(&a[iw->n_ancestors].dir, &dirs[k]);
                if (r < 0) {
                        if (!inotify_find_wd(iw, wd) && inotify_find_ancestor_wd(iw, wd) < 0)
                                inotify_rm_watch(iw->fd, wd);
                        return r;
                }
                a[iw->n_ancestors++].wd = wd;
        }
        /* Exactly what each asks for now: an entry no longer awaited stops
         * waking the loop. An inode watched in full has all of it. */
        for (i = 0; i < iw->n_ancestors; i++) {
                a = &iw->ancestors[i];
                if (inotify_find_wd(iw, a->wd))
                        continue;
                int wd = inotify_add_watch(iw->fd, a->dir.path, inotify_ancestor_mask(iw, a->wd));
                /* Another directory at the path since a moment ago: not
                 * ours; the event of the change is queued for the old one. */
                if (wd >= 0 && wd != a->wd && !inotify_find_wd(iw, wd) && inotify_find_ancestor_wd(iw, wd) < 0)
                        inotify_rm_watch(iw->fd, wd);
        }
        return 0;
}

static void inotify_handle_event(struct inotify_watcher *iw, const struct inotify_event *ev,
                                 struct inotify_event *rest, const char *end) {
        struct inotify_dir *d;
        _cleanup_free_ char *path = NULL;
        bool is_dir = ev->mask & IN_ISDIR;

        if (ev->mask & IN_Q_OVERFLOW) {
                inotify_flush_held(iw);
                log_debug("inotify queue overflowed, events were lost");
                watcher_emit(&iw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }

        if (iw->held_path) {
                if ((ev->mask & IN_MOVED_TO) && ev->cookie == iw->held_cookie &&
                    (d = inotify_find_wd(iw, ev->wd)) && (path = event_path(d, ev))) {
                        _cleanup_free_ char *old = TAKE_PTR(iw->held_path);

                        uv_timer_stop(&iw->pair_timer);
                        inotify_moved(iw, old, path, iw->is_held_dir);
                        return;
                }
                inotify_flush_held(iw);
                if (iw->w.is_closing)
                        return;
        }

        d = inotify_find_wd(iw, ev->wd);
        if (!d) {
                inotify_handle_ancestor(iw, ev);
                return; /* or queued before we dropped that watch */
        }

        if (ev->len == 0) {
                inotify_handle_self(iw, d, ev->mask);
                return;
        }

        path = event_path(d, ev);
        if (!path) {
                log_error_errno(-ENOMEM, "Failed to decode an inotify event: %m");
                watcher_emit(&iw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }

        if (ev->mask & IN_MOVED_FROM)
                inotify_handle_moved_from(iw, TAKE_PTR(path), ev, rest, end);
        else if (ev->mask & IN_DELETE)
                inotify_handle_delete(iw, path, is_dir);
        else if (ev->mask & (IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB))
                /* An unpaired IN_MOVED_TO came in from outside the tree. */
                watcher_emit(&iw->w, WATCH_CHANGED, path, NULL, is_dir);
}

static void inotify_handle_buffer(struct inotify_watcher *iw, size_t size) {
        const char *end = iw->buffer + size;
        struct inotify_event *ev, *next;

        for (ev = (struct inotify_event *) iw->buffer; (const char *) ev < end; ev = next) {
                next = (struct inotify_event *) event_next(ev);
                if (ev->mask == 0)
                        continue; /* the IN_MOVED_TO of a pair already delivered */

                if (iw->w.test_overflow_after >= 0 && !iw->is_test_overflow_done) {
                        if (iw->n_test_events >= (unsigned long) iw->w.test_overflow_after) {
                                iw->is_test_overflow_done = true;
                                inotify_flush_held(iw);
                                watcher_emit(&iw->w, WATCH_OVERFLOW, NULL, NULL, false);
                                return;
                        }
                        iw->n_test_events++;
                }

                inotify_handle_event(iw, ev, next, end);
                if (iw->w.is_closing)
                        return;
        }
}

/* Read until the queue is empty (the fd is non-blocking). */
static void inotify_drain(struct inotify_watcher *iw) {
        while (!iw->w.is_closing) {
                ssize_t n = read(iw->fd, iw->buffer, sizeof iw->buffer);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_error_errno(errno, "Failed to read inotify events: %m");
                        return;
                }
                if (n == 0)
                        return;
                inotify_handle_buffer(iw, (size_t) n);
        }
}

static void inotify_poll_cb(uv_poll_t *handle, int status, int events) {
        struct inotify_watcher *iw = handle->data;

        if (status < 0) {
                log_error_errno(status, "Failed to poll the inotify fd: %m");
                return;
        }
        if (events & UV_READABLE)
                inotify_drain(iw);
}

static void inotify_pair_timer_cb(uv_timer_t *handle) {
        struct inotify_watcher *iw = handle->data;
        uint64_t seq = iw->held_seq;

        /* Timers run before I/O polling in a loop iteration: the partner may
         * be queued already with its poll callback still to come. */
        inotify_drain(iw);
        if (iw->held_path && iw->held_seq == seq)
                inotify_flush_held(iw);
}

/* Backend ops */

static int inotify_add_dir(struct watcher *w, const char *path, size_t len) {
        struct inotify_watcher *iw = (struct inotify_watcher *) w;
        _cleanup_free_ char *p = strndup(path, len);
        struct inotify_dir *d, *existing;
        int wd, r;

        if (!p)
                return -ENOMEM;

        d = inotify_find_path(iw, p, len);
        if (!d && watcher_at_test_limit(w))
                return -ENOSPC;

        /* Asked again even when the path is known: after events we missed
         * (an overflow) the path may name another directory by now, and the
         * answer tells. For a directory already watched this changes nothing. */
        wd = inotify_add_watch(iw->fd, p, INOTIFY_DIR_MASK);
        if (wd < 0)
                return -errno;

        if (d) {
                if (d->wd == wd)
                        return 0;
                log_debug("%s is another directory than the one watched there, rewatching", p);
                inotify_forget_tree(iw, p, len, wd);
        }

        existing = inotify_find_wd(iw, wd);
        if (existing) {
                /* inotify_add_watch(2) on an inode already watched returns
                 * its wd: this directory moved to p without us seeing the
                 * rename (or is the same directory under a second path, a
                 * bind mount; then the newer path wins). Its subtree moved
                 * with it. */
                log_debug("%s was watched as %s, following it", p, existing->dir.path);
                if (path_is_under(p, len, existing->dir.path, existing->dir.path_len) ||
                    path_is_under(existing->dir.path, existing->dir.path_len, p, len)) {
                        inotify_forget_tree(iw, existing->dir.path, existing->dir.path_len, wd);
                        goto insert;
                }
                _cleanup_free_ char *old = strdup(existing->dir.path);
                if (!old)
                        return -ENOMEM;
                inotify_rename_tree(iw, old, strlen(old), p, len, wd);
                if (inotify_find_wd(iw, wd))
                        return 0;
        }

insert:
        d = calloc(1, sizeof *d);
        if (!d) {
                r = -ENOMEM;
                goto fail;
        }
        d->wd = wd;
        r = watcher_insert_dir(w, &d->dir, p, len);
        if (r < 0)
                goto fail;
        r = hash_table_put(&iw->wds, d);
        if (r < 0) {
                hash_table_remove(&w->dirs, &d->dir);
                goto fail;
        }
        return 0;

fail:
        inotify_dir_free(d);
        inotify_rm_watch(iw->fd, wd);
        return r;
}

static void inotify_remove_tree(struct watcher *w, const char *path, size_t len) {
        inotify_forget_tree((struct inotify_watcher *) w, path, len, -1);
}

static void inotify_free_all(struct inotify_watcher *iw) {
        for (size_t i = 0; i < iw->n_ancestors; i++)
                outer_dir_done(&iw->ancestors[i].dir);
        free(iw->ancestors);
        for (size_t i = 0; i < iw->wds.n_slots; i++)
                inotify_dir_free(iw->wds.slots[i]);
        hash_table_done(&iw->wds);
        hash_table_done(&iw->w.dirs);
        free(iw->held_path);
        if (iw->fd >= 0)
                close(iw->fd);
        free(iw);
}

static void inotify_close_cb(uv_handle_t *handle) {
        struct inotify_watcher *iw = handle->data;

        assert(iw->n_open_handles > 0);
        if (--iw->n_open_handles == 0)
                /* Closing the fd drops every watch at once; only now is the
                 * fd no longer polled (uv_poll_init(3): never close a polled fd). */
                inotify_free_all(iw);
}

static void inotify_close(struct watcher *w) {
        struct inotify_watcher *iw = (struct inotify_watcher *) w;

        uv_close((uv_handle_t *) &iw->poll, inotify_close_cb);
        uv_close((uv_handle_t *) &iw->pair_timer, inotify_close_cb);
}

static const struct watcher_ops inotify_ops = {
        .add_dir = inotify_add_dir,
        .remove_tree = inotify_remove_tree,
        .set_ancestors = inotify_set_ancestors,
        .close = inotify_close,
        .pairs_renames = true,
};

int watcher_inotify_new(uv_loop_t *loop, watch_event_cb event_cb, void *userdata, struct watcher **ret) {
        struct inotify_watcher *iw;
        int r;

        iw = calloc(1, sizeof *iw);
        if (!iw)
                return -ENOMEM;
        watcher_init(&iw->w, &inotify_ops, loop, event_cb, userdata);
        iw->wds = (struct hash_table) { .hash_of = inotify_dir_hash_of };

        iw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (iw->fd < 0) {
                r = -errno;
                free(iw);
                return r;
        }

        r = uv_poll_init(loop, &iw->poll, iw->fd);
        if (r < 0) {
                close(iw->fd);
                free(iw);
                return r;
        }
        iw->poll.data = iw;
        iw->n_open_handles++;

        uv_timer_init(loop, &iw->pair_timer);
        iw->pair_timer.data = iw;
        iw->n_open_handles++;

        r = uv_poll_start(&iw->poll, UV_READABLE, inotify_poll_cb);
        if (r < 0) {
                watcher_free(&iw->w);
                return r;
        }

        *ret = &iw->w;
        return 0;
}

#endif /* __linux__ */
