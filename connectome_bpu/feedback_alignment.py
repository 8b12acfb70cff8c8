"""Feedback alignment (FA) and phaseless alignment learning (PAL): error transport without weight transport.

Backpropagation sends a layer's error back through the transpose of its forward weights, which a
brain cannot read out of its synapses. Feedback alignment replaces that transpose with a separate
feedback matrix: a fixed random one already trains shallow networks, because the forward weights
come to align with it. PAL goes further and *learns* the feedback from signals a neuron has:

* a small noise xi is injected into the units whose errors the feedback carries; it travels forward,
  so the response y of the layer above contains W D xi (D = the units' activation-derivative gains);
* high-pass filtering y removes the slow stimulus-driven part and keeps the fast noise-driven one;
* the Hebbian product of the noise and the high-passed response then averages to
  E[xi y_hp^T] = c E[xi xi^T] D W^T (c > 0 set by the noise's correlation time and the filter), so for
  independent noise of equal variance in each unit it is proportional to D W^T: the forward weights'
  transpose with each row scaled by a positive gain; a weight decay on the feedback erases its random
  initial part.

Every error sent back through such a feedback matrix is therefore a positive per-unit rescaling of
the backpropagated one, so it still points downhill, and no synapse had to read another's weight.

The pieces here are the primitives: ``feedback_linear`` (a linear layer whose backward pass uses the
feedback matrix), ``OUNoise`` (the injected noise), ``HighPass`` (the response filter),
``pal_update_`` (the feedback learning rule), ``alignment_angle_deg`` (the diagnostic) and
``random_feedback_like`` (the FA starting point).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable


class _FeedbackLinear(torch.autograd.Function):
    """y = x W^T + b forward; backward sends the error through ``feedback`` instead of W^T."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        y = x @ weight.T
        return y + bias if bias is not None else y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, feedback = ctx.saved_tensors
        grad_x = grad_y @ feedback.T if ctx.needs_input_grad[0] else None
        flat_grad = grad_y.reshape(-1, grad_y.shape[-1])
        grad_weight = flat_grad.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_bias = flat_grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None


def feedback_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    feedback: torch.Tensor) -> torch.Tensor:
    """A linear layer whose error goes back through ``feedback`` (n_in, n_out) in place of ``weight.T``.

    The forward pass and the gradients of ``weight`` and ``bias`` are those of an ordinary linear
    layer, so only the error *sent to the layer below* changes: grad_x = grad_y @ feedback.T. The
    feedback matrix gets no gradient (it is fixed, or learnt by its own rule such as ``pal_update_``).
    ``x`` is (B, n_in); any extra leading dimensions (e.g. time) are treated as more batch rows.
    With feedback == weight.T this is exactly backpropagation.
    """
    n_out, n_in = weight.shape
    if x.shape[-1] != n_in:
        raise ValueError(f"x: last dimension {x.shape[-1]} does not match weight's n_in = {n_in}")
    if tuple(feedback.shape) != (n_in, n_out):
        raise ValueError(f"feedback: shape {tuple(feedback.shape)}, expected (n_in, n_out) = {(n_in, n_out)}")
    if bias is not None and tuple(bias.shape) != (n_out,):
        raise ValueError(f"bias: shape {tuple(bias.shape)}, expected ({n_out},)")
    return _FeedbackLinear.apply(x, weight, bias, feedback)


class OUNoise:
    """Ornstein-Uhlenbeck noise in discrete time: temporally correlated, like noise a neuron can carry.

    xi_t = (1 - 1/tau) xi_{t-1} + std * sqrt(2/tau - 1/tau**2) * N(0, 1), with tau in steps. The
    innovation's scale keeps the variance at std**2 at every step (the process starts from its
    stationary distribution), so ``std`` alone sets how strongly the noise drives a unit, and the lag-k
    autocorrelation is (1 - 1/tau)**k. tau = 1 gives white noise. Every draw comes from ``generator``,
    so a seeded generator gives the same sequence every time.
    """

    def __init__(self, shape, tau: float, std: float, generator: torch.Generator, device="cpu",
                 dtype=torch.float32):
        if not tau >= 1:
            raise ValueError(f"tau: must be >= 1 step, got {tau}")
        if not std >= 0:
            raise ValueError(f"std: must be >= 0, got {std}")
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.tau, self.std, self.generator = float(tau), float(std), generator
        self.device, self.dtype = device, dtype
        self.reset()

    def _normal(self) -> torch.Tensor:
        return torch.randn(self.shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def reset(self) -> None:
        """Draw a fresh state from the stationary distribution N(0, std**2)."""
        self.state = self.std * self._normal()

    def step(self) -> torch.Tensor:
        """Advance one step and return the new noise xi_t."""
        keep = 1.0 - 1.0 / self.tau
        innovation = self.std * math.sqrt(2.0 / self.tau - 1.0 / self.tau ** 2)
        self.state = keep * self.state + innovation * self._normal()
        return self.state


class HighPass:
    """First-order high-pass filter: keeps a signal's fast changes and forgets its steady level.

    y_hp_t = y_hp_{t-1} + (y_t - y_{t-1}) - decay * y_hp_{t-1}, from y_hp = 0 and y_{-1} = y_0, so a
    constant signal gives 0 and a step change passes at once, then fades by (1 - decay) per step.
    In PAL it strips the stimulus-driven part of a response, which changes slowly relative to the
    noise, so that what remains co-varies with the injected noise. decay = 1 is the plain difference
    y_t - y_{t-1}; decay = 0 never forgets a change.
    """

    def __init__(self, decay: float):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay: must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self.reset()

    def reset(self) -> None:
        """Forget the signal: the next call is treated as the first."""
        self.previous = None
        self.filtered = None

    def step(self, y: torch.Tensor) -> torch.Tensor:
        """Filter the next sample ``y`` and return y_hp_t."""
        if self.previous is None:
            self.previous, self.filtered = y, torch.zeros_like(y)
        self.filtered = (1.0 - self.decay) * self.filtered + (y - self.previous)
        self.previous = y
        return self.filtered


@torch.no_grad()
def pal_update_(feedback: torch.Tensor, noise: torch.Tensor, response_hp: torch.Tensor, lr: float,
                decay: float) -> torch.Tensor:
    """PAL's feedback rule, in place: feedback += lr * (noise^T response_hp / batch - decay * feedback).

    ``noise`` (B, n_in) is the noise injected into the units whose errors ``feedback`` (n_in, n_out)
    carries and ``response_hp`` (B, n_out) the high-passed response of the layer above. The Hebbian
    term averages to E[xi y_hp^T], proportional to D W^T; the decay pulls everything else (the random
    start, the stimulus-driven leftovers) to zero. The fixed point is E[xi y_hp^T] / decay, reached at
    a rate lr * decay per call. Returns ``feedback``.
    """
    n_in, n_out = feedback.shape
    if noise.ndim != 2 or noise.shape[1] != n_in:
        raise ValueError(f"noise: shape {tuple(noise.shape)}, expected (batch, {n_in})")
    if tuple(response_hp.shape) != (noise.shape[0], n_out):
        raise ValueError(f"response_hp: shape {tuple(response_hp.shape)}, expected ({noise.shape[0]}, {n_out})")
    if not lr >= 0:
        raise ValueError(f"lr: must be >= 0, got {lr}")
    if not decay >= 0:
        raise ValueError(f"decay: must be >= 0, got {decay}")
    feedback.mul_(1.0 - lr * decay).add_(noise.T @ response_hp, alpha=lr / noise.shape[0])
    return feedback


def alignment_angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two same-shape matrices seen as vectors (Frobenius cosine).

    0 means the feedback points exactly along the forward weights' transpose, 90 unrelated, 180
    opposite; an error sent back through a matrix under 90 degrees from W^T still reduces the loss.
    NaN when either matrix is all zero (no direction).
    """
    if a.shape != b.shape:
        raise ValueError(f"b: shape {tuple(b.shape)} differs from a's {tuple(a.shape)}")
    a64, b64 = a.detach().double().flatten(), b.detach().double().flatten()
    norms = a64.norm() * b64.norm()
    if norms == 0:
        return math.nan
    cosine = float(torch.clamp(a64 @ b64 / norms, -1.0, 1.0))
    return math.degrees(math.acos(cosine))


def random_feedback_like(weight_t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fixed random feedback matrix for FA: Gaussian entries, rescaled to ``weight_t``'s Frobenius norm.

    Matching the norm makes the errors FA sends back as large as backpropagation's at the start, so
    any difference between the arms comes from the feedback's direction, not its size.
    """
    draw = torch.randn(weight_t.shape, generator=generator, device=weight_t.device, dtype=weight_t.dtype)
    return draw * (weight_t.detach().norm() / draw.norm())
