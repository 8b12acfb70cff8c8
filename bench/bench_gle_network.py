"""GLE network benchmark: milliseconds per online update (one dt) of the MNIST-1D check's network, this
project's ``GLENetwork`` against a reference-style stepping of the same network.

What: the published MNIST-1D network of ``gle_checks.MnistSettings`` (1 input, 6 hidden layers of 17 LE + 36 LI
units, 10 outputs; 14,956 parameters), a batch of 100 sequences, one online GLE update per step (forward
dynamics, prospective errors, local plasticity, a fused Adam step), 360 steps per timed repetition (one
sample's worth).

* ``project``: ``GLENetwork`` as it is: each layer's parameters and the Euler weights of its dynamics (ratios
  of time constants) are kept between steps and recomputed only when a time constant is written.
* ``reference-style``: the same class with that cache switched off, so that every step looks every parameter
  up in its ``nn.ParameterList`` and divides the time constants again, as a straightforward layered
  implementation does. The arithmetic is the same; the two runs give bit-identical outputs, which the script
  checks before timing.

Why: the MNIST-1D check updates every weight at every one of the 360 steps of every batch; at 150 epochs that
is 1.9 million updates per seed and arm, so the cost of one update sets whether the check fits in a working day.

Threads are pinned to 1 (the check runs each job on one core). Each case runs once to warm up, then
``--reps`` timed times; median and minimum are printed (the minimum is the better estimate of the uncontended
cost on a shared machine), with the ratio and the implied minutes per epoch and per 150-epoch run.

Usage: python bench/bench_gle_network.py [--reps 5] [--steps 360]

A benchmark, not a test: it asserts nothing about speed and its numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.gle import GLENetwork, _layer  # noqa: E402
from connectome_bpu.gle_checks import MNIST1D_DEFAULTS, mnist1d_network  # noqa: E402

BATCH = 100
TRAIN_SEQUENCES = 4000


class ReferenceStyle(GLENetwork):
    """``GLENetwork`` without its per-layer cache: every call looks each parameter up in its ParameterList and
    divides the time constants again (once per step, shared by the forward, error and plasticity halves)."""

    def _layers(self):
        biases = self.biases if self.biases is not None else [None] * len(self.weights)
        return tuple(_layer(self.weights[i], biases[i], self.tau_m[i], self.tau_r[i], self.phis[i], self.dt)
                     for i in range(len(self.weights)))


def _network(cls: type[GLENetwork]) -> GLENetwork:
    net = mnist1d_network(MNIST1D_DEFAULTS, "gle", seed=0)
    net.__class__ = cls
    return net


def _run(cls: type[GLENetwork], xs: torch.Tensor, labels: torch.Tensor, reps: int) -> tuple[list[float], torch.Tensor]:
    net = _network(cls)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    targets = labels.expand(xs.shape[0], -1)
    times, outputs = [], None
    for rep in range(reps + 1):
        net.reset_state(BATCH)
        started = time.perf_counter()
        ys = net.run_sequence(xs, targets, optimizer)
        if rep:
            times.append((time.perf_counter() - started) / xs.shape[0] * 1e3)
        outputs = ys if outputs is None else outputs
    return times, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=MNIST1D_DEFAULTS["steps_per_sample"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    xs = torch.randn(args.steps, BATCH, 1, generator=generator)
    labels = torch.randint(0, 10, (BATCH,), generator=generator)
    results = {name: _run(cls, xs, labels, args.reps) for name, cls in (("project", GLENetwork),
                                                                        ("reference-style", ReferenceStyle))}
    identical = torch.equal(results["project"][1], results["reference-style"][1])
    print(f"GLE online update, MNIST-1D network (14,956 parameters), batch {BATCH}, {args.steps} steps per "
          f"repetition, {args.reps} repetitions, 1 thread; first repetition's outputs identical: {identical}")
    steps_per_epoch = TRAIN_SEQUENCES // BATCH * MNIST1D_DEFAULTS["steps_per_sample"]
    print(f"{'implementation':<16} {'min ms/step':>12} {'median ms/step':>15} {'min s/epoch':>12} {'min min/150 ep':>15}")
    for name, (times, _) in results.items():
        best = min(times)
        print(f"{name:<16} {best:>12.3f} {statistics.median(times):>15.3f} {best * steps_per_epoch / 1e3:>12.1f} "
              f"{best * steps_per_epoch * 150 / 6e4:>15.1f}")
    ratio = min(results["reference-style"][0]) / min(results["project"][0])
    print(f"reference-style / project (minimum): {ratio:.2f}x")


if __name__ == "__main__":
    main()
