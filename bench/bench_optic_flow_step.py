"""Training-step benchmark of the optic-flow family at FlyWire optic-lobe size: this project's runtime
against a reference-style runtime that builds its COO matrix once per forward pass.

What: seconds of one training step (zero_grad, forward, the family's loss = MSE over steps t >= 1,
``OpticFlowSpec().loss_sums`` total / count, backward, Adam step; no gradient-norm clipping) and the
peak memory of that step's process, at FlyWire optic-lobe size: a random graph of 96,816 neurons and
8,757,188 edges (``random_connectome``, spectral radius 0.95), batch 64 episodes of the real task data
(``connectome_bpu.optic_flow.split_arrays(OpticFlowSpec(), SeedSequence(1), 64)``: T 16, input 61
ommatidia, 3 self-motion outputs). Beside the table it prints what those numbers imply for a training
job: the memory it would need on a 24 GB GPU at batch 64 and the time of one epoch of 2,048 training
episodes (32 steps of 64) on the CPU threads used here.

Why: the optic lobe is the largest region the pipeline trains this family on, so it decides whether
a job fits a GPU and how long a CPU run takes; and the reference-style model (trainable values on a
COO tensor built once per forward, ``torch.sparse.mm(W, h.T).T``) is the cost this project's CSR
runtime is meant to remove. The reference-style step is O(N^2) in time and memory whatever the edge
count (autograd's gradient with respect to COO values forms the dense (N, N) product before masking
it; see ``reference_models.py``): at full size that is 37.5 GB per backward call and, extrapolated
from --scale 0.2, at least ~9 minutes per step on 2 cores. So ``--scale s`` shrinks N, the edge count
and the pool sizes by the same factor for every case alike (batch, T and K stay) to time the
side-by-side comparison, and a case whose dense gradient cannot fit the device's free memory is
reported as skipped instead of being killed.

Cases (``--cases``, comma-separated; all by default):
  reference       reference-style (``reference_models.ReferenceRecurrent``): state (B, N),
                  h <- min(ReLU(W h + W_in x_t + b), 5), one recurrent step per input step, input to
                  and 3 outputs from all N neurons, trainable edge values, W built and coalesced once
                  per forward
  observed_all    project, the same computation: BPU observed, sparse runtime, all N neurons as sensory
                  and output pools, K 1; it has no state clip at 5 and skips W @ h while h is 0 (t = 0)
  observed_pools  project as the pipeline runs the family on the optic lobe: random pools of 627
                  sensory / 6,545 output neurons (the region pool rule's counts), K 3, runtime auto
  frozen_pools    as observed_pools with a frozen core

Every case runs in its own subprocess (``child_steps.in_subprocess``), so its peak is its own: peak
RSS of that process on CPU (interpreter, torch and the loaded graph included; the RSS before the
steps is printed beside it), ``torch.cuda.max_memory_allocated`` on CUDA. Each case does one warm-up
step (during which the tensors autograd keeps for backward are summed), then ``--reps`` timed steps;
median and minimum are printed (the minimum is the better estimate of the uncontended cost on a shared
machine), with the load average before and after.

Usage: python bench/bench_optic_flow_step.py [--device cpu|cuda] [--threads 2] [--reps 2] [--scale 1]
                                             [--cases reference,observed_all,...]

A benchmark, not a test: it asserts nothing and its numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.models import BPU, trainable_parameter_count  # noqa: E402
from connectome_bpu.optic_flow import OpticFlowSpec, split_arrays  # noqa: E402

from bench_training_step import THREADS, _rss_kib, load, random_connectome, time_train_step
from child_steps import comma_choices, in_subprocess, parse_or_run_child
from reference_models import STATE_CLIP, ReferenceRecurrent
from step_cases import print_step_table, project_bpu

N_NEURONS, N_EDGES, RHO = 96_816, 8_757_188, 0.95   # FlyWire optic lobe
N_SENSORY, N_OUTPUT, K_PIPELINE = 627, 6_545, 3      # region pool rule's counts on the optic lobe, pipeline K
BATCH = 64
SPEC = OpticFlowSpec()                               # T 16, input 61, 3 outputs
SPLIT_SEED = 1
GRAPH_SEED, POOL_SEED, INIT_SEED = 6, 7, 0
WARMUP = 1
EPOCH_EPISODES = 2048                                # one epoch: 32 steps of 64 episodes
GPU_BYTES = 24e9                                     # the GPU the estimate is for: 24 GB
GPU_RESERVE = 2**30                                  # left on it for the CUDA context and allocator caching
FREE_FRACTION = 0.9                                  # share of free memory the reference-style dense gradient may take
FLOAT = 4                                            # bytes of a float32
MIN_SCALE = 0.05   # density grows as 1/scale; below this random_connectome's 1 % oversampling draws too few cells


def sizes(scale: float) -> dict:
    """Neurons, edges and pool sizes at ``scale`` (1: the optic lobe); all shrink by the same factor."""
    return {"n": round(N_NEURONS * scale), "edges": round(N_EDGES * scale),
            "n_sensory": max(1, round(N_SENSORY * scale)), "n_output": max(1, round(N_OUTPUT * scale))}


def _project(train_mode: str, runtime: str, on_pools: bool):
    """Builder of a project BPU (:func:`step_cases.project_bpu`) at the run's sizes."""
    def build(W: sp.csr_matrix, size: dict, device: torch.device) -> BPU:
        return project_bpu(W, device, train_mode=train_mode, runtime=runtime, on_pools=on_pools,
                           n_sensory=size["n_sensory"], n_output=size["n_output"], K=K_PIPELINE,
                           input_dim=SPEC.input_dim, output_dim=SPEC.output_dim, pool_seed=POOL_SEED)
    return build


def _reference(W: sp.csr_matrix, size: dict, device: torch.device) -> ReferenceRecurrent:
    return ReferenceRecurrent(W, SPEC.input_dim, SPEC.output_dim, device, rebuild_every_step=False)


# name: (label, K, builder(W, sizes, device) -> model); labels are formatted with sizes()
CASES = {
    "reference": ("reference-style COO built once/forward, all N, K 1", 1, _reference),
    "observed_all": ("project observed CSR, all N, K 1 (no clip)", 1, _project("observed", "sparse", False)),
    "observed_pools": ("project observed, pools {n_sensory}/{n_output}, K " + str(K_PIPELINE), K_PIPELINE,
                       _project("observed", "auto", True)),
    "frozen_pools": ("project frozen, pools {n_sensory}/{n_output}, K " + str(K_PIPELINE), K_PIPELINE,
                     _project("frozen", "auto", True)),
}


def label(case: str, size: dict) -> str:
    return CASES[case][0].format(**size)


def flow_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The family's training loss: MSE over steps t >= 1 and the 3 components."""
    total, count = SPEC.loss_sums(pred, target)
    return total / count


def reference_gradient_bytes(n: int) -> int:
    """The dense (N, N) float32 product autograd forms for the COO value gradient, per backward call."""
    return n * n * FLOAT


# ---------------------------------------------------------------------------------------------------
# child side: one case per process
# ---------------------------------------------------------------------------------------------------

def _dense_parts(t: torch.Tensor) -> list[torch.Tensor]:
    """The strided tensors holding ``t``'s data (its index and value arrays for a sparse tensor)."""
    if t.layout == torch.sparse_coo:
        return [t._indices(), t._values()]
    if t.layout == torch.sparse_csr:
        return [t.crow_indices(), t.col_indices(), t.values()]
    return [t]


class SavedForBackward(nn.Module):
    """Runs ``model``; during its first forward, also sums the bytes of the distinct storages autograd
    keeps for backward, leaving out the model's own parameters and buffers (``saved_bytes``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.saved_bytes: int | None = None

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.saved_bytes is not None:
            return self.model(u)
        own = {t.untyped_storage().data_ptr() for t in itertools.chain(self.model.parameters(), self.model.buffers())}
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            for part in _dense_parts(t):
                storage = part.untyped_storage()
                if storage.nbytes() and storage.data_ptr() not in own:
                    seen[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = self.model(u)
        self.saved_bytes = sum(seen.values())
        return out


def _free_bytes(device: torch.device) -> int:
    """Memory a new allocation can take now: free device memory on CUDA, MemAvailable on CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not in /proc/meminfo")


def run_step(case: str, folder: Path) -> str:
    """Build one case's model on the saved graph, time its training steps, return one JSON line."""
    settings = json.loads((folder / "settings.json").read_text())
    torch.set_num_threads(settings["threads"])
    device = torch.device(settings["device"])
    size = settings["sizes"]
    if case == "reference":
        need, free = reference_gradient_bytes(size["n"]), _free_bytes(device)
        if need > FREE_FRACTION * free:
            return json.dumps({"skipped": f"its dense (N, N) value gradient needs {need / 1e9:.1f} GB per backward "
                                          f"call, {free / 1e9:.1f} GB free on {device.type}; use --scale"})
    W = sp.load_npz(folder / "graph.npz")
    torch.manual_seed(INIT_SEED)
    model = CASES[case][2](W, size, device)
    del W
    data = split_arrays(SPEC, np.random.SeedSequence(SPLIT_SEED), BATCH)
    u, target = (torch.from_numpy(data[key]).to(device) for key in ("inputs", "targets"))
    cuda = device.type == "cuda"
    before = torch.cuda.memory_allocated(device) / 2**20 if cuda else _rss_kib("VmRSS") / 1024
    counted = SavedForBackward(model)
    median, low = time_train_step(counted, u, target, settings["reps"], WARMUP, device, loss=flow_mse)
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    return json.dumps({
        "median": median, "min": low, "before_mib": before, "runtime": model.runtime,
        "trainable": trainable_parameter_count(model),
        "trainable_bytes": sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad),
        "model_bytes": sum(t.numel() * t.element_size() for t in tensors),
        "saved_bytes": counted.saved_bytes,
        "gpu_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
    })


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------

def print_estimates(rows: list[tuple[str, dict, float]], size: dict, scale: float, threads: int, cuda: bool) -> None:
    """Memory of one training job at batch B against a 24 GB GPU, and the time of one training epoch.

    Analytic: the model's tensors (parameters and buffers: CSR values, indices, transpose, permutation,
    adapters) + gradient and two Adam moments per trainable scalar + what autograd keeps for backward
    (summed during the warm-up step: T x K states of N x B floats, and for the all-N cases the (T, N, B)
    injection and readout tensors too), plus for
    the reference-style model its dense (N, N) value gradient. Measured: the CUDA peak, or on CPU the
    model's tensors + the growth of the process's RSS during the steps (peak - before), which holds the
    gradients, Adam moments, saved states and backward temporaries.
    """
    steps = EPOCH_EPISODES // BATCH
    n, gib = size["n"], 2**30
    print(f"\nEstimates for one training job (B={BATCH}, T={SPEC.T}): memory against a {GPU_BYTES / 1e9:.0f} GB GPU "
          f"({GPU_BYTES / gib:.1f} GiB, {GPU_RESERVE / gib:.0f} GiB of it left for the CUDA context and caching), and "
          f"an epoch of {EPOCH_EPISODES} training episodes = {steps} steps at the measured s/step "
          f"({'this GPU' if cuda else f'{threads} CPU threads'}; evaluation passes not included)")
    print(f"{'case':<54} {'model GiB':>9} {'grad+Adam GiB':>13} {'saved GiB':>9} {'T*K*N*B*4 GiB':>13} "
          f"{'analytic GiB':>12} {'measured GiB':>12} {'fits 24 GB':>10} {'epoch min (median/min)':>22}")
    full = []
    for name, result, peak in rows:
        if "skipped" in result:
            continue
        K = CASES[name][1]
        optimiser = 3 * result["trainable_bytes"]
        states = SPEC.T * K * n * BATCH * FLOAT
        analytic = result["model_bytes"] + optimiser + result["saved_bytes"]
        if name == "reference":
            analytic += reference_gradient_bytes(n)
        measured = (result["gpu_peak_mib"] * 2**20 if cuda
                    else result["model_bytes"] + (peak - result["before_mib"]) * 2**20)
        estimate = max(analytic, measured)
        fits = "yes" if estimate + GPU_RESERVE <= GPU_BYTES else "NO"
        print(f"{label(name, size):<54} {result['model_bytes'] / gib:9.2f} {optimiser / gib:13.2f} "
              f"{result['saved_bytes'] / gib:9.2f} {states / gib:13.2f} {analytic / gib:12.2f} {measured / gib:12.2f} "
              f"{fits:>10} {steps * result['median'] / 60:11.1f} / {steps * result['min'] / 60:.1f}")
        full.append((name, estimate, result))
    if scale != 1:
        print(f"At full size (--scale 1, x{1 / scale:.3g} in N and edges), extrapolated: memory grows linearly in N and "
              "edges (the reference-style dense gradient as N^2; conservative: the process's fixed overhead in the "
              "measured memory is scaled too); step time at least linearly (the project's sparse products) or as N^2 "
              "(the reference-style dense gradient), a lower bound only, because the (N, B) state that fits in cache "
              "here may not at full size; run --scale 1 to measure it:")
        for name, estimate, result in full:
            growth = scale**-2 if name == "reference" else 1 / scale
            dense = reference_gradient_bytes(size["n"]) if name == "reference" else 0
            bytes_full = (estimate - dense) / scale + dense * scale**-2
            fits = "yes" if bytes_full + GPU_RESERVE <= GPU_BYTES else "NO"
            print(f"  {label(name, sizes(1.0)):<54} ~{bytes_full / gib:7.1f} GiB (fits 24 GB: {fits}), "
                  f">= {result['min'] * growth:7.1f} s/step min, epoch >= {steps * result['min'] * growth / 60:.0f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads in every case")
    parser.add_argument("--reps", type=int, default=2, help="timed training steps per case (after 1 warm-up)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help=f"shrink N, edges and pool sizes by this factor for every case alike ({MIN_SCALE} <= s <= 1)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = parse_or_run_child(parser, run_step)
    if args is None:
        return
    cases = comma_choices(parser, args.cases, CASES, "case")
    if not MIN_SCALE <= args.scale <= 1:
        parser.error(f"--scale must lie in [{MIN_SCALE}, 1], got {args.scale}")
    size = sizes(args.scale)
    cuda = torch.device(args.device).type == "cuda"
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPUs, {load()} before")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_optic_flow_") as root:
        folder = Path(root)
        W = random_connectome(size["n"], size["edges"], seed=GRAPH_SEED, rho=RHO)
        sp.save_npz(folder / "graph.npz", W, compressed=False)
        (folder / "settings.json").write_text(json.dumps({"device": args.device, "threads": args.threads,
                                                          "reps": args.reps, "sizes": size}))
        print(f"== Optic-flow training step: N={size['n']}, nnz={W.nnz}, density={W.nnz / size['n']**2:.4%}, "
              f"B={BATCH}, T={SPEC.T}, d_in={SPEC.input_dim}, d_out={SPEC.output_dim}, device={args.device}, "
              f"threads={args.threads}, {WARMUP} warm-up + {args.reps} timed steps per case "
              f"(graph built in {time.perf_counter() - started:.1f} s)")
        if args.scale != 1:
            print(f"SCALED by --scale {args.scale:g}: N, edges and pools shrunk alike for every case (the optic lobe "
                  f"is N={N_NEURONS}, {N_EDGES} edges, pools {N_SENSORY}/{N_OUTPUT}); batch, T and K unchanged")
        del W
        for case in cases:
            result, rss = in_subprocess(__file__, case, folder)
            if "skipped" in result:
                rows.append((case, result, 0.0))
                print(f"{case}: skipped, {result['skipped']}", file=sys.stderr, flush=True)
                continue
            peak = result["gpu_peak_mib"] if cuda else rss
            rows.append((case, result, peak))
            print(f"{case}: median {result['median']:.3f} s/step, {peak:.0f} MiB peak", file=sys.stderr, flush=True)
    print_step_table(rows, lambda name: label(name, size), cuda)
    print(f"Loss: MSE over steps t >= 1 of {SPEC.T} (OpticFlowSpec.loss_sums). The reference-style model clips the state at "
          f"{STATE_CLIP:g} and multiplies W @ h at t = 0 too; the project cases do neither.")
    print_estimates(rows, size, args.scale, args.threads, cuda)
    print(f"(finished in {time.perf_counter() - started:.0f} s with {load()})")


if __name__ == "__main__":
    main()
