"""The tiny world: tokenizer, corpus and the pretrained model in standard Hugging Face form."""

import json
import re
import subprocess
import sys

import pytest

from reasonlab.tasks import get_task, split_of
from reasonlab.world.corpus import CorpusMix, build_corpus
from reasonlab.world.tokenizer import REASONING_TAGS, build_tokenizer, render_chat


def test_corpus_is_deterministic_and_uses_train_problems_only():
    docs = build_corpus(600, seed=3)
    assert docs == build_corpus(600, seed=3)
    assert docs != build_corpus(600, seed=4)
    for name in ("arithmetic", "countdown"):
        task = get_task(name)
        for p in task.problems("eval", 200):
            assert not any(p.question in d for d in docs)
    questions = [d.split("\n")[0][len("User: "):].split(" Use each number")[0] for d in docs if d.startswith("User: ")]
    assert questions and all(split_of(q) == "train" for q in questions)
    worked = [d.split("\n")[0][len("Problem: "):] for d in docs if d.startswith("Problem: ")]
    assert worked and all(split_of(q) == "train" for q in worked)


def test_corpus_mixes_every_style():
    docs = build_corpus(800, seed=0)
    assert any("<think>" in d and "</answer>" in d for d in docs)
    assert any("Assistant: <answer>" in d for d in docs)  # answers with no reasoning
    assert any("The answer is" in d and "<think>" not in d.split("Assistant:")[-1] for d in docs)
    assert any(not d.startswith("User:") and "*" not in d for d in docs)  # unrelated text
    only_direct = build_corpus(50, mix=CorpusMix(correct=0, careful=0, wrong_step=0, direct=1, untagged=0, worked=0, unrelated=0, drill=0))
    assert all("Assistant: <answer>" in d for d in only_direct)


def test_the_base_habit_is_a_bare_answer_but_reasoning_is_a_large_minority():
    """The mix behind a stable base: the bare answer is the most frequent chat habit by a clear
    margin (greedy answers directly and does not flip), while reasoning turns are common enough
    for sampling and RL, and worked solutions outside the chat frame teach the skill itself."""
    docs = build_corpus(4000, seed=0)
    turns = [d.split("Assistant: ", 1)[1] for d in docs if d.startswith("User: ")]
    direct = sum(t.startswith("<answer>") for t in turns) / len(turns)
    think = sum(t.startswith("<think>") for t in turns) / len(turns)
    assert direct > think + 0.3 and think > 0.25, (direct, think)
    assert sum(d.startswith("Problem: ") for d in docs) > 0.2 * len(docs)


def test_countdown_search_traces_check_every_try_against_the_target():
    """Tries follow the fixed search order and are computed right; a try is marked "yes" exactly
    when it reaches the target, and only the last; the answer is that try's expression, which uses
    the given numbers; the order finds most solutions within a few tries."""
    from reasonlab.tasks.countdown import CountdownTask
    from reasonlab.world.corpus import MAX_TRIES, SEARCH_ORDER, search_trace

    task, tries = CountdownTask(), []
    for p in task.problems("train", 300, seed=1):
        trace = search_trace(p)
        lines = trace.split("<think>\n")[1].split("\n</think>")[0].split("\n")
        tries.append(len(lines))
        for k, line in enumerate(lines):
            steps, target, verdict = re.fullmatch(r"(.*) vs (\d+) (yes|no)", line).groups()
            assert all(eval_line(eq) for eq in steps.split(", ")) and int(target) == p.meta["target"], line
            reached = int(steps.rsplit("=", 1)[1]) == p.meta["target"]
            assert verdict == ("yes" if k == len(lines) - 1 else "no") and reached == (verdict == "yes"), line
            if k < MAX_TRIES:  # the k-th try combines the numbers as SEARCH_ORDER[k] says
                last, o1, o2 = SEARCH_ORDER[k]
                first = f"{p.meta['numbers'][last[0]]}{o1}{p.meta['numbers'][last[1]]}="
                assert steps.startswith(first) and f"{o2}{p.meta['numbers'][last[2]]}=" in steps, (line, k)
        answer = trace.split("<answer>")[1].split("</answer>")[0]
        assert task.check(answer, p.answer) is True
    assert max(tries) == MAX_TRIES + 1 and sum(t == 1 for t in tries) > 0.2 * len(tries)
    assert sum(t <= 8 for t in tries) > 0.6 * len(tries)  # a search that usually ends within 8 tries


def test_wrong_step_traces_contain_a_false_step_and_a_wrong_answer():
    docs = build_corpus(300, mix=CorpusMix(correct=0, careful=0, wrong_step=1, direct=0, untagged=0, worked=0, unrelated=0, drill=0,
                                           countdown=0))
    for d in docs:
        think = d.split("<think>\n", 1)[1].split("\n</think>")[0]
        assert any(eval_line(line) is False for line in think.split("\n")), d
        final = int(d.split("Assistant: ")[1].split("<answer>")[1].split("</answer>")[0])
        assert final == int(think.split("\n")[-1].split("=")[1])  # the mistake is carried on


def test_careful_traces_restate_each_sentence_in_order_and_compute_correctly():
    from reasonlab.tasks import get_task
    from reasonlab.world.corpus import careful_trace

    for p in get_task("arithmetic").problems("train", 60, seed=3):
        trace = careful_trace(p)
        lines = trace.split("<think>\n")[1].split("\n</think>")[0].split("\n")
        text = " ".join(line.rsplit(". ", 1)[0] + "." for line in lines)
        assert p.question.startswith(text), (p.question, trace)
        equations = [eq for line in lines for eq in line.rsplit(". ", 1)[1].split(" ")]
        assert len(equations) == len(p.meta["steps"]) and all(eval_line(eq) for eq in equations)
        assert equations[-1].split("=")[1] == p.answer and trace.endswith(f"<answer>{p.answer}</answer>")


def eval_line(line: str):
    from reasonlab.verify.safe_expr import evaluate

    lhs, rhs = line.split("=")
    return evaluate(lhs)[0] == int(rhs)


def test_tokenizer_keeps_tags_and_splits_digits():
    tok = build_tokenizer(build_corpus(300), vocab_size=300)
    for tag in REASONING_TAGS:
        assert len(tok.encode(tag, add_special_tokens=False)) == 1
    ids = tok.encode("<think>\n123*4=492\n</think>", add_special_tokens=False)
    assert tok.decode(ids) == "<think>\n123*4=492\n</think>"
    assert sum(tok.convert_ids_to_tokens(i) in "0123456789" for i in ids) == 7


def test_prompt_tokens_are_a_prefix_of_training_document_tokens():
    """What the model sees at inference (chat template + generation prompt) tokenizes exactly
    like the start of the corpus documents it was trained on."""
    docs = build_corpus(200)
    tok = build_tokenizer(docs, vocab_size=300)
    for d in docs:
        if not d.startswith("User: "):
            continue
        user, completion = d[len("User: "):].split("\nAssistant: ", 1)
        prompt = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        assert prompt == render_chat(user)
        p_ids = tok.encode(prompt, add_special_tokens=False)
        d_ids = tok.encode(d, add_special_tokens=False)
        if completion.startswith("<"):
            assert d_ids[: len(p_ids)] == p_ids


def test_pretrain_output_loads_with_transformers_alone(pretrained_dir):
    code = (
        "import json, sys\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig\n"
        f"p = {str(pretrained_dir)!r}\n"
        "m = AutoModelForCausalLM.from_pretrained(p); t = AutoTokenizer.from_pretrained(p)\n"
        "g = GenerationConfig.from_pretrained(p)\n"
        "ids = t.apply_chat_template([{'role': 'user', 'content': 'hi'}], add_generation_prompt=True, return_tensors='pt', return_dict=True)\n"
        "out = m.generate(**ids, max_new_tokens=5, do_sample=False)\n"
        "print(json.dumps({'arch': m.config.architectures, 'eos': g.eos_token_id, 'pad': g.pad_token_id,\n"
        "  'tok_eos': t.eos_token_id, 'tok_pad': t.pad_token_id, 'end': t.convert_tokens_to_ids('</answer>'),\n"
        "  'dtype': str(m.dtype), 'new': out.shape[1] - ids['input_ids'].shape[1]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["arch"] == ["Qwen2ForCausalLM"] and info["dtype"] == "torch.float32"
    assert info["eos"] == [info["tok_eos"], info["end"]] and info["pad"] == info["tok_pad"] != info["tok_eos"]
    assert 1 <= info["new"] <= 5
    assert (pretrained_dir / "model.safetensors").exists()
    meta = json.loads((pretrained_dir / "reasonlab_train.json").read_text())
    assert meta["train_flops"] > 0 and meta["params"] > 1000


def test_pretraining_lowers_the_loss_and_is_deterministic(pretrained_dir, tmp_path):
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    rows = [json.loads(line) for line in (pretrained_dir.parent / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0
    cfg = PretrainConfig(out=str(tmp_path / "again"), preset="test", steps=3, batch_size=4, seq_len=64, vocab_size=300)
    a = pretrain(cfg, log=lambda *_: None)
    cfg.out = str(tmp_path / "again2")
    b = pretrain(cfg, log=lambda *_: None)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    # a second run with the same settings reuses the finished model; other settings retrain
    logs = []
    mtime = (b / "model.safetensors").stat().st_mtime_ns
    pretrain(cfg, log=logs.append)
    assert "up to date" in logs[0] and (b / "model.safetensors").stat().st_mtime_ns == mtime
    cfg.steps = 4
    pretrain(cfg, log=logs.append)
    assert (b / "model.safetensors").stat().st_mtime_ns != mtime
    cfg.precision, logs = "auto", []  # the record holds the resolved precision: auto is resolved to compare
    pretrain(cfg, log=logs.append)
    pretrain(cfg, log=logs.append)
    assert "up to date" in logs[-1]


def test_pretraining_killed_after_a_checkpoint_resumes_to_the_same_model(tmp_path, monkeypatch):
    """Pretraining runs on the shared trainer: a run killed after its step-3 checkpoint and
    started again with resume ends with the same weights, bit for bit, as a run never stopped,
    and writes the one metadata file every trainer writes. Its directory held a model finished
    with other settings: that record does not make the resumed run start over."""
    from reasonlab.world.pretrain import PretrainConfig, Pretrainer, pretrain

    settings = dict(preset="test", steps=6, batch_size=4, seq_len=64, vocab_size=300, save_every=3, tensorboard=False)
    whole = pretrain(PretrainConfig(out=str(tmp_path / "whole"), **settings), log=lambda *_: None)
    step = Pretrainer.train_step

    def killed_at_5(self):
        if self.step == 4:
            raise KeyboardInterrupt
        return step(self)

    pretrain(PretrainConfig(out=str(tmp_path / "cut"), **{**settings, "steps": 2}), log=lambda *_: None)
    monkeypatch.setattr(Pretrainer, "train_step", killed_at_5)
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainConfig(out=str(tmp_path / "cut"), **settings), log=lambda *_: None)
    assert not (tmp_path / "cut" / "final").exists() and (tmp_path / "cut" / "checkpoints").exists()
    monkeypatch.setattr(Pretrainer, "train_step", step)
    logs = []
    again = pretrain(PretrainConfig(out=str(tmp_path / "cut"), resume=True, **settings), log=logs.append)
    assert any(m.startswith("resume: continuing") and "(step 3)" in m for m in logs), logs  # not from scratch
    assert (again / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    meta = json.loads((again / "reasonlab_train.json").read_text())
    assert meta["method"] == "pretrain" and meta["steps"] == 6 and meta["config"]["preset"] == "test"
    rows = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_trainings_of_both_precisions_run_one_after_another_in_one_process(tmp_path):
    """accelerate keeps one state per process and refuses an `Accelerator` of another mixed
    precision; a pipeline's stages run in one process, so fp32 then bf16 then fp32 must each train
    (bf16 on any CPU: the steps are tiny) in the precision asked for."""
    from accelerate.state import AcceleratorState

    from reasonlab.world.pretrain import PretrainConfig, pretrain

    settings = dict(preset="test", steps=1, batch_size=2, seq_len=32, vocab_size=300, tensorboard=False)
    for i, precision in enumerate(["fp32", "bf16", "fp32"]):
        pretrain(PretrainConfig(out=str(tmp_path / f"p{i}"), precision=precision, **settings), log=lambda *_: None)
        assert AcceleratorState().mixed_precision == ("bf16" if precision == "bf16" else "no")
