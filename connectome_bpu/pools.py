"""Sensory / internal / output pools: where the task is injected and where it is read out.

Region connectomes (docs/method.md#pools) use ROI flow: a neuron whose input comes largely from
outside the region's primary ROIs is *sensory*, one whose output goes largely outside is *output*.
Near ties fall back to the original benchmark's CX type families.  The whole brain has no outside, so
its pools are the most input-dominant and most output-dominant neurons by synapse counts.

Both assigners return the ``pool_assignments.csv`` table (docs/method.md#pools; ``POOL_COLUMNS``
in order, one row per neuron, sorted by ``index``).  They do not validate the result: :func:`validate_pools`
is separate because it also checks a table read back from disk, and because the caller may want to
write the table for diagnosis before an empty pool stops the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import BPUInputError, GraphError

POOL_COLUMNS = [
    "bodyId", "index", "type", "instance", "pool", "is_sensory", "is_internal", "is_output",
    "outside_input_frac", "outside_output_frac", "post_in_cx_primary", "pre_in_cx_primary",
    "assignment_reason",
]
POOLS = ("sensory", "internal", "output")
FLAG_COLUMNS = {"sensory": "is_sensory", "internal": "is_internal", "output": "is_output"}

DEFAULT_SENSORY_FAMILIES = ("ring", "ExR", "LNO", "LCNO", "GLNO", "SpsP")
DEFAULT_OUTPUT_FAMILIES = ("PFL", "PFL2", "PFL3", "PFR")

REASON_TIE_BREAK = "type_family_tie_breaker"
REASON_NEAR_TIE = "near_tie_internal_default"
REASON_THRESHOLD = "threshold"
REASON_BELOW = "below_fraction_threshold"
REASON_WB_INPUT = "whole_brain_input_dominance"
REASON_WB_OUTPUT = "whole_brain_output_dominance"
REASON_WB_INTERNAL = "whole_brain_internal_default"

_NEURON_COLUMNS = ("bodyId", "type", "instance", "pre", "post")
_ROI_COLUMNS = ("bodyId", "roi", "pre", "post")


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BPUInputError(f"{what} lacks required column(s) {missing}; has {list(frame.columns)}")


def _sorted_body_ids(neurons: pd.DataFrame) -> np.ndarray:
    """The neuron ids as int64; index = position, so they must already be unique and ascending."""
    ids = neurons["bodyId"].to_numpy(dtype=np.int64)
    if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
        raise BPUInputError("neurons: bodyId must be unique and sorted ascending (node order of the benchmark)")
    return ids


def _family_mask(labels: pd.Series, families: Sequence[str]) -> np.ndarray:
    """Case-insensitive substring match of any family name (an empty family list matches nothing)."""
    if not families:
        return np.zeros(len(labels), dtype=bool)
    pattern = "|".join(re.escape(f.lower()) for f in families)
    return labels.str.contains(pattern, regex=True).to_numpy(dtype=bool)


def _pool_table(neurons: pd.DataFrame, pool: np.ndarray, reason: np.ndarray, outside_input: np.ndarray,
                outside_output: np.ndarray, post_in: np.ndarray, pre_in: np.ndarray) -> pd.DataFrame:
    n = len(neurons)
    return pd.DataFrame({
        "bodyId": neurons["bodyId"].to_numpy(dtype=np.int64),
        "index": np.arange(n, dtype=np.int64),
        "type": neurons["type"].to_numpy(),
        "instance": neurons["instance"].to_numpy(),
        "pool": pool,
        "is_sensory": pool == "sensory",
        "is_internal": pool == "internal",
        "is_output": pool == "output",
        "outside_input_frac": outside_input.astype(np.float64),
        "outside_output_frac": outside_output.astype(np.float64),
        "post_in_cx_primary": post_in.astype(np.float64),
        "pre_in_cx_primary": pre_in.astype(np.float64),
        "assignment_reason": reason,
    }, columns=POOL_COLUMNS)


def assign_region_pools(
    neurons: pd.DataFrame,
    roi_counts: pd.DataFrame,
    primary_rois: Sequence[str],
    *,
    tie_margin: float = 0.10,
    min_outside_fraction: float = 0.20,
    sensory_families: Sequence[str] = DEFAULT_SENSORY_FAMILIES,
    output_families: Sequence[str] = DEFAULT_OUTPUT_FAMILIES,
) -> pd.DataFrame:
    """Pools of a region connectome from the share of synapses outside its primary ROIs.

    Only ``roi_counts`` rows whose ``roi`` is exactly one of ``primary_rois`` count as inside:
    hemibrain exports list every hierarchy level, so summing sub-ROIs (``FBl3``) or super-ROIs
    (``CX``) as well would count a synapse twice.  Rows for ids absent from ``neurons`` are ignored.
    The rules are applied in the order listed in docs/method.md#pools; the first that fires decides.
    """
    if isinstance(primary_rois, str) or not len(primary_rois):
        raise BPUInputError(f"primary_rois must be a non-empty list of ROI names; got {primary_rois!r}")
    _require_columns(neurons, _NEURON_COLUMNS, "neurons")
    body_ids = _sorted_body_ids(neurons)
    n = len(body_ids)
    post_in = np.zeros(n)
    pre_in = np.zeros(n)
    if len(roi_counts):
        _require_columns(roi_counts, _ROI_COLUMNS, "roi_counts")
        inside = roi_counts.loc[roi_counts["roi"].isin(list(primary_rois))]
        ids = inside["bodyId"].to_numpy(dtype=np.int64)
        pos = np.minimum(np.searchsorted(body_ids, ids), max(n - 1, 0))
        known = body_ids[pos] == ids if n else np.zeros(len(ids), dtype=bool)
        post_in = np.bincount(pos[known], weights=inside["post"].to_numpy(dtype=np.float64)[known], minlength=n)
        pre_in = np.bincount(pos[known], weights=inside["pre"].to_numpy(dtype=np.float64)[known], minlength=n)

    post = neurons["post"].to_numpy(dtype=np.float64)
    pre = neurons["pre"].to_numpy(dtype=np.float64)
    outside_input = np.clip((post - post_in) / np.maximum(post, 1.0), 0.0, 1.0)
    outside_output = np.clip((pre - pre_in) / np.maximum(pre, 1.0), 0.0, 1.0)
    diff = outside_input - outside_output

    near = np.abs(diff) < tie_margin
    family_sensory = np.zeros(n, dtype=bool)
    family_output = np.zeros(n, dtype=bool)
    if near.any():
        labels = (neurons["type"].astype(str) + " " + neurons["instance"].astype(str)).str.lower()[near]
        family_sensory[near] = _family_mask(labels, sensory_families)
        family_output[near] = _family_mask(labels, output_families)
    conditions = [
        near & family_sensory,
        near & family_output,
        near,
        (diff >= tie_margin) & (outside_input >= min_outside_fraction),
        (-diff >= tie_margin) & (outside_output >= min_outside_fraction),
    ]
    pool = np.select(conditions, ["sensory", "output", "internal", "sensory", "output"], "internal")
    reason = np.select(conditions, [REASON_TIE_BREAK, REASON_TIE_BREAK, REASON_NEAR_TIE,
                                    REASON_THRESHOLD, REASON_THRESHOLD], REASON_BELOW)
    return _pool_table(neurons, pool, reason, outside_input, outside_output, post_in, pre_in)


def whole_brain_pool_size(n: int, fraction: float) -> int:
    """``min(max(256, round(N f)), max(1, N // 3))``: at least 256 neurons, never more than a third."""
    return min(max(256, round(n * fraction)), max(1, n // 3))


def assign_whole_brain_pools(neurons: pd.DataFrame, *, fraction: float = 0.05) -> pd.DataFrame:
    """Whole-brain pools: the ``pool_size`` most input-dominant and most output-dominant neurons.

    Sensory = first ``pool_size`` by input score (post - pre) / max(pre + post, 1) descending, then
    activity (pre + post) descending, then index ascending; output = first ``pool_size`` of the rest
    by the opposite score, same tie-breaks.  The final index tie-break makes the result independent
    of sort algorithm stability (docs/departures.md#whole-brain-pools).  These are
    degree-imbalance heuristics, not biological sensory/motor labels.
    """
    _require_columns(neurons, _NEURON_COLUMNS, "neurons")
    _sorted_body_ids(neurons)
    n = len(neurons)
    if n < 3:
        raise GraphError(f"whole-brain pools need at least 3 neurons (sensory, internal, output); got N = {n}")
    if not 0.0 < fraction < 0.5:
        raise BPUInputError(f"config key 'graph.whole_brain_pool_fraction' has value {fraction!r}; "
                            f"allowed: a number in (0, 0.5)")
    size = whole_brain_pool_size(n, fraction)
    pre = neurons["pre"].to_numpy(dtype=np.float64)
    post = neurons["post"].to_numpy(dtype=np.float64)
    activity = pre + post
    total = np.maximum(activity, 1.0)
    input_score = (post - pre) / total
    index = np.arange(n)

    sensory = np.lexsort((index, -activity, -input_score))[:size]
    by_output = np.lexsort((index, -activity, input_score))
    taken = np.zeros(n, dtype=bool)
    taken[sensory] = True
    output = by_output[~taken[by_output]][:size]

    pool = np.full(n, "internal", dtype=object)
    reason = np.full(n, REASON_WB_INTERNAL, dtype=object)
    pool[sensory], reason[sensory] = "sensory", REASON_WB_INPUT
    pool[output], reason[output] = "output", REASON_WB_OUTPUT
    zeros = np.zeros(n)
    return _pool_table(neurons, pool.astype(str), reason.astype(str), post / total, pre / total, zeros, zeros)


def validate_pools(pools: pd.DataFrame, body_ids: Sequence[int] | np.ndarray, *,
                   primary_rois: Sequence[str] | None = None) -> None:
    """Check a pool table (one pool per neuron, docs/method.md#pools) and that both task ends exist.

    Structural problems (columns, ids, labels, flags, order) are :class:`BPUInputError`; an empty
    sensory or output pool is a :class:`GraphError` because the benchmark is then undefined for
    this substrate.  ``primary_rois`` only sharpens that message.
    """
    missing = [c for c in POOL_COLUMNS if c not in pools.columns]
    if missing:
        raise BPUInputError(f"pool_assignments lacks column(s) {missing}; expected {POOL_COLUMNS}")
    ids = pools["bodyId"].to_numpy(dtype=np.int64)
    duplicated = pd.unique(ids[pd.Series(ids).duplicated().to_numpy()])
    if duplicated.size:
        raise BPUInputError(f"pool_assignments: {duplicated.size} duplicated bodyId(s), e.g. {duplicated[:5].tolist()}")
    expected = np.unique(np.asarray(body_ids, dtype=np.int64))
    if len(expected) != len(np.asarray(body_ids)):
        raise BPUInputError("validate_pools: body_ids passed for the substrate contain duplicates")
    absent = np.setdiff1d(expected, ids)
    extra = np.setdiff1d(ids, expected)
    if absent.size or extra.size:
        raise BPUInputError(
            f"pool_assignments bodyIds differ from the substrate's neurons: {absent.size} neuron(s) without a pool "
            f"(e.g. {absent[:5].tolist()}), {extra.size} unknown id(s) (e.g. {extra[:5].tolist()})")
    index = pools["index"].to_numpy()
    if not np.array_equal(index, np.arange(len(pools))) or not np.array_equal(ids, expected):
        raise BPUInputError("pool_assignments must be sorted by 'index', with index = position of bodyId in "
                            "ascending bodyId order")
    labels = pools["pool"].astype(str)
    bad = sorted(set(labels.unique()) - set(POOLS))
    if bad:
        raise BPUInputError(f"pool_assignments: invalid pool label(s) {bad}; allowed {list(POOLS)}")
    for name, column in FLAG_COLUMNS.items():
        if not pd.api.types.is_bool_dtype(pools[column]):
            raise BPUInputError(f"pool_assignments: column '{column}' must be boolean; got dtype {pools[column].dtype}")
        inconsistent = int((pools[column].to_numpy() != (labels.to_numpy() == name)).sum())
        if inconsistent:
            raise BPUInputError(f"pool_assignments: '{column}' disagrees with 'pool' on {inconsistent} row(s) "
                                f"(exactly one membership flag must be true, the one named by 'pool')")
    counts = labels.value_counts()
    for name in ("sensory", "output"):
        if counts.get(name, 0) == 0:
            raise GraphError(_empty_pool_message(name, pools, primary_rois))


def _empty_pool_message(name: str, pools: pd.DataFrame, primary_rois: Sequence[str] | None) -> str:
    side = "input" if name == "sensory" else "output"
    reasons = ", ".join(f"{r}={c}" for r, c in pools["assignment_reason"].value_counts().sort_index().items())
    rois = list(primary_rois) if primary_rois is not None else "unknown"
    return (
        f"the {name} pool is empty ({len(pools)} neurons; primary ROIs {rois}; assignment reasons: {reasons}), "
        f"so the task has nowhere to {'enter' if name == 'sensory' else 'be read out'}. Likely cause: no neuron "
        f"has a large enough share of its {side} synapses outside the primary ROIs. Check that primary_rois name "
        f"ROIs exactly as they appear in roi_counts.csv (sub-ROIs such as 'FBl3' or super-ROIs such as 'CX' do "
        f"not count) and that roi_counts.csv covers these neurons: with no inside counts every neuron is 100 % "
        f"outside on both sides, i.e. a near tie that only the type-family tie-break can place.")


def pool_indices(pools: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted int64 node indices of the sensory, internal and output pools (in that order)."""
    index = pools["index"].to_numpy(dtype=np.int64)
    labels = pools["pool"].to_numpy()
    return tuple(np.sort(index[labels == name]) for name in POOLS)  # type: ignore[return-value]


def read_pools(path: str | Path) -> pd.DataFrame:
    """``pool_assignments.csv`` as written by the ``pools`` rule, body ids as int64 (never float)."""
    return pd.read_csv(path, dtype={"bodyId": np.int64})
