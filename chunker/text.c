/* The text rules of the storage contract (see text.h): BOM, invalid UTF-8 and
 * line endings. Runs over every byte of every indexed file, so plain ASCII
 * without '\r' is copied in bulk and only the rare bytes are looked at. */
#include "text.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Length of the run at p of bytes that go through as they are: ASCII other
 * than '\r'. Eight bytes at a time: a word needs a closer look when a byte
 * has its high bit set or equals '\r' (the classic "has a zero byte" test,
 * on w ^ 0x0d0d...). */
static size_t plain_run(const unsigned char *p, size_t n) {
        size_t i = 0;

        for (; i + 8 <= n; i += 8) {
                uint64_t w, cr;
                memcpy(&w, p + i, 8);
                cr = w ^ (ONES * '\r');
                if (((w | ((cr - ONES) & ~cr)) & HIGHS) != 0)
                        break;
        }
        while (i < n && p[i] < 0x80 && p[i] != '\r')
                i++;
        return i;
}

int text_normalize(const char *raw, size_t raw_len, char **ret, size_t *ret_len) {
        const unsigned char *in = (const unsigned char *) raw;
        size_t i = 0, o = 0, cap;
        char *out;

        if (raw_len >= 3 && in[0] == 0xEF && in[1] == 0xBB && in[2] == 0xBF)
                i = 3;

        /* Only a replacement can make the output longer than the input it
         * consumed (one byte -> three), so the buffer is checked there and
         * nowhere else: o + (raw_len - i) always fits. */
        cap = raw_len - i + 1;
        out = malloc(cap);
        if (!out)
                return -ENOMEM;

        while (i < raw_len) {
                size_t run = plain_run(in + i, raw_len - i);
                memcpy(out + o, in + i, run);
                i += run;
                o += run;
                if (i >= raw_len)
                        break;

                if (in[i] == '\r') {
                        out[o++] = '\n';
                        i += (i + 1 < raw_len && in[i + 1] == '\n') ? 2 : 1;
                        continue;
                }

                int l = utf8_sequence_length(in + i, raw_len - i);
                if (l > 0) {
                        memcpy(out + o, in + i, (size_t) l);
                        i += (size_t) l;
                        o += (size_t) l;
                        continue;
                }

                i += (size_t) -l;
                size_t need = o + 3 + (raw_len - i) + 1;
                if (GREEDY_REALLOC(out, cap, need, need) < 0) {
                        free(out);
                        return -ENOMEM;
                }
                memcpy(out + o, "\xEF\xBF\xBD", 3);
                o += 3;
        }

        out[o] = '\0';
        *ret = out;
        *ret_len = o;
        return 0;
}

size_t text_count_lines(const char *text, size_t len) {
        const unsigned char *p = (const unsigned char *) text;
        size_t n = 0, i = 0;

        /* Eight bytes at a time: after x = w ^ '\n'...'\n', a byte of t has
         * its high bit clear exactly where x had a zero byte (no carry
         * crosses bytes, unlike the cheaper test in plain_run). The multiply
         * adds the eight 0/1 bytes into the top one, without needing a
         * popcount instruction. */
        for (; i + 8 <= len; i += 8) {
                uint64_t w, x, t;
                memcpy(&w, p + i, 8);
                x = w ^ (ONES * '\n');
                t = ((x & ~HIGHS) + ~HIGHS) | x;
                n += (size_t) ((((~t & HIGHS) >> 7) * ONES) >> 56);
        }
        for (; i < len; i++)
                n += p[i] == '\n';
        if (len > 0 && text[len - 1] != '\n')
                n++;
        return n;
}
