/* Roots that go missing (deleted, moved away, unmounted), come back or
 * are restored, and the filesystems mounted below them: which notes a
 * missing root keeps in the index, and when a root found again has the
 * word over them (docs/ROOTS.md). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon-state.h"
#include "indexer.h"
#include "log.h"
#include "macro.h"
#include "quired.h"
#include "roots.h"
#include "store.h"
#include "util.h"
#include "watch.h"

enum root_found {
        ROOT_FOUND,
        ROOT_NOT_FOUND, /* nothing, or not a directory, at its path */
        ROOT_EMPTY,     /* an empty folder where its notes were: a drive not mounted? */
};

static void send_kept_notes(struct daemon *d);
static void arm_restore(struct daemon *d, uint64_t ms);
static enum root_found root_locate(struct daemon *d, struct root *root, char *const *watched, size_t n_watched);

/* Whether path is dir or lies below it. */
bool path_is_at_or_below(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/' || (n > 0 && dir[n - 1] == '/'));
}

/* Where configured can come to name another directory, or one at last,
 * with no event on the root: each symlink on the way (ln -sfn retargets
 * it), and the first part that is not there. Resolved as the kernel
 * resolves it, part by part and through each link's target, so that
 * each path's directory is real: a link to a drive not mounted is
 * followed to the drive's missing folder. Pushed onto *v (each once).
 * Returns 0 or -ENOMEM. */
static int push_awaited(const char *configured, char ***v, size_t *n) {
        _cleanup_free_ char *dir = strdup("/"), *rest = NULL;
        struct stat st;

        if (!dir)
                return -ENOMEM;
        if (*configured == '/')
                rest = strdup(configured);
        else {
                /* A DIR argument is as given: relative to where quired runs. */
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return errno == ENOMEM ? -ENOMEM : 0;
                rest = path_join(cwd, strlen(cwd), configured, strlen(configured));
        }
        if (!rest)
                return -ENOMEM;
        /* As many links as the kernel follows (ELOOP past that). */
        for (unsigned hops = 0; hops <= 40;) {
                const char *p = rest + strspn(rest, "/");
                size_t len = strcspn(p, "/");
                if (len == 0)
                        return 0;
                const char *after = p + len;
                if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
                        if (len == 2) {
                                size_t parent_len = path_parent_len(dir, strlen(dir));
                                dir[parent_len > 0 ? parent_len : 1] = '\0';
                        }
                        memmove(rest, after, strlen(after) + 1);
                        continue;
                }
                char *entry = path_join(dir, strlen(dir), p, len);
                if (!entry)
                        return -ENOMEM;
                memmove(rest, after, strlen(after) + 1);
                int rc = lstat(entry, &st);
                if (rc == 0 && S_ISDIR(st.st_mode)) {
                        free(dir);
                        dir = entry;
                        continue;
                }
                _cleanup_free_ char *target = NULL;
                if (rc == 0 && S_ISLNK(st.st_mode)) {
                        char buf[PATH_MAX];
                        ssize_t k = readlink(entry, buf, sizeof buf - 1);
                        if (k > 0) {
                                buf[k] = '\0';
                                if (asprintf(&target, "%s%s", buf, rest) < 0)
                                        target = NULL;
                        }
                }
                int r = 0;
                if (strv_contains(*v, *n, entry))
                        free(entry);
                else
                        r = strv_push(v, n, entry);
                if (r < 0 || !target)
                        return r; /* nothing further to wait for until this changes */
                /* The link's target in place of the link, then on. */
                if (target[0] == '/') {
                        dir[0] = '/';
                        dir[1] = '\0';
                }
                free(rest);
                rest = TAKE_PTR(target);
                hops++;
        }
        return 0;
}

/* The directories above the roots present are watched for their own
 * rename or deletion (watch.h): a root that moves away with a parent
 * hears nothing itself. And what is awaited (struct daemon) is watched
 * for its entry. */
void watch_ancestors(struct daemon *d) {
        _cleanup_free_ const char **paths = calloc(d->n_roots + 1, sizeof *paths);
        char **awaited = NULL;
        size_t n = 0, n_awaited = 0;
        int r = paths ? 0 : -ENOMEM;

        if (!d->watcher) /* stopping */
                return;

        for (size_t i = 0; r == 0 && i < d->n_roots; i++) {
                if (d->roots[i].path)
                        paths[n++] = d->roots[i].path;
                r = push_awaited(d->roots[i].configured, &awaited, &n_awaited);
        }
        /* Its removal is seen in its folder (is_state_file_path()). */
        if (r == 0 && d->state_file)
                r = strv_push(&awaited, &n_awaited, strdup(daemon_state_path(d->state_file)));
        if (r == 0)
                r = watcher_set_ancestors(d->watcher, paths, n, (const char *const *) awaited, n_awaited);
        if (r < 0 && r != -ESHUTDOWN)
                log_warning_errno(r, "Failed to watch the directories above the roots: %m");
        strv_free(d->awaited, d->n_awaited);
        d->awaited = awaited;
        d->n_awaited = n_awaited;
}

/* Whether the present root's path still names the directory watched as
 * the root. */
bool root_is_in_place(const struct root *root) {
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

/* Folders at or below dir no longer kept for a filesystem unmounted from
 * them (struct daemon): with is_gone_only, only those that are no longer
 * a directory at their path. True if one was. */
static bool unmounted_below_drop(struct daemon *d, const char *dir, bool is_gone_only) {
        bool has_dropped = false;
        struct stat st;

        for (size_t i = 0; i < d->n_unmounted_below;) {
                char *point = d->unmounted_below[i];
                if (path_is_at_or_below(point, dir) &&
                    (!is_gone_only || lstat(point, &st) < 0 || !S_ISDIR(st.st_mode))) {
                        free(point);
                        d->unmounted_below[i] = d->unmounted_below[--d->n_unmounted_below];
                        has_dropped = true;
                } else
                        i++;
        }
        return has_dropped;
}

/* point kept as a folder whose filesystem was unmounted (struct daemon):
 * 1 if added, 0 if it was already, -ENOMEM (logged). */
static int unmounted_below_add(struct daemon *d, const char *point) {
        if (strv_contains(d->unmounted_below, d->n_unmounted_below, point))
                return 0;
        if (strv_push(&d->unmounted_below, &d->n_unmounted_below, strdup(point)) < 0)
                return log_error_errno(ENOMEM, "Failed to keep the notes of the filesystem unmounted from %s: %m",
                                       point);
        return 1;
}

/* A folder at or above dir may have gone (deleted, moved away): a
 * filesystem unmounted from it is not coming back there, and its notes
 * leave as any notes of a folder that goes. Called before the event's
 * walk is queued, so that the walk is not told to keep them. */
void forget_unmounted_below(struct daemon *d, const char *dir) {
        if (dir && d->n_unmounted_below > 0 && unmounted_below_drop(d, dir, true))
                send_kept_notes(d);
}

static void look_for_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        if (!look_for_missing_roots(d))
                return;
        d->look_for_s *= 2;
        if (d->look_for_s < d->cfg.rescan_interval_s)
                uv_timer_start(&d->look_for_timer, look_for_cb, (uint64_t) d->look_for_s * 1000, 0);
        /* else the rescan timer looks, every rescan_interval_s */
}

static void look_for_soon(struct daemon *d) {
        arm_rescan(d);
        d->look_for_s = 1;
        uv_timer_start(&d->look_for_timer, look_for_cb, 1000, 0);
}

/* The root is no longer at root->path: it is missing, looked for after
 * 1, 2, 4, ... s, then every rescan_interval_s. Its notes leave the index
 * only when quired saw them go (a deletion or a move away: a walk of the
 * path, which finds nothing, removes them); with is_unmounted nothing was
 * deleted and they stay (docs/ROOTS.md). The caller updates the watched
 * ancestors. */
void lose_root(struct daemon *d, struct root *root, bool is_unmounted) {
        if (is_unmounted)
                log_warning("Root %s is not there any more (its filesystem was unmounted); its notes stay in the "
                            "index, and it is looked for again in 1 s, then less often, up to every %u s",
                            root->path, d->cfg.rescan_interval_s);
        else
                log_warning("Root %s is gone; its notes leave the index, and it is looked for again in 1 s, then "
                            "less often, up to every %u s",
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
        /* Gone, it takes the folders below it with it, unmounted or not. */
        bool has_dropped = !is_unmounted && unmounted_below_drop(d, root->path, false);
        if (root->keeps_notes || was_kept || has_dropped)
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
        look_for_soon(d);
        /* quire status shows it missing now, not at the next report. */
        write_state_file(d, true);
}

/* A symlink on the way to root's configured path leads elsewhere now (ln
 * -sfn), or nowhere: as when a reload swaps the folder, the notes of the
 * folder watched until now leave the index (drop_tree_sparing_roots():
 * not those of roots configured inside it, nor any when a root of the
 * namespace holds it), and the folder the path leads to, if any, is the
 * root, watched and walked. The caller updates the watched ancestors. */
static void retarget_root(struct daemon *d, struct root *root) {
        _cleanup_free_ char *old = TAKE_PTR(root->path);
        bool was_kept = root->keeps_notes;
        const char *rel;

        watcher_remove_tree(d->watcher, old);
        forget_ignores(d, old);
        root->keeps_notes = false;
        root->is_restoring = false;
        if (was_kept)
                send_kept_notes(d);
        /* A root around the old folder (of any namespace) goes on watching it. */
        struct root *holder = find_root(d, old, &rel);
        if (holder && (!*rel || classify(d, holder, rel, true) == SCAN_KEEP))
                watch_tree(d, holder, old, false);
        drop_tree_sparing_roots(d, &d->cfg, root->namespace, old);
        if (root_locate(d, root, NULL, 0) == ROOT_FOUND) {
                log_info("Root %s leads to %s now (a symlink on its path changed); the notes of %s leave the index",
                         root->configured, root->path, old);
                adopt_dir(d, root, root->path);
        } else {
                log_warning("Root %s leads to no folder with notes now (a symlink on its path changed or went); the "
                            "notes of %s leave the index, and it is looked for again in 1 s, then less often, up to "
                            "every %u s",
                            root->configured, old, d->cfg.rescan_interval_s);
                look_for_soon(d);
        }
        write_state_file(d, true);
}

/* Something happened to an awaited path (struct daemon): a present root
 * whose configured path leads elsewhere now is retargeted, a missing one
 * may be there. Then again while the awaited paths change: an entry made
 * before its directory was watched raised no event for quired. */
void follow_root_paths(struct daemon *d) {
        for (int round = 0; round < 8 && !d->is_stopping; round++) {
                /* Compared with the set after this round: finding a root
                 * sets it as well (look_for_missing_roots()). */
                char **before = NULL;
                size_t n_before = 0;
                for (size_t i = 0; i < d->n_awaited; i++)
                        if (strv_push(&before, &n_before, strdup(d->awaited[i])) < 0) {
                                strv_free(before, n_before);
                                return;
                        }
                for (size_t i = 0; i < d->n_roots; i++) {
                        struct root *root = &d->roots[i];
                        struct stat st;
                        if (!root->path)
                                continue;
                        _cleanup_free_ char *now = realpath(root->configured, NULL);
                        /* Its folder itself gone is its own watch's to say. */
                        if ((now && strcmp(now, root->path) == 0) || (!now && errno != ENOENT && errno != ENOTDIR) ||
                            lstat(root->path, &st) < 0)
                                continue;
                        retarget_root(d, root);
                }
                (void) look_for_missing_roots(d);
                watch_ancestors(d);
                bool has_changed = n_before != d->n_awaited;
                for (size_t i = 0; !has_changed && i < n_before; i++)
                        has_changed = strcmp(before[i], d->awaited[i]) != 0;
                strv_free(before, n_before);
                if (!has_changed)
                        break;
        }
}

/* Whether the event is about an awaited path of a root, or a folder on
 * the way. */
bool is_about_awaited(const struct daemon *d, const struct watch_event *ev) {
        for (size_t i = 0; i < d->n_awaited; i++)
                if (!is_state_file_path(d, d->awaited[i]) &&
                    ((ev->path && path_is_at_or_below(d->awaited[i], ev->path)) ||
                     (ev->old_path && path_is_at_or_below(d->awaited[i], ev->old_path))))
                        return true;
        return false;
}

/* Whether a filesystem with device number dev is mounted anywhere: true
 * when that cannot be known (no /proc, another system), which keeps to
 * what the paths say. Read afresh: the table quired keeps for
 * follow_mounts_below_roots() is as old as the last poll, and the event
 * asking may have come before the poll's. */
bool dev_is_mounted(dev_t dev) {
        struct mount_table now;

        if (mount_table_read(&now) < 0)
                return true;
        bool is_mounted = mount_table_has_dev(&now, dev);
        mount_table_done(&now);
        return is_mounted;
}

/* A restoring root (struct root) stays so while events come below it. */
void note_restoring_event(struct daemon *d, const struct watch_event *ev) {
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

/* Each missing root looked for; true if one is still missing. */
bool look_for_missing_roots(struct daemon *d) {
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
 * holds is watched and walked now, and has the word over the notes kept
 * for one unmounted there before; what an unmount (of a bind mount too)
 * uncovers is watched in place of what went, and the filesystem's notes
 * are kept (struct daemon). */
static void follow_mounts_below_roots(struct daemon *d) {
        struct mount_table now;
        const char *rel;
        struct stat st;
        bool has_kept_more = false;

        if (mount_table_read(&now) < 0)
                return;
        for (size_t i = 0; i < d->mounts.n; i++) {
                const char *gone = d->mounts.v[i].point;
                struct root *holder = find_root(d, gone, &rel);
                if (!holder || !*rel || mount_table_has_point(&now, gone) ||
                    classify(d, holder, rel, true) != SCAN_KEEP)
                        continue;
                watcher_remove_tree(d->watcher, gone);
                forget_ignores(d, gone);
                watch_tree(d, holder, gone, false);
                /* A folder that went with it was below another mount,
                 * whose folder is kept. */
                if (lstat(gone, &st) < 0 || !S_ISDIR(st.st_mode) || unmounted_below_add(d, gone) <= 0)
                        continue;
                log_info("A filesystem was unmounted from %s; its notes stay in the index until one is mounted "
                         "there again", gone);
                has_kept_more = true;
        }
        /* Before the walks of what was mounted, below. */
        if (has_kept_more)
                send_kept_notes(d);
        for (size_t i = 0; i < now.n; i++) {
                const char *point = now.v[i].point;
                struct root *holder = find_root(d, point, &rel);
                if (!holder || !*rel || mount_table_has_point(&d->mounts, point) ||
                    classify(d, holder, rel, true) != SCAN_KEEP)
                        continue;
                log_info("A filesystem was mounted at %s; indexing it", point);
                if (unmounted_below_drop(d, point, false))
                        send_kept_notes(d);
                watcher_remove_tree(d->watcher, point);
                forget_ignores(d, point);
                adopt_dir(d, holder, point);
        }
        mount_table_done(&d->mounts);
        d->mounts = now;
}

/* root, present, no longer names at its path the directory it watched,
 * and no event said it moved or went: look for it there again. Found, the
 * folder there is the root now, watched and walked. Not found, or an empty
 * folder where its notes were, it is missing with its notes kept, as for
 * an unmount. The caller updates the watched ancestors. */
void relocate_root(struct daemon *d, struct root *root) {
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

void watch_mounts(struct daemon *d) {
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
        if (!strv_contains(watched, n_watched, path) && is_empty_where_notes_are(d, root, path)) {
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

void roots_free(struct daemon *d) {
        for (size_t i = 0; i < d->n_roots; i++)
                free(d->roots[i].path);
        free(d->roots);
        d->roots = NULL;
        d->n_roots = 0;
}

/* Resolve the configured roots; missing ones are retried, not fatal.
 * present: the realpaths of the roots watched until now (a reload);
 * restoring: those of them that were being restored, which go on; gone:
 * missing roots seen deleted or moved away while watched (as configured),
 * whose notes left and are not to be said kept. */
int roots_from_config(struct daemon *d, char *const *present, size_t n_present, char *const *restoring,
                      size_t n_restoring, char *const *gone, size_t n_gone) {
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
                        if (strv_contains(restoring, n_restoring, root->path))
                                begin_restoring(d, root);
                        continue;
                case ROOT_NOT_FOUND:
                        if (strv_contains(gone, n_gone, root->configured)) {
                                log_info("Root %s is still gone; it is looked for every %u s", root->configured,
                                         d->cfg.rescan_interval_s);
                                break;
                        }
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

/* Whether root, one of quired's, is at path in ns (a missing root: where
 * its notes would be). */
static bool root_is_at(const struct root *root, const char *ns, const char *path) {
        if (strcmp(root->namespace, ns) != 0)
                return false;
        if (root->path)
                return strcmp(root->path, path) == 0;
        _cleanup_free_ char *would_be = missing_root_realpath(root->configured);
        return would_be && strcmp(would_be, path) == 0;
}

void drop_tree_sparing_roots(struct daemon *d, const struct config *cfg, const char *ns, const char *dir) {
        char **spare = NULL;
        size_t n_spare = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < cfg->n_roots; i++) {
                const struct root_config *other = &cfg->roots[i];
                if (strcmp(other->namespace, ns) != 0)
                        continue;
                char *at = realpath(other->path, NULL);
                if (!at)
                        at = missing_root_realpath(other->path);
                if (!at) {
                        r = -ENOMEM;
                        break;
                }
                if (path_is_at_or_below(dir, at)) {
                        log_debug("%s lies in the root %s: its walks have the word over its notes", dir, at);
                        free(at);
                        strv_free(spare, n_spare);
                        return;
                }
                if (path_is_at_or_below(at, dir))
                        r = strv_push(&spare, &n_spare, at);
                else
                        free(at);
        }
        if (r == 0)
                r = indexer_drop_tree(d->indexer, ns, dir, spare, n_spare);
        if (r < 0)
                log_error_errno(r, "Failed to drop the notes of %s: %m", dir);
        strv_free(spare, n_spare);
}

void drop_unconfigured_roots(struct daemon *d, struct store *s) {
        const char *config = d->cfg.has_roots_from_file ? d->cfg.config_path : NULL;
        struct store_root *recorded = NULL;
        size_t n = 0;

        /* DIR arguments hold for one run: such a run takes nothing away. */
        if (!config || !s)
                return;
        int r = store_list_roots(s, &recorded, &n);
        for (size_t i = 0; r == 0 && i < n; i++) {
                const struct store_root *old = &recorded[i];
                bool is_configured = false, has_missing = false;
                if (!old->config || strcmp(old->config, config) != 0)
                        continue;
                for (size_t k = 0; k < d->n_roots && !is_configured; k++) {
                        is_configured = root_is_at(&d->roots[k], old->namespace, old->path);
                        has_missing = has_missing ||
                                      (!d->roots[k].path && strcmp(d->roots[k].namespace, old->namespace) == 0);
                }
                if (is_configured)
                        continue;
                /* A missing root could resolve to it (a link on a drive not
                 * mounted): where it would be is not known. */
                if (has_missing) {
                        log_info("Root %s was watched before and is no longer configured; its notes stay while a "
                                 "root of namespace %s is missing",
                                 old->path, old->namespace);
                        continue;
                }
                log_info("Root %s was watched before and is no longer configured; dropping its notes from the index",
                         old->path);
                drop_tree_sparing_roots(d, &d->cfg, old->namespace, old->path);
        }
        store_roots_free(recorded, n);
}

/* The folders whose filesystem was unmounted below a root, to the
 * database when they changed (or when the write may have failed): a
 * restart keeps their notes too. */
void record_unmounted(struct daemon *d) {
        bool is_same = d->n_unmounted_recorded == d->n_unmounted_below;
        char **copy = NULL;
        size_t n_copy = 0;
        int r = 0;

        for (size_t i = 0; is_same && i < d->n_unmounted_below; i++)
                is_same = strv_contains(d->unmounted_recorded, d->n_unmounted_recorded, d->unmounted_below[i]);
        if (is_same && !d->is_unmounted_record_unsure)
                return;
        /* Sent again for a failure: never an empty set over a record this
         * run could not read. */
        if (is_same && d->n_unmounted_below == 0 && !d->has_read_unmounted_record)
                return;
        for (size_t i = 0; r == 0 && i < d->n_unmounted_below; i++)
                r = strv_push(&copy, &n_copy, strdup(d->unmounted_below[i]));
        if (r == 0)
                r = indexer_set_unmounted(d->indexer, d->unmounted_below, d->n_unmounted_below);
        if (r < 0) {
                log_error_errno(r, "Failed to record the folders whose filesystem was unmounted: %m");
                strv_free(copy, n_copy);
                return;
        }
        strv_free(d->unmounted_recorded, d->n_unmounted_recorded);
        d->unmounted_recorded = copy;
        d->n_unmounted_recorded = n_copy;
        d->is_unmounted_record_unsure = false;
}

void restore_unmounted_below(struct daemon *d, struct store *s) {
        char **recorded = NULL;
        size_t n = 0;

        if (!s)
                return;
        int r = store_list_unmounted(s, &recorded, &n);
        d->has_read_unmounted_record = r == 0;
        if (r < 0 || n == 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const char *point = recorded[i], *rel;
                struct root *holder = find_root(d, point, &rel);
                struct stat st;
                /* Mounted again (its walk has the word), gone, or no
                 * longer below a root: not kept. */
                if (!holder || !*rel || lstat(point, &st) < 0 || !S_ISDIR(st.st_mode) ||
                    mount_table_has_point(&d->mounts, point) || classify(d, holder, rel, true) != SCAN_KEEP ||
                    unmounted_below_add(d, point) <= 0)
                        continue;
                log_info("The filesystem unmounted from %s is still away; its notes stay in the index until one is "
                         "mounted there again",
                         point);
        }
        /* What the database holds, so that what was not kept is written
         * away with the first change. */
        d->unmounted_recorded = TAKE_PTR(recorded);
        d->n_unmounted_recorded = n;
        send_kept_notes(d);
}

/* Tells the indexer where the notes are that walks must keep: a missing
 * root's, which a walk of a root around it would find empty or gone, a
 * restoring one's, which its own walks may find half copied back, and
 * those of a filesystem unmounted below a root, in the namespace of each
 * root that holds it (docs/ROOTS.md). */
static void send_kept_notes(struct daemon *d) {
        size_t max = d->n_roots * (1 + d->n_unmounted_below);
        _cleanup_free_ char **dirs = calloc(max + 1, sizeof *dirs);
        _cleanup_free_ const char **namespaces = calloc(max + 1, sizeof *namespaces);
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
        for (size_t k = 0; r == 0 && k < d->n_unmounted_below; k++)
                for (size_t i = 0; r == 0 && i < d->n_roots; i++) {
                        const struct root *root = &d->roots[i];
                        if (!root->path || !root_covers(root->path, d->unmounted_below[k]))
                                continue;
                        if ((dirs[n] = strdup(d->unmounted_below[k])))
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
        record_unmounted(d);
}

/* A root missing when the configuration is reloaded and no longer in it
 * (same configured path, same namespace): its notes were kept only because
 * it might come back (docs/ROOTS.md); now they go, as a present root's do. */
void drop_missing_root_if_unconfigured(struct daemon *d, const struct config *next, const struct root *old) {
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
        drop_tree_sparing_roots(d, next, old->namespace, path);
}
