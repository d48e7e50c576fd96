#!/usr/bin/env python3
"""quire search: filters, output formats, stale hits and the FTS5 query
syntax, on small trees written by each test."""

import errno
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from quiretest import doc, unquote_path  # noqa: E402


def run_on_pty(argv, env, cwd=None):
    """Run argv with its stdout on a new pseudo-terminal (stdin and stderr
    not); returns (exit status, what it wrote to the terminal)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE)
    finally:
        os.close(slave)
    out = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError as e:  # EIO: every writer has closed the terminal
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    p.stderr.read()
    p.stderr.close()
    return p.wait(timeout=qt.RUN_TIMEOUT), bytes(out)


VIMGREP_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+):(?P<text>.*)$")


class SearchTestCase(qt.NotesTestCase):
    def json_lines(self, *args, **kwargs):
        """quire search --json ARGS, each line parsed; the lines must be
        valid UTF-8 JSON."""
        p = self.quire("search", "--json", *args, expect=0, text=False, **kwargs)
        return [json.loads(line.decode("utf-8")) for line in p.stdout.splitlines()]

    def files(self, *args, **kwargs):
        """The source_files of quire search --json ARGS, in order."""
        return [h["source_file"] for h in self.json_lines(*args, **kwargs)]

    def rel_files(self, *args, **kwargs):
        """The same, relative to self.root, sorted."""
        return sorted(os.path.relpath(f, self.root) for f in self.files(*args, **kwargs))

    def usage_error(self, *args):
        """quire search ARGS must be a usage error: exit 2, one line on
        stderr, nothing on stdout. Returns the line."""
        p = self.quire("search", *args, expect=2)
        self.assertOneLine(p.stderr)
        self.assertTrue(p.stderr.startswith("quire: "), p.stderr)
        self.assertEqual(p.stdout, "")
        return p.stderr


class PathFilterTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        for rel in ("linux/ls.md", "linux/deep/find.md", "common/tar.md", "osx/ls.md", "linuxish/x.md",
                    "common/linux.md"):
            self.write(rel, f"# {rel}\n\nsharedword in {rel}\n")
        self.index(self.notes)

    def test_relative_pattern_matches_at_any_depth(self):
        self.assertEqual(self.rel_files("sharedword", "--path", "linux/*"), ["linux/deep/find.md", "linux/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "*/common/*"), ["common/linux.md", "common/tar.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "ls.md"), ["linux/ls.md", "osx/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "lin*/*.md"),
                         ["linux/deep/find.md", "linux/ls.md", "linuxish/x.md"])

    def test_a_directory_pattern_takes_what_is_under_it(self):
        for pattern in ("linux", "linux/", "notes/linux"):
            with self.subTest(pattern=pattern):
                self.assertEqual(self.rel_files("sharedword", "--path", pattern),
                                 ["linux/deep/find.md", "linux/ls.md"])
        # A name is a whole path component: linux does not take linuxish/
        # or common/linux.md's directory.
        self.assertEqual(self.rel_files("sharedword", "--path", "deep"), ["linux/deep/find.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "inux"), [])

    def test_absolute_pattern_is_anchored(self):
        self.assertEqual(self.rel_files("sharedword", "--path", self.path("osx")), ["osx/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", self.path("*/ls.md")), ["linux/ls.md", "osx/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "/linux"), [])
        self.assertEqual(len(self.files("sharedword", "--path", "/", "-l", "100")), 6)
        self.assertEqual(self.rel_files("sharedword", "--path", self.path("common") + "//"),
                         ["common/linux.md", "common/tar.md"])
        # Spelled otherwise than the realpath the index holds: "//", "/./"
        # and a symlink on the way matched nothing.
        link = os.path.join(self.tmp, "notes-link")
        os.symlink(self.notes, link)
        to_common = os.path.join(self.tmp, "common-link")
        os.symlink(os.path.join(self.notes, "common"), to_common)
        for spelled in (self.notes + "//common", self.notes + "/./common/*.md", link + "/common",
                        link + "/./com*/", to_common, to_common + "/"):
            with self.subTest(spelled=spelled):
                self.assertEqual(self.rel_files("sharedword", "--path", spelled), ["common/linux.md", "common/tar.md"])

    def test_dot_pattern_is_relative_to_the_current_directory(self):
        self.assertEqual(self.rel_files("sharedword", "--path", "./linux", cwd=self.notes),
                         ["linux/deep/find.md", "linux/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", "../osx", cwd=os.path.join(self.notes, "linux")),
                         ["osx/ls.md"])
        self.assertEqual(self.rel_files("sharedword", "--path", ".", cwd=os.path.join(self.notes, "common")),
                         ["common/linux.md", "common/tar.md"])
        # Paths are stored by realpath, so a symlinked working directory
        # still finds them.
        link = os.path.join(self.tmp, "link-to-notes")
        os.symlink(self.notes, link)
        self.assertEqual(self.rel_files("sharedword", "--path", "./osx/*", cwd=link), ["osx/ls.md"])
        # ./linux from elsewhere is not any linux.
        self.assertEqual(self.rel_files("sharedword", "--path", "./linux", cwd=self.tmp), [])

    def test_sets_and_escapes_read_as_in_a_shell(self):
        # The glob went to SQLite as typed, where "[!a]" is the set of '!'
        # and 'a', the very opposite of the shell, fnmatch(3) and
        # .quireignore, and a backslash escapes nothing.
        for rel in ("sets/a.md", "sets/b.md", "sets/c.md", "sets/!.md", "sets/[x].md", "sets/*.md", "sets/x]y.md"):
            self.write(rel, f"# {rel}\n\nsetword in {rel}\n")
        self.index(self.notes)
        self.assertEqual(self.rel_files("setword", "--path", "sets/[!a].md"),
                         ["sets/!.md", "sets/*.md", "sets/b.md", "sets/c.md"])
        self.assertEqual(self.rel_files("setword", "--path", "sets/[^a!*[].md"), ["sets/b.md", "sets/c.md"])
        self.assertEqual(self.rel_files("setword", "--path", "sets/[ab].md"), ["sets/a.md", "sets/b.md"])
        self.assertEqual(self.rel_files("setword", "--path", r"sets/\[x].md"), ["sets/[x].md"])
        self.assertEqual(self.rel_files("setword", "--path", r"sets/\*.md"), ["sets/*.md"])
        self.assertEqual(self.rel_files("setword", "--path", "sets/[x.md"), [])
        # Inside a set: a backslash escapes (a ']' too), POSIX classes.
        self.assertEqual(self.rel_files("setword", "--path", r"sets/x[\]]y.md"), ["sets/x]y.md"])
        self.assertEqual(self.rel_files("setword", "--path", r"sets/[!\!a].md"), ["sets/*.md", "sets/b.md", "sets/c.md"])
        self.assertEqual(self.rel_files("setword", "--path", "sets/[[:alpha:]].md"), ["sets/a.md", "sets/b.md", "sets/c.md"])
        self.assertEqual(self.rel_files("setword", "--path", "sets/[]x]*.md"), ["sets/x]y.md"])
        self.assertEqual(self.rel_files("setword", "--path", "./sets/[!abc!].md", cwd=self.notes), ["sets/*.md"])

    def test_path_combines_with_the_query_and_the_namespace(self):
        other = os.path.join(self.tmp, "other")
        self.write("linux/ls.md", "# ls\n\nsharedword otherword\n", root=other)
        self.index("-n", "other", other)
        self.assertEqual(self.files("sharedword", "--path", "linux/ls.md", "-n", "other"),
                         [os.path.join(os.path.realpath(other), "linux/ls.md")])
        self.assertEqual(sorted(self.files("sharedword", "--path", "linux/ls.md")),
                         sorted([self.path("linux/ls.md"), os.path.join(os.path.realpath(other), "linux/ls.md")]))
        self.assertEqual(self.files("otherword", "--path", "osx"), [])
        self.assertEqual(self.rel_files("find", "--path", "linux"), ["linux/deep/find.md"])

    def test_glob_characters_in_the_working_directory_are_literal(self):
        odd = os.path.join(self.tmp, "odd[1]*")
        self.write("n.md", "# n\n\nsharedword\n", root=odd)
        self.index(odd)
        self.assertEqual(self.files("sharedword", "--path", "./n.md", cwd=odd),
                         [os.path.join(os.path.realpath(odd), "n.md")])

    def test_empty_pattern_is_a_usage_error(self):
        self.assertIn("--path", self.usage_error("--path", "", "sharedword"))

    def test_overlong_pattern_is_a_usage_error_about_it(self):
        # Past SQLite's GLOB limit the error blamed the query.
        err = self.usage_error("--path", "a" * 100000, "sharedword")
        self.assertIn("--path pattern longer than", err)
        self.assertNotIn("query", err)
        self.assertEqual(self.files("sharedword", "--path", "*" + "?" * 30000), [])


class HeadingFilterTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        self.write("guide.md", doc("Guide",
                                   qt.section("Installation", ["pickword", "alpha"]),
                                   qt.section("Usage", ["pickword", "beta"]),
                                   qt.section("Übersicht der Optionen", ["pickword", "gamma"]),
                                   qt.section('Say "hi" \\ there', ["pickword", "delta"])))
        self.write("other.md", doc("Other", qt.section("Install notes", ["pickword", "epsilon"])))
        self.index(self.notes)

    def headings(self, *args, query="pickword"):
        return sorted(" > ".join(h["heading_hierarchy"]) for h in self.json_lines(query, *args))

    def test_heading_is_a_case_insensitive_substring_of_the_path(self):
        self.assertEqual(self.headings("--heading", "INSTALL"), ["Guide > Installation", "Other > Install notes"])
        self.assertEqual(self.headings("--heading", "usage"), ["Guide > Usage"])
        self.assertEqual(self.headings("--heading", "guide > inst"), ["Guide > Installation"])
        self.assertEqual(self.headings("--heading", "nothing like it"), [])

    def test_heading_folds_non_ascii_case(self):
        self.assertEqual(len(self.headings()), 5)
        self.assertEqual(self.headings("--heading", "ÜBERSICHT"), ["Guide > Übersicht der Optionen"])
        self.assertEqual(self.headings("--heading", "übersicht der"), ["Guide > Übersicht der Optionen"])

    def test_heading_with_quotes_and_backslashes(self):
        self.assertEqual(self.headings("--heading", 'say "HI" \\'), ['Guide > Say "hi" \\ there'])

    def test_heading_combines_with_path_and_query(self):
        self.assertEqual(self.headings("--heading", "install", "--path", "other.md"), ["Other > Install notes"])
        hits = self.json_lines("alpha OR epsilon", "--heading", "guide")
        self.assertEqual([h["heading_hierarchy"] for h in hits], [["Guide", "Installation"]])

    def test_heading_of_a_section_packed_into_the_chunk_before(self):
        # Short sections share a chunk whose heading_hierarchy is the
        # first section's: --heading missed the others' headings. A '#'
        # line in a code block is no heading, here as in the index.
        self.write("packed.md", "# Packed\n\nbody\n\n## Short sub\n\npackword\n\nSetext too\n----------\n\n"
                                "more packword\n\n```sh\n# not a heading\n```\n")
        self.index(self.notes)
        hits = self.json_lines("packword")
        self.assertEqual([h["heading_hierarchy"] for h in hits], [["Packed"]])
        for heading in ("short sub", "packed > short", "SETEXT", "packed"):
            with self.subTest(heading=heading):
                self.assertEqual(self.headings("--heading", heading, query="packword"), ["Packed"])
        for heading in ("not a heading", "short sub > setext", "body"):
            with self.subTest(heading=heading):
                self.assertEqual(self.headings("--heading", heading, query="packword"), [])
        # A chunk below the top: its path's upper headings go in front of
        # the ones inside it, the siblings of its own heading included.
        body = "long body text. " * 30
        self.write("deep.md", f"# Guide\n\n{body}\n\n## Install\n\nshort\n\n### Linux\n\ndeepword\n\n"
                              "## Other\n\ndeepword too\n")
        self.index(self.notes)
        self.assertEqual([h["heading_hierarchy"] for h in self.json_lines("deepword")], [["Guide", "Install"]])
        for heading in ("guide > install > linux", "install > linux", "guide > other"):
            with self.subTest(heading=heading):
                self.assertEqual(self.headings("--heading", heading, query="deepword"), ["Guide > Install"])
        for heading in ("guide > linux", "install > other"):
            with self.subTest(heading=heading):
                self.assertEqual(self.headings("--heading", heading, query="deepword"), [])
        # Folding takes 'İ' to 'i': no ASCII shortcut may rule it out.
        self.write("folded.md", "# Städte\n\nbody\n\n## İstanbul\n\nfoldword\n")
        self.index(self.notes)
        self.assertEqual(self.headings("--heading", "istanbul", query="foldword"), ["Städte"])

    def test_long_heading_paths(self):
        # Longer than the filter's on-stack buffer (256 bytes of JSON), each
        # heading under the chunker's cut (256 bytes).
        long_title = "Kapitel " + "lang " * 38 + "ENDE"
        sub_title = "Über alles " + "und noch mehr " * 8 + "SCHLUSS"
        self.write("long.md", doc(long_title, qt.section(sub_title, ["pickword", "zeta"])))
        self.index(self.notes)
        path = f"{long_title} > {sub_title}"
        self.assertGreater(len(json.dumps([long_title, sub_title])), 256)
        self.assertEqual(self.headings("--heading", "lang ende > über ALLES"), [path])
        self.assertEqual(self.headings("--heading", "mehr schluss"), [path])
        self.assertEqual(self.headings("--heading", "mehr schluss!"), [])

    def test_heading_json_as_a_foreign_writer_may_spell_it(self):
        # \u escapes (a surrogate pair too), and values that are not an
        # array of strings: those have no heading path, and are no error.
        self.write("foreign.md", "# Foreign\n\nforeignword escaped\n")
        self.write("broken.md", "# Broken\n\nforeignword broken\n")
        self.write("numbers.md", "# Numbers\n\nforeignword numbers\n")
        self.index(self.notes)
        for name, value in (("foreign.md", r'["\u00dcbersicht", "Emoji \ud83d\ude00 \"q\" \\ end"]'),
                            ("broken.md", "not json [ at all"), ("numbers.md", "[1, 2]")):
            qt.query(self.db, "UPDATE chunks SET heading_hierarchy = ? WHERE source_file = ?", (value, self.path(name)))
        self.assertEqual(self.rel_files("foreignword"), ["broken.md", "foreign.md", "numbers.md"])
        self.assertEqual(self.rel_files("foreignword", "--heading", "ÜBERSICHT > emoji \U0001F600"), ["foreign.md"])
        self.assertEqual(self.rel_files("foreignword", "--heading", '"q" \\ end'), ["foreign.md"])
        self.assertEqual(self.rel_files("foreignword", "--heading", "json"), [])
        self.assertEqual(self.rel_files("foreignword", "--heading", "1"), [])
        hits = {os.path.basename(h["source_file"]): h["heading_hierarchy"] for h in self.json_lines("foreignword")}
        self.assertEqual(hits["broken.md"], [])

    def test_heading_json_over_several_lines_prints_on_one(self):
        # Whitespace is JSON too (Python's json.dumps(h, indent=2)): --json
        # still prints one object per line, its heading_hierarchy a list;
        # a JSON value that is not an array is no heading path.
        self.write("pretty.md", "# Pretty\n\nforeignword pretty\n")
        self.write("string.md", "# String\n\nforeignword string\n")
        self.index(self.notes)
        for name, value in (("pretty.md", json.dumps(["Pretty", "Sub"], indent=2)), ("string.md", '"String"')):
            qt.query(self.db, "UPDATE chunks SET heading_hierarchy = ? WHERE source_file = ?", (value, self.path(name)))
        out = self.quire("search", "--json", "foreignword", expect=0).stdout
        self.assertEqual(len(out.splitlines()), 2, out)
        hits = {os.path.basename(h["source_file"]): h["heading_hierarchy"] for h in self.json_lines("foreignword")}
        self.assertEqual(hits, {"pretty.md": ["Pretty", "Sub"], "string.md": []})
        text = self.quire("search", "foreignword", expect=0).stdout
        self.assertIn("pretty.md:1-3  Pretty > Sub\n", text)
        self.assertIn("string.md:1-3\n", text)

    def test_empty_heading_is_a_usage_error(self):
        self.assertIn("--heading", self.usage_error("--heading", "", "pickword"))


class LimitOffsetTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        # Distinct scores: the word 1..6 times.
        for i in range(1, 7):
            self.write(f"n{i}.md", f"# n{i}\n\n" + " ".join(["rankword"] * i) + f" filler{i} text\n")
        self.index(self.notes)

    def test_offset_pages_through_the_ranking(self):
        everything = self.files("rankword", "--limit", "100")
        self.assertEqual(len(everything), 6)
        self.assertEqual(self.files("rankword", "--limit", "2", "--offset", "2"), everything[2:4])
        self.assertEqual(self.files("rankword", "--offset", "5"), everything[5:])
        self.assertEqual(self.files("rankword", "--offset", "0", "-l", "1"), everything[:1])
        self.assertEqual(self.files("rankword", "--offset", "6"), [])

    def test_bad_offset_is_a_usage_error(self):
        for value in ("-1", "x", "", "1e3"):
            with self.subTest(value=value):
                self.assertIn("--offset", self.usage_error("--offset", value, "rankword"))


class FormatTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        self.write("a.md", "# Alpha\n\nfirst line without it\nsecond line: café xylophone here\nlast\n")
        self.write("b.md", doc("Bravo", qt.section("One", ["commonword", "one"]), qt.section("Two", ["commonword"]),
                               qt.section("Three", ["commonword", "commonword"])))
        self.write("c.md", "# Charlie\n\ncommonword once\n")
        self.index(self.notes)

    def test_two_formats_are_a_usage_error(self):
        for pair in (("--json", "--vimgrep"), ("--vimgrep", "--files"), ("--files", "--json")):
            with self.subTest(pair=pair):
                line = self.usage_error(*pair, "commonword")
                self.assertIn(pair[0], line)
                self.assertIn(pair[1], line)
        # The same one twice is still one format.
        self.assertEqual(len(self.json_lines("--json", "commonword")), 4)

    def test_text_format_names_file_lines_heading_and_snippet(self):
        out = self.quire("search", "xylophone", expect=0).stdout.splitlines()
        self.assertEqual(out, [f"{self.path('a.md')}:1-5  Alpha",
                               "    # Alpha  first line without it second line: café **xylophone** here last"])

    def test_snippet_of_a_chunk_that_repeats_a_word_40000_times(self):
        # FTS5's snippet() scores every match against every other: on this
        # chunk (one paragraph, which the chunker cannot cut) it took
        # about half a minute, in one step the search deadline cannot
        # stop, so the search failed with "took too long". A chunk past
        # the chunker's sizes gets its snippet cut from highlight().
        self.write("huge.md", "# Huge\n\nthe words before it " + "headword " * 40000 + "and after\n")
        self.index(self.notes)
        hits = self.json_lines("headword")
        self.assertEqual([h["source_file"] for h in hits], [self.path("huge.md")])
        snippet = hits[0]["snippet"]
        self.assertTrue(snippet.startswith("...") and snippet.endswith("..."), snippet)
        self.assertIn("the words before it **headword** **headword**", snippet)
        self.assertEqual(len(snippet.strip(".").split()), 16, snippet)
        # And where the match is far in: the words before it, then it.
        self.write("late.md", "# Late\n\n" + " ".join(f"w{i}" for i in range(3000)) + " lateword w\n")
        self.index(self.notes)
        self.assertEqual([h["snippet"] for h in self.json_lines("lateword")],
                         ["...w2996 w2997 w2998 w2999 **lateword** w"])
        # Line breaks stay, as FTS5's snippet() keeps them (below), and
        # the text format puts a snippet on one line itself. A fence is
        # never cut, so this one is a chunk of its own past the sizes.
        fence = "\n".join(" ".join(f"w{i}" for i in range(j, j + 10)) for j in range(0, 3000, 10))
        self.write("fence.md", "# Fence\n\n```\n" + fence + " fenceword\nw\n```\n")
        self.index(self.notes)
        self.assertEqual([h["snippet"] for h in self.json_lines("fenceword")],
                         ["...w2996 w2997 w2998 w2999 **fenceword**\nw\n```"])
        self.assertEqual(self.quire("search", "fenceword", expect=0).stdout.splitlines()[1],
                         "    ...w2996 w2997 w2998 w2999 **fenceword** w ```")
        # A chunk of the chunker's sizes keeps FTS5's snippet.
        self.assertEqual([h["snippet"] for h in self.json_lines("xylophone")],
                         ["# Alpha\n\nfirst line without it\nsecond line: café **xylophone** here\nlast"])

    def test_json_keeps_its_fields_and_adds_stale(self):
        hits = self.json_lines("commonword")
        self.assertEqual(len(hits), 4)
        for h in hits:
            self.assertEqual(set(h), {"id", "namespace", "source_file", "start_line", "end_line",
                                      "heading_hierarchy", "score", "snippet", "stale"})
            self.assertIs(h["stale"], False)

    def test_vimgrep_points_at_the_first_match(self):
        p = self.quire("search", "--vimgrep", "xylophone", expect=0, text=False)
        lines = p.stdout.decode("utf-8").splitlines()
        self.assertEqual(lines, [f"{self.path('a.md')}:4:20:second line: café xylophone here"])
        # The column counts bytes (é is two), as vim's %c and ripgrep do.
        with open(os.path.join(self.notes, "a.md"), "rb") as f:
            line4 = f.read().split(b"\n")[3]
        self.assertTrue(line4[20 - 1:].startswith(b"xylophone"))

    def test_vimgrep_line_and_column_for_phrases_prefixes_and_later_chunks(self):
        for query in ('"café xylophone"', "xyloph*", "here AND xylophone"):
            with self.subTest(query=query):
                m = VIMGREP_RE.match(self.quire("search", "--vimgrep", query, expect=0).stdout.rstrip("\n"))
                self.assertIsNotNone(m)
                # The first matched word in the chunk, whichever comes first.
                expect = (4, 14) if query.startswith('"') else (4, 20)
                self.assertEqual((int(m["line"]), int(m["col"])), expect)
        # One line per hit, each at a line of its file that holds the word.
        lines = self.quire("search", "--vimgrep", "--limit", "50", "commonword", expect=0).stdout.splitlines()
        self.assertEqual(len(lines), 4)
        for line in lines:
            m = VIMGREP_RE.match(line)
            with open(m["file"], encoding="utf-8") as f:
                file_line = f.read().split("\n")[int(m["line"]) - 1]
            self.assertEqual(file_line, m["text"])
            self.assertTrue(file_line[int(m["col"]) - 1:].startswith("commonword"), line)

    def test_vimgrep_match_outside_the_content_is_the_chunks_first_line(self):
        # "Bravo" is in the heading path of every chunk of b.md; restricted
        # to that column, the query matches no word of any chunk's content
        # (not even the "# Bravo" line of the first).
        lines = self.quire("search", "--vimgrep", "heading_hierarchy: bravo", "--limit", "10",
                           expect=0).stdout.splitlines()
        starts = {r["start_line"] for r in self.json_lines("heading_hierarchy: bravo", "--limit", "10")}
        self.assertEqual(len(lines), len(starts))
        self.assertGreater(len(lines), 1)
        got = {(int(m["line"]), int(m["col"])) for m in map(VIMGREP_RE.match, lines)}
        self.assertEqual(got, {(s, 1) for s in starts})
        self.assertIn(1, starts)
        # Unrestricted, the first chunk's match is the word in its heading line.
        lines = self.quire("search", "--vimgrep", "bravo", "--path", "b.md", expect=0).stdout.splitlines()
        got = {(int(m["line"]), int(m["col"])) for m in map(VIMGREP_RE.match, lines)}
        self.assertEqual(got, {(1, 3)} | {(s, 1) for s in starts if s != 1})
        self.assertIn(f"{self.path('b.md')}:1:3:# Bravo", lines)

    @unittest.skipUnless(shutil.which("vim"), "vim is not installed")
    def test_vim_reads_vimgrep_output_as_a_quickfix_list(self):
        qf = os.path.join(self.tmp, "qf.txt")
        out = os.path.join(self.tmp, "qf-out.txt")
        with open(qf, "w", encoding="utf-8") as f:
            f.write(self.quire("search", "--vimgrep", "xylophone OR commonword", expect=0).stdout)
        # Vim's own errorformat (-u NONE), no terminal: each entry's file,
        # line, column and text as vim understood them.
        subprocess.run(["vim", "-u", "NONE", "-N", "-es", "-c", f"cfile {qf}", "-c", f"redir! > {out}",
                        "-c", "for e in getqflist() | echo e.valid bufname(e.bufnr) e.lnum e.col e.text | endfor",
                        "-c", "redir END", "-c", "qa!"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=self.env(), timeout=60, check=False)
        with open(out, encoding="utf-8") as f:
            entries = [line.split(" ", 4) for line in f.read().splitlines() if line]
        self.assertEqual(len(entries), 5)  # xylophone once, commonword in four chunks
        self.assertIn(["1", self.path("a.md"), "4", "20", "second line: café xylophone here"], entries)
        self.assertEqual({e[0] for e in entries}, {"1"})
        self.assertEqual({e[1] for e in entries}, {self.path("a.md"), self.path("b.md"), self.path("c.md")})

    def test_files_lists_distinct_paths_best_first(self):
        hits = self.json_lines("commonword", "--limit", "50")
        best_first = list(dict.fromkeys(h["source_file"] for h in hits))
        self.assertEqual(len(hits), 4)
        self.assertEqual(len(best_first), 2)
        p = self.quire("search", "--files", "commonword", expect=0)
        self.assertEqual(p.stdout.splitlines(), best_first)
        # --limit and --offset count files, not chunks.
        self.assertEqual(self.quire("search", "--files", "-l", "1", "commonword", expect=0).stdout.splitlines(),
                         best_first[:1])
        self.assertEqual(self.quire("search", "--files", "--offset", "1", "commonword",
                                    expect=0).stdout.splitlines(), best_first[1:])
        self.assertEqual(self.quire("search", "--files", "--offset", "2", "commonword", expect=0).stdout, "")

    def test_files_with_many_files(self):
        for i in range(70):
            self.write(f"many/m{i:02}.md", f"# m{i}\n\nmanyword " + "filler " * i + "\n")
        self.index(self.notes)
        lines = self.quire("search", "--files", "--limit", "1000", "manyword", expect=0).stdout.splitlines()
        self.assertEqual(sorted(lines), [self.path(f"many/m{i:02}.md") for i in range(70)])
        self.assertEqual(lines, [h["source_file"] for h in self.json_lines("manyword", "--limit", "1000")])

    def test_help_documents_the_query_syntax_and_formats(self):
        text = self.quire("search", "--help", db=False, expect=0).stdout
        for needle in ('"exact words"', "index*", "AND", "OR", "NOT", "NEAR(a b, 5)", "heading_hierarchy:",
                       "--path", "--heading", "--offset", "--json", "--vimgrep", "--files", "--color", "NO_COLOR",
                       "[stale]"):
            self.assertIn(needle, text)


class StaleTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        for name in ("same", "edited", "gone", "touched"):
            self.write(f"{name}.md", f"# {name}\n\nstaleword in {name}\n")
        self.index(self.notes)
        self.write("edited.md", "# edited\n\nstaleword in edited, and more text now\n")
        os.unlink(os.path.join(self.notes, "gone.md"))
        st = os.stat(os.path.join(self.notes, "touched.md"))
        os.utime(os.path.join(self.notes, "touched.md"), ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.stale = {self.path(f"{n}.md") for n in ("edited", "gone", "touched")}
        self.fresh = {self.path("same.md")}

    def test_json_says_stale_on_every_hit(self):
        hits = self.json_lines("staleword")
        self.assertEqual({h["source_file"]: h["stale"] for h in hits},
                         {**{f: True for f in self.stale}, **{f: False for f in self.fresh}})

    def test_text_marks_the_location_line(self):
        lines = self.quire("search", "staleword", expect=0).stdout.splitlines()
        locations = [line for line in lines if not line.startswith("    ")]
        self.assertEqual(len(locations), 4)
        for line in locations:
            path = line.split(":")[0]
            self.assertEqual("[stale]" in line, path in self.stale, line)
            if path in self.stale:
                self.assertRegex(line, r"^/\S+:\d+-\d+ \[stale\]  ")

    def test_vimgrep_puts_the_marker_before_the_text(self):
        lines = self.quire("search", "--vimgrep", "staleword", expect=0).stdout.splitlines()
        self.assertEqual(len(lines), 4)
        for line in lines:
            m = VIMGREP_RE.match(line)
            self.assertEqual((int(m["line"]), int(m["col"])), (3, 1))
            stale = m["file"] in self.stale
            self.assertEqual(m["text"].startswith("[stale] "), stale, line)
            self.assertTrue(m["text"].removeprefix("[stale] ").startswith("staleword in "), line)

    def test_files_adds_a_tab_separated_marker(self):
        lines = self.quire("search", "--files", "staleword", expect=0).stdout.splitlines()
        fields = dict(line.split("\t") if "\t" in line else (line, "") for line in lines)
        self.assertEqual(fields, {**{f: "[stale]" for f in self.stale}, **{f: "" for f in self.fresh}})

    def test_reindex_clears_the_mark(self):
        self.index(self.notes)
        hits = self.json_lines("staleword")
        self.assertEqual(len(hits), 3)
        self.assertEqual({h["stale"] for h in hits}, {False})


class QuerySyntaxTests(SearchTestCase):
    """FTS5's syntax through quire search: each query pinned by what it
    must find and what it must not."""

    NOTES = {
        "adjacent.md": "# adjacent\n\nthe quick brown fox\n",
        "apart.md": "# apart\n\nthe brown dog and a quick cat\n",
        "indexing.md": "# indexing\n\nindexing notes daily\n",
        "reindex.md": "# reindex\n\nreindex weekly\n",
        "near.md": "# near\n\nmango one two papaya\n",
        "far.md": "# far\n\nmango one two three four five six seven papaya\n",
        "heading.md": "# zebra crossing\n\nplain body text\n",
        "body.md": "# plain title\n\nzebra in the body\n",
        "accent.md": "# accent\n\nCafé Crème\n",
    }

    def setUp(self):
        super().setUp()
        for name, text in self.NOTES.items():
            self.write(name, text)
        self.index(self.notes)

    def names(self, query):
        # "--": a query may start with "-" (a column exclusion).
        return sorted(os.path.basename(f) for f in self.files("--limit", "100", "--", query))

    def test_phrase_needs_the_words_together_in_order(self):
        self.assertEqual(self.names('"quick brown"'), ["adjacent.md"])
        self.assertEqual(self.names("quick brown"), ["adjacent.md", "apart.md"])
        self.assertEqual(self.names('"brown quick"'), [])

    def test_prefix_matches_word_starts_only(self):
        self.assertEqual(self.names("index*"), ["indexing.md"])
        self.assertEqual(self.names("reind*"), ["reindex.md"])
        self.assertEqual(self.names("index"), [])

    def test_boolean_operators(self):
        self.assertEqual(self.names("quick AND cat"), ["apart.md"])
        self.assertEqual(self.names("quick NOT cat"), ["adjacent.md"])
        self.assertEqual(self.names("fox OR dog"), ["adjacent.md", "apart.md"])
        self.assertEqual(self.names("(fox OR dog) AND cat"), ["apart.md"])
        self.assertEqual(self.names("quick and cat"), ["apart.md"])  # lower case: the word 'and'

    def test_near_bounds_the_distance(self):
        self.assertEqual(self.names("NEAR(mango papaya, 2)"), ["near.md"])
        self.assertEqual(self.names("NEAR(mango papaya, 8)"), ["far.md", "near.md"])
        self.assertEqual(self.names("mango papaya"), ["far.md", "near.md"])

    def test_column_filter(self):
        self.assertEqual(self.names("zebra"), ["body.md", "heading.md"])
        self.assertEqual(self.names("heading_hierarchy: zebra"), ["heading.md"])
        self.assertEqual(self.names("content: zebra"), ["body.md", "heading.md"])  # the heading line is content
        # The heading line is content too: "- content:" leaves chunks with
        # the word in their heading path (or file name) only.
        self.assertEqual(self.names("- content: zebra"), ["heading.md"])
        self.assertEqual(self.names("- content: body"), ["body.md"])
        self.assertEqual(self.names("source_file: reindex"), ["reindex.md"])

    def test_case_and_accents_do_not_matter(self):
        self.assertEqual(self.names("cafe creme"), ["accent.md"])
        self.assertEqual(self.names("CAFÉ"), ["accent.md"])

    def test_malformed_query_is_one_line_exit_2_in_every_format(self):
        for fmt in ((), ("--json",), ("--vimgrep",), ("--files",)):
            for query in ('"open', "NEAR(a b", "quick AND", "nosuchcolumn: x"):
                with self.subTest(fmt=fmt, query=query):
                    line = self.usage_error(*fmt, query)
                    self.assertIn("search query", line)


class ColorTests(SearchTestCase):
    def setUp(self):
        super().setUp()
        # An escape sequence in a note must not reach the terminal as one.
        self.write("c.md", "# Colours\n\ncolourword here \x1b]0;title\x07 and more\n")
        self.index(self.notes)

    def on_pty(self, *args, **env):
        rc, out = run_on_pty(self.command("search", *args, "colourword"), self.env(**env))
        self.assertEqual(rc, 0, out)
        self.assertIn(self.path("c.md").encode(), out)
        return out

    def piped(self, *args, **env):
        p = self.quire("search", *args, "colourword", env=self.env(**env), expect=0, text=False)
        self.assertIn(b"colourword", p.stdout)
        return p.stdout

    def test_terminal_gets_colour(self):
        out = self.on_pty()
        self.assertIn(b"\x1b[35m" + self.path("c.md").encode(), out)
        self.assertIn(b"\x1b[1;31mcolourword\x1b[0m", out)
        self.assertNotIn(b"**colourword**", out)
        self.assertNotIn(b"\x1b]0;", out)

    def test_pipe_gets_none(self):
        out = self.piped()
        self.assertNotIn(b"\x1b", out)
        self.assertIn(b"**colourword**", out)

    def test_no_color_turns_it_off_on_a_terminal(self):
        self.assertNotIn(b"\x1b", self.on_pty(NO_COLOR="1"))
        self.assertNotIn(b"\x1b", self.on_pty("--color=never"))
        # Set but empty does not count (no-color.org).
        self.assertIn(b"\x1b[1;31m", self.on_pty(NO_COLOR=""))

    def test_color_always_wins_over_pipe_and_no_color(self):
        self.assertIn(b"\x1b[1;31mcolourword\x1b[0m", self.piped("--color=always"))
        self.assertIn(b"\x1b[1;31m", self.piped("--color", "always", NO_COLOR="1"))
        self.assertNotIn(b"\x1b]0;", self.piped("--color=always"))
        self.assertNotIn(b"\x1b", self.piped("--color=auto"))

    def test_machine_formats_never_get_colour(self):
        for fmt in ("--json", "--vimgrep", "--files"):
            with self.subTest(fmt=fmt):
                self.assertNotIn(b"\x1b[", self.on_pty(fmt, "--color=always"))

    def test_bad_color_is_a_usage_error(self):
        self.assertIn("--color", self.usage_error("--color=sometimes", "colourword"))


class FileNameTests(SearchTestCase):
    # A name that is not UTF-8 is skipped by quire's walk (test_hostile);
    # another writer's row may still hold one: see the JSON test below.
    NAMES = ["new\nline.md", "tab\there.md", 'quote".md', "back\\slash.md", "plain café.md"]

    def setUp(self):
        super().setUp()
        for name in self.NAMES:
            self.write(name, "# Odd\n\noddnameword here\n")
        self.index(self.notes)
        self.expected = sorted(os.fsencode(self.path(n)) for n in self.NAMES)

    def out_lines(self, *args):
        return self.quire("search", *args, "oddnameword", "--limit", "50", expect=0, text=False).stdout.splitlines()

    def test_files_and_vimgrep_keep_one_line_per_hit(self):
        files = [unquote_path(line.decode("utf-8")) for line in self.out_lines("--files")]
        self.assertEqual(sorted(files), self.expected)
        vim = [VIMGREP_RE.match(line.decode("utf-8")) for line in self.out_lines("--vimgrep")]
        self.assertEqual(sorted(unquote_path(m["file"]) for m in vim), self.expected)
        self.assertEqual({(m["line"], m["col"], m["text"]) for m in vim}, {("3", "1", "oddnameword here")})

    def test_text_keeps_one_location_line_per_hit(self):
        lines = [line.decode("utf-8") for line in self.out_lines()]
        self.assertEqual(len(lines), 2 * len(self.NAMES))
        locations = [line.rsplit(":", 1)[0] for line in lines[0::2]]
        self.assertEqual(sorted(unquote_path(loc) for loc in locations), self.expected)
        # Only what needs it is quoted.
        self.assertIn(self.path("plain café.md"), locations)
        self.assertIn('"' + self.path("new\\nline.md") + '"', locations)

    def add_foreign_row_with_a_name_that_is_not_utf8(self):
        """Another writer may store what quire's walk skips: a path with
        bytes that are not UTF-8 (CAST makes them TEXT, as a C program's
        sqlite3_bind_text would)."""
        raw = os.fsencode(self.path("caf\udce9.md"))
        with qt.connect(self.db) as con:
            con.execute("INSERT INTO chunks(id, namespace, source_file, content, content_hash, start_line, end_line,"
                        " created_at, updated_at) VALUES ('f' || hex(randomblob(15)), 'default', CAST(? AS TEXT),"
                        " 'oddnameword in a foreign row', 'ffffffffffffffffffffffffffffffff', 1, 1,"
                        " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')", (raw,))
        return raw

    def test_a_name_that_is_not_utf8_is_quoted_in_text(self):
        raw = self.add_foreign_row_with_a_name_that_is_not_utf8()
        lines = [line.decode("utf-8") for line in self.out_lines()]
        locations = [line.rsplit(":", 1)[0] for line in lines[0::2]]
        self.assertIn('"' + self.path("caf\\351.md") + '"', locations)
        self.assertIn(raw, [unquote_path(loc) for loc in locations])

    def test_json_stays_valid_utf8_for_a_file_name_that_is_not(self):
        self.add_foreign_row_with_a_name_that_is_not_utf8()
        hits = self.json_lines("oddnameword", "--limit", "50")
        # The ill-formed byte is one U+FFFD, as the contract's text rule does.
        self.assertEqual(sorted(h["source_file"] for h in hits),
                         sorted([self.path(n) for n in self.NAMES] + [self.path("caf\ufffd.md")]))

if __name__ == "__main__":
    qt.main()
