"""Training-step benchmark of the BPU recurrent runtime against a reference-style runtime.

Why: the benchmark's cost is dominated by T x K recurrent microsteps; the original benchmark multiplies
a COO tensor with a transposed (B, N) state every microstep (docs/departures.md#csr-runtime). A
"reference-style" runtime is that loop re-implemented here and timed beside this project's. This
script measures what this project's runtime (CSR + precomputed CSR transpose, (N, B) state) gains, on
the machine it runs on, and measures the dense/sparse crossover behind ``runtime="auto"``.

Sections (all by default; pick with flags):
  --cx          forward + backward + Adam step at hemibrain-CX size (7,349 neurons, 511,930 edges,
                741 sensory, 591 output, batch 32, T 50, K 3, d_in 2, d_out 35, MSE vs random targets)
  --whole-brain forward pass at FlyWire size (139,255 neurons, 15.1 M edges, 6,963 sensory/output,
                batch 16, T 50, K 3), each runtime in a fresh subprocess so its peak RSS is its own;
                plus one training step of this project's runtime at that size
  --sweep       dense vs sparse cost of one microstep (forward + backward) over N x density; the
                crossover that connectome_bpu.runtime.choose_runtime encodes

Usage: python bench/bench_training_step.py [--cx] [--whole-brain] [--sweep] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.models import BPU  # noqa: E402
from connectome_bpu.runtime import build_operator, choose_runtime  # noqa: E402

THREADS = 2  # the brief's CPU budget per training job; --threads overrides it for comparisons


def random_connectome(n: int, edges: int, seed: int, rho: float = 0.95) -> sp.csr_matrix:
    """Random directed graph with exactly ``edges`` distinct cells and lognormal weights, scaled so
    its spectral radius is ~``rho`` (power iteration; exact for nonnegative matrices)."""
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, n * n, size=int(edges * 1.01) + 1024, dtype=np.int64))
    codes = np.sort(rng.permutation(codes)[:edges])
    if codes.size < edges:
        raise RuntimeError("too few distinct cells drawn; increase the oversampling")
    weights = rng.lognormal(mean=0.0, sigma=1.0, size=edges).astype(np.float32)
    W = sp.csr_matrix((weights, (codes // n, codes % n)), shape=(n, n))
    x = np.ones(n, dtype=np.float64) / math.sqrt(n)
    norm = 0.0
    for _ in range(60):
        y = W @ x
        norm = float(np.linalg.norm(y))
        x = y / norm
    W.data *= np.float32(rho / norm)
    return W


def pools(n: int, n_sensory: int, n_output: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return np.sort(order[:n_sensory]), np.sort(order[n_sensory:n_sensory + n_output])


class ReferenceStyleBPU(nn.Module):
    """The original benchmark's microstep loop (docs/method.md#bpu), re-written here for comparison:
    state (B, N), per microstep ``torch.sparse.mm(W, h.T).T`` on a coalesced COO W, or ``h @ W.T`` on a
    dense W ("reference-style": see the docstring of ``bench_graph.py``)."""

    def __init__(self, W: sp.csr_matrix, sensory, output, *, K, d_in, d_out, dense, device):
        super().__init__()
        coo = W.tocoo()
        if dense:
            self.register_buffer("W", torch.from_numpy(W.toarray()).to(device))
        else:
            idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
            w = torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data), W.shape,
                                        check_invariants=False).coalesce()
            self.register_buffer("W", w.to(device))
        self.dense, self.K, self.n = dense, K, W.shape[0]
        self.register_buffer("S", torch.from_numpy(sensory).to(device))
        self.register_buffer("O", torch.from_numpy(output).to(device))
        torch.manual_seed(0)
        self.W_in = nn.Parameter(torch.empty(len(sensory), d_in).uniform_(-d_in**-0.5, d_in**-0.5).to(device))
        self.b_in = nn.Parameter(torch.zeros(len(sensory), device=device))
        self.W_out = nn.Parameter(
            torch.empty(d_out, len(output)).uniform_(-len(output)**-0.5, len(output)**-0.5).to(device))
        self.b_out = nn.Parameter(torch.zeros(d_out, device=device))

    def step(self, h):
        return h @ self.W.T if self.dense else torch.sparse.mm(self.W, h.T).T

    def forward(self, u):
        batch, steps, _ = u.shape
        h = torch.zeros(batch, self.n, device=u.device)
        ys = []
        for t in range(steps):
            drive = torch.zeros(batch, self.n, device=u.device)
            drive[:, self.S] = u[:, t] @ self.W_in.T + self.b_in
            h = torch.relu(self.step(h) + drive)
            for _ in range(self.K - 1):
                h = torch.relu(self.step(h))
            ys.append(h[:, self.O] @ self.W_out.T + self.b_out)
        return torch.stack(ys, dim=1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_step(model, u, target, reps: int, warmup: int, device,
                    loss=nn.functional.mse_loss) -> tuple[float, float]:
    """(median, min) seconds of zero_grad + forward + ``loss(output, target)`` (MSE unless given) +
    backward + Adam step.

    The minimum is printed beside the median because on a shared machine other processes inflate
    some repetitions (with 2 OpenMP threads on 2 busy cores a parallel region can wait a whole
    scheduler time slice); the minimum is the better estimate of the uncontended cost.
    """
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    times = []
    for i in range(warmup + reps):
        sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss(model(u), target).backward()
        opt.step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))


def load() -> str:
    """Load average, printed with every table: timings on a busy machine are not comparable."""
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def bench_cx(device: torch.device, reps: int) -> None:
    n, edges, n_s, n_o, batch, steps, K, d_in, d_out = 7349, 511930, 741, 591, 32, 50, 3, 2, 35
    t0 = time.perf_counter()
    W = random_connectome(n, edges, seed=1)
    sensory, output = pools(n, n_s, n_o, seed=2)
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(batch, steps, d_in, generator=gen).to(device)
    target = torch.randn(batch, steps, d_out, generator=gen).to(device)
    print(f"\n== CX-size training step: N={n}, nnz={W.nnz}, density={W.nnz / n / n:.4%}, B={batch}, "
          f"T={steps}, K={K}, device={device}, threads={torch.get_num_threads()} "
          f"(graph built in {time.perf_counter() - t0:.1f} s), {load()}")
    auto = choose_runtime(n, W.nnz, device, "auto")
    rows = []

    def project(runtime, train_mode="frozen"):
        return BPU(W, sensory, output, K=K, input_dim=d_in, output_dim=d_out, runtime=runtime,
                   train_mode=train_mode, device=device, dense_max_neurons=20000)

    def reference(dense):
        return ReferenceStyleBPU(W, sensory, output, K=K, d_in=d_in, d_out=d_out, dense=dense,
                                 device=device)

    cases = [
        ("project sparse CSR (N,B)", lambda: project("sparse"), reps, 2),
        (f"project auto (-> {auto}{', = row 1' if auto == 'sparse' else ''})",
         None if auto == "sparse" else (lambda: project("auto")), reps, 2),
        ("project observed (trainable values)", lambda: project("auto", "observed"), max(2, reps // 2), 1),
        ("reference-style COO sparse.mm", lambda: reference(False), max(2, reps // 2), 1),
        ("reference-style dense h @ W.T", lambda: reference(True), max(2, reps // 2), 1),
    ]
    for label, make, r, warm in cases:
        if make is None:
            rows.append((label, rows[0][1]))
            continue
        model = make()
        rows.append((label, time_train_step(model, u, target, r, warm, device)))
        del model
    (coo_med, coo_min), (dense_med, dense_min) = rows[3][1], rows[4][1]
    print(f"{'runtime':34s} {'median s/step':>13s} {'vs ref COO':>10s} {'vs ref dense':>12s}"
          f" {'min s/step':>10s} {'vs ref COO':>10s} {'vs ref dense':>12s}")
    for label, (med, low) in rows:
        print(f"{label:34s} {med:13.4f} {coo_med / med:9.1f}x {dense_med / med:11.1f}x"
              f" {low:10.4f} {coo_min / low:9.1f}x {dense_min / low:11.1f}x")
    print(f"(finished with {load()})")


def _rss_kib(field: str) -> int:
    """VmRSS / VmHWM of this process in KiB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset VmHWM so the next reading is the peak of what follows (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _wholebrain_child(args) -> None:
    """One whole-brain measurement in this fresh process; prints one JSON line.

    A fresh process per runtime makes each peak its own: the graph is loaded and the model built,
    the loader's copies are freed, the peak-RSS mark is reset, and only then the timed runs start, so
    ``peak_run_gib`` is the model plus what the runs allocate.
    """
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = np.load(args.graph)
    W = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))
    sensory, output = data["sensory"], data["output"]
    if args.child == "project":
        model = BPU(W, sensory, output, K=3, input_dim=2, output_dim=35, runtime="auto",
                    device=device, dense_max_neurons=20000)
        label = f"project auto (-> {model.runtime})"
    else:
        model = ReferenceStyleBPU(W, sensory, output, K=3, d_in=2, d_out=35, dense=False,
                                  device=device)
        label = "reference-style COO sparse.mm"
    del W, data
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(16, 50, 2, generator=gen).to(device)
    target = torch.randn(16, 50, 35, generator=gen).to(device)
    reset = _reset_peak_rss()
    rss_model = _rss_kib("VmRSS")
    if args.mode == "train":
        label += ", training step"
        seconds, _ = time_train_step(model, u, target, reps=args.reps, warmup=0, device=device)
    else:
        times = []
        with torch.no_grad():
            model(u[:, :2])  # warm-up: kernel/library initialisation, not the full sequence
            for _ in range(args.reps):
                sync(device)
                start = time.perf_counter()
                model(u)
                sync(device)
                times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
    peak_run = _rss_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    print(json.dumps({
        "label": label, "seconds": seconds, "rss_model_gib": rss_model / 2**20,
        "peak_run_gib": peak_run / 2**20,
        "peak_process_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "gpu_peak_gib": gpu_peak / 2**30,
    }))


def bench_whole_brain(device: torch.device, reps: int) -> None:
    n, edges, pool = 139255, 15_100_000, 6963
    t0 = time.perf_counter()
    W = random_connectome(n, edges, seed=4)
    sensory, output = pools(n, pool, pool, seed=5)
    print(f"\n== Whole-brain size: N={n}, nnz={W.nnz}, density={W.nnz / n / n:.5%}, {pool} sensory/output, "
          f"B=16, T=50, K=3, device={device} (graph built in {time.perf_counter() - t0:.1f} s), {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        graph = os.path.join(tmp, "graph.npz")
        np.savez(graph, data=W.data, indices=W.indices, indptr=W.indptr, shape=np.array(W.shape),
                 sensory=sensory, output=output)
        del W
        results = []
        for child, mode, r in (("project", "forward", reps), ("reference", "forward", 1),
                               ("project", "train", 1)):
            cmd = [sys.executable, __file__, "--child", child, "--mode", mode, "--graph", graph,
                   "--device", str(device), "--reps", str(r), "--threads", str(torch.get_num_threads())]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    gpu = device.type == "cuda"
    print(f"{'runtime (forward without grad)':44s} {'seconds':>8s} {'vs ref':>7s} {'RSS model GiB':>14s} "
          f"{'peak RSS run GiB':>17s} {'peak RSS process GiB':>21s}" + (" GPU peak GiB" if gpu else ""))
    ref = results[1]["seconds"]
    for r in results:
        ratio = f"{ref / r['seconds']:6.1f}x" if "training" not in r["label"] else f"{'':7s}"
        print(f"{r['label']:44s} {r['seconds']:8.2f} {ratio} {r['rss_model_gib']:14.2f} "
              f"{r['peak_run_gib']:17.2f} {r['peak_process_gib']:21.2f}"
              + (f" {r['gpu_peak_gib']:12.2f}" if gpu else ""))
    print(f"(finished with {load()})")


def bench_sweep(device: torch.device) -> None:
    """Per-microstep forward + backward (w.r.t. the state) of dense vs sparse frozen operators."""
    print(f"\n== Dense/sparse crossover, one microstep forward + backward, device={device}, {load()}: "
          "minimum milliseconds dense / sparse (winner)")
    sizes, densities, batches = (128, 512, 2048, 8192), (0.01, 0.1, 0.2, 0.3, 0.4, 0.6), (32, 128)
    for batch in batches:
        print(f"B={batch}: " + " ".join(f"{'d=' + str(d):>22s}" for d in densities))
        for n in sizes:
            cells = []
            dense_ms = None
            for density in densities:
                W = sp.random(n, n, density=density, format="csr", dtype=np.float32,
                              random_state=np.random.default_rng(n))
                ms = {}
                for runtime in ("dense", "sparse"):
                    if runtime == "dense" and dense_ms is not None:
                        ms["dense"] = dense_ms  # dense cost does not depend on density
                        continue
                    op = build_operator(W, runtime=runtime, device=device, dense_max_neurons=10**6)
                    step = op.step_fn()
                    h = torch.rand(n, batch, device=device, requires_grad=True)
                    g = torch.rand(n, batch, device=device)
                    reps = max(3, min(200, int(2e9 / (n * n * batch))))
                    times = []
                    for i in range(reps + 2):
                        sync(device)
                        start = time.perf_counter()
                        step(h).backward(g)
                        sync(device)
                        if i >= 2:
                            times.append(time.perf_counter() - start)
                    ms[runtime] = 1e3 * float(np.min(times))
                dense_ms = ms["dense"]
                win = "D" if ms["dense"] < ms["sparse"] else "S"
                cells.append(f"{ms['dense']:8.3f}/{ms['sparse']:8.3f} {win}")
            print(f"N={n:5d} " + " ".join(f"{c:>22s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cx", action="store_true")
    parser.add_argument("--whole-brain", action="store_true")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (CX project runtimes)")
    parser.add_argument("--wb-reps", type=int, default=1, help="timed repetitions (whole brain)")
    parser.add_argument("--child", choices=("project", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("forward", "train"), default="forward", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        _wholebrain_child(args)
        return
    device = torch.device(args.device)
    everything = not (args.cx or args.whole_brain or args.sweep)
    if args.cx or everything:
        bench_cx(device, args.reps)
    if args.whole_brain or everything:
        bench_whole_brain(device, args.wb_reps)
    if args.sweep or everything:
        bench_sweep(device)


if __name__ == "__main__":
    main()
