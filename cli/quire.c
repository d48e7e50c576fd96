/* quire: index, search and inspect a notes database from the shell.
 * Subcommands live one per file; this one dispatches and keeps the
 * conventions (usage errors exit 2 with one line) in one place. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "store.h"
#include "version.h"

static const char main_help[] =
        "Usage: quire COMMAND [OPTIONS] [ARGS]\n"
        "\n"
        "Keep a folder of Markdown notes indexed for full-text search.\n"
        "\n"
        "Commands:\n"
        "  index PATH...     index (or re-index) notes under each PATH\n"
        "  search QUERY      search the index, best hits first\n"
        "  status            what the index holds\n"
        "  links FILE        the links written in a note, resolved\n"
        "  backlinks FILE    the notes that link to a note\n"
        "\n"
        "Options:\n"
        "  -h, --help        show this help (or 'quire COMMAND --help')\n"
        "  -V, --version     show the version\n"
        "\n"
        "The database is --db PATH, else $QUIRE_DB, else\n"
        "$XDG_DATA_HOME/quire/index.db (~/.local/share/quire/index.db).\n";

int usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fputs("quire: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (cmd)
                fprintf(stderr, " (see 'quire %s --help')\n", cmd);
        else
                fputs(" (see 'quire --help')\n", stderr);
        return EXIT_USAGE;
}

int usage_bad_option(const char *cmd, int opt, char **argv) {
        const char *arg = argv[optind - 1];
        if (opt == ':')
                return usage_error(cmd, "option '%s' needs a value", arg);
        if (optopt && !(arg[0] == '-' && arg[1] == '-'))
                return usage_error(cmd, "unknown option '-%c'", optopt);
        return usage_error(cmd, "unknown option '%s'", arg);
}

char *db_path_or_default(const char *arg) {
        char *p = arg ? strdup(arg) : store_default_path();
        if (!p)
                log_error("Out of memory");
        return p;
}

bool parse_unsigned(const char *s, unsigned *ret) {
        char *end;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > UINT_MAX)
                return false;
        *ret = (unsigned) v;
        return true;
}

int main(int argc, char **argv) {
        /* one_thread: only this thread calls SQLite (store_use_one_thread).
         * Not index, whose pipeline is threads, even if one writes. */
        static const struct {
                const char *name;
                int (*run)(int argc, char **argv);
                bool one_thread;
        } commands[] = {
                { "index", cmd_index, false },
                { "search", cmd_search, true },
                { "status", cmd_status, true },
                { "links", cmd_links, true },
                { "backlinks", cmd_backlinks, true },
        };

        log_setup("quire");
        if (argc < 2)
                return usage_error(NULL, "missing command");
        const char *cmd = argv[1];
        if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
                fputs(main_help, stdout);
                return 0;
        }
        if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
                printf("quire %s\n", QUIRE_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(cmd, commands[i].name) == 0) {
                        if (commands[i].one_thread)
                                (void) store_use_one_thread();
                        return commands[i].run(argc - 1, argv + 1);
                }
        if (cmd[0] == '-')
                return usage_error(NULL, "unknown option '%s'", cmd);
        return usage_error(NULL, "unknown command '%s'", cmd);
}
