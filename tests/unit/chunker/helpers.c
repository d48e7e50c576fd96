/* See helpers.h. The invariant checker recomputes lines from the text on its
 * own, so it does not share a bug with markdown.c's line table. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "text.h"

int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 4096;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (cap - len < 2) {
                        char *p = realloc(buf, cap * 2);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int case_options(const char *md_path, struct document_options *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t n = strlen(md_path), len;
        int r;

        *ret = (struct document_options) {
                .chunker = { CHUNKER_MIN_BYTES_DEFAULT, CHUNKER_MAX_BYTES_DEFAULT },
        };
        if (n < 3 || strcmp(md_path + n - 3, ".md") != 0)
                return 0;
        path = malloc(n + 3);
        if (!path)
                return -ENOMEM;
        memcpy(path, md_path, n - 3);
        strcpy(path + n - 3, ".opts");

        r = read_file(path, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                unsigned long v;
                if (sscanf(line, "min %lu", &v) == 1)
                        ret->chunker.min_bytes = v;
                else if (sscanf(line, "max %lu", &v) == 1)
                        ret->chunker.max_bytes = v;
                else
                        return -EINVAL;
        }
        return 0;
}

void dump_document(FILE *f, const struct document *doc, const struct document_options *opts) {
        fprintf(f, "options: min %zu, max %zu\n", opts->chunker.min_bytes, opts->chunker.max_bytes);
        fprintf(f, "file: %lld bytes, hash %s; text: %zu bytes, %zu lines; %zu chunks\n",
                (long long) doc->size, doc->file_hash, doc->text_len,
                text_count_lines(doc->text, doc->text_len), doc->chunks.n_items);

        for (size_t i = 0; i < doc->chunks.n_items; i++) {
                const struct chunk *c = &doc->chunks.items[i];

                fprintf(f, "\n@@ chunk %zu: lines %u-%u, %zu bytes, hash %s\n", i + 1, c->start_line,
                        c->end_line, c->content_len, c->content_hash);
                fprintf(f, "@@ hierarchy %s\n", c->heading_hierarchy);
                for (const char *p = c->content, *end = c->content + c->content_len; p <= end;) {
                        const char *nl = memchr(p, '\n', (size_t) (end - p));
                        const char *e = nl ? nl : end;
                        if (e == p)
                                fputs("|\n", f);
                        else
                                fprintf(f, "| %.*s\n", (int) (e - p), p);
                        p = e + 1;
                }
        }
}

/* Skip one JSON string literal at *p; false if it is not a well-formed one. */
static bool json_skip_string(const char **p) {
        const char *s = *p;

        if (*s++ != '"')
                return false;
        for (;;) {
                unsigned char c = (unsigned char) *s++;
                if (c == '"')
                        break;
                if (c < 0x20)
                        return false;
                if (c == '\\') {
                        c = (unsigned char) *s++;
                        if (c == 'u') {
                                for (int i = 0; i < 4; i++, s++)
                                        if (!*s || !strchr("0123456789abcdefABCDEF", *s))
                                                return false;
                        } else if (!c || !strchr("\"\\/bfnrt", c))
                                return false;
                }
        }
        *p = s;
        return true;
}

static bool is_json_string_array(const char *s) {
        if (*s++ != '[')
                return false;
        if (*s == ']')
                return s[1] == '\0';
        for (;;) {
                if (!json_skip_string(&s))
                        return false;
                if (*s == ']')
                        return s[1] == '\0';
                if (*s++ != ',')
                        return false;
        }
}

static bool is_blank(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] != ' ' && p[i] != '\t')
                        return false;
        return true;
}

#define VIOLATION(...)                             \
        do {                                       \
                fprintf(f, "%s: ", what);          \
                fprintf(f, __VA_ARGS__);           \
                fputc('\n', f);                    \
                n_bad++;                           \
        } while (0)

int check_chunk_invariants(const struct document *doc, const char *what, FILE *f) {
        const char *text = doc->text;
        size_t len = doc->text_len;
        int n_bad = 0;

        /* Walk the text line by line alongside the chunks. */
        size_t n_chunks = doc->chunks.n_items, ci = 0;
        size_t line = 0, expected_lines = text_count_lines(text, len);
        const char *chunk_begin = NULL;
        uint32_t prev_end = 0;

        for (size_t i = 0; i < n_chunks; i++) {
                const struct chunk *c = &doc->chunks.items[i];
                char hash[HASH_HEX_LEN];

                if (c->start_line < 1 || c->start_line > c->end_line || c->end_line > expected_lines)
                        VIOLATION("chunk %zu: bad range %u-%u of %zu lines", i + 1, c->start_line,
                                  c->end_line, expected_lines);
                if (c->start_line <= prev_end)
                        VIOLATION("chunk %zu: starts at %u, before the end %u of the one before",
                                  i + 1, c->start_line, prev_end);
                prev_end = c->end_line;
                hash_hex(c->content, c->content_len, hash);
                if (strcmp(hash, c->content_hash) != 0)
                        VIOLATION("chunk %zu: content_hash %s, content hashes to %s", i + 1,
                                  c->content_hash, hash);
                if (!c->heading_hierarchy || !is_json_string_array(c->heading_hierarchy))
                        VIOLATION("chunk %zu: heading_hierarchy %s is not a JSON array of strings",
                                  i + 1, c->heading_hierarchy ? c->heading_hierarchy : "(null)");
        }
        if (n_bad > 0)
                return n_bad;

        for (const char *p = text, *end = text + len; p < end; line++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *e = nl ? nl : end;
                size_t l = line + 1;
                bool blank = is_blank(p, (size_t) (e - p));
                const struct chunk *c = ci < n_chunks ? &doc->chunks.items[ci] : NULL;

                if (c && l == c->start_line) {
                        chunk_begin = p;
                        if (blank)
                                VIOLATION("chunk %zu starts on blank line %zu", ci + 1, l);
                }
                if (c && l >= c->start_line && l <= c->end_line) {
                        if (l == c->end_line) {
                                size_t n = (size_t) (e - chunk_begin);
                                if (blank)
                                        VIOLATION("chunk %zu ends on blank line %zu", ci + 1, l);
                                if (c->content_len != n || memcmp(c->content, chunk_begin, n) != 0)
                                        VIOLATION("chunk %zu: content is not lines %u-%u", ci + 1,
                                                  c->start_line, c->end_line);
                                ci++;
                        }
                } else if (!blank)
                        VIOLATION("line %zu is in no chunk: %.*s", l, (int) (e - p), p);
                p = e + 1;
        }
        if (line != expected_lines)
                VIOLATION("walked %zu lines, text_count_lines says %zu", line, expected_lines);
        return n_bad;
}

void dump_derived(FILE *f, const struct derived *d) {
        for (size_t i = 0; i < d->n_tags; i++)
                fprintf(f, "%s %s\n", d->tags[i].is_front_matter ? "fm" : "tag", d->tags[i].name);
        for (size_t i = 0; i < d->n_links; i++) {
                const struct derived_link *l = &d->links[i];
                const char *kind = l->kind == LINK_WIKI ? "wiki" : l->kind == LINK_EMBED ? "embed" : "md";
                fprintf(f, "%s %u %s%s%s\n", kind, l->line, l->target, l->fragment ? "#" : "",
                        l->fragment ? l->fragment : "");
        }
}
