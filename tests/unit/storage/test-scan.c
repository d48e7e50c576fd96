/* scan_tree(): which entries are notes, and that they come out in the
 * byte order of their paths (the files table's order), on a real tree;
 * .quireignore files in the walk, in a walk that starts below its root and
 * in the one-path classifier, against git's own reading of the same files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "scan.h"
#include "tree.h"

static char root[] = "/tmp/quire-test-scan-XXXXXX";
/* A second tree, below root, for the .quireignore tests. */
static char ig[] = "/tmp/quire-test-scan-ig-XXXXXX";

static void make_file(const char *rel) {
        tree_write(root, rel, "# note\n");
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
        const char *base; /* paths are kept relative to it; NULL: root */
};

static int collect(const char *path, const struct stat *st, void *userdata) {
        struct seen *s = userdata;
        if (s->n == 64 || !S_ISREG(st->st_mode))
                return -EINVAL;
        s->paths[s->n++] = strdup(path + strlen(s->base ? s->base : root));
        return 0;
}

static void seen_done(struct seen *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->paths[i]);
        s->n = 0;
}

static void test_notes_come_in_byte_order_and_skips_are_counted(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .n = 0 };

        REQUIRE(scan_tree(root, NULL, NULL, collect, NULL, &seen, &counts) == 0);
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

        REQUIRE(scan_tree(root, NULL, &rules, collect, NULL, &seen, &counts) == 0);
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

/* The .quireignore tree (made in main): gitignore(5) at work across three
 * levels of files. */
static const char *const ig_notes[] = {
        "/a.md",
        "/archive/2024/new.md",     /* excluded, then the directory and its notes re-included */
        "/journal/2024/public.md",
        "/journal/2024/x/private.md", /* a '*' spans one level only */
        "/keep.tmp.md",             /* *.tmp.md then !keep.tmp.md */
        "/secret.md",
        "/sub/deeper/y.tmp.md",     /* the deepest file has the last word */
        "/sub/deeper/z.md",
        "/sub/drafts/d.md",         /* sub/ re-includes what the top excludes */
        "/sub/keep-1.md",
};

static void test_quireignore_files_cut_the_walk(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .base = ig };

        REQUIRE(scan_tree(ig, NULL, NULL, collect, NULL, &seen, &counts) == 0);
        REQUIRE_INT_EQ(seen.n, ELEMENTSOF(ig_notes));
        for (size_t i = 0; i < seen.n; i++)
                CHECK_STR_EQ(seen.paths[i], ig_notes[i]);
        /* What is gone, each counted once: top-only.md, x.tmp.md,
         * trailing-space.md, drafts/, build/, archive/old.md,
         * journal/2024/private.md, deep/secret/s.md, nested-excluded/,
         * sub/other.md, sub/top-only.md. */
        CHECK_INT_EQ(counts.ignored, 11);
        /* The three .quireignore files read; drafts/.hidden.md and the
         * .quireignore in nested-excluded/ are never seen: those
         * directories are not opened. */
        CHECK_INT_EQ(counts.hidden, 3);
        CHECK_INT_EQ(counts.not_markdown, 1); /* notes.txt */
        seen_done(&seen);
}

/* git reads the same files as its per-directory exclude files: the notes
 * it leaves are ours. */
static void test_git_leaves_the_same_notes(void) {
        char cmd[1400], path[200];

        if (system("git --version >/dev/null 2>&1") != 0)
                SKIP("git is not installed");
        snprintf(path, sizeof path, "%s/git-copy", root);
        REQUIRE(strlen(ig) + strlen(root) < 100);
        snprintf(cmd, sizeof cmd,
                 "cp -a '%s' '%s' && cd '%s' && git init -q . && "
                 "git ls-files --others --exclude-per-directory=.quireignore -z >'%s/git-notes'",
                 ig, path, path, root);
        REQUIRE(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "%s/git-notes", root);
        FILE *f = fopen(cmd, "re");
        REQUIRE(f);
        char name[512];
        size_t n_notes = 0, n = 0;
        int c;
        while ((c = fgetc(f)) != EOF) {
                if (c != '\0') {
                        if (n + 1 < sizeof name)
                                name[n++] = (char) c;
                        continue;
                }
                name[n] = '\0';
                n = 0;
                /* Notes only: *.md, nothing hidden on the way. */
                size_t len = strlen(name);
                if (len < 3 || strcmp(name + len - 3, ".md") != 0 || name[0] == '.' || strstr(name, "/."))
                        continue;
                bool is_ours = false;
                for (size_t i = 0; i < ELEMENTSOF(ig_notes); i++)
                        is_ours |= strcmp(ig_notes[i] + 1, name) == 0;
                if (!is_ours) {
                        check_fail(__FILE__, __LINE__, __func__, "git keeps a note quire skips");
                        fprintf(stderr, "    %s\n", name);
                }
                n_notes++;
        }
        fclose(f);
        CHECK_INT_EQ(n_notes, ELEMENTSOF(ig_notes));
}

static void test_walk_below_the_root_sees_the_rules_above(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .base = ig };
        char dir[600];

        /* sub/ alone, as the daemon walks a directory that appeared: the
         * top file's *.tmp.md and drafts/ apply there too (and sub's own
         * file overrides them as in a whole walk). */
        snprintf(dir, sizeof dir, "%s/sub", ig);
        REQUIRE(scan_tree(ig, dir, NULL, collect, NULL, &seen, &counts) == 0);
        static const char *const expected[] = { "/sub/deeper/y.tmp.md", "/sub/deeper/z.md", "/sub/drafts/d.md",
                                                "/sub/keep-1.md" };
        REQUIRE_INT_EQ(seen.n, ELEMENTSOF(expected));
        for (size_t i = 0; i < seen.n; i++)
                CHECK_STR_EQ(seen.paths[i], expected[i]);
        CHECK_INT_EQ(counts.ignored, 2); /* sub/other.md, sub/top-only.md */
        seen_done(&seen);

        /* A directory the rules above skip: nothing, counted once. */
        counts = (struct scan_counts){ 0 };
        snprintf(dir, sizeof dir, "%s/archive", ig);
        CHECK_INT_EQ(scan_tree(ig, dir, NULL, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 1); /* archive/2024/new.md: re-included */
        seen_done(&seen);
        counts = (struct scan_counts){ 0 };
        snprintf(dir, sizeof dir, "%s/nested-excluded", ig);
        CHECK_INT_EQ(scan_tree(ig, dir, NULL, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 0);
        CHECK_INT_EQ(counts.ignored, 1);
        snprintf(dir, sizeof dir, "%s/sub/drafts", ig);
        CHECK_INT_EQ(scan_tree(ig, dir, NULL, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 1);
        seen_done(&seen);

        /* A glob relative to the root, not to where the walk starts. */
        char *globs[] = { "sub/keep-*" };
        struct scan_rules rules = { .ignore_globs = globs, .n_ignore_globs = 1 };
        snprintf(dir, sizeof dir, "%s/sub", ig);
        CHECK_INT_EQ(scan_tree(ig, dir, &rules, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 4); /* sub's "!keep-*.md" beats the glob, as a .gitignore beats the global excludes */
        seen_done(&seen);
        char *deeper_globs[] = { "sub/deeper/z.md" };
        rules.ignore_globs = deeper_globs;
        CHECK_INT_EQ(scan_tree(ig, dir, &rules, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 4); /* deeper/'s "!*.md" beats it too */
        seen_done(&seen);
        char *subtree_globs[] = { "deeper/**" };
        rules.ignore_globs = subtree_globs;
        CHECK_INT_EQ(scan_tree(ig, dir, &rules, collect, NULL, &seen, &counts), 0);
        CHECK_INT_EQ(seen.n, 4); /* anchored at the root, where there is no deeper/ */
        seen_done(&seen);
}

static void test_classify_path_agrees_with_the_walk(void) {
        struct ignore_cache *cache = NULL;
        static const struct {
                const char *rel;
                bool is_dir;
                enum scan_verdict v;
        } cases[] = {
                { "a.md", false, SCAN_KEEP },
                { "top-only.md", false, SCAN_IGNORED },
                { "sub/top-only.md", false, SCAN_IGNORED },
                { "drafts", true, SCAN_IGNORED },
                { "drafts/d.md", false, SCAN_IGNORED },
                { "drafts/new/deep.md", false, SCAN_IGNORED },
                { "sub/drafts/d.md", false, SCAN_KEEP },
                { "sub/drafts/new.md", false, SCAN_KEEP },
                { "archive/2024/new.md", false, SCAN_KEEP },
                { "archive/2025/new.md", false, SCAN_IGNORED },
                { "nested-excluded/n.md", false, SCAN_IGNORED },
                { "sub/deeper/y.tmp.md", false, SCAN_KEEP },
                { "sub/deeper/new.txt", false, SCAN_NOT_MARKDOWN },
                { "sub/.quireignore", false, SCAN_HIDDEN },
                { "deep/secret/s.md", false, SCAN_IGNORED },
                { "deep/secret", true, SCAN_KEEP },
                { "journal/2024/private.md", false, SCAN_IGNORED },
                { "journal/2024/x/private.md", false, SCAN_KEEP },
        };

        REQUIRE(ignore_cache_new(64, &cache) == 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                enum scan_verdict v = scan_classify_path(NULL, cache, ig, cases[i].rel, cases[i].is_dir);
                if (v != cases[i].v) {
                        check_fail(__FILE__, __LINE__, __func__, "verdict");
                        fprintf(stderr, "    %s: got %d, expected %d\n", cases[i].rel, v, cases[i].v);
                }
        }
        /* Each directory on the way was read once: the cache answered the
         * rest (ig, sub, sub/drafts, sub/deeper, drafts, archive,
         * archive/2024, archive/2025, nested-excluded, deep, deep/secret,
         * journal, journal/2024, journal/2024/x; never below a skipped
         * directory). */
        unsigned long loads = ignore_cache_loads(cache);
        CHECK(loads <= 14);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                (void) scan_classify_path(NULL, cache, ig, cases[i].rel, cases[i].is_dir);
        CHECK_INT_EQ(ignore_cache_loads(cache), loads);

        /* A new file is seen once the cache forgets its directory. */
        tree_write(ig, "journal/.quireignore", "2024/\n");
        char dir[600];
        snprintf(dir, sizeof dir, "%s/journal", ig);
        CHECK_INT_EQ(scan_classify_path(NULL, cache, ig, "journal/2024/public.md", false), SCAN_KEEP);
        ignore_cache_forget(cache, dir, false);
        CHECK_INT_EQ(scan_classify_path(NULL, cache, ig, "journal/2024/public.md", false), SCAN_IGNORED);
        snprintf(dir, sizeof dir, "%s/journal/.quireignore", ig);
        REQUIRE(unlink(dir) == 0);
        ignore_cache_free(cache);
}

static int stop_at_second(const char *path, const struct stat *st, void *userdata) {
        return ++*(int *) userdata == 2 ? -ECANCELED : 0;
}

static void test_callback_error_stops_the_walk(void) {
        struct scan_counts counts = { 0 };
        int calls = 0;

        CHECK_INT_EQ(scan_tree(root, NULL, NULL, stop_at_second, NULL, &calls, &counts), -ECANCELED);
        CHECK_INT_EQ(calls, 2);
}

static void test_missing_root_is_an_error(void) {
        struct scan_counts counts = { 0 };
        struct seen seen = { .n = 0 };
        char path[512];

        snprintf(path, sizeof path, "%s/no-such-dir", root);
        CHECK_INT_EQ(scan_tree(path, NULL, NULL, collect, NULL, &seen, &counts), -ENOENT);
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

        if (!mkdtemp(ig))
                return 1;
        tree_write(ig, ".quireignore",
                 "# the top of the tree\n"
                 "\n"
                 "drafts/\n"
                 "*.tmp.md\r\n"
                 "/top-only.md\n"
                 "build\n"
                 "!keep.tmp.md\n"
                 "archive/**\n"
                 "!archive/2024/\n"
                 "!archive/2024/**\n"
                 "journal/*/private.md\n"
                 "**/secret/**\n"
                 "nested-excluded/\n"
                 "trailing-space.md   \n");
        static const char *const ig_files[] = {
                "a.md", "top-only.md", "x.tmp.md", "keep.tmp.md", "secret.md", "trailing-space.md", "notes.txt",
                "drafts/d.md", "drafts/.hidden.md", "build/b.md", "archive/old.md", "archive/2024/new.md",
                "journal/2024/private.md", "journal/2024/public.md", "journal/2024/x/private.md",
                "deep/secret/s.md", "nested-excluded/n.md", "sub/keep-1.md", "sub/other.md", "sub/top-only.md",
                "sub/drafts/d.md", "sub/deeper/z.md", "sub/deeper/y.tmp.md",
        };
        for (size_t i = 0; i < ELEMENTSOF(ig_files); i++)
                tree_write(ig, ig_files[i], "# note\n");
        tree_write(ig, "sub/.quireignore", "*.md\n!keep-*.md\n!drafts/\n!drafts/*.md\n");
        tree_write(ig, "sub/deeper/.quireignore", "!*.md\n");
        tree_write(ig, "nested-excluded/.quireignore", "!*.md\n");

        RUN(test_notes_come_in_byte_order_and_skips_are_counted);
        RUN(test_rules_pick_extensions_and_ignore_globs);
        RUN(test_classify_checks_every_component);
        RUN(test_callback_error_stops_the_walk);
        RUN(test_missing_root_is_an_error);
        RUN(test_quireignore_files_cut_the_walk);
        RUN(test_git_leaves_the_same_notes);
        RUN(test_walk_below_the_root_sees_the_rules_above);
        RUN(test_classify_path_agrees_with_the_walk);

        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, ig);
        if (system(cmd) != 0)
                fprintf(stderr, "warning: could not remove %s\n", root);
        return check_summary();
}
