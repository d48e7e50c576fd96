/* derive_chunk (derive.h): one pass over a chunk's lines that tells code
 * from text (fenced and indented code blocks, front matter), then one pass
 * over each block of text that skips code spans, HTML tags and bare URLs
 * and hands #tags, [[wiki links]] and Markdown links to tags.c and links.c.
 *
 * It is a scanner, not a CommonMark parser: the chunk may have been written
 * by another program, so all there is to go on is its text, and the result
 * must be the same wherever it is computed. Every loop is linear in the
 * chunk, whatever the input (docs/CHUNKER.md says how each one is bounded):
 * this runs on every chunk of a cold index. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "derive-internal.h"
#include "macro.h"
#include "unicode.h"
#include "util.h"

/* Code spans opened by a longer run of backticks are literal text: the
 * memo that keeps the search for a closer linear has one slot per length.
 * Nobody fences inline code with 33 backticks. */
#define CODE_SPAN_RUN_MAX 32
/* cmark's limit on nested parentheses in a link destination; it also
 * bounds how far a failing destination is scanned (docs/CHUNKER.md). */
#define LINK_PAREN_DEPTH_MAX 32

/* ---- output ---- */

static int tag_slots_grow(struct derive_out *o) {
        size_t n = o->n_tag_slots ? o->n_tag_slots * 2 : 16;
        uint32_t *slots = calloc(n, sizeof *slots);

        if (!slots)
                return -ENOMEM;
        for (size_t t = 0; t < o->d.n_tags; t++) {
                const char *name = o->d.tags[t].name;
                size_t i = fnv1a64(name, strlen(name)) & (n - 1);
                while (slots[i])
                        i = (i + 1) & (n - 1);
                slots[i] = (uint32_t) t + 1;
        }
        free(o->tag_slots);
        o->tag_slots = slots;
        o->n_tag_slots = n;
        return 0;
}

void derive_out_tag(struct derive_out *o, const char *name, size_t n, bool is_front_matter) {
        if (o->r < 0)
                return;
        if ((o->d.n_tags + 1) * 2 > o->n_tag_slots && tag_slots_grow(o) < 0)
                goto fail;

        size_t mask = o->n_tag_slots - 1, i = fnv1a64(name, n) & mask;
        for (; o->tag_slots[i]; i = (i + 1) & mask) {
                const char *have = o->d.tags[o->tag_slots[i] - 1].name;
                if (strncmp(have, name, n) == 0 && have[n] == '\0')
                        return;
        }
        if (GREEDY_REALLOC(o->d.tags, o->cap_tags, o->d.n_tags + 1, 8) < 0)
                goto fail;
        char *copy = malloc(n + 1);
        if (!copy)
                goto fail;
        memcpy(copy, name, n);
        copy[n] = '\0';
        o->d.tags[o->d.n_tags] = (struct derived_tag) { .name = copy, .is_front_matter = is_front_matter };
        o->tag_slots[i] = (uint32_t) ++o->d.n_tags;
        return;
fail:
        o->r = -ENOMEM;
}

size_t derive_out_link(struct derive_out *o, enum link_kind kind, char *target, char *fragment, uint32_t line) {
        if (o->r < 0 || GREEDY_REALLOC(o->d.links, o->cap_links, o->d.n_links + 1, 8) < 0) {
                o->r = -ENOMEM;
                free(target);
                free(fragment);
                return SIZE_MAX;
        }
        o->d.links[o->d.n_links] = (struct derived_link) {
                .kind = kind, .target = target, .fragment = fragment, .line = line,
        };
        return o->d.n_links++;
}

void derive_out_done(struct derive_out *o) {
        derived_done(&o->d);
        free(o->tag_slots);
        *o = (struct derive_out) { 0 };
}

void derived_done(struct derived *d) {
        for (size_t i = 0; i < d->n_tags; i++)
                free(d->tags[i].name);
        for (size_t i = 0; i < d->n_links; i++) {
                free(d->links[i].target);
                free(d->links[i].fragment);
        }
        free(d->tags);
        free(d->links);
        *d = (struct derived) { 0 };
}

/* ---- the scanner ---- */

struct bracket {
        size_t pos; /* of the '[' */
        uint32_t line;
        bool is_image;
};

/* A reference link waiting for its definition: links[link] has a NULL
 * target until the end of the chunk, where it is resolved or dropped. */
struct reference {
        size_t link;
        size_t label, label_n;
};

struct definition {
        size_t key, key_n; /* the normalized label in scanner.keys */
        size_t dest, dest_n;
};

struct scanner {
        const char *text;
        size_t len;
        struct derive_out out;
        bool in_front_matter; /* wiki links only */

        struct bracket *brackets; /* the '[' and '![' not matched yet, in this block */
        size_t n_brackets, cap_brackets;
        /* A '[' below this index is inactive: a link formed after it, and
         * a link cannot contain a link. '![' stays active (CommonMark). */
        size_t bracket_floor;
        struct reference *references;
        size_t n_references, cap_references;
        struct definition *definitions;
        size_t n_definitions, cap_definitions;
        char *keys;
        size_t n_keys, cap_keys;

        /* Memos of failed searches, valid within one block (see scan_block). */
        size_t code_last[CODE_SPAN_RUN_MAX + 1]; /* last backtick run of each length seen */
        bool code_scanned;                       /* a search for a closer reached the end */
        size_t wiki_fail_until; /* no "]]" between a "[[" before this and its line's end */
        size_t html_fail_until; /* no '>' between a '<' before this and its line's end */
        size_t title_fail[3];   /* a title opened by " ' ( here or later is never closed */
};

static bool is_ascii_punct(char c) {
        return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

static bool is_ascii_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static uint32_t count_newlines(const char *s, size_t n) {
        uint32_t count = 0;
        const char *end = s + n;

        while ((s = memchr(s, '\n', (size_t) (end - s)))) {
                count++;
                s++;
        }
        return count;
}

/* A backtick run at text[i]. Returns where scanning goes on: after the
 * closing run when there is one (a code span), else after the run. */
static size_t code_span(struct scanner *s, size_t i, size_t end, uint32_t *line) {
        const char *t = s->text;
        size_t n = 0;

        while (i + n < end && t[i + n] == '`')
                n++;
        if (n > CODE_SPAN_RUN_MAX || (s->code_scanned && s->code_last[n] <= i))
                return i + n;

        /* Each search either finds a closer (and the scan skips what it
         * read) or reads to the end once: after that, code_last says in
         * O(1) whether a run of that length is still ahead. */
        for (size_t j = i + n; j < end;) {
                const char *tick = memchr(t + j, '`', end - j);
                if (!tick)
                        break;
                j = (size_t) (tick - t);
                size_t m = 0;
                while (j + m < end && t[j + m] == '`')
                        m++;
                if (m <= CODE_SPAN_RUN_MAX && j > s->code_last[m])
                        s->code_last[m] = j;
                if (m == n) {
                        *line += count_newlines(t + i, j - i);
                        return j + m;
                }
                j += m;
        }
        s->code_scanned = true;
        return i + n;
}

/* "[[" at text[i] (kind LINK_EMBED when a '!' is before it): up to the
 * first "]]" on the line; a later "[[" before it starts the link anew.
 * Returns false when there is no "]]", with *next unchanged. */
static bool wiki_link(struct scanner *s, size_t begin, size_t i, size_t end, uint32_t line, size_t *next) {
        const char *t = s->text;
        size_t open = i;

        if (i < s->wiki_fail_until)
                return false;
        for (size_t j = i + 2; j < end; j++) {
                if (t[j] == '\n') {
                        s->wiki_fail_until = j;
                        return false;
                }
                if (j + 1 >= end || t[j] != t[j + 1])
                        continue;
                if (t[j] == '[') {
                        open = j;
                        j++;
                } else if (t[j] == ']') {
                        enum link_kind kind = open > begin && t[open - 1] == '!' ? LINK_EMBED : LINK_WIKI;
                        link_add_wiki(&s->out, kind, t + open + 2, j - open - 2, line);
                        *next = j + 2;
                        return true;
                }
        }
        s->wiki_fail_until = end;
        return false;
}

static int push_bracket(struct scanner *s, size_t pos, uint32_t line, bool is_image) {
        if (GREEDY_REALLOC(s->brackets, s->cap_brackets, s->n_brackets + 1, 8) < 0)
                return -ENOMEM;
        s->brackets[s->n_brackets++] = (struct bracket) { .pos = pos, .line = line, .is_image = is_image };
        return 0;
}

/* Spaces and tabs, and at most one line ending, from text[i]. */
static size_t skip_link_space(const char *t, size_t i, size_t end) {
        bool had_newline = false;

        for (; i < end; i++) {
                if (t[i] == '\n') {
                        if (had_newline)
                                break;
                        had_newline = true;
                } else if (t[i] != ' ' && t[i] != '\t')
                        break;
        }
        return i;
}

/* The "(dest "title")" of an inline link, from just after its '('. Returns
 * the position after the ')' and the destination (without < >) in
 * *dest and *dest_n, or 0 when this is no inline link. */
static size_t link_destination(struct scanner *s, size_t i, size_t end, size_t *dest, size_t *dest_n) {
        const char *t = s->text;
        size_t j = skip_link_space(t, i, end);

        if (j < end && t[j] == '<') {
                /* Ends at the first '>', '<' or line end: a later '<'
                 * starts a search past where this one stopped. */
                size_t k = j + 1;
                while (k < end && t[k] != '>' && t[k] != '<' && t[k] != '\n')
                        k += t[k] == '\\' && k + 1 < end && t[k + 1] != '\n' ? 2 : 1;
                if (k >= end || t[k] != '>')
                        return 0;
                *dest = j + 1;
                *dest_n = k - j - 1;
                j = k + 1;
        } else {
                /* Up to whitespace, or the ')' that balances. A search that
                 * fails runs on only while the depth stays within
                 * [start, start + 32]; each '(' of a later "](" inside it
                 * raises the depth, so at most 33 searches read a byte. */
                size_t k = j;
                int depth = 0;
                for (; k < end && (unsigned char) t[k] > ' '; k++) {
                        if (t[k] == '\\' && k + 1 < end && is_ascii_punct(t[k + 1]))
                                k++;
                        else if (t[k] == '(') {
                                if (++depth > LINK_PAREN_DEPTH_MAX)
                                        return 0;
                        } else if (t[k] == ')') {
                                if (depth == 0)
                                        break;
                                depth--;
                        }
                }
                if (depth != 0)
                        return 0;
                *dest = j;
                *dest_n = k - j;
                j = k;
        }

        size_t k = skip_link_space(t, j, end);
        if (k > j && k < end && (t[k] == '"' || t[k] == '\'' || t[k] == '(')) {
                char close = t[k] == '(' ? ')' : t[k];
                size_t kind = t[k] == '"' ? 0 : t[k] == '\'' ? 1 : 2;
                if (k >= s->title_fail[kind])
                        return 0;
                size_t m = k + 1;
                for (; m < end && t[m] != close; m++) {
                        if (t[m] == '\\' && m + 1 < end)
                                m++;
                        else if (close == ')' && t[m] == '(')
                                return 0;
                }
                if (m >= end) {
                        s->title_fail[kind] = k;
                        return 0;
                }
                k = skip_link_space(t, m + 1, end);
        }
        if (k >= end || t[k] != ')')
                return 0;
        return k + 1;
}

static void add_reference(struct scanner *s, size_t label, size_t label_n, uint32_t line) {
        if (label_n == 0 || label_n > LINK_LABEL_MAX || s->text[label] == '^')
                return;
        size_t link = derive_out_link(&s->out, LINK_MARKDOWN, NULL, NULL, line);
        if (link == SIZE_MAX)
                return;
        if (GREEDY_REALLOC(s->references, s->cap_references, s->n_references + 1, 8) < 0) {
                s->out.r = -ENOMEM;
                return;
        }
        s->references[s->n_references++] = (struct reference) { .link = link, .label = label, .label_n = label_n };
}

/* A link formed from bracket b: the '[' before it are text from now on,
 * unless it was an image (an image may sit inside a link: a badge). */
static void link_formed(struct scanner *s, const struct bracket *b) {
        if (!b->is_image)
                s->bracket_floor = s->n_brackets;
}

/* ']' at text[i]: closes the innermost open bracket, as an inline link
 * [text](dest), a reference [text][label] / [label][] / [label], or
 * nothing. Returns where scanning goes on. */
static size_t close_bracket(struct scanner *s, size_t i, size_t end, uint32_t *line) {
        const char *t = s->text;

        if (s->n_brackets == 0)
                return i + 1;
        size_t index = --s->n_brackets;
        struct bracket b = s->brackets[index];
        bool is_active = b.is_image || index >= s->bracket_floor;
        if (s->bracket_floor > s->n_brackets)
                s->bracket_floor = s->n_brackets;
        if (!is_active)
                return i + 1;

        if (i + 1 < end && t[i + 1] == '(') {
                size_t dest, dest_n;
                size_t after = link_destination(s, i + 2, end, &dest, &dest_n);
                if (after == 0)
                        return i + 1;
                char *target, *fragment;
                int r = link_markdown_parts(t + dest, dest_n, &target, &fragment);
                if (r < 0)
                        s->out.r = r;
                else if (r > 0)
                        derive_out_link(&s->out, LINK_MARKDOWN, target, fragment, b.line);
                link_formed(s, &b);
                *line += count_newlines(t + i, after - i);
                return after;
        }
        if (i + 1 < end && t[i + 1] == '[') {
                size_t k = i + 2;
                while (k < end && k - i - 2 <= LINK_LABEL_MAX && t[k] != ']' && t[k] != '[')
                        k += t[k] == '\\' && k + 1 < end ? 2 : 1;
                if (k >= end || t[k] != ']')
                        return i + 1;
                if (k == i + 2)
                        add_reference(s, b.pos + 1, i - b.pos - 1, b.line);
                else
                        add_reference(s, i + 2, k - i - 2, b.line);
                link_formed(s, &b);
                *line += count_newlines(t + i, k - i);
                return k + 1;
        }
        add_reference(s, b.pos + 1, i - b.pos - 1, b.line);
        return i + 1;
}

/* '<' at text[i]: an HTML tag, comment or autolink on this line is skipped
 * whole (no tag in <span style="color:#f00">, no link in <https://a/#b>). */
static size_t skip_html(struct scanner *s, size_t i, size_t end) {
        const char *t = s->text;

        if (i + 1 >= end || !(is_ascii_alpha(t[i + 1]) || t[i + 1] == '/' || t[i + 1] == '!' || t[i + 1] == '?'))
                return i + 1;
        if (i < s->html_fail_until)
                return i + 1;
        for (size_t k = i + 1; k < end; k++) {
                if (t[k] == '>')
                        return k + 1;
                if (t[k] == '\n') {
                        s->html_fail_until = k;
                        return i + 1;
                }
        }
        s->html_fail_until = end;
        return i + 1;
}

/* ':' at text[i]: "scheme://" starts a bare URL, skipped up to whitespace
 * or a bracket, quote or backtick, so https://a.b/#frag is no tag. */
static size_t skip_url(struct scanner *s, size_t begin, size_t i, size_t end) {
        const char *t = s->text;

        if (i == begin || !is_ascii_alpha(t[i - 1]) || i + 2 >= end || t[i + 1] != '/' || t[i + 2] != '/')
                return i + 1;
        size_t k = i + 3;
        while (k < end && (unsigned char) t[k] > ' ' && !strchr("<>[]()\"'`", t[k]))
                k++;
        return k;
}

/* Bytes scan_block stops at; everything else is text. */
static const bool special[256] = {
        ['\n'] = true, ['\\'] = true, ['`'] = true, ['!'] = true, ['['] = true,
        [']'] = true,  ['#'] = true,  ['<'] = true, [':'] = true,
};

/* Tags and links in text[begin..end), a block of consecutive lines of text
 * whose first line is `line`: code spans, brackets and the memos do not
 * reach past it. */
static void scan_block(struct scanner *s, size_t begin, size_t end, uint32_t line) {
        const char *t = s->text;
        size_t i = begin;

        s->n_brackets = s->bracket_floor = 0;
        memset(s->code_last, 0, sizeof s->code_last);
        s->code_scanned = false;
        s->wiki_fail_until = s->html_fail_until = 0;
        for (size_t k = 0; k < ELEMENTSOF(s->title_fail); k++)
                s->title_fail[k] = SIZE_MAX;

        while (i < end && s->out.r >= 0) {
                while (i < end && !special[(unsigned char) t[i]])
                        i++;
                if (i >= end)
                        break;
                char c = t[i];

                if (c == '\n') {
                        line++;
                        i++;
                } else if (s->in_front_matter) {
                        size_t next;
                        if (c == '[' && i + 1 < end && t[i + 1] == '[' && wiki_link(s, begin, i, end, line, &next))
                                i = next;
                        else
                                i++;
                } else if (c == '\\')
                        i += i + 1 < end && is_ascii_punct(t[i + 1]) ? 2 : 1;
                else if (c == '`')
                        i = code_span(s, i, end, &line);
                else if (c == '!' || c == '[') {
                        bool is_image = c == '!';
                        size_t open = i + is_image, next;
                        if (open + 1 >= end || t[open] != '[') {
                                i++;
                                continue;
                        }
                        if (t[open + 1] == '[' && wiki_link(s, begin, open, end, line, &next)) {
                                i = next;
                                continue;
                        }
                        if (push_bracket(s, open, line, is_image) < 0)
                                s->out.r = -ENOMEM;
                        i = open + 1;
                } else if (c == ']')
                        i = close_bracket(s, i, end, &line);
                else if (c == '#') {
                        size_t n = 0;
                        bool is_tag = false;
                        if (tag_may_start(t, begin, i))
                                n = tag_scan(t + i + 1, end - i - 1, &is_tag);
                        if (is_tag)
                                derive_out_tag(&s->out, t + i + 1, n, false);
                        i += 1 + n;
                } else if (c == '<')
                        i = skip_html(s, i, end);
                else
                        i = skip_url(s, begin, i, end);
        }
}

/* ---- lines and blocks ---- */

struct line_info {
        size_t first;  /* first byte after indentation (and '>' markers) */
        size_t indent; /* columns of indentation after the '>' markers */
        bool is_blank;
};

static struct line_info line_info(const char *t, size_t pos, size_t eol) {
        size_t i = pos, col = 0;

        /* Block quote markers: up to 3 spaces, '>', one optional space. */
        for (;;) {
                size_t k = i, spaces = 0;
                while (k < eol && t[k] == ' ' && spaces < 3)
                        k++, spaces++;
                if (k >= eol || t[k] != '>')
                        break;
                i = k + 1;
                if (i < eol && t[i] == ' ')
                        i++;
        }
        for (; i < eol && (t[i] == ' ' || t[i] == '\t'); i++)
                col = t[i] == '\t' ? (col / 4 + 1) * 4 : col + 1;
        return (struct line_info) { .first = i, .indent = col, .is_blank = i == eol };
}

/* A list item marker (- * + or 1. 1)) at text[i]: the column its content
 * starts at, or 0. */
static size_t list_item_content(const char *t, size_t i, size_t eol, size_t indent) {
        size_t k = i;

        if (t[k] == '-' || t[k] == '*' || t[k] == '+')
                k++;
        else {
                while (k < eol && k - i < 9 && t[k] >= '0' && t[k] <= '9')
                        k++;
                if (k == i || k >= eol || (t[k] != '.' && t[k] != ')'))
                        return 0;
                k++;
        }
        if (k < eol && t[k] != ' ' && t[k] != '\t')
                return 0;
        size_t spaces = 0;
        while (k + spaces < eol && t[k + spaces] == ' ')
                spaces++;
        if (spaces == 0 || spaces > 4 || k + spaces == eol)
                spaces = 1;
        return indent + (k - i) + spaces;
}

/* A fence opener at text[i]: 3 or more ` or ~ (an info string after ```
 * has no backtick). Returns its length, 0 if it is none. */
static size_t fence_open(const char *t, size_t i, size_t eol) {
        char c = t[i];
        size_t n = 0;

        if (c != '`' && c != '~')
                return 0;
        while (i + n < eol && t[i + n] == c)
                n++;
        if (n < 3 || (c == '`' && memchr(t + i + n, '`', eol - i - n)))
                return 0;
        return n;
}

static bool fence_closes(const char *t, size_t i, size_t eol, char c, size_t n) {
        size_t k = i;

        while (k < eol && t[k] == c)
                k++;
        if (k - i < n)
                return false;
        while (k < eol && (t[k] == ' ' || t[k] == '\t'))
                k++;
        return k == eol;
}

static size_t line_end(const char *t, size_t pos, size_t len) {
        const char *nl = memchr(t + pos, '\n', len - pos);
        return nl ? (size_t) (nl - t) : len;
}

/* Front matter: line 1 is exactly "---" and a later line of the chunk is
 * exactly "---" or "...". Returns the offset of that closing line, 0 if
 * there is none. */
static size_t front_matter_end(const char *t, size_t len) {
        if (len < 4 || memcmp(t, "---\n", 4) != 0)
                return 0;
        for (size_t pos = 4; pos < len;) {
                size_t eol = line_end(t, pos, len);
                if (eol - pos == 3 && (memcmp(t + pos, "---", 3) == 0 || memcmp(t + pos, "...", 3) == 0))
                        return pos;
                pos = eol + 1;
        }
        return 0;
}

/* Lower-case ASCII, whitespace runs as one space, trimmed: the label
 * matching of CommonMark, without Unicode case folding. */
static size_t normalize_label(const char *s, size_t n, char *out) {
        size_t m = 0;
        bool space = false;

        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == ' ' || c == '\t' || c == '\n') {
                        space = m > 0;
                        continue;
                }
                if (space)
                        out[m++] = ' ';
                space = false;
                out[m++] = c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
        }
        return m;
}

static void add_definition(struct scanner *s, size_t label, size_t label_n, size_t dest, size_t dest_n) {
        if (GREEDY_REALLOC(s->keys, s->cap_keys, s->n_keys + label_n, 8) < 0 ||
            GREEDY_REALLOC(s->definitions, s->cap_definitions, s->n_definitions + 1, 8) < 0) {
                s->out.r = -ENOMEM;
                return;
        }
        size_t key_n = normalize_label(s->text + label, label_n, s->keys + s->n_keys);
        s->definitions[s->n_definitions++] = (struct definition) {
                .key = s->n_keys, .key_n = key_n, .dest = dest, .dest_n = dest_n,
        };
        s->n_keys += key_n;
}

/* Give each reference link the destination of its definition (the first
 * one of a label wins, as in CommonMark) and drop the rest. */
static void resolve_references(struct scanner *s) {
        struct derived *d = &s->out.d;
        _cleanup_free_ uint32_t *slots = NULL;
        size_t n_slots = 16;

        if (s->n_definitions > 0 && s->n_references > 0) {
                while (n_slots < 2 * s->n_definitions)
                        n_slots *= 2;
                slots = calloc(n_slots, sizeof *slots);
                if (!slots) {
                        s->out.r = -ENOMEM;
                        return;
                }
                for (size_t i = 0; i < s->n_definitions; i++) {
                        const struct definition *def = &s->definitions[i];
                        size_t k = fnv1a64(s->keys + def->key, def->key_n) & (n_slots - 1);
                        bool is_duplicate = false;
                        for (; slots[k]; k = (k + 1) & (n_slots - 1)) {
                                const struct definition *other = &s->definitions[slots[k] - 1];
                                if (other->key_n == def->key_n &&
                                    memcmp(s->keys + other->key, s->keys + def->key, def->key_n) == 0) {
                                        is_duplicate = true;
                                        break;
                                }
                        }
                        if (!is_duplicate)
                                slots[k] = (uint32_t) i + 1;
                }
        }

        for (size_t r = 0; r < s->n_references && slots; r++) {
                const struct reference *ref = &s->references[r];
                char key[LINK_LABEL_MAX];
                size_t key_n = normalize_label(s->text + ref->label, ref->label_n, key);
                size_t k = fnv1a64(key, key_n) & (n_slots - 1);
                for (; slots[k]; k = (k + 1) & (n_slots - 1)) {
                        const struct definition *def = &s->definitions[slots[k] - 1];
                        if (def->key_n != key_n || memcmp(s->keys + def->key, key, key_n) != 0)
                                continue;
                        struct derived_link *link = &d->links[ref->link];
                        int r2 = link_markdown_parts(s->text + def->dest, def->dest_n, &link->target, &link->fragment);
                        if (r2 < 0) {
                                s->out.r = r2;
                                return;
                        }
                        break;
                }
        }

        size_t m = 0;
        for (size_t i = 0; i < d->n_links; i++)
                if (d->links[i].target)
                        d->links[m++] = d->links[i];
        d->n_links = m;
}

int derive_chunk(const char *content, size_t len, uint32_t start_line, struct derived *ret) {
        struct scanner s = { .text = content, .len = len };
        const char *t = content;
        size_t pos = 0;
        uint32_t line = start_line;

        *ret = (struct derived) { 0 };

        if (start_line == 1) {
                size_t close = front_matter_end(t, len);
                if (close > 0) {
                        tags_from_front_matter(&s.out, t + 4, close - 4);
                        s.in_front_matter = true;
                        scan_block(&s, 4, close, 2);
                        s.in_front_matter = false;
                        size_t eol = line_end(t, close, len);
                        line = 3 + count_newlines(t + 4, close - 4);
                        pos = eol < len ? eol + 1 : len;
                }
        }

        /* The block of text being gathered: [block, block_end) from line
         * block_line; SIZE_MAX when none is open. */
        size_t block = SIZE_MAX, block_end = 0;
        uint32_t block_line = 0;
        char fence = 0;
        size_t fence_n = 0;
        size_t list_content = 0; /* content column of the last list item, 0 outside lists */
        bool prev_blank = true, prev_code = false, is_first = true;

#define FLUSH()                                                          \
        do {                                                             \
                if (block != SIZE_MAX)                                   \
                        scan_block(&s, block, block_end, block_line);    \
                block = SIZE_MAX;                                        \
        } while (0)

        for (; pos < len && s.out.r >= 0; pos++, line++) {
                size_t eol = line_end(t, pos, len);
                struct line_info li = line_info(t, pos, eol);
                size_t first = li.first;
                bool is_blank = li.is_blank;
                size_t content_col;

                if (fence) {
                        if (!is_blank && fence_closes(t, first, eol, fence, fence_n))
                                fence = 0;
                        goto next;
                }
                if (is_blank) {
                        FLUSH();
                        prev_blank = true;
                        goto next;
                }
                /* Fences are recognized at any indentation: in a nested
                 * list they are often indented four spaces or more, and a
                 * fence line inside an indented code block is rare. */
                fence_n = fence_open(t, first, eol);
                if (fence_n > 0) {
                        FLUSH();
                        fence = t[first];
                        goto text_done;
                }
                /* A chunk may start inside a nested list (the chunker cuts
                 * lists at their items): an indented item first is text. */
                content_col = li.indent <= 3 || is_first ? list_item_content(t, first, eol, li.indent) : 0;
                if (li.indent >= 4 && (prev_blank || prev_code) && content_col == 0 &&
                    (list_content == 0 || li.indent >= list_content + 4)) {
                        prev_code = true; /* indented code */
                        prev_blank = false;
                        goto next;
                }
                if (content_col > 0)
                        list_content = content_col;
                else if (prev_blank && li.indent < list_content)
                        list_content = li.indent >= 2 ? li.indent : 0;

                if (li.indent <= 3 && t[first] == '#') {
                        size_t k = first;
                        while (k < eol && t[k] == '#')
                                k++;
                        if (k - first <= 6 && (k == eol || t[k] == ' ' || t[k] == '\t')) {
                                /* An ATX heading is a block of its own. */
                                FLUSH();
                                scan_block(&s, first, eol, line);
                                goto text_done;
                        }
                }
                /* A definition cannot interrupt a paragraph. */
                if (li.indent <= 3 && t[first] == '[' && block == SIZE_MAX) {
                        size_t label, label_n, dest, dest_n;
                        if (link_parse_definition(t + first, eol - first, &label, &label_n, &dest, &dest_n)) {
                                add_definition(&s, first + label, label_n, first + dest, dest_n);
                                goto text_done;
                        }
                }
                if (block == SIZE_MAX) {
                        block = pos;
                        block_line = line;
                }
                block_end = eol;
        text_done:
                prev_blank = prev_code = false;
        next:
                is_first = false;
                pos = eol;
        }
        FLUSH();
#undef FLUSH

        if (s.out.r >= 0)
                resolve_references(&s);

        int r = s.out.r;
        free(s.brackets);
        free(s.references);
        free(s.definitions);
        free(s.keys);
        if (r < 0) {
                derive_out_done(&s.out);
                return r;
        }
        free(s.out.tag_slots);
        *ret = s.out.d;
        return 0;
}
