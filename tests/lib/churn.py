"""Random churn of a notes tree for the stress tests: rewrites, appends,
new notes, renames (also over an existing note), deletes, and directory
creations, renames and removals, driven by a seeded random.Random so that
a failing run can be replayed. It remembers, for every note it wrote,
the unique word its last write put there (which must be searchable once
the index has caught up) and the words of the versions it replaced
(which must not be). Standard library only."""

import os
import shutil
import threading


class Churn:
    """Changes below root, one step() at a time or on a thread (start(),
    stop()). Notes of the tree as it was are fair game too. Every word it
    writes is 'qz' + a counter in base 36: one FTS5 token, and one that
    no path below root holds (FTS5 indexes source_file too)."""

    OPS = (
        # (name, weight)
        ("rewrite", 30),
        ("append", 15),
        ("create", 15),
        ("rename", 10),
        ("rename_over", 3),
        ("delete", 10),
        ("mkdir", 4),
        ("rename_dir", 4),
        ("rmdir", 2),
    )

    def __init__(self, root, rng, pause=0.0):
        self.root = root
        self.rng = rng
        self.pause = pause
        self.counter = 0
        self.counts = {name: 0 for name, _ in self.OPS}
        self.notes = []  # paths of notes that exist (list for random picks)
        self.index_of = {}
        self.sizes = {}  # path -> sizes its versions had (see _write)
        self.last_word = {}  # path -> the word its last write put there
        self.dead_words = set()  # words of versions that are gone
        self.dirs = []  # directories made by mkdir, below root/churn
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith(".md") and not f.startswith("."):
                    self._add(os.path.join(dirpath, f))
        self.churn_dir = os.path.join(root, "churn")
        os.makedirs(self.churn_dir, exist_ok=True)
        self._names, self._weights = zip(*self.OPS)
        self._thread = None
        self._stop = threading.Event()
        self.error = None

    # --- bookkeeping

    def _add(self, path):
        self.index_of[path] = len(self.notes)
        self.notes.append(path)

    def _remove(self, path):
        i = self.index_of.pop(path)
        last = self.notes.pop()
        if i < len(self.notes):
            self.notes[i] = last
            self.index_of[last] = i
        if path in self.last_word:
            self.dead_words.add(self.last_word.pop(path))
        self.sizes.pop(path, None)

    def _move(self, old, new):
        if new in self.index_of:
            self._remove(new)
        i = self.index_of.pop(old)
        self.notes[i] = new
        self.index_of[new] = i
        if old in self.last_word:
            self.last_word[new] = self.last_word.pop(old)
        if old in self.sizes:
            self.sizes[new] = self.sizes.pop(old)

    def _word(self):
        self.counter += 1
        n, digits = self.counter, ""
        while n:
            n, d = divmod(n, 36)
            digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
        return "qz" + digits

    def _text(self, word):
        """A note big enough to be more than one chunk now and then."""
        n_sections = self.rng.randint(1, 4)
        parts = [f"# Note {word}\n\nThe word of this version is {word}.\n"]
        for i in range(n_sections):
            body = " ".join(self.rng.choice(("alpha", "beta", "gamma", "delta", "epsilon", word))
                            for _ in range(self.rng.randint(8, 60)))
            parts.append(f"\n## Part {i}\n\n{body}.\n")
        return "".join(parts)

    def _write(self, path, text, mode="w"):
        """Write so that the file's size differs from every size it had
        before: a rewrite within one mtime tick (ext4: a jiffy) that kept
        the size would look unchanged to a stat (the racy-clean limit in
        docs/STORAGE.md), which is not what these tests are about."""
        data = text.encode("utf-8")
        before = os.path.getsize(path) if mode == "a" and os.path.exists(path) else 0
        seen = self.sizes.setdefault(path, set())
        if not seen and os.path.exists(path):
            seen.add(os.path.getsize(path))
        while before + len(data) in seen:
            data += b" "
        with open(path, mode + "b") as f:
            f.write(data)
        seen.add(before + len(data))

    # --- the operations; each returns nothing and may do nothing

    def op_rewrite(self):
        if not self.notes:
            return self.op_create()
        path = self.rng.choice(self.notes)
        word = self._word()
        self._write(path, self._text(word))
        if path in self.last_word:
            self.dead_words.add(self.last_word[path])
        self.last_word[path] = word

    def op_append(self):
        if not self.notes:
            return self.op_create()
        path = self.rng.choice(self.notes)
        word = self._word()
        self._write(path, f"\n## Appended {word}\n\nAppended with the word {word}, and more text after it.\n",
                    mode="a")
        # The earlier word stays in the file: still searchable, not dead.
        self.last_word[path] = word

    def _new_path(self, directory=None):
        directory = directory or (self.rng.choice(self.dirs) if self.dirs and self.rng.random() < 0.5
                                  else self.churn_dir)
        return os.path.join(directory, f"n{self.counter + 1}-{self.rng.getrandbits(20):05x}.md")

    def op_create(self):
        path = self._new_path()
        word = self._word()
        self._write(path, self._text(word))
        self._add(path)
        self.last_word[path] = word

    def op_rename(self):
        if not self.notes:
            return
        old = self.rng.choice(self.notes)
        new = self._new_path(os.path.dirname(old) if self.rng.random() < 0.5 else None)
        os.rename(old, new)
        self._move(old, new)

    def op_rename_over(self):
        if len(self.notes) < 2:
            return
        old, new = self.rng.sample(self.notes, 2)
        os.rename(old, new)
        self._move(old, new)

    def op_delete(self):
        if not self.notes:
            return
        path = self.rng.choice(self.notes)
        os.unlink(path)
        self._remove(path)

    def op_mkdir(self):
        d = os.path.join(self.churn_dir, f"d{self.counter + 1}-{self.rng.getrandbits(20):05x}")
        os.mkdir(d)
        self.dirs.append(d)
        for _ in range(self.rng.randint(1, 5)):
            path = self._new_path(d)
            word = self._word()
            self._write(path, self._text(word))
            self._add(path)
            self.last_word[path] = word

    def op_rename_dir(self):
        """A churn directory, or now and then a whole directory of the
        corpus, moves to a new name."""
        corpus_dirs = sorted({os.path.dirname(p) for p in self.notes[:2000]
                              if not p.startswith(self.churn_dir + "/")})
        if corpus_dirs and (not self.dirs or self.rng.random() < 0.2):
            old = self.rng.choice(corpus_dirs)
            new = f"{old}-m{self.counter + 1}"
            self.counter += 1
        elif self.dirs:
            old = self.rng.choice(self.dirs)
            new = os.path.join(self.churn_dir, f"d{self.counter + 1}-{self.rng.getrandbits(20):05x}")
            self.counter += 1
            self.dirs[self.dirs.index(old)] = new
        else:
            return
        os.rename(old, new)
        prefix = old + "/"
        for path in [p for p in self.notes if p.startswith(prefix)]:
            self._move(path, new + path[len(old):])

    def op_rmdir(self):
        if not self.dirs:
            return
        d = self.dirs.pop(self.rng.randrange(len(self.dirs)))
        shutil.rmtree(d)
        prefix = d + "/"
        for path in [p for p in self.notes if p.startswith(prefix)]:
            self._remove(path)

    def step(self):
        name = self.rng.choices(self._names, self._weights)[0]
        getattr(self, "op_" + name)()
        self.counts[name] += 1

    @property
    def n_ops(self):
        return sum(self.counts.values())

    # --- on a thread

    def _run(self):
        try:
            while not self._stop.is_set():
                self.step()
                if self.pause:
                    self._stop.wait(self.pause)
        except BaseException as e:  # reported by stop()
            self.error = e

    def start(self):
        assert self._thread is None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="churn", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop the thread; raises what it failed with, if anything."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self.error:
            raise self.error
