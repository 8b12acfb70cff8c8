"""``connectome_bpu.sources.flywire``: release files, normalisation (``docs/method.md``) and the export step.

A tiny release is generated: a few hundred 18-digit root ids (neighbours included, so any pass through
float64 would merge them) saved as uint64 like the published file, and a Feather connections table with
MB and non-MB neuropils, transmitter columns, rows that repeat a pair over several neuropils, rows with
ids outside the proofread list, a few rows without a neuropil, and neurons built to sit on either side
of the 0.70 transmitter rule.
The streaming implementation is checked against a plain pandas transcription of the specification.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest
import scipy.sparse as sp
import yaml
from scipy.sparse.csgraph import breadth_first_order

from connectome_bpu.config import validate_config
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.pools import assign_region_pools
from connectome_bpu.sources.download import md5_file
from connectome_bpu.sources.flywire import (CAP_RULE, MB_NEUROPILS, PINNED, TRANSMITTERS, cap_selection,
                                            connections_name, fetch_release, file_url, load_root_ids,
                                            normalise_mushroom_body, normalise_optic_lobe, normalise_whole,
                                            release_files, root_ids_name, write_flywire_exports)

BASE = 720575940600000000   # FlyWire root ids are ~7.2e17, far beyond 2**53
NEUROPILS = ["MB_CA_L", "MB_ML_R", "MB_VL_L", "AL_L", "LH_R", "FB", "EB", "ME_R", "LO_L", "LOP_R"]
OPTIC = ("ME_R", "LO_L", "LOP_R")   # the optic neuropils of the tiny release (the default list has more)
RELEASE = "test"


def _ids() -> np.ndarray:
    rng = np.random.default_rng(1)
    offsets = np.unique(rng.integers(0, 10**9, 280))
    # Neighbouring ids differ only beyond float64 precision.
    return np.unique(np.concatenate([offsets, [5, 6, 7, 10**9 + 1, 10**9 + 2]])).astype(np.int64) + BASE


# Neurons whose outgoing rows are fixed, to pin down the transmitter vote (index into _ids()).
VOTES = {
    0: ("DA winner, 0.9 confident", [(10, {"da_avg": 0.9, "ach_avg": 0.1})], ""),
    1: ("ACh/GABA tie", [(10, {"ach_avg": 0.5, "gaba_avg": 0.5})], ""),
    2: ("exactly 0.70", [(7, {"ach_avg": 1.0}), (3, {"gaba_avg": 1.0})], "ACh"),
    3: ("0.69", [(69, {"ach_avg": 1.0}), (31, {"glut_avg": 1.0})], ""),
    4: ("GABA 0.8", [(5, {"gaba_avg": 0.8, "glut_avg": 0.2})], "GABA"),
    5: ("Glu over two rows", [(4, {"glut_avg": 0.75, "ach_avg": 0.25}), (4, {"glut_avg": 0.75, "ser_avg": 0.25})],
        "Glu"),
    6: ("serotonin 1.0", [(3, {"ser_avg": 1.0})], ""),
}
UNKNOWN_PRE_ROWS, UNKNOWN_POST_ROWS, UNKNOWN_BOTH_ROWS = 6, 4, 2
NO_NEUROPIL_ROWS = 5


def _connections(ids: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    free = ids[len(VOTES):]                      # neurons with random outgoing rows
    pairs = 900
    pre = rng.choice(free, pairs)
    post = rng.choice(ids, pairs)
    repeats = rng.integers(1, 4, pairs)          # 1-3 neuropils per pair
    pre, post = np.repeat(pre, repeats), np.repeat(post, repeats)
    neuropil = np.concatenate([rng.choice(NEUROPILS, r, replace=False) for r in repeats])
    syn = rng.integers(1, 30, pre.size)
    probs = rng.dirichlet(np.ones(len(TRANSMITTERS)), pre.size)
    frame = pd.DataFrame({"pre_pt_root_id": pre, "post_pt_root_id": post, "neuropil": neuropil, "syn_count": syn})
    for k, column in enumerate(TRANSMITTERS):
        frame[column] = probs[:, k]

    fixed = []
    for index, (_, rows, _) in VOTES.items():
        for j, (count, nt) in enumerate(rows):
            fixed.append({"pre_pt_root_id": ids[index], "post_pt_root_id": ids[-1 - j],
                          "neuropil": NEUROPILS[(index + j) % len(NEUROPILS)], "syn_count": count,
                          **{column: nt.get(column, 0.0) for column in TRANSMITTERS}})
    unknown = ids.max() + 1000 + np.arange(UNKNOWN_PRE_ROWS + UNKNOWN_POST_ROWS + UNKNOWN_BOTH_ROWS)
    bad = []
    for i, value in enumerate(unknown):
        kind = "pre" if i < UNKNOWN_PRE_ROWS else "post" if i < UNKNOWN_PRE_ROWS + UNKNOWN_POST_ROWS else "both"
        bad.append({"pre_pt_root_id": value if kind in ("pre", "both") else ids[50],
                    "post_pt_root_id": value if kind in ("post", "both") else ids[60],
                    "neuropil": "MB_CA_L", "syn_count": 100,
                    **{column: 1.0 / len(TRANSMITTERS) for column in TRANSMITTERS}})
    frame = pd.concat([frame, pd.DataFrame(fixed), pd.DataFrame(bad)], ignore_index=True)
    frame.loc[frame.index[:NO_NEUROPIL_ROWS], "neuropil"] = None   # count for their neurons, in no ROI
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    frame["syn_count"] = frame["syn_count"].astype(np.int32)
    for column in TRANSMITTERS:
        frame[column] = frame[column].astype(np.float32)
    return frame


def _write_release(folder, *, id_type=pa.int64(), drop_columns=()) -> tuple:
    ids = _ids()
    shuffled = np.random.default_rng(4).permutation(ids).astype(np.uint64)   # as numpy may load the real file
    roots = folder / root_ids_name(RELEASE)
    np.save(roots, shuffled)
    frame = _connections(ids)
    table = pa.Table.from_pandas(frame.drop(columns=list(drop_columns)), preserve_index=False)
    for column in ("pre_pt_root_id", "post_pt_root_id"):
        if column in table.column_names:
            table = table.set_column(table.column_names.index(column), column, table.column(column).cast(id_type))
    connections = folder / connections_name(RELEASE)
    feather.write_feather(table, connections, chunksize=256)   # several stored batches
    return roots, connections, ids, frame


@pytest.fixture
def release(tmp_path):
    return _write_release(tmp_path)


# --- the specification, transcribed plainly into pandas ---------------------------------------------------

def specification(ids: np.ndarray, frame: pd.DataFrame, *, neuropils=None, nt_confidence: float = 0.70):
    """The whole brain, or with ``neuropils`` the neurons with a synapse in them (MB, optic lobe)."""
    ids = np.sort(ids)
    pre_col, post_col = "pre_pt_root_id", "post_pt_root_id"
    rows = frame[frame[pre_col].isin(ids) & frame[post_col].isin(ids)]
    if neuropils is not None:
        edge_rows = rows[rows["neuropil"].isin(neuropils)]
        body = np.unique(np.concatenate([edge_rows[pre_col].to_numpy(), edge_rows[post_col].to_numpy()]))
        stat_rows = rows[rows[pre_col].isin(body) | rows[post_col].isin(body)]
    else:
        edge_rows, body, stat_rows = rows, ids, rows

    neurons = pd.DataFrame({"bodyId": body})
    neurons["pre"] = neurons["bodyId"].map(stat_rows.groupby(pre_col)["syn_count"].sum()).fillna(0.0).astype(float)
    neurons["post"] = neurons["bodyId"].map(stat_rows.groupby(post_col)["syn_count"].sum()).fillna(0.0).astype(float)
    scores = pd.DataFrame({label: stat_rows["syn_count"] * stat_rows[column].astype(float)
                           for column, label in TRANSMITTERS.items()})
    scores = scores.groupby(stat_rows[pre_col].to_numpy()).sum()
    winner = scores.idxmax(axis=1)
    confidence = scores.max(axis=1) / scores.sum(axis=1)
    label = winner.where((confidence >= nt_confidence) & winner.isin(["ACh", "GABA", "Glu"]), "")
    neurons["predictedNt"] = neurons["bodyId"].map(label).fillna("")

    pre_roi = stat_rows.groupby([pre_col, "neuropil"])["syn_count"].sum().rename("pre")
    post_roi = stat_rows.groupby([post_col, "neuropil"])["syn_count"].sum().rename("post")
    pre_roi.index.names = post_roi.index.names = ["bodyId", "roi"]
    roi = pd.concat([pre_roi, post_roi], axis=1).fillna(0.0).reset_index().sort_values(["bodyId", "roi"])

    connections = (edge_rows.groupby([pre_col, post_col])["syn_count"].sum().reset_index()
                   .rename(columns={pre_col: "bodyId_pre", post_col: "bodyId_post", "syn_count": "weight"}))
    connections["weight"] = connections["weight"].astype(np.float32)
    return neurons, roi.reset_index(drop=True), connections.sort_values(["bodyId_pre", "bodyId_post"])


def _assert_matches(result, expected) -> None:
    neurons, roi, connections, _ = result
    ref_neurons, ref_roi, ref_connections = expected
    assert neurons["bodyId"].dtype == np.int64 and connections["bodyId_pre"].dtype == np.int64
    assert np.array_equal(neurons["bodyId"].to_numpy(), ref_neurons["bodyId"].to_numpy())
    assert (neurons["type"] == "").all() and (neurons["instance"] == "").all()
    np.testing.assert_allclose(neurons["pre"].to_numpy(), ref_neurons["pre"].to_numpy())
    np.testing.assert_allclose(neurons["post"].to_numpy(), ref_neurons["post"].to_numpy())
    assert neurons["predictedNt"].tolist() == ref_neurons["predictedNt"].tolist()
    assert list(neurons.columns) == ["bodyId", "type", "instance", "pre", "post", "predictedNt"]

    assert list(roi.columns) == ["bodyId", "roi", "pre", "post"]
    assert np.array_equal(roi["bodyId"].to_numpy(), ref_roi["bodyId"].to_numpy())
    assert roi["roi"].tolist() == ref_roi["roi"].tolist()
    np.testing.assert_allclose(roi[["pre", "post"]].to_numpy(), ref_roi[["pre", "post"]].to_numpy())

    assert list(connections.columns) == ["bodyId_pre", "bodyId_post", "weight"]
    assert connections["weight"].dtype == np.float32
    for column in ("bodyId_pre", "bodyId_post", "weight"):
        assert np.array_equal(connections[column].to_numpy(), ref_connections[column].to_numpy()), column


# --- normalisation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_rows", [97, 2_000_000])
def test_whole_brain_matches_the_specification(release, batch_rows):
    roots, connections, ids, frame = release
    result = normalise_whole(roots, connections, batch_rows=batch_rows)
    _assert_matches(result, specification(ids, frame))
    neurons = result[0].set_index("bodyId")
    assert len(neurons) == ids.size   # every proofread id, with or without rows
    for index, (what, _, label) in VOTES.items():
        assert neurons.loc[ids[index], "predictedNt"] == label, what


@pytest.mark.parametrize("batch_rows", [97, 2_000_000])
def test_mushroom_body_matches_the_specification(release, batch_rows):
    roots, connections, ids, frame = release
    result = normalise_mushroom_body(roots, connections, batch_rows=batch_rows)
    _assert_matches(result, specification(ids, frame, neuropils=MB_NEUROPILS))
    neurons, roi, edges, stats = result
    assert neurons["bodyId"].size < ids.size
    assert set(edges["bodyId_pre"]) | set(edges["bodyId_post"]) == set(neurons["bodyId"])
    assert not set(roi["bodyId"]) <= set(neurons["bodyId"])   # partner neurons are listed too
    known = frame[frame["pre_pt_root_id"].isin(ids) & frame["post_pt_root_id"].isin(ids)]
    assert stats["mb_source_rows"] == int(known["neuropil"].isin(MB_NEUROPILS).sum())
    assert stats["mb_neuropils_absent"] == [name for name in MB_NEUROPILS if name not in NEUROPILS]


def test_unknown_ids_are_dropped_and_counted(release):
    roots, connections, ids, frame = release
    *_, stats = normalise_whole(roots, connections, batch_rows=97)
    dropped = UNKNOWN_PRE_ROWS + UNKNOWN_POST_ROWS + UNKNOWN_BOTH_ROWS
    assert stats["source_rows"] == len(frame)
    assert stats["rows_dropped_unknown_id"] == dropped
    assert stats["rows_used"] == len(frame) - dropped
    assert stats["rows_with_unknown_pre"] == UNKNOWN_PRE_ROWS + UNKNOWN_BOTH_ROWS
    assert stats["rows_with_unknown_post"] == UNKNOWN_POST_ROWS + UNKNOWN_BOTH_ROWS
    assert stats["synapses_dropped_unknown_id"] == 100.0 * dropped
    unknown = {int(ids.max()) + 1000 + i for i in range(dropped)}
    assert len(set(stats["unknown_id_examples"])) == 5 and set(stats["unknown_id_examples"]) <= unknown
    assert stats["rows_without_neuropil"] == NO_NEUROPIL_ROWS
    assert stats["predicted_nt_counts"]["ACh"] >= 1 and sum(stats["predicted_nt_counts"].values()) == ids.size
    *_, mb_stats = normalise_mushroom_body(roots, connections)
    assert mb_stats["rows_dropped_unknown_id"] == dropped   # counted once, not once per pass


def test_uint64_id_columns_give_the_same_result(tmp_path):
    roots, connections, ids, frame = _write_release(tmp_path, id_type=pa.uint64())
    _assert_matches(normalise_whole(roots, connections), specification(ids, frame))


def test_confidence_threshold_is_configurable(release):
    roots, connections, ids, _ = release
    neurons = normalise_whole(roots, connections, nt_confidence=0.65)[0].set_index("bodyId")
    assert neurons.loc[ids[3], "predictedNt"] == "ACh"   # 0.69 now passes
    assert neurons.loc[ids[0], "predictedNt"] == ""      # DA never becomes a label


def test_root_ids_above_2_53_survive_exactly(release):
    roots, _, ids, _ = release
    loaded = load_root_ids(roots)
    assert np.load(roots).dtype == np.uint64
    assert loaded.dtype == np.int64
    assert loaded.tolist() == sorted(int(i) for i in ids)
    assert BASE + 5 in loaded.tolist() and BASE + 6 in loaded.tolist()   # float64 would merge these


def test_root_ids_that_do_not_fit_int64_are_refused(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.array([BASE, 2**63 + 5], dtype=np.uint64))
    with pytest.raises(BPUInputError, match=r"do not fit int64.*9223372036854775813"):
        load_root_ids(path)
    np.save(path, np.array([1.5, 2.5]))
    with pytest.raises(BPUInputError, match="integer"):
        load_root_ids(path)


@pytest.mark.parametrize("column", ["pre_pt_root_id", "post_pt_root_id", "syn_count"])
def test_missing_mandatory_column_is_named(tmp_path, column):
    roots, connections, _, _ = _write_release(tmp_path, drop_columns=[column])
    with pytest.raises(BPUInputError, match=rf"{connections.name}.*'{column}'"):
        normalise_whole(roots, connections)


def test_mushroom_body_needs_the_neuropil_column(tmp_path):
    roots, connections, _, _ = _write_release(tmp_path, drop_columns=["neuropil"])
    with pytest.raises(BPUInputError, match="no 'neuropil' column"):
        normalise_mushroom_body(roots, connections)
    neurons, roi, _, stats = normalise_whole(roots, connections)   # whole brain falls back to one ROI row
    assert (roi["roi"] == "whole_brain").all() and len(roi) == len(neurons) and not stats["neuropil_column"]


def test_not_a_feather_file(tmp_path, release):
    roots, *_ = release
    junk = tmp_path / "junk.feather"
    junk.write_bytes(b"not arrow at all")
    with pytest.raises(BPUInputError, match="junk.feather.*Arrow/Feather"):
        normalise_whole(roots, junk)


# --- optic lobe: the neuropil selection, the neuron cap, bad input ------------------------------------------

@pytest.mark.parametrize("batch_rows", [97, 2_000_000])
def test_optic_lobe_matches_the_specification(release, batch_rows):
    roots, connections, ids, frame = release
    result = normalise_optic_lobe(roots, connections, neuropils=OPTIC, batch_rows=batch_rows)
    _assert_matches(result, specification(ids, frame, neuropils=OPTIC))
    stats = result[3]
    known = frame[frame["pre_pt_root_id"].isin(ids) & frame["post_pt_root_id"].isin(ids)]
    assert stats["connectome"] == "flywire_optic_lobe" and stats["optic_neuropils"] == list(OPTIC)
    assert stats["optic_source_rows"] == int(known["neuropil"].isin(OPTIC).sum()) and stats["max_neurons"] is None
    assert stats["aggregated_edge_count"] == len(result[2]) and "cap" not in stats


def test_optic_neuropil_without_rows_names_the_config_key(release):
    """A release other than 783 is not checked at start-up; its export step names what has no row."""
    roots, connections, *_ = release
    with pytest.raises(BPUInputError, match=r"'flywire\.optic_lobe\.neuropils' names neuropil\(s\) \['LA_L', 'LA_R', "
                                            r"'ME_L', 'LO_R', 'LOP_L', 'AME_L', 'AME_R'\] that have no row.*'ME_R'"):
        normalise_optic_lobe(roots, connections)


def _region(edges: list[tuple[int, int, float]], n: int, *, inputs=(), outputs=()) -> tuple:
    """Export tables of a toy region (ROIs ME_R, LO_R): ``edges`` (pre, post, weight) by neuron index lie
    inside it; each neuron in ``inputs`` also gets 100 input synapses outside it, each in ``outputs`` 100
    output synapses outside, so the region pool rule calls them sensory and output."""
    ids = BASE + 1000 * np.arange(n, dtype=np.int64) + 7
    pre, post, weight = (np.array(column) for column in zip(*edges))
    pre_in = np.bincount(pre, weights=weight, minlength=n)
    post_in = np.bincount(post, weights=weight, minlength=n)
    pre_out, post_out = np.zeros(n), np.zeros(n)
    pre_out[list(outputs)] = 100.0
    post_out[list(inputs)] = 100.0
    neurons = pd.DataFrame({"bodyId": ids, "type": "", "instance": "", "pre": pre_in + pre_out,
                            "post": post_in + post_out, "predictedNt": ""})
    halves = np.arange(n) % 2 == 0   # inside synapses go to ME_R for even, LO_R for odd indices
    roi_counts = pd.concat([
        pd.DataFrame({"bodyId": ids, "roi": np.where(halves, "ME_R", "LO_R"), "pre": pre_in, "post": post_in}),
        pd.DataFrame({"bodyId": ids, "roi": "SMP_R", "pre": pre_out, "post": post_out})])
    roi_counts = roi_counts[(roi_counts["pre"] + roi_counts["post"]) > 0]
    roi_counts = roi_counts.sort_values(["bodyId", "roi"]).reset_index(drop=True)
    connections = pd.DataFrame({"bodyId_pre": ids[pre], "bodyId_post": ids[post], "weight": weight.astype(np.float32)})
    return neurons, roi_counts, connections.sort_values(["bodyId_pre", "bodyId_post"]).reset_index(drop=True)


def _decoy_edges() -> list[tuple[int, int, float]]:
    """38 neurons. 0-9, the lowest ids, are the most active ones but a clique no input reaches. Inputs 10
    and 11 each drive four layer-A neurons (12-15, 16-19), layer A drives layer B (20-27), B drives
    output 28 or 29 and, weakly, the internal neurons 30-37; the outputs feed back onto layer A."""
    edges = [(i, j, 50.0) for i in range(10) for j in range(10) if i != j]
    edges += [(10, 12 + k, 5.0) for k in range(4)] + [(11, 16 + k, 5.0) for k in range(4)]
    edges += [(12 + k, 20 + k, 3.0) for k in range(8)] + [(20 + k, 30 + k, 1.0) for k in range(8)]
    edges += [(20 + k, 28 if k < 4 else 29, 2.0) for k in range(8)] + [(28, 12, 1.0), (29, 16, 1.0)]
    return edges


DECOY = {"n": 38, "inputs": (10, 11), "outputs": (28, 29)}
ROIS = ("ME_R", "LO_R")


def _reachable_from_inputs(neurons: pd.DataFrame, connections: pd.DataFrame, inputs: np.ndarray) -> np.ndarray:
    """Ids of the neurons reachable from ``inputs`` along the (directed) edges of a table pair."""
    ids = neurons["bodyId"].to_numpy(np.int64)
    pre = np.searchsorted(ids, connections["bodyId_pre"].to_numpy(np.int64))
    post = np.searchsorted(ids, connections["bodyId_post"].to_numpy(np.int64))
    graph = sp.csr_matrix((np.ones(pre.size), (pre, post)), shape=(ids.size, ids.size))
    seen = [breadth_first_order(graph, int(i), directed=True, return_predecessors=False)
            for i in np.searchsorted(ids, inputs)]
    return ids[np.unique(np.concatenate(seen))]


def test_cap_grows_from_the_inputs_and_never_keeps_the_leading_block():
    tables = _region(_decoy_edges(), **DECOY)
    neurons, roi_counts, connections, record = cap_selection(*tables, primary_rois=ROIS, max_neurons=12)
    ids = tables[0]["bodyId"].to_numpy(np.int64)
    kept = neurons["bodyId"].to_numpy(np.int64)
    # One seed (round(12 * 2 / 38) = 1): inputs 10 and 11 drive equally, the lower root id wins. Then rounds
    # 12-15, 20-23 and, of output 28 (9 synapses) and 30-33 (1 each), the three most active, ties by id.
    assert kept.tolist() == ids[[10, 12, 13, 14, 15, 20, 21, 22, 23, 28, 30, 31]].tolist()
    assert not set(kept) & set(ids[:10])   # none of the busiest neurons, which lead in id order
    assert kept.tolist() != ids[:12].tolist()
    assert record["rule"] == CAP_RULE and record["rounds"] == 3
    assert (record["neurons_before"], record["neurons_after"], record["max_neurons"]) == (38, 12, 12)
    assert (record["input_neurons_before"], record["input_neurons_seeded"], record["input_neurons_kept"]) == (2, 1, 1)
    assert (record["output_neurons_before"], record["output_neurons_kept"]) == (2, 1)
    assert record["kept_ids_sha256"] == hashlib.sha256(kept.astype("<i8").tobytes()).hexdigest()
    assert record["edges_after"] == len(connections) < record["edges_before"] == len(tables[2])
    # Connected: every kept neuron is reachable from the kept input along kept synapses; rows are consistent.
    assert set(_reachable_from_inputs(neurons, connections, ids[[10]])) == set(kept)
    assert set(connections["bodyId_pre"]) | set(connections["bodyId_post"]) <= set(kept)
    assert set(roi_counts["bodyId"]) == set(kept) and record["roi_count_rows_after"] == len(roi_counts)
    # The kept input is what the region pool rule calls sensory in the capped tables too.
    pools = assign_region_pools(neurons, roi_counts, list(ROIS))
    assert pools.loc[pools["is_sensory"], "bodyId"].tolist() == [ids[10]]
    assert pools.loc[pools["is_output"], "bodyId"].tolist() == [ids[28]]


def test_cap_is_deterministic_and_independent_of_row_order():
    neurons, roi_counts, connections = _region(_decoy_edges(), **DECOY)
    first = cap_selection(neurons, roi_counts, connections, primary_rois=ROIS, max_neurons=30)
    shuffled = connections.sample(frac=1.0, random_state=5).reset_index(drop=True)
    again = cap_selection(neurons, roi_counts.sample(frac=1.0, random_state=6), shuffled, primary_rois=ROIS,
                          max_neurons=30)
    assert first[3] == again[3] and first[3]["input_neurons_seeded"] == 2   # round(30 * 2 / 38) = 2
    pd.testing.assert_frame_equal(first[0], again[0])
    # Growth stops when nothing new is reachable: the unreachable clique is never used to fill the cap.
    assert first[3]["neurons_after"] == 28 and not set(first[0]["bodyId"]) & set(neurons["bodyId"][:10])


def test_cap_refusals_name_the_key_the_value_and_what_was_expected():
    tables = _region(_decoy_edges(), **DECOY)
    key = r"'flywire\.optic_lobe\.max_neurons' is"
    with pytest.raises(BPUInputError, match=rf"{key} 39, but .* has only 38 neurons; expected at most 38"):
        cap_selection(*tables, primary_rois=ROIS, max_neurons=39)
    # 2 inputs in 38 neurons: a cap keeps the same share, round(9 * 2 / 38) = 0; 10 keeps one.
    with pytest.raises(BPUInputError, match=rf"{key} 9: .* 2 input neuron\(s\) among 38 .* expected at least 10"):
        cap_selection(*tables, primary_rois=ROIS, max_neurons=9)
    with pytest.raises(BPUInputError, match=rf"{key} 10, but none of the 38 selected neurons is an input neuron"):
        cap_selection(*_region(_decoy_edges(), 38, outputs=(28, 29)), primary_rois=ROIS, max_neurons=10)
    silent = [edge for edge in _decoy_edges() if edge[0] not in (10, 11)]   # the inputs drive nobody
    with pytest.raises(BPUInputError, match=rf"{key} 20: none of the 1 input neuron\(s\) it keeps has a kept"):
        cap_selection(*_region(silent, **DECOY), primary_rois=ROIS, max_neurons=20)
    unreachable_output = _region(_decoy_edges(), 39, inputs=(10, 11), outputs=(38,))   # 38: no synapse inside
    with pytest.raises(BPUInputError, match=rf"{key} 20: the 14 neurons it keeps include none of the selection's 1 "
                                            r"output neuron"):
        cap_selection(*unreachable_output, primary_rois=ROIS, max_neurons=20)


def test_capped_optic_exports_are_byte_identical_and_valid(tmp_path):
    served, paths, overrides = _cached_release(tmp_path)
    settings = {"neuropils": OPTIC, "max_neurons": 60}
    written = []
    for run in ("a", "b"):
        out = tmp_path / run
        summary = write_flywire_exports(out, "flywire_optic_lobe", paths, release=RELEASE, overrides=overrides,
                                        optic_lobe=settings)
        written.append({name: (out / name).read_bytes() for name in ("neurons.csv", "roi_counts.csv",
                                                                     "connections.csv")})
    assert written[0] == written[1]
    exports = load_exports(tmp_path / "a")   # the strict reader accepts the capped tables
    provenance = json.loads((tmp_path / "a" / "provenance.json").read_text())
    stats, cap = provenance["normalisation"], provenance["normalisation"]["cap"]
    assert provenance["connectome"] == "flywire_optic_lobe" and provenance["primary_rois"] == list(OPTIC)
    assert stats["max_neurons"] == 60 and stats["optic_neuropils"] == list(OPTIC) and stats["optic_source_rows"] > 0
    assert cap["neurons_after"] == len(exports.neurons) == summary["neurons"] <= 60 < cap["neurons_before"]
    assert stats["aggregated_edge_count"] == cap["edges_after"] == len(exports.connections)
    assert cap["input_neurons_kept"] >= 1 and cap["output_neurons_kept"] >= 1
    kept = exports.neurons["bodyId"].to_numpy(np.int64)
    assert cap["kept_ids_sha256"] == hashlib.sha256(kept.astype("<i8").tobytes()).hexdigest()
    with pytest.raises(BPUInputError, match=rf"max_neurons' is 100000, but .* has only {cap['neurons_before']} "
                                            rf"neurons"):
        write_flywire_exports(tmp_path / "c", "flywire_optic_lobe", paths, release=RELEASE, overrides=overrides,
                              optic_lobe={**settings, "max_neurons": 100_000})


def _config(**optic_lobe) -> dict:
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    config["flywire"]["optic_lobe"].update(optic_lobe)
    return config


def test_optic_lobe_config_is_checked_at_start_up():
    assert validate_config(_config())["flywire"]["optic_lobe"]["neuropils"][0] == "LA_L"
    with pytest.raises(BPUInputError, match=r"'flywire\.optic_lobe\.neuropils' has value \['ME_L', 'LOBULA_R'\]; "
                                            r"\['LOBULA_R'\] are not neuropils of FlyWire release 783.*LO_R"):
        validate_config(_config(neuropils=["ME_L", "LOBULA_R"]))
    with pytest.raises(BPUInputError, match=r"'flywire\.optic_lobe\.max_neurons' has value 0; allowed: a number >= 1"):
        validate_config(_config(max_neurons=0))
    other = _config(neuropils=["LOBULA_R"])
    other["flywire"].update(release="900", files={})   # another release's names are checked by its export step
    validate_config(other)


# --- release files ---------------------------------------------------------------------------------------

def test_release_files_are_pinned_for_783():
    files = release_files("783")
    assert list(files) == ["proofread_root_ids_783.npy", "proofread_connections_783.feather"]
    assert files["proofread_connections_783.feather"].size == 852_022_274
    assert files == PINNED["783"]
    assert file_url("https://zenodo.org/records/10676866/files/", "proofread_root_ids_783.npy") == \
        "https://zenodo.org/records/10676866/files/proofread_root_ids_783.npy?download=1"


def test_unknown_release_needs_explicit_checksums():
    with pytest.raises(BPUInputError, match=r"'900'.*no pinned checksums.*flywire\.files"):
        release_files("900")
    given = {"proofread_root_ids_900.npy": {"bytes": 10, "md5": "a" * 32}}
    with pytest.raises(BPUInputError, match="proofread_connections_900.feather"):
        release_files("900", given)
    given["proofread_connections_900.feather"] = {"bytes": 20, "md5": "B" * 32}
    files = release_files("900", given)
    assert files["proofread_connections_900.feather"].md5 == "b" * 32
    with pytest.raises(BPUInputError, match="md5"):
        release_files("900", {**given, "proofread_root_ids_900.npy": {"bytes": 10, "md5": "xyz"}})
    with pytest.raises(BPUInputError, match="not a file of FlyWire release 900"):
        release_files("900", {**given, "other.csv": {"bytes": 1, "md5": "a" * 32}})


def _overrides(roots, connections) -> dict:
    return {path.name: {"bytes": path.stat().st_size, "md5": md5_file(path)} for path in (roots, connections)}


@contextlib.contextmanager
def _zenodo(directory):
    """A loopback stand-in for Zenodo serving the files of ``directory``; yields (base URL, requested paths)."""
    requests: list[str] = []
    handler = functools.partial(_QuietFiles, directory=str(directory), requests=requests)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


FAST = {"backoff_seconds": 0.01, "timeout": 5.0, "progress": False}


@pytest.mark.parametrize("connectome", ["flywire_whole", "flywire_mushroom_body"])
def test_fetched_release_becomes_valid_exports(tmp_path, connectome):
    served = tmp_path / "zenodo"
    served.mkdir()
    roots, connections, ids, frame = _write_release(served)
    overrides = _overrides(roots, connections)
    with _zenodo(served) as (base_url, _):
        paths = fetch_release(RELEASE, tmp_path / "cache", base_url=base_url, overrides=overrides, **FAST)
    assert list(paths) == [roots.name, connections.name]
    out = tmp_path / "exports"
    summary = write_flywire_exports(out, connectome, paths, release=RELEASE, base_url=base_url,
                                    overrides=overrides)
    exports = load_exports(out)   # the strict reader accepts every table
    expected = specification(ids, frame, neuropils=MB_NEUROPILS if connectome == "flywire_mushroom_body" else None)
    assert exports.neurons["bodyId"].tolist() == [int(i) for i in expected[0]["bodyId"]]   # exact 18-digit ids
    assert len(exports.connections) == len(expected[2]) == summary["connections"]
    assert exports.neurons["transmitter"].tolist() == expected[0]["predictedNt"].tolist()

    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["source"] == "zenodo" and provenance["zenodo_record"] == "10676866"
    assert provenance["release"] == RELEASE and provenance["synthetic"] is False
    record = provenance["source_files"][connections.name]
    assert record["md5"] == overrides[connections.name]["md5"] and record["bytes"] == connections.stat().st_size
    assert record["url"] == f"{base_url}/{connections.name}?download=1" and len(record["sha256"]) == 64
    assert record["downloaded_utc"].endswith("+00:00") and "refetched_because" not in record
    assert provenance["normalisation"]["rows_dropped_unknown_id"] == summary["rows_dropped_unknown_id"] > 0


def _cached_release(tmp_path) -> tuple:
    """The release served from ``zenodo/`` and a verified copy of it in ``cache/``, as after the download rule."""
    served = tmp_path / "zenodo"
    served.mkdir()
    roots, connections, _, _ = _write_release(served)
    cache = tmp_path / "cache"
    cache.mkdir()
    paths = {path.name: Path(shutil.copy(path, cache / path.name)) for path in (roots, connections)}
    return served, paths, _overrides(roots, connections)


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated"])
def test_corrupt_cached_file_is_fetched_again_and_verified(tmp_path, damage, caplog):
    """A cached file damaged after its download is caught where it is read, replaced and then used."""
    served, paths, overrides = _cached_release(tmp_path)
    cached = paths[connections_name(RELEASE)]
    good = cached.read_bytes()
    cached.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]) if damage == "flipped_byte" else good[:1000])
    out = tmp_path / "exports"
    with _zenodo(served) as (base_url, requests), caplog.at_level("WARNING"):
        summary = write_flywire_exports(out, "flywire_whole", paths, release=RELEASE, base_url=base_url,
                                        overrides=overrides, fetch_kwargs=FAST)
    assert cached.read_bytes() == good
    assert requests == [f"/{cached.name}?download=1"]   # only the damaged file, and only once
    assert f"cached FlyWire file {cached} failed verification" in caplog.text
    assert summary["connections"] == len(load_exports(out).connections) > 0
    record = json.loads((out / "provenance.json").read_text())["source_files"]
    assert record[cached.name]["md5"] == md5_file(cached)
    assert ("md5" if damage == "flipped_byte" else "size") in record[cached.name]["refetched_because"]
    assert "refetched_because" not in record[root_ids_name(RELEASE)]


def test_corrupt_cached_file_and_wrong_bytes_on_the_server_give_one_clear_error(tmp_path):
    served, paths, overrides = _cached_release(tmp_path)
    cached = paths[root_ids_name(RELEASE)]
    cached.write_bytes(b"damaged")
    wrong = np.arange(7, dtype=np.uint64)
    np.save(served / cached.name, wrong)   # the "mirror" serves another file under the same name
    out = tmp_path / "exports"
    expected = overrides[cached.name]
    with _zenodo(served) as (base_url, requests), pytest.raises(BPUInputError) as caught:
        write_flywire_exports(out, "flywire_whole", paths, release=RELEASE, base_url=base_url,
                              overrides=overrides, fetch_kwargs={**FAST, "retries": 3})
    message = str(caught.value)
    served_bytes = (served / cached.name).read_bytes()
    assert str(cached) in message and f"{base_url}/{cached.name}?download=1" in message
    assert f"expected {expected['bytes']} bytes, md5 {expected['md5']}" in message
    assert f"got {len(served_bytes)} bytes, md5 {md5_file(served / cached.name)}" in message
    assert "'flywire.base_url'" in message
    assert len(requests) == 1   # bytes received whole that do not verify are not downloaded again
    assert not cached.exists() and list(cached.parent.iterdir()) == [paths[connections_name(RELEASE)]]
    assert not out.exists() or not any(out.iterdir())


def test_corrupt_cached_file_with_the_server_unreachable_says_what_to_do(tmp_path):
    _, paths, overrides = _cached_release(tmp_path)
    cached = paths[connections_name(RELEASE)]
    cached.write_bytes(b"not a feather file")
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    out = tmp_path / "exports"
    with pytest.raises(BPUInputError) as caught:
        write_flywire_exports(out, "flywire_whole", paths, release=RELEASE, base_url=base_url,
                              overrides=overrides, fetch_kwargs={**FAST, "retries": 1})
    message = str(caught.value)
    expected = overrides[cached.name]
    assert str(cached) in message and "connection failed" in message and "2 attempt(s)" in message
    assert "'flywire_file' rule" in message and f"{expected['bytes']} bytes with md5 {expected['md5']}" in message
    assert not cached.exists()   # the next run's download rule sees it missing and fetches it
    assert not out.exists() or not any(out.iterdir())


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (ignoring ``Range``, like a plain mirror) and records each requested path."""

    def __init__(self, *args, requests: list[str], **kwargs) -> None:
        self.requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass
