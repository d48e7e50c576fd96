/* stderr logging with journald priority prefixes; see log.h. */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *program = "quire";
static int max_level = LOG_INFO;
static bool use_priority_prefix;
static int log_fd = STDERR_FILENO;
static bool has_status_line;

/* systemd sets JOURNAL_STREAM to "dev:ino" of the stream it connected to
 * stderr; only when that matches is the <N> prefix understood (sd-daemon(3)). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *program_name) {
        if (program_name)
                program = program_name;
        use_priority_prefix = stderr_is_journal();
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* A thread that answers for another process keeps that process's errors:
 * the first error line logged while the capture is on goes here instead.
 * initial-exec: this file is also in the quire-cli module, which quire
 * dlopen()s, and a module's dynamic TLS is what gcc 12's LeakSanitizer
 * misreads (it crashed scanning a bogus range at exit); 16 bytes of the
 * static TLS glibc keeps spare for modules. */
#define CAPTURE_TLS _Thread_local __attribute__((tls_model("initial-exec")))
static CAPTURE_TLS char *capture_buf;
static CAPTURE_TLS size_t capture_size;

void log_capture_begin(char *buf, size_t size) {
        capture_buf = size > 0 ? buf : NULL;
        capture_size = size;
        if (capture_buf)
                capture_buf[0] = '\0';
}

void log_capture_end(void) {
        capture_buf = NULL;
        capture_size = 0;
}

int log_set_fd(int fd) {
        int previous = log_fd;
        log_fd = fd;
        return previous;
}

void log_set_status_line(bool is_shown) {
        has_status_line = is_shown;
}

int log_internal(int level, int error, const char *fmt, ...) {
        int saved_errno = errno;
        char line[LOG_LINE_MAX];
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        /* Our own "%m" so the message names the error we were handed, not
         * whatever errno happens to hold by now. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);

        if (capture_buf && level <= LOG_ERR) {
                if (!capture_buf[0])
                        snprintf(capture_buf, capture_size, "%s", line);
                errno = saved_errno;
                return -error;
        }

        /* One message, one line, whatever file name it carries; and one
         * write(2): stderr is unbuffered, and the daemon's threads log at
         * the same time, so a line written piecewise gets interleaved with
         * another thread's. Escaping at most quadruples a byte. */
        char out[4 * sizeof line + 64];
        size_t len = 0;
        FILE *f = fmemopen(out, sizeof out - 1, "w");
        if (f) {
                if (has_status_line)
                        fputs("\r\033[K", f);
                if (use_priority_prefix)
                        fprintf(f, "<%d>", level);
                else
                        fprintf(f, "%s: ", program);
                write_escaped(f, line);
                len = (size_t) ftell(f);
                fclose(f);
        }
        out[len++] = '\n';
        for (size_t done = 0; done < len;) {
                ssize_t n = write(log_fd, out + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                done += (size_t) n;
        }
        errno = saved_errno;
        return -error;
}
