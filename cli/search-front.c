/* quire search up to the database (search-front.h): options, printing
 * hits, and the search socket's client side. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "macro.h"
#include "search-front.h"
#include "search-wire.h"
#include "util.h"

#define SYNC_TIMEOUT_MS_DEFAULT 10000
/* How long quired may be silent before the search runs here instead (or,
 * once hits came, fails): past any query worth waiting for. */
#define DAEMON_TIMEOUT_SEC 10

static const char search_help[] =
        "Usage: quire search [OPTIONS] QUERY\n"
        "\n"
        "Search the index; hits are chunks, best first (BM25).\n"
        "\n"
        "QUERY is SQLite FTS5 syntax:\n"
        "  word1 word2          both words (AND is implied)\n"
        "  \"exact words\"        the words next to each other, in order\n"
        "  index*               words starting with 'index'\n"
        "  a OR b, a NOT b, (a OR b) AND c\n"
        "  NEAR(a b, 5)         a and b at most 5 words apart\n"
        "  heading_hierarchy: w w in a heading (columns: content, source_file,\n"
        "                       heading_hierarchy; {content source_file}: w)\n"
        "  - content: w         w in a column other than content\n"
        "Chinese, Japanese and Korean words are found inside longer runs of\n"
        "text (indexed as overlapping character pairs); one character finds\n"
        "every word that holds it.\n"
        "Words are matched case- and accent-insensitively; quote words that\n"
        "hold punctuation or are AND/OR/NOT/NEAR: '\"c++\"'. A QUERY that starts\n"
        "with '-' goes after --: quire search -- '-content: w'.\n"
        "\n"
        "Filters (all must hold):\n"
        "  -n, --namespace NS    only hits from namespace NS\n"
        "      --path GLOB       only files whose path matches GLOB, or under a\n"
        "                        directory that does: 'linux/*' and 'linux' match\n"
        "                        at any depth, '/abs/dir' and './rel/dir' (from the\n"
        "                        current directory) from there; '*' also matches '/'\n"
        "      --heading TEXT    only chunks whose heading path (\"A > B\")\n"
        "                        contains TEXT, ignoring case\n"
        "      --tag TAG         only chunks tagged TAG (#TAG in the text, or\n"
        "                        tags: in the file's front matter), or a tag\n"
        "                        nested under it (TAG/sub); ASCII case ignored;\n"
        "                        several --tag: all of them\n"
        "  -l, --limit N         at most N hits (--files: N files; default 10)\n"
        "      --offset N        skip the N best hits (files) first\n"
        "\n"
        "Output (one of):\n"
        "      (default)         file:first-last, heading path, snippet\n"
        "      --json            one JSON object per hit and line\n"
        "      --vimgrep         file:line:column:text of each hit's first match\n"
        "      --files           the files with hits, best first, one per line\n"
        "      --color WHEN      auto (default: on a terminal unless NO_COLOR is\n"
        "                        set), always or never\n"
        "A hit whose file changed or vanished since it was indexed is marked\n"
        "[stale] (JSON: \"stale\": true). Paths with control characters, '\"',\n"
        "'\\' or invalid UTF-8 are printed quoted, with C escapes (like git).\n"
        "\n"
        "Fresh results:\n"
        "      --sync            search an index that holds every change saved\n"
        "                        before the search: wait until quired has indexed\n"
        "                        them (quire creates a hidden .quire-cookie-* file\n"
        "                        at the top of each folder quired watches, so it\n"
        "                        needs write access there), or, with no quired\n"
        "                        running, re-index the folders 'quire index' and\n"
        "                        quired recorded (unchanged notes cost a stat).\n"
        "                        Then stale hits are re-indexed and the search\n"
        "                        runs again\n"
        "      --sync-timeout MS how long --sync waits for quired (default 10000,\n"
        "                        or $QUIRE_SYNC_TIMEOUT_MS); past it: exit 1\n"
        "\n"
        "      --db PATH         database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -h, --help            show this help\n";


static const char *const format_options[] = {
        [FORMAT_TEXT] = NULL,
        [FORMAT_JSON] = "--json",
        [FORMAT_VIMGREP] = "--vimgrep",
        [FORMAT_FILES] = "--files",
};

/* Snippet markers the text format asks for and turns into colour or
 * Markdown bold: control characters, so that no text in a note can pass
 * for them once the rest of its control characters are blanked. */
#define MARK_OPEN "\x02"
#define MARK_CLOSE "\x03"

#define COLOR_PATH "\033[35m"
#define COLOR_LINES "\033[32m"
#define COLOR_STALE "\033[1;33m"
#define COLOR_MATCH "\033[1;31m"
#define COLOR_RESET "\033[0m"

#define STALE_MARKER "[stale]"

static char **path_set_slot(char **slots, size_t cap, const char *path) {
        size_t i = (size_t) fnv1a64(path, strlen(path)) & (cap - 1);
        while (slots[i] && strcmp(slots[i], path) != 0)
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

int path_set_add(struct path_set *set, const char *path) {
        if ((set->n + 1) * 2 > set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 64;
                char **slots = calloc(cap, sizeof *slots);
                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < set->cap; i++)
                        if (set->slots[i])
                                *path_set_slot(slots, cap, set->slots[i]) = set->slots[i];
                free(set->slots);
                set->slots = slots;
                set->cap = cap;
        }
        char **slot = path_set_slot(set->slots, set->cap, path);
        if (*slot)
                return 0;
        *slot = strdup(path);
        if (!*slot)
                return -ENOMEM;
        set->n++;
        return 1;
}

void path_set_done(struct path_set *set) {
        for (size_t i = 0; i < set->cap; i++)
                free(set->slots[i]);
        free(set->slots);
        *set = (struct path_set){ 0 };
}

static void print_path(const char *path) {
        fputs_field(path, stdout);
}

/* A snippet on one line: the markers become colour or **, every other
 * control character (newlines, tabs, a note's own escape sequences) a
 * space. */
static void print_snippet(const char *s, bool use_color) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == MARK_OPEN[0])
                        fputs(use_color ? COLOR_MATCH : "**", stdout);
                else if (c == MARK_CLOSE[0])
                        fputs(use_color ? COLOR_RESET : "**", stdout);
                else
                        fputc(c < 0x20 || c == 0x7f ? ' ' : c, stdout);
        }
}

static void print_text(const struct search_hit *h, bool is_stale, bool use_color) {
        if (use_color)
                fputs(COLOR_PATH, stdout);
        print_path(h->source_file);
        if (use_color)
                printf(COLOR_RESET ":" COLOR_LINES "%lld-%lld" COLOR_RESET, (long long) h->start_line,
                       (long long) h->end_line);
        else
                printf(":%lld-%lld", (long long) h->start_line, (long long) h->end_line);
        if (is_stale)
                fputs(use_color ? " " COLOR_STALE STALE_MARKER COLOR_RESET : " " STALE_MARKER, stdout);
        if (*h->heading_path) {
                fputs("  ", stdout);
                print_snippet(h->heading_path, false);
        }
        fputs("\n    ", stdout);
        print_snippet(h->snippet, use_color);
        fputc('\n', stdout);
}

static void print_json(const struct search_hit *h, bool is_stale) {
        fputs("{\"id\":", stdout);
        json_write_string(stdout, h->id);
        fputs(",\"namespace\":", stdout);
        json_write_string(stdout, h->namespace);
        fputs(",\"source_file\":", stdout);
        json_write_string(stdout, h->source_file);
        printf(",\"start_line\":%lld,\"end_line\":%lld,\"heading_hierarchy\":%s,\"score\":%.6f,\"snippet\":",
               (long long) h->start_line, (long long) h->end_line, h->heading_hierarchy, h->score);
        json_write_string(stdout, h->snippet);
        printf(",\"stale\":%s}\n", is_stale ? "true" : "false");
}

/* ripgrep's --vimgrep line, which vim's quickfix (errorformat %f:%l:%c:%m),
 * emacs' grep-mode and fzf read: the marker goes in front of the text, so
 * the first three fields stay what they are. */
static void print_vimgrep(const struct search_hit *h, bool is_stale) {
        print_path(h->source_file);
        printf(":%lld:%lld:%s", (long long) h->match_line, (long long) h->match_column,
               is_stale ? STALE_MARKER " " : "");
        fwrite(h->match_text, 1, h->match_text_len, stdout);
        fputc('\n', stdout);
}

/* Hits come best first, so a path's first hit is its best: print it then,
 * and skip its later ones. Returns 1 when enough files are printed. */
static int print_file(struct search_output *out, const struct search_hit *h) {
        int r = path_set_add(&out->seen_paths, h->source_file);
        if (r < 0)
                return log_error_errno(r, "Failed to remember a path: %m");
        if (r == 0)
                return 0;
        if (out->files_to_skip > 0) {
                out->files_to_skip--;
                return 0;
        }
        print_path(h->source_file);
        fputs(search_hit_is_stale(h) ? "\t" STALE_MARKER "\n" : "\n", stdout);
        if (out->files_left > 0 && --out->files_left == 0)
                return 1;
        return 0;
}

int search_print_hit(const struct search_hit *h, void *userdata) {
        struct search_output *out = userdata;

        switch (out->format) {
        case FORMAT_TEXT:
                print_text(h, search_hit_is_stale(h), out->use_color);
                return 0;
        case FORMAT_JSON:
                print_json(h, search_hit_is_stale(h));
                return 0;
        case FORMAT_VIMGREP:
                print_vimgrep(h, search_hit_is_stale(h));
                return 0;
        case FORMAT_FILES:
                return print_file(out, h);
        }
        return 0;
}

/* The socket quired answers searches of db_path on, connected; -errno
 * when there is none (no daemon, another database, no runtime dir). */
static int connect_daemon(const char *db_path, uint64_t *ret_dev, uint64_t *ret_ino) {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        struct timeval timeout = { .tv_sec = DAEMON_TIMEOUT_SEC };
        struct stat st;

        _cleanup_free_ char *resolved = realpath(db_path, NULL);
        if (!resolved || stat(resolved, &st) < 0)
                return -errno;
        int r = search_socket_path(resolved, addr.sun_path, sizeof addr.sun_path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0)
                return -errno;
#ifdef SO_NOSIGPIPE
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
                return -errno;
#endif
        /* Not blocking: the connection queue of a quired that is not
         * accepting (stopped, or busy for longer than a search should
         * wait) may be full, and connect() would wait the timeout. */
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &addr, sizeof addr) < 0)
                return -errno; /* EAGAIN: the queue is full */
        if (fcntl(fd, F_SETFL, flags) < 0)
                return -errno;
#ifdef SO_PEERCRED
        /* A stopped quired's socket still takes connections (the kernel
         * queues them) and answers none: each search waited out the
         * timeout before running here. */
        struct ucred peer;
        socklen_t peer_len = sizeof peer;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0 &&
            process_stop_of(peer.pid, "quired") != PROCESS_NOT_STOPPED) {
                log_debug("quired (pid %ld) is stopped; searching %s here", (long) peer.pid, db_path);
                return -EHOSTDOWN;
        }
#endif
        *ret_dev = (uint64_t) st.st_dev;
        *ret_ino = (uint64_t) st.st_ino;
        return TAKE_FD(fd);
}

/* Keep a frame as read (its length, then its body) at the end of f. */
static int keep_frame(struct search_frames *f, const char *body, size_t len) {
        uint32_t n = (uint32_t) len;
        if (GREEDY_REALLOC(f->data, f->cap, f->len + sizeof n + len, 4096) < 0)
                return -ENOMEM;
        memcpy(f->data + f->len, &n, sizeof n);
        memcpy(f->data + f->len + sizeof n, body, len);
        f->len += sizeof n + len;
        return 0;
}

/* quired's whole answer, read before any of it is printed: a reader of
 * quire's output slower than quired (a pager, a loop) would otherwise
 * stop quire reading the socket, and quired drops a client that stops
 * reading for a few seconds; and a search that fails midway (a hit too
 * large for a frame, quired stopped) has printed nothing, so it can still
 * run here. The hit frames go in *hits, the status in *ret_status (0;
 * -EINVAL, a malformed query, or -ETIMEDOUT, a search that took too long,
 * which would take as long here: with its message in *ret_message, which
 * points into *frame). --files stops reading once it has its files.
 * false when the search is to run here. */
static bool read_answer(int fd, const struct search_output *out, const char *db_path, struct search_frames *hits,
                        char **frame, size_t *frame_cap, int *ret_status, const char **ret_message) {
        struct path_set files = { 0 };
        size_t files_wanted = out->format == FORMAT_FILES ? (size_t) out->files_to_skip + out->files_left : 0;
        bool is_answered = false;

        *ret_status = 0;
        *ret_message = NULL;
        for (;;) {
                ssize_t n = search_read_frame(fd, frame, frame_cap, 0, -1);
                struct search_hit hit;

                if (n > 0 && (*frame)[0] == SEARCH_FRAME_HIT &&
                    search_parse_hit(*frame, (size_t) n, &hit) == 0) {
                        if (keep_frame(hits, *frame, (size_t) n) < 0)
                                break;
                        if (files_wanted == 0)
                                continue;
                        int r = path_set_add(&files, hit.source_file);
                        if (r < 0)
                                break;
                        if (files.n < files_wanted)
                                continue;
                        is_answered = true;
                        break;
                }
                if (n > 0 && (*frame)[0] == SEARCH_FRAME_END &&
                    search_parse_end(*frame, (size_t) n, ret_status, ret_message) == 0) {
                        is_answered = *ret_status == 0 || *ret_status == -EINVAL || *ret_status == -ETIMEDOUT;
                        if (!is_answered)
                                log_debug("quired could not search %s (%s); searching here", db_path,
                                          *ret_message ? *ret_message : strerror(-*ret_status));
                        break;
                }
                log_debug_errno(n < 0 ? (int) n : EPROTO, "quired stopped answering the search of %s (%m); "
                                "searching here", db_path);
                break;
        }
        path_set_done(&files);
        return is_answered;
}

bool search_via_daemon(const char *db_path, struct search_args *a, int *ret_rc) {
        struct search_frames request = { 0 }, hits = { 0 };
        _cleanup_free_ char *frame = NULL;
        size_t frame_cap = 0;
        uint64_t dev = 0, ino = 0;
        const char *message;
        int status;

        _cleanup_close_ int fd = connect_daemon(db_path, &dev, &ino);
        if (fd < 0)
                return false;
        int r = search_frame_request(&request, dev, ino, &a->query);
        if (r == 0)
                r = search_write_frames(fd, &request);
        search_frames_done(&request);
        if (r < 0)
                return false;
        bool is_answered = read_answer(fd, &a->out, db_path, &hits, &frame, &frame_cap, &status, &message);
        /* quired's thread is free for the next client while these print. */
        close(TAKE_FD(fd));
        if (!is_answered) {
                search_frames_done(&hits);
                return false;
        }

        *ret_rc = 0;
        for (size_t at = 0; at < hits.len;) {
                struct search_hit hit;
                uint32_t n;

                memcpy(&n, hits.data + at, sizeof n);
                at += sizeof n;
                /* Parsed once already: it parses again. */
                (void) search_parse_hit(hits.data + at, n, &hit);
                at += n;
                r = search_print_hit(&hit, &a->out);
                if (r != 0) {
                        *ret_rc = r < 0 ? 1 : 0;
                        break;
                }
        }
        search_frames_done(&hits);
        /* -EINVAL or -ETIMEDOUT: the search's own error, as in process. */
        if (*ret_rc == 0 && status < 0) {
                log_error("%s", message ? message : strerror(-status));
                *ret_rc = status == -EINVAL ? EXIT_USAGE : 1;
        }
        return true;
}

static bool parse_count(const char *s, unsigned *ret) {
        if (s && strcmp(s, "0") == 0) {
                *ret = 0;
                return true;
        }
        return parse_unsigned(s, ret);
}

/* The members of the POSIX class at s ("[:alpha:]") as SQLite's GLOB
 * takes them in a set, and its length in *len; NULL for no class GLOB's
 * ASCII sets can say. */
static const char *posix_class(const char *s, size_t *len) {
        static const struct {
                const char *name, *members;
        } classes[] = {
                { "[:alpha:]", "a-zA-Z" }, { "[:digit:]", "0-9" },     { "[:alnum:]", "a-zA-Z0-9" },
                { "[:upper:]", "A-Z" },    { "[:lower:]", "a-z" },     { "[:space:]", " \t\n\r\f\v" },
                { "[:xdigit:]", "0-9a-fA-F" }, { "[:blank:]", " \t" },
        };
        for (size_t i = 0; i < ELEMENTSOF(classes); i++)
                if (strncmp(s, classes[i].name, strlen(classes[i].name)) == 0) {
                        *len = strlen(classes[i].name);
                        return classes[i].members;
                }
        return NULL;
}

/* The set whose '[' is at s (fnmatch(3) syntax: '!' or '^' negates, a ']'
 * first is a member, a backslash makes the next character a member, POSIX
 * classes) to f in GLOB's syntax ('^' negates, a ']' first is a member,
 * no escapes). Returns where the set ends (its ']'), or NULL for one that
 * never closes, which is a literal '['. */
static const char *write_set(FILE *f, const char *s) {
        const char *c = s + 1;
        bool is_negated = *c == '!' || *c == '^', has_bracket = false;
        char *members = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&members, &len);
        if (!m)
                return NULL;
        c += is_negated;
        for (bool is_first = true; *c && (is_first || *c != ']'); is_first = false) {
                size_t class_len;
                const char *class = *c == '[' ? posix_class(c, &class_len) : NULL;
                if (class) {
                        fputs(class, m);
                        c += class_len;
                        continue;
                }
                if (*c == '\\' && c[1])
                        c++;
                if (*c == ']')
                        has_bracket = true; /* first in GLOB's set, where it is a member */
                else
                        fputc(*c, m);
                c++;
        }
        if (fclose(m) != 0 || !*c) {
                free(members);
                return NULL;
        }
        fprintf(f, "[%s%s%s]", is_negated ? "^" : "", has_bracket ? "]" : "", members);
        free(members);
        return c;
}

/* pattern, a shell glob as fnmatch(3) and .quireignore read it, to f as
 * SQLite's GLOB reads it: "[!a]" is "[^a]" there ("[!a]" would be the set
 * of '!' and 'a'), and a backslash escapes nothing there, so an escaped
 * '*' is written "[*]" (write_set() for sets). */
static void write_sqlite_glob(FILE *f, const char *pattern) {
        for (const char *c = pattern; *c; c++) {
                if (*c == '\\' && c[1]) {
                        c++;
                        if (*c == '*' || *c == '?' || *c == '[')
                                fprintf(f, "[%c]", *c);
                        else
                                fputc(*c, f);
                        continue;
                }
                if (*c != '[') {
                        fputc(*c, f);
                        continue;
                }
                const char *end = write_set(f, c);
                if (end)
                        c = end;
                else
                        fputs("[[]", f);
        }
}

/* base (a directory's path, "" for "/") as a literal, then "/" and
 * pattern unless it is empty. Newly allocated; NULL when out of memory. */
static char *rooted_glob(const char *base, const char *pattern) {
        char *glob = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&glob, &len);
        if (!f)
                return NULL;
        for (const char *c = base; *c; c++)
                if (*c == '*' || *c == '?' || *c == '[')
                        fprintf(f, "[%c]", *c);
                else
                        fputc(*c, f);
        if (*pattern) {
                fputc('/', f);
                write_sqlite_glob(f, pattern);
        }
        if (fclose(f) != 0) {
                free(glob);
                return NULL;
        }
        return glob;
}

/* cwd (a realpath) joined with a pattern that starts with "." or "..":
 * its leading "." components dropped, its leading ".." ones taken off cwd
 * by name, and what is left of cwd escaped, so that a '*', '?' or '[' in a
 * directory name stays literal. Newly allocated; NULL when out of memory. */
static char *relative_glob(const char *cwd, const char *pattern) {
        _cleanup_free_ char *base = strdup(cwd);

        if (!base)
                return NULL;
        const char *p = pattern;
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        char *slash = strrchr(base, '/');
                        if (slash)
                                *slash = '\0';
                } else if (n != 1 || p[0] != '.')
                        break;
                p += n;
                while (*p == '/')
                        p++;
        }

        return rooted_glob(base, p);
}

/* An anchored pattern ("/..."), its directories up to the first glob
 * character resolved as the index stores paths (realpath: "//", "/./" and
 * symlinks are not what it holds), when they exist. NULL when out of
 * memory. */
static char *anchored_glob(const char *pattern) {
        size_t cut = strcspn(pattern, "*?[\\");
        struct stat st;
        /* No glob character at all, naming a folder (through a symlink,
         * say): all of it is resolved. */
        if (!pattern[cut] && stat(*pattern ? pattern : "/", &st) == 0 && S_ISDIR(st.st_mode))
                cut = strlen(pattern) + 1;
        else
                while (cut > 0 && pattern[cut - 1] != '/')
                        cut--;
        _cleanup_free_ char *dir = strndup(pattern, cut);
        if (!dir)
                return NULL;
        _cleanup_free_ char *resolved = realpath(*dir ? dir : "/", NULL);
        char *base = resolved ? resolved : dir;
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
                base[--n] = '\0';
        return rooted_glob(base, cut > strlen(pattern) ? "" : pattern + cut);
}

/* The glob store_search() matches against absolute paths, from what the
 * user typed: "/..." from its directories' realpath (anchored_glob()); ".", "./..." and "../..." from the current
 * directory (its realpath: paths are stored by realpath); anything else at
 * any depth, with "*" "/" in front. Trailing slashes go: the directory rule
 * of store_search() takes what is under a directory. NULL on failure,
 * logged. */
static char *absolute_path_glob(const char *pattern) {
        _cleanup_free_ char *trimmed = strdup(pattern), *cwd = NULL;
        char *glob = NULL;

        if (!trimmed) {
                log_error_errno(ENOMEM, "Failed to read --path: %m");
                return NULL;
        }
        /* "/" becomes "", which matches no file but, by the directory
         * rule, everything under "/". */
        for (size_t n = strlen(trimmed); n > 0 && trimmed[n - 1] == '/'; n--)
                trimmed[n - 1] = '\0';

        if (strcmp(trimmed, ".") == 0 || strcmp(trimmed, "..") == 0 || strncmp(trimmed, "./", 2) == 0 ||
            strncmp(trimmed, "../", 3) == 0) {
                cwd = realpath(".", NULL);
                if (!cwd) {
                        log_error_errno(errno, "Failed to resolve the current directory for --path %s: %m",
                                        pattern);
                        return NULL;
                }
                glob = relative_glob(cwd, trimmed);
        } else if (pattern[0] == '/')
                glob = anchored_glob(trimmed);
        else {
                size_t len = 0;
                FILE *f = open_memstream(&glob, &len);
                if (f) {
                        fputs("*/", f); /* at any depth */
                        write_sqlite_glob(f, trimmed);
                        if (fclose(f) != 0) {
                                free(glob);
                                glob = NULL;
                        }
                }
        }
        if (!glob)
                log_error_errno(ENOMEM, "Failed to read --path: %m");
        return glob;
}

static bool no_color_requested(void) {
        const char *e = getenv("NO_COLOR");
        return e && *e; /* https://no-color.org: set and not empty */
}
int search_args_parse(int argc, char **argv, struct search_args *a) {
        enum {
                OPT_DB = 0x100,
                OPT_JSON,
                OPT_VIMGREP,
                OPT_FILES,
                OPT_PATH,
                OPT_HEADING,
                OPT_TAG,
                OPT_OFFSET,
                OPT_COLOR,
                OPT_SYNC,
                OPT_SYNC_TIMEOUT,
        };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "namespace", required_argument, NULL, 'n' },
                { "path", required_argument, NULL, OPT_PATH },
                { "heading", required_argument, NULL, OPT_HEADING },
                { "tag", required_argument, NULL, OPT_TAG },
                { "limit", required_argument, NULL, 'l' },
                { "offset", required_argument, NULL, OPT_OFFSET },
                { "json", no_argument, NULL, OPT_JSON },
                { "vimgrep", no_argument, NULL, OPT_VIMGREP },
                { "files", no_argument, NULL, OPT_FILES },
                { "color", required_argument, NULL, OPT_COLOR },
                { "colour", required_argument, NULL, OPT_COLOR },
                { "sync", no_argument, NULL, OPT_SYNC },
                { "sync-timeout", required_argument, NULL, OPT_SYNC_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *path_arg = NULL, *color = "auto";
        struct search_query *q = &a->query;
        struct search_output *out = &a->out;
        int opt;

        *a = (struct search_args){
                .query = { .limit = 10 },
                .out = { .format = FORMAT_TEXT },
                .sync_timeout_ms = SYNC_TIMEOUT_MS_DEFAULT,
        };

        const char *env_timeout = getenv("QUIRE_SYNC_TIMEOUT_MS");
        if (env_timeout && *env_timeout && !parse_unsigned(env_timeout, &a->sync_timeout_ms))
                return usage_error("search", "QUIRE_SYNC_TIMEOUT_MS needs a positive number of milliseconds, not '%s'",
                                   env_timeout);

        opterr = 0;
        optind = 0; /* the front parsed these already, in this process's libc */
        while ((opt = getopt_long(argc, argv, ":n:l:h", options, NULL)) >= 0) {
                enum output_format format = FORMAT_TEXT;
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error("search", "--db must not be empty");
                        a->db_arg = optarg;
                        break;
                case 'n':
                        if (!*optarg)
                                return usage_error("search", "--namespace must not be empty");
                        q->namespace = optarg;
                        break;
                case OPT_PATH:
                        if (!*optarg)
                                return usage_error("search", "--path needs a pattern");
                        /* SQLite's GLOB limit (SQLITE_MAX_LIKE_PATTERN_LENGTH),
                         * less room for the cwd the pattern is joined to:
                         * past it SQLite blames the query. */
                        if (strlen(optarg) > 40000)
                                return usage_error("search", "--path pattern longer than 40000 bytes");
                        path_arg = optarg;
                        break;
                case OPT_HEADING:
                        if (!*optarg)
                                return usage_error("search", "--heading needs a text");
                        q->heading = optarg;
                        break;
                case OPT_TAG: {
                        const char *tag = optarg[0] == '#' ? optarg + 1 : optarg;
                        if (!*tag)
                                return usage_error("search", "--tag needs a tag");
                        if (q->n_tags == ELEMENTSOF(a->tags))
                                return usage_error("search", "at most %zu --tag options", ELEMENTSOF(a->tags));
                        a->tags[q->n_tags++] = tag;
                        q->tags = a->tags;
                        break;
                }
                case 'l':
                        if (!parse_unsigned(optarg, &q->limit))
                                return usage_error("search", "--limit needs a positive number (at most %u), not '%s'",
                                                   UINT_MAX, optarg);
                        break;
                case OPT_OFFSET:
                        if (!parse_count(optarg, &q->offset))
                                return usage_error("search", "--offset needs a number (at most %u), not '%s'",
                                                   UINT_MAX, optarg);
                        break;
                case OPT_JSON:
                        format = FORMAT_JSON;
                        break;
                case OPT_VIMGREP:
                        format = FORMAT_VIMGREP;
                        break;
                case OPT_FILES:
                        format = FORMAT_FILES;
                        break;
                case OPT_COLOR:
                        if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 &&
                            strcmp(optarg, "never") != 0)
                                return usage_error("search", "--color needs auto, always or never, not '%s'",
                                                   optarg);
                        color = optarg;
                        break;
                case OPT_SYNC:
                        a->is_sync = true;
                        break;
                case OPT_SYNC_TIMEOUT:
                        if (!parse_unsigned(optarg, &a->sync_timeout_ms))
                                return usage_error("search", "--sync-timeout needs a positive number of milliseconds, "
                                                   "not '%s'", optarg);
                        break;
                case 'h':
                        fputs(search_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("search", opt, argv);
                }
                if (format != FORMAT_TEXT) {
                        if (out->format != FORMAT_TEXT && out->format != format)
                                return usage_error("search", "%s and %s are two output formats; choose one",
                                                   format_options[out->format], format_options[format]);
                        out->format = format;
                }
        }
        if (optind >= argc)
                return usage_error("search", "missing QUERY");
        if (optind + 1 < argc) {
                /* The words as one query, which is what was meant. */
                char words[512];
                size_t len = 0;
                for (int i = optind; i < argc && len < sizeof words; i++)
                        len += (size_t) snprintf(words + len, sizeof words - len, "%s%s", i > optind ? " " : "",
                                                 argv[i]);
                return usage_error("search", "one QUERY expected; quote it: quire search \"%s\"", words);
        }
        q->match = argv[optind];
        if (!q->match[strspn(q->match, " \t\n\r\f\v")])
                return usage_error("search", "empty QUERY");

        if (path_arg) {
                a->path_glob = absolute_path_glob(path_arg);
                if (!a->path_glob)
                        return 1;
                q->path_glob = a->path_glob;
        }

        switch (out->format) {
        case FORMAT_TEXT:
                if (strcmp(color, "auto") == 0)
                        out->use_color = isatty(STDOUT_FILENO) && !no_color_requested();
                else
                        out->use_color = strcmp(color, "always") == 0;
                q->highlight_open = MARK_OPEN;
                q->highlight_close = MARK_CLOSE;
                break;
        case FORMAT_JSON:
                /* The Markdown spelling of emphasis: readable anywhere. */
                q->highlight_open = q->highlight_close = "**";
                break;
        case FORMAT_VIMGREP:
                q->skip_snippet = true;
                q->want_match_position = true;
                break;
        case FORMAT_FILES:
                /* Paths repeat across a file's chunks: the store streams
                 * chunks and print_file() counts distinct paths. */
                q->skip_snippet = true;
                out->files_to_skip = q->offset;
                out->files_left = q->limit;
                q->offset = 0;
                q->limit = 0;
                break;
        }
        return -1;
}

void search_args_done(struct search_args *a) {
        free(a->path_glob);
        path_set_done(&a->out.seen_paths);
        *a = (struct search_args){ 0 };
}
