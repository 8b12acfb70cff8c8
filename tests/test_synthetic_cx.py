"""The embedded synthetic_cx substrate: determinism, schema, ROI consistency, pools from the ordinary rule,
transmitter coverage against the sign policy, and activity that reaches the output pool through the real graph
pipeline under the BPU's ReLU dynamics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import outside_roi_counts
from conftest import support_adjacency as adjacency
from scipy.sparse.csgraph import breadth_first_order, connected_components

from connectome_bpu.depth import estimate_k
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.graph import raw_adjacency
from connectome_bpu.pools import assign_region_pools, pool_indices
from connectome_bpu.signs import (
    apply_signs,
    choose_primary,
    neuron_signs,
    sign_coverage,
)
from connectome_bpu.sources.synthetic_cx import (
    NEURONS_PER_COPY,
    PRIMARY_ROIS,
    generate_synthetic_cx,
    write_synthetic_cx,
)
from connectome_bpu.spectral import scale_to_radius

SENSORY_FAMILIES = ("ring", "ExR", "LNO", "LCNO", "GLNO", "SpsP")
OUTPUT_FAMILIES = ("PFL", "PFL2", "PFL3", "PFR")
ARGS = {"copies": 4, "seed": 0, "background_density": 0.01, "transmitter_coverage": 0.6}
PER_COPY = {"ER_ring": 16, "LNO_velocity": 8, "EPG": 16, "PEN": 16, "PEG": 8, "Delta7": 16, "PFNd": 16,
            "hDeltaB": 8, "FC2": 8, "PFL3": 16}
EXCITATORY = ("ACh",)
TRANSMITTERS = {"ER_ring": ["GABA"], "LNO_velocity": ["ACh"], "Delta7": ["Glu"], "EPG": ["ACh"], "PEN": ["ACh"],
                "PEG": ["ACh"], "PFNd": ["ACh"], "hDeltaB": ["ACh"], "FC2": ["ACh"], "PFL3": ["ACh"]}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    summary = write_synthetic_cx(out, **ARGS)
    return out, summary, load_exports(out)


def outside_fractions(neurons: pd.DataFrame, roi_counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The outside fractions of the region pool rule (docs/method.md#pools), written out from the tables
    (P = EB, PB, FB, NO)."""
    inside = roi_counts[roi_counts["roi"].isin(PRIMARY_ROIS)].groupby("bodyId")[["pre", "post"]].sum()
    inside = inside.reindex(neurons["bodyId"], fill_value=0)
    post, pre = neurons["post"].to_numpy(float), neurons["pre"].to_numpy(float)
    outside_input = np.clip((post - inside["post"].to_numpy()) / np.maximum(post, 1), 0, 1)
    outside_output = np.clip((pre - inside["pre"].to_numpy()) / np.maximum(pre, 1), 0, 1)
    return outside_input, outside_output


def test_size_scales_with_copies():
    sizes = {copies: generate_synthetic_cx(copies=copies, seed=3, background_density=0.0, transmitter_coverage=0.6)
             for copies in (1, 4, 40)}
    for copies, (neurons, _, connections) in sizes.items():
        assert len(neurons) == NEURONS_PER_COPY * copies
        assert neurons["type"].value_counts().to_dict() == {k: v * copies for k, v in PER_COPY.items()}
    assert NEURONS_PER_COPY == sum(PER_COPY.values()) == 128
    # Without background every copy has the same structured edges, plus 16 coupling edges per copy.
    per_copy = len(sizes[1][2])
    assert len(sizes[4][2]) == 4 * (per_copy + 16)
    assert len(sizes[40][2]) == 40 * (per_copy + 16)


def test_background_density_adds_sparse_edges():
    bare = generate_synthetic_cx(**{**ARGS, "background_density": 0.0})[2]
    dense = generate_synthetic_cx(**{**ARGS, "background_density": 0.05})[2]
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
    labels = neurons.groupby("type")["transmitter"].unique().map(set)
    assert all(labels[t] <= set(TRANSMITTERS[t]) | {""} for t in TRANSMITTERS)  # "" = no prediction
    assert summary["labelled_neurons"] == int((neurons["transmitter"] != "").sum())
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
    outside = outside_roi_counts(loaded, PRIMARY_ROIS)
    # Outside the CX: only ring input (BU), LNO self-motion input (LAL) and PFL3 output (LAL).
    assert set(map(tuple, outside[["type", "roi"]].drop_duplicates().to_numpy())) == {
        ("ER_ring", "BU"), ("LNO_velocity", "LAL"), ("PFL3", "LAL")}
    assert (outside.loc[outside["type"].isin(["ER_ring", "LNO_velocity"]), "pre"] == 0).all()
    assert (outside.loc[outside["type"] == "PFL3", "post"] == 0).all()


def test_pool_rule_outcome_from_the_tables(written):
    _, _, loaded = written
    neurons = loaded.neurons
    outside_input, outside_output = outside_fractions(neurons, loaded.roi_counts)
    diff = outside_input - outside_output
    label = (neurons["type"] + " " + neurons["instance"]).str.lower()
    ring = neurons["type"].str.contains("ring").to_numpy()
    lno = neurons["type"].str.contains("LNO").to_numpy()
    pfl = neurons["type"].str.contains("PFL").to_numpy()
    assert ring.sum() == 16 * ARGS["copies"] and pfl.sum() == 16 * ARGS["copies"]
    assert lno.sum() == 8 * ARGS["copies"]
    # Both input families are sensory by the threshold rule, not by the family tie-break.
    for sensory in (ring, lno):
        assert np.all(diff[sensory] >= 0.10) and np.all(outside_input[sensory] >= 0.20)
    assert np.all(-diff[pfl] >= 0.10) and np.all(outside_output[pfl] >= 0.20)
    rest = ~(ring | lno | pfl)
    assert np.all(np.abs(diff[rest]) < 0.10)
    for family in SENSORY_FAMILIES + OUTPUT_FAMILIES:
        assert not label[rest].str.contains(family.lower(), regex=False).any(), family


def test_pools_module_assigns_rings_and_lno_sensory_and_pfl_output(written):
    _, _, loaded = written
    table = assign_region_pools(loaded.neurons, loaded.roi_counts, list(PRIMARY_ROIS))
    types = loaded.neurons["type"].to_numpy()
    assert set(types[table["pool"] == "sensory"]) == {"ER_ring", "LNO_velocity"}
    assert set(types[table["pool"] == "output"]) == {"PFL3"}
    assert (table.loc[np.isin(types, ["ER_ring", "LNO_velocity"]), "pool"] == "sensory").all()
    assert (table.loc[types == "PFL3", "pool"] == "output").all()
    assert set(table.loc[table["pool"] != "internal", "assignment_reason"]) == {"threshold"}


@pytest.mark.parametrize("density", [0.0, 0.01])
def test_every_sensory_neuron_reaches_an_output_and_graph_is_connected(density):
    neurons, _, connections = generate_synthetic_cx(copies=3, seed=5, background_density=density,
                                                    transmitter_coverage=0.6)
    graph = adjacency(neurons, connections)
    sensory = np.flatnonzero(neurons["type"].str.contains("ring|LNO").to_numpy())
    output = neurons["type"].str.contains("PFL").to_numpy()
    for source in sensory:
        reached = breadth_first_order(graph, source, directed=True, return_predecessors=False)
        assert output[reached].any(), f"sensory neuron {source} reaches no PFL neuron"
    assert connected_components(graph, directed=True, connection="weak")[0] == 1


def test_every_lno_reaches_every_same_copy_pfl_through_excitatory_neurons_only():
    """The structural half of the fix: LNO -> PFNd -> PFL3 (2 hops) and LNO -> PFNd -> hDeltaB -> PFL3 (3 hops)
    use cholinergic neurons only, so nothing on the way can be silenced by a negative column."""
    neurons, _, connections = generate_synthetic_cx(copies=2, seed=5, background_density=0.0,
                                                    transmitter_coverage=1.0)
    excitatory = neurons["predictedNt"].isin(EXCITATORY).to_numpy()  # generator output: export column names
    graph = adjacency(neurons, connections)
    graph = sp.diags(excitatory.astype(float)) @ graph  # keep only edges whose presynaptic neuron is excitatory
    types = neurons["type"].to_numpy()
    copy = np.arange(len(neurons)) // NEURONS_PER_COPY
    for source in np.flatnonzero(types == "LNO_velocity"):
        frontier = np.zeros(len(neurons))
        frontier[source] = 1.0
        within = np.zeros(len(neurons), dtype=bool)
        for _ in range(3):
            frontier = (graph.T @ frontier > 0).astype(float)
            within |= frontier > 0
        pfl = (types == "PFL3") & (copy == copy[source])
        assert within[pfl].all(), f"LNO neuron {source} misses a PFL3 of its copy within 3 excitatory hops"


def primary_inputs(directory, signed_policy: str):
    """The primary matrix, sign vector, pools and K exactly as the graph cache builds them (graph.build_matrices
    for the matrix, pools.assign_region_pools and depth.estimate_k for the rest), from the written exports."""
    exports = load_exports(directory)
    body_ids = exports.neurons["bodyId"].to_numpy(np.int64)
    raw = raw_adjacency(exports.connections, body_ids)
    signs = neuron_signs(exports.neurons["transmitter"])
    kind = choose_primary(signed_policy, any_signed=bool(np.any(signs != 0)), coverage=sign_coverage(raw, signs),
                          threshold=0.95)
    matrix, _, _ = scale_to_radius(apply_signs(raw, signs) if kind == "signed" else raw, 0.95)
    pools = assign_region_pools(exports.neurons, exports.roi_counts, ["EB", "PB", "FB", "NO"])
    sensory, _, output = pool_indices(pools)
    k = estimate_k(matrix, sensory, output).K
    return kind, matrix, signs, exports.neurons["type"].to_numpy(), sensory, output, k


def bpu_one_timestep(matrix: sp.csr_matrix, inject_idx: np.ndarray, output_idx: np.ndarray, k: int) -> np.ndarray:
    """The BPU equations (docs/method.md#bpu) for one timestep from h = 0: inject ones into ``inject_idx``
    at the first of K microsteps, h <- ReLU(W h + inject), then K - 1 times h <- ReLU(W h); return h on the
    output neurons."""
    w = matrix.astype(np.float64)
    h = np.zeros(matrix.shape[0])
    inject = np.zeros_like(h)
    inject[inject_idx] = 1.0
    h = np.maximum(w @ h + inject, 0.0)
    for _ in range(k - 1):
        h = np.maximum(w @ h, 0.0)
    return h[output_idx]


@pytest.mark.parametrize("copies, density", [(2, 0.005), (4, 0.002), (4, 0.01)])
def test_sensory_injection_reaches_the_output_pool_signed_and_unsigned(tmp_path, copies, density):
    """Regression: with GABAergic rings as the only sensory neurons, the signed primary matrix left the output
    pool at exactly 0 for every input, so every model predicted its output bias."""
    write_synthetic_cx(tmp_path, copies=copies, seed=0, background_density=density, transmitter_coverage=1.0)
    kind, signed, signs, types, sensory, output, k = primary_inputs(tmp_path, "auto")
    assert kind == "signed"  # every neuron is labelled, so `auto` uses the signed matrix
    assert set(types[sensory]) == {"ER_ring", "LNO_velocity"} and set(types[output]) == {"PFL3"}
    assert 3 <= k <= 8

    # Inhibition is still there: every ring and Delta7 column is negative, and there are such columns.
    csc = signed.tocsc()
    for inhibitory in ("ER_ring", "Delta7"):
        columns = np.flatnonzero(types == inhibitory)
        assert signs[columns].tolist() == [-1] * columns.size
        values = np.concatenate([csc[:, c].data for c in columns])
        assert values.size and (values < 0).all(), inhibitory

    active = bpu_one_timestep(signed, sensory, output, k) > 0
    assert active.mean() > 0.5, f"signed: only {active.mean():.0%} of the output neurons active after K={k}"
    # The mechanism: the rings alone cannot drive a ReLU core without tonic input, the LNO neurons can.
    assert not (bpu_one_timestep(signed, sensory[types[sensory] == "ER_ring"], output, k) > 0).any()
    assert (bpu_one_timestep(signed, sensory[types[sensory] == "LNO_velocity"], output, k) > 0).mean() > 0.5

    kind, unsigned, _, _, sensory_u, output_u, k_u = primary_inputs(tmp_path, "force_unsigned")
    assert kind == "unsigned" and (unsigned.data > 0).all()
    np.testing.assert_array_equal(sensory_u, sensory)
    active = bpu_one_timestep(unsigned, sensory_u, output_u, k_u) > 0
    assert active.mean() > 0.5, f"unsigned: only {active.mean():.0%} of the output neurons active after K={k_u}"


def test_full_coverage_labels_every_neuron_with_its_types_transmitter():
    neurons = generate_synthetic_cx(**{**ARGS, "transmitter_coverage": 1.0})[0]
    assert neurons.groupby("type")["predictedNt"].unique().map(list).to_dict() == TRANSMITTERS


def test_partial_coverage_labels_a_random_subset_and_leaves_auto_unsigned(tmp_path):
    """The positive control must be built like the real runs it controls: unsigned under `auto` at 0.6."""
    summary = write_synthetic_cx(tmp_path, **ARGS)
    exports = load_exports(tmp_path)
    labelled = (exports.neurons["transmitter"] != "").to_numpy()
    assert labelled.sum() == summary["labelled_neurons"] == round(0.6 * len(labelled))
    assert len(set(exports.neurons.loc[labelled, "type"])) == len(PER_COPY)  # random, not whole types
    raw = raw_adjacency(exports.connections, exports.neurons["bodyId"].to_numpy(np.int64))
    signs = neuron_signs(exports.neurons["transmitter"])
    coverage = sign_coverage(raw, signs)
    assert 0.4 < coverage < 0.95
    assert choose_primary("auto", any_signed=True, coverage=coverage, threshold=0.95) == "unsigned"


@pytest.mark.parametrize("kwargs, key", [
    ({"copies": 0}, "copies"), ({"background_density": 0.7}, "background_density"),
    ({"transmitter_coverage": 1.5}, "transmitter_coverage"), ({"transmitter_coverage": -0.1}, "transmitter_coverage"),
    ({"transmitter_coverage": float("nan")}, "transmitter_coverage")])
def test_invalid_parameters(kwargs, key):
    with pytest.raises(BPUInputError, match=rf"synthetic_cx\.{key} "):
        generate_synthetic_cx(**{**ARGS, **kwargs})
