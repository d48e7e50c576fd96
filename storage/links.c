/* Links between notes, read from the links table (derived.c) and resolved
 * here, when asked, against the files table: a wiki link by note name the
 * way Obsidian does, a Markdown link by the path it spells. Resolving on
 * read keeps the stored rows a pure function of each chunk, and follows
 * renames for free: [[Note]] finds Note.md wherever it has moved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "index.h"
#include "links.h"
#include "store-internal.h"
#include "util.h"

/* The notes of ns a wiki link named name may mean, by path. */
struct candidates {
        char *ns, *name; /* owned: what they were looked up by */
        char **paths;    /* owned */
        size_t n;
        char *beside;    /* owned: the last attachment path tried on disk */
};

static void candidates_done(struct candidates *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->paths[i]);
        free(c->paths);
        free(c->beside);
        free(c->ns);
        free(c->name);
        *c = (struct candidates){ .name = NULL };
}

static bool candidates_are_for(const struct candidates *c, const char *ns, const char *name) {
        return c->name && strcmp(c->ns, ns) == 0 && strcmp(c->name, name) == 0;
}

/* LIKE pattern for "any path whose last component is name + suffix": '%',
 * '_' and '\' in the name are escaped with '\'. LIKE ignores ASCII case,
 * as note names do. */
static char *last_component_pattern(const char *name, const char *suffix) {
        size_t n = strlen(name), k = strlen(suffix);
        char *p = malloc(2 * n + k + 3), *o = p;

        if (!p)
                return NULL;
        *o++ = '%';
        *o++ = '/';
        for (const char *c = name; *c; c++) {
                if (*c == '%' || *c == '_' || *c == '\\')
                        *o++ = '\\';
                *o++ = *c;
        }
        memcpy(o, suffix, k + 1);
        return p;
}

/* Notes are found as name.md; a name may also be a whole file name
 * ("picture.png", or a note named with a dot). */
static int candidates_load(struct store *s, const char *ns, const char *name, struct candidates *ret) {
        _cleanup_free_ char *as_note = last_component_pattern(name, ".md");
        _cleanup_free_ char *as_file = last_component_pattern(name, "");
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        size_t cap = 0;
        int rc;

        candidates_done(ret);
        ret->ns = strdup(ns);
        ret->name = strdup(name);
        if (!ret->ns || !ret->name || !as_note || !as_file)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT path FROM files WHERE namespace = ?1"
                                " AND (path LIKE ?2 ESCAPE '\\' OR path LIKE ?3 ESCAPE '\\')"
                                " ORDER BY length(path), path",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare a note lookup");
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, as_note, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, as_file, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(ret->paths, cap, ret->n + 1, 8) < 0)
                        return -ENOMEM;
                ret->paths[ret->n] = strdup((const char *) sqlite3_column_text(st, 0));
                if (!ret->paths[ret->n])
                        return -ENOMEM;
                ret->n++;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "look up notes by name");
}

static bool ends_with_ignoring_case(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return k <= n && strcasecmp(s + n - k, suffix) == 0;
}

/* Whether path is what target ("Note", "a/Note", "a/Note.md",
 * "a/picture.png") names: path ends with "/" + target, with or without
 * ".md" after it, ignoring ASCII case. */
static bool path_ends_with_target(const char *path, const char *target) {
        size_t n = strlen(path), k = strlen(target);

        if (n >= k + 4 && ends_with_ignoring_case(path, ".md") &&
            strncasecmp(path + n - 3 - k, target, k) == 0 && path[n - 4 - k] == '/')
                return true;
        return n >= k + 1 && strcasecmp(path + n - k, target) == 0 && path[n - 1 - k] == '/';
}

static size_t dir_len(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? (size_t) (slash - path) : 0;
}

static bool is_relative_target(const char *target) {
        return strncmp(target, "./", 2) == 0 || strncmp(target, "../", 3) == 0;
}

/* The path a relative target ("../b/Note", "./pic.png", as Obsidian
 * writes links with its "relative path" setting) spells from source's
 * folder, "." and ".." taken lexically. -ENOENT when it climbs past the
 * root; newly allocated in *ret. */
static int relative_target_path(const char *source, const char *target, char **ret) {
        size_t n = dir_len(source);
        char *want = malloc(n + strlen(target) + 2);

        if (!want)
                return -ENOMEM;
        memcpy(want, source, n);
        want[n] = '\0';
        for (const char *t = target; *t;) {
                size_t k = strcspn(t, "/");
                if (k == 2 && t[0] == '.' && t[1] == '.') {
                        char *slash = strrchr(want, '/');
                        if (!slash) {
                                free(want);
                                return -ENOENT;
                        }
                        *slash = '\0';
                } else if (k > 0 && !(k == 1 && t[0] == '.')) {
                        size_t len = strlen(want);
                        want[len] = '/';
                        memcpy(want + len + 1, t, k);
                        want[len + 1 + k] = '\0';
                }
                t += k + (t[k] == '/');
        }
        *ret = want;
        return 0;
}

/* Whether path is want, with or without ".md" after it; exactly, or
 * ignoring ASCII case as names do. */
static bool path_is(const char *path, const char *want, bool ignoring_case) {
        size_t len = strlen(want);
        if ((ignoring_case ? strncasecmp(path, want, len) : strncmp(path, want, len)) != 0)
                return false;
        return path[len] == '\0' || (strlen(path) == len + 3 && ends_with_ignoring_case(path, ".md"));
}

/* Which candidate [[target]] written in source means: one whose path ends
 * with the target as written (so "[[a/Note]]" takes only a Note.md in a
 * folder a), preferring a note in source's own folder, then the shortest
 * path (candidates are sorted so); for a relative target, the one it
 * spells, its exact case first. NULL when none fits. */
static int pick_candidate(const struct candidates *c, const char *source, const char *target, const char **ret) {
        const char *best = NULL;

        *ret = NULL;
        if (is_relative_target(target)) {
                _cleanup_free_ char *want = NULL;
                int r = relative_target_path(source, target, &want);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                for (int ignoring_case = 0; ignoring_case <= 1 && !*ret; ignoring_case++)
                        for (size_t i = 0; i < c->n && !*ret; i++)
                                if (path_is(c->paths[i], want, ignoring_case))
                                        *ret = c->paths[i];
                return 0;
        }
        for (size_t i = 0; i < c->n; i++) {
                const char *p = c->paths[i];
                if (!path_ends_with_target(p, target))
                        continue;
                if (dir_len(p) == dir_len(source) && strncmp(p, source, dir_len(p)) == 0) {
                        *ret = p;
                        return 0;
                }
                if (!best)
                        best = p;
        }
        *ret = best;
        return 0;
}

/* Whether a wiki link to target written in source could mean path once
 * there is a note at path. -ENOMEM on failure. */
static int target_could_mean(const char *path, const char *source, const char *target) {
        if (!is_relative_target(target))
                return path_ends_with_target(path, target);
        _cleanup_free_ char *want = NULL;
        int r = relative_target_path(source, target, &want);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : path_is(path, want, true);
}

static bool file_is_indexed(struct store *s, const char *ns, const char *path) {
        struct file_row row;
        return store_file_lookup(s, ns, path, &row) > 0;
}

static bool exists_on_disk(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

#define LINK_COLUMNS                                                                               \
        "SELECT c.namespace, c.source_file, c.start_line + l.line_offset, l.kind, l.target, l.fragment," \
        " l.target_path, l.target_name FROM links l JOIN chunks c ON c.seq = l.seq"

struct link_row {
        const char *ns, *source_file, *kind, *target, *fragment, *target_path, *target_name;
        int64_t line;
};

static struct link_row link_row_read(sqlite3_stmt *st) {
        return (struct link_row){
                .ns = (const char *) sqlite3_column_text(st, 0),
                .source_file = (const char *) sqlite3_column_text(st, 1),
                .line = sqlite3_column_int64(st, 2),
                .kind = (const char *) sqlite3_column_text(st, 3),
                .target = (const char *) sqlite3_column_text(st, 4),
                .fragment = (const char *) sqlite3_column_text(st, 5),
                .target_path = (const char *) sqlite3_column_text(st, 6),
                .target_name = (const char *) sqlite3_column_text(st, 7),
        };
}

/* Where row points, or NULL; may (re)load *cands for its name. */
static int resolve(struct store *s, const struct link_row *row, struct candidates *cands, const char **ret) {
        *ret = NULL;
        if (row->target_path) {
                if (file_is_indexed(s, row->ns, row->target_path) || exists_on_disk(row->target_path))
                        *ret = row->target_path;
                return 0;
        }
        if (!row->target_name)
                return 0;
        if (!candidates_are_for(cands, row->ns, row->target_name)) {
                int r = candidates_load(s, row->ns, row->target_name, cands);
                if (r < 0)
                        return r;
        }
        int r = pick_candidate(cands, row->source_file, row->target, ret);
        if (r < 0 || *ret || !strchr(row->target_name, '.'))
                return r;
        /* An attachment (![[pic.png]]) is not a note, so not in files: it
         * is looked for beside the note that names it, or where a relative
         * target spells it. */
        free(TAKE_PTR(cands->beside));
        if (is_relative_target(row->target)) {
                r = relative_target_path(row->source_file, row->target, &cands->beside);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
        } else if (asprintf(&cands->beside, "%.*s/%s", (int) dir_len(row->source_file), row->source_file,
                            row->target) < 0) {
                cands->beside = NULL;
                return -ENOMEM;
        }
        if (exists_on_disk(cands->beside))
                *ret = cands->beside;
        return 0;
}

static int report(const struct link_row *row, const char *resolved, link_hit_cb cb, void *userdata) {
        struct link_hit hit = {
                .namespace = row->ns,
                .source_file = row->source_file,
                .line = row->line,
                .kind = row->kind,
                .target = row->target,
                .fragment = row->fragment,
                .resolved = resolved,
        };
        return cb(&hit, userdata);
}

static int require_links_table(struct store *s) {
        if (s->has_derived)
                return 0;
        return log_error_errno(EPROTONOSUPPORT,
                               "No links in %s yet: it was written by an older quire; run 'quire index' once",
                               s->path);
}

int store_links_from(struct store *s, const char *ns, const char *path, link_hit_cb cb, void *userdata) {
        _cleanup_(candidates_done) struct candidates cands = { .name = NULL };
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = require_links_table(s);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(s->db,
                                LINK_COLUMNS " WHERE c.source_file = ?2 AND (?1 IS NULL OR c.namespace = ?1)"
                                " ORDER BY c.namespace, c.start_line, l.ord",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare the links query");
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct link_row row = link_row_read(st);
                const char *resolved;
                r = resolve(s, &row, &cands, &resolved);
                if (r == 0)
                        r = report(&row, resolved, cb, userdata);
                if (r != 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read links");
}

int store_note_is_indexed(struct store *s, const char *ns, const char *path) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        /* files, not chunks: an empty note has a row and no chunk. */
        int rc = sqlite3_prepare_v2(s->db,
                                    "SELECT EXISTS (SELECT 1 FROM files WHERE path = ?2 AND (?1 IS NULL OR namespace = ?1))",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare the note lookup");
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "look up a note");
        return sqlite3_column_int(st, 0);
}

int store_links_to(struct store *s, const char *ns, const char *path, link_hit_cb cb, void *userdata) {
        _cleanup_(candidates_done) struct candidates cands = { .name = NULL };
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *name = NULL;
        int rc, r;

        r = require_links_table(s);
        if (r < 0)
                return r;
        name = derived_note_name(path);
        if (!name)
                return -ENOMEM;
        /* Both indexes: Markdown links by the path they spell, wiki links
         * by the note name; which of the latter mean this very note is
         * decided by resolve(), as for any link. */
        rc = sqlite3_prepare_v2(s->db,
                                LINK_COLUMNS " WHERE (l.target_path = ?2 OR l.target_name = ?3)"
                                " AND (?1 IS NULL OR c.namespace = ?1)"
                                " ORDER BY c.namespace, c.source_file, c.start_line + l.line_offset, l.ord",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare the backlinks query");
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        /* A note the index does not hold (not written yet, or not indexed
         * yet): the links that will mean it once it is (a Markdown link
         * spelling its path; a wiki link that finds no note now and whose
         * target could name it), reported unresolved. */
        int is_indexed = store_note_is_indexed(s, ns, path);
        if (is_indexed < 0)
                return is_indexed;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct link_row row = link_row_read(st);
                const char *resolved;
                r = resolve(s, &row, &cands, &resolved);
                if (r < 0)
                        return r;
                bool is_to_path = resolved && strcmp(resolved, path) == 0;
                if (!is_to_path && (is_indexed || resolved))
                        continue;
                if (!is_to_path && !row.target_path) {
                        r = target_could_mean(path, row.source_file, row.target);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                }
                r = report(&row, resolved, cb, userdata);
                if (r != 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read backlinks");
}
