"""One real-model GRPO step, rollouts by our transformers engine vs by vLLM's CPU build, in one run.

Both run `reasonlab grpo` on the same model, task, template and settings (4 prompts × 4
completions, at most 150 new tokens, LoRA r 16 on the attention projections, the accuracy reward,
`precision=auto`, no held-out evaluation) for `--steps` steps: ours in this interpreter, vLLM's in
`.venv-vllm` (`make vllm-setup`), where `rollout_backend=vllm` syncs the LoRA-merged weights into
the engine after each step. The first step of each is a warm-up (vLLM compiles and profiles; our
engine warms its caches) and is not counted. Prints each backend's mean seconds a step and the
share of it spent generating. Last line:
`real_step: hf N s, vllm M s a step (generate n% / m%), speedup R`.

    python bench/real_step.py --model runs/qwen [--steps 4] [--template chat-think]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import warn_if_busy

SETTINGS = {"task": "arithmetic", "prompts_per_step": 4, "generations_per_prompt": 4, "max_new_tokens": 150,
            "lora_r": 16, "lora_alpha": 32, "rewards.accuracy": 1.0, "loss_type": "dapo", "lr": 5e-5,
            "precision": "auto", "eval_n": 0, "save_every": 0, "sample_every": 0, "tensorboard": False}


def run(python: Path, backend: str, model: str, template: str, steps: int, out: Path) -> tuple[float, float] | str:
    """Mean step and generation seconds over the steps after the first, or why it failed."""
    args = {**SETTINGS, "template": template, "steps": steps, "rollout_backend": backend}
    cmd = [str(python), "-m", "reasonlab.cli", "grpo", "--model", model, f"out={out}",
           *(f"{k}={v}" for k, v in args.items())]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        return (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "step_time" in r][1:]
    return statistics.mean(r["step_time"] for r in timed), statistics.mean(r["generate_time"] for r in timed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--template", default="chat-think")
    ap.add_argument("--steps", type=int, default=4, help="steps per backend, the first not counted")
    args = ap.parse_args()
    warn_if_busy()
    vllm_python = Path(".venv-vllm/bin/python")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, python in (("hf", Path(sys.executable)), ("vllm", vllm_python)):
            if not python.exists():
                results[backend] = "no .venv-vllm (make vllm-setup)"
                continue
            results[backend] = run(python, backend, args.model, args.template, args.steps, Path(tmp) / backend)
            r = results[backend]
            print(f"{backend}: " + (f"{r[0]:.1f} s a step, {r[1]:.1f} s generating" if isinstance(r, tuple) else f"failed: {r}"),
                  flush=True)
    hf, vl = results["hf"], results["vllm"]
    if not (isinstance(hf, tuple) and isinstance(vl, tuple)):
        print(f"real_step: hf {hf}, vllm {vl}")
        return
    print(f"real_step: hf {hf[0]:.1f} s, vllm {vl[0]:.1f} s a step (generate {100 * hf[1] / hf[0]:.0f}% / "
          f"{100 * vl[1] / vl[0]:.0f}%), speedup {hf[0] / vl[0]:.2f}")


if __name__ == "__main__":
    main()
