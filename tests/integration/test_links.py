#!/usr/bin/env python3
"""quire links and quire backlinks: the links a note writes, the notes
that link to it, and how each link resolves (by note name for wiki links,
by path for Markdown links), through edits, renames and deletes, with and
without quired."""

import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

A_NOTE = """# A

Links to [[B]] and to [[B#Second part|the second part]].
An embed: ![[pic.png]]; a path: [see c](sub/c.md#top).
A note nobody wrote: [[Missing]]; the web: [site](https://example.com/b.md).
"""


class LinksTests(qt.QuiredTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        self.a = self.write("a.md", A_NOTE)
        self.b = self.write("B.md", "# B\n\n## Second part\n\ntext\n")
        self.sub_b = self.write("sub/B.md", "# another B\n")
        self.c = self.write("sub/c.md", "# C\n\nBack to [a](../a.md) and [[B]].\n")
        self.d = self.write("other/d.md", "# D\n\nAlso [[b]] here.\n")
        self.pic = self.write("pic.png", b"\x89PNG not a note")

    def links(self, path, *args, expect=0):
        p = self.quire("links", "--json", *args, path, expect=expect)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def backlinks(self, path, *args):
        p = self.quire("backlinks", "--json", *args, path, expect=0)
        return [(h["source_file"], h["line"], h["target"]) for h in map(json.loads, p.stdout.splitlines())]

    def test_links_are_listed_in_order_with_what_they_resolve_to(self):
        self.index(self.notes)
        got = [(h["line"], h["kind"], h["target"], h["fragment"], h["resolved"]) for h in self.links(self.a)]
        self.assertEqual(got, [
            (3, "wiki", "B", None, self.b),
            (3, "wiki", "B", "Second part", self.b),
            (4, "embed", "pic.png", None, self.pic),
            (4, "markdown", "sub/c.md", "top", self.c),
            (5, "wiki", "Missing", None, None),
        ])

    def test_a_wiki_link_prefers_its_own_folder_then_the_shortest_path(self):
        self.index(self.notes)
        self.assertEqual([h["resolved"] for h in self.links(self.c)], [self.a, self.sub_b])
        self.assertEqual([h["resolved"] for h in self.links(self.d)], [self.b])

    def test_backlinks_are_the_links_that_resolve_to_the_note(self):
        self.index(self.notes)
        self.assertEqual(self.backlinks(self.b), [(self.a, 3, "B"), (self.a, 3, "B"), (self.d, 3, "b")])
        # sub/c.md's [[B]] means sub/B.md, not B.md.
        self.assertEqual(self.backlinks(self.sub_b), [(self.c, 3, "B")])
        self.assertEqual(self.backlinks(self.c), [(self.a, 4, "sub/c.md")])
        self.assertEqual(self.backlinks(self.a), [(self.c, 3, "../a.md")])

    def test_text_output_is_one_line_per_link(self):
        self.index(self.notes)
        out = self.quire("links", self.a, expect=0).stdout.splitlines()
        self.assertEqual(out[0], f"{self.a}:3  [[B]]  -> {self.b}")
        self.assertEqual(out[2], f"{self.a}:4  ![[pic.png]]  -> {self.pic}")
        self.assertEqual(out[3], f"{self.a}:4  (sub/c.md#top)  -> {self.c}")
        self.assertEqual(out[4], f"{self.a}:5  [[Missing]]  -> (not found)")
        back = self.quire("backlinks", self.sub_b, expect=0).stdout
        self.assertEqual(back, f"{self.c}:3  [[B]]\n")

    def test_an_edit_adds_and_removes_links(self):
        self.index(self.notes)
        self.write("a.md", A_NOTE.replace("[[Missing]]", "[[Created]]").replace("[[B]] and to ", ""))
        created = self.write("Created.md", "# Created\n")
        self.index(self.notes)
        self.assertEqual(self.backlinks(created), [(self.a, 5, "Created")])
        self.assertEqual(self.backlinks(self.b), [(self.a, 3, "B"), (self.d, 3, "b")])

    def test_a_deleted_note_has_no_backlinks_and_its_links_find_the_next(self):
        self.index(self.notes)
        os.unlink(self.b)
        self.index(self.notes)
        self.assertEqual(self.backlinks(self.b), [])
        # [[B]] in a.md now means the only B left.
        self.assertEqual(self.links(self.a)[0]["resolved"], self.sub_b)

    def test_a_note_moved_under_the_daemon_keeps_its_backlinks(self):
        d = self.start_quired(self.notes)
        self.wait_converged(self.notes, daemon=d)
        archive = os.path.join(self.notes, "archive")
        os.mkdir(archive)
        moved = os.path.join(archive, "B.md")
        os.rename(self.b, moved)
        shutil.rmtree(os.path.join(self.notes, "sub"))
        self.wait_converged(self.notes, daemon=d)
        self.assertEqual(self.backlinks(moved), [(self.a, 3, "B"), (self.a, 3, "B"), (self.d, 3, "b")])
        self.assertEqual(self.backlinks(self.b), [])
        self.assertHealthy(self.db)

    def test_namespace_option_limits_the_links(self):
        self.index("--namespace", "work", self.notes)
        self.assertEqual(len(self.links(self.a, "--namespace", "work")), 5)
        p = self.quire("links", "--namespace", "home", self.a, expect=1)
        self.assertOneLine(p.stderr)
        self.assertIn(f"Failed to look up {self.a}: not in the index", p.stderr)

    def test_usage_errors_exit_2(self):
        for args in (("links",), ("links", "a", "b"), ("backlinks", "--bogus", "a"), ("links", "")):
            with self.subTest(args=args):
                p = self.quire(*args, expect=2)
                self.assertOneLine(p.stderr)

    def test_a_database_without_an_index_is_an_error(self):
        p = self.quire("links", self.a, expect=1)
        self.assertOneLine(p.stderr)

    def test_a_folder_or_a_note_nowhere_is_an_error(self):
        # Both gave nothing and exit 0, which hides a typo; a note with no
        # links, and the backlinks of a note not written yet, do not.
        self.index(self.notes)
        nowhere = os.path.join(self.notes, "no-such-note.md")
        for args, cause in ((("links", self.notes), "not a note"),
                            (("links", nowhere), "no such note on disk, nor in the index")):
            with self.subTest(args=args):
                p = self.quire(*args, expect=1)
                self.assertOneLine(p.stderr)
                self.assertIn(f"Failed to look up {args[1]}: {cause}", p.stderr)
                self.assertEqual(p.stdout, "")
        self.assertEqual(self.quire("backlinks", nowhere, expect=0).stdout, "")
        plain = self.write("plain.md", "# Plain\n\nNo links here.\n")
        self.index(self.notes)
        self.assertEqual(self.quire("links", plain, expect=0).stdout, "")

    def test_a_note_the_index_does_not_hold_is_an_error(self):
        # A file outside every root, or under another --db: its links were
        # an empty answer and exit 0.
        self.index(self.notes)
        outside = os.path.join(self.tmp, "outside.md")
        with open(outside, "w") as f:
            f.write("# Outside\n\n[[B]]\n")
        p = self.quire("links", outside, expect=1)
        self.assertOneLine(p.stderr)
        self.assertIn(f"Failed to look up {outside}: not in the index (quire index it, or see --db)", p.stderr)
        self.assertEqual(p.stdout, "")
        # Backlinks of a file that is no note (an embedded image) are fine.
        self.assertEqual(self.backlinks(self.pic), [(self.a, 4, "pic.png")])

    def test_backlinks_of_a_note_not_written_yet(self):
        # They were always empty: only links that resolve were listed, and
        # nothing resolves to a note that is not there.
        self.write("todo-list.md", "# Todo\n\n[first](later/todo.md) and [[Todo]]\n")
        self.index(self.notes)
        todo = os.path.join(self.notes, "later", "todo.md")
        hits = [json.loads(line) for line in self.quire("backlinks", "--json", todo, expect=0).stdout.splitlines()]
        self.assertEqual([(h["source_file"], h["line"], h["target"], h["resolved"]) for h in hits],
                         [(os.path.join(os.path.dirname(self.a), "todo-list.md"), 3, "later/todo.md", None),
                          (os.path.join(os.path.dirname(self.a), "todo-list.md"), 3, "Todo", None)])
        self.assertEqual(self.backlinks(os.path.join(self.notes, "Missing.md")), [(self.a, 5, "Missing")])
        # Once written, the same links resolve to it; a name another note
        # answers to is not listed for a note that does not exist.
        os.makedirs(os.path.dirname(todo))
        with open(todo, "w") as f:
            f.write("# Todo\n")
        self.index(self.notes)
        self.assertEqual(self.backlinks(todo), [(os.path.join(os.path.dirname(self.a), "todo-list.md"), 3,
                                                 "later/todo.md"),
                                                (os.path.join(os.path.dirname(self.a), "todo-list.md"), 3, "Todo")])
        self.assertEqual(self.backlinks(os.path.join(self.notes, "elsewhere", "todo.md")), [])

    def test_relative_wiki_links_resolve_by_the_path_they_spell(self):
        # Obsidian's "relative path" setting writes [[../b/Note]]: it was
        # never resolved (no note's path ends with "../b/Note").
        other = self.write("rel/b/other.md", "# Other\n")
        self.write("rel/a/other.md", "# Other, not meant\n")
        s = self.write("rel/a/s.md", "# S\n\n[[../b/other]] [[./other]] [[../B/Other.md]] [[../c/other]]\n")
        self.index(self.notes)
        near = os.path.join(os.path.dirname(s), "other.md")
        self.assertEqual([(h["target"], h["resolved"]) for h in self.links(s)],
                         [("../b/other", other), ("./other", near), ("../B/Other.md", other), ("../c/other", None)])
        self.assertEqual(self.backlinks(other), [(s, 3, "../b/other"), (s, 3, "../B/Other.md")])

    def test_link_edge_cases(self):
        # From review: an empty note (a files row, no chunk) was "not in
        # the index"; a relative link took a folder differing in case over
        # its own; unwritten backlinks listed links that name another
        # folder; "new//deep" did not match; a symlink to a folder was
        # looked up; link targets reached the terminal raw.
        empty = self.write("x/empty.md", "")
        upper = self.write("rel/A/other.md", "# Other A\n")
        lower = self.write("rel/a/other.md", "# Other a\n")
        s = self.write("rel/a/s.md", "# S\n\n[[./other]] [[../a/other]] [[x/Later]] [[Later]] [[../../zzz/Later]]\n"
                                     "[m](new/deep/Later.md) [[esc\x1b[31mred]]\n")
        self.index(self.notes)
        self.assertEqual(self.quire("links", empty, expect=0).stdout, "")
        self.assertEqual([h["resolved"] for h in self.links(s)][:2], [lower, lower])
        self.assertEqual(self.backlinks(lower), [(s, 3, "./other"), (s, 3, "../a/other")])
        self.assertEqual(self.backlinks(upper), [])
        later = os.path.join(self.notes, "y", "Later.md")
        self.assertEqual(self.backlinks(later), [(s, 3, "Later")])
        self.assertEqual(self.backlinks(os.path.join(self.notes, "rel", "a", "x", "Later.md")),
                         [(s, 3, "x/Later"), (s, 3, "Later")])
        deep = os.path.join(os.path.dirname(s), "new", "deep", "Later.md")
        self.assertEqual(self.backlinks(deep), self.backlinks(deep.replace("/new/", "/new//")))
        self.assertIn((s, 4, "new/deep/Later.md"), self.backlinks(deep))
        dirlink = os.path.join(self.tmp, "dirlink")
        os.symlink(os.path.join(self.notes, "rel"), dirlink)
        for cmd in ("links", "backlinks"):
            p = self.quire(cmd, dirlink, expect=1)
            self.assertIn(f"Failed to look up {dirlink}: not a note", p.stderr)
        out = self.quire("links", s, expect=0).stdout
        self.assertIn("[[esc\\x1b[31mred]]", out)
        self.assertNotIn("\x1b", out)

    def test_a_symlink_names_its_note(self):
        self.index(self.notes)
        alias = os.path.join(self.tmp, "alias.md")
        os.symlink(self.b, alias)
        self.assertEqual(self.backlinks(alias), self.backlinks(self.b))
        self.assertEqual(len(self.backlinks(alias)), 3)
        alias_a = os.path.join(self.tmp, "alias-a.md")
        os.symlink(self.a, alias_a)
        self.assertEqual(self.links(alias_a), self.links(self.a))
        self.assertEqual(len(self.links(alias_a)), 5)

    def test_text_output_quotes_odd_names(self):
        odd = self.write("odd\nname.md", "# Odd\n\n[[B]]\n")
        self.index(self.notes)
        out = self.quire("backlinks", self.b, expect=0).stdout
        self.assertIn(f'"{os.path.dirname(self.b)}/odd\\nname.md":3  [[B]]\n', out)
        self.assertNotIn("odd\nname", out)
        out = self.quire("links", odd, expect=0).stdout
        self.assertEqual(out.count("\n"), 1, out)


if __name__ == "__main__":
    qt.main()
