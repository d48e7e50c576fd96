/* See daemon-state.h. The flock(2) on DB.daemon is the truth about whether
 * a daemon runs; the file's text (pid=, state=, heartbeat=, queue= lines)
 * only says what that daemon last reported. Plain POSIX: the CLI and the
 * daemon both link this. Errors are returned, not logged: the caller
 * knows which database it was about (and the daemon updates every second,
 * so a full disk must not become a line a second). */
#include "daemon-state.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "util.h"

/* Room for every line we write, with a wide margin; a file larger than
 * this is not ours. */
#define STATE_MAX 1024

/* A status reader's LOCK_SH lives for two syscalls, but a daemon starting
 * at that moment sees EWOULDBLOCK: try a little longer before deciding
 * another daemon holds the file. */
#define LOCK_TRIES 20
#define LOCK_RETRY_NSEC (10 * 1000 * 1000)

struct daemon_state_file {
        int fd;
        char *path;
};

static void sleep_nsec(long nsec) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = nsec };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* DB.daemon, with the database path resolved when it exists, so that
 * "--db link.db" and "--db target.db" name the same state file. */
static char *state_path_new(const char *db_path) {
        _cleanup_free_ char *resolved = realpath(db_path, NULL);
        char *p;

        if (asprintf(&p, "%s.daemon", resolved ? resolved : db_path) < 0)
                return NULL;
        return p;
}

/* Read the whole (small) file from offset 0, without the lock. */
static ssize_t read_all(int fd, char *buf, size_t size) {
        size_t got = 0;

        while (got < size - 1) {
                ssize_t n = pread(fd, buf + got, size - 1 - got, (off_t) got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = '\0';
        return (ssize_t) got;
}

/* Parse the key=value lines; unknown keys are skipped (a newer daemon may
 * write more). -EBADMSG unless pid, state and heartbeat are all there and
 * look right: a torn read (the daemon rewriting as we read) fails here. */
static int parse_state(const char *text, struct daemon_state_info *ret) {
        struct daemon_state_info info = { 0 };
        bool has_pid = false, has_state = false, has_heartbeat = false;

        for (const char *line = text; *line;) {
                const char *end = strchr(line, '\n');
                if (!end) /* the last line is always newline-terminated */
                        return -EBADMSG;
                const char *eq = memchr(line, '=', (size_t) (end - line));
                if (!eq)
                        return -EBADMSG;
                size_t key_len = (size_t) (eq - line), value_len = (size_t) (end - eq - 1);
                const char *value = eq + 1;
                char num[32];

                if (key_len == 3 && memcmp(line, "pid", 3) == 0) {
                        char *e;
                        if (value_len == 0 || value_len >= sizeof num)
                                return -EBADMSG;
                        memcpy(num, value, value_len);
                        num[value_len] = '\0';
                        errno = 0;
                        long pid = strtol(num, &e, 10);
                        if (errno || *e || pid <= 0)
                                return -EBADMSG;
                        info.pid = pid;
                        has_pid = true;
                } else if (key_len == 5 && memcmp(line, "state", 5) == 0) {
                        if (value_len == 0 || value_len >= sizeof info.state)
                                return -EBADMSG;
                        memcpy(info.state, value, value_len);
                        info.state[value_len] = '\0';
                        has_state = true;
                } else if (key_len == 9 && memcmp(line, "heartbeat", 9) == 0) {
                        if (value_len != UTC_TIMESTAMP_LEN - 1 || value[value_len - 1] != 'Z')
                                return -EBADMSG;
                        memcpy(info.heartbeat, value, value_len);
                        info.heartbeat[value_len] = '\0';
                        has_heartbeat = true;
                } else if (key_len == 5 && memcmp(line, "queue", 5) == 0) {
                        char *e;
                        if (value_len == 0 || value_len >= sizeof num)
                                return -EBADMSG;
                        memcpy(num, value, value_len);
                        num[value_len] = '\0';
                        errno = 0;
                        unsigned long long q = strtoull(num, &e, 10);
                        if (errno || *e || num[0] == '-')
                                return -EBADMSG;
                        info.queue_length = (size_t) q;
                }
                line = end + 1;
        }
        if (!has_pid || !has_state || !has_heartbeat)
                return -EBADMSG;
        *ret = info;
        return 0;
}

/* Read and parse; once more after a short pause if the first read caught
 * the daemon between its pwrite() and ftruncate(), or mid-write. */
static int read_state(int fd, struct daemon_state_info *ret) {
        char buf[STATE_MAX];
        int r = -EBADMSG;

        for (int attempt = 0; attempt < 2; attempt++) {
                if (attempt > 0)
                        sleep_nsec(LOCK_RETRY_NSEC);
                ssize_t n = read_all(fd, buf, sizeof buf);
                if (n < 0)
                        return (int) n;
                r = parse_state(buf, ret);
                if (r == 0)
                        return 0;
        }
        return r;
}

/* Whether fd is still the file at path: a daemon that stopped between our
 * open() and our flock() has unlinked it, and a lock on an unlinked inode
 * guards nothing. */
static int is_still_linked(int fd, const char *path) {
        struct stat a, b;

        if (fstat(fd, &a) < 0)
                return -errno;
        if (stat(path, &b) < 0)
                return errno == ENOENT ? 0 : -errno;
        return a.st_nlink > 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int daemon_state_open(const char *db_path, struct daemon_state_file **ret, long *other_pid) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        assert(db_path);
        assert(ret);
        if (other_pid)
                *other_pid = 0;

        path = state_path_new(db_path);
        if (!path)
                return -ENOMEM;

        for (;;) {
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0)
                        return -errno;

                int tries = 0;
                while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && (errno == EWOULDBLOCK || errno == EINTR) &&
                       ++tries < LOCK_TRIES)
                        sleep_nsec(LOCK_RETRY_NSEC);
                if (r < 0 && errno == EWOULDBLOCK) {
                        struct daemon_state_info info;
                        if (other_pid && read_state(fd, &info) == 0)
                                *other_pid = info.pid;
                        return -EBUSY;
                }
                if (r < 0)
                        return -errno;

                r = is_still_linked(fd, path);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                /* Lost a race with a daemon that stopped: start over on the
                 * new file (or a fresh one). */
                close(TAKE_FD(fd));
        }

        /* An old file may have been made by hand or another umask. */
        (void) fchmod(fd, 0600);

        struct daemon_state_file *f = malloc(sizeof *f);
        if (!f)
                return -ENOMEM;
        f->fd = TAKE_FD(fd);
        f->path = TAKE_PTR(path);

        /* Whatever a crashed predecessor left must not be read as ours:
         * say who holds the lock at once. */
        r = daemon_state_update(f, "starting", 0);
        if (r < 0) {
                daemon_state_close(f);
                return r;
        }
        *ret = f;
        return 0;
}

int daemon_state_update(struct daemon_state_file *f, const char *state, size_t queue_length) {
        char heartbeat[UTC_TIMESTAMP_LEN];
        char buf[STATE_MAX];
        char safe_state[sizeof ((struct daemon_state_info *) NULL)->state];
        size_t i;

        assert(f);
        assert(state);

        /* One line per key: no newline may come in with the state. */
        for (i = 0; state[i] && i < sizeof safe_state - 1; i++)
                safe_state[i] = (unsigned char) state[i] < 0x20 || state[i] == '=' ? '_' : state[i];
        safe_state[i] = '\0';
        if (i == 0)
                return -EINVAL;

        utc_timestamp_now(heartbeat);
        int n = snprintf(buf, sizeof buf, "pid=%ld\nstate=%s\nheartbeat=%s\nqueue=%zu\n", (long) getpid(),
                         safe_state, heartbeat, queue_length);
        if (n < 0 || (size_t) n >= sizeof buf)
                return -EINVAL;

        /* One pwrite() over the old text, then cut what is left of it: a
         * reader never finds the file empty, and a read that overlaps the
         * write fails to parse and is repeated (read_state). */
        ssize_t w;
        do
                w = pwrite(f->fd, buf, (size_t) n, 0);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        if (w != n)
                return -EIO;
        if (ftruncate(f->fd, (off_t) n) < 0)
                return -errno;
        return 0;
}

void daemon_state_close(struct daemon_state_file *f) {
        if (!f)
                return;
        /* Unlink while still holding the lock, then unlock by closing. The
         * other order has a window in which a new daemon locks the old
         * file and writes its own state, and our unlink then removes the
         * new daemon's file: it would run unseen by 'quire status', and a
         * third daemon could start beside it. This way the path names
         * either a file a live daemon holds or a stale unlocked one; a
         * daemon that opened the old inode before our unlink notices it
         * is no longer linked (is_still_linked) and opens afresh. */
        if (unlink(f->path) < 0 && errno != ENOENT)
                log_debug_errno(-errno, "Failed to remove %s: %m", f->path);
        close(f->fd);
        free(f->path);
        free(f);
}

int daemon_state_read(const char *db_path, struct daemon_state_info *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        assert(db_path);
        assert(ret);

        path = state_path_new(db_path);
        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;

        /* A shared lock we can take means no daemon holds the exclusive
         * one: the file is a crashed daemon's leftover. It stays (a reader
         * cannot remove it safely); the next daemon takes it over. */
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                (void) flock(fd, LOCK_UN);
                return 0;
        }
        if (errno != EWOULDBLOCK)
                return -errno;

        r = read_state(fd, ret);
        if (r < 0) {
                /* Held, but not (yet) readable: a daemon is there, between
                 * its lock and its first write. */
                *ret = (struct daemon_state_info){ .pid = 0 };
                snprintf(ret->state, sizeof ret->state, "starting");
        }
        return 1;
}
