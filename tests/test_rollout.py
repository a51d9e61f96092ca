"""The rollout engine against independent references: HF `generate` and a cache-free loop."""

import copy

import pytest
import torch

from reasonlab.rollout import HFEngine, SamplingParams, load_model

PROMPTS = ["User: A train travels 60 km per hour for 3 hours.\nAssistant: ",
           "User: hi\nAssistant: ", "User: Using the numbers 3, 5, 8, make 23.\nAssistant: <think>"]


class StopWhenDivisible(torch.nn.Module):
    """Wraps a model: `</answer>` wins whenever (last token id + its position) is divisible by 5,
    so rows end at different steps (a rule on content, so it survives batch compaction)."""

    def __init__(self, model, stop_id):
        super().__init__()
        self.inner, self.stop_id, self.config = model, stop_id, model.config
        self.generation_config = model.generation_config

    def forward(self, input_ids, **kw):
        out = self.inner(input_ids=input_ids, **kw)
        pos = kw["position_ids"][:, -1] if kw.get("position_ids") is not None else input_ids.shape[1] - 1
        fire = (input_ids[:, -1] + pos) % 5 == 0  # [B]
        out.logits[:, -1, self.stop_id] += 100.0 * fire
        return out


def reference_greedy(model, tok, prompt, stop_ids, max_new):
    """No cache, no batching, no padding: the full forward every step."""
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            out.append(nxt)
            if nxt in stop_ids:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def test_greedy_matches_hf_generate(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, "cpu")
    engine = HFEngine(model, tok)
    got = engine.generate(PROMPTS, SamplingParams(max_new_tokens=12, temperature=0.0, stop=()))
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = model.generate(**enc, do_sample=False, max_new_tokens=12, eos_token_id=[-1], pad_token_id=tok.pad_token_id)
    for i, group in enumerate(got):
        assert group[0].token_ids == ref[i, enc["input_ids"].shape[1]:].tolist()
        assert group[0].num_tokens == 12 and group[0].finish_reason == "length"


def test_rows_that_stop_early_are_dropped_without_disturbing_the_others(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, "cpu")
    stop_id = tok.convert_tokens_to_ids("</answer>")
    wrapped = StopWhenDivisible(model, stop_id)
    engine = HFEngine(wrapped, tok)
    engine.n_params = 1
    prompts = PROMPTS + [p + "x" for p in PROMPTS] + [p + "12" for p in PROMPTS]
    got = engine.generate(prompts, SamplingParams(max_new_tokens=20, temperature=0.0))
    lengths = set()
    for prompt, group in zip(prompts, got):
        ref = reference_greedy(wrapped, tok, prompt, engine.eos_ids | {stop_id}, 20)
        c = group[0]
        assert c.token_ids == ref
        assert c.finish_reason == ("stop" if ref[-1] in engine.eos_ids | {stop_id} else "length")
        if c.finish_reason == "stop" and ref[-1] == stop_id:
            assert c.text.endswith("</answer>")
        lengths.add(len(ref))
    assert len(lengths) > 2, "the test needs rows that end at different steps"


def test_sampling_n_per_prompt_is_seeded(tiny_model_dir):
    engine = HFEngine.from_pretrained(tiny_model_dir, "cpu")
    params = SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=123, stop=(), logprobs=True)
    a = engine.generate(PROMPTS, params)
    b = engine.generate(PROMPTS, params)
    assert [len(g) for g in a] == [4, 4, 4]
    assert [[c.token_ids for c in g] for g in a] == [[c.token_ids for c in g] for g in b]
    assert len({tuple(c.token_ids) for c in a[0]}) > 1  # samples of one prompt differ
    assert all(len(c.logprobs) == c.num_tokens and all(lp <= 0 for lp in c.logprobs) for c in a[0])
    other = engine.generate(PROMPTS, SamplingParams(max_new_tokens=8, n=4, seed=124, stop=()))
    assert [[c.token_ids for c in g] for g in a] != [[c.token_ids for c in g] for g in other]


def test_sampled_logprobs_match_a_full_forward(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, "cpu")
    engine = HFEngine(model, tok)
    c = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=6, n=1, seed=0, stop=(), logprobs=True))[0][0]
    ids = tok(PROMPTS[0], add_special_tokens=False)["input_ids"] + c.token_ids
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    p = len(ids) - len(c.token_ids)
    expected = [logp[p - 1 + i, t].item() for i, t in enumerate(c.token_ids)]
    assert c.logprobs == pytest.approx(expected, abs=1e-4)


def test_top_k_one_is_greedy(tiny_model_dir):
    engine = HFEngine.from_pretrained(tiny_model_dir, "cpu")
    greedy = engine.generate(PROMPTS, SamplingParams(max_new_tokens=8, temperature=0.0, stop=()))
    topk = engine.generate(PROMPTS, SamplingParams(max_new_tokens=8, temperature=1.0, top_k=1, seed=5, stop=()))
    assert [g[0].token_ids for g in greedy] == [g[0].token_ids for g in topk]


def test_max_batch_splits_work_without_changing_greedy_results(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, "cpu")
    params = SamplingParams(max_new_tokens=8, temperature=0.0, stop=())
    big = HFEngine(model, tok, max_batch=64).generate(PROMPTS, params)
    small = HFEngine(model, tok, max_batch=1).generate(PROMPTS, params)
    assert [g[0].token_ids for g in big] == [g[0].token_ids for g in small]


def test_missing_model_dir_is_a_clear_error(tmp_path):
    from reasonlab.errors import ReasonlabError

    with pytest.raises(ReasonlabError, match="model directory not found"):
        load_model(tmp_path / "nope")


def test_length_bucketed_prefill_equals_one_padded_prefill(tiny_model_dir):
    from reasonlab.rollout.kvcache import length_buckets

    model, tok = load_model(tiny_model_dir, "cpu")
    engine = HFEngine(model, tok)
    prompts = ["User: hi\nAssistant: ", PROMPTS[0] * 3, "User: ok\nAssistant: ", PROMPTS[2] * 2]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    lengths = enc["attention_mask"].sum(-1).tolist()
    assert len(length_buckets(lengths)) > 1  # this input does take the bucketed path
    with torch.no_grad():
        bucketed, cache = engine._prefill(enc["input_ids"], enc["attention_mask"], lengths, 4)
        single, ref_cache = engine._forward_prompts(enc["input_ids"], enc["attention_mask"], 4)
    assert torch.allclose(bucketed, single, atol=1e-5)
    for a, b in zip(cache.layers, ref_cache.layers):
        assert a.keys.shape == b.keys.shape
    for row, n in enumerate(lengths):  # the real (unpadded) positions hold the same keys
        assert torch.allclose(cache.layers[0].keys[row, :, -n:], ref_cache.layers[0].keys[row, :, -n:], atol=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_bf16_decode_copy_follows_the_policy_after_sync(tiny_model_dir, lora):
    """The bf16 copy (LoRA merged) holds bf16(policy's current weights) after each sync, so it
    decodes what the policy would; before a sync it keeps the old weights."""
    from reasonlab.rollout import load_model

    model, tok = load_model(tiny_model_dir, "cpu")
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    engine = HFEngine(model, tok, bf16=True)
    assert not engine.samples_from_policy and next(engine.model.parameters()).dtype == torch.bfloat16
    assert not hasattr(engine.model, "peft_config")  # merged: a plain model
    trained = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in trained:
            p.add_(torch.randn_like(p) * 0.05)
    merged = dict(copy.deepcopy(model).merge_and_unload().named_parameters()) if lora else dict(model.named_parameters())
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(engine.model.get_parameter(name), merged[name].to(torch.bfloat16))
    engine.sync_weights(model)
    for n, p in engine.model.named_parameters():
        assert torch.equal(p, merged[n].to(torch.bfloat16)), n


def test_merged_state_is_the_merged_model_under_base_names(tiny_model_dir):
    """What the vLLM engine is sent for a LoRA policy: merge_and_unload's weights, same names, no adapters."""
    from peft import LoraConfig, get_peft_model

    from reasonlab.rollout import load_model
    from reasonlab.rollout.vllm import merged_state

    base, _ = load_model(tiny_model_dir, "cpu")
    names = set(base.state_dict())
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn_like(p) * 0.1)
    state = merged_state(model)
    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    assert set(state) == names == set(expected)
    assert all(torch.allclose(state[k], expected[k], atol=1e-6) for k in names)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(state[q], model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight)


def test_auto_backend_picks_vllm_on_a_cpu_only_for_models_large_enough_to_gain(tiny_model_dir, tmp_path, monkeypatch):
    """`rollout_backend=auto`: our engine without vLLM; with it, on a CPU, vLLM from 300M parameters
    up (a Qwen2.5-0.5B-shaped config: 494M) and ours below (the tiny model); named backends pass."""
    from transformers import Qwen2Config

    from reasonlab.rollout import vllm as rv

    qwen = tmp_path / "qwen"
    Qwen2Config(hidden_size=896, num_hidden_layers=24, intermediate_size=4864, num_attention_heads=14,
                num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True).save_pretrained(qwen)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(rv, "vllm_available", lambda: False)
    assert rv.choose_backend("auto", qwen) == "hf" and rv.choose_backend("vllm", tiny_model_dir) == "vllm"
    monkeypatch.setattr(rv, "vllm_available", lambda: True)
    assert rv.choose_backend("auto", qwen) == "vllm"
    assert rv.choose_backend("auto", tiny_model_dir) == "hf" and rv.choose_backend("hf", qwen) == "hf"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rv.choose_backend("auto", tiny_model_dir) == "vllm"
