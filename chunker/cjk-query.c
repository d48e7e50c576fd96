/* cjk_rewrite_query (derive.h): an FTS5 query for the bigram text that
 * cjk_index_text() writes. The query is tokenized the way FTS5's own
 * fts5ExprGetToken does (sqlite/ext/fts5/fts5_expr.c): whitespace is
 * ' ', '\t', '\n', '\r'; a "string" runs to the next lone '"' ("" is an
 * escaped quote); a bareword is a run of ASCII letters, digits, '_', 0x1A
 * and bytes >= 0x80; ( ) { } : , + * - ^ are single-character tokens.
 * Only phrases are rewritten: column names (a string or bareword followed
 * by ':', or anything inside {...}), operators, NEAR, numbers and words
 * without CJK are copied unchanged, and syntax errors are left for FTS5.
 *
 * A phrase is matched token by token, so a CJK run inside it becomes the
 * tokens the index holds for it: its bigrams, plus its last character as a
 * unigram when another token follows it in the same phrase (in the text,
 * the run must then end there, and the index wrote that unigram after the
 * bigrams). A run of one character that ends the phrase becomes a prefix:
 * it may be the first character of a longer run, indexed only inside
 * bigrams. A run of two or more that ends the phrase drops a '*' the query
 * had: every CJK token is at most two characters, so "数据"* could only
 * ever match 数据 itself, and 数据 already matches inside 数据库. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "derive.h"
#include "unicode.h"
#include "util.h"

struct query_buf {
        char *data;
        size_t len, cap;
        int r;
};

static void put(struct query_buf *b, const char *s, size_t n) {
        if (b->r < 0)
                return;
        if (GREEDY_REALLOC(b->data, b->cap, b->len + n + 1, 64) < 0) {
                b->r = -ENOMEM;
                return;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_bareword(char c) {
        unsigned char b = (unsigned char) c;
        return b >= 0x80 || (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
               b == '_' || b == 0x1A;
}

static size_t skip_space(const char *s, size_t i) {
        while (is_space(s[i]))
                i++;
        return i;
}

/* Whether s[0..n) holds a character unicode61 would make a token of. */
static bool has_token(const char *s, size_t n) {
        size_t i = 0;

        while (i < n) {
                size_t k;
                if (!unicode_is_separator(utf8_decode(s + i, n - i, &k)))
                        return true;
                i += k;
        }
        return false;
}

/* Write the phrase s[0..n) (a bareword, or a string's content with its ""
 * escapes) as a string of index tokens, then its '*' if it needs one.
 * next_in_phrase: a '+' follows, so the phrase goes on after s. */
static void put_phrase(struct query_buf *b, const char *s, size_t n, bool has_star, bool next_in_phrase) {
        size_t i = 0;

        put(b, "\"", 1);
        while (i < n) {
                size_t k;
                if (!cjk_is_cjk(utf8_decode(s + i, n - i, &k))) {
                        put(b, s + i, k);
                        i += k;
                        continue;
                }

                /* unicode61 does not split a Latin word from a CJK run:
                 * a space must; after the quote or a space it need not. */
                const char *prev = s + i;
                size_t prev_n = k, n_chars = 1;
                i += k;
                if (b->len > 0 && b->data[b->len - 1] != '"' && b->data[b->len - 1] != ' ')
                        put(b, " ", 1);
                while (i < n && cjk_is_cjk(utf8_decode(s + i, n - i, &k))) {
                        if (n_chars > 1)
                                put(b, " ", 1);
                        put(b, prev, prev_n);
                        put(b, s + i, k);
                        prev = s + i;
                        prev_n = k;
                        n_chars++;
                        i += k;
                }
                bool is_last = !next_in_phrase && !has_token(s + i, n - i);
                if (n_chars == 1 || !is_last) {
                        if (n_chars > 1)
                                put(b, " ", 1);
                        put(b, prev, prev_n);
                }
                if (i < n && s[i] != ' ')
                        put(b, " ", 1);
                if (is_last)
                        has_star = n_chars == 1;
        }
        put(b, "\"", 1);
        if (has_star)
                put(b, "*", 1);
}

int cjk_rewrite_query(const char *query, char **ret) {
        struct query_buf b = { 0 };
        bool in_colset = false, is_rewritten = false;
        size_t i = 0;

        *ret = NULL;
        while (query[i]) {
                size_t start, end, next; /* the phrase's text, and where its token ends */
                bool is_string = query[i] == '"';

                if (is_string) {
                        start = i + 1;
                        for (end = start;; end++) {
                                if (!query[end]) {
                                        free(b.data);
                                        return -EINVAL;
                                }
                                if (query[end] == '"') {
                                        if (query[end + 1] != '"')
                                                break;
                                        end++;
                                }
                        }
                        next = end + 1;
                } else if (is_bareword(query[i])) {
                        start = i;
                        for (end = i; is_bareword(query[end]); end++)
                                ;
                        next = end;
                } else {
                        if (query[i] == '{')
                                in_colset = true;
                        else if (query[i] == '}')
                                in_colset = false;
                        put(&b, query + i, 1);
                        i++;
                        continue;
                }

                size_t after = skip_space(query, next);
                if (in_colset || query[after] == ':' || !cjk_text_has_cjk(query + start, end - start)) {
                        put(&b, query + i, next - i);
                        i = next;
                        continue;
                }
                bool has_star = query[after] == '*';
                if (has_star)
                        next = after + 1;
                bool next_in_phrase = query[skip_space(query, next)] == '+';

                size_t k;
                if (!is_string && !next_in_phrase && cjk_is_cjk(utf8_decode(query + start, end - start, &k)) &&
                    k == end - start) {
                        /* One character: the prefix query X*, no quotes needed. */
                        put(&b, query + start, k);
                        put(&b, "*", 1);
                } else
                        put_phrase(&b, query + start, end - start, has_star, next_in_phrase);
                is_rewritten = true;
                i = next;
        }

        if (b.r < 0) {
                free(b.data);
                return b.r;
        }
        if (!is_rewritten) {
                free(b.data);
                return 0;
        }
        *ret = b.data;
        return 1;
}
