"""``synthetic_cx``: the embedded default substrate, a procedurally generated CX-like ring attractor.

Why it exists: with no neuPrint token and no network the default configuration must still run end to
end, and the benchmark needs a positive control whose topology is known to matter for heading
integration. The tables are written in exactly the export schema of a neuPrint download
(docs/method.md#exports), so every later stage treats them like real data; the ``instance`` strings
start with "synthetic" and ``provenance.json`` says ``synthetic: true`` so nobody mistakes them for a connectome.

One copy (a "module") has ``NEURONS_PER_COPY`` = 128 neurons on ``N_WEDGES`` = 8 heading angles:

============ ===== ==== ====================================================================
type         count NT   wiring (ROI of the synapses)
============ ===== ==== ====================================================================
ER_ring      16    GABA input: most synapses onto it lie outside the CX (``BU``); inhibits EPG
                        with a (1 - cos) profile around its preferred angle (EB)
LNO_velocity 8     ACh  input, ``N_LNO_PER_SIDE`` = 4 per side: most synapses onto it lie outside the
                        CX (``LAL``); excites the same-side PFNd (strong) and PEN (medium) (NO)
EPG          16    ACh  one per wedge and side; -> PEN, PEG, Delta7, PFNd, PFL3 (PB); EPG L<->R (EB)
PEN          16    ACh  EPG -> PEN in PB, LNO -> PEN in NO; PEN_L projects back to EPG one wedge
                        clockwise (+1), PEN_R one wedge anticlockwise (-1) (EB): the angular-velocity
                        shift of a ring attractor
PEG          8     ACh  EPG -> PEG (PB) -> EPG same wedge (EB): bump-sustaining positive feedback
Delta7       16    Glu  EPG -> Delta7 (PB); Delta7 inhibits EPG, PEN and PFNd with a (1 - cos) profile
PFNd         16    ACh  EPG -> PFNd (PB), LNO -> PFNd (NO); PFNd -> hDeltaB shifted by +/-1 column,
                        -> PFL3, FC2 (FB)
hDeltaB      8     ACh  PFNd -> hDeltaB -> FC2 and PFL3 half a turn away (FB)
FC2          8     ACh  PFNd, hDeltaB -> FC2 -> PFL3 same column (FB)
PFL3         16    ACh  output: EPG heading (PB, shifted by +/-1) and FB columns in; most of its output
                        synapses lie outside the CX (``LAL``)
============ ===== ==== ====================================================================

Why the LNO neurons are there (the excitatory sensory path)
------------------------------------------------------------
The BPU core (docs/method.md#bpu) has no bias, leak or tonic drive: h starts at 0, the adapter
injects ``W_in u + b_in`` into the *sensory* neurons at the first microstep only, and every microstep
is ``h <- ReLU(W h (+ injection))``. A neuron can therefore only become active if an *excitatory*
presynaptic partner is active. The ring neurons are GABAergic, so under the signed matrix (which ``auto``
picks at ``transmitter_coverage`` 1.0, see below) all their columns are negative: whatever the adapter
injects into them can only push their targets below zero, ReLU clamps those to 0, and nothing downstream
ever fires. With rings as the only sensory neurons the output pool
stayed exactly 0, every model collapsed to its output bias, and the connectome, ``no_recurrence`` and
every Dale-preserving control scored identically - a positive control that controls nothing.

Real flies do not rely on the ring neurons alone either: self-motion (angular and translational
velocity) reaches the CX through excitatory noduli input neurons (LNO, GLNO, LCNO families) that
receive their input in the LAL/CRE and synapse in the noduli onto PFN and PEN neurons. ``LNO_velocity``
plays that role here: cholinergic, most input outside the CX (so the ordinary threshold rule of
docs/method.md#pools makes them sensory, like the rings), and a same-side projection onto PFNd and
PEN in NO. That gives an all-excitatory route from the sensory pool to the output pool within a few
hops - LNO -> PFNd -> PFL3 (2), LNO -> PFNd -> hDeltaB/FC2 -> PFL3 (3), LNO -> PEN -> EPG -> PFL3 (3) -
so injected activity survives the ReLU under the signed matrix. The ring neurons keep their role: they
cannot drive anything on their own, but they sculpt the EPG activity that the LNO -> PEN -> EPG path
(and the EPG/PEN/PEG loops) create, with inhibition opposite to their preferred angle; Delta7 adds the
cosine-shaped recurrent inhibition. Under ``force_unsigned`` every column is positive and both input
families excite the core.

Transmitter labels: why only some neurons keep theirs
-----------------------------------------------------
``transmitter_coverage`` is the fraction of all neurons, drawn at random, whose ``predictedNt`` is filled;
the others get an empty label. Real exports carry partial or no transmitter predictions (hemibrain none,
FlyWire about 60 % of the weight), and ``signed_policy: auto`` signs a matrix only when labelled neurons
carry at least ``sign_coverage_threshold`` (0.95) of the weight. With every neuron labelled the synthetic CX
was signed under ``auto`` while the real runs it stands for were not, and there its inhibitory ring neurons
under the ReLU erased the memory from one timestep to the next: it failed as a positive control of the
(unsigned) real runs for a reason that has nothing to do with its topology. At the
configured 0.6 a random 60 % of the neurons carry about 60 % of the weight, so ``auto`` keeps the matrix
unsigned like the real runs; 1.0 reproduces the fully labelled variant, which ``auto`` signs. The labelled
subset has a random stream of its own (``synthetic_common.transmitter_labels``), so connections and ROI
counts are identical for every coverage, and at 1.0 the three tables are byte for byte those of the
generator before the option existed.

Synapse counts are lognormal (integers >= 1, stronger classes have larger medians, profiles scale
them); ``background_density`` adds sparse random edges between any two distinct neurons, and EPGs of
neighbouring copies are weakly coupled so several copies form one connected graph. Count statistics,
background, ROI bookkeeping and labels come from ``synthetic_common``, shared with ``synthetic_mb``.

Pools are *not* labelled here. ``roi_counts.csv`` is made consistent with ``connections.csv`` (every
edge lies in one primary ROI; a neuron's in-CX ``pre``/``post`` is the sum of its assigned edge weights)
and only the ring and LNO neurons get extra input synapses outside the CX and only the PFL3 neurons extra
output synapses outside it. The ordinary region pool rule (docs/method.md#pools) then finds ring and LNO
neurons input-dominated (sensory, by the threshold rule), PFL3 neurons output-dominated (output) and
everything else a near tie with no family match (internal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import BPUInputError
from ..substrates import CX_ROIS
from .synthetic_common import (
    SIGMA,
    background_edges,
    edge_roi_counts,
    export_tables,
    lognormal_counts,
    outside_roi_rows,
    transmitter_labels,
    write_synthetic_exports,
)

PRIMARY_ROIS = CX_ROIS   # the substrate table's CX ROIs
INPUT_ROI = "BU"    # where ring neurons receive their (simulated) visual input, outside the CX
SELF_MOTION_ROI = "LAL"  # where LNO neurons receive their (simulated) self-motion input, outside the CX
OUTPUT_ROI = "LAL"  # where PFL3 neurons send their (simulated) steering output, outside the CX
N_WEDGES = 8
N_RING = 16
N_LNO_PER_SIDE = 4
# Body ids are far above 2**53 (like FlyWire's 18-digit root ids), so any pass through float64 or int32
# anywhere downstream corrupts them visibly. Copies sit 2**32 apart: int32 truncation makes them collide.
BODY_ID_BASE = 10**18
COPY_ID_STRIDE = 2**32

# Median synapse count of one connection by strength class (lognormal around it).
_MEDIAN = {"strong": 10.0, "medium": 5.0, "weak": 2.5, "coupling": 2.0}
# Which neurons get synapses outside the CX (type, outside ROI, side): ring and LNO input, PFL3 output.
_OUTSIDE = (("ER_ring", INPUT_ROI, "post"), ("LNO_velocity", SELF_MOTION_ROI, "post"), ("PFL3", OUTPUT_ROI, "pre"))
_RING_PROFILE_MIN = 0.25     # ring -> EPG edges exist where (1 - cos)/2 exceeds this
_DELTA7_PROFILE_MIN = 0.30   # Delta7 -> target edges likewise

_CELL_TYPES = (  # (type, transmitter, number per copy, layout)
    ("ER_ring", "GABA", N_RING, "ring"),
    ("LNO_velocity", "ACh", 2 * N_LNO_PER_SIDE, "bilateral"),
    ("EPG", "ACh", 2 * N_WEDGES, "sided"),
    ("PEN", "ACh", 2 * N_WEDGES, "sided"),
    ("PEG", "ACh", N_WEDGES, "column"),
    ("Delta7", "Glu", 2 * N_WEDGES, "sided"),
    ("PFNd", "ACh", 2 * N_WEDGES, "sided"),
    ("hDeltaB", "ACh", N_WEDGES, "column"),
    ("FC2", "ACh", N_WEDGES, "column"),
    ("PFL3", "ACh", 2 * N_WEDGES, "sided"),
)
NEURONS_PER_COPY = sum(count for _, _, count, _ in _CELL_TYPES)
_SIDES = ("L", "R")


@dataclass(frozen=True)
class _Rule:
    """One class of connections inside a copy: which pairs connect, where, and how strongly."""

    pre: str
    post: str
    roi: str
    strength: str
    factor: Callable[[dict, dict], np.ndarray]  # (pre attrs, post attrs) -> (n_pre, n_post) factor, 0 = none


def _shift(side: np.ndarray) -> np.ndarray:
    """+1 wedge for left-side cells, -1 for right-side cells (the PEN/PFN/PFL offsets)."""
    return np.where(side == 0, 1, -1)


def _same(key: str) -> Callable[[dict, dict], np.ndarray]:
    return lambda a, b: (a[key] == b[key]).astype(float)


def _same_wedge_and_side(a: dict, b: dict) -> np.ndarray:
    return ((a["wedge"] == b["wedge"]) & (a["side"] == b["side"])).astype(float)


def _profile(minimum: float) -> Callable[[dict, dict], np.ndarray]:
    """(1 - cos(angle difference)) / 2: zero at the cell's own angle, one opposite to it (inhibition)."""
    def factor(a: dict, b: dict) -> np.ndarray:
        # Rounded so that last-bit differences between libm cos implementations cannot change a count.
        value = np.round((1.0 - np.cos(b["theta"] - a["theta"])) / 2.0, 6)
        return np.where(value > minimum, value, 0.0)
    return factor


def _shifted_by_pre_side(a: dict, b: dict) -> np.ndarray:
    return (b["wedge"] == (a["wedge"] + _shift(a["side"])) % N_WEDGES).astype(float)


def _half_turn(a: dict, b: dict) -> np.ndarray:
    return (b["wedge"] == (a["wedge"] + N_WEDGES // 2) % N_WEDGES).astype(float)


def _heading_to_pfl(a: dict, b: dict) -> np.ndarray:
    """PFL3 of column c and side s reads the EPG heading of wedge c + shift(s) on the same side."""
    return ((a["wedge"] == (b["wedge"] + _shift(b["side"])) % N_WEDGES) & (a["side"] == b["side"])).astype(float)


def _opposite_side(a: dict, b: dict) -> np.ndarray:
    return ((a["wedge"] == b["wedge"]) & (a["side"] != b["side"])).astype(float)


_RULES = (
    _Rule("ER_ring", "EPG", "EB", "strong", _profile(_RING_PROFILE_MIN)),
    _Rule("LNO_velocity", "PFNd", "NO", "strong", _same("side")),
    _Rule("LNO_velocity", "PEN", "NO", "medium", _same("side")),
    _Rule("EPG", "EPG", "EB", "weak", _opposite_side),
    _Rule("EPG", "PEN", "PB", "strong", _same_wedge_and_side),
    _Rule("PEN", "EPG", "EB", "strong", _shifted_by_pre_side),
    _Rule("EPG", "PEG", "PB", "medium", _same("wedge")),
    _Rule("PEG", "EPG", "EB", "medium", _same("wedge")),
    _Rule("EPG", "Delta7", "PB", "strong", _same_wedge_and_side),
    _Rule("Delta7", "EPG", "PB", "medium", _profile(_DELTA7_PROFILE_MIN)),
    _Rule("Delta7", "PEN", "PB", "medium", _profile(_DELTA7_PROFILE_MIN)),
    _Rule("Delta7", "PFNd", "PB", "medium", _profile(_DELTA7_PROFILE_MIN)),
    _Rule("EPG", "PFNd", "PB", "medium", _same_wedge_and_side),
    _Rule("EPG", "PFL3", "PB", "medium", _heading_to_pfl),
    _Rule("PFNd", "hDeltaB", "FB", "strong", _shifted_by_pre_side),
    _Rule("PFNd", "PFL3", "FB", "medium", _same("wedge")),
    _Rule("PFNd", "FC2", "FB", "weak", _same("wedge")),
    _Rule("hDeltaB", "FC2", "FB", "medium", _half_turn),
    _Rule("hDeltaB", "PFL3", "FB", "strong", _half_turn),
    _Rule("FC2", "PFL3", "FB", "medium", _same("wedge")),
)


def _template() -> pd.DataFrame:
    """The neurons of one copy: type, transmitter, wedge/side layout, angle and an instance suffix."""
    parts = []
    for cell_type, transmitter, count, layout in _CELL_TYPES:
        k = np.arange(count)
        if layout == "ring":
            wedge, side, theta = np.full(count, -1), np.full(count, -1), 2 * np.pi * k / count
            suffix = [f"a{i:02d}" for i in k]
        elif layout == "bilateral":  # no heading angle: half of the cells per side
            wedge, side, theta = np.full(count, -1), k // (count // 2), np.zeros(count)
            suffix = [f"{_SIDES[s]}{i}" for s, i in zip(side, k % (count // 2))]
        else:
            wedge = k % N_WEDGES
            side = k // N_WEDGES if layout == "sided" else np.full(count, -1)
            theta = 2 * np.pi * wedge / N_WEDGES
            suffix = [f"w{w}_{_SIDES[s]}" if s >= 0 else f"w{w}" for w, s in zip(wedge, side)]
        parts.append(pd.DataFrame({"type": cell_type, "transmitter": transmitter, "wedge": wedge,
                                   "side": side, "theta": theta, "suffix": suffix}))
    template = pd.concat(parts, ignore_index=True)
    template["local"] = np.arange(len(template))
    return template


def _template_edges(template: pd.DataFrame) -> pd.DataFrame:
    """All structured connections of one copy: local pre/post index, ROI, strength class, profile factor."""
    attrs = {cell_type: {key: group[key].to_numpy() for key in ("wedge", "side", "theta", "local")}
             for cell_type, group in template.groupby("type", sort=False)}
    parts = []
    for rule in _RULES:
        a, b = attrs[rule.pre], attrs[rule.post]
        factor = rule.factor({k: v[:, None] for k, v in a.items()}, {k: v[None, :] for k, v in b.items()})
        i, j = np.nonzero(factor > 0)
        parts.append(pd.DataFrame({"pre": a["local"][i], "post": b["local"][j], "roi": rule.roi,
                                   "strength": rule.strength, "factor": factor[i, j]}))
    return pd.concat(parts, ignore_index=True)


def generate_synthetic_cx(*, copies: int, seed: int, background_density: float, transmitter_coverage: float
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build (neurons, roi_counts, connections) in the export schema; a pure function of its arguments.

    Wiring and synapse counts come in a fixed order from one ``numpy.random.default_rng(seed)`` and the
    labelled subset from its own stream (module docstring), so equal arguments give equal tables (and
    byte-identical CSVs) and ``transmitter_coverage`` changes ``predictedNt`` only.
    """
    if copies < 1:
        raise BPUInputError(f"synthetic_cx.copies must be an integer >= 1 (got {copies!r})")
    if not 0.0 <= background_density <= 0.5:
        raise BPUInputError(f"synthetic_cx.background_density must be in [0, 0.5] (got {background_density!r})")
    if not 0.0 <= transmitter_coverage <= 1.0:
        raise BPUInputError(f"synthetic_cx.transmitter_coverage must be in [0, 1] (got {transmitter_coverage!r})")
    rng = np.random.default_rng(seed)
    template = _template()
    per_copy = len(template)
    n = per_copy * copies
    copy_of = np.repeat(np.arange(copies), per_copy)
    local = np.tile(template["local"].to_numpy(), copies)
    body_ids = BODY_ID_BASE + copy_of.astype(np.int64) * COPY_ID_STRIDE + local
    types = np.tile(template["type"].to_numpy(), copies)

    # Structured edges, tiled over copies (global index = copy * per_copy + local index).
    edges = _template_edges(template)
    offsets = np.repeat(np.arange(copies) * per_copy, len(edges))
    structured = pd.DataFrame({
        "pre": np.tile(edges["pre"].to_numpy(), copies) + offsets,
        "post": np.tile(edges["post"].to_numpy(), copies) + offsets,
        "roi": np.tile(edges["roi"].to_numpy(), copies),
        "weight": lognormal_counts(rng, np.tile(edges["strength"].map(_MEDIAN).to_numpy(), copies), SIGMA,
                                   len(edges) * copies, np.tile(edges["factor"].to_numpy(), copies)),
    })

    # Weak coupling: each EPG drives the same-wedge, same-side EPG of the next copy (a ring of copies).
    # With a single copy the "next copy" is the copy itself, so those would-be self-loops are dropped.
    epg = template.loc[template["type"] == "EPG", "local"].to_numpy()
    source_copy = np.repeat(np.arange(copies), epg.size)
    target_copy = (source_copy + 1) % copies
    coupling = pd.DataFrame({
        "pre": source_copy * per_copy + np.tile(epg, copies),
        "post": target_copy * per_copy + np.tile(epg, copies),
        "roi": "EB",
        "weight": lognormal_counts(rng, _MEDIAN["coupling"], SIGMA, epg.size * copies),
    })[target_copy != source_copy]

    synapses = pd.concat([structured, coupling, background_edges(rng, n, background_density, PRIMARY_ROIS)],
                         ignore_index=True)
    inside = edge_roi_counts(synapses)
    per_neuron = template.iloc[local].reset_index(drop=True)
    return export_tables(
        body_ids=body_ids, types=types,
        instances=("synthetic_" + per_neuron["type"] + "_copy" + pd.Series(copy_of).astype(str) + "_"
                   + per_neuron["suffix"]),
        labels=transmitter_labels(per_neuron["transmitter"].to_numpy(), transmitter_coverage, seed),
        synapses=synapses, inside=inside, outside=outside_roi_rows(rng, inside, types, _OUTSIDE))


def write_synthetic_cx(out_dir: str | Path, *, copies: int, seed: int, background_density: float,
                       transmitter_coverage: float) -> dict:
    """Generate the substrate and write neurons.csv, roi_counts.csv, connections.csv and provenance.json.

    Returns the summary that is also stored in ``provenance.json`` under ``counts``.
    """
    return write_synthetic_exports(
        out_dir, generate_synthetic_cx,
        {"copies": copies, "seed": seed, "background_density": background_density,
         "transmitter_coverage": transmitter_coverage},
        source="synthetic_cx",
        counts={"copies": copies, "neurons_per_copy": NEURONS_PER_COPY},
        description=(
            "SYNTHETIC DATA, not a measured connectome: a procedurally generated, central-complex-inspired "
            "ring-attractor network (ring GABA inputs and LNO-like ACh self-motion inputs onto PFNd/PEN in "
            "the noduli, both with most input outside the CX, EPG wedges, PEN +/-1 shift neurons, PEG, "
            "Delta7 cosine inhibition, PFNd/hDeltaB/FC2 fan-shaped-body columns, PFL3 outputs with most "
            "output outside the CX), lognormal synapse counts, sparse random background "
            "edges, weak coupling between copies and transmitter labels on a random fraction of the "
            "neurons. Pools come from the ordinary region pool rule."),
        primary_rois=list(PRIMARY_ROIS),
        outside_rois={"input": INPUT_ROI, "self_motion_input": SELF_MOTION_ROI, "output": OUTPUT_ROI},
        body_id_base=BODY_ID_BASE,
    )
