/* What quire derives from a chunk's content beyond the contract's columns:
 * tags, links and the CJK bigram text. Everything here is a pure function
 * of (content, start_line), so the same rows come out whether quire chunked
 * the file itself or a foreign writer inserted the chunk: quire can catch up
 * on rows it did not write. No SQLite, no libuv. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags: `tags:` (or `tag:`) in YAML front matter, and inline #tags. */
struct derived_tag {
        char *name;          /* owned; without '#', as written (case kept) */
        bool is_front_matter; /* from front matter: it applies to the whole file */
};

enum link_kind {
        LINK_WIKI,     /* [[Target]], [[Target|alias]], [[Target#Heading]] */
        LINK_EMBED,    /* ![[Target]] */
        LINK_MARKDOWN, /* [text](relative/path.md), ![alt](img.png): local files only */
};

struct derived_link {
        enum link_kind kind;
        char *target;   /* owned; without alias and fragment ("Note", "../a b.md"): wiki
                         * targets as written, Markdown ones with \ escapes and %XX
                         * decoded; "" for [[#Heading]], a heading of this note */
        char *fragment; /* owned; heading or block after '#', NULL when none */
        uint32_t line;  /* absolute 1-based line of the link in the file */
};

struct derived {
        struct derived_tag *tags; /* owned; each name once per chunk */
        size_t n_tags;
        struct derived_link *links; /* owned; in order of appearance */
        size_t n_links;
};

/* Tags and links of one chunk (content as stored: lines joined by '\n').
 * Front matter is only looked for when start_line is 1, and only when its
 * closing line is in the chunk too. Nothing inside
 * fenced or indented code blocks or inline code spans counts; a Markdown
 * link counts only when it is local (no scheme such as http:, mailto:;
 * not a pure #anchor). Returns 0 or -ENOMEM; *ret is zeroed on error. */
int derive_chunk(const char *content, size_t len, uint32_t start_line, struct derived *ret);
void derived_done(struct derived *d);

/* CJK: Han, Hiragana, Katakana and Hangul (syllables and jamo), including
 * the compatibility and extension blocks. */
bool cjk_is_cjk(uint32_t codepoint);
/* Whether valid UTF-8 text holds any CJK character. */
bool cjk_text_has_cjk(const char *text, size_t len);

/* The text quire indexes for CJK search with the stock unicode61
 * tokenizer: each maximal run of CJK characters c1..cn is replaced by the
 * overlapping bigrams "c1c2 c2c3 ... c(n-1)cn" followed by the unigram
 * "cn" (a run of one is just "c1"), with a space on each side, so every
 * character starts some token and a one-character query can be a prefix
 * query. Everything else is copied unchanged, so a query mixing CJK and
 * Latin words matches the same text. Returns 0 and a newly allocated
 * NUL-terminated string (owned by the caller), or -ENOMEM. */
int cjk_index_text(const char *text, size_t len, char **ret);

/* Rewrite an FTS5 query for the bigram index: every CJK run of two or more
 * characters, in a bareword or inside a "string", becomes the phrase of its
 * bigrams ("数据库" -> "数据 据库"), a single CJK character becomes the
 * prefix query 数*; operators, parentheses, NEAR(...), column filters and
 * non-CJK words are kept as they are (the exact rules, and what 数据* does,
 * are in docs/CHUNKER.md). Returns 1 and a newly allocated query in *ret
 * when a phrase of the query holds CJK, 0 (and *ret NULL) when none does,
 * -EINVAL for an unterminated string, -ENOMEM. */
int cjk_rewrite_query(const char *query, char **ret);
