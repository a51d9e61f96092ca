r"""Is an answer well-formed math? A parser that repairs broken input can turn a malformed answer
into the gold's value (math-verify reads `\frac(1)(2)` as 1/2), so the answer is checked first:
malformed answers are not credited, and a malformed gold makes a row unscorable (None).

Malformed: unbalanced `{}` (escaped `\{ \}` aside), unbalanced brackets ( `(`/`[` against
`)`/`]`, so intervals like `[0, 1)` pass), unbalanced `\left`/`\right`, a command that takes
braced arguments given round brackets or an empty or missing argument (`\frac(1)(2)`,
`\sqrt()`, `\frac{1}{}`, `\frac{1}`), a trailing operator or backslash (`3+`, `2\`), and nesting
deeper than `MAX_DEPTH` (an adversarial bomb, not an answer).
"""

from __future__ import annotations

import re

MAX_DEPTH = 50
_ARGS = {"frac": 2, "dfrac": 2, "tfrac": 2, "binom": 2, "sqrt": 1, "boxed": 1, "text": 1, "mathrm": 1}
_COMMAND = re.compile(r"\\([a-zA-Z]+)")


def problem(text: str) -> str | None:
    r"""Why `text` is malformed, or None when it is well-formed.

    >>> problem(r"\frac{1}{2}"), problem("[0, 1)"), problem(r"\frac(1)(2)"), problem(r"\frac{1}{2")
    (None, None, 'round brackets after \\frac', 'unbalanced braces')
    >>> problem("3+"), problem(r"\sqrt{}"), problem(r"\frac12")
    ('ends with an operator', 'empty argument of \\sqrt', None)
    """
    t = text.strip()
    plain = t.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in plain:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return "unbalanced braces"
        if depth > MAX_DEPTH:
            return "nested too deep"
    if depth:
        return "unbalanced braces"
    bare = re.sub(r"\\left.|\\right.", "", plain)
    if bare.count("(") + bare.count("[") != bare.count(")") + bare.count("]"):
        return "unbalanced brackets"
    if len(re.findall(r"\\left\b", t)) != len(re.findall(r"\\right\b", t)):
        return "unbalanced \\left / \\right"
    if re.search(r"(?<!\\)[-+*/^=]\s*$", t) or t.endswith("\\"):
        return "ends with an operator"
    return _arguments(plain)


def _arguments(t: str) -> str | None:
    for m in _COMMAND.finditer(t):
        name = m.group(1)
        if name not in _ARGS:
            continue
        i = m.end()
        for _ in range(_ARGS[name]):
            while i < len(t) and t[i] == " ":
                i += 1
            if i < len(t) and name == "sqrt" and t[i] == "[":  # \sqrt[n]{x}
                i = t.find("]", i) + 1 or len(t)
                while i < len(t) and t[i] == " ":
                    i += 1
            if i >= len(t):
                return f"missing argument of \\{name}"
            if t[i] == "(":
                return f"round brackets after \\{name}"
            if t[i] != "{":
                i += 1  # one-token argument: \frac12, \sqrt2
                continue
            end = _closing(t, i)
            if not t[i + 1 : end].strip():
                return f"empty argument of \\{name}"
            i = end + 1
    return None


def _closing(t: str, i: int) -> int:
    depth = 0
    for j in range(i, len(t)):
        depth += (t[j] == "{") - (t[j] == "}")
        if depth == 0:
            return j
    return len(t) - 1
