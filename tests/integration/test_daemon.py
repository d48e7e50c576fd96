#!/usr/bin/env python3
"""quired following changes on disk, with each watch backend: creates,
edits, deletes, renames of files and directories inside a root, between
roots and across its edge, editors' ways of saving, bursts of writes,
and files it must never index. Each test starts the real daemon on a
small tree of hand-written notes, changes the tree, and polls until the
daemon's database holds exactly the rows a fresh 'quire index' of the
same tree writes (chunks and files, compared row by row); it then checks
what must be gone as well as what must be there.

The tests that need the daemon's life cycle (restarts, signals, queue
overflow, the watch limit) are in test_daemon_lifecycle.py."""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from quiretest import section  # noqa: E402

# A settle time for the tests that check chunk ids across an in-place
# rewrite or an editor's save: long enough that a stall of this (Python)
# process between two steps of one save cannot split the save into two
# reindexes, which would rightly give the note new ids. A second: a
# loaded CI machine stalls a process for a good part of 250 ms.
EDIT_SETTLE_MS = 1000

NO_PAIRING = ("fs-event does not pair renames (both ends are reported as plain changes), so a renamed "
              "note is indexed again from scratch under its new name and gets new chunk ids")


def doc(title, *sections):
    return f"# {title}\n\n" + "\n".join(sections)


def note(word, parts=None):
    """A note of three chunks, each with word and a word of its own
    (WORDpart0..2); parts replaces those per-part words where given."""
    parts = parts or {}
    return doc(word, *(section(f"Part {i}", [word, parts.get(i, f"{word}part{i}")]) for i in range(3)))


class DaemonCase(qt.QuiredTestCase):
    """A root self.notes (stored as self.root, its realpath) and quired on it."""

    backend = "inotify"

    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)
        self.root = os.path.realpath(self.notes)

    @property
    def pairs_renames(self):
        return self.backend == "inotify"

    def disk(self, rel, base=None):
        return os.path.join(base or self.notes, rel)

    def stored(self, rel, base=None):
        """The source_file the index holds for rel below base (default the root)."""
        return os.path.join(os.path.realpath(base or self.notes), rel)

    def quired(self, *dirs, args=(), **kwargs):
        return self.start_quired(*(dirs or (self.notes,)), args=["--backend", self.backend, "-v", *args],
                                 **kwargs)

    def converge(self, d, *specs):
        return self.wait_converged(*(specs or (self.notes,)), daemon=d)

    def hits(self, word):
        """The files 'quire search' finds word in."""
        return {h["source_file"] for h in self.search_json(word)}

    def ids(self, stored_path):
        """content_hash -> (id, access_count, use_count) of one file's chunks."""
        return {h: (i, a, u) for h, i, a, u in qt.query(
            self.db, "SELECT content_hash, id, access_count, use_count FROM chunks WHERE source_file = ?",
            (stored_path,))}

    def assertGone(self, stored_path, word=None):
        """No file row, no chunk and (with word) no search hit for a note."""
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM chunks WHERE source_file = ?", (stored_path,)),
                         [(0,)], f"chunks of {stored_path}")
        self.assertEqual(qt.query(self.db, "SELECT count(*) FROM files WHERE path = ?", (stored_path,)),
                         [(0,)], f"files row of {stored_path}")
        if word:
            self.assertEqual(self.hits(word), set(), f"search hits for {word!r}")

    def assertNothingUnder(self, stored_dir):
        prefix = stored_dir.rstrip("/") + "/"
        self.assertEqual(qt.query(self.db, "SELECT source_file FROM chunks WHERE substr(source_file, 1, ?) = ?",
                                  (len(prefix), prefix)), [])
        self.assertEqual(qt.query(self.db, "SELECT path FROM files WHERE substr(path, 1, ?) = ?",
                                  (len(prefix), prefix)), [])

    def assertKeptIds(self, before, after, changed=()):
        """Every chunk of before whose content is still there kept its id
        and counters; changed: how many of before's chunks were edited away."""
        kept = set(before) & set(after)
        self.assertEqual(len(kept), len(before) - len(changed) if changed else len(before),
                         "chunks whose content survived")
        for h in kept:
            self.assertEqual(after[h], before[h], "a chunk with unchanged content lost its id or counters")

    def make_tree(self):
        self.write("alpha.md", note("aardvark"))
        self.write("sub/beta.md", note("bumblebee"))
        self.write("sub/deeper/gamma.md", note("capybara"))


class EventTests:
    """Run for both backends (the subclasses below)."""

    def test_created_notes_are_indexed(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        self.write("new.md", note("dromedary"))
        self.write("sub/deeper/new2.md", note("echidna"))
        self.write("brand/new/dir/new3.md", note("ferret"))
        self.write("café/naïve ümlaut & co.md", note("gecko"))
        self.converge(d)
        self.assertEqual(self.hits("gecko"), {self.stored("café/naïve ümlaut & co.md")})
        self.assertEqual(self.hits("dromedary"), {self.stored("new.md")})
        self.assertEqual(self.hits("echidna"), {self.stored("sub/deeper/new2.md")})
        self.assertEqual(self.hits("ferret"), {self.stored("brand/new/dir/new3.md")})
        self.assertHealthy(self.db)

    def test_modified_note_keeps_its_unchanged_chunks(self):
        self.make_tree()
        d = self.quired(args=["--settle", EDIT_SETTLE_MS])
        self.converge(d)
        before = self.ids(self.stored("alpha.md"))
        self.write("alpha.md", note("aardvark", {1: "flamingo"}))
        self.converge(d)
        self.assertEqual(self.hits("flamingo"), {self.stored("alpha.md")})
        self.assertEqual(self.hits("aardvarkpart1"), set(), "the edited-away words are still found")
        self.assertEqual(self.hits("aardvarkpart0"), {self.stored("alpha.md")})
        self.assertKeptIds(before, self.ids(self.stored("alpha.md")), changed=[1])
        self.assertHealthy(self.db)

    def test_deleted_note_leaves_the_index(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        os.unlink(self.disk("sub/beta.md"))
        self.converge(d)
        self.assertGone(self.stored("sub/beta.md"), "bumblebee")
        self.assertEqual(self.hits("capybara"), {self.stored("sub/deeper/gamma.md")})
        self.assertHealthy(self.db)

    def test_rename_in_the_same_directory(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        before = self.ids(self.stored("alpha.md"))
        os.rename(self.disk("alpha.md"), self.disk("zeta.md"))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"))
        self.assertEqual(self.hits("aardvark"), {self.stored("zeta.md")})
        if self.pairs_renames:
            self.assertEqual(self.ids(self.stored("zeta.md")), before, "a rename changed chunk ids")
        self.assertHealthy(self.db)

    def test_rename_across_directories(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        before = {"alpha": self.ids(self.stored("alpha.md")), "beta": self.ids(self.stored("sub/beta.md"))}
        os.rename(self.disk("alpha.md"), self.disk("sub/deeper/alpha.md"))
        os.rename(self.disk("sub/beta.md"), self.disk("beta.md"))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"))
        self.assertGone(self.stored("sub/beta.md"))
        self.assertEqual(self.hits("aardvark"), {self.stored("sub/deeper/alpha.md")})
        self.assertEqual(self.hits("bumblebee"), {self.stored("beta.md")})
        if self.pairs_renames:
            self.assertEqual(self.ids(self.stored("sub/deeper/alpha.md")), before["alpha"])
            self.assertEqual(self.ids(self.stored("beta.md")), before["beta"])
        self.assertHealthy(self.db)

    def test_renamed_directory_moves_its_notes_and_stays_watched(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        before = self.ids(self.stored("sub/deeper/gamma.md"))
        os.rename(self.disk("sub"), self.disk("renamed"))
        self.converge(d)
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("bumblebee"), {self.stored("renamed/beta.md")})
        self.assertEqual(self.hits("capybara"), {self.stored("renamed/deeper/gamma.md")})
        if self.pairs_renames:
            self.assertEqual(self.ids(self.stored("renamed/deeper/gamma.md")), before)
        # The watches below followed the rename: changes there are seen,
        # under the new names.
        self.write("renamed/deeper/later.md", note("gazelle"))
        os.unlink(self.disk("renamed/beta.md"))
        self.converge(d)
        self.assertEqual(self.hits("gazelle"), {self.stored("renamed/deeper/later.md")})
        self.assertGone(self.stored("renamed/beta.md"), "bumblebee")
        self.assertNothingUnder(self.stored("sub"))
        self.assertHealthy(self.db)

    def test_renamed_directory_that_another_writer_indexed_first(self):
        # A quire index (or any writer) may index a renamed directory under
        # its new name before quired moves the rows there. Holding the
        # write lock across the rename puts that writer first for sure.
        self.make_tree()
        d = self.quired()
        self.converge(d)
        old, new = self.stored("sub"), self.stored("renamed")
        with qt.connect(self.db) as con:
            con.execute("BEGIN IMMEDIATE")
            os.rename(self.disk("sub"), self.disk("renamed"))
            con.execute("INSERT INTO chunks(id, namespace, source_file, content, content_hash, heading_hierarchy,"
                        " start_line, end_line, created_at, updated_at)"
                        " SELECT lower(hex(randomblob(16))), namespace, ? || substr(source_file, length(?) + 1),"
                        " content, content_hash, heading_hierarchy, start_line, end_line, created_at, updated_at"
                        " FROM chunks WHERE substr(source_file, 1, length(?) + 1) = ? || '/'", (new, old, old, old))
            con.execute("INSERT INTO files(namespace, path, size, mtime_ns, file_hash, indexed_at)"
                        " SELECT namespace, ? || substr(path, length(?) + 1), size, mtime_ns, file_hash, indexed_at"
                        " FROM files WHERE substr(path, 1, length(?) + 1) = ? || '/'", (new, old, old, old))
            con.execute("COMMIT")
        self.converge(d)
        self.assertNothingUnder(old)
        self.assertEqual(self.hits("capybara"), {self.stored("renamed/deeper/gamma.md")})
        self.assertEqual([line for line in d.lines if "ailed" in line], [])
        self.assertHealthy(self.db)

    def test_note_renamed_over_a_renamed_note_before_the_moves_are_applied(self):
        # mv a.md b.md; mv c.md b.md, both before quired applies the first
        # move (a lock held across them): b.md holds c.md, and the two
        # notes have the same size and mtime (unpacked from one archive),
        # so only the rename's ctime tells them apart. The first move must
        # not vouch for whatever b.md holds by then.
        if not self.pairs_renames:
            self.skipTest(NO_PAIRING)
        self.write("a.md", note("aardvark"))
        self.write("c.md", note("capybara"))
        for name in ("a.md", "c.md"):
            os.utime(self.disk(name), ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        self.assertEqual(os.stat(self.disk("a.md")).st_size, os.stat(self.disk("c.md")).st_size)
        d = self.quired()
        self.converge(d)
        with qt.connect(self.db) as con:
            con.execute("BEGIN IMMEDIATE")
            os.rename(self.disk("a.md"), self.disk("b.md"))
            os.rename(self.disk("c.md"), self.disk("b.md"))
            con.execute("COMMIT")
        self.converge(d)
        self.assertEqual(self.hits("capybara"), {self.stored("b.md")})
        self.assertEqual(self.hits("aardvark"), set())
        self.assertHealthy(self.db)

    def test_notes_moved_out_of_and_into_the_root(self):
        self.make_tree()
        outside = os.path.join(self.tmp, "outside")
        self.write("ext.md", note("hedgehog"), root=outside)
        self.write("extdir/one.md", note("ibis"), root=outside)
        self.write("extdir/inner/two.md", note("jackal"), root=outside)
        d = self.quired()
        self.converge(d)

        os.rename(self.disk("alpha.md"), os.path.join(outside, "alpha.md"))
        os.rename(self.disk("sub"), os.path.join(outside, "sub"))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("bumblebee") | self.hits("capybara"), set())

        os.rename(os.path.join(outside, "ext.md"), self.disk("ext.md"))
        os.rename(os.path.join(outside, "extdir"), self.disk("extdir"))
        os.rename(os.path.join(outside, "sub"), self.disk("sub-again"))
        self.converge(d)
        self.assertEqual(self.hits("hedgehog"), {self.stored("ext.md")})
        self.assertEqual(self.hits("jackal"), {self.stored("extdir/inner/two.md")})
        self.assertEqual(self.hits("capybara"), {self.stored("sub-again/deeper/gamma.md")})

        # What moved in is watched; what moved out is not indexed any more.
        self.write("extdir/inner/three.md", note("koala"))
        self.write("sub-again/deeper/four.md", note("lynx"))
        self.write("alpha.md", note("mongoose"), root=outside)
        self.converge(d)
        self.assertEqual(self.hits("koala"), {self.stored("extdir/inner/three.md")})
        self.assertEqual(self.hits("lynx"), {self.stored("sub-again/deeper/four.md")})
        self.assertEqual(self.hits("mongoose"), set())
        self.assertHealthy(self.db)

    def test_moves_between_two_roots(self):
        self.make_tree()
        notes2 = os.path.join(self.tmp, "notes2")
        self.write("delta.md", note("kiwi"), root=notes2)
        self.write("dir2/eps.md", note("lemur"), root=notes2)
        d = self.quired(self.notes, notes2)
        self.converge(d, self.notes, notes2)
        before = self.ids(self.stored("alpha.md"))

        os.rename(self.disk("alpha.md"), self.disk("alpha.md", notes2))
        os.rename(self.disk("delta.md", notes2), self.disk("sub/delta.md"))
        os.rename(self.disk("dir2", notes2), self.disk("dir2"))
        self.converge(d, self.notes, notes2)
        self.assertGone(self.stored("alpha.md"))
        self.assertGone(self.stored("delta.md", notes2))
        self.assertNothingUnder(self.stored("dir2", notes2))
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md", notes2)})
        self.assertEqual(self.hits("kiwi"), {self.stored("sub/delta.md")})
        self.assertEqual(self.hits("lemur"), {self.stored("dir2/eps.md")})
        if self.pairs_renames:
            self.assertEqual(self.ids(self.stored("alpha.md", notes2)), before)

        self.write("dir2/new.md", note("manatee"))
        self.converge(d, self.notes, notes2)
        self.assertEqual(self.hits("manatee"), {self.stored("dir2/new.md")})
        self.assertHealthy(self.db)

    def _atomic_save(self, rel, temp_rel, new_word):
        d = self.quired(args=["--settle", EDIT_SETTLE_MS])
        self.converge(d)
        before = self.ids(self.stored(rel))
        self.write(temp_rel, note(self.word_of[rel], {1: new_word}))
        os.replace(self.disk(temp_rel), self.disk(rel))
        self.converge(d)
        self.assertGone(self.stored(temp_rel))
        self.assertEqual(self.hits(new_word), {self.stored(rel)})
        self.assertEqual(self.hits(f"{self.word_of[rel]}part1"), set())
        self.assertKeptIds(before, self.ids(self.stored(rel)), changed=[1])
        self.assertHealthy(self.db)

    word_of = {"alpha.md": "aardvark", "sub/beta.md": "bumblebee", "sub/deeper/gamma.md": "capybara"}

    def test_atomic_save_through_a_hidden_temp_file(self):
        self.make_tree()
        self._atomic_save("alpha.md", ".alpha.md.tmp", "marmot")

    def test_atomic_save_through_a_swap_file(self):
        self.make_tree()
        self._atomic_save("sub/beta.md", "sub/beta.md.swp", "narwhal")

    def test_vim_style_save(self):
        # vim's backup-then-write: probe the directory with 4913, rename
        # the note to note~, write the note anew, delete note~.
        self.make_tree()
        d = self.quired(args=["--settle", EDIT_SETTLE_MS])
        self.converge(d)
        rel = "sub/deeper/gamma.md"
        before = self.ids(self.stored(rel))
        probe = self.write("sub/deeper/4913", b"")
        os.unlink(probe)
        os.rename(self.disk(rel), self.disk(rel + "~"))
        self.write(rel, note("capybara", {1: "ocelot"}))
        os.unlink(self.disk(rel + "~"))
        self.converge(d)
        self.assertEqual(self.hits("ocelot"), {self.stored(rel)})
        self.assertEqual(self.hits("capybarapart1"), set())
        self.assertGone(self.stored(rel + "~"))
        self.assertGone(self.stored("sub/deeper/4913"))
        self.assertKeptIds(before, self.ids(self.stored(rel)), changed=[1])
        self.assertHealthy(self.db)

    def test_mkdir_p_then_write_at_once(self):
        # The race between the watch on a new directory and the first
        # file in it: whichever wins, the note is indexed.
        self.make_tree()
        d = self.quired()
        self.converge(d)
        for i in range(8):
            deep = self.disk(f"x{i}/b/c")
            os.makedirs(deep)
            with open(os.path.join(deep, "f.md"), "w", encoding="utf-8") as f:
                f.write(note(f"pangolin{i}"))
        self.converge(d)
        for i in range(8):
            self.assertEqual(self.hits(f"pangolin{i}"), {self.stored(f"x{i}/b/c/f.md")})
        # and the new directories are watched
        self.write("x0/b/c/g.md", note("quail"))
        self.write("x7/b/h.md", note("raccoon"))
        self.converge(d)
        self.assertEqual(self.hits("quail") | self.hits("raccoon"),
                         {self.stored("x0/b/c/g.md"), self.stored("x7/b/h.md")})
        self.assertHealthy(self.db)

    def test_directory_renamed_right_after_it_was_made(self):
        # A new folder renamed at once (a file manager's "New Folder", a
        # tool that fills a folder and then gives it its name): the folder
        # under its final name is watched, whether or not the daemon saw
        # the first name before the rename.
        self.make_tree()
        d = self.quired()
        self.converge(d)
        for i in range(8):
            os.mkdir(self.disk(f"untitled{i}"))
            if i % 2:
                self.write(f"untitled{i}/early.md", note(f"early{i}"))
            os.rename(self.disk(f"untitled{i}"), self.disk(f"named{i}"))
        self.converge(d)
        for i in range(1, 8, 2):
            self.assertEqual(self.hits(f"early{i}"), {self.stored(f"named{i}/early.md")})
        for i in range(8):
            self.write(f"named{i}/later.md", note(f"later{i}"))
        self.converge(d)
        for i in range(8):
            self.assertEqual(self.hits(f"later{i}"), {self.stored(f"named{i}/later.md")})
        self.assertNothingUnder(self.stored("untitled0"))
        self.assertHealthy(self.db)

    def test_directory_named_like_a_note_renamed_and_deleted(self):
        # A folder whose name ends in .md holds notes like any other.
        self.make_tree()
        self.write("archive.md/one.md", note("heron"))
        self.write("archive.md/deep/two.md", note("ibis"))
        self.write("old.md/three.md", note("jackdaw"))
        d = self.quired()
        self.converge(d)
        self.assertEqual(self.hits("ibis"), {self.stored("archive.md/deep/two.md")})
        os.rename(self.disk("archive.md"), self.disk("archive2.md"))
        shutil.rmtree(self.disk("old.md"))
        self.converge(d)
        self.assertNothingUnder(self.stored("archive.md"))
        self.assertNothingUnder(self.stored("old.md"))
        self.assertEqual(self.hits("ibis"), {self.stored("archive2.md/deep/two.md")})
        self.assertEqual(self.hits("jackdaw"), set())
        self.assertHealthy(self.db)

    def test_note_replaced_by_a_directory_of_the_same_name(self):
        # rm x.md; mkdir x.md: the path's next sync finds a directory, and
        # the note that was there must leave the index all the same.
        self.make_tree()
        self.write("turn.md", note("kestrel"))
        d = self.quired()
        self.converge(d)
        os.unlink(self.disk("turn.md"))
        os.mkdir(self.disk("turn.md"))
        self.write("turn.md/inside.md", note("lapwing"))
        self.converge(d)
        self.assertGone(self.stored("turn.md"), "kestrel")
        self.assertEqual(self.hits("lapwing"), {self.stored("turn.md/inside.md")})
        self.assertHealthy(self.db)

    def test_deleted_directory_tree_leaves_the_index(self):
        self.make_tree()
        self.write("sub/deeper/more/delta.md", note("dingo"))
        d = self.quired()
        self.converge(d)
        shutil.rmtree(self.disk("sub"))
        self.converge(d)
        self.assertNothingUnder(self.stored("sub"))
        for word in ("bumblebee", "capybara", "dingo"):
            self.assertEqual(self.hits(word), set(), word)
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md")})
        # A directory made again under the old name is watched afresh.
        self.write("sub/deeper/back.md", note("emu"))
        self.converge(d)
        self.assertEqual(self.hits("emu"), {self.stored("sub/deeper/back.md")})
        self.assertHealthy(self.db)

    def test_hidden_and_editor_temp_files_are_never_indexed(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        ignored = {
            ".obsidian/x.md": "obsidianword",
            ".obsidian/plugins/deep/y.md": "pluginword",
            ".git/notes.md": "gitword",
            ".hidden.md": "hiddenword",
            "sub/.secret/z.md": "secretword",
            "note.md.swp": "swapword",
            ".note.md.swp": "dotswapword",
            "sub/note.md~": "backupword",
            "#note.md#": "emacsword",
            ".#note.md": "lockword",
            "4913": "probeword",
            "readme.txt": "txtword",
        }
        for rel, word in ignored.items():
            self.write(rel, note(word))
        # edited again, and a note thrown into a hidden trash folder
        self.write(".obsidian/x.md", note("obsidianword", {0: "obsidianagain"}))
        os.mkdir(self.disk(".trash"))
        os.rename(self.disk("alpha.md"), self.disk(".trash/alpha.md"))
        self.write("visible.md", note("quokka"))
        self.converge(d)
        self.assertEqual(self.hits("quokka"), {self.stored("visible.md")})
        self.assertGone(self.stored("alpha.md"), "aardvark")
        for rel, word in ignored.items():
            with self.subTest(rel):
                self.assertGone(self.stored(rel), word)
        self.assertEqual(self.hits("obsidianagain"), set())
        self.assertEqual(sorted(p for (p,) in qt.query(self.db, "SELECT path FROM files")),
                         sorted(self.stored(r) for r in ("sub/beta.md", "sub/deeper/gamma.md", "visible.md")))
        self.assertHealthy(self.db)

    def test_a_thousand_rapid_writes_are_read_a_handful_of_times(self):
        # busy.md exists first, so that the burst's reports say "changed":
        # the first "new" after it is the sentinel's, even when the burst's
        # own report reaches d.lines only after its commit was seen.
        self.write("busy.md", note("burst", {0: "burstvalue-before"}))
        d = self.quired()
        self.converge(d)
        path = self.disk("busy.md")
        mark = d.mark()
        for i in range(1000):
            with open(path, "w", encoding="utf-8") as f:
                f.write(note("burst", {0: f"burstvalue{i:04d}"}))
        self.converge(d)
        self.assertEqual(self.hits("burstvalue0999"), {self.stored("busy.md")})
        self.assertEqual(self.hits("burstvalue0998"), set())
        # A new note after the burst: its report (the first with a new
        # file from here on) comes after every report of the burst, so the
        # count up to it is complete.
        after_burst = d.mark()
        self.write("sentinel.md", note("sentinel"))
        self.converge(d)
        end, _ = d.wait_line(r"Batch: .* [1-9]\d* new,", since=after_burst)
        reads = 0
        for line in d.lines[mark:end + 1]:
            m = qt.BATCH_RE.search(line)
            reads += int(m["read"]) if m else 0
        reads -= 1  # the sentinel's
        print(f"\n  1000 writes, {reads} reads", file=sys.stderr)
        self.assertGreater(reads, 0, "the burst was never read")
        self.assertLess(reads, 50, f"the burst was read {reads} times: the debounce does not hold")
        self.assertHealthy(self.db)

    def test_root_that_disappears_and_comes_back(self):
        self.make_tree()
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(args=["--config", config])
        self.converge(d)
        mark = d.mark()
        shutil.rmtree(self.notes)
        d.wait_line(r"Root .* is gone", since=mark)
        self.wait_converged(daemon=d)  # nothing: every row of the root left
        self.assertEqual(qt.chunk_count(self.db), 0)
        self.assertEqual(qt.file_count(self.db), 0)
        self.assertEqual(self.hits("aardvark"), set())
        self.assertTrue(d.running())

        self.write("back/again.md", note("axolotl"))
        self.converge(d)
        self.assertEqual(self.hits("axolotl"), {self.stored("back/again.md")})
        d.wait_line(r"Root .* is back", since=mark)
        # watched again
        self.write("back/later.md", note("barracuda"))
        self.converge(d)
        self.assertEqual(self.hits("barracuda"), {self.stored("back/later.md")})
        self.assertHealthy(self.db)

    def test_rename_over_an_existing_note(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        before = self.ids(self.stored("alpha.md"))
        os.rename(self.disk("alpha.md"), self.disk("sub/beta.md"))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"))
        self.assertEqual(self.hits("bumblebee"), set(), "the replaced note is still found")
        self.assertEqual(self.hits("aardvark"), {self.stored("sub/beta.md")})
        if self.pairs_renames:
            self.assertEqual(self.ids(self.stored("sub/beta.md")), before)
        self.assertHealthy(self.db)

    def test_rename_right_after_an_edit_and_an_edit_right_after_a_rename(self):
        self.make_tree()
        d = self.quired(args=["--settle", EDIT_SETTLE_MS])
        self.converge(d)
        before = {"alpha": self.ids(self.stored("alpha.md")), "beta": self.ids(self.stored("sub/beta.md"))}
        self.write("alpha.md", note("aardvark", {1: "pelican"}))
        os.rename(self.disk("alpha.md"), self.disk("alpha2.md"))
        os.rename(self.disk("sub/beta.md"), self.disk("sub/beta2.md"))
        self.write("sub/beta2.md", note("bumblebee", {2: "quetzal"}))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"))
        self.assertGone(self.stored("sub/beta.md"))
        self.assertEqual(self.hits("pelican"), {self.stored("alpha2.md")})
        self.assertEqual(self.hits("quetzal"), {self.stored("sub/beta2.md")})
        self.assertEqual(self.hits("aardvarkpart1") | self.hits("bumblebeepart2"), set())
        if self.pairs_renames:
            self.assertKeptIds(before["alpha"], self.ids(self.stored("alpha2.md")), changed=[1])
            self.assertKeptIds(before["beta"], self.ids(self.stored("sub/beta2.md")), changed=[2])
        self.assertHealthy(self.db)

    def test_note_rewritten_slowly_right_after_its_rename_keeps_its_ids(self):
        # An editor that truncates the renamed note and writes it a moment
        # later: nothing may read the note in between (it would index it
        # empty and give the rewritten chunks new ids).
        self.make_tree()
        d = self.quired(args=["--settle", EDIT_SETTLE_MS])
        self.converge(d)
        before = self.ids(self.stored("sub/beta.md"))
        os.rename(self.disk("sub/beta.md"), self.disk("sub/beta2.md"))
        with open(self.disk("sub/beta2.md"), "w", encoding="utf-8") as f:
            time.sleep(0.125)  # a moment, well inside the settle time
            f.write(note("bumblebee", {2: "quetzal"}))
        self.converge(d)
        self.assertGone(self.stored("sub/beta.md"))
        self.assertEqual(self.hits("quetzal"), {self.stored("sub/beta2.md")})
        if self.pairs_renames:
            self.assertKeptIds(before, self.ids(self.stored("sub/beta2.md")), changed=[2])
        self.assertHealthy(self.db)

    def test_renames_that_make_or_unmake_a_note(self):
        self.make_tree()
        self.write("draft.txt", note("platypus"))
        self.write(".drafts/d.md", note("quagga"))
        d = self.quired()
        self.converge(d)
        self.assertEqual(self.hits("platypus") | self.hits("quagga"), set())
        os.rename(self.disk("draft.txt"), self.disk("draft.md"))
        os.rename(self.disk(".drafts"), self.disk("drafts"))
        os.rename(self.disk("alpha.md"), self.disk("alpha.txt"))
        os.rename(self.disk("sub"), self.disk(".sub-hidden"))
        self.converge(d)
        self.assertEqual(self.hits("platypus"), {self.stored("draft.md")})
        self.assertEqual(self.hits("quagga"), {self.stored("drafts/d.md")})
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("bumblebee") | self.hits("capybara"), set())
        # the hidden folder is not watched for notes, the unhidden one is
        self.write(".sub-hidden/x.md", note("walrus"))
        self.write("drafts/y.md", note("yak"))
        self.converge(d)
        self.assertEqual(self.hits("walrus"), set())
        self.assertEqual(self.hits("yak"), {self.stored("drafts/y.md")})
        self.assertHealthy(self.db)

    def test_touched_note_keeps_its_chunks(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        before = self.ids(self.stored("alpha.md"))
        st = os.stat(self.disk("alpha.md"))
        os.utime(self.disk("alpha.md"), ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.converge(d)  # the files row has the new mtime, as a fresh index has
        self.assertEqual(self.ids(self.stored("alpha.md")), before)
        self.assertHealthy(self.db)

    def test_symlinks_are_not_followed(self):
        self.make_tree()
        outside = os.path.join(self.tmp, "outside")
        self.write("file.md", note("vulture"), root=outside)
        self.write("dir/inner.md", note("wombat"), root=outside)
        d = self.quired()
        self.converge(d)
        os.symlink(os.path.join(outside, "file.md"), self.disk("linked.md"))
        os.symlink(os.path.join(outside, "dir"), self.disk("linkdir"))
        os.symlink(os.path.join(outside, "dir"), self.disk("sub/linkdir.md"))
        self.write("visible.md", note("xerus"))
        self.converge(d)
        self.write("dir/more.md", note("yeti"), root=outside)
        self.write("visible2.md", note("zebu"))
        self.converge(d)
        self.assertEqual(self.hits("xerus") | self.hits("zebu"),
                         {self.stored("visible.md"), self.stored("visible2.md")})
        for word in ("vulture", "wombat", "yeti"):
            self.assertEqual(self.hits(word), set(), word)
        self.assertHealthy(self.db)

    def test_root_renamed_away_and_back(self):
        self.make_tree()
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(args=["--config", config])
        self.converge(d)
        mark = d.mark()
        away = os.path.join(self.tmp, "away")
        os.rename(self.notes, away)
        d.wait_line(r"Root .* is gone", since=mark)
        self.wait_converged(daemon=d)  # empty
        self.write("sub/in-away.md", note("anteater"), root=away)
        os.rename(away, self.notes)
        d.wait_line(r"Root .* is back", since=mark)
        self.converge(d)
        self.assertEqual(self.hits("anteater"), {self.stored("sub/in-away.md")})
        self.write("sub/deeper/after.md", note("bison"))
        self.converge(d)
        self.assertEqual(self.hits("bison"), {self.stored("sub/deeper/after.md")})
        self.assertHealthy(self.db)

    def test_root_moved_away_with_its_parent(self):
        """mv $T/p $T/p2 with the root at $T/p/notes: the root's own watch
        hears nothing (only p itself is renamed), yet the root is gone from
        its configured path just as if it had been renamed itself: its
        notes leave the index, and it is looked for until it is back."""
        parent = os.path.join(self.tmp, "p")
        self.notes = os.path.join(parent, "notes")
        os.makedirs(self.notes)
        self.root = os.path.realpath(self.notes)
        self.write("alpha.md", note("aardvark"), root=self.notes)
        self.write("sub/beta.md", note("bumblebee"), root=self.notes)
        config = self.write_config("[quire]\nrescan_interval_s = 1\n")
        d = self.quired(args=["--config", config])
        self.converge(d)
        mark = d.mark()
        away = os.path.join(self.tmp, "p2")
        os.rename(parent, away)
        d.wait_line(r"Root .*/p/notes is gone", since=mark)
        # An edit at the new place must not touch the index either.
        self.write("alpha.md", note("albatross"), root=os.path.join(away, "notes"))
        self.wait_converged(daemon=d)  # empty: every row of the root left
        self.assertEqual(qt.file_count(self.db), 0)
        self.assertEqual(self.hits("bumblebee"), set())

        os.rename(away, parent)
        d.wait_line(r"Root .*/p/notes is back", since=mark)
        self.converge(d)
        self.assertEqual(self.hits("albatross"), {self.stored("alpha.md")})
        self.write("sub/after.md", note("bison"), root=self.notes)
        self.converge(d)
        self.assertEqual(self.hits("bison"), {self.stored("sub/after.md")})
        # Watched again, ancestors too: a second move is seen as well.
        mark = d.mark()
        os.rename(parent, away)
        d.wait_line(r"Root .*/p/notes is gone", since=mark)
        self.wait_converged(daemon=d)
        self.assertHealthy(self.db)

    def test_note_that_turns_binary_or_empty(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        self.write("alpha.md", b"# now binary\n\x00\x01aardvark\x00\n")
        self.write("sub/beta.md", b"")
        self.converge(d)
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertEqual(self.hits("bumblebee"), set())
        self.write("alpha.md", note("aardvark", {0: "cheetah"}))
        self.converge(d)
        self.assertEqual(self.hits("cheetah"), {self.stored("alpha.md")})
        self.assertHealthy(self.db)

    def test_root_given_through_a_symlink(self):
        self.make_tree()
        link = os.path.join(self.tmp, "link-to-notes")
        os.symlink(self.notes, link)
        d = self.quired(link)
        self.converge(d, link)
        self.write("sub/through.md", note("chinchilla"))
        os.rename(self.disk("alpha.md"), self.disk("sub/deeper/alpha.md"))
        self.converge(d, link)
        # stored under the root's realpath, as 'quire index' stores it
        self.assertEqual(self.hits("chinchilla"), {self.stored("sub/through.md")})
        self.assertEqual(self.hits("aardvark"), {self.stored("sub/deeper/alpha.md")})
        self.assertHealthy(self.db)

    def test_rename_keeps_chunk_ids_and_counters_without_a_read(self):
        if not self.pairs_renames:
            self.skipTest(NO_PAIRING)
        self.make_tree()
        d = self.quired()
        self.converge(d)
        with qt.connect(self.db) as con:
            con.execute("UPDATE chunks SET access_count = 7, use_count = 3 WHERE source_file = ?",
                        (self.stored("alpha.md"),))
            con.execute("UPDATE chunks SET access_count = 5 WHERE source_file = ?",
                        (self.stored("sub/deeper/gamma.md"),))
        before_file = self.ids(self.stored("alpha.md"))
        before_dir = self.ids(self.stored("sub/deeper/gamma.md"))
        self.assertEqual({c[1] for c in before_file.values()}, {7})

        mark = d.mark()
        os.rename(self.disk("alpha.md"), self.disk("omega.md"))
        self.converge(d)
        _, m = d.wait_line(qt.BATCH_RE, since=mark)
        self.assertEqual((m["read"], m["moved"], m["new"], m["removed"]), ("0", "1", "0", "0"), m.group(0))
        self.assertEqual(self.ids(self.stored("omega.md")), before_file)
        # Then the new name settles and is read once (the rename set its
        # ctime after the rows' indexed_at, and the move does not vouch
        # for what the name holds: the test above), and the diff keeps the
        # ids and counters. Its batch comes before the next rename, not
        # taken for that one's.
        qt.wait_for(lambda: len(d.matches(qt.BATCH_RE, since=mark)) >= 2, what="omega.md to settle")
        self.assertEqual(self.ids(self.stored("omega.md")), before_file)

        mark = d.mark()
        os.rename(self.disk("sub"), self.disk("moved-sub"))
        self.converge(d)
        _, m = d.wait_line(qt.BATCH_RE, since=mark)
        self.assertEqual(m["read"], "0", m.group(0))
        self.assertEqual(self.ids(self.stored("moved-sub/deeper/gamma.md")), before_dir)
        self.assertEqual(sum(int(b["read"]) for b in d.matches(qt.BATCH_RE, since=mark)), 0)
        self.assertHealthy(self.db)


class InotifyEventTests(EventTests, DaemonCase):
    backend = "inotify"


class FsEventEventTests(EventTests, DaemonCase):
    backend = "fs-event"


if __name__ == "__main__":
    qt.main()
