"""Helpers shared by bench/run and bench/daemon: the release build, timing
child processes, and reading a running process's counters from /proc.
Standard library only; the benchmarks run on demand, never in the tests.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "tldr-pages.tar.xz")
BUILD = os.path.join(ROOT, "build-bench")


def build():
    """Paths of the release binaries, built in build-bench/. On a machine
    without the build tools or libraries, scripts/install-deps installs
    what is missing first, as the README's commands do."""
    if not all(shutil.which(tool) for tool in ("meson", "ninja", "cc", "pkg-config")):
        print("bench: installing the build dependencies with scripts/install-deps", file=sys.stderr)
        subprocess.run([os.path.join(ROOT, "scripts", "install-deps")], check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        subprocess.run(["meson", "setup", BUILD, ROOT, "--buildtype=release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", BUILD], check=True, stdout=subprocess.DEVNULL)
    return {
        "quire": os.path.join(BUILD, "cli", "quire"),
        "quired": os.path.join(BUILD, "daemon", "quired"),
        "naive": os.path.join(BUILD, "bench", "naive-baseline"),
    }


def unpack_corpus(work):
    """Unpack the tldr corpus into work/ and read it once, so that every
    measured run reads it from the page cache. Returns the tree's path."""
    subprocess.run(["tar", "-xJf", CORPUS, "-C", work], check=True)
    tree = os.path.join(work, "tldr")
    subprocess.run(f"find {tree} -type f -exec cat {{}} + > /dev/null", shell=True, check=True)
    return tree


def run_measured(argv, env=None):
    """Wall seconds and peak RSS (KiB) of one child process; a failure ends
    the benchmark with the child's stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    # Read stderr before reaping, so that a chatty child cannot block on a
    # full pipe; wait4() gives the child's own peak RSS.
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed: {err.strip()}")
    return wall, usage.ru_maxrss


def remove_db(path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def summary(values, unit="s", scale=1.0, digits=3):
    """min / median / max of values."""
    v = sorted(x * scale for x in values)
    return f"{v[0]:.{digits}f} / {statistics.median(v):.{digits}f} / {v[-1]:.{digits}f} {unit}"


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def proc_counters(pid):
    """Context switches (each one a wakeup) summed over every thread of pid,
    and its CPU time in seconds."""
    switches = 0
    # The main thread is one of the tasks; threads that sleep on a
    # condition variable or a timeout count as much as the main loop.
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except FileNotFoundError:
            pass  # the thread ended while we looked
    return switches, cpu_seconds(pid)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def status_kib(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status (VmRSS, VmHWM) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_for_log(path, needle, timeout, proc):
    """Wait until the log file path holds needle, while proc runs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            if needle in f.read():
                return
        if proc.poll() is not None:
            sys.exit(f"bench: {proc.args[0]} exited with {proc.returncode} before {needle!r}; see {path}")
        time.sleep(0.05)
    sys.exit(f"bench: {proc.args[0]} did not log {needle!r} within {timeout} s")


def wait_for_quiet(pid, timeout, quiet=2.0):
    """Wait until pid has used no CPU time for quiet seconds: a watcher has
    finished its start-up work."""
    end = time.monotonic() + timeout
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    sys.exit(f"bench: process {pid} still busy after {timeout} s")
