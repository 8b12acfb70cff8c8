"""Training-step benchmark of the mushroom-body associative task: this project's runtime against a
reference-style runtime that rebuilds and coalesces its COO matrix at every timestep.

What: seconds of one training step (zero_grad, forward, the pipeline's masked BCE-with-logits loss
over the 12 query steps of 21, backward, Adam step; no gradient-norm clipping) and the peak memory of
that step's process, at hemibrain-MB size: a random graph of 11,690 neurons and 1,277,773 edges
(``random_connectome``, spectral radius 0.95), batch 64 episodes of the real task data
(``connectome_bpu.associative.split_arrays``: T 21, input 67 = 64 odour features + 3 flags, 1 logit).

Why: the original benchmark's associative model trains one value per edge by rebuilding a COO tensor
from (indices, values) and calling ``.coalesce()`` at every timestep, then multiplies
``torch.sparse.mm(W, h.T).T``; this project claims its observed-mode runtime (trainable values on a
fixed CSR support, transpose precomputed, no rebuild) is at least 10x faster per step on 2 CPU
cores. This script measures that claim on the machine it runs on, beside the frozen core and the
configuration the pipeline actually trains.

Cases (``--cases``, comma-separated; all by default):
  reference       reference-style (``reference_models.ReferenceRecurrent``, shared with the optic-flow
                  bench): state (B, N),
                  h <- min(ReLU(W h + W_in x_t + b), 5), one recurrent step per input step, input to
                  and scalar readout from all N neurons, W rebuilt and coalesced every timestep
  observed_all    project, the same computation: BPU observed, sparse runtime, all N neurons as sensory
                  and output pools, K 1; it has no state clip at 5 and skips W @ h while h is 0 (t = 0)
  frozen_all      as observed_all with a frozen core
  observed_pools  project as the pipeline runs the family on the hemibrain MB: random pools of 582
                  sensory / 269 output neurons, K 3, runtime auto
  frozen_pools    as observed_pools with a frozen core
  plastic_pools   as frozen_pools with within-episode depression of every synapse onto an output neuron
                  (``training.plasticity: modulated_depression``, docs/plasticity.md): what the family's
                  plastic runs cost

Every case runs in its own subprocess (``child_steps.in_subprocess``), so its peak is its own: peak
RSS of that process on CPU (interpreter, torch and the loaded graph included; the RSS before the
steps is printed beside it), ``torch.cuda.max_memory_allocated`` on CUDA. Each case does one warm-up
step, then ``--reps`` timed steps; median and minimum are printed (the minimum is the better estimate
of the uncontended cost on a shared machine), with the load average before and after.

Usage: python bench/bench_associative_step.py [--device cpu|cuda] [--threads 2] [--reps 3]
                                              [--cases reference,observed_all,...]

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.associative import AssociativeSpec, split_arrays  # noqa: E402
from connectome_bpu.models import BPU, trainable_parameter_count  # noqa: E402

from bench_training_step import THREADS, _rss_kib, load, random_connectome, time_train_step
from child_steps import comma_choices, in_subprocess, parse_or_run_child
from reference_models import STATE_CLIP, ReferenceRecurrent
from step_cases import print_step_table, project_bpu

N_NEURONS, N_EDGES, RHO = 11_690, 1_277_773, 0.95   # hemibrain mushroom body (MB(R), MB(L))
N_SENSORY, N_OUTPUT, K_PIPELINE = 582, 269, 3        # pool sizes and K the pipeline uses on the hemibrain MB
BATCH = 64
SPEC = AssociativeSpec()                             # T 21, input 67, 1 logit
DATA_SEED, SPLIT_SEED = 12345, 1
GRAPH_SEED, POOL_SEED, INIT_SEED = 6, 7, 0
WARMUP = 1


def _project(train_mode: str, runtime: str, on_pools: bool, plasticity: dict | None = None):
    """Builder of a project BPU (:func:`step_cases.project_bpu`) at hemibrain-MB size."""
    def build(W: sp.csr_matrix, device: torch.device) -> BPU:
        return project_bpu(W, device, train_mode=train_mode, runtime=runtime, on_pools=on_pools,
                           n_sensory=N_SENSORY, n_output=N_OUTPUT, K=K_PIPELINE, input_dim=SPEC.input_dim,
                           output_dim=SPEC.output_dim, pool_seed=POOL_SEED, plasticity=plasticity)
    return build


# name: (label, builder(W, device) -> model)
CASES = {
    "reference": ("reference-style COO rebuild+coalesce/step, all N, K 1",
                  lambda W, device: ReferenceRecurrent(W, SPEC.input_dim, SPEC.output_dim, device,
                                                       rebuild_every_step=True)),
    "observed_all": ("project observed CSR, all N, K 1 (no clip)", _project("observed", "sparse", False)),
    "frozen_all": ("project frozen CSR, all N, K 1 (no clip)", _project("frozen", "sparse", False)),
    "observed_pools": (f"project observed, pools {N_SENSORY}/{N_OUTPUT}, K {K_PIPELINE}",
                       _project("observed", "auto", True)),
    "frozen_pools": (f"project frozen, pools {N_SENSORY}/{N_OUTPUT}, K {K_PIPELINE}",
                     _project("frozen", "auto", True)),
    "plastic_pools": (f"project frozen + plasticity, pools {N_SENSORY}/{N_OUTPUT}, K {K_PIPELINE}",
                      _project("frozen", "auto", True, {"rule": "modulated_depression", "retention": 0.9})),
}


def query_bce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The pipeline's training loss: mean BCE-with-logits over the query steps."""
    total, count = SPEC.loss_sums(pred, target)
    return total / count


# ---------------------------------------------------------------------------------------------------
# child side: one case per process
# ---------------------------------------------------------------------------------------------------

def run_step(case: str, folder: Path) -> str:
    """Build one case's model on the saved graph, time its training steps, return one JSON line."""
    settings = json.loads((folder / "settings.json").read_text())
    torch.set_num_threads(settings["threads"])
    device = torch.device(settings["device"])
    W = sp.load_npz(folder / "graph.npz")
    torch.manual_seed(INIT_SEED)
    model = CASES[case][1](W, device)
    del W
    data = split_arrays(SPEC, np.random.SeedSequence(SPLIT_SEED), DATA_SEED, BATCH)
    u, target = (torch.from_numpy(data[key]).to(device) for key in ("inputs", "targets"))
    cuda = device.type == "cuda"
    before = torch.cuda.memory_allocated(device) / 2**20 if cuda else _rss_kib("VmRSS") / 1024
    median, low = time_train_step(model, u, target, settings["reps"], WARMUP, device, loss=query_bce)
    runtime = getattr(model, "runtime", "coo")
    return json.dumps({
        "median": median, "min": low, "before_mib": before, "runtime": runtime,
        "trainable": trainable_parameter_count(model),
        "gpu_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
    })


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads in every case")
    parser.add_argument("--reps", type=int, default=3, help="timed training steps per case (after 1 warm-up)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = parse_or_run_child(parser, run_step)
    if args is None:
        return
    cases = comma_choices(parser, args.cases, CASES, "case")
    cuda = torch.device(args.device).type == "cuda"
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPUs, {load()} before")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_associative_") as root:
        folder = Path(root)
        W = random_connectome(N_NEURONS, N_EDGES, seed=GRAPH_SEED, rho=RHO)
        sp.save_npz(folder / "graph.npz", W, compressed=False)
        (folder / "settings.json").write_text(json.dumps({"device": args.device, "threads": args.threads,
                                                          "reps": args.reps}))
        print(f"== Associative training step: N={N_NEURONS}, nnz={W.nnz}, density={W.nnz / N_NEURONS**2:.3%}, "
              f"B={BATCH}, T={SPEC.T}, d_in={SPEC.input_dim}, d_out={SPEC.output_dim}, device={args.device}, "
              f"threads={args.threads}, {WARMUP} warm-up + {args.reps} timed steps per case "
              f"(graph built in {time.perf_counter() - started:.1f} s)")
        del W
        for case in cases:
            result, rss = in_subprocess(__file__, case, folder)
            peak = result["gpu_peak_mib"] if cuda else rss
            rows.append((case, result, peak))
            print(f"{case}: median {result['median']:.3f} s/step, {peak:.0f} MiB peak", file=sys.stderr, flush=True)
    print_step_table(rows, lambda name: CASES[name][0], cuda)
    print(f"Loss: mean BCE over the {SPEC.per_episode * 2} query steps (AssociativeSpec.loss_sums). The reference "
          f"clips the state at {STATE_CLIP:g} and multiplies W @ h at t = 0 too; the project cases do neither.")
    print(f"(finished in {time.perf_counter() - started:.0f} s with {load()})")


if __name__ == "__main__":
    main()
