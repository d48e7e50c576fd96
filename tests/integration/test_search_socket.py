#!/usr/bin/env python3
"""quired answering `quire search` over its socket (storage/search-wire.h):
what the CLI prints is byte for byte what it prints when it searches in
process, in every output format and with every filter; the daemon answered
each of those searches (its debug log says so) and none of the in-process
ones; a malformed query is the same usage error; stale hits are marked by
the client's own look at the files; the database replaced under the daemon,
a daemon killed with SIGKILL, a stopped one, garbage, a request of another
protocol version, a silent and a trickling client all leave searches
working; a reader of the output slower than quired, and a hit too large
for a frame, get every hit; a query longer than a query may be is refused,
a search that takes too long is stopped, and a search whose client left,
or that runs when quired stops, is abandoned."""

import base64
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

ANSWERED_RE = re.compile(r"Answered a search in [\d.]+ ms")
N_NOTES_WITH_ARCHIVE = 5  # chunks: tar.md's two sections, git.md's Commit, odd, ja
MAX_QUERY_WORDS = 64  # storage/search.c
MAX_QUERY_BYTES = 2048
# As many words as a query may hold, in every chunk of the slow tree
# (start_on_slow_tree()) 400 times: FTS5 ranks each chunk over every
# phrase at every match, which takes almost 50 s there (16 words: 3 s;
# the cost goes with the square of the words). --files: no snippets, so that
# all that time is ranking, which the progress handler interrupts; one
# snippet() is a single SQLite instruction.
SLOW_SEARCH = ("search", "--files", "echo " * MAX_QUERY_WORDS)


def frame_string(s):
    if s is None:
        return struct.pack("=I", 0xFFFFFFFF)
    b = s.encode()
    return struct.pack("=I", len(b)) + b + b"\0"


def request_frame(query, dev, ino, version=1):
    """A request as storage/search-wire.c writes one, for a bare query."""
    body = b"Q" + struct.pack("=IQQ", version, dev, ino) + frame_string(query)
    body += frame_string(None) * 3 + frame_string("**") * 2
    body += struct.pack("=IIBBI", 10, 0, 0, 0, 0)
    return struct.pack("=I", len(body)) + body


def read_frames(sock):
    """[(type, body)] until the server closes."""
    data = b""
    sock.settimeout(10)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with our bytes unread
            break
        if not chunk:
            break
        data += chunk
    frames = []
    while data:
        (n,) = struct.unpack("=I", data[:4])
        frames.append((chr(data[4]), data[4:4 + n]))
        data = data[4 + n:]
    return frames


class SearchSocketTest(qt.QuiredTestCase, qt.NotesTestCase):
    def setUp(self):
        super().setUp()
        self.write("linux/tar.md", qt.doc("tar", qt.section("Create", ["tar", "archive", "create", "gzip"]),
                                          qt.section("Extract", ["tar", "extract", "archive", "#work"])))
        self.write("linux/gzip.md", "---\ntags: [tools]\n---\n# gzip\n\ncompress files with gzip and tar\n")
        self.write("common/git.md", qt.doc("git", qt.section("Commit", ["git", "commit", "archive"]),
                                           qt.section("Log", ["git", "log", "history"])))
        self.write("odd name\twith tab.md", "# Odd\n\narchive in an odd file name\n")
        self.write("ja/tar.md", "# tar\n\nアーカイブを作成する tar archive\n")

    def socket_path(self):
        sockets = os.listdir(os.path.join(self.runtime_dir, "quire"))
        self.assertEqual(len(sockets), 1, sockets)
        return os.path.join(self.runtime_dir, "quire", sockets[0])

    def served_and_local(self, daemon, *args, **kwargs):
        """quire search ARGS through the daemon and in process: the two
        CompletedProcess. The in-process one runs first, so that when the
        daemon's line for the served one has come, a line of its own
        would have come before it: exactly one line since the mark."""
        mark = daemon.mark()
        local = self.quire("search", *args, env=self.in_process_env(), **kwargs)
        served = self.quire("search", *args, **kwargs)
        daemon.wait_line(ANSWERED_RE, since=mark)
        self.assertEqual(len(daemon.matches(ANSWERED_RE, since=mark)), 1,
                         f"not one search answered by quired: {daemon.log(mark)}")
        return served, local

    def in_process_env(self):
        return self.env(XDG_RUNTIME_DIR=None)

    def start(self, *args):
        d = self.start_quired(self.notes, args=("-v", *args))
        self.wait_converged(self.notes, daemon=d)
        return d

    def test_answers_are_the_in_process_ones(self):
        d = self.start()
        cases = [
            ["archive"],
            ["--json", "archive"],
            ["--vimgrep", "archive"],
            ["--files", "archive"],
            ["--files", "--limit", "1", "--offset", "1", "archive"],
            ["--limit", "2", "--offset", "1", "archive"],
            ["--json", "--path", "linux", "tar"],
            ["--json", "--path", "./common", "archive"],
            ["--json", "--heading", "extract", "tar"],
            ["--json", "--tag", "work", "tar"],
            ["--json", "--tag", "tools", "gzip"],
            ["--json", "-n", "nothere", "tar"],
            ["--color", "always", "tar"],
            ["--json", "アーカイブ"],
            ["--json", "heading_hierarchy: commit"],
            ["nothingmatchesthis"],
            ["tar NOT"],
            ["--json", '"unterminated'],
            ["--json", "tar AND " + "x" * 1100 + " NOT"],  # its message is past 1 KiB
        ]
        for args in cases:
            with self.subTest(args=args):
                served, local = self.served_and_local(d, *args, cwd=self.notes)
                self.assertEqual((served.returncode, served.stdout, served.stderr),
                                 (local.returncode, local.stdout, local.stderr))
        # The cases are not all empty: the comparison compared something.
        hits = self.search_json("archive")
        self.assertEqual(len(hits), N_NOTES_WITH_ARCHIVE, hits)
        self.assertIn(self.path("odd name\twith tab.md"), {h["source_file"] for h in hits})
        bad = self.quire("search", "tar NOT", expect=2)
        self.assertOneLine(bad.stderr)
        self.assertIn("Invalid search query 'tar NOT'", bad.stderr)
        self.assertEqual(bad.stdout, "")

    def test_stale_hits_are_marked_by_the_client(self):
        # The indexer takes its first batch (the reconcile), then stalls:
        # an edit stays unindexed.
        d = self.start_quired(self.notes, args=("-v",), env=self.daemon_env(QUIRE_TEST_STALL_INDEXER="1"))
        self.wait_converged(self.notes, daemon=d)
        with open(os.path.join(self.notes, "common", "git.md"), "a", encoding="utf-8") as f:
            f.write("\nmore words\n")
        served, local = self.served_and_local(d, "--json", "commit", expect=0)
        self.assertEqual(served.stdout, local.stdout)
        self.assertIn('"stale":true', served.stdout)
        text = self.quire("search", "commit", expect=0)
        self.assertIn("[stale]", text.stdout)

    def test_replaced_database_is_followed(self):
        d = self.start()
        # The daemon's search threads have the database open (which thread
        # takes a client is up to the kernel: enough searches for both)...
        for _ in range(8):
            self.served_and_local(d, "--json", "archive", expect=0)
        old_ino = os.stat(self.db).st_ino
        # ...and it goes; quired makes a new one of everything on disk.
        for suffix in ("", "-wal", "-shm"):
            os.unlink(self.db + suffix)
        self.write("zebra.md", "# Zebra\n\nzebra crossing\n")
        self.wait_converged(self.notes, daemon=d)
        self.assertNotEqual(os.stat(self.db).st_ino, old_ino)
        for _ in range(4):
            served, local = self.served_and_local(d, "--json", "zebra", expect=0)
            self.assertEqual(served.stdout, local.stdout)
            self.assertIn(json.dumps(self.path("zebra.md")), served.stdout)

    def test_database_quired_cannot_open_is_reported_by_the_client(self):
        d = self.start()

        def garbage():
            with open(self.db + ".tmp", "wb") as f:
                f.write(b"not a database at all\n" * 10)
            os.rename(self.db + ".tmp", self.db)

        def directory():
            os.unlink(self.db)
            os.mkdir(self.db)

        # Garbage in the database's place, then a directory: quired's search
        # thread fails to open either, and the client reports it as its own
        # open does (exit 1, not a usage error).
        for replace, expected in ((garbage, "not a SQLite database"), (directory, "not a regular file")):
            with self.subTest(expected=expected):
                replace()
                served, local = self.served_and_local(d, "--json", "archive")
                self.assertEqual((served.returncode, served.stdout, served.stderr),
                                 (local.returncode, local.stdout, local.stderr))
                self.assertEqual(served.returncode, 1)
                self.assertOneLine(served.stderr)
                self.assertIn(expected, served.stderr)

    def test_killed_daemon_leaves_searches_working(self):
        d = self.start()
        expected = self.quire("search", "--json", "archive", expect=0).stdout
        path = self.socket_path()
        d.send(signal.SIGKILL)
        d.wait_exit()
        self.assertTrue(os.path.exists(path), "the socket of a killed daemon is still there")
        self.assertEqual(self.quire("search", "--json", "archive", expect=0).stdout, expected)
        d2 = self.start()
        served, _ = self.served_and_local(d2, "--json", "archive", expect=0)
        self.assertEqual(served.stdout, expected)
        d2.stop()
        self.assertFalse(os.path.exists(path), "a stopped daemon left its socket")
        self.assertEqual(self.quire("search", "--json", "archive", expect=0).stdout, expected)

    def test_stopped_daemon_leaves_searches_working(self):
        # SIGSTOP (Ctrl-Z on a quired in a terminal, a debugger): its
        # socket still takes connections, so each search waited out the
        # client's 10 s socket timeout, quire status said "current" and
        # --sync waited its whole timeout.
        d = self.start()
        expected = self.quire("search", "--json", "archive", expect=0).stdout
        d.send(signal.SIGSTOP)
        try:
            # Past the 64 connections its listen queue holds, connect()
            # itself waited the timeout.
            for _ in range(70):
                p = self.quire("search", "--json", "archive", expect=0, timeout=8)
                self.assertEqual(p.stdout, expected)
            status = self.quire("status", expect=1).stdout
            self.assertIn(f"index:            not current: quired (pid {d.pid}) is stopped and indexes nothing "
                          f"until continued (kill -CONT {d.pid})\n", status)
            daemon = json.loads(self.quire("status", "--json", expect=1).stdout)["daemon"]
            self.assertEqual((daemon["stopped"], daemon["current"]), (True, False))
            self.write("linux/new.md", "# New\n\nnewword\n")
            p = self.quire("search", "--sync", "--sync-timeout", "60000", "newword", expect=1, timeout=8)
            self.assertOneLine(p.stderr)
            self.assertIn(f"Failed to sync {self.db}: quired (pid {d.pid}) is stopped and indexes nothing until "
                          f"continued (kill -CONT {d.pid})", p.stderr)
            self.assertEqual(p.stdout, "")
        finally:
            d.send(signal.SIGCONT)
        # Continued: it answers again, and catches up.
        served, _ = self.served_and_local(d, "--json", "archive", expect=0)
        self.assertEqual(served.stdout, expected)
        p = self.quire("search", "--sync", "--json", "newword", expect=0)
        self.assertEqual([json.loads(h)["source_file"] for h in p.stdout.splitlines()], [self.path("linux/new.md")])
        daemon = json.loads(self.quire("status", "--json", expect=0).stdout)["daemon"]
        self.assertEqual((daemon["stopped"], daemon["current"]), (False, True))

    def freeze_cgroup(self, pid):
        """Move pid into a new cgroup and freeze it (cgroup v1's freezer, or
        v2's cgroup.freeze); returns the function that thaws it and puts it
        back. Skips the test where neither can be done (not root, no
        such hierarchy)."""
        name = f"quire-test-{os.getpid()}"
        with open(f"/proc/{pid}/cgroup") as f:
            groups = dict(line.rstrip("\n").split(":", 2)[1:] for line in f)
        for mount, key, state, frozen, thawed, done in (
                ("/sys/fs/cgroup/freezer", "freezer", "freezer.state", "FROZEN", "THAWED", "FROZEN"),
                ("/sys/fs/cgroup", "", "cgroup.freeze", "1", "0", "frozen 1"),
                ("/sys/fs/cgroup/unified", "", "cgroup.freeze", "1", "0", "frozen 1")):
            # A hierarchy mounted there (a tmpfs takes mkdir too).
            if key not in groups or not os.path.exists(os.path.join(mount, "cgroup.controllers" if not key
                                                                    else "cgroup.procs")):
                continue
            # Back to where it was, afterwards.
            parent = mount + groups[key].rstrip("/")
            group = os.path.join(parent, name)
            try:
                os.mkdir(group)
            except OSError:
                continue
            try:
                with open(os.path.join(group, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
                with open(os.path.join(group, state), "w") as f:
                    f.write(frozen)
                # Freezing takes effect when every task has stopped.
                events = os.path.join(group, "freezer.state" if key else "cgroup.events")
                qt.wait_for(lambda: done in open(events).read(), timeout=10, what=f"{group} to be frozen")
            except OSError:
                try:
                    with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                        f.write(str(pid))
                except OSError:
                    pass
                os.rmdir(group)
                continue

            def thaw(group=group, parent=parent, state=state, thawed=thawed):
                with open(os.path.join(group, state), "w") as f:
                    f.write(thawed)
                with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
                os.rmdir(group)
            return thaw
        self.skipTest("no cgroup freezer this test may use")

    def test_frozen_daemon_leaves_searches_working(self):
        # systemctl --user freeze, docker pause: no signal, and the state
        # /proc shows is D or S, not T.
        d = self.start()
        expected = self.quire("search", "--json", "archive", expect=0).stdout
        thaw = self.freeze_cgroup(d.pid)
        try:
            p = self.quire("search", "--json", "archive", expect=0, timeout=8)
            self.assertEqual(p.stdout, expected)
            status = self.quire("status", expect=1).stdout
            self.assertIn(f"index:            not current: quired (pid {d.pid}) is frozen with its cgroup and "
                          "indexes nothing until it is thawed (systemctl --user thaw quired, docker unpause)\n",
                          status)
        finally:
            thaw()
        served, _ = self.served_and_local(d, "--json", "archive", expect=0)
        self.assertEqual(served.stdout, expected)
        self.assertIs(json.loads(self.quire("status", "--json", expect=0).stdout)["daemon"]["stopped"], False)

    def test_bad_clients_do_not_stop_it(self):
        d = self.start()
        path = self.socket_path()
        st = os.stat(self.db)
        start = d.mark()
        # Garbage, then a frame that claims 4 GiB.
        for junk in (b"\x05\x00\x00\x00hello", struct.pack("=I", 0xFFFFFFFF) + b"Q"):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(read_frames(s), [])
        # Another version: refused with a message, not dropped.
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(request_frame("tar", st.st_dev, st.st_ino, version=99))
            frames = read_frames(s)
        self.assertEqual([t for t, _ in frames], ["E"])
        self.assertIn(b"version 1 of the search protocol, not 99", frames[0][1])
        # Another file's identity: refused, the client searches in process.
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(request_frame("tar", st.st_dev, st.st_ino + 1))
            frames = read_frames(s)
        self.assertEqual([t for t, _ in frames], ["E"])
        (status,) = struct.unpack("=i", frames[0][1][1:5])
        self.assertLess(status, 0)
        # The protocol as this test writes it is the one quired reads.
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(request_frame("gzip", st.st_dev, st.st_ino))
            frames = read_frames(s)
        self.assertEqual([t for t, _ in frames], ["H", "H", "E"])
        self.assertEqual(struct.unpack("=i", frames[-1][1][1:5]), (0,))
        # The three requests above were answered (the version and the
        # identity with a refusal); their log lines are in before the next
        # search counts its own.
        deadline = time.monotonic() + qt.DAEMON_TIMEOUT
        while len(d.matches(ANSWERED_RE, since=start)) < 3:
            self.assertLess(time.monotonic(), deadline, d.log(start))
            time.sleep(0.01)
        # A client that connects and says nothing holds one thread; the
        # other answers meanwhile, well inside the silent one's timeout.
        silent = socket.socket(socket.AF_UNIX)
        silent.connect(path)
        try:
            started = time.monotonic()
            served, _ = self.served_and_local(d, "--json", "archive", expect=0)
            self.assertLess(time.monotonic() - started, 4.5)
            self.assertEqual(len(served.stdout.splitlines()), N_NOTES_WITH_ARCHIVE)
        finally:
            silent.close()
        self.assertTrue(d.running())

    def test_trickling_client_is_dropped(self):
        d = self.start()
        # A byte a second keeps each read short of the 5 s timeout; the
        # whole request still has only 5 s from the connect.
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path())
            started = time.monotonic()
            request = request_frame("tar", 0, 0)
            dropped = False
            for i in range(12):
                try:
                    s.sendall(request[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
                s.settimeout(1.0)
                try:
                    if s.recv(1) == b"":
                        dropped = True
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    dropped = True
                    break
            self.assertTrue(dropped, "a client sending a byte a second was never dropped")
            self.assertLess(time.monotonic() - started, 9)
        d.wait_line(r"A search client sent no request")
        self.assertEqual(len(self.search_json("archive")), N_NOTES_WITH_ARCHIVE)

    def test_slow_reader_gets_every_hit(self):
        # A pager or a loop that reads the hits slower than quired sends
        # them: past the pipe and the socket's buffers quire waits on its
        # stdout and stops reading the socket, and quired drops a client
        # that does not read for 5 s. The hits are still all printed.
        line = " ".join(["zebra"] + ["stripe%d" % i for i in range(400)])
        for i in range(300):
            self.write(f"zoo/z{i:03}.md", f"# Animal {i}\n\n{line}\n")
        d = self.start()
        args = ("search", "--vimgrep", "--limit", "1000", "zebra")
        local = self.quire(*args, env=self.in_process_env(), expect=0)
        self.assertEqual(len(local.stdout.splitlines()), 300)
        self.assertGreater(len(local.stdout), 1 << 20)
        mark = d.mark()
        p = self.popen(*args)
        # Not read until quired has given up on a client that stalls (5 s
        # a write, and a write that got some bytes out gets 5 s more).
        time.sleep(12)
        out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertEqual((p.returncode, err), (0, ""))
        self.assertEqual(out, local.stdout)
        # quired answered it, all of it.
        d.wait_line(r"Answered a search in [\d.]+ ms: ok, 300 hits$", since=mark)

    def test_hit_larger_than_a_frame_is_printed(self):
        # A picture pasted as a data URI is one line of megabytes: as
        # --vimgrep's text it makes a hit that no frame holds, after the
        # hits that rank above it were sent. The search still prints them
        # all, as in process.
        picture = base64.b64encode(random.Random(1).randbytes(3 << 20)).decode()
        self.write("photo.md", f"# Holiday\n\n![beach](data:image/png;base64,{picture})\n")
        self.write("images/png.md", "# PNG\n\npng files are pictures, png\n")
        self.write("images/formats.md", "# Formats\n\npng, jpeg and webp\n")
        d = self.start()
        for args in (["--vimgrep", "png"], ["png"]):
            with self.subTest(args=args):
                served, local = self.served_and_local(d, *args)
                self.assertEqual((served.returncode, served.stderr), (0, ""))
                self.assertEqual(served.stdout, local.stdout)
                self.assertIn(self.path("photo.md") + ":", served.stdout)

    def test_output_that_cannot_be_written_fails(self):
        d = self.start()
        mark = d.mark()
        with open("/dev/full", "w") as full:
            p = subprocess.run(self.command("search", "archive"), env=self.env(), stdin=subprocess.DEVNULL,
                               stdout=full, stderr=subprocess.PIPE, text=True, timeout=qt.RUN_TIMEOUT)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertOneLine(p.stderr)
        self.assertIn("No space left on device", p.stderr)
        d.wait_line(r"Answered a search in [\d.]+ ms: ok", since=mark)

    def test_too_long_query_is_refused(self):
        d = self.start()
        cases = [
            ("tar " * (MAX_QUERY_WORDS + 1), f"{MAX_QUERY_WORDS + 1} words, at most {MAX_QUERY_WORDS}"),
            ("数" * (MAX_QUERY_WORDS + 1), f"{MAX_QUERY_WORDS + 1} words"),  # each searched as a pair
            ("x" * (MAX_QUERY_BYTES + 1), f"{MAX_QUERY_BYTES + 1} bytes, at most {MAX_QUERY_BYTES}"),
        ]
        for query, reason in cases:
            with self.subTest(query=query[:20]):
                served, local = self.served_and_local(d, "--json", query)
                self.assertEqual((served.returncode, served.stdout, served.stderr),
                                 (local.returncode, local.stdout, local.stderr))
                self.assertEqual(served.returncode, 2)
                self.assertEqual(served.stdout, "")
                self.assertOneLine(served.stderr)
                self.assertIn("Search query too long: " + reason, served.stderr)
        # As long as a query may be is a query.
        hits = self.search_json("archive " * MAX_QUERY_WORDS)
        self.assertEqual(len(hits), N_NOTES_WITH_ARCHIVE, hits)
        hits = self.search_json("archive " + "x" * (MAX_QUERY_BYTES - 20) + " OR archive")
        self.assertEqual(len(hits), N_NOTES_WITH_ARCHIVE, hits)

    def start_on_slow_tree(self, timeout_ms):
        """quired, its searches' deadline timeout_ms, on notes on which
        SLOW_SEARCH takes most of a minute: 6,000 chunks, each the one
        word 400 times."""
        line = " ".join(["echo"] * 400)
        for i in range(2000):
            self.write(f"slow/s{i:04}.md", f"# Slow {i}\n\n" + "".join(f"## S{k}\n\n{line}\n\n" for k in range(3)))
        d = self.start_quired(self.notes, args=("-v",),
                              env=self.daemon_env(QUIRE_TEST_SEARCH_TIMEOUT_MS=str(timeout_ms)))
        self.wait_converged(self.notes, daemon=d)
        return d

    def start_searches(self, d, n, **kwargs):
        """n quire processes running SLOW_SEARCH through d, once quired
        has spent a second of CPU time on them (its indexer is idle)."""
        cpu = d.cpu_seconds()
        clients = [self.popen(*SLOW_SEARCH, **kwargs) for _ in range(n)]
        qt.wait_for(lambda: d.cpu_seconds() > cpu + 1.0, timeout=qt.DAEMON_TIMEOUT, what="quired searching")
        return clients

    def test_search_past_its_deadline_is_stopped(self):
        d = self.start_on_slow_tree(300)
        mark = d.mark()
        served = self.quire(*SLOW_SEARCH, expect=1, timeout=60)
        d.wait_line(r"Answered a search in [\d.]+ ms: Search took too long", since=mark)
        local = self.quire(*SLOW_SEARCH, expect=1, timeout=60,
                           env=self.env(XDG_RUNTIME_DIR=None, QUIRE_TEST_SEARCH_TIMEOUT_MS="300"))
        for p in (served, local):
            self.assertEqual(p.stdout, "")
            self.assertOneLine(p.stderr)
            self.assertIn("Search took too long: stopped after 0.3 s", p.stderr)
        self.assertEqual(len(self.search_json("archive")), N_NOTES_WITH_ARCHIVE)

    def test_search_of_a_client_that_left_is_abandoned(self):
        # Only the client's leaving ends its search, not the deadline.
        d = self.start_on_slow_tree(600000)
        mark = d.mark()
        # One client for each of quired's two search threads, killed.
        for p in self.start_searches(d, 2):
            p.kill()
            p.communicate()
        # quired answers the next search itself, not past its 10 s of
        # silence in the client's process (the searches of the killed
        # clients, had they gone on, would end with other hits).
        served, local = self.served_and_local(d, "--json", "archive", expect=0)
        self.assertEqual(served.stdout, local.stdout)
        self.assertEqual(len(d.matches(rf"Answered a search in [\d.]+ ms: ok, {N_NOTES_WITH_ARCHIVE} hits$",
                                       since=mark)), 1, d.log(mark))
        # Each thread sees its client gone at its next check (which one
        # answered the search above may not have yet).
        qt.wait_for(lambda: len(d.matches(r"Abandoned a search after [\d.]+ ms: its client left$", since=mark)) == 2,
                    timeout=qt.DAEMON_TIMEOUT, what="both searches abandoned")
        self.assertTrue(d.running())

    def test_stop_during_a_search(self):
        d = self.start_on_slow_tree(600000)
        mark = d.mark()
        # Its client searches in process once quired has gone (where the
        # search ends at this deadline).
        (p,) = self.start_searches(d, 1, env=self.env(QUIRE_TEST_SEARCH_TIMEOUT_MS="300"))
        rc, _ = d.stop(timeout=20)
        self.assertEqual(rc, 0)
        d.wait_line(r"Abandoned a search after [\d.]+ ms: quired is stopping$", since=mark)
        out, err = p.communicate(timeout=60)
        self.assertEqual((p.returncode, out), (1, ""))
        self.assertOneLine(err)
        self.assertIn("Search took too long: stopped after 0.3 s", err)

    def test_stop_does_not_wait_for_clients_that_send_nothing(self):
        # Each worker waited for its client's request until the 5 s
        # deadline before it saw the stop: any process of the user could
        # hold a stop up that long.
        d = self.start()
        fds = os.path.join("/proc", str(d.pid), "fd")

        def n_sockets():
            return sum(os.readlink(os.path.join(fds, fd)).startswith("socket:") for fd in os.listdir(fds))
        before = n_sockets()
        with socket.socket(socket.AF_UNIX) as a, socket.socket(socket.AF_UNIX) as b:
            a.connect(self.socket_path())
            b.connect(self.socket_path())
            qt.wait_for(lambda: n_sockets() == before + 2, what="both clients to be taken")
            mark = d.mark()
            rc, _ = d.stop()
        self.assertEqual(rc, 0, d.log())
        self.assertEqual(len(d.matches(r"A search client sent no request: Operation canceled$", since=mark)), 2,
                         d.log(mark))
        self.assertEqual(d.matches(r"Resource temporarily unavailable", since=mark), [])

    def test_no_runtime_dir_no_socket(self):
        d = self.start_quired(self.notes, args=("-v",), env=self.daemon_env(XDG_RUNTIME_DIR=None))
        self.wait_converged(self.notes, daemon=d)
        self.assertEqual(os.listdir(self.runtime_dir), [])
        self.assertEqual(len(self.search_json("archive")), N_NOTES_WITH_ARCHIVE)
        self.assertEqual(d.matches(ANSWERED_RE), [])
        self.assertTrue(d.matches(r"No XDG_RUNTIME_DIR: searches are not answered by quired"))


if __name__ == "__main__":
    qt.main()
