/* The conventions every quire command keeps (usage errors exit 2 with one
 * line), and the small parsers they share; no SQLite, so that the quire
 * executable (front.c) has them too. */
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
        bool is_long = arg[0] == '-' && arg[1] == '-';
        if (opt == ':')
                return usage_error(cmd, "option '%s' needs a value", arg);
        if (optopt && !is_long)
                return usage_error(cmd, "unknown option '-%c'", optopt);
        /* glibc sets optopt for a known long option given a value it does
         * not take ("--json=yes"), 0 for an unknown one. */
        if (optopt && strchr(arg, '='))
                return usage_error(cmd, "option '%.*s' takes no value", (int) strcspn(arg, "="), arg);
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

char *daemon_stop_text(long pid, enum process_stop stop) {
        char *text = NULL;
        int n = stop == PROCESS_TRACED
                        ? asprintf(&text, "quired (pid %ld) is held by a debugger and indexes nothing until it lets go",
                                   pid)
                : stop == PROCESS_FROZEN
                        ? asprintf(&text, "quired (pid %ld) is frozen with its cgroup and indexes nothing until "
                                          "it is thawed (systemctl --user thaw quired, docker unpause)",
                                   pid)
                        : asprintf(&text, "quired (pid %ld) is stopped and indexes nothing until continued "
                                          "(kill -CONT %ld)",
                                   pid, pid);
        return n < 0 ? NULL : text;
}
