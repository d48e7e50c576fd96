/* quired as a Type=notify service: READY/STATUS/RELOADING/STOPPING and the
 * watchdog through sd_notify(3). Outside systemd (no NOTIFY_SOCKET) every
 * call is a no-op and nothing breaks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* READY=1 (after the first reconcile) or READY=1 after a reload. */
void notify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC=now (systemd 253's reload protocol; older
 * managers ignore the field). */
void notify_reloading(void);
void notify_stopping(void);
/* EXTEND_TIMEOUT_USEC=usec: a long first reconcile asks for more time
 * before READY=1 is due. */
void notify_extend_timeout(uint64_t usec);

/* STATUS=..., sent at most every min_interval_usec (the caller passes the
 * current monotonic time); a status equal to the last one sent is dropped.
 * Returns false only when the rate limit held it back, i.e. when the
 * caller should call again once the interval is over; true when it was
 * sent, was the same as the last one, or there is no manager to tell
 * (so a caller that retries on false never spins while idle). */
struct notify_status {
        size_t n_roots;
        uint64_t n_files, n_chunks;
        size_t queue_length;
        const char *last_path; /* may be NULL */
        const char *state;     /* "starting", "reconciling", "watching", "reloading", "stopping" */
};
bool notify_status(const struct notify_status *st, uint64_t now_usec, uint64_t min_interval_usec);

/* The watchdog interval systemd asked for (WATCHDOG_USEC, honouring
 * WATCHDOG_PID), or 0 when there is no watchdog. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog_ping(void);
