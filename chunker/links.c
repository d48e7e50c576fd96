/* Links (derive.h): what a [[wiki link]] or a Markdown destination points
 * at. derive.c finds where they are; this file turns their text into the
 * target and fragment stored, and decides which Markdown links are local
 * files. Rules and why: docs/CHUNKER.md, "Derived data". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "derive-internal.h"
#include "macro.h"
#include "unicode.h"

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool is_ascii_punct(char c) {
        return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

static void trim(const char **s, size_t *n) {
        while (*n > 0 && is_blank((*s)[0]))
                (*s)++, (*n)--;
        while (*n > 0 && is_blank((*s)[*n - 1]))
                (*n)--;
}

static char *copy(const char *s, size_t n) {
        char *p = malloc(n + 1);
        if (p) {
                memcpy(p, s, n);
                p[n] = '\0';
        }
        return p;
}

bool link_add_wiki(struct derive_out *o, enum link_kind kind, const char *inner, size_t n, uint32_t line) {
        /* The alias starts at the first '|'; in a table it is written \|. */
        const char *bar = memchr(inner, '|', n);
        size_t target_n = bar ? (size_t) (bar - inner) : n;
        if (target_n > 0 && inner[target_n - 1] == '\\')
                target_n--;

        const char *hash = memchr(inner, '#', target_n);
        const char *target = inner, *fragment = NULL;
        size_t fragment_n = 0;
        if (hash) {
                fragment = hash + 1;
                fragment_n = target_n - (size_t) (fragment - inner);
                target_n = (size_t) (hash - inner);
                trim(&fragment, &fragment_n);
        }
        trim(&target, &target_n);
        if (fragment_n == 0)
                fragment = NULL;
        /* [[#Heading]] is a link to a heading of this note: target "". */
        if ((target_n == 0 && !fragment) || target_n > LINK_TARGET_MAX || fragment_n > LINK_TARGET_MAX)
                return false;

        char *t = copy(target, target_n);
        char *f = fragment ? copy(fragment, fragment_n) : NULL;
        if (!t || (fragment && !f)) {
                free(t);
                free(f);
                o->r = -ENOMEM;
                return false;
        }
        derive_out_link(o, kind, t, f, line);
        return true;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A newly allocated copy of s[0..n) with %XX decoded, or the copy as
 * written when decoding would give a NUL or invalid UTF-8 (%00, %FF): a
 * target is a C string of valid text. NULL on ENOMEM. */
static char *percent_decode(const char *s, size_t n) {
        char *out = malloc(n + 1);
        size_t m = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
                        out[m++] = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        out[m++] = s[i];
        }
        out[m] = '\0';

        for (size_t i = 0; i < m;) {
                size_t k;
                uint32_t c = utf8_decode(out + i, m - i, &k);
                if (c == 0 || (c == UNICODE_REPLACEMENT && k == 1)) {
                        memcpy(out, s, n);
                        out[n] = '\0';
                        break;
                }
                i += k;
        }
        return out;
}

/* A URI scheme (RFC 3986: a letter, then letters, digits, + - .) and ':'.
 * One letter is a Windows drive (C:/notes/a.md), not a scheme. */
static bool has_scheme(const char *s, size_t n) {
        size_t i = 0;

        if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
                return false;
        for (i = 1; i < n && i <= 32; i++) {
                char c = s[i];
                if (c == ':')
                        return i >= 2;
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                      c == '-' || c == '.'))
                        return false;
        }
        return false;
}

int link_markdown_parts(const char *dest, size_t n, char **ret_target, char **ret_fragment) {
        _cleanup_free_ char *unescaped = malloc(n + 1);
        size_t m = 0;

        *ret_target = *ret_fragment = NULL;
        if (!unescaped)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (dest[i] == '\\' && i + 1 < n && is_ascii_punct(dest[i + 1]))
                        i++;
                unescaped[m++] = dest[i];
        }

        /* Local files only: no scheme (http:, mailto:, file:), no
         * //host/path, no pure #anchor. */
        if (m == 0 || unescaped[0] == '#' || (m >= 2 && unescaped[0] == '/' && unescaped[1] == '/') ||
            has_scheme(unescaped, m))
                return 0;

        const char *hash = memchr(unescaped, '#', m);
        size_t path_n = hash ? (size_t) (hash - unescaped) : m;
        size_t fragment_n = hash ? m - path_n - 1 : 0;
        if (path_n > LINK_TARGET_MAX || fragment_n > LINK_TARGET_MAX)
                return 0;

        _cleanup_free_ char *target = percent_decode(unescaped, path_n);
        if (!target)
                return -ENOMEM;
        if (fragment_n > 0) {
                *ret_fragment = percent_decode(hash + 1, fragment_n);
                if (!*ret_fragment)
                        return -ENOMEM;
        }
        *ret_target = TAKE_PTR(target);
        return 1;
}

bool link_parse_definition(const char *s, size_t n, size_t *ret_label, size_t *ret_label_n, size_t *ret_dest,
                           size_t *ret_dest_n) {
        size_t i = 1;

        /* [label]: a label has no unescaped brackets, is not blank, and is
         * not a footnote ([^1]: is footnote text, not a destination). */
        if (n < 4 || s[0] != '[' || s[1] == '^')
                return false;
        for (; i < n && s[i] != ']'; i++) {
                if (s[i] == '[' || i > LINK_LABEL_MAX)
                        return false;
                if (s[i] == '\\' && i + 1 < n)
                        i++;
        }
        if (i >= n || i + 1 >= n || s[i + 1] != ':')
                return false;
        size_t label = 1, label_n = i - 1;
        while (label_n > 0 && is_blank(s[label]))
                label++, label_n--;
        if (label_n == 0)
                return false;

        i += 2;
        while (i < n && is_blank(s[i]))
                i++;
        size_t dest, dest_n;
        if (i < n && s[i] == '<') {
                dest = ++i;
                while (i < n && s[i] != '>' && s[i] != '<') {
                        if (s[i] == '\\' && i + 1 < n)
                                i++;
                        i++;
                }
                if (i >= n || s[i] != '>')
                        return false;
                dest_n = i - dest;
                i++;
        } else {
                dest = i;
                while (i < n && (unsigned char) s[i] > ' ')
                        i++;
                dest_n = i - dest;
                if (dest_n == 0)
                        return false;
        }
        /* Then only a title, or nothing. */
        if (i < n && !is_blank(s[i]))
                return false;
        while (i < n && is_blank(s[i]))
                i++;
        if (i < n && s[i] != '"' && s[i] != '\'' && s[i] != '(')
                return false;

        *ret_label = label;
        *ret_label_n = label_n;
        *ret_dest = dest;
        *ret_dest_n = dest_n;
        return true;
}
