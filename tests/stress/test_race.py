#!/usr/bin/env python3
"""Several quire index processes started together on the same tree and the
same database, round after round: on a new database, re-indexing an
unchanged tree, and after edits, moves, deletes and additions. Every
process succeeds, and the database ends up exactly as one process alone
would have left it: no duplicate chunk, one FTS entry per chunk.

QUIRE_STRESS_ROUNDS (default 3) runs more rounds; QUIRE_STRESS_PROCS
(default 4) sets how many processes race."""

import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

ROUNDS = int(os.environ.get("QUIRE_STRESS_ROUNDS", "3"))
PROCS = max(4, int(os.environ.get("QUIRE_STRESS_PROCS", "4")))

# What each round does before the race, in a cycle.
ROUND_KINDS = ("new database", "unchanged tree", "edited tree")


class RaceTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.tree = qt.unpack_corpus()
        self.rng = random.Random(1234)
        self.n_added = 0

    def race(self, db):
        """Start PROCS quire index processes at once, wait for all; returns
        their summaries."""
        procs = [self.popen("index", self.tree, db=db) for _ in range(PROCS)]
        results = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
            results.append((p.returncode, out, err))
        for i, (rc, out, err) in enumerate(results):
            self.assertNotIn("locked", err, f"process {i}")
            self.assertEqual(rc, 0, f"process {i} failed:\n{err}")
        return [qt.parse_summary(out) for _, out, _ in results]

    def reference(self):
        """The tree indexed by one process into a fresh database."""
        ref = os.path.join(self.tmp, "ref", f"ref{self.rng.random():.12f}.db")
        os.makedirs(os.path.dirname(ref), exist_ok=True)
        self.index(self.tree, db=ref)
        return ref

    def edit_tree(self):
        """About 100 changes of every kind the index must follow."""
        files = qt.markdown_files(self.tree)
        self.rng.shuffle(files)
        picks = iter(files)

        def take(n):
            return [next(picks) for _ in range(n)]

        for path in take(30):  # a new section at the end
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"\n## Stress {self.rng.getrandbits(32):08x}\n\nAppended by the race test.\n")
        for path in take(20):  # everything below the title moves down
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.readlines()
            lines[1:1] = ["\n", f"> Inserted near the top, {self.rng.getrandbits(32):08x}.\n", "\n"]
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.writelines(lines)
        for path in take(20):  # rewritten
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"# Rewritten\n\nThis page was replaced, {self.rng.getrandbits(32):08x}.\n")
        for path in take(10):
            os.unlink(path)
        for path in take(10):  # touched: same bytes, new mtime
            st = os.stat(path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        for _ in range(10):
            self.n_added += 1
            self.write(f"stress-added/note{self.n_added}.md",
                       f"# Added {self.n_added}\n\nA note the race test added.\n", root=self.tree)

    def test_concurrent_index_processes_agree_with_one(self):
        db = None
        for round_no in range(ROUNDS):
            kind = ROUND_KINDS[round_no % len(ROUND_KINDS)]
            with self.subTest(round=round_no, kind=kind):
                if kind == "new database":
                    db = os.path.join(self.tmp, "db", f"race{round_no}.db")
                elif kind == "edited tree":
                    self.edit_tree()
                summaries = self.race(db)
                ref = self.reference()

                self.assertHealthy(db)
                self.assertEqual(qt.rows(db), qt.rows(ref))
                self.assertEqual(qt.user_version(db), qt.SCHEMA_VERSION)
                self.assertEqual(sorted(r[0] for r in qt.query(db, "SELECT path FROM files")),
                                 sorted(r[0] for r in qt.query(ref, "SELECT path FROM files")))
                if kind == "new database":
                    # Each chunk was inserted by exactly one of the racers;
                    # the others' inserts were ignored, and nothing was
                    # deleted or moved back and forth.
                    self.assertEqual(sum(s["added"] for s in summaries), qt.chunk_count(db))
                    self.assertEqual(sum(s["chunks_removed"] + s["moved"] for s in summaries), 0)
                if kind == "unchanged tree":
                    self.assertEqual([s["added"] + s["moved"] + s["chunks_removed"] for s in summaries],
                                     [0] * PROCS)
                print(f"\n  round {round_no} ({kind}): {qt.chunk_count(db)} chunks; "
                      f"added per process {[s['added'] for s in summaries]}", file=sys.stderr)


if __name__ == "__main__":
    qt.main()
