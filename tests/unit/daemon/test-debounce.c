/* The debounce table on a real libuv loop: a path is handed over once it
 * has been quiet for the settle time, or after the maximum delay however
 * often it changes; paths go grouped by root; the timer stops when the
 * table is empty, so an idle loop has nothing to wake it. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "debounce.h"

struct flushed {
        char *paths[64];
        size_t roots[64];
        uint64_t at_ms[64];
        uint64_t oldest_ms[64]; /* per call */
        size_t n;
        size_t n_calls;
        unsigned n_overflows;
};

static uv_loop_t loop;

static void on_flush(size_t root, char **paths, size_t n_paths, uint64_t oldest_ms, void *userdata) {
        struct flushed *f = userdata;
        if (f->n_calls < 64)
                f->oldest_ms[f->n_calls] = oldest_ms;
        f->n_calls++;
        for (size_t i = 0; i < n_paths; i++) {
                if (f->n < 64) {
                        f->paths[f->n] = paths[i];
                        f->roots[f->n] = root;
                        f->at_ms[f->n++] = uv_now(&loop);
                } else
                        free(paths[i]);
        }
        free(paths);
}

static void on_overflow(void *userdata) {
        ((struct flushed *) userdata)->n_overflows++;
}

static void flushed_done(struct flushed *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->paths[i]);
}

/* Run the loop until n paths were flushed or deadline_ms passed. */
static void run_until(struct flushed *f, size_t n, uint64_t deadline_ms) {
        uint64_t end = uv_now(&loop) + deadline_ms;
        while (f->n < n && uv_now(&loop) < end) {
                uv_run(&loop, UV_RUN_ONCE);
                uv_update_time(&loop);
        }
}

static void test_quiet_path_flushes_after_settle(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        REQUIRE(debounce_new(&loop, 20, 1000, 100, on_flush, on_overflow, &f, &d) == 0);

        uint64_t start = uv_now(&loop);
        CHECK_INT_EQ(debounce_mark(d, 0, "/r/a.md"), 0);
        CHECK_INT_EQ(debounce_mark(d, 0, "/r/a.md"), 0); /* twice: still one entry */
        CHECK_INT_EQ(debounce_count(d), 1);
        /* The age of a waiting change counts from its first event. */
        CHECK_INT_EQ(debounce_oldest_ms(d), start);
        run_until(&f, 1, 5000);
        REQUIRE_INT_EQ(f.n, 1);
        CHECK_STR_EQ(f.paths[0], "/r/a.md");
        CHECK(f.at_ms[0] - start >= 20);
        CHECK_INT_EQ(f.oldest_ms[0], start);
        CHECK_INT_EQ(debounce_count(d), 0);
        CHECK_INT_EQ(debounce_oldest_ms(d), 0);
        /* Nothing left to do: the loop has no reason to wake. */
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(!uv_loop_alive(&loop));
        flushed_done(&f);
}

static void remark_cb(uv_timer_t *t) {
        debounce_mark(t->data, 0, "/r/busy.md");
}

static void test_constant_writes_flush_at_max_delay(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        uv_timer_t writer;
        REQUIRE(debounce_new(&loop, 50, 200, 100, on_flush, on_overflow, &f, &d) == 0);

        /* A change every 10 ms never leaves 50 ms of quiet. */
        uv_timer_init(&loop, &writer);
        writer.data = d;
        uint64_t start = uv_now(&loop);
        debounce_mark(d, 0, "/r/busy.md");
        uv_timer_start(&writer, remark_cb, 10, 10);
        run_until(&f, 1, 5000);
        /* Still writing when it flushed: quiet never came, the delay cap did. */
        CHECK(uv_is_active((uv_handle_t *) &writer));
        uv_timer_stop(&writer);
        REQUIRE_INT_EQ(f.n, 1);
        CHECK(f.at_ms[0] - start >= 200);
        /* Its first change, not its last, dates the batch. */
        CHECK_INT_EQ(f.oldest_ms[0], start);
        uv_close((uv_handle_t *) &writer, NULL);
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        flushed_done(&f);
}

static void test_paths_are_grouped_by_root(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        REQUIRE(debounce_new(&loop, 10, 1000, 100, on_flush, on_overflow, &f, &d) == 0);

        debounce_mark(d, 0, "/a/1.md");
        debounce_mark(d, 1, "/b/1.md");
        debounce_mark(d, 0, "/a/2.md");
        run_until(&f, 3, 5000);
        REQUIRE_INT_EQ(f.n, 3);
        CHECK_INT_EQ(f.n_calls, 2);
        for (size_t i = 0; i < f.n; i++)
                CHECK_INT_EQ(f.roots[i], f.paths[i][1] == 'a' ? 0 : 1);
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        flushed_done(&f);
}

static void test_take_forgets_a_path(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        REQUIRE(debounce_new(&loop, 10, 1000, 100, on_flush, on_overflow, &f, &d) == 0);

        debounce_mark(d, 0, "/r/old.md");
        debounce_mark(d, 0, "/r/other.md");
        CHECK(debounce_take(d, "/r/old.md"));
        CHECK(!debounce_take(d, "/r/old.md"));
        run_until(&f, 1, 5000);
        uv_run(&loop, UV_RUN_NOWAIT);
        REQUIRE_INT_EQ(f.n, 1);
        CHECK_STR_EQ(f.paths[0], "/r/other.md");
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        flushed_done(&f);
}

static void test_too_many_paths_overflow_and_clear(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        char path[32];
        REQUIRE(debounce_new(&loop, 10, 1000, 50, on_flush, on_overflow, &f, &d) == 0);

        for (int i = 0; i < 51; i++) {
                snprintf(path, sizeof path, "/r/%d.md", i);
                debounce_mark(d, 0, path);
        }
        CHECK_INT_EQ(f.n_overflows, 1);
        CHECK_INT_EQ(debounce_count(d), 0);
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_INT_EQ(f.n, 0);
}

static void test_flush_all_hands_over_at_once(void) {
        struct flushed f = { .n = 0 };
        struct debounce *d;
        REQUIRE(debounce_new(&loop, 10000, 60000, 100, on_flush, on_overflow, &f, &d) == 0);

        debounce_mark(d, 2, "/r/x.md");
        debounce_flush_all(d);
        REQUIRE_INT_EQ(f.n, 1);
        CHECK_INT_EQ(f.roots[0], 2);
        CHECK_INT_EQ(debounce_count(d), 0);
        debounce_free(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        flushed_done(&f);
}

int main(void) {
        uv_loop_init(&loop);
        RUN(test_quiet_path_flushes_after_settle);
        RUN(test_constant_writes_flush_at_max_delay);
        RUN(test_paths_are_grouped_by_root);
        RUN(test_take_forgets_a_path);
        RUN(test_too_many_paths_overflow_and_clear);
        RUN(test_flush_all_hands_over_at_once);
        CHECK_INT_EQ(uv_loop_close(&loop), 0);
        return check_summary();
}
