#!/usr/bin/env python3
"""Multi-writer soak: quired, three 'quire index' processes started over
and over, and a foreign writer that follows the storage contract
(tests/lib/contractwriter.py) all write one database for a bounded time
while the notes churn (rewrites, appends, new notes, renames, deletes,
directory renames and removals). Nothing may fail and nothing may be
lost:

- every quire run exits 0, and no output of any writer mentions a locked
  or busy database; the foreign writer handles every SQLITE_BUSY itself
  (retry with backoff) and exits 0;
- no duplicate chunk group, one FTS entry per chunk, both integrity
  checks pass;
- once the churn stops and quired has settled, the default namespace
  equals a fresh index of the tree (chunks and files), the word of the
  last write to each churned note is found in that note and the words of
  replaced versions are found nowhere, and the foreign writer's own
  namespace holds exactly what it last wrote there.

The foreign writer (this file run with --writer) does three things at
random, each in one BEGIN IMMEDIATE transaction: rewrites the rows of a
note quire also indexes (a part of the tree the churn leaves alone) with
the very rows quire computes for it, under fresh ids; writes or deletes
notes of its own in namespace 'foreign'; and bumps the usage counters of
random chunks, as a search front end would.

Environment:
  QUIRE_STRESS_SECONDS  how long the writers run (default 30 times
                        QUIRE_STRESS_SCALE)
  QUIRE_STRESS_SCALE    default 1
  QUIRE_STRESS_SEED     replays the churn and the foreign writer's choices
                        (the interleaving is the scheduler's); a run prints
                        its seed first
"""

import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from churn import Churn  # noqa: E402
from contractwriter import Writer, utc_now  # noqa: E402

SCALE = float(os.environ.get("QUIRE_STRESS_SCALE") or "1")
SECONDS = float(os.environ.get("QUIRE_STRESS_SECONDS") or 30 * SCALE)
SEED = int(os.environ.get("QUIRE_STRESS_SEED") or random.SystemRandom().randrange(1 << 32))
CHURNED_PART = ["tldr/pages.ja", "tldr/pages.tr", "tldr/pages.fi"]
STATIC_PART = ["tldr/pages.sv"]
N_INDEX_LOOPS = 3
# A short pause between churn steps: heavy churn (hundreds of changes a
# second) that still leaves the machine to the writers.
CHURN_PAUSE = 0.002
# What no writer may ever print: SQLITE_BUSY/SQLITE_LOCKED reaching a user.
BUSY_RE = re.compile(r"locked|busy", re.IGNORECASE)


# --- the foreign writer (a child process) -------------------------------

def writer_main(db, rows_json, signal_dir, seed):
    """Writes until the file 'stop' appears in signal_dir (after creating
    'ready' there once it has committed); prints its counts and the rows it
    left in namespace 'foreign' as JSON."""
    rng = random.Random(f"{seed}-foreign")
    with open(rows_json, encoding="utf-8") as f:
        ref_rows = json.load(f)
    by_file = {}
    for row in ref_rows:
        by_file.setdefault(row[1], []).append(row)
    static_files = sorted(by_file)
    # A short busy timeout: SQLITE_BUSY must reach the writer's own retry
    # loop often, to show that it is handled there, not just waited out.
    w = Writer(db, busy_timeout=0.05)
    w.ensure_schema()
    own = {}  # path -> [(content_hash, start_line)]: namespace 'foreign' as it must be
    counts = {"rewrote": 0, "own_writes": 0, "own_deletes": 0, "counter_bumps": 0}

    def rewrite_static(con):
        """Delete a note's rows and insert the same rows again, fresh ids."""
        path = rng.choice(static_files)
        con.execute("DELETE FROM chunks WHERE namespace = 'default' AND source_file = ?", (path,))
        Writer.insert_chunks(con, by_file[path])
        counts["rewrote"] += 1

    def write_own(con):
        path = f"/foreign/note{rng.randrange(200)}.md"
        picked = rng.sample(ref_rows, rng.randint(1, 4))
        rows = [("foreign", path, content, content_hash, hierarchy, 1 + 10 * i, 1 + 10 * i + end - start)
                for i, (_, _, content, content_hash, hierarchy, start, end) in enumerate(picked)]
        con.execute("DELETE FROM chunks WHERE namespace = 'foreign' AND source_file = ?", (path,))
        Writer.insert_chunks(con, rows)
        con.execute("INSERT INTO files(namespace, path, size, mtime_ns, file_hash, indexed_at)"
                    " VALUES ('foreign', ?, ?, ?, ?, ?) ON CONFLICT(namespace, path) DO UPDATE SET"
                    " size = excluded.size, mtime_ns = excluded.mtime_ns, file_hash = excluded.file_hash,"
                    " indexed_at = excluded.indexed_at",
                    (path, 100 * len(rows), time.time_ns(), "0" * 32, utc_now()))
        return path, sorted([r[3], r[5]] for r in rows)

    def delete_own(con):
        if not own:
            return None
        path = rng.choice(sorted(own))
        con.execute("DELETE FROM chunks WHERE namespace = 'foreign' AND source_file = ?", (path,))
        con.execute("DELETE FROM files WHERE namespace = 'foreign' AND path = ?", (path,))
        return path

    def bump_counters(con):
        con.execute("UPDATE chunks SET access_count = access_count + 1, use_count = use_count + 1"
                    " WHERE seq IN (SELECT seq FROM chunks WHERE namespace = 'default'"
                    " ORDER BY random() LIMIT 5)")
        counts["counter_bumps"] += 1

    while not os.path.exists(os.path.join(signal_dir, "stop")):
        x = rng.random()
        if x < 0.4:
            w.transaction(rewrite_static)
        elif x < 0.7:
            path, rows = w.transaction(write_own)
            own[path] = rows
            counts["own_writes"] += 1
        elif x < 0.8:
            path = w.transaction(delete_own)
            if path:
                del own[path]
                counts["own_deletes"] += 1
        else:
            w.transaction(bump_counters)
        if not os.path.exists(os.path.join(signal_dir, "ready")):
            open(os.path.join(signal_dir, "ready"), "w").close()
        time.sleep(rng.uniform(0, 0.01))
    w.close()
    print(json.dumps({"commits": w.commits, "retries": w.retries, **counts, "own": own}))
    return 0


# --- the test -------------------------------------------------------------

class IndexLoop:
    """'quire index TREE' run again and again on a thread until stopped;
    every run is kept (exit status, output, summary)."""

    def __init__(self, case, tree, db):
        self.case, self.tree, self.db = case, tree, db
        self.runs = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = False

    def _run(self):
        while not self._stop.is_set():
            p = self.case.popen("index", self.tree, db=self.db)
            out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
            self.runs.append((p.returncode, out, err))

    def start(self):
        self._started = True
        self._thread.start()

    def stop(self):
        """Lets the run under way finish; safe to call again."""
        self._stop.set()
        if self._started:
            self._thread.join(qt.RUN_TIMEOUT)

    def files_written(self):
        n = 0
        for rc, out, _ in self.runs:
            if rc == 0:
                s = qt.parse_summary(out)
                n += s["new"] + s["changed"] + s["removed"]
        return n


class SoakTests(qt.QuiredTestCase):
    def where_is(self, path, word, found):
        """What a failure needs to say about a word not found where it
        should be: on disk, in the rows, in the FTS index."""
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                on_disk = word in f.read()
        except OSError as e:
            on_disk = str(e)
        in_rows = qt.query(self.db, "SELECT seq, start_line FROM chunks WHERE namespace = 'default'"
                                    " AND source_file = ? AND instr(content, ?) > 0", (path, word))
        return {"path": path, "word": word, "fts hits": found, "on disk": on_disk, "rows holding it": in_rows}

    def test_writers_share_the_database_under_churn(self):
        rng = random.Random(f"{SEED}-churn")
        tree = os.path.join(self.tmp, "notes")
        churned = qt.copy_tree(qt.unpack_corpus(CHURNED_PART), os.path.join(tree, "churned"))
        static = qt.copy_tree(qt.unpack_corpus(STATIC_PART), os.path.join(tree, "static"))

        # The rows quire computes for the part the foreign writer rewrites.
        static_ref = os.path.join(self.tmp, "static-ref.db")
        self.index(static, db=static_ref)
        rows_json = os.path.join(self.tmp, "static-rows.json")
        with open(rows_json, "w", encoding="utf-8") as f:
            json.dump(qt.query(static_ref, "SELECT namespace, source_file, content, content_hash, heading_hierarchy,"
                                           " start_line, end_line FROM chunks ORDER BY source_file, start_line"), f)

        d = self.start_quired(tree, args=["-v"])
        signals = os.path.join(self.tmp, "signals")
        os.mkdir(signals)
        writer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", self.db, rows_json,
                                   signals, str(SEED)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        churn = Churn(churned, rng, pause=CHURN_PAUSE)
        self.addCleanup(churn.stop)
        loops = [IndexLoop(self, tree, self.db) for _ in range(N_INDEX_LOOPS)]
        for loop in loops:
            self.addCleanup(loop.stop)

        t0 = time.monotonic()
        churn.start()
        for loop in loops:
            loop.start()
        qt.wait_for(lambda: os.path.exists(os.path.join(signals, "ready")) or writer.poll() is not None,
                    timeout=120, what="the foreign writer's first commit")
        while time.monotonic() - t0 < SECONDS and writer.poll() is None and d.running():
            time.sleep(0.2)
        churn.stop()
        churn_secs = time.monotonic() - t0
        open(os.path.join(signals, "stop"), "w").close()
        w_out, w_err = writer.communicate(timeout=qt.RUN_TIMEOUT)
        for loop in loops:
            loop.stop()
        total_secs = time.monotonic() - t0

        # No writer failed, and none let a busy database show.
        with self.subTest("the foreign writer"):
            self.assertEqual(writer.returncode, 0, f"the foreign writer failed:\n{w_err}")
            self.assertEqual(w_err, "")
        for i, loop in enumerate(loops):
            with self.subTest("quire index", loop=i):
                self.assertGreater(len(loop.runs), 0, "the loop never finished a run")
                for rc, out, err in loop.runs:
                    self.assertEqual(rc, 0, f"quire index failed:\n{err}")
                    self.assertIsNone(BUSY_RE.search(err), f"quire index said:\n{err}")
        with self.subTest("quired"):
            self.assertTrue(d.running(), "quired exited")
            busy_lines = [line for line in d.lines if BUSY_RE.search(line)]
            self.assertEqual(busy_lines, [], "quired's log mentions a busy database")
            failed = [line for line in d.lines if "Failed" in line or "failed" in line]
            self.assertEqual(failed[:10], [], "quired's log reports failures")

        # Nothing lost: quired settles on what a fresh index writes.
        expected = self.expected_state(tree)
        last = [None]

        def settled():
            last[0] = ([r for r in qt.rows_with_namespace(self.db) if r[0] == "default"],
                       [r for r in qt.files_rows(self.db) if r[0] == "default"],
                       [r for r in qt.derived_rows(self.db) if r[1] == "default"])
            return last[0] == expected
        with self.subTest("settled"):
            try:
                qt.wait_for(settled, timeout=qt.CONVERGE_TIMEOUT, interval=0.1,
                            what="the default namespace to equal a fresh index")
            except AssertionError as e:
                raise AssertionError(f"{e}\n{qt.state_difference(expected, last[0])}") from None
        self.assertHealthy(self.db)

        stats = json.loads(w_out)
        with self.subTest("the foreign namespace"):
            own = sorted(("foreign", path, h, start) for path, rows in stats["own"].items() for h, start in rows)
            self.assertEqual(sorted(r for r in qt.rows_with_namespace(self.db) if r[0] == "foreign"), own)
            self.assertEqual(sorted(r[1] for r in qt.files_rows(self.db) if r[0] == "foreign"), sorted(stats["own"]))

        # The last write to each churned note is searchable there, and no
        # replaced version is searchable anywhere.
        def hits(word):
            return sorted({r[0] for r in qt.query(self.db, "SELECT c.source_file FROM chunks_fts JOIN chunks c"
                                                           " ON c.seq = chunks_fts.rowid WHERE chunks_fts MATCH ?",
                                                  (f'content : "{word}"',))})
        notes = set(qt.markdown_files(tree))
        live = dict(churn.last_word)
        with self.subTest("searchable"):
            self.assertLessEqual(set(live), notes)
            lost = [(path, word, found) for path, word in sorted(live.items()) if (found := hits(word)) != [path]]
            self.assertEqual([self.where_is(path, word, found) for path, word, found in lost[:10]], [],
                             f"{len(lost)} last writes not searchable in their note")
            resurrected = [(word, found) for word in sorted(churn.dead_words) if (found := hits(word))]
            self.assertEqual(resurrected[:10], [], f"{len(resurrected)} words of replaced versions still searchable")
            for path, word in random.Random(SEED).sample(sorted(live.items()), min(10, len(live))):
                found = self.search_json(word)
                self.assertEqual(sorted({h["source_file"] for h in found}), [path], f"quire search {word}")

        rc, _ = d.stop()
        self.assertEqual(rc, 0)

        batches = d.matches(qt.BATCH_RE)
        quired_files = sum(int(m["new"]) + int(m["changed"]) + int(m["moved"]) + int(m["removed"]) for m in batches)
        runs = [len(loop.runs) for loop in loops]
        print(f"\n  soak: {churn_secs:.1f} s of churn ({total_secs:.1f} s until every writer stopped); "
              f"{churn.n_ops} changes to {len(notes)} notes "
              f"({', '.join(f'{n} {k}' for k, n in churn.counts.items())}); {len(live)} churned notes checked "
              f"searchable, {len(churn.dead_words)} replaced versions checked gone\n"
              f"  quired: {len(batches)} batches, {quired_files} files written\n"
              f"  quire index x{N_INDEX_LOOPS}: {runs} runs, "
              f"{[loop.files_written() for loop in loops]} files written\n"
              f"  foreign writer: {stats['commits']} commits ({stats['rewrote']} notes rewritten, "
              f"{stats['own_writes']} own notes written, {stats['own_deletes']} deleted, {stats['counter_bumps']} "
              f"counter bumps), {stats['retries']} busy retries", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--writer"]:
        sys.exit(writer_main(*sys.argv[2:6]))
    print(f"test_soak: QUIRE_STRESS_SEED={SEED} QUIRE_STRESS_SECONDS={SECONDS:g}", file=sys.stderr, flush=True)
    qt.main()
