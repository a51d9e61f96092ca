"""The README's "after `make demo`" commands work as written: the quick pipeline is run into
`runs/pipeline` of a scratch directory (the quick run makes every model the commands name), then
each command of that README block runs there, in order, with only small budgets appended (the
same flags given again win, so the command itself is untouched)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow
MARK = "<!-- readme-commands: tests/test_readme.py runs these in order after a quick pipeline -->"
#: budgets appended to each command (by its first words): the README shows real sizes
SMALL = {
    "reasonlab eval": ["--n", "2", "--samples", "2", "max_new_tokens=8"],
    "reasonlab grpo": ["--steps", "1", "prompts_per_step=2", "generations_per_prompt=2", "max_new_tokens=8",
                       "eval_n=2", "sample_every=0"],
    "reasonlab traces": ["--n", "2", "--samples", "2", "max_new_tokens=8"],
    "reasonlab sft": ["steps=1", "batch_size=2"],
    "reasonlab scale": ["--n", "2", "--budget", "2", "max_new_tokens=8", "pool=0", "resamples=1"],
    "reasonlab plan": [],
    "reasonlab templates": [],
    "reasonlab report": [],
    "python bench/sft_vs_trl.py": ["--steps", "3"],
    "python bench/grpo_vs_trl.py": ["--steps", "2", "--prompts", "2", "--generations", "2", "--new-tokens", "8"],
}


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    assert MARK in text, "the README lost its block of commands to run after make demo"
    block = text.split(MARK, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [ln.split("  #", 1)[0].strip() for ln in block.replace("\\\n", " ").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_the_block_is_runnable_as_written():
    cmds = readme_commands()
    assert len(cmds) >= 6
    for c in cmds:
        assert not re.search(r"\[|\bDIR\b|…", c), f"not a runnable command: {c}"
        assert any(c.startswith(k) for k in SMALL), f"no small budget known for: {c}"


def test_readme_commands_run_in_order_after_the_quick_pipeline(tmp_path):
    for name in ("recipes", "bench", "configs"):
        (tmp_path / name).symlink_to(REPO / name)
    proc = run_cli("run", "--quick", "--out", "runs/pipeline", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    for cmd in readme_commands():
        key = next(k for k in SMALL if cmd.startswith(k))
        argv = shlex.split(cmd) + SMALL[key]
        if argv[0] == "python":
            argv[0] = sys.executable
        else:  # the installed console script, as a reader would type it
            argv = [sys.executable, "-m", "reasonlab.cli", *argv[1:]]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, f"{cmd}\n{done.stderr[-3000:]}"
