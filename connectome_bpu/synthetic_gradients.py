"""Truncated backpropagation through time and cerebro-cerebellar synthetic gradients (ccDNI).

A recurrent model is seen only through a step function ``step(state, t) -> (new_state, output_t)`` on a
``(B, N)`` state tensor (the caller closes over its own parameters and inputs) and a per-step loss
``loss_fn(output_t, t) -> (loss_sum, count)`` (``count`` is 0, and ``loss_sum`` a zero tensor, at a step
without a target, e.g. under sparse feedback). Nothing here knows what the model is, so the same machinery
serves a 50-unit LSTM and a connectome-sized recurrent core.

Why: truncating backpropagation at every ``window`` steps makes learning local in time (no activity has to
be stored or replayed for longer than a window), but it cuts the credit that would flow back across each
window boundary. A *synthesiser*, a cerebellum-like forward model of future feedback, predicts that missing
credit, dL_future/dstate, from the state at the boundary, and its prediction is injected there as if it had
been backpropagated from the future. The synthesiser learns from a TD-like bootstrapped target: the gradient
that actually reaches the start of the next window, i.e. that window's own in-window gradient plus the
synthesiser's own (scaled, hence discounted) prediction injected at that window's end. The mismatch between
prediction and target plays the part of the inferior-olive teaching signal.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

Step = Callable[[Tensor, int], tuple[Tensor, Tensor]]
LossFn = Callable[[Tensor, int], tuple[Tensor, int]]


class Synthesiser(nn.Module):
    """MLP from a ``(B, N)`` state to a ``(B, N)`` prediction of dL_future/dstate.

    ``layers`` hidden ReLU layers of width ``hidden``; with ``rank`` the output goes hidden -> rank -> N
    through a linear bottleneck, so that N in the hundred thousands costs O(N * rank) weights rather than
    O(N * hidden) at the output. The output layer starts at zero so that a new synthesiser injects nothing
    and truncated BPTT is where learning begins. ``fixed_random`` is the lesion "a cerebellum that does not
    learn": the output layer keeps its random initialisation and no parameter is trainable.
    """

    def __init__(self, n: int, hidden: int = 256, layers: int = 2, rank: int | None = None,
                 fixed_random: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        widths = [n] + [hidden] * layers
        body: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            body += [_linear(fan_in, fan_out, generator), nn.ReLU()]
        self.body = nn.Sequential(*body)
        head = [_linear(hidden, rank, generator), _linear(rank, n, generator)] if rank else [
            _linear(hidden, n, generator)]
        self.head = nn.Sequential(*head)
        if fixed_random:
            self.requires_grad_(False)
        else:
            with torch.no_grad():
                head[-1].weight.zero_()
                head[-1].bias.zero_()

    def forward(self, state: Tensor) -> Tensor:
        return self.head(self.body(state))


def _linear(fan_in: int, fan_out: int, generator: torch.Generator | None) -> nn.Linear:
    """A linear layer with PyTorch's default U(+-1/sqrt(fan_in)) scale, drawn from ``generator``."""
    layer = nn.Linear(fan_in, fan_out)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def _check_window(window: int) -> None:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def _run_window(step: Step, h0: Tensor, t0: int, t1: int, loss_fn: LossFn) -> tuple[Tensor, Tensor, int]:
    """Steps t0..t1-1 from ``h0``: (state after the window, summed window loss, target count)."""
    state, loss, count = h0, h0.new_zeros(()), 0
    for t in range(t0, t1):
        state, output = step(state, t)
        step_loss, step_count = loss_fn(output, t)
        loss, count = loss + step_loss, count + int(step_count)
    return state, loss, count


def _predict(synthesiser: nn.Module, h_end: Tensor, track: bool) -> Tensor:
    """The synthesiser at a window end, from the detached state; with ``track`` the graph to its parameters is
    kept, because the same prediction is what the next window's bootstrapped target is compared with (the
    parameters do not change within a sequence, so evaluating it once serves both)."""
    with torch.set_grad_enabled(track):
        return synthesiser(h_end.detach())


def _fit_synthesiser(prediction: Tensor, target: Tensor | None, h0: Tensor, reduction: str) -> float:
    """Accumulate the synthesiser's gradient towards the bootstrapped ``target`` at h0; return its loss.

    No gradient reached h0 (``target`` None) only when nothing after it depends on it, so the true target is
    then zero. A synthesiser without trainable parameters (the fixed random lesion) is scored but not updated.
    """
    target = torch.zeros_like(h0) if target is None else target.detach()
    loss = (prediction - target).pow(2).sum()
    if reduction == "mean":
        loss = loss / h0.shape[0]
    if loss.requires_grad:
        loss.backward()
    return float(loss.detach())


def truncated_backward(step: Step, state0: Tensor, steps: int, loss_fn: LossFn, window: int, *,
                       synthesiser: nn.Module | None = None, scale: float = 0.1, discount: float | None = None,
                       inject_at_end: bool = True, train_synthesiser: bool = True, normaliser: float = 1.0,
                       synth_reduction: str = "mean") -> dict:
    """Accumulate truncated-BPTT gradients (optionally with synthetic gradients) over one sequence.

    The sequence is cut into windows of ``window`` steps; each window starts from a detached copy of the
    state, so no credit crosses a boundary except what the synthesiser injects at the window's end
    (``scale * synthesiser(h_end)``, at the final window only if ``inject_at_end``: set it False when the
    sequence really ends at ``steps`` and nothing lies beyond). ``window >= steps`` is full BPTT.

    Parameter gradients accumulate in ``.grad`` across windows; the caller zeroes them before and steps its
    optimiser once after the sequence, so every arm gets one update per sequence whatever its window.

    With ``train_synthesiser`` the synthesiser's ``.grad`` also accumulates: at each window start t0 > 0 it
    is regressed on the gradient that reached that start, the window's own credit plus ``discount`` times
    the prediction at the window's end carried back through the window. ``discount`` None couples it to
    ``scale``, as in ccDNI (one backward pass serves both); a separate discount costs a second backward
    pass per window, and lets the synthesiser learn a discounted future (a bootstrap that converges) while
    the cortex receives it at a different strength. The first window is skipped: its start is the
    given initial state, into which no prediction is ever injected (no earlier window exists), so fitting it
    would spend the synthesiser on a state whose prediction is never used; and because the initial state is
    usually the same for every sequence it would only learn the batch-mean gradient at that one point.

    The synthesiser's loss is its squared error summed over the state and averaged over batch rows
    (``synth_reduction`` "mean"), or summed over rows too ("sum"). With an optimiser of its own the two differ
    only by a constant factor; they matter when one gradient-norm clip covers the model and the synthesiser
    together, where "sum" lets a synthesiser that is far off its target dominate the joint norm and so hold
    the model's step back until it has caught up (docs/learning_rule_arms.md, line drawing).

    Returns ``loss_sum`` (all window losses, un-normalised), ``count`` (targets), ``synth_loss`` (mean
    synthesiser loss over the windows it was fitted on, NaN if none) and ``windows``.
    """
    _check_window(window)
    if synth_reduction not in ("mean", "sum"):
        raise ValueError(f"synth_reduction must be 'mean' or 'sum', got {synth_reduction!r}")
    train = synthesiser is not None and train_synthesiser
    state, pending, loss_sum, count, synth_losses, windows = state0, None, 0.0, 0, [], 0
    for t0 in range(0, steps, window):
        t1 = min(t0 + window, steps)
        h0 = state.detach().requires_grad_(True)
        h_end, window_loss, window_count = _run_window(step, h0, t0, t1, loss_fn)
        objective, prediction = window_loss / normaliser, None
        if synthesiser is not None and (t1 < steps or inject_at_end):
            prediction = _predict(synthesiser, h_end, track=train and t1 < steps)
            objective = objective + scale * (prediction.detach() * h_end).sum()
        rediscount = pending is not None and prediction is not None and discount is not None and discount != scale
        if objective.requires_grad:
            objective.backward(retain_graph=rediscount)
        if pending is not None:
            target = h0.grad  # in-window credit + scale * the prediction carried back
            if rediscount:
                carried, = torch.autograd.grad((prediction.detach() * h_end).sum(), h0)
                target = target + (discount - scale) * carried
            synth_losses.append(_fit_synthesiser(pending, target, h0, synth_reduction))
        pending = prediction if train and t1 < steps else None
        loss_sum, count, windows = loss_sum + float(window_loss.detach()), count + window_count, windows + 1
        state = h_end.detach()
    synth_loss = sum(synth_losses) / len(synth_losses) if synth_losses else math.nan
    return {"loss_sum": loss_sum, "count": count, "synth_loss": synth_loss, "windows": windows}


def adjoint_fidelity(step: Step, state0: Tensor, steps: int, loss_fn: LossFn, window: int,
                     synthesiser: nn.Module, scale: float = 0.1, normaliser: float = 1.0) -> float:
    """How well the injected credit points the right way: mean cosine between ``scale * synthesiser(h)``
    and the exact gradient of the future loss (steps >= t0, over ``normaliser``) w.r.t. h at every window
    boundary t0 = window, 2 * window, ... < steps, over batch rows.

    Runs one untruncated graph and reads the exact gradients with ``torch.autograd.grad``, so no parameter
    ``.grad`` is touched. Rows where either vector is zero (no target after t0, or a silent synthesiser)
    have no defined angle and are left out; NaN if no row is left.
    """
    predicted, exact = _adjoint_pairs(step, state0, steps, loss_fn, window, synthesiser, scale, normaliser)
    norms = predicted.norm(dim=1) * exact.norm(dim=1)
    return _finite_mean((predicted * exact).sum(dim=1) / norms)


def adjoint_norm_ratio(step: Step, state0: Tensor, steps: int, loss_fn: LossFn, window: int,
                       synthesiser: nn.Module, scale: float = 0.1, normaliser: float = 1.0) -> float:
    """How much of the true credit is injected: mean over the same boundaries and rows as
    :func:`adjoint_fidelity` of ||scale * synthesiser(h)|| / ||exact future gradient||. A cosine alone
    cannot tell a faithful prediction from a well-aimed but negligible one."""
    predicted, exact = _adjoint_pairs(step, state0, steps, loss_fn, window, synthesiser, scale, normaliser)
    return _finite_mean(predicted.norm(dim=1) / exact.norm(dim=1))


def _finite_mean(values: Tensor) -> float:
    """Mean over the rows where the quantity is defined (non-zero exact gradient and, for an angle, prediction)."""
    values = values[torch.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def _adjoint_pairs(step: Step, state0: Tensor, steps: int, loss_fn: LossFn, window: int, synthesiser: nn.Module,
                   scale: float, normaliser: float) -> tuple[Tensor, Tensor]:
    """Injected and exact future credit, (rows, N) in float64, stacked over the window boundaries; rows
    with a zero exact gradient are turned to NaN so that every summary leaves them out."""
    _check_window(window)
    boundaries = range(window, steps, window)
    predicted, exact = [], []
    with torch.enable_grad():
        state = state0.detach().requires_grad_(True)
        states, losses = {}, []
        for t in range(steps):
            if t in boundaries:
                states[t] = state
            state, output = step(state, t)
            losses.append(loss_fn(output, t)[0])
        for t0 in boundaries:
            exact.append(_future_gradient(states[t0], sum(losses[t0:]) / normaliser).double())
            with torch.no_grad():
                predicted.append(scale * synthesiser(states[t0].detach()).double())
    if not exact:
        return torch.empty(0, state0.shape[1]), torch.empty(0, state0.shape[1])
    predicted, exact = torch.cat(predicted), torch.cat(exact)
    undefined = exact.norm(dim=1) == 0
    exact[undefined] = math.nan
    return predicted, exact


def _future_gradient(h: Tensor, future_loss: Tensor) -> Tensor:
    """d future_loss / d h, zero when the future loss does not depend on h (no target ahead)."""
    if not future_loss.requires_grad:
        return torch.zeros_like(h)
    (gradient,) = torch.autograd.grad(future_loss, h, retain_graph=True, allow_unused=True)
    return torch.zeros_like(h) if gradient is None else gradient


def gradient_cosine(a: Mapping[str, Tensor], b: Mapping[str, Tensor], keys: Iterable[str]) -> float:
    """Cosine between two gradients (or updates), each the concatenation of ``keys``' flattened tensors.

    NaN if either is zero: a zero update has no direction to agree or disagree with.
    """
    keys = list(keys)
    x = torch.cat([a[k].detach().double().flatten() for k in keys])
    y = torch.cat([b[k].detach().double().flatten() for k in keys])
    norms = x.norm() * y.norm()
    return float(x @ y / norms) if norms > 0 else math.nan
