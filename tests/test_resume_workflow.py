"""A training job killed mid-run resumes after its last completed epoch and ends with the same numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, job_dir, run_snakemake, write_config

pytestmark = pytest.mark.workflow
OVERRIDES = {"models": ["cx_bpu"], "seeds": [0], "training": {"epochs": 6, "patience": 10},
             "task": {"sample_efficiency_fractions": [1.0]}}


def _start(workdir: Path, job: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", str(job / "metrics.csv")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_killed_training_job_resumes_with_identical_results(tmp_path: Path):
    interrupted, clean = tmp_path / "interrupted", tmp_path / "clean"
    for workdir in (interrupted, clean):
        workdir.mkdir()
        write_config(workdir, OVERRIDES)
    job = job_dir(interrupted, "cx_bpu", 0, 48).relative_to(interrupted)
    run_snakemake(interrupted, "graph", "--config", "models=[cx_bpu]")   # upstream first, so the kill hits training

    proc = _start(interrupted, job)
    state = interrupted / job / "resume_state.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), "training never saved an epoch"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (interrupted / job / "metrics.csv").exists()

    run_snakemake(interrupted, "--unlock")          # a SIGKILLed snakemake leaves its lock behind
    run_snakemake(interrupted, f"{job}/metrics.csv", "--rerun-incomplete")
    assert "resuming after epoch" in (interrupted / job / "train.log").read_text()
    run_snakemake(clean, f"{job}/metrics.csv")

    columns = lambda frame: frame.drop(columns=["latency_ms_per_sequence"])  # noqa: E731 (wall-clock timing)
    resumed = pd.read_csv(interrupted / job / "metrics.csv")
    reference = pd.read_csv(clean / job / "metrics.csv")
    pd.testing.assert_frame_equal(columns(resumed), columns(reference))
    pd.testing.assert_frame_equal(pd.read_csv(interrupted / job / "loss_history.csv"),
                                  pd.read_csv(clean / job / "loss_history.csv"))
    assert not (interrupted / job / "resume_state.pt").exists()
