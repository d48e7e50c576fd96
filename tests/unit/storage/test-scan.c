/* scan_tree(): which entries are notes, and that they come out in the
 * byte order of their paths (the files table's order), on a real tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "scan.h"

static char root[] = "/tmp/quire-test-scan-XXXXXX";

static void make_file(const char *rel) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "# note\n", 7) != 7)
                abort();
        close(fd);
}

static void make_dir(const char *rel) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        if (mkdir(path, 0755) < 0)
                abort();
}

struct seen {
        char *paths[64];
        size_t n;
};

static int collect(const char *path, const struct stat *st, void *userdata) {
        struct seen *s = userdata;
        if (s->n == 64 || !S_ISREG(st->st_mode))
                return -EINVAL;
        s->paths[s->n++] = strdup(path + strlen(root));
        return 0;
}

static void test_notes_come_in_byte_order_and_skips_are_counted(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .n = 0 };

        REQUIRE(scan_tree(root, NULL, collect, &seen, &counts) == 0);
        static const char *const expected[] = {
                "/a b.md", "/a.d/z.md", "/a.md", "/a/b/y.md", "/a/x.MD", "/a0.md", "/b.markdown",
        };
        REQUIRE_INT_EQ(seen.n, sizeof expected / sizeof expected[0]);
        for (size_t i = 0; i < seen.n; i++)
                CHECK_STR_EQ(seen.paths[i], expected[i]);
        /* Pin what must be gone, too: each skip counted where it belongs. */
        CHECK_INT_EQ(counts.hidden, 3);       /* .git/, .hidden.md, .#lock.md */
        CHECK_INT_EQ(counts.editor_temp, 3);  /* 4913, note.md~, note.md.swp */
        CHECK_INT_EQ(counts.not_markdown, 1); /* image.png */
        CHECK_INT_EQ(counts.symlinks, 2);     /* link.md, linkdir */
        CHECK_INT_EQ(counts.special, 1);      /* fifo.md */
        CHECK_INT_EQ(counts.unreadable, 0);
        for (size_t i = 0; i < seen.n; i++)
                free(seen.paths[i]);
}

static void test_rules_pick_extensions_and_ignore_globs(void) {
        char *extensions[] = { "MD", "markdown" };
        char *globs[] = { "a.d/**", "*0.md", "a/b/y.md" };
        struct scan_rules rules = {
                .extensions = extensions, .n_extensions = 2, .ignore_globs = globs, .n_ignore_globs = 3,
        };
        struct scan_counts counts = { 0 };
        struct seen seen = { .n = 0 };

        REQUIRE(scan_tree(root, &rules, collect, &seen, &counts) == 0);
        static const char *const expected[] = { "/a b.md", "/a.md", "/a/x.MD", "/b.markdown" };
        REQUIRE_INT_EQ(seen.n, sizeof expected / sizeof expected[0]);
        for (size_t i = 0; i < seen.n; i++)
                CHECK_STR_EQ(seen.paths[i], expected[i]);
        CHECK_INT_EQ(counts.ignored, 3); /* the a.d directory, a0.md, a/b/y.md */
        for (size_t i = 0; i < seen.n; i++)
                free(seen.paths[i]);
}

static void test_classify_checks_every_component(void) {
        char *globs[] = { "drafts/**", "*.tmp.md" };
        struct scan_rules rules = { .ignore_globs = globs, .n_ignore_globs = 2 };

        CHECK_INT_EQ(scan_classify(&rules, "notes/a.md", false), SCAN_KEEP);
        CHECK_INT_EQ(scan_classify(&rules, "notes", true), SCAN_KEEP);
        CHECK_INT_EQ(scan_classify(&rules, ".git/a.md", false), SCAN_HIDDEN);
        CHECK_INT_EQ(scan_classify(&rules, "notes/.obsidian/x.md", false), SCAN_HIDDEN);
        CHECK_INT_EQ(scan_classify(&rules, "notes/a.md.swp", false), SCAN_EDITOR_TEMP);
        CHECK_INT_EQ(scan_classify(&rules, "notes/4913", false), SCAN_EDITOR_TEMP);
        CHECK_INT_EQ(scan_classify(&rules, "drafts", true), SCAN_IGNORED);
        CHECK_INT_EQ(scan_classify(&rules, "drafts/deep/a.md", false), SCAN_IGNORED);
        CHECK_INT_EQ(scan_classify(&rules, "x/y.tmp.md", false), SCAN_IGNORED);
        CHECK_INT_EQ(scan_classify(&rules, "notes/a.txt", false), SCAN_NOT_MARKDOWN);
        CHECK_INT_EQ(scan_classify(NULL, "notes/a.MARKDOWN", false), SCAN_KEEP);
}

static int stop_at_second(const char *path, const struct stat *st, void *userdata) {
        return ++*(int *) userdata == 2 ? -ECANCELED : 0;
}

static void test_callback_error_stops_the_walk(void) {
        struct scan_counts counts = { 0 };
        int calls = 0;

        CHECK_INT_EQ(scan_tree(root, NULL, stop_at_second, &calls, &counts), -ECANCELED);
        CHECK_INT_EQ(calls, 2);
}

static void test_missing_root_is_an_error(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .n = 0 };
        char path[512];

        snprintf(path, sizeof path, "%s/no-such-dir", root);
        CHECK_INT_EQ(scan_tree(path, NULL, collect, &seen, &counts), -ENOENT);
        CHECK_INT_EQ(seen.n, 0);
}

int main(void) {
        if (!mkdtemp(root))
                return 1;
        log_setup("test-scan");
        make_dir("a");
        make_dir("a/b");
        make_dir("a.d");
        make_dir(".git");
        make_file(".git/config.md");
        make_file("a.md");
        make_file("a/x.MD");
        make_file("a/b/y.md");
        make_file("a.d/z.md");
        make_file("a0.md");
        make_file("a b.md");
        make_file("b.markdown");
        make_file(".hidden.md");
        make_file(".#lock.md");
        make_file("4913");
        make_file("note.md~");
        make_file("note.md.swp");
        make_file("image.png");
        char path[512], target[512];
        snprintf(path, sizeof path, "%s/fifo.md", root);
        if (mkfifo(path, 0644) < 0)
                return 1;
        snprintf(path, sizeof path, "%s/link.md", root);
        snprintf(target, sizeof target, "%s/a.md", root);
        if (symlink(target, path) < 0)
                return 1;
        snprintf(path, sizeof path, "%s/linkdir", root);
        snprintf(target, sizeof target, "%s/a", root);
        if (symlink(target, path) < 0)
                return 1;

        RUN(test_notes_come_in_byte_order_and_skips_are_counted);
        RUN(test_rules_pick_extensions_and_ignore_globs);
        RUN(test_classify_checks_every_component);
        RUN(test_callback_error_stops_the_walk);
        RUN(test_missing_root_is_an_error);

        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
                fprintf(stderr, "warning: could not remove %s\n", root);
        return check_summary();
}
