/* What every watch backend must do alike, included by each backend's test
 * file after it defines WATCH_TEST_BACKEND: SETUP() makes the fixture on
 * that backend, and RUN_BACKEND_TESTS() runs the tests below. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

#define SETUP(f)                                                               \
        do {                                                                   \
                int _r = fixture_setup((f), WATCH_TEST_BACKEND);               \
                if (_r < 0) {                                                  \
                        fprintf(stderr, "    setup: %s\n", strerror(-_r));     \
                        REQUIRE_INT_EQ(_r, 0);                                 \
                }                                                              \
        } while (0)

static void test_remove_tree_stops_events(void) {
        struct fixture f;
        char a[PATH_MAX], ab[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(mkdir(fixture_path(ab, a, "b"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, ab), 0);
        CHECK(fixture_settle(&f));

        watcher_remove_tree(f.w, a);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(write_file(fixture_path(file, a, "x.md"), "x"), 0);
        CHECK_INT_EQ(write_file(fixture_path(file, ab, "y.md"), "y"), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, a), 0);
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 0);

        /* And it can be watched again. */
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(write_file(fixture_path(file, a, "z.md"), "z"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_add_dir_twice_is_noop(void) {
        struct fixture f;
        char slash[PATH_MAX + 1];

        SETUP(&f);
        CHECK_INT_EQ(watcher_add_dir(f.w, f.root), 0);
        snprintf(slash, sizeof slash, "%s/", f.root);
        CHECK_INT_EQ(watcher_add_dir(f.w, slash), 0);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_add_dir_errors(void) {
        struct fixture f;
        char p[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(watcher_add_dir(f.w, fixture_path(p, f.root, "missing")), -ENOENT);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "file.md"), ""), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, p), -ENOTDIR);
        CHECK_INT_EQ(symlink(f.outside, fixture_path(p, f.root, "link")), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, p), -ENOTDIR);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_max_watches_switch(void) {
        struct fixture f;
        char a[PATH_MAX], b[PATH_MAX];

        setenv("QUIRE_TEST_MAX_WATCHES", "2", 1);
        SETUP(&f);
        unsetenv("QUIRE_TEST_MAX_WATCHES");
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(mkdir(fixture_path(b, f.root, "b"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, b), -ENOSPC);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        /* Already watched: still a no-op at the limit. */
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* Many directories, all closed by watcher_free: the loop ends empty. */
static void test_free_closes_every_handle(void) {
        struct fixture f;
        char p[PATH_MAX], name[32];

        SETUP(&f);
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof name, "d%d", i);
                CHECK_INT_EQ(mkdir(fixture_path(p, f.root, name), 0755), 0);
                CHECK_INT_EQ(watcher_add_dir(f.w, p), 0);
        }
        CHECK_INT_EQ(watcher_count(f.w), 201);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A root moved away with its parent: only the ancestor's watch can tell.
 * Changes inside an ancestor say nothing; its rename says WATCH_DIR_GONE
 * once, and it leaves the set. */
static void test_ancestor_renamed_reports_dir_gone(void) {
        struct fixture f;
        char p[PATH_MAX], r[PATH_MAX], p2[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(p, f.outside, "p"), 0755), 0);
        CHECK_INT_EQ(mkdir(fixture_path(r, p, "r"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, r), 0);
        CHECK_INT_EQ(watcher_set_ancestors(f.w, (const char *const[]){ r }, 1, NULL, 0), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2); /* ancestors are not counted */

        CHECK_INT_EQ(write_file(fixture_path(file, p, "x.md"), "x"), 0);
        CHECK_INT_EQ(write_file(fixture_path(file, f.outside, "y.md"), "y"), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);

        CHECK_INT_EQ(rename(p, fixture_path(p2, f.outside, "p2")), 0);
        CHECK(fixture_wait(&f, WATCH_DIR_GONE, p));
        CHECK_INT_EQ(rename(p2, p), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A missing root's first missing part, outside every watched folder:
 * its entry coming, renamed away and going says WATCH_AWAITED each time;
 * other entries there say nothing, and once it is no longer awaited,
 * neither does it. */
static void test_awaited_entry_reports_awaited(void) {
        struct fixture f;
        char vault[PATH_MAX], other[PATH_MAX], moved[PATH_MAX];

        SETUP(&f);
        fixture_path(vault, f.outside, "vault");
        CHECK_INT_EQ(watcher_set_ancestors(f.w, (const char *const[]){ f.root }, 1, (const char *const[]){ vault }, 1),
                     0);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(write_file(fixture_path(other, f.outside, "other.md"), "x"), 0);
        CHECK_INT_EQ(mkdir(fixture_path(other, f.outside, "vault2"), 0755), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);

        CHECK_INT_EQ(mkdir(vault, 0755), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, vault));
        fixture_clear(&f);
        CHECK_INT_EQ(rename(vault, fixture_path(moved, f.outside, "away")), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, vault));
        fixture_clear(&f);
        CHECK_INT_EQ(symlink(moved, vault), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, vault));
        fixture_clear(&f);
        CHECK_INT_EQ(unlink(vault), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, vault));

        CHECK_INT_EQ(watcher_set_ancestors(f.w, (const char *const[]){ f.root }, 1, NULL, 0), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(mkdir(vault, 0755), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_AWAITED, NULL), 0);
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A symlink to the root, replaced by another (ln -sfn: a new link renamed
 * over it) in a folder that is also a root's ancestor. */
static void test_awaited_link_replaced_in_an_ancestor(void) {
        struct fixture f;
        char a[PATH_MAX], b[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(a, f.outside, "a"), 0755), 0);
        CHECK_INT_EQ(mkdir(fixture_path(b, f.outside, "b"), 0755), 0);
        CHECK_INT_EQ(symlink(a, fixture_path(link, f.outside, "notes")), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(watcher_set_ancestors(f.w, (const char *const[]){ a }, 1, (const char *const[]){ link }, 1), 0);
        CHECK_INT_EQ(symlink(b, fixture_path(tmp, f.outside, "notes.tmp")), 0);
        CHECK_INT_EQ(rename(tmp, link), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, link));
        CHECK(fixture_sync(&f));
        /* The temporary link is no awaited entry: nothing else was said. */
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), fixture_count(&f, WATCH_AWAITED, link));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* quired's state file is awaited in its folder: written in place and
 * chmod'ed, as quired does with it, it says nothing (its own writes must
 * not wake it); removed, it says WATCH_AWAITED. */
static void test_awaited_entry_written_in_place_says_nothing(void) {
        struct fixture f;
        char state[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(state, f.outside, "index.db.daemon"), "pid=1\n"), 0);
        CHECK_INT_EQ(watcher_set_ancestors(f.w, (const char *const[]){ f.root }, 1, (const char *const[]){ state }, 1),
                     0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(write_file(state, "pid=1\nstate=watching\n"), 0);
        CHECK_INT_EQ(chmod(state, 0600), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);
        CHECK_INT_EQ(unlink(state), 0);
        CHECK(fixture_wait(&f, WATCH_AWAITED, state));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

#define RUN_BACKEND_TESTS()                                                    \
        do {                                                                   \
                RUN(test_ancestor_renamed_reports_dir_gone);                   \
                RUN(test_awaited_entry_reports_awaited);                       \
                RUN(test_awaited_link_replaced_in_an_ancestor);                \
                RUN(test_awaited_entry_written_in_place_says_nothing);         \
                RUN(test_remove_tree_stops_events);                            \
                RUN(test_add_dir_twice_is_noop);                               \
                RUN(test_add_dir_errors);                                      \
                RUN(test_max_watches_switch);                                  \
                RUN(test_free_closes_every_handle);                            \
        } while (0)
