"""`reasonlab traces`: a teacher writes reasoning traces, only verified ones are kept (rejection
sampling), ready for `reasonlab sft` (R1's rejection-sampling stage, R1-Distill, Sky-T1, s1).

For each training problem the teacher samples K completions under a prompt template; a
completion is kept when its answer is verified correct, its format is the one the template asks
for (strict `<think>…</think><answer>…</answer>`, or reasoning then one `\\boxed{}`) and its
reasoning is in the target language (share ≥ `min_language`). Identical completions are kept
once, then `keep` chooses: the first, the shortest, or all (at most `max_keep`). Rows are
conversational `prompt`/`completion` pairs (the template's system and user messages; the
assistant's whole turn, prefill included) and carry `question`, `task` and `meta`, so
`reasonlab sft` can render them in the student's own template.

Teachers: a local Hugging Face model directory (sampled `batch` problems at a time through the
rollout engine) or the URL of an OpenAI-compatible server (`reasonlab.rollout.http`: retries,
rate limit, timeout, `concurrency` problems in flight, reasoning inline or in
`reasoning_content`).

Append-only and resumable: a problem's accepted rows go to OUT as soon as it is checked, then the
problem goes to `OUT.done`; a rerun skips finished problems. A problem interrupted between the two
files is sampled again for its statistics, but a problem that already has rows in OUT gets no
more, so nothing is ever duplicated.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.cost import Prices, api_usd, gpu_usd
from reasonlab.errors import ReasonlabError
from reasonlab.io import JsonlAppender, read_jsonl
from reasonlab.rewards import accuracy, format_reward, language_consistency
from reasonlab.rollout import Completion, HFEngine
from reasonlab.rollout.http import OpenAIChatEngine, is_url
from reasonlab.rollout.options import Sampling, sampling_field
from reasonlab.sampling import sample
from reasonlab.tasks import get_task
from reasonlab.templates import Template, get_template, recorded, resolve
from reasonlab.train.progress import Progress


@dataclass
class TracesConfig(Sampling):
    """Configuration of `reasonlab traces`."""

    teacher: str = field(default="", metadata={"help": "teacher: a local Hugging Face model directory, the base URL of an OpenAI-compatible server (http://host:8000/v1), or `reference` (the task's worked solutions)"})
    teacher_model: str = field(default="", metadata={"help": "model name sent to a URL teacher ('' = the server's only model)"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable holding a URL teacher's API key (unset: no key sent)"})
    timeout: float = field(default=120.0, metadata={"help": "seconds per HTTP request before it is retried"})
    max_retries: int = field(default=5, metadata={"help": "retries of a failed HTTP request (429, 5xx, timeout)"})
    backoff: float = field(default=1.0, metadata={"help": "first retry wait in seconds, doubled each retry (a Retry-After header wins)"})
    requests_per_minute: float = field(default=0.0, metadata={"help": "most HTTP requests started per minute (0: no limit)"})
    concurrency: int = field(default=8, metadata={"help": "problems in flight at once with a URL teacher"})
    task: str = field(default="arithmetic", metadata={"help": "task whose training problems are solved"})
    n: int = field(default=200, metadata={"help": "training problems to attempt"})
    samples: int = field(default=8, metadata={"help": "completions sampled per problem (K)"})
    out: str = field(default="runs/traces.jsonl", metadata={"help": "output JSONL (finished problems go to OUT.done)"})
    attempts: str = field(default="", metadata={"help": "also write every sampled completion, right or wrong, to this JSONL (input of `reasonlab journey`)"})
    keep: str = field(default="first", metadata={"help": "which verified completions to keep: first, shortest or all"})
    max_keep: int = field(default=4, metadata={"help": "most completions kept per problem with keep=all"})
    min_language: float = field(default=0.9, metadata={"help": "least share of reasoning words in the target language"})
    language: str = field(default="en", metadata={"help": "target language of the reasoning"})
    max_new_tokens: int = sampling_field("max_new_tokens", 128)
    batch: int = field(default=16, metadata={"help": "problems sampled together (and between progress lines)"})
    seed: int = field(default=0, metadata={"help": "seed for problem order and sampling"})
    template: str = field(default="", metadata={"help": "prompt template for the teacher (default: a local teacher's recorded one, else chat-think; the tiny world's for `reference`)"})
    prices: Prices = field(default_factory=Prices, metadata={"help": "prices for the cost estimate"})

    def validate(self) -> None:
        if not self.teacher:
            raise ReasonlabError("teacher: give a model directory or an OpenAI-compatible URL")
        if self.keep not in ("first", "shortest", "all"):
            raise ReasonlabError(f"keep: {self.keep!r} is not one of first, shortest, all")
        for name in ("n", "samples", "max_keep", "batch", "max_new_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise ReasonlabError(f"{name}: must be >= 1, got {getattr(self, name)}")


def verified(completions: list[str], gold: str, task: str, question: str, cfg: TracesConfig | None = None,
             language: str = "en", min_language: float = 0.9, answer_format: str = "tags",
             correct: list[float | None] | None = None) -> list[int]:
    """Indices of the distinct completions that are correct, well-formed in `answer_format` and
    in the target language (`cfg`'s, when given), in sampling order; `correct`: their strict
    verdicts when already known (`reasonlab.sampling`)."""
    if cfg is not None:
        language, min_language = cfg.language, cfg.min_language
    n = len(completions)
    acc = correct if correct is not None else accuracy(completions, answer=[gold] * n, task=task,
                                                       question=[question] * n, answer_format=answer_format)
    fmt = format_reward(completions, answer_format=answer_format)
    lang = language_consistency(completions, language=language, answer_format=answer_format)
    seen, good = set(), []
    for i, text in enumerate(completions):
        if acc[i] == 1.0 and fmt[i] == 1.0 and lang[i] >= min_language and text not in seen:
            seen.add(text)
            good.append(i)
    return good


def choose(good: list[int], completions: list[str], cfg: TracesConfig) -> list[int]:
    """The verified completions kept: the first, the shortest, or all up to `max_keep`."""
    if cfg.keep == "shortest":
        return sorted(good, key=lambda i: len(completions[i]))[:1]
    return good[:1] if cfg.keep == "first" else good[: cfg.max_keep]


def _chunk_seed(cfg: TracesConfig, problem_id: str) -> int:
    """A seed fixed by the chunk's first problem, so a rerun samples a chunk the same way."""
    return cfg.seed * 1_000_003 + zlib.crc32(problem_id.encode())


class ReferenceTeacher:
    """`teacher: reference`: the task's own worked solutions, as if written by people (the
    tiny world's stand-in for R1's human-curated cold-start data). Costs nothing."""

    n_params = 0
    tokenizer = None  # the engine interface's: nothing is tokenised

    def __init__(self, task, problems):
        missing = [p for p in problems if task.reference(p) is None]
        if missing:
            raise ReasonlabError(f"teacher: task {task.name} has no reference solutions")
        self.answers = {p.id: task.reference(p) for p in problems}

    def prompt(self, template, task, problem):
        return template, problem.id

    def generate(self, prompts, params):
        # nothing generated: 0 tokens; the text is what follows the template's prefill
        return [[Completion(tpl.strip_prefill(self.answers[pid]), [], "stop", 0)] * params.n
                for tpl, pid in prompts]


def make_teacher(cfg: TracesConfig):
    """The rollout engine behind `cfg.teacher`: HTTP for a URL, transformers for a directory,
    the task's worked solutions for `reference`."""
    import os


    if cfg.teacher == "reference":
        task = get_task(cfg.task)
        return ReferenceTeacher(task, task.problems("train", cfg.n, seed=cfg.seed))

    if is_url(cfg.teacher):
        return OpenAIChatEngine(cfg.teacher, cfg.teacher_model, os.environ.get(cfg.api_key_env), cfg.timeout,
                                cfg.max_retries, cfg.backoff, cfg.requests_per_minute, cfg.concurrency)

    if not Path(cfg.teacher, "config.json").exists():
        raise ReasonlabError(f"teacher: {cfg.teacher} is neither a URL nor a model directory with config.json")
    return HFEngine.from_pretrained(cfg.teacher)


def _done(path: Path) -> tuple[set[str], dict]:
    """Finished problem ids and the running totals recorded with them."""
    ids, totals = set(), {"verified": 0, "kept": 0, "tokens": 0, "prompt_tokens": 0, "seconds": 0.0}
    if path.exists():
        for row in read_jsonl(path):
            ids.add(row["problem"])
            for k in totals:
                totals[k] += row[k]
    return ids, totals


def generate_traces(cfg: TracesConfig, engine=None, log=print) -> dict:
    """Run (or resume) trace generation; returns the summary printed at the end."""
    cfg.validate()
    task, out = get_task(cfg.task), Path(cfg.out)
    engine = engine or make_teacher(cfg)
    template, source = teacher_template(cfg, engine)
    log(f"traces: template {template.name} ({source})")
    if not cfg.teacher_model and isinstance(getattr(engine, "model", None), str):
        cfg.teacher_model = engine.model  # the name a URL teacher resolved, for the rows
    done_path = out.with_name(out.name + ".done")
    done, totals = _done(done_path)
    has_rows = {r["problem"] for r in read_jsonl(out)} if out.exists() else set()
    todo = [p for p in task.problems("train", cfg.n, seed=cfg.seed) if p.id not in done]

    attempts = _Attempts(cfg.attempts)
    with JsonlAppender(out) as sink, JsonlAppender(done_path) as marks, attempts, \
            Progress("traces", cfg.n, len(done)) as bar:
        for i in range(0, len(todo), cfg.batch):
            chunk = todo[i : i + cfg.batch]
            for mark in _sample_chunk(cfg, task, template, engine, chunk, sink, has_rows, attempts):
                marks.write(mark)
                for k in totals:
                    totals[k] += mark[k]
            bar.set(min(i + cfg.batch, len(todo)) + len(done), f"problems, {totals['kept']} traces kept", log)
    return _summary(cfg, totals, engine.n_params)


class _Attempts:
    """Every sample of every problem, once per problem (like the kept rows), when asked for."""

    def __init__(self, path: str):
        self.sink = JsonlAppender(path) if path else None
        self.seen = {r["problem"] for r in read_jsonl(path)} if path and Path(path).stat().st_size else set()

    def write(self, cfg: TracesConfig, task, problem, texts: list[str], good: list[int]) -> None:
        """`good` indexes the distinct verified texts; a repeat of one is verified too (the same
        text, the same verdict), never a wrong attempt for `reasonlab journey` to correct."""
        if self.sink is None or problem.id in self.seen:
            return
        right = {texts[j] for j in good}
        self.sink.write_many({"problem": problem.id, "prompt": task.prompt(problem), "question": problem.question,
                              "answer": problem.answer, "task": cfg.task, "completion": t, "verified": t in right}
                             for t in texts)
        self.seen.add(problem.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.sink is not None:
            self.sink.close()


def teacher_template(cfg: TracesConfig, engine) -> tuple[Template, str]:
    """The template the teacher is prompted with (see `TracesConfig.template`) and where it came
    from. A server's model gets the template recorded in the directory the server loaded it from
    (vLLM reports it as `root` in `/models`), else chat-think in the server's own chat template."""
    if cfg.template:
        return get_template(cfg.template), "given"
    if cfg.teacher == "reference":
        return get_template("tiny"), "the tiny world's, for reference solutions"
    if is_url(cfg.teacher):
        root = engine.served_root()
        found = recorded(root) if root and Path(root).is_dir() else None
        if found is not None:
            return found, f"recorded in {root}, the served model's directory"
        return get_template("chat-think"), "no recorded template where the server says its model is"
    found = recorded(cfg.teacher)
    return resolve("", cfg.teacher, engine.tokenizer), "recorded in the teacher's directory" if found else "default"


def _sample_chunk(cfg: TracesConfig, task, template, engine, chunk, sink, has_rows: set,
                  attempts: _Attempts) -> list[dict]:
    """Sample K completions for each problem of `chunk` in one engine call, write the kept rows
    of problems that have none yet, and return the problems' done-marks."""
    t0 = time.time()
    params = cfg.sampling_params(n=cfg.samples, seed=_chunk_seed(cfg, chunk[0].id))
    groups = sample(engine, template, task, chunk, params, lenient=False)
    seconds, marks = (time.time() - t0) / len(chunk), []
    for g in groups:
        p, group = g.problem, [s.completion for s in g.completions]
        texts = [s.response for s in g.completions]  # the assistant's whole turn
        good = verified(texts, p.answer, cfg.task, p.question, cfg, answer_format=template.answer_format,
                        correct=[s.correct for s in g.completions])
        keep = choose(good, texts, cfg)
        if p.id not in has_rows:
            sink.write_many(_row(cfg, task, template, p, texts[j], group[j]) for j in keep)
            has_rows.add(p.id)
        attempts.write(cfg, task, p, texts, set(good))
        marks.append({"problem": p.id, "verified": len(good), "kept": len(keep),
                      "tokens": sum(c.num_tokens for c in group),
                      "prompt_tokens": group[0].prompt_tokens if group else 0, "seconds": seconds})
    return marks


def _row(cfg: TracesConfig, task, template, problem, text: str, completion) -> dict:
    return {"prompt": template.messages(task, problem),
            "completion": [{"role": "assistant", "content": text}],
            "problem": problem.id, "question": problem.question, "task": cfg.task, "meta": problem.meta,
            "template": template.name, "answer": problem.answer, "rewards": {"accuracy": 1.0, "format": 1.0},
            "completion_tokens": completion.num_tokens, "prompt_tokens": completion.prompt_tokens,
            "teacher": _teacher_name(cfg)}


def _teacher_name(cfg: TracesConfig) -> str:
    if is_url(cfg.teacher):
        return cfg.teacher_model or cfg.teacher
    return Path(cfg.teacher).name or cfg.teacher


def _summary(cfg: TracesConfig, totals: dict, n_params: int) -> dict:
    attempted = cfg.n * cfg.samples
    return {"problems": cfg.n, "samples": attempted, "verified": totals["verified"], "kept": totals["kept"],
            "acceptance_rate": totals["verified"] / attempted, "generated_tokens": totals["tokens"],
            "flops": 2.0 * n_params * (totals["tokens"] + totals["prompt_tokens"]) if n_params else None,
            "usd_gpu": gpu_usd(totals["seconds"], cfg.prices), "usd_api": api_usd(totals["tokens"], cfg.prices)}
