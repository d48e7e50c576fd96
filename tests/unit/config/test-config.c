/* quired's settings (daemon/config.c): real config files in a temporary
 * directory, real argv arrays, and stderr captured to check that every
 * mistake costs exactly one line naming the file, the line and the key. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

/* argv for config_load: ARGV("--db", "x", NULL). */
#define ARGV(...) ((char *[]) { "quired", __VA_ARGS__ })

static char base_dir[] = "/tmp/quire-config-test-XXXXXX";
static unsigned n_dirs;
static int capture_fd = -1;
static char captured[16384]; /* what the last load() wrote to stderr */

/* A fresh directory under base_dir; freed by the caller. */
static char *new_dir(void) {
        char *dir;

        if (asprintf(&dir, "%s/%u", base_dir, ++n_dirs) < 0 || mkdir(dir, 0700) < 0)
                abort();
        return dir;
}

/* dir/name with text in it, parent directories made; returns the path. */
static char *write_file(const char *dir, const char *name, const char *text) {
        char *path;
        FILE *f;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                abort();
        for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (mkdir(path, 0700) < 0 && errno != EEXIST)
                        abort();
                *p = '/';
        }
        f = fopen(path, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                abort();
        return path;
}

static char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

/* config_load with stderr captured into `captured`. argv ends with NULL. */
static int load(struct config *cfg, char **argv) {
        int argc = 0, saved, r;
        ssize_t n;

        while (argv[argc])
                argc++;
        fflush(stderr);
        if (ftruncate(capture_fd, 0) < 0 || lseek(capture_fd, 0, SEEK_SET) < 0)
                abort();
        saved = dup(STDERR_FILENO);
        dup2(capture_fd, STDERR_FILENO);
        optind = 0;
        r = config_load(argc, argv, cfg);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        n = pread(capture_fd, captured, sizeof captured - 1, 0);
        captured[n > 0 ? n : 0] = '\0';
        return r;
}

static unsigned count_lines(const char *s) {
        unsigned n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

static bool starts_with(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* glibc's getline() once it cannot grow the line buffer: -1, errno
 * ENOMEM, and neither the error nor the end-of-file indicator set (glibc
 * 2.36 libio/iogetdelim.c). Defined here, these are what config.c calls:
 * getline(), or __getdelim() where <stdio.h> inlines getline() into it
 * (bits/stdio.h, when optimizing). A test sets getline_calls_left: after
 * that many lines every call fails; -1, never. */
static int getline_calls_left = -1;

ssize_t __getdelim(char **line, size_t *size, int delimiter, FILE *f);
ssize_t __getdelim(char **line, size_t *size, int delimiter, FILE *f) {
        if (getline_calls_left == 0) {
                errno = ENOMEM;
                return -1;
        }
        if (getline_calls_left > 0)
                getline_calls_left--;
        return getdelim(line, size, delimiter, f);
}

ssize_t getline(char **line, size_t *size, FILE *f) {
        return __getdelim(line, size, '\n', f);
}

static bool is_zeroed(const struct config *cfg) {
        static const struct config zero;
        return memcmp(cfg, &zero, sizeof zero) == 0;
}

/* The file holding text is refused: -EINVAL, one line "quired: FILE:LINE:
 * ..." ending in "(key 'KEY' in [SECTION])" (no key part when key is NULL,
 * no section part when section is ""),
 * containing `detail` when given, and cfg left empty. */
static bool file_is_refused(const char *text, unsigned line, const char *key, const char *section,
                            const char *detail) {
        struct config cfg;
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", text);
        char *prefix = strdup_printf("quired: %s:%u: ", path, line);
        char *suffix = !key           ? strdup_printf("\n")
                       : !section[0] ? strdup_printf(" (key '%s')\n", key)
                                     : strdup_printf(" (key '%s' in [%s])\n", key, section);
        int r = load(&cfg, ARGV("--config", path, NULL));
        bool ok = r == -EINVAL && count_lines(captured) == 1 && starts_with(captured, prefix) &&
                  ends_with(captured, suffix) && (key || !strstr(captured, "(key '")) &&
                  (!detail || strstr(captured, detail)) && is_zeroed(&cfg);

        if (!ok)
                fprintf(stderr, "    file:\n%s\n    returned %d, printed: %s    expected: %s...%s", text, r, captured,
                        prefix, suffix);
        config_done(&cfg);
        free(suffix);
        free(prefix);
        free(path);
        free(dir);
        return ok;
}

/* --config path is refused before anything in it is taken: `error`, one
 * line "quired: Failed to read config file PATH: DETAIL", cfg left empty. */
static bool read_is_refused(const char *path, int error, const char *detail) {
        struct config cfg;
        char *expected = strdup_printf("quired: Failed to read config file %s: %s\n", path, detail);
        int r = load(&cfg, ARGV("--config", (char *) path, "/n", NULL));
        bool ok = r == error && strcmp(captured, expected) == 0 && is_zeroed(&cfg);

        if (!ok)
                fprintf(stderr, "    returned %d, printed: %s    expected %d: %s", r, captured, error, expected);
        config_done(&cfg);
        free(expected);
        return ok;
}

/* argv is refused as a usage error: -EINVAL and one line "quired: ...
 * (see 'quired --help')" containing detail. */
static bool usage_is_refused(char **argv, const char *detail) {
        struct config cfg;
        int r = load(&cfg, argv);
        bool ok = r == -EINVAL && count_lines(captured) == 1 && starts_with(captured, "quired: ") &&
                  ends_with(captured, " (see 'quired --help')\n") && strstr(captured, detail) && is_zeroed(&cfg);

        if (!ok)
                fprintf(stderr, "    returned %d, printed: %s    expected: ...%s...\n", r, captured, detail);
        config_done(&cfg);
        return ok;
}

/* A private HOME and XDG_CONFIG_HOME, so no test reads the user's file. */
static char *isolate_env(void) {
        char *dir = new_dir();
        char *home = strdup_printf("%s/home", dir), *xdg = strdup_printf("%s/xdg", dir);

        if (mkdir(home, 0700) < 0 || mkdir(xdg, 0700) < 0)
                abort();
        setenv("HOME", home, 1);
        setenv("XDG_CONFIG_HOME", xdg, 1);
        free(home);
        free(xdg);
        return dir;
}

static void test_every_key_is_read(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\n"
                                "database = /var/lib/quire/index.db\n"
                                "settle_ms = 45\n"
                                "max_delay_ms = 2500\n"
                                "rescan_interval_s = 600\n"
                                "max_file_size = 2M\n"
                                "backend = fs-event\n"
                                "extensions = md, markdown\n"
                                "ignore = drafts/**, *.tmp\n"
                                "\n"
                                "[root \"notes\"]\n"
                                "path = /srv/notes\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        CHECK_STR_EQ(captured, "");
        CHECK_STR_EQ(cfg.config_path, path);
        CHECK_STR_EQ(cfg.db_path, "/var/lib/quire/index.db");
        CHECK_INT_EQ(cfg.settle_ms, 45);
        CHECK_INT_EQ(cfg.max_delay_ms, 2500);
        CHECK_INT_EQ(cfg.rescan_interval_s, 600);
        CHECK_INT_EQ(cfg.max_file_bytes, 2 << 20);
        CHECK_INT_EQ(cfg.backend, WATCH_BACKEND_FS_EVENT);
        REQUIRE_INT_EQ(cfg.n_extensions, 2);
        CHECK_STR_EQ(cfg.extensions[0], "md");
        CHECK_STR_EQ(cfg.extensions[1], "markdown");
        REQUIRE_INT_EQ(cfg.n_ignore_globs, 2);
        CHECK_STR_EQ(cfg.ignore_globs[0], "drafts/**");
        CHECK_STR_EQ(cfg.ignore_globs[1], "*.tmp");
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, "/srv/notes");
        CHECK_STR_EQ(cfg.roots[0].namespace, "notes");
        CHECK_INT_EQ(cfg.log_level, LOG_INFO);
        CHECK(!cfg.is_help && !cfg.is_version);
        config_done(&cfg);
        CHECK(is_zeroed(&cfg));
        free(path);
        free(dir);
}

static void test_defaults_without_a_config_file(void) {
        char *env = isolate_env();
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("notes", NULL)), 0);
        CHECK_STR_EQ(captured, "");
        CHECK(cfg.config_path == NULL);
        CHECK(cfg.db_path == NULL);
        CHECK_INT_EQ(cfg.settle_ms, CONFIG_SETTLE_MS_DEFAULT);
        CHECK_INT_EQ(cfg.max_delay_ms, CONFIG_MAX_DELAY_MS_DEFAULT);
        CHECK_INT_EQ(cfg.rescan_interval_s, CONFIG_RESCAN_INTERVAL_S_DEFAULT);
        CHECK_INT_EQ(cfg.max_file_bytes, 16 << 20);
        CHECK_INT_EQ(cfg.backend, WATCH_BACKEND_INOTIFY);
        CHECK_INT_EQ(cfg.log_level, LOG_INFO);
        CHECK_INT_EQ(cfg.n_extensions, 0);
        CHECK_INT_EQ(cfg.n_ignore_globs, 0);
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, "notes");
        CHECK_STR_EQ(cfg.roots[0].namespace, "default");
        config_done(&cfg);
        free(env);
}

static void test_default_config_is_read_from_xdg_config_home(void) {
        char *env = isolate_env();
        char *path = write_file(getenv("XDG_CONFIG_HOME"), "quire/config.ini",
                                "[quire]\nsettle_ms = 77\n[root]\npath = /srv/notes\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV(NULL)), 0);
        CHECK_STR_EQ(cfg.config_path, path);
        CHECK_INT_EQ(cfg.settle_ms, 77);
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, "/srv/notes");
        CHECK_STR_EQ(cfg.roots[0].namespace, "default");
        config_done(&cfg);
        free(path);
        free(env);
}

/* The XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and
 * must be ignored, so ~/.config is used. */
static void test_relative_xdg_config_home_falls_back_to_home(void) {
        char *env = isolate_env();
        char *path = write_file(getenv("HOME"), ".config/quire/config.ini", "[root]\npath = /srv/notes\n");
        struct config cfg;

        setenv("XDG_CONFIG_HOME", "relative/xdg", 1);
        REQUIRE_INT_EQ(load(&cfg, ARGV(NULL)), 0);
        CHECK_STR_EQ(cfg.config_path, path);
        CHECK_INT_EQ(cfg.n_roots, 1);
        config_done(&cfg);
        free(path);
        free(env);
}

static void test_broken_default_config_is_an_error(void) {
        char *env = isolate_env();
        char *path = write_file(getenv("XDG_CONFIG_HOME"), "quire/config.ini", "[quire]\nsettle_ms = soon\n");
        char *prefix = strdup_printf("quired: %s:2: ", path);
        struct config cfg;

        CHECK_INT_EQ(load(&cfg, ARGV("notes", NULL)), -EINVAL);
        CHECK(starts_with(captured, prefix));
        CHECK_INT_EQ(count_lines(captured), 1);
        config_done(&cfg);
        free(prefix);
        free(path);
        free(env);
}

static void test_tilde_expands_to_home(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\n"
                                "database = ~/.local/share/quire/index.db\n"
                                "[root \"a\"]\n"
                                "path = ~\n"
                                "[root \"b\"]\n"
                                "path = ~/notes/\n");
        char *old_home = strdup(getenv("HOME"));
        struct config cfg;

        setenv("HOME", "/home/tester", 1);
        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        CHECK_STR_EQ(cfg.db_path, "/home/tester/.local/share/quire/index.db");
        REQUIRE_INT_EQ(cfg.n_roots, 2);
        CHECK_STR_EQ(cfg.roots[0].path, "/home/tester");
        /* The trailing slash goes, so the same folder compares equal. */
        CHECK_STR_EQ(cfg.roots[1].path, "/home/tester/notes");
        config_done(&cfg);
        setenv("HOME", old_home, 1);
        free(old_home);
        free(path);
        free(dir);
}

static void test_one_folder_written_two_ways_is_one_root(void) {
        /* Repeated slashes and "." are the same folder; ".." is not
         * (through a symlink it is not the parent written). */
        CHECK(file_is_refused("[root \"a\"]\npath = /n\n[root \"b\"]\npath = /n/.\n", 4, "path", "root \"b\"",
                              "'/n' is already the path of the root on line 2"));
        CHECK(file_is_refused("[root \"a\"]\npath = /n/x\n[root \"b\"]\npath = //n//./x/\n", 4, "path",
                              "root \"b\"", "'/n/x' is already the path of the root on line 2"));
        struct config cfg;
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[root \"a\"]\npath = /n/x\n[root \"b\"]\npath = /n/x/../x\n");
        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        REQUIRE_INT_EQ(cfg.n_roots, 2);
        CHECK_STR_EQ(cfg.roots[1].path, "/n/x/../x");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_the_filesystem_root_is_no_root(void) {
        char *env = isolate_env();

        CHECK(file_is_refused("[root]\npath = /\n", 2, "path", "root", "'/' is the whole filesystem"));
        CHECK(file_is_refused("[root]\npath = /./\n", 2, "path", "root", "is the whole filesystem"));
        CHECK(usage_is_refused(ARGV("/", NULL), "DIR '/' is the whole filesystem"));
        CHECK(usage_is_refused(ARGV("/n", "//", NULL), "DIR '//' is the whole filesystem"));
        free(env);
}

/* Two DIRs on one folder would be two roots walking it twice in the one
 * namespace DIRs share: as given, with a trailing slash, or through a
 * symlink. Two folders are two roots. */
static void test_a_dir_given_twice_is_refused(void) {
        char *env = isolate_env();
        char *dir = new_dir();
        char *a = strdup_printf("%s/a", dir), *b = strdup_printf("%s/b", dir), *link = strdup_printf("%s/l", dir);
        char *slashed = strdup_printf("%s/", a);
        struct config cfg;

        REQUIRE_INT_EQ(mkdir(a, 0700), 0);
        REQUIRE_INT_EQ(mkdir(b, 0700), 0);
        REQUIRE_INT_EQ(symlink(a, link), 0);
        CHECK(usage_is_refused(ARGV(a, a, NULL), "is the folder of DIR"));
        CHECK(usage_is_refused(ARGV(a, slashed, NULL), "is the folder of DIR"));
        CHECK(usage_is_refused(ARGV(b, link, a, NULL), "is the folder of DIR"));
        CHECK(usage_is_refused(ARGV("/missing/x", "/missing/x//", NULL), "DIR '/missing/x//' is the folder of DIR "
                                                                          "'/missing/x' again"));
        REQUIRE_INT_EQ(load(&cfg, ARGV(a, b, NULL)), 0);
        CHECK_INT_EQ(cfg.n_roots, 2);
        config_done(&cfg);
        free(slashed);
        free(link);
        free(b);
        free(a);
        free(dir);
        free(env);
}

static void test_tilde_user_is_not_expanded(void) {
        CHECK(file_is_refused("[root]\npath = ~alice/notes\n", 2, "path", "root", "'~alice/notes'"));
}

static void test_relative_paths_are_relative_to_the_config_file(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "conf/config.ini",
                                "[quire]\ndatabase = data/index.db\n[root]\npath = ../notes\n");
        char *db = strdup_printf("%s/conf/data/index.db", dir);
        char *notes = strdup_printf("%s/conf/../notes", dir);
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        CHECK_STR_EQ(cfg.db_path, db);
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, notes);
        config_done(&cfg);
        free(notes);
        free(db);
        free(path);
        free(dir);
}

/* --config given relative to the working directory still yields absolute
 * paths: the daemon may change directory and reloads later. */
static void test_relative_config_flag_is_made_absolute(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[quire]\ndatabase = index.db\n[root]\npath = notes\n");
        char *db = strdup_printf("%s/index.db", dir);
        char cwd[PATH_MAX];
        struct config cfg;
        int r;

        REQUIRE(getcwd(cwd, sizeof cwd));
        REQUIRE(chdir(dir) == 0);
        r = load(&cfg, ARGV("--config", "config.ini", NULL));
        REQUIRE(chdir(cwd) == 0);
        REQUIRE_INT_EQ(r, 0);
        CHECK_STR_EQ(cfg.config_path, path);
        CHECK_STR_EQ(cfg.db_path, db);
        config_done(&cfg);
        free(db);
        free(path);
        free(dir);
}

static void test_flags_beat_the_file(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\n"
                                "database = /from/file.db\n"
                                "settle_ms = 45\n"
                                "max_delay_ms = 2500\n"
                                "rescan_interval_s = 600\n"
                                "max_file_size = 2M\n"
                                "backend = fs-event\n"
                                "[root]\n"
                                "path = /srv/notes\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, "--db", "rel/flag.db", "--settle", "10", "--max-delay",
                                       "20", "--backend", "inotify", "--max-file-size", "512K", NULL)),
                       0);
        CHECK_STR_EQ(captured, "");
        CHECK_STR_EQ(cfg.db_path, "rel/flag.db"); /* as given: relative to the working directory */
        CHECK_INT_EQ(cfg.settle_ms, 10);
        CHECK_INT_EQ(cfg.max_delay_ms, 20);
        CHECK_INT_EQ(cfg.backend, WATCH_BACKEND_INOTIFY);
        CHECK_INT_EQ(cfg.max_file_bytes, 512 << 10);
        /* What no flag sets stays the file's. */
        CHECK_INT_EQ(cfg.rescan_interval_s, 600);
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, "/srv/notes");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_dirs_replace_the_files_roots(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\nsettle_ms = 45\n"
                                "[root \"a\"]\npath = /srv/a\n"
                                "[root \"b\"]\npath = /srv/b\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, "--namespace", "work", "rel/dir", "/abs/dir/", NULL)), 0);
        CHECK_INT_EQ(cfg.settle_ms, 45);
        REQUIRE_INT_EQ(cfg.n_roots, 2);
        /* Kept as given: the daemon resolves them. */
        CHECK_STR_EQ(cfg.roots[0].path, "rel/dir");
        CHECK_STR_EQ(cfg.roots[0].namespace, "work");
        CHECK_STR_EQ(cfg.roots[1].path, "/abs/dir/");
        CHECK_STR_EQ(cfg.roots[1].namespace, "work");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_dirs_without_namespace_are_default(void) {
        char *env = isolate_env();
        struct config cfg;

        /* Options after DIRs count too (getopt permutes). */
        REQUIRE_INT_EQ(load(&cfg, ARGV("a", "b", "-v", NULL)), 0);
        REQUIRE_INT_EQ(cfg.n_roots, 2);
        CHECK_STR_EQ(cfg.roots[0].namespace, "default");
        CHECK_STR_EQ(cfg.roots[1].path, "b");
        CHECK_STR_EQ(cfg.roots[1].namespace, "default");
        CHECK_INT_EQ(cfg.log_level, LOG_DEBUG);
        config_done(&cfg);
        free(env);
}

static void test_several_roots_with_namespaces(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "; quired's roots\n"
                                "# another comment\n"
                                "[root \"notes\"]\n"
                                "    path = /srv/notes ; inline comment\n"
                                "\n"
                                "[root]\n"
                                "\tpath = /srv/misc\n"
                                "[ root \"work stuff\" ]\n"
                                "    path = /srv/work\n"
                                "    namespace = job\n"
                                "[root \"notes\"]\n"
                                "path: /srv/more-notes\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        CHECK_STR_EQ(captured, "");
        REQUIRE_INT_EQ(cfg.n_roots, 4);
        CHECK_STR_EQ(cfg.roots[0].path, "/srv/notes");
        CHECK_STR_EQ(cfg.roots[0].namespace, "notes");
        CHECK_STR_EQ(cfg.roots[1].path, "/srv/misc");
        CHECK_STR_EQ(cfg.roots[1].namespace, "default");
        /* Indented keys are keys, not continuations of the one before. */
        CHECK_STR_EQ(cfg.roots[2].path, "/srv/work");
        CHECK_STR_EQ(cfg.roots[2].namespace, "job");
        CHECK_STR_EQ(cfg.roots[3].path, "/srv/more-notes");
        CHECK_STR_EQ(cfg.roots[3].namespace, "notes");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_extensions_are_normalized(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\nextensions = .MD, markdown  ..Txt,md\n[root]\npath = /n\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        REQUIRE_INT_EQ(cfg.n_extensions, 3);
        CHECK_STR_EQ(cfg.extensions[0], "md");
        CHECK_STR_EQ(cfg.extensions[1], "markdown");
        CHECK_STR_EQ(cfg.extensions[2], "txt");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_ignore_repeats_and_adds_up(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini",
                                "[quire]\n"
                                "ignore = drafts/**, *.tmp\n"
                                "[root]\npath = /n\n"
                                "[quire]\n"
                                "ignore = old notes/*\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        REQUIRE_INT_EQ(cfg.n_ignore_globs, 3);
        CHECK_STR_EQ(cfg.ignore_globs[0], "drafts/**");
        CHECK_STR_EQ(cfg.ignore_globs[1], "*.tmp");
        CHECK_STR_EQ(cfg.ignore_globs[2], "old notes/*");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_sizes_take_suffixes(void) {
        static const struct {
                const char *text;
                uint64_t bytes;
        } cases[] = {
                { "1", 1 },
                { "1024", 1024 },
                { "512K", 512u << 10 },
                { "16m", 16u << 20 },
                { "1G", 1u << 30 },
                { "1073741824", 1u << 30 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *dir = new_dir();
                char *text = strdup_printf("[quire]\nmax_file_size = %s\n[root]\npath = /n\n", cases[i].text);
                char *path = write_file(dir, "config.ini", text);
                struct config cfg;

                CHECK_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
                CHECK_INT_EQ(cfg.max_file_bytes, cases[i].bytes);
                config_done(&cfg);
                CHECK_INT_EQ(load(&cfg, ARGV("--max-file-size", (char *) cases[i].text, "/n", NULL)), 0);
                CHECK_INT_EQ(cfg.max_file_bytes, cases[i].bytes);
                config_done(&cfg);
                free(path);
                free(text);
                free(dir);
        }
}

static void test_byte_order_mark_and_crlf_are_accepted(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "\xEF\xBB\xBF[quire]\r\nsettle_ms = 7\r\n[root]\r\npath = /n\r\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--config", path, NULL)), 0);
        CHECK_INT_EQ(cfg.settle_ms, 7);
        REQUIRE_INT_EQ(cfg.n_roots, 1);
        CHECK_STR_EQ(cfg.roots[0].path, "/n");
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_unknown_section_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms = 5\n\n[watch]\npath = /n\n", 4, NULL, NULL, "[watch]"));
        /* An empty one too: inih alone would never mention it. */
        CHECK(file_is_refused("[root]\npath = /n\n[Quire]\n", 3, NULL, NULL, "[Quire]"));
}

static void test_unknown_key_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle = 5\n", 2, "settle", "quire", "unknown key"));
        CHECK(file_is_refused("[root \"n\"]\npath = /n\nnamspace = x\n", 3, "namspace", "root \"n\"", "unknown key"));
}

static void test_key_before_any_section_is_refused(void) {
        CHECK(file_is_refused("settle_ms = 5\n[quire]\n", 1, "settle_ms", "", NULL));
}

static void test_non_number_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms = fast\n", 2, "settle_ms", "quire", "'fast'"));
        CHECK(file_is_refused("[quire]\nsettle_ms = 30ms\n", 2, "settle_ms", "quire", "'30ms'"));
        CHECK(file_is_refused("[quire]\nrescan_interval_s = -5\n", 2, "rescan_interval_s", "quire", "'-5'"));
        CHECK(file_is_refused("[quire]\nmax_file_size = big\n", 2, "max_file_size", "quire", "'big'"));
}

static void test_zero_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms = 0\n", 2, "settle_ms", "quire", NULL));
        CHECK(file_is_refused("[quire]\nmax_delay_ms = 0\n", 2, "max_delay_ms", "quire", NULL));
        CHECK(file_is_refused("[quire]\n\nrescan_interval_s = 0\n", 3, "rescan_interval_s", "quire", NULL));
        CHECK(file_is_refused("[quire]\nmax_file_size = 0K\n", 2, "max_file_size", "quire", NULL));
}

static void test_out_of_range_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms = 60001\n", 2, "settle_ms", "quire", "60000"));
        CHECK(file_is_refused("[quire]\nmax_delay_ms = 600001\n", 2, "max_delay_ms", "quire", "600000"));
        CHECK(file_is_refused("[quire]\nrescan_interval_s = 86401\n", 2, "rescan_interval_s", "quire", "86400"));
        CHECK(file_is_refused("[quire]\nsettle_ms = 99999999999999999999\n", 2, "settle_ms", "quire", NULL));
        CHECK(file_is_refused("[quire]\nmax_file_size = 2G\n", 2, "max_file_size", "quire", "1G"));
        CHECK(file_is_refused("[quire]\nmax_file_size = 1073741825\n", 2, "max_file_size", "quire", NULL));
}

static void test_max_delay_below_settle_is_refused(void) {
        /* Blamed on the later of the two keys. */
        CHECK(file_is_refused("[quire]\nsettle_ms = 500\nmax_delay_ms = 100\n[root]\npath = /n\n", 3,
                              "max_delay_ms", "quire", "below settle_ms (500)"));
        CHECK(file_is_refused("[quire]\nmax_delay_ms = 100\nsettle_ms = 500\n[root]\npath = /n\n", 3, "settle_ms",
                              "quire", "above max_delay_ms (100)"));
        /* Against the default max delay (1000 ms). */
        CHECK(file_is_refused("[quire]\nsettle_ms = 5000\n[root]\npath = /n\n", 2, "settle_ms", "quire",
                              "the default"));
}

static void test_unknown_backend_is_refused(void) {
        CHECK(file_is_refused("[quire]\nbackend = kqueue\n", 2, "backend", "quire", "'kqueue'"));
}

static void test_empty_value_is_refused(void) {
        CHECK(file_is_refused("[root \"n\"]\npath =\n", 2, "path", "root \"n\"", "empty"));
        CHECK(file_is_refused("[quire]\ndatabase = ; nothing\n", 2, "database", "quire", "empty"));
        CHECK(file_is_refused("[root]\npath = /n\nnamespace =\n", 3, "namespace", "root", "empty"));
}

static void test_duplicate_root_path_is_refused(void) {
        CHECK(file_is_refused("[root \"a\"]\npath = /srv/notes\n[root \"b\"]\npath = /srv/notes/\n", 4, "path",
                              "root \"b\"", "line 2"));
}

static void test_root_without_path_is_refused(void) {
        /* Reported on the section's header line, whether another section
         * or the end of the file closes it. */
        CHECK(file_is_refused("[quire]\nsettle_ms = 5\n[root \"a\"]\nnamespace = x\n[root]\npath = /n\n", 3, "path",
                              "root \"a\"", "no path"));
        CHECK(file_is_refused("[root]\npath = /n\n\n[root \"empty\"]\n", 4, "path", "root \"empty\"", NULL));
}

static void test_repeated_key_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms = 5\nsettle_ms = 6\n", 3, "settle_ms", "quire", "line 2"));
        /* Across two [quire] sections too. */
        CHECK(file_is_refused("[quire]\nbackend = inotify\n[root]\npath = /n\n[quire]\nbackend = fs-event\n", 6,
                              "backend", "quire", "line 2"));
        CHECK(file_is_refused("[quire]\nextensions = md\nextensions = txt\n", 3, "extensions", "quire", NULL));
        CHECK(file_is_refused("[root]\npath = /a\npath = /b\n", 3, "path", "root", "line 2"));
}

static void test_bad_root_name_is_refused(void) {
        CHECK(file_is_refused("[root notes]\npath = /n\n", 1, NULL, NULL, "double quotes"));
        CHECK(file_is_refused("[root \"\"]\npath = /n\n", 1, NULL, NULL, "empty"));
        CHECK(file_is_refused("[rooted]\npath = /n\n", 1, NULL, NULL, "unknown section"));
}

static void test_bad_extension_or_glob_is_refused(void) {
        CHECK(file_is_refused("[quire]\nextensions = md, m/d\n", 2, "extensions", "quire", "'m/d'"));
        CHECK(file_is_refused("[quire]\nextensions = md .\n", 2, "extensions", "quire", "'.'"));
        CHECK(file_is_refused("[quire]\nignore = a,,b\n", 2, "ignore", "quire", "empty glob"));
        CHECK(file_is_refused("[quire]\nignore = *.tmp, /drafts/**\n", 2, "ignore", "quire", "'/drafts/**'"));
}

static void test_syntax_error_is_refused(void) {
        CHECK(file_is_refused("[quire]\nsettle_ms 5\n", 2, NULL, NULL, NULL));
        CHECK(file_is_refused("[quire\nsettle_ms = 5\n", 1, NULL, NULL, NULL));
        CHECK(file_is_refused("[root]\npath = /n\n= value\n", 3, NULL, NULL, NULL));
}

/* One line, for the first mistake, whichever of inih and us finds it. */
static void test_first_mistake_is_the_one_reported(void) {
        CHECK(file_is_refused("[quire]\nnot a pair\nsettle_ms = 5\nbogus = 1\n", 2, NULL, NULL, NULL));
        CHECK(file_is_refused("[quire]\nbogus = 1\nnot a pair\n", 2, "bogus", "quire", NULL));
        /* A root without a path is found at the next header, after the
         * broken line, but it comes first. */
        CHECK(file_is_refused("[root]\nnamespace = x\nnot a pair\n[quire]\n", 1, "path", "root", NULL));
}

static void test_overlong_line_is_refused(void) {
        char text[1024] = "[quire]\nignore = ";
        size_t len = strlen(text);

        memset(text + len, 'x', 500);
        strcpy(text + len + 500, "\n");
        CHECK(file_is_refused(text, 2, NULL, NULL, "longer than"));
}

static void test_missing_config_flag_file_is_an_error(void) {
        char *dir = new_dir();
        char *path = strdup_printf("%s/nope.ini", dir);
        struct config cfg;

        CHECK_INT_EQ(load(&cfg, ARGV("--config", path, "/n", NULL)), -ENOENT);
        CHECK_INT_EQ(count_lines(captured), 1);
        CHECK(strstr(captured, path) != NULL);
        CHECK(is_zeroed(&cfg));
        config_done(&cfg);
        free(path);
        free(dir);
}

static void test_config_flag_directory_is_an_error(void) {
        char *dir = new_dir();
        struct config cfg;

        CHECK_INT_EQ(load(&cfg, ARGV("--config", dir, "/n", NULL)), -EISDIR);
        CHECK_INT_EQ(count_lines(captured), 1);
        CHECK(strstr(captured, dir) != NULL);
        config_done(&cfg);
        free(dir);
}

/* Opening a FIFO to read waits for a writer (fifo(7)): a load that does
 * never returns, and the alarm ends the test. */
static void test_config_flag_fifo_is_an_error(void) {
        char *dir = new_dir();
        char *path = strdup_printf("%s/config.ini", dir);

        if (mkfifo(path, 0600) < 0)
                abort();
        alarm(10);
        CHECK(read_is_refused(path, -EBADFD, "not a regular file"));
        alarm(0);
        free(path);
        free(dir);
}

/* A device has no size to cap. /dev/zero never ends: getline() fails as
 * it would once memory ran out, so that reading it costs this test a
 * failure rather than the machine its memory. */
static void test_config_flag_device_is_an_error(void) {
        struct config cfg;

        CHECK(read_is_refused("/dev/null", -EBADFD, "not a regular file"));
        getline_calls_left = 0;
        CHECK(read_is_refused("/dev/zero", -EBADFD, "not a regular file"));
        getline_calls_left = -1;

        /* A regular file is read even when its size says 0, as in /proc:
         * this one's first line is refused as a line, not the file. */
        CHECK_INT_EQ(load(&cfg, ARGV("--config", "/proc/self/status", "/n", NULL)), -EINVAL);
        CHECK(starts_with(captured, "quired: /proc/self/status:1: "));
        CHECK_INT_EQ(count_lines(captured), 1);
        config_done(&cfg);
}

/* A line that cannot be read ends the file with an error, not early as if
 * the rest were not there: settle_ms = 45 must not be dropped silently. */
static void test_read_error_is_not_an_empty_config(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[quire]\nsettle_ms = 45\n");

        getline_calls_left = 1;
        CHECK(read_is_refused(path, -ENOMEM, strerror(ENOMEM)));
        getline_calls_left = -1;
        free(path);
        free(dir);
}

static void test_bad_flags_are_usage_errors(void) {
        char *env = isolate_env();

        CHECK(usage_is_refused(ARGV("--bogus", "/n", NULL), "unknown option '--bogus'"));
        CHECK(usage_is_refused(ARGV("-x", "/n", NULL), "unknown option '-x'"));
        CHECK(usage_is_refused(ARGV("--verbose=yes", "/n", NULL), "option '--verbose' takes no value"));
        CHECK(usage_is_refused(ARGV("/n", "--settle", NULL), "option '--settle' needs a value"));
        CHECK(usage_is_refused(ARGV("--settle", "0", "/n", NULL), "--settle"));
        CHECK(usage_is_refused(ARGV("--settle", "abc", "/n", NULL), "'abc'"));
        CHECK(usage_is_refused(ARGV("--settle", "60001", "/n", NULL), "60000"));
        CHECK(usage_is_refused(ARGV("--max-delay", "600001", "/n", NULL), "--max-delay"));
        CHECK(usage_is_refused(ARGV("--backend", "poll", "/n", NULL), "'poll'"));
        CHECK(usage_is_refused(ARGV("--max-file-size", "2G", "/n", NULL), "--max-file-size"));
        CHECK(usage_is_refused(ARGV("--db", "", "/n", NULL), "--db"));
        CHECK(usage_is_refused(ARGV("--namespace", "", "/n", NULL), "--namespace must not be empty"));
        CHECK(usage_is_refused(ARGV("", NULL), "DIR must not be empty"));
        CHECK(usage_is_refused(ARGV("--settle", "500", "--max-delay", "100", "/n", NULL), "--max-delay 100"));
        CHECK(usage_is_refused(ARGV("--settle", "5000", "/n", NULL), "--settle 5000"));
        free(env);
}

static void test_namespace_without_dirs_is_a_usage_error(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[root]\npath = /n\n");

        CHECK(usage_is_refused(ARGV("--config", path, "--namespace", "work", NULL), "--namespace needs DIR arguments"));
        free(path);
        free(dir);
}

static void test_no_folders_is_a_usage_error(void) {
        char *env = isolate_env();
        char *default_path = strdup_printf("%s/quire/config.ini", getenv("XDG_CONFIG_HOME"));
        char *detail = strdup_printf("no folders to watch: give DIR arguments or [root] sections in %s", default_path);
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[quire]\nsettle_ms = 5\n");
        char *detail_file = strdup_printf("[root] sections in %s", path);

        /* No file at all: the message names where it would be. */
        CHECK(usage_is_refused(ARGV(NULL), detail));
        CHECK(usage_is_refused(ARGV("--config", path, NULL), detail_file));
        free(detail_file);
        free(path);
        free(dir);
        free(detail);
        free(default_path);
        free(env);
}

static void test_help_and_version_need_nothing_else(void) {
        char *env = isolate_env();
        char *path = write_file(getenv("XDG_CONFIG_HOME"), "quire/config.ini", "this is not ini\n");
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("--help", NULL)), 0);
        CHECK(cfg.is_help);
        CHECK(!cfg.is_version);
        CHECK_STR_EQ(captured, "");
        config_done(&cfg);

        REQUIRE_INT_EQ(load(&cfg, ARGV("-h", NULL)), 0);
        CHECK(cfg.is_help);
        config_done(&cfg);

        REQUIRE_INT_EQ(load(&cfg, ARGV("--version", NULL)), 0);
        CHECK(cfg.is_version);
        CHECK(!cfg.is_help);
        CHECK_STR_EQ(captured, "");
        config_done(&cfg);

        REQUIRE_INT_EQ(load(&cfg, ARGV("-V", "--config", "/does/not/exist", NULL)), 0);
        CHECK(cfg.is_version);
        config_done(&cfg);

        CHECK(strstr(config_usage, "Usage: quired") == config_usage);
        CHECK(strstr(config_usage, "--max-file-size") != NULL);
        CHECK(strstr(config_usage, "config.ini") != NULL);
        free(path);
        free(env);
}

static void test_verbosity_flags_set_the_log_level(void) {
        char *env = isolate_env();
        struct config cfg;

        REQUIRE_INT_EQ(load(&cfg, ARGV("/n", NULL)), 0);
        CHECK_INT_EQ(cfg.log_level, LOG_INFO);
        config_done(&cfg);
        REQUIRE_INT_EQ(load(&cfg, ARGV("--verbose", "/n", NULL)), 0);
        CHECK_INT_EQ(cfg.log_level, LOG_DEBUG);
        config_done(&cfg);
        REQUIRE_INT_EQ(load(&cfg, ARGV("-q", "/n", NULL)), 0);
        CHECK_INT_EQ(cfg.log_level, LOG_WARNING);
        config_done(&cfg);
        /* The last one given wins. */
        REQUIRE_INT_EQ(load(&cfg, ARGV("-q", "-v", "/n", NULL)), 0);
        CHECK_INT_EQ(cfg.log_level, LOG_DEBUG);
        config_done(&cfg);
        free(env);
}

/* SIGHUP: the daemon calls config_load again with the same argv (which
 * getopt has permuted), without touching optind itself. */
static void test_loading_again_gives_the_same_result(void) {
        char *dir = new_dir();
        char *path = write_file(dir, "config.ini", "[quire]\nsettle_ms = 45\n");
        char *argv[] = { "quired", "a", "--config", path, "-n", "ns", "b", "--settle", "12", NULL };
        struct config first, second;

        optind = 0;
        REQUIRE_INT_EQ(config_load((int) ELEMENTSOF(argv) - 1, argv, &first), 0);
        REQUIRE_INT_EQ(config_load((int) ELEMENTSOF(argv) - 1, argv, &second), 0);
        CHECK_INT_EQ(second.settle_ms, 12);
        REQUIRE_INT_EQ(second.n_roots, 2);
        CHECK_STR_EQ(second.roots[0].path, first.roots[0].path);
        CHECK_STR_EQ(second.roots[1].path, "b");
        CHECK_STR_EQ(second.roots[1].namespace, "ns");
        CHECK_STR_EQ(second.config_path, path);
        config_done(&first);
        config_done(&second);
        free(path);
        free(dir);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        return remove(path);
}

int main(void) {
        char capture_path[PATH_MAX];

        if (!mkdtemp(base_dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(capture_path, sizeof capture_path, "%s/stderr", base_dir);
        capture_fd = open(capture_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (capture_fd < 0) {
                perror("open");
                return 1;
        }
        /* Plain "quired: " lines even when the test runs under systemd. */
        unsetenv("JOURNAL_STREAM");
        log_setup("quired");
        free(isolate_env());

        RUN(test_every_key_is_read);
        RUN(test_defaults_without_a_config_file);
        RUN(test_default_config_is_read_from_xdg_config_home);
        RUN(test_relative_xdg_config_home_falls_back_to_home);
        RUN(test_broken_default_config_is_an_error);
        RUN(test_tilde_expands_to_home);
        RUN(test_tilde_user_is_not_expanded);
        RUN(test_one_folder_written_two_ways_is_one_root);
        RUN(test_the_filesystem_root_is_no_root);
        RUN(test_a_dir_given_twice_is_refused);
        RUN(test_relative_paths_are_relative_to_the_config_file);
        RUN(test_relative_config_flag_is_made_absolute);
        RUN(test_flags_beat_the_file);
        RUN(test_dirs_replace_the_files_roots);
        RUN(test_dirs_without_namespace_are_default);
        RUN(test_several_roots_with_namespaces);
        RUN(test_extensions_are_normalized);
        RUN(test_ignore_repeats_and_adds_up);
        RUN(test_sizes_take_suffixes);
        RUN(test_byte_order_mark_and_crlf_are_accepted);
        RUN(test_unknown_section_is_refused);
        RUN(test_unknown_key_is_refused);
        RUN(test_key_before_any_section_is_refused);
        RUN(test_non_number_is_refused);
        RUN(test_zero_is_refused);
        RUN(test_out_of_range_is_refused);
        RUN(test_max_delay_below_settle_is_refused);
        RUN(test_unknown_backend_is_refused);
        RUN(test_empty_value_is_refused);
        RUN(test_duplicate_root_path_is_refused);
        RUN(test_root_without_path_is_refused);
        RUN(test_repeated_key_is_refused);
        RUN(test_bad_root_name_is_refused);
        RUN(test_bad_extension_or_glob_is_refused);
        RUN(test_syntax_error_is_refused);
        RUN(test_first_mistake_is_the_one_reported);
        RUN(test_overlong_line_is_refused);
        RUN(test_missing_config_flag_file_is_an_error);
        RUN(test_config_flag_directory_is_an_error);
        RUN(test_config_flag_fifo_is_an_error);
        RUN(test_config_flag_device_is_an_error);
        RUN(test_read_error_is_not_an_empty_config);
        RUN(test_bad_flags_are_usage_errors);
        RUN(test_namespace_without_dirs_is_a_usage_error);
        RUN(test_no_folders_is_a_usage_error);
        RUN(test_help_and_version_need_nothing_else);
        RUN(test_verbosity_flags_set_the_log_level);
        RUN(test_loading_again_gives_the_same_result);

        close(capture_fd);
        nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return check_summary();
}
