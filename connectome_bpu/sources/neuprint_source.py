"""neuPrint acquisition: a hemibrain region's exports through neuprint-python.

The queries are the original benchmark's, so the tables are comparable with its published runs: neurons are
the ``:Neuron`` bodies with a synapse in *any* requested ROI, connections are every ``ConnectsTo`` edge among
them (library defaults: at least one synapse, per-ROI table over primary ROIs plus ``NotPrimary``), summed
over ROIs per directed pair. Departures from the original, each fixing one of its faults:

* the token is read from ``NEUPRINT_APPLICATION_CREDENTIALS`` *or* ``NEUPRINT_TOKEN`` and passed to the
  client explicitly (the original accepted ``NEUPRINT_TOKEN`` but left the client reading only the first
  variable, so it failed later; docs/departures.md#neuprint-token);
* every failure (token rejected, unknown ROI, server error, unreachable server, no neurons) stops with one
  error that says what to do, and nothing is written: the three tables, ``roi_hierarchy.json`` and
  ``provenance.json`` (with the sha256 of every other file) appear together or not at all.

neuprint-python and requests are imported on use: this module is imported by every workflow step (and by
the Snakefile for the start-up token check), whose environments need not have them installed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..errors import BPUInputError
from ..provenance import utc_now
from . import EXPORT_FILES, write_export_set

log = logging.getLogger(__name__)

TOKEN_VARIABLES = ("NEUPRINT_APPLICATION_CREDENTIALS", "NEUPRINT_TOKEN")
TOKEN_HELP = (
    "To get a neuPrint token: open https://neuprint.janelia.org, log in (Google account), open 'Account' "
    "(top right) and copy the auth token shown there. Then set it in the environment that runs the workflow, "
    "e.g. `export NEUPRINT_APPLICATION_CREDENTIALS=<token>` (or `export NEUPRINT_TOKEN=<token>`; the first "
    "non-empty of the two is used). The token is never read from config files and never printed."
)

ROI_HIERARCHY_FILE = "roi_hierarchy.json"

# fetch_adjacencies' own defaults, passed explicitly so a library release that changes them cannot silently
# change the export, and recorded in provenance.json.
ADJACENCY_PARAMETERS = {"min_roi_weight": 1, "min_total_weight": 1, "include_nonprimary": False, "batch_size": 200}

# Column names accepted for the connection table (first present wins), as in the original benchmark: different
# neuprint-python releases and hand-made tables spell them differently.
_CONNECTION_NAMES = {
    "bodyId_pre": ("bodyId_pre", "pre_bodyId", "pre", "bodyId_x"),
    "bodyId_post": ("bodyId_post", "post_bodyId", "post", "bodyId_y"),
    "weight": ("weight", "syn_count", "synapse_count", "count"),
}
_ROI_COUNT_COLUMNS = ("bodyId", "roi", "pre", "post", "downstream", "upstream", "mito")
_SUGGESTIONS = 5


class NeuprintServerError(RuntimeError):
    """The neuPrint server failed or could not be reached; retrying later (or fixing the address) may help."""


def resolve_token(environ: Mapping[str, str] = os.environ) -> str:
    """The neuPrint token: the first non-empty of :data:`TOKEN_VARIABLES`, surrounding blanks removed.

    Raises :class:`BPUInputError` with :data:`TOKEN_HELP` when neither is set, so a run without a token stops
    before any job starts instead of at the first query.
    """
    for name in TOKEN_VARIABLES:
        value = (environ.get(name) or "").strip()
        if value:
            return value
    raise BPUInputError(f"no neuPrint token: neither {TOKEN_VARIABLES[0]} nor {TOKEN_VARIABLES[1]} is set "
                        f"(or both are empty). {TOKEN_HELP}")


def resolve_rois(hierarchy: object, requested: Sequence[str]) -> list[str]:
    """Map requested ROI labels onto the names used in a neuPrint ROI hierarchy, in requested order.

    Every key and string of the nested ``hierarchy`` (as from ``fetch_roi_hierarchy(format="dict")``) is a
    candidate, with surrounding blanks and the primary marker ``*`` removed; requested labels are cleaned the
    same way. A label matches exactly, else case-insensitively when that is unambiguous, so a config saying
    ``eb`` still finds ``EB``. Labels that match nothing are all reported in one :class:`BPUInputError` with
    their closest names, because a misspelt ROI would otherwise silently select a different neuron set.
    """
    names = sorted({name for name in map(_clean_roi, _roi_names(hierarchy)) if name})
    known = set(names)
    by_lower: dict[str, list[str]] = {}
    for name in names:
        by_lower.setdefault(name.lower(), []).append(name)

    labels = [_clean_roi(str(label)) for label in requested]
    if not labels or not all(labels):
        raise BPUInputError(f"ROI list {list(requested)!r} is empty or contains an empty name; expected ROI "
                            f"names of the dataset, e.g. EB, PB, FB, NO")
    resolved, problems = [], []
    for label in labels:
        matches = [label] if label in known else by_lower.get(label.lower(), [])
        if len(matches) == 1:
            if matches[0] not in resolved:
                resolved.append(matches[0])
        elif matches:
            problems.append(f"ROI {label!r} matches several names that differ only in case: {matches}; "
                            f"write it exactly")
        else:
            problems.append(f"ROI {label!r} is not in the ROI hierarchy; {_closest(label, names, by_lower)}")
    if problems:
        raise BPUInputError("; ".join(problems) + f". The hierarchy has {len(names)} ROI names; use them exactly "
                                                  f"as neuPrint spells them (e.g. EB, PB, FB, NO, MB(R))")
    return resolved


def _roi_names(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _roi_names(value)
    elif isinstance(node, Iterable):
        for item in node:
            yield from _roi_names(item)


def _clean_roi(name: str) -> str:
    return name.strip().removesuffix("*").strip()


def _closest(label: str, names: list[str], by_lower: dict[str, list[str]]) -> str:
    close = difflib.get_close_matches(label.lower(), list(by_lower), n=_SUGGESTIONS, cutoff=0.5)
    if close:
        return "close matches: " + ", ".join(name for lower in close for name in by_lower[lower])
    return "no close match; some names in it: " + ", ".join(names[:20])


def aggregate_connections(table: pd.DataFrame, body_ids: Iterable[int]) -> pd.DataFrame:
    """Per-ROI connection rows -> one row per directed pair (``bodyId_pre, bodyId_post, weight``), sorted.

    ``fetch_adjacencies`` lists one row per (pre, post, ROI) over the primary ROIs plus ``NotPrimary``, which
    partition a connection's synapses, so the sum over rows is the connection's total weight (super- and
    sub-ROI rows would double count and are not in that table). Ids become int64 (never float: 64-bit ids
    do not survive float64), missing weights count 0, pairs with an end outside ``body_ids`` and pairs with
    no synapse are dropped. Weights stay integers when they are whole numbers (synapse counts).
    """
    columns = {}
    for canonical, names in _CONNECTION_NAMES.items():
        found = next((name for name in names if name in table.columns), None)
        if found is None:
            raise BPUInputError(f"neuPrint connection table has no {canonical} column (accepted: {', '.join(names)}); "
                                f"columns returned: {list(table.columns)}")
        columns[canonical] = found
    frame = pd.DataFrame({
        "bodyId_pre": table[columns["bodyId_pre"]].astype("int64").to_numpy(),
        "bodyId_post": table[columns["bodyId_post"]].astype("int64").to_numpy(),
        "weight": pd.to_numeric(table[columns["weight"]], errors="coerce").fillna(0).to_numpy(),
    })
    known = np.asarray(list(body_ids), dtype=np.int64)
    frame = frame[frame["bodyId_pre"].isin(known) & frame["bodyId_post"].isin(known)]
    frame = frame.groupby(["bodyId_pre", "bodyId_post"], as_index=False, sort=True)["weight"].sum()
    frame = frame[frame["weight"] > 0].reset_index(drop=True)
    weight = frame["weight"].to_numpy()
    if np.array_equal(weight, np.round(weight)):
        frame["weight"] = weight.astype(np.int64)
    return frame


def fetch_neuprint_exports(out_dir: str | Path, *, connectome: str, server: str, dataset: str,
                           rois: Sequence[str], token: str, client: object | None = None) -> dict:
    """Download one region from neuPrint and write its export set into ``out_dir``; returns the counts.

    Writes ``neurons.csv``, ``roi_counts.csv``, ``connections.csv``, ``roi_hierarchy.json`` and
    ``provenance.json`` (docs/method.md#exports), all or nothing. ``token`` is passed to the client explicitly;
    ``client`` replaces the ``neuprint.Client`` that would otherwise be created from server/dataset/token
    (a caller that already holds a connection). Raises :class:`BPUInputError` for a rejected token, an
    unknown dataset or ROI, or a region without neurons or connections, and :class:`NeuprintServerError`
    when the server fails or cannot be reached; the token never appears in a message.
    """
    import neuprint
    from neuprint import NeuronCriteria

    requested = [str(roi) for roi in rois]
    with _server_errors(server):
        if client is None:
            client = _connect(neuprint, server, dataset, token)
        where = f"dataset {client.dataset!r} on {client.server}"
        marked = neuprint.fetch_roi_hierarchy(include_subprimary=True, mark_primary=True, format="dict",
                                              client=client)
        try:
            resolved = resolve_rois(marked, requested)
        except BPUInputError as error:
            raise BPUInputError(f"{where}: {error}") from None
        neurons, roi_counts = neuprint.fetch_neurons(NeuronCriteria(rois=resolved, roi_req="any"), client=client)
        neurons = _neuron_table(neurons)
        if neurons.empty:
            raise BPUInputError(f"{where}: no neuron has a synapse in any of the ROIs {resolved}; check the ROI "
                                f"names (sub-ROIs may be empty) and the dataset")
        body_ids = neurons["bodyId"].tolist()
        adjacency = neuprint.fetch_adjacencies(sources=NeuronCriteria(bodyId=body_ids),
                                               targets=NeuronCriteria(bodyId=body_ids), client=client,
                                               **ADJACENCY_PARAMETERS)
    per_roi = adjacency[-1] if isinstance(adjacency, tuple) else adjacency
    connections = aggregate_connections(per_roi, body_ids)
    if connections.empty:
        raise BPUInputError(f"{where}: the {len(neurons)} neurons in ROIs {resolved} have no connections among "
                            f"them; a recurrent core needs at least one edge")
    roi_counts = _roi_count_table(roi_counts)

    # provenance.json is written in the same step as the tables, so their checksums are taken from the bytes
    # of the same serialisation write_csv performs (DataFrame.to_csv, index dropped, UTF-8).
    hierarchy_text = json.dumps(_unmarked(marked), indent=2, sort_keys=True) + "\n"
    contents = {name: frame.to_csv(index=False).encode("utf-8")
                for name, frame in zip(EXPORT_FILES, (neurons, roi_counts, connections))}
    contents[ROI_HIERARCHY_FILE] = hierarchy_text.encode("utf-8")
    summary = {"neurons": len(neurons), "roi_count_rows": len(roi_counts), "connections": len(connections),
               "connection_rows_in_source": len(per_roi),
               "synapses_in_connections": connections["weight"].sum().item(),
               "rois_requested": requested, "rois_resolved": resolved}
    provenance = {
        "synthetic": False,
        "source": "neuprint",
        "connectome": connectome,
        "server": server,
        "server_url": client.server,
        "dataset": client.dataset,
        "primary_rois": resolved,
        "rois_requested": requested,
        "dataset_primary_rois": sorted(_clean_roi(name) for name in _roi_names(marked)
                                       if name.strip().endswith("*")),
        "neuprint_python": metadata.version("neuprint-python"),
        "query": {
            "roi_hierarchy": {"function": "fetch_roi_hierarchy", "include_subprimary": True,
                              "mark_primary": True, "written": "without the '*' primary marks"},
            "neurons": {"function": "fetch_neurons", "criteria": {"rois": resolved, "roi_req": "any"}},
            "connections": {"function": "fetch_adjacencies", "sources": "bodyIds of neurons.csv",
                            "targets": "bodyIds of neurons.csv", **ADJACENCY_PARAMETERS,
                            "aggregation": "per-ROI weights (primary ROIs + NotPrimary) summed per (pre, post)"},
        },
        "downloaded_utc": utc_now(),
        "counts": summary,
        "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in contents.items()},
    }
    out_dir = Path(out_dir)
    # The hierarchy waits under a temporary name until the export set is in place, so a failure anywhere
    # leaves neither; it is renamed last, when nothing but the rename itself can fail.
    with atomic_path(out_dir / ROI_HIERARCHY_FILE) as hierarchy_tmp:
        hierarchy_tmp.write_bytes(contents[ROI_HIERARCHY_FILE])
        write_export_set(out_dir, neurons=neurons, roi_counts=roi_counts, connections=connections,
                         provenance=provenance)
    log.info("Downloaded %s exports: %d neurons, %d aggregated edges.", connectome, len(neurons), len(connections))
    return summary


def _connect(neuprint: object, server: str, dataset: str, token: str) -> object:
    """``neuprint.Client`` with the token passed explicitly; its own input errors become :class:`BPUInputError`.

    The constructor raises ``RuntimeError`` for what the user controls (an ``http://`` address, a token it
    cannot parse, a dataset the server does not have); none of those messages contains the token.
    """
    if not token:
        raise BPUInputError(f"no neuPrint token given. {TOKEN_HELP}")
    try:
        return neuprint.Client(server, dataset=dataset, token=token)
    except RuntimeError as error:
        raise BPUInputError(f"cannot use neuPrint server {server!r} with dataset {dataset!r}: {error}") from None


@contextmanager
def _server_errors(server: str) -> Iterator[None]:
    """Translate ``requests`` failures into errors that name the server and what to do about them."""
    import requests

    try:
        yield
    except requests.HTTPError as error:
        response = error.response
        status = response.status_code if response is not None else None
        url = response.url if response is not None else server
        if status in (401, 403):
            # Raised without the chained exception: nothing from the request (headers included) is shown.
            raise BPUInputError(
                f"the neuPrint server {server} rejected the token (HTTP {status} on {url}): it is invalid, expired "
                f"or lacks access to the dataset. Get a new one and set it again. {TOKEN_HELP}") from None
        if status is not None and status >= 500:
            advice = "a server error; retry later, and if it persists the server or the dataset may be down"
        else:
            advice = ("a refusal; check the server address (config neuprint.server) and dataset "
                      "(config neuprint.dataset), and that this neuprint-python release supports the server")
        raise NeuprintServerError(f"the neuPrint server {server} answered HTTP {status} on {url}"
                                  f"{_server_message(response)}: {advice}. Nothing was written.") from error
    except requests.ConnectionError as error:
        hint = ("the TLS certificate could not be verified (behind a TLS-inspecting proxy, point REQUESTS_CA_BUNDLE "
                "at its CA bundle)" if isinstance(error, requests.exceptions.SSLError)
                else "check the address (config neuprint.server), the network and any proxy settings")
        raise NeuprintServerError(f"could not connect to the neuPrint server {server}: {hint}. Nothing was "
                                  f"written. ({type(error).__name__}: {_first_line(error)})") from error
    except requests.RequestException as error:
        raise NeuprintServerError(f"request to the neuPrint server {server} failed: {_first_line(error)}. "
                                  f"Nothing was written.") from error


def _server_message(response: object) -> str:
    """The server's own error text (neuPrint answers ``{"error": ...}``), shortened, or ""."""
    try:
        message = str(response.json()["error"])
    except Exception:  # noqa: BLE001 - any unreadable body simply has no message to show
        return ""
    return f" ({message[:300]})"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _neuron_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The neuron table as written: int64 bodyIds, one row per body, sorted; list/dict cells as JSON text.

    neuprint-python parses ``roiInfo`` into dicts and ROI lists/coordinates into lists; JSON (sorted keys)
    keeps them readable by any tool and byte-stable between downloads of the same data.
    """
    table = frame.copy()
    table["bodyId"] = table["bodyId"].astype("int64")
    table = table.drop_duplicates("bodyId").sort_values("bodyId", kind="stable").reset_index(drop=True)
    for column in table.columns:
        nested = table[column].map(lambda value: isinstance(value, (list, tuple, dict)))
        if nested.any():
            table[column] = table[column].map(
                lambda value: json.dumps(value, sort_keys=True) if isinstance(value, (list, tuple, dict)) else value)
    return table


def _roi_count_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-neuron-per-ROI counts (every hierarchy level plus ``NotPrimary``), int64 ids, sorted."""
    table = frame[[column for column in _ROI_COUNT_COLUMNS if column in frame.columns]].copy()
    table["bodyId"] = table["bodyId"].astype("int64")
    return table.sort_values(["bodyId", "roi"], kind="stable").reset_index(drop=True)


def _unmarked(hierarchy: Mapping) -> dict:
    """The hierarchy without primary marks, as the original benchmark dumps it (``mark_primary=False``)."""
    return {_clean_roi(str(name)): _unmarked(children) for name, children in hierarchy.items()}
