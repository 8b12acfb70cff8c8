"""Size matching: one substrate's exports cut or expanded to another's neuron and edge count.

Why: cross-region transfer asks whether a task family runs better on its own region (MB for associative
memory, CX for path integration) than on the other one. The two regions differ in size, so "the
matched region wins" could just mean "the bigger graph wins". A size-matched condition runs the
mismatched region's wiring at exactly the matched region's N and edge count, through the ordinary
export -> graph -> controls path, so the paired matched-minus-size-matched difference is not confounded
with size (docs/departures.md#cross-region).

How (deterministic for a seed; every step is recorded in the provenance):

1. **Expand** when the target has more neurons: tile disjoint copies of the source (fresh body ids,
   each copy's own edges), so local wiring is kept and no edge is invented yet.
2. **Select** exactly the target's N neurons, stratified by cell type in proportion to the source
   (largest remainders), within a type by total synaptic weight (in + out), ties by body id. This keeps
   the sensory and output cell types (so the ordinary pool rule still finds both pools) and the
   best-connected core, never the leading block in storage order.
3. **Match edges** on the induced subgraph: drop the weakest edges (ties by pre, post id) when there are
   too many; when there are too few, add edges between selected neurons not yet connected, uniformly at
   random, with weights drawn from the subgraph's own weights. Added edges are random structure; their
   number is reported so that a reader can judge how much of the graph they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import BPUInputError
from .exports import Exports

INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class SizeMatch:
    """What was done to reach the target size (stored in the size-matched substrate's provenance)."""

    source_neurons: int
    source_edges: int
    target_neurons: int
    target_edges: int
    copies: int
    induced_edges: int
    edges_dropped: int
    edges_added: int


def _tiled(exports: Exports, copies: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``copies`` disjoint copies of the three tables; copy c shifts every body id by c x (id span + 1)."""
    neurons, rois, edges = exports.neurons, exports.roi_counts, exports.connections
    low, high = int(neurons["bodyId"].min()), int(neurons["bodyId"].max())
    stride = high - low + 1
    if high + (copies - 1) * stride > INT64_MAX:
        raise BPUInputError(f"size matching needs {copies} copies of {exports.directory}, but shifted body ids "
                            f"would not fit int64")

    def shifted(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        parts = []
        for c in range(copies):
            part = frame.copy()
            for column in columns:
                part[column] = part[column].to_numpy(np.int64) + np.int64(c * stride)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    return (shifted(neurons, ("bodyId",)), shifted(rois, ("bodyId",)),
            shifted(edges, ("bodyId_pre", "bodyId_post")))


def _quota(type_counts: pd.Series, total: int) -> pd.Series:
    """Neurons to keep per type: proportional to the type's share, largest remainders, summing to ``total``."""
    exact = type_counts / type_counts.sum() * total
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((type_counts.index.to_numpy(str), -(exact - quota).to_numpy()))
    quota.iloc[order[: total - int(quota.sum())]] += 1
    return quota


def _selected(neurons: pd.DataFrame, edges: pd.DataFrame, total: int) -> np.ndarray:
    """Body ids of the ``total`` neurons kept: per type by quota, strongest (in + out weight) first."""
    weight = (edges.groupby("bodyId_pre")["weight"].sum().add(edges.groupby("bodyId_post")["weight"].sum(),
                                                               fill_value=0.0))
    frame = pd.DataFrame({"bodyId": neurons["bodyId"].to_numpy(np.int64),
                          "type": neurons["type"].fillna("").astype(str).to_numpy()})
    frame["weight"] = weight.reindex(frame["bodyId"]).fillna(0.0).to_numpy()
    quota = _quota(frame["type"].value_counts(), total)
    frame = frame.sort_values(["type", "weight", "bodyId"], ascending=[True, False, True])
    keep = frame.groupby("type", sort=False).cumcount() < frame["type"].map(quota).to_numpy()
    return np.sort(frame.loc[keep, "bodyId"].to_numpy(np.int64))


def _matched_edges(edges: pd.DataFrame, ids: np.ndarray, target: int, rng: np.random.Generator
                   ) -> tuple[pd.DataFrame, int, int]:
    """Exactly ``target`` edges among ``ids``: drop the weakest, or add random ones with resampled weights."""
    if target > ids.size * (ids.size - 1):
        raise BPUInputError(f"size matching: {target} edges do not fit among {ids.size} neurons without self-loops")
    if len(edges) >= target:
        kept = edges.sort_values(["weight", "bodyId_pre", "bodyId_post"], ascending=[False, True, True])
        return kept.iloc[:target].sort_values(["bodyId_pre", "bodyId_post"], ignore_index=True), len(edges) - target, 0
    n = ids.size
    # Cells as int64 codes pre * n + post; each batch keeps, in draw order, the off-diagonal codes seen
    # neither before nor earlier in the batch (vectorised, no per-edge Python loop).
    have = np.sort(np.searchsorted(ids, edges["bodyId_pre"].to_numpy()).astype(np.int64) * n
                   + np.searchsorted(ids, edges["bodyId_post"].to_numpy()))
    need = target - len(edges)
    added: list[np.ndarray] = []
    remaining = need
    while remaining > 0:
        pre = rng.integers(0, n, size=2 * remaining + 16)
        post = rng.integers(0, n, size=pre.size)
        codes = pre.astype(np.int64) * n + post
        first = np.zeros(codes.size, dtype=bool)
        first[np.unique(codes, return_index=True)[1]] = True
        new = codes[first & (pre != post) & ~np.isin(codes, have)][:remaining]
        added.append(new)
        have = np.sort(np.concatenate([have, new]))
        remaining -= new.size
    codes = np.concatenate(added)
    pairs = np.stack([codes // n, codes % n], axis=1)
    weights = rng.choice(edges["weight"].to_numpy(), size=need, replace=True)
    extra = pd.DataFrame({"bodyId_pre": ids[pairs[:, 0]], "bodyId_post": ids[pairs[:, 1]], "weight": weights})
    merged = pd.concat([edges, extra], ignore_index=True).sort_values(["bodyId_pre", "bodyId_post"], ignore_index=True)
    return merged, 0, need


def size_match_exports(exports: Exports, *, target_neurons: int, target_edges: int, seed: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, SizeMatch]:
    """The source exports cut or expanded to ``target_neurons`` and ``target_edges`` (see the module doc).

    Returns neurons (export schema, transmitter column as ``predictedNt``), roi_counts, connections and
    the record of what was done.
    """
    if target_neurons < 2 or target_edges < 1:
        raise BPUInputError(f"size matching needs a target of >= 2 neurons and >= 1 edge; got {target_neurons} "
                            f"neurons and {target_edges} edges")
    source_n = len(exports.neurons)
    copies = -(-target_neurons // source_n)
    neurons, rois, edges = _tiled(exports, copies)
    ids = _selected(neurons, edges, target_neurons)
    inside = np.isin(edges["bodyId_pre"].to_numpy(), ids) & np.isin(edges["bodyId_post"].to_numpy(), ids)
    induced = edges.loc[inside, ["bodyId_pre", "bodyId_post", "weight"]]
    matched, dropped, added = _matched_edges(induced, ids, target_edges, np.random.default_rng(seed))
    neurons = neurons[neurons["bodyId"].isin(ids)].rename(columns={"transmitter": "predictedNt"})
    rois = rois[rois["bodyId"].isin(ids)]
    record = SizeMatch(source_neurons=source_n, source_edges=len(exports.connections), target_neurons=target_neurons,
                       target_edges=target_edges, copies=copies, induced_edges=int(inside.sum()),
                       edges_dropped=dropped, edges_added=added)
    return (neurons.reset_index(drop=True), rois.reset_index(drop=True), matched.reset_index(drop=True), record)
