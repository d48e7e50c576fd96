"""A stand-in for the service manager's end of sd_notify(3), for tests.

NotifyListener binds an AF_UNIX datagram socket in a temporary directory
(pass .path to the daemon as NOTIFY_SOCKET) and a thread records every
datagram with its arrival time (CLOCK_MONOTONIC, as time.monotonic()), the
time the kernel stamped it when it was sent (SO_TIMESTAMPNS, which stays
right when the listener thread is starved on a loaded machine) and the
sender's pid from SCM_CREDENTIALS, so a test can check what was said, in
what order, when, and by whom. Standard library only.
"""

import os
import socket
import struct
import tempfile
import threading
import time

_UCRED = struct.Struct("iII")  # pid, uid, gid
_TIMESPEC = struct.Struct("qq")  # tv_sec, tv_nsec
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python 3.11 lacks the name


class Message:
    """One datagram: .fields (the KEY=VALUE assignments, in order, as a
    dict), .raw (the text), .time (time.monotonic() at arrival), .sent
    (CLOCK_REALTIME seconds when the sender's sendmsg() queued it), .pid."""

    def __init__(self, raw, t, pid, sent=None):
        self.raw = raw
        self.time = t
        self.sent = sent if sent is not None else time.time()
        self.pid = pid
        self.fields = {}
        for line in raw.split("\n"):
            if line:
                key, _, value = line.partition("=")
                self.fields[key] = value

    def __contains__(self, key):
        return key in self.fields

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def __repr__(self):
        return f"<{self.time:.3f} pid {self.pid}: {self.raw!r}>"


class NotifyListener:
    def __init__(self, directory=None):
        self.dir = tempfile.mkdtemp(prefix="quire-notify-", dir=directory)
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.1)
        self._messages = []
        self._cond = threading.Condition()
        self._closed = False
        self._callbacks = []
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._closed:
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(_TIMESPEC.size))
            except socket.timeout:
                continue
            except OSError:
                break
            t = time.monotonic()
            pid = sent = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(payload[:_UCRED.size])[0]
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(payload[:_TIMESPEC.size])
                    sent = sec + nsec / 1e9
            msg = Message(data.decode("utf-8", "replace"), t, pid, sent)
            for cb in list(self._callbacks):
                cb(msg)
            with self._cond:
                self._messages.append(msg)
                self._cond.notify_all()

    def on_message(self, callback):
        """Call callback(message) on the listener thread as each one
        arrives, before it is recorded (so before wait() sees it)."""
        self._callbacks.append(callback)

    @property
    def messages(self):
        with self._cond:
            return list(self._messages)

    def mark(self):
        with self._cond:
            return len(self._messages)

    def having(self, key, since=0):
        return [m for m in self.messages[since:] if key in m]

    def wait(self, key, value=None, since=0, timeout=60.0):
        """The first message from index since on that assigns key (with
        value, if given): (index, message). Fails after timeout."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self._messages):
                    m = self._messages[i]
                    if key in m and (value is None or m[key] == value):
                        return i, m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    said = "\n".join(repr(m) for m in self._messages[-20:]) or "(nothing)"
                    raise AssertionError(f"timed out after {timeout:.0f} s waiting for "
                                         f"{key}={value if value is not None else '*'}; last said:\n{said}")
                self._cond.wait(left)

    def close(self):
        self._closed = True
        self._thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


def monotonic_usec():
    """CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC=."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
