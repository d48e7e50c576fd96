/* quire search in process: the database opened here, with --sync brought
 * up to date first (sync.c) and without stale hits. The quire executable
 * comes here when quired does not answer the search (front.c); options
 * and printing are shared with it (search-front.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "search-front.h"
#include "search.h"
#include "sync.h"
#include "util.h"

/* Stale hits re-indexed, then the search again, at most this often: a
 * note rewritten without pause must not keep the search from answering. */
#define SYNC_STALE_ROUNDS 3


/* --sync: the files of the hits the search would show that changed or
 * vanished since they were indexed. Counts files like print_file(). */
struct stale_check {
        enum output_format format;
        struct path_set seen; /* --files: the paths met so far */
        unsigned files_to_skip, files_left;
        struct path_set stale_keys; /* namespace "\n" path, each once */
        char **namespaces, **paths; /* owned, n_stale of each */
        size_t n_stale;
};

static void stale_check_done(struct stale_check *sc) {
        path_set_done(&sc->seen);
        path_set_done(&sc->stale_keys);
        for (size_t i = 0; i < sc->n_stale; i++) {
                free(sc->namespaces[i]);
                free(sc->paths[i]);
        }
        free(sc->namespaces);
        free(sc->paths);
}

static int stale_check_add(struct stale_check *sc, const struct search_hit *h) {
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s\n%s", h->namespace, h->source_file) < 0)
                return -ENOMEM;
        int r = path_set_add(&sc->stale_keys, key);
        if (r <= 0)
                return r;
        char **ns = realloc(sc->namespaces, (sc->n_stale + 1) * sizeof *ns);
        if (!ns)
                return -ENOMEM;
        sc->namespaces = ns;
        char **paths = realloc(sc->paths, (sc->n_stale + 1) * sizeof *paths);
        if (!paths)
                return -ENOMEM;
        sc->paths = paths;
        sc->namespaces[sc->n_stale] = strdup(h->namespace);
        sc->paths[sc->n_stale] = strdup(h->source_file);
        sc->n_stale++;
        return sc->namespaces[sc->n_stale - 1] && sc->paths[sc->n_stale - 1] ? 0 : -ENOMEM;
}

static int check_hit(const struct search_hit *h, void *userdata) {
        struct stale_check *sc = userdata;
        int r;

        if (sc->format == FORMAT_FILES) {
                r = path_set_add(&sc->seen, h->source_file);
                if (r <= 0)
                        return r < 0 ? log_error_errno(r, "Failed to remember a path: %m") : 0;
                if (sc->files_to_skip > 0) {
                        sc->files_to_skip--;
                        return 0;
                }
        }
        if (search_hit_is_stale(h)) {
                r = stale_check_add(sc, h);
                if (r < 0)
                        return log_error_errno(r, "Failed to remember a stale hit: %m");
        }
        if (sc->format == FORMAT_FILES && sc->files_left > 0 && --sc->files_left == 0)
                return 1;
        return 0;
}

/* The roots and the folders below them whose filesystem quired saw
 * unmounted, as recorded. */
struct recorded {
        struct store_root *roots;
        size_t n_roots;
        char **unmounted;
        size_t n_unmounted;
};

/* Whether path lies in a recorded root of ns that is not there now: gone,
 * or an empty folder where its notes were (a drive not mounted), or in a
 * folder whose filesystem quired saw unmounted. Its notes stay, marked
 * stale, as the walk of the roots left them: their files are missing, not
 * known to be deleted (docs/ROOTS.md). */
static bool is_in_absent_root(struct store *s, const struct recorded *rec, const char *ns, const char *path) {
        const struct store_root *roots = rec->roots;
        size_t n_roots = rec->n_roots;

        for (size_t i = 0; i < rec->n_unmounted; i++)
                if (root_covers(rec->unmounted[i], path))
                        return true;
        for (size_t i = 0; i < n_roots; i++) {
                struct stat st;
                if (strcmp(roots[i].namespace, ns) != 0 || !root_covers(roots[i].path, path))
                        continue;
                if (stat(roots[i].path, &st) < 0 || !S_ISDIR(st.st_mode) ||
                    root_is_empty_where_notes_are(s, ns, roots[i].path) > 0)
                        return true;
        }
        return false;
}

/* Take the stale hits in roots that are not there now off the list: their
 * rows stay as they are, so searching again for them would change nothing. */
static void keep_absent_roots_notes(struct stale_check *sc, struct store *s, const struct recorded *rec) {
        size_t n = 0;
        for (size_t i = 0; i < sc->n_stale; i++) {
                if (is_in_absent_root(s, rec, sc->namespaces[i], sc->paths[i])) {
                        free(sc->namespaces[i]);
                        free(sc->paths[i]);
                        continue;
                }
                sc->namespaces[n] = sc->namespaces[i];
                sc->paths[n++] = sc->paths[i];
        }
        sc->n_stale = n;
}

/* Re-index one stale hit's file under the rules recorded with the
 * innermost root of ns that holds it: quired's for its roots (a .txt note
 * its extensions let in stays), the built-in ones otherwise. */
static int refresh_file(struct store *writer, const struct recorded *rec, const char *ns, char *path) {
        const struct store_root *holder = NULL;
        for (size_t i = 0; i < rec->n_roots; i++)
                if (strcmp(rec->roots[i].namespace, ns) == 0 && root_covers(rec->roots[i].path, path) &&
                    (!holder || strlen(rec->roots[i].path) > strlen(holder->path)))
                        holder = &rec->roots[i];
        _cleanup_(scan_rules_done) struct scan_rules rules = { 0 };
        uint64_t max_file_bytes = 0;
        int r = holder && holder->rules ? root_rules_parse(holder->rules, &rules, &max_file_bytes) : 0;
        if (r < 0)
                return log_error_errno(r, "Failed to re-index %s: %m", path);
        struct sync_options opts = {
                .namespace = ns,
                .n_readers = 1,
                .doc = { .max_file_bytes = max_file_bytes },
                .rules = holder && holder->rules ? &rules : NULL,
        };
        struct sync_stats stats = { 0 };
        return sync_run(writer, &opts, NULL, 0, &path, 1, &stats);
}

/* Re-index the files of stale hits on the spot (a vanished one leaves the
 * index, unless its root is missing) and look again, since the hits may
 * now be others. s is the reader the search goes on with; a writer is
 * opened only when there is something to write. 0, -EINVAL for a bad
 * query (logged), other -errno. */
static int refresh_stale_hits(struct store *s, const char *db_path, const struct search_query *q,
                              const struct search_output *out) {
        struct search_query check = *q;
        struct store *writer = NULL;
        struct recorded rec = { 0 };
        int r = store_list_roots(s, &rec.roots, &rec.n_roots);
        if (r == 0)
                r = store_list_unmounted(s, &rec.unmounted, &rec.n_unmounted);

        check.skip_snippet = true;
        check.want_match_position = false;
        for (unsigned round = 0; r == 0 && round < SYNC_STALE_ROUNDS; round++) {
                struct stale_check sc = {
                        .format = out->format,
                        .files_to_skip = out->files_to_skip,
                        .files_left = out->files_left,
                };
                r = store_search(s, &check, check_hit, &sc);
                if (r > 0)
                        r = 0;
                keep_absent_roots_notes(&sc, s, &rec);
                if (r == 0 && sc.n_stale > 0 && !writer)
                        r = store_open(db_path, NULL, &writer);
                for (size_t i = 0; r == 0 && i < sc.n_stale; i++)
                        r = refresh_file(writer, &rec, sc.namespaces[i], sc.paths[i]);
                size_t n_stale = sc.n_stale;
                stale_check_done(&sc);
                if (n_stale == 0)
                        break;
        }
        store_roots_free(rec.roots, rec.n_roots);
        strv_free(rec.unmounted, rec.n_unmounted);
        store_close(writer);
        return r;
}

int cmd_search(int argc, char **argv) {
        struct search_args a;
        int rc = search_args_parse(argc, argv, &a);
        if (rc >= 0) {
                search_args_done(&a);
                return rc;
        }
        _cleanup_free_ char *db_path = db_path_or_default(a.db_arg);
        if (!db_path || (a.is_sync && search_sync_index(db_path, a.sync_timeout_ms) < 0)) {
                search_args_done(&a);
                return 1;
        }
        struct store *s = NULL;
        int r = store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &s);
        if (r < 0) {
                search_args_done(&a);
                return 1;
        }
        if (a.is_sync)
                r = refresh_stale_hits(s, db_path, &a.query, &a.out);
        if (r == 0)
                r = store_search(s, &a.query, search_print_hit, &a.out);
        store_close(s);
        search_args_done(&a);
        if (r == -EINVAL)
                return EXIT_USAGE;
        return r < 0 ? 1 : 0;
}
