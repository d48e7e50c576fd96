/* quired's settings: command-line flags on top of an INI file (the format
 * is in docs/CONFIG.md and in the comment below). Everything the daemon is
 * told is checked here, before it opens anything, so a mistake costs one
 * line naming the file, line and key (or the flag), not a half-started daemon.
 *
 * The file:
 *
 *     [quire]
 *     database = ~/.local/share/quire/index.db ; relative: to this file's directory
 *     settle_ms = 30                 ; 1..60000
 *     max_delay_ms = 1000            ; settle_ms..600000
 *     rescan_interval_s = 300        ; 1..86400
 *     max_file_size = 16M            ; bytes, or K, M, G; at most 1G
 *     backend = inotify              ; or fs-event
 *     indexer_priority = idle        ; or normal
 *     extensions = md, markdown      ; comma or space separated; dots stripped; any case
 *     ignore = *.tmp, archive        ; comma separated globs, ** crosses folders;
 *                                    ; the key may repeat
 *
 *     [root "notes"]                 ; the quoted name is the namespace; [root]: "default"
 *     path = ~/notes                 ; ~ expanded; relative: to this file's directory
 *     namespace = notes              ; optional, beats the section's name
 *
 * Lines are parsed by inih: a small, widely packaged and fuzzed parser
 * whose handling of comments, blanks, "key: value" and byte-order marks is
 * settled, which one written here would not be for a long while. What
 * inih leaves to compile-time options we cannot choose (distributions
 * build it with the defaults) is done by our line reader,
 * config_read_line(). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#include "document.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define SETTLE_MS_MAX 60000u
#define MAX_DELAY_MS_MAX 600000u
#define RESCAN_INTERVAL_S_MAX 86400u

#define CONFIG_FILE_MAX_BYTES (1024u * 1024u)

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

const char config_usage[] =
        "Usage: quired [OPTIONS] [DIR...]\n"
        "\n"
        "Keep the quire index of Markdown notes up to date: watch each folder\n"
        "(the DIR arguments, else the [root] sections of the config file), index\n"
        "a note once it has stopped changing, follow renames, and drop notes that\n"
        "are deleted. Search the index with 'quire search'.\n"
        "\n"
        "Options:\n"
        "      --db PATH             database (default: $QUIRE_DB, else\n"
        "                            $XDG_DATA_HOME/quire/index.db)\n"
        "      --config FILE         config file (default, if it exists:\n"
        "                            $XDG_CONFIG_HOME/quire/config.ini, else\n"
        "                            ~/.config/quire/config.ini)\n"
        "  -n, --namespace NS        namespace of the DIR arguments (default 'default')\n"
        "      --backend KIND        inotify (default) or fs-event\n"
        "      --indexer-priority P  idle (default: the indexer thread gets CPU and\n"
        "                            disk time only when nobody else wants it) or normal\n"
        "      --settle MS           index a note once it has been quiet this long\n"
        "                            (default " STRINGIFY(CONFIG_SETTLE_MS_DEFAULT) ", at most 60000)\n"
        "      --max-delay MS        but never wait longer than this for a busy one\n"
        "                            (default " STRINGIFY(CONFIG_MAX_DELAY_MS_DEFAULT) ", at most 600000)\n"
        "      --max-file-size SIZE  skip larger files (default 16M; K, M, G suffixes;\n"
        "                            at most 1G)\n"
        "  -v, --verbose             also log debugging detail\n"
        "  -q, --quiet               log only warnings and errors\n"
        "  -h, --help                show this help\n"
        "  -V, --version             show the version\n"
        "\n"
        "Flags beat the config file, and DIR arguments replace its [root]\n"
        "sections. The file's format: 'man quire.conf' (docs/CONFIG.md).\n";

/* The [quire] keys; the order is the order of the "unknown key" hint. */
enum quire_key {
        KEY_DATABASE,
        KEY_SETTLE_MS,
        KEY_MAX_DELAY_MS,
        KEY_RESCAN_INTERVAL_S,
        KEY_MAX_FILE_SIZE,
        KEY_BACKEND,
        KEY_INDEXER_PRIORITY,
        KEY_EXTENSIONS,
        KEY_IGNORE,
        _KEY_MAX,
};

static const char *const quire_key_names[_KEY_MAX] = {
        [KEY_DATABASE] = "database",
        [KEY_SETTLE_MS] = "settle_ms",
        [KEY_MAX_DELAY_MS] = "max_delay_ms",
        [KEY_RESCAN_INTERVAL_S] = "rescan_interval_s",
        [KEY_MAX_FILE_SIZE] = "max_file_size",
        [KEY_BACKEND] = "backend",
        [KEY_INDEXER_PRIORITY] = "indexer_priority",
        [KEY_EXTENSIONS] = "extensions",
        [KEY_IGNORE] = "ignore",
};

/* What the command line said; strings point into argv. Zero means "not
 * given" for the numbers, since zero is never a valid value. */
struct flags {
        const char *db_path;
        const char *config_path;
        const char *namespace;
        bool has_backend;
        enum watch_backend_kind backend;
        bool has_indexer_priority;
        enum indexer_priority indexer_priority;
        unsigned settle_ms;
        unsigned max_delay_ms;
        uint64_t max_file_bytes;
        int log_level;
        bool is_help;
        bool is_version;
        char **dirs;
        size_t n_dirs;
};

struct file_root {
        char *path;      /* resolved; NULL until the path key */
        char *namespace;
        unsigned header_line;
        unsigned path_line;
        unsigned namespace_line;
};

enum section_kind {
        SECTION_NONE, /* before the first header */
        SECTION_QUIRE,
        SECTION_ROOT,
};

/* One pass over one file. Values of [quire] go straight into cfg; roots and
 * the database are kept here because flags may replace them. */
struct parse_state {
        struct config *cfg;
        const char *path; /* absolute */
        char *dir;        /* the file's directory, for relative paths */
        FILE *f;
        char *buf;
        size_t buf_size;
        unsigned line;

        enum section_kind section;
        char *section_label; /* the header between the brackets, trimmed */
        unsigned key_line[_KEY_MAX]; /* where each [quire] key was set; 0: not set */

        char *db_path;
        struct file_root *roots;
        size_t n_roots;

        int r; /* a system error (-ENOMEM, -EIO): stop and return it */
        /* The first mistake in the file; printed once, after the parse. */
        bool has_error;
        unsigned error_line;
        char error_msg[512];
        char error_key[64];
        char error_section[128];
};

static void parse_state_done(struct parse_state *s) {
        if (s->f)
                fclose(s->f);
        free(s->buf);
        free(s->dir);
        free(s->section_label);
        free(s->db_path);
        for (size_t i = 0; i < s->n_roots; i++) {
                free(s->roots[i].path);
                free(s->roots[i].namespace);
        }
        free(s->roots);
}

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* Remember the first mistake in the file. key may be NULL for a line that
 * has none (a section header); the section is the one being read. */
_printf_(4, 5) static void parse_fail(struct parse_state *s, unsigned line, const char *key, const char *fmt, ...) {
        va_list ap;

        if (s->has_error)
                return;
        s->has_error = true;
        s->error_line = line;
        va_start(ap, fmt);
        vsnprintf(s->error_msg, sizeof s->error_msg, fmt, ap);
        va_end(ap);
        snprintf(s->error_key, sizeof s->error_key, "%s", key ? key : "");
        snprintf(s->error_section, sizeof s->error_section, "%s", s->section_label ? s->section_label : "");
}

/* "quired: FILE:LINE: what (key 'K' in [SECTION])": the one line a
 * mistake in the file costs. A line without a key (a section header) or
 * outside any section leaves out what it lacks. */
static int log_file_error(const char *path, unsigned line, const char *key, const char *section, const char *msg) {
        if (key && *key && section && *section)
                log_error("%s:%u: %s (key '%s' in [%s])", path, line, msg, key, section);
        else if (key && *key)
                log_error("%s:%u: %s (key '%s')", path, line, msg, key);
        else
                log_error("%s:%u: %s", path, line, msg);
        return -EINVAL;
}

/* Whether two DIR arguments are one folder (as given, give or take
 * trailing slashes, or through a symlink): two roots there would walk and
 * index it twice in the one namespace DIRs share. */
static bool names_same_folder(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);

        while (na > 1 && a[na - 1] == '/')
                na--;
        while (nb > 1 && b[nb - 1] == '/')
                nb--;
        if (na == nb && memcmp(a, b, na) == 0)
                return true;
        _cleanup_free_ char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
        return ra && rb && strcmp(ra, rb) == 0;
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        char what[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        log_error("%s (see 'quired --help')", what);
        return -EINVAL;
}

/* Digits only: "1e3", " 5", "+5" and "5ms" are mistakes to report, not
 * numbers to guess at. */
static bool parse_number(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long long v = 0;

        if (!*s)
                return false;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                v = v * 10 + (unsigned) (*p - '0');
                if (v > max)
                        return false;
        }
        if (v < min)
                return false;
        *ret = (unsigned) v;
        return true;
}


static bool parse_backend(const char *s, enum watch_backend_kind *ret) {
        if (streq(s, "inotify"))
                *ret = WATCH_BACKEND_INOTIFY;
        else if (streq(s, "fs-event"))
                *ret = WATCH_BACKEND_FS_EVENT;
        else
                return false;
        return true;
}

static bool parse_indexer_priority(const char *s, enum indexer_priority *ret) {
        if (streq(s, "idle"))
                *ret = INDEXER_PRIORITY_IDLE;
        else if (streq(s, "normal"))
                *ret = INDEXER_PRIORITY_NORMAL;
        else
                return false;
        return true;
}

/* A path from the file as the daemon must see it: "~" and "~/" expanded,
 * a relative path taken from base_dir (the config file's directory: under
 * systemd the daemon's working directory is /, which is never what a
 * relative path in a config file means), repeated slashes, "." and
 * trailing slashes dropped so the same folder written twice compares
 * equal (not "..": through a symlink it is not the parent written).
 * Returns 0, -ENOMEM, -EINVAL for "~user" (not expanded: write the path),
 * -ENOENT when ~ has no home. */
static int path_resolve(const char *value, const char *base_dir, char **ret) {
        _cleanup_free_ char *home = NULL;
        char *p;
        size_t len;
        int r;

        if (value[0] == '~') {
                if (value[1] != '\0' && value[1] != '/')
                        return -EINVAL;
                r = home_dir(&home);
                if (r < 0)
                        return r;
                if (asprintf(&p, "%s%s", home, value + 1) < 0)
                        return -ENOMEM;
        } else if (value[0] == '/') {
                p = strdup(value);
                if (!p)
                        return -ENOMEM;
        } else if (asprintf(&p, "%s%s%s", base_dir, streq(base_dir, "/") ? "" : "/", value) < 0)
                return -ENOMEM;

        /* p is absolute here: each '/' either starts a component we keep
         * or is a repeat, or starts a "." component. */
        char *o = p;
        for (const char *i = p; *i;) {
                if (*i == '/' && (i[1] == '/' || (i[1] == '.' && (i[2] == '/' || i[2] == '\0')))) {
                        i += i[1] == '/' ? 1 : 2;
                        continue;
                }
                *o++ = *i++;
        }
        *o = '\0';
        len = strlen(p);
        while (len > 1 && p[len - 1] == '/')
                p[--len] = '\0';
        if (len == 0)
                strcpy(p, "/");
        *ret = p;
        return 0;
}

/* Whether path names the filesystem's root, which is no folder of notes:
 * every path below it would have to be watched, and its notes' paths
 * start with one slash, not the root's and one more. */
static bool is_filesystem_root(const char *path) {
        _cleanup_free_ char *resolved = realpath(path, NULL);
        return streq(path, "/") || (resolved && streq(resolved, "/"));
}

/* parse_fail() for path_resolve()'s errors; returns 0 when r is not one. */
static int path_fail(struct parse_state *s, const char *key, const char *value, int r) {
        if (r == -EINVAL)
                parse_fail(s, s->line, key, "'%s': only '~' and '~/' are expanded, not '~user'", value);
        else if (r == -ENOENT)
                parse_fail(s, s->line, key, "'%s': cannot expand '~': no $HOME and no home directory", value);
        else if (r < 0)
                s->r = r;
        return r;
}

static bool is_separator(char c, bool is_space_separator) {
        return c == ',' || (is_space_separator && (c == ' ' || c == '\t'));
}

static const char *trim_left(const char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* extensions = md, .Markdown txt: separated by commas or blanks, a leading
 * dot or two stripped, compared without case (the scanner lowercases the
 * file's extension), kept once each. */
static void parse_extensions(struct parse_state *s, const char *key, const char *value) {
        struct config *cfg = s->cfg;
        const char *p = value;

        for (;;) {
                while (*p && is_separator(*p, true))
                        p++;
                if (!*p)
                        break;
                const char *word = p;
                while (*p && !is_separator(*p, true))
                        p++;
                int word_len = (int) (p - word);

                const char *ext_start = word;
                while (ext_start < p && *ext_start == '.')
                        ext_start++;
                bool is_valid = ext_start < p;
                for (const char *c = ext_start; c < p; c++)
                        if (!isalnum((unsigned char) *c) && *c != '-' && *c != '_' && *c != '+' && *c != '.')
                                is_valid = false;
                if (!is_valid) {
                        parse_fail(s, s->line, key, "'%.*s' is not a file extension", word_len, word);
                        return;
                }

                char *ext = strndup(ext_start, (size_t) (p - ext_start));
                if (!ext) {
                        s->r = -ENOMEM;
                        return;
                }
                for (char *c = ext; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (strv_contains(cfg->extensions, cfg->n_extensions, ext)) {
                        free(ext);
                        continue;
                }
                s->r = strv_push(&cfg->extensions, &cfg->n_extensions, ext);
                if (s->r < 0)
                        return;
        }
        if (cfg->n_extensions == 0)
                parse_fail(s, s->line, key, "no extensions in '%s'", value);
}

/* ignore = *.tmp, old notes: separated by commas only, since a glob may
 * hold a blank (a folder called "old notes"). What a glob means is the
 * scanner's (storage/scan.h): without a '/' it matches a name at any depth,
 * with one the path from the root, and a trailing slash-star-star the
 * whole subtree. */
static void parse_ignore(struct parse_state *s, const char *key, const char *value) {
        struct config *cfg = s->cfg;

        for (const char *p = value;;) {
                const char *start = trim_left(p);
                const char *end = strchr(start, ',');
                size_t len = end ? (size_t) (end - start) : strlen(start);

                while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
                        len--;
                if (len == 0) {
                        parse_fail(s, s->line, key, "empty glob in '%s'", value);
                        return;
                }
                /* The scanner matches globs against paths relative to the
                 * root, which never start with '/': such a glob would
                 * silently match nothing. */
                if (start[0] == '/') {
                        parse_fail(s, s->line, key,
                                   "'%.*s': globs are matched against paths relative to the root; "
                                   "drop the leading '/'", (int) len, start);
                        return;
                }
                s->r = strv_push(&cfg->ignore_globs, &cfg->n_ignore_globs, strndup(start, len));
                if (s->r < 0 || !end)
                        return;
                p = end + 1;
        }
}

static void handle_quire_key(struct parse_state *s, const char *name, const char *value) {
        struct config *cfg = s->cfg;
        enum quire_key k;
        int r;

        for (k = 0; k < _KEY_MAX; k++)
                if (streq(name, quire_key_names[k]))
                        break;
        if (k == _KEY_MAX) {
                parse_fail(s, s->line, name,
                           "unknown key; [quire] takes database, settle_ms, max_delay_ms, "
                           "rescan_interval_s, max_file_size, backend, indexer_priority, extensions, ignore");
                return;
        }
        /* A second value would silently win over the first; only ignore
         * adds up. */
        if (k != KEY_IGNORE && s->key_line[k] > 0) {
                parse_fail(s, s->line, name, "given twice (first on line %u); only 'ignore' may repeat",
                           s->key_line[k]);
                return;
        }
        s->key_line[k] = s->line;
        if (!*value) {
                parse_fail(s, s->line, name, "empty value");
                return;
        }

        switch (k) {
        case KEY_DATABASE:
                r = path_resolve(value, s->dir, &s->db_path);
                if (r < 0)
                        path_fail(s, name, value, r);
                break;
        case KEY_SETTLE_MS:
                if (!parse_number(value, 1, SETTLE_MS_MAX, &cfg->settle_ms))
                        parse_fail(s, s->line, name, "'%s' is not a number of milliseconds from 1 to %u", value,
                                   SETTLE_MS_MAX);
                break;
        case KEY_MAX_DELAY_MS:
                if (!parse_number(value, 1, MAX_DELAY_MS_MAX, &cfg->max_delay_ms))
                        parse_fail(s, s->line, name, "'%s' is not a number of milliseconds from 1 to %u", value,
                                   MAX_DELAY_MS_MAX);
                break;
        case KEY_RESCAN_INTERVAL_S:
                if (!parse_number(value, 1, RESCAN_INTERVAL_S_MAX, &cfg->rescan_interval_s))
                        parse_fail(s, s->line, name, "'%s' is not a number of seconds from 1 to %u", value,
                                   RESCAN_INTERVAL_S_MAX);
                break;
        case KEY_MAX_FILE_SIZE:
                if (!document_parse_size(value, &cfg->max_file_bytes))
                        parse_fail(s, s->line, name, "'%s' is not a size from 1 to 1G, like 512K or 16M", value);
                break;
        case KEY_BACKEND:
                if (!parse_backend(value, &cfg->backend))
                        parse_fail(s, s->line, name, "unknown backend '%s', expected inotify or fs-event", value);
                break;
        case KEY_INDEXER_PRIORITY:
                if (!parse_indexer_priority(value, &cfg->indexer_priority))
                        parse_fail(s, s->line, name, "unknown priority '%s', expected idle or normal", value);
                break;
        case KEY_EXTENSIONS:
                parse_extensions(s, name, value);
                break;
        case KEY_IGNORE:
                parse_ignore(s, name, value);
                break;
        case _KEY_MAX:
                break;
        }
}

static void handle_root_key(struct parse_state *s, const char *name, const char *value) {
        struct file_root *root = &s->roots[s->n_roots - 1];
        unsigned *seen;
        int r;

        if (streq(name, "path"))
                seen = &root->path_line;
        else if (streq(name, "namespace"))
                seen = &root->namespace_line;
        else {
                parse_fail(s, s->line, name, "unknown key; [root] takes path, namespace");
                return;
        }
        if (*seen > 0) {
                parse_fail(s, s->line, name, "given twice (first on line %u)", *seen);
                return;
        }
        *seen = s->line;
        if (!*value) {
                parse_fail(s, s->line, name, "empty value");
                return;
        }

        if (streq(name, "namespace")) {
                char *ns = strdup(value);
                if (!ns) {
                        s->r = -ENOMEM;
                        return;
                }
                free(root->namespace);
                root->namespace = ns;
                return;
        }

        r = path_resolve(value, s->dir, &root->path);
        if (r < 0) {
                path_fail(s, name, value, r);
                return;
        }
        if (is_filesystem_root(root->path)) {
                parse_fail(s, s->line, name, "'%s' is the whole filesystem (/), not a folder of notes", value);
                return;
        }
        /* Two roots on one folder would index every note twice, or fight
         * over its namespace. */
        for (size_t i = 0; i + 1 < s->n_roots; i++)
                if (s->roots[i].path && streq(s->roots[i].path, root->path)) {
                        parse_fail(s, s->line, name, "'%s' is already the path of the root on line %u",
                                   root->path, s->roots[i].path_line);
                        return;
                }
}

/* inih calls this for each "key = value" line. */
static int config_handle_key(void *userdata, const char *section, const char *name, const char *value) {
        struct parse_state *s = userdata;

        (void) section; /* ours is s->section_label, read untruncated by config_read_line() */
        if (s->has_error || s->r < 0)
                return 0;
        if (!*name)
                parse_fail(s, s->line, NULL, "no key before the '='");
        else if (s->section == SECTION_NONE)
                parse_fail(s, s->line, name, "key before any section; put it under [quire] or [root \"NAME\"]");
        else if (s->section == SECTION_QUIRE)
                handle_quire_key(s, name, value);
        else
                handle_root_key(s, name, value);
        return !s->has_error && s->r >= 0;
}

/* The end of a section (at the next header, or the end of the file). */
static void section_end(struct parse_state *s) {
        if (s->section == SECTION_ROOT && !s->roots[s->n_roots - 1].path)
                parse_fail(s, s->roots[s->n_roots - 1].header_line, "path", "no path; every [root] needs one");
}

/* A "[...]" line: name is what is between the brackets. */
static void section_begin(struct parse_state *s, const char *name, size_t len) {
        section_end(s);
        if (s->has_error)
                return;

        while (len > 0 && isspace((unsigned char) *name)) {
                name++;
                len--;
        }
        while (len > 0 && isspace((unsigned char) name[len - 1]))
                len--;
        free(s->section_label);
        s->section_label = strndup(name, len);
        if (!s->section_label) {
                s->r = -ENOMEM;
                return;
        }
        const char *label = s->section_label;

        if (streq(label, "quire")) {
                s->section = SECTION_QUIRE;
                return;
        }
        if (strncmp(label, "root", 4) != 0 || (label[4] && !isspace((unsigned char) label[4]))) {
                s->section = SECTION_NONE;
                parse_fail(s, s->line, NULL, "unknown section [%s]; expected [quire] or [root \"NAME\"]",
                           label);
                return;
        }

        /* [root] or [root "NAME"]: git's way of naming one of several
         * sections of a kind, quoted so that a name may hold anything. */
        const char *rest = trim_left(label + 4);
        size_t rest_len = strlen(rest);
        _cleanup_free_ char *ns = NULL;
        if (rest_len == 0)
                ns = strdup("default");
        else if (rest_len >= 2 && rest[0] == '"' && rest[rest_len - 1] == '"' &&
                 !memchr(rest + 1, '"', rest_len - 2)) {
                if (rest_len == 2) {
                        parse_fail(s, s->line, NULL,
                                   "empty root name; write [root] for the namespace \"default\"");
                        return;
                }
                ns = strndup(rest + 1, rest_len - 2);
        } else {
                parse_fail(s, s->line, NULL,
                           "[%s]: the root's name goes in double quotes, like [root \"notes\"]", label);
                return;
        }
        if (!ns) {
                s->r = -ENOMEM;
                return;
        }

        struct file_root *roots = realloc(s->roots, (s->n_roots + 1) * sizeof *roots);
        if (!roots) {
                s->r = -ENOMEM;
                return;
        }
        s->roots = roots;
        s->roots[s->n_roots++] = (struct file_root) {
                .namespace = TAKE_PTR(ns),
                .header_line = s->line,
        };
        s->section = SECTION_ROOT;
}

/* inih's line reader (an fgets stand-in), so that we and not inih's
 * compile-time options decide four things:
 *  - lines are counted here, so the handler knows its line
 *    (INI_HANDLER_LINENO is off);
 *  - leading blanks are stripped, which switches off INI_ALLOW_MULTILINE:
 *    with it, an indented "namespace = x" under an indented "path = y" is
 *    taken for a second line of path's value, and indented keys are common;
 *  - section headers are seen here: inih only names a section with the
 *    first key under it (INI_CALL_HANDLER_ON_NEW_SECTION is off), so a
 *    misspelled or empty [root] would pass unnoticed, and it cuts section
 *    names at 50 bytes;
 *  - a line longer than inih's buffer (INI_MAX_LINE) is an error here,
 *    where fgets would cut it in two and feed inih the tail as a line. */
static char *config_read_line(char *str, int num, void *userdata) {
        struct parse_state *s = userdata;
        ssize_t n;
        char *p;

        if (s->has_error || s->r < 0)
                return NULL;
        errno = 0;
        n = getline(&s->buf, &s->buf_size, s->f);
        if (n < 0) {
                /* Not at the end is an error too: glibc's getline() fails
                 * with ENOMEM without setting the error indicator, and that
                 * must not pass for the end of a shorter file. */
                if (ferror(s->f) || !feof(s->f))
                        s->r = errno > 0 ? -errno : -EIO;
                else
                        section_end(s);
                return NULL;
        }
        s->line++;
        if (memchr(s->buf, '\0', (size_t) n)) {
                parse_fail(s, s->line, NULL, "line holds a NUL byte (is this a text file?)");
                return NULL;
        }
        while (n > 0 && (s->buf[n - 1] == '\n' || s->buf[n - 1] == '\r'))
                s->buf[--n] = '\0';
        p = s->buf;
        if (s->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
                p += 3;
        while (isspace((unsigned char) *p))
                p++;
        if (strlen(p) >= (size_t) num) {
                parse_fail(s, s->line, NULL, "line longer than %d bytes; split a long ignore list over several "
                           "'ignore =' lines", num - 1);
                return NULL;
        }

        /* Find the end of a header as inih does (ini.c find_chars_or_comment):
         * the first ']' before an inline " ;" comment. Without one inih
         * reports the line, and we leave the section as it was, as it does. */
        if (*p == '[') {
                bool was_space = false;
                const char *end = p + 1;
                for (; *end && *end != ']' && !(was_space && *end == ';'); end++)
                        was_space = isspace((unsigned char) *end);
                if (*end == ']') {
                        section_begin(s, p + 1, (size_t) (end - p - 1));
                        if (s->has_error || s->r < 0)
                                return NULL;
                }
        }
        memcpy(str, p, strlen(p) + 1);
        return str;
}

/* $XDG_CONFIG_HOME/quire/config.ini, else ~/.config/quire/config.ini. A
 * relative XDG_CONFIG_HOME is ignored, as the XDG Base Directory spec
 * says. *ret is NULL when there is no home to look in. */
static int default_config_path(char **ret) {
        const char *xdg = getenv("XDG_CONFIG_HOME");
        _cleanup_free_ char *home = NULL;
        int r;

        *ret = NULL;
        if (xdg && xdg[0] == '/')
                return asprintf(ret, "%s/quire/config.ini", xdg) < 0 ? -ENOMEM : 0;
        r = home_dir(&home);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return asprintf(ret, "%s/.config/quire/config.ini", home) < 0 ? -ENOMEM : 0;
}

/* Absolute, so that relative paths in the file do not depend on where the
 * daemon is (it may chdir, and reloads on SIGHUP). Symlinks are kept: the
 * file's directory is the one the user named. */
static int path_make_absolute(const char *path, char **ret) {
        _cleanup_free_ char *cwd = NULL;

        if (path[0] == '/') {
                *ret = strdup(path);
                return *ret ? 0 : -ENOMEM;
        }
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return -errno;
        return asprintf(ret, "%s%s%s", cwd, streq(cwd, "/") ? "" : "/", path) < 0 ? -ENOMEM : 0;
}

/* Read the file at path (absolute) into cfg and s. is_named: it came from
 * --config, so it must exist. Returns 0 (also for a missing default file,
 * with s->f left NULL), -EINVAL after logging the file's first mistake, or
 * another -errno after logging it. */
static int parse_file(struct parse_state *s, const char *path, bool is_named) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        s->path = path;
        /* O_NONBLOCK: opening a FIFO waits for a writer (fifo(7)), and we
         * run on the event loop, at start and on SIGHUP. It changes
         * nothing for the regular file we go on to read (open(2)). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (!is_named && (r == -ENOENT || r == -ENOTDIR)) {
                        log_debug("No config file at %s", path);
                        return 0;
                }
                return log_error_errno(r, "Failed to open config file %s: %m", path);
        }
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Failed to stat config file %s: %m", path);
        if (S_ISDIR(st.st_mode))
                return log_error_errno(EISDIR, "Failed to read config file %s: %m", path);
        /* A FIFO or a device has no size to cap, and may never end
         * (/dev/zero): the cap below would not bound what we read. */
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EBADFD, "Failed to read config file %s: not a regular file", path);
        /* Bounded like every input: a config file is a few hundred bytes,
         * and a mistaken --config should not be read into memory whole. */
        if (st.st_size > CONFIG_FILE_MAX_BYTES)
                return log_error_errno(EFBIG, "Failed to read config file %s: larger than %u KiB, is it one?",
                                       path, CONFIG_FILE_MAX_BYTES / 1024);
        s->f = fdopen(fd, "r");
        if (!s->f)
                return log_error_errno(errno, "Failed to open config file %s: %m", path);
        fd = -1; /* closed with s->f */

        const char *slash = strrchr(path, '/');
        s->dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        if (!s->dir)
                return log_error_errno(ENOMEM, "Out of memory");

        r = ini_parse_stream(config_read_line, s, config_handle_key, s);
        if (s->r < 0)
                return log_error_errno(s->r, "Failed to read config file %s: %m", path);
        /* inih returns the first line it failed on: one whose key we
         * refused (the handler returned 0), or one it could not parse,
         * which may come before a mistake of ours found further down. */
        if (r > 0 && (!s->has_error || (unsigned) r < s->error_line))
                return log_file_error(path, (unsigned) r, NULL, NULL,
                                      "not a section header ([name]) or a key = value line");
        if (s->has_error)
                return log_file_error(path, s->error_line, s->error_key, s->error_section, s->error_msg);
        return 0;
}

static int parse_flags(int argc, char **argv, struct flags *fl) {
        enum {
                OPT_DB = 0x100,
                OPT_CONFIG,
                OPT_BACKEND,
                OPT_INDEXER_PRIORITY,
                OPT_SETTLE,
                OPT_MAX_DELAY,
                OPT_MAX_FILE_SIZE,
        };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "config", required_argument, NULL, OPT_CONFIG },
                { "namespace", required_argument, NULL, 'n' },
                { "backend", required_argument, NULL, OPT_BACKEND },
                { "indexer-priority", required_argument, NULL, OPT_INDEXER_PRIORITY },
                { "settle", required_argument, NULL, OPT_SETTLE },
                { "max-delay", required_argument, NULL, OPT_MAX_DELAY },
                { "max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE },
                { "verbose", no_argument, NULL, 'v' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int opt;

        /* From the start every time: the daemon calls us again on SIGHUP,
         * and glibc only forgets the previous scan (its argument
         * permutation state) when optind is 0. */
        optind = 0;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":n:vqhV", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error("--db must not be empty");
                        fl->db_path = optarg;
                        break;
                case OPT_CONFIG:
                        if (!*optarg)
                                return usage_error("--config must not be empty");
                        fl->config_path = optarg;
                        break;
                case 'n':
                        if (!*optarg)
                                return usage_error("--namespace must not be empty");
                        fl->namespace = optarg;
                        break;
                case OPT_BACKEND:
                        if (!parse_backend(optarg, &fl->backend))
                                return usage_error("--backend needs inotify or fs-event, not '%s'", optarg);
                        fl->has_backend = true;
                        break;
                case OPT_INDEXER_PRIORITY:
                        if (!parse_indexer_priority(optarg, &fl->indexer_priority))
                                return usage_error("--indexer-priority needs idle or normal, not '%s'", optarg);
                        fl->has_indexer_priority = true;
                        break;
                case OPT_SETTLE:
                        if (!parse_number(optarg, 1, SETTLE_MS_MAX, &fl->settle_ms))
                                return usage_error("--settle needs a number of milliseconds from 1 to %u, not '%s'",
                                                   SETTLE_MS_MAX, optarg);
                        break;
                case OPT_MAX_DELAY:
                        if (!parse_number(optarg, 1, MAX_DELAY_MS_MAX, &fl->max_delay_ms))
                                return usage_error(
                                        "--max-delay needs a number of milliseconds from 1 to %u, not '%s'",
                                        MAX_DELAY_MS_MAX, optarg);
                        break;
                case OPT_MAX_FILE_SIZE:
                        if (!document_parse_size(optarg, &fl->max_file_bytes))
                                return usage_error("--max-file-size needs a size from 1 to 1G, like 512K or 16M, "
                                                   "not '%s'", optarg);
                        break;
                case 'v':
                        fl->log_level = LOG_DEBUG;
                        break;
                case 'q':
                        fl->log_level = LOG_WARNING;
                        break;
                case 'h':
                        fl->is_help = true;
                        return 0;
                case 'V':
                        fl->is_version = true;
                        return 0;
                case ':':
                        return usage_error("option '%s' needs a value", argv[optind - 1]);
                default: {
                        /* glibc sets optopt for a known long option given
                         * a value it does not take ("--help=3"), 0 for an
                         * unknown one. */
                        const char *arg = argv[optind - 1];
                        bool is_long = arg[0] == '-' && arg[1] == '-';
                        if (optopt && !is_long)
                                return usage_error("unknown option '-%c'", optopt);
                        if (optopt && strchr(arg, '='))
                                return usage_error("option '%.*s' takes no value", (int) strcspn(arg, "="), arg);
                        return usage_error("unknown option '%s'", arg);
                }
                }
        }

        fl->dirs = argv + optind;
        fl->n_dirs = (size_t) (argc - optind);
        for (size_t i = 0; i < fl->n_dirs; i++) {
                if (!*fl->dirs[i])
                        return usage_error("DIR must not be empty");
                if (is_filesystem_root(fl->dirs[i]))
                        return usage_error("DIR '%s' is the whole filesystem (/), not a folder of notes", fl->dirs[i]);
                for (size_t k = 0; k < i; k++)
                        if (names_same_folder(fl->dirs[k], fl->dirs[i]))
                                return usage_error("DIR '%s' is the folder of DIR '%s' again", fl->dirs[i],
                                                   fl->dirs[k]);
        }
        /* Without DIRs it would have nothing to name: the file's roots
         * carry their own namespaces. */
        if (fl->namespace && fl->n_dirs == 0)
                return usage_error("--namespace needs DIR arguments");
        return 0;
}

/* max_delay_ms bounds how long a busy note waits, settle_ms how long a
 * quiet one does: the bound cannot be the shorter. Blame a flag if one set
 * either, else the later of the two keys. */
static int check_delays(const struct config *cfg, const struct flags *fl, const struct parse_state *s) {
        char msg[256];

        if (cfg->max_delay_ms >= cfg->settle_ms)
                return 0;
        if (fl->max_delay_ms)
                return usage_error("--max-delay %u is below the settle time (%u ms)", cfg->max_delay_ms,
                                   cfg->settle_ms);
        if (fl->settle_ms)
                return usage_error("--settle %u is above the max delay (%u ms)", cfg->settle_ms, cfg->max_delay_ms);

        unsigned settle_line = s->key_line[KEY_SETTLE_MS], delay_line = s->key_line[KEY_MAX_DELAY_MS];
        if (delay_line > settle_line) {
                snprintf(msg, sizeof msg, "%u is below settle_ms (%u)", cfg->max_delay_ms, cfg->settle_ms);
                return log_file_error(s->path, delay_line, "max_delay_ms", "quire", msg);
        }
        snprintf(msg, sizeof msg, "%u is above max_delay_ms (%u%s)", cfg->settle_ms, cfg->max_delay_ms,
                 delay_line ? "" : ", the default");
        return log_file_error(s->path, settle_line, "settle_ms", "quire", msg);
}

static int take_roots(struct config *cfg, const struct flags *fl, struct parse_state *s) {
        if (fl->n_dirs == 0) {
                if (s->n_roots == 0)
                        return 0;
                cfg->roots = calloc(s->n_roots, sizeof *cfg->roots);
                if (!cfg->roots)
                        return -ENOMEM;
                cfg->has_roots_from_file = true;
                for (size_t i = 0; i < s->n_roots; i++)
                        cfg->roots[cfg->n_roots++] = (struct root_config) {
                                .path = TAKE_PTR(s->roots[i].path),
                                .namespace = TAKE_PTR(s->roots[i].namespace),
                        };
                return 0;
        }

        cfg->roots = calloc(fl->n_dirs, sizeof *cfg->roots);
        if (!cfg->roots)
                return -ENOMEM;
        for (size_t i = 0; i < fl->n_dirs; i++) {
                struct root_config *root = &cfg->roots[cfg->n_roots++];
                root->path = strdup(fl->dirs[i]);
                root->namespace = strdup(fl->namespace ? fl->namespace : "default");
                if (!root->path || !root->namespace)
                        return -ENOMEM;
        }
        return 0;
}

static int config_load_internal(int argc, char **argv, struct config *cfg, struct parse_state *s) {
        struct flags fl = { .log_level = LOG_INFO };
        _cleanup_free_ char *path = NULL;
        int r;

        r = parse_flags(argc, argv, &fl);
        if (r < 0)
                return r;
        cfg->log_level = fl.log_level;
        cfg->is_help = fl.is_help;
        cfg->is_version = fl.is_version;
        /* --help and --version must work whatever state the file is in. */
        if (fl.is_help || fl.is_version)
                return 0;

        r = fl.config_path ? path_make_absolute(fl.config_path, &path) : default_config_path(&path);
        if (r < 0)
                return log_error_errno(r, "Failed to find the config file: %m");
        if (path) {
                r = parse_file(s, path, fl.config_path != NULL);
                if (r < 0)
                        return r;
                if (s->f)
                        cfg->config_path = TAKE_PTR(path);
        }

        if (fl.db_path)
                cfg->db_path = strdup(fl.db_path);
        else
                cfg->db_path = TAKE_PTR(s->db_path);
        if (fl.db_path && !cfg->db_path)
                return log_error_errno(ENOMEM, "Out of memory");
        if (fl.settle_ms)
                cfg->settle_ms = fl.settle_ms;
        if (fl.max_delay_ms)
                cfg->max_delay_ms = fl.max_delay_ms;
        if (fl.max_file_bytes)
                cfg->max_file_bytes = fl.max_file_bytes;
        if (fl.has_backend)
                cfg->backend = fl.backend;
        if (fl.has_indexer_priority)
                cfg->indexer_priority = fl.indexer_priority;
        r = check_delays(cfg, &fl, s);
        if (r < 0)
                return r;

        r = take_roots(cfg, &fl, s);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        if (cfg->n_roots == 0) {
                /* Name the file we looked for, so the user knows where to write. */
                const char *where = cfg->config_path ? cfg->config_path : path ? path : "~/.config/quire/config.ini";
                return usage_error("no folders to watch: give DIR arguments or [root] sections in %s", where);
        }
        return 0;
}

int config_load(int argc, char **argv, struct config *cfg) {
        struct parse_state s = { .cfg = cfg };
        int r;

        *cfg = (struct config) {
                .settle_ms = CONFIG_SETTLE_MS_DEFAULT,
                .max_delay_ms = CONFIG_MAX_DELAY_MS_DEFAULT,
                .rescan_interval_s = CONFIG_RESCAN_INTERVAL_S_DEFAULT,
                .max_file_bytes = DOCUMENT_MAX_BYTES_DEFAULT,
                .backend = WATCH_BACKEND_INOTIFY,
                .indexer_priority = INDEXER_PRIORITY_IDLE,
                .log_level = LOG_INFO,
        };
        r = config_load_internal(argc, argv, cfg, &s);
        parse_state_done(&s);
        if (r < 0)
                config_done(cfg);
        return r;
}

void config_done(struct config *cfg) {
        free(cfg->db_path);
        free(cfg->config_path);
        for (size_t i = 0; i < cfg->n_roots; i++) {
                free(cfg->roots[i].path);
                free(cfg->roots[i].namespace);
        }
        free(cfg->roots);
        strv_free(cfg->ignore_globs, cfg->n_ignore_globs);
        strv_free(cfg->extensions, cfg->n_extensions);
        *cfg = (struct config) {};
}
