/* .quireignore patterns (storage/ignore.c): the wildmatch rules, the
 * gitignore(5) line rules, one file's verdict on a path, and the cache.
 * Every case of the file table is also put to git itself (git check-ignore
 * on a real tree) when git is installed, so the expectations written here
 * cannot drift from git's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ignore.h"
#include "log.h"

static char tmp[] = "/tmp/quire-test-ignore-XXXXXX";

/* --- wildmatch ------------------------------------------------------- */

static const struct {
        const char *glob, *text;
        bool is_match;
} glob_cases[] = {
        { "foo", "foo", true },
        { "foo", "bar", false },
        { "", "", true },
        { "???", "foo", true },
        { "??", "foo", false },
        { "*", "foo", true },
        { "f*", "foo", true },
        { "*f", "foo", false },
        { "*foo*", "foo", true },
        { "*ob*a*r*", "foobar", true },
        { "*ab", "aaaaaaabababab", true },
        { "foo\\*", "foo*", true },
        { "foo\\*bar", "foobar", false },
        { "f\\\\oo", "f\\oo", true },
        { "\\", "\\", false }, /* a lone trailing backslash matches nothing */
        { "*[al]?", "ball", true },
        { "[ten]", "ten", false },
        { "**[!te]", "ten", true },
        { "**[!ten]", "ten", false },
        { "t[a-g]n", "ten", true },
        { "t[!a-g]n", "ten", false },
        { "t[!a-g]n", "ton", true },
        { "t[^a-g]n", "ton", true },
        { "a[]]b", "a]b", true },
        { "a[]-]b", "a-b", true },
        { "a[]-]b", "a]b", true },
        { "a[]-]b", "aab", false },
        { "a[]a-]b", "aab", true },
        { "]", "]", true },
        { "a[b", "a[b", false }, /* no closing ']': matches nothing */
        { "[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true },
        { "[[:digit:][:upper:][:space:]]", "a", false },
        { "[[:digit:][:upper:][:space:]]", "A", true },
        { "[[:digit:][:upper:][:space:]]", "1", true },
        { "[[:digit:][:punct:][:space:]]", ".", true },
        { "[[:xdigit:]]", "f", true },
        { "[[:xdigit:]]", "g", false },
        { "[a-c[:digit:]x-z]", "5", true },
        { "[a-c[:digit:]x-z]", "y", true },
        { "[a-c[:digit:]x-z]", "q", false },
        { "[[:nope:]]", "n", false },
        { "[:]x", ":x", true },
        /* '/' is only ever matched by '/' or by "**" */
        { "foo*bar", "foo/baz/bar", false },
        { "foo**bar", "foo/baz/bar", false },
        { "foo?bar", "foo/bar", false },
        { "foo[/]bar", "foo/bar", false },
        { "foo[^a-z]bar", "foo/bar", false },
        { "f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo-bar", true },
        { "*/foo", "bar/foo", true },
        { "*/foo", "bar/baz/foo", false },
        { "foo/**/bar", "foo/bar", true },
        { "foo/**/bar", "foo/baz/bar", true },
        { "foo/**/bar", "foo/b/a/z/bar", true },
        { "foo/**/**/bar", "foo/b/a/z/bar", true },
        { "foo/**/bar", "foobar", false },
        { "foo/**/bar", "foo/xbar", false },
        { "**/foo", "foo", true },
        { "**/foo", "XXX/foo", true },
        { "**/foo", "bar/baz/foo", true },
        { "**/foo", "bar/bazfoo", false },
        { "**/bar*", "foo/bar/baz", false },
        { "**/bar/*", "deep/foo/bar/baz", true },
        { "**/bar/*", "deep/foo/bar/baz/", false },
        { "**/bar/**", "deep/foo/bar/baz/", true },
        { "**/bar/*", "deep/foo/bar", false },
        { "*/bar/**", "foo/bar/baz/x", true },
        { "*/bar/**", "deep/foo/bar/baz/x", false },
        { "**/bar/*/*", "deep/foo/bar/baz/x", true },
        { "abc/**", "abc/x", true },
        { "abc/**", "abc/x/y/z", true },
        { "abc/**", "abc", false },
        { "a**b", "axyb", true }, /* not a whole component: a plain '*' */
        { "x/a**b", "x/a/b", false },
        { "**", "a/b/c", true },
        { "*", "a/b", false },
        { "-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1", true },
        { "XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*", "XXX/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1", false },
        { "**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", true },
        { "**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", false },
        { "*.md", ".hidden.md", true }, /* no special case for a leading dot */
        { "*.MD", "a.md", false },      /* case matters */
};

static void test_wildmatch(void) {
        for (size_t i = 0; i < ELEMENTSOF(glob_cases); i++) {
                bool got = ignore_glob_match(glob_cases[i].glob, glob_cases[i].text);
                if (got != glob_cases[i].is_match) {
                        check_fail(__FILE__, __LINE__, __func__, "glob case");
                        fprintf(stderr, "    glob '%s' text '%s': got %s, expected %s\n", glob_cases[i].glob,
                                glob_cases[i].text, got ? "match" : "no match",
                                glob_cases[i].is_match ? "match" : "no match");
                }
        }
}

/* --- one file -------------------------------------------------------- */

enum { N = IGNORE_NO_MATCH, X = IGNORE_EXCLUDE, I = IGNORE_INCLUDE };

static const struct {
        const char *file, *path;
        bool is_dir;
        int expected;
} file_cases[] = {
        /* blank lines and comments */
        { "\n\n   \n", "a.md", false, N },
        { "# a.md\n", "a.md", false, N },
        { "# a.md\n", "# a.md", false, N },
        { "\\#a.md\n", "#a.md", false, X },
        { "#a.md\n", "#a.md", false, N },
        { " #a.md\n", " #a.md", false, X }, /* only a '#' in column 1 starts a comment */
        /* negation; the last matching line wins */
        { "*.md\n!keep.md\n", "keep.md", false, I },
        { "*.md\n!keep.md\n", "other.md", false, X },
        { "*.md\n!keep.md\n", "sub/keep.md", false, I },
        { "!keep.md\n*.md\n", "keep.md", false, X },
        { "\\!important.md\n", "!important.md", false, X },
        { "\\!important.md\n", "important.md", false, N },
        { "!\n", "!", false, N },
        { "!*.md\n", "a.md", false, I },
        /* trailing blanks go unless quoted; tabs stay */
        { "a.md   \n", "a.md", false, X },
        { "a.md   \n", "a.md   ", false, N },
        { "a.md\\ \n", "a.md ", false, X },
        { "a.md\\ \n", "a.md", false, N },
        { "a.md \\ \n", "a.md  ", false, X },
        { "a.md\t\n", "a.md\t", false, X },
        { "a.md\t\n", "a.md", false, N },
        /* CRLF, a byte order mark, no final newline */
        { "a.md\r\nb.md\r\n", "a.md", false, X },
        { "a.md\r\nb.md\r\n", "b.md", false, X },
        { "\xEF\xBB\xBF" "a.md\n", "a.md", false, X },
        { "x.md\na.md", "a.md", false, X },
        /* a trailing '/' matches directories only */
        { "build/\n", "build", true, X },
        { "build/\n", "build", false, N },
        { "build/\n", "sub/build", true, X },
        { "build\n", "build", false, X },
        { "build\n", "sub/build", true, X },
        /* a '/' at the start or in the middle anchors to the file's directory */
        { "/top.md\n", "top.md", false, X },
        { "/top.md\n", "sub/top.md", false, N },
        { "doc/frotz\n", "doc/frotz", false, X },
        { "doc/frotz\n", "a/doc/frotz", false, N },
        { "doc/frotz/\n", "doc/frotz", true, X },
        { "doc/frotz/\n", "doc/frotz", false, N },
        { "frotz/\n", "a/frotz", true, X },
        { "a/*.md\n", "a/b.md", false, X },
        { "a/*.md\n", "a/b/c.md", false, N },
        { "a/*.md\n", "x/a/b.md", false, N },
        /* no '/': a name at any depth */
        { "*.md\n", "a/b/c.md", false, X },
        { "*.md\n", "a/b/c.md.txt", false, N },
        { "?.md\n", "a.md", false, X },
        { "?.md\n", "ab.md", false, N },
        { "[abc].md\n", "b.md", false, X },
        { "[abc].md\n", "d.md", false, N },
        { "[!abc].md\n", "d.md", false, X },
        { "[!abc].md\n", "a.md", false, N },
        { "[[:digit:]]*.md\n", "2024-01.md", false, X },
        { "[[:digit:]]*.md\n", "x2024.md", false, N },
        { "\\*.md\n", "*.md", false, X },
        { "\\*.md\n", "a.md", false, N },
        { "*.MD\n", "a.md", false, N },
        /* "**" */
        { "**/foo\n", "foo", true, X },
        { "**/foo\n", "a/b/foo", false, X },
        { "**/foo\n", "a/bfoo", false, N },
        { "**/foo/bar.md\n", "foo/bar.md", false, X },
        { "**/foo/bar.md\n", "x/y/foo/bar.md", false, X },
        { "**/foo/bar.md\n", "x/afoo/bar.md", false, N },
        { "abc/**\n", "abc/x.md", false, X },
        { "abc/**\n", "abc/x/y.md", false, X },
        { "abc/**\n", "abc", true, N },
        { "a/**/b.md\n", "a/b.md", false, X },
        { "a/**/b.md\n", "a/x/b.md", false, X },
        { "a/**/b.md\n", "a/x/y/b.md", false, X },
        { "a/**/b.md\n", "a/xb.md", false, N },
        { "x/a**b\n", "x/ayb", false, X },
        { "x/a**b\n", "x/a/b", false, N },
        { "/**/deep.md\n", "deep.md", false, X },
        { "/**/deep.md\n", "a/b/deep.md", false, X },
        { "foo/**/\n", "foo/a", true, X },
        { "foo/**/\n", "foo/a", false, N },
        /* everything but directories */
        { "*\n!*/\n", "a", true, I },
        { "*\n!*/\n", "a.md", false, X },
        /* a pattern git would never match */
        { "a.md\\\n", "a.md\\", false, N },
        { "a.md\\\n", "a.md", false, N },
};

static void test_file_cases(void) {
        for (size_t i = 0; i < ELEMENTSOF(file_cases); i++) {
                struct ignore_file *f = NULL;
                REQUIRE(ignore_file_parse(file_cases[i].file, strlen(file_cases[i].file), &f) == 0);
                int got = ignore_file_match(f, file_cases[i].path, file_cases[i].is_dir);
                if (got != file_cases[i].expected) {
                        static const char *const names[] = { "no match", "exclude", "include" };
                        check_fail(__FILE__, __LINE__, __func__, "file case");
                        fprintf(stderr, "    case %zu: ", i);
                        check_print_bytes("file", file_cases[i].file, strlen(file_cases[i].file));
                        fprintf(stderr, "    path '%s'%s: got %s, expected %s\n", file_cases[i].path,
                                file_cases[i].is_dir ? " (dir)" : "", names[got], names[file_cases[i].expected]);
                }
                ignore_file_unref(f);
        }
}

static void test_comments_and_blanks_are_not_patterns(void) {
        static const char text[] = "# notes\n\n   \n*.md\n#x\n!\n/\n!/\nkeep/\n";
        struct ignore_file *f = NULL;

        REQUIRE(ignore_file_parse(text, sizeof text - 1, &f) == 0);
        CHECK_INT_EQ(ignore_file_n_patterns(f), 2); /* *.md, keep/ */
        ignore_file_unref(f);
}

static void test_nul_byte_ends_a_line_not_the_file(void) {
        static const char text[] = "a.md\0junk\nb.md\n";
        struct ignore_file *f = NULL;

        REQUIRE(ignore_file_parse(text, sizeof text - 1, &f) == 0);
        CHECK_INT_EQ(ignore_file_match(f, "a.md", false), X);
        CHECK_INT_EQ(ignore_file_match(f, "b.md", false), X);
        CHECK_INT_EQ(ignore_file_match(f, "junk", false), N);
        ignore_file_unref(f);
}

/* --- the same cases, asked of git ---------------------------------------- */

/* The verdict of one file over a whole path, as a walk reaches it: a
 * directory on the way that is excluded takes everything below with it
 * (gitignore(5): a file cannot be re-included if a parent is excluded). */
static bool is_excluded_on_the_way(const struct ignore_file *f, const char *path, bool is_dir) {
        char prefix[512];

        for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                snprintf(prefix, sizeof prefix, "%.*s", (int) (slash - path), path);
                if (ignore_file_match(f, prefix, true) == IGNORE_EXCLUDE)
                        return true;
        }
        return ignore_file_match(f, path, is_dir) == IGNORE_EXCLUDE;
}

static void write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        size_t n = strlen(text);
        if (fd < 0 || write(fd, text, n) != (ssize_t) n)
                abort();
        close(fd);
}

static void make_path(const char *path, bool is_dir) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void) mkdir(buf, 0755);
                *p = '/';
        }
        if (is_dir)
                (void) mkdir(buf, 0755);
        else
                write_file(buf, "x\n");
}

static void test_git_agrees_with_the_file_cases(void) {
        char cmd[1024], path[512];

        if (system("git --version >/dev/null 2>&1") != 0)
                SKIP("git is not installed");
        snprintf(cmd, sizeof cmd, "git init -q '%s/git'", tmp);
        REQUIRE(system(cmd) == 0);

        /* Case i lives in git/cI, with the case's file as its .gitignore. */
        snprintf(path, sizeof path, "%s/paths", tmp);
        FILE *list = fopen(path, "we");
        REQUIRE(list);
        for (size_t i = 0; i < ELEMENTSOF(file_cases); i++) {
                snprintf(path, sizeof path, "%s/git/c%zu", tmp, i);
                REQUIRE(mkdir(path, 0755) == 0);
                snprintf(path, sizeof path, "%s/git/c%zu/.gitignore", tmp, i);
                write_file(path, file_cases[i].file);
                snprintf(path, sizeof path, "%s/git/c%zu/%s", tmp, i, file_cases[i].path);
                make_path(path, file_cases[i].is_dir);
                fprintf(list, "c%zu/%s%c", i, file_cases[i].path, '\0');
        }
        fclose(list);
        snprintf(cmd, sizeof cmd,
                 "cd '%s/git' && git -c core.ignorecase=false check-ignore --no-index -v -n -z --stdin "
                 "<'%s/paths' >'%s/answers'",
                 tmp, tmp, tmp);
        REQUIRE(system(cmd) == 0);

        /* -z -v -n: source, line, pattern, path, each NUL-terminated. */
        snprintf(path, sizeof path, "%s/answers", tmp);
        FILE *answers = fopen(path, "re");
        REQUIRE(answers);
        char field[4][512];
        size_t n_answers = 0;
        for (;; n_answers++) {
                bool is_complete = true;
                for (int k = 0; k < 4 && is_complete; k++) {
                        size_t n = 0;
                        int c;
                        while ((c = fgetc(answers)) != EOF && c != '\0')
                                if (n + 1 < sizeof field[k])
                                        field[k][n++] = (char) c;
                        field[k][n] = '\0';
                        is_complete = c != EOF;
                }
                if (!is_complete)
                        break;
                size_t i = strtoul(field[3] + 1, NULL, 10);
                REQUIRE(i < ELEMENTSOF(file_cases));
                /* Ignored by git: a matching pattern that is not a negation. */
                bool git_says = field[2][0] && field[2][0] != '!';
                struct ignore_file *f = NULL;
                REQUIRE(ignore_file_parse(file_cases[i].file, strlen(file_cases[i].file), &f) == 0);
                bool we_say = is_excluded_on_the_way(f, file_cases[i].path, file_cases[i].is_dir);
                ignore_file_unref(f);
                if (git_says != we_say) {
                        check_fail(__FILE__, __LINE__, __func__, "git disagrees");
                        fprintf(stderr, "    case %zu, path '%s': git %s (%s:%s '%s'), quire %s\n", i,
                                file_cases[i].path, git_says ? "ignores" : "keeps", field[0], field[1], field[2],
                                we_say ? "ignores" : "keeps");
                }
        }
        fclose(answers);
        CHECK_INT_EQ(n_answers, ELEMENTSOF(file_cases));
}

/* --- loading and the cache ------------------------------------------------ */

static void test_load_refuses_symlinks_and_fifos(void) {
        char dir[256], path[512];
        struct ignore_file *f = (struct ignore_file *) 1;

        snprintf(dir, sizeof dir, "%s/load", tmp);
        REQUIRE(mkdir(dir, 0755) == 0);
        int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(dirfd >= 0);

        CHECK_INT_EQ(ignore_file_load(dirfd, dir, &f), 0); /* none */
        CHECK(f == NULL);

        snprintf(path, sizeof path, "%s/real", dir);
        write_file(path, "*.md\n");
        snprintf(path, sizeof path, "%s/.quireignore", dir);
        REQUIRE(symlink("real", path) == 0);
        CHECK_INT_EQ(ignore_file_load(dirfd, dir, &f), 0);
        CHECK(f == NULL);

        REQUIRE(unlink(path) == 0);
        REQUIRE(mkfifo(path, 0644) == 0); /* must not hang */
        CHECK_INT_EQ(ignore_file_load(dirfd, dir, &f), 0);
        CHECK(f == NULL);

        REQUIRE(unlink(path) == 0);
        write_file(path, "*.md\n!keep.md\n");
        CHECK_INT_EQ(ignore_file_load(dirfd, dir, &f), 0);
        REQUIRE(f != NULL);
        CHECK_INT_EQ(ignore_file_match(f, "keep.md", false), I);
        CHECK_INT_EQ(ignore_file_match(f, "a.md", false), X);
        ignore_file_unref(f);
        close(dirfd);
}

static void test_cache_hits_forgets_and_stays_bounded(void) {
        struct ignore_cache *c = NULL;
        struct ignore_file *f = NULL;
        char dir[256], sub[256], path[512];

        snprintf(dir, sizeof dir, "%s/cache", tmp);
        snprintf(sub, sizeof sub, "%s/cache/sub", tmp);
        REQUIRE(mkdir(dir, 0755) == 0);
        REQUIRE(mkdir(sub, 0755) == 0);
        REQUIRE(ignore_cache_new(4, &c) == 0);

        /* A directory without a file is remembered as such. */
        CHECK_INT_EQ(ignore_cache_get(c, dir, &f), 0);
        CHECK(f == NULL);
        CHECK_INT_EQ(ignore_cache_get(c, dir, &f), 0);
        CHECK_INT_EQ(ignore_cache_loads(c), 1);

        /* A file created later is seen once the cache forgets the directory. */
        snprintf(path, sizeof path, "%s/.quireignore", dir);
        write_file(path, "drafts/\n");
        CHECK_INT_EQ(ignore_cache_get(c, dir, &f), 0);
        CHECK(f == NULL); /* not told yet */
        ignore_cache_forget(c, dir, false);
        CHECK_INT_EQ(ignore_cache_get(c, dir, &f), 0);
        REQUIRE(f != NULL);
        CHECK_INT_EQ(ignore_file_match(f, "drafts", true), X);
        CHECK_INT_EQ(ignore_cache_loads(c), 2);

        /* A reference outlives its entry. */
        ignore_cache_clear(c);
        CHECK_INT_EQ(ignore_cache_count(c), 0);
        CHECK_INT_EQ(ignore_file_match(f, "drafts", true), X);
        ignore_file_unref(f);

        /* Forgetting a subtree drops the entries below, not the siblings. */
        CHECK_INT_EQ(ignore_cache_get(c, dir, &f), 0);
        ignore_file_unref(f);
        CHECK_INT_EQ(ignore_cache_get(c, sub, &f), 0);
        CHECK_INT_EQ(ignore_cache_get(c, tmp, &f), 0);
        CHECK_INT_EQ(ignore_cache_count(c), 3);
        snprintf(path, sizeof path, "%s/cach", tmp); /* a prefix, not a parent */
        ignore_cache_forget(c, path, true);
        CHECK_INT_EQ(ignore_cache_count(c), 3);
        ignore_cache_forget(c, dir, true);
        CHECK_INT_EQ(ignore_cache_count(c), 1);

        /* Bounded: the least recently used entry goes. */
        for (int i = 0; i < 10; i++) {
                snprintf(path, sizeof path, "%s/none-%d", tmp, i);
                CHECK_INT_EQ(ignore_cache_get(c, path, &f), 0);
                CHECK(f == NULL);
                CHECK(ignore_cache_count(c) <= 4);
        }
        CHECK_INT_EQ(ignore_cache_count(c), 4);
        ignore_cache_free(c);
}

int main(void) {
        if (!mkdtemp(tmp))
                return 1;
        log_setup("test-ignore");
        RUN(test_wildmatch);
        RUN(test_file_cases);
        RUN(test_comments_and_blanks_are_not_patterns);
        RUN(test_nul_byte_ends_a_line_not_the_file);
        RUN(test_git_agrees_with_the_file_cases);
        RUN(test_load_refuses_symlinks_and_fifos);
        RUN(test_cache_hits_forgets_and_stays_bounded);

        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
                fprintf(stderr, "warning: could not remove %s\n", tmp);
        return check_summary();
}
