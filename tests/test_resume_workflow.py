"""A training job killed mid-run resumes after its last completed epoch and ends with the same numbers.

The kill is not timed from outside: ``CONNECTOME_BPU_KILL_AFTER_EPOCH`` makes the training process SIGKILL
itself right after the resume state of a known epoch is saved (connectome_bpu/training.py), so the test
always interrupts at the same boundary and can compare the resumed job with a clean one exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import job_dir, run_snakemake, write_config
from connectome_bpu.training import KILL_AFTER_EPOCH_ENV, RESUME_FILE

pytestmark = pytest.mark.workflow
EPOCHS, KILL_AFTER = 6, 2
OVERRIDES = {"models": ["cx_bpu"], "seeds": [0], "training": {"epochs": EPOCHS, "patience": 10},
             "task": {"sample_efficiency_fractions": [1.0]}}


def _without_wallclock(metrics: pd.DataFrame) -> pd.DataFrame:
    """Drop the timing columns: the only ones that may differ between two runs of the same job."""
    timing = [c for c in metrics.columns if c.startswith("wallclock_") or c == "latency_ms_per_sequence"]
    assert timing, "expected a wall-clock latency column in metrics.csv"
    return metrics.drop(columns=timing)


def test_killed_training_job_resumes_with_identical_results(tmp_path: Path, monkeypatch):
    interrupted, clean = tmp_path / "interrupted", tmp_path / "clean"
    for workdir in (interrupted, clean):
        workdir.mkdir()
        write_config(workdir, OVERRIDES)
    job = job_dir(interrupted, "cx_bpu", 0, 48).relative_to(interrupted)
    target = f"{job}/metrics.csv"

    monkeypatch.setenv(KILL_AFTER_EPOCH_ENV, str(KILL_AFTER))
    killed = run_snakemake(interrupted, target, check=False)
    monkeypatch.delenv(KILL_AFTER_EPOCH_ENV)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    assert f"killing the process after saving epoch {KILL_AFTER}" in (interrupted / job / "train.log").read_text()
    assert not (interrupted / job / "metrics.csv").exists()
    state = torch.load(interrupted / job / RESUME_FILE, map_location="cpu", weights_only=False)
    assert state["epoch"] == KILL_AFTER and [h["epoch"] for h in state["history"]] == list(range(1, KILL_AFTER + 1))

    run_snakemake(interrupted, "--unlock")
    run_snakemake(interrupted, target, "--rerun-incomplete")
    assert f"resuming after epoch {KILL_AFTER}" in (interrupted / job / "train.log").read_text()
    assert not (interrupted / job / RESUME_FILE).exists()
    run_snakemake(clean, target)
    assert "resuming" not in (clean / job / "train.log").read_text()

    resumed, reference = (pd.read_csv(root / job / "metrics.csv") for root in (interrupted, clean))
    pd.testing.assert_frame_equal(_without_wallclock(resumed), _without_wallclock(reference), check_exact=True)
    history, reference_history = (pd.read_csv(root / job / "loss_history.csv") for root in (interrupted, clean))
    assert len(history) == EPOCHS
    pd.testing.assert_frame_equal(history, reference_history, check_exact=True)
