"""Within-episode plasticity of the synapses onto the output pool: reward-gated depression.

Why: a frozen core can only hold a memory in its activity, and recalling an odour's valence needs the
product of the odour shown now with a valence stored earlier. An insect mushroom body does not do this
with activity: dopaminergic neurons depress the Kenyon-cell -> output-neuron synapses that were active
while an odour was smelt with reward or punishment, and the depressed synapses answer the next time that
odour comes (docs/plasticity.md).

The rule, for every stored edge ``k -> j`` of the core whose postsynaptic neuron ``j`` is in the output
pool (the structural weight ``W[j, k]`` is frozen or observed, as ``train_recurrent`` says):

* the synapse transmits ``W[j, k] * exp(-A[j, k]) * h_k``: a depression ``A >= 0`` per synapse and
  sequence, 0 at the sequence's start, can silence it but never strengthen it, so plasticity never raises
  a core's spectral radius (for an unsigned core) and no control can run away through it;
* after each timestep ``A <- retention * A + relu(m_j(t)) * relu(e_k(t) / mean(e(t)) - 1)``: ``e_k`` is
  the activity ``k`` sent through the synapse during the timestep (its state summed over the microsteps'
  products), and only a presynaptic neuron more active than the mean over all plastic synapses of the
  same sequence marks its synapse (a plasticity threshold: it keeps the mark specific to what stood out
  in that timestep, and the size of a change does not depend on a core's overall activity level);
  ``m_j(t) = W_mod[j] . u_t + b_mod[j]`` is a teaching signal read from the timestep's input, one per
  output neuron (what reinforcement delivers through dopaminergic neurons). ``retention`` < 1 lets old
  depression recover, so a later pairing outweighs an earlier one.

The teaching signal does not travel through the graph, so every core of a comparison gets the same
one; cores differ in which synapses onto output neurons exist, how strong they are and what their
presynaptic neurons carry. ``no_recurrence`` keeps nothing from one timestep to the next, depression
included.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .errors import BPUInputError
from .matrix import float32_csr

_TINY = 1e-12   # keeps the threshold finite when no plastic synapse carried any activity


class OutputPlasticity(nn.Module):
    """The depression of the module docstring for one core; ``BPU.forward`` says where it acts."""

    def __init__(self, W: sp.spmatrix, output_idx: torch.Tensor, *, input_dim: int, retention: float,
                 device: torch.device):
        super().__init__()
        if not 0.0 <= float(retention) <= 1.0:
            raise BPUInputError(f"training.plasticity.retention must lie in [0, 1], got {retention!r}")
        self.retention = float(retention)
        csr = float32_csr(W)   # the operator's own edge order, so CSR positions address its values
        rows = output_idx.cpu().numpy()
        starts = csr.indptr[rows]
        counts = csr.indptr[rows + 1] - starts
        if counts.sum() == 0:
            raise BPUInputError("training.plasticity: no stored edge ends on an output-pool neuron, so there is "
                                "no synapse to make plastic")
        # Every stored position of every output row, vectorised (the output pool can hold thousands of neurons):
        # the row's start repeated over its edges plus each edge's rank within its row.
        slot = np.repeat(np.arange(rows.size), counts)
        first = np.cumsum(counts) - counts      # index of each row's first edge among the plastic synapses
        positions = starts[slot] + np.arange(slot.size) - first[slot]
        # Drawn on the CPU generator after the adapters, so every BPU variant of a seed starts alike.
        bound = 1.0 / math.sqrt(input_dim)
        self.W_mod = nn.Parameter(torch.empty(rows.size, input_dim).uniform_(-bound, bound).to(device))
        self.b_mod = nn.Parameter(torch.zeros(rows.size, device=device))
        for name, index in (("positions", positions), ("pre", csr.indices[positions]), ("post", rows[slot]),
                            ("slot", slot)):
            self.register_buffer(name, torch.from_numpy(np.asarray(index, dtype=np.int64)).to(device),
                                 persistent=False)

    @property
    def n_synapses(self) -> int:
        return int(self.pre.numel())

    def teaching(self, u: torch.Tensor) -> torch.Tensor:
        """``relu(m)`` of every plastic synapse at every timestep, ``(T, n_synapses, B)``, from ``(B, T, d_in)``."""
        batch, steps, d_in = u.shape
        m = torch.addmm(self.b_mod, u.reshape(batch * steps, d_in), self.W_mod.t()).relu()
        return m.view(batch, steps, -1).permute(1, 2, 0).index_select(1, self.slot)

    def weights(self, recurrent) -> torch.Tensor:
        """The structural weights of the plastic synapses, ``(n_synapses, 1)``, read once per sequence."""
        return recurrent.entries(self.positions, self.post, self.pre).unsqueeze(1)

    def presynaptic(self, h: torch.Tensor) -> torch.Tensor:
        """What each plastic synapse's presynaptic neuron sends in a product with state ``h`` (N, B)."""
        return h.index_select(0, self.pre)

    def loss_of_weight(self, weights: torch.Tensor, depression: torch.Tensor) -> torch.Tensor:
        """``W (exp(-A) - 1)``: what depression takes off each synapse's weight, ``(n_synapses, B)``."""
        return weights * torch.expm1(-depression)

    def transmit(self, pre_activation: torch.Tensor, sent: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
        """Take the depressed share ``lost * sent`` off the postsynaptic neurons' input, in place."""
        return pre_activation.index_add_(0, self.post, lost * sent)

    def depressed(self, depression: torch.Tensor | None, trace: torch.Tensor, teaching: torch.Tensor) -> torch.Tensor:
        """Depression after a timestep in which the plastic synapses sent ``trace`` (summed over microsteps)."""
        change = teaching * (trace / (trace.mean(0, keepdim=True) + _TINY) - 1.0).relu_()
        return change if depression is None else depression * self.retention + change
