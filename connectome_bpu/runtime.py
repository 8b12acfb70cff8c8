"""The recurrent operator of the BPU: ``H -> W @ H`` for a connectome matrix ``W[post, pre]``.

The benchmark spends almost all of its time in this one product (T x K microsteps per batch, forward
and backward), so it is built for that loop:

* The state is kept as ``(N, B)`` (neurons x batch). ``W @ H`` is then a plain CSR x dense product
  and needs no transposes per microstep (the original benchmark multiplied ``(W @ h.T).T`` on a COO
  tensor, which costs two transposes and a COO kernel every microstep; docs/departures.md#csr-runtime).
* A frozen ``W`` runs as CSR inside a custom autograd Function whose backward is
  ``grad_h = W^T @ grad_out`` with a CSR ``W^T`` built once at construction: no gradient w.r.t. W
  is needed and no transpose/coalesce of W happens during training.
* ``train_mode="observed"`` trains one value per existing edge (fixed support). The CSR structure,
  its transpose and the CSR->CSC permutation of the values are precomputed; per sequence only the
  two value arrays change, and the value gradient is a sampled dense-dense product at the support
  (memory bounded by nnz), so no COO tensor is rebuilt or coalesced per step.
* ``train_mode="dense"`` trains the full ``N x N`` matrix (zeros included), refused above
  ``dense_max_neurons`` because its memory grows as N^2.

``runtime="auto"`` picks dense only where it is measurably faster (see ``choose_runtime``).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .errors import BPUInputError
from .matrix import float32_csr, square_size

TRAIN_MODES = ("frozen", "observed", "dense")
RUNTIMES = ("auto", "dense", "sparse")

# Smallest density (nnz / N^2) at which ``runtime="auto"`` picks dense, per device type.
# CPU: measured with ``bench/bench_training_step.py --sweep`` (one microstep forward + backward,
# 2 threads, MKL; minimum of repeated timings; N = 128..8192, density 0.01..0.6, B = 32 and 128).
# The crossover density did not depend on N: sparse won every cell below density 0.2 (at N = 8192,
# B = 32, density 0.01: 1.8 ms sparse vs 77 ms dense), dense won every cell at 0.6, and the break-even
# was ~0.3 at B = 128 (N = 2048: 12.4 ms sparse vs 12.5 ms dense) and ~0.5 at B = 32 (N = 8192 at 0.4:
# 61 ms sparse vs 77 ms dense). 0.3 sits between the two; a wrong choice near it costs < 2x, and
# connectomes are far below it (hemibrain CX 0.95 %, FlyWire 0.08 %).
# CUDA: NOT measured in this project yet (no GPU where the thresholds were derived). cuBLAS GEMM runs
# an order of magnitude more flops per second than cuSPARSE SpMM, so dense should win from a lower
# density; the original benchmark's published CX runs already had sparse ahead at 0.95 %. 0.1 is an
# estimate between those: rerun the sweep with --device cuda to refine it.
DENSE_MIN_DENSITY = {"cpu": 0.3, "cuda": 0.1}


def choose_runtime(n: int, nnz: int, device: torch.device, requested: str) -> str:
    """Return "dense" or "sparse" for a frozen core of ``n`` neurons and ``nnz`` stored edges.

    ``requested`` "dense"/"sparse" are returned unchanged. "auto" is a pure function of
    (n, nnz, device type) so the same substrate gets the same runtime on every run on the same kind
    of device (results are then bit-for-bit reproducible); it never looks at timings at run time.
    The rule is ``dense iff nnz / N^2 >= DENSE_MIN_DENSITY[device type]`` (the measurements behind
    the thresholds are in the comment on ``DENSE_MIN_DENSITY``); device types other than cuda use the CPU threshold.
    """
    if requested not in RUNTIMES:
        raise BPUInputError(
            f"training.runtime: {requested!r} is not one of {', '.join(RUNTIMES)}"
        )
    if requested != "auto":
        return requested
    if n <= 0:
        raise BPUInputError(f"recurrent matrix: need at least one neuron, got n={n}")
    device_type = torch.device(device).type
    threshold = DENSE_MIN_DENSITY.get(device_type, DENSE_MIN_DENSITY["cpu"])
    return "dense" if nnz / (n * n) >= threshold else "sparse"


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """Wrap existing index/value tensors as a CSR tensor (no copy, no validation, no coalesce).

    The structure was validated once by scipy at construction; re-checking it on every sequence
    would cost O(nnz). The wrapper itself is a few microseconds. The beta-status warning torch
    emits for CSR is silenced because it would repeat in every training log.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


def _spmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for CSR ``a`` and dense ``b`` as one kernel.

    ``torch.mm`` on a CSR operand zero-fills its result and copies it once more around the sparse
    kernel; ``addmm`` with ``beta=0`` into an uninitialised tensor does neither (beta=0 means the
    input is ignored, NaN included). That is 3x fewer passes over the (N, B) state per microstep,
    which also matters because each pass is a separately scheduled parallel region.
    """
    out = b.new_empty((a.shape[0], b.shape[1]))
    return torch.addmm(out, a, b, beta=0.0, out=out)


class _FrozenCSRMatmul(torch.autograd.Function):
    """``W @ H`` with W constant: backward is ``W^T @ grad`` using a precomputed CSR ``W^T``."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(wt)
        return _spmm(w, h)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (wt,) = ctx.saved_tensors
        return _spmm(wt, grad_out), None, None


class _ObservedCSRMatmul(torch.autograd.Function):
    """``W @ H`` where W's stored values (fixed support) are a trainable vector.

    ``w``/``wt`` are CSR views of the current values (``wt`` via the CSR->CSC permutation), built
    once per sequence by the caller. Gradients: ``grad_h = W^T @ grad_out`` and
    ``grad_values[e] = sum_b grad_out[row_e, b] * h[col_e, b]`` -- a sampled dense-dense product
    evaluated only at the support, so its memory is O(nnz) whatever the batch size.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, values: torch.Tensor, w: torch.Tensor, wt: torch.Tensor):
        ctx.save_for_backward(h, w, wt)
        return _spmm(w, h)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        h, w, wt = ctx.saved_tensors
        grad_h = _spmm(wt, grad_out) if ctx.needs_input_grad[0] else None
        grad_values = None
        if ctx.needs_input_grad[1]:
            # beta=0: the input's values are ignored; only its sparsity pattern is used.
            grad_values = torch.sparse.sampled_addmm(w, grad_out, h.t(), beta=0.0).values()
        return grad_h, grad_values, None, None


class RecurrentOperator(nn.Module):
    """``forward(H) = W @ H`` for a state ``H`` of shape ``(N, B)``; see the module docstring.

    Attributes ``runtime`` ("dense"/"sparse") and ``train_mode`` ("frozen"/"observed"/"dense") say
    which implementation runs. A frozen W lives in non-persistent buffers: it is a pipeline artefact
    (stored once per substrate/control/seed), so checkpoints and early-stopping copies of the
    state dict carry only what training changes. A trainable W is a Parameter named ``W_rec``
    (dense mode) or ``W_rec_values`` (observed mode).
    """

    def __init__(self, W: sp.csr_matrix, *, train_mode: str, runtime: str, device: torch.device):
        super().__init__()
        if train_mode not in TRAIN_MODES or runtime not in ("dense", "sparse"):
            raise BPUInputError(
                f"recurrent operator: train_mode {train_mode!r} / runtime {runtime!r} invalid; "
                "build it with build_operator(), which resolves runtime='auto'"
            )
        if (train_mode, runtime) in (("observed", "dense"), ("dense", "sparse")):
            raise BPUInputError(
                f"recurrent operator: train_mode={train_mode} cannot run on the {runtime} runtime "
                "(observed trains the stored edges, which only the sparse runtime has; dense trains "
                "every entry)"
            )
        csr = float32_csr(W)
        self.n = int(csr.shape[0])
        self.nnz = int(csr.nnz)
        self.train_mode = train_mode
        self.runtime = runtime
        if runtime == "dense":
            dense = torch.from_numpy(csr.toarray()).to(device)
            if train_mode == "dense":
                self.W_rec = nn.Parameter(dense)
            else:
                self.register_buffer("W_dense", dense, persistent=False)
            return
        # Sparse: int32 indices make the CPU CSR kernel ~5 % faster; observed mode keeps int64
        # because sampled_addmm would otherwise convert the indices to int64 on every backward.
        index_dtype = torch.int64 if train_mode == "observed" else torch.int32
        if max(self.n, self.nnz) >= np.iinfo(np.int32).max:
            index_dtype = torch.int64
        # CSR of W^T holds the same entries in CSC order of W; ``perm`` maps W's CSR value order
        # to that order, found by transposing a matrix whose values are the entry positions.
        positions = sp.csr_matrix(
            (np.arange(self.nnz, dtype=np.int64), csr.indices, csr.indptr), shape=csr.shape
        )
        transposed = positions.T.tocsr()
        transposed.sort_indices()
        perm = np.asarray(transposed.data, dtype=np.int64)

        def index(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(a)).to(device=device, dtype=index_dtype)

        self.register_buffer("crow", index(csr.indptr), persistent=False)
        self.register_buffer("col", index(csr.indices), persistent=False)
        self.register_buffer("t_crow", index(transposed.indptr), persistent=False)
        self.register_buffer("t_col", index(transposed.indices), persistent=False)
        values = torch.from_numpy(csr.data).to(device)
        if train_mode == "observed":
            self.register_buffer("perm", torch.from_numpy(perm).to(device), persistent=False)
            self.W_rec_values = nn.Parameter(values)
        else:
            self.register_buffer("values", values, persistent=False)
            self.register_buffer("t_values", values[torch.from_numpy(perm).to(device)], persistent=False)

    def trainable(self) -> nn.Parameter | None:
        """The trainable recurrent tensor, or None for a frozen core."""
        if self.train_mode == "observed":
            return self.W_rec_values
        if self.train_mode == "dense":
            return self.W_rec
        return None

    def nnz_or_nonzero(self) -> int:
        """Stored edges (sparse runtimes) or nonzero entries of the dense matrix (dense runtimes)."""
        if self.runtime == "sparse":
            return self.nnz
        matrix = self.W_rec if self.train_mode == "dense" else self.W_dense
        return int(torch.count_nonzero(matrix.detach()).item())

    def trainable_count(self) -> int:
        """Number of trainable recurrent scalars: 0 frozen, nnz observed, N^2 dense."""
        param = self.trainable()
        return 0 if param is None else param.numel()

    def entries(self, positions: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The current weights of some stored edges (trainable ones keep their gradient): sparse runtimes read
        them by their CSR positions in ``float32_csr(W)``, dense runtimes by ``(rows, cols)``."""
        if self.runtime == "dense":
            matrix = self.W_rec if self.train_mode == "dense" else self.W_dense
            return matrix[rows, cols]
        values = self.W_rec_values if self.train_mode == "observed" else self.values
        return values[positions]

    def step_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return ``H -> W @ H`` for the current weights, prepared once for a whole sequence.

        The CSR wrappers and (observed mode) the permuted transpose values are built here, once,
        instead of in each of the T x K microsteps that call the returned function.
        """
        if self.runtime == "dense":
            matrix = self.W_rec if self.train_mode == "dense" else self.W_dense
            return lambda h: torch.mm(matrix, h)
        if self.train_mode == "observed":
            values = self.W_rec_values
            detached = values.detach()
            w = _csr(self.crow, self.col, detached, self.n)
            wt = _csr(self.t_crow, self.t_col, detached[self.perm], self.n)
            return lambda h: _ObservedCSRMatmul.apply(h, values, w, wt)
        w = _csr(self.crow, self.col, self.values, self.n)
        wt = _csr(self.t_crow, self.t_col, self.t_values, self.n)
        return lambda h: _FrozenCSRMatmul.apply(h, w, wt)

    def transpose_step_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return ``G -> W^T @ G`` for a frozen core, without autograd: how the learning-rule arms send errors
        back through the core by hand (connectome_bpu.arms). It reuses the CSR transpose built once for the
        backward pass, so nothing is transposed per call."""
        if self.train_mode != "frozen":
            raise BPUInputError(f"recurrent operator: transpose_step_fn needs a frozen core, not {self.train_mode}")
        if self.runtime == "dense":
            return lambda g: torch.mm(self.W_dense.t(), g)
        wt = _csr(self.t_crow, self.t_col, self.t_values, self.n)
        return lambda g: _spmm(wt, g)

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        """``W @ H`` for ``H`` of shape ``(N, B)``; loops should call ``step_fn()`` once instead."""
        if H.dim() != 2 or H.shape[0] != self.n:
            raise BPUInputError(f"recurrent state: expected shape ({self.n}, B), got {tuple(H.shape)}")
        return self.step_fn()(H)

    def extra_repr(self) -> str:
        return f"n={self.n}, nnz={self.nnz}, runtime={self.runtime}, train_mode={self.train_mode}"


def build_operator(
    W: sp.csr_matrix,
    *,
    train_mode: str = "frozen",
    runtime: str = "auto",
    device: torch.device | str,
    dense_max_neurons: int = 20000,
) -> RecurrentOperator:
    """Build the recurrent operator for ``W[post, pre]`` on ``device``.

    Priority (docs/method.md#bpu): train mode "observed" forces sparse and "dense"
    forces dense (``runtime`` only selects for frozen cores); otherwise ``choose_runtime``.
    Any dense matrix above ``dense_max_neurons`` is refused up front, because it needs N^2 floats
    (77 GB at FlyWire size) and would otherwise fail deep inside an allocation.
    """
    if train_mode not in TRAIN_MODES:
        raise BPUInputError(
            f"training.train_recurrent: {train_mode!r} is not one of {', '.join(TRAIN_MODES)}"
        )
    if runtime not in RUNTIMES:
        raise BPUInputError(f"training.runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    device = torch.device(device)
    n = square_size(W)
    if train_mode == "observed":
        chosen = "sparse"
    elif train_mode == "dense":
        chosen = "dense"
    else:
        chosen = choose_runtime(n, int(W.nnz), device, runtime)
        if runtime == "auto" and chosen == "dense" and n > dense_max_neurons:
            chosen = "sparse"  # auto never picks what an explicit request would be refused
    if chosen == "dense" and n > dense_max_neurons:
        what = "train_recurrent=dense" if train_mode == "dense" else "runtime=dense"
        raise BPUInputError(
            f"training.dense_max_neurons: {what} needs a dense {n} x {n} matrix "
            f"({n * n * 4 / 1e9:.1f} GB float32) but N={n} exceeds dense_max_neurons="
            f"{dense_max_neurons}; use train_recurrent=frozen/observed with runtime sparse or auto"
        )
    return RecurrentOperator(W, train_mode=train_mode, runtime=chosen, device=device)


__all__ = [
    "DENSE_MIN_DENSITY",
    "RUNTIMES",
    "TRAIN_MODES",
    "RecurrentOperator",
    "build_operator",
    "choose_runtime",
]

