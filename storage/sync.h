/* Making the index equal to the disk: for whole trees (walked; rows of
 * files that are gone leave) and for single paths (a daemon's settled
 * changes). Files whose size and mtime match their files row, and whose
 * inode has not changed since it was written (ctime before indexed_at), are
 * not read.
 * Loading and chunking run on reader threads beside the one writer, which
 * commits in short BEGIN IMMEDIATE batches. The quire CLI and quired both
 * index through here, so they write exactly the same rows. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "document.h"
#include "index.h"
#include "scan.h"
#include "store.h"

struct sync_options {
        const char *namespace;
        struct document_options doc;
        const struct scan_rules *rules; /* NULL: the built-in rules */
        /* The root the directories to walk belong to (each is it or below
         * it): globs and .quireignore files are those of the root's tree.
         * NULL: each directory is a root of its own. */
        const char *root;
        /* Rows at or below these directories stay whatever a walk finds
         * there: roots of this namespace that are missing with their
         * notes kept (a drive not mounted, docs/ROOTS.md) inside a tree
         * walked, or the tree walked itself (a root found again, while
         * it is being restored). Single paths and gone directories are
         * not held back. */
        char *const *kept_dirs;
        size_t n_kept_dirs;
        /* Directories that another walk of the caller's takes (a root
         * of quired's, walked under its rules): where one lies inside a
         * tree walked, this walk neither reads the notes below it nor
         * drops their rows; one around the tree is no matter. */
        char *const *left_dirs;
        size_t n_left_dirs;
        unsigned n_readers;             /* 0: CPUs - 1, at least 1 */
        /* Called on the calling thread after each commit. n_known grows while
         * the walk goes on; is_total says it has finished. */
        void (*progress_cb)(size_t n_done, size_t n_known, bool is_total, void *userdata);
        void *userdata;
        /* When set (by another thread), stop after the batch being written
         * commits and return -ECANCELED; the walk stops at its next note,
         * and a walk cut short removes no rows. May be NULL. */
        const atomic_bool *cancel;
};

struct sync_stats {
        struct index_stats index;
        struct scan_counts walk;  /* what the walk skipped */
        unsigned binary;          /* skipped: NUL bytes */
        unsigned too_large;       /* skipped: over max_file_bytes */
        unsigned not_regular;     /* skipped: FIFO, socket, symlink, ... */
        unsigned unreadable;      /* could not be read; rows kept */
        unsigned n_unchanged_by_stat;
        unsigned n_read;          /* files opened and read */
};

/* dirs: absolute, symlink-free directories to walk; rows under them whose
 * file is gone, or that the rules now skip, are removed (not those under a
 * directory the walk could not list). paths: absolute files to look at one by one
 * (gone: rows removed; a directory: walked like dirs). Adds to *stats.
 * Returns 0 or -errno; a file that cannot be read is counted, not fatal. */
int sync_run(struct store *s, const struct sync_options *opts, char *const *dirs, size_t n_dirs,
             char *const *paths, size_t n_paths, struct sync_stats *stats);
