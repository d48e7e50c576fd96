/* UTF-8 decoding and the one character class the derived data needs: which
 * characters separate words (whitespace and punctuation). Tags end at one,
 * and FTS5's unicode61 tokenizer splits at one; the classes are ranges, not
 * Unicode tables, because only the blocks notes actually use matter here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNICODE_REPLACEMENT 0xFFFDu

/* The code point at s[0..len), len > 0, and its length in *ret_n. Text is
 * normalized (valid UTF-8), but a foreign row may not be: a byte that does
 * not start a well-formed sequence decodes as U+FFFD of length 1, so a scan
 * always advances. */
static inline uint32_t utf8_decode(const char *s, size_t len, size_t *ret_n) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t c = p[0];
        size_t n;

        if (c < 0x80) {
                *ret_n = 1;
                return c;
        }
        if (c >= 0xC2 && c <= 0xDF) {
                n = 2;
                c &= 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
                n = 3;
                c &= 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4;
                c &= 0x07;
        } else
                goto invalid;
        if (n > len)
                goto invalid;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        goto invalid;
                c = (c << 6) | (p[i] & 0x3F);
        }
        /* Overlong forms and surrogates: not well-formed. */
        if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
            (c >= 0xD800 && c <= 0xDFFF))
                goto invalid;
        *ret_n = n;
        return c;
invalid:
        *ret_n = 1;
        return UNICODE_REPLACEMENT;
}

/* Where the character that ends just before s[pos] starts (pos > 0). */
static inline size_t utf8_previous(const char *s, size_t begin, size_t pos) {
        size_t i = pos - 1;

        while (i > begin && pos - i < 4 && ((unsigned char) s[i] & 0xC0) == 0x80)
                i--;
        return i;
}

/* Whitespace, or punctuation and symbols that end a word: ASCII
 * punctuation, Latin-1 punctuation, General and Supplemental Punctuation,
 * CJK punctuation (、。「」 and the rest of U+3000..U+303F that is not a
 * letter), and the fullwidth and small forms of ASCII punctuation. Letters,
 * digits, marks, emoji and unassigned code points are not separators. */
bool unicode_is_separator(uint32_t c);
