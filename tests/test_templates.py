"""Prompt templates: rendering (chat, raw, prefill, task fields), resolution (named > recorded >
by chat template), YAML templates and their errors, rewards that follow the answer format, SFT
rows rendered in the template, and the template recorded in results and model directories."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.rewards import accuracy, format_reward
from reasonlab.rollout.base import chat_prompt
from reasonlab.sft.data import render_row
from reasonlab.tasks import get_task
from reasonlab.templates import BUILTIN, RECORD, Template, get_template, record, recorded, resolve


def _tok(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_tiny_template_renders_exactly_the_old_frame(tiny_model_dir):
    tok, task = _tok(tiny_model_dir), get_task("arithmetic")
    for p in task.problems("eval", 3):
        assert BUILTIN["tiny"].render(tok, task, p) == chat_prompt(tok, task.prompt(p))


def test_chat_think_uses_the_models_chat_template_with_a_system_prompt(chatml_model_dir):
    tok, task = _tok(chatml_model_dir), get_task("arithmetic")
    p = task.problems("eval", 1)[0]
    text = BUILTIN["chat-think"].render(tok, task, p)
    assert text == (f"<|im_start|>system\n{BUILTIN['chat-think'].system}<|im_end|>\n"
                    f"<|im_start|>user\n{p.question}<|im_end|>\n<|im_start|>assistant\n")


def test_raw_templates_need_no_chat_template_and_end_in_their_prefill():
    task = get_task("countdown")
    p = task.problems("eval", 1)[0]
    text = BUILTIN["tinyzero-countdown"].render(None, task, p)
    nums = ", ".join(map(str, p.meta["numbers"]))
    assert f"Using the numbers {nums}, create an equation that equals {p.meta['target']}." in text
    assert text.endswith("Assistant: Let me solve this step by step.\n<think>")
    r1 = BUILTIN["r1-zero"].render(None, task, p)
    assert r1.startswith("A conversation between User and Assistant.") and r1.endswith(f"User: {p.question}\nAssistant: <think>")
    with pytest.raises(ReasonlabError, match="no chat template"):
        BUILTIN["chat-think"].render(None, task, p)


def test_response_and_strip_prefill_are_inverse():
    t = BUILTIN["r1-zero"]
    assert t.response("2+2=4</think><answer>4</answer>") == " <think>2+2=4</think><answer>4</answer>"
    assert t.strip_prefill(t.response("x</think>")) == "x</think>"
    assert t.strip_prefill("<think>\nx</think>") == "\nx</think>"  # a reference without the space
    assert BUILTIN["tiny"].strip_prefill("<think>x</think>") == "<think>x</think>"


def test_resolve_named_then_recorded_then_by_chat_template(tmp_path, tiny_model_dir, chatml_model_dir):
    assert resolve("qwen-math-boxed", tiny_model_dir).name == "qwen-math-boxed"
    assert resolve("", tiny_model_dir).name == "tiny"  # recorded by the fixture, as pretrain does
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json", "chat_template.jinja"):
        (bare / f).write_bytes((chatml_model_dir / f).read_bytes())
    assert resolve("", bare).name == "chat-think"
    (bare / "chat_template.jinja").unlink()
    cfg = json.loads((bare / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert resolve("", bare).name == "r1-zero"
    record(bare, BUILTIN["qwen-math-boxed"])
    assert recorded(bare) == BUILTIN["qwen-math-boxed"] and resolve("", bare).name == "qwen-math-boxed"


def test_yaml_templates_and_their_one_line_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("system: Be brief.\nuser: 'Q: {question}'\nprefill: '<think>'\nanswer_format: boxed\n")
    t = get_template(str(path))
    assert (t.name, t.system, t.prefill, t.answer_format, t.chat) == ("mine", "Be brief.", "<think>", "boxed", True)
    p = get_task("arithmetic").problems("eval", 1)[0]
    assert t.messages(None, p) == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Q: {p.question}"}]
    path.write_text("user: '{question}'\nanswer_format: latex\n")
    with pytest.raises(ReasonlabError, match="answer_format 'latex' is not one of tags, boxed"):
        get_template(str(path))
    path.write_text("user: '{question}'\ncolour: red\n")
    with pytest.raises(ReasonlabError, match=r"mine\.yaml: unknown key 'colour'"):
        get_template(str(path))
    with pytest.raises(ReasonlabError, match="no field 'numbers'"):
        Template("t", user="{numbers}", chat=False).render(None, None, p)
    with pytest.raises(ReasonlabError, match="unknown 'nope'"):
        get_template("nope")


def test_rewards_follow_the_answer_format():
    boxed = ["First 3*4=12, then 12+5=17. So the answer is $\\boxed{17}$.", "\\boxed{17}",
             "3*4=12 so \\boxed{16} or \\boxed{17}", "<think>3*4=12</think><answer>17</answer>"]
    assert format_reward(boxed, answer_format="boxed") == [1.0, 0.0, 0.0, 0.0]
    assert accuracy(boxed, answer="17", task="arithmetic", answer_format="boxed") == [1.0, 1.0, 0.0, 1.0]
    assert format_reward(boxed, answer_format="tags") == [0.0, 0.0, 0.0, 1.0]
    # a column of formats, one per row, as trainers pass it
    assert format_reward(boxed[:1] + boxed[3:], answer_format=["boxed", "tags"]) == [1.0, 1.0]


def test_sft_rows_with_a_question_are_rendered_in_the_template(chatml_model_dir):
    tok, task = _tok(chatml_model_dir), get_task("arithmetic")
    p = task.problems("train", 1)[0]
    row = {"prompt": [{"role": "user", "content": "ignored"}], "question": p.question, "task": "arithmetic",
           "answer": p.answer, "completion": [{"role": "assistant", "content": "<think>\nx\n</think>\n<answer>1</answer>"}]}
    t = Template("pre", system="S", prefill="<think>")
    prompt, completion = render_row(row, t, tok)
    assert prompt == t.render(tok, task, p) and prompt.endswith("<|im_start|>assistant\n<think>")
    assert completion == "\nx\n</think>\n<answer>1</answer><|im_end|>\n"  # the chat template's end of turn
    prompt, completion = render_row({**row, "completion": "<think>y</think>"}, BUILTIN["r1-zero"], tok)
    assert prompt.endswith("Assistant: <think>") and completion == "y</think>" + tok.eos_token
    with pytest.raises(ReasonlabError, match="has no 'task'"):
        render_row({k: v for k, v in row.items() if k != "task"}, BUILTIN["tiny"], tok)


def test_a_trace_is_rendered_with_its_answer_in_the_students_format(chatml_model_dir):
    """A boxed teacher trace trained in chat-think gets tags (else the student learns to ignore its
    own system prompt); a tags trace trained in the boxed frame gets a box; the strict reward of
    the target frame credits both, and a journey row's spans keep the text as written."""
    tok, task = _tok(chatml_model_dir), get_task("arithmetic")
    p = task.problems("train", 1)[0]
    boxed = f"First I work it out step by step. Thus she has \\(\\boxed{{{p.answer}}}\\) dollars."
    row = {"question": p.question, "task": "arithmetic", "answer": p.answer,
           "completion": [{"role": "assistant", "content": boxed}]}
    end = "<|im_end|>\n"
    _, text = render_row(row, BUILTIN["chat-think"], tok)
    assert text == (f"<think>\nFirst I work it out step by step. Thus she has \\({p.answer}\\) dollars.\n</think>\n"
                    f"<answer>{p.answer}</answer>" + end)
    assert format_reward([text[: -len(end)]], answer_format="tags") == [1.0]
    assert accuracy([text[: -len(end)]], answer=p.answer, task="arithmetic") == [1.0]
    tags = {**row, "completion": f"<think>\n3*4=12\n</think>\n<answer>{p.answer}</answer>"}
    _, text = render_row(tags, BUILTIN["qwen-math-boxed"], tok)
    assert text == f"3*4=12\n\nThe final answer is $\\boxed{{{p.answer}}}$." + end
    assert format_reward([text[: -len(end)]], answer_format="boxed") == [1.0]
    assert accuracy([text[: -len(end)]], answer=p.answer, task="arithmetic", answer_format="boxed") == [1.0]
    _, text = render_row({**row, "no_loss": ["First"]}, BUILTIN["chat-think"], tok)
    assert text == boxed + end
    _, text = render_row({**row, "completion": "I cannot tell."}, BUILTIN["chat-think"], tok)
    assert text == "I cannot tell." + end


def test_eval_records_the_template_and_each_rendered_prompt(tiny_model_dir, tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("eval", "--model", str(tiny_model_dir), "--n", "2", "--samples", "0", "--out", str(out),
                   "template=r1-zero", "max_new_tokens=4")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["template"] == "r1-zero"
    rows = [json.loads(x) for x in out.with_suffix(".samples.jsonl").read_text().splitlines()]
    assert rows[0]["_header"]["template"]["name"] == "r1-zero"
    assert all(r["prompt"].startswith("A conversation between User and Assistant.") for r in rows[1:])
    assert all(r["text"].startswith(" <think>") for r in rows[1:])  # scored with the prefill
    bad = run_cli("eval", "--model", str(tiny_model_dir), "--n", "2", "--out", str(tmp_path / "b.json"), "template=zzz")
    assert bad.returncode == 2 and "template: unknown 'zzz'" in bad.stderr


def test_templates_cli_lists_and_renders(chatml_model_dir):
    listed = run_cli("templates")
    assert listed.returncode == 0 and all(name in listed.stdout for name in BUILTIN)
    shown = run_cli("templates", "--model", str(chatml_model_dir))
    assert shown.returncode == 0 and shown.stdout.startswith("User: ") is False
    assert "# template tiny" in shown.stderr  # the fixture recorded it
    boxed = run_cli("templates", "qwen-math-boxed", "--model", str(chatml_model_dir))
    assert "put your final answer within \\boxed{}" in boxed.stdout and boxed.stdout.rstrip().endswith("assistant")


def test_trained_models_record_their_template(tiny_model_dir, tmp_path):
    from reasonlab.sft.trainer import SFTConfig, run_sft

    data = tmp_path / "d.jsonl"
    task = get_task("arithmetic")
    rows = [{"question": p.question, "task": "arithmetic", "answer": p.answer, "completion": task.reference(p)}
            for p in task.problems("train", 4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = SFTConfig(model=str(tiny_model_dir), data=str(data), out=str(tmp_path / "o"), steps=1, batch_size=4,
                    template="r1-zero", tensorboard=False, lora_r=2, lora_targets=["q_proj"])
    final = run_sft(cfg, log=lambda m: None)
    assert recorded(final).name == "r1-zero" and (tmp_path / "o" / "adapter" / RECORD).exists()
    assert (tmp_path / "o" / "adapter" / "adapter_config.json").exists()
