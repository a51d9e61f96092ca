"""math-verify with a hard wall-clock bound per check, safe from any thread or process.

math-verify's own timeout uses SIGALRM, which only works on the main thread and cannot interrupt
a long C-level computation (a huge power) that holds the GIL. So every check runs in a separate
worker process; when a check overruns `timeout` seconds the worker is killed, the check counts
as not correct, and a fresh worker is started for the next call.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from functools import lru_cache

DEFAULT_TIMEOUT = 3.0  # seconds per check; the bound is 5
STARTUP_TIMEOUT = 60.0
_LIST = re.compile(r"(\d\s*(,|;|\bor\b|\band\b)\s*-?\$?\d)", re.I)


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reasonlab.verify._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self.buf = b""
        self.ready = False

    def _readline(self, deadline: float) -> bytes | None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None  # worker died
                self.buf += chunk
        finally:
            sel.close()
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def call(self, pred: str, gold: str, timeout: float) -> bool | None | str:
        """The check's result, or the string "timeout" when the worker overran and was killed."""
        if not self.ready:
            if self._readline(time.monotonic() + STARTUP_TIMEOUT) is None:
                self.kill()
                return "timeout"
            self.ready = True
        self.proc.stdin.write((json.dumps({"pred": pred, "gold": gold}) + "\n").encode())
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            self.kill()
            return "timeout"
        return json.loads(line)["ok"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class MathVerifyPool:
    """One lazily started worker, shared by all threads (calls are serialised by a lock)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self.timeouts = 0

    def check(self, pred: str, gold: str) -> bool | None:
        with self._lock:
            if self._worker is None or not self._worker.alive():
                self._worker = _Worker()
            try:
                result = self._worker.call(pred, gold, self.timeout)
            except (BrokenPipeError, OSError):
                self._worker.kill()
                result = "timeout"
            if result == "timeout":
                self.timeouts += 1
                self._worker = _Worker()  # warm up the replacement before the next call
                return False
            return result

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None


_POOL: MathVerifyPool | None = None


def pool() -> MathVerifyPool:
    """The process-wide pool (created on first use, closed at exit)."""
    global _POOL
    if _POOL is None:
        _POOL = MathVerifyPool()
        atexit.register(_POOL.close)
    return _POOL


def looks_like_list(text: str) -> bool:
    """Several candidate values ("3 or 4", "3; 4", "between 3 and 4"), thousands separators aside.

    >>> looks_like_list("3 or 4"), looks_like_list("1,000"), looks_like_list(r"\\frac{1}{2}")
    (True, False, False)
    """
    t = re.sub(r"(?<!\d)(\d{1,3})((?:,\d{3})+)(?!\d)", lambda m: m.group(0).replace(",", ""), text)
    return bool(_LIST.search(t))


@lru_cache(maxsize=65536)
def math_equal(pred: str, gold: str) -> bool | None:
    """Whether `pred` equals `gold` mathematically; None when gold cannot be parsed.

    A list of candidate answers never matches a single gold value (math-verify would accept
    "3 or 4" for 4).
    """
    if not pred.strip():
        return False if gold.strip() else None
    if looks_like_list(pred) and not looks_like_list(gold):
        result = pool().check(gold, gold)  # still report an unparseable gold as None
        return None if result is None else False
    return pool().check(pred, gold)
