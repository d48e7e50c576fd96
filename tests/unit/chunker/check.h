/* A tiny assert-style harness for the chunker tests: CHECK* report the
 * failing file:line and carry on, REQUIRE* also leave the test, RUN runs one
 * test function, check_summary() is main's exit status. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_tests_run;
static int check_tests_failed;
static int check_tests_skipped;
static bool check_test_skipped;

static inline void check_fail(const char *file, int line, const char *func, const char *what) {
        fprintf(stderr, "%s:%d: %s: %s\n", file, line, func, what);
        check_failures++;
}

/* Bytes as a C string literal, so a mismatch in invisible bytes shows. */
static inline void check_print_bytes(const char *label, const void *data, size_t len) {
        const unsigned char *p = data;

        fprintf(stderr, "    %s (%zu bytes): \"", label, len);
        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\n')
                        fputs("\\n", stderr);
                else if (p[i] == '"' || p[i] == '\\')
                        fprintf(stderr, "\\%c", p[i]);
                else if (p[i] < 0x20 || p[i] >= 0x7F)
                        fprintf(stderr, "\\x%02X", p[i]);
                else
                        fputc(p[i], stderr);
        }
        fputs("\"\n", stderr);
}

#define CHECK(cond)                                                                  \
        do {                                                                         \
                if (!(cond))                                                         \
                        check_fail(__FILE__, __LINE__, __func__, "CHECK(" #cond ")"); \
        } while (0)

#define REQUIRE(cond)                                                                  \
        do {                                                                           \
                if (!(cond)) {                                                         \
                        check_fail(__FILE__, __LINE__, __func__, "REQUIRE(" #cond ")"); \
                        return;                                                        \
                }                                                                      \
        } while (0)

#define CHECK_INT_EQ(actual, expected)                                                           \
        do {                                                                                     \
                long long _a = (long long) (actual), _e = (long long) (expected);                \
                if (_a != _e) {                                                                  \
                        check_fail(__FILE__, __LINE__, __func__, #actual " == " #expected);      \
                        fprintf(stderr, "    actual %lld, expected %lld\n", _a, _e);             \
                }                                                                                \
        } while (0)

#define REQUIRE_INT_EQ(actual, expected)                                                         \
        do {                                                                                     \
                long long _a = (long long) (actual), _e = (long long) (expected);                \
                if (_a != _e) {                                                                  \
                        check_fail(__FILE__, __LINE__, __func__, #actual " == " #expected);      \
                        fprintf(stderr, "    actual %lld, expected %lld\n", _a, _e);             \
                        return;                                                                  \
                }                                                                                \
        } while (0)

#define CHECK_MEM_EQ(actual, actual_len, expected, expected_len)                                 \
        do {                                                                                     \
                const void *_a = (actual), *_e = (expected);                                     \
                size_t _al = (actual_len), _el = (expected_len);                                 \
                if (_al != _el || memcmp(_a, _e, _al) != 0) {                                    \
                        check_fail(__FILE__, __LINE__, __func__, #actual " == " #expected);      \
                        check_print_bytes("actual", _a, _al);                                    \
                        check_print_bytes("expected", _e, _el);                                  \
                }                                                                                \
        } while (0)

#define CHECK_STR_EQ(actual, expected)                                                           \
        do {                                                                                     \
                const char *_as = (actual), *_es = (expected);                                   \
                CHECK_MEM_EQ(_as, strlen(_as), _es, strlen(_es));                                \
        } while (0)

/* Leave the test, counted as skipped, saying why. */
#define SKIP(...)                                                          \
        do {                                                               \
                printf("  skip %s: ", __func__);                           \
                printf(__VA_ARGS__);                                       \
                printf("\n");                                              \
                check_test_skipped = true;                                 \
                return;                                                    \
        } while (0)

static inline void check_run(const char *name, void (*test)(void)) {
        int before = check_failures;

        check_test_skipped = false;
        test();
        check_tests_run++;
        if (check_failures != before) {
                check_tests_failed++;
                printf("FAIL %s\n", name);
        } else if (check_test_skipped) {
                check_tests_skipped++;
                printf("skip %s\n", name);
        } else
                printf("ok   %s\n", name);
        fflush(stdout);
}

#define RUN(test) check_run(#test, test)

/* 0 when every test passed; meson reads 77 as "skipped". */
static inline int check_summary(void) {
        printf("%d tests, %d failed, %d skipped\n", check_tests_run, check_tests_failed,
               check_tests_skipped);
        if (check_tests_failed > 0)
                return 1;
        if (check_tests_run > 0 && check_tests_skipped == check_tests_run)
                return 77;
        return 0;
}
