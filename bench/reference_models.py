"""The reference-style recurrent model the training-step benches time beside this project's ``BPU``.

It re-implements the original benchmark's per-family recurrent model (it is not that code): state
(B, N), h_0 = 0, one recurrent step per input step,

    h_t = min(ReLU(W h_{t-1} + W_in x_t + b_in), clip),    y_t = W_out h_t + b_out,

with the input reaching all N neurons and the readout reading all N, one trainable value per stored
edge of W (fixed support), and ``torch.sparse.mm(W, h.T).T`` on a COO tensor built from (indices,
values) and coalesced. The families differ only in how often that tensor is built:

* ``rebuild_every_step=True`` (the associative family): rebuilt and coalesced at every timestep;
* ``rebuild_every_step=False`` (the optic-flow family): built and coalesced once per forward pass.

Cost to know when sizing a run: autograd's gradient of ``torch.sparse.mm`` with respect to a COO
operand's values forms the dense (N, N) product ``grad_out @ h`` before masking it to the support
(measured with torch 2.13: peak memory grows by N^2 x 4 bytes per backward call, and the time is that
of a dense (N, B) x (B, N) GEMM). So the reference-style step costs O(N^2 B T) time and O(N^2) memory
whatever the number of edges; this project's observed runtime samples the product at the support only.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

STATE_CLIP = 5.0   # the reference-style model's ceiling on the state


class ReferenceRecurrent(nn.Module):
    """Reference-style recurrent model (see the module docstring), ``d_out`` outputs per step.

    The adapters are drawn in the same order and from the same bounds as ``BPU``'s with all N neurons
    as sensory and output pools (W_in (N, d_in) uniform +-d_in^-1/2, then W_out (d_out, N) uniform
    +-N^-1/2, on the CPU generator), so after the same seed both start with equal adapters.
    """

    def __init__(self, W: sp.csr_matrix, d_in: int, d_out: int, device: torch.device, *,
                 rebuild_every_step: bool, state_clip: float = STATE_CLIP):
        super().__init__()
        self.n = W.shape[0]
        self.rebuild_every_step = bool(rebuild_every_step)
        self.state_clip = float(state_clip)
        coo = W.tocoo()
        self.register_buffer("indices", torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)).to(device))
        self.values = nn.Parameter(torch.from_numpy(coo.data).to(device))
        w_in = torch.empty(self.n, d_in).uniform_(-d_in**-0.5, d_in**-0.5)
        w_out = torch.empty(d_out, self.n).uniform_(-self.n**-0.5, self.n**-0.5)
        self.W_in = nn.Parameter(w_in.to(device))
        self.b_in = nn.Parameter(torch.zeros(self.n, device=device))
        self.W_out = nn.Parameter(w_out.to(device))
        self.b_out = nn.Parameter(torch.zeros(d_out, device=device))

    @property
    def runtime(self) -> str:
        """Label of the recurrent product, printed in the benches' runtime column."""
        return "coo"

    def coalesced(self) -> torch.Tensor:
        """W as a coalesced COO tensor of the current values (gradients flow to ``values``)."""
        return torch.sparse_coo_tensor(self.indices, self.values, (self.n, self.n),
                                       check_invariants=False).coalesce()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(B, T, d_in) -> (B, T, d_out)."""
        h = u.new_zeros(u.shape[0], self.n)
        W = None if self.rebuild_every_step else self.coalesced()
        ys = []
        for t in range(u.shape[1]):
            if self.rebuild_every_step:
                W = self.coalesced()
            h = torch.relu(torch.sparse.mm(W, h.T).T + u[:, t] @ self.W_in.T + self.b_in).clamp(max=self.state_clip)
            ys.append(h @ self.W_out.T + self.b_out)
        return torch.stack(ys, dim=1)
