/* chunker_split behaviour by behaviour (the golden files in cases/ pin whole
 * outputs; these pin one rule each), then the invariants over generated
 * documents that mix every construct at random sizes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "chunker.h"
#include "document.h"
#include "helpers.h"
#include "macro.h"

static int split(const char *text, size_t min, size_t max, struct chunk_list *ret) {
        struct chunker_options opts = { .min_bytes = min, .max_bytes = max };
        return chunker_split(text, strlen(text), &opts, ret);
}

#define CHECK_CHUNK(list, i, start, end, hierarchy)                                  \
        do {                                                                         \
                REQUIRE((list).n_items > (size_t) (i));                              \
                CHECK_INT_EQ((list).items[i].start_line, start);                     \
                CHECK_INT_EQ((list).items[i].end_line, end);                         \
                CHECK_STR_EQ((list).items[i].heading_hierarchy, hierarchy);          \
        } while (0)

static void test_empty_text_gives_no_chunks(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        CHECK_INT_EQ(chunker_split("", 0, NULL, &list), 0);
        CHECK_INT_EQ(list.n_items, 0);
        CHECK(list.items == NULL);
}

static void test_whitespace_only_gives_no_chunks(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        CHECK_INT_EQ(split("\n  \n\t\n \t \n", 1, 100, &list), 0);
        CHECK_INT_EQ(list.n_items, 0);
}

static void test_null_options_mean_defaults(void) {
        _cleanup_chunk_list_ struct chunk_list list;
        char text[4000];

        /* 30 sections of ~100 bytes: 256..2048 packs three per chunk. */
        text[0] = '\0';
        for (int i = 0; i < 30; i++)
                snprintf(text + strlen(text), sizeof text - strlen(text),
                         "## Section %02d\n\n%s\n\n", i,
                         "Eighty bytes of body text, give or take a few, to fill the section up nicely.");
        REQUIRE_INT_EQ(chunker_split(text, strlen(text), NULL, &list), 0);
        CHECK_INT_EQ(list.n_items, 10);
        for (size_t i = 0; i < list.n_items; i++) {
                CHECK(list.items[i].content_len >= CHUNKER_MIN_BYTES_DEFAULT);
                CHECK(list.items[i].content_len <= CHUNKER_MAX_BYTES_DEFAULT);
        }
}

static void test_zero_options_mean_defaults(void) {
        _cleanup_chunk_list_ struct chunk_list a, b;
        struct chunker_options zero = { 0 };
        const char *text = "# A\n\ntext\n\n# B\n\nmore text\n";

        REQUIRE_INT_EQ(chunker_split(text, strlen(text), &zero, &a), 0);
        REQUIRE_INT_EQ(chunker_split(text, strlen(text), NULL, &b), 0);
        REQUIRE_INT_EQ(a.n_items, 1);
        REQUIRE_INT_EQ(b.n_items, 1);
        CHECK_INT_EQ(a.items[0].end_line, b.items[0].end_line);
}

static void test_content_is_the_lines_without_final_newline(void) {
        _cleanup_chunk_list_ struct chunk_list list;
        const char *text = "# A\n\nbody\n";

        REQUIRE_INT_EQ(split(text, 1, 100, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK(list.items[0].content == text);
        CHECK_MEM_EQ(list.items[0].content, list.items[0].content_len, "# A\n\nbody", 9);
        char hash[HASH_HEX_LEN];
        hash_hex("# A\n\nbody", 9, hash);
        CHECK_STR_EQ(list.items[0].content_hash, hash);
}

static void test_hash_is_canonical_xxh3_128(void) {
        char hash[HASH_HEX_LEN];

        /* The published XXH3-128 of no input, high half first. */
        hash_hex("", 0, hash);
        CHECK_STR_EQ(hash, "99aa06d3014798d86001c324468d497f");
}

static void test_small_sections_merge_until_min(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* Each section is 10 bytes: four of them (with blank lines) pass 40. */
        REQUIRE_INT_EQ(split("# A\n\ntext1\n\n# B\n\ntext2\n\n# C\n\ntext3\n\n# D\n\ntext4\n\n# E\n\ntext5\n",
                             40, 1000, &list),
                       0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 15, "[\"A\"]");
        CHECK_CHUNK(list, 1, 17, 19, "[\"E\"]");
}

static void test_merge_flushes_before_passing_max(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* A+B is 24 bytes, under min; adding C would pass max 30. */
        REQUIRE_INT_EQ(split("# A\n\ntext1\n\n# B\n\ntext2\n\n# C\n\ntext3\n", 100, 30, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 7, "[\"A\"]");
        CHECK_CHUNK(list, 1, 9, 11, "[\"C\"]");
}

static void test_heading_only_start_takes_the_subsection_hierarchy(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# Title\n## Intro\ntext\n", 256, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 3, "[\"Title\",\"Intro\"]");
}

static void test_chunk_with_body_keeps_its_first_hierarchy(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# Title\ntext\n## Intro\ntext\n", 256, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 4, "[\"Title\"]");
}

static void test_sibling_heading_does_not_extend_hierarchy(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* ["A","B"] is not a prefix of ["A","C"]: the chunk keeps the first. */
        REQUIRE_INT_EQ(split("# A\n## B\n## C\ntext\n", 256, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 4, "[\"A\",\"B\"]");
}

static void test_heading_pops_same_and_deeper_levels(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# A\nx\n## B\nx\n### C\nx\n## D\nx\n#### E\nx\n# F\nx\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 6);
        CHECK_CHUNK(list, 0, 1, 2, "[\"A\"]");
        CHECK_CHUNK(list, 1, 3, 4, "[\"A\",\"B\"]");
        CHECK_CHUNK(list, 2, 5, 6, "[\"A\",\"B\",\"C\"]");
        CHECK_CHUNK(list, 3, 7, 8, "[\"A\",\"D\"]");
        CHECK_CHUNK(list, 4, 9, 10, "[\"A\",\"D\",\"E\"]");
        CHECK_CHUNK(list, 5, 11, 12, "[\"F\"]");
}

static void test_text_before_first_heading_has_empty_hierarchy(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("intro\n\n# A\nx\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 1, "[]");
        CHECK_CHUNK(list, 1, 3, 4, "[\"A\"]");
}

static void test_heading_text_is_its_plain_text(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# *Emph* and `code` and [link](http://x) ![alt](i.png) &amp; <b>html</b> #\n",
                             1, 2048, &list),
                       0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_STR_EQ(list.items[0].heading_hierarchy, "[\"Emph and code and link alt & html\"]");
}

static void test_heading_hierarchy_escapes_json(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# Say \"hi\" \\\\ back\ttab\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_STR_EQ(list.items[0].heading_hierarchy, "[\"Say \\\"hi\\\" \\\\ back\\ttab\"]");
}

static void test_long_heading_is_cut_at_a_character_boundary(void) {
        _cleanup_chunk_list_ struct chunk_list list;
        char text[1200] = "# x";

        /* "x" then 300 two-byte characters: 256 bytes would end mid-character. */
        for (int i = 0; i < 300; i++)
                strcat(text, "\xC3\xA9");
        strcat(text, "\n");
        REQUIRE_INT_EQ(split(text, 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        const char *h = list.items[0].heading_hierarchy;
        /* [" + x + 127 é (255 bytes) + "] */
        CHECK_INT_EQ(strlen(h), 2 + 255 + 2);
        CHECK(strncmp(h, "[\"x\xC3\xA9", 5) == 0);
        CHECK_STR_EQ(h + strlen(h) - 4, "\xC3\xA9\"]");
}

static void test_setext_heading_lines_join_with_a_space(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("Top\n===\n\nTwo\nlines\n---\ntext\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 2, "[\"Top\"]");
        CHECK_CHUNK(list, 1, 4, 7, "[\"Top\",\"Two lines\"]");
}

static void test_hash_lines_in_fenced_code_are_not_headings(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# A\n\n```\n# no\n```\n\n~~~\n# no\n~~~\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 9, "[\"A\"]");
}

static void test_nested_heading_is_not_a_section(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* Only top-level headings start sections. */
        REQUIRE_INT_EQ(split("# A\n\n> # quoted\n\n- # in a list\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 5, "[\"A\"]");
}

static void test_front_matter_joins_the_first_section(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("---\ntitle: t\n---\n# Title\n\ntext\n\n# Next\n\nmore\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 6, "[\"Title\"]");
        CHECK_CHUNK(list, 1, 8, 10, "[\"Next\"]");
}

static void test_front_matter_above_min_still_joins(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* 31 bytes of front matter with min 10: it waits for what follows. */
        REQUIRE_INT_EQ(split("---\na: 1\nb: 2\nc: 3\nd: 4\n---\ntext\n", 10, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 7, "[]");
}

static void test_front_matter_alone_when_merging_passes_max(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("---\na: 1\nb: 2\n---\n# T\n\nsome body text\n", 1, 30, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 4, "[]");
        CHECK_CHUNK(list, 1, 5, 7, "[\"T\"]");
}

static void test_front_matter_may_close_with_dots(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* Were it not front matter, "b: 2\n---" would be a setext heading. */
        REQUIRE_INT_EQ(split("---\na: 1\n...\nb: 2\n---\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 5, "[\"b: 2\"]");
}

static void test_front_matter_only_file_is_one_chunk(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("---\ntitle: t\n---\n\n\n", 256, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 3, "[]");
}

static void test_oversized_front_matter_is_one_chunk(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* 33 bytes of front matter, max 20: one chunk, like a code block,
         * so that its tags: are read whole (they were lost when it was cut
         * at lines). */
        REQUIRE_INT_EQ(split("---\nalpha: 1\nbeta: 2\ngamma: 3\n---\n# T\n\ntext\n", 1, 20, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 5, "[]");
        CHECK_CHUNK(list, 1, 6, 8, "[\"T\"]");
}

static void test_front_matter_past_64_kib_splits_at_lines(void) {
        _cleanup_chunk_list_ struct chunk_list list;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        /* A document that opens with a "---" rule and has another far
         * below, rather than metadata: cut at lines like a paragraph. */
        REQUIRE(f);
        fputs("---\n", f);
        for (int i = 0; i < 2000; i++)
                fprintf(f, "line %04d of a long opening part that is not metadata\n", i);
        fputs("---\n# T\n\ntext\n", f);
        REQUIRE_INT_EQ(fclose(f), 0);
        REQUIRE(len > 64 * 1024);
        REQUIRE_INT_EQ(split(text, 64, 2048, &list), 0);
        REQUIRE(list.n_items > 30);
        CHECK_INT_EQ(list.items[0].start_line, 1);
        for (size_t i = 0; i < list.n_items; i++)
                CHECK(list.items[i].content_len <= 2048);
}

static void test_unclosed_front_matter_is_markdown(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* No closing line: "---" is a thematic break, "Title\n===" a heading. */
        REQUIRE_INT_EQ(split("---\n\nTitle\n===\ntext\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 1, "[]");
        CHECK_CHUNK(list, 1, 3, 5, "[\"Title\"]");
}

static void test_front_matter_needs_exact_dashes(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* "--- " is not "---": no front matter, and cmark reads a setext heading. */
        REQUIRE_INT_EQ(split("--- \na: 1\n---\ntext\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 1, "[]");
        CHECK_CHUNK(list, 1, 2, 4, "[\"a: 1\"]");
}

static void test_oversized_section_splits_at_blocks(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# T\n\naaaaaaaaaa\n\nbbbbbbbbbb\n\ncccccccccc\n\ndddddddddd\n\neeeeeeeeee\n",
                             1, 30, &list),
                       0);
        REQUIRE_INT_EQ(list.n_items, 3);
        CHECK_CHUNK(list, 0, 1, 5, "[\"T\"]");
        CHECK_CHUNK(list, 1, 7, 9, "[\"T\"]");
        CHECK_CHUNK(list, 2, 11, 11, "[\"T\"]");
        for (size_t i = 0; i < list.n_items; i++)
                CHECK(list.items[i].content_len <= 30);
}

static void test_oversized_paragraph_splits_at_lines(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("line one\nline two\nline three\nline four\n", 1, 20, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 2, "[]");
        CHECK_CHUNK(list, 1, 3, 4, "[]");
}

static void test_oversized_code_block_is_never_split(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("```\n0123456789\n0123456789\n0123456789\n```\n\n    indented\n    code\n    block\n",
                             1, 20, &list),
                       0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 5, "[]");
        CHECK_CHUNK(list, 1, 7, 9, "[]");
}

static void test_single_huge_line_is_one_chunk(void) {
        _cleanup_chunk_list_ struct chunk_list list;
        char text[5000];

        memset(text, 'x', 4000);
        strcpy(text + 4000, "\n");
        REQUIRE_INT_EQ(split(text, 256, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_INT_EQ(list.items[0].content_len, 4000);
}

static void test_heading_sticks_to_an_oversized_block(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* The code block cannot be split; its heading goes with it rather
         * than being a chunk of its own. */
        REQUIRE_INT_EQ(split("# T\n\n```\n0123456789\n0123456789\n```\n\nafter\n", 1, 20, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 6, "[\"T\"]");
        CHECK_CHUNK(list, 1, 8, 8, "[\"T\"]");
}

static void test_titles_before_an_oversized_section_join_its_first_piece(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        /* "# T" alone is under min and has no body; section S is over max. */
        REQUIRE_INT_EQ(split("# T\n\n## S\n\naaaaaaaaaa\n\nbbbbbbbbbb\n\ncccccccccc\n", 100, 30, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_CHUNK(list, 0, 1, 5, "[\"T\",\"S\"]");
        CHECK_CHUNK(list, 1, 7, 9, "[\"T\",\"S\"]");
}

static void test_oversized_list_splits_at_items(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("- item one\n- item two\n- item three\n  continued\n- item four\n", 1, 25, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 3);
        CHECK_CHUNK(list, 0, 1, 2, "[]");
        CHECK_CHUNK(list, 1, 3, 4, "[]");
        CHECK_CHUNK(list, 2, 5, 5, "[]");
}

static void test_oversized_blockquote_splits_at_children(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("> para one\n>\n> para two\n>\n> para three\n", 1, 15, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 3);
        CHECK_CHUNK(list, 0, 1, 2, "[]");
        CHECK_CHUNK(list, 1, 3, 4, "[]");
        CHECK_CHUNK(list, 2, 5, 5, "[]");
}

static void test_repeated_paragraphs_are_separate_chunks(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("same words here\n\nsame words here\n", 1, 20, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        CHECK_INT_EQ(list.items[0].start_line, 1);
        CHECK_INT_EQ(list.items[1].start_line, 3);
        CHECK_STR_EQ(list.items[0].content_hash, list.items[1].content_hash);
}

static void test_link_definitions_before_the_first_block_are_kept(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("\n[a]: http://a\n\n# T\n\nsee [a]\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 2, 6, "[\"T\"]");
}

static void test_file_of_link_definitions_is_one_chunk(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("[a]: http://a\n[b]: http://b\n", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 2, "[]");
}

static void test_last_line_without_newline_is_kept(void) {
        _cleanup_chunk_list_ struct chunk_list list;

        REQUIRE_INT_EQ(split("# T\n\nend", 1, 2048, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 1);
        CHECK_CHUNK(list, 0, 1, 3, "[\"T\"]");
        CHECK_INT_EQ(list.items[0].content_len, 8);
}

static void test_deep_nesting_does_not_exhaust_the_stack(void) {
        /* 100000 nested block quotes, far over max: the split recursion
         * stops at a depth limit and cuts at lines instead. */
        size_t depth = 100000, len = 0;
        _cleanup_free_ char *text = malloc(3 * (depth + 20));
        struct document doc;

        REQUIRE(text);
        for (int line = 0; line < 3; line++) {
                memset(text + len, '>', depth);
                len += depth;
                len += (size_t) sprintf(text + len, " line %d\n", line);
        }
        REQUIRE_INT_EQ(document_parse(text, len, NULL, &doc), 0);
        CHECK_INT_EQ(check_chunk_invariants(&doc, __func__, stderr), 0);
        CHECK_INT_EQ(doc.chunks.n_items, 3);
        document_done(&doc);
}

/* A small deterministic PRNG, so a failure reproduces from its seed. */
static uint64_t rng_state;
static unsigned rnd(unsigned n) {
        rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
        return (unsigned) (rng_state >> 33) % n;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
        size_t n = strlen(s);
        if (*len + n + 1 > *cap) {
                *cap = (*len + n + 1) * 2;
                *buf = realloc(*buf, *cap);
        }
        memcpy(*buf + *len, s, n + 1);
        *len += n;
}

/* Markdown from the constructs the rules talk about, with line endings of
 * every kind, in random order and sizes. */
static void generate(char **buf, size_t *len, size_t *cap) {
        static const char *const pieces[] = {
                "# Heading one\n", "## Heading two\n", "### Three ###\n", "Setext\n===\n",
                "Setext two\n---\n", "\n", "\n\n", "   \n", "Some paragraph text.\n",
                "A longer line of paragraph text that takes up a fair amount of room.\n",
                "```\n# not a heading\ncode\n```\n", "~~~\ncode\n", "    indented code\n",
                "- item\n", "  - nested item\n", "1. ordered\n", "> quote\n", ">\n", "> > deeper\n",
                "[ref]: http://example.com\n", "<div>\nhtml\n</div>\n", "---\n", "...\n", "***\n",
                "line\r\n", "cr line\r", "\t\n", "`code` *emph* [link](x)\n", "\xEF\xBB\xBF", "\xFF\xC0",
        };
        unsigned n = 1 + rnd(80);

        *len = 0;
        if (rnd(4) == 0)
                append(buf, len, cap, "---\ntitle: x\n---\n");
        for (unsigned i = 0; i < n; i++) {
                if (rnd(30) == 0) {
                        char line[3000];
                        size_t l = 1 + rnd(2500);
                        memset(line, 'w', l);
                        strcpy(line + l, "\n");
                        append(buf, len, cap, line);
                } else
                        append(buf, len, cap, pieces[rnd(ELEMENTSOF(pieces))]);
        }
        if (rnd(3) == 0 && *len > 0)
                (*buf)[--*len] = '\0'; /* no final newline */
}

static void test_invariants_hold_on_generated_documents(void) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        for (unsigned seed = 1; seed <= 3000; seed++) {
                struct document_options opts = { .chunker = { .min_bytes = 1, .max_bytes = 1 } };
                struct document doc;
                char what[64];

                rng_state = seed;
                generate(&buf, &len, &cap);
                opts.chunker.min_bytes = rnd(300);
                opts.chunker.max_bytes = 1 + rnd(600);
                snprintf(what, sizeof what, "seed %u", seed);

                int r = document_parse(buf, len, &opts, &doc);
                if (r < 0) {
                        fprintf(stderr, "%s: document_parse: %s\n", what, strerror(-r));
                        CHECK(r == 0);
                        return;
                }
                if (check_chunk_invariants(&doc, what, stderr) > 0) {
                        CHECK(!"invariants hold");
                        document_done(&doc);
                        return;
                }
                document_done(&doc);
        }
}

int main(void) {
        RUN(test_empty_text_gives_no_chunks);
        RUN(test_whitespace_only_gives_no_chunks);
        RUN(test_null_options_mean_defaults);
        RUN(test_zero_options_mean_defaults);
        RUN(test_content_is_the_lines_without_final_newline);
        RUN(test_hash_is_canonical_xxh3_128);
        RUN(test_small_sections_merge_until_min);
        RUN(test_merge_flushes_before_passing_max);
        RUN(test_heading_only_start_takes_the_subsection_hierarchy);
        RUN(test_chunk_with_body_keeps_its_first_hierarchy);
        RUN(test_sibling_heading_does_not_extend_hierarchy);
        RUN(test_heading_pops_same_and_deeper_levels);
        RUN(test_text_before_first_heading_has_empty_hierarchy);
        RUN(test_heading_text_is_its_plain_text);
        RUN(test_heading_hierarchy_escapes_json);
        RUN(test_long_heading_is_cut_at_a_character_boundary);
        RUN(test_setext_heading_lines_join_with_a_space);
        RUN(test_hash_lines_in_fenced_code_are_not_headings);
        RUN(test_nested_heading_is_not_a_section);
        RUN(test_front_matter_joins_the_first_section);
        RUN(test_front_matter_above_min_still_joins);
        RUN(test_front_matter_alone_when_merging_passes_max);
        RUN(test_front_matter_may_close_with_dots);
        RUN(test_front_matter_only_file_is_one_chunk);
        RUN(test_oversized_front_matter_is_one_chunk);
        RUN(test_front_matter_past_64_kib_splits_at_lines);
        RUN(test_unclosed_front_matter_is_markdown);
        RUN(test_front_matter_needs_exact_dashes);
        RUN(test_oversized_section_splits_at_blocks);
        RUN(test_oversized_paragraph_splits_at_lines);
        RUN(test_oversized_code_block_is_never_split);
        RUN(test_single_huge_line_is_one_chunk);
        RUN(test_heading_sticks_to_an_oversized_block);
        RUN(test_titles_before_an_oversized_section_join_its_first_piece);
        RUN(test_oversized_list_splits_at_items);
        RUN(test_oversized_blockquote_splits_at_children);
        RUN(test_repeated_paragraphs_are_separate_chunks);
        RUN(test_link_definitions_before_the_first_block_are_kept);
        RUN(test_file_of_link_definitions_is_one_chunk);
        RUN(test_last_line_without_newline_is_kept);
        RUN(test_deep_nesting_does_not_exhaust_the_stack);
        RUN(test_invariants_hold_on_generated_documents);
        return check_summary();
}
