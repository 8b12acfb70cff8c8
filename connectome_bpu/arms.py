"""Learning-rule arms on a BPU: how each one credits the input adapter of a frozen core (docs/learning_rule_arms.md).

Every arm trains the same model (``connectome_bpu.models.BPU``: same core, pools, adapters, seed and data order)
and is evaluated by the same forward pass; only the update of ``W_in``/``b_in`` differs. ``W_out``/``b_out``
always get their exact gradient, which is already local (output error times the presynaptic rate).

* ``tbptt``: backpropagation cut every ``window`` timesteps (the state is detached at window starts).
* ``ccdni``: ``tbptt`` plus a synthesiser (a cerebellum-like forward model) that predicts the gradient the cut
  removes, injected at each window end and trained on the bootstrapped target (connectome_bpu.synthetic_gradients).
* ``fa`` / ``pal``: the readout's transpose is replaced by a feedback matrix when errors enter the core, fixed
  random (fa) or learnt from noise injected into the output neurons and the high-passed readout (pal,
  connectome_bpu.feedback_alignment); temporal credit is full or truncated (``credit_window``).
* ``gle``: errors run forward in time (one microstep per hop, like the activity), and the adapters are updated
  online at every timestep under ``torch.no_grad()``: memory does not grow with the sequence length.

The arms of the feedback family and ``gle`` choose what carries errors back through the core (``through_core``):
``W^T`` (exact), ``W`` itself (errors travel along the real synapses), ``W^T`` with its neurons relabelled by a
fixed random permutation (same spectrum, wrong neurons), or nothing. A sequence is scored one timestep at a time
(``learning_rules.STEPWISE_TASKS``), each step's loss divided by the batch's total count, so the gradients equal
those of the batch-mean loss that bptt minimises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .errors import BPUInputError
from .feedback_alignment import (
    HighPass,
    OUNoise,
    alignment_angle_deg,
    feedback_linear,
    pal_update_,
    random_feedback_like,
)
from .learning_rules import FEEDBACK_ARMS, TRUNCATED_ARMS
from .model_names import READOUT
from .models import BPU
from .synthetic_gradients import (
    Synthesiser,
    adjoint_fidelity,
    gradient_cosine,
    truncated_backward,
)
from .tasks import AnyTaskSpec

ADAPTER_IN = ("W_in", "b_in")
DIAGNOSTIC_COLUMNS = ("grad_cosine", "feedback_angle_deg", "adjoint_cosine")
Carrier = Callable[[torch.Tensor], torch.Tensor] | None


class _CarriedStep(torch.autograd.Function):
    """``W @ H`` forward; backward multiplies by the chosen carrier instead of ``W^T`` (zero for none)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, forward: Callable, carrier: Carrier) -> torch.Tensor:
        ctx.carrier = carrier
        return forward(h)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        carried = ctx.carrier(grad) if ctx.carrier is not None else torch.zeros_like(grad)
        return carried, None, None


def core_carrier(model: BPU, through_core: str, generator: torch.Generator) -> Carrier:
    """``G -> M G`` for the matrix M that carries errors back through the core, or None for ``none``.

    ``random`` is ``P W^T P^T`` for a fixed random permutation P: the same eigenvalues as ``W^T`` (so the
    backward recursion is exactly as stable) and the same degrees, but every error lands on the wrong neuron.
    """
    if through_core == "none":
        return None
    if through_core == "forward":
        forward = model.recurrent.step_fn()
        return lambda g: forward(g)
    transpose = model.recurrent.transpose_step_fn()
    if through_core == "transpose":
        return transpose
    if through_core != "random":
        raise BPUInputError(f"training.learning_rules.through_core is {through_core!r}; expected transpose, "
                            "forward, random or none")
    perm = torch.randperm(model.n_neurons, generator=generator).to(model.W_in.device)
    inverse = torch.argsort(perm)
    return lambda g: transpose(g[inverse])[perm]


def _core_step(model: BPU, through_core: str, carrier: Carrier) -> Callable[[torch.Tensor], torch.Tensor]:
    """The differentiable microstep ``H -> W H`` whose backward uses ``carrier`` (exact for ``transpose``)."""
    forward = model.recurrent.step_fn()
    if through_core == "transpose":
        return forward
    return lambda h: _CarriedStep.apply(h, forward, carrier)


@dataclass
class Rollout:
    """One batch seen as ``step(state (B, N), t) -> (state, output (B, d_out))``, as truncated credit needs it.

    ``readout`` maps the output neurons' rates (B, n_o) to the output; ``output_noise(t)`` (or None) is added to
    the output neurons' last-microstep drive, and ``after_step(t, output, noise)`` runs once per timestep (PAL's
    feedback update). The microstep order is that of ``BPU.forward``, so with the exact core and readout every
    output equals the model's own.
    """

    model: BPU
    inputs: torch.Tensor
    core_step: Callable[[torch.Tensor], torch.Tensor]
    readout: Callable[[torch.Tensor], torch.Tensor]
    output_noise: Callable[[int], torch.Tensor] | None = None
    after_step: Callable[[int, torch.Tensor, torch.Tensor | None], None] | None = None
    captured: list | None = None      # when a list: the drive at every injection microstep, gradients retained

    def initial_state(self) -> torch.Tensor:
        return self.inputs.new_zeros((self.inputs.shape[0], self.model.n_neurons))

    def step(self, state: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        inject = torch.addmm(model.b_in, self.inputs[:, t], model.W_in.t()).t()
        if model.reset_each_step:
            pre = state.new_zeros((model.n_neurons, state.shape[0]))
        else:
            pre = self.core_step(state.t().contiguous())
        pre = pre.index_add(0, model.sensory_idx, inject)
        if self.captured is not None:
            pre.retain_grad()
            self.captured.append(pre)
        noise = self.output_noise(t) if self.output_noise is not None else None
        h = None
        for k in range(model.K):
            if h is not None:
                pre = self.core_step(h)
            if noise is not None and k == model.K - 1:
                pre = pre.index_add(0, model.output_idx, noise.t())
            h = pre.relu()
        output = self.readout(h.index_select(0, model.output_idx).t())
        if self.after_step is not None:
            self.after_step(t, output, noise)
        return h.t(), output


def exact_readout(model: BPU) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda rates: torch.addmm(model.b_out, rates, model.W_out.t())


def stepwise_loss(spec: AnyTaskSpec, targets: torch.Tensor) -> Callable[[torch.Tensor, int], tuple]:
    """``loss_fn(output_t, t) -> (sum, count)`` of timestep t alone (the families of ``STEPWISE_TASKS``)."""
    return lambda output, t: spec.loss_sums(output.unsqueeze(1), targets[:, t:t + 1])


def batch_count(spec: AnyTaskSpec, targets: torch.Tensor, output_dim: int) -> int:
    """The batch's loss count (positions, or scored steps): what bptt divides its summed loss by."""
    shape = (*targets.shape[:2], output_dim)
    return max(int(spec.loss_sums(targets.new_zeros(shape), targets)[1]), 1)


def exact_gradients(model: BPU, spec: AnyTaskSpec, inputs: torch.Tensor, targets: torch.Tensor,
                    names=ADAPTER_IN) -> dict[str, torch.Tensor]:
    """The full-BPTT gradient of the batch-mean loss w.r.t. ``names`` (the reference of every fidelity)."""
    names = [n for n in names if getattr(model, n).requires_grad]   # a frozen tensor has no update to compare
    total, count = spec.loss_sums(model(inputs), targets)
    grads = torch.autograd.grad(total / max(count, 1), [getattr(model, n) for n in names])
    return dict(zip(names, grads))


def _gradients_of(model: BPU, names=ADAPTER_IN) -> dict[str, torch.Tensor]:
    return {n: getattr(model, n).grad.detach().clone() if getattr(model, n).grad is not None
            else torch.zeros_like(getattr(model, n)) for n in names}


class Arm:
    """Base of every arm: one optimiser step per batch from the gradients :meth:`accumulate` leaves in ``.grad``."""

    name = "arm"

    def __init__(self, model: BPU, spec: AnyTaskSpec, params: Mapping[str, Any], seed: int):
        self.model, self.spec, self.params, self.seed = model, spec, dict(params), int(seed)
        self.generator = torch.Generator().manual_seed(7_919 * (self.seed + 1) + 17)

    def lr_scale(self, steps: int) -> float:
        """Factor on the learning rate of the adapters' optimiser (online arms step every timestep)."""
        return 1.0

    def start_epoch(self, epoch: int) -> None:
        """Hook for schedules (the ccdni lesions)."""

    def accumulate(self, inputs: torch.Tensor, targets: torch.Tensor, *, training: bool,
                   batch_key: int = 0) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def train_batch(self, inputs, targets, optimizer, params, grad_clip: float, batch_key: int):
        optimizer.zero_grad(set_to_none=True)
        total, count = self.accumulate(inputs, targets, training=True, batch_key=batch_key)
        nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        self.after_update()
        return total, count

    def after_update(self) -> None:
        """Hook run after each optimiser step (the synthesiser's own step)."""

    def update_direction(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ``W_in``/``b_in`` update this arm would make on a batch (as a gradient), without changing anything."""
        for p in self.model.parameters():
            p.grad = None
        self.accumulate(inputs, targets, training=False)
        grads = _gradients_of(self.model)
        for p in self.model.parameters():
            p.grad = None
        return grads

    def diagnostics(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Gradient fidelity on held-out sequences: cosine of this arm's ``W_in``/``b_in`` update with BPTT's."""
        exact = exact_gradients(self.model, self.spec, inputs, targets)
        return {"grad_cosine": gradient_cosine(self.update_direction(inputs, targets), exact, list(exact))}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class TruncatedArm(Arm):
    """tbptt, ccdni, fa and pal: truncated (or full) credit over windows, with an optional synthesiser,
    feedback matrix and carrier. One optimiser step per sequence, whatever the number of windows."""

    def __init__(self, model, spec, params, seed):
        super().__init__(model, spec, params, seed)
        self.arm = params["arm"]
        self.window = params.get("window") or params.get("credit_window")
        self.through_core = params.get("through_core", "transpose")
        self.carrier = core_carrier(model, self.through_core, self.generator)
        self.core_step = _core_step(model, self.through_core, self.carrier)
        self.feedback = None
        if self.arm in FEEDBACK_ARMS:
            self.feedback = random_feedback_like(model.W_out.detach().t(), self.generator).contiguous()
        self.synthesiser = self.synth_optimizer = None
        if self.arm == "ccdni":
            cfg = params["ccdni"]
            self.synthesiser = Synthesiser(model.n_neurons, hidden=cfg["hidden"], layers=cfg["layers"],
                                           rank=cfg["rank"], fixed_random=cfg["fixed_random"],
                                           generator=self.generator).to(model.W_in.device)
            self.synth_optimizer = torch.optim.Adam(self.synthesiser.parameters(), lr=cfg["lr"])
            self.synth_active, self.synth_learning = True, not cfg["fixed_random"]

    def start_epoch(self, epoch: int) -> None:
        if self.synthesiser is None:
            return
        cfg = self.params["ccdni"]
        self.synth_active = cfg["off_from_epoch"] is None or epoch < cfg["off_from_epoch"]
        self.synth_learning = (not cfg["fixed_random"] and self.synth_active
                               and (cfg["freeze_from_epoch"] is None or epoch < cfg["freeze_from_epoch"]))

    def _readout(self) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.feedback is None:
            return exact_readout(self.model)
        model = self.model
        return lambda rates: feedback_linear(rates, model.W_out, model.b_out, self.feedback)

    def _rollout(self, inputs: torch.Tensor, training: bool, batch_key: int) -> Rollout:
        rollout = Rollout(self.model, inputs, self.core_step, self._readout())
        if self.arm == "pal" and training:
            self._attach_pal(rollout, inputs.shape[0], batch_key)
        return rollout

    def _attach_pal(self, rollout: Rollout, batch: int, batch_key: int) -> None:
        """Noise on the output neurons and the feedback update after every timestep (no autograd)."""
        cfg = self.params["pal"]
        generator = torch.Generator().manual_seed(1_000_003 * (self.seed + 1) + int(batch_key))
        noise = OUNoise((batch, self.model.output_idx.numel()), cfg["noise_tau"], cfg["noise_std"], generator,
                        device=self.model.W_in.device)
        highpass = HighPass(cfg["highpass_decay"])

        def update(t: int, output: torch.Tensor, xi: torch.Tensor) -> None:
            # A new tensor per step: the steps already run keep, for their backward pass, the feedback they used.
            with torch.no_grad():
                self.feedback = pal_update_(self.feedback.clone(), xi, highpass.step(output.detach()), cfg["lr"],
                                            cfg["decay"])

        rollout.output_noise = lambda t: noise.step()
        rollout.after_step = update

    def accumulate(self, inputs, targets, *, training, batch_key=0):
        rollout = self._rollout(inputs, training, batch_key)
        steps = inputs.shape[1]
        synthesiser = self.synthesiser if (self.synthesiser is not None and self.synth_active) else None
        if synthesiser is not None and training:
            self.synth_optimizer.zero_grad(set_to_none=True)
        # The loss is divided by the count per sequence, not per batch, so the synthesiser's targets (gradients
        # w.r.t. one sequence's state) do not shrink with the batch size; the adapters' gradients are then
        # divided by the batch size, which makes them those of the batch-mean loss.
        batch = inputs.shape[0]
        result = truncated_backward(
            rollout.step, rollout.initial_state(), steps, stepwise_loss(self.spec, targets), self.window or steps,
            synthesiser=synthesiser, scale=self.params["ccdni"]["scale"] if synthesiser is not None else 0.1,
            inject_at_end=False, train_synthesiser=training and synthesiser is not None and self.synth_learning,
            normaliser=batch_count(self.spec, targets, self.model.W_out.shape[0]) / batch)
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad.div_(batch)
        self._synth_step_pending = training and synthesiser is not None and self.synth_learning
        return torch.tensor(result["loss_sum"]), int(result["count"])

    def after_update(self) -> None:
        if getattr(self, "_synth_step_pending", False):
            self.synth_optimizer.step()
            self._synth_step_pending = False

    def diagnostics(self, inputs, targets):
        row = super().diagnostics(inputs, targets)
        if self.feedback is not None:
            row["feedback_angle_deg"] = alignment_angle_deg(self.feedback, self.model.W_out.detach().t())
        if self.synthesiser is not None:
            rollout = self._rollout(inputs, False, 0)
            row["adjoint_cosine"] = adjoint_fidelity(
                rollout.step, rollout.initial_state(), inputs.shape[1], stepwise_loss(self.spec, targets),
                self.window, self.synthesiser, scale=self.params["ccdni"]["scale"],
                normaliser=batch_count(self.spec, targets, self.model.W_out.shape[0]) / inputs.shape[0])
        return row

    def state_dict(self):
        state = super().state_dict()
        if self.feedback is not None:
            state["feedback"] = self.feedback.detach().cpu().clone()
        if self.synthesiser is not None:
            state["synthesiser"] = self.synthesiser.state_dict()
            state["synth_optimizer"] = self.synth_optimizer.state_dict()
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if self.feedback is not None:
            self.feedback = state["feedback"].to(self.feedback.device).clone()
        if self.synthesiser is not None:
            self.synthesiser.load_state_dict(state["synthesiser"])
            self.synth_optimizer.load_state_dict(state["synth_optimizer"])


class GLEArm(Arm):
    """Generalized latent equilibrium on the BPU: prospective errors running forward in time, online updates.

    The core's units respond instantly (the BPU's microstep is ``r = relu(W r + input)``), which in GLE terms are
    latent-equilibrium units (tau_r = tau_m); their prospective error then equals the instantaneous one, so
    per microstep ``e = relu'(drive) * (M e_prev + W_out^T dL/dy at readout microsteps)``, M the carrier. Keeping
    those units is what keeps the arm on the same model as every other arm; leaky units would change the
    forward dynamics being compared (docs/learning_rule_arms.md). Each timestep's update is ``e[S] x_t^T`` for W_in
    and the exact local delta rule for W_out; the optimiser steps every timestep with its rate divided by T.
    """

    name = "gle"

    def __init__(self, model, spec, params, seed):
        super().__init__(model, spec, params, seed)
        self.carrier = core_carrier(model, params["through_core"], self.generator)
        self.forward = model.recurrent.step_fn()

    def lr_scale(self, steps: int) -> float:
        return 1.0 / steps

    def _run(self, inputs, targets, on_step, capture: list | None = None) -> tuple[torch.Tensor, int]:
        """Simulate the batch with forward-running errors; ``on_step(t, grads)`` receives each timestep's
        adapter gradients (already divided by the batch count)."""
        model, spec = self.model, self.spec
        batch, steps = inputs.shape[:2]
        count = batch_count(spec, targets, model.W_out.shape[0])
        loss_of = stepwise_loss(spec, targets)
        sensory, output = model.sensory_idx, model.output_idx
        rates = inputs.new_zeros((model.n_neurons, batch))
        error = torch.zeros_like(rates)
        total = torch.zeros((), device=inputs.device)
        for t in range(steps):
            with torch.no_grad():
                x = inputs[:, t]
                inject = torch.addmm(model.b_in, x, model.W_in.t()).t()
            for k in range(model.K):
                with torch.no_grad():
                    fresh = k == 0 and model.reset_each_step
                    drive = torch.zeros_like(rates) if fresh else self.forward(rates)
                    if k == 0:
                        drive.index_add_(0, sensory, inject)
                    rates = drive.relu()
                    carried = self.carrier(error) if (self.carrier is not None and not fresh) else 0.0
                    incoming = torch.zeros_like(rates) + carried
                if k == model.K - 1:
                    y = torch.addmm(model.b_out, rates.index_select(0, output).t(), model.W_out.t()).detach()
                    y.requires_grad_(True)
                    loss_sum, _ = loss_of(y, t)
                    (dy,) = torch.autograd.grad(loss_sum / count, y)   # d_out numbers per sequence: no history
                    total = total + loss_sum.detach()
                with torch.no_grad():
                    if k == model.K - 1:
                        incoming.index_add_(0, output, model.W_out.t() @ dy.t())
                    error = (drive > 0).to(rates.dtype) * incoming
                    if k == 0:
                        if capture is not None:
                            capture.append(error.clone())
                        sensory_error = error.index_select(0, sensory)
                        grads = {"W_in": sensory_error @ x, "b_in": sensory_error.sum(1)}
            with torch.no_grad():
                out_rates = rates.index_select(0, output)
                grads.update({"W_out": dy.t() @ out_rates.t(), "b_out": dy.sum(0)})
            on_step(t, grads)
        return total, count

    def accumulate(self, inputs, targets, *, training, batch_key=0):
        names = ("W_in", "b_in", "W_out", "b_out")
        params = {n: getattr(self.model, n) for n in names}

        def add(t, grads):
            for n in names:
                p = params[n]
                p.grad = grads[n].clone() if p.grad is None else p.grad + grads[n]

        total, count = self._run(inputs, targets, add)
        return total, count

    def train_batch(self, inputs, targets, optimizer, params, grad_clip, batch_key):
        names = ("W_in", "b_in", "W_out", "b_out")

        def step_now(t, grads):
            optimizer.zero_grad(set_to_none=True)
            for n in names:
                getattr(self.model, n).grad = grads[n]
            nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()

        return self._run(inputs, targets, step_now)

    def diagnostics(self, inputs, targets):
        row = super().diagnostics(inputs, targets)
        errors: list[torch.Tensor] = []
        self._run(inputs, targets, lambda t, grads: None, capture=errors)
        adjoints = exact_adjoints(self.model, self.spec, inputs, targets)
        row["adjoint_cosine"] = gradient_cosine({"e": torch.stack(errors)}, {"e": torch.stack(adjoints)}, ("e",))
        return row


def exact_adjoints(model: BPU, spec: AnyTaskSpec, inputs: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
    """dL/d(drive) at every injection microstep (the BPTT adjoint GLE's error state approximates), one (N, B)
    tensor per timestep."""
    captured: list[torch.Tensor] = []
    rollout = Rollout(model, inputs, model.recurrent.step_fn(), exact_readout(model), captured=captured)
    state, loss_of = rollout.initial_state(), stepwise_loss(spec, targets)
    total = inputs.new_zeros(())
    for t in range(inputs.shape[1]):
        state, output = rollout.step(state, t)
        total = total + loss_of(output, t)[0]
    (total / batch_count(spec, targets, model.W_out.shape[0])).backward()
    adjoints = [pre.grad.detach().clone() for pre in captured]
    for p in model.parameters():
        p.grad = None
    return adjoints


class ReadoutArm(Arm):
    """The floor: BPTT for the readout, none for the input adapter, which keeps its initial values. The distance
    between this arm and bptt is what crediting ``W_in`` buys on the task at all, the span every other arm is
    measured in (arm_report: ``input credit share``)."""

    def accumulate(self, inputs, targets, *, training, batch_key=0):
        total, count = self.spec.loss_sums(self.model(inputs), targets)
        (total / max(count, 1)).backward()
        for name in ADAPTER_IN:
            getattr(self.model, name).grad = None
        return total.detach(), count


ARM_CLASSES = {**{arm: TruncatedArm for arm in TRUNCATED_ARMS + FEEDBACK_ARMS}, "gle": GLEArm, READOUT: ReadoutArm}


def build_arm(model: nn.Module, spec: AnyTaskSpec, params: Mapping[str, Any], seed: int) -> Arm:
    """The arm object that trains ``model`` by ``params['arm']`` (a BPU on a frozen core; tbptt and readout on any
    BPU)."""
    arm = params.get("arm")
    if arm not in ARM_CLASSES:
        raise BPUInputError(f"learning rule {arm!r} is unknown; expected one of {', '.join(ARM_CLASSES)}")
    if not isinstance(model, BPU):
        raise BPUInputError(f"learning rule {arm!r} trains a BPU's adapters; got {type(model).__name__}")
    if arm not in ("tbptt", READOUT) and model.train_mode != "frozen":
        raise BPUInputError(f"learning rule {arm!r} needs a frozen core; this model's core is {model.train_mode}")
    if model.plastic is not None:
        raise BPUInputError(f"learning rule {arm!r} credits the adapters of a core without within-episode plasticity; "
                            "this model's synapses onto output neurons are plastic (training.plasticity)")
    return ARM_CLASSES[arm](model, spec, params, seed)
