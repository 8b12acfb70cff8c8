"""The embedded synthetic_optic substrate and the hexagonal lattice it shares with the simulated eye:
determinism, the column circuit, ROI consistency, pools from the ordinary rule, the signed matrix, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import outside_roi_counts

from connectome_bpu.depth import estimate_k
from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.graph import build_matrices, load_primary
from connectome_bpu.hex_lattice import HEX_DIRECTIONS, hex_axial, hex_neighbour, hex_points, lattice_size
from connectome_bpu.pools import assign_region_pools, pool_indices
from connectome_bpu.sources.synthetic_optic import (
    PRIMARY_ROIS,
    REGIONS,
    generate_synthetic_optic,
    region_of,
    write_synthetic_optic,
)

GRAPH = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())["graph"]
ARGS = {"hex_rings": 3, "seed": 0, "background_density": 0.002, "transmitter_coverage": 1.0}
BARE = {**ARGS, "background_density": 0.0}


@pytest.mark.parametrize("rings, size", [(1, 7), (2, 19), (3, 37), (4, 61)])
def test_lattice_sizes_and_neighbours(rings, size):
    axial = hex_axial(rings)
    assert len(axial) == lattice_size(rings) == size
    assert len({tuple(point) for point in axial}) == size
    neighbour = hex_neighbour(axial)
    points = hex_points(rings)
    has = neighbour >= 0
    # every neighbour is sqrt(3) away in the direction it is listed under, and the relation is symmetric
    source, direction = np.nonzero(has)
    step = points[neighbour[has]] - points[source]
    np.testing.assert_allclose(np.hypot(step[:, 0], step[:, 1]), np.sqrt(3.0))
    angle = np.degrees(np.arctan2(step[:, 1], step[:, 0])) % 360
    np.testing.assert_allclose(angle, 60.0 * direction, atol=1e-9)
    opposite = (direction + 3) % len(HEX_DIRECTIONS)
    np.testing.assert_array_equal(neighbour[neighbour[has], opposite], source)
    assert has[0].sum() == 3 and has[size // 2].sum() == 6   # a corner and the centre


def test_regions_are_the_central_hexagon_and_six_sectors():
    points = hex_points(4)
    region = region_of(points)
    assert set(region) == set(range(REGIONS))
    assert (region == REGIONS - 1).sum() == 7            # the centre column and its first ring
    angle = np.degrees(np.arctan2(points[:, 1], points[:, 0])) % 360
    outer = region < REGIONS - 1
    assert np.all((angle[outer] >= 60 * region[outer] - 1e-6) & (angle[outer] < 60 * (region[outer] + 1)))
    assert np.bincount(region[outer]).tolist() == [9] * 6  # the six sectors are congruent


def test_generation_is_deterministic_and_coverage_changes_labels_only():
    first = generate_synthetic_optic(**ARGS)
    for a, b in zip(first, generate_synthetic_optic(**ARGS)):
        pd.testing.assert_frame_equal(a, b)
    other = generate_synthetic_optic(**{**ARGS, "seed": 1})
    assert not first[2]["weight"].equals(other[2]["weight"])
    half = generate_synthetic_optic(**{**ARGS, "transmitter_coverage": 0.5})
    pd.testing.assert_frame_equal(first[2], half[2])
    assert (half[0]["predictedNt"] != "").sum() == int(np.floor(0.5 * len(first[0]) + 0.5))   # rounded half up


def test_column_circuit_is_wired_as_documented():
    neurons, _, connections = generate_synthetic_optic(**BARE)
    columns = lattice_size(BARE["hex_rings"])
    counts = neurons["type"].value_counts()
    assert all(counts[t] == columns for t in ("L", "Mi1", "Mi9", "Tm9", "Mi4"))
    assert counts["T4"] == 6 * columns and counts["LPTC"] == counts["LPfb"] == 6 * REGIONS
    kind = dict(zip(neurons["bodyId"], neurons["type"]))
    instance = dict(zip(neurons["bodyId"], neurons["instance"]))
    pairs = connections.assign(pre=connections["bodyId_pre"].map(kind), post=connections["bodyId_post"].map(kind))
    per_class = pairs.groupby(["pre", "post"]).size().to_dict()
    neighbour_pairs = int((hex_neighbour(hex_axial(BARE["hex_rings"])) >= 0).sum())
    assert per_class == {("L", "Mi1"): columns, ("L", "Mi9"): columns, ("Mi9", "Tm9"): columns,
                         ("Tm9", "Mi9"): columns, ("Mi9", "Mi4"): columns, ("Mi1", "T4"): 6 * columns,
                         ("Mi4", "T4"): neighbour_pairs, ("T4", "LPTC"): 6 * columns, ("L", "L"): neighbour_pairs,
                         ("LPTC", "LPfb"): 6 * REGIONS, ("LPfb", "LPTC"): 6 * REGIONS}
    # Mi4 of column j inhibits T4 (i, d) exactly when j is i's neighbour in direction d
    axial = hex_axial(BARE["hex_rings"])
    neighbour = hex_neighbour(axial)
    inhibit = pairs[(pairs["pre"] == "Mi4") & (pairs["post"] == "T4")]
    column = inhibit["bodyId_pre"].map(instance).str.extract(r"_c(\d+)$", expand=False).astype(int).to_numpy()
    target = inhibit["bodyId_post"].map(instance).str.extract(r"_c(\d+)_d(\d)$").astype(int).to_numpy()
    np.testing.assert_array_equal(neighbour[target[:, 0], target[:, 1]], column)
    # each tangential cell pools the T4 of its own direction from its own region only
    pool = pairs[(pairs["pre"] == "T4") & (pairs["post"] == "LPTC")]
    t4 = pool["bodyId_pre"].map(instance).str.extract(r"_c(\d+)_d(\d)$").astype(int).to_numpy()
    lptc = pool["bodyId_post"].map(instance).str.extract(r"_r(\d)_d(\d)$").astype(int).to_numpy()
    np.testing.assert_array_equal(t4[:, 1], lptc[:, 1])
    np.testing.assert_array_equal(region_of(hex_points(BARE["hex_rings"]))[t4[:, 0]], lptc[:, 0])
    loop = pairs[(pairs["pre"] == "LPfb") & (pairs["post"] == "LPTC")]
    assert (loop["bodyId_pre"].map(instance).str.replace("LPfb", "LPTC")
            == loop["bodyId_post"].map(instance)).all()      # each feedback partner returns to its own cell


def test_pools_signs_and_scaled_graph(tmp_path):
    write_synthetic_optic(tmp_path / "exports", **ARGS)
    exports = load_exports(tmp_path / "exports")
    outside = outside_roi_counts(exports, PRIMARY_ROIS)
    assert set(outside["type"]) == {"L", "LPTC"}
    pools = assign_region_pools(exports.neurons, exports.roi_counts, list(PRIMARY_ROIS), **GRAPH["pools"])
    kind = pools.merge(exports.neurons[["bodyId", "type"]].rename(columns={"type": "cell"}), on="bodyId")
    assert set(kind.loc[kind["pool"] == "sensory", "cell"]) == {"L"}
    assert set(kind.loc[kind["pool"] == "output", "cell"]) == {"LPTC"}
    info = build_matrices(tmp_path / "exports", tmp_path / "graph", connectome="synthetic_optic", rho_target=0.95,
                          signed_policy="auto", sign_coverage_threshold=0.95, spectral_kwargs={})
    assert info["primary_matrix"] == "signed"        # fully labelled: the Mi4 inhibition survives
    primary = load_primary(tmp_path / "graph")
    mi4 = np.flatnonzero(exports.neurons.sort_values("bodyId")["type"].to_numpy() == "Mi4")
    assert (primary.matrix.tocsc()[:, mi4].data < 0).all()
    sensory, _, output = pool_indices(pools)
    depth = estimate_k(primary.unsigned, sensory, output)
    assert depth.reachable_pairs == depth.total_pairs   # lateral lamina coupling reaches every quadrant's cells
    assert depth.histogram[3] > 0 and depth.K in (3, 4)  # L -> Mi1 -> T4 -> LPTC inside a region


@pytest.mark.parametrize("key, value, expected", [
    ("hex_rings", 0, "hex_rings must be an integer >= 1"),
    ("seed", -1, "seed must be an integer >= 0"),
    ("background_density", 1.0, "background_density must be in [0, 1)"),
    ("transmitter_coverage", 1.5, "transmitter_coverage must be in [0, 1]"),
])
def test_bad_arguments_name_the_key(key, value, expected):
    with pytest.raises(BPUInputError, match=re.escape(f"synthetic_optic.{expected}")):
        generate_synthetic_optic(**{**ARGS, key: value})
