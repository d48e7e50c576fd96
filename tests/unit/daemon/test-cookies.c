/* The sync cookie table: a cookie is acknowledged once the barrier it
 * waits for is reached, in arrival order; a barrier with no cookie behind
 * it (the one after a retry) acknowledges nothing; deferred cookies wait
 * for the later barrier; the acknowledged names are the last
 * COOKIES_ACKED_MAX. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cookies.h"

static bool acked(const struct cookie_table *t, const char *name) {
        const char *const *names;
        size_t n = cookie_table_acked(t, &names);
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return true;
        return false;
}

static void test_barrier_without_cookies_acks_nothing(void) {
        struct cookie_table *t = NULL;
        REQUIRE(cookie_table_new(&t) == 0);
        CHECK_INT_EQ(cookie_table_ack(t, 7), 0);
        cookie_table_defer(t, 9);
        CHECK_INT_EQ(cookie_table_ack(t, 9), 0);
        const char *const *names;
        CHECK_INT_EQ(cookie_table_acked(t, &names), 0);
        cookie_table_free(t);
}

static void test_cookies_are_acked_in_order_of_their_barriers(void) {
        struct cookie_table *t = NULL;
        REQUIRE(cookie_table_new(&t) == 0);
        CHECK_INT_EQ(cookie_table_add(t, "a", 1), 0);
        CHECK_INT_EQ(cookie_table_add(t, "b", 2), 0);
        CHECK(cookie_table_knows(t, "a"));
        CHECK(!cookie_table_knows(t, "c"));
        CHECK_INT_EQ(cookie_table_ack(t, 1), 1);
        CHECK(acked(t, "a"));
        CHECK(!acked(t, "b"));
        CHECK_INT_EQ(cookie_table_ack(t, 2), 1);
        CHECK(acked(t, "b"));
        CHECK(cookie_table_knows(t, "b"));
        cookie_table_free(t);
}

static void test_deferred_cookies_wait_for_the_later_barrier(void) {
        struct cookie_table *t = NULL;
        REQUIRE(cookie_table_new(&t) == 0);
        CHECK_INT_EQ(cookie_table_add(t, "early", 1), 0);
        CHECK_INT_EQ(cookie_table_add(t, "late", 5), 0);
        cookie_table_defer(t, 3);
        /* Barrier 1 is reached, but "early" waits for 3 now. */
        CHECK_INT_EQ(cookie_table_ack(t, 2), 0);
        CHECK(!acked(t, "early"));
        CHECK_INT_EQ(cookie_table_ack(t, 3), 1);
        CHECK(acked(t, "early"));
        /* A later cookie keeps its own, later barrier. */
        CHECK(!acked(t, "late"));
        CHECK_INT_EQ(cookie_table_ack(t, 5), 1);
        CHECK(acked(t, "late"));
        cookie_table_free(t);
}

static void test_only_the_last_acked_names_are_kept(void) {
        struct cookie_table *t = NULL;
        char name[32];
        REQUIRE(cookie_table_new(&t) == 0);
        for (unsigned i = 0; i < COOKIES_ACKED_MAX + 10; i++) {
                snprintf(name, sizeof name, "c%u", i);
                REQUIRE(cookie_table_add(t, name, i + 1) == 0);
        }
        CHECK_INT_EQ(cookie_table_ack(t, COOKIES_ACKED_MAX + 10), COOKIES_ACKED_MAX + 10);
        const char *const *names;
        CHECK_INT_EQ(cookie_table_acked(t, &names), COOKIES_ACKED_MAX);
        CHECK(!acked(t, "c0"));
        CHECK(!acked(t, "c9"));
        CHECK(acked(t, "c10"));
        snprintf(name, sizeof name, "c%u", COOKIES_ACKED_MAX + 9);
        CHECK(acked(t, name));
        cookie_table_free(t);
}

static void test_too_many_waiting_are_refused(void) {
        struct cookie_table *t = NULL;
        char name[32];
        REQUIRE(cookie_table_new(&t) == 0);
        for (unsigned i = 0; i < COOKIES_PENDING_MAX; i++) {
                snprintf(name, sizeof name, "w%u", i);
                REQUIRE(cookie_table_add(t, name, 1) == 0);
        }
        CHECK_INT_EQ(cookie_table_add(t, "one-too-many", 1), -ENOBUFS);
        CHECK(!cookie_table_knows(t, "one-too-many"));
        cookie_table_free(t);
}

int main(void) {
        RUN(test_barrier_without_cookies_acks_nothing);
        RUN(test_cookies_are_acked_in_order_of_their_barriers);
        RUN(test_deferred_cookies_wait_for_the_later_barrier);
        RUN(test_only_the_last_acked_names_are_kept);
        RUN(test_too_many_waiting_are_refused);
        return check_summary();
}
