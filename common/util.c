/* See util.h. */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void utc_timestamp_now(char out[UTC_TIMESTAMP_LEN]) {
        struct timespec ts;
        struct tm tm;
        char buf[64]; /* room for any int the compiler imagines in tm */

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000L);
        memcpy(out, buf, UTC_TIMESTAMP_LEN - 1);
        out[UTC_TIMESTAMP_LEN - 1] = '\0';
}

int utc_timestamp_parse(const char *s, int64_t *ret_ns) {
        struct tm tm = { 0 };
        int ms, n = 0;

        if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                         &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 ||
            n != UTC_TIMESTAMP_LEN - 1 || s[n] != '\0')
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_ns = (int64_t) t * 1000000000 + (int64_t) ms * 1000000;
        return 0;
}

int random_id(char out[RANDOM_ID_LEN]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char bytes[16];
        size_t got = 0;

        while (got < sizeof bytes) {
                ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        for (size_t i = 0; i < sizeof bytes; i++) {
                out[2 * i] = hex[bytes[i] >> 4];
                out[2 * i + 1] = hex[bytes[i] & 15];
        }
        out[32] = '\0';
        return 0;
}

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* The escape for one byte, or NULL when it goes through as it is. Bytes
 * >= 0x80 pass unchanged: callers hand us valid UTF-8. */
static const char *json_escape(unsigned char c, char tmp[7]) {
        switch (c) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        case '\b': return "\\b";
        case '\f': return "\\f";
        default:
                if (c < 0x20) {
                        snprintf(tmp, 7, "\\u%04x", c);
                        return tmp;
                }
                return NULL;
        }
}

void json_write_string(FILE *f, const char *s) {
        char tmp[7];

        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                const char *e = json_escape(*p, tmp);
                if (e)
                        fputs(e, f);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

static int buf_reserve(char **buf, size_t *cap, size_t need) {
        if (need <= *cap)
                return 0;
        size_t n = *cap ? *cap : 64;
        while (n < need)
                n *= 2;
        char *p = realloc(*buf, n);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = n;
        return 0;
}

int json_append_string(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
        char tmp[7];

        /* Worst case every byte becomes \u00XX; plus quotes and NUL. */
        if (buf_reserve(buf, cap, *len + n * 6 + 3) < 0)
                return -ENOMEM;
        char *o = *buf + *len;
        *o++ = '"';
        for (size_t i = 0; i < n; i++) {
                const char *e = json_escape((unsigned char) s[i], tmp);
                if (e) {
                        size_t l = strlen(e);
                        memcpy(o, e, l);
                        o += l;
                } else
                        *o++ = s[i];
        }
        *o++ = '"';
        *o = '\0';
        *len = (size_t) (o - *buf);
        return 0;
}
