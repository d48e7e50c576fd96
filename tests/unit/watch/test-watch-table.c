/* The watched-directory table shared by both backends, at the scale of a big
 * notes tree (tens of thousands of directories): lookups, subtree walks and
 * renames, removals that keep every other entry findable; and the path
 * helpers the event decoding leans on. No kernel involved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util.h"
#include "watch-internal.h"

#define N_TOP 500
#define N_SUB 100

static void dummy_cb(const struct watch_event *ev, void *userdata) {
}

static const struct watcher_ops dummy_ops;

static struct watch_dir *add(struct watcher *w, const char *path) {
        struct watch_dir *d = calloc(1, sizeof *d);

        if (!d || watcher_insert_dir(w, d, path, strlen(path)) < 0) {
                free(d);
                return NULL;
        }
        return d;
}

static bool has(const struct watcher *w, const char *path) {
        return watcher_find_dir(w, path, strlen(path)) != NULL;
}

static void drop_all(struct watcher *w) {
        for (size_t i = 0; i < w->dirs.n_slots; i++) {
                struct watch_dir *d = w->dirs.slots[i];

                if (d) {
                        free(d->path);
                        free(d);
                }
        }
        hash_table_done(&w->dirs);
}

static void test_table_holds_fifty_thousand_dirs(void) {
        struct watcher w = { 0 };
        char p[64];
        size_t n_missing = 0;

        watcher_init(&w, &dummy_ops, NULL, dummy_cb, NULL);
        for (int i = 0; i < N_TOP; i++)
                for (int j = 0; j < N_SUB; j++) {
                        snprintf(p, sizeof p, "/notes/t%d/s%d", i, j);
                        REQUIRE(add(&w, p));
                }
        CHECK_INT_EQ(w.dirs.n_items, N_TOP * N_SUB);
        for (int i = 0; i < N_TOP; i++)
                for (int j = 0; j < N_SUB; j++) {
                        snprintf(p, sizeof p, "/notes/t%d/s%d", i, j);
                        n_missing += !has(&w, p);
                }
        CHECK_INT_EQ(n_missing, 0);
        CHECK(!has(&w, "/notes/t1"));
        CHECK(!has(&w, "/notes/t1/s100"));
        drop_all(&w);
}

static void test_table_removals_keep_the_rest(void) {
        struct watcher w = { 0 };
        char p[64];
        size_t n_wrong = 0;

        watcher_init(&w, &dummy_ops, NULL, dummy_cb, NULL);
        for (int i = 0; i < 40000; i++) {
                snprintf(p, sizeof p, "/n/%d", i);
                REQUIRE(add(&w, p));
        }
        /* Every other one out: backward shifts across many probe chains. */
        for (int i = 0; i < 40000; i += 2) {
                struct watch_dir *d;

                snprintf(p, sizeof p, "/n/%d", i);
                d = watcher_find_dir(&w, p, strlen(p));
                REQUIRE(d);
                hash_table_remove(&w.dirs, d);
                free(d->path);
                free(d);
        }
        CHECK_INT_EQ(w.dirs.n_items, 20000);
        for (int i = 0; i < 40000; i++) {
                snprintf(p, sizeof p, "/n/%d", i);
                n_wrong += has(&w, p) != (i % 2 == 1);
        }
        CHECK_INT_EQ(n_wrong, 0);
        drop_all(&w);
}

static void test_subtree_walk_and_rename(void) {
        struct watcher w = { 0 };
        struct watch_dir **found = NULL;
        size_t n_found = 0;
        char p[64];

        watcher_init(&w, &dummy_ops, NULL, dummy_cb, NULL);
        for (int i = 0; i < N_TOP; i++)
                for (int j = 0; j < 10; j++) {
                        snprintf(p, sizeof p, "/notes/t%d/s%d", i, j);
                        REQUIRE(add(&w, p));
                }
        REQUIRE(add(&w, "/notes/t1"));
        /* "/notes/t10" and friends are siblings, not children, of t1. */
        REQUIRE_INT_EQ(watcher_collect_tree(&w, "/notes/t1", strlen("/notes/t1"), &found, &n_found), 0);
        CHECK_INT_EQ(n_found, 11);
        for (size_t i = 0; i < n_found; i++)
                CHECK_INT_EQ(watcher_move_dir(&w, found[i], strlen("/notes/t1"), "/notes/renamed",
                                              strlen("/notes/renamed")),
                             0);
        free(found);
        CHECK(!has(&w, "/notes/t1"));
        CHECK(!has(&w, "/notes/t1/s3"));
        CHECK(has(&w, "/notes/renamed"));
        CHECK(has(&w, "/notes/renamed/s3"));
        CHECK(has(&w, "/notes/t10/s3"));
        CHECK_INT_EQ(w.dirs.n_items, N_TOP * 10 + 1);

        REQUIRE_INT_EQ(watcher_collect_tree(&w, "/", 1, &found, &n_found), 0);
        CHECK_INT_EQ(n_found, N_TOP * 10 + 1);
        free(found);
        REQUIRE_INT_EQ(watcher_collect_tree(&w, "/elsewhere", strlen("/elsewhere"), &found, &n_found), 0);
        CHECK_INT_EQ(n_found, 0);
        CHECK(found == NULL);
        drop_all(&w);
}

static void test_path_helpers(void) {
        char *j;

        CHECK(path_is_under("/a/b", 4, "/a", 2));
        CHECK(path_is_under("/a", 2, "/a", 2));
        CHECK(!path_is_under("/ab", 3, "/a", 2));
        CHECK(!path_is_under("/a", 2, "/a/b", 4));
        CHECK(path_is_under("/a", 2, "/", 1));
        CHECK(path_is_under("/", 1, "/", 1));

        CHECK_INT_EQ(path_parent_len("/a/b", 4), 2);
        CHECK_INT_EQ(path_parent_len("/a", 2), 1);
        CHECK_INT_EQ(path_parent_len("/", 1), 0);
        CHECK_INT_EQ(path_parent_len("a", 1), 0);

        j = path_join("/a", 2, "b.md", 4);
        CHECK(j && strcmp(j, "/a/b.md") == 0);
        free(j);
        j = path_join("/", 1, "b.md", 4);
        CHECK(j && strcmp(j, "/b.md") == 0);
        free(j);
        /* inotify pads names with NULs: only name_len bytes count. */
        j = path_join("/a", 2, "x\0\0\0", 1);
        CHECK(j && strcmp(j, "/a/x") == 0);
        free(j);
}

int main(void) {
        RUN(test_table_holds_fifty_thousand_dirs);
        RUN(test_table_removals_keep_the_rest);
        RUN(test_subtree_walk_and_rename);
        RUN(test_path_helpers);
        return check_summary();
}
