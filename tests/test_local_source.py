"""connectome=local: validation before writing, normalised outputs, provenance, nothing left behind on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectome_bpu import sources
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.provenance import file_record, git_commit, sha256_file, utc_now
from connectome_bpu.sources import PROVENANCE_FILE
from connectome_bpu.sources.local import import_local_exports
from connectome_bpu.sources.synthetic_cx import write_synthetic_cx

A, B, C = 720575940379999998, 720575940379999999, 720575940380000000  # adjacent, all above 2**53
ROIS = ["EB", "PB", "FB", "NO"]
NEURONS = (f"bodyId,type,instance,pre,post,status,nt\n{C},PFL3,PFL3_R,4,1,Traced,ACh\n"
           f"{A},ER4d_ring,,1,5,Traced,GABA\n{B},EPG,EPG_L,2,2,,\n")
ROI_COUNTS = f"bodyid,roi,pre,post,mito\n{A},EB,1,1,0\n{A},BU(R),0,4,0\n{B},PB,2,2,0\n{C},FB,0,1,0\n{C},LAL(R),4,0,0\n"
CONNECTIONS = f"bodyId_pre,bodyId_post,roi,weight\n{B},{C},FB,1\n{A},{B},EB,1\n{B},{A},EB,1\n{B},{C},PB,3\n"


def source(directory: Path, **overrides: str | None) -> Path:
    files = {"neurons.csv": NEURONS, "roi_counts.csv": ROI_COUNTS, "connections.csv": CONNECTIONS}
    files.update({f"{name}.csv": text for name, text in overrides.items()})
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if text is not None:
            (directory / name).write_text(text)
    return directory


def test_import_writes_normalised_exports_and_provenance(tmp_path):
    src, out = source(tmp_path / "src"), tmp_path / "out"
    summary = import_local_exports(src, out, primary_rois=ROIS)
    assert sorted(p.name for p in out.iterdir()) == sorted([*sources.EXPORT_FILES, PROVENANCE_FILE])
    assert (out / "neurons.csv").read_text().splitlines()[0] == "bodyId,type,instance,pre,post,predictedNt"
    assert (out / "roi_counts.csv").read_text().splitlines()[0] == "bodyId,roi,pre,post"
    assert (out / "connections.csv").read_text().splitlines() == [
        "bodyId_pre,bodyId_post,weight", f"{A},{B},1.0", f"{B},{A},1.0", f"{B},{C},4.0"]

    again = load_exports(out)
    assert again.neurons["bodyId"].tolist() == [A, B, C]
    assert again.neurons["transmitter"].tolist() == ["GABA", "", "ACh"]
    assert again.neurons["type"].tolist() == ["ER4d_ring", "EPG", "PFL3"]
    assert again.roi_counts["bodyId"].tolist() == [A, A, B, C, C]

    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["source"] == "local" and provenance["synthetic"] is False
    assert provenance["source_dir"] == str(src.resolve()) and Path(provenance["source_dir"]).is_absolute()
    assert provenance["primary_rois"] == ROIS
    for name in sources.EXPORT_FILES:
        record = provenance["source_files"][name]
        assert record == {"path": str((src / name).resolve()), "bytes": (src / name).stat().st_size,
                          "sha256": sha256_file(src / name)}
    assert provenance["counts"] == summary
    assert summary["neurons"] == 3 and summary["connections"] == 3 and summary["connection_rows_in_source"] == 4
    assert summary["roi_count_rows"] == 5 and summary["primary_rois_missing"] == ["NO"]


def test_roi_counts_are_optional(tmp_path):
    src, out = source(tmp_path / "src", roi_counts=None), tmp_path / "out"
    summary = import_local_exports(src, out, primary_rois=ROIS)
    assert (out / "roi_counts.csv").read_text() == "bodyId,roi,pre,post\n"
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["roi_counts_present"] is False and "roi_counts.csv" not in provenance["source_files"]
    assert summary["roi_count_rows"] == 0


def test_synthetic_exports_round_trip_as_local(tmp_path):
    write_synthetic_cx(tmp_path / "syn", copies=2, seed=0, background_density=0.01, transmitter_coverage=1.0)
    import_local_exports(tmp_path / "syn", tmp_path / "out", primary_rois=ROIS)
    before, after = load_exports(tmp_path / "syn"), load_exports(tmp_path / "out")
    for name in ("neurons", "roi_counts", "connections"):
        assert getattr(before, name).equals(getattr(after, name)), name


BAD_INPUTS = {
    "missing_column": ({"neurons": NEURONS.replace("bodyId,", "id,", 1)}, ["neurons.csv", "'bodyId'",
                                                                           "columns found"]),
    "duplicate_body_id": ({"neurons": NEURONS + f"{A},x,,0,0,,\n"}, ["neurons.csv", "'bodyId'", str(A)]),
    "id_overflow": ({"neurons": NEURONS + f"{2**64},x,,0,0,,\n"}, ["neurons.csv", "'bodyId'", str(2**64),
                                                                    "does not fit int64"]),
    "id_not_integer": ({"connections": CONNECTIONS + f"{A}.5,{B},EB,1\n"}, ["connections.csv", "'bodyId_pre'",
                                                                             f"'{A}.5'", "not an integer"]),
    "unknown_neuron": ({"connections": CONNECTIONS + f"{A},12345,EB,1\n"}, ["connections.csv", "'bodyId_post'",
                                                                            "12345", "different neuron set"]),
    "weight_non_numeric": ({"connections": CONNECTIONS + f"{A},{B},EB,many\n"}, ["connections.csv", "'weight'",
                                                                                 "row 5: 'many'"]),
    "weight_nan": ({"connections": CONNECTIONS + f"{A},{B},EB,NaN\n"}, ["connections.csv", "'weight'",
                                                                        "row 5: 'NaN'"]),
    "weight_infinite": ({"connections": CONNECTIONS + f"{A},{B},EB,inf\n"}, ["connections.csv", "'weight'",
                                                                             "row 5: 'inf' (infinite)"]),
    "weight_zero": ({"connections": CONNECTIONS + f"{A},{B},EB,0\n"}, ["connections.csv", "'weight'",
                                                                       "row 5: '0' (not > 0)"]),
    "weight_negative": ({"connections": CONNECTIONS + f"{A},{B},EB,-4\n"}, ["connections.csv", "'weight'",
                                                                            "row 5: '-4' (not > 0)"]),
    "empty_neurons": ({"neurons": ""}, ["neurons.csv", "empty"]),
    "empty_connections": ({"connections": "bodyId_pre,bodyId_post,weight\n"}, ["connections.csv", "no edge rows"]),
    "missing_connections": ({"connections": None}, ["lacks connections.csv"]),
    "roi_counts_bad_id": ({"roi_counts": ROI_COUNTS + "abc,EB,1,1,0\n"}, ["roi_counts.csv", "'bodyid'", "'abc'"]),
    "primary_rois_absent": ({"roi_counts": ROI_COUNTS.replace(",EB,", ",EB(R),").replace(",PB,", ",PB(L),")
                             .replace(",FB,", ",FB(R),")}, ["roi_counts.csv", "'roi'", "EB(R)", "primary_rois"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_invalid_source_writes_nothing(tmp_path, case):
    overrides, fragments = BAD_INPUTS[case]
    src, out = source(tmp_path / "src", **overrides), tmp_path / "out"
    with pytest.raises(BPUInputError) as info:
        import_local_exports(src, out, primary_rois=ROIS)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"
    assert not out.exists() or not any(out.iterdir())


def test_empty_primary_rois_rejected(tmp_path):
    with pytest.raises(BPUInputError, match="primary_rois"):
        import_local_exports(source(tmp_path / "src"), tmp_path / "out", primary_rois=[])
    assert not (tmp_path / "out").exists()


def test_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    """The four files are renamed into place only after all were written."""
    def broken(path, obj):
        raise OSError("disk full")
    monkeypatch.setattr(sources, "write_json", broken)
    with pytest.raises(OSError, match="disk full"):
        import_local_exports(source(tmp_path / "src"), tmp_path / "out", primary_rois=ROIS)
    assert list((tmp_path / "out").iterdir()) == []


def test_provenance_helpers(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_record(path) == {"path": str(path.resolve()), "bytes": 3, "sha256": sha256_file(path)}
    assert git_commit(tmp_path) is None
    commit = git_commit(Path(__file__).resolve().parent)
    assert commit is None or len(commit) == 40
    assert utc_now().endswith("+00:00")
    assert len(utc_now()) == len("2025-01-31T12:00:00+00:00")
