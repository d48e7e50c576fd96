"""A foreign writer that follows the storage contract (DESIGN.md section 1)
with nothing but Python's sqlite3: WAL, a busy timeout, every write in
BEGIN IMMEDIATE, INSERT OR IGNORE for chunks, and on SQLITE_BUSY a retry
with backoff that never drops the work. Tests run it in a child process
next to quire to prove that other programs can share the database.
Standard library only."""

import random
import sqlite3
import time

# The schema every writer installs (DESIGN.md section 1), idempotently.
CONTRACT_SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
  namespace    TEXT NOT NULL,
  path         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  mtime_ns     INTEGER NOT NULL,
  file_hash    TEXT NOT NULL,
  indexed_at   TEXT NOT NULL,
  PRIMARY KEY (namespace, path));
CREATE TABLE IF NOT EXISTS chunks(
  seq               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  namespace         TEXT NOT NULL DEFAULT 'default',
  source_file       TEXT NOT NULL,
  content           TEXT NOT NULL,
  content_hash      TEXT NOT NULL,
  heading_hierarchy TEXT NOT NULL DEFAULT '[]',
  start_line        INTEGER NOT NULL,
  end_line          INTEGER NOT NULL,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  access_count      INTEGER NOT NULL DEFAULT 0,
  use_count         INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS idx_chunks_unique_content
  ON chunks(namespace, source_file, content_hash, start_line);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  content, source_file, heading_hierarchy,
  content='chunks', content_rowid='seq',
  tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)
  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)
  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);
END;
CREATE TRIGGER IF NOT EXISTS chunks_au
AFTER UPDATE OF content, source_file, heading_hierarchy ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, content, source_file, heading_hierarchy)
  VALUES ('delete', old.seq, old.content, old.source_file, old.heading_hierarchy);
  INSERT INTO chunks_fts(rowid, content, source_file, heading_hierarchy)
  VALUES (new.seq, new.content, new.source_file, new.heading_hierarchy);
END;
"""


def split_statements(script):
    """Complete SQL statements of script, one at a time (executescript()
    would commit the transaction they must run in)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    assert not statement.strip(), "trailing incomplete statement"


def utc_now():
    """A timestamp in the contract's form, 'YYYY-MM-DDTHH:MM:SS.sssZ'."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def is_busy_error(e):
    """SQLITE_BUSY or SQLITE_LOCKED, as Python's sqlite3 words them."""
    text = str(e)
    return "locked" in text or "busy" in text


class Writer:
    """A contract-following writer: WAL, busy timeout, BEGIN IMMEDIATE,
    and on SQLITE_BUSY a retry with backoff, never a dropped write.
    commits and retries count what happened, for the test's log."""

    GIVE_UP_AFTER = 120.0

    def __init__(self, db, busy_timeout=5.0):
        self.db = db
        self.retries = 0
        self.commits = 0
        self.con = sqlite3.connect(db, timeout=busy_timeout, isolation_level=None)
        self.retry(lambda: self.con.execute("PRAGMA journal_mode=WAL"))
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("PRAGMA foreign_keys=ON")

    def close(self):
        self.con.close()

    def retry(self, fn):
        deadline = time.monotonic() + self.GIVE_UP_AFTER
        backoff = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if not is_busy_error(e):
                    raise
                if self.con.in_transaction:
                    self.con.execute("ROLLBACK")
                if time.monotonic() >= deadline:
                    raise
                self.retries += 1
                time.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, 0.2)

    def transaction(self, body):
        """Run body(con) inside BEGIN IMMEDIATE ... COMMIT, the whole of it
        again after a busy error; returns what body returned."""
        def attempt():
            self.con.execute("BEGIN IMMEDIATE")
            try:
                result = body(self.con)
                self.con.execute("COMMIT")
                return result
            except BaseException:
                if self.con.in_transaction:
                    self.con.execute("ROLLBACK")
                raise
        result = self.retry(attempt)
        self.commits += 1
        return result

    def ensure_schema(self):
        def body(con):
            for statement in split_statements(CONTRACT_SCHEMA):
                con.execute(statement)
            if con.execute("PRAGMA user_version").fetchone()[0] == 0:
                con.execute("PRAGMA user_version = 1")
        self.transaction(body)

    @staticmethod
    def insert_chunks(con, batch, now=None):
        """INSERT OR IGNORE each (namespace, source_file, content,
        content_hash, heading_hierarchy, start_line, end_line) with a fresh
        random id; returns how many rows went in. Call inside a
        transaction."""
        import secrets
        now = now or utc_now()
        n = 0
        for ns, path, content, content_hash, hierarchy, start, end in batch:
            cur = con.execute(
                "INSERT OR IGNORE INTO chunks(id, namespace, source_file, content, content_hash,"
                " heading_hierarchy, start_line, end_line, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (secrets.token_hex(16), ns, path, content, content_hash, hierarchy, start, end, now, now))
            n += cur.rowcount
        return n

    def insert(self, batch):
        """insert_chunks() in a transaction of its own."""
        return self.transaction(lambda con: self.insert_chunks(con, batch))
