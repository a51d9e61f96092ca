"""Checks of the vLLM rollout backend, run by `tests/test_vllm.py` inside `.venv-vllm` (vLLM's
CPU build needs its own transformers). Prints one JSON line of findings for the test to assert.

    python tests/vllm_check.py engines MODEL_DIR   # HF vs vLLM greedy, before and after a weight sync
    python tests/vllm_check.py grpo MODEL_DIR OUT  # two GRPO steps with rollout_backend=vllm, then
                                                    # one with a deliberately perturbed sampler
    python tests/vllm_check.py lora MODEL_DIR OUT  # two LoRA GRPO steps with vLLM rollouts, then the
                                                    # adapters perturbed and synced (merged into vLLM)
"""

from __future__ import annotations

import json
import os
import sys


def _prompts(engine, n: int = 6) -> list[str]:
    from reasonlab.tasks import get_task

    task = get_task("arithmetic")
    return [engine.format_prompt(task.prompt(p)) for p in task.problems("eval", n, seed=0)]


def _greedy(engine, prompts, tokens: int = 24) -> list[list[int]]:
    from reasonlab.rollout import SamplingParams

    params = SamplingParams(max_new_tokens=tokens, temperature=0.0, stop=())
    return [g[0].token_ids for g in engine.generate(prompts, params)]


def engines(model_dir: str) -> dict:
    import torch

    from reasonlab.rollout import HFEngine
    from reasonlab.rollout.vllm import VLLMEngine

    hf = HFEngine.from_pretrained(model_dir, device="cpu")
    vl = VLLMEngine(model_dir, max_model_len=512)
    prompts = _prompts(hf)
    before_hf, before_vl = _greedy(hf, prompts), _greedy(vl, prompts)
    # new weights with the same confidence margins: permute the vocabulary rows of the
    # embedding and the output layer, so greedy choices change without near-ties
    perm = torch.randperm(hf.model.config.vocab_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for emb in {id(m): m for m in (hf.model.get_input_embeddings(), hf.model.get_output_embeddings())}.values():
            emb.weight.copy_(emb.weight[perm])
    stale = _greedy(vl, prompts)
    vl.sync_weights(hf.model)
    after_hf, after_vl = _greedy(hf, prompts), _greedy(vl, prompts)
    return {"same_before": before_hf == before_vl, "same_after": after_hf == after_vl,
            "changed": before_hf != after_hf, "stale_was_old": stale == before_vl, "n": len(prompts)}


def _config(model_dir: str, out: str, **kw):
    """Two small GRPO steps with vLLM rollouts."""
    from reasonlab.rl.config import GRPOConfig

    return GRPOConfig(model=model_dir, out=out, task="arithmetic", steps=2, prompts_per_step=2, generations_per_prompt=4,
                      max_new_tokens=16, eval_n=4, save_every=0, sample_every=0, tensorboard=False, device="cpu",
                      rollout_backend="vllm", **kw)


def grpo(model_dir: str, out: str) -> dict:
    from reasonlab.rewards import REWARDS
    from reasonlab.rl.grpo import GRPOTrainer
    from reasonlab.rollout import HFEngine
    from reasonlab.rollout.vllm import VLLMEngine

    # every group gets reward spread, so every row trains and the mismatch is measured on all of them
    REWARDS["alternate"] = lambda completions, **_: [float(i % 2) for i in range(len(completions))]
    cfg = _config(model_dir, out, lr=1e-2, rewards={"tag_count": 1.0, "alternate": 0.5})
    trainer = GRPOTrainer(cfg, log=lambda m: None)
    trainer.train()
    prompts = _prompts(trainer.engine)
    follows = _greedy(trainer.engine, prompts) == _greedy(HFEngine(trainer.policy, trainer.tokenizer), prompts)
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    logged = [r for r in rows if "sampling/sampling_logp_difference/mean" in r]
    # a deliberately perturbed sampler: vLLM's log-probs of odd prompts reported 1 nat too low
    real = trainer.engine.generate

    def perturbed(prompts, params):
        out = real(prompts, params)
        for i, group in enumerate(out):
            for c in group:
                if i % 2 and c.logprobs is not None:
                    c.logprobs = [lp - 1.0 for lp in c.logprobs]
        return out

    trainer.engine.generate = perturbed
    bad = trainer.train_step()
    return {"engine": type(trainer.engine).__name__ == VLLMEngine.__name__, "follows_policy": follows,
            "final": os.path.exists(os.path.join(out, "final", "config.json")),
            "corrects": trainer.correct_sampler,
            "logp_diff_mean": [r["sampling/sampling_logp_difference/mean"] for r in logged],
            "ratio_mean": [r["sampling/importance_sampling_ratio/mean"] for r in logged],
            "perturbed_diff_max": bad["sampling/sampling_logp_difference/max"],
            "perturbed_ratio_min": bad["sampling/importance_sampling_ratio/min"]}


def lora(model_dir: str, out: str) -> dict:
    import torch

    from reasonlab.rl.grpo import GRPOTrainer
    from reasonlab.rollout import HFEngine
    from reasonlab.rollout.vllm import VLLMEngine

    cfg = _config(model_dir, out, lr=1e-3, rewards={"tag_count": 1.0}, lora_r=8, lora_alpha=16)
    trainer = GRPOTrainer(cfg, log=lambda m: None)
    trainer.train_step(), trainer.train_step()  # not train(): its final save merges and unloads the adapters
    hf = HFEngine(trainer.policy, trainer.tokenizer)
    prompts = _prompts(trainer.engine)
    before = _greedy(trainer.engine, prompts)
    follows = before == _greedy(hf, prompts)
    # adapters moved far enough to change greedy choices; only a merge of them can follow
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in trainer.policy.named_parameters():
            if "lora_" in name:
                p.add_(torch.randn(p.shape, generator=gen))  # both factors, so the delta B·A is large
    trainer.engine.sync_weights(trainer.policy)
    after_vl, after_hf = _greedy(trainer.engine, prompts), _greedy(hf, prompts)
    return {"engine": type(trainer.engine).__name__ == VLLMEngine.__name__, "follows_policy": follows,
            "changed": after_hf != before, "follows_after_sync": after_vl == after_hf,
            "adapters": sum("lora_" in n for n, _ in trainer.policy.named_parameters())}


def main() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    what, args = sys.argv[1], sys.argv[2:]
    result = {"engines": engines, "grpo": grpo, "lora": lora}[what](*args)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
