"""GLE primitives and network: LE units are instantaneous, a settled LE network learns with exactly backprop's
gradient, prospective errors track the BPTT gradient better than instantaneous ones, online learning keeps
no graph and no history, runs are deterministic, and bad time constants are refused by name."""

from __future__ import annotations

import gc

import pytest
import torch

from connectome_bpu.gle import (
    GLENetwork,
    check_time_constants,
    error_step,
    le_li_time_constants,
    prospective_step,
)


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_le_unit_answers_instantly():
    u, drive = _random(4, 6, seed=1) * 1e3, _random(4, 6, seed=2)
    tau = torch.rand(6, dtype=torch.float64) * 5 + 1
    u_next, u_breve = prospective_step(u, drive, tau, tau.clone(), dt=0.5)
    assert torch.equal(u_breve, drive)
    torch.testing.assert_close(u_next, u + 0.5 / tau * (drive - u))


def test_le_error_passes_instantly():
    v, inst = _random(4, 6, seed=3) * 1e3, _random(4, 6, seed=4)
    tau = torch.rand(6, dtype=torch.float64) * 5 + 1
    v_next, e_breve = error_step(v, inst, tau, tau.clone(), dt=0.5)
    assert torch.equal(e_breve, inst)
    torch.testing.assert_close(v_next, v + 0.5 / tau * (inst - v))


def test_li_unit_fires_at_its_next_voltage_and_errors_look_ahead_by_tau_m():
    u, drive = _random(3, 5, seed=5), _random(3, 5, seed=6)
    u_next, u_breve = prospective_step(u, drive, 4.0, 1.0, dt=1.0)
    assert torch.equal(u_breve, u_next)
    v_next, e_breve = error_step(u, drive, 4.0, 1.0, dt=1.0)
    torch.testing.assert_close(e_breve, u + 4.0 * (drive - u))


def test_primitives_keep_the_state_precision():
    u, drive = torch.randn(2, 3), torch.randn(2, 3)
    tau = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    u_next, u_breve = prospective_step(u, drive, tau, tau.clone())
    v_next, e_breve = error_step(u, drive, tau, 1.0)
    assert {t.dtype for t in (u_next, u_breve, v_next, e_breve)} == {torch.float32}
    assert torch.equal(u_breve, drive)


def _settled_le_network(loss: str, target: torch.Tensor) -> tuple[GLENetwork, torch.Tensor]:
    """An LE network run on a static input long enough for rates (L steps) and errors (L more) to settle;
    the last step computed its plasticity gradients (lr 0 leaves the weights alone)."""
    sizes = [3, 5, 4, 2]
    net = GLENetwork(sizes, 1.0, 1.0, "tanh", "identity", dt=1.0, beta=0.1, loss=loss, seed=3, dtype=torch.float64)
    x = _random(7, 3, seed=7)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    for _ in range(2 * (len(sizes) - 1) + 1):
        net.step_online(x, target, optimizer)
    return net, x


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_settled_le_network_learns_with_the_backprop_gradient(loss):
    target = _random(7, 2, seed=8) if loss == "mse" else torch.tensor([0, 1, 1, 0, 1, 0, 0])
    net, h = _settled_le_network(loss, target)
    online = [p.grad.clone() for p in [*net.weights, *net.biases]]
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        h = h @ w.T + b
        h = torch.tanh(h) if layer < len(net.weights) - 1 else h
    params = [*net.weights, *net.biases]
    exact = torch.autograd.grad(net.instantaneous_loss(h, target), params)
    for got, want in zip(online, exact):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def _li_chain(prospective: bool) -> GLENetwork:
    return GLENetwork([1, 4, 1], [torch.tensor([2.0, 4.0, 6.0, 8.0]), 1.0], 1.0, "tanh", "identity",
                      prospective_errors=prospective, seed=11, dtype=torch.float64)


def _hidden_gradient(net: GLENetwork) -> torch.Tensor:
    return torch.cat([net.weights[0].grad.flatten(), net.biases[0].grad.flatten()])


def test_prospective_errors_track_the_bptt_gradient_better_than_instantaneous_ones():
    """Input slow next to the LI units' tau_m: the online GLE gradient of the hidden layer, summed over a
    stretch, is close to BPTT's through that whole stretch; instantaneous errors, blind to the lag, are not."""
    settle, steps = 100, 300
    t = torch.arange(settle + steps, dtype=torch.float64)
    xs = torch.stack([torch.sin(t / 40.0), torch.cos(t / 68.0)], 1).unsqueeze(-1)
    targets = 0.5 * torch.sin(t / 40.0 - 1.0).view(-1, 1, 1).expand(-1, 2, 1)
    bptt = _li_chain(True)
    bptt.run_sequence(xs[:settle])
    bptt.train_bptt_window(xs[settle:], targets[settle:], torch.optim.SGD(bptt.parameters(), lr=0.0))
    exact = _hidden_gradient(bptt)
    errors = {}
    for prospective in (True, False):
        net = _li_chain(prospective)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
        net.run_sequence(xs[:settle], targets[:settle])
        total = torch.zeros_like(exact)
        for x, target in zip(xs[settle:], targets[settle:]):
            net.step_online(x, target, optimizer)
            total += _hidden_gradient(net)
        errors[prospective] = float((total - exact).norm() / exact.norm())
    assert errors[True] < 0.05
    assert errors[True] < 0.7 * errors[False]


def _live_tensor_count() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


def test_online_learning_keeps_no_graph_and_no_history():
    tau_m, tau_r = le_li_time_constants(3, [2.0, 5.0])
    net = GLENetwork([2, 5, 3], [tau_m, 1.0], [tau_r, 1.0], learn_tau_m=True, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, target = torch.randn(4, 2), torch.randn(4, 3)
    counts = []
    for steps in (20, 200):
        for _ in range(steps):
            y = net.step_online(x, target, optimizer)
        assert not y.requires_grad and y.grad_fn is None
        states = net.state.u + net.state.v + net.state.r + net.state.e + net.state.slope
        assert all(not t.requires_grad and t.grad_fn is None for t in states)
        del states
        counts.append(_live_tensor_count())
    assert counts[0] == counts[1]


def _trained_copy(seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    tau_m, tau_r = le_li_time_constants(2, [3.0, 6.0])
    net = GLENetwork([1, 4, 2], [tau_m, 1.0], [tau_r, 1.0], seed=seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    xs = torch.sin(torch.arange(50.0) / 5).view(50, 1, 1).expand(50, 3, 1)
    ys = net.run_sequence(xs, torch.zeros(50, 3, 2), optimizer)
    return ys, [p.detach().clone() for p in net.parameters()]


def test_same_seed_same_numbers():
    (ys_a, params_a), (ys_b, params_b), (ys_c, _) = _trained_copy(5), _trained_copy(5), _trained_copy(6)
    assert torch.equal(ys_a, ys_b)
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))
    assert not torch.equal(ys_a, ys_c)


@pytest.mark.parametrize(("tau_m", "tau_r", "dt", "name"), [
    (0.5, 1.0, 1.0, "tau_m"), (2.0, float("nan"), 1.0, "tau_r"), (torch.tensor([2.0, float("inf")]), 2.0, 1.0, "tau_m"),
    (2.0, 2.0, 0.0, "dt"), (2.0, 0.009, 0.01, "tau_r")])
def test_bad_time_constants_are_refused_by_name(tau_m, tau_r, dt, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        check_time_constants(tau_m, tau_r, dt)


def test_network_refuses_bad_time_constants():
    with pytest.raises(ValueError, match="^tau_r "):
        GLENetwork([1, 2, 1], 1.0, [torch.tensor([1.0, 0.5]), 1.0])
    with pytest.raises(ValueError, match="tau_m"):
        GLENetwork([1, 2, 1], [torch.tensor([1.0, 2.0, 3.0]), 1.0], 1.0)
    check_time_constants(torch.tensor(0.01, dtype=torch.float32), 0.01, 0.01)


def test_activation_per_hidden_layer():
    """A linear first layer (a filter bank of the input, as in the published MNIST-1D network) under tanh layers."""
    net = GLENetwork([1, 3, 3, 2], 1.0, 1.0, ["identity", "tanh"], seed=1)
    with torch.no_grad():
        net.weights[0].fill_(4.0)
        net.biases[0].zero_()
    net.reset_state(1)
    net.step_online(torch.ones(1, 1))
    assert torch.equal(net.state.r[0], torch.full((1, 3), 4.0))  # identity: no tanh saturation at 4
    with pytest.raises(ValueError, match="one entry per hidden layer"):
        GLENetwork([1, 3, 3, 2], 1.0, 1.0, ["identity"])
    with pytest.raises(ValueError, match="activation must be one of"):
        GLENetwork([1, 3, 3, 2], 1.0, 1.0, ["identity", "relu6"])


def test_bptt_window_learns_tau_m_and_leaves_a_detached_state():
    net = GLENetwork([1, 1, 1], [3.0, 2.0], 1.0, "softplus", "softplus", learn_tau_m=True, tau_floor=1.5, seed=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=10.0)
    xs = torch.linspace(-1, 1, 20).view(20, 1, 1)
    before = [float(t.detach()) for t in net.tau_m]
    net.run_sequence(xs, torch.full((20, 1, 1), 3.0), optimizer, bptt_window=10)
    after = [float(t.detach()) for t in net.tau_m]
    assert after != before and min(after) >= 1.5
    assert all(t.grad_fn is None for t in net.state.u + net.state.r)


def test_time_constants_written_in_place_reach_the_next_step():
    """The network keeps each layer's Euler weights between steps; a time constant written in place (a plastic
    tau_m's update, load_state_dict) must still reach the very next step."""
    xs = _random(6, 2, 1, seed=3).float()

    def network(tau: float) -> GLENetwork:
        return GLENetwork([1, 3, 1], [tau, 1.0], [1.0, 1.0], seed=2)

    slow, fast, reference = network(4.0), network(2.0), network(4.0)
    slow.run_sequence(xs[:1])                      # the weights for tau_m = 4 are now in use
    slow.load_state_dict(fast.state_dict())
    for net in (slow, fast, reference):
        net.reset_state(2)
    assert torch.equal(slow.run_sequence(xs), fast.run_sequence(xs))
    assert not torch.equal(reference.run_sequence(xs), fast.run_sequence(xs))


@pytest.mark.parametrize("delayed", [False, True])
def test_delayed_errors_read_the_previous_output_and_slope(delayed):
    # One instantaneous tanh layer: its error is (target - y) * (1 - y^2), of this step's output or the last one's.
    net = GLENetwork([2, 3], 1.0, 1.0, "tanh", "tanh", delayed_errors=delayed, seed=0)
    net.reset_state(4)
    x1, x2, target = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 3)
    y1 = net.step_online(x1, target)
    y2 = net.step_online(x2, target)
    y = y1 if delayed else y2
    assert not torch.equal(y1, y2)
    torch.testing.assert_close(net.state.e[-1], (target - y) * (1.0 - y * y))


def test_errors_cross_the_weights_of_the_step_that_made_them():
    # The hidden layer's next input error is W_2^T e_2 with W_2 as it was when e_2 was made, not after the update.
    net = GLENetwork([2, 3, 2], 1.0, 1.0, "tanh", seed=0)
    net.reset_state(4)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    x, target = torch.randn(4, 2), torch.randn(4, 2)
    for _ in range(2):  # the signal checked is the second step's, sent before that step's update
        before = net.weights[1].detach().clone()
        net.step_online(x, target, optimizer)
    assert not torch.equal(before, net.weights[1])
    sent = net.state.e[1] @ before
    torch.testing.assert_close(net.state.down[0], sent)
    net.step_online(x, target)  # LE units: the hidden error is this step's slope times what was sent
    torch.testing.assert_close(net.state.e[0], net.state.slope[0] * sent)


def test_resize_state_keeps_the_running_state():
    net = GLENetwork([1, 3, 2], 3.0, 1.0, seed=0)
    assert net.resize_state(2).u[0].shape == (2, 3)  # no state yet: from rest
    assert all(float(t.abs().sum()) == 0.0 for t in net.state.u + net.state.r)
    for x in torch.randn(5, 2, 1):
        net.step_online(x)
    before = [t.clone() for t in net.state.u + net.state.r + net.state.slope]
    net.resize_state(5)  # grows by repeating the rows in order
    grown = net.state.u + net.state.r + net.state.slope
    assert all(torch.equal(g, torch.cat([b, b, b])[:5]) for g, b in zip(grown, before))
    net.resize_state(1)  # shrinks to the first rows
    assert all(torch.equal(s, b[:1]) for s, b in zip(net.state.u + net.state.r + net.state.slope, before))
