"""GRPO and its variants (Dr. GRPO, DAPO) with verifiable rewards: R1-Zero and TinyZero.

Each step samples `prompts_per_step` training problems, generates G completions per prompt with
the current policy, scores them with the weighted rule-based rewards, turns rewards into
group-relative advantages, and takes `mu` clipped policy-gradient updates on that batch.

Where this departs from the papers:
  - the learning rate is constant after warmup (DeepSeekMath uses constant; TRL decays linearly);
  - with mu = 1 the "old" policy is the current one, so the ratio is exactly 1 and the old
    log-probs are not recomputed (as TRL does); with mu > 1 they are computed once before the
    updates;
  - rows whose gold answer cannot be parsed are dropped from the step, not scored 0.
Devices and distribution go through accelerate: each process draws its own prompts and
generates with the unwrapped policy, and gradients are averaged by DDP/FSDP/DeepSpeed.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from reasonlab.rl.advantages import group_advantages
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.forward import full_logits, shared_prefix_logits, slice_rows
from reasonlab.rl.losses import policy_loss, token_entropy, token_logprobs
from reasonlab.rl.rollouts import collect, loss_batch
from reasonlab.train.trainer import Trainer


def microbatch_weight(loss_type: str, mb_mask: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of the full-batch loss that one micro-batch's loss stands for (so accumulated
    gradients equal the full batch's): tokens for token-mean losses, sequences otherwise."""
    if loss_type == "dapo":
        return float(mb_mask.sum() / mask.sum().clamp(min=1))
    return mb_mask.shape[0] / mask.shape[0]


class GRPOTrainer(Trainer):
    method = "grpo"

    def _preflight(self) -> None:
        from reasonlab.rl.plan import check_fits

        plan = check_fits(self.cfg, str(self.acc.device))
        if not self.cfg.micro_batch_size:  # auto: the largest the planner says fits
            self.cfg.micro_batch_size = plan.micro_batch
            self.log(f"grpo: micro_batch_size={plan.micro_batch} (planned; set micro_batch_size= to change)")

    def _setup(self) -> None:
        from reasonlab.rollout import load_model
        from reasonlab.rollout.vllm import make_engine
        from reasonlab.tasks import get_task

        cfg = self.cfg
        self.ref = None
        if cfg.beta > 0 and not cfg.lora_r:  # with LoRA the reference is the base with adapters off
            self.ref = load_model(cfg.model, str(self.acc.device), torch.float32)[0].requires_grad_(False)
        self.engine = make_engine(self.policy, self.tokenizer, cfg.model, cfg.rollout_backend, cfg.seed,
                                  bf16=cfg.precision == "bf16")
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
        if hasattr(self.engine, "sync_weights"):
            self.engine.sync_weights(self.policy)

    # ---------------------------------------------------------------- one step
    def _forward(self, model, mb: dict) -> torch.Tensor:
        logits = shared_prefix_logits(model, mb) if self.cfg.shared_prefix else full_logits(model, mb)  # [B, C, V]
        # log-probs of the distribution the rollouts were sampled from (logits / T, as TRL does)
        return logits / max(self.cfg.temperature, 1e-6)  # [B, C, V]

    def _ref_logp(self, mb: dict) -> torch.Tensor | None:
        if self.cfg.beta == 0:
            return None
        with torch.no_grad():
            if self.ref is not None:
                return token_logprobs(self._forward(self.ref, mb), mb["targets"])
            with self.policy.disable_adapter():
                return token_logprobs(self._forward(self.model, mb), mb["targets"])

    def _micro_batches(self, batch: dict) -> list[dict]:
        n, size = batch["input_ids"].shape[0], self.cfg.micro_batch_size
        return [slice_rows(batch, i, i + size) for i in range(0, n, size)]

    def _padded_micro_batches(self, batch: dict) -> list[tuple[dict, float]]:
        """(micro-batch, weight) pairs, as many on every process: DDP all-reduces once per synced
        backward, so a process with fewer rows (dynamic sampling) runs zero-weight repeats."""
        mbs = self._micro_batches(batch)
        weights = [microbatch_weight(self.cfg.loss_type, mb["mask"], batch["mask"]) for mb in mbs]
        n = int(self._global(len(mbs)))
        if not mbs:  # nothing local: a 1-row stand-in whose loss is multiplied by 0
            mbs, weights = [self._stand_in()], [0.0]
        while len(mbs) < n:
            mbs.append(mbs[0])
            weights.append(0.0)
        return list(zip(mbs, weights))

    def _stand_in(self) -> dict:
        d = self.acc.device
        one = torch.ones(1, 2, dtype=torch.long, device=d)
        return {"input_ids": one, "attention_mask": one, "targets": one[:, 1:], "mask": torch.zeros(1, 1, device=d),
                "advantages": torch.zeros(1, device=d), "prompt_ids": one[:, :1], "prompt_mask": one[:, :1],
                "group": torch.zeros(1, dtype=torch.long, device=d), "completion_mask": one[:, 1:]}

    def _update(self, batch: dict) -> dict:
        from contextlib import nullcontext

        cfg, stats, totals = self.cfg, {}, {"loss": 0.0, "entropy": 0.0}
        mbs = self._padded_micro_batches(batch)
        old = [None] * len(mbs)
        if cfg.mu > 1:
            with torch.no_grad():
                old = [token_logprobs(self._forward(self.model, mb), mb["targets"]) for mb, _ in mbs]
        refs = [self._ref_logp(mb) for mb, _ in mbs]
        n_tokens = batch["mask"].sum().clamp(min=1)
        for _ in range(cfg.mu):
            self.opt.zero_grad(set_to_none=True)
            for i, ((mb, w), old_lp, ref_lp) in enumerate(zip(mbs, old, refs)):
                sync = nullcontext() if i == len(mbs) - 1 else self.acc.no_sync(self.model)
                with sync:
                    logits = self._forward(self.model, mb)  # [B, C, V]
                    logp = token_logprobs(logits, mb["targets"])  # [B, C]
                    loss, s = policy_loss(logp, logp.detach() if old_lp is None else old_lp, mb["advantages"],
                                          mb["mask"], loss_type=cfg.loss_type, eps_low=cfg.eps_low,
                                          eps_high=cfg.eps_high, beta=cfg.beta, ref_logp=ref_lp,
                                          max_len=cfg.max_new_tokens)
                    self.acc.backward(loss * w)
                stats = s if w > 0 or not stats else stats
                totals["loss"] += loss.item() * w / cfg.mu
                with torch.no_grad():
                    ent = token_entropy(logits.detach())
                    totals["entropy"] += float((ent * mb["mask"]).sum() / n_tokens) * (w > 0) / cfg.mu
            if not torch.isfinite(torch.tensor(totals["loss"])):
                self.opt.zero_grad(set_to_none=True)
                return {**totals, **stats, "grad_norm": float("nan"), "skipped": 1, "nonfinite": 1}
            gnorm, stepped = self._apply_gradients()
            if not stepped:
                return {**totals, **stats, "grad_norm": gnorm, "skipped": 1, "nonfinite": 1}
        self.sched.step()
        return {**totals, **stats, "grad_norm": gnorm, "skipped": 0, "nonfinite": 0}

    def train_step(self) -> dict:
        cfg, t0 = self.cfg, time.time()
        step_seed = cfg.seed * 1_000_003 + self.step * 101 + self.acc.process_index
        self.policy.eval()
        rollouts = collect(cfg, self.engine, self.task, self.template, self.next_problems, step_seed)
        gen_s = time.time() - t0
        adv = group_advantages(rollouts.rewards, rollouts.valid, cfg.generations_per_prompt, cfg.scale_rewards)
        batch = loss_batch(self.tokenizer, rollouts, adv, cfg.overlong_filter, self.acc.device)
        self.policy.train()
        if self._global(batch["input_ids"].shape[0]) > 0:
            out = self._update(batch)
        else:  # no group had signal anywhere: no update (Adam would still move on momentum)
            out = {"loss": 0.0, "grad_norm": 0.0, "skipped": 1, "nonfinite": 0}
        if hasattr(self.engine, "sync_weights") and not out["skipped"]:
            self.engine.sync_weights(self.policy)  # the next rollouts come from the updated policy
        self.step += 1
        comps = rollouts.completions
        gen_tokens = sum(c.num_tokens for c in comps)
        prompt_tokens = sum(c.prompt_tokens for c in comps[:: cfg.generations_per_prompt])
        flops = 2 * self.n_params * (gen_tokens + prompt_tokens)
        trained = batch["shared_tokens"] if cfg.shared_prefix else batch["tokens"]  # positions the loss forward runs
        flops += 2 * self.n_params * trained * ((cfg.mu > 1) + (cfg.beta > 0)) + 6 * self.n_params * trained * cfg.mu
        self.flops += self._global(flops, "sum")
        return self._metrics(rollouts, out, time.time() - t0, gen_s, gen_tokens)

    def _metrics(self, rollouts, out: dict, dt: float, gen_s: float, gen_tokens: int) -> dict:
        valid = rollouts.valid
        r = rollouts.rewards[valid]
        row = {"reward": r.mean().item() if r.numel() else 0.0, "reward_std": r.std().item() if r.numel() > 1 else 0.0}
        for name, col in rollouts.per_reward.items():
            vals = [v for v in col if v is not None]
            row[f"rewards/{name}/mean"] = sum(vals) / len(vals) if vals else 0.0
        comps = rollouts.completions
        row.update(rollouts.stats)
        row.update({k: v for k, v in out.items()})
        row.update({
            "unscored": int((~valid).sum()), "completions/mean_length": gen_tokens / max(1, len(comps)),
            "completions/clipped_ratio": sum(c.finish_reason == "length" for c in comps) / max(1, len(comps)),
            "step_time": dt, "generate_time": gen_s, "tokens_per_second": gen_tokens / max(dt, 1e-9),
            "completions_per_second": len(comps) / max(dt, 1e-9), "lr": self.sched.get_last_lr()[0],
        })
        return self._mean_over_processes(row)

    def evaluate(self) -> dict:
        from reasonlab.evaluation.evaluate import greedy_eval

        self.policy.eval()
        return greedy_eval(self.engine, self.cfg.task, self.cfg.eval_n, self.cfg.max_new_tokens, self.template)

    def _start(self, metrics) -> None:
        metrics.log(0, {f"eval/{k}": v for k, v in self.evaluate().items()})

    def _after_step(self, row: dict, bar) -> None:
        cfg = self.cfg
        if not self.acc.is_main_process:
            return
        if (cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == cfg.steps:
            row.update({f"eval/{k}": v for k, v in self.evaluate().items()})
        if cfg.sample_every and self.step % cfg.sample_every == 0:
            bar.show_samples(self.engine, self.task, cfg, self.template)

    def _plot(self, out: Path) -> None:
        from reasonlab.rl.progress import plot_curves

        plot_curves(out)


def run_grpo(cfg: GRPOConfig, log=print) -> Path:
    return GRPOTrainer(cfg, log).train()
