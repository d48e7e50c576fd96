/* Links between notes: what a note links to, and what links to it, with
 * each link resolved to the file it means when one exists (links.c). */
#pragma once

#include <stdint.h>

#include "store.h"

struct link_hit {
        const char *namespace;
        const char *source_file; /* the note the link is written in */
        int64_t line;            /* where, 1-based */
        const char *kind;        /* "wiki", "embed" or "markdown" */
        const char *target;      /* as written, without alias and fragment */
        const char *fragment;    /* heading or block after '#'; NULL when none */
        const char *resolved;    /* the file it means; NULL when none exists */
};

/* Called for each link; a non-zero return stops the walk and is returned. */
typedef int (*link_hit_cb)(const struct link_hit *hit, void *userdata);

/* The links written in path (in namespace ns; NULL: any), in file order. */
int store_links_from(struct store *s, const char *ns, const char *path, link_hit_cb cb, void *userdata);
/* The links that resolve to path, by source file and line. */
int store_links_to(struct store *s, const char *ns, const char *path, link_hit_cb cb, void *userdata);

/* Whether the index holds chunks of path (in namespace ns; NULL: any):
 * 1, 0, or -errno. */
int store_note_is_indexed(struct store *s, const char *ns, const char *path);
