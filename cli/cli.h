/* The quire command: one file per subcommand, this header for what they
 * share. Exit codes: 0 success, 1 failure, 2 usage error. */
#pragma once

#include <stdbool.h>

#include "util.h"

#define EXIT_USAGE 2

/* The whole quire command, in process (quire.c): what the quire-cli
 * module exports for the executable to call. */
#define QUIRE_CLI_MODULE "quire-cli.so"
#define QUIRE_CLI_MAIN "quire_cli_main"
int quire_cli_main(int argc, char **argv) __attribute__((visibility("default")));

int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_links(int argc, char **argv);
int cmd_backlinks(int argc, char **argv);
int cmd_repair(int argc, char **argv);

/* "quire: <message> (see 'quire <cmd> --help')" on stderr; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report getopt's complaint about argv[optind - 1] as a usage error. */
int usage_bad_option(const char *cmd, int opt, char **argv);

/* --db if given, else the XDG default (QUIRE_DB first). Newly allocated. */
char *db_path_or_default(const char *arg);

/* quire search --sync (sync.c): make the index current before searching.
 * With a quired on db_path: wait (at most timeout_ms) until it has
 * committed every change made before this call; without one: sync the
 * roots the database records. 0, or -errno after one line on stderr. */
int search_sync_index(const char *db_path, unsigned timeout_ms);

/* What a quired that is stopped (stop: not PROCESS_NOT_STOPPED) does not
 * do, and what continues it: "quired (pid N) is stopped and ...". NULL on
 * ENOMEM. */
char *daemon_stop_text(long pid, enum process_stop stop);

/* Parse a positive integer option value; false if it is not one. */
bool parse_unsigned(const char *s, unsigned *ret);
