/* The debounce table: editors save in bursts (temp file, rename, chmod), so
 * a changed path waits until it has been quiet for the settle time, or has
 * waited the maximum delay under constant writes, and then goes to the
 * indexer with the others that settled at the same moment. Loop thread
 * only. The timer runs only while paths wait: an idle daemon never wakes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct debounce;

/* Called with the paths that settled, all of one root; the callee takes
 * ownership of paths (an array of owned strings). oldest_ms is the loop
 * time (uv_now) of the earliest first change among them. */
typedef void (*debounce_flush_cb)(size_t root, char **paths, size_t n_paths, uint64_t oldest_ms, void *userdata);
/* Called when more than max_entries paths wait: the caller should drop
 * its detail and reconcile everything instead. */
typedef void (*debounce_overflow_cb)(void *userdata);

int debounce_new(uv_loop_t *loop, unsigned settle_ms, unsigned max_delay_ms, size_t max_entries,
                 debounce_flush_cb flush_cb, debounce_overflow_cb overflow_cb, void *userdata,
                 struct debounce **ret);

/* path changed (again) and belongs to root. Returns 0 or -ENOMEM. */
int debounce_mark(struct debounce *d, size_t root, const char *path);

/* Whether path is waiting; if so, forget it (a rename moves its state). */
bool debounce_take(struct debounce *d, const char *path);

/* Hand every waiting path to the flush callback now (shutdown, reload). */
void debounce_flush_all(struct debounce *d);

/* Forget every waiting path (an overflow makes them moot). */
void debounce_clear(struct debounce *d);

size_t debounce_count(const struct debounce *d);
/* The loop time (uv_now) of the first change of the path that has waited
 * longest, 0 when none waits. O(waiting paths). */
uint64_t debounce_oldest_ms(const struct debounce *d);
void debounce_set_timing(struct debounce *d, unsigned settle_ms, unsigned max_delay_ms);

/* Closes the timer; freed by its close callback (run the loop after). */
void debounce_free(struct debounce *d);
