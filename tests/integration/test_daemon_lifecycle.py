#!/usr/bin/env python3
"""quired's life cycle and its ways out of trouble: stopping and starting
again (with and without changes in between), signals (SIGTERM, SIGINT,
SIGHUP), 'quire index' writing the same database at the same time, a
watch queue overflow and the watch limit (both simulated through the
daemon's QUIRE_TEST_* switches). Each test polls until the daemon's
database holds exactly the rows a fresh 'quire index' of the same tree
writes; the event handling itself is in test_daemon.py."""

import json
import os
import shutil
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from test_daemon import DaemonCase, note  # noqa: E402

# Corpus trees take a while to index on a loaded machine.
BIG_TREE_TIMEOUT = max(qt.CONVERGE_TIMEOUT, 180.0)


class LifecycleCase(DaemonCase):
    def make_tree(self):
        super().make_tree()
        self.write("delta.md", note("dolphin"))
        self.write("sub/epsilon.md", note("eagle"))

    def corpus_tree(self, *members):
        """Copy part of the corpus (e.g. 'pages/linux') below the root;
        returns the number of notes in it."""
        src = qt.unpack_corpus([f"tldr/{m}" for m in members])
        for m in members:
            qt.copy_tree(os.path.join(src, m), os.path.join(self.notes, m))
        return len(qt.markdown_files(self.notes))

    def reconciled(self, d, since=0):
        """The numbers of the first Reconciled line from since on; it must be for the root."""
        _, m = d.wait_line(qt.RECONCILED_RE, since=since)
        self.assertEqual(m["root"], self.root)
        return qt.match_ints(m)


class RestartTests(LifecycleCase):
    def test_restart_with_nothing_changed_reads_nothing(self):
        self.make_tree()
        d = self.quired()
        self.assertEqual(self.reconciled(d), {"checked": 5, "read": 5, "new": 5, "changed": 0, "removed": 0})
        self.assertEqual(qt.match_ints(d.wait_line(qt.READY_RE)[1]), {"dirs": 3, "roots": 1})
        state = self.converge(d)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.log())
        self.assertTrue(d.matches(r"^quired: Stopping \(SIGTERM\)$"), "no Stopping line")

        d2 = self.quired()
        self.assertEqual(self.reconciled(d2), {"checked": 5, "read": 0, "new": 0, "changed": 0, "removed": 0})
        self.assertEqual(self.converge(d2), state)
        self.assertEqual(len(d2.matches(qt.RECONCILED_RE)), 1, "one Reconciled line per root and reconcile")
        self.assertHealthy(self.db)

    def test_changes_made_while_stopped_are_found_at_start(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        self.assertEqual(d.stop()[0], 0, d.log())

        self.write("alpha.md", note("aardvark", {1: "albatross with a longer section"}))
        os.unlink(self.disk("sub/beta.md"))
        self.write("sub/deeper/new.md", note("newt"))

        d2 = self.quired()
        self.assertEqual(self.reconciled(d2), {"checked": 5, "read": 2, "new": 1, "changed": 1, "removed": 1})
        self.converge(d2)
        self.assertEqual(self.hits("albatross"), {self.stored("alpha.md")})
        self.assertEqual(self.hits("aardvarkpart1"), set())
        self.assertGone(self.stored("sub/beta.md"), "bumblebee")
        self.assertEqual(self.hits("newt"), {self.stored("sub/deeper/new.md")})
        self.assertHealthy(self.db)

    def test_changes_waiting_at_sigterm_are_found_at_the_next_start(self):
        # Pending changes are dropped at a stop (daemon/main.c: shutdown_daemon);
        # the next start's reconcile must find them.
        self.make_tree()
        d = self.quired(args=["--settle", "5000", "--max-delay", "10000"])
        self.converge(d)
        mark = d.mark()
        self.write("pending.md", note("penguin"))
        os.unlink(self.disk("delta.md"))
        d.wait_line(r"watch: .*pending\.md", since=mark)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.log())
        self.assertEqual(self.hits("penguin"), set(), "indexed before the settle time")

        d2 = self.quired()
        self.assertEqual(self.reconciled(d2), {"checked": 5, "read": 1, "new": 1, "changed": 0, "removed": 1})
        self.converge(d2)
        self.assertEqual(self.hits("penguin"), {self.stored("pending.md")})
        self.assertGone(self.stored("delta.md"), "dolphin")
        self.assertHealthy(self.db)


class StartTests(LifecycleCase):
    def test_changes_during_the_first_reconcile_are_not_missed(self):
        # Watches go in before the reconcile walks the tree.
        self.corpus_tree("pages/linux")
        files = qt.markdown_files(self.notes)
        d = self.quired(ready=False)
        d.wait_line(r"^quired: Watching \d+ directories")
        for i, path in enumerate(files[-1:-400:-20]):
            self.write(os.path.relpath(path, self.notes), note(f"duringscan{i}"))
        for path in files[1:400:40]:
            os.unlink(path)
        self.write("pages/linux/zz-new-during-scan.md", note("duringscannew"))
        d.wait_line(qt.READY_RE, timeout=BIG_TREE_TIMEOUT)
        self.wait_converged(self.notes, daemon=d, timeout=BIG_TREE_TIMEOUT)
        self.assertEqual(self.hits("duringscannew"), {self.stored("pages/linux/zz-new-during-scan.md")})
        self.assertHealthy(self.db)

    def test_root_missing_at_start_is_indexed_once_it_appears(self):
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        later = os.path.join(self.tmp, "later")
        d = self.quired(later, args=["--config", config])
        self.assertTrue(d.matches(r"Root .*later is missing"), "no line about the missing root")
        self.write("sub/first.md", note("starling"), root=later)
        d.wait_line(r"Root .*later is back")
        self.wait_converged(later, daemon=d)
        self.write("sub/second.md", note("swift"), root=later)
        self.wait_converged(later, daemon=d)
        self.assertEqual(self.hits("swift"), {self.stored("sub/second.md", later)})
        self.assertHealthy(self.db)


    def test_a_reconcile_that_failed_on_a_lock_is_retried(self):
        # The database exists with the current schema, so opening it only
        # reads; then a peer holds the write lock past the daemon's lock
        # timeout, and the first reconcile fails. Nothing on disk changes
        # afterwards: only the retry can bring the notes in.
        self.make_tree()
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        self.quire("index", empty)
        peer = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        peer.execute("BEGIN IMMEDIATE")
        try:
            config = self.write_config("[quire]\nrescan_interval_s = 1\n")
            d = self.quired(args=["--config", config], ready=False,
                            env=self.daemon_env(QUIRE_LOCK_TIMEOUT_MS="300"))
            d.wait_line(r"Reconcile failed; retrying in 1 s")
            self.assertEqual(qt.query(self.db, "SELECT count(*) FROM files"), [(0,)])
        finally:
            peer.execute("ROLLBACK")
            peer.close()
        self.converge(d)
        self.assertEqual(self.hits("dolphin"), {self.stored("delta.md")})
        self.assertHealthy(self.db)


class SignalTests(LifecycleCase):
    def test_sigint_stops_with_status_0(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        rc, _ = d.stop(signal.SIGINT)
        self.assertEqual(rc, 0, d.log())
        self.assertTrue(d.matches(r"^quired: Stopping \(SIGINT\)$"), "no Stopping line")
        self.assertHealthy(self.db)

    def test_sigterm_while_indexing_a_large_tree(self):
        n = self.corpus_tree("pages/common", "pages/osx")
        self.assertGreater(n, 4000)
        d = self.quired(ready=False)
        d.wait_line(r"^quired: Watching \d+ directories")
        rc, elapsed = d.stop(signal.SIGTERM, timeout=10)
        self.assertEqual(rc, 0, d.log())
        self.assertTrue(d.matches(r"^quired: Stopping \(SIGTERM\)$"), "no Stopping line")
        interrupted = not d.matches(qt.READY_RE)
        print(f"\n  stopped {elapsed:.2f} s after SIGTERM; the first index was "
              f"{'interrupted' if interrupted else 'already complete'}", file=sys.stderr)
        if os.path.exists(self.db):
            self.assertHealthy(self.db)
            # What was committed is right, only possibly incomplete.
            expected = self.expected_state(self.notes)
            got = self.state()
            self.assertLessEqual(set(got[0]), set(expected[0]), "chunks no fresh index has")
            self.assertLessEqual({f[:2] for f in got[1]}, {f[:2] for f in expected[1]}, "files no fresh index has")

        d2 = self.quired(timeout=BIG_TREE_TIMEOUT)
        self.wait_converged(self.notes, daemon=d2, timeout=BIG_TREE_TIMEOUT)
        self.assertHealthy(self.db)

    def test_sigterm_while_the_indexer_waits_for_another_writers_lock(self):
        """A 'quire index' holding the database (for up to the lock timeout,
        30 s by default) must not hold up a stop: the change waiting is found
        by the next start's reconcile anyway, as changes not yet flushed are."""
        self.make_tree()
        d = self.quired()
        self.converge(d)
        blocker = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False, timeout=60)
        self.addCleanup(blocker.close)
        blocker.execute("BEGIN IMMEDIATE")
        mark = d.mark()
        self.write("waiting.md", note("wolverine"))
        d.wait_line(r"watch: .*waiting\.md", since=mark)
        time.sleep(1.0)  # settled and taken by the indexer, which now waits
        rc, elapsed = d.stop(signal.SIGTERM, timeout=20)
        self.assertEqual(rc, 0, d.log())
        self.assertLess(elapsed, 5.0, "stopping waited for another writer's lock")
        blocker.execute("COMMIT")
        d2 = self.quired()
        self.converge(d2)
        self.assertEqual(self.hits("wolverine"), {self.stored("waiting.md")})
        self.assertHealthy(self.db)

    def test_sighup_adds_a_root_and_keeps_the_first(self):
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("one.md", note("giraffe"), root=notes2)
        self.write("two/three.md", note("hyena"), root=notes2)
        first = f"[quire]\nrescan_interval_s = 1\n\n[root]\npath = {self.notes}\n"
        config = self.write_config(first)
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", config])
        self.converge(d)
        before = {p: self.ids(self.stored(p)) for p in ("alpha.md", "sub/deeper/gamma.md")}

        self.write_config(first + f"\n[root \"second\"]\npath = {notes2}\n")
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Reloading", since=mark)
        d.wait_line(qt.READY_RE, since=mark)
        both = (("default", [self.notes]), ("second", [notes2]))
        self.wait_converged(*both, daemon=d)
        self.assertEqual(self.hits("giraffe"), {self.stored("one.md", notes2)})
        self.assertEqual({p: self.ids(self.stored(p)) for p in before}, before, "the first root's rows changed")
        self.assertEqual(len(self.search_json("hyena", "--namespace", "second")), 3)
        self.assertEqual(self.search_json("hyena", "--namespace", "default"), [])

        # both roots are watched after the reload
        self.write("after.md", note("ibex"))
        self.write("two/after2.md", note("jaguar"), root=notes2)
        os.unlink(self.disk("delta.md"))
        self.wait_converged(*both, daemon=d)
        self.assertEqual(self.hits("ibex"), {self.stored("after.md")})
        self.assertEqual(self.hits("jaguar"), {self.stored("two/after2.md", notes2)})
        self.assertGone(self.stored("delta.md"), "dolphin")
        self.assertTrue(d.running())
        self.assertHealthy(self.db)


    def test_sighup_with_a_broken_config_keeps_the_running_one(self):
        self.make_tree()
        good = f"[quire]\nrescan_interval_s = 1\n\n[root]\npath = {self.notes}\n"
        config = self.write_config(good)
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", config])
        self.converge(d)
        self.write_config(good + "settle_ms = soon\n")
        mark = d.mark()
        d.send(signal.SIGHUP)
        # One line: the mistake and what quired does about it.
        line = d.wait_line(r"; keeping the current configuration$", since=mark)[1].string
        self.assertRegex(line, r"^quired: .*quired\.ini:\d+: .*settle_ms.*; keeping the current configuration$")
        self.assertNotIn("quired --help", line)
        self.assertEqual(len(d.matches(r"settle_ms|configuration", since=mark)), 1, d.log(mark))
        self.write("after.md", note("cormorant"))
        self.converge(d)
        self.assertEqual(self.hits("cormorant"), {self.stored("after.md")})
        self.assertTrue(d.running())

    def test_sighup_with_a_fifo_for_config_keeps_the_running_one(self):
        """Opening a FIFO to read waits for a writer: quired hung on the
        event loop at the reload, deaf to SIGTERM too."""
        self.make_tree()
        config = self.write_config(f"[quire]\nrescan_interval_s = 1\n\n[root]\npath = {self.notes}\n")
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", config])
        self.converge(d)
        os.unlink(config)
        os.mkfifo(config)
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"; keeping the current configuration$", since=mark)
        self.assertIn(f"quired: Failed to read config file {config}: not a regular file; keeping the current "
                      "configuration", d.lines[mark:])
        self.write("after.md", note("cormorant"))
        self.converge(d)
        self.assertEqual(self.hits("cormorant"), {self.stored("after.md")})
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.log())


    def test_sighup_keeps_the_settings_read_only_at_start_and_says_so(self):
        """The database, the backend, the size cap and the indexer's
        priority are set up once at start: a reload that changes them
        names each in a warning and the daemon keeps the running ones
        (it went on silently before, with its state claiming the new
        values)."""
        self.make_tree()
        other_backend = "fs-event" if self.backend == "inotify" else "inotify"
        other_db = os.path.join(self.tmp, "other.db")
        roots = f"\n[root]\npath = {self.notes}\n"
        # In the file, not as flags: flags beat the file on every reload.
        config = self.write_config(f"[quire]\ndatabase = {self.db}\nbackend = {self.backend}\n"
                                   f"rescan_interval_s = 1\n" + roots)
        d = self.start_quired(args=["-v", "--config", config], db=False)
        self.converge(d)
        self.write_config(f"[quire]\ndatabase = {other_db}\nmax_file_size = 1K\nbackend = {other_backend}\n"
                          f"indexer_priority = normal\nrescan_interval_s = 1\n" + roots)
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(qt.READY_RE, since=mark)
        for what in ("The database", "The watch backend", "max_file_size", "indexer_priority"):
            self.assertTrue(d.matches(what + r" changed in .*quired\.ini; it takes effect when quired restarts",
                                      since=mark), f"no warning for {what}:\n{d.log()}")
        # Still the running ones: a 4 KiB note is indexed, into the first database.
        self.write("big.md", note("narwhal") + "x" * 4096 + "\n")
        self.converge(d)
        self.assertEqual(self.hits("narwhal"), {self.stored("big.md")})
        self.assertFalse(os.path.exists(other_db), "the reload opened the new database")
        # The indexer thread still at the idle policy it started with.
        indexer = [int(t) for t in os.listdir(f"/proc/{d.pid}/task")
                   if open(f"/proc/{d.pid}/task/{t}/comm", encoding="utf-8").read().strip() == "quired-indexer"]
        self.assertEqual(len(indexer), 1)
        self.assertEqual(os.sched_getscheduler(indexer[0]), os.SCHED_IDLE)
        # The backend it started with: only inotify pairs a rename.
        mark = d.mark()
        os.rename(self.disk("big.md"), self.disk("bigger.md"))
        self.converge(d)
        moved = d.matches(r"watch: moved .*big\.md", since=mark)
        self.assertEqual(bool(moved), self.backend == "inotify", d.log(mark))
        self.assertTrue(d.running())


class ConfigTests(LifecycleCase):
    def test_namespace_flag(self):
        self.make_tree()
        d = self.quired(args=["--namespace", "work"])
        self.wait_converged(("work", [self.notes]), daemon=d)
        self.write("sub/more.md", note("sparrow"))
        self.wait_converged(("work", [self.notes]), daemon=d)
        self.assertEqual(len(self.search_json("sparrow", "--namespace", "work")), 3)
        self.assertEqual(self.search_json("sparrow", "--namespace", "default"), [])

    def test_roots_from_the_config_file_in_two_namespaces(self):
        # relative paths in the file are taken from the file's directory
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("other.md", note("tapir"), root=notes2)
        self.write("deep/er.md", note("toucan"), root=notes2)
        config = self.write_config('[root "one"]\npath = notes\n\n[root "two"]\npath = ./notes2/\n')
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", config])
        both = (("one", [self.notes]), ("two", [notes2]))
        self.wait_converged(*both, daemon=d)
        # a note moved from one namespace's root into the other's
        os.rename(self.disk("alpha.md"), self.disk("alpha.md", notes2))
        os.rename(self.disk("deep", notes2), self.disk("deep"))
        self.wait_converged(*both, daemon=d)
        self.assertEqual([h["source_file"] for h in self.search_json("aardvark", "--namespace", "two")],
                         [self.stored("alpha.md", notes2)] * 3)
        self.assertEqual(self.search_json("aardvark", "--namespace", "one"), [])
        self.assertEqual(len(self.search_json("toucan", "--namespace", "one")), 3)
        self.assertHealthy(self.db)

    def test_max_file_size_agrees_with_quire_index(self):
        self.make_tree()
        d = self.quired(args=["--max-file-size", "2K"])
        self.wait_converged(self.notes, daemon=d, index_args=["--max-file-size", "2K"])
        self.write("alpha.md", note("aardvark") + section_filler(3000))
        self.write("small.md", note("stork"))
        self.wait_converged(self.notes, daemon=d, index_args=["--max-file-size", "2K"])
        self.assertEqual(self.hits("stork"), {self.stored("small.md")})
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertHealthy(self.db)

    def test_extensions_choose_the_notes_and_a_reload_changes_them(self):
        # Only the unit test of the config parser looked at this key.
        self.write("a.md", note("mdword"))
        self.write("b.txt", note("txtword"))
        self.write("c.Markdown", note("markdownword"))
        config = self.write_config("[quire]\nextensions = txt, .MARKDOWN\n")
        d = self.quired(args=["--config", config])
        qt.wait_for(lambda: self.hits("txtword") and self.hits("markdownword"), what="the .txt and .Markdown notes")
        self.assertEqual(self.hits("mdword"), set(), "a .md note indexed though md is not listed")
        # Events follow the rule too: a new .txt note enters, a new .md note does not.
        self.write("d.txt", note("latetxt"))
        self.write("e.md", note("latemd"))
        qt.wait_for(lambda: self.hits("latetxt"), what="the new .txt note")
        self.assertEqual(self.hits("latemd"), set())
        mark = d.mark()
        self.write_config("[quire]\nextensions = md\n")
        d.send(signal.SIGHUP)
        d.wait_line(r"Reconciled", since=mark)
        qt.wait_for(lambda: self.hits("mdword") and not self.hits("txtword"), what="md in, txt out")
        self.assertEqual(self.hits("latemd"), {self.stored("e.md")})
        self.assertEqual(self.hits("markdownword") | self.hits("latetxt"), set())
        self.assertEqual({p for (p,) in qt.query(self.db, "SELECT path FROM files")},
                         {self.stored("a.md"), self.stored("e.md")})
        self.assertHealthy(self.db)


def section_filler(n_bytes):
    line = "filler words to make the note larger than the limit\n"
    return "\n## Filler\n\n" + line * (n_bytes // len(line) + 1)


class RefusedStartTests(LifecycleCase):
    """quired's ways out before it runs: one line, the documented exit
    status, and (like every test here, in a sanitizer build) no leak on
    the way out."""

    def refused(self, args, status):
        p = self.run_program([qt.QUIRED, *args], env=self.daemon_env(), expect=status, timeout=qt.DAEMON_TIMEOUT)
        self.assertOneLine(p.stderr)
        self.assertEqual(p.stdout, "")
        return p.stderr

    def test_usage_and_config_errors_exit_2(self):
        self.assertIn("unknown option '--bogus'", self.refused(["--bogus", self.notes], 2))
        self.assertIn("no folders to watch", self.refused(["--db", self.db], 2))
        config = self.write_config("[quire]\nsettle_ms = 20\nsettle_ms = 0\n")
        self.assertIn(f"{config}:3: given twice", self.refused(["--config", config, self.notes], 2))
        self.assertFalse(os.path.exists(self.db), "a refused start created the database")

    def test_config_that_is_a_fifo_exits_1(self):
        # Like a --config that cannot be opened; it used to wait for a writer.
        config = os.path.join(self.tmp, "quired.ini")
        os.mkfifo(config)
        line = self.refused(["--config", config, self.notes], 1)
        self.assertEqual(line, f"quired: Failed to read config file {config}: not a regular file\n")
        self.assertFalse(os.path.exists(self.db), "a refused start created the database")

    def test_database_that_is_not_sqlite_exits_1_and_is_left_alone(self):
        with open(self.db, "w", encoding="utf-8") as f:
            f.write("a text file where the database should be, long enough to have a header\n")
        before = qt.file_digest(self.db)
        line = self.refused(["--db", self.db, self.notes], 1)
        self.assertIn(self.db, line)
        self.assertIn("not a SQLite database", line)
        self.assertEqual(qt.file_digest(self.db), before)


class NoInotifyTests(LifecycleCase):
    """No inotify instance to be had (fs.inotify.max_user_instances used up
    by other programs): tests/integration/inotify-emfile.c preloaded."""

    def test_inotify_backend_exits_1_with_the_limit_named(self):
        # It closed signal handles it had not made yet: libuv's assertion,
        # SIGABRT, a core dump and a restart loop under systemd.
        env = qt.with_shim(self.daemon_env(), "inotify-emfile")
        p = self.run_program([qt.QUIRED, "--db", self.db, "--backend", "inotify", self.notes], env=env,
                             expect=1, timeout=qt.DAEMON_TIMEOUT)
        errors = [line for line in p.stderr.splitlines() if "Stopping" not in line]
        self.assertEqual(len(errors), 1, p.stderr)
        self.assertRegex(errors[0], r"^quired: Failed to set up file watching: no inotify instance left "
                                    r"\(fs\.inotify\.max_user_instances = -?\d+ .*sysctl fs\.inotify\.max_user_instances=\d+\)$")
        self.assertNotIn("Assertion", p.stderr)

    def test_fs_event_backend_rescans_and_says_it_is_not_current(self):
        # libuv opens its inotify instance at the first watch: every
        # directory is left unwatched, rescanned, and counted as such.
        self.write("a.md", note("before"))
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        env = qt.with_shim(self.daemon_env(), "inotify-emfile")
        d = self.start_quired(self.notes, args=["--backend", "fs-event", "-v", "--config", config], env=env)
        self.converge(d)
        self.assertEqual(len(d.matches(r"No inotify instance left \(fs\.inotify\.max_user_instances")), 1, d.log())
        self.write("b.md", note("afterward"))
        self.converge(d)  # by a rescan
        self.assertEqual(self.hits("afterward"), {self.stored("b.md")})
        p = self.quire("status")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stdout, r"not current: \d+ directories are not watched")
        self.assertEqual(d.stop()[0], 0, d.log())


class EarlySignalTests(LifecycleCase):
    """A signal that comes while quired is still opening its database,
    before its loop runs: the default action ended it (a SIGHUP killed
    it with status 129 and no line said, a SIGTERM skipped the stop).
    They are held until the loop's handlers exist. The database is held
    locked so that the opening waits for as long as the test needs."""

    def start_blocked(self):
        self.make_tree()
        open(self.db, "wb").close()  # a new database, its WAL switch locked out
        holder = sqlite3.connect(self.db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        self.addCleanup(holder.close)
        d = self.quired(ready=False, env=self.daemon_env(QUIRE_LOCK_TIMEOUT_MS="60000"))

        def has_db_open():
            fds = os.path.join("/proc", str(d.pid), "fd")
            try:
                return any(os.readlink(os.path.join(fds, fd)) == self.db for fd in os.listdir(fds))
            except OSError:
                return False
        qt.wait_for(has_db_open, what="quired to open the database")
        return d, holder

    def test_sighup_while_opening_the_database_reloads_once_running(self):
        d, holder = self.start_blocked()
        d.send(signal.SIGHUP)
        holder.execute("ROLLBACK")
        d.wait_line(qt.READY_RE)
        d.wait_line(r"Reloading")
        self.converge(d)
        self.assertEqual(d.stop()[0], 0, d.log())

    def test_sigterm_while_opening_the_database_stops_cleanly(self):
        d, holder = self.start_blocked()
        d.send(signal.SIGTERM)
        holder.execute("ROLLBACK")
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertEqual(len(d.matches(r"Stopping \(SIGTERM\)")), 1, d.log())


class NoThreadTests(LifecycleCase):
    """No thread to be had (RLIMIT_NPROC, or systemd's TasksMax= used up):
    tests/integration/pthread-eagain.c preloaded."""

    def test_no_indexer_thread_exits_1_with_the_cause_named(self):
        # The failed start freed the indexer while the loop still held its
        # async handle, which the stop's uv_run() then closed: freed memory
        # filled with a pattern (glibc without its thread cache, and ASan)
        # made libuv abort on it.
        env = qt.with_shim(self.daemon_env(), "pthread-eagain")
        env["GLIBC_TUNABLES"] = "glibc.malloc.tcache_count=0"
        env["MALLOC_PERTURB_"] = "90"
        env["ASAN_OPTIONS"] += ":max_free_fill_size=4096:free_fill_byte=90"
        p = self.run_program([qt.QUIRED, "--db", self.db, self.notes], env=env, expect=1,
                             timeout=qt.DAEMON_TIMEOUT)
        self.assertNotIn("Assertion", p.stderr)
        errors = [line for line in p.stderr.splitlines()
                  if "Stopping" not in line and "search thread" not in line]
        self.assertEqual(errors, ["quired: Failed to start the indexer thread: Resource temporarily unavailable"],
                         p.stderr)


class ConcurrentIndexTests(LifecycleCase):
    def test_quire_index_beside_the_daemon(self):
        n = self.corpus_tree("pages/linux", "pages/osx")
        self.assertGreater(n, 2000)
        d = self.quired(ready=False)
        p = self.popen("index", self.notes)
        out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        d.wait_line(qt.READY_RE, timeout=BIG_TREE_TIMEOUT)
        self.wait_converged(self.notes, daemon=d, timeout=BIG_TREE_TIMEOUT)
        self.assertHealthy(self.db)

        # Again while the daemon follows a burst of edits.
        files = qt.markdown_files(self.notes)
        for path in files[:40]:
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n## Appended\n\nkingfisher appended while quire index runs.\n")
        for path in files[40:50]:
            os.unlink(path)
        for i in range(10):
            self.write(f"pages/added/n{i}.md", note(f"lobster{i}"))
        p = self.popen("index", self.notes)
        out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.wait_converged(self.notes, daemon=d, timeout=BIG_TREE_TIMEOUT)
        self.assertEqual(len(self.search_json("kingfisher", "--limit", "100")), 40)
        self.assertHealthy(self.db)


class OverflowTests(LifecycleCase):
    def test_injected_overflow_reconciles_every_root(self):
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("other.md", note("macaw"), root=notes2)
        d = self.quired(self.notes, notes2, env=self.daemon_env(QUIRE_TEST_OVERFLOW_AFTER="5"))
        self.converge(d, self.notes, notes2)
        mark = d.mark()
        for i in range(50):
            self.write(f"flood/f{i:02d}.md", note(f"floodword{i:02d}"))
        os.unlink(self.disk("alpha.md"))
        # The flood's files may all be written before quired watches the
        # new directory (then they raise no event at all): these two notes
        # in watched directories make sure more than 5 events come.
        self.write("more.md", note("mole"), root=notes2)
        self.write("more2.md", note("marmot"), root=notes2)
        overflow, _ = d.wait_line(r"^quired: Watch queue overflowed", since=mark)
        mark = overflow
        self.converge(d, self.notes, notes2)
        for i in (0, 25, 49):
            self.assertEqual(self.hits(f"floodword{i:02d}"), {self.stored(f"flood/f{i:02d}.md")})
        self.assertGone(self.stored("alpha.md"), "aardvark")
        # The events after the overflow may have done the work before the
        # reconcile reports: wait for its line for each root, then count.
        reconciled = set()
        while len(reconciled) < 2:
            i, m = d.wait_line(qt.RECONCILED_RE, since=mark)
            reconciled.add(m["root"])
            mark = i + 1
        self.assertEqual(reconciled, {self.root, os.path.realpath(notes2)})

        # still watching, the directory made during the overflow too
        self.write("flood/late.md", note("nightingale"))
        self.write("late.md", note("opossum"), root=notes2)
        self.converge(d, self.notes, notes2)
        self.assertEqual(self.hits("nightingale"), {self.stored("flood/late.md")})
        self.assertEqual(self.hits("opossum"), {self.stored("late.md", notes2)})
        self.assertEqual(len(d.matches(qt.RECONCILED_RE, since=overflow)), 2, "one Reconciled line per root")
        self.assertEqual(len(d.matches(r"Watch queue overflowed")), 1)
        self.assertHealthy(self.db)

    def test_rename_storm_becomes_one_reconcile(self):
        """A hundred renames while the indexer is busy are not a hundred
        queued moves: past the limit, what waits becomes one reconcile
        (its barriers kept after it), and the index still ends right."""
        for i in range(100):
            self.write(f"storm/n{i:03d}.md", note(f"stormword{i:03d}"))
        limit = 20
        d = self.quired(env=self.daemon_env(QUIRE_TEST_MAX_QUEUE=str(limit), QUIRE_TEST_STALL_INDEXER_MS="400"))
        self.converge(d)
        mark = d.mark()
        for i in range(100):
            os.rename(self.disk(f"storm/n{i:03d}.md"), self.disk(f"storm/m{i:03d}.md"))
        d.wait_line(r"^quired: \d+ operations waiting for the indexer; reconciling every root instead", since=mark)
        # A search that syncs goes through a barrier queued after the storm.
        self.assertEqual({h["source_file"] for h in self.search_json("stormword050", "--sync")},
                         {self.stored("storm/m050.md")})
        self.converge(d)
        self.assertEqual(self.hits("stormword099"), {self.stored("storm/m099.md")})
        self.assertGone(self.stored("storm/n000.md"))
        # Without the limit the queue would have held about a hundred moves.
        queued = [int(m["queued"]) for m in d.matches(qt.BATCH_RE, since=mark)]
        self.assertTrue(queued)
        self.assertLessEqual(max(queued), 2 * limit + 2, queued)
        self.assertTrue(d.running())
        self.assertHealthy(self.db)

    def test_root_dropped_on_reload_stays_dropped_through_a_flood(self):
        """A reload that drops a root queues the removal of its notes; a
        flood right after it turns what waits into one reconcile of the
        roots configured now, which never walks the dropped one: the
        removal must survive the flood."""
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("other.md", note("quokka"), root=notes2)
        first = f"[quire]\nrescan_interval_s = 1\n\n[root]\npath = {self.notes}\n"
        config = self.write_config(first + f"\n[root]\npath = {notes2}\n")
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", config],
                              env=self.daemon_env(QUIRE_TEST_MAX_QUEUE="2", QUIRE_TEST_STALL_INDEXER_MS="3000"))
        self.converge(d, self.notes, notes2)
        self.assertEqual(self.hits("quokka"), {self.stored("other.md", notes2)})

        # The indexer takes this change and stalls on it: what follows waits.
        mark = d.mark()
        self.write("busy.md", note("raccoon"))
        d.wait_line(r"watch: .*busy\.md", since=mark)
        time.sleep(0.5)
        self.write_config(first)
        d.send(signal.SIGHUP)
        d.wait_line(r"Root .*notes2 is no longer configured", since=mark)
        # Several, spaced out: under a sanitizer the indexer may take the
        # first before the queue is over its bound. Six: should the stall
        # end while they come (a loaded machine), the indexer takes what
        # waits and stalls again, and three of them still pile up.
        for i in range(6):
            self.write(f"flood{i}.md", note(f"salamander{i}"))
            time.sleep(0.3)
        d.wait_line(r"operations waiting for the indexer; reconciling every root instead", since=mark)
        d.wait_line(qt.READY_RE, since=mark)
        self.converge(d)
        self.assertEqual(self.hits("salamander5"), {self.stored("flood5.md")})
        self.assertNothingUnder(self.stored("", notes2))
        self.assertHealthy(self.db)

    def test_root_gone_during_a_flood_leaves_the_index(self):
        """A root that vanishes has its notes removed by a walk of it
        queued then; a flood before that walk runs turns what waits into a
        reconcile of the roots present, which no longer lists it: the
        walk of the gone root must survive the flood."""
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("other.md", note("quokka"), root=notes2)
        self.write("deep/more.md", note("quetzal"), root=notes2)
        stored2 = self.stored("", notes2)
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(self.notes, notes2, args=["--config", config],
                        env=self.daemon_env(QUIRE_TEST_MAX_QUEUE="2", QUIRE_TEST_STALL_INDEXER_MS="3000"))
        self.converge(d, self.notes, notes2)
        self.assertEqual(self.hits("quokka"), {self.stored("other.md", notes2)})

        # The indexer takes this change and stalls on it: what follows waits.
        mark = d.mark()
        self.write("busy.md", note("raccoon"))
        d.wait_line(r"watch: .*busy\.md", since=mark)
        time.sleep(0.5)
        shutil.rmtree(notes2)
        d.wait_line(r"Root .*notes2 is gone", since=mark)
        for i in range(6):  # as in the test above
            self.write(f"flood{i}.md", note(f"salamander{i}"))
            time.sleep(0.3)
        d.wait_line(r"operations waiting for the indexer; reconciling every root instead", since=mark)
        self.converge(d)
        self.assertEqual(self.hits("salamander5"), {self.stored("flood5.md")})
        self.assertNothingUnder(stored2)
        self.assertHealthy(self.db)


class WatchLimitTests(LifecycleCase):
    def watched(self):
        """(watched, unwatched) directories, as quire status tells them."""
        daemon = json.loads(self.quire("status", "--json").stdout)["daemon"]
        return (daemon["watched_dirs"], daemon["unwatched_dirs"])

    def test_status_tells_the_end_of_a_burst_while_quired_idles(self):
        """quire status tells what quired ended a burst with, while quired
        idles: a directory left unwatched is counted and the index is not
        current. The state file is written at most once a second; a write
        held back by that is made when the second is over."""
        self.write("a/first.md", note("initial"))
        d = self.quired(env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="2"))  # root and a
        self.converge(d)
        time.sleep(1.1)  # a second since the last write: the next one is made at once
        mark = d.mark()
        self.write("a/second.md", note("secondword"))
        d.wait_line(qt.BATCH_RE, since=mark)
        os.mkdir(self.disk("u"))  # within the second: its report's write is held back
        d.wait_line(r"fs\.inotify\.max_user_watches", since=mark)
        qt.wait_for(lambda: self.watched() == (2, 1), timeout=30, what="u counted as unwatched")
        p = self.quire("status")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("not current: 1 directories are not watched", p.stdout)

    def test_directory_listed_in_part_is_walked_again(self):
        """readdir() failing partway through a directory while quired adds
        its watches (EIO, once: tests/integration/readdir-eio.c preloaded)
        left the directories it did not list unwatched for good: a note
        made in one later was never indexed. The directory is now walked
        again by the rescan, as one the watch limit left out."""
        for sub in ("a", "b", "c"):
            self.write(f"flaky/{sub}/first.md", note(f"initial{sub}"))
        env = qt.with_shim(self.daemon_env(QUIRE_TEST_READDIR_EIO_DIR=os.path.realpath(self.disk("flaky")),
                                           QUIRE_TEST_READDIR_EIO_AFTER="2", QUIRE_TEST_READDIR_EIO_TIMES="1"),
                           "readdir-eio")
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(args=["--config", config], env=env)
        d.wait_line(r"Failed to list .*/flaky, looking at it again later")
        self.converge(d)
        for sub in ("a", "b", "c"):
            self.write(f"flaky/{sub}/later.md", note(f"later{sub}"))
        self.converge(d)
        for sub in ("a", "b", "c"):
            self.assertEqual(self.hits(f"later{sub}"), {self.stored(f"flaky/{sub}/later.md")})
        self.assertHealthy(self.db)

    def test_watch_limit_is_logged_once_and_unwatched_dirs_are_rescanned(self):
        dirs = ["", "d1", "d2", "d2/d3", "d4"]  # five directories, the root too
        for i, rel in enumerate(dirs):
            self.write(os.path.join(rel, "first.md"), note(f"initial{i}"))
        self.write("d5/first.md", note("initial5"))
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(args=["--config", config], env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="2"))
        _, ready = d.wait_line(qt.READY_RE)
        self.assertEqual(ready["dirs"], "2")
        self.converge(d)

        # At least four of the six directories are not watched: whatever
        # happens in them is found by the rescan.
        dirs.append("d6")  # made now, at the limit
        for i, rel in enumerate(dirs):
            self.write(os.path.join(rel, "later.md"), note(f"later{i}"))
        os.unlink(self.disk("d2/d3/first.md"))
        shutil.rmtree(self.disk("d5"))
        self.converge(d)
        for i, rel in enumerate(dirs):
            self.assertEqual(self.hits(f"later{i}"), {self.stored(os.path.join(rel, "later.md"))})
        self.assertEqual(self.hits("initial3") | self.hits("initial5"), set())
        self.assertNothingUnder(self.stored("d5"))

        # Two more rescans, then count: the limit is said once.
        for _ in range(2):
            d.wait_line(qt.BATCH_RE, since=d.mark())
        said = d.matches(r"fs\.inotify\.max_user_watches")
        self.assertEqual(len(said), 1, "the watch limit is logged exactly once")
        self.assertRegex(said[0].string, r"sysctl fs\.inotify\.max_user_watches=\d+")
        self.assertTrue(d.running())
        self.assertHealthy(self.db)

    def test_watch_limit_with_its_sysctl_unreadable_suggests_a_real_number(self):
        """A container may mask /proc/sys: the limit read as -1, and twice
        that as a size_t made the one actionable line suggest
        max_user_watches=18446744073709551614."""
        if not qt.is_root():
            self.skipTest("needs root to mount over /proc/sys/fs/inotify")
        self.write("first.md", note("initial"))
        self.write("d1/first.md", note("deeper"))
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs none /proc/sys/fs/inotify && exec "$0" "$@"',
                qt.QUIRED, "--db", self.db, "--backend", self.backend, "-v", self.notes]
        d = qt.Daemon(argv, self.daemon_env(QUIRE_TEST_MAX_WATCHES="1"))
        self.daemons.append(d)
        self.addCleanup(d.kill)
        _, said = d.wait_line(r"fs\.inotify\.max_user_watches = -1\).*sysctl fs\.inotify\.max_user_watches=(\d+)$")
        self.assertLess(int(said[1]), 1 << 20)
        self.converge(d)

    def test_directories_made_while_unwatched_are_watched_once_watches_are_free(self):
        """A directory the limit left unwatched gets its watch back once
        watches are free again (the limit raised, watched directories
        deleted); so must the directories made inside it meanwhile, or
        what happens in them is never seen (the rescan stops then)."""
        self.write("a/b/first.md", note("initial"))
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        # root, a and a/b: exactly the limit
        d = self.quired(args=["--config", config], env=self.daemon_env(QUIRE_TEST_MAX_WATCHES="3"))
        self.converge(d)
        mark = d.mark()
        os.mkdir(self.disk("u"))
        d.wait_line(r"fs\.inotify\.max_user_watches", since=mark)
        self.write("u/new/early.md", note("unwatchedearly"))
        self.converge(d)  # found by the rescan
        mark = d.mark()
        shutil.rmtree(self.disk("a"))  # two watches free again
        self.converge(d)
        # The next rescan gives u and u/new their watches; then the
        # rescans stop (one a second, with this interval, if they do not).
        d.wait_line(r"Rescanning \d+ directories", since=mark)
        qt.wait_for(lambda: self.watched() == (3, 0), what="root, u and u/new watched, none left out")
        mark = d.mark()
        # Only a watch on u/new sees this: no rescan looks any more.
        self.write("u/new/late.md", note("unwatchedlate"))
        self.converge(d)
        self.assertEqual(self.hits("unwatchedlate"), {self.stored("u/new/late.md")})
        self.assertEqual(d.matches(r"Rescanning", since=mark), [], "still rescanning: not a watch's doing")
        self.assertEqual(self.watched(), (3, 0))
        self.assertTrue(d.running())
        self.assertHealthy(self.db)


if __name__ == "__main__":
    qt.main()
