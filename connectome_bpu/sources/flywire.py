"""FlyWire release files (Zenodo record 10676866) and their normalisation into the export schema.

Three substrates come from the same two files (``docs/method.md#substrates`` describes how each is
built):

* ``flywire_whole``: every proofread neuron of the release and every connection between them;
* ``flywire_mushroom_body``: the neurons with a synapse in a mushroom-body neuropil, their whole-brain
  synapse totals and transmitter votes, and the connections inside the MB neuropils;
* ``flywire_optic_lobe``: the same selection over the optic neuropils (config
  ``flywire.optic_lobe.neuropils``), optionally capped to ``flywire.optic_lobe.max_neurons`` neurons grown
  from its input neurons (:func:`cap_selection`).

Why the normalisation is written the way it is:

* **Memory.** The connections file has 16,847,997 rows (one per pre, post and neuropil). The original
  benchmark code loads it whole into pandas and groups it, which needs many GiB; here only the needed
  columns are read, a batch of rows at a time, and everything is reduced to integer codes on the fly:
  a root id becomes its index in the sorted proofread-id list (a hash lookup, ``pd.Index.get_indexer``),
  a (pre, post) pair the code ``pre * N + post``, a (neuron, neuropil) pair the code
  ``neuropil * N + neuron``. Per-neuron sums are ``np.bincount``s, per-code sums are reduced per batch
  (``np.unique`` + ``np.bincount``) and merged once at the end. No row-level pandas frame and no Python
  object per row is ever built (``bench/bench_flywire_normalise.py`` measures it).
* **Ids stay int64.** Root ids have 18 digits, beyond float64's exact integers (2**53). numpy may load
  the root-id file as uint64, and comparing uint64 with int64 promotes both to float64, silently merging
  neighbouring ids. The ids are therefore converted to int64 once, in :func:`load_root_ids`, refusing
  anything that does not fit, and compared only as int64 afterwards (``docs/departures.md#int64-ids``).
* **Edges to unknown neurons are dropped and counted.** A connection row whose pre or post id is not in
  the proofread root-id list cannot be placed in the matrix, and the strict export reader rejects such
  edges; the number of dropped rows and synapses, and a few of the ids, go into the provenance.
* **Nothing unverified is used.** :func:`write_flywire_exports` checks both files against the pinned
  size and MD5 again before reading them, so a cache damaged or edited after the download cannot slip
  through. Snakemake runs the download rule only for a missing file, so a corrupt cached file is caught
  here, where it is read: it is deleted and fetched again from the configured URL with the same
  :func:`~connectome_bpu.sources.download.fetch` the download rule uses, and the step fails with an
  error saying what to do if that download does not produce a verified file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import scipy.sparse as sp

from ..errors import BPUInputError
from ..pools import assign_region_pools
from ..provenance import file_record, utc_now
from ..substrates import FLYWIRE_MB_NEUROPILS, FLYWIRE_OPTIC_NEUROPILS, KINDS
from . import write_export_set
from .download import DownloadError, ExpectedFile, fetch, verify

log = logging.getLogger(__name__)

ZENODO_RECORD = "10676866"
DEFAULT_BASE_URL = f"https://zenodo.org/records/{ZENODO_RECORD}/files"

# Zenodo's published sizes and MD5s of the release-783 files.
PINNED = {
    "783": {
        "proofread_root_ids_783.npy": ExpectedFile("proofread_root_ids_783.npy", 1_114_168,
                                                   "e0e6c19732fd8c7a4e39a2d170105421"),
        "proofread_connections_783.feather": ExpectedFile("proofread_connections_783.feather", 852_022_274,
                                                          "f48f972d262323a102aed49af1396b8a"),
    },
}

MB_NEUROPILS = FLYWIRE_MB_NEUROPILS
OPTIC_NEUROPILS = FLYWIRE_OPTIC_NEUROPILS
OPTIC_LOBE_KEY = "flywire.optic_lobe"
MAX_NEURONS_KEY = f"{OPTIC_LOBE_KEY}.max_neurons"
CAP_RULE = "inputs_then_downstream_breadth_first"   # the rule of cap_selection, named in the provenance

PRE, POST, SYN, NEUROPIL = "pre_pt_root_id", "post_pt_root_id", "syn_count", "neuropil"
MANDATORY_COLUMNS = (PRE, POST, SYN)
# Transmitter probability columns of the connections file and the label each one votes for.
TRANSMITTERS = {"ach_avg": "ACh", "gaba_avg": "GABA", "glut_avg": "Glu", "oct_avg": "Oct", "ser_avg": "5HT",
                "da_avg": "DA"}
# Only labels the signed matrix can use survive the vote: ACh excites, GABA and Glu inhibit; other
# transmitters have no sign there (docs/method.md#signs).
KEPT_LABELS = ("ACh", "GABA", "Glu")
WHOLE_BRAIN_ROI = "whole_brain"
CONNECTOMES = ("flywire_whole", "flywire_mushroom_body", "flywire_optic_lobe")

_EXAMPLES = 5  # unknown ids quoted in the provenance; the counts are always complete


# --- release files and download -------------------------------------------------------------------------

def root_ids_name(release: str) -> str:
    return f"proofread_root_ids_{release}.npy"


def connections_name(release: str) -> str:
    return f"proofread_connections_{release}.feather"


def release_files(release: str, overrides: dict | None = None) -> dict[str, ExpectedFile]:
    """The two files of ``release`` (root ids first) with the size and MD5 each must have.

    Release 783 is pinned in the package. Any other release (or a re-published 783) needs the values in
    ``overrides`` (``{file name: {bytes: N, md5: HEX}}``, the config key ``flywire.files``), because a
    download that cannot be verified is exactly what this module exists to prevent.
    """
    release = str(release)
    names = (root_ids_name(release), connections_name(release))
    pinned = PINNED.get(release, {})
    given = {}
    for name, value in (overrides or {}).items():
        if name not in names:
            raise BPUInputError(f"config key 'flywire.files' names {name!r}, which is not a file of FlyWire "
                                f"release {release}; expected only {list(names)}")
        given[name] = _expected_from_config(name, value)
    missing = [name for name in names if name not in given and name not in pinned]
    if missing:
        raise BPUInputError(
            f"FlyWire release {release!r} has no pinned checksums (pinned releases: {sorted(PINNED)}) and config "
            f"key 'flywire.files' does not give them for {missing}. Add 'flywire.files: {{<name>: {{bytes: N, "
            f"md5: HEX}}}}' for {list(names)} with the values Zenodo publishes for that release")
    return {name: given.get(name) or pinned[name] for name in names}


def _expected_from_config(name: str, value: object) -> ExpectedFile:
    """``{bytes, md5}`` from the config, checked here because a typo would make every download fail."""
    if not isinstance(value, dict) or set(value) != {"bytes", "md5"}:
        raise BPUInputError(f"config key 'flywire.files.{name}' must be a mapping with exactly the keys 'bytes' "
                            f"and 'md5'; got {value!r}")
    size, md5 = value["bytes"], value["md5"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BPUInputError(f"config key 'flywire.files.{name}.bytes' must be a positive integer; got {size!r}")
    if not isinstance(md5, str) or len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5.lower()):
        raise BPUInputError(f"config key 'flywire.files.{name}.md5' must be 32 hex digits; got {md5!r}")
    return ExpectedFile(name, size, md5.lower())


def file_url(base_url: str, name: str) -> str:
    """Zenodo's direct-download URL of one file of a record (``<base>/<name>?download=1``)."""
    return f"{base_url.rstrip('/')}/{quote(name)}?download=1"


def fetch_release(release: str, cache_dir: str | Path, *, base_url: str = DEFAULT_BASE_URL,
                  overrides: dict | None = None, **fetch_kwargs) -> dict[str, Path]:
    """Download (or reuse verified copies of) both files of ``release`` into ``cache_dir``.

    The small root-id file comes first, so a wrong base URL fails in a second rather than after the large
    file. ``fetch_kwargs`` go to :func:`connectome_bpu.sources.download.fetch`.
    """
    cache_dir = Path(cache_dir)
    return {name: fetch(file_url(base_url, name), cache_dir / name, expected, **fetch_kwargs)
            for name, expected in release_files(release, overrides).items()}


# --- reading ------------------------------------------------------------------------------------------

def load_root_ids(path: str | Path) -> np.ndarray:
    """The proofread root ids as a sorted, unique int64 array (the node order of ``flywire_whole``).

    This is the one place where the ids change type: uint64 (as numpy may load them) becomes int64 here,
    and values that do not fit int64 are refused instead of wrapping around to negative ids.
    """
    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BPUInputError(f"root-id file {path} cannot be read as a numpy .npy array: {error}") from error
    if raw.ndim != 1 or raw.dtype.kind not in "iu" or raw.size == 0:
        raise BPUInputError(f"root-id file {path} holds a {raw.dtype} array of shape {raw.shape}; expected a "
                            f"non-empty one-dimensional integer array of FlyWire root ids")
    if raw.dtype.kind == "u" and raw.dtype.itemsize == 8:
        too_big = raw >= np.uint64(2**63)
        if too_big.any():
            raise BPUInputError(f"root-id file {path}: {int(too_big.sum())} id(s) do not fit int64 (>= 2**63), "
                                f"e.g. {int(raw[too_big][0])}; FlyWire root ids are below 2**63, so this file "
                                f"is not a FlyWire root-id list")
    ids = np.unique(raw.astype(np.int64))
    if ids.size != raw.size:
        log.warning("root-id file %s lists %d ids, %d of them more than once; using the %d distinct ids",
                    path, raw.size, raw.size - ids.size, ids.size)
    return ids


@dataclass
class _Layout:
    """Which columns of the connections file are used (only those present; three are mandatory)."""

    path: Path
    has_neuropil: bool
    transmitters: list[str]

    @classmethod
    def read(cls, path: str | Path) -> _Layout:
        path = Path(path)
        try:
            names = ds.dataset(path, format="feather").schema.names
        except (OSError, pa.ArrowInvalid) as error:
            raise BPUInputError(f"connections file {path} cannot be opened as an Arrow/Feather (v2) table: "
                                f"{error}") from error
        missing = [column for column in MANDATORY_COLUMNS if column not in names]
        if missing:
            raise BPUInputError(f"connections file {path} lacks the mandatory column(s) {missing}; columns "
                                f"found: {names}. Expected {list(MANDATORY_COLUMNS)} (plus optionally "
                                f"'{NEUROPIL}' and the transmitter columns {list(TRANSMITTERS)})")
        return cls(path, NEUROPIL in names, [column for column in TRANSMITTERS if column in names])

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.Table]:
        """Tables of about ``batch_rows`` rows holding only ``columns``.

        Feather files store record batches of 64 Ki rows (pandas/pyarrow default) or one giant batch; the
        scanner splits giant ones and the small ones are gathered here, so that each numpy step works on
        a sizeable block and the per-batch partial sums stay few.
        """
        scanner = ds.dataset(self.path, format="feather").scanner(
            columns=columns, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1)
        pending, rows = [], 0
        for batch in scanner.to_batches():
            pending.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                yield pa.Table.from_batches(pending)
                pending, rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending)


class _Neuropils:
    """Neuropil names -> small int codes, consistent across batches (each batch has its own dictionary)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        return list(self.index)

    def codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """int64 code per row; -1 where the neuropil is missing."""
        parts = []
        for chunk in column.chunks:
            encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
            # The trailing -1 is what a missing value (local index -1) looks up.
            lookup = np.array([self.index.setdefault(str(name), len(self.index))
                               for name in encoded.dictionary.to_pylist()] + [-1], dtype=np.int64)
            local = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
            parts.append(lookup[local])
        return np.concatenate(parts) if parts else np.empty(0, np.int64)


@dataclass
class _Dropped:
    """Rows dropped because an endpoint is not a proofread root id (counted, never silent)."""

    rows: int = 0
    unknown_pre_rows: int = 0
    unknown_post_rows: int = 0
    synapses: float = 0.0
    examples: list[int] = field(default_factory=list)

    def stats(self) -> dict:
        return {"rows_dropped_unknown_id": self.rows, "rows_with_unknown_pre": self.unknown_pre_rows,
                "rows_with_unknown_post": self.unknown_post_rows, "synapses_dropped_unknown_id": self.synapses,
                "unknown_id_examples": self.examples}


@dataclass
class _Rows:
    """One batch of connection rows whose endpoints are known: indices into the sorted root ids."""

    pre: np.ndarray
    post: np.ndarray
    syn: np.ndarray
    neuropil: np.ndarray | None
    transmitters: list[np.ndarray]

    def subset(self, mask: np.ndarray) -> _Rows:
        return _Rows(self.pre[mask], self.post[mask], self.syn[mask],
                     None if self.neuropil is None else self.neuropil[mask], [t[mask] for t in self.transmitters])


def _decode(table: pa.Table, root_index: pd.Index, neuropils: _Neuropils | None, dropped: _Dropped | None,
            path: Path) -> _Rows:
    """Turn one batch into index arrays, dropping (and, if ``dropped`` is given, counting) unknown ids.

    ``root_index`` is ``pd.Index`` of the sorted root ids: its hash lookup is about four times faster than a
    binary search over 139 k ids, which took half of a streamed pass.
    """
    pre_ids = _id_column(table, PRE, path)
    post_ids = _id_column(table, POST, path)
    pre = root_index.get_indexer(pre_ids)    # position in the sorted ids, -1 where unknown
    post = root_index.get_indexer(post_ids)
    pre_known, post_known = pre >= 0, post >= 0
    syn = _float_column(table, SYN)
    keep = pre_known & post_known
    if dropped is not None and not keep.all():
        dropped.rows += int((~keep).sum())
        dropped.unknown_pre_rows += int((~pre_known).sum())
        dropped.unknown_post_rows += int((~post_known).sum())
        dropped.synapses += float(syn[~keep].sum())
        if len(dropped.examples) < _EXAMPLES:
            unknown = np.unique(np.concatenate([pre_ids[~pre_known], post_ids[~post_known]]))
            dropped.examples.extend(unknown[:_EXAMPLES - len(dropped.examples)].tolist())
    codes = neuropils.codes(table.column(NEUROPIL)) if neuropils is not None else None
    transmitters = [_float_column(table, column) for column in TRANSMITTERS if column in table.column_names]
    rows = _Rows(pre, post, syn, codes, transmitters)
    return rows if keep.all() else rows.subset(keep)


def _id_column(table: pa.Table, column: str, path: Path) -> np.ndarray:
    """A root-id column as int64 (a uint64 column is converted only if every value fits)."""
    values = table.column(column)
    integer = pa.types.is_integer(values.type)
    if not integer or values.null_count:
        problem = f"{values.null_count} empty cell(s)" if integer else f"type {values.type}"
        raise BPUInputError(f"connections file {path}: column '{column}' has {problem}; expected integer root ids "
                            f"on every row")
    try:
        return pc.cast(values, pa.int64()).to_numpy()
    except pa.ArrowInvalid as error:
        raise BPUInputError(f"connections file {path}: column '{column}' has ids that do not fit int64: "
                            f"{error}") from error


def _float_column(table: pa.Table, column: str) -> np.ndarray:
    """A numeric column as float64 with empty/NaN cells as 0 (pandas' group sums skip them likewise)."""
    values = pc.cast(table.column(column), pa.float64()).to_numpy()   # empty cells arrive as NaN
    return np.nan_to_num(values, nan=0.0) if np.isnan(values).any() else values


def _locate(root_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each id in the sorted ``root_ids`` (int64) and whether it is actually there (bool)."""
    index = np.searchsorted(root_ids, ids)
    np.minimum(index, root_ids.size - 1, out=index)
    return index, root_ids[index] == ids


# --- accumulation ---------------------------------------------------------------------------------------

class _CodeSums:
    """Sums of weights per int64 code, reduced batch by batch and merged once at the end."""

    def __init__(self) -> None:
        self._codes: list[np.ndarray] = []
        self._sums: list[np.ndarray] = []

    def add(self, codes: np.ndarray, weights: np.ndarray) -> None:
        if codes.size:
            unique, inverse = np.unique(codes, return_inverse=True)
            self._codes.append(unique)
            self._sums.append(np.bincount(inverse, weights=weights, minlength=unique.size))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct codes and their sums (every code seen, even with weight 0)."""
        if not self._codes:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        codes, sums = np.concatenate(self._codes), np.concatenate(self._sums)
        self._codes, self._sums = [], []
        if len(codes) and (codes[1:] <= codes[:-1]).any():
            unique, inverse = np.unique(codes, return_inverse=True)
            sums = np.bincount(inverse, weights=sums, minlength=unique.size)
            codes = unique
        return codes, sums


class _NeuronTotals:
    """Per neuron: synapses as pre and as post, and the transmitter scores of its outgoing synapses."""

    def __init__(self, n: int, transmitters: list[str]) -> None:
        self.pre = np.zeros(n)
        self.post = np.zeros(n)
        self.labels = [TRANSMITTERS[column] for column in transmitters]
        self.scores = np.zeros((n, len(transmitters)))

    def add(self, rows: _Rows) -> None:
        n = self.pre.size
        self.pre += np.bincount(rows.pre, weights=rows.syn, minlength=n)
        self.post += np.bincount(rows.post, weights=rows.syn, minlength=n)
        for k, probability in enumerate(rows.transmitters):
            self.scores[:, k] += np.bincount(rows.pre, weights=rows.syn * probability, minlength=n)

    def predicted_nt(self, nt_confidence: float) -> np.ndarray:
        """The transmitter vote (``docs/method.md#signs``): argmax of the synapse-weighted scores,
        kept only if it carries at least ``nt_confidence`` of the total score and is ACh, GABA or Glu."""
        labels = np.full(self.pre.size, "", dtype=object)
        if not self.labels:
            return labels
        total = self.scores.sum(axis=1)
        winner = self.scores.argmax(axis=1)   # a tie goes to the first column in TRANSMITTERS order
        best = self.scores[np.arange(self.pre.size), winner]
        confidence = np.divide(best, total, out=np.zeros_like(total), where=total > 0)
        confident = confidence >= nt_confidence
        for k, label in enumerate(self.labels):
            if label in KEPT_LABELS:
                labels[confident & (winner == k)] = label
        return labels


class _RoiTotals:
    """Per (neuron, neuropil): synapses as pre and as post; rows without a neuropil are counted apart."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pre = _CodeSums()
        self.post = _CodeSums()
        self.rows_without_neuropil = 0

    def add(self, rows: _Rows) -> None:
        has = rows.neuropil >= 0
        self.rows_without_neuropil += int(has.size - has.sum())
        if not has.all():
            rows = rows.subset(has)
        base = rows.neuropil * self.n
        self.pre.add(base + rows.pre, rows.syn)
        self.post.add(base + rows.post, rows.syn)

    def frame(self, root_ids: np.ndarray, names: list[str]) -> pd.DataFrame:
        """``bodyId, roi, pre, post`` (the outer merge of the pre and post sums, absent side 0), sorted."""
        pre_codes, pre_sums = self.pre.result()
        post_codes, post_sums = self.post.result()
        # Each side is sorted and distinct, so a sort and an adjacent-difference test give the union
        # (cheaper than np.union1d's hashing at 10 M codes).
        codes = np.concatenate([pre_codes, post_codes])
        codes.sort()
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
        pre = np.zeros(codes.size)
        post = np.zeros(codes.size)
        pre[np.searchsorted(codes, pre_codes)] = pre_sums
        post[np.searchsorted(codes, post_codes)] = post_sums
        neuropil, neuron = np.divmod(codes, self.n)
        labels = np.array(names, dtype=object)
        rank = np.argsort(np.argsort(labels, kind="stable"), kind="stable")   # alphabetical position
        order = np.argsort(neuron * max(len(names), 1) + rank[neuropil])
        return pd.DataFrame({"bodyId": root_ids[neuron[order]], "roi": labels[neuropil[order]],
                             "pre": pre[order], "post": post[order]})


# --- normalisation --------------------------------------------------------------------------------------

def normalise_whole(root_ids_path: str | Path, connections_path: str | Path, *, nt_confidence: float = 0.70,
                    batch_rows: int = 2_000_000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """``flywire_whole`` (``docs/method.md#substrates``): neurons, roi_counts, connections and statistics.

    One pass over the connections file. Neurons are all proofread root ids (sorted), including those
    without any connection row; connections are summed over neuropils per (pre, post).
    """
    connections_path = Path(connections_path)
    root_ids = load_root_ids(root_ids_path)
    root_index = pd.Index(root_ids)
    n = root_ids.size
    layout = _Layout.read(connections_path)
    neuropils = _Neuropils() if layout.has_neuropil else None
    columns = [PRE, POST, SYN] + ([NEUROPIL] if layout.has_neuropil else []) + layout.transmitters
    dropped, totals, rois, pairs = _Dropped(), _NeuronTotals(n, layout.transmitters), _RoiTotals(n), _CodeSums()
    source_rows = 0
    for table in layout.batches(columns, batch_rows):
        source_rows += table.num_rows
        rows = _decode(table, root_index, neuropils, dropped, connections_path)
        del table
        totals.add(rows)
        if neuropils is not None:
            rois.add(rows)
        pairs.add(rows.pre * n + rows.post, rows.syn)

    connections = _connections_frame(pairs, root_ids, connections_path, "")
    neurons = _neurons_frame(root_ids, np.arange(n), totals, nt_confidence)
    if neuropils is not None:
        roi_counts = rois.frame(root_ids, neuropils.names)
    else:
        log.warning("%s has no '%s' column; roi_counts.csv gets one '%s' row per neuron with zero counts",
                    connections_path, NEUROPIL, WHOLE_BRAIN_ROI)
        roi_counts = pd.DataFrame({"bodyId": root_ids, "roi": np.full(n, WHOLE_BRAIN_ROI, dtype=object),
                                   "pre": np.zeros(n), "post": np.zeros(n)})
    stats = {"connectome": "flywire_whole", "root_ids": int(n), "source_rows": source_rows,
             "rows_used": source_rows - dropped.rows, **dropped.stats(),
             "rows_without_neuropil": rois.rows_without_neuropil, "neuropil_column": layout.has_neuropil,
             "neuropils": neuropils.names if neuropils is not None else [],
             **_table_stats(neurons, roi_counts, connections, layout.transmitters, nt_confidence)}
    return neurons, roi_counts, connections, stats


@dataclass(frozen=True)
class NeuropilSelection:
    """A substrate made of the neurons with a synapse in some neuropils (:func:`normalise_neuropils`).

    ``label`` prefixes its statistics keys (``<label>_source_rows``, ``<label>_neuropils``, ...).
    ``config_key`` is the config key the neuropils come from: a list the user wrote must match the file,
    so a neuropil without any row is an error naming that key; a list fixed by the package (None) only
    records the absent names, because a release may lack one of them.
    """

    connectome: str
    label: str
    neuropils: tuple[str, ...]
    config_key: str | None = None


def normalise_neuropils(root_ids_path: str | Path, connections_path: str | Path, selection: NeuropilSelection, *,
                        nt_confidence: float = 0.70,
                        batch_rows: int = 2_000_000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """A neuropil-selected substrate (``docs/method.md#substrates``): neurons with a synapse in the
    selection's neuropils.

    Two passes, because the body set must be known before the rows that touch it can be summed:

    1. rows in a selected neuropil give the body set (every pre and post id in them) and the connections
       (summed over the selected neuropils per pair, so only synapses inside the selection count);
    2. every row (any neuropil) with pre or post in the body set gives the neurons' ``pre``/``post``
       totals and transmitter votes (whole-brain values for those neurons) and ``roi_counts`` (which
       therefore also lists partner neurons outside the body set, counting only their synapses with it).
    """
    connections_path = Path(connections_path)
    wanted = [str(name) for name in selection.neuropils]
    label = selection.label
    root_ids = load_root_ids(root_ids_path)
    root_index = pd.Index(root_ids)
    n = root_ids.size
    layout = _Layout.read(connections_path)
    if not layout.has_neuropil:
        raise BPUInputError(f"connections file {connections_path} has no '{NEUROPIL}' column; the substrate "
                            f"{selection.connectome} selects rows by neuropil ({wanted}), so it needs that column")
    codes = _Neuropils()
    dropped, pairs = _Dropped(), _CodeSums()
    body = np.zeros(n, dtype=bool)
    source_rows = selected_source_rows = 0
    for table in layout.batches([PRE, POST, SYN, NEUROPIL], batch_rows):
        source_rows += table.num_rows
        rows = _decode(table, root_index, codes, dropped, connections_path)
        del table
        is_wanted = np.array([name in wanted for name in codes.names] + [False])  # index -1: no neuropil
        inside = rows.subset(is_wanted[rows.neuropil])
        selected_source_rows += inside.pre.size
        body[inside.pre] = True
        body[inside.post] = True
        pairs.add(inside.pre * n + inside.post, inside.syn)
    absent = [name for name in wanted if name not in codes.index]
    if absent and selection.config_key:
        raise BPUInputError(f"config key '{selection.config_key}' names neuropil(s) {absent} that have no row in "
                            f"connections file {connections_path}; expected neuropils of this release, which are "
                            f"{sorted(codes.names)}")
    if not body.any():
        raise BPUInputError(f"connections file {connections_path} has no row in the neuropils {wanted} (after "
                            f"dropping {dropped.rows} row(s) with unknown ids); neuropils present: "
                            f"{sorted(codes.names)}")

    totals, rois = _NeuronTotals(n, layout.transmitters), _RoiTotals(n)
    selected_rows = 0
    for table in layout.batches([PRE, POST, SYN, NEUROPIL] + layout.transmitters, batch_rows):
        rows = _decode(table, root_index, codes, None, connections_path)   # drops were counted in pass 1
        del table
        selected = rows.subset(body[rows.pre] | body[rows.post])
        selected_rows += selected.pre.size
        totals.add(selected)
        rois.add(selected)

    connections = _connections_frame(pairs, root_ids, connections_path, f" in the neuropils {wanted}")
    neurons = _neurons_frame(root_ids, np.flatnonzero(body), totals, nt_confidence)
    roi_counts = rois.frame(root_ids, codes.names)
    stats = {"connectome": selection.connectome, "root_ids": int(n), "source_rows": source_rows,
             "rows_used": source_rows - dropped.rows, **dropped.stats(), f"{label}_source_rows": selected_source_rows,
             "selected_rows": selected_rows, "rows_without_neuropil": rois.rows_without_neuropil,
             f"{label}_neuropils": wanted, f"{label}_neuropils_absent": absent, "neuropils": codes.names,
             **_table_stats(neurons, roi_counts, connections, layout.transmitters, nt_confidence)}
    return neurons, roi_counts, connections, stats


def normalise_mushroom_body(root_ids_path: str | Path, connections_path: str | Path, *,
                            neuropils: tuple[str, ...] | list[str] = MB_NEUROPILS, nt_confidence: float = 0.70,
                            batch_rows: int = 2_000_000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """``flywire_mushroom_body``: :func:`normalise_neuropils` over the MB neuropils (fixed by the package)."""
    selection = NeuropilSelection("flywire_mushroom_body", "mb", tuple(neuropils))
    return normalise_neuropils(root_ids_path, connections_path, selection, nt_confidence=nt_confidence,
                               batch_rows=batch_rows)


def normalise_optic_lobe(root_ids_path: str | Path, connections_path: str | Path, *,
                         neuropils: tuple[str, ...] | list[str] = OPTIC_NEUROPILS, max_neurons: int | None = None,
                         pools: dict | None = None, nt_confidence: float = 0.70,
                         batch_rows: int = 2_000_000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """``flywire_optic_lobe``: :func:`normalise_neuropils` over ``neuropils`` (config
    ``flywire.optic_lobe.neuropils``), then, if ``max_neurons`` is given, :func:`cap_selection`.

    ``pools`` are the region pool rule's settings (the substrate's ``graph.pools``), which decide the input
    neurons the cap keeps. The statistics describe the exported tables; the cap adds its own record.
    """
    selection = NeuropilSelection("flywire_optic_lobe", "optic", tuple(neuropils), f"{OPTIC_LOBE_KEY}.neuropils")
    neurons, roi_counts, connections, stats = normalise_neuropils(
        root_ids_path, connections_path, selection, nt_confidence=nt_confidence, batch_rows=batch_rows)
    stats["max_neurons"] = max_neurons
    if max_neurons is None:
        return neurons, roi_counts, connections, stats
    neurons, roi_counts, connections, stats["cap"] = cap_selection(
        neurons, roi_counts, connections, primary_rois=selection.neuropils, max_neurons=max_neurons, pools=pools)
    stats.update(_table_stats(neurons, roi_counts, connections, stats["transmitter_columns"], nt_confidence))
    return neurons, roi_counts, connections, stats


# --- the neuron cap -------------------------------------------------------------------------------------

def cap_selection(neurons: pd.DataFrame, roi_counts: pd.DataFrame, connections: pd.DataFrame, *,
                  primary_rois: tuple[str, ...] | list[str], max_neurons: int,
                  pools: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """At most ``max_neurons`` neurons of a region selection: input neurons and what they drive.

    Why not the first ``max_neurons`` neurons: root ids carry no anatomy, so a leading block in id order
    is an arbitrary, usually fragmented piece of the region that the task input, which enters at the
    sensory pool, may not reach at all. The rule instead:

    1. takes as *inputs* the neurons the region pool rule calls sensory
       (:func:`~connectome_bpu.pools.assign_region_pools` with ``primary_rois`` and the ``pools``
       settings): most of their input comes from outside the region. It seeds the same share of inputs
       as the whole selection has, ``round(max_neurons * inputs / neurons)``, those that drive the
       region most (synapses onto region neurons; ties: lower root id);
    2. grows downstream, breadth-first along the direction of the synapses: each round adds the
       not-yet-kept postsynaptic partners of the previous round, the most active first (synapses inside
       the region, in plus out; ties: lower root id), until the cap is reached or nothing new is
       reachable. Every kept neuron is therefore reachable from a kept input: the injected signal can
       reach it, whereas a neuron it cannot reach would sit silent in the frozen core;
    3. drops a seeded input none of whose targets was kept (it would take the task input and pass it
       nowhere), and refuses a cap that leaves no input or no output neuron (the pools step would fail).

    Connections stay when both ends are kept, ``roi_counts`` rows for kept neurons only; a neuron's
    ``pre``/``post`` and ROI counts stay its whole-brain values, so the pool rule calls the kept inputs
    sensory again. Each step is a sort with a root-id tie-break or a sparse matrix-vector product (one per
    round), so equal tables give equal ids and the cost stays in numpy/scipy at 100 k neurons. Returns
    the capped tables and a record for the provenance.
    """
    ids = neurons["bodyId"].to_numpy(np.int64)
    n = ids.size
    if max_neurons > n:
        raise BPUInputError(f"config key '{MAX_NEURONS_KEY}' is {max_neurons}, but the selection in the neuropils "
                            f"{list(primary_rois)} has only {n} neurons; expected at most {n}, or null for no cap")
    pre = np.searchsorted(ids, connections["bodyId_pre"].to_numpy(np.int64))
    post = np.searchsorted(ids, connections["bodyId_post"].to_numpy(np.int64))
    weight = connections["weight"].to_numpy(np.float64)
    drive = np.bincount(pre, weights=weight, minlength=n)
    activity = drive + np.bincount(post, weights=weight, minlength=n)
    pool_table = assign_region_pools(neurons, roi_counts, list(primary_rois), **(pools or {}))
    is_input, is_output = pool_table["is_sensory"].to_numpy(bool), pool_table["is_output"].to_numpy(bool)
    seeds = _seed_inputs(ids, is_input, drive, max_neurons)
    loops = pre != post   # a self-connection reaches nobody new
    targets = sp.csr_matrix((np.ones(int(loops.sum()), np.float32), (post[loops], pre[loops])), shape=(n, n))
    kept, rounds = _grow_downstream(targets, seeds, _rank(ids, activity), max_neurons)
    kept_targets = targets.T @ kept.astype(np.float32)   # per neuron: how many of its targets are kept
    silent = seeds[kept_targets[seeds] == 0]
    kept[silent] = False
    _require_both_ends(kept, is_input, is_output, seeds.size, max_neurons)

    kept_ids = ids[kept]
    keep_edges = kept[pre] & kept[post]
    keep_rois = _locate(kept_ids, roi_counts["bodyId"].to_numpy(np.int64))[1]
    record = {"rule": CAP_RULE, "max_neurons": max_neurons, "neurons_before": n, "neurons_after": int(kept_ids.size),
              "edges_before": len(connections), "edges_after": int(keep_edges.sum()),
              "roi_count_rows_before": len(roi_counts), "roi_count_rows_after": int(keep_rois.sum()),
              "input_neurons_before": int(is_input.sum()), "input_neurons_seeded": int(seeds.size),
              "seeded_inputs_dropped_without_kept_target": int(silent.size),
              "input_neurons_kept": int((kept & is_input).sum()), "output_neurons_before": int(is_output.sum()),
              "output_neurons_kept": int((kept & is_output).sum()), "rounds": rounds,
              "input_rule": {"primary_rois": list(primary_rois), "pools": dict(pools or {})},
              "kept_ids_sha256": hashlib.sha256(kept_ids.astype("<i8").tobytes()).hexdigest()}
    return (neurons[kept].reset_index(drop=True), roi_counts[keep_rois].reset_index(drop=True),
            connections[keep_edges].reset_index(drop=True), record)


def _require_both_ends(kept: np.ndarray, is_input: np.ndarray, is_output: np.ndarray, seeded: int,
                       max_neurons: int) -> None:
    """Refuse a cap whose neurons lack an input or an output neuron: here, with the cap named, rather than
    as an empty pool in the graph step."""
    if not (kept & is_input).any():
        raise BPUInputError(f"config key '{MAX_NEURONS_KEY}' is {max_neurons}: none of the {seeded} input "
                            f"neuron(s) it keeps has a kept postsynaptic partner, so the capped substrate would "
                            f"have no input neuron; expected a larger cap, or null for no cap")
    if not (kept & is_output).any():
        raise BPUInputError(f"config key '{MAX_NEURONS_KEY}' is {max_neurons}: the {int(kept.sum())} neurons it keeps "
                            f"include none of the selection's {int(is_output.sum())} output neuron(s) (output by "
                            f"the region pool rule), so the task could not be read out; expected a larger cap, or "
                            f"null for no cap")


def _rank(ids: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each neuron's position when sorted by ``score`` descending, then root id ascending (no ties left)."""
    rank = np.empty(ids.size, np.int64)
    rank[np.lexsort((ids, -score))] = np.arange(ids.size)
    return rank


def _seed_inputs(ids: np.ndarray, is_input: np.ndarray, drive: np.ndarray, max_neurons: int) -> np.ndarray:
    """The inputs a cap starts from: the selection's share of inputs, the strongest drivers first."""
    inputs = np.flatnonzero(is_input)
    n = ids.size
    count = (2 * max_neurons * inputs.size + n) // (2 * n)   # round(max_neurons * inputs / n), halves up
    if count < 1:
        if inputs.size == 0:
            raise BPUInputError(f"config key '{MAX_NEURONS_KEY}' is {max_neurons}, but none of the {n} selected "
                                f"neurons is an input neuron (sensory by the region pool rule, graph.pools), so "
                                f"no cap can keep one; expected null (no cap)")
        smallest = -(-n // (2 * inputs.size))
        raise BPUInputError(f"config key '{MAX_NEURONS_KEY}' is {max_neurons}: the selection has {inputs.size} input "
                            f"neuron(s) among {n} neurons, and a cap keeps the same share, which rounds to none at "
                            f"{max_neurons}; expected at least {smallest}, or null for no cap")
    return inputs[np.lexsort((ids[inputs], -drive[inputs]))[:count]]


def _grow_downstream(targets: sp.csr_matrix, seeds: np.ndarray, rank: np.ndarray,
                     max_neurons: int) -> tuple[np.ndarray, int]:
    """Breadth-first growth from ``seeds`` along ``targets`` (``W[post, pre]`` support), lowest ``rank``
    first within a round; returns the kept mask and the number of rounds that added neurons."""
    kept = np.zeros(rank.size, dtype=bool)
    kept[seeds] = True
    current, count, rounds = seeds, seeds.size, 0
    while count < max_neurons:
        marker = np.zeros(rank.size, np.float32)
        marker[current] = 1.0
        reached = np.flatnonzero((targets @ marker > 0) & ~kept)
        if reached.size == 0:
            break
        current = reached[np.argsort(rank[reached])][:max_neurons - count]
        kept[current] = True
        count += current.size
        rounds += 1
    return kept, rounds


def _connections_frame(pairs: _CodeSums, root_ids: np.ndarray, path: Path, where: str) -> pd.DataFrame:
    """``bodyId_pre, bodyId_post, weight`` sorted by (pre, post): code order is id order."""
    codes, sums = pairs.result()
    if codes.size == 0:
        raise BPUInputError(f"connections file {path}: no connection row{where} joins two proofread root ids, so "
                            f"the substrate would have no edges; check that the root-id and connections files "
                            f"belong to the same release")
    n = root_ids.size
    return pd.DataFrame({"bodyId_pre": root_ids[codes // n], "bodyId_post": root_ids[codes % n],
                         "weight": sums.astype(np.float32)})


def _neurons_frame(root_ids: np.ndarray, index: np.ndarray, totals: _NeuronTotals,
                   nt_confidence: float) -> pd.DataFrame:
    """``bodyId, type, instance, pre, post, predictedNt`` for the neurons at ``index`` (FlyWire has no
    type/instance in these files, so those are empty)."""
    empty = np.full(index.size, "", dtype=object)
    return pd.DataFrame({"bodyId": root_ids[index], "type": empty, "instance": empty.copy(),
                         "pre": totals.pre[index], "post": totals.post[index],
                         "predictedNt": totals.predicted_nt(nt_confidence)[index]})


def _table_stats(neurons: pd.DataFrame, roi_counts: pd.DataFrame, connections: pd.DataFrame,
                 transmitters: list[str], nt_confidence: float) -> dict:
    labels = neurons["predictedNt"].value_counts()
    return {"neurons": len(neurons), "roi_count_rows": len(roi_counts), "aggregated_edge_count": len(connections),
            "synapses_in_connections": float(np.sum(connections["weight"].to_numpy(), dtype=np.float64)),
            "transmitter_columns": transmitters, "nt_confidence": nt_confidence,
            "predicted_nt_counts": {str(label or "unlabelled"): int(count) for label, count in labels.items()}}


# --- the export step ------------------------------------------------------------------------------------

def ensure_verified(path: str | Path, expected: ExpectedFile, *, base_url: str = DEFAULT_BASE_URL,
                    **fetch_kwargs) -> str | None:
    """Make the cached file ``path`` verify against ``expected``, fetching it again if it does not.

    Returns None if the cached copy verified as it was, else why it did not (it has then been replaced by
    a fresh, verified download). The download is :func:`~connectome_bpu.sources.download.fetch` from
    ``base_url``, exactly as the download rule does it: the corrupt copy is deleted, the transfer is
    retried and resumed, and the new file is renamed into place only after it verifies. If that fails, a
    :class:`BPUInputError` says what went wrong and what to do.
    """
    path = Path(path)
    problem = verify(path, expected)
    if problem is None:
        return None
    url = file_url(base_url, expected.name)
    log.warning("cached FlyWire file %s failed verification (%s); fetching it again from %s", path, problem, url)
    try:
        fetch(url, path, expected, **fetch_kwargs)
    except DownloadError as error:
        if error.mismatch is not None:
            advice = (f"the server's copy does not match either ({error.mismatch}). Check config key "
                      f"'flywire.base_url' (a mirror must serve the published file unchanged) and, for a "
                      f"release other than 783, the values under 'flywire.files'")
        else:
            advice = (f"downloading it again failed: {error}. Rerun the workflow once {url} is reachable (the "
                      f"'flywire_file' rule downloads the missing file), or put a copy of {expected.size} bytes "
                      f"with md5 {expected.md5} at {path}")
        raise BPUInputError(f"cached FlyWire file {path} failed its published size/MD5 check ({problem}), so it "
                            f"was removed and fetched again from {url}; {advice}") from error
    return problem


def write_flywire_exports(out_dir: str | Path, connectome: str, paths: dict[str, Path], *, release: str,
                          base_url: str = DEFAULT_BASE_URL, nt_confidence: float = 0.70,
                          overrides: dict | None = None, fetch_kwargs: dict | None = None,
                          optic_lobe: dict | None = None) -> dict:
    """Verify the cached release files, normalise them and write the export set with its provenance.

    ``paths`` maps file names (as from :func:`fetch_release`) to the cached files. A cached file whose size
    or MD5 does not match is never used: :func:`ensure_verified` deletes it and downloads it again from
    ``base_url`` (``fetch_kwargs``, e.g. ``retries``, ``backoff_seconds``, ``timeout``, go to
    :func:`~connectome_bpu.sources.download.fetch`). The provenance records the Zenodo record, release, URL
    and size/MD5/sha256 of each file, when it was downloaded (the cached file's modification time:
    :func:`fetch` renames it into place right after verification), the reason a file was fetched again if
    it was, and the normalisation statistics including the rows dropped for unknown ids. Returns the main
    counts. ``optic_lobe`` (``flywire_optic_lobe`` only) holds :func:`normalise_optic_lobe`'s ``neuropils``,
    ``max_neurons`` and ``pools``.
    """
    if connectome not in CONNECTOMES:
        raise BPUInputError(f"connectome {connectome!r} is not a FlyWire substrate; expected one of {CONNECTOMES}")
    release = str(release)
    sources = {}
    for name, expected in release_files(release, overrides).items():
        if name not in paths:
            raise BPUInputError(f"no cached path given for FlyWire file {name!r} (given: {sorted(paths)})")
        path = Path(paths[name])
        problem = ensure_verified(path, expected, base_url=base_url, **(fetch_kwargs or {}))
        modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        sources[name] = {**file_record(path), "md5": expected.md5, "url": file_url(base_url, name),
                         "downloaded_utc": modified}
        if problem is not None:
            sources[name]["refetched_because"] = f"the cached copy failed verification ({problem})"

    root_ids_path = Path(paths[root_ids_name(release)])
    connections_path = Path(paths[connections_name(release)])
    normalise, options, primary_rois = _normaliser(connectome, optic_lobe)
    neurons, roi_counts, connections, stats = normalise(root_ids_path, connections_path,
                                                        nt_confidence=nt_confidence, **options)
    summary = {"neurons": len(neurons), "roi_count_rows": len(roi_counts), "connections": len(connections),
               "source_rows": stats["source_rows"], "rows_dropped_unknown_id": stats["rows_dropped_unknown_id"],
               "synapses_in_connections": stats["synapses_in_connections"]}
    provenance = {
        "synthetic": False,
        "source": "zenodo",
        "connectome": connectome,
        "zenodo_record": ZENODO_RECORD,
        "release": release,
        "base_url": base_url,
        "source_files": sources,
        "primary_rois": primary_rois,
        "nt_confidence": nt_confidence,
        "normalisation": stats,
        "imported_utc": utc_now(),
        "counts": summary,
    }
    write_export_set(out_dir, neurons=neurons, roi_counts=roi_counts, connections=connections,
                     provenance=provenance)
    log.info("wrote %s exports to %s: %d neurons, %d aggregated edges", connectome, out_dir, len(neurons),
             len(connections))
    return summary


def _normaliser(connectome: str, optic_lobe: dict | None) -> tuple:
    """(normalise function, its substrate-specific options, the substrate's primary ROIs)."""
    if connectome == "flywire_optic_lobe":
        options = {"neuropils": OPTIC_NEUROPILS, **(optic_lobe or {})}
        return normalise_optic_lobe, options, list(options["neuropils"])
    normalise = normalise_whole if connectome == "flywire_whole" else normalise_mushroom_body
    return normalise, {}, list(KINDS[connectome].primary_rois)
