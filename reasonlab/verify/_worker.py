r"""The math-verify worker process: one JSON request per stdin line, one JSON reply per line.

It runs as `python -m reasonlab.verify._worker` (not multiprocessing), so it works the same when
the caller is a thread, a daemon process or a script without a `__main__` guard. The parent
kills it when a check overruns its bound (`verify.mathcheck`).

A request is {"pred", "gold", "listy"}; the reply {"ok": true | false | null} (null: the gold
cannot be parsed). Beyond math-verify's own `verify`:
  - a prediction with several values (`listy` from the text, or a parsed set, tuple or interval)
    is right only when the gold has several values too (the list rule decided on the parsed gold);
  - when both sides are numbers and neither is written as a decimal, a True from math-verify
    (which may have come from its numeric tolerance) must survive an exact check: the difference,
    evaluated to 50 significant digits, is below 1e-40 of the gold (1/2004! is not 1/2006!);
  - `\mathrm{e}` is read as e (math-verify drops it: 1 − 1/e would equal 1 + 1/e), plain-text
    `pi`, `sqrt(x)`, `exp(x)` as their LaTeX.
"""

from __future__ import annotations

import json
import re
import sys

_DECIMAL = re.compile(r"\d\.\d|\.\d")
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\{,\}|\\,|\\ |,| )\d{3})+(?![\d])")


_PLAIN = [(re.compile(r"\\(?:mathrm|mathit|text)\{([a-zA-Z])\}"), r"\1"),  # \mathrm{e} is e, not dropped
          (re.compile(r"(?<![\\a-zA-Z])pi\b"), r"\\pi "),  # plain-text math: pi, sqrt(x), exp(x)
          (re.compile(r"(?<![\\a-zA-Z])sqrt\(([^()]*)\)"), r"\\sqrt{\1}"),
          (re.compile(r"(?<![\\a-zA-Z])exp\(([^()]*)\)"), r"e^{\1}")]


def prepare(text: str) -> str:
    r"""Text as math-verify should see it: one line (a multi-line gold from a file would parse to
    its last number), escaped dollars as currency (`\$5` is 5, not a delimiter), digit groups
    of three joined (`1 000` is 1000, not a product), and `$…$` added when there are no delimiters."""
    t = " ".join(text.split()).replace("\\$", "").replace("\u2212", "-")
    for pattern, repl in _PLAIN:
        t = pattern.sub(repl, t)
    t = _GROUPED.sub(lambda m: re.sub(r"\{,\}|\\,|\\ |,| ", "", m.group(0)), t)
    return t if ("$" in t or "\\(" in t or "\\[" in t) else f"${t}$"


def _parse(text: str):
    from math_verify import parse

    return parse(prepare(text), parsing_timeout=None) or parse(" ".join(text.split()), parsing_timeout=None)


def _multi(parsed) -> bool:
    """Several values: a set of two or more, a tuple, an interval or a union, an inequality (a
    set of values too), or `name = any of those` (the right-hand side counts)."""
    from sympy import And, Eq, FiniteSet, Interval, Or, Tuple, Union
    from sympy.core.relational import Relational

    expr = parsed[0]
    if isinstance(expr, Eq):
        expr = expr.rhs
    if isinstance(expr, FiniteSet):
        return len(expr) > 1
    return isinstance(expr, (Interval, Union, Tuple, list, tuple, And, Or, Relational))


def _exactly_equal(gold, pred) -> bool:
    import sympy

    g, p = gold[0], pred[0]
    if not (isinstance(g, sympy.Basic) and isinstance(p, sympy.Basic) and g.is_number and p.is_number):
        return True  # not two numbers: math-verify's symbolic verdict stands
    try:
        diff, scale = sympy.N(g - p, 50), sympy.N(g, 50)  # evaluated to 50 significant digits
        if not (diff.is_Number or diff.is_number) or diff.free_symbols or scale.free_symbols:
            return True  # not numerically evaluable: math-verify's verdict stands
        diff, scale = abs(diff), abs(scale)  # of evaluated numbers: cheap (Abs of an expression is not)
        return bool(diff <= sympy.Float(10, 50) ** -40 * scale) if scale != 0 else bool(diff == 0)
    except (TypeError, ValueError):
        return True


def check(pred: str, gold: str, listy: bool = False, gold_listy: bool = False):
    from math_verify import verify

    gold_parsed = _parse(gold)
    if not gold_parsed:
        return None
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return False
    if (listy or _multi(pred_parsed)) and not (gold_listy or _multi(gold_parsed)):
        return False
    if not verify(gold_parsed, pred_parsed, timeout_seconds=None):
        return False
    if _DECIMAL.search(pred) or _DECIMAL.search(gold):
        return True  # a decimal is an approximation: math-verify's tolerance applies
    return _exactly_equal(gold_parsed, pred_parsed)


def main() -> None:
    import math_verify  # noqa: F401  (import before announcing readiness)
    import sympy  # noqa: F401

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            result = check(req["pred"], req["gold"], req.get("listy", False), req.get("gold_listy", False))
        except Exception:
            result = False
        sys.stdout.write(json.dumps({"ok": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
