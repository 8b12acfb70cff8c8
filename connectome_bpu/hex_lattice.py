"""The hexagonal ommatidial lattice: one home for its geometry.

The simulated eye of the optic-flow task (``connectome_bpu.optic_flow``) samples the scene on this lattice,
and the embedded optic substrate (``connectome_bpu.sources.synthetic_optic``) puts one column on each of its
points, so both must agree on the order of the points and on who neighbours whom.

Points are hexagons of ``rings`` rings around a centre in axial coordinates (q, r), q from -R to R in the
outer loop and r from max(-R, -q - R) to min(R, -q + R) in the inner loop: 1 + 3 R (R + 1) points (61 for
R = 4). Their plane position is (sqrt(3) (q + r / 2), 1.5 r), so neighbouring points are sqrt(3) apart.
"""

from __future__ import annotations

import numpy as np

# Axial offsets of the six neighbours, counter-clockwise from +x (0, 60, ..., 300 degrees in the plane).
HEX_DIRECTIONS = np.array([(1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1)], dtype=np.int64)


def lattice_size(rings: int) -> int:
    """Number of points of a lattice with ``rings`` rings: 1 + 3 R (R + 1)."""
    return 1 + 3 * rings * (rings + 1)


def hex_axial(rings: int) -> np.ndarray:
    """(n, 2) int64 axial coordinates (q, r) in lattice order (q outer, r inner)."""
    q, r = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1), indexing="ij")
    keep = np.abs(q + r) <= rings
    return np.stack([q[keep], r[keep]], axis=1).astype(np.int64)


def hex_points(rings: int) -> np.ndarray:
    """(n, 2) float64 plane positions (x, y) of the points, in lattice order."""
    axial = hex_axial(rings).astype(np.float64)
    return np.stack([np.sqrt(3.0) * (axial[:, 0] + axial[:, 1] / 2.0), 1.5 * axial[:, 1]], axis=1)


def hex_neighbour(axial: np.ndarray) -> np.ndarray:
    """(n, 6) index of each point's neighbour in each of ``HEX_DIRECTIONS``, -1 where it is off the lattice."""
    axial = np.asarray(axial, dtype=np.int64)
    span = int(np.abs(axial).max()) + 2
    code = (axial[:, 0] + span) * (2 * span + 1) + (axial[:, 1] + span)
    order = np.argsort(code)
    target = axial[:, None, :] + HEX_DIRECTIONS[None, :, :]
    target_code = (target[..., 0] + span) * (2 * span + 1) + (target[..., 1] + span)
    found = np.searchsorted(code[order], target_code).clip(max=code.size - 1)
    hit = code[order][found] == target_code
    return np.where(hit, order[found], -1)
