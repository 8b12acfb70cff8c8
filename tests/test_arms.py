"""Learning-rule arms on a BPU: each arm's update against a hand-derived case, determinism and bad inputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import yaml

from connectome_bpu.arms import (
    Rollout,
    build_arm,
    core_carrier,
    exact_gradients,
    exact_readout,
    stepwise_loss,
)
from connectome_bpu.config import SCHEMA_PATH, cross_key_problems, schema_problems
from connectome_bpu.errors import BPUInputError
from connectome_bpu.learning_rules import arm_params
from connectome_bpu.models import build_model
from connectome_bpu.tasks import SplitDef, TaskSpec, generate_split
from connectome_bpu.training import TrainSettings, train_model

SPEC = TaskSpec("cartesian")
CONFIG = yaml.safe_load(open(SCHEMA_PATH.parent.parent / "config.yaml"))
RULES = CONFIG["training"]["learning_rules"]
T = 12


def _data(count: int = 16, k: int = 0):
    arrays = generate_split(SPEC, SplitDef(name="train", role="train", k=k, count=count, T=T), data_seed=7)
    return torch.from_numpy(arrays["inputs"]), torch.from_numpy(arrays["targets"])


def _model(W=None, seed: int = 3, sensory=np.arange(8), output=np.arange(30, 40), K: int = 3):
    if W is None:
        rng = np.random.default_rng(0)
        W = sp.random(40, 40, density=0.1, random_state=rng, format="csr", dtype=np.float32) * 0.3
    return build_model("cx_bpu", W=W, sensory_idx=sensory, output_idx=output, K=K, input_dim=2, output_dim=4,
                       seed=seed, train_mode="frozen", runtime="sparse", device="cpu", dense_max_neurons=1000)


def _arm(model, arm: str, **changes):
    rules = copy.deepcopy(RULES)
    rules.update(changes)
    return build_arm(model, SPEC, arm_params(rules, arm), seed=0)


def _close(a: dict, b: dict, tol: float = 1e-6) -> None:
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=tol, atol=tol)


X, Y = _data()


def test_rollout_with_exact_core_and_readout_is_the_model_itself():
    model = _model()
    rollout = Rollout(model, X, model.recurrent.step_fn(), exact_readout(model))
    state, outputs = rollout.initial_state(), []
    for t in range(T):
        state, output = rollout.step(state, t)
        outputs.append(output)
    torch.testing.assert_close(torch.stack(outputs, 1), model(X), rtol=1e-6, atol=1e-6)


def test_tbptt_with_the_whole_sequence_as_window_is_bptt():
    model = _model()
    _close(_arm(model, "tbptt", window=T).update_direction(X, Y), exact_gradients(model, SPEC, X, Y))


def test_tbptt_window_cuts_exactly_the_credit_across_its_boundary():
    """Window 4 on T = 12 equals the gradient of a forward pass whose state is detached at t = 4 and 8."""
    model = _model()
    rollout = Rollout(model, X, model.recurrent.step_fn(), exact_readout(model))
    state, total, loss_of = rollout.initial_state(), 0.0, stepwise_loss(SPEC, Y)
    for t in range(T):
        if t % 4 == 0:
            state = state.detach()
        state, output = rollout.step(state, t)
        total = total + loss_of(output, t)[0]
    expected = torch.autograd.grad(total / SPEC.loss_sums(model(X), Y)[1], [model.W_in, model.b_in])
    got = _arm(model, "tbptt", window=4).update_direction(X, Y)
    _close(got, {"W_in": expected[0], "b_in": expected[1]})
    assert not torch.allclose(got["W_in"], exact_gradients(model, SPEC, X, Y)["W_in"])


def test_fa_with_the_readout_transpose_as_feedback_is_bptt_and_random_feedback_is_not():
    model = _model()
    arm = _arm(model, "fa")
    random_update = arm.update_direction(X, Y)
    arm.feedback.copy_(model.W_out.detach().t())
    exact = exact_gradients(model, SPEC, X, Y)
    _close(arm.update_direction(X, Y), exact)
    assert not torch.allclose(random_update["W_in"], exact["W_in"], atol=1e-6)


def test_fa_with_truncated_credit_and_transposed_feedback_equals_tbptt():
    model = _model()
    arm = _arm(model, "fa", credit_window=3)
    arm.feedback.copy_(model.W_out.detach().t())
    _close(arm.update_direction(X, Y), _arm(model, "tbptt", window=3).update_direction(X, Y))


def test_no_carrier_through_the_core_leaves_disjoint_sensory_neurons_without_credit():
    """With errors carried by nothing, the only path from an output error to W_in would be a neuron in both pools."""
    model = _model()
    update = _arm(model, "fa", through_core="none").update_direction(X, Y)
    assert torch.count_nonzero(update["W_in"]) == 0


def test_random_carrier_is_a_relabelled_transpose_with_the_same_spectrum():
    model = _model()
    carrier = core_carrier(model, "random", torch.Generator().manual_seed(0))
    identity = torch.eye(model.n_neurons)
    R = carrier(identity)
    W = torch.from_numpy(model.recurrent.W_dense.numpy() if model.runtime == "dense" else
                         _dense_of(model))
    eig_r = np.sort_complex(np.linalg.eigvals(R.numpy().astype(np.float64)))
    eig_w = np.sort_complex(np.linalg.eigvals(W.numpy().T.astype(np.float64)))
    np.testing.assert_allclose(eig_r, eig_w, atol=1e-5)
    assert not torch.allclose(R, W.t())


def _dense_of(model) -> np.ndarray:
    return model.recurrent.step_fn()(torch.eye(model.n_neurons)).detach().numpy()


def test_forward_carrier_sends_errors_along_w_itself():
    model = _model()
    carrier = core_carrier(model, "forward", torch.Generator().manual_seed(0))
    torch.testing.assert_close(carrier(torch.eye(model.n_neurons)), torch.from_numpy(_dense_of(model)))


def test_pal_feedback_turns_towards_the_readout_transpose():
    """With the adapters fixed, PAL's noise-driven update alone aligns the random feedback with W_out^T."""
    model = _model()
    arm = _arm(model, "pal", pal={**RULES["pal"], "lr": 1.0, "decay": 0.02, "noise_std": 0.1})
    start = arm.diagnostics(X, Y)["feedback_angle_deg"]
    for key in range(40):
        for p in model.parameters():
            p.grad = None
        arm.accumulate(X, Y, training=True, batch_key=key)
    end = arm.diagnostics(X, Y)["feedback_angle_deg"]
    assert start > 60 and end < 30, (start, end)


def _chain():
    """A feed-forward chain 0-1 -> 2-3 -> 4-5 -> 6-7 (sensory 0-1, output 6-7), positive weights."""
    rows, cols = [2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    vals = [0.9, 0.4, 0.3, 0.8, 0.7, 0.5, 0.6, 0.9, 0.8, 0.3, 0.4, 0.7]
    return sp.csr_matrix((vals, (rows, cols)), shape=(8, 8), dtype=np.float32)


def test_gle_on_a_feed_forward_chain_with_a_static_input_equals_backprop_once_settled():
    """Errors running forward in time reach the sensory neurons three steps after the output error they carry; with
    a static input and target the chain has settled by then, so the last online update equals backprop of the last
    step's loss (which reaches W_in only through the injection three steps earlier: the chain has no loops)."""
    model = _model(_chain(), sensory=np.array([0, 1]), output=np.array([6, 7]), K=1)
    with torch.no_grad():
        model.W_in.abs_()   # every unit of the chain active, so credit reaches the input
    x = (torch.rand(4, 1, 2, generator=torch.Generator().manual_seed(1)) + 0.5).expand(4, T, 2).contiguous()
    y = torch.randn(4, 1, 4, generator=torch.Generator().manual_seed(2)).expand(4, T, 4).contiguous()
    per_step = []
    _arm(model, "gle")._run(x, y, lambda t, grads: per_step.append(grads))
    rollout = Rollout(model, x, model.recurrent.step_fn(), exact_readout(model))
    state = rollout.initial_state()
    for t in range(T):
        state, output = rollout.step(state, t)
    last = SPEC.loss_sums(output.unsqueeze(1), y[:, T - 1:T])[0] / SPEC.loss_sums(model(x), y)[1]
    expected = dict(zip(("W_in", "b_in", "W_out", "b_out"),
                        torch.autograd.grad(last, [model.W_in, model.b_in, model.W_out, model.b_out])))
    assert torch.count_nonzero(expected["W_in"]) > 0
    _close(per_step[-1], expected, tol=1e-5)


def test_gle_online_run_keeps_no_autograd_history():
    model = _model()
    arm = _arm(model, "gle")
    seen = []
    arm._run(X, Y, lambda t, grads: seen.append(all(not g.requires_grad for g in grads.values())))
    assert all(seen) and len(seen) == T


def test_training_with_an_arm_is_deterministic_and_records_fidelity():
    histories, finals = [], []
    for _ in range(2):
        model = _model()
        arm = _arm(model, "pal")
        outcome = train_model(model, SPEC, (X, Y), _data(8, 1), TrainSettings(lr=1e-2, batch_size=8, epochs=2),
                              seed=0, arm=arm, fidelity_batch=8)
        histories.append(outcome.history)
        finals.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    for name in finals[0]:
        assert torch.equal(finals[0][name], finals[1][name])
    row = histories[0][-1]
    assert -1 <= row["grad_cosine"] <= 1 and 0 <= row["feedback_angle_deg"] <= 180


@pytest.mark.parametrize("arm", ["tbptt", "ccdni", "fa", "pal", "gle"])
def test_every_arm_trains_and_lowers_the_training_loss(arm):
    torch.manual_seed(0)
    model = _model()
    outcome = train_model(model, SPEC, (X, Y), _data(8, 1), TrainSettings(lr=3e-2, batch_size=8, epochs=3,
                                                                         patience=10),
                          seed=0, arm=_arm(model, arm), fidelity_batch=8)
    assert outcome.history[-1]["train_loss"] < outcome.history[0]["train_loss"]


def test_an_arm_refuses_a_gru_and_a_trained_core():
    gru = build_model("gru", W=sp.eye(40, format="csr", dtype=np.float32), sensory_idx=np.arange(8),
                      output_idx=np.arange(30, 40), K=3, input_dim=2, output_dim=4, seed=0, train_mode="frozen",
                      runtime="sparse", device="cpu", dense_max_neurons=1000)
    with pytest.raises(BPUInputError, match="trains a BPU"):
        _arm(gru, "fa")
    observed = build_model("cx_bpu", W=sp.random(40, 40, density=0.1, random_state=0, format="csr", dtype=np.float32),
                           sensory_idx=np.arange(8), output_idx=np.arange(30, 40), K=3, input_dim=2, output_dim=4,
                           seed=0, train_mode="observed", runtime="sparse", device="cpu", dense_max_neurons=1000)
    with pytest.raises(BPUInputError, match="needs a frozen core"):
        _arm(observed, "gle")


def _config(**training_rules):
    config = copy.deepcopy(CONFIG)
    config["training"]["learning_rules"].update(training_rules)
    return config


@pytest.mark.parametrize("change, expected", [
    ({"window": 0}, "'training.learning_rules.window' has value 0; allowed: a number >= 1"),
    ({"arms": ["bptt", "hebb"]}, "'training.learning_rules.arms.1' has value 'hebb'; allowed: one of 'bptt'"),
    ({"through_core": "sideways"}, "'training.learning_rules.through_core' has value 'sideways'"),
])
def test_bad_arm_settings_are_refused_by_the_schema_naming_the_key(change, expected):
    problems = schema_problems(_config(**change))
    assert any(expected in p for p in problems), problems


def test_an_arm_that_needs_a_frozen_core_is_refused_with_a_trained_one():
    config = _config(arms=["bptt", "tbptt", "gle"])
    config["training"]["train_recurrent"] = "observed"
    problems = cross_key_problems(config)
    assert len(problems) == 1 and "(gle)" in problems[0] and "train_recurrent" in problems[0]
    config["training"]["learning_rules"]["arms"] = ["bptt", "tbptt"]
    assert cross_key_problems(config) == []


def test_arms_are_refused_on_a_task_whose_loss_cannot_be_scored_per_step():
    config = _config(arms=["bptt", "fa"])
    config["task"]["name"] = "optic_flow"
    config["connectome"] = "synthetic_optic"
    assert any("optic_flow loss" in p for p in cross_key_problems(config))
