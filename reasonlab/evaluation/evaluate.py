"""`reasonlab eval`: greedy and sampled evaluation of a model on a task, resumable.

Per-sample rows go to `OUT.samples.jsonl` (append-only, first line a header with the settings);
rerunning the same command skips problems already done. A problem's greedy row and its K sampled
rows are written together after they are scored, so a killed run redoes at most one chunk.
Scoring uses the `accuracy` and `format` rewards, so evaluation and training agree on hacks.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.cost import Prices
from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.report import summarize
from reasonlab.io import JsonlAppender, read_jsonl, write_json_atomic
from reasonlab.rollout import HFEngine, SamplingParams
from reasonlab.rollout.options import Sampling, sampling_field
from reasonlab.sampling import sample
from reasonlab.sizing import default_max_new_tokens, resolve_precision
from reasonlab.tasks import get_task
from reasonlab.templates import resolve
from reasonlab.train.progress import Progress

RESULT_KEYS = ("greedy_accuracy", "pass@1", "format_rate", "mean_completion_tokens", "tokens_per_correct")


@dataclass
class EvalConfig(Sampling):
    """Configuration of `reasonlab eval`."""

    model: str = field(default="", metadata={"help": "Hugging Face model directory"})
    task: str = field(default="arithmetic", metadata={"help": "task name (arithmetic, countdown, gym:NAME, jsonl:PATH, hf:DIR)"})
    n: int = field(default=200, metadata={"help": "number of problems"})
    samples: int = field(default=16, metadata={"help": "sampled completions per problem (K) for pass@k and maj@K (default 16); 0: greedy only"})
    max_new_tokens: int = sampling_field("max_new_tokens", 0, "0: sized to the model, see reasonlab.sizing.default_max_new_tokens")
    template: str = field(default="", metadata={"help": "prompt template: a built-in name (reasonlab templates) or a YAML file; default: the model's recorded one, else chat-think / r1-zero"})
    split: str = field(default="eval", metadata={"help": "problem split: eval or train"})
    seed: int = field(default=0, metadata={"help": "problem selection and sampling seed"})
    out: str = field(default="", metadata={"help": "results JSON path (default: runs/eval/<model>-<task>.json)"})
    chunk: int = field(default=32, metadata={"help": "problems generated per chunk (a resume unit)"})
    max_batch: int = field(default=256, metadata={"help": "rows decoded at once"})
    device: str = field(default="", metadata={"help": "cpu, cuda, … (default: cuda if available)"})
    precision: str = field(default="fp32", metadata={"help": "fp32, bf16 (decode from bf16 weights: faster where the CPU has AVX512-BF16/AMX) or auto (bf16 where a matmul measures it faster)"})
    prices: Prices = field(default_factory=Prices, metadata={"help": "cost prices"})

    def validate(self) -> None:
        if not self.model:
            raise ReasonlabError("eval: --model is required")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ReasonlabError(f"precision: {self.precision!r} is not one of fp32, bf16, auto")
        if self.n < 1 or self.samples < 0:
            raise ReasonlabError("eval: n must be >= 1 and samples >= 0")

    def out_path(self) -> Path:
        if self.out:
            return Path(self.out)
        slug = f"{Path(self.model).resolve().parent.name}-{Path(self.model).name}-{self.task}".replace(":", "_").replace("/", "_")
        return Path("runs/eval") / f"{slug}.json"

    def header(self, template) -> dict:
        """Settings that change results; a samples file made with others cannot be resumed."""
        keys = ("task", "n", "samples", "temperature", "top_p", "max_new_tokens", "split", "seed", "precision")
        h = {k: getattr(self, k) for k in keys}
        h["model"] = str(Path(self.model).resolve())
        h["template"] = template.to_dict()
        return h


def _load_done(path: Path, header: dict) -> dict[str, list[dict]]:
    done: dict[str, list[dict]] = {}
    if not path.exists():
        return done
    rows = list(read_jsonl(path))
    if rows and rows[0].get("_header") != header:
        old = rows[0].get("_header") or {}
        diff = next((k for k in header if old.get(k) != header[k]), "header")
        raise ReasonlabError(f"{path} was made with a different {diff!r}; use another --out or delete it")
    for r in rows[1:]:
        done.setdefault(r["problem"], []).append(r)
    return done


def _chunk_rows(cfg: EvalConfig, engine, chunk, chunk_index: int, template) -> list[dict]:
    """One chunk's sample rows: each problem's greedy completion, then its K samples."""
    task = get_task(cfg.task)
    greedy = sample(engine, template, task, chunk, cfg.sampling_params(greedy=True))
    sampled = [None] * len(chunk)
    if cfg.samples:
        seed = int(hashlib.blake2b(f"{cfg.seed}|{chunk_index}".encode(), digest_size=4).hexdigest(), 16)
        sampled = sample(engine, template, task, chunk, cfg.sampling_params(n=cfg.samples, seed=seed))
    rows = []
    for p, g, s in zip(chunk, greedy, sampled):
        shown = g.prompt if isinstance(g.prompt, str) else g.prompt.shown()  # as lm-eval's sample logs do
        rows.append({**g.completions[0].row(p.id), "kind": "greedy", "sample": 0, "prompt": shown})
        rows += [{**c.row(p.id), "kind": "sample", "sample": i} for i, c in enumerate(s.completions if s else [])]
    return rows


def evaluate(cfg: EvalConfig, engine=None, log=print) -> dict:
    """Run (or resume) an evaluation and write its results JSON; returns the results."""
    task = get_task(cfg.task)
    out = cfg.out_path()
    samples_path = out.with_suffix(".samples.jsonl")
    cfg.precision = resolve_precision(cfg.precision, cfg.device)
    engine = engine or HFEngine.from_pretrained(cfg.model, cfg.device or None, cfg.max_batch, cfg.precision == "bf16")
    template = resolve(cfg.template, cfg.model, engine.tokenizer)
    problems = task.problems(cfg.split, cfg.n, cfg.seed)
    if not cfg.max_new_tokens:
        cfg.max_new_tokens = default_max_new_tokens(engine.n_params, cfg.model)
        log(f"eval: max_new_tokens={cfg.max_new_tokens} (sized to the model; set max_new_tokens= to change)")
    header = cfg.header(template)
    done = _load_done(samples_path, header)

    with JsonlAppender(samples_path) as sink, Progress("eval", len(problems), 0) as bar:
        if not samples_path.stat().st_size:
            sink.write({"_header": header})
        for ci in range(0, len(problems), cfg.chunk):
            chunk = [p for p in problems[ci : ci + cfg.chunk] if len(done.get(p.id, [])) < 1 + cfg.samples]
            if chunk:
                t1 = time.time()
                rows = _chunk_rows(cfg, engine, chunk, ci // cfg.chunk, template)
                for r in rows:  # wall time apportioned to rows, so a resumed run still sums it
                    r["seconds"] = (time.time() - t1) / len(rows)
                sink.write_many(rows)
                for r in rows:
                    done.setdefault(r["problem"], []).append(r)
            greedy = [r for p in problems[: ci + cfg.chunk] for r in done.get(p.id, []) if r["kind"] == "greedy"]
            right = sum(r["correct"] == 1.0 for r in greedy)
            lenient = sum(r.get("correct_lenient") == 1.0 for r in greedy)
            bar.set(min(ci + cfg.chunk, len(problems)), f"greedy {right}/{len(greedy)} right (lenient {lenient})", log)
    results = {**summarize(cfg, problems, done, engine.n_params), "template": template.name}
    write_json_atomic(out, results)
    return results


def greedy_eval(engine, task_name: str, n: int, max_new_tokens: int, template, seed: int = 0) -> dict:
    """Quick held-out greedy accuracy (strict and lenient) and format rate, used during training."""
    task = get_task(task_name)
    groups = sample(engine, template, task, task.problems("eval", n, seed), SamplingParams(max_new_tokens, temperature=0.0))
    first = [g.completions[0] for g in groups]
    scored = [s.correct for s in first if s.correct is not None]
    lenient = [s.correct_lenient for s in first if s.correct_lenient is not None]
    return {"accuracy": sum(scored) / len(scored) if scored else 0.0,
            "accuracy_lenient": sum(lenient) / len(lenient) if lenient else 0.0,
            "format_rate": sum(s.format for s in first) / len(first)}
