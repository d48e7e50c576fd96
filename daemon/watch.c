/* The front of the watch backends (watch.h): watcher_new picks inotify or
 * fs-event, the public calls dispatch through the backend's ops, and the
 * pieces both backends need live here (the path table of watched
 * directories, event delivery, the QUIRE_TEST_* switches). */
#include "watch-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Hash table */

void *hash_table_find(const struct hash_table *t, uint64_t hash, hash_match_fn match, const void *key) {
        size_t mask, i;

        if (t->n_slots == 0)
                return NULL;
        mask = t->n_slots - 1;
        for (i = hash & mask; t->slots[i]; i = (i + 1) & mask)
                if (match(t->slots[i], key))
                        return t->slots[i];
        return NULL;
}

static void hash_table_place(void **slots, size_t n_slots, uint64_t hash, void *item) {
        size_t mask = n_slots - 1, i;

        for (i = hash & mask; slots[i]; i = (i + 1) & mask)
                ;
        slots[i] = item;
}

int hash_table_put(struct hash_table *t, void *item) {
        /* Grow at half full: linear probing stays short, and removals (which
         * never allocate) can always be followed by a put that needs no room. */
        if ((t->n_items + 1) * 2 > t->n_slots) {
                size_t n_slots = t->n_slots ? t->n_slots * 2 : 64;
                void **slots = calloc(n_slots, sizeof *slots);

                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < t->n_slots; i++)
                        if (t->slots[i])
                                hash_table_place(slots, n_slots, t->hash_of(t->slots[i]), t->slots[i]);
                free(t->slots);
                t->slots = slots;
                t->n_slots = n_slots;
        }
        hash_table_place(t->slots, t->n_slots, t->hash_of(item), item);
        t->n_items++;
        return 0;
}

void hash_table_remove(struct hash_table *t, void *item) {
        size_t mask, i, j;

        if (t->n_slots == 0)
                return;
        mask = t->n_slots - 1;
        for (i = t->hash_of(item) & mask; t->slots[i] != item; i = (i + 1) & mask)
                if (!t->slots[i])
                        return;

        /* Backward-shift deletion: pull later members of the probe chain
         * into the hole unless their home slot lies cyclically in (i, j]. */
        for (j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
                size_t home = t->hash_of(t->slots[j]) & mask;
                bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);

                if (!stays) {
                        t->slots[i] = t->slots[j];
                        i = j;
                }
        }
        t->slots[i] = NULL;
        t->n_items--;
}

void hash_table_done(struct hash_table *t) {
        free(t->slots);
        t->slots = NULL;
        t->n_slots = t->n_items = 0;
}

/* Paths */

bool path_is_under(const char *path, size_t path_len, const char *prefix, size_t prefix_len) {
        if (path_len < prefix_len || memcmp(path, prefix, prefix_len) != 0)
                return false;
        if (path_len == prefix_len)
                return true;
        /* "/" is the one prefix that keeps its trailing slash. */
        return path[prefix_len] == '/' || (prefix_len > 0 && prefix[prefix_len - 1] == '/');
}

/* The path table */

static uint64_t watch_dir_hash_of(const void *item) {
        return ((const struct watch_dir *) item)->path_hash;
}

struct path_key {
        const char *path;
        size_t len;
};

static bool watch_dir_match(const void *item, const void *key) {
        const struct watch_dir *d = item;
        const struct path_key *k = key;

        return d->path_len == k->len && memcmp(d->path, k->path, k->len) == 0;
}

struct watch_dir *watcher_find_dir(const struct watcher *w, const char *path, size_t path_len) {
        struct path_key key = { path, path_len };

        return hash_table_find(&w->dirs, fnv1a64(path, path_len), watch_dir_match, &key);
}

int watcher_insert_dir(struct watcher *w, struct watch_dir *d, const char *path, size_t path_len) {
        int r;

        d->path = strndup(path, path_len);
        if (!d->path)
                return -ENOMEM;
        d->path_len = path_len;
        d->path_hash = fnv1a64(path, path_len);
        r = hash_table_put(&w->dirs, d);
        if (r < 0) {
                free(d->path);
                d->path = NULL;
        }
        return r;
}

int watcher_collect_tree(const struct watcher *w, const char *path, size_t path_len, struct watch_dir ***ret,
                         size_t *ret_n) {
        struct watch_dir **found = NULL;
        size_t n = 0, cap = 0;

        /* A walk over the whole table: subtree operations come from renames
         * and removals of directories, rare next to the lookups, and a pass
         * over tens of thousands of pointers is well under a millisecond. */
        for (size_t i = 0; i < w->dirs.n_slots; i++) {
                struct watch_dir *d = w->dirs.slots[i];

                if (!d || !path_is_under(d->path, d->path_len, path, path_len))
                        continue;
                if (GREEDY_REALLOC(found, cap, n + 1, 8) < 0) {
                        free(found);
                        return -ENOMEM;
                }
                found[n++] = d;
        }
        *ret = found;
        *ret_n = n;
        return 0;
}

int watcher_move_dir(struct watcher *w, struct watch_dir *d, size_t old_prefix_len, const char *new_prefix,
                     size_t new_prefix_len) {
        size_t rest = d->path_len - old_prefix_len;
        char *p = malloc(new_prefix_len + rest + 1);
        int r;

        if (!p)
                return -ENOMEM;
        memcpy(p, new_prefix, new_prefix_len);
        memcpy(p + new_prefix_len, d->path + old_prefix_len, rest + 1);

        hash_table_remove(&w->dirs, d);
        free(d->path);
        d->path = p;
        d->path_len = new_prefix_len + rest;
        d->path_hash = fnv1a64(p, d->path_len);
        /* Cannot fail: we just made room. */
        r = hash_table_put(&w->dirs, d);
        assert(r == 0);
        return r;
}

/* Delivery and test switches */

static long env_long(const char *name) {
        const char *e = getenv(name);
        char *end;
        long v;

        if (!e || !*e)
                return -1;
        errno = 0;
        v = strtol(e, &end, 10);
        if (errno != 0 || *end != '\0' || v < 0) {
                log_warning("Ignoring %s=%s: not a count", name, e);
                return -1;
        }
        return v;
}

void watcher_init(struct watcher *w, const struct watcher_ops *ops, uv_loop_t *loop, watch_event_cb event_cb,
                  void *userdata) {
        w->ops = ops;
        w->loop = loop;
        w->event_cb = event_cb;
        w->userdata = userdata;
        w->dirs = (struct hash_table) { .hash_of = watch_dir_hash_of };
        w->test_max_watches = env_long("QUIRE_TEST_MAX_WATCHES");
        w->test_overflow_after = env_long("QUIRE_TEST_OVERFLOW_AFTER");
        w->is_closing = false;
}

static const char *const event_kind_names[] = {
        [WATCH_CHANGED] = "changed",
        [WATCH_REMOVED] = "removed",
        [WATCH_MOVED] = "moved",
        [WATCH_OVERFLOW] = "overflow",
        [WATCH_DIR_GONE] = "dir-gone",
        [WATCH_UNMOUNTED] = "unmounted",
        [WATCH_AWAITED] = "awaited",
};

void watcher_emit(struct watcher *w, enum watch_event_kind kind, const char *path, const char *old_path,
                  bool is_dir) {
        struct watch_event ev = {
                .kind = kind,
                .path = path,
                .old_path = old_path,
                .is_dir = is_dir,
        };

        if (w->is_closing)
                return;
        if (log_get_max_level() >= LOG_DEBUG)
                log_debug("watch: %s %s%s%s%s", event_kind_names[kind], old_path ? old_path : "",
                          old_path ? " -> " : "", path ? path : "", is_dir ? " (dir)" : "");
        w->event_cb(&ev, w->userdata);
}

bool watcher_at_test_limit(const struct watcher *w) {
        return w->test_max_watches >= 0 && w->dirs.n_items >= (size_t) w->test_max_watches;
}

/* Public interface */

int watcher_new(uv_loop_t *loop, enum watch_backend_kind kind, watch_event_cb event_cb, void *userdata,
                struct watcher **ret) {
        assert(loop);
        assert(event_cb);
        assert(ret);

        switch (kind) {
        case WATCH_BACKEND_INOTIFY:
#ifdef __linux__
                return watcher_inotify_new(loop, event_cb, userdata, ret);
#else
                return -EOPNOTSUPP;
#endif
        case WATCH_BACKEND_FS_EVENT:
                return watcher_fsevent_new(loop, event_cb, userdata, ret);
        }
        return -EINVAL;
}

/* Without trailing slashes (but "/" stays), so that one directory has one
 * key and prefix walks line up with the paths built from events. */
static size_t path_trimmed_len(const char *path) {
        size_t len = strlen(path);

        while (len > 1 && path[len - 1] == '/')
                len--;
        return len;
}

int watcher_add_dir(struct watcher *w, const char *path) {
        assert(w);
        assert(path);

        if (w->is_closing)
                return -ESHUTDOWN;
        if (!*path)
                return -ENOENT;
        return w->ops->add_dir(w, path, path_trimmed_len(path));
}

void watcher_remove_tree(struct watcher *w, const char *path) {
        assert(w);
        assert(path);

        if (w->is_closing || !*path)
                return;
        w->ops->remove_tree(w, path, path_trimmed_len(path));
}

bool outer_dir_awaits(const struct outer_dir *dir, const char *name, size_t n) {
        for (size_t i = 0; i < dir->n_names; i++)
                if (strlen(dir->names[i]) == n && memcmp(dir->names[i], name, n) == 0)
                        return true;
        return false;
}

void outer_dir_done(struct outer_dir *dir) {
        free(dir->path);
        strv_free(dir->names, dir->n_names);
        *dir = (struct outer_dir) { 0 };
}

int outer_dir_copy(struct outer_dir *dst, const struct outer_dir *src) {
        *dst = (struct outer_dir) { .path = strdup(src->path) };
        int r = dst->path ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < src->n_names; i++)
                r = strv_push(&dst->names, &dst->n_names, strdup(src->names[i]));
        if (r < 0)
                outer_dir_done(dst);
        return r;
}

/* The entry of dirs for the directory path[0, len), added if new; NULL
 * without memory. */
static struct outer_dir *outer_dir_get(struct outer_dir **dirs, size_t *n, size_t *cap, const char *path,
                                       size_t len) {
        for (size_t i = 0; i < *n; i++)
                if (strlen((*dirs)[i].path) == len && memcmp((*dirs)[i].path, path, len) == 0)
                        return &(*dirs)[i];
        if (GREEDY_REALLOC(*dirs, *cap, *n + 1, 8) < 0)
                return NULL;
        struct outer_dir *dir = &(*dirs)[*n];
        *dir = (struct outer_dir) { .path = strndup(path, len) };
        if (!dir->path)
                return NULL;
        (*n)++;
        return dir;
}

int watcher_set_ancestors(struct watcher *w, const char *const *roots, size_t n_roots, const char *const *awaited,
                          size_t n_awaited) {
        struct outer_dir *dirs = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        assert(w);
        assert(roots || n_roots == 0);
        assert(awaited || n_awaited == 0);

        if (w->is_closing)
                return -ESHUTDOWN;
        /* A few roots, a few levels each: quadratic is fine. */
        for (size_t i = 0; i < n_roots; i++) {
                size_t len = path_trimmed_len(roots[i]);

                while ((len = path_parent_len(roots[i], len)) > 0) {
                        bool is_covered = false;

                        for (size_t k = 0; k < n_roots && !is_covered; k++)
                                is_covered = path_is_under(roots[i], len, roots[k], path_trimmed_len(roots[k]));
                        if (!is_covered && !outer_dir_get(&dirs, &n, &cap, roots[i], len)) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }
        for (size_t i = 0; i < n_awaited; i++) {
                size_t len = path_trimmed_len(awaited[i]), parent_len = path_parent_len(awaited[i], len);
                const char *name = awaited[i] + parent_len + (awaited[i][parent_len] == '/');
                size_t name_len = len - (size_t) (name - awaited[i]);
                struct outer_dir *dir;

                if (parent_len == 0 || name_len == 0 || watcher_find_dir(w, awaited[i], parent_len))
                        continue;
                dir = outer_dir_get(&dirs, &n, &cap, awaited[i], parent_len);
                if (!dir || (!outer_dir_awaits(dir, name, name_len) &&
                             strv_push(&dir->names, &dir->n_names, strndup(name, name_len)) < 0)) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        r = w->ops->set_ancestors(w, dirs, n);
finish:
        for (size_t i = 0; i < n; i++)
                outer_dir_done(&dirs[i]);
        free(dirs);
        return r;
}

size_t watcher_count(const struct watcher *w) {
        assert(w);
        return w->dirs.n_items;
}

bool watcher_pairs_renames(const struct watcher *w) {
        assert(w);
        return w->ops->pairs_renames;
}

void watcher_free(struct watcher *w) {
        if (!w || w->is_closing)
                return;
        w->is_closing = true;
        w->ops->close(w);
}
