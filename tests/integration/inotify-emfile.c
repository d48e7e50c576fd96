/* A test-only LD_PRELOAD library: inotify_init() and inotify_init1() fail
 * with EMFILE, as when fs.inotify.max_user_instances is used up by other
 * programs (a common desktop failure: every editor and file manager takes
 * one). Linked into nothing: test_daemon_lifecycle.py preloads it into
 * quired. */
#include <errno.h>

int inotify_init(void);
int inotify_init1(int flags);

int inotify_init(void) {
        errno = EMFILE;
        return -1;
}

int inotify_init1(int flags) {
        (void) flags;
        errno = EMFILE;
        return -1;
}
