"""The helpers both synthetic generators share: labels, background edges and the ROI bookkeeping that the region
pool rule reads. The generators' own tests cover them in context; these pin the contracts each generator relies on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectome_bpu.sources import EXPORT_FILES
from connectome_bpu.sources.synthetic_common import (
    OUTSIDE_SHARE,
    background_edges,
    edge_roi_counts,
    outside_roi_rows,
    transmitter_labels,
)
from connectome_bpu.sources.synthetic_cx import write_synthetic_cx
from connectome_bpu.sources.synthetic_mb import write_synthetic_mb

ROIS = ("A", "B", "C")


@pytest.mark.parametrize("n, coverage, expected", [(5, 0.5, 3), (10, 0.6, 6), (7, 0.0, 0), (7, 1.0, 7), (3, 0.5, 2)])
def test_labels_keep_a_rounded_half_up_share(n, coverage, expected):
    labels = transmitter_labels(np.array(["ACh"] * n, dtype=object), coverage, seed=4)
    assert (labels == "ACh").sum() == expected and (labels == "").sum() == n - expected


def test_labels_are_deterministic_nested_and_keep_each_neurons_transmitter():
    transmitters = np.array(["ACh", "GABA", "Glu", "DA"] * 25, dtype=object)
    by_coverage = {c: transmitter_labels(transmitters, c, seed=7) for c in (0.2, 0.6, 1.0)}
    np.testing.assert_array_equal(by_coverage[0.6], transmitter_labels(transmitters, 0.6, seed=7))
    assert not np.array_equal(by_coverage[0.6], transmitter_labels(transmitters, 0.6, seed=8))
    np.testing.assert_array_equal(by_coverage[1.0], transmitters)
    # Raising the coverage only adds labels, and a kept label is always the neuron's own transmitter.
    for low, high in ((0.2, 0.6), (0.6, 1.0)):
        kept = by_coverage[low] != ""
        assert (by_coverage[high][kept] == by_coverage[low][kept]).all()
    kept = by_coverage[0.6] != ""
    assert (by_coverage[0.6][kept] == transmitters[kept]).all()


@pytest.mark.parametrize("density", [0.0, 0.05, 0.3])
def test_background_edges_are_distinct_off_diagonal_pairs(density):
    n = 60
    edges = background_edges(np.random.default_rng(0), n, density, ROIS)
    assert list(edges.columns) == ["pre", "post", "roi", "weight"]
    assert not (edges["pre"] == edges["post"]).any()
    assert not edges.duplicated(["pre", "post"]).any()
    assert edges["pre"].between(0, n - 1).all() and edges["post"].between(0, n - 1).all()
    assert set(edges["roi"]) <= set(ROIS) and (edges["weight"] >= 1).all()
    assert abs(len(edges) - density * n * (n - 1)) <= 5 * np.sqrt(density * n * (n - 1)) + 1


def test_outside_rows_put_the_share_of_the_chosen_side_outside():
    rng = np.random.default_rng(1)
    types = np.array(["in", "in", "mid", "out", "out", "in"])
    synapses = pd.DataFrame({"pre": [0, 1, 2, 2, 5, 3], "post": [2, 2, 3, 4, 2, 0],
                             "roi": ["A", "B", "A", "C", "A", "B"], "weight": [4, 1, 9, 30, 2, 7]})
    inside = edge_roi_counts(synapses)
    assert inside.groupby("index")["pre"].sum().to_dict() == {0: 4, 1: 1, 2: 39, 3: 7, 4: 0, 5: 2}
    assert inside.groupby("index")["post"].sum().to_dict() == {0: 7, 1: 0, 2: 7, 3: 9, 4: 30, 5: 0}
    outside = outside_roi_rows(rng, inside, types, (("in", "X", "post"), ("out", "Y", "pre")))
    assert outside["index"].tolist() == [0, 1, 5, 3, 4] and outside["roi"].tolist() == ["X"] * 3 + ["Y"] * 2
    assert (outside.loc[outside["roi"] == "X", "pre"] == 0).all()
    assert (outside.loc[outside["roi"] == "Y", "post"] == 0).all()
    inside_total = inside.groupby("index")[["pre", "post"]].sum().reindex(range(types.size), fill_value=0)
    for side, rows in (("post", outside[outside["roi"] == "X"]), ("pre", outside[outside["roi"] == "Y"])):
        count = rows[side].to_numpy()
        share = count / (count + inside_total.loc[rows["index"], side].to_numpy())
        assert (share >= OUTSIDE_SHARE[0]).all()


GENERATORS = {
    "synthetic_cx": (write_synthetic_cx, {"copies": 2, "seed": 0, "background_density": 0.01}),
    "synthetic_mb": (write_synthetic_mb, {"projection_neurons": 24, "kenyon_cells": 200, "claws": 5,
                                          "compartments": 4, "seed": 0, "background_density": 0.01}),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_coverage_changes_the_labels_only(tmp_path, name):
    """Labels come from their own stream: the wiring and every count are the same at any coverage."""
    write, args = GENERATORS[name]
    partial, full = tmp_path / "partial", tmp_path / "full"
    write(partial, **args, transmitter_coverage=0.6)
    write(full, **args, transmitter_coverage=1.0)
    for table in ("connections.csv", "roi_counts.csv"):
        assert (partial / table).read_bytes() == (full / table).read_bytes(), table
    a, b = pd.read_csv(partial / "neurons.csv", dtype=str), pd.read_csv(full / "neurons.csv", dtype=str)
    pd.testing.assert_frame_equal(a.drop(columns="predictedNt"), b.drop(columns="predictedNt"))
    labelled = a["predictedNt"].notna()
    assert 0 < labelled.sum() < len(a) and b["predictedNt"].notna().all()
    assert (a.loc[labelled, "predictedNt"] == b.loc[labelled, "predictedNt"]).all()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_arguments_give_byte_identical_files(tmp_path, name):
    write, args = GENERATORS[name]
    first, again, other = tmp_path / "first", tmp_path / "again", tmp_path / "other_seed"
    write(first, **args, transmitter_coverage=0.6)
    write(again, **args, transmitter_coverage=0.6)
    write(other, **{**args, "seed": 1}, transmitter_coverage=0.6)
    for table in (*EXPORT_FILES, "provenance.json"):
        assert (again / table).read_bytes() == (first / table).read_bytes(), table
    assert (other / "connections.csv").read_bytes() != (first / "connections.csv").read_bytes()
    assert sorted(p.name for p in again.iterdir()) == sorted((*EXPORT_FILES, "provenance.json"))
