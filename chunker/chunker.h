/* Markdown -> chunks with exact line ranges and heading paths.
 *
 * The chunker works on normalized text (see text.h): valid UTF-8, no BOM,
 * every line ended by '\n' except possibly the last. A chunk's content is
 * then a contiguous slice of that text (lines start_line..end_line joined
 * with '\n', no trailing newline), so chunks point into the text instead of
 * copying it. No SQLite, no libuv here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "derive.h"
#include "hash.h"

/* Defaults: see docs/CHUNKER.md for why these sizes suit notes. */
#define CHUNKER_MIN_BYTES_DEFAULT 256
#define CHUNKER_MAX_BYTES_DEFAULT 2048

struct chunker_options {
        size_t min_bytes; /* sections smaller than this merge with what follows; 0 = default */
        size_t max_bytes; /* sections larger than this split at block boundaries; 0 = default */
};

struct chunk {
        uint32_t start_line; /* 1-based, inclusive */
        uint32_t end_line;   /* inclusive */
        const char *content; /* points into the normalized text; not NUL-terminated */
        size_t content_len;
        char content_hash[HASH_HEX_LEN]; /* XXH3-128 of content, 32 hex + NUL */
        char *heading_hierarchy;         /* owned: JSON array of strings, e.g. ["A","B"] */
        /* Filled by chunk_derive() (document_parse and document_load call it,
         * on the reader threads, so the writer only stores the results): */
        struct derived derived; /* owned: tags and links in content */
        char *cjk_content;      /* owned: cjk_index_text() of content, NULL unless content */
        char *cjk_heading;      /*   or heading_hierarchy holds CJK; the same of heading_hierarchy */
};

struct chunk_list {
        struct chunk *items; /* owned */
        size_t n_items;
};

/* Split normalized text into chunks. opts may be NULL for the defaults.
 * Returns 0 (an empty text yields zero chunks), -ENOMEM, or -EFBIG for a
 * text of more than INT_MAX lines (cmark counts lines in an int). */
int chunker_split(const char *text, size_t len, const struct chunker_options *opts,
                  struct chunk_list *ret);

void chunk_list_free(struct chunk_list *list);

/* Fill the derived fields of c from its content, start_line and
 * heading_hierarchy (which must be set; heading_hierarchy may be NULL for
 * "[]"). Returns 0 or -ENOMEM (then c holds no derived data). */
int chunk_derive(struct chunk *c);
/* Free what chunk_derive() filled in; c keeps its other fields. */
void chunk_derived_done(struct chunk *c);
