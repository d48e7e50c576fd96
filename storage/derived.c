/* The rows quire derives from chunks (schema version 2: chunk_tags, links,
 * chunks_cjk), kept equal to the chunks inside every write transaction.
 *
 * The invariant, kept at each commit: every chunk with seq <= derive_mark
 * has exactly its derived rows. quire's own inserts bring theirs along
 * (derived on the reader threads, staged, and joined to their chunk by the
 * unique key after the insert); chunks another program inserted have a seq
 * above the mark and are derived at the start of quire's next write
 * transaction; deletes by anyone take their rows with them through the
 * chunks_derived_ad trigger. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

static int step_done(struct store *s, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, what);
}

static void bind_key(sqlite3_stmt *st, const char *ns, const char *path, const struct chunk *c) {
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, c->content_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, c->start_line);
}

static const char *link_kind_name(enum link_kind kind) {
        switch (kind) {
        case LINK_WIKI:
                return "wiki";
        case LINK_EMBED:
                return "embed";
        case LINK_MARKDOWN:
                return "markdown";
        }
        return "markdown";
}

/* The absolute path a Markdown link names: target (already decoded by the
 * chunker) relative to the directory of source_file, with "." and ".."
 * resolved lexically (symlinks are never followed in a root). A newly
 * allocated string, or NULL on -ENOMEM. */
char *derived_link_path(const char *source_file, const char *target) {
        const char *slash = strrchr(source_file, '/');
        size_t dir_len = *target == '/' || !slash ? 0 : (size_t) (slash - source_file);
        size_t target_len = strlen(target);
        char *joined = malloc(dir_len + 1 + target_len + 2);

        if (!joined)
                return NULL;
        memcpy(joined, source_file, dir_len);
        joined[dir_len] = '/';
        memcpy(joined + dir_len + 1, target, target_len + 1);

        /* Rewrite in place, component by component: out never passes in. */
        char *out = joined;
        for (const char *in = joined; *in;) {
                while (*in == '/')
                        in++;
                const char *end = strchrnul(in, '/');
                size_t n = (size_t) (end - in);
                if (n == 0 || (n == 1 && in[0] == '.')) {
                        /* nothing */
                } else if (n == 2 && in[0] == '.' && in[1] == '.') {
                        while (out > joined && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, in, n);
                        out += n;
                }
                in = end;
        }
        if (out == joined)
                *out++ = '/';
        *out = '\0';
        return joined;
}

/* What a wiki link is matched against: the last component of its target,
 * ASCII-lowercased (Obsidian matches note names without regard to case),
 * without a ".md" suffix. A newly allocated string, or NULL on -ENOMEM. */
char *derived_note_name(const char *target) {
        const char *slash = strrchr(target, '/');
        const char *base = slash ? slash + 1 : target;
        size_t n = strlen(base);

        if (n > 3 && strcasecmp(base + n - 3, ".md") == 0)
                n -= 3;
        char *name = strndup(base, n);
        if (!name)
                return NULL;
        for (char *p = name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        return name;
}

static int stage_link(struct store *s, const char *ns, const char *path, const struct chunk *c, size_t ord,
                      const struct derived_link *l) {
        _cleanup_free_ char *target_path = NULL, *target_name = NULL;

        if (l->kind == LINK_MARKDOWN)
                target_path = derived_link_path(path, l->target);
        else if (!*l->target) /* [[#Heading]]: this very note */
                target_path = strdup(path);
        else
                target_name = derived_note_name(l->target);
        if (!target_path && !target_name)
                return -ENOMEM;

        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_STAGE_LINK);
        if (!st)
                return store_stmt_errno(s);
        bind_key(st, ns, path, c);
        sqlite3_bind_int64(st, 5, (int64_t) ord);
        sqlite3_bind_text(st, 6, link_kind_name(l->kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, l->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, l->fragment, -1, SQLITE_STATIC); /* NULL binds NULL */
        sqlite3_bind_int64(st, 9, (int64_t) l->line - c->start_line);
        sqlite3_bind_text(st, 10, target_path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, target_name, -1, SQLITE_STATIC);
        return step_done(s, st, "stage a link");
}

static int stage_cjk(struct store *s, const char *ns, const char *path, const struct chunk *c) {
        _cleanup_free_ char *path_text = NULL;
        int r;

        r = cjk_index_text(path, strlen(path), &path_text);
        if (r < 0)
                return r;
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_STAGE_CJK);
        if (!st)
                return store_stmt_errno(s);
        bind_key(st, ns, path, c);
        sqlite3_bind_text(st, 5, c->cjk_content, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, path_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, c->cjk_heading, -1, SQLITE_STATIC);
        return step_done(s, st, "stage a CJK row");
}

int derived_stage(struct store *s, const char *ns, const char *path, const struct chunk *c) {
        int r;

        for (size_t i = 0; i < c->derived.n_tags; i++) {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_STAGE_TAG);
                if (!st)
                        return store_stmt_errno(s);
                bind_key(st, ns, path, c);
                sqlite3_bind_text(st, 5, c->derived.tags[i].name, -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 6, c->derived.tags[i].is_front_matter);
                r = step_done(s, st, "stage a tag");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->derived.n_links; i++) {
                r = stage_link(s, ns, path, c, i, &c->derived.links[i]);
                if (r < 0)
                        return r;
        }
        if (c->cjk_content) {
                r = stage_cjk(s, ns, path, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

int derived_flush(struct store *s) {
        static const enum store_stmt_id flushes[] = { STMT_FLUSH_TAGS, STMT_FLUSH_LINKS, STMT_FLUSH_CJK };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(flushes); i++) {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, flushes[i]);
                if (!st)
                        return store_stmt_errno(s);
                r = step_done(s, st, "store derived rows");
                if (r < 0)
                        return r;
        }
        return store_exec(s, "DELETE FROM temp.staged_tags; DELETE FROM temp.staged_links;"
                             " DELETE FROM temp.staged_cjk",
                          "clear the derived staging tables");
}

/* Derive and stage each row st returns (columns: namespace, source_file,
 * content, content_hash, start_line, heading_hierarchy); the staged rows
 * find their chunk by its unique key. */
static int derive_rows(struct store *s, sqlite3_stmt *st, unsigned *n_derived) {
        int rc, r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *ns = (const char *) sqlite3_column_text(st, 0);
                const char *path = (const char *) sqlite3_column_text(st, 1);
                const char *content = (const char *) sqlite3_column_text(st, 2);
                int content_len = sqlite3_column_bytes(st, 2);
                const char *hash = (const char *) sqlite3_column_text(st, 3);
                int64_t start_line = sqlite3_column_int64(st, 4);
                const char *heading = (const char *) sqlite3_column_text(st, 5);

                if (!ns || !path || !content || !hash || start_line < 1 || start_line > UINT32_MAX)
                        continue; /* not a row the contract allows: nothing to derive */
                struct chunk c = {
                        .start_line = (uint32_t) start_line,
                        .content = content,
                        .content_len = (size_t) content_len,
                        .heading_hierarchy = (char *) (heading ? heading : "[]"),
                };
                snprintf(c.content_hash, sizeof c.content_hash, "%s", hash);
                r = chunk_derive(&c);
                if (r == 0)
                        r = derived_stage(s, ns, path, &c);
                chunk_derived_done(&c);
                if (r < 0)
                        return r;
                (*n_derived)++;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read chunks to derive");
}

int derived_catch_up(struct store *s) {
        int64_t mark;
        unsigned n = 0;
        int rc, r;

        {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_DERIVE_MARK_GET);
                if (!st)
                        return store_stmt_errno(s);
                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        return store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "read the derive mark");
                mark = sqlite3_column_int64(st, 0);
        }
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_DERIVE_PENDING);
        if (!st)
                return store_stmt_errno(s);
        sqlite3_bind_int64(st, 1, mark);
        r = derive_rows(s, st, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        log_debug("Derived tags, links and CJK rows of %u chunks written by others in %s", n, s->path);
        /* Now, while the staged rows still name their chunks by the key
         * they have: the diff or a rename that follows may move a chunk
         * to another line or path, and its rows would then join nothing. */
        return derived_flush(s);
}

int derived_mark_written(struct store *s) {
        _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_DERIVE_MARK_SET);
        if (!st)
                return store_stmt_errno(s);
        return step_done(s, st, "advance the derive mark");
}

int derived_forget(struct store *s, int64_t seq) {
        static const enum store_stmt_id forgets[] = { STMT_FORGET_TAGS, STMT_FORGET_LINKS, STMT_FORGET_CJK };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(forgets); i++) {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, forgets[i]);
                if (!st)
                        return store_stmt_errno(s);
                sqlite3_bind_int64(st, 1, seq);
                r = step_done(s, st, "drop derived rows");
                if (r < 0)
                        return r;
        }
        return 0;
}

int derived_after_move(struct store *s, const char *ns, const char *new_path, bool is_dir) {
        _cleanup_free_ int64_t *seqs = NULL;
        size_t n_seqs = 0, cap = 0;
        unsigned n = 0;
        int rc, r;

        /* The seqs first: their derived rows change under the query that
         * finds them, and FTS5 does not like being written under a read. */
        {
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, is_dir ? STMT_DERIVED_OF_TREE
                                                                              : STMT_DERIVED_OF_FILE);
                if (!st)
                        return store_stmt_errno(s);
                sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, new_path, -1, SQLITE_STATIC);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        if (GREEDY_REALLOC(seqs, cap, n_seqs + 1, 64) < 0)
                                return -ENOMEM;
                        seqs[n_seqs++] = sqlite3_column_int64(st, 0);
                }
                if (rc != SQLITE_DONE)
                        return store_fail(s, rc, "find the derived rows of a renamed note");
        }
        for (size_t i = 0; i < n_seqs; i++) {
                r = derived_forget(s, seqs[i]);
                if (r < 0)
                        return r;
                _cleanup_stmt_reset_ sqlite3_stmt *st = store_stmt(s, STMT_CHUNK_TO_DERIVE);
                if (!st)
                        return store_stmt_errno(s);
                sqlite3_bind_int64(st, 1, seqs[i]);
                r = derive_rows(s, st, &n);
                if (r < 0)
                        return r;
        }
        return 0;
}
