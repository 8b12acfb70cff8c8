"""Reading and strict validation of the raw exports (``neurons.csv``, ``roi_counts.csv``, ``connections.csv``).

Everything downstream (pools, matrices, controls, training) trusts these three tables, so this module is
the one place where a bad export is stopped, with one :class:`BPUInputError` that names the file, the
column, the offending values and what was expected.

Two rules shape the implementation:

* **Ids are int64 end to end.** FlyWire root ids have 18 digits; a single pass through float64 (which a
  default ``pandas.read_csv`` does as soon as one cell is empty) silently merges neighbouring ids. Id
  columns are therefore parsed by Arrow's CSV reader straight into int64, and anything that does not fit
  (``1.5``, ``abc``, ``2**64``) is an error rather than a conversion.
* **Large files stay cheap.** ``connections.csv`` of the FlyWire whole brain has 15.1 M rows. Only the
  needed columns are read (multi-threaded Arrow reader), every check is a vectorised numpy/Arrow
  operation, and the slow per-value diagnosis that builds an error message runs only after a fast check
  has failed, streaming the one offending column in blocks so memory stays bounded even then.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import BPUInputError

NEURON_COLUMNS = ["bodyId", "type", "instance", "pre", "post", "transmitter"]
ROI_COUNT_COLUMNS = ["bodyId", "roi", "pre", "post"]
CONNECTION_COLUMNS = ["bodyId_pre", "bodyId_post", "weight"]

# Lower-cased header names accepted for the transmitter column; the first one found (in file order) wins.
# Same names and rule as the original benchmark, so its exports read unchanged.
TRANSMITTER_COLUMN_NAMES = ("predictednt", "predicted_nt", "nt", "transmitter", "predictedtransmitter",
                            "predicted_transmitter")

_BODY_ID_NAMES = ("bodyid", "body_id")
_BLOCK_ROWS = 1 << 21  # edges per block of the id lookup (bounds its temporaries to ~50 MB)
_SHOWN = 5  # offending values quoted in a message; the total count is always given as well
_INT64_MAX_DIGITS = str(2**63 - 1)
_INT64_MIN_DIGITS = str(2**63)
_INTEGER_TEXT = r"^-?[0-9]+$"  # what Arrow's int64 converter accepts once surrounding blanks are trimmed
_NUMBER_TEXT = r"(?i)^[+-]?([0-9]+\.?[0-9]*([e][+-]?[0-9]+)?|\.[0-9]+([e][+-]?[0-9]+)?|inf|infinity|nan)$"
_NULL_TEXTS = pa.array(pacsv.ConvertOptions().null_values, pa.string())
_ROW_NOTE = "rows are numbered from 1 after the header"

# Column kinds: how a column is typed when read, and which values are acceptable.
_ID, _WEIGHT, _COUNT, _TEXT = "id", "weight", "count", "text"
_ARROW_TYPES = {_ID: pa.int64(), _WEIGHT: pa.float64(), _COUNT: pa.float64(), _TEXT: pa.string()}
_EXPECTED = {
    _ID: "an integer id that fits int64 (-2**63 .. 2**63-1), written without a decimal point or exponent",
    _WEIGHT: "a finite synapse count > 0 on every edge row",
    _COUNT: "a finite synapse count >= 0 (an empty cell counts as 0)",
}


@dataclass
class Exports:
    """The three validated raw tables of one substrate, plus the directory they came from."""

    neurons: pd.DataFrame
    roi_counts: pd.DataFrame
    connections: pd.DataFrame
    directory: Path


def read_neurons(path: str | Path) -> pd.DataFrame:
    """``neurons.csv`` -> ``bodyId, type, instance, pre, post, transmitter``, sorted by bodyId.

    ``bodyId`` is required, must be unique and defines the node order of every matrix. ``type`` and
    ``instance`` feed the pool tie-break and become "" when absent; ``pre``/``post`` feed the outside
    fractions and become 0 when absent; ``transmitter`` is the first column whose lower-cased name is a
    known transmitter header (the sign policy reads it).
    """
    path = Path(path).absolute()
    label = path.name
    header = _header(path, label)
    lower = [name.lower() for name in header]
    body_id = _require(header, path, label, "bodyId", _BODY_ID_NAMES)
    optional = {key: _find(header, (key,)) for key in ("type", "instance", "pre", "post")}
    transmitter = next((header[i] for i, name in enumerate(lower) if name in TRANSMITTER_COLUMN_NAMES), None)

    kinds = {body_id: _ID}
    for key, column in optional.items():
        if column is not None:
            kinds[column] = _COUNT if key in ("pre", "post") else _TEXT
    if transmitter is not None:
        kinds[transmitter] = _TEXT
    table = _read(path, label, kinds)
    if table.num_rows == 0:
        raise BPUInputError(f"{label} ({path}) has a header but no neuron rows; expected one row per neuron "
                            f"with at least a bodyId column")

    ids = _ids(table.column(body_id), path, label, body_id)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    duplicated = ids[1:] == ids[:-1]
    if duplicated.any():
        dup_ids = np.unique(ids[1:][duplicated])
        raise BPUInputError(
            f"{label} ({path}): column '{body_id}' has {dup_ids.size} duplicated bodyId value(s): "
            f"{_listing(dup_ids)}. Expected every neuron exactly once (node order is the sorted unique ids); "
            f"deduplicate the export.")

    def text(column: str | None) -> np.ndarray:
        if column is None:
            return np.full(ids.size, "", dtype=object)
        return table.column(column).to_numpy(zero_copy_only=False)[order]

    def count(column: str | None) -> np.ndarray:
        if column is None:
            return np.zeros(ids.size)
        return _counts(table.column(column), path, label, column)[order]

    return pd.DataFrame({
        "bodyId": ids,
        "type": text(optional["type"]),
        "instance": text(optional["instance"]),
        "pre": count(optional["pre"]),
        "post": count(optional["post"]),
        "transmitter": text(transmitter),
    })


def read_roi_counts(path: str | Path | None) -> pd.DataFrame:
    """``roi_counts.csv`` -> ``bodyId, roi, pre, post``; an absent file gives an empty table.

    The file is optional (without it every synapse counts as outside the primary ROIs), so ``None`` or a
    missing path is not an error. Header names are matched case-insensitively because exports written by
    different tools disagree on ``bodyId``/``bodyid``/``body_id``. Rows are kept as they are: ids need not
    be in ``neurons.csv`` (FlyWire MB exports list partner neurons too; pools merge onto neurons).
    """
    if path is None or not Path(path).exists():
        return pd.DataFrame({"bodyId": np.array([], np.int64), "roi": np.array([], dtype=object),
                             "pre": np.array([], np.float64), "post": np.array([], np.float64)})
    path = Path(path).absolute()
    label = path.name
    header = _header(path, label)
    body_id = _require(header, path, label, "bodyId", _BODY_ID_NAMES)
    roi = _require(header, path, label, "roi", ("roi",))
    pre, post = _find(header, ("pre",)), _find(header, ("post",))
    kinds = {body_id: _ID, roi: _TEXT}
    kinds.update({column: _COUNT for column in (pre, post) if column is not None})
    table = _read(path, label, kinds)
    ids = _ids(table.column(body_id), path, label, body_id)
    return pd.DataFrame({
        "bodyId": ids,
        "roi": table.column(roi).to_numpy(zero_copy_only=False),
        "pre": np.zeros(ids.size) if pre is None else _counts(table.column(pre), path, label, pre),
        "post": np.zeros(ids.size) if post is None else _counts(table.column(post), path, label, post),
    })


def read_connections(path: str | Path, body_ids: np.ndarray) -> pd.DataFrame:
    """``connections.csv`` -> ``bodyId_pre, bodyId_post, weight``, one row per directed pair, sorted.

    Every endpoint must be one of ``body_ids`` (the neurons of the same export): an edge to an unknown
    neuron means the two files come from different neuron sets, which would silently drop or misplace
    synapses. Weights must be finite and > 0. Rows repeating a (pre, post) pair are summed, because
    per-ROI connection tables list one row per pair and ROI. ``attrs["source_rows"]`` keeps the row count
    of the file for provenance.
    """
    path = Path(path).absolute()
    label = path.name
    header = _header(path, label)
    pre_col = _require(header, path, label, "bodyId_pre", ("bodyid_pre",))
    post_col = _require(header, path, label, "bodyId_post", ("bodyid_post",))
    weight_col = _require(header, path, label, "weight", ("weight",))
    table = _read(path, label, {pre_col: _ID, post_col: _ID, weight_col: _WEIGHT})
    rows = table.num_rows
    if rows == 0:
        raise BPUInputError(f"{label} ({path}) has a header but no edge rows; expected one row per directed "
                            f"pair ({', '.join(CONNECTION_COLUMNS)}), at least one")
    # Hand the columns over one at a time so each Arrow buffer is freed once its numpy copy exists.
    columns = [table.column(name) for name in (pre_col, post_col, weight_col)]
    del table
    pre = _ids(columns.pop(0), path, label, pre_col)
    post = _ids(columns.pop(0), path, label, post_col)
    weight = _column_numpy(columns.pop(0), np.nan)
    if not (np.isfinite(weight) & (weight > 0)).all():
        _diagnose(path, label, weight_col, _WEIGHT)

    known = np.asarray(body_ids, dtype=np.int64)
    if known.size > 1 and (known[1:] < known[:-1]).any():
        known = np.sort(known)
    code, pre_known, post_known = _pair_codes(known, pre, post)
    if not (pre_known.all() and post_known.all()):
        _unknown_endpoints(path, label, {pre_col: (pre, pre_known), post_col: (post, post_known)}, known.size)
    del pre_known, post_known
    if (code[1:] < code[:-1]).any():
        order = np.argsort(code, kind="stable")
        code, pre, post, weight = code[order], pre[order], post[order], weight[order]
        del order
    new_pair = np.empty(rows, dtype=bool)
    new_pair[0] = True
    np.not_equal(code[1:], code[:-1], out=new_pair[1:])
    del code
    if not new_pair.all():
        starts = np.flatnonzero(new_pair)
        pre, post, weight = pre[starts], post[starts], np.add.reduceat(weight, starts)
    frame = pd.DataFrame({"bodyId_pre": pre, "bodyId_post": post, "weight": weight}, copy=False)
    frame.attrs["source_rows"] = rows
    return frame


def load_exports(directory: str | Path) -> Exports:
    """Validate and load one export directory (neurons.csv and connections.csv required, roi_counts.csv optional)."""
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise BPUInputError(f"export directory {directory} does not exist or is not a directory; expected a "
                            f"directory holding neurons.csv, connections.csv and optionally roi_counts.csv")
    missing = [name for name in ("neurons.csv", "connections.csv") if not (directory / name).is_file()]
    if missing:
        present = sorted(p.name for p in directory.iterdir())
        raise BPUInputError(f"export directory {directory} lacks {', '.join(missing)}; files present: "
                            f"{present or 'none'}. Expected neurons.csv and connections.csv (roi_counts.csv "
                            f"is optional)")
    neurons = read_neurons(directory / "neurons.csv")
    roi_counts = read_roi_counts(directory / "roi_counts.csv")
    connections = read_connections(directory / "connections.csv", neurons["bodyId"].to_numpy())
    return Exports(neurons=neurons, roi_counts=roi_counts, connections=connections, directory=directory)


# --- header handling ---------------------------------------------------------------------------------

def _header(path: Path, label: str) -> list[str]:
    """The header row, read on its own so column names can be resolved before the typed read."""
    if not path.is_file():
        raise BPUInputError(f"{label}: file {path} does not exist")
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise BPUInputError(f"{label} ({path}) is not UTF-8 text ({error}); expected a CSV export") from error
    if not header or not any(name.strip() for name in header):
        raise BPUInputError(f"{label} ({path}) is empty: no header row. Expected a CSV file whose first "
                            f"line names the columns")
    return header


def _find(header: list[str], names: Iterable[str]) -> str | None:
    """First header entry matching one of ``names`` case-insensitively, exact spelling preferred."""
    names = tuple(names)
    for column in header:
        if column in names:
            return column
    return next((column for column in header if column.lower() in names), None)


def _require(header: list[str], path: Path, label: str, canonical: str, names: tuple[str, ...]) -> str:
    column = _find(header, names)
    if column is None:
        accepted = ", ".join(sorted({canonical, *names}))
        raise BPUInputError(f"{label} ({path}) has no column '{canonical}' (accepted spellings, any case: "
                            f"{accepted}); columns found: {header}")
    return column


# --- typed reading ------------------------------------------------------------------------------------

def _read(path: Path, label: str, kinds: dict[str, str]) -> pa.Table:
    """Read only ``kinds``' columns with their final Arrow types (ids straight to int64, never float)."""
    convert = pacsv.ConvertOptions(include_columns=list(kinds),
                                   column_types={column: _ARROW_TYPES[kind] for column, kind in kinds.items()})
    try:
        return pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=True),
                              convert_options=convert)
    except pa.ArrowInvalid as error:
        # A value did not convert (or the CSV is malformed): find which column and which values.
        for column, kind in kinds.items():
            if kind != _TEXT:
                _diagnose(path, label, column, kind, error)
        raise BPUInputError(f"{label} ({path}) could not be parsed as CSV: {error}") from error


def _ids(values: pa.ChunkedArray, path: Path, label: str, column: str) -> np.ndarray:
    """An id column as a contiguous int64 array; empty/NaN cells (Arrow nulls) are reported, not filled."""
    if values.null_count:
        _diagnose(path, label, column, _ID)
    return _column_numpy(values, 0)


def _counts(values: pa.ChunkedArray, path: Path, label: str, column: str) -> np.ndarray:
    """A ``pre``/``post`` synapse-count column as float64, empty cells -> 0, negatives/inf rejected."""
    counts = _column_numpy(values, 0.0)
    if not (np.isfinite(counts) & (counts >= 0)).all():
        _diagnose(path, label, column, _COUNT)
    return counts


def _column_numpy(values: pa.ChunkedArray, fill: float) -> np.ndarray:
    if values.null_count:
        values = values.fill_null(fill)
    array = values.to_numpy()
    # A single-chunk column converts zero-copy into a read-only array; callers and users may write.
    return array if array.flags.writeable else array.copy()


def _pair_codes(known: np.ndarray, pre: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, ...]:
    """One int64 code ``pre_index * N + post_index`` per edge, plus whether each endpoint is a known id.

    Sorting codes sorts edges by (pre, post) because index order is id order; the code fits int64 for any
    neuron count below 3e9. The lookup runs in blocks so its temporaries stay small on 15 M-edge tables.
    """
    n = known.size
    code = np.zeros(pre.size, dtype=np.int64)
    pre_known = np.zeros(pre.size, dtype=bool)
    post_known = np.zeros(pre.size, dtype=bool)
    if n == 0:  # no neurons at all: every endpoint is unknown
        return code, pre_known, post_known
    for start in range(0, pre.size, _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        pre_index = _locate(known, pre[block], pre_known[block])
        post_index = _locate(known, post[block], post_known[block])
        np.multiply(pre_index, n, out=code[block])
        code[block] += post_index
    return code, pre_known, post_known


def _locate(sorted_ids: np.ndarray, ids: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` in ``sorted_ids``; ``found`` receives whether each id is actually there."""
    index = np.searchsorted(sorted_ids, ids)
    np.minimum(index, sorted_ids.size - 1, out=index)
    np.equal(sorted_ids[index], ids, out=found)
    return index


# --- error messages ------------------------------------------------------------------------------------

def _diagnose(path: Path, label: str, column: str, kind: str, arrow_error: Exception | None = None) -> None:
    """Re-read one column as text (streamed in blocks) and raise naming its invalid values.

    Runs only after a fast vectorised check failed, so its cost never touches valid inputs. Returns
    without raising only if the column is fine, which lets the caller try the next column.
    """
    convert = pacsv.ConvertOptions(include_columns=[column], column_types={column: pa.string()})
    shown: list[str] = []
    total = 0
    offset = 0
    try:
        reader = pacsv.open_csv(path, convert_options=convert)
        for batch in reader:
            text = pc.utf8_trim_whitespace(batch.column(0))
            reasons = _reasons(text, kind)
            bad = np.flatnonzero(reasons != "")
            total += bad.size
            for row in bad[:_SHOWN - len(shown)]:
                shown.append(f"row {offset + row + 1}: {text[int(row)].as_py()!r} ({reasons[row]})")
            offset += batch.num_rows
    except pa.ArrowInvalid as error:
        raise BPUInputError(f"{label} ({path}) could not be parsed as CSV: {error}") from error
    if total:
        raise BPUInputError(
            f"{label} ({path}): column '{column}' has {total} invalid value(s); "
            f"{'first ' + str(len(shown)) if total > len(shown) else 'all'} shown ({_ROW_NOTE}): "
            f"{'; '.join(shown)}. Expected {_EXPECTED[kind]}.")
    if arrow_error is None:
        # The fast check and the text diagnosis disagree (an exotic spelling); still stop with the column.
        raise BPUInputError(f"{label} ({path}): column '{column}' failed validation. Expected {_EXPECTED[kind]}.")


def _reasons(text: pa.Array, kind: str) -> np.ndarray:
    """Per value, why it is invalid for ``kind`` ("" when valid); vectorised over one block."""
    n = len(text)
    reasons = np.full(n, "", dtype=object)
    missing = pc.is_in(text, value_set=_NULL_TEXTS).to_numpy(zero_copy_only=False)
    if kind == _ID:
        integer = pc.match_substring_regex(text, _INTEGER_TEXT).to_numpy(zero_copy_only=False)
        digits = pc.replace_substring_regex(text, r"^-?0*", "")
        negative = pc.starts_with(text, "-").to_numpy(zero_copy_only=False)
        length = pc.utf8_length(digits).to_numpy()
        beyond_max = pc.greater(digits, _INT64_MAX_DIGITS).to_numpy(zero_copy_only=False)
        beyond_min = pc.greater(digits, _INT64_MIN_DIGITS).to_numpy(zero_copy_only=False)
        overflow = integer & ((length > 19) | ((length == 19) & np.where(negative, beyond_min, beyond_max)))
        reasons[~integer] = "not an integer"
        reasons[overflow] = "does not fit int64"
        reasons[missing] = "missing id"
        return reasons
    numeric = pc.match_substring_regex(text, _NUMBER_TEXT).to_numpy(zero_copy_only=False)
    values = pc.cast(pc.if_else(pa.array(numeric), text, "0"), pa.float64()).to_numpy()
    reasons[~numeric] = "not a number"
    if kind == _WEIGHT:
        reasons[numeric & np.isnan(values)] = "NaN"
        reasons[numeric & (values <= 0)] = "not > 0"
        reasons[numeric & np.isinf(values)] = "infinite"
        reasons[missing] = "empty or NaN"
    else:
        reasons[numeric & (values < 0)] = "negative"
        reasons[numeric & np.isinf(values)] = "infinite"
        reasons[missing] = ""
    return reasons


def _listing(values: np.ndarray) -> str:
    """``a, b, c (first 3 of 10)`` so a message stays short however many values are wrong."""
    head = ", ".join(str(v) for v in values[:_SHOWN].tolist())
    return head if values.size <= _SHOWN else f"{head} (first {_SHOWN} of {values.size})"


def _unknown_endpoints(path: Path, label: str, columns: dict[str, tuple[np.ndarray, np.ndarray]],
                       neuron_count: int) -> None:
    parts = []
    for column, (ids, known) in columns.items():
        unknown = ~known
        if unknown.any():
            rows = np.flatnonzero(unknown)[:_SHOWN] + 1
            parts.append(f"column '{column}': {int(unknown.sum())} edge(s), {np.unique(ids[unknown]).size} "
                         f"distinct id(s) not in neurons.csv: {_listing(np.unique(ids[unknown]))} "
                         f"(at rows {', '.join(map(str, rows.tolist()))}{', ...' if unknown.sum() > _SHOWN else ''})")
    raise BPUInputError(
        f"{label} ({path}): {'; '.join(parts)}. Expected every bodyId_pre/bodyId_post to be one of the "
        f"{neuron_count} bodyIds in neurons.csv; this connections.csv looks like an export from a different "
        f"neuron set (or neurons.csv is incomplete). Re-export both files from the same query.")
