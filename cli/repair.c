/* quire repair: rebuild the indexes of a damaged database from its rows
 * (store_repair()), then check the whole file as status --check does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "log.h"
#include "macro.h"
#include "search.h"
#include "store.h"

static const char repair_help[] =
        "Usage: quire repair [OPTIONS]\n"
        "\n"
        "Rebuild what the database derives from its rows: the full-text index,\n"
        "every index of its tables, and the tags, links and CJK index derived\n"
        "from each chunk; then check the file as 'quire status --check' does.\n"
        "Rows, chunk ids and their counters are kept. A quired running on the\n"
        "database waits for the rebuild (seconds on a large index) and goes on.\n"
        "\n"
        "Exit status: 0 when the check then finds the file sound; 1 on failure\n"
        "or when damage remains (a page of a table SQLite cannot read: move\n"
        "the database aside and index the notes again).\n"
        "\n"
        "Options:\n"
        "      --db PATH   database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -h, --help      show this help\n";

int cmd_repair(int argc, char **argv) {
        enum { OPT_DB = 0x100 };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *db_arg = NULL;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error("repair", "--db must not be empty");
                        db_arg = optarg;
                        break;
                case 'h':
                        fputs(repair_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("repair", opt, argv);
                }
        }
        if (optind < argc)
                return usage_error("repair", "unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        if (!db_path)
                return 1;
        /* A missing database is nothing to repair, not one to create. */
        struct store *s = NULL;
        if (store_open(db_path, &(struct store_options){ .flags = STORE_NO_CREATE }, &s) < 0)
                return 1;
        int r = store_repair(s);
        _cleanup_free_ char *first = NULL;
        unsigned n = 0;
        if (r == 0)
                r = store_check_integrity(s, &n, &first);
        store_close(s);
        if (r < 0)
                return 1;
        if (n > 0) {
                log_error("%s is still damaged after its indexes were rebuilt: %u%s problem%s, first: %s (move it "
                          "aside and index the notes again)",
                          db_path, n, n >= 100 ? " or more" : "", n == 1 ? "" : "s", first);
                return 1;
        }
        printf("repaired %s: indexes rebuilt from the rows; integrity: ok\n", db_path);
        return 0;
}
