#!/usr/bin/env python3
"""Ignore rules: .quireignore files (gitignore syntax) in 'quire index'
and in quired, which follows edits to them on both watch backends; the skip
counts of the index summary; the configured globs on subtrees and reloads.

'quire index' is checked against hand-written expectations and, where git
is installed, against git's own reading of the same files (git ls-files
with --exclude-per-directory=.quireignore). The daemon's index is polled
until it equals a fresh 'quire index' of the same tree, which reads the
same files; then what must be gone is checked as well."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiretest as qt  # noqa: E402
from test_daemon import DaemonCase, note  # noqa: E402

SKIPPED_RE = re.compile(r"^skipped: (.*)$", re.M)


def skipped(stdout):
    """The summary's second line as {cause: count}; {} for 'nothing'."""
    m = SKIPPED_RE.search(stdout)
    if not m:
        raise AssertionError(f"no 'skipped:' line in {stdout!r}")
    if m.group(1) == "nothing":
        return {}
    out = {}
    for part in m.group(1).split(", "):
        n, cause = part.split(" ", 1)
        out[cause] = int(n)
    return out


def git_notes(tree, scratch):
    """The notes git leaves in a copy of tree, reading the .quireignore
    files as its per-directory excludes: *.md files with no hidden
    component, relative paths. None when git is not installed."""
    if not shutil.which("git"):
        return None
    copy = os.path.join(scratch, "git-copy")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, symlinks=True)
    subprocess.run(["git", "init", "-q", copy], check=True)
    out = subprocess.run(["git", "-C", copy, "ls-files", "--others", "--exclude-per-directory=.quireignore", "-z"],
                         check=True, capture_output=True).stdout.decode()
    return {p for p in out.split("\0")
            if p.endswith(".md") and not any(c.startswith(".") for c in p.split("/"))}


class IndexTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)
        self.root = os.path.realpath(self.notes)

    def indexed(self):
        return {p[len(self.root) + 1:] for (p,) in qt.query(self.db, "SELECT path FROM files")}

    def chunked(self):
        return {p[len(self.root) + 1:] for (p,) in qt.query(self.db, "SELECT DISTINCT source_file FROM chunks")}

    def note(self, rel):
        word = "w" + re.sub(r"[^a-z0-9]", "", rel.lower())
        self.write(rel, f"# {rel}\n\n{word} is the word of this note.\n")
        return word

    def test_quireignore_files_exclude_and_reinclude(self):
        self.write(".quireignore", "# private things\n"
                                   "drafts/\n"
                                   "*.draft.md\n"
                                   "/inbox.md\n"
                                   "attachments/**\n"
                                   "!attachments/keep/\n"
                                   "!attachments/keep/**\n")
        self.write("sub/.quireignore", "!y.draft.md\n")
        self.write("journal/.quireignore", "*\n!*/\n!2024-*.md\n")
        kept = ["a.md", "sub/inbox.md", "sub/y.draft.md", "attachments/keep/k.md", "journal/2024-01.md",
                "journal/old/2024-02.md"]
        gone = ["inbox.md", "x.draft.md", "drafts/d.md", "sub/drafts/d2.md", "attachments/at.md",
                "journal/notes.md", "journal/old/x.md"]
        words = {rel: self.note(rel) for rel in kept + gone}

        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(self.indexed(), set(kept))
        self.assertEqual(self.chunked(), set(kept))
        for rel in gone:
            self.assertEqual(qt.fts_match_rowids(self.db, words[rel]), [], rel)
        for rel in kept:
            self.assertNotEqual(qt.fts_match_rowids(self.db, words[rel]), [], rel)
        # inbox.md, x.draft.md, drafts/, sub/drafts/, attachments/at.md,
        # journal/notes.md, journal/old/x.md: a directory counts once
        self.assertEqual(skipped(p.stdout).get("ignored"), 7, p.stdout)
        self.assertEqual(p.stderr, "")
        by_git = git_notes(self.notes, self.tmp)
        if by_git is not None:
            self.assertEqual(by_git, set(kept), "git reads these .quireignore files differently")
        self.assertHealthy(self.db)

    def test_notes_leave_and_come_back_as_the_rules_change(self):
        for rel in ("alpha.md", "sub/beta.md", "sub/deeper/gamma.md", "other/delta.md"):
            self.note(rel)
        self.index(self.notes)
        self.assertEqual(len(self.indexed()), 4)

        self.write(".quireignore", "sub/\n")
        summary = self.index(self.notes)
        self.assertEqual(summary["removed"], 2)
        self.assertEqual(self.indexed(), {"alpha.md", "other/delta.md"})
        self.assertEqual(self.chunked(), {"alpha.md", "other/delta.md"})

        self.write(".quireignore", "*.md\n!delta.md\n")
        self.index(self.notes)
        self.assertEqual(self.indexed(), {"other/delta.md"})

        os.unlink(os.path.join(self.notes, ".quireignore"))
        summary = self.index(self.notes)
        self.assertEqual(summary["new"], 3)
        self.assertEqual(self.indexed(), {"alpha.md", "sub/beta.md", "sub/deeper/gamma.md", "other/delta.md"})
        self.assertHealthy(self.db)

    def test_a_path_argument_is_the_root_of_its_rules(self):
        # Files above PATH are not read: PATH is the root, as for globs.
        self.write(".quireignore", "sub/\n")
        self.note("sub/beta.md")
        self.index(os.path.join(self.notes, "sub"))
        self.assertEqual(self.indexed(), {"sub/beta.md"})

    def test_nested_path_arguments_walk_the_outer_tree_once(self):
        # notes covers notes/sub: walked as a root of its own, sub would
        # be walked twice, the second time without notes' rules.
        self.write(".quireignore", "sub/private/\n")
        self.note("sub/a.md")
        self.note("sub/private/p.md")
        summary = self.index(self.notes, os.path.join(self.notes, "sub"))
        self.assertEqual(self.indexed(), {"sub/a.md"})
        self.assertEqual(self.chunked(), {"sub/a.md"})
        self.assertEqual((summary["files"], summary["new"]), (1, 1))
        self.assertEqual(qt.query(self.db, "SELECT path FROM roots"), [(self.root,)])

    def test_a_directory_inside_an_indexed_tree_keeps_the_tree_rules(self):
        self.write(".quireignore", "sub/private/\n*.draft.md\n")
        self.note("sub/a.md")
        self.index(self.notes)
        # Later, only the part that changed.
        self.note("sub/b.md")
        self.note("sub/c.draft.md")
        self.note("sub/private/q.md")
        summary = self.index(os.path.join(self.notes, "sub"))
        self.assertEqual(self.indexed(), {"sub/a.md", "sub/b.md"})
        self.assertEqual(self.chunked(), {"sub/a.md", "sub/b.md"})
        self.assertEqual((summary["new"], summary["unchanged"]), (1, 1))
        # Part of the tree, not a root of its own.
        self.assertEqual(qt.query(self.db, "SELECT path FROM roots"), [(self.root,)])
        # A note gone from the part leaves the index, as in a whole walk.
        os.unlink(os.path.join(self.notes, "sub", "a.md"))
        self.index(os.path.join(self.notes, "sub"))
        self.assertEqual(self.indexed(), {"sub/b.md"})
        self.assertHealthy(self.db)

    def test_a_file_named_on_the_command_line_is_held_to_the_rules(self):
        """Named or walked, a note is in the index or not alike: a file the
        walk of its tree would skip is skipped when named too (one line
        naming it, counted), its rows indexed before leave, and the next
        walk of the tree finds nothing to undo."""
        self.write(".quireignore", "secret.md\n")
        self.note("plain.md")
        self.note("later.md")
        self.write("x.txt", "a text file\n")
        self.note(".hidden/h.md")
        self.note("draft.md~")
        self.index(self.notes)
        self.assertEqual(self.indexed(), {"later.md", "plain.md"})
        # Indexed before the rules said so.
        self.write(".quireignore", "secret.md\nlater.md\n")
        self.note("secret.md")
        names = ["secret.md", "x.txt", ".hidden/h.md", "draft.md~", "later.md", "plain.md"]
        p = self.quire("index", *(os.path.join(self.notes, n) for n in names), expect=0)
        self.assertEqual(skipped(p.stdout), {"ignored": 2, "not Markdown": 1, "hidden": 1, "editor temp": 1})
        self.assertEqual(qt.parse_summary(p.stdout)["removed"], 1)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 5, p.stderr)
        for name, why in [("secret.md", "excluded by a .quireignore"), ("later.md", "excluded by a .quireignore"),
                          ("x.txt", "not a Markdown file"), (".hidden/h.md", "a hidden path"),
                          ("draft.md~", "an editor temp file")]:
            self.assertTrue(any(os.path.join(self.root, name) in ln and why in ln for ln in lines), (name, lines))
        self.assertEqual(self.indexed(), {"plain.md"})
        self.assertEqual(self.chunked(), {"plain.md"})
        summary = self.index(self.notes)
        self.assertEqual((summary["new"], summary["changed"], summary["removed"]), (0, 0, 0))
        self.assertEqual(self.indexed(), {"plain.md"})
        self.assertHealthy(self.db)

    def test_a_file_in_no_indexed_tree_is_held_to_its_folder_rules(self):
        loose = os.path.join(self.tmp, "loose")
        os.mkdir(loose)
        self.write(".quireignore", "private.md\n", root=loose)
        kept = self.write("kept.md", "# kept\n\nkeptword\n", root=loose)
        private = self.write("private.md", "# p\n\nprivateword\n", root=loose)
        p = self.quire("index", kept, private, expect=0)
        self.assertEqual(skipped(p.stdout), {"ignored": 1})
        self.assertRegex(p.stderr, r"Skipping .*/loose/private\.md: excluded by a \.quireignore")
        self.assertEqual([r[0] for r in qt.query(self.db, "SELECT path FROM files")], [os.path.realpath(kept)])

    def test_a_file_inside_a_path_argument_counts_once(self):
        self.note("a.md")
        summary = self.index(self.notes, os.path.join(self.notes, "a.md"))
        self.assertEqual((summary["files"], summary["new"]), (1, 1))

    def test_search_sync_walks_a_root_recorded_inside_another_under_its_rules(self):
        self.write(".quireignore", "sub/private/\n")
        self.note("sub/a.md")
        self.index(os.path.join(self.notes, "sub"))  # sub first: its own root then
        self.index(self.notes)
        self.assertEqual(sorted(qt.query(self.db, "SELECT path FROM roots")),
                         [(self.root,), (os.path.join(self.root, "sub"),)])
        word = self.note("sub/private/r.md")
        fresh = self.note("sub/fresh.md")
        out = self.quire("search", "--sync", "--json", fresh, expect=0).stdout
        self.assertEqual([json.loads(line)["source_file"] for line in out.splitlines()],
                         [os.path.join(self.root, "sub", "fresh.md")])
        self.assertEqual(qt.fts_match_rowids(self.db, word), [])
        self.assertEqual(self.indexed(), {"sub/a.md", "sub/fresh.md"})
        self.assertHealthy(self.db)

    def test_symlinked_quireignore_is_not_followed(self):
        outside = self.write("elsewhere/rules", "*.md\n", root=self.tmp)
        os.symlink(outside, os.path.join(self.notes, ".quireignore"))
        self.note("alpha.md")
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(self.indexed(), {"alpha.md"})
        self.assertIn(os.path.join(self.root, ".quireignore"), p.stderr)
        self.assertIn("symlink", p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)

    def test_summary_counts_every_skip_cause(self):
        self.note("keep.md")
        self.note(".hidden.md")
        self.note(".hiddendir/x.md")
        self.write(".quireignore", "ig.md\n")
        self.note("ig.md")
        self.note("note.md~")
        self.note("a.txt")
        os.symlink(os.path.join(self.notes, "keep.md"), os.path.join(self.notes, "link.md"))
        os.mkfifo(os.path.join(self.notes, "fifo.md"))
        self.write("bin.md", b"# binary\n\x00\x01\n")
        self.write("big.md", "# big\n\n" + "words " * 400)

        p = self.quire("index", "--max-file-size", "1K", self.notes, expect=0)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        qt.parse_summary(lines[0])
        # .hidden.md, .hiddendir/, .quireignore; unreadable is 0 and left out
        self.assertEqual(lines[1], "skipped: 3 hidden, 1 ignored, 1 editor temp, 1 not Markdown, 1 symlinks, "
                                   "1 special, 1 binary, 1 too large")
        self.assertEqual(self.indexed(), {"keep.md"})

        p = self.quire("index", "--summary", "--max-file-size", "1K", self.notes, expect=0)
        self.assertEqual(p.stdout.splitlines()[1],
                         "skipped: 3 hidden, 1 ignored, 1 editor temp, 1 not Markdown, 1 symlinks, 1 special, "
                         "1 binary, 1 too large, 0 unreadable, 0 bad names")

    def test_a_lower_size_cap_takes_out_notes_indexed_under_a_higher_one(self):
        # Unchanged by stat, the note was never looked at again: the help
        # says that what is skipped now leaves the index.
        self.note("keep.md")
        self.write("big.md", "# big\n\n" + "words " * 400)
        self.quire("index", self.notes, expect=0)
        self.assertEqual(self.indexed(), {"keep.md", "big.md"})
        for args in ((self.notes,), (os.path.join(self.notes, "big.md"),)):
            with self.subTest(args=args):
                p = self.quire("index", "--max-file-size", "1K", *args, expect=0)
                self.assertEqual(p.stdout.splitlines()[1], "skipped: 1 too large")
                self.assertEqual(self.indexed(), {"keep.md"})
                self.quire("index", self.notes, expect=0)
                self.assertEqual(self.indexed(), {"keep.md", "big.md"})

    def test_summary_of_a_clean_tree(self):
        self.note("keep.md")
        p = self.quire("index", self.notes, expect=0)
        self.assertEqual(p.stdout.splitlines()[1:], ["skipped: nothing"])
        p = self.quire("index", "--summary", self.notes, expect=0)
        self.assertEqual(skipped(p.stdout), {c: 0 for c in (
            "hidden", "ignored", "editor temp", "not Markdown", "symlinks", "special", "binary", "too large",
            "unreadable", "bad names")})
        self.assertEqual(list(skipped(p.stdout)), ["hidden", "ignored", "editor temp", "not Markdown", "symlinks",
                                                   "special", "binary", "too large", "unreadable", "bad names"])


class IgnoreEventTests:
    """quired and .quireignore files; run for both backends (below)."""

    def make_tree(self):
        self.write("alpha.md", note("aardvark"))
        self.write("sub/beta.md", note("bumblebee"))
        self.write("sub/deeper/gamma.md", note("capybara"))
        self.write("drafts/delta.md", note("dingo"))

    def test_quireignore_created_edited_and_deleted(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)

        self.write(".quireignore", "sub/\n")
        self.converge(d)
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md")})

        self.write(".quireignore", "*.md\n!gamma.md\n")
        self.converge(d)
        self.assertEqual(self.hits("capybara"), {self.stored("sub/deeper/gamma.md")})
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertGone(self.stored("sub/beta.md"), "bumblebee")

        os.unlink(self.disk(".quireignore"))
        self.converge(d)
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md")})
        self.assertEqual(self.hits("bumblebee"), {self.stored("sub/beta.md")})
        self.assertHealthy(self.db)

    def test_quireignore_saved_through_a_temp_file_and_renamed_away(self):
        self.make_tree()
        d = self.quired()
        self.converge(d)
        self.write(".quireignore.tmp", "drafts/\nalpha.md\n")
        os.replace(self.disk(".quireignore.tmp"), self.disk(".quireignore"))
        self.converge(d)
        self.assertGone(self.stored("alpha.md"), "aardvark")
        self.assertNothingUnder(self.stored("drafts"))

        os.rename(self.disk(".quireignore"), self.disk("rules.bak"))
        self.converge(d)
        self.assertEqual(self.hits("dingo"), {self.stored("drafts/delta.md")})
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md")})
        self.assertHealthy(self.db)

    def test_directories_that_become_ignored_or_included_are_followed(self):
        self.make_tree()
        self.write(".quireignore", "drafts/\n")
        d = self.quired()
        self.converge(d)
        self.assertNothingUnder(self.stored("drafts"))
        # Not watched while ignored: nothing there is indexed.
        self.write("drafts/later.md", note("echidna"))
        self.converge(d)
        self.assertEqual(self.hits("echidna"), set())

        # New rules: drafts/ is back; sub/deeper/ and sub/beta.md go.
        self.write("sub/.quireignore", "deeper/\n")
        self.write(".quireignore", "sub/beta.md\n")
        self.converge(d)
        self.assertEqual(self.hits("dingo"), {self.stored("drafts/delta.md")})
        self.assertEqual(self.hits("echidna"), {self.stored("drafts/later.md")})
        self.assertNothingUnder(self.stored("sub"))
        # Watched again now, and what is created there is indexed.
        self.write("drafts/newer.md", note("ferret"))
        self.write("sub/deeper/newer.md", note("gecko"))
        self.write("sub/new.md", note("hyena"))
        self.converge(d)
        self.assertEqual(self.hits("ferret"), {self.stored("drafts/newer.md")})
        self.assertEqual(self.hits("hyena"), {self.stored("sub/new.md")})
        self.assertEqual(self.hits("gecko"), set())
        self.assertHealthy(self.db)

    def test_directory_with_its_own_quireignore_moved_in(self):
        self.make_tree()
        outside = os.path.join(self.tmp, "outside")
        self.write("box/.quireignore", "private.md\n", root=outside)
        self.write("box/private.md", note("iguana"), root=outside)
        self.write("box/public.md", note("jaguar"), root=outside)
        self.write(".quireignore", "secret/\n")
        self.write("box/secret/s.md", note("koala"), root=outside)
        d = self.quired()
        self.converge(d)
        os.rename(os.path.join(outside, "box"), self.disk("box"))
        self.converge(d)
        self.assertEqual(self.hits("jaguar"), {self.stored("box/public.md")})
        self.assertEqual(self.hits("iguana") | self.hits("koala"), set())
        # Its file is followed from now on, like any other.
        self.write("box/.quireignore", "public.md\n")
        self.converge(d)
        self.assertEqual(self.hits("iguana"), {self.stored("box/private.md")})
        self.assertEqual(self.hits("jaguar"), set())
        self.assertHealthy(self.db)

    def test_directory_replaced_by_one_with_other_rules(self):
        # What the daemon remembers of box/'s rules must not outlive box/.
        self.make_tree()
        outside = os.path.join(self.tmp, "outside")
        self.write("box/.quireignore", "private*.md\n")
        self.write("box/inner/old.md", note("quail"))
        self.write("box/.quireignore", "public*.md\n", root=outside)
        self.write("box/inner/new.md", note("raven"), root=outside)
        d = self.quired()
        self.converge(d)
        os.rename(self.disk("box"), os.path.join(outside, "box-old"))
        os.rename(os.path.join(outside, "box"), self.disk("box"))
        self.converge(d)
        self.write("box/private-note.md", note("salamander"))
        self.write("box/public-note.md", note("tapir"))
        self.write("box/inner/private-too.md", note("urchin"))
        self.converge(d)
        self.assertEqual(self.hits("salamander"), {self.stored("box/private-note.md")})
        self.assertEqual(self.hits("urchin"), {self.stored("box/inner/private-too.md")})
        self.assertEqual(self.hits("tapir") | self.hits("quail"), set())
        self.assertHealthy(self.db)

    def test_quireignore_inside_an_ignored_directory_has_no_say(self):
        self.make_tree()
        self.write(".quireignore", "drafts/\n")
        d = self.quired()
        self.converge(d)
        self.write("drafts/.quireignore", "!*.md\n")
        self.write("sub/.quireignore", "beta.md\n")
        self.converge(d)
        self.assertNothingUnder(self.stored("drafts"))
        self.assertGone(self.stored("sub/beta.md"), "bumblebee")
        self.assertHealthy(self.db)

    def test_notes_changed_as_the_rules_change_end_up_by_the_new_rules(self):
        self.make_tree()
        d = self.quired(args=["--settle", "200"])
        self.converge(d)
        # Changes waiting to settle under the old rules, then new rules.
        self.write("sub/beta.md", note("bumblebee", {0: "lemming"}))
        self.write("sub/new.md", note("mole"))
        self.write(".quireignore", "sub/\n")
        self.converge(d)
        # A note written after them settles after them: once it is in,
        # whatever the earlier changes did has been done.
        self.write("later.md", note("newt"))
        self.converge(d)
        self.assertEqual(self.hits("newt"), {self.stored("later.md")})
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("lemming") | self.hits("mole"), set())
        self.assertHealthy(self.db)

    def test_config_globs_hold_below_the_root_too(self):
        # A directory moved in is walked on its own; the globs are still
        # relative to the root (x/secret), not to that directory.
        config = self.write_config("[quire]\nignore = x/secret/**, secret.md\n")
        outside = os.path.join(self.tmp, "outside")
        self.write("x/keep.md", note("narwhal"), root=outside)
        self.write("x/secret/s.md", note("ocelot"), root=outside)
        self.write("x/y/secret/t.md", note("panda"), root=outside)
        self.write("x/secret.md", note("quokka"), root=outside)
        d = self.quired(args=["--config", config])
        os.rename(os.path.join(outside, "x"), self.disk("x"))
        qt.wait_for(lambda: self.hits("narwhal") and self.hits("panda"), what="x/ to be indexed")
        self.assertEqual(self.hits("ocelot"), set())
        self.assertEqual(self.hits("quokka"), set())
        self.assertEqual({p for (p,) in qt.query(self.db, "SELECT path FROM files")},
                         {self.stored("x/keep.md"), self.stored("x/y/secret/t.md")})
        self.assertTrue(d.running())

    def test_reload_drops_the_notes_a_new_glob_ignores(self):
        self.make_tree()
        config = self.write_config("[quire]\nsettle_ms = 30\n")
        d = self.quired(args=["--config", config])
        self.converge(d)
        self.write_config("[quire]\nsettle_ms = 30\nignore = sub/**\n")
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Reconciled", since=mark)
        qt.wait_for(lambda: not self.hits("bumblebee"), what="sub/ to leave the index")
        self.assertNothingUnder(self.stored("sub"))
        self.assertEqual(self.hits("aardvark"), {self.stored("alpha.md")})
        self.assertHealthy(self.db)


class InotifyIgnoreTests(IgnoreEventTests, DaemonCase):
    backend = "inotify"


class FsEventIgnoreTests(IgnoreEventTests, DaemonCase):
    backend = "fs-event"


if __name__ == "__main__":
    qt.main()
