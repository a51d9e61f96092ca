"""The GRPO family with verifiable rewards (R1-Zero, TinyZero): one step, top to bottom.

Each step samples `prompts_per_step` training problems, generates G completions per prompt with
the current policy, scores them with the weighted rule-based rewards, turns rewards into
advantages (`rl/advantages.py`: GRPO's group mean, RLOO, REINFORCE++), and takes `mu` policy
updates on that batch with the loss chosen by `loss_type` (`rl/losses.py`: GRPO, bnpo, DAPO,
Dr. GRPO, CISPO, SAPO; token or sequence ratios for GSPO), each update one optimizer step on the
objective of the whole step on all processes (`rl/update.py`).

Where this departs from the papers:
  - the learning rate is constant after warmup (DeepSeekMath uses constant; TRL decays linearly);
  - with mu = 1 the "old" policy is the current one, so the ratio is exactly 1 (old log-probs are
    the detached current ones, as TRL does); with mu > 1 they are computed once before the updates;
  - a rollout engine that is not the policy itself (vLLM, or our transformers engine decoding from
    a bf16 copy) gets TRL's sampler-mismatch correction by default (`rl/mismatch.py`); on-policy
    its factor comes from the loss forward's own log-probs (no forward pass of its own); our
    engine decoding from the policy itself needs none.
Devices and distribution go through accelerate: each process draws its own prompts and
generates with the unwrapped policy; batch statistics and normalisers are reduced over processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from reasonlab.errors import ReasonlabError
from reasonlab.evaluation.evaluate import greedy_eval
from reasonlab.rl.advantages import advantages
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.forward import full_logits, shared_prefix_logits
from reasonlab.rl.losses import (
    LossTerms,
    entropy_threshold,
    high_entropy_mask,
    policy_loss,
    token_entropy,
    token_logprobs,
)
from reasonlab.rl.mismatch import merge_sums, mismatch_metrics, mismatch_sums, sampler_weights
from reasonlab.rl.progress import plot_curves
from reasonlab.rl.records import LossBatch, RewardMatrix
from reasonlab.rl.rollouts import Sampled, collect
from reasonlab.rl.update import (
    MicroBatch,
    UpdateResult,
    accumulate,
    drop_idle_rows,
    pad_micro_batches,
    split,
)
from reasonlab.rollout import load_model
from reasonlab.rollout.vllm import make_engine
from reasonlab.tasks import get_task
from reasonlab.train.memory import check_fits
from reasonlab.train.trainer import Trainer


class GRPOTrainer(Trainer):
    method = "grpo"

    def _preflight(self) -> None:
        plan = check_fits(self.cfg, str(self.acc.device))
        if not self.cfg.micro_batch_size:  # auto: the largest the planner says fits
            self.cfg.micro_batch_size = plan.micro_batch
            self.log(f"grpo: micro_batch_size={plan.micro_batch} (planned; set micro_batch_size= to change)")

    def _setup(self) -> None:
        cfg = self.cfg
        self.ref = None
        if cfg.beta > 0 and not cfg.lora_r:  # with LoRA the reference is the base with adapters off
            self.ref = load_model(cfg.model, str(self.acc.device), torch.float32)[0].requires_grad_(False)
        self.engine = make_engine(self.policy, self.tokenizer, cfg.model, cfg.rollout_backend, cfg.seed,
                                  bf16=cfg.precision == "bf16")
        self.log(f"grpo: rollouts by {type(self.engine).__name__} (rollout_backend={cfg.rollout_backend})")
        mode = cfg.importance_sampling_correction
        self.correct_sampler = mode == "on" or (mode == "auto" and not self.engine.samples_from_policy)
        if self.correct_sampler and cfg.top_p < 1:  # a biased ratio (huggingface/trl#6789): refuse it
            raise ReasonlabError("top_p: with top_p < 1 the sampler's log-probs are over the nucleus and the "
                                 "trainer's over the whole vocabulary, which biases the sampler correction; "
                                 "use top_p=1 or importance_sampling_correction=off")
        self.losses = cfg.loss_settings
        self.task = get_task(cfg.task)
        self.n_params = self.engine.n_params
        self.stream = self.task.iter_problems("train", cfg.seed * 1000 + self.acc.process_index)
        self.position = 0

    def next_problems(self, k: int):
        self.position += k
        return [next(self.stream) for _ in range(k)]

    def _data_state(self) -> dict:
        return {"position": self.position}

    def _load_data_state(self, state: dict) -> None:
        self.stream = self.task.iter_problems("train", self.cfg.seed * 1000 + self.acc.process_index)
        self.position = 0
        self.next_problems(state["position"])

    def _after_load(self) -> None:
        self.engine.sync_weights(self.policy)

    # ---------------------------------------------------------------- one step
    def train_step(self) -> dict:
        cfg, t0 = self.cfg, time.time()
        seed = cfg.seed * 1_000_003 + self.step * 101 + self.acc.process_index
        # 1. sample G completions per prompt with the current policy; score each with every reward
        self.policy.eval()
        sampled = collect(cfg, self.engine, self.task, self.template, self.next_problems, seed, self.correct_sampler)
        gen_s = time.time() - t0
        # 2. advantages: group baselines on this process, batch statistics over all processes
        rewards = RewardMatrix.of(sampled.groups)
        adv = advantages(rewards.values, rewards.scored, cfg.generations_per_prompt, cfg.baseline, cfg.scale_rewards,
                         reduce=self._reduce)  # [N]
        # 3. the loss batch from the engine's token ids (scored rows only)
        batch = LossBatch.build(sampled.groups, adv, self.tokenizer.pad_token_id, cfg.overlong_filter)
        # 3b. rows of advantage 0 cannot move the weights (β = 0): train without them, keeping their
        #     share of the normaliser, so the gradient is the same for less compute
        rows = batch.n
        batch, idle = drop_idle_rows(batch, self.losses, cfg.top_entropy_quantile < 1)
        batch = batch.to(self.acc.device)
        # 4. micro-batches, as many on every process (DDP reduces once per synced backward)
        mbs = split(batch, cfg.micro_batch_size)
        mbs = pad_micro_batches(mbs, int(self._global(len(mbs))), self._stand_in)
        # 5. before any update: old (when off-policy), reference and sampler log-probs, the entropy selection
        self._prepare(mbs)
        # 6. mu updates, each one optimizer step on the whole step's objective
        self.policy.train()
        if self._global(batch.n, "sum") > 0:
            out = self._update(mbs, idle)
        else:  # no row to train anywhere: no update (Adam would still move on momentum)
            out = UpdateResult(skipped=True)
        # 7. the engine samples the next step from the updated weights
        if not out.skipped:
            self.engine.sync_weights(self.policy)
        self.step += 1
        self.flops += self._global(self._step_flops(sampled, batch), "sum")
        extra = {**out.metrics(), **self._mismatch(mbs), "trained_rows": batch.n / max(rows, 1)}
        return self._metrics(sampled, extra, time.time() - t0, gen_s)

    def _forward(self, model, mb: LossBatch) -> torch.Tensor:
        return completion_logits(model, mb, self.cfg.temperature, self.cfg.shared_prefix)  # [B, C, V]

    def _ref_logp(self, mb: LossBatch) -> torch.Tensor:
        if self.ref is not None:
            return token_logprobs(self._forward(self.ref, mb), mb.targets)
        with self.policy.disable_adapter():
            return token_logprobs(self._forward(self.model, mb), mb.targets)

    def _stand_in(self) -> LossBatch:
        """A 1-row batch whose loss is multiplied by 0 (a process with no rows this step)."""
        one = torch.ones(1, 2, dtype=torch.long, device=self.acc.device)
        zero = torch.zeros(1, 1, device=self.acc.device)
        return LossBatch(input_ids=one, attention_mask=one, targets=one[:, 1:], completion_mask=one[:, 1:],
                         loss_mask=zero, advantages=zero[0], sampler_logp=zero, prompt_ids=one[:, :1],
                         prompt_mask=one[:, :1], group=torch.zeros(1, dtype=torch.long, device=self.acc.device))

    @torch.no_grad()
    def _prepare(self, mbs: list[MicroBatch]) -> None:
        """Fill each micro-batch's `pre` (once per distinct one: repeats share it)."""
        cfg = self.cfg
        for mb in mbs:
            if mb.pre.filled:
                continue
            rows, pre = mb.rows, mb.pre
            if self._pre_pass:
                logits = self._forward(self.model, rows)  # [B, C, V]
                pre.old = token_logprobs(logits, rows.targets)  # [B, C]
                if cfg.top_entropy_quantile < 1:
                    pre.entropy = token_entropy(logits)  # [B, C]
            if cfg.beta > 0:
                pre.ref = self._ref_logp(rows)  # [B, C]
            if self.correct_sampler and self._pre_pass:
                pre.sampler_weight = self._sampler_weights(pre.old, rows)  # [B, C|1]
        if cfg.top_entropy_quantile < 1:
            self._entropy_masks(mbs)

    def _mismatch(self, mbs: list[MicroBatch]) -> dict:
        """TRL's sampler-mismatch metrics over the step, from each micro-batch's old log-probs and
        factor (set before the update, or on-policy by its first loss pass)."""
        if not self.correct_sampler:
            return {}
        sums = [mismatch_sums(mb.pre.old, mb.rows.sampler_logp, mb.rows.loss_mask, mb.pre.sampler_weight)
                for mb in mbs if mb.real and mb.pre.sampler_weight is not None]
        return mismatch_metrics(merge_sums(sums, self.acc.device), self._reduce, lambda t: self._reduce(t, "max"))

    def _entropy_masks(self, mbs: list[MicroBatch]) -> None:
        """The step's (1 − q)-quantile of token entropy over every process, then each micro-batch's mask."""
        local = torch.cat([mb.pre.entropy[mb.rows.loss_mask.bool()] for mb in mbs if mb.real]
                          or [torch.zeros(0, device=self.acc.device)])  # [K]
        if self.acc.num_processes > 1:
            padded = self.acc.pad_across_processes(local, dim=0, pad_index=-1e9)  # entropies are ≥ 0
            local = self.acc.gather(padded)
            local = local[local != -1e9]
        threshold = entropy_threshold(local, self.cfg.top_entropy_quantile)
        for mb in mbs:
            mb.pre.keep = high_entropy_mask(mb.pre.entropy, mb.rows.loss_mask, threshold)

    def _loss_terms(self, mb: MicroBatch) -> LossTerms:
        cfg = self.cfg
        correction = self._sampler_weights if self.correct_sampler and not self._pre_pass else None
        return micro_batch_loss(self.model, mb, self.losses, cfg.temperature, cfg.shared_prefix, cfg.mu == 1,
                                correction)

    @property
    def _pre_pass(self) -> bool:
        """Whether old log-probs need a forward before the update: several updates per batch, or
        the high-entropy mask's step-wide quantile. On-policy, the sampler correction does not."""
        return self.cfg.mu > 1 or self.cfg.top_entropy_quantile < 1

    def _sampler_weights(self, old: torch.Tensor, rows: LossBatch) -> torch.Tensor:
        cfg = self.cfg
        return sampler_weights(old, rows.sampler_logp, rows.loss_mask, cfg.importance_sampling_mode,
                               cfg.importance_sampling_clip_max, cfg.importance_sampling_clip_min or None)

    def _update(self, mbs: list[MicroBatch], idle: float = 0.0) -> UpdateResult:
        cfg, losses, sums = self.cfg, [], {}
        for _ in range(cfg.mu):
            self.opt.zero_grad(set_to_none=True)
            acc = accumulate(mbs, self._loss_terms, self.losses, backward=self.acc.backward,
                             no_sync=lambda: self.acc.no_sync(self.model), world=self.acc.num_processes,
                             reduce_sum=self._reduce, idle=idle)
            losses.append(acc.loss)
            sums = acc.sums
            if not torch.isfinite(torch.tensor(acc.loss)):
                self.opt.zero_grad(set_to_none=True)
                return UpdateResult(acc.loss, float("nan"), skipped=True, nonfinite=True)
            gnorm, stepped = self._apply_gradients()
            if not stepped:
                return UpdateResult(acc.loss, gnorm, skipped=True, nonfinite=True)
        self.sched.step()
        tokens = max(sums.pop("tokens", 0.0), 1.0)
        return UpdateResult(sum(losses) / len(losses), gnorm, diagnostics={k: v / tokens for k, v in sums.items()})

    def _step_flops(self, sampled: Sampled, batch: LossBatch) -> float:
        """2·N per prompt and generated token (groups dynamic sampling dropped included); the loss
        forwards (pre-pass, reference, policy)."""
        cfg, gen = self.cfg, sampled.processed_tokens
        trained = batch.shared_tokens if cfg.shared_prefix else batch.tokens
        pre = self._pre_pass
        return 2 * self.n_params * (gen + trained * (pre + (cfg.beta > 0))) + 6 * self.n_params * trained * cfg.mu

    def _metrics(self, sampled: Sampled, out: dict, dt: float, gen_s: float) -> dict:
        """The step's row. Reward, lengths and the unscored count describe the first round as sampled
        (dynamic sampling's drops would hide a step whose groups were all right or all wrong);
        `groups` counts those trained on; throughput counts every round."""
        first = sampled.first_round
        comps = [s.completion for g in first for s in g.completions]
        scored = [r for g in first for r in g.reward if r is not None]
        r = torch.tensor(scored)
        row = {"reward": r.mean().item() if r.numel() else 0.0, "reward_std": r.std().item() if r.numel() > 1 else 0.0}
        for name in self.cfg.rewards:
            vals = [v for g in first for v in g.per_reward[name] if v is not None]
            row[f"rewards/{name}/mean"] = sum(vals) / len(vals) if vals else 0.0
        row.update({"frac_reward_zero_std": sampled.zero_std_fraction, "refills": sampled.refills,
                    "groups": len(sampled.groups), **out, "unscored": len(comps) - len(scored),
                    "completions/mean_length": sum(c.num_tokens for c in comps) / max(1, len(comps)),
                    "completions/clipped_ratio": sum(c.finish_reason == "length" for c in comps) / max(1, len(comps)),
                    "step_time": dt, "generate_time": gen_s,
                    "tokens_per_second": sampled.generated_tokens / max(dt, 1e-9),
                    "completions_per_second": len(comps) * (1 + sampled.refills) / max(dt, 1e-9),
                    "lr": self.sched.get_last_lr()[0]})
        return self._mean_over_processes(row)

    # ---------------------------------------------------------------- evaluation and plots
    def evaluate(self) -> dict:
        self.policy.eval()
        return greedy_eval(self.engine, self.cfg.task, self.cfg.eval_n, self.cfg.max_new_tokens, self.template)

    def _start(self, metrics) -> None:
        if self.cfg.eval_n:
            metrics.log(0, {f"eval/{k}": v for k, v in self.evaluate().items()})

    def _after_step(self, row: dict, bar) -> None:
        cfg = self.cfg
        if not self.acc.is_main_process:
            return
        due = (cfg.eval_every and self.step % cfg.eval_every == 0) or self.last_step
        if cfg.eval_n and due:
            row.update({f"eval/{k}": v for k, v in self.evaluate().items()})
        if cfg.sample_every and self.step % cfg.sample_every == 0:
            bar.show_samples(self.engine, self.task, cfg, self.template)

    def _plot(self, out: Path) -> None:
        plot_curves(out)


def completion_logits(model, mb: LossBatch, temperature: float, shared_prefix: bool) -> torch.Tensor:
    """[B, C, V] logits of the distribution the rollouts were sampled from (/ T, as TRL does)."""
    logits = shared_prefix_logits(model, mb) if shared_prefix else full_logits(model, mb)  # [B, C, V]
    if temperature == 1.0:  # a pass over B·C·V values saved (152k-token vocabularies: seconds a step)
        return logits  # [B, C, V]
    return logits / max(temperature, 1e-6)  # [B, C, V]


def micro_batch_loss(model, mb: MicroBatch, s, temperature: float, shared_prefix: bool, on_policy: bool,
                     correction: Callable | None = None) -> LossTerms:
    """One micro-batch's loss terms; on-policy (mu = 1) the old log-probs are the detached current
    ones, and `correction(old, mb)` (the sampler-mismatch factor) is taken from them here rather
    than from a forward pass of its own before the update: the same values, one forward fewer."""
    rows = mb.rows
    logits = completion_logits(model, rows, temperature, shared_prefix)  # [B, C, V]
    logp = token_logprobs(logits, rows.targets)  # [B, C]
    pre = mb.pre
    old = logp.detach() if on_policy else pre.old  # [B, C]
    if on_policy and correction is not None and pre.sampler_weight is None:
        pre.old, pre.sampler_weight = old, correction(old, rows)  # [B, C], [B, C|1]
    terms = policy_loss(logp, old, rows.advantages, rows.loss_mask, s, ref_logp=pre.ref,
                        sampler_weight=pre.sampler_weight, token_mask=pre.keep)
    with torch.no_grad():
        terms.stats["entropy"] = (token_entropy(logits) * rows.loss_mask).sum()  # []
    return terms


def run_grpo(cfg: GRPOConfig, log=print) -> Path:
    return GRPOTrainer(cfg, log).train()
