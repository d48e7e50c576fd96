/* See notify.h. Thin wrappers over sd_notify(3): the daemon's loop thread
 * calls them (they keep a little unlocked state for STATUS=), and when
 * NOTIFY_SOCKET is unset libsystemd returns at once without a syscall. */
#include "notify.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "util.h"

/* Long enough for any path plus the counters; a longer STATUS= is cut. */
#define STATUS_MAX 4400

/* The last STATUS= we sent, for de-duplication and the rate limit. Loop
 * thread only: no lock. */
static char last_status[STATUS_MAX];
static uint64_t last_status_usec;
static bool has_sent_status;

static bool is_under_systemd(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        return e && *e;
}

/* A failure to notify is not worth more than a debug line: the manager
 * is gone or never listened, and the daemon works the same without it. */
static void send_message(const char *msg) {
        int r = sd_notify(0, msg);
        if (r < 0)
                log_debug_errno(r, "Failed to notify the service manager (%.40s): %m", msg);
}

void notify_ready(void) {
        send_message("READY=1");
}

void notify_reloading(void) {
        char msg[64];

        /* MONOTONIC_USEC lets a manager that knows the reload protocol
         * (systemd >= 253) tell this reload from an earlier one. */
        snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_monotonic_usec());
        send_message(msg);
}

void notify_stopping(void) {
        send_message("STOPPING=1");
}

void notify_extend_timeout(uint64_t usec) {
        char msg[64];

        snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
        send_message(msg);
}

/* The notify protocol is newline-separated assignments: a note whose name
 * holds a newline must not become a second assignment (a file called
 * "x\nMAINPID=1" would otherwise move the manager's idea of our pid). */
static void append_sanitized(char *buf, size_t size, size_t *len, const char *s) {
        size_t n = *len;

        for (; *s && n + 1 < size; s++)
                buf[n++] = (unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s;
        buf[n] = '\0';
        *len = n;
}

bool notify_status(const struct notify_status *st, uint64_t now_usec, uint64_t min_interval_usec) {
        char msg[STATUS_MAX];
        const char *state = st->state && *st->state ? st->state : "running";
        size_t len;
        int n;

        if (!is_under_systemd())
                return true;
        /* Cheap test first: under a burst most calls stop here. */
        if (has_sent_status && now_usec - last_status_usec < min_interval_usec)
                return false;

        n = snprintf(msg, sizeof msg, "STATUS=%c%s %zu %s: %" PRIu64 " files, %" PRIu64 " chunks; queue %zu",
                     toupper((unsigned char) state[0]), state + 1, st->n_roots, st->n_roots == 1 ? "root" : "roots",
                     st->n_files, st->n_chunks, st->queue_length);
        if (n < 0)
                return true; /* cannot happen with these formats; never worth a retry */
        len = (size_t) n < sizeof msg ? (size_t) n : sizeof msg - 1;
        if (st->last_path && *st->last_path && len + 8 < sizeof msg) {
                memcpy(msg + len, "; last ", 8);
                len += 7;
                append_sanitized(msg, sizeof msg, &len, st->last_path);
        }
        if (has_sent_status && strcmp(msg, last_status) == 0)
                return true; /* nothing new: nothing to retry either */

        send_message(msg);
        memcpy(last_status, msg, len + 1);
        last_status_usec = now_usec;
        has_sent_status = true;
        return true;
}

uint64_t notify_watchdog_usec(void) {
        uint64_t usec = 0;

        /* Without a socket to ping there is no watchdog, whatever
         * WATCHDOG_USEC says. sd_watchdog_enabled() checks WATCHDOG_PID
         * against getpid() when it is set, and accepts it missing. */
        if (!is_under_systemd())
                return 0;
        int r = sd_watchdog_enabled(0, &usec);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse WATCHDOG_USEC/WATCHDOG_PID, running without the watchdog: %m");
                return 0;
        }
        return r > 0 ? usec : 0;
}

void notify_watchdog_ping(void) {
        send_message("WATCHDOG=1");
}
