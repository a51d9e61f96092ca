"""SFT data: every accepted column format, the completion-only mask on templated examples
(reasoning inside <think> included), truncation and one-line errors."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from reasonlab.errors import ReasonlabError
from reasonlab.sft.data import IGNORE, build_examples, collate, load_rows, split_text, tokenize

TRACE = "<think>\n3*4=12\n12+5=17\n</think>\n<answer>17</answer>"
MESSAGES = [{"role": "user", "content": "Tom has 3 boxes of 4 pens and finds 5 more."},
            {"role": "assistant", "content": TRACE}]


def _labelled(tok, ex) -> str:
    return tok.decode([t for t, y in zip(ex.input_ids, ex.labels) if y != IGNORE])


def _unlabelled(tok, ex) -> str:
    return tok.decode([t for t, y in zip(ex.input_ids, ex.labels) if y == IGNORE])


def test_messages_with_the_plain_template_train_only_the_answer_and_its_eos(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ex = tokenize(*split_text({"messages": MESSAGES}, tok), tok, 512)
    assert _labelled(tok, ex) == TRACE + tok.eos_token  # the <think> reasoning is trained on
    assert _unlabelled(tok, ex) == f"User: {MESSAGES[0]['content']}\nAssistant: "
    labels_start = ex.labels.index(next(y for y in ex.labels if y != IGNORE))
    assert ex.input_ids[labels_start:] == ex.labels[labels_start:]


def test_chatml_messages_label_the_reply_and_im_end(chatml_model_dir):
    tok = AutoTokenizer.from_pretrained(chatml_model_dir)
    multi = [{"role": "system", "content": "Be brief."}, *MESSAGES,
             {"role": "user", "content": "And 2 more?"}, {"role": "assistant", "content": "<answer>19</answer>"}]
    ex = tokenize(*split_text({"messages": multi}, tok), tok, 512)
    assert _labelled(tok, ex) == "<answer>19</answer><|im_end|>\n"
    assert TRACE in _unlabelled(tok, ex)  # earlier assistant turns are context only
    conv = {"prompt": multi[:-1], "completion": multi[-1:]}
    assert tokenize(*split_text(conv, tok), tok, 512) == ex


def test_plain_prompt_completion_is_used_as_is_plus_eos(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ex = tokenize(*split_text({"prompt": "Q: 3*4?\nA: ", "completion": "12"}, tok), tok, 512)
    assert _unlabelled(tok, ex) == "Q: 3*4?\nA: " and _labelled(tok, ex) == "12" + tok.eos_token


def test_no_loss_spans_are_context_and_the_noticing_and_right_path_are_trained(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    journey = "<think>\n3*4=15\nWait, 3*4 is 12, not 15. Let me start over.\n3*4=12\n12+5=17\n</think>\n<answer>17</answer>"
    row = {"messages": [MESSAGES[0], {"role": "assistant", "content": journey}], "no_loss": ["3*4=15"]}
    (ex,), _ = build_examples([row], tok, 512)
    plain, _ = build_examples([{"messages": row["messages"]}], tok, 512)
    assert ex.input_ids == plain[0].input_ids  # the same tokens; only their labels differ
    masked = [t for t, y, z in zip(ex.input_ids, ex.labels, plain[0].labels) if y == IGNORE and z != IGNORE]
    assert tok.decode(masked).strip() == "3*4=15"
    assert "Wait, 3*4 is 12, not 15. Let me start over." in _labelled(tok, ex) and "12+5=17" in _labelled(tok, ex)
    at = journey.index("3*4=15")  # the same span as offsets into the response: the same labels
    (by_offset,), _ = build_examples([dict(row, no_loss=[[at, at + len("3*4=15")]])], tok, 512)
    assert by_offset == ex
    with pytest.raises(ReasonlabError, match=r"no_loss span \[5, 999\] does not fit"):
        build_examples([dict(row, no_loss=[[5, 999]])], tok, 512)
    with pytest.raises(ReasonlabError, match=r"d\.jsonl:1: no_loss entry '3\*4=16' is not in the rendered completion"):
        build_examples([dict(row, no_loss=["3*4=16"])], tok, 512, source="d.jsonl")


def test_truncation_keeps_the_prompt_and_drops_rows_with_no_completion_left(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt, _ = split_text({"messages": MESSAGES}, tok)
    limit = len(tok(prompt, add_special_tokens=False)["input_ids"]) + 5
    rows = [{"messages": MESSAGES}, {"prompt": "x " * 200, "completion": "12"}]
    examples, dropped = build_examples(rows, tok, max_length=limit)
    assert dropped == 1 and len(examples) == 1 and len(examples[0].input_ids) == limit
    assert sum(y != IGNORE for y in examples[0].labels) == 5  # the first 5 completion tokens survive
    short = tokenize("a", "b", tok, limit)
    batch = collate(examples + [short], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, limit)
    assert batch["attention_mask"][1].sum() == len(short.input_ids)
    assert (batch["labels"][1][batch["attention_mask"][1] == 0] == IGNORE).all()


def test_loading_jsonl_and_datasets_dirs_with_one_line_errors(tiny_model_dir, tmp_path):
    from datasets import Dataset, DatasetDict

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": MESSAGES}) + "\n" + json.dumps({"question": "q"}) + "\n")
    rows = load_rows(path)
    with pytest.raises(ReasonlabError, match=r"d.jsonl:2: needs 'prompt' and 'completion'"):
        build_examples(rows, tok, 64, source=str(path))
    DatasetDict({"train": Dataset.from_list([{"prompt": "p", "completion": "c"}])}).save_to_disk(tmp_path / "ds")
    assert load_rows(tmp_path / "ds") == [{"prompt": "p", "completion": "c"}]
    with pytest.raises(ReasonlabError, match="does not exist"):
        load_rows(tmp_path / "missing.jsonl")
    with pytest.raises(ReasonlabError, match="must end with an assistant"):
        split_text({"messages": MESSAGES[:1]}, tok)
