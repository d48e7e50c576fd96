/* The per-file diff and the no-duplicates guarantee, against real SQLite
 * files in a temporary directory: twins collapse, moved chunks keep their
 * ids and counters, an unchanged re-index writes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "document.h"
#include "index.h"
#include "roots.h"
#include "search.h"
#include "store.h"
#include "log.h"
#include "util.h"

static char tmpdir[] = "/tmp/quire-test-store-XXXXXX";
static char db_path[512];
static int n_db;

/* A fresh database file for each test. */
static struct store *open_fresh(void) {
        struct store *s = NULL;

        snprintf(db_path, sizeof db_path, "%s/t%d.db", tmpdir, ++n_db);
        if (store_open(db_path, NULL, &s) < 0)
                return NULL;
        return s;
}

static void parse(const char *text, int64_t mtime_ns, struct document *doc) {
        int r = document_parse(text, strlen(text), NULL, doc);
        if (r < 0) {
                fprintf(stderr, "document_parse failed: %d\n", r);
                abort();
        }
        doc->mtime_ns = mtime_ns;
}

static int apply_one(struct store *s, const char *path, const struct document *doc, struct index_stats *stats) {
        struct index_item it = { .path = path, .doc = doc };
        struct index_stats ignored = { 0 };
        return store_apply(s, "default", &it, 1, stats ? stats : &ignored);
}

/* A side connection for assertions, so checks never go through the code
 * under test. */
static sqlite3 *raw_open(void) {
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                abort();
        return db;
}

static long long raw_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        long long v = -1;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        else
                fprintf(stderr, "    query failed: %s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return v;
}

static char *raw_text(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        char *v = NULL;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return v ? v : strdup("");
}

static bool fts_integrity_ok(sqlite3 *db) {
        return sqlite3_exec(db, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)", NULL, NULL,
                            NULL) == SQLITE_OK;
}

static long long fts_hits(sqlite3 *db, const char *word) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH '%s'", word);
        return raw_int(db, sql);
}

static long long duplicate_groups(sqlite3 *db) {
        return raw_int(db, "SELECT count(*) FROM (SELECT 1 FROM chunks GROUP BY namespace, source_file,"
                           " content_hash, start_line HAVING count(*) > 1)");
}

/* Big enough that the two sections become two chunks (min 256 bytes). */
#define SECTION_A "# Alpha\n\nAlpha words about apricots. " \
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore " \
        "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut " \
        "aliquip ex ea commodo consequat.\n"
#define SECTION_B "\n# Beta\n\nBeta words about blueberries. " \
        "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. " \
        "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est " \
        "laborum.\n"

static void test_sequential_twins_collapse(void) {
        struct store *s = open_fresh();
        struct document doc;
        REQUIRE(s);
        parse(SECTION_A SECTION_B, 1, &doc);

        CHECK_INT_EQ(apply_one(s, "/notes/a.md", &doc, NULL), 0);
        /* A second writer with its own connection indexes the same file. */
        struct store *peer = NULL;
        REQUIRE(store_open(db_path, NULL, &peer) == 0);
        struct index_stats stats = { 0 };
        CHECK_INT_EQ(apply_one(peer, "/notes/a.md", &doc, &stats), 0);
        CHECK_INT_EQ(stats.chunks_inserted, 0);
        CHECK_INT_EQ(stats.files_unchanged, 1);

        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks"), 2);
        CHECK_INT_EQ(duplicate_groups(db), 0);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(peer);
        store_close(s);
        document_done(&doc);
}

static void test_within_batch_twins_collapse(void) {
        struct store *s = open_fresh();
        struct document doc, doc_later;
        REQUIRE(s);
        parse(SECTION_A SECTION_B, 1, &doc);
        parse(SECTION_A SECTION_B, 2, &doc_later); /* same bytes, touched */

        struct index_item items[] = {
                { .path = "/notes/a.md", .doc = &doc },
                { .path = "/notes/a.md", .doc = &doc },
                { .path = "/notes/a.md", .doc = &doc_later },
        };
        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_apply(s, "default", items, 3, &stats), 0);
        CHECK_INT_EQ(stats.files_new, 1);
        CHECK_INT_EQ(stats.chunks_inserted, 2);

        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT mtime_ns FROM files"), 2);
        CHECK_INT_EQ(duplicate_groups(db), 0);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 1);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(s);
        document_done(&doc);
        document_done(&doc_later);
}

/* A batch that fails after it staged rows (here a trigger refuses the
 * delete of its second file's row, after its first file was staged)
 * commits nothing, and the next batch writes its own rows only: the
 * staged ones, which point into the failed batch's documents, went with
 * the failure. */
static void test_failed_batch_leaves_nothing_staged(void) {
        struct store *s = open_fresh();
        struct document gone, refused, kept;
        REQUIRE(s);
        parse(SECTION_B, 1, &gone);
        CHECK_INT_EQ(apply_one(s, "/notes/gone.md", &gone, NULL), 0);
        document_done(&gone);
        sqlite3 *db = raw_open();
        REQUIRE(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE DELETE ON files WHEN old.path = '/notes/gone.md'"
                                 " BEGIN SELECT RAISE(ABORT, 'refused'); END",
                             NULL, NULL, NULL) == SQLITE_OK);

        parse(SECTION_A, 1, &refused);
        struct index_item items[] = {
                { .path = "/notes/a.md", .doc = &refused },
                { .path = "/notes/gone.md", .is_gone = true },
        };
        struct index_stats stats = { 0 };
        log_set_max_level(LOG_CRIT); /* the failure is logged, as it should be */
        CHECK(store_apply(s, "default", items, ELEMENTSOF(items), &stats) < 0);
        log_set_max_level(LOG_WARNING);
        document_done(&refused);

        parse(SECTION_A, 2, &kept);
        CHECK_INT_EQ(apply_one(s, "/notes/kept.md", &kept, NULL), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/notes/a.md'"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/notes/a.md'"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/notes/kept.md'"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/notes/kept.md' AND mtime_ns = 2"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 2);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 1);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(s);
        document_done(&kept);
}

/* The same path changed twice inside one batch: the last state wins and
 * nothing of the first survives. */
static void test_within_batch_change_keeps_last_state(void) {
        struct store *s = open_fresh();
        struct document v1, v2;
        REQUIRE(s);
        parse(SECTION_A, 1, &v1);
        parse(SECTION_B, 2, &v2);

        struct index_item items[] = {
                { .path = "/notes/a.md", .doc = &v1 },
                { .path = "/notes/a.md", .doc = &v2 },
        };
        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_apply(s, "default", items, 2, &stats), 0);

        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks"), 1);
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 1);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 0);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(s);
        document_done(&v1);
        document_done(&v2);
}

static void test_moved_chunk_keeps_id_and_counters(void) {
        struct store *s = open_fresh();
        struct document v1, v2;
        REQUIRE(s);
        parse(SECTION_A SECTION_B, 1, &v1);
        /* Section B moves down by three lines and A changes. */
        parse("# Alpha\n\nAlpha rewritten entirely, now about avocados and nothing else at all. "
              "Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque laudantium, "
              "totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto beatae vitae.\n"
              "\nAn extra paragraph.\n\n" SECTION_B,
              2, &v2);

        REQUIRE(apply_one(s, "/notes/a.md", &v1, NULL) == 0);
        sqlite3 *db = raw_open();
        char *id_before = raw_text(db, "SELECT id FROM chunks WHERE content LIKE '%blueberries%'");
        long long start_before = raw_int(db, "SELECT start_line FROM chunks WHERE content LIKE '%blueberries%'");
        long long seq_before = raw_int(db, "SELECT seq FROM chunks WHERE content LIKE '%blueberries%'");
        REQUIRE(sqlite3_exec(db, "UPDATE chunks SET access_count = 7, use_count = 3 WHERE content LIKE '%blueberries%'",
                             NULL, NULL, NULL) == SQLITE_OK);

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(apply_one(s, "/notes/a.md", &v2, &stats), 0);
        CHECK_INT_EQ(stats.files_changed, 1);
        CHECK_INT_EQ(stats.chunks_moved, 1);

        char *id_after = raw_text(db, "SELECT id FROM chunks WHERE content LIKE '%blueberries%'");
        CHECK_STR_EQ(id_after, id_before);
        CHECK_INT_EQ(raw_int(db, "SELECT seq FROM chunks WHERE content LIKE '%blueberries%'"), seq_before);
        CHECK_INT_EQ(raw_int(db, "SELECT access_count FROM chunks WHERE content LIKE '%blueberries%'"), 7);
        CHECK_INT_EQ(raw_int(db, "SELECT use_count FROM chunks WHERE content LIKE '%blueberries%'"), 3);
        CHECK_INT_EQ(raw_int(db, "SELECT start_line FROM chunks WHERE content LIKE '%blueberries%'"),
                     start_before + 3);
        /* The old Alpha chunk is gone, row and FTS entry; the new one is in. */
        CHECK_INT_EQ(fts_hits(db, "apricots"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE content LIKE '%apricots%'"), 0);
        CHECK_INT_EQ(fts_hits(db, "avocados"), 1);
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 1);
        CHECK_INT_EQ(duplicate_groups(db), 0);
        CHECK(fts_integrity_ok(db));
        free(id_before);
        free(id_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&v1);
        document_done(&v2);
}

static void test_unchanged_reindex_writes_nothing(void) {
        struct store *s = open_fresh();
        struct document doc;
        REQUIRE(s);
        parse(SECTION_A SECTION_B, 1, &doc);
        REQUIRE(apply_one(s, "/notes/a.md", &doc, NULL) == 0);

        int64_t before = store_total_changes(s);
        struct index_stats stats = { 0 };
        CHECK_INT_EQ(apply_one(s, "/notes/a.md", &doc, &stats), 0);
        CHECK_INT_EQ(store_total_changes(s) - before, 0);
        CHECK_INT_EQ(stats.files_unchanged, 1);
        CHECK_INT_EQ(stats.chunks_inserted + stats.chunks_deleted + stats.chunks_moved, 0);
        store_close(s);
        document_done(&doc);
}

static void test_touch_updates_files_row_only(void) {
        struct store *s = open_fresh();
        struct document doc, touched;
        REQUIRE(s);
        parse(SECTION_A SECTION_B, 1, &doc);
        parse(SECTION_A SECTION_B, 99, &touched);
        REQUIRE(apply_one(s, "/notes/a.md", &doc, NULL) == 0);
        sqlite3 *db = raw_open();
        char *ids_before = raw_text(db, "SELECT group_concat(id) FROM (SELECT id FROM chunks ORDER BY id)");

        int64_t before = store_total_changes(s);
        struct index_stats stats = { 0 };
        CHECK_INT_EQ(apply_one(s, "/notes/a.md", &touched, &stats), 0);
        CHECK_INT_EQ(stats.files_touched, 1);
        CHECK_INT_EQ(store_total_changes(s) - before, 1); /* the files row */
        CHECK_INT_EQ(raw_int(db, "SELECT mtime_ns FROM files"), 99);
        char *ids_after = raw_text(db, "SELECT group_concat(id) FROM (SELECT id FROM chunks ORDER BY id)");
        CHECK_STR_EQ(ids_after, ids_before);
        free(ids_before);
        free(ids_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&doc);
        document_done(&touched);
}

static void test_repeated_paragraph_kept_twice(void) {
        struct store *s = open_fresh();
        struct document doc;
        REQUIRE(s);
        /* Two identical sections, each big enough to be its own chunk:
         * same content, different lines. */
        parse(SECTION_A SECTION_A, 1, &doc);
        REQUIRE(apply_one(s, "/notes/twice.md", &doc, NULL) == 0);

        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT count(DISTINCT content_hash) FROM chunks"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT count(DISTINCT start_line) FROM chunks"), 2);
        CHECK_INT_EQ(duplicate_groups(db), 0);
        sqlite3_close(db);
        store_close(s);
        document_done(&doc);
}

static void test_delete_removes_rows_and_fts(void) {
        struct store *s = open_fresh();
        struct document a, b;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        parse(SECTION_B, 1, &b);
        REQUIRE(apply_one(s, "/notes/a.md", &a, NULL) == 0);
        REQUIRE(apply_one(s, "/notes/b.md", &b, NULL) == 0);

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(apply_one(s, "/notes/a.md", NULL, &stats), 0);
        CHECK_INT_EQ(stats.files_deleted, 1);
        CHECK_INT_EQ(stats.chunks_deleted, 1);

        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/notes/a.md'"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/notes/a.md'"), 0);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/notes/b.md'"), 1);
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 1);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
        document_done(&b);
}

static void test_list_files_is_sorted_and_bounded(void) {
        struct store *s = open_fresh();
        struct document doc;
        REQUIRE(s);
        parse(SECTION_A, 1, &doc);
        const char *paths[] = { "/n/z.md", "/n/a/b.md", "/n-other/x.md", "/n.md", "/n/a.md", "/nn/y.md" };
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
                REQUIRE(apply_one(s, paths[i], &doc, NULL) == 0);

        struct file_row *rows = NULL;
        size_t n = 0;
        REQUIRE(store_list_files(s, "default", "/n", &rows, &n) == 0);
        REQUIRE_INT_EQ(n, 3);
        CHECK_STR_EQ(rows[0].path, "/n/a.md");
        CHECK_STR_EQ(rows[1].path, "/n/a/b.md");
        CHECK_STR_EQ(rows[2].path, "/n/z.md");
        file_rows_free(rows, n);
        store_close(s);
        document_done(&doc);
}

static int count_hit(const struct search_hit *h, void *u) {
        (*(int *) u)++;
        return strstr(h->snippet, "dolor") ? 0 : -EBADMSG;
}

static void test_search_ranks_and_filters_namespace(void) {
        struct store *s = open_fresh();
        struct document a, b;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        parse(SECTION_B, 1, &b);
        struct index_item it = { .path = "/notes/a.md", .doc = &a };
        struct index_stats st = { 0 };
        REQUIRE(store_apply(s, "work", &it, 1, &st) == 0);
        it = (struct index_item){ .path = "/notes/b.md", .doc = &b };
        REQUIRE(store_apply(s, "home", &it, 1, &st) == 0);

        int n_hits = 0;
        struct search_query q = { .match = "dolor", .limit = 10 };
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), 0);
        CHECK_INT_EQ(n_hits, 2);
        n_hits = 0;
        q.namespace = "home";
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), 0);
        CHECK_INT_EQ(n_hits, 1);
        q.match = "\"unterminated";
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -EINVAL);
        store_close(s);
        document_done(&a);
        document_done(&b);
}

/* The heading filter is a function registered on the connection, once:
 * registering it again expired every statement prepared on it, and failed
 * (SQLITE_BUSY) while one ran, as a search does while it calls back. */
struct nested_search {
        struct store *s;
        int n_inner_hits, inner_result;
};

static int search_again(const struct search_hit *h, void *userdata) {
        struct nested_search *ns = userdata;
        /* Another statement (a namespace filter): the outer one runs on. */
        struct search_query q = { .match = "dolor", .heading = "alpha", .namespace = "default", .limit = 10 };

        (void) h;
        ns->inner_result = store_search(ns->s, &q, count_hit, &ns->n_inner_hits);
        return 0;
}

static void test_heading_filter_registered_once(void) {
        struct store *s = open_fresh();
        struct document a;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        REQUIRE(apply_one(s, "/notes/a.md", &a, NULL) == 0);

        struct nested_search ns = { .s = s, .inner_result = 1 };
        struct search_query q = { .match = "apricots", .heading = "Alpha", .limit = 10 };
        CHECK_INT_EQ(store_search(s, &q, search_again, &ns), 0);
        CHECK_INT_EQ(ns.inner_result, 0);
        CHECK_INT_EQ(ns.n_inner_hits, 1);
        ns.n_inner_hits = 0;
        q.heading = "Beta"; /* and it still filters */
        CHECK_INT_EQ(store_search(s, &q, search_again, &ns), 0);
        CHECK_INT_EQ(ns.n_inner_hits, 0);
        store_close(s);
        document_done(&a);
}

static int client_left(void *userdata) {
        (*(int *) userdata)++;
        return -ECONNRESET;
}

static void test_search_bounds(void) {
        struct store *s = open_fresh();
        struct document a;
        char match[3000] = "";
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        REQUIRE(apply_one(s, "/notes/a.md", &a, NULL) == 0);

        /* 64 words are a query, 65 (or 65 CJK characters, or 2049 bytes)
         * are not, whatever SQLite would make of them. */
        int n_hits = 0;
        struct search_query q = { .match = match, .limit = 10 };
        for (int i = 0; i < 64; i++)
                strcat(match, "dolor ");
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), 0);
        CHECK_INT_EQ(n_hits, 1);
        strcat(match, "dolor");
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -EINVAL);
        match[0] = '\0';
        for (int i = 0; i < 65; i++)
                strcat(match, "\xe6\x95\xb0"); /* 数 */
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -EINVAL);
        memset(match, 'x', 2049);
        match[2049] = '\0';
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -EINVAL);

        /* The search check and the cancel flag end a search, unlogged,
         * with their own errors; without them it finds its hit again. */
        int n_checks = 0;
        atomic_bool is_cancelled = true;
        q.match = "dolor";
        store_set_search_check(s, client_left, &n_checks);
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -ECONNRESET);
        CHECK(n_checks > 0);
        store_set_cancel(s, &is_cancelled);
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), -ECANCELED);
        store_set_search_check(s, NULL, NULL);
        atomic_store(&is_cancelled, false);
        n_hits = 0;
        CHECK_INT_EQ(store_search(s, &q, count_hit, &n_hits), 0);
        CHECK_INT_EQ(n_hits, 1);
        store_close(s);
        document_done(&a);
}

static void test_move_file_keeps_ids_and_replaces_target(void) {
        struct store *s = open_fresh();
        struct document a, b;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        parse(SECTION_B, 1, &b);
        REQUIRE(apply_one(s, "/notes/old.md", &a, NULL) == 0);
        REQUIRE(apply_one(s, "/notes/target.md", &b, NULL) == 0);
        sqlite3 *db = raw_open();
        char *id_before = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/notes/old.md'");

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", "/notes/old.md", "/notes/target.md", false, &stats), 0);
        CHECK_INT_EQ(stats.files_moved, 1);
        char *id_after = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/notes/target.md'");
        CHECK_STR_EQ(id_after, id_before);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/notes/old.md'"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/notes/old.md'"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/notes/target.md'"), 1);
        /* The overwritten note's content is gone, and FTS knows the new path. */
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 0);
        CHECK_INT_EQ(fts_hits(db, "apricots AND target"), 1);
        CHECK(fts_integrity_ok(db));
        free(id_before);
        free(id_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
        document_done(&b);
}

static void test_move_tree_rewrites_only_that_prefix(void) {
        struct store *s = open_fresh();
        struct document a;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        const char *paths[] = { "/n/dir/a.md", "/n/dir/sub/b.md", "/n/dir2/c.md", "/n/dir.md" };
        for (size_t i = 0; i < 4; i++)
                REQUIRE(apply_one(s, paths[i], &a, NULL) == 0);

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", "/n/dir", "/n/renamed", true, &stats), 0);
        CHECK_INT_EQ(stats.files_moved, 2);
        sqlite3 *db = raw_open();
        char *files = raw_text(db, "SELECT group_concat(path, ' ') FROM (SELECT path FROM files ORDER BY path)");
        CHECK_STR_EQ(files, "/n/dir.md /n/dir2/c.md /n/renamed/a.md /n/renamed/sub/b.md");
        char *chunks = raw_text(db, "SELECT group_concat(source_file, ' ') FROM (SELECT source_file FROM chunks"
                                    " ORDER BY source_file)");
        CHECK_STR_EQ(chunks, files);
        CHECK(fts_integrity_ok(db));
        free(files);
        free(chunks);

        /* A root still configured inside the tree keeps its notes. */
        CHECK_INT_EQ(store_delete_tree(s, "default", "/n/renamed", (char *[]){ "/n/renamed/sub" }, 1, &stats), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 3);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/n/renamed/a.md'"), 0);
        CHECK(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file = '/n/renamed/sub/b.md'") > 0);
        CHECK_INT_EQ(store_delete_tree(s, "default", "/n/renamed", NULL, 0, &stats), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file LIKE '/n/renamed/%'"), 0);
        CHECK(fts_integrity_ok(db));
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, data, len) != (ssize_t) len)
                abort();
        close(fd);
}

static bool file_equals(const char *path, const void *data, size_t len) {
        char buf[4096];
        int fd = open(path, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
        if (fd >= 0)
                close(fd);
        return n == (ssize_t) len && memcmp(buf, data, len) == 0;
}

/* A move applied late (its event queued behind others) finds another
 * writer already there: nothing under the old name, the new name indexed.
 * The new name keeps its rows, ids and all. */
static void test_stale_move_keeps_the_new_names_rows(void) {
        struct store *s = open_fresh();
        struct document a;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        REQUIRE(apply_one(s, "/notes/new.md", &a, NULL) == 0);
        REQUIRE(apply_one(s, "/tree/new/x.md", &a, NULL) == 0);
        sqlite3 *db = raw_open();
        char *file_id = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/notes/new.md'");
        char *tree_id = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/tree/new/x.md'");
        long long changes = raw_int(db, "SELECT total_changes()");

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", "/notes/old.md", "/notes/new.md", false, &stats), 0);
        CHECK_INT_EQ(store_move(s, "default", "/tree/old", "/tree/new", true, &stats), 0);
        CHECK_INT_EQ(stats.files_moved, 0);
        char *file_id_after = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/notes/new.md'");
        char *tree_id_after = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/tree/new/x.md'");
        CHECK_STR_EQ(file_id_after, file_id);
        CHECK_STR_EQ(tree_id_after, tree_id);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 2);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT total_changes()"), changes);
        free(file_id);
        free(tree_id);
        free(file_id_after);
        free(tree_id_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
}

/* The new name was indexed from disk after the rename (its files row
 * matches the file, its ctime is older than indexed_at): those rows are
 * the note as it is, and the old name's rows go instead of moving. */
static void test_move_onto_rows_indexed_since_keeps_them(void) {
        char old_path[300], new_path[300];
        struct store *s = open_fresh();
        struct document a, b;
        REQUIRE(s);
        snprintf(old_path, sizeof old_path, "%s/gone.md", tmpdir);
        snprintf(new_path, sizeof new_path, "%s/here.md", tmpdir);
        write_file(new_path, SECTION_B, strlen(SECTION_B));
        parse(SECTION_A, 1, &a);
        REQUIRE(document_load(AT_FDCWD, new_path, NULL, &b) == 0);
        REQUIRE(apply_one(s, old_path, &a, NULL) == 0);
        /* indexed_at has a clock tick to pass the file's ctime. */
        nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
        REQUIRE(apply_one(s, new_path, &b, NULL) == 0);
        sqlite3 *db = raw_open();
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT id FROM chunks WHERE source_file = '%s'", new_path);
        char *id_before = raw_text(db, sql);

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", old_path, new_path, false, &stats), 0);
        CHECK_INT_EQ(stats.files_moved, 0);
        char *id_after = raw_text(db, sql);
        CHECK_STR_EQ(id_after, id_before);
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 1);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 1);
        CHECK(fts_integrity_ok(db));
        unlink(new_path);
        free(id_before);
        free(id_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
        document_done(&b);
}

/* Below a directory's new name, a path another writer indexed first keeps
 * its rows; the rest of the tree moves. */
static void test_move_tree_leaves_paths_indexed_since(void) {
        struct store *s = open_fresh();
        struct document a, b;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        parse(SECTION_B, 1, &b);
        REQUIRE(apply_one(s, "/n/old/a.md", &a, NULL) == 0);
        REQUIRE(apply_one(s, "/n/old/b.md", &a, NULL) == 0);
        REQUIRE(apply_one(s, "/n/new/b.md", &b, NULL) == 0);
        sqlite3 *db = raw_open();
        char *kept_id = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/n/new/b.md'");
        char *moved_id = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/n/old/a.md'");

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", "/n/old", "/n/new", true, &stats), 0);
        CHECK_INT_EQ(stats.files_moved, 1);
        char *files = raw_text(db, "SELECT group_concat(path, ' ') FROM (SELECT path FROM files ORDER BY path)");
        CHECK_STR_EQ(files, "/n/new/a.md /n/new/b.md");
        char *kept_after = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/n/new/b.md'");
        char *moved_after = raw_text(db, "SELECT id FROM chunks WHERE source_file = '/n/new/a.md'");
        CHECK_STR_EQ(kept_after, kept_id);
        CHECK_STR_EQ(moved_after, moved_id);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks WHERE source_file LIKE '/n/old/%'"), 0);
        CHECK_INT_EQ(fts_hits(db, "blueberries"), 1);
        CHECK_INT_EQ(fts_hits(db, "apricots"), 1);
        CHECK(fts_integrity_ok(db));
        free(kept_id);
        free(moved_id);
        free(files);
        free(kept_after);
        free(moved_after);
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
        document_done(&b);
}

static void test_open_refuses_foreign_file_untouched(void) {
        static const char garbage[] = "this is not a database, it is a note\n";
        char path[300];
        struct store *s = NULL;

        snprintf(path, sizeof path, "%s/garbage.db", tmpdir);
        write_file(path, garbage, sizeof garbage - 1);
        CHECK_INT_EQ(store_open(path, NULL, &s), -EBADMSG);
        CHECK(s == NULL);
        CHECK(file_equals(path, garbage, sizeof garbage - 1));
        CHECK_INT_EQ(store_open(path, &(struct store_options){ .flags = STORE_READONLY }, &s), -EBADMSG);
        CHECK(file_equals(path, garbage, sizeof garbage - 1));
}

static void test_open_refuses_newer_schema(void) {
        struct store *s = open_fresh();
        REQUIRE(s);
        store_close(s);
        sqlite3 *db = raw_open();
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
        REQUIRE(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);

        struct stat before, after;
        REQUIRE(stat(db_path, &before) == 0);
        CHECK_INT_EQ(store_open(db_path, NULL, &s), -EPROTONOSUPPORT);
        REQUIRE(stat(db_path, &after) == 0);
        CHECK_INT_EQ(after.st_size, before.st_size);
        CHECK_INT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
        db = raw_open();
        CHECK_INT_EQ(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
        sqlite3_close(db);
}

/* What a second store_open() in a process leaves of the first one's
 * SQLite locks: all of them. Another process that opens and closes the
 * database afterwards must find itself not the last connection (the
 * first is open) and leave the WAL alone; had the open() and close() of
 * some descriptor of the file dropped the process's POSIX locks, that
 * process would checkpoint and delete the WAL, and the first store's next
 * commit would go to an unlinked file nobody reads. (quired opens its
 * search threads' stores while its writer is open.) */
static void test_second_open_keeps_the_first_ones_locks(void) {
        struct store *writer = open_fresh(), *reader = NULL;
        struct document doc;
        char wal[600];

        REQUIRE(writer);
        parse("# One\n\nfirst words\n", 1, &doc);
        REQUIRE(apply_one(writer, "/n/one.md", &doc, NULL) == 0);
        document_done(&doc);
        snprintf(wal, sizeof wal, "%s-wal", db_path);
        REQUIRE(access(wal, F_OK) == 0);

        REQUIRE(store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &reader) == 0);
        /* Another process (exec'd: a fork would inherit this one's
         * SQLite lock bookkeeping): open, read, close. */
        char cmd[1400];
        snprintf(cmd, sizeof cmd,
                 "python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                 "c.execute(\"SELECT count(*) FROM chunks\").fetchall(); c.close()' '%s'",
                 db_path);
        CHECK_INT_EQ(system(cmd), 0);
        CHECK(access(wal, F_OK) == 0);

        /* The writer's next commit is seen by a process that opens the
         * database now. */
        parse("# Two\n\nsecond words\n", 2, &doc);
        REQUIRE(apply_one(writer, "/n/two.md", &doc, NULL) == 0);
        document_done(&doc);
        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files"), 2);
        sqlite3_close(db);
        store_close(reader);
        store_close(writer);
}

static void test_empty_file_is_a_new_database(void) {
        char path[300];
        struct store *s = NULL;

        snprintf(path, sizeof path, "%s/empty.db", tmpdir);
        write_file(path, "", 0);
        CHECK_INT_EQ(store_open(path, NULL, &s), 0);
        store_close(s);
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        CHECK(st.st_size > 0);
}

static void test_new_database_mode_and_version(void) {
        char path[300];
        struct store *s = NULL;

        snprintf(path, sizeof path, "%s/deep/er/new.db", tmpdir);
        REQUIRE(store_open(path, NULL, &s) == 0);
        store_close(s);
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        CHECK_INT_EQ(st.st_mode & 0777, 0600);
        char dir[300];
        snprintf(dir, sizeof dir, "%s/deep/er", tmpdir);
        REQUIRE(stat(dir, &st) == 0);
        CHECK_INT_EQ(st.st_mode & 0777, 0700);
        snprintf(db_path, sizeof db_path, "%s", path);
        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'idx_chunks_unique_content'"), 1);
        char *mode = raw_text(db, "PRAGMA journal_mode");
        CHECK_STR_EQ(mode, "wal");
        free(mode);
        sqlite3_close(db);
}

/* --- the lock timeout bounds a dead lock, not a busy one ---------------- */

struct busy_writer {
        atomic_bool stop;
        int n_commits;
};

/* Holds the write lock and commits every 20 ms, re-taking the lock in the
 * same sqlite3_exec() so that the lock is free for microseconds only:
 * SQLite's busy handler, which sleeps for milliseconds, will all but never
 * see it free. */
static void *keep_committing(void *userdata) {
        struct busy_writer *w = userdata;
        sqlite3 *db = raw_open();
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                abort();
        while (!atomic_load(&w->stop)) {
                if (sqlite3_exec(db, "UPDATE files SET size = size + 1; COMMIT; BEGIN IMMEDIATE", NULL, NULL,
                                 NULL) != SQLITE_OK)
                        abort();
                w->n_commits++;
                nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000L }, NULL);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        return NULL;
}

struct transact_run {
        struct store *store;
        int result;
        uint64_t finished_usec;
};

/* One store_apply(): one BEGIN IMMEDIATE transaction, retried while busy. */
static int write_a_note(struct store *s) {
        struct document doc;
        parse("# note\n\nwritten while another writer commits\n", 7, &doc);
        int r = apply_one(s, "/n/waiting.md", &doc, NULL);
        document_done(&doc);
        return r;
}

static void *run_transact(void *userdata) {
        struct transact_run *t = userdata;
        t->result = write_a_note(t->store);
        t->finished_usec = now_monotonic_usec();
        return NULL;
}

static void test_writer_outwaits_the_lock_timeout_while_others_commit(void) {
        struct store *s = open_fresh();
        struct document doc;
        REQUIRE(s);
        /* A row for the other writer's updates to rewrite. */
        parse("# first\n\nthere before\n", 1, &doc);
        REQUIRE(apply_one(s, "/n/first.md", &doc, NULL) == 0);
        document_done(&doc);
        store_close(s);
        /* 100 ms to give up on a database nobody writes. */
        REQUIRE(store_open(db_path, &(struct store_options){ .lock_timeout_ms = 100 }, &s) == 0);

        struct busy_writer w = { .stop = false };
        struct transact_run t = { .store = s };
        pthread_t writer, waiter;
        REQUIRE(pthread_create(&writer, NULL, keep_committing, &w) == 0);
        nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
        REQUIRE(pthread_create(&waiter, NULL, run_transact, &t) == 0);
        /* Ten lock timeouts of other writers' commits. */
        nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
        uint64_t stopped_usec = now_monotonic_usec();
        atomic_store(&w.stop, true);
        pthread_join(writer, NULL);
        pthread_join(waiter, NULL);

        CHECK(w.n_commits > 10);
        CHECK_INT_EQ(t.result, 0);
        sqlite3 *db = raw_open();
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM files WHERE path = '/n/waiting.md'"), 1);
        sqlite3_close(db);
        /* How it went, not asserted: whether the busy handler found a gap. */
        fprintf(stderr, "    waiter finished %s the other writer stopped (%d commits)\n",
                t.finished_usec >= stopped_usec ? "after" : "before", w.n_commits);
        store_close(s);
}

static void test_writer_gives_up_on_a_lock_nobody_commits_under(void) {
        struct store *s = open_fresh();
        REQUIRE(s);
        store_close(s);
        REQUIRE(store_open(db_path, &(struct store_options){ .lock_timeout_ms = 100 }, &s) == 0);
        sqlite3 *holder = raw_open();
        REQUIRE(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
        CHECK_INT_EQ(write_a_note(s), -EBUSY);
        sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(holder);
        CHECK_INT_EQ(write_a_note(s), 0);
        store_close(s);
}

/* Chunks a contract writer inserted get their derived rows in quire's next
 * write, whatever that write is: a rename of a path without rows (which
 * changes nothing else), a rename of their own file, or an index. */
static void test_foreign_chunks_are_derived_by_any_write(void) {
        struct store *s = open_fresh();
        struct document a;
        REQUIRE(s);
        parse(SECTION_A, 1, &a);
        REQUIRE(apply_one(s, "/n/a.md", &a, NULL) == 0);
        sqlite3 *db = raw_open();
        REQUIRE(sqlite3_exec(db,
                             "INSERT INTO chunks(id, source_file, content, content_hash, start_line, end_line,"
                             " created_at, updated_at) VALUES"
                             " ('00000000000000000000000000000001', '/n/f.md', '数据库 #delta', 'h1', 3, 3, 'x', 'x'),"
                             " ('00000000000000000000000000000002', '/n/g.md', '東京 #kappa', 'h2', 3, 3, 'x', 'x')",
                             NULL, NULL, NULL) == SQLITE_OK);

        struct index_stats stats = { 0 };
        CHECK_INT_EQ(store_move(s, "default", "/n/nothing.md", "/n/else.md", false, &stats), 0);
        CHECK_INT_EQ(store_move(s, "default", "/n/g.md", "/n/h.md", false, &stats), 0);
        CHECK_INT_EQ(apply_one(s, "/n/b.md", &a, NULL), 0);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunk_tags t JOIN chunks c USING (seq)"
                                 " WHERE c.source_file = '/n/f.md' AND t.tag = 'delta'"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunk_tags t JOIN chunks c USING (seq)"
                                 " WHERE c.source_file = '/n/h.md' AND t.tag = 'kappa'"), 1);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks_cjk k JOIN chunks c ON c.seq = k.rowid"
                                 " WHERE c.source_file IN ('/n/f.md', '/n/h.md')"), 2);
        CHECK_INT_EQ(raw_int(db, "SELECT count(*) FROM chunks_cjk WHERE source_file LIKE '%g.md%'"), 0);
        sqlite3_close(db);
        store_close(s);
        document_done(&a);
}

static void test_outermost_roots_first(void) {
        char *paths[] = { "/n/a-b", "/n/a/b/c", "/n/a", "/n/a/b", "/m", "/n/a", "/n/ab" };
        size_t n = ELEMENTSOF(paths);
        size_t n_kept = roots_outermost_first(paths, n);

        /* "/n/a-b" and "/n/ab" are siblings of "/n/a", not below it. */
        CHECK_INT_EQ(n_kept, 4);
        CHECK_STR_EQ(paths[0], "/m");
        CHECK_STR_EQ(paths[1], "/n/a");
        CHECK_STR_EQ(paths[2], "/n/a-b");
        CHECK_STR_EQ(paths[3], "/n/ab");
        /* Nothing lost: the rest are the nested ones and the repeat. */
        size_t n_nested = 0, n_repeat = 0;
        for (size_t i = n_kept; i < n; i++) {
                n_nested += strcmp(paths[i], "/n/a/b") == 0 || strcmp(paths[i], "/n/a/b/c") == 0;
                n_repeat += strcmp(paths[i], "/n/a") == 0;
        }
        CHECK_INT_EQ(n_nested, 2);
        CHECK_INT_EQ(n_repeat, 1);

        char *under_slash[] = { "/n", "/" };
        CHECK_INT_EQ(roots_outermost_first(under_slash, 2), 1);
        CHECK_STR_EQ(under_slash[0], "/");
        CHECK_INT_EQ(roots_outermost_first(NULL, 0), 0);

        CHECK(root_covers("/n", "/n"));
        CHECK(root_covers("/n", "/n/x"));
        CHECK(!root_covers("/n", "/nx"));
        CHECK(!root_covers("/n/x", "/n"));
        CHECK(root_covers("/", "/n"));
}

/* --- a files row vouches for the file only for changes it saw ---------- */

#define SEC INT64_C(1000000000)

static struct stat stat_at(int64_t size, int64_t mtime_ns, int64_t ctime_ns) {
        struct stat st = { .st_size = size };
        st.st_mtim = (struct timespec){ .tv_sec = mtime_ns / SEC, .tv_nsec = mtime_ns % SEC };
        st.st_ctim = (struct timespec){ .tv_sec = ctime_ns / SEC, .tv_nsec = ctime_ns % SEC };
        return st;
}

static void test_row_vouches_for_changes_before_it_by_the_timestamps_resolution(void) {
        int64_t t = 1700000000 * SEC; /* a whole second */
        struct file_row row = { .size = 10, .mtime_ns = t - 5 * SEC, .indexed_at_ns = t + 500000000 };

        /* A nanosecond filesystem: the ctime just before indexed_at vouches,
         * indexed_at itself does not (changed in that instant). */
        struct stat st = stat_at(10, row.mtime_ns, t + 499999999);
        CHECK(file_row_matches_stat(&row, &st));
        st = stat_at(10, row.mtime_ns, t + 500000000);
        CHECK(!file_row_matches_stat(&row, &st));
        /* Whole seconds (FAT, ext4 with 128-byte inodes): a rewrite in the
         * second of the indexing has the ctime of that second's start,
         * before indexed_at, and was taken for the indexed file. */
        st = stat_at(10, row.mtime_ns, t);
        CHECK(!file_row_matches_stat(&row, &st));
        st = stat_at(10, row.mtime_ns, t - 1 * SEC);
        CHECK(!file_row_matches_stat(&row, &st)); /* FAT: 2 s */
        st = stat_at(10, row.mtime_ns, t - 2 * SEC);
        CHECK(file_row_matches_stat(&row, &st));
        /* Hundredths (exFAT): a ctime of .490 may be a change up to .499. */
        row.indexed_at_ns = t + 495000000;
        st = stat_at(10, row.mtime_ns, t + 490000000);
        CHECK(!file_row_matches_stat(&row, &st));
        st = stat_at(10, row.mtime_ns, t + 480000000);
        CHECK(file_row_matches_stat(&row, &st));
        /* Size or mtime differ: never, however old the ctime. */
        st = stat_at(11, row.mtime_ns, t - 60 * SEC);
        CHECK(!file_row_matches_stat(&row, &st));
        st = stat_at(10, row.mtime_ns + 1, t - 60 * SEC);
        CHECK(!file_row_matches_stat(&row, &st));
        /* Saturated times (timestamp_ns() at the ends) neither overflow nor vouch. */
        CHECK(!inode_unchanged_since(INT64_MAX, INT64_MAX));
        CHECK(!inode_unchanged_since(INT64_MAX - 1, row.indexed_at_ns));
        CHECK(inode_unchanged_since(INT64_MIN, row.indexed_at_ns));
        /* An indexed_at that did not parse (0) vouches for nothing recent. */
        CHECK(!inode_unchanged_since(t, 0));
}

static void test_indexed_at_is_never_after_the_ctime_of_a_later_change(void) {
        /* The inode clock is CLOCK_REALTIME_COARSE, up to a tick behind
         * the precise clock: a file changed just after a precise
         * timestamp was taken could get a ctime before it (a few times
         * in 20,000 here, the timestamp being cut to milliseconds), and
         * that change was taken for indexed. */
        char dir[] = "/tmp/quire-test-clock-XXXXXX", path[64], now[UTC_TIMESTAMP_LEN];
        REQUIRE(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/note.md", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        unsigned before = 0;
        for (int i = 0; i < 20000; i++) {
                int64_t at_ns;
                struct stat st;
                utc_timestamp_now_coarse(now);
                REQUIRE(pwrite(fd, "x", 1, i % 64) == 1); /* sets the ctime */
                REQUIRE(fstat(fd, &st) == 0);
                REQUIRE(utc_timestamp_parse(now, &at_ns) == 0);
                before += timestamp_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) < at_ns;
        }
        CHECK_INT_EQ(before, 0);
        close(fd);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        log_setup("test-store");
        RUN(test_sequential_twins_collapse);
        RUN(test_outermost_roots_first);
        RUN(test_within_batch_twins_collapse);
        RUN(test_within_batch_change_keeps_last_state);
        RUN(test_failed_batch_leaves_nothing_staged);
        RUN(test_moved_chunk_keeps_id_and_counters);
        RUN(test_unchanged_reindex_writes_nothing);
        RUN(test_touch_updates_files_row_only);
        RUN(test_repeated_paragraph_kept_twice);
        RUN(test_delete_removes_rows_and_fts);
        RUN(test_list_files_is_sorted_and_bounded);
        RUN(test_search_ranks_and_filters_namespace);
        RUN(test_heading_filter_registered_once);
        RUN(test_search_bounds);
        RUN(test_move_file_keeps_ids_and_replaces_target);
        RUN(test_move_tree_rewrites_only_that_prefix);
        RUN(test_stale_move_keeps_the_new_names_rows);
        RUN(test_move_onto_rows_indexed_since_keeps_them);
        RUN(test_move_tree_leaves_paths_indexed_since);
        RUN(test_foreign_chunks_are_derived_by_any_write);
        RUN(test_open_refuses_foreign_file_untouched);
        RUN(test_open_refuses_newer_schema);
        RUN(test_second_open_keeps_the_first_ones_locks);
        RUN(test_empty_file_is_a_new_database);
        RUN(test_row_vouches_for_changes_before_it_by_the_timestamps_resolution);
        RUN(test_indexed_at_is_never_after_the_ctime_of_a_later_change);
        RUN(test_new_database_mode_and_version);
        RUN(test_writer_outwaits_the_lock_timeout_while_others_commit);
        RUN(test_writer_gives_up_on_a_lock_nobody_commits_under);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "warning: could not remove %s\n", tmpdir);
        return check_summary();
}
