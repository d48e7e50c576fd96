/* The directories below the roots: watched (every one the rules keep,
 * or noted for the rescan when the watch limit is reached), and the walks
 * and path syncs queued to the indexer for them, in every namespace whose
 * roots hold them. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "debounce.h"
#include "ignore.h"
#include "indexer.h"
#include "log.h"
#include "macro.h"
#include "quired.h"
#include "roots.h"
#include "util.h"
#include "watch.h"

/* The innermost root other than except that holds path, and the path
 * below it ("" for the root). */
struct root *find_root_except(struct daemon *d, const char *path, const struct root *except,
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

struct root *find_root(struct daemon *d, const char *path, const char **rel) {
        return find_root_except(d, path, NULL, rel);
}

static size_t root_index(const struct daemon *d, const struct root *r) {
        return (size_t) (r - d->roots);
}

/* The verdict on rel below root: the built-in rules, the globs, and the
 * .quireignore files from the root down (cached; events tell the cache
 * what to forget). */
enum scan_verdict classify(struct daemon *d, const struct root *root, const char *rel, bool is_dir) {
        return scan_classify_path(&d->rules, d->ignores, root->path, rel, is_dir);
}

/* Directories appeared, vanished or moved at path: what was known of the
 * .quireignore files there and below is stale. */
void forget_ignores(struct daemon *d, const char *path) {
        if (path)
                ignore_cache_forget(d->ignores, path, true);
}

static void note_unwatched(struct daemon *d, const char *dir) {
        if (!strv_contains(d->unwatched, d->n_unwatched, dir))
                (void) strv_push(&d->unwatched, &d->n_unwatched, strdup(dir));
}

#ifdef __linux__
/* fs.inotify.max_user_instances (-1 when unreadable), and a value to set
 * it to in the line that says it ran out. */
long inotify_instances_limit(long *ret_suggested) {
        long limit = read_proc_long("/proc/sys/fs/inotify/max_user_instances");
        *ret_suggested = limit > 0 ? 2 * limit : 256;
        return limit;
}
#endif

/* One actionable line, once: which sysctl, and what to set it to. error
 * is -ENOSPC (out of watches) or -EMFILE (the fs-event backend opens an
 * inotify instance at its first watch: none was left). */
static void log_watch_limit(struct daemon *d, int error) {
        if (d->has_logged_watch_limit)
                return;
        d->has_logged_watch_limit = true;
        if (error == -EMFILE) {
#ifdef __linux__
                long suggested, limit = inotify_instances_limit(&suggested);
                log_warning("No inotify instance left (fs.inotify.max_user_instances = %ld): directories are not "
                            "watched and are rescanned every %u s instead; raise the limit, e.g. "
                            "sysctl fs.inotify.max_user_instances=%ld",
                            limit, d->cfg.rescan_interval_s, suggested);
#else /* kqueue holds a descriptor per directory watched */
                log_warning("Out of file descriptors (ulimit -n): some directories are not watched and are "
                            "rescanned every %u s instead; raise the limit",
                            d->cfg.rescan_interval_s);
#endif
                return;
        }
        long limit = read_proc_long("/proc/sys/fs/inotify/max_user_watches");
        size_t needed = watcher_count(d->watcher) + d->n_unwatched + 1024;
        /* -1: not readable (a container masks /proc/sys); what is needed, then. */
        size_t suggested = limit > 0 && (size_t) limit * 2 > needed ? (size_t) limit * 2 : needed;
        log_warning("Out of inotify watches (fs.inotify.max_user_watches = %ld): some directories are not watched "
                    "and are rescanned every %u s instead; raise the limit, e.g. "
                    "sysctl fs.inotify.max_user_watches=%zu",
                    limit, d->cfg.rescan_interval_s, suggested);
}

/* Watch dir and every directory below it that the rules keep: add the
 * watch first, then list, so an entry created in between is either seen
 * by the listing or reported by the watch. With is_pruning (the rules
 * changed), directories the rules now skip lose their watches. */
void watch_tree(struct daemon *d, struct root *root, const char *dir, bool is_pruning) {
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
                bool is_at_limit = r == -ENOSPC || r == -EMFILE;
                if (is_at_limit) {
                        note_unwatched(d, path);
                        log_watch_limit(d, r);
                        arm_rescan(d);
                } else if (r < 0 && r != -ENOENT && r != -ENOTDIR)
                        log_warning_errno(r, "Failed to watch %s: %m", path);

                DIR *dp = r == 0 || is_at_limit ? opendir(path) : NULL;
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

void reconcile_all(struct daemon *d) {
        reconcile_roots(d, false);
}

/* Before an operation goes to the indexer: when too many wait already,
 * they all become one reconcile, which covers this one too (true). */
bool reconcile_if_flooded(struct daemon *d) {
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
bool is_other_namespace_holder(const struct daemon *d, const struct root *root, const char *ns,
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
int queue_sync_dir(struct daemon *d, const char *ns, const char *root, const char *dir) {
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
int sync_paths_elsewhere(struct daemon *d, const char *ns, char *const *paths, size_t n_paths,
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
void adopt_dir(struct daemon *d, struct root *root, const char *dir) {
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

void mark_path(struct daemon *d, struct root *root, const char *path) {
        int r = debounce_mark(d->debounce, root_index(d, root), path);
        if (r < 0)
                log_error_errno(r, "Failed to remember a change to %s: %m", path);
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
        if (n_unwatched > 0)
                log_debug("Rescanning %zu directories the watch limit left unwatched", n_unwatched);
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
void arm_rescan(struct daemon *d) {
        if (!uv_is_active((uv_handle_t *) &d->rescan_timer)) {
                uint64_t ms = (uint64_t) d->cfg.rescan_interval_s * 1000;
                uv_timer_start(&d->rescan_timer, rescan_cb, ms, ms);
        }
}

void watch_all_roots(struct daemon *d) {
        for (size_t i = 0; i < d->n_roots; i++)
                if (d->roots[i].path)
                        watch_tree(d, &d->roots[i], d->roots[i].path, false);
}
