/* quire: index, search and inspect a notes database from the shell. This
 * is the part that opens the database, a module the quire executable
 * (front.c) loads when quired cannot answer for it; subcommands live one
 * per file, this one dispatches. */
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
        "  repair            rebuild a damaged database's indexes from its rows\n"
        "\n"
        "Options:\n"
        "  -h, --help        show this help (or 'quire COMMAND --help')\n"
        "  -V, --version     show the version\n"
        "\n"
        "The database is --db PATH, else $QUIRE_DB, else\n"
        "$XDG_DATA_HOME/quire/index.db (~/.local/share/quire/index.db).\n";

int quire_cli_main(int argc, char **argv) {
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
                { "repair", cmd_repair, true },
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
                        else
                                (void) store_use_threads();
                        return commands[i].run(argc - 1, argv + 1);
                }
        if (cmd[0] == '-')
                return usage_error(NULL, "unknown option '%s'", cmd);
        return usage_error(NULL, "unknown command '%s'", cmd);
}
