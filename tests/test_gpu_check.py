"""The GPU check script runs end to end on the CPU with small sizes and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )


def test_gpu_check_runs_on_the_cpu(tmp_path) -> None:
    out = tmp_path / "check.json"
    result = _run("--device", "cpu", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["settings"] == {"device": "cpu", "quick": True}
    assert report["device"]["device"].startswith("cpu")
    fe = report["fe"]
    for design in ("reference_dataloader", "ours_32-true", "ours_bf16-mixed"):
        assert fe[design]["values_per_s"] > 0
    assert fe["ours_32-true"]["x_vs_reference"] == pytest.approx(
        fe["ours_32-true"]["values_per_s"] / fe["reference_dataloader"]["values_per_s"], rel=0.1
    )
    assert report["xtransfer"]["cells_per_s"] > 0
    assert report["xtransfer"]["precision"] == "bf16-mixed"
    assert report["uge"]["samples_per_s"] > 0
    assert report["wall_s"] > 0
    assert "written" in result.stdout
    assert not list(tmp_path.glob(".*.tmp"))  # the JSON was renamed into place


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_gpu_check_without_cuda_says_how_to_test(tmp_path) -> None:
    result = _run("--out", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr
    assert "--device cpu --quick" in result.stderr
    assert not (tmp_path / "x.json").exists()
