#!/usr/bin/env python3
"""Hostile inputs, for 'quire index' and for quired: files that are not
notes (binary, FIFOs, sockets, symlink loops), notes that are not sane
(invalid UTF-8, 100 MB, a 10 MB line, 10,000 nested levels), names no one
expects (newlines, invalid UTF-8), permissions that bite, and trees that
change under the walk (a file truncated while it is read, a directory
renamed while it is scanned, a root deleted while it is watched).

Each test checks that the process neither crashes nor hangs, that a bad
file gets one log line naming it and the cause where one is due, that the
notes indexed before (the "keep" notes) still have exactly their rows, and,
for quired, that it still serves afterwards: a later ordinary edit is
indexed."""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from test_daemon import DaemonCase, note  # noqa: E402

MIB = 1024 * 1024
# Generous sanity bounds, not measurements: a process that reads a file it
# should have skipped, or holds a whole tree in memory, passes them by far.
SKIPPED_FILE_RSS_KIB = 64 * 1024
LONG_LINE_RSS_KIB = 512 * 1024


class HostileCase(DaemonCase):
    """A root with two ordinary notes ("keep/...") whose rows every test
    checks again at its end."""

    def setUp(self):
        super().setUp()
        self.write("keep/one.md", note("keeperone"))
        self.write("keep/two.md", note("keepertwo"))
        self.n_after = 0

    def keep_rows(self):
        return qt.query(self.db, "SELECT id, source_file, content_hash, start_line, end_line FROM chunks "
                                 "WHERE source_file LIKE ? ORDER BY id", (self.stored("keep") + "/%",))

    def index_keep(self):
        """Index the tree as it is now with quire index; remember the keep rows."""
        self.index(self.notes)
        self.kept = self.keep_rows()
        self.assertEqual(len({r[1] for r in self.kept}), 2)

    def start(self, **kwargs):
        """quired on the root, converged; remembers the keep rows."""
        d = self.quired(**kwargs)
        self.converge(d)
        self.kept = self.keep_rows()
        self.assertEqual(len({r[1] for r in self.kept}), 2)
        return d

    def assertKept(self):
        self.assertEqual(self.keep_rows(), self.kept, "the rows of the notes indexed before changed")

    def assertStillServes(self, d):
        """quired runs, indexes an ordinary new note, and kept what it had."""
        self.n_after += 1
        word = f"afterword{self.n_after}"
        self.write(f"after{self.n_after}.md", note(word))
        qt.wait_for(lambda: not d.running() or self.hits(word), timeout=qt.CONVERGE_TIMEOUT,
                    what=f"the note written after the hostile input ({word}) to be indexed")
        self.assertTrue(d.running(), f"quired exited with status {d.proc.returncode}")
        self.assertEqual(self.hits(word), {self.stored(f"after{self.n_after}.md")})
        self.assertKept()
        self.assertHealthy(self.db)

    def assertLineAbout(self, stderr, path, cause):
        """Exactly one line of stderr names path, and it gives the cause."""
        lines = [line for line in stderr.splitlines() if path in line]
        self.assertEqual(len(lines), 1, f"lines naming {path!r}:\n{stderr}")
        self.assertIn(cause, lines[0])
        return lines[0]

    def wait_log(self, d, path, cause, since=0):
        return d.wait_line(re.escape(path) + ".*" + re.escape(cause), since=since)[1].string

    def quire_bytes(self, *args, expect=0):
        """quire's raw output, undecoded: (stdout, stderr) as bytes."""
        p = subprocess.run(self.command(*args), env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=qt.RUN_TIMEOUT)
        self.assertEqual(p.returncode, expect, p.stderr)
        return p.stdout, p.stderr

    def chunks_of(self, rel):
        return qt.query(self.db, "SELECT start_line, end_line, content, heading_hierarchy FROM chunks "
                                 "WHERE source_file = ? ORDER BY start_line", (self.stored(rel),))

    def files_paths(self):
        return {r[0] for r in qt.query(self.db, "SELECT path FROM files")}


class BinaryTests(HostileCase):
    BINARIES = {
        "bin/nul-first.md": b"\x00# starts with a NUL\nbinaryword\n",
        "bin/nul-late.md": b"# A note\n\n" + b"text line with binaryword\n" * 40000 + b"\x00\n",
        "bin/elf.md": b"\x7fELF\x02\x01\x01\x00" + random.Random(1).randbytes(64 * 1024),
    }

    def write_binaries(self):
        for rel, data in self.BINARIES.items():
            self.write(rel, data)

    def test_binary_files_are_skipped_by_quire_index(self):
        self.index_keep()
        self.write_binaries()
        p = self.quire("index", self.notes, expect=0)
        for rel in self.BINARIES:
            self.assertLineAbout(p.stderr, self.stored(rel), "binary file")
        self.assertEqual(len(p.stderr.splitlines()), len(self.BINARIES), p.stderr)
        self.assertRegex(p.stdout, r"\b3 binary\b")
        self.assertEqual(self.files_paths(), {self.stored("keep/one.md"), self.stored("keep/two.md")})
        self.assertEqual(self.hits("binaryword"), set())
        self.assertKept()
        self.assertHealthy(self.db)

    def test_binary_files_are_skipped_by_quired(self):
        d = self.start()
        mark = d.mark()
        self.write_binaries()
        for rel in self.BINARIES:
            self.wait_log(d, self.stored(rel), "binary file", since=mark)
        self.assertEqual(self.hits("binaryword"), set())
        self.assertStillServes(d)
        self.converge(d)


class InvalidUtf8Tests(HostileCase):
    RAW = (b"# Caf\xe9 \xff\xfe title\n\n"
           b"utfword lone \xc3\x28 surrogate \xed\xa0\x80 too-high \xf4\x90\x80\x80 cut \xe2\x82 end\n")

    def check(self):
        rows = self.chunks_of("bad-utf8.md")
        self.assertEqual(len(rows), 1)
        # The rows read back at all: Python's sqlite3 refuses invalid UTF-8 in TEXT.
        self.assertEqual(rows[0][2], self.RAW.decode("utf-8", "replace").rstrip("\n"))
        self.assertEqual(json.loads(rows[0][3]), ["Caf\ufffd \ufffd\ufffd title"])
        out, _ = self.quire_bytes("search", "--json", "utfword")
        hits = [json.loads(line) for line in out.decode("utf-8", "strict").splitlines()]
        self.assertEqual([h["source_file"] for h in hits], [self.stored("bad-utf8.md")])

    def test_invalid_utf8_content_is_indexed_with_replacement_characters_by_quire_index(self):
        self.index_keep()
        self.write("bad-utf8.md", self.RAW)
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(p.stderr, "")
        self.check()
        self.assertKept()
        self.assertHealthy(self.db)

    def test_invalid_utf8_content_is_indexed_with_replacement_characters_by_quired(self):
        d = self.start()
        self.write("bad-utf8.md", self.RAW)
        self.converge(d)
        self.check()
        self.assertStillServes(d)


class HugeFileTests(HostileCase):
    """A 100 MB note is over the default cap (16M): skipped without being
    read, so the process stays small. The file is sparse (cheap to make);
    were it read, quire would report it as binary instead."""

    def make_huge(self, rel="huge.md"):
        path = self.write(rel, "# Huge\n\nhugeword\n")
        os.truncate(path, 100 * MIB)
        return path

    def test_100_mb_file_is_skipped_by_quire_index_without_reading_it(self):
        self.index_keep()
        self.make_huge()
        p, rss_kib = qt.run_with_rusage(self.command("index", self.notes), self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLineAbout(p.stderr, self.stored("huge.md"), "larger than the maximum file size")
        self.assertRegex(p.stdout, r"\b1 too large\b")
        self.assertLess(rss_kib, SKIPPED_FILE_RSS_KIB, "peak RSS")
        self.assertNotIn(self.stored("huge.md"), self.files_paths())
        self.assertKept()

    def test_100_mb_file_is_skipped_by_quired_without_reading_it(self):
        d = self.start()
        mark = d.mark()
        self.make_huge()
        self.wait_log(d, self.stored("huge.md"), "larger than the maximum file size", since=mark)
        self.assertLess(d.peak_rss_kib(), SKIPPED_FILE_RSS_KIB, "peak RSS")
        self.assertNotIn(self.stored("huge.md"), self.files_paths())
        self.assertStillServes(d)

    def test_note_that_grows_past_the_cap_leaves_and_the_cap_is_configurable(self):
        config = self.write_config("[quire]\nmax_file_size = 200M\n")
        self.write("grows.md", note("growword"))
        d = self.start(args=["--config", config, "--max-file-size", "64K"])
        self.assertEqual(self.hits("growword"), {self.stored("grows.md")})
        mark = d.mark()
        with open(self.disk("grows.md"), "a", encoding="utf-8") as f:
            f.write("\n## More\n\n" + "growing text line\n" * 5000)
        self.wait_log(d, self.stored("grows.md"), "larger than the maximum file size", since=mark)
        # The flag beat the file's 200M.
        self.wait_converged(self.notes, daemon=d, index_args=["--max-file-size", "64K"])
        self.assertGone(self.stored("grows.md"), "growword")
        self.assertStillServes(d)


class LongLineTests(HostileCase):
    WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "

    def make_long_line(self):
        line = self.WORDS * (10 * MIB // len(self.WORDS)) + "needleword"
        self.write("long.md", "# Long\n\n" + line + "\n")
        return line

    def check(self, line):
        rows = self.chunks_of("long.md")
        # The line is one atom: it is never cut, whatever its size.
        self.assertEqual([(r[0], r[1]) for r in rows], [(1, 3)])
        self.assertEqual(rows[0][2], "# Long\n\n" + line)
        out = self.quire("search", "needleword", expect=0).stdout
        self.assertEqual(len(out.splitlines()), 2, "one hit: location line and snippet")
        self.assertLess(len(out), 4096, "the snippet is a window, not the line")

    def test_10_mb_line_by_quire_index(self):
        self.index_keep()
        line = self.make_long_line()
        p, rss_kib = qt.run_with_rusage(self.command("index", self.notes), self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertLess(rss_kib, LONG_LINE_RSS_KIB, "peak RSS")
        self.check(line)
        self.assertKept()
        self.assertHealthy(self.db)

    def test_10_mb_line_by_quired(self):
        d = self.start()
        line = self.make_long_line()
        self.converge(d)
        self.check(line)
        self.assertLess(d.peak_rss_kib(), LONG_LINE_RSS_KIB, "peak RSS")
        self.assertStillServes(d)


class NestingTests(HostileCase):
    """10,000 levels in several shapes. Nothing may recurse per level
    (the stack would run out), and heading_hierarchy stays a short list:
    at most six headings (the Markdown levels), each cut at 256 bytes."""

    DEPTH = 10000

    def make_nested(self):
        rng = random.Random(6)
        n = self.DEPTH
        shapes = {
            # 10,000 headings in a row, levels mixed at random.
            "nest/headings.md": "".join(f"{'#' * rng.randint(1, 6)} head{i}\n\nbody of head{i} nestword\n\n"
                                        for i in range(n)),
            # 10,000 nested block quotes, then lists, with a heading at the bottom.
            "nest/quotes.md": ">" * n + " # deepquote\n" + ">" * n + " nestword quoted\n",
            "nest/bullets.md": "- " * n + "# deepbullet\n" + "  " * n + "nestword listed\n",
            "nest/ordered.md": "1. " * n + "## deepordered nestword\n",
            # Headings inside quotes and lists at ever-changing depths up to 10,000.
            "nest/mixed.md": "".join(f"{'>' * rng.randint(1, n)} {'#' * rng.randint(1, 6)} q{i} nestword\n"
                                     f"{'- ' * rng.randint(1, n)}{'#' * rng.randint(1, 6)} l{i}\n\n"
                                     for i in range(150)),
            # Inline nesting: brackets, emphasis, code spans.
            "nest/inline.md": "# " + "[" * n + "inl" + "]" * n + "\n\n" + "*" * n + "nestword" + "*" * n + "\n\n"
                              + "`" * n + "\n\n" + "<" * n + "\n",
        }
        for rel, text in shapes.items():
            self.write(rel, text)
        return shapes

    def check(self, shapes):
        for rel, text in shapes.items():
            with self.subTest(rel):
                rows = self.chunks_of(rel)
                self.assertTrue(rows, "no chunks")
                covered = set()
                for start, end, _, hierarchy in rows:
                    h = json.loads(hierarchy)
                    self.assertIsInstance(h, list)
                    self.assertLessEqual(len(h), 6, h[:8])
                    self.assertTrue(all(isinstance(x, str) and len(x.encode()) <= 256 for x in h))
                    covered.update(range(start, end + 1))
                lines = text.split("\n")
                nonblank = {i for i, line in enumerate(lines, 1) if line.strip()}
                self.assertEqual(nonblank - covered, set(), "non-blank lines in no chunk")
        # The top-level headings of the first shape do make paths.
        paths = [json.loads(r[3]) for r in self.chunks_of("nest/headings.md")]
        self.assertTrue(any(len(p) >= 3 for p in paths))
        self.assertTrue(all(re.fullmatch(r"head\d+", x) for p in paths for x in p))

    def test_deep_nesting_by_quire_index(self):
        self.index_keep()
        shapes = self.make_nested()
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(p.stderr, "")
        self.check(shapes)
        self.assertKept()
        self.assertHealthy(self.db)

    def test_deep_nesting_by_quired(self):
        d = self.start()
        shapes = self.make_nested()
        self.converge(d)
        self.check(shapes)
        self.assertStillServes(d)

    def make_long_paths(self):
        """Folders of 200-byte names, 24 deep (paths of some 4,800 bytes,
        past PATH_MAX), made through directory descriptors: a note at
        depth 10 and one at depth 24. Returns the first folder's name and
        the stored path of the shallow note."""
        name = "d" * 200
        fd = os.open(self.notes, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for depth in range(1, 25):
                os.mkdir(name, dir_fd=fd)
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
                if depth in (10, 24):
                    word = "shallowlongword" if depth == 10 else "deeplongword"
                    note_fd = os.open(f"n{depth}.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                    os.write(note_fd, note(word).encode())
                    os.close(note_fd)
        finally:
            os.close(fd)
        return self.stored("/".join([name] * 10) + "/n10.md")

    def test_paths_longer_than_path_max_are_named_by_quire_index(self):
        self.index_keep()
        shallow = self.make_long_paths()
        p = self.quire("index", self.notes, expect=1)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        # The cause first: a line this long is cut at the end.
        self.assertRegex(lines[0], r"^quire: Skipping a path longer than \d+ bytes: .*/d{200}/d+")
        self.assertRegex(p.stdout, r"\b1 unreadable\b")
        self.assertEqual(self.hits("shallowlongword"), {shallow})
        self.assertEqual(self.hits("deeplongword"), set())
        self.assertKept()
        self.assertHealthy(self.db)

    def test_paths_longer_than_path_max_are_named_by_quired(self):
        shallow = self.make_long_paths()
        d = self.quired()
        d.wait_line(r"Skipping a path longer than \d+ bytes: .*/d{200}/d+")
        d.wait_line(r"Ready: ")
        self.kept = self.keep_rows()
        self.assertEqual(len({r[1] for r in self.kept}), 2)
        self.assertEqual(self.hits("shallowlongword"), {shallow})
        self.assertEqual(self.hits("deeplongword"), set())
        self.assertStillServes(d)


def without_flux(stderr):
    """stderr without the lines that name a note which kept changing while
    it was indexed (sync.c: in flux, said, not an error)."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if "kept changing while being indexed" not in line)


class Mutator(threading.Thread):
    """Calls step() in a loop until stopped; counts the rounds."""

    def __init__(self, step):
        super().__init__(daemon=True)
        self.step = step
        self.rounds = 0
        self.stopped = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stopped.is_set():
                self.step(self.rounds)
                self.rounds += 1
        except Exception as e:  # reported by stop()
            self.error = e

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.join(30)
        if self.error:
            raise self.error


class ChangingFileTests(HostileCase):
    """A big note truncated (or deleted) by another thread in a loop, so
    that some reads see it shrink or vanish half way."""

    def big_text(self, word):
        return note(word) + "\n## Bulk\n\n" + "bulk filler text for a note being truncated\n" * 150000

    def truncate_loop(self, rel, final_word):
        path = self.disk(rel)
        data = self.big_text("truncword").encode()

        def step(i):
            with open(path, "r+b") as f:
                f.truncate(random.randrange(len(data)) if i % 3 else 0)
                f.seek(0, os.SEEK_END)
                f.write(data[f.tell():])
        return path, Mutator(step)

    def delete_loop(self, rel):
        path = self.disk(rel)
        data = self.big_text("deleteword").encode()

        def step(i):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)
            time.sleep(0.001)
            os.unlink(path)
        return Mutator(step)

    def test_file_truncated_and_deleted_while_quire_index_reads(self):
        self.index_keep()
        self.write("trunc.md", self.big_text("truncword"))
        _, truncator = self.truncate_loop("trunc.md", "truncword")
        with truncator, self.delete_loop("gone.md"):
            for _ in range(6):
                p = self.quire("index", self.notes)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(without_flux(p.stderr), "")
        self.assertGreater(truncator.rounds, 10)
        self.write("trunc.md", self.big_text("finalword"))
        self.index(self.notes)
        self.assertEqual(qt.rows_with_namespace(self.db), self.expected_state(self.notes)[0])
        self.assertEqual(self.hits("finalword"), {self.stored("trunc.md")})
        self.assertEqual(self.hits("deleteword"), set())
        self.assertKept()
        self.assertHealthy(self.db)

    def test_note_that_never_stops_changing_is_named_and_keeps_its_rows(self):
        # Its times change all the time (a tight utime loop: its text
        # stays), so every read of it is stale by the time quire has the
        # write lock, in each of the rounds a run gives it. It is said by
        # name (in flux, not an error: exit 0), and its rows stay as they
        # were.
        self.write("restless.md", self.big_text("restlessword"))
        self.index_keep()
        before = self.chunks_of("restless.md")
        path = self.disk("restless.md")
        start = os.stat(path).st_mtime_ns

        def step(i):
            os.utime(path, ns=(start + i + 1, start + i + 1))
        with Mutator(step):
            p = self.quire("index", self.notes, expect=0)
        self.assertLineAbout(p.stderr, self.stored("restless.md"), "kept changing while being indexed")
        self.assertEqual(self.chunks_of("restless.md"), before)
        self.assertKept()
        # Quiet again, it is read.
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.chunks_of("restless.md"), before)

    def test_file_truncated_and_deleted_while_quired_reads(self):
        self.write("trunc.md", self.big_text("truncword"))
        d = self.start(args=["--settle", "1", "--max-delay", "5"])
        _, truncator = self.truncate_loop("trunc.md", "truncword")
        with truncator, self.delete_loop("gone.md"):
            # At least 4 s of it, and enough rounds however loaded the
            # machine is: a slow truncator must mean a longer test, not
            # a red one.
            least = time.monotonic() + 4
            qt.wait_for(lambda: not d.running() or
                        (time.monotonic() >= least and truncator.rounds > 10),
                        timeout=120, interval=0.1, what="eleven truncations")
        self.assertTrue(d.running(), "quired died while the note was truncated")
        self.assertGreater(truncator.rounds, 10)
        self.write("trunc.md", self.big_text("finalword"))
        self.converge(d)
        self.assertEqual(self.hits("finalword"), {self.stored("trunc.md")})
        self.assertEqual(self.hits("deleteword"), set())
        self.assertStillServes(d)


class PermissionTests(HostileCase):
    """File modes do not bind root: as root, quire and quired run as
    'nobody' over a tree that nobody owns."""

    def setUp(self):
        super().setUp()
        ids = qt.nobody_ids()
        self.run_as = {}
        if qt.is_root():
            if ids is None:
                self.skipTest("running as root and there is no 'nobody' account to drop to")
            self.run_as = {"user": ids[0], "group": ids[1], "extra_groups": []}
            os.chmod(self.tmp, 0o755)
        self.write("locked.md", note("lockedword"))
        self.write("private/p.md", note("privateword"))

    def give_away(self):
        if self.run_as:
            qt.chown_tree(self.tmp, self.run_as["user"], self.run_as["group"])

    def test_unreadable_file_and_directory_under_quired(self):
        self.give_away()
        d = self.start(**self.run_as)
        locked_before, private_before = self.chunks_of("locked.md"), self.chunks_of("private/p.md")
        mark = d.mark()
        os.chmod(self.disk("private"), 0)
        os.chmod(self.disk("locked.md"), 0)
        # Changed, so it must be read again; but it cannot be.
        with open(self.disk("locked.md"), "a", encoding="utf-8") as f:
            f.write("\n## Later\n\nreplacementword added while unreadable\n")
        self.wait_log(d, self.stored("locked.md"), "Permission denied", since=mark)
        self.wait_log(d, self.stored("private"), "Permission denied", since=mark)
        self.assertEqual(self.chunks_of("locked.md"), locked_before)
        self.assertEqual(self.chunks_of("private/p.md"), private_before)
        self.assertEqual(self.hits("replacementword"), set())
        self.assertStillServes(d)
        # Readable again: the change is picked up.
        os.chmod(self.disk("locked.md"), 0o644)
        os.chmod(self.disk("private"), 0o755)
        self.write("private/q.md", note("laterword"))
        self.give_away()
        self.converge(d)
        self.assertEqual(self.hits("replacementword"), {self.stored("locked.md")})
        self.assertEqual(self.hits("laterword"), {self.stored("private/q.md")})


class SpecialFileTests(HostileCase):
    def make_specials(self, base=""):
        fifo = self.disk(os.path.join(base, "pipe.md"))
        os.makedirs(os.path.dirname(fifo), exist_ok=True)
        os.mkfifo(fifo)
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(self.disk(os.path.join(base, "sock.md")))
        return fifo

    def test_fifo_and_socket_never_block_quire_index(self):
        self.index_keep()
        fifo = self.make_specials("sub")
        p = self.quire("index", self.notes, expect=0, timeout=60)
        self.assertRegex(p.stdout, r"\b2 special\b")
        p = self.quire("index", fifo, expect=1, timeout=60)
        self.assertOneLine(p.stderr)
        self.assertIn(fifo, p.stderr)
        self.assertIn("not a directory or regular file", p.stderr)
        self.assertKept()

    def test_fifo_and_socket_never_block_quired(self):
        self.write("was-a-note.md", note("formerword"))
        # Not notes, like a .txt file: skipped without a line, whether a
        # walk finds them or their own events report them.
        d = self.start()
        self.make_specials("sub")
        self.make_specials()
        os.unlink(self.disk("was-a-note.md"))
        os.mkfifo(self.disk("was-a-note.md"))
        self.assertStillServes(d)
        self.converge(d)
        self.assertGone(self.stored("was-a-note.md"), "formerword")


class SymlinkTests(HostileCase):
    def make_links(self):
        outside = os.path.join(self.tmp, "outside")
        self.write("secret.md", note("secretword"), root=outside)
        os.symlink("loop.md", self.disk("loop.md"))                  # a loop
        os.symlink("ping.md", self.disk("pong.md"))                  # a two-step loop
        os.symlink("pong.md", self.disk("ping.md"))
        os.symlink(os.path.join(outside, "secret.md"), self.disk("out.md"))  # out of the root
        os.symlink(outside, self.disk("outdir"))
        os.symlink("nothere.md", self.disk("dangling.md"))          # dangling
        os.symlink("..", self.disk("keep/up"))                       # directory loops
        os.symlink(".", self.disk("self"))

    def test_symlink_loops_and_escapes_are_skipped_by_quire_index(self):
        self.index_keep()
        self.make_links()
        p = self.quire("index", self.notes, expect=0, timeout=60)
        self.assertRegex(p.stdout, r"\b8 symlinks\b")
        self.assertEqual(self.hits("secretword"), set())
        self.assertEqual(len(self.files_paths()), 2)
        self.assertKept()

    def test_folder_turned_into_a_symlink_loop_loses_its_notes(self):
        # rm -r d; ln -s d d: d/x.md now runs into a loop (lstat: ELOOP),
        # which names no file, as ENOENT does. Its rows went nowhere
        # before: kept by every walk, and never stale to a search.
        self.write("d/x.md", note("loopedword"))
        self.index_keep()
        self.assertEqual(self.hits("loopedword"), {self.stored("d/x.md")})
        shutil.rmtree(self.disk("d"))
        os.symlink("d", self.disk("d"))
        hits = self.search_json("loopedword")
        self.assertEqual({h["stale"] for h in hits}, {True})
        p = self.quire("index", self.notes, expect=0)
        self.assertRegex(p.stdout, r" 1 removed;")
        self.assertEqual(self.hits("loopedword"), set())
        self.assertNotIn(self.stored("d/x.md"), self.files_paths())
        self.assertKept()

    def test_symlink_loops_and_escapes_are_skipped_by_quired(self):
        d = self.start()
        self.make_links()
        self.assertStillServes(d)
        self.converge(d)
        self.assertEqual(self.hits("secretword"), set())


class FileNameTests(HostileCase):
    """Names are bytes. Valid UTF-8 ones, blanks and control characters
    included, are stored as they are; the text output quotes such a name
    (git's way) so a hit stays two lines, and --json stays one valid JSON
    object per line. A name that is not UTF-8 cannot be stored in a TEXT
    column other programs read: it is skipped with one line."""

    ODD = {"with space.md": "spaceword", "new\nline.md": "newlineword", "tab\there.md": "tabword",
           "cr\rhere.md": "crword", "quote\"back\\slash.md": "quoteword", "dir with\nnewline/n.md": "dirnlword"}
    BAD_NAME = os.fsdecode(b"latin1-caf\xe9.md")
    BAD_DIR = os.fsdecode(b"bad\xfedir")

    def make_names(self):
        for rel, word in self.ODD.items():
            self.write(rel, note(word))
        self.write(self.BAD_NAME, note("badnameword"))
        self.write(os.path.join(self.BAD_DIR, "inside.md"), note("baddirword"))

    def check(self):
        for rel, word in self.ODD.items():
            with self.subTest(rel):
                stored = self.stored(rel)
                self.assertEqual(self.hits(word), {stored})
                out, _ = self.quire_bytes("search", word)
                lines = out.decode("utf-8", "strict").split("\n")
                self.assertEqual(len(lines), 2 * 3 + 1, f"three hits, two lines each: {out!r}")
                self.assertEqual(lines[-1], "")
                # A name with control characters, '"' or '\\' is printed
                # git-quoted (docs/SEARCH.md), so the location stays one line.
                for loc in lines[0:-1:2]:
                    self.assertEqual(qt.unquote_path(loc.rsplit(":", 1)[0]), os.fsencode(stored), loc)
                out, _ = self.quire_bytes("search", "--json", word)
                lines = out.decode("utf-8", "strict").split("\n")
                self.assertEqual(lines.pop(), "")
                self.assertEqual(len(lines), 3)
                self.assertEqual({json.loads(x)["source_file"] for x in lines}, {stored})
        self.assertEqual(self.hits("badnameword") | self.hits("baddirword"), set())
        # Everything the database holds reads back as UTF-8.
        for (path,) in qt.query(self.db, "SELECT path FROM files"):
            self.assertNotIn("\ufffd", path)

    def test_odd_file_names_with_quire_index(self):
        self.index_keep()
        self.make_names()
        p = subprocess.run(self.command("index", self.notes), env=self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=qt.RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode("utf-8", "strict")
        self.assertEqual(len(err.splitlines()), 2, err)
        self.assertLineAbout(err, self.stored("latin1-caf\\xe9.md"), "not valid UTF-8")
        self.assertLineAbout(err, self.stored("bad\\xfedir"), "not valid UTF-8")
        self.check()
        self.assertKept()
        self.assertHealthy(self.db)

    def test_odd_file_names_with_quired(self):
        d = self.start()
        mark = d.mark()
        self.make_names()
        self.wait_log(d, self.stored("latin1-caf\\xe9.md"), "not valid UTF-8", since=mark)
        self.converge(d)
        self.check()
        self.assertStillServes(d)

    def test_times_out_of_the_nanosecond_range(self):
        # A note from the year 2300 or 1600 (touch -d sets them, as far as
        # the filesystem keeps them): its times in ns do not fit int64_t.
        # Held at its ends (no signed overflow, which UBSan reports in the
        # sanitizer run), and a re-index of the unchanged notes reads
        # nothing.
        self.index_keep()
        future = self.write("future.md", note("futureword"))
        past = self.write("past.md", note("pastword"))
        os.utime(future, (10413792000, 10413792000))
        os.utime(past, (-11676096000, -11676096000))
        if os.stat(future).st_mtime_ns <= 2**63 - 1:
            self.skipTest("this filesystem holds no time past 2262")
        self.quire("index", self.notes, expect=0)
        self.assertEqual(self.hits("futureword"), {self.stored("future.md")})
        self.assertEqual(self.hits("pastword"), {self.stored("past.md")})
        self.assertEqual(dict(qt.query(self.db, "SELECT path, mtime_ns FROM files WHERE path IN (?, ?)",
                                       (self.stored("future.md"), self.stored("past.md")))),
                         {self.stored(rel): max(-2**63, min(2**63 - 1, os.stat(self.disk(rel)).st_mtime_ns))
                          for rel in ("future.md", "past.md")})
        p = self.quire("index", self.notes, expect=0)
        self.assertRegex(p.stdout, r" 0 new, 0 changed, \d+ unchanged, 0 removed", p.stdout)
        self.assertKept()
        self.assertHealthy(self.db)


class ChangingTreeTests(HostileCase):
    def corpus(self, *members):
        src = qt.unpack_corpus([f"tldr/{m}" for m in members])
        for m in members:
            qt.copy_tree(os.path.join(src, m), self.disk(m))

    def rename_loop(self, a, b, pause=0.002):
        def step(i):
            src, dst = (a, b) if i % 2 == 0 else (b, a)
            os.rename(self.disk(src), self.disk(dst))
            time.sleep(pause)
        return Mutator(step)

    def test_directory_renamed_while_quire_index_walks(self):
        self.index_keep()
        self.corpus("pages/linux", "pages/common")
        with self.rename_loop("pages/linux", "pages/linux-renamed") as m:
            for _ in range(4):
                p = self.quire("index", self.notes)
                self.assertIn(p.returncode, (0, 1), p.stderr)
                if p.returncode:
                    self.assertOneLine(without_flux(p.stderr))
                    self.assertIn("vanished while it was being walked", p.stderr)
        self.assertGreater(m.rounds, 2)
        self.index(self.notes)
        self.assertEqual(qt.rows_with_namespace(self.db), self.expected_state(self.notes)[0])
        self.assertKept()
        self.assertHealthy(self.db)

    def test_directory_renamed_while_quired_scans(self):
        self.corpus("pages/linux", "pages/common")
        d = self.quired(ready=False)
        # A rename every 0.2 s, not a storm: each one is a move of the
        # directory's rows and a walk of it, so thousands queued up would
        # take minutes to work off (the indexer's queue is not bounded).
        with self.rename_loop("pages/linux", "pages/linux-renamed", pause=0.2) as m:
            d.wait_line(qt.READY_RE, timeout=180)
            # On a quiet machine the first walk may end within a rename or
            # two: a few more land on the watched tree, as in real life.
            qt.wait_for(lambda: m.rounds >= 3, timeout=30, what="three renames")
        self.wait_converged(self.notes, daemon=d, timeout=180)
        self.kept = self.keep_rows()
        self.assertStillServes(d)

    def test_root_deleted_while_quire_index_walks(self):
        self.index_keep()
        self.corpus("pages/linux")
        p = self.popen("index", self.notes)
        time.sleep(0.05)
        qt.rmtree(self.notes)
        out, err = p.communicate(timeout=qt.RUN_TIMEOUT)
        self.assertIn(p.returncode, (0, 1), err)
        if p.returncode:
            self.assertOneLine(err)
            self.assertIn("vanished", err)
        # Recreated: the next run makes the index equal to it.
        self.write("keep/one.md", note("keeperone"))
        self.index(self.notes)
        self.assertEqual(qt.rows_with_namespace(self.db), self.expected_state(self.notes)[0])
        self.assertHealthy(self.db)

    def test_root_deleted_and_recreated_at_once_while_watched(self):
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.start(args=["--config", config])
        mark = d.mark()
        shutil.rmtree(self.notes)
        self.write("keep/one.md", note("keeperone"))
        self.write("fresh.md", note("freshword"))
        d.wait_line(r"Root .* is back", since=mark)
        self.converge(d)
        self.assertEqual(self.hits("freshword"), {self.stored("fresh.md")})
        self.assertEqual(self.hits("keepertwo"), set())
        self.kept = self.keep_rows()
        self.assertStillServes(d)


if __name__ == "__main__":
    qt.main()
