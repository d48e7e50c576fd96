#!/usr/bin/env python3
"""The quire command line: usage errors, index/search/status behaviour on
small real trees, what is skipped, and where the database goes."""

import json
import os
import pty
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from quiretest import doc, section  # noqa: E402


def chunk_table(db, path=None):
    """Every column of the chunks (of one file), keyed by id."""
    sql = "SELECT * FROM chunks" + (" WHERE source_file = ?" if path else "")
    with qt.connect(db) as con:
        con.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in con.execute(sql, (path,) if path else ())}


def files_table(db):
    with qt.connect(db) as con:
        con.row_factory = sqlite3.Row
        return {(r["namespace"], r["path"]): dict(r) for r in con.execute("SELECT * FROM files")}


class NotesTestCase(qt.NotesTestCase):
    def chunk_with(self, word, db=None):
        """The one chunk row whose content contains word."""
        found = [c for c in chunk_table(db or self.db).values() if word in c["content"]]
        self.assertEqual(len(found), 1, f"chunks containing {word!r}")
        return found[0]


class UsageTests(NotesTestCase):
    def test_help_and_version_exit_0(self):
        for args in (["--help"], ["-h"], ["help"], ["--version"], ["-V"],
                     ["index", "--help"], ["search", "--help"], ["status", "--help"]):
            with self.subTest(args=args):
                p = self.quire(*args, db=False, expect=0)
                self.assertTrue(p.stdout.strip(), "help/version text on stdout")
                self.assertEqual(p.stderr, "")
        self.assertRegex(self.quire("--version", db=False).stdout, r"^quire \d+\.\d+")
        self.assertFalse(os.path.exists(self.xdg), "help created a database directory")

    def test_usage_errors_exit_2_with_one_line(self):
        cases = {
            "no command": ([], False),
            "unknown command": (["frobnicate"], False),
            "unknown top-level option": (["--bogus"], False),
            "unknown index option": (["index", "--bogus", self.notes], True),
            "unknown search option": (["search", "--bogus", "word"], True),
            "unknown status option": (["status", "--bogus"], True),
            "unknown short option": (["search", "-x", "word"], True),
            "missing --limit value": (["search", "word", "--limit"], True),
            "missing --namespace value": (["index", self.notes, "--namespace"], True),
            "--limit 0": (["search", "--limit", "0", "word"], True),
            "--limit not a number": (["search", "--limit", "many", "word"], True),
            "--limit negative": (["search", "--limit", "-3", "word"], True),
            "--jobs 0": (["index", "--jobs", "0", self.notes], True),
            "--max-file-size not a size": (["index", "--max-file-size", "lots", self.notes], True),
            "--max-file-size over quired's cap": (["index", "--max-file-size", "1025M", self.notes], True),
            "empty --namespace": (["index", "--namespace", "", self.notes], True),
            "empty search --namespace": (["search", "--namespace", "", "word"], True),
            "empty links --namespace": (["links", "-n", "", "note.md"], True),
            "empty backlinks --namespace": (["backlinks", "--namespace=", "note.md"], True),
            "empty index --db": (["index", "--db", "", self.notes], False),
            "empty search --db": (["search", "--db=", "word"], False),
            "empty status --db": (["status", "--db", ""], False),
            "empty links --db": (["links", "--db", "", "note.md"], False),
            "missing QUERY": (["search"], True),
            "empty QUERY": (["search", ""], True),
            "blank QUERY": (["search", " \t "], True),
            "--offset over 2^32": (["search", "--offset", "99999999999", "word"], True),
            "two QUERY words": (["search", "two", "words"], True),
            "missing PATH": (["index"], True),
            "status argument": (["status", "extra"], True),
        }
        for name, (args, with_db) in cases.items():
            with self.subTest(name):
                p = self.quire(*args, db=with_db, expect=2)
                self.assertOneLine(p.stderr)
                self.assertTrue(p.stderr.startswith("quire: "), p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertFalse(os.path.exists(self.db), "a usage error created the database")
                self.assertFalse(os.path.exists(self.xdg), "a usage error created the default database")

    def test_blank_query_and_huge_numbers_are_named_as_such(self):
        # A blank QUERY went to FTS5, which said 'syntax error near ""';
        # a number past 2^32 was said not to be a number.
        self.assertIn("empty QUERY", self.quire("search", " \t ", expect=2).stderr)
        for flag in ("--offset", "--limit"):
            with self.subTest(flag=flag):
                self.assertIn(f"{flag} needs a", self.quire("search", flag, "99999999999", "w", expect=2).stderr)
                self.assertIn("at most 4294967295", self.quire("search", flag, "99999999999", "w", expect=2).stderr)

    def test_a_value_for_a_flag_without_one_is_named_as_such(self):
        for args in (["status", "--json=yes"], ["index", "--summary=1", self.notes], ["search", "--files=x", "w"],
                     ["links", "--help=1", "note.md"], ["status", "--js=1"]):
            with self.subTest(args=args):
                p = self.quire(*args, expect=2)
                self.assertOneLine(p.stderr)
                flag = args[1].split("=")[0]
                self.assertIn(f"option '{flag}' takes no value", p.stderr)
                self.assertNotIn("unknown", p.stderr)

    def test_index_of_missing_path_fails_with_one_line(self):
        missing = os.path.join(self.tmp, "no-such-dir")
        p = self.quire("index", missing, expect=1)
        self.assertOneLine(p.stderr)
        self.assertIn(missing, p.stderr)
        self.assertEqual(p.stdout, "")

    def test_a_symlinked_file_named_as_path_is_said_skipped(self):
        # The walk follows no symlink, and one named on the command line
        # was skipped without a word.
        real = os.path.join(self.notes, "real.md")
        with open(real, "w") as f:
            f.write("# Real\n\nrealword\n")
        link = os.path.join(self.notes, "link.md")
        os.symlink("real.md", link)
        p = self.quire("index", link, expect=0)
        self.assertEqual(p.stderr, f"quire: Skipping {link}: a symlink (never followed; name the file it points "
                                   "to)\n")
        self.assertEqual(p.stdout.splitlines()[1], "skipped: 1 symlinks")
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM files"), 0)
        self.quire("index", real, expect=0)
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM files"), 1)

    def test_several_query_words_are_one_quoted_query_in_the_hint(self):
        p = self.quire("search", "foo", "bar", "baz", expect=2)
        self.assertOneLine(p.stderr)
        self.assertIn('one QUERY expected; quote it: quire search "foo bar baz"', p.stderr)

    def test_index_of_the_filesystem_root_is_refused(self):
        link = os.path.join(self.tmp, "to-root")
        os.symlink("/", link)
        for arg in ("/", link):
            with self.subTest(arg=arg):
                p = self.quire("index", arg, expect=1)
                self.assertOneLine(p.stderr)
                self.assertIn(f"Failed to index {arg}: it is the whole filesystem (/)", p.stderr)
                self.assertEqual(p.stdout, "")
        self.assertFalse(os.path.exists(self.db) and qt.scalar(self.db, "SELECT count(*) FROM files"))

    def test_a_recorded_filesystem_root_does_not_stop_indexing(self):
        # A quire that still indexed / recorded it as a root; below it a
        # path starts with one slash, so no walk can take it as a root.
        self.write("a.md", doc("a", section("First", ["aardvark"])))
        self.index(self.notes)
        with qt.connect(self.db) as con:
            con.execute("INSERT INTO roots(namespace, path, indexed_at) VALUES ('default', '/', "
                        "'2026-01-01T00:00:00.000Z')")
        self.write("b.md", doc("b", section("First", ["bumblebee"])))
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(qt.parse_summary(p.stdout)["new"], 1, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertEqual(sorted(f[1] for f in files_table(self.db)), [self.path("a.md"), self.path("b.md")])


class IndexTests(NotesTestCase):
    def write_three(self):
        for name, word in (("a.md", "aardvark"), ("b.md", "bumblebee"), ("sub/c.md", "capybara")):
            self.write(name, doc(name, section("First", [word, "first"]), section("Second", [word, "second"]),
                                 section("Third", [word, "third"])))

    def test_index_prints_summary_and_no_progress_when_not_a_tty(self):
        self.write_three()
        p = self.quire("index", self.notes, expect=0)
        summary = qt.parse_summary(p.stdout)
        self.assertEqual((summary["files"], summary["new"], summary["changed"], summary["removed"]), (3, 3, 0, 0))
        self.assertEqual(summary["added"], qt.chunk_count(self.db))
        self.assertNotIn("\r", p.stdout + p.stderr)
        self.assertNotIn("\033", p.stdout + p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertEqual(sorted(f[1] for f in files_table(self.db)),
                         [self.path("a.md"), self.path("b.md"), self.path("sub/c.md")])
        self.assertEqual({c["source_file"] for c in chunk_table(self.db).values()},
                         {self.path("a.md"), self.path("b.md"), self.path("sub/c.md")})
        self.assertHealthy(self.db)

    def test_skip_lines_on_a_terminal_are_not_glued_to_the_progress_bar(self):
        for i in range(1200):
            self.write(f"d{i % 12}/n{i}.md", f"# note {i}\n")
        for i in range(0, 1200, 30):
            self.write(f"d{i % 12}/bin{i}.md", b"a\0b")
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen(self.command("index", self.notes), env=self.env(CI=None),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        finally:
            os.close(slave)
        err = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
        out = p.stdout.read().decode()
        p.stdout.close()
        self.assertEqual(p.wait(timeout=qt.RUN_TIMEOUT), 0)
        self.assertEqual(qt.parse_summary(out)["files"], 1200)
        # What the terminal shows of each line: what follows its last
        # carriage return, once the clear-to-end-of-line is done.
        shown = [line.rsplit("\r", 1)[-1].replace("\033[K", "")
                 for line in err.decode().replace("\r\n", "\n").split("\n")]
        skips = [line for line in shown if "Skipping" in line]
        self.assertEqual(len(skips), 40, err)
        self.assertIn("\033[K", err.decode(), "no progress bar was drawn")
        for line in skips:
            self.assertTrue(line.startswith("quire: Skipping "), repr(line))

    def test_index_a_single_file_argument(self):
        self.write_three()
        self.index(os.path.join(self.notes, "b.md"))
        self.assertEqual(list(files_table(self.db)), [("default", self.path("b.md"))])
        self.assertEqual({c["source_file"] for c in chunk_table(self.db).values()}, {self.path("b.md")})

    def test_a_path_given_twice_is_indexed_and_counted_once(self):
        self.write_three()
        link = os.path.join(self.tmp, "notes-link")
        os.symlink(self.notes, link)
        b = os.path.join(self.notes, "b.md")
        summary = self.index(b, os.path.join(self.notes, "sub", "..", "b.md"), os.path.join(link, "b.md"))
        self.assertEqual((summary["files"], summary["new"], summary["unchanged"]), (1, 1, 0))
        dirs = (self.notes, self.notes + "/", os.path.join(self.notes, "sub", ".."), link)
        summary = self.index(*dirs)
        self.assertEqual((summary["files"], summary["new"], summary["unchanged"]), (3, 2, 1))
        summary = self.index(*dirs)
        self.assertEqual((summary["files"], summary["new"], summary["unchanged"]), (3, 0, 3))
        self.assertEqual(sorted(f[1] for f in files_table(self.db)),
                         [self.path("a.md"), self.path("b.md"), self.path("sub/c.md")])

    def test_largest_max_file_size_reads_a_file_that_grows(self):
        # A procfs file stands in for a note that grows while it is read:
        # fstat says 0 bytes, read gives more. Bind-mounted on a note, as a
        # file named status is no note (skipped, as a walk would).
        note = self.write("status.md", "")
        r = subprocess.run(["mount", "--bind", f"/proc/{os.getpid()}/status", note], capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot bind-mount here (needs root and a mount namespace that allows it)")
        self.addCleanup(subprocess.run, ["umount", note], capture_output=True)
        self.assertEqual(os.stat(note).st_size, 0)
        summary = self.index("--max-file-size", "1G", note)
        self.assertEqual((summary["files"], summary["new"]), (1, 1))
        self.assertIn("VmRSS", "".join(c["content"] for c in chunk_table(self.db).values()))

    def test_reindex_of_unchanged_tree_writes_nothing(self):
        self.write_three()
        self.index(self.notes)
        chunks, files = chunk_table(self.db), files_table(self.db)
        with qt.connect(self.db) as watcher:
            # data_version changes for this connection when any other
            # connection commits a change to the database file.
            version = watcher.execute("PRAGMA data_version").fetchone()[0]
            summary = self.index(self.notes)
            self.assertEqual(watcher.execute("PRAGMA data_version").fetchone()[0], version,
                             "an unchanged re-index committed a write")
        self.assertEqual((summary["new"], summary["changed"], summary["unchanged"], summary["removed"]),
                         (0, 0, 3, 0))
        self.assertEqual((summary["added"], summary["moved"], summary["chunks_removed"]), (0, 0, 0))
        self.assertEqual(chunk_table(self.db), chunks)
        self.assertEqual(files_table(self.db), files)

    def test_touched_file_keeps_its_chunks(self):
        self.write_three()
        self.index(self.notes)
        chunks, files = chunk_table(self.db), files_table(self.db)
        st = os.stat(self.path("b.md"))
        os.utime(self.path("b.md"), ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        summary = self.index(self.notes)
        self.assertEqual((summary["changed"], summary["unchanged"], summary["added"], summary["chunks_removed"]),
                         (0, 3, 0, 0))
        self.assertEqual(chunk_table(self.db), chunks)
        key = ("default", self.path("b.md"))
        after = files_table(self.db)
        self.assertEqual(after[key]["mtime_ns"], st.st_mtime_ns + 5_000_000_000)
        self.assertEqual(after[key]["file_hash"], files[key]["file_hash"])
        del after[key], files[key]
        self.assertEqual(after, files)

    def test_modified_file_changes_only_its_own_rows(self):
        self.write_three()
        self.write("b.md", doc("b.md", section("First", ["bumblebee", "first"]), section("Second", ["oldword"]),
                               section("Third", ["bumblebee", "third"])))
        self.index(self.notes)
        before = chunk_table(self.db)
        old_b = chunk_table(self.db, self.path("b.md"))
        old_second = self.chunk_with("oldword")

        self.write("b.md", doc("b.md", section("First", ["bumblebee", "first"]), section("Second", ["newword"]),
                               section("Third", ["bumblebee", "third"])))
        summary = self.index(self.notes)

        self.assertEqual((summary["new"], summary["changed"], summary["unchanged"]), (0, 1, 2))
        self.assertEqual((summary["added"], summary["moved"], summary["chunks_removed"]), (1, 0, 1))
        after = chunk_table(self.db)
        # Other files: every column of every row as it was.
        for cid, row in before.items():
            if row["source_file"] != self.path("b.md"):
                self.assertEqual(after.get(cid), row)
        # b.md: the unchanged sections kept their rows, the edited one was replaced.
        new_b = chunk_table(self.db, self.path("b.md"))
        self.assertEqual(set(new_b) & set(old_b), set(old_b) - {old_second["id"]})
        for cid in set(old_b) - {old_second["id"]}:
            self.assertEqual(new_b[cid], old_b[cid])
        self.assertNotIn(old_second["id"], after)
        self.assertIn("newword", self.chunk_with("newword")["content"])
        self.assertEqual(qt.fts_match_rowids(self.db, "oldword"), [])
        self.assertEqual(self.quire("search", "oldword", expect=0).stdout, "")
        self.assertIn(self.path("b.md"), self.quire("search", "newword", expect=0).stdout)
        self.assertHealthy(self.db)

    def test_moved_section_keeps_its_id_and_counters(self):
        self.write("m.md", doc("m.md", section("Alpha", ["alphaword"]), section("Bravo", ["bravoword"]),
                               section("Charlie", ["charlieword"])))
        self.index(self.notes)
        bravo = self.chunk_with("bravoword")
        with qt.connect(self.db) as con:
            con.execute("UPDATE chunks SET access_count = 5, use_count = 2 WHERE id = ?", (bravo["id"],))
        inserted = section("Inserted", ["insertedword"])
        self.write("m.md", doc("m.md", section("Alpha", ["alphaword"]), inserted, section("Bravo", ["bravoword"]),
                               section("Charlie", ["charlieword"])))
        summary = self.index(self.notes)

        shift = inserted.count("\n") + 1  # the section and the blank line joining it
        moved = self.chunk_with("bravoword")
        self.assertEqual(moved["id"], bravo["id"])
        self.assertEqual(moved["seq"], bravo["seq"])
        self.assertEqual((moved["access_count"], moved["use_count"]), (5, 2))
        self.assertEqual(moved["created_at"], bravo["created_at"])
        self.assertEqual((moved["start_line"], moved["end_line"]),
                         (bravo["start_line"] + shift, bravo["end_line"] + shift))
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM chunks WHERE start_line = ? AND content_hash = ?",
                                  (bravo["start_line"], bravo["content_hash"])), [(0,)])
        self.assertEqual((summary["added"], summary["moved"], summary["chunks_removed"]), (1, 2, 0))
        out = self.quire("search", "bravoword", expect=0).stdout
        self.assertTrue(out.startswith(f"{self.path('m.md')}:{moved['start_line']}-{moved['end_line']}"), out)
        self.assertHealthy(self.db)

    def test_deleted_file_loses_its_rows_and_search_hits(self):
        self.write_three()
        self.write("gone.md", doc("gone", section("Only", ["vanishingword"])))
        self.index(self.notes)
        self.assertNotEqual(qt.fts_match_rowids(self.db, "vanishingword"), [])
        kept = {k: v for k, v in chunk_table(self.db).items() if v["source_file"] != self.path("gone.md")}

        os.unlink(os.path.join(self.notes, "gone.md"))
        summary = self.index(self.notes)

        self.assertEqual(summary["removed"], 1)
        self.assertEqual(chunk_table(self.db, self.path("gone.md")), {})
        self.assertNotIn(("default", self.path("gone.md")), files_table(self.db))
        self.assertEqual(qt.fts_match_rowids(self.db, "vanishingword"), [])
        self.assertEqual(self.quire("search", "vanishingword", expect=0).stdout, "")
        self.assertEqual(chunk_table(self.db), kept)
        self.assertHealthy(self.db)

    def test_deleted_directory_loses_its_rows(self):
        self.write_three()
        self.write("dir/one.md", doc("one", section("One", ["dirword"])))
        self.write("dir/deeper/two.md", doc("two", section("Two", ["dirword"])))
        self.index(self.notes)
        qt.rmtree(os.path.join(self.notes, "dir"))
        summary = self.index(self.notes)
        self.assertEqual(summary["removed"], 2)
        self.assertEqual(sorted(p for _, p in files_table(self.db)),
                         [self.path("a.md"), self.path("b.md"), self.path("sub/c.md")])
        self.assertEqual(qt.fts_match_rowids(self.db, "dirword"), [])
        self.assertHealthy(self.db)

    def test_note_renamed_over_one_of_the_same_size_and_mtime_is_read(self):
        # Notes unpacked from an archive or restored from a backup share
        # their mtime, and short notes often their size: a rename of one
        # over another leaves size and mtime at the target path as the
        # files row has them. The inode's ctime tells.
        a = self.write("a.md", "# A\n\nalpaca words here\n")
        b = self.write("b.md", "# B\n\nbadger words here\n")
        for path in (a, b):
            os.utime(path, ns=(1767225600_000000000, 1767225600_000000000))
        self.index(self.notes)
        os.rename(a, b)
        summary = self.index(self.notes)
        self.assertEqual((summary["changed"], summary["removed"]), (1, 1))
        self.assertEqual([h["source_file"] for h in self.search_json("alpaca")], [self.path("b.md")])
        self.assertEqual(self.search_json("badger"), [])
        self.assertEqual(list(files_table(self.db)), [("default", self.path("b.md"))])
        self.assertHealthy(self.db)
        # Read once, not on every run: the next one writes nothing.
        with qt.connect(self.db) as watcher:
            version = watcher.execute("PRAGMA data_version").fetchone()[0]
            summary = self.index(self.notes)
            self.assertEqual(watcher.execute("PRAGMA data_version").fetchone()[0], version)
        self.assertEqual((summary["unchanged"], summary["changed"]), (1, 0))

    def test_binary_file_is_skipped_with_a_log_line(self):
        self.write_three()
        self.write("x.md", b"# looks like a note\n\x00\x01binaryword\x00\n")
        p = self.quire("index", self.notes, expect=0)
        self.assertOneLine(p.stderr)
        self.assertIn(self.path("x.md"), p.stderr)
        self.assertIn("binary", p.stderr)
        self.assertRegex(p.stdout, r"\b1 binary\b")
        self.assertEqual(qt.parse_summary(p.stdout)["new"], 3)
        self.assertNotIn(("default", self.path("x.md")), files_table(self.db))
        self.assertEqual(chunk_table(self.db, self.path("x.md")), {})
        self.assertEqual(qt.fts_match_rowids(self.db, "binaryword"), [])
        self.assertEqual(len(files_table(self.db)), 3)

    def test_root_whose_path_is_not_utf8_is_skipped_with_a_log_line(self):
        # Names below a root that are not UTF-8 are skipped (the path
        # columns are TEXT that other programs decode as UTF-8); so is a
        # root whose own path is not.
        root = os.path.join(self.notes, os.fsdecode(b"caf\xe9"))
        self.write(os.path.join(root, "a.md"), doc("a", section("A", ["latinrootword"])))
        p = self.quire("index", root, expect=0)
        # Every path the database holds reads back as UTF-8 (the default
        # text_factory raises on anything else).
        with qt.connect(self.db) as con:
            self.assertEqual(con.execute("SELECT path FROM files").fetchall(), [])
            self.assertEqual(con.execute("SELECT source_file FROM chunks").fetchall(), [])
            self.assertEqual(con.execute("SELECT path FROM roots").fetchall(), [])
        self.assertOneLine(p.stderr)
        self.assertIn("not valid UTF-8", p.stderr)
        self.assertIn(self.path("caf\\xe9"), p.stderr)
        self.assertRegex(p.stdout, r"\b1 bad names\b")
        self.assertEqual(qt.fts_match_rowids(self.db, "latinrootword"), [])
        self.assertHealthy(self.db)

    def test_note_that_turns_binary_leaves_the_index(self):
        self.write_three()
        self.write("x.md", doc("x", section("Text", ["textword"])))
        self.index(self.notes)
        self.assertNotEqual(chunk_table(self.db, self.path("x.md")), {})
        self.write("x.md", b"\x00\x00now binary\x00")
        p = self.quire("index", self.notes, expect=0)
        self.assertIn(self.path("x.md"), p.stderr)
        self.assertEqual(chunk_table(self.db, self.path("x.md")), {})
        self.assertNotIn(("default", self.path("x.md")), files_table(self.db))
        self.assertEqual(qt.fts_match_rowids(self.db, "textword"), [])
        self.assertHealthy(self.db)

    def test_hidden_temp_and_non_markdown_files_are_not_indexed(self):
        self.write("keep.md", doc("keep", section("Keep", ["keepword"])))
        self.write("sub/real.md", doc("real", section("Real", ["realword"])))
        ignored = {
            ".git/notes.md": "gitword",
            ".obsidian/workspace.md": "obsidianword",
            ".hidden.md": "hiddenword",
            "sub/.secret/deep/x.md": "secretword",
            "readme.txt": "txtword",
            "image.png": "pngword",
            "foo.swp": "swapword",
            "foo.md.swp": "mdswapword",
            "foo.md~": "backupword",
            "#foo.md#": "emacsword",
            "4913": "vimprobeword",
        }
        for rel, word in ignored.items():
            self.write(rel, doc(rel, section("Ignored", [word])))
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(sorted(p for _, p in files_table(self.db)), [self.path("keep.md"), self.path("sub/real.md")])
        self.assertEqual({c["source_file"] for c in chunk_table(self.db).values()},
                         {self.path("keep.md"), self.path("sub/real.md")})
        for rel, word in ignored.items():
            with self.subTest(rel):
                self.assertEqual(qt.fts_match_rowids(self.db, word), [])
        self.assertNotEqual(qt.fts_match_rowids(self.db, "keepword"), [])
        self.assertEqual(p.stderr, "")

    def test_note_moved_into_a_hidden_directory_leaves_the_index(self):
        self.write("keep.md", doc("keep", section("Keep", ["keepword"])))
        self.write("trashed.md", doc("trashed", section("Trashed", ["trashword"])))
        self.index(self.notes)
        os.mkdir(os.path.join(self.notes, ".trash"))
        os.rename(os.path.join(self.notes, "trashed.md"), os.path.join(self.notes, ".trash", "trashed.md"))
        summary = self.index(self.notes)
        self.assertEqual(summary["removed"], 1)
        self.assertEqual(sorted(p for _, p in files_table(self.db)), [self.path("keep.md")])
        self.assertEqual(qt.fts_match_rowids(self.db, "trashword"), [])
        self.assertHealthy(self.db)


class CoarseTimestampTests(NotesTestCase):
    """A filesystem that keeps whole seconds (ext4 with 128-byte inodes,
    as FAT, exFAT and HFS+ drives and some shares do): a note rewritten
    with the same size in the second it was indexed in has the ctime of
    that second's start, before the row's indexed_at, and was taken for
    the note as indexed, for good (the old text stayed, not even marked
    stale). Such a ctime vouches only a whole resolution before it."""

    def setUp(self):
        super().setUp()
        image = os.path.join(self.tmp, "coarse.img")
        with open(image, "wb") as f:
            f.truncate(16 << 20)
        mnt = os.path.join(self.tmp, "coarse")
        os.mkdir(mnt)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", image], capture_output=True, text=True)
        if made.returncode != 0:
            self.skipTest(f"cannot make an ext4 image here: {made.stderr.strip()}")
        mounted = subprocess.run(["mount", "-o", "loop", image, mnt], capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest(f"cannot mount a loop device here: {mounted.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        self.notes = os.path.join(mnt, "notes")
        os.mkdir(self.notes)

    def test_rewrite_in_the_second_of_the_indexing_is_read_next_time(self):
        note = os.path.join(self.notes, "n.md")
        for attempt in range(5):
            t = time.time()
            time.sleep(1.02 - (t - int(t)))  # just after a second starts
            first, later = f"# N\n\nfirstword{attempt}\n", f"# N\n\nlaterword{attempt}\n"
            self.assertEqual(len(first), len(later))  # else the size tells
            with open(note, "w", encoding="utf-8") as f:
                f.write(first)
            self.index(self.notes)
            with open(note, "w", encoding="utf-8") as f:
                f.write(later)
            st = os.stat(note)
            indexed_at = qt.query(self.db, "SELECT indexed_at FROM files")[0][0]
            if st.st_ctime_ns % 1_000_000_000 == 0 and time.strftime(
                    "%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_ctime)) == indexed_at[:19]:
                break  # rewritten in the second of the indexing, as wanted
        else:
            self.fail("never rewrote the note in the second of its indexing")
        self.index(self.notes)
        self.assertEqual([h["source_file"] for h in self.search_json(f"laterword{attempt}")],
                         [os.path.realpath(note)])
        self.assertEqual(self.search_json(f"firstword{attempt}"), [])
        # Read again, it got a later indexed_at; once a whole resolution
        # lies between the two, the row vouches and nothing is rewritten.
        time.sleep(2.1)
        self.index(self.notes)
        vouching = qt.query(self.db, "SELECT indexed_at FROM files")
        self.assertEqual(self.index(self.notes)["unchanged"], 1)
        self.assertEqual(qt.query(self.db, "SELECT indexed_at FROM files"), vouching)


class UnreadableTests(NotesTestCase):
    """File permissions do not bind root, so as root these run quire as
    'nobody' over a tree that nobody owns."""

    def setUp(self):
        super().setUp()
        self.run_as = {}
        if qt.is_root():
            ids = qt.nobody_ids()
            if ids is None:
                self.skipTest("running as root and there is no 'nobody' account to drop to")
            self.run_as = {"user": ids[0], "group": ids[1], "extra_groups": []}
            os.chmod(self.tmp, 0o755)

    def as_user(self, *args, **kwargs):
        if self.run_as:
            qt.chown_tree(self.tmp, self.run_as["user"], self.run_as["group"])
        return self.quire(*args, **self.run_as, **kwargs)

    def test_unreadable_file_keeps_its_rows(self):
        self.write("a.md", doc("a", section("A", ["readableword"])))
        self.write("locked.md", doc("locked", section("Locked", ["lockedword"])))
        self.as_user("index", self.notes, expect=0)
        locked_rows = chunk_table(self.db, self.path("locked.md"))
        self.assertNotEqual(locked_rows, {})

        # Changed on disk (so its stat says: read it again), but unreadable.
        self.write("locked.md", doc("locked", section("Locked", ["replacementword"])))
        os.chmod(os.path.join(self.notes, "locked.md"), 0)
        self.write("a.md", doc("a", section("A", ["changedword"])))
        p = self.as_user("index", self.notes)

        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertIn(self.path("locked.md"), p.stderr)
        self.assertEqual(chunk_table(self.db, self.path("locked.md")), locked_rows)
        self.assertIn(("default", self.path("locked.md")), files_table(self.db))
        self.assertNotEqual(qt.fts_match_rowids(self.db, "lockedword"), [])
        self.assertEqual(qt.fts_match_rowids(self.db, "replacementword"), [])
        # The rest of the tree was still indexed.
        self.assertNotEqual(qt.fts_match_rowids(self.db, "changedword"), [])
        self.assertEqual(qt.fts_match_rowids(self.db, "readableword"), [])
        self.assertHealthy(self.db)

    def test_unreadable_directory_keeps_its_rows(self):
        self.write("a.md", doc("a", section("A", ["readableword"])))
        self.write("private/p.md", doc("p", section("P", ["privateword"])))
        self.as_user("index", self.notes, expect=0)
        private_rows = chunk_table(self.db, self.path("private/p.md"))
        self.assertNotEqual(private_rows, {})
        os.chmod(os.path.join(self.notes, "private"), 0)
        p = self.as_user("index", self.notes)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertIn(self.path("private"), p.stderr)
        self.assertEqual(chunk_table(self.db, self.path("private/p.md")), private_rows)
        self.assertIn(("default", self.path("private/p.md")), files_table(self.db))
        self.assertHealthy(self.db)


    def test_unsearchable_directory_keeps_its_rows_with_one_line(self):
        # r-- : listed, but nothing in it can be looked at (no search
        # permission): one line for the directory, not one per note.
        self.write("a.md", doc("a", section("A", ["readableword"])))
        for i in range(3):
            self.write(f"listed/n{i}.md", doc(f"n{i}", section("N", ["listedword"])))
        self.as_user("index", self.notes, expect=0)
        before = files_table(self.db)
        listed_rows = chunk_table(self.db, self.path("listed/n0.md"))
        self.assertNotEqual(listed_rows, {})
        os.chmod(os.path.join(self.notes, "listed"), 0o444)
        p = self.as_user("index", self.notes)
        os.chmod(os.path.join(self.notes, "listed"), 0o755)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertOneLine(p.stderr)
        self.assertIn(self.path("listed"), p.stderr)
        self.assertRegex(p.stdout, r"\b1 unreadable\b")
        self.assertEqual(set(files_table(self.db)), set(before))
        self.assertEqual(chunk_table(self.db, self.path("listed/n0.md")), listed_rows)
        self.assertHealthy(self.db)

    def test_ignored_directory_is_not_even_opened(self):
        self.write("a.md", doc("a", section("A", ["readableword"])))
        self.write("private/p.md", doc("p", section("P", ["privateword"])))
        self.write(".quireignore", "private/\n")
        os.chmod(os.path.join(self.notes, "private"), 0)
        p = self.as_user("index", self.notes, expect=0)
        self.assertEqual(p.stderr, "")  # no "Failed to read directory"
        self.assertNotIn("unreadable", p.stdout)
        self.assertIn("1 ignored", p.stdout)
        self.assertEqual(list(files_table(self.db)), [("default", self.path("a.md"))])


class PreloadTestCase(NotesTestCase):
    """quire with a test-only library of tests/integration preloaded, which
    makes one system call fail the way a flaky or network filesystem does."""

    def preload_env(self, name, **variables):
        """self.env() plus variables, with lib{name}.so preloaded (qt.with_shim)."""
        return qt.with_shim(self.env(**variables), name)


class ReaddirErrorTests(PreloadTestCase):
    """readdir() failing partway through a directory (EIO on a flaky or
    network filesystem), made so by tests/integration/readdir-eio.c
    preloaded into quire: the directory counts as unreadable, and the notes
    below it keep their rows, as docs/STORAGE.md promises."""

    def eio_env(self, directory, after):
        return self.preload_env("readdir-eio", QUIRE_TEST_READDIR_EIO_DIR=os.path.realpath(directory),
                                QUIRE_TEST_READDIR_EIO_AFTER=str(after))

    def test_readdir_error_partway_keeps_the_rows_below(self):
        self.write("a.md", doc("a", section("A", ["readableword"])))
        names = [f"n{i}.md" for i in range(6)]
        for name in names:
            self.write(f"flaky/{name}", doc(name, section("N", ["flakyword"])))
        self.write("flaky/sub/deep.md", doc("deep", section("D", ["deepword"])))
        self.index(self.notes)
        before = files_table(self.db)
        self.assertEqual(len(before), 8)
        flaky_rows = {name: chunk_table(self.db, self.path(f"flaky/{name}")) for name in names}

        # "." and ".." and one name, then EIO.
        self.write("a.md", doc("a", section("A", ["changedword"])))
        p = self.quire("index", self.notes, env=self.eio_env(os.path.join(self.notes, "flaky"), 3))

        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)  # something was unreadable
        self.assertOneLine(p.stderr)
        self.assertIn(self.path("flaky"), p.stderr)
        self.assertEqual(set(files_table(self.db)), set(before))
        for name in names:
            self.assertEqual(chunk_table(self.db, self.path(f"flaky/{name}")), flaky_rows[name], name)
        # The rest of the tree was still indexed.
        self.assertNotEqual(qt.fts_match_rowids(self.db, "changedword"), [])
        self.assertHealthy(self.db)

        # Readable again: nothing to do below it.
        self.index(self.notes)
        self.assertEqual(set(files_table(self.db)), set(before))


class StatErrorTests(PreloadTestCase):
    """The walk's fstatat() of one entry failing (EIO on a flaky or network
    filesystem), made so by tests/integration/fstatat-eio.c: the note is
    unreadable for now, not gone, and keeps its rows."""

    def test_stat_error_keeps_the_rows_of_the_note(self):
        self.write("a.md", doc("a", section("A", ["readableword"])))
        self.write("b.md", doc("b", section("B", ["flakyword"])))
        self.write("sub/c.md", doc("c", section("C", ["subword"])))
        self.index(self.notes)
        before = files_table(self.db)
        flaky_rows = chunk_table(self.db, self.path("b.md"))
        self.assertNotEqual(flaky_rows, {})

        self.write("a.md", doc("a", section("A", ["changedword"])))
        p = self.quire("index", self.notes, env=self.preload_env("fstatat-eio", QUIRE_TEST_FSTATAT_EIO_NAME="b.md"))

        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)  # something was unreadable
        self.assertOneLine(p.stderr)
        self.assertIn(self.path("b.md"), p.stderr)
        self.assertRegex(p.stdout, r"\b1 unreadable\b")
        self.assertEqual(set(files_table(self.db)), set(before))
        self.assertEqual(chunk_table(self.db, self.path("b.md")), flaky_rows)
        self.assertNotEqual(qt.fts_match_rowids(self.db, "changedword"), [])
        self.assertHealthy(self.db)


class SearchTests(NotesTestCase):
    def setUp(self):
        super().setUp()
        self.write("guide.md", doc("Guide", section("Setup", ["install", "configure"]),
                                   section("Usage", ["run", "xylophonic"]), section("Notes", ["remember"])))
        for i in range(5):
            self.write(f"common{i}.md", doc(f"Common {i}", section("Body", ["sharedterm", f"filler{i}"])))
        self.index(self.notes)

    def test_search_finds_a_unique_word_with_file_and_line_range(self):
        p = self.quire("search", "xylophonic", expect=0)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)  # the location line, then the snippet
        row = self.chunk_with("xylophonic")
        self.assertTrue(lines[0].startswith(f"{self.path('guide.md')}:{row['start_line']}-{row['end_line']}"),
                        lines[0])
        self.assertIn("Guide > Usage", lines[0])
        self.assertIn("**xylophonic**", lines[1])
        with open(os.path.join(self.notes, "guide.md"), encoding="utf-8") as f:
            hit_lines = [i for i, line in enumerate(f, 1) if "xylophonic" in line]
        self.assertTrue(all(row["start_line"] <= n <= row["end_line"] for n in hit_lines))
        self.assertEqual(p.stderr, "")

    def test_search_json_lines_carry_the_hit_fields(self):
        hits = self.search_json("sharedterm OR xylophonic")
        self.assertEqual(len(hits), 6)
        ids = chunk_table(self.db)
        for h in hits:
            self.assertLessEqual({"id", "source_file", "start_line", "end_line", "heading_hierarchy", "score",
                                  "snippet"}, set(h))
            self.assertIsInstance(h["heading_hierarchy"], list)
            self.assertTrue(all(isinstance(x, str) for x in h["heading_hierarchy"]))
            self.assertIsInstance(h["score"], (int, float))
            self.assertRegex(h["id"], r"^[0-9a-f]{32}$")
            row = ids[h["id"]]
            self.assertEqual((h["source_file"], h["start_line"], h["end_line"]),
                             (row["source_file"], row["start_line"], row["end_line"]))
            self.assertEqual(h["heading_hierarchy"], json.loads(row["heading_hierarchy"]))
        scores = [h["score"] for h in hits]
        self.assertEqual(scores, sorted(scores, reverse=True), "hits are best first")

    def test_search_limit_caps_the_hits(self):
        self.assertEqual(len(self.search_json("sharedterm", "--limit", "2")), 2)
        self.assertEqual(len(self.search_json("sharedterm", "-l", "1")), 1)
        self.assertEqual(len(self.search_json("sharedterm")), 5)

    def test_search_without_hits_prints_nothing(self):
        p = self.quire("search", "nosuchwordanywhere", expect=0)
        self.assertEqual((p.stdout, p.stderr), ("", ""))

    def test_output_that_cannot_be_written_fails(self):
        # A full disk under `quire search ... > hits.txt`: exit 1 and a
        # line that says so, not 0 with the hits lost.
        for args in (["search", "sharedterm"], ["search", "--files", "sharedterm"], ["status"]):
            with self.subTest(args=args), open("/dev/full", "w") as full:
                p = subprocess.run(self.command(*args), env=self.env(), stdin=subprocess.DEVNULL, stdout=full,
                                   stderr=subprocess.PIPE, text=True, timeout=qt.RUN_TIMEOUT)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertOneLine(p.stderr)
                self.assertIn("No space left on device", p.stderr)

    def test_malformed_query_is_a_usage_error(self):
        for query in ('foo"', "AND", "(", "NEAR(", "foo AND", "x:y"):
            with self.subTest(query=query):
                p = self.quire("search", query, expect=2)
                self.assertOneLine(p.stderr)
                self.assertTrue(p.stderr.startswith("quire: "), p.stderr)
                self.assertNotIn("Traceback", p.stderr)
                self.assertEqual(p.stdout, "")


class NamespaceTests(NotesTestCase):
    def setUp(self):
        super().setUp()
        self.alpha = os.path.join(self.tmp, "alpha")
        self.beta = os.path.join(self.tmp, "beta")
        self.write("a1.md", doc("a1", section("A", ["sharedword", "alphaonly"])), root=self.alpha)
        self.write("a2.md", doc("a2", section("A", ["sharedword", "alphaonly"])), root=self.alpha)
        self.write("b1.md", doc("b1", section("B", ["sharedword", "betaonly"])), root=self.beta)
        self.index("--namespace", "alpha", self.alpha)
        self.index("-n", "beta", self.beta)

    def test_namespace_separates_search_results(self):
        alpha_hits = self.search_json("sharedword", "--namespace", "alpha")
        beta_hits = self.search_json("sharedword", "-n", "beta")
        all_hits = self.search_json("sharedword")
        self.assertEqual(sorted(h["source_file"] for h in alpha_hits),
                         [os.path.join(os.path.realpath(self.alpha), f) for f in ("a1.md", "a2.md")])
        self.assertEqual([h["source_file"] for h in beta_hits], [os.path.join(os.path.realpath(self.beta), "b1.md")])
        self.assertEqual({h["namespace"] for h in alpha_hits}, {"alpha"})
        self.assertEqual(len(all_hits), 3)
        self.assertEqual(self.search_json("betaonly", "-n", "alpha"), [])
        self.assertEqual(self.search_json("sharedword", "-n", "gamma"), [])

    def test_same_tree_in_two_namespaces_has_independent_rows(self):
        self.index("-n", "beta", self.alpha)
        alpha_rows = [r for r in qt.rows_with_namespace(self.db) if r[0] == "alpha"]
        beta_alpha_rows = [r for r in qt.rows_with_namespace(self.db) if r[0] == "beta" and "/alpha/" in r[1]]
        self.assertEqual([r[1:] for r in alpha_rows], [r[1:] for r in beta_alpha_rows])
        self.assertEqual(qt.duplicate_groups(self.db), 0)

        # Deleting a note and re-indexing one namespace leaves the other's rows.
        os.unlink(os.path.join(self.alpha, "a2.md"))
        self.index("-n", "alpha", self.alpha)
        a2 = os.path.join(os.path.realpath(self.alpha), "a2.md")
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM chunks WHERE namespace = 'alpha' AND source_file = ?",
                                  (a2,)), [(0,)])
        self.assertNotEqual(qt.query(self.db, "SELECT count(*) FROM chunks WHERE namespace = 'beta' "
                                              "AND source_file = ?", (a2,)), [(0,)])
        self.assertEqual([h["source_file"] for h in self.search_json("alphaonly", "-n", "alpha")],
                         [os.path.join(os.path.realpath(self.alpha), "a1.md")])
        self.assertHealthy(self.db)


class StatusTests(NotesTestCase):
    def setUp(self):
        super().setUp()
        for i in range(3):
            self.write(f"n{i}.md", doc(f"n{i}", section("One", [f"word{i}"]), section("Two", [f"other{i}"])))
        self.write("other.md", doc("other", section("Other", ["elsewhere"])), root=os.path.join(self.tmp, "work"))
        self.index(self.notes)
        self.index("-n", "work", os.path.join(self.tmp, "work"))

    def test_status_reports_counts(self):
        p = self.quire("status", expect=0)
        self.assertEqual(p.stderr, "")
        text = p.stdout
        self.assertRegex(text, rf"(?m)^database: +{re.escape(self.db)}$")
        self.assertRegex(text, rf"(?m)^schema version: +{qt.SCHEMA_VERSION}$")
        self.assertRegex(text, r"(?m)^files: +4$")
        self.assertRegex(text, rf"(?m)^chunks: +{qt.chunk_count(self.db)}$")
        self.assertRegex(text, r"(?m)^duplicate groups: +0$")
        self.assertRegex(text, r"(?m)^namespaces: +2$")
        self.assertRegex(text, r"(?m)^ +default +3 files")
        self.assertRegex(text, r"(?m)^ +work +1 files")

    def test_status_keeps_each_namespace_on_its_line_and_in_its_column(self):
        # A namespace is any bytes `index -n` took: a newline in one split
        # its line, and non-ASCII names were padded by bytes.
        self.index("-n", "we\"ird\nns", os.path.join(self.tmp, "work"))
        self.index("-n", "ünï", os.path.join(self.tmp, "work"))
        lines = self.quire("status", expect=0).stdout.splitlines()
        start = lines.index("namespaces:       4") + 1
        self.assertFalse(lines[start + 4].startswith(" "), lines[start + 4])
        by_name = {l[2:19].rstrip(): l[19:] for l in lines[start:start + 4]}
        self.assertEqual(by_name, {"default": "3 files, 6 chunks", "work": "1 files, 1 chunks",
                                   "\"we\\\"ird\\nns\"": "1 files, 1 chunks", "ünï": "1 files, 1 chunks"})

    def test_status_json(self):
        p = self.quire("status", "--json", expect=0)
        st = json.loads(p.stdout)
        self.assertEqual(st["database"], self.db)
        self.assertEqual(st["schema_version"], qt.SCHEMA_VERSION)
        self.assertEqual(st["files"], 4)
        self.assertEqual(st["chunks"], qt.chunk_count(self.db))
        self.assertEqual(st["duplicate_groups"], 0)
        by_name = {n["name"]: n for n in st["namespaces"]}
        self.assertEqual(sorted(by_name), ["default", "work"])
        self.assertEqual(by_name["default"]["files"], 3)
        self.assertEqual(by_name["work"]["files"], 1)
        self.assertEqual(by_name["default"]["chunks"] + by_name["work"]["chunks"], st["chunks"])


class DatabaseLocationTests(NotesTestCase):
    def setUp(self):
        super().setUp()
        self.write("n.md", doc("n", section("One", ["locationword"])))

    def run_umask0(self, *args, env):
        """Under umask 0, so that modes are quire's and not the umask's."""
        return self.quire(*args, db=False, env=env, expect=0, preexec_fn=lambda: os.umask(0))

    def test_quire_db_variable_is_honoured(self):
        env_db = os.path.join(self.tmp, "from-env", "env.db")
        env = self.env(QUIRE_DB=env_db)
        self.quire("index", self.notes, db=False, env=env, expect=0)
        self.assertTrue(os.path.isfile(env_db))
        self.assertFalse(os.path.exists(self.xdg))
        self.assertEqual(qt.file_count(env_db), 1)
        self.assertIn(self.path("n.md"), self.quire("search", "locationword", db=False, env=env, expect=0).stdout)
        self.assertEqual(json.loads(self.quire("status", "--json", db=False, env=env).stdout)["database"], env_db)

        # --db wins over QUIRE_DB.
        digest = qt.file_digest(env_db)
        self.quire("index", self.notes, db=self.db, env=env, expect=0)
        self.assertEqual(qt.file_count(self.db), 1)
        self.assertEqual(qt.file_digest(env_db), digest)

    def test_default_database_is_private_under_xdg_data_home(self):
        self.run_umask0("index", self.notes, env=self.env())
        path = os.path.join(self.xdg, "quire", "index.db")
        self.assertTrue(os.path.isfile(path))
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o600)
        self.assertEqual(qt.file_count(path), 1)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".local")))
        st = json.loads(self.quire("status", "--json", db=False).stdout)
        self.assertEqual(st["database"], path)

    def test_default_database_falls_back_to_home(self):
        self.run_umask0("index", self.notes, env=self.env(XDG_DATA_HOME=None))
        path = os.path.join(self.home, ".local", "share", "quire", "index.db")
        self.assertTrue(os.path.isfile(path))
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o600)
        self.assertFalse(os.path.exists(self.xdg))

    def test_relative_xdg_data_home_is_ignored(self):
        # The XDG spec: a relative path in XDG_DATA_HOME is invalid.
        cwd = os.path.join(self.tmp, "cwd")
        os.mkdir(cwd)
        self.quire("index", self.notes, db=False, env=self.env(XDG_DATA_HOME="relative/data"), cwd=cwd, expect=0)
        self.assertTrue(os.path.isfile(os.path.join(self.home, ".local", "share", "quire", "index.db")))
        self.assertEqual(os.listdir(cwd), [])


    def test_default_database_without_home_is_in_the_password_home(self):
        # As quired's config file expands '~' (docs/CONFIG.md): an unset or
        # relative HOME must not put the database in the working directory.
        cwd = os.path.join(self.tmp, "cwd")
        os.mkdir(cwd)
        want = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".local", "share", "quire", "index.db")
        for home in (None, "relative/home"):
            with self.subTest(HOME=home):
                # status only reads: it names the database it looked at.
                p = self.quire("status", "--json", db=False, env=self.env(HOME=home, XDG_DATA_HOME=None), cwd=cwd)
                named = json.loads(p.stdout)["database"] if p.returncode == 0 else p.stderr
                self.assertIn(want, named)
                self.assertEqual(os.listdir(cwd), [])



class QuickstartTests(NotesTestCase):
    """scripts/quickstart, in a copy of the tree where installing, meson and
    ninja do nothing, build/cli/quire is the quire under test and quired
    writes down how it was started."""

    def fake_checkout(self):
        repo, stubs = os.path.join(self.tmp, "repo"), os.path.join(self.tmp, "stubs")
        for d in ("scripts", "build/cli", "build/daemon"):
            os.makedirs(os.path.join(repo, d))
        os.makedirs(stubs)
        shutil.copy(os.path.join(qt.SOURCE_ROOT, "scripts", "quickstart"), os.path.join(repo, "scripts"))
        record = os.path.join(self.tmp, "quired-args")
        stub_scripts = {
            os.path.join(repo, "scripts", "install-deps"): "exit 0\n",
            os.path.join(stubs, "meson"): "exit 0\n",
            os.path.join(stubs, "ninja"): "exit 0\n",
            os.path.join(repo, "build", "daemon", "quired"): f'printf "%s\\n" "$@" > {record}\n',
        }
        for path, body in stub_scripts.items():
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(path, 0o755)
        # A symlink: quire finds its module beside the file it really is.
        os.symlink(qt.QUIRE, os.path.join(repo, "build", "cli", "quire"))
        return repo, stubs, record

    def test_quickstart_indexes_into_the_database_it_hands_to_quired(self):
        self.write("n.md", doc("n", section("One", ["quickstartword"])))
        repo, stubs, record = self.fake_checkout()
        work = os.path.join(self.tmp, "work")
        os.mkdir(work)
        # A config file naming another database must not split the two.
        config = os.path.join(self.tmp, "config", "quire", "config.ini")
        os.makedirs(os.path.dirname(config))
        with open(config, "w") as f:
            f.write(f"[quire]\ndatabase = {os.path.join(self.tmp, 'other.db')}\n")
        env = self.env(QUIRE_DB="rel/index.db", XDG_CONFIG_HOME=os.path.dirname(os.path.dirname(config)),
                       PATH=stubs + os.pathsep + os.environ["PATH"])
        self.run_program([os.path.join(repo, "scripts", "quickstart"), self.notes], env=env, cwd=work, expect=0)
        db = os.path.join(work, "rel", "index.db")
        self.assertEqual(qt.file_count(db), 1, "the relative QUIRE_DB is taken from where quickstart ran")
        self.assertFalse(os.path.exists(os.path.join(repo, "rel")))
        with open(record) as f:
            self.assertEqual(f.read().splitlines(), ["--db", db, self.root])


if __name__ == "__main__":
    qt.main()
