"""`reasonlab scale`: spend more compute at inference, method by method, on the same held-out
problems, and compare accuracy against tokens.

Writes `OUT/scale.json` (after each method, atomically: a crash keeps the finished methods) with
`methods: {curve: [points]}` and a compute-matched table, and `OUT/scaling.png`: accuracy vs
tokens per problem (log x), one curve per method. See `methods.py` for the methods and how
tokens are counted.

Every run also records the `greedy` curve: one greedy answer per problem from the very prompt the
methods sample from (template, then `prefill`). It is the baseline a method is judged against:
a vote over samples beating the greedy answer of a *worse* prompt shows the prompt's effect, not
the method's. The `cot` curves are where prompts are compared (without `prefill`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from reasonlab.errors import ReasonlabError
from reasonlab.io import write_json_atomic
from reasonlab.rollout import Completion, HFEngine
from reasonlab.rollout.options import Sampling, sampling_field
from reasonlab.sampling import sample, score
from reasonlab.scaling.methods import METHODS
from reasonlab.scaling.rm import RewardModel
from reasonlab.scaling.select import mean_logprob
from reasonlab.tasks import get_task
from reasonlab.templates import resolve
from reasonlab.train.progress import Progress


@dataclass
class ScaleConfig(Sampling):
    """Configuration of `reasonlab scale`."""

    model: str = field(default="", metadata={"help": "policy model directory"})
    task: str = field(default="arithmetic", metadata={"help": "task"})
    method: str = field(default="all", metadata={"help": "cot, self-consistency, best-of-n, beam, budget, a comma list, or all (greedy, the baseline, always runs)"})
    n: int = field(default=200, metadata={"help": "held-out problems"})
    budgets: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16], metadata={"help": "samples (or beam candidates per step) per problem"})
    out: str = field(default="runs/scale", metadata={"help": "output dir: scale.json, scaling.png"})
    max_new_tokens: int = sampling_field("max_new_tokens", 64, "beam: per step")
    pool: int = field(default=64, metadata={"help": "samples drawn per problem for the sample-based methods; each budget is read off random subsets of them (0: exactly the largest budget, one draw)"})
    resamples: int = field(default=32, metadata={"help": "random subsets per budget averaged into each figure"})
    confidence: float = field(default=1.0, metadata={"help": "adaptive self-consistency: also stop when the leader holds this share of votes (1.0: only when it cannot be overtaken)"})
    orm: str = field(default="", metadata={"help": "outcome reward model dir (`reasonlab rm train --kind orm`) for best-of-n:orm and weighted votes"})
    prm: str = field(default="", metadata={"help": "process reward model dir (`reasonlab rm train --kind prm`) for beam and dvts"})
    search_budgets: list[int] = field(default_factory=list, metadata={"help": "beam/DVTS budgets, the costly methods ([]: every budget >= expansions)"})
    expansions: int = field(default=4, metadata={"help": "beam: continuations per kept beam (DVTS: per subtree)"})
    few_shot: int = field(default=3, metadata={"help": "cot: solved examples in the few-shot prompt"})
    caps: list[int] = field(default_factory=lambda: [8, 16, 32, 64], metadata={"help": "budget: thinking-token caps"})
    waits: list[int] = field(default_factory=lambda: [1, 2, 4], metadata={"help": "budget: numbers of 'Wait' extensions"})
    wait_word: str = field(default="Wait", metadata={"help": "budget: the text appended in place of `</think>` to extend thinking (s1's 'Wait'; a model trained on other reflection words may need those)"})
    seed: int = field(default=0, metadata={"help": "problem selection and sampling seed"})
    template: str = field(default="", metadata={"help": "prompt template: a built-in name (reasonlab templates) or a YAML file; default: the model's recorded one, else chat-think / r1-zero"})
    prefill: str = field(default="", metadata={"help": "text that opens the model's turn for every method and the greedy baseline, after the template's own prefill (`<think>\\n` makes a base model reason); the cot curves compare prompts without it"})

    def methods(self) -> list[str]:
        names = list(METHODS) if self.method == "all" else [m.strip() for m in self.method.split(",")]
        if self.method == "all" and not self.prm:
            names.remove("beam")  # needs a PRM; asked for by name it is an error instead
        return [m for m in names if m != "greedy"]  # the baseline: always run, first

    def validate(self) -> None:
        if not self.model:
            raise ReasonlabError("model: give a model directory")
        for m in self.methods():
            if m not in METHODS:
                raise ReasonlabError(f"method: {m!r} is not one of {', '.join(METHODS)}, all")
        if "beam" in self.methods() and not self.prm:
            raise ReasonlabError("prm: beam search needs a process reward model (reasonlab rm train --kind prm)")
        if not self.budgets or min(self.budgets) < 1 or self.budgets != sorted(self.budgets):
            raise ReasonlabError(f"budgets: must be increasing and >= 1, got {self.budgets}")
        if self.pool and self.pool < max(self.budgets):
            raise ReasonlabError(f"pool: {self.pool} samples cannot give budget {max(self.budgets)} (0 = the largest budget)")
        if any(b < self.expansions for b in self.search_budgets):
            raise ReasonlabError(f"search_budgets: each must be >= expansions ({self.expansions}), got {self.search_budgets}")
        if self.resamples < 1:
            raise ReasonlabError(f"resamples: must be >= 1, got {self.resamples}")
        if not self.wait_word.strip():
            raise ReasonlabError("wait_word: must not be empty")


class Context:
    """What the methods share: the engine, the problems, their prompts, the N samples drawn once,
    and the reward models (loaded on first use)."""

    def __init__(self, cfg: ScaleConfig, engine=None):
        self.cfg, self.task = cfg, get_task(cfg.task)
        self.problems = self.task.problems("eval", cfg.n, cfg.seed)
        self.engine = engine or HFEngine.from_pretrained(cfg.model)
        self.own = resolve(cfg.template, cfg.model, self.engine.tokenizer)  # the model's template: cot's prompts
        self.template = self.own.with_prefill(cfg.prefill)  # what every method samples from
        self.prompts = [self.engine.prompt(self.template, self.task, p) for p in self.problems]
        self.own_prompts = self.prompts if not cfg.prefill else [self.engine.prompt(self.own, self.task, p)
                                                                 for p in self.problems]
        self.prompt_tokens, self.rm_params = 0, 0
        self._samples, self._rms, self._greedy = None, {}, None

    def score(self, i: int, text: str, completion=None, template=None) -> dict:
        """A completion of problem i, as the methods read it: its vote key, right or not, tokens.
        `text` is what the model wrote after the prompt (a method's search may have built it in
        pieces, with no one completion behind it); `template` defaults to the methods' own."""
        c = Completion(text, [], "stop", 0) if completion is None else replace(completion, text=text)
        s = score(self.task, template or self.template, self.problems[i], [c], lenient=False)[0]
        return {"key": s.key, "correct": s.correct == 1.0, "tokens": completion.num_tokens if completion is not None else 0}

    def greedy(self) -> tuple[list[dict], int, int]:
        """The baseline: one greedy answer per problem from the methods' own prompts, scored;
        with its generated and prompt tokens (computed once)."""
        if self._greedy is None:
            groups = self.engine.generate(self.prompts, self.cfg.sampling_params(greedy=True))
            picked = [self.score(i, g[0].text, g[0]) for i, g in enumerate(groups)]
            self._greedy = (picked, sum(g[0].num_tokens for g in groups), sum(g[0].prompt_tokens for g in groups))
        return self._greedy

    def prompts_for(self, template: str) -> tuple[list[str] | None, str]:
        """Prompts for a cot template (built on the model's own template, without `prefill`) and
        the text prefilled into the answer."""
        fmt = self.engine.format_prompt
        if template in ("direct", "think") and self.own.prefill:
            return None, ""  # the template already prefills the turn
        if template in ("direct", "think"):
            prefill = "<answer>" if template == "direct" else "<think>\n"
            return [p + prefill for p in self.own_prompts], prefill
        if template == "zero-shot":
            return self.own_prompts, ""
        shots = self.task.problems("train", self.cfg.few_shot, self.cfg.seed)
        if any(self.task.reference(s) is None for s in shots):
            return None, ""
        examples = "\n\n".join(f"{self.task.prompt(s)}\n{self.task.reference(s)}" for s in shots)
        return [fmt(f"Solved examples:\n\n{examples}\n\nNow this one:\n{self.task.prompt(p)}") for p in self.problems], ""

    def samples(self, with_reward: bool = False) -> list[list[dict]]:
        """max(budgets) samples per problem, scored, with mean log-probs (and ORM scores)."""
        if self._samples is None:
            n = self.cfg.pool or max(self.cfg.budgets)
            params = self.cfg.sampling_params(n=n, seed=self.cfg.seed, logprobs=True)
            groups = sample(self.engine, self.template, self.task, self.problems, params, lenient=False)
            self.prompt_tokens = sum(g.completions[0].completion.prompt_tokens for g in groups)
            self._samples = [[{"key": s.key, "correct": s.correct == 1.0, "tokens": s.completion.num_tokens,
                               "text": s.completion.text, "logprob": mean_logprob(s.completion.logprobs)}
                              for s in g.completions] for g in groups]
            for s in (x for g in self._samples for x in g):
                s["prob"] = 0.0 if s["logprob"] is None else math.exp(s["logprob"])
        if with_reward and "reward" not in self._samples[0][0]:
            orm = self.rm("orm")
            for i, group in enumerate(self._samples):
                before = orm.tokens
                scores = orm.score([self.prompts[i] + s["text"] for s in group])
                per = (orm.tokens - before) / len(group)
                for s, r in zip(group, scores):
                    s["reward"], s["rm_tokens"] = r, per
        return self._samples

    def subsets(self, budget: int) -> list[list[list[dict]]]:
        """`resamples` times, a random ordered `budget`-subset of every problem's pool (the same
        subsets for every method at this budget, so their curves compare like with like)."""
        import random

        pool = self.samples()
        if len(pool[0]) == budget and self.cfg.resamples == 1:
            return [pool]
        rng = random.Random(f"{self.cfg.seed}|{budget}")
        return [[rng.sample(s, budget) for s in pool] for _ in range(self.cfg.resamples)]

    def rm(self, kind: str):
        if kind not in self._rms:
            self._rms[kind] = RewardModel(self.cfg.orm if kind == "orm" else self.cfg.prm)
            self.rm_params = max(self.rm_params, self._rms[kind].n_params)
        return self._rms[kind]

    def prm(self):
        return self.rm("prm")


def compute_matched(curves: dict[str, list[dict]]) -> list[dict]:
    """For each self-consistency budget's token spend, every curve's best accuracy at no more
    tokens per problem (None when the curve never gets that cheap).

    >>> compute_matched({"self-consistency": [{"budget": 1, "tokens_per_problem": 10, "accuracy": 0.2}],
    ...                  "x": [{"budget": 1, "tokens_per_problem": 5, "accuracy": 0.3},
    ...                        {"budget": 2, "tokens_per_problem": 20, "accuracy": 0.9}]})
    [{'tokens_per_problem': 10, 'self-consistency': 0.2, 'x': 0.3}]
    """
    anchor = curves.get("self-consistency") or next(iter(curves.values()), [])
    rows = []
    for a in anchor:
        row = {"tokens_per_problem": a["tokens_per_problem"]}
        for name, pts in curves.items():
            within = [p["accuracy"] for p in pts if p["tokens_per_problem"] <= a["tokens_per_problem"] + 1e-9]
            row[name] = max(within) if within else None
        rows.append(row)
    return rows


def plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in curves.items():
        xs = [max(p["tokens_per_problem"], 1e-3) for p in pts]
        ax.plot(xs, [100 * p["accuracy"] for p in pts], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("tokens per problem (generated + read by reward models)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run_scale(cfg: ScaleConfig, engine=None, log=print) -> dict:
    """Run the methods in turn; returns what `scale.json` holds."""
    cfg.validate()
    ctx, out = Context(cfg, engine), Path(cfg.out)

    result = {"model": cfg.model, "task": cfg.task, "n": cfg.n, "template": ctx.template.name, "prefill": cfg.prefill,
              "methods": {}, "seconds": {}, "problem_ids": [p.id for p in ctx.problems]}
    with Progress("scale", len(cfg.methods()) + 1, 0) as bar:
        for i, name in enumerate(["greedy", *cfg.methods()], 1):
            t0 = time.time()
            curves = METHODS[name](ctx)
            result["methods"].update(curves)
            result["seconds"][name] = time.time() - t0
            result["compute_matched"] = compute_matched(result["methods"])
            write_json_atomic(out / "scale.json", result)
            best = max(((c, p) for c, pts in curves.items() for p in pts), key=lambda cp: cp[1]["accuracy"])
            bar.set(i, f"methods; {name} done, best {best[0]}@{best[1]['budget']} {100 * best[1]['accuracy']:.1f}%")
            for curve, pts in curves.items():  # the figures themselves stay in the log
                log(f"scale: {curve:26s} " + "  ".join(
                    f"{p['budget']}:{100 * p['accuracy']:.1f}%/{p['tokens_per_problem']:.0f}t" for p in pts))
    plot(result["methods"], out / "scaling.png", f"{Path(cfg.model).name} on {cfg.task} ({cfg.n} problems)")
    return result
