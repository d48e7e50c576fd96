#!/usr/bin/env python3
"""Bad state around the database, for quired (and 'quire index' where the
CLI has no test of it in test_bad_db.py): a database replaced by garbage
before the start or while the daemon runs, a read-only database or file
system, a lock held past QUIRE_LOCK_TIMEOUT_MS, a full disk.

Each test checks for one clear line naming the database and the cause,
that the daemon neither exits nor spins (its CPU time and its log lines
over a few seconds of the bad state stay small; generous bounds, not
timings), that nothing indexed before is lost, and that work resumes on
its own, without a restart, once the cause is gone."""

import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from test_daemon import note  # noqa: E402
from test_hostile import HostileCase  # noqa: E402

LOCK_TIMEOUT_MS = "300"
# Over BAD_STATE_SECONDS a daemon that waits for the cause to go away uses
# next to no CPU; one that retries in a loop uses a good part of a core.
BAD_STATE_SECONDS = 4.0
MAX_CPU_SECONDS = 0.5
MAX_LOG_LINES = 24


def big_note(word):
    """A note large enough that writing it needs many new database pages."""
    return note(word) + "\n## Bulk\n\n" + "\n".join(f"{word} bulk line {i} with unique{i}x{word}"
                                                   for i in range(6000)) + "\n"


def safe_readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


class BadStateCase(HostileCase):
    def assertFailingThenCurrent(self, d, fix, error):
        """quire status says the index is not current while quired's
        indexing fails (exit 1, the error, the retry) and current again
        once fix() has removed the cause and quired caught up. It said
        'current' all along before, however long the retries failed."""
        qt.wait_for(lambda: self.quire("status").returncode == 1, timeout=30, what="status exit 1")
        p = self.quire("status", expect=1)
        self.assertRegex(p.stdout, r"index: +not current: indexing has failed since \d{4}-\d\d-\d\dT[\d:.]+Z "
                                   rf"\({error}\); quired retries every \d+ s \(see its log\)", p.stdout)
        failing = json.loads(self.quire("status", "--json", expect=1).stdout)["daemon"]
        self.assertIs(failing["current"], False)
        self.assertRegex(failing["failing"]["error"], error)
        self.assertGreaterEqual(failing["failing"]["retry_s"], 1)
        fix()
        self.converge(d)
        qt.wait_for(lambda: self.quire("status").returncode == 0, timeout=30, what="status exit 0")
        working = json.loads(self.quire("status", "--json", expect=0).stdout)["daemon"]
        self.assertIs(working["failing"], None)
        self.assertIs(working["current"], True)
        self.assertIn("index:            current", self.quire("status", expect=0).stdout)

    def assertCalm(self, d, since):
        """Over a few seconds of the bad state: running, little CPU, few lines."""
        cpu = d.cpu_seconds()
        time.sleep(BAD_STATE_SECONDS)
        used = d.cpu_seconds() - cpu
        self.assertTrue(d.running(), f"quired exited with status {d.proc.returncode}")
        print(f"\n  {BAD_STATE_SECONDS:.0f} s of bad state: {used:.2f} s CPU, {len(d.lines) - since} lines",
              file=sys.stderr)
        self.assertLess(used, MAX_CPU_SECONDS, "CPU time used while the bad state lasted")
        self.assertLessEqual(len(d.lines) - since, MAX_LOG_LINES, d.log(since))

    def mount_small_fs(self, size):
        """A tmpfs of size bytes, mounted for this test; skips when that is not allowed."""
        mnt = os.path.join(self.tmp, "fs")
        os.mkdir(mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        return mnt

    def fill(self, directory):
        """Fill the file system of directory; returns the filler file."""
        path = os.path.join(directory, "filler")
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\xff" * 65536)
                    f.flush()
            except OSError:
                pass
            try:  # the last partial block
                while True:
                    f.write(b"\xff" * 512)
                    f.flush()
            except OSError:
                pass
        return path


class LockTests(BadStateCase):
    def test_lock_held_past_the_timeout_then_released(self):
        d = self.start(env=self.daemon_env(QUIRE_LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS))
        before = self.state()
        holder = sqlite3.connect(self.db, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # the write lock; readers go on
            mark = d.mark()
            self.write("pending.md", note("pendingword"))
            line = d.wait_line(r"database is locked", since=mark)[1].string
            self.assertIn(self.db, line)
            self.assertCalm(d, mark)
            self.assertEqual(self.state(), before)

            # No new event: only the daemon's own retry can bring the note in.
            self.assertFailingThenCurrent(d, lambda: holder.execute("ROLLBACK"),
                                          "the database is locked by another program")
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        self.assertStillServes(d)


class DamagedIndexTests(BadStateCase):
    def test_full_text_index_damaged_while_quired_runs_then_repaired(self):
        # A damaged FTS5 structure record fails every statement that
        # touches chunks_fts ("vtable constructor failed"); quire repair,
        # run beside quired, rebuilds it and quired's own retry goes on.
        d = self.start()
        with qt.connect(self.db) as con:
            con.execute("UPDATE chunks_fts_data SET block = x'0102030405' WHERE id = 10")
        mark = d.mark()
        self.write("pending.md", note("pendingword"))
        line = d.wait_line(r"its full-text index is damaged", since=mark)[1].string
        self.assertIn(self.db, line)
        self.assertIn("'quire repair' rebuilds it from the rows", line)
        self.assertCalm(d, mark)

        def repair():
            p = self.quire("repair", expect=0)
            self.assertEqual(p.stdout, f"repaired {self.db}: indexes rebuilt from the rows; integrity: ok\n")

        self.assertFailingThenCurrent(d, repair, r"the database file is damaged \(quire status --check; "
                                                 r"quire repair\)")
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        self.assertIn("integrity:        ok\n", self.quire("status", "--check", expect=0).stdout)
        self.assertStillServes(d)

    def test_quired_started_on_a_damaged_full_text_index(self):
        # Its statements are first prepared on the damaged table, so the
        # failure comes from the prepare: status said "Input/output error".
        self.index_keep()
        for table in ("chunks_fts", "chunks_cjk"):
            with qt.connect(self.db) as con:
                con.execute(f"UPDATE {table}_data SET block = x'0102030405' WHERE id = 10")
        self.write("pending.md", note("pendingword"))
        d = self.quired()
        line = d.wait_line(r"its full-text index is damaged")[1].string
        self.assertIn(self.db, line)
        self.assertFailingThenCurrent(d, lambda: self.quire("repair", expect=0),
                                      r"the database file is damaged \(quire status --check; quire repair\)")
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        self.assertStillServes(d)


class DiskFullTests(BadStateCase):
    def setUp(self):
        super().setUp()
        self.db = os.path.join(self.mount_small_fs(4 * 1024 * 1024), "index.db")

    def test_disk_full_under_quire_index(self):
        self.index_keep()
        before = self.state()
        filler = self.fill(os.path.dirname(self.db))
        self.write("big.md", big_note("bigword"))
        p = self.quire("index", self.notes, expect=1)
        self.assertOneLine(p.stderr)
        self.assertIn(self.db, p.stderr)
        self.assertIn("No space left on device", p.stderr)
        # Read without the -shm file a normal reader would need room for.
        self.assertEqual(self.state(f"file:{self.db}?immutable=1"), before)
        os.unlink(filler)
        self.index(self.notes)
        self.assertEqual(self.hits("bigword"), {self.stored("big.md")})
        self.assertKept()

    def test_disk_full_under_quired_then_space_freed(self):
        d = self.start()
        before = self.state()
        filler = self.fill(os.path.dirname(self.db))
        mark = d.mark()
        self.write("big.md", big_note("bigword"))
        line = d.wait_line(r"No space left on device", since=mark)[1].string
        self.assertIn(self.db, line)
        self.assertCalm(d, mark)
        self.assertEqual(self.state(), before)
        self.assertFailingThenCurrent(d, lambda: os.unlink(filler), "No space left on device")
        self.assertEqual(self.hits("bigword"), {self.stored("big.md")})
        self.assertStillServes(d)


class ReadOnlyTests(BadStateCase):
    def test_read_only_database_at_start(self):
        ids = qt.nobody_ids()
        run_as = {}
        if qt.is_root():
            if ids is None:
                self.skipTest("running as root (modes do not bind root) and no 'nobody' account")
            run_as = {"user": ids[0], "group": ids[1], "extra_groups": []}
            os.chmod(self.tmp, 0o755)
        self.index_keep()
        qt.checkpoint(self.db)
        qt.chown_tree(self.tmp, *(ids if run_as else (os.getuid(), os.getgid())))
        os.chmod(self.db, 0o444)
        digest = qt.file_digest(self.db)
        d = self.quired(ready=False, **run_as)
        rc = d.wait_exit()
        self.assertEqual(rc, 1, d.log())
        lines = d.lines
        self.assertEqual(len(lines), 1, d.log())
        self.assertIn(self.db, lines[0])
        self.assertIn("read-only", lines[0])
        self.assertEqual(qt.file_digest(self.db), digest)


class GarbageTests(BadStateCase):
    GARBAGE = b"\x7fELF" + bytes(range(256)) * 64

    def test_garbage_database_at_start(self):
        with open(self.db, "wb") as f:
            f.write(self.GARBAGE)
        d = self.quired(ready=False)
        rc = d.wait_exit()
        self.assertEqual(rc, 1, d.log())
        self.assertEqual(len(d.lines), 1, d.log())
        self.assertIn(self.db, d.lines[0])
        self.assertIn("not a SQLite database", d.lines[0])
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), self.GARBAGE)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.db))), ["index.db"])


    def test_database_replaced_by_garbage_while_quired_runs(self):
        d = self.start()
        aside = self.db + ".aside"
        # Moved aside, and garbage put in its place.
        os.rename(self.db, aside)
        with open(self.db + ".tmp", "wb") as f:
            f.write(self.GARBAGE)
        os.rename(self.db + ".tmp", self.db)
        mark = d.mark()
        self.write("pending.md", note("pendingword"))
        line = d.wait_line(r"was replaced by another file while in use", since=mark)[1].string
        self.assertIn(self.db, line)
        line = d.wait_line(r"not a SQLite database", since=mark)[1].string
        self.assertIn(self.db, line)
        self.assertCalm(d, mark)
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), self.GARBAGE, "the foreign file was written to")
        # The database comes back (SQLite kept what it had committed since
        # the last checkpoint in index.db-wal, which goes with the name):
        # the pending change goes in without a restart, and the rows from
        # before are there with their ids (assertKept).
        os.rename(aside, self.db)
        self.converge(d)
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        self.assertStillServes(d)

    def test_database_deleted_while_quired_runs(self):
        d = self.start()
        mark = d.mark()
        for suffix in ("", "-wal", "-shm"):
            os.unlink(self.db + suffix)
        self.write("pending.md", note("pendingword"))
        line = d.wait_line(r"was removed while in use", since=mark)[1].string
        self.assertIn(self.db, line)
        # A new index, of everything on disk.
        self.converge(d)
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        self.assertEqual(self.hits("keeperone"), {self.stored("keep/one.md")})
        self.kept = self.keep_rows()
        self.assertStillServes(d)

    def test_state_file_removed_with_the_database_is_made_again(self):
        # `rm -f index.db*` to start afresh takes DB.daemon too: quire status
        # then said no daemon ran, --sync indexed in process, and a second
        # quired started on the database beside this one.
        d = self.start()
        mark = d.mark()
        for suffix in ("", "-wal", "-shm", ".daemon"):
            os.unlink(self.db + suffix)
        d.wait_line(r"The daemon state file .*index\.db\.daemon was removed; made it again", since=mark)
        second = self.run_program([qt.QUIRED, "--db", self.db, self.notes], env=self.daemon_env(), expect=3,
                                  timeout=qt.DAEMON_TIMEOUT)
        self.assertIn(f"Another quired (pid {d.pid}) is running on {self.db}", second.stderr)
        self.write("pending.md", note("pendingword"))
        self.converge(d)
        self.assertEqual(self.hits("pendingword"), {self.stored("pending.md")})
        status = json.loads(self.quire("status", "--json", expect=0).stdout)["daemon"]
        self.assertEqual((status["running"], status["pid"]), (True, d.pid))
        self.kept = self.keep_rows()  # a new index, of everything on disk
        self.assertStillServes(d)

    def test_state_file_removed_alone_is_made_again_from_its_folders_watch(self):
        # The state file's removal used to be watched by an inotify
        # instance of its own, one more of the 128 a user has by default;
        # now by the watcher's, as an entry of its folder.
        for backend in ("inotify", "fs-event"):
            with self.subTest(backend=backend):
                d = self.start(args=["--backend", backend])
                fds = os.listdir(f"/proc/{d.pid}/fd")
                instances = [fd for fd in fds if safe_readlink(f"/proc/{d.pid}/fd/{fd}") == "anon_inode:inotify"]
                self.assertEqual(len(instances), 1, "inotify instances of quired")
                mark = d.mark()
                os.unlink(self.db + ".daemon")
                d.wait_line(r"The daemon state file .*index\.db\.daemon was removed; made it again", since=mark)
                status = json.loads(self.quire("status", "--json", expect=0).stdout)["daemon"]
                self.assertEqual((status["running"], status["pid"]), (True, d.pid))
                self.assertStillServes(d)
                d.stop()

    def test_daemon_whose_state_file_another_took_stops(self):
        # The state file replaced by one another process holds: that one
        # has the database now, and two daemons on it index everything twice.
        import fcntl
        d = self.start()
        other = self.db + ".daemon.new"
        with open(other, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write("pid=1\nstate=watching\nheartbeat=2026-11-27T10:00:00.000Z\n")
            f.flush()
            os.rename(other, self.db + ".daemon")
            self.assertEqual(d.wait_exit(), 3, d.log())
            # Its exit left the other one's file alone: with it gone, quire
            # status said no daemon ran, and a third could start.
            self.assertEqual(os.fstat(f.fileno()).st_ino, os.stat(self.db + ".daemon").st_ino)
        self.assertIn(f"Another quired (pid 1) took over {self.db} while this one's state file was gone; stopping",
                      d.log())
        self.kept = None


if __name__ == "__main__":
    qt.main()
