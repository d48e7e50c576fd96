#!/usr/bin/env python3
"""What quired does when a root stops being where it was configured: a
filesystem unmounted under it, a move that an event queue overflow
swallowed, an inner root moved inside an outer one. The rule
(docs/ROOTS.md): notes leave the index only on evidence that they are
gone from disk (a deletion or a move quired saw, or a walk that finds
them gone); a root that is merely not there (missing at start, its
filesystem unmounted) keeps its notes, is shown as missing by
`quire status`, and is looked for until it is back.

Each test runs the real daemon on real directories (mounts are real
tmpfs mounts where the test may mount) and waits for events, never for
time: a note written to a second, control root after the change is
searchable only once every event queued before it has been handled."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402
from quiretest import doc, section  # noqa: E402


def note(word):
    return doc(word, *(section(f"Part {i}", [word, f"{word}part{i}"]) for i in range(3)))


class RootsCase(qt.QuiredTestCase):
    backend = "inotify"

    def setUp(self):
        super().setUp()
        # The control root: written to after each change, it tells when
        # quired has handled every event queued before the write.
        self.control = os.path.join(self.tmp, "control")
        os.mkdir(self.control)
        self.n_control = 0
        self.config = self.write_config("[quire]\nrescan_interval_s = 1\n")

    def quired(self, *dirs, env=None):
        return self.start_quired(*dirs, self.control, args=["--backend", self.backend, "-v", "--config", self.config],
                                 env=env)

    def hits(self, word):
        return {h["source_file"] for h in self.search_json(word)}

    def settle(self):
        """Write a note to the control root and wait until it is found: by
        then every event that came before it has been handled."""
        self.n_control += 1
        word = f"controlword{self.n_control}"
        self.write(f"c{self.n_control}.md", note(word), root=self.control)
        qt.wait_for(lambda: self.hits(word), what=f"{word} to be indexed")

    def rows_under(self, stored_dir):
        prefix = stored_dir.rstrip("/") + "/"
        return qt.query(self.db, "SELECT namespace, source_file, content_hash, id FROM chunks "
                        "WHERE substr(source_file, 1, ?) = ? ORDER BY 1, 2, 3", (len(prefix), prefix))

    def status(self):
        r = self.quire("status", "--json")
        return json.loads(r.stdout)

    def index_nested(self, outer, inner):
        """outer, and inner (a folder of it) as a root of the same
        namespace, each with notes (outer's gone.md, "dingo", is for the
        test to delete), indexed by a quired. Returns it, inner's stored
        path and its rows."""
        self.write("top.md", note("aardvark"), root=outer)
        self.write("gone.md", note("dingo"), root=outer)
        self.write("in.md", note("bumblebee"), root=inner)
        self.write("deep/down.md", note("capybara"), root=inner)
        d = self.quired(outer, inner)
        self.wait_converged(outer, self.control, daemon=d)
        stored = os.path.realpath(inner)
        before = self.rows_under(stored)
        self.assertEqual(len({row[1] for row in before}), 2)
        return d, stored, before

    def assertInnerKept(self, inner, stored, before):
        """After index_nested(), inner missing, gone.md deleted and a walk
        of the outer root: inner's notes are all there, gone.md's left."""
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.hits("capybara"), {os.path.join(stored, "deep", "down.md")})
        self.assertEqual(self.hits("dingo"), set())
        self.assertEqual(self.status()["daemon"]["missing_roots"], [inner])


class MountCase(RootsCase):
    """A tmpfs at self.mnt, mounted for each test."""

    def setUp(self):
        super().setUp()
        if not qt.can_mount(self.tmp):
            self.skipTest("cannot mount a tmpfs here (needs root and a mount namespace that allows it)")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        self.mount()
        self.addCleanup(self.unmount, check=False)

    def mount(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.mnt], check=True)

    def unmount(self, check=True):
        subprocess.run(["umount", self.mnt], check=check, capture_output=not check)

    def mount_filled(self, saved, change=None):
        """Mount again, holding what saved holds (then change(path of the
        new filesystem) applied): filled while mounted elsewhere and only
        then bound at self.mnt, as a drive comes back whole. quired sees
        the mount at once; a tree copied in after it would be walked half
        done, its unchanged notes read as new."""
        staging = os.path.join(self.tmp, "staging")
        os.makedirs(staging, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", staging], check=True)
        try:
            shutil.copytree(saved, staging, dirs_exist_ok=True)
            if change:
                change(staging)
            subprocess.run(["mount", "--bind", staging, self.mnt], check=True)
        finally:
            subprocess.run(["umount", staging], check=True)


class UnmountTests(MountCase):
    """A filesystem unmounted under a running quired is not a deletion: its
    notes stay in the index (unmounted on purpose or not, a removable drive
    or a network share comes back), the root shows as missing, and once
    it is mounted again one walk brings its notes up to date."""

    def unmount_and_come_back(self, root):
        """root is self.mnt or a folder on it."""
        self.write("alpha.md", note("aardvark"), root=root)
        self.write("sub/beta.md", note("bumblebee"), root=root)
        self.write("sub/gamma.md", note("capybara"), root=root)
        stored = os.path.realpath(root)
        d = self.quired(root)
        self.wait_converged(root, self.control, daemon=d)
        before = self.rows_under(stored)
        self.assertEqual(len({r[1] for r in before}), 3)

        # What the drive holds, to put back as it was (mtimes included).
        saved = os.path.join(self.tmp, "saved")
        shutil.copytree(self.mnt, saved)
        mark = d.mark()
        self.unmount()
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        d.wait_line(r"Root .*is not there any more \(its filesystem was unmounted\)", since=mark)
        # A rescan has looked for it since (the empty mount point left
        # behind is not the root coming back), and the notes are still in.
        d.wait_line(r"Root .* is still missing", since=mark)
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.hits("aardvark"), {os.path.join(stored, "alpha.md")})
        st = self.status()
        self.assertEqual(st["daemon"]["missing_roots"], [root])
        self.assertNotIn(stored, st["daemon"]["roots"])
        self.assertFalse(st["daemon"]["current"])
        self.assertTrue(d.running())

        # Mounted again, changed while away: one note gone, one new.
        def change(fs):
            on_fs = os.path.join(fs, os.path.relpath(root, self.mnt))
            os.unlink(os.path.join(on_fs, "sub", "gamma.md"))
            self.write("delta.md", note("dingo"), root=on_fs)
        self.mount_filled(saved, change)
        d.wait_line(r"Root .* is back", since=mark)
        self.wait_converged(root, self.control, daemon=d)
        self.assertEqual(self.hits("capybara"), set())
        self.assertEqual(self.hits("dingo"), {os.path.join(stored, "delta.md")})
        # Unchanged notes were not read again: same rows, same ids.
        after = self.rows_under(stored)
        kept = [r for r in before if not r[1].endswith("gamma.md")]
        self.assertEqual([r for r in after if not r[1].endswith("delta.md")], kept)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        # Watched again.
        self.write("later.md", note("eland"), root=root)
        self.wait_converged(root, self.control, daemon=d)
        self.assertHealthy(self.db)

    def test_root_that_is_a_mount_point_keeps_its_notes_when_unmounted(self):
        self.unmount_and_come_back(self.mnt)

    def test_root_on_an_unmounted_filesystem_keeps_its_notes(self):
        os.mkdir(os.path.join(self.mnt, "notes"))
        self.unmount_and_come_back(os.path.join(self.mnt, "notes"))

    def test_root_that_is_a_mount_point_not_mounted_at_start_keeps_its_notes(self):
        """Unmounted while quired was stopped: the mount point is an empty
        folder, which is not the root, and the notes stay until the drive
        is back."""
        self.write("alpha.md", note("aardvark"), root=self.mnt)
        self.write("sub/beta.md", note("bumblebee"), root=self.mnt)
        stored = os.path.realpath(self.mnt)
        d = self.quired(self.mnt)
        self.wait_converged(self.mnt, self.control, daemon=d)
        before = self.rows_under(stored)
        d.stop()
        saved = os.path.join(self.tmp, "saved")
        shutil.copytree(self.mnt, saved)
        self.unmount()

        d = self.quired(self.mnt)
        d.wait_line(r"Root .*/mnt is an empty folder, but notes were indexed from it")
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [self.mnt])

        mark = d.mark()
        self.mount_filled(saved)
        d.wait_line(r"Root .*/mnt is back", since=mark)
        self.wait_converged(self.mnt, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), before)  # ids and counters kept
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertHealthy(self.db)



class FsEventUnmountTests(UnmountTests):
    """fs-event has no IN_UNMOUNT of its own: on Linux the mount table
    tells quired, before the walk the event brings would drop the notes."""
    backend = "fs-event"


class NestedUnmountTests(MountCase):
    def test_root_unmounted_inside_a_root_of_its_namespace_keeps_its_notes_through_that_roots_walk(self):
        """A drive mounted at a folder of another root of the same
        namespace, unmounted: missing, notes kept, and a walk of the outer
        root (a reload walks every root) keeps them too, where it finds
        the mount point empty. Notes gone elsewhere in the outer root
        still leave."""
        outer = os.path.join(self.tmp, "outer")
        drive = os.path.join(outer, "drive")
        os.makedirs(drive)
        subprocess.run(["mount", "--bind", self.mnt, drive], check=True)
        self.addCleanup(subprocess.run, ["umount", drive], capture_output=True)
        d, stored, before = self.index_nested(outer, drive)

        mark = d.mark()
        subprocess.run(["umount", drive], check=True)
        d.wait_line(r"Root .*/outer/drive is not there any more \(its filesystem was unmounted\)", since=mark)
        os.unlink(os.path.join(outer, "gone.md"))
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Reconciled .*/outer: ", since=mark)
        self.assertInnerKept(drive, stored, before)
        self.assertEqual(self.hits("aardvark"), {os.path.join(os.path.realpath(outer), "top.md")})
        self.assertEqual(self.status()["duplicate_groups"], 0)


class UnmountOverflowTests(MountCase):
    def test_unmount_swallowed_by_an_overflow_keeps_the_notes(self):
        """The overflow drops the IN_UNMOUNT: the root's path names the
        empty mount point, another directory, but its filesystem is not
        mounted anywhere any more, which no move or deletion does."""
        self.write("alpha.md", note("aardvark"), root=self.mnt)
        stored = os.path.realpath(self.mnt)
        d = self.quired(self.mnt, env=self.daemon_env(QUIRE_TEST_OVERFLOW_AFTER="0"))
        self.wait_converged(self.mnt, self.control, daemon=d)
        before = self.rows_under(stored)
        saved = os.path.join(self.tmp, "saved")
        shutil.copytree(self.mnt, saved)
        mark = d.mark()
        d.send(signal.SIGSTOP)
        try:
            self.unmount()
        finally:
            d.send(signal.SIGCONT)
        d.wait_line(r"Watch queue overflowed", since=mark)
        d.wait_line(r"Root .*/mnt is not there any more \(its filesystem was unmounted\)", since=mark)
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [self.mnt])
        self.mount_filled(saved)
        d.wait_line(r"Root .*/mnt is back", since=mark)
        self.wait_converged(self.mnt, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), before)
        self.assertHealthy(self.db)


class MountTableTests(RootsCase):
    """Mounts that raise no inotify event: a bind mount unmounted (the
    filesystem stays mounted elsewhere, so no IN_UNMOUNT), and a
    filesystem mounted at a root's path. quired follows the mount table
    (/proc/self/mountinfo), so both are seen when they happen: the rescan
    interval here is an hour, and nothing else would look."""

    def setUp(self):
        super().setUp()
        if not qt.can_mount(self.tmp):
            self.skipTest("cannot mount here (needs root and a mount namespace that allows it)")
        self.config = self.write_config("[quire]\nrescan_interval_s = 3600\n")
        self.r = os.path.join(self.tmp, "r")
        os.mkdir(self.r)
        self.addCleanup(subprocess.run, ["umount", self.r], capture_output=True)

    def test_bind_mount_unmounted_at_a_root_keeps_its_notes_until_it_is_back(self):
        real = os.path.join(self.tmp, "real")
        self.write("alpha.md", note("aardvark"), root=real)
        self.write("sub/beta.md", note("bumblebee"), root=real)
        subprocess.run(["mount", "--bind", real, self.r], check=True)
        stored = os.path.realpath(self.r)
        d = self.quired(self.r)
        self.wait_converged(self.r, self.control, daemon=d)
        before = self.rows_under(stored)
        self.assertEqual(len({row[1] for row in before}), 2)

        mark = d.mark()
        subprocess.run(["umount", self.r], check=True)
        d.wait_line(r"Root .*/r is not there any more \(its filesystem was unmounted\)", since=mark)
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [self.r])

        self.write("sub/beta.md", note("capybara"), root=real)  # changed while away
        subprocess.run(["mount", "--bind", real, self.r], check=True)
        d.wait_line(r"Root .*/r is back", since=mark)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(self.hits("capybara"), {os.path.join(stored, "sub", "beta.md")})
        self.assertEqual([row for row in self.rows_under(stored) if row[1].endswith("alpha.md")],
                         [row for row in before if row[1].endswith("alpha.md")])
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.write("later.md", note("dingo"), root=self.r)  # watched on the mount
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertHealthy(self.db)

    def test_filesystem_mounted_at_a_root_is_indexed_at_once(self):
        d = self.quired(self.r)
        self.settle()
        mark = d.mark()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.r], check=True)
        self.write("alpha.md", note("aardvark"), root=self.r)
        d.wait_line(r"Root .*/r is another folder now", since=mark)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(self.hits("aardvark"), {os.path.join(os.path.realpath(self.r), "alpha.md")})
        self.write("later.md", note("eland"), root=self.r)  # the new folder is watched
        self.wait_converged(self.r, self.control, daemon=d)


    def test_filesystem_mounted_below_a_root_is_indexed_at_once(self):
        """Mounting raises no event in the folder mounted on: without the
        mount table the new filesystem's notes would wait for a walk."""
        self.write("top.md", note("aardvark"), root=self.r)
        usb = os.path.join(self.r, "usb")
        os.mkdir(usb)
        d = self.quired(self.r)
        self.wait_converged(self.r, self.control, daemon=d)
        mark = d.mark()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", usb], check=True)
        self.addCleanup(subprocess.run, ["umount", usb], capture_output=True)
        d.wait_line(r"A filesystem was mounted at .*/r/usb", since=mark)
        self.write("usb/on-drive.md", note("bumblebee"), root=self.r)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(self.hits("bumblebee"), {os.path.join(os.path.realpath(self.r), "usb", "on-drive.md")})
        # Unmounted, its notes stay (the next test follows them), and the
        # folder uncovered is watched in its place. (The change the write
        # raised is handled first: a note looked at after the unmount is
        # gone.)
        self.settle()
        subprocess.run(["umount", usb], check=True)
        self.settle()
        self.assertEqual(len(self.hits("bumblebee")), 1)
        self.write("usb/under.md", note("capybara"), root=self.r)
        self.settle()
        self.assertEqual(self.hits("capybara"), {os.path.join(os.path.realpath(self.r), "usb", "under.md")})

    def drive_mounted_below_the_root(self, env=None):
        """A drive (bind-mounted folder, holding on-drive.md and whatever the
        test wrote there) at r/usb, indexed by a quired (started with env).
        Returns it, the drive, the mount point, its stored path and its
        rows."""
        drive = os.path.join(self.tmp, "drive")  # what the filesystem holds
        self.write("on-drive.md", note("bumblebee"), root=drive)
        usb = os.path.join(self.r, "usb")
        os.mkdir(usb)
        subprocess.run(["mount", "--bind", drive, usb], check=True)
        self.addCleanup(subprocess.run, ["umount", usb], capture_output=True)
        d = self.quired(self.r, env=env)
        self.wait_converged(self.r, self.control, daemon=d)
        stored = os.path.join(os.path.realpath(self.r), "usb")
        return d, drive, usb, stored, self.rows_under(stored)

    def test_filesystem_unmounted_below_a_root_keeps_its_notes_until_it_is_back_or_its_folder_goes(self):
        """A drive unmounted from a folder of a root: the folder uncovered
        is empty, and a walk of it (a reload walks every root) would take
        the drive's notes for deleted. They stay until a filesystem is
        mounted there again, whose walk has the word (ids of unchanged
        notes kept), or the folder itself goes."""
        self.write("sub/deeper.md", note("capybara"), root=os.path.join(self.tmp, "drive"))
        self.write("top.md", note("aardvark"), root=self.r)
        d, drive, usb, stored, before = self.drive_mounted_below_the_root()
        self.assertEqual(len({row[1] for row in before}), 2)

        mark = d.mark()
        subprocess.run(["umount", usb], check=True)
        d.wait_line(r"A filesystem was unmounted from .*/r/usb; its notes stay", since=mark)
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Reconciled .*/r: ", since=mark)
        self.settle()
        self.assertEqual(self.rows_under(stored), before)

        # Back, with a note changed and one added while away: the walk of
        # the drive has the word.
        self.write("sub/deeper.md", note("dingo"), root=drive)
        self.write("later.md", note("eland"), root=drive)
        mark = d.mark()
        subprocess.run(["mount", "--bind", drive, usb], check=True)
        d.wait_line(r"A filesystem was mounted at .*/r/usb", since=mark)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual([row for row in self.rows_under(stored) if row[1].endswith("on-drive.md")],
                         [row for row in before if row[1].endswith("on-drive.md")])
        self.assertEqual(self.hits("capybara"), set())
        self.assertEqual(self.hits("eland"), {os.path.join(stored, "later.md")})

        # Unmounted again, then its folder removed: nothing will be mounted
        # there, and the notes go with the folder.
        mark = d.mark()
        subprocess.run(["umount", usb], check=True)
        d.wait_line(r"A filesystem was unmounted from .*/r/usb; its notes stay", since=mark)
        self.settle()
        self.assertEqual(len({row[1] for row in self.rows_under(stored)}), 3)
        os.rmdir(usb)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), [])
        self.assertEqual(self.hits("aardvark"), {os.path.join(os.path.realpath(self.r), "top.md")})
        self.assertHealthy(self.db)

    def test_filesystem_unmounted_below_a_root_keeps_its_notes_across_a_restart(self):
        """The notes of a drive unmounted below a root were kept only while
        quired ran: the walk of the next start found its mount point empty
        and dropped them. The folder is recorded in the database until a
        filesystem is mounted there again."""
        d, drive, usb, stored, before = self.drive_mounted_below_the_root()
        self.assertEqual(len(before), 3)
        mark = d.mark()
        subprocess.run(["umount", usb], check=True)
        d.wait_line(r"A filesystem was unmounted from .*/r/usb; its notes stay", since=mark)
        qt.wait_for(lambda: qt.query(self.db, "SELECT path FROM unmounted") == [(stored,)],
                    what="the folder recorded as unmounted")
        d.stop()
        # Nor does quire search --sync without quired take them away (the
        # hit is marked stale: its file is not there now).
        p = self.quire("search", "--sync", "--files", "bumblebee", expect=0)
        self.assertEqual(p.stdout.splitlines(), [os.path.join(stored, "on-drive.md") + "\t[stale]"])
        self.assertEqual(self.rows_under(stored), before)

        d = self.quired(self.r)
        d.wait_line(r"The filesystem unmounted from .*/r/usb is still away; its notes stay")
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        mark = d.mark()
        subprocess.run(["mount", "--bind", drive, usb], check=True)
        d.wait_line(r"A filesystem was mounted at .*/r/usb", since=mark)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), before)
        qt.wait_for(lambda: qt.query(self.db, "SELECT path FROM unmounted") == [], what="the record to go")
        d.stop()
        # Mounted, or its folder gone: nothing is kept at the next start.
        d = self.quired(self.r)
        self.wait_converged(self.r, self.control, daemon=d)
        self.assertEqual(d.matches(r"still away"), [])


    def test_unmounted_folder_recorded_when_the_database_is_writable_again(self):
        """The folder was remembered as recorded when it was sent to the
        indexer: a write that failed (the database locked past the
        timeout) was never tried again, so the next start dropped the
        drive's notes. The retry after a failure sends it again."""
        d, drive, usb, stored, before = self.drive_mounted_below_the_root(
            env=self.daemon_env(QUIRE_LOCK_TIMEOUT_MS="300"))
        holder = sqlite3.connect(self.db, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # the write lock; readers go on
            mark = d.mark()
            subprocess.run(["umount", usb], check=True)
            d.wait_line(r"A filesystem was unmounted from .*/r/usb; its notes stay", since=mark)
            d.wait_line(r"failed; retrying in", since=mark)
            self.assertEqual(qt.query(self.db, "SELECT path FROM unmounted"), [])
            holder.execute("ROLLBACK")
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
        qt.wait_for(lambda: qt.query(self.db, "SELECT path FROM unmounted") == [(stored,)],
                    timeout=30, what="the folder recorded as unmounted")
        d.wait_line(r"Indexing works again", since=mark)
        d.stop()
        d = self.quired(self.r)
        d.wait_line(r"The filesystem unmounted from .*/r/usb is still away; its notes stay")
        self.settle()
        self.assertEqual(self.rows_under(stored), before)


class FsEventMountTableTests(MountTableTests):
    backend = "fs-event"


class OverflowTests(RootsCase):
    """A queue overflow loses events, a root's own or its ancestors' moves
    among them. The reconcile after it must look again at where each root
    and the folders above it are, not trust the paths it had: a root whose
    path names nothing (or another folder) is gone, and an ancestor's watch
    that follows a folder moved elsewhere is put back on the folder there
    now. quired is stopped (SIGSTOP) while the tree changes, so that every
    event is in one read, which QUIRE_TEST_OVERFLOW_AFTER=0 drops."""

    def setUp(self):
        super().setUp()
        self.parent = os.path.join(self.tmp, "p")
        self.notes = os.path.join(self.parent, "notes")
        self.write("alpha.md", note("aardvark"), root=self.notes)
        self.write("sub/beta.md", note("bumblebee"), root=self.notes)
        self.stored = os.path.realpath(self.notes)

    def start(self):
        d = self.quired(self.notes, env=self.daemon_env(QUIRE_TEST_OVERFLOW_AFTER="0"))
        self.wait_converged(self.notes, self.control, daemon=d)
        return d

    def while_stopped(self, d, change):
        """change() happens while quired is stopped; then an overflow."""
        mark = d.mark()
        d.send(signal.SIGSTOP)
        try:
            change()
        finally:
            d.send(signal.SIGCONT)
        d.wait_line(r"Watch queue overflowed", since=mark)
        return mark

    def test_root_moved_away_with_its_parent_in_an_overflow_is_gone(self):
        d = self.start()
        away = os.path.join(self.tmp, "p2")
        mark = self.while_stopped(d, lambda: os.rename(self.parent, away))
        self.wait_converged(self.control, daemon=d)  # nothing of the root
        self.assertEqual(self.rows_under(self.stored), [])
        # Not still taken for present at its old path, but missing.
        status = self.status()["daemon"]
        self.assertNotIn(self.stored, status["roots"])
        self.assertEqual(status["missing_roots"], [self.notes])
        d.wait_line(r"Root .*/p/notes is gone", since=mark)
        # A new folder at the root's path is found and watched.
        self.write("gamma.md", note("capybara"), root=self.notes)
        d.wait_line(r"Root .*/p/notes is back", since=mark)
        self.wait_converged(self.notes, self.control, daemon=d)
        self.write("later.md", note("dingo"), root=self.notes)
        self.wait_converged(self.notes, self.control, daemon=d)
        self.assertEqual(self.hits("dingo"), {os.path.join(self.stored, "later.md")})
        self.assertEqual(self.hits("aardvark"), set())
        self.assertHealthy(self.db)

    def test_ancestor_replaced_in_an_overflow_is_watched_again(self):
        # mv p p2; mkdir p; mv p2/notes p/notes: the root is the same folder
        # at the same path, but the folder above it is another one. A later
        # move of the new p must be heard.
        d = self.start()
        away = os.path.join(self.tmp, "p2")

        def swap():
            os.rename(self.parent, away)
            os.mkdir(self.parent)
            os.rename(os.path.join(away, "notes"), self.notes)
        mark = self.while_stopped(d, swap)
        self.wait_converged(self.notes, self.control, daemon=d)
        self.settle()
        os.rename(self.parent, os.path.join(self.tmp, "p3"))
        self.wait_converged(self.control, daemon=d)  # nothing of the root
        self.assertEqual(self.rows_under(self.stored), [])
        d.wait_line(r"Root .*/p/notes is gone", since=mark)
        self.assertHealthy(self.db)


class NestedTests(RootsCase):
    """A root inside another root, moved: the inner root is a root at its
    configured path, so moved away it is gone from there (its notes leave
    its namespace and it is looked for); the notes themselves are still
    under the outer root, at their new paths, as any moved folder's."""

    def setUp(self):
        super().setUp()
        self.outer = os.path.join(self.tmp, "outer")
        self.inner = os.path.join(self.outer, "inner")
        self.write("top.md", note("aardvark"), root=self.outer)
        self.write("in.md", note("bumblebee"), root=self.inner)
        self.write("deep/down.md", note("capybara"), root=self.inner)
        # Made before quired starts: a rename into a folder made a moment
        # before may come before the folder is watched, and is then a move
        # out and a new folder (new ids), which is not what this is about.
        os.mkdir(os.path.join(self.outer, "sub"))
        self.stored_outer = os.path.realpath(self.outer)

    def start(self, ns_inner):
        if ns_inner is None:  # one namespace: DIR arguments
            d = self.quired(self.outer, self.inner)
            specs = lambda: (self.outer, self.control)  # noqa: E731
        else:
            self.config = self.write_config(
                "[quire]\nrescan_interval_s = 1\n"
                f"[root \"outerns\"]\npath = {self.outer}\n[root \"{ns_inner}\"]\npath = {self.inner}\n"
                f"[root]\npath = {self.control}\n")
            d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
            specs = lambda: (("outerns", [self.outer]), (ns_inner, [self.inner]), self.control)  # noqa: E731
        self.wait_converged(*specs(), daemon=d)
        self.outer_ns = "default" if ns_inner is None else "outerns"
        self.before = self.outer_ids(os.path.join(self.stored_outer, "inner"))
        return d, specs

    def outer_ids(self, stored_dir):
        """(path below stored_dir, content_hash) -> id of the outer root's chunks there."""
        return {(os.path.relpath(f, stored_dir), h): i for ns, f, h, i in self.rows_under(stored_dir)
                if ns == self.outer_ns}

    def check_moved(self, d, specs, mark, new):
        """The inner root went from self.inner to new (within the outer root)."""
        self.wait_converged(*specs(), daemon=d)
        stored_old = os.path.join(self.stored_outer, "inner")
        stored_new = os.path.join(self.stored_outer, os.path.relpath(new, self.outer))
        self.assertEqual(self.rows_under(stored_old), [])
        # The outer root's rows moved with the folder: same ids (fs-event
        # does not pair renames: the folder is read again).
        if self.backend == "inotify":
            self.assertEqual(self.outer_ids(stored_new), self.before)
        self.assertEqual(self.hits("capybara"), {os.path.join(stored_new, "deep", "down.md")})
        self.assertEqual(self.hits("bumblebee"), {os.path.join(stored_new, "in.md")})
        status = self.status()
        self.assertEqual(status["duplicate_groups"], 0)
        self.assertEqual(status["daemon"]["missing_roots"], [self.inner])
        d.wait_line(r"Root .*/outer/inner is gone", since=mark)
        # Edits at the new place are the outer root's.
        self.write("in.md", note("dingo"), root=new)
        self.wait_converged(*specs(), daemon=d)
        self.assertEqual(self.hits("dingo"), {os.path.join(stored_new, "in.md")})
        # Moved back, it is the inner root again.
        os.rename(new, self.inner)
        d.wait_line(r"Root .*/outer/inner is back", since=mark)
        self.wait_converged(*specs(), daemon=d)
        self.assertEqual(self.hits("dingo"), {os.path.join(stored_old, "in.md")})
        self.assertEqual(self.rows_under(stored_new), [])
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertHealthy(self.db)

    def test_inner_root_moved_within_the_outer_one(self):
        d, specs = self.start(None)
        mark = d.mark()
        new = os.path.join(self.outer, "moved")
        os.rename(self.inner, new)
        self.check_moved(d, specs, mark, new)

    def test_inner_root_of_its_own_namespace_moved_within_the_outer_one(self):
        d, specs = self.start("innerns")
        mark = d.mark()
        new = os.path.join(self.outer, "sub", "moved")
        os.rename(self.inner, new)
        self.check_moved(d, specs, mark, new)

    def test_inner_root_moved_out_of_the_outer_one(self):
        d, specs = self.start(None)
        mark = d.mark()
        away = os.path.join(self.tmp, "away")
        os.rename(self.inner, away)
        self.wait_converged(*specs(), daemon=d)
        self.assertEqual(self.rows_under(os.path.join(self.stored_outer, "inner")), [])
        self.assertEqual(self.hits("bumblebee"), set())
        d.wait_line(r"Root .*/outer/inner is gone", since=mark)
        os.rename(away, self.inner)
        d.wait_line(r"Root .*/outer/inner is back", since=mark)
        self.wait_converged(*specs(), daemon=d)
        self.assertHealthy(self.db)

    def test_changes_below_an_inner_root_of_its_own_namespace_reach_both(self):
        """The walks index the notes below the inner root in both
        namespaces; every change there, heard by the inner root's
        watches, reaches both: edits, new notes and folders, deletions,
        renames (ids kept in both where the backend pairs them)."""
        d, specs = self.start("innerns")
        stored_inner = os.path.join(self.stored_outer, "inner")

        def ids(ns, rel):
            return {i for n, f, _, i in self.rows_under(stored_inner) if n == ns and f.endswith("/" + rel)}

        self.write("in.md", note("dingo"), root=self.inner)                  # edited
        self.write("new.md", note("eland"), root=self.inner)                 # created
        self.write("fresh/made.md", note("ferret"), root=self.inner)         # folder made
        os.unlink(os.path.join(self.inner, "deep", "down.md"))               # deleted
        self.wait_converged(*specs(), daemon=d)
        for ns in ("outerns", "innerns"):
            hits = {h["source_file"] for h in self.search_json("dingo OR eland OR ferret", "--namespace", ns)}
            self.assertEqual(hits, {os.path.join(stored_inner, r) for r in ("in.md", "new.md", "fresh/made.md")})
            self.assertEqual(self.search_json("capybara", "--namespace", ns), [])
        before = {ns: ids(ns, "new.md") for ns in ("outerns", "innerns")}
        self.assertTrue(all(before.values()))

        os.rename(os.path.join(self.inner, "new.md"), os.path.join(self.inner, "renamed.md"))
        os.rename(os.path.join(self.inner, "fresh"), os.path.join(self.inner, "stale"))
        os.rename(os.path.join(self.inner, "in.md"), os.path.join(self.outer, "out.md"))  # out of the inner root
        self.wait_converged(*specs(), daemon=d)
        for ns in ("outerns", "innerns"):
            self.assertEqual(ids(ns, "new.md"), set())
            if self.backend == "inotify":
                self.assertEqual(ids(ns, "renamed.md"), before[ns])
        self.assertEqual({h["source_file"] for h in self.search_json("dingo", "--namespace", "outerns")},
                         {os.path.join(self.stored_outer, "out.md")})
        self.assertEqual(self.search_json("dingo", "--namespace", "innerns"), [])
        self.assertEqual(self.status()["duplicate_groups"], 0)
        self.assertHealthy(self.db)


class FsEventNestedTests(NestedTests):
    backend = "fs-event"


class LostRootTests(RootsCase):
    """A root deleted while quired runs loses its notes; it is looked for
    again after 1 s, then less and less often, up to rescan_interval_s."""

    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)

    def lose(self, d):
        self.write("old.md", note("oldword"), root=self.notes)
        self.wait_converged(self.notes, self.control, daemon=d)
        mark = d.mark()
        shutil.rmtree(self.notes)
        d.wait_line(r"Root .* is gone; its notes leave the index", since=mark)
        qt.wait_for(lambda: self.status()["daemon"]["missing_roots"] == [self.notes], what="the root missing")
        # It said "notes kept" of every missing root.
        self.assertIn(f"missing root:     {self.notes} (deleted or moved away while watched: its notes left the "
                      "index; looked for periodically)", self.quire("status", expect=1).stdout)
        qt.wait_for(lambda: not self.hits("oldword"), what="the lost root's notes to leave")
        return mark

    def test_root_cloned_again_is_found_at_once(self):
        # rm -rf ~/notes && git clone ... ~/notes: it was looked for again
        # only after rescan_interval_s, 300 s by default.
        self.config = self.write_config("[quire]\n")
        d = self.quired(self.notes)
        mark = self.lose(d)
        self.write("fresh.md", note("freshword"), root=self.notes)
        # Looked for 1, 3, 7, 15, 31 s after: found by one of the first.
        d.wait_line(r"Root .* is back", since=mark, timeout=qt.DAEMON_TIMEOUT + 30)
        self.wait_converged(self.notes, self.control, daemon=d)
        self.assertEqual(self.hits("freshword"), {os.path.join(os.path.realpath(self.notes), "fresh.md")})
        self.assertEqual(self.hits("oldword"), set())
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])

    def test_root_gone_is_still_gone_after_a_reload(self):
        # The reload took every missing root for one not found at start,
        # whose notes stay: status said "notes kept" of notes long gone.
        d = self.quired(self.notes)
        self.lose(d)
        mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Root .*/notes is still gone; it is looked for every", since=mark)
        d.wait_line(qt.READY_RE, since=mark)
        self.assertIn(f"missing root:     {self.notes} (deleted or moved away while watched: its notes left the "
                      "index; looked for periodically)", self.quire("status", expect=1).stdout)
        self.assertEqual(d.matches(r"its notes stay", since=mark), [])
        self.assertEqual(self.hits("oldword"), set())

    def test_sync_names_a_missing_root_and_finds_one_that_is_back(self):
        self.config = self.write_config("[quire]\n")
        d = self.quired(self.notes)
        self.lose(d)
        p = self.quire("search", "--sync", "--files", "oldword", expect=0)
        self.assertEqual(p.stdout, "")
        self.assertIn(f"Root {self.notes} is missing for quired (pid {d.pid}); what the index holds of it may "
                      "be out of date (see quire status)", p.stderr)
        # Back between two looks (the first after 1 s failed, the next
        # comes 2 s later): the sync's cookie has quired look at once.
        time.sleep(1.5)
        self.write("fresh.md", note("freshword"), root=self.notes)
        p = self.quire("search", "--sync", "--files", "freshword", expect=0)
        self.assertEqual(p.stdout.splitlines(), [os.path.join(os.path.realpath(self.notes), "fresh.md")])
        self.assertNotIn("is missing", p.stderr)


class MissingAtStartTests(RootsCase):
    def indexed_then_emptied(self, notes):
        """The root r, holding notes ({path: word}), indexed by a quired
        that is then stopped, and its notes moved to away: r is an empty
        folder. Returns r, its stored path, its rows, and away."""
        r = os.path.join(self.tmp, "r")
        for path, word in notes.items():
            self.write(path, note(word), root=r)
        d = self.quired(r)
        self.wait_converged(r, self.control, daemon=d)
        stored = os.path.realpath(r)
        before = self.rows_under(stored)
        self.assertEqual(len({row[1] for row in before}), len(notes))
        d.stop()
        away = os.path.join(self.tmp, "away")
        os.rename(r, away)
        os.mkdir(r)
        return r, stored, before, away

    def test_root_missing_at_start_keeps_its_notes_until_dropped_from_the_config(self):
        """Missing at start (deleted while quired was stopped, or not
        mounted yet: quired cannot tell) keeps the notes, and shows the
        root as missing. Taken out of the configuration, it takes its notes
        with it on the reload, as a root that is there does."""
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        self.write("one.md", note("aardvark"), root=a)
        self.write("two.md", note("bumblebee"), root=b)
        self.write("sub/three.md", note("capybara"), root=b)
        both = "".join(f"[root]\npath = {p}\n" for p in (a, b, self.control))
        self.config = self.write_config("[quire]\nrescan_interval_s = 1\n" + both)
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
        self.wait_converged(a, b, self.control, daemon=d)
        stored_b = os.path.realpath(b)
        before = self.rows_under(stored_b)
        self.assertEqual(len(before), 6)
        d.stop()

        shutil.rmtree(b)
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
        d.wait_line(r"Root .*/b is missing or not a directory; its notes stay")
        self.settle()
        self.assertEqual(self.rows_under(stored_b), before)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [b])
        self.assertIn(f"missing root:     {b} (notes kept; looked for periodically)",
                      self.quire("status", expect=1).stdout)

        mark = d.mark()
        self.write_config("[quire]\nrescan_interval_s = 1\n" + f"[root]\npath = {a}\n[root]\npath = {self.control}\n")
        d.send(signal.SIGHUP)
        self.wait_converged(a, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored_b), [])
        d.wait_line(r"Root .*/b is no longer configured", since=mark)
        self.assertEqual(self.hits("bumblebee"), set())
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertHealthy(self.db)

    def test_root_emptied_while_stopped_keeps_its_notes_until_something_is_in_it(self):
        """An empty folder where notes were indexed from is what a drive's
        mount point looks like before the drive is mounted: at start it is
        missing, not empty, and its notes stay. Once something is in it,
        it is the root back, and one walk brings the index up to date."""
        r, stored, before, away = self.indexed_then_emptied({"one.md": "aardvark", "sub/two.md": "bumblebee"})
        d = self.quired(r)
        d.wait_line(r"Root .*/r is an empty folder, but notes were indexed from it .*; they stay in the index")
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(self.hits("aardvark"), {os.path.join(stored, "one.md")})
        st = self.status()
        self.assertEqual(st["daemon"]["missing_roots"], [r])
        self.assertFalse(st["daemon"]["current"])

        mark = d.mark()
        os.rename(os.path.join(away, "one.md"), os.path.join(r, "one.md"))
        d.wait_line(r"Root .*/r is back", since=mark)
        self.wait_converged(r, self.control, daemon=d)
        self.assertEqual(self.hits("bumblebee"), set())
        self.assertEqual(self.rows_under(stored), [row for row in before if row[1].endswith("/one.md")])
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.write("later.md", note("eland"), root=r)  # watched again
        self.wait_converged(r, self.control, daemon=d)
        self.assertHealthy(self.db)

    def test_root_emptied_inside_a_root_of_its_namespace_keeps_its_notes(self):
        """An inner root found empty at start (a drive not mounted at a
        folder of the outer root, same namespace): the outer root's walk
        finds the folder empty, and keeps the notes all the same, as the
        inner root does; notes gone elsewhere in the outer root leave.
        Back, the inner root is walked, its notes' ids kept."""
        outer = os.path.join(self.tmp, "outer")
        inner = os.path.join(outer, "drive")
        d, stored, before = self.index_nested(outer, inner)
        d.stop()

        away = os.path.join(self.tmp, "away")
        os.rename(inner, away)
        os.mkdir(inner)
        os.unlink(os.path.join(outer, "gone.md"))
        d = self.quired(outer, inner)
        d.wait_line(r"Root .*/drive is an empty folder, but notes were indexed from it")
        d.wait_line(r"Reconciled .*/outer: ")
        self.assertInnerKept(inner, stored, before)

        mark = d.mark()
        os.rename(os.path.join(away, "in.md"), os.path.join(inner, "in.md"))
        d.wait_line(r"Root .*/drive is back", since=mark)
        self.wait_converged(outer, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), [row for row in before if row[1].endswith("/in.md")])
        self.assertEqual(self.hits("capybara"), set())
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertHealthy(self.db)

    def test_root_restored_while_watched_keeps_the_ids_of_notes_copied_late(self):
        """A root found again while its tree is still being copied back
        (a backup restored into the empty folder): the walk that finds it
        keeps the notes not there yet, so a note copied a moment later
        keeps its ids; once nothing has happened below the root for a
        while, a walk drops the notes still not there."""
        r, stored, before, away = self.indexed_then_emptied(
            {"one.md": "aardvark", "two.md": "bumblebee", "sub/three.md": "capybara"})
        # Long enough for the steps below on a loaded machine.
        d = self.quired(r, env=self.daemon_env(QUIRE_TEST_RESTORE_QUIET_MS="8000"))
        d.wait_line(r"Root .*/r is an empty folder, but notes were indexed from it")
        mark = d.mark()
        shutil.copy2(os.path.join(away, "one.md"), os.path.join(r, "one.md"))
        d.wait_line(r"Root .*/r is back", since=mark)
        self.settle()  # the walk of r has committed
        self.assertEqual(self.rows_under(stored), before)
        # A reload walks every root: one being restored goes on being so.
        reload_mark = d.mark()
        d.send(signal.SIGHUP)
        d.wait_line(r"Reconciled .*/r: ", since=reload_mark)
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        shutil.copy2(os.path.join(away, "two.md"), os.path.join(r, "two.md"))
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        self.assertEqual(d.matches(r"has been quiet since it came back", since=mark), [])

        d.wait_line(r"Root .*/r has been quiet since it came back", since=mark)
        self.wait_converged(r, self.control, daemon=d)
        self.assertEqual(self.rows_under(stored), [row for row in before if not row[1].endswith("/three.md")])
        self.assertEqual(self.hits("capybara"), set())
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertHealthy(self.db)

    def test_empty_root_without_notes_is_a_root(self):
        """The other half: an empty folder nothing was indexed from is a
        root like any other, watched from the start."""
        r = os.path.join(self.tmp, "r")
        os.mkdir(r)
        d = self.quired(r)
        self.settle()
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertEqual(d.matches(r"empty folder"), [])
        self.write("one.md", note("aardvark"), root=r)
        self.wait_converged(r, self.control, daemon=d)

    def test_root_emptied_while_watched_is_empty_after_a_reload(self):
        """quired saw every note go: on a reload the root is found empty
        on evidence, not taken for a drive that is not mounted."""
        r = os.path.join(self.tmp, "r")
        self.write("one.md", note("aardvark"), root=r)
        d = self.quired(r)
        self.wait_converged(r, self.control, daemon=d)
        os.unlink(os.path.join(r, "one.md"))
        mark = d.mark()
        d.send(signal.SIGHUP)
        self.wait_converged(r, self.control, daemon=d)
        self.assertEqual(self.rows_under(os.path.realpath(r)), [])
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])
        self.assertEqual(d.matches(r"empty folder", since=mark), [])


class AwaitedPathTests(RootsCase):
    """A root's configured path watched where it can change with no event
    on the root (docs/ROOTS.md): a missing root's first missing part, a
    symlink on the way. With a rescan interval of an hour, only an event
    can have quired find or follow it within the test's timeout."""

    def setUp(self):
        super().setUp()
        self.config = self.write_config("[quire]\nrescan_interval_s = 3600\n")

    def test_root_missing_at_start_is_found_when_it_is_made(self):
        notes = os.path.join(self.tmp, "later", "deeper", "notes")
        d = self.quired(notes)
        self.wait_converged(self.control, daemon=d)
        self.assertEqual(self.status()["daemon"]["missing_roots"], [notes])
        mark = d.mark()
        self.write("found.md", note("foundword"), root=notes)
        d.wait_line(r"Root .*/notes is back", since=mark)
        self.wait_converged(notes, self.control, daemon=d)
        self.assertEqual(self.hits("foundword"), {os.path.join(os.path.realpath(notes), "found.md")})
        self.assertEqual(self.status()["daemon"]["missing_roots"], [])

    def test_symlinked_root_follows_its_link(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        self.write("alpha.md", note("alphaword"), root=a)
        self.write("beta.md", note("betaword"), root=b)
        vault = os.path.join(self.tmp, "vault")
        os.symlink(a, vault)
        d = self.quired(vault)
        self.wait_converged(vault, self.control, daemon=d)
        self.assertEqual(self.hits("alphaword"), {os.path.join(os.path.realpath(a), "alpha.md")})
        self.assertEqual(self.hits("betaword"), set())

        # ln -sfn: a new link renamed over the old one.
        mark = d.mark()
        subprocess.run(["ln", "-sfn", b, vault], check=True)
        d.wait_line(r"Root .*/vault leads to .*/b now \(a symlink on its path changed\)", since=mark)
        self.wait_converged(b, self.control, daemon=d)
        self.assertEqual(self.hits("betaword"), {os.path.join(os.path.realpath(b), "beta.md")})
        self.assertEqual(self.rows_under(os.path.realpath(a)), [])
        # Watched there: a new note in b is indexed, one in a is not.
        self.write("beta2.md", note("betatwo"), root=b)
        self.write("alpha2.md", note("alphatwo"), root=a)
        self.settle()
        qt.wait_for(lambda: self.hits("betatwo"), what="a note in the new folder to be indexed")
        self.assertEqual(self.hits("alphatwo"), set())

        # The link removed: missing, its notes gone; made again: back.
        mark = d.mark()
        os.unlink(vault)
        d.wait_line(r"Root .*/vault leads to no folder with notes now", since=mark)
        qt.wait_for(lambda: self.status()["daemon"]["missing_roots"] == [vault], what="the root missing")
        qt.wait_for(lambda: not self.rows_under(os.path.realpath(b)), what="the notes of b to leave")
        os.symlink(a, vault)
        d.wait_line(r"Root .*/a is back", since=mark)
        self.wait_converged(vault, self.control, daemon=d)
        self.assertEqual(self.hits("alphatwo"), {os.path.join(os.path.realpath(a), "alpha2.md")})
        self.assertEqual(self.hits("betaword"), set())


    def test_link_retargeted_away_from_a_folder_of_another_root(self):
        """The link led into another root: that root keeps the folder's
        notes and goes on watching it."""
        vault, b = os.path.join(self.tmp, "vault"), os.path.join(self.tmp, "b")
        work = os.path.join(vault, "work")
        self.write("v.md", note("vaultword"), root=vault)
        self.write("w.md", note("workword"), root=work)
        self.write("b.md", note("betaword"), root=b)
        link = os.path.join(self.tmp, "link")
        os.symlink(work, link)
        d = self.quired(vault, link)
        self.wait_converged(vault, self.control, daemon=d)
        ids = self.rows_under(os.path.realpath(work))
        mark = d.mark()
        subprocess.run(["ln", "-sfn", b, link], check=True)
        d.wait_line(r"Root .*/link leads to .*/b now", since=mark)
        self.write("w2.md", note("worktwo"), root=work)
        self.wait_converged(vault, b, self.control, daemon=d)
        self.assertEqual([r for r in self.rows_under(os.path.realpath(work)) if r[1].endswith("/w.md")], ids)


class FsEventAwaitedPathTests(AwaitedPathTests):
    backend = "fs-event"


class UnconfiguredRootTests(RootsCase):
    """A root quired no longer configures takes its notes out of the index
    with it, on a reload or at the next start, and stays out: `quire
    search --sync` without a daemon walks the roots recorded in the
    database, and quired dropped the root's notes but not its record,
    which brought them back. Roots `quire index` recorded stay."""

    def config_with(self, *dirs):
        roots = "".join(f"[root]\npath = {p}\n" for p in (*dirs, self.control))
        return self.write_config("[quire]\nrescan_interval_s = 3600\n" + roots)

    def start(self):
        return self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])

    def recorded(self):
        return qt.query(self.db, "SELECT path, config FROM roots ORDER BY path")

    def test_root_dropped_on_a_reload_stays_out_of_a_sync_and_a_restart(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        self.write("one.md", note("aardvark"), root=a)
        self.write("two.md", note("bumblebee"), root=b)
        self.config = self.config_with(a, b)
        d = self.start()
        self.wait_converged(a, b, self.control, daemon=d)
        self.assertIn((os.path.realpath(b), self.config), self.recorded())
        mark = d.mark()
        self.config_with(a)
        d.send(signal.SIGHUP)
        d.wait_line(r"Root .*/b is no longer configured; dropping its notes", since=mark)
        self.wait_converged(a, self.control, daemon=d)
        qt.wait_for(lambda: os.path.realpath(b) not in {p for p, _ in self.recorded()}, what="b's record to go")
        d.stop()

        p = self.quire("search", "--sync", "--files", "bumblebee OR aardvark", expect=0)
        self.assertEqual(p.stdout.splitlines(), [os.path.join(os.path.realpath(a), "one.md")])
        d = self.start()
        self.wait_converged(a, self.control, daemon=d)
        self.assertEqual(self.hits("bumblebee"), set())

    def test_root_taken_out_while_quired_was_stopped_leaves_at_the_next_start(self):
        old, new, docs = (os.path.join(self.tmp, n) for n in ("old", "new", "docs"))
        self.write("a.md", note("oldvault"), root=old)
        self.write("b.md", note("newvault"), root=new)
        self.write("c.md", note("docsword"), root=docs)
        # A folder `quire index` indexed into the same namespace is not
        # quired's to drop.
        self.quire("index", docs)
        self.config = self.config_with(old)
        d = self.start()
        self.wait_converged(old, docs, self.control, daemon=d)
        d.stop()

        self.config_with(new)  # the vault moved, the config follows, then a restart
        d = self.start()
        d.wait_line(r"Root .*/old was watched before and is no longer configured; dropping its notes")
        self.wait_converged(new, docs, self.control, daemon=d)
        self.assertEqual(self.hits("oldvault"), set())
        self.assertEqual(self.hits("docsword"), {os.path.join(os.path.realpath(docs), "c.md")})
        self.assertEqual(self.recorded(), sorted([(os.path.realpath(new), self.config), (os.path.realpath(docs), None),
                                                  (os.path.realpath(self.control), self.config)]))
        self.assertHealthy(self.db)

    def test_a_run_on_dir_arguments_takes_nothing_away(self):
        """quired DIR for a moment (a test, a second folder) is not the
        configuration losing its roots: they keep their notes."""
        a, scratch = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "scratch")
        self.write("one.md", note("aardvark"), root=a)
        self.write("s.md", note("scratchword"), root=scratch)
        self.config = self.config_with(a)
        d = self.start()
        self.wait_converged(a, self.control, daemon=d)
        d.stop()
        d = self.start_quired(scratch, args=["--backend", self.backend, "-v", "--config", self.config])
        self.wait_converged(a, scratch, self.control, daemon=d)
        self.assertEqual(d.matches(r"no longer configured"), [])
        d.stop()
        # Back on the file, the folder of the DIR run is no root of its:
        # recorded without it, it is not the file's to drop either.
        d = self.start()
        self.wait_converged(a, scratch, self.control, daemon=d)
        self.assertEqual(self.hits("aardvark"), {os.path.join(os.path.realpath(a), "one.md")})

    def test_root_narrowed_to_a_folder_inside_keeps_that_folders_notes(self):
        """The root was notes, it is notes/work now: the notes outside work
        leave, those in work stay as they were (ids kept), and a folder of
        the old root that is a root now on its own keeps its ids too."""
        outer = os.path.join(self.tmp, "notes")
        work = os.path.join(outer, "work")
        self.write("top.md", note("topword"), root=outer)
        self.write("w.md", note("workword"), root=work)
        self.config = self.config_with(outer)
        d = self.start()
        self.wait_converged(outer, self.control, daemon=d)
        ids = self.rows_under(os.path.realpath(work))
        d.stop()
        self.config_with(work)
        d = self.start()
        d.wait_line(r"Root .*/notes was watched before and is no longer configured; dropping its notes")
        self.wait_converged(work, self.control, daemon=d)
        self.assertEqual(self.rows_under(os.path.realpath(work)), ids)
        self.assertEqual(self.hits("topword"), set())
        d.stop()
        # And the other way: widened to notes, work's rows stay as they are.
        self.config_with(outer)
        d = self.start()
        self.wait_converged(outer, self.control, daemon=d)
        self.assertEqual(self.rows_under(os.path.realpath(work)), ids)

    def test_symlinked_root_retargeted_while_quired_was_stopped(self):
        v1, v2, notes = (os.path.join(self.tmp, n) for n in ("v1", "v2", "notes"))
        self.write("a.md", note("firstvault"), root=v1)
        self.write("b.md", note("secondvault"), root=v2)
        os.symlink(v1, notes)
        self.config = self.config_with(notes)
        d = self.start()
        self.wait_converged(notes, self.control, daemon=d)
        d.stop()
        subprocess.run(["ln", "-sfn", v2, notes], check=True)
        d = self.start()
        self.wait_converged(notes, self.control, daemon=d)
        self.assertEqual(self.hits("firstvault"), set())

    def test_root_missing_behind_a_dangling_link_keeps_its_notes(self):
        """A vault on a drive, linked from the home folder: at a start with
        the drive away, the link leads nowhere and where it would lead is
        not known. The notes it had stay (docs/ROOTS.md)."""
        drive, link = os.path.join(self.tmp, "drive"), os.path.join(self.tmp, "notes")
        self.write("a.md", note("driveword"), root=drive)
        os.symlink(drive, link)
        self.config = self.config_with(link)
        d = self.start()
        self.wait_converged(link, self.control, daemon=d)
        stored = os.path.realpath(drive)
        before = self.rows_under(stored)
        d.stop()
        os.rename(drive, drive + ".away")
        d = self.start()
        d.wait_line(r"Root .*/drive was watched before and is no longer configured; its notes stay while a root "
                    r"of namespace default is missing")
        self.settle()
        self.assertEqual(self.rows_under(stored), before)
        mark = d.mark()
        os.rename(drive + ".away", drive)
        d.wait_line(r"Root .*/drive is back", since=mark)
        self.wait_converged(link, self.control, daemon=d)


class RecordedRulesTests(RootsCase):
    def quired_with_rules(self, n):
        """quired watching n (and the control root) with rules other than
        the built-in ones, n holding a note each rule lets in or keeps
        out: m.md, t.txt (extensions md, txt), drafts/d.md (ignore
        drafts/**), big.md (max_file_size 4K). Returns it once it has
        indexed every .txt note in n."""
        self.write("m.md", note("mdword"), root=n)
        self.write("t.txt", note("txtword"), root=n)
        self.write("drafts/d.md", note("draftword"), root=n)
        self.write("big.md", note("bigword") + "x" * 5000 + "\n", root=n)
        self.config = self.write_config("[quire]\nrescan_interval_s = 3600\nextensions = md, txt\n"
                                        "ignore = drafts/**\nmax_file_size = 4K\n"
                                        f"[root]\npath = {n}\n[root]\npath = {self.control}\n")
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
        n_txt = sum(f.endswith(".txt") for _, _, fs in os.walk(n) for f in fs)
        qt.wait_for(lambda: len({p for p in self.hits("txtword OR subtxt") if p.endswith(".txt")}) == n_txt,
                    what="the .txt notes to be indexed")
        return d

    def test_sync_without_quired_walks_its_roots_under_its_rules(self):
        """quire search --sync with no quired walked quired's roots under
        the built-in rules: the notes quired's `extensions` took in left
        the index, and those its `ignore` globs or size cap kept out came
        in, until quired's next reconcile undid it."""
        n = os.path.join(self.tmp, "n")
        d = self.quired_with_rules(n)
        d.stop()
        expected = {os.path.join(os.path.realpath(n), f) for f in ("m.md", "t.txt", "new.txt")}
        self.write("new.txt", note("newtxt"), root=n)
        self.write("drafts/d2.md", note("draftnew"), root=n)
        query = "mdword OR txtword OR newtxt OR draftword OR draftnew OR bigword"
        p = self.quire("search", "--sync", "--files", query, expect=0)
        self.assertEqual(set(p.stdout.splitlines()), expected)
        self.assertEqual(set(self.quire("search", "--files", query, expect=0).stdout.splitlines()), expected)

    def test_sync_without_quired_keeps_an_inner_root_under_its_own_rules(self):
        """A folder `quire index` recorded, with a root of quired's inside
        it: the outer walk took the inner root in under the built-in rules."""
        outer = os.path.join(self.tmp, "outer")
        sub = os.path.join(outer, "sub")
        self.write("o.md", note("outerword"), root=outer)
        self.write("t.txt", note("txtword"), root=sub)
        self.quire("index", outer)
        self.config = self.write_config("[quire]\nrescan_interval_s = 3600\nextensions = md, txt\n"
                                        f"[root]\npath = {sub}\n[root]\npath = {self.control}\n")
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
        qt.wait_for(lambda: self.hits("txtword"), what="the .txt note to be indexed")
        d.stop()
        self.write("o2.md", note("outertwo"), root=outer)
        self.write("o2.txt", note("outertxt"), root=outer)  # not under the built-in rules
        # New in the inner root: its own walk must still read it (the outer
        # root, of other rules, around it is no walk's to leave alone).
        self.write("t2.txt", note("txtnew"), root=sub)
        self.write("t3.md", note("mdnew"), root=sub)
        stored = os.path.realpath(outer)
        p = self.quire("search", "--sync", "--files", "outerword OR outertwo OR outertxt OR txtword OR txtnew OR mdnew",
                       expect=0)
        self.assertEqual(set(p.stdout.splitlines()),
                         {os.path.join(stored, f) for f in ("o.md", "o2.md", "sub/t.txt", "sub/t2.txt", "sub/t3.md")})


    def files_of(self, query):
        return set(self.quire("search", "--files", query, expect=0).stdout.splitlines())

    def test_index_of_a_quired_root_holds_it_to_quired_rules(self):
        """quire index of a folder quired watches walked it under the
        built-in rules: the .txt note quired's `extensions` let in left the
        index, the notes its `ignore` globs and size cap keep out came in,
        and quired, with nothing changed on disk, never set it right. A
        folder inside the root, and a file in it, go the same way; a
        folder around the root walks its own notes and leaves the root's to
        a walk under quired's rules."""
        outer = os.path.join(self.tmp, "outer")
        n = os.path.join(outer, "n")
        self.write("o.md", note("outerword"), root=outer)
        self.write("o.txt", note("outertxt"), root=outer)
        self.write("sub/s.txt", note("subtxt"), root=n)
        d = self.quired_with_rules(n)
        stored = os.path.realpath(n)
        query = "mdword OR txtword OR subtxt OR draftword OR bigword"
        quired_files = {os.path.join(stored, f) for f in ("m.md", "t.txt", "sub/s.txt")}
        self.assertEqual(self.files_of(query), quired_files)

        for args in ([n], [os.path.join(n, "sub")],
                     [os.path.join(n, "t.txt"), os.path.join(n, "drafts", "d.md"), os.path.join(n, "big.md")]):
            with self.subTest(args=args):
                summary = self.index(*args, expect=None)
                self.assertEqual((summary["new"], summary["removed"]), (0, 0))
                self.assertEqual(self.files_of(query), quired_files)

        # Around it: its own notes under the built-in rules (no .txt), the
        # root's under quired's, not read by the outer walk at all (the
        # draft never came in to leave again).
        summary = self.index(outer)
        self.assertEqual((summary["new"], summary["removed"]), (1, 0))
        self.assertEqual(self.files_of(query + " OR outerword OR outertxt"),
                         quired_files | {os.path.join(os.path.realpath(outer), "o.md")})
        p = self.quire("status", expect=0)
        self.assertIn("current", p.stdout)
        self.assertEqual(d.stop()[0], 0, d.log())

        # The root gone while quired is stopped: the walk around it finds
        # its notes gone (it failed, "a directory vanished", every time).
        shutil.rmtree(n)
        summary = self.index(outer)
        self.assertEqual((summary["new"], summary["removed"]), (0, 3))
        self.assertEqual(self.files_of(query + " OR outerword"), {os.path.join(os.path.realpath(outer), "o.md")})

    def test_index_around_nested_quired_roots_reads_each_note_once(self):
        """Two roots of quired's, one inside the other (same rules), inside
        a folder quire index walks: both were walked whole, the inner one
        twice, and its notes counted twice."""
        outer = os.path.join(self.tmp, "outer")
        n = os.path.join(outer, "n")
        self.write("s.md", note("subword"), root=os.path.join(n, "sub"))
        self.write("m.md", note("mdword"), root=n)
        self.write("o.md", note("outerword"), root=outer)
        self.config = self.write_config("[quire]\nrescan_interval_s = 3600\nextensions = md, txt\n"
                                        f"[root]\npath = {n}\n[root]\npath = {os.path.join(n, 'sub')}\n"
                                        f"[root]\npath = {self.control}\n")
        d = self.start_quired(args=["--backend", self.backend, "-v", "--config", self.config])
        qt.wait_for(lambda: self.hits("subword"), what="the inner root's note to be indexed")
        d.stop()
        summary = self.index(outer)
        self.assertEqual(summary["files"], 3)

if __name__ == "__main__":
    qt.main()
