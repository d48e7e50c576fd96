/* See daemon-state.h. The flock(2) on DB.daemon is the truth about whether
 * a daemon runs; the file's text (key=value lines: pid, state, heartbeat,
 * queue, then the index state, the roots and the acknowledged sync
 * cookies, and a checksum line last) only says what that daemon last
 * reported. Plain POSIX: the CLI and the
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

/* Room for every line we write (a few roots of up to PATH_MAX each, the
 * cookie ring), with a margin; a file larger than this is not ours. */
#define STATE_MAX (64 * 1024)

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

bool daemon_cookie_name_is_valid(const char *name) {
        size_t n = strlen(name), prefix = strlen(DAEMON_COOKIE_PREFIX);

        if (n <= prefix || n >= DAEMON_COOKIE_NAME_MAX || strncmp(name, DAEMON_COOKIE_PREFIX, prefix) != 0)
                return false;
        for (const char *c = name + prefix; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '-'))
                        return false;
        return true;
}

void daemon_state_info_done(struct daemon_state_info *info) {
        strv_free(info->roots, info->n_roots);
        strv_free(info->missing_roots, info->n_missing_roots);
        strv_free(info->dropped_roots, info->n_dropped_roots);
        strv_free(info->unwatched_roots, info->n_unwatched_roots);
        strv_free(info->cookies, info->n_cookies);
        info->roots = info->missing_roots = info->dropped_roots = info->unwatched_roots = info->cookies = NULL;
        info->n_roots = info->n_missing_roots = info->n_dropped_roots = info->n_unwatched_roots = info->n_cookies = 0;
}

static bool parse_number(const char *value, size_t value_len, unsigned long long *ret) {
        char num[32], *e;

        if (value_len == 0 || value_len >= sizeof num || value[0] < '0' || value[0] > '9')
                return false;
        memcpy(num, value, value_len);
        num[value_len] = '\0';
        errno = 0;
        *ret = strtoull(num, &e, 10);
        return errno == 0 && *e == '\0';
}

static bool parse_timestamp(const char *value, size_t value_len, char out[32]) {
        if (value_len != UTC_TIMESTAMP_LEN - 1 || value[value_len - 1] != 'Z')
                return false;
        memcpy(out, value, value_len);
        out[value_len] = '\0';
        return true;
}

/* A root's path with the two escapes daemon_state_update() writes: "\\"
 * and "\n" (a path may hold a newline; a line may not). */
static char *unescape_path(const char *value, size_t value_len) {
        char *p = malloc(value_len + 1), *o = p;

        if (!p)
                return NULL;
        for (size_t i = 0; i < value_len; i++) {
                if (value[i] == '\\' && i + 1 < value_len) {
                        i++;
                        *o++ = value[i] == 'n' ? '\n' : value[i];
                } else
                        *o++ = value[i];
        }
        *o = '\0';
        return p;
}

/* Append the escaped path value to the list: -EBADMSG when it is empty. */
static int push_path(char ***list, size_t *n, const char *value, size_t value_len) {
        if (value_len == 0)
                return -EBADMSG;
        return strv_push(list, n, unescape_path(value, value_len));
}

/* Parse the key=value lines; unknown keys are skipped (a newer daemon may
 * write more). -EBADMSG unless pid, state and heartbeat are all there and
 * look right, and the checksum line (when there is one, it is the last)
 * matches: a torn read (the daemon rewriting as we read) fails here. */
static int parse_state(const char *text, struct daemon_state_info *ret) {
        _cleanup_(daemon_state_info_done) struct daemon_state_info info = { 0 };
        bool has_pid = false, has_state = false, has_heartbeat = false;
        int r;

        for (const char *line = text; *line;) {
                const char *end = strchr(line, '\n');
                if (!end) /* the last line is always newline-terminated */
                        return -EBADMSG;
                const char *eq = memchr(line, '=', (size_t) (end - line));
                if (!eq)
                        return -EBADMSG;
                size_t key_len = (size_t) (eq - line), value_len = (size_t) (end - eq - 1);
                const char *value = eq + 1;
                unsigned long long num;

                r = 0; /* the path and cookie lists set it */
#define KEY_IS(k) (key_len == strlen(k) && memcmp(line, k, key_len) == 0)
                if (KEY_IS("pid")) {
                        if (!parse_number(value, value_len, &num) || num == 0 || num > LONG_MAX)
                                return -EBADMSG;
                        info.pid = (long) num;
                        has_pid = true;
                } else if (KEY_IS("state")) {
                        if (value_len == 0 || value_len >= sizeof info.state)
                                return -EBADMSG;
                        memcpy(info.state, value, value_len);
                        info.state[value_len] = '\0';
                        has_state = true;
                } else if (KEY_IS("heartbeat")) {
                        if (!parse_timestamp(value, value_len, info.heartbeat))
                                return -EBADMSG;
                        has_heartbeat = true;
                } else if (KEY_IS("queue")) {
                        if (!parse_number(value, value_len, &num))
                                return -EBADMSG;
                        info.queue_length = (size_t) num;
                } else if (KEY_IS("settling")) {
                        if (!parse_number(value, value_len, &num))
                                return -EBADMSG;
                        info.n_settling = (size_t) num;
                        info.has_index_state = true;
                } else if (KEY_IS("oldest_pending")) {
                        if (!parse_timestamp(value, value_len, info.oldest_pending))
                                return -EBADMSG;
                } else if (KEY_IS("lag_threshold_ms")) {
                        if (!parse_number(value, value_len, &num) || num > UINT_MAX)
                                return -EBADMSG;
                        info.lag_threshold_ms = (unsigned) num;
                } else if (KEY_IS("watched")) {
                        if (!parse_number(value, value_len, &num))
                                return -EBADMSG;
                        info.n_watched = (size_t) num;
                } else if (KEY_IS("unwatched")) {
                        if (!parse_number(value, value_len, &num))
                                return -EBADMSG;
                        info.n_unwatched = (size_t) num;
                } else if (KEY_IS("overflows")) {
                        if (!parse_number(value, value_len, &num))
                                return -EBADMSG;
                        info.n_overflows = num;
                } else if (KEY_IS("last_reconcile")) {
                        if (!parse_timestamp(value, value_len, info.last_reconcile))
                                return -EBADMSG;
                } else if (KEY_IS("failing")) {
                        if (!parse_number(value, value_len, &num) || num == 0 || num > INT_MAX)
                                return -EBADMSG;
                        info.failing_error = -(int) num;
                } else if (KEY_IS("failing_since")) {
                        if (!parse_timestamp(value, value_len, info.failing_since))
                                return -EBADMSG;
                } else if (KEY_IS("retry_s")) {
                        if (!parse_number(value, value_len, &num) || num > UINT_MAX)
                                return -EBADMSG;
                        info.retry_s = (unsigned) num;
                } else if (KEY_IS("root")) {
                        r = push_path(&info.roots, &info.n_roots, value, value_len);
                } else if (KEY_IS("missing_root")) {
                        r = push_path(&info.missing_roots, &info.n_missing_roots, value, value_len);
                } else if (KEY_IS("unwatched_root")) {
                        r = push_path(&info.unwatched_roots, &info.n_unwatched_roots, value, value_len);
                } else if (KEY_IS("dropped_root")) {
                        r = push_path(&info.dropped_roots, &info.n_dropped_roots, value, value_len);
                } else if (KEY_IS("cookie")) {
                        r = strv_push(&info.cookies, &info.n_cookies, strndup(value, value_len));
                } else if (KEY_IS("check")) {
                        char expected[17];
                        snprintf(expected, sizeof expected, "%016" PRIx64, fnv1a64(text, (size_t) (line - text)));
                        if (value_len != 16 || memcmp(value, expected, 16) != 0 || end[1] != '\0')
                                return -EBADMSG;
                }
#undef KEY_IS
                if (r < 0)
                        return r;
                line = end + 1;
        }
        if (!has_pid || !has_state || !has_heartbeat)
                return -EBADMSG;
        *ret = info;
        info = (struct daemon_state_info){ 0 };
        return 0;
}

/* Read and parse; once more after a short pause if the first read caught
 * the daemon between its pwrite() and ftruncate(), or mid-write. */
static int read_state(int fd, struct daemon_state_info *ret) {
        _cleanup_free_ char *buf = malloc(STATE_MAX);
        int r = -EBADMSG;

        if (!buf)
                return -ENOMEM;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (attempt > 0)
                        sleep_nsec(LOCK_RETRY_NSEC);
                ssize_t n = read_all(fd, buf, STATE_MAX);
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

/* Open (or create) path and lock it: the descriptor, or -EBUSY (with the
 * holder's pid in *other_pid when it wrote one), -EBADFD, -errno. */
static int open_locked(const char *path, long *other_pid) {
        _cleanup_close_ int fd = -1;
        int r;

        for (;;) {
                /* O_NONBLOCK: a FIFO put there must not have open() wait
                 * (fifo(7)); refused below, untouched and unlocked. */
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
                if (fd < 0)
                        return -errno;
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return -EBADFD;

                int tries = 0;
                while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && (errno == EWOULDBLOCK || errno == EINTR) &&
                       ++tries < LOCK_TRIES)
                        sleep_nsec(LOCK_RETRY_NSEC);
                if (r < 0 && errno == EWOULDBLOCK) {
                        _cleanup_(daemon_state_info_done) struct daemon_state_info info = { 0 };
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
        return TAKE_FD(fd);
}

int daemon_state_open(const char *db_path, struct daemon_state_file **ret, long *other_pid) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        assert(db_path);
        assert(ret);
        if (other_pid)
                *other_pid = 0;

        path = state_path_new(db_path);
        if (!path)
                return -ENOMEM;
        fd = open_locked(path, other_pid);
        if (fd < 0)
                return fd;

        struct daemon_state_file *f = malloc(sizeof *f);
        if (!f)
                return -ENOMEM;
        f->fd = TAKE_FD(fd);
        f->path = TAKE_PTR(path);

        /* Whatever a crashed predecessor left must not be read as ours:
         * say who holds the lock at once. */
        int r = daemon_state_update(f, &(struct daemon_state){ .state = "starting" });
        if (r < 0) {
                daemon_state_close(f);
                return r;
        }
        *ret = f;
        return 0;
}

static void write_path_escaped(FILE *f, const char *path) {
        for (const char *c = path; *c; c++)
                if (*c == '\\')
                        fputs("\\\\", f);
                else if (*c == '\n')
                        fputs("\\n", f);
                else
                        fputc(*c, f);
}

/* key=path, one line per path. */
static void write_path_lines(FILE *f, const char *key, const char *const *paths, size_t n) {
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s=", key);
                write_path_escaped(f, paths[i]);
                fputc('\n', f);
        }
}

int daemon_state_update(struct daemon_state_file *f, const struct daemon_state *st) {
        char heartbeat[UTC_TIMESTAMP_LEN], stamp[UTC_TIMESTAMP_LEN];
        char safe_state[sizeof ((struct daemon_state_info *) NULL)->state];
        _cleanup_free_ char *buf = NULL;
        size_t i, len = 0;

        assert(f);
        assert(st);
        assert(st->state);

        /* One line per key: no newline may come in with the state. */
        for (i = 0; st->state[i] && i < sizeof safe_state - 1; i++)
                safe_state[i] = (unsigned char) st->state[i] < 0x20 || st->state[i] == '=' ? '_' : st->state[i];
        safe_state[i] = '\0';
        if (i == 0)
                return -EINVAL;

        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return -ENOMEM;
        utc_timestamp_now(heartbeat);
        fprintf(out, "pid=%ld\nstate=%s\nheartbeat=%s\nqueue=%zu\nsettling=%zu\n", (long) getpid(), safe_state,
                heartbeat, st->queue_length, st->n_settling);
        if (st->oldest_pending_usec) {
                utc_timestamp_at(st->oldest_pending_usec, stamp);
                fprintf(out, "oldest_pending=%s\n", stamp);
        }
        fprintf(out, "lag_threshold_ms=%u\nwatched=%zu\nunwatched=%zu\noverflows=%" PRIu64 "\n",
                st->lag_threshold_ms, st->n_watched, st->n_unwatched, st->n_overflows);
        if (st->last_reconcile_usec) {
                utc_timestamp_at(st->last_reconcile_usec, stamp);
                fprintf(out, "last_reconcile=%s\n", stamp);
        }
        if (st->failing_error < 0 && st->failing_since_usec) {
                utc_timestamp_at(st->failing_since_usec, stamp);
                fprintf(out, "failing=%d\nfailing_since=%s\nretry_s=%u\n", -st->failing_error, stamp, st->retry_s);
        }
        write_path_lines(out, "root", st->roots, st->n_roots);
        write_path_lines(out, "unwatched_root", st->unwatched_roots, st->n_unwatched_roots);
        write_path_lines(out, "missing_root", st->missing_roots, st->n_missing_roots);
        write_path_lines(out, "dropped_root", st->dropped_roots, st->n_dropped_roots);
        for (i = 0; i < st->n_cookies; i++)
                if (daemon_cookie_name_is_valid(st->cookies[i]))
                        fprintf(out, "cookie=%s\n", st->cookies[i]);
        if (fflush(out) != 0) {
                fclose(out);
                return -ENOMEM;
        }
        /* Last, over everything before it: a read that mixes two writes
         * (see below) fails this check. */
        fprintf(out, "check=%016" PRIx64 "\n", fnv1a64(buf, len));
        if (fclose(out) != 0)
                return -ENOMEM;
        if (len >= STATE_MAX)
                return -E2BIG;

        /* One pwrite() over the old text, then cut what is left of it: a
         * reader never finds the file empty, and a read that overlaps the
         * write fails to parse (or to match the checksum) and is repeated
         * (read_state). */
        ssize_t w;
        do
                w = pwrite(f->fd, buf, len, 0);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        if ((size_t) w != len)
                return -EIO;
        if (ftruncate(f->fd, (off_t) len) < 0)
                return -errno;
        return 0;
}

int daemon_state_relink(struct daemon_state_file *f, long *other_pid) {
        assert(f);
        if (other_pid)
                *other_pid = 0;
        int r = is_still_linked(f->fd, f->path);
        if (r != 0)
                return r < 0 ? r : 0;
        int fd = open_locked(f->path, other_pid);
        if (fd < 0)
                return fd;
        /* The old inode is unlinked: nothing to remove, only to let go. */
        close(f->fd);
        f->fd = fd;
        return 1;
}

const char *daemon_state_path(const struct daemon_state_file *f) {
        return f->path;
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
         * is no longer linked (is_still_linked) and opens afresh. Only
         * while the path still names our file: removed under us and made
         * again by another daemon (daemon_state_relink() said so), it is
         * that daemon's now. */
        if (is_still_linked(f->fd, f->path) > 0 && unlink(f->path) < 0 && errno != ENOENT)
                log_debug_errno(-errno, "Failed to remove %s: %m", f->path);
        close(f->fd);
        free(f->path);
        free(f);
}

int daemon_state_read(const char *db_path, struct daemon_state_info *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        assert(db_path);
        assert(ret);

        *ret = (struct daemon_state_info){ 0 };
        path = state_path_new(db_path);
        if (!path)
                return -ENOMEM;
        /* O_NONBLOCK: a FIFO put there would have open() wait for a writer
         * (fifo(7)). It changes nothing for a regular file (open(2)). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;

        /* A shared lock we can take means no daemon holds the exclusive
         * one: the file is a crashed daemon's leftover. It stays (a reader
         * cannot remove it safely); the next daemon takes it over. */
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                (void) flock(fd, LOCK_UN);
                return 0;
        }
        if (errno != EWOULDBLOCK)
                return -errno;

        /* The lock decides, whatever the file is; only a regular file can
         * hold what a daemon wrote, and anything else reads as garbage. */
        r = S_ISREG(st.st_mode) ? read_state(fd, ret) : -EBADMSG;
        if (r < 0) {
                /* Held, but not (yet) readable: a daemon is there, between
                 * its lock and its first write. */
                *ret = (struct daemon_state_info){ .pid = 0 };
                snprintf(ret->state, sizeof ret->state, "starting");
        }
        return 1;
}
