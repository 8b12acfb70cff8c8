"""Transmitter signs, sign coverage and the choice between the signed and unsigned primary matrix.

docs/method.md#signs: acetylcholine excites (+1), GABA and glutamate inhibit (-1; glutamate is
inhibitory through GluCl in the fly), every other label gives no sign.  A sign is per presynaptic
neuron, i.e. per matrix column of ``W[post, pre]``.  Unlabelled columns stay positive in the signed
matrix, which is why the signed matrix becomes the primary only when the labelled neurons carry
almost all synaptic weight (coverage at or above the configured threshold).
"""

from __future__ import annotations

import re

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .errors import BPUInputError

if TYPE_CHECKING:
    import pandas as pd

POLICIES = ("auto", "force_unsigned", "force_signed")

_CANONICAL = {
    "ach": "acetylcholine",
    "acetylcholine": "acetylcholine",
    "gaba": "gaba",
    "glu": "glutamate",
    "glutamate": "glutamate",
}
_SIGN = {"acetylcholine": 1, "gaba": -1, "glutamate": -1}
_SEPARATORS = re.compile(r"[,;|/+]")


def transmitter_sign(label: object) -> int:
    """+1 / -1 for a usable transmitter label, 0 for anything else (other transmitters, empty, NaN).

    Composite labels (``"ACh/ACh"``) are split on ``, ; | / +``; they get a sign only when every
    part maps to the same canonical transmitter, because a mixed label (``"ACh/GABA"``,
    ``"ACh+DA"``) does not say which sign the neuron's synapses carry.  Empty parts left by a
    trailing or doubled separator are ignored.
    """
    if not isinstance(label, str):
        return 0
    parts = [p.strip().lower() for p in _SEPARATORS.split(label)]
    canonical = {_CANONICAL.get(p) for p in parts if p}
    if len(canonical) != 1 or None in canonical:
        return 0
    return _SIGN[canonical.pop()]


def neuron_signs(labels: pd.Series) -> np.ndarray:
    """Per-neuron signs (int8, in the order of ``labels``); each distinct label is parsed once.

    pandas is imported here rather than at the top: this runs only while a graph is built, and the many jobs
    that merely load a finished graph (controls, training) then start without it."""
    import pandas as pd

    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    unique_signs = np.array([transmitter_sign(u) for u in uniques] + [0], dtype=np.int8)
    # code -1 (missing label) indexes the trailing 0.
    return unique_signs[codes]


def _check_signs(matrix: sp.spmatrix | sp.sparray, signs: np.ndarray) -> np.ndarray:
    signs = np.asarray(signs)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or signs.shape != (matrix.shape[1],):
        raise BPUInputError(f"signs must have one entry per presynaptic neuron (matrix column); matrix shape "
                            f"{matrix.shape}, signs shape {signs.shape}")
    if not np.isin(signs, (-1, 0, 1)).all():
        raise BPUInputError(f"signs must be -1, 0 or +1; got values {np.unique(signs)[:10].tolist()}")
    return signs


def sign_coverage(raw_matrix: sp.spmatrix | sp.sparray, signs: np.ndarray) -> float:
    """Share of the raw (unscaled, unsigned) synaptic weight whose presynaptic neuron has a sign.

    Weight-based rather than neuron-based because unlabelled columns stay positive in the signed
    matrix: what matters is how much of the drive they carry.  A matrix without weight has coverage 0.
    """
    signs = _check_signs(raw_matrix, signs)
    csr = raw_matrix.tocsr()
    total = float(csr.data.sum(dtype=np.float64))
    if total == 0.0:
        return 0.0
    signed = float(csr.data[signs[csr.indices] != 0].sum(dtype=np.float64))
    return signed / total


def apply_signs(matrix: sp.spmatrix | sp.sparray, signs: np.ndarray) -> sp.csr_matrix:
    """A copy of ``matrix`` (CSR, same dtype) with each signed column multiplied by its sign."""
    signs = _check_signs(matrix, signs)
    signed = matrix.tocsr(copy=True)
    factor = np.where(signs == 0, 1, signs).astype(signed.dtype)
    signed.data *= factor[signed.indices]
    return signed


def choose_primary(policy: str, *, any_signed: bool, coverage: float, threshold: float) -> str:
    """``"signed"`` or ``"unsigned"``: which matrix the models use (the other stays an artefact).

    ``auto`` picks signed only if a signed matrix exists and ``coverage >= threshold``;
    ``force_signed`` without any signed neuron is an input error, never a silent fallback.
    """
    if policy == "force_unsigned":
        return "unsigned"
    if policy == "force_signed":
        if not any_signed:
            raise BPUInputError(
                "config key 'graph.signed_policy' is 'force_signed', but the exports carry no usable transmitter "
                "labels: no neuron has an ACh/acetylcholine, GABA or Glu/glutamate label (hemibrain exports have "
                "none), so no signed matrix exists. Use signed_policy 'auto' or 'force_unsigned'.")
        return "signed"
    if policy == "auto":
        return "signed" if any_signed and coverage >= threshold else "unsigned"
    raise BPUInputError(f"config key 'graph.signed_policy' has value {policy!r}; allowed: "
                        + ", ".join(repr(p) for p in POLICIES))
