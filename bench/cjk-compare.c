/* The two ways issue 9 offered to make CJK words findable, measured on the
 * same chunks (docs/STORAGE.md, "Why the CJK index is a sidecar"):
 *
 *   sidecar    the contract's FTS5 table with its stock unicode61 tokenizer,
 *              plus chunks_cjk: the text of each chunk that holds CJK with
 *              every CJK run spelled as bigrams (cjk_index_text), under the
 *              same stock tokenizer. What quire ships.
 *   tokenizer  one FTS5 table whose tokenizer wraps unicode61 and splits
 *              each CJK token into the same bigrams: what every writer
 *              would have to load as an extension.
 *   none       the contract's table alone: what a CJK index costs at all.
 *
 * Both get every chunk of every Markdown file under DIR (chunked as quire
 * does), inserted in one transaction by one statement per chunk. Prints
 * CPU time of the inserts and the database size for each, three rounds
 * interleaved.
 *     build-bench/bench/cjk-compare DIR OUT-DIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "derive.h"
#include "document.h"
#include "macro.h"
#include "tokens.h"

static struct document *docs;
static size_t n_docs, cap_docs;

static int load(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        size_t n = strlen(path);
        if (type != FTW_F || n < 3 || strcmp(path + n - 3, ".md") != 0 || strstr(path, "/."))
                return 0;
        if (n_docs == cap_docs) {
                cap_docs = cap_docs ? cap_docs * 2 : 1024;
                docs = realloc(docs, cap_docs * sizeof *docs);
                if (!docs)
                        return 1;
        }
        if (document_load(AT_FDCWD, path, NULL, &docs[n_docs]) == 0)
                n_docs++;
        return 0;
}

/* --- the bigram tokenizer: unicode61's tokens, CJK ones cut in bigrams -- */

struct bigram_tokenizer {
        fts5_tokenizer inner;
        Fts5Tokenizer *inner_instance;
};

struct bigram_ctx {
        void *ctx;
        int (*token)(void *, int, const char *, int, int, int);
};

static int utf8_len(unsigned char c) {
        return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static int bigram_cb(void *p, int flags, const char *tok, int n, int start, int end) {
        struct bigram_ctx *b = p;
        const unsigned char *s = (const unsigned char *) tok;
        int offs[4096], k = 0;

        if (!cjk_text_has_cjk(tok, (size_t) n))
                return b->token(b->ctx, flags, tok, n, start, end);
        for (int i = 0; i < n && k < 4095; i += utf8_len(s[i]))
                offs[k++] = i;
        offs[k] = n;
        if (k == 1)
                return b->token(b->ctx, flags, tok, n, start, end);
        for (int i = 0; i + 1 < k; i++) {
                int rc = b->token(b->ctx, flags, tok + offs[i], offs[i + 2] - offs[i], start, end);
                if (rc != SQLITE_OK)
                        return rc;
        }
        return b->token(b->ctx, flags, tok + offs[k - 1], n - offs[k - 1], start, end);
}

static int bigram_create(void *api, const char **argv, int argc, Fts5Tokenizer **ret) {
        fts5_api *fts = api;
        struct bigram_tokenizer *t = calloc(1, sizeof *t);
        void *user;
        if (!t)
                return SQLITE_NOMEM;
        int rc = fts->xFindTokenizer(fts, "unicode61", &user, &t->inner);
        if (rc == SQLITE_OK)
                rc = t->inner.xCreate(user, argv, argc, &t->inner_instance);
        if (rc != SQLITE_OK) {
                free(t);
                return rc;
        }
        *ret = (Fts5Tokenizer *) t;
        return SQLITE_OK;
}

static void bigram_delete(Fts5Tokenizer *p) {
        struct bigram_tokenizer *t = (struct bigram_tokenizer *) p;
        t->inner.xDelete(t->inner_instance);
        free(t);
}

static int bigram_tokenize(Fts5Tokenizer *p, void *ctx, int flags, const char *text, int n,
                           int (*token)(void *, int, const char *, int, int, int)) {
        struct bigram_tokenizer *t = (struct bigram_tokenizer *) p;
        struct bigram_ctx b = { ctx, token };
        return t->inner.xTokenize(t->inner_instance, &b, flags, text, n, bigram_cb);
}

/* --- the runs ------------------------------------------------------------ */

static double cpu_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql) {
        char *err = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
                fprintf(stderr, "cjk-compare: %s: %s\n", sql, err);
                sqlite3_free(err);
                return -1;
        }
        return 0;
}

enum variant {
        VARIANT_SIDECAR,   /* what quire ships */
        VARIANT_TOKENIZER, /* the loadable-extension alternative */
        VARIANT_NONE,      /* no CJK index at all: the floor */
};

static const char *const variant_names[] = {
        [VARIANT_SIDECAR] = "sidecar (shipped)",
        [VARIANT_TOKENIZER] = "tokenizer extension",
        [VARIANT_NONE] = "no CJK index",
};

static int run(const char *path, enum variant variant) {
        bool is_tokenizer = variant == VARIANT_TOKENIZER, has_sidecar = variant == VARIANT_SIDECAR;
        sqlite3 *db;
        sqlite3_stmt *main_insert = NULL, *cjk_insert = NULL;
        size_t n_chunks = 0, n_cjk = 0;

        unlink(path);
        if (sqlite3_open(path, &db) != SQLITE_OK)
                return -1;
        if (is_tokenizer) {
                fts5_api *api = fts5_api_of(db);
                if (!api || api->xCreateTokenizer(api, "quire_bigram", api, &(fts5_tokenizer){ bigram_create,
                                                  bigram_delete, bigram_tokenize }, NULL) != SQLITE_OK)
                        return -1;
        }
        if (exec(db, "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL") < 0 ||
            exec(db, is_tokenizer ? "CREATE VIRTUAL TABLE t USING fts5(content, source_file, heading_hierarchy,"
                                    " tokenize='quire_bigram remove_diacritics 2')"
                                  : "CREATE VIRTUAL TABLE t USING fts5(content, source_file, heading_hierarchy,"
                                    " tokenize='unicode61 remove_diacritics 2');"
                                    "CREATE VIRTUAL TABLE k USING fts5(content, source_file, heading_hierarchy,"
                                    " tokenize='unicode61 remove_diacritics 2')") < 0 ||
            sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3)", -1, &main_insert, NULL) != SQLITE_OK ||
            (has_sidecar &&
             sqlite3_prepare_v2(db, "INSERT INTO k VALUES (?1, ?2, ?3)", -1, &cjk_insert, NULL) != SQLITE_OK))
                return -1;

        double started = cpu_seconds();
        exec(db, "BEGIN");
        for (size_t d = 0; d < n_docs; d++)
                for (size_t i = 0; i < docs[d].chunks.n_items; i++) {
                        const struct chunk *c = &docs[d].chunks.items[i];
                        sqlite3_bind_text(main_insert, 1, c->content, (int) c->content_len, SQLITE_STATIC);
                        sqlite3_bind_text(main_insert, 2, "/path/of/the/note.md", -1, SQLITE_STATIC);
                        sqlite3_bind_text(main_insert, 3, c->heading_hierarchy, -1, SQLITE_STATIC);
                        sqlite3_step(main_insert);
                        sqlite3_reset(main_insert);
                        n_chunks++;
                        if (!has_sidecar || !c->cjk_content)
                                continue;
                        sqlite3_bind_text(cjk_insert, 1, c->cjk_content, -1, SQLITE_STATIC);
                        sqlite3_bind_text(cjk_insert, 2, "/path/of/the/note.md", -1, SQLITE_STATIC);
                        sqlite3_bind_text(cjk_insert, 3, c->cjk_heading, -1, SQLITE_STATIC);
                        sqlite3_step(cjk_insert);
                        sqlite3_reset(cjk_insert);
                        n_cjk++;
                }
        exec(db, "COMMIT");
        double cpu = cpu_seconds() - started;
        sqlite3_finalize(main_insert);
        sqlite3_finalize(cjk_insert);
        exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        sqlite3_close(db);

        struct stat st;
        stat(path, &st);
        printf("| %s | %zu | %zu | %.3f s | %.1f MiB |\n", variant_names[variant], n_chunks, n_cjk, cpu,
               (double) st.st_size / (1 << 20));
        return 0;
}

int main(int argc, char **argv) {
        char path[4096];

        if (argc != 3) {
                fprintf(stderr, "usage: cjk-compare DIR OUT-DIR\n");
                return 2;
        }
        if (nftw(argv[1], load, 64, FTW_PHYS) != 0)
                return 1;
        printf("| variant | chunks | CJK rows | CPU time of the inserts | database |\n|---|---|---|---|---|\n");
        /* Interleaved, three rounds: machine noise hits both alike. */
        for (int round = 0; round < 3; round++)
                for (int v = 0; v < (int) ELEMENTSOF(variant_names); v++) {
                        snprintf(path, sizeof path, "%s/cjk-%d.db", argv[2], v);
                        if (run(path, (enum variant) v) < 0)
                                return 1;
                }
        return 0;
}
