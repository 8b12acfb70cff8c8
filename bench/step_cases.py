"""What the training-step benches of the task families share: the project model of a case and the table.

Each family bench (``bench_associative_step.py``, ``bench_optic_flow_step.py``) times a reference-style
model beside this project's ``BPU`` in the same cases: the same computation (all N neurons in and out, one
microstep) and the pipeline's own configuration (random pools, K microsteps), frozen or observed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.models import BPU  # noqa: E402

from bench_training_step import pools


def project_bpu(W: sp.csr_matrix, device: torch.device, *, train_mode: str, runtime: str, on_pools: bool,
                n_sensory: int, n_output: int, K: int, input_dim: int, output_dim: int, pool_seed: int,
                plasticity: dict | None = None) -> BPU:
    """A project BPU on ``W``: random pools of ``n_sensory``/``n_output`` neurons and ``K`` microsteps
    (``on_pools``), or all N neurons in and out with one microstep (the reference-style computation);
    ``plasticity`` as ``training.plasticity`` (docs/plasticity.md)."""
    n = W.shape[0]
    if on_pools:
        sensory, output = pools(n, n_sensory, n_output, seed=pool_seed)
    else:
        sensory = output = np.arange(n)
        K = 1
    return BPU(W, sensory, output, K=K, input_dim=input_dim, output_dim=output_dim, train_mode=train_mode,
               runtime=runtime, device=device, plasticity=plasticity)


def print_step_table(rows: list[tuple[str, dict, float]], label: Callable[[str], str], cuda: bool) -> None:
    """One line per case: runtime, trainable count, median and minimum s/step, memory, and the speed-up over
    the ``reference`` case when it ran (a case whose result says ``skipped`` prints why instead)."""
    memory = ("GPU alloc before MiB", "GPU peak MiB") if cuda else ("RSS before steps MiB", "peak RSS MiB")
    print(f"{'case':<54} {'runtime':>7} {'trainable':>10} {'median s/step':>13} {'min s/step':>10} "
          f"{memory[0]:>20} {memory[1]:>12} {'speed-up median':>15} {'speed-up min':>12}")
    reference = next((result for name, result, _ in rows if name == "reference" and "skipped" not in result), None)
    for name, result, peak in rows:
        if "skipped" in result:
            print(f"{label(name):<54} skipped: {result['skipped']}")
            continue
        if reference is None:
            ratios = f"{'-':>15} {'-':>12}"
        else:
            ratios = f"{reference['median'] / result['median']:14.1f}x {reference['min'] / result['min']:11.1f}x"
        print(f"{label(name):<54} {result['runtime']:>7} {result['trainable']:>10,} {result['median']:13.3f} "
              f"{result['min']:10.3f} {result['before_mib']:20.0f} {peak:12.0f} {ratios}")
