/* sync_run()'s kept directories (sync_options.kept_dirs): a walk keeps
 * the rows at or below them whatever it finds there (a root missing with
 * its notes kept, inside the tree walked), and drops the rows of notes
 * gone elsewhere as before; a kept directory covers its own subtree only,
 * not a sibling whose name it begins; the tree walked itself kept keeps
 * its own unseen rows. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "index.h"
#include "store.h"
#include "sync.h"
#include "tree.h"

static char tree[] = "/tmp/quire-test-sync-XXXXXX";
static char db_path[600];

static void path_of(char *out, size_t n, const char *rel) {
        snprintf(out, n, "%s/%s", tree, rel);
}

static void write_note(const char *rel, const char *text) {
        tree_write(tree, rel, text);
}

static void remove_note(const char *rel) {
        char path[512];
        path_of(path, sizeof path, rel);
        if (unlink(path) < 0)
                abort();
}

/* The notes below the tree the files table holds, relative, "a b c". */
static char *indexed(void) {
        struct store *s = NULL;
        struct file_row *rows = NULL;
        size_t n = 0;
        static char out[8192];

        out[0] = '\0';
        if (store_open(db_path, NULL, &s) < 0 || store_list_files(s, "default", tree, &rows, &n) < 0)
                abort();
        for (size_t i = 0; i < n; i++) {
                size_t used = strlen(out);
                if (snprintf(out + used, sizeof out - used, "%s%s", i ? " " : "", rows[i].path + strlen(tree) + 1) >=
                    (int) (sizeof out - used))
                        abort(); /* a test with more notes than this holds */
        }
        file_rows_free(rows, n);
        store_close(s);
        return out;
}

/* Walks the tree, calling progress after each commit; kept_rel: a
 * directory to keep, relative to it ("" is the tree itself), or NULL. */
static int sync_tree_with(const char *kept_rel, void (*progress)(size_t, size_t, bool, void *), void *userdata) {
        struct store *s = NULL;
        struct sync_stats stats = { 0 };
        char kept[512];
        char *kept_dirs[] = { kept };
        struct sync_options opts = {
                .namespace = "default", .root = tree, .progress_cb = progress, .userdata = userdata
        };
        char *dirs[] = { tree };

        if (kept_rel) {
                if (*kept_rel)
                        path_of(kept, sizeof kept, kept_rel);
                else
                        snprintf(kept, sizeof kept, "%s", tree);
                opts.kept_dirs = kept_dirs;
                opts.n_kept_dirs = 1;
        }
        if (store_open(db_path, NULL, &s) < 0)
                abort();
        int r = sync_run(s, &opts, dirs, 1, NULL, 0, &stats);
        store_close(s);
        return r;
}

static int sync_tree(const char *kept_rel) {
        return sync_tree_with(kept_rel, NULL, NULL);
}

static void test_kept_directory_keeps_its_rows(void) {
        write_note("a.md", "# a\n\naardvark\n");
        write_note("drive/b.md", "# b\n\nbumblebee\n");
        write_note("drive/sub/c.md", "# c\n\ncapybara\n");
        write_note("drive-other/d.md", "# d\n\ndingo\n");
        write_note("other/e.md", "# e\n\neland\n");
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md drive-other/d.md drive/b.md drive/sub/c.md other/e.md");

        /* The drive's folder emptied (not mounted), and notes gone
         * elsewhere, one of them beside it with a name it begins. */
        remove_note("drive/b.md");
        remove_note("drive/sub/c.md");
        remove_note("drive-other/d.md");
        remove_note("other/e.md");
        REQUIRE(sync_tree("drive") == 0);
        CHECK_STR_EQ(indexed(), "a.md drive/b.md drive/sub/c.md");

        /* Not kept any more: the walk finds them gone. */
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md");
}

static void test_kept_tree_walked_keeps_its_rows(void) {
        write_note("drive/gone.md", "# gone\n\ngecko\n");
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md drive/gone.md");
        remove_note("drive/gone.md");
        /* The tree itself kept (a root being restored): its own walk
         * keeps what it does not find, until it is not kept. */
        REQUIRE(sync_tree("") == 0);
        CHECK_STR_EQ(indexed(), "a.md drive/gone.md");
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md");
}

static void test_kept_directory_still_takes_new_notes(void) {
        write_note("drive/new.md", "# new\n\nnarwhal\n");
        REQUIRE(sync_tree("drive") == 0);
        CHECK_STR_EQ(indexed(), "a.md drive/new.md");
}

/* A note put aside before a walk lists its directory, and back by the
 * time the walk has finished (an editor's save that renames the original
 * away and back): moved back at the first progress call after the walk
 * (is_total), which comes before the rows it did not see are judged. */
struct put_back {
        char away[600], home[600];
        bool is_back;
};

static void put_back_after_walk(size_t n_done, size_t n_known, bool is_total, void *userdata) {
        struct put_back *pb = userdata;

        (void) n_done, (void) n_known;
        if (is_total && !pb->is_back && rename(pb->away, pb->home) == 0)
                pb->is_back = true;
}

static void test_note_away_while_listed_keeps_its_rows(void) {
        struct put_back pb = { 0 };

        write_note("away.md", "# away\n\naxolotl\n");
        write_note("skip.md", "# skip\n\nskink\n");
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md away.md drive/new.md skip.md");
        path_of(pb.home, sizeof pb.home, "away.md");
        snprintf(pb.away, sizeof pb.away, "%s.away", tree);
        REQUIRE(rename(pb.home, pb.away) == 0);
        /* The other half: a note the rules skip now still leaves. */
        write_note(".quireignore", "skip.md\n");
        REQUIRE(sync_tree_with(NULL, put_back_after_walk, &pb) == 0);
        CHECK(pb.is_back);
        CHECK_STR_EQ(indexed(), "a.md away.md drive/new.md");
        remove_note(".quireignore");
        remove_note("skip.md");
}

/* The other way a file the walk did not see can be there: through a
 * folder that is a symlink now, which the walk does not follow. */
static void test_note_behind_a_symlinked_folder_leaves(void) {
        char sub[600], moved[600];

        write_note("sub/x.md", "# x\n\nxylophone\n");
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md away.md drive/new.md sub/x.md");
        path_of(sub, sizeof sub, "sub");
        snprintf(moved, sizeof moved, "%s.sub", tree);
        REQUIRE(rename(sub, moved) == 0);
        REQUIRE(symlink(moved, sub) == 0);
        REQUIRE(sync_tree(NULL) == 0);
        CHECK_STR_EQ(indexed(), "a.md away.md drive/new.md");
        REQUIRE(unlink(sub) == 0);
}

/* A stop asked for before the walk is done (quired stopping) ends the
 * walk at its next note instead of its last, and a walk cut short judges
 * no row it did not see: the rows of notes gone stay for the next walk. */
static void test_stop_ends_the_walk_and_removes_nothing(void) {
        char rel[64];
        for (int i = 0; i < 200; i++) {
                snprintf(rel, sizeof rel, "many/n%03d.md", i);
                write_note(rel, "# many\n\nmongoose\n");
        }
        REQUIRE(sync_tree(NULL) == 0);
        remove_note("many/n000.md");
        remove_note("a.md");

        atomic_bool stop = true;
        struct store *s = NULL;
        struct sync_stats stats = { 0 };
        struct sync_options opts = { .namespace = "default", .root = tree, .cancel = &stop };
        char *dirs[] = { tree };
        REQUIRE(store_open(db_path, NULL, &s) == 0);
        CHECK_INT_EQ(sync_run(s, &opts, dirs, 1, NULL, 0, &stats), -ECANCELED);
        store_close(s);
        CHECK_INT_EQ(stats.n_unchanged_by_stat, 0);
        CHECK(strstr(indexed(), "a.md away.md") == indexed());
        CHECK(strstr(indexed(), "many/n000.md many/n001.md") != NULL);

        REQUIRE(sync_tree(NULL) == 0);
        CHECK(strstr(indexed(), "a.md") == NULL);
        CHECK(strstr(indexed(), "many/n000.md") == NULL);
        CHECK(strstr(indexed(), "many/n001.md many/n002.md") != NULL);
}

/* A thread's stack may be small (512 KiB for a secondary thread on
 * macOS): the pipeline's queue and the writer's batch, about 1.2 MiB,
 * live on the heap. (A stale round nests a second round's frame; this
 * walk has none, one frame overflowed already.) */
static void *sync_on_thread(void *userdata) {
        *(int *) userdata = sync_tree(NULL);
        return NULL;
}

static void test_walk_runs_on_a_small_stack(void) {
        pthread_attr_t attr;
        pthread_t thread;
        int r = -1;

        write_note("small/stack.md", "# stack\n\nstarling\n");
        REQUIRE(pthread_attr_init(&attr) == 0);
        REQUIRE(pthread_attr_setstacksize(&attr, 512 * 1024) == 0);
        REQUIRE(pthread_create(&thread, &attr, sync_on_thread, &r) == 0);
        REQUIRE(pthread_join(thread, NULL) == 0);
        pthread_attr_destroy(&attr);
        CHECK_INT_EQ(r, 0);
        CHECK(strstr(indexed(), "small/stack.md") != NULL);
}

int main(void) {
        if (!mkdtemp(tree))
                abort();
        snprintf(db_path, sizeof db_path, "%s.db", tree);
        RUN(test_kept_directory_keeps_its_rows);
        RUN(test_kept_tree_walked_keeps_its_rows);
        RUN(test_kept_directory_still_takes_new_notes);
        RUN(test_note_away_while_listed_keeps_its_rows);
        RUN(test_note_behind_a_symlinked_folder_leaves);
        RUN(test_stop_ends_the_walk_and_removes_nothing);
        RUN(test_walk_runs_on_a_small_stack);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s-wal' '%s-shm' '%s.sub'", tree, db_path, db_path, db_path,
                 tree);
        (void) system(cmd);
        return check_summary();
}
