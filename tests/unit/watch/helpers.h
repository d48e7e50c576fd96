/* A fixture for the watch backend tests: a real libuv loop, a watcher on a
 * fresh mkdtemp directory (and a second one outside it), every event
 * recorded, and waits that run the loop until an expected event arrives or a
 * uv_timer watchdog gives up. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "watch.h"

/* How long a wait may take before the test fails: a deadline against hangs,
 * never a measurement. */
#define WAIT_TIMEOUT_MS 20000

struct recorded_event {
        enum watch_event_kind kind;
        char *path;     /* owned; NULL for WATCH_OVERFLOW */
        char *old_path; /* owned; WATCH_MOVED only */
        bool is_dir;
};

struct fixture {
        uv_loop_t loop;
        uv_timer_t watchdog;
        bool is_timed_out;
        struct watcher *w;
        char root[PATH_MAX];    /* watched */
        char outside[PATH_MAX]; /* not watched: for moves in and out */
        struct recorded_event *events;
        size_t n_events;
        size_t n_allocated;
        unsigned n_syncs;
};

/* Make the directories, the loop and the watcher, and watch root. 0 or -errno. */
int fixture_setup(struct fixture *f, enum watch_backend_kind kind);
/* watcher_free, run the loop until every handle is closed, close the loop
 * (its result is returned: 0 means nothing was left open), and remove the
 * directories. */
int fixture_teardown(struct fixture *f);

/* base + "/" + rel into out (PATH_MAX). Returns out. */
char *fixture_path(char *out, const char *base, const char *rel);

/* Run the loop until an event of kind on path (NULL: any path) has been
 * recorded; returns it, or NULL when the watchdog fired first. */
const struct recorded_event *fixture_wait(struct fixture *f, enum watch_event_kind kind, const char *path);
/* Events recorded so far of kind on path (NULL: any path). */
size_t fixture_count(const struct fixture *f, enum watch_event_kind kind, const char *path);
/* Events recorded so far whose path or old_path lies at or below prefix. */
size_t fixture_count_under(const struct fixture *f, const char *prefix);
const struct recorded_event *fixture_find(const struct fixture *f, enum watch_event_kind kind, const char *path);
/* Create a marker file in root and wait for its event. Both backends read
 * one inotify queue in order on Linux, so every event of an earlier change
 * has been delivered once this returns true: that is how a test shows an
 * event did not come, without sleeping. */
bool fixture_sync(struct fixture *f);
/* Forget the events recorded so far. */
void fixture_clear(struct fixture *f);
/* fixture_sync, then fixture_clear. */
bool fixture_settle(struct fixture *f);
/* Print what was recorded (on a failure). */
void fixture_dump(const struct fixture *f);

/* Create (or truncate) path and write content; 0 or -errno. */
int write_file(const char *path, const char *content);
