/* greedy_realloc: the capacity doubles from its minimum and never shrinks,
 * elements survive the moves, and a size that cannot be allocated (or
 * whose byte count overflows) is -ENOMEM with the array untouched.
 * random_id: well-formed, never repeated across pool refills, and a forked
 * child does not hand out the ids its parent will. timestamp_ns: exact in
 * range, held at the ends of int64_t past them (no signed overflow). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "util.h"

struct pair {
        int64_t a, b;
};

static void test_capacity_doubles_from_its_minimum(void) {
        struct pair *items = NULL;
        size_t cap = 0;

        CHECK_INT_EQ(GREEDY_REALLOC(items, cap, 1, 4), 0);
        REQUIRE(items);
        CHECK_INT_EQ(cap, 4);
        /* Room already there: nothing moves. */
        struct pair *before = items;
        CHECK_INT_EQ(GREEDY_REALLOC(items, cap, 4, 4), 0);
        CHECK(items == before);
        CHECK_INT_EQ(cap, 4);
        CHECK_INT_EQ(GREEDY_REALLOC(items, cap, 5, 4), 0);
        CHECK_INT_EQ(cap, 8);
        /* A jump past the double goes to the next power of two times it. */
        CHECK_INT_EQ(GREEDY_REALLOC(items, cap, 33, 4), 0);
        CHECK_INT_EQ(cap, 64);
        /* Asking for less never shrinks. */
        CHECK_INT_EQ(GREEDY_REALLOC(items, cap, 2, 4), 0);
        CHECK_INT_EQ(cap, 64);
        free(items);
}

static void test_elements_survive_growth(void) {
        struct pair *items = NULL;
        size_t n = 0, cap = 0;

        for (int64_t i = 0; i < 10000; i++) {
                REQUIRE(GREEDY_REALLOC(items, cap, n + 1, 16) == 0);
                items[n++] = (struct pair){ i, -i };
        }
        CHECK_INT_EQ(cap, 16384);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++)
                wrong += items[i].a != (int64_t) i || items[i].b != -(int64_t) i;
        CHECK_INT_EQ(wrong, 0);
        free(items);
}

static void test_impossible_sizes_leave_the_array_alone(void) {
        char *bytes = NULL;
        size_t cap = 0;

        REQUIRE(GREEDY_REALLOC(bytes, cap, 10, 64) == 0);
        memcpy(bytes, "kept", 5);
        char *before = bytes;
        /* Doubling past SIZE_MAX, then a byte count past it. */
        CHECK_INT_EQ(GREEDY_REALLOC(bytes, cap, SIZE_MAX, 64), -ENOMEM);
        struct pair *items = NULL;
        size_t items_cap = 0;
        CHECK_INT_EQ(GREEDY_REALLOC(items, items_cap, SIZE_MAX / 8, 1), -ENOMEM);
        CHECK(items == NULL);
        CHECK_INT_EQ(items_cap, 0);
        CHECK(bytes == before);
        CHECK_INT_EQ(cap, 64);
        CHECK(strcmp(bytes, "kept") == 0);
        free(bytes);
}

/* The published FNV-1a 64 test vectors: the socket names and the state
 * file's check line depend on the exact function. */
static void test_fnv1a64_is_fnv1a(void) {
        CHECK(fnv1a64("", 0) == UINT64_C(0xcbf29ce484222325));
        CHECK(fnv1a64("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
        CHECK(fnv1a64("foobar", 6) == UINT64_C(0x85944171f73967e8));
        /* Bytes, not a C string: a NUL counts. */
        CHECK(fnv1a64("a\0b", 3) != fnv1a64("a", 1));
}

#define N_IDS 1000 /* several pools' worth */

static int cmp_id(const void *a, const void *b) {
        return strcmp(a, b);
}

static bool is_lower_hex_id(const char *id) {
        if (strlen(id) != RANDOM_ID_LEN - 1)
                return false;
        for (const char *p = id; *p; p++)
                if (!strchr("0123456789abcdef", *p))
                        return false;
        return true;
}

static void test_random_ids_are_hex_and_distinct(void) {
        static char ids[N_IDS][RANDOM_ID_LEN];

        for (size_t i = 0; i < N_IDS; i++) {
                REQUIRE(random_id(ids[i]) == 0);
                CHECK(is_lower_hex_id(ids[i]));
        }
        qsort(ids, N_IDS, sizeof *ids, cmp_id);
        size_t n_repeats = 0;
        for (size_t i = 1; i < N_IDS; i++)
                n_repeats += strcmp(ids[i - 1], ids[i]) == 0;
        CHECK_INT_EQ(n_repeats, 0);
}

static void test_forked_child_makes_other_ids(void) {
        char parent_id[RANDOM_ID_LEN], child_id[RANDOM_ID_LEN] = "";
        int pipe_fds[2];

        /* The pool holds ids for later now. */
        REQUIRE(random_id(parent_id) == 0);
        REQUIRE(pipe(pipe_fds) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
                char id[RANDOM_ID_LEN];
                int ok = random_id(id) == 0 && write(pipe_fds[1], id, sizeof id) == (ssize_t) sizeof id;
                _exit(ok ? 0 : 1);
        }
        close(pipe_fds[1]);
        CHECK_INT_EQ(read(pipe_fds[0], child_id, sizeof child_id), (ssize_t) sizeof child_id);
        close(pipe_fds[0]);
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        REQUIRE(random_id(parent_id) == 0);
        CHECK(is_lower_hex_id(child_id));
        /* The parent's next id is the one a copied pool would have given
         * the child. */
        CHECK(strcmp(parent_id, child_id) != 0);
}

static void test_timestamp_ns_is_exact_in_range_and_held_past_it(void) {
        CHECK(timestamp_ns(0, 0) == 0);
        CHECK(timestamp_ns(1700000000, 123456789) == INT64_C(1700000000123456789));
        CHECK(timestamp_ns(-1, 999999999) == -1); /* 1969-12-31T23:59:59.999999999 */
        CHECK(timestamp_ns(INT64_MAX / 1000000000, 0) == INT64_MAX / 1000000000 * 1000000000);
        /* 2300-01-01 (touch -d can set it) and 1600-01-01. */
        CHECK(timestamp_ns(10413792000, 0) == INT64_MAX);
        CHECK(timestamp_ns(-11676096000, 0) == INT64_MIN);
        /* The last second in range, plus nanoseconds that pass the end. */
        CHECK(timestamp_ns(INT64_MAX / 1000000000, 999999999) == INT64_MAX);
        CHECK(timestamp_ns(INT64_MIN / 1000000000, -999999999) == INT64_MIN);
}

int main(void) {
        RUN(test_capacity_doubles_from_its_minimum);
        RUN(test_elements_survive_growth);
        RUN(test_impossible_sizes_leave_the_array_alone);
        RUN(test_fnv1a64_is_fnv1a);
        RUN(test_random_ids_are_hex_and_distinct);
        RUN(test_forked_child_makes_other_ids);
        RUN(test_timestamp_ns_is_exact_in_range_and_held_past_it);
        return check_summary();
}
