"""SFT data: rows in TRL's column formats → token ids, with the loss on completion tokens only.

Accepted rows (a JSONL file, or a directory written by `datasets`' `save_to_disk`):
  - `{"prompt": str, "completion": str}`: plain text, used as is (TRL's "standard" format); an
    eos token is appended to the completion so the model learns to stop;
  - `{"prompt": [messages], "completion": [messages]}`: conversational; the model's chat template
    renders both, and the loss covers what the completion adds;
  - `{"messages": [...]}` ending in an assistant message: the loss covers that last message and
    whatever the template appends after it (eos, `<|im_end|>`), earlier turns are context.
Rows that carry a `question` (what `reasonlab traces` writes: also `task`, `meta`, `answer`) are
rendered in the run's prompt template instead (`render_row`): the prompt exactly as generation
renders it (prefill included) and, as completion, what the model writes after the prefill plus
the end of its turn; so a model is trained and evaluated in the same frame. A response whose
final answer is in another format than the template asks for (a boxed teacher trace for a
`chat-think` student) has its answer moved into the template's format (`reasonlab.sft.reframe`).
Prompt and completion are tokenized separately, as at generation time (the model sees the prompt
tokens, then produces the completion's), so the labelled tokens are exactly the ones a sampler
would emit. Labels are -100 on prompt tokens and padding. Reasoning inside `<think>` is part of
the completion, so it is trained on. A row may list spans under `no_loss` (journey learning's
wrong branches), as `[start, end]` in its response text or as strings found in order: the tokens
that lie wholly inside one are context, labelled -100, like the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from reasonlab.errors import ReasonlabError
from reasonlab.io import read_jsonl
from reasonlab.sft.reframe import reframe
from reasonlab.tasks import Problem, get_task

IGNORE = -100


def load_rows(path: str | Path) -> list[dict]:
    """Rows of a JSONL file or a saved `datasets` dir (its "train" split when it holds several)."""
    path = Path(path)
    if not path.exists():
        raise ReasonlabError(f"data: {path} does not exist")
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        ds = load_from_disk(str(path))
        if isinstance(ds, DatasetDict):
            if "train" not in ds:
                raise ReasonlabError(f"data: {path} has splits {list(ds)} but no 'train'")
            ds = ds["train"]
        return [dict(r) for r in ds]

    try:
        return list(read_jsonl(path))
    except ValueError as e:
        raise ReasonlabError(f"data: {e}") from None


PLACEHOLDER = "\x00reasonlab-completion\x00"


def render_row(row: dict, template, tokenizer, where: str = "row") -> tuple[str, str]:
    """(prompt, completion) of a row with a `question`, in `template`: the prompt as generation
    renders it, and the row's response (its last assistant message, or a string completion) with
    its answer in the template's format, after the template's prefill, followed by the end of
    the assistant's turn."""
    completion = row.get("completion")
    if isinstance(completion, list):
        completion = completion[-1].get("content") if completion else None
    if not isinstance(completion, str):
        raise ReasonlabError(f"{where}: a row with 'question' needs a 'completion' (string or assistant message)")
    problem = Problem(str(row.get("problem", "")), str(row["question"]), str(row.get("answer", "")),
                      row.get("meta") or {})
    task = get_task(row["task"]) if row.get("task") else None
    if "{prompt}" in template.user and task is None:
        raise ReasonlabError(f"{where}: template {template.name} uses the task's prompt, but the row has no 'task'")
    prompt = template.render(tokenizer, task, problem)
    if not row.get("no_loss"):  # journey rows' spans index the text as written
        completion = reframe(completion, template.answer_format)
    return prompt, template.strip_prefill(completion) + _turn_end(template, task, problem, tokenizer)


def _turn_end(template, task, problem, tokenizer) -> str:
    """What follows an assistant message's content: the chat template's end of turn (found with a
    placeholder, since some templates rewrite `<think>` in message content), else eos."""
    if not template.chat:
        return tokenizer.eos_token or ""
    msgs = template.messages(task, problem) + [{"role": "assistant", "content": PLACEHOLDER}]
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    return full[full.index(PLACEHOLDER) + len(PLACEHOLDER):] if PLACEHOLDER in full else tokenizer.eos_token or ""


def split_text(row: dict, tokenizer, where: str = "row", template=None) -> tuple[str, str]:
    """(prompt text, completion text) of one row in any accepted format."""
    if template is not None and "question" in row:
        return render_row(row, template, tokenizer, where)
    if "messages" in row:
        msgs = row["messages"]
        if not msgs or msgs[-1].get("role") != "assistant":
            raise ReasonlabError(f"{where}: 'messages' must end with an assistant message")
        return _templated(msgs[:-1], msgs[-1:], tokenizer, where)
    if "prompt" not in row or "completion" not in row:
        raise ReasonlabError(f"{where}: needs 'prompt' and 'completion' columns, or 'messages' (has {sorted(row)})")
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, list) and isinstance(completion, list):
        return _templated(prompt, completion, tokenizer, where)
    if isinstance(prompt, str) and isinstance(completion, str):
        return prompt, completion + (tokenizer.eos_token or "")
    raise ReasonlabError(f"{where}: 'prompt' and 'completion' must both be strings or both lists of messages")


def _templated(context: list, completion: list, tokenizer, where: str) -> tuple[str, str]:
    if not getattr(tokenizer, "chat_template", None):
        raise ReasonlabError(f"{where}: conversational rows need a tokenizer with a chat template")
    prompt = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(context + completion, tokenize=False)
    if not full.startswith(prompt):
        raise ReasonlabError(f"{where}: the chat template does not render the prompt as a prefix of the whole "
                             "conversation, so the completion cannot be located")
    return prompt, full[len(prompt):]


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens
    #: set on packed rows: positions restart at 0 for each packed example, which is how the
    #: model (given no attention mask) tells the examples apart and keeps them from attending
    #: to each other
    position_ids: list[int] | None = None


def _response(row: dict) -> str | None:
    """The row's own response text: a string completion, or its last assistant message's content."""
    reply = row.get("completion", row.get("messages"))
    if isinstance(reply, list):
        reply = reply[-1].get("content") if reply and isinstance(reply[-1], dict) else None
    return reply if isinstance(reply, str) else None


def no_loss_spans(row: dict, completion: str, where: str = "row") -> list[tuple[int, int]]:
    """Character ranges of the rendered `completion` that are context, not targets. Each `no_loss`
    entry is `[start, end]` in the row's own response text (exact; what `reasonlab journey` writes)
    or a string, found after the entry before it.

    >>> no_loss_spans({"no_loss": ["3*60=160"]}, "<think>\\n3*60=160\\nWait")
    [(8, 16)]
    >>> no_loss_spans({"completion": "<think>\\n3*60=160", "no_loss": [[8, 16]]}, "x: <think>\\n3*60=160</s>")
    [(11, 19)]
    """
    spans, start = [], 0
    entries = row.get("no_loss") or []
    if not isinstance(entries, list):
        raise ReasonlabError(f"{where}: 'no_loss' must be a list of strings or [start, end] pairs")
    for entry in entries:
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, int) for x in entry):
            reply = _response(row)
            at = completion.find(reply) if reply else -1
            if at < 0 or not 0 <= entry[0] < entry[1] <= len(reply):
                raise ReasonlabError(f"{where}: no_loss span {entry} does not fit the response as rendered")
            spans.append((at + entry[0], at + entry[1]))
            continue
        at = completion.find(entry, start) if isinstance(entry, str) and entry else -1
        if at < 0:
            raise ReasonlabError(f"{where}: no_loss entry {str(entry)[:40]!r} is not in the rendered completion")
        spans.append((at, at + len(entry)))
        start = at + len(entry)
    return spans


def _completion_labels(completion: str, tokenizer, no_loss: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The completion's ids, and its labels: the ids, with -100 on tokens inside a `no_loss` span."""
    if not no_loss:
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        return c, list(c)
    if not getattr(tokenizer, "is_fast", False):
        raise ReasonlabError("no_loss: needs a fast tokenizer (its offsets locate the spans)")
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    inside = [any(a <= s and e <= b for a, b in no_loss) for s, e in enc["offset_mapping"]]
    return enc["input_ids"], [IGNORE if x else t for t, x in zip(enc["input_ids"], inside)]


def tokenize(prompt: str, completion: str, tokenizer, max_length: int,
             no_loss: list[tuple[int, int]] | None = None) -> Example | None:
    """Token ids and labels, cut to `max_length`; None when no completion token would remain.
    `no_loss`: character ranges of the completion whose tokens are context, not targets."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c, targets = _completion_labels(completion, tokenizer, no_loss or [])
    ids = (p + c)[:max_length]
    labels = ([IGNORE] * len(p) + targets)[:max_length]
    if all(x == IGNORE for x in labels):
        return None
    return Example(ids, labels)


def build_examples(rows: list[dict], tokenizer, max_length: int, source: str = "data",
                   template=None) -> tuple[list[Example], int]:
    """Examples for every row, and how many rows were dropped because the prompt filled `max_length`."""
    out, dropped = [], 0
    for i, row in enumerate(rows):
        where = f"{source}:{i + 1}"
        prompt, completion = split_text(row, tokenizer, where, template)
        ex = tokenize(prompt, completion, tokenizer, max_length, no_loss_spans(row, completion, where))
        if ex is None:
            dropped += 1
        else:
            out.append(ex)
    return out, dropped


def pack(examples: list[Example], max_length: int) -> list[Example]:
    """Best-fit-decreasing packing of examples into rows of at most `max_length` tokens.

    Each example keeps its own positions (0, 1, …) and its first label is dropped, so no token is
    predicted across an example boundary; the loss over a packed row equals the sum of its
    examples' losses.

    >>> rows = pack([Example([1, 2, 3], [-100, 2, 3]), Example([4, 5], [4, 5]), Example([6], [6])], 4)
    >>> [(r.input_ids, r.labels, r.position_ids) for r in rows]
    [([1, 2, 3, 6], [-100, 2, 3, -100], [0, 1, 2, 0]), ([4, 5], [-100, 5], [0, 1])]
    """
    bins: list[list[Example]] = []
    room: list[int] = []
    for e in sorted(examples, key=lambda e: -len(e.input_ids)):  # stable: equal lengths keep their order
        fits = [b for b, r in enumerate(room) if r >= len(e.input_ids)]
        b = min(fits, key=lambda b: room[b]) if fits else len(bins)
        if b == len(bins):
            bins.append([])
            room.append(max_length)
        bins[b].append(e)
        room[b] -= len(e.input_ids)
    return [Example([t for e in group for t in e.input_ids],
                    [y for e in group for y in [IGNORE] + e.labels[1:]],
                    [i for e in group for i in range(len(e.input_ids))]) for group in bins]


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels [B, L], plus position_ids [B, L] for
    packed rows (their padding counts as one more sequence, with no labels)."""
    L = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), L), pad_id, dtype=torch.long)  # [B, L]
    labels = torch.full((len(examples), L), IGNORE, dtype=torch.long)  # [B, L]
    mask = torch.zeros(len(examples), L, dtype=torch.long)  # [B, L]
    pos = torch.zeros(len(examples), L, dtype=torch.long)  # [B, L]
    for j, e in enumerate(examples):
        n = len(e.input_ids)
        ids[j, :n], labels[j, :n], mask[j, :n] = torch.tensor(e.input_ids), torch.tensor(e.labels), 1
        if e.position_ids is not None:
            pos[j, :n], pos[j, n:] = torch.tensor(e.position_ids), torch.arange(L - n)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if any(e.position_ids is not None for e in examples):
        batch["position_ids"] = pos
    return batch
