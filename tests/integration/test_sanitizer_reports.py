"""The sanitizer check every integration and stress test gets from
tests/lib/quiretest.py: a child process that reports a leak or undefined
behaviour fails the test, even when its exit status is the one the test
expected, or nobody looks at it. Shown with sanitizer-probe, a small
program built like quire that leaks or overflows on demand, run exactly as
the tests run quire. Registered only in sanitizer builds (b_sanitize)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import quiretest as qt  # noqa: E402

PROBE = os.environ.get("QUIRE_SANITIZER_PROBE", "")
SANITIZE = os.environ.get("QUIRE_SANITIZE", "none").split(",")


class SanitizerReportTests(qt.QuireTestCase):
    def setUp(self):
        super().setUp()
        if not os.access(PROBE, os.X_OK):
            self.fail(f"sanitizer-probe not found at {PROBE!r} (set $QUIRE_SANITIZER_PROBE)")

    def need(self, *sanitizers):
        if not any(s in SANITIZE for s in sanitizers):
            self.skipTest(f"this build has b_sanitize={','.join(SANITIZE)}, not {' or '.join(sanitizers)}")

    def forget_reports(self):
        """Drop what this test provoked on purpose, so that its own
        cleanup check passes; and show that it is then gone."""
        for path, _ in qt.sanitizer_reports(self.sanitizer_dir):
            os.unlink(path)
        self._stderr_seen.clear()
        self.assertEqual(self.sanitizer_findings(), [])

    def test_clean_run_passes(self):
        p = self.run_program([PROBE, "clean"], expect=0)
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.sanitizer_findings(), [])

    def test_leak_on_an_expected_error_path_fails_the_run(self):
        self.need("address", "leak")
        # Exit status 1 is what the test asks for; the leak still fails it.
        with self.assertRaises(AssertionError) as cm:
            self.run_program([PROBE, "leak"], expect=1)
        self.assertIn("LeakSanitizer: detected memory leaks", str(cm.exception))
        self.assertIn("sanitizer-probe.c", str(cm.exception))  # with its stack
        # The report is a file of the test's, not stderr, which holds
        # only what the program said itself.
        self.assertEqual(len(qt.sanitizer_reports(self.sanitizer_dir)), 1)
        self.forget_reports()

    def test_undefined_behaviour_fails_the_run(self):
        self.need("undefined")
        with self.assertRaises(AssertionError) as cm:
            self.run_program([PROBE, "overflow"])
        self.assertIn("runtime error: signed integer overflow", str(cm.exception))
        self.forget_reports()

    def test_unchecked_process_fails_the_test_in_cleanup(self):
        """A process whose exit status and output no one looks at (a
        daemon stopped in cleanup, a popen()ed quire) is caught by the
        check every test runs last."""
        self.need("address", "leak")
        subprocess.run([PROBE, "leak"], env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.need("undefined")
        p = qt._ScannedPopen([PROBE, "overflow"], self._record_stderr, env=self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.communicate(timeout=60)
        with self.assertRaises(AssertionError) as cm:
            self.assertNoSanitizerReports()
        self.assertIn("2 sanitizer report(s)", str(cm.exception))
        self.assertIn("LeakSanitizer", str(cm.exception))
        self.assertIn("runtime error", str(cm.exception))
        self.forget_reports()


if __name__ == "__main__":
    qt.main()
