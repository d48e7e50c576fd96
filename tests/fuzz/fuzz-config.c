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

        /* Without DIR arguments the roots are the file's, and there is at
         * least one, or the file would have been refused. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[] = { (char *) "quired", (char *) "--config", config_path, NULL };
        _cleanup_free_ char *log = NULL;
        size_t log_len = 0, n_lines = 1;
        struct config cfg;
        FILE *saved_stderr, *mem;
        int r;

        setup();
        write_config(data, size);
        for (size_t i = 0; i < size; i++)
                n_lines += data[i] == '\n';

        /* log.c writes to the stdio stream stderr: point it at memory for
         * the call (glibc's stderr is an assignable variable), while
         * libFuzzer and the sanitizers keep writing to fd 2. */
        mem = open_memstream(&log, &log_len);
        FUZZ_CHECK(mem, "open_memstream: %s", strerror(errno));
        saved_stderr = stderr;
        stderr = mem;
        r = config_load(3, argv, &cfg);
        stderr = saved_stderr;
        fclose(mem);

        if (r == -EINVAL)
                check_refusal(&cfg, log, log_len, n_lines);
        else {
                FUZZ_CHECK(r == 0, "config_load() = %d (%s): %.*s", r, strerror(-r), (int) log_len, log);
                check_accepted(&cfg, log, log_len);
        }
        config_done(&cfg);
        return 0;
}
