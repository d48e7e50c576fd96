/* The fs-event watch backend: one libuv uv_fs_event_t per watched directory
 * (kqueue on the BSDs, FSEvents on macOS, inotify again on Linux). libuv only
 * says "something about this name", so every event is WATCH_CHANGED and the
 * loop decides by looking at the path; renames are not paired. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "util.h"
#include "watch-internal.h"

struct fsevent_watcher;

/* Which directory a path names. dev and inode alone are not enough: ext4
 * gives a freed inode number to the next mkdir at once, so "deleted and made
 * again" looks unchanged (and its timestamps are too coarse to tell). The
 * file handle of name_to_handle_at(2) carries the inode's generation as well
 * (ext4, xfs, btrfs, tmpfs); where a filesystem has none we make do with
 * dev and inode. */
struct dir_identity {
        dev_t dev;
        ino_t ino;
        uint64_t handle_hash; /* FNV-1a of handle type and bytes */
        bool has_handle;
};

struct fsevent_dir {
        struct watch_dir dir; /* first: the path table holds &dir */
        uv_fs_event_t handle;
        struct fsevent_watcher *owner;
        /* A path can outlive its directory (deleted and made again, renamed
         * over) without the handle hearing of it. */
        struct dir_identity identity;
        bool is_closing; /* out of the table, waiting for its close callback */
        bool is_ancestor; /* in fw->ancestors, not in the path table */
        struct outer_dir outer; /* an ancestor's: its awaited names (path unset) */
};

struct fsevent_watcher {
        struct watcher w; /* first */
        size_t n_open_handles;
        struct fsevent_dir **ancestors; /* a few: searched in order */
        size_t n_ancestors;
};

static void fsevent_watcher_release(struct fsevent_watcher *fw) {
        hash_table_done(&fw->w.dirs);
        free(fw->ancestors);
        free(fw);
}

static void fsevent_close_cb(uv_handle_t *handle) {
        struct fsevent_dir *d = handle->data;
        struct fsevent_watcher *fw = d->owner;

        free(d->dir.path);
        outer_dir_done(&d->outer);
        free(d);
        assert(fw->n_open_handles > 0);
        if (--fw->n_open_handles == 0 && fw->w.is_closing)
                fsevent_watcher_release(fw);
}

/* Out of the table now; the memory goes in the close callback. */
static void fsevent_dir_forget(struct fsevent_watcher *fw, struct fsevent_dir *d) {
        if (d->is_closing)
                return;
        if (d->is_ancestor) {
                for (size_t i = 0; i < fw->n_ancestors; i++)
                        if (fw->ancestors[i] == d) {
                                fw->ancestors[i] = fw->ancestors[--fw->n_ancestors];
                                break;
                        }
        } else if (d->dir.path)
                hash_table_remove(&fw->w.dirs, &d->dir);
        d->is_closing = true;
        uv_close((uv_handle_t *) &d->handle, fsevent_close_cb);
}

static void fsevent_forget_tree(struct fsevent_watcher *fw, const char *path, size_t len) {
        _cleanup_free_ struct watch_dir **found = NULL;
        size_t n_found;
        int r;

        r = watcher_collect_tree(&fw->w, path, len, &found, &n_found);
        if (r < 0) {
                log_error_errno(r, "Failed to drop the watches below %.*s: %m", (int) len, path);
                return;
        }
        for (size_t i = 0; i < n_found; i++)
                fsevent_dir_forget(fw, (struct fsevent_dir *) found[i]);
}

/* Never through a symlink, like inotify's IN_DONT_FOLLOW. 0, -ENOTDIR when
 * path is no directory, or -errno. */
static int dir_identity_get(const char *path, struct dir_identity *ret) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        *ret = (struct dir_identity) { .dev = st.st_dev, .ino = st.st_ino };

#ifdef __linux__
        union {
                struct file_handle handle;
                unsigned char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
        } fh = { .handle.handle_bytes = MAX_HANDLE_SZ };
        int mount_id;

        /* Without AT_SYMLINK_FOLLOW: no symlinks here either. */
        if (name_to_handle_at(AT_FDCWD, path, &fh.handle, &mount_id, 0) == 0) {
                uint64_t h = UINT64_C(14695981039346656037);

                h = (h ^ (uint32_t) fh.handle.handle_type) * UINT64_C(1099511628211);
                for (unsigned i = 0; i < fh.handle.handle_bytes; i++)
                        h = (h ^ fh.handle.f_handle[i]) * UINT64_C(1099511628211);
                ret->handle_hash = h;
                ret->has_handle = true;
        }
#endif
        return 0;
}

static bool dir_identity_equal(const struct dir_identity *a, const struct dir_identity *b) {
        if (a->dev != b->dev || a->ino != b->ino)
                return false;
        if (a->has_handle && b->has_handle)
                return a->handle_hash == b->handle_hash;
        return true;
}

/* Whether d's path no longer names the directory we watch. Asked of a
 * watched directory only when an event may be about that directory. */
static bool fsevent_dir_is_gone(const struct fsevent_dir *d) {
        struct dir_identity now = { 0 }; /* gcc -O3 cannot tell it is set when used */

        if (dir_identity_get(d->dir.path, &now) < 0)
                return true;
        return !dir_identity_equal(&now, &d->identity);
}

/* d was deleted or renamed away: its handle and those below it watch
 * nothing or something under another name now. (An ancestor's handle alone:
 * the roots below it are the loop's to drop.) */
static void fsevent_dir_gone(struct fsevent_watcher *fw, struct fsevent_dir *d) {
        _cleanup_free_ char *path = strdup(d->dir.path);

        if (d->is_ancestor) {
                fsevent_dir_forget(fw, d);
                watcher_emit(&fw->w, path ? WATCH_DIR_GONE : WATCH_OVERFLOW, path, NULL, !!path);
                return;
        }

        if (!path) {
                fsevent_forget_tree(fw, d->dir.path, d->dir.path_len);
                watcher_emit(&fw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }
        fsevent_forget_tree(fw, path, strlen(path));
        watcher_emit(&fw->w, WATCH_DIR_GONE, path, NULL, true);
}

static const char *path_basename(const char *path) {
        const char *slash = strrchr(path, '/');

        return slash && slash[1] ? slash + 1 : path;
}

/* Only the ancestor itself going matters, and its awaited entries; libuv
 * names the ancestor by its basename (or not at all), and whatever else
 * happens in it costs no more than a few comparisons. kqueue names no
 * entry: every awaited one may be what changed. */
static void fsevent_ancestor_cb(struct fsevent_watcher *fw, struct fsevent_dir *d, const char *filename, int events,
                                int status) {
        bool is_named = status == 0 && filename && *filename;
        /* An entry made, deleted or renamed is UV_RENAME on every platform;
         * UV_CHANGE is a write or a chmod (quired's own, of its state file). */
        bool is_entry_event = status < 0 || (events & UV_RENAME);

        for (size_t i = 0; is_entry_event && i < d->outer.n_names && !d->is_closing && !fw->w.is_closing; i++) {
                if (is_named && strcmp(filename, d->outer.names[i]) != 0)
                        continue;
                /* Unnamed: one is enough, the loop looks at them all. */
                if (!is_named && i > 0)
                        break;
                _cleanup_free_ char *path = path_join(d->dir.path, d->dir.path_len, d->outer.names[i],
                                                      strlen(d->outer.names[i]));
                watcher_emit(&fw->w, path ? WATCH_AWAITED : WATCH_OVERFLOW, path, NULL, false);
        }
        if (d->is_closing || fw->w.is_closing)
                return;
        if ((!is_named || strcmp(filename, path_basename(d->dir.path)) == 0) && fsevent_dir_is_gone(d))
                fsevent_dir_gone(fw, d);
}

static void fsevent_cb(uv_fs_event_t *handle, const char *filename, int events, int status) {
        struct fsevent_dir *d = handle->data, *child;
        struct fsevent_watcher *fw = d->owner;
        _cleanup_free_ char *dir_path = NULL, *path = NULL;
        bool may_be_self;

        if (d->is_closing || fw->w.is_closing)
                return;

        if (d->is_ancestor) {
                fsevent_ancestor_cb(fw, d, filename, events, status);
                return;
        }

        dir_path = strdup(d->dir.path);
        if (!dir_path) {
                watcher_emit(&fw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }

        if (status < 0) {
                log_debug_errno(status, "Watching %s failed: %m", dir_path);
                if (fsevent_dir_is_gone(d))
                        fsevent_dir_gone(fw, d);
                else
                        watcher_emit(&fw->w, WATCH_CHANGED, dir_path, NULL, true);
                return;
        }

        if (!filename || !*filename) {
                watcher_emit(&fw->w, WATCH_CHANGED, dir_path, NULL, true);
                return;
        }

        /* libuv names the watched directory by its own basename when the
         * event is about the directory itself: inotify(7) gives no name then
         * (src/unix/linux-inotify.c substitutes it), kqueue never names
         * children at all. So that name is ambiguous: it may be a child
         * called like its parent, the directory deleted or renamed away, or
         * (kqueue) some change inside it. */
        may_be_self = strcmp(filename, path_basename(dir_path)) == 0;
        if (may_be_self && fsevent_dir_is_gone(d)) {
                fsevent_dir_gone(fw, d);
                return;
        }

        path = path_join(dir_path, strlen(dir_path), filename, strlen(filename));
        if (!path) {
                watcher_emit(&fw->w, WATCH_OVERFLOW, NULL, NULL, false);
                return;
        }

        /* A watched child directory renamed or deleted: the parent hears of
         * it reliably, while the child's own handle may not be able to tell
         * (libuv shares one inotify watch between handles on one inode and
         * names it by the path of the first). */
        child = (struct fsevent_dir *) watcher_find_dir(&fw->w, path, strlen(path));
        if (child && (events & UV_RENAME) && fsevent_dir_is_gone(child)) {
                fsevent_dir_gone(fw, child);
                if (fw->w.is_closing || d->is_closing)
                        return;
        }

        watcher_emit(&fw->w, WATCH_CHANGED, path, NULL, false);
        if (may_be_self && !fw->w.is_closing && !d->is_closing)
                watcher_emit(&fw->w, WATCH_CHANGED, dir_path, NULL, true);
}

/* Backend ops */

static int fsevent_dir_start(struct fsevent_watcher *fw, const char *path, const struct dir_identity *identity,
                             bool is_ancestor, struct fsevent_dir **ret) {
        struct fsevent_dir *d;
        int r;

        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->owner = fw;
        d->identity = *identity;
        d->is_ancestor = is_ancestor;
        r = uv_fs_event_init(fw->w.loop, &d->handle);
        if (r < 0) {
                free(d);
                return r;
        }
        d->handle.data = d;
        fw->n_open_handles++;

        /* Not UV_FS_EVENT_RECURSIVE: only some platforms have it, and the
         * loop walks the tree itself. */
        r = uv_fs_event_start(&d->handle, fsevent_cb, path, 0);
        if (r < 0) {
                fsevent_dir_forget(fw, d);
                return r;
        }
        *ret = d;
        return 0;
}

static int fsevent_add_dir(struct watcher *w, const char *path, size_t len) {
        struct fsevent_watcher *fw = (struct fsevent_watcher *) w;
        _cleanup_free_ char *p = strndup(path, len);
        struct fsevent_dir *d;
        struct dir_identity identity;
        int r;

        if (!p)
                return -ENOMEM;
        r = dir_identity_get(p, &identity);
        if (r < 0)
                return r;

        d = (struct fsevent_dir *) watcher_find_dir(w, p, len);
        if (d) {
                if (dir_identity_equal(&d->identity, &identity))
                        return 0;
                log_debug("%s is another directory than the one watched there, rewatching", p);
                fsevent_forget_tree(fw, p, len);
        }
        if (watcher_at_test_limit(w))
                return -ENOSPC;

        r = fsevent_dir_start(fw, p, &identity, false, &d);
        if (r < 0)
                return r;
        r = watcher_insert_dir(w, &d->dir, p, len);
        if (r < 0) {
                fsevent_dir_forget(fw, d);
                return r;
        }
        return 0;
}

static void fsevent_remove_tree(struct watcher *w, const char *path, size_t len) {
        fsevent_forget_tree((struct fsevent_watcher *) w, path, len);
}

/* d's awaited names made those of want. Returns 0 or -ENOMEM. */
static int fsevent_set_names(struct fsevent_dir *d, const struct outer_dir *want) {
        struct outer_dir copy = { 0 };

        for (size_t i = 0; i < want->n_names; i++)
                if (strv_push(&copy.names, &copy.n_names, strdup(want->names[i])) < 0) {
                        outer_dir_done(&copy);
                        return -ENOMEM;
                }
        outer_dir_done(&d->outer);
        d->outer = copy;
        return 0;
}

static int fsevent_set_ancestors(struct watcher *w, const struct outer_dir *dirs, size_t n_dirs) {
        struct fsevent_watcher *fw = (struct fsevent_watcher *) w;
        struct fsevent_dir **a;
        size_t i = 0;

        /* Drop those no longer wanted (or no longer the directory we
         * watched there), then add the new ones. */
        while (i < fw->n_ancestors) {
                struct fsevent_dir *d = fw->ancestors[i];
                const struct outer_dir *wanted = NULL;

                for (size_t k = 0; k < n_dirs && !wanted; k++)
                        if (strcmp(dirs[k].path, d->dir.path) == 0)
                                wanted = &dirs[k];
                if (wanted && !fsevent_dir_is_gone(d)) {
                        if (fsevent_set_names(d, wanted) < 0)
                                return -ENOMEM;
                        i++;
                } else
                        fsevent_dir_forget(fw, d); /* takes it out of the array */
        }
        a = realloc(fw->ancestors, (fw->n_ancestors + n_dirs + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        fw->ancestors = a;
        for (size_t k = 0; k < n_dirs; k++) {
                struct dir_identity identity;
                struct fsevent_dir *d;
                bool is_known = false;
                int r;

                for (i = 0; i < fw->n_ancestors && !is_known; i++)
                        is_known = strcmp(dirs[k].path, a[i]->dir.path) == 0;
                if (is_known)
                        continue;
                r = dir_identity_get(dirs[k].path, &identity);
                if (r == 0)
                        r = fsevent_dir_start(fw, dirs[k].path, &identity, true, &d);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        log_debug_errno(r, "Failed to watch %s, a root's ancestor, ignoring: %m", dirs[k].path);
                        continue;
                }
                d->dir.path = strdup(dirs[k].path);
                if (!d->dir.path || fsevent_set_names(d, &dirs[k]) < 0) {
                        fsevent_dir_forget(fw, d);
                        return -ENOMEM;
                }
                d->dir.path_len = strlen(dirs[k].path);
                a[fw->n_ancestors++] = d;
        }
        return 0;
}

static void fsevent_close(struct watcher *w) {
        struct fsevent_watcher *fw = (struct fsevent_watcher *) w;

        for (size_t i = 0; i < fw->n_ancestors; i++) {
                fw->ancestors[i]->is_closing = true;
                uv_close((uv_handle_t *) &fw->ancestors[i]->handle, fsevent_close_cb);
        }
        fw->n_ancestors = 0;

        for (size_t i = 0; i < w->dirs.n_slots; i++) {
                struct fsevent_dir *d = w->dirs.slots[i];

                if (!d)
                        continue;
                d->is_closing = true;
                uv_close((uv_handle_t *) &d->handle, fsevent_close_cb);
        }
        hash_table_done(&w->dirs);
        if (fw->n_open_handles == 0)
                fsevent_watcher_release(fw);
}

static const struct watcher_ops fsevent_ops = {
        .add_dir = fsevent_add_dir,
        .remove_tree = fsevent_remove_tree,
        .set_ancestors = fsevent_set_ancestors,
        .close = fsevent_close,
        .pairs_renames = false,
};

int watcher_fsevent_new(uv_loop_t *loop, watch_event_cb event_cb, void *userdata, struct watcher **ret) {
        struct fsevent_watcher *fw;

        fw = calloc(1, sizeof *fw);
        if (!fw)
                return -ENOMEM;
        watcher_init(&fw->w, &fsevent_ops, loop, event_cb, userdata);
        *ret = &fw->w;
        return 0;
}
