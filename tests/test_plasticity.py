"""Within-episode depression of the synapses onto output neurons (connectome_bpu.plasticity, docs/plasticity.md)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import yaml

from conftest import REPO
from connectome_bpu.arms import build_arm
from connectome_bpu.associative import AssociativeSpec
from connectome_bpu.errors import BPUInputError
from connectome_bpu.experiments import training_variant
from connectome_bpu.models import (
    BPU,
    build_model,
    expected_bpu_trainable_count,
    matched_gru_hidden,
    trainable_parameter_count,
)
from connectome_bpu.plasticity_settings import plastic_parameter_count

CPU = torch.device("cpu")
ON = {"rule": "modulated_depression", "retention": 0.8}


def small_core(seed: int = 3, n: int = 10) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """A random unsigned core whose outputs (7, 8, 9) receive edges from most other neurons."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n, n)) < 0.5) * rng.uniform(0.1, 0.5, (n, n))
    np.fill_diagonal(dense, 0.0)
    return sp.csr_matrix(dense.astype(np.float32)), np.array([0, 1, 2]), np.array([7, 8, 9])


def literal_plastic_bpu(model: BPU, W: sp.csr_matrix, S, O, u: np.ndarray, retention: float) -> np.ndarray:
    """The equations of docs/plasticity.md written out one sequence and one synapse at a time."""
    W = W.toarray().astype(np.float64)
    W_in, b_in, W_out, b_out, W_mod, b_mod = (p.detach().double().numpy() for p in (
        model.W_in, model.b_in, model.W_out, model.b_out, model.plastic.W_mod, model.plastic.b_mod))
    synapses = [(j, k) for j in O for k in range(W.shape[0]) if W[j, k] != 0]
    B, T, _ = u.shape
    y = np.zeros((B, T, W_out.shape[0]))
    for b in range(B):
        h = np.zeros(W.shape[0])
        A = {s: 0.0 for s in synapses}
        for t in range(T):
            effective = W.copy()
            for (j, k), a in A.items():
                effective[j, k] = W[j, k] * np.exp(-a)
            sent = np.zeros(W.shape[0])
            drive = np.zeros(W.shape[0])
            drive[S] = W_in @ u[b, t] + b_in
            for microstep in range(model.K):
                sent += h
                h = np.maximum(effective @ h + (drive if microstep == 0 else 0.0), 0.0)
            y[b, t] = W_out @ h[O] + b_out
            teaching = np.maximum(W_mod @ u[b, t] + b_mod, 0.0)
            mean = np.mean([sent[k] for _, k in synapses])
            for j, k in synapses:
                mark = max(sent[k] / (mean + 1e-12) - 1.0, 0.0)
                A[(j, k)] = retention * A[(j, k)] + teaching[list(O).index(j)] * mark
    return y


def plastic_model(W, S, O, *, K=3, runtime="sparse", train_mode="frozen", reset=False, d_out=2):
    torch.manual_seed(0)
    model = BPU(W, S, O, K=K, input_dim=3, output_dim=d_out, runtime=runtime, train_mode=train_mode,
                reset_each_step=reset, device=CPU, plasticity=ON)
    with torch.no_grad():
        model.plastic.W_mod.mul_(8.0)     # strong teaching, so depression visibly changes the outputs
        model.plastic.b_mod.fill_(0.5)
    return model


@pytest.mark.parametrize("runtime,train_mode", [("sparse", "frozen"), ("dense", "frozen"), ("sparse", "observed"),
                                                ("dense", "dense")])
def test_outputs_match_the_equations_written_out_synapse_by_synapse(runtime, train_mode):
    W, S, O = small_core()
    model = plastic_model(W, S, O, runtime=runtime, train_mode=train_mode)
    u = torch.rand(2, 6, 3, generator=torch.Generator().manual_seed(1))
    expected = literal_plastic_bpu(model, W, S, O, u.double().numpy(), ON["retention"])
    got = model(u).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    without = literal_plastic_bpu(model, W, S, O, u.double().numpy(), retention=0.0)   # the comparison has teeth
    assert np.abs(expected - without).max() > 1e-3


def test_depression_can_silence_a_synapse_but_never_strengthens_it():
    # sensory 0 -> output 1: the only plastic synapse; teaching at step 0, the same input again at step 1
    W = sp.csr_matrix(np.array([[0.0, 0.0], [0.9, 0.0]], dtype=np.float32))
    torch.manual_seed(0)
    model = BPU(W, [0], [1], K=2, input_dim=2, output_dim=1, device=CPU, plasticity={**ON, "retention": 1.0})
    with torch.no_grad():
        model.W_in.copy_(torch.tensor([[1.0, 0.0]]))
        model.W_out.fill_(1.0)
        model.plastic.W_mod.copy_(torch.tensor([[0.0, 1000.0]]))
    odour_alone = torch.tensor([[[1.0, 0.0]]])
    taught = torch.tensor([[[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])
    # one presynaptic neuron only: its activity equals the mean, so it never marks its synapse
    assert torch.allclose(model(taught)[0, 1:], model(odour_alone.repeat(1, 3, 1))[0, 1:])
    # two presynaptic neurons, one above the mean: its synapse is silenced after teaching, the other kept
    W2 = sp.csr_matrix(np.array([[0, 0, 0], [0, 0, 0], [0.9, 0.3, 0]], dtype=np.float32))
    torch.manual_seed(0)
    model2 = BPU(W2, [0, 1], [2], K=2, input_dim=2, output_dim=1, device=CPU, plasticity={**ON, "retention": 1.0})
    with torch.no_grad():
        model2.W_in.copy_(torch.tensor([[1.0, 0.0], [0.2, 0.0]]))
        model2.W_out.fill_(1.0)
        model2.plastic.W_mod.copy_(torch.tensor([[0.0, 1000.0]]))
    before, after = model2(taught)[0, 0, 0].item(), model2(taught)[0, 1, 0].item()
    assert before == pytest.approx(0.9 * 1.0 + 0.3 * 0.2, rel=1e-5)
    assert after == pytest.approx(0.3 * 0.2, rel=1e-4)          # neuron 0's synapse silenced, neuron 1's kept
    assert all(model2(taught)[0, t, 0].item() <= before + 1e-6 for t in range(3))


def test_nothing_carries_over_for_no_recurrence_and_between_sequences():
    W, S, O = small_core()
    u = torch.rand(3, 5, 3, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = BPU(W, S, O, K=3, input_dim=3, output_dim=2, reset_each_step=True, device=CPU)
    plastic = plastic_model(W, S, O, reset=True)
    assert torch.allclose(plain(u), plastic(u))   # same adapters (drawn first), and depression never acts
    model = plastic_model(W, S, O)
    together = model(u)
    for b in range(3):                           # each sequence starts undepressed, whatever its batch mates
        assert torch.allclose(together[b:b + 1], model(u[b:b + 1]), atol=1e-6)


def test_trainable_surface_count_and_matched_gru():
    W, S, O = small_core()
    model = plastic_model(W, S, O, train_mode="observed")
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert names == ["W_rec_values", "W_in", "b_in", "W_out", "b_out", "plastic.W_mod", "plastic.b_mod"]
    assert plastic_parameter_count(3, 3) == 12
    assert trainable_parameter_count(model) == expected_bpu_trainable_count(
        3, 3, 3, 2, train_mode="observed", nnz=W.nnz, n=10, plastic=True)
    u = torch.rand(2, 4, 3)
    model(u).sum().backward()
    assert model.plastic.W_mod.grad.abs().sum() > 0 and model.W_rec_values.grad.abs().sum() > 0
    common = dict(W=W, sensory_idx=S, output_idx=O, K=3, input_dim=3, output_dim=2, seed=0, train_mode="frozen",
                  runtime="auto", device=CPU, dense_max_neurons=100)
    matched = build_model("gru_matched", plasticity=ON, **common)
    target = expected_bpu_trainable_count(3, 3, 3, 2, train_mode="frozen", nnz=W.nnz, n=10, plastic=True)
    assert matched.gru.hidden_size == matched_gru_hidden(target, 3, 2)
    assert build_model("gru_matched", **common).gru.hidden_size <= matched.gru.hidden_size


def test_bad_settings_are_refused_with_the_key():
    W, S, O = small_core()
    with pytest.raises(BPUInputError, match="training.plasticity.retention"):
        BPU(W, S, O, K=2, input_dim=3, output_dim=1, device=CPU, plasticity={**ON, "retention": 1.5})
    with pytest.raises(BPUInputError, match="training.plasticity.rule"):
        BPU(W, S, O, K=2, input_dim=3, output_dim=1, device=CPU, plasticity={**ON, "rule": "hebbian"})
    with pytest.raises(BPUInputError, match="synapses onto output neurons are plastic"):
        build_arm(plastic_model(W, S, O, d_out=1), AssociativeSpec(), {"arm": "fa"}, seed=0)
    cut = W.tolil()
    cut[O, :] = 0
    with pytest.raises(BPUInputError, match="no stored edge ends on an output-pool neuron"):
        BPU(sp.csr_matrix(cut), S, O, K=2, input_dim=3, output_dim=1, device=CPU, plasticity=ON)


def test_training_variant_names_plastic_runs_and_leaves_others_unchanged():
    training = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text())["training"])
    assert training["plasticity"]["rule"] == "none"
    off = training_variant(training)
    without_block = {k: v for k, v in training.items() if k != "plasticity"}
    assert training_variant(without_block) == off and off.startswith("frozen-")
    on = training_variant({**training, "plasticity": ON})
    assert on.startswith("frozen_plastic-") and on != training_variant({**training, "plasticity": {**ON, "retention": 0.5}})
