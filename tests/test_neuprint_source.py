"""neuPrint acquisition against a loopback TLS stand-in: the real neuprint-python client builds and batches
every query, so these tests check the queries' results as the client parses them, not canned tables."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from datetime import datetime
from importlib import metadata

import pandas as pd
import pytest

from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.provenance import sha256_file
from connectome_bpu.sources import EXPORT_FILES, PROVENANCE_FILE
from connectome_bpu.sources.neuprint_source import (ADJACENCY_PARAMETERS, ROI_HIERARCHY_FILE, TOKEN_VARIABLES,
                                                    NeuprintServerError, aggregate_connections,
                                                    fetch_neuprint_exports, resolve_rois, resolve_token)
from fake_neuprint import DATASET, ER4D, PFND, PRIMARY_ROIS, ROI_TREE, Body, Connection, FakeNeuprint

TOKEN = "s3cret-token-value"
CX = ["EB", "PB", "FB", "NO"]
ALL_FILES = sorted([*EXPORT_FILES, ROI_HIERARCHY_FILE, PROVENANCE_FILE])
CX_NEURONS = [1001, 1002, 1003, 1004, 1007, 1008, 1009, ER4D, PFND]
# Per-ROI weights summed, NotPrimary included (1001->1003: EB 3 + PB 2 + outside 1; 1009->PFNd: outside only);
# edges to or from bodies outside the CX set (LAL004, MBON01, SA1, the unlabelled fragment 1013) are absent.
CX_CONNECTIONS = [(1001, 1003, 6), (1002, 1004, 5), (1003, 1002, 4), (1004, 1001, 7), (1007, 1008, 9),
                  (1009, PFND, 3), (ER4D, 1001, 2), (ER4D, 1002, 1), (PFND, 1007, 6)]
MARKED_HIERARCHY = {"hemibrain": {"CX": {"EB*": {"EBr1": {}}, "PB*": {}, "FB*": {"FBl1": {}}, "NO*": {},
                                         "AB(R)*": {}},
                                  "MB(+ACA)(R)": {"MB(R)": {"CA(R)*": {}}}}}


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch):
    """Tokens come only from what a test sets: the client must never find one on its own."""
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def neuprint_server(tmp_path, monkeypatch):
    """Factory: start a FakeNeuprint with the given options and make requests trust its CA."""
    with ExitStack() as stack:
        def start(**options) -> FakeNeuprint:
            fake = stack.enter_context(FakeNeuprint(**options))
            for name, value in fake.client_environment(tmp_path).items():
                monkeypatch.setenv(name, value)
            return fake
        yield start


def export(fake: FakeNeuprint, out_dir, *, rois=CX, token=TOKEN, dataset=DATASET) -> dict:
    return fetch_neuprint_exports(out_dir, connectome="hemibrain_cx", server=fake.url, dataset=dataset, rois=rois,
                                  token=token)


def assert_nothing_written(out_dir):
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


# --- token -------------------------------------------------------------------------------------------------

def test_resolve_token_prefers_application_credentials_then_neuprint_token():
    assert resolve_token({"NEUPRINT_APPLICATION_CREDENTIALS": "a", "NEUPRINT_TOKEN": "b"}) == "a"
    assert resolve_token({"NEUPRINT_TOKEN": " b\n"}) == "b"
    assert resolve_token({"NEUPRINT_APPLICATION_CREDENTIALS": "  ", "NEUPRINT_TOKEN": "b"}) == "b"


def test_missing_token_says_how_to_get_and_set_one():
    with pytest.raises(BPUInputError) as error:
        resolve_token({"NEUPRINT_APPLICATION_CREDENTIALS": "", "OTHER": "x"})
    message = str(error.value)
    for needle in ("NEUPRINT_APPLICATION_CREDENTIALS", "NEUPRINT_TOKEN", "neuprint.janelia.org", "Account",
                   "export NEUPRINT_APPLICATION_CREDENTIALS="):
        assert needle in message


# --- ROI resolution ------------------------------------------------------------------------------------------

def test_resolve_rois_exact_case_insensitive_and_primary_marks():
    assert resolve_rois(MARKED_HIERARCHY, CX) == CX                         # '*' marks stripped
    assert resolve_rois(MARKED_HIERARCHY, ["pb", " eb ", "FB*", "mb(r)"]) == ["PB", "EB", "FB", "MB(R)"]
    assert resolve_rois(MARKED_HIERARCHY, ["EB", "eb"]) == ["EB"]            # one ROI, listed once
    assert resolve_rois({"root": [" EB* ", {"PB": {}}]}, ["EB", "PB"]) == ["EB", "PB"]


def test_resolve_rois_rejects_unknown_names_with_close_matches():
    with pytest.raises(BPUInputError) as error:
        resolve_rois(MARKED_HIERARCHY, ["EB", "FBB", "Zzqx"])
    message = str(error.value)
    assert "'FBB'" in message and "close matches: FB" in message
    assert "'Zzqx'" in message and "no close match" in message
    assert "'EB'" not in message


def test_resolve_rois_rejects_ambiguous_case_and_empty_lists():
    with pytest.raises(BPUInputError, match="differ only in case"):
        resolve_rois({"root": {"ab": {}, "AB": {}}}, ["Ab"])
    with pytest.raises(BPUInputError, match="empty"):
        resolve_rois(MARKED_HIERARCHY, [])


# --- normalisation -------------------------------------------------------------------------------------------

def test_aggregate_connections_renames_sums_and_filters():
    table = pd.DataFrame({"pre": [1, 1, 2, 2, 3, 1], "post": [2, 2, 1, 9, 1, 3],
                          "roi": ["EB", "NotPrimary", "PB", "EB", "EB", "EB"],
                          "syn_count": [2, 1, None, 4, 0, 5]})
    frame = aggregate_connections(table, [1, 2, 3])
    assert frame.to_dict("list") == {"bodyId_pre": [1, 1], "bodyId_post": [2, 3], "weight": [3, 5]}
    assert frame.dtypes.to_dict() == {"bodyId_pre": "int64", "bodyId_post": "int64", "weight": "int64"}
    with pytest.raises(BPUInputError, match="no weight column"):
        aggregate_connections(table.drop(columns="syn_count"), [1, 2, 3])


# --- full export against the fake server -------------------------------------------------------------------

def test_export_against_fake_neuprint(neuprint_server, tmp_path):
    fake = neuprint_server(token=TOKEN)
    out = tmp_path / "out"
    summary = export(fake, out, rois=["EB", "pb", "FB*", "NO"])

    assert sorted(p.name for p in out.iterdir()) == ALL_FILES             # and no temporary file left
    assert fake.unanswered == []
    exports = load_exports(out)
    assert exports.neurons["bodyId"].tolist() == CX_NEURONS
    assert exports.neurons["type"].tolist()[:2] == ["EPG", "EPG"]
    assert list(exports.connections.itertuples(index=False, name=None)) == CX_CONNECTIONS

    lines = (out / "connections.csv").read_text().splitlines()
    assert lines[0] == "bodyId_pre,bodyId_post,weight"
    assert f"{PFND},1007,6" in lines                                         # int64 ids and integer weights
    neurons = pd.read_csv(out / "neurons.csv", dtype={"bodyId": "int64"})
    assert neurons["bodyId"].tolist() == CX_NEURONS
    assert {"instance", "type", "pre", "post", "status", "roiInfo", "inputRois", "somaLocation"} <= set(neurons)
    epg = neurons.iloc[0]
    assert json.loads(epg["roiInfo"])["EB"]["pre"] == 8 and json.loads(epg["somaLocation"]) == [100, 200, 300]
    assert json.loads(epg["inputRois"]) == ["CX", "EB", "EBr1", "PB", "PB(L1)"]

    roi_lines = (out / "roi_counts.csv").read_text().splitlines()
    assert roi_lines[0] == "bodyId,roi,pre,post,downstream,upstream,mito"
    roi_counts = pd.read_csv(out / "roi_counts.csv", dtype={"bodyId": "int64"})
    epg_rows = roi_counts[roi_counts["bodyId"] == 1001].set_index("roi")
    assert list(epg_rows.index) == ["CX", "EB", "EBr1", "NotPrimary", "PB", "PB(L1)"]  # every level + NotPrimary
    assert epg_rows.loc["NotPrimary", ["pre", "post"]].tolist() == [1, 2]
    assert set(roi_counts["bodyId"]) == set(CX_NEURONS)

    hierarchy_text = (out / ROI_HIERARCHY_FILE).read_text()
    assert json.loads(hierarchy_text) == ROI_TREE                           # unmarked, rooted at "hemibrain"
    assert hierarchy_text == json.dumps(ROI_TREE, indent=2, sort_keys=True) + "\n"

    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["source"] == "neuprint" and provenance["synthetic"] is False
    assert provenance["connectome"] == "hemibrain_cx"
    assert provenance["server"] == fake.url and provenance["dataset"] == DATASET
    assert provenance["rois_requested"] == ["EB", "pb", "FB*", "NO"] and provenance["primary_rois"] == CX
    assert provenance["dataset_primary_rois"] == sorted(PRIMARY_ROIS)
    assert provenance["neuprint_python"] == metadata.version("neuprint-python")
    assert provenance["query"]["connections"]["min_total_weight"] == 1
    assert {k: provenance["query"]["connections"][k] for k in ADJACENCY_PARAMETERS} == ADJACENCY_PARAMETERS
    assert provenance["query"]["neurons"]["criteria"] == {"rois": CX, "roi_req": "any"}
    datetime.fromisoformat(provenance["downloaded_utc"])
    assert sorted(provenance["files"]) == sorted([*EXPORT_FILES, ROI_HIERARCHY_FILE])
    for name, record in provenance["files"].items():
        assert record == {"bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
    assert provenance["counts"] == summary
    assert summary["neurons"] == 9 and summary["connections"] == 9 and summary["synapses_in_connections"] == 43
    assert summary["connection_rows_in_source"] == 13                       # per-ROI rows before summing
    assert fake.shapes().count("connections") == 1


def test_token_is_passed_explicitly_when_only_neuprint_token_is_set(neuprint_server, tmp_path, monkeypatch):
    fake = neuprint_server(token=TOKEN)
    monkeypatch.setenv("NEUPRINT_TOKEN", TOKEN)
    export(fake, tmp_path / "out", token=resolve_token())
    assert fake.requests and {r.authorization for r in fake.requests} == {f"Bearer {TOKEN}"}


def test_large_region_is_fetched_in_batches(neuprint_server, tmp_path):
    """More neurons than one adjacency batch (200): batches run concurrently and their rows all arrive."""
    ids = list(range(5000, 5450))
    bodies = tuple(Body(i, "ring", f"ring_{i}", {"EB": (3, 3)}, outside=(1, 1)) for i in ids)
    ring = tuple(Connection(i, ids[(k + 1) % len(ids)], {"EB": 2}, outside=1) for k, i in enumerate(ids))
    fake = neuprint_server(token=TOKEN, bodies=bodies, connections=ring)
    summary = export(fake, tmp_path / "out", rois=["EB"])
    assert fake.unanswered == [] and fake.shapes().count("connections") == 3
    connections = load_exports(tmp_path / "out").connections
    assert summary["connections"] == len(connections) == 450 and set(connections["weight"]) == {3}


# --- failures: clear errors, nothing written ----------------------------------------------------------------

def test_rejected_token_is_reported_without_the_token(neuprint_server, tmp_path):
    fake = neuprint_server(token=TOKEN)
    wrong = "wrong-token-1234"
    with pytest.raises(BPUInputError) as error:
        export(fake, tmp_path / "out", token=wrong)
    message = str(error.value)
    assert "rejected the token" in message and "HTTP 401" in message and fake.url in message
    assert "neuprint.janelia.org" in message and "NEUPRINT_TOKEN" in message
    assert wrong not in message and error.value.__cause__ is None and error.value.__suppress_context__
    assert_nothing_written(tmp_path / "out")


def test_server_error_names_server_and_status(neuprint_server, tmp_path):
    fake = neuprint_server(token=TOKEN, failures={"/api/custom/custom": 500})
    with pytest.raises(NeuprintServerError) as error:
        export(fake, tmp_path / "out")
    message = str(error.value)
    assert fake.url in message and "HTTP 500" in message and "server error" in message and TOKEN not in message
    assert_nothing_written(tmp_path / "out")


def test_unreachable_server_is_named(tmp_path):
    with socket.socket() as probe:                                           # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = f"https://127.0.0.1:{port}"
    with pytest.raises(NeuprintServerError, match=f"could not connect to the neuPrint server {server}"):
        fetch_neuprint_exports(tmp_path / "out", connectome="hemibrain_cx", server=server, dataset=DATASET,
                               rois=CX, token=TOKEN)
    assert_nothing_written(tmp_path / "out")


def test_unknown_roi_stops_before_any_neuron_query(neuprint_server, tmp_path):
    fake = neuprint_server(token=TOKEN)
    with pytest.raises(BPUInputError) as error:
        export(fake, tmp_path / "out", rois=["EB", "FBX"])
    message = str(error.value)
    assert "'FBX'" in message and "close matches: FB" in message and DATASET in message
    assert "neurons" not in fake.shapes()
    assert_nothing_written(tmp_path / "out")


def test_region_without_neurons_and_unknown_dataset_are_input_errors(neuprint_server, tmp_path):
    fake = neuprint_server(token=TOKEN)
    with pytest.raises(BPUInputError, match=r"no neuron has a synapse in any of the ROIs \['NO2\(R\)'\]"):
        export(fake, tmp_path / "out", rois=["NO2(R)"])                   # a sub-ROI nobody touches
    with pytest.raises(BPUInputError, match="hemibrain:v9.9") as error:
        export(fake, tmp_path / "out", dataset="hemibrain:v9.9")
    assert DATASET in str(error.value)                                       # the datasets the server has
    assert fake.unanswered == []
    assert_nothing_written(tmp_path / "out")


def test_fake_refuses_conditions_it_cannot_evaluate(neuprint_server):
    """The stand-in must fail loudly rather than ignore a criterion (here: status) and answer too much."""
    import neuprint
    from requests import HTTPError

    fake = neuprint_server(token=TOKEN)
    client = neuprint.Client(fake.url, dataset=DATASET, token=TOKEN)
    with pytest.raises(HTTPError, match="400"):
        neuprint.fetch_neurons(neuprint.NeuronCriteria(status="Traced", rois=["EB"]), client=client)
    assert len(fake.unanswered) == 1 and "n.status" in fake.unanswered[0]
