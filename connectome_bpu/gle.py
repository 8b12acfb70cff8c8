"""Generalized latent equilibrium (GLE): a real-time, local stand-in for backpropagation through time.

A GLE unit low-passes its drive into a membrane voltage u (time constant tau_m) and fires at the
*prospective* voltage u_breve = u + tau_r du/dt, which looks ahead by tau_r. Errors run backwards through
mirror dynamics with the two time constants swapped: they are low-passed with tau_r and look ahead by
tau_m. To first order that look-ahead undoes the lag the forward low-pass introduced, so the error a
synapse sees *now* approximates the backprop-through-time adjoint, although nothing of the past is stored.
Plasticity is the local product of a unit's prospective error and its presynaptic rate, applied every dt;
memory is O(units), independent of sequence length.

Two unit kinds matter in practice: latent-equilibrium (LE) units with tau_r = tau_m answer instantly
(u_breve equals the drive), and leaky-integrator (LI) units with tau_r = dt keep a low-pass memory.
Mixing them gives a feed-forward network with temporal memory and no recurrent weights.

``prospective_step`` and ``error_step`` are the per-unit primitives (explicit Euler, step dt);
``GLENetwork`` stacks them into layers and trains them online (``step_online``), with instantaneous
errors (``prospective_errors=False``, the "bp" baseline), or by truncated BPTT through the very same
forward dynamics (``train_bptt_window``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TauLike = float | Tensor
Activation = Callable[[Tensor], tuple[Tensor, Tensor]]


def prospective_step(u: Tensor, drive: Tensor, tau_m: TauLike, tau_r: TauLike,
                     dt: float = 1.0) -> tuple[Tensor, Tensor]:
    """One Euler step of tau_m du/dt = -u + drive, and the prospective voltage u_breve = u + tau_r du/dt.

    Both are interpolations between u and drive (torch.lerp, exact at weight 1), so tau_r = tau_m gives
    u_breve == drive bit for bit (an LE unit answers instantly) and tau_r = dt gives u_breve == u_next.
    Time constants (numbers or tensors, any float dtype) broadcast per unit (last dimension). Nothing is
    validated here, because this runs every step; see ``check_time_constants``.
    """
    return _lerp_pair(u, drive, *_euler_weights(tau_m, tau_r, dt, u))


def error_step(v: Tensor, inst: Tensor, tau_m: TauLike, tau_r: TauLike,
               dt: float = 1.0) -> tuple[Tensor, Tensor]:
    """One Euler step of the error dynamics tau_r dv/dt = -v + inst, and e_breve = v + tau_m dv/dt.

    The time constants are those of ``prospective_step`` swapped: the error is low-passed with tau_r and
    looks ahead by tau_m, which compensates the forward lag of the unit. tau_r = tau_m gives
    e_breve == inst exactly (an LE unit passes its error on instantly).
    """
    return _lerp_pair(v, inst, *_euler_weights(tau_r, tau_m, dt, v))


def _euler_weights(integrate: TauLike, look_ahead: TauLike, dt: float, like: Tensor) -> tuple[TauLike, TauLike]:
    """(dt / integrate, look_ahead / integrate): the interpolation weights of one Euler step of a low-pass with
    time constant ``integrate`` and of its look-ahead by ``look_ahead``. The forward dynamics use
    (tau_m, tau_r), the errors the same pair swapped."""
    return _weight(dt, integrate, like), _weight(look_ahead, integrate, like)


def _lerp_pair(start: Tensor, end: Tensor, step: TauLike, look_ahead: TauLike) -> tuple[Tensor, Tensor]:
    """The Euler step and the look-ahead of ``prospective_step`` / ``error_step``, given their two weights."""
    return torch.lerp(start, end, step), torch.lerp(start, end, look_ahead)


def _weight(numerator: TauLike, denominator: TauLike, like: Tensor) -> TauLike:
    """numerator / denominator in the state's dtype (torch.lerp wants its weight there; a ratio of equal
    taus stays exactly 1 in any precision)."""
    ratio = numerator / denominator
    return ratio.to(like.dtype) if isinstance(ratio, Tensor) else ratio


def check_time_constants(tau_m: TauLike, tau_r: TauLike, dt: float) -> None:
    """Raise ValueError, naming the argument, unless dt > 0 and every tau is finite and >= dt.

    A tau below dt makes the Euler step overshoot (a unit jumps past its own target and can oscillate),
    and a non-finite tau freezes or poisons a unit silently. The comparison is made in each tau's own
    precision, so tau = dt stored in float32 passes.
    """
    dt_value = torch.as_tensor(dt, dtype=torch.float64)
    if dt_value.numel() != 1 or not bool(torch.isfinite(dt_value)) or float(dt_value) <= 0.0:
        raise ValueError(f"dt must be one positive finite number, got {dt!r}")
    for name, tau in (("tau_m", tau_m), ("tau_r", tau_r)):
        values = torch.as_tensor(tau).detach()
        values = values if values.is_floating_point() else values.to(torch.float64)
        bad = ~torch.isfinite(values) | (values < torch.as_tensor(dt, dtype=values.dtype))
        if bool(bad.any()):
            raise ValueError(f"{name} must be finite and >= dt = {dt}; offending values: "
                             f"{values[bad].flatten()[:5].tolist()}")


def le_li_time_constants(n_le: int, li_tau_m: Sequence[float] | Tensor, dt: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per-unit (tau_m, tau_r) for a layer of ``n_le`` LE units followed by one LI unit per ``li_tau_m`` entry.

    LE units get tau_m = tau_r = dt (any equal pair makes them instantaneous; dt is the smallest legal one);
    LI units get tau_r = dt, so they fire at their next voltage and remember with their own tau_m.
    """
    li = torch.as_tensor(li_tau_m, dtype=torch.float64).flatten()
    tau_m = torch.cat([torch.full((n_le,), float(dt), dtype=torch.float64), li])
    return tau_m, torch.full_like(tau_m, float(dt))


def _identity(x: Tensor) -> tuple[Tensor, Tensor]:
    return x, torch.ones_like(x)


def _tanh(x: Tensor) -> tuple[Tensor, Tensor]:
    r = torch.tanh(x)
    return r, 1.0 - r * r


def _softplus(x: Tensor) -> tuple[Tensor, Tensor]:
    return F.softplus(x), torch.sigmoid(x)


def _sigmoid(x: Tensor) -> tuple[Tensor, Tensor]:
    r = torch.sigmoid(x)
    return r, r * (1.0 - r)


ACTIVATIONS: dict[str, Activation] = {"identity": _identity, "tanh": _tanh, "softplus": _softplus,
                                      "sigmoid": _sigmoid}
LOSSES = ("mse", "cross_entropy")


@dataclass
class GLEState:
    """What the network carries from one dt to the next, per layer: voltages u, error low-pass v, rates r,
    prospective errors e, slopes phi'(u_breve) (read by ``delayed_errors``) and ``down``, the error each
    hidden layer receives from the layer above: W_{l+1}^T e_{l+1}, formed in the step e_{l+1} was made,
    with the weights of that step (before its update). O(units), whatever the sequence length."""

    u: list[Tensor]
    v: list[Tensor]
    r: list[Tensor]
    e: list[Tensor]
    slope: list[Tensor]
    down: list[Tensor]


@dataclass(frozen=True)
class _Layer:
    """One layer as the per-dt loop reads it: its parameters and the Euler weights of its two dynamics
    (forward: dt / tau_m and tau_r / tau_m; errors: dt / tau_r and tau_m / tau_r)."""

    weight: Tensor
    bias: Tensor | None
    tau_m: Tensor
    phi: Activation
    forward: tuple[TauLike, TauLike]
    errors: tuple[TauLike, TauLike]


def _layer(weight: Tensor, bias: Tensor | None, tau_m: Tensor, tau_r: Tensor, phi: Activation, dt: float) -> _Layer:
    """A layer with the Euler weights of its forward and error dynamics, in the weights' precision."""
    return _Layer(weight, bias, tau_m, phi, _euler_weights(tau_m, tau_r, dt, weight),
                  _euler_weights(tau_r, tau_m, dt, weight))


@dataclass
class _Forward:
    """One step's forward quantities, kept only for that step's error and plasticity computations."""

    pre: list[Tensor]
    drive: list[Tensor]
    u_next: list[Tensor]
    rate: list[Tensor]
    slope: list[Tensor]


def _per_unit(value: TauLike, size: int, name: str, layer: int) -> Tensor:
    tau = torch.as_tensor(value, dtype=torch.float64).detach().flatten()
    if tau.numel() == 1:
        return tau.expand(size).clone()
    if tau.numel() != size:
        raise ValueError(f"{name}[{layer}] has {tau.numel()} values for a layer of {size} units")
    return tau.clone()


def _per_layer(value: TauLike | Sequence[TauLike], sizes: Sequence[int], name: str) -> list[Tensor]:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(sizes)
    if len(values) != len(sizes):
        raise ValueError(f"{name} needs one entry per non-input layer ({len(sizes)}), got {len(values)}")
    return [_per_unit(v, n, name, i) for i, (v, n) in enumerate(zip(values, sizes))]


class GLENetwork(nn.Module):
    """A layered GLE network: ``sizes[0]`` inputs, then one GLE layer per further entry.

    Every layer l reads its neighbours' values from the previous step (one dt of delay per layer each
    way), so all layers can update at once, as separate physical units would:

    * forward: drive_l = W_l r_{l-1} + b_l + gamma e_l, then ``prospective_step``, r_l = phi_l(u_breve_l);
      the input x_t enters layer 0 at the step it is given; the output is y = r_L;
    * errors: inst_L = phi_L'(u_breve_L) e_out with e_out = beta (target - y) (``loss="mse"``) or
      beta (onehot(target) - softmax(y)) (``loss="cross_entropy"``, target = class indices);
      inst_l = phi_l'(u_breve_l) W_{l+1}^T e_{l+1}, where W_{l+1}^T e_{l+1} is formed in the step that made
      e_{l+1}, before that step's update (a signal leaves with the synapse as it was; forming it a step later
      with the updated weights adds e_{l+1}^T dW, a term of the update e_{l+1} itself drove); then
      ``error_step`` (or e = inst when ``prospective_errors`` is False, the instantaneous "bp" baseline).
      With ``delayed_errors`` the output error and the slopes phi' are those of the previous step, so that
      every signal between units, the output to its error included, takes one dt (the stepping of the
      published GLE code; on MNIST-1D it learns faster in the first epochs, see docs/learning_rule_arms.md);
    * plasticity (when an optimiser is given): W.grad = -mean_batch(e r_pre^T), b.grad = -mean_batch(e), and,
      with ``learn_tau_m``, tau_m.grad = mean_batch(e du/dt) (a faster unit helps when e and du/dt agree);
      tau_m is clamped to >= ``tau_floor`` after every update.

    With e_out = beta (target - y), -e is beta times the gradient of the instantaneous loss, so W.grad is
    beta times backprop's gradient once an LE network has settled. Online updates happen every dt, so
    give the optimiser lr / (steps per sample); ``train_bptt_window`` updates once per window of K steps,
    so give it K times that.

    Args:
        sizes: [inputs, layer 1 units, ..., output units].
        tau_m, tau_r: per layer (a list with one entry per non-input layer) or one value for all; each
            entry a number or a per-unit 1-D tensor. Must be finite and >= dt.
        activation: phi of the hidden layers (one key for all, or one per hidden layer); ``output_activation``:
            phi of the last layer. Keys of ACTIVATIONS.
        dt: Euler step, in the units of the time constants.
        gamma: how strongly a unit's prospective error nudges its own voltage (0 keeps the forward pass
            free of errors).
        beta: output error gain.
        loss: "mse" or "cross_entropy".
        prospective_errors: False replaces ``error_step`` by e = inst (no lag compensation).
        delayed_errors: errors read the previous step's output and slopes (see above).
        learn_tau_m: make tau_m plastic (a parameter); ``tau_floor`` (default dt) bounds it from below.
        bias: whether layers have biases.
        seed: seeds the weight initialisation (uniform in +-1/sqrt(fan_in)).
        dtype: of weights, time constants and states.
    """

    def __init__(self, sizes: Sequence[int], tau_m: TauLike | Sequence[TauLike], tau_r: TauLike | Sequence[TauLike],
                 activation: str | Sequence[str] = "tanh", output_activation: str = "identity", *, dt: float = 1.0,
                 gamma: float = 0.0, beta: float = 1.0, loss: str = "mse", prospective_errors: bool = True,
                 delayed_errors: bool = False, learn_tau_m: bool = False, tau_floor: float | None = None,
                 bias: bool = True, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes needs an input size and at least one layer, all >= 1; got {sizes}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        hidden = [activation] * (len(sizes) - 2) if isinstance(activation, str) else list(activation)
        if len(hidden) != len(sizes) - 2:
            raise ValueError(f"activation needs one entry per hidden layer ({len(sizes) - 2}), got {len(hidden)}")
        for name, key in [*(("activation", key) for key in hidden), ("output_activation", output_activation)]:
            if key not in ACTIVATIONS:
                raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {key!r}")
        taus_m, taus_r = _per_layer(tau_m, sizes[1:], "tau_m"), _per_layer(tau_r, sizes[1:], "tau_r")
        check_time_constants(torch.cat(taus_m), torch.cat(taus_r), dt)
        self.tau_floor = float(dt if tau_floor is None else tau_floor)
        check_time_constants(self.tau_floor, self.tau_floor, dt)
        self.sizes, self.dt, self.gamma, self.beta, self.loss = sizes, float(dt), float(gamma), float(beta), loss
        self.prospective_errors, self.learn_tau_m = bool(prospective_errors), bool(learn_tau_m)
        self.delayed_errors = bool(delayed_errors)
        self.phis = [ACTIVATIONS[key] for key in hidden] + [ACTIVATIONS[output_activation]]
        generator = torch.Generator().manual_seed(int(seed))
        self.weights = nn.ParameterList(
            nn.Parameter(_uniform((n_out, n_in), n_in, generator, dtype)) for n_in, n_out in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(
            nn.Parameter(_uniform((n_out,), n_in, generator, dtype)) for n_in, n_out in zip(sizes, sizes[1:])
        ) if bias else None
        self.tau_m = nn.ParameterList(nn.Parameter(t.to(dtype), requires_grad=self.learn_tau_m) for t in taus_m)
        self.tau_r = nn.ParameterList(nn.Parameter(t.to(dtype), requires_grad=False) for t in taus_r)
        # Plain tuples of the same Parameter objects (updated in place by optimisers, load_state_dict and .to()):
        # indexing an nn.ParameterList costs microseconds, and the online loop reads every entry every dt.
        self._params = (tuple(self.weights), tuple(self.biases) if bias else (None,) * len(self.weights),
                        tuple(self.tau_m), tuple(self.tau_r))
        self._cached_layers: tuple[tuple, tuple[_Layer, ...]] | None = None
        self.state: GLEState | None = None

    def parameter_count(self) -> int:
        """Synaptic weights plus biases (time constants are not counted, as in the usual accounting)."""
        tensors = [*self.weights, *(self.biases if self.biases is not None else [])]
        return sum(t.numel() for t in tensors)

    def reset_state(self, batch_size: int) -> GLEState:
        """All voltages, rates and errors at zero (slopes at phi'(0)), for a batch of ``batch_size`` independent
        sequences."""
        dtype = self.weights[0].dtype

        def zeros() -> list[Tensor]:
            return [torch.zeros(batch_size, n, dtype=dtype) for n in self.sizes[1:]]

        self.state = GLEState(zeros(), zeros(), zeros(), zeros(), [phi(u)[1] for phi, u in zip(self.phis, zeros())],
                              zeros()[:-1])
        return self.state

    def resize_state(self, batch_size: int) -> GLEState:
        """Keep the running state for a batch of another size, as a network that is never reset does: the first
        rows when the batch shrinks, the rows repeated in order when it grows; from rest if there is no state."""
        if self.state is None:
            return self.reset_state(batch_size)

        def fit(rows: Tensor) -> Tensor:
            return rows.repeat(-(-batch_size // rows.shape[0]), 1)[:batch_size]  # repeat copies: no aliasing

        old = self.state
        self.state = GLEState(*([fit(t) for t in getattr(old, part.name)] for part in fields(GLEState)))
        return self.state

    def _layers(self) -> tuple[_Layer, ...]:
        """Every layer with its Euler weights, read once per step (or per BPTT window) and recomputed only when a
        time constant changed (``_version`` counts in-place writes such as an optimiser step on a plastic tau_m).
        Under autograd with plastic time constants they are always recomputed, so that each window's graph
        reaches tau_m afresh."""
        weights, biases, taus_m, taus_r = self._params
        fresh = self.learn_tau_m and torch.is_grad_enabled()
        key = tuple((tau._version, tau.data_ptr(), tau.dtype) for tau in (*taus_m, *taus_r))
        if not fresh and self._cached_layers is not None and self._cached_layers[0] == key:
            return self._cached_layers[1]
        layers = tuple(_layer(*params, self.dt) for params in zip(weights, biases, taus_m, taus_r, self.phis))
        self._cached_layers = None if fresh else (key, layers)
        return layers

    def _forward(self, x: Tensor, state: GLEState, nudge: bool, layers: tuple[_Layer, ...]) -> _Forward:
        """The forward half of one dt, from the previous step's rates (and errors, when ``nudge``)."""
        pre = [x, *state.r[:-1]]
        out = _Forward(pre, [], [], [], [])
        for index, layer in enumerate(layers):
            drive = F.linear(pre[index], layer.weight, layer.bias)
            if nudge and self.gamma != 0.0:
                drive = drive + self.gamma * state.e[index]
            u_next, u_breve = _lerp_pair(state.u[index], drive, *layer.forward)
            rate, slope = layer.phi(u_breve)
            out.drive.append(drive)
            out.u_next.append(u_next)
            out.rate.append(rate)
            out.slope.append(slope)
        return out

    def output_error(self, y: Tensor, target: Tensor) -> Tensor:
        """e_out: beta (target - y) for MSE, beta (onehot(target) - softmax(y)) for cross-entropy."""
        if self.loss == "mse":
            return self.beta * (target - y)
        onehot = F.one_hot(target.long(), y.shape[-1]).to(y.dtype)
        return self.beta * (onehot - torch.softmax(y, dim=-1))

    def instantaneous_loss(self, y: Tensor, target: Tensor) -> Tensor:
        """beta times the batch-mean loss whose negative gradient with respect to y is ``output_error``."""
        if self.loss == "mse":
            return self.beta * 0.5 * (target - y).pow(2).sum(-1).mean()
        return self.beta * F.cross_entropy(y, target.long())

    def _errors(self, old: GLEState, fwd: _Forward, target: Tensor,
                layers: tuple[_Layer, ...]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """New (v, e, down): hidden layers read what the layer above sent in the previous step, and the new
        errors are sent down now, before this step's plasticity changes the weights they cross."""
        output, slopes = (old.r[-1], old.slope) if self.delayed_errors else (fwd.rate[-1], fwd.slope)
        v_new, e_new = [], []
        for index, layer in enumerate(layers):
            back = self.output_error(output, target) if index == len(layers) - 1 else old.down[index]
            inst = slopes[index] * back
            if self.prospective_errors:
                v, e = _lerp_pair(old.v[index], inst, *layer.errors)
            else:
                v, e = inst, inst
            v_new.append(v)
            e_new.append(e)
        return v_new, e_new, [e @ layer.weight for e, layer in zip(e_new[1:], layers[1:])]

    def _plasticity(self, old: GLEState, fwd: _Forward, errors: list[Tensor], optimizer: torch.optim.Optimizer,
                    layers: tuple[_Layer, ...]) -> None:
        """Local updates: every synapse sees only its presynaptic rate and its postsynaptic error."""
        batch = errors[0].shape[0]
        for index, (layer, e) in enumerate(zip(layers, errors)):
            layer.weight.grad = (e.T @ fwd.pre[index]).mul_(-1.0 / batch)
            if layer.bias is not None:
                layer.bias.grad = e.sum(0).mul_(-1.0 / batch)
            if self.learn_tau_m:
                du_dt = (fwd.drive[index] - old.u[index]) / layer.tau_m
                layer.tau_m.grad = (e * du_dt).mean(0)
        optimizer.step()
        self._clamp_tau()

    def _clamp_tau(self) -> None:
        if self.learn_tau_m:
            with torch.no_grad():
                for tau in self.tau_m:
                    tau.clamp_(min=self.tau_floor)

    @torch.no_grad()
    def step_online(self, x_t: Tensor, target_t: Tensor | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> Tensor:
        """Advance one dt: forward dynamics, error dynamics and (with a target and an optimiser) plasticity.

        Without a target the errors are zero (pure inference; no update even if an optimiser is given).
        Runs under no_grad and replaces the state tensors, so nothing accumulates across steps.
        Returns the output y_t = r_L.
        """
        old = self.state if self.state is not None else self.reset_state(x_t.shape[0])
        layers = self._layers()
        fwd = self._forward(x_t, old, nudge=True, layers=layers)
        if target_t is None:
            v_new = e_new = [torch.zeros_like(r) for r in fwd.rate]
            down = e_new[:-1]
        else:
            v_new, e_new, down = self._errors(old, fwd, target_t, layers)
            if optimizer is not None:
                self._plasticity(old, fwd, e_new, optimizer, layers)
        self.state = GLEState(fwd.u_next, v_new, fwd.rate, e_new, fwd.slope, down)
        return fwd.rate[-1]

    def train_bptt_window(self, xs: Tensor, targets: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """Truncated BPTT through the same forward dynamics: run ``len(xs)`` steps from the current state
        under autograd, sum ``instantaneous_loss`` over the window, update once at its end, then continue
        from the detached end state. There are no error units here, so the gamma nudge is absent.

        Memory grows with the window length (the price GLE avoids). Returns the outputs [K, batch, out].
        """
        old = self.state if self.state is not None else self.reset_state(xs.shape[1])
        state = GLEState(old.u, old.v, old.r, old.e, old.slope, old.down)
        outputs, loss = [], xs.new_zeros(())
        with torch.enable_grad():
            layers = self._layers()
            for x, target in zip(xs, targets):
                fwd = self._forward(x, state, nudge=False, layers=layers)
                state = GLEState(fwd.u_next, state.v, fwd.rate, state.e, fwd.slope, state.down)
                outputs.append(fwd.rate[-1])
                loss = loss + self.instantaneous_loss(fwd.rate[-1], target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        self._clamp_tau()
        zeros = [torch.zeros_like(r) for r in state.r]
        self.state = GLEState([u.detach() for u in state.u], zeros, [r.detach() for r in state.r], zeros,
                              [s.detach() for s in state.slope], zeros[:-1])
        return torch.stack(outputs).detach()

    def run_sequence(self, xs: Tensor, targets: Tensor | None = None, optimizer: torch.optim.Optimizer | None = None,
                     bptt_window: int | None = None) -> Tensor:
        """Feed xs [T, batch, inputs] step by step from the current state; returns outputs [T, batch, out].

        With ``bptt_window`` = K (and targets and an optimiser) it trains by truncated BPTT in windows of K
        steps (a shorter last window if K does not divide T); otherwise it runs ``step_online`` every step.
        """
        if xs.shape[0] == 0:
            return xs.new_zeros(0, xs.shape[1], self.sizes[-1])
        if bptt_window is None or targets is None or optimizer is None:
            steps = targets if targets is not None else [None] * len(xs)
            return torch.stack([self.step_online(x, t, optimizer) for x, t in zip(xs, steps)])
        return torch.cat([self.train_bptt_window(xs[i:i + bptt_window], targets[i:i + bptt_window], optimizer)
                          for i in range(0, xs.shape[0], bptt_window)])


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    bound = fan_in ** -0.5
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0).mul(bound).to(dtype)
