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

from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.sources.download import md5_file
from connectome_bpu.sources.flywire import (MB_NEUROPILS, PINNED, TRANSMITTERS, connections_name, fetch_release,
                                            file_url, load_root_ids, normalise_mushroom_body, normalise_whole,
                                            release_files, root_ids_name, write_flywire_exports)

BASE = 720575940600000000   # FlyWire root ids are ~7.2e17, far beyond 2**53
NEUROPILS = ["MB_CA_L", "MB_ML_R", "MB_VL_L", "AL_L", "LH_R", "FB", "EB"]
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

def specification(ids: np.ndarray, frame: pd.DataFrame, *, mushroom_body: bool, nt_confidence: float = 0.70):
    ids = np.sort(ids)
    pre_col, post_col = "pre_pt_root_id", "post_pt_root_id"
    rows = frame[frame[pre_col].isin(ids) & frame[post_col].isin(ids)]
    if mushroom_body:
        edge_rows = rows[rows["neuropil"].isin(MB_NEUROPILS)]
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
    _assert_matches(result, specification(ids, frame, mushroom_body=False))
    neurons = result[0].set_index("bodyId")
    assert len(neurons) == ids.size   # every proofread id, with or without rows
    for index, (what, _, label) in VOTES.items():
        assert neurons.loc[ids[index], "predictedNt"] == label, what


@pytest.mark.parametrize("batch_rows", [97, 2_000_000])
def test_mushroom_body_matches_the_specification(release, batch_rows):
    roots, connections, ids, frame = release
    result = normalise_mushroom_body(roots, connections, batch_rows=batch_rows)
    _assert_matches(result, specification(ids, frame, mushroom_body=True))
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
    _assert_matches(normalise_whole(roots, connections), specification(ids, frame, mushroom_body=False))


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
    expected = specification(ids, frame, mushroom_body=connectome == "flywire_mushroom_body")
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
