#!/usr/bin/env python3
"""Derived rows (schema version 2): the tags, links and CJK index rows
quire derives from each chunk stay equal to the chunks after every quire
write, including chunks that another program inserted or deleted by the
storage contract alone (docs/STORAGE.md, "Derived rows")."""

import os
import secrets
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

TAGGED_NOTE = """---
title: Tagged
tags: [alpha, beta]
---
# Tagged

A paragraph with an inline #gamma tag, and some words to fill the chunk so
that the chunker keeps it whole. `#notatag` is code, #123 is a number.
"""

LINKED_NOTE = """# Linked

See [[Other Note]] and [[Other Note#Part|the part]], embed ![[picture.png]],
read [the guide](sub/guide.md#setup) and [the web](https://example.com/x.md).
"""

CJK_NOTE = """# 索引

数据库的索引很重要。これは東京の天気です。한국어 검색 엔진.
"""


def contract_insert(db, namespace, source_file, content, start_line=1, heading="[]"):
    """Insert one chunk the way a foreign writer following the contract
    does (DESIGN.md 1): BEGIN IMMEDIATE, INSERT OR IGNORE, a fresh id.
    Returns its seq."""
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        n_lines = content.count("\n") + 1
        con.execute(
            "INSERT OR IGNORE INTO chunks(id, namespace, source_file, content, content_hash, heading_hierarchy,"
            " start_line, end_line, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (secrets.token_hex(16), namespace, source_file, content, secrets.token_hex(16), heading, start_line,
             start_line + n_lines - 1, now, now))
        seq = con.execute("SELECT seq FROM chunks WHERE namespace = ? AND source_file = ? AND start_line = ?",
                          (namespace, source_file, start_line)).fetchone()[0]
        con.execute("COMMIT")
        return seq
    finally:
        con.close()


def contract_delete(db, seq):
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("DELETE FROM chunks WHERE seq = ?", (seq,))
        con.execute("COMMIT")
    finally:
        con.close()


def tags_of(db, path):
    return sorted(qt.query(db, "SELECT t.tag, t.is_file_level, c.start_line FROM chunk_tags t"
                               " JOIN chunks c ON c.seq = t.seq WHERE c.source_file = ?", (path,)))


def tags_of_seq(db, seq):
    return sorted(r[0] for r in qt.query(db, "SELECT tag FROM chunk_tags WHERE seq = ?", (seq,)))


def cjk_rowids(db, match):
    return sorted(r[0] for r in qt.query(db, "SELECT rowid FROM chunks_cjk WHERE chunks_cjk MATCH ?", (match,)))


class DerivedRowsTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)
        # Something else to index, so that quire writes without touching
        # the notes under test.
        self.other = os.path.join(self.tmp, "other")
        self.write("x.md", "# Other\n\nnothing derived here\n", root=self.other)

    def test_tags_come_from_front_matter_and_body(self):
        path = self.write("tagged.md", TAGGED_NOTE)
        self.index(self.notes)
        got = tags_of(self.db, path)
        self.assertIn(("alpha", 1, 1), got)
        self.assertIn(("beta", 1, 1), got)
        self.assertIn(("gamma", 0, 1), got)
        names = {t[0] for t in got}
        self.assertNotIn("notatag", names)
        self.assertNotIn("123", names)
        self.assertHealthy(self.db)

    def test_a_removed_tag_leaves_and_the_others_stay(self):
        path = self.write("tagged.md", TAGGED_NOTE)
        self.index(self.notes)
        self.write("tagged.md", TAGGED_NOTE.replace("#gamma", "plain"))
        self.index(self.notes)
        got = {t[0] for t in tags_of(self.db, path)}
        self.assertEqual(got, {"alpha", "beta"})
        self.assertEqual(qt.derived_orphans(self.db), 0)

    def test_links_are_stored_as_written_with_their_lines(self):
        path = self.write("linked.md", LINKED_NOTE)
        self.index(self.notes)
        got = qt.query(self.db, "SELECT l.kind, l.target, l.fragment, c.start_line + l.line_offset,"
                                " l.target_path, l.target_name FROM links l JOIN chunks c ON c.seq = l.seq"
                                " WHERE c.source_file = ? ORDER BY c.start_line, l.ord", (path,))
        self.assertIn(("wiki", "Other Note", None, 3, None, "other note"), got)
        self.assertIn(("wiki", "Other Note", "Part", 3, None, "other note"), got)
        self.assertIn(("embed", "picture.png", None, 3, None, "picture.png"), got)
        self.assertIn(("markdown", "sub/guide.md", "setup", 4, os.path.join(self.notes, "sub", "guide.md"), None),
                      got)
        self.assertFalse([r for r in got if "example.com" in r[1]], "a web link was stored")
        self.assertEqual(len(got), 4)

    def test_cjk_chunks_get_a_bigram_row_and_others_none(self):
        cjk = self.write("cjk.md", CJK_NOTE)
        self.write("plain.md", "# Plain\n\nno east asian text here\n")
        self.index(self.notes)
        seq = qt.scalar(self.db, "SELECT seq FROM chunks WHERE source_file = ?", (cjk,))
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM chunks_cjk"), 1)
        self.assertEqual(cjk_rowids(self.db, '"数据 据库"'), [seq])
        self.assertEqual(cjk_rowids(self.db, '"東京"'), [seq])
        self.assertEqual(cjk_rowids(self.db, '"검색"'), [seq])
        self.assertEqual(cjk_rowids(self.db, '"据数"'), [])
        self.assertHealthy(self.db)

    def test_chunks_of_a_foreign_writer_are_derived_on_the_next_write(self):
        self.index(self.other)
        foreign = os.path.join(self.notes, "foreign.md")
        seq = contract_insert(self.db, "default", foreign, "A foreign note about #delta and 数据库.")
        # Not derived yet: no quire process has written since.
        self.assertEqual(tags_of_seq(self.db, seq), [])
        self.write("y.md", "# Y\n\nanother note\n", root=self.other)
        self.index(self.other)
        self.assertEqual(tags_of_seq(self.db, seq), ["delta"])
        self.assertEqual(cjk_rowids(self.db, '"数据 据库"'), [seq])

    def test_foreign_chunks_that_move_in_quires_write_keep_their_derived_rows(self):
        # A foreign writer with the same chunker indexed a note (its rows
        # are not derived yet); the note then gets a line longer at the
        # top, so quire's diff keeps those chunks and moves them down.
        # They must come out of that write with their tags, links and CJK
        # row, as a fresh index of the note has them.
        filler = "word " * 60
        note = (f"# Title\n\nintro {filler}\n\n## Sub\n\nsecond #delta and [[Other]] {filler}\n\n"
                f"## More\n\nthird 数据库 {filler}\n")
        path = self.write("note.md", note)
        ref = os.path.join(self.tmp, "ref.db")
        self.index(self.notes, db=ref)
        self.index(self.other)
        for content, hash_, heading, start, end in qt.query(
                ref, "SELECT content, content_hash, heading_hierarchy, start_line, end_line FROM chunks"):
            with qt.connect(self.db) as con:
                con.execute("INSERT INTO chunks(id, source_file, content, content_hash, heading_hierarchy,"
                            " start_line, end_line, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
                            " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                            (secrets.token_hex(16), path, content, hash_, heading, start, end))
        self.write("note.md", note.replace("intro ", "intro\nmore intro "))
        summary = self.index(self.notes)
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM chunks WHERE start_line > 1"), 2)
        os.unlink(ref)
        self.index(self.notes, db=ref)
        self.assertEqual(qt.derived_rows(self.db), qt.derived_rows(ref), summary)
        self.assertHealthy(self.db)

    def test_a_foreign_delete_takes_the_derived_rows_along(self):
        path = self.write("tagged.md", TAGGED_NOTE)
        self.write("cjk.md", CJK_NOTE)
        self.index(self.notes)
        for seq, in qt.query(self.db, "SELECT seq FROM chunks"):
            contract_delete(self.db, seq)
        self.assertEqual(tags_of(self.db, path), [])
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM chunks_cjk"), 0)
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM links"), 0)
        self.assertEqual(qt.derived_orphans(self.db), 0)
        self.assertHealthy(self.db)

    def test_a_reused_seq_is_derived_again(self):
        # SQLite gives a new row max(seq) + 1: delete the highest chunk and
        # the next foreign insert takes its seq, which the derive mark
        # already passed. The trigger moves the mark back.
        self.write("a.md", "# A\n\nfirst #one\n")
        self.index(self.notes)
        top = qt.scalar(self.db, "SELECT max(seq) FROM chunks")
        contract_delete(self.db, top)
        seq = contract_insert(self.db, "default", os.path.join(self.notes, "z.md"), "replaced #two")
        self.assertEqual(seq, top)
        self.index(self.other)
        self.assertEqual(tags_of_seq(self.db, seq), ["two"])

    def test_a_version_1_database_is_upgraded_and_derived(self):
        path = self.write("tagged.md", TAGGED_NOTE)
        self.index(self.notes)
        expected = qt.derived_rows(self.db)
        self.assertTrue(expected)
        # What a contract-1 writer leaves: no derived tables, version 1.
        with qt.connect(self.db) as con:
            con.executescript("DROP TRIGGER chunks_derived_ad; DROP TABLE chunk_tags; DROP TABLE links;"
                              " DROP TABLE chunks_cjk; DROP TABLE derive_mark; DROP TABLE roots;"
                              " PRAGMA user_version = 1;")
        self.assertEqual(qt.derived_orphans(self.db), None)
        # A reader searches it as it is, without writing.
        self.assertEqual(len(self.search_json("gamma")), 1)
        self.assertEqual(qt.user_version(self.db), 1)
        # The next writer upgrades it and derives what was there.
        self.index(self.other)
        self.assertEqual(qt.user_version(self.db), qt.SCHEMA_VERSION)
        got = [r for r in qt.derived_rows(self.db) if r[2] == path]
        self.assertEqual(got, expected)
        self.assertHealthy(self.db)

    def test_a_version_2_database_gets_its_roots_marked_unwatched(self):
        self.write("a.md", "# A\n\nalpha\n")
        self.index(self.notes)
        # What a version-2 quire leaves: roots without config and rules.
        with qt.connect(self.db) as con:
            con.executescript("ALTER TABLE roots DROP COLUMN config; ALTER TABLE roots DROP COLUMN rules;"
                              " DROP TABLE unmounted; PRAGMA user_version = 2;")
        before = qt.query(self.db, "SELECT namespace, path, indexed_at FROM roots")
        self.assertEqual(len(before), 1)
        # A reader searches it as it is, unwritten.
        self.assertEqual(len(self.search_json("alpha")), 1)
        self.assertEqual(qt.user_version(self.db), 2)
        self.index(self.other)
        self.assertEqual(qt.user_version(self.db), qt.SCHEMA_VERSION)
        after = qt.query(self.db, "SELECT namespace, path, indexed_at, config, rules FROM roots ORDER BY path")
        self.assertEqual([r[:3] for r in after if r[1] == before[0][1]], before)
        self.assertEqual({r[3:] for r in after}, {(None, None)})
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM unmounted"), [(0,)])
        self.assertHealthy(self.db)

    def test_unchanged_reindex_writes_no_derived_rows(self):
        self.write("tagged.md", TAGGED_NOTE)
        self.write("cjk.md", CJK_NOTE)
        self.index(self.notes)
        before = qt.dump(self.db)
        self.index(self.notes)
        self.assertEqual(qt.dump(self.db), before)

    def test_moved_chunk_keeps_its_links_at_the_right_line(self):
        path = self.write("linked.md", LINKED_NOTE)
        self.index(self.notes)
        self.write("linked.md", "intro line\n\n" + LINKED_NOTE)
        self.index(self.notes)
        lines = sorted(r[0] for r in qt.query(
            self.db, "SELECT c.start_line + l.line_offset FROM links l JOIN chunks c ON c.seq = l.seq"
                     " WHERE c.source_file = ?", (path,)))
        self.assertEqual(lines, [5, 5, 5, 6])
        ref = os.path.join(self.tmp, "ref.db")
        self.index(self.notes, db=ref)
        self.assertEqual(qt.derived_rows(self.db), qt.derived_rows(ref))


if __name__ == "__main__":
    qt.main()
