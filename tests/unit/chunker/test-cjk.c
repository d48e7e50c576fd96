/* CJK search (derive.h, docs/CHUNKER.md "Derived data"): which characters
 * are CJK, the exact bigram text, the query rewrite, and the whole design
 * end to end in a real SQLite FTS5 table with the contract's tokenizer
 * (unicode61 remove_diacritics 2): words of one, two and three characters
 * are found inside longer runs, and words that are not there are not. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "derive.h"
#include "macro.h"
#include "tokens.h"

static void test_cjk_characters(void) {
        static const uint32_t cjk[] = {
                0x4E00, 0x9FFF, 0x3400, 0x4DBF, 0xF900, 0x20000, 0x2A700, 0x2F800, 0x30000, /* Han */
                0x3005, 0x3007,                                                           /* 々 〇 */
                0x3041, 0x3093, 0x309D, 0x30A1, 0x30F3, 0x30FC, 0x31F0,                   /* kana, ー */
                0xFF66, 0xFF70, 0xFF9D,                                                   /* halfwidth kana */
                0x1B000, 0x1B132,                                                         /* kana supplement */
                0xAC00, 0xD7A3, 0x1100, 0x11FF, 0x3131, 0xA960, 0xD7B0, 0xFFA1,           /* Hangul */
        };
        static const uint32_t not_cjk[] = {
                'a', '0', 0xE9, 0x3000, 0x3001, 0x3002, 0x300C, 0x300D, 0x3010, /* 、。「」【 */
                0x30FB, 0x30A0, 0x3099, 0x309B, 0xFF01, 0xFF0C, 0xFF21, 0xFF10, /* ・ ゛ ！ ， Ａ ０ */
                0x2E80, 0x2F00, 0x1F600, 0x0E01, 0x10FFFF, 0x40000,
        };

        for (size_t i = 0; i < ELEMENTSOF(cjk); i++)
                if (!cjk_is_cjk(cjk[i])) {
                        fprintf(stderr, "    U+%04X should be CJK\n", cjk[i]);
                        CHECK(cjk_is_cjk(cjk[i]));
                }
        for (size_t i = 0; i < ELEMENTSOF(not_cjk); i++)
                if (cjk_is_cjk(not_cjk[i])) {
                        fprintf(stderr, "    U+%04X should not be CJK\n", not_cjk[i]);
                        CHECK(!cjk_is_cjk(not_cjk[i]));
                }
}

static void test_text_has_cjk(void) {
        CHECK(!cjk_text_has_cjk("", 0));
        CHECK(!cjk_text_has_cjk("plain ascii, café, Привет", strlen("plain ascii, café, Привет")));
        CHECK(!cjk_text_has_cjk("「」。、・！", strlen("「」。、・！")));
        CHECK(cjk_text_has_cjk("text 数", strlen("text 数")));
        CHECK(cjk_text_has_cjk("ｶ", strlen("ｶ")));
        CHECK(cjk_text_has_cjk("한", strlen("한")));
        CHECK(!cjk_text_has_cjk("\xE6\x95", 2)); /* a truncated 数 */
}

#define CHECK_INDEXES(text, expected)                                             \
        do {                                                                      \
                _cleanup_free_ char *_out = NULL;                                 \
                REQUIRE_INT_EQ(cjk_index_text(text, strlen(text), &_out), 0);     \
                CHECK_STR_EQ(_out, expected);                                     \
        } while (0)

static void test_index_text_is_bigrams_then_the_last_unigram(void) {
        CHECK_INDEXES("数据库的索引", " 数据 据库 库的 的索 索引 引 ");
        CHECK_INDEXES("数", " 数 ");
        CHECK_INDEXES("数据", " 数据 据 ");
}

static void test_index_text_keeps_everything_else(void) {
        CHECK_INDEXES("SQLite数据库。abc", "SQLite 数据 据库 库 。abc");
        CHECK_INDEXES("東京都の天気、晴れ", " 東京 京都 都の の天 天気 気 、 晴れ れ ");
        CHECK_INDEXES("한국어 검색 엔진", " 한국 국어 어   검색 색   엔진 진 ");
        CHECK_INDEXES("カタカナｶﾀｶﾅー", " カタ タカ カナ ナｶ ｶﾀ ﾀｶ ｶﾅ ﾅー ー ");
        CHECK_INDEXES("no cjk at all", "no cjk at all");
        CHECK_INDEXES("", "");
}

#define CHECK_REWRITES(query, expected)                                                    \
        do {                                                                               \
                _cleanup_free_ char *_out = NULL;                                          \
                int _r = cjk_rewrite_query(query, &_out);                                  \
                CHECK_INT_EQ(_r, (expected) ? 1 : 0);                                      \
                if ((expected) && _out)                                                    \
                        CHECK_STR_EQ(_out, (expected) ? (expected) : "");                  \
                if (!(expected))                                                           \
                        CHECK(!_out);                                                      \
        } while (0)

static void test_rewrite_leaves_queries_without_cjk(void) {
        CHECK_REWRITES("hello world", NULL);
        CHECK_REWRITES("\"a phrase\" AND NOT x* OR NEAR(a b, 3) content:y", NULL);
        CHECK_REWRITES("数据:x", NULL); /* a column name, not a phrase */
}

static void test_rewrite_barewords(void) {
        CHECK_REWRITES("数", "数*");
        CHECK_REWRITES("数据", "\"数据\"");
        CHECK_REWRITES("数据库", "\"数据 据库\"");
        CHECK_REWRITES("SQLite数据库", "\"SQLite 数据 据库\"");
        CHECK_REWRITES("数据库SQLite", "\"数据 据库 库 SQLite\"");
        CHECK_REWRITES("数x", "\"数 x\"");
        CHECK_REWRITES("x数", "\"x 数\"*");
        CHECK_REWRITES("数据。库", "\"数据 据 。 库\"*");
}

static void test_rewrite_prefix_star(void) {
        CHECK_REWRITES("数*", "数*");
        CHECK_REWRITES("数据*", "\"数据\"");
        CHECK_REWRITES("数据库 *", "\"数据 据库\"");
        CHECK_REWRITES("数据abc*", "\"数据 据 abc\"*");
}

static void test_rewrite_strings(void) {
        CHECK_REWRITES("\"数据库 abc\"", "\"数据 据库 库 abc\"");
        CHECK_REWRITES("\"abc 数\"", "\"abc 数\"*");
        CHECK_REWRITES("\"abc 数\"*", "\"abc 数\"*");
        CHECK_REWRITES("\"say \"\"数据\"\"\"", "\"say \"\"数据 \"\"\"");
        CHECK_REWRITES("\"\"", NULL);
}

static void test_rewrite_keeps_operators_and_filters(void) {
        CHECK_REWRITES("数据 AND NOT 索引 OR x", "\"数据\" AND NOT \"索引\" OR x");
        CHECK_REWRITES("NEAR(数据 索引, 5)", "NEAR(\"数据\" \"索引\", 5)");
        CHECK_REWRITES("content:数据 -source_file:x", "content:\"数据\" -source_file:x");
        CHECK_REWRITES("{content heading_hierarchy}: 数据", "{content heading_hierarchy}: \"数据\"");
        CHECK_REWRITES("^数据库 (a OR 数)", "^\"数据 据库\" (a OR 数*)");
        CHECK_REWRITES("数据 + 库", "\"数据 据\" + 库*");
}

static void test_rewrite_refuses_an_unterminated_string(void) {
        char *out = (char *) 1;

        CHECK_INT_EQ(cjk_rewrite_query("数据 \"abc", &out), -EINVAL);
        CHECK(!out);
        CHECK_INT_EQ(cjk_rewrite_query("\"abc\"\"", &out), -EINVAL);
}

/* ---- end to end in SQLite ---- */

static const char *const sentences[] = {
        "数据库的索引",                 /* 1: database index */
        "東京都の天気は晴れです",       /* 2 */
        "한국어 검색 엔진",             /* 3 */
        "SQLite数据库支持全文检索",     /* 4 */
        "Tokyo weather 東京 today",     /* 5 */
        "索引。数据",                   /* 6: 。 breaks the run */
};

struct fts {
        sqlite3 *db;
        sqlite3_stmt *query;
};

static void fts_close(struct fts *f) {
        sqlite3_finalize(f->query);
        sqlite3_close(f->db);
}

static int fts_open(struct fts *f) {
        *f = (struct fts) { 0 };
        if (sqlite3_open(":memory:", &f->db) != SQLITE_OK ||
            sqlite3_exec(f->db,
                         "CREATE VIRTUAL TABLE t USING fts5(body, title,"
                         " tokenize='unicode61 remove_diacritics 2')",
                         NULL, NULL, NULL) != SQLITE_OK)
                return -EIO;

        sqlite3_stmt *insert;
        if (sqlite3_prepare_v2(f->db, "INSERT INTO t(rowid, body, title) VALUES (?, ?, ?)", -1, &insert, NULL) !=
            SQLITE_OK)
                return -EIO;
        for (size_t i = 0; i < ELEMENTSOF(sentences); i++) {
                _cleanup_free_ char *text = NULL;
                if (cjk_index_text(sentences[i], strlen(sentences[i]), &text) < 0)
                        break;
                sqlite3_bind_int64(insert, 1, (sqlite3_int64) i + 1);
                sqlite3_bind_text(insert, 2, text, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(insert, 3, i == 0 ? " 标题 题 " : "title", -1, SQLITE_STATIC);
                if (sqlite3_step(insert) != SQLITE_DONE)
                        break;
                sqlite3_reset(insert);
        }
        sqlite3_finalize(insert);
        if (sqlite3_prepare_v2(f->db, "SELECT group_concat(rowid, ',') FROM (SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid)",
                               -1, &f->query, NULL) != SQLITE_OK)
                return -EIO;
        return 0;
}

/* The rows (as "1,4") the user's query finds through the rewrite, or
 * "error: ..." when SQLite refuses the rewritten query. */
static char *search(struct fts *f, const char *user_query) {
        _cleanup_free_ char *rewritten = NULL;
        char *rows = NULL;

        int r = cjk_rewrite_query(user_query, &rewritten);
        if (r < 0)
                return strdup("error: rewrite");
        sqlite3_reset(f->query);
        sqlite3_bind_text(f->query, 1, r > 0 ? rewritten : user_query, -1, SQLITE_STATIC);
        int rc = sqlite3_step(f->query);
        if (rc != SQLITE_ROW) {
                if (asprintf(&rows, "error: %s", sqlite3_errmsg(f->db)) < 0)
                        return NULL;
                return rows;
        }
        const unsigned char *text = sqlite3_column_text(f->query, 0);
        return strdup(text ? (const char *) text : "");
}

#define CHECK_FINDS(f, query, expected)                         \
        do {                                                    \
                _cleanup_free_ char *_rows = search(f, query);  \
                REQUIRE(_rows);                                 \
                if (strcmp(_rows, expected) != 0)               \
                        fprintf(stderr, "    query %s\n", query); \
                CHECK_STR_EQ(_rows, expected);                  \
        } while (0)

static void test_sqlite_finds_words_inside_runs(void) {
        struct fts f;

        REQUIRE_INT_EQ(fts_open(&f), 0);
        /* One character: as the start of a bigram, or as the last unigram. */
        CHECK_FINDS(&f, "数", "1,4,6");
        CHECK_FINDS(&f, "引", "1,6");
        CHECK_FINDS(&f, "晴", "2");
        CHECK_FINDS(&f, "검", "3");
        /* Two and three characters, anywhere in a longer run. */
        CHECK_FINDS(&f, "数据", "1,4,6");
        CHECK_FINDS(&f, "索引", "1,6");
        CHECK_FINDS(&f, "京都", "2");
        CHECK_FINDS(&f, "국어", "3");
        CHECK_FINDS(&f, "数据库", "1,4");
        CHECK_FINDS(&f, "据库的", "1");
        CHECK_FINDS(&f, "東京都", "2");
        CHECK_FINDS(&f, "全文检索", "4");
        CHECK_FINDS(&f, "数据*", "1,4,6");
        CHECK_FINDS(&f, "数据库*", "1,4");
        fts_close(&f);
}

static void test_sqlite_does_not_find_what_is_not_there(void) {
        struct fts f;

        REQUIRE_INT_EQ(fts_open(&f), 0);
        CHECK_FINDS(&f, "猫", "");
        CHECK_FINDS(&f, "库数", "");     /* both characters are in row 1, not in this order */
        CHECK_FINDS(&f, "据索", "");     /* 据 and 索 are in row 1, not next to each other */
        CHECK_FINDS(&f, "引数", "");     /* row 6 has 索引。数据: 。 breaks the run */
        CHECK_FINDS(&f, "数据库索引", ""); /* row 1 has 的 between them */
        CHECK_FINDS(&f, "京都の天気は晴れですね", "");
        CHECK_FINDS(&f, "국어검", "");
        fts_close(&f);
}

static void test_sqlite_mixes_cjk_and_latin(void) {
        struct fts f;

        REQUIRE_INT_EQ(fts_open(&f), 0);
        CHECK_FINDS(&f, "SQLite 数据库", "4");
        CHECK_FINDS(&f, "SQLite数据库", "4");
        CHECK_FINDS(&f, "\"SQLite 数据\"", "4");
        CHECK_FINDS(&f, "sqlite数据库支持", "4");
        CHECK_FINDS(&f, "tokyo 東京", "5");
        CHECK_FINDS(&f, "\"weather 東京 today\"", "5");
        CHECK_FINDS(&f, "\"東京 today\"", "5");
        CHECK_FINDS(&f, "\"東京都 today\"", "");
        CHECK_FINDS(&f, "東京 NOT weather", "2");
        CHECK_FINDS(&f, "索引 OR 검색", "1,3,6");
        CHECK_FINDS(&f, "NEAR(数据 索引, 3)", "1,6");
        CHECK_FINDS(&f, "title:标题", "1");
        CHECK_FINDS(&f, "body:标题", "");
        CHECK_FINDS(&f, "{title}: 标", "1");
        CHECK_FINDS(&f, "^数据", "1");
        CHECK_FINDS(&f, "^索引", "6");
        CHECK_FINDS(&f, "weather", "5");
        fts_close(&f);
}

/* A small xorshift generator: the same "random" documents on every run. */
static uint32_t rng_state = 0x9E3779B9u;
static uint32_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        return rng_state;
}

static const char *const alphabet[] = { "数", "据", "库", "索", "a", " ", "。" };

static void random_text(char *buf, size_t n_chars, size_t n_symbols) {
        buf[0] = '\0';
        for (size_t i = 0; i < n_chars; i++)
                strcat(buf, alphabet[rng() % n_symbols]);
}

/* Against a brute-force oracle: a query of CJK characters finds exactly
 * the rows whose text holds it as a substring. Four characters make every
 * bigram and repeats likely, so both halves get exercised. */
static void test_sqlite_finds_exactly_the_rows_holding_the_word(void) {
        enum { N_ROWS = 200, N_QUERIES = 400 };
        static char docs[N_ROWS][16 * 4 + 1];
        sqlite3 *db = NULL;
        sqlite3_stmt *insert = NULL, *query = NULL;
        size_t n_found = 0, n_checked = 0;

        REQUIRE_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
        REQUIRE_INT_EQ(sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')",
                                    NULL, NULL, NULL),
                       SQLITE_OK);
        REQUIRE_INT_EQ(sqlite3_prepare_v2(db, "INSERT INTO t(rowid, x) VALUES (?, ?)", -1, &insert, NULL), SQLITE_OK);
        for (int i = 0; i < N_ROWS; i++) {
                _cleanup_free_ char *text = NULL;
                random_text(docs[i], 1 + rng() % 16, ELEMENTSOF(alphabet));
                REQUIRE_INT_EQ(cjk_index_text(docs[i], strlen(docs[i]), &text), 0);
                sqlite3_bind_int(insert, 1, i);
                sqlite3_bind_text(insert, 2, text, -1, SQLITE_TRANSIENT);
                CHECK_INT_EQ(sqlite3_step(insert), SQLITE_DONE);
                sqlite3_reset(insert);
        }
        sqlite3_finalize(insert);
        REQUIRE_INT_EQ(sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", -1, &query, NULL),
                       SQLITE_OK);

        for (int q = 0; q < N_QUERIES; q++) {
                char word[5 * 4 + 1];
                _cleanup_free_ char *rewritten = NULL;
                bool found[N_ROWS] = { false };

                random_text(word, 1 + rng() % 4, 4);
                REQUIRE_INT_EQ(cjk_rewrite_query(word, &rewritten), 1);
                sqlite3_bind_text(query, 1, rewritten, -1, SQLITE_STATIC);
                int rc;
                while ((rc = sqlite3_step(query)) == SQLITE_ROW)
                        found[sqlite3_column_int(query, 0)] = true;
                CHECK_INT_EQ(rc, SQLITE_DONE);
                sqlite3_reset(query);
                for (int i = 0; i < N_ROWS; i++) {
                        bool expected = strstr(docs[i], word) != NULL;
                        if (found[i] != expected) {
                                fprintf(stderr, "    %s (as %s) in row \"%s\": found %d\n", word, rewritten, docs[i],
                                        found[i]);
                                CHECK(found[i] == expected);
                        }
                        n_found += found[i];
                        n_checked++;
                }
        }
        printf("  %zu of %zu (query, row) pairs match\n", n_found, n_checked);
        CHECK(n_found > n_checked / 20);
        sqlite3_finalize(query);
        sqlite3_close(db);
}

/* Random queries of words, CJK, quotes, operators and filters: whatever
 * FTS5 accepts as written, it accepts rewritten. */
static void test_sqlite_accepts_every_rewrite_of_a_valid_query(void) {
        static const char *const pieces[] = {
                "数", "据库", "a", "b数", "数c", " ", " ", "\"", "\"\"", "*", "+", "^", "(", ")", "AND", "OR", "NOT",
                "NEAR(", ",", "2", "x:", "{x y}:", "-", ":",
        };
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        size_t n_valid = 0;

        REQUIRE_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
        REQUIRE_INT_EQ(sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(x, y); INSERT INTO t VALUES ('a', 'b')", NULL,
                                    NULL, NULL),
                       SQLITE_OK);
        REQUIRE_INT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?", -1, &stmt, NULL), SQLITE_OK);
        for (int q = 0; q < 20000; q++) {
                char query[256] = "";
                _cleanup_free_ char *rewritten = NULL;

                for (size_t k = 1 + rng() % 8; k > 0; k--)
                        strcat(query, pieces[rng() % ELEMENTSOF(pieces)]);
                sqlite3_bind_text(stmt, 1, query, -1, SQLITE_STATIC);
                bool is_valid = sqlite3_step(stmt) == SQLITE_ROW;
                sqlite3_reset(stmt);
                int r = cjk_rewrite_query(query, &rewritten);
                if (!is_valid || r <= 0)
                        continue;
                n_valid++;
                sqlite3_bind_text(stmt, 1, rewritten, -1, SQLITE_STATIC);
                if (sqlite3_step(stmt) != SQLITE_ROW) {
                        fprintf(stderr, "    %s -> %s: %s\n", query, rewritten, sqlite3_errmsg(db));
                        CHECK(false);
                }
                sqlite3_reset(stmt);
        }
        printf("  %zu valid queries with CJK rewritten\n", n_valid);
        CHECK(n_valid > 1000);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
}

struct token_check {
        const char *text;
        size_t n_tokens, n_wrong;
        bool is_quiet;
};

/* Each token must be exactly one whitespace-separated word of the text. */
static int token_cb(void *ctx, int flags, const char *token, int n, int start, int end) {
        struct token_check *c = ctx;

        (void) flags;
        c->n_tokens++;
        bool is_word = (start == 0 || c->text[start - 1] == ' ') && (c->text[end] == ' ' || c->text[end] == '\0');
        if (!is_word || n != end - start || memcmp(token, c->text + start, (size_t) n) != 0) {
                if (c->n_wrong++ < 5 && !c->is_quiet)
                        fprintf(stderr, "    token at %d..%d is not a whole word\n", start, end);
        }
        return SQLITE_OK;
}

/* Every code point cjk_is_cjk() accepts is a token character for
 * unicode61 (remove_diacritics 2, the contract's) that nothing folds, so a
 * pair of them is exactly one token: otherwise the bigram text would not
 * mean what the query rewrite assumes. The text goes through the
 * tokenizer itself; indexing one document of 171k distinct terms takes
 * FTS5 minutes. */
static void test_sqlite_every_cjk_pair_is_one_token(void) {
        sqlite3 *db = NULL;
        fts5_tokenizer tokenizer;
        Fts5Tokenizer *tok = NULL;
        void *user_data = NULL;
        const char *args[] = { "remove_diacritics", "2" };
        _cleanup_free_ char *text = NULL;
        size_t len = 0, n = 0;
        FILE *f = open_memstream(&text, &len);

        REQUIRE(f);
        for (uint32_t c = 0x80; c <= 0x10FFFF; c++) {
                if (!cjk_is_cjk(c))
                        continue;
                for (int k = 0; k < 2; k++) {
                        if (c < 0x10000)
                                fprintf(f, "%c%c%c", 0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F));
                        else
                                fprintf(f, "%c%c%c%c", 0xF0 | (c >> 18), 0x80 | ((c >> 12) & 0x3F),
                                        0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F));
                }
                fputc(' ', f);
                n++;
        }
        fclose(f);
        REQUIRE(text);

        REQUIRE_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
        fts5_api *api = fts5_api_of(db);
        REQUIRE(api);
        REQUIRE_INT_EQ(api->xFindTokenizer(api, "unicode61", &user_data, &tokenizer), SQLITE_OK);
        REQUIRE_INT_EQ(tokenizer.xCreate(user_data, args, (int) ELEMENTSOF(args), &tok), SQLITE_OK);

        struct token_check check = { .text = text };
        CHECK_INT_EQ(tokenizer.xTokenize(tok, &check, FTS5_TOKENIZE_DOCUMENT, text, (int) len, token_cb), SQLITE_OK);
        CHECK_INT_EQ(check.n_tokens, n);
        CHECK_INT_EQ(check.n_wrong, 0);
        printf("  %zu CJK code points\n", n);

        /* And the test can fail: a separator in the pair splits it. */
        struct token_check split = { .text = "\xE6\x95\xB0\xE3\x80\x82", .is_quiet = true }; /* 数。 */
        tokenizer.xTokenize(tok, &split, FTS5_TOKENIZE_DOCUMENT, split.text, 6, token_cb);
        CHECK_INT_EQ(split.n_wrong, 1);

        tokenizer.xDelete(tok);
        sqlite3_close(db);
}

int main(void) {
        RUN(test_cjk_characters);
        RUN(test_text_has_cjk);
        RUN(test_index_text_is_bigrams_then_the_last_unigram);
        RUN(test_index_text_keeps_everything_else);
        RUN(test_rewrite_leaves_queries_without_cjk);
        RUN(test_rewrite_barewords);
        RUN(test_rewrite_prefix_star);
        RUN(test_rewrite_strings);
        RUN(test_rewrite_keeps_operators_and_filters);
        RUN(test_rewrite_refuses_an_unterminated_string);
        RUN(test_sqlite_finds_words_inside_runs);
        RUN(test_sqlite_does_not_find_what_is_not_there);
        RUN(test_sqlite_mixes_cjk_and_latin);
        RUN(test_sqlite_finds_exactly_the_rows_holding_the_word);
        RUN(test_sqlite_accepts_every_rewrite_of_a_valid_query);
        RUN(test_sqlite_every_cjk_pair_is_one_token);
        return check_summary();
}
