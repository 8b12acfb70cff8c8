"""Cost of one update of every learning-rule arm as the sequence grows: seconds and peak memory against T.

What: seconds and peak memory of ONE update (one batch) of each learning-rule arm (``connectome_bpu.arms``) on a
BPU with a frozen core at hemibrain-CX size: a random graph of 7,349 neurons and 511,930 edges
(``random_connectome``, seed 1, spectral radius 0.95), random pools of 741 sensory / 591 output neurons (seed 2),
K 3, batch 32, d_in 2, d_out 35 (``TaskSpec("cx_polar_bump")`` with 32 heading bins and its loss; random inputs
and random targets in [0, 1]), for every sequence length T of ``--T``. The arms' knobs are the repository's
``config.yaml`` ``training.learning_rules`` block (``learning_rules.arm_params``): tbptt and ccdni truncate at
its ``window``, fa and pal use its ``credit_window``, fa/pal/gle its ``through_core``. One update is:

  bptt   zero_grad, ``spec.loss_sums(model(u), y)``, (sum / count).backward(), gradient-norm clip, Adam step
         (``training.train_model`` without an arm): the plain implementation the others are compared with
  tbptt, ccdni, fa, pal
         ``arm.train_batch``: ``truncated_backward`` over the sequence, one optimiser step per batch
  gle    ``arm.train_batch``: errors run forward in time under ``torch.no_grad``, an optimiser step at every
         timestep
  readout
         ``arm.train_batch``: bptt for the readout only (the input adapter is never credited), the floor

Why: the arms other than bptt exist partly for what they cost. bptt keeps the whole T x K microstep graph until
its backward pass, so its memory grows linearly with T; truncation bounds what one window keeps; gle keeps
nothing across timesteps, so its memory should not depend on T at all, at the price of T optimiser steps per
update. This script puts those claims in numbers on the machine it runs on, each arm beside bptt at the same T.

Cases: every (arm, T) pair of ``--arms`` (every arm of ``model_names.ARMS`` by default) x ``--T`` runs in its
own subprocess (``child_steps.in_subprocess``), so its peak is its own: on CPU the peak RSS of that process
(interpreter, torch and the graph included; the RSS before the updates is printed beside it, and "update MiB"
is the peak of the updates alone above that RSS), on CUDA ``torch.cuda.max_memory_allocated``. Each case does
one warm-up update, then ``--reps`` timed ones; the median and the minimum are printed (the minimum is the
better estimate of the uncontended cost on a shared machine), with seconds per timestep and the ratios to bptt
at the same T. A second table gives, per arm, the growth of memory from the smallest to the largest T in MiB
per 100 timesteps.

Usage: python bench/bench_learning_rules.py [--arms bptt,tbptt,...] [--T 50,200,800]
                                            [--reps 3] [--threads 2] [--device cpu|cuda] [--quick]
  --quick  a fast smoke run: 2,000 neurons, 100,000 edges, T 50,200 (unless --T is given)

A benchmark, not a test: it asserts nothing and its numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_training_step import (  # noqa: E402
    THREADS,
    _reset_peak_rss,
    _rss_kib,
    load,
    pools,
    random_connectome,
)
from child_steps import comma_choices, in_subprocess, parse_or_run_child  # noqa: E402

from connectome_bpu.arms import build_arm  # noqa: E402
from connectome_bpu.learning_rules import arm_params  # noqa: E402
from connectome_bpu.model_names import ARMS, BPTT  # noqa: E402
from connectome_bpu.models import BPU  # noqa: E402
from connectome_bpu.tasks import TaskSpec  # noqa: E402

FULL = {"neurons": 7_349, "edges": 511_930, "T": "50,200,800"}     # hemibrain central complex
QUICK = {"neurons": 2_000, "edges": 100_000, "T": "50,200"}
N_SENSORY, N_OUTPUT, K = 741, 591, 3
BATCH, HEADING_BINS = 32, 32
SPEC = TaskSpec("cx_polar_bump", heading_bins=HEADING_BINS)      # d_in 2, d_out 35
GRAPH_SEED, POOL_SEED, INIT_SEED, DATA_SEED, ARM_SEED = 1, 2, 0, 3, 0
WARMUP = 1


def learning_rules_config() -> dict:
    """The ``training`` settings an update needs: lr, grad_clip and the ``learning_rules`` block."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    training = config["training"]
    return {"lr": float(training["lr"]), "grad_clip": float(training["grad_clip"]),
            "learning_rules": training["learning_rules"]}


# ---------------------------------------------------------------------------------------------------
# child side: one (arm, T) case per process
# ---------------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bptt_update(model: BPU, optimizer, params, grad_clip: float):
    def update(u: torch.Tensor, y: torch.Tensor, key: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        total, count = SPEC.loss_sums(model(u), y)
        (total / count).backward()
        nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    return update


def run_step(step: str, folder: Path) -> str:
    """Build the model on the saved graph, time one arm's updates at one T, return one JSON line."""
    arm_name, steps = step.split("@")
    steps = int(steps)
    settings = json.loads((folder / "settings.json").read_text())
    torch.set_num_threads(settings["threads"])
    device = torch.device(settings["device"])
    cuda = device.type == "cuda"
    W = sp.load_npz(folder / "graph.npz")
    sensory, output = pools(W.shape[0], N_SENSORY, N_OUTPUT, seed=POOL_SEED)
    torch.manual_seed(INIT_SEED)
    model = BPU(W, sensory, output, K=K, input_dim=SPEC.input_dim, output_dim=SPEC.output_dim,
                train_mode="frozen", runtime="auto", device=device)
    del W
    gen = torch.Generator().manual_seed(DATA_SEED)
    u = torch.randn(BATCH, steps, SPEC.input_dim, generator=gen).to(device)
    y = torch.rand(BATCH, steps, SPEC.output_dim, generator=gen).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if arm_name == BPTT:
        optimizer = torch.optim.Adam(params, lr=settings["lr"])
        update = _bptt_update(model, optimizer, params, settings["grad_clip"])
    else:
        arm = build_arm(model, SPEC, arm_params(settings["learning_rules"], arm_name), seed=ARM_SEED)
        optimizer = torch.optim.Adam(params, lr=settings["lr"] * arm.lr_scale(steps))

        def update(u, y, key):
            arm.train_batch(u, y, optimizer, params, settings["grad_clip"], batch_key=key)

    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
        reset = False
    else:
        reset = _reset_peak_rss()
        before = _rss_kib("VmRSS") / 1024
    times = []
    for i in range(WARMUP + settings["reps"]):
        _sync(device)
        start = time.perf_counter()
        update(u, y, i)
        _sync(device)
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    if cuda:
        peak_updates = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_updates = _rss_kib("VmHWM") / 1024 if reset else None
    return json.dumps({
        "median": float(np.median(times)), "min": float(np.min(times)), "before_mib": before,
        "peak_updates_mib": peak_updates, "runtime": model.runtime,
        "gpu_peak_mib": peak_updates if cuda else None,
    })


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------

def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:8.2f}x" if reference else f"{'-':>9}"


def print_tables(rows: dict[tuple[str, int], tuple[dict, float]], arms: list[str], lengths: list[int],
                 cuda: bool) -> None:
    memory = ("alloc before MiB", "GPU peak MiB") if cuda else ("RSS before MiB", "peak RSS MiB")
    print(f"{'arm':<7} {'T':>5} {'median s':>9} {'min s':>8} {'ms/timestep':>11} {memory[0]:>16} "
          f"{memory[1]:>12} {'update MiB':>10} {'time/bptt':>9} {'peak/bptt':>9} {'upd/bptt':>9}")
    for T in lengths:
        reference = rows.get((BPTT, T))
        for arm in arms:
            if (arm, T) not in rows:
                continue
            result, peak = rows[(arm, T)]
            ref = reference[0] if reference else None
            print(f"{arm:<7} {T:5d} {result['median']:9.3f} {result['min']:8.3f} "
                  f"{1e3 * result['median'] / T:11.2f} {result['before_mib']:16.0f} {peak:12.0f} "
                  f"{result['update_mib']:10.0f} "
                  f"{_ratio(result['median'], ref['median'] if ref else None)} "
                  f"{_ratio(peak, reference[1] if reference else None)} "
                  f"{_ratio(result['update_mib'], ref['update_mib'] if ref else None)}")
    if len(lengths) < 2:
        return
    low, high = min(lengths), max(lengths)
    print(f"\nGrowth from T {low} to T {high} (MiB per 100 timesteps; time as ms per timestep at each end):")
    print(f"{'arm':<7} {memory[1] + ' /100 T':>20} {'update MiB /100 T':>18} "
          f"{f'ms/step T {low}':>13} {f'ms/step T {high}':>13}")
    for arm in arms:
        if (arm, low) not in rows or (arm, high) not in rows:
            continue
        (a, peak_a), (b, peak_b) = rows[(arm, low)], rows[(arm, high)]
        per = 100.0 / (high - low)
        print(f"{arm:<7} {(peak_b - peak_a) * per:20.1f} {(b['update_mib'] - a['update_mib']) * per:18.1f} "
              f"{1e3 * a['median'] / low:13.2f} {1e3 * b['median'] / high:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of: " + ", ".join(ARMS))
    parser.add_argument("--T", default=None, help=f"comma-separated sequence lengths (default {FULL['T']}; "
                                                  f"{QUICK['T']} with --quick)")
    parser.add_argument("--reps", type=int, default=3, help="timed updates per case (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads in every case")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="2,000 neurons, 100,000 edges, T 50,200")
    args = parse_or_run_child(parser, run_step)
    if args is None:
        return
    arms = comma_choices(parser, args.arms, ARMS, "arm")
    size = QUICK if args.quick else FULL
    try:
        lengths = sorted({int(t) for t in (args.T or size["T"]).split(",") if t.strip()})
    except ValueError:
        parser.error(f"--T must be comma-separated integers, got {args.T!r}")
    if not lengths or min(lengths) < 1:
        parser.error("--T needs at least one length >= 1")
    cuda = torch.device(args.device).type == "cuda"
    settings = {"device": args.device, "threads": args.threads, "reps": args.reps, **learning_rules_config()}
    rules = settings["learning_rules"]
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPUs, {load()} before")
    rows: dict[tuple[str, int], tuple[dict, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_learning_rules_") as root:
        folder = Path(root)
        W = random_connectome(size["neurons"], size["edges"], seed=GRAPH_SEED)
        sp.save_npz(folder / "graph.npz", W, compressed=False)
        (folder / "settings.json").write_text(json.dumps(settings))
        print(f"== One update per arm vs T: N={W.shape[0]}, nnz={W.nnz}, density={W.nnz / W.shape[0]**2:.3%}, "
              f"pools {N_SENSORY}/{N_OUTPUT}, K={K}, B={BATCH}, d_in={SPEC.input_dim}, d_out={SPEC.output_dim} "
              f"({SPEC.name}), T={','.join(map(str, lengths))}, device={args.device}, threads={args.threads}, "
              f"{WARMUP} warm-up + {args.reps} timed updates per case (graph built in "
              f"{time.perf_counter() - started:.1f} s)")
        print(f"Arm knobs (config.yaml training.learning_rules): window {rules['window']}, credit_window "
              f"{rules['credit_window']}, through_core {rules['through_core']}, ccdni hidden "
              f"{rules['ccdni']['hidden']} x {rules['ccdni']['layers']} layers, rank {rules['ccdni']['rank']}")
        del W
        for T in lengths:
            for arm in arms:
                result, rss = in_subprocess(__file__, f"{arm}@{T}", folder)
                peak = result["gpu_peak_mib"] if cuda else rss
                updates = result["peak_updates_mib"] if result["peak_updates_mib"] is not None else peak
                result["update_mib"] = max(updates - result["before_mib"], 0.0)
                rows[(arm, T)] = (result, peak)
                print(f"{arm} T {T}: median {result['median']:.3f} s/update, {peak:.0f} MiB peak "
                      f"(runtime {result['runtime']})", file=sys.stderr, flush=True)
    print_tables(rows, arms, lengths, cuda)
    print(f"update MiB: peak {'allocation' if cuda else 'RSS'} during the updates above what was held before "
          f"them; ratios are to bptt at the same T (time: medians).")
    print(f"(finished in {time.perf_counter() - started:.0f} s with {load()})")


if __name__ == "__main__":
    main()
