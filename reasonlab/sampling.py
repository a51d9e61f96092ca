"""One way to sample and score: render each problem's prompt in the template, generate, take the
template's response (prefill + completion), extract the answer, verify it (strictly: in the
template's answer format; leniently: wherever the completion gives it) and, when rewards are
asked for, score it with each of them and their weighted total.

The RL step, evaluation, the in-training evaluation and sample display, inference-time scaling,
reward-model data and trace generation call `sample` and read the same record: a `ScoredGroup`
per problem, a `Scored` per completion (the engine's token ids and log-probs, the response, the
extracted answer, strict and lenient correctness, format, per-reward values). An evaluation's
samples file is `Scored.row()`. Search methods that grow a completion in pieces (beam search,
budget forcing, a PRM's step continuations) generate their continuations themselves and score
the finished text with `score`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reasonlab.rewards import accuracy, combine, format_reward, get_reward, is_hack
from reasonlab.rollout import Completion, SamplingParams
from reasonlab.verify import extract_answer, lenient_answer


@dataclass
class Scored:
    """One completion, scored."""

    completion: Completion  # what the engine returned: text, token ids, log-probs, finish reason
    response: str  # the assistant's whole turn: the template's prefill + the completion
    answer: str | None  # extracted in the template's answer format
    key: str | None  # the task's canonical form of the answer (what a vote counts)
    correct: float | None  # strict: 1.0 or 0.0; None when the gold cannot be parsed
    format: float  # 1.0 when the response has the template's answer format
    answer_lenient: str | None = None  # the answer wherever it stands (None when not asked for)
    key_lenient: str | None = None
    correct_lenient: float | None = None
    score: float | None = None  # partial credit, for tasks that have it
    rewards: dict[str, float | None] = field(default_factory=dict)  # each reward function's value
    reward: float | None = None  # their weighted total (None: no reward could score it)

    def row(self, problem_id: str) -> dict:
        """The evaluation samples file's fields for this completion."""
        c = self.completion
        row = {"problem": problem_id, "text": self.response, "tokens": c.num_tokens, "prompt_tokens": c.prompt_tokens,
               "finish": c.finish_reason, "answer": self.answer, "key": self.key, "correct": self.correct,
               "format": self.format, "answer_lenient": self.answer_lenient, "key_lenient": self.key_lenient,
               "correct_lenient": self.correct_lenient}
        return row if self.score is None else {**row, "score": self.score}


@dataclass
class ScoredGroup:
    """One problem, its prompt as the engine got it, and its scored completions."""

    problem: object  # the task's Problem
    prompt: object  # what the engine was given (text, or a chat prompt for a server)
    prompt_ids: list[int]  # the prompt's token ids as the engine fed them ([] for a remote engine)
    completions: list[Scored]

    @property
    def reward(self) -> list[float | None]:
        return [s.reward for s in self.completions]

    @property
    def per_reward(self) -> dict[str, list[float | None]]:
        names = self.completions[0].rewards if self.completions else {}
        return {name: [s.rewards[name] for s in self.completions] for name in names}

    @property
    def has_signal(self) -> bool:
        """Scored rewards differ, so group-relative advantages are not all zero."""
        vals = [r for r in self.reward if r is not None]
        return len(vals) >= 2 and max(vals) > min(vals)


def sample(engine, template, task, problems: list, params: SamplingParams, rewards: dict[str, float] | None = None,
           lenient: bool = True) -> list[ScoredGroup]:
    """Generate `params.n` completions per problem and score each (see the module docstring);
    `rewards` (name → weight) adds every reward's value and their total, `lenient` the lenient
    answer and verdict."""
    prompts = [engine.prompt(template, task, p) for p in problems]
    outs = engine.generate(prompts, params)
    groups = []
    for problem, prompt, comps in zip(problems, prompts, outs):
        ids = comps[0].prompt_ids if comps else None
        if ids is None and isinstance(prompt, str) and engine.tokenizer is not None:
            ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]  # the tokenisation it used
        groups.append(ScoredGroup(problem, prompt, list(ids or []), score(task, template, problem, comps, lenient)))
    if rewards:
        add_rewards(groups, task, template, rewards, params.max_new_tokens)
    return groups


def score(task, template, problem, completions: list[Completion], lenient: bool = True) -> list[Scored]:
    """One problem's completions, each verified strictly (and leniently when asked)."""
    texts = [template.response(c.text) for c in completions]
    fmt = template.answer_format
    n = len(texts)
    ok = accuracy(texts, answer=[problem.answer] * n, task=task, question=[problem.question] * n, answer_format=fmt)
    shapes = format_reward(texts, answer_format=fmt)
    out = []
    for c, text, right, shape in zip(completions, texts, ok, shapes):
        pred = extract_answer(text)
        s = Scored(c, text, pred, task.canonical(pred) if pred else None, right, shape)
        if lenient:
            extra = lenient_fields(task, text, problem.answer, problem.question, fmt)
            s.answer_lenient, s.key_lenient, s.correct_lenient = (extra["answer_lenient"], extra["key_lenient"],
                                                                  extra["correct_lenient"])
        if task.has_partial_credit and pred is not None:
            s.score = task.score(pred, problem.answer)
        out.append(s)
    return out


def add_rewards(groups: list[ScoredGroup], task, template, weights: dict[str, float], max_new_tokens: int) -> None:
    """Each reward function's value and the weighted total on every completion of `groups`
    (TRL's reward signature: one column per completion, prompt-major)."""
    rows = [(g, i, s) for i, g in enumerate(groups) for s in g.completions]
    columns = {
        "answer": [g.problem.answer for g, _, _ in rows],
        "question": [g.problem.question for g, _, _ in rows],
        "task": task,  # the Task object itself: `accuracy` calls its verify
        "completion_tokens": [s.completion.num_tokens for _, _, s in rows],
        "group": [i for _, i, _ in rows],
        "max_completion_length": max_new_tokens,
        "answer_format": template.answer_format,
    }
    texts = [s.response for _, _, s in rows]
    per = {}
    for name in weights:
        known = _known(rows, name)
        per[name] = known if known is not None else get_reward(name)(texts, **columns)
    total = combine(per, weights)
    for j, (_, _, s) in enumerate(rows):
        s.rewards = {name: col[j] for name, col in per.items()}
        s.reward = total[j]


def _known(rows, name: str) -> list[float | None] | None:
    """The accuracy and format rewards are the strict verdict and format `score` already computed
    (the same functions on the same response): not computed twice on the rollout path."""
    field_name = {"accuracy": "correct", "format": "format"}.get(name)
    return [getattr(s, field_name) for _, _, s in rows] if field_name else None


def lenient_fields(task, text: str, gold: str, question: str | None = None, answer_format: str = "tags") -> dict:
    """A completion's lenient score: the answer wherever the completion gives it, its vote key,
    and whether it is right (None when the gold does not parse). Lenient about where the answer
    stands (an unclosed tag is no hack here), not about hedges: repeated answer blocks, several
    boxes under `boxed` or an echoed question earn nothing, as under the strict score."""
    pred = lenient_answer(text)
    ok = task.verify_lenient(text, gold)
    untagged = re.sub(r"</?(?:think|answer)>", " ", text)
    if ok and (text.count("<answer>") > 1 or is_hack(untagged, question, answer_format)):
        ok = False
    return {"answer_lenient": pred, "key_lenient": task.canonical(pred) if pred else None,
            "correct_lenient": None if ok is None else float(ok)}
