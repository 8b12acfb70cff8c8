"""Control substrates: matched random and shuffled versions of the primary recurrent matrix.

Each control answers "is it the connectome's *structure* that helps?" by keeping some properties of
the primary matrix W[post, pre] (column j = presynaptic neuron j) and destroying the rest:

============================  ====================================================================
``random``                    N, edge count, self-loop count, exact weight multiset; uniform support
``degree_shuffle``            + exact in/out-degree sequences (directed double-edge swaps)
``weight_shuffle``            + exact support; only the weight<->edge assignment changes
``<name>_dale``               + each presynaptic neuron keeps a single sign equal to its label
``random_weight_topology``    N, exact support (so both degree sequences); fresh Gaussian weights
``random_sparse``             N, edge count, self-loop count; uniform support, fresh Gaussian weights
``no_recurrence``             the primary itself (hidden state reset at training time): a marker file
============================  ====================================================================

The two Gaussian controls draw i.i.d. N(0, s^2) weights with s the primary's mean absolute weight, so
they also break the weight distribution and every sign rule; they ask whether *any* recurrent matrix of
that support (or of that size) would do. Being rescaled like every control, they are matched in spectral
radius, which zero-mean weights on a sparse support otherwise are not (their radius is far below that of
a nonnegative matrix of the same magnitude).

Every control starts from the already-scaled primary, is drawn with a fresh
``default_rng(control_seed(name, seed))`` and is rescaled to ``rho_target`` afterwards with
:func:`connectome_bpu.spectral.spectral_radius`. It is stored once per (control, seed) with its
invariants, and :func:`validate_control` re-derives every claimed property from the stored file, so the
report checks the matrices that were actually trained, not freshly rebuilt seed-0 controls
(docs/departures.md#control-validation).

Why the Dale variants: on a signed primary the plain controls move negative weights onto neurons that
are excitatory, so a control could lose to the connectome merely for breaking Dale's law. The Dale
variants do every draw separately within each presynaptic sign class (inhibitory columns vs the rest),
so they differ from the primary only in structure. On an all-positive primary there is a single class
and each Dale variant is *the same matrix* as its plain counterpart (same seed, same draws): redundant,
but harmless to train.

Everything is vectorised over int64 cell codes ``post * N + pre`` (CSR order is ascending code order),
so the FlyWire whole brain (139,255 neurons, 15 M edges) takes seconds to a minute per control instead
of running Python loops over edges (docs/departures.md#vectorised-controls).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .atomic import json_default, save_npz   # the package's one numpy-aware JSON encoder
from .model_names import (
    CONTROL_NAMES,
    DALE_SUFFIX,
    GAUSSIAN_CONTROLS,
    NO_RECURRENCE,
    control_base,
    control_seed,
    is_dale,
)
from .errors import BPUInputError
from .checks import Check, check
from .matrix import canonical_csr, check_neuron_signs, column_sign, matrix_invariants, matrix_sha256, scalar_invariants
from .spectral import SpectralEstimate, scale_to_radius, spectral_radius

SWAP_ATTEMPTS_PER_EDGE = 10.0       # the original benchmark's 10 x E_nonself swap attempts
RADIUS_TOLERANCE = 1e-3             # |rho(control) - rho_target| allowed by the validation
MULTISET_RTOL = 1e-5                # control weights vs primary weights x scale (float32 rounding is ~6e-8)
FILE_FORMAT = 1
_KIND_CONTROL = "control"
_KIND_MARKER = "no_recurrence_marker"
_INVARIANT_ARRAYS = ("in_degree", "out_degree", "column_sign")
_CSR_ARRAYS = ("indptr", "indices", "data", "shape")
_SIGN_CLASSES = (-1, 1)             # inhibitory columns first, then every other column


def dale_labels(primary, neuron_signs=None) -> np.ndarray:
    """The sign (+1/-1, int8) each presynaptic neuron must keep in a Dale-preserving control.

    An all-positive primary carries no signs, so every neuron is +1 (one class: the Dale variants then
    equal the plain controls). On a signed primary, a neuron is -1 iff its label is -1 (inhibitory);
    unlabelled and excitatory neurons are +1. Without labels they are read off the columns (empty
    columns +1). Labels that contradict the matrix, or a column holding both signs, make a
    Dale-preserving control impossible and raise :class:`BPUInputError`.
    """
    csr = canonical_csr(primary)
    n = csr.shape[0]
    signs = check_neuron_signs(neuron_signs, n)
    if not np.any(csr.data < 0):
        return np.ones(n, dtype=np.int8)
    columns = column_sign(csr)
    mixed = np.flatnonzero(columns == 2)
    if mixed.size:
        raise BPUInputError(f"the signed primary has {mixed.size} presynaptic neurons (columns) with both positive "
                            f"and negative weights (first: column {int(mixed[0])}); a Dale-preserving control needs "
                            "one sign per presynaptic neuron")
    if signs is None:
        return np.where(columns == -1, -1, 1).astype(np.int8)
    labels = np.where(signs == -1, -1, 1).astype(np.int8)
    disagree = np.flatnonzero((columns != 0) & (columns != labels))
    if disagree.size:
        first = int(disagree[0])
        raise BPUInputError(f"neuron_signs contradict the signed primary in {disagree.size} columns (first: column "
                            f"{first} is labelled {int(signs[first])} but its weights are "
                            f"{'negative' if columns[first] == -1 else 'positive'})")
    return labels


# --------------------------------------------------------------------------------------------------
# vectorised helpers over int64 codes
# --------------------------------------------------------------------------------------------------

def _sort_with_order(values: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted values, stable argsort) of nonnegative int64 ``values`` < ``bound``.

    When value and position fit together in 63 bits they are packed into one int64 and sorted once,
    which is ~4x faster than ``argsort`` on 15 M elements (and ties stay in position order, i.e. stable).
    """
    count = len(values)
    position_bits = max(int(count - 1).bit_length(), 1)
    if int(bound - 1).bit_length() + position_bits <= 63:
        packed = np.sort((values << position_bits) | np.arange(count, dtype=np.int64))
        return packed >> position_bits, packed & ((1 << position_bits) - 1)
    order = np.argsort(values, kind="stable")
    return values[order], order


def _in_sorted(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Membership of ``needles`` in the sorted ``haystack`` (fast when ``needles`` is sorted too)."""
    if haystack.size == 0:
        return np.zeros(needles.shape, dtype=bool)
    positions = np.minimum(np.searchsorted(haystack, needles), haystack.size - 1)
    return haystack[positions] == needles


def _repeated(sorted_values: np.ndarray) -> np.ndarray:
    """True where a value of the sorted array occurs more than once."""
    same_as_next = sorted_values[1:] == sorted_values[:-1]
    repeated = np.zeros(sorted_values.shape, dtype=bool)
    repeated[1:] |= same_as_next
    repeated[:-1] |= same_as_next
    return repeated


def _distinct_codes(rng: np.random.Generator, total: int, count: int) -> np.ndarray:
    """``count`` distinct uniform integers from [0, total), in the order a sequential sampler keeps them.

    Dense requests (> total/3) use one ``rng.choice`` without replacement; sparse ones draw batches of
    max(2 x remaining, 4096) integers and keep codes not seen before in first-occurrence order, which is
    what the original benchmark's set loop produced, without the loop.
    """
    if count > total / 3:
        return rng.choice(total, count, replace=False).astype(np.int64)
    chosen, seen = [], np.empty(0, dtype=np.int64)
    remaining = count
    while remaining > 0:
        draws = rng.integers(0, total, size=max(2 * remaining, 4096), dtype=np.int64)
        values, order = _sort_with_order(draws, total)
        first = np.ones(values.size, dtype=bool)
        first[1:] = values[1:] != values[:-1]
        keep = np.zeros(draws.size, dtype=bool)
        keep[order[first & ~_in_sorted(seen, values)]] = True
        new = draws[np.flatnonzero(keep)[:remaining]]
        chosen.append(new)
        seen = np.sort(np.concatenate([seen, new]))
        remaining -= new.size
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def _csr_from_edges(post: np.ndarray, pre: np.ndarray, data: np.ndarray, n: int) -> sp.csr_matrix:
    """Canonical CSR from distinct (post, pre) cells, built by one sort of their codes."""
    codes, order = _sort_with_order(post.astype(np.int64) * n + pre, n * n)
    index_dtype = np.int32 if max(n, codes.size) < 2**31 else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(codes // n, minlength=n), out=indptr[1:])
    return sp.csr_matrix((data[order], (codes % n).astype(index_dtype), indptr), shape=(n, n))


def _edges(csr: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(post, pre, data) of every stored entry in CSR order (ascending code)."""
    post = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return post, csr.indices.astype(np.int64), csr.data


def _present_classes(labels: np.ndarray):
    return [sign for sign in _SIGN_CLASSES if np.any(labels == sign)]


# --------------------------------------------------------------------------------------------------
# generators (unscaled); ``labels`` is all +1 for the plain controls, dale_labels(...) for Dale ones
# --------------------------------------------------------------------------------------------------

def _random_support(csr: sp.csr_matrix, rng: np.random.Generator, labels: np.ndarray) -> sp.csr_matrix:
    """Uniform random support with the same self-loop and edge counts per presynaptic sign class.

    Within a class with columns C (n_c of them), the off-diagonal cells are the N x n_c grid (row-major)
    minus its n_c diagonal cells; code c maps to grid cell g = c + #{k : C[k] * n_c <= c} (skipping the
    diagonal cells that precede it). With a single class (C = 0..N-1) this is exactly the original
    benchmark's decoding post = c // (N-1), pre' = c % (N-1), pre = pre' + (pre' >= post), so
    ``random`` keeps the original benchmark's draw order: self-loop nodes, off-diagonal cells, then
    ``rng.permutation`` of the weights (self-loop cells first).
    """
    n = csr.shape[0]
    post, pre, data = _edges(csr)
    edge_class = labels[pre]
    loops = post == pre
    classes = _present_classes(labels)
    posts, pres = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for sign in classes:
        columns = np.flatnonzero(labels == sign).astype(np.int64)
        width = columns.size
        in_class = edge_class == sign
        loop_count = int(np.count_nonzero(loops & in_class))
        loop_nodes = columns[rng.choice(width, loop_count, replace=False)]
        codes = _distinct_codes(rng, width * (n - 1), int(np.count_nonzero(in_class)) - loop_count)
        cells = codes + np.searchsorted(columns * width, codes, side="right")
        posts.append(np.concatenate([loop_nodes, cells // width]))
        pres.append(np.concatenate([loop_nodes, columns[cells % width]]))
    weights = [data[:0]] + [rng.permutation(data[edge_class == sign]) for sign in classes]
    return _csr_from_edges(np.concatenate(posts), np.concatenate(pres), np.concatenate(weights), n)


def _gaussian_weights(support: sp.csr_matrix, rng: np.random.Generator, primary_data: np.ndarray) -> sp.csr_matrix:
    """``support`` with i.i.d. N(0, s^2) weights in CSR order, s = mean |primary weight| (float64 draws)."""
    sd = float(np.mean(np.abs(primary_data.astype(np.float64))))
    return sp.csr_matrix((rng.normal(0.0, sd, support.nnz), support.indices.copy(), support.indptr.copy()),
                         shape=support.shape)


def _weight_shuffle(csr: sp.csr_matrix, rng: np.random.Generator, labels: np.ndarray) -> sp.csr_matrix:
    """Same support; weights permuted within each presynaptic sign class (one class: all weights)."""
    _, pre, data = _edges(csr)
    shuffled = data.copy()
    for sign in _present_classes(labels):
        in_class = labels[pre] == sign
        shuffled[in_class] = rng.permutation(data[in_class])
    return sp.csr_matrix((shuffled, csr.indices.copy(), csr.indptr.copy()), shape=csr.shape)


def _swap_round(src: np.ndarray, dst: np.ndarray, codes: np.ndarray, pairs: int, n: int,
                rng: np.random.Generator) -> int:
    """One round of ``pairs`` disjoint double-edge swap proposals; applies the valid ones in place.

    Edges i = (a->b) and j = (c->d), taken from one random permutation so that no edge is in two
    proposals, become (a->d) and (c->b) (each edge keeps its presynaptic neuron, so out-degrees and
    per-neuron sign classes are untouched; in-degrees are exchanged). A proposal is rejected if
    a, b, c, d are not all distinct (that would make a self-loop or undo itself), if a new edge already
    exists before the round (``codes``: sorted codes of the current non-self edges) or if a new edge is
    also proposed by another proposal of the round. Checking against the pre-round edge set is
    conservative (an edge removed in the same round still blocks), so no multi-edge can ever form.
    Returns the number of accepted swaps.
    """
    permutation = rng.permutation(src.size)
    first, second = permutation[:pairs], permutation[pairs:2 * pairs]
    a, b, c, d = src[first], dst[first], src[second], dst[second]
    proposal = np.flatnonzero((a != c) & (b != d) & (a != d) & (c != b))
    new_first = d[proposal] * n + a[proposal]
    new_second = b[proposal] * n + c[proposal]
    values, order = _sort_with_order(np.concatenate([new_first, new_second]), n * n)
    blocked = np.empty(values.size, dtype=bool)
    blocked[order] = _in_sorted(codes, values) | _repeated(values)
    accepted = proposal[~(blocked[:proposal.size] | blocked[proposal.size:])]
    i, j = first[accepted], second[accepted]
    dst[i], dst[j] = d[accepted], b[accepted]
    return int(accepted.size)


def _degree_shuffle(csr: sp.csr_matrix, rng: np.random.Generator, labels: np.ndarray,
                    attempts_per_edge: float) -> tuple[sp.csr_matrix, dict]:
    """Directed double-edge swaps over the non-self edges (self-loops stay in place), then weights.

    Proposals are made in rounds of E_nonself // 2 disjoint pairs until ``attempts_per_edge`` x
    E_nonself attempts have been made (the last round is cut to fit); accepted swaps are counted. Then
    every edge gets a weight drawn without replacement from its presynaptic sign class (one class:
    ``rng.permutation`` of all weights, self-loops first, as in the original benchmark).
    """
    n = csr.shape[0]
    post, pre, data = _edges(csr)
    loops = post == pre
    src, dst = pre[~loops], post[~loops]     # copies (boolean indexing); CSR order = ascending codes
    target = int(round(attempts_per_edge * src.size))
    attempted = accepted = rounds = 0
    while attempted < target:
        codes = np.sort(dst * n + src)
        pairs = min(src.size // 2, target - attempted)
        accepted += _swap_round(src, dst, codes, pairs, n, rng)
        attempted += pairs
        rounds += 1
    all_post = np.concatenate([post[loops], dst])
    all_pre = np.concatenate([pre[loops], src])
    all_data = np.empty_like(data)
    for sign in _present_classes(labels):
        all_data[labels[all_pre] == sign] = rng.permutation(data[labels[pre] == sign])
    stats = {"swap_attempts": attempted, "swaps_accepted": accepted, "swap_rounds": rounds,
             "non_self_edges": int(src.size), "attempts_per_edge": float(attempts_per_edge)}
    return _csr_from_edges(all_post, all_pre, all_data, n), stats


# --------------------------------------------------------------------------------------------------
# building, storing, loading
# --------------------------------------------------------------------------------------------------

@dataclass
class ControlMatrix:
    """One control substrate for one training seed, scaled to ``rho_target`` (float32 CSR, W[post, pre])."""
    name: str
    seed: int
    rng_seed: int
    matrix: sp.csr_matrix
    spectral_before: SpectralEstimate
    spectral_after: SpectralEstimate
    scale: float
    notes: list[str]
    rho_target: float | None = None
    stats: dict = field(default_factory=dict)


def build_control(primary: sp.csr_matrix, name: str, seed: int, *, rho_target: float,
                  neuron_signs: np.ndarray | None = None, spectral_kwargs: dict | None = None,
                  swap_attempts_per_edge: float = SWAP_ATTEMPTS_PER_EDGE) -> ControlMatrix:
    """Draw control ``name`` for training ``seed`` from the scaled ``primary`` and rescale it to ``rho_target``.

    ``neuron_signs`` (int8: +1, -1, 0 unlabelled) is only used by the Dale variants (see
    :func:`dale_labels`). Deterministic: the same inputs give the same matrix bit for bit.
    """
    if name not in CONTROL_NAMES:
        hint = " (it is not a matrix: use write_no_recurrence_marker)" if name == NO_RECURRENCE else ""
        raise BPUInputError(f"unknown control {name!r}{hint}; expected one of {', '.join(CONTROL_NAMES)}")
    if swap_attempts_per_edge < 0:
        raise BPUInputError(f"swap_attempts_per_edge must be >= 0, got {swap_attempts_per_edge!r}")
    csr = canonical_csr(primary)
    spectral_kwargs = dict(spectral_kwargs or {})
    rng_seed = control_seed(name, seed)
    rng = np.random.default_rng(rng_seed)
    labels = dale_labels(csr, neuron_signs) if is_dale(name) else np.ones(csr.shape[0], dtype=np.int8)
    signed = bool(np.any(csr.data < 0))
    base_is_shuffle = control_base(name) not in GAUSSIAN_CONTROLS
    notes = []
    if is_dale(name) and not signed:
        notes.append(f"the primary is all-positive, so {name} is the same matrix as {control_base(name)} "
                     f"seed {seed} (one sign class; redundant)")
    elif signed and not is_dale(name) and base_is_shuffle:
        notes.append(f"{name} ignores presynaptic signs on this signed primary (breaks Dale's law by design; "
                     f"{name}{DALE_SUFFIX} keeps them)")
    base, stats = control_base(name), {}
    non_self_edges = csr.nnz - int(np.count_nonzero(csr.diagonal()))   # canonical: no stored zeros
    if base == "degree_shuffle" and non_self_edges < 2:
        notes.append(f"fewer than 2 non-self edges ({non_self_edges}): no swap is possible, so {name} falls back "
                     "to a weight shuffle")
        base = "weight_shuffle"
    if base == "random":
        unscaled = _random_support(csr, rng, labels)
    elif base == "random_weight_topology":
        unscaled = _gaussian_weights(csr, rng, csr.data)
    elif base == "random_sparse":
        unscaled = _gaussian_weights(canonical_csr(_random_support(csr, rng, labels)), rng, csr.data)
    elif base == "degree_shuffle":
        unscaled, stats = _degree_shuffle(csr, rng, labels, swap_attempts_per_edge)
        notes.append(f"{stats['swaps_accepted']:,} of {stats['swap_attempts']:,} double-edge swap attempts accepted "
                     f"({100.0 * stats['swaps_accepted'] / max(stats['swap_attempts'], 1):.1f} %) in "
                     f"{stats['swap_rounds']} rounds")
    else:
        unscaled = _weight_shuffle(csr, rng, labels)
    matrix, scale, before = scale_to_radius(unscaled, rho_target, what=f"control {name} seed {seed}",
                                            **spectral_kwargs)
    after = spectral_radius(matrix, **spectral_kwargs)
    return ControlMatrix(name=name, seed=int(seed), rng_seed=rng_seed, matrix=matrix, spectral_before=before,
                         spectral_after=after, scale=scale, notes=notes, rho_target=float(rho_target), stats=stats)


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True, default=json_default))


def save_control(path, control: ControlMatrix, *, primary_sha256: str, extra_meta: dict | None = None) -> None:
    """Write one control as a single npz (atomically): CSR arrays, invariant arrays and ``meta_json``."""
    csr = canonical_csr(control.matrix)
    invariants = matrix_invariants(csr)
    meta = {
        "format": FILE_FORMAT,
        "kind": _KIND_CONTROL,
        "name": control.name,
        "seed": int(control.seed),
        "rng_seed": int(control.rng_seed),
        "rho_target": control.rho_target,
        "scale": float(control.scale),
        "spectral_before": control.spectral_before.as_dict(),
        "spectral_after": control.spectral_after.as_dict(),
        "primary_sha256": primary_sha256,
        "matrix_sha256": matrix_sha256(csr),
        "invariants": scalar_invariants(invariants),
        "notes": list(control.notes),
        "stats": dict(control.stats),
        "extra": dict(extra_meta or {}),
    }
    save_npz(path, indptr=csr.indptr, indices=csr.indices, data=csr.data.astype(np.float32),
             shape=np.asarray(csr.shape, dtype=np.int64), meta_json=_meta_array(meta),
             **{key: invariants[key] for key in _INVARIANT_ARRAYS})


def write_no_recurrence_marker(path, primary, *, seed: int, primary_sha256: str, rho_target: float,
                               neuron_signs: np.ndarray | None = None) -> None:
    """The ``no_recurrence`` model trains on the primary itself, so its file holds no matrix.

    It records the primary's checksum and invariants, so the validation can tell whether the run used
    the primary that exists now (a stale marker fails).
    """
    actual = matrix_sha256(primary)
    if primary_sha256 != actual:
        raise BPUInputError(f"primary_sha256 {primary_sha256!r} does not match the primary matrix passed "
                            f"(its checksum is {actual}); the graph metadata is stale")
    invariants = matrix_invariants(primary, neuron_signs)
    meta = {
        "format": FILE_FORMAT,
        "kind": _KIND_MARKER,
        "name": NO_RECURRENCE,
        "seed": int(seed),
        "rng_seed": None,
        "rho_target": float(rho_target),
        "primary_sha256": primary_sha256,
        "invariants": scalar_invariants(invariants),
        "notes": ["no_recurrence trains on the primary matrix unchanged; the hidden state is reset to zero at "
                  "every input timestep"],
    }
    save_npz(path, meta_json=_meta_array(meta), **{key: invariants[key] for key in _INVARIANT_ARRAYS})


def _read(path) -> tuple[dict, dict]:
    path = Path(path)
    if not path.is_file():
        raise BPUInputError(f"control file {path} does not exist")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    if "meta_json" not in arrays:
        raise BPUInputError(f"{path} is not a control file: it has no meta_json entry")
    meta = json.loads(str(arrays.pop("meta_json")))
    expected = _INVARIANT_ARRAYS + (_CSR_ARRAYS if meta.get("kind") == _KIND_CONTROL else ())
    missing = [key for key in expected if key not in arrays]
    if missing:
        raise BPUInputError(f"control file {path} lacks {', '.join(missing)}")
    return meta, arrays


def load_control(path) -> tuple[sp.csr_matrix, dict, dict]:
    """(scaled float32 CSR, metadata, invariant arrays) of a stored control."""
    meta, arrays = _read(path)
    if meta.get("kind") != _KIND_CONTROL:
        raise BPUInputError(f"{path} is a {meta.get('kind')} file for {meta.get('name')}: it holds no matrix "
                            "(no_recurrence uses the primary matrix)")
    return _matrix_from_arrays(arrays), meta, {key: arrays[key] for key in _INVARIANT_ARRAYS}


def _matrix_from_arrays(arrays: dict) -> sp.csr_matrix:
    return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                         shape=tuple(int(size) for size in arrays["shape"]))


# --------------------------------------------------------------------------------------------------
# validation from the stored file
# --------------------------------------------------------------------------------------------------

def validate_control(path, primary: sp.csr_matrix, *, name: str, seed: int, rho_target: float,
                     neuron_signs: np.ndarray | None = None, primary_sha256: str | None = None,
                     spectral_kwargs: dict | None = None) -> list[Check]:
    """One :class:`Check` per property the control claims, each recomputed from the file at ``path``.

    Stored flags are never trusted: the matrix is reloaded and its invariants, radius and multiset
    recomputed; stored invariants are only compared against those recomputations. ``primary_sha256``
    is the current primary's checksum (computed from ``primary`` when not given).
    """
    label = f"{name} seed {seed}"
    primary = canonical_csr(primary)
    spectral_kwargs = dict(spectral_kwargs or {})
    current = primary_sha256 or matrix_sha256(primary)
    meta, arrays = _read(path)
    expected_rng = None if name == NO_RECURRENCE else control_seed(name, seed)
    recorded = (meta.get("name"), meta.get("seed"), meta.get("rng_seed"))
    checks = [
        check(recorded == (name, seed, expected_rng),
              f"{label}: file {Path(path).name} holds {recorded[0]} seed {recorded[1]} (rng seed {recorded[2]}; "
              f"expected {expected_rng})"),
        check(meta.get("primary_sha256") == current,
              f"{label} was built from the current primary matrix (recorded checksum "
              f"{str(meta.get('primary_sha256'))[:12]}, current {current[:12]})"),
    ]
    primary_invariants = matrix_invariants(primary)
    if name == NO_RECURRENCE:
        return checks + _marker_checks(label, meta, primary, primary_invariants, rho_target, spectral_kwargs)
    try:
        matrix = canonical_csr(_matrix_from_arrays(arrays))
    except (KeyError, ValueError, BPUInputError) as error:
        return checks + [check(False, f"{label}: stored arrays form a valid square CSR matrix ({error})")]
    invariants = matrix_invariants(matrix)
    checks.append(_stored_invariants_check(label, meta, arrays, matrix, invariants))
    checks += _count_checks(label, invariants, primary_invariants)
    checks.append(_radius_check(label, matrix, rho_target, spectral_kwargs))
    base = control_base(name)
    if base in GAUSSIAN_CONTROLS:
        checks.append(_gaussian_check(label, matrix, primary, meta.get("scale")))
    else:
        checks.append(_multiset_check(label, matrix, primary, meta.get("scale")))
    if base == "degree_shuffle":
        for kind in ("in", "out"):
            key = f"{kind}_degree"
            differ = _count_differences(invariants[key], primary_invariants[key])
            checks.append(check(differ == 0, f"{label} preserves {kind}-degree exactly ({differ} neurons differ)"))
    if base in ("weight_shuffle", "random_weight_topology"):
        same = matrix.shape == primary.shape and np.array_equal(matrix.indptr, primary.indptr) \
            and np.array_equal(matrix.indices, primary.indices)
        checks.append(check(same, f"{label} keeps the primary's support (same edges, row and column indices)"))
    if is_dale(name):
        labels = dale_labels(primary, neuron_signs)
        columns = invariants["column_sign"]
        if columns.shape == labels.shape:
            columns = np.where(columns == 0, labels, columns)     # an empty column breaks no sign rule
        violations = _count_differences(columns, labels)
        checks.append(check(violations == 0, f"{label} keeps one sign per presynaptic neuron, equal to its label "
                                             f"({violations} columns violate)"))
    return checks


def _count_differences(values: np.ndarray, expected: np.ndarray) -> int:
    """Positions where two per-neuron arrays differ (all of them when the lengths differ)."""
    if values.shape != expected.shape:
        return max(values.size, expected.size)
    return int(np.count_nonzero(values != expected))


def _count_checks(label: str, invariants: dict, primary_invariants: dict) -> list[Check]:
    lines = []
    for key, words in (("N", "matches N"), ("edge_count", "matches edge count"),
                       ("self_loop_count", "matches self-loop count")):
        got, want = invariants[key], primary_invariants[key]
        lines.append(check(got == want, f"{label} {words} ({got} vs primary {want})"))
    return lines


def _stored_invariants_check(label: str, meta: dict, stored: dict, matrix: sp.csr_matrix, invariants: dict) -> Check:
    """The invariants written beside the matrix must be those of the matrix (catches edits and corruption)."""
    recomputed = json.loads(json.dumps(scalar_invariants(invariants), default=json_default))
    agree = meta.get("invariants") == recomputed and meta.get("matrix_sha256") == matrix_sha256(matrix)
    agree = agree and all(_count_differences(stored[key], invariants[key]) == 0 for key in _INVARIANT_ARRAYS)
    return check(agree, f"{label} stored invariants (counts, degrees, column signs, checksums) agree with the "
                        "stored matrix")


def _radius_check(label: str, matrix, rho_target: float, spectral_kwargs: dict) -> Check:
    estimate = spectral_radius(matrix, **spectral_kwargs)
    return check(abs(estimate.radius - rho_target) < RADIUS_TOLERANCE,
                 f"{label} spectral radius is matched to rho_target {rho_target} ({estimate.radius:.6f} by "
                 f"{estimate.method}, tolerance {estimate.tolerance}, allowed difference {RADIUS_TOLERANCE})")


def _multiset_check(label: str, matrix, primary, scale) -> Check:
    """Sorted control weights equal sorted primary weights x stored scale (signs included)."""
    text = f"{label} preserves the primary's signed weight multiset (x scale {scale}, rtol {MULTISET_RTOL})"
    if not isinstance(scale, (int, float)) or not scale > 0 or matrix.nnz != primary.nnz:
        return check(False, text)
    got = np.sort(matrix.data.astype(np.float64))
    want = np.sort(primary.data.astype(np.float64)) * scale
    return check(np.allclose(got, want, rtol=MULTISET_RTOL, atol=0.0), text)


def _gaussian_check(label: str, matrix, primary, scale) -> Check:
    """Weights / stored scale look like i.i.d. N(0, s^2) draws with s = the primary's mean |w|: their root mean
    square is s and half of them are negative, each within six standard errors of the sample statistic."""
    text = f"{label} has fresh zero-mean Gaussian weights with sd = the primary's mean |w| (x scale {scale})"
    if not isinstance(scale, (int, float)) or not scale > 0 or matrix.nnz < 1 or primary.nnz < 1:
        return check(False, text)
    weights = matrix.data.astype(np.float64) / scale
    sd = float(np.mean(np.abs(primary.data.astype(np.float64))))
    rms_ratio = float(np.sqrt(np.mean(weights**2))) / sd
    negative = float(np.mean(weights < 0))
    n = weights.size
    ok = abs(rms_ratio - 1.0) <= 6.0 / np.sqrt(2.0 * n) + 1e-6 and abs(negative - 0.5) <= 3.0 / np.sqrt(n)
    return check(ok, f"{text}: rms / sd = {rms_ratio:.4f}, negative share {negative:.4f} over {n} weights")


def _marker_checks(label: str, meta: dict, primary, primary_invariants: dict, rho_target: float,
                   spectral_kwargs: dict) -> list[Check]:
    recorded = meta.get("invariants", {})
    lines = []
    for key, words in (("N", "matches N"), ("edge_count", "matches edge count"),
                       ("self_loop_count", "matches self-loop count"),
                       ("weight_multiset_sha256", "matches the weight multiset checksum")):
        got, want = recorded.get(key), primary_invariants[key]
        shown = (str(got)[:12], str(want)[:12]) if key.endswith("sha256") else (got, want)
        lines.append(check(got == want, f"{label} marker {words} ({shown[0]} vs primary {shown[1]})"))
    lines.append(_radius_check(label, primary, rho_target, spectral_kwargs))
    return lines
