/* What the two watch backends share (watch.c): the table of watched
 * directories by path (with subtree walks for renames and removals), a small
 * open-addressing hash table under it, event delivery, and the test switches.
 * Only daemon/watch*.c include this; the loop sees watch.h alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "watch.h"

/* Open addressing with linear probing over item pointers; the item knows its
 * own hash (hash_of), so deletion can shift the probe chain back instead of
 * leaving tombstones. Kept at most half full. */
struct hash_table {
        void **slots;
        size_t n_slots; /* 0 or a power of two */
        size_t n_items;
        uint64_t (*hash_of)(const void *item);
};

typedef bool (*hash_match_fn)(const void *item, const void *key);

void *hash_table_find(const struct hash_table *t, uint64_t hash, hash_match_fn match, const void *key);
/* item must not be in the table yet. Returns 0 or -ENOMEM. */
int hash_table_put(struct hash_table *t, void *item);
/* Removes item (by identity) if present. Never allocates. */
void hash_table_remove(struct hash_table *t, void *item);
void hash_table_done(struct hash_table *t);

/* One watched directory. Backends embed it first in their own struct. */
struct watch_dir {
        char *path;       /* owned; absolute as added, no trailing slash */
        size_t path_len;
        uint64_t path_hash;
};

/* A directory watched from outside the roots (watcher_set_ancestors): for
 * its own rename or deletion, and for entries of the awaited names. */
struct outer_dir {
        char *path; /* trimmed */
        char **names; /* awaited entries; none for a plain ancestor */
        size_t n_names;
};

struct watcher_ops {
        int (*add_dir)(struct watcher *w, const char *path, size_t path_len);
        void (*remove_tree)(struct watcher *w, const char *path, size_t path_len);
        /* Make the directories watched from outside exactly dirs (distinct
         * paths); the backend keeps no pointer into them. */
        int (*set_ancestors)(struct watcher *w, const struct outer_dir *dirs, size_t n_dirs);
        /* Close every handle; the backend frees w from its close callbacks. */
        void (*close)(struct watcher *w);
        bool pairs_renames;
};

/* The common part; backends embed it first. */
struct watcher {
        const struct watcher_ops *ops;
        uv_loop_t *loop;
        watch_event_cb event_cb;
        void *userdata;
        struct hash_table dirs; /* path -> struct watch_dir */
        long test_max_watches;  /* QUIRE_TEST_MAX_WATCHES, or -1 */
        long test_overflow_after; /* QUIRE_TEST_OVERFLOW_AFTER, or -1 */
        bool is_closing;        /* watcher_free was called: deliver nothing more */
};

void watcher_init(struct watcher *w, const struct watcher_ops *ops, uv_loop_t *loop, watch_event_cb event_cb,
                  void *userdata);

/* Deliver one event (nothing once the watcher is closing). The callback may
 * call back into the watcher, even free it: callers must not hold pointers
 * into the tables across this, and must check w->is_closing after it. */
void watcher_emit(struct watcher *w, enum watch_event_kind kind, const char *path, const char *old_path,
                  bool is_dir);

/* Whether name is one of dir's awaited names (n bytes, not terminated). */
bool outer_dir_awaits(const struct outer_dir *dir, const char *name, size_t n);
/* Copy src into dst (names included). Returns 0 or -ENOMEM. */
int outer_dir_copy(struct outer_dir *dst, const struct outer_dir *src);
void outer_dir_done(struct outer_dir *dir);

/* Whether one more watch would pass the simulated limit of QUIRE_TEST_MAX_WATCHES. */
bool watcher_at_test_limit(const struct watcher *w);

struct watch_dir *watcher_find_dir(const struct watcher *w, const char *path, size_t path_len);
/* Sets d's path (copied) and puts d into w->dirs. Returns 0 or -ENOMEM. */
int watcher_insert_dir(struct watcher *w, struct watch_dir *d, const char *path, size_t path_len);
/* The watched directories at or below path, in no particular order, as an
 * array the caller frees (NULL with *ret_n == 0 when there are none).
 * Returns 0 or -ENOMEM. */
int watcher_collect_tree(const struct watcher *w, const char *path, size_t path_len, struct watch_dir ***ret,
                         size_t *ret_n);
/* Rewrite d's path from below old_prefix to below new_prefix and rehash it
 * in w->dirs. On -ENOMEM d keeps its old path (still in the table). */
int watcher_move_dir(struct watcher *w, struct watch_dir *d, size_t old_prefix_len, const char *new_prefix,
                     size_t new_prefix_len);

/* Whether path equals prefix or lies below it. */
bool path_is_under(const char *path, size_t path_len, const char *prefix, size_t prefix_len);

#ifdef __linux__
int watcher_inotify_new(uv_loop_t *loop, watch_event_cb event_cb, void *userdata, struct watcher **ret);
#endif
int watcher_fsevent_new(uv_loop_t *loop, watch_event_cb event_cb, void *userdata, struct watcher **ret);
