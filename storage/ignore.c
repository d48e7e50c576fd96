/* See ignore.h. The pattern rules are gitignore(5)'s, and the matcher is
 * git's wildmatch algorithm (WM_PATHNAME) written out again, so that a tree
 * with a .quireignore is cut the way git cuts it with a .gitignore of the
 * same lines (tests/unit/storage/test-ignore.c checks both against each
 * other where git is installed). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignore.h"
#include "log.h"
#include "util.h"

struct ignore_pattern {
        const char *glob;  /* points into the file's text; no leading '/' */
        bool is_negated;   /* "!glob": a match re-includes */
        bool is_dir_only;  /* "glob/": matches directories only */
        bool is_basename;  /* no '/' in it: matches a name at any depth */
};

struct ignore_file {
        unsigned n_refs;
        struct ignore_pattern *patterns;
        size_t n_patterns;
        char text[]; /* the lines, cut at their ends */
};

/* --- wildmatch -------------------------------------------------------- */

enum {
        WILD_MATCH,
        WILD_NO_MATCH,
        WILD_ABORT_ALL,         /* no later start position can match either */
        WILD_ABORT_TO_STARSTAR, /* only a "**" further out can still match */
};

static bool class_has(const char *name, size_t n, unsigned char c) {
#define CLASS(s, test) \
        if (n == sizeof(s) - 1 && memcmp(name, s, n) == 0) \
                return c < 128 && test(c)
        CLASS("alnum", isalnum);
        CLASS("alpha", isalpha);
        CLASS("blank", isblank);
        CLASS("cntrl", iscntrl);
        CLASS("digit", isdigit);
        CLASS("graph", isgraph);
        CLASS("lower", islower);
        CLASS("print", isprint);
        CLASS("punct", ispunct);
        CLASS("space", isspace);
        CLASS("upper", isupper);
        CLASS("xdigit", isxdigit);
#undef CLASS
        return false;
}

static bool is_class_name(const char *name, size_t n) {
        static const char *const names[] = { "alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                             "lower", "print", "punct", "space", "upper", "xdigit" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
                        return true;
        return false;
}

/* A bracket expression at *pp (just past '['), against c. Leaves *pp at
 * its closing ']'. Returns WILD_MATCH, WILD_NO_MATCH or WILD_ABORT_ALL (no
 * closing ']', or an unknown [:class:]). */
static int match_bracket(const unsigned char **pp, unsigned char c) {
        const unsigned char *p = *pp;
        unsigned char prev = 0, pc = *p;
        bool is_negated = false, matched = false;

        if (pc == '!' || pc == '^') {
                is_negated = true;
                pc = *++p;
        }
        /* The first character is taken literally, even a ']'. */
        do {
                if (!pc)
                        return WILD_ABORT_ALL;
                if (pc == '\\') {
                        pc = *++p;
                        if (!pc)
                                return WILD_ABORT_ALL;
                        matched |= c == pc;
                } else if (pc == '-' && prev && p[1] && p[1] != ']') {
                        pc = *++p;
                        if (pc == '\\') {
                                pc = *++p;
                                if (!pc)
                                        return WILD_ABORT_ALL;
                        }
                        matched |= c >= prev && c <= pc;
                        pc = 0; /* a range does not start another one */
                } else if (pc == '[' && p[1] == ':') {
                        const unsigned char *name = p + 2, *end = name;
                        while (*end && *end != ']')
                                end++;
                        if (!*end)
                                return WILD_ABORT_ALL;
                        if (end - name < 1 || end[-1] != ':') {
                                /* No ":]": a plain '['. */
                                matched |= c == '[';
                        } else {
                                size_t n = (size_t) (end - name) - 1;
                                if (!is_class_name((const char *) name, n))
                                        return WILD_ABORT_ALL;
                                matched |= class_has((const char *) name, n, c);
                                p = end;
                                pc = 0;
                        }
                } else
                        matched |= c == pc;
                prev = pc;
                pc = *++p;
        } while (pc != ']');
        *pp = p;
        return matched != is_negated && c != '/' ? WILD_MATCH : WILD_NO_MATCH;
}

static int wild(const unsigned char *glob, const unsigned char *p, const unsigned char *text) {
        for (; *p; p++, text++) {
                unsigned char tc = *text, pc = *p;
                bool may_cross_slash;

                if (!tc && pc != '*')
                        return WILD_ABORT_ALL;
                switch (pc) {
                case '\\':
                        /* A lone trailing '\' matches nothing. */
                        pc = *++p;
                        if (tc != pc)
                                return WILD_NO_MATCH;
                        continue;
                case '?':
                        if (tc == '/')
                                return WILD_NO_MATCH;
                        continue;
                case '[': {
                        p++;
                        int m = match_bracket(&p, tc);
                        if (m != WILD_MATCH)
                                return m;
                        continue;
                }
                case '*':
                        if (p[1] == '*') {
                                const unsigned char *before = p;
                                while (*++p == '*')
                                        ;
                                /* "**" is special only as a whole component:
                                 * at the start or after '/', and at the end or
                                 * before '/'. Elsewhere it is a plain '*'. */
                                if ((before == glob || before[-1] == '/') &&
                                    (*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
                                        /* "**" + "/" may match no directory at all. */
                                        if (*p == '/' && wild(glob, p + 1, text) == WILD_MATCH)
                                                return WILD_MATCH;
                                        may_cross_slash = true;
                                } else
                                        may_cross_slash = false;
                        } else {
                                p++;
                                may_cross_slash = false;
                        }
                        if (!*p) {
                                /* A trailing "**" takes the rest; a trailing '*'
                                 * only within the last component. */
                                if (!may_cross_slash && strchr((const char *) text, '/'))
                                        return WILD_NO_MATCH;
                                return WILD_MATCH;
                        }
                        if (!may_cross_slash && *p == '/') {
                                /* "*" then "/": the rest of this component. */
                                const char *slash = strchr((const char *) text, '/');
                                if (!slash)
                                        return WILD_NO_MATCH;
                                text = (const unsigned char *) slash;
                                break; /* the loop matches the '/' */
                        }
                        for (;; tc = *++text) {
                                if (!tc)
                                        return WILD_ABORT_ALL;
                                int m = wild(glob, p, text);
                                if (m != WILD_NO_MATCH) {
                                        if (!may_cross_slash || m != WILD_ABORT_TO_STARSTAR)
                                                return m;
                                } else if (!may_cross_slash && tc == '/')
                                        return WILD_ABORT_TO_STARSTAR;
                        }
                default:
                        if (tc != pc)
                                return WILD_NO_MATCH;
                        continue;
                }
                /* Only "*" + "/" gets here, p and text both at a '/': the
                 * loop steps over the two together. */
        }
        return *text ? WILD_NO_MATCH : WILD_MATCH;
}

bool ignore_glob_match(const char *glob, const char *text) {
        const unsigned char *g = (const unsigned char *) glob;
        return wild(g, g, (const unsigned char *) text) == WILD_MATCH;
}

/* --- parsing ---------------------------------------------------------- */

/* Trailing blanks go unless quoted with a backslash (gitignore(5)). */
static void trim_trailing_spaces(char *s) {
        char *last_space = NULL;

        for (char *p = s; *p; p++) {
                if (*p == ' ') {
                        if (!last_space)
                                last_space = p;
                        continue;
                }
                if (*p == '\\' && !*++p)
                        return;
                last_space = NULL;
        }
        if (last_space)
                *last_space = '\0';
}

static void parse_line(struct ignore_file *f, char *line) {
        struct ignore_pattern pat = { 0 };

        if (!*line || *line == '#')
                return;
        trim_trailing_spaces(line);
        if (*line == '!') {
                pat.is_negated = true;
                line++;
        }
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '/') {
                pat.is_dir_only = true;
                line[--n] = '\0';
        }
        if (n == 0)
                return; /* matches nothing */
        pat.is_basename = !memchr(line, '/', n);
        /* A leading '/' anchors (as does any other '/'); paths never start
         * with one. */
        pat.glob = line[0] == '/' ? line + 1 : line;
        f->patterns[f->n_patterns++] = pat;
}

int ignore_file_parse(const char *text, size_t len, struct ignore_file **ret) {
        size_t n_lines = 1;

        for (size_t i = 0; i < len; i++)
                n_lines += text[i] == '\n';
        struct ignore_file *f = malloc(sizeof *f + len + 1);
        if (!f)
                return -ENOMEM;
        *f = (struct ignore_file){ .n_refs = 1, .patterns = calloc(n_lines, sizeof *f->patterns) };
        if (!f->patterns) {
                free(f);
                return -ENOMEM;
        }
        memcpy(f->text, text, len);
        f->text[len] = '\0';

        char *line = f->text, *end_of_text = f->text + len;
        /* git skips a UTF-8 byte order mark at the start. */
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
                line += 3;
        while (line < end_of_text) {
                char *end = memchr(line, '\n', (size_t) (end_of_text - line));
                char *next = end ? end + 1 : end_of_text;
                if (!end)
                        end = end_of_text;
                /* CRLF files: git strips the CR too. */
                if (end > line && end[-1] == '\r')
                        end--;
                *end = '\0';
                parse_line(f, line); /* a NUL inside a line ends it there */
                line = next;
        }
        *ret = f;
        return 0;
}

int ignore_file_load(int dirfd, const char *dir, struct ignore_file **ret) {
        *ret = NULL;
        /* O_NONBLOCK: a FIFO by that name must not hang the walk;
         * O_NOFOLLOW: as git, a symlinked ignore file is not followed. */
        _cleanup_close_ int fd = openat(dirfd, IGNORE_FILE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;

        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                if (errno == ELOOP) {
                        log_warning("Ignoring %s/%s: it is a symlink, which is not followed", dir, IGNORE_FILE_NAME);
                        return 0;
                }
                log_warning_errno(errno, "Failed to read %s/%s: %m (its patterns are not applied)", dir,
                                  IGNORE_FILE_NAME);
                return 0;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                log_warning("Ignoring %s/%s: not a regular file", dir, IGNORE_FILE_NAME);
                return 0;
        }
        if (st.st_size > IGNORE_FILE_MAX_BYTES) {
                log_warning("Ignoring %s/%s: larger than %d KiB", dir, IGNORE_FILE_NAME, IGNORE_FILE_MAX_BYTES / 1024);
                return 0;
        }
        /* Read what fstat saw; a file that grows meanwhile is read again
         * on the event its write causes. */
        size_t size = (size_t) st.st_size, len = 0;
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < size) {
                ssize_t k = read(fd, buf + len, size - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        log_warning_errno(errno, "Failed to read %s/%s: %m (its patterns are not applied)", dir,
                                          IGNORE_FILE_NAME);
                        return 0;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        return ignore_file_parse(buf, len, ret);
}

int ignore_file_load_dir(const char *dir, struct ignore_file **ret) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        *ret = NULL;
        /* A directory that cannot be opened has no rules we could know. */
        return fd >= 0 ? ignore_file_load(fd, dir, ret) : 0;
}

struct ignore_file *ignore_file_ref(struct ignore_file *f) {
        if (f)
                f->n_refs++;
        return f;
}

void ignore_file_unref(struct ignore_file *f) {
        if (!f || --f->n_refs > 0)
                return;
        free(f->patterns);
        free(f);
}

size_t ignore_file_n_patterns(const struct ignore_file *f) {
        return f ? f->n_patterns : 0;
}

enum ignore_match ignore_file_match(const struct ignore_file *f, const char *rel, bool is_dir) {
        const char *slash = strrchr(rel, '/');
        const char *name = slash ? slash + 1 : rel;

        /* Last match wins: look from the end. */
        for (size_t i = f->n_patterns; i > 0; i--) {
                const struct ignore_pattern *pat = &f->patterns[i - 1];
                if (pat->is_dir_only && !is_dir)
                        continue;
                if (ignore_glob_match(pat->glob, pat->is_basename ? name : rel))
                        return pat->is_negated ? IGNORE_INCLUDE : IGNORE_EXCLUDE;
        }
        return IGNORE_NO_MATCH;
}

/* --- the cache -------------------------------------------------------- */

struct cache_entry {
        char *dir; /* owned */
        size_t dir_len;
        uint64_t hash;
        struct ignore_file *file; /* a reference; NULL: the directory has none */
        struct cache_entry *next_in_bucket;
        struct cache_entry *newer, *older; /* the LRU list */
};

struct ignore_cache {
        struct cache_entry **buckets;
        size_t n_buckets; /* a power of two, at least twice max_entries */
        size_t n_entries, max_entries;
        struct cache_entry *newest, *oldest;
        unsigned long n_loads;
};

int ignore_cache_new(size_t max_dirs, struct ignore_cache **ret) {
        struct ignore_cache *c = calloc(1, sizeof *c);
        size_t n = 16;

        if (!c)
                return -ENOMEM;
        while (n < max_dirs * 2)
                n *= 2;
        c->buckets = calloc(n, sizeof *c->buckets);
        if (!c->buckets) {
                free(c);
                return -ENOMEM;
        }
        c->n_buckets = n;
        c->max_entries = max_dirs ? max_dirs : 1;
        *ret = c;
        return 0;
}

static void lru_unlink(struct ignore_cache *c, struct cache_entry *e) {
        if (e->newer)
                e->newer->older = e->older;
        else
                c->newest = e->older;
        if (e->older)
                e->older->newer = e->newer;
        else
                c->oldest = e->newer;
        e->newer = e->older = NULL;
}

static void lru_push_newest(struct ignore_cache *c, struct cache_entry *e) {
        e->older = c->newest;
        e->newer = NULL;
        if (c->newest)
                c->newest->newer = e;
        c->newest = e;
        if (!c->oldest)
                c->oldest = e;
}

static void entry_drop(struct ignore_cache *c, struct cache_entry *e) {
        struct cache_entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];
        while (*pp != e)
                pp = &(*pp)->next_in_bucket;
        *pp = e->next_in_bucket;
        lru_unlink(c, e);
        ignore_file_unref(e->file);
        free(e->dir);
        free(e);
        c->n_entries--;
}

int ignore_cache_get(struct ignore_cache *c, const char *dir, struct ignore_file **ret) {
        size_t n = strlen(dir);
        uint64_t h = fnv1a64(dir, n);
        struct cache_entry *e;

        for (e = c->buckets[h & (c->n_buckets - 1)]; e; e = e->next_in_bucket)
                if (e->hash == h && e->dir_len == n && memcmp(e->dir, dir, n) == 0) {
                        lru_unlink(c, e);
                        lru_push_newest(c, e);
                        *ret = ignore_file_ref(e->file);
                        return 0;
                }

        struct ignore_file *f = NULL;
        int r = ignore_file_load_dir(dir, &f);
        if (r < 0)
                return r;
        c->n_loads++;
        e = calloc(1, sizeof *e);
        if (!e || !(e->dir = strdup(dir))) {
                free(e);
                ignore_file_unref(f);
                return -ENOMEM;
        }
        if (c->n_entries >= c->max_entries)
                entry_drop(c, c->oldest);
        e->dir_len = n;
        e->hash = h;
        e->file = f;
        e->next_in_bucket = c->buckets[h & (c->n_buckets - 1)];
        c->buckets[h & (c->n_buckets - 1)] = e;
        lru_push_newest(c, e);
        c->n_entries++;
        *ret = ignore_file_ref(f);
        return 0;
}

void ignore_cache_forget(struct ignore_cache *c, const char *dir, bool is_subtree) {
        size_t n = strlen(dir);

        if (!c)
                return;
        for (struct cache_entry *e = c->newest, *next; e; e = next) {
                next = e->older;
                if (e->dir_len < n || memcmp(e->dir, dir, n) != 0)
                        continue;
                if (e->dir_len == n || (is_subtree && e->dir[n] == '/'))
                        entry_drop(c, e);
        }
}

void ignore_cache_clear(struct ignore_cache *c) {
        while (c && c->newest)
                entry_drop(c, c->newest);
}

void ignore_cache_free(struct ignore_cache *c) {
        if (!c)
                return;
        ignore_cache_clear(c);
        free(c->buckets);
        free(c);
}

size_t ignore_cache_count(const struct ignore_cache *c) {
        return c->n_entries;
}

unsigned long ignore_cache_loads(const struct ignore_cache *c) {
        return c->n_loads;
}
