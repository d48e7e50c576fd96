#!/usr/bin/env python3
"""quired under a flood: the whole corpus (about 38,000 notes) unpacked
into a root it watches while it runs, then deleted again. The daemon must
end with exactly the rows a fresh 'quire index' of the tree writes, with
no duplicate chunk and an FTS index that agrees with the chunks, however
the flood reaches it (events, debounce overflow, or an inotify queue
overflow and a reconcile). Each backend once.

QUIRE_STRESS_DAEMON_TIMEOUT (seconds, default 300) bounds each wait."""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

TIMEOUT = float(os.environ.get("QUIRE_STRESS_DAEMON_TIMEOUT", "300"))


class DaemonFloodTests(qt.QuiredTestCase):
    def flood(self, backend):
        notes = os.path.join(self.tmp, "notes")
        self.write("seed.md", f"# Seed\n\n{qt.section('Seed', ['seedword'])}")
        d = self.start_quired(notes, args=["--backend", backend])
        self.wait_converged(notes, daemon=d)

        t0 = time.monotonic()
        qt.extract_corpus(notes)
        unpacked = time.monotonic() - t0
        expected = self.wait_converged(notes, daemon=d, timeout=TIMEOUT)
        converged = time.monotonic() - t0
        self.assertGreater(len(expected[1]), 30000)
        self.assertHealthy(self.db)

        t1 = time.monotonic()
        shutil.rmtree(os.path.join(notes, "tldr"))
        self.wait_converged(notes, daemon=d, timeout=TIMEOUT)
        emptied = time.monotonic() - t1
        self.assertEqual(qt.file_count(self.db), 1)
        self.assertEqual(len(self.search_json("seedword")), 1)
        self.assertHealthy(self.db)
        self.assertTrue(d.running())
        overflowed = bool(d.matches(r"overflowed|reconciling every root"))
        print(f"\n  {backend}: {len(expected[1])} notes unpacked in {unpacked:.1f} s, index equal "
              f"{converged:.1f} s after the unpack began; deleted and equal again in {emptied:.1f} s"
              f"{'; the flood overflowed a queue' if overflowed else ''}", file=sys.stderr)

    def test_corpus_unpacked_into_a_watched_root_inotify(self):
        self.flood("inotify")

    def test_corpus_unpacked_into_a_watched_root_fs_event(self):
        self.flood("fs-event")


if __name__ == "__main__":
    qt.main()
