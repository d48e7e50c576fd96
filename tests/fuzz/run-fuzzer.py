#!/usr/bin/env python3
"""Run one libFuzzer target for a bounded time, as a test of the fuzz suite.

    run-fuzzer.py BINARY DICT ARTIFACT_DIR SEED_DIR...

The seed directories are only read: what the fuzzer finds new goes to a
temporary directory, removed afterwards. A crash, leak, timeout or broken
invariant fails the test (libFuzzer's own exit codes are 77 and 70, and
meson would read 77 as "skipped"), and the input that caused it is kept
in ARTIFACT_DIR, to be added to tests/fuzz/corpus/ once the bug is fixed.
QUIRE_FUZZ_SECONDS (default 30) is how long to fuzz.
"""

import os
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    binary, dictionary, artifacts, *seeds = sys.argv[1:]
    seconds = int(os.environ.get("QUIRE_FUZZ_SECONDS", "30"))
    name = os.path.basename(binary)
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"quire-{name}-")
    try:
        argv = [binary,
                f"-max_total_time={seconds}",
                # An input that takes this long is a finding (quadratic
                # parsing), not a slow machine.
                "-timeout=25",
                "-rss_limit_mb=2048",
                f"-dict={dictionary}",
                f"-artifact_prefix={os.path.join(artifacts, name)}-",
                "-print_final_stats=1",
                work, *seeds]
        print(" ".join(argv), flush=True)
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
        if rc != 0:
            found = sorted(os.path.join(artifacts, f) for f in os.listdir(artifacts) if f.startswith(name + "-"))
            print(f"{name} failed (exit status {rc}); inputs kept: {' '.join(found) or 'none'}", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
