"""How fast and how bounded answer checking is: `is_correct(..., task="math")` throughput with 1
and 8 threads, and the worst latency with pathological inputs mixed in, optionally while a GRPO
training job runs beside it (the load a real run puts on a 2-core machine).

The workload is unique per call (no cache hits): 60% plain numbers (exact arithmetic, in
process), 30% LaTeX that needs math-verify (worker pool), 10% pathological inputs that must be
killed at the time bound. Prints, per setting: checks/s, median / p99 / max latency, and how many
calls exceeded the 5 s bound (goal: 0). Last line: `worst_latency: S` (seconds).

    python bench/verify_load.py [--checks 400] [--with-training]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import warn_if_busy

from reasonlab.tasks import is_correct
from reasonlab.verify.mathcheck import DEADLINE, pool, warm

PATHOLOGICAL = [r"\dfrac{5^{(5^{(5^{(5^5)})}-4)}-5}{16}", "2^{2^{2^{2^{2^{5}}}}}", r"(10^{10^{10}})!", "9^{9^{9^{9}}}"]


def workload(n: int, offset: int) -> list[tuple[str, str]]:
    out = []
    for i in range(offset, offset + n):
        if i % 10 == 0:
            out.append((f"<answer>{PATHOLOGICAL[(i // 10) % len(PATHOLOGICAL)]}</answer>", str(i)))
        elif i % 10 < 4:
            out.append((f"so \\boxed{{\\frac{{\\sqrt{{{4 * i * i}}}}}{{2}}}}", str(i)))
        else:
            out.append((f"<think>...</think><answer>\\frac{{{2 * i}}}{{2}}</answer>", str(i)))
    return out


def run(threads: int, checks: int, offset: int) -> dict:
    items = workload(checks, offset)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(part):
        for completion, gold in part:
            t = time.monotonic()
            is_correct(completion, gold, task="math")
            with lock:
                latencies.append(time.monotonic() - t)

    parts = [items[k::threads] for k in range(threads)]
    t0 = time.monotonic()
    pool_threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in pool_threads:
        t.start()
    for t in pool_threads:
        t.join()
    wall = time.monotonic() - t0
    latencies.sort()
    return {"checks_per_s": checks / wall, "median": statistics.median(latencies),
            "p99": latencies[int(0.99 * (len(latencies) - 1))], "max": latencies[-1],
            "over_bound": sum(x > DEADLINE for x in latencies)}


def training_job(out: Path) -> subprocess.Popen:
    """A GRPO run on a freshly pretrained test-size model, as background load."""
    base = out / "base"
    subprocess.run([sys.executable, "-m", "reasonlab.cli", "pretrain", "--out", str(base), "preset=test", "--steps", "30",
                    "batch_size=8", "seq_len=128", "vocab_size=300"], check=True, capture_output=True)
    return subprocess.Popen([sys.executable, "-m", "reasonlab.cli", "grpo", "--model", str(base / "final"), "--out",
                             str(out / "grpo"), "--steps", "100000", "sample_every=0", "tensorboard=false",
                             "prompts_per_step=4", "generations_per_prompt=4", "max_new_tokens=32"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=400)
    ap.add_argument("--with-training", action="store_true", help="run a GRPO job beside the checks")
    args = ap.parse_args()
    warn_if_busy()
    job = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.with_training:
            job = training_job(Path(tmp))
            time.sleep(10)  # let it reach its training loop
        warm()
        t = time.monotonic()
        is_correct("<answer>\\sqrt{4}</answer>", "2", task="math")
        print(f"first call (pool start): {time.monotonic() - t:.2f} s")
        worst = 0.0
        try:
            for k, threads in enumerate((1, 8)):
                r = run(threads, args.checks, offset=k * args.checks)
                worst = max(worst, r["max"])
                print(f"{threads} thread(s){' + training' if job else ''}: {r['checks_per_s']:.1f} checks/s, "
                      f"median {1000 * r['median']:.1f} ms, p99 {r['p99']:.2f} s, max {r['max']:.2f} s, "
                      f"over {DEADLINE:.0f} s: {r['over_bound']}", flush=True)
        finally:
            if job is not None:
                job.kill()
                job.wait()
    print(f"timeouts (pathological inputs killed): {pool().timeouts}")
    print(f"worst_latency: {worst:.2f}")


if __name__ == "__main__":
    main()
