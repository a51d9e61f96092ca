"""The GRPO trainer: loops with fakes, a tiny real model, exact resume and the NaN guard."""

import pytest
import torch

from reasonlab.errors import ReasonlabError
from reasonlab.rewards import REWARDS
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.grpo import GRPOTrainer, microbatch_weight
from reasonlab.rl.losses import policy_loss, token_logprobs
from reasonlab.rl.rollouts import collect
from reasonlab.rollout.base import Completion, RolloutEngine
from reasonlab.templates import BUILTIN


@pytest.fixture(autouse=True)
def test_rewards():
    REWARDS["digits"] = lambda completions, **_: [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]
    REWARDS["chars"] = lambda completions, **_: [float(len(c)) for c in completions]
    REWARDS["good"] = lambda completions, **_: [1.0 if "good" in c else 0.0 for c in completions]
    REWARDS["nan"] = lambda completions, **_: [float("nan")] * len(completions)
    yield
    for k in ("digits", "chars", "good", "nan"):
        REWARDS.pop(k)


def small_cfg(model, out, **kw) -> GRPOConfig:
    base = dict(model=str(model), out=str(out), task="arithmetic", steps=4, prompts_per_step=2,
                generations_per_prompt=4, max_new_tokens=8, lr=1e-2, eval_n=4, save_every=0,
                sample_every=0, tensorboard=False, device="cpu", rewards={"chars": 1.0})
    base.update(kw)
    return GRPOConfig(**base)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batch_accumulation_equals_the_full_batch(loss_type):
    gen = torch.Generator().manual_seed(0)
    logp0 = -torch.rand(6, 5, generator=gen)
    old = logp0 + 0.1 * torch.randn(6, 5, generator=gen)
    adv = torch.randn(6, generator=gen)
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in [5, 2, 4, 1, 3, 5]])
    full = logp0.clone().requires_grad_(True)
    policy_loss(full, old, adv, mask, loss_type=loss_type, max_len=6)[0].backward()
    acc = logp0.clone().requires_grad_(True)
    for i in range(0, 6, 4):
        sl = slice(i, i + 4)
        loss, _ = policy_loss(acc[sl], old[sl], adv[sl], mask[sl], loss_type=loss_type, max_len=6)
        (loss * microbatch_weight(loss_type, mask[sl], mask)).backward()
    assert torch.allclose(full.grad, acc.grad, atol=1e-6)


class FakeEngine(RolloutEngine):
    """Group k's completions are all "bad" when k is even (no signal), mixed when k is odd."""

    def __init__(self, tokenizer):
        self.tokenizer, self.groups = tokenizer, 0

    def generate(self, prompts, params):
        out = []
        for _ in prompts:
            texts = ["bad"] * params.n if self.groups % 2 == 0 else ["good", "bad"] * (params.n // 2)
            out.append([Completion(t, [1, 2], "stop", 3) for t in texts])
            self.groups += 1
        return out

    def prompt(self, template, task, problem):
        return task.prompt(problem)


def test_dynamic_sampling_refills_until_every_group_has_signal(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from reasonlab.tasks import get_task

    cfg = small_cfg(tiny_model_dir, tmp_path, prompts_per_step=4, rewards={"good": 1.0}, dynamic_sampling=True)
    task = get_task("arithmetic")
    stream = task.iter_problems("train", 0)
    engine = FakeEngine(AutoTokenizer.from_pretrained(tiny_model_dir))
    r = collect(cfg, engine, task, BUILTIN["tiny"], lambda k: [next(stream) for _ in range(k)], 0)
    assert r.stats["frac_reward_zero_std"] == 0.5 and r.stats["refills"] == 1 and r.stats["groups"] == 4
    assert all(c.text in ("good", "bad") for c in r.completions)
    groups = r.rewards.view(-1, 4)
    assert torch.all(groups.max(-1).values > groups.min(-1).values)
    plain = collect(small_cfg(tiny_model_dir, tmp_path, prompts_per_step=4, rewards={"good": 1.0}),
                    FakeEngine(engine.tokenizer), task, BUILTIN["tiny"], lambda k: [next(stream) for _ in range(k)], 0)
    assert plain.stats["groups"] == 4 and plain.stats["refills"] == 0


def test_every_trained_parameter_changes(pretrained_dir, tmp_path):
    trainer = GRPOTrainer(small_cfg(pretrained_dir, tmp_path, steps=2), log=lambda *_: None)
    before = {k: v.clone() for k, v in trainer.policy.named_parameters()}
    trainer.train()
    for name, p in trainer.policy.named_parameters():
        assert not torch.equal(before[name], p), f"{name} did not change"
    assert (tmp_path / "final" / "config.json").exists() and (tmp_path / "curves.png").exists()


def test_reward_rises_under_training(pretrained_dir, tmp_path):
    cfg = small_cfg(pretrained_dir, tmp_path, steps=24, prompts_per_step=4, generations_per_prompt=8,
                    rewards={"digits": 1.0}, lr=3e-3)
    GRPOTrainer(cfg, log=lambda *_: None).train()
    from reasonlab.train.metrics import read_metrics

    rewards = [r["reward"] for r in read_metrics(tmp_path) if "reward" in r]
    first, last = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    assert last > first + 0.1, rewards


def test_resume_is_bitwise_exact(pretrained_dir, tmp_path):
    straight = small_cfg(pretrained_dir, tmp_path / "a", steps=4, save_every=2)
    GRPOTrainer(straight, log=lambda *_: None).train()
    half = small_cfg(pretrained_dir, tmp_path / "b", steps=2, save_every=2)
    GRPOTrainer(half, log=lambda *_: None).train()
    rest = small_cfg(pretrained_dir, tmp_path / "b", steps=4, save_every=2, resume=True)
    logs = []
    GRPOTrainer(rest, log=logs.append).train()
    assert any("step 2" in m for m in logs)
    a = (tmp_path / "a" / "final" / "model.safetensors").read_bytes()
    b = (tmp_path / "b" / "final" / "model.safetensors").read_bytes()
    assert a == b
    steps = [r["step"] for r in __import__("reasonlab.train.metrics", fromlist=["x"]).read_metrics(tmp_path / "b")]
    assert steps == [0, 1, 2, 3, 4]


def test_existing_checkpoints_need_resume(pretrained_dir, tmp_path):
    GRPOTrainer(small_cfg(pretrained_dir, tmp_path, steps=1), log=lambda *_: None).train()
    with pytest.raises(ReasonlabError, match="--resume"):
        GRPOTrainer(small_cfg(pretrained_dir, tmp_path, steps=2), log=lambda *_: None).train()


def test_non_finite_steps_are_skipped_then_stop_the_run(pretrained_dir, tmp_path):
    trainer = GRPOTrainer(small_cfg(pretrained_dir, tmp_path, steps=5, rewards={"nan": 1.0}, max_nonfinite=2,
                                     save_every=1), log=lambda *_: None)
    before = {k: v.clone() for k, v in trainer.policy.named_parameters()}
    with pytest.raises(ReasonlabError, match="non-finite"):
        trainer.train()
    assert trainer.step == 2
    for name, p in trainer.policy.named_parameters():
        assert torch.equal(before[name], p)
    assert not (tmp_path / "final").exists()


def test_lora_trains_only_the_adapters_resumes_and_saves_a_merged_model(pretrained_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    lora = dict(lora_r=4, lora_targets=["q_proj", "v_proj"], save_every=1)
    trainer = GRPOTrainer(small_cfg(pretrained_dir, tmp_path / "s", steps=2, **lora), log=lambda *_: None)
    before = {k: v.clone() for k, v in trainer.policy.named_parameters()}
    trainer.train_step(), trainer.train_step()
    names = [n for n, _ in trainer.policy.named_parameters()]
    assert sum("lora_" in n for n in names) == 2 * 2 * 2  # A and B, 2 targets, 2 layers
    for name, p in trainer.policy.named_parameters():
        assert torch.equal(before[name], p) != ("lora_" in name), name
    GRPOTrainer(small_cfg(pretrained_dir, tmp_path / "a", steps=2, **lora), log=lambda *_: None).train()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "a" / "final")
    base = AutoModelForCausalLM.from_pretrained(pretrained_dir)
    assert not any("lora" in k for k in merged.state_dict())
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q])
    k = "model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(merged.state_dict()[k], base.state_dict()[k])
    GRPOTrainer(small_cfg(pretrained_dir, tmp_path / "b", steps=1, **lora), log=lambda *_: None).train()
    GRPOTrainer(small_cfg(pretrained_dir, tmp_path / "b", steps=2, resume=True, **lora), log=lambda *_: None).train()
    a = (tmp_path / "a" / "final" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "final" / "model.safetensors").read_bytes()


def test_shared_prefix_forward_equals_the_full_forward_in_values_and_gradients(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonlab.rl.forward import full_logits, shared_prefix_logits, slice_rows
    from reasonlab.rl.rollouts import Rollouts, loss_batch

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    prompts = ["User: 3*4?\nAssistant: ", "User: a much longer question about 12+30 and more\nAssistant: "]
    comp_texts = ["<think>12</think>", "x", "<answer>12</answer> and then some", "42", "<think>", "7 7 7 7 7 7"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in comp_texts]
    completions = [Completion(t, i, "stop", 0) for t, i in zip(comp_texts, ids)]
    rows = [prompts[0]] * 3 + [prompts[1]] * 3
    ro = Rollouts(rows, completions, torch.zeros(6), torch.tensor([True, True, False, True, True, True]), {})
    batch = loss_batch(tok, ro, torch.arange(6.0), False, "cpu")
    assert batch["prompt_ids"].shape[0] == 2 and batch["group"].tolist() == [0, 0, 1, 1, 1]
    grads = []
    for fn in (full_logits, shared_prefix_logits):
        model.zero_grad()
        mb = slice_rows(batch, 1, 5)  # crosses the group boundary
        logp = token_logprobs(fn(model, mb), mb["targets"])  # [4, C]
        (logp * mb["mask"]).sum().backward()
        grads.append((logp * mb["mask"], [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
