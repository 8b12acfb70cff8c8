"""Every PASS line of the validation reports comes from a check that fails on a broken artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import scipy.sparse as sp

from connectome_bpu import atomic
from connectome_bpu.depth import estimate_k
from connectome_bpu.exports import load_exports
from connectome_bpu.graph import assemble_metadata, build_matrices
from connectome_bpu.pools import assign_region_pools, pool_indices
from connectome_bpu.checks import Check, render_report
from connectome_bpu.reports.validation import (bpu_validation_lines, data_validation_lines, model_surface_lines,
                                               training_comparability_lines)
from connectome_bpu.sources.synthetic_cx import write_synthetic_cx

SPECTRAL = {"power_tolerance": 1e-9, "power_max_iterations": 5000}
TASK = {"name": "cx_polar_bump", "heading_bins": 8, "bump_kappa": 8.0, "home_distance_scale": 25.0,
        "data_seed": 1, "train": {"count": 8, "T": 10}, "val": {"count": 4, "T": 10},
        "test": {"count": 4, "T": [10]}, "test_noise": {"count": 4, "T": 10, "noise": [0.0]},
        "sample_efficiency_fractions": [1.0], "sample_efficiency_models": []}


@pytest.fixture(scope="module")
def graph_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("graph")
    write_synthetic_cx(root / "exports", copies=1, seed=0, background_density=0.0)
    exports = load_exports(root / "exports")
    graph = root / "graph"
    info = build_matrices(root / "exports", graph, connectome="synthetic_cx", rho_target=0.95,
                          signed_policy="auto", sign_coverage_threshold=0.95, spectral_kwargs=SPECTRAL)
    pools = assign_region_pools(exports.neurons, exports.roi_counts, ["EB", "PB", "FB", "NO"])
    atomic.write_csv(graph / "pool_assignments.csv", pools)
    sensory, _, output = pool_indices(pools)
    k = estimate_k(sp.load_npz(graph / "adjacency_unsigned.npz").tocsr(), sensory, output).as_dict()
    atomic.write_json(graph / "k_estimate.json", k)
    atomic.write_json(graph / "graph_metadata.json",
                      assemble_metadata(info, pools, k, primary_rois=["EB", "PB", "FB", "NO"],
                                        whole_brain_pool_fraction=0.05, synthetic=True))
    return root


@pytest.fixture
def cache(graph_template: Path, tmp_path: Path) -> Path:
    shutil.copytree(graph_template, tmp_path / "c")
    return tmp_path / "c"


def _data_lines(root: Path):
    g = root / "graph"
    return data_validation_lines(root / "exports", g / "pool_assignments.csv", g / "graph_metadata.json",
                                 g / "graph_arrays.npz")


def _bpu_lines(root: Path):
    g = root / "graph"
    return bpu_validation_lines(g, root / "exports" / "connections.csv", g / "graph_metadata.json", k_min=3,
                                k_max=8, spectral_kwargs=SPECTRAL)


def _failed(lines) -> list[str]:
    return [line.text for line in lines if isinstance(line, Check) and not line.passed]


def test_intact_cache_passes_everything(cache: Path):
    lines = _data_lines(cache) + _bpu_lines(cache)
    assert not _failed(lines)
    report = render_report("Data Validation", lines)
    assert report.startswith("# Data Validation\n\n- PASS:")


def _edit_json(path: Path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("breakage, expected", [
    ("drop_pool_row", "retained in pool_assignments.csv"),
    ("double_flag", "exhaustive and mutually exclusive"),
    ("shuffle_pools", "ascending bodyId order"),
    ("empty_output_pool", "sensory and output pools are non-empty"),
    ("wrong_N", "graph metadata N matches"),
    ("wrong_edges", "raw edge count in metadata"),
    ("missing_roi_counts", "roi_counts.csv exists"),
])
def test_data_checks_fail_on_broken_artifacts(cache: Path, breakage: str, expected: str):
    pools_path = cache / "graph" / "pool_assignments.csv"
    pools = pd.read_csv(pools_path)
    if breakage == "drop_pool_row":
        pools.iloc[1:].to_csv(pools_path, index=False)
    elif breakage == "double_flag":
        pools.loc[0, ["is_sensory", "is_internal"]] = True
        pools.to_csv(pools_path, index=False)
    elif breakage == "shuffle_pools":
        pools.iloc[::-1].to_csv(pools_path, index=False)
    elif breakage == "empty_output_pool":
        pools.loc[pools["pool"] == "output", ["pool", "is_output", "is_internal"]] = ["internal", False, True]
        pools.to_csv(pools_path, index=False)
    elif breakage == "wrong_N":
        _edit_json(cache / "graph" / "graph_metadata.json", N=1)
    elif breakage == "wrong_edges":
        _edit_json(cache / "graph" / "graph_metadata.json", raw_edge_count=3)
    else:
        (cache / "exports" / "roi_counts.csv").unlink()
    assert any(expected in text for text in _failed(_data_lines(cache))), _failed(_data_lines(cache))


def test_edge_direction_check_fails_on_transposed_matrix(cache: Path):
    path = cache / "graph" / "adjacency_unsigned.npz"
    atomic.save_sparse(path, sp.load_npz(path).T.tocsr())
    assert any("edge direction" in text for text in _failed(_bpu_lines(cache)))


def test_edge_direction_check_cannot_pass_on_empty_sample(cache: Path):
    path = cache / "exports" / "connections.csv"
    pd.read_csv(path).iloc[:0].to_csv(path, index=False)
    assert any("across 0/0 sampled edges" in text for text in _failed(_bpu_lines(cache)))


@pytest.mark.parametrize("change, expected", [
    ({"rho_target": 0.5}, "spectral radius recomputed"),
    ({"primary_matrix": "unsigned"}, "primary matrix choice"),
    ({"estimated_K": 9}, "K is clip"),
    ({"k_raw_median": 5.0}, "K is clip"),
])
def test_bpu_checks_fail_on_inconsistent_metadata(cache: Path, change: dict, expected: str):
    _edit_json(cache / "graph" / "graph_metadata.json", **change)
    assert any(expected in text for text in _failed(_bpu_lines(cache)))


def test_model_surface_checks_pass_and_count_matches(cache: Path):
    g = cache / "graph"
    lines = model_surface_lines(g, g / "pool_assignments.csv", g / "k_estimate.json", task_cfg=TASK,
                                train_mode="observed", dense_max_neurons=1000, model_name="cx_bpu")
    assert not _failed(lines)
    assert "W_rec_values, W_in, b_in, W_out, b_out" in lines[0].text


def test_model_surface_check_fails_when_dense_is_refused(cache: Path):
    g = cache / "graph"
    lines = model_surface_lines(g, g / "pool_assignments.csv", g / "k_estimate.json", task_cfg=TASK,
                                train_mode="dense", dense_max_neurons=10, model_name="cx_bpu")
    assert _failed(lines)


def _metrics(rows: list[dict]) -> pd.DataFrame:
    base = {"split": "test", "T": 10, "noise_std": 0.0, "n_train": 8, "K": 3, "frozen_edge_count": 100,
            "recurrent_parameter_count": 100, "trainable_recurrent_parameter_count": 0,
            "recurrent_train_mode": "frozen"}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_training_comparability_checks_fail_on_mismatches():
    metadata = {"unsigned_edge_count": 100, "estimated_K": 3}
    controls = {("random", 0): Path("seed0.npz")}
    good = _metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 0}])
    assert not _failed(training_comparability_lines(good, metadata, controls))
    for bad, expected in [
        (_metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 0, "K": 4}]), "K = 3"),
        (_metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 0, "frozen_edge_count": 90}]),
         "frozen edge count"),
        (_metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 0, "n_train": 4}]), "same"),
        (_metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 1}]), "validated control file"),
    ]:
        assert any(expected in text for text in _failed(training_comparability_lines(bad, metadata, controls))), expected
