/* Walking a root: which paths are notes (DESIGN.md section 3's default
 * ignore rules) and their size and mtime, in the byte order the files
 * table sorts by, so a scan and the index can be merged in one pass. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scan_entry {
        char *path; /* owned: root + "/" + relative path */
        int64_t size;
        int64_t mtime_ns;
};

struct scan_counts {
        unsigned hidden;       /* a component starts with '.' */
        unsigned editor_temp;  /* *.swp, *~, 4913, ... */
        unsigned not_markdown;
        unsigned symlinks;     /* never followed */
        unsigned special;      /* FIFOs, sockets, devices */
        unsigned unreadable;   /* directories we could not list */
};

struct scan_result {
        struct scan_entry *entries; /* owned, sorted by path (strcmp) */
        size_t n_entries;
        struct scan_counts skipped;
};

/* Walk root (an absolute, symlink-free directory path) without following
 * symlinks. Unreadable directories are counted and logged, not fatal.
 * Returns 0 or -errno (-ENOMEM, or the root itself cannot be opened). */
int scan_tree(const char *root, struct scan_result *ret);
void scan_result_done(struct scan_result *r);

bool scan_name_is_hidden(const char *name);
bool scan_name_is_editor_temp(const char *name);
bool scan_name_is_markdown(const char *name);
