/* quire search: BM25-ranked hits, one per chunk, as text for people or
 * JSON lines for programs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "search.h"
#include "util.h"

static const char search_help[] =
        "Usage: quire search [OPTIONS] QUERY\n"
        "\n"
        "Search the index; hits are chunks, best first (BM25).\n"
        "QUERY uses SQLite FTS5 syntax: words, \"exact phrase\", prefix*,\n"
        "AND / OR / NOT, NEAR(a b, 5).\n"
        "\n"
        "Options:\n"
        "      --db PATH         database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -n, --namespace NS    only hits from namespace NS\n"
        "  -l, --limit N         at most N hits (default 10)\n"
        "      --json            one JSON object per hit and line\n"
        "  -h, --help            show this help\n";

struct search_output {
        bool json;
        bool is_tty;
        unsigned n_hits;
};

/* Snippets are single-line in the text format. */
static void print_one_line(const char *s) {
        for (; *s; s++)
                fputc(*s == '\n' || *s == '\t' ? ' ' : *s, stdout);
}

static int print_hit(const struct search_hit *h, void *userdata) {
        struct search_output *out = userdata;

        out->n_hits++;
        if (out->json) {
                fputs("{\"id\":", stdout);
                json_write_string(stdout, h->id);
                fputs(",\"namespace\":", stdout);
                json_write_string(stdout, h->namespace);
                fputs(",\"source_file\":", stdout);
                json_write_string(stdout, h->source_file);
                printf(",\"start_line\":%lld,\"end_line\":%lld,\"heading_hierarchy\":%s,\"score\":%.6f,\"snippet\":",
                       (long long) h->start_line, (long long) h->end_line, h->heading_hierarchy, h->score);
                json_write_string(stdout, h->snippet);
                fputs("}\n", stdout);
                return 0;
        }
        /* A file name may hold a newline: escaped, a hit stays two lines. */
        if (out->is_tty)
                fputs("\033[35m", stdout);
        write_escaped(stdout, h->source_file);
        if (out->is_tty)
                printf("\033[0m:\033[32m%lld-%lld\033[0m", (long long) h->start_line, (long long) h->end_line);
        else
                printf(":%lld-%lld", (long long) h->start_line, (long long) h->end_line);
        if (*h->heading_path)
                printf("  %s", h->heading_path);
        fputs("\n    ", stdout);
        print_one_line(h->snippet);
        fputc('\n', stdout);
        return 0;
}

int cmd_search(int argc, char **argv) {
        enum { OPT_DB = 0x100, OPT_JSON };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "namespace", required_argument, NULL, 'n' },
                { "limit", required_argument, NULL, 'l' },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *db_arg = NULL;
        struct search_query q = { .limit = 10 };
        struct search_output out = { 0 };
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":n:l:h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        db_arg = optarg;
                        break;
                case 'n':
                        q.namespace = optarg;
                        break;
                case 'l':
                        if (!parse_unsigned(optarg, &q.limit))
                                return usage_error("search", "--limit needs a positive number, not '%s'", optarg);
                        break;
                case OPT_JSON:
                        out.json = true;
                        break;
                case 'h':
                        fputs(search_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("search", opt, argv);
                }
        }
        if (optind >= argc)
                return usage_error("search", "missing QUERY");
        if (optind + 1 < argc)
                return usage_error("search", "one QUERY expected; quote it: quire search \"%s %s\"", argv[optind],
                                   argv[optind + 1]);
        q.match = argv[optind];
        if (!*q.match)
                return usage_error("search", "empty QUERY");

        out.is_tty = !out.json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        /* Highlight matched words: bold red on a terminal, **word** (the
         * Markdown spelling) everywhere else. */
        q.highlight_open = out.is_tty ? "\033[1;31m" : "**";
        q.highlight_close = out.is_tty ? "\033[0m" : "**";

        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        if (!db_path)
                return 1;
        struct store *s = NULL;
        int r = store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &s);
        if (r < 0)
                return 1;
        r = store_search(s, &q, print_hit, &out);
        store_close(s);
        if (r == -EINVAL)
                return EXIT_USAGE;
        return r < 0 ? 1 : 0;
}
