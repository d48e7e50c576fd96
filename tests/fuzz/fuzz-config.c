/* Fuzz target: any bytes as quired's config file, read by the real
 * config_load() ("quired --config FILE") with inih under it. The file is a
 * memfd named by /proc/self/fd/N, so the target needs no API of its own and
 * no disk. Checked on every input: the result is 0 or -EINVAL; a refusal
 * costs exactly one log line naming the file (with a line number that
 * exists in it) and leaves the config empty; an accepted config keeps
 * every bound docs/CONFIG.md promises. libFuzzer's leak check (and the
 * replay driver's under ASan) covers config_done(). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"
#include "macro.h"

#define HOME "/home/fuzz"

static int config_fd = -1;
static char config_path[64];

static void setup(void) {
        if (config_fd >= 0)
                return;
        /* "~" must expand the same way on every run. */
        if (setenv("HOME", HOME, 1) < 0)
                abort();
        log_setup("quired");
        log_set_max_level(LOG_INFO);
        config_fd = memfd_create("quire-fuzz-config", MFD_CLOEXEC);
        FUZZ_CHECK(config_fd >= 0, "memfd_create: %s", strerror(errno));
        snprintf(config_path, sizeof config_path, "/proc/self/fd/%d", config_fd);
}

static void write_config(const uint8_t *data, size_t size) {
        FUZZ_CHECK(ftruncate(config_fd, 0) == 0, "ftruncate: %s", strerror(errno));
        for (size_t done = 0; done < size;) {
                ssize_t n = pwrite(config_fd, data + done, size - done, (off_t) done);
                FUZZ_CHECK(n > 0, "pwrite: %s", strerror(errno));
                done += (size_t) n;
        }
}

static bool starts_with(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A path the daemon can use as it is: absolute, no trailing '/'. */
static bool is_clean_path(const char *p) {
        size_t n = p ? strlen(p) : 0;
        return n > 0 && p[0] == '/' && (n == 1 || p[n - 1] != '/');
}

static void check_refusal(const struct config *cfg, const char *log, size_t log_len, size_t n_lines) {
        static const struct config zero;
        char prefix[128];

        FUZZ_CHECK(memcmp(cfg, &zero, sizeof zero) == 0, "refused config not left empty");
        FUZZ_CHECK(log_len > 0 && log[log_len - 1] == '\n' && memchr(log, '\n', log_len) == log + log_len - 1,
                   "a refusal must log exactly one line, got %zu bytes: %.*s", log_len, (int) log_len, log);

        /* "quired: FILE:LINE: what", or for a file without roots the usage
         * line that names the file to write them in. */
        snprintf(prefix, sizeof prefix, "quired: %s:", config_path);
        if (starts_with(log, prefix)) {
                char *end;
                unsigned long line = strtoul(log + strlen(prefix), &end, 10);
                FUZZ_CHECK(*end == ':' && line >= 1 && line <= n_lines,
                           "error names line %lu of a file of %zu lines: %s", line, n_lines, log);
        } else
                FUZZ_CHECK(starts_with(log, "quired: no folders to watch") && strstr(log, config_path),
                           "a refusal must name the file: %s", log);
}

static void check_accepted(const struct config *cfg, const char *log, size_t log_len) {
        FUZZ_CHECK(log_len == 0, "an accepted config logged: %.*s", (int) log_len, log);
        FUZZ_CHECK(cfg->config_path && strcmp(cfg->config_path, config_path) == 0, "config_path %s",
                   cfg->config_path ? cfg->config_path : "(null)");

        FUZZ_CHECK(cfg->settle_ms >= 1 && cfg->settle_ms <= 60000, "settle_ms %u", cfg->settle_ms);
        FUZZ_CHECK(cfg->max_delay_ms >= cfg->settle_ms && cfg->max_delay_ms <= 600000,
                   "max_delay_ms %u, settle_ms %u", cfg->max_delay_ms, cfg->settle_ms);
        FUZZ_CHECK(cfg->rescan_interval_s >= 1 && cfg->rescan_interval_s <= 86400, "rescan_interval_s %u",
                   cfg->rescan_interval_s);
        FUZZ_CHECK(cfg->max_file_bytes >= 1 && cfg->max_file_bytes <= UINT64_C(1) << 30, "max_file_bytes %llu",
                   (unsigned long long) cfg->max_file_bytes);
        FUZZ_CHECK(cfg->backend == WATCH_BACKEND_INOTIFY || cfg->backend == WATCH_BACKEND_FS_EVENT, "backend %d",
                   (int) cfg->backend);
        FUZZ_CHECK(!cfg->db_path || is_clean_path(cfg->db_path), "database '%s'", cfg->db_path);

        /* There is at least one root, or the config would have been
         * refused. */
        FUZZ_CHECK(cfg->n_roots >= 1 && cfg->roots, "accepted without roots");
        for (size_t i = 0; i < cfg->n_roots; i++) {
                const struct root_config *root = &cfg->roots[i];
                FUZZ_CHECK(is_clean_path(root->path), "root %zu: path '%s'", i, root->path);
                FUZZ_CHECK(root->namespace && *root->namespace, "root %zu: empty namespace", i);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(cfg->roots[j].path, root->path) != 0, "roots %zu and %zu: same path %s",
                                   j, i, root->path);
        }

        for (size_t i = 0; i < cfg->n_extensions; i++) {
                const char *e = cfg->extensions[i];
                FUZZ_CHECK(*e && *e != '.', "extension '%s'", e);
                for (const char *c = e; *c; c++)
                        FUZZ_CHECK(!isupper((unsigned char) *c) && !isspace((unsigned char) *c) && *c != ',',
                                   "extension '%s'", e);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(cfg->extensions[j], e) != 0, "extension '%s' twice", e);
        }
        for (size_t i = 0; i < cfg->n_ignore_globs; i++) {
                const char *g = cfg->ignore_globs[i];
                size_t n = strlen(g);
                FUZZ_CHECK(n > 0 && g[0] != '/' && !strchr(g, ','), "ignore glob '%s'", g);
                FUZZ_CHECK(g[0] != ' ' && g[0] != '\t' && g[n - 1] != ' ' && g[n - 1] != '\t',
                           "ignore glob '%s' not trimmed", g);
        }
}

/* One config_load() with its log captured: log.c writes its lines to a
 * descriptor, pointed at a memfd for the call, while libFuzzer and the
 * sanitizers keep writing to fd 2. */
struct load {
        struct config cfg;
        char *log; /* owned, NUL-terminated */
        size_t log_len;
        int r;
};

static int log_capture_fd = -1;

static void load(char **argv, struct load *ret) {
        int argc = 0, saved_fd;
        off_t len;

        while (argv[argc])
                argc++;
        *ret = (struct load) { .log = NULL };
        if (log_capture_fd < 0) {
                log_capture_fd = memfd_create("quire-fuzz-log", MFD_CLOEXEC);
                FUZZ_CHECK(log_capture_fd >= 0, "memfd_create: %s", strerror(errno));
        }
        FUZZ_CHECK(ftruncate(log_capture_fd, 0) == 0 && lseek(log_capture_fd, 0, SEEK_SET) == 0,
                   "reset the log capture: %s", strerror(errno));
        saved_fd = log_set_fd(log_capture_fd);
        ret->r = config_load(argc, argv, &ret->cfg);
        log_set_fd(saved_fd);

        len = lseek(log_capture_fd, 0, SEEK_CUR);
        FUZZ_CHECK(len >= 0, "lseek: %s", strerror(errno));
        ret->log_len = (size_t) len;
        ret->log = malloc(ret->log_len + 1);
        FUZZ_CHECK(ret->log, "out of memory");
        for (size_t done = 0; done < ret->log_len;) {
                ssize_t n = pread(log_capture_fd, ret->log + done, ret->log_len - done, (off_t) done);
                FUZZ_CHECK(n > 0, "pread: %s", strerror(errno));
                done += (size_t) n;
        }
        ret->log[ret->log_len] = '\0';
}

static void load_done(struct load *l) {
        config_done(&l->cfg);
        free(l->log);
}

/* A mistake in the file that no flag can change: all but settle_ms over
 * max_delay_ms, which is checked after the flags have had their say. */
static bool is_file_error(const struct load *l) {
        char prefix[128];

        snprintf(prefix, sizeof prefix, "quired: %s:", config_path);
        if (l->r != -EINVAL || !starts_with(l->log, prefix))
                return false;
        /* "LINE: N is above max_delay_ms (" or "LINE: N is below settle_ms (" */
        const char *p = l->log + strlen(prefix);
        p += strspn(p, "0123456789");
        if (!starts_with(p, ": "))
                return true;
        p += 2;
        p += strspn(p, "0123456789");
        return !starts_with(p, " is above max_delay_ms (") && !starts_with(p, " is below settle_ms (");
}

#define FLAG_SETTLE_MS 700u
#define FLAG_DIR "/srv/fuzz-dir"

/* The same file under flags that set what a file can: they must win (roots
 * included), and change nothing about the file's own mistakes. */
static void check_flags_win(const struct load *plain) {
        char *argv[] = { (char *) "quired", (char *) "--config", config_path, (char *) "--settle",
                         (char *) "700", (char *) "--max-file-size", (char *) "2M", (char *) "--backend",
                         (char *) "fs-event", (char *) "-n", (char *) "fuzz", (char *) FLAG_DIR, NULL };
        struct load l;

        load(argv, &l);
        if (is_file_error(plain)) {
                /* The file is read before the flags are looked at. */
                FUZZ_CHECK(l.r == -EINVAL && l.log_len == plain->log_len && memcmp(l.log, plain->log, l.log_len) == 0,
                           "flags changed the file's error: %.*s, then %.*s", (int) plain->log_len, plain->log,
                           (int) l.log_len, l.log);
        } else if (l.r == -EINVAL) {
                /* Only one mistake is left to make: a settle time over the
                 * file's max delay, which the line blames on the flag. */
                FUZZ_CHECK(plain->r == 0 ? plain->cfg.max_delay_ms < FLAG_SETTLE_MS : true,
                           "flags made an accepted file fail: %.*s", (int) l.log_len, l.log);
                FUZZ_CHECK(starts_with(l.log, "quired: --settle 700 is above the max delay") &&
                                   memchr(l.log, '\n', l.log_len) == l.log + l.log_len - 1,
                           "flags refused with: %.*s", (int) l.log_len, l.log);
        } else {
                FUZZ_CHECK(l.r == 0, "config_load() with flags = %d: %.*s", l.r, (int) l.log_len, l.log);
                check_accepted(&l.cfg, l.log, l.log_len);
                FUZZ_CHECK(l.cfg.n_roots == 1 && strcmp(l.cfg.roots[0].path, FLAG_DIR) == 0 &&
                                   strcmp(l.cfg.roots[0].namespace, "fuzz") == 0,
                           "DIR did not replace the file's roots");
                FUZZ_CHECK(l.cfg.settle_ms == FLAG_SETTLE_MS && l.cfg.max_file_bytes == 2u << 20 &&
                                   l.cfg.backend == WATCH_BACKEND_FS_EVENT,
                           "a flag did not beat the file");
                if (plain->r == 0) {
                        FUZZ_CHECK(l.cfg.max_delay_ms == plain->cfg.max_delay_ms &&
                                           l.cfg.rescan_interval_s == plain->cfg.rescan_interval_s &&
                                           l.cfg.n_extensions == plain->cfg.n_extensions &&
                                           l.cfg.n_ignore_globs == plain->cfg.n_ignore_globs,
                                   "flags changed what they do not set");
                        FUZZ_CHECK(!l.cfg.db_path == !plain->cfg.db_path &&
                                           (!l.cfg.db_path || strcmp(l.cfg.db_path, plain->cfg.db_path) == 0),
                                   "flags changed the database");
                }
        }
        load_done(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[] = { (char *) "quired", (char *) "--config", config_path, NULL };
        size_t n_lines = 1;
        struct load l;

        setup();
        write_config(data, size);
        for (size_t i = 0; i < size; i++)
                n_lines += data[i] == '\n';

        load(argv, &l);
        if (l.r == -EINVAL)
                check_refusal(&l.cfg, l.log, l.log_len, n_lines);
        else {
                FUZZ_CHECK(l.r == 0, "config_load() = %d (%s): %.*s", l.r, strerror(-l.r), (int) l.log_len, l.log);
                check_accepted(&l.cfg, l.log, l.log_len);
        }
        check_flags_win(&l);
        load_done(&l);
        return 0;
}
