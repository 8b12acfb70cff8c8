"""The real workflow on a tiny config with the default model set: complete run, idempotence, and what reruns
after a change.

The run trains every model a user gets by default (config.yaml's ``default`` preset with its Dale-preserving
controls and both GRUs) at tiny sizes, so every model and every control goes through Snakemake, the
aggregation and ``control_validation.md`` at least once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import (DEFAULT_MODELS_OVERRIDES, experiment_dir, job_counts, job_dir, only_experiment,
                      run_snakemake, write_config)
from connectome_bpu.figure_names import PATH_FIGURES
from connectome_bpu.model_names import is_trained
from connectome_bpu.tasks import split_plan

pytestmark = pytest.mark.workflow

RUN = Path("results/experiments/synthetic_cx_cx_polar_bump_frozen")
GRAPH = Path("results/synthetic_cx/graph")
ARTIFACTS = [
    "results/synthetic_cx/exports/neurons.csv", "results/synthetic_cx/exports/roi_counts.csv",
    "results/synthetic_cx/exports/connections.csv", "results/synthetic_cx/exports/provenance.json",
    GRAPH / "pool_assignments.csv", GRAPH / "graph_metadata.json", GRAPH / "adjacency_unsigned.npz",
    GRAPH / "adjacency_signed.npz", GRAPH / "k_estimate.json",
    RUN / "metrics_by_seed.csv", RUN / "metrics_summary.csv", RUN / "loss_history.csv", RUN / "summary.md",
    RUN / "paired_differences.csv", RUN / "sample_efficiency_by_seed.csv", RUN / "run_manifest.json",
    RUN / "reports/data_validation.md", RUN / "reports/bpu_validation.md", RUN / "reports/control_validation.md",
    *(RUN / f"figures/{name}.png" for name in PATH_FIGURES),
]
# The default models on the fully labelled synthetic_cx (signed under signed_policy auto: Dale controls on).
DEFAULT_MODELS = {"cx_bpu", "no_recurrence", "random", "degree_shuffle", "weight_shuffle", "random_dale",
                  "degree_shuffle_dale", "weight_shuffle_dale", "gru", "gru_matched", "mean_predictor"}
STORED_CONTROLS = {"random", "degree_shuffle", "weight_shuffle", "random_dale", "degree_shuffle_dale",
                   "weight_shuffle_dale"}
CONTROLS = STORED_CONTROLS | {"no_recurrence"}
# default_rng(offset + seed): the original benchmark's offsets (Dale variants share their base's).
RNG_OFFSETS = {"random": 10000, "degree_shuffle": 20000, "weight_shuffle": 30000}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    write_config(workdir, DEFAULT_MODELS_OVERRIDES)
    run_snakemake(workdir)
    return workdir


@pytest.fixture(scope="module")
def experiment(finished_run: Path):
    return only_experiment(finished_run)


def _override(workdir: Path, overrides: dict) -> Path:
    path = workdir / "override.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def test_the_run_uses_the_default_model_set(experiment) -> None:
    assert set(experiment.models) == DEFAULT_MODELS, experiment.models
    assert set(experiment.controls) == CONTROLS, experiment.controls
    assert experiment.seeds == (0, 1)


def test_full_run_produces_every_artifact(finished_run: Path, experiment) -> None:
    missing = [str(p) for p in ARTIFACTS if not (finished_run / p).is_file()]
    assert not missing, missing
    for model, seed, n_train in experiment.jobs():
        job = job_dir(finished_run, model, seed, n_train)
        assert (job / "checkpoint.pt").is_file() and (job / "metrics.csv").is_file(), job

    evaluations = [s for s in split_plan(experiment.task) if s.role in ("test", "test_noise")]
    by_seed = pd.read_csv(finished_run / RUN / "metrics_by_seed.csv")
    rows = by_seed.groupby(["model", "seed"]).size()
    assert set(rows.index) == {(m, s) for m in experiment.models for s in experiment.seeds}, rows
    assert (rows == len(evaluations)).all(), rows
    assert set(by_seed["n_train"]) == {experiment.n_train}

    curves = pd.read_csv(finished_run / RUN / "sample_efficiency_by_seed.csv")
    sizes = set(experiment.se_counts) | {experiment.n_train}
    assert set(experiment.se_models) == {"cx_bpu", "random", "weight_shuffle", "mean_predictor"}
    assert set(curves.groupby(["model", "seed", "n_train"]).size().index) == {
        (m, s, n) for m in experiment.se_models for s in experiment.seeds for n in sizes}

    for name in ("data_validation", "bpu_validation", "control_validation"):
        text = (finished_run / RUN / "reports" / f"{name}.md").read_text()
        assert "- PASS:" in text and "- FAIL:" not in text, text
    summary = (finished_run / RUN / "summary.md").read_text()
    assert "synthetic_cx" in summary and "SYNTHETIC" in summary
    for model in set(experiment.models) - {"cx_bpu"}:   # one headline row per model compared with cx_bpu
        assert f"\n| `{model}` |" in summary, model


def _expected_control_checks(control: str, seed: int) -> list[str]:
    """The start of every PASS line control_validation.md must hold for one control file."""
    label = f"{control} seed {seed}"
    base = control.removesuffix("_dale")
    rng = None if control == "no_recurrence" else RNG_OFFSETS[base] + seed
    lines = [f"{label}: file seed{seed}.npz holds {control} seed {seed} (rng seed {rng}; expected {rng})",
             f"{label} was built from the current primary matrix",
             f"{label} spectral radius is matched to rho_target 0.95"]
    if control == "no_recurrence":
        return lines + [f"{label} marker matches N", f"{label} marker matches edge count",
                        f"{label} marker matches self-loop count", f"{label} marker matches the weight multiset"]
    lines += [f"{label} stored invariants (counts, degrees, column signs, checksums) agree with the stored matrix",
              f"{label} matches N", f"{label} matches edge count", f"{label} matches self-loop count",
              f"{label} preserves the primary's signed weight multiset"]
    if base == "degree_shuffle":
        lines += [f"{label} preserves in-degree exactly (0 neurons differ)",
                  f"{label} preserves out-degree exactly (0 neurons differ)"]
    if base == "weight_shuffle":
        lines.append(f"{label} keeps the primary's support (same edges, row and column indices)")
    if control.endswith("_dale"):
        lines.append(f"{label} keeps one sign per presynaptic neuron, equal to its label (0 columns violate)")
    return lines


def test_control_validation_checks_every_control_of_every_seed(finished_run: Path, experiment) -> None:
    text = (finished_run / RUN / "reports/control_validation.md").read_text()
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("- FAIL") or "WARNING" in line], text
    seeds = ", ".join(map(str, experiment.seeds))
    assert f"- Checked controls: {', '.join(sorted(CONTROLS))}; seeds: {seeds}; primary matrix: signed" in lines
    passed = [line.removeprefix("- PASS: ") for line in lines if line.startswith("- PASS: ")]
    missing = [expected for control in sorted(CONTROLS) for seed in experiment.seeds
               for expected in _expected_control_checks(control, seed)
               if not any(line.startswith(expected) for line in passed)]
    assert not missing, "\n".join(missing) + "\n\n" + text
    stored = len(STORED_CONTROLS) * len(experiment.seeds)
    evaluations = [s for s in split_plan(experiment.task) if s.role in ("test", "test_noise")]
    for expected in ("all BPU models and controls use K = ", "all frozen BPU controls match the frozen edge count",
                     (f"every model and seed was evaluated on the same {len(evaluations)} splits "
                      f"after training on {experiment.n_train} sequences"),
                     f"every trained control seed ({stored}) has a validated control file above"):
        assert any(line.startswith(expected) for line in passed), (expected, text)


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    proc = run_snakemake(finished_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_figure_option_reruns_only_figures(finished_run: Path) -> None:
    """Only the figure jobs rerun (plus the run manifest, which records the figures' checksums)."""
    override = _override(finished_run, {"figures": {"dpi": 80}})
    metrics_mtime = (finished_run / RUN / "metrics_by_seed.csv").stat().st_mtime_ns
    figure = finished_run / RUN / "figures/loss_curve.png"
    figure_mtime = figure.stat().st_mtime_ns
    plan = job_counts(run_snakemake(finished_run, "--configfile", str(override)).stderr)   # the run logs its plan
    assert plan == {"figure": len(PATH_FIGURES), "manifest": 1, "all": 1}, plan
    assert figure.stat().st_mtime_ns != figure_mtime
    assert (finished_run / RUN / "metrics_by_seed.csv").stat().st_mtime_ns == metrics_mtime
    assert "Nothing to be done" in run_snakemake(finished_run, "-n", "--configfile", str(override)).stdout


def test_training_option_reruns_training_and_downstream_only(finished_run: Path, experiment) -> None:
    override = _override(finished_run, {"training": {"lr": 0.002}})
    plan = job_counts(run_snakemake(finished_run, "-n", "--configfile", str(override)).stdout)
    upstream = {"synthetic_cx", "pools", "matrices", "k_estimate", "graph_metadata", "control", "task_split",
                "data_validation", "bpu_validation"}
    assert not upstream & set(plan), plan
    # every trained job (full size and sample-efficiency subsets) in a new training variant directory;
    # mean_predictor learns nothing, so its jobs are untouched
    trained = (sum(is_trained(m) for m in experiment.models) * len(experiment.seeds)
               + sum(is_trained(m) for m in experiment.se_models) * len(experiment.seeds) * len(experiment.se_counts))
    assert plan["train_model"] == trained, plan
    assert experiment_dir(finished_run) == finished_run / RUN
    assert {"aggregate", "summary", "figure", "control_validation"} <= set(plan)
