"""Which matrix to keep when tying a GGUF file's two embedding copies (Qwen2.5-Coder-0.5B-Instruct).

The packaged Q4_K_M file stores the one upstream embedding twice: `token_embd` as Q5_0 and
`output` as Q8_0. This bench measures what each choice does:
  1. the two matrices' relative RMS difference, and how closely Q5_0(output) reproduces
     token_embd (if exactly, both are quantizations of one matrix and Q8_0 is the finer one);
  2. next-token agreement with the untied model (the file as llama.cpp runs it): mean KL and
     top-1 match over the greedy completions of the untied model;
  3. greedy accuracy on held-out arithmetic in `qwen-math-boxed`, the same problems for each.

    python bench/convert_tie.py [--n 50] [--out runs/convert-tie]

Last line: `convert_tie: output A% (KL x), input B% (KL y), untied C%, rel diff z`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import warn_if_busy  # noqa: E402

NAME = "qwen2.5-coder-0.5b-instruct"


def matrix_stats(gguf_path: Path) -> dict:
    """Relative difference of the two stored matrices, and Q5_0(output) against token_embd."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize, quantize

    tensors = {t.name: t for t in GGUFReader(gguf_path).tensors}
    emb, out = (tensors[k] for k in ("token_embd.weight", "output.weight"))
    e = dequantize(emb.data, emb.tensor_type).astype(np.float32)
    o = dequantize(out.data, out.tensor_type).astype(np.float32)
    requant = dequantize(quantize(o, emb.tensor_type), emb.tensor_type)
    rms = float(np.sqrt((o ** 2).mean()))
    return {"types": f"token_embd {emb.tensor_type.name}, output {out.tensor_type.name}",
            "rel_diff": float(np.sqrt(((e - o) ** 2).mean())) / rms,
            "requant_rel_diff": float(np.sqrt(((e - requant) ** 2).mean())) / rms,
            "requant_equal": float((e == requant).mean())}


def agreement(untied: Path, tied: Path, prompts: list[str]) -> dict:
    """Mean KL(untied || tied) and top-1 agreement of next-token distributions over the untied
    model's greedy completions of `prompts` (prompt tokens included)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(untied)
    a = AutoModelForCausalLM.from_pretrained(untied, dtype=torch.float32)
    b = AutoModelForCausalLM.from_pretrained(tied, dtype=torch.float32)
    kls, agree, count = 0.0, 0, 0
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt").input_ids
            ids = a.generate(ids, max_new_tokens=64, do_sample=False)
            la, lb = a(ids).logits[0].log_softmax(-1), b(ids).logits[0].log_softmax(-1)
            kls += float((la.exp() * (la - lb)).sum())
            agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
            count += ids.shape[1]
    return {"kl": kls / count, "top1": agree / count}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--out", default="runs/convert-tie")
    args = ap.parse_args()
    from reasonlab.convert import convert_gguf
    from reasonlab.evaluation import EvalConfig, evaluate
    from reasonlab.packaged import packaged_gguf
    from reasonlab.tasks import get_task
    from reasonlab.templates import resolve

    warn_if_busy()
    out = Path(args.out)
    gguf = packaged_gguf(NAME)
    stats = matrix_stats(gguf)
    print(f"matrices: {stats['types']}; relative RMS difference {stats['rel_diff']:.4f}; "
          f"Q5_0(output) vs token_embd {stats['requant_rel_diff']:.4f} ({stats['requant_equal']:.1%} of values equal)")
    models = {}
    for tie in ("none", "output", "input"):
        models[tie] = out / f"model-{tie}"
        if not (models[tie] / "config.json").exists():
            convert_gguf(gguf, models[tie], tie="" if tie == "none" else tie)
    task = get_task("arithmetic")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models["none"])
    template = resolve("qwen-math-boxed", str(models["none"]), tokenizer)
    prompts = [template.render(tokenizer, task, p) for p in task.problems("eval", 8, 1)]
    acc = {}
    for tie, path in models.items():
        res = evaluate(EvalConfig(model=str(path), task="arithmetic", n=args.n, samples=0, template="qwen-math-boxed",
                                  max_new_tokens=512, precision="auto", out=str(out / f"eval-{tie}.json")))
        acc[tie] = res["greedy_accuracy"]
        line = f"tie={tie}: greedy {acc[tie]:.1%} (lenient {res.get('greedy_accuracy_lenient', float('nan')):.1%})"
        if tie != "none":
            ag = agreement(models["none"], path, prompts)
            acc[tie + "_kl"] = ag["kl"]
            line += f", vs untied KL {ag['kl']:.4f} nats/token, top-1 agreement {ag['top1']:.1%}"
        print(line, flush=True)
    print(f"convert_tie: output {acc['output']:.0%} (KL {acc['output_kl']:.4f}), input {acc['input']:.0%} "
          f"(KL {acc['input_kl']:.4f}), untied {acc['none']:.0%}, rel diff {stats['rel_diff']:.3f}")


if __name__ == "__main__":
    main()
