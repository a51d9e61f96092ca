"""Turning scored samples into the results JSON every evaluating command writes."""

from __future__ import annotations

from reasonlab.cost import gpu_usd, inference_flops
from reasonlab.evaluation.metrics import (
    k_values,
    majority_vote,
    mean_interval,
    pass_at_k,
    wilson_interval,
)
from reasonlab.sampling import lenient_fields
from reasonlab.tasks import get_task


def _first_per_sample(rows: list[dict], samples: int) -> tuple[dict | None, list[dict]]:
    """The greedy row and sampled rows of one problem, duplicates (from a torn resume) dropped."""
    greedy = next((r for r in rows if r["kind"] == "greedy"), None)
    by_index: dict[int, dict] = {}
    for r in rows:
        if r["kind"] == "sample":
            by_index.setdefault(r["sample"], r)
    return greedy, [by_index[i] for i in sorted(by_index) if i < samples]


def summarize(cfg, problems, done: dict[str, list[dict]], n_params: int) -> dict:
    """Aggregate metrics over problems with scorable gold answers (unscorable ones are counted).
    Accuracies come twice: strict (`greedy_accuracy`, `pass@k`, `maj@K`: the answer in the
    template's format) and lenient (the same keys + `_lenient`: the answer anywhere)."""
    greedy_rows, format_ok, per_problem = [], [], []
    unscorable, all_rows = 0, []
    for p in problems:
        greedy, samples = _first_per_sample(done.get(p.id, []), cfg.samples)
        rows = ([greedy] if greedy else []) + samples
        _fill_lenient(cfg.task, p.answer, rows)
        all_rows += rows
        if greedy is None or greedy["correct"] is None:
            unscorable += 1
            continue
        greedy_rows.append(greedy)
        format_ok += [r["format"] for r in (samples or [greedy])]
        per_problem.append(samples)
    n = len(greedy_rows)
    tokens = sum(r["tokens"] for r in all_rows)
    prompt_tokens = sum(r["prompt_tokens"] for r in all_rows if r["kind"] == "greedy")
    prompt_tokens += sum(r["prompt_tokens"] for r in all_rows if r["kind"] == "sample" and r["sample"] == 0)
    correct_total = sum(r["correct"] or 0 for r in all_rows)
    seconds = sum(r.get("seconds", 0.0) for r in all_rows)
    res = {
        "model": cfg.model, "task": cfg.task, "split": cfg.split, "n_problems": n,
        "unscorable": unscorable, "samples": cfg.samples, "temperature": cfg.temperature,
    }
    for suffix in ("", "_lenient"):
        res.update(_accuracies(greedy_rows, per_problem, cfg.samples, suffix))
    scored = [r["score"] for r in all_rows if r.get("score") is not None]
    if scored:
        res["partial_score"] = sum(scored) / len(scored)
    res.update({
        "format_rate": sum(format_ok) / len(format_ok) if format_ok else 0.0,
        "mean_completion_tokens": tokens / len(all_rows) if all_rows else 0.0,
        "tokens_per_correct": tokens / correct_total if correct_total else None,
        "generated_tokens": tokens,
        "inference_flops": inference_flops(n_params, tokens + prompt_tokens),
        "wall_seconds": seconds,
        "usd": gpu_usd(seconds, cfg.prices),
        "n_params": n_params,
    })
    return res


def _accuracies(greedy_rows: list[dict], per_problem: list[list[dict]], samples: int, suffix: str) -> dict:
    """greedy accuracy (Wilson interval), pass@1 (interval), unbiased pass@k and maj@K, read from
    the rows' `correct{suffix}` and `key{suffix}` fields; keys carry the suffix."""
    ok = [r["correct" + suffix] or 0.0 for r in greedy_rows]  # lenient None: the gold's parse failed
    n = len(ok)
    res = {"greedy_accuracy" + suffix: sum(ok) / n if n else 0.0,
           "greedy_accuracy_ci95" + suffix: list(wilson_interval(int(sum(ok)), n))}
    if not samples:
        res["pass@1" + suffix] = res["greedy_accuracy" + suffix]
        res["pass@1_ci95" + suffix] = res["greedy_accuracy_ci95" + suffix]
        return res
    per = [[r["correct" + suffix] or 0.0 for r in s] for s in per_problem]
    res["pass@1" + suffix] = sum(sum(c) / len(c) for c in per) / n if n else 0.0
    res["pass@1_ci95" + suffix] = list(mean_interval([sum(c) / len(c) for c in per]))
    for k in k_values(samples):
        res[f"pass@{k}{suffix}"] = sum(pass_at_k(len(c), int(sum(c)), k) for c in per) / n if n else 0.0
    votes = [majority_vote([r["key" + suffix] for r in s]) for s in per_problem]
    res[f"maj@{samples}{suffix}"] = sum(s[v]["correct" + suffix] or 0.0 if v is not None else 0.0
                                       for s, v in zip(per_problem, votes)) / n if n else 0.0
    return res


def _fill_lenient(task_name: str, gold: str, rows: list[dict]) -> None:
    """Rows written before lenient scoring existed get it from their text, so a resumed or old
    samples file still reports both scores."""
    for r in rows:
        if "correct_lenient" not in r:
            r.update(lenient_fields(get_task(task_name), r["text"], gold))
