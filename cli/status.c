/* quire status: what the index holds, and whether the no-duplicates
 * guarantee stands (duplicate groups must be 0). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "log.h"
#include "search.h"
#include "util.h"

static const char status_help[] =
        "Usage: quire status [OPTIONS]\n"
        "\n"
        "Show files, chunks and namespaces in the index, its size and schema\n"
        "version, and the number of duplicate chunk groups (always 0).\n"
        "\n"
        "Options:\n"
        "      --db PATH   database (default: $QUIRE_DB or the XDG data dir)\n"
        "      --json      one JSON object\n"
        "  -h, --help      show this help\n";

static void print_json(const char *path, const struct store_status *st) {
        fputs("{\"database\":", stdout);
        json_write_string(stdout, path);
        printf(",\"schema_version\":%d,\"files\":%lld,\"chunks\":%lld,\"duplicate_groups\":%lld,"
               "\"database_bytes\":%lld,\"wal_bytes\":%lld,\"namespaces\":[",
               st->schema_version, (long long) st->files, (long long) st->chunks, (long long) st->duplicate_groups,
               (long long) st->db_bytes, (long long) st->wal_bytes);
        for (size_t i = 0; i < st->n_namespaces; i++) {
                fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
                json_write_string(stdout, st->namespaces[i].name);
                printf(",\"files\":%lld,\"chunks\":%lld}", (long long) st->namespaces[i].files,
                       (long long) st->namespaces[i].chunks);
        }
        fputs("]}\n", stdout);
}

static void print_text(const char *path, const struct store_status *st) {
        printf("database:         %s\n", path);
        printf("schema version:   %d\n", st->schema_version);
        printf("size:             %.1f MiB (+ %.1f MiB WAL)\n", st->db_bytes / 1048576.0, st->wal_bytes / 1048576.0);
        printf("files:            %lld\n", (long long) st->files);
        printf("chunks:           %lld\n", (long long) st->chunks);
        printf("duplicate groups: %lld\n", (long long) st->duplicate_groups);
        printf("namespaces:       %zu\n", st->n_namespaces);
        for (size_t i = 0; i < st->n_namespaces; i++)
                printf("  %-16s %lld files, %lld chunks\n", st->namespaces[i].name,
                       (long long) st->namespaces[i].files, (long long) st->namespaces[i].chunks);
}

int cmd_status(int argc, char **argv) {
        enum { OPT_DB = 0x100, OPT_JSON };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *db_arg = NULL;
        bool json = false;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        db_arg = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        fputs(status_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("status", opt, argv);
                }
        }
        if (optind < argc)
                return usage_error("status", "unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        if (!db_path)
                return 1;
        struct store *s = NULL;
        if (store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &s) < 0)
                return 1;
        struct store_status st;
        int r = store_get_status(s, &st);
        store_close(s);
        if (r < 0)
                return 1;
        if (json)
                print_json(db_path, &st);
        else
                print_text(db_path, &st);
        store_status_done(&st);
        return 0;
}
