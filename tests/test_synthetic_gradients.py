"""Truncated BPTT and ccDNI synthetic gradients against hand-built graphs on a tiny tanh RNN (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from connectome_bpu.synthetic_gradients import (
    Synthesiser,
    adjoint_fidelity,
    adjoint_norm_ratio,
    gradient_cosine,
    truncated_backward,
)

N, B, T, NORMALISER = 4, 3, 6, 7.0


class TinyRNN:
    """h_{t+1} = tanh(W h_t + U x_t), output h_{t+1}; squared error at even steps only (sparse feedback).

    The state carries a clock column (t, advanced by each step, with no effect on the loss) so that an
    oracle synthesiser can tell which future lies ahead of a state.
    """

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.W = (0.6 * torch.randn(N, N, generator=g, dtype=torch.float64)).requires_grad_()
        self.U = torch.randn(N, 2, generator=g, dtype=torch.float64).requires_grad_()
        self.x = torch.randn(T, B, 2, generator=g, dtype=torch.float64)
        self.y = torch.randn(T, B, N, generator=g, dtype=torch.float64)
        self.state0 = torch.cat([0.3 * torch.randn(B, N, generator=g, dtype=torch.float64),
                                 torch.zeros(B, 1, dtype=torch.float64)], dim=1)

    def step(self, state, t):
        h = torch.tanh(state[:, :N] @ self.W.T + self.x[t] @ self.U.T)
        return torch.cat([h, state[:, N:] + 1], dim=1), h

    def loss_fn(self, output, t):
        if t % 2:
            return output.new_zeros(()), 0
        return (output - self.y[t]).pow(2).sum(), output.numel()

    def window_loss(self, state, t0, t1):
        """Hand-rolled forward of steps t0..t1-1: (final state, summed loss)."""
        loss = 0.0
        for t in range(t0, t1):
            state, output = self.step(state, t)
            loss = loss + self.loss_fn(output, t)[0]
        return state, loss

    def grads(self):
        return {"W": self.W.grad.clone(), "U": self.U.grad.clone()}

    def zero_grad(self):
        self.W.grad = self.U.grad = None


class Oracle(nn.Module):
    """Hand-built synthesiser: the exact gradient of the future loss, divided by the injection scale."""

    def __init__(self, rnn: TinyRNN, scale: float):
        super().__init__()
        self.rnn, self.scale = rnn, scale

    def forward(self, state):
        t0 = int(state[0, -1].round())
        with torch.enable_grad():
            start = state.detach().requires_grad_(True)
            _, future = self.rnn.window_loss(start, t0, T)
            if not (torch.is_tensor(future) and future.requires_grad):
                return torch.zeros_like(state)  # no target ahead
            (grad,) = torch.autograd.grad(future / NORMALISER, start)
        return grad / self.scale


def full_bptt_grads(rnn: TinyRNN):
    rnn.zero_grad()
    _, loss = rnn.window_loss(rnn.state0, 0, T)
    (loss / NORMALISER).backward()
    grads = rnn.grads()
    rnn.zero_grad()
    return grads


def run(rnn: TinyRNN, window: int, **kwargs):
    rnn.zero_grad()
    result = truncated_backward(rnn.step, rnn.state0, T, rnn.loss_fn, window, normaliser=NORMALISER, **kwargs)
    grads = rnn.grads()
    rnn.zero_grad()
    return result, grads


def assert_grads_equal(a, b):
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("window", [T, T + 5])
def test_window_at_least_steps_is_full_bptt(window):
    rnn = TinyRNN()
    result, grads = run(rnn, window)
    assert_grads_equal(grads, full_bptt_grads(rnn))
    assert result["windows"] == 1 and result["count"] == 3 * B * N and math.isnan(result["synth_loss"])
    _, loss = rnn.window_loss(rnn.state0, 0, T)
    assert result["loss_sum"] == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("window,starts", [(3, [0, 3]), (4, [0, 4])])
def test_window_k_is_the_gradient_of_the_truncated_graph(window, starts):
    """Two windows (the second shorter when K does not divide T): the state is cut at the boundary."""
    rnn = TinyRNN()
    result, grads = run(rnn, window)
    boundary, second_loss = starts[1], 0.0
    state, first_loss = rnn.window_loss(rnn.state0, 0, boundary)
    _, second_loss = rnn.window_loss(state.detach(), boundary, T)
    ((first_loss + second_loss) / NORMALISER).backward()
    assert_grads_equal(grads, rnn.grads())
    assert result["windows"] == 2
    full = full_bptt_grads(rnn)
    assert not torch.allclose(grads["W"], full["W"])  # truncation really removed credit


def test_zero_initialised_synthesiser_adds_nothing_on_the_first_pass():
    rnn = TinyRNN()
    _, plain = run(rnn, 2)
    synthesiser = Synthesiser(N + 1, hidden=8, generator=torch.Generator().manual_seed(1)).double()
    result, injected = run(rnn, 2, synthesiser=synthesiser)
    assert_grads_equal(injected, plain)
    assert result["synth_loss"] > 0  # it is fitted on the in-window gradients it does not yet predict
    assert synthesiser.head[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("window", [1, 2, 4])
@pytest.mark.parametrize("inject_at_end", [True, False])
def test_exact_future_gradient_makes_truncated_updates_equal_full_bptt(window, inject_at_end):
    rnn, scale = TinyRNN(), 0.1
    _, grads = run(rnn, window, synthesiser=Oracle(rnn, scale), scale=scale, inject_at_end=inject_at_end,
                   train_synthesiser=False)
    assert_grads_equal(grads, full_bptt_grads(rnn))


@pytest.mark.parametrize("window", [1, 2])
def test_oracle_has_adjoint_fidelity_one_and_a_silent_synthesiser_none(window):
    rnn, scale = TinyRNN(), 0.1
    args = (rnn.step, rnn.state0, T, rnn.loss_fn, window)
    assert adjoint_fidelity(*args, Oracle(rnn, scale), scale, NORMALISER) == pytest.approx(1.0, abs=1e-12)
    assert adjoint_norm_ratio(*args, Oracle(rnn, scale), scale, NORMALISER) == pytest.approx(1.0, abs=1e-12)
    assert adjoint_norm_ratio(*args, Oracle(rnn, scale), scale / 2, NORMALISER) == pytest.approx(0.5)
    silent = Synthesiser(N + 1, hidden=8).double()
    assert math.isnan(adjoint_fidelity(*args, silent, scale, NORMALISER))
    assert adjoint_norm_ratio(*args, silent, scale, NORMALISER) == 0.0
    assert rnn.W.grad is None and rnn.U.grad is None


@pytest.mark.parametrize("discount", [None, 0.5, 0.2, 1.0])
def test_synthesiser_target_is_in_window_gradient_plus_discounted_future(discount):
    """Two windows of 3 with injection at both ends: hand-built target at t = 3, nothing fitted at t = 0.
    The cortex always receives ``scale`` times the prediction; the target carries ``discount`` times it
    (None: the same as scale)."""
    rnn, scale = TinyRNN(), 0.5
    synthesiser = Synthesiser(N + 1, hidden=8, generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad():
        synthesiser.head[-1].weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(3))
    result, grads = run(rnn, 3, synthesiser=synthesiser, scale=scale, discount=discount)
    synth_grads = {name: p.grad.clone() for name, p in synthesiser.named_parameters()}

    synthesiser.zero_grad()
    h3, loss_a = rnn.window_loss(rnn.state0, 0, 3)
    h0 = h3.detach().requires_grad_(True)
    h6, loss_b = rnn.window_loss(h0, 3, T)
    inject = lambda h, c: c * (synthesiser(h.detach()).detach() * h).sum()  # noqa: E731
    (loss_a / NORMALISER + inject(h3, scale) + loss_b / NORMALISER + inject(h6, scale)).backward()
    assert_grads_equal(grads, rnn.grads())
    h6, loss_b = rnn.window_loss(h0, 3, T)
    target, = torch.autograd.grad(loss_b / NORMALISER + inject(h6, scale if discount is None else discount), h0)
    synth_loss = (synthesiser(h0.detach()) - target).pow(2).sum() / B
    synth_loss.backward()
    for name, p in synthesiser.named_parameters():
        torch.testing.assert_close(synth_grads[name], p.grad, rtol=1e-12, atol=1e-14)
    assert result["synth_loss"] == pytest.approx(synth_loss.item(), rel=1e-12)


def test_train_synthesiser_false_leaves_synthesiser_grads_alone():
    rnn = TinyRNN()
    synthesiser = Synthesiser(N + 1, hidden=8).double()
    result, _ = run(rnn, 1, synthesiser=synthesiser, train_synthesiser=False)
    assert all(p.grad is None for p in synthesiser.parameters()) and math.isnan(result["synth_loss"])


def test_summed_synthesiser_loss_is_the_batch_size_times_the_mean_one():
    """Only the synthesiser's gradient changes with the reduction, by exactly the number of batch rows."""
    rnn = TinyRNN()
    gradients = {}
    for reduction in ("mean", "sum"):
        synthesiser = Synthesiser(N + 1, hidden=8, generator=torch.Generator().manual_seed(2)).double()
        with torch.no_grad():
            synthesiser.head[-1].weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(3))
        result, model = run(rnn, 2, synthesiser=synthesiser, synth_reduction=reduction)
        gradients[reduction] = (result["synth_loss"], model, [p.grad.clone() for p in synthesiser.parameters()])
    (mean_loss, mean_model, mean_synth), (sum_loss, sum_model, sum_synth) = gradients["mean"], gradients["sum"]
    assert sum_loss == pytest.approx(B * mean_loss, rel=1e-12)
    assert_grads_equal(mean_model, sum_model)
    for a, b in zip(mean_synth, sum_synth):
        torch.testing.assert_close(B * a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="synth_reduction must be 'mean' or 'sum', got 'median'"):
        run(rnn, 2, synthesiser=synthesiser, synth_reduction="median")


@pytest.mark.parametrize("window", [0, -2])
def test_window_below_one_is_an_error(window):
    rnn = TinyRNN()
    with pytest.raises(ValueError, match="window"):
        truncated_backward(rnn.step, rnn.state0, T, rnn.loss_fn, window)
    with pytest.raises(ValueError, match="window"):
        adjoint_fidelity(rnn.step, rnn.state0, T, rnn.loss_fn, window, Synthesiser(N + 1, hidden=8).double())
    with pytest.raises(ValueError, match="window"):
        adjoint_norm_ratio(rnn.step, rnn.state0, T, rnn.loss_fn, window, Synthesiser(N + 1, hidden=8).double())


def test_synthesiser_shapes_init_and_lesion():
    make = lambda **kw: Synthesiser(10, hidden=16, generator=torch.Generator().manual_seed(4), **kw)  # noqa: E731
    state = torch.randn(5, 10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(make()(state), torch.zeros(5, 10))
    low_rank = make(rank=3)
    assert low_rank(state).shape == (5, 10) and low_rank.head[0].out_features == 3
    lesion = make(fixed_random=True)
    assert lesion(state).abs().sum() > 0 and not any(p.requires_grad for p in lesion.parameters())
    assert torch.equal(lesion(state), make(fixed_random=True)(state))  # same generator seed, same weights
    assert len([m for m in make(layers=3).body if isinstance(m, nn.Linear)]) == 3


def test_gradient_cosine():
    a = {"w": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([2.0])}
    assert gradient_cosine(a, a, ["w", "b"]) == pytest.approx(1.0)
    assert gradient_cosine(a, {k: -v for k, v in a.items()}, ["w", "b"]) == pytest.approx(-1.0)
    assert gradient_cosine(a, {"w": torch.tensor([[2.0, -1.0]]), "b": torch.tensor([0.0])}, ["w", "b"]) == 0.0
    assert gradient_cosine(a, {"w": torch.tensor([[-2.0, 1.0]])}, ["w"]) == pytest.approx(0.0)
    assert math.isnan(gradient_cosine(a, {k: torch.zeros_like(v) for k, v in a.items()}, ["w", "b"]))
