#!/usr/bin/env python3
"""quire search in Chinese, Japanese and Korean (words of one, two and
three characters inside longer runs, mixed with Latin words and FTS5
operators), and the --tag filter (front-matter and inline tags, nested
tags, several tags, with the other filters)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

CJK_TREE = {
    "zh.md": "# 数据库\n\n数据库的索引可以加快查询速度。全文搜索引擎使用倒排索引。\n",
    "ja.md": "# 東京\n\n東京都の天気は晴れです。日本語の全文検索はむずかしい。\n",
    "ko.md": "# 검색\n\n한국어 검색 엔진은 형태소 분석을 사용합니다.\n",
    "mixed.md": "# Mixed\n\nSQLite的FTS5支持全文搜索 with bigrams.\n",
    "latin.md": "# Latin\n\nno east asian text, just index and search words.\n",
}

TAG_TREE = {
    "project.md": "---\ntags: [project/alpha, Work]\n---\n# Plan\n\nThe plan for the launch.\n",
    "inline.md": "# Notes\n\nLaunch checklist #urgent and #project/beta items.\n\n"
                 + "filler words " * 30 + "\n\n## Later\n\nAnother launch idea without tags.\n",
    "plain.md": "# Plain\n\nA launch note with no tags at all; #123 is no tag.\n",
}


class CjkSearchTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        for name, text in CJK_TREE.items():
            self.write(name, text)
        self.index(self.notes)

    def files(self, query, *args):
        return sorted(os.path.basename(h["source_file"]) for h in self.search_json(query, *args))

    def test_two_character_words_inside_runs(self):
        self.assertEqual(self.files("数据"), ["zh.md"])
        self.assertEqual(self.files("索引"), ["zh.md"])
        self.assertEqual(self.files("天気"), ["ja.md"])
        self.assertEqual(self.files("검색"), ["ko.md"])
        self.assertEqual(self.files("엔진"), ["ko.md"])

    def test_single_characters_anywhere_in_a_run(self):
        self.assertEqual(self.files("数"), ["zh.md"])
        self.assertEqual(self.files("京"), ["ja.md"])  # second of its run
        self.assertEqual(self.files("す"), ["ja.md"])  # last of its run
        self.assertEqual(self.files("색"), ["ko.md"])  # last of its word
        self.assertEqual(self.files("猫"), [])

    def test_three_character_words_and_order(self):
        self.assertEqual(self.files("数据库"), ["zh.md"])
        self.assertEqual(self.files("据库的"), ["zh.md"])
        self.assertEqual(self.files("東京都"), ["ja.md"])
        self.assertEqual(self.files("库数据"), [])
        self.assertEqual(self.files("都京東"), [])

    def test_words_shared_by_languages_and_phrases(self):
        self.assertEqual(self.files("全文"), ["ja.md", "mixed.md", "zh.md"])
        self.assertEqual(self.files('"全文搜索"'), ["mixed.md", "zh.md"])
        self.assertEqual(self.files("全文 NOT 数据"), ["ja.md", "mixed.md"])

    def test_mixed_with_latin_words(self):
        self.assertEqual(self.files("全文 AND sqlite"), ["mixed.md"])
        self.assertEqual(self.files("搜索 OR index"), ["latin.md", "mixed.md", "zh.md"])
        self.assertEqual(self.files("bigrams"), ["mixed.md"])
        self.assertEqual(self.files("index"), ["latin.md"])

    def test_snippet_shows_the_note_not_the_bigrams(self):
        hit, = self.search_json("索引")
        self.assertIn("**索引**", hit["snippet"])
        self.assertIn("数据库的", hit["snippet"])
        self.assertNotIn("数据 据库", hit["snippet"])
        # Line breaks kept, as in the snippets of the other index.
        self.assertEqual(hit["snippet"], "# 数据库\n\n数据库的**索引**可以加快查询速度。全文搜**索引**擎使用倒排**索引**。")

    def test_vimgrep_points_at_the_word(self):
        out = self.quire("search", "--vimgrep", "天気", expect=0).stdout
        path = os.path.join(self.notes, "ja.md")
        line = "東京都の天気は晴れです。日本語の全文検索はむずかしい。"
        col = len(line[:line.index("天気")].encode()) + 1
        self.assertEqual(out, f"{path}:3:{col}:{line}\n")

    def test_a_file_edited_to_lose_its_cjk_is_found_no_more(self):
        self.write("zh.md", "# gone\n\nnow latin only\n")
        self.index(self.notes)
        self.assertEqual(self.files("数据"), [])
        self.assertEqual(self.files("now"), ["zh.md"])
        self.assertHealthy(self.db)


class TagFilterTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        for name, text in TAG_TREE.items():
            self.write(name, text)
        self.index(self.notes)

    def hits(self, *args, query="launch"):
        return sorted((os.path.basename(h["source_file"]), h["start_line"])
                      for h in self.search_json(query, "--limit", "50", *args))

    def test_inline_tag_holds_for_its_chunk_only(self):
        got = self.hits("--tag", "urgent")
        self.assertEqual(got, [("inline.md", 1)])

    def test_front_matter_tag_holds_for_the_whole_file(self):
        self.assertEqual(self.hits("--tag", "work", query="plan"), [("project.md", 1)])
        self.assertEqual(self.hits("--tag", "#Work"), [("project.md", 1)])

    def test_a_tag_takes_its_nested_tags(self):
        self.assertEqual(self.hits("--tag", "project"), [("inline.md", 1), ("project.md", 1)])
        self.assertEqual(self.hits("--tag", "project/alpha"), [("project.md", 1)])
        self.assertEqual(self.hits("--tag", "proj"), [])

    def test_several_tags_must_all_hold(self):
        self.assertEqual(self.hits("--tag", "project", "--tag", "urgent"), [("inline.md", 1)])
        self.assertEqual(self.hits("--tag", "work", "--tag", "urgent"), [])

    def test_tag_combines_with_path_and_namespace(self):
        self.assertEqual(self.hits("--tag", "project", "--path", "inline.md"), [("inline.md", 1)])
        self.assertEqual(self.hits("--tag", "project", "--namespace", "other"), [])

    def test_numbers_and_untagged_chunks_are_not_tags(self):
        self.assertEqual(self.hits("--tag", "123"), [])
        everything = self.hits()
        self.assertIn(("plain.md", 1), everything)
        self.assertGreater(len(everything), len(self.hits("--tag", "project")))

    def test_empty_tag_is_a_usage_error(self):
        p = self.quire("search", "--tag", "#", "launch", expect=2)
        self.assertOneLine(p.stderr)


if __name__ == "__main__":
    qt.main()
