/* One logging vocabulary for the CLI, the daemon and the library under them.
 * Lines go to stderr; under systemd (JOURNAL_STREAM names our stderr) each
 * line carries a <N> priority prefix so journald keeps the level. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* The longest message a line carries (longer ones are cut). */
#define LOG_LINE_MAX 4096

void log_setup(const char *program_name);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Where lines go; stderr unless changed. Returns the previous descriptor, so
 * a test can capture a call's lines and put things back. */
int log_set_fd(int fd);

/* Whether a status line without a newline (quire index's progress bar on
 * a terminal) may be on the log's terminal: while it may, each log line
 * starts by clearing it ("\r\033[K"), so the line stands on its own
 * instead of being appended to the bar. Set it before the threads that
 * log start, clear it after they end. */
void log_set_status_line(bool is_shown);

/* On this thread, until log_capture_end(): error lines are not written
 * but the first is kept in buf (size bytes, "" when none), for a server
 * to hand its client the reason a request failed. Lesser levels are
 * written as usual. */
void log_capture_begin(char *buf, size_t size);
void log_capture_end(void);

/* Returns -abs(error) (or 0 when error is 0), so `return log_error_errno(r, ...)`
 * logs and propagates in one step. "%m" in fmt expands to strerror(error). */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
