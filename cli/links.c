/* quire links / quire backlinks: the links a note writes, and the notes
 * that link to it, each with its line and the file it resolves to. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "links.h"
#include "log.h"
#include "macro.h"
#include "util.h"

static const char links_help[] =
        "Usage: quire links [OPTIONS] FILE\n"
        "       quire backlinks [OPTIONS] FILE\n"
        "\n"
        "links: the links written in FILE, in order, each with the file it\n"
        "resolves to. backlinks: the links in other notes (and FILE itself)\n"
        "that resolve to FILE (for a FILE not written yet: those that will).\n"
        "Wiki links ([[Note]], [[Note#Heading|alias]], ![[embed]]) resolve by\n"
        "note name, ignoring ASCII case, preferring a note in the linking\n"
        "note's folder, then the shortest path; one starting with ./ or ../\n"
        "by the path it spells from the linking note's folder. Markdown links\n"
        "([text](other.md)) by the path they spell. Web links are not kept.\n"
        "A symlink FILE names the note it points to; asking for the links of\n"
        "a FILE the index does not hold is an error.\n"
        "\n"
        "Options:\n"
        "      --db PATH         database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -n, --namespace NS    only links in namespace NS\n"
        "      --json            one JSON object per link and line\n"
        "  -h, --help            show this help\n";

struct links_output {
        bool json;
        bool is_backlinks;
        unsigned n_links;
};

/* The link as it reads in a note. */
static void print_link_spelling(const struct link_hit *h) {
        const char *hash = h->fragment ? "#" : "", *fragment = h->fragment ? h->fragment : "";

        bool is_markdown = strcmp(h->kind, "markdown") == 0;

        /* Escaped: a note's bytes must not reach the terminal as controls. */
        fputs(is_markdown ? "(" : strcmp(h->kind, "embed") == 0 ? "![[" : "[[", stdout);
        write_escaped(stdout, h->target);
        fputs(hash, stdout);
        write_escaped(stdout, fragment);
        fputs(is_markdown ? ")" : "]]", stdout);
}

static int print_link(const struct link_hit *h, void *userdata) {
        struct links_output *out = userdata;

        out->n_links++;
        if (out->json) {
                fputs("{\"namespace\":", stdout);
                json_write_string(stdout, h->namespace);
                fputs(",\"source_file\":", stdout);
                json_write_string(stdout, h->source_file);
                printf(",\"line\":%lld,\"kind\":", (long long) h->line);
                json_write_string(stdout, h->kind);
                fputs(",\"target\":", stdout);
                json_write_string(stdout, h->target);
                fputs(",\"fragment\":", stdout);
                if (h->fragment)
                        json_write_string(stdout, h->fragment);
                else
                        fputs("null", stdout);
                fputs(",\"resolved\":", stdout);
                if (h->resolved)
                        json_write_string(stdout, h->resolved);
                else
                        fputs("null", stdout);
                fputs("}\n", stdout);
                return 0;
        }
        /* Quoted as quire search quotes them, so that a name holding a
         * newline stays on its line. */
        fputs_field(h->source_file, stdout);
        printf(":%lld  ", (long long) h->line);
        print_link_spelling(h);
        if (!out->is_backlinks) {
                fputs("  -> ", stdout);
                if (h->resolved)
                        fputs_field(h->resolved, stdout);
                else
                        fputs("(not found)", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

/* "a//b/" as "a/b": a path joined as spelled, as the index would name it.
 * In place. */
static void collapse_slashes(char *path) {
        char *o = path;
        for (const char *p = path; *p; p++)
                if (*p != '/' || o == path || o[-1] != '/')
                        *o++ = *p;
        if (o > path + 1 && o[-1] == '/')
                o--;
        *o = '\0';
}

/* The realpath of dir, which may not exist yet (the folder of a note not
 * written yet): its deepest existing folder resolved, the rest joined as
 * spelled, which must then hold no "." or "..". Newly allocated in *ret. */
static int resolve_dir(const char *dir, char **ret) {
        _cleanup_free_ char *head = strdup(dir);
        size_t rest_at = strlen(dir); /* dir + rest_at: the part not resolved */

        if (!head)
                return -ENOMEM;
        for (;;) {
                _cleanup_free_ char *resolved = realpath(head, NULL);
                if (resolved) {
                        const char *rest = dir + rest_at + strspn(dir + rest_at, "/");
                        if (!*rest) {
                                *ret = TAKE_PTR(resolved);
                                return 0;
                        }
                        if (asprintf(ret, "%s/%s", strcmp(resolved, "/") == 0 ? "" : resolved, rest) < 0) {
                                *ret = NULL;
                                return -ENOMEM;
                        }
                        collapse_slashes(*ret);
                        return 0;
                }
                if (errno != ENOENT)
                        return -errno;
                /* One folder up: its last component joins the rest. */
                size_t len = rest_at;
                while (len > 0 && dir[len - 1] == '/')
                        len--;
                size_t cut = len;
                while (cut > 0 && dir[cut - 1] != '/')
                        cut--;
                if (len == cut || (len - cut == 1 && dir[cut] == '.') ||
                    (len - cut == 2 && dir[cut] == '.' && dir[cut + 1] == '.'))
                        return -ENOENT;
                rest_at = cut;
                if (cut == 0)
                        strcpy(head, ".");
                else if (cut == 1)
                        strcpy(head, "/");
                else
                        head[cut - 1] = '\0';
        }
}

/* FILE as the index names it: the realpath of its directory and its name,
 * so a note that is gone (or a link target never written) still has a
 * path to ask about. Newly allocated. */
static int note_path(const char *arg, char **ret) {
        struct stat st;

        *ret = NULL;
        /* A symlink names its note: the walk follows none, so the index
         * knows the note by its target's path. One that leads nowhere
         * (yet) is taken by its own name. */
        if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode) && stat(arg, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                        return log_error_errno(EISDIR, "Failed to look up %s: not a note", arg);
                *ret = realpath(arg, NULL);
                if (!*ret)
                        return log_error_errno(errno, "Failed to resolve %s: %m", arg);
                return 0;
        }
        _cleanup_free_ char *copy1 = strdup(arg), *copy2 = strdup(arg);
        if (!copy1 || !copy2)
                return log_error_errno(ENOMEM, "Out of memory");
        _cleanup_free_ char *dir = NULL;
        int r = resolve_dir(dirname(copy1), &dir);
        if (r < 0)
                return log_error_errno(r, "Failed to resolve %s: %m", arg);
        const char *base = basename(copy2);
        if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
            (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)))
                return log_error_errno(EISDIR, "Failed to look up %s: not a note", arg);
        if (asprintf(ret, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) < 0) {
                *ret = NULL;
                return log_error_errno(ENOMEM, "Out of memory");
        }
        return 0;
}

static int run(int argc, char **argv, bool is_backlinks) {
        const char *cmd = is_backlinks ? "backlinks" : "links";
        enum { OPT_DB = 0x100, OPT_JSON };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "namespace", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct links_output out = { .is_backlinks = is_backlinks };
        const char *db_arg = NULL, *ns = NULL;
        int opt, r;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":n:h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error(cmd, "--db must not be empty");
                        db_arg = optarg;
                        break;
                case 'n':
                        if (!*optarg)
                                return usage_error(cmd, "--namespace must not be empty");
                        ns = optarg;
                        break;
                case OPT_JSON:
                        out.json = true;
                        break;
                case 'h':
                        fputs(links_help, stdout);
                        return 0;
                default:
                        return usage_bad_option(cmd, opt, argv);
                }
        }
        if (optind >= argc)
                return usage_error(cmd, "missing FILE");
        if (optind + 1 < argc)
                return usage_error(cmd, "one FILE expected, got '%s' too", argv[optind + 1]);
        if (!*argv[optind])
                return usage_error(cmd, "FILE must not be empty");

        _cleanup_free_ char *path = NULL;
        if (note_path(argv[optind], &path) < 0)
                return 1;
        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        if (!db_path)
                return 1;
        struct store *s = NULL;
        r = store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &s);
        if (r < 0)
                return 1;
        r = (is_backlinks ? store_links_to : store_links_from)(s, ns, path, print_link, &out);
        /* Backlinks of a note not written yet, or of a file that is no
         * note (an image embedded), are a fair question; the links of a
         * note the index does not hold are a typo (a path outside the
         * roots, another --db), which an empty answer would hide. */
        int is_indexed = r == 0 && !is_backlinks && out.n_links == 0 ? store_note_is_indexed(s, ns, path) : 1;
        store_close(s);
        if (r < 0 || is_indexed < 0)
                return 1;
        if (is_indexed == 0) {
                struct stat st;
                log_error("Failed to look up %s: %s", argv[optind],
                          lstat(path, &st) < 0 ? "no such note on disk, nor in the index"
                                               : "not in the index (quire index it, or see --db)");
                return 1;
        }
        return 0;
}

int cmd_links(int argc, char **argv) {
        return run(argc, argv, false);
}

int cmd_backlinks(int argc, char **argv) {
        return run(argc, argv, true);
}
