/* See cookies.h. Waiting cookies are a FIFO array (barrier seqs grow in
 * the order cookies arrive, so the acknowledged ones are always a prefix);
 * acknowledged names are a ring of the last COOKIES_ACKED_MAX. */
#include "cookies.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct pending_cookie {
        char *name;
        uint64_t seq;
};

struct cookie_table {
        struct pending_cookie *pending;
        size_t n_pending, cap_pending;
        char *acked[COOKIES_ACKED_MAX]; /* oldest first */
        size_t n_acked;
};

int cookie_table_new(struct cookie_table **ret) {
        *ret = calloc(1, sizeof **ret);
        return *ret ? 0 : -ENOMEM;
}

void cookie_table_free(struct cookie_table *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_pending; i++)
                free(t->pending[i].name);
        free(t->pending);
        for (size_t i = 0; i < t->n_acked; i++)
                free(t->acked[i]);
        free(t);
}

bool cookie_table_knows(const struct cookie_table *t, const char *name) {
        for (size_t i = 0; i < t->n_pending; i++)
                if (strcmp(t->pending[i].name, name) == 0)
                        return true;
        for (size_t i = 0; i < t->n_acked; i++)
                if (strcmp(t->acked[i], name) == 0)
                        return true;
        return false;
}

int cookie_table_add(struct cookie_table *t, const char *name, uint64_t seq) {
        if (t->n_pending >= COOKIES_PENDING_MAX)
                return -ENOBUFS;
        if (GREEDY_REALLOC(t->pending, t->cap_pending, t->n_pending + 1, 8) < 0)
                return -ENOMEM;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        t->pending[t->n_pending++] = (struct pending_cookie){ .name = copy, .seq = seq };
        return 0;
}

static void push_acked(struct cookie_table *t, char *name) {
        if (t->n_acked == COOKIES_ACKED_MAX) {
                free(t->acked[0]);
                memmove(t->acked, t->acked + 1, (COOKIES_ACKED_MAX - 1) * sizeof *t->acked);
                t->n_acked--;
        }
        t->acked[t->n_acked++] = name;
}

size_t cookie_table_ack(struct cookie_table *t, uint64_t done_seq) {
        size_t n = 0;

        while (n < t->n_pending && t->pending[n].seq <= done_seq) {
                push_acked(t, t->pending[n].name);
                n++;
        }
        if (n == 0) /* pending may be NULL: a barrier without cookies */
                return 0;
        memmove(t->pending, t->pending + n, (t->n_pending - n) * sizeof *t->pending);
        t->n_pending -= n;
        return n;
}

void cookie_table_defer(struct cookie_table *t, uint64_t seq) {
        for (size_t i = 0; i < t->n_pending; i++)
                if (t->pending[i].seq < seq)
                        t->pending[i].seq = seq;
}

size_t cookie_table_acked(const struct cookie_table *t, const char *const **ret) {
        *ret = (const char *const *) t->acked;
        return t->n_acked;
}
