/* A test-only LD_PRELOAD library: readdir() fails with EIO, as on a flaky
 * disk or network filesystem, for one directory. QUIRE_TEST_READDIR_EIO_DIR
 * names it (the path /proc/self/fd shows for its descriptor);
 * QUIRE_TEST_READDIR_EIO_AFTER is how many entries ("." and ".." count)
 * it returns first (default 0); QUIRE_TEST_READDIR_EIO_TIMES, if set, how
 * many listings of it fail (later ones read as usual: a passing fault).
 * Every other directory reads as usual.
 * Linked into nothing: test_cli.py preloads it into quire. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No <dirent.h>: with _FILE_OFFSET_BITS=64 it renames readdir to
 * readdir64, and both symbols are defined here. The DIR stays opaque. */
int dirfd(void *dirp);
void *readdir(void *dirp);
void *readdir64(void *dirp);

typedef void *(*readdir_fn)(void *dirp);

/* Entries returned so far from the directory being read, per thread: a
 * walk reads one directory to its end before it opens the next. */
static __thread void *current;
static __thread long n_returned;
/* Listings of the target failed so far, by any thread. */
static _Atomic long n_failed;

static bool is_target(void *dirp) {
        const char *target = getenv("QUIRE_TEST_READDIR_EIO_DIR");
        char link[64], path[PATH_MAX];

        if (!target)
                return false;
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd(dirp));
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n < 0)
                return false;
        path[n] = '\0';
        return strcmp(path, target) == 0;
}

static bool may_fail(void) {
        const char *times = getenv("QUIRE_TEST_READDIR_EIO_TIMES");
        return !times || n_failed++ < atol(times);
}

static void *fail_or_forward(void *dirp, const char *name) {
        readdir_fn next = (readdir_fn) dlsym(RTLD_NEXT, name);
        const char *after = getenv("QUIRE_TEST_READDIR_EIO_AFTER");

        if (!next) {
                errno = ENOSYS;
                return NULL;
        }
        if (dirp != current) {
                current = dirp;
                n_returned = 0;
        }
        if (is_target(dirp) && n_returned >= (after ? atol(after) : 0) && may_fail()) {
                current = NULL;
                errno = EIO;
                return NULL;
        }
        void *de = next(dirp);
        if (de)
                n_returned++;
        else
                current = NULL;
        return de;
}

void *readdir(void *dirp) {
        return fail_or_forward(dirp, "readdir");
}

void *readdir64(void *dirp) {
        return fail_or_forward(dirp, "readdir64");
}
