"""Turning scored samples into the results JSON every evaluating command writes."""

from __future__ import annotations

from reasonlab.cost import gpu_usd, inference_flops
from reasonlab.evaluation.metrics import k_values, majority_vote, mean_interval, pass_at_k, wilson_interval


def _first_per_sample(rows: list[dict], samples: int) -> tuple[dict | None, list[dict]]:
    """The greedy row and sampled rows of one problem, duplicates (from a torn resume) dropped."""
    greedy = next((r for r in rows if r["kind"] == "greedy"), None)
    by_index: dict[int, dict] = {}
    for r in rows:
        if r["kind"] == "sample":
            by_index.setdefault(r["sample"], r)
    return greedy, [by_index[i] for i in sorted(by_index) if i < samples]


def summarize(cfg, problems, done: dict[str, list[dict]], n_params: int) -> dict:
    """Aggregate metrics over problems with scorable gold answers (unscorable ones are counted)."""
    greedy_ok, format_ok, sample_rows, per_problem = [], [], [], []
    unscorable, all_rows = 0, []
    for p in problems:
        greedy, samples = _first_per_sample(done.get(p.id, []), cfg.samples)
        rows = ([greedy] if greedy else []) + samples
        all_rows += rows
        if greedy is None or greedy["correct"] is None:
            unscorable += 1
            continue
        greedy_ok.append(greedy["correct"])
        format_ok += [r["format"] for r in (samples or [greedy])]
        sample_rows += samples
        per_problem.append(samples)
    n = len(greedy_ok)
    tokens = sum(r["tokens"] for r in all_rows)
    prompt_tokens = sum(r["prompt_tokens"] for r in all_rows if r["kind"] == "greedy")
    prompt_tokens += sum(r["prompt_tokens"] for r in all_rows if r["kind"] == "sample" and r["sample"] == 0)
    correct_total = sum(r["correct"] or 0 for r in all_rows)
    seconds = sum(r.get("seconds", 0.0) for r in all_rows)
    res = {
        "model": cfg.model, "task": cfg.task, "split": cfg.split, "n_problems": n,
        "unscorable": unscorable, "samples": cfg.samples, "temperature": cfg.temperature,
        "greedy_accuracy": sum(greedy_ok) / n if n else 0.0,
        "greedy_accuracy_ci95": list(wilson_interval(int(sum(greedy_ok)), n)),
    }
    if cfg.samples:
        per = [[r["correct"] for r in s] for s in per_problem]
        res["pass@1"] = sum(sum(c) / len(c) for c in per) / n if n else 0.0
        res["pass@1_ci95"] = list(mean_interval([sum(c) / len(c) for c in per]))
        for k in k_values(cfg.samples):
            res[f"pass@{k}"] = sum(pass_at_k(len(c), int(sum(c)), k) for c in per) / n if n else 0.0
        votes = [majority_vote([r["key"] for r in s]) for s in per_problem]
        res[f"maj@{cfg.samples}"] = sum(s[v]["correct"] if v is not None else 0.0
                                        for s, v in zip(per_problem, votes)) / n if n else 0.0
    else:
        res["pass@1"] = res["greedy_accuracy"]
        res["pass@1_ci95"] = res["greedy_accuracy_ci95"]
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
