/* The watch test fixture; see helpers.h. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[] = {
        [WATCH_CHANGED] = "CHANGED",
        [WATCH_REMOVED] = "REMOVED",
        [WATCH_MOVED] = "MOVED",
        [WATCH_OVERFLOW] = "OVERFLOW",
        [WATCH_DIR_GONE] = "DIR_GONE",
        [WATCH_UNMOUNTED] = "UNMOUNTED",
        [WATCH_AWAITED] = "AWAITED",
};

static void record_cb(const struct watch_event *ev, void *userdata) {
        struct fixture *f = userdata;
        struct recorded_event *r;

        if (f->n_events == f->n_allocated) {
                size_t n = f->n_allocated ? f->n_allocated * 2 : 64;
                struct recorded_event *p = realloc(f->events, n * sizeof *p);

                if (!p)
                        abort();
                f->events = p;
                f->n_allocated = n;
        }
        r = &f->events[f->n_events++];
        *r = (struct recorded_event) {
                .kind = ev->kind,
                .path = ev->path ? strdup(ev->path) : NULL,
                .old_path = ev->old_path ? strdup(ev->old_path) : NULL,
                .is_dir = ev->is_dir,
        };
        if (getenv("WATCH_TEST_VERBOSE"))
                fprintf(stderr, "    event %s %s%s%s%s\n", kind_names[ev->kind], ev->old_path ? ev->old_path : "",
                        ev->old_path ? " -> " : "", ev->path ? ev->path : "", ev->is_dir ? " (dir)" : "");
}

static void watchdog_cb(uv_timer_t *handle) {
        struct fixture *f = handle->data;

        f->is_timed_out = true;
}

int fixture_setup(struct fixture *f, enum watch_backend_kind kind) {
        const char *tmp = getenv("TMPDIR");
        int r;

        memset(f, 0, sizeof *f);
        if (!tmp || !*tmp)
                tmp = "/tmp";
        snprintf(f->root, sizeof f->root, "%s/quire-watch-XXXXXX", tmp);
        snprintf(f->outside, sizeof f->outside, "%s/quire-watch-outside-XXXXXX", tmp);
        if (!mkdtemp(f->root) || !mkdtemp(f->outside))
                return -errno;

        r = uv_loop_init(&f->loop);
        if (r < 0)
                return r;
        uv_timer_init(&f->loop, &f->watchdog);
        f->watchdog.data = f;

        r = watcher_new(&f->loop, kind, record_cb, f, &f->w);
        if (r < 0)
                return r;
        return watcher_add_dir(f->w, f->root);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        remove(path);
        return 0;
}

int fixture_teardown(struct fixture *f) {
        int r;

        watcher_free(f->w);
        f->w = NULL;
        uv_close((uv_handle_t *) &f->watchdog, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        r = uv_loop_close(&f->loop);
        if (r < 0)
                fprintf(stderr, "    uv_loop_close: %s\n", uv_strerror(r));

        fixture_clear(f);
        free(f->events);
        f->events = NULL;
        f->n_allocated = 0;
        nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        nftw(f->outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}

char *fixture_path(char *out, const char *base, const char *rel) {
        snprintf(out, PATH_MAX, "%s/%s", base, rel);
        return out;
}

static bool event_matches(const struct recorded_event *e, enum watch_event_kind kind, const char *path) {
        if (e->kind != kind)
                return false;
        if (!path)
                return true;
        return e->path && strcmp(e->path, path) == 0;
}

const struct recorded_event *fixture_find(const struct fixture *f, enum watch_event_kind kind, const char *path) {
        for (size_t i = 0; i < f->n_events; i++)
                if (event_matches(&f->events[i], kind, path))
                        return &f->events[i];
        return NULL;
}

size_t fixture_count(const struct fixture *f, enum watch_event_kind kind, const char *path) {
        size_t n = 0;

        for (size_t i = 0; i < f->n_events; i++)
                n += event_matches(&f->events[i], kind, path);
        return n;
}

static bool is_under(const char *path, const char *prefix) {
        size_t len = strlen(prefix);

        return path && strncmp(path, prefix, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

size_t fixture_count_under(const struct fixture *f, const char *prefix) {
        size_t n = 0;

        for (size_t i = 0; i < f->n_events; i++)
                n += is_under(f->events[i].path, prefix) || is_under(f->events[i].old_path, prefix);
        return n;
}

const struct recorded_event *fixture_wait(struct fixture *f, enum watch_event_kind kind, const char *path) {
        const struct recorded_event *e;

        f->is_timed_out = false;
        uv_timer_start(&f->watchdog, watchdog_cb, WAIT_TIMEOUT_MS, 0);
        while (!(e = fixture_find(f, kind, path)) && !f->is_timed_out)
                uv_run(&f->loop, UV_RUN_ONCE);
        uv_timer_stop(&f->watchdog);
        if (!e) {
                fprintf(stderr, "    timed out waiting for %s %s\n", kind_names[kind], path ? path : "(any)");
                fixture_dump(f);
        }
        return e;
}

bool fixture_sync(struct fixture *f) {
        char name[64], path[PATH_MAX];

        snprintf(name, sizeof name, "sync-%u", f->n_syncs++);
        fixture_path(path, f->root, name);
        if (write_file(path, "") < 0)
                return false;
        return fixture_wait(f, WATCH_CHANGED, path) != NULL;
}

void fixture_clear(struct fixture *f) {
        for (size_t i = 0; i < f->n_events; i++) {
                free(f->events[i].path);
                free(f->events[i].old_path);
        }
        f->n_events = 0;
}

bool fixture_settle(struct fixture *f) {
        bool ok = fixture_sync(f);

        fixture_clear(f);
        return ok;
}

void fixture_dump(const struct fixture *f) {
        fprintf(stderr, "    %zu events recorded:\n", f->n_events);
        for (size_t i = 0; i < f->n_events; i++) {
                const struct recorded_event *e = &f->events[i];

                fprintf(stderr, "      %s %s%s%s%s\n", kind_names[e->kind], e->old_path ? e->old_path : "",
                        e->old_path ? " -> " : "", e->path ? e->path : "", e->is_dir ? " (dir)" : "");
        }
}

int write_file(const char *path, const char *content) {
        size_t len = strlen(content);
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (len > 0 && write(fd, content, len) != (ssize_t) len)
                r = -EIO;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}
