"""Control substrates: every claimed invariant, determinism, storage, and validation that can fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from connectome_bpu.model_names import control_seed
from connectome_bpu.controls import (build_control, dale_labels, load_control, save_control, validate_control,
                                     write_no_recurrence_marker)
from connectome_bpu.matrix import column_sign, matrix_invariants, matrix_sha256, scalar_invariants
from connectome_bpu.model_names import CONTROL_NAMES, GAUSSIAN_CONTROLS
from connectome_bpu.errors import BPUInputError
from connectome_bpu.spectral import scale_to_radius

RHO = 0.95
N = 300             # above spectral's dense_max_n: the sparse estimators real substrates use
SEEDS = (0, 1, 2)
WEIGHT_KEEPING = [name for name in CONTROL_NAMES if name not in GAUSSIAN_CONTROLS]


def arpack_radius(matrix) -> float:
    """Independent of spectral.py's method choice (tests/test_spectral.py checks the estimators against
    numpy's dense eigenvalues; dense LAPACK is avoided here because its threads crawl on a busy 2-core box)."""
    # Several eigenvalues from a fixed start vector: a signed matrix can have a conjugate pair or values of
    # nearly equal modulus at the top, where a single-eigenvalue solve from a random start can stop short.
    matrix = matrix.astype(np.float64)
    values = spla.eigs(matrix, k=4, which="LM", tol=1e-12, v0=np.ones(matrix.shape[0]), return_eigenvectors=False)
    return float(np.abs(values).max())


def make_unsigned(n: int = N, density: float = 0.03, seed: int = 0, self_loops: int = 12) -> sp.csr_matrix:
    """Lognormal weights, a few self-loops and a few empty columns (neurons with no output)."""
    rng = np.random.default_rng(seed)
    matrix = sp.random(n, n, density=density, format="lil", random_state=rng,
                       data_rvs=lambda k: rng.lognormal(0.0, 1.0, k))
    matrix.setdiag(0.0)
    for node in rng.choice(np.arange(5, n), self_loops, replace=False):
        matrix[node, node] = rng.lognormal()
    matrix[:, :3] = 0.0
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    return scale_to_radius(matrix, RHO)[0]


def make_signs(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    signs = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=n, p=[0.3, 0.1, 0.6])
    signs[:2] = -1          # two inhibitory neurons with empty columns: random_dale may give them edges
    return signs


def apply_column_signs(unsigned: sp.csr_matrix, signs: np.ndarray) -> sp.csr_matrix:
    factors = np.where(signs == -1, -1.0, 1.0).astype(np.float32)
    return (unsigned @ sp.diags(factors)).tocsr().astype(np.float32)


@pytest.fixture(scope="module")
def unsigned() -> sp.csr_matrix:
    return make_unsigned()


@pytest.fixture(scope="module")
def signs() -> np.ndarray:
    return make_signs()


@pytest.fixture(scope="module")
def signed(unsigned, signs) -> sp.csr_matrix:
    return scale_to_radius(apply_column_signs(unsigned, signs), RHO)[0]


def edge_set(matrix) -> set[tuple[int, int]]:
    coo = sp.coo_matrix(matrix)
    return set(zip(coo.row.tolist(), coo.col.tolist()))


def same_matrix(a, b) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


# --------------------------------------------------------------------------------------------------
# invariants of every control
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["unsigned", "signed"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", WEIGHT_KEEPING)
def test_every_control_keeps_its_invariants(name, seed, kind, unsigned, signed, signs):
    primary = signed if kind == "signed" else unsigned
    neuron_signs = signs if kind == "signed" else None
    control = build_control(primary, name, seed, rho_target=RHO, neuron_signs=neuron_signs)
    matrix = control.matrix
    assert isinstance(matrix, sp.csr_matrix) and matrix.dtype == np.float32 and matrix.has_canonical_format
    assert control.rng_seed == control_seed(name, seed)

    got, want = matrix_invariants(matrix), matrix_invariants(primary)
    for key in ("N", "edge_count", "self_loop_count", "negative_edge_fraction"):
        assert got[key] == want[key], key
    np.testing.assert_allclose(np.sort(matrix.data.astype(np.float64)),
                               np.sort(primary.data.astype(np.float64)) * control.scale, rtol=1e-6)
    assert control.spectral_after.radius == pytest.approx(RHO, abs=1e-5)
    assert control.spectral_before.radius == pytest.approx(RHO / control.scale)

    base = name.removesuffix("_dale")
    if base == "degree_shuffle":
        np.testing.assert_array_equal(got["in_degree"], want["in_degree"])
        np.testing.assert_array_equal(got["out_degree"], want["out_degree"])
        assert set(np.flatnonzero(matrix.diagonal())) == set(np.flatnonzero(primary.diagonal()))  # loops in place
        assert len(edge_set(matrix) ^ edge_set(primary)) > primary.nnz   # most edges moved
        assert 0 < control.stats["swaps_accepted"] <= control.stats["swap_attempts"]
        non_self = primary.nnz - want["self_loop_count"]
        assert control.stats["swap_attempts"] == 10 * non_self
    elif base == "weight_shuffle":
        assert edge_set(matrix) == edge_set(primary)
        assert not np.allclose(matrix.data, primary.data * control.scale)
    else:
        assert not np.array_equal(got["in_degree"], want["in_degree"])
        assert not np.array_equal(got["out_degree"], want["out_degree"])
    if name.endswith("_dale"):
        labels = dale_labels(primary, neuron_signs)
        columns = column_sign(matrix)
        assert np.all((columns == 0) | (columns == labels))
        inhibitory = labels[sp.coo_matrix(primary).col] == -1
        assert np.count_nonzero(labels[sp.coo_matrix(matrix).col] == -1) == np.count_nonzero(inhibitory)


@pytest.mark.parametrize("kind", ["unsigned", "signed"])
@pytest.mark.parametrize("name", GAUSSIAN_CONTROLS)
def test_gaussian_controls_draw_fresh_weights_at_the_connectome_radius(name, kind, unsigned, signed, signs, tmp_path):
    primary = signed if kind == "signed" else unsigned
    control = build_control(primary, name, 0, rho_target=RHO)
    matrix = control.matrix
    got, want = matrix_invariants(matrix), matrix_invariants(primary)
    for key in ("N", "edge_count", "self_loop_count"):
        assert got[key] == want[key], key
    assert control.spectral_after.radius == pytest.approx(RHO, abs=1e-5)
    weights = matrix.data.astype(np.float64) / control.scale
    assert np.sqrt(np.mean(weights**2)) == pytest.approx(np.mean(np.abs(primary.data)), rel=0.1)
    assert 0.45 < np.mean(weights < 0) < 0.55          # zero-mean: half the signs flip, whatever the primary's
    if name == "random_weight_topology":
        assert edge_set(matrix) == edge_set(primary)
    else:
        assert len(edge_set(matrix) & edge_set(primary)) < 0.1 * primary.nnz
    assert same_matrix(matrix, build_control(primary, name, 0, rho_target=RHO).matrix)
    assert not same_matrix(matrix, build_control(primary, name, 1, rho_target=RHO).matrix)

    path = tmp_path / "control.npz"
    save_control(path, control, primary_sha256=matrix_sha256(primary))
    checks = validate_control(path, primary, name=name, seed=0, rho_target=RHO)
    assert all(c.passed for c in checks), [c.text for c in checks if not c.passed]
    assert any("fresh zero-mean Gaussian weights" in c.text for c in checks)
    # the same file checked against a primary of another weight scale fails the Gaussian check
    rescaled = validate_control(path, primary * 3.0, name=name, seed=0, rho_target=RHO,
                                primary_sha256=matrix_sha256(primary))
    assert not all(c.passed for c in rescaled if "Gaussian" in c.text)


@pytest.mark.parametrize("kind", ["unsigned", "signed"])
def test_control_radius_agrees_with_arpack(kind, unsigned, signed, signs):
    primary, neuron_signs = (signed, signs) if kind == "signed" else (unsigned, None)
    for name in CONTROL_NAMES:
        control = build_control(primary, name, 0, rho_target=RHO, neuron_signs=neuron_signs)
        assert arpack_radius(control.matrix) == pytest.approx(RHO, abs=1e-5), name


def test_plain_controls_break_dale_on_a_signed_primary(signed, signs):
    """The reason the Dale variants exist: plain controls put negative weights on excitatory columns."""
    for name in ("random", "degree_shuffle", "weight_shuffle"):
        control = build_control(signed, name, 0, rho_target=RHO, neuron_signs=signs)
        assert np.any(column_sign(control.matrix) == 2), name
        assert any("Dale" in note for note in control.notes)


@pytest.mark.parametrize("name", ["random", "degree_shuffle", "weight_shuffle"])
def test_dale_variants_equal_plain_controls_on_an_all_positive_primary(name, unsigned, signs):
    plain = build_control(unsigned, name, 1, rho_target=RHO)
    dale = build_control(unsigned, name + "_dale", 1, rho_target=RHO, neuron_signs=signs)
    assert same_matrix(plain.matrix, dale.matrix)
    assert any("redundant" in note for note in dale.notes)


def test_random_dale_can_use_empty_inhibitory_columns(signed, signs):
    used = np.zeros(N, dtype=bool)
    for seed in range(6):
        used |= column_sign(build_control(signed, "random_dale", seed, rho_target=RHO,
                                          neuron_signs=signs).matrix) == -1
    assert used[:2].any()     # columns 0, 1: inhibitory but empty in the primary


# --------------------------------------------------------------------------------------------------
# algorithms in detail
# --------------------------------------------------------------------------------------------------

def reference_random(primary: sp.csr_matrix, rng_seed: int) -> sp.csr_matrix:
    """The original benchmark's ``random`` algorithm as a plain loop (docs/method.md#controls): the vectorised
    version must draw the same matrix (docs/departures.md#vectorised-controls)."""
    coo = primary.tocoo()
    n, loops = primary.shape[0], coo.row == coo.col
    rng = np.random.default_rng(rng_seed)
    loop_nodes = rng.choice(n, int(loops.sum()), replace=False)
    need, total = primary.nnz - int(loops.sum()), n * (n - 1)
    if need > total / 3:
        codes = rng.choice(total, need, replace=False)
    else:
        seen, codes = set(), []
        while len(codes) < need:
            for code in rng.integers(0, total, size=max(2 * (need - len(codes)), 4096), dtype=np.int64):
                if int(code) not in seen:
                    seen.add(int(code))
                    codes.append(int(code))
                    if len(codes) == need:
                        break
        codes = np.array(codes, dtype=np.int64)
    post, pre_ = codes // (n - 1), codes % (n - 1)
    pre = pre_ + (pre_ >= post)
    weights = rng.permutation(coo.data)
    rows, cols = np.concatenate([loop_nodes, post]), np.concatenate([loop_nodes, pre])
    return sp.csr_matrix((weights, (rows, cols)), shape=primary.shape)


@pytest.mark.parametrize("density", [0.03, 0.6])   # rejection sampling, and rng.choice above N(N-1)/3
def test_random_draws_what_the_reference_algorithm_draws(density):
    primary = make_unsigned(n=60 if density > 0.5 else N, density=density, seed=5)
    control = build_control(primary, "random", 4, rho_target=RHO)
    expected = reference_random(primary, control_seed("random", 4))
    assert edge_set(control.matrix) == edge_set(expected)
    np.testing.assert_allclose(control.matrix.toarray(), expected.toarray() * control.scale, rtol=1e-6)


def test_degree_shuffle_attempt_multiplier_and_acceptance(unsigned):
    control = build_control(unsigned, "degree_shuffle", 0, rho_target=RHO, swap_attempts_per_edge=2.5)
    non_self = unsigned.nnz - matrix_invariants(unsigned)["self_loop_count"]
    assert control.stats["swap_attempts"] == round(2.5 * non_self)
    assert control.stats["swap_rounds"] == 5
    assert 0.5 < control.stats["swaps_accepted"] / control.stats["swap_attempts"] <= 1.0
    assert any("accepted" in note for note in control.notes)


def test_degree_shuffle_on_a_dense_graph_never_makes_multi_edges_or_loops():
    primary = make_unsigned(n=40, density=0.7, seed=6, self_loops=5)
    control = build_control(primary, "degree_shuffle", 0, rho_target=RHO)
    got, want = matrix_invariants(control.matrix), matrix_invariants(primary)
    assert got["edge_count"] == want["edge_count"] and got["self_loop_count"] == want["self_loop_count"]
    np.testing.assert_array_equal(got["in_degree"], want["in_degree"])
    np.testing.assert_array_equal(got["out_degree"], want["out_degree"])
    assert control.stats["swaps_accepted"] < control.stats["swap_attempts"]   # dense: many proposals blocked


def test_degree_shuffle_without_two_non_self_edges_falls_back_to_weight_shuffle():
    primary = sp.csr_matrix(np.diag(np.arange(1.0, 8.0)).astype(np.float32))
    primary = primary.tolil()
    primary[0, 1] = 2.0
    primary = primary.tocsr()
    control = build_control(primary, "degree_shuffle", 0, rho_target=RHO)
    assert edge_set(control.matrix) == edge_set(primary)
    assert any("falls back to a weight shuffle" in note for note in control.notes)


def test_same_seed_same_matrix_different_seed_different(unsigned, signed, signs):
    for primary, neuron_signs in ((unsigned, None), (signed, signs)):
        for name in CONTROL_NAMES:
            first = build_control(primary, name, 3, rho_target=RHO, neuron_signs=neuron_signs)
            again = build_control(primary, name, 3, rho_target=RHO, neuron_signs=neuron_signs)
            other = build_control(primary, name, 4, rho_target=RHO, neuron_signs=neuron_signs)
            assert same_matrix(first.matrix, again.matrix) and first.scale == again.scale
            assert not same_matrix(first.matrix, other.matrix)


def test_build_control_rejects_bad_requests(unsigned, signed, signs):
    with pytest.raises(BPUInputError, match="unknown control 'shuffle'"):
        build_control(unsigned, "shuffle", 0, rho_target=RHO)
    with pytest.raises(BPUInputError, match="write_no_recurrence_marker"):
        build_control(unsigned, "no_recurrence", 0, rho_target=RHO)
    mixed = signed.copy()
    column = int(np.flatnonzero(column_sign(signed) == -1)[0])
    rows = np.flatnonzero(signed[:, column].toarray())
    mixed[rows[0], column] = 1.0
    with pytest.raises(BPUInputError, match="both positive and negative"):
        build_control(mixed, "random_dale", 0, rho_target=RHO, neuron_signs=signs)
    wrong = signs.copy()
    wrong[column] = 1
    with pytest.raises(BPUInputError, match=f"column {column} is labelled 1"):
        build_control(signed, "weight_shuffle_dale", 0, rho_target=RHO, neuron_signs=wrong)
    with pytest.raises(BPUInputError, match="one sign per neuron"):
        build_control(signed, "weight_shuffle_dale", 0, rho_target=RHO, neuron_signs=signs[:-1])


def test_dale_labels_without_neuron_signs_come_from_the_columns(signed, signs):
    labels = dale_labels(signed, None)
    columns = column_sign(signed)
    assert np.array_equal(labels[columns != 0], columns[columns != 0])
    assert np.all(labels[columns == 0] == 1)


# --------------------------------------------------------------------------------------------------
# invariants and checksums
# --------------------------------------------------------------------------------------------------

def test_matrix_invariants_on_a_hand_made_matrix():
    dense = np.array([[1.0, 0.0, -2.0, 0.0],
                      [3.0, 0.0, -1.0, 0.0],
                      [0.0, 0.0, 4.0, 0.0],
                      [5.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    inv = matrix_invariants(sp.csr_matrix(dense), neuron_signs=np.array([1, 0, -1, -1], dtype=np.int8))
    assert (inv["N"], inv["edge_count"], inv["self_loop_count"]) == (4, 6, 2)
    np.testing.assert_array_equal(inv["in_degree"], [2, 2, 1, 1])
    np.testing.assert_array_equal(inv["out_degree"], [3, 0, 3, 0])
    np.testing.assert_array_equal(inv["column_sign"], [1, 0, 2, 0])
    assert inv["negative_edge_fraction"] == pytest.approx(2 / 6)
    assert inv["weight_summary"] == {"min": -2.0, "max": 5.0, "mean": pytest.approx(10 / 6), "sum": 10.0}
    assert inv["sign_label_violations"] == 1            # column 2 is mixed
    moved = dense.copy()
    moved[3, 0], moved[3, 3] = 0.0, 5.0                 # same multiset, other position
    assert matrix_invariants(sp.csr_matrix(moved))["weight_multiset_sha256"] == inv["weight_multiset_sha256"]
    moved[3, 3] = 5.5
    assert matrix_invariants(sp.csr_matrix(moved))["weight_multiset_sha256"] != inv["weight_multiset_sha256"]


def test_matrix_sha256_identifies_values_not_storage(unsigned):
    reference = matrix_sha256(unsigned)
    coo = unsigned.tocoo()
    duplicated = sp.coo_matrix((np.concatenate([coo.data / 2, coo.data / 2]),
                                (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=coo.shape)
    assert matrix_sha256(unsigned.astype(np.float64)) == reference
    assert matrix_sha256(duplicated) == reference
    changed = unsigned.copy()
    changed.data[0] *= 1.5
    assert matrix_sha256(changed) != reference


# --------------------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, signed, signs):
    control = build_control(signed, "degree_shuffle_dale", 2, rho_target=RHO, neuron_signs=signs)
    path = tmp_path / "controls" / "degree_shuffle_dale" / "seed2.npz"
    save_control(path, control, primary_sha256=matrix_sha256(signed), extra_meta={"substrate": "test"})
    matrix, meta, arrays = load_control(path)
    assert same_matrix(matrix, control.matrix)
    assert (meta["name"], meta["seed"], meta["rng_seed"]) == ("degree_shuffle_dale", 2, 20002)
    assert meta["scale"] == control.scale and meta["rho_target"] == RHO
    assert meta["spectral_before"] == control.spectral_before.as_dict()
    assert meta["spectral_after"] == control.spectral_after.as_dict()
    assert meta["primary_sha256"] == matrix_sha256(signed) and meta["matrix_sha256"] == matrix_sha256(matrix)
    assert meta["notes"] == control.notes and meta["stats"] == control.stats
    assert meta["extra"] == {"substrate": "test"}
    invariants = matrix_invariants(control.matrix)
    assert meta["invariants"]["edge_count"] == invariants["edge_count"]
    for key in ("in_degree", "out_degree", "column_sign"):
        np.testing.assert_array_equal(arrays[key], invariants[key])


def test_failed_write_leaves_no_file(tmp_path, unsigned, monkeypatch):
    control = build_control(unsigned, "random", 0, rho_target=RHO)
    path = tmp_path / "random" / "seed0.npz"

    def crash_midway(file, **arrays):
        Path(file).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_control(path, control, primary_sha256="x", extra_meta={})
    with pytest.raises(OSError, match="disk full"):
        write_no_recurrence_marker(tmp_path / "marker.npz", unsigned, seed=0, primary_sha256=matrix_sha256(unsigned),
                                   rho_target=RHO)
    assert not path.exists() and list(path.parent.iterdir()) == []
    assert not (tmp_path / "marker.npz").exists()


def test_marker_holds_no_matrix_and_checks_its_checksum(tmp_path, unsigned):
    path = tmp_path / "no_recurrence" / "seed0.npz"
    with pytest.raises(BPUInputError, match="does not match the primary"):
        write_no_recurrence_marker(path, unsigned, seed=0, primary_sha256="0" * 64, rho_target=RHO)
    write_no_recurrence_marker(path, unsigned, seed=0, primary_sha256=matrix_sha256(unsigned), rho_target=RHO)
    with np.load(path) as stored:
        assert "data" not in stored.files and "indices" not in stored.files
    with pytest.raises(BPUInputError, match="holds no matrix"):
        load_control(path)
    with pytest.raises(BPUInputError, match="does not exist"):
        load_control(tmp_path / "missing.npz")


# --------------------------------------------------------------------------------------------------
# validation: everything passes on good files, and each check fails on a broken one
# --------------------------------------------------------------------------------------------------

CHECK_KINDS = {
    "identity": " holds ",
    "primary": "built from the current primary",
    "stored": "stored invariants",
    "csr": "valid square CSR",
    "N": "matches N",
    "edges": "matches edge count",
    "loops": "matches self-loop count",
    "radius": "spectral radius is matched",
    "multiset": "signed weight multiset",
    "in_degree": "preserves in-degree exactly",
    "out_degree": "preserves out-degree exactly",
    "support": "keeps the primary's support",
    "dale": "one sign per presynaptic neuron",
    "marker_hash": "matches the weight multiset checksum",
    "gaussian": "fresh zero-mean Gaussian weights",
}


def kinds(checks) -> dict[str, bool]:
    found = {}
    for line in checks:
        matched = [kind for kind, phrase in CHECK_KINDS.items() if phrase in line.text]
        assert len(matched) == 1, line.text
        found[matched[0]] = line.passed
    return found


def stored_arrays(path) -> tuple[dict, dict]:
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return arrays, json.loads(str(arrays.pop("meta_json")))


def rewrite(path, *, matrix=None, meta=None, **arrays_override) -> None:
    """Tamper with a stored file behind save_control's back (meta and invariants stay as written)."""
    arrays, old_meta = stored_arrays(path)
    if matrix is not None:
        matrix = sp.csr_matrix(matrix)
        arrays.update(indptr=matrix.indptr, indices=matrix.indices, data=matrix.data.astype(np.float32),
                      shape=np.asarray(matrix.shape, dtype=np.int64))
    arrays.update(arrays_override)
    np.savez_compressed(path, meta_json=np.array(json.dumps(meta if meta is not None else old_meta)), **arrays)


def saved(tmp_path, primary, name, seed, neuron_signs=None, filename=None) -> Path:
    path = tmp_path / (filename or f"{name}_seed{seed}.npz")
    if name == "no_recurrence":
        write_no_recurrence_marker(path, primary, seed=seed, primary_sha256=matrix_sha256(primary), rho_target=RHO,
                                   neuron_signs=neuron_signs)
    else:
        control = build_control(primary, name, seed, rho_target=RHO, neuron_signs=neuron_signs)
        save_control(path, control, primary_sha256=matrix_sha256(primary), extra_meta={})
    return path


def validate(path, primary, name, seed, neuron_signs=None, **kwargs):
    return validate_control(path, primary, name=name, seed=seed, rho_target=kwargs.pop("rho_target", RHO),
                            neuron_signs=neuron_signs, primary_sha256=kwargs.pop("primary_sha256", None),
                            spectral_kwargs=kwargs.pop("spectral_kwargs", {}))


def move_entry(matrix: sp.csr_matrix, *, row: int | None = None, col: int | None = None,
               avoid_diagonal: bool = True) -> sp.csr_matrix:
    """Move one off-diagonal entry to a free cell in a different row (or column), keeping everything else."""
    lil = matrix.tolil()
    coo = matrix.tocoo()
    index = int(np.flatnonzero(coo.row != coo.col)[0])
    r, c, value = int(coo.row[index]), int(coo.col[index]), coo.data[index]
    present = edge_set(matrix)
    for other in range(matrix.shape[0]):
        target = (other, c) if row is not None else (r, other)
        if target not in present and other not in (r, c) and not (avoid_diagonal and target[0] == target[1]):
            break
    lil[r, c] = 0.0
    lil[target] = value
    moved = lil.tocsr()
    moved.eliminate_zeros()
    return moved


@pytest.mark.parametrize("name", CONTROL_NAMES + ("no_recurrence",))
@pytest.mark.parametrize("kind", ["unsigned", "signed"])
def test_validation_passes_on_good_files(tmp_path, name, kind, unsigned, signed, signs):
    primary, neuron_signs = (signed, signs) if kind == "signed" else (unsigned, None)
    path = saved(tmp_path, primary, name, 1, neuron_signs)
    checks = validate(path, primary, name, 1, neuron_signs, spectral_kwargs={"dense_max_n": 0})
    assert all(line.passed for line in checks), [line.text for line in checks if not line.passed]
    assert all(line.text.startswith(f"{name} seed 1") for line in checks)
    weights = "gaussian" if name in GAUSSIAN_CONTROLS else "multiset"
    expected = {"identity", "primary", "radius"} | ({"N", "edges", "loops", "marker_hash"} if name == "no_recurrence"
                                                     else {"stored", "N", "edges", "loops", weights})
    expected |= {"in_degree", "out_degree"} if name.startswith("degree_shuffle") else set()
    expected |= {"support"} if name.startswith(("weight_shuffle", "random_weight_topology")) else set()
    expected |= {"dale"} if name.endswith("_dale") else set()
    assert set(kinds(checks)) == expected
    radius_line = next(line.text for line in checks if CHECK_KINDS["radius"] in line.text)
    assert "tolerance" in radius_line and ("power_iteration" in radius_line or "arpack" in radius_line)


def broken_files(tmp_path, unsigned, signed, signs):
    """(description, path, primary, name, seed, neuron_signs, validate kwargs, check kind that must fail)."""
    cases = []

    def add(label, name, primary, kind, tamper=None, neuron_signs=None, seed=1, **kwargs):
        path = saved(tmp_path, primary, name, 1, neuron_signs, filename=f"{label}.npz")
        if tamper is not None:
            tamper(path)
        cases.append((label, path, primary, name, seed, neuron_signs, kwargs, kind))

    def matrix_of(path):
        return load_control(path)[0]

    add("wrong seed", "random", unsigned, "identity", seed=2)
    other_primary = unsigned.copy()
    other_primary.data[0] *= 1.01
    add("other primary", "weight_shuffle", unsigned, "primary", primary_sha256=matrix_sha256(other_primary))
    add("edited degree array", "degree_shuffle", unsigned, "stored",
        lambda p: rewrite(p, in_degree=np.roll(stored_arrays(p)[0]["in_degree"], 1)))
    add("corrupt csr", "random", unsigned, "csr", lambda p: rewrite(p, indptr=stored_arrays(p)[0]["indptr"][:-5]))
    add("extra neuron", "random", unsigned, "N",
        lambda p: rewrite(p, matrix=sp.block_diag([matrix_of(p), sp.csr_matrix((1, 1))], format="csr")))

    def drop_edge(p):
        matrix = matrix_of(p).tolil()
        coo = matrix.tocoo()
        matrix[coo.row[0], coo.col[0]] = 0.0
        rewrite(p, matrix=matrix.tocsr())
    add("dropped edge", "random", unsigned, "edges", drop_edge)

    def make_loop(p):
        matrix = matrix_of(p)
        free = np.flatnonzero(matrix.diagonal() == 0)
        moved = matrix.tolil()
        coo = matrix.tocoo()
        index = int(np.flatnonzero(coo.row != coo.col)[0])
        moved[coo.row[index], coo.col[index]] = 0.0
        moved[free[0], free[0]] = coo.data[index]
        rewrite(p, matrix=moved.tocsr())
    add("extra self-loop", "random", unsigned, "loops", make_loop)

    add("wrong scale", "weight_shuffle", unsigned, "radius", lambda p: rewrite(p, matrix=matrix_of(p) * 1.01))
    add("validated against another rho", "random", unsigned, "radius", rho_target=0.9)

    def perturb_weight(p):
        matrix = matrix_of(p)
        matrix.data[np.argmin(matrix.data)] *= 1.001
        rewrite(p, matrix=matrix)
    add("altered weight", "weight_shuffle", unsigned, "multiset", perturb_weight)
    add("positive Gaussian weights", "random_sparse", unsigned, "gaussian",
        lambda p: rewrite(p, matrix=abs(matrix_of(p))))
    add("altered in-degree", "degree_shuffle", unsigned, "in_degree",
        lambda p: rewrite(p, matrix=move_entry(matrix_of(p), row=0)))
    add("altered out-degree", "degree_shuffle_dale", signed, "out_degree",
        lambda p: rewrite(p, matrix=move_entry(matrix_of(p), col=0)), neuron_signs=signs)
    add("moved edge", "weight_shuffle_dale", signed, "support",
        lambda p: rewrite(p, matrix=move_entry(matrix_of(p), row=0)), neuron_signs=signs)

    def mixed_column(p):
        matrix = matrix_of(p)
        column = np.flatnonzero(column_sign(matrix) == -1)[0]
        matrix.data[np.flatnonzero(matrix.indices == column)[0]] *= -1.0
        rewrite(p, matrix=matrix)
    add("mixed-sign column", "random_dale", signed, "dale", mixed_column, neuron_signs=signs)

    stale = unsigned.copy()
    stale.data[:10] *= 1.2
    add("stale marker", "no_recurrence", stale, "primary")
    add("marker of a smaller primary", "no_recurrence", unsigned[:200, :200].tocsr(), "N")
    add("marker with another edge count", "no_recurrence", unsigned, "edges",
        lambda p: rewrite(p, meta={**stored_arrays(p)[1],
                                   "invariants": {**stored_arrays(p)[1]["invariants"], "edge_count": 1}}))
    add("marker with another loop count", "no_recurrence", unsigned, "loops",
        lambda p: rewrite(p, meta={**stored_arrays(p)[1],
                                   "invariants": {**stored_arrays(p)[1]["invariants"], "self_loop_count": 0}}))
    add("marker with another multiset", "no_recurrence", unsigned, "marker_hash",
        lambda p: rewrite(p, meta={**stored_arrays(p)[1],
                                   "invariants": {**stored_arrays(p)[1]["invariants"],
                                                  "weight_multiset_sha256": "0" * 64}}))
    add("marker for a primary not at rho", "no_recurrence", unsigned, "radius", rho_target=0.5)
    return cases


def test_each_check_fails_on_a_deliberately_broken_file(tmp_path, unsigned, signed, signs):
    failed_kinds = set()
    for label, path, primary, name, seed, neuron_signs, kwargs, kind in broken_files(tmp_path, unsigned, signed,
                                                                                      signs):
        current = unsigned if label in ("stale marker", "marker of a smaller primary") else primary
        verdicts = kinds(validate(path, current, name, seed, neuron_signs, **kwargs))
        assert verdicts[kind] is False, f"{label}: the {kind} check did not fail"
        failed_kinds |= {k for k, passed in verdicts.items() if not passed}
    assert failed_kinds == set(CHECK_KINDS)     # every check of validate_control has been seen failing


def test_degree_checks_fail_independently(tmp_path, unsigned):
    path = saved(tmp_path, unsigned, "degree_shuffle", 1)
    rewrite(path, matrix=move_entry(load_control(path)[0], row=0))
    verdicts = kinds(validate(path, unsigned, "degree_shuffle", 1))
    assert verdicts["in_degree"] is False and verdicts["out_degree"] is True and verdicts["edges"] is True


def test_validation_does_not_trust_stored_invariants(tmp_path, unsigned):
    """Editing the matrix *and* its stored invariants consistently still fails the property checks."""
    path = saved(tmp_path, unsigned, "degree_shuffle", 1)
    matrix = move_entry(load_control(path)[0], row=0)
    arrays, meta = stored_arrays(path)
    invariants = matrix_invariants(matrix)
    meta.update(invariants=json.loads(json.dumps(scalar_invariants(invariants))),
                matrix_sha256=matrix_sha256(matrix))
    rewrite(path, matrix=matrix, meta=meta, in_degree=invariants["in_degree"], out_degree=invariants["out_degree"],
            column_sign=invariants["column_sign"])
    verdicts = kinds(validate(path, unsigned, "degree_shuffle", 1))
    assert verdicts["stored"] is True and verdicts["in_degree"] is False
