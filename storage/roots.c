/* See roots.h. A root is a row (namespace, path, indexed_at, config, rules),
 * indexed_at being when it was first recorded: recording it again writes
 * nothing, so that an unchanged re-index still commits no write at all. A
 * root goes only with its notes (quired dropping one it no longer
 * configures): a directory that is gone is skipped by whoever reads the
 * list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "log.h"
#include "roots.h"
#include "store-internal.h"
#include "util.h"

struct add_root {
        const char *ns, *path;
        const char *indexed_at;
        bool is_quired;
        const char *config, *rules;
};

static int add_root_fn(struct store *s, void *userdata) {
        const struct add_root *a = userdata;
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO roots(namespace, path, indexed_at, config, rules)"
                                " VALUES (?1, ?2, ?3, ?5, ?6)"
                                " ON CONFLICT(namespace, path) DO UPDATE SET config = excluded.config,"
                                " rules = excluded.rules"
                                " WHERE ?4 AND (config IS NOT excluded.config OR rules IS NOT excluded.rules)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare recording a root");
        sqlite3_bind_text(st, 1, a->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->indexed_at, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, a->is_quired);
        sqlite3_bind_text(st, 5, a->config, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, a->rules, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return store_fail(s, rc, "record a root");
        return 0;
}

static int forget_root_fn(struct store *s, void *userdata) {
        const struct add_root *a = userdata;
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db, "DELETE FROM roots WHERE namespace = ?1 AND path = ?2", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare forgetting a root");
        sqlite3_bind_text(st, 1, a->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->path, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return store_fail(s, rc, "forget a root");
        return 0;
}

/* 1 if the root is recorded (and, with is_quired, with this configuration
 * file and these rules), 0 if not, or -errno. */
static int root_is_recorded(struct store *s, const char *ns, const char *path, bool is_quired, const char *config,
                            const char *rules) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT 1 FROM roots WHERE namespace = ?1 AND path = ?2"
                                " AND (?3 = 0 OR (config IS ?4 AND rules IS ?5))",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare looking up a root");
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, is_quired);
        sqlite3_bind_text(st, 4, config, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rules, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return 1;
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "look up a root");
}

int store_add_root(struct store *s, const char *ns, const char *path, bool is_quired, const char *config,
                   const char *rules) {
        char now[UTC_TIMESTAMP_LEN];
        int r;

        if (!s->has_derived)
                return 0;
        /* The walk indexes nothing below such a root (scan_tree), and the
         * column is TEXT that other programs decode as UTF-8. */
        if (!utf8_is_valid(path, strlen(path)))
                return 0;
        /* Looked up first, outside a transaction: the common case (the
         * root is known) takes no write lock. */
        r = root_is_recorded(s, ns, path, is_quired, config, rules);
        if (r != 0)
                return r < 0 ? r : 0;
        utc_timestamp_now(now);
        return store_transact(s, add_root_fn,
                              &(struct add_root){
                                      .ns = ns,
                                      .path = path,
                                      .indexed_at = now,
                                      .is_quired = is_quired,
                                      .config = config,
                                      .rules = rules });
}

int store_forget_root(struct store *s, const char *ns, const char *path) {
        if (!s->has_derived)
                return 0;
        return store_transact(s, forget_root_fn, &(struct add_root){ .ns = ns, .path = path });
}

void store_roots_free(struct store_root *roots, size_t n) {
        for (size_t i = 0; roots && i < n; i++) {
                free(roots[i].namespace);
                free(roots[i].path);
                free(roots[i].config);
                free(roots[i].rules);
        }
        free(roots);
}

int store_list_roots(struct store *s, struct store_root **ret, size_t *ret_n) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        struct store_root *roots = NULL;
        size_t n = 0, cap = 0;
        int rc;

        *ret = NULL;
        *ret_n = 0;
        if (!s->has_derived)
                return 0;
        /* '/' was recorded by a quire that still indexed it: below it a
         * path starts with one slash, not the root's and one more, so it
         * cannot be walked as a root (quire index refuses it now). */
        rc = sqlite3_prepare_v2(s->db,
                                s->has_root_sources
                                        ? "SELECT namespace, path, config, rules FROM roots WHERE path <> '/'"
                                          " ORDER BY namespace, path"
                                        : "SELECT namespace, path, NULL, NULL FROM roots WHERE path <> '/'"
                                          " ORDER BY namespace, path",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare listing the roots");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(roots, cap, n + 1, 8) < 0)
                        goto oom;
                const char *ns = (const char *) sqlite3_column_text(st, 0);
                const char *path = (const char *) sqlite3_column_text(st, 1);
                roots[n] = (struct store_root){ .namespace = strdup(ns ? ns : ""),
                                                .path = strdup(path ? path : "") };
                const char *config = (const char *) sqlite3_column_text(st, 2);
                const char *rules = (const char *) sqlite3_column_text(st, 3);
                n++;
                if (!roots[n - 1].namespace || !roots[n - 1].path ||
                    (config && !(roots[n - 1].config = strdup(config))) || (rules && !(roots[n - 1].rules = strdup(rules))))
                        goto oom;
        }
        if (rc != SQLITE_DONE) {
                store_roots_free(roots, n);
                return store_fail(s, rc, "list the roots");
        }
        *ret = roots;
        *ret_n = n;
        return 0;
oom:
        store_roots_free(roots, n);
        return log_error_errno(ENOMEM, "Failed to list the roots: %m");
}

bool root_covers(const char *root, const char *path) {
        size_t n = strlen(root);

        if (n == 1 && root[0] == '/')
                return path[0] == '/';
        return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Path order in which '/' sorts before every other byte, so that a
 * directory's descendants follow it at once ("a", "a/b", "a-b"). */
static int cmp_tree_order(const void *a, const void *b) {
        const unsigned char *x = *(const unsigned char *const *) a, *y = *(const unsigned char *const *) b;

        for (; *x && *x == *y; x++, y++)
                ;
        unsigned cx = *x == '/' ? 1 : *x ? *x + 1u : 0, cy = *y == '/' ? 1 : *y ? *y + 1u : 0;
        return (cx > cy) - (cx < cy);
}

size_t roots_outermost_first(char **paths, size_t n) {
        size_t n_kept = 0;

        if (n == 0)
                return 0;
        qsort(paths, n, sizeof *paths, cmp_tree_order);
        for (size_t i = 0; i < n; i++) {
                if (n_kept > 0 && root_covers(paths[n_kept - 1], paths[i]))
                        continue;
                char *keep = paths[i];
                paths[i] = paths[n_kept];
                paths[n_kept++] = keep;
        }
        return n_kept;
}

int root_is_empty_where_notes_are(struct store *s, const char *ns, const char *dir) {
        int r = dir_is_empty(dir);
        if (r < 0)
                return log_error_errno(r, "Failed to list %s: %m", dir);
        if (r == 0)
                return 0;
        return store_tree_has_rows(s, ns, dir);
}

int root_rules_format(const struct scan_rules *rules, uint64_t max_file_bytes, char **ret) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; rules && i < rules->n_extensions; i++)
                fprintf(f, "ext %s\n", rules->extensions[i]);
        for (size_t i = 0; rules && i < rules->n_ignore_globs; i++)
                fprintf(f, "ignore %s\n", rules->ignore_globs[i]);
        fprintf(f, "max_file_size %llu\n", (unsigned long long) max_file_bytes);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

int root_rules_parse(const char *text, struct scan_rules *rules, uint64_t *max_file_bytes) {
        int r = 0;

        *rules = (struct scan_rules){ 0 };
        *max_file_bytes = 0;
        /* A config value holds no newline: one setting per line. */
        for (const char *line = text; r == 0 && line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t) (end - line) : strlen(line);
                const char *space = memchr(line, ' ', len);
                if (space) {
                        size_t key_len = (size_t) (space - line), value_len = len - key_len - 1;
                        if (key_len == 3 && memcmp(line, "ext", 3) == 0)
                                r = strv_push(&rules->extensions, &rules->n_extensions, strndup(space + 1, value_len));
                        else if (key_len == 6 && memcmp(line, "ignore", 6) == 0)
                                r = strv_push(&rules->ignore_globs, &rules->n_ignore_globs,
                                              strndup(space + 1, value_len));
                        else if (key_len == 13 && memcmp(line, "max_file_size", 13) == 0)
                                *max_file_bytes = strtoull(space + 1, NULL, 10);
                }
                line = end ? end + 1 : NULL;
        }
        if (r < 0)
                scan_rules_done(rules);
        return r;
}

int store_list_unmounted(struct store *s, char ***ret, size_t *ret_n) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        char **v = NULL;
        size_t n = 0;
        int rc, r = 0;

        *ret = NULL;
        *ret_n = 0;
        if (!s->has_root_sources)
                return 0;
        rc = sqlite3_prepare_v2(s->db, "SELECT path FROM unmounted ORDER BY path", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare listing the unmounted folders");
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                r = strv_push(&v, &n, strdup((const char *) sqlite3_column_text(st, 0)));
        if (r == 0 && rc != SQLITE_DONE)
                r = store_fail(s, rc, "list the unmounted folders");
        if (r < 0) {
                strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

struct set_unmounted {
        char *const *paths;
        size_t n;
};

static int set_unmounted_fn(struct store *s, void *userdata) {
        const struct set_unmounted *u = userdata;
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int r = store_exec(s, "DELETE FROM unmounted", "forget the unmounted folders");
        int rc = r == 0 ? sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO unmounted(path) VALUES (?1)", -1, &st, NULL)
                        : SQLITE_OK;

        if (r < 0)
                return r;
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "prepare recording an unmounted folder");
        for (size_t i = 0; i < u->n; i++) {
                sqlite3_bind_text(st, 1, u->paths[i], -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                sqlite3_reset(st);
                if (rc != SQLITE_DONE)
                        return store_fail(s, rc, "record an unmounted folder");
        }
        return 0;
}

int store_set_unmounted(struct store *s, char *const *paths, size_t n) {
        char **now = NULL;
        size_t n_now = 0;
        int r;

        if (!s->has_root_sources)
                return 0;
        /* Looked at first, outside a transaction: most calls change nothing. */
        r = store_list_unmounted(s, &now, &n_now);
        if (r < 0)
                return r;
        bool is_same = n_now == n;
        for (size_t i = 0; is_same && i < n; i++)
                is_same = strv_contains(now, n_now, paths[i]);
        strv_free(now, n_now);
        if (is_same)
                return 0;
        return store_transact(s, set_unmounted_fn, &(struct set_unmounted){ .paths = paths, .n = n });
}
