"""`reasonlab plan`: the memory estimate against what torch actually keeps, and the refusal to
start a run that cannot fit."""

from __future__ import annotations

import torch
from conftest import run_cli

from reasonlab.rl.config import GRPOConfig
from reasonlab.train.memory import GiB, activation_bytes, model_shape, plan


def _saved_bytes(model, ids: torch.Tensor, keep: int) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(input_ids=ids, logits_to_keep=keep + 1, use_cache=False).logits
        torch.log_softmax(logits, -1).sum().backward()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in seen.items() if ptr not in params)


def test_shape_counts_the_parameters_of_the_real_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    shape = model_shape(tiny_model_dir)
    assert shape.params == sum(p.numel() for p in model.parameters())
    cfg = model.config
    assert shape.kv_dim == cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)


def test_activation_estimate_is_within_a_third_of_the_saved_tensors(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).train()
    shape = model_shape(tiny_model_dir)
    rows, seq, comp = 8, 96, 48
    ids = torch.randint(0, shape.vocab, (rows, seq))
    measured = _saved_bytes(model, ids, comp)
    estimated = activation_bytes(shape, rows * seq, rows * comp)
    assert 0.67 < estimated / measured < 1.5, (estimated, measured)


def test_plan_adds_optimizer_state_reference_and_the_larger_phase():
    from reasonlab.train.memory import Shape

    shape = Shape(params=1000, layers=2, hidden=8, intermediate=16, kv_dim=8, vocab=50)
    cfg = GRPOConfig(prompts_per_step=2, generations_per_prompt=4, max_new_tokens=10, micro_batch_size=8)
    p = plan(cfg, shape, prompt_tokens=6, available=1e9)
    assert (p.weights, p.grads, p.optimizer, p.reference) == (4000, 4000, 8000, 0)
    assert p.per_row_generation == 4 * (2 * 2 * 8 * 16 + 50)  # K and V for 16 positions, one logits row
    assert p.peak == 16000 + max(p.activations, 8 * p.per_row_generation)
    with_ref = plan(GRPOConfig(**{**cfg.__dict__, "beta": 0.04}), shape, 6, 1e9)
    assert with_ref.reference == 4000 and with_ref.peak == p.peak + 4000
    lora = plan(GRPOConfig(**{**cfg.__dict__, "lora_r": 2, "lora_targets": ["q_proj"]}), shape, 6, 1e9)
    assert lora.grads == 4 * 2 * 2 * 16 and lora.reference == 0  # r × (in + out) per layer
    assert not plan(cfg, shape, 6, available=p.peak - 1).fits
    assert plan(cfg, shape, 6, available=16000 + p.activations / 2).max_rows == 0  # training alone overflows
    room = p.activations + 100 * p.per_row_generation  # generation and training are not simultaneous
    assert plan(cfg, shape, 6, available=16000 + room).max_rows == int(room // p.per_row_generation)


def test_plan_command_and_grpo_refuse_a_config_that_does_not_fit(tiny_model_dir, tmp_path):
    ok = run_cli("plan", "--model", str(tiny_model_dir), "task=arithmetic")
    assert ok.returncode == 0, ok.stderr
    assert "fits" in ok.stdout and "largest prompts x generations" in ok.stdout
    tiny = f"memory_gb={1e-4}"
    bad = run_cli("plan", "--model", str(tiny_model_dir), tiny)
    assert bad.returncode == 1 and "DOES NOT FIT" in bad.stdout
    out = tmp_path / "run"
    run = run_cli("grpo", "--model", str(tiny_model_dir), "--out", str(out), "--steps", "1", tiny)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].startswith("error: this config needs")
    assert not (out / "checkpoints").exists()
    assert GiB == 2**30


def test_an_automatic_micro_batch_is_the_largest_that_fits(tiny_model_dir):
    """`micro_batch_size=0`: the planner halves from 64 until the plan fits, instead of refusing."""
    from dataclasses import replace

    from reasonlab.train.memory import AUTO_MICRO_BATCH, plan_for

    cfg = GRPOConfig(model=str(tiny_model_dir), prompts_per_step=16, generations_per_prompt=8, max_new_tokens=64)
    assert cfg.micro_batch_size == 0
    roomy = plan_for(replace(cfg, memory_gb=64.0))
    assert roomy.micro_batch == AUTO_MICRO_BATCH and roomy.fits
    at64 = plan_for(replace(cfg, micro_batch_size=64, memory_gb=64.0))
    static = at64.weights + at64.grads + at64.optimizer
    at16, at32 = (plan_for(replace(cfg, micro_batch_size=m, memory_gb=64.0)) for m in (16, 32))
    tight = (static + (at16.activations + at32.activations) / 2) / GiB  # room for 16 rows, not 32
    assert at16.activations > at16.kv_cache  # so the loss phase decides what fits
    got = plan_for(replace(cfg, memory_gb=tight))
    assert got.micro_batch == 16 and got.fits
    assert plan_for(replace(cfg, micro_batch_size=64, memory_gb=tight)).fits is False  # the old default refused


def test_precision_auto_follows_the_measured_bf16_speed():
    from reasonlab.sizing import BF16_MIN_SPEEDUP, bf16_speedup, resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cuda:0") == "bf16"
    expected = "bf16" if bf16_speedup() >= BF16_MIN_SPEEDUP else "fp32"
    assert resolve_precision("auto", "cpu") == expected


def test_an_emulated_bf16_is_decided_by_the_small_probe_alone(monkeypatch):
    """precision: auto measures once per process; where bf16 is more than twice slower on the
    256 probe (AVX2 emulates it) the ~20 s n = 1024 measurement is skipped, else it decides."""
    import reasonlab.sizing as sizing

    calls = []

    def fake(ratios):
        def ratio(n, repeats):
            calls.append(n)
            return ratios[n]
        return ratio

    try:
        for ratios, expected_calls, expected in [({256: 0.03}, [256], 0.03),
                                                 ({256: 0.9, 1024: 2.5}, [256, 1024], 2.5),
                                                 ({256: 0.6, 1024: 1.1}, [256, 1024], 1.1)]:
            calls.clear()
            monkeypatch.setattr(sizing, "_matmul_ratio", fake(ratios))
            sizing.bf16_speedup.cache_clear()
            assert sizing.bf16_speedup() == expected and calls == expected_calls
    finally:  # a fake ratio must not stay cached for later tests
        sizing.bf16_speedup.cache_clear()
