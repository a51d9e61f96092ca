r"""Finding the final answer in a completion.

Order: the last closed `<answer>…</answer>` block, else the last `\boxed{…}`, else the text after
the last "the answer is". Only the text after the reasoning counts: when `</think>` appears, the
answer must follow the last one; an unclosed `<think>` means there is no answer yet; a completion
with no think tags at all is searched whole (models that do not think).
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_THE_ANSWER_IS = re.compile(r"the (?:final )?answer is[:\s]*(.+)", re.I | re.S)


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


def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{…}` (or `\fbox{…}`), with nested braces.

    >>> last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}}"), last_boxed(r"\boxed{1"), last_boxed("no")
    ('\\frac{a}{b}', None, None)
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def extract_answer(completion: str) -> str | None:
    r"""The final answer text, or None when there is none.

    >>> extract_answer("<think>2+2=4</think><answer> 4 </answer>")
    '4'
    >>> extract_answer(r"so \boxed{7}."), extract_answer("The answer is 12."), extract_answer("<answer>3")
    ('7', '12', None)
    """
    region = answer_region(completion)
    if region is None:
        return None
    blocks = _ANSWER.findall(region)
    if blocks:
        return blocks[-1].strip()
    if "<answer>" in region:
        return None  # opened, never closed
    boxed = last_boxed(region)
    if boxed is not None:
        return boxed.strip()
    found = _THE_ANSWER_IS.findall(region)
    if found:
        lines = found[-1].strip().splitlines()
        return (re.sub(r"[.\s]+$", "", lines[0]).strip() or None) if lines else None
    return None
