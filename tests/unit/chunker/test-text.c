/* text_normalize and text_count_lines against the storage contract's text
 * rules. Every expected byte string here was computed with Python's
 * bytes.decode('utf-8', 'replace'), the reference the contract names;
 * utf8-vectors.txt (argv[1]) holds 2000 more from gen-utf8-vectors.py. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "helpers.h"
#include "macro.h"
#include "text.h"

static const char *vectors_path;

#define FFFD "\xEF\xBF\xBD"

/* Normalize a literal (sizeof - 1 keeps embedded bytes) and compare. */
#define CHECK_NORMALIZES(raw, expected)                                                     \
        do {                                                                                \
                _cleanup_free_ char *_out = NULL;                                           \
                size_t _len = 0;                                                            \
                CHECK_INT_EQ(text_normalize(raw, sizeof(raw) - 1, &_out, &_len), 0);        \
                if (_out) {                                                                 \
                        CHECK_MEM_EQ(_out, _len, expected, sizeof(expected) - 1);           \
                        CHECK(_out[_len] == '\0');                                          \
                }                                                                           \
        } while (0)

static void test_empty_input_gives_empty_string(void) {
        CHECK_NORMALIZES("", "");
}

static void test_ascii_passes_unchanged(void) {
        CHECK_NORMALIZES("hello", "hello");
        CHECK_NORMALIZES("# Title\n\nA paragraph that is longer than eight bytes.\n",
                         "# Title\n\nA paragraph that is longer than eight bytes.\n");
}

static void test_valid_multibyte_passes_unchanged(void) {
        CHECK_NORMALIZES("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
                         "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF");
        /* The edges of Table 3-7: U+0800, U+D7FF, U+E000, U+10000. */
        CHECK_NORMALIZES("\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80",
                         "\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80");
}

static void test_leading_bom_is_dropped(void) {
        CHECK_NORMALIZES("\xEF\xBB\xBF# Title\n", "# Title\n");
        CHECK_NORMALIZES("\xEF\xBB\xBF", "");
}

static void test_only_the_first_bom_is_dropped(void) {
        CHECK_NORMALIZES("\xEF\xBB\xBF\xEF\xBB\xBFx", "\xEF\xBB\xBFx");
        CHECK_NORMALIZES("x\xEF\xBB\xBF", "x\xEF\xBB\xBF");
}

static void test_truncated_bom_is_invalid_utf8(void) {
        /* python3: b'\xef\xbb'.decode('utf-8','replace') == '\ufffd' */
        CHECK_NORMALIZES("\xEF\xBB", FFFD);
        CHECK_NORMALIZES("\xEF\xBBx", FFFD "x");
}

static void test_crlf_becomes_lf(void) {
        CHECK_NORMALIZES("a\r\nb\r\n", "a\nb\n");
        CHECK_NORMALIZES("a long line of ascii\r\nand another\r\n", "a long line of ascii\nand another\n");
}

static void test_lone_cr_becomes_lf(void) {
        CHECK_NORMALIZES("a\rb\r", "a\nb\n");
        CHECK_NORMALIZES("\r", "\n");
        CHECK_NORMALIZES("\r\r\n", "\n\n");
        CHECK_NORMALIZES("\n\r", "\n\n");
        CHECK_NORMALIZES("\r\r\r", "\n\n\n");
}

static void test_overlong_lead_bytes_are_one_fffd_each(void) {
        /* C0 and C1 can only start overlong forms: each byte on its own. */
        CHECK_NORMALIZES("\xC0\x80", FFFD FFFD);
        CHECK_NORMALIZES("\xC1\xBF", FFFD FFFD);
        /* E0 80..9F and F0 80..8F are overlong: the lead ends the subpart. */
        CHECK_NORMALIZES("\xE0\x80\x80", FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xE0\x9F\xBF", FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);
}

static void test_surrogates_are_three_fffd(void) {
        /* ED A0 80 would be U+D800: ED allows only 80..9F next. */
        CHECK_NORMALIZES("\xED\xA0\x80", FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xED\xBF\xBF", FFFD FFFD FFFD);
        CHECK_NORMALIZES("a\xED\xA0\x80\xED\xB0\x80z", "a" FFFD FFFD FFFD FFFD FFFD FFFD "z");
}

static void test_above_u10ffff_is_invalid(void) {
        CHECK_NORMALIZES("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xFF\xFE", FFFD FFFD);
}

static void test_truncated_sequence_is_one_fffd(void) {
        CHECK_NORMALIZES("\xE2\x82", FFFD);
        CHECK_NORMALIZES("\xE2\x82x", FFFD "x");
        CHECK_NORMALIZES("\xF0\x9F\x98", FFFD);
        CHECK_NORMALIZES("\xF0\x9F\x98x", FFFD "x");
        CHECK_NORMALIZES("\xF0\x9F", FFFD);
        CHECK_NORMALIZES("\xC3", FFFD);
        CHECK_NORMALIZES("\xE2\x82\r\n", FFFD "\n");
        /* A new lead byte ends the subpart and starts over. */
        CHECK_NORMALIZES("\xE2\x82\xE2\x82\xAC", FFFD "\xE2\x82\xAC");
}

static void test_lone_continuation_bytes_are_one_fffd_each(void) {
        CHECK_NORMALIZES("\x80", FFFD);
        CHECK_NORMALIZES("\x80\x80\xBF", FFFD FFFD FFFD);
        CHECK_NORMALIZES("\xC3\xA9\xA9", "\xC3\xA9" FFFD);
}

static void test_invalid_bytes_at_every_alignment(void) {
        /* The 8-byte ASCII scan must stop at the right byte wherever it is. */
        for (size_t pos = 0; pos < 24; pos++) {
                char raw[32], expected[40];
                _cleanup_free_ char *out = NULL;
                size_t len = 0;

                memset(raw, 'a', sizeof raw);
                raw[pos] = (char) 0xFF;
                memset(expected, 'a', sizeof expected);
                memcpy(expected + pos, FFFD, 3);

                CHECK_INT_EQ(text_normalize(raw, sizeof raw, &out, &len), 0);
                if (out)
                        CHECK_MEM_EQ(out, len, expected, sizeof raw + 2);

                free(out);
                out = NULL;
                raw[pos] = '\r';
                memcpy(expected, raw, sizeof raw);
                expected[pos] = '\n';
                CHECK_INT_EQ(text_normalize(raw, sizeof raw, &out, &len), 0);
                if (out)
                        CHECK_MEM_EQ(out, len, expected, sizeof raw);
        }
}

static void test_all_invalid_input_grows_buffer(void) {
        /* Every byte becomes three: the output is three times the input. */
        char raw[1000];
        _cleanup_free_ char *out = NULL;
        size_t len = 0;

        memset(raw, 0x80, sizeof raw);
        REQUIRE_INT_EQ(text_normalize(raw, sizeof raw, &out, &len), 0);
        REQUIRE_INT_EQ(len, 3 * sizeof raw);
        for (size_t i = 0; i < len; i += 3)
                if (memcmp(out + i, FFFD, 3) != 0) {
                        CHECK(!"every byte is U+FFFD");
                        break;
                }
}

static void test_nul_bytes_pass_through(void) {
        /* Binary files are refused before normalization; here NUL is plain. */
        CHECK_NORMALIZES("a\0b", "a\0b");
}

static int unhex(const char *s, char *out, size_t *len) {
        *len = 0;
        if (strcmp(s, "-") == 0)
                return 0;
        for (; s[0] && s[1]; s += 2) {
                unsigned v;
                if (sscanf(s, "%2x", &v) != 1)
                        return -EINVAL;
                out[(*len)++] = (char) v;
        }
        return *s ? -EINVAL : 0;
}

static void test_matches_python_on_random_vectors(void) {
        _cleanup_free_ char *data = NULL;
        size_t data_len, n_vectors = 0;

        REQUIRE(vectors_path);
        REQUIRE_INT_EQ(read_file(vectors_path, &data, &data_len), 0);

        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
                char raw[512], expected[1024], *space = strchr(line, ' ');
                size_t raw_len, expected_len;
                _cleanup_free_ char *out = NULL;
                size_t out_len = 0;

                REQUIRE(space && strlen(line) < sizeof raw);
                *space = '\0';
                REQUIRE_INT_EQ(unhex(line, raw, &raw_len), 0);
                REQUIRE_INT_EQ(unhex(space + 1, expected, &expected_len), 0);
                CHECK_INT_EQ(text_normalize(raw, raw_len, &out, &out_len), 0);
                if (out)
                        CHECK_MEM_EQ(out, out_len, expected, expected_len);
                n_vectors++;
        }
        CHECK(n_vectors >= 1000);
}

static void test_count_lines(void) {
        CHECK_INT_EQ(text_count_lines("", 0), 0);
        CHECK_INT_EQ(text_count_lines("a", 1), 1);
        CHECK_INT_EQ(text_count_lines("a\n", 2), 1);
        CHECK_INT_EQ(text_count_lines("\n", 1), 1);
        CHECK_INT_EQ(text_count_lines("\n\n", 2), 2);
        CHECK_INT_EQ(text_count_lines("a\nb", 3), 2);
        CHECK_INT_EQ(text_count_lines("a\nb\n", 4), 2);
}

static void test_count_lines_matches_a_bytewise_count(void) {
        /* The 8-byte count must agree at every length and alignment. */
        unsigned seed = 1;
        char buf[128];

        for (int round = 0; round < 20000; round++) {
                size_t len = (size_t) (seed >> 16) % sizeof buf, expected = 0;
                for (size_t i = 0; i < len; i++) {
                        seed = seed * 1103515245u + 12345u;
                        unsigned r = (seed >> 16) % 8;
                        buf[i] = r == 0 ? '\n' : r == 1 ? (char) 0x8A : r == 2 ? '\v' : 'a';
                        expected += buf[i] == '\n';
                }
                if (len > 0 && buf[len - 1] != '\n')
                        expected++;
                seed = seed * 1103515245u + 12345u;
                if (text_count_lines(buf, len) != expected) {
                        CHECK_INT_EQ(text_count_lines(buf, len), expected);
                        return;
                }
        }
}

static void test_normalization_keeps_line_count(void) {
        /* Line numbers of the raw file stay valid: \r\n, \r and \n are one
         * line end each, before and after. */
        static const char raw[] = "\xEF\xBB\xBF" "a\r\nb\rc\nd\r\r\ne\xFF\r";
        _cleanup_free_ char *out = NULL;
        size_t len = 0;

        REQUIRE_INT_EQ(text_normalize(raw, sizeof raw - 1, &out, &len), 0);
        CHECK_INT_EQ(text_count_lines(out, len), 6);
}

int main(int argc, char **argv) {
        vectors_path = argc > 1 ? argv[1] : NULL;

        RUN(test_empty_input_gives_empty_string);
        RUN(test_ascii_passes_unchanged);
        RUN(test_valid_multibyte_passes_unchanged);
        RUN(test_leading_bom_is_dropped);
        RUN(test_only_the_first_bom_is_dropped);
        RUN(test_truncated_bom_is_invalid_utf8);
        RUN(test_crlf_becomes_lf);
        RUN(test_lone_cr_becomes_lf);
        RUN(test_overlong_lead_bytes_are_one_fffd_each);
        RUN(test_surrogates_are_three_fffd);
        RUN(test_above_u10ffff_is_invalid);
        RUN(test_truncated_sequence_is_one_fffd);
        RUN(test_lone_continuation_bytes_are_one_fffd_each);
        RUN(test_invalid_bytes_at_every_alignment);
        RUN(test_all_invalid_input_grows_buffer);
        RUN(test_nul_bytes_pass_through);
        RUN(test_matches_python_on_random_vectors);
        RUN(test_count_lines);
        RUN(test_count_lines_matches_a_bytewise_count);
        RUN(test_normalization_keeps_line_count);
        return check_summary();
}
