/* Walking a root: which paths are notes (DESIGN.md section 3's default
 * ignore rules), handed to a callback with their stat as they are found,
 * so work on the first notes starts while the walk goes on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct scan_counts {
        unsigned hidden;       /* a component starts with '.' */
        unsigned editor_temp;  /* *.swp, *~, 4913, ... */
        unsigned not_markdown;
        unsigned symlinks;     /* never followed */
        unsigned special;      /* FIFOs, sockets, devices */
        unsigned unreadable;   /* directories we could not list */
};

/* Called for each note found, in byte order of the paths (strcmp; SQLite's
 * BINARY order). path is root + "/"
 * + the relative path, valid during the call only; st is its lstat(). A
 * negative return stops the walk and is passed on. */
typedef int (*scan_note_cb)(const char *path, const struct stat *st, void *userdata);

/* Walk root (an absolute, symlink-free directory path) without following
 * symlinks; skipped entries are added to *counts. Unreadable directories
 * are counted and logged, not fatal. Returns 0 or -errno (-ENOMEM, the
 * root itself cannot be opened, or what note_cb returned). */
int scan_tree(const char *root, scan_note_cb note_cb, void *userdata, struct scan_counts *counts);

bool scan_name_is_hidden(const char *name);
bool scan_name_is_editor_temp(const char *name);
bool scan_name_is_markdown(const char *name);
