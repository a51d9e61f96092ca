"""Step-level search guided by a process reward model (search-and-learn's beam search and DVTS).

A step is one line of text (generation stops at a newline, or at `</answer>`, or at eos). With
a budget of N candidates per step and `expansions` M:

- beam search keeps the N/M best partial solutions (by the PRM's score of the whole prefix) and
  expands each M times;
- DVTS (diverse verifier tree search) runs N/M independent subtrees, each keeping only its best
  candidate of M, which trades depth of search for diversity.

All beams of all problems are expanded in one engine call per step and scored in one PRM call.
A beam is finished when its text ends the answer (or the model stopped); finished beams are
kept aside, and the answer is the finished beam the PRM scores highest (an unfinished best beam
is completed when `max_steps` runs out). Every generated token and every token the PRM reads is
counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reasonlab.rollout.base import SamplingParams


@dataclass
class Beam:
    text: str
    score: float = 0.0
    done: bool = False


@dataclass
class SearchResult:
    text: str
    score: float
    tokens: int = 0  #: generated tokens
    scored_tokens: int = 0  #: tokens the PRM read (filled in by the caller's scorer)
    finished: list = field(default_factory=list, repr=False)


def _ended(text: str, finish: str) -> bool:
    return "</answer>" in text or (finish == "stop" and not text.endswith("\n"))


def search(engine, prompts: list[str], scorer, budget: int, expansions: int, diverse: bool = False,
           max_steps: int = 12, step_tokens: int = 32, answer_tokens: int = 32, temperature: float = 1.0,
           seed: int = 0) -> list[SearchResult]:
    """Beam search (or DVTS with `diverse`) for every prompt. `scorer(texts) -> scores` scores
    full texts (prompt + partial solution); higher is better."""
    keep = max(1, budget // expansions)
    # DVTS: `keep` subtrees of width 1 per problem; beam search: one tree of width `keep`
    trees = [(p, t) for p in range(len(prompts)) for t in range(keep if diverse else 1)]
    width = 1 if diverse else keep
    beams = {tree: [Beam("")] for tree in trees}
    finished: dict[int, list[Beam]] = {p: [] for p in range(len(prompts))}
    tokens = [0] * len(prompts)
    params = SamplingParams(max_new_tokens=step_tokens, temperature=temperature, n=expansions,
                            stop=("\n", "</answer>"))
    for step in range(max_steps):
        live = [(tree, b) for tree in trees for b in beams[tree]]
        if not live:
            break
        params.seed = seed * 1_000 + step
        groups = engine.generate([prompts[tree[0]] + b.text for tree, b in live], params)
        cands: list[tuple[tuple, Beam]] = []
        for (tree, b), group in zip(live, groups):
            for c in group:
                tokens[tree[0]] += c.num_tokens
                cands.append((tree, Beam(b.text + c.text, done=_ended(c.text, c.finish_reason))))
        for (_tree, beam), s in zip(cands, scorer([prompts[t[0]] + b.text for t, b in cands])):
            beam.score = s
        for tree in trees:
            mine = sorted((b for t, b in cands if t == tree), key=lambda b: -b.score)
            finished[tree[0]] += [b for b in mine if b.done]
            beams[tree] = _distinct([b for b in mine if not b.done])[:width]
    leftovers = [(p, max(bs, key=lambda b: b.score)) for p in range(len(prompts))
                 if not finished[p] and (bs := [b for t in trees if t[0] == p for b in beams[t]])]
    if leftovers:
        done = engine.generate([prompts[p] + b.text for p, b in leftovers],
                               SamplingParams(max_new_tokens=answer_tokens, temperature=0.0, stop=("</answer>",)))
        for (p, b), group in zip(leftovers, done):
            tokens[p] += group[0].num_tokens
            finished[p].append(Beam(b.text + group[0].text, b.score, True))
    out = []
    for p in range(len(prompts)):
        best = max(finished[p], key=lambda b: b.score) if finished[p] else Beam("", 0.0, True)
        out.append(SearchResult(best.text, best.score, tokens[p], finished=finished[p]))
    return out


def _distinct(beams: list[Beam]) -> list[Beam]:
    seen, out = set(), []
    for b in beams:
        if b.text not in seen:
            seen.add(b.text)
            out.append(b)
    return out
