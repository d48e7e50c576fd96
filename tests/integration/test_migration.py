#!/usr/bin/env python3
"""The uniqueness migration of the storage contract (DESIGN.md section 1):
a legacy database (no idx_chunks_unique_content, user_version 0) is left
alone by readers and migrated by the first writer: duplicate groups
collapse to their most-used row, the losers leave the FTS index with them,
and the result is the same however many writers race to do it."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

TABLES_SQL = """
CREATE TABLE files(
  namespace    TEXT NOT NULL,
  path         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  mtime_ns     INTEGER NOT NULL,
  file_hash    TEXT NOT NULL,
  indexed_at   TEXT NOT NULL,
  PRIMARY KEY (namespace, path));
CREATE TABLE chunks(
  seq               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  namespace         TEXT NOT NULL DEFAULT 'default',
  source_file       TEXT NOT NULL,
  content           TEXT NOT NULL,
  content_hash      TEXT NOT NULL,
  heading_hierarchy TEXT NOT NULL DEFAULT '[]',
  start_line        INTEGER NOT NULL,
  end_line          INTEGER NOT NULL,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  access_count      INTEGER NOT NULL DEFAULT 0,
  use_count         INTEGER NOT NULL DEFAULT 0);
"""

FTS_SQL = """
CREATE VIRTUAL TABLE chunks_fts USING fts5(
  content, source_file, heading_hierarchy,
  content='chunks', content_rowid='seq',
  tokenize='unicode61 remove_diacritics 2');
"""

TRIGGERS_SQL = {
    "chunks_ai": """
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)
  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);
END;""",
    "chunks_ad": """
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)
  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);
END;""",
    "chunks_au": """
CREATE TRIGGER chunks_au
AFTER UPDATE OF content, source_file, heading_hierarchy ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)
  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);
  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)
  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);
END;""",
}

UNIQUE_INDEX_SQL = ("CREATE UNIQUE INDEX idx_chunks_unique_content "
                    "ON chunks(namespace, source_file, content_hash, start_line);")


def cid(tag):
    """A 32-hex chunk id ending in tag (itself hex), so that ids sort by
    tag and a failure message shows which row is which."""
    int(tag, 16)
    return tag.rjust(32, "0")


def content_of(word):
    return f"{word} is the word of this paragraph, as a legacy writer stored it."


# (id tag, namespace, source_file, word, start_line, created_at, access_count, use_count)
LEGACY_CHUNKS = [
    # Group A: the most used row wins, by access_count + use_count (not access alone).
    ("a1", "default", "/legacy/a.md", "alphaword", 1, "2024-01-01T00:00:00.000Z", 4, 0),
    ("a2", "default", "/legacy/a.md", "alphaword", 1, "2024-03-01T00:00:00.000Z", 1, 5),
    ("a3", "default", "/legacy/a.md", "alphaword", 1, "2024-02-01T00:00:00.000Z", 0, 0),
    # Group B: equal use, the oldest wins.
    ("b1", "default", "/legacy/a.md", "bravoword", 3, "2024-05-01T00:00:00.000Z", 2, 1),
    ("b2", "default", "/legacy/a.md", "bravoword", 3, "2024-02-01T00:00:00.000Z", 3, 0),
    ("b3", "default", "/legacy/a.md", "bravoword", 3, "2024-01-01T00:00:00.000Z", 0, 0),
    # Group C: equal use and age, the smallest id wins (inserted out of id order).
    ("c3", "default", "/legacy/a.md", "charlieword", 5, "2024-01-01T00:00:00.000Z", 1, 0),
    ("c1", "default", "/legacy/a.md", "charlieword", 5, "2024-01-01T00:00:00.000Z", 0, 1),
    ("c2", "default", "/legacy/a.md", "charlieword", 5, "2024-01-01T00:00:00.000Z", 1, 0),
    # Not duplicates of group A: another line, another namespace, another file.
    ("d1", "default", "/legacy/a.md", "alphaword", 9, "2024-01-01T00:00:00.000Z", 0, 0),
    ("e1", "other", "/legacy/a.md", "alphaword", 1, "2024-01-01T00:00:00.000Z", 0, 0),
    ("f1", "default", "/legacy/f.md", "alphaword", 1, "2024-01-01T00:00:00.000Z", 0, 0),
    ("ff", "default", "/legacy/g.md", "golfword", 1, "2024-01-01T00:00:00.000Z", 7, 7),
]
SURVIVORS = sorted(cid(t) for t in ("a2", "b2", "c1", "d1", "e1", "f1", "ff"))
LOSERS = sorted(cid(t) for t in ("a1", "a3", "b1", "b3", "c2", "c3"))
DUPLICATE_GROUPS = 3


def build_legacy(path, triggers=tuple(TRIGGERS_SQL), with_fts=True, unique_index=False, journal_mode="delete",
                 version=0):
    """A database as an older writer left it. Chunks go in through whatever
    triggers it has, so the FTS index holds what such a writer made."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute(f"PRAGMA journal_mode={journal_mode}")
        con.executescript(TABLES_SQL)
        if with_fts:
            con.executescript(FTS_SQL)
        for name in triggers:
            con.executescript(TRIGGERS_SQL[name])
        if unique_index:
            con.execute(UNIQUE_INDEX_SQL)
        con.execute("BEGIN")
        for tag, ns, path_, word, line, created, access, use in LEGACY_CHUNKS:
            if unique_index and cid(tag) not in SURVIVORS:
                continue
            text = content_of(word)
            con.execute("INSERT INTO chunks(id, namespace, source_file, content, content_hash, heading_hierarchy,"
                        " start_line, end_line, created_at, updated_at, access_count, use_count)"
                        " VALUES (?, ?, ?, ?, ?, '[\"Legacy\"]', ?, ?, ?, ?, ?, ?)",
                        (cid(tag), ns, path_, text, hashlib.md5(text.encode()).hexdigest(), line, line, created,
                         created, access, use))
        for p in sorted({c[2] for c in LEGACY_CHUNKS}):
            con.execute("INSERT INTO files VALUES ('default', ?, 100, 1700000000000000000, ?,"
                        " '2024-01-01T00:00:00.000Z')", (p, "0" * 32))
        con.execute("COMMIT")
        con.execute(f"PRAGMA user_version = {version}")
    finally:
        con.close()
    return path


def chunk_rows(db):
    """Every column of every chunk, keyed by id."""
    with qt.connect(db) as con:
        con.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in con.execute("SELECT * FROM chunks")}


def seqs_of(rows_by_id, ids):
    return sorted(rows_by_id[i]["seq"] for i in ids)


class MigrationTestCase(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.empty = os.path.join(self.tmp, "empty")
        os.mkdir(self.empty)

    def migrate(self, db=None, **kwargs):
        """Open db as a writer, with nothing to index: only the migration writes."""
        return self.quire("index", self.empty, db=db or self.db, expect=0, **kwargs)

    def assertMigrated(self, db, before):
        """db holds exactly the survivors of `before` (the legacy rows),
        unchanged, with their FTS entries and nothing else."""
        after = chunk_rows(db)
        self.assertEqual(sorted(after), SURVIVORS)
        for i in SURVIVORS:
            self.assertEqual(after[i], before[i], f"survivor {i} changed")
        for i in LOSERS:
            self.assertNotIn(i, after)
        self.assertEqual(qt.fts_match_rowids(db, "alphaword"),
                         seqs_of(before, [cid(t) for t in ("a2", "d1", "e1", "f1")]))
        self.assertEqual(qt.fts_match_rowids(db, "bravoword"), seqs_of(before, [cid("b2")]))
        self.assertEqual(qt.fts_match_rowids(db, "charlieword"), seqs_of(before, [cid("c1")]))
        self.assertEqual(qt.fts_match_rowids(db, "golfword"), seqs_of(before, [cid("ff")]))
        self.assertIn("idx_chunks_unique_content", qt.schema_names(db, "index"))
        self.assertEqual(qt.schema_names(db, "trigger"),
                         ["chunks_ad", "chunks_ai", "chunks_au", "chunks_derived_ad"])
        self.assertEqual(qt.user_version(db), qt.SCHEMA_VERSION)
        self.assertHealthy(db)


class MigrationTests(MigrationTestCase):
    def test_readers_do_not_migrate(self):
        build_legacy(self.db)
        before, digest = qt.dump(self.db), qt.file_digest(self.db)

        status = json.loads(self.quire("status", "--json", expect=0).stdout)
        self.assertEqual(status["schema_version"], 0)
        self.assertEqual(status["duplicate_groups"], DUPLICATE_GROUPS)
        self.assertEqual(status["chunks"], len(LEGACY_CHUNKS))
        hits = self.search_json("golfword")
        self.assertEqual([h["id"] for h in hits], [cid("ff")])

        self.assertEqual(qt.dump(self.db), before)
        self.assertEqual(qt.file_digest(self.db), digest)
        self.assertNotIn("idx_chunks_unique_content", qt.schema_names(self.db, "index"))
        self.assertEqual(qt.user_version(self.db), 0)

    def test_writer_migration_keeps_the_most_used_row(self):
        build_legacy(self.db)
        before = chunk_rows(self.db)
        self.assertEqual(len(qt.fts_match_rowids(self.db, "bravoword")), 3)
        self.migrate()
        self.assertMigrated(self.db, before)
        status = json.loads(self.quire("status", "--json", expect=0).stdout)
        self.assertEqual((status["schema_version"], status["duplicate_groups"]), (qt.SCHEMA_VERSION, 0))

    def test_second_open_changes_nothing(self):
        build_legacy(self.db)
        self.migrate()
        once = qt.dump(self.db)
        p = self.migrate()
        self.assertEqual(p.stderr, "")
        self.assertEqual(qt.dump(self.db), once)

    def test_migration_without_triggers_rebuilds_the_fts_index(self):
        build_legacy(self.db, triggers=())
        self.assertEqual(qt.fts_docsize_count(self.db), 0)
        before = chunk_rows(self.db)
        self.migrate()
        self.assertMigrated(self.db, before)
        self.assertEqual([h["id"] for h in self.search_json("charlieword")], [cid("c1")])

    def test_migration_without_fts_table_creates_and_fills_it(self):
        build_legacy(self.db, triggers=(), with_fts=False)
        before = chunk_rows(self.db)
        self.migrate()
        self.assertMigrated(self.db, before)
        self.assertEqual([h["id"] for h in self.search_json("bravoword")], [cid("b2")])

    def test_migration_with_partial_triggers_repairs_a_stale_fts_index(self):
        # Only chunks_ai: a delete by that writer left its row in the FTS index.
        build_legacy(self.db, triggers=("chunks_ai",))
        with qt.connect(self.db) as con:
            text = content_of("staleword")
            con.execute("INSERT INTO chunks(id, source_file, content, content_hash, start_line, end_line,"
                        " created_at, updated_at) VALUES (?, '/legacy/s.md', ?, ?, 1, 1, '2024', '2024')",
                        (cid("5e"), text, hashlib.md5(text.encode()).hexdigest()))
            con.execute("DELETE FROM chunks WHERE id = ?", (cid("5e"),))
        self.assertNotEqual(qt.fts_match_rowids(self.db, "staleword"), [])
        self.assertIsNotNone(qt.fts_integrity_error(self.db))
        before = chunk_rows(self.db)
        self.migrate()
        self.assertMigrated(self.db, before)
        self.assertEqual(qt.fts_match_rowids(self.db, "staleword"), [])

    def test_unique_index_without_version_is_completed(self):
        # As if a migration stopped after creating the index.
        build_legacy(self.db, unique_index=True)
        before = chunk_rows(self.db)
        self.migrate()
        self.assertEqual(chunk_rows(self.db), before)
        self.assertEqual(qt.user_version(self.db), qt.SCHEMA_VERSION)
        self.assertHealthy(self.db)

    def test_writer_indexes_into_a_migrated_database(self):
        build_legacy(self.db)
        notes = os.path.join(self.tmp, "notes")
        self.write("new.md", "# New\n\nfreshword in a note written after the migration.\n", root=notes)
        self.index(notes)
        self.assertEqual(qt.user_version(self.db), qt.SCHEMA_VERSION)
        self.assertEqual(len(self.search_json("freshword")), 1)
        self.assertEqual(len(self.search_json("bravoword")), 1)
        self.assertHealthy(self.db)

    def test_legacy_chunks_without_seq_are_refused_untouched(self):
        con = sqlite3.connect(self.db, isolation_level=None)
        con.executescript(TABLES_SQL.replace("  seq               INTEGER PRIMARY KEY,\n", ""))
        con.execute("INSERT INTO chunks(id, source_file, content, content_hash, start_line, end_line, created_at,"
                    " updated_at) VALUES (?, '/x.md', 'x', ?, 1, 1, '2024', '2024')", (cid("ee"), "0" * 32))
        con.close()
        digest = qt.file_digest(self.db)
        p = self.quire("index", self.empty)
        self.assertEqual(p.returncode, 1)
        self.assertOneLine(p.stderr)
        self.assertIn(self.db, p.stderr)
        self.assertEqual(qt.file_digest(self.db), digest, "the database file was modified")


class ConcurrentMigrationTests(MigrationTestCase):
    ROUNDS = 10

    def test_two_writers_migrating_at_once_agree(self):
        templates = {}
        for mode in ("delete", "wal"):
            templates[mode] = build_legacy(os.path.join(self.tmp, f"legacy-{mode}.db"), journal_mode=mode)
        before = chunk_rows(templates["delete"])
        for i in range(self.ROUNDS):
            mode = ("delete", "wal")[i % 2]
            with self.subTest(round=i, journal_mode=mode):
                db = os.path.join(self.tmp, "db", f"round{i}.db")
                shutil.copyfile(templates[mode], db)
                procs = [self.popen("index", self.empty, db=db) for _ in range(2)]
                results = []
                for p in procs:
                    try:
                        out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        out, err = p.communicate()
                    results.append((p.returncode, out, err))
                for rc, out, err in results:
                    self.assertEqual(rc, 0, err)
                    self.assertNotIn("locked", err)
                self.assertMigrated(db, before)


if __name__ == "__main__":
    qt.main()
