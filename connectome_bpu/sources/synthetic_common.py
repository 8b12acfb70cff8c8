"""What the embedded substrate generators (``synthetic_cx``, ``synthetic_mb``) share, so both stay one method.

Why one module: the two substrates are positive controls for different task families, and a comparison
between them is only fair if everything but the circuit is built the same way - synapse-count
statistics, the random background, how ``roi_counts.csv`` is derived from the edges, how the input and
output neurons get their synapses outside the primary ROIs (which is what makes the ordinary region pool
rule of docs/method.md#pools find them), which neurons keep a transmitter label, and the provenance that
marks the tables as synthetic. A generator contributes its cell types and structured wiring; the rest
lives here.

Edges are frames with columns ``pre``, ``post`` (row indices into the generator's neuron list), ``roi``
and ``weight``. Random draws come from the generator's own ``numpy`` Generator, in the order in which
the generator calls these helpers, so a generator stays a pure function of its arguments; the one
exception is :func:`transmitter_labels`, which has a stream of its own (see there).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from . import write_export_set

# Lognormal spread of the synapse count of one structured connection around its class median.
SIGMA = 0.5
# Background edges are mostly one or two synapses, with a slightly wider spread than structured ones.
BACKGROUND_MEDIAN = 1.5
BACKGROUND_SIGMA = 0.6
# The outside share of an input neuron's input (of an output neuron's output) is drawn from this range; the
# partner-synapse floor keeps it there even for a neuron with few synapses inside the primary ROIs.
OUTSIDE_SHARE = (0.60, 0.85)
OUTSIDE_PARTNER_MEDIAN = 40.0
# Second seed word of the transmitter-label stream, so it never coincides with the wiring stream of a seed.
LABEL_STREAM = 0x6C61626C  # "labl"


def lognormal_counts(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, size: int,
                     factor: np.ndarray | float = 1.0) -> np.ndarray:
    """Integer synapse counts >= 1 from a lognormal with the given median, scaled by ``factor``.

    Lognormal because measured connection weights are heavy-tailed; the floor of 1 because an edge in an
    export always stands for at least one synapse.
    """
    draws = rng.lognormal(mean=np.log(median), sigma=sigma, size=size)
    return np.maximum(1, np.rint(draws * factor)).astype(np.int64)


def background_edges(rng: np.random.Generator, n: int, density: float, rois: tuple[str, ...]
                     ) -> pd.DataFrame:
    """Each ordered pair of distinct neurons independently with probability ``density``, in a ROI drawn from
    ``rois``.

    Real connectomes have many weak connections outside any textbook circuit; the background adds that
    noise around the structured wiring. The number of edges is drawn first and the pairs then without
    replacement from the n (n - 1) off-diagonal cells, which is exact and needs no dense n x n mask.
    """
    cells = n * (n - 1)
    count = int(rng.binomial(cells, density))
    code = rng.choice(cells, size=count, replace=False)
    post = code // (n - 1)
    pre = code % (n - 1)
    pre = pre + (pre >= post)  # skip the diagonal
    return pd.DataFrame({
        "pre": pre, "post": post,
        "roi": np.asarray(rois)[rng.integers(0, len(rois), size=count)],
        "weight": lognormal_counts(rng, BACKGROUND_MEDIAN, BACKGROUND_SIGMA, count),
    })


def edge_roi_counts(synapses: pd.DataFrame) -> pd.DataFrame:
    """Per-neuron, per-ROI ``pre`` (outgoing) and ``post`` (incoming) synapse counts of exactly these edges.

    Derived from the edges rather than drawn, so ``roi_counts.csv`` inside the primary ROIs is consistent
    with ``connections.csv``, as in a real export. Columns: ``index`` (neuron row), ``roi``, ``pre``, ``post``.
    """
    return pd.concat([
        pd.DataFrame({"index": synapses["pre"], "roi": synapses["roi"], "pre": synapses["weight"], "post": 0}),
        pd.DataFrame({"index": synapses["post"], "roi": synapses["roi"], "pre": 0, "post": synapses["weight"]}),
    ]).groupby(["index", "roi"], as_index=False)[["pre", "post"]].sum()


def outside_roi_rows(rng: np.random.Generator, inside: pd.DataFrame, types: np.ndarray,
                     plan: tuple[tuple[str, str, str], ...]) -> pd.DataFrame:
    """Extra ROI rows outside the primary ROIs, one per neuron of each ``(type, roi, side)`` in ``plan``.

    ``side`` is ``"post"`` for an input type (its input arrives outside) and ``"pre"`` for an output type.
    The region pool rule calls a neuron sensory or output by the share of its input or output outside the
    primary ROIs, so these rows are what makes the intended input and output neurons pools without any
    labelling. For a share s drawn from ``OUTSIDE_SHARE`` the outside count is
    ceil((inside + partners) * s / (1 - s)), with ``partners`` a lognormal floor, so the share lies in range
    whatever the neuron's count inside. ``inside`` is :func:`edge_roi_counts` of the edges.
    """
    totals = inside.groupby("index")[["pre", "post"]].sum().reindex(np.arange(types.size), fill_value=0)
    parts = []
    for cell_type, roi, side in plan:
        index = np.flatnonzero(types == cell_type)
        share = rng.uniform(*OUTSIDE_SHARE, size=index.size)
        partners = lognormal_counts(rng, OUTSIDE_PARTNER_MEDIAN, SIGMA, index.size)
        count = np.ceil((totals[side].to_numpy()[index] + partners) * share / (1.0 - share)).astype(np.int64)
        other = "pre" if side == "post" else "post"
        parts.append(pd.DataFrame({"index": index, "roi": roi, side: count, other: 0}))
    return pd.concat(parts, ignore_index=True)


def transmitter_labels(transmitters: np.ndarray, coverage: float, seed: int) -> np.ndarray:
    """The ``predictedNt`` column: a random ``coverage`` share of the neurons (rounded half up) keeps its
    transmitter, the others get ``""`` (no prediction).

    Why partial labels: real exports carry partial or no transmitter predictions (hemibrain none, FlyWire
    about 60 % of the weight), and ``signed_policy: auto`` signs a matrix only when labelled neurons carry
    at least ``sign_coverage_threshold`` of the weight, so a fully labelled synthetic substrate would be
    signed where the real runs it stands for are not. The subset comes from its own stream,
    ``default_rng([seed, LABEL_STREAM])``, so wiring and synapse counts are the same for every coverage
    and only the labels differ; it is a prefix of one permutation, so raising the coverage only adds
    labels.
    """
    n = transmitters.size
    labelled = np.zeros(n, dtype=bool)
    labelled[np.random.default_rng([seed, LABEL_STREAM]).permutation(n)[:int(np.floor(coverage * n + 0.5))]] = True
    return np.where(labelled, transmitters, "")


def export_tables(*, body_ids: np.ndarray, types: np.ndarray, instances: pd.Series, labels: np.ndarray,
                  synapses: pd.DataFrame, inside: pd.DataFrame, outside: pd.DataFrame
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(neurons, roi_counts, connections) in the export schema from the generator's neurons and edges.

    A neuron's ``pre``/``post`` is the sum over all its ROI rows (inside and outside), as neuPrint reports
    whole-neuron totals; ``roi_counts`` is sorted by neuron and ROI and ``connections`` sums repeated
    (pre, post) pairs, so one pair is one row whatever wiring rules produced it.
    """
    roi_rows = pd.concat([inside, outside], ignore_index=True).sort_values(["index", "roi"], ignore_index=True)
    totals = roi_rows.groupby("index")[["pre", "post"]].sum().reindex(np.arange(body_ids.size), fill_value=0)
    neurons = pd.DataFrame({
        "bodyId": body_ids,
        "type": types,
        "instance": instances,
        "pre": totals["pre"].to_numpy(np.int64),
        "post": totals["post"].to_numpy(np.int64),
        "predictedNt": labels,
    })
    roi_counts = pd.DataFrame({"bodyId": body_ids[roi_rows["index"].to_numpy()], "roi": roi_rows["roi"],
                               "pre": roi_rows["pre"].to_numpy(np.int64),
                               "post": roi_rows["post"].to_numpy(np.int64)})
    pairs = synapses.groupby(["pre", "post"], as_index=False)["weight"].sum()
    connections = pd.DataFrame({"bodyId_pre": body_ids[pairs["pre"].to_numpy()],
                                "bodyId_post": body_ids[pairs["post"].to_numpy()],
                                "weight": pairs["weight"].to_numpy(np.int64)})
    return neurons, roi_counts, connections


def write_synthetic_exports(out_dir: str | Path, generate: Callable[..., tuple[pd.DataFrame, ...]],
                            parameters: dict, *, source: str, counts: dict, **provenance: object) -> dict:
    """Run ``generate(**parameters)`` and write its tables and ``provenance.json``; return the counts summary.

    The provenance says ``synthetic: true``, names the generator and its parameters, and carries the
    generator's own fields (description, ROIs, body-id base) in the order given, so every report can tell a
    synthetic substrate from a connectome and rebuild it. ``counts`` are generator-specific entries put
    before the common ones (sizes, ``labelled_neurons``, neurons per type).
    """
    neurons, roi_counts, connections = generate(**parameters)
    summary = {
        **counts,
        "neurons": len(neurons),
        "roi_count_rows": len(roi_counts),
        "connections": len(connections),
        "synapses_in_connections": int(connections["weight"].sum()),
        "labelled_neurons": int((neurons["predictedNt"] != "").sum()),
        "cell_types": {str(k): int(v) for k, v in neurons["type"].value_counts(sort=False).items()},
    }
    write_export_set(out_dir, neurons=neurons, roi_counts=roi_counts, connections=connections, provenance={
        "synthetic": True,
        "source": source,
        "generator": f"{generate.__module__}.{generate.__qualname__}",
        "package_version": __version__,
        "parameters": parameters,
        **provenance,
        "counts": summary,
    })
    return summary
