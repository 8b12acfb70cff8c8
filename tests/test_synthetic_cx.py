"""The embedded synthetic_cx substrate: determinism, schema, ROI consistency and pools from the ordinary rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.sources import EXPORT_FILES
from connectome_bpu.sources.synthetic_cx import (NEURONS_PER_COPY, PRIMARY_ROIS, generate_synthetic_cx,
                                                 write_synthetic_cx)

SENSORY_FAMILIES = ("ring", "ExR", "LNO", "LCNO", "GLNO", "SpsP")
OUTPUT_FAMILIES = ("PFL", "PFL2", "PFL3", "PFR")
ARGS = {"copies": 4, "seed": 0, "background_density": 0.01}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    summary = write_synthetic_cx(out, **ARGS)
    return out, summary, load_exports(out)


def outside_fractions(neurons: pd.DataFrame, roi_counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """benchmark section 3.1 steps 1-2, written out from the tables (P = EB, PB, FB, NO)."""
    inside = roi_counts[roi_counts["roi"].isin(PRIMARY_ROIS)].groupby("bodyId")[["pre", "post"]].sum()
    inside = inside.reindex(neurons["bodyId"], fill_value=0)
    post, pre = neurons["post"].to_numpy(float), neurons["pre"].to_numpy(float)
    outside_input = np.clip((post - inside["post"].to_numpy()) / np.maximum(post, 1), 0, 1)
    outside_output = np.clip((pre - inside["pre"].to_numpy()) / np.maximum(pre, 1), 0, 1)
    return outside_input, outside_output


def adjacency(neurons: pd.DataFrame, connections: pd.DataFrame) -> sp.csr_matrix:
    """Binary support with rows = pre, columns = post (edge direction pre -> post)."""
    ids = neurons["bodyId"].to_numpy()
    pre = np.searchsorted(ids, connections["bodyId_pre"].to_numpy())
    post = np.searchsorted(ids, connections["bodyId_post"].to_numpy())
    return sp.csr_matrix((np.ones(pre.size), (pre, post)), shape=(ids.size, ids.size))


def test_same_arguments_give_byte_identical_files(tmp_path, written):
    out, _, _ = written
    again = tmp_path / "again"
    write_synthetic_cx(again, **ARGS)
    for name in (*EXPORT_FILES, "provenance.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    other = tmp_path / "other_seed"
    write_synthetic_cx(other, **{**ARGS, "seed": 1})
    assert (other / "connections.csv").read_bytes() != (out / "connections.csv").read_bytes()
    assert sorted(p.name for p in again.iterdir()) == sorted((*EXPORT_FILES, "provenance.json"))


def test_size_scales_with_copies():
    sizes = {copies: generate_synthetic_cx(copies=copies, seed=3, background_density=0.0) for copies in (1, 4, 40)}
    for copies, (neurons, _, connections) in sizes.items():
        assert len(neurons) == NEURONS_PER_COPY * copies
        assert 100 <= NEURONS_PER_COPY <= 150
    # Without background every copy has the same structured edges, plus 16 coupling edges per copy.
    per_copy = len(sizes[1][2])
    assert len(sizes[4][2]) == 4 * (per_copy + 16)
    assert len(sizes[40][2]) == 40 * (per_copy + 16)


def test_background_density_adds_sparse_edges():
    bare = generate_synthetic_cx(copies=4, seed=0, background_density=0.0)[2]
    dense = generate_synthetic_cx(copies=4, seed=0, background_density=0.05)[2]
    n = 4 * NEURONS_PER_COPY
    extra = len(dense) - len(bare)
    assert 0.8 * 0.05 * n * (n - 1) < extra < 1.05 * 0.05 * n * (n - 1)


def test_schema_ids_and_labels(written):
    out, summary, loaded = written
    neurons, roi_counts, connections = loaded.neurons, loaded.roi_counts, loaded.connections
    raw = pd.read_csv(out / "neurons.csv", nrows=0)
    assert list(raw.columns) == ["bodyId", "type", "instance", "pre", "post", "predictedNt"]
    assert list(pd.read_csv(out / "roi_counts.csv", nrows=0).columns) == ["bodyId", "roi", "pre", "post"]
    assert list(pd.read_csv(out / "connections.csv", nrows=0).columns) == ["bodyId_pre", "bodyId_post", "weight"]
    ids = neurons["bodyId"].to_numpy()
    assert ids.dtype == np.int64 and ids.min() > 2**53 and np.all(np.diff(ids) > 0)
    assert np.unique(ids.astype(np.int32)).size < ids.size  # int32 truncation would merge copies
    assert neurons["instance"].str.startswith("synthetic").all()
    assert (connections["weight"] >= 1).all() and (connections["weight"] % 1 == 0).all()
    assert not (connections["bodyId_pre"] == connections["bodyId_post"]).any()
    nt = neurons.groupby("type")["transmitter"].unique().map(list).to_dict()
    assert nt == {"ER_ring": ["GABA"], "Delta7": ["Glu"], "EPG": ["ACh"], "PEN": ["ACh"], "PEG": ["ACh"],
                  "PFNd": ["ACh"], "hDeltaB": ["ACh"], "FC2": ["ACh"], "PFL3": ["ACh"]}
    assert summary["neurons"] == len(neurons) and summary["connections"] == len(connections)
    assert summary["roi_count_rows"] == len(roi_counts)


def test_provenance_says_synthetic(written):
    out, summary, _ = written
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["synthetic"] is True and provenance["source"] == "synthetic_cx"
    assert provenance["parameters"] == ARGS
    assert "SYNTHETIC" in provenance["description"]
    assert provenance["counts"] == summary


def test_roi_counts_are_consistent_with_connections(written):
    _, _, loaded = written
    neurons, roi_counts, connections = loaded.neurons, loaded.roi_counts, loaded.connections
    inside = roi_counts[roi_counts["roi"].isin(PRIMARY_ROIS)].groupby("bodyId")[["pre", "post"]].sum()
    inside = inside.reindex(neurons["bodyId"], fill_value=0)
    out_weight = connections.groupby("bodyId_pre")["weight"].sum().reindex(neurons["bodyId"], fill_value=0)
    in_weight = connections.groupby("bodyId_post")["weight"].sum().reindex(neurons["bodyId"], fill_value=0)
    np.testing.assert_array_equal(inside["pre"].to_numpy(), out_weight.to_numpy())
    np.testing.assert_array_equal(inside["post"].to_numpy(), in_weight.to_numpy())
    totals = roi_counts.groupby("bodyId")[["pre", "post"]].sum().reindex(neurons["bodyId"], fill_value=0)
    np.testing.assert_array_equal(totals["pre"].to_numpy(), neurons["pre"].to_numpy())
    np.testing.assert_array_equal(totals["post"].to_numpy(), neurons["post"].to_numpy())
    # Outside the CX: only ring input (BU) and PFL3 output (LAL).
    outside = roi_counts[~roi_counts["roi"].isin(PRIMARY_ROIS)].merge(neurons[["bodyId", "type"]], on="bodyId")
    assert set(map(tuple, outside[["type", "roi"]].drop_duplicates().to_numpy())) == {("ER_ring", "BU"),
                                                                                       ("PFL3", "LAL")}
    assert (outside.loc[outside["type"] == "ER_ring", "pre"] == 0).all()
    assert (outside.loc[outside["type"] == "PFL3", "post"] == 0).all()


def test_pool_rule_outcome_from_the_tables(written):
    _, _, loaded = written
    neurons = loaded.neurons
    outside_input, outside_output = outside_fractions(neurons, loaded.roi_counts)
    diff = outside_input - outside_output
    label = (neurons["type"] + " " + neurons["instance"]).str.lower()
    ring = neurons["type"].str.contains("ring").to_numpy()
    pfl = neurons["type"].str.contains("PFL").to_numpy()
    assert ring.sum() == 16 * ARGS["copies"] and pfl.sum() == 16 * ARGS["copies"]
    assert np.all(diff[ring] >= 0.10) and np.all(outside_input[ring] >= 0.20)
    assert np.all(-diff[pfl] >= 0.10) and np.all(outside_output[pfl] >= 0.20)
    rest = ~(ring | pfl)
    assert np.all(np.abs(diff[rest]) < 0.10)
    for family in SENSORY_FAMILIES + OUTPUT_FAMILIES:
        assert not label[rest].str.contains(family.lower(), regex=False).any(), family


def test_pools_module_assigns_rings_sensory_and_pfl_output(written):
    pools = pytest.importorskip("connectome_bpu.pools")
    _, _, loaded = written
    table = pools.assign_region_pools(loaded.neurons, loaded.roi_counts, list(PRIMARY_ROIS))
    types = loaded.neurons["type"].to_numpy()
    assert set(types[table["pool"] == "sensory"]) == {"ER_ring"}
    assert set(types[table["pool"] == "output"]) == {"PFL3"}
    assert (table.loc[types == "ER_ring", "pool"] == "sensory").all()
    assert (table.loc[types == "PFL3", "pool"] == "output").all()
    assert set(table.loc[table["pool"] != "internal", "assignment_reason"]) == {"threshold"}


@pytest.mark.parametrize("density", [0.0, 0.01])
def test_every_sensory_neuron_reaches_an_output_and_graph_is_connected(density):
    neurons, _, connections = generate_synthetic_cx(copies=3, seed=5, background_density=density)
    graph = adjacency(neurons, connections)
    ring = np.flatnonzero(neurons["type"].str.contains("ring").to_numpy())
    output = neurons["type"].str.contains("PFL").to_numpy()
    for source in ring:
        reached = breadth_first_order(graph, source, directed=True, return_predecessors=False)
        assert output[reached].any(), f"ring neuron {source} reaches no PFL neuron"
    assert connected_components(graph, directed=True, connection="weak")[0] == 1


@pytest.mark.parametrize("kwargs, key", [({"copies": 0}, "copies"), ({"background_density": 0.7},
                                                                     "background_density")])
def test_invalid_parameters(kwargs, key):
    with pytest.raises(BPUInputError, match=key):
        generate_synthetic_cx(**{**ARGS, **kwargs})
