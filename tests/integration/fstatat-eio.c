/* A test-only LD_PRELOAD library: fstatat() fails with EIO, as on a flaky
 * disk or network filesystem, for every entry named
 * QUIRE_TEST_FSTATAT_EIO_NAME (the name as passed, relative to the
 * directory descriptor). Other calls, and stat(), lstat() and fstat(), go
 * through. Linked into nothing: test_cli.py preloads it into quire. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* No <sys/stat.h>: with _FILE_OFFSET_BITS=64 it renames fstatat to
 * fstatat64, and both symbols are defined here. struct stat stays
 * opaque. */
int fstatat(int dirfd, const char *name, void *st, int flags);
int fstatat64(int dirfd, const char *name, void *st, int flags);

typedef int (*fstatat_fn)(int dirfd, const char *name, void *st, int flags);

static int fail_or_forward(const char *symbol, int dirfd, const char *name, void *st, int flags) {
        const char *target = getenv("QUIRE_TEST_FSTATAT_EIO_NAME");
        fstatat_fn next;

        if (target && name && strcmp(name, target) == 0) {
                errno = EIO;
                return -1;
        }
        next = (fstatat_fn) dlsym(RTLD_NEXT, symbol);
        if (!next) {
                errno = ENOSYS;
                return -1;
        }
        return next(dirfd, name, st, flags);
}

int fstatat(int dirfd, const char *name, void *st, int flags) {
        return fail_or_forward("fstatat", dirfd, name, st, flags);
}

int fstatat64(int dirfd, const char *name, void *st, int flags) {
        return fail_or_forward("fstatat64", dirfd, name, st, flags);
}
