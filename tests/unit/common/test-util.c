/* greedy_realloc: the capacity doubles from its minimum and never shrinks,
 * elements survive the moves, and a size that cannot be allocated (or
 * whose byte count overflows) is -ENOMEM with the array untouched. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

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

int main(void) {
        RUN(test_capacity_doubles_from_its_minimum);
        RUN(test_elements_survive_growth);
        RUN(test_impossible_sizes_leave_the_array_alone);
        RUN(test_fnv1a64_is_fnv1a);
        return check_summary();
}
