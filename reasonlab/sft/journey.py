"""`reasonlab journey`: journey-learning traces and a matched shortcut set, from sampled attempts
(O1 Replication Journey, Part 1: "journey learning" vs "shortcut learning").

Input: every sampled attempt per problem, right or wrong (`reasonlab traces attempts=FILE`).
For a problem with at least one verified attempt:

- a **journey** trace: inside one `<think>`, a wrong attempt up to its first wrong step, the
  noticing of the error ("Wait — 3*60 is 180, not 160."), a backtracking phrase, then the
  verified attempt's reasoning, ending in the verified answer. The error is located by
  re-checking every `a op b = r` line of the wrong attempt; when every line is right (the
  mistake was in reading the problem), the whole attempt is kept and the noticing phrase names
  its wrong answer instead. `wrong_ratio` of the journey traces get such a detour (up to
  `max_wrong` of them, from distinct wrong attempts); the rest are the verified attempt alone.
- a **shortcut** set: the same problems, verified attempts only, cycling through each problem's
  distinct verified attempts until the shortcut set has as many tokens as the journey set (so
  the ablation compares data, not budget).
- with `train_on_mistakes=false` a journey row lists its wrong reasoning under `no_loss` (as
  `[start, end]` in its completion's content): SFT feeds it as context and trains on the rest
  (the budget still counts it: it costs compute).

Every built trace is verified (correct answer, strict format, language) before it is written;
one that fails is counted and left out. Departure from the paper: the paper's journeys come from
tree search with an LLM writing the reflections; here the reflections are templates filled with
the recomputed value, which is exact for arithmetic-style steps and phrased configurably.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.errors import ReasonlabError
from reasonlab.io import read_jsonl, write_json_atomic, write_text_atomic
from reasonlab.sft.traces import verified
from reasonlab.tasks import is_correct

STEP = re.compile(r"(-?\d+)\s*([-+*/×x])\s*(-?\d+)\s*=\s*(-?\d+)")
THINK = re.compile(r"<think>\n?(.*?)\n?</think>", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


@dataclass
class JourneyConfig:
    """Configuration of `reasonlab journey`."""

    traces: str = field(default="", metadata={"help": "JSONL of sampled attempts (`reasonlab traces attempts=FILE`)"})
    out: str = field(default="runs/journey", metadata={"help": "output dir: journey.jsonl, shortcut.jsonl, summary.json"})
    wrong_ratio: float = field(default=1.0, metadata={"help": "share of journey traces that contain wrong branches"})
    max_wrong: int = field(default=1, metadata={"help": "most wrong branches in one journey trace"})
    notice: list[str] = field(default_factory=lambda: ["Wait, {expr} is {right}, not {wrong}.",
                                                  "Hmm, let me check: {expr} is {right}, not {wrong}."],
                         metadata={"help": "phrasings of noticing a wrong step ({expr}, {right}, {wrong})"})
    notice_answer: list[str] = field(default_factory=lambda: ["Wait, that gives {wrong}, which does not fit the problem."],
                                metadata={"help": "phrasings used when no single step is wrong ({wrong}: the wrong answer)"})
    backtrack: list[str] = field(default_factory=lambda: ["Let me go back and solve it again.", "Let me start over."],
                            metadata={"help": "phrasings of backtracking before the correct path"})
    train_on_mistakes: bool = field(default=True, metadata={
        "help": "train on the wrong branches too, as the paper does; false: each row lists them under "
                "`no_loss`, so SFT shows them as context and trains only the noticing, the backtracking "
                "and the right path (the student is never taught to make the mistake)"})
    tokenizer: str = field(default="", metadata={"help": "model dir whose tokenizer counts the budget ('' = characters)"})
    language: str = field(default="en", metadata={"help": "target language of the reasoning"})
    seed: int = field(default=0, metadata={"help": "seed for which attempts and phrasings are used"})

    def validate(self) -> None:
        if not self.traces:
            raise ReasonlabError("traces: give the JSONL of sampled attempts")
        if not 0.0 <= self.wrong_ratio <= 1.0:
            raise ReasonlabError(f"wrong_ratio: must be in [0, 1], got {self.wrong_ratio}")
        if self.max_wrong < 1:
            raise ReasonlabError(f"max_wrong: must be >= 1, got {self.max_wrong}")
        for name in ("notice", "notice_answer", "backtrack"):
            if not getattr(self, name) or not all(isinstance(x, str) for x in getattr(self, name)):
                raise ReasonlabError(f"{name}: must be a non-empty list of strings")


def first_wrong_step(reasoning: str) -> tuple[int, str, int, int] | None:
    """`(end offset, expression, right value, written value)` of the first `a op b = r` whose
    result is wrong, or None when every step checks out.

    >>> first_wrong_step("3*60=160\\n160+5=165")
    (8, '3*60', 180, 160)
    >>> first_wrong_step("2+2=4") is None
    True
    """
    for m in STEP.finditer(reasoning):
        a, op, b, r = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        right = {"+": a + b, "-": a - b, "*": a * b, "×": a * b, "x": a * b}.get(op)
        if op == "/" and b != 0 and a % b == 0:
            right = a // b
        if right is not None and right != r:
            return m.end(), f"{a}{op}{b}", right, r
    return None


@dataclass
class Detour:
    """A wrong attempt's reasoning up to its first error, then the words that notice it and turn back."""

    mistake: str
    turn: str


@dataclass
class JourneyTrace:
    """A built journey completion and where its wrong reasoning lies: `text[start:end]` per detour."""

    text: str
    mistakes: list[tuple[int, int]]


def detour(wrong_completion: str, cfg: JourneyConfig, rng: random.Random) -> Detour | None:
    """The wrong attempt's reasoning up to its first error, then the noticing and backtracking
    phrases; None when the attempt has no reasoning to show."""
    m = THINK.search(wrong_completion)
    if not m or not m.group(1).strip():
        return None
    reasoning = m.group(1).strip()
    found = first_wrong_step(reasoning)
    if found:
        end, expr, right, wrong = found
        noticed = rng.choice(cfg.notice).format(expr=expr, right=right, wrong=wrong)
        shown = reasoning[:end]
    else:
        answer = ANSWER.search(wrong_completion)
        noticed = rng.choice(cfg.notice_answer).format(wrong=answer.group(1).strip() if answer else "that")
        shown = reasoning
    return Detour(shown, f"{noticed} {rng.choice(cfg.backtrack)}")


def journey_trace(right: str, wrongs: list[str], cfg: JourneyConfig, rng: random.Random) -> JourneyTrace:
    """A verified completion with the detours of `wrongs` placed before its reasoning."""
    m = THINK.search(right)
    detours = [d for d in (detour(w, cfg, rng) for w in wrongs) if d]
    text, spans = "<think>\n", []
    for d in detours:  # offsets, not strings: a mistake's text may recur in an earlier turn
        spans.append((len(text), len(text) + len(d.mistake)))
        text += f"{d.mistake}\n{d.turn}\n"
    text += f"{m.group(1).strip()}\n</think>\n<answer>{ANSWER.search(right).group(1)}</answer>"
    return JourneyTrace(text, spans)


def group_attempts(rows: list[dict], source: str) -> dict[str, dict]:
    """Attempts per problem: `{id: {"row": first row, "right": [...], "wrong": [...]}}`, distinct
    texts. A wrong attempt is one with a mistake to notice: an unverified text whose final answer
    is right (kept out only for its format or language, or an older attempts file's repeat of a
    verified text) is neither, since a detour would call its right answer wrong."""
    need = ("problem", "prompt", "answer", "completion", "verified")
    problems: dict[str, dict] = {}
    for i, row in enumerate(rows):
        missing = [k for k in need if k not in row]
        if missing:
            raise ReasonlabError(f"{source}:{i + 1}: missing {', '.join(missing)} (write it with `reasonlab traces attempts=FILE`)")
        p = problems.setdefault(row["problem"], {"row": row, "right": [], "wrong": []})
        text = row["completion"]
        if row["verified"] and text not in p["right"]:
            p["right"].append(text)
        elif not row["verified"] and text not in p["wrong"] and text not in p["right"] \
                and not is_correct(text, row["answer"], row.get("task", "arithmetic")):
            p["wrong"].append(text)
    return problems


def build_journey(cfg: JourneyConfig, log=print) -> dict:
    """Write OUT/journey.jsonl, OUT/shortcut.jsonl and OUT/summary.json; returns the summary."""
    cfg.validate()
    if not Path(cfg.traces).exists():
        raise ReasonlabError(f"traces: {cfg.traces} does not exist")
    problems = group_attempts(list(read_jsonl(cfg.traces)), cfg.traces)
    usable = {k: p for k, p in problems.items() if p["right"]}
    if not usable:
        raise ReasonlabError(f"traces: {cfg.traces} has no problem with a verified attempt")
    count = _counter(cfg.tokenizer)
    rng = random.Random(cfg.seed)
    journey, shortcut, rejected, branches, untrained = [], [], 0, 0, 0
    for pid in sorted(usable):
        p = usable[pid]
        k = min(cfg.max_wrong, len(p["wrong"])) if rng.random() < cfg.wrong_ratio else 0
        wrongs = rng.sample(p["wrong"], k)
        trace = journey_trace(p["right"][0], wrongs, cfg, rng)
        if not _ok(trace.text, p["row"], cfg):
            rejected += 1
            continue
        branches += len(wrongs)
        row = _sft_row(p["row"], trace.text, "journey", count(trace.text), len(wrongs))
        if not cfg.train_on_mistakes and trace.mistakes:
            row["no_loss"] = [list(span) for span in trace.mistakes]
            untrained += sum(count(trace.text[a:b]) for a, b in trace.mistakes)
        journey.append(row)
    budget = sum(r["completion_tokens"] for r in journey)
    shortcut = _shortcut({r["problem"]: usable[r["problem"]] for r in journey}, budget, count)
    out = Path(cfg.out)
    for name, rows in (("journey", journey), ("shortcut", shortcut)):
        write_text_atomic(out / f"{name}.jsonl", "".join(_json(r) + "\n" for r in rows))
    summary = {"problems": len(journey), "journey_traces": len(journey), "shortcut_traces": len(shortcut),
               "journey_tokens": budget, "shortcut_tokens": sum(r["completion_tokens"] for r in shortcut),
               "wrong_branches": branches, "no_loss_tokens": untrained, "rejected": rejected,
               "skipped_no_verified": len(problems) - len(usable), "unit": "tokens" if cfg.tokenizer else "chars"}
    write_json_atomic(out / "summary.json", summary)
    log(f"journey: {summary['journey_traces']} journey traces ({branches} wrong branches), "
        f"{summary['shortcut_traces']} shortcut traces, {budget} vs {summary['shortcut_tokens']} {summary['unit']}")
    return summary


def _shortcut(problems: dict[str, dict], budget: int, count) -> list[dict]:
    """Verified attempts, one per problem per round, cycling through each problem's distinct
    ones, until the set holds at least `budget` tokens (every problem appears at least once)."""
    rows, total, rnd = [], 0, 0
    while rnd == 0 or total < budget:
        for pid in sorted(problems):
            p = problems[pid]
            text = p["right"][rnd % len(p["right"])]
            rows.append(_sft_row(p["row"], text, "shortcut", count(text), 0))
            total += rows[-1]["completion_tokens"]
            if rnd > 0 and total >= budget:
                break
        rnd += 1
    return rows


def _ok(text: str, row: dict, cfg: JourneyConfig) -> bool:
    return bool(verified([text], row["answer"], row.get("task", "arithmetic"), row.get("question", row["prompt"]),
                         language=cfg.language))


def _sft_row(row: dict, text: str, kind: str, tokens: int, wrong: int) -> dict:
    return {"prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": text}],
            "problem": row["problem"], "answer": row["answer"], "kind": kind, "wrong_branches": wrong,
            "completion_tokens": tokens}


def _counter(tokenizer: str):
    if not tokenizer:
        return len
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def _json(row: dict) -> str:
    import json

    return json.dumps(row)

