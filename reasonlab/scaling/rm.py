"""Reward models for inference-time scaling: an outcome RM (is this completion right?) and a
process RM (will this partial solution still end right?), both a causal-LM backbone with a
scalar head (`AutoModelForSequenceClassification`, one label), saved in Hugging Face form.

`reasonlab rm train --kind orm|prm` labels the policy's own rollouts on training problems:
- ORM: each sampled completion, labelled by the task's verifier.
- PRM: every step prefix of each sampled completion (steps are the lines inside `<think>`),
  labelled by Monte-Carlo rollouts from that prefix (Math-Shepherd's hard estimate: 1 when any
  of `mc_rollouts` continuations reaches the right answer); the full completion is labelled by
  the verifier.
Training is binary cross-entropy on the scalar logit; the held-out problems' examples give the
AUC reported at the end. The score used at inference is the sigmoid of the logit.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from accelerate.utils import gather_object

from reasonlab.errors import ReasonlabError
from reasonlab.io import write_json_atomic
from reasonlab.rollout import HFEngine
from reasonlab.rollout.hf import load_tokenizer
from reasonlab.rollout.options import Sampling
from reasonlab.sampling import sample, score
from reasonlab.tasks import get_task
from reasonlab.templates import resolve
from reasonlab.train.trainer import Trainer, TrainSettings


@dataclass
class RMConfig(TrainSettings, Sampling):
    """Configuration of `reasonlab rm train` (training runs on the shared trainer, whose settings
    it has: checkpoints, resume, metrics)."""

    model: str = field(default="", metadata={"help": "policy model dir: writes the rollouts and initialises the backbone"})
    task: str = field(default="arithmetic", metadata={"help": "task whose training problems are used"})
    kind: str = field(default="orm", metadata={"help": "orm (outcome) or prm (process)"})
    out: str = field(default="runs/rm", metadata={"help": "output dir: examples.json (the labelled rollouts), checkpoints/, final/ (the reward model)"})
    n: int = field(default=200, metadata={"help": "training problems to roll out"})
    heldout: int = field(default=50, metadata={"help": "further problems whose rollouts measure the AUC"})
    samples: int = field(default=8, metadata={"help": "rollouts per problem"})
    mc_rollouts: int = field(default=4, metadata={"help": "PRM: continuations per step prefix"})
    epochs: int = field(default=3, metadata={"help": "passes over the labelled examples"})
    batch_size: int = field(default=32, metadata={"help": "examples per optimizer step"})
    steps: int = field(default=0, metadata={"help": "optimizer steps (0: epochs over the labelled examples)"})
    lr: float = field(default=3e-4, metadata={"help": "AdamW learning rate"})
    grad_clip: float = field(default=0.0, metadata={"help": "gradient-norm clip (0: none)"})
    seed: int = field(default=0, metadata={"help": "seed"})
    template: str = field(default="", metadata={"help": "prompt template of the policy's rollouts (default: the model's recorded one)"})
    prefill: str = field(default="", metadata={"help": "text that opens the policy's turn after the template's own prefill: the `prefill` of the scaling run the reward model will score"})

    def validate(self) -> None:
        if not self.model:
            raise ReasonlabError("model: give the policy model directory")
        if self.kind not in ("orm", "prm"):
            raise ReasonlabError(f"kind: {self.kind!r} is not orm or prm")
        for name in ("n", "heldout", "samples", "mc_rollouts", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ReasonlabError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ReasonlabError(f"steps: must be >= 0 (0: epochs over the labelled examples), got {self.steps}")

    def rollout_settings(self) -> dict:
        """What the labelled rollouts depend on: a resumed run must have made them the same way."""
        names = ("model", "task", "kind", "n", "heldout", "samples", "mc_rollouts", "seed", "template", "prefill",
                 "max_new_tokens", "temperature", "top_p")
        return {k: getattr(self, k) for k in names}


def auc(scores: list[float], labels: list[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney; ties count half); None without both classes.

    >>> auc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]), auc([0.5, 0.5], [1, 0]), auc([0.2], [1])
    (1.0, 0.5, None)
    """
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def step_prefixes(completion: str) -> list[str]:
    """The completion cut after each reasoning line (each ends with a newline), for PRM labels
    and beam search; a completion without `<think>` has none.

    >>> step_prefixes("<think>\\n2*3=6\\n6+1=7\\n</think>\\n<answer>7</answer>")
    ['<think>\\n2*3=6\\n', '<think>\\n2*3=6\\n6+1=7\\n']
    """
    m = re.match(r"(<think>\n?)(.*?)</think>", completion, re.S)
    if not m:
        return []
    out, at = [], m.end(1)
    for line in m.group(2).splitlines(keepends=True):
        at += len(line)
        if line.strip():
            out.append(completion[:at] if completion[:at].endswith("\n") else completion[:at] + "\n")
    return out


class RewardModel:
    """Scores `prompt + text` with a trained scalar head; counts the tokens it reads."""

    def __init__(self, path: str, device: str | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not Path(path, "config.json").exists():
            raise ReasonlabError(f"reward model directory not found or has no config.json: {path}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).to(self.device).eval()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.tokens = 0

    @torch.no_grad()
    def score(self, texts: list[str], batch: int = 64) -> list[float]:
        """Scores in `texts` order; batched by length, so a batch pads little (beam search scores
        thousands of prefixes of very different lengths per step)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [0.0] * len(texts)
        for i in range(0, len(order), batch):
            rows = order[i : i + batch]
            enc = encode(self.tokenizer, [texts[j] for j in rows], self.device)
            self.tokens += int(enc["attention_mask"].sum())
            for j, v in zip(rows, torch.sigmoid(self.model(**enc).logits[:, 0]).tolist()):
                out[j] = v
        return out


def encode(tokenizer, texts: list[str], device) -> dict:
    """Right-padded ids: the classification head reads the last non-pad token."""
    tokenizer.padding_side = "right"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(device) for k, v in enc.items()}


def label_rollouts(cfg: RMConfig, engine, problems, seed: int) -> list[tuple[str, int]]:
    """(text, label) examples from the policy's rollouts on `problems` (see the module doc)."""
    task, template = get_task(cfg.task), resolve(cfg.template, cfg.model, engine.tokenizer).with_prefill(cfg.prefill)
    params = cfg.sampling_params(n=cfg.samples, seed=seed)
    examples: list[tuple[str, int]] = []
    for g in sample(engine, template, task, problems, params, lenient=False):
        p, prompt, texts = g.problem, g.prompt, [s.completion.text for s in g.completions]
        examples += [(prompt + s.completion.text, int(s.correct == 1.0)) for s in g.completions]
        if cfg.kind == "prm":
            prefixes = sorted({q for t in texts for q in step_prefixes(t)})
            if prefixes:  # each step prefix continued mc_rollouts times from where it stops
                conts = engine.generate([prompt + q for q in prefixes],
                                        cfg.sampling_params(n=cfg.mc_rollouts, seed=seed + 1))
                for q, group_q in zip(prefixes, conts):
                    hits = score(task, template, p, [replace(c, text=q + c.text) for c in group_q], lenient=False)
                    examples.append((prompt + q, int(any(h.correct == 1.0 for h in hits))))
    return examples


def _head_on(path: str):
    """The policy's backbone with a fresh scalar head; transformers' load report (the head is
    "MISSING", which is the point) is silenced."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    finally:
        hf_logging.set_verbosity(level)


def labelled_examples(cfg: RMConfig, acc, log=print) -> dict:
    """The labelled rollouts `{"train": [[text, label], …], "heldout": […], "seconds": …}`:
    rolled out once (each of `acc`'s processes its share of the problems, then every process
    holds them all), written to OUT/examples.json, read back when a killed run resumes."""
    path = Path(cfg.out) / "examples.json"
    if cfg.resume and path.exists():
        made = json.loads(path.read_text())
        other = [k for k, v in made.get("settings", cfg.rollout_settings()).items() if cfg.rollout_settings().get(k) != v]
        if other:
            raise ReasonlabError(f"{path}: rolled out with other {', '.join(other)}; use another out to train anew")
        return made
    t0, rank, world = time.time(), acc.process_index, acc.num_processes
    engine = HFEngine.from_pretrained(cfg.model, str(acc.device))
    problems = get_task(cfg.task).problems("train", cfg.n + cfg.heldout, seed=cfg.seed)
    train = label_rollouts(cfg, engine, problems[: cfg.n][rank::world], cfg.seed)
    held = label_rollouts(cfg, engine, problems[cfg.n :][rank::world], cfg.seed + 7)
    if world > 1:
        train, held = gather_object(train), gather_object(held)
    log(f"rm: {len(train)} training examples ({sum(y for _, y in train)} positive), {len(held)} held out")
    examples = {"train": train, "heldout": held, "seconds": time.time() - t0, "settings": cfg.rollout_settings()}
    if acc.is_main_process:
        write_json_atomic(path, examples)
    return examples


class RMTrainer(Trainer):
    """The shared trainer with the policy's backbone under a fresh scalar head and binary
    cross-entropy on the labelled rollouts, shuffled once per epoch by a seeded `random.Random`;
    under `accelerate launch` each process rolls out and trains on its share of each batch."""

    method = "rm"

    def _load_model(self):
        cfg = self.cfg
        self.examples = labelled_examples(cfg, self.acc, self.log)  # rolled out before the head is drawn
        self.tokenizer = load_tokenizer(cfg.model)
        self.template = resolve(cfg.template, cfg.model, self.tokenizer)
        model = _head_on(cfg.model)
        model.config.pad_token_id = self.tokenizer.pad_token_id
        return model

    def _setup(self) -> None:
        cfg, train = self.cfg, self.examples["train"]
        rng, self.batches = random.Random(cfg.seed), []
        for _ in range(cfg.epochs):  # every epoch's order, fixed by the seed: a resume continues it
            order = list(range(len(train)))
            rng.shuffle(order)
            self.batches += [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        if self.acc.num_processes > 1:  # every process needs a share of each batch (else its forward has no rows)
            self.batches = [b for b in self.batches if len(b) >= self.acc.num_processes]
        self.total_steps = cfg.steps or len(self.batches)
        self.n_params = sum(p.numel() for p in self.policy.parameters())
        self.model.train()

    def train_step(self) -> dict:
        rows = self.batches[self.step % len(self.batches)][self.acc.process_index :: self.acc.num_processes]
        batch = [self.examples["train"][j] for j in rows]  # this process's share of the step's batch
        enc = encode(self.tokenizer, [t for t, _ in batch], self.acc.device)
        target = torch.tensor([float(y) for _, y in batch], device=self.acc.device)  # [B]
        logit = self.model(**enc).logits[:, 0]  # [B]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, target)
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(loss)
        gnorm, stepped = self._apply_gradients()
        lr = self.sched.get_last_lr()[0]
        self.sched.step()  # the shared trainer's linear warmup (constant 1 without warmup_steps)
        self.step += 1
        self.flops += self._global(6 * self.n_params * int(enc["attention_mask"].sum()), "sum")
        return self._mean_over_processes({"loss": loss.item(), "grad_norm": gnorm, "lr": lr, "nonfinite": not stepped})

    def _train_info(self) -> dict:
        """The reward model's record: its examples, the held-out AUC, the first and last loss."""
        held = self.examples["heldout"]
        score = auc(_Scorer(self.policy, self.tokenizer).score([t for t, _ in held]), [y for _, y in held])
        losses = [json.loads(x)["loss"] for x in (Path(self.cfg.out) / "metrics.jsonl").read_text().splitlines()]
        return {"kind": self.cfg.kind, "train_examples": len(self.examples["train"]), "heldout_examples": len(held),
                "heldout_positive_rate": sum(y for _, y in held) / max(1, len(held)), "heldout_auc": score,
                "first_loss": losses[0], "last_loss": losses[-1]}


def train_rm(cfg: RMConfig, log=print) -> dict:
    """Roll out and label (once), train (resuming when `cfg.resume`), measure the held-out AUC,
    save OUT/final; returns the summary (`final/reasonlab_train.json`)."""
    cfg.validate()
    trainer = RMTrainer(cfg, log=log)
    final = trainer.train()
    trainer.acc.wait_for_everyone()  # the main process writes the record every process returns
    summary = load_summary(str(final))
    log(f"rm: held-out AUC {summary['heldout_auc'] if summary['heldout_auc'] is None else round(summary['heldout_auc'], 3)}, "
        f"saved {final}")
    return summary


class _Scorer(RewardModel):
    def __init__(self, model, tokenizer):  # an in-memory model, for the held-out AUC
        self.model, self.tokenizer, self.device, self.tokens = model.eval(), tokenizer, model.device, 0


def load_summary(path: str) -> dict:
    """A trained reward model's record, its seconds the rollouts' and the training's together."""
    info = json.loads(Path(path, "reasonlab_train.json").read_text())
    examples = Path(path).parent / "examples.json"
    rollouts = json.loads(examples.read_text())["seconds"] if examples.exists() else 0.0
    return {**info, "seconds": rollouts + info["train_seconds"]}
