#!/usr/bin/env python3
"""Fresh results and a background citizen: 'quire search --sync' answers
from an index that holds every change made before the query (with a
quired, through its sync cookies, with each watch backend; without one,
by syncing the roots the database records; stale hits re-indexed on the
spot), 'quire status' says whether the index is current (and exits 1
when it lags or part of a root is not watched), and quired's indexer
thread runs at SCHED_IDLE in the idle I/O class while its loop thread
keeps a normal priority."""

import glob
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from test_daemon import DaemonCase, note  # noqa: E402

# Rounds of "write a unique word, then search --sync for it at once".
RACE_ROUNDS = int(os.environ.get("QUIRE_TEST_SYNC_ROUNDS", "60"))


class FreshCase(DaemonCase):
    def search_sync(self, word, *args, env=None, expect=0):
        """The files 'quire search --sync --files' finds word in."""
        p = self.quire("search", "--sync", "--files", *args, word, env=env, expect=expect)
        return {line for line in p.stdout.splitlines()}

    def cookies_left(self, base=None):
        return glob.glob(os.path.join(base or self.notes, ".quire-cookie-*"))

    def status(self, *args, expect=None):
        return self.quire("status", *args, expect=expect)

    def status_json(self, expect=None):
        p = self.status("--json", expect=expect)
        return json.loads(p.stdout), p.returncode


class SyncTests:
    """quire search --sync against a running quired (each backend)."""

    def test_sync_always_finds_the_last_write(self):
        self.write("a.md", note("seed"))
        os.mkdir(self.disk("sub"))
        d = self.quired()
        for i in range(RACE_ROUNDS):
            # A note at the top of the root and one below it, in turn: the
            # root's own events and a subdirectory's both come before the
            # cookie's.
            rel = f"n{i % 4}.md" if i % 2 else f"sub/n{i % 4}.md"
            word = f"racer{i}x{os.getpid()}"
            self.write(rel, note(word))
            self.assertEqual(self.search_sync(word), {self.stored(rel)}, f"round {i}: {rel}")
        self.assertTrue(d.running())
        self.assertEqual(self.cookies_left(), [])

    def test_sync_never_finds_a_deleted_note(self):
        d = self.quired()
        for i in range(RACE_ROUNDS // 3):
            word = f"doomed{i}y"
            path = self.write(f"sub/doomed{i}.md", note(word))
            self.assertEqual(self.search_sync(word), {self.stored(f"sub/doomed{i}.md")})
            os.unlink(path)
            self.assertEqual(self.search_sync(word), set(), f"round {i}: a deleted note was found")
        self.assertTrue(d.running())

    def test_sync_sees_a_directory_made_and_filled_at_once(self):
        d = self.quired()
        os.makedirs(self.disk("new/deeper"))
        self.write("new/deeper/x.md", note("burrowed"))
        self.assertEqual(self.search_sync("burrowed"), {self.stored("new/deeper/x.md")})
        self.assertTrue(d.running())

    def test_cookies_are_removed_and_never_indexed(self):
        self.write("a.md", note("plain"))
        d = self.quired()
        self.search_sync("plain")
        self.assertEqual(self.cookies_left(), [])
        self.converge(d)
        self.assertEqual(qt.query(self.db, "SELECT path FROM files WHERE path LIKE '%quire-cookie%'"), [])
        # The daemon acknowledged it by name in its state file.
        with open(self.db + ".daemon", encoding="utf-8") as f:
            self.assertRegex(f.read(), r"(?m)^cookie=\.quire-cookie-\d+-[0-9a-f]{16}$")

    def test_sync_covers_two_roots(self):
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        d = self.quired(self.notes, other)
        self.write("x.md", note("leftside"))
        self.write("y.md", note("rightside"), root=other)
        self.assertEqual(self.search_sync("leftside"), {self.stored("x.md")})
        self.assertEqual(self.search_sync("rightside"), {self.stored("y.md", base=other)})
        self.assertEqual(self.cookies_left() + self.cookies_left(other), [])
        self.assertTrue(d.running())

    def test_sync_times_out_on_a_stalled_indexer(self):
        self.write("a.md", note("before"))
        self.quired(env=self.daemon_env(QUIRE_TEST_STALL_INDEXER="1"))
        self.write("b.md", note("stuck"))
        p = self.quire("search", "--sync", "--sync-timeout", "300", "stuck", expect=1)
        self.assertEqual(p.stdout, "")
        self.assertOneLine(p.stderr)
        self.assertRegex(p.stderr, r"has not caught up with the changes in .* after 300 ms")
        # The environment sets it too, and the flag beats it.
        p = self.quire("search", "--sync", "stuck", env=self.env(QUIRE_SYNC_TIMEOUT_MS="200"), expect=1)
        self.assertIn("after 200 ms", p.stderr)
        self.assertEqual(self.cookies_left(), [], "a timed-out client leaves no cookie behind")

    def test_sync_waits_for_changes_that_failed_to_be_retried(self):
        """A barrier reached after a failed write vouches for nothing: the
        cookie waits for the retry, so --sync times out rather than answer
        from an index that lacks the change, and answers once it is in."""
        self.write("a.md", note("before"))
        config = self.write_config("[quire]\nrescan_interval_s = 2\n")
        d = self.quired(args=["--config", config], env=self.daemon_env(QUIRE_LOCK_TIMEOUT_MS="200"))
        self.converge(d)
        peer = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        peer.execute("BEGIN IMMEDIATE")
        try:
            mark = d.mark()
            self.write("b.md", note("lockedword"))
            d.wait_line(r"^quired: Indexing failed; retrying in 1 s", since=mark)
            p = self.quire("search", "--sync", "--sync-timeout", "1500", "lockedword", expect=1)
            self.assertEqual(p.stdout, "")
            self.assertRegex(p.stderr, r"has not caught up with the changes in .* after 1500 ms")
        finally:
            peer.execute("ROLLBACK")
            peer.close()
        self.assertEqual(self.search_sync("lockedword", "--sync-timeout", "30000"), {self.stored("b.md")})
        self.assertTrue(d.matches(r"^quired: Indexing works again", since=mark))
        self.assertTrue(d.running())

    def test_sync_catches_up_on_unwatched_directories_at_once(self):
        for rel in ("top.md", "d1/a.md", "d1/d2/b.md"):
            self.write(rel, note("early"))
        # One watch: only the root is watched; the rescan is 300 s away.
        d = self.quired(env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="1"))
        self.write("d1/d2/late.md", note("latecomer"))
        self.assertEqual(self.search_sync("latecomer"), {self.stored("d1/d2/late.md")})
        self.assertTrue(d.running())

    def test_sync_when_a_root_itself_is_not_watched(self):
        # A cookie in a root the watch limit left unwatched is never seen:
        # every --sync waited its whole timeout and failed. No cookie goes
        # there; quired walks that root at another root's cookie, and with
        # no root watched at all the sync is done in process.
        other = os.path.join(self.tmp, "other")
        self.write("a.md", note("early"))
        self.write("b.md", note("early"), root=other)
        # One watch: the first root; the second is left out (and listed so).
        d = self.quired(self.notes, other, env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="1"))
        self.wait_converged(self.notes, other, daemon=d)
        unwatched = json.loads(self.quire("status", "--json").stdout)["daemon"]["unwatched_dirs"]
        self.assertEqual(unwatched, 1)
        self.write("late.md", note("latecomer"), root=other)
        self.assertEqual(self.search_sync("latecomer", "--sync-timeout", "20000"),
                         {os.path.join(os.path.realpath(other), "late.md")})
        self.assertEqual(self.cookies_left(other), [])
        d.stop()

        d = self.quired(self.notes, env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="0"))
        self.write("later.md", note("laterstill"))
        self.assertEqual(self.search_sync("laterstill", "--sync-timeout", "20000"), {self.stored("later.md")})
        self.assertEqual(self.cookies_left(), [])
        self.assertTrue(d.running())


class InotifySyncTests(SyncTests, FreshCase):
    backend = "inotify"


class FsEventSyncTests(SyncTests, FreshCase):
    backend = "fs-event"


class SyncWithoutDaemonTests(qt.NotesTestCase):
    """quire search --sync with no quired: the roots the database records."""

    def search(self, word, *args, **kwargs):
        p = self.quire("search", "--files", *args, word, expect=0, **kwargs)
        return p.stdout.splitlines()

    def test_index_records_its_directories(self):
        self.write("a.md", doc_text("alpha"))
        other = os.path.join(self.tmp, "more")
        os.mkdir(other)
        self.index(self.notes)
        self.index("--namespace", "work", other, self.write("loose.md", doc_text("loose"), root=other))
        roots = qt.query(self.db, "SELECT namespace, path FROM roots ORDER BY namespace")
        self.assertEqual(roots, [("default", self.root), ("work", os.path.realpath(other))])

    def test_sync_brings_the_recorded_roots_up_to_date(self):
        self.write("keep.md", doc_text("steady"))
        gone = self.write("gone.md", doc_text("vanishing"))
        self.write("edit.md", doc_text("before"))
        self.index(self.notes)
        before = dict(qt.query(self.db, "SELECT path, indexed_at FROM files"))
        os.unlink(gone)
        self.write("edit.md", doc_text("after"))
        self.write("new/fresh.md", doc_text("newcomer"))
        # Without --sync the index is what the last writer left.
        self.assertEqual(self.search("newcomer"), [])
        self.assertEqual(self.search("newcomer", "--sync"), [self.path("new/fresh.md")])
        self.assertEqual(self.search("vanishing"), [])
        self.assertEqual(self.search("before"), [])
        self.assertEqual(self.search("after"), [self.path("edit.md")])
        # Unchanged notes were only looked at (their row was not rewritten).
        after = dict(qt.query(self.db, "SELECT path, indexed_at FROM files"))
        self.assertEqual(after[self.path("keep.md")], before[self.path("keep.md")])
        self.assertHealthy(self.db)

    def test_sync_reindexes_stale_hits_on_the_spot(self):
        # A note indexed on its own is in no recorded root: only the stale
        # check can bring it up to date.
        loose = os.path.join(self.tmp, "loose")
        os.mkdir(loose)
        path = self.write("one.md", doc_text("original words"), root=loose)
        gone = self.write("two.md", doc_text("original"), root=loose)
        self.index(path, gone)
        self.assertEqual(qt.query(self.db, "SELECT * FROM roots"), [])
        self.write("one.md", doc_text("original rewritten"), root=loose)
        os.unlink(gone)
        hits = self.search_json("original")
        self.assertEqual(sorted(h["stale"] for h in hits), [True, True])
        hits = self.search_json("original", "--sync")
        self.assertEqual([(h["source_file"], h["stale"]) for h in hits], [(os.path.realpath(path), False)])
        self.assertIn("rewritten", hits[0]["snippet"])
        # And the index itself changed: a plain search agrees now.
        self.assertEqual(self.search("rewritten"), [os.path.realpath(path)])
        self.assertEqual(self.search("words"), [])

    def test_sync_without_a_database_is_the_usual_error(self):
        p = self.quire("search", "--sync", "anything", expect=1)
        self.assertOneLine(p.stderr)
        self.assertFalse(os.path.exists(self.db), "--sync created a database")

    def test_a_root_that_is_gone_is_said_once_and_kept(self):
        other = os.path.join(self.tmp, "other")
        self.write("x.md", doc_text("remnant"), root=other)
        self.index(other)
        shutil.rmtree(other)
        p = self.quire("search", "--sync", "--files", "remnant", expect=0)
        self.assertRegex(p.stderr, r"Root .*other \(namespace default\) is gone")
        self.assertOneLine(p.stderr)
        # Its notes are missing, not known to be deleted: even the hits
        # stay, marked stale, rather than being re-indexed away.
        self.assertEqual(p.stdout.splitlines(), [os.path.join(os.path.realpath(self.tmp), "other", "x.md") + "\t[stale]"])
        self.assertEqual([h["stale"] for h in self.search_json("remnant", "--sync")], [True])

    def test_a_root_that_is_an_empty_folder_keeps_its_notes(self):
        """An empty folder where notes were indexed from (a drive's mount
        point, the drive not mounted) is not walked: nothing says the notes
        are gone. Named to quire index, it is taken at its word."""
        other = os.path.join(self.tmp, "other")
        self.write("x.md", doc_text("remnant"), root=other)
        self.write("sub/y.md", doc_text("leftover"), root=other)
        self.index(other)
        before = qt.query(self.db, "SELECT id, source_file FROM chunks ORDER BY 1")
        away = os.path.join(self.tmp, "away")
        os.rename(other, away)
        os.mkdir(other)
        p = self.quire("search", "--sync", "--files", "remnant", expect=0)
        self.assertRegex(p.stderr, r"Root .*other \(namespace default\) is an empty folder, but notes were indexed")
        self.assertOneLine(p.stderr)
        self.assertEqual(p.stdout.splitlines(), [os.path.join(os.path.realpath(other), "x.md") + "\t[stale]"])
        self.assertEqual(qt.query(self.db, "SELECT id, source_file FROM chunks ORDER BY 1"), before)
        self.assertEqual([h["stale"] for h in self.search_json("leftover")], [True])
        # Something in it again: walked, and what is not there leaves.
        os.rename(os.path.join(away, "x.md"), os.path.join(other, "x.md"))
        p = self.quire("search", "--sync", "--files", "leftover", expect=0)
        self.assertEqual(p.stdout, "")
        self.assertNotIn("empty folder", p.stderr)
        self.assertEqual(self.search("remnant"), [os.path.join(os.path.realpath(other), "x.md")])
        # Emptied and named on the command line: its notes leave.
        os.unlink(os.path.join(other, "x.md"))
        self.index(other)
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM chunks"), [(0,)])
        self.assertHealthy(self.db)

    def test_an_empty_root_inside_another_root_keeps_its_notes(self):
        """The same for a recorded root inside another one of its
        namespace: the outer root's walk finds the folder empty and keeps
        the notes too; a note gone elsewhere in the outer root leaves."""
        outer = os.path.join(self.tmp, "outer")
        inner = os.path.join(outer, "drive")
        self.write("top.md", doc_text("steady"), root=outer)
        gone = self.write("gone.md", doc_text("vanishing"), root=outer)
        self.write("x.md", doc_text("remnant"), root=inner)
        # Recorded inner first: indexing a folder of a recorded root
        # records nothing new.
        self.index(inner)
        self.index(outer)
        stored = os.path.realpath(inner)
        self.assertEqual(qt.query(self.db, "SELECT path FROM roots ORDER BY 1"),
                         [(os.path.realpath(outer),), (stored,)])
        inner_rows = "SELECT id, source_file FROM chunks WHERE source_file LIKE ? ORDER BY 1"
        before = qt.query(self.db, inner_rows, (stored + "/%",))
        self.assertEqual(len(before), 1)
        os.rename(inner, os.path.join(self.tmp, "away"))
        os.mkdir(inner)
        os.unlink(gone)
        p = self.quire("search", "--sync", "--files", "remnant", expect=0)
        self.assertRegex(p.stderr, r"Root .*drive \(namespace default\) is an empty folder, but notes were indexed")
        self.assertOneLine(p.stderr)
        self.assertEqual(p.stdout.splitlines(), [os.path.join(stored, "x.md") + "\t[stale]"])
        self.assertEqual(qt.query(self.db, inner_rows, (stored + "/%",)), before)
        self.assertEqual(self.search("vanishing"), [])
        self.assertEqual(self.search("steady"), [os.path.join(os.path.realpath(outer), "top.md")])
        self.assertHealthy(self.db)

    def test_bad_sync_timeout_is_a_usage_error(self):
        p = self.quire("search", "--sync-timeout", "soon", "x", expect=2)
        self.assertOneLine(p.stderr)
        self.assertIn("--sync-timeout", p.stderr)
        p = self.quire("search", "x", env=self.env(QUIRE_SYNC_TIMEOUT_MS="-1"), expect=2)
        self.assertIn("QUIRE_SYNC_TIMEOUT_MS", p.stderr)


def doc_text(words):
    return f"# Note\n\n{words} in a note.\n"


class StatusTests(FreshCase):
    """quire status: is the index current, and its exit status."""

    def test_no_daemon_is_exit_0(self):
        self.write("a.md", note("x"))
        self.index(self.notes)
        p = self.status(expect=0)
        self.assertIn("daemon:           not running", p.stdout)
        self.assertNotIn("index:", p.stdout)
        info, rc = self.status_json(expect=0)
        self.assertEqual(info["daemon"], {"running": False})

    def test_idle_daemon_is_current(self):
        self.write("a.md", note("x"))
        self.write("d/b.md", note("y"))
        d = self.quired()
        self.converge(d)
        info, _ = self.status_json(expect=0)
        dm = info["daemon"]
        self.assertTrue(dm["current"])
        self.assertFalse(dm["lagging"])
        self.assertEqual((dm["watched_dirs"], dm["unwatched_dirs"], dm["overflows"]), (2, 0, 0))
        self.assertEqual(dm["roots"], [self.root])
        self.assertIsNone(dm["oldest_pending"])
        self.assertRegex(dm["last_reconcile"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(dm["lag_threshold_ms"], 3000)
        # What --sync syncs once the daemon is gone: quired recorded its root.
        self.assertEqual(qt.query(self.db, "SELECT namespace, path FROM roots"), [("default", self.root)])
        text = self.status(expect=0).stdout
        self.assertRegex(text, r"(?m)^index:\s+current$")
        self.assertRegex(text, r"(?m)^watched:\s+2 directories$")
        self.assertRegex(text, r"(?m)^overflows:\s+0 recovered$")

    def test_a_stalled_indexer_makes_the_index_lag(self):
        self.write("a.md", note("x"))
        self.quired(env=self.daemon_env(QUIRE_TEST_STALL_INDEXER="1"))
        self.status(expect=0)
        self.write("b.md", note("waiting"))

        def lagging():
            info, rc = self.status_json()
            return (info, rc) if rc == 1 else None
        info, _ = qt.wait_for(lagging, timeout=qt.DAEMON_TIMEOUT, interval=0.2, what="status to say it lags")
        dm = info["daemon"]
        self.assertTrue(dm["lagging"])
        self.assertFalse(dm["current"])
        self.assertGreater(dm["oldest_pending_age_ms"], dm["lag_threshold_ms"])
        self.assertGreaterEqual(dm["queue"] + dm["settling"], 1)
        text = self.status(expect=1).stdout
        self.assertRegex(text, r"(?m)^index:\s+lagging: a change has waited \d+\.\d s \(more than 3\.0 s\); "
                               r"queue \d+, \d+ settling$")

    def test_max_delay_sets_the_threshold(self):
        self.quired(args=["--max-delay", "2500"])
        info, _ = self.status_json(expect=0)
        self.assertEqual(info["daemon"]["lag_threshold_ms"], 5000)

    def test_unwatched_directories_are_exit_1(self):
        for rel in ("a.md", "d1/b.md", "d1/d2/c.md"):
            self.write(rel, note("x"))
        self.quired(env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="1"))
        info, rc = self.status_json(expect=1)
        dm = info["daemon"]
        self.assertEqual((dm["watched_dirs"], dm["unwatched_dirs"]), (1, 2))
        self.assertFalse(dm["current"])
        self.assertFalse(dm["lagging"])
        text = self.status(expect=1).stdout
        self.assertRegex(text, r"(?m)^index:\s+not current: 2 directories are not watched$")
        self.assertRegex(text, r"(?m)^watched:\s+1 directories, 2 not watched")

    def test_overflows_are_counted(self):
        self.write("a.md", note("x"))
        d = self.quired(env=self.daemon_env(QUIRE_TEST_OVERFLOW_AFTER="3"))
        for i in range(10):
            self.write(f"n{i}.md", note(f"flood{i}"))
        d.wait_line(r"Watch queue overflowed")
        self.converge(d)
        info, rc = qt.wait_for(lambda: (lambda i: i if i[0]["daemon"]["overflows"] == 1 else None)(
            self.status_json()), timeout=qt.DAEMON_TIMEOUT, what="the overflow to be counted")
        self.assertEqual(rc, 0)
        self.assertTrue(info["daemon"]["current"])


def thread_ids(pid):
    """{thread name: [tids]} of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8") as f:
                out.setdefault(f.read().strip(), []).append(int(tid))
        except FileNotFoundError:
            pass  # it ended as we looked
    return out


def io_class(tid):
    """The I/O scheduling class ionice reports for a thread: 'idle',
    'best-effort', 'none' (the default, which follows the CPU nice)..."""
    p = subprocess.run(["ionice", "-p", str(tid)], capture_output=True, text=True, check=True)
    return p.stdout.split(":")[0].strip()


class PriorityTests(FreshCase):
    """The indexer thread (and the threads it starts) is a background
    citizen; the loop thread is not."""

    def setUp(self):
        super().setUp()
        if not shutil.which("ionice"):
            self.skipTest("ionice is not installed (Debian package 'util-linux')")

    def test_indexer_is_idle_and_the_loop_is_not(self):
        self.write("a.md", note("x"))
        d = self.quired()
        threads = thread_ids(d.pid)
        self.assertEqual(len(threads.get("quired-indexer", [])), 1, threads)
        indexer = threads["quired-indexer"][0]
        self.assertEqual(os.sched_getscheduler(indexer), os.SCHED_IDLE)
        self.assertEqual(io_class(indexer), "idle")
        self.assertEqual(os.sched_getscheduler(d.pid), os.SCHED_OTHER)
        self.assertNotEqual(io_class(d.pid), "idle")
        self.assertEqual(d.matches(r"Failed to set the indexer"), [])

    def test_normal_priority_from_the_config_and_the_flag(self):
        config = self.write_config("[quire]\nindexer_priority = normal\n")
        for args in (["--config", config], ["--indexer-priority", "normal"]):
            with self.subTest(args=args):
                d = self.quired(args=args)
                indexer = thread_ids(d.pid)["quired-indexer"][0]
                self.assertEqual(os.sched_getscheduler(indexer), os.SCHED_OTHER)
                self.assertNotEqual(io_class(indexer), "idle")
                d.stop()

    def test_bad_priority_is_one_line(self):
        config = self.write_config("[quire]\nindexer_priority = lazy\n")
        p = subprocess.run([qt.QUIRED, "--config", config, self.notes], env=self.daemon_env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertOneLine(p.stderr)
        self.assertRegex(p.stderr, r"unknown priority 'lazy', expected idle or normal \(key 'indexer_priority'")
        p = subprocess.run([qt.QUIRED, "--indexer-priority", "high", self.notes], env=self.daemon_env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--indexer-priority needs idle or normal, not 'high'", p.stderr)

    def test_reader_threads_inherit_the_idle_priority(self):
        src = qt.unpack_corpus(["tldr/pages"])
        qt.copy_tree(os.path.join(src, "pages"), os.path.join(self.notes, "pages"))
        d = self.quired(ready=False)
        seen = {}

        def workers():
            for name in ("quire-reader", "quire-planner"):
                for tid in thread_ids(d.pid).get(name, []):
                    try:
                        seen.setdefault(name, (os.sched_getscheduler(tid), io_class(tid)))
                    except (OSError, subprocess.CalledProcessError):
                        pass  # it ended as we looked
            return len(seen) == 2 or d.matches(qt.READY_RE)
        qt.wait_for(workers, timeout=qt.DAEMON_TIMEOUT, interval=0.005, what="the reconcile's threads")
        self.assertEqual(set(seen), {"quire-reader", "quire-planner"},
                         "the first reconcile ended before its threads were seen")
        for name, (policy, io) in seen.items():
            self.assertEqual((policy, io), (os.SCHED_IDLE, "idle"), name)
        self.assertEqual(os.sched_getscheduler(d.pid), os.SCHED_OTHER)


if __name__ == "__main__":
    qt.main()
