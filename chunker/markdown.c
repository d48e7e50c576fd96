/* Markdown -> chunks (chunker.h; the rules are in docs/CHUNKER.md). libcmark
 * says where top-level blocks start and which are headings; the line ranges
 * are ours, so every non-blank line lands in exactly one chunk whatever cmark
 * drops from its tree (link reference definitions) or gets wrong (end_line). */
#include "chunker.h"

#include <assert.h>
#include <cmark.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "text.h"
#include "util.h"

/* Headings longer than this are cut (at a character boundary) in
 * heading_hierarchy: every chunk of a section carries a copy of all its
 * enclosing headings, so an unbounded heading would let one pathological
 * file cost gigabytes. Real headings are far shorter. */
#define HEADING_TEXT_MAX 256

/* Containers nested deeper than this are split at lines rather than at their
 * children: the split recurses, and cmark's own parser has no nesting limit. */
#define SPLIT_DEPTH_MAX 64
/* Front matter up to this size stays one chunk, whatever max_bytes says:
 * YAML metadata runs to a few KiB at most (long descriptions, aliases). */
#define FRONT_MATTER_ATOM_MAX (64 * 1024)

static inline void cmark_node_freep(cmark_node **node) {
        if (*node)
                cmark_node_free(*node);
}

enum block_kind {
        BLOCK_FRONT_MATTER,
        BLOCK_HEADING,
        BLOCK_BODY,
};

struct block {
        cmark_node *node; /* NULL for front matter and for lines cmark made no block of */
        uint32_t start, end;
        enum block_kind kind;
};

/* A growing byte buffer; the strings in it stay NUL-terminated. */
struct buf {
        char *data;
        size_t len, cap;
};

struct heading {
        int level;
        size_t off, len; /* text in splitter.names */
};

struct splitter {
        const char *text;
        size_t len;
        /* line_start[l] is where line l (1-based) begins; line_start[n_lines + 1]
         * is one past the end of the last line's '\n', real or not, so that
         * line l always ends at line_start[l + 1] - 1. */
        size_t *line_start;
        uint32_t n_lines;
        size_t min_bytes, max_bytes;

        struct block *blocks;
        size_t n_blocks;

        /* Headings enclosing the current position, outermost first. */
        struct heading stack[6];
        size_t depth;
        struct buf names;    /* texts of stack[] back to back */
        struct buf sec_hier; /* JSON of the section being packed */

        /* The chunk being accumulated from whole sections. */
        bool cur_active;
        bool cur_has_body;
        size_t cur_first_block;
        uint32_t cur_start, cur_end;
        struct buf cur_hier;

        /* The piece being accumulated while splitting an oversized section;
         * its hierarchy is sec_hier. body_end is the last line of its last
         * non-heading atom, head_start the first line of the headings that
         * end it (0: none). */
        bool piece_active;
        uint32_t piece_start, piece_end, piece_body_end, piece_head_start;

        struct chunk_list *out;
        size_t out_cap;
};

static int buf_reserve(struct buf *b, size_t extra) {
        return GREEDY_REALLOC(b->data, b->cap, b->len + extra + 1, 128);
}

static int buf_put(struct buf *b, const char *s, size_t n) {
        if (buf_reserve(b, n) < 0)
                return -ENOMEM;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static size_t line_end(const struct splitter *s, uint32_t l) {
        return s->line_start[l + 1] - 1;
}

/* Bytes of the content lines a..b would have. */
static size_t span_bytes(const struct splitter *s, uint32_t a, uint32_t b) {
        return line_end(s, b) - s->line_start[a];
}

/* Blank as CommonMark says: nothing but spaces and tabs. */
static bool line_is_blank(const struct splitter *s, uint32_t l) {
        for (size_t i = s->line_start[l], e = line_end(s, l); i < e; i++)
                if (s->text[i] != ' ' && s->text[i] != '\t')
                        return false;
        return true;
}

/* Shrink a..b to its first and last non-blank lines; false if none is left. */
static bool trim_blank(const struct splitter *s, uint32_t *a, uint32_t *b) {
        while (*a <= *b && line_is_blank(s, *a))
                (*a)++;
        while (*b >= *a && line_is_blank(s, *b))
                (*b)--;
        return *a <= *b;
}

static bool line_equals(const struct splitter *s, uint32_t l, const char *word) {
        size_t n = strlen(word);
        return line_end(s, l) - s->line_start[l] == n &&
               memcmp(s->text + s->line_start[l], word, n) == 0;
}

/* YAML front matter: line 1 is exactly "---" and a later line exactly "---"
 * or "...". Returns the closing line, 0 if there is none. cmark must not see
 * it: it would read a thematic break and a setext heading. */
static uint32_t front_matter_end(const struct splitter *s) {
        if (s->n_lines < 2 || !line_equals(s, 1, "---"))
                return 0;
        for (uint32_t l = 2; l <= s->n_lines; l++)
                if (line_equals(s, l, "---") || line_equals(s, l, "..."))
                        return l;
        return 0;
}

static int emit(struct splitter *s, uint32_t a, uint32_t b, const struct buf *hier) {
        struct chunk_list *out = s->out;

        if (GREEDY_REALLOC(out->items, s->out_cap, out->n_items + 1, 8) < 0)
                return -ENOMEM;

        struct chunk *c = &out->items[out->n_items];
        *c = (struct chunk){ .heading_hierarchy = strdup(hier->data) };
        if (!c->heading_hierarchy)
                return -ENOMEM;
        c->start_line = a;
        c->end_line = b;
        c->content = s->text + s->line_start[a];
        c->content_len = span_bytes(s, a, b);
        hash_hex(c->content, c->content_len, c->content_hash);
        out->n_items++;
        return 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n';
}

/* The plain text of a heading: TEXT and CODE literals of its inline
 * descendants, breaks as spaces, trimmed, cut at HEADING_TEXT_MAX; appended
 * to names, where it is found at *ret_off. Walks the tree by hand because a
 * cmark_iter costs an allocation per heading. */
static int heading_text(struct splitter *s, cmark_node *heading, size_t *ret_off, size_t *ret_len) {
        size_t off = s->names.len;
        cmark_node *n = cmark_node_first_child(heading);
        int r;

        while (n) {
                const char *lit = NULL;

                switch (cmark_node_get_type(n)) {
                case CMARK_NODE_TEXT:
                case CMARK_NODE_CODE:
                        lit = cmark_node_get_literal(n);
                        break;
                case CMARK_NODE_SOFTBREAK:
                case CMARK_NODE_LINEBREAK:
                        lit = " ";
                        break;
                default:
                        break;
                }
                /* Leading blanks never go in, so the cut below is exact. */
                if (lit && s->names.len == off)
                        while (is_space(*lit))
                                lit++;
                if (lit && s->names.len - off <= HEADING_TEXT_MAX) {
                        r = buf_put(&s->names, lit, strlen(lit));
                        if (r < 0)
                                return r;
                }

                cmark_node *child = cmark_node_first_child(n);
                if (child) {
                        n = child;
                        continue;
                }
                while (n != heading && !cmark_node_next(n))
                        n = cmark_node_parent(n);
                n = n == heading ? NULL : cmark_node_next(n);
        }

        const char *t = s->names.data;
        size_t a = off, b = s->names.len; /* t[a..b) */
        if (b - a > HEADING_TEXT_MAX) {
                b = a + HEADING_TEXT_MAX;
                /* Back off to the start of a UTF-8 character. */
                while (b > a && ((unsigned char) t[b] & 0xC0) == 0x80)
                        b--;
        }
        while (b > a && is_space(t[b - 1]))
                b--;
        *ret_off = off;
        *ret_len = b - a;
        return 0;
}

/* Enter a heading: pop the headings it closes, push it, and write the JSON
 * array of the new stack into sec_hier. */
static int heading_enter(struct splitter *s, cmark_node *node) {
        int level = cmark_node_get_heading_level(node);
        size_t off, len;
        int r;

        while (s->depth > 0 && s->stack[s->depth - 1].level >= level)
                s->depth--;
        s->names.len = s->depth > 0 ? s->stack[s->depth - 1].off + s->stack[s->depth - 1].len : 0;

        r = heading_text(s, node, &off, &len);
        if (r < 0)
                return r;
        s->stack[s->depth++] = (struct heading) { .level = level, .off = off, .len = len };

        s->sec_hier.len = 0;
        r = buf_put(&s->sec_hier, "[", 1);
        for (size_t i = 0; r >= 0 && i < s->depth; i++) {
                if (i > 0)
                        r = buf_put(&s->sec_hier, ",", 1);
                if (r >= 0)
                        r = json_append_string(&s->sec_hier.data, &s->sec_hier.len, &s->sec_hier.cap,
                                               s->names.data + s->stack[i].off, s->stack[i].len);
        }
        if (r >= 0)
                r = buf_put(&s->sec_hier, "]", 1);
        return r;
}

/* Whether hierarchy `longer` starts with every heading of `prefix`. Both are
 * JSON arrays of escaped strings, so a byte prefix that stops at a ',' or
 * the closing ']' is a prefix of whole elements. */
static bool hier_extends(const struct buf *longer, const struct buf *prefix) {
        size_t n = prefix->len - 1; /* without the ']' */

        if (prefix->len == 2)
                return true;
        return longer->len > n && memcmp(longer->data, prefix->data, n) == 0 &&
               (longer->data[n] == ',' || longer->data[n] == ']');
}

static int piece_flush(struct splitter *s) {
        if (!s->piece_active)
                return 0;
        s->piece_active = false;
        return emit(s, s->piece_start, s->piece_end, &s->sec_hier);
}

/* Add lines a..b, which must not be split, to the piece being built: greedy,
 * except that headings stick to what follows them. A piece that would end
 * in a heading is a hit with nothing under it, and the heading is already
 * in the next piece's hierarchy; so when the next atom does not fit, the
 * trailing headings move on with it, even if that passes max_bytes. */
static int piece_add(struct splitter *s, uint32_t a, uint32_t b, bool is_heading) {
        int r;

        if (s->piece_active && span_bytes(s, s->piece_start, b) > s->max_bytes) {
                if (!is_heading && s->piece_head_start > 0) {
                        if (s->piece_body_end > 0) {
                                r = emit(s, s->piece_start, s->piece_body_end, &s->sec_hier);
                                if (r < 0)
                                        return r;
                                s->piece_start = s->piece_head_start;
                        }
                } else {
                        r = piece_flush(s);
                        if (r < 0)
                                return r;
                }
        }
        if (!s->piece_active) {
                s->piece_active = true;
                s->piece_start = a;
                s->piece_body_end = 0;
                s->piece_head_start = 0;
        }
        s->piece_end = b;
        if (is_heading) {
                if (s->piece_head_start == 0)
                        s->piece_head_start = a;
        } else {
                s->piece_body_end = b;
                s->piece_head_start = 0;
        }
        return 0;
}

/* cmark numbers the lines of what it was given: the text after front matter. */
static int node_start_line(cmark_node *node, uint32_t offset) {
        return cmark_node_get_start_line(node) + (int) offset;
}

/* Feed lines a..b of node into the piece, cut as finely as needed: whole if
 * they fit, else a list or block quote (or list item) at its children, a
 * paragraph or HTML block at lines; a code block never. */
static int split_node(struct splitter *s, cmark_node *node, uint32_t offset, uint32_t a, uint32_t b,
                      int depth) {
        cmark_node_type type = node ? cmark_node_get_type(node) : CMARK_NODE_NONE;
        int r;

        if (a == b || span_bytes(s, a, b) <= s->max_bytes || type == CMARK_NODE_CODE_BLOCK)
                return piece_add(s, a, b, false);

        bool is_container = type == CMARK_NODE_LIST || type == CMARK_NODE_ITEM ||
                            type == CMARK_NODE_BLOCK_QUOTE;
        if (is_container && depth < SPLIT_DEPTH_MAX && cmark_node_first_child(node)) {
                /* Child i owns the lines from its start to the next child's
                 * start; the first also owns whatever precedes it. A child
                 * whose start is out of order is folded into the one before,
                 * so no line is ever dropped. */
                cmark_node *c = cmark_node_first_child(node);
                uint32_t ca = a;
                while (c) {
                        cmark_node *next = cmark_node_next(c);
                        uint32_t next_start = b + 1;
                        for (; next; next = cmark_node_next(next)) {
                                int l = node_start_line(next, offset);
                                if (l > (int) ca && l <= (int) b) {
                                        next_start = (uint32_t) l;
                                        break;
                                }
                        }
                        uint32_t x = ca, y = next_start - 1;
                        if (trim_blank(s, &x, &y)) {
                                r = split_node(s, c, offset, x, y, depth + 1);
                                if (r < 0)
                                        return r;
                        }
                        ca = next_start;
                        c = next;
                }
                return 0;
        }

        for (uint32_t l = a; l <= b; l++)
                if (!line_is_blank(s, l)) {
                        r = piece_add(s, l, l, false);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int cur_flush(struct splitter *s) {
        if (!s->cur_active)
                return 0;
        s->cur_active = false;
        return emit(s, s->cur_start, s->cur_end, &s->cur_hier);
}

/* Greedy packing of one section: blocks[first..last], hierarchy in sec_hier. */
static int pack_section(struct splitter *s, size_t first, size_t last, uint32_t offset) {
        uint32_t start = s->blocks[first].start, end = s->blocks[last].end;
        bool is_front_matter = s->blocks[first].kind == BLOCK_FRONT_MATTER;
        bool has_body = false;
        int r;

        for (size_t i = first; i <= last; i++)
                has_body = has_body || s->blocks[i].kind == BLOCK_BODY;

        if (span_bytes(s, start, end) > s->max_bytes) {
                /* A chunk of headings only (and front matter) that this
                 * section's hierarchy extends would be an orphan title: it
                 * becomes the head of the first piece instead. */
                size_t from = first;
                if (s->cur_active && !s->cur_has_body && hier_extends(&s->sec_hier, &s->cur_hier))
                        from = s->cur_first_block;
                else {
                        r = cur_flush(s);
                        if (r < 0)
                                return r;
                }
                s->cur_active = false;

                for (size_t i = from; i <= last; i++) {
                        const struct block *bl = &s->blocks[i];
                        /* A heading is one atom whatever its size, and so is
                         * front matter, like a code block: its tags: are read
                         * from a chunk that holds it whole (derive.c). Past
                         * FRONT_MATTER_ATOM_MAX it is rather a document that
                         * merely starts and goes on with "---" lines, cut at
                         * lines. */
                        bool is_atom = bl->kind == BLOCK_HEADING ||
                                       (bl->kind == BLOCK_FRONT_MATTER &&
                                        span_bytes(s, bl->start, bl->end) <= FRONT_MATTER_ATOM_MAX);
                        r = is_atom ? piece_add(s, bl->start, bl->end, bl->kind == BLOCK_HEADING)
                                    : split_node(s, bl->node, offset, bl->start, bl->end, 0);
                        if (r < 0)
                                return r;
                }
                return piece_flush(s);
        }

        if (s->cur_active && span_bytes(s, s->cur_start, end) > s->max_bytes) {
                r = cur_flush(s);
                if (r < 0)
                        return r;
        }

        if (!s->cur_active) {
                s->cur_active = true;
                s->cur_has_body = false;
                s->cur_first_block = first;
                s->cur_start = start;
                s->cur_hier.len = 0;
        }
        /* Until the chunk has body text it is only a path of titles, and a
         * section below them names it better: "# Title\n## Intro\ntext" is
         * about ["Title","Intro"]. */
        if (s->cur_hier.len == 0 || (!s->cur_has_body && hier_extends(&s->sec_hier, &s->cur_hier))) {
                s->cur_hier.len = 0;
                r = buf_put(&s->cur_hier, s->sec_hier.data, s->sec_hier.len);
                if (r < 0)
                        return r;
        }
        s->cur_end = end;
        s->cur_has_body = s->cur_has_body || has_body;

        /* Front matter waits for what follows, however long it is: alone it
         * is a chunk nobody searches for. */
        if (!is_front_matter && span_bytes(s, s->cur_start, s->cur_end) >= s->min_bytes)
                return cur_flush(s);
        return 0;
}

/* Top-level blocks with their line ranges: block i runs from its start line
 * to the line before the next block's, trimmed of blank lines; the first
 * also takes the lines before it (link reference definitions, which cmark
 * keeps out of its tree). */
static int collect_blocks(struct splitter *s, cmark_node *doc, uint32_t fm_end) {
        size_t n = 0;
        uint32_t body_start = fm_end + 1;

        for (cmark_node *c = doc ? cmark_node_first_child(doc) : NULL; c; c = cmark_node_next(c))
                n++;
        s->blocks = malloc((n + 2) * sizeof *s->blocks);
        if (!s->blocks)
                return -ENOMEM;

        if (fm_end > 0)
                s->blocks[s->n_blocks++] = (struct block) {
                        .start = 1, .end = fm_end, .kind = BLOCK_FRONT_MATTER
                };

        size_t first_body = s->n_blocks;
        for (cmark_node *c = doc ? cmark_node_first_child(doc) : NULL; c; c = cmark_node_next(c)) {
                int l = node_start_line(c, fm_end);
                bool is_first = s->n_blocks == first_body;

                /* A start out of order (never seen) folds into the previous block. */
                if (!is_first && (l <= (int) s->blocks[s->n_blocks - 1].start || l > (int) s->n_lines))
                        continue;
                s->blocks[s->n_blocks] = (struct block) {
                        .node = c,
                        .start = is_first ? body_start : (uint32_t) l,
                        .kind = cmark_node_get_type(c) == CMARK_NODE_HEADING ? BLOCK_HEADING : BLOCK_BODY,
                };
                s->n_blocks++;
        }
        /* Lines cmark made nothing of (a file of link reference definitions). */
        if (s->n_blocks == first_body && body_start <= s->n_lines)
                s->blocks[s->n_blocks++] = (struct block) { .start = body_start, .kind = BLOCK_BODY };

        size_t kept = first_body;
        for (size_t i = first_body; i < s->n_blocks; i++) {
                struct block bl = s->blocks[i];
                bl.end = i + 1 < s->n_blocks ? s->blocks[i + 1].start - 1 : s->n_lines;
                if (trim_blank(s, &bl.start, &bl.end))
                        s->blocks[kept++] = bl;
        }
        s->n_blocks = kept;
        return 0;
}

static int split(struct splitter *s) {
        _cleanup_(cmark_node_freep) cmark_node *doc = NULL;
        uint32_t fm_end = front_matter_end(s);
        int r;

        if (fm_end < s->n_lines) {
                size_t off = s->line_start[fm_end + 1];
                doc = cmark_parse_document(s->text + off, s->len - off, CMARK_OPT_DEFAULT);
                if (!doc)
                        return -ENOMEM;
        }

        r = collect_blocks(s, doc, fm_end);
        if (r < 0)
                return r;

        /* names is never NULL, even when every heading is empty. */
        r = buf_reserve(&s->names, 0);
        if (r < 0)
                return r;
        r = buf_put(&s->sec_hier, "[]", 2);
        if (r < 0)
                return r;

        for (size_t i = 0; i < s->n_blocks;) {
                size_t j = i + 1;

                if (s->blocks[i].kind == BLOCK_HEADING) {
                        r = heading_enter(s, s->blocks[i].node);
                        if (r < 0)
                                return r;
                }
                if (s->blocks[i].kind != BLOCK_FRONT_MATTER)
                        while (j < s->n_blocks && s->blocks[j].kind == BLOCK_BODY)
                                j++;
                r = pack_section(s, i, j - 1, fm_end);
                if (r < 0)
                        return r;
                i = j;
        }
        return cur_flush(s);
}

int chunker_split(const char *text, size_t len, const struct chunker_options *opts,
                  struct chunk_list *ret) {
        struct splitter s = {
                .text = text,
                .len = len,
                .min_bytes = opts && opts->min_bytes ? opts->min_bytes : CHUNKER_MIN_BYTES_DEFAULT,
                .max_bytes = opts && opts->max_bytes ? opts->max_bytes : CHUNKER_MAX_BYTES_DEFAULT,
                .out = ret,
        };
        size_t n_lines;
        int r;

        assert(text || len == 0);
        assert(ret);
        *ret = (struct chunk_list) { .items = NULL };

        n_lines = text_count_lines(text, len);
        if (n_lines == 0)
                return 0;
        /* cmark counts lines in an int. */
        if (n_lines > INT_MAX - 1)
                return -EFBIG;
        s.n_lines = (uint32_t) n_lines;

        s.line_start = malloc((n_lines + 2) * sizeof *s.line_start);
        if (!s.line_start)
                return -ENOMEM;
        size_t l = 1;
        s.line_start[l++] = 0;
        for (const char *p = text, *e = text + len; (p = memchr(p, '\n', (size_t) (e - p))); p++)
                s.line_start[l++] = (size_t) (p - text) + 1;
        /* A last line without '\n' ends at len, as if it had one. */
        if (text[len - 1] != '\n')
                s.line_start[l] = len + 1;

        r = split(&s);

        free(s.line_start);
        free(s.blocks);
        free(s.names.data);
        free(s.sec_hier.data);
        free(s.cur_hier.data);
        if (r < 0) {
                chunk_list_free(ret);
                return r;
        }
        /* Most notes are one or two chunks and the array grew by doubling
         * from 8: give the rest back, since a reader queue holds thousands
         * of these lists at once during a cold index. */
        if (ret->n_items > 0 && ret->n_items < s.out_cap) {
                struct chunk *p = realloc(ret->items, ret->n_items * sizeof *p);
                if (p)
                        ret->items = p;
        }
        return 0;
}

void chunk_list_free(struct chunk_list *list) {
        if (!list)
                return;
        for (size_t i = 0; i < list->n_items; i++) {
                free(list->items[i].heading_hierarchy);
                chunk_derived_done(&list->items[i]);
        }
        free(list->items);
        *list = (struct chunk_list) { .items = NULL };
}
