/* Queries over the shared store. Read-only: works on a connection opened
 * with STORE_READONLY and never takes the write lock. */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wctype.h>

#include "chunker.h"
#include "derive.h"
#include "log.h"
#include "search.h"
#include "store-internal.h"
#include "text.h"
#include "util.h"

/* A ranked source: an FTS5 table whose rowid is chunks.seq and which answers
 * the query with a rank (smaller is better). A query with CJK in it has two:
 * chunks_cjk (schema version 2: the chunks that hold CJK, their text with
 * every CJK run spelled as bigrams; storage/derived.c) answers the query
 * rewritten into bigrams, and chunks_fts the query as typed for every other
 * chunk, so each chunk is found by one source only. build_search_sql()
 * writes one SELECT per source, each with the same filters, joined by UNION
 * ALL under one ORDER BY rank: SQLite merges the sources' already ranked
 * streams (a MERGE, no sort) and stops at LIMIT, so snippets are still made
 * for the shown hits only.
 *
 * Column weights for bm25(): a word in a heading says more about a chunk
 * than one in its body; the path matters least (every page shares a
 * directory name). */
struct ranked_source {
        const char *table;
        const char *rank;       /* for "rank MATCH": the ranking function */
        int content_column;     /* for snippet() and highlight() */
        const char *match;      /* the parameter holding its query */
        bool is_bigram_text;    /* snippets and match positions come from chunks.content */
};

static const struct ranked_source search_sources[] = {
        { "chunks_fts", "bm25(1.0, 0.5, 2.0)", 0, ":match", false },
        { "chunks_cjk", "bm25(1.0, 0.5, 2.0)", 0, ":match_cjk", true },
};

/* A foreign writer's heading_hierarchy may be any text: what is not a JSON
 * array is none (json_each and json_type would fail the whole query on
 * invalid JSON, so that is tested first). */
#define HEADING_IS_ARRAY_SQL                                                                    \
        "CASE WHEN NOT json_valid(c.heading_hierarchy) THEN 0"                                 \
        " ELSE json_type(c.heading_hierarchy) = 'array' END"

/* The heading path of chunk c, "A > B > C"; NULL when heading_hierarchy is
 * no array. Made for the shown rows only. */
#define HEADING_PATH_SQL                                                                        \
        "CASE WHEN " HEADING_IS_ARRAY_SQL                                                       \
        " THEN (SELECT group_concat(value, ' > ') FROM json_each(c.heading_hierarchy)) END"

/* Result columns, in the order store_search() reads them. */
enum {
        COL_ID,
        COL_NAMESPACE,
        COL_SOURCE_FILE,
        COL_HEADING_HIERARCHY,
        COL_HEADING_PATH,
        COL_START_LINE,
        COL_END_LINE,
        COL_RANK,
        COL_FILE_SIZE,
        COL_FILE_MTIME,
        COL_SOURCE,
        COL_SNIPPET,
        COL_CONTENT,
        COL_HIGHLIGHT,
};

/* Where the first match starts, highlight() marks it with this byte; the
 * content before it is the content as it is. */
#define MATCH_MARK '\x02'
#define MATCH_END '\x03'
/* Chunks longer than this (twice the chunker's largest) get their snippet
 * from marked_snippet(), not FTS5's snippet(). */
#define SNIPPET_MAX_CHARS 4096

/* The filters of q, each an independent condition on the chunk c. They are
 * constant SQL: what the user typed only ever reaches SQLite as a bound
 * parameter (bind_filters()), by name, so one value serves every source.
 * A tag matches itself and the tags nested under it (project matches
 * project/alpha), ignoring ASCII case, as Obsidian does; a front-matter
 * tag holds for every chunk of its file. The IN subqueries do not depend
 * on c, so SQLite builds each set once per query. */
static void write_filters(FILE *f, const struct search_query *q) {
        if (q->namespace)
                fputs(" AND c.namespace = :namespace", f);
        if (q->path_glob)
                fputs(" AND (c.source_file GLOB :path OR c.source_file GLOB :path || '/*')", f);
        if (q->heading)
                fputs(" AND quire_heading_contains(c.heading_hierarchy, c.content, :heading)", f);
        for (size_t i = 0; i < q->n_tags; i++)
                fprintf(f,
                        " AND (c.seq IN (SELECT seq FROM chunk_tags"
                        "  WHERE tag = :tag%zu COLLATE NOCASE OR tag LIKE :tag%zu_nested ESCAPE '\\')"
                        " OR (c.namespace, c.source_file) IN (SELECT f.namespace, f.source_file"
                        "  FROM chunk_tags t JOIN chunks f ON f.seq = t.seq WHERE t.is_file_level"
                        "  AND (t.tag = :tag%zu COLLATE NOCASE OR t.tag LIKE :tag%zu_nested ESCAPE '\\')))",
                        i, i, i, i);
}

static void write_source_select(FILE *f, size_t i, const struct search_query *q, bool has_cjk_source) {
        const struct ranked_source *src = &search_sources[i];
        const char *t = src->table;

        fputs("SELECT c.id, c.namespace, c.source_file,"
              " CASE WHEN " HEADING_IS_ARRAY_SQL " THEN json(c.heading_hierarchy) ELSE '[]' END, " HEADING_PATH_SQL ","
              " c.start_line, c.end_line",
              f);
        fprintf(f, ", %s.rank AS rank, fl.size, fl.mtime_ns, %zu", t, i);
        /* snippet() scores every match against every other: a chunk that
         * repeats a word 8,000 times took it a second, in one step no
         * deadline can stop. Past the chunker's sizes (a paragraph or a
         * fence it could not cut) the snippet is cut from highlight(),
         * which goes over the matches once (marked_snippet()). */
        bool has_long = !q->skip_snippet && !src->is_bigram_text;
        if (q->skip_snippet || src->is_bigram_text)
                fputs(", NULL", f);
        else
                fprintf(f,
                        ", CASE WHEN length(c.content) <= %d"
                        " THEN snippet(%s, %d, :hl_open, :hl_close, '...', 16) END",
                        SNIPPET_MAX_CHARS, t, src->content_column);
        if (src->is_bigram_text && (!q->skip_snippet || q->want_match_position))
                fputs(", c.content, NULL", f);
        else if (q->want_match_position)
                fprintf(f, ", c.content, highlight(%s, %d, char(%d), char(3))", t, src->content_column, MATCH_MARK);
        else if (has_long)
                fprintf(f, ", NULL, CASE WHEN length(c.content) > %d THEN highlight(%s, %d, char(%d), char(3)) END",
                        SNIPPET_MAX_CHARS, t, src->content_column, MATCH_MARK);
        else
                fputs(", NULL, NULL", f);
        /* CROSS JOIN keeps the FTS table the outer loop: it yields rows in
         * rank order, so LIMIT stops the join early and snippets are made
         * for shown rows only. The planner picks that order today for
         * bound filters, but given the same filters as literals it started
         * from idx_chunks_unique_content and sorted every match; CROSS JOIN
         * is SQLite's documented way to keep it from doing so. */
        fprintf(f,
                " FROM %s CROSS JOIN chunks AS c ON c.seq = %s.rowid"
                " LEFT JOIN files AS fl ON fl.namespace = c.namespace AND fl.path = c.source_file"
                " WHERE %s MATCH %s AND %s.rank MATCH '%s'",
                t, t, t, src->match, t, src->rank);
        /* A chunk with a CJK row is chunks_cjk's to find. */
        if (has_cjk_source && !src->is_bigram_text)
                fputs(" AND NOT EXISTS (SELECT 1 FROM chunks_cjk AS k WHERE k.rowid = c.seq)", f);
        write_filters(f, q);
}

/* The whole statement; newly allocated, or NULL when out of memory. */
static char *build_search_sql(const struct search_query *q, bool has_cjk_source) {
        size_t n_sources = has_cjk_source ? 2 : 1;
        char *sql = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&sql, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < n_sources; i++) {
                if (i > 0)
                        fputs(" UNION ALL ", f);
                write_source_select(f, i, q, has_cjk_source);
        }
        /* One source: its own rank, which FTS5 sorts itself. Several: the
         * rank column of the compound, which SQLite merges. */
        if (n_sources == 1)
                fprintf(f, " ORDER BY %s.rank", search_sources[0].table);
        else
                fputs(" ORDER BY rank", f);
        fputs(" LIMIT :limit OFFSET :offset", f);
        if (fclose(f) != 0) {
                free(sql);
                return NULL;
        }
        return sql;
}

/* Bind value to the parameter called name, if the statement has one. */
static int bind_text(sqlite3_stmt *st, const char *name, const char *value) {
        int i = sqlite3_bind_parameter_index(st, name);
        return i > 0 && value ? sqlite3_bind_text(st, i, value, -1, SQLITE_STATIC) : SQLITE_OK;
}

/* LIKE pattern for the tags nested under tag: "tag/%", with LIKE's
 * wildcards in tag escaped. Newly allocated, or NULL. */
static char *nested_tag_pattern(const char *tag) {
        char *p = malloc(2 * strlen(tag) + 3), *o = p;
        if (!p)
                return NULL;
        for (const char *c = tag; *c; c++) {
                if (*c == '%' || *c == '_' || *c == '\\')
                        *o++ = '\\';
                *o++ = *c;
        }
        memcpy(o, "/%", 3);
        return p;
}

static int bind_tags(sqlite3_stmt *st, const struct search_query *q) {
        for (size_t i = 0; i < q->n_tags; i++) {
                char name[32];
                char *nested = nested_tag_pattern(q->tags[i]);
                if (!nested)
                        return SQLITE_NOMEM;
                snprintf(name, sizeof name, ":tag%zu", i);
                int rc = bind_text(st, name, q->tags[i]);
                snprintf(name, sizeof name, ":tag%zu_nested", i);
                if (rc == SQLITE_OK) {
                        int k = sqlite3_bind_parameter_index(st, name);
                        rc = k > 0 ? sqlite3_bind_text(st, k, nested, -1, free) : (free(nested), SQLITE_OK);
                } else
                        free(nested);
                if (rc != SQLITE_OK)
                        return rc;
        }
        return SQLITE_OK;
}

static int bind_query(sqlite3_stmt *st, const struct search_query *q, const char *match_cjk) {
        int rc;

        if ((rc = bind_text(st, ":match", q->match)) != SQLITE_OK ||
            (rc = bind_text(st, ":match_cjk", match_cjk)) != SQLITE_OK ||
            (rc = bind_tags(st, q)) != SQLITE_OK ||
            (rc = bind_text(st, ":namespace", q->namespace)) != SQLITE_OK ||
            (rc = bind_text(st, ":path", q->path_glob)) != SQLITE_OK ||
            (rc = bind_text(st, ":heading", q->heading)) != SQLITE_OK ||
            (rc = bind_text(st, ":hl_open", q->highlight_open ? q->highlight_open : "")) != SQLITE_OK ||
            (rc = bind_text(st, ":hl_close", q->highlight_close ? q->highlight_close : "")) != SQLITE_OK)
                return rc;
        rc = sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), q->limit ? (int64_t) q->limit : -1);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), q->offset);
        return rc;
}

/* --- quire_heading_contains(heading_hierarchy, content, text): --heading
 * Whether the heading path, "A > B > C", or one of the sections packed
 * into the chunk after its first (inner_paths_contain()), contains text,
 * ignoring case.
 * Code points are folded with towlower_l() under C.UTF-8: glibc's Unicode
 * tables whatever the user's locale, so "übersicht" finds "Übersicht"
 * (SQLite's LIKE folds ASCII only); without that locale, ASCII only.
 * The JSON array is read here rather than with json_each(), which cost
 * ~4 us a row: a frequent word with a heading that matches nothing tests
 * every chunk the word is in. */

static uint32_t utf8_next(const unsigned char **p, const unsigned char *end) {
        const unsigned char *s = *p;
        if (*s < 0x80) {
                *p = s + 1;
                return *s;
        }
        int l = utf8_sequence_length(s, (size_t) (end - s));
        if (l < 0) {
                *p = s - l;
                return 0xFFFD;
        }
        *p = s + l;
        if (l == 2)
                return (uint32_t) (s[0] & 0x1F) << 6 | (s[1] & 0x3F);
        if (l == 3)
                return (uint32_t) (s[0] & 0x0F) << 12 | (uint32_t) (s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return (uint32_t) (s[0] & 0x07) << 18 | (uint32_t) (s[1] & 0x3F) << 12 | (uint32_t) (s[2] & 0x3F) << 6 |
               (s[3] & 0x3F);
}

static uint32_t fold_case(uint32_t c, locale_t loc) {
        if (c < 0x80)
                return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
        return loc ? (uint32_t) towlower_l((wint_t) c, loc) : c;
}

/* Folded code points of s[0..n) into out (room for n); returns how many. */
static size_t fold_text(const unsigned char *s, size_t n, locale_t loc, uint32_t *out) {
        const unsigned char *end = s + n;
        size_t k = 0;
        while (s < end)
                out[k++] = fold_case(utf8_next(&s, end), loc);
        return k;
}

/* The four hex digits of a \u escape at p; -1 if they are not. */
static int32_t hex4(const unsigned char *p, const unsigned char *end) {
        int32_t v = 0;
        if (end - p < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                unsigned char c = p[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

/* Decode the JSON string whose opening quote is at *p into folded code
 * points at out[*k...]; *p ends after the closing quote. -EINVAL when it
 * is not a JSON string. */
static int fold_json_string(const unsigned char **p, const unsigned char *end, locale_t loc, uint32_t *out,
                            size_t *k) {
        const unsigned char *s = *p + 1;
        while (s < end && *s != '"') {
                uint32_t c;
                if (*s != '\\')
                        c = utf8_next(&s, end);
                else {
                        if (++s >= end)
                                return -EINVAL;
                        switch (*s++) {
                        case '"': c = '"'; break;
                        case '\\': c = '\\'; break;
                        case '/': c = '/'; break;
                        case 'b': c = '\b'; break;
                        case 'f': c = '\f'; break;
                        case 'n': c = '\n'; break;
                        case 'r': c = '\r'; break;
                        case 't': c = '\t'; break;
                        case 'u': {
                                int32_t u = hex4(s, end), lo;
                                if (u < 0)
                                        return -EINVAL;
                                s += 4;
                                c = (uint32_t) u;
                                if (u >= 0xD800 && u <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
                                    (lo = hex4(s + 2, end)) >= 0xDC00 && lo <= 0xDFFF) {
                                        c = 0x10000 + ((uint32_t) (u - 0xD800) << 10) + (uint32_t) (lo - 0xDC00);
                                        s += 6;
                                } else if (u >= 0xD800 && u <= 0xDFFF)
                                        c = 0xFFFD; /* a lone surrogate */
                                break;
                        }
                        default:
                                return -EINVAL;
                        }
                }
                out[(*k)++] = fold_case(c, loc);
        }
        if (s >= end)
                return -EINVAL;
        *p = s + 1;
        return 0;
}

/* The folded heading path of a heading_hierarchy array into out (room for
 * n bytes' worth: a code point takes at least one byte of JSON, and a
 * " > " stands for at least '","'); returns its length, or -EINVAL when
 * the value is not a JSON array of strings (no heading path, as
 * HEADING_PATH_SQL gives none for invalid JSON). */
static ssize_t fold_heading_path(const unsigned char *json, size_t n, locale_t loc, uint32_t *out) {
        const unsigned char *p = json, *end = json + n;
        size_t k = 0;

#define SKIP_SPACE() while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++
        SKIP_SPACE();
        if (p >= end || *p++ != '[')
                return -EINVAL;
        SKIP_SPACE();
        if (p < end && *p == ']')
                return 0;
        for (;;) {
                if (p >= end || *p != '"' || fold_json_string(&p, end, loc, out, &k) < 0)
                        return -EINVAL;
                SKIP_SPACE();
                if (p >= end)
                        return -EINVAL;
                if (*p == ']')
                        return (ssize_t) k;
                if (*p++ != ',')
                        return -EINVAL;
                out[k++] = ' ';
                out[k++] = '>';
                out[k++] = ' ';
                SKIP_SPACE();
        }
#undef SKIP_SPACE
}

struct folded_text {
        size_t n;
        uint32_t c[];
};

/* Whether a line after the first starts (after up to three spaces) with
 * '#', '=' or '-': an ATX heading or a setext underline may be there. The
 * first line is the chunk's own heading, which its path holds already. */
static bool may_hold_a_heading(const char *text, size_t len) {
        for (const char *nl = memchr(text, '\n', len); nl; nl = memchr(nl + 1, '\n', len - (size_t) (nl + 1 - text))) {
                const char *c = nl + 1;
                for (int k = 0; k < 3 && c < text + len && *c == ' '; k++)
                        c++;
                if (c < text + len && (*c == '#' || *c == '=' || *c == '-'))
                        return true;
        }
        return false;
}

/* Whether every ASCII word (a run of letters and digits) of the needle's
 * last heading (after its last '>') is in content, ignoring ASCII case: a
 * heading inside content that contains the needle has them all as it is
 * written (markup inside a word, "in**stall**" or "a&#98;c", aside), and
 * a strcasestr() costs far less than splitting the content. Content with
 * the only two characters that fold to ASCII (towlower_l() under C.UTF-8,
 * checked over all of Unicode: 'İ' U+0130 to 'i', the Kelvin sign U+212A
 * to 'k') is not ruled out. */
static bool may_contain_needle(const char *content, const char *needle) {
        if (strstr(content, "\xc4\xb0") || strstr(content, "\xe2\x84\xaa"))
                return true;
        const char *last = strrchr(needle, '>');
        const char *w = last ? last + 1 : needle;
        char word[64];

        for (;;) {
                while (*w && !isalnum((unsigned char) *w))
                        w++;
                if (!*w)
                        return true;
                size_t n = 0;
                bool is_ascii = true;
                for (; *w && (isalnum((unsigned char) *w) || (unsigned char) *w >= 0x80); w++) {
                        is_ascii &= (unsigned char) *w < 0x80;
                        if (n < sizeof word - 1)
                                word[n++] = *w;
                }
                word[n] = '\0';
                /* Others fold beyond ASCII (towlower_l): no shortcut. */
                if (is_ascii && n < sizeof word - 1 && !strcasestr(content, word))
                        return false;
        }
}

static bool folded_contains(const uint32_t *h, size_t n, const struct folded_text *nf) {
        for (size_t i = 0; i + nf->n <= n; i++)
                if (memcmp(h + i, nf->c, nf->n * sizeof h[0]) == 0)
                        return true;
        return false;
}

static bool is_path_separator(const uint32_t *h, size_t n, size_t i) {
        return i + 3 <= n && h[i] == ' ' && h[i + 1] == '>' && h[i + 2] == ' ';
}

/* The folded path of json, newly allocated in *ret (its length *n; 0 for
 * no JSON array of strings). 0 or -ENOMEM. */
static int fold_path_alloc(const char *json, locale_t loc, uint32_t **ret, size_t *n) {
        size_t n_bytes = strlen(json);
        *ret = malloc((n_bytes + 1) * sizeof **ret);
        if (!*ret)
                return -ENOMEM;
        ssize_t k = fold_heading_path((const unsigned char *) json, n_bytes, loc, *ret);
        *n = k > 0 ? (size_t) k : 0;
        return 0;
}

/* A chunk packs the short sections that follow its first (docs/CHUNKER.md,
 * "Packing"), whose headings its heading_hierarchy, the first section's,
 * does not name. Whether one of the heading paths inside content contains
 * the needle: the chunk's own path (folded: outer[0..n_outer)), less its
 * last heading when the content starts with that one, then the path as
 * the content nests its headings ("Guide > Install > Linux" for a chunk
 * ["Guide","Install"] of "## Install ... ### Linux"). 1, 0, or -ENOMEM.
 * The chunker splits the content one section at a time, so a heading is
 * one as the index saw it (not a '#' line in a code block). */
static int inner_paths_contain(const char *content, size_t len, const uint32_t *outer, size_t n_outer, locale_t loc,
                               const struct folded_text *nf) {
        if (!may_hold_a_heading(content, len))
                return 0;
        /* Another writer's content may break the text rules the chunker
         * expects. */
        _cleanup_free_ char *text = NULL;
        size_t text_len;
        if (text_normalize(content, len, &text, &text_len) < 0)
                return -ENOMEM;
        struct chunk_list sections = { 0 };
        struct chunker_options one_per_section = { .min_bytes = 1, .max_bytes = text_len + 1 };
        int r = chunker_split(text, text_len, &one_per_section, &sections);
        if (r < 0)
                return r == -ENOMEM ? r : 0;

        /* Where the outer path's last heading starts, and what of the
         * outer path goes in front of the inner ones. */
        size_t last = n_outer;
        while (last > 0 && !(last >= 3 && is_path_separator(outer, n_outer, last - 3)))
                last--;
        size_t n_prefix = n_outer;
        for (size_t i = 0; r == 0 && i < sections.n_items; i++) {
                _cleanup_free_ uint32_t *inner = NULL, *path = NULL;
                size_t n_inner;
                r = fold_path_alloc(sections.items[i].heading_hierarchy, loc, &inner, &n_inner);
                if (r < 0 || n_inner == 0)
                        continue;
                if (i == 0) {
                        size_t first = 0;
                        while (first < n_inner && !is_path_separator(inner, n_inner, first))
                                first++;
                        if (n_outer > 0 && first == n_outer - last &&
                            memcmp(inner, outer + last, first * sizeof *inner) == 0)
                                n_prefix = last; /* the content starts with the chunk's own heading */
                }
                size_t n_sep = n_prefix > 0 && n_prefix == n_outer ? 3 : 0, n = 0;
                path = malloc((n_prefix + n_sep + n_inner) * sizeof *path);
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                memcpy(path, outer, n_prefix * sizeof *path);
                n += n_prefix;
                if (n_sep) {
                        path[n++] = ' ';
                        path[n++] = '>';
                        path[n++] = ' ';
                }
                memcpy(path + n, inner, n_inner * sizeof *path);
                n += n_inner;
                r = folded_contains(path, n, nf);
        }
        chunk_list_free(&sections);
        return r;
}

/* quire_heading_contains(heading_hierarchy, content, text) */
static void heading_contains_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        locale_t loc = sqlite3_user_data(ctx);
        const unsigned char *json = sqlite3_value_text(argv[0]);
        const char *content = (const char *) sqlite3_value_text(argv[1]);
        const unsigned char *needle = sqlite3_value_text(argv[2]);

        (void) argc;
        if (!json || !needle) {
                sqlite3_result_int(ctx, 0);
                return;
        }
        /* The needle is the same on every row: fold it once. */
        struct folded_text *nf = sqlite3_get_auxdata(ctx, 2);
        if (!nf) {
                size_t n = (size_t) sqlite3_value_bytes(argv[2]);
                nf = malloc(sizeof *nf + n * sizeof nf->c[0]);
                if (!nf) {
                        sqlite3_result_error_nomem(ctx);
                        return;
                }
                nf->n = fold_text(needle, n, loc, nf->c);
                sqlite3_set_auxdata(ctx, 2, nf, free);
                nf = sqlite3_get_auxdata(ctx, 2); /* NULL if SQLite had to free it */
                if (!nf) {
                        sqlite3_result_error_nomem(ctx);
                        return;
                }
        }

        size_t n_bytes = (size_t) sqlite3_value_bytes(argv[0]);
        uint32_t stack[256];
        _cleanup_free_ uint32_t *heap = NULL;
        uint32_t *h = stack;
        if (n_bytes > ELEMENTSOF(stack)) {
                h = heap = malloc(n_bytes * sizeof *h);
                if (!h) {
                        sqlite3_result_error_nomem(ctx);
                        return;
                }
        }
        ssize_t n = fold_heading_path(json, n_bytes, loc, h);
        size_t n_outer = n > 0 ? (size_t) n : 0;
        int found = folded_contains(h, n_outer, nf);
        if (!found && content && may_contain_needle(content, (const char *) needle))
                found = inner_paths_contain(content, (size_t) sqlite3_value_bytes(argv[1]), h, n_outer, loc, nf);
        if (found < 0)
                sqlite3_result_error_nomem(ctx);
        else
                sqlite3_result_int(ctx, found);
}

static void locale_destroy(void *p) {
        if (p)
                freelocale((locale_t) p);
}

/* Once per connection: registering a function again expires every
 * statement prepared on it (the search cache and store_stmt()'s all), and
 * fails while one is running. */
static int register_heading_contains(struct store *s) {
        if (s->has_heading_filter)
                return 0;
        locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
        int rc = sqlite3_create_function_v2(s->db, "quire_heading_contains", 3,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, loc,
                                            heading_contains_fn, NULL, NULL, locale_destroy);
        /* On failure SQLite has already called locale_destroy(loc). */
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "register the heading filter");
        s->has_heading_filter = true;
        return 0;
}

/* --- the search ---------------------------------------------------------- */

static const char *column_text(sqlite3_stmt *st, int i) {
        const char *t = (const char *) sqlite3_column_text(st, i);
        return t ? t : "";
}

/* hit.match_* for a match at byte at of content. */
static void set_match_position(const char *content, size_t at, struct search_hit *hit) {
        size_t line_start = 0;
        int64_t line = hit->start_line;

        for (size_t i = 0; i < at; i++)
                if (content[i] == '\n') {
                        line++;
                        line_start = i + 1;
                }
        hit->match_line = line;
        hit->match_column = (int64_t) (at - line_start) + 1;
        hit->match_text = content + line_start;
        hit->match_text_len = strcspn(content + line_start, "\n");
}

/* The first match in content is where highlight() first differs from it
 * (there it inserted MATCH_MARK). None: the query matched other columns
 * only; the chunk's first line then stands for it. */
static void find_match_position(const char *content, const char *highlighted, struct search_hit *hit) {
        size_t at = 0;

        while (content[at] && content[at] == highlighted[at])
                at++;
        set_match_position(content, highlighted[at] == MATCH_MARK ? at : 0, hit);
}

/* The end of a snippet written to f, an open_memstream() on *out: "..."
 * when the text goes on. The snippet, or NULL. */
static char *snippet_done(FILE *f, char **out, bool is_cut) {
        if (is_cut)
                fputs("...", f);
        if (fclose(f) != 0) {
                free(*out);
                return NULL;
        }
        return *out;
}

/* A snippet cut from highlighted (content with MATCH_MARK before and
 * MATCH_END after each match): some words before the first match and
 * SNIPPET_WORDS in all, at most SNIPPET_MAX_BYTES, the marks as open and
 * close, "..." where it is cut; line breaks kept, as snippet() keeps them.
 * Linear in the text. Newly allocated, or NULL. */
#define SNIPPET_WORDS_BEFORE 4
#define SNIPPET_WORDS 16
#define SNIPPET_MAX_BYTES 320
static char *marked_snippet(const char *highlighted, const char *open, const char *close) {
        const char *mark = strchr(highlighted, MATCH_MARK), *end = highlighted + strlen(highlighted);
        const char *from = mark ? mark : highlighted, *to;
        char *out = NULL;
        size_t len = 0;
        bool is_open = false;

        /* Back to the start of the SNIPPET_WORDS_BEFORE-th word before the
         * match, or as far as a third of the bytes allow. */
        for (int words = 0; from > highlighted && (size_t) ((mark ? mark : highlighted) - from) < SNIPPET_MAX_BYTES / 3;
             from--)
                if (isspace((unsigned char) from[-1]) && !isspace((unsigned char) from[0]) &&
                    ++words > SNIPPET_WORDS_BEFORE)
                        break;
        while ((*from & 0xC0) == 0x80) /* not inside a UTF-8 sequence */
                from++;
        to = from;
        for (int words = 0; to < end && (size_t) (to - from) < SNIPPET_MAX_BYTES; to++)
                if (!isspace((unsigned char) to[0]) && (to == from || isspace((unsigned char) to[-1])) &&
                    ++words > SNIPPET_WORDS)
                        break;
        while (to < end && (*to & 0xC0) == 0x80)
                to++;

        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        if (from > highlighted)
                fputs("...", f);
        for (const char *p = from; p < to; p++)
                if (*p == MATCH_MARK) {
                        fputs(open, f);
                        is_open = true;
                } else if (*p == MATCH_END) {
                        fputs(close, f);
                        is_open = false;
                } else
                        fputc(*p, f);
        if (is_open)
                fputs(close, f);
        return snippet_done(f, &out, to < end);
}

/* --- hits of the CJK index ----------------------------------------------
 * Its text is bigrams, so FTS5's snippet() and highlight() would show and
 * point into that, not the note. For its hits both come from the chunk's
 * content instead, around the CJK words of the query ("needles"). */

#define CJK_SNIPPET_BEFORE 12 /* code points of context before the first needle */
#define CJK_SNIPPET_LENGTH 48 /* code points in all */

struct needles {
        const char *start[16];
        size_t len[16];
        size_t n;
};

/* The maximal CJK runs of query (at most 16, longest first, so a longer
 * word is highlighted before a shorter one inside it). */
static void find_needles(const char *query, struct needles *ret) {
        const unsigned char *p = (const unsigned char *) query, *end = p + strlen(query);

        ret->n = 0;
        while (p < end && ret->n < ELEMENTSOF(ret->start)) {
                const unsigned char *run = p, *q = p;
                while (q < end) {
                        const unsigned char *next = q;
                        if (!cjk_is_cjk(utf8_next(&next, end)))
                                break;
                        q = next;
                }
                if (q > run) {
                        ret->start[ret->n] = (const char *) run;
                        ret->len[ret->n++] = (size_t) (q - run);
                        p = q;
                } else
                        utf8_next(&p, end);
        }
        for (size_t i = 1; i < ret->n; i++)
                for (size_t j = i; j > 0 && ret->len[j] > ret->len[j - 1]; j--) {
                        const char *s0 = ret->start[j];
                        size_t l0 = ret->len[j];
                        ret->start[j] = ret->start[j - 1], ret->len[j] = ret->len[j - 1];
                        ret->start[j - 1] = s0, ret->len[j - 1] = l0;
                }
}

/* The needle at text, or 0. */
static size_t needle_at(const struct needles *nd, const char *text, const char *end) {
        for (size_t i = 0; i < nd->n; i++)
                if ((size_t) (end - text) >= nd->len[i] && memcmp(text, nd->start[i], nd->len[i]) == 0)
                        return nd->len[i];
        return 0;
}

/* Where the first needle starts in content; 0 when none does (the query
 * matched its Latin words or another column). */
static size_t first_needle(const struct needles *nd, const char *content) {
        const char *end = content + strlen(content);
        for (const char *p = content; p < end; p++)
                if (needle_at(nd, p, end))
                        return (size_t) (p - content);
        return 0;
}

/* A snippet of content around byte at, with the needles in it between
 * open and close. Newly allocated, or NULL. */
static char *cjk_snippet(const char *content, size_t at, const struct needles *nd, const char *open,
                         const char *close) {
        const unsigned char *begin = (const unsigned char *) content, *end = begin + strlen(content);
        const unsigned char *from = begin + at, *to;
        char *out = NULL;
        size_t len = 0;

        for (int n = 0; n < CJK_SNIPPET_BEFORE && from > begin; n++)
                do
                        from--;
                while (from > begin && (*from & 0xC0) == 0x80);
        to = from;
        for (int n = 0; n < CJK_SNIPPET_LENGTH && to < end; n++)
                utf8_next(&to, end);

        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        if (from > begin)
                fputs("...", f);
        for (const unsigned char *p = from; p < to;) {
                size_t k = needle_at(nd, (const char *) p, (const char *) end);
                if (k > 0) {
                        fprintf(f, "%s%.*s%s", open, (int) k, (const char *) p, close);
                        p += k;
                } else
                        fputc(*p++, f);
        }
        return snippet_done(f, &out, to < end);
}

/* --- bounds ------------------------------------------------------------
 * FTS5's cost grows with the square of the words a chunk matches (bm25()
 * and snippet() go over every phrase at every match), so a query of
 * hundreds of words kept a thread busy for minutes, and nothing stopped
 * it when its client left. A query may hold at most SEARCH_MAX_QUERY_WORDS
 * words and SEARCH_MAX_QUERY_BYTES bytes, far past any a person types or
 * pastes; and since even such a query can be slow on chunks that repeat
 * its words, each search has SEARCH_TIMEOUT_MS in SQLite, and ends sooner
 * when the store's cancel flag or search check says so (docs/SEARCH.md,
 * "Bounds"). */

#define SEARCH_MAX_QUERY_WORDS 64
#define SEARCH_MAX_QUERY_BYTES 2048
#define SEARCH_TIMEOUT_MS 5000
/* The progress handler runs every SEARCH_PROGRESS_OPS SQLite instructions
 * (FTS5's own statements' included): ~10 us apart in a plain search, but
 * an instruction can be one chunk's bm25() over every phrase at every
 * match, and with 1000 a NEAR() of 60 words over chunks that repeat them
 * went 0.6 s between two calls. The store's search check (a poll() in
 * quired) runs at most every SEARCH_CHECK_USEC. */
#define SEARCH_PROGRESS_OPS 100
#define SEARCH_CHECK_USEC 10000

/* The words of an FTS5 query as its cost counts them: runs of letters,
 * digits and '_' (and of non-ASCII text), operators and column names
 * included, and each CJK character on its own, since it is searched as a
 * pair (chunker/cjk-query.c). */
static size_t query_words(const char *match) {
        const unsigned char *p = (const unsigned char *) match, *end = p + strlen(match);
        bool is_in_word = false;
        size_t n = 0;

        while (p < end) {
                uint32_t c = utf8_next(&p, end);
                if (c >= 0x80 && cjk_is_cjk(c)) {
                        n++;
                        is_in_word = false;
                } else if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                           (c >= 'A' && c <= 'Z') || c == '_') {
                        n += !is_in_word;
                        is_in_word = true;
                } else
                        is_in_word = false;
        }
        return n;
}

/* -EINVAL, logged, for a query longer than a query may be. */
static int check_query_size(const char *match) {
        size_t n_bytes = strlen(match), n_words;

        if (n_bytes > SEARCH_MAX_QUERY_BYTES)
                return log_error_errno(EINVAL, "Search query too long: %zu bytes, at most %d", n_bytes,
                                       SEARCH_MAX_QUERY_BYTES);
        n_words = query_words(match);
        if (n_words > SEARCH_MAX_QUERY_WORDS)
                return log_error_errno(EINVAL, "Search query too long: %zu words, at most %d", n_words,
                                       SEARCH_MAX_QUERY_WORDS);
        return 0;
}

/* SEARCH_TIMEOUT_MS, or QUIRE_TEST_SEARCH_TIMEOUT_MS (test-only: a test
 * shortens it to see it end a search, and lengthens it to see a client
 * that left or a daemon that stops end one first). */
static uint64_t search_timeout_usec(void) {
        const char *e = getenv("QUIRE_TEST_SEARCH_TIMEOUT_MS");
        char *end = NULL;
        unsigned long long ms = e && *e ? strtoull(e, &end, 10) : 0;

        if (!end || *end || ms == 0 || ms > UINT32_MAX)
                ms = SEARCH_TIMEOUT_MS;
        return ms * 1000u;
}

/* A search's progress handler. Its time is spent only inside
 * sqlite3_step() (search_step()): a hit_cb that waits, printing to a
 * pager nobody scrolls, uses none of it. */
struct search_watch {
        struct store *s;
        uint64_t timeout_usec;
        uint64_t budget_usec;   /* left */
        uint64_t deadline_usec; /* of the step under way */
        uint64_t next_check_usec;
        int reason; /* why the statement was interrupted; 0: it was not */
};

static int search_progress_cb(void *userdata) {
        struct search_watch *w = userdata;
        struct store *s = w->s;
        uint64_t now = now_monotonic_usec();

        if (s->cancel && atomic_load(s->cancel))
                w->reason = -ECANCELED;
        else if (now >= w->deadline_usec)
                w->reason = -ETIMEDOUT;
        else if (s->search_check && now >= w->next_check_usec) {
                int r = s->search_check(s->search_check_userdata);
                w->reason = r < 0 ? r : 0;
                w->next_check_usec = now + SEARCH_CHECK_USEC;
        }
        return w->reason != 0;
}

static void search_watch_begin(struct search_watch *w, struct store *s) {
        *w = (struct search_watch){ .s = s, .timeout_usec = search_timeout_usec() };
        w->budget_usec = w->timeout_usec;
        sqlite3_progress_handler(s->db, SEARCH_PROGRESS_OPS, search_progress_cb, w);
}

static void search_watch_end(struct search_watch *w) {
        if (w->s)
                sqlite3_progress_handler(w->s->db, 0, NULL, NULL);
}

static int search_step(sqlite3_stmt *st, struct search_watch *w) {
        uint64_t start = now_monotonic_usec();

        w->deadline_usec = start + w->budget_usec;
        int rc = sqlite3_step(st);
        uint64_t spent = now_monotonic_usec() - start;
        w->budget_usec = spent < w->budget_usec ? w->budget_usec - spent : 0;
        return rc;
}

void store_set_search_check(struct store *s, int (*check)(void *userdata), void *userdata) {
        s->search_check = check;
        s->search_check_userdata = userdata;
}

/* The search statement for sql (which this takes), compiled once per
 * store; the caller resets it after use. NULL, with *rc set, on failure. */
static sqlite3_stmt *search_stmt(struct store *s, char *sql, int *rc) {
        for (size_t i = 0; i < ELEMENTSOF(s->searches); i++)
                if (s->searches[i].sql && strcmp(s->searches[i].sql, sql) == 0) {
                        free(sql);
                        return s->searches[i].st;
                }
        sqlite3_stmt *st = NULL;
        *rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (*rc != SQLITE_OK) {
                free(sql);
                return NULL;
        }
        unsigned slot = s->next_search++ % ELEMENTSOF(s->searches);
        sqlite3_finalize(s->searches[slot].st);
        free(s->searches[slot].sql);
        s->searches[slot].sql = sql;
        s->searches[slot].st = st;
        return st;
}

int store_search(struct store *s, const struct search_query *q,
                 int (*hit_cb)(const struct search_hit *hit, void *userdata), void *userdata) {
        /* Removed on the way out, after st is reset. */
        _cleanup_(search_watch_end) struct search_watch watch = { .s = NULL };
        /* Reset on the way out, whichever: that ends the read transaction. */
        _cleanup_stmt_reset_ sqlite3_stmt *st = NULL;
        char *sql = NULL;
        int rc, r;

        _cleanup_free_ char *match_cjk = NULL, *snippet = NULL;
        struct needles needles = { .n = 0 };

        r = check_query_size(q->match);
        if (r < 0)
                return r;
        if (q->n_tags > 0 && !s->has_derived)
                return log_error_errno(EPROTONOSUPPORT,
                                       "No tags in %s yet: it was written by an older quire; run 'quire index' once",
                                       s->path);
        if (q->heading && (r = register_heading_contains(s)) < 0)
                return r;
        /* -EINVAL (an unterminated string) is left to FTS5 to report, in
         * its words, like any other malformed query. */
        r = s->has_derived ? cjk_rewrite_query(q->match, &match_cjk) : 0;
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to rewrite the query for CJK: %m");
        bool has_cjk_source = r > 0;
        if (has_cjk_source)
                find_needles(q->match, &needles);
        sql = build_search_sql(q, has_cjk_source);
        if (!sql)
                return log_error_errno(ENOMEM, "Failed to build the search: %m");
        st = search_stmt(s, sql, &rc);
        if (!st)
                return store_fail(s, rc, "prepare the search");
        rc = bind_query(st, q, match_cjk);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "bind the search");

        search_watch_begin(&watch, s);
        while ((rc = search_step(st, &watch)) == SQLITE_ROW) {
                struct search_hit hit = {
                        .id = column_text(st, COL_ID),
                        .namespace = column_text(st, COL_NAMESPACE),
                        .source_file = column_text(st, COL_SOURCE_FILE),
                        .heading_hierarchy = column_text(st, COL_HEADING_HIERARCHY),
                        .heading_path = column_text(st, COL_HEADING_PATH),
                        .snippet = column_text(st, COL_SNIPPET),
                        .start_line = sqlite3_column_int64(st, COL_START_LINE),
                        .end_line = sqlite3_column_int64(st, COL_END_LINE),
                        .score = -sqlite3_column_double(st, COL_RANK),
                        .has_file_row = sqlite3_column_type(st, COL_FILE_SIZE) != SQLITE_NULL,
                        .file_size = sqlite3_column_int64(st, COL_FILE_SIZE),
                        .file_mtime_ns = sqlite3_column_int64(st, COL_FILE_MTIME),
                };
                if (search_sources[sqlite3_column_int(st, COL_SOURCE)].is_bigram_text) {
                        const char *content = column_text(st, COL_CONTENT);
                        size_t at = first_needle(&needles, content);
                        if (!q->skip_snippet) {
                                free(snippet);
                                snippet = cjk_snippet(content, at, &needles, q->highlight_open ? q->highlight_open : "",
                                                      q->highlight_close ? q->highlight_close : "");
                                if (!snippet)
                                        return log_error_errno(ENOMEM, "Failed to make a snippet: %m");
                                hit.snippet = snippet;
                        }
                        if (q->want_match_position)
                                set_match_position(content, at, &hit);
                } else {
                        if (q->want_match_position)
                                find_match_position(column_text(st, COL_CONTENT), column_text(st, COL_HIGHLIGHT),
                                                    &hit);
                        if (!q->skip_snippet && sqlite3_column_type(st, COL_SNIPPET) == SQLITE_NULL) {
                                free(snippet);
                                snippet = marked_snippet(column_text(st, COL_HIGHLIGHT),
                                                         q->highlight_open ? q->highlight_open : "",
                                                         q->highlight_close ? q->highlight_close : "");
                                if (!snippet)
                                        return log_error_errno(ENOMEM, "Failed to make a snippet: %m");
                                hit.snippet = snippet;
                        }
                }
                r = hit_cb(&hit, userdata);
                if (r != 0)
                        return r;
        }
        if (rc == SQLITE_DONE)
                return 0;
        /* Whatever FTS5 made of the interruption (its own statements'
         * SQLITE_INTERRUPT may come out as SQLITE_ERROR). */
        if (watch.reason == -ETIMEDOUT)
                return log_error_errno(ETIMEDOUT, "Search took too long: stopped after %.1f s; fewer or rarer words "
                                       "are quicker", (double) watch.timeout_usec / 1e6);
        if (watch.reason < 0)
                return watch.reason;
        /* FTS5 reports query syntax errors as plain SQLITE_ERROR while
         * stepping: that is the user's query, not a broken database. */
        if (rc == SQLITE_ERROR)
                return log_error_errno(EINVAL, "Invalid search query '%s': %s", q->match, sqlite3_errmsg(s->db));
        return store_fail(s, rc, "search");
}

static int query_int64(struct store *s, const char *sql, int64_t *ret) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_fail(s, rc, "read the status");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int64_t file_size_or_zero(const char *path, const char *suffix) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf(&p, "%s%s", path, suffix) < 0)
                return 0;
        return stat(p, &st) == 0 ? (int64_t) st.st_size : 0;
}

static int read_namespaces(struct store *s, struct store_status *ret) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        size_t cap = 0;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT namespace, sum(n_files), sum(n_chunks) FROM ("
                                " SELECT namespace, count(*) AS n_files, 0 AS n_chunks FROM files GROUP BY namespace"
                                " UNION ALL"
                                " SELECT namespace, 0, count(*) FROM chunks GROUP BY namespace)"
                                " GROUP BY namespace ORDER BY namespace",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "read the namespaces");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (GREEDY_REALLOC(ret->namespaces, cap, ret->n_namespaces + 1, 4) < 0)
                        return -ENOMEM;
                struct namespace_status *n = &ret->namespaces[ret->n_namespaces];
                n->name = strdup(column_text(st, 0));
                if (!n->name)
                        return -ENOMEM;
                n->files = sqlite3_column_int64(st, 1);
                n->chunks = sqlite3_column_int64(st, 2);
                ret->n_namespaces++;
        }
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "read the namespaces");
}

int store_count(struct store *s, int64_t *n_files, int64_t *n_chunks) {
        int r = query_int64(s, "SELECT count(*) FROM files", n_files);
        return r < 0 ? r : query_int64(s, "SELECT count(*) FROM chunks", n_chunks);
}

int store_get_status(struct store *s, struct store_status *ret) {
        int64_t version = 0;
        int r;

        *ret = (struct store_status){ 0 };
        /* One read transaction, so the counts agree with each other. */
        r = store_exec(s, "BEGIN", "start a read transaction");
        if (r < 0)
                return r;
        if ((r = query_int64(s, "PRAGMA user_version", &version)) < 0 ||
            (r = query_int64(s, "SELECT count(*) FROM files", &ret->files)) < 0 ||
            (r = query_int64(s, "SELECT count(*) FROM chunks", &ret->chunks)) < 0 ||
            (r = query_int64(s,
                             "SELECT count(*) FROM (SELECT 1 FROM chunks GROUP BY namespace, source_file,"
                             " content_hash, start_line HAVING count(*) > 1)",
                             &ret->duplicate_groups)) < 0 ||
            (r = read_namespaces(s, ret)) < 0) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                store_status_done(ret);
                return r;
        }
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        ret->schema_version = (int) version;
        ret->db_bytes = file_size_or_zero(s->path, "");
        ret->wal_bytes = file_size_or_zero(s->path, "-wal");
        return 0;
}

/* One problem found: counted, and kept as the first when it is. */
static int add_problem(struct store *s, unsigned *n, char **first, const char *text) {
        if (!*first && !(*first = strdup(text)))
                return log_error_errno(ENOMEM, "Failed to check %s: %m", s->path);
        (*n)++;
        return 0;
}

/* What PRAGMA integrity_check does not look at in SQLite 3.40: the FTS5
 * index itself (its shadow tables are sound B-trees holding a damaged
 * index just as well), read whole through an fts5vocab table in TEMP (a
 * reader may write there; FTS5's own 'integrity-check' is an INSERT,
 * which a read-only connection may not run), and its row count against
 * the table it indexes. A damaged structure record failed every search
 * with "vtable constructor failed" while --check said ok. */
static int check_fts_index(struct store *s, const char *fts, const char *rows_sql, unsigned *n, char **first) {
        _cleanup_free_ char *vocab = NULL, *count = NULL, *problem = NULL;
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc;

        if (asprintf(&vocab, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.quire_check_%s USING fts5vocab(main, %s, 'instance')",
                     fts, fts) < 0 ||
            asprintf(&count, "SELECT (SELECT count(*) FROM temp.quire_check_%1$s), (SELECT count(*) FROM main.%2$s_docsize), "
                             "(%3$s), (SELECT count(*) FROM main.%2$s_data WHERE id = 1)", fts, fts, rows_sql) < 0)
                return log_error_errno(ENOMEM, "Failed to check %s: %m", s->path);
        rc = sqlite3_exec(s->db, vocab, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(s->db, count, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        /* Every row has words (source_file has some): an index with fewer
         * than its rows lost them (a structure record read as empty made
         * every search find nothing, without an error). And FTS5 keeps
         * its averages in record 1 from the start. */
        if (rc == SQLITE_ROW && (sqlite3_column_int64(st, 0) < sqlite3_column_int64(st, 1) ||
                                 sqlite3_column_int64(st, 3) != 1)) {
                if (asprintf(&problem, "full-text index %s: %s", fts,
                             sqlite3_column_int64(st, 3) != 1 ? "its averages record is missing"
                                                              : "it holds fewer words than rows") < 0)
                        return log_error_errno(ENOMEM, "Failed to check %s: %m", s->path);
                return add_problem(s, n, first, problem);
        }
        if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) != sqlite3_column_int64(st, 2)) {
                if (asprintf(&problem, "full-text index %s: %lld rows indexed, %lld to index", fts,
                             (long long) sqlite3_column_int64(st, 1), (long long) sqlite3_column_int64(st, 2)) < 0)
                        return log_error_errno(ENOMEM, "Failed to check %s: %m", s->path);
                return add_problem(s, n, first, problem);
        }
        if (rc == SQLITE_ROW)
                return 0;
        /* Damage shows as an error of the read, whichever step met it
         * (a damaged structure record is an error of the vtable's
         * constructor); a lock or an I/O error is no verdict. */
        if ((rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_ERROR)
                return store_fail(s, rc, "check the full-text index");
        if (asprintf(&problem, "full-text index %s: %s", fts, sqlite3_errmsg(s->db)) < 0)
                return log_error_errno(ENOMEM, "Failed to check %s: %m", s->path);
        return add_problem(s, n, first, problem);
}

int store_check_integrity(struct store *s, unsigned *ret_n, char **ret_first) {
        _cleanup_stmt_finalize_ sqlite3_stmt *st = NULL;
        int rc, r;

        *ret_n = 0;
        *ret_first = NULL;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check(100)", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_fail(s, rc, "check the database's integrity");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *line = (const char *) sqlite3_column_text(st, 0);
                if (!line || strcmp(line, "ok") == 0)
                        continue;
                r = add_problem(s, ret_n, ret_first, line);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE) {
                free(TAKE_PTR(*ret_first));
                return store_fail(s, rc, "check the database's integrity");
        }
        r = check_fts_index(s, "chunks_fts", "SELECT count(*) FROM main.chunks", ret_n, ret_first);
        if (r == 0 && s->has_derived)
                r = check_fts_index(s, "chunks_cjk", "SELECT count(*) FROM main.chunks_cjk_content", ret_n,
                                    ret_first);
        if (r < 0)
                free(TAKE_PTR(*ret_first));
        return r;
}

void store_status_done(struct store_status *st) {
        for (size_t i = 0; i < st->n_namespaces; i++)
                free(st->namespaces[i].name);
        free(st->namespaces);
        *st = (struct store_status){ 0 };
}
