"""A training job killed mid-run resumes after its last completed epoch and ends with the same numbers.

The kill is not timed from outside: ``CONNECTOME_BPU_KILL_AFTER_EPOCH`` makes the training process SIGKILL
itself right after the resume state of a known epoch is saved (connectome_bpu/training.py), so the test
always interrupts at the same boundary and can compare the resumed job with a clean one exactly.

To stay cheap, the clean run and the interrupted one share one work directory (and so the same graph cache
and task splits): the clean job runs first, its outputs are kept aside, its directory is deleted, and the
same job is then run again, killed and resumed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import job_dir, run_snakemake, write_config
from connectome_bpu.training import KILL_AFTER_EPOCH_ENV, RESUME_FILE

pytestmark = pytest.mark.workflow
EPOCHS, KILL_AFTER = 6, 2
OVERRIDES = {"models": ["cx_bpu"], "seeds": [0], "training": {"epochs": EPOCHS, "patience": 10},
             "task": {"sample_efficiency_fractions": [1.0], "test": {"T": [20]}, "test_noise": {"noise": [0.1]}}}


def _without_wallclock(metrics: pd.DataFrame) -> pd.DataFrame:
    """Drop the timing columns: the only ones that may differ between two runs of the same job."""
    timing = [c for c in metrics.columns if c.startswith("wallclock_") or c == "latency_ms_per_sequence"]
    assert timing, "expected a wall-clock latency column in metrics.csv"
    return metrics.drop(columns=timing)


def test_killed_training_job_resumes_with_identical_results(tmp_path: Path, monkeypatch):
    workdir = tmp_path
    write_config(workdir, OVERRIDES)
    job = job_dir(workdir, "cx_bpu", 0, 48).relative_to(workdir)
    target = f"{job}/metrics.csv"

    # The clean reference: the job (and everything it needs) run without interruption.
    run_snakemake(workdir, target)
    assert "resuming" not in (workdir / job / "train.log").read_text()
    reference, reference_history = (pd.read_csv(workdir / job / name) for name in ("metrics.csv", "loss_history.csv"))
    shutil.rmtree(workdir / job)

    monkeypatch.setenv(KILL_AFTER_EPOCH_ENV, str(KILL_AFTER))
    killed = run_snakemake(workdir, target, check=False)
    monkeypatch.delenv(KILL_AFTER_EPOCH_ENV)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    assert f"killing the process after saving epoch {KILL_AFTER}" in (workdir / job / "train.log").read_text()
    assert not (workdir / job / "metrics.csv").exists()
    state = torch.load(workdir / job / RESUME_FILE, map_location="cpu", weights_only=False)
    assert state["epoch"] == KILL_AFTER and [h["epoch"] for h in state["history"]] == list(range(1, KILL_AFTER + 1))

    run_snakemake(workdir, "--unlock")
    run_snakemake(workdir, target, "--rerun-incomplete")
    assert f"resuming after epoch {KILL_AFTER}" in (workdir / job / "train.log").read_text()
    assert not (workdir / job / RESUME_FILE).exists()

    resumed, history = (pd.read_csv(workdir / job / name) for name in ("metrics.csv", "loss_history.csv"))
    pd.testing.assert_frame_equal(_without_wallclock(resumed), _without_wallclock(reference), check_exact=True)
    assert len(history) == EPOCHS
    pd.testing.assert_frame_equal(history, reference_history, check_exact=True)
