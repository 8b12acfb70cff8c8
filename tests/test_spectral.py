"""Spectral radius estimators against numpy's dense eigenvalues, and scaling to a target radius."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from connectome_bpu.controls import build_control
from connectome_bpu.errors import BPUInputError, GraphError
from connectome_bpu.graph import build_matrices, load_primary
from connectome_bpu.sources.synthetic_optic import write_synthetic_optic
from connectome_bpu.spectral import (METHOD_ARPACK, METHOD_DENSE, METHOD_EMPTY, METHOD_POWER,
                                     METHOD_POWER_THEN_ARPACK, SpectralEstimate, scale_to_radius, spectral_radius)


def dense_radius(matrix) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(matrix.toarray().astype(np.float64)))))


def dominant_eigenvalue(matrix) -> complex:
    eigenvalues = np.linalg.eigvals(matrix.toarray().astype(np.float64))
    return complex(eigenvalues[np.argmax(np.abs(eigenvalues))])


def random_nonnegative(n: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.random(n, n, density=density, format="csr", random_state=rng, dtype=np.float32,
                     data_rvs=lambda k: rng.lognormal(0.0, 1.0, k))


def test_nonnegative_matrix_uses_converged_power_iteration():
    matrix = random_nonnegative(320, 0.03, seed=1)
    estimate = spectral_radius(matrix)
    assert estimate.method == METHOD_POWER
    assert estimate.converged and estimate.iterations > 1 and estimate.tolerance == 1e-9
    assert estimate.radius == pytest.approx(dense_radius(matrix), rel=1e-7)


def test_small_matrix_is_solved_densely():
    matrix = random_nonnegative(120, 0.05, seed=2)
    estimate = spectral_radius(matrix)
    assert (estimate.method, estimate.converged, estimate.iterations, estimate.tolerance) == \
        (METHOD_DENSE, True, None, None)
    assert estimate.radius == pytest.approx(dense_radius(matrix), rel=1e-12)


def test_empty_matrix_has_zero_radius():
    estimate = spectral_radius(sp.csr_matrix((400, 400), dtype=np.float32))
    assert (estimate.radius, estimate.method) == (0.0, METHOD_EMPTY)


def test_nilpotent_nonnegative_matrix_has_exactly_zero_radius():
    # Strictly upper triangular: an acyclic graph, A^k = 0 for k >= N.
    rng = np.random.default_rng(3)
    upper = sp.triu(random_nonnegative(300, 0.05, seed=3), k=1, format="csr")
    upper.data = rng.uniform(0.5, 1.0, upper.nnz)
    estimate = spectral_radius(upper)
    assert estimate.radius == 0.0 and estimate.method == METHOD_POWER and estimate.converged


def signed_with_negative_dominant(n: int = 300, seed: int = 4) -> sp.csr_matrix:
    """Mostly inhibitory: the dominant eigenvalue is real and negative (-rho), where ||A x|| misleads."""
    rng = np.random.default_rng(seed)
    inhibitory = random_nonnegative(n, 0.04, seed=seed)
    excitatory = sp.random(n, n, density=0.01, format="csr", random_state=rng, data_rvs=lambda k: 0.2 * rng.random(k))
    return (excitatory - inhibitory).tocsr()


def test_signed_matrix_with_negative_dominant_eigenvalue_uses_arpack():
    matrix = signed_with_negative_dominant()
    dominant = dominant_eigenvalue(matrix)
    assert dominant.real < 0 and abs(dominant.imag) < 1e-9 * abs(dominant)
    estimate = spectral_radius(matrix)
    assert estimate.method == METHOD_ARPACK and estimate.converged
    assert estimate.radius == pytest.approx(abs(dominant), rel=1e-8)


def test_signed_matrix_with_complex_dominant_pair():
    n = 300
    matrix = (random_nonnegative(n, 0.02, seed=5) * 0.1).tolil()
    matrix[0, 1], matrix[1, 0] = 6.0, -6.0          # a rotation block: eigenvalues close to +-6i
    matrix = matrix.tocsr()
    dominant = dominant_eigenvalue(matrix)
    assert abs(dominant.imag) > 1.0
    estimate = spectral_radius(matrix)
    assert estimate.method == METHOD_ARPACK
    assert estimate.radius == pytest.approx(abs(dominant), rel=1e-8)


def test_signed_matrix_with_clustered_top_moduli_finds_the_largest(tmp_path):
    """A signed control of the loop-rich embedded optic substrate has conjugate pairs at 0.950, 0.948 and 0.938:
    asked for one eigenvalue, ARPACK returned 0.948, and the control validation failed a correctly scaled matrix.
    The estimate must be the largest modulus."""
    write_synthetic_optic(tmp_path / "exports", hex_rings=4, seed=0, background_density=0.002,
                          transmitter_coverage=1.0)
    build_matrices(tmp_path / "exports", tmp_path / "graph", connectome="synthetic_optic", rho_target=0.95,
                   signed_policy="auto", sign_coverage_threshold=0.95, spectral_kwargs={})
    control = build_control(load_primary(tmp_path / "graph").matrix, "random", 1, rho_target=0.95).matrix
    estimate = spectral_radius(control)
    assert estimate.method == METHOD_ARPACK
    assert estimate.radius == pytest.approx(dense_radius(control), rel=1e-8)


def test_signed_small_matrix_is_exact_too():
    matrix = signed_with_negative_dominant(n=80, seed=6)
    assert spectral_radius(matrix).radius == pytest.approx(dense_radius(matrix), rel=1e-12)


def bipartite_periodic(n: int = 300, seed: int = 7) -> sp.csr_matrix:
    """Two-block cycle [[0, B], [C, 0]]: eigenvalues come in +-pairs, so power iteration oscillates."""
    half = n // 2
    blocks = [random_nonnegative(half, 0.05, seed=seed + i) for i in range(2)]
    return sp.bmat([[None, blocks[0]], [blocks[1], None]], format="csr")


def test_periodic_nonnegative_matrix_falls_back_to_arpack():
    matrix = bipartite_periodic()
    estimate = spectral_radius(matrix, power_max_iterations=400)
    assert estimate.method == METHOD_POWER_THEN_ARPACK and estimate.converged
    assert estimate.iterations > 400   # the failed power iterations are counted, plus ARPACK's products
    assert estimate.radius == pytest.approx(dense_radius(matrix), rel=1e-8)


def test_arpack_non_convergence_retries_then_raises(monkeypatch):
    subspaces = []

    def never_converges(operator, **kwargs):
        subspaces.append(kwargs["ncv"])
        raise spla.ArpackNoConvergence("no convergence", np.empty(0), np.empty((0, 0)))

    monkeypatch.setattr(spla, "eigs", never_converges)
    with pytest.raises(GraphError, match=r"ARPACK did not converge.*300x300.*ncv=20.*ncv=200"):
        spectral_radius(signed_with_negative_dominant())
    assert subspaces == sorted(subspaces) and len(set(subspaces)) == len(subspaces) >= 2


def test_invalid_inputs_are_named():
    with pytest.raises(BPUInputError, match="square"):
        spectral_radius(sp.csr_matrix((3, 4)))
    bad = random_nonnegative(300, 0.02, seed=8)
    bad.data[0] = np.nan
    with pytest.raises(BPUInputError, match="non-finite"):
        spectral_radius(bad)
    with pytest.raises(BPUInputError, match="power_tolerance"):
        spectral_radius(bad, power_tolerance=0)


def test_scale_to_radius_hits_target_in_float32():
    matrix = random_nonnegative(320, 0.03, seed=9)
    scaled, scale, before = scale_to_radius(matrix, 0.95)
    assert scaled.dtype == np.float32 and isinstance(scaled, sp.csr_matrix)
    assert scale == pytest.approx(0.95 / before.radius)
    assert dense_radius(scaled) == pytest.approx(0.95, abs=1e-6)
    np.testing.assert_array_equal(scaled.indices, matrix.indices)


def test_scale_to_radius_signed_matrix():
    scaled, _, before = scale_to_radius(signed_with_negative_dominant(), 0.95)
    assert before.method == METHOD_ARPACK
    assert dense_radius(scaled) == pytest.approx(0.95, abs=1e-6)


def test_zero_radius_scaling_names_the_matrix():
    upper = sp.triu(random_nonnegative(300, 0.05, seed=10), k=1, format="csr")
    with pytest.raises(GraphError, match="control random seed 3 has zero spectral radius"):
        scale_to_radius(upper, 0.95, what="control random seed 3")
    with pytest.raises(BPUInputError, match="rho target"):
        scale_to_radius(random_nonnegative(50, 0.1, seed=11), -1.0)


def test_estimate_as_dict_round_trips():
    estimate = SpectralEstimate(1.5, METHOD_POWER, True, 12, 1e-9)
    assert SpectralEstimate(**estimate.as_dict()) == estimate
