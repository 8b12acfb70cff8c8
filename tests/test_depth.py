"""K estimation (docs/method.md#microsteps, the one definition for every graph) on graphs with known answers."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
import scipy.sparse as sp

from connectome_bpu.depth import estimate_k, median_from_histogram, pair_distance_histogram
from connectome_bpu.errors import BPUInputError, GraphError


def graph(n, edges, dtype=np.float32):
    """W[post, pre] from (pre, post) edges."""
    pre, post = (np.array(e, dtype=np.int64) for e in zip(*edges))
    return sp.csr_matrix((np.ones(len(pre), dtype=dtype), (post, pre)), shape=(n, n))


def chain(n):
    return graph(n, [(i, i + 1) for i in range(n - 1)])


def ring(n):
    return graph(n, [(i, (i + 1) % n) for i in range(n)])


def test_ring_histogram_and_median_by_hand():
    # ring 0->1->...->5->0; from 0: 1@1, 2@2, 4@4; from 3: 4@1, 1@4, 2@5.
    est = estimate_k(ring(6), np.array([0, 3]), np.array([1, 2, 4]), k_min=1)
    assert est.histogram == {1: 2, 2: 1, 4: 2, 5: 1}
    assert est.raw_median == 3.0 and est.K == 3  # sorted 1,1,2,4,4,5 -> (2 + 4) / 2
    assert (est.reachable_pairs, est.total_pairs, est.sources_used) == (6, 6, 2)
    assert est.method == "exact_all_pairs" and est.sample_seed is None
    # cutoff 4 drops the distance-5 pair: 1,1,2,4,4 -> median 2, K clipped up to k_min 3
    est = estimate_k(ring(6), np.array([0, 3]), np.array([1, 2, 4]), cutoff=4)
    assert est.histogram == {1: 2, 2: 1, 4: 2}
    assert (est.raw_median, est.K, est.reachable_pairs) == (2.0, 3, 5)


def test_orientation_is_post_pre():
    # W[1, 0] != 0 means 0 -> 1; the transposed matrix has no path from 0 to 1.
    est = estimate_k(chain(2), np.array([0]), np.array([1]), k_min=1)
    assert est.histogram == {1: 1}
    with pytest.raises(GraphError, match="no reachable sensory-to-output path"):
        estimate_k(chain(2).T.tocsr(), np.array([0]), np.array([1]))


@pytest.mark.parametrize("outputs, raw, k", [
    ([2, 3], 2.5, 2),    # banker's rounding: round(2.5) == 2
    ([3, 4], 3.5, 4),    # round(3.5) == 4
    ([5, 6], 5.5, 6),
    ([1, 2, 4], 2.0, 2),
])
def test_bankers_rounding(outputs, raw, k):
    est = estimate_k(chain(8), np.array([0]), np.array(outputs), k_min=1, k_max=8)
    assert est.raw_median == raw and est.K == k


def test_clipping_to_k_range():
    low = estimate_k(chain(3), np.array([0]), np.array([1]))
    assert (low.raw_median, low.K) == (1.0, 3)
    high = estimate_k(chain(40), np.array([0]), np.array([12, 13]), k_min=3, k_max=8)
    assert (high.raw_median, high.K) == (12.5, 8)
    assert (high.k_min, high.k_max, high.cutoff) == (3, 8, 32)


def test_unreachable_and_empty_pools_raise_graph_errors():
    with pytest.raises(GraphError, match="within cutoff 2"):
        estimate_k(chain(5), np.array([0]), np.array([4]), cutoff=2)
    with pytest.raises(GraphError, match="no reachable"):
        estimate_k(graph(4, [(0, 1), (2, 3)]), np.array([0]), np.array([3]))
    with pytest.raises(GraphError, match="sensory pool is empty"):
        estimate_k(chain(4), np.array([], dtype=np.int64), np.array([3]))
    with pytest.raises(GraphError, match="output pool is empty"):
        estimate_k(chain(4), np.array([0]), np.array([], dtype=np.int64))


def test_input_errors():
    with pytest.raises(BPUInputError, match="square"):
        estimate_k(sp.csr_matrix((3, 4)), np.array([0]), np.array([1]))
    with pytest.raises(BPUInputError, match=r"\[0, 4\)"):
        estimate_k(chain(4), np.array([0]), np.array([4]))
    with pytest.raises(BPUInputError, match="graph.k.min"):
        estimate_k(chain(4), np.array([0]), np.array([3]), k_min=5, k_max=4)


def test_explicit_zeros_are_not_edges_and_negative_weights_are():
    # chain 0 -> 1 -> 2 -> 3 plus a stored zero at W[0, 3] (would be 3 -> 0)
    explicit = sp.csr_matrix((np.array([1.0, 1.0, 1.0, 0.0]), (np.array([1, 2, 3, 0]), np.array([0, 1, 2, 3]))),
                             shape=(4, 4))
    assert explicit.nnz == 4
    with pytest.raises(GraphError, match="no reachable"):
        estimate_k(explicit, np.array([3]), np.array([0]))
    signed = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [-2, 0, 1, 0]], dtype=np.float32))
    assert estimate_k(signed, np.array([0]), np.array([3]), k_min=1).histogram == {1: 1}


def reference_histogram(w, sources, targets, cutoff):
    """Textbook queue BFS per source over pre -> post edges."""
    coo = w.tocoo()
    out_edges = [[] for _ in range(w.shape[0])]
    for post, pre, value in zip(coo.row, coo.col, coo.data):
        if value != 0:
            out_edges[pre].append(post)
    target_set = set(int(t) for t in targets)
    hist = np.zeros(cutoff + 1, dtype=np.int64)
    for s in sources:
        dist = {int(s): 0}
        queue = deque([int(s)])
        while queue:
            u = queue.popleft()
            if dist[u] == cutoff:
                continue
            for v in out_edges[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    queue.append(v)
        for t, d in dist.items():
            if t in target_set and d > 0:
                hist[d] += 1
    return hist


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bit_parallel_bfs_matches_reference_bfs(seed):
    rng = np.random.default_rng(seed)
    n = 400
    pre, post = rng.integers(0, n, size=(2, 900))  # sparse: long paths, some unreachable pairs
    w = sp.csr_matrix((rng.uniform(0.5, 2.0, size=900), (post, pre)), shape=(n, n))  # duplicates summed
    sources = np.sort(rng.choice(n, size=150, replace=False))            # > 64: several words per chunk
    targets = np.sort(np.concatenate([rng.choice(n, size=60, replace=False), sources[:5]]))
    targets = np.unique(targets)                                         # a few sources are also targets
    expected = reference_histogram(w, sources, targets, cutoff=32)
    assert expected[1:].sum() > 0 and expected[6:].sum() > 0
    np.testing.assert_array_equal(pair_distance_histogram(w, sources, targets, cutoff=32), expected)
    # a tiny gather budget forces one 64-source chunk at a time: same answer
    np.testing.assert_array_equal(
        pair_distance_histogram(w, sources, targets, cutoff=32, gather_budget_bytes=1), expected)
    np.testing.assert_array_equal(
        pair_distance_histogram(w, sources, targets, cutoff=5), expected[:6])


def _random_pools(seed, n=600, edges=2400, n_sensory=90, n_output=70):
    rng = np.random.default_rng(seed)
    pre, post = rng.integers(0, n, size=(2, edges))
    w = sp.csr_matrix((np.ones(edges), (post, pre)), shape=(n, n))
    perm = rng.permutation(n)
    return w, np.sort(perm[:n_sensory]), np.sort(perm[n_sensory:n_sensory + n_output])


def test_sampled_estimator_equals_exact_when_all_sources_fit():
    w, sensory, output = _random_pools(3)
    exact = estimate_k(w, sensory, output)
    for sample_sources in (len(sensory), len(sensory) + 50):
        same = estimate_k(w, sensory, output, exact_max_neurons=100, sample_sources=sample_sources)
        assert same == exact


def test_sampled_estimator_measures_the_same_pair_quantity_on_a_seeded_sample():
    w, sensory, output = _random_pools(4)
    est = estimate_k(w, sensory, output, exact_max_neurons=100, sample_sources=20, sample_seed=5)
    assert est.method == "sampled_sources_all_pairs" and est.sample_seed == 5
    assert (est.sources_used, est.sensory_count, est.output_count, est.total_pairs) == (20, 90, 70, 20 * 70)
    chosen = np.sort(np.random.default_rng(5).choice(sensory, size=20, replace=False))
    hist = pair_distance_histogram(w, chosen, output, cutoff=32)
    assert est.histogram == {d: int(c) for d, c in enumerate(hist) if c}
    assert est.raw_median == float(np.median(np.repeat(np.arange(33), hist)))
    assert estimate_k(w, sensory, output, exact_max_neurons=100, sample_sources=20, sample_seed=5) == est
    # below exact_max_neurons every source is used, whatever sample_sources says
    assert estimate_k(w, sensory, output, sample_sources=20).sources_used == 90


def test_median_from_histogram_matches_numpy():
    rng = np.random.default_rng(11)
    for _ in range(200):
        hist = rng.integers(0, 4, size=rng.integers(2, 10))
        hist[0] = 0
        if hist.sum() == 0:
            continue
        assert median_from_histogram(hist) == float(np.median(np.repeat(np.arange(len(hist)), hist)))
    with pytest.raises(GraphError):
        median_from_histogram(np.zeros(4, dtype=np.int64))


def test_published_cx_histogram_gives_k3():
    # the original's published CX histogram (docs/method.md#published-numbers): 419,177 reachable pairs,
    # median 2 -> K = clip(2, 3, 8) = 3
    hist = np.array([0, 45897, 292505, 78414, 2161, 200])
    assert hist.sum() == 419177
    assert median_from_histogram(hist) == 2.0


def test_as_dict_is_json_ready():
    est = estimate_k(ring(6), np.array([0, 3]), np.array([1, 2, 4]), k_min=1)
    record = json.loads(json.dumps(est.as_dict()))
    assert record["histogram"] == {"1": 2, "2": 1, "4": 2, "5": 1}
    assert record["K"] == 3 and record["raw_median"] == 3.0 and record["sample_seed"] is None
    assert set(record) == {"K", "raw_median", "method", "sources_used", "sensory_count", "output_count",
                           "reachable_pairs", "total_pairs", "histogram", "k_min", "k_max", "cutoff", "sample_seed"}
