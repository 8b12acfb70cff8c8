"""Spectral radius of a recurrent matrix, and scaling a matrix to a target radius.

The benchmark fixes the recurrent core's gain by one global scalar, ``rho_target / rho(W)``, so the
radius estimate decides every model's dynamics. A fixed number of power iterations (what the original
benchmark used) is only valid for nonnegative (Perron) matrices and never says whether it converged
(docs/departures.md#spectral-radius). Here the estimator is chosen by what the matrix is:

* no stored entries -> radius 0 (``"empty"``);
* small matrices -> every eigenvalue, densely (``"dense_eigvals"``), which is exact and cheap;
* nonnegative matrices -> power iteration in float64 from a strictly positive start vector, stopped by a
  relative-change tolerance that is reported (``"power_iteration"``). Perron-Frobenius guarantees that
  such a start vector has a component along the dominant eigenvector, so the estimate converges to the
  radius unless the graph is periodic (several eigenvalues of maximal modulus), in which case the
  estimate oscillates, never meets the tolerance, and ARPACK takes over
  (``"arpack_eigs_after_power_iteration"``);
* signed matrices -> ARPACK ``eigs(k=6, which="LM")``, the largest modulus of the six (``"arpack_eigs"``):
  their dominant eigenvalue may be negative or complex, where the power-iteration norm does not converge to
  the radius, and their top moduli often cluster, where ARPACK asked for one eigenvalue may return a
  neighbour of the largest.

All arithmetic is float64 whatever the stored dtype, because scaling a float32 matrix to 0.95 must be
accurate to far better than the validation tolerance (1e-3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .errors import BPUInputError, GraphError

METHOD_EMPTY = "empty"
METHOD_DENSE = "dense_eigvals"
METHOD_POWER = "power_iteration"
METHOD_ARPACK = "arpack_eigs"
METHOD_POWER_THEN_ARPACK = "arpack_eigs_after_power_iteration"

# ARPACK Krylov subspace sizes tried in turn: a larger subspace resolves clustered or equal-modulus
# eigenvalues that a small one cannot, at a cost of ncv vectors of length N each. Each attempt may use
# about _ARPACK_PRODUCTS_PER_ATTEMPT matrix-vector products (restarts x (ncv - 1)), so a matrix ARPACK
# cannot resolve fails in bounded time (~30,000 products: seconds for a region, ~20 min for the whole
# brain) instead of running for hours (a signed random graph of FlyWire size converges in ~40 products).
_ARPACK_NCV = (20, 64, 200)
# Eigenvalues ARPACK resolves at once; the radius is the largest modulus among them. Asking for one alone lets
# ARPACK settle on a neighbour when the top moduli cluster (signed matrices often have several conjugate pairs
# within 0.5 % of the radius), and the stored radius would then be off by that much.
_ARPACK_EIGENVALUES = 6
_ARPACK_PRODUCTS_PER_ATTEMPT = 10_000
# Start vector seed for ARPACK: fixed so that the estimate (and thus the scale) is reproducible.
_ARPACK_START_SEED = 0


@dataclass(frozen=True)
class SpectralEstimate:
    """A spectral radius together with how it was obtained, so reports can say how far to trust it.

    ``iterations`` counts power-iteration steps, or matrix-vector products for ARPACK (including those
    of a failed power iteration before the fallback); ``tolerance`` is the stopping tolerance of the
    last method used (relative change of the estimate for power iteration, ARPACK's relative accuracy
    of the Ritz value). Both are ``None`` for exact methods.
    """

    radius: float
    method: str
    converged: bool
    iterations: int | None
    tolerance: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _as_csr(matrix, what: str) -> sp.csr_matrix:
    if not (sp.issparse(matrix) or isinstance(matrix, np.ndarray)):
        raise BPUInputError(f"{what} must be a scipy sparse matrix or a numpy array, got {type(matrix).__name__}")
    csr = sp.csr_matrix(matrix)
    if csr.shape[0] != csr.shape[1]:
        raise BPUInputError(f"{what} must be square to have a spectral radius, got shape {csr.shape}")
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise BPUInputError(f"{what} holds {int(np.count_nonzero(~np.isfinite(csr.data)))} non-finite entries "
                            "(NaN or inf); its spectral radius is undefined")
    return csr


def spectral_radius(matrix, *, power_tolerance: float = 1e-9, power_max_iterations: int = 5000,
                    dense_max_n: int = 256, arpack_tolerance: float = 1e-10) -> SpectralEstimate:
    """Estimate rho(matrix) = max |eigenvalue| with the method suited to its size and sign pattern.

    Raises :class:`GraphError` when ARPACK does not converge even with its largest subspace, because a
    radius that is not known to be right must not silently set the gain of a recurrent network.
    """
    if not power_tolerance > 0:
        raise BPUInputError(f"power_tolerance must be > 0, got {power_tolerance!r}")
    if int(power_max_iterations) < 1:
        raise BPUInputError(f"power_max_iterations must be >= 1, got {power_max_iterations!r}")
    if not arpack_tolerance >= 0:
        raise BPUInputError(f"arpack_tolerance must be >= 0 (0 = machine precision), got {arpack_tolerance!r}")
    csr = _as_csr(matrix, "matrix")
    n = csr.shape[0]
    if csr.nnz == 0:
        return SpectralEstimate(0.0, METHOD_EMPTY, True, None, None)
    # ARPACK needs k < N - 1, so the tiniest matrices are always done densely.
    if n <= max(int(dense_max_n), 2):
        eigenvalues = np.linalg.eigvals(csr.toarray().astype(np.float64))
        return SpectralEstimate(float(np.max(np.abs(eigenvalues))), METHOD_DENSE, True, None, None)
    csr64 = csr.astype(np.float64)
    if np.any(csr64.data < 0):
        return _arpack_radius(csr64, arpack_tolerance, METHOD_ARPACK, prior_products=0)
    power = _power_iteration(csr64, float(power_tolerance), int(power_max_iterations))
    if power.converged:
        return power
    return _arpack_radius(csr64, arpack_tolerance, METHOD_POWER_THEN_ARPACK, prior_products=power.iterations)


def _power_iteration(csr64: sp.csr_matrix, tolerance: float, max_iterations: int) -> SpectralEstimate:
    """||A x|| over unit x = A^k x0 / ||A^k x0||, stopped when it changes by less than ``tolerance`` (relative).

    For a nonnegative A and a strictly positive x0, A^k x0 = 0 for some k means A^k = 0 (no entry of A^k
    can cancel), i.e. A is nilpotent and its radius is exactly 0.
    """
    n = csr64.shape[0]
    x = np.full(n, 1.0 / np.sqrt(n))
    previous = None
    for iteration in range(1, max_iterations + 1):
        y = csr64 @ x
        estimate = float(np.linalg.norm(y))
        if estimate == 0.0:
            return SpectralEstimate(0.0, METHOD_POWER, True, iteration, tolerance)
        if previous is not None and abs(estimate - previous) <= tolerance * estimate:
            return SpectralEstimate(estimate, METHOD_POWER, True, iteration, tolerance)
        previous = estimate
        x = y / estimate
    return SpectralEstimate(previous, METHOD_POWER, False, max_iterations, tolerance)


def _arpack_radius(csr64: sp.csr_matrix, tolerance: float, method: str, *, prior_products: int) -> SpectralEstimate:
    """Largest-magnitude eigenvalue by implicitly restarted Arnoldi, retried with larger subspaces."""
    n = csr64.shape[0]
    products = 0

    def matvec(vector: np.ndarray) -> np.ndarray:
        nonlocal products
        products += 1
        return csr64 @ vector

    operator = spla.LinearOperator(csr64.shape, matvec=matvec, dtype=np.float64)
    start = np.random.default_rng(_ARPACK_START_SEED).standard_normal(n)
    tried = []
    k = max(1, min(_ARPACK_EIGENVALUES, n - 2))
    for ncv in sorted({min(max(size, 2 * k + 1), n) for size in _ARPACK_NCV}):
        maxiter = max(_ARPACK_PRODUCTS_PER_ATTEMPT // (ncv - 1), 10)
        try:
            eigenvalues = spla.eigs(operator, k=k, which="LM", v0=start, ncv=ncv, maxiter=maxiter, tol=tolerance,
                                    return_eigenvectors=False)
        except spla.ArpackNoConvergence:
            tried.append((ncv, maxiter))
            continue
        radius = float(np.max(np.abs(eigenvalues)))
        return SpectralEstimate(radius, method, True, prior_products + products, tolerance)
    settings = ", ".join(f"ncv={c} maxiter={m}" for c, m in tried)
    raise GraphError(f"ARPACK did not converge to the largest-magnitude eigenvalue of the {n}x{n} matrix "
                     f"({csr64.nnz} stored entries) with tolerance {tolerance} after trying {settings} "
                     f"({products} matrix-vector products); its spectral radius is unknown, so it cannot be scaled. "
                     "Matrices with many eigenvalues of (nearly) equal modulus, such as a long weighted cycle, "
                     "defeat ARPACK: inspect the graph, or pass a looser arpack_tolerance.")


def scale_to_radius(matrix, target: float, *, what: str = "matrix",
                    **spectral_kwargs) -> tuple[sp.csr_matrix, float, SpectralEstimate]:
    """Return (float32 CSR with radius ``target``, scale = target / rho, estimate of the unscaled input).

    The product is formed in float64 and rounded to float32 once, so the stored matrix's radius is
    ``target`` to float32 precision (~1e-7 relative). ``what`` names the matrix in error messages.
    """
    if not (np.isfinite(target) and target > 0):
        raise BPUInputError(f"rho target for {what} must be a finite number > 0, got {target!r}")
    csr = _as_csr(matrix, what)
    estimate = spectral_radius(csr, **spectral_kwargs)
    if not estimate.radius > 0:
        raise GraphError(f"{what} has zero spectral radius (method {estimate.method}): it is nilpotent (e.g. an "
                         f"acyclic graph), so no scale can bring it to rho target {target}")
    scale = float(target) / estimate.radius
    scaled = sp.csr_matrix(((csr.data.astype(np.float64) * scale).astype(np.float32), csr.indices.copy(),
                            csr.indptr.copy()), shape=csr.shape)
    return scaled, scale, estimate
