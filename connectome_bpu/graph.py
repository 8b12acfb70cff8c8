"""The graph cache: exports -> (unsigned, signed) adjacency, spectral scaling, metadata.

Layout of ``results/<substrate>/graph/``:

* ``adjacency_unsigned.npz`` - CSR float32, W[post, pre] = synapse count x spectral_scale.
* ``adjacency_signed.npz``   - written only when at least one neuron has a usable transmitter sign
  (docs/method.md#signs). It is a *derived convenience file*: downstream rules rebuild the primary
  matrix from the unsigned matrix and the sign vector in ``graph_arrays.npz`` (both declared outputs),
  so no job ever depends on a file whose existence is data-dependent.
* ``graph_arrays.npz``       - per-neuron arrays (body ids, signs, degrees): kept out of JSON because
  the whole brain has 139,255 of each.
* ``matrix_info.json``       - scalars of this step; ``graph_metadata.json`` adds pools and K.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from . import atomic
from .atomic import read_json
from .errors import GraphError
from .matrix import matrix_invariants, matrix_sha256
from .signs import apply_signs, choose_primary, neuron_signs, sign_coverage
from .spectral import spectral_radius

if TYPE_CHECKING:  # the jobs that only load a finished graph (controls, training) need no pandas
    import pandas as pd

ORIENTATION = "W_rec[post_index, pre_index]"


def raw_adjacency(connections: pd.DataFrame, body_ids: np.ndarray) -> sp.csr_matrix:
    """Synapse-count matrix W[post, pre] (float64) over the sorted body ids; ids are int64 throughout."""
    n = len(body_ids)
    pre = np.searchsorted(body_ids, connections["bodyId_pre"].to_numpy(np.int64))
    post = np.searchsorted(body_ids, connections["bodyId_post"].to_numpy(np.int64))
    weights = connections["weight"].to_numpy(np.float64)
    matrix = sp.csr_matrix((weights, (post, pre)), shape=(n, n))
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def build_matrices(exports_dir: str | Path, out_dir: str | Path, *, connectome: str, rho_target: float,
                   signed_policy: str, sign_coverage_threshold: float, spectral_kwargs: dict[str, Any]) -> dict:
    """Build and write the scaled matrices, the per-neuron arrays and ``matrix_info.json``."""
    from .exports import load_exports  # here, not at the top: it needs pandas, which load_primary's users do not

    out_dir = Path(out_dir)
    exports = load_exports(exports_dir)
    body_ids = exports.neurons["bodyId"].to_numpy(np.int64)
    raw = raw_adjacency(exports.connections, body_ids)
    signs = neuron_signs(exports.neurons["transmitter"])
    any_signed = bool(np.any(signs != 0))
    coverage = sign_coverage(raw, signs)
    primary_kind = choose_primary(signed_policy, any_signed=any_signed, coverage=coverage,
                                  threshold=sign_coverage_threshold)
    raw_primary = apply_signs(raw, signs) if primary_kind == "signed" else raw
    estimate = spectral_radius(raw_primary, **spectral_kwargs)
    if not estimate.radius > 0:
        raise GraphError(f"primary ({primary_kind}) adjacency built from {exports_dir} has zero spectral radius: "
                         "the connections form no cycle, so no scaling to rho_target is possible")
    scale = rho_target / estimate.radius
    unsigned = (raw * scale).astype(np.float32).tocsr()
    signed = apply_signs(unsigned, signs) if any_signed else None
    primary = signed if primary_kind == "signed" else unsigned
    invariants = matrix_invariants(primary, signs if primary_kind == "signed" else None)

    atomic.save_sparse(out_dir / "adjacency_unsigned.npz", unsigned)
    signed_path = out_dir / "adjacency_signed.npz"
    if any_signed:
        atomic.save_sparse(signed_path, signed)
    else:
        signed_path.unlink(missing_ok=True)   # a stale file from an earlier export must not linger
    atomic.save_npz(out_dir / "graph_arrays.npz", body_ids=body_ids, neuron_signs=signs,
                    in_degree=invariants["in_degree"], out_degree=invariants["out_degree"])
    info = {
        "connectome": connectome,
        "N": int(raw.shape[0]),
        "orientation": ORIENTATION,
        "raw_edge_count": int(len(exports.connections)),
        "unsigned_edge_count": int(unsigned.nnz),
        "self_loop_count": int(invariants["self_loop_count"]),
        "signed_edge_count": int(unsigned.nnz) if any_signed else 0,
        "signed_presynaptic_neuron_count": int(np.count_nonzero(signs)),
        "sign_coverage": float(coverage),
        "signed_policy": signed_policy,
        "sign_coverage_threshold": float(sign_coverage_threshold),
        "primary_matrix": primary_kind,
        "raw_primary_spectral_radius": float(estimate.radius),
        "spectral_estimate": estimate.as_dict(),
        "spectral_scale": float(scale),
        "rho_target": float(rho_target),
        "primary_sha256": matrix_sha256(primary),
        "control_invariants_primary": {k: v for k, v in invariants.items() if np.ndim(v) == 0 or isinstance(v, dict)},
        "arrays_file": "graph_arrays.npz",
    }
    atomic.write_json(out_dir / "matrix_info.json", info)
    return info


@dataclass(frozen=True)
class PrimaryGraph:
    """The matrix every model and control starts from, with the per-neuron arrays beside it."""
    matrix: sp.csr_matrix          # scaled, float32, W[post, pre]; signed columns applied if primary is signed
    unsigned: sp.csr_matrix
    neuron_signs: np.ndarray       # int8, 0 = no usable label
    body_ids: np.ndarray           # int64, sorted
    info: dict

    @property
    def signs_for_controls(self) -> np.ndarray | None:
        """Signs only matter to controls when the primary matrix itself is signed."""
        return self.neuron_signs if self.info["primary_matrix"] == "signed" else None


def load_primary(graph_dir: str | Path) -> PrimaryGraph:
    graph_dir = Path(graph_dir)
    info = read_json(graph_dir / "matrix_info.json")
    unsigned = sp.load_npz(graph_dir / "adjacency_unsigned.npz").tocsr().astype(np.float32)
    with np.load(graph_dir / "graph_arrays.npz") as arrays:
        signs = arrays["neuron_signs"].astype(np.int8)
        body_ids = arrays["body_ids"].astype(np.int64)
    matrix = apply_signs(unsigned, signs) if info["primary_matrix"] == "signed" else unsigned
    return PrimaryGraph(matrix=matrix.tocsr(), unsigned=unsigned, neuron_signs=signs, body_ids=body_ids, info=info)


def assemble_metadata(matrix_info: dict, pools: pd.DataFrame, k_estimate: dict, *, primary_rois: list[str],
                      whole_brain_pool_fraction: float, synthetic: bool) -> dict:
    """``graph_metadata.json``: the original benchmark's keys minus per-neuron lists.

    The per-neuron arrays live in ``graph_arrays.npz`` (docs/departures.md#graph-metadata).
    """
    counts = pools["pool"].value_counts()
    metadata = dict(matrix_info)
    metadata.update({
        "primary_rois": list(primary_rois),
        "pool_counts": {p: int(counts.get(p, 0)) for p in ("sensory", "internal", "output")},
        "whole_brain_pool_fraction": float(whole_brain_pool_fraction),
        "estimated_K": int(k_estimate["K"]),
        "k_raw_median": float(k_estimate["raw_median"]),
        "k_method": k_estimate["method"],
        "synthetic": bool(synthetic),
    })
    return metadata
