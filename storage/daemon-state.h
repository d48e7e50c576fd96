/* The daemon state file next to the database: how `quire status` tells
 * whether a quired runs on a database, its pid, state and last heartbeat.
 * No libuv or libsystemd here: the CLI reads it too. */
#pragma once

#include <stddef.h>

/* The state file next to the database (DB + ".daemon"), held under an
 * exclusive flock(2) for as long as the daemon runs, so a reader that can
 * take a shared lock knows no daemon is there, whatever a stale file says. */
struct daemon_state_file;

/* Create and lock; -EBUSY (with the running daemon's pid in *other_pid)
 * when another daemon holds it. */
int daemon_state_open(const char *db_path, struct daemon_state_file **ret, long *other_pid);
/* Rewrite the file: pid, state, heartbeat (UTC, now), queue length. */
int daemon_state_update(struct daemon_state_file *f, const char *state, size_t queue_length);
/* Unlock, remove the file, free. Safe on NULL. */
void daemon_state_close(struct daemon_state_file *f);

/* For `quire status`: whether a daemon holds the state file of db_path,
 * and what it last wrote. Returns 1 (running, fields filled; pid 0 and
 * state "starting" while the holder has not written yet), 0 (not
 * running, including a stale file nobody holds), or -errno. */
struct daemon_state_info {
        long pid;
        char state[32];
        char heartbeat[32]; /* 'YYYY-MM-DDTHH:MM:SS.sssZ' */
        size_t queue_length;
};
int daemon_state_read(const char *db_path, struct daemon_state_info *ret);
