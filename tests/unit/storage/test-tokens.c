/* Token tapes (storage/tokens.h): what the writer's "unicode61" plays back
 * is token for token what the real unicode61 makes of the same text; it
 * plays only document texts it holds a tape for, and only into a table
 * declared with quire's arguments; a cold index through sync_run() plays
 * every text it inserts, and leaves the same FTS index (term, row, column,
 * position) as one the writer tokenized itself. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "macro.h"
#include "store-internal.h"
#include "sync.h"
#include "tokens.h"
#include "util.h"

static char tmpdir[] = "/tmp/quire-test-tokens-XXXXXX";

/* Texts that take every path of a tape: ASCII words already lowercase
 * (the text itself) or not (rebuilt from the text), folded and
 * diacritic-stripped ones (stored), CJK runs, tokens of 16 to 127 bytes
 * and longer (one- and two-byte heads and lengths), separators only,
 * nothing. */
static const char *const texts[] = {
        "Hello World, hello WORLD",
        "Élan vital: naïve café, ŒUVRE, Straße, İstanbul, ǅemal",
        "ΑΘΗΝΑ и Москва; ΣΊΣΥΦΟΣ",
        "中文字符 和 English 混合 数据 据库",
        "emoji 🙂 x🙂y and a ﬁne ligature, e\xcc\x81 combined",
        "tab\tsep, under_score, dash-case, 3.14159, v2.0-rc1",
        "[\"Heading\",\"Sub heading\"]",
        "/home/user/notes/Tar Archives.md",
        "",
        "   \n\t  ",
        "abcdefghijklmnopqrstu Abcdefghijklmnopqrstu ABCDEFGHIJKLMNOPQRSTU mIxEd",
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA b"),
};

/* The tokens of one text, flattened into a string that is equal for
 * equal token lists. */
struct listing {
        char *buf;
        size_t len, cap;
};

static int list_token(void *ctx, int tflags, const char *token, int n, int start, int end) {
        struct listing *l = ctx;
        char head[64];
        int h = snprintf(head, sizeof head, "%d:%d-%d:", tflags, start, end);
        if (GREEDY_REALLOC(l->buf, l->cap, l->len + (size_t) h + (size_t) n + 2, 256) < 0)
                return SQLITE_NOMEM;
        memcpy(l->buf + l->len, head, (size_t) h);
        memcpy(l->buf + l->len + h, token, (size_t) n);
        l->len += (size_t) h + (size_t) n;
        l->buf[l->len++] = '|';
        l->buf[l->len] = '\0';
        return SQLITE_OK;
}

/* What the tokenizer named unicode61 on db, created with args, makes of
 * text (with flags), as a listing; the caller frees it. */
static char *tokens_of(sqlite3 *db, const char **args, int n_args, int flags, const char *text) {
        fts5_api *api = fts5_api_of(db);
        fts5_tokenizer tok;
        void *userdata;
        Fts5Tokenizer *t;
        struct listing l = { 0 };

        if (!api || api->xFindTokenizer(api, "unicode61", &userdata, &tok) != SQLITE_OK ||
            tok.xCreate(userdata, args, n_args, &t) != SQLITE_OK)
                abort();
        if (tok.xTokenize(t, &l, flags, text, (int) strlen(text), list_token) != SQLITE_OK)
                abort();
        tok.xDelete(t);
        return l.buf ? l.buf : strdup("");
}

static const char *table_args[] = { "remove_diacritics", "2" };

static void test_played_tokens_are_unicode61s(void) {
        sqlite3 *plain = NULL, *writer = NULL;
        struct token_recorder *rec = NULL;
        struct token_replay *rp = NULL;
        struct token_tapes tapes = { 0 };

        REQUIRE(sqlite3_open(":memory:", &plain) == SQLITE_OK);
        REQUIRE(sqlite3_open(":memory:", &writer) == SQLITE_OK);
        REQUIRE(token_replay_install(writer, &rp) == 0);
        REQUIRE(token_recorder_new(&rec) == 0);
        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                REQUIRE(token_recorder_add(rec, &tapes, texts[i], strlen(texts[i])) == 0);
        token_replay_add(rp, &tapes);

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_free_ char *want = tokens_of(plain, table_args, 2, FTS5_TOKENIZE_DOCUMENT, texts[i]);
                _cleanup_free_ char *got = tokens_of(writer, table_args, 2, FTS5_TOKENIZE_DOCUMENT, texts[i]);
                CHECK_STR_EQ(got, want);
        }
        struct token_replay_counts c = token_replay_counts(rp);
        CHECK_INT_EQ(c.played, ELEMENTSOF(texts));
        CHECK_INT_EQ(c.tokenized, 0);
        /* The lowercase path of the tape really was taken for plain words
         * and the stored one for folded words: both appear above. */
        _cleanup_free_ char *folded = tokens_of(writer, table_args, 2, FTS5_TOKENIZE_DOCUMENT, texts[1]);
        CHECK(strstr(folded, ":elan|") && strstr(folded, ":oeuvre|") == NULL && strstr(folded, ":œuvre|"));
        size_t n_played = ELEMENTSOF(texts) + 1;

        /* A query, and a document text with no tape: the real tokenizer. */
        _cleanup_free_ char *query = tokens_of(writer, table_args, 2, FTS5_TOKENIZE_QUERY, texts[0]);
        _cleanup_free_ char *query_want = tokens_of(plain, table_args, 2, FTS5_TOKENIZE_QUERY, texts[0]);
        CHECK_STR_EQ(query, query_want);
        _cleanup_free_ char *other = tokens_of(writer, table_args, 2, FTS5_TOKENIZE_DOCUMENT, "Not Recorded");
        CHECK_STR_EQ(other, "0:0-3:not|0:4-12:recorded|");
        c = token_replay_counts(rp);
        CHECK_INT_EQ(c.played, n_played);
        CHECK_INT_EQ(c.tokenized, 1);

        /* Another table's arguments: never played (diacritics kept here). */
        const char *keep_diacritics[] = { "remove_diacritics", "0" };
        _cleanup_free_ char *kept = tokens_of(writer, keep_diacritics, 2, FTS5_TOKENIZE_DOCUMENT, texts[1]);
        _cleanup_free_ char *kept_want = tokens_of(plain, keep_diacritics, 2, FTS5_TOKENIZE_DOCUMENT, texts[1]);
        CHECK_STR_EQ(kept, kept_want);
        CHECK(strstr(kept, ":élan|") != NULL);
        CHECK_INT_EQ(token_replay_counts(rp).played, n_played);

        /* Cleared: the tapes are gone. */
        token_replay_clear(rp);
        _cleanup_free_ char *after = tokens_of(writer, table_args, 2, FTS5_TOKENIZE_DOCUMENT, texts[0]);
        _cleanup_free_ char *after_want = tokens_of(plain, table_args, 2, FTS5_TOKENIZE_DOCUMENT, texts[0]);
        CHECK_STR_EQ(after, after_want);
        CHECK_INT_EQ(token_replay_counts(rp).played, n_played);
        CHECK_INT_EQ(token_replay_counts(rp).tokenized, 2);

        token_tapes_done(&tapes);
        token_recorder_free(rec);
        sqlite3_close(writer);
        token_replay_free(rp);
        sqlite3_close(plain);
}

struct where {
        const char *text;
        char *listing; /* "token=text|" or "token=copy|" per token */
};

static int note_where(void *ctx, int tflags, const char *token, int n, int start, int end) {
        struct where *w = ctx;
        bool is_text = token == w->text + start;
        char *old = w->listing;
        (void) tflags;
        (void) end;
        if (asprintf(&w->listing, "%s%.*s=%s|", old ? old : "", n, token, is_text ? "text" : "copy") < 0)
                abort();
        free(old);
        return SQLITE_OK;
}

static void test_lowercase_words_are_played_from_the_text_itself(void) {
        sqlite3 *writer = NULL;
        struct token_recorder *rec = NULL;
        struct token_replay *rp = NULL;
        struct token_tapes tapes = { 0 };
        const char *text = "tar Tar TAR x\xc3\x89lan \xc3\xa9lan \xe6\x95\xb0\xe6\x8d\xae";
        fts5_tokenizer tok;
        void *userdata;
        Fts5Tokenizer *t;
        struct where w = { .text = text };

        REQUIRE(sqlite3_open(":memory:", &writer) == SQLITE_OK);
        REQUIRE(token_replay_install(writer, &rp) == 0);
        REQUIRE(token_recorder_new(&rec) == 0);
        REQUIRE(token_recorder_add(rec, &tapes, text, strlen(text)) == 0);
        token_replay_add(rp, &tapes);

        fts5_api *api = fts5_api_of(writer);
        REQUIRE(api && api->xFindTokenizer(api, "unicode61", &userdata, &tok) == SQLITE_OK);
        REQUIRE(tok.xCreate(userdata, table_args, 2, &t) == SQLITE_OK);
        REQUIRE(tok.xTokenize(t, &w, FTS5_TOKENIZE_DOCUMENT, text, (int) strlen(text), note_where) == SQLITE_OK);
        tok.xDelete(t);
        CHECK_INT_EQ(token_replay_counts(rp).played, 1);
        /* What needs no folding (a lowercase word, a CJK run) is handed
         * over in place; the rest is made in a buffer (lowercased, or
         * stored on the tape). */
        CHECK_STR_EQ(w.listing, "tar=text|tar=copy|tar=copy|xelan=copy|elan=copy|\xe6\x95\xb0\xe6\x8d\xae=text|");

        free(w.listing);
        token_tapes_done(&tapes);
        token_recorder_free(rec);
        sqlite3_close(writer);
        token_replay_free(rp);
}

static void write_file(const char *dir, const char *name, const char *text) {
        char path[PATH_MAX];
        if ((size_t) snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
                abort();
        FILE *f = fopen(path, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                abort();
}

/* The logical content of an FTS5 index: every (term, note, line, column,
 * offset), rows named by their chunk so that seq numbering may differ. */
static char *index_content(const char *db_path, const char *table) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char sql[512];
        struct listing l = { 0 };

        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                abort();
        snprintf(sql, sizeof sql,
                 "CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, %s, 'instance');"
                 "INSERT INTO %s(%s) VALUES ('integrity-check');",
                 table, table, table);
        CHECK_INT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        if (sqlite3_prepare_v2(db,
                               "SELECT v.term || ' ' || c.source_file || ':' || c.start_line || ' ' || v.col"
                               " || ' ' || v.offset FROM temp.v JOIN chunks c ON c.seq = v.doc ORDER BY 1",
                               -1, &st, NULL) != SQLITE_OK)
                abort();
        while (sqlite3_step(st) == SQLITE_ROW) {
                const char *row = (const char *) sqlite3_column_text(st, 0);
                list_token(&l, 0, row, (int) strlen(row), 0, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return l.buf ? l.buf : strdup("");
}

static struct token_replay_counts index_tree(const char *db_path, const char *tree) {
        struct store *s = NULL;
        struct sync_stats stats = { 0 };
        struct sync_options opts = { .namespace = "default" };
        char *dirs[] = { (char *) tree };

        if (store_open(db_path, NULL, &s) < 0 || !s->replay)
                abort();
        CHECK_INT_EQ(sync_run(s, &opts, dirs, 1, NULL, 0, &stats), 0);
        struct token_replay_counts c = token_replay_counts(s->replay);
        store_close(s);
        return c;
}

static void test_cold_index_plays_every_text_and_indexes_the_same(void) {
        char tree[600], db_played[600], db_tokenized[600];

        snprintf(tree, sizeof tree, "%s/notes", tmpdir);
        snprintf(db_played, sizeof db_played, "%s/played.db", tmpdir);
        snprintf(db_tokenized, sizeof db_tokenized, "%s/tokenized.db", tmpdir);
        REQUIRE(mkdir(tree, 0755) == 0);
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                char name[32], body[2048];
                snprintf(name, sizeof name, "Note %zu.md", i);
                snprintf(body, sizeof body, "# Über %zu\n\n%s\n\n## 数据库 section\n\n%s and more\n", i, texts[i],
                         texts[(i + 3) % ELEMENTSOF(texts)]);
                write_file(tree, name, body);
        }

        struct token_replay_counts played = index_tree(db_played, tree);
        CHECK(played.played > 3 * ELEMENTSOF(texts));
        CHECK_INT_EQ(played.tokenized, 0);

        setenv("QUIRE_TEST_NO_TOKEN_REPLAY", "1", 1);
        struct token_replay_counts tokenized = index_tree(db_tokenized, tree);
        unsetenv("QUIRE_TEST_NO_TOKEN_REPLAY");
        CHECK_INT_EQ(tokenized.played, 0);
        CHECK(tokenized.tokenized > 3 * ELEMENTSOF(texts));

        const char *tables[] = { "chunks_fts", "chunks_cjk" };
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                _cleanup_free_ char *want = index_content(db_tokenized, tables[i]);
                _cleanup_free_ char *got = index_content(db_played, tables[i]);
                CHECK(strlen(want) > 1000);
                CHECK_STR_EQ(got, want);
        }

        /* A change: the old chunks' texts are tokenized to delete them (no
         * tape), the new ones played; the index still matches. */
        write_file(tree, "Note 0.md", "# Changed\n\nEntirely new words here, Ärger inclusive.\n");
        struct token_replay_counts changed = index_tree(db_played, tree);
        CHECK(changed.played >= 2);
        CHECK(changed.tokenized >= 1);
        _cleanup_free_ char *after = index_content(db_played, "chunks_fts");
        char old_word[700], new_word[700], kept_word[700];
        snprintf(old_word, sizeof old_word, "0:0-0:hello %s/Note 0.md:", tree);
        snprintf(new_word, sizeof new_word, "0:0-0:arger %s/Note 0.md:", tree);
        /* The note whose second text is texts[0] ("hello"). */
        snprintf(kept_word, sizeof kept_word, "0:0-0:hello %s/Note %zu.md:", tree, ELEMENTSOF(texts) - 3);
        CHECK(strstr(after, old_word) == NULL);
        CHECK(strstr(after, new_word) != NULL);
        CHECK(strstr(after, kept_word) != NULL);
}

int main(void) {
        log_set_max_level(LOG_WARNING);
        if (!mkdtemp(tmpdir))
                return 1;
        RUN(test_played_tokens_are_unicode61s);
        RUN(test_lowercase_words_are_played_from_the_text_itself);
        RUN(test_cold_index_plays_every_text_and_indexes_the_same);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        (void) system(cmd);
        return check_summary();
}
