/* .quireignore files: gitignore(5) patterns that take a subtree of a root
 * out of the index. This module parses one file and matches paths against
 * it; scan.c stacks the files of a path's ancestors (deeper ones first) and
 * the daemon keeps the parsed files in a bounded cache (ignore_cache). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define IGNORE_FILE_NAME ".quireignore"
/* A larger file is not used (one warning): patterns are a few lines. */
#define IGNORE_FILE_MAX_BYTES (256 * 1024)

/* One parsed file; reference-counted so that a cache can drop it while a
 * caller still matches against it. */
struct ignore_file;

/* Parse text (len bytes, need not be NUL-terminated) into *ret, with one
 * reference. Never fails on content (a pattern git would not match makes
 * no match here either). Returns 0 or -ENOMEM. */
int ignore_file_parse(const char *text, size_t len, struct ignore_file **ret);

/* Read and parse the .quireignore in the directory dirfd (dir names it, for
 * messages). *ret is NULL when there is none, and also when it cannot be
 * used (a symlink, not a regular file, unreadable, too large: one warning
 * line each). Returns 0 or -ENOMEM. */
int ignore_file_load(int dirfd, const char *dir, struct ignore_file **ret);
/* The same for a directory by path (absolute). */
int ignore_file_load_dir(const char *dir, struct ignore_file **ret);

struct ignore_file *ignore_file_ref(struct ignore_file *f);
void ignore_file_unref(struct ignore_file *f); /* NULL is fine */
size_t ignore_file_n_patterns(const struct ignore_file *f);

enum ignore_match {
        IGNORE_NO_MATCH, /* no pattern matches: shallower files decide */
        IGNORE_EXCLUDE,
        IGNORE_INCLUDE, /* the last match is a !negation */
};

/* The last pattern of f that matches rel, a path relative to f's directory
 * (no leading or trailing '/'), for a directory when is_dir. */
enum ignore_match ignore_file_match(const struct ignore_file *f, const char *rel, bool is_dir);

/* git's wildmatch(3) with WM_PATHNAME: '*', '?' and [...] never match '/';
 * "**" between slashes (or at either end) matches any number of
 * directories; '\' quotes the next character. Exposed for tests. */
bool ignore_glob_match(const char *glob, const char *text);

/* A bounded cache of parsed files by absolute directory path, for a process
 * that classifies single paths as events come (quired's loop thread; not
 * thread-safe). A directory without a file is cached too, so an event costs
 * no open(2) per ancestor once its ancestors are known. */
struct ignore_cache;

int ignore_cache_new(size_t max_dirs, struct ignore_cache **ret);
void ignore_cache_free(struct ignore_cache *c);

/* The file of dir (absolute, no trailing '/'), loaded on a miss, as a new
 * reference the caller drops with ignore_file_unref(); NULL when dir has
 * none. Returns 0 or -ENOMEM. */
int ignore_cache_get(struct ignore_cache *c, const char *dir, struct ignore_file **ret);

/* Forget what is known of dir (its file was created, changed or removed),
 * and with is_subtree of every directory below it too (it was moved,
 * created or removed). */
void ignore_cache_forget(struct ignore_cache *c, const char *dir, bool is_subtree);
void ignore_cache_clear(struct ignore_cache *c);

size_t ignore_cache_count(const struct ignore_cache *c);
/* open(2)s done on misses so far: for tests of the caching itself. */
unsigned long ignore_cache_loads(const struct ignore_cache *c);
