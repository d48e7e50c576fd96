/* Walking a root: which paths are notes (DESIGN.md section 3's default
 * ignore rules, the configured globs, and the .quireignore files of the
 * tree), handed to a callback with their stat as they are found, so work on
 * the first notes starts while the walk goes on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "ignore.h"

/* What a tree holds beyond the built-in rules (hidden paths and editor
 * temp files are always skipped). */
struct scan_rules {
        char **extensions; /* without the dot, matched case-insensitively;
                            * none: md markdown mdown mkd mkdn */
        size_t n_extensions;
        char **ignore_globs; /* fnmatch(3) globs on the path relative to the
                              * root; a glob without a slash matches any
                              * name, one ending in slash-star-star a whole
                              * subtree */
        size_t n_ignore_globs;
};

/* Free the arrays of rules that own them (copies, parsed rules). */
void scan_rules_done(struct scan_rules *rules);

enum scan_verdict {
        SCAN_KEEP,        /* a note, or a directory to walk */
        SCAN_HIDDEN,      /* a component starts with '.' */
        SCAN_EDITOR_TEMP, /* *.swp, *~, #*#, 4913, ... */
        SCAN_IGNORED,     /* a .quireignore pattern or an ignore glob */
        SCAN_NOT_MARKDOWN,
        SCAN_BAD_NAME,    /* a component is not valid UTF-8: no TEXT column could hold the path */
        SCAN_TOO_LONG,    /* longer than PATH_MAX: no system call takes the path (counted unreadable) */
};

/* The verdict on rel, a path relative to its root (no leading '/'), by
 * name alone (no .quireignore is read): every component is checked for
 * hidden names. rules may be NULL for the built-in rules. */
enum scan_verdict scan_classify(const struct scan_rules *rules, const char *rel, bool is_dir);

/* The same, with the .quireignore files of root and of the directories on
 * the way to rel, as the walk would see them: a directory on the way that
 * is skipped takes rel with it. The files come from cache (loaded there on
 * a miss). */
enum scan_verdict scan_classify_path(const struct scan_rules *rules, struct ignore_cache *cache, const char *root,
                                     const char *rel, bool is_dir);

struct scan_counts {
        unsigned hidden;       /* a component starts with '.' */
        unsigned editor_temp;  /* *.swp, *~, 4913, ... */
        unsigned ignored;      /* a .quireignore pattern or an ignore glob */
        unsigned not_markdown;
        unsigned symlinks;     /* never followed */
        unsigned special;      /* FIFOs, sockets, devices */
        unsigned unreadable;   /* directories we could not list, entries we could not stat */
        unsigned bad_names;    /* names that are not UTF-8 (logged) */
};

/* Count a skip of verdict v (SCAN_KEEP counts nothing). */
void scan_count_skip(struct scan_counts *skipped, enum scan_verdict v);

/* Called for each note found, in byte order of the paths (strcmp; SQLite's
 * BINARY order). path is root + "/"
 * + the relative path, valid during the call only; st is its lstat(). A
 * negative return stops the walk and is passed on. */
typedef int (*scan_note_cb)(const char *path, const struct stat *st, void *userdata);

/* A directory the walk could not list, or an entry of one that it could
 * not stat: the notes at or below that path are unknown, not gone. */
typedef void (*scan_unreadable_cb)(const char *dir, void *userdata);

/* Walk dir, root or a directory below it, as part of root's tree (absolute,
 * symlink-free paths; dir NULL: root): the globs see paths relative to
 * root, and the .quireignore files of root and of the directories between
 * root and dir apply, as they do below. A dir that these rules skip is not
 * walked (counted once). Symlinks are not followed; skipped entries are
 * added to *counts; an ignored directory is not opened. Unreadable
 * directories (and entries that cannot be stat'ed) are counted, logged and
 * passed to unreadable_cb (may be NULL), not fatal. Returns 0 or -errno
 * (-ENOMEM, dir itself cannot be opened, or what note_cb returned). */
int scan_tree(const char *root, const char *dir, const struct scan_rules *rules, scan_note_cb note_cb,
              scan_unreadable_cb unreadable_cb, void *userdata, struct scan_counts *counts);

bool scan_name_is_hidden(const char *name);
bool scan_name_is_editor_temp(const char *name);
bool scan_name_is_markdown(const struct scan_rules *rules, const char *name);
