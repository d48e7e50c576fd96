/* What quired tells of its progress: STATUS= and the watchdog to systemd,
 * the state file to `quire status`; and what it does with the indexer's
 * reports (counts, readiness, a retry after a failure, sync cookies
 * acknowledged). */
#include <stdlib.h>
#include <string.h>

#include "cookies.h"
#include "daemon-state.h"
#include "debounce.h"
#include "indexer.h"
#include "log.h"
#include "notify.h"
#include "quired.h"
#include "util.h"
#include "watch.h"

/* STATUS= at most four times a second; the state file at most once. */
#define STATUS_INTERVAL_USEC 250000
#define STATE_FILE_INTERVAL_USEC 1000000
/* While the first reconcile runs, ask systemd for this much more time,
 * every second. */
#define EXTEND_TIMEOUT_USEC 5000000
/* The index lags when a change has waited longer than this, or than twice
 * max_delay_ms when that is longer: a note that keeps changing waits
 * max_delay_ms by design, and indexing a burst takes a moment. */
#define LAG_THRESHOLD_MIN_MS 3000
/* While changes wait, the state file is rewritten this often. */
#define PENDING_INTERVAL_MS 1000

static void status_timer_cb(uv_timer_t *t);

static size_t roots_present(const struct daemon *d) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_roots; i++)
                n += d->roots[i].path != NULL;
        return n;
}

/* STATUS= for systemd, rate-limited; a status held back by the limit goes
 * out when the interval is over (a one-shot timer, armed only then). */
static void send_status(struct daemon *d) {
        struct notify_status st = {
                .n_roots = roots_present(d),
                .n_files = (uint64_t) d->n_files,
                .n_chunks = (uint64_t) d->n_chunks,
                .queue_length = d->queue_length,
                .last_path = d->last_path,
                .state = d->state,
        };
        if (!notify_status(&st, now_monotonic_usec(), STATUS_INTERVAL_USEC) &&
            !uv_is_active((uv_handle_t *) &d->status_timer))
                uv_timer_start(&d->status_timer, status_timer_cb, STATUS_INTERVAL_USEC / 1000, 0);
}

static void status_timer_cb(uv_timer_t *t) {
        send_status(t->data);
}

/* CLOCK_MONOTONIC µs of the oldest change not committed yet, 0 if none. */
static uint64_t oldest_pending_usec(struct daemon *d) {
        uint64_t oldest = d->indexer ? indexer_oldest_pending_usec(d->indexer) : 0;
        uint64_t settling_ms = d->debounce ? debounce_oldest_ms(d->debounce) : 0;

        if (settling_ms && (!oldest || settling_ms * 1000 < oldest))
                oldest = settling_ms * 1000;
        return oldest;
}

static bool has_pending(struct daemon *d) {
        return oldest_pending_usec(d) != 0;
}

void state_timer_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        check_state_file(d); /* it may have been removed since */
        if (!d->is_stopping)
                write_state_file(d, true);
}

/* At most once per STATE_FILE_INTERVAL_USEC unless forced; a write held
 * back happens when the interval is over (a one-shot timer, armed only
 * then), or the file would tell `quire status` of the burst's middle
 * until the next change, however long quired then stays idle. */
void write_state_file(struct daemon *d, bool is_forced) {
        uint64_t now = now_monotonic_usec();
        if (!d->state_file)
                return;
        if (!is_forced && now - d->state_written_usec < STATE_FILE_INTERVAL_USEC) {
                if (!d->is_stopping && !uv_is_active((uv_handle_t *) &d->state_timer))
                        uv_timer_start(&d->state_timer, state_timer_cb,
                                       (d->state_written_usec + STATE_FILE_INTERVAL_USEC - now + 999) / 1000, 0);
                return;
        }
        uv_timer_stop(&d->state_timer);
        d->state_written_usec = now;

        _cleanup_free_ const char **roots = calloc(d->n_roots + 1, sizeof *roots);
        size_t n_roots = 0;
        _cleanup_free_ const char **missing = calloc(d->n_roots + 1, sizeof *missing);
        size_t n_missing = 0;
        _cleanup_free_ const char **dropped = calloc(d->n_roots + 1, sizeof *dropped);
        size_t n_dropped = 0;
        _cleanup_free_ const char **unwatched = calloc(d->n_roots + 1, sizeof *unwatched);
        size_t n_unwatched = 0;
        for (size_t i = 0; roots && missing && dropped && unwatched && i < d->n_roots; i++)
                if (d->roots[i].path) {
                        roots[n_roots++] = d->roots[i].path;
                        if (strv_contains(d->unwatched, d->n_unwatched, d->roots[i].path))
                                unwatched[n_unwatched++] = d->roots[i].path;
                } else {
                        missing[n_missing++] = d->roots[i].configured;
                        if (!d->roots[i].keeps_notes)
                                dropped[n_dropped++] = d->roots[i].configured;
                }
        const char *const *cookies = NULL;
        size_t n_cookies = d->cookies ? cookie_table_acked(d->cookies, &cookies) : 0;
        uint64_t oldest = oldest_pending_usec(d);
        unsigned lag_ms = 2 * d->cfg.max_delay_ms;
        struct daemon_state st = {
                .state = d->state,
                .queue_length = d->indexer ? indexer_queue_length(d->indexer) : d->queue_length,
                .n_settling = d->debounce ? debounce_count(d->debounce) : 0,
                /* The same moment on the wall clock, which readers share. */
                .oldest_pending_usec = oldest ? now_realtime_usec() - (now - (oldest < now ? oldest : now)) : 0,
                .lag_threshold_ms = lag_ms > LAG_THRESHOLD_MIN_MS ? lag_ms : LAG_THRESHOLD_MIN_MS,
                .n_watched = d->watcher ? watcher_count(d->watcher) : 0,
                .n_unwatched = d->n_unwatched,
                .n_overflows = d->n_overflows,
                .last_reconcile_usec = d->last_reconcile_usec,
                .roots = roots,
                .n_roots = n_roots,
                .unwatched_roots = unwatched,
                .n_unwatched_roots = n_unwatched,
                .missing_roots = missing,
                .n_missing_roots = n_missing,
                .dropped_roots = dropped,
                .n_dropped_roots = n_dropped,
                .cookies = cookies,
                .n_cookies = n_cookies,
                .failing_error = d->failing_error,
                .failing_since_usec = d->failing_since_usec,
                .retry_s = d->retry_s,
        };
        d->has_written_pending = oldest != 0;
        int r = daemon_state_update(d->state_file, &st);
        if (r < 0)
                log_debug_errno(r, "Failed to update the daemon state file: %m");
}

/* While changes wait, rewrite the state file every second, so that
 * `quire status` sees the oldest one age even when nothing else happens
 * (an indexer stuck on a lock). Idle, the timer is off. */
static void pending_timer_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        write_state_file(d, true);
        if (!has_pending(d))
                uv_timer_stop(t);
}

void arm_pending_timer(struct daemon *d) {
        if (!d->is_stopping && !uv_is_active((uv_handle_t *) &d->pending_timer) && has_pending(d))
                uv_timer_start(&d->pending_timer, pending_timer_cb, PENDING_INTERVAL_MS, PENDING_INTERVAL_MS);
}

void set_state(struct daemon *d, const char *state) {
        d->state = state;
        write_state_file(d, true);
        send_status(d);
}

/* The watchdog ping depends on the indexer: idle, or moved on since the
 * last look. A loop that stalls never gets here; an indexer wedged in one
 * operation stops the pings; either way systemd restarts us. */
static void watchdog_cb(uv_timer_t *t) {
        struct daemon *d = t->data;
        bool is_busy;
        uint64_t n_progress;

        indexer_progress(d->indexer, &is_busy, &n_progress);
        if (is_busy && n_progress == d->progress_at_last_ping) {
                /* At idle priority, no progress may mean starved, not
                 * wedged: lift it and give it one more half interval. */
                if (indexer_boost(d->indexer)) {
                        log_info("The indexer has made no progress for %llu ms at idle priority; lifting its "
                                 "priority until it does", (unsigned long long) d->watchdog_usec / 2000);
                        notify_watchdog_ping();
                        return;
                }
                if (!d->has_logged_stall)
                        log_warning("The indexer has made no progress for %llu ms; not pinging the watchdog",
                                    (unsigned long long) d->watchdog_usec / 2000);
                d->has_logged_stall = true;
                return;
        }
        d->has_logged_stall = false;
        d->progress_at_last_ping = n_progress;
        notify_watchdog_ping();
        write_state_file(d, false);
}

static void extend_cb(uv_timer_t *t) {
        notify_extend_timeout(EXTEND_TIMEOUT_USEC);
        (void) t;
}

/* Timers that run only under systemd: without NOTIFY_SOCKET and
 * WATCHDOG_USEC an idle daemon has nothing that wakes it. */
void start_systemd_timers(struct daemon *d) {
        if (getenv("NOTIFY_SOCKET"))
                uv_timer_start(&d->extend_timer, extend_cb, 0, 1000);
        d->watchdog_usec = notify_watchdog_usec();
        if (d->watchdog_usec > 0) {
                uint64_t ms = d->watchdog_usec / 2000;
                uv_timer_start(&d->watchdog_timer, watchdog_cb, ms ? ms : 1, ms ? ms : 1);
        }
}

static void retry_cb(uv_timer_t *t) {
        struct daemon *d = t->data;

        record_unmounted(d);
        reconcile_all(d);
        /* A cookie vouches that the changes before it are in: the ones
         * waiting now are answered by this reconcile, not by a barrier
         * that came after a failure. */
        uint64_t seq = ++d->barrier_seq;
        if (indexer_barrier(d->indexer, seq) == 0)
                cookie_table_defer(d->cookies, seq);
}

/* An operation failed, and the changes it carried are dropped with it (a
 * path sync, a move, a reconcile): a reconcile later finds them all again
 * by their stat, and the unmounted folders are sent again with it (the
 * failed one may have been their record). Only a failed reconcile moves
 * the next one further out; other failures while one is pending are
 * covered by it. */
static void schedule_retry(struct daemon *d, bool was_reconcile, int error) {
        d->failing_error = error;
        d->is_unmounted_record_unsure = true;
        if (d->retry_s == 0) {
                d->retry_s = 1;
                d->failing_since_usec = now_realtime_usec();
        } else if (was_reconcile)
                d->retry_s = d->retry_s * 2 < d->cfg.rescan_interval_s ? d->retry_s * 2 : d->cfg.rescan_interval_s;
        else
                return;
        /* The cause was logged where it was met (storage names the database). */
        log_warning("%s failed; retrying in %u s", was_reconcile ? "Reconcile" : "Indexing", d->retry_s);
        uv_timer_start(&d->retry_timer, retry_cb, (uint64_t) d->retry_s * 1000, 0);
}

void on_report(const struct indexer_report *rep, void *userdata) {
        struct daemon *d = userdata;
        const struct index_stats *t = &rep->stats.index;

        if (d->is_stopping) /* the last report, from indexer_stop() */
                return;
        /* The database removed: the indexer has made a new one, and the
         * state file went with the old (when the watch on it missed that). */
        check_state_file(d);
        if (d->is_stopping)
                return;
        log_debug("Batch: %u operations, %u read, %u new, %u changed, %u moved, %u removed; %zu queued",
                  rep->n_ops, rep->stats.n_read, t->files_new, t->files_changed, t->files_moved, t->files_deleted,
                  rep->queue_length);
        d->queue_length = rep->queue_length;
        if (rep->has_counts) {
                d->n_files = rep->n_files;
                d->n_chunks = rep->n_chunks;
        }
        if (rep->last_path) {
                char *copy = strdup(rep->last_path);
                if (copy) {
                        free(d->last_path);
                        d->last_path = copy;
                }
        }
        if (rep->was_reconcile && rep->error == 0)
                d->last_reconcile_usec = now_realtime_usec();
        bool was_failing = d->retry_s > 0;
        if (rep->error < 0)
                schedule_retry(d, rep->was_reconcile, rep->error);
        else if (rep->was_reconcile && d->retry_s > 0) {
                /* Every change since the failure is in: nothing left to retry. */
                log_info("Indexing works again");
                d->retry_s = 0;
                d->failing_error = 0;
                d->failing_since_usec = 0;
                uv_timer_stop(&d->retry_timer);
        }
        /* Acknowledged cookies, and the end of a wait, are news at once.
         * While a retry is due, a barrier reached proves nothing: what
         * came before it may have failed (retry_cb defers the cookies). */
        bool is_news = rep->barrier_done && d->retry_s == 0 && cookie_table_ack(d->cookies, rep->barrier_done) > 0;
        is_news |= d->has_written_pending && !has_pending(d);
        is_news |= was_failing != (d->retry_s > 0);
        arm_pending_timer(d);
        if (!d->is_ready && (d->ready_barrier ? rep->barrier_done >= d->ready_barrier : rep->was_reconcile)) {
                d->is_ready = true;
                d->ready_barrier = 0;
                uv_timer_stop(&d->extend_timer);
                log_info("Ready: watching %zu directories under %zu roots", watcher_count(d->watcher),
                         roots_present(d));
                set_state(d, "watching");
                notify_ready();
                return;
        }
        write_state_file(d, is_news);
        send_status(d);
}
