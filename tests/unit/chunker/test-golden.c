/* Golden files: every cases/NAME.md (argv[1] is the cases directory) must
 * chunk to exactly cases/NAME.expected in chunk-dump's format, and keep the
 * chunker's invariants. Each .expected was reviewed by hand against the
 * rules in docs/CHUNKER.md; regenerate with chunk-dump and review the diff. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "document.h"
#include "helpers.h"
#include "macro.h"

static const char *cases_dir;
static char current_md[4096];

/* Print where two outputs part, line by line, so a failure reads at once. */
static void print_first_difference(const char *actual, const char *expected) {
        size_t line = 1;

        while (*actual && *actual == *expected) {
                line += *actual == '\n';
                actual++, expected++;
        }
        while (line > 1 && actual[-1] != '\n')
                actual--, expected--;
        fprintf(stderr, "    first difference at line %zu:\n", line);
        fprintf(stderr, "    actual:   %.*s\n", (int) strcspn(actual, "\n"), actual);
        fprintf(stderr, "    expected: %.*s\n", (int) strcspn(expected, "\n"), expected);
}

static void test_case_matches_expected(void) {
        _cleanup_free_ char *expected_path = NULL, *expected = NULL, *actual = NULL;
        struct document_options opts;
        struct document doc;
        size_t expected_len, actual_len = 0;
        FILE *f;

        REQUIRE_INT_EQ(case_options(current_md, &opts), 0);
        REQUIRE_INT_EQ(document_load(AT_FDCWD, current_md, &opts, &doc), 0);

        CHECK_INT_EQ(check_chunk_invariants(&doc, current_md, stderr), 0);

        f = open_memstream(&actual, &actual_len);
        REQUIRE(f);
        dump_document(f, &doc, &opts);
        fclose(f);
        document_done(&doc);

        size_t n = strlen(current_md);
        expected_path = malloc(n - 3 + sizeof ".expected");
        REQUIRE(expected_path);
        memcpy(expected_path, current_md, n - 3);
        strcpy(expected_path + n - 3, ".expected");
        int r = read_file(expected_path, &expected, &expected_len);
        if (r < 0) {
                fprintf(stderr, "    Failed to read %s: %s\n", expected_path, strerror(-r));
                CHECK(r == 0);
                return;
        }
        if (actual_len != expected_len || memcmp(actual, expected, actual_len) != 0) {
                CHECK(!"output equals the .expected file");
                print_first_difference(actual, expected);
                fprintf(stderr, "    to see it all: chunk-dump %s | diff -u %s -\n", current_md,
                        expected_path);
        }
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv) {
        char *names[256];
        size_t n_names = 0;
        DIR *d;

        cases_dir = argc > 1 ? argv[1] : "cases";
        d = opendir(cases_dir);
        if (!d) {
                fprintf(stderr, "Failed to open %s: %m\n", cases_dir);
                return 1;
        }
        for (struct dirent *de; (de = readdir(d));) {
                size_t n = strlen(de->d_name);
                if (n > 3 && strcmp(de->d_name + n - 3, ".md") == 0 && n_names < ELEMENTSOF(names))
                        names[n_names++] = strdup(de->d_name);
        }
        closedir(d);
        qsort(names, n_names, sizeof names[0], compare_names);

        for (size_t i = 0; i < n_names; i++) {
                snprintf(current_md, sizeof current_md, "%s/%s", cases_dir, names[i]);
                check_run(names[i], test_case_matches_expected);
                free(names[i]);
        }
        if (n_names < 20) {
                fprintf(stderr, "only %zu cases found in %s\n", n_names, cases_dir);
                return 1;
        }
        return check_summary();
}
