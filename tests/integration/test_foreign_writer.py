#!/usr/bin/env python3
"""Another program writing the same database by the storage contract
(BEGIN IMMEDIATE, INSERT OR IGNORE, the shared schema) while quire indexes
the same tree: neither fails, and the rows stay unique with an FTS index
that holds exactly one entry per chunk.

The foreign writer is this file run with --writer: it inserts, with fresh
ids, the very rows quire computes for the tree (read from a reference
index), so every insert races quire for the same unique key.

StaleReadTests: a note that changes, and is indexed by another writer,
between quire's read of it and quire's write lock is not set back to what
quire read."""

import ctypes
import json
import os
import random
import secrets
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from contractwriter import Writer, utc_now  # noqa: E402

CORPUS_PART = ["tldr/pages/linux", "tldr/pages.ja", "tldr/pages.ru"]
BATCH_ROWS = 100
MIN_PASSES = 2
# A pause between the writer's transactions: a pace like a real program's,
# which leaves quire room to commit in between (for the interleaving; no
# outcome depends on it).
WRITER_PAUSE = 0.005


# --- watching a file be read ----------------------------------------------

IN_CLOSE_NOWRITE = 0x10


def wait_until_read(path, start, timeout=60.0):
    """Run start() and return once some process has closed path after
    reading it (inotify IN_CLOSE_NOWRITE, through libc since Python's
    standard library has no inotify); returns what start() returned."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        if libc.inotify_add_watch(fd, os.fsencode(path), IN_CLOSE_NOWRITE) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        result = start()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise AssertionError(f"nobody read {path} within {timeout:.0f} s")
        os.read(fd, 4096)
        return result
    finally:
        os.close(fd)


# --- the foreign writer (a child process) -------------------------------

def writer_main(db, rows_json, signal_dir):
    """Signals through files in signal_dir: it creates 'loaded' once it has
    its rows and 'ready' after its first commit; it starts writing when
    'go' exists and stops (after MIN_PASSES) when 'stop' exists."""
    def signal(name):
        return os.path.join(signal_dir, name)

    with open(rows_json, encoding="utf-8") as f:
        all_rows = json.load(f)
    open(signal("loaded"), "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(signal("go")):
        if time.monotonic() > deadline:
            print("no 'go' within 120 s", file=sys.stderr)
            return 1
        time.sleep(0.001)
    w = Writer(db)
    w.ensure_schema()
    inserted = passes = 0
    # Opposite orders on alternate passes, so that the writer meets quire
    # (which goes through the tree in path order) somewhere in the middle.
    while passes < MIN_PASSES or not os.path.exists(signal("stop")):
        order = all_rows[::-1] if passes % 2 == 0 else all_rows
        for i in range(0, len(order), BATCH_ROWS):
            inserted += w.insert(order[i:i + BATCH_ROWS])
            if not os.path.exists(signal("ready")):
                open(signal("ready"), "w").close()
            time.sleep(WRITER_PAUSE)
        passes += 1
    print(json.dumps({"passes": passes, "inserted": inserted, "retries": w.retries}))
    return 0


# --- the tests ------------------------------------------------------------

class ForeignWriterTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.tree = qt.copy_tree(qt.unpack_corpus(CORPUS_PART), os.path.join(self.tmp, "tree"))
        self.ref = os.path.join(self.tmp, "ref.db")
        self.rng = random.Random(20240501)

    def reference_rows(self):
        """Index the tree as it is now, alone, into a fresh database: the
        rows every writer must end up agreeing on."""
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.ref + suffix):
                os.unlink(self.ref + suffix)
        self.index(self.tree, db=self.ref)
        rows = qt.query(self.ref, "SELECT namespace, source_file, content, content_hash, heading_hierarchy,"
                                  " start_line, end_line FROM chunks ORDER BY source_file, start_line")
        path = os.path.join(self.tmp, "rows.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f)
        return path

    def race(self, db, rows_json, writer_first):
        """Run quire index and the foreign writer at the same time (or, with
        writer_first, start quire once the writer has committed once)."""
        signals = qt.make_tempdir("quire-signals-")
        self.addCleanup(qt.rmtree, signals)

        def signal(name):
            return os.path.join(signals, name)

        writer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", db, rows_json, signals],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            qt.wait_for(lambda: os.path.exists(signal("loaded")) or writer.poll() is not None, timeout=120,
                        what="the foreign writer to load its rows")
            open(signal("go"), "w").close()
            if writer_first:
                qt.wait_for(lambda: os.path.exists(signal("ready")) or writer.poll() is not None, timeout=120,
                            what="the foreign writer's first commit")
            quire = self.popen("index", self.tree, db=db)
            try:
                q_out, q_err = quire.communicate(timeout=qt.RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                quire.kill()
                quire.communicate()
                raise
        finally:
            open(signal("stop"), "w").close()
            try:
                w_out, w_err = writer.communicate(timeout=qt.RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                writer.kill()
                writer.communicate()
                raise
        self.assertEqual(writer.returncode, 0, f"foreign writer failed:\n{w_err}")
        self.assertEqual(quire.returncode, 0, f"quire index failed:\n{q_err}")
        self.assertNotIn("locked", q_err)
        summary = qt.parse_summary(q_out)
        stats = json.loads(w_out)
        # How the race went, for the log: which writer wins each key is up
        # to the scheduler, so it is reported, not asserted.
        print(f"\n  foreign writer: {stats}; quire: {summary}", file=sys.stderr)
        return stats

    def check(self, db):
        self.assertHealthy(db)
        self.assertEqual(qt.rows(db), qt.rows(self.ref))
        self.assertEqual(qt.user_version(db), qt.SCHEMA_VERSION)

    def modify_some_files(self, n_changed=40, n_deleted=10, n_added=10):
        files = qt.markdown_files(self.tree)
        self.rng.shuffle(files)
        for path in files[:n_changed]:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"\n## Added\n\nA paragraph added by the test, {secrets.token_hex(4)}.\n")
        for path in files[n_changed:n_changed + n_deleted]:
            os.unlink(path)
        for i in range(n_added):
            self.write(f"added/note{i}.md", f"# Added {i}\n\nA new note, number {i}.\n", root=self.tree)

    def test_fresh_database_racing_a_foreign_writer(self):
        rows_json = self.reference_rows()
        for i, writer_first in enumerate((False, True, False, True)):
            with self.subTest(round=i, writer_first=writer_first):
                db = os.path.join(self.tmp, "db", f"fresh{i}.db")
                stats = self.race(db, rows_json, writer_first)
                self.assertGreaterEqual(stats["passes"], MIN_PASSES)
                self.check(db)

    def test_reindex_racing_a_foreign_writer(self):
        self.index(self.tree)
        for i in range(3):
            with self.subTest(round=i):
                self.modify_some_files()
                rows_json = self.reference_rows()
                self.race(self.db, rows_json, writer_first=i % 2 == 1)
                self.check(self.db)


class StaleReadTests(qt.QuireTestCase):
    """What quire read must still be on disk when it writes."""

    def test_an_older_read_never_overwrites_a_newer_index(self):
        # quire index reads a note; before it gets the write lock, the note
        # changes and another writer (quired, say) indexes the new content.
        # quire must not then write what it read, which is older: nobody
        # would look at the note again, and the edit would be lost.
        notes = os.path.join(self.tmp, "notes")
        note = self.write("note.md", f"# Note\n\n{qt.section('Old', ['oldword'])}")
        self.index(self.write("other.md", "# Other\n\nA note for the database to exist.\n"))
        # The rows of the newer content, from an index of it elsewhere.
        newer = f"# Note\n\n{qt.section('New', ['newword'])}\n{qt.section('More', ['newword', 'more'])}"
        ref_note = self.write("note.md", newer, root=os.path.join(self.tmp, "ref-tree"))
        ref = os.path.join(self.tmp, "ref.db")
        self.index(ref_note, db=ref)
        new_rows = qt.query(ref, "SELECT content, content_hash, heading_hierarchy, start_line, end_line FROM chunks")
        file_hash = qt.scalar(ref, "SELECT file_hash FROM files")
        path = os.path.realpath(note)

        with qt.connect(self.db) as con:
            con.execute("BEGIN IMMEDIATE")  # quire index waits for this
            quire = wait_until_read(note, lambda: self.popen("index", notes))
            with open(note, "w", encoding="utf-8") as f:
                f.write(newer)
            st = os.stat(note)
            now = utc_now()
            con.executemany("INSERT OR IGNORE INTO chunks(id, namespace, source_file, content, content_hash,"
                            " heading_hierarchy, start_line, end_line, created_at, updated_at)"
                            " VALUES (lower(hex(randomblob(16))), 'default', ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(path, *row, now, now) for row in new_rows])
            con.execute("INSERT INTO files(namespace, path, size, mtime_ns, file_hash, indexed_at)"
                        " VALUES ('default', ?, ?, ?, ?, ?)", (path, st.st_size, st.st_mtime_ns, file_hash, now))
            con.execute("COMMIT")
        out, err = quire.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual(quire.returncode, 0, err)

        self.assertEqual(sorted(r for r in qt.rows(self.db) if r[0] == path),
                         sorted((path, r[1], r[3]) for r in new_rows))
        self.assertEqual(qt.query(self.db, "SELECT size, mtime_ns, file_hash FROM files WHERE path = ?", (path,)),
                         [(st.st_size, st.st_mtime_ns, file_hash)])
        self.assertEqual(qt.fts_match_rowids(self.db, "oldword"), [])
        self.assertNotEqual(qt.fts_match_rowids(self.db, "newword"), [])
        self.assertHealthy(self.db)

    def test_an_older_refusal_never_drops_a_newer_note(self):
        # quire index reads a note while it holds a NUL byte, a refusal
        # that drops its rows; before quire gets the write lock, the note
        # is a good note again (and another writer may have indexed it).
        # The refusal no longer holds: the note is read again, not dropped.
        notes = os.path.join(self.tmp, "notes")
        note = self.write("note.md", "# Note\n\nfirstword\n")
        self.write("other.md", "# Other\n\nA note for the batch.\n")
        self.index(notes)
        with open(note, "wb") as f:
            f.write(b"# Note\n\nbinary\0bytes\n")
        with qt.connect(self.db) as con:
            con.execute("BEGIN IMMEDIATE")  # quire index waits for this
            quire = wait_until_read(note, lambda: self.popen("index", notes))
            with open(note, "w", encoding="utf-8") as f:
                f.write("# Note\n\nsecondword, a good note again\n")
            con.execute("COMMIT")
        out, err = quire.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual(quire.returncode, 0, err)

        path = os.path.realpath(note)
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM files WHERE path = ?", (path,)), [(1,)])
        self.assertNotEqual(qt.fts_match_rowids(self.db, "secondword"), [])
        self.assertEqual(qt.fts_match_rowids(self.db, "firstword"), [])
        self.assertHealthy(self.db)


class UnfiledChunksTests(qt.QuiredTestCase):
    """Chunks another writer stored without a files row (all a legacy
    database has) belong to their file like any: a walk, a sync of the
    path and a folder's removal took only files rows for the notes there
    were, so such chunks outlived their file for good. Outside the roots
    they are not quire's to judge, and stay."""

    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        self.write("keep.md", "# Keep\n\nkeepword\n")
        self.write("sub/kept.md", "# Kept\n\nkeptword\n")
        self.root = os.path.realpath(self.notes)

    def add_unfiled(self, path, word):
        w = Writer(self.db)
        try:
            w.insert([("default", path, f"# Note\n\n{word}", secrets.token_hex(16), "[]", 1, 3)])
        finally:
            w.close()
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM files WHERE path = ?", (path,)), 0)

    def chunk_paths(self):
        return {p for (p,) in qt.query(self.db, "SELECT source_file FROM chunks")}

    def test_a_walk_drops_the_chunks_of_gone_files_and_reads_the_present_ones(self):
        self.index(self.notes)
        present = os.path.realpath(self.write("present.md", "# Present\n\npresentword\n"))
        away = os.path.join(os.path.realpath(self.tmp), "elsewhere", "away.md")
        self.add_unfiled(os.path.join(self.root, "sub", "ghost.md"), "ghostword")
        self.add_unfiled(present, "staleword")  # an older version of the note
        self.add_unfiled(away, "awayword")

        summary = self.index(self.notes)
        self.assertEqual((summary["new"], summary["removed"]), (1, 1))
        self.assertEqual(self.chunk_paths(), {os.path.join(self.root, "keep.md"),
                                              os.path.join(self.root, "sub", "kept.md"), present, away})
        self.assertEqual(qt.fts_match_rowids(self.db, "ghostword"), [])
        self.assertEqual(qt.fts_match_rowids(self.db, "staleword"), [])
        self.assertNotEqual(qt.fts_match_rowids(self.db, "presentword"), [])
        self.assertNotEqual(qt.fts_match_rowids(self.db, "awayword"), [])
        self.assertEqual(qt.scalar(self.db, "SELECT count(*) FROM files WHERE path = ?", (present,)), 1)
        self.assertHealthy(self.db)

        # quire search --sync without quired walks the recorded root alike.
        self.add_unfiled(os.path.join(self.root, "sub", "ghost.md"), "ghostword")
        p = self.quire("search", "--sync", "--files", "ghostword")
        self.assertEqual(p.stdout, "")
        self.assertNotIn(os.path.join(self.root, "sub", "ghost.md"), self.chunk_paths())
        self.assertIn(away, self.chunk_paths())

    def test_quired_drops_them_with_their_file_and_with_their_folder(self):
        d = self.start_quired(self.notes)
        self.wait_converged(self.notes, daemon=d)
        lone = os.path.join(self.root, "lone.md")
        self.add_unfiled(lone, "loneword")
        self.add_unfiled(os.path.join(self.root, "sub", "ghost.md"), "ghostword")
        # A note made and deleted at once: what quired syncs is a path
        # that is gone, whose only rows are the other writer's.
        os.unlink(self.write("lone.md", "# Lone\n\nloneword again\n"))
        shutil.rmtree(os.path.join(self.notes, "sub"))
        self.wait_converged(self.notes, daemon=d)
        self.assertEqual(self.chunk_paths(), {os.path.join(self.root, "keep.md")})
        self.assertHealthy(self.db)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--writer"]:
        sys.exit(writer_main(*sys.argv[2:5]))
    qt.main()
