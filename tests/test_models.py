"""The BPU must implement docs/method.md#bpu exactly, with the trainable surface of each recurrent mode."""

import inspect

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import connectome_bpu.models as models_module
import connectome_bpu.runtime as runtime_module
from connectome_bpu.errors import BPUInputError
from connectome_bpu.model_names import BPU_MODELS
from connectome_bpu.models import (
    BPU,
    GRUModel,
    build_model,
    expected_bpu_trainable_count,
    gru_parameter_count,
    matched_gru_hidden,
    reference_gru_hidden,
    trainable_parameter_count,
)

CPU = torch.device("cpu")
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def random_graph(n, density, seed):
    rng = np.random.default_rng(seed)
    W = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    W.data *= rng.choice([-1.0, 1.0], size=W.nnz, p=[0.3, 0.7]).astype(np.float32)
    W.data *= np.float32(0.9 / np.sqrt(n * density))
    return W


def numpy_bpu(W, S, O, W_in, b_in, W_out, b_out, u, K, reset):
    """The BPU equations (docs/method.md#bpu) written out literally, one sample and one neuron vector at a time."""
    W = W.toarray().astype(np.float64)
    B, T, _ = u.shape
    y = np.zeros((B, T, W_out.shape[0]))
    for b in range(B):
        h = np.zeros(W.shape[0])
        for t in range(T):
            if reset:
                h = np.zeros(W.shape[0])
            e = W_in @ u[b, t] + b_in
            drive = np.zeros(W.shape[0])
            drive[S] = e
            h = np.maximum(W @ h + drive, 0.0)  # microstep 1: injection on sensory neurons
            for _ in range(K - 1):
                h = np.maximum(W @ h, 0.0)  # microsteps 2..K: no injection
            y[b, t] = W_out @ h[O] + b_out
    return y


def adapters(model):
    return [p.detach().double().cpu().numpy() for p in (model.W_in, model.b_in, model.W_out, model.b_out)]


@pytest.mark.parametrize("reset", [False, True])
@pytest.mark.parametrize("runtime", ["sparse", "dense"])
@pytest.mark.parametrize("K", [1, 3])
def test_bpu_matches_a_hand_written_numpy_implementation(reset, runtime, K):
    W = random_graph(12, 0.4, seed=3)
    W.data = np.abs(W.data) * 1.5  # strong positive recurrence so that activity survives K steps
    S, O = np.array([0, 3, 7]), np.array([2, 7, 9, 11])  # neuron 7 is both sensory and output
    model = BPU(W, S, O, K=K, input_dim=2, output_dim=3, reset_each_step=reset, runtime=runtime,
                device=CPU)
    with torch.no_grad():
        model.b_in.normal_()
        model.b_out.normal_()
    u = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))
    expected = numpy_bpu(W, S, O, *adapters(model), u.double().numpy(), K, reset)
    got = model(u).detach().double().numpy()
    assert got.shape == (2, 5, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert np.abs(expected).max() > 0.1  # the comparison is not between two all-bias outputs


def test_injection_only_at_first_microstep_only_on_sensory_and_readout_only_from_output():
    n = 6
    zero = sp.csr_matrix((n, n), dtype=np.float32)
    # W = 0: after microstep 1 the state is ReLU(drive); after microstep 2 it is 0.
    m1 = BPU(zero, [0, 1], [1, 4], K=1, input_dim=1, output_dim=1, device=CPU)
    m2 = BPU(zero, [0, 1], [1, 4], K=2, input_dim=1, output_dim=1, device=CPU)
    with torch.no_grad():
        for m in (m1, m2):
            m.W_in.fill_(1.0)
            m.W_out.copy_(torch.tensor([[10.0, 100.0]]))
    u = torch.full((1, 3, 1), 2.0)
    # K=1: output neuron 1 is sensory (carries 2.0), output neuron 4 is not (0).
    assert torch.allclose(m1(u), torch.full((1, 3, 1), 20.0))
    # K=2: a second injection would keep neuron 1 at 2.0; the spec injects only once.
    assert torch.allclose(m2(u), torch.zeros(1, 3, 1))
    # Chain 0 -> 1 -> 2 -> 3, inject at 0, read 3: microstep 1 puts the input on neuron 0 and each
    # further microstep moves it one hop, so with K=4 it is read out in the same timestep.
    chain = sp.csr_matrix((np.ones(3, np.float32), ([1, 2, 3], [0, 1, 2])), shape=(4, 4))
    m3 = BPU(chain, [0], [3], K=4, input_dim=1, output_dim=1, device=CPU)
    nr = BPU(chain, [0], [3], K=2, input_dim=1, output_dim=1, reset_each_step=True, device=CPU)
    with torch.no_grad():
        for m in (m3, nr):
            m.W_in.fill_(1.0)
            m.W_out.fill_(1.0)
    pulse = torch.tensor([[[1.0], [0.0], [0.0]]])
    assert torch.allclose(m3(pulse)[0, :, 0], torch.tensor([1.0, 0.0, 0.0]))
    # With memory and K=2 the pulse reaches neuron 3 during timestep 2; no_recurrence forgets it.
    m_mem = BPU(chain, [0], [3], K=2, input_dim=1, output_dim=1, device=CPU)
    with torch.no_grad():
        m_mem.W_in.fill_(1.0)
        m_mem.W_out.fill_(1.0)
    assert torch.allclose(m_mem(pulse)[0, :, 0], torch.tensor([0.0, 1.0, 0.0]))
    assert torch.allclose(nr(pulse)[0, :, 0], torch.zeros(3))


def test_sparse_and_dense_runtimes_agree_on_outputs_and_adapter_gradients():
    W = random_graph(300, 0.03, seed=5)
    S, O = np.arange(0, 40), np.arange(250, 290)
    u = torch.randn(4, 12, 2, generator=torch.Generator().manual_seed(1))
    target = torch.randn(4, 12, 5, generator=torch.Generator().manual_seed(2))
    results = {}
    for runtime in ("sparse", "dense"):
        model = build_model("cx_bpu", W=W, sensory_idx=S, output_idx=O, K=3, input_dim=2,
                            output_dim=5, seed=7, train_mode="frozen", runtime=runtime, device=CPU,
                            dense_max_neurons=1000)
        assert model.runtime == runtime
        y = model(u)
        torch.nn.functional.mse_loss(y, target).backward()
        results[runtime] = [y.detach()] + [p.grad for p in model.parameters()]
    for a, b in zip(results["sparse"], results["dense"]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_observed_mode_gradients_match_dense_training_on_the_support():
    W = random_graph(100, 0.05, seed=6)
    S, O = np.arange(10), np.arange(90, 100)
    u = torch.randn(3, 6, 2, generator=torch.Generator().manual_seed(3))
    grads = {}
    for mode in ("observed", "dense"):
        model = build_model("cx_bpu", W=W, sensory_idx=S, output_idx=O, K=2, input_dim=2,
                            output_dim=4, seed=0, train_mode=mode, runtime="auto", device=CPU,
                            dense_max_neurons=1000)
        (model(u) ** 2).mean().backward()
        grads[mode] = [p.grad for p in model.parameters()]
    rows, cols = W.nonzero()  # canonical CSR order
    torch.testing.assert_close(grads["observed"][0], grads["dense"][0][rows, cols], atol=1e-6, rtol=1e-5)
    for a, b in zip(grads["observed"][1:], grads["dense"][1:]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_trainable_surface_and_counts_follow_sections_8_1_and_8_2():
    assert expected_bpu_trainable_count(741, 591, 2, 35, train_mode="frozen", nnz=511930, n=7349) == 22943
    assert expected_bpu_trainable_count(741, 591, 2, 35, train_mode="observed", nnz=511930, n=7349) == 534873
    assert expected_bpu_trainable_count(6963, 6963, 2, 35, train_mode="frozen", nnz=0, n=139255) == 264629
    with pytest.raises(BPUInputError):
        expected_bpu_trainable_count(1, 1, 1, 1, train_mode="bogus", nnz=0, n=1)

    n = 1400
    W = random_graph(n, 0.002, seed=8)
    S, O = np.arange(741), np.arange(741, 741 + 591)
    names = {"frozen": ["W_in", "b_in", "W_out", "b_out"],
             "observed": ["W_rec_values", "W_in", "b_in", "W_out", "b_out"],
             "dense": ["W_rec", "W_in", "b_in", "W_out", "b_out"]}
    for mode, expected_names in names.items():
        model = build_model("cx_bpu", W=W, sensory_idx=S, output_idx=O, K=3, input_dim=2,
                            output_dim=35, seed=0, train_mode=mode, runtime="auto", device=CPU,
                            dense_max_neurons=2000)
        assert [name for name, _ in model.named_parameters()] == expected_names
        count = trainable_parameter_count(model)
        assert count == expected_bpu_trainable_count(741, 591, 2, 35, train_mode=mode, nnz=W.nnz, n=n)
        assert model.recurrent.trainable_count() == count - 22943
    frozen = build_model("cx_bpu", W=W, sensory_idx=S, output_idx=O, K=3, input_dim=2, output_dim=35,
                         seed=0, train_mode="frozen", runtime="auto", device=CPU, dense_max_neurons=2000)
    assert trainable_parameter_count(frozen) == 22943
    assert [tuple(p.shape) for p in frozen.parameters()] == [(741, 2), (741,), (35, 591), (35,)]


def test_gradients_flow_only_to_trainable_tensors():
    W = random_graph(80, 0.05, seed=9)
    u = torch.randn(2, 4, 2)
    for mode in ("frozen", "observed", "dense"):
        model = build_model("cx_bpu", W=W, sensory_idx=np.arange(8), output_idx=np.arange(70, 80),
                            K=3, input_dim=2, output_dim=3, seed=0, train_mode=mode,
                            runtime="auto", device=CPU, dense_max_neurons=100)
        (model(u) ** 2).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        assert all(not b.requires_grad and b.grad is None for b in model.buffers())
        assert trainable_parameter_count(model) == sum(p.numel() for p in model.parameters())


def test_observed_mode_state_dict_round_trips_with_the_tied_recurrent_values():
    W = random_graph(50, 0.1, seed=10)
    kwargs = dict(W=W, sensory_idx=np.arange(5), output_idx=np.arange(40, 50), K=2, input_dim=2,
                  output_dim=2, train_mode="observed", runtime="auto", device=CPU, dense_max_neurons=100)
    a = build_model("cx_bpu", seed=0, **kwargs)
    with torch.no_grad():
        a.W_rec_values.mul_(0.5)
    b = build_model("cx_bpu", seed=1, **kwargs)
    b.load_state_dict(a.state_dict())
    assert b.W_rec_values is b.recurrent.W_rec_values  # still one tensor, used by the operator
    u = torch.randn(2, 3, 2)
    torch.testing.assert_close(a(u), b(u))


def test_every_bpu_variant_gets_identical_adapters_for_the_same_seed():
    W = random_graph(120, 0.05, seed=11)
    W_other = random_graph(120, 0.08, seed=12)
    S, O = np.arange(12), np.arange(100, 115)

    def make(name, matrix, seed, mode="frozen", runtime="auto"):
        return build_model(name, W=matrix, sensory_idx=S, output_idx=O, K=3, input_dim=2,
                           output_dim=4, seed=seed, train_mode=mode, runtime=runtime, device=CPU,
                           dense_max_neurons=1000)

    reference = make("cx_bpu", W, 4)
    variants = [make(name, W_other, 4) for name in BPU_MODELS] + [
        make("no_recurrence", W, 4), make("cx_bpu", W, 4, "observed"), make("cx_bpu", W, 4, "dense"),
        make("cx_bpu", W, 4, runtime="dense"),
    ]
    for model in variants:
        for a, b in zip(adapters(reference), adapters(model)):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(adapters(make("cx_bpu", W, 5))[0], adapters(reference)[0])
    assert np.all(adapters(reference)[1] == 0) and np.all(adapters(reference)[3] == 0)
    assert np.abs(adapters(reference)[0]).max() <= 1 / np.sqrt(2)
    assert np.abs(adapters(reference)[2]).max() <= 1 / np.sqrt(len(O))
    u = torch.randn(2, 3, 2)
    torch.testing.assert_close(reference(u), make("cx_bpu", W, 4)(u), rtol=0, atol=0)
    assert make("no_recurrence", W, 4).reset_each_step and not reference.reset_each_step


def test_one_to_one_input_init_starts_from_the_identity_and_checks_sizes():
    W = random_graph(120, 0.05, seed=11)
    S, O = np.arange(12), np.arange(100, 115)

    def make(name, input_dim, input_init):
        return build_model(name, W=W, sensory_idx=S, output_idx=O, K=3, input_dim=input_dim, output_dim=2, seed=3,
                           train_mode="frozen", runtime="auto", device=CPU, dense_max_neurons=1000,
                           input_init=input_init)

    for name in ("connectome_bpu", "random_sparse", "no_recurrence"):
        model = make(name, 12, "one_to_one")
        np.testing.assert_array_equal(model.W_in.detach().numpy(), np.eye(12))
        assert model.W_in.requires_grad
        # the output adapter is drawn as under the uniform init, so only W_in differs between the two
        np.testing.assert_array_equal(model.W_out.detach().numpy(), make(name, 12, "uniform").W_out.detach().numpy())
    with pytest.raises(BPUInputError, match="one_to_one needs as many sensory neurons as input channels; the "
                                            "sensory pool has 12 neurons and the task has 5 inputs"):
        make("connectome_bpu", 5, "one_to_one")
    with pytest.raises(BPUInputError, match="training.input_init is 'eye'"):
        make("connectome_bpu", 12, "eye")


def test_gru_sizes_and_parameter_matching():
    assert reference_gru_hidden(7349) == 256
    assert reference_gru_hidden(100) == 100
    assert reference_gru_hidden(7349, max_hidden=64) == 64
    assert gru_parameter_count(256, 2, 35) == 208675  # published polar-bump GRU
    assert gru_parameter_count(256, 2, 4) == 200708  # published cartesian GRU
    for hidden, d_in, d_out in ((256, 2, 35), (80, 2, 35), (7, 3, 1)):
        assert trainable_parameter_count(GRUModel(d_in, hidden, d_out)) == gru_parameter_count(hidden, d_in, d_out)
    for target, d_in, d_out in ((22943, 2, 35), (4591, 2, 4), (264629, 2, 35), (1, 2, 35), (534873, 2, 35)):
        hidden = matched_gru_hidden(target, d_in, d_out)
        best = min(abs(gru_parameter_count(h, d_in, d_out) - target) for h in range(1, 2000))
        assert abs(gru_parameter_count(hidden, d_in, d_out) - target) == best
    assert matched_gru_hidden(22943, 2, 35) == 80


def test_build_model_gru_variants_and_refusals():
    W = random_graph(300, 0.02, seed=13)
    S, O = np.arange(30), np.arange(250, 270)
    kwargs = dict(W=W, sensory_idx=S, output_idx=O, K=3, input_dim=2, output_dim=35, seed=0,
                  train_mode="observed", runtime="auto", device=CPU, dense_max_neurons=1000)
    gru = build_model("gru", **kwargs)
    assert isinstance(gru, GRUModel) and gru.gru.hidden_size == 256
    assert build_model("gru", gru_max_hidden=32, **kwargs).gru.hidden_size == 32
    matched = build_model("gru_matched", **kwargs)
    target = expected_bpu_trainable_count(30, 20, 2, 35, train_mode="frozen", nnz=W.nnz, n=300)
    assert matched.gru.hidden_size == matched_gru_hidden(target, 2, 35)
    assert trainable_parameter_count(matched) == gru_parameter_count(matched.gru.hidden_size, 2, 35)
    y = matched(torch.randn(3, 5, 2))
    assert y.shape == (3, 5, 35)
    again = build_model("gru_matched", **kwargs)
    for p, q in zip(matched.parameters(), again.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(BPUInputError, match="metrics"):
        build_model("mean_predictor", **kwargs)
    with pytest.raises(BPUInputError, match="unknown"):
        build_model("lstm", **kwargs)


def test_invalid_inputs_are_refused_with_the_reason():
    W = random_graph(30, 0.1, seed=14)
    with pytest.raises(BPUInputError, match="duplicate"):
        BPU(W, [1, 1], [2], K=3, input_dim=1, output_dim=1, device=CPU)
    with pytest.raises(BPUInputError, match="sensory_idx"):
        BPU(W, [30], [2], K=3, input_dim=1, output_dim=1, device=CPU)
    with pytest.raises(BPUInputError, match="K"):
        BPU(W, [0], [2], K=0, input_dim=1, output_dim=1, device=CPU)
    with pytest.raises(BPUInputError, match="dense_max_neurons"):
        BPU(W, [0], [2], K=3, input_dim=1, output_dim=1, train_mode="dense", device=CPU,
            dense_max_neurons=10)
    model = BPU(W, [0], [2], K=3, input_dim=2, output_dim=1, device=CPU)
    with pytest.raises(BPUInputError, match="input"):
        model(torch.zeros(2, 3, 1))


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_models_run_on_the_requested_device(device):
    W = random_graph(60, 0.1, seed=15)
    for name in ("cx_bpu", "no_recurrence", "gru", "gru_matched"):
        for mode in ("frozen", "observed", "dense"):
            model = build_model(name, W=W, sensory_idx=np.arange(6), output_idx=np.arange(50, 60),
                                K=3, input_dim=2, output_dim=3, seed=0, train_mode=mode,
                                runtime="auto", device=device, dense_max_neurons=100)
            tensors = list(model.parameters()) + list(model.buffers())
            assert all(t.device.type == device.type for t in tensors)
            y = model(torch.randn(2, 4, 2, device=device))
            assert y.device.type == device.type and y.shape == (2, 4, 3)


def test_model_code_does_not_hard_code_the_cpu():
    for module in (models_module, runtime_module):
        source = inspect.getsource(module)
        for pattern in ('device="cpu"', "device='cpu'", 'torch.device("cpu")', ".cpu()", ".numpy()", ".item()"):
            occurrences = source.count(pattern)
            # runtime.nnz_or_nonzero reports a count (one .item(), outside the training loop).
            allowed = 1 if (module is runtime_module and pattern == ".item()") else 0
            assert occurrences == allowed, f"{module.__name__} contains {pattern}"
