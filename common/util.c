/* See util.h. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

void utc_timestamp_at(uint64_t realtime_usec, char out[UTC_TIMESTAMP_LEN]) {
        time_t secs = (time_t) (realtime_usec / 1000000u);
        struct tm tm;
        char buf[64]; /* room for any int the compiler imagines in tm */

        gmtime_r(&secs, &tm);
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned) (realtime_usec % 1000000u / 1000u));
        memcpy(out, buf, UTC_TIMESTAMP_LEN - 1);
        out[UTC_TIMESTAMP_LEN - 1] = '\0';
}

void utc_timestamp_now(char out[UTC_TIMESTAMP_LEN]) {
        utc_timestamp_at(now_realtime_usec(), out);
}

void utc_timestamp_now_coarse(char out[UTC_TIMESTAMP_LEN]) {
        struct timespec ts;
#if defined(CLOCK_REALTIME_COARSE) /* Linux */
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
#elif defined(CLOCK_REALTIME_FAST) /* FreeBSD */
        clock_gettime(CLOCK_REALTIME_FAST, &ts);
#else
        clock_gettime(CLOCK_REALTIME, &ts);
#endif
        utc_timestamp_at((uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u, out);
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
        *ret_ns = timestamp_ns(t, (int64_t) ms * 1000000);
        return 0;
}

bool lstat_says_gone(int lstat_result, int lstat_errno, const struct stat *st) {
        if (lstat_result < 0)
                return lstat_errno == ENOENT || lstat_errno == ENOTDIR || lstat_errno == ELOOP;
        return !S_ISREG(st->st_mode);
}

long read_proc_long(const char *path) {
        FILE *f = fopen(path, "re");
        long v = -1;
        if (f) {
                if (fscanf(f, "%ld", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

/* Whether the comma-separated list of n bytes at list holds name. */
static bool has_controller(const char *list, size_t n, const char *name) {
        size_t k = strlen(name);
        for (const char *p = list, *end = list + n; p < end;) {
                const char *comma = memchr(p, ',', (size_t) (end - p));
                size_t len = comma ? (size_t) (comma - p) : (size_t) (end - p);
                if (len == k && memcmp(p, name, k) == 0)
                        return true;
                p += len + 1;
        }
        return false;
}

/* Whether the cgroup of pid is frozen: cgroup v2's cgroup.events says
 * "frozen 1" (systemctl freeze, docker pause), v1's freezer.state
 * "FROZEN" or "FREEZING". Where the hierarchies are mounted by
 * convention: /sys/fs/cgroup (v2, or v1 controllers under it), or
 * /sys/fs/cgroup/unified (v2 beside v1). */
static bool cgroup_is_frozen(long pid) {
        char path[PATH_MAX + 64], line[PATH_MAX + 32];
        bool is_frozen = false;

        snprintf(path, sizeof path, "/proc/%ld/cgroup", pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        while (!is_frozen && fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                const char *controllers = strchr(line, ':');
                const char *group = controllers ? strchr(controllers + 1, ':') : NULL;
                if (!group)
                        continue;
                size_t n_controllers = (size_t) (group - controllers - 1);
                char state[32] = "";
                if (n_controllers == 0) {
                        static const char *const v2_mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
                        for (size_t i = 0; i < ELEMENTSOF(v2_mounts) && !is_frozen; i++) {
                                snprintf(path, sizeof path, "%s%s/cgroup.events", v2_mounts[i], group + 1);
                                FILE *e = fopen(path, "re");
                                if (!e)
                                        continue;
                                while (fgets(state, sizeof state, e))
                                        if (strcmp(state, "frozen 1\n") == 0)
                                                is_frozen = true;
                                fclose(e);
                        }
                } else if (has_controller(controllers + 1, n_controllers, "freezer")) {
                        /* Mounted by its name alone, or with the others it
                         * shares a hierarchy with ("freezer,devices"). */
                        snprintf(path, sizeof path, "/sys/fs/cgroup/%.*s%s/freezer.state", (int) n_controllers,
                                 controllers + 1, group + 1);
                        FILE *e = fopen(path, "re");
                        if (e) {
                                is_frozen = fgets(state, sizeof state, e) &&
                                            (strcmp(state, "FROZEN\n") == 0 || strcmp(state, "FREEZING\n") == 0);
                                fclose(e);
                        }
                }
        }
        fclose(f);
        return is_frozen;
}

enum process_stop process_stop_of(long pid, const char *name) {
        char path[64], buf[512];

        if (pid <= 0)
                return PROCESS_NOT_STOPPED;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return PROCESS_NOT_STOPPED;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "PID (COMM) STATE ...": COMM may hold ')' itself, the last one
         * ends it. */
        const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close < open || close[1] != ' ')
                return PROCESS_NOT_STOPPED;
        /* A pid from another pid namespace (a state file written in a
         * container) names some other process here. */
        if ((size_t) (close - open - 1) != strlen(name) || strncmp(open + 1, name, strlen(name)) != 0)
                return PROCESS_NOT_STOPPED;
        if (close[2] == 'T')
                return PROCESS_STOPPED;
        if (close[2] == 't')
                return PROCESS_TRACED;
        return cgroup_is_frozen(pid) ? PROCESS_FROZEN : PROCESS_NOT_STOPPED;
}

int64_t timestamp_ns(int64_t sec, int64_t nsec) {
        int64_t ns;

        if (__builtin_mul_overflow(sec, INT64_C(1000000000), &ns) || __builtin_add_overflow(ns, nsec, &ns))
                return sec < 0 ? INT64_MIN : INT64_MAX;
        return ns;
}

void strv_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

int strv_push(char ***v, size_t *n, char *s) {
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[(*n)++] = s;
        *v = nv;
        return 0;
}

bool strv_contains(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

int greedy_realloc(void *arrayp, size_t *cap, size_t need, size_t elem_size, size_t min_cap) {
        size_t new_cap = *cap ? *cap : (min_cap ? min_cap : 1);
        void *array;

        if (need <= *cap)
                return 0;
        while (new_cap < need) {
                if (new_cap > SIZE_MAX / 2)
                        return -ENOMEM;
                new_cap *= 2;
        }
        if (new_cap > SIZE_MAX / elem_size)
                return -ENOMEM;
        /* arrayp points to some T *; copying the pointer's bytes reads it
         * without pretending it is a void * object. */
        memcpy(&array, arrayp, sizeof array);
        array = realloc(array, new_cap * elem_size);
        if (!array)
                return -ENOMEM;
        memcpy(arrayp, &array, sizeof array);
        *cap = new_cap;
        return 0;
}

uint64_t fnv1a64(const void *data, size_t n) {
        const unsigned char *p = data;
        uint64_t h = UINT64_C(14695981039346656037);
        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * UINT64_C(1099511628211);
        return h;
}

/* Ids come from a pool that one getrandom() fills for 256 of them: a cold
 * index makes an id per chunk on its writer thread, where a system call
 * each cost ~1% of its time. A forked child empties the pool, so that the
 * two processes never hand out the same bytes. */
static struct {
        pthread_mutex_t lock;
        pthread_once_t atfork_once;
        size_t used;
        unsigned char bytes[4096];
} random_pool = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .atfork_once = PTHREAD_ONCE_INIT,
        .used = sizeof random_pool.bytes,
};

static void random_pool_empty(void) {
        random_pool.used = sizeof random_pool.bytes;
}

static void random_pool_register_atfork(void) {
        (void) pthread_atfork(NULL, NULL, random_pool_empty);
}

static int random_pool_fill(void) {
        size_t got = 0;

        while (got < sizeof random_pool.bytes) {
                ssize_t n = getrandom(random_pool.bytes + got, sizeof random_pool.bytes - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        random_pool.used = 0;
        return 0;
}

int random_id(char out[RANDOM_ID_LEN]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char bytes[16];
        int r = 0;

        (void) pthread_once(&random_pool.atfork_once, random_pool_register_atfork);
        pthread_mutex_lock(&random_pool.lock);
        if (random_pool.used + sizeof bytes > sizeof random_pool.bytes)
                r = random_pool_fill();
        if (r == 0) {
                memcpy(bytes, random_pool.bytes + random_pool.used, sizeof bytes);
                random_pool.used += sizeof bytes;
        }
        pthread_mutex_unlock(&random_pool.lock);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof bytes; i++) {
                out[2 * i] = hex[bytes[i] >> 4];
                out[2 * i + 1] = hex[bytes[i] & 15];
        }
        out[32] = '\0';
        return 0;
}

uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int utf8_sequence_length(const unsigned char *p, size_t n) {
        unsigned char c = p[0];
        unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
        int need;

        if (c >= 0xC2 && c <= 0xDF)
                need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                need = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong below U+0800 */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
                need = 4;
                if (c == 0xF0)
                        lo = 0x90; /* overlong below U+10000 */
                else if (c == 0xF4)
                        hi = 0x8F; /* above U+10FFFF */
        } else
                return -1; /* 80..C1, F5..FF never start a sequence */

        if (n < 2 || p[1] < lo || p[1] > hi)
                return -1;
        for (int i = 2; i < need; i++)
                if ((size_t) i >= n || p[i] < 0x80 || p[i] > 0xBF)
                        return -i;
        return need;
}

bool utf8_is_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < n;) {
                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                int l = utf8_sequence_length(p + i, n - i);
                if (l < 0)
                        return false;
                i += (size_t) l;
        }
        return true;
}

void write_escaped(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s, *end = p + strlen(s);

        while (p < end) {
                if (*p >= 0x80) {
                        int l = utf8_sequence_length(p, (size_t) (end - p));
                        if (l > 0) {
                                fwrite(p, 1, (size_t) l, f);
                                p += l;
                        } else
                                fprintf(f, "\\x%02x", *p++);
                        continue;
                }
                switch (*p) {
                case '\n': fputs("\\n", f); break;
                case '\t': fputs("\\t", f); break;
                case '\r': fputs("\\r", f); break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\x%02x", *p);
                        else
                                fputc(*p, f);
                }
                p++;
        }
}

/* How the bytes at p (n > 0 available) go into a JSON string: *used of them
 * are consumed and the returned text stands for them, or NULL when they go
 * through as they are. */
static const char *json_escape(const unsigned char *p, size_t n, size_t *used, char tmp[7]) {
        *used = 1;
        switch (*p) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        case '\b': return "\\b";
        case '\f': return "\\f";
        default:
                if (*p < 0x20) {
                        snprintf(tmp, 7, "\\u%04x", *p);
                        return tmp;
                }
                if (*p >= 0x80) {
                        int l = utf8_sequence_length(p, n);
                        *used = (size_t) (l > 0 ? l : -l);
                        return l > 0 ? NULL : "\xEF\xBF\xBD";
                }
                return NULL;
        }
}

void json_write_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = strlen(s), used;
        char tmp[7];

        fputc('"', f);
        while (n > 0) {
                const char *e = json_escape(p, n, &used, tmp);
                if (e)
                        fputs(e, f);
                else
                        fwrite(p, 1, used, f);
                p += used;
                n -= used;
        }
        fputc('"', f);
}

int json_append_string(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        size_t used;
        char tmp[7];

        /* Worst case every byte becomes \u00XX (a U+FFFD is three bytes for
         * at least one); plus quotes and NUL. */
        if (greedy_realloc(buf, cap, *len + n * 6 + 3, 1, 64) < 0)
                return -ENOMEM;
        char *o = *buf + *len;
        *o++ = '"';
        while (n > 0) {
                const char *e = json_escape(p, n, &used, tmp);
                if (e) {
                        size_t l = strlen(e);
                        memcpy(o, e, l);
                        o += l;
                } else {
                        memcpy(o, p, used);
                        o += used;
                }
                p += used;
                n -= used;
        }
        *o++ = '"';
        *o = '\0';
        *len = (size_t) (o - *buf);
        return 0;
}

int home_dir(char **ret) {
        const char *e = getenv("HOME");
        struct passwd pw, *found = NULL;
        _cleanup_free_ char *buf = NULL;
        long size;

        if (e && e[0] == '/') {
                *ret = strdup(e);
                return *ret ? 0 : -ENOMEM;
        }
        size = sysconf(_SC_GETPW_R_SIZE_MAX);
        if (size < 4096)
                size = 4096;
        buf = malloc((size_t) size);
        if (!buf)
                return -ENOMEM;
        if (getpwuid_r(getuid(), &pw, buf, (size_t) size, &found) != 0 || !found || !found->pw_dir ||
            found->pw_dir[0] != '/')
                return -ENOENT;
        *ret = strdup(found->pw_dir);
        return *ret ? 0 : -ENOMEM;
}

size_t path_parent_len(const char *path, size_t path_len) {
        size_t i = path_len;

        if (path_len <= 1)
                return 0;
        while (i > 0 && path[i - 1] != '/')
                i--;
        if (i == 0)
                return 0;
        return i == 1 ? 1 : i - 1;
}

char *path_join(const char *dir, size_t dir_len, const char *name, size_t name_len) {
        bool needs_slash = dir_len == 0 || dir[dir_len - 1] != '/';
        char *p = malloc(dir_len + needs_slash + name_len + 1);

        if (!p)
                return NULL;
        memcpy(p, dir, dir_len);
        if (needs_slash)
                p[dir_len] = '/';
        memcpy(p + dir_len + needs_slash, name, name_len);
        p[dir_len + needs_slash + name_len] = '\0';
        return p;
}

bool text_needs_quoting(const char *text) {
        size_t n = strlen(text);

        /* The bytes quoted are ASCII: no UTF-8 sequence holds one. */
        for (const unsigned char *p = (const unsigned char *) text; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
                        return true;
        return !utf8_is_valid(text, n);
}

void fputs_field(const char *text, FILE *f) {
        if (!text_needs_quoting(text)) {
                fputs(text, f);
                return;
        }
        const unsigned char *p = (const unsigned char *) text;
        size_t n = strlen(text);
        fputc('"', f);
        for (size_t i = 0; i < n;) {
                unsigned char c = p[i];
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\r')
                        fputs("\\r", f);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\%03o", c);
                else if (c >= 0x80) {
                        int l = utf8_sequence_length(p + i, n - i);
                        if (l > 0) {
                                fwrite(p + i, 1, (size_t) l, f);
                                i += (size_t) l;
                        } else
                                for (int k = 0; k < -l; k++, i++)
                                        fprintf(f, "\\%03o", p[i]);
                        continue;
                } else
                        fputc(c, f);
                i++;
        }
        fputc('"', f);
}

int dir_is_empty(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return -errno;
        int r = 1;
        for (;;) {
                errno = 0;
                const struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = -errno;
                        break;
                }
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        r = 0;
                        break;
                }
        }
        closedir(d);
        return r;
}
