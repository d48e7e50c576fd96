/* stderr logging with journald priority prefixes; see log.h. */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *program = "quire";
static int max_level = LOG_INFO;
static bool use_priority_prefix;

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

int log_internal(int level, int error, const char *fmt, ...) {
        int saved_errno = errno;
        char line[4096];
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

        /* One message, one line, whatever file name it carries. */
        if (use_priority_prefix)
                fprintf(stderr, "<%d>", level);
        else
                fprintf(stderr, "%s: ", program);
        write_escaped(stderr, line);
        fputc('\n', stderr);
        errno = saved_errno;
        return -error;
}
