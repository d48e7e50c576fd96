/* See debounce.h. Entries live in a chained hash table keyed by path; the
 * one timer is armed for the earliest deadline and re-armed after each
 * flush, so the cost is O(waiting paths) per timer tick and zero when
 * nothing waits. */
#include "debounce.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct entry {
        struct entry *next;
        char *path;
        size_t root;
        uint64_t first_ms, last_ms;
};

struct debounce {
        uv_loop_t *loop;
        uv_timer_t timer;
        unsigned settle_ms, max_delay_ms;
        size_t max_entries;
        debounce_flush_cb flush_cb;
        debounce_overflow_cb overflow_cb;
        void *userdata;
        struct entry **buckets;
        size_t n_buckets, n_entries;
        uint64_t armed_for_ms; /* 0: not armed */
};

static uint64_t deadline_of(const struct debounce *d, const struct entry *e) {
        uint64_t quiet = e->last_ms + d->settle_ms, latest = e->first_ms + d->max_delay_ms;
        return quiet < latest ? quiet : latest;
}

static void timer_cb(uv_timer_t *t);

static void arm(struct debounce *d, uint64_t deadline_ms) {
        uint64_t now = uv_now(d->loop);
        if (d->armed_for_ms && d->armed_for_ms <= deadline_ms)
                return;
        d->armed_for_ms = deadline_ms;
        uv_timer_start(&d->timer, timer_cb, deadline_ms > now ? deadline_ms - now : 0, 0);
}

static int grow(struct debounce *d) {
        size_t n = d->n_buckets ? d->n_buckets * 2 : 256;
        struct entry **b = calloc(n, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_buckets; i++)
                for (struct entry *e = d->buckets[i], *next; e; e = next) {
                        next = e->next;
                        size_t k = fnv1a64(e->path, strlen(e->path)) & (n - 1);
                        e->next = b[k];
                        b[k] = e;
                }
        free(d->buckets);
        d->buckets = b;
        d->n_buckets = n;
        return 0;
}

int debounce_new(uv_loop_t *loop, unsigned settle_ms, unsigned max_delay_ms, size_t max_entries,
                 debounce_flush_cb flush_cb, debounce_overflow_cb overflow_cb, void *userdata,
                 struct debounce **ret) {
        struct debounce *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        *d = (struct debounce){
                .loop = loop,
                .settle_ms = settle_ms,
                .max_delay_ms = max_delay_ms,
                .max_entries = max_entries,
                .flush_cb = flush_cb,
                .overflow_cb = overflow_cb,
                .userdata = userdata,
        };
        if (grow(d) < 0) {
                free(d);
                return -ENOMEM;
        }
        uv_timer_init(loop, &d->timer);
        d->timer.data = d;
        *ret = d;
        return 0;
}

void debounce_set_timing(struct debounce *d, unsigned settle_ms, unsigned max_delay_ms) {
        d->settle_ms = settle_ms;
        d->max_delay_ms = max_delay_ms;
}

size_t debounce_count(const struct debounce *d) {
        return d->n_entries;
}

int debounce_mark(struct debounce *d, size_t root, const char *path) {
        uint64_t now = uv_now(d->loop);
        size_t k = fnv1a64(path, strlen(path)) & (d->n_buckets - 1);

        for (struct entry *e = d->buckets[k]; e; e = e->next)
                if (strcmp(e->path, path) == 0) {
                        e->last_ms = now;
                        e->root = root;
                        return 0;
                }
        if (d->n_entries >= d->max_entries) {
                /* Bounded: past this many, the detail is not worth keeping. */
                debounce_clear(d);
                d->overflow_cb(d->userdata);
                return 0;
        }
        if (d->n_entries >= d->n_buckets && grow(d) < 0)
                return -ENOMEM;
        struct entry *e = calloc(1, sizeof *e);
        if (!e || !(e->path = strdup(path))) {
                free(e);
                return -ENOMEM;
        }
        e->root = root;
        e->first_ms = e->last_ms = now;
        k = fnv1a64(path, strlen(path)) & (d->n_buckets - 1);
        e->next = d->buckets[k];
        d->buckets[k] = e;
        d->n_entries++;
        arm(d, deadline_of(d, e));
        return 0;
}

bool debounce_take(struct debounce *d, const char *path) {
        size_t k = fnv1a64(path, strlen(path)) & (d->n_buckets - 1);

        for (struct entry **p = &d->buckets[k]; *p; p = &(*p)->next)
                if (strcmp((*p)->path, path) == 0) {
                        struct entry *e = *p;
                        *p = e->next;
                        free(e->path);
                        free(e);
                        d->n_entries--;
                        return true;
                }
        return false;
}

uint64_t debounce_oldest_ms(const struct debounce *d) {
        uint64_t oldest = 0;

        for (size_t i = 0; i < d->n_buckets; i++)
                for (const struct entry *e = d->buckets[i]; e; e = e->next)
                        if (!oldest || e->first_ms < oldest)
                                oldest = e->first_ms;
        return oldest;
}

struct root_batch {
        size_t root;
        char **paths;
        size_t n, cap;
        uint64_t oldest_ms;
};

/* Move the entries that are due (all of them with is_all) out of the
 * table, grouped by root, and hand each group to the flush callback. */
static void flush(struct debounce *d, bool is_all) {
        uint64_t now = uv_now(d->loop), next = UINT64_MAX;
        struct root_batch *batches = NULL;
        size_t n_batches = 0;

        for (size_t i = 0; i < d->n_buckets; i++)
                for (struct entry **p = &d->buckets[i]; *p;) {
                        struct entry *e = *p;
                        uint64_t due = deadline_of(d, e);
                        if (!is_all && due > now) {
                                next = due < next ? due : next;
                                p = &e->next;
                                continue;
                        }
                        struct root_batch *b = NULL;
                        for (size_t k = 0; k < n_batches; k++)
                                if (batches[k].root == e->root)
                                        b = &batches[k];
                        if (!b) {
                                struct root_batch *nb = realloc(batches, (n_batches + 1) * sizeof *nb);
                                if (!nb)
                                        break; /* try again on the next tick */
                                batches = nb;
                                b = &batches[n_batches++];
                                *b = (struct root_batch){ .root = e->root, .oldest_ms = e->first_ms };
                        }
                        if (GREEDY_REALLOC(b->paths, b->cap, b->n + 1, 16) < 0)
                                break;
                        b->paths[b->n++] = e->path;
                        if (e->first_ms < b->oldest_ms)
                                b->oldest_ms = e->first_ms;
                        *p = e->next;
                        free(e);
                        d->n_entries--;
                }
        for (size_t k = 0; k < n_batches; k++)
                d->flush_cb(batches[k].root, batches[k].paths, batches[k].n, batches[k].oldest_ms, d->userdata);
        free(batches);

        d->armed_for_ms = 0;
        if (d->n_entries > 0) {
                if (next == UINT64_MAX)
                        next = now + 1; /* an allocation failed above: retry soon */
                arm(d, next);
        } else
                uv_timer_stop(&d->timer);
}

static void timer_cb(uv_timer_t *t) {
        struct debounce *d = t->data;
        d->armed_for_ms = 0;
        flush(d, false);
}

void debounce_flush_all(struct debounce *d) {
        flush(d, true);
}

void debounce_clear(struct debounce *d) {
        for (size_t i = 0; i < d->n_buckets; i++) {
                for (struct entry *e = d->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e->path);
                        free(e);
                }
                d->buckets[i] = NULL;
        }
        d->n_entries = 0;
        d->armed_for_ms = 0;
        uv_timer_stop(&d->timer);
}

static void close_cb(uv_handle_t *h) {
        struct debounce *d = h->data;
        free(d->buckets);
        free(d);
}

void debounce_free(struct debounce *d) {
        if (!d)
                return;
        debounce_clear(d);
        uv_close((uv_handle_t *) &d->timer, close_cb);
}
