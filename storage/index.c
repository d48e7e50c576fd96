/* The per-file diff. A chunk whose content survives keeps its row (its id,
 * created_at and usage counters) even when it moved; only vanished chunks
 * are deleted and only new ones inserted, with INSERT OR IGNORE so that a
 * peer that inserted the same chunk first simply wins.
 *
 * Deletes and inserts are staged in two TEMP tables and applied by one
 * statement each at the end of the transaction. The reason is FTS5: it
 * flushes its pending terms into a new segment at every statement
 * savepoint, and each row-by-row INSERT through the chunks_ai trigger is
 * such a statement. One statement per batch lets FTS5 write one segment
 * instead of thousands (cold index of the tldr corpus: 2.2 s -> 1.3 s). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index.h"
#include "roots.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

struct old_chunk {
        int64_t seq;
        char hash[HASH_HEX_LEN];
        int64_t start_line, end_line;
        char *heading_hierarchy;
};

struct old_chunks {
        struct old_chunk *items;
        size_t n;
};

static void old_chunks_free(struct old_chunks *o) {
        for (size_t i = 0; i < o->n; i++)
                free(o->items[i].heading_hierarchy);
        free(o->items);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s) {
        return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int64_t timestamp_ns_or_zero(const char *text) {
        int64_t ns;
        return utc_timestamp_parse(text, &ns) < 0 ? 0 : ns;
}

/* The resolution of the filesystem that wrote a timestamp, as far as the
 * timestamp shows it: a time in whole seconds comes from FAT (2 s), ext4
 * with small inodes, HFS+ or a share that keeps seconds; one in tens of
 * milliseconds from exFAT. Read from its trailing decimal zeros, so a
 * fine timestamp that happens to end in zeros only costs a re-read of a
 * file changed within that much of its indexing. */
static int64_t timestamp_resolution_ns(int64_t t_ns) {
        int64_t nsec = t_ns % 1000000000, res = 1;

        if (nsec < 0)
                nsec += 1000000000;
        if (nsec == 0)
                return 2000000000;
        while (nsec % (res * 10) == 0)
                res *= 10;
        return res;
}

bool inode_unchanged_since(int64_t ctime_ns, int64_t indexed_at_ns) {
        /* A change at or after indexed_at gets a ctime of at least
         * indexed_at less the resolution (it is cut down to it; indexed_at
         * comes from the inode clock, utc_timestamp_now_coarse()): only a
         * ctime a whole resolution before indexed_at vouches for the row.
         * On whole seconds, a change in the second of the indexing was
         * taken for the file as indexed, for good. */
        int64_t res = timestamp_resolution_ns(ctime_ns);
        return ctime_ns < INT64_MAX - res && ctime_ns + res <= indexed_at_ns;
}

bool file_row_matches_stat(const struct file_row *row, const struct stat *st) {
        int64_t mtime_ns = timestamp_ns(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        int64_t ctime_ns = timestamp_ns(st->st_ctim.tv_sec, st->st_ctim.tv_nsec);

        return row->size == st->st_size && row->mtime_ns == mtime_ns &&
               inode_unchanged_since(ctime_ns, row->indexed_at_ns);
}

/* 1 and the files row (without its path) and its hash if present, 0 if
 * not, or -errno. */
static int file_get(struct store *s, const char *ns, const char *path, struct file_row *row,
                    char hash[HASH_HEX_LEN]) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_FILE_GET);
        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, path);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "look up a file");
        *row = (struct file_row){
                .size = sqlite3_column_int64(st, 0),
                .mtime_ns = sqlite3_column_int64(st, 1),
                .indexed_at_ns = timestamp_ns_or_zero((const char *) sqlite3_column_text(st, 3)),
        };
        if (hash) {
                const char *h = (const char *) sqlite3_column_text(st, 2);
                snprintf(hash, HASH_HEX_LEN, "%s", h ? h : "");
        }
        return 1;
}

static int has_rows(struct store *s, const char *ns, const char *path, bool is_dir);

/* What stands for the files row of a path that has chunks but none: a
 * legacy database's, or a writer's that stored none. No stat matches it,
 * so the file is read if it is there and its chunks go if it is not. */
static const struct file_row unfiled_row = { .size = -1, .mtime_ns = -1 };

int store_file_lookup(struct store *s, const char *ns, const char *path, struct file_row *ret) {
        int r = file_get(s, ns, path, ret, NULL);
        if (r == 0 && (r = has_rows(s, ns, path, false)) > 0)
                *ret = unfiled_row;
        return r;
}

static int load_old_chunks(struct store *s, const char *ns, const char *path, struct old_chunks *ret) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_CHUNKS_OF_FILE);
        size_t cap = 0;
        int rc;

        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, path);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(ret->items, cap, ret->n + 1, 16) < 0)
                        return -ENOMEM;
                struct old_chunk *o = &ret->items[ret->n];
                const char *h = (const char *) sqlite3_column_text(st, 1);
                const char *hier = (const char *) sqlite3_column_text(st, 4);
                o->seq = sqlite3_column_int64(st, 0);
                snprintf(o->hash, sizeof o->hash, "%s", h ? h : "");
                o->start_line = sqlite3_column_int64(st, 2);
                o->end_line = sqlite3_column_int64(st, 3);
                o->heading_hierarchy = strdup(hier ? hier : "[]");
                if (!o->heading_hierarchy)
                        return -ENOMEM;
                ret->n++;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read the chunks of a file");
}

/* Sort keys for matching: (hash, start_line) on both sides. */
static int cmp_old(const void *a, const void *b, void *base) {
        const struct old_chunk *items = base;
        const struct old_chunk *x = &items[*(const size_t *) a], *y = &items[*(const size_t *) b];
        int c = strcmp(x->hash, y->hash);
        return c ? c : (x->start_line > y->start_line) - (x->start_line < y->start_line);
}

static int cmp_new(const void *a, const void *b, void *base) {
        const struct chunk *items = base;
        const struct chunk *x = &items[*(const size_t *) a], *y = &items[*(const size_t *) b];
        int c = strcmp(x->content_hash, y->content_hash);
        return c ? c : (x->start_line > y->start_line) - (x->start_line < y->start_line);
}

/* For each new chunk, the index of the old row it keeps, or SIZE_MAX for
 * an insert. Within a group of equal content, rows at the same line are
 * paired first, then the rest in line order: so a paragraph repeated
 * twice keeps both rows, and a moved one keeps its own. */
static int match_chunks(const struct old_chunks *old, const struct chunk_list *new, size_t *match_of_new,
                        bool *old_is_kept) {
        _cleanup_free_ size_t *oi = malloc((old->n + 1) * sizeof *oi);
        _cleanup_free_ size_t *ni = malloc((new->n_items + 1) * sizeof *ni);
        if (!oi || !ni)
                return -ENOMEM;
        for (size_t i = 0; i < old->n; i++)
                oi[i] = i;
        for (size_t i = 0; i < new->n_items; i++) {
                ni[i] = i;
                match_of_new[i] = SIZE_MAX;
        }
        if (old->n > 1)
                qsort_r(oi, old->n, sizeof *oi, cmp_old, old->items);
        if (new->n_items > 1)
                qsort_r(ni, new->n_items, sizeof *ni, cmp_new, new->items);

        size_t a = 0, b = 0;
        while (a < old->n && b < new->n_items) {
                int c = strcmp(old->items[oi[a]].hash, new->items[ni[b]].content_hash);
                if (c < 0) {
                        a++;
                        continue;
                }
                if (c > 0) {
                        b++;
                        continue;
                }
                size_t a_end = a, b_end = b;
                const char *h = new->items[ni[b]].content_hash;
                while (a_end < old->n && strcmp(old->items[oi[a_end]].hash, h) == 0)
                        a_end++;
                while (b_end < new->n_items && strcmp(new->items[ni[b_end]].content_hash, h) == 0)
                        b_end++;

                /* Pass 1: same start line (both runs are sorted by it). */
                for (size_t x = a, y = b; x < a_end && y < b_end;) {
                        int64_t ls = old->items[oi[x]].start_line, rs = new->items[ni[y]].start_line;
                        if (ls < rs)
                                x++;
                        else if (ls > rs)
                                y++;
                        else {
                                match_of_new[ni[y]] = oi[x];
                                old_is_kept[oi[x]] = true;
                                x++, y++;
                        }
                }
                /* Pass 2: pair the leftovers in line order. */
                for (size_t x = a, y = b; x < a_end && y < b_end;) {
                        if (old_is_kept[oi[x]])
                                x++;
                        else if (match_of_new[ni[y]] != SIZE_MAX)
                                y++;
                        else {
                                match_of_new[ni[y]] = oi[x];
                                old_is_kept[oi[x]] = true;
                                x++, y++;
                        }
                }
                a = a_end;
                b = b_end;
        }
        return 0;
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, what);
}

static int chunk_stage_delete(struct store *s, int64_t seq) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_STAGE_DELETE);
        if (!st)
                return store_stmt_errno(s);
        sqlite3_bind_int64(st, 1, seq);
        return step_done(s, st, "stage a chunk delete");
}

static int chunk_move(struct store *s, const char *ns, const char *path, const struct old_chunk *o,
                      const struct chunk *c, const char *now) {
        bool heading_changed = strcmp(o->heading_hierarchy, c->heading_hierarchy) != 0;
        int r;

        /* What is derived from a chunk depends on its content, its heading
         * (the CJK row holds it) and whether it starts the file (front
         * matter), not on its lines: links keep their offset in the chunk. */
        if (heading_changed || (o->start_line == 1) != (c->start_line == 1)) {
                r = derived_forget(s, o->seq);
                if (r == 0)
                        r = derived_stage(s, ns, path, c);
                if (r < 0)
                        return r;
        }
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, heading_changed ? STMT_CHUNK_MOVE_HEADING
                                                                              : STMT_CHUNK_MOVE);
        if (!st)
                return store_stmt_errno(s);
        sqlite3_bind_int64(st, 1, o->seq);
        sqlite3_bind_int64(st, 2, c->start_line);
        sqlite3_bind_int64(st, 3, c->end_line);
        bind_text(st, 4, now);
        if (heading_changed)
                bind_text(st, 5, c->heading_hierarchy);
        return step_done(s, st, "move a chunk");
}

static int chunk_stage_insert(struct store *s, const char *ns, const char *path, const struct chunk *c,
                              const char *now) {
        int r = staged_chunk_add(s, ns, path, c, now);
        if (r < 0)
                return r;
        return derived_stage(s, ns, path, c);
}

/* Written by flush_staged(), with the batch's other files rows. */
static int file_upsert(struct store *s, const char *ns, const char *path, const struct document *doc,
                       const char *now) {
        return staged_file_add(s, ns, path, doc, now);
}

/* has_rows false: the caller knows the file has no rows yet. */
static int diff_chunks(struct store *s, const char *ns, const char *path, const struct document *doc, bool has_rows,
                       const char *now, struct index_stats *stats) {
        _cleanup_(old_chunks_free) struct old_chunks old = { 0 };
        const struct chunk_list *new = &doc->chunks;
        int r;

        if (has_rows) {
                r = load_old_chunks(s, ns, path, &old);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ size_t *match_of_new = malloc((new->n_items + 1) * sizeof *match_of_new);
        _cleanup_free_ bool *old_is_kept = calloc(old.n + 1, sizeof *old_is_kept);
        if (!match_of_new || !old_is_kept)
                return -ENOMEM;
        r = match_chunks(&old, new, match_of_new, old_is_kept);
        if (r < 0)
                return r;

        /* Deletes first: they free the unique keys that moves and inserts
         * may be about to take. */
        for (size_t i = 0; i < old.n; i++) {
                if (old_is_kept[i])
                        continue;
                r = chunk_stage_delete(s, old.items[i].seq);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < new->n_items; i++) {
                const struct chunk *c = &new->items[i];
                if (match_of_new[i] == SIZE_MAX)
                        continue;
                const struct old_chunk *o = &old.items[match_of_new[i]];
                if (o->start_line == c->start_line && o->end_line == c->end_line &&
                    strcmp(o->heading_hierarchy, c->heading_hierarchy) == 0)
                        continue;
                r = chunk_move(s, ns, path, o, c, now);
                if (r < 0)
                        return r;
                stats->chunks_moved++;
        }
        for (size_t i = 0; i < new->n_items; i++) {
                if (match_of_new[i] != SIZE_MAX)
                        continue;
                r = chunk_stage_insert(s, ns, path, &new->items[i], now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* is_new: the caller checked, under the write lock, that (ns, path) has
 * neither a files row nor chunks. */
static int index_document(struct store *s, const char *ns, const char *path, const struct document *doc,
                          bool is_new, const char *now, struct index_stats *stats) {
        char old_hash[HASH_HEX_LEN] = "";
        struct file_row old = { .size = -1, .mtime_ns = -1 };
        int r;

        r = is_new ? 0 : file_get(s, ns, path, &old, old_hash);
        if (r < 0)
                return r;
        bool is_known = r > 0;

        if (is_known && strcmp(old_hash, doc->file_hash) == 0) {
                if (old.size == doc->size && old.mtime_ns == doc->mtime_ns) {
                        stats->files_unchanged++;
                        /* Read only because the inode changed since it was
                         * indexed (a chmod, a rename that kept the bytes):
                         * a new indexed_at lets the next stat skip it. */
                        if (doc->ino != 0 && !inode_unchanged_since(doc->ctime_ns, old.indexed_at_ns))
                                return file_upsert(s, ns, path, doc, now);
                        return 0;
                }
                /* Same bytes: the upsert rewrites size, mtime and
                 * indexed_at and leaves the hash as it was. */
                stats->files_touched++;
                return file_upsert(s, ns, path, doc, now);
        }

        r = diff_chunks(s, ns, path, doc, !is_new, now, stats);
        if (r < 0)
                return r;
        r = file_upsert(s, ns, path, doc, now);
        if (r < 0)
                return r;
        if (is_known)
                stats->files_changed++;
        else
                stats->files_new++;
        return 0;
}

static int delete_file(struct store *s, const char *ns, const char *path, struct index_stats *stats) {
        bool had_chunks;
        int r;
        {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_STAGE_DELETE_FILE);
                if (!st)
                        return store_stmt_errno(s);
                bind_text(st, 1, ns);
                bind_text(st, 2, path);
                r = step_done(s, st, "stage the delete of a file's chunks");
                if (r < 0)
                        return r;
                had_chunks = sqlite3_changes(s->db) > 0;
        }
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_FILE_DELETE);
        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, path);
        r = step_done(s, st, "delete a file");
        if (r < 0)
                return r;
        /* Or its chunks alone: a writer stored no files row for them. */
        stats->files_deleted += had_chunks || sqlite3_changes(s->db) > 0;
        return 0;
}

/* Apply what diff_chunks() and delete_file() staged: deletes first, so
 * that inserts may take the unique keys they free. */
static int flush_staged(struct store *s, struct index_stats *stats) {
        _cleanup_stmt_reset_ sqlite3_stmt *del = store_stmt(s, STMT_FLUSH_DELETES), *ins = NULL;
        int r;

        /* One after the other: both fail alike on a damaged FTS index,
         * which is one line to say. */
        if (!del || !(ins = store_stmt(s, STMT_FLUSH_INSERTS)))
                return store_stmt_errno(s);
        r = step_done(s, del, "delete chunks");
        if (r < 0)
                return r;
        stats->chunks_deleted += (unsigned) sqlite3_changes(s->db);
        r = step_done(s, ins, "insert chunks");
        if (r < 0) {
                staged_rows_clear(s);
                return r;
        }
        stats->chunks_inserted += (unsigned) sqlite3_changes(s->db);
        _cleanup_stmt_reset_ sqlite3_stmt *files = store_stmt(s, STMT_FLUSH_FILES);
        r = files ? step_done(s, files, "record files") : store_stmt_errno(s);
        staged_rows_clear(s);
        if (r < 0)
                return r;
        r = derived_flush(s);
        if (r < 0)
                return r;
        return store_exec(s, "DELETE FROM temp.staged_deletes", "clear the staging table");
}

struct apply_args {
        const char *ns;
        struct index_item *items;
        size_t n_items;
        const bool *is_repeat;
        const char *first_path, *last_path; /* of all items, in byte order */
        struct index_stats stats; /* of the attempt in progress */
};

/* Whether no files row and no chunk of ns lies in [first, last]: then
 * every file of a batch within those paths is new, and two index range
 * probes replace two lookups per file (a cold index is all new files). */
static int range_is_empty(struct store *s, const char *ns, const char *first, const char *last) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_RANGE_IS_EMPTY);
        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, first);
        bind_text(st, 3, last);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "probe for indexed files");
        return sqlite3_column_int(st, 0);
}

/* Whether path still names the inode seen (struct document's identity),
 * unchanged since. */
static bool names_same_inode(const char *path, const struct document *seen) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return false;
        return st.st_ino == seen->ino && st.st_dev == seen->dev && st.st_size == seen->size &&
               timestamp_ns(st.st_mtim.tv_sec, st.st_mtim.tv_nsec) == seen->mtime_ns &&
               timestamp_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) == seen->ctime_ns;
}

/* Whether the path still names what the item was made from: the inode
 * doc was read from, or refused, unchanged since (or, is_gone, still no
 * file). Asked under the write lock, so the answer holds until the commit
 * for every writer: a change after this point lands after our indexed_at,
 * and the next stat of the file reads it again. */
static bool item_is_current(const struct index_item *it) {
        const struct document *seen = it->doc ? it->doc : it->refused;
        struct stat st;

        if (seen && seen->ino != 0)
                return names_same_inode(it->path, seen);
        if (it->doc) /* parsed from memory: nothing to compare */
                return true;
        if (!it->refused && !it->is_gone) /* skipped by the rules, which go by the path */
                return true;
        /* Gone, or refused before it was open (a symlink, a socket, a
         * path into a symlink loop): still no note there. */
        int k = lstat(it->path, &st);
        return lstat_says_gone(k, errno, &st);
}

static int apply_tx(struct store *s, void *userdata) {
        struct apply_args *a = userdata;
        char now[UTC_TIMESTAMP_LEN];
        int r;

        a->stats = (struct index_stats){ 0 };
        staged_rows_clear(s); /* an attempt that was rolled back staged them */
        utc_timestamp_now_coarse(now);
        r = derived_catch_up(s);
        if (r < 0)
                return r;
        r = range_is_empty(s, a->ns, a->first_path, a->last_path);
        if (r < 0)
                return r;
        bool all_new = r > 0;
        for (size_t i = 0; i < a->n_items; i++) {
                struct index_item *it = &a->items[i];
                it->is_stale = !item_is_current(it);
                if (it->is_stale)
                        continue;
                /* A path seen before in this batch must see the rows its
                 * earlier occurrence wrote, not the staged ones. */
                if (a->is_repeat[i]) {
                        r = flush_staged(s, &a->stats);
                        if (r < 0)
                                return r;
                }
                r = it->doc ? index_document(s, a->ns, it->path, it->doc, all_new && !a->is_repeat[i], now,
                                             &a->stats)
                            : delete_file(s, a->ns, it->path, &a->stats);
                if (r < 0)
                        return r;
        }
        r = flush_staged(s, &a->stats);
        if (r < 0)
                return r;
        return derived_mark_written(s);
}

static int cmp_item_path(const void *a, const void *b, void *items) {
        const struct index_item *it = items;
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        int c = strcmp(it[x].path, it[y].path);
        return c ? c : (x > y) - (x < y);
}

int store_apply(struct store *s, const char *ns, struct index_item *items, size_t n_items,
                struct index_stats *stats) {
        int r;

        if (n_items == 0)
                return 0;
        _cleanup_free_ size_t *order = malloc(n_items * sizeof *order);
        _cleanup_free_ bool *is_repeat = calloc(n_items, sizeof *is_repeat);
        if (!order || !is_repeat)
                return -ENOMEM;
        for (size_t i = 0; i < n_items; i++)
                order[i] = i;
        qsort_r(order, n_items, sizeof *order, cmp_item_path, items);
        for (size_t i = 1; i < n_items; i++)
                is_repeat[order[i]] = strcmp(items[order[i]].path, items[order[i - 1]].path) == 0;

        struct apply_args a = {
                .ns = ns,
                .items = items,
                .n_items = n_items,
                .is_repeat = is_repeat,
                .first_path = items[order[0]].path,
                .last_path = items[order[n_items - 1]].path,
        };
        if (s->replay)
                for (size_t i = 0; i < n_items; i++)
                        if (items[i].tapes)
                                token_replay_add(s->replay, items[i].tapes);
        r = store_transact(s, apply_tx, &a);
        staged_rows_clear(s); /* they point into items */
        if (s->replay)
                token_replay_clear(s->replay);
        if (r < 0)
                return r;
        stats->files_new += a.stats.files_new;
        stats->files_changed += a.stats.files_changed;
        stats->files_touched += a.stats.files_touched;
        stats->files_unchanged += a.stats.files_unchanged;
        stats->files_deleted += a.stats.files_deleted;
        stats->chunks_inserted += a.stats.chunks_inserted;
        stats->chunks_moved += a.stats.chunks_moved;
        stats->chunks_deleted += a.stats.chunks_deleted;
        return 0;
}

struct move_args {
        const char *ns, *old_path, *new_path;
        bool is_dir;
        unsigned n_moved;
};

/* The rows below directory dir go (they are staged; flush_staged() applies
 * the chunk deletes). With new_dir, only those whose path under the
 * name new_dir already has rows. */
static int delete_tree_rows(struct store *s, const char *ns, const char *dir, const char *new_dir) {
        static const enum store_stmt_id ids[] = { STMT_STAGE_DELETE_TREE, STMT_DELETE_TREE_FILES };
        static const enum store_stmt_id ids_taken[] = { STMT_STAGE_DELETE_TREE_TAKEN, STMT_DELETE_TREE_FILES_TAKEN };

        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, new_dir ? ids_taken[i] : ids[i]);
                if (!st)
                        return store_stmt_errno(s);
                bind_text(st, 1, ns);
                bind_text(st, 2, dir);
                if (new_dir)
                        bind_text(st, 3, new_dir);
                int r = step_done(s, st, "drop the rows below a directory");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* 1 if path (a file, or any path below a directory) has rows, else 0. */
static int has_rows(struct store *s, const char *ns, const char *path, bool is_dir) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, is_dir ? STMT_TREE_HAS_ROWS : STMT_FILE_HAS_ROWS);
        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, path);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "look for the rows of a path");
        return sqlite3_column_int(st, 0) != 0;
}

int store_tree_has_rows(struct store *s, const char *ns, const char *dir) {
        return has_rows(s, ns, dir, true);
}

/* Whether path's rows were written after it got its present name: its
 * files row matches what is on disk now, and the rename (which set the
 * ctime) came before the indexing. */
static int rows_are_current(struct store *s, const char *ns, const char *path) {
        struct file_row row;
        char hash[HASH_HEX_LEN];
        struct stat st;

        int r = file_get(s, ns, path, &row, hash);
        if (r <= 0)
                return r;
        return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && file_row_matches_stat(&row, &st);
}

/* How a rename reaches the rows, when the move is at last applied (the
 * event may be old by then, and other writers at work since):
 * - nothing under the old name: someone has been here already, and the
 *   new name keeps whatever it has (the sync that follows every move
 *   checks it);
 * - a file whose new name holds rows indexed after the rename: those are
 *   the file as it is now, and the old name's rows just go;
 * - a directory: below a new name nothing was renamed over (rename(2)
 *   wants an empty target), so whatever has rows there was indexed after
 *   the rename and stays, and the old name's rows for those paths go;
 * - else the new name's rows are those of a file renamed over, stale,
 *   and give way to the moved ones. */
static int move_tx(struct store *s, void *userdata) {
        struct move_args *m = userdata;
        struct index_stats ignored = { 0 };
        int r;

        m->n_moved = 0;
        r = derived_catch_up(s);
        if (r < 0)
                return r;
        r = has_rows(s, m->ns, m->old_path, m->is_dir);
        if (r <= 0)
                return r;
        if (m->is_dir)
                r = delete_tree_rows(s, m->ns, m->old_path, m->new_path);
        else {
                r = rows_are_current(s, m->ns, m->new_path);
                if (r >= 0)
                        r = delete_file(s, m->ns, r > 0 ? m->old_path : m->new_path, &ignored);
        }
        if (r == 0)
                r = flush_staged(s, &ignored);
        if (r < 0)
                return r;
        for (int which = 0; which < 2; which++) {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(
                        s, m->is_dir ? (which ? STMT_MOVE_TREE_FILES : STMT_MOVE_TREE_CHUNKS)
                                     : (which ? STMT_MOVE_FILE_FILES : STMT_MOVE_FILE_CHUNKS));
                if (!st)
                        return store_stmt_errno(s);
                bind_text(st, 1, m->ns);
                bind_text(st, 2, m->old_path);
                bind_text(st, 3, m->new_path);
                r = step_done(s, st, "move rows to a new path");
                if (r < 0)
                        return r;
                if (which)
                        m->n_moved = (unsigned) sqlite3_changes(s->db);
        }
        r = derived_after_move(s, m->ns, m->new_path, m->is_dir);
        if (r == 0)
                r = flush_staged(s, &ignored);
        if (r < 0)
                return r;
        return derived_mark_written(s);
}

int store_move(struct store *s, const char *ns, const char *old_path, const char *new_path, bool is_dir,
               struct index_stats *stats) {
        struct move_args m = { .ns = ns, .old_path = old_path, .new_path = new_path, .is_dir = is_dir };
        int r = store_transact(s, move_tx, &m);
        if (r < 0)
                return r;
        stats->files_moved += m.n_moved;
        return 0;
}

int store_delete_tree(struct store *s, const char *ns, const char *dir, char *const *spare, size_t n_spare,
                      struct index_stats *stats) {
        struct file_row *rows = NULL;
        size_t n_rows = 0, n_items = 0;
        int r;

        r = store_list_files(s, ns, dir, &rows, &n_rows);
        if (r < 0)
                return r;
        _cleanup_free_ struct index_item *items = calloc(n_rows + 1, sizeof *items);
        if (!items) {
                file_rows_free(rows, n_rows);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_rows; i++) {
                bool is_spared = false;
                for (size_t k = 0; k < n_spare && !is_spared; k++)
                        is_spared = root_covers(spare[k], rows[i].path);
                if (!is_spared)
                        items[n_items++].path = rows[i].path;
        }
        r = store_apply(s, ns, items, n_items, stats);
        file_rows_free(rows, n_rows);
        return r;
}

void file_rows_free(struct file_row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(rows[i].path);
        free(rows);
}

static int file_row_cmp_path(const void *a, const void *b) {
        return strcmp(((const struct file_row *) a)->path, ((const struct file_row *) b)->path);
}

/* Appends the paths below dir that have chunks but no files row to
 * rows[0..n) (sorted), keeping the whole sorted: there are none but in
 * a database other writers shared, so the merge is rarely needed. */
static int add_unfiled_rows(struct store *s, const char *ns, const char *dir, struct file_row **rows, size_t *n,
                            size_t *cap) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_UNFILED_UNDER);
        size_t n_filed = *n;
        int rc;

        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, dir);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(*rows, *cap, *n + 1, 16) < 0)
                        return -ENOMEM;
                (*rows)[*n] = unfiled_row;
                (*rows)[*n].path = strdup((const char *) sqlite3_column_text(st, 0));
                if (!(*rows)[*n].path)
                        return -ENOMEM;
                (*n)++;
        }
        if (rc != SQLITE_DONE)
                return store_fail(s, rc, "list the chunks without a files row");
        if (*n > n_filed)
                qsort(*rows, *n, sizeof **rows, file_row_cmp_path);
        return 0;
}

int store_list_files(struct store *s, const char *ns, const char *dir, struct file_row **ret, size_t *n_ret) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_FILES_UNDER);
        struct file_row *rows = NULL;
        size_t n = 0, cap = 0;
        int rc, r;

        if (!st)
                return store_stmt_errno(s);
        bind_text(st, 1, ns);
        bind_text(st, 2, dir);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(rows, cap, n + 1, 256) < 0) {
                        file_rows_free(rows, n);
                        return -ENOMEM;
                }
                rows[n].path = strdup((const char *) sqlite3_column_text(st, 0));
                rows[n].size = sqlite3_column_int64(st, 1);
                rows[n].mtime_ns = sqlite3_column_int64(st, 2);
                rows[n].indexed_at_ns = timestamp_ns_or_zero((const char *) sqlite3_column_text(st, 3));
                if (!rows[n].path) {
                        file_rows_free(rows, n);
                        return -ENOMEM;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                file_rows_free(rows, n);
                return store_fail(s, rc, "list indexed files");
        }
        r = add_unfiled_rows(s, ns, dir, &rows, &n, &cap);
        if (r < 0) {
                file_rows_free(rows, n);
                return r;
        }
        *ret = rows;
        *n_ret = n;
        return 0;
}
