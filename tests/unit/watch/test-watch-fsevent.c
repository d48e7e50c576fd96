/* The fs-event backend (uv_fs_event_t per directory) against real
 * directories: everything is WATCH_CHANGED on the path, renames are not
 * paired, a watched directory that goes away is WATCH_DIR_GONE with its
 * handles closed, and watcher_remove_tree/watcher_free close handles so the
 * loop ends empty. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

#define WATCH_TEST_BACKEND WATCH_BACKEND_FS_EVENT
#include "backend-tests.h"

static void test_create_file_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX];

        SETUP(&f);
        CHECK(!watcher_pairs_renames(f.w));
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), ""), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_write_close_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX];
        int fd;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "one\n"), 0);
        CHECK(fixture_settle(&f));
        fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_INT_EQ(write(fd, "two\n", 4), 4);
        CHECK_INT_EQ(close(fd), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_delete_file_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(unlink(p), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, NULL), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_mkdir_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(p, f.root, "sub"), 0755), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_file_reports_both_paths(void) {
        struct fixture f;
        char d1[PATH_MAX], a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d1, f.root, "one"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d1), 0);
        CHECK_INT_EQ(write_file(fixture_path(a, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rename(a, fixture_path(b, f.root, "b.md")), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, a));
        CHECK(fixture_wait(&f, WATCH_CHANGED, b));
        /* Across two watched directories. */
        CHECK_INT_EQ(rename(b, fixture_path(c, d1, "c.md")), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, c));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_CHANGED, b), 2);
        CHECK_INT_EQ(fixture_count(&f, WATCH_MOVED, NULL), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_dir_then_events_carry_new_path(void) {
        struct fixture f;
        char a[PATH_MAX], c[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rename(a, fixture_path(c, f.root, "c")), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, a));
        CHECK(fixture_wait(&f, WATCH_CHANGED, c));
        /* The handle on the old path watches nothing by that name any more. */
        CHECK(fixture_wait(&f, WATCH_DIR_GONE, a));
        CHECK_INT_EQ(watcher_count(f.w), 1);

        /* What the loop does on seeing a directory at c: watch it. */
        CHECK_INT_EQ(watcher_add_dir(f.w, c), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        fixture_clear(&f);
        CHECK_INT_EQ(write_file(fixture_path(file, c, "x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, a), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_move_in_and_out_report_changed(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(out, f.outside, "a.md"), "x"), 0);
        CHECK_INT_EQ(rename(out, fixture_path(p, f.root, "a.md")), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(rename(p, out), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rmdir_reports_dir_gone(void) {
        struct fixture f;
        char d[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d, f.root, "d"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rmdir(d), 0);
        CHECK(fixture_wait(&f, WATCH_DIR_GONE, d));
        CHECK(fixture_wait(&f, WATCH_CHANGED, d));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 1);
        CHECK_INT_EQ(watcher_count(f.w), 1);

        /* Made again under the same name: a watch of its own. */
        CHECK_INT_EQ(mkdir(d, 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        CHECK_INT_EQ(write_file(fixture_path(file, d, "x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* Deleted and made again before the loop read a thing: the path is known,
 * but names another directory now, and adding it must watch the new one. */
static void test_recreated_dir_is_rewatched(void) {
        struct fixture f;
        char d[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d, f.root, "d"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK_INT_EQ(rmdir(d), 0);
        CHECK_INT_EQ(mkdir(d, 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        CHECK_INT_EQ(write_file(fixture_path(file, d, "x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(watcher_count(f.w), 2);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rmdir_root_reports_dir_gone(void) {
        struct fixture f;

        SETUP(&f);
        CHECK_INT_EQ(rmdir(f.root), 0);
        CHECK(fixture_wait(&f, WATCH_DIR_GONE, f.root));
        CHECK_INT_EQ(watcher_count(f.w), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}






int main(void) {
        RUN(test_create_file_reports_changed);
        RUN(test_write_close_reports_changed);
        RUN(test_delete_file_reports_changed);
        RUN(test_mkdir_reports_changed);
        RUN(test_rename_file_reports_both_paths);
        RUN(test_rename_dir_then_events_carry_new_path);
        RUN(test_move_in_and_out_report_changed);
        RUN(test_rmdir_reports_dir_gone);
        RUN(test_recreated_dir_is_rewatched);
        RUN(test_rmdir_root_reports_dir_gone);
        RUN_BACKEND_TESTS();
        return check_summary();
}
