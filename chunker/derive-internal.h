/* What derive.c, tags.c and links.c share: the output being built, and the
 * recognizers derive.c's scanner calls. Not an interface outside chunker/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derive.h"

/* Longer names are not tags: a tag is a word, and a hostile 10 MB "#aaa..."
 * should not become a 10 MB row. */
#define TAG_NAME_MAX 256
/* Longer targets (or fragments) are not links: PATH_MAX is 4096. */
#define LINK_TARGET_MAX 4096
/* CommonMark's limit on a link label. */
#define LINK_LABEL_MAX 999

struct derive_out {
        struct derived d;
        size_t cap_tags, cap_links;
        /* Open addressing over d.tags: 0 is empty, else a tag index + 1. */
        uint32_t *tag_slots;
        size_t n_tag_slots; /* a power of two, at least twice n_tags */
        int r;              /* the first error; every add is a no-op after one */
};

/* Add a tag unless the chunk has it already (same bytes). */
void derive_out_tag(struct derive_out *o, const char *name, size_t n, bool is_front_matter);
/* Append a link; takes target and fragment (fragment may be NULL), frees
 * them on error. Returns its index, or SIZE_MAX after an error. */
size_t derive_out_link(struct derive_out *o, enum link_kind kind, char *target, char *fragment, uint32_t line);
void derive_out_done(struct derive_out *o);

/* tags.c */
/* Whether '#' at text[pos] may start a tag: at the start of the block, or
 * after whitespace or punctuation other than # & / \ ` ) ]. */
bool tag_may_start(const char *text, size_t begin, size_t pos);
/* The length of the tag characters at s[0..n) (what follows a '#'), and
 * whether they are a tag name: not empty, at most TAG_NAME_MAX bytes, not
 * only digits, '-' and '/'. */
size_t tag_scan(const char *s, size_t n, bool *ret_is_tag);
/* Tags of the `tags:` / `tag:` keys of front matter (the lines between
 * the two `---`). */
void tags_from_front_matter(struct derive_out *o, const char *yaml, size_t n);

/* links.c */
/* [[inner]]: target before '#' and '|', fragment between them. Returns
 * false when it is no link ([[]], [[|x]], too long). */
bool link_add_wiki(struct derive_out *o, enum link_kind kind, const char *inner, size_t n, uint32_t line);
/* The target and fragment of a Markdown destination, as written between
 * ( ) or after `[label]:` (without the < > of <dest>): backslash escapes
 * and %XX decoded. Returns 1 and newly allocated strings (fragment NULL
 * when there is none) for a local file, 0 for anything else (a scheme,
 * //host, a pure #anchor), or -ENOMEM. */
int link_markdown_parts(const char *dest, size_t n, char **ret_target, char **ret_fragment);
/* A link reference definition `[label]: dest "title"` on the line
 * s[0..n) (s[0] is '['): offsets of the label and the destination. */
bool link_parse_definition(const char *s, size_t n, size_t *ret_label, size_t *ret_label_n, size_t *ret_dest,
                           size_t *ret_dest_n);
