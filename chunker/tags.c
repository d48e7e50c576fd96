/* Tags (derive.h): inline #tags as Obsidian reads them, and the `tags:` key
 * of YAML front matter. The rules and why are in docs/CHUNKER.md, "Derived
 * data". Front matter is read line by line for the few shapes people write
 * tags in, not with a YAML parser: a note's YAML is often not valid YAML
 * (`tags: #a #b`), and what the user meant is what counts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "derive-internal.h"
#include "macro.h"
#include "unicode.h"

static bool is_ascii_alnum(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* '\n' too: a flow sequence may go on over lines. */
static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\n';
}

bool tag_may_start(const char *text, size_t begin, size_t pos) {
        if (pos == begin)
                return true;
        unsigned char c = (unsigned char) text[pos - 1];
        if (c < 0x80) {
                if (c <= ' ')
                        return true;
                /* Not after a letter or digit (foo#bar, page.html#x is
                 * caught by the letter), nor after # (## heading), & (&#39;),
                 * / (a/#b, URLs), \ (escape), ` ) ] (right after code or a
                 * link, where the '#' is glued to something). */
                return !is_ascii_alnum(c) && !strchr("#&/\\`)]_-", (char) c);
        }
        size_t n;
        size_t prev = utf8_previous(text, begin, pos);
        uint32_t cp = utf8_decode(text + prev, pos - prev, &n);
        return unicode_is_separator(cp);
}

size_t tag_scan(const char *s, size_t n, bool *ret_is_tag) {
        bool has_word = false; /* something else than digits, '-' and '/' */
        size_t i = 0;

        while (i < n) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x80) {
                        if (c >= '0' && c <= '9')
                                ;
                        else if (c == '-' || c == '/')
                                ;
                        else if (is_ascii_alnum(c) || c == '_')
                                has_word = true;
                        else
                                break;
                        i++;
                        continue;
                }
                size_t k;
                if (unicode_is_separator(utf8_decode(s + i, n - i, &k)))
                        break;
                has_word = true;
                i += k;
        }
        *ret_is_tag = has_word && i <= TAG_NAME_MAX;
        return i;
}

/* One value of the tags key (a list item, a flow item or the whole plain
 * value): quotes removed, then every word of it, split at whitespace and
 * commas, with its leading '#'s dropped, that is a tag name in full. */
static void add_value(struct derive_out *o, const char *s, size_t n) {
        _cleanup_free_ char *unquoted = NULL;

        while (n > 0 && is_blank(s[0]))
                s++, n--;
        while (n > 0 && is_blank(s[n - 1]))
                n--;
        if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
                /* '' is a quote in single quotes, \x an escape in double
                 * quotes; neither can be part of a tag, so dropping the
                 * escape character is enough. */
                unquoted = malloc(n);
                if (!unquoted) {
                        o->r = -ENOMEM;
                        return;
                }
                size_t m = 0;
                for (size_t i = 1; i + 1 < n; i++) {
                        if (s[0] == '\'' && s[i] == '\'' && s[i + 1] == '\'')
                                i++;
                        else if (s[0] == '"' && s[i] == '\\' && i + 2 < n)
                                i++;
                        unquoted[m++] = s[i];
                }
                s = unquoted;
                n = m;
        } else {
                /* A comment: '#' after whitespace and before whitespace or
                 * the end. "#a" is not one here, unlike in YAML: it is what
                 * people write for a tag. */
                for (size_t i = 0; i < n; i++)
                        if (s[i] == '#' && (i == 0 || is_blank(s[i - 1])) && (i + 1 == n || is_blank(s[i + 1]))) {
                                n = i;
                                break;
                        }
        }

        size_t i = 0;
        while (i < n) {
                while (i < n && (is_blank(s[i]) || s[i] == ','))
                        i++;
                size_t word = i;
                while (i < n && !is_blank(s[i]) && s[i] != ',')
                        i++;
                size_t start = word;
                while (start < i && s[start] == '#')
                        start++;
                bool is_tag;
                if (start < i && tag_scan(s + start, i - start, &is_tag) == i - start && is_tag)
                        derive_out_tag(o, s + start, i - start, true);
        }
}

/* A flow sequence from its '[' in s[0..n): items split at top-level
 * commas, up to the closing ']' (which may be lines later) or the end. */
static size_t add_flow_sequence(struct derive_out *o, const char *s, size_t n) {
        size_t i = 1, item = 1;
        char quote = 0;

        for (; i < n; i++) {
                char c = s[i];
                if (quote) {
                        if (c == quote)
                                quote = 0;
                } else if (c == '"' || c == '\'')
                        quote = c;
                else if (c == ',' || c == ']') {
                        add_value(o, s + item, i - item);
                        item = i + 1;
                        if (c == ']')
                                return i + 1;
                }
        }
        add_value(o, s + item, n - item);
        return n;
}

/* Whether line s[0..n) is the top-level key tags: or tag: (any case);
 * *ret_value is where its value starts. */
static bool is_tags_key(const char *s, size_t n, size_t *ret_value) {
        size_t k;

        if (n >= 4 && strncasecmp(s, "tags", 4) == 0)
                k = 4;
        else if (n >= 3 && strncasecmp(s, "tag", 3) == 0)
                k = 3;
        else
                return false;
        while (k < n && is_blank(s[k]))
                k++;
        if (k >= n || s[k] != ':' || (k + 1 < n && !is_blank(s[k + 1])))
                return false;
        *ret_value = k + 1;
        return true;
}

void tags_from_front_matter(struct derive_out *o, const char *yaml, size_t n) {
        size_t pos = 0;

        while (pos < n) {
                const char *nl = memchr(yaml + pos, '\n', n - pos);
                size_t eol = nl ? (size_t) (nl - yaml) : n;
                size_t value;

                if (!is_tags_key(yaml + pos, eol - pos, &value)) {
                        pos = eol + 1;
                        continue;
                }
                value += pos;
                while (value < eol && is_blank(yaml[value]))
                        value++;

                if (value < eol && yaml[value] == '[') {
                        pos = value + add_flow_sequence(o, yaml + value, n - value);
                        continue;
                }
                if (value < eol && !(yaml[value] == '#' && (value + 1 == eol || is_blank(yaml[value + 1])))) {
                        add_value(o, yaml + value, eol - value);
                        pos = eol + 1;
                        continue;
                }

                /* No value: a block sequence may follow, its "- item" lines
                 * indented or not; blank and comment lines between items. */
                pos = eol + 1;
                while (pos < n) {
                        nl = memchr(yaml + pos, '\n', n - pos);
                        eol = nl ? (size_t) (nl - yaml) : n;
                        size_t i = pos;
                        while (i < eol && is_blank(yaml[i]))
                                i++;
                        if (i == eol || (yaml[i] == '#' && (i + 1 == eol || is_blank(yaml[i + 1])))) {
                                pos = eol + 1;
                                continue;
                        }
                        if (yaml[i] != '-' || (i + 1 < eol && !is_blank(yaml[i + 1])))
                                break;
                        add_value(o, yaml + i + 1, eol - i - 1);
                        pos = eol + 1;
                }
        }
}
