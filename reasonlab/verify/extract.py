r"""Finding the final answer in a completion, in time linear in its length.

Only the text after the reasoning counts: when `</think>` appears, the answer must follow the
last one; an unclosed `<think>` means there is no answer yet; a completion with no think tags at
all is searched whole (models that do not think). In that region:
  1. the last closed `<answer>…</answer>` block (an opened, unclosed one: no answer);
  2. else the *last* of the answer markers, by position: a `\boxed{…}` / `\fbox{…}`, "the
     (final) answer is …", or a "Final Answer:" heading; a marker's phrase ends at the end of
     its sentence (or its `$…$`), prose after it is not part of the answer;
  3. else, when the region is nothing but one math expression (`$…$`, `\[…\]`, `\(…\)`, or a
     short text without words, or a number and one unit word: "28 percent"), that expression. A completion with prose and no marker has no
     answer: this is deliberate (its "answer" would be a guess at which number is meant).
A `\boxed{…}` that wraps a whole answer is unwrapped. `answer_candidates` also returns every
distinct box when there are several (two boxed roots, or an answer hedged across boxes): the
task decides from its gold whether a list is legitimate.

`lenient_answer` is the other half of lm-eval's strict-match / flexible-extract pair: the answer
wherever the completion gives it, tags ignored, falling back to the last number. Evaluations
report it beside the strict score so that a model which learns the format without the task (or
the task without the format) shows at a glance; rewards never use it.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s+is\b[:\s]*|final\s+answer\s*(?:\*\*)?\s*[:：]\s*", re.I)
_SENTENCE_END = re.compile(r"(?<!\d)\.(?!\d)|\n|;|,\s+(?=[A-Za-z]{3})|\s+(?:because|since|which|so|as)\b")
_DELIMITED = re.compile(r"\s*(?:\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\))", re.S)
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_FUNCTIONS = re.compile(r"\b(?:sqrt|exp|log|ln|sin|cos|tan|pi|inf|infty)\b")  # plain-text math, not prose
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
BARE_MAX = 64


def answer_region(completion: str) -> str | None:
    """The part of a completion where the final answer may stand.

    >>> answer_region("<think>a</think> b"), answer_region("<think>a <answer>1</answer>")
    (' b', None)
    """
    if "</think>" in completion:
        return completion.rsplit("</think>", 1)[1]
    if "<think>" in completion:
        return None
    return completion


def boxes(text: str) -> list[tuple[int, str | None]]:
    r"""(start, content) of every top-level `\boxed{…}` / `\fbox{…}`, nested braces included;
    content None for a box never closed (the last one then). Each character is scanned once:
    boxes inside a box are part of its content.

    >>> boxes(r"\boxed{1} then \boxed{\frac{a}{b}}")
    [(0, '1'), (15, '\\frac{a}{b}')]
    """
    out: list[tuple[int, str | None]] = []
    allowed = 0
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        if m.start() < allowed:
            continue
        depth, j = 0, m.end() - 1
        while j < len(text):
            depth += (text[j] == "{") - (text[j] == "}")
            if depth == 0:
                break
            j += 1
        if j >= len(text):
            out.append((m.start(), None))
            break
        out.append((m.start(), text[m.end() : j]))
        allowed = j + 1
    return out


def _last_block(region: str) -> tuple[bool, str | None]:
    """(an <answer> tag appears, the last closed block's content); linear, unlike a lazy regex
    over many unclosed tags."""
    last, i, opened = None, 0, False
    while True:
        start = region.find("<answer>", i)
        if start < 0:
            return opened, last
        opened = True
        end = region.find("</answer>", start + 8)
        if end < 0:
            return opened, None if last is None else last
        last, i = region[start + 8 : end], end + 9


def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{…}` (or `\fbox{…}`), with nested braces.

    >>> last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}}"), last_boxed(r"\boxed{1"), last_boxed("no")
    ('\\frac{a}{b}', None, None)
    """
    found = boxes(text)
    return found[-1][1] if found else None


def _last(matches):
    """The last of an iterator's items (None if empty), holding one at a time: a list of every
    "answer is" in a hostile 2M-character completion would make extraction superlinear."""
    last = None
    for last in matches:  # noqa: B007
        pass
    return last


def _phrase(rest: str) -> str | None:
    """The answer a marker introduces: its `$…$` (or `\\[…\\]`), else up to the sentence's end."""
    m = _DELIMITED.match(rest)
    if m:
        return next(g for g in m.groups() if g is not None).strip() or None
    cut = _SENTENCE_END.search(rest)
    text = (rest[: cut.start()] if cut else rest).strip().rstrip(".").strip()
    return text or None


def _bare(region: str) -> str | None:
    """The region itself when it is one math expression and nothing else."""
    t = region.strip()
    m = _DELIMITED.fullmatch(t)
    if m:
        return next(g for g in m.groups() if g is not None).strip() or None
    if not t or len(t) > BARE_MAX or "\n" in t:
        return None
    if not _WORD.search(_FUNCTIONS.sub("", re.sub(r"\\text\{[^}]*\}", "", t))):
        return t
    unit = re.fullmatch(r"(\$[^$]+\$|[-+\d.,/\\{}^ ]+?)\s+[a-zA-Z%]{1,12}", t)  # "28 percent", "12 cm"
    return t if unit else None


def _unbox(answer: str) -> str:
    answer = re.sub(r"^\s*\*\*(.*)\*\*\s*$", r"\1", answer, flags=re.S)  # markdown bold: **73**
    m = re.fullmatch(r"\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*", answer, re.S)
    return m.group(1).strip() if m and last_boxed(answer) == m.group(1) else answer.strip()


def _final(completion: str) -> tuple[str | None, list[str]]:
    """(the final answer, every distinct box when that answer is a box among several)."""
    region = answer_region(completion)
    if region is None:
        return None, []
    opened, block = _last_block(region)
    if opened:  # the answer tags decide; an opened, never closed one means no answer
        return (_unbox(block), [_unbox(block)]) if block is not None else (None, [])
    found = boxes(region)
    marker = _last(_MARKER.finditer(region))
    if marker is not None and marker.start() > (found[-1][0] if found else -1):
        answer = _phrase(region[marker.end() :])
        return (_unbox(answer), [_unbox(answer)]) if answer else (None, [])
    if found:
        last = found[-1][1]
        if last is None:
            return None, []
        distinct = list(dict.fromkeys(" ".join(c.split()) for _, c in found if c is not None))
        return last.strip(), distinct
    bare = _bare(region)
    return (bare, [bare]) if bare else (None, [])


def answer_candidates(completion: str) -> list[str]:
    r"""The final answer, or every distinct boxed value when the answer is a box among several.

    >>> answer_candidates(r"roots \boxed{2} and \boxed{3}"), answer_candidates(r"\boxed{3}, so \boxed{3}")
    (['2', '3'], ['3'])
    """
    return _final(completion)[1]


def extract_answer(completion: str) -> str | None:
    r"""The final answer text, or None when there is none (the last box when there are several).

    >>> extract_answer("<think>2+2=4</think><answer> 4 </answer>")
    '4'
    >>> extract_answer(r"so \boxed{7}."), extract_answer("The answer is 12."), extract_answer("<answer>3")
    ('7', '12', None)
    >>> extract_answer(r"\boxed{3} is wrong; the final answer is 4, because 2+2."), extract_answer("$42$")
    ('4', '42')
    """
    return _final(completion)[0]


def lenient_answer(completion: str) -> str | None:
    r"""The answer wherever the completion gives it: think tags ignored, the last closed
    `<answer>` block, else the last box or "the answer is" phrase (as `extract_answer` reads
    them), else the last number in the text (commas of thousands dropped).

    >>> lenient_answer(r"<think>5*7 = 35, plus 2 is \boxed{37}"), lenient_answer("<think>so 41</think><answer>")
    ('37', '41')
    >>> lenient_answer("Total: 1,250 apples, minus 3/4 of them"), lenient_answer("no digits here")
    ('3/4', None)
    >>> lenient_answer("<think>x</think><answer>12</answer> or 13")
    '12'
    >>> lenient_answer(r"<think>x = \boxed{3}. Hmm, the answer is 4 because 1+3 = 4, not 3")
    '4'
    """
    text = re.sub(r"</?think>", "\n", completion)
    _, block = _last_block(text)
    if block is not None and block.strip():
        return _unbox(block)
    text = re.sub(r"</?answer>", "\n", text)
    found = [(start, c) for start, c in boxes(text) if c and c.strip()]
    marker = _last(_MARKER.finditer(text))
    phrase = _phrase(text[marker.end() :]) if marker else None
    if phrase and (not found or marker.start() > found[-1][0]):
        return _unbox(phrase)
    if found:
        return found[-1][1].strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "").replace(" ", "") if numbers else None
