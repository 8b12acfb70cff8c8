"""``synthetic_optic``: an embedded, offline, procedurally generated optic-lobe-like motion circuit.

Why it exists: the optic-flow task family needs a substrate that runs with no download, and a positive
control whose topology is known to matter for ego-motion. Its columns sit on the same hexagonal lattice
as the simulated eye (``connectome_bpu.optic_flow``), one column per ommatidium, and every column carries
the same small elementary-motion-detector circuit, in the spirit of the fly's ON pathway
(L1 -> Mi1/Mi9 -> T4 -> lobula-plate tangential cells):

====== ================ ===== ===========================================================================
type   count            NT    wiring (ROI of the synapses)
====== ================ ===== ===========================================================================
L      1 per column     ACh   input: most synapses onto it lie outside the optic lobe (``RE``, the
                              retina); -> Mi1 and Mi9 of its column (LA); weak lateral L <-> L between
                              neighbouring columns (LA)
Mi1    1 per column     ACh   fast relay: L -> Mi1 -> every T4 of the column (ME)
Mi9    1 per column     ACh   slow pair with Tm9: L -> Mi9 <-> Tm9 (ME), a reciprocal excitatory loop
Tm9    1 per column     ACh   that holds a low-pass copy of the column's luminance; Mi9 -> Mi4 (ME)
Mi4    1 per column     GABA  Mi4 of column j -| T4 of each neighbour i whose preferred direction points
                              from i to j (ME): delayed inhibition from the null side
T4     6 per column     ACh   one per hexagonal direction d: Mi1(i) excites, Mi4(i + d) inhibits (ME);
                              -> the tangential cell of its direction and region (LOP)
LPTC   6 x 7 regions    ACh   output: pools the T4 of one direction over one region of the eye (the
                              central hexagon or one of six 60-degree sectors around it) (LOP); most of
                              its output synapses lie outside the optic lobe (``PLP``)
LPfb   6 x 7 regions    ACh   a synthetic feedback partner per tangential cell: LPTC <-> LPfb (LOP), a
                              reciprocal loop like Mi9/Tm9 that integrates the pooled motion over frames
====== ================ ===== ===========================================================================

How it computes motion (why this wiring is a positive control): T4(i, d) = ReLU(Mi1(i) - Mi4(i + d)) is a
Barlow-Levick detector. For image motion against d (from column i + d towards i), the slow Mi9/Tm9 copy
of column i + d still carries the pattern when it reaches column i, and the inhibition cancels the
excitation; for motion along d it does not. The rectification turns that correlation into a mean
response that depends on the direction of motion, the tangential cells sum it over a region, and their
feedback loops average it over frames (the episode's self-motion is constant). Yaw moves the whole image
one way on both sides of the eye, forward translation moves it outwards on each side, and lateral
translation moves it the same way with a pattern over azimuth, so a linear readout of the 42 tangential
cells can tell the components apart. The delays come from slow recurrent loops, not from path lengths, so
they do not depend on the number of microsteps per frame. A random or shuffled control has the same
neuron count, edge count and spectral radius but none of this retinotopic order.

The detector is only retinotopic if ommatidium i drives column i, which a random input map scrambles; the
optic-flow config therefore starts every model's W_in as the identity (``training.input_init:
one_to_one``, docs/tasks.md#optic-flow), with the columns in the eye's lattice order.

Transmitter labels: the detector needs inhibition, so this substrate is labelled fully by default
(``transmitter_coverage`` 1.0) and ``signed_policy: auto`` signs it. The FlyWire optic lobe carries
labels on about half of its weight and runs unsigned under ``auto``; the docs say so
(docs/tasks.md#optic-flow). The labelled subset comes from its own random stream
(``synthetic_common.transmitter_labels``), so the wiring is the same at every coverage.

Synapse counts are lognormal (``synthetic_common``), ``background_density`` adds sparse random edges, and
the ROI bookkeeping, labels and provenance come from ``synthetic_common``, shared with ``synthetic_cx``
and ``synthetic_mb``, so the substrates differ in their circuits only. Pools are not labelled: only L
gets extra input synapses outside the optic lobe and only LPTC extra output synapses, so the ordinary
region pool rule (docs/method.md#pools) finds L sensory, LPTC output and the rest internal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BPUInputError
from ..hex_lattice import HEX_DIRECTIONS, hex_axial, hex_neighbour, hex_points
from ..substrates import SYNTHETIC_OPTIC_ROIS
from ..task_knobs import is_integer
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

PRIMARY_ROIS = SYNTHETIC_OPTIC_ROIS      # lamina, medulla, lobula plate (the substrate table's)
RETINA_ROI = "RE"      # where L receives its (simulated) photoreceptor input, outside the optic lobe
OUTPUT_ROI = "PLP"     # where the tangential cells send their (simulated) output, outside the optic lobe
# Far from the other embedded substrates' id ranges (10**18, 2 * 10**18); types sit 2**32 apart.
BODY_ID_BASE = 3 * 10**18
TYPE_ID_STRIDE = 2**32
# Regions of the eye a tangential cell pools: the central hexagon (ring 0 and 1) and six 60-degree sectors around it.
REGIONS = 7
CENTRE_RADIUS = 2.0     # in lattice units (neighbours are sqrt(3) apart): the centre column and its first ring
COLUMN_TYPES = ("L", "Mi1", "Mi9", "Tm9", "Mi4")
_TYPES = COLUMN_TYPES + ("T4", "LPTC", "LPfb")
_TRANSMITTER = {"L": "ACh", "Mi1": "ACh", "Mi9": "ACh", "Tm9": "ACh", "Mi4": "GABA", "T4": "ACh", "LPTC": "ACh",
                "LPfb": "ACh"}
# Median synapse count of one connection by class. The feed-forward classes and the slow loop are of one
# order, so after the global spectral scaling (set by the loop) a signal keeps its size along the detector.
_MEDIAN = {"L>Mi1": 20.0, "L>Mi9": 20.0, "Mi9>Tm9": 20.0, "Tm9>Mi9": 20.0, "Mi9>Mi4": 20.0,
           "Mi1>T4": 20.0, "Mi4>T4": 30.0, "T4>LPTC": 12.0, "L>L": 2.0, "LPTC>LPfb": 20.0, "LPfb>LPTC": 20.0}
# The slow loop's synapse counts spread much less than the others: the loop with the largest gain sets the
# global spectral scale, so with the common spread most columns' loops would end up fast and forget at once.
_LOOP_SIGMA = 0.05
_LOOP_KINDS = ("Mi9>Tm9", "Tm9>Mi9", "LPTC>LPfb", "LPfb>LPTC")
_OUTSIDE = (("L", RETINA_ROI, "post"), ("LPTC", OUTPUT_ROI, "pre"))


def _check(hex_rings: object, seed: object, background_density: object, transmitter_coverage: object) -> None:
    """Raise BPUInputError naming ``synthetic_optic.<key>`` for the first unusable argument."""
    if not is_integer(hex_rings) or hex_rings < 1:
        raise BPUInputError(f"synthetic_optic.hex_rings must be an integer >= 1 (got {hex_rings!r}): a single "
                            "column has no neighbour, so no motion detector and no readout of motion")
    if not is_integer(seed) or seed < 0:
        raise BPUInputError(f"synthetic_optic.seed must be an integer >= 0 (got {seed!r})")
    if not 0.0 <= background_density < 1.0:
        raise BPUInputError(f"synthetic_optic.background_density must be in [0, 1) (got {background_density!r})")
    if not 0.0 <= transmitter_coverage <= 1.0:
        raise BPUInputError(f"synthetic_optic.transmitter_coverage must be in [0, 1] (got {transmitter_coverage!r})")


def region_of(points: np.ndarray) -> np.ndarray:
    """Region 0..6 of each (x, y) lattice point: 6 for the central hexagon (within ``CENTRE_RADIUS``), else the
    60-degree sector of its angle counted counter-clockwise from +x (a point on a boundary joins the sector that
    starts there), so every column belongs to exactly one region."""
    angle = np.degrees(np.arctan2(points[:, 1], points[:, 0])) % 360.0
    sector = np.floor(angle / 60.0 + 1e-9).astype(np.int64) % 6
    return np.where(np.hypot(points[:, 0], points[:, 1]) < CENTRE_RADIUS, REGIONS - 1, sector)


def _layout(columns: int) -> pd.DataFrame:
    """One row per neuron in body-id order: type, rank within the type, column (-1 for the lobula-plate cells),
    direction (-1 unless T4, LPTC or LPfb) and region (LPTC and LPfb only)."""
    parts = [pd.DataFrame({"type": t, "rank": np.arange(columns), "column": np.arange(columns),
                           "direction": -1, "region": -1}) for t in COLUMN_TYPES]
    t4 = np.arange(columns * len(HEX_DIRECTIONS))
    parts.append(pd.DataFrame({"type": "T4", "rank": t4, "column": t4 // len(HEX_DIRECTIONS),
                               "direction": t4 % len(HEX_DIRECTIONS), "region": -1}))
    pooled = np.arange(REGIONS * len(HEX_DIRECTIONS))
    for cell_type in ("LPTC", "LPfb"):
        parts.append(pd.DataFrame({"type": cell_type, "rank": pooled, "column": -1,
                                   "direction": pooled % len(HEX_DIRECTIONS),
                                   "region": pooled // len(HEX_DIRECTIONS)}))
    return pd.concat(parts, ignore_index=True)


def _structured_edges(rng: np.random.Generator, cells: pd.DataFrame, hex_rings: int) -> pd.DataFrame:
    """The column circuit of the module docstring, as one (pre, post, roi, kind) frame, weights drawn after."""
    axial = hex_axial(hex_rings)
    columns = len(axial)
    directions = len(HEX_DIRECTIONS)
    index = {t: g.index.to_numpy() for t, g in cells.groupby("type", sort=False)}
    col = np.arange(columns)
    t4 = index["T4"].reshape(columns, directions)          # t4[i, d]
    neighbour = hex_neighbour(axial)                        # (columns, directions), -1 off the lattice
    region = region_of(hex_points(hex_rings))
    frames = []

    def add(pre: np.ndarray, post: np.ndarray, roi: str, kind: str) -> None:
        frames.append(pd.DataFrame({"pre": pre, "post": post, "roi": roi, "kind": kind}))

    add(index["L"][col], index["Mi1"][col], "LA", "L>Mi1")
    add(index["L"][col], index["Mi9"][col], "LA", "L>Mi9")
    add(index["Mi9"][col], index["Tm9"][col], "ME", "Mi9>Tm9")
    add(index["Tm9"][col], index["Mi9"][col], "ME", "Tm9>Mi9")
    add(index["Mi9"][col], index["Mi4"][col], "ME", "Mi9>Mi4")
    add(np.repeat(index["Mi1"], directions), t4.ravel(), "ME", "Mi1>T4")
    has = neighbour >= 0
    source, direction = np.nonzero(has)
    add(index["Mi4"][neighbour[has]], t4[source, direction], "ME", "Mi4>T4")
    lptc = index["LPTC"].reshape(REGIONS, directions)
    add(t4.ravel(), lptc[np.repeat(region, directions), np.tile(np.arange(directions), columns)], "LOP",
        "T4>LPTC")
    add(index["LPTC"], index["LPfb"], "LOP", "LPTC>LPfb")
    add(index["LPfb"], index["LPTC"], "LOP", "LPfb>LPTC")
    add(index["L"][source], index["L"][neighbour[has]], "LA", "L>L")
    edges = pd.concat(frames, ignore_index=True)
    spread = np.where(edges["kind"].isin(_LOOP_KINDS), _LOOP_SIGMA, SIGMA)
    edges["weight"] = lognormal_counts(rng, edges["kind"].map(_MEDIAN).to_numpy(), spread, len(edges))
    return edges.drop(columns="kind")


def generate_synthetic_optic(*, hex_rings: int, seed: int, background_density: float, transmitter_coverage: float
                             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build (neurons, roi_counts, connections) in the export schema; a pure function of its arguments.

    Wiring and synapse counts come in a fixed order from one ``numpy.random.default_rng(seed)`` and the
    labelled subset from its own stream, so equal arguments give byte-identical CSVs and
    ``transmitter_coverage`` changes ``predictedNt`` only.
    """
    _check(hex_rings, seed, background_density, transmitter_coverage)
    rng = np.random.default_rng(seed)
    cells = _layout(len(hex_axial(hex_rings)))
    types = cells["type"].to_numpy()
    type_code = pd.Categorical(types, categories=_TYPES).codes.astype(np.int64)
    body_ids = BODY_ID_BASE + type_code * TYPE_ID_STRIDE + cells["rank"].to_numpy(np.int64)
    suffix = np.where(cells["type"].isin(["LPTC", "LPfb"]),
                      "r" + cells["region"].astype(str) + "_d" + cells["direction"].astype(str),
                      "c" + cells["column"].astype(str).str.zfill(3)
                      + np.where(cells["type"] == "T4", "_d" + cells["direction"].astype(str), ""))
    synapses = pd.concat([_structured_edges(rng, cells, hex_rings),
                          background_edges(rng, len(cells), background_density, PRIMARY_ROIS)], ignore_index=True)
    inside = edge_roi_counts(synapses)
    return export_tables(
        body_ids=body_ids, types=types, instances="synthetic_" + cells["type"] + "_" + suffix,
        labels=transmitter_labels(cells["type"].map(_TRANSMITTER).to_numpy(), transmitter_coverage, seed),
        synapses=synapses, inside=inside, outside=outside_roi_rows(rng, inside, types, _OUTSIDE))


def write_synthetic_optic(out_dir: str | Path, *, hex_rings: int, seed: int, background_density: float,
                          transmitter_coverage: float) -> dict:
    """Generate the substrate and write neurons.csv, roi_counts.csv, connections.csv and provenance.json."""
    return write_synthetic_exports(
        out_dir, generate_synthetic_optic,
        {"hex_rings": hex_rings, "seed": seed, "background_density": background_density,
         "transmitter_coverage": transmitter_coverage},
        source="synthetic_optic",
        counts={"columns": len(hex_axial(hex_rings))},
        description=(
            "SYNTHETIC DATA, not a measured connectome: a procedurally generated, optic-lobe-inspired motion "
            "circuit on a hexagonal column lattice (lamina input neurons with most input outside the optic "
            "lobe, a fast Mi1 relay and a slow reciprocal Mi9/Tm9 pair per column, GABAergic Mi4 inhibiting "
            "the T4 detectors of neighbouring columns from their null side, six T4 directions per column "
            "pooled by lobula-plate tangential cells per direction and region with a slow feedback loop each, "
            "weak lateral lamina coupling), lognormal synapse counts, sparse random background edges and transmitter labels on "
            "a random fraction of the neurons. Pools come from the ordinary region pool rule."),
        primary_rois=list(PRIMARY_ROIS),
        outside_rois={"photoreceptor_input": RETINA_ROI, "output": OUTPUT_ROI},
        body_id_base=BODY_ID_BASE,
    )
