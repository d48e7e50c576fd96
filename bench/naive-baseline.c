/* The naive baseline of docs/BENCHMARKS.md: walk the tree, read every
 * Markdown file, insert one whole-file row per file into a plain FTS5
 * table, all in one transaction. No chunking, no diff, no ids: the floor
 * any indexer that stores the text in SQLite FTS5 must beat. */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *db;
static sqlite3_stmt *insert;
static size_t n_files;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        size_t n = strlen(path);
        if (type != FTW_F || n < 3 || strcmp(path + n - 3, ".md") != 0 || strstr(path, "/."))
                return 0;
        FILE *f = fopen(path, "rb");
        if (!f)
                return 0;
        char *buf = malloc((size_t) st->st_size + 1);
        size_t got = fread(buf, 1, (size_t) st->st_size, f);
        fclose(f);
        sqlite3_bind_text(insert, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 2, buf, (int) got, free);
        if (sqlite3_step(insert) != SQLITE_DONE) {
                fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
                return 1;
        }
        sqlite3_reset(insert);
        n_files++;
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: naive-baseline DB DIR\n");
                return 2;
        }
        if (sqlite3_open(argv[1], &db) != SQLITE_OK ||
            sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(path, content,"
                         " tokenize='unicode61 remove_diacritics 2'); BEGIN;",
                         NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "INSERT INTO docs(path, content) VALUES (?, ?)", -1, &insert, NULL) != SQLITE_OK) {
                fprintf(stderr, "setup: %s\n", sqlite3_errmsg(db));
                return 1;
        }
        if (nftw(argv[2], visit, 64, FTW_PHYS) != 0)
                return 1;
        sqlite3_finalize(insert);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
                fprintf(stderr, "commit: %s\n", sqlite3_errmsg(db));
                return 1;
        }
        sqlite3_close(db);
        printf("%zu files\n", n_files);
        return 0;
}
