/* The quire executable. It links libc and nothing else: a search that
 * quired answers (search-front.c) is over before a process that loaded
 * libsqlite3 and libcmark would have finished relocating them, a third of
 * a short search's time. Everything else, and a search quired does not
 * answer, runs in the quire-cli module (quire.c): next to the executable
 * in the build tree, in the package's private library directory once
 * installed. (Not by RUNPATH, which ld.so would search for libc first.) */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "macro.h"
#include "search-front.h"

/* quire search, when quired answers it, or when it ends before the
 * database is needed (--help, a usage error): the exit status; -1 when
 * it is the module's to run. */
static int search_in_front(int argc, char **argv) {
        struct search_args a;
        int rc = search_args_parse(argc, argv, &a);

        /* --sync re-indexes stale hits, which takes the database. */
        if (rc < 0 && !a.is_sync) {
                _cleanup_free_ char *db_path = db_path_or_default(a.db_arg);
                if (db_path && !search_via_daemon(db_path, &a, &rc))
                        rc = -1;
        }
        search_args_done(&a);
        return rc;
}

/* The module beside the executable (the build tree), else the installed
 * one. */
static void *load_module(void) {
        char exe[PATH_MAX], beside[PATH_MAX + sizeof QUIRE_CLI_MODULE];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
                exe[n] = '\0';
                char *slash = strrchr(exe, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(beside, sizeof beside, "%s/%s", exe, QUIRE_CLI_MODULE);
                        if (access(beside, F_OK) == 0)
                                return dlopen(beside, RTLD_NOW | RTLD_LOCAL);
                }
        }
        return dlopen(QUIRE_CLI_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
}

static int run_module(int argc, char **argv) {
        void *module = load_module();
        if (!module) {
                log_error("Failed to load the rest of quire: %s", dlerror());
                return 1;
        }
        int (*cli_main)(int, char **);
        /* POSIX: a function pointer may be stored from dlsym()'s void *. */
        *(void **) &cli_main = dlsym(module, QUIRE_CLI_MAIN);
        if (!cli_main) {
                log_error("Failed to find %s in %s: %s", QUIRE_CLI_MAIN, QUIRE_CLI_MODULE, dlerror());
                return 1;
        }
        return cli_main(argc, argv);
}

/* What a command printed must reach stdout (a full disk under
 * `quire search ... > hits`): exit() would flush it and drop the error. */
static int flush_stdout(int rc) {
        int r = fflush(stdout) == 0 ? 0 : errno;
        if (!ferror(stdout))
                return rc;
        log_error_errno(r ? r : EIO, "Failed to write to standard output: %m");
        return rc == 0 ? 1 : rc;
}

int main(int argc, char **argv) {
        log_setup("quire");
        if (argc >= 2 && strcmp(argv[1], "search") == 0) {
                int rc = search_in_front(argc - 1, argv + 1);
                if (rc >= 0)
                        return flush_stdout(rc);
        }
        return flush_stdout(run_module(argc, argv));
}
