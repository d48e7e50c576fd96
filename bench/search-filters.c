/* In-process cost of quire search's filters and output modes: runs
 * store_search() on an existing index (bench/run's tldr one, say) for a
 * few queries, each bare and with each filter, and prints p50/p99 per case
 * as a Markdown table (CPU time of the search, hit callbacks included).
 * Run on demand:
 *     build-bench/bench/search-filters INDEX.db [RUNS]
 * Every hit is checked for staleness as quire search does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search.h"
#include "store.h"
#include "macro.h"
#include "util.h"

struct bench_case {
        const char *name;
        struct search_query q;
};

struct hit_count {
        unsigned n_hits, n_stale;
};

static int count_hit(const struct search_hit *h, void *userdata) {
        struct hit_count *c = userdata;
        c->n_hits++;
        c->n_stale += search_hit_is_stale(h);
        return 0;
}

/* CPU time of this thread: on a shared machine, wall time mostly measures
 * the other processes. */
static uint64_t thread_cpu_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        static const char *const words[] = { "tar", "file", "\"list files\"", "git*" };
        struct bench_case cases[] = {
                { "no filter", { .limit = 10 } },
                { "--namespace default", { .limit = 10, .namespace = "default" } },
                { "--path '*/linux/*'", { .limit = 10, .path_glob = "*/*/linux/*" } },
                { "--path (matches nothing)", { .limit = 10, .path_glob = "*/nosuchdir/*" } },
                { "--heading git", { .limit = 10, .heading = "git" } },
                { "--heading (matches nothing)", { .limit = 10, .heading = "no such heading" } },
                { "all three", { .limit = 10, .namespace = "default", .path_glob = "*/*/linux/*", .heading = "git" } },
                { "--offset 100", { .limit = 10, .offset = 100 } },
                { "--vimgrep (match position)", { .limit = 10, .skip_snippet = true, .want_match_position = true } },
        };
        struct store *s = NULL;
        unsigned runs = argc > 2 ? (unsigned) atoi(argv[2]) : 200;

        if (argc < 2 || runs == 0) {
                fprintf(stderr, "Usage: %s INDEX.db [RUNS]\n", argv[0]);
                return 2;
        }
        if (store_open(argv[1], &(struct store_options){ .flags = STORE_READONLY }, &s) < 0)
                return 1;
        size_t n_cases = ELEMENTSOF(words) * ELEMENTSOF(cases);
        uint64_t *t = calloc(n_cases * runs, sizeof *t);
        unsigned *n_hits = calloc(n_cases, sizeof *n_hits);
        if (!t || !n_hits)
                return 1;

        /* Round-robin over the cases, so that noise from other processes
         * hits all of them alike. */
        for (unsigned i = 0; i < runs; i++)
                for (size_t k = 0; k < n_cases; k++) {
                        struct search_query q = cases[k % ELEMENTSOF(cases)].q;
                        struct hit_count count = { 0 };
                        q.match = words[k / ELEMENTSOF(cases)];
                        if (!q.skip_snippet)
                                q.highlight_open = q.highlight_close = "**";
                        uint64_t t0 = thread_cpu_usec();
                        if (store_search(s, &q, count_hit, &count) < 0)
                                return 1;
                        t[k * runs + i] = thread_cpu_usec() - t0;
                        n_hits[k] = count.n_hits;
                }

        printf("| query | case | hits | p50 ms | p90 ms |\n|---|---|---|---|---|\n");
        for (size_t k = 0; k < n_cases; k++) {
                uint64_t *v = t + k * runs;
                qsort(v, runs, sizeof *v, cmp_u64);
                printf("| `%s` | %s | %u | %.3f | %.3f |\n", words[k / ELEMENTSOF(cases)],
                       cases[k % ELEMENTSOF(cases)].name, n_hits[k], (double) v[runs / 2] / 1000,
                       (double) v[(runs * 9) / 10] / 1000);
        }
        free(t);
        free(n_hits);
        store_close(s);
        return 0;
}
