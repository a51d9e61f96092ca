r"""Exact values first: numbers written as integers, decimals, fractions, powers, factorials or in
scientific notation are parsed here to exact rationals and compared with integer arithmetic, so
two distinct exact values never compare equal because they are close (math-verify falls back to
a numeric comparison with a tolerance, under which 1/2^60 "equals" 1/2^61).

Grammar (the whole answer must match, after `normalise`; anything else returns None and goes to
math-verify):
    value   := sign? term (("*" | "\cdot" | "\times") term)*   (a product, e.g. 1.5\times10^{3})
    term    := atom ("^" exponent)? "!"?
    atom    := integer | decimal | a/b | \frac{a}{b} | \dfrac | \tfrac | "(" value ")"
Limits keep every check small: exponents |e| ≤ 10_000 with at most `MAX_DIGITS` digits in the
result, factorials up to 3_000!; a larger power or factorial is not parsed here (math-verify, under
its time bound, decides it).

Tolerance: only a number *written* with a decimal point is an approximation, and only then is
there a tolerance, relative: |p − g| ≤ `REL_TOL`·|g| with REL_TOL = 1e-6 (exact when g = 0).
One exception makes rounded golds usable: an exact answer whose decimal expansion never ends
(1/3, 2/7) matches a decimal gold it rounds to at the gold's written places (gold 0.3333 accepts
1/3, not 0.333, and a terminating 5001/10000 must equal it). Otherwise equality is exact.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

REL_TOL = Fraction(1, 10**6)
MAX_DIGITS = 10_000
MAX_FACTORIAL = 3_000
_SEPARATOR = re.compile(r"\{,\}|\\,|\\ |,| ")
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\{,\}|\\,|\\ |,| )\d{3})+(?![\d])")
_TOKEN = re.compile(r"\s*(\\frac|\\dfrac|\\tfrac|\\cdot|\\times|\d+\.\d*|\.\d+|\d+|[-+*/^!(){}eE])")


@dataclass(frozen=True)
class Exact:
    value: Fraction
    approximate: bool  #: written with a decimal point: compared with a tolerance
    places: int = 0  #: decimal places written (of the last decimal in the text)


def normalise(text: str) -> str:
    r"""Surface forms that mean the same number: thousands separators (`1,000`, `1\,000`,
    `1{,}000`, `1 000`: groups of exactly three digits), `\left( \right)`, `$` and `\$`, `\!`.

    >>> normalise(r"1{,}000"), normalise("1 000 000"), normalise(r"\$ 5"), normalise(r"-\left(3\right)")
    ('1000', '1000000', '5', '-(3)')
    >>> normalise("3, 4"), normalise("12,34")
    ('3, 4', '12,34')
    """
    t = text.replace("\\$", "").replace("$", "").replace("\\!", "").replace("\u2212", "-")
    t = re.sub(r"\\left|\\right", "", t)
    t = _GROUPED.sub(lambda m: _SEPARATOR.sub("", m.group(0)), t)
    return t.replace("\\,", " ").strip()


class _Parser:
    def __init__(self, text: str):
        self.tokens = _TOKEN.findall(text)
        self.ok = "".join(self.tokens).replace(" ", "") == re.sub(r"\s+", "", text)
        self.i = 0
        self.approximate = False
        self.places = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def value(self) -> Fraction:
        sign = -1 if self.peek() == "-" else 1
        if self.peek() in ("-", "+"):
            self.take()
        v = self.term()
        while self.peek() in ("*", "\\cdot", "\\times", "/"):
            op = self.take()
            rhs = self.term()
            if op == "/":
                if rhs == 0:
                    raise ValueError("division by zero")
                v /= rhs
            else:
                v *= rhs
        return sign * v

    def term(self) -> Fraction:
        v = self.atom()
        if self.peek() == "^":
            self.take()
            v = _power(v, self.exponent())
        if self.peek() == "!":
            self.take()
            if v.denominator != 1 or not 0 <= v <= MAX_FACTORIAL:
                raise ValueError("factorial out of range")
            v = Fraction(math.factorial(int(v)))
        return v

    def exponent(self) -> Fraction:
        if self.peek() == "{":
            self.take("{")
            e = self.value()
            self.take("}")
            return e
        tok = self.take()
        if not tok.isdigit():
            raise ValueError("exponent")
        return Fraction(int(tok))

    def atom(self) -> Fraction:
        tok = self.take()
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            if self.peek() is not None and re.fullmatch(r"\d\d", self.peek()):  # \frac12 is LaTeX for 1/2
                digits = self.take()
                num, den = Fraction(int(digits[0])), Fraction(int(digits[1]))
            else:
                num, den = self._braced(), self._braced()
            if den == 0:
                raise ValueError("division by zero")
            return num / den
        if tok == "(":
            v = self.value()
            self.take(")")
            return v
        if re.fullmatch(r"\d+\.\d*|\.\d+|\d+", tok):
            if "." in tok:
                self.approximate, self.places = True, len(tok.split(".")[1])
            return self._scientific(Fraction(tok))
        raise ValueError(f"unexpected {tok!r}")

    def _scientific(self, mantissa: Fraction) -> Fraction:
        """`1.5e3`, `2E-4`: a mantissa times a power of ten."""
        if self.peek() not in ("e", "E"):
            return mantissa
        self.take()
        sign = -1 if self.peek() == "-" else 1
        if self.peek() in ("-", "+"):
            self.take()
        digits = self.take()
        if not digits.isdigit():
            raise ValueError("exponent")
        return mantissa * _power(Fraction(10), Fraction(sign * int(digits)))

    def _braced(self) -> Fraction:
        self.take("{")
        v = self.value()
        self.take("}")
        return v


def _power(base: Fraction, e: Fraction) -> Fraction:
    if e.denominator != 1 or abs(e) > 10_000:
        raise ValueError("exponent out of range")
    if base not in (0, 1, -1):
        size = abs(int(e)) * max(math.log10(abs(base.numerator) or 1), math.log10(base.denominator), 1e-9)
        if size > MAX_DIGITS:
            raise ValueError("power too large")
    if base == 0 and e < 0:
        raise ValueError("division by zero")
    return base ** int(e)


def parse_exact(text: str) -> Exact | None:
    r"""The exact value of a plain number, or None when `text` is anything else.

    >>> [parse_exact(t).value for t in (r"\frac{1}{2}", "2^{10}", "5!")], parse_exact("x+1")
    ([Fraction(1, 2), Fraction(1024, 1), Fraction(120, 1)], None)
    >>> parse_exact("1.5\\times10^{3}").value, parse_exact("-3/4").value, parse_exact("1,000").value
    (Fraction(1500, 1), Fraction(-3, 4), Fraction(1000, 1))
    """
    t = normalise(text)
    if not t or len(t) > 2000:
        return None
    p = _Parser(t)
    if not p.ok:
        return None
    try:
        v = p.value()
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if p.peek() is not None:
        return None
    plain_decimal = p.approximate and len(p.tokens) <= 2  # "0.3333" or "-0.3333": places mean precision
    return Exact(v, p.approximate, p.places if plain_decimal else 0)


def exact_equal(pred: Exact, gold: Exact) -> bool:
    """Exact equality, or the tolerance of the module docstring when a side is a decimal.

    >>> e = lambda a, b: exact_equal(parse_exact(a), parse_exact(b))
    >>> e("2^{-60}", "2^{-61}"), e("0.5", "1/2"), e("1/3", "0.3333"), e("0.333", "1/3"), e("0.0000001", "0")
    (False, True, True, False, False)
    >>> e("5001/10000", "0.5"), e("0.5001", "0.5"), e("0.50", "0.5"), e("2/3", "0.6667")
    (False, False, True, True)
    """
    if not (pred.approximate or gold.approximate) or gold.value == 0:
        return pred.value == gold.value
    if gold.places and not pred.approximate and not _terminates(pred.value):
        return abs(pred.value - gold.value) <= Fraction(1, 2 * 10**gold.places)
    return abs(pred.value - gold.value) <= REL_TOL * abs(gold.value)


def _terminates(v: Fraction) -> bool:
    """The decimal expansion ends: the denominator has no prime factors but 2 and 5."""
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1
