"""Helpers for quire's integration and stress tests.

Each test file is a unittest module run as a script by meson, with the
binaries under test in $QUIRE and $QUIRED and the corpus archive in
$QUIRE_CORPUS. Every quire run here gets its own --db in a temporary
directory and a temporary HOME and XDG_DATA_HOME, so no test can touch a
real index; quired runs (QuiredTestCase) also get a temporary
XDG_CONFIG_HOME. Standard library only.
"""

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import signal
import tempfile
import threading
import time
import unittest

SOURCE_ROOT = os.environ.get("QUIRE_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIRE = os.environ.get("QUIRE") or os.path.join(SOURCE_ROOT, "build", "cli", "quire")
QUIRED = os.environ.get("QUIRED") or os.path.join(SOURCE_ROOT, "build", "daemon", "quired")
CORPUS = os.environ.get("QUIRE_CORPUS") or os.path.join(
    SOURCE_ROOT, "..", "shared", "corpus", "tldr-pages.tar.xz")

# PRAGMA user_version of the schema this quire writes (storage/store.h).
SCHEMA_VERSION = 3

# A quire run that takes longer than this is hung, not slow.
RUN_TIMEOUT = 300

# Environment variables of the caller that would change which database
# quire opens or how it logs; tests set what they need explicitly.
# The daemon's test switches and systemd's variables (a test run from a
# service must not have quired notify that service) go too.
_SCRUBBED_ENV = ("QUIRE_DB", "QUIRE_LOCK_TIMEOUT_MS", "XDG_DATA_HOME", "XDG_CONFIG_HOME",
                 "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "JOURNAL_STREAM", "NO_COLOR",
                 "QUIRE_TEST_OVERFLOW_AFTER", "QUIRE_TEST_MAX_WATCHES", "QUIRE_TEST_STALL_INDEXER", "NOTIFY_SOCKET",
                 "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")

SUMMARY_RE = re.compile(
    r"indexed (?P<files>\d+) files in [\d.]+ s: (?P<new>\d+) new, (?P<changed>\d+) changed, "
    r"(?P<unchanged>\d+) unchanged, (?P<removed>\d+) removed; chunks: (?P<added>\d+) added, "
    r"(?P<moved>\d+) moved, (?P<chunks_removed>\d+) removed")


def is_root():
    return os.geteuid() == 0


def nobody_ids():
    """(uid, gid) of an unprivileged account, for tests that need file
    permissions to bite while the suite runs as root; None if there is none."""
    import pwd
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def rmtree(path):
    """shutil.rmtree that also removes directories a test made unreadable."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    # Top-down: each directory is opened up before the walk descends into it.
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            sub = os.path.join(dirpath, d)
            if not os.path.islink(sub):
                with contextlib.suppress(OSError):
                    os.chmod(sub, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def make_tempdir(prefix="quire-test-"):
    return tempfile.mkdtemp(prefix=prefix)


# --- the corpus -----------------------------------------------------------

_corpus_dirs = {}


def unpack_corpus(members=None):
    """Unpack the tldr-pages corpus once per process (per member list) into
    a temporary directory; returns the path of its 'tldr' directory.
    members: archive paths to extract (e.g. ['tldr/pages/common']), or all.
    Raises unittest.SkipTest when the archive is not there."""
    key = tuple(members or ())
    if key in _corpus_dirs:
        return _corpus_dirs[key]
    if not os.path.isfile(CORPUS):
        raise unittest.SkipTest(f"corpus archive not found at {CORPUS}")
    dest = make_tempdir("quire-corpus-")
    atexit.register(rmtree, dest)
    if shutil.which("tar") and shutil.which("xz"):
        subprocess.run(["tar", "-xJf", CORPUS, "-C", dest, *key], check=True)
    else:
        import tarfile
        with tarfile.open(CORPUS, "r:xz") as tar:
            if key:
                chosen = [m for m in tar.getmembers()
                          if any(m.name == k or m.name.startswith(k.rstrip("/") + "/") for k in key)]
                tar.extractall(dest, members=chosen)
            else:
                tar.extractall(dest)
    root = os.path.join(dest, "tldr")
    if not os.path.isdir(root):
        raise RuntimeError(f"{CORPUS} did not unpack into tldr/")
    _corpus_dirs[key] = root
    return root


def extract_corpus(dest, members=None):
    """Unpack the corpus archive (or only members, as for unpack_corpus)
    straight into dest, e.g. into a folder quired watches; returns the path
    of the 'tldr' directory made there. Raises unittest.SkipTest when the
    archive is not there."""
    if not os.path.isfile(CORPUS):
        raise unittest.SkipTest(f"corpus archive not found at {CORPUS}")
    os.makedirs(dest, exist_ok=True)
    members = list(members or ())
    if shutil.which("tar") and shutil.which("xz"):
        subprocess.run(["tar", "-xJf", CORPUS, "-C", dest, *members], check=True)
    else:
        import tarfile
        with tarfile.open(CORPUS, "r:xz") as tar:
            chosen = [m for m in tar.getmembers()
                      if not members or any(m.name == k or m.name.startswith(k.rstrip("/") + "/")
                                            for k in members)]
            tar.extractall(dest, members=chosen)
    return os.path.join(dest, "tldr")


def copy_tree(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def markdown_files(root):
    """Every path quire indexes under root: *.md not below a hidden name."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".md") and not f.startswith("."):
                out.append(os.path.join(dirpath, f))
    return out


# --- reading a database ---------------------------------------------------

@contextlib.contextmanager
def connect(db, timeout=30.0):
    """A plain connection in autocommit mode, closed on exit. db may be
    a 'file:' URI, or a connection already open (a snapshot()), used as
    it is and left open."""
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    con = sqlite3.connect(db, timeout=timeout, isolation_level=None, uri=db.startswith("file:"))
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def snapshot(db):
    """One read transaction over db: every helper handed the connection it
    yields sees the same committed state, whoever writes meanwhile."""
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # the snapshot starts here
        try:
            yield con
        finally:
            con.execute("COMMIT")


def query(db, sql, params=()):
    with connect(db) as con:
        return con.execute(sql, params).fetchall()


def scalar(db, sql, params=()):
    return query(db, sql, params)[0][0]


def rows(db):
    """The identity of every chunk: sorted (source_file, content_hash, start_line)."""
    return sorted(query(db, "SELECT source_file, content_hash, start_line FROM chunks"))


def rows_with_namespace(db):
    return sorted(query(db, "SELECT namespace, source_file, content_hash, start_line FROM chunks"))


def derived_rows(db):
    """Everything quire derives from chunks (schema version 2), each row
    named by its chunk's identity instead of its seq, sorted: tags, links
    and the CJK index. Empty for a database without those tables."""
    key = "c.namespace, c.source_file, c.content_hash, c.start_line"
    with connect(db) as con:
        if con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'chunk_tags'").fetchone()[0] == 0:
            return []
        out = [("tag",) + r for r in con.execute(
            f"SELECT {key}, t.tag, t.is_file_level FROM chunk_tags t JOIN chunks c ON c.seq = t.seq")]
        out += [("link",) + r for r in con.execute(
            f"SELECT {key}, l.ord, l.kind, l.target, l.fragment, l.line_offset, l.target_path, l.target_name"
            " FROM links l JOIN chunks c ON c.seq = l.seq")]
        out += [("cjk",) + r for r in con.execute(
            f"SELECT {key}, k.content, k.source_file, k.heading_hierarchy"
            " FROM chunks_cjk k JOIN chunks c ON c.seq = k.rowid")]
        # Derived rows whose chunk is gone would be missed by the joins.
        out += [("orphan",)] * _derived_orphans(con)
    return sorted(out, key=repr)


def _derived_orphans(con):
    return con.execute(
        "SELECT (SELECT count(*) FROM chunk_tags WHERE seq NOT IN (SELECT seq FROM chunks))"
        " + (SELECT count(*) FROM links WHERE seq NOT IN (SELECT seq FROM chunks))"
        " + (SELECT count(*) FROM chunks_cjk WHERE rowid NOT IN (SELECT seq FROM chunks))").fetchone()[0]


def derived_orphans(db):
    """Derived rows (tags, links, CJK) whose chunk is gone: always 0, the
    chunks_derived_ad trigger removes them with the chunk, whoever deletes
    it. None for a database without the derived tables."""
    with connect(db) as con:
        if con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'chunk_tags'").fetchone()[0] == 0:
            return None
        return _derived_orphans(con)


def files_rows(db):
    """The identity of every file row: sorted (namespace, path, size,
    mtime_ns, file_hash)."""
    return sorted(query(db, "SELECT namespace, path, size, mtime_ns, file_hash FROM files"))


def chunk_count(db):
    return scalar(db, "SELECT count(*) FROM chunks")


def file_count(db):
    return scalar(db, "SELECT count(*) FROM files")


def duplicate_groups(db):
    """Groups of chunks sharing the unique key; must always be 0."""
    return scalar(db, "SELECT count(*) FROM (SELECT 1 FROM chunks GROUP BY namespace, source_file,"
                      " content_hash, start_line HAVING count(*) > 1)")


def fts_docsize_count(db):
    """Rows the FTS index holds. (count(*) on an external-content FTS table
    would count the content table instead.)"""
    return scalar(db, "SELECT count(*) FROM chunks_fts_docsize")


def fts_rowids(db):
    return sorted(r[0] for r in query(db, "SELECT id FROM chunks_fts_docsize"))


def chunk_seqs(db):
    return sorted(r[0] for r in query(db, "SELECT seq FROM chunks"))


def fts_match_rowids(db, match):
    """Rowids the FTS index itself returns for a query (no join with chunks)."""
    return sorted(r[0] for r in query(db, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                                      (match,)))


def fts_integrity_error(db):
    """None if the FTS index agrees with itself and with the chunks table
    (rank 1 checks against the content table), else the error text."""
    try:
        with connect(db) as con:
            con.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
            # The CJK index (schema version 2) keeps its own content.
            if con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'chunks_cjk'").fetchone()[0]:
                con.execute("INSERT INTO chunks_cjk(chunks_cjk) VALUES('integrity-check')")
    except sqlite3.DatabaseError as e:
        return str(e)
    return None


def fts_integrity_ok(db):
    return fts_integrity_error(db) is None


def sqlite_integrity(db):
    return [r[0] for r in query(db, "PRAGMA integrity_check")]


def user_version(db):
    return scalar(db, "PRAGMA user_version")


def schema_names(db, kind):
    return sorted(r[0] for r in query(db, "SELECT name FROM sqlite_schema WHERE type = ?", (kind,)))


def dump(db):
    """Everything in the database as SQL text (plus user_version, which
    iterdump leaves out), for before/after comparisons."""
    with connect(db) as con:
        lines = list(con.iterdump())
        lines.append(f"-- user_version {con.execute('PRAGMA user_version').fetchone()[0]}")
    return lines


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def checkpoint(db):
    """Move everything into the main file so its bytes say it all."""
    with connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def can_mount(where):
    """Whether this process may mount a tmpfs (root, and not in a
    container that forbids it): tried for real on a scratch directory."""
    probe = os.path.join(where, "mount-probe")
    os.mkdir(probe)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], capture_output=True)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", probe], check=True)
        return True
    except OSError:
        return False
    finally:
        os.rmdir(probe)


def wait_for(predicate, timeout=60.0, interval=0.02, what="condition"):
    """Poll predicate until it is true; fail after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- sanitizer reports ----------------------------------------------------

# The sanitizer builds (ASan, LeakSanitizer, UBSan) report on stderr and,
# with abort_on_error, exit on SIGABRT; but a test that expects a failure,
# or stops a daemon in its cleanup, or reads only stdout, would pass over
# that. So every process the tests start writes its reports to files
# instead (log_path: one file PREFIX.PID per reporting process), and every
# test fails if it finds any (QuireTestCase.assertNoSanitizerReports).
SANITIZER_OPTIONS = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")


def with_shim(env, name):
    """env with the test-only library lib{name}.so of tests/integration
    preloaded ($QUIRE_TEST_{NAME}_LIB, else the one built next to the quire
    under test), which makes one system call fail the way a flaky or
    network filesystem does. Raises unittest.SkipTest if it is not built."""
    var = "QUIRE_TEST_" + name.upper().replace("-", "_") + "_LIB"
    lib = os.environ.get(var) or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(QUIRE))), "tests", "integration", f"lib{name}.so")
    if not os.path.exists(lib):
        raise unittest.SkipTest(f"no {name} shim at {lib} (set ${var})")
    env = dict(env)
    env["LD_PRELOAD"] = lib
    # In an ASan build the runtime must come first among the preloaded
    # libraries unless told not to check; elsewhere this is ignored.
    env["ASAN_OPTIONS"] = "verify_asan_link_order=0:" + env.get("ASAN_OPTIONS", "")
    return env


def sanitizer_env(report_dir, env=None):
    """The sanitizer variables of env (default os.environ), each with
    log_path set to a prefix in report_dir; the caller's other options
    (detect_leaks, abort_on_error, ...) are kept. A later option wins, so
    the one appended here beats any log_path the caller had."""
    env = os.environ if env is None else env
    # One prefix for all: a process reads several of these variables (ASan
    # also LSAN_OPTIONS), and the last log_path it parses is the one used.
    prefix = os.path.join(report_dir, "report")
    out = {}
    for var in SANITIZER_OPTIONS:
        old = env.get(var, "")
        out[var] = f"{old}:log_path={prefix}" if old else f"log_path={prefix}"
    return out


# A report's first line, as the sanitizers print it on stderr.
SANITIZER_LINE_RE = re.compile(r"^.*(?:: runtime error: |==\d+==ERROR: \w+Sanitizer|^SUMMARY: \w+Sanitizer).*$",
                               re.MULTILINE)


def sanitizer_output_reports(text, where):
    """[(where, lines)] if text (a process's stderr or log) holds the
    start of a sanitizer report, else []. Needed besides the report files:
    with gcc, the UBSan of an ASan + UBSan build ignores log_path and
    always writes to stderr."""
    lines = SANITIZER_LINE_RE.findall(text or "")
    return [(where, "\n".join(lines[:50]))] if lines else []


def sanitizer_reports(report_dir, limit=200):
    """[(path, text)] of the reports in report_dir, each cut to its first
    limit lines."""
    out = []
    for name in sorted(os.listdir(report_dir)) if os.path.isdir(report_dir) else ():
        path = os.path.join(report_dir, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        if len(lines) > limit:
            lines = lines[:limit] + [f"[... {len(lines) - limit} more lines]"]
        out.append((path, "\n".join(lines)))
    return out


# --- what a process costs -------------------------------------------------

def proc_cpu_seconds(pid):
    """utime + stime of a live process, from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        # The command name (field 2) may hold blanks: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_kib(pid):
    """VmHWM (the peak resident set size) of a live process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


# Runs argv[2:] and writes its peak RSS (KiB) to the file argv[1]. The
# figure Linux keeps for a child includes the memory of the process that
# forked it, up to its exec; so the child is forked by this small
# interpreter, not by the test process, which may be large.
_RUSAGE_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_with_rusage(argv, env, timeout=RUN_TIMEOUT, **popen_kwargs):
    """Run argv to completion; returns (CompletedProcess with text output,
    its own peak RSS in KiB). A child killed by signal N exits 128 + N."""
    with tempfile.NamedTemporaryFile("r") as rss:
        p = subprocess.run([sys.executable, "-c", _RUSAGE_WRAPPER, rss.name, *map(str, argv)], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                           timeout=timeout, **popen_kwargs)
        figure = rss.read()
    if not figure:
        raise AssertionError(f"{argv[0]} did not run: {p.stderr}")
    return subprocess.CompletedProcess(argv, p.returncode, p.stdout, p.stderr), int(figure)


# --- running quire --------------------------------------------------------

class QuireTestCase(unittest.TestCase):
    """Per test: self.tmp (a temporary directory removed afterwards),
    self.db (a database path inside it, not created), self.home and
    self.xdg (HOME and XDG_DATA_HOME for quire), self.runtime_dir
    (XDG_RUNTIME_DIR: where a quired puts its search socket, so that a
    search while one runs goes through it)."""

    maxDiff = 4000

    def setUp(self):
        super().setUp()
        if not os.access(QUIRE, os.X_OK):
            self.fail(f"quire binary not found at {QUIRE} (set $QUIRE)")
        self.tmp = make_tempdir()
        self.addCleanup(rmtree, self.tmp)
        # Registered after rmtree, so it runs before it (cleanups run last
        # first), and after the cleanups a test adds later, such as the
        # ones that stop its daemons: by then every process has exited.
        self.sanitizer_dir = os.path.join(self.tmp, "sanitizer")
        os.mkdir(self.sanitizer_dir)
        self._stderr_seen = []  # (argv, stderr) of popen()'s processes
        self.addCleanup(self.assertNoSanitizerReports)
        self.home = os.path.join(self.tmp, "home")
        self.xdg = os.path.join(self.tmp, "xdg-data")
        os.mkdir(self.home)
        self.runtime_dir = os.path.join(self.tmp, "run")
        os.mkdir(self.runtime_dir, 0o700)
        self.db = os.path.join(self.tmp, "db", "index.db")
        os.mkdir(os.path.dirname(self.db))

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(HOME=self.home, XDG_DATA_HOME=self.xdg, XDG_RUNTIME_DIR=self.runtime_dir, LC_ALL="C.UTF-8")
        env.update(sanitizer_env(self.sanitizer_dir, env))
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def command(self, *args, db=True):
        """argv for 'quire ARGS': with --db self.db (or db, if a path)
        right after the subcommand, unless db is False."""
        args = [str(a) for a in args]
        if db is not False and args:
            path = self.db if db is True else str(db)
            args = [args[0], "--db", path, *args[1:]]
        return [QUIRE, *args]

    def quire(self, *args, db=True, env=None, expect=None, timeout=RUN_TIMEOUT, text=True, **popen_kwargs):
        """Run quire to completion; returns the CompletedProcess (text, or
        bytes when text is False). expect: the exit code it must have
        (None: any)."""
        return self.run_program(self.command(*args, db=db), env=env, expect=expect, timeout=timeout, text=text,
                                **popen_kwargs)

    def run_program(self, argv, env=None, expect=None, timeout=RUN_TIMEOUT, text=True, **popen_kwargs):
        """quire() for any argv (env default self.env()): run to
        completion, fail at once on a sanitizer report (before looking at
        the exit status, which such a report changes) or on an exit status
        other than expect."""
        argv = [str(a) for a in argv]
        p = subprocess.run(argv, env=env if env is not None else self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=text, errors="replace" if text else None,
                           timeout=timeout, **popen_kwargs)
        stderr = p.stderr if text else p.stderr.decode("utf-8", "replace")
        self.assertNoSanitizerReports(output=stderr, what=" ".join(argv))
        if expect is not None and p.returncode != expect:
            self.fail(f"{' '.join(argv)} exited {p.returncode}, expected {expect}\n"
                      f"--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
        return p

    def popen(self, *args, db=True, env=None, **popen_kwargs):
        """Start quire without waiting; stdout and stderr are pipes. What
        communicate() returns on stderr is kept for the sanitizer check."""
        return _ScannedPopen(self.command(*args, db=db), self._record_stderr,
                             env=env if env is not None else self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                             **popen_kwargs)

    def _record_stderr(self, what, text):
        self._stderr_seen.append((what, text))

    def index(self, *paths, db=True, **kwargs):
        """quire index PATHS, which must succeed; returns the parsed summary."""
        p = self.quire("index", *paths, db=db, expect=kwargs.pop("expect", 0), **kwargs)
        return parse_summary(p.stdout)

    def search_json(self, query, *args, db=True, **kwargs):
        p = self.quire("search", "--json", *args, query, db=db, expect=0, **kwargs)
        return [json.loads(line) for line in p.stdout.splitlines()]

    # --- assertions

    def sanitizer_findings(self):
        """[(where, text)] of every sanitizer report so far: the report
        files, and the reports in the stderr of popen()'s processes."""
        found = sanitizer_reports(self.sanitizer_dir)
        for what, text in self._stderr_seen:
            found += sanitizer_output_reports(text, f"stderr of {what}")
        return found

    def assertNoSanitizerReports(self, output="", what="a process"):
        """No process started with self.env() reported a leak, a memory
        error or undefined behaviour (in a sanitizer build; in others there
        are never reports), nor does output, what one wrote on stderr. Runs
        after every run_program() and in every test's cleanup."""
        found = self.sanitizer_findings() + sanitizer_output_reports(output, f"stderr of {what}")
        if found:
            self.fail(f"{len(found)} sanitizer report(s) from quire or quired:\n" + "\n".join(
                f"--- {where}\n{text}" for where, text in found))

    def assertOneLine(self, text, msg=None):
        """Exactly one non-empty line, newline-terminated."""
        self.assertTrue(text.endswith("\n") and text.count("\n") == 1 and text.strip(),
                        msg or f"expected exactly one line, got {text!r}")

    def assertHealthy(self, db):
        """The invariants every writer keeps: no duplicate chunks, and an
        FTS index holding exactly one entry per chunk."""
        # A writer may still be at work (a daemon): the comparisons read
        # one snapshot. Each integrity check is one statement, so its own.
        with snapshot(db) as con:
            self.assertEqual(duplicate_groups(con), 0, "duplicate chunk groups")
            self.assertEqual(fts_docsize_count(con), chunk_count(con), "FTS rows vs chunks")
            self.assertEqual(fts_rowids(con), chunk_seqs(con), "FTS rowids vs chunk seqs")
            self.assertIn(derived_orphans(con), (0, None), "derived rows of deleted chunks")
        self.assertEqual(fts_integrity_error(db), None, "FTS integrity-check")
        self.assertEqual(sqlite_integrity(db), ["ok"], "PRAGMA integrity_check")

    def write(self, relpath, text, root=None):
        """Write a note (text, or bytes) below root (default self.tmp/notes)."""
        path = os.path.join(root or os.path.join(self.tmp, "notes"), relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path


class NotesTestCase(QuireTestCase):
    """QuireTestCase plus self.notes, an empty notes folder, and self.root,
    its realpath: the prefix of every source_file quire stores for it."""

    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)
        self.root = os.path.realpath(self.notes)

    def path(self, rel):
        """The source_file quire stores for a note (realpath of the root + rel)."""
        return os.path.join(self.root, rel)


class _ScannedPopen(subprocess.Popen):
    """A Popen whose communicate() also hands the process's stderr to
    on_stderr(argv text, stderr), for the sanitizer check."""

    def __init__(self, argv, on_stderr, **kwargs):
        super().__init__(argv, **kwargs)
        self._on_stderr = on_stderr

    def communicate(self, *args, **kwargs):
        out, err = super().communicate(*args, **kwargs)
        self._on_stderr(" ".join(str(a) for a in self.args), err)
        return out, err


# --- running quired -------------------------------------------------------

# How long a daemon may take to say something it must say (its Ready
# line), and to make the index equal to the disk after a change. Generous:
# the machine is shared and at times slow; a passing test waits only as
# long as the daemon needs.
DAEMON_TIMEOUT = float(os.environ.get("QUIRE_TEST_DAEMON_TIMEOUT", "60"))
CONVERGE_TIMEOUT = float(os.environ.get("QUIRE_TEST_CONVERGE_TIMEOUT", "60"))

BATCH_RE = re.compile(
    r"Batch: (?P<ops>\d+) operations, (?P<read>\d+) read, (?P<new>\d+) new, (?P<changed>\d+) changed, "
    r"(?P<moved>\d+) moved, (?P<removed>\d+) removed; (?P<queued>\d+) queued")
RECONCILED_RE = re.compile(
    r"Reconciled (?P<root>.+): (?P<checked>\d+) files checked, (?P<read>\d+) read, (?P<new>\d+) new, "
    r"(?P<changed>\d+) changed, (?P<removed>\d+) removed$")
READY_RE = re.compile(r"Ready: watching (?P<dirs>\d+) directories under (?P<roots>\d+) roots")


def match_ints(m):
    """The named groups of a match that are numbers, as ints."""
    return {k: int(v) for k, v in m.groupdict().items() if v is not None and v.isdigit()}


class Daemon:
    """A running quired. A thread reads its output (stderr, with stdout
    folded in) line by line into a list, so the daemon never blocks on a
    full pipe and the test can wait for a line with a deadline."""

    def __init__(self, argv, env, cwd=None, **popen_kwargs):
        self.argv = list(argv)
        self.proc = subprocess.Popen(self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", **popen_kwargs)
        self.pid = self.proc.pid
        self._lines = []
        self._eof = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"quired-{self.pid}", daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for line in self.proc.stdout:
                with self._cond:
                    self._lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    @property
    def lines(self):
        with self._cond:
            return list(self._lines)

    def mark(self):
        """The number of lines so far: pass it as since= to look only at what comes later."""
        with self._cond:
            return len(self._lines)

    def log(self, since=0):
        return "\n".join(self.lines[since:])

    def matches(self, pattern, since=0):
        """re.search matches of pattern in the lines from since on."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        return [m for m in (rx.search(line) for line in self.lines[since:]) if m]

    def wait_line(self, pattern, since=0, timeout=DAEMON_TIMEOUT):
        """The first line from index since on in which pattern (a regex) is
        found, as (index, match). Fails when the deadline passes or the
        output ends (the daemon exited) first."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self._lines):
                    m = rx.search(self._lines[i])
                    if m:
                        return i, m
                    i += 1
                if self._eof:
                    raise AssertionError(f"quired's output ended (exit status {self.proc.poll()}) "
                                         f"without a line matching {rx.pattern!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:.0f} s waiting for a quired line "
                                         f"matching {rx.pattern!r}")
                self._cond.wait(left)

    def running(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        """User plus system CPU time the daemon has used so far (all its threads)."""
        return proc_cpu_seconds(self.pid)

    def peak_rss_kib(self):
        """Its peak resident set size so far (VmHWM), in KiB."""
        return proc_peak_rss_kib(self.pid)

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Send sig and wait for the exit: (exit status, seconds taken).
        Fails, after a SIGKILL, when it takes longer than timeout."""
        t0 = time.monotonic()
        self.send(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"quired did not exit within {timeout:.0f} s of signal {sig}") from None
        elapsed = time.monotonic() - t0
        self._reader.join(5)
        return rc, elapsed

    def wait_exit(self, timeout=DAEMON_TIMEOUT):
        """Wait for it to exit by itself; returns its exit status once its
        output is all read. Fails (and kills it) after timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"quired did not exit within {timeout:.0f} s") from None
        self._reader.join(5)
        return rc

    def kill(self):
        """End it whatever it is doing (SIGTERM, then SIGKILL after 10 s);
        safe to call again."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if not self._reader.is_alive() and self.proc.stdout:
            self.proc.stdout.close()


def state_difference(expected, actual, limit=10):
    """What differs between two (chunk rows, file rows, derived rows)
    states, as text."""
    out = []
    for name, exp, act in zip(("chunks", "files", "derived rows"), expected, actual):
        exp_set, act_set = set(exp), set(act)
        missing, extra = sorted(exp_set - act_set), sorted(act_set - exp_set)
        if missing or extra:
            out.append(f"{name}: {len(exp)} expected, {len(act)} found; "
                       f"{len(missing)} missing, {len(extra)} unexpected")
            out += [f"  missing    {r}" for r in missing[:limit]]
            out += [f"  unexpected {r}" for r in extra[:limit]]
        elif len(exp) != len(act):
            out.append(f"{name}: duplicate rows ({len(exp)} expected, {len(act)} found)")
    return "\n".join(out) or "(no difference)"


class QuiredTestCase(QuireTestCase):
    """QuireTestCase plus the daemon: start_quired() runs quired with
    --db self.db (stopped in cleanup: SIGTERM, then SIGKILL after 10 s),
    its whole log is printed when the test fails, and wait_converged()
    polls until self.db is what a fresh 'quire index' of the same tree
    writes. Every daemon gets self.config_home as XDG_CONFIG_HOME (empty:
    no config file unless a test passes --config)."""

    def setUp(self):
        super().setUp()
        if not os.access(QUIRED, os.X_OK):
            self.fail(f"quired binary not found at {QUIRED} (set $QUIRED)")
        self.config_home = os.path.join(self.tmp, "xdg-config")
        os.mkdir(self.config_home)
        self.daemons = []
        self._n_refs = 0

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                self.print_daemon_logs()

    def print_daemon_logs(self, head=60, tail=400):
        for i, d in enumerate(getattr(self, "daemons", ())):
            lines = d.lines
            print(f"\n--- quired #{i + 1} of {self.id()}: {' '.join(d.argv)}\n"
                  f"--- exit status {d.proc.poll()}, {len(lines)} lines", file=sys.stderr)
            if len(lines) > head + tail:
                lines = lines[:head] + [f"[... {len(lines) - head - tail} lines ...]"] + lines[-tail:]
            print("\n".join(lines), file=sys.stderr)
        sys.stderr.flush()

    def daemon_env(self, **extra):
        return self.env(XDG_CONFIG_HOME=self.config_home, **extra)

    def sanitizer_findings(self):
        """Also the reports in the output of the daemons (their stderr)."""
        found = super().sanitizer_findings()
        for i, d in enumerate(getattr(self, "daemons", ())):
            found += sanitizer_output_reports("\n".join(d.lines), f"quired #{i + 1} (pid {d.pid})")
        return found

    def start_quired(self, *dirs, args=(), db=True, env=None, ready=True, timeout=DAEMON_TIMEOUT,
                     **popen_kwargs):
        """Start 'quired --db DB ARGS DIRS' (no --db when db is False);
        with ready, wait for its Ready line. Returns the Daemon.
        popen_kwargs go to subprocess.Popen (e.g. user= and group=)."""
        argv = [QUIRED]
        if db is not False:
            argv += ["--db", self.db if db is True else str(db)]
        argv += [str(a) for a in args] + [str(d) for d in dirs]
        d = Daemon(argv, env if env is not None else self.daemon_env(), **popen_kwargs)
        self.daemons.append(d)
        self.addCleanup(d.kill)
        if ready:
            d.wait_line(READY_RE, timeout=timeout)
        return d

    def write_config(self, text, name="quired.ini"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    # --- the index the daemon must reach

    def state(self, db=None):
        """(chunk identities with namespace, file rows, derived rows) of db
        (default self.db); empty while the database or its tables do not
        exist."""
        db = db or self.db
        if not db.startswith("file:") and not os.path.exists(db):
            return [], [], []
        try:
            return rows_with_namespace(db), files_rows(db), derived_rows(db)
        except sqlite3.OperationalError:
            return [], [], []

    def expected_state(self, *specs, index_args=()):
        """What a fresh 'quire index' (with index_args) writes for specs,
        each a root path (namespace 'default') or (namespace, [paths]);
        roots that do not exist are left out."""
        by_ns = {}
        for spec in specs:
            ns, paths = ("default", [spec]) if isinstance(spec, (str, os.PathLike)) else spec
            by_ns.setdefault(ns, []).extend(str(p) for p in paths if os.path.exists(p))
        if not any(by_ns.values()):
            return [], [], []
        self._n_refs += 1
        ref = os.path.join(self.tmp, "ref", f"ref{self._n_refs}.db")
        os.makedirs(os.path.dirname(ref), exist_ok=True)
        for ns, paths in by_ns.items():
            if paths:
                self.index("--namespace", ns, *index_args, *paths, db=ref)
        return self.state(ref)

    def wait_converged(self, *specs, daemon=None, timeout=CONVERGE_TIMEOUT, index_args=()):
        """Poll until self.db holds exactly the rows (chunks, files and
        derived rows) a fresh 'quire index' of specs (see expected_state) writes; fails
        with the difference after timeout, or at once if daemon exits.
        The tree must be in its final state. Returns that state."""
        expected = self.expected_state(*specs, index_args=index_args)
        last = [None]

        def same():
            if daemon is not None and not daemon.running():
                raise AssertionError(f"quired exited with status {daemon.proc.returncode} before the index "
                                     f"converged\n{state_difference(expected, self.state())}")
            last[0] = self.state()
            return last[0] == expected

        try:
            wait_for(same, timeout=timeout, interval=0.05, what="the daemon's index to equal a fresh index")
        except AssertionError as e:
            if last[0] is None or daemon is not None and not daemon.running():
                raise
            raise AssertionError(f"{e}\n{state_difference(expected, last[0])}") from None
        return expected


def unquote_path(field):
    """The bytes of a path as quire prints it: as it is, or git-quoted
    ("...", C escapes, \ooo octal for raw bytes)."""
    raw = field.encode("utf-8", "surrogateescape")
    if not raw.startswith(b'"'):
        return raw
    assert raw.endswith(b'"') and len(raw) >= 2, field
    out, i, body = bytearray(), 0, raw[1:-1]
    simple = {ord("n"): b"\n", ord("t"): b"\t", ord("r"): b"\r", ord('"'): b'"', ord("\\"): b"\\"}
    while i < len(body):
        c = body[i]
        if c != ord("\\"):
            out.append(c)
            i += 1
        elif body[i + 1] in simple:
            out += simple[body[i + 1]]
            i += 2
        else:
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
    return bytes(out)


def parse_summary(stdout):
    m = SUMMARY_RE.search(stdout)
    if not m:
        raise AssertionError(f"no index summary in output: {stdout!r}")
    return {k: int(v) for k, v in m.groupdict().items()}


def section(title, words, n_lines=6):
    """A Markdown section big enough (over the chunker's 256-byte minimum)
    to be a chunk of its own: a heading and a paragraph using words."""
    body = " ".join(words)
    para = "\n".join(f"{body} line {i} of the {title.lower()} section, written for a test." for i in range(n_lines))
    return f"## {title}\n\n{para}\n"


def doc(title, *sections):
    """A Markdown note: a title heading, then the sections."""
    return f"# {title}\n\n" + "\n".join(sections)


def main():
    """Run the module's tests; exit 0 if all passed, 77 (meson's skip)
    if every test was skipped, 1 otherwise."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    result = prog.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and len(result.skipped) >= result.testsRun:
        sys.exit(77)
    sys.exit(0)
