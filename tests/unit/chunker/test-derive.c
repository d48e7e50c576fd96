/* derive_chunk: tags and links of a chunk (docs/CHUNKER.md, "Derived
 * data"). Each test writes out the whole expected result, so what must not
 * be found (code, URLs, #123, headings) is pinned as firmly as what must.
 * The result is printed as dump_derived() does (helpers.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "chunker.h"
#include "derive.h"
#include "helpers.h"
#include "macro.h"
#include "util.h"

static char *dump(const struct derived *d) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        dump_derived(f, d);
        fclose(f);
        return buf;
}

#define CHECK_DERIVES_AT(content, start_line, expected)                                       \
        do {                                                                                  \
                struct derived _d;                                                            \
                REQUIRE_INT_EQ(derive_chunk(content, strlen(content), start_line, &_d), 0);   \
                _cleanup_free_ char *_got = dump(&_d);                                        \
                derived_done(&_d);                                                            \
                REQUIRE(_got);                                                                \
                CHECK_STR_EQ(_got, expected);                                                 \
        } while (0)

#define CHECK_DERIVES(content, expected) CHECK_DERIVES_AT(content, 1, expected)

/* ---- inline tags ---- */

static void test_inline_tags_are_found(void) {
        CHECK_DERIVES("a #tag and #other/nested here\n#start of line",
                      "tag tag\ntag other/nested\ntag start\n");
}

static void test_tag_may_follow_punctuation(void) {
        CHECK_DERIVES("(#paren) *#em* \"#quoted\" x,#comma [#bracket] >#quote",
                      "tag paren\ntag em\ntag quoted\ntag comma\ntag bracket\ntag quote\n");
}

static void test_hash_glued_to_a_word_is_no_tag(void) {
        CHECK_DERIVES("foo#bar a/#path &#39; x_#y a-#b 数据#标签 `c`#d [x]#e (x)#f", "");
}

static void test_numeric_hash_is_no_tag(void) {
        CHECK_DERIVES("issue #123, #1984 and #12-3 and #2024/05 but #y1984 and #1a", "tag y1984\ntag 1a\n");
}

static void test_heading_marker_is_no_tag(void) {
        CHECK_DERIVES("# Title\n## Sub #real ##\n#NoSpaceIsNoHeading\n####### seven", "tag real\ntag NoSpaceIsNoHeading\n");
}

static void test_tag_ends_at_punctuation(void) {
        CHECK_DERIVES("#end. #two, #three's #c++ #a、b #q? #x:y #z)",
                      "tag end\ntag two\ntag three\ntag c\ntag a\ntag q\ntag x\ntag z\n");
}

static void test_tags_keep_unicode_letters(void) {
        CHECK_DERIVES("#日本語 #café #한국어/검색 #emoji😀 #Ünïcödé 数据 #标签。",
                      "tag 日本語\ntag café\ntag 한국어/검색\ntag emoji😀\ntag Ünïcödé\ntag 标签\n");
}

static void test_each_tag_once_per_chunk(void) {
        CHECK_DERIVES("#a #b #a\n\n#b #A", "tag a\ntag b\ntag A\n");
}

static void test_escaped_hash_is_no_tag(void) {
        CHECK_DERIVES("\\#no #yes \\\\#also-no", "tag yes\n");
}

static void test_overlong_tag_is_no_tag(void) {
        char text[400];

        text[0] = '#';
        memset(text + 1, 'a', 257);
        strcpy(text + 258, " #ok");
        CHECK_DERIVES(text, "tag ok\n");
        text[257] = '\0'; /* 256 bytes: still a tag */
        struct derived d;
        REQUIRE_INT_EQ(derive_chunk(text, strlen(text), 1, &d), 0);
        CHECK_INT_EQ(d.n_tags, 1);
        if (d.n_tags == 1)
                CHECK_INT_EQ(strlen(d.tags[0].name), 256);
        derived_done(&d);
}

/* ---- code ---- */

static void test_fenced_code_hides_tags_and_links(void) {
        CHECK_DERIVES("#before\n```sh\n#comment [[Note]] [t](a.md)\n```\n~~~~\n#x\n```\n#still-code\n~~~~\n#after",
                      "tag before\ntag after\n");
}

static void test_unclosed_fence_runs_to_the_end(void) {
        CHECK_DERIVES("#before\n```\n#code\n\n#more-code", "tag before\n");
}

static void test_fence_in_a_list_is_code(void) {
        CHECK_DERIVES("- item #a\n    ```\n    #code\n    ```\n- next #b", "tag a\ntag b\n");
}

static void test_indented_code_hides_tags(void) {
        CHECK_DERIVES("#before\n\n    #code [[Note]]\n\tmore #code\n\n#after", "tag before\ntag after\n");
}

static void test_indented_line_in_a_paragraph_or_list_is_text(void) {
        CHECK_DERIVES("para\n    #lazy\n\n- item\n\n    #in-item\n\n  - sub\n\n      #deeper-item-text",
                      "tag lazy\ntag in-item\ntag deeper-item-text\n");
}

static void test_chunk_starting_with_a_nested_item_is_text(void) {
        CHECK_DERIVES_AT("    - nested #a [[Note]]", 7, "tag a\nwiki 7 Note\n");
        CHECK_DERIVES_AT("    code #no", 7, "");
}

static void test_code_spans_hide_tags_and_links(void) {
        CHECK_DERIVES("`#a` ``#b ` [[c]]`` `[t](d.md)` #e ```f``", "tag e\n");
}

static void test_code_span_may_span_lines(void) {
        CHECK_DERIVES("`a\n#no\nb` #yes\n[[After]]", "tag yes\nwiki 4 After\n");
}

static void test_unmatched_backticks_are_text(void) {
        CHECK_DERIVES("``a` #yes [[Note]]", "tag yes\nwiki 1 Note\n");
}

/* ---- URLs and HTML ---- */

static void test_url_fragments_are_no_tags(void) {
        CHECK_DERIVES("see https://a.example/#frag and <https://b.example/x#y> and http://c.example/p#q #real",
                      "tag real\n");
}

static void test_html_attributes_are_no_tags(void) {
        CHECK_DERIVES("<span style=\"color:#ff0000\">red #text</span> a < b #ok", "tag text\ntag ok\n");
}

/* ---- front matter ---- */

static void test_front_matter_flow_list(void) {
        CHECK_DERIVES("---\ntitle: x\ntags: [a, \"b-c\", '#d', e/f]\n---\nbody #g", "fm a\nfm b-c\nfm d\nfm e/f\ntag g\n");
}

static void test_front_matter_flow_list_over_lines(void) {
        CHECK_DERIVES("---\ntags: [one,\n  two, three]\nx: [no]\n---", "fm one\nfm two\nfm three\n");
}

static void test_front_matter_block_list(void) {
        CHECK_DERIVES("---\ntags:\n  - one\n  # a comment\n  - \"#two\"\n\n- three\nother: four\n- five\n---",
                      "fm one\nfm two\nfm three\n");
}

static void test_front_matter_plain_values(void) {
        CHECK_DERIVES("---\ntags: a, b c # comment\n---", "fm a\nfm b\nfm c\n");
        CHECK_DERIVES("---\nTag: #x #y\n---", "fm x\nfm y\n");
        CHECK_DERIVES("---\ntags: 'it''s' \"q\\\"r\"\n---", "");
        CHECK_DERIVES("---\ntags: \"one two\"\n---", "fm one\nfm two\n");
}

static void test_front_matter_invalid_names_are_dropped(void) {
        CHECK_DERIVES("---\ntags: [ok, 123, c++, '', a.b, 日記]\n---", "fm ok\nfm 日記\n");
}

static void test_front_matter_other_keys_are_not_tags(void) {
        CHECK_DERIVES("---\ntagline: [a]\nmytags: [b]\n  tags: [c]\nkeywords: #d\n# tags: [e]\n---", "");
}

static void test_front_matter_only_at_line_1(void) {
        CHECK_DERIVES_AT("---\ntags: [a]\n---\n#b", 5, "tag b\n");
}

static void test_front_matter_needs_its_closing_line(void) {
        CHECK_DERIVES("---\ntags: [a]\n#b", "tag b\n");
        CHECK_DERIVES("---\ntags: [a]\n...\n#b", "fm a\ntag b\n");
}

static void test_front_matter_over_max_bytes_keeps_its_tags(void) {
        /* The chunker cut front matter over max_bytes at lines, so no
         * chunk held its closing line, and its tags: were lost. */
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        REQUIRE(f);
        fputs("---\ntags: [big]\ndescription: >\n", f);
        for (int i = 0; i < 40; i++)
                fputs("  words here words here words here words here words here words here\n", f);
        fputs("---\n# T\n\nword bigbody #inline\n", f);
        REQUIRE_INT_EQ(fclose(f), 0);
        REQUIRE(len > CHUNKER_MAX_BYTES_DEFAULT);

        _cleanup_chunk_list_ struct chunk_list list;
        REQUIRE_INT_EQ(chunker_split(text, len, &(struct chunker_options){ 0 }, &list), 0);
        REQUIRE_INT_EQ(list.n_items, 2);
        const char *expected[] = { "fm big\n", "tag inline\n" };
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                struct derived d;
                REQUIRE_INT_EQ(derive_chunk(list.items[i].content, list.items[i].content_len, list.items[i].start_line,
                                            &d),
                               0);
                _cleanup_free_ char *got = dump(&d);
                derived_done(&d);
                REQUIRE(got);
                CHECK_STR_EQ(got, expected[i]);
        }
}

static void test_front_matter_yaml_comments_are_no_tags(void) {
        CHECK_DERIVES("---\n# comment\nx: 1 #note\n---\n#body", "tag body\n");
}

static void test_front_matter_tag_is_not_repeated_inline(void) {
        CHECK_DERIVES("---\ntags: a\n---\n#a #b", "fm a\ntag b\n");
}

static void test_front_matter_wiki_links_count(void) {
        CHECK_DERIVES("---\nup: \"[[Parent]]\"\nrel: [\"[[A|x]]\", \"[[B#h]]\"]\nurl: [t](x.md)\n---\n[[Body]]",
                      "wiki 2 Parent\nwiki 3 A\nwiki 3 B#h\nwiki 6 Body\n");
}

/* ---- wiki links ---- */

static void test_wiki_link_forms(void) {
        CHECK_DERIVES("[[Note]] [[Note|alias]] [[Note#Heading]] [[Note#Heading|alias]]\n"
                      "[[Folder/Sub Note.md]] [[ Spaced | x ]] [[Note#^block-id]]",
                      "wiki 1 Note\nwiki 1 Note\nwiki 1 Note#Heading\nwiki 1 Note#Heading\n"
                      "wiki 2 Folder/Sub Note.md\nwiki 2 Spaced\nwiki 2 Note#^block-id\n");
}

static void test_wiki_link_to_own_heading_has_empty_target(void) {
        CHECK_DERIVES("[[#Heading]] [[#Heading|alias]] [[]] [[|x]] [[#]]", "wiki 1 #Heading\nwiki 1 #Heading\n");
}

static void test_embeds(void) {
        CHECK_DERIVES("![[image.png]] ![[Note#Sec|300]] ![[ clip.mp4 ]]",
                      "embed 1 image.png\nembed 1 Note#Sec\nembed 1 clip.mp4\n");
}

static void test_wiki_link_escaped_pipe_in_table(void) {
        CHECK_DERIVES("| a | [[Note\\|alias]] |\n|---|---|", "wiki 1 Note\n");
}

static void test_wiki_link_stays_on_its_line(void) {
        CHECK_DERIVES("[[a\nb]] [[c]]", "wiki 2 c\n");
}

static void test_wiki_link_innermost_opening_wins(void) {
        CHECK_DERIVES("[[a [[b]] [[[c]]]", "wiki 1 b\nwiki 1 [c\n");
}

/* ---- Markdown links ---- */

static void test_markdown_link_forms(void) {
        CHECK_DERIVES("[t](path.md) ![alt](img/a.png) [t](<a b.md>) [t](note.md#frag \"title\")\n"
                      "[t](a%20b.md) [t](sub/x.md 'T') [t](x\\_y.md) [t](a(b).md) [t](../up.md#%C3%A9t%C3%A9 (t))",
                      "md 1 path.md\nmd 1 img/a.png\nmd 1 a b.md\nmd 1 note.md#frag\n"
                      "md 2 a b.md\nmd 2 sub/x.md\nmd 2 x_y.md\nmd 2 a(b).md\nmd 2 ../up.md#été\n");
}

static void test_markdown_links_must_be_local(void) {
        CHECK_DERIVES("[a](http://x.org/a.md) [b](https://x.org) [c](mailto:me@x.org) [d](file:///tmp/a.md)\n"
                      "[e](//host/a.md) [f](#anchor) [g](obsidian://open?x) [h]() [i](C:/notes/a.md)",
                      "md 2 C:/notes/a.md\n");
}

static void test_markdown_link_needs_its_syntax(void) {
        CHECK_DERIVES("[a] (b.md) [c](d.md \"open) [e](f g.md) [h](<i.md) [j](k.md \"t\" x)", "");
}

static void test_percent_decoding_keeps_what_is_no_text(void) {
        CHECK_DERIVES("[a](x%00y.md) [b](x%FFy.md) [c](%zz.md) [d](%E6%95%B0.md)",
                      "md 1 x%00y.md\nmd 1 x%FFy.md\nmd 1 %zz.md\nmd 1 数.md\n");
}

static void test_reference_links(void) {
        CHECK_DERIVES("[text][Ref] and [ref][] and [REF] and [x][none]\n"
                      "[web][w] [^1]\n\n[ref]: target.md#s \"T\"\n[w]: https://x.org\n[ref]: second.md\n[^1]: note",
                      "md 1 target.md#s\nmd 1 target.md#s\nmd 1 target.md#s\n");
}

static void test_definition_cannot_interrupt_a_paragraph(void) {
        CHECK_DERIVES("[a]\ntext\n[a]: x.md", "");
        CHECK_DERIVES("[a]\n\n[a]: <x y.md>", "md 1 x y.md\n");
}

static void test_link_lines_are_absolute(void) {
        CHECK_DERIVES_AT("first\n[[A]]\n\n[multi\nline](b.md) [[C]]\n```\n[[no]]\n```\n![[D]]", 40,
                         "wiki 41 A\nmd 43 b.md\nwiki 44 C\nembed 48 D\n");
}

static void test_link_text_may_hold_tags_not_links(void) {
        CHECK_DERIVES("[#tag [inner](in.md)](out.md)", "tag tag\nmd 1 in.md\n");
}

static void test_image_inside_a_link_keeps_the_link(void) {
        /* A badge: the image closes first, then the link around it. */
        CHECK_DERIVES("[![badge](img/b.svg)](docs/b.md) [![x](https://x.org/x.svg)](local.md)",
                      "md 1 img/b.svg\nmd 1 docs/b.md\nmd 1 local.md\n");
        /* A link inside an image's alt text: both (CommonMark allows it). */
        CHECK_DERIVES("![a [b](b.md) c](c.png)", "md 1 b.md\nmd 1 c.png\n");
        /* But no link around a link: the outer brackets are text. */
        CHECK_DERIVES("[a [b](b.md) c](c.md) [ref]\n\n[ref]: r.md", "md 1 b.md\nmd 1 r.md\n");
}

static void test_links_in_order_of_appearance(void) {
        CHECK_DERIVES("[r] [[W]] [m](m.md) ![[E]]\n\n[r]: r.md", "md 1 r.md\nwiki 1 W\nmd 1 m.md\nembed 1 E\n");
}

static void test_empty_chunk(void) {
        CHECK_DERIVES("", "");
}

static void test_invalid_utf8_is_survived(void) {
        struct derived d;
        const char bytes[] = "#a\xFF #\xC3 [[\xE6\x95]] [x](\xF0.md) #b\xED\xA0\x80";

        REQUIRE_INT_EQ(derive_chunk(bytes, sizeof bytes - 1, 1, &d), 0);
        CHECK_INT_EQ(d.n_tags, 2);
        CHECK_INT_EQ(d.n_links, 2);
        derived_done(&d);
}

/* ---- hostile input: every one of these is linear (docs/CHUNKER.md);
 * timed for the record, never asserted. ---- */

static char *repeat(const char *unit, size_t times, size_t *ret_len) {
        size_t n = strlen(unit);
        char *s = malloc(n * times + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < times; i++)
                memcpy(s + i * n, unit, n);
        s[n * times] = '\0';
        *ret_len = n * times;
        return s;
}

static void check_hostile(const char *name, const char *unit, size_t times, size_t n_tags, size_t n_links) {
        size_t len;
        _cleanup_free_ char *s = repeat(unit, times, &len);
        struct derived d;

        REQUIRE(s);
        uint64_t t = now_monotonic_usec();
        REQUIRE_INT_EQ(derive_chunk(s, len, 1, &d), 0);
        printf("  %-24s %8zu bytes %8.1f ms\n", name, len, (now_monotonic_usec() - t) / 1e3);
        CHECK_INT_EQ(d.n_tags, n_tags);
        CHECK_INT_EQ(d.n_links, n_links);
        derived_done(&d);
}

static void test_hostile_inputs_are_linear(void) {
        check_hostile("'[' x 100k", "[", 100000, 0, 0);
        check_hostile("'![' x 100k", "![", 100000, 0, 0);
        check_hostile("'[[' x 100k", "[[", 100000, 0, 0);
        check_hostile("'#' x 100k", "#", 100000, 0, 0);
        check_hostile("'#a' x 100k", "#a", 100000, 1, 0); /* "#a#a...": one tag, then glued */
        check_hostile("'[](' x 100k", "[](", 100000, 0, 0);
        check_hostile("'[](a' x 1M", "[](a", 1000000, 0, 0);
        check_hostile("'[](a(b)c' x 100k", "[](a(b)c", 100000, 0, 0);
        check_hostile("'[a](b \"' x 100k", "[a](b \"", 100000, 0, 0);
        check_hostile("'[a][' x 100k", "[a][", 100000, 0, 0);
        check_hostile("'[a]' x 100k", "[a]", 100000, 0, 0);
        check_hostile("'`' runs 1..32", "` `` ``` ```` ````` `````` ``````` ````````", 10000, 0, 0);
        check_hostile("'<a' x 100k", "<a", 100000, 0, 0);
        check_hostile("'a:' x 100k", "a:", 100000, 0, 0);
        check_hostile("'x' 10 MB line", "xxxxxxxxxx", 1000000, 0, 0);
        check_hostile("'[x](y.md) ' x 100k", "[x](y.md) ", 100000, 0, 100000);
        check_hostile("'#t ' x 100k (1 tag)", "#t ", 100000, 1, 0);
}

static void test_many_distinct_tags(void) {
        size_t n = 50000;
        _cleanup_free_ char *s = malloc(n * 8 + 1);
        size_t len = 0;
        struct derived d;

        REQUIRE(s);
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(s + len, "#t%zu ", i);
        uint64_t t = now_monotonic_usec();
        REQUIRE_INT_EQ(derive_chunk(s, len, 1, &d), 0);
        printf("  %-24s %8zu bytes %8.1f ms\n", "50k distinct tags", len, (now_monotonic_usec() - t) / 1e3);
        CHECK_INT_EQ(d.n_tags, n);
        if (d.n_tags == n) {
                CHECK_STR_EQ(d.tags[0].name, "t0");
                CHECK_STR_EQ(d.tags[n - 1].name, "t49999");
        }
        derived_done(&d);
}

/* Random documents made of the pieces the scanner cares about: whatever
 * comes out must hold what the storage side relies on. Run under ASan and
 * UBSan by scripts/test, this is the fuzzing the scanner gets. */
static void test_random_documents_keep_the_invariants(void) {
        static const char *const pieces[] = {
                "[", "]", "(", ")", "[[", "]]", "![", "#", "##", "`", "```", "~~~", "<", ">", "\\", "\"", "'",
                "|", "%", "%20", "%0", ":", "://", "http", "a", "b1", "_", "-", "/", " ", " ", "    ", "\t",
                "\n", "\n", "\n\n", "---", "...", "tags:", "- ", "> ", "1. ", "[^", "]:", "数", "据", "。",
                "\xC3\xA9", "\xFF", "\xE6\x95", "\xF0\x9F\x98\x80", "\xED\xA0\x80",
        };
        uint32_t state = 12345;
        size_t n_tags = 0, n_links = 0;

        for (int doc = 0; doc < 3000; doc++) {
                char text[600];
                size_t len = 0;
                for (;;) {
                        state = state * 1103515245 + 12345;
                        const char *p = pieces[(state >> 8) % ELEMENTSOF(pieces)];
                        size_t n = strlen(p);
                        if (len + n >= sizeof text)
                                break;
                        memcpy(text + len, p, n);
                        len += n;
                }
                uint32_t start_line = doc % 3 == 0 ? 1 : 1 + state % 1000;
                uint32_t n_lines = 1;
                for (size_t i = 0; i < len; i++)
                        n_lines += text[i] == '\n';

                struct derived d;
                REQUIRE_INT_EQ(derive_chunk(text, len, start_line, &d), 0);
                for (size_t i = 0; i < d.n_tags; i++) {
                        CHECK(d.tags[i].name && d.tags[i].name[0] != '\0' && strlen(d.tags[i].name) <= 256);
                        CHECK(!d.tags[i].is_front_matter || start_line == 1);
                        for (size_t j = 0; j < i; j++)
                                CHECK(strcmp(d.tags[i].name, d.tags[j].name) != 0);
                }
                for (size_t i = 0; i < d.n_links; i++) {
                        const struct derived_link *l = &d.links[i];
                        CHECK(l->target);
                        CHECK(!l->fragment || l->fragment[0] != '\0');
                        CHECK(l->line >= start_line && l->line < start_line + n_lines);
                        CHECK(i == 0 || l->line >= d.links[i - 1].line);
                }
                n_tags += d.n_tags;
                n_links += d.n_links;
                derived_done(&d);
        }
        printf("  %zu tags, %zu links in 3000 documents\n", n_tags, n_links);
        CHECK(n_tags > 100);
        CHECK(n_links > 100);
}

int main(void) {
        RUN(test_inline_tags_are_found);
        RUN(test_tag_may_follow_punctuation);
        RUN(test_hash_glued_to_a_word_is_no_tag);
        RUN(test_numeric_hash_is_no_tag);
        RUN(test_heading_marker_is_no_tag);
        RUN(test_tag_ends_at_punctuation);
        RUN(test_tags_keep_unicode_letters);
        RUN(test_each_tag_once_per_chunk);
        RUN(test_escaped_hash_is_no_tag);
        RUN(test_overlong_tag_is_no_tag);
        RUN(test_fenced_code_hides_tags_and_links);
        RUN(test_unclosed_fence_runs_to_the_end);
        RUN(test_fence_in_a_list_is_code);
        RUN(test_indented_code_hides_tags);
        RUN(test_indented_line_in_a_paragraph_or_list_is_text);
        RUN(test_chunk_starting_with_a_nested_item_is_text);
        RUN(test_code_spans_hide_tags_and_links);
        RUN(test_code_span_may_span_lines);
        RUN(test_unmatched_backticks_are_text);
        RUN(test_url_fragments_are_no_tags);
        RUN(test_html_attributes_are_no_tags);
        RUN(test_front_matter_flow_list);
        RUN(test_front_matter_flow_list_over_lines);
        RUN(test_front_matter_block_list);
        RUN(test_front_matter_plain_values);
        RUN(test_front_matter_invalid_names_are_dropped);
        RUN(test_front_matter_other_keys_are_not_tags);
        RUN(test_front_matter_only_at_line_1);
        RUN(test_front_matter_needs_its_closing_line);
        RUN(test_front_matter_over_max_bytes_keeps_its_tags);
        RUN(test_front_matter_yaml_comments_are_no_tags);
        RUN(test_front_matter_tag_is_not_repeated_inline);
        RUN(test_front_matter_wiki_links_count);
        RUN(test_wiki_link_forms);
        RUN(test_wiki_link_to_own_heading_has_empty_target);
        RUN(test_embeds);
        RUN(test_wiki_link_escaped_pipe_in_table);
        RUN(test_wiki_link_stays_on_its_line);
        RUN(test_wiki_link_innermost_opening_wins);
        RUN(test_markdown_link_forms);
        RUN(test_markdown_links_must_be_local);
        RUN(test_markdown_link_needs_its_syntax);
        RUN(test_percent_decoding_keeps_what_is_no_text);
        RUN(test_reference_links);
        RUN(test_definition_cannot_interrupt_a_paragraph);
        RUN(test_link_lines_are_absolute);
        RUN(test_link_text_may_hold_tags_not_links);
        RUN(test_image_inside_a_link_keeps_the_link);
        RUN(test_links_in_order_of_appearance);
        RUN(test_empty_chunk);
        RUN(test_invalid_utf8_is_survived);
        RUN(test_hostile_inputs_are_linear);
        RUN(test_many_distinct_tags);
        RUN(test_random_documents_keep_the_invariants);
        return check_summary();
}
