"""The GRPO trainer: loops with fakes, a tiny real model, exact resume and the NaN guard."""

import pytest
import torch

from reasonlab.errors import ReasonlabError
from reasonlab.rewards import REWARDS
from reasonlab.rl.config import GRPOConfig
from reasonlab.rl.grpo import GRPOTrainer, run_grpo
from reasonlab.rl.losses import LOSSES, LossSettings, policy_loss, token_logprobs
from reasonlab.rl.records import LossBatch
from reasonlab.rl.rollouts import collect, generated_tokens, processed_tokens
from reasonlab.rl.update import MicroBatch, accumulate, drop_idle_rows, split
from reasonlab.rollout.base import Completion, RolloutEngine
from reasonlab.sampling import Scored, ScoredGroup
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


def _fake_batch(logp0, mask, adv, start, stop) -> LossBatch:
    """A LossBatch whose only meaningful fields are loss_mask and advantages (rows start:stop)."""
    n, c = stop - start, mask.shape[1]
    ids = torch.zeros(n, c + 1, dtype=torch.long)
    return LossBatch(input_ids=ids, attention_mask=ids, targets=ids[:, 1:], completion_mask=mask[start:stop],
                     loss_mask=mask[start:stop].float(), advantages=adv[start:stop], sampler_logp=logp0[start:stop],
                     prompt_ids=ids[:, :1], prompt_mask=ids[:, :1], group=torch.arange(n))


@pytest.mark.parametrize("loss_type", sorted(set(LOSSES) - {"bnpo"}))
@pytest.mark.parametrize("cuts", [[0, 6], [0, 4, 6], [0, 1, 2, 5, 6]])
def test_micro_batches_of_any_size_give_the_full_batch_gradient(loss_type, cuts):
    """`update.accumulate` over uneven micro-batches = one backward of the whole step's loss."""
    gen = torch.Generator().manual_seed(0)
    logp0 = -torch.rand(6, 5, generator=gen, dtype=torch.float64)
    old = logp0 + 0.1 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
    adv = torch.randn(6, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in [5, 2, 4, 1, 3, 5]])
    s = LossSettings(loss_type, max_len=6, beta=0.04, delta=1.5 if loss_type == "grpo" else None)
    ref = old - 0.05
    full = logp0.clone().requires_grad_(True)
    policy_loss(full, old, adv, mask, s, ref_logp=ref).mean().backward()
    acc = logp0.clone().requires_grad_(True)
    spans = list(zip(cuts[:-1], cuts[1:]))
    mbs = [MicroBatch(_fake_batch(logp0, mask, adv, a, b)) for a, b in spans]
    span = {id(mb): ab for mb, ab in zip(mbs, spans)}

    def loss_of(mb):
        a, b = span[id(mb)]
        return policy_loss(acc[a:b], old[a:b], adv[a:b], mask[a:b], s, ref_logp=ref[a:b])

    out = accumulate(mbs, loss_of, s, backward=lambda t: t.backward(), no_sync=__import__("contextlib").nullcontext,
                     world=1, reduce_sum=lambda t: t)
    assert torch.allclose(full.grad, acc.grad, atol=1e-12)
    assert out.loss == pytest.approx(policy_loss(logp0, old, adv, mask, s, ref_logp=ref).mean().item(), abs=1e-12)


@pytest.mark.parametrize("loss_type", sorted(set(LOSSES) - {"bnpo"}))
def test_rows_of_advantage_zero_are_left_out_without_changing_the_gradient(loss_type):
    """`drop_idle_rows`: the step trains 4 of 6 rows, with the same loss value and gradient."""
    gen = torch.Generator().manual_seed(1)
    logp0 = -torch.rand(6, 5, generator=gen, dtype=torch.float64)
    old = logp0 + 0.1 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
    adv = torch.randn(6, generator=gen, dtype=torch.float64)
    adv[[1, 4]] = 0.0
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in [5, 2, 4, 1, 3, 5]])
    s = LossSettings(loss_type, max_len=6)
    full = logp0.clone().requires_grad_(True)
    policy_loss(full, old, adv, mask, s).mean().backward()
    batch = _fake_batch(logp0, mask, adv, 0, 6)
    batch.input_ids = torch.arange(6).unsqueeze(-1).expand(6, 6)  # column 0: the row's index
    kept, idle = drop_idle_rows(batch, s)
    assert kept.n == 4 and kept.input_ids[:, 0].tolist() == [0, 2, 3, 5]
    assert idle == {"sequence": 2.0, "token": 5.0, "constant": 12.0}[LOSSES[loss_type].aggregation]
    acc = logp0.clone().requires_grad_(True)

    def loss_of(mb):
        i = mb.rows.input_ids[:, 0]
        return policy_loss(acc[i], old[i], adv[i], mask[i], s)

    out = accumulate(split(kept, 3), loss_of, s, backward=lambda t: t.backward(),
                     no_sync=__import__("contextlib").nullcontext, world=1, reduce_sum=lambda t: t, idle=idle)
    assert torch.allclose(full.grad, acc.grad, atol=1e-12)
    assert out.loss == pytest.approx(policy_loss(logp0, old, adv, mask, s).mean().item(), abs=1e-12)
    # a KL term trains every row, and bnpo's normaliser is the micro-batch's: nothing is left out then
    for same in (drop_idle_rows(batch, LossSettings(loss_type, beta=0.1)), drop_idle_rows(batch, LossSettings("bnpo")),
                 drop_idle_rows(batch, s, all_rows_needed=True)):
        assert same[0] is batch and same[1] == 0.0


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


def _group(prompt_ids, completions, rewards):
    """A scored group with only what the loss path reads: token ids and the total reward."""
    return ScoredGroup(None, "", prompt_ids, [Scored(c, c.text, None, None, None, 0.0, reward=r)
                                               for c, r in zip(completions, rewards)])


def test_a_group_has_signal_when_two_scored_rewards_differ():
    g = lambda r: _group([1], [Completion("x", [1], "stop", 1)] * len(r), r)  # noqa: E731
    assert g([1.0, 0.0, None]).has_signal and not g([1.0, None, 1.0]).has_signal
    assert not g([1.0, None, None]).has_signal and not g([None, None, None]).has_signal


def test_dynamic_sampling_refills_until_every_group_has_signal(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from reasonlab.tasks import get_task

    cfg = small_cfg(tiny_model_dir, tmp_path, prompts_per_step=4, rewards={"good": 1.0}, dynamic_sampling=True)
    task = get_task("arithmetic")
    stream = task.iter_problems("train", 0)
    engine = FakeEngine(AutoTokenizer.from_pretrained(tiny_model_dir))
    r = collect(cfg, engine, task, BUILTIN["tiny"], lambda k: [next(stream) for _ in range(k)], 0)
    assert r.zero_std_fraction == 0.5 and r.refills == 1 and len(r.groups) == 4
    assert all(s.completion.text in ("good", "bad") for g in r.groups for s in g.completions)
    assert all(s.rewards == {"good": s.reward} for g in r.groups for s in g.completions)
    assert all(g.has_signal and max(g.reward) > min(g.reward) for g in r.groups)
    assert all(g.prompt_ids for g in r.groups)  # the fake engine gives none: tokenised once, as the engine saw it
    plain = collect(small_cfg(tiny_model_dir, tmp_path, prompts_per_step=4, rewards={"good": 1.0}),
                    FakeEngine(engine.tokenizer), task, BUILTIN["tiny"], lambda k: [next(stream) for _ in range(k)], 0)
    assert len(plain.groups) == 4 and plain.refills == 0
    # the cost counts every round, the dropped groups too (what a step's FLOPs are computed from)
    assert plain.processed_tokens == processed_tokens(plain.groups)
    assert r.processed_tokens > processed_tokens(r.groups) > 0
    # what the policy writes is read from the first draw, dropped groups included
    assert len(r.first_round) == 4 and sum(g.has_signal for g in r.first_round) == 2
    assert r.generated_tokens > generated_tokens(r.first_round) == generated_tokens(r.groups) > 0


def test_step_metrics_describe_the_first_round_when_dynamic_sampling_dropped_every_group():
    """Two groups all right, all dropped (no refill found signal): the step trained on nothing, yet
    its row shows the policy's reward 1.0 and its completions' length, not 0."""
    from types import SimpleNamespace

    from reasonlab.rl.rollouts import Sampled

    def scored(n_tokens, finish):
        return Scored(Completion("x" * n_tokens, [1] * n_tokens, finish, n_tokens), "x", "1", "1", 1.0, 1.0,
                      rewards={"accuracy": 1.0}, reward=1.0)

    first = [ScoredGroup(None, "", [1, 2], [scored(10, "stop"), scored(30, "length")]) for _ in range(2)]
    sampled = Sampled([], 1.0, 1, 999, first, 80 + 50)  # the refill generated 50 tokens more, also dropped
    me = SimpleNamespace(cfg=SimpleNamespace(rewards={"accuracy": 1.0}),
                         sched=SimpleNamespace(get_last_lr=lambda: [0.1]), _mean_over_processes=lambda row: row)
    row = GRPOTrainer._metrics(me, sampled, {}, 2.0, 1.0)
    assert (row["reward"], row["rewards/accuracy/mean"], row["groups"]) == (1.0, 1.0, 0)
    assert (row["completions/mean_length"], row["completions/clipped_ratio"]) == (20.0, 0.5)
    assert (row["tokens_per_second"], row["completions_per_second"]) == (65.0, 4.0)


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

    from reasonlab.rl.forward import full_logits, shared_prefix_logits

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    prompts = ["User: 3*4?\nAssistant: ", "User: a much longer question about 12+30 and more\nAssistant: "]
    comp_texts = ["<think>12</think>", "x", "<answer>12</answer> and then some", "42", "<think>", "7 7 7 7 7 7"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in comp_texts]
    completions = [Completion(t, i, "stop", 0) for t, i in zip(comp_texts, ids)]
    groups = [_group(tok(p, add_special_tokens=False)["input_ids"], completions[3 * k : 3 * k + 3], r)
              for k, (p, r) in enumerate(zip(prompts, [[0.0, 1.0, None], [0.0, 1.0, 1.0]]))]
    batch = LossBatch.build(groups, torch.arange(6.0), tok.pad_token_id)
    assert batch.prompt_ids.shape[0] == 2 and batch.group.tolist() == [0, 0, 1, 1, 1]
    assert batch.advantages.tolist() == [0.0, 1.0, 3.0, 4.0, 5.0]  # row 2 unscored: left out
    grads = []
    for fn in (full_logits, shared_prefix_logits):
        model.zero_grad()
        mb = batch.rows(1, 5)  # crosses the group boundary
        logp = token_logprobs(fn(model, mb), mb.targets)  # [4, C]
        (logp * mb.loss_mask).sum().backward()
        grads.append((logp * mb.loss_mask, [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("task", ["gym:leg_counting", "jsonl"])
def test_grpo_trains_on_non_procedural_tasks(pretrained_dir, tmp_path, task):
    """reasoning-gym datasets and your own files have no problem generator: GRPO streams their
    training problems (the reasoning-gym stream, or the file's rows epoch after epoch)."""
    import json

    if task == "jsonl":
        path = tmp_path / "train.jsonl"
        path.write_text("".join(json.dumps({"question": f"{i} + 1 = ?", "answer": str(i + 1)}) + "\n" for i in range(3)))
        task = f"jsonl:{path}"
    trainer = GRPOTrainer(small_cfg(pretrained_dir, tmp_path / "run", steps=2, task=task), log=lambda *_: None)
    first = trainer.next_problems(2)
    assert all(p.question for p in first)
    row = trainer.train_step()
    assert row["trained_rows"] > 0 and "reward" in row


def test_eval_n_zero_trains_without_held_out_evaluation(tiny_model_dir, tmp_path):
    """eval_n=0 turns the held-out evaluation off (it divided by zero before); a negative is refused."""
    import json

    final = run_grpo(small_cfg(tiny_model_dir, tmp_path / "run", steps=2, eval_n=0, eval_every=1), log=lambda *_: None)
    assert (final / "config.json").exists()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward" in r] == [1, 2]
    assert not any(k.startswith("eval/") for r in rows for k in r)
    with pytest.raises(ReasonlabError, match="eval_n"):
        small_cfg(tiny_model_dir, tmp_path / "bad", eval_n=-1).validate()


def test_a_run_stopped_by_its_time_budget_still_evaluates_at_its_last_step(tiny_model_dir, tmp_path):
    """The held-out evaluation due at the end runs after the step that spends max_minutes, not only
    after `steps`."""
    import json

    final = run_grpo(small_cfg(tiny_model_dir, tmp_path / "run", steps=50, max_minutes=1e-9), log=lambda *_: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward" in r] == [1]
    assert "eval/accuracy" in rows[-1] and rows[-1]["step"] == 1
    assert json.loads((final / "reasonlab_train.json").read_text())["steps"] == 1
