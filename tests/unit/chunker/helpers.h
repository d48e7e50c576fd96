/* What the chunker tests and chunk-dump share: the golden-file format, the
 * per-case options, and the invariants every split must keep. */
#pragma once

#include <stdio.h>

#include "chunker.h"
#include "derive.h"
#include "document.h"
#include "macro.h"

/* Options for a golden case: the defaults, or "min N" / "max N" lines in a
 * file next to it with ".md" replaced by ".opts". Returns 0 or -errno. */
int case_options(const char *md_path, struct document_options *ret);

/* The golden format: a header, then per chunk its line range, size, hash and
 * heading path, and its content with each line behind "| ". */
void dump_document(FILE *f, const struct document *doc, const struct document_options *opts);

/* Tags and links of a chunk, one a line: "tag NAME", "fm NAME" (front
 * matter), then "wiki|embed|md LINE TARGET[#FRAGMENT]". */
void dump_derived(FILE *f, const struct derived *d);

/* The contract between the chunker and its users, checked on one document:
 * 1 <= start <= end <= line count, chunks in order and disjoint, content is
 * exactly the joined lines and hashes to content_hash, every non-blank line
 * is in a chunk, chunks start and end on non-blank lines, heading_hierarchy
 * is a JSON array of strings. Prints each violation (naming `what`) to f and
 * returns how many there were. */
int check_chunk_invariants(const struct document *doc, const char *what, FILE *f);

/* Whole file into a new NUL-terminated buffer. Returns 0 or -errno. */
int read_file(const char *path, char **ret, size_t *ret_len);

/* A chunk list freed when it goes out of scope. */
static inline void chunk_list_freep(struct chunk_list *list) {
        chunk_list_free(list);
}
#define _cleanup_chunk_list_ _cleanup_(chunk_list_freep)
