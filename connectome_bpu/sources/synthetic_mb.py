"""``synthetic_mb``: an embedded, offline, procedurally generated mushroom-body-like substrate.

Why it exists: the associative task family needs a substrate that runs with no token and no network, and a
positive control whose topology is known to suit associative memory. Odour identity enters through the
projection neurons, is expanded into a sparse Kenyon-cell code whose sparseness the APL normalises by
global inhibitory feedback, reinforcement enters through the dopaminergic neurons onto the same KC->MBON
synapse sites, the MBONs are read out, and MBON->DAN loops close recurrent paths that can hold a memory.
Like ``synthetic_cx`` the tables are in the export schema of a neuPrint download (docs/method.md#exports),
the ``instance`` strings start with "synthetic_" and ``provenance.json`` says ``synthetic: true``: every
report built on it must say that it is synthetic, not a measured connectome.

With ``C`` compartments (the first half in the vertical lobe ``VL``, the rest in the medial lobe ``ML``):

===== ================== ========== =================================================================
type  count              NT         wiring (ROI of the synapses)
===== ================== ========== =================================================================
PN    projection_neurons ACh        input: most synapses onto it lie outside the MB (``AL``); each KC
                                    gets exactly ``claws`` distinct PNs, uniformly at random (CA)
KC    kenyon_cells       ACh        -> both MBONs of a compartment with probability ``_KC_MBON_P`` per
                                    (KC, compartment) (its lobe); -> every APL and ``_KC_KC_PARTNERS``
                                    other KCs, axo-axonic (PED, VL or ML)
APL   max(1, KC // 720)  GABA       every KC -> APL (PED, VL or ML), APL -| every KC (CA): global
                                    inhibitory feedback that normalises the KC code's sparseness
MBON  2 per compartment  ACh, Glu,  output: reads the KCs of its compartment; most of its output
                         ACh, GABA  synapses lie outside the MB (``SMP``); -> both DANs of each
                         (cycling   neighbouring compartment (their lobe): the MBON->DAN loops of
                         by comp.)  the fly
DAN   2 per compartment  DA         input: most synapses onto it lie outside the MB (``SMP``,
                                    reinforcement); -> both MBONs of its compartment and a random
                                    half of the KCs that synapse onto them (its lobe)
===== ================== ========== =================================================================

A DAN's output lands on the KC->MBON synapses, which a graph can only show as DAN->KC and DAN->MBON edges.
Its KC targets are drawn among the KCs that do synapse onto the compartment's MBONs, because a KC without
such a synapse has no site there; that also keeps the DAN columns near 3 % of the weight at the defaults.

Transmitter labels and signs: ``transmitter_coverage`` is the fraction of all neurons, drawn at random, whose
``predictedNt`` is filled; the others get an empty label (``synthetic_common.transmitter_labels``: the same
rule and separate random stream as ``synthetic_cx``, so the wiring is the same for every coverage). Real
exports carry partial or no predictions (hemibrain none, FlyWire about 60 % of the weight), and
``signed_policy: auto`` signs a matrix only when the labelled neurons carry at least
``sign_coverage_threshold`` (0.95) of the weight, so the default 0.6 gives an unsigned substrate like the
real runs it stands for. ``DA`` is not a signed transmitter
(connectome_bpu.signs gives it sign 0): DAN columns stay positive in the signed matrix and count as
unlabelled weight, so even coverage 1.0 gives a weighted coverage of 1 minus the DAN share (about 0.97 at
the defaults, which ``auto`` signs; with many more compartments per KC it would not). Under the signed
matrix the route PN -> KC -> MBON stays all-excitatory (cholinergic, and DA columns stay positive), so
activity injected into the sensory pool still reaches the output pool through the BPU's ReLU.

Synapse counts are lognormal integers >= 1 and ``background_density`` adds sparse random edges between any
two distinct neurons, in a ROI drawn among the primary ones; count statistics, background, ROI bookkeeping,
labels and provenance come from ``synthetic_common``, shared with ``synthetic_cx``, so the two substrates
differ in their circuits only.
Pools are *not*
labelled: ``roi_counts.csv`` is consistent with ``connections.csv`` (every edge lies in one primary ROI; a
neuron's in-MB ``pre``/``post`` is the sum of its edge weights there) and only PN and DAN input and MBON
output get extra rows outside the MB, so the ordinary region pool rule (docs/method.md#pools) finds PN and DAN
sensory, MBON output and KC and APL internal (a tie with no family match).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BPUInputError
from ..substrates import SYNTHETIC_MB_ROIS
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

PRIMARY_ROIS = SYNTHETIC_MB_ROIS   # calyx, peduncle, vertical and medial lobes (the substrate table's)
AXON_ROIS = ("PED", "VL", "ML")            # where KC axons meet the APL and each other
OLFACTORY_ROI = "AL"      # where PNs receive their (simulated) odour input, outside the MB
REINFORCEMENT_ROI = "SMP"  # where DANs receive their (simulated) reinforcement input, outside the MB
OUTPUT_ROI = "SMP"        # where MBONs send their (simulated) output, outside the MB
# Far above 2**53 and far from synthetic_cx's 10**18, so the two substrates never share an id. Types sit
# 2**32 apart: int32 truncation makes the first neurons of all types collide, visibly.
BODY_ID_BASE = 2 * 10**18
TYPE_ID_STRIDE = 2**32
KCS_PER_APL = 720
_KC_MBON_P = 0.35        # probability that a KC synapses onto the MBONs of one compartment
_KC_KC_PARTNERS = 3      # axo-axonic KC->KC edges per KC
_MBON_TRANSMITTERS = ("ACh", "Glu", "ACh", "GABA")  # by compartment, cycling: half of the MBONs are ACh
_TYPES = ("PN", "KC", "APL", "MBON", "DAN")
_TRANSMITTER = {"PN": "ACh", "KC": "ACh", "APL": "GABA", "DAN": "DA"}

# Median synapse count of one connection by class (lognormal around it). The claw and the APL feedback
# are strong; DAN->KC contacts are mostly single synapses, which keeps the unsigned DA columns a small
# share of the weight (module docstring).
_MEDIAN = {"PN>KC": 10.0, "APL>KC": 8.0, "KC>APL": 4.0, "KC>MBON": 5.0, "KC>KC": 2.0, "DAN>KC": 1.0,
           "DAN>MBON": 8.0, "MBON>DAN": 5.0}
# Which neurons get synapses outside the MB (type, outside ROI, side): PN and DAN input, MBON output.
_OUTSIDE = (("PN", OLFACTORY_ROI, "post"), ("DAN", REINFORCEMENT_ROI, "post"), ("MBON", OUTPUT_ROI, "pre"))


def _check(parameters: dict) -> None:
    """Raise BPUInputError naming ``synthetic_mb.<key>`` for the first unusable argument."""
    def fail(key: str, expected: str) -> None:
        raise BPUInputError(f"synthetic_mb.{key} must be {expected} (got {parameters[key]!r})")

    for key, minimum in (("projection_neurons", 1), ("kenyon_cells", 1), ("claws", 1), ("compartments", 2),
                         ("seed", 0)):
        if not is_integer(parameters[key]) or parameters[key] < minimum:
            fail(key, f"an integer >= {minimum}")
    if parameters["claws"] > parameters["projection_neurons"]:
        fail("claws", f"at most projection_neurons = {parameters['projection_neurons']} (distinct PN inputs per KC)")
    if not 0.0 <= parameters["background_density"] < 1.0:
        fail("background_density", "in [0, 1)")
    if not 0.0 <= parameters["transmitter_coverage"] <= 1.0:
        fail("transmitter_coverage", "in [0, 1]")


def _layout(projection_neurons: int, kenyon_cells: int, compartments: int) -> pd.DataFrame:
    """One row per neuron in body-id order: type, rank within the type, transmitter and instance suffix."""
    counts = {"PN": projection_neurons, "KC": kenyon_cells, "APL": max(1, kenyon_cells // KCS_PER_APL),
              "MBON": 2 * compartments, "DAN": 2 * compartments}
    parts = []
    for cell_type in _TYPES:
        rank = np.arange(counts[cell_type])
        if cell_type in ("MBON", "DAN"):
            compartment = rank // 2
            suffix = [f"c{c}_{'ab'[r % 2]}" for c, r in zip(compartment, rank)]
        else:
            compartment = np.full(rank.size, -1)
            suffix = [f"{r:04d}" for r in rank]
        if cell_type == "MBON":
            transmitter = np.asarray(_MBON_TRANSMITTERS)[compartment % len(_MBON_TRANSMITTERS)]
        else:
            transmitter = np.full(rank.size, _TRANSMITTER[cell_type])
        parts.append(pd.DataFrame({"type": cell_type, "rank": rank, "transmitter": transmitter, "suffix": suffix}))
    return pd.concat(parts, ignore_index=True)


def _distinct(rng: np.random.Generator, rows: int, population: int, size: int) -> np.ndarray:
    """(rows, size) integers, each row ``size`` distinct values drawn uniformly from range(population)."""
    return np.array([rng.choice(population, size=size, replace=False) for _ in range(rows)],
                    dtype=np.int64).reshape(rows, size)


def _axon_rois(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ROI along the KC axon (peduncle or either lobe) for each of ``size`` synapse sets."""
    return np.asarray(AXON_ROIS)[rng.integers(0, len(AXON_ROIS), size)]


def _edges(rng: np.random.Generator, pre: np.ndarray, post: np.ndarray, roi: np.ndarray | str, kind: str
           ) -> pd.DataFrame:
    """One class of connections with lognormal synapse counts around its median."""
    return pd.DataFrame({"pre": pre, "post": post, "roi": roi,
                         "weight": lognormal_counts(rng, _MEDIAN[kind], SIGMA, len(pre))})


def _structured_edges(rng: np.random.Generator, cells: pd.DataFrame, claws: int, compartments: int
                      ) -> list[pd.DataFrame]:
    """The mushroom-body wiring of the module docstring's table, as (pre, post, roi, weight) frames."""
    index = {t: g.index.to_numpy() for t, g in cells.groupby("type", sort=False)}
    pn, kc, apl, mbon, dan = (index[t] for t in _TYPES)
    n_kc = kc.size
    lobe = np.where(np.arange(compartments) < compartments / 2, "VL", "ML")

    claw = _distinct(rng, n_kc, pn.size, claws)
    edges = [_edges(rng, pn[claw.ravel()], np.repeat(kc, claws), "CA", "PN>KC")]

    kc_to_apl, apl_of = np.repeat(kc, apl.size), np.tile(apl, n_kc)
    edges.append(_edges(rng, kc_to_apl, apl_of, _axon_rois(rng, kc_to_apl.size), "KC>APL"))
    edges.append(_edges(rng, apl_of, kc_to_apl, "CA", "APL>KC"))

    partners = min(_KC_KC_PARTNERS, n_kc - 1)
    offsets = _distinct(rng, n_kc, n_kc - 1, partners) + 1  # never 0, so never a self-loop
    target = (np.arange(n_kc)[:, None] + offsets) % n_kc
    edges.append(_edges(rng, np.repeat(kc, partners), kc[target.ravel()], _axon_rois(rng, n_kc * partners), "KC>KC"))

    reads = rng.random((n_kc, compartments)) < _KC_MBON_P  # reads[k, c]: KC k synapses onto compartment c
    k, c = np.nonzero(reads)
    edges.append(_edges(rng, np.repeat(kc[k], 2), mbon[(2 * c[:, None] + [0, 1]).ravel()], np.repeat(lobe[c], 2),
                        "KC>MBON"))

    for d in range(dan.size):
        sites = kc[reads[:, d // 2]]
        chosen = np.sort(rng.choice(sites, size=(sites.size + 1) // 2, replace=False))
        edges.append(_edges(rng, np.full(chosen.size, dan[d]), chosen, lobe[d // 2], "DAN>KC"))
    # MBONs and DANs share a layout: neuron 2c and 2c + 1 of either type belong to compartment c.
    pair = np.arange(2 * compartments) // 2
    edges.append(_edges(rng, np.repeat(dan, 2), mbon[(2 * pair[:, None] + [0, 1]).ravel()],
                        np.repeat(lobe[pair], 2), "DAN>MBON"))
    for step in (-1, 1):
        neighbour = pair + step
        inside = (neighbour >= 0) & (neighbour < compartments)
        edges.append(_edges(rng, np.repeat(mbon[inside], 2), dan[(2 * neighbour[inside, None] + [0, 1]).ravel()],
                            np.repeat(lobe[neighbour[inside]], 2), "MBON>DAN"))
    return edges


def generate_synthetic_mb(*, projection_neurons: int, kenyon_cells: int, claws: int, compartments: int,
                          seed: int, background_density: float, transmitter_coverage: float
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build (neurons, roi_counts, connections) in the export schema; a pure function of its arguments.

    Wiring and synapse counts come in a fixed order from one ``numpy.random.default_rng(seed)`` and the
    labelled subset from its own stream (module docstring), so equal arguments give equal tables (and
    byte-identical CSVs) and ``transmitter_coverage`` changes ``predictedNt`` only.
    """
    _check({"projection_neurons": projection_neurons, "kenyon_cells": kenyon_cells, "claws": claws,
            "compartments": compartments, "seed": seed, "background_density": background_density,
            "transmitter_coverage": transmitter_coverage})
    rng = np.random.default_rng(seed)
    cells = _layout(projection_neurons, kenyon_cells, compartments)
    types = cells["type"].to_numpy()
    type_code = pd.Categorical(types, categories=_TYPES).codes.astype(np.int64)
    body_ids = BODY_ID_BASE + type_code * TYPE_ID_STRIDE + cells["rank"].to_numpy(np.int64)

    synapses = pd.concat([*_structured_edges(rng, cells, claws, compartments),
                          background_edges(rng, len(cells), background_density, PRIMARY_ROIS)], ignore_index=True)
    inside = edge_roi_counts(synapses)
    return export_tables(
        body_ids=body_ids, types=types, instances="synthetic_" + cells["type"] + "_" + cells["suffix"],
        labels=transmitter_labels(cells["transmitter"].to_numpy(), transmitter_coverage, seed),
        synapses=synapses, inside=inside, outside=outside_roi_rows(rng, inside, types, _OUTSIDE))


def write_synthetic_mb(out_dir: str | Path, *, projection_neurons: int, kenyon_cells: int, claws: int,
                       compartments: int, seed: int, background_density: float, transmitter_coverage: float
                       ) -> dict:
    """Generate the substrate and write neurons.csv, roi_counts.csv, connections.csv and provenance.json.

    Returns the summary that is also stored in ``provenance.json`` under ``counts``.
    """
    return write_synthetic_exports(
        out_dir, generate_synthetic_mb,
        {"projection_neurons": projection_neurons, "kenyon_cells": kenyon_cells, "claws": claws,
         "compartments": compartments, "seed": seed, "background_density": background_density,
         "transmitter_coverage": transmitter_coverage},
        source="synthetic_mb",
        counts={},
        description=(
            "SYNTHETIC DATA, not a measured connectome: a procedurally generated, mushroom-body-inspired "
            "network (PN odour inputs with most input outside the MB, Kenyon cells with a fixed number of "
            "random PN claws in the calyx, one APL giving global inhibitory feedback to every KC, DANs with "
            "most input outside the MB onto the KC->MBON sites of their compartment, MBONs with most output "
            "outside the MB and MBON->DAN loops between neighbouring compartments), lognormal synapse "
            "counts, sparse random background edges and transmitter labels on a random fraction of the "
            "neurons. Pools come from the ordinary region pool rule."),
        primary_rois=list(PRIMARY_ROIS),
        outside_rois={"olfactory_input": OLFACTORY_ROI, "reinforcement_input": REINFORCEMENT_ROI,
                      "output": OUTPUT_ROI},
        body_id_base=BODY_ID_BASE,
    )
