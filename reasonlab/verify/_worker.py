"""The math-verify worker process: one JSON request per stdin line, one JSON reply per line.

It runs as `python -m reasonlab.verify._worker` (not multiprocessing), so it works the same when
the caller is a thread, a daemon process or a script without a `__main__` guard. The parent
kills it when a check overruns its bound (`verify.mathcheck`).
"""

from __future__ import annotations

import json
import sys


def _parse(text: str):
    from math_verify import parse

    wrapped = text if ("$" in text or "\\(" in text or "\\[" in text) else f"${text}$"
    found = parse(wrapped, parsing_timeout=None)
    return found or parse(text, parsing_timeout=None)


def check(pred: str, gold: str):
    from math_verify import verify

    gold_parsed = _parse(gold)
    if not gold_parsed:
        return None
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def main() -> None:
    import math_verify  # noqa: F401  (import before announcing readiness)

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            result = check(req["pred"], req["gold"])
        except Exception:
            result = False
        sys.stdout.write(json.dumps({"ok": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
