"""The embedded synthetic_mb substrate: determinism, schema, the mushroom-body wiring, ROI consistency, pools from
the ordinary rule, transmitter coverage against the sign policy, and the real graph builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from conftest import outside_roi_counts
from conftest import support_adjacency as adjacency
from scipy.sparse.csgraph import breadth_first_order

from connectome_bpu.depth import estimate_k
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.graph import build_matrices, load_primary, raw_adjacency
from connectome_bpu.pools import assign_region_pools, pool_indices
from connectome_bpu.signs import choose_primary, neuron_signs, sign_coverage
from connectome_bpu.sources.synthetic_mb import (
    BODY_ID_BASE,
    PRIMARY_ROIS,
    generate_synthetic_mb,
    write_synthetic_mb,
)
from connectome_bpu.spectral import spectral_radius

GRAPH = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())["graph"]
ARGS = {"projection_neurons": 48, "kenyon_cells": 720, "claws": 6, "compartments": 8, "seed": 0,
        "background_density": 0.002, "transmitter_coverage": 0.6}
BARE = {**ARGS, "background_density": 0.0}  # structured edges only, so every edge has a known origin
TRANSMITTERS = {"PN": {"ACh"}, "KC": {"ACh"}, "APL": {"GABA"}, "MBON": {"ACh", "Glu", "GABA"}, "DAN": {"DA"}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_mb")
    summary = write_synthetic_mb(out, **ARGS)
    return out, summary, load_exports(out)


@pytest.fixture(scope="module")
def bare():
    return generate_synthetic_mb(**BARE)


def typed(neurons: pd.DataFrame, connections: pd.DataFrame) -> pd.DataFrame:
    """Connections with the type and compartment (-1: none) of both ends."""
    compartment = pd.to_numeric(neurons["instance"].str.extract(r"_c(\d+)_", expand=False)).fillna(-1).astype(int)
    ends = pd.DataFrame({"bodyId": neurons["bodyId"], "type": neurons["type"], "comp": compartment})
    return (connections
            .merge(ends.add_suffix("_pre"), on="bodyId_pre")
            .merge(ends.add_suffix("_post"), on="bodyId_post"))


def test_schema_ids_and_labels(written):
    out, summary, loaded = written
    neurons, roi_counts, connections = loaded.neurons, loaded.roi_counts, loaded.connections
    assert list(pd.read_csv(out / "neurons.csv", nrows=0).columns) == [
        "bodyId", "type", "instance", "pre", "post", "predictedNt"]
    assert list(pd.read_csv(out / "roi_counts.csv", nrows=0).columns) == ["bodyId", "roi", "pre", "post"]
    assert list(pd.read_csv(out / "connections.csv", nrows=0).columns) == ["bodyId_pre", "bodyId_post", "weight"]
    ids = neurons["bodyId"].to_numpy()
    assert ids.dtype == np.int64 and ids.min() >= BODY_ID_BASE > 2**53 and np.all(np.diff(ids) > 0)
    assert np.unique(ids.astype(np.int32)).size < ids.size  # int32 truncation would merge types
    assert neurons["instance"].str.startswith("synthetic_").all() and neurons["instance"].is_unique
    assert (connections["weight"] >= 1).all() and (connections["weight"] % 1 == 0).all()
    assert not (connections["bodyId_pre"] == connections["bodyId_post"]).any()
    assert not connections.duplicated(["bodyId_pre", "bodyId_post"]).any()
    labels = neurons.groupby("type")["transmitter"].unique().map(set)
    assert all(labels[t] <= TRANSMITTERS[t] | {""} for t in TRANSMITTERS)  # "" = no prediction
    labelled = int((neurons["transmitter"] != "").sum())
    assert labelled == summary["labelled_neurons"] == round(0.6 * len(neurons))
    assert summary["neurons"] == len(neurons) and summary["connections"] == len(connections)
    assert summary["roi_count_rows"] == len(roi_counts)


def test_full_coverage_labels_every_neuron_with_its_types_transmitter():
    neurons = generate_synthetic_mb(**{**BARE, "transmitter_coverage": 1.0})[0]
    assert neurons.groupby("type")["predictedNt"].unique().map(set).to_dict() == TRANSMITTERS
    mbon = neurons[neurons["type"] == "MBON"]
    assert mbon["predictedNt"].value_counts().to_dict() == {"ACh": 8, "Glu": 4, "GABA": 4}  # half ACh
    compartment = mbon["instance"].str.extract(r"_c(\d+)_", expand=False)
    assert (mbon.groupby(compartment)["predictedNt"].nunique() == 1).all()


def test_provenance_says_synthetic(written):
    out, summary, _ = written
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["synthetic"] is True and provenance["source"] == "synthetic_mb"
    assert provenance["parameters"] == ARGS
    assert provenance["description"].startswith("SYNTHETIC")
    assert provenance["counts"] == summary and provenance["primary_rois"] == list(PRIMARY_ROIS)


@pytest.mark.parametrize("pns, kcs, claws, compartments, apl", [(48, 720, 6, 8, 1), (10, 1500, 10, 3, 2),
                                                                (1, 1, 1, 2, 1)])
def test_counts_per_type(pns, kcs, claws, compartments, apl):
    neurons = generate_synthetic_mb(**{**ARGS, "projection_neurons": pns, "kenyon_cells": kcs, "claws": claws,
                                       "compartments": compartments})[0]
    assert neurons["type"].value_counts().to_dict() == {"PN": pns, "KC": kcs, "APL": apl,
                                                        "MBON": 2 * compartments, "DAN": 2 * compartments}


@pytest.mark.parametrize("claws", [1, 6, 48])
def test_every_kc_has_exactly_claws_distinct_pn_inputs(claws):
    neurons, _, connections = generate_synthetic_mb(**{**BARE, "claws": claws})
    edges = typed(neurons, connections)
    per_kc = edges[(edges["type_pre"] == "PN") & (edges["type_post"] == "KC")].groupby("bodyId_post").size()
    kcs = neurons.loc[neurons["type"] == "KC", "bodyId"]
    assert per_kc.reindex(kcs, fill_value=0).eq(claws).all()  # pairs are unique, so the PNs are distinct


def test_apl_and_every_kc_are_connected_both_ways(written):
    _, _, loaded = written
    edges = typed(loaded.neurons, loaded.connections)
    kcs = set(loaded.neurons.loc[loaded.neurons["type"] == "KC", "bodyId"])
    assert set(edges.loc[(edges["type_pre"] == "KC") & (edges["type_post"] == "APL"), "bodyId_pre"]) == kcs
    assert set(edges.loc[(edges["type_pre"] == "APL") & (edges["type_post"] == "KC"), "bodyId_post"]) == kcs


def test_compartment_wiring(bare):
    neurons, _, connections = bare
    edges = typed(neurons, connections)
    between = edges.groupby(["type_pre", "type_post"]).size()
    assert set(between.index) == {("PN", "KC"), ("KC", "KC"), ("KC", "APL"), ("APL", "KC"), ("KC", "MBON"),
                                  ("DAN", "KC"), ("DAN", "MBON"), ("MBON", "DAN")}
    assert between["KC", "KC"] == 3 * 720
    kc_mbon = edges[(edges["type_pre"] == "KC") & (edges["type_post"] == "MBON")]
    # A KC synapses onto both MBONs of a compartment or onto neither, with probability about 0.35.
    assert (kc_mbon.groupby(["bodyId_pre", "comp_post"]).size() == 2).all()
    assert 0.30 < len(kc_mbon) / (2 * 720 * 8) < 0.40
    dan_mbon = edges[(edges["type_pre"] == "DAN") & (edges["type_post"] == "MBON")]
    assert len(dan_mbon) == 4 * 8 and (dan_mbon["comp_pre"] == dan_mbon["comp_post"]).all()
    mbon_dan = edges[(edges["type_pre"] == "MBON") & (edges["type_post"] == "DAN")]
    assert ((mbon_dan["comp_pre"] - mbon_dan["comp_post"]).abs() == 1).all()
    assert len(mbon_dan) == 2 * 2 * 2 * (8 - 1)  # each neighbouring compartment pair, both ways, 2 x 2 cells
    # DANs act at the KC->MBON sites: their KCs are a random half of those that read the compartment.
    readers = kc_mbon.drop_duplicates(["bodyId_pre", "comp_post"]).groupby("comp_post")["bodyId_pre"].apply(set)
    dan_kc = edges[(edges["type_pre"] == "DAN") & (edges["type_post"] == "KC")]
    for (_, comp), targets in dan_kc.groupby(["bodyId_pre", "comp_pre"])["bodyId_post"]:
        assert set(targets) <= readers[comp] and targets.size == (len(readers[comp]) + 1) // 2


def test_roi_counts_are_consistent_with_connections(written):
    _, _, loaded = written
    outside = outside_roi_counts(loaded, PRIMARY_ROIS)
    assert set(map(tuple, outside[["type", "roi"]].drop_duplicates().to_numpy())) == {
        ("PN", "AL"), ("DAN", "SMP"), ("MBON", "SMP")}
    assert (outside.loc[outside["type"].isin(["PN", "DAN"]), "pre"] == 0).all()
    assert (outside.loc[outside["type"] == "MBON", "post"] == 0).all()
    assert outside.groupby("type").size().to_dict() == {"PN": 48, "DAN": 16, "MBON": 16}


def test_pool_rule_finds_pn_and_dan_sensory_mbon_output(written):
    _, _, loaded = written
    table = assign_region_pools(loaded.neurons, loaded.roi_counts, list(PRIMARY_ROIS), **GRAPH["pools"])
    pools = table.groupby("type")["pool"].unique().map(list).to_dict()
    assert pools == {"PN": ["sensory"], "DAN": ["sensory"], "MBON": ["output"], "KC": ["internal"],
                     "APL": ["internal"]}
    assert set(table.loc[table["pool"] != "internal", "assignment_reason"]) == {"threshold"}
    assert table["pool"].value_counts().to_dict() == {"internal": 721, "sensory": 64, "output": 16}


@pytest.mark.parametrize("density", [0.0, 0.002])
def test_every_sensory_neuron_reaches_an_output_neuron(density):
    neurons, _, connections = generate_synthetic_mb(**{**ARGS, "background_density": density})
    graph = adjacency(neurons, connections)
    types = neurons["type"].to_numpy()
    output = types == "MBON"
    for source in np.flatnonzero(np.isin(types, ["PN", "DAN"])):
        reached = breadth_first_order(graph, source, directed=True, return_predecessors=False)
        assert output[reached].any(), f"sensory neuron {source} ({types[source]}) reaches no MBON"


def coverage(tmp_path: Path, transmitter_coverage: float) -> tuple[float, np.ndarray, np.ndarray, sp.csr_matrix]:
    """Weighted sign coverage, signs and types of the written exports, read back as the graph cache reads them."""
    write_synthetic_mb(tmp_path, **{**ARGS, "transmitter_coverage": transmitter_coverage})
    exports = load_exports(tmp_path)
    raw = raw_adjacency(exports.connections, exports.neurons["bodyId"].to_numpy(np.int64))
    signs = neuron_signs(exports.neurons["transmitter"])
    return sign_coverage(raw, signs), signs, exports.neurons["type"].to_numpy(), raw


def test_partial_transmitter_coverage_leaves_the_default_substrate_unsigned(tmp_path):
    value, signs, _, _ = coverage(tmp_path, 0.6)
    assert 0.4 < value < 0.8
    assert choose_primary("auto", any_signed=bool(signs.any()), coverage=value,
                          threshold=GRAPH["sign_coverage_threshold"]) == "unsigned"


def test_full_transmitter_coverage_signs_every_type_but_dopamine(tmp_path):
    value, signs, types, raw = coverage(tmp_path, 1.0)
    assert (signs[types == "DAN"] == 0).all() and (signs[types != "DAN"] != 0).all()
    column_weight = np.asarray(raw.sum(axis=0)).ravel()
    dan_share = column_weight[types == "DAN"].sum() / column_weight.sum()
    assert value == pytest.approx(1.0 - dan_share)  # the signed types are covered completely
    assert choose_primary("auto", any_signed=True, coverage=value,
                          threshold=GRAPH["sign_coverage_threshold"]) == "signed"


def test_zero_transmitter_coverage_labels_nothing():
    neurons = generate_synthetic_mb(**{**BARE, "transmitter_coverage": 0.0})[0]
    assert (neurons["predictedNt"] == "").all()


@pytest.mark.parametrize("transmitter_coverage, primary", [(0.6, "unsigned"), (1.0, "signed")])
def test_graph_builder_scales_the_substrate(tmp_path, transmitter_coverage, primary):
    exports = tmp_path / "exports"
    summary = write_synthetic_mb(exports, **{**ARGS, "transmitter_coverage": transmitter_coverage})
    info = build_matrices(exports, tmp_path / "graph", connectome="synthetic_mb", rho_target=GRAPH["rho_target"],
                          signed_policy=GRAPH["signed_policy"],
                          sign_coverage_threshold=GRAPH["sign_coverage_threshold"],
                          spectral_kwargs=GRAPH["spectral"])
    assert info["N"] == summary["neurons"] and info["primary_matrix"] == primary
    assert info["raw_edge_count"] == info["unsigned_edge_count"] == summary["connections"]
    assert info["self_loop_count"] == 0
    graph = load_primary(tmp_path / "graph")
    assert graph.matrix.shape == (summary["neurons"], summary["neurons"])
    assert graph.matrix.nnz == summary["connections"]
    assert spectral_radius(graph.matrix).radius == pytest.approx(GRAPH["rho_target"], rel=1e-3)

    # The BPU core (docs/method.md#bpu) from h = 0: odour injected into the PNs at the first of K microsteps,
    # then h <- ReLU(W h). PN -> KC -> MBON is cholinergic, so even the signed matrix reaches every MBON.
    loaded = load_exports(exports)
    sensory, _, output = pool_indices(assign_region_pools(loaded.neurons, loaded.roi_counts, list(PRIMARY_ROIS),
                                                          **GRAPH["pools"]))
    k = estimate_k(graph.unsigned, sensory, output).K
    h = (loaded.neurons["type"] == "PN").to_numpy(float)
    for _ in range(k - 1):
        h = np.maximum(graph.matrix @ h, 0.0)
    assert (h[output] > 0).all()


@pytest.mark.parametrize("change, key", [
    ({"projection_neurons": 0}, "projection_neurons"), ({"kenyon_cells": 0}, "kenyon_cells"),
    ({"claws": 0}, "claws"), ({"claws": 49}, "claws"), ({"compartments": 1}, "compartments"),
    ({"seed": -1}, "seed"), ({"kenyon_cells": 7.5}, "kenyon_cells"), ({"background_density": 1.0},
                                                                        "background_density"),
    ({"background_density": -0.1}, "background_density"), ({"transmitter_coverage": 1.5}, "transmitter_coverage"),
    ({"transmitter_coverage": float("nan")}, "transmitter_coverage")])
def test_invalid_parameters_name_the_key(change, key):
    with pytest.raises(BPUInputError, match=rf"synthetic_mb\.{key} "):
        generate_synthetic_mb(**{**ARGS, **change})
