"""Budget forcing (s1, Muennighoff et al. 2025) through any rollout engine.

- Cap: thinking stops at `cap` tokens; if the model has not closed `</think>` by then, the end of
  thinking is forced (`\\n</think>\\n<answer>`) and only the answer is generated.
- Extend: when the model closes `</think>`, the closing tag is taken away and "Wait" appended,
  up to `waits` times, so it thinks on; then it may close and answer.

Each phase is one engine call over all problems still in it, continuing from prompt + text so
far (re-encoded: the engine interface has no token-level append, so a continuation costs one
prefill of the text so far, which `prefill_tokens` counts). Departure from s1: s1 suppresses the
end-of-thinking token inside one decode; here the decode stops at `</think>` and restarts, which
yields the same text at the cost of the extra prefills.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonlab.rollout.base import SamplingParams

END_THINK = "</think>"
FORCE_END = "\n</think>\n<answer>"


@dataclass
class Forced:
    text: str = ""
    tokens: int = 0  #: generated tokens, all phases
    thinking_tokens: int = 0
    waits: int = 0  #: "Wait" insertions made
    capped: bool = False  #: the end of thinking was forced
    prefill_tokens: int = 0  #: prompt tokens processed, restarts included


def budget_force(engine, prompts: list[str], cap: int | None = None, waits: int = 0, answer_tokens: int = 32,
                 temperature: float = 0.0, seed: int | None = None, wait_word: str = "Wait",
                 max_tokens: int = 512) -> list[Forced]:
    """One completion per prompt with thinking capped at `cap` tokens (None: `max_tokens`) and/or
    extended `waits` times."""
    out = [Forced() for _ in prompts]
    live = list(range(len(prompts)))
    params = SamplingParams(temperature=temperature, stop=(END_THINK, "</answer>"), seed=seed)
    for round_ in range(waits + 1):
        if not live:
            break
        live = _think_round(engine, prompts, out, live, params, cap or max_tokens, round_ < waits, wait_word)
    pending = [i for i, f in enumerate(out) if not f.text.rstrip().endswith("</answer>")]
    if pending:
        params = SamplingParams(max_new_tokens=answer_tokens, temperature=temperature, stop=("</answer>",), seed=seed)
        for i in pending:
            if END_THINK not in out[i].text:
                out[i].text += FORCE_END
                out[i].capped = True
            elif not out[i].text.rstrip().endswith(">"):
                out[i].text += "\n"
        done = engine.generate([prompts[i] + out[i].text for i in pending], params)
        for i, group in zip(pending, done):
            out[i].text += group[0].text
            out[i].tokens += group[0].num_tokens
            out[i].prefill_tokens += group[0].prompt_tokens
    return out


def _think_round(engine, prompts, out, live, params, cap, may_wait, wait_word) -> list[int]:
    """Generate the next stretch of thinking for `live` problems (batched by remaining budget);
    returns those that go on."""
    by_left: dict[int, list[int]] = {}
    for i in live:
        by_left.setdefault(cap - out[i].thinking_tokens, []).append(i)
    results = {}
    for left, rows in by_left.items():
        for i, group in zip(rows, engine.generate([prompts[i] + out[i].text for i in rows], _with(params, left))):
            results[i] = group
    going = []
    for i in live:
        group = results[i]
        c = group[0]
        out[i].tokens += c.num_tokens
        out[i].thinking_tokens += c.num_tokens
        out[i].prefill_tokens += c.prompt_tokens
        text = c.text
        if text.endswith(END_THINK) and may_wait:
            out[i].text += text[: -len(END_THINK)].rstrip("\n") + f"\n{wait_word}"
            out[i].waits += 1
            if out[i].thinking_tokens < cap:
                going.append(i)
            continue
        out[i].text += text
    return going


def _with(params: SamplingParams, budget: int) -> SamplingParams:
    from dataclasses import replace

    return replace(params, max_new_tokens=max(1, budget))
