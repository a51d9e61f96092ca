r"""Reward functions: one signature, `(completions, **row) -> list[float | None]`, and a registry.

`completions` is a list of strings; every other argument is a column of the batch (lists aligned
with `completions`, TRL's convention): `answer`, `task`, `question`, `completion_tokens`,
`language`, … . Unused columns are ignored through `**_`. `None` means "cannot be scored" (the
gold answer does not parse) and trainers skip such rows instead of treating them as 0.

Reward hacks earn nothing: an empty answer, several answers, an answer only inside `<think>`,
unclosed or repeated tags, and completions that echo the question back.

`answer_format` (a column, set from the prompt template) says which answer the prompt asked for:
`tags` (`<think>…</think><answer>…</answer>`) or `boxed` (reasoning, then one `\boxed{…}`).
`format` checks that shape; `accuracy` reads the answer either way, and under `boxed` a second
box (an answer hedged across two boxes) is a hack.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from reasonlab.errors import ReasonlabError
from reasonlab.tasks import get_task
from reasonlab.verify import answer_region, last_boxed

RewardFn = Callable[..., list]
REWARDS: dict[str, RewardFn] = {}
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_FORMAT = re.compile(r"^\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*$", re.S)
_BOX = re.compile(r"\\(?:boxed|fbox)\b")
BOXED_TAIL = 40  #: characters allowed after the box under `boxed` (a closing `$`, a full stop, a tag)
_WORD = re.compile(r"[^\W\d_]+")
SCRIPTS = {"en": "LATIN", "fr": "LATIN", "de": "LATIN", "es": "LATIN", "ru": "CYRILLIC",
           "zh": "CJK", "ja": "CJK", "el": "GREEK", "ar": "ARABIC"}


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    def deco(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        return fn

    return deco


def get_reward(name: str) -> RewardFn:
    if name not in REWARDS:
        raise ReasonlabError(f"unknown reward {name!r} (choose from {', '.join(sorted(REWARDS))})")
    return REWARDS[name]


def _column(value, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def is_hack(completion: str, question: str | None = None, answer_format: str = "tags") -> bool:
    r"""Structural hacks: repeated or unclosed tags, several boxes under `boxed`, or the question
    echoed back.

    >>> is_hack("<answer>1</answer><answer>2</answer>"), is_hack("<think>x</think><answer>1</answer>")
    (True, False)
    >>> is_hack("so \\boxed{3} or \\boxed{4}", answer_format="boxed"), is_hack("so \\boxed{3}.", answer_format="boxed")
    (True, False)
    """
    counts = [completion.count(t) for t in TAGS]
    if counts[0] > 1 or counts[2] > 1 or counts[0] != counts[1] or counts[2] != counts[3]:
        return True
    if answer_format == "boxed" and len(_BOX.findall(completion)) > 1:
        return True
    return bool(question) and len(question) >= 20 and question.strip() in completion


@register("accuracy")
def accuracy(completions, answer, task="math", question=None, answer_format="tags", **_) -> list[float | None]:
    r"""1.0 for a correct final answer, 0.0 otherwise, None when the gold cannot be parsed.

    >>> accuracy(["<think>6*7=42</think><answer>42</answer>", "<answer>41</answer>",
    ...           "<answer>42</answer><answer>42</answer>", "<think><answer>42</answer></think>"],
    ...          answer=["42"] * 4, task="arithmetic")
    [1.0, 0.0, 0.0, 0.0]
    >>> accuracy(["6*7 = 42, so \\boxed{42}.", "\\boxed{41} or \\boxed{42}"], answer="42", task="arithmetic",
    ...          answer_format="boxed")
    [1.0, 0.0]
    """
    n = len(completions)
    out: list[float | None] = []
    rows = zip(completions, _column(answer, n), _column(task, n), _column(question, n), _column(answer_format, n))
    for c, gold, t, q, fmt in rows:
        ok = (get_task(t) if isinstance(t, str) else t).verify(c, gold)
        out.append(None if ok is None else 1.0 if ok and not is_hack(c, q, fmt) else 0.0)
    return out


@register("format")
def format_reward(completions, answer_format="tags", **_) -> list[float]:
    r"""1.0 for the shape the prompt asked for, else 0.0. `tags`: exactly
    `<think>…</think><answer>…</answer>` with non-empty parts. `boxed`: reasoning, then one
    non-empty `\boxed{…}` near the end (after `</think>` when there is one), no answer tags.

    >>> format_reward(["<think>a</think>\n<answer>1</answer>", "<think></think><answer>1</answer>",
    ...                "<think>a</think><answer>1</answer> more", "<think>a<answer>1</answer>"])
    [1.0, 0.0, 0.0, 0.0]
    >>> format_reward(["2+2=4, so $\\boxed{4}$.", "\\boxed{4}", "so \\boxed{}", "\\boxed{4} and \\boxed{5}"],
    ...               answer_format="boxed")
    [1.0, 0.0, 0.0, 0.0]
    """
    out = []
    for c, fmt in zip(completions, _column(answer_format, len(completions))):
        ok = _boxed_shape(c) if fmt == "boxed" else _tags_shape(c)
        out.append(1.0 if ok else 0.0)
    return out


def _tags_shape(c: str) -> bool:
    m = _FORMAT.match(c)
    return bool(m and m.group(1).strip() and m.group(2).strip() and not is_hack(c))


def _boxed_shape(c: str) -> bool:
    region = answer_region(c)
    if region is None or "<answer>" in c or is_hack(c, answer_format="boxed"):
        return False
    inner = last_boxed(region)  # is_hack allowed one box at most, so this is the box
    if not inner or not inner.strip():
        return False
    start = max(region.rfind("\\boxed"), region.rfind("\\fbox"))
    before = c[: len(c) - len(region) + start]  # the reasoning
    after = region[region.index("{", start) + len(inner) + 2 :]
    return bool(before.strip()) and len(after.strip()) <= BOXED_TAIL


@register("tag_count")
def tag_count(completions, **_) -> list[float]:
    """0.25 for each of the four tags that appears exactly once (a dense shaping signal).

    >>> tag_count(["<think>a</think><answer>1</answer>", "<think>a</think>", "<answer>1<answer>"])
    [1.0, 0.5, 0.0]
    """
    return [0.25 * sum(c.count(t) == 1 for t in TAGS) for c in completions]


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if name.startswith("CJK") or "HIRAGANA" in name or "KATAKANA" in name:
        return "CJK"
    return name.split(" ")[0] if name else ""


@register("language_consistency")
def language_consistency(completions, language="en", answer_format="tags", **_) -> list[float]:
    """Share of the reasoning's words written in the target language's script (DeepSeek-R1).

    Words are runs of letters inside `<think>`; digits and symbols do not count. No reasoning
    block scores 0; reasoning with no words (pure arithmetic) scores 1. In the `boxed` answer
    format no block is asked for: the whole completion is the reasoning.

    >>> language_consistency(["<think>so 2+2 is four</think>", "<think>so это is four</think>",
    ...                       "<answer>4</answer>", "<think>3*4=12</think>"])
    [1.0, 0.75, 0.0, 1.0]
    >>> language_consistency([r"so \\boxed{4}", r"это \\boxed{4}"], answer_format="boxed")  # `boxed` is a word
    [1.0, 0.5]
    """
    out = []
    n = len(completions)
    for c, lang, fmt in zip(completions, _column(language, n), _column(answer_format, n)):
        m = re.search(r"<think>(.*?)(</think>|$)", c if fmt == "tags" else f"<think>{c}", re.S)
        if not m:
            out.append(0.0)
            continue
        words = _WORD.findall(m.group(1))
        target = SCRIPTS.get(lang, "LATIN")
        good = sum(all(_script(ch) == target for ch in w) for w in words)
        out.append(good / len(words) if words else 1.0)
    return out


def _lengths(completions, completion_tokens) -> list[int]:
    if completion_tokens is None:
        return [len(c) for c in completions]
    return [int(x) for x in _column(completion_tokens, len(completions))]


@register("soft_overlong")
def soft_overlong(completions, completion_tokens=None, max_completion_length=256,
                  overlong_cache=None, **_) -> list[float]:
    """DAPO's soft overlong punishment: 0 up to `max − cache` tokens, then linear down to −1.
    The cache defaults to DAPO's proportion, a fifth of the cap (4096 of 20480): a fixed cache
    as long as a short cap would punish every token and pay the policy to stop reasoning.

    >>> soft_overlong(["a"] * 4, completion_tokens=[100, 192, 224, 300], max_completion_length=256, overlong_cache=64)
    [0.0, 0.0, -0.5, -1.0]
    >>> soft_overlong(["a"] * 3, completion_tokens=[37, 58, 64], max_completion_length=64)  # cache 12
    [0.0, -0.5, -1.0]
    """
    cache = overlong_cache if overlong_cache is not None else max(1, max_completion_length // 5)
    safe = max_completion_length - cache
    out = []
    for n in _lengths(completions, completion_tokens):
        if n <= safe:
            out.append(0.0)
        elif n <= max_completion_length:
            out.append((safe - n) / cache)
        else:
            out.append(-1.0)
    return out


@register("length")
def length_reward(completions, answer, task="math", completion_tokens=None, group=None,
                  question=None, **_) -> list[float | None]:
    """Kimi k1.5's length reward, within each group of samples for one prompt.

    λ = 0.5 − (len − min) / (max − min); a correct answer gets λ, a wrong one min(0, λ).

    >>> length_reward(["<answer>4</answer>"] * 2 + ["<answer>5</answer>"], answer="4",
    ...               task="arithmetic", completion_tokens=[10, 30, 20])
    [0.5, -0.5, 0.0]
    """
    n = len(completions)
    correct = accuracy(completions, answer=answer, task=task, question=question)
    lengths = _lengths(completions, completion_tokens)
    groups = _column(group, n) if group is not None else [0] * n
    out: list[float | None] = []
    for i in range(n):
        if correct[i] is None:
            out.append(None)
            continue
        peers = [lengths[j] for j in range(n) if groups[j] == groups[i]]
        lo, hi = min(peers), max(peers)
        lam = 0.0 if hi == lo else 0.5 - (lengths[i] - lo) / (hi - lo)
        out.append(lam if correct[i] else min(0.0, lam))
    return out


def combine(scores: dict[str, list[float | None]], weights: dict[str, float]) -> list[float | None]:
    """Weighted sum of reward columns, TRL's rule for None: a reward that cannot score a row
    counts as 0 there, and a row that no reward can score is None (trainers leave it out).

    >>> combine({"accuracy": [1.0, None, None], "format": [1.0, 1.0, None]}, {"accuracy": 1.0, "format": 0.5})
    [1.5, 0.5, None]
    """
    n = len(next(iter(scores.values())))
    total: list[float | None] = []
    for i in range(n):
        scored = [(weights[k], scores[k][i]) for k in weights if scores[k][i] is not None]
        total.append(sum(w * v for w, v in scored) if scored else None)
    return total
