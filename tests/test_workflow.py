"""The real workflow on a tiny config: complete run, idempotence, and what reruns after a change."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import experiment_dir, job_counts, job_dir, run_snakemake, write_config

pytestmark = pytest.mark.workflow

RUN = Path("results/experiments/synthetic_cx_cx_polar_bump_frozen")
GRAPH = Path("results/synthetic_cx/graph")
ARTIFACTS = [
    "results/synthetic_cx/exports/neurons.csv", "results/synthetic_cx/exports/roi_counts.csv",
    "results/synthetic_cx/exports/connections.csv", "results/synthetic_cx/exports/provenance.json",
    GRAPH / "pool_assignments.csv", GRAPH / "graph_metadata.json", GRAPH / "adjacency_unsigned.npz",
    GRAPH / "adjacency_signed.npz", GRAPH / "k_estimate.json",
    RUN / "metrics_by_seed.csv", RUN / "metrics_summary.csv", RUN / "loss_history.csv", RUN / "summary.md",
    RUN / "reports/data_validation.md", RUN / "reports/bpu_validation.md", RUN / "reports/control_validation.md",
    RUN / "figures/error_vs_sequence_length.png", RUN / "figures/loss_curve.png",
    RUN / "figures/error_vs_noise.png", RUN / "figures/sample_efficiency.png",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    write_config(workdir)
    run_snakemake(workdir)
    return workdir


def _override(workdir: Path, overrides: dict) -> Path:
    path = workdir / "override.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def test_full_run_produces_every_artifact(finished_run: Path) -> None:
    missing = [str(p) for p in ARTIFACTS if not (finished_run / p).is_file()]
    assert not missing, missing
    for model in ("cx_bpu", "random", "no_recurrence", "mean_predictor"):
        for seed in (0, 1):
            job = job_dir(finished_run, model, seed, 48)
            assert (job / "checkpoint.pt").is_file() and (job / "metrics.csv").is_file()
    by_seed = pd.read_csv(finished_run / RUN / "metrics_by_seed.csv")
    assert set(by_seed["model"]) == {"cx_bpu", "random", "no_recurrence", "mean_predictor"}
    assert set(by_seed["seed"]) == {0, 1}
    for name in ("data_validation", "bpu_validation", "control_validation"):
        text = (finished_run / RUN / "reports" / f"{name}.md").read_text()
        assert "- PASS:" in text and "- FAIL:" not in text, text
    summary = (finished_run / RUN / "summary.md").read_text()
    assert "synthetic_cx" in summary and "SYNTHETIC" in summary and "mean_predictor" in summary


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    proc = run_snakemake(finished_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_figure_option_reruns_only_figures(finished_run: Path) -> None:
    """Only the four figure jobs rerun (plus the run manifest, which records the figures' checksums)."""
    override = _override(finished_run, {"figures": {"dpi": 80}})
    plan = job_counts(run_snakemake(finished_run, "-n", "--configfile", str(override)).stdout)
    assert set(plan) == {"figure", "manifest", "all"}, plan
    assert plan["figure"] == 4
    metrics_mtime = (finished_run / RUN / "metrics_by_seed.csv").stat().st_mtime_ns
    figure = finished_run / RUN / "figures/loss_curve.png"
    figure_mtime = figure.stat().st_mtime_ns
    run_snakemake(finished_run, "--configfile", str(override))
    assert figure.stat().st_mtime_ns != figure_mtime
    assert (finished_run / RUN / "metrics_by_seed.csv").stat().st_mtime_ns == metrics_mtime
    assert "Nothing to be done" in run_snakemake(finished_run, "-n", "--configfile", str(override)).stdout


def test_training_option_reruns_training_and_downstream_only(finished_run: Path) -> None:
    override = _override(finished_run, {"training": {"lr": 0.002}})
    plan = job_counts(run_snakemake(finished_run, "-n", "--configfile", str(override)).stdout)
    upstream = {"synthetic_cx", "pools", "matrices", "k_estimate", "graph_metadata", "control", "task_split",
                "data_validation", "bpu_validation"}
    assert not upstream & set(plan), plan
    # 3 trained models x 2 seeds, plus 2 trained sample-efficiency models x 2 seeds, in a new training
    # variant directory; mean_predictor learns nothing, so its jobs are untouched
    assert plan["train_model"] == 10, plan
    assert experiment_dir(finished_run) == finished_run / RUN
    assert {"aggregate", "summary", "figure", "control_validation"} <= set(plan)
