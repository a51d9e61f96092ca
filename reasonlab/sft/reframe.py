r"""Moving a verified trace into another answer format, so a student learns to write what its own
template asks for (R1-Distill renders the teacher's traces in the student's frame).

A teacher sampled with the boxed instruction writes reasoning then `\boxed{400}`; a student
trained in `chat-think` is asked for `<think>…</think><answer>…</answer>`. Trained on the boxed
text verbatim it learns to ignore its own system prompt, and strict scoring in its frame reads
nothing. `reframe` keeps the reasoning word for word and moves only the final answer:
  - to `tags`: the reasoning (each `\boxed{x}` unwrapped to `x`) inside `<think>`, the answer the
    strict extraction reads inside `<answer>`;
  - to `boxed`: the `<think>` content, then "The final answer is $\boxed{answer}$.".
A response already in the target format, or one whose answer the strict extraction cannot read,
is returned unchanged (traces are verified, so the latter means a row made elsewhere).
"""

from __future__ import annotations

from reasonlab.verify.extract import boxes, extract_answer


def _has_tags(text: str) -> bool:
    return "</think>" in text and "<answer>" in text and "</answer>" in text


def _unbox(text: str) -> str:
    r"""The text with every top-level `\boxed{x}` replaced by `x` (an unclosed box is kept)."""
    out, last = [], 0
    for start, content in boxes(text):
        if content is None:
            break
        end = text.index("{", start) + 1 + len(content) + 1
        out += [text[last:start], content]
        last = end
    return "".join(out) + text[last:]


def reframe(response: str, to_format: str) -> str:
    r"""`response` with its final answer in `to_format` ("tags" or "boxed"), reasoning unchanged.

    >>> reframe(r"6*40=240, 8*20=160, so she has \(\boxed{400}\) dollars.", "tags")
    '<think>\n6*40=240, 8*20=160, so she has \\(400\\) dollars.\n</think>\n<answer>400</answer>'
    >>> reframe("<think>\n2+2=4\n</think>\n<answer>4</answer>", "boxed")
    '2+2=4\n\nThe final answer is $\\boxed{4}$.'
    >>> reframe("no answer here", "tags")
    'no answer here'
    """
    answer = extract_answer(response)
    if answer is None:
        return response
    if to_format == "tags":
        if _has_tags(response):
            return response
        return f"<think>\n{_unbox(response).strip()}\n</think>\n<answer>{answer}</answer>"
    if not _has_tags(response):
        return response
    thought = response.split("</think>", 1)[0].replace("<think>", "", 1).strip()
    return f"{thought}\n\nThe final answer is $\\boxed{{{answer}}}$."
