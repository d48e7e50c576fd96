/* The daemon state file next to the database: how `quire status` tells
 * whether a quired runs on a database, its pid, state and last heartbeat,
 * whether its index is current, and how `quire search --sync` learns the
 * daemon's roots and sees its sync cookies acknowledged. No libuv or
 * libsystemd here: the CLI reads it too. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state file next to the database (DB + ".daemon"), held under an
 * exclusive flock(2) for as long as the daemon runs, so a reader that can
 * take a shared lock knows no daemon is there, whatever a stale file says. */
struct daemon_state_file;

/* The prefix of a sync cookie's name (`quire search --sync`): a hidden
 * file, so never indexed, created by the CLI at the top of each root. */
#define DAEMON_COOKIE_PREFIX ".quire-cookie-"
/* Room for the prefix, a pid, a dash and 16 hex digits. */
#define DAEMON_COOKIE_NAME_MAX 64

/* Whether name (a file name, no '/') is one a CLI makes for a sync cookie. */
bool daemon_cookie_name_is_valid(const char *name);

/* What a daemon reports. */
struct daemon_state {
        const char *state; /* one word: starting, reconciling, watching, ... */
        size_t queue_length; /* operations waiting for the indexer */
        size_t n_settling;   /* changed paths waiting out the settle time */
        /* CLOCK_REALTIME µs at which the oldest change that is not
         * committed yet was seen; 0 when none waits. */
        uint64_t oldest_pending_usec;
        unsigned lag_threshold_ms; /* older than this: the index lags */
        size_t n_watched, n_unwatched; /* directories */
        uint64_t n_overflows;          /* event queue overflows recovered from */
        uint64_t last_reconcile_usec;  /* CLOCK_REALTIME µs; 0: none finished yet */
        const char *const *roots;      /* realpaths of the roots present */
        size_t n_roots;
        /* Those of them that are not watched themselves (the watch
         * limit): a sync cookie put there would never be seen. */
        const char *const *unwatched_roots;
        size_t n_unwatched_roots;
        /* Configured roots that are not there (missing at start, gone,
         * unmounted): as configured; their notes' fate is docs/ROOTS.md's. */
        const char *const *missing_roots;
        size_t n_missing_roots;
        /* Those of them whose notes left the index (deleted or moved away
         * while the daemon watched): the others keep theirs. */
        const char *const *dropped_roots;
        size_t n_dropped_roots;
        const char *const *cookies; /* sync cookies acknowledged lately */
        size_t n_cookies;
        /* While indexing fails and is retried: the error (a negative
         * errno) and since when (CLOCK_REALTIME µs); 0 when it works. */
        int failing_error;
        uint64_t failing_since_usec;
        unsigned retry_s; /* the wait before the next try */
};

/* Create and lock; -EBADFD when something other than a regular file is
 * there (left as it is), -EBUSY (with the running daemon's pid in *other_pid)
 * when another daemon holds it. */
int daemon_state_open(const char *db_path, struct daemon_state_file **ret, long *other_pid);
/* Rewrite the file: pid, heartbeat (UTC, now) and st. */
int daemon_state_update(struct daemon_state_file *f, const struct daemon_state *st);
/* When the file was removed (or replaced) under the daemon (`rm -f DB*`
 * to start afresh): create and lock it again, so that `quire status`
 * sees the daemon and a second one is still refused. 0 when it is still
 * there, 1 when made again (write the state next), -EBUSY (pid in
 * *other_pid) when another daemon holds the new one, or -errno. */
int daemon_state_relink(struct daemon_state_file *f, long *other_pid);
/* The file's path (DB + ".daemon"). */
const char *daemon_state_path(const struct daemon_state_file *f);
/* Unlock, remove the file, free. Safe on NULL. */
void daemon_state_close(struct daemon_state_file *f);

/* For `quire status` and `quire search --sync`: whether a daemon holds the
 * state file of db_path, and what it last wrote. Returns 1 (running,
 * fields filled; pid 0 and state "starting" while the holder has not
 * written yet), 0 (not running, including a stale file nobody holds), or
 * -errno. Free with daemon_state_info_done() whatever it returned. */
struct daemon_state_info {
        long pid;
        char state[32];
        char heartbeat[32]; /* 'YYYY-MM-DDTHH:MM:SS.sssZ' */
        size_t queue_length;
        /* The rest only from a daemon that writes them (has_index_state). */
        bool has_index_state;
        size_t n_settling;
        char oldest_pending[32]; /* "" when nothing waits */
        unsigned lag_threshold_ms;
        size_t n_watched, n_unwatched;
        uint64_t n_overflows;
        char last_reconcile[32]; /* "" before the first */
        char **roots; /* owned */
        size_t n_roots;
        char **unwatched_roots; /* owned: roots present but not watched themselves */
        size_t n_unwatched_roots;
        char **missing_roots; /* owned */
        size_t n_missing_roots;
        char **dropped_roots; /* owned: the missing roots whose notes left */
        size_t n_dropped_roots;
        char **cookies; /* owned */
        size_t n_cookies;
        int failing_error;        /* 0, or the negative errno indexing fails with */
        char failing_since[32];   /* "" unless failing */
        unsigned retry_s;
};
int daemon_state_read(const char *db_path, struct daemon_state_info *ret);
void daemon_state_info_done(struct daemon_state_info *info);
