"""The GPU check runs on the CPU up to its CUDA calls: smoke runs, step timings, skipped parts."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO


def _check(data_dir, out, *args):
    env = os.environ | {"STRUCTURAL_DROPOUT_DATA": str(data_dir)}
    command = [sys.executable, "scripts/gpu_check.py", "--out", str(out), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_the_check_runs_on_the_cpu_and_reports_missing_data_as_skipped(tmp_path, fake_mnist):
    result = _check(fake_mnist, tmp_path, "--device", "cpu", "--experiments", "mnist", "liif",
                    "--steps", "2", "--timing-profile", "smoke")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["smoke"]["mnist"]["full_width"]["accuracy"] > 0.5  # it trained
    assert report["step"]["mnist"]["median_s"] > 0 and report["step"]["mnist"]["steps"] == 2
    assert "skipped" in report["smoke"]["liif"] and "sr" in report["smoke"]["liif"]["skipped"]
    assert report["ddp"] == {"skipped": "fewer than two GPUs"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_one_line_error(tmp_path, fake_mnist):
    result = _check(fake_mnist, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("gpu_check: no CUDA device here")
