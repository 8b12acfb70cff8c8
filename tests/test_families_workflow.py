"""The task families beyond path integration, run by the real snakemake on tiny settings in one DAG:
MB associative memory on the embedded ``synthetic_mb`` (with every topology control), the landmark task
on ``synthetic_cx``, cross-region transfer between the two (with a size-matched condition), and optic flow on
the embedded ``synthetic_optic`` with its Gaussian-weight controls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import experiment_dir, job_counts, run_snakemake, write_config

pytestmark = pytest.mark.workflow

ASSOCIATIVE = {"name": "mb_associative", "train": {"count": 64}, "val": {"count": 32}, "test": {"count": 32},
               "associative": {"odours": 12, "odour_dim": 12, "per_episode": 3, "reversals": 1}}
CONTROLS = ["random", "degree_shuffle", "weight_shuffle", "no_recurrence"]
# The associative conditions learn within an episode by depressing the synapses onto output neurons (docs/plasticity.md).
PLASTIC = {"plasticity": {"rule": "modulated_depression", "retention": 0.9}}
OPTIC = {"name": "optic_flow", "train": {"count": 64}, "val": {"count": 32}, "test": {"count": 32},
         "optic_flow": {"hex_rings": 2, "frames": 6, "panorama_height": 24, "panorama_width": 64}}
OPTIC_CONTROLS = ["random_sparse"]     # the other Gaussian control is validated in tests/test_controls.py
CONFIG = {
    "synthetic_mb": {"projection_neurons": 12, "kenyon_cells": 80, "claws": 4, "compartments": 2},
    "synthetic_optic": {"hex_rings": 2},
    "models": ["connectome_bpu"],
    "task": {"sample_efficiency_fractions": [1.0]},
    "experiments": [
        {"name": "assoc_mb", "connectome": "synthetic_mb", "task": ASSOCIATIVE, "models": ["connectome_bpu", *CONTROLS],
         "training": PLASTIC},
        {"name": "assoc_cx", "connectome": "synthetic_cx", "task": ASSOCIATIVE, "training": PLASTIC},
        {"name": "assoc_cx_sized", "connectome": "synthetic_cx", "task": ASSOCIATIVE, "training": PLASTIC,
         "size_match": {"like": "assoc_mb", "seed": 0}},
        {"name": "landmark_cx", "connectome": "synthetic_cx", "task": {"name": "cx_landmark_bump"}},
        {"name": "path_mb", "connectome": "synthetic_mb", "task": {"name": "cx_landmark_bump"}},
        {"name": "optic", "connectome": "synthetic_optic", "task": OPTIC, "models": ["connectome_bpu", *OPTIC_CONTROLS],
         "controls": {"dale": False}},
    ],
    "cross_region": [
        {"family": "associative", "matched": "assoc_mb", "mismatched": "assoc_cx", "size_matched": "assoc_cx_sized"},
        {"family": "path", "matched": "landmark_cx", "mismatched": "path_mb"},
    ],
}


# Everything of assoc_mb; tables and summaries of the other conditions (their figures, reports and manifests
# are the same rules as assoc_mb's and the path experiments', already covered elsewhere).
# The optic-flow experiment's own figures, summary and control report (its other figures and reports are the
# rules every family shares).
OPTIC_TARGETS = tuple(f"results/experiments/optic/{name}" for name in (
    "summary.md", "figures/velocity_traces.png", "figures/error_by_preset.png", "reports/control_validation.md"))
TARGETS = ("assoc_mb", *OPTIC_TARGETS, "results/experiments/landmark_cx/summary.md", "results/cross_region/summary.md")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("families")
    write_config(workdir, CONFIG)
    plan = job_counts(run_snakemake(workdir, *TARGETS).stderr)   # the run logs its plan (a dry run's job stats)
    return workdir, plan


def test_the_plan_builds_shared_artifacts_once(run):
    _, plan = run
    # synthetic_cx, synthetic_mb and the size-matched CX each get exports and a graph cache
    assert plan["synthetic_cx"] == plan["synthetic_mb"] == plan["size_matched_exports"] == 1, plan
    assert plan["synthetic_optic"] == 1, plan
    assert plan["matrices"] == 4 and plan["cross_region"] == 1, plan
    assert plan["control"] == (len(CONTROLS) + len(OPTIC_CONTROLS)) * 2, plan      # two seeds each
    # associative: train/val/test; landmark: train/val, 2 test T, 2 noise; optic flow: train/val, 3 test presets
    assert plan["task_split"] == 3 + 6 + 5, plan


def test_associative_family_tables_figures_and_summary(run):
    workdir, _ = run
    results = experiment_dir(workdir, "assoc_mb")
    by_seed = pd.read_csv(results / "metrics_by_seed.csv")
    assert set(by_seed["model"]) == {"connectome_bpu", *CONTROLS, "mean_predictor"}
    assert set(by_seed["seed"]) == {0, 1} and set(by_seed["T"]) == {3 * 3 + 1}
    for column in ("query_accuracy", "initial_probe_accuracy", "reversal_probe_accuracy", "reversed_odour_accuracy"):
        assert by_seed[column].between(0, 1).all(), column
    assert (by_seed.loc[by_seed["model"] == "no_recurrence", "reversal_probe_accuracy"] < 0.8).all()
    paired = pd.read_csv(results / "paired_differences.csv")
    assert set(paired["control"]) >= set(CONTROLS) and "reversal_probe_accuracy" in set(paired["metric"])
    summary = (results / "summary.md").read_text()
    assert "synthetic_mb" in summary and "SYNTHETIC" in summary and "reversal_probe_accuracy" in summary
    assert "the synapses onto output neurons are depressed by a teaching signal" in summary
    for name in ("loss_curve", "accuracy_by_phase", "sample_efficiency"):
        assert (results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    assert not (results / "figures" / "error_vs_noise.png").exists()
    history = pd.read_csv(results / "loss_history.csv")
    assert np.isfinite(history["val_loss"]).all()
    # every BPU job of the condition ran with plasticity, and the validation report checked its surface
    variants = {p.name for p in (workdir / "results/synthetic_mb/runs").glob("mb_associative*/*")}
    assert "untrained" in variants and all(v.startswith("frozen_plastic-") for v in variants - {"untrained"}), variants
    surface = (results / "reports/bpu_validation.md").read_text()
    assert "- PASS: connectome_bpu (frozen) exposes only W_in, b_in, W_out, b_out, plastic.W_mod, plastic.b_mod" in surface


def test_every_control_of_every_seed_is_matched_in_spectral_radius(run):
    workdir, _ = run
    lines = (experiment_dir(workdir, "assoc_mb") / "reports/control_validation.md").read_text().splitlines()
    assert not [line for line in lines if line.startswith("- FAIL")], lines
    for control in CONTROLS:
        for seed in (0, 1):
            assert any(line.startswith(f"- PASS: {control} seed {seed} spectral radius is matched to rho_target")
                       for line in lines), (control, seed)


def test_optic_flow_family_tables_figures_and_controls(run):
    workdir, _ = run
    results = experiment_dir(workdir, "optic")
    by_seed = pd.read_csv(results / "metrics_by_seed.csv")
    assert set(by_seed["model"]) == {"connectome_bpu", *OPTIC_CONTROLS, "mean_predictor"}
    assert set(by_seed["split"]) == {"test_easy", "test", "test_hard"}     # medium is the training preset
    splits = {path.name for path in (workdir / "results/tasks").glob("optic_flow_*/*.npz")}
    assert splits == {"train_T6_medium.npz", "val_T6_medium.npz", "test_T6_easy.npz", "test_T6_medium.npz",
                      "test_T6_hard.npz"}
    for column in ("overall_rmse", "yaw_rmse", "forward_rmse", "lateral_rmse", "translation_rmse"):
        assert (by_seed[column] > 0).all() and np.isfinite(by_seed[column]).all(), column
    assert np.isfinite(by_seed[["yaw_r2", "forward_r2", "lateral_r2"]].to_numpy()).all()
    paired = pd.read_csv(results / "paired_differences.csv")
    assert set(paired["control"]) >= set(OPTIC_CONTROLS) and "overall_rmse" in set(paired["metric"])
    summary = (results / "summary.md").read_text()
    assert "synthetic_optic" in summary and "overall_rmse" in summary.split("## Detail")[0]
    for name in ("velocity_traces", "error_by_preset"):
        assert (results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    lines = (results / "reports/control_validation.md").read_text().splitlines()
    assert not [line for line in lines if line.startswith("- FAIL")], lines
    for control in OPTIC_CONTROLS:
        for seed in (0, 1):
            assert any(line.startswith(f"- PASS: {control} seed {seed} has fresh zero-mean Gaussian weights")
                       for line in lines), (control, seed)
    examples = np.load(next((workdir / "results/synthetic_optic/runs").rglob("connectome_bpu/seed0/*/test_examples.npz")))
    assert examples["output__test_medium"].shape == examples["target__test_medium"].shape == (4, 6, 3)
    assert set(examples.files) == {f"{kind}__test_{preset}" for kind in ("output", "target")
                                   for preset in ("easy", "medium", "hard")}


def test_landmark_task_scores_its_uncued_steps(run):
    workdir, _ = run
    by_seed = pd.read_csv(experiment_dir(workdir, "landmark_cx") / "metrics_by_seed.csv")
    assert set(by_seed["task"]) == {"cx_landmark_bump"}
    for column in ("home_bearing_angular_error", "uncued_home_bearing_angular_error", "uncued_home_distance_rmse"):
        assert np.isfinite(by_seed[column]).all(), column
    summary = (experiment_dir(workdir, "landmark_cx") / "summary.md").read_text()
    assert "home_bearing_angular_error" in summary.split("## Detail")[0]   # the headline metric of the task


def test_cross_region_pairs_conditions_over_seeds(run):
    workdir, _ = run
    out = workdir / "results" / "cross_region"
    success = pd.read_csv(out / "cross_region_success_by_seed.csv")
    assert len(success) == (3 + 2) * 2
    assert set(success.loc[success["family"] == "associative", "metric"]) == {"reversal_probe_accuracy"}
    assert set(success.loc[success["family"] == "path", "metric"]) == {"home_bearing_angular_error"}
    advantage = pd.read_csv(out / "cross_region_advantage.csv")
    assert set(advantage["comparison"]) == {"matched - mismatched", "matched - size_matched"}
    assert (advantage["n_pairs"] == 2).all() and advantage["sign_flip_p"].between(0.5, 1).all()
    summary = (out / "summary.md").read_text()
    assert "| associative | matched - size_matched |" in summary and "## Size matching" in summary
    assert (out / "figures" / "cross_region_task_success.png").read_bytes()[:4] == b"\x89PNG"
    # the size-matched substrate has exactly the matched MB substrate's size
    sized = json.loads((workdir / "results/synthetic_cx-sized-synthetic_mb-s0/graph/matrix_info.json").read_text())
    target = json.loads((workdir / "results/synthetic_mb/graph/matrix_info.json").read_text())
    assert (sized["N"], sized["unsigned_edge_count"]) == (target["N"], target["unsigned_edge_count"])
    assert "size_match" in json.loads((workdir / "results/synthetic_cx-sized-synthetic_mb-s0/exports/provenance.json")
                                      .read_text())


def test_a_second_run_does_nothing(run):
    workdir, _ = run
    assert "Nothing to be done" in run_snakemake(workdir, "-n", *TARGETS).stdout
