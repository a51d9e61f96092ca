"""`reasonlab traces --teacher URL` against a real OpenAI-compatible server: vLLM's own API server
(the CPU build in `.venv-vllm`) serving a tiny-world model whose generation config ends on
`</answer>` (an eos id), which the server leaves out of the text by default. A scripted server
never did that; this one made every trace fail verification before the fix. The served model is
trained in the test to solve its problems, so acceptance is far from 0 and must equal the local
engine's: exactly when greedy, within sampling noise when sampled."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import REPO, run_cli
from test_vllm import VLLM_PY, needs_vllm

pytestmark = [needs_vllm, pytest.mark.slow]
N = 6


@pytest.fixture(scope="module")
def solver(tmp_path_factory):
    """A test32 model pretrained briefly, then fine-tuned on the worked solutions of the first
    N training problems until it reproduces them."""
    from reasonlab.sft.traces import TracesConfig, generate_traces
    from reasonlab.sft.trainer import SFTConfig, run_sft
    from reasonlab.world.pretrain import PretrainConfig, pretrain

    root = tmp_path_factory.mktemp("solver")
    base = pretrain(PretrainConfig(out=str(root / "base"), preset="test32", steps=150, batch_size=8, seq_len=128,
                                   vocab_size=300), log=lambda *_: None)
    generate_traces(TracesConfig(teacher="reference", n=N, samples=1, out=str(root / "ref.jsonl")), log=lambda *_: None)
    return run_sft(SFTConfig(model=str(base), data=str(root / "ref.jsonl"), out=str(root / "sft"), steps=400,
                             batch_size=N, lr=3e-3, tensorboard=False, save_every=0), log=lambda *_: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(solver):
    """vLLM's OpenAI API server on `solver`, on a free loopback port; stopped after the module."""
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONWARNINGS": "ignore"}
    log = open(solver.parent / "server.log", "w")
    proc = subprocess.Popen([str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(solver),
                             "--served-model-name", "solver", "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "float32", "--max-model-len", "512", "--gpu-memory-utilization", "0.1",
                             "--enforce-eager"],  # as our CPU rollouts run it: no 15 s compile at start
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("vLLM server did not start:\n" + (solver.parent / "server.log").read_text()[-3000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _traces(teacher: str, out, *extra: str) -> dict:
    proc = run_cli("traces", "--teacher", teacher, "--n", str(N), "--out", str(out), "template=tiny", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_traces_from_a_vllm_server_verify_like_the_local_engine(server, solver, tmp_path):
    greedy = ("--samples", "1", "temperature=0")
    local = _traces(str(solver), tmp_path / "local.jsonl", *greedy)
    assert local["acceptance_rate"] >= 0.8  # the model solves its problems: the comparison means something
    # vLLM recognised from /models: asked to keep the stop string in the text
    assert _traces(server, tmp_path / "kept.jsonl", *greedy)["acceptance_rate"] == local["acceptance_rate"]
    # the model named (no /models look-up): treated as any server, cut answers are closed
    named = _traces(server, tmp_path / "closed.jsonl", *greedy, "teacher_model=solver")
    assert named["acceptance_rate"] == local["acceptance_rate"]
    row = json.loads((tmp_path / "kept.jsonl").read_text().splitlines()[0])
    assert row["completion"][0]["content"].endswith("</answer>") and row["template"] == "tiny"
    # no template named: the one recorded where the server loaded its model (`root` in /v1/models)
    proc = run_cli("traces", "--teacher", server, "--n", str(N), "--out", str(tmp_path / "rec.jsonl"), *greedy)
    assert proc.returncode == 0 and f"template tiny (recorded in {solver}" in proc.stderr, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["acceptance_rate"] == local["acceptance_rate"]
    sampled = ("--samples", "4", "temperature=1.0", "seed=3")
    a = _traces(str(solver), tmp_path / "ls.jsonl", *sampled)["acceptance_rate"]
    b = _traces(server, tmp_path / "ss.jsonl", *sampled)["acceptance_rate"]
    p, n = (a + b) / 2, N * 4
    assert abs(a - b) <= 3 * math.sqrt(max(p * (1 - p), 0.05) * 2 / n) + 1e-9, (a, b)
