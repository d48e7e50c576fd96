#!/usr/bin/env python3
"""Crash consistency: quired and 'quire index' killed with SIGKILL at
random moments, during a cold index of the whole tldr corpus and while a
tree churns under them (rewrites, appends, new notes, renames, deletes,
directory renames and removals). After every kill, before anything else
opens the database: SQLite's integrity_check and FTS5's integrity-check
pass, there is no duplicate chunk group, the FTS index holds one entry per
chunk, and no chunk lacks its files row. A restart (quire index to
completion, or quired to Ready) then brings the index to exactly what a
fresh index of the tree holds, row by row (chunks and files).

A cold index is killed in chains: a fresh database, then runs (quire
index or quired, picked at random) each killed at a moment drawn over the
whole length of a cold index, the next resuming from what the last left,
until one runs to the end. After each kill of a cold index the database
must also be a clean prefix of the finished index: every file it records
has exactly its final chunks.

Environment:
  QUIRE_STRESS_SCALE  multiplies the number of kill points (default 1: 15
                      during cold indexes, in chains of 8, and 15 under
                      churn, one to three per round; 4 runs about four
                      times as long)
  QUIRE_STRESS_SEED   replays a run's choices (kill moments, which program
                      runs, the churn) but not the scheduler's timing; a
                      run prints its seed first
"""

import contextlib
import os
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from churn import Churn  # noqa: E402

SCALE = float(os.environ.get("QUIRE_STRESS_SCALE") or "1")
SEED = int(os.environ.get("QUIRE_STRESS_SEED") or random.SystemRandom().randrange(1 << 32))
COLD_KILLS = max(1, round(15 * SCALE))
COLD_KILLS_PER_CHAIN = 8
CHURN_KILLS = max(1, round(15 * SCALE))
CHURN_PART = ["tldr/pages.de", "tldr/pages.ru", "tldr/pages.pl"]

print(f"test_crash: QUIRE_STRESS_SEED={SEED} QUIRE_STRESS_SCALE={SCALE:g}", file=sys.stderr, flush=True)


# --- what a kill left behind ------------------------------------------------

WAL_MAGIC = (0x377F0682, 0x377F0683)


def wal_committed_frames(db):
    """Frames of committed transactions in the WAL's current generation
    (those whose salts match its header): after a kill, what the next
    opener must recover from the WAL rather than read from the database
    file."""
    path = db + "-wal"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if len(data) < 32:
        return 0
    magic, _, page_size, _, salt1, salt2 = struct.unpack(">6I", data[:24])
    if magic not in WAL_MAGIC:
        return 0
    frame_size = 24 + page_size
    last_commit = n = 0
    for offset in range(32, len(data) - frame_size + 1, frame_size):
        _, db_size, s1, s2 = struct.unpack(">4I", data[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        n += 1
        if db_size:
            last_commit = n
    return last_commit


# Where SQLite's WAL locks live in the -shm file (os_unix.c: UNIX_SHM_BASE
# is 120, then one byte per lock, WAL_WRITE_LOCK first, WAL_CKPT_LOCK next):
# a process that holds byte 120 is inside a write transaction, one that
# holds byte 121 is checkpointing. They are fcntl(2) locks, so
# /proc/locks names the process.
SHM_WRITE_LOCK = 120
SHM_CKPT_LOCK = 121


def shm_locks(db):
    """{pid: set of lock bytes} of the POSIX write locks on db's -shm file."""
    try:
        ino = os.stat(db + "-shm").st_ino
    except FileNotFoundError:
        return {}
    held = {}
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if fields[1:2] == ["->"]:  # a waiter, not a holder
                continue
            if len(fields) < 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
                continue
            if int(fields[5].rsplit(":", 1)[1]) != ino:
                continue
            held.setdefault(int(fields[4]), set()).update(range(int(fields[6]), int(fields[7]) + 1))
    return held


class Tally:
    """Kill points and what they hit, for the log."""

    def __init__(self):
        self.kills = {"quire index": 0, "quired": 0}
        self.moments = 0
        self.mid_transaction = 0
        self.mid_checkpoint = 0
        self.wal_to_recover = 0

    def kill(self, db, procs):
        """SIGKILL those of procs ({program: Popen}) still running, all at
        one moment: each is frozen with SIGSTOP first, so that the locks it
        holds say what it was doing when it died. Returns the programs
        killed (a process that had already exited is no kill point)."""
        running = {name: p for name, p in procs.items() if p.poll() is None}
        for p in running.values():
            p.send_signal(signal.SIGSTOP)
        locks = shm_locks(db)
        for p in running.values():
            p.send_signal(signal.SIGKILL)
        for p in running.values():
            p.wait()
        if not running:
            return []
        for name in running:
            self.kills[name] += 1
        self.moments += 1
        held = set().union(*(locks.get(p.pid, set()) for p in running.values()))
        self.mid_transaction += SHM_WRITE_LOCK in held
        self.mid_checkpoint += SHM_CKPT_LOCK in held
        self.wal_to_recover += wal_committed_frames(db) > 0
        return list(running)

    @property
    def total(self):
        return sum(self.kills.values())

    def __str__(self):
        return (f"{self.total} kill points ({self.kills['quire index']} quire index, {self.kills['quired']} quired) "
                f"at {self.moments} moments: {self.mid_transaction} inside a write transaction, "
                f"{self.mid_checkpoint} inside a checkpoint; {self.wal_to_recover} left committed frames in the "
                f"WAL to recover")


# Kill points of the tests that passed, for the last line of the log.
KILLS_IN_ALL = []


def tearDownModule():
    if KILLS_IN_ALL:
        print(f"test_crash: {sum(KILLS_IN_ALL)} kill points survived in all (QUIRE_STRESS_SEED={SEED})",
              file=sys.stderr)


class CrashTests(qt.QuiredTestCase):
    def setUp(self):
        super().setUp()
        self.rng = random.Random(f"{SEED}-{self._testMethodName}")
        self.tally = Tally()

    # --- checks

    def assertSurvived(self, db, what):
        """The invariants that must hold whenever a writer dies. A writer
        killed before its schema transaction committed leaves a database
        with no schema at all (the file may not even exist): nothing was
        indexed, and nothing may be half made."""
        with self.subTest(kill=what):
            if not self.hasSchema(db, what):
                return
            self.assertEqual(qt.sqlite_integrity(db), ["ok"], f"PRAGMA integrity_check after {what}")
            self.assertIsNone(qt.fts_integrity_error(db), f"FTS integrity-check after {what}")
            self.assertEqual(qt.duplicate_groups(db), 0, f"duplicate groups after {what}")
            self.assertEqual(qt.fts_docsize_count(db), qt.chunk_count(db), f"FTS rows vs chunks after {what}")
            orphans = qt.query(db, "SELECT DISTINCT namespace, source_file FROM chunks c WHERE NOT EXISTS "
                                   "(SELECT 1 FROM files f WHERE f.namespace = c.namespace AND f.path = c.source_file)"
                                   " LIMIT 5")
            self.assertEqual(orphans, [], f"chunks without a files row after {what}")

    def hasSchema(self, db, what):
        """Whether db has quire's schema; fails if it has part of it."""
        if not os.path.exists(db):
            return False
        tables = qt.schema_names(db, "table")
        if tables:
            self.assertIn("chunks", tables, f"tables of a half-made schema after {what}")
            return True
        self.assertEqual(qt.sqlite_integrity(db), ["ok"], f"PRAGMA integrity_check after {what}")
        self.assertEqual(qt.query(db, "SELECT type, name FROM sqlite_schema"), [],
                         f"schema objects without tables after {what}")
        return False

    def assertPrefixOf(self, db, ref_chunks_by_file, ref_files, what):
        """Every file db records is recorded as in the finished index, with
        exactly its final chunks: a kill lost whole transactions, never
        half of one."""
        if not self.hasSchema(db, what):
            return
        files = qt.files_rows(db)
        self.assertLessEqual(set(files), ref_files, f"files rows unknown to the finished index after {what}")
        have = {}
        for ns, path, content_hash, start in qt.rows_with_namespace(db):
            have.setdefault(path, []).append((ns, path, content_hash, start))
        paths = {f[1] for f in files}
        self.assertLessEqual(set(have), paths, f"chunks of unrecorded files after {what}")
        wrong = [p for p in paths if sorted(have.get(p, [])) != ref_chunks_by_file.get(p, [])]
        self.assertEqual(wrong[:5], [], f"files with other chunks than the finished index after {what}")

    def assertIndexEquals(self, db, expected, what):
        actual = self.state(db)
        self.assertTrue(actual == expected, f"after {what}, the index differs from a fresh index:\n"
                                            f"{qt.state_difference(expected, actual)}")

    # --- running and killing

    def start_index(self, tree, db):
        return self.popen("index", tree, db=db)

    def start_daemon(self, tree, db):
        d = self.start_quired(tree, db=db, ready=False)
        # Only the last few daemons' logs are worth printing on failure.
        del self.daemons[:-3]
        return d

    def finish_index(self, proc, what):
        out, err = proc.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, f"{what}: quire index failed:\n{err}")
        self.assertNotIn("locked", err)
        return out

    # --- cold index

    def test_kill_during_cold_index(self):
        tree = qt.unpack_corpus()
        ref = os.path.join(self.tmp, "ref.db")
        t0 = time.monotonic()
        self.index(tree, db=ref)
        cold_secs = time.monotonic() - t0
        expected = self.state(ref)
        ref_files = set(expected[1])
        ref_chunks_by_file = {}
        for row in expected[0]:
            ref_chunks_by_file.setdefault(row[1], []).append(row)
        total_files = len(ref_files)

        n_chains = 0
        while self.tally.total < COLD_KILLS:
            n_chains += 1
            db = os.path.join(self.tmp, "db", f"cold{n_chains}.db")
            # Kill moments for this chain, as fractions of a cold index,
            # spread over all of it; each run resumes what the last left.
            targets = sorted(self.rng.random() for _ in range(min(COLD_KILLS_PER_CHAIN,
                                                                  COLD_KILLS - self.tally.total)))
            for n_run in range(len(targets) + 1):
                program = "quired" if self.rng.random() < 0.4 else "quire index"
                has_schema = self.hasSchema(db, f"chain {n_chains} before run {n_run}")
                done = qt.file_count(db) / total_files if has_schema else 0.0
                if n_run < len(targets):
                    ahead = targets[n_run] - done
                    # Already past: an early kill, in the open, the schema
                    # setup or the walk of what is indexed.
                    delay = ahead * cold_secs if ahead > 0 else self.rng.uniform(0, 0.2)
                else:
                    delay = None  # the last run goes to the end
                what = f"chain {n_chains} run {n_run} ({program}, {done:.0%} indexed, kill after " + \
                       (f"{delay:.2f} s)" if delay is not None else "none)")
                if program == "quire index":
                    proc = self.start_index(tree, db)
                    if delay is not None:
                        try:
                            proc.wait(timeout=delay)
                        except subprocess.TimeoutExpired:
                            pass
                    if delay is None or not self.tally.kill(db, {program: proc}):
                        self.finish_index(proc, what)
                        break
                    proc.communicate()
                else:
                    d = self.start_daemon(tree, db)
                    if delay is not None:
                        with contextlib.suppress(AssertionError):
                            d.wait_line(qt.READY_RE, timeout=delay)
                    if delay is None or not self.tally.kill(db, {program: d.proc}):
                        d.wait_line(qt.READY_RE, timeout=qt.DAEMON_TIMEOUT * 4)
                        rc, _ = d.stop()
                        self.assertEqual(rc, 0, f"{what}: quired exit status")
                        break
                    d.kill()
                self.assertSurvived(db, what)
                self.assertPrefixOf(db, ref_chunks_by_file, ref_files, what)
            self.assertIndexEquals(db, expected, f"chain {n_chains}")
            self.assertSurvived(db, f"the end of chain {n_chains}")
        print(f"\n  cold index of {total_files} notes ({cold_secs:.1f} s uninterrupted), {n_chains} chains: "
              f"{self.tally}", file=sys.stderr)
        self.assertGreaterEqual(self.tally.total, COLD_KILLS)
        KILLS_IN_ALL.append(self.tally.total)

    # --- churn

    def test_kill_during_churn(self):
        tree = qt.copy_tree(qt.unpack_corpus(CHURN_PART), os.path.join(self.tmp, "notes"))
        churn = Churn(tree, self.rng)
        self.addCleanup(churn.stop)
        db = self.db
        d = self.start_daemon(tree, db)
        d.wait_line(qt.READY_RE)
        self.wait_converged(tree, daemon=d)
        n_index_runs = n_index_finished = 0

        round_no = 0
        while self.tally.total < CHURN_KILLS:
            round_no += 1
            self.assertLess(round_no, 4 * CHURN_KILLS, "rounds that kill nothing: quired exits by itself?")
            what = f"churn round {round_no}"
            churn.start()
            # The kill moment; most rounds also run a quire index that is
            # under way at that moment (a run over this tree takes a few
            # tenths of a second; now and then it is just done).
            kill_at = time.monotonic() + self.rng.uniform(0.05, 2.0)
            index = None
            if self.rng.random() < 0.6:
                time.sleep(max(0.0, kill_at - self.rng.uniform(0.0, 0.3) - time.monotonic()))
                index = self.start_index(tree, db)
                n_index_runs += 1
            time.sleep(max(0.0, kill_at - time.monotonic()))
            procs = {"quired": d.proc}
            if index is not None:
                procs["quire index"] = index
            killed = self.tally.kill(db, procs)
            d.kill()
            if index is not None:
                if "quire index" in killed:
                    index.communicate()
                else:
                    self.finish_index(index, what)
                    n_index_finished += 1
            if self.rng.random() < 0.3:
                # Killed again while it catches up with what changed while
                # it was down: a kill inside the startup reconcile.
                self.assertSurvived(db, what)
                what += ", then in its restart's reconcile"
                time.sleep(self.rng.uniform(0.05, 0.5))
                d = self.start_daemon(tree, db)
                with contextlib.suppress(AssertionError):
                    d.wait_line(qt.READY_RE, timeout=self.rng.uniform(0.0, 0.6))
                self.tally.kill(db, {"quired": d.proc})
                d.kill()
            churn.stop()
            self.assertSurvived(db, what)

            d = self.start_daemon(tree, db)
            d.wait_line(qt.READY_RE)
            self.wait_converged(tree, daemon=d)
            self.assertSurvived(db, f"the restart after {what}")
        rc, _ = d.stop()
        self.assertEqual(rc, 0)
        print(f"\n  churn of {len(qt.markdown_files(tree))} notes, {churn.n_ops} changes "
              f"({', '.join(f'{n} {k}' for k, n in churn.counts.items())}), {round_no} rounds: {self.tally}; "
              f"{n_index_runs} concurrent quire index runs, {n_index_finished} of them finished before the kill",
              file=sys.stderr)
        self.assertGreater(self.tally.kills["quired"], 0)
        KILLS_IN_ALL.append(self.tally.total)


if __name__ == "__main__":
    qt.main()
