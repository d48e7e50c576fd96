/* Fuzz target: any bytes -> document_parse(), the path every note takes
 * (raw hash, text normalization, cmark, the split, a hash per chunk). Not
 * only "no crash": every result is checked against the chunker's contract
 * (docs/CHUNKER.md), so a wrong line range or a broken JSON hierarchy is a
 * finding too. The normalized text is compared with a byte-at-a-time
 * reference of the text rules, which shares nothing with text.c's
 * word-at-a-time fast paths. Built as a libFuzzer binary (-Dfuzz=true) and,
 * in every build, into the replay driver that runs the corpus. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "fuzz.h"
#include "hash.h"
#include "helpers.h"
#include "macro.h"
#include "text.h"

/* The reference for text_normalize(): drop one leading BOM, '\r\n' and a
 * lone '\r' to '\n', and each maximal ill-formed UTF-8 subsequence to one
 * U+FFFD (The Unicode Standard, Table 3-7), one byte at a time. */
static size_t reference_normalize(const uint8_t *in, size_t len, char *out) {
        size_t i = 0, o = 0;

        if (len >= 3 && in[0] == 0xEF && in[1] == 0xBB && in[2] == 0xBF)
                i = 3;
        while (i < len) {
                uint8_t c = in[i];
                if (c == '\r') {
                        out[o++] = '\n';
                        i += i + 1 < len && in[i + 1] == '\n' ? 2 : 1;
                        continue;
                }
                if (c < 0x80) {
                        out[o++] = (char) c;
                        i++;
                        continue;
                }

                /* The well-formed sequences, by lead byte: how many bytes,
                 * and the range of the second one (the others are 80..BF). */
                size_t need = 0;
                uint8_t lo = 0x80, hi = 0xBF;
                if (c >= 0xC2 && c <= 0xDF)
                        need = 2;
                else if (c >= 0xE0 && c <= 0xEF) {
                        need = 3;
                        lo = c == 0xE0 ? 0xA0 : 0x80;
                        hi = c == 0xED ? 0x9F : 0xBF;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        need = 4;
                        lo = c == 0xF0 ? 0x90 : 0x80;
                        hi = c == 0xF4 ? 0x8F : 0xBF;
                }

                size_t got = 1;
                while (need > 0 && got < need && i + got < len) {
                        uint8_t b = in[i + got];
                        bool ok = got == 1 ? b >= lo && b <= hi : b >= 0x80 && b <= 0xBF;
                        if (!ok)
                                break;
                        got++;
                }
                if (need > 0 && got == need)
                        memcpy(out + o, in + i, need);
                else
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                o += need > 0 && got == need ? need : 3;
                i += got;
        }
        return o;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF,
 * decoded from scratch (a check the reference above does not share). */
static bool is_valid_utf8(const char *s, size_t len) {
        const uint8_t *p = (const uint8_t *) s;

        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n;

                if (p[i] < 0x80) {
                        i++;
                        continue;
                } else if ((p[i] & 0xE0) == 0xC0) {
                        n = 2;
                        cp = p[i] & 0x1F;
                } else if ((p[i] & 0xF0) == 0xE0) {
                        n = 3;
                        cp = p[i] & 0x0F;
                } else if ((p[i] & 0xF8) == 0xF0) {
                        n = 4;
                        cp = p[i] & 0x07;
                } else
                        return false;
                if (i + n > len)
                        return false;
                for (size_t k = 1; k < n; k++) {
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3F);
                }
                static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
                if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += n;
        }
        return true;
}

static bool is_hash_hex(const char *h) {
        for (size_t i = 0; i < HASH_HEX_LEN - 1; i++)
                if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
                        return false;
        return h[HASH_HEX_LEN - 1] == '\0';
}

static bool is_heading_blank(char c) {
        return c == ' ' || c == '\t' || c == '\n';
}

/* The headings of a heading_hierarchy that check_chunk_invariants() has
 * found to be a JSON array of strings: at most 6 (one per level), each cut
 * to at most 256 bytes (docs/CHUNKER.md) and trimmed. An escape (\n,
 * \u001f, ...) stands for one byte: json_append_string() escapes only
 * ASCII. */
static void check_hierarchy(const char *json, const char *what, size_t chunk) {
        size_t n_headings = 0;
        const char *p = json + 1; /* at the '"' of each heading */

        while (*p == '"') {
                size_t len = 0;
                char first = 0, last = 0;

                p++;
                while (*p != '"') {
                        char c = *p++;
                        if (c == '\\') {
                                c = *p++;
                                if (c == 'n')
                                        c = '\n';
                                else if (c == 't')
                                        c = '\t';
                                else if (c == 'u') {
                                        c = (char) strtol((char[]) { p[0], p[1], p[2], p[3], 0 }, NULL, 16);
                                        p += 4;
                                }
                        }
                        if (len++ == 0)
                                first = c;
                        last = c;
                }
                n_headings++;
                FUZZ_CHECK(len <= 256, "%s: chunk %zu: a heading of %zu bytes in %s", what, chunk, len, json);
                FUZZ_CHECK(len == 0 || (!is_heading_blank(first) && !is_heading_blank(last)),
                           "%s: chunk %zu: a heading not trimmed in %s", what, chunk, json);
                p++; /* past the closing '"', to ',' or ']' */
                if (*p == ',')
                        p++;
        }
        /* Six heading levels: a deeper path is a stack gone wrong. */
        FUZZ_CHECK(n_headings <= 6, "%s: chunk %zu: %zu headings in %s", what, chunk, n_headings, json);
}

/* document_parse() of the input under opts, and every property of its
 * result that does not depend on the options. */
static void check_document(const uint8_t *data, size_t size, const struct document_options *opts,
                           const char *what) {
        struct document doc;
        char hash[HASH_HEX_LEN];
        int r;

        r = document_parse((const char *) data, size, opts, &doc);
        hash_hex(data, size, hash);
        if (memchr(data, '\0', size)) {
                FUZZ_CHECK(r == -EMEDIUMTYPE, "%s: input with a NUL byte: document_parse() = %d, not -EMEDIUMTYPE",
                           what, r);
                FUZZ_CHECK(!doc.text && doc.chunks.n_items == 0, "%s: refused document not left zeroed", what);
                return;
        }
        FUZZ_CHECK(r == 0, "%s: document_parse() = %d (%s)", what, r, strerror(-r));

        FUZZ_CHECK(doc.size == (int64_t) size, "%s: size %lld, input %zu bytes", what, (long long) doc.size, size);
        FUZZ_CHECK(strcmp(doc.file_hash, hash) == 0 && is_hash_hex(doc.file_hash),
                   "%s: file_hash %s, raw bytes hash to %s", what, doc.file_hash, hash);

        /* The text rules (storage contract): the reference's output, so
         * valid UTF-8, no '\r', and a BOM only where the input had two. */
        _cleanup_free_ char *expected = malloc(3 * size + 1);
        FUZZ_CHECK(expected, "out of memory");
        size_t expected_len = reference_normalize(data, size, expected);
        FUZZ_CHECK(doc.text && doc.text[doc.text_len] == '\0', "%s: text not NUL-terminated", what);
        FUZZ_CHECK(doc.text_len == expected_len && memcmp(doc.text, expected, expected_len) == 0,
                   "%s: normalized text (%zu bytes) differs from the reference (%zu bytes)", what, doc.text_len,
                   expected_len);
        FUZZ_CHECK(is_valid_utf8(doc.text, doc.text_len), "%s: normalized text is not valid UTF-8", what);
        FUZZ_CHECK(!memchr(doc.text, '\r', doc.text_len), "%s: normalized text holds a CR", what);
        bool had_two_boms = size >= 6 && memcmp(data, "\xEF\xBB\xBF\xEF\xBB\xBF", 6) == 0;
        FUZZ_CHECK(had_two_boms == (doc.text_len >= 3 && memcmp(doc.text, "\xEF\xBB\xBF", 3) == 0),
                   "%s: normalized text starts with a BOM the input did not have twice", what);

        size_t n_lines = 0;
        for (size_t i = 0; i < doc.text_len; i++)
                n_lines += doc.text[i] == '\n';
        if (doc.text_len > 0 && doc.text[doc.text_len - 1] != '\n')
                n_lines++;
        FUZZ_CHECK(text_count_lines(doc.text, doc.text_len) == n_lines, "%s: text_count_lines() = %zu, not %zu",
                   what, text_count_lines(doc.text, doc.text_len), n_lines);

        /* Line ranges, order, disjointness, content = the text slice,
         * content_hash, every non-blank line in a chunk, JSON arrays: the
         * checker the chunker's unit tests use. */
        int n_bad = check_chunk_invariants(&doc, what, stderr);
        FUZZ_CHECK(n_bad == 0, "%s: %d chunk invariants broken", what, n_bad);

        for (size_t i = 0; i < doc.chunks.n_items; i++) {
                const struct chunk *c = &doc.chunks.items[i];
                FUZZ_CHECK(is_hash_hex(c->content_hash), "%s: chunk %zu: content_hash is not 32 lowercase hex",
                           what, i + 1);
                FUZZ_CHECK(c->content >= doc.text && c->content + c->content_len <= doc.text + doc.text_len,
                           "%s: chunk %zu: content outside the text", what, i + 1);
                FUZZ_CHECK(is_valid_utf8(c->heading_hierarchy, strlen(c->heading_hierarchy)),
                           "%s: chunk %zu: heading_hierarchy is not valid UTF-8: %s", what, i + 1,
                           c->heading_hierarchy);
                check_hierarchy(c->heading_hierarchy, what, i + 1);
        }
        document_done(&doc);
        FUZZ_CHECK(!doc.text && !doc.chunks.items && doc.chunks.n_items == 0,
                   "%s: document_done() left the document set", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The defaults every writer uses. */
        check_document(data, size, NULL, "defaults");

        /* Small sizes, steered by the last two bytes (which stay part of
         * the document): with max_bytes down to 1, a short input goes
         * through every path that splits oversized sections, lists, block
         * quotes and paragraphs, which under the defaults needs kilobytes. */
        if (size >= 2) {
                struct document_options opts = {
                        .chunker = {
                                .min_bytes = 1 + (size_t) data[size - 2] * 4,
                                .max_bytes = 1 + (size_t) data[size - 1] * 8,
                        },
                };
                check_document(data, size, &opts, "small sizes");
        }
        return 0;
}
