/* A stand-in for quire in test_sanitizer_reports.py: it does on purpose
 * what the sanitizer builds must catch in quire and quired (a leak on an
 * error path, undefined behaviour), so that the test can show the shared
 * helpers notice when a child process reports one. Built only in sanitizer
 * builds, and linked into nothing else. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "Usage: %s clean|leak|overflow\n", argv[0]);
                return 2;
        }
        if (strcmp(argv[1], "clean") == 0) {
                char *p = malloc(64);
                free(p);
                return 0;
        }
        if (strcmp(argv[1], "leak") == 0) {
                /* Lost on the way out of an "error path": exit 1 like one. */
                char *volatile p = malloc(64);
                p[0] = 'x';
                p = NULL;
                fputs("sanitizer-probe: failed on purpose\n", stderr);
                return 1;
        }
        if (strcmp(argv[1], "overflow") == 0) {
                volatile int big = INT_MAX;
                int sum = big + argc; /* signed overflow: undefined */
                printf("%d\n", sum);
                return 0;
        }
        fprintf(stderr, "sanitizer-probe: unknown case '%s'\n", argv[1]);
        return 2;
}
