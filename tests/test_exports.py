"""Reading and validating raw exports: exact int64 ids, aggregation, and one clear error per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectome_bpu import exports
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports, read_connections, read_neurons, read_roi_counts

# Adjacent ids above 2**53: a float64 round trip would merge them.
BIG = [2**53 + 1, 2**53 + 2, 720575940379999999, 2**63 - 1]
NEURONS = "bodyId,type,instance,pre,post,predictedNt\n" + "".join(
    f"{i},T{k},inst{k},{k + 1},{k + 2},ACh\n" for k, i in enumerate(BIG))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def export_dir(directory: Path, neurons: str = NEURONS, connections: str | None = None,
               roi_counts: str | None = None) -> Path:
    write(directory, "neurons.csv", neurons)
    if connections is None:
        connections = f"bodyId_pre,bodyId_post,weight\n{BIG[0]},{BIG[1]},3\n{BIG[2]},{BIG[3]},1\n"
    write(directory, "connections.csv", connections)
    if roi_counts is not None:
        write(directory, "roi_counts.csv", roi_counts)
    return directory


def raises(call, *fragments: str) -> str:
    """Run ``call`` expecting a BPUInputError whose message contains every fragment."""
    with pytest.raises(BPUInputError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --- valid inputs -----------------------------------------------------------------------------------

def test_ids_above_2_53_survive_exactly(tmp_path):
    loaded = load_exports(export_dir(tmp_path))
    assert loaded.neurons["bodyId"].dtype == np.int64
    assert loaded.neurons["bodyId"].tolist() == BIG
    assert loaded.connections["bodyId_pre"].tolist() == [BIG[0], BIG[2]]
    assert loaded.connections["bodyId_post"].tolist() == [BIG[1], BIG[3]]
    assert loaded.connections.dtypes.to_dict() == {"bodyId_pre": np.int64, "bodyId_post": np.int64,
                                                   "weight": np.float64}
    assert loaded.directory == tmp_path


def test_neurons_sorted_with_defaults_for_missing_columns(tmp_path):
    path = write(tmp_path, "neurons.csv", "bodyId,extra\n30,x\n10,y\n20,z\n")
    neurons = read_neurons(path)
    assert list(neurons.columns) == exports.NEURON_COLUMNS
    assert neurons["bodyId"].tolist() == [10, 20, 30]
    assert neurons["type"].tolist() == ["", "", ""]
    assert neurons["transmitter"].tolist() == ["", "", ""]
    assert neurons["pre"].dtype == np.float64 and neurons["pre"].tolist() == [0.0, 0.0, 0.0]


def test_neuron_columns_follow_the_sort(tmp_path):
    path = write(tmp_path, "neurons.csv", "bodyId,type,instance,pre,post\n2,B,b,5,6\n1,A,,,3\n")
    neurons = read_neurons(path)
    assert neurons.to_dict("list") == {"bodyId": [1, 2], "type": ["A", "B"], "instance": ["", "b"],
                                       "pre": [0.0, 5.0], "post": [3.0, 6.0], "transmitter": ["", ""]}


def test_transmitter_is_first_matching_column(tmp_path):
    path = write(tmp_path, "neurons.csv", "bodyId,NT,predicted_nt\n1,GABA,ACh\n")
    assert read_neurons(path)["transmitter"].tolist() == ["GABA"]


def test_duplicate_connection_rows_are_summed_and_sorted(tmp_path):
    path = write(tmp_path, "connections.csv", "bodyId_pre,bodyId_post,weight,roi\n"
                 f"{BIG[2]},{BIG[0]},1,EB\n{BIG[0]},{BIG[1]},2,EB\n{BIG[2]},{BIG[0]},4,PB\n{BIG[0]},{BIG[1]},0.5,FB\n")
    frame = read_connections(path, np.array(BIG))
    assert frame.to_dict("list") == {"bodyId_pre": [BIG[0], BIG[2]], "bodyId_post": [BIG[1], BIG[0]],
                                     "weight": [2.5, 5.0]}
    assert frame.attrs["source_rows"] == 4


def test_aggregation_matches_pandas_across_lookup_blocks(tmp_path, monkeypatch):
    """A shuffled table with many duplicates, with the id lookup split into several blocks."""
    monkeypatch.setattr(exports, "_BLOCK_ROWS", 1000)
    rng = np.random.default_rng(1)
    ids = np.sort(rng.choice(2**62, size=300, replace=False)) + 2**62
    rows = pd.DataFrame({"bodyId_pre": rng.choice(ids, 20_000), "bodyId_post": rng.choice(ids, 20_000),
                         "weight": rng.integers(1, 9, 20_000).astype(float)})
    rows.to_csv(tmp_path / "connections.csv", index=False)
    frame = read_connections(tmp_path / "connections.csv", ids[::-1])  # unsorted id list is accepted
    expected = rows.groupby(["bodyId_pre", "bodyId_post"], as_index=False)["weight"].sum()
    pd.testing.assert_frame_equal(frame, expected)


def test_roi_counts_case_insensitive_and_optional(tmp_path):
    path = write(tmp_path, "roi_counts.csv", f"Body_ID,ROI,Post\n{BIG[3]},EB,4\n{BIG[0]},NotPrimary,\n")
    rois = read_roi_counts(path)
    assert rois.to_dict("list") == {"bodyId": [BIG[3], BIG[0]], "roi": ["EB", "NotPrimary"], "pre": [0.0, 0.0],
                                    "post": [4.0, 0.0]}
    for absent in (None, tmp_path / "nope.csv"):
        empty = read_roi_counts(absent)
        assert list(empty.columns) == exports.ROI_COUNT_COLUMNS and len(empty) == 0
        assert empty["bodyId"].dtype == np.int64


# --- one error per bad input ------------------------------------------------------------------------

def test_missing_neuron_column_lists_columns_found(tmp_path):
    path = write(tmp_path, "neurons.csv", "id,type\n1,a\n")
    raises(lambda: read_neurons(path), "neurons.csv", "'bodyId'", "columns found: ['id', 'type']")


@pytest.mark.parametrize("column", ["bodyId_pre", "bodyId_post", "weight"])
def test_missing_connection_column(tmp_path, column):
    header = [c for c in exports.CONNECTION_COLUMNS if c != column]
    path = write(tmp_path, "connections.csv", ",".join(header) + "\n" + ",".join("1" for _ in header) + "\n")
    raises(lambda: read_connections(path, np.array([1])), "connections.csv", f"'{column}'", str(header))


def test_missing_roi_column(tmp_path):
    path = write(tmp_path, "roi_counts.csv", "bodyId,pre,post\n1,2,3\n")
    raises(lambda: read_roi_counts(path), "roi_counts.csv", "'roi'", "['bodyId', 'pre', 'post']")


def test_duplicate_body_ids_are_named(tmp_path):
    path = write(tmp_path, "neurons.csv", f"bodyId\n{BIG[1]}\n7\n{BIG[1]}\n7\n8\n")
    raises(lambda: read_neurons(path), "neurons.csv", "'bodyId'", "2 duplicated", f"7, {BIG[1]}")


@pytest.mark.parametrize("value, reason", [
    (str(2**64), "does not fit int64"),
    (str(2**63), "does not fit int64"),
    (str(-(2**63) - 1), "does not fit int64"),
    ("1.5", "not an integer"),
    ("1e5", "not an integer"),
    ("abc", "not an integer"),
    ("", "missing id"),
])
def test_body_id_that_is_not_int64(tmp_path, value, reason):
    path = write(tmp_path, "neurons.csv", f"bodyId,type\n5,a\n{value},b\n")
    raises(lambda: read_neurons(path), "neurons.csv", "'bodyId'", f"row 2: {value!r} ({reason})", "int64")


def test_int64_extremes_are_accepted(tmp_path):
    path = write(tmp_path, "neurons.csv", f"bodyId\n{2**63 - 1}\n{-(2**63)}\n0\n")
    assert read_neurons(path)["bodyId"].tolist() == [-(2**63), 0, 2**63 - 1]


def test_connection_id_that_is_not_int64(tmp_path):
    path = write(tmp_path, "connections.csv", f"bodyId_pre,bodyId_post,weight\n1,{2**64},1\n")
    raises(lambda: read_connections(path, np.array([1])), "connections.csv", "'bodyId_post'",
           f"'{2**64}' (does not fit int64)")


def test_edge_to_unknown_neuron_names_ids_and_suggests_other_export(tmp_path):
    path = write(tmp_path, "connections.csv",
                 f"bodyId_pre,bodyId_post,weight\n{BIG[0]},{BIG[1]},1\n{BIG[0]},99,2\n42,{BIG[1]},1\n42,99,1\n")
    message = raises(lambda: read_connections(path, np.array(BIG)), "connections.csv", "'bodyId_pre'",
                     "'bodyId_post'", "42", "99", "different neuron set")
    assert "2 edge(s), 1 distinct id(s)" in message


@pytest.mark.parametrize("value, reason", [("abc", "not a number"), ("nan", "empty or NaN"), ("", "empty or NaN"),
                                           ("inf", "infinite"), ("-inf", "infinite"), ("0", "not > 0"),
                                           ("-2.5", "not > 0")])
def test_bad_weight_names_row_and_value(tmp_path, value, reason):
    path = write(tmp_path, "connections.csv", f"bodyId_pre,bodyId_post,weight\n1,2,3\n2,1,1\n1,1,{value}\n")
    raises(lambda: read_connections(path, np.array([1, 2])), "connections.csv", "'weight'",
           f"row 3: {value!r} ({reason})", "> 0")


def test_many_bad_values_are_counted_and_truncated(tmp_path):
    """Past Arrow's first block, so row numbers must carry over between streamed blocks."""
    weights = np.ones(200_000, dtype=object)
    weights[[150_000, 150_002, 199_999]] = ["-1", "x", "0"]
    weights[160_000:160_010] = "0"
    frame = pd.DataFrame({"bodyId_pre": 1, "bodyId_post": 2, "weight": weights})
    frame.to_csv(tmp_path / "connections.csv", index=False)
    message = raises(lambda: read_connections(tmp_path / "connections.csv", np.array([1, 2])),
                     "13 invalid value(s); first 5 shown", "row 150001: '-1' (not > 0)", "row 150003: 'x'",
                     "row 160001: '0'")
    assert "row 200000" not in message


@pytest.mark.parametrize("value, reason", [("-3", "negative"), ("lots", "not a number"), ("inf", "infinite")])
def test_bad_neuron_synapse_count(tmp_path, value, reason):
    path = write(tmp_path, "neurons.csv", f"bodyId,pre,post\n1,2,3\n2,4,{value}\n")
    raises(lambda: read_neurons(path), "neurons.csv", "'post'", f"row 2: {value!r} ({reason})")


@pytest.mark.parametrize("text", ["", "bodyId,type\n"], ids=["no_header", "header_only"])
def test_empty_neurons_file(tmp_path, text):
    path = write(tmp_path, "neurons.csv", text)
    raises(lambda: read_neurons(path), "neurons.csv", "empty" if not text else "no neuron rows")


@pytest.mark.parametrize("text", ["", "bodyId_pre,bodyId_post,weight\n"], ids=["no_header", "header_only"])
def test_empty_connections_file(tmp_path, text):
    path = write(tmp_path, "connections.csv", text)
    raises(lambda: read_connections(path, np.array([1])), "connections.csv", "empty" if not text else "no edge rows")


def test_malformed_row(tmp_path):
    path = write(tmp_path, "connections.csv", "bodyId_pre,bodyId_post,weight\n1,2,3\n1,2\n")
    raises(lambda: read_connections(path, np.array([1, 2])), "connections.csv", "could not be parsed",
           "Expected 3 columns")


def test_missing_export_directory_and_files(tmp_path):
    raises(lambda: load_exports(tmp_path / "absent"), "absent", "does not exist")
    write(tmp_path, "neurons.csv", NEURONS)
    raises(lambda: load_exports(tmp_path), "lacks connections.csv", "files present: ['neurons.csv']")


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "neurons.csv"
    path.write_bytes(b"\xff\xfe\x00bodyId\n")
    raises(lambda: read_neurons(path), "neurons.csv", "not UTF-8")
