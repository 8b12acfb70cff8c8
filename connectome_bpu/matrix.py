"""Sparse recurrent matrices W[post, pre]: canonical form, checksums and the invariants controls claim.

One home for what "the same matrix" means: edge counts, degrees and checksums are defined on the
canonical CSR (sorted indices, no duplicates, no stored zeros), so two storages of one matrix agree.
The graph cache, the controls, their validation and the training runtime all use these definitions.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from .errors import BPUInputError



def canonical_csr(matrix) -> sp.csr_matrix:
    """Square CSR with sorted column indices, no duplicates and no stored zeros (input left untouched).

    Edge counts, degrees and checksums are defined on this form, so two representations of the same
    matrix always agree.
    """
    if not (sp.issparse(matrix) or isinstance(matrix, np.ndarray)):
        raise BPUInputError(f"expected a scipy sparse matrix, got {type(matrix).__name__}")
    csr = sp.csr_matrix(matrix)
    if csr.shape[0] != csr.shape[1]:
        raise BPUInputError(f"a recurrent matrix must be square, got shape {csr.shape}")
    stored_zeros = csr.nnz and not np.all(csr.data != 0)
    if not csr.has_canonical_format or stored_zeros:
        csr = csr.copy()
        csr.sum_duplicates()
        csr.eliminate_zeros()
    return csr


def matrix_sha256(matrix) -> str:
    """SHA-256 of (shape, indptr, indices, data) of the canonical CSR.

    Indices are hashed as int64 and values as float64, so the checksum identifies the matrix's values,
    not how they happen to be stored (a float32 matrix and its exact float64 copy hash alike).
    """
    csr = canonical_csr(matrix)
    digest = hashlib.sha256()
    for array in (np.asarray(csr.shape, dtype="<i8"), csr.indptr.astype("<i8"), csr.indices.astype("<i8"),
                  csr.data.astype("<f8")):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def column_sign(matrix) -> np.ndarray:
    """Per presynaptic neuron (column): +1 all entries positive, -1 all negative, 0 empty, 2 mixed."""
    csr = canonical_csr(matrix)
    n = csr.shape[1]
    positive = np.bincount(csr.indices, weights=csr.data > 0, minlength=n)
    negative = np.bincount(csr.indices, weights=csr.data < 0, minlength=n)
    signs = np.where(negative == 0, 1, np.where(positive == 0, -1, 2))
    signs[(positive + negative) == 0] = 0
    return signs.astype(np.int8)


def check_neuron_signs(neuron_signs, n: int) -> np.ndarray | None:
    if neuron_signs is None:
        return None
    signs = np.asarray(neuron_signs)
    if signs.shape != (n,):
        raise BPUInputError(f"neuron_signs must hold one sign per neuron ({n}), got shape {signs.shape}")
    bad = ~np.isin(signs, (-1, 0, 1))
    if bad.any():
        raise BPUInputError(f"neuron_signs may only hold +1, -1 or 0 (unlabelled); neuron index "
                            f"{int(np.flatnonzero(bad)[0])} holds {signs[bad][0]!r}")
    return signs.astype(np.int8)


def matrix_invariants(matrix, neuron_signs=None) -> dict:
    """Everything a control may claim to preserve, computed from the matrix itself.

    Degrees are binary (edge counts, self-loops included): ``in_degree`` = stored entries per row
    (postsynaptic neuron), ``out_degree`` per column (presynaptic neuron). The multiset checksum hashes
    the sorted float32 values, so it changes if any weight (or its sign) changes but not if weights move.
    With ``neuron_signs``, ``sign_label_violations`` counts non-empty columns whose sign differs from the
    label (-1 must be all negative; +1 and unlabelled 0 all positive).
    """
    csr = canonical_csr(matrix)
    n = csr.shape[0]
    data = csr.data.astype(np.float64)
    edges = int(csr.nnz)
    invariants = {
        "N": int(n),
        "edge_count": edges,
        "self_loop_count": int(np.count_nonzero(csr.diagonal())),     # canonical: no stored zeros
        "in_degree": np.diff(csr.indptr).astype(np.int64),
        "out_degree": np.bincount(csr.indices, minlength=n).astype(np.int64),
        "negative_edge_fraction": float(np.count_nonzero(data < 0) / edges) if edges else 0.0,
        "weight_summary": {
            "min": float(data.min()) if edges else None,
            "max": float(data.max()) if edges else None,
            "mean": float(data.mean()) if edges else None,
            "sum": float(data.sum()),
        },
        "weight_multiset_sha256": hashlib.sha256(np.sort(csr.data.astype("<f4")).tobytes()).hexdigest(),
        "column_sign": column_sign(csr),
    }
    signs = check_neuron_signs(neuron_signs, n)
    if signs is not None:
        labels = np.where(signs == -1, -1, 1)
        columns = invariants["column_sign"]
        invariants["sign_label_violations"] = int(np.count_nonzero((columns != 0) & (columns != labels)))
    return invariants


def scalar_invariants(invariants: dict) -> dict:
    return {key: value for key, value in invariants.items() if not isinstance(value, np.ndarray)}


def square_size(W) -> int:
    """N of a non-empty square scipy sparse matrix; anything else is refused with the reason."""
    if not sp.issparse(W):
        raise BPUInputError(
            f"recurrent matrix: expected a scipy.sparse matrix W[post, pre], got {type(W).__name__}"
        )
    if W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise BPUInputError(f"recurrent matrix: expected a non-empty square matrix, got shape {W.shape}")
    return int(W.shape[0])


def float32_csr(W) -> sp.csr_matrix:
    """Square float32 CSR with sorted, unique indices; refuses anything the operator cannot run."""
    square_size(W)
    csr = sp.csr_matrix(W, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    if not np.all(np.isfinite(csr.data)):
        raise BPUInputError("recurrent matrix: contains NaN or infinite weights")
    return csr
