/* The replay driver: feeds files to a fuzz target's LLVMFuzzerTestOneInput,
 * so that every build (gcc, plain or with ASan) runs the seed corpus and
 * every crash input kept as a regression case, without libFuzzer.
 *
 *     fuzz-NAME-replay PATH...    each PATH a file, or a directory whose
 *                                 files (not dot files, not recursively)
 *                                 are run in name order
 *
 * A broken invariant aborts (FUZZ_CHECK), which fails the test; so does a
 * PATH that cannot be read or a run that found no input at all, so that a
 * mistyped corpus path cannot pass by testing nothing. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "helpers.h"
#include "macro.h"

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int replay_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_file(path, &data, &len);
        if (r < 0) {
                fprintf(stderr, "replay: failed to read %s: %s\n", path, strerror(-r));
                return r;
        }
        /* Run from a copy of exactly len bytes, so that ASan sees a read
         * past the input, which read_file()'s spare NUL would hide. */
        _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, len);
        LLVMFuzzerTestOneInput(copy, len);
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Returns how many files ran, or -errno. */
static int replay_dir(const char *dir) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (!d) {
                fprintf(stderr, "replay: failed to open %s: %s\n", dir, strerror(errno));
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                char **p = realloc(names, (n + 1) * sizeof *p);
                if (!p || !(p[n] = strdup(de->d_name))) {
                        names = p ? p : names;
                        r = -ENOMEM;
                        break;
                }
                names = p;
                n++;
        }
        qsort(names, n, sizeof *names, compare_names);

        int n_run = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = replay_file(path);
                n_run++;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r < 0 ? r : n_run;
}

int main(int argc, char **argv) {
        int total = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode))
                        r = replay_dir(argv[i]);
                else
                        r = replay_file(argv[i]) < 0 ? -EIO : 1;
                if (r < 0)
                        return 1;
                printf("replayed %d inputs from %s\n", r, argv[i]);
                total += r;
        }
        if (total == 0) {
                fprintf(stderr, "replay: no input found in %d paths\n", argc - 1);
                return 1;
        }
        printf("%d inputs, no invariant broken\n", total);
        return 0;
}
