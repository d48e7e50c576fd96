/* CJK text for the stock unicode61 tokenizer (derive.h). unicode61 makes one
 * token of a whole run of ideographs or kana, so a word inside a sentence
 * could never match; indexing overlapping bigrams instead makes every
 * substring of two or more characters a phrase of bigrams, and the final
 * unigram lets a one-character query be a prefix query. Every code point
 * cjk_is_cjk() accepts is a token character for unicode61, so a bigram is
 * exactly one token (tests/unit/chunker/test-cjk.c checks all of them). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "derive.h"
#include "unicode.h"

bool cjk_is_cjk(uint32_t c) {
        if (c < 0x1100)
                return false;
        if (c <= 0x11FF)
                return true; /* Hangul Jamo */
        if (c < 0x3005)
                return false;
        if (c <= 0x303C)
                /* The letters among CJK Symbols and Punctuation: 々〆〇, the
                 * Hangzhou numerals, the kana repeat marks, 〸〹〺〻〼. */
                return c <= 0x3007 || (c >= 0x3021 && c <= 0x3029) || (c >= 0x3031 && c <= 0x3035) ||
                       c >= 0x3038;
        if (c < 0x3041)
                return false;
        if (c <= 0x30FF)
                /* Hiragana and Katakana, without the combining and spacing
                 * voicing marks (unicode61 separators) and ゠ ・. */
                return c <= 0x3096 || (c >= 0x309D && c != 0x30A0 && c != 0x30FB);
        if (c >= 0x3131 && c <= 0x318E)
                return true; /* Hangul Compatibility Jamo */
        if (c >= 0x31F0 && c <= 0x31FF)
                return true; /* Katakana Phonetic Extensions */
        if (c >= 0x3400 && c <= 0x4DBF)
                return true; /* CJK Extension A */
        if (c >= 0x4E00 && c <= 0x9FFF)
                return true; /* CJK Unified Ideographs */
        if (c >= 0xA960 && c <= 0xA97C)
                return true; /* Hangul Jamo Extended-A */
        if (c >= 0xAC00 && c <= 0xD7A3)
                return true; /* Hangul Syllables */
        if (c >= 0xD7B0 && c <= 0xD7FB)
                return true; /* Hangul Jamo Extended-B */
        if (c >= 0xF900 && c <= 0xFAFF)
                return true; /* CJK Compatibility Ideographs */
        if (c >= 0xFF66 && c <= 0xFFDC)
                return true; /* halfwidth Katakana and Hangul */
        if (c >= 0x1AFF0 && c <= 0x1B16F)
                return true; /* Kana Extended-B, Supplement, Extended-A, Small Kana */
        /* Planes 2 and 3 hold ideographs only: Extensions B to I and the
         * Compatibility Ideographs Supplement. */
        return c >= 0x20000 && c <= 0x3FFFD;
}

/* The first CJK character at or after s[0], or len when there is none.
 * Every CJK code point is U+1100 or above: three or four bytes in UTF-8,
 * so ASCII (eight bytes at a time) and two-byte characters are skipped
 * without decoding. */
static size_t find_cjk(const char *s, size_t len) {
        size_t i = 0;

        while (i < len) {
                unsigned char b = (unsigned char) s[i];
                size_t n;

                if (b < 0x80) {
                        uint64_t word;
                        i++;
                        while (i + 8 <= len) {
                                memcpy(&word, s + i, 8);
                                if (word & UINT64_C(0x8080808080808080))
                                        break;
                                i += 8;
                        }
                        continue;
                }
                if (b < 0xE1) {
                        i++;
                        continue;
                }
                if (cjk_is_cjk(utf8_decode(s + i, len - i, &n)))
                        return i;
                i += n;
        }
        return len;
}

bool cjk_text_has_cjk(const char *text, size_t len) {
        return find_cjk(text, len) < len;
}

int cjk_index_text(const char *text, size_t len, char **ret) {
        size_t first = find_cjk(text, len);
        char *out, *o;

        *ret = NULL;
        /* A run of n characters of k bytes becomes (n-1)(2k+1) + k + 2 bytes,
         * at most 3nk for k >= 3: the output is at most three times the input. */
        if (len > (SIZE_MAX - 1) / 3)
                return -ENOMEM;
        out = malloc(first == len ? len + 1 : 3 * len + 1);
        if (!out)
                return -ENOMEM;
        memcpy(out, text, first);
        o = out + first;

        size_t i = first;
        const char *prev = NULL; /* the previous character of the current run */
        size_t prev_n = 0;
        while (i < len) {
                unsigned char b = (unsigned char) text[i];
                size_t n = 1;
                bool is_cjk = b >= 0xE1 && cjk_is_cjk(utf8_decode(text + i, len - i, &n));

                if (is_cjk) {
                        if (!prev)
                                *o++ = ' ';
                        else {
                                memcpy(o, prev, prev_n);
                                o += prev_n;
                                memcpy(o, text + i, n);
                                o += n;
                                *o++ = ' ';
                        }
                        prev = text + i;
                        prev_n = n;
                } else {
                        if (prev) {
                                memcpy(o, prev, prev_n);
                                o += prev_n;
                                *o++ = ' ';
                                prev = NULL;
                        }
                        memcpy(o, text + i, n);
                        o += n;
                }
                i += n;
        }
        if (prev) {
                memcpy(o, prev, prev_n);
                o += prev_n;
                *o++ = ' ';
        }
        *o = '\0';
        *ret = out;
        return 0;
}
