#!/usr/bin/env python3
"""Databases quire must not (or cannot) use: foreign files, newer schemas,
locked, read-only and missing databases. Each is refused with one clear
line, and whatever was on disk is left as it was."""

import json
import os
import shutil
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from quiretest import section  # noqa: E402

SIDECARS = ("-wal", "-shm", "-journal")

# Short enough that a test waiting on a lock is quick, long enough that
# quire does wait (it must retry, not fail on the first SQLITE_BUSY).
LOCK_TIMEOUT_MS = "500"


# Damage to the full-text indexes that SQLite's integrity_check does not
# see: the SQL that does it, and what status --check then says.
FTS_DAMAGES = {
    "structure": ("UPDATE chunks_fts_data SET block = x'0102030405' WHERE id = 10", "chunks_fts"),
    # A leaf's size field (bytes 2-3) past its end: FTS5 finds it when
    # it reads the leaf, whatever the terms (they hold the test's random
    # folder name, so damage among them went unseen now and then).
    "leaf": ("UPDATE chunks_fts_data SET block = substr(block, 1, 2) || x'ffff' || substr(block, 5) "
             "WHERE id = (SELECT max(id) FROM chunks_fts_data)", "chunks_fts"),
    "rows": ("DELETE FROM chunks_fts_docsize WHERE id = (SELECT max(id) FROM chunks_fts_docsize)",
             "chunks_fts: 2 rows indexed, 3 to index"),
    "cjk": ("UPDATE chunks_cjk_data SET block = x'0102030405' WHERE id = 10", "chunks_cjk"),
    # Read as an empty index: every search found nothing, without an error.
    "empty structure": ("UPDATE chunks_fts_data SET block = x'00' WHERE id = 10",
                        "chunks_fts: it holds fewer words than rows"),
    "empty CJK structure": ("UPDATE chunks_cjk_data SET block = x'00' WHERE id = 10",
                            "chunks_cjk: it holds fewer words than rows"),
    "averages": ("DELETE FROM chunks_fts_data WHERE id = 1", "chunks_fts: its averages record is missing"),
}


class BadDatabaseTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        self.write("first.md", "# First\n\n" + section("Body", ["firstword"]))

    def commands(self, db):
        """Every subcommand that opens the database, as (name, args):
        the writer first, repair (a writer that creates nothing) last."""
        return [("index", ("index", self.notes)), ("search", ("search", "firstword")),
                ("status", ("status",)), ("status --json", ("status", "--json")), ("repair", ("repair",))]

    def assertRefused(self, db, args, expect_in=(), env=None, **kwargs):
        p = self.quire(*args, db=db, env=env, **kwargs)
        self.assertEqual(p.returncode, 1, f"{args}: {p.stderr}")
        self.assertOneLine(p.stderr)
        self.assertIn(db, p.stderr)
        for text in expect_in:
            self.assertIn(text, p.stderr)
        self.assertEqual(p.stdout, "")
        return p

    def run_as_nobody(self):
        """The keywords that run quire as 'nobody' when the test runs as
        root (file modes do not bind root), with self.tmp open to it;
        none otherwise. Skips the test as root without that account."""
        if not qt.is_root():
            return {}
        ids = qt.nobody_ids()
        if ids is None:
            self.skipTest("running as root (file modes do not bind root) and no 'nobody' account")
        os.chmod(self.tmp, 0o755)
        return {"user": ids[0], "group": ids[1], "extra_groups": []}

    def assertNoSidecars(self, db):
        for suffix in SIDECARS:
            self.assertFalse(os.path.exists(db + suffix), f"{db + suffix} was created")

    def test_foreign_files_are_refused_and_left_untouched(self):
        contents = {
            "random bytes": b"\x7fELF" + os.urandom(64 * 1024),
            "a Markdown note": b"# Not a database\n\nJust notes.\n" * 50,
            "shorter than a header": b"hi\n",
            "SQLite magic, then garbage": b"SQLite format 3\x00" + os.urandom(8192),
        }
        for name, data in contents.items():
            db = os.path.join(self.tmp, "db", name.replace(" ", "-").replace(",", ""))
            with open(db, "wb") as f:
                f.write(data)
            for command, args in self.commands(db):
                with self.subTest(file=name, command=command):
                    self.assertRefused(db, args)
                    with open(db, "rb") as f:
                        self.assertEqual(f.read(), data, "the file was modified")
                    self.assertNoSidecars(db)

    def test_directory_as_database_is_refused(self):
        db = os.path.join(self.tmp, "db", "a-directory")
        os.mkdir(db)
        for command, args in self.commands(db):
            with self.subTest(command=command):
                self.assertRefused(db, args)
                self.assertEqual(os.listdir(db), [])

    def test_database_with_two_hard_links_is_refused(self):
        # SQLite names the -wal after the name it opens: a writer through
        # each link corrupts the file, and a quired per name saw no other.
        self.index(self.notes)
        qt.checkpoint(self.db)
        link = os.path.join(self.tmp, "db", "link.db")
        os.link(self.db, link)
        with open(self.db, "rb") as f:
            data = f.read()
        self.write("first.md", "# First\n\n" + section("Body", ["changedword"]))
        for db in (self.db, link):
            for command, args in self.commands(db):
                with self.subTest(name=os.path.basename(db), command=command):
                    self.assertRefused(db, args, expect_in=("2 hard links",))
            p = self.run_program([qt.QUIRED, "--db", db, self.notes], expect=1, timeout=qt.DAEMON_TIMEOUT)
            self.assertOneLine(p.stderr)
            self.assertIn(f"Refusing to open {db}: the file has 2 hard links", p.stderr)
        self.assertFalse(os.path.exists(link + "-wal"), "a -wal was made for the second name")
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), data, "the database file was modified")
        # One name again: served and written as before.
        os.unlink(link)
        self.index(self.notes)
        self.assertEqual(len(qt.fts_match_rowids(self.db, "changedword")), 1)
        self.assertHealthy(self.db)

    def test_empty_file_is_a_new_database(self):
        open(self.db, "wb").close()
        # Readers find no index in it, and leave it empty.
        self.assertRefused(self.db, ("search", "firstword"), expect_in=("No index",))
        self.assertRefused(self.db, ("status",), expect_in=("No index",))
        self.assertEqual(os.path.getsize(self.db), 0)
        # A writer takes it as a new database.
        self.index(self.notes)
        self.assertEqual(qt.user_version(self.db), qt.SCHEMA_VERSION)
        self.assertEqual(qt.file_count(self.db), 1)
        self.assertHealthy(self.db)

    def make_newer_database(self, journal_mode, version=qt.SCHEMA_VERSION + 1):
        self.index(self.notes)
        with qt.connect(self.db) as con:
            con.execute(f"PRAGMA journal_mode={journal_mode}")
            con.execute(f"PRAGMA user_version = {version}")
        qt.checkpoint(self.db)

    def check_newer_is_refused(self, version=qt.SCHEMA_VERSION + 1):
        for command, args in self.commands(self.db):
            with self.subTest(command=command):
                with open(self.db, "rb") as f:
                    data = f.read()
                self.write("first.md", "# First\n\n" + section("Body", ["changedword"]))
                self.assertRefused(self.db, args, expect_in=("version", str(version)))
                with open(self.db, "rb") as f:
                    self.assertEqual(f.read(), data, "the database file was modified")
        self.assertEqual(qt.user_version(self.db), version)
        self.assertEqual(qt.fts_match_rowids(self.db, "changedword"), [])

    def test_newer_schema_version_is_refused_and_left_untouched(self):
        self.make_newer_database("WAL")
        self.check_newer_is_refused()

    def test_negative_schema_version_is_refused_and_left_untouched(self):
        # No quire writes one; migrating would overwrite whatever set it.
        self.make_newer_database("WAL", version=-3)
        self.check_newer_is_refused(version=-3)

    def test_newer_schema_in_rollback_journal_mode_is_left_untouched(self):
        # Not even switched to WAL: that rewrites the file header.
        self.make_newer_database("DELETE")
        self.check_newer_is_refused()
        self.assertEqual(qt.scalar(self.db, "PRAGMA journal_mode"), "delete")

    def test_write_locked_database_fails_with_locked_error(self):
        self.index(self.notes)
        before = qt.dump(self.db)
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        env = self.env(QUIRE_LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS)
        holder = sqlite3.connect(self.db, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # in WAL mode: the write lock; readers go on
            p = self.assertRefused(self.db, ("index", self.notes), expect_in=("locked",), env=env, timeout=60)
            self.assertNotIn("No index", p.stderr)
            # Readers are not blocked by a writer.
            hits = self.quire("search", "firstword", env=env, expect=0, timeout=60).stdout
            self.assertIn("first.md", hits)
            self.quire("status", env=env, expect=0, timeout=60)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.assertEqual(qt.dump(self.db), before, "rows changed while the lock was held")
        # The next run, with the lock gone, does the work.
        self.assertEqual(self.index(self.notes, env=env)["new"], 1)
        self.assertNotEqual(qt.fts_match_rowids(self.db, "secondword"), [])
        self.assertHealthy(self.db)

    def test_exclusively_locked_database_fails_with_locked_error(self):
        self.index(self.notes)
        before = qt.dump(self.db)
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        env = self.env(QUIRE_LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS)
        holder = sqlite3.connect(self.db, isolation_level=None)
        try:
            # After a write under locking_mode=EXCLUSIVE the connection keeps
            # the file lock: no other connection may even read.
            holder.execute("PRAGMA locking_mode=EXCLUSIVE")
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("UPDATE files SET indexed_at = indexed_at")
            holder.execute("COMMIT")
            for command, args in self.commands(self.db):
                with self.subTest(command=command):
                    p = self.assertRefused(self.db, args, expect_in=("locked",), env=env, timeout=60)
                    self.assertNotIn("No index", p.stderr)
        finally:
            holder.close()
        self.assertEqual(qt.dump(self.db), before, "rows changed while the lock was held")
        self.assertEqual(self.index(self.notes, env=env)["new"], 1)
        self.assertHealthy(self.db)

    def test_read_only_database_refuses_writes_and_serves_reads(self):
        run_as = self.run_as_nobody()
        self.index(self.notes)
        qt.checkpoint(self.db)
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        if run_as:
            qt.chown_tree(self.tmp, run_as["user"], run_as["group"])
        os.chmod(self.db, 0o444)
        digest = qt.file_digest(self.db)

        self.assertRefused(self.db, ("index", self.notes), expect_in=("read-only",), **run_as)
        self.assertEqual(qt.file_digest(self.db), digest)
        self.assertIn("first.md", self.quire("search", "firstword", expect=0, **run_as).stdout)
        self.assertIn("files:", self.quire("status", expect=0, **run_as).stdout)
        self.assertEqual(qt.file_digest(self.db), digest)
        self.assertEqual(qt.fts_match_rowids(self.db, "secondword"), [])

    def test_database_in_a_folder_the_user_cannot_write_serves_reads(self):
        """Someone else's index, closed cleanly, in a folder this user may
        not write (the file itself writable or not): SQLite cannot make
        the -shm a WAL reader needs, and every reader failed with "attempt
        to write a readonly database". Readers open it as it is; a writer
        is told the folder is not writable."""
        run_as = self.run_as_nobody()
        self.index(self.notes)
        qt.checkpoint(self.db)
        folder = os.path.join(self.tmp, "shared")
        os.mkdir(folder)
        db = os.path.join(folder, "index.db")
        shutil.copyfile(self.db, db)
        os.chmod(db, 0o666)
        os.chmod(folder, 0o555)
        self.addCleanup(os.chmod, folder, 0o755)
        self.assertNoSidecars(db)
        digest = qt.file_digest(db)

        self.assertIn("first.md", self.quire("search", "firstword", db=db, expect=0, **run_as).stdout)
        self.assertIn("files:", self.quire("status", db=db, expect=0, **run_as).stdout)
        self.assertRefused(db, ("index", self.notes), expect_in=("its folder is not writable",), **run_as)
        self.assertEqual(qt.file_digest(db), digest)
        self.assertNoSidecars(db)

        # Through a symlink it is the folder of the file that counts, where
        # SQLite puts the -wal and -shm: a link in a writable folder to it
        # is read as it is, and a link in that folder to a database in a
        # writable one is written.
        os.chmod(folder, 0o755)
        link = os.path.join(self.tmp, "link.db")
        os.symlink(db, link)
        writable = os.path.join(self.tmp, "writable")
        os.mkdir(writable)
        shutil.copyfile(self.db, os.path.join(writable, "index.db"))
        os.symlink(os.path.join(writable, "index.db"), os.path.join(folder, "elsewhere.db"))
        if run_as:
            qt.chown_tree(writable, run_as["user"], run_as["group"])
        os.chmod(folder, 0o555)
        self.assertIn("first.md", self.quire("search", "firstword", db=link, expect=0, **run_as).stdout)
        self.assertRefused(link, ("index", self.notes), expect_in=("its folder is not writable",), **run_as)
        self.assertNoSidecars(db)
        self.quire("index", self.notes, db=os.path.join(folder, "elsewhere.db"), expect=0, **run_as)

    def test_database_on_a_read_only_filesystem_serves_reads(self):
        """A read-only bind mount of the database's folder: SQLite cannot
        create the -shm a WAL reader needs (it went with the last
        connection), which made every reader fail with 'unable to open
        database file'. Readers open it as immutable there; a writer
        says the filesystem is read-only."""
        if not qt.can_mount(self.tmp):
            self.skipTest("cannot mount here (needs root and a mount namespace that allows it)")
        self.index(self.notes)
        ro = os.path.join(self.tmp, "ro")
        os.mkdir(ro)
        subprocess.run(["mount", "--bind", os.path.dirname(self.db), ro], check=True)
        self.addCleanup(subprocess.run, ["umount", ro], capture_output=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
        db = os.path.join(ro, os.path.basename(self.db))
        self.assertNoSidecars(db)
        digest = qt.file_digest(db)

        self.assertIn("first.md", self.quire("search", "firstword", db=db, expect=0).stdout)
        self.assertIn("files:", self.quire("status", db=db, expect=0).stdout)
        self.assertRefused(db, ("index", self.notes), expect_in=("read-only",))
        self.assertEqual(qt.file_digest(db), digest)
        self.assertNoSidecars(db)

        # A live database seen read-only (a snapshot taken while it was
        # open, a read-only bind mount of one being written): what its
        # -wal holds is the newest part of it, which an immutable open
        # would not read.
        subprocess.run(["umount", ro], check=True)
        with qt.connect(self.db) as holder:  # keeps the -wal from a checkpoint at close
            holder.execute("SELECT count(*) FROM chunks").fetchall()
            self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
            self.index(self.notes)
            self.assertGreater(os.path.getsize(self.db + "-wal"), 0)
            subprocess.run(["mount", "--bind", os.path.dirname(self.db), ro], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
            self.assertIn("second.md", self.quire("search", "secondword", db=db, expect=0).stdout)
            self.assertIn("files:            2", self.quire("status", db=db, expect=0).stdout)

    def test_status_check_finds_a_damaged_index_that_searches_do_not(self):
        """A key byte changed in a page of idx_chunks_unique_content: the
        page is well formed, so every statement still answers (status
        says 0 duplicate groups), and only a check of every page sees it."""
        self.index(self.notes)
        p = self.quire("status", "--check", expect=0)
        self.assertIn("integrity:        ok\n", p.stdout)
        self.assertEqual(json.loads(self.quire("status", "--check", "--json", expect=0).stdout)["integrity"],
                         {"ok": True, "problems": 0, "first_problem": None})
        self.assertNotIn("integrity", self.quire("status", "--json", expect=0).stdout)
        self.damage_unique_index()

        self.assertIn("duplicate groups: 0", self.quire("status", expect=0).stdout)
        p = self.quire("status", "--check", expect=1)
        self.assertRegex(p.stdout, r"integrity: +DAMAGED: \d+ problems?(?: or more)?, first: row \d+ missing from "
                                   r"index idx_chunks_unique_content\n")
        check = json.loads(self.quire("status", "--check", "--json", expect=1).stdout)["integrity"]
        self.assertFalse(check["ok"])
        self.assertGreater(check["problems"], 0)
        self.assertIn("idx_chunks_unique_content", check["first_problem"])

    def test_status_check_reads_the_full_text_index_whole(self):
        """SQLite 3.40's integrity_check does not look into FTS5: a
        damaged structure record (every search failed with "vtable
        constructor failed"), a damaged leaf and an index missing rows
        were all "ok"."""
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        self.write("ja.md", "# 日本語\n\n日本語のテキスト\n")
        self.index(self.notes)
        self.assertIn("integrity:        ok\n", self.quire("status", "--check", expect=0).stdout)
        sound = os.path.join(self.tmp, "sound.db")
        qt.checkpoint(self.db)
        shutil.copyfile(self.db, sound)
        for name, (sql, expected) in FTS_DAMAGES.items():
            with self.subTest(damage=name):
                shutil.copyfile(sound, self.db)
                with qt.connect(self.db) as con:
                    con.execute(sql)
                self.assertEqual(qt.scalar(self.db, "PRAGMA integrity_check"), "ok")
                p = self.quire("status", "--check", expect=1)
                self.assertRegex(p.stdout, r"integrity: +DAMAGED: 1 problem, first: full-text index ")
                self.assertIn(expected, p.stdout)

    def damage_unique_index(self):
        """Change a key byte in a leaf of idx_chunks_unique_content (the
        page stays well formed: only integrity_check sees it)."""
        qt.checkpoint(self.db)
        page_size = qt.scalar(self.db, "PRAGMA page_size")
        page = qt.scalar(self.db, "SELECT pageno FROM dbstat WHERE name = 'idx_chunks_unique_content' "
                                  "AND pagetype = 'leaf' LIMIT 1")
        with open(self.db, "r+b") as f:
            f.seek((page - 1) * page_size)
            data = bytearray(f.read(page_size))
            at = [m.start() for m in re.finditer(rb"[0-9a-f]{32}", bytes(data))][-1] + 5
            data[at] = ord("0") if data[at] != ord("0") else ord("1")
            f.seek((page - 1) * page_size)
            f.write(data)

    def test_repair_rebuilds_damaged_indexes_keeping_every_row(self):
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        self.write("ja.md", "# 日本語\n\n日本語のテキスト\n")
        self.index(self.notes)
        with qt.connect(self.db) as con:
            con.execute("UPDATE chunks SET access_count = seq * 3, use_count = 7")
        rows_sql = "SELECT * FROM chunks ORDER BY seq"
        rows = qt.query(self.db, rows_sql)
        qt.checkpoint(self.db)
        sound = os.path.join(self.tmp, "sound.db")
        shutil.copyfile(self.db, sound)
        damages = {name: lambda sql=sql: qt.query(self.db, sql) for name, (sql, _) in FTS_DAMAGES.items()}
        damages["unique index"] = self.damage_unique_index

        def cjk_row_lost():
            qt.query(self.db, "DELETE FROM chunks_cjk_content WHERE id = (SELECT seq FROM chunks "
                              "WHERE source_file LIKE '%/ja.md')")

        def duplicate_let_in():
            # A damaged unique index let an INSERT OR IGNORE of a key
            # already there through: REINDEX alone would fail.
            self.damage_unique_index()
            with qt.connect(self.db) as con:
                con.execute("INSERT OR IGNORE INTO chunks(id, namespace, source_file, content, content_hash,"
                            " heading_hierarchy,"
                            " start_line, end_line, created_at, updated_at) SELECT lower(hex(randomblob(16))),"
                            " namespace, source_file, content, content_hash, heading_hierarchy, start_line, end_line,"
                            " created_at, updated_at FROM chunks")
            self.assertGreater(qt.scalar(self.db, "SELECT count(*) FROM chunks NOT INDEXED"), len(rows))

        damages["CJK row lost"] = cjk_row_lost
        damages["duplicates let in"] = duplicate_let_in
        for name, damage in damages.items():
            with self.subTest(damage=name):
                shutil.copyfile(sound, self.db)
                damage()
                self.quire("status", "--check", expect=1)
                p = self.quire("repair", expect=0)
                self.assertEqual(p.stdout, f"repaired {self.db}: indexes rebuilt from the rows; integrity: ok\n")
                self.assertEqual(p.stderr, f"quire: Collapsed 1 duplicate chunks in {self.db}\n"
                                 if name == "duplicates let in" else "")
                self.assertIn("integrity:        ok\n", self.quire("status", "--check", expect=0).stdout)
                self.assertEqual(qt.query(self.db, rows_sql), rows, "rows, ids or counters changed")
                # テキスト only in the CJK index: unicode61 reads the line as one word.
                for word, note in (("firstword", "first.md"), ("secondword", "second.md"), ("テキスト", "ja.md")):
                    hits = self.quire("search", "--json", word, expect=0).stdout.splitlines()
                    self.assertEqual([json.loads(h)["source_file"] for h in hits],
                                     [os.path.join(os.path.realpath(self.notes), note)], word)
                # And written to again as before.
                self.write("third.md", "# Third\n\n" + section("Body", ["thirdword"]))
                self.index(self.notes)
                self.assertEqual(len(qt.fts_match_rowids(self.db, "thirdword")), 1)
                os.unlink(os.path.join(self.notes, "third.md"))

    def test_a_damaged_full_text_index_names_the_cure(self):
        self.index(self.notes)
        with qt.connect(self.db) as con:
            con.execute(FTS_DAMAGES["structure"][0])
        self.write("second.md", "# Second\n\n" + section("Body", ["secondword"]))
        for args in (("search", "firstword"), ("index", self.notes)):
            with self.subTest(command=args[0]):
                self.assertRefused(self.db, args, expect_in=("its full-text index is damaged",
                                                             "'quire repair' rebuilds it"))

    def test_repair_of_damaged_rows_fails_with_one_line(self):
        self.index(self.notes)
        qt.checkpoint(self.db)
        page_size = qt.scalar(self.db, "PRAGMA page_size")
        page = qt.scalar(self.db, "SELECT rootpage FROM sqlite_schema WHERE name = 'chunks'")
        with open(self.db, "r+b") as f:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * 64)
        with open(self.db, "rb") as f:
            data = f.read()
        p = self.assertRefused(self.db, ("repair",), expect_in=("malformed", "move the database aside and index the "
                                                                             "notes again"))
        self.assertNotIn("'quire repair'", p.stderr)
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), data, "the failed repair changed the file")

    def test_repair_of_an_empty_file_writes_nothing(self):
        open(self.db, "wb").close()
        self.assertRefused(self.db, ("repair",), expect_in=("No index",))
        self.assertEqual(os.path.getsize(self.db), 0)
        self.assertNoSidecars(self.db)

    def test_missing_database_is_not_created_by_readers(self):
        in_missing_dir = os.path.join(self.tmp, "no-such-dir", "sub", "index.db")
        in_existing_dir = os.path.join(self.tmp, "db", "missing.db")
        for db in (in_missing_dir, in_existing_dir):
            for command, args in self.commands(db)[1:]:
                with self.subTest(db=db, command=command):
                    self.assertRefused(db, args, expect_in=("No index",))
                    self.assertFalse(os.path.exists(db))
                    self.assertNoSidecars(db)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "no-such-dir")))
        self.assertEqual(os.listdir(os.path.join(self.tmp, "db")), [])
        # Nor by readers of the default database.
        p = self.quire("status", db=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No index", p.stderr)
        self.assertFalse(os.path.exists(self.xdg))


if __name__ == "__main__":
    qt.main()
