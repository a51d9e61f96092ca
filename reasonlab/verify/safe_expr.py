"""A safe parser and evaluator for arithmetic expressions (countdown answers). Never `eval`.

Grammar: integers, + - * /, parentheses, unary minus. Division is exact (fractions), so
`7/2*2` is 7. Inputs are bounded in length and numbers in size, so no input can hang it.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_LEN = 200
MAX_DIGITS = 12
_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")


class ExprError(ValueError):
    """The text is not a well-formed arithmetic expression."""


def _tokenize(text: str) -> list[str]:
    text = text.replace("×", "*").replace("÷", "/").replace("x", "*").replace("−", "-")
    tokens: list[str] = []
    for num, op in _TOKEN.findall(text):
        if num:
            if len(num) > MAX_DIGITS:
                raise ExprError("number too long")
            tokens.append(num)
        elif op in "+-*/()":
            tokens.append(op)
        elif not op.isspace():
            raise ExprError(f"unexpected character {op!r}")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens, self.i, self.numbers = tokens, 0, []

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ExprError("unexpected end")
        self.i += 1
        return tok

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op, rhs = self.take(), self.unary()
            if op == "/" and rhs == 0:
                raise ExprError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def unary(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.atom()

    def atom(self) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise ExprError("missing )")
            return value
        if tok.isdigit():
            self.numbers.append(int(tok))
            return Fraction(int(tok))
        raise ExprError(f"unexpected {tok!r}")


def evaluate(text: str) -> tuple[Fraction, list[int]]:
    """Value of an expression and the numbers it uses, in order.

    >>> evaluate("(25 - 5) * 3 / 4")
    (Fraction(15, 1), [25, 5, 3, 4])
    >>> evaluate("__import__('os')")
    Traceback (most recent call last):
    ...
    reasonlab.verify.safe_expr.ExprError: unexpected character '_'
    """
    if len(text) > MAX_LEN:
        raise ExprError("expression too long")
    parser = _Parser(_tokenize(text))
    if not parser.tokens:
        raise ExprError("empty expression")
    value = parser.expr()
    if parser.peek() is not None:
        raise ExprError(f"unexpected {parser.peek()!r}")
    return value, parser.numbers
