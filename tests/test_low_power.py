"""The low-power proxy counts what the BPU does (K, batch, adapters), refuses missing graphs and keeps latency
per model and split."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import write_tiny_graph_cache

from connectome_bpu import atomic
from connectome_bpu.errors import BPUInputError
from connectome_bpu.low_power import (
    footprint,
    graph_proxy,
    latency_by_model,
    low_power_report_markdown,
    measure_latency,
    sequence_ops,
)
from connectome_bpu.tasks import task_spec

TASK = {"name": "cx_polar_bump", "heading_bins": 8, "bump_kappa": 8.0, "home_distance_scale": 25.0,
        "data_seed": 1, "train": {"count": 8, "T": 6}, "val": {"count": 4, "T": 6},
        "test": {"count": 4, "T": [6]}, "test_noise": {"count": 4, "T": 6, "noise": [0.0]},
        "sample_efficiency_fractions": [1.0], "sample_efficiency_models": []}


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    """A tiny graph cache built by the pipeline's own functions (synthetic CX, signed primary)."""
    return write_tiny_graph_cache(tmp_path_factory.mktemp("low_power"))


@pytest.mark.parametrize("N, E, density_pct, ops, memory, dense32, csr32", [
    (11_690, 1_277_773, "0.935", "106.95", ("53.23", "35.43", "21.23"), 546_624_400, 10_268_948),   # hemibrain MB
    (7_349, 511_930, "0.948", "105.50", ("52.37", "34.83", "20.86"), 216_031_204, 4_124_840),       # hemibrain CX
])
def test_footprint_worked_examples(N, E, density_pct, ops, memory, dense32, csr32):
    rows = {bits: footprint(N, E, bits) for bits in (32, 16, 8)}
    assert f"{100 * rows[32]['density']:.3f}" == density_pct
    assert f"{rows[32]['ops_reduction']:.2f}" == ops
    assert tuple(f"{rows[b]['memory_reduction']:.2f}" for b in (32, 16, 8)) == memory
    assert rows[32]["dense_recurrent_bytes"] == dense32
    assert rows[32]["sparse_csr_bytes"] == csr32
    assert rows[16]["value_bytes"] == 2 and footprint(N, E, 4)["value_bytes"] == 1


def test_footprint_random_20x20():
    matrix = sp.random(20, 20, density=0.05, format="csr", random_state=np.random.default_rng(0))
    assert matrix.nnz == 20
    row = footprint(20, matrix.nnz, 32)
    assert row["dense_recurrent_ops_per_step"] == 400
    assert row["sparse_recurrent_ops_per_step"] == matrix.nnz
    assert row["ops_reduction"] > 1 and row["memory_reduction"] > 1


def test_footprint_edge_cases():
    assert math.isnan(footprint(5, 0, 8)["ops_reduction"])
    for bad in [(0, 0, 32), (5, 26, 32), (5, -1, 32), (5, 3, 0)]:
        with pytest.raises(BPUInputError):
            footprint(*bad)


def test_sequence_ops_hand_example():
    ops = sequence_ops(N=10, E=20, K=3, T=5, batch=4, d_in=2, n_sensory=3, n_output=2, d_out=1)
    assert ops["recurrent_products_per_sequence"] == 15
    assert ops["dense_recurrent_macs_per_sequence"] == 5 * 3 * 100
    assert ops["sparse_recurrent_macs_per_sequence"] == 5 * 3 * 20
    assert ops["input_adapter_macs_per_sequence"] == 5 * 3 * 2     # T x n_sensory x d_in, once per timestep
    assert ops["readout_macs_per_sequence"] == 5 * 2 * 1          # T x n_output x d_out
    assert ops["dense_macs_per_sequence"] == 1540 and ops["sparse_macs_per_sequence"] == 340
    assert ops["dense_macs_per_batch"] == 4 * 1540 and ops["sparse_macs_per_batch"] == 4 * 340
    assert ops["sequence_ops_reduction"] == pytest.approx(1540 / 340)
    # Adapters are shared by both cores, so the whole-sequence reduction is below the per-step N^2/E = 5.
    assert ops["sequence_ops_reduction"] < footprint(10, 20, 32)["ops_reduction"]


def test_graph_proxy_reads_the_primary_matrix(graph_dir):
    metadata = atomic.read_json(graph_dir / "graph_metadata.json")
    primary = sp.load_npz(graph_dir / f"adjacency_{metadata['primary_matrix']}.npz")
    rows = graph_proxy(graph_dir, [32, 16, 8], task_dims=(5, 3), T=7, batch=2)
    assert [r["bitwidth"] for r in rows] == [32, 16, 8]
    row = rows[0]
    assert (row["N"], row["recurrent_edges"]) == (primary.shape[0], primary.nnz)
    assert row["primary_matrix"] == "signed" and row["K"] == metadata["estimated_K"]
    assert (row["n_sensory"], row["n_output"]) == (metadata["pool_counts"]["sensory"],
                                                   metadata["pool_counts"]["output"])
    expected = sequence_ops(primary.shape[0], primary.nnz, metadata["estimated_K"], 7, 2, 5,
                            row["n_sensory"], row["n_output"], 3)
    assert {key: row[key] for key in expected} == expected


def test_graph_proxy_refuses_missing_inputs(graph_dir, tmp_path):
    missing = tmp_path / "no_such_graph"
    with pytest.raises(BPUInputError, match="no_such_graph.*does not exist"):
        graph_proxy(missing, [32], task_dims=(5, 3), T=7, batch=2)
    copy = tmp_path / "copy"
    shutil.copytree(graph_dir, copy)
    (copy / "graph_arrays.npz").unlink()
    with pytest.raises(BPUInputError, match="missing graph_arrays.npz"):
        graph_proxy(copy, [32], task_dims=(5, 3), T=7, batch=2)
    (copy / "graph_metadata.json").unlink()
    with pytest.raises(BPUInputError, match="lacks graph_metadata.json"):
        graph_proxy(copy, [32], task_dims=(5, 3), T=7, batch=2)


def test_latency_by_model_keeps_models_and_splits_apart():
    rows = [{"model": model, "seed": seed, "split": split, "T": 20, "noise_std": 0.0, "n_train": 48,
             "wallclock_latency_ms_per_sequence": latency}
            for model, base in (("cx_bpu", 1.0), ("gru", 10.0))
            for split, offset in (("test", 0.0), ("test_noise", 100.0))
            for seed, latency in ((0, base + offset), (1, base + offset + 2.0))]
    rows.append({"model": "mean_predictor", "seed": 0, "split": "test", "T": 20, "noise_std": 0.0, "n_train": 48,
                 "wallclock_latency_ms_per_sequence": float("nan")})
    table = latency_by_model(pd.DataFrame(rows)).set_index(["model", "split"])
    assert len(table) == 4 and "mean_predictor" not in table.index.get_level_values("model")
    assert table.loc[("cx_bpu", "test"), "latency_ms_per_sequence_mean"] == 2.0
    assert table.loc[("gru", "test_noise"), "latency_ms_per_sequence_min"] == 110.0
    assert table.loc[("gru", "test_noise"), "latency_ms_per_sequence_max"] == 112.0
    assert (table["n_seeds"] == 2).all()


def test_latency_by_model_names_the_missing_column():
    frame = pd.DataFrame({"model": ["cx_bpu"], "seed": [0], "split": ["test"], "T": [20], "noise_std": [0.0],
                          "n_train": [48]})
    with pytest.raises(BPUInputError, match="metrics_by_seed.csv.*wallclock_latency_ms_per_sequence"):
        latency_by_model(frame, "results/experiments/x/metrics_by_seed.csv")


def test_measure_latency_on_a_tiny_graph(graph_dir):
    threads_before = torch.get_num_threads()
    first = measure_latency(graph_dir, TASK, batch=3, repeats=3)
    second = measure_latency(graph_dir, TASK, batch=3, repeats=3)
    assert math.isfinite(first["ms_per_sequence"]) and first["ms_per_sequence"] > 0
    assert first["runtime"] == "sparse" and first["threads"] == 1
    spec = task_spec(TASK)
    assert (first["batch"], first["T"], first["d_in"], first["d_out"]) == (3, 6, spec.input_dim, spec.output_dim)
    assert first["K"] == atomic.read_json(graph_dir / "graph_metadata.json")["estimated_K"]
    timing = {"ms_per_batch_median", "ms_per_batch_min", "ms_per_sequence"}
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
    assert torch.get_num_threads() == threads_before


def test_measure_latency_refuses_an_incomplete_graph_dir(graph_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(graph_dir, copy)
    (copy / "pool_assignments.csv").unlink()
    with pytest.raises(BPUInputError, match="lacks pool_assignments.csv"):
        measure_latency(copy, TASK, batch=2, repeats=1)


def test_report_has_every_section(graph_dir):
    rows = graph_proxy(graph_dir, [32, 8], task_dims=(5, 3), T=7, batch=2)
    latency = latency_by_model(pd.DataFrame([{"model": "cx_bpu", "seed": 0, "split": "test", "T": 20,
                                              "noise_std": 0.0, "n_train": 48,
                                              "wallclock_latency_ms_per_sequence": 1.5}]))
    measured = [measure_latency(graph_dir, TASK, batch=2, repeats=1)]
    text = low_power_report_markdown(rows, latency, measured)
    assert text.startswith("# Low-power sparse deployment proxy")
    for heading in ("memory and MACs per recurrent step", "MACs per sequence", "per model and split",
                    "measured on this CPU", "Interpretation"):
        assert heading in text
    assert "not a hardware energy measurement" in text and "joules per sequence" in text
    assert text.count("| synthetic_cx |") == 2 + 1 + 1      # two bitwidths, one sequence row, one measured row
