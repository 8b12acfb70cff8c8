"""Trainable models of the benchmark: the BPU (a connectome as recurrent core) and the GRU baselines.

The BPU follows docs/method.md#bpu exactly; only the layout differs from the original benchmark:
the state is ``(N, B)`` so every microstep is one ``W @ H`` product without transposes (runtime.py).
The recurrent matrix is frozen unless ``train_mode`` says otherwise (docs/method.md#bpu); what is
trained is always listed in the same order so the trainer can assert the surface.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .errors import BPUInputError
from .model_names import MEAN_PREDICTOR, MODEL_NAMES, NO_RECURRENCE
from .plasticity import OutputPlasticity
from .plasticity_settings import is_plastic, plastic_parameter_count
from .runtime import TRAIN_MODES, build_operator



def _index_tensor(idx, n: int, what: str) -> torch.Tensor:
    """Validated int64 pool indices: 1-D, non-empty, unique, inside ``[0, n)``.

    Duplicates are refused because ``index_add`` would inject the same input twice into a neuron
    and the adapter count would no longer match the BPU definition (docs/method.md#bpu).
    """
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.size == 0:
        raise BPUInputError(f"{what}: expected a non-empty 1-D index array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise BPUInputError(f"{what}: expected integer neuron indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise BPUInputError(f"{what}: indices must lie in [0, {n}), got [{arr.min()}, {arr.max()}]")
    if np.unique(arr).size != arr.size:
        raise BPUInputError(f"{what}: contains duplicate neuron indices")
    return torch.from_numpy(arr.astype(np.int64))


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise BPUInputError(f"{what}: expected a positive integer, got {value!r}")
    return int(value)


INPUT_INITS = ("uniform", "one_to_one")


def _one_to_one(n_sensory: int, d_in: int) -> torch.Tensor:
    """W_in that starts as the identity: input channel i drives sensory neuron i (pool order = body-id order).

    Why: where a substrate's sensory neurons are laid out like the input (the embedded optic substrate has
    one lamina column per ommatidium, in lattice order), a uniform random W_in scrambles the retinotopy the
    wiring relies on, and gradient descent rarely recovers it. Every BPU model of a run starts from the
    same map onto the same sensory neurons, so controls get the same ordered input. W_in still trains.
    """
    if n_sensory != d_in:
        raise BPUInputError(f"training.input_init one_to_one needs as many sensory neurons as input channels; the "
                            f"sensory pool has {n_sensory} neurons and the task has {d_in} inputs (for "
                            "synthetic_optic, make synthetic_optic.hex_rings equal task.optic_flow.hex_rings)")
    return torch.eye(n_sensory, d_in)


class BPU(nn.Module):
    """Connectome recurrent core with trainable input/output adapters (docs/method.md#bpu).

    Per timestep t (h = 0 at sequence start): (``reset_each_step``: h <- 0);
    e_t = W_in u_t + b_in on the sensory neurons; microstep 1: h <- ReLU(W h + scatter_S(e_t));
    microsteps 2..K: h <- ReLU(W h); y_t = W_out h[O] + b_out after the K-th microstep.
    With ``plasticity`` (connectome_bpu.plasticity) the synapses onto output neurons are depressed by a
    teaching signal during the sequence: W[j, k] becomes W[j, k] exp(-A[j, k](t)) on those edges.

    Trainable parameters, in order: ``[W_rec_values | W_rec,] W_in, b_in, W_out, b_out[, W_mod, b_mod]``.
    A trainable recurrent tensor is owned by the operator and tied here (registered first) so that
    ``parameters()`` lists it first, the way the trainer expects.
    """

    def __init__(
        self,
        W: sp.csr_matrix,
        sensory_idx,
        output_idx,
        *,
        K: int,
        input_dim: int,
        output_dim: int,
        reset_each_step: bool = False,
        train_mode: str = "frozen",
        runtime: str = "auto",
        device: torch.device | str,
        dense_max_neurons: int = 20000,
        input_init: str = "uniform",
        plasticity: dict | None = None,
    ):
        super().__init__()
        self.K = _positive_int(K, "K (microsteps per timestep)")
        d_in = _positive_int(input_dim, "input_dim")
        d_out = _positive_int(output_dim, "output_dim")
        if not sp.issparse(W):
            raise BPUInputError(f"recurrent matrix: expected scipy.sparse, got {type(W).__name__}")
        n = int(W.shape[0])
        sensory = _index_tensor(sensory_idx, n, "sensory_idx")
        output = _index_tensor(output_idx, n, "output_idx")
        device = torch.device(device)
        self.reset_each_step = bool(reset_each_step)

        # Adapters are drawn first and on the CPU generator, so a seed set just before
        # construction gives identical adapters for every BPU variant and on every device.
        n_s, n_o = sensory.numel(), output.numel()
        bound_in, bound_out = 1.0 / math.sqrt(d_in), 1.0 / math.sqrt(n_o)
        w_in = torch.empty(n_s, d_in).uniform_(-bound_in, bound_in)
        w_out = torch.empty(d_out, n_o).uniform_(-bound_out, bound_out)
        if input_init == "one_to_one":
            w_in = _one_to_one(n_s, d_in)
        elif input_init != "uniform":
            raise BPUInputError(f"training.input_init is {input_init!r}; expected one of {', '.join(INPUT_INITS)}")

        self.recurrent = build_operator(
            W, train_mode=train_mode, runtime=runtime, device=device,
            dense_max_neurons=dense_max_neurons,
        )
        recurrent_param = self.recurrent.trainable()
        if recurrent_param is not None:
            name = "W_rec_values" if train_mode == "observed" else "W_rec"
            self.register_parameter(name, recurrent_param)
        self.W_in = nn.Parameter(w_in.to(device))
        self.b_in = nn.Parameter(torch.zeros(n_s, device=device))
        self.W_out = nn.Parameter(w_out.to(device))
        self.b_out = nn.Parameter(torch.zeros(d_out, device=device))
        # Pool indices are derived artefacts (pool_assignments.csv), like W: not checkpointed.
        self.register_buffer("sensory_idx", sensory.to(device), persistent=False)
        self.register_buffer("output_idx", output.to(device), persistent=False)
        self.plastic = None
        if is_plastic(plasticity):
            self.plastic = OutputPlasticity(W, output, input_dim=d_in, retention=plasticity["retention"],
                                            device=device)

    @property
    def n_neurons(self) -> int:
        return self.recurrent.n

    @property
    def train_mode(self) -> str:
        return self.recurrent.train_mode

    @property
    def runtime(self) -> str:
        return self.recurrent.runtime

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Map inputs ``(B, T, d_in)`` to outputs ``(B, T, d_out)``.

        Work outside the T x K loop is batched over time (all injections in one matmul, all
        readouts in one matmul); inside it every microstep is one product plus in-place ReLU,
        with the injection added in place on the first microstep. A state known to be zero
        (sequence start, or every step with ``reset_each_step``) skips the product W @ 0.
        """
        if u.dim() != 3 or u.shape[1] == 0 or u.shape[2] != self.W_in.shape[1]:
            raise BPUInputError(
                f"BPU input: expected shape (B, T >= 1, {self.W_in.shape[1]}), got {tuple(u.shape)}"
            )
        batch, steps, d_in = u.shape
        step = self.recurrent.step_fn()
        # (T, n_s, B): injection e_t for every timestep, laid out like the (N, B) state.
        inject = torch.addmm(self.b_in, u.reshape(batch * steps, d_in), self.W_in.t())
        inject = inject.view(batch, steps, -1).permute(1, 2, 0).contiguous()
        state_shape = (self.recurrent.n, batch)
        plastic = self.plastic
        if plastic is not None:
            teaching, weights = plastic.teaching(u), plastic.weights(self.recurrent)
        h = lost = None
        readouts = []
        for t in range(steps):
            if h is None or self.reset_each_step:
                pre = torch.zeros(state_shape, dtype=inject.dtype, device=inject.device)
                depression = lost = trace = None   # nothing carries over, depression included
            else:
                pre, trace = self._product(step, h, lost)
            h = pre.index_add_(0, self.sensory_idx, inject[t]).relu_()
            for _ in range(self.K - 1):
                pre, sent = self._product(step, h, lost)
                trace = sent if trace is None else trace + sent
                h = pre.relu_()
            if plastic is not None and trace is not None:
                depression = plastic.depressed(depression, trace, teaching[t])
                lost = plastic.loss_of_weight(weights, depression)
            readouts.append(h.index_select(0, self.output_idx))
        # (T, n_o, B) -> (T, d_out, B) -> (B, T, d_out)
        y = torch.matmul(self.W_out, torch.stack(readouts)) + self.b_out.unsqueeze(1)
        return y.permute(2, 0, 1).contiguous()

    def _product(self, step, h: torch.Tensor, lost: torch.Tensor | None):
        """One microstep's ``W h`` (with plasticity, less what depression ``lost`` takes off the synapses onto
        output neurons) and what the plastic synapses sent (None without plasticity)."""
        pre = step(h)
        if self.plastic is None:
            return pre, None
        sent = self.plastic.presynaptic(h)
        if lost is not None:
            self.plastic.transmit(pre, sent, lost)
        return pre, sent


class GRUModel(nn.Module):
    """Baseline without a connectome: ``nn.GRU(d_in, H, batch_first=True)`` + ``nn.Linear(H, d_out)``.

    PyTorch default initialisation, as in the original benchmark (docs/method.md#baselines).
    """

    def __init__(self, input_dim: int, hidden_size: int, output_dim: int):
        super().__init__()
        self.gru = nn.GRU(
            _positive_int(input_dim, "input_dim"),
            _positive_int(hidden_size, "GRU hidden size"),
            batch_first=True,
        )
        self.readout = nn.Linear(hidden_size, _positive_int(output_dim, "output_dim"))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru(u)
        return self.readout(hidden)


def gru_parameter_count(hidden: int, input_dim: int, output_dim: int) -> int:
    """Trainable scalars of ``GRUModel``: 3 gates x (H*d_in + H*H + 2H) plus the H x d_out readout."""
    return 3 * hidden * (input_dim + hidden + 2) + hidden * output_dim + output_dim


def reference_gru_hidden(n_neurons: int, max_hidden: int = 256) -> int:
    """The original benchmark's GRU width, ``min(max_hidden, N)`` (not parameter-matched;
    docs/departures.md#baselines)."""
    return min(_positive_int(max_hidden, "training.gru_reference_max_hidden"),
               _positive_int(n_neurons, "n_neurons"))


def matched_gru_hidden(target_params: int, d_in: int, d_out: int) -> int:
    """Hidden size whose ``gru_parameter_count`` is closest to ``target_params`` (ties: smaller H).

    The count is 3H^2 + (3 d_in + 6 + d_out) H + d_out; the positive root of count = target is
    computed and its integer neighbours compared, so the answer is exact, not a search.
    """
    target = _positive_int(target_params, "target parameter count")
    d_in, d_out = _positive_int(d_in, "d_in"), _positive_int(d_out, "d_out")
    a, b, c = 3.0, 3.0 * d_in + 6.0 + d_out, float(d_out - target)
    root = (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    candidates = {max(1, int(math.floor(root)) + k) for k in (-1, 0, 1, 2)}
    return min(candidates, key=lambda h: (abs(gru_parameter_count(h, d_in, d_out) - target), h))


def trainable_parameter_count(model: nn.Module) -> int:
    """Scalars the optimizer updates (each tied tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_bpu_trainable_count(
    n_sensory: int, n_output: int, d_in: int, d_out: int, *, train_mode: str, nnz: int, n: int,
    plastic: bool = False,
) -> int:
    """Closed form of sections 8.1/8.2: adapters n_s*d_in + n_s + d_out*n_o + d_out, plus nnz
    (observed) or N^2 (dense), plus the teaching-signal map of a plastic core
    (``plastic_parameter_count``). The trainer compares it with ``trainable_parameter_count``."""
    if train_mode not in TRAIN_MODES:
        raise BPUInputError(
            f"training.train_recurrent: {train_mode!r} is not one of {', '.join(TRAIN_MODES)}"
        )
    adapters = n_sensory * d_in + n_sensory + d_out * n_output + d_out
    if plastic:
        adapters += plastic_parameter_count(n_output, d_in)
    return adapters + {"frozen": 0, "observed": nnz, "dense": n * n}[train_mode]


def build_model(
    name: str,
    *,
    W: sp.csr_matrix,
    sensory_idx,
    output_idx,
    K: int,
    input_dim: int,
    output_dim: int,
    seed: int,
    train_mode: str,
    runtime: str,
    device: torch.device | str,
    dense_max_neurons: int,
    gru_max_hidden: int = 256,
    input_init: str = "uniform",
    plasticity: dict | None = None,
) -> nn.Module:
    """Construct model ``name`` on ``device`` with ``torch.manual_seed(seed)`` set right before.

    BPU variants and controls all run on the ``W`` the caller passes (the control matrix for a
    control); ``no_recurrence`` runs on the primary W with the state reset every timestep. GRUs
    ignore ``train_mode``/``runtime``. ``gru_matched`` matches the trainable count of
    the frozen BPU adapters for the same pools and dims (docs/method.md#baselines), so it is the same
    model whatever recurrent-training mode the BPUs use; with ``plasticity`` it also matches the
    teaching-signal map the plastic BPUs train.
    """
    if name == MEAN_PREDICTOR:
        raise BPUInputError(
            "model 'mean_predictor' is not a trainable nn.Module: it is the per-timestep mean "
            "target of the train split, computed in connectome_bpu.metrics"
        )
    if name not in MODEL_NAMES:
        raise BPUInputError(f"model {name!r} is unknown; expected one of {', '.join(MODEL_NAMES)}")
    device = torch.device(device)
    if name in ("gru", "gru_matched"):
        if name == "gru":
            hidden = reference_gru_hidden(int(W.shape[0]), gru_max_hidden)
        else:
            target = expected_bpu_trainable_count(
                len(sensory_idx), len(output_idx), input_dim, output_dim,
                train_mode="frozen", nnz=int(W.nnz), n=int(W.shape[0]),
                plastic=is_plastic(plasticity),
            )
            hidden = matched_gru_hidden(target, input_dim, output_dim)
        torch.manual_seed(seed)
        return GRUModel(input_dim, hidden, output_dim).to(device)
    torch.manual_seed(seed)
    return BPU(
        W, sensory_idx, output_idx, K=K, input_dim=input_dim, output_dim=output_dim,
        reset_each_step=(name == NO_RECURRENCE), train_mode=train_mode, runtime=runtime,
        device=device, dense_max_neurons=dense_max_neurons, input_init=input_init, plasticity=plasticity,
    )


__all__ = [
    "BPU",
    "GRUModel",
    "build_model",
    "expected_bpu_trainable_count",
    "gru_parameter_count",
    "matched_gru_hidden",
    "reference_gru_hidden",
    "trainable_parameter_count",
]
