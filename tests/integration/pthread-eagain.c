/* A test-only LD_PRELOAD library: pthread_create() fails with EAGAIN, as
 * when RLIMIT_NPROC or the cgroup's pids.max (systemd's TasksMax=) is
 * used up. Linked into nothing: test_daemon_lifecycle.py preloads it into
 * quired. */
#include <errno.h>
#include <pthread.h>

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
        (void) thread, (void) attr, (void) start, (void) arg;
        return EAGAIN;
}
