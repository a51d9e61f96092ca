"""The Makefile's setup fails loudly: a failing `pip install` stops make with pip's own message
and leaves no stamp file behind (so the next `make` retries instead of trusting a broken venv)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def test_a_failing_pip_install_stops_make_with_pips_message(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    # a python whose pip fails the way a missing wheel does, while everything else it runs succeeds
    python.write_text('#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
                      '  echo "ERROR: No matching distribution found for torch==9.9.9" >&2; exit 1\nfi\nexit 0\n')
    python.chmod(0o755)
    done = subprocess.run(["make", "-C", str(REPO), "setup", f"VENV={venv}"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "No matching distribution found for torch==9.9.9" in done.stdout + done.stderr
    assert not (venv / ".installed").exists()


def test_every_install_runs_under_the_measured_constraints():
    text = (REPO / "Makefile").read_text()
    pins = {ln.split("==")[0] for ln in (REPO / "constraints.txt").read_text().splitlines()
            if ln and not ln.startswith("#")}
    assert {"trl", "transformers"} <= pins
    assert "-c constraints.txt" in text and "|| true" not in text
