r"""Comparing a math answer with its gold: exact arithmetic first, math-verify under a hard bound.

`math_equal(pred, gold)`:
  1. malformed text (`wellformed.problem`) is never credited; a malformed gold gives None;
  2. answers that are plain numbers on both sides (integers, decimals, fractions, powers,
     factorials: `exact.parse_exact`) are compared exactly, in this process, in microseconds;
  3. sequences (`1, 3, 5, \ldots`) are compared as written, after spaces (math-verify reads
     only their first element); identical texts are equal;
  4. everything else goes to math-verify in a pool of worker processes (`_worker.py`).

Time: every call returns within `DEADLINE` (5 s) of wall time, from any thread or process.
math-verify's own timeout uses SIGALRM, which only works on the main thread and cannot interrupt
a long C-level computation (a huge power) that holds the GIL, so checks run in worker processes:
a check that overruns `TIMEOUT` is killed and counts as not correct. Two workers start with the
first check and more (up to `WORKERS`) when threads find them all busy, so one pathological
input delays no other check; a killed worker is
replaced in the background while the others (and a warm spare) keep serving, so the call after a
kill does not wait for sympy to import. A call that finds no worker free before its deadline (the
very first call on a heavily loaded machine, or every worker busy with pathological inputs)
returns False and is counted in `timeouts`; `warm()` starts the pool ahead of the first check.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import selectors
import subprocess
import sys
import threading
import time

from reasonlab.verify.exact import exact_equal, parse_exact
from reasonlab.verify.wellformed import problem

TIMEOUT = 2.0  # seconds one check may run in a worker
DEADLINE = 5.0  # seconds a call may take in all, waiting for a worker included
STARTUP_TIMEOUT = 120.0  # a worker's import of sympy + math-verify (slow on a loaded machine)
WORKERS = 4  # the pool's largest size (it grows on demand; idle workers cost memory, ~100 MB each)
WARM = 2  # workers started up front: one serves, one is the warm spare for the call after a kill
MARGIN = 0.4  # seconds of the deadline kept for killing an overrunning worker and returning
MAX_ANSWER_CHARS = 2000  # a longer "final answer" is not an answer
_SEQUENCE = re.compile(r"\\[lc]?dots|\.\.\.")  # 1, 3, 5, \ldots: compared as written
_LIST = re.compile(r"(\d\s*(,|;|\bor\b|\band\b)\s*-?\$?\d)", re.I)


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reasonlab.verify._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
        )
        self.buf = b""

    def wait_ready(self, timeout: float) -> bool:
        if self._readline(time.monotonic() + timeout) is None:
            self.kill()
            return False
        return True

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

    def call(self, pred: str, gold: str, listy: tuple[bool, bool], timeout: float) -> bool | None | str:
        """The check's result, or the string "timeout" when the worker overran (it is killed)."""
        try:
            req = {"pred": pred, "gold": gold, "listy": listy[0], "gold_listy": listy[1]}
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return "timeout"
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            self.kill()
            return "timeout"
        return json.loads(line)["ok"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class MathVerifyPool:
    """`size` workers shared by all threads; each call borrows an idle one."""

    def __init__(self, size: int = WORKERS, timeout: float = TIMEOUT, deadline: float = DEADLINE):
        self.size, self.timeout, self.deadline = size, timeout, deadline
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._started = False
        self._closed = False
        self._pending = 0  # workers being started by _grow
        self.timeouts = 0

    def warm(self) -> None:
        """Start the first workers (in the background) if they are not yet; more start when
        several threads check at once (`check`), up to `size`."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(min(WARM, self.size)):
            self._spawn()

    def _grow(self) -> None:
        """Every worker busy: start one more, up to `size` (a thread that asks meanwhile waits
        for whichever is free first)."""
        with self._lock:
            if self._closed or self._pending + len(self._live) >= self.size:
                return
            self._pending += 1
        self._spawn(counted=True)

    def _spawn(self, counted: bool = False) -> None:
        def start():
            w = _Worker()
            with self._lock:
                self._pending -= counted
                if self._closed:
                    w.kill()
                    return
                self._live.add(w)
            if w.wait_ready(STARTUP_TIMEOUT):
                self._idle.put(w)
            else:
                self._retire(w)
                if not self._closed:
                    self._spawn()

        threading.Thread(target=start, daemon=True).start()

    def _retire(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._live.discard(w)

    def check(self, pred: str, gold: str, listy: tuple[bool, bool] = (False, False)) -> bool | None:
        """math-verify's verdict under the bound; `listy`: (pred, gold) read as lists from their text."""
        self.warm()
        end = time.monotonic() + self.deadline - MARGIN
        if self._idle.empty():
            self._grow()
        try:
            w = self._idle.get(timeout=max(0.0, end - time.monotonic() - 0.05))
        except queue.Empty:
            self.timeouts += 1
            return False
        result = w.call(pred, gold, listy, max(0.05, min(self.timeout, end - time.monotonic())))
        if result == "timeout":
            self.timeouts += 1
            self._retire(w)
            self._spawn()  # the replacement imports in the background; the others keep serving
            return False
        self._idle.put(w)
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
        for w in live:
            w.kill()


_POOL: MathVerifyPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> MathVerifyPool:
    """The process-wide pool (created on first use, closed at exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = MathVerifyPool()
            atexit.register(_POOL.close)
    return _POOL


def warm() -> None:
    """Start the math-verify workers now, so the first check does not wait for their imports."""
    pool().warm()


def looks_like_list(text: str) -> bool:
    """Several candidate values ("3 or 4", "3; 4", "3, 4"), thousands separators aside.

    >>> looks_like_list("3 or 4"), looks_like_list("1,000"), looks_like_list(r"\\frac{1}{2}")
    (True, False, False)
    """
    t = re.sub(r"(?<!\d)(\d{1,3})((?:,\d{3})+)(?!\d)", lambda m: m.group(0).replace(",", ""), text)
    return bool(_LIST.search(t))


_CACHE: dict[tuple[str, str], bool | None] = {}
CACHE_SIZE = 65536


def math_equal(pred: str, gold: str) -> bool | None:
    """Whether `pred` equals `gold` mathematically; None when gold cannot be parsed (see the
    module docstring for the order of checks). Verdicts are cached, except those a timeout gave."""
    key = (pred, gold)
    if key in _CACHE:
        return _CACHE[key]
    before = pool().timeouts if _POOL is not None else 0
    result = _math_equal(pred, gold)
    if (_POOL.timeouts if _POOL is not None else 0) == before:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = result
    return result


def _math_equal(pred: str, gold: str) -> bool | None:
    if problem(gold) is not None or not gold.strip() or len(gold) > MAX_ANSWER_CHARS:
        return None
    g = parse_exact(gold)
    if not pred.strip() or problem(pred) is not None or len(pred) > MAX_ANSWER_CHARS:
        return False if g is not None or pool().check(gold, gold) is not None else None
    p = parse_exact(pred)
    if g is not None and p is not None:
        return exact_equal(p, g)
    if _SEQUENCE.search(pred) or _SEQUENCE.search(gold):  # a pattern, not a value: as written
        return _spaced(pred) == _spaced(gold)
    if _spaced(pred) == _spaced(gold) and pool().check(gold, gold) is not None:
        return True  # the same text (math-verify can fail to match `n=1, 2, 3` with itself)
    return pool().check(pred, gold, (looks_like_list(pred), looks_like_list(gold)))


def _spaced(t: str) -> str:
    return re.sub(r"\s+|\$", "", t)
