#!/usr/bin/env python3
"""quire search: filters, output formats, stale hits and the FTS5 query
syntax, on small trees written by each test."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402


class SearchTestCase(qt.QuireTestCase):
    """self.notes: a notes folder; self.root: its realpath, the prefix of
    every source_file."""

    def setUp(self):
        super().setUp()
        self.notes = os.path.join(self.tmp, "notes")
        os.mkdir(self.notes)
        self.root = os.path.realpath(self.notes)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def json_lines(self, *args):
        """quire search --json ARGS, each line parsed; the lines must be
        valid UTF-8 JSON."""
        p = self.quire("search", "--json", *args, expect=0, text=False)
        return [json.loads(line.decode("utf-8")) for line in p.stdout.splitlines()]


class FileNameTests(SearchTestCase):
    def test_json_stays_valid_utf8_for_a_file_name_that_is_not(self):
        self.write(b"caf\xe9.md".decode("utf-8", "surrogateescape"), "# Menu\n\nbaguetteword here\n")
        self.index(self.notes)
        hits = self.json_lines("baguetteword")
        self.assertEqual(len(hits), 1)
        # The ill-formed byte is one U+FFFD, as the contract's text rule does.
        self.assertEqual(hits[0]["source_file"], self.path("caf\ufffd.md"))


if __name__ == "__main__":
    qt.main()
