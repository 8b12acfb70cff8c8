"""The recurrent operator must compute exactly W @ H (and its gradients) whatever runtime runs it."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from connectome_bpu.errors import BPUInputError
from connectome_bpu.runtime import (
    DENSE_MIN_DENSITY,
    RecurrentOperator,
    build_operator,
    choose_runtime,
)

CPU = torch.device("cpu")
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def random_graph(n=200, density=0.05, seed=0, signed=True):
    rng = np.random.default_rng(seed)
    W = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    if signed:
        W.data *= rng.choice([-1.0, 1.0], size=W.nnz).astype(np.float32)
    W.data /= np.float32(np.sqrt(n * density))  # keeps products O(1)
    return W


def dense_of(W):
    return torch.from_numpy(W.toarray())


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("runtime", ["sparse", "dense"])
def test_frozen_forward_and_state_gradient_match_dense_reference(device, runtime):
    W = random_graph()
    op = build_operator(W, runtime=runtime, device=device)
    assert op.runtime == runtime and op.train_mode == "frozen"
    H = torch.randn(200, 7, dtype=torch.float32, device=device, requires_grad=True)
    G = torch.randn(200, 7, device=device)
    out = op(H)
    out.backward(G)
    Wd = dense_of(W).to(device)
    H_ref = H.detach().clone().requires_grad_(True)
    (Wd @ H_ref).backward(G)
    assert out.device.type == device.type
    torch.testing.assert_close(out, Wd @ H.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(H.grad, H_ref.grad, atol=1e-5, rtol=1e-5)


def test_frozen_core_has_no_parameters_and_no_checkpointed_state():
    W = random_graph()
    for runtime in ("sparse", "dense"):
        op = build_operator(W, runtime=runtime, device=CPU)
        assert list(op.parameters()) == []
        assert op.trainable() is None and op.trainable_count() == 0
        assert op.state_dict() == {}
        assert all(not b.requires_grad for b in op.buffers())
        assert op.nnz_or_nonzero() == W.nnz


def test_step_fn_equals_forward_and_is_reusable_across_microsteps():
    W = random_graph()
    op = build_operator(W, runtime="sparse", device=CPU)
    step = op.step_fn()
    H = torch.randn(200, 3)
    torch.testing.assert_close(step(step(H)), op(op(H)))


def test_observed_value_gradient_equals_autograd_of_explicit_dense_computation():
    W = random_graph(n=120, density=0.08, seed=1)
    op = build_operator(W, train_mode="observed", device=CPU)
    assert op.runtime == "sparse" and op.trainable_count() == W.nnz
    coo = W.tocoo()  # canonical CSR -> COO keeps CSR value order
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    H = torch.randn(120, 5, requires_grad=True)
    G = torch.randn(120, 5)
    step = op.step_fn()
    (step(torch.relu(step(H))) * G).sum().backward()

    values = torch.from_numpy(W.data.copy()).requires_grad_(True)
    H_ref = H.detach().clone().requires_grad_(True)
    Wd = torch.zeros(120, 120).index_put((rows, cols), values)
    ((Wd @ torch.relu(Wd @ H_ref)) * G).sum().backward()
    torch.testing.assert_close(op.W_rec_values.grad, values.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(H.grad, H_ref.grad, atol=1e-5, rtol=1e-5)


def test_observed_support_is_preserved_after_an_optimizer_step():
    W = random_graph(n=80, density=0.1, seed=2)
    op = build_operator(W, train_mode="observed", device=CPU)
    crow, col = op.crow.clone(), op.col.clone()
    before = op.W_rec_values.detach().clone()
    opt = torch.optim.Adam(op.parameters(), lr=0.1)
    H = torch.randn(80, 4)
    (op(H) ** 2).sum().backward()
    opt.step()
    assert not torch.equal(op.W_rec_values.detach(), before)
    assert torch.equal(op.crow, crow) and torch.equal(op.col, col)
    with torch.no_grad():
        now = op(torch.eye(80))  # the matrix itself, reconstructed through the operator
    outside = torch.from_numpy(W.toarray() == 0)  # sp.random stores no explicit zeros
    assert torch.count_nonzero(now[outside]) == 0
    # The transposed values used by the backward pass follow the updated values.
    G = torch.randn(80, 4)
    Hg = H.clone().requires_grad_(True)
    op(Hg).backward(G)
    torch.testing.assert_close(Hg.grad, now.t() @ G, atol=1e-5, rtol=1e-5)


def test_dense_training_mode_trains_every_entry_and_is_refused_above_the_limit():
    W = random_graph(n=50, density=0.1)
    op = build_operator(W, train_mode="dense", runtime="sparse", device=CPU, dense_max_neurons=50)
    assert op.runtime == "dense" and op.trainable_count() == 50 * 50
    H = torch.randn(50, 2)
    op(H).sum().backward()
    assert op.W_rec.grad is not None and torch.count_nonzero(op.W_rec.grad) > W.nnz
    with pytest.raises(BPUInputError, match="dense_max_neurons"):
        build_operator(W, train_mode="dense", device=CPU, dense_max_neurons=49)
    with pytest.raises(BPUInputError, match="dense_max_neurons"):
        build_operator(W, runtime="dense", device=CPU, dense_max_neurons=49)


def test_auto_rule_is_deterministic_and_follows_the_documented_thresholds():
    cuda = torch.device("cuda")  # constructing a device object needs no GPU
    cases = [(7349, 511930), (139255, 15_100_000), (128, 8000), (512, 60000), (100, 10), (2000, 3_000_000)]
    for n, nnz in cases:
        for device in (CPU, cuda):
            first = choose_runtime(n, nnz, device, "auto")
            assert all(choose_runtime(n, nnz, device, "auto") == first for _ in range(3))
            assert first == ("dense" if nnz / n**2 >= DENSE_MIN_DENSITY[device.type] else "sparse")
    assert choose_runtime(7349, 511930, CPU, "auto") == "sparse"  # hemibrain CX
    assert choose_runtime(139255, 15_100_000, CPU, "auto") == "sparse"  # FlyWire whole brain
    assert choose_runtime(7349, 511930, cuda, "auto") == "sparse"
    threshold_nnz = int(np.ceil(DENSE_MIN_DENSITY["cpu"] * 1000 * 1000))
    assert choose_runtime(1000, threshold_nnz, CPU, "auto") == "dense"
    assert choose_runtime(1000, threshold_nnz - 1, CPU, "auto") == "sparse"
    assert choose_runtime(7349, 511930, CPU, "dense") == "dense"
    assert choose_runtime(10, 100, CPU, "sparse") == "sparse"
    with pytest.raises(BPUInputError, match="training.runtime"):
        choose_runtime(10, 10, CPU, "fastest")


def test_auto_falls_back_to_sparse_where_dense_would_be_refused():
    W = random_graph(n=60, density=0.5)
    assert build_operator(W, device=CPU, dense_max_neurons=100).runtime == "dense"
    assert build_operator(W, device=CPU, dense_max_neurons=59).runtime == "sparse"


def test_train_mode_overrides_the_requested_runtime():
    W = random_graph(n=60)
    assert build_operator(W, train_mode="observed", runtime="dense", device=CPU).runtime == "sparse"
    assert build_operator(W, train_mode="dense", runtime="sparse", device=CPU).runtime == "dense"
    with pytest.raises(BPUInputError, match="train_recurrent"):
        build_operator(W, train_mode="partial", device=CPU)
    with pytest.raises(BPUInputError):
        RecurrentOperator(W, train_mode="observed", runtime="dense", device=CPU)


def test_non_canonical_input_is_normalised_and_invalid_input_refused():
    rows = np.array([0, 0, 1, 2, 2])
    cols = np.array([1, 1, 0, 2, 0])
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # float64 with a duplicate (0, 1)
    W = sp.coo_matrix((vals, (rows, cols)), shape=(3, 3))
    op = build_operator(W, runtime="sparse", device=CPU)
    assert op.nnz == 4
    torch.testing.assert_close(op(torch.eye(3)), torch.tensor(W.toarray(), dtype=torch.float32))
    with pytest.raises(BPUInputError, match="square"):
        build_operator(sp.csr_matrix((3, 4), dtype=np.float32), device=CPU)
    with pytest.raises(BPUInputError, match="scipy.sparse"):
        build_operator(np.eye(3, dtype=np.float32), device=CPU)
    bad = sp.csr_matrix(np.array([[np.nan, 1.0], [0.0, 1.0]], dtype=np.float32))
    with pytest.raises(BPUInputError, match="NaN"):
        build_operator(bad, device=CPU)
    with pytest.raises(BPUInputError, match="shape"):
        op(torch.zeros(4, 2))


def test_operator_moves_with_the_module_and_keeps_the_device_it_was_built_on():
    W = random_graph(n=40)
    for train_mode in ("frozen", "observed", "dense"):
        op = build_operator(W, train_mode=train_mode, device=CPU)
        assert all(t.device == CPU for t in list(op.buffers()) + list(op.parameters()))
        moved = op.to(CPU)
        assert moved(torch.ones(40, 1)).device == CPU
