/* The inotify backend against real directories: each inotify(7) event kind
 * comes out as the watch.h event the loop expects, renames are paired (also
 * of directories, whose watched paths follow), moves out are removals after
 * the pairing wait, dead watches are reported once, and the test switches
 * for the watch limit and queue overflow work. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

#ifdef __linux__

#define WATCH_TEST_BACKEND WATCH_BACKEND_INOTIFY
#include "backend-tests.h"

static void test_create_file_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK(watcher_pairs_renames(f.w));
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), ""), 0);
        e = fixture_wait(&f, WATCH_CHANGED, p);
        CHECK(e && !e->is_dir);
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, NULL), 0);
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
        CHECK(fixture_wait(&f, WATCH_CHANGED, p)); /* IN_MODIFY */
        fixture_clear(&f);
        CHECK_INT_EQ(close(fd), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, p)); /* IN_CLOSE_WRITE */
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_delete_file_reports_removed(void) {
        struct fixture f;
        char p[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(unlink(p), 0);
        e = fixture_wait(&f, WATCH_REMOVED, p);
        CHECK(e && !e->is_dir);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_mkdir_reports_changed_dir(void) {
        struct fixture f;
        char p[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(p, f.root, "sub"), 0755), 0);
        e = fixture_wait(&f, WATCH_CHANGED, p);
        CHECK(e && e->is_dir);
        /* The backend does not watch it by itself: that is the loop's call. */
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_file_within_dir_is_one_move(void) {
        struct fixture f;
        char a[PATH_MAX], b[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(a, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(rename(a, fixture_path(b, f.root, "b.md")), 0);
        e = fixture_wait(&f, WATCH_MOVED, b);
        CHECK(e && e->old_path && strcmp(e->old_path, a) == 0 && !e->is_dir);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_MOVED, NULL), 1);
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, NULL), 0);
        CHECK_INT_EQ(fixture_count(&f, WATCH_CHANGED, b), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_file_across_dirs_is_one_move(void) {
        struct fixture f;
        char d1[PATH_MAX], d2[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d1, f.root, "one"), 0755), 0);
        CHECK_INT_EQ(mkdir(fixture_path(d2, f.root, "two"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d1), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d2), 0);
        CHECK_INT_EQ(write_file(fixture_path(a, d1, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rename(a, fixture_path(b, d2, "b.md")), 0);
        e = fixture_wait(&f, WATCH_MOVED, b);
        CHECK(e && e->old_path && strcmp(e->old_path, a) == 0 && !e->is_dir);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, NULL), 0);
        CHECK_INT_EQ(fixture_count(&f, WATCH_CHANGED, b), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* The IN_MOVED_FROM as the last event of one read, its IN_MOVED_TO the first
 * of the next: 2047 events of 32 bytes each (names under 16 bytes pad to 16,
 * inotify(7)) fill all but the last slot of the backend's 64 KiB buffer. The
 * move is held across the reads and still comes out as one WATCH_MOVED. */
static void test_rename_split_across_reads_is_one_move(void) {
        struct fixture f;
        char a[PATH_MAX], b[PATH_MAX], p0[PATH_MAX], p1[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(a, f.root, "a.md"), "x"), 0);
        CHECK_INT_EQ(write_file(fixture_path(p0, f.root, "f0"), ""), 0);
        CHECK_INT_EQ(write_file(fixture_path(p1, f.root, "f1"), ""), 0);
        CHECK(fixture_settle(&f));
        /* IN_ATTRIB each; alternating names, as the kernel merges an event
         * into an identical one just before it. */
        for (int i = 0; i < 2047; i++)
                CHECK_INT_EQ(chmod(i % 2 ? p1 : p0, 0644), 0);
        CHECK_INT_EQ(rename(a, fixture_path(b, f.root, "b.md")), 0);

        const struct recorded_event *e = fixture_wait(&f, WATCH_MOVED, b);
        CHECK(e && e->old_path && strcmp(e->old_path, a) == 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, NULL), 0);
        CHECK_INT_EQ(fixture_count(&f, WATCH_CHANGED, NULL), 2047 + 2); /* and the sync file's two */
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* An editor's save: write a temporary file, rename it over the note. */
static void test_rename_over_existing_file_is_one_move(void) {
        struct fixture f;
        char tmp[PATH_MAX], note[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(note, f.root, "note.md"), "old"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(write_file(fixture_path(tmp, f.root, ".note.md.tmp"), "new"), 0);
        CHECK_INT_EQ(rename(tmp, note), 0);
        e = fixture_wait(&f, WATCH_MOVED, note);
        CHECK(e && e->old_path && strcmp(e->old_path, tmp) == 0);
        CHECK_INT_EQ(fixture_count(&f, WATCH_REMOVED, note), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_dir_moves_watches_below_it(void) {
        struct fixture f;
        char a[PATH_MAX], ab[PATH_MAX], c[PATH_MAX], cb[PATH_MAX], file[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(mkdir(fixture_path(ab, a, "b"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, ab), 0);
        CHECK_INT_EQ(watcher_count(f.w), 3);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rename(a, fixture_path(c, f.root, "c")), 0);
        e = fixture_wait(&f, WATCH_MOVED, c);
        CHECK(e && e->old_path && strcmp(e->old_path, a) == 0 && e->is_dir);
        CHECK_INT_EQ(watcher_count(f.w), 3);

        /* The loop rescans the new path and adds its directories again: the
         * watches are already there under the new names. */
        CHECK_INT_EQ(watcher_add_dir(f.w, c), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, fixture_path(cb, c, "b")), 0);
        CHECK_INT_EQ(watcher_count(f.w), 3);

        CHECK_INT_EQ(write_file(fixture_path(file, cb, "x.md"), "x"), 0);
        e = fixture_wait(&f, WATCH_CHANGED, file);
        CHECK(e && !e->is_dir);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, a), 1); /* the MOVED's old_path alone */
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 0);

        /* The old names are gone from the table, the new ones are there. */
        watcher_remove_tree(f.w, a);
        CHECK_INT_EQ(watcher_count(f.w), 3);
        watcher_remove_tree(f.w, c);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A directory renamed while its events were lost (an overflow), then added
 * again under its new name by the reconcile: inotify hands out the existing
 * wd, and the watches follow the directory instead of being counted twice. */
static void test_readd_moved_dir_after_overflow_follows_it(void) {
        struct fixture f;
        char a[PATH_MAX], ab[PATH_MAX], c[PATH_MAX], file[PATH_MAX];

        setenv("QUIRE_TEST_OVERFLOW_AFTER", "0", 1);
        SETUP(&f);
        unsetenv("QUIRE_TEST_OVERFLOW_AFTER");
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(mkdir(fixture_path(ab, a, "b"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, ab), 0);
        CHECK_INT_EQ(watcher_count(f.w), 3);

        /* All of the rename's events land in the read the switch drops. */
        CHECK_INT_EQ(rename(a, fixture_path(c, f.root, "c")), 0);
        CHECK(fixture_wait(&f, WATCH_OVERFLOW, NULL));
        CHECK_INT_EQ(fixture_count(&f, WATCH_MOVED, NULL), 0);

        CHECK_INT_EQ(watcher_add_dir(f.w, c), 0);
        CHECK_INT_EQ(watcher_count(f.w), 3);
        CHECK_INT_EQ(write_file(fixture_path(file, c, "b/x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, a), 0);
        watcher_remove_tree(f.w, c);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A directory deleted and made again while the events were lost: its path is
 * known but names another directory now, and adding it watches the new one. */
static void test_readd_replaced_dir_after_overflow_rewatches(void) {
        struct fixture f;
        char a[PATH_MAX], file[PATH_MAX];

        setenv("QUIRE_TEST_OVERFLOW_AFTER", "0", 1);
        SETUP(&f);
        unsetenv("QUIRE_TEST_OVERFLOW_AFTER");
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);

        CHECK_INT_EQ(rmdir(a), 0);
        CHECK_INT_EQ(mkdir(a, 0755), 0);
        CHECK(fixture_wait(&f, WATCH_OVERFLOW, NULL));

        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        CHECK_INT_EQ(write_file(fixture_path(file, a, "x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_move_file_out_reports_removed(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(rename(p, fixture_path(out, f.outside, "a.md")), 0);
        /* No event follows the IN_MOVED_FROM: this one waits out the pairing. */
        e = fixture_wait(&f, WATCH_REMOVED, p);
        CHECK(e && !e->is_dir);
        CHECK_INT_EQ(fixture_count(&f, WATCH_MOVED, NULL), 0);
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* Something else happening right after the move out: the removal is
 * delivered first, so the loop sees the events in the kernel's order. */
static void test_move_out_then_event_keeps_order(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX], other[PATH_MAX];
        size_t i_removed = SIZE_MAX, i_other = SIZE_MAX;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(rename(p, fixture_path(out, f.outside, "a.md")), 0);
        CHECK_INT_EQ(write_file(fixture_path(other, f.root, "b.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, other));
        for (size_t i = 0; i < f.n_events; i++) {
                if (f.events[i].kind == WATCH_REMOVED && strcmp(f.events[i].path, p) == 0 && i_removed == SIZE_MAX)
                        i_removed = i;
                if (f.events[i].kind == WATCH_CHANGED && strcmp(f.events[i].path, other) == 0 && i_other == SIZE_MAX)
                        i_other = i;
        }
        CHECK(i_removed < i_other);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_move_dir_out_drops_its_watches(void) {
        struct fixture f;
        char d[PATH_MAX], de[PATH_MAX], out[PATH_MAX], file[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d, f.root, "d"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK_INT_EQ(mkdir(fixture_path(de, d, "e"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, de), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rename(d, fixture_path(out, f.outside, "d")), 0);
        e = fixture_wait(&f, WATCH_REMOVED, d);
        CHECK(e && e->is_dir);
        CHECK_INT_EQ(watcher_count(f.w), 1);

        /* The kernel would go on watching them at their new place. */
        CHECK_INT_EQ(write_file(fixture_path(file, out, "e/x.md"), "x"), 0);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count_under(&f, f.outside), 0);
        CHECK_INT_EQ(fixture_count_under(&f, d), 1); /* the REMOVED */
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_move_file_in_reports_changed(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(out, f.outside, "a.md"), "x"), 0);
        CHECK_INT_EQ(rename(out, fixture_path(p, f.root, "a.md")), 0);
        e = fixture_wait(&f, WATCH_CHANGED, p);
        CHECK(e && !e->is_dir);
        CHECK_INT_EQ(fixture_count(&f, WATCH_MOVED, NULL), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_move_dir_in_reports_changed_dir(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX], file[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(out, f.outside, "d"), 0755), 0);
        CHECK_INT_EQ(write_file(fixture_path(file, out, "a.md"), "x"), 0);
        CHECK_INT_EQ(rename(out, fixture_path(p, f.root, "d")), 0);
        e = fixture_wait(&f, WATCH_CHANGED, p);
        CHECK(e && e->is_dir);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rmdir_reports_dir_gone_once(void) {
        struct fixture f;
        char d[PATH_MAX];
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d, f.root, "d"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(rmdir(d), 0);
        e = fixture_wait(&f, WATCH_DIR_GONE, d);
        CHECK(e && e->is_dir);
        e = fixture_wait(&f, WATCH_REMOVED, d);
        CHECK(e && e->is_dir);
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, NULL), 1);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* rmdir while something still holds the directory: the kernel's
 * IN_DELETE_SELF waits for that reference, but the name is free at once.
 * A directory made again under it must get a watch of its own. */
static void test_rmdir_busy_then_recreate_watches_new_dir(void) {
        struct fixture f;
        char d[PATH_MAX], file[PATH_MAX];
        int fd;

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(d, f.root, "d"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK(fixture_settle(&f));

        fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_INT_EQ(rmdir(d), 0);
        CHECK(fixture_wait(&f, WATCH_REMOVED, d));
        CHECK_INT_EQ(mkdir(d, 0755), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, d));
        CHECK_INT_EQ(watcher_add_dir(f.w, d), 0);
        CHECK_INT_EQ(watcher_count(f.w), 2);

        if (fd >= 0)
                close(fd); /* now the old directory's IN_DELETE_SELF/IN_IGNORED */
        CHECK_INT_EQ(write_file(fixture_path(file, d, "x.md"), "x"), 0);
        CHECK(fixture_wait(&f, WATCH_CHANGED, file));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, d), 1);
        CHECK_INT_EQ(watcher_count(f.w), 2);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* rm -r of a watched tree: every watched directory in it is gone once, and
 * the table is empty below it. */
static void test_remove_watched_tree_reports_each_dir_once(void) {
        struct fixture f;
        char a[PATH_MAX], ab[PATH_MAX], file[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(mkdir(fixture_path(a, f.root, "a"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, a), 0);
        CHECK_INT_EQ(mkdir(fixture_path(ab, a, "b"), 0755), 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, ab), 0);
        CHECK_INT_EQ(write_file(fixture_path(file, ab, "x.md"), "x"), 0);
        CHECK(fixture_settle(&f));

        CHECK_INT_EQ(unlink(file), 0);
        CHECK_INT_EQ(rmdir(ab), 0);
        CHECK_INT_EQ(rmdir(a), 0);
        CHECK(fixture_wait(&f, WATCH_REMOVED, a));
        CHECK(fixture_sync(&f));
        CHECK(fixture_find(&f, WATCH_REMOVED, file));
        CHECK(fixture_find(&f, WATCH_REMOVED, ab));
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, ab), 1);
        CHECK_INT_EQ(fixture_count(&f, WATCH_DIR_GONE, a), 1);
        CHECK_INT_EQ(watcher_count(f.w), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rmdir_root_reports_dir_gone(void) {
        struct fixture f;
        const struct recorded_event *e;

        SETUP(&f);
        CHECK_INT_EQ(rmdir(f.root), 0);
        e = fixture_wait(&f, WATCH_DIR_GONE, f.root);
        CHECK(e && e->is_dir);
        CHECK_INT_EQ(watcher_count(f.w), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

static void test_rename_root_reports_dir_gone(void) {
        struct fixture f;
        char moved[PATH_MAX], old_root[PATH_MAX];

        SETUP(&f);
        strcpy(old_root, f.root);
        CHECK_INT_EQ(rename(f.root, fixture_path(moved, f.outside, "root")), 0);
        CHECK(fixture_wait(&f, WATCH_DIR_GONE, old_root));
        CHECK_INT_EQ(watcher_count(f.w), 0);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}





static void test_overflow_after_switch(void) {
        struct fixture f;
        char p[PATH_MAX], name[32];

        setenv("QUIRE_TEST_OVERFLOW_AFTER", "3", 1);
        SETUP(&f);
        unsetenv("QUIRE_TEST_OVERFLOW_AFTER");
        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof name, "%d.md", i);
                CHECK_INT_EQ(write_file(fixture_path(p, f.root, name), "x"), 0);
        }
        CHECK(fixture_wait(&f, WATCH_OVERFLOW, NULL));
        /* Once, and events flow again afterwards. */
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_OVERFLOW, NULL), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* A real IN_Q_OVERFLOW: more events than fs.inotify.max_queued_events while
 * the loop does not read. */
static void test_kernel_overflow_reported(void) {
        struct fixture f;
        char p0[PATH_MAX], p1[PATH_MAX];
        long max_queued = 0;
        FILE *fp;

        fp = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
        if (fp) {
                if (fscanf(fp, "%ld", &max_queued) != 1)
                        max_queued = 0;
                fclose(fp);
        }
        if (max_queued <= 0 || max_queued > 1000000)
                SKIP("max_queued_events is %ld", max_queued);

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p0, f.root, "a.md"), ""), 0);
        CHECK_INT_EQ(write_file(fixture_path(p1, f.root, "b.md"), ""), 0);
        for (long i = 0; i < max_queued + 16; i++)
                if (chmod(i % 2 ? p1 : p0, 0644) < 0)
                        break;
        CHECK(fixture_wait(&f, WATCH_OVERFLOW, NULL));
        CHECK(fixture_sync(&f));
        CHECK_INT_EQ(fixture_count(&f, WATCH_OVERFLOW, NULL), 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* watcher_free with a move held for its partner frees everything. */
static void test_free_while_holding_a_move(void) {
        struct fixture f;
        char p[PATH_MAX], out[PATH_MAX];

        SETUP(&f);
        CHECK_INT_EQ(write_file(fixture_path(p, f.root, "a.md"), "x"), 0);
        CHECK(fixture_settle(&f));
        CHECK_INT_EQ(rename(p, fixture_path(out, f.outside, "a.md")), 0);
        uv_run(&f.loop, UV_RUN_ONCE);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

/* The loop may drop the watcher from inside its own event callback. */
static struct fixture *free_in_cb_fixture;
static unsigned free_in_cb_calls;

static void free_in_cb(const struct watch_event *ev, void *userdata) {
        free_in_cb_calls++;
        watcher_free(free_in_cb_fixture->w);
        free_in_cb_fixture->w = NULL;
}

static void test_free_from_event_callback(void) {
        struct fixture f;
        char p[PATH_MAX], name[32];
        int r;

        SETUP(&f);
        watcher_free(f.w);
        free_in_cb_fixture = &f;
        free_in_cb_calls = 0;
        r = watcher_new(&f.loop, WATCH_BACKEND_INOTIFY, free_in_cb, NULL, &f.w);
        REQUIRE_INT_EQ(r, 0);
        CHECK_INT_EQ(watcher_add_dir(f.w, f.root), 0);
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof name, "%d.md", i);
                CHECK_INT_EQ(write_file(fixture_path(p, f.root, name), "x"), 0);
        }
        uv_run(&f.loop, UV_RUN_ONCE);
        CHECK_INT_EQ(free_in_cb_calls, 1);
        CHECK_INT_EQ(fixture_teardown(&f), 0);
}

int main(void) {
        RUN(test_create_file_reports_changed);
        RUN(test_write_close_reports_changed);
        RUN(test_delete_file_reports_removed);
        RUN(test_mkdir_reports_changed_dir);
        RUN(test_rename_file_within_dir_is_one_move);
        RUN(test_rename_file_across_dirs_is_one_move);
        RUN(test_rename_split_across_reads_is_one_move);
        RUN(test_rename_over_existing_file_is_one_move);
        RUN(test_rename_dir_moves_watches_below_it);
        RUN(test_readd_moved_dir_after_overflow_follows_it);
        RUN(test_readd_replaced_dir_after_overflow_rewatches);
        RUN(test_move_file_out_reports_removed);
        RUN(test_move_out_then_event_keeps_order);
        RUN(test_move_dir_out_drops_its_watches);
        RUN(test_move_file_in_reports_changed);
        RUN(test_move_dir_in_reports_changed_dir);
        RUN(test_rmdir_reports_dir_gone_once);
        RUN(test_rmdir_busy_then_recreate_watches_new_dir);
        RUN(test_remove_watched_tree_reports_each_dir_once);
        RUN(test_rmdir_root_reports_dir_gone);
        RUN(test_rename_root_reports_dir_gone);
        RUN(test_overflow_after_switch);
        RUN(test_kernel_overflow_reported);
        RUN(test_free_while_holding_a_move);
        RUN(test_free_from_event_callback);
        RUN_BACKEND_TESTS();
        return check_summary();
}

#else

int main(void) {
        printf("inotify is Linux only\n");
        return 77;
}

#endif
