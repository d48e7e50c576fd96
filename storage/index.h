/* Keeping the rows of one file equal to its current chunks: the per-file
 * diff of DESIGN.md section 1, deletes, and the list of indexed files that
 * a scan is compared against. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "document.h"
#include "store.h"

struct token_tapes;

struct index_stats {
        unsigned files_new;
        unsigned files_changed;   /* content differed: chunks diffed */
        unsigned files_touched;   /* same bytes, new mtime or size: files row only */
        unsigned files_unchanged; /* nothing written */
        unsigned files_deleted;
        unsigned files_moved;     /* renames applied without reading */
        unsigned chunks_inserted;
        unsigned chunks_moved;   /* same content at other lines: id and counters kept */
        unsigned chunks_deleted;
};

/* One file's new state: its document, or NULL when its rows must go
 * (the file is gone, is_gone, or no longer a note). */
struct index_item {
        const char *path;
        const struct document *doc;
        /* Optional: doc's texts tokenized ahead (tokens.h), so that the
         * writer does not tokenize them itself. */
        const struct token_tapes *tapes;
        /* No doc: a file that is no note (binary, too large, not a regular
         * file), whose refusal still holds only while the path names what
         * was refused (document_load's identity). NULL: gone, or skipped
         * by the rules, which go by the path alone. */
        const struct document *refused;
        bool is_gone;
        /* Set by store_apply(): under the write lock, the path no longer
         * named what doc was read from (or, is_gone, a file was there
         * again), so the item was left alone. Read it again. */
        bool is_stale;
};

/* Make the rows of each item's (ns, path) match it, all in one BEGIN
 * IMMEDIATE transaction (retried while busy; see store_transact). A file
 * whose files row already has the document's size, mtime and hash gets no
 * write at all. An item whose file changed since it was read is skipped
 * and marked is_stale: another writer may already have indexed the newer
 * content, which must not be overwritten by the older. stats is added to
 * only when the transaction commits. */
int store_apply(struct store *s, const char *ns, struct index_item *items, size_t n_items,
                struct index_stats *stats);

/* A rename seen by a watcher: the rows of old_path (a file, or with
 * is_dir every file below the directory) now belong to new_path, keeping
 * ids and counters; rows new_path had (a file renamed over, or what
 * another writer indexed under the new name first) are dropped first. Nothing is read: the caller syncs new_path afterwards, which costs
 * a stat when size and mtime survived the rename, as they do. One
 * transaction. Adds the moved files to stats->files_moved. */
int store_move(struct store *s, const char *ns, const char *old_path, const char *new_path, bool is_dir,
               struct index_stats *stats);

/* Drop the rows of every file below directory dir (gone, or no longer
 * watched), but for those at or below one of spare (roots still
 * configured inside it). One transaction: a root leaves whole or not at
 * all (a rare write: a root taken out of the configuration). */
int store_delete_tree(struct store *s, const char *ns, const char *dir, char *const *spare, size_t n_spare,
                      struct index_stats *stats);

/* 1 if ns has rows (files or chunks) below the directory dir, else 0, or
 * -errno (logged). */
int store_tree_has_rows(struct store *s, const char *ns, const char *dir);

struct file_row {
        char *path; /* owned */
        int64_t size;
        int64_t mtime_ns;
        int64_t indexed_at_ns; /* 0 when the row's indexed_at does not parse */
};

/* The files rows of ns strictly below directory dir, and a row no stat
 * matches (size -1) for each path there that has chunks but no files
 * row, sorted by path in byte order. *ret is owned by the caller: free
 * with file_rows_free(). */
int store_list_files(struct store *s, const char *ns, const char *dir, struct file_row **ret, size_t *n_ret);
void file_rows_free(struct file_row *rows, size_t n);

/* The files row of (ns, path): 1 and its path-less fields in *ret if
 * present (a row no stat matches, size -1, when path has chunks but no
 * files row), 0 if not indexed, negative errno on failure. */
int store_file_lookup(struct store *s, const char *ns, const char *path, struct file_row *ret);

/* Whether a file whose lstat is st can be taken as unchanged since row
 * was written, without reading it: same size and mtime, and no change to
 * the inode since indexed_at (a rename, even of a file with the same size
 * and mtime over this one, sets the ctime). */
bool file_row_matches_stat(const struct file_row *row, const struct stat *st);
/* Whether an inode whose ctime is ctime_ns has not changed since
 * indexed_at_ns, allowing for the resolution of its filesystem. */
bool inode_unchanged_since(int64_t ctime_ns, int64_t indexed_at_ns);
